//! Taking the wizard's work back off the host: `detach` (attached volumes, in the order of
//! DOMAIN.md "Detach"; the host side lives in `steps/detach`) and `undo` (the host's
//! configuration as it was before the wizard first changed it).
//!
//! Contract:
//! - Both read the state directory of the runs they take back; a state directory that does
//!   not exist is a usage error (exit 2). Both hold the state directory's lock while they
//!   change the host; a dry run takes none and writes nothing.
//! - `detach` records what it did in `state.json` (the volume leaves the attached volumes;
//!   a detach record) and on the worksheet, also when it stopped part-way (then the volume
//!   stays attached in the record, so `detach` again carries on from what is left).
//! - A refusal (busy mount, a flush that would lose queued I/O, a volume still attached for
//!   `undo`) changes nothing and exits 3.
//! - `undo` puts back only what the wizard recorded: files from `backups/` (content and
//!   mode), files in `CREATED`, and `backups/OBJECTS.json` (node, SendTargets and iface
//!   records, units it enabled or unmasked, and the tool-made paths that did not exist
//!   before its first change, removed only while they hold nothing but the wizard's own).
//!   Its plan is read from the host each time: a second undo finds nothing to do.
//! - A detach that leaves no volume attached (`--all`, or the last one) also tries to log
//!   out the sessions without a target name (discovery sessions a killed SendTargets
//!   discovery left: they serve no LUN), also when no volume was attached any more; one
//!   that iscsiadm refuses is reported as left.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;

use crate::exit::WizardError;
use crate::state::{State, StateDir};
use crate::steps::detach::{self, apply::Waits, Act};
use crate::steps::host::units::unit_states;
use crate::steps::host::{Interrupt, Log, ReadOnly, RealHost};
use crate::steps::parse::iscsiadm::{classify_exit, IscsiadmExit};
use crate::steps::sessions::leftover::{discovery_logouts, iscsi_db_has, portal_dir};
use crate::steps::{Host, StepError};
use crate::worksheets::DetachRecord;

/// What `detach` was asked to do.
#[derive(Debug, Clone, Default)]
pub struct DetachRequest {
    /// Mount points of the volumes to detach.
    pub mount_points: Vec<String>,
    /// Every attached volume.
    pub all: bool,
    /// Also remove the mapping on the array.
    pub unmap: bool,
    /// Print the plan; change nothing.
    pub dry_run: bool,
    /// Let the flush drop I/O queued on a map with a path down.
    pub force: bool,
    /// Root of the files read and written.
    pub root: PathBuf,
    /// The state directory.
    pub state_dir: PathBuf,
}

/// The state directory, which must exist: there is nothing to take back otherwise.
fn existing(state_dir: &Path) -> Result<StateDir, WizardError> {
    if !state_dir.is_dir() {
        return Err(WizardError::Usage(format!(
            "{}: no such state directory; give the --state-dir of the runs to take back",
            state_dir.display()
        )));
    }
    Ok(StateDir::new(state_dir))
}

fn real_host(
    root: &Path,
    sd: &StateDir,
    dry_run: bool,
    interrupt: Interrupt,
) -> anyhow::Result<RealHost> {
    let log = if dry_run {
        Log::disabled()
    } else {
        Log::open(&sd.log()).with_context(|| format!("opening {}", sd.log().display()))?
    };
    Ok(RealHost::new(
        root.to_path_buf(),
        (!dry_run).then(|| sd.backups()),
        Arc::new(log),
        interrupt,
    ))
}

fn failed(command: &'static str, source: StepError, changed: Vec<String>) -> WizardError {
    WizardError::Command {
        command,
        source: Box::new(source),
        changed,
    }
}

/// `iser-wizard detach`.
pub fn detach_command(
    req: &DetachRequest,
    interrupt: Interrupt,
    out: &mut dyn Write,
) -> Result<(), WizardError> {
    let sd = existing(&req.state_dir)?;
    let mut state = sd.load_state().context("reading the state")?;
    let targets = detach::select(&state.facts, &req.mount_points, req.all)
        .map_err(|e| WizardError::Usage(format!("detach: {e}; nothing was changed")))?;
    let env = |k: &str| std::env::var(k).ok();
    let unmap = if req.unmap {
        let answers = sd
            .load_answers()
            .context("reading the answers of the last run")?;
        Some(
            crate::steps::array::unmap::Request::from_last_run(
                answers.as_ref(),
                &state.facts,
                &env,
            )
            .map_err(WizardError::Usage)?,
        )
    } else {
        None
    };
    let real = real_host(&req.root, &sd, req.dry_run, interrupt)?;
    let ro = ReadOnly(&real);
    let host: &dyn Host = if req.dry_run { &ro } else { &real };
    let mut targets = targets;
    if req.all {
        // Ghost maps (no working path: their LUN is gone) go with everything else.
        let maps = detach::observe::maps(host).map_err(|e| failed("detach", e, vec![]))?;
        for m in maps.iter().filter(|m| detach::decide::is_ghost(m)) {
            if !targets.iter().any(|t| t.wwid == m.wwid) {
                targets.push(detach::Target {
                    wwid: m.wwid.clone(),
                    map: Some(m.name.clone()),
                    ..detach::Target::default()
                });
            }
        }
    }
    // No volume stays attached after this detach: discovery sessions left by a killed
    // discovery (no target name, no LUN) go too.
    let last = state
        .facts
        .attached_volumes()
        .iter()
        .all(|v| targets.iter().any(|t| Some(&t.wwid) == v.wwid.as_ref()));
    if targets.is_empty() {
        let stale = if last {
            detach::observe::sessions(host).map_err(|e| failed("detach", e, vec![]))?
        } else {
            Vec::new()
        };
        if discovery_logouts(&stale).is_empty() {
            let _ = writeln!(out, "detach: no volume is attached; nothing to do");
            return Ok(());
        }
    }
    let _lock = (!req.dry_run).then(|| sd.lock()).transpose()?;
    let obs = if targets.is_empty() {
        detach::observe::Observed {
            sessions: detach::observe::sessions(host).map_err(|e| failed("detach", e, vec![]))?,
            ..Default::default()
        }
    } else {
        detach::observe(host, &targets).map_err(|e| failed("detach", e, vec![]))?
    };
    let mut plan =
        detach::decide(&targets, &obs, req.force).map_err(|e| failed("detach", e, vec![]))?;
    if last {
        for (sid, portal) in discovery_logouts(&obs.sessions) {
            plan.acts.push(Act::Logout {
                sid,
                target: "no target name: a discovery session".into(),
                portal,
            });
        }
    }
    let _ = write!(
        out,
        "detach {}{}:\n{}",
        if targets.is_empty() {
            "the discovery sessions left behind".to_string()
        } else {
            targets
                .iter()
                .map(|t| t.mount_point.clone().unwrap_or_else(|| t.wwid.clone()))
                .collect::<Vec<_>>()
                .join(", ")
        },
        if req.dry_run {
            " (dry run: the plan)"
        } else {
            ""
        },
        plan.render()
    );
    let wwids: Vec<String> = targets.iter().map(|t| t.wwid.clone()).collect();
    if req.dry_run {
        if let Some(u) = &unmap {
            unmap_array(u, &wwids, true, &env, out, vec![])?;
        }
        return Ok(());
    }
    let sheet = sd.load_worksheet().context("reading the worksheet")?;
    let result = detach::apply(host, &plan, Waits::default());
    let (outcome, stopped) = match result {
        Ok(o) => (o, None),
        Err(s) => {
            let s = *s;
            (s.outcome, Some(s.error))
        }
    };
    for l in &outcome.left {
        let _ = writeln!(out, "left: {l}");
    }
    record(
        &mut state,
        sheet,
        &sd,
        &targets,
        &plan.acts,
        &outcome,
        stopped.is_none(),
    )?;
    if let (None, Some(u)) = (&stopped, &unmap) {
        unmap_array(u, &wwids, false, &env, out, outcome.done.clone())?;
    }
    match stopped {
        None => {
            let what = if targets.is_empty() {
                "the discovery sessions left behind".to_string()
            } else {
                format!(
                    "{} volume{}",
                    targets.len(),
                    if targets.len() == 1 { "" } else { "s" }
                )
            };
            let _ = writeln!(
                out,
                "detached {what}{}",
                if outcome.left.is_empty() {
                    String::new()
                } else {
                    format!("; {} leftover(s) listed above", outcome.left.len())
                }
            );
            Ok(())
        }
        Some(e) => Err(failed("detach", e, outcome.done)),
    }
}

/// `--unmap`, once the host side is gone: the array's mappings of the volumes; `done` is
/// what the host side changed, reported with a failure.
fn unmap_array(
    u: &crate::steps::array::unmap::Request,
    wwids: &[String],
    dry_run: bool,
    env: &dyn Fn(&str) -> Option<String>,
    out: &mut dyn Write,
    done: Vec<String>,
) -> Result<(), WizardError> {
    let report = u.run(wwids, dry_run, env).map_err(|e| {
        let why = if dry_run {
            e.to_string()
        } else {
            // The host side is recorded as detached, so a second `detach --unmap`
            // finds nothing: say what is left on the array.
            format!(
                "{e}; the host side is detached, the mapping is left on the array: remove \
                     it there (System Manager: Hosts > unassign volumes)"
            )
        };
        failed("detach --unmap", StepError::Failed(why), done)
    })?;
    for l in &report.lines {
        let _ = writeln!(out, "array: {l}");
    }
    Ok(())
}

/// Save what the detach did: a finished one forgets the volumes and the sessions it
/// logged out, and both records get a detach entry per volume.
fn record(
    state: &mut State,
    mut sheet: crate::worksheets::Worksheet,
    sd: &StateDir,
    targets: &[detach::Target],
    acts: &[Act],
    outcome: &detach::Outcome,
    finished: bool,
) -> Result<(), WizardError> {
    let at = crate::steps::timefmt::now_rfc3339();
    if finished {
        for t in targets {
            state.facts.forget_volume(&t.wwid);
            sheet
                .volumes
                .retain(|v| v.wwid.as_deref() != Some(t.wwid.as_str()));
            let rec = DetachRecord {
                at: at.clone(),
                wwid: t.wwid.clone(),
                mount_point: t.mount_point.clone(),
                done: outcome.done.clone(),
                left: outcome.left.clone(),
            };
            state.detached.push(rec.clone());
            sheet.detached.push(rec);
        }
        // Sessions logged out (and not reported left) leave the record too.
        let gone: Vec<String> = acts
            .iter()
            .filter_map(|a| match a {
                Act::Logout { sid, portal, .. }
                    if !outcome
                        .left
                        .iter()
                        .any(|l| l.contains(&format!("session {sid} "))) =>
                {
                    Some(portal.to_string())
                }
                _ => None,
            })
            .collect();
        state.facts.sessions.retain(|s| !gone.contains(&s.portal));
        sheet.sessions.retain(|s| !gone.contains(&s.portal));
    }
    sd.save_state(state)?;
    sd.save_worksheet(&sheet)?;
    Ok(())
}

/// One change of an undo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UndoAct {
    /// Put a file back as it was before the wizard first changed it.
    Restore {
        /// The file.
        path: PathBuf,
        /// What it holds now (`None`: it is gone).
        now: Option<String>,
        /// What it held.
        original: String,
        /// Its mode then (used when the file has to be created again).
        mode: u32,
    },
    /// Remove a file the wizard created.
    Remove {
        /// The file.
        path: PathBuf,
    },
    /// Remove a directory a tool created while the wizard worked, once it is empty.
    RemoveDir {
        /// The directory.
        path: PathBuf,
    },
    /// Run a command (disable a unit, delete an iface or a record).
    Run {
        /// The command.
        cmd: crate::steps::Cmd,
        /// Why.
        why: String,
    },
}

impl std::fmt::Display for UndoAct {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UndoAct::Restore { path, now, .. } => write!(
                f,
                "{} {} from backups/",
                if now.is_some() { "restore" } else { "recreate" },
                path.display()
            ),
            UndoAct::Remove { path } => {
                write!(f, "remove {} (the wizard created it)", path.display())
            }
            UndoAct::RemoveDir { path } => write!(
                f,
                "remove the directory {} once empty (it did not exist before the wizard)",
                path.display()
            ),
            UndoAct::Run { cmd, why } => write!(f, "`{cmd}` ({why})"),
        }
    }
}

/// Whether a probe command succeeds (exit 0).
fn probe_ok(host: &dyn Host, argv: &[&str]) -> Result<bool, StepError> {
    if host.which(argv[0]).is_none() {
        return Ok(false);
    }
    Ok(host
        .run(&crate::steps::Cmd::probe(argv.iter().copied()))?
        .success())
}

/// What `undo` would change: files whose content differs from their backup, created files
/// still there, the recorded objects still present, and the paths tools made that hold
/// nothing but the volumes `ours` (WWIDs). Read-only; empty when everything is already as
/// it was (so a second undo changes nothing).
pub fn undo_plan(
    host: &dyn Host,
    backups: &Path,
    ours: &[String],
) -> Result<(Vec<UndoAct>, Vec<String>), StepError> {
    use crate::steps::host::backup;
    let io = |e: std::io::Error| StepError::Failed(format!("reading {}: {e}", backups.display()));
    let mut acts = Vec::new();
    let mut notes = Vec::new();
    let objects = backup::load_objects(backups).map_err(io)?;
    // iSCSI database first: records, then ifaces (a record names its iface). Whether each
    // is still there is read from the database's files, not asked of iscsiadm: any
    // iscsiadm command makes its ifaces directory again, which undo must leave gone.
    for (target, portal, iface) in &objects.nodes {
        if iscsi_db_has(host, &format!("nodes/{target}"), &portal_dir(portal))? {
            let mut argv = vec!["iscsiadm", "-m", "node", "-T", target, "-p", portal];
            if let Some(i) = iface {
                argv.extend(["-I", i]);
            }
            argv.extend(["-o", "delete"]);
            acts.push(UndoAct::Run {
                cmd: crate::steps::Cmd::change(argv.iter().copied()),
                why: "a node record the wizard created".into(),
            });
        }
    }
    for (portal, iface) in &objects.discoveries {
        if iscsi_db_has(host, "send_targets", &portal_dir(portal))? {
            let argv = [
                "iscsiadm",
                "-m",
                "discoverydb",
                "-t",
                "st",
                "-p",
                portal,
                "-I",
                iface,
            ];
            acts.push(UndoAct::Run {
                cmd: crate::steps::Cmd::change(argv.iter().copied().chain(["-o", "delete"])),
                why: "the SendTargets record the wizard's discovery made, with its node records"
                    .into(),
            });
        }
    }
    for iface in &objects.ifaces {
        if iscsi_db_has(host, "ifaces", iface)? {
            let argv = ["iscsiadm", "-m", "iface", "-I", iface];
            acts.push(UndoAct::Run {
                cmd: crate::steps::Cmd::change(argv.iter().copied().chain(["-o", "delete"])),
                why: "an iface the wizard created".into(),
            });
        }
    }
    for o in backup::originals(backups).map_err(io)? {
        let now = host.read(&o.path)?;
        let original = String::from_utf8_lossy(&o.bytes).into_owned();
        let mode_now = host.mode(&o.path)?.map(|m| m & 0o7777);
        if now.as_deref() != Some(original.as_str()) || mode_now != Some(o.mode & 0o7777) {
            acts.push(UndoAct::Restore {
                path: o.path,
                now,
                original,
                mode: o.mode,
            });
        }
    }
    for path in backup::created(backups).map_err(io)? {
        if host.exists(&path) {
            acts.push(UndoAct::Remove { path });
        }
    }
    // Paths tools made on their own (absent before the first change): files that hold
    // nothing but the wizard's volumes, and directories (deepest first) once emptied.
    let mut absent: Vec<&String> = objects.absent_before.iter().collect();
    absent.sort_by_key(|p| std::cmp::Reverse(p.len()));
    let pending = !acts.is_empty();
    for p in absent {
        let path = PathBuf::from(p);
        let Some(mode) = host.mode(&path)? else {
            continue;
        };
        if mode & 0o170000 == 0o040000 {
            if only_directories(host, &path)? {
                acts.push(UndoAct::RemoveDir { path });
            } else if pending {
                // Records still to delete may be all it holds: looked at again when applied.
                acts.push(UndoAct::RemoveDir { path });
            } else {
                notes.push(format!(
                    "{p} is kept: it did not exist before the wizard, but holds files it did \
                     not make"
                ));
            }
            continue;
        }
        let text = host.read(&path)?.unwrap_or_default();
        let foreign: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .filter(|l| !ours.iter().any(|w| l.contains(w.as_str())))
            .collect();
        if foreign.is_empty() {
            acts.push(UndoAct::Remove { path });
        } else {
            notes.push(format!(
                "{p} is kept: it did not exist before the wizard, but now also lists {}",
                foreign.join(", ")
            ));
        }
    }
    // Every recorded unit's state in one `systemctl show` (not one `is-enabled` each).
    let names: Vec<&str> = objects
        .units_enabled
        .iter()
        .chain(&objects.units_unmasked)
        .map(String::as_str)
        .collect();
    let states = if names.is_empty() || host.which("systemctl").is_none() {
        Vec::new()
    } else {
        unit_states(host, &names)?
    };
    let state_of = |unit: &str| {
        names
            .iter()
            .position(|n| *n == unit)
            .and_then(|i| states.get(i))
    };
    for unit in &objects.units_enabled {
        if state_of(unit).is_some_and(|s| s.enabled_ok()) {
            acts.push(UndoAct::Run {
                cmd: crate::steps::Cmd::change(["systemctl", "disable", "--now", unit.as_str()]),
                why: "the wizard enabled it".into(),
            });
        }
    }
    for unit in &objects.units_unmasked {
        // Without systemd to ask, nothing is masked again.
        let masked = state_of(unit).is_none_or(|s| s.enabled.starts_with("masked"));
        if !masked {
            acts.push(UndoAct::Run {
                cmd: crate::steps::Cmd::change(["systemctl", "mask", unit.as_str()]),
                why: "it was masked before the wizard unmasked it".into(),
            });
        }
    }
    // A running multipathd keeps the configuration it read: after its files are put back
    // (a drop-in `tune --persist` wrote, multipath.conf), it reads them again.
    let multipath_conf =
        |p: &Path| p.starts_with("/etc/multipath") || p == Path::new("/etc/multipath.conf");
    let conf_changed = acts.iter().any(|a| match a {
        UndoAct::Restore { path, .. } | UndoAct::Remove { path } => multipath_conf(path),
        _ => false,
    });
    // Not when undo stops it anyway (the wizard enabled it).
    let stopped = objects
        .units_enabled
        .iter()
        .any(|u| u == "multipathd" || u == "multipathd.service");
    if conf_changed
        && !stopped
        && probe_ok(host, &["systemctl", "is-active", "--quiet", "multipathd"])?
    {
        acts.push(UndoAct::Run {
            cmd: crate::steps::Cmd::change(["multipathd", "reconfigure"]),
            why: "multipathd reads its restored configuration".into(),
        });
    }
    if objects.is_empty() {
        notes.push(
            "no record of units, ifaces or iSCSI records the wizard created (a run of an \
             earlier version): only files are restored"
                .into(),
        );
    }
    Ok((acts, notes))
}

/// Whether `dir` holds nothing but (possibly nested) empty directories: what iscsiadm
/// leaves of its database once the records in it are deleted.
fn only_directories(host: &dyn Host, dir: &Path) -> Result<bool, StepError> {
    for name in host.list_dir(dir)? {
        let p = dir.join(&name);
        let holds_files = match host.mode(&p)? {
            Some(m) if m & 0o170000 == 0o040000 => !only_directories(host, &p)?,
            None => false,
            Some(_) => true,
        };
        if holds_files {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Remove a tree of empty directories, deepest first (never a file: `remove_dir` refuses
/// a directory that is not empty).
fn remove_tree_of_directories(host: &dyn Host, dir: &Path) -> Result<(), StepError> {
    for name in host.list_dir(dir)? {
        remove_tree_of_directories(host, &dir.join(name))?;
    }
    host.remove_dir(dir)?;
    Ok(())
}

/// Apply one undo action.
fn undo_apply(host: &dyn Host, act: &UndoAct) -> Result<(), StepError> {
    match act {
        UndoAct::Restore {
            path,
            original,
            mode,
            ..
        } => {
            host.write(path, original, *mode)?;
            // An existing file keeps its mode through a write: give it its original one.
            host.set_mode(path, *mode)?;
        }
        UndoAct::Remove { path } => {
            host.remove_file(path)?;
        }
        UndoAct::RemoveDir { path } => {
            // Still holding a file (not the wizard's): kept whole.
            if only_directories(host, path)? {
                remove_tree_of_directories(host, path)?;
            }
        }
        UndoAct::Run { cmd, .. } => {
            let o = host.run(cmd)?;
            // A record deleted since the plan read the database (by a clean-up of a
            // failed discovery, or by hand) is what undo wants: iscsiadm says 21, no
            // such record.
            let gone = cmd.argv.first().is_some_and(|p| p == "iscsiadm")
                && cmd.argv.last().is_some_and(|a| a == "delete")
                && o.code.map(classify_exit) == Some(IscsiadmExit::NoObjectsFound);
            if !o.success() && !gone {
                return Err(StepError::command(cmd, &o, None));
            }
        }
    }
    Ok(())
}

/// `iser-wizard undo`.
pub fn undo_command(
    root: &Path,
    state_dir: &Path,
    dry_run: bool,
    interrupt: Interrupt,
    out: &mut dyn Write,
) -> Result<(), WizardError> {
    let sd = existing(state_dir)?;
    let state = sd.load_state().context("reading the state")?;
    let attached = state.facts.attached_volumes();
    if !attached.is_empty() {
        return Err(failed(
            "undo",
            StepError::Refused {
                reason: "a volume is still attached: detach first (`iser-wizard detach --all`)"
                    .into(),
                evidence: attached
                    .iter()
                    .map(|v| {
                        format!(
                            "{} on {}",
                            v.wwid.as_deref().unwrap_or("?"),
                            v.mount_point.as_deref().unwrap_or("(not mounted)")
                        )
                    })
                    .collect(),
            },
            vec![],
        ));
    }
    let _lock = (!dry_run).then(|| sd.lock()).transpose()?;
    let log = if dry_run {
        Log::disabled()
    } else {
        Log::open(&sd.log()).with_context(|| format!("opening {}", sd.log().display()))?
    };
    // No backups directory for undo's own writes: restoring an original is not a change to
    // back up, and a file put back must not be listed as created by the wizard.
    let real = RealHost::new(root.to_path_buf(), None, Arc::new(log), interrupt);
    let ro = ReadOnly(&real);
    let host: &dyn Host = if dry_run { &ro } else { &real };
    let ours: Vec<String> = state.detached.iter().map(|d| d.wwid.clone()).collect();
    let (acts, notes) =
        undo_plan(host, &sd.backups(), &ours).map_err(|e| failed("undo", e, vec![]))?;
    if acts.is_empty() {
        let _ = writeln!(
            out,
            "undo: nothing to do: the host is as it was before the wizard"
        );
    }
    for (i, a) in acts.iter().enumerate() {
        let _ = writeln!(out, "{:>2}. {a}", i + 1);
        if let UndoAct::Restore {
            path,
            now,
            original,
            ..
        } = a
        {
            let _ = write!(
                out,
                "{}",
                crate::steps::plan::unified_diff(path, now.as_deref(), original)
            );
        }
    }
    for n in &notes {
        let _ = writeln!(out, "note: {n}");
    }
    if let Some(cmd) = &state.facts.multipath.initramfs_rebuilt {
        let _ = writeln!(
            out,
            "note: the initramfs was rebuilt with the wizard's multipath settings (`{cmd}`); \
             rebuild it again after the undo so the next boot does not carry them"
        );
    }
    if dry_run {
        return Ok(());
    }
    let mut done = Vec::new();
    for a in &acts {
        undo_apply(host, a).map_err(|e| failed("undo", e, done.clone()))?;
        done.push(a.to_string());
    }
    // What is left is read again, never assumed gone.
    let (left, left_notes) =
        undo_plan(host, &sd.backups(), &ours).map_err(|e| failed("undo", e, done.clone()))?;
    for l in &left {
        let _ = writeln!(out, "left: {l}");
    }
    for n in left_notes.iter().filter(|n| !notes.contains(n)) {
        let _ = writeln!(out, "note: {n}");
    }
    if !acts.is_empty() {
        let _ = writeln!(
            out,
            "undo: {} change{} taken back{}",
            acts.len(),
            if acts.len() == 1 { "" } else { "s" },
            if left.is_empty() {
                ""
            } else {
                "; see the leftovers above"
            }
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::steps::fake::FakeHost;
    use crate::steps::host::backup;
    use crate::steps::CmdOutput;

    const DELETE: [&str; 11] = [
        "iscsiadm",
        "-m",
        "discoverydb",
        "-t",
        "st",
        "-p",
        "192.168.130.101:3260",
        "-I",
        "iface-vA",
        "-o",
        "delete",
    ];

    /// A state's `backups/` recording the discovery of a failed run.
    fn backups_with_a_discovery() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        backup::record_objects(dir.path(), |o| {
            o.discoveries
                .push(("192.168.130.101:3260".into(), "iface-vA".into()));
        })
        .unwrap();
        dir
    }

    #[test]
    fn a_discovery_record_already_gone_is_not_planned() {
        let b = backups_with_a_discovery();
        let h = FakeHost::new();
        let (acts, _) = undo_plan(&h, b.path(), &[]).unwrap();
        assert!(acts.is_empty(), "{acts:?}");
        // Still there (in either database): deleted.
        h.put_file(
            "/var/lib/iscsi/send_targets/192.168.130.101,3260/st_config",
            "x\n",
        );
        let (acts, _) = undo_plan(&h, b.path(), &[]).unwrap();
        assert_eq!(acts.len(), 1, "{acts:?}");
        assert!(
            acts[0].to_string().contains(&DELETE.join(" ")),
            "{}",
            acts[0]
        );
        h.finish();
    }

    #[test]
    fn a_record_deleted_between_plan_and_apply_is_fine_and_another_failure_is_not() {
        let b = backups_with_a_discovery();
        let h = FakeHost::new();
        h.put_file(
            "/etc/iscsi/send_targets/192.168.130.101,3260/st_config",
            "x\n",
        );
        let (acts, _) = undo_plan(&h, b.path(), &[]).unwrap();
        assert_eq!(acts.len(), 1, "{acts:?}");
        // Gone by the time undo deletes it: iscsiadm says 21 (no records found).
        h.expect(
            &DELETE,
            CmdOutput::status(21, "", "iscsiadm: No records found\n"),
        );
        undo_apply(&h, &acts[0]).unwrap();
        // Any other failure is one.
        h.expect(
            &DELETE,
            CmdOutput::status(6, "", "iscsiadm: Could not open /etc/iscsi\n"),
        );
        assert!(undo_apply(&h, &acts[0]).is_err());
        h.finish();
    }

    #[test]
    fn recorded_units_are_read_in_one_systemctl_show() {
        use crate::steps::host::units::{show_output, unit_states_cmd};
        let dir = tempfile::tempdir().unwrap();
        backup::record_objects(dir.path(), |o| {
            o.units_enabled.push("iscsid.socket".into());
            o.units_enabled.push("open-iscsi".into());
            o.units_unmasked.push("multipathd".into());
        })
        .unwrap();
        let h = FakeHost::new();
        let show = unit_states_cmd(&["iscsid.socket", "open-iscsi", "multipathd"]);
        let argv: Vec<&str> = show.argv.iter().map(String::as_str).collect();
        h.expect(
            &argv,
            CmdOutput::ok(show_output(&[
                ("iscsid.socket", "enabled", "active"),
                ("open-iscsi", "disabled", "inactive"),
                ("multipathd", "enabled", "active"),
            ])),
        );
        let (acts, _) = undo_plan(&h, dir.path(), &[]).unwrap();
        let acts: Vec<String> = acts.iter().map(ToString::to_string).collect();
        // Enabled by the wizard and still enabled: disabled; already disabled: left; unmasked
        // by the wizard and not masked since: masked again.
        assert_eq!(acts.len(), 2, "{acts:?}");
        assert!(
            acts[0].contains("systemctl disable --now iscsid.socket"),
            "{acts:?}"
        );
        assert!(acts[1].contains("systemctl mask multipathd"), "{acts:?}");
        h.finish();
    }

    #[test]
    fn a_running_multipathd_rereads_its_configuration_once_its_files_are_put_back() {
        let dir = tempfile::tempdir().unwrap();
        let dropin = Path::new("/etc/multipath/conf.d/90-iser-wizard-tune.conf");
        backup::record_created(dir.path(), dropin).unwrap();
        let h = FakeHost::new();
        h.put_file(dropin.to_str().unwrap(), "multipaths {}\n");
        h.expect(
            &["systemctl", "is-active", "--quiet", "multipathd"],
            CmdOutput::ok(""),
        );
        let (acts, _) = undo_plan(&h, dir.path(), &[]).unwrap();
        let acts: Vec<String> = acts.iter().map(ToString::to_string).collect();
        assert_eq!(acts.len(), 2, "{acts:?}");
        assert!(acts[0].contains("90-iser-wizard-tune.conf"), "{acts:?}");
        assert!(acts[1].contains("multipathd reconfigure"), "{acts:?}");
        h.finish();
        // A multipathd that is not running reads the files when it starts: no reconfigure.
        let h = FakeHost::new();
        h.put_file(dropin.to_str().unwrap(), "multipaths {}\n");
        h.expect(
            &["systemctl", "is-active", "--quiet", "multipathd"],
            CmdOutput::status(3, "", ""),
        );
        let (acts, _) = undo_plan(&h, dir.path(), &[]).unwrap();
        assert_eq!(acts.len(), 1, "{acts:?}");
        h.finish();
    }
}
