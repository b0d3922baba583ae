//! Errors the operator sees, and the one place they become exit codes (CONTRACT.md):
//! 0 done; 1 a step failed; 2 usage error or invalid answers (nothing changed), and a state
//! directory that cannot be taken: another command holds it, others can write to it, a file
//! in it is a symlink (nothing changed); 3 refused
//! for safety (nothing changed); 4 `status` on a host never set up; 130 interrupted (state
//! saved; `run` again resumes).
//!
//! An error is printed with its whole chain of causes (`saving state.json: writing
//! /var/lib/iser-wizard/state.json: No space left on device (os error 28)`), each cause once.

use crate::answers::Problem;
use crate::state::StateError;
use crate::steps::{AskError, HostError, StepError, StepName};

/// Why a command of the wizard did not complete.
#[derive(Debug, thiserror::Error)]
pub enum WizardError {
    /// Wrong flags or arguments, or nobody to ask.
    #[error("{0}")]
    Usage(String),
    /// The answers file has problems; nothing was touched.
    #[error("{} problem{} in the answers ({}); nothing was changed:\n{}", .problems.len(),
        if .problems.len() == 1 { "" } else { "s" }, .source_name,
        .problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    InvalidAnswers {
        /// Where the answers came from.
        source_name: String,
        /// Every problem.
        problems: Vec<Problem>,
    },
    /// A step stopped.
    #[error("step {step} {}: {source}{}", if matches!(.source, StepError::Refused { .. }) { "refused" } else { "failed" },
        changed_block(.changed))]
    Step {
        /// The step.
        step: StepName,
        /// Why.
        source: StepError,
        /// What the step had already changed.
        changed: Vec<String>,
    },
    /// A dry run found steps it could not plan.
    #[error("the dry run could not plan {} step{}: {}", .0.len(), if .0.len() == 1 { "" } else { "s" }, .0.join(", "))]
    Unplanned(Vec<String>),
    /// A command of this version that is not built yet.
    #[error("{what} is not built yet in iser-wizard {version}", what = .0, version = env!("CARGO_PKG_VERSION"))]
    NotBuilt(String),
    /// `status` found something degraded (the report says what).
    #[error("degraded: see the checks above")]
    Degraded,
    /// `status` on a state directory that records no completed run.
    #[error("not configured: no completed run is recorded in {0}; set the host up with `iser-wizard run`")]
    NotConfigured(String),
    /// The state directory cannot be taken (another command holds it, others can write to
    /// it, a file in it is a symlink); nothing was changed.
    #[error("{0}")]
    StateDirRefused(String),
    /// Interrupted (Ctrl-C, SIGTERM, or the operator declined to apply).
    #[error("interrupted{}; state is saved: run `iser-wizard run` again to resume", .0.as_ref().map(|s| format!(" at step {s}")).unwrap_or_default())]
    Interrupted(Option<StepName>),
    /// A `run` interrupted, with the command that resumes it (the flags that matter
    /// repeated), or none for a dry run, which saves nothing.
    #[error("interrupted{}; {}", .step.as_ref().map(|s| format!(" at step {s}")).unwrap_or_default(),
        match .resume { Some(r) => format!("state is saved: run `{r}` to resume"), None => "a dry run changes and saves nothing".to_string() })]
    RunInterrupted {
        /// Where.
        step: Option<StepName>,
        /// The command that resumes it.
        resume: Option<String>,
    },
    /// An error after which saving the state failed too: the first error stays the error
    /// (its exit code, its message first); the failed save is added to it.
    #[error("{first}\n  and the state could not be saved: {save}")]
    Unsaved {
        /// What stopped the command.
        first: Box<WizardError>,
        /// Why the state could not be saved after it.
        save: Box<WizardError>,
    },
    /// A command other than `run` refused for safety (exit 3); nothing was changed.
    #[error("refused: {0}")]
    Refused(String),
    /// A command other than `run` was interrupted (exit 130); the message says what was
    /// left as it was.
    #[error("interrupted: {0}")]
    CommandInterrupted(String),
    /// `detach` or `undo` stopped: refused for safety (exit 3, nothing changed), or an
    /// action failed after `changed` was done (exit 1).
    #[error("{command} {}: {source}{}", if matches!(**.source, StepError::Refused { .. }) { "refused" } else { "failed" },
        changed_block(.changed))]
    Command {
        /// The command (`detach`).
        command: &'static str,
        /// Why (boxed: it is the rare error, and keeps every `Result` small).
        source: Box<StepError>,
        /// What it had already changed.
        changed: Vec<String>,
    },
    /// Anything else (state directory unreadable, ...).
    #[error("{}", chain(.0))]
    Other(#[from] anyhow::Error),
}

/// An error and its causes, joined by ": ", leaving out a cause whose text the message so
/// far already ends with (errors that print their source as part of their own message).
fn chain(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.is_empty() {
            out = text;
        } else if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
    }
    out
}

impl From<StateError> for WizardError {
    fn from(e: StateError) -> Self {
        match e {
            StateError::Busy { .. } => WizardError::StateDirRefused(e.to_string()),
            StateError::Writable { .. } | StateError::Owner { .. } | StateError::Symlink(_) => {
                WizardError::StateDirRefused(format!("{e}; nothing was changed"))
            }
            e => WizardError::Other(anyhow::Error::new(e)),
        }
    }
}

fn changed_block(changed: &[String]) -> String {
    if changed.is_empty() {
        "\n  nothing was changed by this step".to_string()
    } else {
        format!(
            "\n  already changed by this step:\n{}",
            changed
                .iter()
                .map(|c| format!("    - {c}"))
                .collect::<Vec<_>>()
                .join("\n")
        )
    }
}

impl WizardError {
    /// A step's error, turned into the wizard's (interruptions become [`WizardError::Interrupted`]).
    pub fn from_step(step: StepName, source: StepError, changed: Vec<String>) -> Self {
        match source {
            StepError::Host(HostError::Interrupted) | StepError::Ask(AskError::Interrupted) => {
                WizardError::Interrupted(Some(step))
            }
            source => WizardError::Step {
                step,
                source,
                changed,
            },
        }
    }

    /// This error, with the result of saving the state after it: a failed save is added
    /// to the error, never put in its place (a full disk must not hide why a step failed).
    pub fn and_saved(self, saved: Result<(), WizardError>) -> Self {
        match saved {
            Ok(()) => self,
            Err(save) => WizardError::Unsaved {
                first: Box::new(self),
                save: Box::new(save),
            },
        }
    }

    /// The exit code.
    pub fn exit_code(&self) -> i32 {
        match self {
            WizardError::Unsaved { first, .. } => first.exit_code(),
            // A state directory that cannot be taken is a refusal to start with nothing
            // changed, like a usage error; 3 means the storage itself is at stake.
            WizardError::Usage(_)
            | WizardError::InvalidAnswers { .. }
            | WizardError::StateDirRefused(_) => 2,
            WizardError::NotConfigured(_) => 4,
            WizardError::Step {
                source: StepError::Refused { .. },
                ..
            } => 3,
            WizardError::Refused(_) => 3,
            WizardError::Command { source, .. }
                if matches!(**source, StepError::Refused { .. }) =>
            {
                3
            }
            WizardError::Command { source, .. }
                if matches!(**source, StepError::Host(HostError::Interrupted)) =>
            {
                130
            }
            WizardError::Interrupted(_)
            | WizardError::RunInterrupted { .. }
            | WizardError::CommandInterrupted(_) => 130,
            WizardError::Step { .. }
            | WizardError::Unplanned(_)
            | WizardError::NotBuilt(_)
            | WizardError::Degraded
            | WizardError::Command { .. }
            | WizardError::Other(_) => 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_per_contract() {
        assert_eq!(WizardError::Usage("x".into()).exit_code(), 2);
        let refused = WizardError::from_step(
            StepName::Filesystem,
            StepError::Refused {
                reason: "mounted".into(),
                evidence: vec!["/dev/sdb1 on /data".into()],
            },
            vec![],
        );
        assert_eq!(refused.exit_code(), 3);
        let text = refused.to_string();
        assert!(
            text.starts_with("step filesystem refused: refused: mounted"),
            "{text}"
        );
        assert!(text.contains("nothing was changed by this step"), "{text}");
        let int = WizardError::from_step(
            StepName::Sessions,
            StepError::Host(HostError::Interrupted),
            vec![],
        );
        assert_eq!(int.exit_code(), 130);
        assert_eq!(
            WizardError::from_step(
                StepName::Iscsi,
                StepError::Failed("x".into()),
                vec!["run a".into()]
            )
            .exit_code(),
            1
        );
        assert_eq!(WizardError::NotBuilt("status".into()).exit_code(), 1);
        assert_eq!(WizardError::NotConfigured("/s".into()).exit_code(), 4);
        assert_eq!(WizardError::Refused("x".into()).exit_code(), 3);
        assert_eq!(WizardError::CommandInterrupted("x".into()).exit_code(), 130);
        let busy = WizardError::from(StateError::Busy {
            path: "/s".into(),
            pid: Some(42),
        });
        assert_eq!(busy.exit_code(), 2);
        assert!(busy.to_string().contains("pid 42"), "{busy}");
    }

    #[test]
    fn errors_keep_their_whole_cause_chain() {
        let e: WizardError = anyhow::Error::new(std::io::Error::from_raw_os_error(28))
            .context("saving state.json")
            .into();
        assert_eq!(
            e.to_string(),
            "saving state.json: No space left on device (os error 28)"
        );
        // A cause that its context already quotes is not repeated.
        let io = std::io::Error::from_raw_os_error(28);
        let host = HostError::Io {
            op: "writing",
            path: "/etc/x".into(),
            source: io,
        };
        let e: WizardError = anyhow::Error::new(host).context("step iscsi").into();
        assert_eq!(
            e.to_string(),
            "step iscsi: writing /etc/x: No space left on device (os error 28)"
        );
    }

    #[test]
    fn a_failed_save_after_a_step_failure_does_not_replace_it() {
        let save = || -> Result<(), WizardError> {
            Err(anyhow::Error::new(std::io::Error::from_raw_os_error(28))
                .context("saving state.json")
                .into())
        };
        let step = WizardError::from_step(
            StepName::Iscsi,
            StepError::Host(HostError::Io {
                op: "backing up",
                path: "/etc/iscsi/iscsid.conf".into(),
                source: std::io::Error::from_raw_os_error(28),
            }),
            vec![],
        )
        .and_saved(save());
        assert_eq!(step.exit_code(), 1);
        let text = step.to_string();
        assert!(
            text.starts_with("step iscsi failed: ") && text.contains("backing up /etc/iscsi"),
            "{text}"
        );
        assert!(
            text.ends_with(
                "and the state could not be saved: saving state.json: No space left on \
                 device (os error 28)"
            ),
            "{text}"
        );
        let int = WizardError::Interrupted(Some(StepName::Sessions)).and_saved(save());
        assert_eq!(int.exit_code(), 130);
        let ok = WizardError::Usage("x".into()).and_saved(Ok(()));
        assert_eq!(ok.to_string(), "x");
    }

    #[test]
    fn an_interrupted_run_names_its_resume_command_and_a_dry_run_saved_nothing() {
        let real = WizardError::RunInterrupted {
            step: Some(StepName::Sessions),
            resume: Some("iser-wizard run --answers a.json --state-dir /tmp/s".into()),
        };
        assert_eq!(real.exit_code(), 130);
        assert_eq!(
            real.to_string(),
            "interrupted at step sessions; state is saved: run `iser-wizard run --answers a.json --state-dir /tmp/s` to resume"
        );
        let dry = WizardError::RunInterrupted {
            step: Some(StepName::Network),
            resume: None,
        };
        assert_eq!(dry.exit_code(), 130);
        let text = dry.to_string();
        assert!(!text.contains("state is saved"), "{text}");
        assert!(
            text.contains("a dry run changes and saves nothing"),
            "{text}"
        );
    }
}
