//! Run a detach plan. After each action the host is read again and what is left is
//! reported, never assumed gone. A mount that stays or a map that will not flush stops
//! the detach (deleting the paths under a live map would leave a ghost with I/O queued);
//! a path device, session or node record that stays is reported and the rest goes on.

use std::path::Path;
use std::time::Duration;

use crate::steps::filesystem::decide::fstab_entry;
use crate::steps::parse::iscsiadm::{parse_logout_output, parse_nodes, LogoutOutcome};
use crate::steps::poll::{poll_until, Wait};
use crate::steps::{Cmd, Host, HostError, StepError};

use super::observe;
use super::{Act, Plan};

/// How long to wait for the host to catch up.
#[derive(Debug, Clone, Copy)]
pub struct Waits {
    /// For a flushed map to leave `multipath -ll`.
    pub map: Wait,
    /// For deleted path devices to leave `/sys/block`.
    pub paths: Wait,
}

impl Default for Waits {
    fn default() -> Self {
        Waits {
            map: Wait::new(Duration::from_secs(15), Duration::from_millis(500)),
            paths: Wait::new(Duration::from_secs(30), Duration::from_millis(250)),
        }
    }
}

/// What a detach did, and what it found still there afterwards.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Each action done, as the operator reads it.
    pub done: Vec<String>,
    /// What is still there that the detach meant to remove.
    pub left: Vec<String>,
}

/// A detach that stopped: why, and what it had done until then.
#[derive(Debug)]
pub struct Stopped {
    /// Why it stopped.
    pub error: StepError,
    /// What was done and what is left.
    pub outcome: Outcome,
}

/// Run `plan` on `host`.
/// (The error is boxed: rare, and large.)
pub fn apply(host: &dyn Host, plan: &Plan, waits: Waits) -> Result<Outcome, Box<Stopped>> {
    let mut out = Outcome::default();
    match run(host, plan, waits, &mut out) {
        Ok(()) => Ok(out),
        Err(error) => Err(Box::new(Stopped {
            error,
            outcome: out,
        })),
    }
}

fn checked(host: &dyn Host, cmd: &Cmd, hint: Option<&str>) -> Result<String, StepError> {
    let o = host.run(cmd)?;
    if o.success() {
        Ok(o.stdout)
    } else {
        Err(StepError::command(cmd, &o, hint.map(str::to_string)))
    }
}

fn run(host: &dyn Host, plan: &Plan, waits: Waits, out: &mut Outcome) -> Result<(), StepError> {
    let mut deleted: Vec<String> = Vec::new();
    let mut logged_out: Vec<u32> = Vec::new();
    let mut nodes_deleted = Vec::new();
    for (i, act) in plan.acts.iter().enumerate() {
        if host.interrupted() {
            return Err(StepError::Host(HostError::Interrupted));
        }
        match act {
            Act::Unmount { mount_point } => {
                let cmd = act.cmd().expect("unmount runs a command");
                checked(
                    host,
                    &cmd,
                    Some("something started using it after the check: stop it, detach again"),
                )?;
                if observe::mounts(host)?
                    .iter()
                    .any(|m| &m.target == mount_point)
                {
                    return Err(StepError::Failed(format!(
                        "{mount_point} is still mounted after umount (mounted twice?): \
                         stopped before the map"
                    )));
                }
            }
            Act::RemoveFstabLine {
                mount_point, new, ..
            } => {
                host.write(Path::new("/etc/fstab"), new, 0o644)?;
                let now = host.read(Path::new("/etc/fstab"))?.unwrap_or_default();
                if fstab_entry(&now, mount_point).is_some() {
                    out.left
                        .push(format!("/etc/fstab still mounts {mount_point}"));
                }
            }
            Act::RemoveDir { path } => {
                // Only an empty directory goes (rmdir): anything put in it stays, reported.
                if let Err(e) = host.remove_dir(Path::new(path)) {
                    out.left.push(format!("directory {path}: {e}"));
                } else if host.exists(Path::new(path)) {
                    out.left.push(format!("directory {path} is still there"));
                }
            }
            Act::FailQueued { .. } => {
                checked(host, &act.cmd().expect("a command"), None)?;
            }
            Act::Flush { map, wwid } => {
                checked(
                    host,
                    &act.cmd().expect("a command"),
                    Some(
                        "the map is still open or holds queued I/O: close what uses it; \
                         `--force` drops queued I/O",
                    ),
                )?;
                let gone = poll_until(host, waits.map, || {
                    Ok(observe::maps(host)?
                        .iter()
                        .all(|m| &m.wwid != wwid)
                        .then_some(()))
                })?;
                if gone.is_none() {
                    return Err(StepError::Failed(format!(
                        "map {map} ({wwid}) is still there {} s after the flush: stopped \
                         before deleting its paths",
                        waits.map.bound.as_secs()
                    )));
                }
            }
            Act::DeletePath { dev } => {
                let attr = format!("/sys/block/{dev}/device/delete");
                if host.exists(Path::new(&format!("/sys/block/{dev}"))) {
                    host.write_attr(Path::new(&attr), "1")?;
                }
                deleted.push(dev.clone());
            }
            Act::Logout { sid, .. } => {
                let cmd = act.cmd().expect("a command");
                let o = host.run(&cmd)?;
                let failed: Vec<String> = parse_logout_output(&o.stdout)
                    .into_iter()
                    .chain(parse_logout_output(&o.stderr))
                    .filter_map(|r| match r.outcome {
                        LogoutOutcome::Failed { reason, .. } => Some(format!(
                            "session {}: {}",
                            r.session.sid,
                            reason.unwrap_or_else(|| "logout failed".into())
                        )),
                        _ => None,
                    })
                    .collect();
                if !o.success() || !failed.is_empty() {
                    out.left.push(format!(
                        "`{cmd}` ({}): {}",
                        o.describe_status(),
                        if failed.is_empty() {
                            o.tail(3)
                        } else {
                            failed.join("; ")
                        }
                    ));
                }
                logged_out.push(*sid);
            }
            Act::NodeManual(_) | Act::NodeDelete(_) => {
                let cmd = act.cmd().expect("a command");
                let o = host.run(&cmd)?;
                if !o.success() {
                    out.left
                        .push(format!("`{cmd}` ({}): {}", o.describe_status(), o.tail(3)));
                }
                if let Act::NodeDelete(n) = act {
                    nodes_deleted.push(n.clone());
                }
            }
        }
        out.done.push(act.to_string());
        // The deletions are checked together once the last one is written: the kernel
        // removes them in parallel, and multipathd drops them as they go.
        let last_delete = matches!(act, Act::DeletePath { .. })
            && !matches!(plan.acts.get(i + 1), Some(Act::DeletePath { .. }));
        if last_delete {
            let gone = poll_until(host, waits.paths, || {
                Ok(deleted
                    .iter()
                    .all(|d| !host.exists(Path::new(&format!("/sys/block/{d}"))))
                    .then_some(()))
            })?;
            if gone.is_none() {
                out.left.extend(
                    deleted
                        .iter()
                        .filter(|d| host.exists(Path::new(&format!("/sys/block/{d}"))))
                        .map(|d| {
                            format!(
                                "path device {d} is still there {} s after its delete",
                                waits.paths.bound.as_secs()
                            )
                        }),
                );
            }
        }
    }
    if !logged_out.is_empty() {
        let still: Vec<String> = observe::sessions(host)?
            .into_iter()
            .filter(|s| s.sid.is_some_and(|n| logged_out.contains(&n)))
            .map(|s| {
                format!(
                    "session {} ({}) is still logged in",
                    s.sid.unwrap_or(0),
                    s.target
                )
            })
            .collect();
        out.left.extend(still);
    }
    if !nodes_deleted.is_empty() && host.which("iscsiadm").is_some() {
        let cmd = Cmd::probe(["iscsiadm", "-m", "node", "-P", "1"]);
        let o = host.run(&cmd)?;
        if o.success() {
            for n in parse_nodes(&o.stdout) {
                if nodes_deleted.iter().any(|d| {
                    d.target == n.target
                        && d.portal == n.portal
                        && n.iface.as_deref().is_none_or(|i| i == d.iface)
                }) {
                    out.left.push(format!(
                        "node record {} {} is still there",
                        n.target, n.portal
                    ));
                }
            }
        }
    }
    Ok(())
}
