//! What is there: the only IO of the iscsi step, read-only. iscsid.conf and its mode, the
//! initiator name file, whether ib_iser is loaded, the distro's units (one `systemctl show`
//! for all of them), and each iface record (read concurrently).
//! At plan time it also runs `iscsi-iname` when a name must be generated (it only prints a
//! random name, so the plan can show the exact file it writes).
//!
//! On a dry run where open-iscsi is not installed yet (preflight installs it), nothing that
//! only open-iscsi could answer is probed: the units and ifaces are absent, and a name to
//! generate is left for the real run ([`NewName::Later`]).

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::decide::{service_units, ISCSID_SOCKET};
use super::want::Wanted;
use super::{INITIATORNAME, ISCSID_CONF};
use crate::answers::check_iscsi_name;
use crate::settings::InitiatorIqn;
use crate::steps::host::units::unit_states;
use crate::steps::parse::iscsiadm::{parse_initiatorname, parse_record};
use crate::steps::{Cmd, Ctx, Host, StepError};

/// An iface record's settings, as `iscsiadm -m iface -I NAME` prints them.
pub(super) type Record = BTreeMap<String, String>;

pub(super) use crate::steps::host::units::UnitState;

/// A name `iscsi-iname` generated for a host without one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum NewName {
    /// None was needed (or this is verify).
    NotNeeded,
    /// Generated now.
    Generated(String),
    /// Only a real run can generate it (a dry run before open-iscsi is installed).
    Later,
}

/// What the iscsi step found.
#[derive(Debug, Clone)]
pub(super) struct Observed {
    /// iscsid.conf's text, when it exists.
    pub conf: Option<String>,
    /// iscsid.conf's real path (under the root) and mode, when it exists.
    pub conf_mode: Option<(PathBuf, u32)>,
    /// initiatorname.iscsi's text, when it exists.
    pub initiatorname: Option<String>,
    /// The name generated for a host without one.
    pub new_name: NewName,
    /// `/sys/module/ib_iser` exists.
    pub ib_iser: bool,
    /// The distro's units in order; `None` when open-iscsi is not installed (dry run).
    pub units: Option<Vec<(&'static str, UnitState)>>,
    /// Each wanted iface's record (`None`: no such iface), in the wanted order.
    pub ifaces: Vec<Option<Record>>,
}

/// When the step looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Planning: may generate a name, and plans from the answers before open-iscsi.
    Plan,
    /// Verifying a real run: reads everything.
    Verify,
}

/// The iface record, or `None` when there is no such iface.
fn iface_record(host: &dyn Host, name: &str) -> Result<Option<Record>, StepError> {
    let out = host.run(&Cmd::probe(["iscsiadm", "-m", "iface", "-I", name]))?;
    let rec = parse_record(&out.stdout);
    Ok((out.success() && rec.contains_key("iface.iscsi_ifacename")).then_some(rec))
}

/// Each wanted iface's record, in the wanted order. Read concurrently: each is one iscsiadm
/// reading its own file, and one after another cost 0.2-0.3 s per iface in the lab.
fn iface_records(host: &dyn Host, w: &Wanted) -> Result<Vec<Option<Record>>, StepError> {
    crate::steps::map_at_once(&w.ifaces, |iface| iface_record(host, &iface.name))
}

/// A name from `iscsi-iname`, when `auto` finds none in the file.
fn new_name(cx: &Ctx<'_>, w: &Wanted, file: Option<&str>) -> Result<NewName, StepError> {
    if w.answer != InitiatorIqn::Auto || file.and_then(parse_initiatorname).is_some() {
        return Ok(NewName::NotNeeded);
    }
    if cx.planning_without("iscsi-iname") {
        return Ok(NewName::Later);
    }
    let cmd = Cmd::probe(["iscsi-iname"]);
    let out = cx.host.run(&cmd)?;
    let name = out.stdout.trim().to_string();
    if !out.success() || check_iscsi_name(&name).is_err() {
        return Err(StepError::command(
            &cmd,
            &out,
            Some(
                "iscsi-iname comes with open-iscsi: reinstall it, or set host.initiator_iqn \
                 to an IQN"
                    .into(),
            ),
        ));
    }
    Ok(NewName::Generated(name))
}

/// The files and the module: iscsid.conf (text, real path and mode), initiatorname.iscsi,
/// `/sys/module/ib_iser`. Reads only, no process.
type Files = (Option<String>, Option<(PathBuf, u32)>, Option<String>, bool);

fn files(cx: &Ctx<'_>) -> Result<Files, StepError> {
    let conf = cx.host.read(Path::new(ISCSID_CONF))?;
    let conf_mode = match conf {
        Some(_) => {
            let real = crate::steps::host::under_root(cx.host.root(), Path::new(ISCSID_CONF))?;
            let mode = std::fs::metadata(&real)
                .map(|m| m.permissions().mode() & 0o777)
                .unwrap_or(0o600);
            Some((real, mode))
        }
        None => None,
    };
    let initiatorname = cx.host.read(Path::new(INITIATORNAME))?;
    let ib_iser = cx.host.exists(Path::new("/sys/module/ib_iser"));
    Ok((conf, conf_mode, initiatorname, ib_iser))
}

/// Verify after a plan that changed nothing: the files read again (no process), the units
/// and ifaces as plan saw them a moment before (nothing was applied in between).
pub(super) fn recheck(cx: &Ctx<'_>, prior: &Observed) -> Result<Observed, StepError> {
    let (conf, conf_mode, initiatorname, ib_iser) = files(cx)?;
    Ok(Observed {
        conf,
        conf_mode,
        initiatorname,
        new_name: NewName::NotNeeded,
        ib_iser,
        units: prior.units.clone(),
        ifaces: prior.ifaces.clone(),
    })
}

/// Look at everything the step manages.
pub(super) fn observe(cx: &Ctx<'_>, w: &Wanted, phase: Phase) -> Result<Observed, StepError> {
    let not_installed = phase == Phase::Plan && cx.planning_without("iscsiadm");
    let (conf, conf_mode, initiatorname, ib_iser) = files(cx)?;
    let new_name = match phase {
        Phase::Plan => new_name(cx, w, initiatorname.as_deref())?,
        Phase::Verify => NewName::NotNeeded,
    };
    // The units (one `systemctl show`) and the ifaces (one iscsiadm each) are read at once:
    // systemd may be slow to answer. Without iscsiadm, plan reads the units alone: a unit
    // that is not installed stops the plan with the package to install, and iscsiadm is not
    // asked at all (its error would be less useful); what the ifaces said is dropped then.
    let host = cx.host;
    let at_once = phase == Phase::Verify || (!not_installed && host.which("iscsiadm").is_some());
    let (ifaces, units) = crate::steps::both(
        || at_once.then(|| iface_records(host, w)),
        || -> Result<_, StepError> {
            if not_installed {
                return Ok(None);
            }
            let names = service_units(w.distro);
            let states = unit_states(host, names)?;
            let mut units: Vec<(&'static str, UnitState)> =
                names.iter().copied().zip(states).collect();
            // An open-iscsi without the socket unit: iscsid is judged as a service alone.
            let service_installed = units.iter().any(|(u, s)| *u == "iscsid" && s.installed());
            units.retain(|(u, s)| *u != ISCSID_SOCKET || s.installed() || !service_installed);
            Ok(Some(units))
        },
    )?;
    let units = units?;
    let refused = phase == Phase::Plan
        && units
            .iter()
            .flatten()
            .any(|(_, s): &(&str, UnitState)| !s.installed());
    let ifaces = match ifaces {
        Some(read) => read?,
        None if not_installed || refused => vec![None; w.ifaces.len()],
        None => iface_records(host, w)?,
    };
    Ok(Observed {
        conf,
        conf_mode,
        initiatorname,
        new_name,
        ib_iser,
        units,
        ifaces,
    })
}
