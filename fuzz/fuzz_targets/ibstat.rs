//! `ibstat` output and the values it and sysfs carry (rates, GUIDs, states): read or
//! refused, never a panic.
#![no_main]

use iser_wizard::steps::parse::ibstat;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(cas) = ibstat::parse_ibstat(&text) {
        for p in cas.iter().flat_map(|c| &c.ports) {
            let _ = p.rate.as_ref().map(ibstat::Rate::describe);
        }
    }
    let _ = ibstat::Rate::from_ibstat(&text).map(|r| r.describe());
    let _ = ibstat::Rate::from_sysfs(&text).map(|r| r.describe());
    let _ = ibstat::Guid::from_gid(&text);
    let _ = ibstat::ipoib_guid_from_hwaddr(&text);
    let files = ["state", "phys_state", "rate", "link_layer", "lid", "gids/0"]
        .iter()
        .zip(text.lines())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let _ = ibstat::parse_sysfs_port("x", 1, &files);
});
