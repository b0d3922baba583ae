//! The answers file's text: parsing never panics, and what parses validates (the whole
//! file, a partial file, the typed reading) without a panic.
#![no_main]

use iser_wizard::answers;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(v) = answers::parse_text(&text) {
        let problems = answers::validate(&v, &|_| None);
        let _ = answers::check_partial(&v);
        let _ = answers::typed(&v, &problems);
        let _ = answers::host_specific(&v);
    }
});
