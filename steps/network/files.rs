//! The files of the network step, rendered from `templates/` with validated values only, in
//! the distro's own format. Pure: what only the device tells (its RDMA port, GUID, link layer,
//! MAC) comes in as [`Identity`], which in a dry run before the ports exist carries
//! placeholders ([`Plan::learn`]) instead of invented values.

use std::path::PathBuf;

use crate::steps::templates::render;
use crate::steps::{Plan, StepError};

use super::want::NetPort;

/// What the device tells about a port, as it goes into files: its own words, or in a dry run
/// placeholders for what only a real run learns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// `mlx5_0 port 1, InfiniBand, GUID 0x...` for comments and messages.
    pub describe: String,
    /// The stack's word for the link layer: NetworkManager's type (`infiniband`), ifcfg's
    /// TYPE (`InfiniBand`), wicked's IPOIB (`yes`; `None` on Ethernet); `None` where the
    /// stack has no such word.
    pub type_word: Option<String>,
}

impl Identity {
    /// The identity of `port` in the files of `stack`; placeholders in `plan` for what its
    /// device has not told yet.
    pub fn of(port: &NetPort, stack: Stack, plan: &mut Plan) -> Identity {
        let netdev = &port.answer.netdev;
        let ll = match port.ib {
            Some(true) => "InfiniBand".to_string(),
            Some(false) => "Ethernet/RoCE".to_string(),
            None => plan.learn(&format!("link layer of {netdev}")),
        };
        let (at, guid) = match &port.rdma {
            Some(r) => (
                format!("{} port {}", r.info.ca, r.info.number),
                r.guid().map(|g| g.to_string()),
            ),
            None => (
                plan.learn(&format!("RDMA device and port of {netdev}")),
                Some(plan.learn(&format!("port GUID of {netdev}"))),
            ),
        };
        let describe = match guid {
            Some(g) => format!("{at}, {ll}, GUID {g}"),
            None => format!("{at}, {ll}"),
        };
        let words = match stack {
            Stack::Keyfile => Some(("infiniband", Some("ethernet"))),
            Stack::Ifcfg { .. } => Some(("InfiniBand", Some("Ethernet"))),
            Stack::Wicked => Some(("yes", None)),
            Stack::Netplan | Stack::Ifupdown => None,
        };
        let type_word = words.and_then(|(ib, eth)| match port.ib {
            Some(true) => Some(ib.to_string()),
            Some(false) => eth.map(str::to_string),
            None => Some(plan.learn(&format!(
                "{ib} or {}, from the link layer of {netdev}",
                eth.unwrap_or("nothing")
            ))),
        });
        Identity {
            describe,
            type_word,
        }
    }
}

/// Fill a template whose lines that mention an absent value are left out (an MTU that was not
/// given, the IPoIB mode of a RoCE port).
pub(super) fn render_opt(
    template: &str,
    vars: &[(&str, Option<&str>)],
) -> Result<String, StepError> {
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
pub(super) fn connection_uuid(name: &str) -> String {
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
    /// The stack in the operator's words.
    pub fn describe(self) -> &'static str {
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
    port: &NetPort,
    id: &Identity,
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
    // The mode line stays unless the port is known to be Ethernet (RoCE has no IPoIB).
    let mode = if port.ib == Some(false) { None } else { mode };
    let desc = id.describe.clone();
    let veth = port.link.as_ref().and_then(|l| l.kind.as_deref()) == Some("veth");
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
            let vars = common(&[("uuid", Some(&uuid)), ("type", id.type_word.as_deref())]);
            (
                PathBuf::from(format!(
                    "/etc/NetworkManager/system-connections/iser-{name}.nmconnection"
                )),
                fill(
                    include_str!("../../templates/network/nm-keyfile.nmconnection"),
                    vars,
                )?,
                0o600,
            )
        }
        Stack::Ifcfg { .. } => {
            let cm = mode.map(|m| if m == "connected" { "yes" } else { "no" });
            let vars = common(&[("type", id.type_word.as_deref()), ("connected_mode", cm)]);
            (
                PathBuf::from(format!("/etc/sysconfig/network-scripts/ifcfg-{name}")),
                fill(include_str!("../../templates/network/ifcfg"), vars)?,
                0o644,
            )
        }
        Stack::Wicked => {
            let vars = common(&[("ipoib", id.type_word.as_deref())]);
            (
                PathBuf::from(format!("/etc/sysconfig/network/ifcfg-{name}")),
                fill(include_str!("../../templates/network/wicked-ifcfg"), vars)?,
                0o644,
            )
        }
        Stack::Netplan => (
            PathBuf::from(format!("/etc/netplan/60-iser-{name}.yaml")),
            fill(
                include_str!("../../templates/network/netplan.yaml"),
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
                    include_str!("../../templates/network/ifupdown"),
                    common(&[("start", Some(start))]),
                )?,
                0o644,
            )
        }
    })
}

/// The udev rule that pins a port's name (a placeholder for what its device has not told yet).
pub fn udev_rule(port: &NetPort, name: &str, plan: &mut Plan) -> Result<String, StepError> {
    let netdev = &port.answer.netdev;
    match (port.ib, &port.rdma) {
        (Some(true), Some(rdma)) => {
            let g = rdma.guid().ok_or_else(|| {
                StepError::Failed(format!("{netdev}: the port has no GUID to pin its name to"))
            })?;
            let bytes: Vec<String> =
                g.0.to_be_bytes()
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
            ipoib_rule(&bytes.join(":"), name)
        }
        (Some(true), None) => {
            ipoib_rule(&plan.learn(&format!("port GUID bytes of {netdev}")), name)
        }
        (Some(false), _) => {
            let mac = match port.link.as_ref() {
                Some(l) => l
                    .address
                    .as_deref()
                    .filter(|m| m.len() == 17)
                    .ok_or_else(|| {
                        StepError::Failed(format!("{netdev}: no MAC address to pin its name to"))
                    })?
                    .to_ascii_lowercase(),
                None => plan.learn(&format!("MAC address of {netdev}")),
            };
            render_opt(
                include_str!("../../templates/udev/ether.rule"),
                &[("mac", Some(&mac)), ("name", Some(name))],
            )
        }
        (None, _) => Ok(format!(
            "{}\n",
            plan.learn(&format!(
                "udev rule naming {netdev} {name}, on its GUID (InfiniBand) or MAC (Ethernet)"
            ))
        )),
    }
}

fn ipoib_rule(guid_bytes: &str, name: &str) -> Result<String, StepError> {
    render_opt(
        include_str!("../../templates/udev/ipoib.rule"),
        &[("guid_bytes", Some(guid_bytes)), ("name", Some(name))],
    )
}

/// Where the persistent names are pinned.
pub const UDEV_RULES: &str = "/etc/udev/rules.d/70-iser-persistent-net.rules";
/// ifupdown's main file.
pub const INTERFACES: &str = "/etc/network/interfaces";

/// Whether /etc/network/interfaces reads /etc/network/interfaces.d.
pub(super) fn sources_interfaces_d(text: &str) -> bool {
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
