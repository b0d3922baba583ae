//! `iser-wizard tune`: METHOD.md's loop over the run-time knobs of the attached volume (its
//! multipath map's path selector, see [`selector`], and its block queues), one knob at a
//! time, each value kept only when proven (see [`decide`]).
//!
//! Contract:
//! - Before the first change, every original value of every knob tried, on the map and on
//!   each of its paths, is recorded in memory and in a restore script
//!   (`<state>/tune/<time>/restore.sh`, 0700) that writes them all back: the selector first
//!   (trial drop-in removed, `multipathd reconfigure`, a wait for the map), then the queue
//!   values (a map reload may restack them, so with the selector tried every queue value of
//!   the map and paths is recorded).
//! - The selector is tried first, while every queue knob holds its original value; the
//!   queue values a selector change's reload restacks are written back at once.
//! - Every bench (the reference, each trial, each confirmation) follows a discarded warm-up
//!   run of each workload (`--warmup`), so its first measured run is not cold.
//! - A value is written to the map and all its paths alike (the path queue depth to the
//!   paths only), benched, then the knob is put back to its reference value; the knob's best
//!   improving value is set again for a confirming bench and kept only when that proves it
//!   again ([`decide::keep`]); a kept value stays set and its confirming bench becomes the
//!   reference for the next knobs.
//! - On any error, and on SIGINT or SIGTERM (the run's interrupt kills fio and the loop
//!   stops), every original value is written back before the command returns; what could
//!   not be written back is named with the restore script's path.
//! - The table of every value tried is printed: `knob (old -> new) | workload | old median |
//!   new median | ministat | kept`, with the expected number of chance differences under it.
//! - `--persist` writes the kept queue values as a udev rule and a kept selector as a
//!   multipath drop-in (templates/tune/) through the Host seam (backed up, atomic, recorded
//!   so `undo` removes them), then checks the live map takes the selector from that file.
//!   Without it queue values last until reboot and a kept selector until multipathd next
//!   reads its configuration; the trial drop-in is removed either way.
//! - `--dry-run` reads the current values (the selector from the live map, with the
//!   daemon's `config_dir` and default selector) and prints the knobs, the values it would
//!   try and the longest time it would take; it changes nothing.
//!
//! sysfs attributes are written in place (`write(2)` on the attribute), not through
//! `Host::write`, whose atomic rename cannot replace a sysfs file; the paths are resolved
//! below the host's root like every other file.

pub mod decide;
pub mod selector;

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;

use crate::bench::fio::Workload;
use crate::bench::{self, BenchError, Plan, WorkloadResult};
use crate::exit::WizardError;
use crate::state::StateDir;
use crate::steps::host::{Cmd, Host, HostError};

use self::decide::{Outcome, Verdict};

/// Where a knob lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A block queue attribute under `/sys/block/<dev>/`.
    Queue,
    /// The multipath map's path selector ([`selector`]).
    Selector,
}

/// A run-time knob (METHOD.md "Tuning").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Knob {
    /// Its name on the command line and in the table.
    pub name: &'static str,
    /// Where it lives.
    pub kind: Kind,
    /// The attribute under `/sys/block/<dev>/` (a queue knob), or the multipath keyword.
    pub attr: &'static str,
    /// Whether it exists on the paths only (the SCSI device's queue depth).
    pub paths_only: bool,
    /// The values tried.
    pub candidates: &'static [&'static str],
}

/// Every knob, in the order they are tried. The path selector comes first: changing it
/// reloads the map's table, which restacks the map's queue limits, so it is tried while
/// every queue knob still holds its original value.
pub const KNOBS: [Knob; 8] = [
    Knob {
        name: selector::NAME,
        kind: Kind::Selector,
        attr: "path_selector",
        paths_only: false,
        candidates: &selector::CANDIDATES,
    },
    Knob {
        name: "queue_depth",
        kind: Kind::Queue,
        attr: "device/queue_depth",
        paths_only: true,
        candidates: &["32", "64", "128"],
    },
    Knob {
        name: "scheduler",
        kind: Kind::Queue,
        attr: "queue/scheduler",
        paths_only: false,
        candidates: &["none", "mq-deadline"],
    },
    Knob {
        name: "nr_requests",
        kind: Kind::Queue,
        attr: "queue/nr_requests",
        paths_only: false,
        candidates: &["64", "256", "1024"],
    },
    Knob {
        name: "max_sectors_kb",
        kind: Kind::Queue,
        attr: "queue/max_sectors_kb",
        paths_only: false,
        candidates: &["512", "1024"],
    },
    Knob {
        name: "read_ahead_kb",
        kind: Kind::Queue,
        attr: "queue/read_ahead_kb",
        paths_only: false,
        candidates: &["128", "4096"],
    },
    Knob {
        name: "nomerges",
        kind: Kind::Queue,
        attr: "queue/nomerges",
        paths_only: false,
        candidates: &["0", "2"],
    },
    Knob {
        name: "rq_affinity",
        kind: Kind::Queue,
        attr: "queue/rq_affinity",
        paths_only: false,
        candidates: &["1", "2"],
    },
];

/// Flags of `tune`.
#[derive(Debug, Args, Clone)]
pub struct TuneFlags {
    /// Runs per workload in every bench (at least 3).
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub runs: usize,
    /// Seconds measured per run.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub runtime: u32,
    /// Seconds of ramp before each run's measurement.
    #[arg(long, value_name = "SECS", default_value_t = 5)]
    pub ramp: u32,
    /// Only these knobs (comma-separated): path_selector, queue_depth, scheduler,
    /// nr_requests, max_sectors_kb, read_ahead_kb, nomerges, rq_affinity.
    #[arg(long, value_name = "KNOB,...", value_delimiter = ',')]
    pub knobs: Vec<String>,
    /// Only these workloads (comma-separated): rand4k-read, rand4k-write, seq1m-read,
    /// seq1m-write.
    #[arg(long, value_name = "WORKLOAD,...", value_delimiter = ',')]
    pub workloads: Vec<String>,
    /// The volume, by mount point (default: the one attached volume).
    #[arg(long, value_name = "DIR")]
    pub mount_point: Option<String>,
    /// Size of the test file (MiB or GiB; default as bench).
    #[arg(long, value_name = "SIZE")]
    pub size: Option<String>,
    /// Seconds of one discarded run of each workload before every bench (0: none), so the
    /// first measured run after a change is not cold.
    #[arg(long, value_name = "SECS", default_value_t = 5)]
    pub warmup: u32,
    /// Write the kept values as a udev rule (queue values) and a multipath drop-in (the path
    /// selector), so they outlive a reboot.
    #[arg(long)]
    pub persist: bool,
    /// List the knobs, their current values, the values to try and the longest time it would
    /// take; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Root of the files read and written (default `/`).
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
    /// State directory of the run.
    #[arg(long, value_name = "DIR", default_value = crate::cli::DEFAULT_STATE_DIR)]
    pub state_dir: PathBuf,
}

/// The knobs named, in the table's order; every name must be known.
pub fn select_knobs(names: &[String]) -> Result<Vec<Knob>, String> {
    for n in names {
        if !KNOBS.iter().any(|k| k.name == n.trim()) {
            let known: Vec<&str> = KNOBS.iter().map(|k| k.name).collect();
            return Err(format!("--knobs {n}: not a knob; use {}", known.join(", ")));
        }
    }
    Ok(KNOBS
        .into_iter()
        .filter(|k| names.is_empty() || names.iter().any(|n| n.trim() == k.name))
        .collect())
}

/// The devices a knob is set on: the map and its paths, or the paths only.
pub fn devices(knob: &Knob, layout: &bench::paths::Layout) -> Vec<String> {
    let all = layout.devices();
    if knob.paths_only {
        all[1..].to_vec()
    } else {
        all
    }
}

/// The value an attribute holds, from its text (`[mq-deadline] none` -> `mq-deadline`).
pub fn current_value(text: &str) -> String {
    let t = text.trim();
    match (t.find('['), t.find(']')) {
        (Some(a), Some(b)) if a < b => t[a + 1..b].to_string(),
        _ => t.to_string(),
    }
}

/// Where a device's attribute is.
pub fn attr_path(dev: &str, knob: &Knob) -> String {
    format!("/sys/block/{dev}/{}", knob.attr)
}

/// One value a device's attribute held before tune changed anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Original {
    /// The attribute's path on the target system.
    pub path: String,
    /// Its value.
    pub value: String,
}

/// The restore script: `first` (the selector's lines, [`selector::restore_lines`]), then every
/// original value written back, each line on its own so that one failure does not stop the
/// rest.
pub fn restore_script(first: &str, originals: &[Original]) -> String {
    let mut s = String::from(
        "#!/bin/sh\n# Written by iser-wizard tune before its first change: writes back every \
         value it found.\n",
    );
    s.push_str(first);
    for o in originals {
        s.push_str(&format!(
            "echo {} > {} || echo \"could not restore {}\" >&2\n",
            crate::steps::host::shell_quote(&o.value),
            crate::steps::host::shell_quote(&o.path),
            o.path
        ));
    }
    s
}

/// Writes attribute values. The real one writes in place below the host's root.
pub trait Attrs {
    /// Read an attribute (`None`: absent).
    fn get(&self, path: &str) -> Option<String>;
    /// Write a value to an attribute.
    fn set(&self, path: &str, value: &str) -> std::io::Result<()>;
}

/// Attributes of the host, below its root.
pub struct HostAttrs<'a>(pub &'a dyn Host);

impl Attrs for HostAttrs<'_> {
    fn get(&self, path: &str) -> Option<String> {
        self.0.read(Path::new(path)).ok().flatten()
    }
    fn set(&self, path: &str, value: &str) -> std::io::Result<()> {
        let real = self.0.root().join(path.trim_start_matches('/'));
        // In place, no create, no truncate: a sysfs attribute takes one write.
        let mut f = std::fs::OpenOptions::new().write(true).open(real)?;
        f.write_all(value.as_bytes())
    }
}

/// What the knobs are set through: the block queue attributes and, when the map's
/// selector can be changed, the selector.
#[derive(Clone, Copy)]
pub struct Sys<'a> {
    /// The queue attributes.
    pub attrs: &'a dyn Attrs,
    /// The selector (`None`: the path selector is not tried, with the reason).
    pub selector: Result<&'a dyn selector::Selector, &'a str>,
}

/// A knob's current value, read on its first device (`Err`: why it cannot be tried).
fn knob_now(sys: &Sys<'_>, knob: &Knob, devs: &[String]) -> Result<String, String> {
    match knob.kind {
        Kind::Selector => sys.selector.map_err(str::to_string)?.current(),
        Kind::Queue => {
            let first = devs.first().ok_or("no device")?;
            let p = attr_path(first, knob);
            sys.attrs
                .get(&p)
                .map(|t| current_value(&t))
                .ok_or_else(|| format!("{p} is absent"))
        }
    }
}

/// Every queue knob's value on the devices it is set on (what a map reload may restack).
fn queue_values(attrs: &dyn Attrs, layout: &bench::paths::Layout) -> Vec<Original> {
    let mut v = Vec::new();
    for k in KNOBS.iter().filter(|k| k.kind == Kind::Queue) {
        for d in devices(k, layout) {
            let path = attr_path(&d, k);
            if let Some(t) = attrs.get(&path) {
                v.push(Original {
                    path,
                    value: current_value(&t),
                });
            }
        }
    }
    v
}

/// Set a knob to `value` (`original`: the value it had, which a selector goes back to by
/// removing its trial drop-in); the first failure is returned with the device named.
fn set_knob(
    sys: &Sys<'_>,
    knob: &Knob,
    layout: &bench::paths::Layout,
    value: &str,
    original: &str,
) -> Result<(), String> {
    match knob.kind {
        Kind::Selector => {
            let sel = sys.selector.map_err(str::to_string)?;
            // The reload restacks the map's queue limits (read_ahead_kb, max_sectors_kb):
            // one knob at a time means the queue values are put back as they were.
            let before = queue_values(sys.attrs, layout);
            let r = sel.set(value, original);
            for o in before {
                if sys.attrs.get(&o.path).map(|t| current_value(&t)).as_ref() != Some(&o.value) {
                    sys.attrs
                        .set(&o.path, &o.value)
                        .map_err(|e| format!("writing {} back to {}: {e}", o.value, o.path))?;
                }
            }
            r
        }
        Kind::Queue => {
            for d in devices(knob, layout) {
                let p = attr_path(&d, knob);
                sys.attrs
                    .set(&p, value)
                    .map_err(|e| format!("writing {value} to {p}: {e}"))?;
            }
            Ok(())
        }
    }
}

/// A bench's label for a knob's value (`path_selector-queue-length_0`).
fn label(knob: &Knob, value: &str) -> String {
    format!("{}-{}", knob.name, value.replace(' ', "_"))
}

/// Write every original value back; the ones that failed.
pub fn restore(attrs: &dyn Attrs, originals: &[Original]) -> Vec<String> {
    originals
        .iter()
        .filter_map(|o| {
            attrs
                .set(&o.path, &o.value)
                .err()
                .map(|e| format!("{}: {e}", o.path))
        })
        .collect()
}

/// One row of the table.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// `nr_requests (256 -> 1024)`.
    pub change: String,
    /// The workload.
    pub workload: Workload,
    /// The reference's median.
    pub old_median: f64,
    /// The trial's median.
    pub new_median: f64,
    /// ministat's judgement.
    pub ministat: String,
    /// `yes`, `no`, `not confirmed`, or why the value could not be tried.
    pub kept: String,
}

/// What a tune did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    /// Every value tried, per workload.
    pub rows: Vec<Row>,
    /// The values kept: (knob, value).
    pub kept: Vec<(Knob, String)>,
    /// Values that could not be set (knob, value, why).
    pub skipped: Vec<String>,
    /// How many values were tried.
    pub tried: usize,
}

/// A bench of the plan's workloads; `label` names its folder under the tune's.
pub type Measure<'a> = dyn FnMut(&str) -> Result<Vec<WorkloadResult>, BenchError> + 'a;

fn values_of(r: &[WorkloadResult], w: Workload) -> &[f64] {
    r.iter()
        .find(|x| x.workload == w)
        .map(|x| x.values.as_slice())
        .unwrap_or(&[])
}

/// Compare a bench with the reference, workload by workload.
fn judge(
    reference: &[WorkloadResult],
    trial: &[WorkloadResult],
) -> Result<Vec<(Workload, Verdict, crate::stats::Comparison)>, BenchError> {
    reference
        .iter()
        .map(|r| {
            let (v, c) = decide::verdict(&r.values, values_of(trial, r.workload)).map_err(|e| {
                BenchError::Step(crate::steps::StepError::Failed(format!(
                    "comparing {}: {e}",
                    r.workload
                )))
            })?;
            Ok((r.workload, v, c))
        })
        .collect()
}

/// The loop, from a reference bench already taken. Leaves kept values set and every other
/// knob at its reference value; on error returns at once (the caller restores).
pub fn tune_loop(
    sys: &Sys<'_>,
    knobs: &[Knob],
    layout: &bench::paths::Layout,
    mut reference: Vec<WorkloadResult>,
    measure: &mut Measure<'_>,
    report: &mut Report,
) -> Result<(), BenchError> {
    for knob in knobs {
        if devices(knob, layout).is_empty() {
            continue;
        }
        let now = match knob_now(sys, knob, &devices(knob, layout)) {
            Ok(now) => now,
            Err(why) => {
                report.skipped.push(format!("{}: {why}", knob.name));
                continue;
            }
        };
        let mut improving: Vec<(String, f64, Vec<usize>)> = Vec::new();
        for value in knob
            .candidates
            .iter()
            .filter(|v| selector::norm(v) != selector::norm(&now))
        {
            if let Err(why) = set_knob(sys, knob, layout, value, &now) {
                // A queue attribute that refused the value refuses the put-back on the same
                // device (the devices before it are put back); a selector not put back is
                // an error, and the caller restores everything.
                if let Err(back) = set_knob(sys, knob, layout, &now, &now) {
                    if knob.kind == Kind::Selector {
                        return Err(BenchError::Step(crate::steps::StepError::Failed(format!(
                            "{why}; and putting {} back: {back}",
                            knob.name
                        ))));
                    }
                }
                if knob.kind == Kind::Selector && sys.selector.is_ok_and(|s| s.interrupted()) {
                    return Err(BenchError::Interrupted);
                }
                report.skipped.push(format!("{} {value}: {why}", knob.name));
                continue;
            }
            report.tried += 1;
            let trial = measure(&label(knob, value));
            // Back to the reference value before anything else, the trial's result or not.
            set_knob(sys, knob, layout, &now, &now)
                .map_err(|why| BenchError::Step(crate::steps::StepError::Failed(why)))?;
            let trial = trial?;
            let verdicts = judge(&reference, &trial)?;
            let mut rows = Vec::new();
            for (w, v, c) in &verdicts {
                rows.push(report.rows.len());
                report.rows.push(Row {
                    change: format!("{} ({now} -> {value})", knob.name),
                    workload: *w,
                    old_median: bench::median(values_of(&reference, *w)),
                    new_median: bench::median(values_of(&trial, *w)),
                    ministat: decide::describe(*v, c),
                    kept: "no".into(),
                });
            }
            let pairs: Vec<(Verdict, crate::stats::Comparison)> =
                verdicts.iter().map(|(_, v, c)| (*v, *c)).collect();
            let out = decide::outcome(&pairs.iter().map(|(v, _)| *v).collect::<Vec<_>>());
            if out == Outcome::Improves {
                improving.push((value.to_string(), decide::score(&pairs), rows));
            }
        }
        improving.sort_by(|a, b| b.1.total_cmp(&a.1));
        let Some((value, _, rows)) = improving.into_iter().next() else {
            continue;
        };
        set_knob(sys, knob, layout, &value, &now)
            .map_err(|why| BenchError::Step(crate::steps::StepError::Failed(why)))?;
        let confirm = measure(&format!("{}-confirm", label(knob, &value)));
        let confirm = match confirm {
            Ok(c) => c,
            Err(e) => {
                let _ = set_knob(sys, knob, layout, &now, &now);
                return Err(e);
            }
        };
        let verdicts = judge(&reference, &confirm)?;
        let again = decide::outcome(&verdicts.iter().map(|(_, v, _)| *v).collect::<Vec<_>>());
        if decide::keep(Outcome::Improves, Some(again)) {
            for i in rows {
                report.rows[i].kept = "yes".into();
            }
            report.kept.push((*knob, value));
            reference = confirm;
        } else {
            for i in rows {
                report.rows[i].kept = "not confirmed".into();
            }
            set_knob(sys, knob, layout, &now, &now)
                .map_err(|why| BenchError::Step(crate::steps::StepError::Failed(why)))?;
        }
    }
    Ok(())
}

/// The table, as in the talk, with the expected chance differences under it.
pub fn render_table(report: &Report) -> String {
    let head = [
        "knob (old -> new)",
        "workload",
        "old median",
        "new median",
        "ministat",
        "kept",
    ];
    let rows: Vec<[String; 6]> = report
        .rows
        .iter()
        .map(|r| {
            [
                r.change.clone(),
                r.workload.name().to_string(),
                crate::cfmt::g6(r.old_median),
                crate::cfmt::g6(r.new_median),
                r.ministat.clone(),
                r.kept.clone(),
            ]
        })
        .collect();
    let mut widths = head.map(str::len);
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    let line = |cells: &[String]| {
        let mut s = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join(" | ");
        s.truncate(s.trim_end().len());
        s.push('\n');
        s
    };
    let mut out = line(&head.map(String::from));
    out.push_str(&line(&widths.map(|w| "-".repeat(w))));
    for r in &rows {
        out.push_str(&line(r));
    }
    let comparisons = report.rows.len();
    out.push_str(&format!(
        "\n{} value{} tried, {comparisons} comparison{} at 95% confidence: about {:.1} \
         \"difference\" is expected by chance alone, which is why a value is kept only when a \
         confirming bench proves it again.\n",
        report.tried,
        if report.tried == 1 { "" } else { "s" },
        if comparisons == 1 { "" } else { "s" },
        comparisons as f64 * 0.05
    ));
    for s in &report.skipped {
        out.push_str(&format!("not tried: {s}\n"));
    }
    if report.kept.is_empty() {
        out.push_str("kept: nothing (every knob is as it was found)\n");
    } else {
        let kept: Vec<String> = report
            .kept
            .iter()
            .map(|(k, v)| format!("{}={v}", k.name))
            .collect();
        out.push_str(&format!("kept: {}\n", kept.join(", ")));
    }
    out
}

/// The udev rule that sets the kept values at boot and whenever a path comes back.
pub fn udev_rule(wwid: &str, kept: &[(Knob, String)]) -> Result<String, String> {
    let mut s = crate::steps::templates::render(
        include_str!("../../templates/tune/62-iser-wizard-tune.rules"),
        &[("wwid", wwid)],
    )?;
    for (k, v) in kept.iter().filter(|(k, _)| k.kind == Kind::Queue) {
        let assignment = format!("ATTR{{{}}}=\"{v}\"", k.attr);
        if !k.paths_only {
            s.push_str(&crate::steps::templates::render(
                include_str!("../../templates/tune/map.rule"),
                &[("wwid", wwid), ("assignment", &assignment)],
            )?);
        }
        s.push_str(&crate::steps::templates::render(
            include_str!("../../templates/tune/path.rule"),
            &[("wwid", wwid), ("assignment", &assignment)],
        )?);
    }
    Ok(s)
}

/// Where `--persist` writes the rule.
pub const UDEV_RULE: &str = "/etc/udev/rules.d/62-iser-wizard-tune.rules";

/// The longest a tune can take, in seconds: the reference bench, each value's trial, and
/// one confirming bench per knob, each after a warm-up of `warmup` seconds per workload.
pub fn longest_seconds(knobs: &[(Knob, Vec<String>)], plan: &Plan, warmup: u32) -> u64 {
    let benches = 1 + knobs
        .iter()
        .map(|(_, v)| v.len() + usize::from(!v.is_empty()))
        .sum::<usize>();
    let per_bench =
        plan.workloads.len() * (plan.runs * (plan.runtime + plan.ramp) as usize + warmup as usize);
    (benches * per_bench) as u64
}

fn plan_of(f: &TuneFlags) -> Result<Plan, WizardError> {
    let bf = bench::BenchFlags {
        runs: f.runs,
        runtime: f.runtime,
        ramp: f.ramp,
        label: None,
        mount_point: f.mount_point.clone(),
        size: f.size.clone(),
        json: false,
        compare: None,
        root: f.root.clone(),
        state_dir: f.state_dir.clone(),
    };
    let mut plan = bench::plan(&bf)?;
    if !f.workloads.is_empty() {
        plan.workloads = Vec::new();
        for w in &f.workloads {
            let w = Workload::from_name(w.trim()).ok_or_else(|| {
                WizardError::Usage(format!(
                    "--workloads {w}: use rand4k-read, rand4k-write, seq1m-read, seq1m-write"
                ))
            })?;
            if !plan.workloads.contains(&w) {
                plan.workloads.push(w);
            }
        }
        plan.workloads.sort();
    }
    Ok(plan)
}

/// A knob, its current value (or why it cannot be read) and the values to try.
pub type Try = (Knob, Result<String, String>, Vec<String>);

/// What `--dry-run` prints: every knob, its value now, the values to try and where, the
/// selector's configuration in effect (`sel`: the daemon's configuration and the trial
/// drop-in's path), and the longest time it would take.
pub fn dry_run_text(
    target: &bench::Target,
    plan: &Plan,
    warmup: u32,
    tries: &[Try],
    sel: Option<(&selector::Config, PathBuf)>,
) -> String {
    let mut text = format!(
        "tune on {} ({}): one knob at a time, each value benched ({} x {} runs of {} s \
         after {} s of ramp, after a {} s warm-up), kept only when a confirming bench \
         proves it again\n",
        target.mount_point,
        target.layout.map,
        plan.workloads
            .iter()
            .map(|w| w.name())
            .collect::<Vec<_>>()
            .join(", "),
        plan.runs,
        plan.runtime,
        plan.ramp,
        warmup
    );
    for (k, now, values) in tries {
        let on = match (k.kind, &sel) {
            (Kind::Selector, Some((_, trial))) => format!(
                "{} (map {}; drop-in {})",
                target.wwid,
                target.layout.map,
                trial.display()
            ),
            _ => devices(k, &target.layout).join(" "),
        };
        let now = match now {
            Ok(v) => v.clone(),
            Err(why) => format!("(not tried: {why})"),
        };
        text.push_str(&format!(
            "  {:<15} now {:<14} try {:<32} on {on}\n",
            k.name,
            now,
            if values.is_empty() {
                "-".to_string()
            } else {
                values.join(", ")
            },
        ));
        if let (Kind::Selector, Some((config, _))) = (k.kind, &sel) {
            text.push_str(&format!(
                "  {:<15} the configuration in effect: defaults path_selector {}, drop-ins in \
                 {}; the live map decides\n",
                "",
                config
                    .default_selector
                    .as_deref()
                    .unwrap_or("(not printed)"),
                config.config_dir
            ));
        }
    }
    let pairs: Vec<(Knob, Vec<String>)> = tries.iter().map(|(k, _, v)| (*k, v.clone())).collect();
    let secs = longest_seconds(&pairs, plan, warmup);
    text.push_str(&format!(
        "at most {} min {} s (a reference bench, one per value, one confirming bench per \
         knob, each after its warm-up), plus the test file's layout and the map's reloads; \
         nothing was changed\n",
        secs / 60,
        secs % 60
    ));
    text
}

/// `--persist` for a kept selector: its own drop-in written through `host` (backed up,
/// atomic, recorded so `undo` removes it), the trial drop-in removed, the daemon
/// reconfigured, and the live map checked to show the kept selector from the persisted file
/// alone. Returns the drop-in's path.
pub fn persist_selector(
    host: &dyn Host,
    m: &selector::Multipath<'_>,
    value: &str,
) -> Result<PathBuf, String> {
    let persisted = m.persist_path();
    let text = selector::drop_in(&m.wwid, value, "kept by `tune --persist`")?;
    host.write(&persisted, &text, 0o644)
        .map_err(|e| format!("writing {}: {e}", persisted.display()))?;
    let trial = m.trial_path();
    m.host
        .remove_file(&trial)
        .map_err(|e| format!("removing {}: {e}", trial.display()))?;
    m.reconfigure_and_wait(value, false)
        .map_err(|e| format!("{} written, but {e}", persisted.display()))?;
    Ok(persisted)
}

/// `iser-wizard tune`.
pub fn command(
    f: &TuneFlags,
    interrupt: crate::steps::host::Interrupt,
    out: &mut dyn Write,
) -> Result<(), WizardError> {
    let plan = plan_of(f)?;
    let knobs = select_knobs(&f.knobs).map_err(WizardError::Usage)?;
    if !f.state_dir.is_dir() {
        return Err(WizardError::Usage(format!(
            "--state-dir {}: no such directory; give the state directory of a run",
            f.state_dir.display()
        )));
    }
    let sd = StateDir::new(&f.state_dir);
    let _lock = (!f.dry_run).then(|| sd.lock()).transpose()?;
    let state = sd
        .load_state()
        .map_err(|e| WizardError::Other(anyhow::anyhow!("reading the state: {e}")))?;
    let log = std::sync::Arc::new(
        crate::steps::host::Log::open(&sd.log())
            .unwrap_or_else(|_| crate::steps::host::Log::disabled()),
    );
    let host = crate::steps::host::RealHost::new(
        f.root.clone(),
        (!f.dry_run).then(|| sd.backups()),
        log,
        interrupt,
    );
    let target = bench::resolve(&host, &state.facts, f.mount_point.as_deref())
        .map_err(BenchError::into_wizard)?;
    let attrs = HostAttrs(&host);
    // The selector's host: its commands finish when the run is interrupted (a revert must
    // complete) and its writes are not backed up (the trial drop-in is transient).
    let sel_host = crate::steps::host::RealHost::new(
        f.root.clone(),
        None,
        std::sync::Arc::new(
            crate::steps::host::Log::open(&sd.log())
                .unwrap_or_else(|_| crate::steps::host::Log::disabled()),
        ),
        crate::steps::host::Interrupt::new(),
    );
    let wants_selector = knobs.iter().any(|k| k.kind == Kind::Selector);
    let multipath = if wants_selector {
        let cmd = Cmd::probe(["multipathd", "show", "config"]);
        match host.run(&cmd) {
            Ok(o) if o.success() => Ok(selector::Multipath {
                host: &sel_host,
                interrupt: host.interrupt(),
                wwid: target.wwid.clone(),
                config: selector::parse_config(&o.stdout),
                settle: selector::SETTLE,
            }),
            Ok(o) => Err(format!("{cmd}: {}: {}", o.describe_status(), o.tail(2))),
            Err(e) => Err(format!("{cmd}: {e}")),
        }
    } else {
        Err("not asked".to_string())
    };
    let sys = Sys {
        attrs: &attrs,
        selector: match &multipath {
            Ok(m) => Ok(m as &dyn selector::Selector),
            Err(why) => Err(why.as_str()),
        },
    };
    // What would be tried: each knob's values other than its current one.
    let mut tries = Vec::new();
    for k in &knobs {
        let now = knob_now(&sys, k, &devices(k, &target.layout));
        // A knob whose value cannot be read is not tried (tune_loop skips it alike).
        let values: Vec<String> = match &now {
            Err(_) => Vec::new(),
            Ok(now) => k
                .candidates
                .iter()
                .filter(|v| selector::norm(v) != selector::norm(now))
                .map(|v| v.to_string())
                .collect(),
        };
        tries.push((*k, now, values));
    }
    let selector_try = tries
        .iter()
        .find(|(k, now, v)| k.kind == Kind::Selector && now.is_ok() && !v.is_empty())
        .and_then(|(_, now, _)| now.clone().ok());
    if f.dry_run {
        let sel = multipath.as_ref().ok().map(|m| (&m.config, m.trial_path()));
        return out
            .write_all(dry_run_text(&target, &plan, f.warmup, &tries, sel).as_bytes())
            .map_err(|e| WizardError::Other(e.into()));
    }
    // Every original value, recorded before the first change.
    let mut originals = Vec::new();
    for (k, _, _) in tries.iter().filter(|(k, _, _)| k.kind == Kind::Queue) {
        for d in devices(k, &target.layout) {
            let path = attr_path(&d, k);
            if let Some(t) = attrs.get(&path) {
                originals.push(Original {
                    path,
                    value: current_value(&t),
                });
            }
        }
    }
    // A selector change reloads the map, which may restack its queue values: they are
    // recorded too, so the restore puts them back after the selector.
    if selector_try.is_some() {
        for o in queue_values(&attrs, &target.layout) {
            if !originals.iter().any(|x| x.path == o.path) {
                originals.push(o);
            }
        }
    }
    let first = match (&selector_try, &multipath) {
        (Some(orig), Ok(m)) => selector::restore_lines(&m.trial_path(), &target.wwid, orig),
        _ => String::new(),
    };
    let stamp = bench::default_label();
    let dir = f.state_dir.join("tune").join(&stamp);
    std::fs::create_dir_all(&dir)
        .map_err(|e| WizardError::Other(anyhow::anyhow!("creating {}: {e}", dir.display())))?;
    let script = dir.join("restore.sh");
    std::fs::write(&script, restore_script(&first, &originals))
        .and_then(|()| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700))
        })
        .map_err(|e| WizardError::Other(anyhow::anyhow!("writing {}: {e}", script.display())))?;
    let _ = writeln!(
        out,
        "tune: original values recorded in {} (run it to put them back)",
        script.display()
    );
    let mut report = Report::default();
    let benches = 1 + tries
        .iter()
        .map(|(_, _, v)| v.len() + usize::from(!v.is_empty()))
        .sum::<usize>();
    let bar = bench::progress_bar(benches as u64, "tune", "benches");
    let result = (|| -> Result<(), BenchError> {
        let t = bench::prepare(&host, &target, &plan)?;
        let mut measure = |label: &str| {
            bar.set_message(label.to_string());
            // Every bench follows a change (the layout, a value set or put back): a
            // discarded run of each workload first, so the first measured run is not cold.
            if f.warmup > 0 {
                bench::warm_up(&host, &plan, &t, f.warmup)?;
            }
            let r = bench::measure(&host, &target, &plan, &t, &dir.join(label), &mut |_, _| {});
            bar.inc(1);
            r
        };
        let reference = measure("reference")?;
        tune_loop(
            &sys,
            &knobs,
            &target.layout,
            reference,
            &mut measure,
            &mut report,
        )
    })();
    bar.finish_and_clear();
    let table = render_table(&report);
    let _ = out.write_all(table.as_bytes());
    let _ = std::fs::write(dir.join("table.txt"), &table);
    if let Err(e) = result {
        let mut failed = Vec::new();
        // The selector first: its reload may restack the queue values written after it.
        if let (Some(orig), Ok(m)) = (&selector_try, &multipath) {
            if let Err(why) = selector::Selector::set(m, orig, orig) {
                failed.push(format!("{}: {why}", selector::NAME));
            }
        }
        failed.extend(restore(&attrs, &originals));
        let left = if failed.is_empty() {
            "every knob was put back as it was found".to_string()
        } else {
            format!(
                "these could not be put back: {}; run {}",
                failed.join("; "),
                script.display()
            )
        };
        return Err(match e {
            BenchError::Interrupted => {
                WizardError::CommandInterrupted(format!("tune stopped; {left}"))
            }
            e => WizardError::Other(anyhow::anyhow!("tune: {e}; {left}")),
        });
    }
    let kept_queue = report.kept.iter().any(|(k, _)| k.kind == Kind::Queue);
    let kept_selector = report
        .kept
        .iter()
        .find(|(k, _)| k.kind == Kind::Selector)
        .map(|(_, v)| v.clone());
    if f.persist && kept_queue {
        let rule = udev_rule(&target.wwid, &report.kept)
            .map_err(|e| WizardError::Other(anyhow::anyhow!("tune --persist: {e}")))?;
        host.write(Path::new(UDEV_RULE), &rule, 0o644)
            .map_err(|e: HostError| WizardError::Other(anyhow::anyhow!("tune --persist: {e}")))?;
        let _ = writeln!(out, "kept queue values written to {UDEV_RULE}");
    }
    if let (Some(value), Ok(m)) = (&kept_selector, &multipath) {
        let trial = m.trial_path();
        if f.persist {
            let persisted = persist_selector(&host, m, value)
                .map_err(|e| WizardError::Other(anyhow::anyhow!("tune --persist: {e}")))?;
            let _ = writeln!(
                out,
                "kept path selector written to {} (`undo` removes it)",
                persisted.display()
            );
        } else {
            // The daemon keeps the selector it read until it next reads its configuration;
            // no file of tune's stays behind.
            sel_host.remove_file(&trial).map_err(|e| {
                WizardError::Other(anyhow::anyhow!("removing {}: {e}", trial.display()))
            })?;
            let _ = writeln!(
                out,
                "the kept path selector lasts until multipathd next reads its configuration \
                 (reconfigure, restart, reboot); `tune --persist` writes it as a drop-in"
            );
        }
    }
    if !f.persist && kept_queue {
        let _ = writeln!(
            out,
            "the kept queue values last until reboot; `tune --persist` writes them as a udev rule"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::paths::{Balance, Group, Layout, PathRate};
    use std::cell::RefCell;
    use std::collections::BTreeMap;

    /// sysfs in memory; an attribute named in `refuse` refuses writes.
    #[derive(Default)]
    struct Fake {
        files: RefCell<BTreeMap<String, String>>,
        refuse: Vec<String>,
    }

    impl Attrs for Fake {
        fn get(&self, path: &str) -> Option<String> {
            self.files.borrow().get(path).cloned()
        }
        fn set(&self, path: &str, value: &str) -> std::io::Result<()> {
            if self.refuse.iter().any(|r| path.ends_with(r.as_str())) {
                return Err(std::io::Error::from_raw_os_error(22));
            }
            let mut f = self.files.borrow_mut();
            let slot = f
                .get_mut(path)
                .ok_or_else(|| std::io::Error::from_raw_os_error(2))?;
            // The kernel shows a scheduler as the list with the choice in brackets.
            *slot = if path.ends_with("scheduler") {
                ["mq-deadline", "none"]
                    .iter()
                    .map(|s| {
                        if *s == value {
                            format!("[{s}]")
                        } else {
                            s.to_string()
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            } else {
                value.to_string()
            };
            Ok(())
        }
    }

    fn layout() -> Layout {
        Layout {
            map: "dm-0".into(),
            groups: vec![Group {
                status: "active".into(),
                prio: Some(50),
                paths: vec!["sda".into(), "sdc".into()],
            }],
        }
    }

    fn sysfs() -> Fake {
        let f = Fake::default();
        for d in ["dm-0", "sda", "sdc"] {
            let mut m = f.files.borrow_mut();
            m.insert(format!("/sys/block/{d}/queue/nr_requests"), "256\n".into());
            m.insert(
                format!("/sys/block/{d}/queue/read_ahead_kb"),
                "128\n".into(),
            );
            m.insert(
                format!("/sys/block/{d}/queue/scheduler"),
                "[mq-deadline] none\n".into(),
            );
        }
        f
    }

    fn result(w: Workload, values: &[f64]) -> WorkloadResult {
        WorkloadResult {
            workload: w,
            unit: w.unit(),
            values: values.to_vec(),
            median: bench::median(values),
            pct_of_link: None,
            p99_ns: None,
            balance: Balance {
                map: PathRate {
                    dev: "dm-0".into(),
                    ios_per_s: None,
                    bytes_per_s: None,
                    share_pct: None,
                },
                groups: vec![],
                imbalance: None,
            },
        }
    }

    // METHOD.md's sets: a reference, a proven gain, a proven loss.
    const BASE: [f64; 5] = [729817.0, 723531.0, 728540.0, 727669.0, 721322.0];
    const GAIN: [f64; 5] = [735181.0, 735392.0, 735682.0, 733327.0, 736835.0];
    const LOSS: [f64; 5] = [719817.0, 713531.0, 718540.0, 717669.0, 711322.0];

    fn nr(f: &Fake, dev: &str) -> String {
        current_value(
            &f.get(&format!("/sys/block/{dev}/queue/nr_requests"))
                .unwrap(),
        )
    }

    /// A bench that reads the knobs as they are when it runs: `script` maps
    /// "nr_requests value/bench number" to the values measured.
    type Script<'a> = dyn Fn(&str, usize) -> Result<[f64; 5], BenchError> + 'a;

    fn run(
        f: &Fake,
        knobs: &[Knob],
        script: &Script<'_>,
    ) -> (Result<(), BenchError>, Report, Vec<String>) {
        let mut report = Report::default();
        let labels = RefCell::new(Vec::new());
        let count = RefCell::new(0);
        let mut measure = |label: &str| {
            labels.borrow_mut().push(label.to_string());
            *count.borrow_mut() += 1;
            let now = nr(f, "dm-0");
            // Every device of a knob carries the same value while it is benched.
            assert_eq!(nr(f, "sda"), now);
            assert_eq!(nr(f, "sdc"), now);
            let v = script(&now, *count.borrow())?;
            Ok(vec![result(Workload::Rand4kRead, &v)])
        };
        let reference = vec![result(Workload::Rand4kRead, &BASE)];
        let sys = Sys {
            attrs: f,
            selector: Err("no multipathd in this test"),
        };
        let r = tune_loop(&sys, knobs, &layout(), reference, &mut measure, &mut report);
        (r, report, labels.into_inner())
    }

    fn nr_knob() -> Vec<Knob> {
        select_knobs(&["nr_requests".to_string()]).unwrap()
    }

    #[test]
    fn a_value_proven_twice_is_kept_and_stays_set() {
        let f = sysfs();
        let (r, report, labels) = run(&f, &nr_knob(), &|now, _| {
            Ok(if now == "1024" { GAIN } else { BASE })
        });
        r.unwrap();
        assert_eq!(
            labels,
            [
                "nr_requests-64",
                "nr_requests-1024",
                "nr_requests-1024-confirm"
            ]
        );
        assert_eq!(nr(&f, "dm-0"), "1024");
        assert_eq!(nr(&f, "sdc"), "1024");
        assert_eq!(report.kept.len(), 1);
        let table = render_table(&report);
        assert!(table.contains("nr_requests (256 -> 1024) | rand4k-read | 727669     | 735392     | +1.25% +/- 0.547% | yes"), "{table}");
        assert!(table.contains("nr_requests (256 -> 64)   | rand4k-read | 727669     | 727669     | no difference     | no"), "{table}");
        assert!(table.contains("2 values tried, 2 comparisons"), "{table}");
        assert!(table.contains("kept: nr_requests=1024"), "{table}");
    }

    #[test]
    fn a_gain_the_confirming_bench_does_not_prove_again_is_put_back() {
        let f = sysfs();
        let (r, report, _) = run(&f, &nr_knob(), &|now, n| {
            // The gain shows once (bench 2), then never again: chance.
            Ok(if now == "1024" && n == 2 { GAIN } else { BASE })
        });
        r.unwrap();
        assert_eq!(nr(&f, "dm-0"), "256");
        assert_eq!(nr(&f, "sda"), "256");
        assert!(report.kept.is_empty());
        let table = render_table(&report);
        assert!(table.contains("not confirmed"), "{table}");
        assert!(
            table.contains("kept: nothing (every knob is as it was found)"),
            "{table}"
        );
    }

    #[test]
    fn a_proven_regression_is_never_confirmed_nor_kept() {
        let f = sysfs();
        let (r, report, labels) = run(&f, &nr_knob(), &|now, _| {
            Ok(if now == "256" { BASE } else { LOSS })
        });
        r.unwrap();
        assert_eq!(labels.len(), 2, "no confirming bench: {labels:?}");
        assert_eq!(nr(&f, "dm-0"), "256");
        assert!(report.kept.is_empty());
        assert!(render_table(&report).contains("-1.38% +/-"));
    }

    #[test]
    fn an_error_mid_way_leaves_every_knob_to_the_restore() {
        let f = sysfs();
        let knobs = select_knobs(&["nr_requests".into(), "read_ahead_kb".into()]).unwrap();
        let mut originals = Vec::new();
        for k in &knobs {
            for d in devices(k, &layout()) {
                let path = attr_path(&d, k);
                let value = current_value(&f.get(&path).unwrap());
                originals.push(Original { path, value });
            }
        }
        // nr_requests=1024 is kept; then the read_ahead_kb trial is interrupted.
        let (r, _, _) = run(&f, &knobs, &|now, n| {
            if n >= 4 {
                return Err(BenchError::Interrupted);
            }
            Ok(if now == "1024" { GAIN } else { BASE })
        });
        assert!(matches!(r, Err(BenchError::Interrupted)));
        // The knob being tried went back at once; the kept one waits for the restore.
        assert_eq!(
            f.get("/sys/block/sdc/queue/read_ahead_kb").as_deref(),
            Some("128")
        );
        assert_eq!(nr(&f, "dm-0"), "1024");
        assert!(restore(&f, &originals).is_empty());
        for d in ["dm-0", "sda", "sdc"] {
            assert_eq!(nr(&f, d), "256");
        }
        let script = restore_script("", &originals);
        assert!(script.contains("echo 256 > /sys/block/sda/queue/nr_requests || echo"));
        assert!(script.contains("echo 128 > /sys/block/dm-0/queue/read_ahead_kb || echo"));
    }

    #[test]
    fn a_value_the_kernel_refuses_is_skipped_and_the_knob_put_back() {
        let mut f = sysfs();
        f.refuse = vec!["sdc/queue/nr_requests".into()];
        let (r, report, labels) = run(&f, &nr_knob(), &|_, _| Ok(BASE));
        r.unwrap();
        assert!(labels.is_empty(), "{labels:?}");
        assert_eq!(report.skipped.len(), 2, "{:?}", report.skipped);
        assert!(report.skipped[0].contains("sdc"), "{:?}", report.skipped);
        assert_eq!(nr(&f, "dm-0"), "256");
    }

    #[test]
    fn knobs_values_and_the_persisted_rule() {
        assert_eq!(current_value("[mq-deadline] none\n"), "mq-deadline");
        assert_eq!(current_value("mq-deadline [none]"), "none");
        assert_eq!(current_value(" 256\n"), "256");
        assert!(select_knobs(&["nr_request".into()])
            .unwrap_err()
            .contains("nr_requests"));
        assert_eq!(select_knobs(&[]).unwrap().len(), KNOBS.len());
        let qd = select_knobs(&["queue_depth".into()]).unwrap();
        assert_eq!(devices(&qd[0], &layout()), ["sda", "sdc"]);
        let rule = udev_rule(
            "3600a098000af40f5",
            &[(qd[0], "64".into()), (nr_knob()[0], "1024".into())],
        )
        .unwrap();
        assert!(
            rule.starts_with("# Written by `iser-wizard tune --persist`"),
            "{rule}"
        );
        assert!(rule.contains("KERNEL==\"sd*[!0-9]\", ENV{ID_SERIAL}==\"3600a098000af40f5\", ATTR{device/queue_depth}=\"64\"\n"), "{rule}");
        assert!(
            rule.contains(
                "ENV{DM_UUID}==\"mpath-3600a098000af40f5\", ATTR{queue/nr_requests}=\"1024\"\n"
            ),
            "{rule}"
        );
        // queue_depth is a path attribute: no map line for it.
        assert_eq!(rule.matches("device/queue_depth").count(), 1);
        let plan = Plan {
            runs: 3,
            runtime: 5,
            ramp: 1,
            size: None,
            cpus: 2,
            workloads: vec![Workload::Rand4kRead, Workload::Seq1mRead],
        };
        // A reference, 2 + 1 trials, 2 confirmations: 6 benches of 2 x 3 x 6 s.
        let tries = vec![
            (nr_knob()[0], vec!["64".into(), "1024".into()]),
            (qd[0], vec!["32".into()]),
        ];
        assert_eq!(longest_seconds(&tries, &plan, 0), 6 * 36);
        // A warm-up of 4 s per workload before each bench.
        assert_eq!(longest_seconds(&tries, &plan, 4), 6 * (36 + 8));
        // A knob with nothing to try costs no confirming bench.
        let none = vec![(qd[0], Vec::new())];
        assert_eq!(longest_seconds(&none, &plan, 0), 36);
    }

    /// A map's selector in memory. A reload (any `set`) restacks the map's read_ahead_kb,
    /// as a dm table reload does; a value in `refuse` never shows on the map.
    struct FakeSel<'a> {
        interrupted: bool,
        now: RefCell<String>,
        refuse: Vec<&'static str>,
        fail_back: bool,
        sysfs: &'a Fake,
        calls: RefCell<Vec<String>>,
    }

    impl<'a> FakeSel<'a> {
        fn new(sysfs: &'a Fake) -> Self {
            FakeSel {
                interrupted: false,
                now: RefCell::new("service-time 0".into()),
                refuse: Vec::new(),
                fail_back: false,
                sysfs,
                calls: RefCell::new(Vec::new()),
            }
        }
    }

    impl selector::Selector for FakeSel<'_> {
        fn current(&self) -> Result<String, String> {
            Ok(self.now.borrow().clone())
        }
        fn set(&self, value: &str, original: &str) -> Result<(), String> {
            self.calls.borrow_mut().push(value.to_string());
            self.sysfs
                .files
                .borrow_mut()
                .insert("/sys/block/dm-0/queue/read_ahead_kb".into(), "8192".into());
            if value == original && self.fail_back {
                return Err("multipathd reconfigure: exit 1".into());
            }
            if self.refuse.contains(&value) {
                return Err(format!("the map shows {:?}", self.now.borrow()));
            }
            *self.now.borrow_mut() = value.to_string();
            Ok(())
        }
        fn interrupted(&self) -> bool {
            self.interrupted
        }
    }

    fn sel_knob() -> Vec<Knob> {
        select_knobs(&["path_selector".to_string()]).unwrap()
    }

    /// Run the selector knob: `script` maps the selector in use to the values measured.
    fn run_sel(
        f: &Fake,
        sel: &FakeSel<'_>,
        script: &dyn Fn(&str) -> Result<[f64; 5], BenchError>,
    ) -> (Result<(), BenchError>, Report, Vec<String>) {
        let mut report = Report::default();
        let labels = RefCell::new(Vec::new());
        let mut measure = |label: &str| {
            labels.borrow_mut().push(label.to_string());
            // One knob at a time: the reload's restack was put back before the bench.
            assert_eq!(
                f.get("/sys/block/dm-0/queue/read_ahead_kb").as_deref(),
                Some("128")
            );
            let v = script(&sel.now.borrow())?;
            Ok(vec![result(Workload::Rand4kRead, &v)])
        };
        let sys = Sys {
            attrs: f,
            selector: Ok(sel),
        };
        let reference = vec![result(Workload::Rand4kRead, &BASE)];
        let r = tune_loop(
            &sys,
            &sel_knob(),
            &layout(),
            reference,
            &mut measure,
            &mut report,
        );
        (r, report, labels.into_inner())
    }

    #[test]
    fn each_other_selector_is_tried_then_the_map_goes_back() {
        let f = sysfs();
        let sel = FakeSel::new(&f);
        let (r, report, labels) = run_sel(&f, &sel, &|_| Ok(BASE));
        r.unwrap();
        assert_eq!(
            labels,
            [
                "path_selector-queue-length_0",
                "path_selector-round-robin_0"
            ]
        );
        assert_eq!(
            *sel.calls.borrow(),
            [
                "queue-length 0",
                "service-time 0",
                "round-robin 0",
                "service-time 0"
            ]
        );
        assert_eq!(*sel.now.borrow(), "service-time 0");
        assert_eq!(
            f.get("/sys/block/dm-0/queue/read_ahead_kb").as_deref(),
            Some("128")
        );
        let table = render_table(&report);
        assert!(
            table.contains("path_selector (service-time 0 -> round-robin 0)  | rand4k-read"),
            "{table}"
        );
        assert!(report.kept.is_empty());
    }

    #[test]
    fn a_selector_proven_twice_is_kept_on_the_map() {
        let f = sysfs();
        let sel = FakeSel::new(&f);
        let (r, report, labels) = run_sel(&f, &sel, &|now| {
            Ok(if now == "round-robin 0" { GAIN } else { BASE })
        });
        r.unwrap();
        assert_eq!(
            labels.last().unwrap(),
            "path_selector-round-robin_0-confirm"
        );
        assert_eq!(*sel.now.borrow(), "round-robin 0");
        assert_eq!(
            report.kept,
            vec![(sel_knob()[0], "round-robin 0".to_string())]
        );
        // The selector is no udev attribute: the rule carries no line for it.
        let rule = udev_rule("3600a0", &report.kept).unwrap();
        assert!(!rule.contains("path_selector"), "{rule}");
    }

    #[test]
    fn a_selector_the_map_does_not_take_is_not_tried_and_the_map_goes_back() {
        let f = sysfs();
        let mut sel = FakeSel::new(&f);
        sel.refuse = vec!["queue-length 0"];
        let (r, report, labels) = run_sel(&f, &sel, &|_| Ok(BASE));
        r.unwrap();
        assert_eq!(labels, ["path_selector-round-robin_0"]);
        assert_eq!(report.skipped.len(), 1, "{:?}", report.skipped);
        assert!(
            report.skipped[0].starts_with("path_selector queue-length 0: the map shows"),
            "{:?}",
            report.skipped
        );
        assert_eq!(*sel.now.borrow(), "service-time 0");
        assert_eq!(report.tried, 1);
    }

    #[test]
    fn an_interrupted_selector_trial_puts_the_map_back_first() {
        let f = sysfs();
        let sel = FakeSel::new(&f);
        let (r, _, _) = run_sel(&f, &sel, &|now| {
            if now == "service-time 0" {
                Ok(BASE)
            } else {
                Err(BenchError::Interrupted)
            }
        });
        assert!(matches!(r, Err(BenchError::Interrupted)));
        assert_eq!(*sel.now.borrow(), "service-time 0");
        assert_eq!(
            f.get("/sys/block/dm-0/queue/read_ahead_kb").as_deref(),
            Some("128")
        );
    }

    #[test]
    fn an_interruption_while_the_map_settles_stops_the_loop() {
        let f = sysfs();
        let mut sel = FakeSel::new(&f);
        // The wait for queue-length 0 ended on the interruption.
        sel.refuse = vec!["queue-length 0"];
        sel.interrupted = true;
        let (r, _, labels) = run_sel(&f, &sel, &|_| Ok(BASE));
        assert!(matches!(r, Err(BenchError::Interrupted)), "{r:?}");
        assert!(labels.is_empty());
        assert_eq!(*sel.calls.borrow(), ["queue-length 0", "service-time 0"]);
        assert_eq!(*sel.now.borrow(), "service-time 0");
    }

    #[test]
    fn a_selector_that_cannot_be_put_back_is_an_error() {
        let f = sysfs();
        let mut sel = FakeSel::new(&f);
        sel.refuse = vec!["queue-length 0"];
        sel.fail_back = true;
        let (r, _, labels) = run_sel(&f, &sel, &|_| Ok(BASE));
        let e = r.unwrap_err().to_string();
        assert!(e.contains("putting path_selector back"), "{e}");
        assert!(labels.is_empty());
    }

    #[test]
    fn without_multipathd_the_selector_is_not_tried() {
        let f = sysfs();
        let sys = Sys {
            attrs: &f,
            selector: Err("multipathd show config: not installed"),
        };
        let mut report = Report::default();
        let mut measure =
            |_: &str| -> Result<Vec<WorkloadResult>, BenchError> { panic!("nothing to bench") };
        let reference = vec![result(Workload::Rand4kRead, &BASE)];
        tune_loop(
            &sys,
            &sel_knob(),
            &layout(),
            reference,
            &mut measure,
            &mut report,
        )
        .unwrap();
        assert_eq!(
            report.skipped,
            ["path_selector: multipathd show config: not installed"]
        );
    }

    fn target() -> bench::Target {
        bench::Target {
            mount_point: "/mnt/vol".into(),
            wwid: "3600a0".into(),
            layout: layout(),
            ports: vec![],
        }
    }

    #[test]
    fn the_dry_run_lists_the_selector_its_values_and_the_time() {
        let plan = Plan {
            runs: 3,
            runtime: 2,
            ramp: 1,
            size: None,
            cpus: 2,
            workloads: vec![Workload::Rand4kRead],
        };
        let config = selector::Config {
            config_dir: "/etc/multipath/conf.d".into(),
            default_selector: Some("service-time 0".into()),
        };
        let tries: Vec<Try> = vec![
            (
                sel_knob()[0],
                Ok("service-time 0".into()),
                vec!["queue-length 0".into(), "round-robin 0".into()],
            ),
            (
                nr_knob()[0],
                Ok("256".into()),
                vec!["64".into(), "1024".into()],
            ),
        ];
        let trial = PathBuf::from("/etc/multipath/conf.d/99-iser-wizard-tune-trial.conf");
        let text = dry_run_text(&target(), &plan, 1, &tries, Some((&config, trial)));
        assert!(text.contains("after a 1 s warm-up"), "{text}");
        assert!(
            text.contains("  path_selector   now service-time 0 try queue-length 0, round-robin 0"),
            "{text}"
        );
        assert!(
            text.contains("on 3600a0 (map dm-0; drop-in /etc/multipath/conf.d/99-iser-wizard-tune-trial.conf)"),
            "{text}"
        );
        assert!(
            text.contains(
                "defaults path_selector service-time 0, drop-ins in /etc/multipath/conf.d"
            ),
            "{text}"
        );
        assert!(text.contains("  nr_requests     now 256"), "{text}");
        // 1 + 2 + 1 + 2 + 1 = 7 benches of 3 x 3 s + 1 s of warm-up.
        assert!(text.contains("at most 1 min 10 s"), "{text}");
        let none: Vec<Try> = vec![(sel_knob()[0], Err("no multipathd".into()), vec![])];
        let text = dry_run_text(&target(), &plan, 0, &none, None);
        assert!(
            text.contains("now (not tried: no multipathd) try -"),
            "{text}"
        );
    }

    #[test]
    fn persist_writes_the_kept_selector_as_a_drop_in_undo_removes() {
        use crate::steps::fake::FakeHost;
        use crate::steps::host::CmdOutput;
        let root = tempfile::tempdir().unwrap();
        let backups = tempfile::tempdir().unwrap();
        let host = FakeHost::with_root(root.path(), Some(backups.path().to_path_buf()));
        let sel_host = FakeHost::with_root(root.path(), None);
        let m = selector::Multipath {
            host: &sel_host,
            interrupt: crate::steps::host::Interrupt::new(),
            wwid: "360014050c0ffe0012344abc9def00000".into(),
            config: selector::Config {
                config_dir: "/etc/multipath/conf.d".into(),
                default_selector: None,
            },
            settle: std::time::Duration::from_secs(2),
        };
        let trial = m.trial_path().display().to_string();
        sel_host.put_file(&trial, "trial\n");
        sel_host.expect(&["multipathd", "reconfigure"], CmdOutput::ok(""));
        sel_host.allow(
            &["multipath", "-ll", "360014050c0ffe0012344abc9def00000"],
            CmdOutput::ok(
                "360014050c0ffe0012344abc9def00000 dm-0 LIO-ORG,FILEIO\n\
                 size=512M features='0' hwhandler='1 alua' wp=rw\n\
                 `-+- policy='round-robin 0' prio=50 status=active\n\
                 \x20 `- 2:0:0:0 sda 8:0 active ready running\n",
            ),
        );
        let p = persist_selector(&host, &m, "round-robin 0").unwrap();
        assert_eq!(
            p,
            Path::new("/etc/multipath/conf.d/90-iser-wizard-tune.conf")
        );
        let text = std::fs::read_to_string(host.path(&p.display().to_string())).unwrap();
        assert!(text.contains("path_selector \"round-robin 0\""), "{text}");
        assert!(text.contains("kept by `tune --persist`"), "{text}");
        assert!(!host.path(&trial).exists(), "the trial drop-in is gone");
        let created = std::fs::read_to_string(backups.path().join("CREATED")).unwrap();
        assert!(
            created
                .lines()
                .any(|l| l == "/etc/multipath/conf.d/90-iser-wizard-tune.conf"),
            "{created}"
        );
        sel_host.finish();
        host.finish();
    }
}
