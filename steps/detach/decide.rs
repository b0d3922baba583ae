//! The pure heart of a detach: the volumes and the observed host give the actions in the
//! order of DOMAIN.md "Detach", or a refusal that names what was seen. Table-tested in
//! `tests.rs`; nothing here reads or changes the host.

use std::collections::BTreeSet;

use crate::steps::filesystem::decide::fstab_entry;
use crate::steps::parse::multipath::Map;
use crate::steps::StepError;

use super::observe::{below, Mount, Observed};
use super::{Act, Node, Plan, Target};

/// Whether a mount is of this volume: at its recorded mount point, or of its filesystem
/// device, or of the map or one of its partitions (`/dev/mapper/mpatha-part1`).
pub fn mount_is_of(m: &Mount, t: &Target, map: Option<&str>) -> bool {
    if t.fs_device.as_deref() == Some(m.source.as_str()) {
        return true;
    }
    let of_map = |name: &str| {
        m.source
            .strip_prefix("/dev/mapper/")
            .and_then(|rest| rest.strip_prefix(name))
            .is_some_and(|tail| {
                tail.is_empty()
                    || tail
                        .strip_prefix("-part")
                        .or_else(|| tail.strip_prefix('p'))
                        .is_some_and(|n| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()))
            })
    };
    map.is_some_and(of_map) || t.map.as_deref().is_some_and(of_map)
}

/// Whether a path of a map is healthy: the kernel uses it and the checker finds it ready.
fn healthy(p: &crate::steps::parse::multipath::Path) -> bool {
    p.dm_state.as_deref() == Some("active") && p.path_state.as_deref() == Some("ready")
}

/// Whether flushing `map` could drop queued I/O: it queues when no path is left
/// (`queue_if_no_path`, or `no_path_retry` shown as `queue_if_no_path` in its features)
/// and some path is down, so writes may be waiting in the queue.
pub fn flush_may_lose_io(map: &Map) -> bool {
    let queues = map
        .features
        .as_deref()
        .is_some_and(|f| f.contains("queue_if_no_path"));
    let paths: Vec<_> = map.path_groups.iter().flat_map(|g| &g.paths).collect();
    queues && (paths.is_empty() || !paths.iter().all(|p| healthy(p)))
}

/// Whether a map is a ghost: not one of its paths works (all failed, or none left), so its
/// LUN is no longer reachable from this host. (DOMAIN.md adds "and no longer mapped on the
/// array": without an `array` section that cannot be asked, so a map with no working path
/// is reported as a ghost and the operator decides.)
pub fn is_ghost(map: &Map) -> bool {
    !map.path_groups.iter().flat_map(|g| &g.paths).any(healthy)
}

/// SCSI devices of the sessions that the kernel no longer runs (`offline`, `blocked`,
/// `transport-offline`, ...): stale devices a LUN left behind. As `sdX (session N, LUN L):
/// STATE`.
pub fn stale_devices(sessions: &[crate::steps::parse::iscsiadm::SessionDetail]) -> Vec<String> {
    sessions
        .iter()
        .flat_map(|s| {
            s.devices.iter().filter_map(move |d| {
                let state = d.state.as_deref()?;
                (state != "running").then(|| {
                    format!(
                        "{} (session {}, LUN {}): {state}",
                        d.disk.as_deref().unwrap_or("-"),
                        s.sid.map(|n| n.to_string()).unwrap_or_else(|| "?".into()),
                        d.lun
                    )
                })
            })
        })
        .collect()
}

fn refused(reason: String, evidence: Vec<String>) -> StepError {
    StepError::Refused { reason, evidence }
}

/// Decide the detach of `targets` on the observed host. `force` lets a flush drop queued
/// I/O (never a busy mount through).
pub fn decide(targets: &[Target], obs: &Observed, force: bool) -> Result<Plan, StepError> {
    let mut plan = Plan::default();
    let mut mount_acts = Vec::new();
    let mut fstab = obs.fstab.clone();
    let mut map_acts = Vec::new();
    let mut paths: BTreeSet<String> = BTreeSet::new();
    for t in targets {
        plan.wwids.push(t.wwid.clone());
        let map = obs.maps.iter().find(|m| m.wwid == t.wwid);
        // 1. Mounts of the volume, deepest first; refuse a busy one or one with other
        //    filesystems mounted below it.
        let mut ours: Vec<&Mount> = obs
            .mounts
            .iter()
            .filter(|m| mount_is_of(m, t, map.map(|m| m.name.as_str())))
            .collect();
        if let Some(mp) = &t.mount_point {
            if let Some(other) = obs
                .mounts
                .iter()
                .rev()
                .find(|m| &m.target == mp && !ours.contains(m))
            {
                return Err(refused(
                    format!(
                        "{mp} holds {} now, not this volume ({})",
                        other.source, t.wwid
                    ),
                    vec![format!("{} on {}", other.source, other.target)],
                ));
            }
        }
        ours.sort_by_key(|m| std::cmp::Reverse(m.target.len()));
        for m in &ours {
            let nested: Vec<String> = obs
                .mounts
                .iter()
                .filter(|n| n.target != m.target && below(&n.target, &m.target))
                .filter(|n| !ours.contains(n))
                .map(|n| format!("{} on {}", n.source, n.target))
                .collect();
            let holders = obs.holders.get(&m.target).cloned().unwrap_or_default();
            if !holders.is_empty() || !nested.is_empty() {
                return Err(refused(
                    format!(
                        "{} is busy: stop what uses it (or unmount what is mounted below it), \
                         then detach again",
                        m.target
                    ),
                    holders.into_iter().chain(nested).collect(),
                ));
            }
            let act = Act::Unmount {
                mount_point: m.target.clone(),
            };
            if !mount_acts.contains(&act) {
                mount_acts.push(act);
            }
        }
        // The fstab line: the volume's mount point.
        if let (Some(mp), Some(text)) = (&t.mount_point, &fstab) {
            if fstab_entry(text, mp).is_some() {
                let new = remove_fstab_line(text, mp);
                mount_acts.push(Act::RemoveFstabLine {
                    mount_point: mp.clone(),
                    old: text.clone(),
                    new: new.clone(),
                });
                fstab = Some(new);
            }
        }
        // 2. The map.
        match map {
            Some(m) => {
                if flush_may_lose_io(m) {
                    if !force {
                        return Err(refused(
                            format!(
                                "map {} queues I/O while a path is down: flushing it could \
                                 lose writes still queued; bring the paths back, or detach \
                                 with --force to drop what is queued",
                                m.name
                            ),
                            m.path_groups
                                .iter()
                                .flat_map(|g| &g.paths)
                                .map(|p| {
                                    format!(
                                        "{} {} {}",
                                        p.dev.as_deref().unwrap_or("-"),
                                        p.dm_state.as_deref().unwrap_or("?"),
                                        p.path_state.as_deref().unwrap_or("?")
                                    )
                                })
                                .chain([format!(
                                    "features='{}'",
                                    m.features.as_deref().unwrap_or("")
                                )])
                                .collect(),
                        ));
                    }
                    map_acts.push(Act::FailQueued {
                        map: m.name.clone(),
                    });
                }
                map_acts.push(Act::Flush {
                    map: m.name.clone(),
                    wwid: t.wwid.clone(),
                });
                paths.extend(
                    m.path_groups
                        .iter()
                        .flat_map(|g| &g.paths)
                        .filter_map(|p| p.dev.clone()),
                );
            }
            None => plan.notes.push(format!(
                "no multipath map of {} is left: nothing to flush",
                t.wwid
            )),
        }
        // 3. Every SCSI disk of the LUN, in the map or not (a path multipathd dropped).
        paths.extend(
            obs.disk_wwids
                .iter()
                .filter(|(_, w)| **w == t.wwid)
                .map(|(d, _)| d.clone()),
        );
    }
    // 4. Sessions that carry nothing but the paths being deleted.
    let mut session_acts = Vec::new();
    let mut nodes = BTreeSet::new();
    for s in &obs.sessions {
        let disks: Vec<&str> = s.disks();
        let ours = disks.iter().any(|d| paths.contains(*d));
        if !ours {
            continue;
        }
        let others: Vec<&str> = disks
            .iter()
            .copied()
            .filter(|d| !paths.contains(*d))
            .collect();
        let sid = s.sid.map(|n| n.to_string()).unwrap_or_else(|| "?".into());
        if !others.is_empty() {
            plan.notes.push(format!(
                "session {sid} ({}) stays: it carries {} of another LUN",
                s.target,
                others.join(", ")
            ));
            continue;
        }
        let (Some(sid), Some(portal)) = (
            s.sid,
            s.persistent_portal.clone().or(s.current_portal.clone()),
        ) else {
            plan.notes.push(format!(
                "session {sid} ({}) names no session id or portal: log it out by hand",
                s.target
            ));
            continue;
        };
        session_acts.push(Act::Logout {
            sid,
            target: s.target.clone(),
            portal: portal.clone(),
        });
        nodes.insert(Node {
            target: s.target.clone(),
            portal,
            iface: s.iface_name.clone().unwrap_or_else(|| "default".into()),
        });
    }
    plan.acts.extend(mount_acts);
    plan.acts.extend(map_acts);
    plan.acts
        .extend(paths.into_iter().map(|dev| Act::DeletePath { dev }));
    plan.acts.extend(session_acts);
    for n in &nodes {
        plan.acts.push(Act::NodeManual(n.clone()));
    }
    for n in nodes {
        plan.acts.push(Act::NodeDelete(n));
    }
    Ok(plan)
}

/// `/etc/fstab` without the (uncommented) lines that mount something on `mount_point`;
/// every other byte kept.
pub fn remove_fstab_line(fstab: &str, mount_point: &str) -> String {
    fstab
        .split_inclusive('\n')
        .filter(|l| {
            let t = l.trim();
            if t.starts_with('#') {
                return true;
            }
            let f: Vec<&str> = t.split_whitespace().collect();
            !(f.len() >= 2 && f[1] == mount_point)
        })
        .collect()
}
