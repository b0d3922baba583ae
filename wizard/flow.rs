//! The step engine: for each selected step, plan (probe + ask), show the plan, ask before
//! applying (interactive), apply, verify against a fresh probe, and save state, facts and
//! worksheet. A dry run stops after showing each plan and writes nothing anywhere but the
//! `--record-answers` file it was asked for.
//!
//! First screen: an interactive run opens with what each step does, what to have at hand
//! and how to stop; a dry run plans preflight before any question and names there what a
//! real run would stop on (that plan is the one shown at step 1, not made twice).
//!
//! Answers: after a step's questions, a real run puts the answers on the worksheet and saves
//! state, worksheet and answers before asking to apply. `--record-answers` is written at the
//! end of a real run, and on a dry run or a run that stopped once the answers are complete.
//!
//! Resume: a run that did not finish (a failure, Ctrl-C, a kill) leaves `state.json` with the
//! steps it completed; `run` again with the same answers skips those and goes on. A run that
//! finished starts over on the next `run`, re-probing every step, which then plans nothing
//! where the host already matches.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use serde_json::Value;

use crate::exit::WizardError;
use crate::output::{Human, Report, StepReport, StepStatus};
use crate::progress::TermProgress;
use crate::prompt::{Asker, Mode, TakenMountPoint};
use crate::state::{RunRecord, State, StateDir};
use crate::steps::host::{Interrupt, Log, ReadOnly, RealHost};
use crate::steps::plan::Completed;
use crate::steps::{timefmt, Ctx, Host, Options, Progress, StepError, StepName};
use crate::worksheets::Worksheet;

/// A validated `run`.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Root of every file read or written.
    pub root: PathBuf,
    /// State directory.
    pub state_dir: PathBuf,
    /// The steps to run, in order.
    pub steps: Vec<StepName>,
    /// Whether this is a partial run (`--only`/`--from`): no resume skipping.
    pub partial: bool,
    /// Probe and plan only.
    pub dry_run: bool,
    /// Allow formatting a device that only carries signatures.
    pub force_format: bool,
    /// Validated answers (unattended), or `None`.
    pub answers: Option<Value>,
    /// How questions are answered.
    pub mode: Mode,
    /// Where to write the answers given, at the end.
    pub record_answers: Option<PathBuf>,
    /// List the slowest commands at the end.
    pub timings: bool,
}

fn digest(v: &Value) -> String {
    format!(
        "{:016x}",
        xxhash_rust::xxh3::xxh3_64(v.to_string().as_bytes())
    )
}

/// Apply one plan's actions; returns the headlines of what was done.
fn apply(
    step: &mut dyn crate::steps::Step,
    cx: &mut Ctx<'_>,
    plan: &crate::steps::Plan,
    interrupt: &Interrupt,
    changed: &mut Vec<String>,
    checkpoint: &mut dyn FnMut(&crate::steps::Facts, &Worksheet),
) -> Result<(), StepError> {
    for (i, action) in plan.actions.iter().enumerate() {
        if interrupt.is_set() {
            return Err(StepError::Host(crate::steps::HostError::Interrupted));
        }
        cx.progress.message(&format!(
            "{}/{}: {}",
            i + 1,
            plan.actions.len(),
            action.headline()
        ));
        crate::steps::apply_action(step, cx, action)?;
        changed.push(action.headline());
        // Facts learned mid-step (the partition just made) must survive a kill, so that a
        // resumed run recognises its own work instead of refusing it as foreign data.
        checkpoint(cx.facts, cx.sheet);
    }
    Ok(())
}

/// Ask before applying a step's plan: `Ok(false)` when declined, or stopped with Esc or `q`
/// (as with Ctrl-C, the state is saved and `run` resumes here).
fn confirm_apply(step: StepName, n: usize) -> Result<bool, WizardError> {
    let theme = dialoguer::theme::ColorfulTheme::default();
    let confirm = dialoguer::Confirm::with_theme(&theme)
        .with_prompt(format!(
            "Apply {n} change{} of step {step}?",
            if n == 1 { "" } else { "s" }
        ))
        .default(true);
    match crate::progress::suspend(|| confirm.interact_opt()) {
        Ok(answer) => Ok(answer.unwrap_or(false)),
        Err(_) => {
            // Ctrl-C at the prompt: dialoguer leaves the cursor it hid.
            crate::prompt::show_cursor();
            Err(WizardError::Interrupted(Some(step)))
        }
    }
}

/// One line per step for the first screen: what it does.
fn step_summary(step: StepName) -> &'static str {
    match step {
        StepName::Preflight => {
            "checks the distribution, privileges, RDMA devices and modules; installs missing tools"
        }
        StepName::SubnetManager => {
            "runs opensm per InfiniBand port, unless one already runs on the fabric (not on RoCE)"
        }
        StepName::Network => {
            "gives each iSER port its address, persistently, and checks every portal answers"
        }
        StepName::Iscsi => "configures iscsid, the initiator IQN and one iser iface per port",
        StepName::Array => {
            "creates the host and maps the volumes on the array through its API (with `array`)"
        }
        StepName::Sessions => "finds the target's portals and logs in over iSER on each path",
        StepName::Multipath => "configures multipath and finds the volume's map and paths",
        StepName::Filesystem => {
            "partitions and formats the volume (after safety checks), mounts it, adds it to fstab"
        }
        StepName::Verify => "writes a test file, reads it back past the page cache, and compares",
    }
}

/// The prefix of the preflight plan's notes that name what stops a real run.
const WOULD_STOP: &str = "would stop here: ";

/// The first screen of an interactive run: what will happen, what to have at hand, how to
/// stop, and that nothing changes before each plan is confirmed.
fn first_screen(cfg: &RunConfig, out: &mut dyn Write) {
    let _ = writeln!(
        out,
        "iser-wizard takes this host to a mounted, verified iSER volume, one step at a time:"
    );
    for &name in &cfg.steps {
        let _ = writeln!(
            out,
            "  {}. {:<15} {}",
            name.number(),
            name.as_str(),
            step_summary(name)
        );
    }
    let _ = writeln!(
        out,
        "Each step probes the host, asks only what it cannot detect (Enter takes the detected \
         default shown in parentheses), and shows its plan. {}",
        if cfg.dry_run {
            "This is a dry run: nothing is changed, and no plan is applied."
        } else {
            "Nothing changes before you confirm that step's plan."
        }
    );
    let _ = writeln!(
        out,
        "Have at hand: the target IQN (or let SendTargets discovery find it), the array's iSER \
         port addresses (controller A and B on each subnet), and which volume to use (its WWID \
         from the array, or \"auto\" when exactly one is mapped)."
    );
    let _ = writeln!(
        out,
        "{}",
        if cfg.dry_run {
            "To stop: Ctrl-C, or Esc or q at a yes/no or a choice (exit 130; a dry run saves nothing)."
        } else {
            "To stop: Ctrl-C, or Esc or q at a yes/no or a choice, saves what is known and \
             exits 130; `iser-wizard run` again resumes where it stopped."
        }
    );
}

/// Undo the octal escapes of /proc/self/mountinfo and fstab (`\040` is a space).
fn unescape_octal(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let oct = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], oct) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The mount points other volumes hold: mounted now (`mountinfo`) or listed in `fstab`.
/// What this wizard's own volumes hold (from an earlier run's facts) is left out, so that a
/// run again over a finished one can answer the same mount point.
fn taken_mount_points(
    mountinfo: Option<&str>,
    fstab: Option<&str>,
    ours: &[&crate::steps::facts::VolumeFact],
) -> Vec<TakenMountPoint> {
    let mut taken = Vec::new();
    for line in mountinfo.unwrap_or_default().lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let (Some(mp), Some(source)) = (
            left.split_whitespace().nth(4),
            right.split_whitespace().nth(1),
        ) else {
            continue;
        };
        taken.push(TakenMountPoint {
            mount_point: unescape_octal(mp),
            source: unescape_octal(source),
            mounted: true,
        });
    }
    for line in fstab.unwrap_or_default().lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 2 || f[0].starts_with('#') || !f[1].starts_with('/') {
            continue;
        }
        taken.push(TakenMountPoint {
            mount_point: unescape_octal(f[1]),
            source: unescape_octal(f[0]),
            mounted: false,
        });
    }
    let our_sources: Vec<String> = ours
        .iter()
        .flat_map(|v| {
            [
                v.fs_uuid.as_ref().map(|u| format!("UUID={u}")),
                v.fs_device.clone(),
                v.partition.clone(),
                v.map_device.clone(),
            ]
        })
        .flatten()
        .collect();
    taken.retain(|t| {
        !our_sources.contains(&t.source)
            && !ours
                .iter()
                .any(|v| v.mount_point.as_deref() == Some(&t.mount_point))
    });
    taken
}

/// What stops a real run, from a dry run's preflight plan (or its failure to plan).
fn blockers(planned: &Result<crate::steps::Plan, StepError>) -> Vec<String> {
    match planned {
        Ok(plan) => plan
            .notes
            .iter()
            .filter_map(|n| n.strip_prefix(WOULD_STOP).map(str::to_string))
            .collect(),
        Err(StepError::Ask(crate::steps::AskError::Interrupted)) => Vec::new(),
        Err(e) => vec![e.to_string()],
    }
}

/// Run the selected steps on the real host, telling `report` how each step ends.
pub fn run(
    cfg: RunConfig,
    interrupt: Interrupt,
    out: &mut dyn Write,
    report: &dyn Report,
) -> Result<(), WizardError> {
    let sd = StateDir::new(&cfg.state_dir);
    let log = if cfg.dry_run {
        Arc::new(Log::disabled())
    } else {
        sd.create()
            .with_context(|| format!("creating the state directory {}", sd.path.display()))?;
        Arc::new(Log::open(&sd.log()).with_context(|| format!("opening {}", sd.log().display()))?)
    };
    let real = RealHost::new(
        cfg.root.clone(),
        (!cfg.dry_run).then(|| sd.backups()),
        log.clone(),
        interrupt.clone(),
    )
    .without_env(secret_env_names(cfg.answers.as_ref()));
    execute_reporting(
        &cfg,
        &real,
        &log,
        &interrupt,
        &mut crate::steps::step,
        out,
        report,
    )
}

/// The environment variables the answers name as holding secrets (CHAP, the array's API).
fn secret_env_names(answers: Option<&Value>) -> Vec<String> {
    let Some(v) = answers else {
        return Vec::new();
    };
    [
        &v["target"]["chap"]["password_env"],
        &v["array"]["password_env"],
    ]
    .into_iter()
    .filter_map(|x| x.as_str().map(str::to_string))
    .collect()
}

/// Run the selected steps on `host` (wrapped read-only on a dry run), making each step with
/// `make_step`.
pub fn execute(
    cfg: &RunConfig,
    real: &dyn Host,
    log: &Log,
    interrupt: &Interrupt,
    make_step: &mut dyn FnMut(StepName) -> Box<dyn crate::steps::Step>,
    out: &mut dyn Write,
) -> Result<(), WizardError> {
    execute_reporting(cfg, real, log, interrupt, make_step, out, &Human)
}

/// [`execute`], telling `report` how each step ends (`run --json`).
pub fn execute_reporting(
    cfg: &RunConfig,
    real: &dyn Host,
    log: &Log,
    interrupt: &Interrupt,
    make_step: &mut dyn FnMut(StepName) -> Box<dyn crate::steps::Step>,
    out: &mut dyn Write,
    report: &dyn Report,
) -> Result<(), WizardError> {
    let mut engine = Engine::load(cfg, log, interrupt, report)?;
    let read_only = ReadOnly(real);
    let host: &dyn Host = if cfg.dry_run { &read_only } else { real };
    if cfg.mode == Mode::Interactive && !engine.resume {
        first_screen(cfg, out);
    }
    // A dry run plans preflight before anything else, so that its first screen can say
    // what a real run would stop on, before any question is asked.
    let mut early = None;
    if cfg.dry_run && cfg.steps.first() == Some(&StepName::Preflight) {
        let mut step = make_step(StepName::Preflight);
        let planned = engine.probe(host, step.as_mut());
        early = Some((step, planned));
    }
    if let Some((_, planned)) = &early {
        let stops = blockers(planned);
        if !stops.is_empty() {
            let _ = writeln!(
                out,
                "\nA real run would stop at preflight on this host, before any question; to fix first:"
            );
            for b in &stops {
                let _ = writeln!(out, "  - {b}");
            }
            let _ = writeln!(
                out,
                "This dry run goes on: it asks and shows the plan of every step as it would be \
                 once these are fixed."
            );
        }
    }
    engine.start(out);
    match run_steps(&mut engine, host, interrupt, make_step, early, out) {
        Ok(()) => engine.finish(out),
        Err(e) => {
            // What was typed is not lost with the run: written when it is complete.
            if let Err(rec) = engine.record_if_complete(out) {
                let _ = writeln!(out, "note: the answers were not recorded: {rec}");
            }
            Err(e)
        }
    }
}

/// The plan found before the first screen: the step and its plan.
type Early = Option<(
    Box<dyn crate::steps::Step>,
    Result<crate::steps::Plan, StepError>,
)>;

/// Each selected step in turn, skipping those an interrupted run completed.
fn run_steps(
    engine: &mut Engine<'_>,
    host: &dyn Host,
    interrupt: &Interrupt,
    make_step: &mut dyn FnMut(StepName) -> Box<dyn crate::steps::Step>,
    mut early: Early,
    out: &mut dyn Write,
) -> Result<(), WizardError> {
    let cfg = engine.cfg;
    for &name in &cfg.steps {
        let _ = writeln!(
            out,
            "\n[{}/{}] {}",
            name.number(),
            StepName::ALL.len(),
            name
        );
        if engine.resume && engine.state.run.done.iter().any(|c| c.step == name) {
            let _ = writeln!(out, "  done in the interrupted run; skipping");
            engine.report(name, StepStatus::Skipped, 0, None, None);
            continue;
        }
        if interrupt.is_set() {
            // Stopped before it began: none of the last step's changes or time are its own.
            engine.step_changes = 0;
            engine.step_started = std::time::Instant::now();
            return Err(engine.stop(name, WizardError::Interrupted(Some(name))));
        }
        let (mut step, planned) = match early.take() {
            Some((step, planned)) if name == StepName::Preflight => (step, Some(planned)),
            _ => (make_step(name), None),
        };
        if let Err(e) = engine.run_step(host, step.as_mut(), planned, out) {
            if e.exit_code() == 1 && !cfg.dry_run {
                engine.clean_up(host, name, out);
            }
            return Err(e);
        }
    }
    Ok(())
}

/// The steps that make volume-level things (sessions, maps, partitions, mounts, fstab
/// lines): a failure takes down what they made in the run, and a resume runs them again.
const VOLUME_STEPS: [StepName; 4] = [
    StepName::Sessions,
    StepName::Multipath,
    StepName::Filesystem,
    StepName::Verify,
];

/// The directory a command makes, when it is `mkdir` (its last operand).
fn made_dir(action: &crate::steps::Action) -> Option<String> {
    match action {
        crate::steps::Action::Run { cmd, .. }
            if cmd.argv.first().map(String::as_str) == Some("mkdir") =>
        {
            cmd.argv.last().filter(|a| a.starts_with('/')).cloned()
        }
        _ => None,
    }
}

/// The engine: it owns the run's state, worksheet and answers, and lends them to a step
/// for each phase (plan, apply, verify) through [`Engine::cx`].
struct Engine<'a> {
    cfg: &'a RunConfig,
    sd: StateDir,
    state: State,
    sheet: Worksheet,
    ask: Asker,
    options: Options,
    log: &'a Log,
    interrupt: &'a Interrupt,
    /// Whether this run resumes an interrupted one (steps it completed are skipped).
    resume: bool,
    /// Steps a dry run could not plan.
    unplanned: Vec<String>,
    /// What a dry run's plans show as placeholders.
    learned: Vec<String>,
    /// When the current step started (its wall time goes on the worksheet).
    step_started: std::time::Instant,
    /// Changes the current step has applied so far (reported if it stops).
    step_changes: usize,
    /// Told how each step ends.
    report: &'a dyn Report,
}

impl<'a> Engine<'a> {
    /// Read state, worksheet and the answers to use.
    fn load(
        cfg: &'a RunConfig,
        log: &'a Log,
        interrupt: &'a Interrupt,
        report: &'a dyn Report,
    ) -> Result<Self, WizardError> {
        let sd = StateDir::new(&cfg.state_dir);
        // Reading the state is harmless on a dry run; creating anything is not.
        let state: State = sd.load_state().context("reading the state")?;
        let sheet: Worksheet = sd.load_worksheet().context("reading the worksheet")?;
        let provided = match &cfg.answers {
            Some(v) => v.clone(),
            None if cfg.mode == Mode::Interactive => {
                // An interrupted interactive run resumes with the answers already given.
                let prev = cfg.state_dir.join("answers.json");
                std::fs::read(&prev)
                    .ok()
                    .and_then(|b| serde_json::from_slice(&b).ok())
                    .filter(|_| state.run.finished_at.is_none())
                    .unwrap_or(Value::Object(Default::default()))
            }
            None => Value::Object(Default::default()),
        };
        let run_digest = match &cfg.answers {
            Some(v) => digest(v),
            None => "interactive".to_string(),
        };
        let resume = !cfg.dry_run
            && !cfg.partial
            && state.run.finished_at.is_none()
            && state.run.answers_digest == run_digest
            && !state.run.done.is_empty();
        // A resumed run's completed steps count with the changes they made.
        let nothing_changed_before =
            !cfg.partial && (!resume || state.run.done.iter().all(|c| c.changes == 0));
        let mut engine = Engine {
            cfg,
            sd,
            state,
            sheet,
            ask: Asker::new(provided, cfg.mode),
            options: Options {
                dry_run: cfg.dry_run,
                force_format: cfg.force_format,
                nothing_changed_before,
            },
            log,
            interrupt,
            resume,
            unplanned: Vec::new(),
            learned: Vec::new(),
            step_started: std::time::Instant::now(),
            step_changes: 0,
            report,
        };
        // The array step records each volume's WWID; when it does not run now (`--from`
        // past it, a resume past it) the later steps take them from that record.
        let array_done = resume
            && engine
                .state
                .run
                .done
                .iter()
                .any(|c| c.step == StepName::Array);
        if array_done || !cfg.steps.contains(&StepName::Array) {
            let facts = &engine.state.facts;
            crate::steps::array::wwids_from_state(
                crate::steps::Ask::answers_mut(&mut engine.ask),
                facts,
            );
        }
        if !resume && !cfg.dry_run {
            engine.state.run = RunRecord {
                started_at: timefmt::now_rfc3339(),
                finished_at: None,
                answers_digest: run_digest,
                ..RunRecord::default()
            };
        }
        Ok(engine)
    }

    /// Say how the run starts (resumed, or new and logged).
    fn start(&self, out: &mut dyn Write) {
        if self.resume {
            let done: Vec<&str> = self
                .state
                .run
                .done
                .iter()
                .map(|c| c.step.as_str())
                .collect();
            let _ = writeln!(
                out,
                "Resuming the run started {}: already done: {}",
                self.state.run.started_at,
                done.join(", ")
            );
            self.log.entry("run resumed", &done.join(","));
        } else if !self.cfg.dry_run {
            let steps: Vec<&str> = self.cfg.steps.iter().map(|s| s.as_str()).collect();
            self.log
                .entry(&format!("run started: steps {}", steps.join(",")), "");
        }
    }

    /// The step's view of the run for one phase.
    fn cx<'b>(&'b mut self, host: &'b dyn Host, progress: &'b dyn Progress) -> Ctx<'b> {
        Ctx {
            host,
            ask: &mut self.ask,
            facts: &mut self.state.facts,
            sheet: &mut self.sheet,
            progress,
            options: &self.options,
        }
    }

    /// Save state, worksheet and answers (nothing on a dry run).
    fn save(&self) -> Result<(), WizardError> {
        if self.cfg.dry_run {
            return Ok(());
        }
        self.sd
            .save_state(&self.state)
            .context("saving state.json")?;
        self.sd
            .save_worksheet(&self.sheet)
            .context("saving worksheet.json")?;
        self.sd
            .save_answers(&self.ask.recorded())
            .context("saving answers.json")?;
        Ok(())
    }

    /// Tell the report how step `name` ended.
    fn report(
        &self,
        name: StepName,
        status: StepStatus,
        changes: usize,
        message: Option<String>,
        plan: Option<String>,
    ) {
        self.report.step(&StepReport {
            step: name,
            status,
            changes,
            seconds: self.step_started.elapsed().as_secs_f64(),
            message,
            plan,
        });
    }

    /// A step stopped the run: log it, report it, save what is known, and return `err`. A
    /// failed save is logged but never replaces the step's own error.
    fn stop(&self, name: StepName, err: WizardError) -> WizardError {
        let status = match err.exit_code() {
            3 => StepStatus::Refused,
            130 => StepStatus::Interrupted,
            _ => StepStatus::Failed,
        };
        self.report(name, status, self.step_changes, Some(err.to_string()), None);
        if !self.cfg.dry_run {
            let what = match &err {
                WizardError::Interrupted(_) => "interrupted".to_string(),
                e => format!("failed: {e}"),
            };
            self.log.entry(&format!("step {name}: {what}"), "");
        }
        let saved = self.save();
        if let Err(save) = &saved {
            self.log
                .entry(&format!("saving the state failed: {save}"), "");
        }
        err.and_saved(saved)
    }

    /// Before the run's first volume-level change (plans change nothing): read what is
    /// already there, so that a failure takes down only what the run made. Kept through a resume; nothing on a dry
    /// run. When the host cannot be read, the log says so and a failure cleans up nothing.
    fn note_before(&mut self, host: &dyn Host) {
        if self.cfg.dry_run || self.state.run.before.is_some() {
            return;
        }
        match crate::steps::detach::rollback::Before::observe(host, timefmt::now_rfc3339()) {
            Ok(b) => {
                self.state.run.before = Some(b);
                if let Err(e) = self.save() {
                    self.log.entry(
                        &format!("saving what was there before the run failed: {e}"),
                        "",
                    );
                }
            }
            Err(e) => self.log.entry(
                &format!("reading what is there before the volume steps failed: {e}"),
                "a failure will clean up nothing",
            ),
        }
    }

    /// After step `failed` failed: take down what the run made at volume level (what is
    /// new since [`Engine::note_before`]), in the detach order; say what was removed and
    /// what could not be; record it in the state and the log. The steps that made it are
    /// no longer done, so `run` again redoes them.
    fn clean_up(&mut self, host: &dyn Host, failed: StepName, out: &mut dyn Write) {
        use crate::steps::detach::{self, rollback};
        let Some(before) = self.state.run.before.clone() else {
            return;
        };
        let mut removed = Vec::new();
        let mut left = Vec::new();
        let mut stopped = false;
        let decided = rollback::observe(host, &before, &self.state.facts.volumes).and_then(
            |(targets, obs, nodes)| {
                rollback::decide(&before, &targets, &obs, &nodes, &self.state.run.made_dirs)
            },
        );
        let plan = match decided {
            Ok(plan) => plan,
            Err(e) => {
                stopped = true;
                left.push(format!("nothing was removed: {e}"));
                detach::Plan::default()
            }
        };
        if !plan.acts.is_empty() {
            match detach::apply(host, &plan, detach::apply::Waits::default()) {
                Ok(o) => {
                    removed = o.done;
                    left = o.left;
                }
                Err(s) => {
                    stopped = true;
                    let n = s.outcome.done.len();
                    removed = s.outcome.done;
                    left = s.outcome.left;
                    left.push(format!("stopped: {}", s.error));
                    left.extend(
                        plan.acts
                            .iter()
                            .skip(n)
                            .map(|a| format!("not attempted: {a}")),
                    );
                }
            }
        }
        if removed.is_empty() && left.is_empty() {
            let _ = writeln!(
                out,
                "\nNothing to clean up after the failure: the run had made no session, map, \
                 mount or fstab line."
            );
        } else {
            let _ = writeln!(out);
        }
        for r in &removed {
            let _ = writeln!(out, "cleaned up after the failure: {r}");
        }
        for l in &left {
            let _ = writeln!(out, "could not remove: {l}");
        }
        self.log.entry(
            &format!(
                "cleanup after step {failed} failed: {} removed, {} left",
                removed.len(),
                left.len()
            ),
            &removed
                .iter()
                .map(|r| format!("removed: {r}"))
                .chain(left.iter().map(|l| format!("left: {l}")))
                .collect::<Vec<_>>()
                .join("\n"),
        );
        if !removed.is_empty() {
            // The volume-level steps are to be done again; what they recorded of the LUNs
            // taken down is no longer true of the host.
            self.state
                .run
                .done
                .retain(|c| !VOLUME_STEPS.contains(&c.step));
            if !stopped {
                for w in &plan.wwids {
                    // A filesystem or partition the run made stays on the LUN (the cleanup
                    // never writes to a LUN), and so does its record: `run` again then
                    // recognises its own work instead of refusing it as data.
                    let made_on_lun = self.state.facts.volumes.iter().any(|v| {
                        v.wwid.as_deref().is_some_and(|x| x.eq_ignore_ascii_case(w))
                            && (v.fs_uuid.is_some() || v.partition.is_some())
                    });
                    if made_on_lun {
                        let _ = writeln!(
                            out,
                            "note: what the run made on LUN {w} (partition, filesystem) stays on \
                             it, and is recognised as the wizard's own by the next run"
                        );
                    } else {
                        self.state.facts.forget_volume(w);
                    }
                }
                // The sessions left are those of before (the sessions step probes again).
                self.state.facts.sessions.retain(|s| {
                    before.sessions.iter().any(|k| {
                        k.target == s.target
                            && k.portal == s.portal
                            && k.iface.as_deref().is_none_or(|i| i == s.iface)
                    })
                });
            }
            self.state
                .run
                .made_dirs
                .retain(|d| host.exists(Path::new(d)));
        }
        self.state.run.cleanup = Some(crate::state::CleanupRecord {
            at: timefmt::now_rfc3339(),
            step: failed.to_string(),
            removed,
            left,
        });
        if let Err(e) = self.save() {
            self.log
                .entry(&format!("saving the cleanup's record failed: {e}"), "");
        }
    }

    /// Plan (unless `planned` already holds the plan), show, confirm, apply and verify one
    /// step.
    fn run_step(
        &mut self,
        host: &dyn Host,
        step: &mut dyn crate::steps::Step,
        planned: Option<Result<crate::steps::Plan, StepError>>,
        out: &mut dyn Write,
    ) -> Result<(), WizardError> {
        let name = step.name();
        self.step_started = std::time::Instant::now();
        self.step_changes = 0;
        let planned = match planned {
            Some(p) => p,
            None if name == StepName::Filesystem && self.cfg.mode == Mode::Interactive => {
                // A mount point another volume holds is refused where it is typed.
                let read = |p: &str| host.read(Path::new(p)).ok().flatten();
                self.ask.refuse_mount_points(taken_mount_points(
                    read("/proc/self/mountinfo").as_deref(),
                    read("/etc/fstab").as_deref(),
                    &self.state.facts.attached_volumes(),
                ));
                let planned = self.probe(host, step);
                self.ask.refuse_mount_points(Vec::new());
                planned
            }
            None => self.probe(host, step),
        };
        let Some(plan) = self.plan_step(name, planned, out)? else {
            self.options.nothing_changed_before = false;
            return Ok(());
        };
        // The steps after this one see whether it (or any before it) had a change to make.
        self.options.nothing_changed_before &= plan.is_empty();
        let text = plan.render();
        let _ = write!(out, "{text}");
        if self.cfg.dry_run {
            self.learned.extend(plan.learned.iter().cloned());
            self.report(
                name,
                StepStatus::Planned,
                plan.actions.len(),
                None,
                Some(text),
            );
            return Ok(());
        }
        // The step's questions are answered: the worksheet carries the answers from now on,
        // and is saved before the confirmation, so `worksheet` shows the sheet being planned.
        self.sheet
            .fill_answers(crate::steps::Ask::answers(&self.ask));
        // Best effort, like the checkpoints during apply: the step's own outcome decides the
        // run, and a save that keeps failing is reported by the step's own save.
        if let Err(e) = self.save() {
            self.log.entry(
                &format!("saving the answers before step {name} failed: {e}"),
                "",
            );
        }
        let mut changed = Vec::new();
        if !plan.is_empty() {
            if self.cfg.mode == Mode::Interactive
                && !matches!(confirm_apply(name, plan.actions.len()), Ok(true))
            {
                // Declined, or Ctrl-C at the prompt: keep what is known, change nothing.
                let _ = writeln!(out);
                return Err(self.stop(name, WizardError::Interrupted(Some(name))));
            }
            // What is there before the run's first volume-level change: a run that changes
            // nothing at volume level (a rerun) never pays for this look.
            if VOLUME_STEPS.contains(&name) {
                self.note_before(host);
            }
            self.apply_step(host, step, &plan, &mut changed)?;
        }
        self.verify_step(host, step, changed, out)
    }

    /// Probe and ask: the step's plan, with its spinner shown while it probes.
    fn probe(
        &mut self,
        host: &dyn Host,
        step: &mut dyn crate::steps::Step,
    ) -> Result<crate::steps::Plan, StepError> {
        let progress = TermProgress::new(step.name().as_str());
        progress.message("probing");
        let planned = step.plan(&mut self.cx(host, &progress));
        progress.finish();
        planned
    }

    /// Take a step's plan; `None` when a dry run could not plan it (said, and counted).
    fn plan_step(
        &mut self,
        name: StepName,
        planned: Result<crate::steps::Plan, StepError>,
        out: &mut dyn Write,
    ) -> Result<Option<crate::steps::Plan>, WizardError> {
        let dry_run = self.cfg.dry_run;
        match planned {
            Ok(p) => {
                if !dry_run {
                    self.log.entry(
                        &format!("step {name}: planned {} changes", p.actions.len()),
                        "",
                    );
                }
                Ok(Some(p))
            }
            Err(e)
                if dry_run && !matches!(e, StepError::Ask(crate::steps::AskError::Interrupted)) =>
            {
                let _ = writeln!(out, "  cannot plan: {e}");
                self.report(name, StepStatus::Unplanned, 0, Some(e.to_string()), None);
                self.unplanned.push(name.to_string());
                Ok(None)
            }
            Err(e) => Err(self.stop(name, WizardError::from_step(name, e, Vec::new()))),
        }
    }

    /// Apply a plan, saving state after every action.
    fn apply_step(
        &mut self,
        host: &dyn Host,
        step: &mut dyn crate::steps::Step,
        plan: &crate::steps::Plan,
        changed: &mut Vec<String>,
    ) -> Result<(), WizardError> {
        let name = step.name();
        let progress = TermProgress::new(name.as_str());
        let run_record = self.state.run.clone();
        let detached = self.state.detached.clone();
        let sd = StateDir::new(&self.cfg.state_dir);
        let interrupt = self.interrupt;
        let mut checkpoint = |facts: &crate::steps::Facts, sheet: &Worksheet| {
            let snapshot = State {
                version: 1,
                run: run_record.clone(),
                facts: facts.clone(),
                detached: detached.clone(),
            };
            // Best effort: the step's own result decides success, not this save.
            let _ = sd.save_state(&snapshot);
            let _ = sd.save_worksheet(sheet);
        };
        let applied = apply(
            step,
            &mut self.cx(host, &progress),
            plan,
            interrupt,
            changed,
            &mut checkpoint,
        );
        self.step_changes = changed.len();
        // The actions applied are the first `changed.len()`: a directory one of them made
        // is the run's own, for a cleanup after a failure to remove.
        for dir in plan.actions.iter().take(changed.len()).filter_map(made_dir) {
            if !self.state.run.made_dirs.contains(&dir) {
                self.state.run.made_dirs.push(dir);
            }
        }
        progress.finish();
        applied.map_err(|e| {
            let err = WizardError::from_step(name, e, changed.clone());
            self.stop(name, err)
        })
    }

    /// Verify a step against a fresh probe, record it as completed, and say so.
    fn verify_step(
        &mut self,
        host: &dyn Host,
        step: &mut dyn crate::steps::Step,
        changed: Vec<String>,
        out: &mut dyn Write,
    ) -> Result<(), WizardError> {
        let name = step.name();
        let progress = TermProgress::new(name.as_str());
        progress.message("verifying");
        let verified = step.verify(&mut self.cx(host, &progress));
        progress.finish();
        if let Err(e) = verified {
            return Err(self.stop(name, WizardError::from_step(name, e, changed)));
        }
        let at = timefmt::now_rfc3339();
        self.state.run.done.retain(|c| c.step != name);
        self.state.run.done.push(Completed {
            step: name,
            at: at.clone(),
            changes: changed.len(),
        });
        let took = self.step_started.elapsed().as_secs_f64();
        self.sheet.step_timed(name.as_str(), &at, Some(took));
        self.save()?;
        self.report(name, StepStatus::Done, changed.len(), None, None);
        self.log.entry(
            &format!(
                "step {name}: done, {} changes, in {took:.3}s",
                changed.len()
            ),
            "",
        );
        let _ = writeln!(
            out,
            "  done{} in {took:.1} s",
            if changed.is_empty() {
                String::new()
            } else {
                format!(
                    " ({} change{})",
                    changed.len(),
                    if changed.len() == 1 { "" } else { "s" }
                )
            }
        );
        Ok(())
    }

    /// On a dry run or a run that stopped: write `--record-answers` when the answers are
    /// complete (they replay as they are), else say why nothing was written.
    fn record_if_complete(&self, out: &mut dyn Write) -> Result<(), WizardError> {
        let Some(path) = &self.cfg.record_answers else {
            return Ok(());
        };
        let recorded = self.ask.recorded();
        let problems = crate::answers::validate(&recorded, &|k| std::env::var(k).ok());
        if problems.is_empty() {
            return record_answers(path, &recorded, out);
        }
        let _ = writeln!(
            out,
            "Answers not recorded in {}: the run stopped before every question was answered \
             ({} to go, such as {}); {}.",
            path.display(),
            problems.len(),
            problems
                .iter()
                .take(3)
                .map(|p| p.path.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            if self.cfg.dry_run {
                "a dry run keeps nothing else"
            } else {
                "the state directory keeps them for `run` to resume"
            }
        );
        Ok(())
    }

    /// End the run: the dry run's summary, or the finished state and recorded answers.
    fn finish(mut self, out: &mut dyn Write) -> Result<(), WizardError> {
        if self.cfg.dry_run {
            if !self.learned.is_empty() {
                let mut seen = std::collections::BTreeSet::new();
                self.learned.retain(|w| seen.insert(w.clone()));
                let _ = writeln!(
                    out,
                    "\nValues shown as <...> are learned by the real run, once the host is \
                     prepared (tools preflight installs, sessions, maps): {}.",
                    self.learned.join("; ")
                );
            }
            let _ = writeln!(out, "\nDry run: nothing was changed.");
            self.record_if_complete(out)?;
            return if self.unplanned.is_empty() {
                Ok(())
            } else {
                Err(WizardError::Unplanned(self.unplanned))
            };
        }
        if !self.cfg.partial {
            self.state.run.finished_at = Some(timefmt::now_rfc3339());
        }
        self.save()?;
        self.log.entry("run finished", "");
        if let Some(path) = &self.cfg.record_answers {
            record_answers(path, &self.ask.recorded(), out)?;
        }
        if self.cfg.timings {
            timings(self.log, out);
        }
        let _ = writeln!(
            out,
            "\nAll steps done. The worksheet: iser-wizard worksheet --state-dir {}",
            self.cfg.state_dir.display()
        );
        Ok(())
    }
}

/// `run --timings`: the slowest commands of the run, and the time spent in commands.
fn timings(log: &Log, out: &mut dyn Write) {
    let (slow, total, count) = log.slowest(10);
    let _ = writeln!(
        out,
        "\nTimings: {count} commands took {total:.1} s in all; the slowest:"
    );
    for (secs, cmd) in slow {
        let _ = writeln!(out, "  {secs:>7.2} s  {cmd}");
    }
}

/// Write the answers given to `path`, then say what does not replay as it is and what
/// belongs to this host alone.
fn record_answers(path: &Path, recorded: &Value, out: &mut dyn Write) -> Result<(), WizardError> {
    let mut text = serde_json::to_vec_pretty(recorded).context("encoding answers")?;
    text.push(b'\n');
    crate::state::write_private(path, &text)
        .with_context(|| format!("writing {}", path.display()))?;
    let _ = writeln!(out, "Answers recorded in {}", path.display());
    let problems = crate::answers::validate(recorded, &|k| std::env::var(k).ok());
    if !problems.is_empty() {
        let _ = writeln!(
            out,
            "note: these answers do not replay as they are (this run did not ask every \
             question); complete them before `run --answers`:"
        );
        for p in problems {
            let _ = writeln!(out, "  - {p}");
        }
    }
    let mine = crate::answers::host_specific(recorded);
    if !mine.is_empty() {
        let _ = writeln!(
            out,
            "Before replaying them on another host, change what belongs to this one:"
        );
        for m in mine {
            let _ = writeln!(out, "  - {m}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::steps::fake::FakeHost;
    use crate::steps::{Action, Cmd, CmdOutput, HostError, Plan, Step};
    use std::cell::Cell;
    use std::path::Path;
    use std::rc::Rc;

    /// A step that wants /etc/demo.conf to say "wanted" and restarts a service after.
    struct Conf {
        plans: Rc<Cell<usize>>,
    }

    impl Step for Conf {
        fn name(&self) -> StepName {
            StepName::Iscsi
        }
        fn plan(&mut self, cx: &mut Ctx<'_>) -> Result<Plan, StepError> {
            self.plans.set(self.plans.get() + 1);
            let mut p = Plan::new(StepName::Iscsi);
            let path = Path::new("/etc/demo.conf");
            let old = cx.host.read(path)?;
            if old.as_deref() != Some("wanted\n") {
                p.push(Action::write(path, old, "wanted\n".into(), 0o644, "demo"));
                p.push(Action::run(
                    Cmd::change(["systemctl", "restart", "demo"]),
                    "reload",
                ));
            }
            Ok(p)
        }
        fn verify(&mut self, cx: &mut Ctx<'_>) -> Result<(), StepError> {
            cx.sheet.target_iqn = Some("iqn.2002-09.com.lab:array".into());
            match cx.host.read(Path::new("/etc/demo.conf"))?.as_deref() {
                Some("wanted\n") => Ok(()),
                other => Err(StepError::Failed(format!("demo.conf is {other:?}"))),
            }
        }
    }

    /// A step that is interrupted the first `fail` times it applies.
    struct Flaky {
        fail: Rc<Cell<usize>>,
    }

    impl Step for Flaky {
        fn name(&self) -> StepName {
            StepName::Sessions
        }
        fn plan(&mut self, _cx: &mut Ctx<'_>) -> Result<Plan, StepError> {
            let mut p = Plan::new(StepName::Sessions);
            p.push(Action::task("login", "log in"));
            Ok(p)
        }
        fn task(&mut self, _cx: &mut Ctx<'_>, _id: &str) -> Result<(), StepError> {
            if self.fail.get() > 0 {
                self.fail.set(self.fail.get() - 1);
                return Err(StepError::Host(HostError::Interrupted));
            }
            Ok(())
        }
        fn verify(&mut self, _cx: &mut Ctx<'_>) -> Result<(), StepError> {
            Ok(())
        }
    }

    fn cfg(state: &Path, dry_run: bool) -> RunConfig {
        RunConfig {
            root: PathBuf::from("/"),
            state_dir: state.to_path_buf(),
            steps: vec![StepName::Iscsi, StepName::Sessions],
            partial: false,
            dry_run,
            force_format: false,
            answers: Some(serde_json::json!({"version": 1})),
            mode: Mode::Unattended,
            record_answers: None,
            timings: false,
        }
    }

    fn go(
        host: &FakeHost,
        state: &Path,
        dry_run: bool,
        plans: &Rc<Cell<usize>>,
        fail: &Rc<Cell<usize>>,
    ) -> (Result<(), WizardError>, String) {
        let mut out = Vec::new();
        let (p, f) = (plans.clone(), fail.clone());
        let mut make = move |n: StepName| -> Box<dyn Step> {
            match n {
                StepName::Iscsi => Box::new(Conf { plans: p.clone() }),
                _ => Box::new(Flaky { fail: f.clone() }),
            }
        };
        let r = execute(
            &cfg(state, dry_run),
            host,
            &Log::disabled(),
            &Interrupt::new(),
            &mut make,
            &mut out,
        );
        (r, String::from_utf8(out).unwrap())
    }

    #[test]
    fn recorded_answers_are_written_whole_and_name_what_belongs_to_this_host() {
        let state = tempfile::tempdir().unwrap();
        let rec = state.path().join("host1.json");
        let answers: Value =
            serde_json::from_str(include_str!("../templates/answers.json")).unwrap();
        let mut c = cfg(state.path(), false);
        c.steps = vec![StepName::Sessions];
        c.answers = Some(answers.clone());
        c.record_answers = Some(rec.clone());
        let h = FakeHost::new().only_programs(&[]);
        let fail = Rc::new(Cell::new(0));
        let mut make = |_: StepName| -> Box<dyn Step> { Box::new(Flaky { fail: fail.clone() }) };
        let mut out = Vec::new();
        execute(
            &c,
            &h,
            &Log::disabled(),
            &Interrupt::new(),
            &mut make,
            &mut out,
        )
        .unwrap();
        let out = String::from_utf8(out).unwrap();
        let written: Value = serde_json::from_slice(&std::fs::read(&rec).unwrap()).unwrap();
        assert_eq!(written, answers);
        assert!(!out.contains("do not replay as they are"), "{out}");
        assert!(
            out.contains(
                "change what belongs to this one:\n  - ports[0].address (192.168.130.10/24)\n"
            ),
            "{out}"
        );
        assert!(out.contains("  - host.mapping_host_name (db01)\n"), "{out}");
    }

    #[test]
    fn a_second_run_changes_nothing() {
        let state = tempfile::tempdir().unwrap();
        let (plans, fail) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
        let h = FakeHost::new().only_programs(&[]);
        h.put_file("/etc/demo.conf", "old\n");
        h.expect(&["systemctl", "restart", "demo"], CmdOutput::ok(""));
        let (r, out) = go(&h, state.path(), false, &plans, &fail);
        r.unwrap();
        assert!(out.contains("done (2 changes)"), "{out}");
        h.finish();
        assert_eq!(
            std::fs::read_to_string(h.path("/etc/demo.conf")).unwrap(),
            "wanted\n"
        );

        // Same answers again: the probe matches, the plan is empty, no command changes the host.
        let h2 = FakeHost::with_root(h.root(), None).only_programs(&[]);
        let (r, out) = go(&h2, state.path(), false, &plans, &fail);
        r.unwrap();
        assert!(out.contains("nothing to change"), "{out}");
        assert!(h2.changes().is_empty(), "{:?}", h2.changes());
        h2.finish();
        let s = StateDir::new(state.path()).load_state().unwrap();
        assert!(s.run.finished_at.is_some());
        let sheet = StateDir::new(state.path()).load_worksheet().unwrap();
        assert_eq!(sheet.steps.len(), 2);
        assert_eq!(
            sheet.target_iqn.as_deref(),
            Some("iqn.2002-09.com.lab:array")
        );
    }

    #[test]
    fn an_interrupted_run_saves_state_and_resumes_at_the_interrupted_step() {
        let state = tempfile::tempdir().unwrap();
        let (plans, fail) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(1)));
        let h = FakeHost::new().only_programs(&[]);
        h.expect(&["systemctl", "restart", "demo"], CmdOutput::ok(""));
        let (r, _) = go(&h, state.path(), false, &plans, &fail);
        let e = r.unwrap_err();
        assert_eq!(e.exit_code(), 130, "{e}");
        assert!(e.to_string().contains("at step sessions"), "{e}");
        h.finish();
        let s = StateDir::new(state.path()).load_state().unwrap();
        assert_eq!(
            s.run.done.iter().map(|c| c.step).collect::<Vec<_>>(),
            vec![StepName::Iscsi]
        );
        assert!(s.run.finished_at.is_none());
        assert_eq!(plans.get(), 1);

        let h2 = FakeHost::with_root(h.root(), None).only_programs(&[]);
        let (r, out) = go(&h2, state.path(), false, &plans, &fail);
        r.unwrap();
        assert!(out.contains("Resuming the run"), "{out}");
        assert!(
            out.contains("done in the interrupted run; skipping"),
            "{out}"
        );
        assert_eq!(plans.get(), 1, "the done step was not planned again");
        h2.finish();
        let s = StateDir::new(state.path()).load_state().unwrap();
        assert!(s.run.finished_at.is_some());
    }

    #[test]
    fn a_dry_run_writes_nothing_anywhere() {
        let state = tempfile::tempdir().unwrap();
        let state_dir = state.path().join("never");
        let (plans, fail) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
        let h = FakeHost::new().only_programs(&[]);
        h.put_file("/etc/demo.conf", "old\n");
        let (r, out) = go(&h, &state_dir, true, &plans, &fail);
        r.unwrap();
        assert!(out.contains("+wanted"), "{out}");
        assert!(out.contains("Dry run: nothing was changed."), "{out}");
        assert!(!state_dir.exists());
        assert_eq!(
            std::fs::read_to_string(h.path("/etc/demo.conf")).unwrap(),
            "old\n"
        );
        assert!(h.ran().is_empty());
        h.finish();
    }

    #[test]
    fn a_failed_command_names_the_step_the_command_and_what_was_changed() {
        let state = tempfile::tempdir().unwrap();
        let (plans, fail) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
        let h = FakeHost::new().only_programs(&[]);
        h.expect(
            &["systemctl", "restart", "demo"],
            CmdOutput::status(1, "", "Job for demo.service failed.\n"),
        );
        let (r, _) = go(&h, state.path(), false, &plans, &fail);
        let e = r.unwrap_err();
        assert_eq!(e.exit_code(), 1);
        let text = e.to_string();
        assert!(
            text.starts_with("step iscsi failed: `systemctl restart demo` failed (exit 1)"),
            "{text}"
        );
        assert!(text.contains("Job for demo.service failed."), "{text}");
        assert!(
            text.contains("already changed by this step:\n    - create /etc/demo.conf"),
            "{text}"
        );
        h.finish();
    }

    #[test]
    fn a_failed_state_save_never_replaces_the_steps_own_error() {
        let state = tempfile::tempdir().unwrap();
        // answers.json cannot be written: a directory stands in its place.
        std::fs::create_dir(state.path().join("answers.json")).unwrap();
        let (plans, fail) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
        let h = FakeHost::new().only_programs(&[]);
        h.expect(
            &["systemctl", "restart", "demo"],
            CmdOutput::status(1, "", "Job for demo.service failed.\n"),
        );
        let (r, _) = go(&h, state.path(), false, &plans, &fail);
        let text = r.unwrap_err().to_string();
        assert!(
            text.starts_with("step iscsi failed: `systemctl restart demo` failed (exit 1)"),
            "{text}"
        );
        assert!(text.contains("the state could not be saved"), "{text}");
    }

    /// A preflight that finds what stops a real run, and notes it as the real one does.
    struct Blocked {
        plans: Rc<Cell<usize>>,
    }

    impl Step for Blocked {
        fn name(&self) -> StepName {
            StepName::Preflight
        }
        fn plan(&mut self, _cx: &mut Ctx<'_>) -> Result<Plan, StepError> {
            self.plans.set(self.plans.get() + 1);
            let mut p = Plan::new(StepName::Preflight);
            p.note("missing programs: iscsiadm (iscsi)");
            p.note(format!("{WOULD_STOP}no RDMA device: load the HCA driver"));
            Ok(p)
        }
        fn verify(&mut self, _cx: &mut Ctx<'_>) -> Result<(), StepError> {
            Ok(())
        }
    }

    fn template() -> Value {
        serde_json::from_str(include_str!("../templates/answers.json")).unwrap()
    }

    /// Run `c` on `h` with the demo steps (preflight blocked, iscsi, sessions).
    fn go_with(c: &RunConfig, h: &FakeHost) -> (Result<(), WizardError>, String, usize) {
        let plans = Rc::new(Cell::new(0));
        let p = plans.clone();
        let mut make = move |n: StepName| -> Box<dyn Step> {
            match n {
                StepName::Preflight => Box::new(Blocked { plans: p.clone() }),
                StepName::Iscsi => Box::new(Conf {
                    plans: Rc::new(Cell::new(0)),
                }),
                _ => Box::new(Flaky {
                    fail: Rc::new(Cell::new(0)),
                }),
            }
        };
        let mut out = Vec::new();
        let r = execute(
            c,
            h,
            &Log::disabled(),
            &Interrupt::new(),
            &mut make,
            &mut out,
        );
        (r, String::from_utf8(out).unwrap(), plans.get())
    }

    #[test]
    fn a_dry_run_names_what_a_real_run_stops_on_before_any_step_and_plans_preflight_once() {
        let state = tempfile::tempdir().unwrap();
        let mut c = cfg(&state.path().join("never"), true);
        c.steps = vec![StepName::Preflight, StepName::Iscsi];
        let h = FakeHost::new().only_programs(&[]);
        let (r, out, plans) = go_with(&c, &h);
        r.unwrap();
        let stops = out
            .find("A real run would stop at preflight on this host")
            .unwrap_or_else(|| panic!("{out}"));
        let first_step = out.find("[1/9] preflight").unwrap();
        assert!(stops < first_step, "{out}");
        assert!(
            out[stops..first_step].contains("  - no RDMA device: load the HCA driver\n"),
            "{out}"
        );
        // The plan made for the first screen is the one shown at step 1.
        assert_eq!(plans, 1);
        assert!(out[first_step..].contains("would stop here"), "{out}");
    }

    #[test]
    fn a_real_run_plans_preflight_in_its_turn_and_has_no_blockers_section() {
        // (The real preflight refuses to plan on a real run that would stop: its error is
        // the run's; the section is a dry run's.)
        let state = tempfile::tempdir().unwrap();
        let mut c = cfg(state.path(), false);
        c.steps = vec![StepName::Preflight, StepName::Sessions];
        let h = FakeHost::new().only_programs(&[]);
        let (r, out, plans) = go_with(&c, &h);
        r.unwrap();
        assert!(!out.contains("A real run would stop"), "{out}");
        assert_eq!(plans, 1);
    }

    #[test]
    fn a_dry_run_records_complete_answers_and_says_where() {
        let state = tempfile::tempdir().unwrap();
        let rec = state.path().join("rec.json");
        let mut c = cfg(&state.path().join("never"), true);
        c.answers = Some(template());
        c.record_answers = Some(rec.clone());
        let h = FakeHost::new().only_programs(&[]);
        let (r, out, _) = go_with(&c, &h);
        r.unwrap();
        assert!(
            out.contains(&format!("Answers recorded in {}", rec.display())),
            "{out}"
        );
        let written: Value = serde_json::from_slice(&std::fs::read(&rec).unwrap()).unwrap();
        assert_eq!(written, template());
        assert!(!state.path().join("never").exists());
    }

    #[test]
    fn a_failed_run_records_complete_answers_and_keeps_its_own_error() {
        let state = tempfile::tempdir().unwrap();
        let rec = state.path().join("rec.json");
        let mut c = cfg(state.path(), false);
        c.answers = Some(template());
        c.record_answers = Some(rec.clone());
        c.steps = vec![StepName::Iscsi];
        let h = FakeHost::new().only_programs(&[]);
        h.expect(
            &["systemctl", "restart", "demo"],
            CmdOutput::status(1, "", "Job for demo.service failed.\n"),
        );
        let (r, out, _) = go_with(&c, &h);
        let e = r.unwrap_err();
        assert!(e.to_string().starts_with("step iscsi failed"), "{e}");
        assert!(out.contains("Answers recorded in"), "{out}");
        assert!(rec.exists());
    }

    #[test]
    fn incomplete_answers_are_not_recorded_and_the_missing_keys_are_named() {
        let state = tempfile::tempdir().unwrap();
        let rec = state.path().join("rec.json");
        let mut c = cfg(&state.path().join("never"), true);
        c.record_answers = Some(rec.clone());
        let h = FakeHost::new().only_programs(&[]);
        let (r, out, _) = go_with(&c, &h);
        r.unwrap();
        assert!(!rec.exists());
        assert!(out.contains("Answers not recorded in"), "{out}");
        assert!(out.contains("such as host."), "{out}");
        assert!(out.contains("a dry run keeps nothing else"), "{out}");
    }

    #[test]
    fn the_worksheet_carries_the_answers_before_the_first_change() {
        let state = tempfile::tempdir().unwrap();
        let mut c = cfg(state.path(), false);
        c.answers = Some(template());
        c.steps = vec![StepName::Iscsi];
        let h = FakeHost::new().only_programs(&[]);
        // The first change fails: what was saved is what the questions gave.
        h.expect(
            &["systemctl", "restart", "demo"],
            CmdOutput::status(1, "", "failed\n"),
        );
        let (r, _, _) = go_with(&c, &h);
        r.unwrap_err();
        let sheet = StateDir::new(state.path()).load_worksheet().unwrap();
        let t = template();
        assert_eq!(
            sheet.target_iqn.as_deref(),
            t["target"]["iqn"].as_str(),
            "{sheet:?}"
        );
        assert_eq!(
            sheet.host.mapping_host_name.as_deref(),
            t["host"]["mapping_host_name"].as_str()
        );
        assert_eq!(
            sheet.subnets[0].controller_a.as_deref(),
            t["target"]["portals"][0]["address"].as_str()
        );
        assert!(sheet.steps.is_empty(), "no step is recorded as done");
    }

    #[test]
    fn mount_points_other_volumes_hold_are_read_from_mountinfo_and_fstab_but_not_ours() {
        let mountinfo = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
40 22 8:17 / /mnt/old\\040disk rw,relatime shared:9 - xfs /dev/sdb1 rw
41 22 253:3 / /mnt/data rw,relatime shared:10 - ext4 /dev/mapper/mpatha-part1 rw
";
        let fstab = "\
# <file system> <mount point> <type>
UUID=0a1b /srv/backup ext4 defaults 0 2
UUID=ours /mnt/data ext4 defaults,_netdev,nofail 0 2
/swapfile none swap sw 0 0
";
        let ours = crate::steps::facts::VolumeFact {
            fs_uuid: Some("ours".into()),
            fs_device: Some("/dev/mapper/mpatha-part1".into()),
            ..Default::default()
        };
        let got: Vec<(String, String, bool)> =
            taken_mount_points(Some(mountinfo), Some(fstab), &[&ours])
                .into_iter()
                .map(|t| (t.mount_point, t.source, t.mounted))
                .collect();
        assert_eq!(
            got,
            vec![
                ("/".to_string(), "/dev/sda1".to_string(), true),
                ("/mnt/old disk".to_string(), "/dev/sdb1".to_string(), true),
                ("/srv/backup".to_string(), "UUID=0a1b".to_string(), false),
            ]
        );
        assert!(taken_mount_points(None, None, &[&ours]).is_empty());
    }

    #[test]
    fn the_log_records_each_steps_plan_outcome_failure_and_interruption() {
        let state = tempfile::tempdir().unwrap();
        let log_path = state.path().join("log");
        let log = Log::open(&log_path).unwrap();
        let h = FakeHost::new().only_programs(&[]);
        h.expect(
            &["systemctl", "restart", "demo"],
            CmdOutput::status(1, "", "Job for demo.service failed.\n"),
        );
        let (plans, fail) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
        let (p, f) = (plans.clone(), fail.clone());
        let mut make = move |n: StepName| -> Box<dyn Step> {
            match n {
                StepName::Iscsi => Box::new(Conf { plans: p.clone() }),
                _ => Box::new(Flaky { fail: f.clone() }),
            }
        };
        let cfg = cfg(state.path(), false);
        let r = execute(
            &cfg,
            &h,
            &log,
            &Interrupt::new(),
            &mut make,
            &mut Vec::new(),
        );
        assert!(r.is_err());
        let text = std::fs::read_to_string(&log_path).unwrap();
        assert!(text.contains("run started: steps iscsi,sessions"), "{text}");
        assert!(text.contains("step iscsi: planned 2 changes"), "{text}");
        assert!(
            text.contains("step iscsi: failed: step iscsi failed"),
            "{text}"
        );
        // Interrupted at the next step: the log says so too.
        let h = FakeHost::new().only_programs(&[]);
        h.put_file("/etc/demo.conf", "wanted\n");
        fail.set(1);
        let interrupt = Interrupt::new();
        let r = execute(&cfg, &h, &log, &interrupt, &mut make, &mut Vec::new());
        assert!(matches!(r, Err(WizardError::Interrupted(_))), "{r:?}");
        let text = std::fs::read_to_string(&log_path).unwrap();
        assert!(text.contains("step iscsi: done, 0 changes"), "{text}");
        assert!(text.contains("step sessions: interrupted"), "{text}");
    }

    #[test]
    fn the_json_report_gets_each_step_as_it_ends_through_a_failure_and_a_resume() {
        let state = tempfile::tempdir().unwrap();
        let h = FakeHost::new().only_programs(&[]);
        h.put_file("/etc/demo.conf", "old\n");
        let (plans, fail) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(1)));
        let (p, f) = (plans.clone(), fail.clone());
        let mut make = move |n: StepName| -> Box<dyn Step> {
            match n {
                StepName::Iscsi => Box::new(Conf { plans: p.clone() }),
                _ => Box::new(Flaky { fail: f.clone() }),
            }
        };
        let cfg = cfg(state.path(), false);
        let go = |make: &mut dyn FnMut(StepName) -> Box<dyn Step>| {
            let mut lines = Vec::new();
            let json = crate::output::JsonLines::new(&mut lines);
            let r = execute_reporting(
                &cfg,
                &h,
                &Log::disabled(),
                &Interrupt::new(),
                make,
                &mut Vec::new(),
                &json,
            );
            let code = r.as_ref().err().map_or(0, WizardError::exit_code);
            json.summary(code, None, state.path(), false);
            let v: Vec<Value> = String::from_utf8(lines)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            let short: Vec<(String, String, u64)> = v
                .iter()
                .filter(|l| l["type"] == "step")
                .map(|l| {
                    (
                        l["step"].as_str().unwrap().to_string(),
                        l["status"].as_str().unwrap().to_string(),
                        l["changes"].as_u64().unwrap(),
                    )
                })
                .collect();
            let failed = v
                .iter()
                .find_map(|l| l["message"].as_str().map(String::from));
            (short, v.last().unwrap().clone(), failed)
        };
        let s = |a: &str, b: &str, n: u64| (a.to_string(), b.to_string(), n);
        // The restart fails after the file is written: one change made, and the message.
        h.expect(
            &["systemctl", "restart", "demo"],
            CmdOutput::status(1, "", "Job for demo.service failed.\n"),
        );
        let (steps, summary, failed) = go(&mut make);
        assert_eq!(steps, [s("iscsi", "failed", 1)]);
        let failed = failed.unwrap();
        assert!(failed.starts_with("step iscsi failed"), "{failed}");
        assert!(failed.contains("Job for demo.service failed."), "{failed}");
        assert_eq!(summary["exit"], 1);
        assert_eq!(summary["changed"], true);
        // Again: iscsi has nothing left to change; sessions is interrupted while applying.
        let (steps, summary, _) = go(&mut make);
        assert_eq!(
            steps,
            [s("iscsi", "done", 0), s("sessions", "interrupted", 0)]
        );
        assert_eq!(summary["exit"], 130);
        assert_eq!(summary["changed"], false);
        // The resume skips iscsi, and sessions applies its one change.
        let (steps, summary, _) = go(&mut make);
        assert_eq!(steps, [s("iscsi", "skipped", 0), s("sessions", "done", 1)]);
        assert_eq!(summary["exit"], 0);
        assert_eq!(summary["changes"], 1);
        assert!(summary["worksheet"].is_string(), "{summary}");
    }

    /// [`Conf`], then Ctrl-C as soon as it is verified: the next step stops before it begins.
    struct ConfThenCtrlC {
        inner: Conf,
        interrupt: Interrupt,
    }

    impl Step for ConfThenCtrlC {
        fn name(&self) -> StepName {
            self.inner.name()
        }
        fn plan(&mut self, cx: &mut Ctx<'_>) -> Result<Plan, StepError> {
            self.inner.plan(cx)
        }
        fn verify(&mut self, cx: &mut Ctx<'_>) -> Result<(), StepError> {
            let verified = self.inner.verify(cx);
            self.interrupt.set();
            verified
        }
    }

    #[test]
    fn a_step_stopped_before_it_began_reports_none_of_the_last_steps_changes() {
        let state = tempfile::tempdir().unwrap();
        let h = FakeHost::new().only_programs(&[]);
        h.put_file("/etc/demo.conf", "old\n");
        h.expect(&["systemctl", "restart", "demo"], CmdOutput::ok(""));
        let interrupt = Interrupt::new();
        let (plans, fail) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
        let i = interrupt.clone();
        let mut make = move |n: StepName| -> Box<dyn Step> {
            match n {
                StepName::Iscsi => Box::new(ConfThenCtrlC {
                    inner: Conf {
                        plans: plans.clone(),
                    },
                    interrupt: i.clone(),
                }),
                _ => Box::new(Flaky { fail: fail.clone() }),
            }
        };
        let mut lines = Vec::new();
        let json = crate::output::JsonLines::new(&mut lines);
        let r = execute_reporting(
            &cfg(state.path(), false),
            &h,
            &Log::disabled(),
            &interrupt,
            &mut make,
            &mut Vec::new(),
            &json,
        );
        assert!(matches!(r, Err(WizardError::Interrupted(_))), "{r:?}");
        json.summary(130, None, state.path(), false);
        let v: Vec<Value> = String::from_utf8(lines)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(v[0]["status"], "done");
        assert_eq!(v[0]["changes"], 2);
        assert_eq!(v[1]["step"], "sessions");
        assert_eq!(v[1]["status"], "interrupted");
        assert_eq!(v[1]["changes"], 0);
        assert_eq!(v[2]["changes"], 2, "{}", v[2]);
    }

    /// Logs in on portal A (the sessions step of these tests).
    struct Login;

    impl Step for Login {
        fn name(&self) -> StepName {
            StepName::Sessions
        }
        fn plan(&mut self, _cx: &mut Ctx<'_>) -> Result<Plan, StepError> {
            let mut p = Plan::new(StepName::Sessions);
            p.push(Action::run(Cmd::change(LOGIN), "log in"));
            Ok(p)
        }
        fn verify(&mut self, _cx: &mut Ctx<'_>) -> Result<(), StepError> {
            Ok(())
        }
    }

    /// A multipath step whose command fails, or (`interrupted`) that is stopped by Ctrl-C.
    struct Breaks {
        interrupted: bool,
    }

    impl Step for Breaks {
        fn name(&self) -> StepName {
            StepName::Multipath
        }
        fn plan(&mut self, _cx: &mut Ctx<'_>) -> Result<Plan, StepError> {
            let mut p = Plan::new(StepName::Multipath);
            if self.interrupted {
                p.push(Action::task("wait", "wait for the map"));
            } else {
                p.push(Action::run(Cmd::change(["multipath", "-r"]), "reload"));
            }
            Ok(p)
        }
        fn task(&mut self, _cx: &mut Ctx<'_>, _id: &str) -> Result<(), StepError> {
            Err(StepError::Host(HostError::Interrupted))
        }
        fn verify(&mut self, _cx: &mut Ctx<'_>) -> Result<(), StepError> {
            Ok(())
        }
    }

    const TGT: &str = "iqn.2002-09.com.lab:array";
    const LOGIN: [&str; 8] = [
        "iscsiadm",
        "-m",
        "node",
        "-T",
        TGT,
        "-p",
        "192.168.130.101:3260",
        "--login",
    ];

    fn session_p3(sessions: &[(&str, u32, &str)]) -> CmdOutput {
        let mut t = String::new();
        for (target, sid, portal) in sessions {
            t.push_str(&format!(
                "Target: {target} (non-flash)\n\tCurrent Portal: {portal},1\n\
                 \tPersistent Portal: {portal},1\n\t\tIface Name: iface-vA\n\t\tSID: {sid}\n"
            ));
        }
        CmdOutput::ok(t)
    }

    fn node_p1(nodes: &[(&str, &str)]) -> CmdOutput {
        let mut t = String::new();
        for (target, portal) in nodes {
            t.push_str(&format!(
                "Target: {target}\n\tPortal: {portal},1\n\t\tIface Name: iface-vA\n"
            ));
        }
        CmdOutput::ok(t)
    }

    /// Before the run: a session and record of another target. The run logs in on A, its
    /// discovery made records of A and B, and the next step fails or is interrupted.
    fn failing_run(
        interrupted: bool,
    ) -> (Result<(), WizardError>, String, FakeHost, tempfile::TempDir) {
        const OTHER: &str = "iqn.2002-09.com.lab:other";
        const C: &str = "10.0.0.9:3260";
        const A: &str = "192.168.130.101:3260";
        const B: &str = "192.168.131.101:3260";
        let state = tempfile::tempdir().unwrap();
        let h = FakeHost::new();
        h.allow(&["multipath", "-ll"], CmdOutput::ok(""));
        let sessions = ["iscsiadm", "-m", "session", "-P", "3"];
        let nodes = ["iscsiadm", "-m", "node", "-P", "1"];
        // What is there before the run, then after the failure.
        h.expect(&sessions, session_p3(&[(OTHER, 1, C)]));
        h.expect(&nodes, node_p1(&[(OTHER, C)]));
        h.expect(&LOGIN, CmdOutput::ok(""));
        if !interrupted {
            h.expect(
                &["multipath", "-r"],
                CmdOutput::status(1, "", "multipath: reload failed\n"),
            );
            h.expect(&sessions, session_p3(&[(OTHER, 1, C), (TGT, 5, A)]));
            h.expect(&nodes, node_p1(&[(OTHER, C), (TGT, A), (TGT, B)]));
            h.expect(
                &["iscsiadm", "-m", "session", "-r", "5", "-u"],
                CmdOutput::ok(""),
            );
            for p in [A, B] {
                let base = [
                    "iscsiadm", "-m", "node", "-T", TGT, "-p", p, "-I", "iface-vA",
                ];
                if p == A {
                    let manual: Vec<&str> = base
                        .iter()
                        .copied()
                        .chain(["-o", "update", "-n", "node.startup", "-v", "manual"])
                        .collect();
                    h.expect(&manual, CmdOutput::ok(""));
                }
                let delete: Vec<&str> = base.iter().copied().chain(["-o", "delete"]).collect();
                h.expect(&delete, CmdOutput::ok(""));
            }
            // And once they are gone.
            h.expect(&sessions, session_p3(&[(OTHER, 1, C)]));
            h.expect(&nodes, node_p1(&[(OTHER, C)]));
        }
        let mut c = cfg(state.path(), false);
        c.steps = vec![StepName::Sessions, StepName::Multipath];
        let mut make = move |n: StepName| -> Box<dyn Step> {
            match n {
                StepName::Sessions => Box::new(Login),
                _ => Box::new(Breaks { interrupted }),
            }
        };
        let mut out = Vec::new();
        let r = execute(
            &c,
            &h,
            &Log::disabled(),
            &Interrupt::new(),
            &mut make,
            &mut out,
        );
        (r, String::from_utf8(out).unwrap(), h, state)
    }

    #[test]
    fn a_failed_step_logs_out_the_runs_sessions_and_deletes_its_records_only() {
        let (r, out, h, state) = failing_run(false);
        h.finish();
        let e = r.unwrap_err();
        assert_eq!(e.exit_code(), 1);
        let text = e.to_string();
        assert!(
            text.starts_with("step multipath failed: `multipath -r` failed (exit 1)"),
            "{text}"
        );
        assert!(text.contains("reload failed"), "{text}");
        assert!(
            out.contains("cleaned up after the failure: log out of session 5 (iqn.2002-09.com.lab:array at 192.168.130.101:3260)"),
            "{out}"
        );
        assert!(
            out.contains("cleaned up after the failure: delete node record iqn.2002-09.com.lab:array 192.168.131.101:3260 iface iface-vA"),
            "{out}"
        );
        assert!(!out.contains("could not remove"), "{out}");
        assert!(
            !h.ran()
                .iter()
                .any(|c| c.contains("-r 1 ") || c.contains("10.0.0.9")),
            "{:?}",
            h.ran()
        );
        // Recorded, and the sessions step is to run again.
        let s = StateDir::new(state.path()).load_state().unwrap();
        let cleanup = s.run.cleanup.expect("the cleanup is recorded");
        assert_eq!(cleanup.step, "multipath");
        assert_eq!(cleanup.removed.len(), 4, "{:?}", cleanup.removed);
        assert!(cleanup.left.is_empty());
        assert!(s.run.done.is_empty(), "{:?}", s.run.done);
        assert!(s.run.before.is_some());
    }

    #[test]
    fn an_interrupted_run_cleans_up_nothing() {
        let (r, out, h, state) = failing_run(true);
        h.finish();
        assert_eq!(r.unwrap_err().exit_code(), 130);
        assert!(!out.contains("clean"), "{out}");
        let s = StateDir::new(state.path()).load_state().unwrap();
        assert!(s.run.cleanup.is_none());
        assert_eq!(
            s.run.done.len(),
            1,
            "the sessions step stays done, to resume after it"
        );
    }
}
