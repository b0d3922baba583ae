//! The subnet-manager step's decisions, pure (no IO, no `Ctx`): which way opensm is started,
//! what the worksheet calls the placement, the actions that bring the files and services to
//! what is wanted, and, after the apply, which ports are not Active yet and why.
//!
//! A port's GUID and priority are either known or a placeholder a real run learns (a dry
//! run on a host without RDMA devices): the same decisions serve both, so a dry run shows
//! exactly the actions a real run would take once those values are known.

use std::fmt;

use crate::steps::facts::Distro;
use crate::steps::network::state_name;
use crate::steps::parse::ibstat::{Guid, Port, PortState};
use crate::steps::templates::render;
use crate::steps::{Action, Cmd, StepError};

/// `/etc/systemd/system/opensm@.service`: the templated unit.
pub const UNIT: &str = "/etc/systemd/system/opensm@.service";
/// RHEL's opensm settings (`GUIDS`, `PRIORITY`).
pub const SYSCONFIG: &str = "/etc/sysconfig/opensm";

/// A port GUID, or the placeholder of one a real run reads from the port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortGuid {
    /// Read from the host.
    Known(Guid),
    /// `<port GUID of ib0>`: only a real run knows it.
    Learned(String),
}

impl fmt::Display for PortGuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortGuid::Known(g) => write!(f, "{g}"),
            PortGuid::Learned(p) => f.write_str(p),
        }
    }
}

/// An opensm priority (0-15), or the placeholder of one that depends on a GUID not known yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Priority {
    /// Given (or asked, or opensm's default 0).
    Known(u8),
    /// Looked up by a port GUID only a real run knows.
    Learned(String),
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Priority::Known(p) => write!(f, "{p}"),
            Priority::Learned(p) => f.write_str(p),
        }
    }
}

/// A port on which an opensm of this host runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Managed {
    /// The port's netdev (its persistent name when it has one).
    pub netdev: String,
    /// Its GUID: opensm binds it with `-g`.
    pub guid: PortGuid,
    /// Its opensm priority.
    pub priority: Priority,
}

/// The env file of a port's opensm instance.
pub fn env_path(guid: &PortGuid) -> String {
    format!("/etc/opensm/opensm-{guid}.env")
}

/// The instance unit of a port.
pub fn instance(guid: &PortGuid) -> String {
    format!("opensm@{guid}.service")
}

/// How opensm is started at boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Launch {
    /// RHEL's opensm.service reading /etc/sysconfig/opensm.
    Sysconfig,
    /// The templated unit, one instance per port GUID.
    Units,
}

/// RHEL's sysconfig file when every port wants the same (known) priority, since it has one
/// `PRIORITY` for all; the templated units otherwise and everywhere else.
pub fn launch(distro: Distro, priorities: &[Priority]) -> Launch {
    // A placeholder may turn out to be any priority: only known, equal ones share the file.
    let one = priorities.len() == 1
        || (priorities.windows(2).all(|w| w[0] == w[1])
            && priorities.iter().all(|p| matches!(p, Priority::Known(_))));
    if distro == Distro::Rhel && one {
        Launch::Sysconfig
    } else {
        Launch::Units
    }
}

/// Whether a systemd unit runs now and starts at boot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Service {
    /// `systemctl is-active` says active.
    pub active: bool,
    /// `systemctl is-enabled` says enabled.
    pub enabled: bool,
}

/// One port's opensm instance as found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Instance {
    /// Its env file.
    pub env: Option<String>,
    /// Its unit.
    pub service: Service,
}

/// The files and services the plan may change, as found (read-only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// For [`Launch::Sysconfig`].
    Sysconfig {
        /// /etc/sysconfig/opensm.
        old: Option<String>,
        /// opensm.service.
        service: Service,
    },
    /// For [`Launch::Units`].
    Units {
        /// The templated unit file.
        unit: Option<String>,
        /// The packaged opensm.service is enabled or running.
        stock_on: bool,
        /// One per managed port, in order.
        instances: Vec<Instance>,
    },
}

/// `/etc/sysconfig/opensm` with its GUIDS and PRIORITY lines replaced by `block`; every other
/// line is kept.
pub fn edit_sysconfig(old: Option<&str>, block: &str) -> String {
    let marker = block.lines().next().unwrap_or_default();
    let mut out: String = old
        .unwrap_or_default()
        .lines()
        .filter(|l| {
            let t = l.trim_start();
            !(t.starts_with("GUIDS=") || t.starts_with("PRIORITY=") || *l == marker)
        })
        .map(|l| format!("{l}\n"))
        .collect();
    out.push_str(block);
    out
}

fn internal(e: impl fmt::Display) -> StepError {
    StepError::Failed(format!("internal: {e}"))
}

fn enable_now(unit: &str) -> Action {
    Action::run(
        Cmd::change(["systemctl", "enable", "--now", unit]),
        "start opensm now and at every boot",
    )
}

/// The actions that make `managed` ports served by opensm as `seen` now stands (empty when
/// all is in place). `opensm` is the program's path, written into the unit.
pub fn actions(managed: &[Managed], seen: &Seen, opensm: &str) -> Result<Vec<Action>, StepError> {
    if managed.is_empty() {
        return Ok(Vec::new());
    }
    match seen {
        Seen::Sysconfig { old, service } => sysconfig_actions(managed, old.as_deref(), *service),
        Seen::Units {
            unit,
            stock_on,
            instances,
        } => unit_actions(managed, unit.as_deref(), *stock_on, instances, opensm),
    }
}

fn sysconfig_actions(
    managed: &[Managed],
    old: Option<&str>,
    service: Service,
) -> Result<Vec<Action>, StepError> {
    let guids: Vec<String> = managed.iter().map(|p| p.guid.to_string()).collect();
    let block = render(
        include_str!("../../templates/opensm-sysconfig"),
        &[
            ("guids", &guids.join(" ")),
            ("priority", &managed[0].priority.to_string()),
        ],
    )
    .map_err(internal)?;
    let new = edit_sysconfig(old, &block);
    let changed = old != Some(new.as_str());
    let mut out = Vec::new();
    if changed {
        out.push(Action::write(
            SYSCONFIG,
            old.map(String::from),
            new,
            0o644,
            "one opensm per iSER port GUID, with its priority",
        ));
    }
    if !service.active {
        out.push(enable_now("opensm.service"));
    } else {
        if !service.enabled {
            out.push(Action::run(
                Cmd::change(["systemctl", "enable", "opensm.service"]),
                "start opensm at every boot",
            ));
        }
        if changed {
            out.push(Action::run(
                Cmd::change(["systemctl", "restart", "opensm.service"]),
                "opensm reads the new GUIDS and PRIORITY",
            ));
        }
    }
    Ok(out)
}

fn unit_actions(
    managed: &[Managed],
    old_unit: Option<&str>,
    stock_on: bool,
    instances: &[Instance],
    opensm: &str,
) -> Result<Vec<Action>, StepError> {
    let unit = render(
        include_str!("../../templates/opensm@.service"),
        &[("opensm", opensm)],
    )
    .map_err(internal)?;
    let unit_changed = old_unit != Some(unit.as_str());
    let mut out = Vec::new();
    if unit_changed {
        out.push(Action::write(
            UNIT,
            old_unit.map(String::from),
            unit,
            0o644,
            "a templated opensm unit, one instance per port GUID (always -g)",
        ));
    }
    // The packaged service starts opensm on ports of its own choosing; it would contend with
    // the per-GUID instances.
    if stock_on {
        out.push(Action::run(
            Cmd::change(["systemctl", "disable", "--now", "opensm.service"]),
            "the packaged opensm service would contend with the per-port instances",
        ));
    }
    let mut starts = Vec::new();
    for (p, seen) in managed.iter().zip(instances) {
        let env = render(
            include_str!("../../templates/opensm-instance.env"),
            &[
                ("guid", &p.guid.to_string()),
                ("priority", &p.priority.to_string()),
            ],
        )
        .map_err(internal)?;
        let env_changed = seen.env.as_deref() != Some(env.as_str());
        if env_changed {
            out.push(Action::write(
                env_path(&p.guid),
                seen.env.clone(),
                env,
                0o644,
                format!("priority {} for the opensm of {}", p.priority, p.netdev),
            ));
        }
        let unit = instance(&p.guid);
        if !seen.service.active {
            starts.push(enable_now(&unit));
        } else {
            if !seen.service.enabled {
                starts.push(Action::run(
                    Cmd::change(["systemctl", "enable", &unit]),
                    "start opensm at every boot",
                ));
            }
            if unit_changed || env_changed || stock_on {
                starts.push(Action::run(
                    Cmd::change(["systemctl", "restart", &unit]),
                    "opensm takes the new settings",
                ));
            }
        }
    }
    if unit_changed {
        out.push(Action::run(
            Cmd::change(["systemctl", "daemon-reload"]),
            "systemd reads the new unit",
        ));
    }
    out.extend(starts);
    Ok(out)
}

/// A subnet manager elsewhere on a port's fabric: where it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct External {
    /// Its lid (the port's SM lid, or as `sminfo` reports it).
    pub lid: u32,
    /// Its port GUID, when `sminfo` answered.
    pub guid: Option<Guid>,
    /// Its priority (0-15), when `sminfo` answered.
    pub priority: Option<u8>,
}

impl fmt::Display for External {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SM lid {}", self.lid)?;
        if let Some(g) = self.guid {
            write!(f, ", port GUID {g}")?;
        }
        if let Some(p) = self.priority {
            write!(f, ", priority {p}")?;
        }
        Ok(())
    }
}

/// The worksheet's placement: where the subnet manager of each port is. `external` holds
/// the ports served from elsewhere, with the subnet manager seen there.
pub fn placement(managed: &[&str], external: &[(&str, External)]) -> String {
    let mut seen: Vec<String> = Vec::new();
    for (_, e) in external {
        let e = e.to_string();
        if !seen.contains(&e) {
            seen.push(e);
        }
    }
    let where_ = seen.join("; ");
    let names = |ps: &[&str]| ps.join(", ");
    let ext_names: Vec<&str> = external.iter().map(|(n, _)| *n).collect();
    match (managed.is_empty(), external.is_empty()) {
        (true, _) => format!("already on the fabric ({where_})"),
        (false, true) => "on this host".to_string(),
        (false, false) => format!(
            "on this host for {}; already on the fabric ({where_}) for {}",
            names(managed),
            names(&ext_names)
        ),
    }
}

/// A served port that is not Active: the difference verify reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lagging {
    /// Netdev of the port.
    pub netdev: String,
    /// RDMA device.
    pub ca: String,
    /// Port number.
    pub number: u8,
    /// Port GUID.
    pub guid: Guid,
    /// The state seen (`missing`: ibstat no longer lists it).
    pub state: PortState,
}

impl fmt::Display for Lagging {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}/{}, GUID {}): State: {}",
            self.netdev,
            self.ca,
            self.number,
            self.guid,
            state_name(&self.state)
        )
    }
}

/// A port to check after the apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    /// Netdev of the port.
    pub netdev: String,
    /// RDMA device.
    pub ca: String,
    /// Port number.
    pub number: u8,
    /// Port GUID.
    pub guid: Guid,
}

/// The served ports `live` (ibstat) does not show Active: empty means healthy.
pub fn lagging(served: &[Served], live: &[Port]) -> Vec<Lagging> {
    served
        .iter()
        .filter_map(|p| {
            let state = live
                .iter()
                .find(|l| l.port_guid == p.guid)
                .map(|l| l.state.clone())
                .unwrap_or(PortState::Other("missing".into()));
            (state != PortState::Active).then(|| Lagging {
                netdev: p.netdev.clone(),
                ca: p.ca.clone(),
                number: p.number,
                guid: p.guid,
                state,
            })
        })
        .collect()
}

/// Why ports stay not Active, from their states and the SELinux mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// Initializing under SELinux enforcing: opensm denied `manage_subnet`.
    SelinuxDenied,
    /// Initializing: no subnet manager configured the port.
    NoSubnetManager,
    /// No link.
    NoLink,
}

impl Cause {
    /// The cause for these lagging ports.
    pub fn of(lagging: &[Lagging], selinux_enforcing: bool) -> Cause {
        let init = lagging.iter().any(|l| l.state == PortState::Initializing);
        match (init, selinux_enforcing) {
            (true, true) => Cause::SelinuxDenied,
            (true, false) => Cause::NoSubnetManager,
            (false, _) => Cause::NoLink,
        }
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Cause::SelinuxDenied => {
                "SELinux is enforcing, and ports that stay in Initializing while opensm runs \
                 are the sign of SELinux denying opensm `manage_subnet` on \
                 `infiniband_endport` (see `ausearch -m avc -ts recent | grep manage_subnet`). \
                 Fix: update selinux-policy, or allow it with a local module \
                 (`ausearch -m avc -c opensm --raw | audit2allow -M opensm-local && semodule -i \
                 opensm-local.pp`), then restart opensm"
            }
            Cause::NoSubnetManager => {
                "the link is up but no subnet manager has configured the port: check that \
                 opensm runs (`systemctl status 'opensm*'`) and its log \
                 /var/log/opensm-<GUID>.log"
            }
            Cause::NoLink => {
                "the port has no link: check the cable and the array port at the other end"
            }
        })
    }
}
