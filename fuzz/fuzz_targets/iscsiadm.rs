//! iscsiadm's outputs (session -P 3, node and discovery listings, records, logout lines,
//! initiatorname.iscsi, error text): every parser reads or refuses, never panics.
#![no_main]

use iser_wizard::steps::parse::iscsiadm;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for s in iscsiadm::parse_session_p3(&text) {
        let _ = (s.is_logged_in(), s.disks());
    }
    let _ = iscsiadm::parse_nodes(&text);
    let _ = iscsiadm::parse_discovery(&text);
    let _ = iscsiadm::parse_record(&text);
    let _ = iscsiadm::parse_initiatorname(&text);
    let _ = iscsiadm::parse_logout_output(&text);
    let _ = iscsiadm::IscsiadmError::from_output(8, &text).map(|e| e.to_string());
});
