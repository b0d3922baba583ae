//! A LUN added later: when a volume's WWID in the answers has no disk among the target's
//! sessions, ask the kernel to scan the sessions again (`iscsiadm -m session --rescan`; a
//! LUN mapped on the array after the login appears only then) and poll the sessions' disks,
//! bounded, until every expected LUN has one. A LUN that stays missing is named in a note,
//! not failed here: the multipath step stops on it with the target's LUNs listed.
//!
//! A disk's WWID is read from sysfs (`/sys/block/sdX/device/wwid`); an NAA designator
//! (`naa.600a0980...`, what E-Series and LIO report) is the WWID multipath shows with a
//! leading `3` (udev's `ID_SERIAL`). Other designators are compared as they are.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use super::observe::listing;
use crate::settings::Wwid;
use crate::steps::parse::iscsiadm::{classify_exit, parse_session_p3, SessionDetail};
use crate::steps::poll::{poll_until, Wait};
use crate::steps::{Cmd, Ctx, StepError};

/// How often the sessions' disks are read again while waiting.
const INTERVAL: Duration = Duration::from_millis(500);

/// The WWIDs the answers give (lower case, as multipath prints them); "auto" names none.
pub(super) fn expected_wwids(cx: &Ctx<'_>) -> Vec<String> {
    cx.ask
        .answers()
        .volume_list()
        .iter()
        .filter_map(|v| match &v.wwid {
            Some(Wwid::Id(w)) => Some(w.to_ascii_lowercase()),
            _ => None,
        })
        .collect()
}

/// The WWID multipath gives a disk, from sysfs (`None`: unreadable).
pub(super) fn disk_wwid(cx: &Ctx<'_>, disk: &str) -> Result<Option<String>, StepError> {
    let text = cx
        .host
        .read(Path::new(&format!("/sys/block/{disk}/device/wwid")))?;
    Ok(text.map(|t| {
        let t = t.trim().to_ascii_lowercase();
        match t.strip_prefix("naa.") {
            Some(hex) => format!("3{hex}"),
            None => t,
        }
    }))
}

/// The expected WWIDs with no disk among the logged-in sessions to `iqn`.
fn missing(
    cx: &Ctx<'_>,
    iqn: &str,
    sessions: &[SessionDetail],
    expected: &[String],
) -> Result<Vec<String>, StepError> {
    let mut seen = BTreeSet::new();
    for s in sessions
        .iter()
        .filter(|s| s.target == iqn && s.is_logged_in())
    {
        for d in s.disks() {
            if let Some(w) = disk_wwid(cx, d)? {
                seen.insert(w);
            }
        }
    }
    Ok(expected
        .iter()
        .filter(|w| !seen.contains(*w))
        .cloned()
        .collect())
}

/// When an expected LUN has no disk in `sessions`: rescan, then read the sessions again
/// until each expected LUN has one or `bound` passes. Returns the sessions as last read
/// and the WWIDs still missing.
pub(super) fn until_expected_luns(
    cx: &Ctx<'_>,
    iqn: &str,
    sessions: Vec<SessionDetail>,
    expected: &[String],
    bound: Duration,
) -> Result<(Vec<SessionDetail>, Vec<String>), StepError> {
    let gone = missing(cx, iqn, &sessions, expected)?;
    if gone.is_empty() {
        return Ok((sessions, gone));
    }
    cx.progress.message(&format!(
        "no disk of LUN {} yet: rescanning the sessions",
        gone.join(", ")
    ));
    let rescan = Cmd::change(["iscsiadm", "-m", "session", "--rescan"]);
    let out = cx.host.run(&rescan)?;
    if !out.code.is_some_and(|c| classify_exit(c).listing_ok()) {
        return Err(StepError::command(&rescan, &out, None));
    }
    let mut last = (sessions, gone);
    let found = poll_until(cx.host, Wait::new(bound, INTERVAL), || {
        let now = parse_session_p3(&listing(
            cx,
            Cmd::probe(["iscsiadm", "-m", "session", "-P", "3"]),
        )?);
        let gone = missing(cx, iqn, &now, expected)?;
        if gone.is_empty() {
            return Ok(Some(now));
        }
        last = (now, gone);
        Ok(None)
    })?;
    Ok(match found {
        Some(s) => (s, Vec::new()),
        None => last,
    })
}
