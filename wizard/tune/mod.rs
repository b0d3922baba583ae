//! `iser-wizard tune`: METHOD.md's loop over the run-time knobs of the attached volume's
//! block queues, one knob at a time, each value kept only when proven (see [`decide`]).
//!
//! Contract:
//! - Before the first change, every original value of every knob tried, on the map and on
//!   each of its paths, is recorded in memory and in a restore script
//!   (`<state>/tune/restore-<time>.sh`, 0700) that writes them all back.
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
//! - `--persist` writes the kept values as a udev rule (templates/tune/) through the Host
//!   seam (backed up, atomic); without it the changes last until reboot.
//! - `--dry-run` reads the current values and prints the knobs, the values it would try and
//!   the longest time it would take; it changes nothing.
//!
//! sysfs attributes are written in place (`write(2)` on the attribute), not through
//! `Host::write`, whose atomic rename cannot replace a sysfs file; the paths are resolved
//! below the host's root like every other file.

pub mod decide;

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;

use crate::bench::fio::Workload;
use crate::bench::{self, BenchError, Plan, WorkloadResult};
use crate::exit::WizardError;
use crate::state::StateDir;
use crate::steps::host::{Host, HostError};

use self::decide::{Outcome, Verdict};

/// A run-time knob of the block layer (METHOD.md "Tuning").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Knob {
    /// Its name on the command line and in the table.
    pub name: &'static str,
    /// The attribute under `/sys/block/<dev>/`.
    pub attr: &'static str,
    /// Whether it exists on the paths only (the SCSI device's queue depth).
    pub paths_only: bool,
    /// The values tried.
    pub candidates: &'static [&'static str],
}

/// Every knob, in the order they are tried.
pub const KNOBS: [Knob; 7] = [
    Knob {
        name: "queue_depth",
        attr: "device/queue_depth",
        paths_only: true,
        candidates: &["32", "64", "128"],
    },
    Knob {
        name: "scheduler",
        attr: "queue/scheduler",
        paths_only: false,
        candidates: &["none", "mq-deadline"],
    },
    Knob {
        name: "nr_requests",
        attr: "queue/nr_requests",
        paths_only: false,
        candidates: &["64", "256", "1024"],
    },
    Knob {
        name: "max_sectors_kb",
        attr: "queue/max_sectors_kb",
        paths_only: false,
        candidates: &["512", "1024"],
    },
    Knob {
        name: "read_ahead_kb",
        attr: "queue/read_ahead_kb",
        paths_only: false,
        candidates: &["128", "4096"],
    },
    Knob {
        name: "nomerges",
        attr: "queue/nomerges",
        paths_only: false,
        candidates: &["0", "2"],
    },
    Knob {
        name: "rq_affinity",
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
    /// Only these knobs (comma-separated): queue_depth, scheduler, nr_requests,
    /// max_sectors_kb, read_ahead_kb, nomerges, rq_affinity.
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
    /// Write the kept values as a udev rule, so they outlive a reboot.
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

/// The restore script: every original value written back, each line on its own so that one
/// failure does not stop the rest.
pub fn restore_script(originals: &[Original]) -> String {
    let mut s = String::from(
        "#!/bin/sh\n# Written by iser-wizard tune before its first change: writes back every \
         value it found.\n",
    );
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

/// Set a knob on its devices; the first failure is returned with the device named.
fn set_knob(attrs: &dyn Attrs, knob: &Knob, devs: &[String], value: &str) -> Result<(), String> {
    for d in devs {
        let p = attr_path(d, knob);
        attrs
            .set(&p, value)
            .map_err(|e| format!("writing {value} to {p}: {e}"))?;
    }
    Ok(())
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
    attrs: &dyn Attrs,
    knobs: &[Knob],
    layout: &bench::paths::Layout,
    mut reference: Vec<WorkloadResult>,
    measure: &mut Measure<'_>,
    report: &mut Report,
) -> Result<(), BenchError> {
    for knob in knobs {
        let devs = devices(knob, layout);
        let Some(first) = devs.first() else { continue };
        let Some(now) = attrs
            .get(&attr_path(first, knob))
            .map(|t| current_value(&t))
        else {
            report.skipped.push(format!(
                "{}: {} is absent",
                knob.name,
                attr_path(first, knob)
            ));
            continue;
        };
        let mut improving: Vec<(String, f64, Vec<usize>)> = Vec::new();
        for value in knob.candidates.iter().filter(|v| **v != now) {
            if let Err(why) = set_knob(attrs, knob, &devs, value) {
                let _ = set_knob(attrs, knob, &devs, &now);
                report.skipped.push(format!("{} {value}: {why}", knob.name));
                continue;
            }
            report.tried += 1;
            let trial = measure(&format!("{}-{value}", knob.name));
            // Back to the reference value before anything else, the trial's result or not.
            set_knob(attrs, knob, &devs, &now)
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
        set_knob(attrs, knob, &devs, &value)
            .map_err(|why| BenchError::Step(crate::steps::StepError::Failed(why)))?;
        let confirm = measure(&format!("{}-{value}-confirm", knob.name));
        let confirm = match confirm {
            Ok(c) => c,
            Err(e) => {
                let _ = set_knob(attrs, knob, &devs, &now);
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
            set_knob(attrs, knob, &devs, &now)
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
    for (k, v) in kept {
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
/// one confirming bench per knob.
pub fn longest_seconds(knobs: &[(Knob, Vec<String>)], plan: &Plan) -> u64 {
    let benches = 1 + knobs
        .iter()
        .map(|(_, v)| v.len() + usize::from(!v.is_empty()))
        .sum::<usize>();
    let per_bench = plan.workloads.len() * plan.runs * (plan.runtime + plan.ramp) as usize;
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
    // What would be tried: each knob's values other than its current one.
    let mut tries = Vec::new();
    for k in &knobs {
        let devs = devices(k, &target.layout);
        let now = devs
            .first()
            .and_then(|d| attrs.get(&attr_path(d, k)))
            .map(|t| current_value(&t));
        // An attribute the map does not have is not tried (tune_loop skips it alike).
        let values: Vec<String> = match &now {
            None => Vec::new(),
            Some(now) => k
                .candidates
                .iter()
                .filter(|v| *v != now)
                .map(|v| v.to_string())
                .collect(),
        };
        tries.push((*k, now, values));
    }
    if f.dry_run {
        let mut text = format!(
            "tune on {} ({}): one knob at a time, each value benched ({} x {} runs of {} s \
             after {} s of ramp), kept only when a confirming bench proves it again\n",
            target.mount_point,
            target.layout.map,
            plan.workloads
                .iter()
                .map(|w| w.name())
                .collect::<Vec<_>>()
                .join(", "),
            plan.runs,
            plan.runtime,
            plan.ramp
        );
        for (k, now, values) in &tries {
            text.push_str(&format!(
                "  {:<15} now {:<12} try {:<24} on {}\n",
                k.name,
                now.as_deref().unwrap_or("(absent: not tried)"),
                if values.is_empty() {
                    "-".to_string()
                } else {
                    values.join(", ")
                },
                devices(k, &target.layout).join(" ")
            ));
        }
        let pairs: Vec<(Knob, Vec<String>)> =
            tries.iter().map(|(k, _, v)| (*k, v.clone())).collect();
        let secs = longest_seconds(&pairs, &plan);
        text.push_str(&format!(
            "at most {} min {} s (a reference bench, one per value, one confirming bench per \
             knob), plus the test file's layout; nothing was changed\n",
            secs / 60,
            secs % 60
        ));
        return out
            .write_all(text.as_bytes())
            .map_err(|e| WizardError::Other(e.into()));
    }
    // Every original value, recorded before the first change.
    let mut originals = Vec::new();
    for (k, _, _) in &tries {
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
    let stamp = bench::default_label();
    let dir = f.state_dir.join("tune").join(&stamp);
    std::fs::create_dir_all(&dir)
        .map_err(|e| WizardError::Other(anyhow::anyhow!("creating {}: {e}", dir.display())))?;
    let script = dir.join("restore.sh");
    std::fs::write(&script, restore_script(&originals))
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
            let r = bench::measure(&host, &target, &plan, &t, &dir.join(label), &mut |_, _| {});
            bar.inc(1);
            r
        };
        let reference = measure("reference")?;
        tune_loop(
            &attrs,
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
        let failed = restore(&attrs, &originals);
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
    if f.persist && !report.kept.is_empty() {
        let rule = udev_rule(&target.wwid, &report.kept)
            .map_err(|e| WizardError::Other(anyhow::anyhow!("tune --persist: {e}")))?;
        host.write(Path::new(UDEV_RULE), &rule, 0o644)
            .map_err(|e: HostError| WizardError::Other(anyhow::anyhow!("tune --persist: {e}")))?;
        let _ = writeln!(out, "kept values written to {UDEV_RULE}");
    } else if !report.kept.is_empty() {
        let _ = writeln!(
            out,
            "the kept values last until reboot; `tune --persist` writes them as a udev rule"
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
        let r = tune_loop(f, knobs, &layout(), reference, &mut measure, &mut report);
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
        let script = restore_script(&originals);
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
        assert_eq!(longest_seconds(&tries, &plan), 6 * 36);
        // A knob with nothing to try costs no confirming bench.
        let none = vec![(qd[0], Vec::new())];
        assert_eq!(longest_seconds(&none, &plan), 36);
    }
}
