//! `multipath -ll` output: the maps and the full listing read or refuse, never panic.
#![no_main]

use iser_wizard::steps::parse::multipath;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for m in multipath::parse_multipath_ll(&text) {
        let _ = (m.paths().count(), m.healthy_paths().count());
    }
    let _ = multipath::parse_multipath_listing(&text);
});
