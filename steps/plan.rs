//! A plan is a value: the same list drives `--dry-run`, the confirmation screen, the log and
//! the apply. Nothing is written that the operator was not shown.

use std::fmt::Write as _;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::steps::host::Cmd;
use crate::steps::StepName;

/// One change a step will make.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Run a command that changes the host.
    Run {
        /// The command.
        cmd: Cmd,
        /// Why, in the operator's words.
        why: String,
        /// Exit statuses that count as success besides 0 (e.g. iscsiadm 15, "session exists").
        ok_codes: Vec<i32>,
    },
    /// Write a file (atomically, backed up on its first change).
    Write {
        /// Path on the target system.
        path: PathBuf,
        /// The current content (`None`: the file does not exist).
        old: Option<String>,
        /// The content to write.
        new: String,
        /// Mode of a new file (an existing file keeps its own).
        mode: u32,
        /// Why.
        why: String,
    },
    /// Work the step does in its own code because it depends on what earlier actions left
    /// (waiting for a multipath map, finding the partition node); described here in full.
    Task {
        /// The step's own identifier of the task.
        id: String,
        /// What will be done, in the operator's words.
        description: String,
    },
}

impl Action {
    /// A command action.
    pub fn run(cmd: Cmd, why: impl Into<String>) -> Self {
        Action::Run {
            cmd,
            why: why.into(),
            ok_codes: Vec::new(),
        }
    }

    /// A file action.
    pub fn write(
        path: impl Into<PathBuf>,
        old: Option<String>,
        new: String,
        mode: u32,
        why: impl Into<String>,
    ) -> Self {
        Action::Write {
            path: path.into(),
            old,
            new,
            mode,
            why: why.into(),
        }
    }

    /// A task action.
    pub fn task(id: impl Into<String>, description: impl Into<String>) -> Self {
        Action::Task {
            id: id.into(),
            description: description.into(),
        }
    }

    /// One line: what the action does.
    pub fn headline(&self) -> String {
        match self {
            Action::Run { cmd, why, .. } => format!("run   {cmd}    # {why}"),
            Action::Write { path, old, why, .. } => format!(
                "{} {}    # {why}",
                if old.is_some() { "edit " } else { "create" },
                path.display()
            ),
            Action::Task { description, .. } => format!("then  {description}"),
        }
    }
}

/// The changes one step will make, and what the step noticed while planning.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The step.
    pub step: StepName,
    /// Changes, in order.
    pub actions: Vec<Action>,
    /// Findings worth showing (a subnet manager already on the fabric, a skipped part).
    pub notes: Vec<String>,
    /// Values this plan shows as `<placeholders>` because only a real run learns them (a
    /// dry run on a host that is not prepared yet: a tool preflight would install, a
    /// session that does not exist yet).
    pub learned: Vec<String>,
}

impl Plan {
    /// An empty plan.
    pub fn new(step: StepName) -> Self {
        Plan {
            step,
            actions: Vec::new(),
            notes: Vec::new(),
            learned: Vec::new(),
        }
    }

    /// A value only a real run learns, shown as `<what>` in commands and files: the plan
    /// says once that it has such values. Use the returned text where the value would go.
    pub fn learn(&mut self, what: &str) -> String {
        if !self.learned.iter().any(|w| w == what) {
            self.learned.push(what.to_string());
        }
        placeholder(what)
    }

    /// Nothing to change.
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }

    /// Add an action.
    pub fn push(&mut self, a: Action) -> &mut Self {
        self.actions.push(a);
        self
    }

    /// Add a note.
    pub fn note(&mut self, n: impl Into<String>) -> &mut Self {
        self.notes.push(n.into());
        self
    }

    /// The plan as shown to the operator: notes, then each action, file edits as unified
    /// diffs.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for n in &self.notes {
            let _ = writeln!(out, "  note: {n}");
        }
        if self.actions.is_empty() {
            let _ = writeln!(out, "  nothing to change");
            return out;
        }
        for (i, a) in self.actions.iter().enumerate() {
            let _ = writeln!(out, "  {:>2}. {}", i + 1, a.headline());
            if let Action::Write { path, old, new, .. } = a {
                for line in unified_diff(path, old.as_deref(), new).lines() {
                    let _ = writeln!(out, "        {line}");
                }
            }
        }
        out
    }
}

/// How a value a real run learns is shown: `<what>`.
pub fn placeholder(what: &str) -> String {
    format!("<{what}>")
}

/// A unified diff of a file change, with three lines of context.
pub fn unified_diff(path: &std::path::Path, old: Option<&str>, new: &str) -> String {
    let old_name = if old.is_some() {
        format!("a{}", path.display())
    } else {
        "/dev/null".to_string()
    };
    let new_name = format!("b{}", path.display());
    similar::TextDiff::from_lines(old.unwrap_or(""), new)
        .unified_diff()
        .context_radius(3)
        .header(&old_name, &new_name)
        .to_string()
}

/// The record of a step having completed, for state and the worksheet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Completed {
    /// The step.
    pub step: StepName,
    /// When it completed (RFC 3339, UTC).
    pub at: String,
    /// How many changes it made.
    pub changes: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_commands_and_diffs() {
        let mut p = Plan::new(StepName::Iscsi);
        p.note("iscsid already running");
        p.push(Action::run(
            Cmd::change(["modprobe", "ib_iser"]),
            "load the iSER initiator",
        ));
        p.push(Action::write(
            "/etc/iscsi/iscsid.conf",
            Some("a\nnode.startup = manual\nb\n".into()),
            "a\nnode.startup = automatic\nb\n".into(),
            0o600,
            "log in at boot",
        ));
        let text = p.render();
        assert!(text.contains("note: iscsid already running"), "{text}");
        assert!(text.contains("1. run   modprobe ib_iser"), "{text}");
        assert!(text.contains("2. edit  /etc/iscsi/iscsid.conf"), "{text}");
        assert!(text.contains("-node.startup = manual"), "{text}");
        assert!(text.contains("+node.startup = automatic"), "{text}");
        assert!(text.contains("--- a/etc/iscsi/iscsid.conf"), "{text}");
    }

    #[test]
    fn a_new_file_diffs_against_dev_null() {
        let d = unified_diff(std::path::Path::new("/etc/x"), None, "hello\n");
        assert!(d.starts_with("--- /dev/null\n+++ b/etc/x\n"), "{d}");
        assert!(d.contains("+hello"), "{d}");
    }

    #[test]
    fn learned_values_show_as_placeholders_once() {
        let mut p = Plan::new(StepName::Iscsi);
        assert_eq!(
            p.learn("initiator IQN from iscsi-iname"),
            "<initiator IQN from iscsi-iname>"
        );
        p.learn("initiator IQN from iscsi-iname");
        assert_eq!(p.learned, ["initiator IQN from iscsi-iname"]);
    }

    #[test]
    fn an_empty_plan_says_so() {
        assert!(Plan::new(StepName::Verify)
            .render()
            .contains("nothing to change"));
    }
}
