//! Network interfaces and RDMA links: `ip -j [-d] addr show` / `ip -j link show`, and
//! `rdma link show`.
//!
//! Contract:
//! - Pure functions from text to typed values: no I/O, and no input makes them panic.
//! - The `rdma link` parser skips what it does not recognise rather than fail.
//! - Interface names are given without the `@peer` / `@parent` suffix, which goes to
//!   [`Link::link`].
//! - The IPoIB port GUID is read from what every kernel prints (the 20-byte address), not
//!   from the `ipoib pkey ... mode ...` details, which kernels before 5.10 omit.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::ibstat::{ipoib_guid_from_hwaddr, Guid, PhysicalState, PortState};

/// Operational state (`state UP` in text, `operstate` in JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum OperState {
    /// `UP`.
    Up,
    /// `DOWN`.
    Down,
    /// `UNKNOWN` (loopback, veth in some kernels, drivers that do not report).
    Unknown,
    /// `LOWERLAYERDOWN` (e.g. a P_Key child whose parent is down).
    LowerLayerDown,
    /// `DORMANT`.
    Dormant,
    /// Anything else, as printed.
    Other(String),
}

impl OperState {
    /// Parse the state word as `ip` prints it.
    pub fn parse(s: &str) -> OperState {
        match s.trim() {
            "UP" => OperState::Up,
            "DOWN" => OperState::Down,
            "UNKNOWN" => OperState::Unknown,
            "LOWERLAYERDOWN" => OperState::LowerLayerDown,
            "DORMANT" => OperState::Dormant,
            other => OperState::Other(other.to_string()),
        }
    }
}

/// IPoIB transport mode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum IpoibMode {
    /// Unreliable datagram: MTU = IB MTU - 4 (2044, 4092). The only mode enhanced IPoIB
    /// (ConnectX-4 and newer, mlx5, RHEL 8+) supports.
    Datagram,
    /// Connected mode (MTU up to 65520).
    Connected,
    /// Anything else, as printed (`unknown`).
    Other(String),
}

impl IpoibMode {
    fn parse(s: &str) -> IpoibMode {
        match s.trim() {
            "datagram" => IpoibMode::Datagram,
            "connected" => IpoibMode::Connected,
            other => IpoibMode::Other(other.to_string()),
        }
    }
}

/// The `ipoib` details `ip -d` prints on kernels 5.10 and newer (and for netlink-created
/// children on older ones): `ipoib pkey  0x8001 mode  datagram umcast  0000`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ipoib {
    /// Partition key, with the full-membership bit (0x8000) as set.
    pub pkey: u16,
    /// Transport mode, when printed (iproute2 stops after the pkey if the kernel omits it).
    pub mode: Option<IpoibMode>,
    /// User multicast allowed, when printed.
    pub umcast: Option<bool>,
}

/// One address of an interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Addr {
    /// The local address.
    pub address: IpAddr,
    /// Prefix length (`/24`); 32 or 128 when `ip` printed none (point-to-point peers).
    pub prefix_len: u8,
    /// IPv4 broadcast (`brd`), when printed.
    pub broadcast: Option<IpAddr>,
    /// `scope` (`global`, `link`, `host`), when printed.
    pub scope: Option<String>,
    /// IPv4 label (`ib0`, `eth0:1`), when printed.
    pub label: Option<String>,
}

/// One network interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    /// Interface index.
    pub ifindex: u32,
    /// Name without any `@...` suffix.
    pub name: String,
    /// What followed `@`: the parent of a P_Key child or VLAN, the peer of a veth (`NONE` for
    /// some tunnels, `ifN` when the peer is in another namespace).
    pub link: Option<String>,
    /// Flags between `<` and `>` (`BROADCAST`, `MULTICAST`, `UP`, `LOWER_UP`).
    pub flags: Vec<String>,
    /// MTU.
    pub mtu: Option<u32>,
    /// Queueing discipline.
    pub qdisc: Option<String>,
    /// Operational state.
    pub state: Option<OperState>,
    /// Bridge or bond master.
    pub master: Option<String>,
    /// Transmit queue length (`qlen`; `txqlen` in JSON).
    pub qlen: Option<u32>,
    /// What follows `link/`: `infiniband`, `ether`, `loopback`, `none`.
    pub link_type: Option<String>,
    /// Hardware address (20 bytes for IPoIB, 6 for Ethernet).
    pub address: Option<String>,
    /// Broadcast hardware address. For IPoIB, bytes 8-9 are the P_Key.
    pub broadcast: Option<String>,
    /// Alternative names (`altname ibp47s0f0`).
    pub altnames: Vec<String>,
    /// Link kind from `-d` (`ipoib`, `veth`, `vlan`, `bond`); `None` without `-d` and for
    /// IPoIB base interfaces on kernels before 5.10.
    pub kind: Option<String>,
    /// IPoIB details, when printed.
    pub ipoib: Option<Ipoib>,
    /// Addresses (`ip addr` only; empty for `ip link`).
    pub addrs: Vec<Addr>,
}

impl Link {
    /// A link with only its index, name and parent known (the rest empty).
    pub fn new(ifindex: u32, name: &str, link: Option<&str>) -> Link {
        Link {
            ifindex,
            name: name.to_string(),
            link: link.map(str::to_string),
            flags: Vec::new(),
            mtu: None,
            qdisc: None,
            state: None,
            master: None,
            qlen: None,
            link_type: None,
            address: None,
            broadcast: None,
            altnames: Vec::new(),
            kind: None,
            ipoib: None,
            addrs: Vec::new(),
        }
    }

    /// Administratively up (`UP` among the flags).
    pub fn is_up(&self) -> bool {
        self.flags.iter().any(|f| f == "UP")
    }

    /// An IPoIB interface (`link/infiniband`).
    pub fn is_ipoib(&self) -> bool {
        self.link_type.as_deref() == Some("infiniband")
    }

    /// The port GUID of an IPoIB interface: the last 8 bytes of its 20-byte address.
    /// This, not the whole address, is what identifies the port across reboots.
    pub fn port_guid(&self) -> Option<Guid> {
        if !self.is_ipoib() {
            return None;
        }
        ipoib_guid_from_hwaddr(self.address.as_deref()?)
    }
}

/// Every adjacent (word, next word): `mtu 1500 qdisc mq` gives (mtu, 1500), (1500, qdisc), ...
/// Callers match on the keys they know, so the pairs that straddle two attributes are inert.
fn pairs(tokens: &[&str]) -> Vec<(String, String)> {
    tokens
        .windows(2)
        .map(|w| (w[0].to_string(), w[1].to_string()))
        .collect()
}

fn hex_u16(s: &str) -> Option<u16> {
    let h = s.strip_prefix("0x").unwrap_or(s);
    if h.is_empty() || h.len() > 4 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u16::from_str_radix(h, 16).ok()
}

// ---------------------------------------------------------------------------------------------
// JSON

#[derive(Deserialize)]
struct JLink {
    ifindex: Option<u32>,
    ifname: Option<String>,
    link: Option<String>,
    #[serde(default)]
    flags: Vec<String>,
    mtu: Option<u32>,
    qdisc: Option<String>,
    operstate: Option<String>,
    master: Option<String>,
    txqlen: Option<u32>,
    link_type: Option<String>,
    address: Option<String>,
    broadcast: Option<String>,
    #[serde(default)]
    altnames: Vec<String>,
    linkinfo: Option<JLinkInfo>,
    #[serde(default)]
    addr_info: Vec<JAddr>,
}

#[derive(Deserialize)]
struct JLinkInfo {
    info_kind: Option<String>,
    info_data: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct JAddr {
    local: Option<String>,
    prefixlen: Option<u8>,
    broadcast: Option<String>,
    scope: Option<String>,
    label: Option<String>,
}

/// iproute2 writes the IPoIB P_Key under the JSON key `"key"` (as `"0x8001"`) and umcast as
/// `"0000"`; `"pkey"` is accepted too in case that is ever corrected.
fn ipoib_from_json(data: &serde_json::Value) -> Option<Ipoib> {
    let s = |k: &str| data.get(k).and_then(|v| v.as_str());
    let pkey = s("key").or_else(|| s("pkey")).and_then(hex_u16)?;
    Some(Ipoib {
        pkey,
        mode: s("mode").map(IpoibMode::parse),
        umcast: s("umcast").and_then(hex_u16).map(|u| u != 0),
    })
}

/// Parse `ip -j [-d] addr show` (or `ip -j [-d] link show`) output. Entries without
/// `ifname` (old iproute2 prints `{}` for filtered-out links) are skipped.
pub fn parse_ip_j_addr(json: &str) -> Result<Vec<Link>, serde_json::Error> {
    let raw: Vec<JLink> = serde_json::from_str(json)?;
    Ok(raw
        .into_iter()
        .filter_map(|j| {
            let name = j.ifname?;
            let mut l = Link::new(j.ifindex.unwrap_or(0), &name, j.link.as_deref());
            l.flags = j.flags;
            l.mtu = j.mtu;
            l.qdisc = j.qdisc;
            l.state = j.operstate.as_deref().map(OperState::parse);
            l.master = j.master;
            l.qlen = j.txqlen;
            l.link_type = j.link_type;
            l.address = j.address;
            l.broadcast = j.broadcast;
            l.altnames = j.altnames;
            if let Some(info) = j.linkinfo {
                if info.info_kind.as_deref() == Some("ipoib") {
                    l.ipoib = info.info_data.as_ref().and_then(ipoib_from_json);
                }
                l.kind = info.info_kind;
            }
            l.addrs = j
                .addr_info
                .into_iter()
                .filter_map(|a| {
                    let address: IpAddr = a.local?.parse().ok()?;
                    let max = if address.is_ipv4() { 32 } else { 128 };
                    Some(Addr {
                        address,
                        prefix_len: a.prefixlen.filter(|p| *p <= max).unwrap_or(max),
                        broadcast: a.broadcast.and_then(|b| b.parse().ok()),
                        scope: a.scope,
                        label: a.label,
                    })
                })
                .collect();
            Some(l)
        })
        .collect())
}

// ---------------------------------------------------------------------------------------------
// rdma link

/// One RDMA port as `rdma link show` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RdmaLink {
    /// RDMA device (`rxe0`, `mlx5_0`).
    pub device: String,
    /// Port number.
    pub port: u8,
    /// `subnet_prefix` (InfiniBand ports).
    pub subnet_prefix: Option<String>,
    /// `lid` (InfiniBand ports).
    pub lid: Option<u32>,
    /// `sm_lid` (InfiniBand ports).
    pub sm_lid: Option<u32>,
    /// `lmc` (InfiniBand ports).
    pub lmc: Option<u8>,
    /// `state`.
    pub state: Option<PortState>,
    /// `physical_state`.
    pub physical_state: Option<PhysicalState>,
    /// `netdev`: the Ethernet netdev of a RoCE port (where its IP address lives) or the IPoIB
    /// interface of an InfiniBand port.
    pub netdev: Option<String>,
    /// `netdev_index` (`-d`).
    pub netdev_index: Option<u32>,
}

/// Parse `rdma link show` in both layouts: `link rxe0/1 state ACTIVE ...` (iproute2 5.x and
/// newer) and `0/1: mlx5_0/1: subnet_prefix ... state ACTIVE ...` (older). `-d` capability
/// lines and anything else unrecognised are skipped.
pub fn parse_rdma_link(text: &str) -> Vec<RdmaLink> {
    text.lines()
        .filter_map(|line| {
            let toks: Vec<&str> = line.split_whitespace().collect();
            let (name, rest) = match toks.as_slice() {
                ["link", name, rest @ ..] => (*name, rest),
                [idx, name, rest @ ..]
                    if idx.ends_with(':') && idx.contains('/') && name.ends_with(':') =>
                {
                    (name.trim_end_matches(':'), rest)
                }
                _ => return None,
            };
            let (device, port) = name.rsplit_once('/')?;
            if device.is_empty() {
                return None;
            }
            let mut l = RdmaLink {
                device: device.to_string(),
                port: port.parse().ok()?,
                subnet_prefix: None,
                lid: None,
                sm_lid: None,
                lmc: None,
                state: None,
                physical_state: None,
                netdev: None,
                netdev_index: None,
            };
            for (k, v) in pairs(rest) {
                match k.as_str() {
                    "subnet_prefix" => l.subnet_prefix = Some(v),
                    "lid" => l.lid = v.parse().ok(),
                    "sm_lid" => l.sm_lid = v.parse().ok(),
                    "lmc" => l.lmc = v.parse().ok(),
                    "state" => l.state = Some(PortState::parse(&v)),
                    "physical_state" => l.physical_state = Some(PhysicalState::parse(&v)),
                    "netdev" => l.netdev = Some(v),
                    "netdev_index" => l.netdev_index = v.parse().ok(),
                    _ => {}
                }
            }
            Some(l)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::steps::parse::fixtures::{files_below, lab_fixture, mutate, shared_dir, Rng};

    fn lab(name: &str) -> Option<(String, String, Option<i32>)> {
        lab_fixture(name)
    }

    fn g(s: &str) -> Guid {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    // ---- ip -j ---------------------------------------------------------------------------------

    /// Shape of iproute2 6.1 `ip -j -d addr show` (loopback and eth0 entries as printed on a
    /// Debian 12 host, trimmed), plus an IPoIB child written here from iproute2's
    /// ipoib_print_opt: the P_Key goes under the key "key" as a string, umcast as "0000".
    const IP_J: &str = r#"[{"ifindex":1,"ifname":"lo","flags":["LOOPBACK","UP","LOWER_UP"],"mtu":65536,"qdisc":"noqueue","operstate":"UNKNOWN","group":"default","txqlen":1000,"link_type":"loopback","address":"00:00:00:00:00:00","broadcast":"00:00:00:00:00:00","promiscuity":0,"min_mtu":0,"max_mtu":0,"addr_info":[{"family":"inet","local":"127.0.0.1","prefixlen":8,"scope":"host","label":"lo","valid_life_time":4294967295,"preferred_life_time":4294967295},{"family":"inet6","local":"::1","prefixlen":128,"scope":"host","valid_life_time":4294967295,"preferred_life_time":4294967295}]},{"ifindex":4,"ifname":"eth0","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"mtu":1400,"qdisc":"pfifo_fast","operstate":"UP","group":"default","txqlen":1000,"link_type":"ether","address":"02:fc:00:00:00:01","broadcast":"ff:ff:ff:ff:ff:ff","parentbus":"virtio","parentdev":"virtio2","addr_info":[{"family":"inet","local":"192.0.2.2","prefixlen":24,"broadcast":"192.0.2.255","scope":"global","label":"eth0","valid_life_time":4294967295,"preferred_life_time":4294967295},{"family":"inet6","local":"fe80::fc:ff:fe00:1","prefixlen":64,"scope":"link","valid_life_time":4294967295,"preferred_life_time":4294967295}]},{},{"ifindex":28,"ifname":"mlx5_ib0.8001","link":"mlx5_ib0","flags":["BROADCAST","MULTICAST"],"mtu":4092,"qdisc":"noop","operstate":"DOWN","txqlen":256,"link_type":"infiniband","address":"00:00:1f:e3:fe:80:00:00:00:00:00:00:24:8a:07:03:00:a3:19:64","broadcast":"00:ff:ff:ff:ff:12:40:1b:80:01:00:00:00:00:00:00:ff:ff:ff:ff","linkinfo":{"info_kind":"ipoib","info_data":{"key":"0x8001","mode":"datagram","umcast":"0000"}},"altnames":["ibp7s0f0.8001"],"addr_info":[]}]"#;

    #[test]
    fn ip_j_addr() {
        let links = parse_ip_j_addr(IP_J).unwrap();
        let names: Vec<&str> = links.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["lo", "eth0", "mlx5_ib0.8001"]);
        assert_eq!(links[0].addrs[0].label.as_deref(), Some("lo"));
        let eth0 = &links[1];
        assert_eq!(
            (eth0.state.clone(), eth0.mtu, eth0.qlen),
            (Some(OperState::Up), Some(1400), Some(1000))
        );
        assert_eq!(
            eth0.addrs[0],
            Addr {
                address: ip("192.0.2.2"),
                prefix_len: 24,
                broadcast: Some(ip("192.0.2.255")),
                scope: Some("global".into()),
                label: Some("eth0".into()),
            }
        );
        let child = &links[2];
        assert_eq!(
            (child.ifindex, child.link.as_deref(), child.kind.as_deref()),
            (28, Some("mlx5_ib0"), Some("ipoib"))
        );
        assert_eq!(
            child.ipoib,
            Some(Ipoib {
                pkey: 0x8001,
                mode: Some(IpoibMode::Datagram),
                umcast: Some(false)
            })
        );
        assert_eq!(child.port_guid(), Some(g("0x248a070300a31964")));
        assert_eq!(child.altnames, ["ibp7s0f0.8001"]);
        assert!(parse_ip_j_addr("not json").is_err());
        assert!(parse_ip_j_addr("{}").is_err());
    }

    // ---- rdma link -----------------------------------------------------------------------------

    #[test]
    fn lab_rdma_link_maps_devices_to_netdevs() {
        let Some((cmd, body, status)) = lab("rdma-link-show.txt") else {
            return;
        };
        assert_eq!((cmd.as_str(), status), ("rdma link show", Some(0)));
        let links = parse_rdma_link(&body);
        let map: Vec<(&str, u8, Option<&str>)> = links
            .iter()
            .map(|l| (l.device.as_str(), l.port, l.netdev.as_deref()))
            .collect();
        assert_eq!(
            map,
            [
                ("rxe0", 1, Some("vA")),
                ("rxe1", 1, Some("vB")),
                ("rxe2", 1, Some("vA-t")),
                ("rxe3", 1, Some("vB-t"))
            ]
        );
        assert!(links.iter().all(|l| l.state == Some(PortState::Active)
            && l.physical_state == Some(PhysicalState::LinkUp)));
        assert!(links
            .iter()
            .all(|l| l.lid.is_none() && l.subnet_prefix.is_none()));
    }

    #[test]
    fn rdma_link_old_layout_and_infiniband_fields() {
        // Layouts as iproute2's rdma/link.c prints them ("%u/%u: %s: " before 5.x).
        let t = "0/1: mlx5_0/1: subnet_prefix fe80:0000:0000:0000 lid 13 sm_lid 1 lmc 0 state ACTIVE physical_state LINK_UP netdev ib0 netdev_index 5 \n    caps: <SM, CM>\n1/1: mlx5_1/1: state DOWN physical_state DISABLED \n";
        let links = parse_rdma_link(t);
        assert_eq!(
            links[0],
            RdmaLink {
                device: "mlx5_0".into(),
                port: 1,
                subnet_prefix: Some("fe80:0000:0000:0000".into()),
                lid: Some(13),
                sm_lid: Some(1),
                lmc: Some(0),
                state: Some(PortState::Active),
                physical_state: Some(PhysicalState::LinkUp),
                netdev: Some("ib0".into()),
                netdev_index: Some(5),
            }
        );
        assert_eq!(
            (links[1].state.clone(), links[1].netdev.clone()),
            (Some(PortState::Down), None)
        );
        assert_eq!(links.len(), 2);
        // An ip link header line is not an RDMA link.
        assert!(parse_rdma_link("4: vA@vA-t: <UP> mtu 1500\n").is_empty());
    }

    // ---- never panics --------------------------------------------------------------------------

    const PIECES: [&str; 22] = [
        "\n",
        "    ",
        " ",
        ":",
        ": <",
        ">",
        "@",
        "/",
        "link/infiniband ",
        "brd ",
        "ipoib pkey ",
        "0x",
        "inet ",
        "inet6 ",
        "/999",
        "link ",
        "rxe0/",
        "99999999999",
        "altname",
        "é",
        "\u{0}",
        "{\"ifname\":",
    ];

    fn run_all(text: &str) {
        if let Ok(links) = parse_ip_j_addr(text) {
            for l in links {
                let _ = (l.port_guid(), l.is_up());
            }
        }
        let _ = parse_rdma_link(text);
    }

    #[test]
    fn garbled_input_never_panics() {
        let mut seeds: Vec<String> = vec![
            IP_J.to_string(),
            "7: ib0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 2044 qdisc mq state UP group default qlen 256\n    link/infiniband a0:00:02:20:fe:80:00:00:00:00:00:00:00:02:c9:03:00:ea:99:41 brd 00:ff:ff:ff:ff:12:40:1b:ff:ff:00:00:00:00:00:00:ff:ff:ff:ff\n    ipoib pkey  0xffff mode  datagram umcast  0000\n    inet 192.168.33.11/24 brd 192.168.33.255 scope global ib0\n".into(),
            "link rxe0/1 state ACTIVE physical_state LINK_UP netdev vA \n".into(),
        ];
        if let Some(dir) = shared_dir("real") {
            for sub in ["ip-d-link-show", "ip-addr-show"] {
                seeds.extend(files_below(&dir.join(sub)).into_iter().map(|(_, t)| t));
            }
        }
        let mut rng = Rng(0x1b0e_5eed_0000_0001);
        for seed in &seeds {
            run_all(seed);
            for _ in 0..300 {
                run_all(&mutate(&mut rng, seed, &PIECES));
            }
        }
        for _ in 0..500 {
            let s: String = (0..rng.below(200))
                .map(|_| PIECES[rng.below(PIECES.len())])
                .collect();
            run_all(&s);
        }
    }
}
