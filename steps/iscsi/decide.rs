//! Pure decisions of the iscsi step: no IO, no `Ctx`. What is wanted and what is there go
//! in; the plan's file edits and commands come out ([`plan`]), and after apply the same
//! expectations say what is still wrong ([`check`], typed [`IscsiProblem`]s), so "healthy"
//! is defined once. The unit and iface checks are literally shared by both.

use std::fmt;

use super::observe::{NewName, Observed, Record, UnitState};
use super::want::{iface_keys, Wanted};
use super::{INITIATORNAME, ISCSID_CONF};
use crate::answers::check_iscsi_name;
use crate::settings::InitiatorIqn;
use crate::steps::facts::{Distro, IfaceFact};
use crate::steps::host::units::is_enabled_word;
use crate::steps::iscsid_conf::{find_short_keys, get_key, set_keys, suggest_full_key};
use crate::steps::parse::iscsiadm::parse_initiatorname;
use crate::steps::{templates, Action, Cmd, Plan, StepError};

const INITIATORNAME_TEMPLATE: &str = include_str!("../../templates/iscsi-initiatorname.iscsi");

/// What the initiator name becomes when `iscsi-iname` has not run yet.
pub(super) const IQN_FROM_ISCSI_INAME: &str = "initiator IQN from iscsi-iname";

/// The units the step manages on `distro`, in the order probed. Debian and Ubuntu start
/// iscsid by socket activation (their package enables `iscsid.socket`; `iscsid.service` is
/// "disabled" and has a SysV init script, so `systemctl enable iscsid` runs the SysV
/// compatibility: 7.3-7.9 s in the lab for what the socket does at once). There, iscsid is
/// ready when the socket or the service is enabled and running. RHEL and SLES enable the
/// service as before. The last unit logs in to the node records at boot.
pub(super) fn service_units(distro: Distro) -> &'static [&'static str] {
    match distro {
        Distro::Debian | Distro::Ubuntu => &[ISCSID_SOCKET, "iscsid", "open-iscsi"],
        d => d.iscsi_services(),
    }
}

/// The socket that starts iscsid on demand where the distro enables it (Debian, Ubuntu).
pub(super) const ISCSID_SOCKET: &str = "iscsid.socket";

/// Comment out every short-key assignment (open-iscsi ignores them), returning the new
/// text and one note per line.
fn disable_short_keys(text: &str, settings: &[(&str, String)]) -> (String, Vec<String>) {
    let short = find_short_keys(text);
    if short.is_empty() {
        return (text.to_string(), Vec::new());
    }
    let mut notes = Vec::new();
    let mut out = String::with_capacity(text.len() + 128);
    for (i, piece) in text.split_inclusive('\n').enumerate() {
        let Some((_, key)) = short.iter().find(|(n, _)| *n == i + 1) else {
            out.push_str(piece);
            continue;
        };
        let (body, eol) = match piece.strip_suffix("\r\n") {
            Some(b) => (b, "\r\n"),
            None => match piece.strip_suffix('\n') {
                Some(b) => (b, "\n"),
                None => (piece, ""),
            },
        };
        let full = suggest_full_key(key);
        let fix = match full.and_then(|f| settings.iter().find(|(k, _)| *k == f)) {
            Some((f, v)) => format!("{f} = {v} is set instead"),
            None => match full {
                Some(f) => format!("if it is wanted, write it as {f}"),
                None => "if it is wanted, write it by its full name".into(),
            },
        };
        notes.push(format!(
            "{ISCSID_CONF} line {}: `{}` is not a full key name, so open-iscsi ignores it \
             without a word; it is commented out and {fix}",
            i + 1,
            body.trim()
        ));
        out.push_str(&format!(
            "# Disabled by iser-wizard (not a full key name, ignored by open-iscsi): {}{eol}",
            body.trim()
        ));
    }
    (out, notes)
}

/// initiatorname.iscsi naming `iqn`: comments kept, `InitiatorName=` and Debian's
/// `GenerateName=yes` (which would replace the name at the next iscsid start) replaced.
fn initiatorname_text(old: Option<&str>, iqn: &str) -> Result<String, StepError> {
    let Some(old) = old.filter(|o| !o.trim().is_empty()) else {
        return templates::render(INITIATORNAME_TEMPLATE, &[("iqn", iqn)])
            .map_err(|e| StepError::Failed(format!("internal: {e}")));
    };
    let mut out = String::new();
    for line in old.lines() {
        let t = line.trim_start();
        if t.starts_with("InitiatorName=") || t.starts_with("GenerateName=") {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out.push_str(&format!("InitiatorName={iqn}\n"));
    Ok(out)
}

/// How a unit differs from enabled (and, for iscsid, running).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum UnitDiff {
    /// Not in an enabled state (the state as printed).
    NotEnabled(String),
    /// iscsid is not active (the state as printed). The boot-login unit (iscsi,
    /// open-iscsi) only has work when node records exist, so it may stay inactive.
    NotRunning(String),
}

/// The state of `name` among `units`.
fn state_of<'a>(units: &'a [(&'static str, UnitState)], name: &str) -> Option<&'a UnitState> {
    units.iter().find(|(u, _)| *u == name).map(|(_, s)| s)
}

/// Each unit's differences from enabled (and, for iscsid, running). Where iscsid has a
/// socket, the two are judged together under the socket's name: either one enabled and
/// either one running is iscsid ready (an admin's enabled service is left as it is).
fn unit_diffs(units: &[(&'static str, UnitState)]) -> Vec<(&'static str, UnitDiff)> {
    let socket = state_of(units, ISCSID_SOCKET);
    let service = state_of(units, "iscsid");
    let mut out = Vec::new();
    for (unit, s) in units {
        let unit = *unit;
        let (enabled, running) = match (unit, socket, service) {
            ("iscsid", Some(_), _) => continue,
            (ISCSID_SOCKET, _, Some(svc)) => (
                s.enabled_ok() || svc.enabled_ok(),
                s.is_active() || svc.is_active(),
            ),
            ("iscsid" | ISCSID_SOCKET, _, _) => (s.enabled_ok(), s.is_active()),
            _ => (is_enabled_word(&s.enabled), true),
        };
        if !enabled {
            out.push((unit, UnitDiff::NotEnabled(s.enabled.clone())));
        }
        if !running {
            out.push((unit, UnitDiff::NotRunning(s.active.clone())));
        }
    }
    out
}

/// The iface settings that differ: (key, what it has, what it must have).
fn iface_diffs(
    iface: &IfaceFact,
    iqn: &str,
    rec: Option<&Record>,
) -> Vec<(&'static str, String, String)> {
    iface_keys(iface, iqn)
        .into_iter()
        .filter_map(|(key, value)| {
            let have = rec.and_then(|r| r.get(key)).cloned().unwrap_or_default();
            (have != value).then_some((key, have, value))
        })
        .collect()
}

fn plan_conf(w: &Wanted, o: &Observed, plan: &mut Plan) {
    let old = o.conf.clone();
    let (base, notes) = disable_short_keys(old.as_deref().unwrap_or(""), &w.settings);
    for n in notes {
        plan.note(n);
    }
    let pairs: Vec<(&str, &str)> = w.settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let new = set_keys(&base, &pairs);
    if old.as_deref() != Some(new.as_str()) {
        if old.is_none() {
            plan.note(format!(
                "{ISCSID_CONF} does not exist: it is created with the wizard's settings \
                 only (open-iscsi's defaults apply to the rest)"
            ));
        }
        plan.push(Action::write(
            ISCSID_CONF,
            old,
            new,
            0o600,
            "log in at boot, fail over per the answers, give up fast on a dead portal",
        ));
    }
    if let Some((real, mode)) = &o.conf_mode {
        if mode & 0o077 != 0 {
            plan.push(Action::run(
                Cmd::change(["chmod", "0600", &real.to_string_lossy()]),
                format!("{ISCSID_CONF} is mode {mode:o}; it holds CHAP secrets: root only"),
            ));
        }
    }
}

/// Plan the initiator name; returns the IQN in effect after apply and whether it changes.
fn plan_iqn(w: &Wanted, o: &Observed, plan: &mut Plan) -> Result<(String, bool), StepError> {
    let old = o.initiatorname.clone();
    let current = old.as_deref().and_then(parse_initiatorname);
    let answer = match &w.answer {
        InitiatorIqn::Name(iqn) => iqn.as_str().to_string(),
        InitiatorIqn::Auto => {
            if let Some(cur) = current {
                check_iscsi_name(&cur).map_err(|e| {
                    StepError::Failed(format!(
                        "{INITIATORNAME} names {cur:?}, which iscsid rejects ({e}): set \
                         host.initiator_iqn to this host's IQN, or remove the InitiatorName \
                         line to have one generated"
                    ))
                })?;
                return Ok((cur, false));
            }
            let name = match &o.new_name {
                NewName::Generated(name) => {
                    plan.note(format!(
                        "{INITIATORNAME} holds no initiator name: generated {name} with \
                         iscsi-iname"
                    ));
                    name.clone()
                }
                NewName::Later => plan.learn(IQN_FROM_ISCSI_INAME),
                NewName::NotNeeded => {
                    return Err(StepError::Failed(
                        "internal: no initiator name was generated".into(),
                    ))
                }
            };
            let new = initiatorname_text(old.as_deref(), &name)?;
            plan.push(Action::write(
                INITIATORNAME,
                old,
                new,
                0o644,
                "give this host its initiator IQN (worksheet callout 1)",
            ));
            return Ok((name, true));
        }
    };
    if current.as_deref() == Some(answer.as_str()) {
        return Ok((answer, false));
    }
    if let Some(cur) = &current {
        plan.note(format!(
            "the initiator IQN changes from {cur} to {answer}: the array's host mapping \
             must list the new one"
        ));
    }
    let new = initiatorname_text(old.as_deref(), &answer)?;
    plan.push(Action::write(
        INITIATORNAME,
        old,
        new,
        0o644,
        "set the initiator IQN from host.initiator_iqn (worksheet callout 1)",
    ));
    Ok((answer, true))
}

fn plan_services(
    w: &Wanted,
    o: &Observed,
    iqn_changes: bool,
    plan: &mut Plan,
) -> Result<(), StepError> {
    // A dry run before preflight installs open-iscsi: its units do not exist yet, and once
    // installed they are enabled and started here.
    let not_installed: Vec<(&'static str, UnitState)>;
    let units = match &o.units {
        Some(u) => u,
        None => {
            not_installed = service_units(w.distro)
                .iter()
                .map(|&u| {
                    let s = UnitState {
                        enabled: "disabled".into(),
                        active: "inactive".into(),
                    };
                    (u, s)
                })
                .collect();
            &not_installed
        }
    };
    for (unit, s) in units {
        let unit = *unit;
        // The socket comes with the service's package: the service names what is missing.
        if !s.installed() && unit != ISCSID_SOCKET {
            let pkg = w.distro.package_for("iscsid").unwrap_or("open-iscsi");
            return Err(StepError::Failed(format!(
                "the {unit} service is not installed: {}",
                w.distro.install_hint(&[pkg])
            )));
        }
        if s.enabled == "masked" {
            plan.note(format!("{unit} is masked: it is unmasked to be enabled"));
            plan.push(Action::run(
                Cmd::change(["systemctl", "unmask", unit]),
                format!("{unit} was masked"),
            ));
        }
    }
    let iscsid_active = state_of(units, "iscsid").is_some_and(|s| s.is_active());
    // One systemctl call for every unit to enable and start. A socket cannot start while
    // its service already runs (systemd refuses): then it is only enabled, for the boot.
    let mut now: Vec<&str> = Vec::new();
    let mut boot: Vec<&str> = Vec::new();
    let mut why: Vec<&str> = Vec::new();
    for (unit, _) in unit_diffs(units) {
        if now.contains(&unit) || boot.contains(&unit) {
            continue;
        }
        if unit == ISCSID_SOCKET && iscsid_active {
            boot.push(unit);
            continue;
        }
        now.push(unit);
        why.push(match unit {
            "iscsid" | ISCSID_SOCKET => "the iSCSI daemon, now and at boot",
            _ => "log in to the node records at boot",
        });
    }
    if !now.is_empty() {
        let mut argv = vec!["systemctl", "enable", "--now"];
        argv.extend_from_slice(&now);
        plan.push(Action::run(Cmd::change(argv), why.join("; ")));
    }
    if !boot.is_empty() {
        let mut argv = vec!["systemctl", "enable"];
        argv.extend_from_slice(&boot);
        plan.push(Action::run(
            Cmd::change(argv),
            "start iscsid on demand at boot (it runs now)",
        ));
    }
    if iqn_changes && iscsid_active {
        plan.push(Action::run(
            Cmd::change(["systemctl", "restart", "iscsid"]),
            "iscsid reads the initiator name at start; with the old one logins fail \
             (rc 7, Invalid Initiatorname)",
        ));
    }
    Ok(())
}

/// Each iface to create, then every setting it lacks in ONE `-o update`: iscsiadm takes
/// several `-n KEY -v VALUE` pairs per call (open-iscsi 2.0.873 and later) and applies them
/// in order, so an iface costs two processes instead of one per key.
fn plan_ifaces(w: &Wanted, iqn: &str, o: &Observed, plan: &mut Plan) {
    for (iface, rec) in w.ifaces.iter().zip(&o.ifaces) {
        if rec.is_none() {
            plan.push(Action::run(
                Cmd::change(["iscsiadm", "-m", "iface", "-I", &iface.name, "-o", "new"]),
                format!("an iSCSI iface for port {}", iface.netdev),
            ));
        }
        let diffs = iface_diffs(iface, iqn, rec.as_ref());
        if diffs.is_empty() {
            continue;
        }
        let mut argv: Vec<&str> = vec!["iscsiadm", "-m", "iface", "-I", &iface.name];
        argv.extend(["-o", "update"]);
        let mut why = Vec::new();
        for (key, have, value) in &diffs {
            argv.extend(["-n", key, "-v", value]);
            why.push(match *key {
                _ if !have.is_empty() => format!("{} has {key} {have}", iface.name),
                "iface.transport_name" => "iSER, not TCP".to_string(),
                "iface.net_ifacename" => format!("bind it to {}", iface.netdev),
                _ => "log in with this host's IQN".to_string(),
            });
        }
        plan.push(Action::run(Cmd::change(argv), why.join("; ")));
    }
}

/// The plan: iscsid.conf, the initiator name, ib_iser, the units, the ifaces, in that order.
/// Returns the initiator IQN in effect after apply (a placeholder when only a real run
/// generates it).
pub(super) fn plan(w: &Wanted, o: &Observed, plan: &mut Plan) -> Result<String, StepError> {
    plan_conf(w, o, plan);
    let (iqn, iqn_changes) = plan_iqn(w, o, plan)?;
    if !o.ib_iser {
        plan.push(Action::run(
            Cmd::change(["modprobe", "ib_iser"]),
            "load the iSER initiator (no reboot needed)",
        ));
    }
    plan_services(w, o, iqn_changes, plan)?;
    plan_ifaces(w, &iqn, o, plan);
    Ok(iqn)
}

/// How the initiator side differs from what was planned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum IscsiProblem {
    /// An iscsid.conf setting is missing or different.
    Conf {
        key: &'static str,
        have: Option<String>,
        want: String,
    },
    /// A short key open-iscsi ignores is still in iscsid.conf.
    ShortKey { line: usize, key: String },
    /// initiatorname.iscsi names another IQN, or none.
    InitiatorName { have: Option<String>, want: String },
    /// The ib_iser module is not loaded.
    IbIser,
    /// A unit is not enabled or not running.
    Unit { unit: &'static str, diff: UnitDiff },
    /// An iface does not exist.
    NoIface(String),
    /// An iface setting differs.
    IfaceKey {
        iface: String,
        key: &'static str,
        have: String,
        want: String,
    },
}

impl fmt::Display for IscsiProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IscsiProblem::Conf { key, have, want } => write!(
                f,
                "{ISCSID_CONF}: {key} is {}, not {want}",
                have.as_deref().unwrap_or("unset")
            ),
            IscsiProblem::ShortKey { line, key } => write!(
                f,
                "{ISCSID_CONF} line {line}: short key {key} is still there (open-iscsi ignores it)"
            ),
            IscsiProblem::InitiatorName { have, want } => write!(
                f,
                "{INITIATORNAME} names {}, not {want}",
                have.as_deref().unwrap_or("no initiator")
            ),
            IscsiProblem::IbIser => f.write_str(
                "ib_iser is not loaded: `modprobe ib_iser` failed to load it; see `dmesg`",
            ),
            IscsiProblem::Unit {
                unit,
                diff: UnitDiff::NotEnabled(state),
            } => write!(
                f,
                "{unit} is {state:?}, not enabled: `systemctl enable {unit}`"
            ),
            IscsiProblem::Unit {
                unit,
                diff: UnitDiff::NotRunning(state),
            } => write!(
                f,
                "{unit} is {state:?}, not running: see `journalctl -u {unit}`"
            ),
            IscsiProblem::NoIface(name) => write!(
                f,
                "iface {name} does not exist (`iscsiadm -m iface -I {name}`)"
            ),
            IscsiProblem::IfaceKey {
                iface,
                key,
                have,
                want,
            } => write!(f, "iface {iface}: {key} is {have:?}, not {want:?}"),
        }
    }
}

/// Everything that differs from the plan, with `iqn` the initiator IQN planned.
pub(super) fn check(w: &Wanted, iqn: &str, o: &Observed) -> Vec<IscsiProblem> {
    let mut problems = Vec::new();
    let conf = o.conf.as_deref().unwrap_or("");
    for (key, value) in &w.settings {
        let have = get_key(conf, key);
        if have.as_deref() != Some(value.as_str()) {
            problems.push(IscsiProblem::Conf {
                key,
                have,
                want: value.clone(),
            });
        }
    }
    for (line, key) in find_short_keys(conf) {
        problems.push(IscsiProblem::ShortKey { line, key });
    }
    let name = o.initiatorname.as_deref().and_then(parse_initiatorname);
    if name.as_deref() != Some(iqn) {
        problems.push(IscsiProblem::InitiatorName {
            have: name,
            want: iqn.to_string(),
        });
    }
    if !o.ib_iser {
        problems.push(IscsiProblem::IbIser);
    }
    for (unit, diff) in o.units.as_deref().map(unit_diffs).unwrap_or_default() {
        problems.push(IscsiProblem::Unit { unit, diff });
    }
    for (iface, rec) in w.ifaces.iter().zip(&o.ifaces) {
        let Some(rec) = rec else {
            problems.push(IscsiProblem::NoIface(iface.name.clone()));
            continue;
        };
        for (key, have, want) in iface_diffs(iface, iqn, Some(rec)) {
            problems.push(IscsiProblem::IfaceKey {
                iface: iface.name.clone(),
                key,
                have,
                want,
            });
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::steps::facts::Distro;

    const IQN: &str = "iqn.1993-08.org.debian:01:ae66e52862dd";

    fn wanted() -> Wanted {
        Wanted {
            distro: Distro::Debian,
            settings: vec![
                ("node.startup", "automatic".into()),
                ("node.session.timeo.replacement_timeout", "20".into()),
            ],
            answer: InitiatorIqn::Auto,
            ifaces: vec![IfaceFact {
                name: "iface-vA".into(),
                netdev: "vA".into(),
                address: "192.168.130.10/24".into(),
            }],
            mapping_host_name: "db01".into(),
            host_os_type: "Linux DM-MP".into(),
        }
    }

    fn state(enabled: &str, active: &str) -> UnitState {
        UnitState {
            enabled: enabled.into(),
            active: active.into(),
        }
    }

    /// The host as the plan leaves it.
    fn healthy() -> Observed {
        let iface: Record = [
            ("iface.iscsi_ifacename", "iface-vA"),
            ("iface.transport_name", "iser"),
            ("iface.net_ifacename", "vA"),
            ("iface.initiatorname", IQN),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        Observed {
            conf: Some(
                "node.startup = automatic\nnode.session.timeo.replacement_timeout = 20\n".into(),
            ),
            conf_mode: None,
            initiatorname: Some(format!("InitiatorName={IQN}\n")),
            new_name: NewName::NotNeeded,
            ib_iser: true,
            units: Some(vec![
                ("iscsid", state("enabled", "active")),
                ("open-iscsi", state("enabled", "inactive")),
            ]),
            ifaces: vec![Some(iface)],
        }
    }

    #[test]
    fn healthy_plans_nothing_and_checks_clean() {
        let (w, o) = (wanted(), healthy());
        let mut p = Plan::new(crate::steps::StepName::Iscsi);
        assert_eq!(plan(&w, &o, &mut p).unwrap(), IQN);
        assert!(p.is_empty(), "{}", p.render());
        assert_eq!(check(&w, IQN, &o), vec![]);
    }

    #[test]
    fn each_difference_is_planned_and_named_by_check() {
        type Break = fn(&mut Observed);
        let cases: [(&str, Break, &str, &str); 6] = [
            (
                "startup",
                |o| o.conf = Some("node.session.timeo.replacement_timeout = 20\n".into()),
                "write /etc/iscsi/iscsid.conf",
                "/etc/iscsi/iscsid.conf: node.startup is unset, not automatic",
            ),
            (
                "ib_iser",
                |o| o.ib_iser = false,
                "modprobe ib_iser",
                "ib_iser is not loaded",
            ),
            (
                "iscsid stopped",
                |o| o.units.as_mut().unwrap()[0].1.active = "inactive".into(),
                "systemctl enable --now iscsid",
                "iscsid is \"inactive\", not running: see `journalctl -u iscsid`",
            ),
            (
                "open-iscsi disabled",
                |o| o.units.as_mut().unwrap()[1].1.enabled = "disabled".into(),
                "systemctl enable --now open-iscsi",
                "open-iscsi is \"disabled\", not enabled: `systemctl enable open-iscsi`",
            ),
            (
                "no iface",
                |o| o.ifaces[0] = None,
                "iscsiadm -m iface -I iface-vA -o new",
                "iface iface-vA does not exist",
            ),
            (
                "tcp iface",
                |o| {
                    let rec = o.ifaces[0].as_mut().unwrap();
                    rec.insert("iface.transport_name".into(), "tcp".into());
                },
                "iscsiadm -m iface -I iface-vA -o update -n iface.transport_name -v iser",
                "iface iface-vA: iface.transport_name is \"tcp\", not \"iser\"",
            ),
        ];
        for (name, breaks, action, problem) in cases {
            let w = wanted();
            let mut o = healthy();
            breaks(&mut o);
            let mut p = Plan::new(crate::steps::StepName::Iscsi);
            plan(&w, &o, &mut p).unwrap();
            let cmds: Vec<String> = p
                .actions
                .iter()
                .map(|a| match a {
                    Action::Run { cmd, .. } => cmd.to_string(),
                    Action::Write { path, .. } => format!("write {}", path.display()),
                    Action::Task { id, .. } => id.clone(),
                })
                .collect();
            assert!(cmds.iter().any(|c| c == action), "{name}: {cmds:#?}");
            let shown: Vec<String> = check(&w, IQN, &o).iter().map(|p| p.to_string()).collect();
            assert!(
                shown.iter().any(|s| s.contains(problem)),
                "{name}: {shown:#?}"
            );
        }
    }

    #[test]
    fn a_name_left_to_a_real_run_is_a_placeholder() {
        let w = wanted();
        let mut o = healthy();
        o.initiatorname = None;
        o.new_name = NewName::Later;
        let mut p = Plan::new(crate::steps::StepName::Iscsi);
        let iqn = plan(&w, &o, &mut p).unwrap();
        assert_eq!(iqn, "<initiator IQN from iscsi-iname>");
        assert_eq!(p.learned, [IQN_FROM_ISCSI_INAME]);
    }
}
