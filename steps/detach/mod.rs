//! `iser-wizard detach`: take attached volumes apart in the order production attach code
//! uses (DOMAIN.md "Detach", after os-brick's `disconnect_volume` and Trident):
//! unmount, remove the fstab line, flush the multipath map, delete the path devices and
//! wait for them to go, log out the sessions that carry no other LUN, set their node
//! records to manual start and delete them.
//!
//! Contract:
//! - *want* ([`want::select`]) reads the attached volumes only through
//!   [`Facts::attached_volumes`](crate::steps::Facts::attached_volumes), so one volume
//!   and many are handled alike; naming a mount point that is not attached is a usage error.
//! - *observe* ([`observe::observe`]) only reads: `/proc/self/mounts`, `/etc/fstab`,
//!   `multipath -ll`, `iscsiadm -m session -P 3`, `/sys/block/sd*/device/wwid`, and the
//!   processes (`/proc/PID/{cwd,root,exe,fd,maps}`) holding anything below a mount point.
//! - *decide* ([`decide::decide`]) is pure: the observed host and the volumes give either
//!   a [`Plan`] (the actions in order, and notes on what is kept and why) or a refusal
//!   naming what it saw: a busy mount (its holders listed), a mount point holding another
//!   device, or a map whose flush would drop queued I/O (`queue_if_no_path` with a path
//!   down) unless forced. A refusal changes nothing (exit 3).
//! - *apply* ([`apply::apply`]) runs the plan; after each action it reads the host again
//!   and reports what is left rather than assuming it gone. It stops where going on would
//!   be unsafe (a mount or a map that would not go); later leftovers (a path device that
//!   does not disappear, a session that stays) are reported and the rest goes on.
//! - The same plan drives `--dry-run`, which prints it and changes nothing.
//! - Ghost maps (no working path: [`decide::is_ghost`]) are detached like a volume with
//!   no mount (`detach --all` adds them); `status` reports them and the stale session
//!   devices ([`decide::stale_devices`]) with the same functions.

pub mod apply;
pub mod decide;
pub mod observe;
pub mod rollback;
pub mod want;

#[cfg(test)]
mod tests;

use std::fmt;

use crate::steps::host::Cmd;
use crate::steps::parse::iscsiadm::Portal;

pub use apply::{apply, Outcome};
pub use decide::decide;
pub use observe::observe;
pub use want::{select, Target};

/// One action of a detach, in the order it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Act {
    /// Unmount a filesystem of the volume.
    Unmount {
        /// The mount point.
        mount_point: String,
    },
    /// Rewrite `/etc/fstab` without the volume's line (backed up on its first change).
    RemoveFstabLine {
        /// The mount point whose line goes.
        mount_point: String,
        /// `/etc/fstab` as it is.
        old: String,
        /// `/etc/fstab` without the line.
        new: String,
    },
    /// Remove an (empty) mount point directory that a failed run made (only a cleanup
    /// after a failed attach plans this: `detach` leaves mount points alone).
    RemoveDir {
        /// The directory.
        path: String,
    },
    /// Make the map fail queued and new I/O instead of queueing it (only with `--force`),
    /// so the flush can proceed; whatever was queued is lost.
    FailQueued {
        /// The map.
        map: String,
    },
    /// Flush (remove) the multipath map.
    Flush {
        /// The map's name.
        map: String,
        /// Its WWID, to check that it is gone.
        wwid: String,
    },
    /// Delete a SCSI path device of the LUN (`/sys/block/DEV/device/delete`).
    DeletePath {
        /// The disk (`sdc`).
        dev: String,
    },
    /// Log out of a session that carries no other LUN.
    Logout {
        /// Session id.
        sid: u32,
        /// Its target.
        target: String,
        /// Its portal.
        portal: Portal,
    },
    /// Set a node record's start to manual, so that no boot logs in again.
    NodeManual(Node),
    /// Delete a node record.
    NodeDelete(Node),
}

/// A node record: target, portal and iface.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Node {
    /// Target IQN.
    pub target: String,
    /// Portal.
    pub portal: Portal,
    /// iface name.
    pub iface: String,
}

impl Node {
    fn args(&self) -> Vec<String> {
        [
            "iscsiadm",
            "-m",
            "node",
            "-T",
            &self.target,
            "-p",
            &self.portal.to_string(),
            "-I",
            &self.iface,
        ]
        .map(str::to_string)
        .to_vec()
    }
}

impl Act {
    /// The command this action runs, if it runs one (file and sysfs writes do not).
    pub fn cmd(&self) -> Option<Cmd> {
        Some(match self {
            Act::Unmount { mount_point } => Cmd::change(["umount", mount_point.as_str()]),
            Act::FailQueued { map } => {
                Cmd::change(["dmsetup", "message", map.as_str(), "0", "fail_if_no_path"])
            }
            Act::Flush { map, .. } => Cmd::change(["multipath", "-f", map.as_str()]),
            Act::Logout { sid, .. } => {
                Cmd::change(["iscsiadm", "-m", "session", "-r", &sid.to_string(), "-u"])
            }
            Act::NodeManual(n) => {
                Cmd::change(n.args().into_iter().chain(
                    ["-o", "update", "-n", "node.startup", "-v", "manual"].map(str::to_string),
                ))
            }
            Act::NodeDelete(n) => Cmd::change(
                n.args()
                    .into_iter()
                    .chain(["-o", "delete"].map(str::to_string)),
            ),
            Act::RemoveFstabLine { .. } | Act::RemoveDir { .. } | Act::DeletePath { .. } => {
                return None
            }
        })
    }
}

impl fmt::Display for Act {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Act::Unmount { mount_point } => write!(f, "unmount {mount_point}"),
            Act::RemoveFstabLine { mount_point, .. } => {
                write!(f, "remove the /etc/fstab line of {mount_point}")
            }
            Act::RemoveDir { path } => {
                write!(
                    f,
                    "remove the mount point directory {path} (made by this run)"
                )
            }
            Act::FailQueued { map } => write!(
                f,
                "fail the I/O queued on map {map} (--force: queued writes are lost)"
            ),
            Act::Flush { map, wwid } => write!(f, "flush multipath map {map} ({wwid})"),
            Act::DeletePath { dev } => {
                write!(
                    f,
                    "delete path device {dev} (/sys/block/{dev}/device/delete)"
                )
            }
            Act::Logout {
                sid,
                target,
                portal,
            } => write!(f, "log out of session {sid} ({target} at {portal})"),
            Act::NodeManual(n) => write!(
                f,
                "set node {} {} iface {} to manual start",
                n.target, n.portal, n.iface
            ),
            Act::NodeDelete(n) => write!(
                f,
                "delete node record {} {} iface {}",
                n.target, n.portal, n.iface
            ),
        }?;
        if let Some(cmd) = self.cmd() {
            write!(f, ": `{cmd}`")?;
        }
        Ok(())
    }
}

/// What a detach will do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// The WWIDs of the volumes it detaches.
    pub wwids: Vec<String>,
    /// The actions, in order.
    pub acts: Vec<Act>,
    /// What is left alone, and why (a session kept for another LUN, a map already gone).
    pub notes: Vec<String>,
}

impl Plan {
    /// The plan as the operator reads it: numbered actions, then the notes.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if self.acts.is_empty() {
            out.push_str("nothing to do: the volume's stack is already gone\n");
        }
        for (i, a) in self.acts.iter().enumerate() {
            out.push_str(&format!("{:>2}. {a}\n", i + 1));
            if let Act::RemoveFstabLine { old, new, .. } = a {
                out.push_str(&crate::steps::plan::unified_diff(
                    std::path::Path::new("/etc/fstab"),
                    Some(old),
                    new,
                ));
            }
        }
        for n in &self.notes {
            out.push_str(&format!("note: {n}\n"));
        }
        out
    }
}
