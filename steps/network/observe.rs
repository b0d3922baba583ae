//! Observe: the only IO of the network step, all of it read-only. What is on the host (RDMA
//! ports from sysfs, interfaces from `ip -j -d addr show`, the distro, which network tools are
//! there and whether NetworkManager manages the ports, the live IPoIB mode) comes back as
//! typed values for `decide`. Shared with the subnet-manager step: [`rdma_ports`], [`links`],
//! [`rdma_port_of`], [`inventory`], [`state_name`], [`distro`], [`systemctl_is`].

use std::collections::BTreeMap;
use std::path::Path;

use crate::steps::facts::Distro;
use crate::steps::parse::ibstat::{parse_sysfs_port, Guid, LinkLayer, Port, PortState};
use crate::steps::parse::netlink::{parse_ip_j_addr, parse_rdma_link, IpoibMode, Link};
use crate::steps::{Cmd, Ctx, Host, StepError};

const SYS_IB: &str = "/sys/class/infiniband";

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
    let argv = ["ip", "-j", "-d", "addr", "show"];
    // Reusable: subnet-manager and network, and network's plan and verify, ask in turn.
    let cmd = Cmd::probe(argv).reusable();
    let out = cx.host.run(&cmd)?;
    if !out.success() {
        return Err(StepError::command(&cmd, &out, None));
    }
    parse_ip_j_addr(&out.stdout).map_err(|e| {
        StepError::Failed(format!("reading the output of `{}`: {e}", Cmd::probe(argv)))
    })
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

/// The distro family and major version (from preflight's facts, else os-release).
pub fn distro(cx: &Ctx<'_>) -> Result<(Distro, u32), StepError> {
    let os = match &cx.facts.os {
        Some(os) => os.clone(),
        None => crate::steps::preflight::observe::os(cx)?,
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

/// The devices NetworkManager knows and their states, when it runs.
pub fn nm_devices(cx: &Ctx<'_>) -> Result<Option<BTreeMap<String, String>>, StepError> {
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

/// Whether the port runs Enhanced IPoIB (mlx5: ConnectX-4 and newer), which is datagram-only.
pub fn enhanced_ipoib(cx: &Ctx<'_>, rdma: &RdmaPort, link: &Link) -> Result<bool, StepError> {
    if link.ipoib.as_ref().and_then(|i| i.mode.as_ref()) == Some(&IpoibMode::Connected) {
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
    if rdma.info.ca.starts_with("mlx5") {
        return Ok(true);
    }
    // Connect-IB (MT4113) and every ConnectX from 4 on (MT4115 ...) are mlx5 devices;
    // ConnectX-2/3 are MT26xxx and MT4099-MT4104.
    let n: Option<u32> = rdma
        .hca_type
        .as_deref()
        .and_then(|t| t.strip_prefix("MT"))
        .and_then(|d| d.parse().ok());
    Ok(n.is_some_and(|n| n >= 4113 && !(26000..27000).contains(&n)))
}

/// The IPoIB mode an interface runs in now (`ip -d` or `/sys/class/net/<netdev>/mode`).
pub fn live_mode(cx: &Ctx<'_>, link: &Link) -> Result<Option<String>, StepError> {
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

/// What the distro's network stacks need, as found on the host. In a dry run the stack's
/// tool that preflight would install counts as there, so the plan shows the stack a real
/// run will use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StackTools {
    /// `ifup` (ifupdown, or network-scripts on RHEL).
    pub ifup: bool,
    /// `netplan`.
    pub netplan: bool,
    /// `wicked`.
    pub wicked: bool,
    /// `/etc/sysconfig/network-scripts` exists.
    pub scripts_dir: bool,
    /// NetworkManager's devices and their states, when it runs (looked at only where the
    /// distro's choice depends on it).
    pub nm: Option<BTreeMap<String, String>>,
}

/// Look at the network tools of `distro`.
pub fn stack_tools(cx: &Ctx<'_>, distro: Distro) -> Result<StackTools, StepError> {
    let has = |p: &str| cx.host.which(p).is_some();
    let planned = crate::steps::preflight::decide::network_tool(distro, &has)
        .filter(|p| cx.planning_without(p));
    let there = |p: &str| has(p) || planned == Some(p);
    let mut t = StackTools {
        ifup: there("ifup"),
        netplan: there("netplan"),
        wicked: there("wicked"),
        scripts_dir: cx.host.exists(Path::new("/etc/sysconfig/network-scripts")),
        nm: None,
    };
    let wants_nm = match distro {
        Distro::Ubuntu => false,
        Distro::Debian => !t.ifup,
        Distro::Rhel | Distro::Sles => true,
    };
    if wants_nm {
        t.nm = if planned == Some("nmcli") {
            // Installed by preflight: it will manage every device it is not told to leave.
            Some(BTreeMap::new())
        } else {
            nm_devices(cx)?
        };
    }
    Ok(t)
}
