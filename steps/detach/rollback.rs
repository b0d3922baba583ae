//! Cleaning up after a failed attach: take down what the failed run made at volume level
//! (mounts, fstab lines, the mount point directories it made, multipath maps, path devices,
//! sessions, node records), in the detach order, and nothing else.
//!
//! Contract:
//! - [`Before::observe`] reads, before the run's first volume-level step, what is already
//!   there: sessions, node records, the LUNs (maps and SCSI disks, by WWID), mounts and the
//!   mount points `/etc/fstab` lists. It only reads.
//! - [`decide`] is pure: the host as it is now against [`Before`] gives a detach [`Plan`]
//!   of what is new: the LUNs not there before (their mounts, fstab lines, map, paths), the
//!   sessions not there before that carry no other LUN, the node records not there before,
//!   and the mount point directories the run made. Whatever was there before is never in
//!   it. A map this run made is flushed even with I/O queued (only the run's own writes can
//!   be queued there); a busy mount is still refused, as in `detach`.
//! - Host-level configuration (iscsid.conf, ifaces, network files, units) is not looked at:
//!   it is backed up, and `undo` owns it.
//! - The plan runs through [`apply`](super::apply()), which reports what it could not
//!   remove.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

use crate::steps::facts::VolumeFact;
use crate::steps::parse::iscsiadm::{classify_exit, parse_nodes, NodeRef, SessionDetail};
use crate::steps::{Cmd, Host, StepError};

use super::observe::{self, Observed};
use super::{Act, Node, Plan, Target};

/// A session or node record: target, portal (`ip:port`) and iface (`None`: not named).
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(default)]
pub struct Key {
    /// Target IQN.
    pub target: String,
    /// Portal, `ip:port`.
    pub portal: String,
    /// iface name, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iface: Option<String>,
}

impl Key {
    /// Whether both name the same record (an iface not named matches any).
    fn same(&self, other: &Key) -> bool {
        self.target == other.target
            && self.portal == other.portal
            && (self.iface.is_none() || other.iface.is_none() || self.iface == other.iface)
    }

    fn of_session(s: &SessionDetail) -> Option<Key> {
        let portal = s.persistent_portal.as_ref().or(s.current_portal.as_ref())?;
        Some(Key {
            target: s.target.clone(),
            portal: portal.to_string(),
            iface: s.iface_name.clone(),
        })
    }

    fn of_node(n: &NodeRef) -> Key {
        Key {
            target: n.target.clone(),
            portal: n.portal.to_string(),
            iface: n.iface.clone(),
        }
    }

    fn of(n: &Node) -> Key {
        Key {
            target: n.target.clone(),
            portal: n.portal.to_string(),
            iface: Some(n.iface.clone()),
        }
    }
}

/// What was on the host before the run's first volume-level step.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Before {
    /// When it was read.
    pub at: String,
    /// The sessions.
    pub sessions: Vec<Key>,
    /// The node records.
    pub nodes: Vec<Key>,
    /// The WWIDs of every map and SCSI disk (multipath's form).
    pub wwids: Vec<String>,
    /// Every mount point mounted.
    pub mounts: Vec<String>,
    /// The mount points `/etc/fstab` lists.
    pub fstab_mount_points: Vec<String>,
}

fn contains(keys: &[Key], k: &Key) -> bool {
    keys.iter().any(|x| x.same(k))
}

/// The mount points of the uncommented lines of an fstab.
fn fstab_mount_points(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 2 && !f[0].starts_with('#')).then(|| f[1].to_string())
        })
        .collect()
}

/// `iscsiadm -m node -P 1` (no records, or no iscsiadm: none).
pub fn nodes(host: &dyn Host) -> Result<Vec<NodeRef>, StepError> {
    if host.which("iscsiadm").is_none() {
        return Ok(Vec::new());
    }
    let cmd = Cmd::probe(["iscsiadm", "-m", "node", "-P", "1"]);
    let out = host.run(&cmd)?;
    match out.code.map(classify_exit) {
        Some(e) if e.listing_ok() => Ok(if out.success() {
            parse_nodes(&out.stdout)
        } else {
            Vec::new()
        }),
        _ => Err(StepError::command(&cmd, &out, None)),
    }
}

impl Before {
    /// Read what is on the host now.
    /// The node records are read beside the rest (independent reads).
    pub fn observe(host: &dyn Host, at: String) -> Result<Before, StepError> {
        let (nodes, obs) = crate::steps::both(|| nodes(host), || observe::observe(host, &[]))?;
        Ok(Before::of(at, &obs?, &nodes?))
    }

    /// The record of an observed host.
    pub fn of(at: String, obs: &Observed, nodes: &[NodeRef]) -> Before {
        let mut wwids: Vec<String> = obs
            .maps
            .iter()
            .map(|m| m.wwid.clone())
            .chain(obs.disk_wwids.values().cloned())
            .collect();
        wwids.sort();
        wwids.dedup();
        Before {
            at,
            sessions: obs.sessions.iter().filter_map(Key::of_session).collect(),
            nodes: nodes.iter().map(Key::of_node).collect(),
            wwids,
            mounts: obs.mounts.iter().map(|m| m.target.clone()).collect(),
            fstab_mount_points: obs
                .fstab
                .as_deref()
                .map(fstab_mount_points)
                .unwrap_or_default(),
        }
    }
}

/// The LUNs that were not there before, as detach targets: the map and mount point the
/// run recorded for them (a mount point that was mounted or in fstab before is left out,
/// so that nothing of it is touched).
pub fn targets(before: &Before, obs: &Observed, volumes: &[VolumeFact]) -> Vec<Target> {
    let mut wwids: Vec<&String> = obs
        .maps
        .iter()
        .map(|m| &m.wwid)
        .chain(obs.disk_wwids.values())
        .filter(|w| !before.wwids.iter().any(|b| b.eq_ignore_ascii_case(w)))
        .collect();
    wwids.sort();
    wwids.dedup();
    wwids
        .into_iter()
        .map(|w| {
            let fact = volumes
                .iter()
                .find(|v| v.wwid.as_deref().is_some_and(|x| x.eq_ignore_ascii_case(w)));
            let old =
                |mp: &String| before.mounts.contains(mp) || before.fstab_mount_points.contains(mp);
            Target {
                wwid: w.clone(),
                map: obs
                    .maps
                    .iter()
                    .find(|m| &m.wwid == w)
                    .map(|m| m.name.clone())
                    .or_else(|| fact.and_then(|f| f.map_name.clone())),
                mount_point: fact
                    .and_then(|f| f.mount_point.clone())
                    .filter(|mp| !old(mp)),
                fs_device: fact.and_then(|f| f.fs_device.clone()),
            }
        })
        .collect()
}

/// Read the host as the cleanup decides on it: the observed host (with the holders of the
/// new LUNs' mounts), its node records, and the targets.
pub fn observe(
    host: &dyn Host,
    before: &Before,
    volumes: &[VolumeFact],
) -> Result<(Vec<Target>, Observed, Vec<NodeRef>), StepError> {
    let first = observe::observe(host, &[])?;
    let targets = targets(before, &first, volumes);
    let obs = if targets.is_empty() {
        first
    } else {
        observe::observe(host, &targets)?
    };
    Ok((targets, obs, nodes(host)?))
}

/// The order of the detach: mounts and fstab lines, the directories, the maps, the paths,
/// the logouts, the node records.
fn rank(a: &Act) -> u8 {
    match a {
        Act::Unmount { .. } | Act::RemoveFstabLine { .. } => 0,
        Act::RemoveDir { .. } => 1,
        Act::FailQueued { .. } | Act::Flush { .. } => 2,
        Act::DeletePath { .. } => 3,
        Act::Logout { .. } => 4,
        Act::NodeManual(_) => 5,
        Act::NodeDelete(_) => 6,
    }
}

/// What to take down after a failed run: what is new since `before` (see the module
/// contract). `made_dirs` are the directories the run made (`mkdir`). A refusal (a busy
/// mount of a new LUN) changes nothing.
pub fn decide(
    before: &Before,
    targets: &[Target],
    obs: &Observed,
    nodes: &[NodeRef],
    made_dirs: &[String],
) -> Result<Plan, StepError> {
    // The maps are the run's own: flushing one drops only the run's own queued writes.
    let detach = super::decide(targets, obs, true)?;
    let mut plan = Plan {
        wwids: detach.wwids,
        acts: Vec::new(),
        notes: detach.notes,
    };
    for act in detach.acts {
        let keep = match &act {
            Act::Unmount { mount_point } => !before.mounts.contains(mount_point),
            Act::RemoveFstabLine { mount_point, .. } => {
                !before.fstab_mount_points.contains(mount_point)
            }
            Act::Logout {
                target,
                portal,
                sid,
            } => {
                let s = obs.sessions.iter().find(|s| s.sid == Some(*sid));
                let key = s.and_then(Key::of_session).unwrap_or(Key {
                    target: target.clone(),
                    portal: portal.to_string(),
                    iface: None,
                });
                let new = !contains(&before.sessions, &key);
                if !new {
                    plan.notes.push(format!(
                        "session {sid} ({target} at {portal}) stays: it was there before the run"
                    ));
                }
                new
            }
            Act::NodeManual(n) | Act::NodeDelete(n) => !contains(&before.nodes, &Key::of(n)),
            _ => true,
        };
        if keep {
            plan.acts.push(act);
        }
    }
    // The run's sessions that carry nothing else (no LUN at all, as after a login whose
    // LUN scan had not run yet): logged out, their node records deleted.
    let deleted: BTreeSet<String> = plan
        .acts
        .iter()
        .filter_map(|a| match a {
            Act::DeletePath { dev } => Some(dev.clone()),
            _ => None,
        })
        .collect();
    let mut kept: Vec<Key> = Vec::new();
    let mut extra_nodes: Vec<Node> = Vec::new();
    for s in &obs.sessions {
        let Some(key) = Key::of_session(s) else {
            continue;
        };
        if contains(&before.sessions, &key) {
            kept.push(key);
            continue;
        }
        let logged_out = plan
            .acts
            .iter()
            .any(|a| matches!(a, Act::Logout { sid, .. } if Some(*sid) == s.sid));
        if logged_out {
            continue;
        }
        let others: Vec<&str> = s
            .disks()
            .into_iter()
            .filter(|d| !deleted.contains(*d))
            .collect();
        let (Some(sid), Some(portal)) = (
            s.sid,
            s.persistent_portal.clone().or(s.current_portal.clone()),
        ) else {
            continue;
        };
        if !others.is_empty() {
            plan.notes.push(format!(
                "session {sid} ({}) stays: it carries {} of a LUN that was there before",
                s.target,
                others.join(", ")
            ));
            kept.push(key);
            continue;
        }
        plan.acts.push(Act::Logout {
            sid,
            target: s.target.clone(),
            portal: portal.clone(),
        });
        // A session with no target name (a discovery session iscsid kept) has no record.
        if s.target.is_empty() {
            continue;
        }
        extra_nodes.push(Node {
            target: s.target.clone(),
            portal,
            iface: s.iface_name.clone().unwrap_or_else(|| "default".into()),
        });
    }
    for n in extra_nodes {
        if !contains(&before.nodes, &Key::of(&n)) {
            plan.acts.push(Act::NodeManual(n.clone()));
            plan.acts.push(Act::NodeDelete(n));
        }
    }
    // Node records the run's discovery made that no session uses (a portal that never
    // answered the login).
    for n in nodes {
        let key = Key::of_node(n);
        let listed = plan
            .acts
            .iter()
            .any(|a| matches!(a, Act::NodeDelete(d) if Key::of(d).same(&key)));
        if contains(&before.nodes, &key) || contains(&kept, &key) || listed {
            continue;
        }
        plan.acts.push(Act::NodeDelete(Node {
            target: n.target.clone(),
            portal: n.portal.clone(),
            iface: n.iface.clone().unwrap_or_else(|| "default".into()),
        }));
    }
    // The mount point directories the run made, once nothing is mounted there.
    for d in made_dirs {
        if !before.mounts.contains(d) && !before.fstab_mount_points.contains(d) {
            plan.acts.push(Act::RemoveDir { path: d.clone() });
        }
    }
    plan.acts.sort_by_key(rank);
    Ok(plan)
}

#[cfg(test)]
#[path = "rollback_tests.rs"]
mod tests;
