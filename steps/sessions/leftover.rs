//! What a SendTargets discovery that failed or was killed leaves behind, and its removal.
//!
//! Over iSER, `iscsiadm -m discovery -t st` asks iscsid to log in a discovery session (a
//! kernel session with no target name) and writes the discovery record
//! (`send_targets/IP,PORT` in the iSCSI database) before it sends the SendTargets request.
//! When the target drops that request, iscsiadm waits until the sessions step kills it at
//! its bound, and both stay: the session (`iser: [1] 192.168.130.101:0,1` in
//! `iscsiadm -m session`, no IQN) and the record. Seen in the lab on LIO. (For iSER it is
//! iscsiadm itself that creates that kernel session over netlink, open-iscsi
//! usr/discovery.c; killed, it cannot destroy it.) The sessions step now runs each
//! discovery from a record whose limits make iscsiadm give up by itself and destroy that
//! session ([`super::apply`]'s `DISCOVERY_LIMITS`); what is here is for the discovery that
//! still hangs until it is killed, and for leftovers of older runs.
//!
//! Contract:
//! - [`clean_after_failed_discovery`] runs right after a failed discovery, before the next
//!   portal is tried: it logs out, by SID and time-bounded, every session to that portal's
//!   address that carries no target name, and deletes the discovery record (with the node
//!   records iscsiadm keeps under it) when that record did not exist before the discovery
//!   ran ([`send_targets_recorded`], read before). It reads the sessions again afterwards
//!   and says what it removed and what is left; it never fails the run (what it could not
//!   remove is reported, and `detach --all` and `undo` still take it away).
//! - Seen in the lab (open-iscsi 2.1.8): `iscsiadm -m session -r SID -u` refuses such a
//!   session (exit 22, `could not read session targetname: 5`: it reads the target name
//!   before it asks iscsid), and iscsid cannot take it either. The logout is still tried
//!   (a newer iscsiadm may do it) and its failure reported with [`NO_LOGOUT_HINT`]; the
//!   discovery record is deleted all the same.
//! - [`discovery_sessions`] picks the sessions without a target name out of a session tree:
//!   `status` reports them as stale and a detach that leaves no volume attached tries to
//!   log them out ([`discovery_logouts`]), reporting the one iscsiadm refuses as left.
//! - The iSCSI database is read from its files (`/etc/iscsi` on Debian and SUSE,
//!   `/var/lib/iscsi` on RHEL), never through iscsiadm, which would create its directories.

use std::path::PathBuf;
use std::time::Duration;

use super::want::Pair;
use crate::steps::parse::iscsiadm::{classify_exit, parse_session_flat, Portal, SessionDetail};
use crate::steps::{Cmd, Ctx, Host, StepError};

/// The iSCSI database's directories: Debian and SUSE keep it in /etc/iscsi, RHEL in
/// /var/lib/iscsi.
pub const ISCSI_DBS: [&str; 2] = ["/etc/iscsi", "/var/lib/iscsi"];

/// Wall-clock bound of one logout of a discovery session. A logout answers within a
/// second; one that hangs is killed and reported, and the run goes on.
pub const LOGOUT_BOUND: Duration = Duration::from_secs(15);

/// What to tell the operator about a session without a target name that iscsiadm would
/// not log out.
pub const NO_LOGOUT_HINT: &str = "iscsiadm cannot log out a session that has no target name \
     (it reads the name first); it serves no LUN, and a reboot clears it";

/// A portal `addr:port` as the database names its directories (`addr,port`).
pub fn portal_dir(portal: &str) -> String {
    match portal.rsplit_once(':') {
        Some((a, p)) => format!("{},{p}", a.trim_start_matches('[').trim_end_matches(']')),
        None => portal.to_string(),
    }
}

/// Whether the iSCSI database holds an entry `sub/NAME` (or, for a portal, `NAME,...`:
/// node directories carry the portal group tag after the portal).
pub fn iscsi_db_has(host: &dyn Host, sub: &str, name: &str) -> Result<bool, StepError> {
    let with_tag = format!("{name},");
    for db in ISCSI_DBS {
        let dir = PathBuf::from(format!("{db}/{sub}"));
        if host
            .list_dir(&dir)?
            .iter()
            .any(|n| n == name || n.starts_with(&with_tag))
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Whether the database holds a SendTargets discovery record for `portal`.
pub fn send_targets_recorded(host: &dyn Host, portal: &Portal) -> Result<bool, StepError> {
    iscsi_db_has(host, "send_targets", &portal_dir(&portal.to_string()))
}

/// The sessions of a session tree that carry no target name: discovery sessions, which
/// serve no LUN. One still listed after its discovery ended is a leftover.
pub fn discovery_sessions(sessions: &[SessionDetail]) -> Vec<&SessionDetail> {
    sessions.iter().filter(|s| s.target.is_empty()).collect()
}

/// (SID, portal) of each discovery session of `sessions` that names both: what a detach
/// that leaves no volume attached logs out.
pub fn discovery_logouts(sessions: &[SessionDetail]) -> Vec<(u32, Portal)> {
    discovery_sessions(sessions)
        .into_iter()
        .filter_map(|s| {
            Some((
                s.sid?,
                s.current_portal.clone().or(s.persistent_portal.clone())?,
            ))
        })
        .collect()
}

/// The SIDs of the sessions without a target name to `address`, from the flat
/// `iscsiadm -m session` (exit 21, no session: none).
fn targetless_sids(host: &dyn Host, address: &str) -> Result<Vec<u32>, String> {
    let cmd = Cmd::probe(["iscsiadm", "-m", "session"]);
    let out = host.run(&cmd).map_err(|e| e.to_string())?;
    match out.code.map(classify_exit) {
        Some(e) if e.listing_ok() => Ok(parse_session_flat(&out.stdout)
            .into_iter()
            .filter(|s| s.target.is_none() && s.portal.address == address)
            .map(|s| s.sid)
            .collect()),
        _ => Err(format!(
            "`{cmd}` failed ({}): {}",
            out.describe_status(),
            out.tail(2)
        )),
    }
}

/// After the discovery at `p` failed: log out the sessions without a target name it left
/// to that address, and delete its discovery record unless the record was there before
/// (`existed_before`). Returns one line per thing removed or left, for the worksheet and
/// the log; never fails the run.
pub(super) fn clean_after_failed_discovery(
    cx: &Ctx<'_>,
    p: &Pair,
    existed_before: bool,
) -> Result<Vec<String>, StepError> {
    let mut said = Vec::new();
    let address = p.portal.address.as_str();
    match targetless_sids(cx.host, address) {
        Err(e) => said.push(format!(
            "could not list the sessions to look for the discovery session to {address}: {e}"
        )),
        Ok(sids) => {
            for sid in &sids {
                let sid = sid.to_string();
                let cmd = Cmd::change(["iscsiadm", "-m", "session", "-r", &sid, "-u"])
                    .timeout(LOGOUT_BOUND);
                let out = cx.host.run(&cmd)?;
                if !out.success() {
                    said.push(format!(
                        "could not log out the discovery session {sid} to {address}: `{cmd}` \
                         ({}): {}",
                        out.describe_status(),
                        out.tail(2)
                    ));
                }
            }
            if !sids.is_empty() {
                // Read again: what is gone is seen gone, not assumed.
                match targetless_sids(cx.host, address) {
                    Ok(left) => {
                        for sid in &sids {
                            if left.contains(sid) {
                                said.push(format!(
                                    "the discovery session {sid} to {address} (no target \
                                     name) is still logged in: {NO_LOGOUT_HINT}"
                                ));
                            } else {
                                said.push(format!(
                                    "logged out the discovery session {sid} to {address} \
                                     (no target name) that the failed discovery left"
                                ));
                            }
                        }
                    }
                    Err(e) => said.push(format!("could not check the logouts: {e}")),
                }
            }
        }
    }
    if !existed_before && send_targets_recorded(cx.host, &p.portal)? {
        let portal = p.portal.to_string();
        let cmd = Cmd::change([
            "iscsiadm",
            "-m",
            "discoverydb",
            "-t",
            "st",
            "-p",
            &portal,
            "-I",
            &p.iface,
            "-o",
            "delete",
        ]);
        let out = cx.host.run(&cmd)?;
        let gone = !send_targets_recorded(cx.host, &p.portal)?;
        if gone {
            said.push(format!(
                "deleted the discovery record of {portal} that the failed discovery left \
                 (`{cmd}`)"
            ));
        } else {
            said.push(format!(
                "the discovery record of {portal} that the failed discovery left is still \
                 there (`{cmd}`: {}): `iser-wizard undo` deletes it",
                out.describe_status()
            ));
        }
    }
    Ok(said)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::steps::parse::iscsiadm::parse_session_p3;

    #[test]
    fn only_sessions_without_a_target_name_are_discovery_sessions() {
        // As iscsiadm -P 3 prints a discovery session (its empty name sorts first) beside
        // a target's session.
        let tree = "Target:  (non-flash)\n\tCurrent Portal: 192.168.130.101:0,1\n\
                    \tPersistent Portal: 192.168.130.101:0,1\n\t\tInterface:\n\
                    \t\tIface Name: iface-vA\n\t\tSID: 1\n\
                    Target: iqn.2002-09.com.lab:array (non-flash)\n\
                    \tCurrent Portal: 192.168.130.102:3260,1\n\
                    \tPersistent Portal: 192.168.130.102:3260,1\n\t\tInterface:\n\
                    \t\tIface Name: iface-vA\n\t\tSID: 2\n";
        let s = parse_session_p3(tree);
        assert_eq!(s.len(), 2);
        assert_eq!(
            discovery_logouts(&s),
            [(
                1,
                Portal {
                    address: "192.168.130.101".into(),
                    port: 0
                }
            )]
        );
        // An older iscsiadm prints `Target: ` with nothing after it.
        let s = parse_session_p3(&tree.replace("Target:  (non-flash)", "Target: "));
        assert_eq!(discovery_logouts(&s).len(), 1);
        assert_eq!(discovery_sessions(&s)[0].sid, Some(1));
    }

    #[test]
    fn portal_directories_are_named_as_the_database_names_them() {
        assert_eq!(portal_dir("192.168.130.101:3260"), "192.168.130.101,3260");
        assert_eq!(portal_dir("[fd00::1]:3260"), "fd00::1,3260");
    }
}
