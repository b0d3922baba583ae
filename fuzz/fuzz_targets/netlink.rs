//! `ip -d -j addr show` JSON and `rdma link show` text: read or refused, never a panic.
#![no_main]

use iser_wizard::steps::parse::netlink;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(links) = netlink::parse_ip_j_addr(&text) {
        for l in &links {
            let _ = (l.is_up(), l.is_ipoib(), l.port_guid());
        }
    }
    let _ = netlink::parse_rdma_link(&text);
});
