//! The host side: one module per step, the `Host` seam and the parsers of tool output.
//!
//! Every step is a [`Step`]: it *plans* (probing the host, asking what it must through
//! [`Ask`], and returning a [`Plan`] value), the engine shows and applies that plan, and the
//! step then *verifies* the result against a fresh probe and records what it learned in the
//! facts and the worksheet. A step whose probe already matches returns an empty plan, so a
//! second run changes nothing.

pub mod array;
pub mod blockio;
pub mod detach;
pub mod facts;
#[cfg(test)]
pub mod fake;
pub mod filesystem;
pub mod host;
pub mod iscsi;
pub mod iscsid_conf;
pub mod multipath;
pub mod network;
pub mod parse;
pub mod plan;
pub mod poll;
pub mod preflight;
pub mod sessions;
pub mod subnet_manager;
pub mod templates;
#[cfg(test)]
pub mod testkit;
pub mod timefmt;
pub mod verify;
pub mod want;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::settings::Answers;
use crate::worksheets::Worksheet;
pub use facts::Facts;
pub use host::{Cmd, CmdOutput, Host, HostError};
pub use plan::{Action, Plan};

/// The steps, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepName {
    /// Distro, tools, modules, privileges, SELinux.
    Preflight,
    /// opensm per port GUID, or the subnet manager already on the fabric.
    SubnetManager,
    /// IPoIB or RoCE addresses, persistent, and reachability of every portal.
    Network,
    /// iscsid.conf, services, initiator IQN, one iser iface per port.
    Iscsi,
    /// The array side through its API: host, mappings, target facts (with `array` only).
    Array,
    /// Discovery or manual nodes, login, verification.
    Sessions,
    /// multipath.conf, multipathd, initramfs, the map and its paths.
    Multipath,
    /// Safety checks, GPT partition, mkfs, mount, fstab.
    Filesystem,
    /// Write, read back past the page cache, compare.
    Verify,
}

impl StepName {
    /// All steps in order.
    pub const ALL: [StepName; 9] = [
        StepName::Preflight,
        StepName::SubnetManager,
        StepName::Network,
        StepName::Iscsi,
        StepName::Array,
        StepName::Sessions,
        StepName::Multipath,
        StepName::Filesystem,
        StepName::Verify,
    ];

    /// The name operators type (`subnet-manager`).
    pub fn as_str(self) -> &'static str {
        match self {
            StepName::Preflight => "preflight",
            StepName::SubnetManager => "subnet-manager",
            StepName::Network => "network",
            StepName::Iscsi => "iscsi",
            StepName::Array => "array",
            StepName::Sessions => "sessions",
            StepName::Multipath => "multipath",
            StepName::Filesystem => "filesystem",
            StepName::Verify => "verify",
        }
    }

    /// Position in the run (1-based), for "step 3/8".
    pub fn number(self) -> usize {
        StepName::ALL.iter().position(|s| *s == self).unwrap_or(0) + 1
    }
}

impl fmt::Display for StepName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for StepName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        StepName::ALL
            .into_iter()
            .find(|n| n.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown step {s:?}; the steps are: {}",
                    StepName::ALL.map(|n| n.as_str()).join(", ")
                )
            })
    }
}

/// Why a question got no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AskError {
    /// No answer was provided and there is nobody to ask.
    #[error(
        "{key}: no answer given; add it to the answers file (see `iser-wizard answers --template`)"
    )]
    Missing {
        /// JSON path of the answer.
        key: String,
    },
    /// The provided answer is not valid.
    #[error("{key}: {reason}")]
    Invalid {
        /// JSON path of the answer.
        key: String,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// The operator pressed Ctrl-C at the prompt.
    #[error("interrupted at a prompt")]
    Interrupted,
    /// The terminal failed.
    #[error("prompt: {0}")]
    Terminal(String),
}

/// What a prompt asks for.
pub enum Question<'a> {
    /// Text, checked by `check` as it is typed; `default` is offered.
    Text {
        /// The detected default.
        default: Option<String>,
        /// The typed value's own parser (its message when it does not parse).
        check: &'a dyn Fn(&str) -> Result<(), String>,
    },
    /// Yes or no.
    Confirm {
        /// The default.
        default: bool,
    },
    /// One of `choices`.
    Select {
        /// The words offered.
        choices: &'a [&'a str],
        /// The index offered first.
        default: usize,
    },
    /// A secret (a password), typed without echo. It has no default, and the reply is
    /// never stored in the answers, recorded or logged: the caller keeps it only as long
    /// as it needs it.
    Secret,
}

/// What a prompt got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Typed text (already checked).
    Text(String),
    /// Yes or no.
    Yes(bool),
    /// The index of the chosen word.
    Chose(usize),
}

/// The one path by which steps get answers, in interactive and unattended runs alike. The
/// answers known so far are typed ([`Answers`]: the file's values and those asked earlier
/// in this run); a step's *want* phase reads them and asks only for what is missing, through
/// the typed helpers on `dyn Ask` ([`want`]), which store each answer so nobody is asked
/// twice and `--record-answers` can write them.
pub trait Ask {
    /// Everything known so far.
    fn answers(&self) -> &Answers;
    /// Everything known so far, to store an answer.
    fn answers_mut(&mut self) -> &mut Answers;
    /// Why the provided answer at `key` was refused, if it was (a lenient reader keeps the
    /// problem until a step needs that answer).
    fn refused(&self, key: &str) -> Option<String>;
    /// Ask a person; with nobody to ask, take `default` or fail naming `key`.
    fn prompt(&mut self, key: &str, question: &str, q: Question<'_>) -> Result<Reply, AskError>;
    /// Whether a person is answering.
    fn interactive(&self) -> bool;
}

/// Progress reporting for long work; hidden off a terminal and in tests.
pub trait Progress {
    /// What is being done now.
    fn message(&self, msg: &str);
    /// Start a byte counter with this total.
    fn start_bytes(&self, label: &str, total: u64);
    /// Set the byte counter.
    fn set_bytes(&self, done: u64);
}

/// Progress that shows nothing.
#[derive(Debug, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn message(&self, _msg: &str) {}
    fn start_bytes(&self, _label: &str, _total: u64) {}
    fn set_bytes(&self, _done: u64) {}
}

/// What a run allows.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Probe and plan only.
    pub dry_run: bool,
    /// Allow partitioning/formatting a device that carries only signatures.
    pub force_format: bool,
    /// Every step before the current one ran in this run (a whole run: no `--only` or
    /// `--from`) and found nothing to change. The verify step then need not write again
    /// when the state records a passed check of the same file system.
    pub nothing_changed_before: bool,
}

/// Everything a step may use.
pub struct Ctx<'a> {
    /// The machine (read-only on dry runs).
    pub host: &'a dyn Host,
    /// Answers.
    pub ask: &'a mut dyn Ask,
    /// Facts learned by earlier steps (and this one).
    pub facts: &'a mut Facts,
    /// The worksheet being filled.
    pub sheet: &'a mut Worksheet,
    /// Progress display.
    pub progress: &'a dyn Progress,
    /// Run options.
    pub options: &'a Options,
}

impl Ctx<'_> {
    /// Run a probe (read-only command); failing to start it is an error naming it.
    pub fn probe(&self, argv: &[&str]) -> Result<CmdOutput, StepError> {
        Ok(self.host.run(&Cmd::probe(argv.iter().copied()))?)
    }

    /// Run a probe that must succeed (exit 0 or one of `ok_codes`); otherwise the error
    /// names the command, its status and the tail of its output.
    pub fn probe_ok(&self, argv: &[&str], ok_codes: &[i32]) -> Result<CmdOutput, StepError> {
        let cmd = Cmd::probe(argv.iter().copied());
        let out = self.host.run(&cmd)?;
        if out.success() || out.code.is_some_and(|c| ok_codes.contains(&c)) {
            Ok(out)
        } else {
            Err(StepError::command(&cmd, &out, None))
        }
    }

    /// Run a probe that must succeed and parse its standard output as JSON into `T`.
    pub fn probe_json<T: serde::de::DeserializeOwned>(
        &self,
        argv: &[&str],
    ) -> Result<T, StepError> {
        let out = self.probe_ok(argv, &[])?;
        serde_json::from_str(&out.stdout).map_err(|e| {
            StepError::Failed(format!("reading the JSON of `{}`: {e}", argv.join(" ")))
        })
    }

    /// Whether this is a dry run on a host that lacks `program`: the step then plans from
    /// the answers, showing what only a real run learns as placeholders ([`Plan::learn`]).
    pub fn planning_without(&self, program: &str) -> bool {
        self.options.dry_run && self.host.which(program).is_none()
    }
}

/// Why a step stopped.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// A command failed.
    #[error("`{cmd}` failed ({status}){}{}", tail_block(.tail), hint_line(.hint))]
    Command {
        /// The command as displayed (secrets masked).
        cmd: String,
        /// "exit 5", "killed after 30s".
        status: String,
        /// The tail of its output.
        tail: String,
        /// What the operator can do about it.
        hint: Option<String>,
    },
    /// The host refused (file or command).
    #[error(transparent)]
    Host(#[from] HostError),
    /// Refused for safety (exit 3): nothing was changed.
    #[error("refused: {reason}{}", evidence_block(.evidence))]
    Refused {
        /// Why.
        reason: String,
        /// What was seen (mounts, holders, signatures).
        evidence: Vec<String>,
    },
    /// An answer was missing or invalid.
    #[error(transparent)]
    Ask(#[from] AskError),
    /// The host is not in the state the step needs, or verification found it wrong.
    #[error("{0}")]
    Failed(String),
}

impl StepError {
    /// A failed command, with the tail of its output.
    pub fn command(cmd: &Cmd, out: &CmdOutput, hint: Option<String>) -> Self {
        StepError::Command {
            cmd: cmd.to_string(),
            status: out.describe_status(),
            tail: cmd.mask(&out.tail(8)),
            hint,
        }
    }
}

fn tail_block(tail: &str) -> String {
    if tail.is_empty() {
        String::new()
    } else {
        format!(":\n    {}", tail.replace('\n', "\n    "))
    }
}

fn hint_line(hint: &Option<String>) -> String {
    hint.as_ref()
        .map(|h| format!("\n  hint: {h}"))
        .unwrap_or_default()
}

fn evidence_block(ev: &[String]) -> String {
    ev.iter().map(|e| format!("\n    - {e}")).collect()
}

/// One step of the procedure.
pub trait Step {
    /// Which step this is.
    fn name(&self) -> StepName;

    /// Probe the host, ask what is needed, and return the changes to make (empty when the
    /// host already matches).
    fn plan(&mut self, cx: &mut Ctx<'_>) -> Result<Plan, StepError>;

    /// Do a [`Action::Task`] of this step's plan.
    fn task(&mut self, _cx: &mut Ctx<'_>, id: &str) -> Result<(), StepError> {
        Err(StepError::Failed(format!(
            "internal: no task {id:?} in this step"
        )))
    }

    /// Check the result against a fresh probe and record facts and worksheet entries.
    fn verify(&mut self, cx: &mut Ctx<'_>) -> Result<(), StepError>;
}

/// Do one action of a step's plan: run its command (exit 0 or one of its `ok_codes`), write
/// its file, or hand its task to the step. The engine and the tests apply plans through this.
pub fn apply_action(
    step: &mut dyn Step,
    cx: &mut Ctx<'_>,
    action: &Action,
) -> Result<(), StepError> {
    match action {
        Action::Run { cmd, ok_codes, .. } => {
            let out = cx.host.run(cmd)?;
            if !(out.success() || out.code.is_some_and(|c| ok_codes.contains(&c))) {
                return Err(StepError::command(cmd, &out, None));
            }
        }
        Action::Write {
            path, new, mode, ..
        } => {
            cx.host.write(path, new, *mode)?;
        }
        Action::Task { id, .. } => step.task(cx, id)?,
    }
    Ok(())
}

/// Apply every action of a plan in order (without the engine's checkpoints).
pub fn apply_plan(step: &mut dyn Step, cx: &mut Ctx<'_>, plan: &Plan) -> Result<(), StepError> {
    for a in &plan.actions {
        apply_action(step, cx, a)?;
    }
    Ok(())
}

/// `f` of each of `items`, all at once, each in a thread of its own; the results in the
/// order of `items`. The first that failed (in that order) is the error.
pub fn map_at_once<T: Sync, R: Send>(
    items: &[T],
    f: impl Fn(&T) -> Result<R, StepError> + Sync,
) -> Result<Vec<R>, StepError> {
    let f = &f;
    let joined: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = items.iter().map(|x| s.spawn(move || f(x))).collect();
        handles.into_iter().map(|h| h.join()).collect()
    });
    joined
        .into_iter()
        .map(|j| j.map_err(|_| StepError::Failed("internal: a worker thread panicked".into()))?)
        .collect()
}

/// Run `cmds` at once ([`map_at_once`]); their outputs in the order given. The first that
/// could not run (in that order) is the error.
pub fn run_at_once(host: &dyn Host, cmds: &[Cmd]) -> Result<Vec<CmdOutput>, StepError> {
    map_at_once(cmds, |c| Ok(host.run(c)?))
}

/// Run `a` in a thread of its own while `b` runs here: two independent reads at once.
pub fn both<A: Send, B>(
    a: impl FnOnce() -> A + Send,
    b: impl FnOnce() -> B,
) -> Result<(A, B), StepError> {
    std::thread::scope(|s| {
        let a = s.spawn(a);
        let b = b();
        let a = a
            .join()
            .map_err(|_| StepError::Failed("internal: a probe thread panicked".into()))?;
        Ok((a, b))
    })
}

/// The step implementation for a name.
pub fn step(name: StepName) -> Box<dyn Step> {
    match name {
        StepName::Preflight => Box::new(preflight::Preflight::default()),
        StepName::SubnetManager => subnet_manager::step(),
        StepName::Network => network::step(),
        StepName::Iscsi => iscsi::step(),
        StepName::Array => array::step(),
        StepName::Sessions => sessions::step(),
        StepName::Multipath => multipath::step(),
        StepName::Filesystem => filesystem::step(),
        StepName::Verify => verify::step(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_names_round_trip_in_order() {
        for (i, n) in StepName::ALL.iter().enumerate() {
            assert_eq!(n.as_str().parse::<StepName>().unwrap(), *n);
            assert_eq!(n.number(), i + 1);
        }
        assert!("subnet_manager".parse::<StepName>().is_err());
        assert_eq!(
            serde_json::to_string(&StepName::SubnetManager).unwrap(),
            "\"subnet-manager\""
        );
    }
}
