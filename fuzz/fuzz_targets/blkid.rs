//! `blkid -p -o export` output: a signature, none, or a refusal; never a panic.
#![no_main]

use iser_wizard::steps::parse::blkid;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(Some(sig)) = blkid::parse_blkid_export(&text) {
        let _ = sig.is_occupied();
    }
});
