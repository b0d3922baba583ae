//! What is there: the only IO of the sessions step's planning and verify, read-only except
//! for verify's rescan (which asks the kernel to look for LUNs; it changes no configuration),
//! run only when a session of an earlier run shows no disk: a rerun lists the sessions once
//! and rescans nothing, and right after a login the kernel's own scan is waited for.
//!
//! On a dry run where open-iscsi is not installed yet (preflight installs it), there is
//! nothing to observe: no session, no node record ([`Observed::default`]).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::want::{Pair, Want};
use crate::steps::parse::iscsiadm::{
    classify_exit, parse_nodes, parse_record, parse_session_p3, NodeRef, SessionDetail,
};
use crate::steps::poll::{poll_until, Wait};
use crate::steps::{Cmd, Ctx, StepError};

/// A node record's settings, as `iscsiadm -m node -T -p -I` prints them.
pub(super) type Record = BTreeMap<String, String>;

/// The sessions and node records on the host.
#[derive(Debug, Clone, Default)]
pub(super) struct Observed {
    /// `iscsiadm -m session -P 1`.
    pub sessions: Vec<SessionDetail>,
    /// `iscsiadm -m node -P 1`.
    pub nodes: Vec<NodeRef>,
}

/// Run an iscsiadm listing; exit 21 (nothing to list) is an empty listing.
pub(super) fn listing(cx: &Ctx<'_>, cmd: Cmd) -> Result<String, StepError> {
    let out = cx.host.run(&cmd)?;
    match out.code.map(classify_exit) {
        Some(e) if e.listing_ok() => Ok(if out.success() {
            out.stdout
        } else {
            String::new()
        }),
        _ => Err(StepError::command(
            &cmd,
            &out,
            Some("is iscsid running? The iscsi step starts it (`systemctl status iscsid`)".into()),
        )),
    }
}

/// The sessions and node records (none when `not_installed`: a dry run before open-iscsi).
pub(super) fn observe(cx: &Ctx<'_>, not_installed: bool) -> Result<Observed, StepError> {
    if not_installed {
        return Ok(Observed::default());
    }
    let sessions = parse_session_p3(&listing(
        cx,
        Cmd::probe(["iscsiadm", "-m", "session", "-P", "1"]).reusable(),
    )?);
    let nodes = parse_nodes(&listing(
        cx,
        Cmd::probe(["iscsiadm", "-m", "node", "-P", "1"]).reusable(),
    )?);
    Ok(Observed { sessions, nodes })
}

/// The settings of each record of `iqn` in `have` that is an expected pair. With CHAP, `-S`
/// shows the stored secret, to compare; it is masked in the log. The records are read
/// concurrently: each is one iscsiadm reading its own file, and one process after another
/// cost a rerun 0.15-0.35 s per record in the lab.
pub(super) fn records(
    cx: &Ctx<'_>,
    want: &Want,
    iqn: &str,
    have: &BTreeSet<Pair>,
) -> Result<BTreeMap<Pair, Record>, StepError> {
    let cmds: Vec<(Pair, Cmd)> = want
        .pairs
        .iter()
        .filter(|p| have.contains(*p))
        .map(|p| (p.clone(), record_cmd(want, iqn, p)))
        .collect();
    let host = cx.host;
    let read = crate::steps::map_at_once(&cmds, |(_, cmd)| {
        let got = host.run(cmd)?;
        if !got.success() {
            return Err(StepError::command(cmd, &got, None));
        }
        Ok(parse_record(&got.stdout))
    })?;
    let mut out = BTreeMap::new();
    for ((p, _), rec) in cmds.into_iter().zip(read) {
        out.insert(p, rec);
    }
    Ok(out)
}

/// `iscsiadm -m node -T -p -I` for one pair (with `-S` and the secret masked under CHAP).
fn record_cmd(want: &Want, iqn: &str, p: &Pair) -> Cmd {
    let mut argv = vec![
        "iscsiadm".to_string(),
        "-m".into(),
        "node".into(),
        "-T".into(),
        iqn.to_string(),
        "-p".into(),
        p.portal.to_string(),
        "-I".into(),
        p.iface.clone(),
    ];
    match &want.chap {
        Some(c) => {
            argv.push("-S".into());
            Cmd::probe(argv).secret(c.secret.clone())
        }
        None => Cmd::probe(argv),
    }
}

/// Whether every logged-in session to `iqn` shows a disk.
fn all_have_disks(sessions: &[SessionDetail], iqn: &str) -> bool {
    sessions
        .iter()
        .filter(|s| s.target == iqn && s.is_logged_in())
        .all(|s| !s.disks().is_empty())
}

/// The sessions once every logged-in session to `iqn` shows a disk, or `wait` passes (then
/// as last read). When the first look finds every session with its disks (a rerun, or a
/// login whose scan is done), that is the answer: no rescan, one listing. Right after this
/// run's logins (`logged_in_now`) the kernel is scanning the new sessions itself: their
/// disks are waited for without a rescan. Otherwise (a session of an earlier run without a
/// disk) rescan first: it picks up LUNs mapped on the array after the sessions logged in.
/// A volume whose LUN is missing while every session has disks gets its own rescan
/// ([`super::rescan`]).
pub(super) fn sessions_after_rescan(
    cx: &Ctx<'_>,
    iqn: &str,
    wait: Duration,
    logged_in_now: bool,
) -> Result<Vec<SessionDetail>, StepError> {
    let first = parse_session_p3(&listing(
        cx,
        Cmd::probe(["iscsiadm", "-m", "session", "-P", "3"]),
    )?);
    if all_have_disks(&first, iqn) {
        return Ok(first);
    }
    if !logged_in_now {
        let rescan = Cmd::change(["iscsiadm", "-m", "session", "--rescan"]);
        let out = cx.host.run(&rescan)?;
        if !out.code.is_some_and(|c| classify_exit(c).listing_ok()) {
            return Err(StepError::command(&rescan, &out, None));
        }
    }
    let mut last = first;
    let ready = poll_until(cx.host, Wait::new(wait, Duration::from_millis(200)), || {
        let sessions = parse_session_p3(&listing(
            cx,
            Cmd::probe(["iscsiadm", "-m", "session", "-P", "3"]),
        )?);
        if all_have_disks(&sessions, iqn) {
            return Ok(Some(sessions));
        }
        cx.progress
            .message("waiting for the sessions' disks to attach");
        last = sessions;
        Ok(None)
    })?;
    Ok(ready.unwrap_or(last))
}
