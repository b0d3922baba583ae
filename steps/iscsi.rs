//! The iscsi step: the initiator side of open-iscsi, ready for sessions.
//!
//! Probes and plans, each part planning nothing when the host already matches:
//! - `/etc/iscsi/iscsid.conf`: `node.startup = automatic`, the answers' replacement timeout
//!   and a short login timeout ([`LOGIN_TIMEOUT`]), by FULL key name and keeping every other
//!   line ([`set_keys`]); short keys such as the vendor's `replacement_timeout = 20`, which
//!   open-iscsi ignores without a word, are named in a note and commented out. A new file
//!   is created 0600; an existing one readable by others is made 0600 (it is where CHAP
//!   secrets go).
//! - the initiator IQN (`host.initiator_iqn`): `"auto"` keeps the name in
//!   `/etc/iscsi/initiatorname.iscsi`, or generates one with `iscsi-iname` when there is
//!   none; an explicit IQN is written there. When the name changes and iscsid is running,
//!   iscsid is restarted: it keeps the old name otherwise and logins fail with rc 7
//!   "Invalid Initiatorname".
//! - `ib_iser` loaded (`modprobe ib_iser` when `/sys/module/ib_iser` is absent);
//! - the distro's services enabled and started (`iscsid`, and `iscsi` or `open-iscsi`, the
//!   unit that logs in at boot);
//! - one iface per port, `iface-<netdev>` (never `iser` or `default`, which open-iscsi
//!   reserves), transport `iser`, bound to the netdev, carrying the initiator IQN.
//!
//! Verify re-reads all of it and records the IQN and ifaces in the facts and worksheet.
//!
//! A dry run on a host without open-iscsi yet (preflight installs it) plans from the answers:
//! the units enabled and started, every iface created, and a name `iscsi-iname` would
//! generate shown as `<initiator IQN from iscsi-iname>`. Nothing is probed that only
//! open-iscsi could answer.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::answers::check_iscsi_name;
use crate::settings::InitiatorIqn;
use crate::steps::facts::{Distro, IfaceFact};
use crate::steps::iscsid_conf::{find_short_keys, get_key, set_keys, suggest_full_key};
use crate::steps::parse::iscsiadm::{parse_initiatorname, parse_record};
use crate::steps::{templates, Action, Cmd, Ctx, Plan, Step, StepError, StepName};

/// The open-iscsi settings file.
pub const ISCSID_CONF: &str = "/etc/iscsi/iscsid.conf";
/// The file holding the host's initiator IQN.
pub const INITIATORNAME: &str = "/etc/iscsi/initiatorname.iscsi";
/// `node.conn[0].timeo.login_timeout`, seconds. open-iscsi's default is 15, and the first
/// login retries `node.session.initial_login_retry_max` (8) times: two minutes before an
/// unreachable portal is reported. An iSER login on a working RDMA link completes in
/// milliseconds, so 5 s is ample headroom while the same 8 tries give up in about 40 s;
/// during path recovery it also allows several reconnect attempts within a 20 s
/// replacement timeout instead of one.
pub const LOGIN_TIMEOUT: u32 = 5;
/// The vendor's replacement timeout, offered when the answers do not give one.
pub const DEFAULT_REPLACEMENT_TIMEOUT: u32 = 20;

const INITIATORNAME_TEMPLATE: &str = include_str!("../templates/iscsi-initiatorname.iscsi");

/// `systemctl is-enabled` states in which a unit starts at boot (or is pulled in by a unit
/// that does, such as iscsid.socket); `enable` would change nothing there.
const ENABLED_STATES: &[&str] = &[
    "enabled",
    "enabled-runtime",
    "static",
    "indirect",
    "alias",
    "generated",
];

/// The iface name for a port's netdev.
pub fn iface_name(netdev: &str) -> String {
    format!("iface-{netdev}")
}

/// The ports to configure: from the facts of the network step, or else from the answers
/// (`ports[].netdev`, `ports[].address`).
pub fn port_list(cx: &Ctx<'_>) -> Result<Vec<(String, String)>, StepError> {
    if !cx.facts.ports.is_empty() {
        return Ok(cx
            .facts
            .ports
            .iter()
            .map(|p| (p.netdev.clone(), p.address.clone()))
            .collect());
    }
    let ports: Vec<(String, String)> = cx
        .ask
        .answers()
        .known_ports()
        .into_iter()
        .map(|(n, a)| (n.to_string(), a.to_string()))
        .collect();
    if ports.is_empty() {
        return Err(StepError::Failed(
            "ports: no host port is known: run the network step first, or list the ports \
             (netdev and address) in the answers file"
                .into(),
        ));
    }
    Ok(ports)
}

/// The ifaces this step makes, one per port.
pub fn planned_ifaces(cx: &Ctx<'_>) -> Result<Vec<IfaceFact>, StepError> {
    Ok(port_list(cx)?
        .into_iter()
        .map(|(netdev, address)| IfaceFact {
            name: iface_name(&netdev),
            netdev,
            address,
        })
        .collect())
}

fn distro(cx: &Ctx<'_>) -> Result<Distro, StepError> {
    cx.facts.os.as_ref().and_then(|o| o.distro).ok_or_else(|| {
        StepError::Failed(
            "the distribution is not known yet: run the preflight step first \
             (`iser-wizard run --from preflight`)"
                .into(),
        )
    })
}

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

/// What the step wants, kept from plan for verify.
#[derive(Debug, Clone)]
struct Wanted {
    distro: Distro,
    settings: Vec<(&'static str, String)>,
    iqn: String,
    ifaces: Vec<IfaceFact>,
    mapping_host_name: String,
    host_os_type: String,
}

impl Wanted {
    fn iface_keys(&self, iface: &IfaceFact) -> [(&'static str, String); 3] {
        [
            ("iface.transport_name", "iser".to_string()),
            ("iface.net_ifacename", iface.netdev.clone()),
            ("iface.initiatorname", self.iqn.clone()),
        ]
    }
}

/// The iscsi step.
#[derive(Debug, Default)]
pub struct Iscsi {
    wanted: Option<Wanted>,
}

/// The step implementation.
pub fn step() -> Box<dyn Step> {
    Box::new(Iscsi::default())
}

/// `systemctl is-enabled` / `is-active` of a unit.
fn unit_state(cx: &Ctx<'_>, unit: &str) -> Result<(String, String), StepError> {
    let enabled = cx.probe(&["systemctl", "is-enabled", unit])?;
    let active = cx.probe(&["systemctl", "is-active", unit])?;
    Ok((
        enabled.stdout.trim().to_string(),
        active.stdout.trim().to_string(),
    ))
}

/// The iface record, or `None` when there is no such iface.
fn iface_record(
    cx: &Ctx<'_>,
    name: &str,
) -> Result<Option<std::collections::BTreeMap<String, String>>, StepError> {
    let out = cx.probe(&["iscsiadm", "-m", "iface", "-I", name])?;
    let rec = parse_record(&out.stdout);
    Ok((out.success() && rec.contains_key("iface.iscsi_ifacename")).then_some(rec))
}

impl Iscsi {
    fn plan_conf(
        &self,
        cx: &Ctx<'_>,
        settings: &[(&'static str, String)],
        plan: &mut Plan,
    ) -> Result<(), StepError> {
        let path = Path::new(ISCSID_CONF);
        let old = cx.host.read(path)?;
        let (base, notes) = disable_short_keys(old.as_deref().unwrap_or(""), settings);
        for n in notes {
            plan.note(n);
        }
        let pairs: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let new = set_keys(&base, &pairs);
        if old.as_deref() != Some(new.as_str()) {
            if old.is_none() {
                plan.note(format!(
                    "{ISCSID_CONF} does not exist: it is created with the wizard's settings \
                     only (open-iscsi's defaults apply to the rest)"
                ));
            }
            plan.push(Action::write(
                path,
                old.clone(),
                new,
                0o600,
                "log in at boot, fail over per the answers, give up fast on a dead portal",
            ));
        }
        if old.is_some() {
            let real = crate::steps::host::under_root(cx.host.root(), path)?;
            let mode = std::fs::metadata(&real)
                .map(|m| m.permissions().mode() & 0o777)
                .unwrap_or(0o600);
            if mode & 0o077 != 0 {
                plan.push(Action::run(
                    Cmd::change(["chmod", "0600", &real.to_string_lossy()]),
                    format!("{ISCSID_CONF} is mode {mode:o}; it holds CHAP secrets: root only"),
                ));
            }
        }
        Ok(())
    }

    /// Plan the initiator name; returns the IQN in effect after apply and whether it changes.
    fn plan_iqn(
        &self,
        cx: &mut Ctx<'_>,
        answer: &str,
        plan: &mut Plan,
    ) -> Result<(String, bool), StepError> {
        let path = Path::new(INITIATORNAME);
        let old = cx.host.read(path)?;
        let current = old.as_deref().and_then(parse_initiatorname);
        if answer == "auto" {
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
            if cx.planning_without("iscsi-iname") {
                // A dry run before preflight installs open-iscsi: the name is only known
                // once iscsi-iname runs, so the plan shows where it goes.
                let name = plan.learn("initiator IQN from iscsi-iname");
                let new = initiatorname_text(old.as_deref(), &name)?;
                plan.push(Action::write(
                    path,
                    old,
                    new,
                    0o644,
                    "give this host its initiator IQN (worksheet callout 1)",
                ));
                return Ok((name, true));
            }
            // iscsi-iname only prints a random name: run here, the plan shows the exact
            // name and the file as it will be written.
            let cmd = Cmd::probe(["iscsi-iname"]);
            let out = cx.host.run(&cmd)?;
            let name = out.stdout.trim().to_string();
            if !out.success() || check_iscsi_name(&name).is_err() {
                return Err(StepError::command(
                    &cmd,
                    &out,
                    Some("iscsi-iname comes with open-iscsi: reinstall it, or set host.initiator_iqn to an IQN".into()),
                ));
            }
            plan.note(format!(
                "{INITIATORNAME} holds no initiator name: generated {name} with iscsi-iname"
            ));
            let new = initiatorname_text(old.as_deref(), &name)?;
            plan.push(Action::write(
                path,
                old,
                new,
                0o644,
                "give this host its initiator IQN (worksheet callout 1)",
            ));
            return Ok((name, true));
        }
        if current.as_deref() == Some(answer) {
            return Ok((answer.to_string(), false));
        }
        if let Some(cur) = &current {
            plan.note(format!(
                "the initiator IQN changes from {cur} to {answer}: the array's host mapping \
                 must list the new one"
            ));
        }
        let new = initiatorname_text(old.as_deref(), answer)?;
        plan.push(Action::write(
            path,
            old,
            new,
            0o644,
            "set the initiator IQN from host.initiator_iqn (worksheet callout 1)",
        ));
        Ok((answer.to_string(), true))
    }

    fn plan_services(
        &self,
        cx: &Ctx<'_>,
        distro: Distro,
        iqn_changes: bool,
        plan: &mut Plan,
    ) -> Result<(), StepError> {
        let mut iscsid_active = false;
        // A dry run before preflight installs open-iscsi: its units do not exist yet, and
        // once installed they are enabled and started here.
        let not_installed = cx.planning_without("iscsiadm");
        for &unit in distro.iscsi_services() {
            let (enabled, active) = if not_installed {
                (String::from("disabled"), String::from("inactive"))
            } else {
                unit_state(cx, unit)?
            };
            // Older systemctl prints nothing for a unit it does not know, newer "not-found".
            if enabled.is_empty() || enabled == "not-found" {
                let pkg = distro.package_for("iscsid").unwrap_or("open-iscsi");
                return Err(StepError::Failed(format!(
                    "the {unit} service is not installed: {}",
                    distro.install_hint(&[pkg])
                )));
            }
            if unit == "iscsid" {
                iscsid_active = active == "active";
            }
            if enabled == "masked" {
                plan.note(format!("{unit} is masked: it is unmasked to be enabled"));
                plan.push(Action::run(
                    Cmd::change(["systemctl", "unmask", unit]),
                    format!("{unit} was masked"),
                ));
            }
            // The boot-login unit (iscsi, open-iscsi) only has work when node records
            // exist, so it may stay inactive now: enabled is what counts for it.
            let needs_start = unit == "iscsid" && active != "active";
            if !ENABLED_STATES.contains(&enabled.as_str()) || needs_start {
                plan.push(Action::run(
                    Cmd::change(["systemctl", "enable", "--now", unit]),
                    if unit == "iscsid" {
                        "the iSCSI daemon, now and at boot".to_string()
                    } else {
                        "log in to the node records at boot".to_string()
                    },
                ));
            }
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

    fn plan_ifaces(&self, cx: &Ctx<'_>, w: &Wanted, plan: &mut Plan) -> Result<(), StepError> {
        // A dry run before preflight installs open-iscsi: there is no iface yet.
        let not_installed = cx.planning_without("iscsiadm");
        for iface in &w.ifaces {
            let rec = if not_installed {
                None
            } else {
                iface_record(cx, &iface.name)?
            };
            if rec.is_none() {
                plan.push(Action::run(
                    Cmd::change(["iscsiadm", "-m", "iface", "-I", &iface.name, "-o", "new"]),
                    format!("an iSCSI iface for port {}", iface.netdev),
                ));
            }
            for (key, value) in w.iface_keys(iface) {
                let have = rec.as_ref().and_then(|r| r.get(key));
                if have.map(String::as_str) == Some(value.as_str()) {
                    continue;
                }
                let why = match (key, have) {
                    (_, Some(h)) if !h.is_empty() => format!("{} has {key} {h}", iface.name),
                    ("iface.transport_name", _) => "iSER, not TCP".to_string(),
                    ("iface.net_ifacename", _) => format!("bind it to {}", iface.netdev),
                    _ => "log in with this host's IQN".to_string(),
                };
                plan.push(Action::run(
                    Cmd::change([
                        "iscsiadm",
                        "-m",
                        "iface",
                        "-I",
                        &iface.name,
                        "-o",
                        "update",
                        "-n",
                        key,
                        "-v",
                        &value,
                    ]),
                    why,
                ));
            }
        }
        Ok(())
    }
}

impl Step for Iscsi {
    fn name(&self) -> StepName {
        StepName::Iscsi
    }

    fn plan(&mut self, cx: &mut Ctx<'_>) -> Result<Plan, StepError> {
        let distro = distro(cx)?;
        let ifaces = planned_ifaces(cx)?;
        let replacement = cx.ask.want_number(
            "iscsi.replacement_timeout",
            "Seconds a failed path may take to come back before I/O fails over \
             (node.session.timeo.replacement_timeout)",
            Some(DEFAULT_REPLACEMENT_TIMEOUT),
            (1, 3600),
            |a| &mut a.iscsi.replacement_timeout,
        )?;
        let iqn_answer = cx
            .ask
            .want(
                "host.initiator_iqn",
                "Initiator IQN (\"auto\" keeps this host's own, or generates one)",
                Some(InitiatorIqn::Auto),
                |a| &mut a.host.initiator_iqn,
            )?
            .to_string();
        let hostname = cx.facts.hostname.as_deref().and_then(|h| h.parse().ok());
        let mapping_host_name = cx
            .ask
            .want(
                "host.mapping_host_name",
                "Host name to use in the array's host mapping",
                hostname,
                |a| &mut a.host.mapping_host_name,
            )?
            .to_string();
        let host_os_type = cx
            .ask
            .want(
                "host.host_os_type",
                "Host OS type on the array",
                "Linux DM-MP".parse().ok(),
                |a| &mut a.host.host_os_type,
            )?
            .to_string();
        let settings = vec![
            ("node.startup", "automatic".to_string()),
            (
                "node.session.timeo.replacement_timeout",
                replacement.to_string(),
            ),
            (
                "node.conn[0].timeo.login_timeout",
                LOGIN_TIMEOUT.to_string(),
            ),
        ];

        let mut plan = Plan::new(StepName::Iscsi);
        self.plan_conf(cx, &settings, &mut plan)?;
        let (iqn, iqn_changes) = self.plan_iqn(cx, &iqn_answer, &mut plan)?;
        if !cx.host.exists(Path::new("/sys/module/ib_iser")) {
            plan.push(Action::run(
                Cmd::change(["modprobe", "ib_iser"]),
                "load the iSER initiator (no reboot needed)",
            ));
        }
        self.plan_services(cx, distro, iqn_changes, &mut plan)?;
        let wanted = Wanted {
            distro,
            settings,
            iqn,
            ifaces,
            mapping_host_name,
            host_os_type,
        };
        self.plan_ifaces(cx, &wanted, &mut plan)?;
        self.wanted = Some(wanted);
        Ok(plan)
    }

    fn verify(&mut self, cx: &mut Ctx<'_>) -> Result<(), StepError> {
        let w = self
            .wanted
            .clone()
            .ok_or_else(|| StepError::Failed("internal: verify before plan".into()))?;
        let mut problems = Vec::new();

        let conf = cx.host.read(Path::new(ISCSID_CONF))?.unwrap_or_default();
        for (key, value) in &w.settings {
            let have = get_key(&conf, key);
            if have.as_deref() != Some(value.as_str()) {
                problems.push(format!(
                    "{ISCSID_CONF}: {key} is {}, not {value}",
                    have.as_deref().unwrap_or("unset")
                ));
            }
        }
        for (line, key) in find_short_keys(&conf) {
            problems.push(format!(
                "{ISCSID_CONF} line {line}: short key {key} is still there (open-iscsi ignores it)"
            ));
        }

        let name = cx
            .host
            .read(Path::new(INITIATORNAME))?
            .as_deref()
            .and_then(parse_initiatorname);
        if name.as_deref() != Some(w.iqn.as_str()) {
            problems.push(format!(
                "{INITIATORNAME} names {}, not {}",
                name.as_deref().unwrap_or("no initiator"),
                w.iqn
            ));
        }

        if !cx.host.exists(Path::new("/sys/module/ib_iser")) {
            problems.push(
                "ib_iser is not loaded: `modprobe ib_iser` failed to load it; see `dmesg`".into(),
            );
        }

        for &unit in w.distro.iscsi_services() {
            let (enabled, active) = unit_state(cx, unit)?;
            if !ENABLED_STATES.contains(&enabled.as_str()) {
                problems.push(format!(
                    "{unit} is {enabled:?}, not enabled: `systemctl enable {unit}`"
                ));
            }
            if unit == "iscsid" && active != "active" {
                problems.push(format!(
                    "iscsid is {active:?}, not running: see `journalctl -u iscsid`"
                ));
            }
        }

        for iface in &w.ifaces {
            match iface_record(cx, &iface.name)? {
                None => problems.push(format!(
                    "iface {} does not exist (`iscsiadm -m iface -I {}`)",
                    iface.name, iface.name
                )),
                Some(rec) => {
                    for (key, value) in w.iface_keys(iface) {
                        let have = rec.get(key).map(String::as_str).unwrap_or("");
                        if have != value {
                            problems.push(format!(
                                "iface {}: {key} is {have:?}, not {value:?}",
                                iface.name
                            ));
                        }
                    }
                }
            }
        }

        if !problems.is_empty() {
            return Err(StepError::Failed(format!(
                "the iSCSI initiator is not set up as planned:\n    - {}",
                problems.join("\n    - ")
            )));
        }
        cx.facts.initiator_iqn = Some(w.iqn.clone());
        cx.facts.ifaces = w.ifaces.clone();
        cx.sheet.host.initiator_iqn = Some(w.iqn.clone());
        cx.sheet.host.mapping_host_name = Some(w.mapping_host_name.clone());
        cx.sheet.host.host_os_type = Some(w.host_os_type.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prompt::Asker;
    use crate::steps::facts::OsInfo;
    use crate::steps::fake::FakeHost;
    use crate::steps::testkit::{apply, summary, Run};
    use crate::steps::{CmdOutput, Facts, Options};
    use crate::worksheets::Worksheet;
    use serde_json::{json, Value};

    /// An excerpt in the layout of the iscsid.conf Debian ships, written for these tests.
    const CONF: &str = "\
# Open-iSCSI settings (test excerpt)
#iscsid.startup = /bin/systemctl start iscsid.socket
# To log in to node records at boot, use \"automatic\":
node.startup = manual
#node.session.auth.authmethod = CHAP
node.session.timeo.replacement_timeout = 120
node.conn[0].timeo.login_timeout = 15
node.conn[0].timeo.logout_timeout = 15
";
    const IQN: &str = "iqn.1993-08.org.debian:01:ae66e52862dd";

    fn answers() -> Value {
        json!({
            "host": {"initiator_iqn": "auto", "mapping_host_name": "db01",
                     "host_os_type": "Linux DM-MP"},
            "ports": [
                {"netdev": "vA", "address": "192.168.130.10/24"},
                {"netdev": "vB", "address": "192.168.131.10/24"}
            ],
            "iscsi": {"replacement_timeout": 20}
        })
    }

    impl Run {
        fn iscsi(answers: Value, distro: Distro) -> Self {
            let facts = Facts {
                os: Some(OsInfo {
                    id: "debian".into(),
                    id_like: Vec::new(),
                    version_id: "12".into(),
                    pretty_name: "Debian GNU/Linux 12 (bookworm)".into(),
                    distro: Some(distro),
                    supported: true,
                }),
                hostname: Some("db01".into()),
                ..Default::default()
            };
            Run {
                ask: Asker::unattended(answers),
                facts,
                sheet: Worksheet::default(),
                options: Options::default(),
            }
        }
    }

    fn written(plan: &Plan, path: &str) -> String {
        plan.actions
            .iter()
            .find_map(|a| match a {
                Action::Write { path: p, new, .. } if p == Path::new(path) => Some(new.clone()),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no write of {path}"))
    }

    fn put_private(h: &FakeHost, path: &str, text: &str) {
        h.put_file(path, text);
        std::fs::set_permissions(h.path(path), std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    fn iface_show(name: &str, netdev: &str, transport: &str, initiator: &str) -> CmdOutput {
        let or_empty = |v: &str| {
            if v.is_empty() {
                "<empty>".to_string()
            } else {
                v.to_string()
            }
        };
        CmdOutput::ok(format!(
            "# BEGIN RECORD 2.1.8\niface.iscsi_ifacename = {name}\niface.net_ifacename = {}\n\
             iface.ipaddress = <empty>\niface.hwaddress = <empty>\niface.transport_name = {transport}\n\
             iface.initiatorname = {}\niface.state = <empty>\n# END RECORD\n",
            or_empty(netdev),
            or_empty(initiator)
        ))
    }

    fn no_iface(name: &str) -> CmdOutput {
        CmdOutput::status(
            6,
            "",
            format!("iscsiadm: Could not read iface {name} (6).\n"),
        )
    }

    fn unit(h: &FakeHost, name: &str, enabled: &str, active: &str, once: bool) {
        let en = CmdOutput::status(
            if enabled == "enabled" { 0 } else { 1 },
            format!("{enabled}\n"),
            "",
        );
        let ac = CmdOutput::status(
            if active == "active" { 0 } else { 3 },
            format!("{active}\n"),
            "",
        );
        if once {
            h.expect(&["systemctl", "is-enabled", name], en);
            h.expect(&["systemctl", "is-active", name], ac);
        } else {
            h.allow(&["systemctl", "is-enabled", name], en);
            h.allow(&["systemctl", "is-active", name], ac);
        }
    }

    /// The host as it should be after the step: what a second run finds.
    fn configured(h: &FakeHost) {
        configured_files(h);
        unit(h, "iscsid", "enabled", "active", false);
        unit(h, "open-iscsi", "enabled", "inactive", false);
    }

    /// Files, module and ifaces as they should be after the step (no units).
    fn configured_files(h: &FakeHost) {
        let conf = CONF
            .replace("node.startup = manual", "node.startup = automatic")
            .replace("replacement_timeout = 120", "replacement_timeout = 20")
            .replace("login_timeout = 15", "login_timeout = 5");
        put_private(h, ISCSID_CONF, &conf);
        h.put_file(INITIATORNAME, &format!("InitiatorName={IQN}\n"));
        h.put_file("/sys/module/ib_iser/initstate", "live\n");
        for (name, dev) in [("iface-vA", "vA"), ("iface-vB", "vB")] {
            h.allow(
                &["iscsiadm", "-m", "iface", "-I", name],
                iface_show(name, dev, "iser", IQN),
            );
        }
    }

    #[test]
    fn a_fresh_debian_host_gets_the_whole_setup_and_verifies() {
        let h = FakeHost::new();
        put_private(&h, ISCSID_CONF, CONF);
        h.put_file(
            INITIATORNAME,
            &format!("## DO NOT EDIT OR REMOVE THIS FILE!\nInitiatorName={IQN}\n"),
        );
        unit(&h, "iscsid", "disabled", "inactive", true);
        unit(&h, "open-iscsi", "disabled", "inactive", true);
        for name in ["iface-vA", "iface-vB"] {
            h.expect(&["iscsiadm", "-m", "iface", "-I", name], no_iface(name));
        }
        let mut run = Run::iscsi(answers(), Distro::Debian);
        let mut step = Iscsi::default();
        let plan = step.plan(&mut run.cx(&h)).unwrap();
        let upd =
            |i: &str, k: &str, v: &str| format!("iscsiadm -m iface -I {i} -o update -n {k} -v {v}");
        assert_eq!(
            summary(&plan),
            vec![
                "write /etc/iscsi/iscsid.conf".to_string(),
                "modprobe ib_iser".into(),
                "systemctl enable --now iscsid".into(),
                "systemctl enable --now open-iscsi".into(),
                "iscsiadm -m iface -I iface-vA -o new".into(),
                upd("iface-vA", "iface.transport_name", "iser"),
                upd("iface-vA", "iface.net_ifacename", "vA"),
                upd("iface-vA", "iface.initiatorname", IQN),
                "iscsiadm -m iface -I iface-vB -o new".into(),
                upd("iface-vB", "iface.transport_name", "iser"),
                upd("iface-vB", "iface.net_ifacename", "vB"),
                upd("iface-vB", "iface.initiatorname", IQN),
            ]
        );
        assert_eq!(
            written(&plan, ISCSID_CONF),
            "\
# Open-iSCSI settings (test excerpt)
#iscsid.startup = /bin/systemctl start iscsid.socket
# To log in to node records at boot, use \"automatic\":
node.startup = automatic
#node.session.auth.authmethod = CHAP
node.session.timeo.replacement_timeout = 20
node.conn[0].timeo.login_timeout = 5
node.conn[0].timeo.logout_timeout = 15
"
        );
        let text = plan.render();
        assert!(text.contains("-node.startup = manual\n"), "{text}");
        assert!(text.contains("+node.startup = automatic\n"), "{text}");
        assert!(plan.notes.is_empty(), "{:?}", plan.notes);

        for cmd in &plan.actions {
            if let Action::Run { cmd, .. } = cmd {
                let argv: Vec<&str> = cmd.argv.iter().map(String::as_str).collect();
                h.expect(&argv, CmdOutput::ok(""));
            }
        }
        apply(&mut step, &mut run.cx(&h), &plan).unwrap();
        configured(&h);
        step.verify(&mut run.cx(&h)).unwrap();
        assert_eq!(run.facts.initiator_iqn.as_deref(), Some(IQN));
        assert_eq!(
            run.facts.ifaces,
            vec![
                IfaceFact {
                    name: "iface-vA".into(),
                    netdev: "vA".into(),
                    address: "192.168.130.10/24".into()
                },
                IfaceFact {
                    name: "iface-vB".into(),
                    netdev: "vB".into(),
                    address: "192.168.131.10/24".into()
                },
            ]
        );
        assert_eq!(run.sheet.host.initiator_iqn.as_deref(), Some(IQN));
        assert_eq!(run.sheet.host.mapping_host_name.as_deref(), Some("db01"));
        assert_eq!(run.sheet.host.host_os_type.as_deref(), Some("Linux DM-MP"));
        h.finish();
    }

    #[test]
    fn a_host_that_already_matches_plans_nothing() {
        let h = FakeHost::new();
        configured(&h);
        let mut run = Run::iscsi(answers(), Distro::Debian);
        let mut step = Iscsi::default();
        let plan = step.plan(&mut run.cx(&h)).unwrap();
        assert!(plan.is_empty(), "{}", plan.render());
        assert!(plan.notes.is_empty(), "{:?}", plan.notes);
        step.verify(&mut run.cx(&h)).unwrap();
        assert!(h.changes().is_empty(), "{:?}", h.changes());
        h.finish();
    }

    #[test]
    fn rhel_enables_iscsi_and_a_masked_unit_is_unmasked_first() {
        let h = FakeHost::new();
        configured_files(&h);
        unit(&h, "iscsid", "enabled", "active", false);
        unit(&h, "iscsi", "masked", "inactive", false);
        let mut run = Run::iscsi(answers(), Distro::Rhel);
        let plan = Iscsi::default().plan(&mut run.cx(&h)).unwrap();
        assert_eq!(
            summary(&plan),
            vec!["systemctl unmask iscsi", "systemctl enable --now iscsi"]
        );
        assert!(
            plan.notes[0].contains("iscsi is masked"),
            "{:?}",
            plan.notes
        );
        h.finish();
    }

    #[test]
    fn short_keys_are_flagged_and_commented_out() {
        let h = FakeHost::new();
        configured(&h);
        let conf = std::fs::read_to_string(h.path(ISCSID_CONF)).unwrap();
        // What the vendor's procedure prints, pasted as is.
        put_private(
            &h,
            ISCSID_CONF,
            &format!("{conf}replacement_timeout = 20\nqueue_depth=64\n"),
        );
        let mut run = Run::iscsi(answers(), Distro::Debian);
        let plan = Iscsi::default().plan(&mut run.cx(&h)).unwrap();
        assert_eq!(summary(&plan), vec!["write /etc/iscsi/iscsid.conf"]);
        assert_eq!(plan.notes.len(), 2, "{:?}", plan.notes);
        assert!(
            plan.notes[0].contains(
                "line 9: `replacement_timeout = 20` is not a full key name, so open-iscsi \
                 ignores it without a word; it is commented out and \
                 node.session.timeo.replacement_timeout = 20 is set instead"
            ),
            "{:?}",
            plan.notes
        );
        assert!(
            plan.notes[1].contains("write it as node.session.queue_depth"),
            "{:?}",
            plan.notes
        );
        let new = written(&plan, ISCSID_CONF);
        assert!(new.starts_with(&conf), "{new}");
        assert_eq!(
            &new[conf.len()..],
            "# Disabled by iser-wizard (not a full key name, ignored by open-iscsi): replacement_timeout = 20\n\
             # Disabled by iser-wizard (not a full key name, ignored by open-iscsi): queue_depth=64\n"
        );
        assert!(find_short_keys(&new).is_empty());
        h.finish();
    }

    #[test]
    fn a_world_readable_conf_is_made_private() {
        let h = FakeHost::new();
        configured(&h);
        std::fs::set_permissions(h.path(ISCSID_CONF), std::fs::Permissions::from_mode(0o644))
            .unwrap();
        let mut run = Run::iscsi(answers(), Distro::Debian);
        let plan = Iscsi::default().plan(&mut run.cx(&h)).unwrap();
        assert_eq!(
            summary(&plan),
            vec![format!("chmod 0600 {}", h.path(ISCSID_CONF).display())]
        );
        h.finish();
    }

    #[test]
    fn a_missing_initiator_name_is_generated_and_iscsid_restarted() {
        let h = FakeHost::new();
        configured(&h);
        // Debian before its first iscsid start: the name is still to be generated.
        h.put_file(INITIATORNAME, "## DO NOT EDIT\nGenerateName=yes\n");
        let new_iqn = "iqn.2016-04.com.open-iscsi:5e1f0a9b8c7d";
        h.expect(&["iscsi-iname"], CmdOutput::ok(format!("{new_iqn}\n")));
        let mut run = Run::iscsi(answers(), Distro::Debian);
        let plan = Iscsi::default().plan(&mut run.cx(&h)).unwrap();
        let s = summary(&plan);
        assert_eq!(s[0], "write /etc/iscsi/initiatorname.iscsi");
        assert_eq!(s[1], "systemctl restart iscsid");
        assert!(
            s.contains(&format!(
                "iscsiadm -m iface -I iface-vA -o update -n iface.initiatorname -v {new_iqn}"
            )),
            "{s:#?}"
        );
        assert_eq!(
            written(&plan, INITIATORNAME),
            format!("## DO NOT EDIT\nInitiatorName={new_iqn}\n")
        );
        assert!(plan.notes[0].contains("generated"), "{:?}", plan.notes);
        h.finish();
    }

    #[test]
    fn an_explicit_iqn_is_written_from_the_template_when_the_file_is_missing() {
        let h = FakeHost::new();
        configured(&h);
        std::fs::remove_file(h.path(INITIATORNAME)).unwrap();
        let mut a = answers();
        a["host"]["initiator_iqn"] = json!("iqn.2024-01.com.example:db01");
        let mut run = Run::iscsi(a, Distro::Debian);
        let plan = Iscsi::default().plan(&mut run.cx(&h)).unwrap();
        let new = written(&plan, INITIATORNAME);
        assert!(new.starts_with("## Written by iser-wizard."), "{new}");
        assert!(
            new.ends_with("\nInitiatorName=iqn.2024-01.com.example:db01\n"),
            "{new}"
        );
        assert!(summary(&plan).contains(&"systemctl restart iscsid".to_string()));
        h.finish();
    }

    #[test]
    fn an_invalid_name_in_the_file_is_refused_naming_the_fix() {
        let h = FakeHost::new();
        configured(&h);
        h.put_file(INITIATORNAME, "InitiatorName=iqn.1993-08.org.debian:\n");
        let mut run = Run::iscsi(answers(), Distro::Debian);
        let e = Iscsi::default().plan(&mut run.cx(&h)).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("/etc/iscsi/initiatorname.iscsi names"),
            "{msg}"
        );
        assert!(msg.contains("host.initiator_iqn"), "{msg}");
        h.finish();
    }

    #[test]
    fn an_iface_with_tcp_transport_is_corrected_key_by_key() {
        let h = FakeHost::new();
        // Registered first: the fake answers from the first matching expectation.
        h.expect(
            &["iscsiadm", "-m", "iface", "-I", "iface-vA"],
            iface_show("iface-vA", "vA", "tcp", ""),
        );
        configured(&h);
        let mut run = Run::iscsi(answers(), Distro::Debian);
        let plan = Iscsi::default().plan(&mut run.cx(&h)).unwrap();
        assert_eq!(
            summary(&plan),
            vec![
                "iscsiadm -m iface -I iface-vA -o update -n iface.transport_name -v iser"
                    .to_string(),
                format!("iscsiadm -m iface -I iface-vA -o update -n iface.initiatorname -v {IQN}"),
            ]
        );
        assert!(plan
            .render()
            .contains("iface-vA has iface.transport_name tcp"));
        h.finish();
    }

    #[test]
    fn verify_names_what_did_not_take() {
        let h = FakeHost::new();
        configured(&h);
        let mut run = Run::iscsi(answers(), Distro::Debian);
        let mut step = Iscsi::default();
        assert!(step.plan(&mut run.cx(&h)).unwrap().is_empty());
        std::fs::remove_dir_all(h.path("/sys/module/ib_iser")).unwrap();
        put_private(&h, ISCSID_CONF, "node.startup = manual\n");
        let msg = step.verify(&mut run.cx(&h)).unwrap_err().to_string();
        assert!(
            msg.contains("/etc/iscsi/iscsid.conf: node.startup is manual, not automatic"),
            "{msg}"
        );
        assert!(
            msg.contains("node.session.timeo.replacement_timeout is unset, not 20"),
            "{msg}"
        );
        assert!(msg.contains("ib_iser is not loaded"), "{msg}");
        assert!(run.facts.initiator_iqn.is_none());
        h.finish();
    }

    #[test]
    fn a_dry_run_plans_everything_without_changing_anything() {
        let h = FakeHost::new();
        put_private(&h, ISCSID_CONF, CONF);
        unit(&h, "iscsid", "disabled", "inactive", true);
        unit(&h, "open-iscsi", "disabled", "inactive", true);
        h.expect(
            &["iscsi-iname"],
            CmdOutput::ok("iqn.2016-04.com.open-iscsi:5e1f0a9b8c7d\n"),
        );
        for name in ["iface-vA", "iface-vB"] {
            h.expect(&["iscsiadm", "-m", "iface", "-I", name], no_iface(name));
        }
        let ro = crate::steps::host::ReadOnly(&h);
        let mut run = Run::iscsi(answers(), Distro::Debian);
        let plan = Iscsi::default().plan(&mut run.cx(&ro)).unwrap();
        // Both files, modprobe, two units, and four commands per iface; iscsid was not
        // running, so it starts with the new name and needs no restart.
        assert_eq!(plan.actions.len(), 13, "{}", plan.render());
        assert!(h.changes().is_empty(), "{:?}", h.changes());
        assert!(!h.path(INITIATORNAME).exists());
        h.finish();
    }

    #[test]
    fn a_dry_run_on_a_bare_host_plans_from_the_answers_with_the_iqn_to_learn() {
        // No open-iscsi, no iscsid.conf, no initiator name, no ib_iser: only the answers.
        let h = FakeHost::new().only_programs(&[]);
        let ro = crate::steps::host::ReadOnly(&h);
        let mut run = Run::iscsi(answers(), Distro::Debian);
        run.options.dry_run = true;
        let plan = Iscsi::default().plan(&mut run.cx(&ro)).unwrap();
        // As shown: the placeholder is shell-quoted.
        let iqn = "'<initiator IQN from iscsi-iname>'";
        let upd =
            |i: &str, k: &str, v: &str| format!("iscsiadm -m iface -I {i} -o update -n {k} -v {v}");
        let mut want = vec![
            "write /etc/iscsi/iscsid.conf".to_string(),
            "write /etc/iscsi/initiatorname.iscsi".into(),
            "modprobe ib_iser".into(),
            "systemctl enable --now iscsid".into(),
            "systemctl enable --now open-iscsi".into(),
        ];
        for (i, dev) in [("iface-vA", "vA"), ("iface-vB", "vB")] {
            want.push(format!("iscsiadm -m iface -I {i} -o new"));
            want.push(upd(i, "iface.transport_name", "iser"));
            want.push(upd(i, "iface.net_ifacename", dev));
            want.push(upd(i, "iface.initiatorname", iqn));
        }
        assert_eq!(summary(&plan), want, "{}", plan.render());
        assert_eq!(plan.learned, ["initiator IQN from iscsi-iname"]);
        assert!(written(&plan, INITIATORNAME)
            .ends_with("InitiatorName=<initiator IQN from iscsi-iname>\n"));
        assert_eq!(
            written(&plan, ISCSID_CONF),
            "# Set by iser-wizard\nnode.startup = automatic\n\
             node.session.timeo.replacement_timeout = 20\n\
             node.conn[0].timeo.login_timeout = 5\n"
        );
        assert!(h.ran().is_empty(), "{:?}", h.ran());
        assert!(h.changes().is_empty(), "{:?}", h.changes());
        h.finish();
    }

    #[test]
    fn without_preflight_facts_it_says_which_step_to_run() {
        let h = FakeHost::new();
        let mut run = Run::iscsi(answers(), Distro::Debian);
        run.facts.os = None;
        let msg = Iscsi::default()
            .plan(&mut run.cx(&h))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("run the preflight step first"), "{msg}");
        h.finish();
    }
}
