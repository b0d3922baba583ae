//! Errors the operator sees, and the one place they become exit codes (CONTRACT.md):
//! 0 done; 1 a step failed; 2 usage error or invalid answers (nothing changed); 3 refused
//! for safety (nothing changed); 130 interrupted (state saved; `run` again resumes).

use crate::answers::Problem;
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
    /// Interrupted (Ctrl-C, SIGTERM, or the operator declined to apply).
    #[error("interrupted{}; state is saved: run `iser-wizard run` again to resume", .0.as_ref().map(|s| format!(" at step {s}")).unwrap_or_default())]
    Interrupted(Option<StepName>),
    /// Anything else (state directory unreadable, ...).
    #[error(transparent)]
    Other(#[from] anyhow::Error),
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

    /// The exit code.
    pub fn exit_code(&self) -> i32 {
        match self {
            WizardError::Usage(_) | WizardError::InvalidAnswers { .. } => 2,
            WizardError::Step {
                source: StepError::Refused { .. },
                ..
            } => 3,
            WizardError::Interrupted(_) => 130,
            WizardError::Step { .. }
            | WizardError::Unplanned(_)
            | WizardError::NotBuilt(_)
            | WizardError::Degraded
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
    }
}
