//! Network interfaces and RDMA links: `ip link` / `ip -d link show`, `ip addr show`,
//! `ip -j [-d] addr show` / `ip -j link show`, and `rdma link show`.
//!
//! Contract:
//! - Pure functions from text to typed values: no I/O, and no input makes them panic.
//! - Text parsers skip what they do not recognise (error lines such as `Device "x" does not
//!   exist.`, statistics, unknown attributes) rather than fail: an interface is reported from
//!   its header line on, with whatever of its detail lines could be read.
//! - Interface names are given without the `@peer` / `@parent` suffix, which goes to
//!   [`Link::link`].
//! - IPoIB facts the wizard needs (port GUID, P_Key) are read from what every kernel prints
//!   (the 20-byte address and its broadcast) when the `ipoib pkey ... mode ...` detail line,
//!   which kernels before 5.10 omit, is missing.

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
    fn new(ifindex: u32, name: &str, link: Option<&str>) -> Link {
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

    /// The P_Key of an IPoIB interface: from the `ipoib` detail line when printed, else from
    /// bytes 8-9 of the broadcast address (`...:12:40:1b:80:01:...` -> 0x8001), which every
    /// kernel prints.
    pub fn pkey(&self) -> Option<u16> {
        if !self.is_ipoib() {
            return None;
        }
        if let Some(i) = &self.ipoib {
            return Some(i.pkey);
        }
        let brd: Vec<&str> = self.broadcast.as_deref()?.split(':').collect();
        if brd.len() != 20 {
            return None;
        }
        let hi = u8::from_str_radix(brd[8], 16).ok()?;
        let lo = u8::from_str_radix(brd[9], 16).ok()?;
        Some(u16::from_be_bytes([hi, lo]))
    }
}

// ---------------------------------------------------------------------------------------------
// text

/// `4: vA@vA-t: <BROADCAST,...> mtu 1500 ...` -> (index, name, link, flags, rest).
fn link_header(line: &str) -> Option<(u32, &str, Option<&str>, &str, &str)> {
    let (idx, rest) = line.split_once(": ")?;
    let ifindex: u32 = idx.parse().ok()?;
    let (full_name, rest) = rest.split_once(": <")?;
    let (flags, rest) = rest.split_once('>')?;
    let (name, link) = match full_name.split_once('@') {
        Some((n, l)) => (n, Some(l)),
        None => (full_name, None),
    };
    if name.is_empty() || name.contains(char::is_whitespace) || link == Some("") {
        return None;
    }
    Some((ifindex, name, link, flags, rest))
}

/// Every adjacent (word, next word): `mtu 1500 qdisc mq` gives (mtu, 1500), (1500, qdisc), ...
/// Callers match on the keys they know, so the pairs that straddle two attributes are inert.
fn pairs(tokens: &[&str]) -> Vec<(String, String)> {
    tokens
        .windows(2)
        .map(|w| (w[0].to_string(), w[1].to_string()))
        .collect()
}

/// First words of detail lines that are not a link kind.
const NOT_A_KIND: [&str; 10] = [
    "altname",
    "inet",
    "inet6",
    "valid_lft",
    "alias",
    "vf",
    "prop",
    "addrgenmode",
    "link-netnsid",
    "link-netns",
];

fn hex_u16(s: &str) -> Option<u16> {
    let h = s.strip_prefix("0x").unwrap_or(s);
    if h.is_empty() || h.len() > 4 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u16::from_str_radix(h, 16).ok()
}

fn ipoib_from_pairs(tokens: &[&str]) -> Option<Ipoib> {
    let value = |k: &str| tokens.windows(2).find(|w| w[0] == k).map(|w| w[1]);
    Some(Ipoib {
        pkey: hex_u16(value("pkey")?)?,
        mode: value("mode").map(IpoibMode::parse),
        umcast: value("umcast").and_then(hex_u16).map(|u| u != 0),
    })
}

fn parse_addr_line(tokens: &[&str], link_name: &str) -> Option<Addr> {
    let (ip, prefix) = match tokens.get(1)?.split_once('/') {
        Some((ip, p)) => (ip.parse::<IpAddr>().ok()?, Some(p.parse::<u8>().ok()?)),
        None => (tokens[1].parse::<IpAddr>().ok()?, None),
    };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let prefix_len = prefix.unwrap_or(max);
    if prefix_len > max {
        return None;
    }
    let value = |k: &str| tokens.windows(2).find(|w| w[0] == k).map(|w| w[1]);
    // ip prints the IPv4 label last; it is the interface name or `name:alias`.
    let label = match tokens.last() {
        Some(l) if tokens[0] == "inet" && tokens.len() > 2 && l.starts_with(link_name) => {
            Some(l.to_string())
        }
        _ => None,
    };
    Some(Addr {
        address: ip,
        prefix_len,
        broadcast: value("brd").and_then(|b| b.parse().ok()),
        scope: value("scope").map(str::to_string),
        label,
    })
}

fn parse_text(text: &str) -> Vec<Link> {
    let mut links: Vec<Link> = Vec::new();
    for raw in text.lines() {
        if !raw.starts_with(char::is_whitespace) {
            let Some((ifindex, name, link, flags, rest)) = link_header(raw.trim_end()) else {
                continue;
            };
            let mut l = Link::new(ifindex, name, link);
            l.flags = flags
                .split(',')
                .filter(|f| !f.is_empty())
                .map(str::to_string)
                .collect();
            let toks: Vec<&str> = rest.split_whitespace().collect();
            for (k, v) in pairs(&toks) {
                match k.as_str() {
                    "mtu" => l.mtu = l.mtu.or(v.parse().ok()),
                    "qdisc" => l.qdisc = l.qdisc.take().or(Some(v)),
                    "state" => l.state = l.state.take().or(Some(OperState::parse(&v))),
                    "master" => l.master = l.master.take().or(Some(v)),
                    "qlen" => l.qlen = l.qlen.or(v.parse().ok()),
                    _ => {}
                }
            }
            links.push(l);
            continue;
        }
        let Some(l) = links.last_mut() else { continue };
        let toks: Vec<&str> = raw.split_whitespace().collect();
        let Some(first) = toks.first().copied() else {
            continue;
        };
        if let Some(kind) = first.strip_prefix("link/") {
            l.link_type = Some(kind.to_string());
            if let Some(a) = toks.get(1).filter(|a| a.contains(':')) {
                l.address = Some(a.to_string());
            }
            if let Some(w) = toks.windows(2).find(|w| w[0] == "brd") {
                l.broadcast = Some(w[1].to_string());
            }
        } else if first == "altname" {
            l.altnames.extend(toks.get(1).map(|s| s.to_string()));
        } else if first == "inet" || first == "inet6" {
            let name = l.name.clone();
            l.addrs.extend(parse_addr_line(&toks, &name));
        } else if l.kind.is_none()
            && !NOT_A_KIND.contains(&first)
            && first.starts_with(|c: char| c.is_ascii_lowercase())
            && first
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            l.kind = Some(first.to_string());
            if first == "ipoib" {
                l.ipoib = ipoib_from_pairs(&toks[1..]);
            }
        }
    }
    links
}

/// Parse `ip link show` / `ip -d link show` output (one or many interfaces).
pub fn parse_ip_d_link(text: &str) -> Vec<Link> {
    parse_text(text)
}

/// Parse `ip addr show` / `ip -d addr show` output: interfaces with their addresses.
/// (`ip addr | grep ...` excerpts parse too, as far as their lines go.)
pub fn parse_ip_addr(text: &str) -> Vec<Link> {
    parse_text(text)
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
    use crate::steps::parse::fixtures::{
        files_below, lab_fixture, mutate, real_fixture, shared_dir, Rng,
    };
    use crate::steps::parse::ibstat::parse_ibstat;

    fn real(sub: &str, name: &str) -> Option<String> {
        real_fixture(sub, name)
    }

    fn lab(name: &str) -> Option<(String, String, Option<i32>)> {
        lab_fixture(name)
    }

    fn g(s: &str) -> Guid {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn flags(l: &Link) -> Vec<&str> {
        l.flags.iter().map(String::as_str).collect()
    }

    // ---- ip -d link show ---------------------------------------------------------------------

    #[test]
    fn ipoib_base_with_details_line() {
        let Some(t) = real(
            "ip-d-link-show",
            "linux-rdma-ipoib-base-mlx5_ib0-pkey-0xffff-datagram.txt",
        ) else {
            return;
        };
        let links = parse_ip_d_link(&t);
        let [l] = links.as_slice() else {
            panic!("{links:?}")
        };
        assert_eq!(
            (l.ifindex, l.name.as_str(), l.link.as_deref()),
            (29, "mlx5_ib0", None)
        );
        assert_eq!(flags(l), ["BROADCAST", "MULTICAST", "UP", "LOWER_UP"]);
        assert!(l.is_up() && l.is_ipoib());
        assert_eq!(
            (l.mtu, l.qdisc.as_deref(), l.state.clone(), l.qlen),
            (Some(2044), Some("mq"), Some(OperState::Up), Some(256))
        );
        assert_eq!(
            l.address.as_deref(),
            Some("00:00:1f:e4:fe:80:00:00:00:00:00:00:24:8a:07:03:00:a3:19:64")
        );
        assert_eq!(
            l.broadcast.as_deref(),
            Some("00:ff:ff:ff:ff:12:40:1b:ff:ff:00:00:00:00:00:00:ff:ff:ff:ff")
        );
        assert_eq!(l.kind.as_deref(), Some("ipoib"));
        assert_eq!(
            l.ipoib,
            Some(Ipoib {
                pkey: 0xffff,
                mode: Some(IpoibMode::Datagram),
                umcast: Some(false)
            })
        );
        assert_eq!(
            (l.port_guid(), l.pkey()),
            (Some(g("0x248a070300a31964")), Some(0xffff))
        );
        assert!(l.altnames.is_empty() && l.addrs.is_empty());
    }

    #[test]
    fn ipoib_base_on_old_kernel_has_no_details_but_pkey_from_broadcast() {
        let Some(t) = real(
            "ip-d-link-show",
            "linux-rdma-ipoib-base-mlx5_ib0-unpatched-altname.txt",
        ) else {
            return;
        };
        let links = parse_ip_d_link(&t);
        let [l] = links.as_slice() else {
            panic!("{links:?}")
        };
        assert_eq!((l.ifindex, l.name.as_str()), (19, "mlx5_ib0"));
        assert_eq!((l.kind.clone(), l.ipoib.clone()), (None, None));
        assert_eq!(l.altnames, ["ibp7s0f0"]);
        assert_eq!(l.pkey(), Some(0xffff));
        // Different QPN bytes from the patched capture, same port GUID.
        assert!(l.address.as_deref().unwrap().starts_with("00:00:11:79:"));
        assert_eq!(l.port_guid(), Some(g("0x248a070300a31964")));
    }

    #[test]
    fn ipoib_pkey_children() {
        if let Some(t) = real(
            "ip-d-link-show",
            "linux-rdma-ipoib-child-8001-netlink-datagram-down.txt",
        ) {
            let l = &parse_ip_d_link(&t)[0];
            assert_eq!(
                (l.ifindex, l.name.as_str(), l.link.as_deref()),
                (28, "mlx5_ib0.8001", Some("mlx5_ib0"))
            );
            assert_eq!(flags(l), ["BROADCAST", "MULTICAST"]);
            assert!(!l.is_up());
            assert_eq!(
                (l.mtu, l.state.clone(), l.qdisc.as_deref()),
                (Some(4092), Some(OperState::Down), Some("noop"))
            );
            assert_eq!(
                l.ipoib,
                Some(Ipoib {
                    pkey: 0x8001,
                    mode: Some(IpoibMode::Datagram),
                    umcast: Some(false)
                })
            );
            assert_eq!(
                (l.pkey(), l.port_guid()),
                (Some(0x8001), Some(g("0x248a070300a31964")))
            );
        }
        if let Some(t) = real(
            "ip-d-link-show",
            "linux-rdma-ipoib-child-8002-sysfs-no-ipoib-line.txt",
        ) {
            let l = &parse_ip_d_link(&t)[0];
            assert_eq!(
                (l.ifindex, l.name.as_str(), l.link.as_deref()),
                (20, "mlx5_ib0.8002", Some("mlx5_ib0"))
            );
            assert_eq!(
                (l.mtu, l.state.clone(), l.ipoib.clone()),
                (Some(2044), Some(OperState::Up), None)
            );
            assert_eq!(
                (l.pkey(), l.port_guid()),
                (Some(0x8002), Some(g("0x248a070300a31964")))
            );
        }
    }

    #[test]
    fn lab_veth_with_peer_and_kind() {
        let Some((cmd, body, status)) = lab("ip-d-link-show-vA.txt") else {
            return;
        };
        assert_eq!((cmd.as_str(), status), ("ip -d link show vA", Some(0)));
        let links = parse_ip_d_link(&body);
        let [l] = links.as_slice() else {
            panic!("{links:?}")
        };
        assert_eq!(
            (l.ifindex, l.name.as_str(), l.link.as_deref()),
            (4, "vA", Some("vA-t"))
        );
        assert_eq!(
            (l.link_type.as_deref(), l.address.as_deref()),
            (Some("ether"), Some("2e:9b:86:72:9e:0b"))
        );
        assert_eq!(
            (l.kind.as_deref(), l.mtu, l.state.clone()),
            (Some("veth"), Some(1500), Some(OperState::Up))
        );
        assert_eq!(
            (l.port_guid(), l.pkey(), l.ipoib.clone()),
            (None, None, None)
        );
    }

    // ---- ip addr show ------------------------------------------------------------------------

    #[test]
    fn ip_a_full_host_with_ipoib_down() {
        let Some(t) = real(
            "ip-addr-show",
            "felixfu-full-ip-a-with-ib0-down-mtu4092.txt",
        ) else {
            return;
        };
        let links = parse_ip_addr(&t);
        let names: Vec<&str> = links.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["lo", "eno1", "eno2", "ens11f0", "ens11f1", "ib0"]);
        let lo = &links[0];
        assert_eq!(
            (lo.link_type.as_deref(), lo.state.clone()),
            (Some("loopback"), Some(OperState::Unknown))
        );
        assert_eq!(
            lo.addrs,
            [
                Addr {
                    address: ip("127.0.0.1"),
                    prefix_len: 8,
                    broadcast: None,
                    scope: Some("host".into()),
                    label: Some("lo".into())
                },
                Addr {
                    address: ip("::1"),
                    prefix_len: 128,
                    broadcast: None,
                    scope: Some("host".into()),
                    label: None
                },
            ]
        );
        let eno1 = &links[1];
        assert_eq!(eno1.addrs[0].address, ip("192.168.50.11"));
        assert_eq!(
            (eno1.addrs[0].prefix_len, eno1.addrs[0].broadcast),
            (24, Some(ip("192.168.50.255")))
        );
        assert_eq!(eno1.addrs[1].scope.as_deref(), Some("link"));
        let ib0 = &links[5];
        assert_eq!(
            (ib0.ifindex, ib0.mtu, ib0.state.clone()),
            (6, Some(4092), Some(OperState::Down))
        );
        assert!(ib0.addrs.is_empty() && !ib0.is_up());
        assert_eq!(
            (ib0.port_guid(), ib0.pkey()),
            (Some(g("0x0002c90300ea9941")), Some(0xffff))
        );
        // The same host's ibstat shows that port GUID.
        if let Some(s) = real(
            "ibstat",
            "felixfu-cx3-mt4099-single-port-rate-40-fdr10-suffix.txt",
        ) {
            assert_eq!(
                ib0.port_guid(),
                Some(parse_ibstat(&s).unwrap()[0].ports[0].port_guid)
            );
        }
    }

    #[test]
    fn ip_a_grep_excerpt() {
        let Some(t) = real("ip-addr-show", "felixfu-ib0-up-grep-ib.txt") else {
            return;
        };
        let links = parse_ip_addr(&t);
        let [l] = links.as_slice() else {
            panic!("{links:?}")
        };
        assert_eq!((l.ifindex, l.name.as_str(), l.mtu), (7, "ib0", Some(2044)));
        assert_eq!(
            l.addrs,
            [Addr {
                address: ip("192.168.33.11"),
                prefix_len: 24,
                broadcast: Some(ip("192.168.33.255")),
                scope: Some("global".into()),
                label: Some("ib0".into()),
            }]
        );
        // Flags byte a0 here, 00 elsewhere: the GUID does not care.
        assert_eq!(l.port_guid(), Some(g("0x0002c90300ea9941")));
    }

    #[test]
    fn ip_a_two_ipoib_ports_with_altnames() {
        let Some(t) = real(
            "ip-addr-show",
            "scaleoutsean-ipoib-cx5-two-ports-mtu2044-altname.txt",
        ) else {
            return;
        };
        let links = parse_ip_addr(&t);
        let names: Vec<&str> = links.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["ibs1f0", "ibs1f1"]);
        assert_eq!(links[0].altnames, ["ibp47s0f0"]);
        assert_eq!(links[1].altnames, ["ibp47s0f1"]);
        assert_eq!(links[0].port_guid(), Some(g("0x1c34da03007ca282")));
        assert_eq!(links[1].port_guid(), Some(g("0x1c34da03007ca283")));
        let addrs: Vec<(IpAddr, u8)> = links
            .iter()
            .map(|l| (l.addrs[0].address, l.addrs[0].prefix_len))
            .collect();
        assert_eq!(
            addrs,
            [(ip("192.168.100.10"), 24), (ip("192.168.100.20"), 24)]
        );
        assert!(links
            .iter()
            .all(|l| l.mtu == Some(2044) && l.pkey() == Some(0xffff)));
    }

    #[test]
    fn every_ip_fixture_parses_with_links() {
        let Some(dir) = shared_dir("real") else {
            return;
        };
        let mut seen = 0;
        for sub in ["ip-d-link-show", "ip-addr-show"] {
            for (path, text) in files_below(&dir.join(sub)) {
                let links = parse_ip_addr(&text);
                assert!(!links.is_empty(), "{}", path.display());
                for l in &links {
                    assert!(
                        l.link_type.is_some() && l.mtu.is_some() && l.state.is_some(),
                        "{}: {l:?}",
                        path.display()
                    );
                    if l.is_ipoib() {
                        assert!(
                            l.port_guid().is_some() && l.pkey().is_some(),
                            "{}: {}",
                            path.display(),
                            l.name
                        );
                    }
                }
                // The number of header lines is the number of links.
                let headers = text
                    .lines()
                    .filter(|l| {
                        l.split(':')
                            .next()
                            .is_some_and(|n| n.parse::<u32>().is_ok())
                    })
                    .count();
                assert_eq!(links.len(), headers, "{}", path.display());
                seen += 1;
            }
        }
        assert!(seen >= 7, "{seen}");
        let (_, body, _) = lab("ip-d-link-show-vA.txt").unwrap();
        assert_eq!(parse_ip_d_link(&body).len(), 1);
    }

    #[test]
    fn text_edge_cases() {
        assert!(parse_ip_addr("Device \"ib9\" does not exist.\n").is_empty());
        let t = "3: ib0.8001@ib0: <BROADCAST,MULTICAST> mtu 2044 master bond0 state LOWERLAYERDOWN\n    link/infiniband 80:00:00:49:fe:80:00:00:00:00:00:00:00:02:c9:03:00:ea:99:41 brd 00:ff:ff:ff:ff:12:40:1b:80:01:00:00:00:00:00:00:ff:ff:ff:ff\n    ipoib pkey  0x8001\n    inet 10.0.0.1 peer 10.0.0.2/32 scope global ib0.8001\n    inet 10.0.0.5/33 scope global ib0.8001\n";
        let l = &parse_ip_addr(t)[0];
        assert_eq!(
            (l.master.as_deref(), l.state.clone()),
            (Some("bond0"), Some(OperState::LowerLayerDown))
        );
        assert_eq!(
            l.ipoib,
            Some(Ipoib {
                pkey: 0x8001,
                mode: None,
                umcast: None
            })
        );
        // A peer address has no prefix of its own; an impossible prefix is dropped.
        assert_eq!(l.addrs.len(), 1);
        assert_eq!(
            (l.addrs[0].address, l.addrs[0].prefix_len),
            (ip("10.0.0.1"), 32)
        );
        assert_eq!(l.addrs[0].label.as_deref(), Some("ib0.8001"));
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
        assert_eq!(
            (child.port_guid(), child.pkey()),
            (Some(g("0x248a070300a31964")), Some(0x8001))
        );
        assert_eq!(child.altnames, ["ibp7s0f0.8001"]);
        assert!(parse_ip_j_addr("not json").is_err());
        assert!(parse_ip_j_addr("{}").is_err());
    }

    #[test]
    fn ip_j_and_text_agree_on_the_same_interface() {
        let Some(t) = real(
            "ip-d-link-show",
            "linux-rdma-ipoib-child-8001-netlink-datagram-down.txt",
        ) else {
            return;
        };
        let text = &parse_ip_d_link(&t)[0];
        let json = &parse_ip_j_addr(IP_J).unwrap()[2];
        let strip = |l: &Link| Link {
            altnames: vec![],
            qdisc: None,
            ..l.clone()
        };
        assert_eq!(strip(text), strip(json));
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
    fn lab_roce_chain_rdma_link_to_netdev_mac_to_port_guid() {
        // rdma link: rxe0 -> vA; ip link: vA's MAC; ibstat: rxe0's port GUID is that MAC's EUI-64.
        let Some((_, rdma, _)) = lab("rdma-link-show.txt") else {
            return;
        };
        let (_, ipl, _) = lab("ip-d-link-show-vA.txt").unwrap();
        let (_, ibs, _) = lab("ibstat.txt").unwrap();
        let rxe0 = parse_rdma_link(&rdma)
            .into_iter()
            .find(|l| l.device == "rxe0")
            .unwrap();
        let va = parse_ip_d_link(&ipl)
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
        for l in parse_ip_addr(text).iter().chain(&parse_ip_d_link(text)) {
            let _ = (l.port_guid(), l.pkey(), l.is_up());
        }
        if let Ok(links) = parse_ip_j_addr(text) {
            for l in links {
                let _ = (l.port_guid(), l.pkey());
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
