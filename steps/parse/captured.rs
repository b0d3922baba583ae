//! The parsers on the outputs this repository's own lab captured (`tests/lab/fixtures-captured/`,
//! committed with the repository, so these cases always run): real open-iscsi, multipath-tools,
//! util-linux, rdma and infiniband-diags output from the soft-RoCE LIO lab.

use std::path::PathBuf;

use super::blkid::parse_blkid_export;
use super::fixtures::lab_capture;
use super::ibstat::{parse_ibstat, Guid, LinkLayer, PortState};
use super::iscsiadm::{parse_discovery, parse_session_p3};
use super::lsblk::parse_lsblk_json;
use super::multipath::parse_multipath_ll;
use super::netlink::{parse_ip_j_addr, parse_rdma_link};

const LUN0: &str = "360014051ab0000000000000000000000";
const LUN1: &str = "360014052ab0000000000000000000000";
const TARGET: &str = "iqn.2002-09.com.lab:array";

fn captured(name: &str) -> (String, Option<i32>) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/lab/fixtures-captured")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (_, body, status) = lab_capture(&text);
    (body, status)
}

#[test]
fn four_iser_sessions_one_per_portal_each_from_the_port_on_its_subnet() {
    let (text, _) = captured("iscsiadm-session-P3.txt");
    let d = parse_session_p3(&text);
    assert_eq!(d.len(), 4);
    assert!(d.iter().all(|x| x.target == TARGET));
    for x in &d {
        assert!(x.is_logged_in(), "{x:?}");
        assert_eq!(x.iface_transport.as_deref(), Some("iser"));
        let portal = x.current_portal.as_ref().unwrap().to_string();
        let iface = x.iface_name.as_deref().unwrap();
        let want = if portal.starts_with("192.168.130.") {
            "iface-vA"
        } else {
            "iface-vB"
        };
        assert_eq!(iface, want, "{portal} reached through {iface}");
        assert!(!x.devices.is_empty(), "{portal}: no disks attached");
    }
}

#[test]
fn sendtargets_returns_every_portal_whichever_iface_asks() {
    for f in [
        "iscsiadm-discovery-st-vA.txt",
        "iscsiadm-discovery-st-vB.txt",
    ] {
        let (text, status) = captured(f);
        assert_eq!(status, Some(0), "{f}");
        let nodes = parse_discovery(&text);
        let mut portals: Vec<String> = nodes.iter().map(|n| n.portal.to_string()).collect();
        portals.sort();
        assert_eq!(
            portals,
            [
                "192.168.130.101:3260",
                "192.168.130.102:3260",
                "192.168.131.101:3260",
                "192.168.131.102:3260"
            ],
            "{f}"
        );
    }
}

#[test]
fn two_alua_maps_with_four_healthy_paths_each() {
    let (text, _) = captured("multipath-ll.txt");
    let maps = parse_multipath_ll(&text);
    let mut wwids: Vec<&str> = maps.iter().map(|m| m.wwid.as_str()).collect();
    wwids.sort();
    assert_eq!(wwids, [LUN0, LUN1]);
    for m in &maps {
        assert_eq!(m.vendor.as_deref(), Some("LIO-ORG"));
        assert_eq!(m.healthy_paths().count(), 4, "{}", m.wwid);
    }
}

#[test]
fn block_devices_and_signatures() {
    let (text, _) = captured("lsblk-json.txt");
    let devs = parse_lsblk_json(&text).unwrap();
    fn names(d: &super::lsblk::BlockDev, out: &mut Vec<String>) {
        out.push(d.name.clone());
        d.children.iter().for_each(|c| names(c, out));
    }
    let mut all = Vec::new();
    devs.iter().for_each(|d| names(d, &mut all));
    assert!(all.iter().any(|n| n == LUN0), "{all:?}");

    let (text, _) = captured("blkid-p-ext4.txt");
    let sig = parse_blkid_export(&text).unwrap().unwrap();
    assert_eq!(sig.fs_type.as_deref(), Some("ext4"));
    assert!(sig.uuid.is_some());
    let (text, _) = captured("blkid-p-data-lun.txt");
    let sig = parse_blkid_export(&text).unwrap().unwrap();
    assert_eq!(sig.label.as_deref(), Some("labdata"));
    assert!(sig.is_occupied());
    let (text, status) = captured("blkid-p-empty.txt");
    assert_eq!(status, Some(2), "blkid -p exits 2 on an empty device");
    assert_eq!(parse_blkid_export(&text).unwrap(), None);
}

#[test]
fn rdma_devices_and_addresses() {
    let (text, _) = captured("rdma-link-show.txt");
    let links = parse_rdma_link(&text);
    let ra = links.iter().find(|l| l.device == "rxe0").unwrap();
    assert_eq!(ra.netdev.as_deref(), Some("vA"));
    assert_eq!(links.len(), 4);
    let (text, _) = captured("ibstat.txt");
    let cas = parse_ibstat(&text).unwrap();
    assert_eq!(cas.len(), 4);
    assert!(cas
        .iter()
        .flat_map(|c| &c.ports)
        .all(|p| p.link_layer == LinkLayer::Ethernet));
    let (text, _) = captured("ip-d-j-addr-show.txt");
    let links = parse_ip_j_addr(&text).unwrap();
    let va = links.iter().find(|l| l.name == "vA").unwrap();
    assert!(va
        .addrs
        .iter()
        .any(|a| a.address.to_string() == "192.168.130.10" && a.prefix_len == 24));
}

#[test]
fn roce_chain_rdma_link_to_netdev_mac_to_port_guid() {
    // rdma link: rxe0 -> vA; ip -j addr: vA's MAC; ibstat: rxe0's port GUID is that MAC's
    // EUI-64 (how the network step matches a RoCE netdev to its RDMA device).
    let (rdma, _) = captured("rdma-link-show.txt");
    let (ip, _) = captured("ip-d-j-addr-show.txt");
    let (ibs, _) = captured("ibstat.txt");
    let rxe0 = parse_rdma_link(&rdma)
        .into_iter()
        .find(|l| l.device == "rxe0")
        .unwrap();
    let va = parse_ip_j_addr(&ip)
        .unwrap()
        .into_iter()
        .find(|l| Some(&l.name) == rxe0.netdev.as_ref())
        .unwrap();
    let cas = parse_ibstat(&ibs).unwrap();
    let guid = cas.iter().find(|c| c.name == "rxe0").unwrap().ports[0].port_guid;
    assert_eq!(
        Guid::eui64_from_mac(va.address.as_deref().unwrap()),
        Some(guid)
    );
}

#[test]
fn ibstat_on_the_simulated_fabric_reads_as_infiniband_with_its_subnet_manager() {
    // ibsim's fabric through the real ibstat (libibumad prints "Link layer: IB" without
    // sysfs): no SM yet, then our opensm (SM lid = our own lid), then another node's.
    let port = |name: &str| {
        let (text, _) = captured(name);
        // The simulator's client library says where it attached on stderr, mixed in.
        let text: String = text
            .lines()
            .filter(|l| !l.starts_with("ibwarn:"))
            .map(|l| format!("{l}\n"))
            .collect();
        let cas = parse_ibstat(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        cas[0].ports[0].clone()
    };
    let none = port("ibsim/ibsim-ibstat-no-sm.txt");
    assert_eq!(none.link_layer, LinkLayer::Infiniband);
    assert_eq!(none.sm_lid, 0);
    assert!(!matches!(none.state, PortState::Active), "{:?}", none.state);
    let own = port("ibsim/ibsim-ibstat-own-sm.txt");
    assert!(matches!(own.state, PortState::Active));
    assert_eq!(own.sm_lid, own.base_lid);
    let other = port("ibsim/ibsim-ibstat-external-sm.txt");
    assert!(matches!(other.state, PortState::Active));
    assert_ne!(other.sm_lid, other.base_lid);
    assert_ne!(other.sm_lid, 0);
}
