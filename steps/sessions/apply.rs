//! The sessions step's tasks: work whose commands depend on what an earlier action found
//! (discovery names the target and creates records; configuring and logging in then use
//! them). Each task is a [`TaskId`], converted to and from the plan's task id here only.
//!
//! CHAP: the secret goes to iscsiadm as `-o update -n node.session.auth.password -v SECRET`,
//! masked in every plan, log line and error ([`Cmd::secret`]). iscsiadm (open-iscsi 2.x) has
//! no other way to set a node record value: no option reads a value from standard input, a
//! file or the environment, and `-o new`/discovery seed records only from iscsid.conf. While
//! each such iscsiadm runs (milliseconds), its argv is readable in `/proc/PID/cmdline` by
//! every local user unless /proc is mounted `hidepid=2`. The ways around it write open-iscsi's
//! private files instead (the record under `/etc/iscsi/nodes/` or `/var/lib/iscsi/nodes/`,
//! whose layout differs by version and bypasses iscsiadm's locking; or CHAP in iscsid.conf,
//! which would seed every new record of every target), so the wizard keeps iscsiadm.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use super::decide::choose_target;
use super::leftover::{clean_after_failed_discovery, send_targets_recorded};
use super::want::{Pair, Want};
use super::{DISCOVERY_BOUND, LOGIN_BOUND};
use crate::steps::parse::iscsiadm::{classify_exit, parse_discovery, IscsiadmError, NodeRef};
use crate::steps::{map_at_once, run_at_once, Cmd, CmdOutput, Ctx, Host, StepError};

/// The sessions step's tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TaskId {
    /// SendTargets discovery, then pruning of the records that are not expected pairs.
    Discover,
    /// Settings on every kept record, when only discovery named the target.
    Configure,
    /// Login of the pairs not logged in.
    Login,
}

impl TaskId {
    /// The id in the plan.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskId::Discover => "discover",
            TaskId::Configure => "configure",
            TaskId::Login => "login",
        }
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TaskId {
    type Err = StepError;
    fn from_str(s: &str) -> Result<Self, StepError> {
        [TaskId::Discover, TaskId::Configure, TaskId::Login]
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| {
                StepError::Failed(format!("internal: no task {s:?} in the sessions step"))
            })
    }
}

/// `iscsiadm -m node -T iqn -p portal -I iface` followed by `tail`.
pub(super) fn node_cmd(iqn: &str, p: &Pair, tail: &[&str]) -> Cmd {
    let portal = p.portal.to_string();
    let mut argv = vec![
        "iscsiadm", "-m", "node", "-T", iqn, "-p", &portal, "-I", &p.iface,
    ];
    argv.extend_from_slice(tail);
    Cmd::change(argv)
}

/// The command that sets `settings` (key, value) on one record, masked: ONE iscsiadm for
/// all of them, as iscsiadm takes several `-n KEY -v VALUE` pairs per `-o update` (open-iscsi
/// 2.0.873 and later) and applies them in order. A record of four settings was four
/// processes.
pub(super) fn update_cmd(want: &Want, iqn: &str, p: &Pair, settings: &[(&str, &str)]) -> Cmd {
    let mut tail = vec!["-o", "update"];
    for (key, value) in settings {
        tail.extend(["-n", key, "-v", value]);
    }
    want.masked(node_cmd(iqn, p, &tail))
}

/// Why a login or discovery command failed, in the operator's words.
fn failure(what: &str, p: &Pair, out: &CmdOutput, bound: Duration, want: &Want) -> String {
    if out.timed_out || out.code.is_none() {
        return format!(
            "{what} {p}: no answer within {}s (killed): {} is unreachable or does not answer; {}",
            bound.as_secs(),
            p.portal,
            want.reach_hint(p)
        );
    }
    let code = out.code.unwrap_or(-1);
    let text = format!("{}\n{}", out.stdout, out.stderr);
    let err = IscsiadmError::from_output(code, &text).unwrap_or(IscsiadmError {
        exit: classify_exit(code),
        detail: None,
    });
    if err.exit.is_timeout() {
        format!(
            "{what} {p} timed out ({err}): {} does not answer; {}",
            p.portal,
            want.reach_hint(p)
        )
    } else if err.exit.is_auth() {
        let chap = match &want.chap {
            Some(c) => format!(
                "check target.chap.username ({}) and the secret in ${} against the array",
                c.username, c.env
            ),
            None => "the target wants CHAP (set target.chap)".into(),
        };
        format!(
            "{what} {p} was refused: authentication failed ({err}): {chap}, and that the array's \
             host mapping lists this host's initiator IQN"
        )
    } else {
        format!("{what} {p} failed: {err}")
    }
}

/// Run one command per pair concurrently ([`run_at_once`]); results in the order given.
fn run_concurrently(
    cx: &Ctx<'_>,
    jobs: Vec<(Pair, Cmd)>,
) -> Result<Vec<(Pair, Cmd, CmdOutput)>, StepError> {
    let cmds: Vec<Cmd> = jobs.iter().map(|(_, c)| c.clone()).collect();
    let outs = run_at_once(cx.host, &cmds)?;
    Ok(jobs
        .into_iter()
        .zip(outs)
        .map(|((p, c), out)| (p, c, out))
        .collect())
}

/// What the discovery rounds found.
#[derive(Debug, Default)]
struct Discovered {
    /// Each record reported, with the pair whose iface asked.
    found: Vec<(Pair, NodeRef)>,
    /// (iface, what failed) per failed attempt.
    failures: Vec<(String, String)>,
    /// Ifaces that got an answer.
    answered: BTreeSet<String>,
    /// What the clean-up after each failed attempt removed or left ([`leftover`]).
    cleaned: Vec<String>,
}

/// The limits set on each SendTargets discovery record before the discovery runs from it,
/// so that iscsiadm gives up BY ITSELF well inside [`DISCOVERY_BOUND`] (open-iscsi
/// usr/discovery.c, 2.1.8): with `reopen_max` 0, the first reconnect it would make (after
/// `active_timeout` seconds without the Text Response, or a failed connect or login) ends
/// the discovery instead, and on that way out iscsiadm destroys the kernel session it
/// created for the discovery (`iscsi_create_session` -> `login_failed` ->
/// `iscsi_destroy_session`). Killed at the bound instead, it destroys nothing: over iSER
/// that session is created by iscsiadm itself over netlink, and no one else removes it
/// (iscsiadm cannot log out a session without a target name, [`super::leftover`]).
///
/// The defaults (open-iscsi's, as iscsid.conf leaves them) are login 15 s, auth 45 s,
/// active 30 s and 5 reopens: about a minute and a half before iscsiadm gives up. Here the
/// worst case is a 5 s connect plus 8 s without an answer, 13 s; a target that answers
/// does so in milliseconds (the lab's whole discovery: 1.3-1.6 s).
pub(super) const DISCOVERY_LIMITS: [(&str, &str); 4] = [
    ("discovery.sendtargets.timeo.login_timeout", "5"),
    ("discovery.sendtargets.timeo.auth_timeout", "5"),
    ("discovery.sendtargets.timeo.active_timeout", "8"),
    ("discovery.sendtargets.reopen_max", "0"),
];

/// The seconds iscsiadm waits for the Text Response under [`DISCOVERY_LIMITS`].
pub(super) fn discovery_answer_wait() -> &'static str {
    DISCOVERY_LIMITS
        .iter()
        .find(|(k, _)| k.ends_with("active_timeout"))
        .map_or("?", |(_, v)| v)
}

/// `iscsiadm -m discoverydb -t st -p PORTAL -I IFACE` followed by `tail`.
fn discoverydb_cmd(p: &Pair, tail: &[&str]) -> Cmd {
    let portal = p.portal.to_string();
    let mut argv = vec![
        "iscsiadm",
        "-m",
        "discoverydb",
        "-t",
        "st",
        "-p",
        &portal,
        "-I",
        &p.iface,
    ];
    argv.extend_from_slice(tail);
    Cmd::change(argv)
}

/// The commands of one SendTargets discovery from `p`, in order: the discovery record made
/// (`-o new` seeds it from iscsid.conf, as `-m discovery` does), its [`DISCOVERY_LIMITS`]
/// set (one `-o update`), then the discovery from that record (`--discover`, which reads
/// the record; `-m discovery` would read iscsid.conf's defaults instead), bounded by
/// [`DISCOVERY_BOUND`] as the last resort. `--discover` without `-o` adds, updates and
/// deletes the node records of that portal just as `-m discovery` does.
pub(super) fn discovery_cmds(p: &Pair) -> [Cmd; 3] {
    let mut update = vec!["-o", "update"];
    for (key, value) in DISCOVERY_LIMITS {
        update.extend(["-n", key, "-v", value]);
    }
    [
        discoverydb_cmd(p, &["-o", "new"]),
        discoverydb_cmd(p, &update),
        discoverydb_cmd(p, &["--discover"]).timeout(DISCOVERY_BOUND),
    ]
}

/// The discovery record of `p` made and limited ([`discovery_cmds`] but the discovery):
/// `None` when both worked, else the command that failed and its output.
fn prepare_discovery(
    host: &dyn Host,
    want: &Want,
    p: &Pair,
) -> Result<Option<(Cmd, CmdOutput)>, StepError> {
    let [new, update, _] = discovery_cmds(p);
    for cmd in [new, update] {
        let cmd = want.masked(cmd);
        let out = host.run(&cmd)?;
        if !out.success() {
            return Ok(Some((cmd, out)));
        }
    }
    Ok(None)
}

/// The discovery records of a round's `attempts` prepared at once ([`prepare_discovery`]):
/// each is a file of iscsiadm's own database and no target is asked, so nothing races; the
/// round's discoveries themselves still run one at a time.
fn prepare_round(
    cx: &Ctx<'_>,
    want: &Want,
    attempts: &[Pair],
) -> Result<Vec<Option<(Cmd, CmdOutput)>>, StepError> {
    let host = cx.host;
    map_at_once(attempts, |p| prepare_discovery(host, want, p))
}

/// One discovery from `p` whose record `prepared` says how its preparation went: the command
/// that ended it (the preparation's that failed, else the discovery), its output, and
/// whether it was the discovery itself.
fn discover_once(
    cx: &Ctx<'_>,
    want: &Want,
    p: &Pair,
    prepared: Option<(Cmd, CmdOutput)>,
) -> Result<(Cmd, CmdOutput, bool), StepError> {
    if let Some((cmd, out)) = prepared {
        return Ok((cmd, out, false));
    }
    let [_, _, discover] = discovery_cmds(p);
    let cmd = want.masked(discover);
    let out = cx.host.run(&cmd)?;
    Ok((cmd, out, true))
}

/// SendTargets from `from`, one portal per iface at first, ONE AT A TIME. An iface whose
/// portal fails tries the next portal of its subnet (the other controller), so one
/// controller that is down, or a target that drops one SendTargets request, does not stop
/// the run. Each discovery runs from a record with [`DISCOVERY_LIMITS`] (a round's records
/// are made first, at once: [`prepare_round`]), so iscsiadm gives
/// up by itself and destroys its discovery session; a failed attempt is still cleaned up at
/// once, before the next portal is tried ([`leftover`]), for the one killed at the bound:
/// a killed discovery over iSER leaves a session with no target name and its record.
///
/// Not concurrently: over iSER each discovery is a login plus a text request through
/// iscsid, and with two at once the LIO target of the lab rejected one text request
/// (dmesg: `Unable to accept text parameter length: 16greater than
/// MaxXmitDataSegmentLength 0`: the request reached a connection whose negotiated
/// parameters LIO had not set yet, the two logins 47 ms apart) and iscsiadm then waited
/// until the 20 s bound killed it (seen in two of the lab's recent runs). The hand-typed sequence runs
/// them one after the other and never met it. One after the other costs the length of one
/// discovery (1.3-1.6 s in the lab) against 20 s each time the race is lost.
fn discovery_rounds(cx: &Ctx<'_>, want: &Want, from: &[Pair]) -> Result<Discovered, StepError> {
    let mut attempts: Vec<Pair> = from.to_vec();
    let mut tried: BTreeSet<Pair> = BTreeSet::new();
    let mut d = Discovered::default();
    cx.progress.message("SendTargets discovery");
    while !attempts.is_empty() {
        tried.extend(attempts.iter().cloned());
        let mut results = Vec::new();
        // Read before anything runs: only a record this discovery made is deleted after it.
        let existed = attempts
            .iter()
            .map(|p| send_targets_recorded(cx.host, &p.portal))
            .collect::<Result<Vec<bool>, StepError>>()?;
        let prepared = prepare_round(cx, want, &attempts)?;
        for ((p, existed), prepared) in attempts.into_iter().zip(existed).zip(prepared) {
            let (cmd, out, discovered) = discover_once(cx, want, &p, prepared)?;
            if !out.success() {
                for line in clean_after_failed_discovery(cx, &p, existed)? {
                    cx.host.log_entry(&format!("sessions: {line}"), "");
                    cx.progress.message(&line);
                    d.cleaned.push(line);
                }
            }
            results.push((p, cmd, out, discovered));
        }
        let mut next = Vec::new();
        for (p, cmd, out, discovered) in &results {
            if out.success() {
                d.answered.insert(p.iface.clone());
                for n in parse_discovery(&out.stdout) {
                    d.found.push((p.clone(), n));
                }
                continue;
            }
            let text = if *discovered {
                failure("SendTargets discovery at", p, out, DISCOVERY_BOUND, want)
            } else {
                format!(
                    "SendTargets discovery at {p}: could not prepare its discovery record: \
                     `{cmd}` ({}): {}",
                    out.describe_status(),
                    out.tail(2)
                )
            };
            d.failures.push((p.iface.clone(), cmd.mask(&text)));
            if let Some(other) = want
                .pairs
                .iter()
                .find(|q| q.iface == p.iface && !tried.contains(*q))
            {
                next.push(other.clone());
            }
        }
        if !next.is_empty() {
            cx.progress.message(&format!(
                "SendTargets discovery: trying {}",
                next.iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        attempts = next;
    }
    Ok(d)
}

/// Delete each record discovery created that is not an expected pair of `chosen`, before
/// anything logs in to it (now, or at boot); returns the expected pairs kept. When the
/// target is not the one expected, none is kept: discovery leaves nothing behind. The
/// deletes run at once: each is its own record file, and iscsiadm takes its database lock
/// around each write by itself.
fn prune(
    cx: &Ctx<'_>,
    want: &Want,
    found: &[(Pair, NodeRef)],
    chosen: Option<&str>,
) -> Result<BTreeSet<Pair>, StepError> {
    let mut kept = BTreeSet::new();
    let mut seen = BTreeSet::new();
    let mut deletes = Vec::new();
    for (source, n) in found {
        let p = Pair {
            iface: source.iface.clone(),
            portal: n.portal.clone(),
        };
        if !seen.insert((n.target.clone(), p.clone())) {
            continue;
        }
        if chosen == Some(n.target.as_str()) && want.pairs.contains(&p) {
            kept.insert(p);
            continue;
        }
        let cmd = node_cmd(&n.target, &p, &["-o", "delete"]);
        deletes.push((p, cmd));
    }
    for (p, cmd, out) in run_concurrently(cx, deletes)? {
        if !out.success() {
            return Err(StepError::command(
                &cmd,
                &out,
                Some(format!(
                    "the record of {p} is not an expected pair and must not log in at \
                     boot: delete it by hand"
                )),
            ));
        }
    }
    Ok(kept)
}

/// Discover from `from`, prune, and return the target IQN discovery names.
pub(super) fn discover(cx: &mut Ctx<'_>, want: &Want, from: &[Pair]) -> Result<String, StepError> {
    let d = discovery_rounds(cx, want, from)?;
    let problems: Vec<&str> = d
        .failures
        .iter()
        .filter(|(iface, _)| !d.answered.contains(iface))
        .map(|(_, text)| text.as_str())
        .collect();
    if !problems.is_empty() {
        let cleaned = if d.cleaned.is_empty() {
            String::new()
        } else {
            format!(
                "\n  after the failed discoveries:\n    - {}",
                d.cleaned.join("\n    - ")
            )
        };
        return Err(StepError::Failed(format!(
            "discovery failed:\n    - {}{cleaned}",
            problems.join("\n    - ")
        )));
    }
    for line in &d.cleaned {
        cx.sheet.note(format!("sessions: {line}"));
    }
    for (iface, text) in &d.failures {
        cx.sheet.note(format!(
            "sessions: {text}; discovery via {iface} used another portal of its subnet"
        ));
    }
    let targets: BTreeSet<&str> = d.found.iter().map(|(_, n)| n.target.as_str()).collect();
    let sources = from
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let chosen = choose_target(want.explicit_iqn.as_deref(), &targets, &sources);
    let kept = prune(cx, want, &d.found, chosen.as_deref().ok())?;
    let iqn = chosen.map_err(StepError::Failed)?;
    let unreported: Vec<String> = want
        .pairs
        .iter()
        .filter(|p| from.iter().any(|d| d.iface == p.iface))
        .filter(|p| !kept.contains(*p))
        .map(|p| p.to_string())
        .collect();
    if !unreported.is_empty() {
        return Err(StepError::Failed(format!(
            "SendTargets did not report {} for target {iqn}: check target.portals against \
             the array's iSER port addresses",
            unreported.join(", ")
        )));
    }
    Ok(iqn)
}

/// Every setting on every expected record of `iqn`: one iscsiadm per record, the records at
/// once (each is its own file; iscsiadm locks its database around each write).
pub(super) fn configure(cx: &Ctx<'_>, want: &Want, iqn: &str) -> Result<(), StepError> {
    let settings = want.settings();
    let pairs: Vec<(&str, &str)> = settings.iter().map(|s| (s.key, s.value.as_str())).collect();
    let jobs: Vec<(Pair, Cmd)> = want
        .pairs
        .iter()
        .map(|p| (p.clone(), update_cmd(want, iqn, p, &pairs)))
        .collect();
    for (_, cmd, out) in run_concurrently(cx, jobs)? {
        if !out.success() {
            return Err(StepError::command(&cmd, &out, None));
        }
    }
    Ok(())
}

/// Log in to `pairs` of `iqn` concurrently; exit 15 (session exists) is success.
pub(super) fn login(cx: &Ctx<'_>, want: &Want, iqn: &str, pairs: &[Pair]) -> Result<(), StepError> {
    let jobs: Vec<(Pair, Cmd)> = pairs
        .iter()
        .map(|p| {
            let cmd = node_cmd(iqn, p, &["--login"]).timeout(LOGIN_BOUND);
            (p.clone(), want.masked(cmd))
        })
        .collect();
    cx.progress.message("logging in");
    let results = run_concurrently(cx, jobs)?;
    let problems: Vec<String> = results
        .iter()
        .filter(|(_, _, out)| {
            out.timed_out || !out.code.is_some_and(|c| classify_exit(c).login_ok())
        })
        .map(|(p, cmd, out)| cmd.mask(&failure("login to", p, out, LOGIN_BOUND, want)))
        .collect();
    if !problems.is_empty() {
        return Err(StepError::Failed(format!(
            "{} of {} logins failed:\n    - {}",
            problems.len(),
            results.len(),
            problems.join("\n    - ")
        )));
    }
    Ok(())
}
