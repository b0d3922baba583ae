//! Where `run` reports what each step did: the seam between the engine and its readers.
//!
//! The engine tells a [`Report`] each step's outcome (done, skipped, planned, failed...) as it
//! happens, whatever the output; the report decides what to print:
//! - [`Human`] prints nothing more: the engine's own text on standard output already says it;
//! - [`JsonLines`] (`run --json`, CONTRACT.md) prints one JSON object per line per step, and
//!   at the end one summary line ([`JsonLines::summary`]), on standard output; the human text
//!   then goes to standard error, so a caller (Ansible) still has it for its log and its diff.
//!
//! Contract of the lines (`schema_version` 1; keys may be added, never renamed or removed):
//! - a step: `{"type":"step","step":NAME,"status":S,"changes":N,"seconds":F}`, plus
//!   `"message"` when it did not complete and `"plan"` (the rendered plan) on a dry run. `S`
//!   is `done` (N changes applied), `skipped` (done by the interrupted run this one resumes),
//!   `planned` (dry run: N changes would be made), `unplanned` (dry run: could not plan),
//!   `failed`, `refused` (exit 3: nothing was changed by it) or `interrupted`.
//! - the summary, last: `{"type":"summary","schema_version":1,"changed":B,"changes":N,
//!   "planned":N,"dry_run":B,"exit":CODE,"state_dir":DIR,"worksheet":PATH|null}`, plus
//!   `"message"` when the run did not succeed. `changed` is true when this run changed the
//!   host (never on a dry run; `planned` counts what a dry run would change); `worksheet` is
//!   the worksheet the run left (`iser-wizard worksheet` renders it), null on a dry run.
//!   The summary's counts leave out the `verify` step's action: its test file is written,
//!   read back and removed on every run, so it leaves the host as it found it; counting it
//!   would make every run of a configured host "changed" (its own line still says 1).

use std::cell::{Cell, RefCell};
use std::io::Write;
use std::path::Path;

use serde::Serialize;

use crate::steps::StepName;

/// The version of the `run --json` lines.
pub const SCHEMA_VERSION: u32 = 1;

/// How a step ended in this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StepStatus {
    /// Applied and verified.
    Done,
    /// Completed by the interrupted run this one resumes.
    Skipped,
    /// Dry run: planned (the changes it would make).
    Planned,
    /// Dry run: the step could not be planned.
    Unplanned,
    /// The step failed (exit 1).
    Failed,
    /// The step refused for safety (exit 3).
    Refused,
    /// Ctrl-C, SIGTERM, or the operator declined (exit 130).
    Interrupted,
}

/// One step's outcome, as the engine reports it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepReport {
    /// The step.
    pub step: StepName,
    /// How it ended.
    pub status: StepStatus,
    /// Changes applied (or planned, on a dry run).
    pub changes: usize,
    /// Wall time of the step in this run.
    pub seconds: f64,
    /// Why it did not complete.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The rendered plan (dry run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
}

/// What the engine tells as each step ends. Called through a shared reference, since the
/// engine reports from places that only borrow it.
pub trait Report {
    /// A step ended (in any way).
    fn step(&self, report: &StepReport);
}

/// The human output: the engine's text already says everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct Human;

impl Report for Human {
    fn step(&self, _: &StepReport) {}
}

/// `run --json`: one line per step as it ends, then [`JsonLines::summary`].
pub struct JsonLines<'w> {
    out: RefCell<&'w mut dyn Write>,
    applied: Cell<usize>,
    planned: Cell<usize>,
}

impl std::fmt::Debug for JsonLines<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonLines")
            .field("applied", &self.applied.get())
            .field("planned", &self.planned.get())
            .finish()
    }
}

#[derive(Serialize)]
struct Line<'a, T: Serialize> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(flatten)]
    body: &'a T,
}

/// The last line of `run --json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Whether this run changed the host.
    pub changed: bool,
    /// Changes applied by this run.
    pub changes: usize,
    /// Changes a dry run would make.
    pub planned: usize,
    /// Whether this was a dry run.
    pub dry_run: bool,
    /// The exit code of the run.
    pub exit: i32,
    /// The state directory.
    pub state_dir: String,
    /// The worksheet the run left, if it left one.
    pub worksheet: Option<String>,
    /// Why the run did not succeed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl<'w> JsonLines<'w> {
    /// Lines written to `out` (standard output).
    pub fn new(out: &'w mut dyn Write) -> Self {
        JsonLines {
            out: RefCell::new(out),
            applied: Cell::new(0),
            planned: Cell::new(0),
        }
    }

    fn line<T: Serialize>(&self, kind: &'static str, body: &T) {
        // Serialising these plain structs cannot fail; a closed stdout is the caller's end.
        if let Ok(text) = serde_json::to_string(&Line { kind, body }) {
            let mut out = self.out.borrow_mut();
            let _ = writeln!(out, "{text}");
            let _ = out.flush();
        }
    }

    /// Print the summary line of a run that ended with `exit` (and `message` unless it
    /// succeeded); `state_dir` and `dry_run` are the run's.
    pub fn summary(&self, exit: i32, message: Option<String>, state_dir: &Path, dry_run: bool) {
        let worksheet = state_dir.join("worksheet.json");
        let summary = Summary {
            schema_version: SCHEMA_VERSION,
            changed: !dry_run && self.applied.get() > 0,
            changes: self.applied.get(),
            planned: self.planned.get(),
            dry_run,
            exit,
            state_dir: state_dir.display().to_string(),
            worksheet: (!dry_run && worksheet.is_file()).then(|| worksheet.display().to_string()),
            message,
        };
        self.line("summary", &summary);
    }
}

/// Whether a step's actions leave the host as they found it (see the module's contract).
fn leaves_nothing(step: StepName) -> bool {
    step == StepName::Verify
}

impl Report for JsonLines<'_> {
    fn step(&self, report: &StepReport) {
        if leaves_nothing(report.step) {
            self.line("step", report);
            return;
        }
        match report.status {
            StepStatus::Planned => self.planned.set(self.planned.get() + report.changes),
            // A failed step's changes were made too: the host changed.
            _ => self.applied.set(self.applied.get() + report.changes),
        }
        self.line("step", report);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(status: StepStatus, changes: usize) -> StepReport {
        StepReport {
            step: StepName::Iscsi,
            status,
            changes,
            seconds: 0.25,
            message: (status == StepStatus::Failed).then(|| "iscsiadm said no".into()),
            plan: None,
        }
    }

    fn lines(buf: &[u8]) -> Vec<serde_json::Value> {
        std::str::from_utf8(buf)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn one_line_per_step_then_a_summary_counting_applied_changes() {
        let mut buf = Vec::new();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("worksheet.json"), "{}").unwrap();
        {
            let j = JsonLines::new(&mut buf);
            j.step(&step(StepStatus::Skipped, 0));
            j.step(&step(StepStatus::Done, 2));
            j.step(&step(StepStatus::Failed, 1));
            j.summary(1, Some("step iscsi failed".into()), dir.path(), false);
        }
        let v = lines(&buf);
        assert_eq!(v.len(), 4);
        assert_eq!(v[0]["type"], "step");
        assert_eq!(v[0]["status"], "skipped");
        assert_eq!(v[1]["step"], "iscsi");
        assert_eq!(v[1]["changes"], 2);
        assert!(v[1].get("message").is_none());
        assert_eq!(v[2]["message"], "iscsiadm said no");
        assert_eq!(v[3]["type"], "summary");
        assert_eq!(v[3]["changed"], true);
        assert_eq!(v[3]["changes"], 3);
        assert_eq!(v[3]["exit"], 1);
        let ws = dir.path().join("worksheet.json").display().to_string();
        assert_eq!(v[3]["worksheet"], ws.as_str());
    }

    #[test]
    fn a_dry_run_plans_but_never_changed_and_leaves_no_worksheet() {
        let mut buf = Vec::new();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("worksheet.json"), "{}").unwrap();
        {
            let j = JsonLines::new(&mut buf);
            j.step(&step(StepStatus::Planned, 3));
            j.summary(0, None, dir.path(), true);
        }
        let v = lines(&buf);
        assert_eq!(v[1]["changed"], false);
        assert_eq!(v[1]["planned"], 3);
        assert_eq!(v[1]["changes"], 0);
        assert!(v[1]["worksheet"].is_null());
        assert!(v[1].get("message").is_none());
    }

    #[test]
    fn a_run_with_nothing_to_do_did_not_change() {
        let mut buf = Vec::new();
        let dir = tempfile::tempdir().unwrap();
        {
            let j = JsonLines::new(&mut buf);
            j.step(&step(StepStatus::Done, 0));
            j.summary(0, None, dir.path(), false);
        }
        let v = lines(&buf);
        assert_eq!(v[1]["changed"], false);
        assert!(v[1]["worksheet"].is_null(), "no worksheet.json there");
    }

    #[test]
    fn the_verify_steps_read_back_is_not_a_change_of_the_host() {
        let mut buf = Vec::new();
        let dir = tempfile::tempdir().unwrap();
        {
            let j = JsonLines::new(&mut buf);
            let mut verify = step(StepStatus::Done, 1);
            verify.step = StepName::Verify;
            j.step(&step(StepStatus::Done, 0));
            j.step(&verify);
            verify.status = StepStatus::Planned;
            j.step(&verify);
            j.summary(0, None, dir.path(), false);
        }
        let v = lines(&buf);
        assert_eq!(v[1]["changes"], 1, "its own line says what it did");
        assert_eq!(v[3]["changed"], false);
        assert_eq!(v[3]["changes"], 0);
        assert_eq!(v[3]["planned"], 0);
    }
}
