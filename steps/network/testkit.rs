//! Test support shared with the subnet-manager step: hosts modelled on real outputs, a
//! context, an engine-like apply, and golden files.

use serde_json::{json, Value};

use crate::steps::fake::FakeHost;
use crate::steps::CmdOutput;

pub const DEBIAN: &str =
    "ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n";
pub const UBUNTU: &str = "ID=ubuntu\nID_LIKE=debian\nVERSION_ID=\"24.04\"\n";
pub const RHEL9: &str = "ID=\"rhel\"\nID_LIKE=\"fedora\"\nVERSION_ID=\"9.4\"\n";
pub const RHEL8: &str = "ID=\"rhel\"\nID_LIKE=\"fedora\"\nVERSION_ID=\"8.10\"\n";
pub const SLES: &str = "ID=\"sles\"\nID_LIKE=\"suse\"\nVERSION_ID=\"15.5\"\n";

pub const IP: [&str; 5] = ["ip", "-j", "-d", "addr", "show"];

pub use crate::steps::testkit::{golden, steps_of, written, Run};

/// One RDMA port in sysfs.
#[allow(clippy::too_many_arguments)]
pub fn sysfs_port(
    h: &FakeHost,
    dev: &str,
    port: u8,
    link_layer: &str,
    gid0: &str,
    state: &str,
    lid: u32,
    sm_lid: u32,
) {
    let d = format!("/sys/class/infiniband/{dev}/ports/{port}");
    let (st, phys) = match state {
        "Active" => ("4: ACTIVE", "5: LinkUp"),
        "Initializing" => ("2: INIT", "5: LinkUp"),
        _ => ("1: DOWN", "2: Polling"),
    };
    h.put_file(&format!("{d}/state"), &format!("{st}\n"));
    h.put_file(&format!("{d}/phys_state"), &format!("{phys}\n"));
    h.put_file(&format!("{d}/link_layer"), &format!("{link_layer}\n"));
    h.put_file(&format!("{d}/gids/0"), &format!("{gid0}\n"));
    h.put_file(&format!("{d}/lid"), &format!("0x{lid:x}\n"));
    h.put_file(&format!("{d}/sm_lid"), &format!("0x{sm_lid:x}\n"));
    let rate = if link_layer == "Ethernet" {
        "10 Gb/sec (1X FDR10)"
    } else {
        "100 Gb/sec (4X EDR)"
    };
    h.put_file(&format!("{d}/rate"), &format!("{rate}\n"));
}

/// A soft-RoCE device on an Ethernet netdev, as rdma_rxe shows it.
pub fn rxe(h: &FakeHost, dev: &str, netdev: &str, gid0: &str) {
    sysfs_port(h, dev, 1, "Ethernet", gid0, "Active", 0, 0);
    h.put_file(
        &format!("/sys/class/infiniband/{dev}/parent"),
        &format!("{netdev}\n"),
    );
    h.put_file(
        &format!("/sys/class/infiniband/{dev}/ports/1/gid_attrs/ndevs/0"),
        &format!("{netdev}\n"),
    );
}

/// One interface as `ip -j -d addr show` prints it.
pub fn link(
    idx: u32,
    name: &str,
    kind: Option<&str>,
    hw: &str,
    mtu: u32,
    up: bool,
    addrs: &[&str],
) -> Value {
    let ib = hw.len() > 17;
    let flags: &[&str] = if up {
        &["BROADCAST", "MULTICAST", "UP", "LOWER_UP"]
    } else {
        &["BROADCAST", "MULTICAST"]
    };
    let addr_info: Vec<Value> = addrs
        .iter()
        .map(|a| {
            let (ip, p) = a.split_once('/').unwrap();
            json!({"family": "inet", "local": ip, "prefixlen": p.parse::<u8>().unwrap(),
                   "scope": "global", "label": name})
        })
        .collect();
    let mut v = json!({
        "ifindex": idx, "ifname": name, "flags": flags, "mtu": mtu,
        "operstate": if up { "UP" } else { "DOWN" },
        "link_type": if ib { "infiniband" } else { "ether" },
        "address": hw, "addr_info": addr_info,
    });
    if let Some(k) = kind {
        v["linkinfo"] = json!({"info_kind": k});
    }
    v
}

/// An IPoIB interface in the given mode.
pub fn ipoib(idx: u32, name: &str, hw: &str, mtu: u32, mode: &str, addrs: &[&str]) -> Value {
    let mut v = link(idx, name, None, hw, mtu, !addrs.is_empty(), addrs);
    v["linkinfo"] = json!({"info_kind": "ipoib",
                           "info_data": {"key": "0xffff", "mode": mode, "umcast": "0000"}});
    v
}

pub fn ip_out(links: &[Value]) -> CmdOutput {
    CmdOutput::ok(serde_json::to_string(links).unwrap())
}

/// The soft-RoCE lab: veth vA/vB (host side) carrying rxe0/rxe1, vA-t/vB-t (target side)
/// carrying rxe2/rxe3 and the portals.
pub fn lab_host() -> FakeHost {
    let h = FakeHost::new();
    rxe(&h, "rxe0", "vA", "fe80:0000:0000:0000:2c9b:86ff:fe72:9e0b");
    rxe(&h, "rxe1", "vB", "fe80:0000:0000:0000:a018:0fff:fe2a:3a69");
    rxe(
        &h,
        "rxe2",
        "vA-t",
        "fe80:0000:0000:0000:0c58:61ff:fee7:1c81",
    );
    rxe(
        &h,
        "rxe3",
        "vB-t",
        "fe80:0000:0000:0000:a43e:d1ff:fee9:b52e",
    );
    h.put_file(
        "/etc/network/interfaces",
        "# interfaces(5) file used by ifup(8) and ifdown(8)\n# Include files from /etc/network/interfaces.d:\nsource /etc/network/interfaces.d/*\n",
    );
    h
}

/// The lab's interfaces; `configured`: vA and vB carry their addresses.
pub fn lab_links(configured: bool) -> Vec<Value> {
    let a: &[&str] = if configured {
        &["192.168.130.10/24"]
    } else {
        &[]
    };
    let b: &[&str] = if configured {
        &["192.168.131.10/24"]
    } else {
        &[]
    };
    vec![
        json!({"ifindex": 1, "ifname": "lo", "flags": ["LOOPBACK", "UP", "LOWER_UP"],
               "mtu": 65536, "operstate": "UNKNOWN", "link_type": "loopback",
               "address": "00:00:00:00:00:00",
               "addr_info": [{"family": "inet", "local": "127.0.0.1", "prefixlen": 8,
                              "scope": "host", "label": "lo"}]}),
        link(
            2,
            "eth0",
            None,
            "52:54:00:12:34:56",
            1500,
            true,
            &["10.0.2.15/24"],
        ),
        link(
            4,
            "vA",
            Some("veth"),
            "2e:9b:86:72:9e:0b",
            1500,
            configured,
            a,
        ),
        link(
            5,
            "vA-t",
            Some("veth"),
            "0e:58:61:e7:1c:81",
            1500,
            true,
            &["192.168.130.101/24", "192.168.130.102/24"],
        ),
        link(
            6,
            "vB",
            Some("veth"),
            "a2:18:0f:2a:3a:69",
            1500,
            configured,
            b,
        ),
        link(
            7,
            "vB-t",
            Some("veth"),
            "a6:3e:d1:e9:b5:2e",
            1500,
            true,
            &["192.168.131.101/24", "192.168.131.102/24"],
        ),
    ]
}

/// The lab's host ports with the target on another machine (its addresses not local).
pub fn remote_links(configured: bool) -> Vec<Value> {
    lab_links(configured)
        .into_iter()
        .filter(|l| !l["ifname"].as_str().unwrap().ends_with("-t"))
        .collect()
}

pub fn portals() -> Value {
    json!({"iqn": "iqn.2002-09.com.lab:array", "discovery": "sendtargets", "portals": [
        {"address": "192.168.130.101", "label": "Controller A, port 1"},
        {"address": "192.168.130.102", "label": "Controller B, port 1"},
        {"address": "192.168.131.101", "label": "Controller A, port 2"},
        {"address": "192.168.131.102", "label": "Controller B, port 2"}]})
}

pub fn lab_answers() -> Value {
    json!({"version": 1, "fabric": "auto", "subnet_manager": {"run_on_host": true},
           "ports": [{"netdev": "vA", "address": "192.168.130.10/24"},
                     {"netdev": "vB", "address": "192.168.131.10/24"}],
           "target": portals()})
}

pub const HW_A: &str = "00:00:10:49:fe:80:00:00:00:00:00:00:24:8a:07:03:00:a8:0a:80";
pub const HW_B: &str = "00:00:10:89:fe:80:00:00:00:00:00:00:24:8a:07:03:00:a8:0a:81";

/// Two ConnectX-5 ports (mlx5_0, mlx5_1) with IPoIB interfaces ib0, ib1 in sysfs.
pub fn ib_sysfs(h: &FakeHost, state: &str, sm_lid: u32) {
    sysfs_port(
        h,
        "mlx5_0",
        1,
        "InfiniBand",
        "fe80:0000:0000:0000:248a:0703:00a8:0a80",
        state,
        3,
        sm_lid,
    );
    sysfs_port(
        h,
        "mlx5_1",
        1,
        "InfiniBand",
        "fe80:0000:0000:0000:248a:0703:00a8:0a81",
        state,
        4,
        sm_lid,
    );
    h.put_file("/sys/class/infiniband/mlx5_0/hca_type", "MT4119\n");
    h.put_file("/sys/class/infiniband/mlx5_1/hca_type", "MT4119\n");
}

pub fn ib_links(addrs: bool, mode: &str) -> Vec<Value> {
    let a: &[&str] = if addrs { &["192.168.130.10/24"] } else { &[] };
    let b: &[&str] = if addrs { &["192.168.131.10/24"] } else { &[] };
    vec![
        link(
            2,
            "eno1",
            None,
            "52:54:00:12:34:56",
            1500,
            true,
            &["10.0.2.15/24"],
        ),
        ipoib(5, "ib0", HW_A, 4092, mode, a),
        ipoib(6, "ib1", HW_B, 4092, mode, b),
    ]
}

pub fn ib_answers(extra_port: Value) -> Value {
    let mut a = json!({"version": 1, "fabric": "auto", "subnet_manager": {"run_on_host": true},
           "ports": [{"netdev": "ib0", "address": "192.168.130.10/24", "ipoib_mode": "datagram", "mtu": 4092},
                     {"netdev": "ib1", "address": "192.168.131.10/24", "ipoib_mode": "datagram"}],
           "target": portals()});
    if let Value::Object(m) = extra_port {
        for (k, v) in m {
            a["ports"][0][k] = v;
        }
    }
    a
}
