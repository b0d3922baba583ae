//! Test support for the steps: a context kept between plan, apply and verify, applying a
//! plan as the engine does, one-line summaries of plans, and golden files.

use std::path::Path;

use serde_json::Value;

use crate::prompt::Asker;
use crate::steps::fake::FakeHost;
use crate::steps::preflight::parse_os_release;
use crate::steps::{Action, Ctx, Facts, Host, NoProgress, Options, Plan, Step, StepError};
use crate::worksheets::Worksheet;

/// The mutable parts of a context, kept between plan, apply and verify.
pub struct Run {
    /// Answers (unattended).
    pub ask: Asker,
    /// Facts.
    pub facts: Facts,
    /// Worksheet.
    pub sheet: Worksheet,
    /// Options.
    pub options: Options,
}

impl Run {
    /// A run with these answers and facts.
    pub fn new(answers: Value, facts: Facts) -> Run {
        Run {
            ask: Asker::unattended(answers),
            facts,
            sheet: Worksheet::default(),
            options: Options::default(),
        }
    }

    /// A run on the distro of this os-release text.
    pub fn for_os(answers: Value, os_release: &str) -> Run {
        let facts = Facts {
            os: Some(parse_os_release(os_release)),
            ..Default::default()
        };
        Run::new(answers, facts)
    }

    /// A context over `h`.
    pub fn cx<'a>(&'a mut self, h: &'a dyn Host) -> Ctx<'a> {
        Ctx {
            host: h,
            ask: &mut self.ask,
            facts: &mut self.facts,
            sheet: &mut self.sheet,
            progress: &NoProgress,
            options: &self.options,
        }
    }

    /// Call `f` with a context over `h`.
    pub fn with<R>(&mut self, h: &FakeHost, f: impl FnOnce(&mut Ctx<'_>) -> R) -> R {
        f(&mut self.cx(h))
    }

    /// Plan, apply and verify, as the engine does.
    pub fn full(&mut self, h: &FakeHost, step: &mut dyn Step) -> Result<Plan, StepError> {
        let plan = self.with(h, |cx| step.plan(cx))?;
        self.with(h, |cx| apply(step, cx, &plan))?;
        self.with(h, |cx| step.verify(cx))?;
        Ok(plan)
    }
}

/// Apply a plan's actions the way the engine does.
pub fn apply(step: &mut dyn Step, cx: &mut Ctx<'_>, plan: &Plan) -> Result<(), StepError> {
    crate::steps::apply_plan(step, cx, plan)
}

/// Each action in one line: the command, `write PATH`, or `task ID`.
pub fn summary(plan: &Plan) -> Vec<String> {
    plan.actions
        .iter()
        .map(|a| match a {
            Action::Run { cmd, .. } => cmd.to_string(),
            Action::Write { path, .. } => format!("write {}", path.display()),
            Action::Task { id, .. } => format!("task {id}"),
        })
        .collect()
}

/// The plan's actions, one headline each, without the reasons (`run CMD` for commands).
pub fn steps_of(plan: &Plan) -> Vec<String> {
    plan.actions
        .iter()
        .map(|a| match a {
            Action::Run { cmd, .. } => format!("run {cmd}"),
            Action::Write { path, .. } => format!("write {}", path.display()),
            Action::Task { id, .. } => format!("task {id}"),
        })
        .collect()
}

/// The content a plan writes to `path`.
pub fn written(plan: &Plan, path: &str) -> String {
    plan.actions
        .iter()
        .find_map(|a| match a {
            Action::Write { path: p, new, .. } if p == Path::new(path) => Some(new.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("the plan writes no {path}:\n{}", plan.render()))
}

/// Compare with `tests/golden/<rel>` byte for byte; with UPDATE_GOLDEN=1, write it instead
/// (then review the change with `git diff`).
pub fn golden(rel: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(rel);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "{} is missing: run the tests with UPDATE_GOLDEN=1 to write it, then review it",
            path.display()
        )
    });
    if want != actual {
        panic!(
            "{} differs from what the wizard writes (UPDATE_GOLDEN=1 rewrites it):\n{}",
            path.display(),
            crate::steps::plan::unified_diff(&path, Some(&want), actual)
        );
    }
}
