//! The network step: the address of every iSER port, made persistent with the distro's own
//! network stack, then every target portal pinged from the port whose subnet holds it.
//!
//! Contract:
//! - Each answers port (`ports[].netdev`) is mapped to its RDMA port before anything is
//!   planned: an IPoIB interface by the port GUID in the LAST 8 bytes of its 20-byte address,
//!   an Ethernet netdev (RoCE) by `gid_attrs/ndevs/0`, the device's `parent`, `rdma link show`
//!   or the EUI-64 of its MAC. A netdev with no RDMA port stops the step, naming the ports
//!   there are.
//! - Files come from `templates/` with validated values only, in the distro's own format:
//!   NetworkManager keyfile (RHEL 9+, and SLES when NetworkManager manages the ports), ifcfg
//!   (RHEL 8, or network-scripts), wicked ifcfg (SLES), netplan (Ubuntu), ifupdown (Debian).
//! - A port whose file and live state (address, up, MTU, IPoIB mode) already match plans
//!   nothing; a host where every port matches gets an empty plan.
//! - Connected mode is refused where the driver cannot do it (Enhanced IPoIB, ConnectX-4 and
//!   newer on mlx5), and a datagram MTU above 4092 is refused; on RoCE `ipoib_mode` is
//!   ignored with a note.
//! - After the changes, a task pings every target portal from its own port, concurrently and
//!   within a time bound; a portal that does not answer is named in the failure. Verify
//!   re-probes the ports and fills the facts and the worksheet.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::answers::check_netdev;
use crate::settings::{self, resolve_portals, Fabric, HostAddr, Netdev, Portal, ResolvedPortal};
use crate::steps::facts::{Distro, PortFact};
use crate::steps::parse::ibstat::{parse_sysfs_port, Guid, LinkLayer, Port, PortState};
use crate::steps::parse::netlink::{parse_ip_j_addr, parse_rdma_link, IpoibMode, Link};
use crate::steps::preflight::parse_os_release;
use crate::steps::templates::render;
use crate::steps::{Action, Cmd, Ctx, Host, Plan, Step, StepError, StepName};
use crate::worksheets::PortRecord;

/// The step implementation.
pub fn step() -> Box<dyn Step> {
    Box::new(Network::default())
}

const SYS_IB: &str = "/sys/class/infiniband";
/// The largest IPoIB datagram-mode MTU: IB MTU 4096 minus the 4-byte IPoIB header.
const MAX_DATAGRAM_MTU: u32 = 4092;

// ---------------------------------------------------------------------------------------------
// What is on the host: RDMA ports and network interfaces (shared with the subnet-manager step)

/// One RDMA port as sysfs shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct RdmaPort {
    /// The port, parsed from `/sys/class/infiniband/<dev>/ports/<n>/`.
    pub info: Port,
    /// `hca_type` (`MT4123`), when the device has one.
    pub hca_type: Option<String>,
    /// Netdevs sysfs or `rdma link` name for the port (the Ethernet netdev of a RoCE port).
    pub netdevs: Vec<String>,
}

impl RdmaPort {
    /// `mlx5_0/1`.
    pub fn label(&self) -> String {
        format!("{}/{}", self.info.ca, self.info.number)
    }

    /// The port GUID, unless it is the zero GUID of an empty GID 0.
    pub fn guid(&self) -> Option<Guid> {
        Some(self.info.port_guid).filter(|g| !g.is_zero())
    }

    /// An InfiniBand port (needs a subnet manager, carries IPoIB).
    pub fn is_ib(&self) -> bool {
        self.info.link_layer == LinkLayer::Infiniband
    }
}

fn read_trim(host: &dyn Host, path: &Path) -> Result<Option<String>, StepError> {
    Ok(host
        .read(path)?
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty()))
}

/// A sysfs attribute the kernel may refuse to read (`gid_attrs/ndevs/0` of an InfiniBand
/// GID has no netdev and reads as EINVAL; some drivers fail `rate` while the link is down):
/// such a refusal means "not known", never a reason to stop.
fn read_sysfs(host: &dyn Host, path: &Path) -> Option<String> {
    host.read(path).ok().flatten()
}

/// Every RDMA port on the host, from sysfs (and `rdma link show` for a RoCE port whose netdev
/// sysfs does not name).
pub fn rdma_ports(cx: &Ctx<'_>) -> Result<Vec<RdmaPort>, StepError> {
    let base = Path::new(SYS_IB);
    let mut out = Vec::new();
    for dev in cx.host.list_dir(base)? {
        let dir = base.join(&dev);
        let attr = |p: &Path| {
            read_sysfs(cx.host, p)
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
        };
        let hca_type = attr(&dir.join("hca_type"));
        let parent = attr(&dir.join("parent"));
        for p in cx.host.list_dir(&dir.join("ports"))? {
            let Ok(number) = p.parse::<u8>() else {
                continue;
            };
            let pdir = dir.join("ports").join(&p);
            let mut files = BTreeMap::new();
            for f in [
                "state",
                "phys_state",
                "rate",
                "link_layer",
                "lid",
                "sm_lid",
                "gids/0",
            ] {
                if let Some(v) = read_sysfs(cx.host, &pdir.join(f)) {
                    files.insert(f.to_string(), v);
                }
            }
            let info = parse_sysfs_port(&dev, number, &files)
                .map_err(|e| StepError::Failed(format!("reading {}: {e}", pdir.display())))?;
            let mut netdevs = Vec::new();
            if let Some(n) = attr(&pdir.join("gid_attrs/ndevs/0")) {
                netdevs.push(n);
            }
            if let Some(n) = &parent {
                if !netdevs.contains(n) {
                    netdevs.push(n.clone());
                }
            }
            out.push(RdmaPort {
                info,
                hca_type: hca_type.clone(),
                netdevs,
            });
        }
    }
    let unnamed = out.iter().any(|p| !p.is_ib() && p.netdevs.is_empty());
    if unnamed && cx.host.which("rdma").is_some() {
        let out_rdma = cx.probe(&["rdma", "link", "show"])?;
        if out_rdma.success() {
            for l in parse_rdma_link(&out_rdma.stdout) {
                if let (Some(n), Some(p)) = (
                    l.netdev,
                    out.iter_mut()
                        .find(|p| p.info.ca == l.device && p.info.number == l.port),
                ) {
                    if !p.netdevs.contains(&n) {
                        p.netdevs.push(n);
                    }
                }
            }
        }
    }
    Ok(out)
}

/// Every network interface with its addresses (`ip -j -d addr show`).
pub fn links(cx: &Ctx<'_>) -> Result<Vec<Link>, StepError> {
    links_on(cx.host)
}

fn links_on(host: &dyn Host) -> Result<Vec<Link>, StepError> {
    let cmd = Cmd::probe(["ip", "-j", "-d", "addr", "show"]);
    let out = host.run(&cmd)?;
    if !out.success() {
        return Err(StepError::command(&cmd, &out, None));
    }
    parse_ip_j_addr(&out.stdout)
        .map_err(|e| StepError::Failed(format!("reading the output of `{cmd}`: {e}")))
}

/// The RDMA port behind a network interface, if any.
pub fn rdma_port_of<'a>(link: &Link, ports: &'a [RdmaPort]) -> Option<&'a RdmaPort> {
    if link.is_ipoib() {
        // The port GUID is the last 8 bytes of the 20-byte address; the first bytes change.
        let g = link.port_guid()?;
        return ports.iter().find(|p| p.is_ib() && p.guid() == Some(g));
    }
    if let Some(p) = ports
        .iter()
        .find(|p| !p.is_ib() && p.netdevs.contains(&link.name))
    {
        return Some(p);
    }
    let g = Guid::eui64_from_mac(link.address.as_deref()?)?;
    ports.iter().find(|p| !p.is_ib() && p.guid() == Some(g))
}

/// "rxe0/1 (Ethernet) -> vA" for each RDMA port: what the operator can choose from.
pub fn inventory(ports: &[RdmaPort], links: &[Link]) -> Vec<(String, Option<String>)> {
    ports
        .iter()
        .map(|p| {
            let netdev = links
                .iter()
                .find(|l| rdma_port_of(l, std::slice::from_ref(p)).is_some())
                .map(|l| l.name.clone());
            let ll = if p.is_ib() { "InfiniBand" } else { "Ethernet" };
            let text = match &netdev {
                Some(n) => format!("{} ({ll}, {}) -> {n}", p.label(), state_name(&p.info.state)),
                None => format!("{} ({ll}) -> no netdev", p.label()),
            };
            (text, netdev)
        })
        .collect()
}

/// A port state as the tools print it.
pub fn state_name(s: &PortState) -> String {
    match s {
        PortState::Active => "Active".into(),
        PortState::Down => "Down".into(),
        PortState::Initializing => "Initializing".into(),
        PortState::Armed => "Armed".into(),
        PortState::Other(o) => o.clone(),
    }
}

// ---------------------------------------------------------------------------------------------
// The chosen ports

/// One port as the answers give it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortAnswer {
    /// The netdev named in the answers.
    pub netdev: String,
    /// Address with prefix (absent when not asked for).
    pub address: Option<HostAddr>,
    /// `datagram` or `connected`, when given.
    pub ipoib_mode: Option<String>,
    /// MTU, when given.
    pub mtu: Option<u32>,
    /// The name to pin by udev rule, when given.
    pub persistent_name: Option<String>,
}

/// An answers port joined with its interface and RDMA port.
#[derive(Debug, Clone)]
pub struct ChosenPort {
    /// Index in `ports[]`.
    pub index: usize,
    /// The answers.
    pub answer: PortAnswer,
    /// The interface as it is now (possibly already under its persistent name).
    pub link: Link,
    /// Its RDMA port.
    pub rdma: RdmaPort,
}

impl ChosenPort {
    /// The name the port has once configured: its persistent name when one is given.
    pub fn name(&self) -> &str {
        self.answer
            .persistent_name
            .as_deref()
            .unwrap_or(&self.answer.netdev)
    }

    /// `mlx5_0 port 1, InfiniBand, GUID 0x...` for comments and messages.
    pub fn describe(&self) -> String {
        let ll = if self.rdma.is_ib() {
            "InfiniBand"
        } else {
            "Ethernet/RoCE"
        };
        match self.rdma.guid() {
            Some(g) => format!(
                "{} port {}, {ll}, GUID {g}",
                self.rdma.info.ca, self.rdma.info.number
            ),
            None => format!("{} port {}, {ll}", self.rdma.info.ca, self.rdma.info.number),
        }
    }
}

/// The fabric answer: `auto`, `infiniband` or `roce`.
pub fn fabric_answer(cx: &mut Ctx<'_>) -> Result<String, StepError> {
    if cx.ask.answers().fabric.is_none() && cx.ask.interactive() {
        // Asked (and resolved) by the subnet-manager step already: do not ask twice.
        if let Some(f) = cx.facts.fabric.clone() {
            cx.ask.answers_mut().fabric = f.parse().ok();
            return Ok(f);
        }
    }
    Ok(cx
        .ask
        .want_choice(
            "fabric",
            "Which fabric carries iSER? (auto: from each port's link layer)",
            &[Fabric::Auto, Fabric::Infiniband, Fabric::Roce],
            Fabric::Auto,
            |a| &mut a.fabric,
        )?
        .to_string())
}

/// A name that goes into configuration files and shell lines: the kernel's rules and
/// nothing a shell or a config parser would read specially.
fn check_file_name(s: &str) -> Result<(), String> {
    check_netdev(s)?;
    if !s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(format!(
            "{s:?}: the wizard writes interface names into configuration files; use only letters, digits, '-', '_' and '.'"
        ));
    }
    Ok(())
}

fn port_answers(
    cx: &mut Ctx<'_>,
    inv: &[(String, Option<String>)],
    links: &[Link],
    ask_addresses: bool,
) -> Result<Vec<PortAnswer>, StepError> {
    let provided = cx.ask.answers().ports.as_ref().map_or(0, Vec::len);
    let from_facts: Vec<PortFact> = cx.facts.ports.clone();
    let detected: Vec<String> = inv.iter().filter_map(|(_, n)| n.clone()).collect();
    let n = if provided > 0 {
        provided
    } else if !from_facts.is_empty() {
        from_facts.len()
    } else {
        // The vendor's recommended configuration: two host ports.
        detected.len().clamp(1, 2)
    };
    let listing = if inv.is_empty() {
        "no RDMA ports found".to_string()
    } else {
        inv.iter()
            .map(|(t, _)| t.as_str())
            .collect::<Vec<_>>()
            .join("; ")
    };
    let mut out = Vec::new();
    for i in 0..n {
        let default = from_facts
            .get(i)
            .map(|p| p.netdev.clone())
            .or_else(|| detected.get(i).cloned());
        let netdev = cx.ask.want(
            &format!("ports[{i}].netdev"),
            &format!(
                "Network interface of iSER port {} (RDMA ports: {listing})",
                i + 1
            ),
            default.and_then(|d| d.parse::<Netdev>().ok()),
            |a| &mut a.port_mut(i).netdev,
        )?;
        let address = if ask_addresses {
            let current = links
                .iter()
                .find(|l| l.name == netdev.as_str())
                .and_then(|l| {
                    l.addrs.iter().find_map(|a| match a.address {
                        IpAddr::V4(v4) if a.scope.as_deref() != Some("link") => {
                            format!("{v4}/{}", a.prefix_len).parse::<HostAddr>().ok()
                        }
                        _ => None,
                    })
                })
                .or_else(|| from_facts.get(i).and_then(|p| p.address.parse().ok()));
            Some(cx.ask.want(
                &format!("ports[{i}].address"),
                // The vendor's example layout: host port 1 on 192.168.130.0/24, port 2 on .131.
                &format!(
                    "IPv4 address with prefix for {netdev} (like 192.168.{}.10/24)",
                    130 + i.min(125)
                ),
                current,
                |a| &mut a.port_mut(i).address,
            )?)
        } else {
            cx.ask
                .answers()
                .ports
                .as_ref()
                .and_then(|p| p.get(i)?.address)
        };
        let given = cx
            .ask
            .answers()
            .ports
            .as_ref()
            .and_then(|p| p.get(i).cloned())
            .unwrap_or_default();
        out.push(PortAnswer {
            netdev: netdev.to_string(),
            address,
            ipoib_mode: given.ipoib_mode.map(|m| m.to_string()),
            mtu: given.mtu,
            persistent_name: given.persistent_name.map(|n| n.to_string()),
        });
    }
    Ok(out)
}

/// The answers ports, each joined with its interface and RDMA port, and every interface on
/// the host; fails naming a netdev that does not exist or has no RDMA port, and a port whose
/// link layer contradicts `fabric`.
pub fn chosen_ports(
    cx: &mut Ctx<'_>,
    fabric: &str,
    ask_addresses: bool,
) -> Result<(Vec<ChosenPort>, Vec<Link>), StepError> {
    let rdma = rdma_ports(cx)?;
    let links = links(cx)?;
    let inv = inventory(&rdma, &links);
    let answers = port_answers(cx, &inv, &links, ask_addresses)?;
    let listing = || {
        if inv.is_empty() {
            "there is no RDMA port on this host".to_string()
        } else {
            format!(
                "the RDMA ports here are: {}",
                inv.iter()
                    .map(|(t, _)| t.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        }
    };
    let mut out = Vec::new();
    for (i, a) in answers.into_iter().enumerate() {
        for (key, name) in [
            ("netdev", Some(&a.netdev)),
            ("persistent_name", a.persistent_name.as_ref()),
        ] {
            if let Some(n) = name {
                check_file_name(n)
                    .map_err(|e| StepError::Failed(format!("ports[{i}].{key}: {e}")))?;
            }
        }
        let link = links
            .iter()
            .find(|l| l.name == a.netdev)
            .or_else(|| {
                // A rerun after the rename: the port already carries its persistent name.
                a.persistent_name
                    .as_ref()
                    .and_then(|p| links.iter().find(|l| l.name == *p))
            })
            .ok_or_else(|| {
                StepError::Failed(format!(
                    "ports[{i}].netdev: there is no network interface {}; {}",
                    a.netdev,
                    listing()
                ))
            })?
            .clone();
        let port = rdma_port_of(&link, &rdma).ok_or_else(|| {
            StepError::Failed(format!(
                "ports[{i}].netdev: {} has no RDMA port, so iSER cannot use it; {}. Name the \
                 IPoIB interface of an InfiniBand port, or the Ethernet netdev of a RoCE device",
                a.netdev,
                listing()
            ))
        })?;
        if fabric == "infiniband" && !port.is_ib() {
            return Err(StepError::Failed(format!(
                "ports[{i}].netdev: {} is on {}, whose link layer is Ethernet (RoCE), but \
                 fabric is \"infiniband\": set fabric to \"roce\" or \"auto\"",
                a.netdev,
                port.label()
            )));
        }
        if fabric == "roce" && port.is_ib() {
            return Err(StepError::Failed(format!(
                "ports[{i}].netdev: {} is on {}, whose link layer is InfiniBand, but fabric is \
                 \"roce\": set fabric to \"infiniband\" or \"auto\"",
                a.netdev,
                port.label()
            )));
        }
        if let Some(j) = out
            .iter()
            .position(|c: &ChosenPort| c.rdma.label() == port.label())
        {
            return Err(StepError::Failed(format!(
                "ports[{i}].netdev: {} is on {}, the same RDMA port as ports[{j}]: give each \
                 iSER port its own RDMA port",
                a.netdev,
                port.label()
            )));
        }
        out.push(ChosenPort {
            index: i,
            answer: a,
            link,
            rdma: port.clone(),
        });
    }
    Ok((out, links))
}

/// The distro family and major version (from preflight's facts, else os-release).
pub fn distro(cx: &Ctx<'_>) -> Result<(Distro, u32), StepError> {
    let os = match &cx.facts.os {
        Some(os) => os.clone(),
        None => {
            let text = match cx.host.read(Path::new("/etc/os-release"))? {
                Some(t) => t,
                None => cx
                    .host
                    .read(Path::new("/usr/lib/os-release"))?
                    .unwrap_or_default(),
            };
            parse_os_release(&text)
        }
    };
    let d = os.distro.ok_or_else(|| {
        StepError::Failed(format!(
            "{} is not a distribution the wizard configures; run the preflight step for details",
            os.pretty_name
        ))
    })?;
    let major = os
        .version_id
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    Ok((d, major))
}

/// `systemctl is-X UNIT` says `word`.
pub fn systemctl_is(cx: &Ctx<'_>, what: &str, unit: &str, word: &str) -> Result<bool, StepError> {
    if cx.host.which("systemctl").is_none() {
        return Ok(false);
    }
    let out = cx.probe(&["systemctl", what, unit])?;
    Ok(out.stdout.trim() == word)
}

// ---------------------------------------------------------------------------------------------
// Rendering

/// Fill a template whose lines that mention an absent value are left out (an MTU that was not
/// given, the IPoIB mode of a RoCE port).
fn render_opt(template: &str, vars: &[(&str, Option<&str>)]) -> Result<String, StepError> {
    let mark = |k: &str| format!("{{{{{k}}}}}");
    let kept: String = template
        .split_inclusive('\n')
        .filter(|line| {
            !vars
                .iter()
                .any(|(k, v)| v.is_none() && line.contains(&mark(k)))
        })
        .collect();
    let present: Vec<(&str, &str)> = vars
        .iter()
        .filter_map(|(k, v)| v.map(|v| (*k, v)))
        .filter(|(k, _)| kept.contains(&mark(k)))
        .collect();
    render(&kept, &present).map_err(|e| StepError::Failed(format!("internal: {e}")))
}

/// A stable UUID for the NetworkManager connection of a port (so a rerun writes the same
/// file): a name-based UUID (version 8, RFC 9562) from the connection name.
fn connection_uuid(name: &str) -> String {
    let b = xxhash_rust::xxh3::xxh3_128(format!("iser-wizard connection {name}").as_bytes())
        .to_be_bytes();
    crate::steps::templates::uuid_text(b, 8)
}

/// How the distro keeps addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stack {
    /// NetworkManager keyfile.
    Keyfile,
    /// RHEL ifcfg; `nm`: NetworkManager reads it (ifcfg-rh), else network-scripts.
    Ifcfg {
        /// Whether NetworkManager is running.
        nm: bool,
    },
    /// SLES wicked ifcfg.
    Wicked,
    /// Ubuntu netplan.
    Netplan,
    /// Debian ifupdown.
    Ifupdown,
}

impl Stack {
    fn describe(self) -> &'static str {
        match self {
            Stack::Keyfile => "NetworkManager keyfile",
            Stack::Ifcfg { nm: true } => "ifcfg, read by NetworkManager",
            Stack::Ifcfg { nm: false } => "ifcfg, network-scripts",
            Stack::Wicked => "wicked ifcfg",
            Stack::Netplan => "netplan",
            Stack::Ifupdown => "ifupdown",
        }
    }
}

/// The file of a port: path, content, mode.
pub fn port_file(
    stack: Stack,
    port: &ChosenPort,
    mode: Option<&str>,
) -> Result<(PathBuf, String, u32), StepError> {
    let name = port.name();
    let addr = port.answer.address.ok_or_else(|| {
        StepError::Ask(crate::steps::AskError::Missing {
            key: format!("ports[{}].address", port.index),
        })
    })?;
    let ip = addr.addr().to_string();
    let prefix = addr.prefix().to_string();
    let mtu = port.answer.mtu.map(|m| m.to_string());
    let ib = port.rdma.is_ib();
    let mode = if ib { mode } else { None };
    let desc = port.describe();
    let veth = port.link.kind.as_deref() == Some("veth");
    let common = |extra: &[(&'static str, Option<&str>)]| -> Vec<(&'static str, Option<String>)> {
        let mut v: Vec<(&'static str, Option<String>)> = vec![
            ("netdev", Some(name.to_string())),
            ("port", Some(desc.clone())),
            ("address", Some(addr.to_string())),
            ("ip", Some(ip.clone())),
            ("prefix", Some(prefix.clone())),
            ("mtu", mtu.clone()),
            ("ipoib_mode", mode.map(str::to_string)),
        ];
        v.extend(extra.iter().map(|(k, x)| (*k, x.map(str::to_string))));
        v
    };
    let fill = |t: &str, vars: Vec<(&'static str, Option<String>)>| {
        let refs: Vec<(&str, Option<&str>)> =
            vars.iter().map(|(k, v)| (*k, v.as_deref())).collect();
        render_opt(t, &refs)
    };
    Ok(match stack {
        Stack::Keyfile => {
            let uuid = connection_uuid(&format!("iser-{name}"));
            let vars = common(&[
                ("uuid", Some(&uuid)),
                ("type", Some(if ib { "infiniband" } else { "ethernet" })),
            ]);
            (
                PathBuf::from(format!(
                    "/etc/NetworkManager/system-connections/iser-{name}.nmconnection"
                )),
                fill(
                    include_str!("../templates/network/nm-keyfile.nmconnection"),
                    vars,
                )?,
                0o600,
            )
        }
        Stack::Ifcfg { .. } => {
            let cm = mode.map(|m| if m == "connected" { "yes" } else { "no" });
            let vars = common(&[
                ("type", Some(if ib { "InfiniBand" } else { "Ethernet" })),
                ("connected_mode", cm),
            ]);
            (
                PathBuf::from(format!("/etc/sysconfig/network-scripts/ifcfg-{name}")),
                fill(include_str!("../templates/network/ifcfg"), vars)?,
                0o644,
            )
        }
        Stack::Wicked => {
            let vars = common(&[("ipoib", ib.then_some("yes"))]);
            (
                PathBuf::from(format!("/etc/sysconfig/network/ifcfg-{name}")),
                fill(include_str!("../templates/network/wicked-ifcfg"), vars)?,
                0o644,
            )
        }
        Stack::Netplan => (
            PathBuf::from(format!("/etc/netplan/60-iser-{name}.yaml")),
            fill(
                include_str!("../templates/network/netplan.yaml"),
                common(&[]),
            )?,
            0o600,
        ),
        Stack::Ifupdown => {
            // A veth exists only while its creator runs: `auto` would fail the boot-time
            // `ifup -a`; allow-hotplug configures it whenever it appears.
            let start = if veth { "allow-hotplug" } else { "auto" };
            (
                // source-directory skips names with a dot (run-parts rules).
                PathBuf::from(format!(
                    "/etc/network/interfaces.d/iser-{}",
                    name.replace('.', "_")
                )),
                fill(
                    include_str!("../templates/network/ifupdown"),
                    common(&[("start", Some(start))]),
                )?,
                0o644,
            )
        }
    })
}

/// The udev rule that pins a port's name.
fn udev_rule(port: &ChosenPort, name: &str) -> Result<String, StepError> {
    if port.rdma.is_ib() {
        let g = port.rdma.guid().ok_or_else(|| {
            StepError::Failed(format!(
                "{}: the port has no GUID to pin its name to",
                port.answer.netdev
            ))
        })?;
        let bytes: Vec<String> =
            g.0.to_be_bytes()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
        render_opt(
            include_str!("../templates/udev/ipoib.rule"),
            &[("guid_bytes", Some(&bytes.join(":"))), ("name", Some(name))],
        )
    } else {
        let mac = port
            .link
            .address
            .as_deref()
            .filter(|m| m.len() == 17)
            .ok_or_else(|| {
                StepError::Failed(format!(
                    "{}: no MAC address to pin its name to",
                    port.answer.netdev
                ))
            })?
            .to_ascii_lowercase();
        render_opt(
            include_str!("../templates/udev/ether.rule"),
            &[("mac", Some(&mac)), ("name", Some(name))],
        )
    }
}

const UDEV_RULES: &str = "/etc/udev/rules.d/70-iser-persistent-net.rules";
const INTERFACES: &str = "/etc/network/interfaces";

/// Whether /etc/network/interfaces reads /etc/network/interfaces.d.
fn sources_interfaces_d(text: &str) -> bool {
    text.lines().any(|l| {
        let w: Vec<&str> = l.split_whitespace().collect();
        match w.as_slice() {
            ["source", p] => {
                let p = p.trim_end_matches('*').trim_end_matches('/');
                p == "/etc/network/interfaces.d" || p == "interfaces.d"
            }
            ["source-directory", p] => {
                let p = p.trim_end_matches('/');
                p == "/etc/network/interfaces.d" || p == "interfaces.d"
            }
            _ => false,
        }
    })
}

// ---------------------------------------------------------------------------------------------
// IPoIB mode

/// Whether the port runs Enhanced IPoIB (mlx5: ConnectX-4 and newer), which is datagram-only.
fn enhanced_ipoib(cx: &Ctx<'_>, port: &ChosenPort) -> Result<bool, StepError> {
    if port.link.ipoib.as_ref().and_then(|i| i.mode.as_ref()) == Some(&IpoibMode::Connected) {
        return Ok(false);
    }
    // MLNX_OFED can turn enhanced mode off (ipoib_enhanced=0), which gives connected mode back.
    if let Some(v) = read_trim(
        cx.host,
        Path::new("/sys/module/ib_ipoib/parameters/ipoib_enhanced"),
    )? {
        if v == "0" || v.eq_ignore_ascii_case("n") {
            return Ok(false);
        }
    }
    if port.rdma.info.ca.starts_with("mlx5") {
        return Ok(true);
    }
    // Connect-IB (MT4113) and every ConnectX from 4 on (MT4115 ...) are mlx5 devices;
    // ConnectX-2/3 are MT26xxx and MT4099-MT4104.
    let n: Option<u32> = port
        .rdma
        .hca_type
        .as_deref()
        .and_then(|t| t.strip_prefix("MT"))
        .and_then(|d| d.parse().ok());
    Ok(n.is_some_and(|n| n >= 4113 && !(26000..27000).contains(&n)))
}

fn live_mode(cx: &Ctx<'_>, link: &Link) -> Result<Option<String>, StepError> {
    if let Some(m) = link.ipoib.as_ref().and_then(|i| i.mode.as_ref()) {
        return Ok(Some(match m {
            IpoibMode::Datagram => "datagram".into(),
            IpoibMode::Connected => "connected".into(),
            IpoibMode::Other(o) => o.clone(),
        }));
    }
    read_trim(
        cx.host,
        &Path::new("/sys/class/net").join(&link.name).join("mode"),
    )
}

/// What differs between a port's live state and what is wanted (empty: it matches).
fn live_differences(
    cx: &Ctx<'_>,
    link: Option<&Link>,
    port: &ChosenPort,
    mode: Option<&str>,
) -> Result<Vec<String>, StepError> {
    let name = port.name();
    let Some(link) = link else {
        return Ok(vec![format!("{name} does not exist yet")]);
    };
    let mut diff = Vec::new();
    let has = |want: &HostAddr| {
        link.addrs
            .iter()
            .any(|a| a.address == IpAddr::V4(want.addr()) && a.prefix_len == want.prefix())
    };
    match &port.answer.address {
        Some(want) if has(want) => {}
        Some(want) => diff.push(format!("{name} lacks {want}")),
        None => diff.push(format!("{name}: no address is known for it")),
    }
    if !link.is_up() {
        diff.push(format!("{name} is down"));
    }
    if let Some(m) = port.answer.mtu {
        if link.mtu != Some(m) {
            diff.push(format!("{name} has MTU {:?}, wanted {m}", link.mtu));
        }
    }
    if let Some(m) = mode {
        if port.rdma.is_ib() && live_mode(cx, link)?.as_deref() != Some(m) {
            diff.push(format!("{name} is not in {m} mode"));
        }
    }
    Ok(diff)
}

// ---------------------------------------------------------------------------------------------
// Reachability

/// A target portal and the port that reaches it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Probe {
    portal: Ipv4Addr,
    label: Option<String>,
    netdev: String,
    address: String,
    /// The interface of this host that carries the portal address (a lab with the target on
    /// the same host): the kernel answers its own addresses over loopback, so a ping bound
    /// to the port never sees the reply; it goes from the port's address instead.
    local_on: Option<String>,
}

impl Probe {
    fn cmd(&self) -> Cmd {
        let portal = self.portal.to_string();
        let from = match &self.local_on {
            Some(_) => self
                .address
                .split('/')
                .next()
                .unwrap_or_default()
                .to_string(),
            None => self.netdev.clone(),
        };
        Cmd::probe(["ping", "-c", "1", "-W", "2", "-I", &from, &portal])
            .timeout(Duration::from_secs(5))
    }
}

/// What to tell the operator about portals that are this host's own addresses.
fn local_note(probes: &[Probe]) -> Option<String> {
    let local: Vec<String> = probes
        .iter()
        .filter_map(|p| {
            p.local_on
                .as_ref()
                .map(|on| format!("{} (on {on})", p.portal))
        })
        .collect();
    (!local.is_empty()).then(|| {
        format!(
            "target portal(s) {} are addresses of this host itself (the target runs here, as in \
             a lab): the kernel answers them over loopback, so they are pinged from the port's \
             address rather than bound to the port, which cannot prove the path on the wire",
            local.join(", ")
        )
    })
}

/// Ping every portal from its port, concurrently; each portal gets attempts until `bound`.
fn ping_all(
    host: &dyn Host,
    probes: &[Probe],
    bound: Duration,
    interval: Duration,
) -> Result<(), StepError> {
    let results: Vec<Result<bool, StepError>> = std::thread::scope(|s| {
        let handles: Vec<_> = probes
            .iter()
            .map(|p| {
                s.spawn(move || -> Result<bool, StepError> {
                    let deadline = Instant::now() + bound;
                    let cmd = p.cmd();
                    loop {
                        if host.run(&cmd)?.success() {
                            return Ok(true);
                        }
                        if Instant::now() + interval > deadline {
                            return Ok(false);
                        }
                        std::thread::sleep(interval);
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(StepError::Failed("internal: a ping thread panicked".into()))
                })
            })
            .collect()
    });
    let mut failed = Vec::new();
    for (p, r) in probes.iter().zip(results) {
        if !r? {
            failed.push(format!(
                "{}{} did not answer a ping from {} ({})",
                p.portal,
                p.label
                    .as_ref()
                    .map(|l| format!(" ({l})"))
                    .unwrap_or_default(),
                p.netdev,
                p.address
            ));
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(StepError::Failed(format!(
            "target portal{} unreachable within {}s:\n    - {}\n  check the cable or switch of \
             that subnet, the array port's address and link, and `ip addr show` on the host port",
            if failed.len() == 1 { "" } else { "s" },
            bound.as_secs(),
            failed.join("\n    - ")
        )))
    }
}

/// Each answers portal with the port whose subnet holds it; portals no port holds are left
/// to the answers validation (and never pinged from another subnet). `links` tells which
/// portals are addresses of this host itself.
fn probes(cx: &Ctx<'_>, ports: &[ChosenPort], links: &[Link]) -> Vec<Probe> {
    let Some(portals) = &cx.ask.answers().target.portals else {
        return Vec::new();
    };
    let addrs: Vec<(Netdev, HostAddr)> = ports
        .iter()
        .filter_map(|c| Some((c.name().parse().ok()?, c.answer.address?)))
        .collect();
    let mut out = Vec::new();
    for r in resolve_each(&addrs, portals) {
        let addr = r.portal.address.ip();
        let local_on = links
            .iter()
            .find(|l| l.addrs.iter().any(|a| a.address == IpAddr::V4(addr)))
            .map(|l| l.name.clone());
        out.push(Probe {
            portal: addr,
            label: r.portal.label.map(|l| l.to_string()),
            netdev: addrs[r.port].0.to_string(),
            address: addrs[r.port].1.to_string(),
            local_on,
        });
    }
    out
}

/// The portals that have an owning port, each with it (the others are the answers
/// validation's to report).
fn resolve_each(ports: &[(Netdev, HostAddr)], portals: &[Portal]) -> Vec<ResolvedPortal> {
    portals
        .iter()
        .filter_map(|p| resolve_portals(ports, std::slice::from_ref(p)).ok()?.pop())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The step

/// The network step.
#[derive(Debug)]
pub struct Network {
    ports: Vec<ChosenPort>,
    modes: Vec<Option<String>>,
    pinged: bool,
    /// How long each portal may take to answer.
    pub ping_bound: Duration,
    /// Pause between ping attempts.
    pub ping_interval: Duration,
}

impl Default for Network {
    fn default() -> Self {
        Network {
            ports: Vec::new(),
            modes: Vec::new(),
            pinged: false,
            ping_bound: Duration::from_secs(20),
            ping_interval: Duration::from_secs(1),
        }
    }
}

fn nm_devices(cx: &Ctx<'_>) -> Result<Option<BTreeMap<String, String>>, StepError> {
    if !systemctl_is(cx, "is-active", "NetworkManager", "active")?
        || cx.host.which("nmcli").is_none()
    {
        return Ok(None);
    }
    let out = cx.probe(&["nmcli", "-t", "-f", "DEVICE,STATE", "device"])?;
    Ok(Some(
        out.stdout
            .lines()
            .filter_map(|l| l.rsplit_once(':'))
            .map(|(d, s)| (d.replace("\\:", ":"), s.to_string()))
            .collect(),
    ))
}

fn choose_stack(
    cx: &Ctx<'_>,
    distro: Distro,
    major: u32,
    ports: &[ChosenPort],
) -> Result<Stack, StepError> {
    let managed = |devs: &BTreeMap<String, String>| {
        ports.iter().all(|p| {
            devs.get(p.name())
                .is_none_or(|s| !s.starts_with("unmanaged"))
        })
    };
    let unmanaged_fail = |what: &str| {
        StepError::Failed(format!(
            "NetworkManager runs but does not manage {what}, and no other network stack is \
             installed: let it manage the ports (`nmcli device set <netdev> managed yes`, and \
             check unmanaged-devices in /etc/NetworkManager/conf.d)"
        ))
    };
    let names = || {
        ports
            .iter()
            .map(|p| p.name())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match distro {
        Distro::Ubuntu => {
            if cx.host.which("netplan").is_none() {
                return Err(StepError::Failed(
                    "netplan is not installed: apt-get install netplan.io".into(),
                ));
            }
            Ok(Stack::Netplan)
        }
        Distro::Debian => {
            if cx.host.which("ifup").is_some() {
                return Ok(Stack::Ifupdown);
            }
            match nm_devices(cx)? {
                Some(d) if managed(&d) => Ok(Stack::Keyfile),
                Some(_) => Err(unmanaged_fail(&names())),
                None => Err(StepError::Failed(
                    "neither ifupdown nor NetworkManager is available to keep the port \
                     addresses: apt-get install ifupdown"
                        .into(),
                )),
            }
        }
        Distro::Rhel => {
            let nm = nm_devices(cx)?;
            let scripts = cx.host.which("ifup").is_some()
                && cx.host.exists(Path::new("/etc/sysconfig/network-scripts"));
            match (major <= 8, nm) {
                (true, Some(_)) => Ok(Stack::Ifcfg { nm: true }),
                (true, None) | (false, None) if scripts => Ok(Stack::Ifcfg { nm: false }),
                (false, Some(d)) if managed(&d) => Ok(Stack::Keyfile),
                (false, Some(_)) => Err(unmanaged_fail(&names())),
                _ => Err(StepError::Failed(
                    "NetworkManager is not running and network-scripts is not installed: \
                     systemctl enable --now NetworkManager"
                        .into(),
                )),
            }
        }
        Distro::Sles => match nm_devices(cx)? {
            Some(d) if managed(&d) => Ok(Stack::Keyfile),
            _ if cx.host.which("wicked").is_some() => Ok(Stack::Wicked),
            Some(_) => Err(unmanaged_fail(&names())),
            None => Err(StepError::Failed(
                "neither wicked nor NetworkManager is available: zypper install wicked".into(),
            )),
        },
    }
}

impl Network {
    fn modes(&mut self, cx: &mut Ctx<'_>, plan: &mut Plan) -> Result<(), StepError> {
        self.modes.clear();
        for port in &self.ports {
            let i = port.index;
            if !port.rdma.is_ib() {
                if let Some(m) = &port.answer.ipoib_mode {
                    plan.note(format!(
                        "ports[{i}].ipoib_mode ({m}) is ignored: {} is RoCE, which has no IPoIB",
                        port.answer.netdev
                    ));
                }
                self.modes.push(None);
                continue;
            }
            let enhanced = enhanced_ipoib(cx, port)?;
            let current = live_mode(cx, &port.link)?;
            let default = if !enhanced && current.as_deref() == Some("connected") {
                1
            } else {
                0
            };
            let mode = match &port.answer.ipoib_mode {
                Some(m) => m.clone(),
                None => cx
                    .ask
                    .want_choice(
                        &format!("ports[{i}].ipoib_mode"),
                        &format!("IPoIB mode of {}", port.answer.netdev),
                        settings::IpoibMode::ALL,
                        settings::IpoibMode::ALL[default],
                        |a| &mut a.port_mut(i).ipoib_mode,
                    )?
                    .to_string(),
            };
            if mode == "connected" && enhanced {
                return Err(StepError::Failed(format!(
                    "ports[{i}].ipoib_mode: {} ({}{}) runs Enhanced IPoIB (mlx5: ConnectX-4 and \
                     newer), which is datagram-only: connected mode and MTU 65520 are not \
                     supported, and the kernel refuses `connected` in /sys/class/net/{}/mode. \
                     Use \"datagram\" with MTU 4092 (IB MTU 4096) or 2044",
                    port.answer.netdev,
                    port.rdma.label(),
                    port.rdma
                        .hca_type
                        .as_ref()
                        .map(|t| format!(", {t}"))
                        .unwrap_or_default(),
                    port.link.name
                )));
            }
            if let Some(mtu) = port.answer.mtu {
                if mode == "datagram" && mtu > MAX_DATAGRAM_MTU {
                    return Err(StepError::Failed(format!(
                        "ports[{i}].mtu: {mtu} is above {MAX_DATAGRAM_MTU}, the largest IPoIB \
                         datagram-mode MTU (IB MTU 4096 - 4): use 4092 or 2044"
                    )));
                }
            }
            self.modes.push(Some(mode));
        }
        Ok(())
    }

    fn fill_records(&self, cx: &mut Ctx<'_>, links: &[Link]) {
        let mut facts = Vec::new();
        let mut records = Vec::new();
        for p in &self.ports {
            let link = links.iter().find(|l| l.name == p.name()).unwrap_or(&p.link);
            let ll = if p.rdma.is_ib() {
                "infiniband"
            } else {
                "ethernet"
            };
            let guid = p.rdma.guid().map(|g| g.to_string());
            facts.push(PortFact {
                netdev: p.name().to_string(),
                rdma_device: Some(p.rdma.info.ca.clone()),
                rdma_port: Some(u32::from(p.rdma.info.number)),
                guid: guid.clone(),
                link_layer: Some(ll.to_string()),
                address: p.answer.address.map(|a| a.to_string()).unwrap_or_default(),
            });
            records.push(PortRecord {
                netdev: Some(p.name().to_string()),
                rdma_device: Some(p.rdma.info.ca.clone()),
                rdma_port: Some(u32::from(p.rdma.info.number)),
                guid,
                hw_address: link.address.clone(),
                link_layer: Some(
                    if p.rdma.is_ib() {
                        "InfiniBand"
                    } else {
                        "Ethernet"
                    }
                    .into(),
                ),
                rate: p.rdma.info.rate.as_ref().map(|r| r.describe()),
                state: Some(state_name(&p.rdma.info.state)),
                address: p.answer.address.map(|a| a.to_string()),
            });
        }
        cx.facts.ports = facts;
        cx.sheet.ports = records;
        let any_ib = self.ports.iter().any(|p| p.rdma.is_ib());
        cx.facts.fabric = Some(if any_ib { "infiniband" } else { "roce" }.into());
    }
}

impl Step for Network {
    fn name(&self) -> StepName {
        StepName::Network
    }

    fn plan(&mut self, cx: &mut Ctx<'_>) -> Result<Plan, StepError> {
        let mut plan = Plan::new(StepName::Network);
        self.pinged = false;
        let fabric = fabric_answer(cx)?;
        let (ports, links) = chosen_ports(cx, &fabric, true)?;
        self.ports = ports;
        if cx.ask.interactive() {
            // Asked here, not first in the sessions step, so this step can ping them.
            let ports: Vec<(Netdev, HostAddr)> = self
                .ports
                .iter()
                .filter_map(|p| Some((p.name().parse().ok()?, p.answer.address?)))
                .collect();
            crate::steps::sessions::portal_answers(cx, &ports)?;
        }
        self.modes(cx, &mut plan)?;
        let (distro, major) = distro(cx)?;
        let stack = choose_stack(cx, distro, major, &self.ports)?;
        plan.note(format!(
            "addresses are kept with {} ({distro:?} {major})",
            stack.describe()
        ));

        // Persistent names first: the rest of the plan configures the ports by them.
        let mut renames = Vec::new();
        let mut rules = Vec::new();
        for p in &self.ports {
            if let Some(name) = &p.answer.persistent_name {
                if let Some(other) = links
                    .iter()
                    .find(|l| l.name == *name && l.name != p.link.name)
                {
                    return Err(StepError::Failed(format!(
                        "ports[{}].persistent_name: {name} is already the name of another interface ({})",
                        p.index,
                        other.address.as_deref().unwrap_or("no address")
                    )));
                }
                rules.push(udev_rule(p, name)?);
                if p.link.name != *name {
                    renames.push((p.link.name.clone(), name.clone()));
                }
            }
        }
        if !rules.is_empty() {
            let mut text = include_str!("../templates/70-iser-persistent-net.rules").to_string();
            for r in &rules {
                text.push_str(r);
            }
            let old = cx.host.read(Path::new(UDEV_RULES))?;
            if old.as_deref() != Some(text.as_str()) {
                plan.push(Action::write(
                    UDEV_RULES,
                    old,
                    text,
                    0o644,
                    "pin the iSER port names across reboots",
                ));
            }
        }
        for (from, to) in &renames {
            plan.push(Action::run(
                Cmd::change(["ip", "link", "set", "dev", from, "down"]),
                format!("a link must be down to be renamed ({from} -> {to})"),
            ));
            plan.push(Action::run(
                Cmd::change(["ip", "link", "set", "dev", from, "name", to]),
                "give the port its persistent name now, not only from the next boot",
            ));
        }

        if stack == Stack::Ifupdown {
            let old = cx.host.read(Path::new(INTERFACES))?;
            if !old.as_deref().is_some_and(sources_interfaces_d) {
                let mut new = old.clone().unwrap_or_default();
                if !new.is_empty() && !new.ends_with('\n') {
                    new.push('\n');
                }
                let add = include_str!("../templates/network/ifupdown-source");
                new.push_str(if old.is_none() { add.trim_start() } else { add });
                plan.push(Action::write(
                    INTERFACES,
                    old,
                    new,
                    0o644,
                    "ifupdown must read the port files in /etc/network/interfaces.d",
                ));
            }
        }

        let mut netplan_apply = false;
        for (p, mode) in self.ports.iter().zip(&self.modes) {
            let name = p.name().to_string();
            let (path, new, fmode) = port_file(stack, p, mode.as_deref())?;
            let old = cx.host.read(&path)?;
            let changed = old.as_deref() != Some(new.as_str());
            let live = links.iter().find(|l| l.name == name);
            let diff = live_differences(cx, live, p, mode.as_deref())?;
            if !changed && diff.is_empty() {
                continue;
            }
            let why_up = if diff.is_empty() {
                format!("apply the new configuration of {name}")
            } else {
                format!("bring {name} up as configured ({})", diff.join(", "))
            };
            let had = old.is_some();
            let was_up = live.is_some_and(|l| l.is_up());
            let write = Action::write(
                &path,
                old,
                new,
                fmode,
                format!(
                    "keep {name}'s address across reboots ({})",
                    stack.describe()
                ),
            );
            let cmd =
                |argv: &[&str]| Cmd::change(argv.iter().copied()).timeout(Duration::from_secs(90));
            match stack {
                Stack::Keyfile | Stack::Ifcfg { nm: true } => {
                    let path_s = path.display().to_string();
                    if changed {
                        plan.push(write);
                        plan.push(Action::run(
                            cmd(&["nmcli", "connection", "load", &path_s]),
                            "NetworkManager reads the file",
                        ));
                    }
                    plan.push(Action::run(
                        cmd(&["nmcli", "connection", "up", &format!("iser-{name}")]),
                        why_up,
                    ));
                }
                Stack::Ifcfg { nm: false } | Stack::Ifupdown => {
                    if changed {
                        // Down with the old definition, before the file changes under it.
                        if had && was_up {
                            plan.push(Action::run(
                                cmd(&["ifdown", &name]),
                                format!("take {name} down with its old configuration"),
                            ));
                        }
                        plan.push(write);
                        if had || !diff.is_empty() {
                            plan.push(Action::run(cmd(&["ifup", &name]), why_up));
                        } else {
                            plan.note(format!(
                                "{name} already has its address live; the new file keeps it across reboots"
                            ));
                        }
                    } else if stack == Stack::Ifupdown {
                        // ifupdown may record the port as up while its address is gone.
                        plan.push(Action::run(cmd(&["ifup", "--force", &name]), why_up));
                    } else {
                        plan.push(Action::run(cmd(&["ifup", &name]), why_up));
                    }
                }
                Stack::Wicked => {
                    if changed {
                        plan.push(write);
                        plan.push(Action::run(cmd(&["wicked", "ifreload", &name]), why_up));
                    } else {
                        plan.push(Action::run(cmd(&["wicked", "ifup", &name]), why_up));
                    }
                }
                Stack::Netplan => {
                    if changed {
                        plan.push(write);
                    }
                    netplan_apply = true;
                }
            }
        }
        if netplan_apply {
            plan.push(Action::run(
                Cmd::change(["netplan", "apply"]).timeout(Duration::from_secs(120)),
                "apply the netplan configuration now",
            ));
        }
        if !plan.is_empty() {
            let probes = probes(cx, &self.ports, &links);
            if let Some(n) = local_note(&probes) {
                plan.note(n);
            }
            let n = probes.len();
            plan.push(Action::task(
                "reach",
                format!(
                    "wait for the ports, then ping each of the {n} target portal(s) from the \
                     port whose subnet holds it (`ping -c 1 -W 2 -I <netdev> <portal>`, all at \
                     once, each within {}s)",
                    self.ping_bound.as_secs()
                ),
            ));
        }
        Ok(plan)
    }

    fn task(&mut self, cx: &mut Ctx<'_>, id: &str) -> Result<(), StepError> {
        if id != "reach" {
            return Err(StepError::Failed(format!(
                "internal: no task {id:?} in this step"
            )));
        }
        let links = links(cx)?;
        let probes = probes(cx, &self.ports, &links);
        cx.progress
            .message(&format!("pinging {} target portal(s)", probes.len()));
        ping_all(cx.host, &probes, self.ping_bound, self.ping_interval)?;
        self.pinged = true;
        Ok(())
    }

    fn verify(&mut self, cx: &mut Ctx<'_>) -> Result<(), StepError> {
        let links = links(cx)?;
        let mut problems = Vec::new();
        for (p, mode) in self.ports.iter().zip(&self.modes) {
            let live = links.iter().find(|l| l.name == p.name());
            let diff = live_differences(cx, live, p, mode.as_deref())?;
            if diff.iter().any(|d| d.contains("connected mode")) {
                problems.push(format!(
                    "{}: connected mode did not take; the driver may be datagram-only \
                     (Enhanced IPoIB): use ipoib_mode \"datagram\"",
                    p.name()
                ));
            }
            problems.extend(diff);
        }
        self.fill_records(cx, &links);
        if !problems.is_empty() {
            return Err(StepError::Failed(format!(
                "the ports are not as configured:\n    - {}",
                problems.join("\n    - ")
            )));
        }
        let probes = probes(cx, &self.ports, &links);
        if let Some(n) = local_note(&probes) {
            cx.sheet.note(format!("network: {n}"));
        }
        if probes.is_empty() {
            cx.sheet
                .note("network: no target portals given yet; their reachability was not checked");
        } else if !self.pinged {
            ping_all(cx.host, &probes, self.ping_bound, self.ping_interval)?;
        }
        Ok(())
    }
}

/// Test support shared with the subnet-manager step: hosts modelled on real outputs, a
/// context, an engine-like apply, and golden files.
#[cfg(test)]
pub(crate) mod testkit {
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
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::testkit::*;
    use super::*;
    use crate::steps::fake::FakeHost;
    use crate::steps::CmdOutput;

    fn ping(netdev: &str, addr: &str) -> Vec<String> {
        ["ping", "-c", "1", "-W", "2", "-I", netdev, addr]
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    /// The lab's portals live on vA-t/vB-t of the same host: pinged from the port addresses.
    fn expect_lab_pings(h: &FakeHost) {
        for (n, a) in [
            ("192.168.130.10", "192.168.130.101"),
            ("192.168.130.10", "192.168.130.102"),
            ("192.168.131.10", "192.168.131.101"),
            ("192.168.131.10", "192.168.131.102"),
        ] {
            let argv = ping(n, a);
            let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
            h.expect(&argv, CmdOutput::ok("1 packets transmitted, 1 received\n"));
        }
    }

    fn quick() -> Network {
        Network {
            ping_bound: Duration::ZERO,
            ping_interval: Duration::from_millis(1),
            ..Network::default()
        }
    }

    #[test]
    fn the_lab_debian_roce_ports_get_ifupdown_files_and_reach_every_portal_then_rerun_is_empty() {
        let h = lab_host();
        h.expect(&IP, ip_out(&lab_links(false)));
        h.allow(&IP, ip_out(&lab_links(true)));
        h.expect(&["ifup", "vA"], CmdOutput::ok(""));
        h.expect(&["ifup", "vB"], CmdOutput::ok(""));
        expect_lab_pings(&h);
        let mut run = Run::for_os(lab_answers(), DEBIAN);
        let mut step = quick();
        let plan = run.full(&h, &mut step).unwrap();
        assert_eq!(
            steps_of(&plan),
            [
                "write /etc/network/interfaces.d/iser-vA",
                "run ifup vA",
                "write /etc/network/interfaces.d/iser-vB",
                "run ifup vB",
                "task reach",
            ],
            "{}",
            plan.render()
        );
        golden(
            "network/debian-roce-vA",
            &written(&plan, "/etc/network/interfaces.d/iser-vA"),
        );
        assert!(
            plan.render()
                .contains("192.168.130.101 (on vA-t), 192.168.130.102 (on vA-t)"),
            "{}",
            plan.render()
        );
        assert!(run.sheet.notes.iter().any(|n| n.contains("loopback")));
        // The files are on the host now; with the addresses live a rerun changes nothing.
        assert_eq!(run.facts.fabric.as_deref(), Some("roce"));
        assert_eq!(run.facts.ports.len(), 2);
        assert_eq!(run.facts.ports[0].rdma_device.as_deref(), Some("rxe0"));
        assert_eq!(run.facts.ports[1].netdev, "vB");
        assert_eq!(
            run.facts.ports[1].guid.as_deref(),
            Some("0xa0180ffffe2a3a69")
        );
        assert_eq!(
            run.sheet.ports[0].hw_address.as_deref(),
            Some("2e:9b:86:72:9e:0b")
        );
        assert_eq!(run.sheet.ports[0].link_layer.as_deref(), Some("Ethernet"));
        assert_eq!(run.sheet.ports[0].state.as_deref(), Some("Active"));
        let plan = run.with(&h, |cx| quick().plan(cx)).unwrap();
        assert!(plan.is_empty(), "{}", plan.render());
        h.finish();
    }

    #[test]
    fn an_interactive_run_asks_for_the_portals_to_ping_and_its_recorded_answers_replay_the_plan() {
        // A person answers the ports and the portals; everything else is Enter.
        let typed = json!({
            "ports": [{"netdev": "vA", "address": "192.168.130.10/24"},
                      {"netdev": "vB", "address": "192.168.131.10/24"}],
            "target": {"portals": [{"address": "192.168.130.101"},
                                   {"address": "192.168.130.102"},
                                   {"address": "192.168.131.101"},
                                   {"address": "192.168.131.102"}]},
        });
        let h = lab_host();
        h.allow(&IP, ip_out(&lab_links(false)));
        let mut run = Run::for_os(serde_json::Value::Null, DEBIAN);
        run.ask = crate::prompt::Asker::scripted(typed);
        let asked = run.with(&h, |cx| quick().plan(cx)).unwrap();
        let text = asked.render();
        assert!(
            text.contains("ping each of the 4 target portal(s)"),
            "{text}"
        );
        let recorded = run.ask.recorded();
        assert_eq!(
            recorded["target"]["portals"][3],
            json!({"address": "192.168.131.102", "label": "Controller B, port 2"})
        );
        assert_eq!(recorded["fabric"], json!("auto"));

        // The recorded answers, unattended, on the same host: the same plan.
        let mut replay = Run::for_os(recorded, DEBIAN);
        let replayed = replay.with(&h, |cx| quick().plan(cx)).unwrap();
        assert_eq!(replayed.render(), text);
    }

    #[test]
    fn ifupdown_is_made_to_read_interfaces_d_and_ipoib_mode_on_roce_is_a_note() {
        let h = lab_host();
        h.put_file(
            "/etc/network/interfaces",
            "auto lo\niface lo inet loopback\n",
        );
        h.allow(&IP, ip_out(&lab_links(false)));
        let mut answers = lab_answers();
        answers["ports"][0]["ipoib_mode"] = json!("datagram");
        let mut run = Run::for_os(answers, DEBIAN);
        let plan = run.with(&h, |cx| quick().plan(cx)).unwrap();
        assert_eq!(
            written(&plan, "/etc/network/interfaces"),
            "auto lo\niface lo inet loopback\n\n# Added by iser-wizard: the iSER ports are configured in files of their own.\nsource /etc/network/interfaces.d/*\n"
        );
        assert_eq!(steps_of(&plan)[0], "write /etc/network/interfaces");
        let text = plan.render();
        assert!(
            text.contains("ports[0].ipoib_mode (datagram) is ignored: vA is RoCE"),
            "{text}"
        );
        h.finish();
    }

    #[test]
    fn an_unreachable_portal_is_named_and_cross_subnet_pings_are_never_tried() {
        let h = lab_host();
        h.expect(&IP, ip_out(&remote_links(false)));
        h.allow(&IP, ip_out(&remote_links(true)));
        h.expect(&["ifup", "vA"], CmdOutput::ok(""));
        h.expect(&["ifup", "vB"], CmdOutput::ok(""));
        for (n, a, ok) in [
            ("vA", "192.168.130.101", true),
            ("vA", "192.168.130.102", true),
            ("vB", "192.168.131.101", true),
            ("vB", "192.168.131.102", false),
        ] {
            let out = if ok {
                CmdOutput::ok("")
            } else {
                CmdOutput::status(
                    1,
                    "1 packets transmitted, 0 received, 100% packet loss\n",
                    "",
                )
            };
            h.allow(&["ping", "-c", "1", "-W", "2", "-I", n, a], out);
        }
        let mut run = Run::for_os(lab_answers(), DEBIAN);
        let err = run.full(&h, &mut quick()).unwrap_err().to_string();
        assert!(
            err.contains("192.168.131.102 (Controller B, port 2) did not answer a ping from vB (192.168.131.10/24)"),
            "{err}"
        );
        assert!(!err.contains("192.168.131.101"), "{err}");
        let pings: Vec<String> = h
            .ran()
            .into_iter()
            .filter(|c| c.starts_with("ping"))
            .collect();
        assert_eq!(pings.len(), 4, "{pings:?}");
        for p in &pings {
            let cross = (p.contains("-I vA") && p.contains("192.168.131."))
                || (p.contains("-I vB") && p.contains("192.168.130."));
            assert!(!cross, "pinged across subnets: {p}");
        }
        h.finish();
    }

    #[test]
    fn a_netdev_without_an_rdma_port_fails_naming_the_ports_there_are() {
        let h = lab_host();
        h.allow(&IP, ip_out(&lab_links(false)));
        let mut answers = lab_answers();
        answers["ports"][0]["netdev"] = json!("eth0");
        let mut run = Run::for_os(answers, DEBIAN);
        let err = run.with(&h, |cx| quick().plan(cx)).unwrap_err().to_string();
        assert!(
            err.contains("ports[0].netdev: eth0 has no RDMA port"),
            "{err}"
        );
        assert!(err.contains("rxe0/1 (Ethernet, Active) -> vA"), "{err}");
        answers = lab_answers();
        answers["ports"][1]["netdev"] = json!("ib7");
        let mut run = Run::for_os(answers, DEBIAN);
        let err = run.with(&h, |cx| quick().plan(cx)).unwrap_err().to_string();
        assert!(err.contains("there is no network interface ib7"), "{err}");
        assert!(h.changes().is_empty());
        h.finish();
    }

    #[test]
    fn connected_mode_is_refused_on_enhanced_ipoib() {
        let h = FakeHost::new();
        ib_sysfs(&h, "Active", 1);
        h.allow(&IP, ip_out(&ib_links(false, "datagram")));
        let answers = ib_answers(json!({"ipoib_mode": "connected", "mtu": 65520}));
        let mut run = Run::for_os(answers, RHEL8);
        let err = run.with(&h, |cx| quick().plan(cx)).unwrap_err().to_string();
        assert!(err.contains("ports[0].ipoib_mode"), "{err}");
        assert!(err.contains("Enhanced IPoIB"), "{err}");
        assert!(err.contains("datagram-only"), "{err}");
        h.finish();
    }

    #[test]
    fn a_datagram_mtu_above_4092_is_refused() {
        let h = FakeHost::new();
        ib_sysfs(&h, "Active", 1);
        h.allow(&IP, ip_out(&ib_links(false, "datagram")));
        let mut run = Run::for_os(ib_answers(json!({"mtu": 9000})), DEBIAN);
        let err = run.with(&h, |cx| quick().plan(cx)).unwrap_err().to_string();
        assert!(err.contains("ports[0].mtu: 9000 is above 4092"), "{err}");
        h.finish();
    }

    /// One golden file per distro and fabric: the file of the first port.
    fn golden_case(os: &str, ib: bool, setup: impl Fn(&FakeHost), path: &str, name: &str) {
        let h = FakeHost::new();
        let answers = if ib {
            ib_sysfs(&h, "Active", 1);
            h.allow(&IP, ip_out(&ib_links(false, "datagram")));
            ib_answers(json!({}))
        } else {
            let h2 = &h;
            rxe(
                h2,
                "rxe0",
                "ens1f0",
                "fe80:0000:0000:0000:2c9b:86ff:fe72:9e0b",
            );
            rxe(
                h2,
                "rxe1",
                "ens1f1",
                "fe80:0000:0000:0000:a018:0fff:fe2a:3a69",
            );
            h.allow(
                &IP,
                ip_out(&[
                    link(3, "ens1f0", None, "2e:9b:86:72:9e:0b", 9000, true, &[]),
                    link(4, "ens1f1", None, "a2:18:0f:2a:3a:69", 9000, true, &[]),
                ]),
            );
            json!({"version": 1, "fabric": "roce", "subnet_manager": {"run_on_host": false},
                   "ports": [{"netdev": "ens1f0", "address": "192.168.130.10/24", "mtu": 9000},
                             {"netdev": "ens1f1", "address": "192.168.131.10/24"}],
                   "target": portals()})
        };
        setup(&h);
        let mut run = Run::for_os(answers, os);
        let plan = run.with(&h, |cx| quick().plan(cx)).unwrap();
        golden(name, &written(&plan, path));
        h.finish();
    }

    fn nm_active(devices: &'static str) -> impl Fn(&FakeHost) {
        move |h: &FakeHost| {
            h.allow(
                &["systemctl", "is-active", "NetworkManager"],
                CmdOutput::ok("active\n"),
            );
            h.allow(
                &["nmcli", "-t", "-f", "DEVICE,STATE", "device"],
                CmdOutput::ok(devices),
            );
        }
    }

    fn nm_inactive(h: &FakeHost) {
        h.allow(
            &["systemctl", "is-active", "NetworkManager"],
            CmdOutput::status(3, "inactive\n", ""),
        );
    }

    #[test]
    fn golden_rhel9_keyfiles() {
        golden_case(
            RHEL9,
            true,
            nm_active("ib0:disconnected\nib1:disconnected\neno1:connected\n"),
            "/etc/NetworkManager/system-connections/iser-ib0.nmconnection",
            "network/rhel9-ipoib-ib0.nmconnection",
        );
        golden_case(
            RHEL9,
            false,
            nm_active("ens1f0:disconnected\nens1f1:disconnected\n"),
            "/etc/NetworkManager/system-connections/iser-ens1f0.nmconnection",
            "network/rhel9-roce-ens1f0.nmconnection",
        );
    }

    #[test]
    fn golden_rhel8_ifcfg() {
        golden_case(
            RHEL8,
            true,
            nm_active("ib0:disconnected\nib1:disconnected\n"),
            "/etc/sysconfig/network-scripts/ifcfg-ib0",
            "network/rhel8-ipoib-ifcfg-ib0",
        );
        golden_case(
            RHEL8,
            false,
            |h: &FakeHost| {
                nm_inactive(h);
                h.put_file("/etc/sysconfig/network-scripts/ifcfg-lo", "DEVICE=lo\n");
            },
            "/etc/sysconfig/network-scripts/ifcfg-ens1f0",
            "network/rhel8-roce-ifcfg-ens1f0",
        );
    }

    #[test]
    fn golden_sles_wicked() {
        golden_case(
            SLES,
            true,
            nm_inactive,
            "/etc/sysconfig/network/ifcfg-ib0",
            "network/sles-ipoib-ifcfg-ib0",
        );
        golden_case(
            SLES,
            false,
            nm_inactive,
            "/etc/sysconfig/network/ifcfg-ens1f0",
            "network/sles-roce-ifcfg-ens1f0",
        );
    }

    #[test]
    fn golden_ubuntu_netplan() {
        golden_case(
            UBUNTU,
            true,
            |_| {},
            "/etc/netplan/60-iser-ib0.yaml",
            "network/ubuntu-ipoib-60-iser-ib0.yaml",
        );
        golden_case(
            UBUNTU,
            false,
            |_| {},
            "/etc/netplan/60-iser-ens1f0.yaml",
            "network/ubuntu-roce-60-iser-ens1f0.yaml",
        );
    }

    #[test]
    fn golden_debian_ifupdown() {
        let interfaces = |h: &FakeHost| {
            h.put_file(
                "/etc/network/interfaces",
                "source /etc/network/interfaces.d/*\n",
            )
        };
        golden_case(
            DEBIAN,
            true,
            interfaces,
            "/etc/network/interfaces.d/iser-ib0",
            "network/debian-ipoib-iser-ib0",
        );
        golden_case(
            DEBIAN,
            false,
            interfaces,
            "/etc/network/interfaces.d/iser-ens1f0",
            "network/debian-roce-iser-ens1f0",
        );
    }

    #[test]
    fn each_distro_brings_the_ports_up_its_own_way() {
        type Setup = Box<dyn Fn(&FakeHost)>;
        let cases: Vec<(&str, Setup, Vec<&str>)> = vec![
            (
                RHEL9,
                Box::new(nm_active("ib0:disconnected\nib1:disconnected\n")),
                vec![
                    "write /etc/NetworkManager/system-connections/iser-ib0.nmconnection",
                    "run nmcli connection load /etc/NetworkManager/system-connections/iser-ib0.nmconnection",
                    "run nmcli connection up iser-ib0",
                ],
            ),
            (
                RHEL8,
                Box::new(nm_inactive),
                vec!["write /etc/sysconfig/network-scripts/ifcfg-ib0", "run ifup ib0"],
            ),
            (
                SLES,
                Box::new(nm_inactive),
                vec!["write /etc/sysconfig/network/ifcfg-ib0", "run wicked ifreload ib0"],
            ),
            (
                UBUNTU,
                Box::new(|_: &FakeHost| {}),
                vec!["write /etc/netplan/60-iser-ib0.yaml", "write /etc/netplan/60-iser-ib1.yaml", "run netplan apply"],
            ),
        ];
        for (os, setup, want) in cases {
            let h = FakeHost::new();
            h.put_file("/etc/sysconfig/network-scripts/ifcfg-lo", "DEVICE=lo\n");
            ib_sysfs(&h, "Active", 1);
            h.allow(&IP, ip_out(&ib_links(false, "datagram")));
            setup(&h);
            let mut run = Run::for_os(ib_answers(json!({})), os);
            let plan = run.with(&h, |cx| quick().plan(cx)).unwrap();
            let got = steps_of(&plan);
            assert_eq!(&got[..want.len()], &want[..], "{os}: {}", plan.render());
            assert_eq!(got.last().map(String::as_str), Some("task reach"));
            if os == UBUNTU {
                let modes: Vec<u32> = plan
                    .actions
                    .iter()
                    .filter_map(|a| match a {
                        Action::Write { mode, .. } => Some(*mode),
                        _ => None,
                    })
                    .collect();
                assert_eq!(modes, [0o600, 0o600]);
            }
            h.finish();
        }
    }

    #[test]
    fn a_persistent_name_is_pinned_on_the_guid_bytes_and_applied_now() {
        let h = FakeHost::new();
        ib_sysfs(&h, "Active", 1);
        h.put_file(
            "/etc/network/interfaces",
            "source /etc/network/interfaces.d/*\n",
        );
        h.allow(&IP, ip_out(&ib_links(false, "datagram")));
        let answers = ib_answers(json!({"persistent_name": "iser-a"}));
        let mut run = Run::for_os(answers, DEBIAN);
        let plan = run.with(&h, |cx| quick().plan(cx)).unwrap();
        let rules = written(&plan, "/etc/udev/rules.d/70-iser-persistent-net.rules");
        golden("network/70-iser-persistent-net.rules", &rules);
        assert!(
            rules.contains("ATTR{address}==\"?*24:8a:07:03:00:a8:0a:80\""),
            "{rules}"
        );
        // Never the first bytes, which hold the queue pair number.
        assert!(!rules.contains("00:00:10:49"), "{rules}");
        assert_eq!(
            &steps_of(&plan)[..4],
            [
                "write /etc/udev/rules.d/70-iser-persistent-net.rules",
                "run ip link set dev ib0 down",
                "run ip link set dev ib0 name iser-a",
                "write /etc/network/interfaces.d/iser-iser-a",
            ]
        );
        h.finish();
    }

    #[test]
    fn a_changed_address_takes_the_port_down_with_its_old_file_first() {
        let h = lab_host();
        h.put_file(
            "/etc/network/interfaces.d/iser-vA",
            "auto vA\niface vA inet static\n    address 192.168.130.9/24\n",
        );
        let mut links = lab_links(true);
        links[2] = link(
            4,
            "vA",
            Some("veth"),
            "2e:9b:86:72:9e:0b",
            1500,
            true,
            &["192.168.130.9/24"],
        );
        h.allow(&IP, ip_out(&links));
        let mut run = Run::for_os(lab_answers(), DEBIAN);
        let plan = run.with(&h, |cx| quick().plan(cx)).unwrap();
        assert_eq!(
            steps_of(&plan),
            [
                "run ifdown vA",
                "write /etc/network/interfaces.d/iser-vA",
                "run ifup vA",
                // vB's address is already live: its new file only makes it persistent.
                "write /etc/network/interfaces.d/iser-vB",
                "task reach"
            ],
            "{}",
            plan.render()
        );
        assert!(plan.render().contains("vB already has its address live"));
        h.finish();
    }

    #[test]
    fn an_unreadable_sysfs_attribute_is_unknown_not_fatal() {
        // The kernel answers EINVAL for gid_attrs/ndevs/0 of an InfiniBand GID; a directory in
        // its place fails the read the same way.
        let h = FakeHost::new();
        ib_sysfs(&h, "Active", 1);
        h.put_file(
            "/sys/class/infiniband/mlx5_0/ports/1/gid_attrs/ndevs/0/x",
            "",
        );
        std::fs::remove_file(h.path("/sys/class/infiniband/mlx5_0/ports/1/rate")).unwrap();
        h.put_file("/sys/class/infiniband/mlx5_0/ports/1/rate/x", "");
        h.put_file(
            "/etc/network/interfaces",
            "source /etc/network/interfaces.d/*\n",
        );
        h.allow(&IP, ip_out(&ib_links(false, "datagram")));
        let mut run = Run::for_os(ib_answers(json!({})), DEBIAN);
        let plan = run.with(&h, |cx| quick().plan(cx)).unwrap();
        assert_eq!(
            steps_of(&plan)[0],
            "write /etc/network/interfaces.d/iser-ib0"
        );
        h.finish();
    }

    #[test]
    fn optional_lines_drop_out_and_names_are_checked_for_files() {
        assert_eq!(
            render_opt("a={{a}}\nb={{b}}\nc\n", &[("a", Some("1")), ("b", None)]).unwrap(),
            "a=1\nc\n"
        );
        assert!(check_file_name("ib0.8001").is_ok());
        assert!(check_file_name("a;b").is_err());
        assert!(check_file_name("a$b").is_err());
        let u = connection_uuid("iser-ib0");
        assert_eq!(u, connection_uuid("iser-ib0"));
        assert_ne!(u, connection_uuid("iser-ib1"));
        assert_eq!(&u[14..15], "8");
        assert!(sources_interfaces_d("source /etc/network/interfaces.d/*\n"));
        assert!(sources_interfaces_d("source-directory interfaces.d\n"));
        assert!(!sources_interfaces_d(
            "#source /etc/network/interfaces.d/*\n"
        ));
    }
}
