//! The sessions step: node records for exactly the expected (iface, portal) pairs, logged
//! in over iSER.
//!
//! A target portal belongs to the port whose subnet contains it; the expected pairs are
//! each answers' portal with the iface of that port. Probes: the sessions
//! (`iscsiadm -m session -P 1`), the node records (`iscsiadm -m node -P 1`) and the record
//! of each expected pair. Plans, each only where the host differs:
//! - node records: SendTargets discovery from each port's iface to a portal of its subnet,
//!   one at a time (two at once lost a race in the target, see [`apply`]), each from a
//!   discovery record whose limits make iscsiadm give up by itself (and remove its
//!   discovery session) before the wizard's bound, and time-bounded (an iface whose portal
//!   does not answer tries the next
//!   portal of its subnet), in a task because its result decides the rest; a
//!   target reports every portal to every iface (open-iscsi issue 439), so the records it
//!   creates for any other pair are deleted before login. A discovery that fails or is
//!   killed is cleaned up at once ([`leftover`]): the session without a target name it
//!   left is logged out by SID and the discovery record it made deleted. Or, with
//!   `target.discovery = "manual"`, one `-o new` record per expected pair. Records of the
//!   target for other pairs left by earlier runs are deleted too (not while a session uses
//!   one: verify then names that session).
//! - the target IQN: checked against `target.iqn` (a mismatch names both), or taken from
//!   discovery with `"discover"`.
//! - each record brought to the answers' settings (`node.startup`, replacement and login
//!   timeouts, CHAP): iscsid.conf only seeds new records. One `iscsiadm -o update` per
//!   record sets every key it lacks (several `-n`/`-v` pairs), the records at once.
//! - login of every expected pair not logged in, concurrently and time-bounded; exit 15
//!   (session exists) is success, 24 is named an authentication failure, 8/11/33 a timeout
//!   of the named portal.
//!
//! Verify (waiting for new sessions' disks, rescanning only when a session of an earlier
//! run shows none) requires exactly one LOGGED_IN iSER session per expected pair and
//! no other session to the target, and records the sessions, their disks and the subnets.
//! A volume's WWID with no disk yet (a LUN mapped after the login) gets a bounded wait with
//! another rescan ([`rescan`]).
//!
//! The CHAP secret is read from the environment variable the answers name, passed to
//! iscsiadm only as a masked [`Cmd::secret`](crate::steps::Cmd::secret), and never written
//! to a plan, log, fact or the worksheet. It is on iscsiadm's command line while that runs:
//! [`apply`] says why iscsiadm leaves no other way, and what that exposes.
//!
//! A dry run on a host without open-iscsi yet (preflight installs it) plans from the answers
//! alone: no session or record exists, so it plans the discovery (or the manual records),
//! the pruning, every setting and every login; a target IQN that only discovery can name is
//! shown as `<target IQN from SendTargets discovery>`.
//!
//! Layout: [`want`] asks, [`observe`] reads the host, [`decide`] is pure (plan and verify
//! share its expectations), [`apply`] does the tasks, [`record`] writes facts and worksheet.

mod apply;
pub(crate) mod decide;
pub mod leftover;
mod observe;
mod record;
mod rescan;
mod want;

use std::fmt;
use std::time::Duration;

use crate::steps::{Action, Ctx, Plan, Step, StepError, StepName};
use apply::{node_cmd, update_cmd, TaskId};
use decide::{Decision, SessionProblem};
use want::{Pair, Want};

pub(crate) use want::portal_answers;

/// Wall-clock bound of one SendTargets discovery: the last resort. A reachable portal
/// answers within a second; with its record's limits ([`apply::DISCOVERY_LIMITS`])
/// iscsiadm gives up on one that does not within about 13 s and removes its discovery
/// session. Without them it kept retrying for about a minute (lab capture
/// `iscsiadm-discovery-unreachable`); one that still hangs is killed here and named.
pub const DISCOVERY_BOUND: Duration = Duration::from_secs(20);
/// Wall-clock bound of one login. With the iscsi step's 5 s login timeout, iscsiadm itself
/// gives up on an unreachable portal after 8 tries (about 40 s) and says why; this bound
/// only catches a login that hangs beyond that.
pub const LOGIN_BOUND: Duration = Duration::from_secs(60);

/// The kernel attaches a new session's SCSI disks a moment after the login returns (seen in
/// the lab: a session listed with no disk yet, and the next step finding no LUN).
const DISK_WAIT: Duration = Duration::from_secs(20);

/// What a dry run shows for the target IQN that only discovery names.
const TARGET_FROM_DISCOVERY: &str = "target IQN from SendTargets discovery";

/// What plan decided, kept for the tasks and verify.
#[derive(Debug, Clone)]
struct Planned {
    want: Want,
    discover_from: Vec<Pair>,
    login: Vec<Pair>,
}

/// The sessions step.
pub struct Sessions {
    env: fn(&str) -> Option<String>,
    planned: Option<Planned>,
    /// The target IQN: from the answers or records at plan time, else from discovery.
    iqn: Option<String>,
    /// How long verify waits for the kernel to attach each session's LUNs.
    disk_wait: Duration,
}

impl fmt::Debug for Sessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sessions")
            .field("planned", &self.planned)
            .field("iqn", &self.iqn)
            .finish()
    }
}

fn real_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

impl Default for Sessions {
    fn default() -> Self {
        Sessions {
            env: real_env,
            planned: None,
            iqn: None,
            disk_wait: DISK_WAIT,
        }
    }
}

impl Sessions {
    /// A step reading environment variables (the CHAP secret) through `env`.
    pub fn with_env(env: fn(&str) -> Option<String>) -> Self {
        Sessions {
            env,
            ..Default::default()
        }
    }

    fn planned(&self) -> Result<&Planned, StepError> {
        self.planned
            .as_ref()
            .ok_or_else(|| StepError::Failed("internal: the sessions step was not planned".into()))
    }

    fn iqn(&self) -> Result<String, StepError> {
        self.iqn.clone().ok_or_else(|| {
            StepError::Failed("internal: the target IQN is not known before discovery".into())
        })
    }
}

/// The step implementation.
pub fn step() -> Box<dyn Step> {
    Box::new(Sessions::default())
}

fn joined<T: fmt::Display>(items: &[T], sep: &str) -> String {
    items
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join(sep)
}

/// The decision as plan actions. `iqn` is the target as the plan shows it (`None`: only
/// discovery names it, and a task configures the records); `iqn_from_discovery` says that
/// discovery names it (shown as a placeholder on a dry run before open-iscsi).
fn to_plan(
    plan: &mut Plan,
    want: &Want,
    d: &Decision,
    iqn: Option<&str>,
    iqn_from_discovery: bool,
) {
    for p in &d.busy {
        plan.note(format!(
            "a session uses the record of {p}, which is not an expected pair: it is kept \
             (verify names the session to log out)"
        ));
    }
    if let Some(iqn) = iqn {
        for p in &d.delete {
            plan.push(Action::run(
                node_cmd(iqn, p, &["-o", "delete"]),
                "not an expected pair (other subnet, or not in target.portals): it must not \
                 log in at boot",
            ));
        }
        for p in &d.create {
            plan.push(Action::run(
                node_cmd(iqn, p, &["-o", "new"]),
                "a node record for this pair (manual discovery)",
            ));
        }
    }
    if !d.discover_from.is_empty() {
        let from = d
            .discover_from
            .iter()
            .map(|p| format!("from {} at {}", p.iface, p.portal))
            .collect::<Vec<_>>()
            .join(", ");
        plan.push(Action::task(
            TaskId::Discover.as_str(),
            format!(
                "SendTargets discovery {from} (one at a time, each from a discovery record \
                 that makes iscsiadm give up after {}s without an answer and not retry, \
                 removing its discovery session; each cut off after {}s, then the next \
                 portal of the subnet for an iface whose portal did not answer){}; then \
                 delete every record it creates that is not an expected pair (a target \
                 reports all its portals to every iface)",
                apply::discovery_answer_wait(),
                DISCOVERY_BOUND.as_secs(),
                if iqn_from_discovery {
                    ", taking the target IQN from it"
                } else {
                    ""
                }
            ),
        ));
    }
    match (iqn, &d.updates) {
        (Some(iqn), Some(updates)) => {
            // One iscsiadm per record, with every setting it lacks, in the decided order.
            let mut by_pair: Vec<(&Pair, Vec<&want::Setting>)> = Vec::new();
            for (p, s) in updates {
                match by_pair.iter_mut().find(|(q, _)| *q == p) {
                    Some((_, list)) => list.push(s),
                    None => by_pair.push((p, vec![s])),
                }
            }
            for (p, settings) in by_pair {
                let kv: Vec<(&str, &str)> =
                    settings.iter().map(|s| (s.key, s.value.as_str())).collect();
                let mut why: Vec<&str> = Vec::new();
                for s in &settings {
                    if !why.contains(&s.why()) {
                        why.push(s.why());
                    }
                }
                plan.push(Action::run(update_cmd(want, iqn, p, &kv), why.join("; ")));
            }
        }
        _ => {
            let settings: Vec<String> = want
                .settings()
                .iter()
                .map(|s| match (&want.chap, s.secret) {
                    (Some(c), true) => format!("{} from ${}", s.key, c.env),
                    _ => format!("{} {}", s.key, s.value),
                })
                .collect();
            plan.push(Action::task(
                TaskId::Configure.as_str(),
                format!("set on each kept node record: {}", settings.join(", ")),
            ));
        }
    }
    if !d.login.is_empty() {
        plan.push(Action::task(
            TaskId::Login.as_str(),
            format!(
                "log in concurrently (each cut off after {}s): {}",
                LOGIN_BOUND.as_secs(),
                joined(&d.login, ", ")
            ),
        ));
    }
}

impl Step for Sessions {
    fn name(&self) -> StepName {
        StepName::Sessions
    }

    fn plan(&mut self, cx: &mut Ctx<'_>) -> Result<Plan, StepError> {
        let want = want::want(cx, self.env)?;
        let not_installed = cx.planning_without("iscsiadm");
        let obs = observe::observe(cx, not_installed)?;
        let known = want
            .explicit_iqn
            .clone()
            .or_else(|| decide::existing_target(&want.pairs, &obs.nodes));
        let records = match &known {
            Some(iqn) => {
                let have = decide::records_of(iqn, &obs.nodes);
                observe::records(cx, &want, iqn, &have)?
            }
            None => Default::default(),
        };
        let mut plan = Plan::new(StepName::Sessions);
        // Before open-iscsi is installed, a dry run shows the commands a real run will run
        // once discovery has named the target, with the name as a placeholder.
        let shown = match &known {
            None if not_installed => Some(plan.learn(TARGET_FROM_DISCOVERY)),
            other => other.clone(),
        };
        let d = decide::decide(&want, shown.as_deref(), &obs, &records);
        to_plan(&mut plan, &want, &d, shown.as_deref(), known.is_none());
        self.iqn = known;
        self.planned = Some(Planned {
            want,
            discover_from: d.discover_from,
            login: d.login,
        });
        Ok(plan)
    }

    fn task(&mut self, cx: &mut Ctx<'_>, id: &str) -> Result<(), StepError> {
        let planned = self.planned()?.clone();
        match id.parse::<TaskId>()? {
            TaskId::Discover => {
                let iqn = apply::discover(cx, &planned.want, &planned.discover_from)?;
                self.iqn = Some(iqn);
                Ok(())
            }
            TaskId::Configure => apply::configure(cx, &planned.want, &self.iqn()?),
            TaskId::Login => apply::login(cx, &planned.want, &self.iqn()?, &planned.login),
        }
    }

    fn verify(&mut self, cx: &mut Ctx<'_>) -> Result<(), StepError> {
        let want = self.planned()?.want.clone();
        let logged_in_now = !self.planned()?.login.is_empty();
        let iqn = self.iqn()?;
        let sessions = observe::sessions_after_rescan(cx, &iqn, self.disk_wait, logged_in_now)?;
        // A volume added to the answers since the login: its LUN may need another scan.
        let expected = rescan::expected_wwids(cx);
        let (sessions, missing) =
            rescan::until_expected_luns(cx, &iqn, sessions, &expected, self.disk_wait)?;
        for w in &missing {
            cx.sheet.note(format!(
                "no disk of LUN {w} (a volume's WWID) appeared through the sessions to {iqn} \
                 after a rescan: is that volume mapped to this host on the array?"
            ));
        }
        let checked = decide::check(&want, &iqn, &sessions);
        for p in &checked.no_disk {
            cx.sheet.note(format!(
                "no LUN is attached through the session to {p}: is a volume mapped to this \
                 host on the array?"
            ));
        }
        if !checked.problems.is_empty() {
            return Err(StepError::Failed(format!(
                "the sessions to {iqn} are not as expected:\n    - {}",
                joined::<SessionProblem>(&checked.problems, "\n    - ")
            )));
        }
        record::record(cx, &want, &iqn, checked);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
