//! Decide: pure. What the operator wants and what the host shows become typed differences
//! ([`Difference`], in the operator's words through `Display`) and the actions of the plan.
//! The same [`live_differences`] serves `plan` (what to change) and `verify` (is it now
//! right), so a healthy port is defined once.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::settings::{HostAddr, IpoibMode};
use crate::steps::facts::Distro;
use crate::steps::parse::netlink::Link;
use crate::steps::{Action, Cmd, Plan, StepError};

use super::files::Stack;
use super::observe::StackTools;
use super::want::NetPort;

/// The largest IPoIB datagram-mode MTU: IB MTU 4096 minus the 4-byte IPoIB header.
pub const MAX_DATAGRAM_MTU: u32 = 4092;

/// One way a port's live state differs from what is wanted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Difference {
    /// The interface does not exist (yet).
    Absent {
        /// The port's name.
        name: String,
    },
    /// The wanted address is not on the interface.
    LacksAddress {
        /// The port's name.
        name: String,
        /// The address it should carry.
        want: HostAddr,
    },
    /// No address was given or asked for.
    NoAddress {
        /// The port's name.
        name: String,
    },
    /// The interface is down.
    Down {
        /// The port's name.
        name: String,
    },
    /// The MTU differs.
    Mtu {
        /// The port's name.
        name: String,
        /// What it has.
        have: Option<u32>,
        /// What was asked for.
        want: u32,
    },
    /// The IPoIB mode differs.
    Mode {
        /// The port's name.
        name: String,
        /// The mode asked for.
        want: IpoibMode,
    },
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Difference::Absent { name } => write!(f, "{name} does not exist yet"),
            Difference::LacksAddress { name, want } => write!(f, "{name} lacks {want}"),
            Difference::NoAddress { name } => write!(f, "{name}: no address is known for it"),
            Difference::Down { name } => write!(f, "{name} is down"),
            Difference::Mtu { name, have, want } => {
                write!(f, "{name} has MTU {have:?}, wanted {want}")
            }
            Difference::Mode { name, want } => write!(f, "{name} is not in {want} mode"),
        }
    }
}

/// What differs between a port's live state (`link`, its IPoIB mode `live_mode`) and what is
/// wanted (empty: it matches).
pub fn live_differences(
    link: Option<&Link>,
    port: &NetPort,
    mode: Option<IpoibMode>,
    live_mode: Option<&str>,
) -> Vec<Difference> {
    let name = port.name().to_string();
    let Some(link) = link else {
        return vec![Difference::Absent { name }];
    };
    let mut diff = Vec::new();
    let has = |want: &HostAddr| {
        link.addrs
            .iter()
            .any(|a| a.address == IpAddr::V4(want.addr()) && a.prefix_len == want.prefix())
    };
    match &port.answer.address {
        Some(want) if has(want) => {}
        Some(want) => diff.push(Difference::LacksAddress {
            name: name.clone(),
            want: *want,
        }),
        None => diff.push(Difference::NoAddress { name: name.clone() }),
    }
    if !link.is_up() {
        diff.push(Difference::Down { name: name.clone() });
    }
    if let Some(m) = port.answer.mtu {
        if link.mtu != Some(m) {
            diff.push(Difference::Mtu {
                name: name.clone(),
                have: link.mtu,
                want: m,
            });
        }
    }
    if let Some(m) = mode {
        if port.is_ib() && live_mode != Some(m.as_str()) {
            diff.push(Difference::Mode { name, want: m });
        }
    }
    diff
}

/// Refuse an IPoIB mode the port cannot run: connected mode on Enhanced IPoIB, a datagram
/// MTU above [`MAX_DATAGRAM_MTU`].
pub fn check_mode(port: &NetPort, mode: IpoibMode, enhanced: bool) -> Result<(), StepError> {
    let i = port.index;
    if mode == IpoibMode::Connected && enhanced {
        let rdma = port.rdma.as_ref();
        return Err(StepError::Failed(format!(
            "ports[{i}].ipoib_mode: {} ({}{}) runs Enhanced IPoIB (mlx5: ConnectX-4 and \
             newer), which is datagram-only: connected mode and MTU 65520 are not \
             supported, and the kernel refuses `connected` in /sys/class/net/{}/mode. \
             Use \"datagram\" with MTU 4092 (IB MTU 4096) or 2044",
            port.answer.netdev,
            rdma.map(|r| r.label()).unwrap_or_default(),
            rdma.and_then(|r| r.hca_type.as_ref())
                .map(|t| format!(", {t}"))
                .unwrap_or_default(),
            port.link
                .as_ref()
                .map_or(port.answer.netdev.as_str(), |l| l.name.as_str())
        )));
    }
    if let Some(mtu) = port.answer.mtu {
        if mode == IpoibMode::Datagram && mtu > MAX_DATAGRAM_MTU && port.is_ib() {
            return Err(StepError::Failed(format!(
                "ports[{i}].mtu: {mtu} is above {MAX_DATAGRAM_MTU}, the largest IPoIB \
                 datagram-mode MTU (IB MTU 4096 - 4): use 4092 or 2044"
            )));
        }
    }
    Ok(())
}

/// Why no stack can keep the addresses.
fn unmanaged_fail(names: &str) -> StepError {
    StepError::Failed(format!(
        "NetworkManager runs but does not manage {names}, and no other network stack is \
         installed: let it manage the ports (`nmcli device set <netdev> managed yes`, and \
         check unmanaged-devices in /etc/NetworkManager/conf.d)"
    ))
}

/// The distro's own network stack for the ports `names`, from the tools there are.
pub fn choose_stack(
    distro: Distro,
    major: u32,
    tools: &StackTools,
    names: &[&str],
) -> Result<Stack, StepError> {
    let managed = |devs: &std::collections::BTreeMap<String, String>| {
        names
            .iter()
            .all(|n| devs.get(*n).is_none_or(|s| !s.starts_with("unmanaged")))
    };
    let names = names.join(", ");
    match distro {
        Distro::Ubuntu if tools.netplan => Ok(Stack::Netplan),
        Distro::Ubuntu => Err(StepError::Failed(
            "netplan is not installed: apt-get install netplan.io".into(),
        )),
        Distro::Debian if tools.ifup => Ok(Stack::Ifupdown),
        Distro::Debian => match &tools.nm {
            Some(d) if managed(d) => Ok(Stack::Keyfile),
            Some(_) => Err(unmanaged_fail(&names)),
            None => Err(StepError::Failed(
                "neither ifupdown nor NetworkManager is available to keep the port \
                 addresses: apt-get install ifupdown"
                    .into(),
            )),
        },
        Distro::Rhel => {
            let scripts = tools.ifup && tools.scripts_dir;
            match (major <= 8, &tools.nm) {
                (true, Some(_)) => Ok(Stack::Ifcfg { nm: true }),
                (true, None) | (false, None) if scripts => Ok(Stack::Ifcfg { nm: false }),
                (false, Some(d)) if managed(d) => Ok(Stack::Keyfile),
                (false, Some(_)) => Err(unmanaged_fail(&names)),
                _ => Err(StepError::Failed(
                    "NetworkManager is not running and network-scripts is not installed: \
                     systemctl enable --now NetworkManager"
                        .into(),
                )),
            }
        }
        Distro::Sles => match &tools.nm {
            Some(d) if managed(d) => Ok(Stack::Keyfile),
            _ if tools.wicked => Ok(Stack::Wicked),
            Some(_) => Err(unmanaged_fail(&names)),
            None => Err(StepError::Failed(
                "neither wicked nor NetworkManager is available: zypper install wicked".into(),
            )),
        },
    }
}

/// One port's file and live state, as `plan` weighs them.
#[derive(Debug, Clone)]
pub struct PortChange {
    /// The port's name.
    pub name: String,
    /// Its file.
    pub path: PathBuf,
    /// The file as it is (`None`: absent).
    pub old: Option<String>,
    /// The file as it should be.
    pub new: String,
    /// The mode of a new file.
    pub mode: u32,
    /// What differs live.
    pub diff: Vec<Difference>,
    /// Whether the interface is up now.
    pub was_up: bool,
}

/// The actions that bring one port to its file and wanted state with `stack` (nothing when
/// both match). Returns whether netplan must apply afterwards.
pub fn port_actions(plan: &mut Plan, stack: Stack, c: PortChange) -> bool {
    let changed = c.old.as_deref() != Some(c.new.as_str());
    if !changed && c.diff.is_empty() {
        return false;
    }
    let name = c.name.as_str();
    let why_up = if c.diff.is_empty() {
        format!("apply the new configuration of {name}")
    } else {
        let d: Vec<String> = c.diff.iter().map(ToString::to_string).collect();
        format!("bring {name} up as configured ({})", d.join(", "))
    };
    let had = c.old.is_some();
    let live_ok = c.diff.is_empty();
    let path_s = c.path.display().to_string();
    let write = Action::write(
        &c.path,
        c.old,
        c.new,
        c.mode,
        format!(
            "keep {name}'s address across reboots ({})",
            stack.describe()
        ),
    );
    let cmd = |argv: &[&str]| Cmd::change(argv.iter().copied()).timeout(Duration::from_secs(90));
    match stack {
        Stack::Keyfile | Stack::Ifcfg { nm: true } => {
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
                if had && c.was_up {
                    plan.push(Action::run(
                        cmd(&["ifdown", name]),
                        format!("take {name} down with its old configuration"),
                    ));
                }
                plan.push(write);
                if had || !live_ok {
                    plan.push(Action::run(cmd(&["ifup", name]), why_up));
                } else {
                    plan.note(format!(
                        "{name} already has its address live; the new file keeps it across reboots"
                    ));
                }
            } else if stack == Stack::Ifupdown {
                // ifupdown may record the port as up while its address is gone.
                plan.push(Action::run(cmd(&["ifup", "--force", name]), why_up));
            } else {
                plan.push(Action::run(cmd(&["ifup", name]), why_up));
            }
        }
        Stack::Wicked => {
            if changed {
                plan.push(write);
                plan.push(Action::run(cmd(&["wicked", "ifreload", name]), why_up));
            } else {
                plan.push(Action::run(cmd(&["wicked", "ifup", name]), why_up));
            }
        }
        Stack::Netplan => {
            if changed {
                plan.push(write);
            }
            return true;
        }
    }
    false
}

/// Whether `cmd` brings one port up by itself (`ifup NAME`, `nmcli connection up ID`).
fn brings_one_up(cmd: &Cmd) -> bool {
    let argv: Vec<&str> = cmd.argv.iter().map(String::as_str).collect();
    matches!(
        argv.as_slice(),
        ["ifup", ..] | ["nmcli", "connection", "up", _]
    )
}

/// The commands that bring the ports up, taken out of `plan` to run at once, with why each
/// runs; nothing is taken when fewer than two ports come up. The ports are independent:
/// ifupdown locks each interface by itself (Debian's `ifup@.service` brings hotplugged
/// ports up concurrently the same way) and NetworkManager activates each profile on its own,
/// so two ports cost the time of one (ifupdown's `ifup` took about 1 s per port in the lab).
/// Everything else in the plan keeps its order, before them: each port's file is written (and
/// its old definition taken down) before any port comes up.
pub fn take_ups(plan: &mut Plan) -> Vec<(Cmd, String)> {
    let is_up = |a: &Action| matches!(a, Action::Run { cmd, .. } if brings_one_up(cmd));
    if plan.actions.iter().filter(|a| is_up(a)).count() < 2 {
        return Vec::new();
    }
    let mut ups = Vec::new();
    plan.actions.retain(|a| match a {
        Action::Run { cmd, why, .. } if brings_one_up(cmd) => {
            ups.push((cmd.clone(), why.clone()));
            false
        }
        _ => true,
    });
    ups
}

/// The new /etc/network/interfaces when it does not read interfaces.d yet (`None`: it does).
pub fn interfaces_source(old: Option<&str>) -> Option<String> {
    if old.is_some_and(super::files::sources_interfaces_d) {
        return None;
    }
    let mut new = old.unwrap_or_default().to_string();
    if !new.is_empty() && !new.ends_with('\n') {
        new.push('\n');
    }
    let add = include_str!("../../templates/network/ifupdown-source");
    new.push_str(if old.is_none() { add.trim_start() } else { add });
    Some(new)
}

/// The udev rules file for `rules` (one line per renamed port).
pub fn udev_rules_file(rules: &[String]) -> String {
    let mut text = include_str!("../../templates/70-iser-persistent-net.rules").to_string();
    for r in rules {
        text.push_str(r);
    }
    text
}

#[cfg(test)]
mod tests;
