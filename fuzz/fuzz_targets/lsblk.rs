//! `lsblk --json` output: read or refused, never a panic.
#![no_main]

use iser_wizard::steps::parse::lsblk;
use libfuzzer_sys::fuzz_target;

fn walk(d: &lsblk::BlockDev) {
    let _ = (d.size_bytes(), d.is_type("disk"));
    d.children.iter().for_each(walk);
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(devs) = lsblk::parse_lsblk_json(&text) {
        devs.iter().for_each(walk);
    }
});
