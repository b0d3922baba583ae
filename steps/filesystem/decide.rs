//! The filesystem step's decision: pure (no IO, no context), every safety rule in one place
//! and table-tested (`tests.rs`). The same decision serves the plan (what to change) and
//! the rerun (a finished volume decides "nothing to make").

use std::fmt;

use crate::steps::facts::VolumeFact;
use crate::steps::parse::lsblk::BlockDev;
use crate::steps::parse::parted::aligned_partition;

use super::observe::Probe;
use super::Wanted;

/// What makes the map unsafe to partition or format: the evidence of a refusal, with the
/// operator's words as its `Display`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// The map's dm uuid is not `mpath-<wwid>` (absent: `None`).
    NotTheLun {
        /// The map.
        map: String,
        /// The WWID it should carry.
        wwid: String,
        /// Its dm uuid.
        dm_uuid: Option<String>,
    },
    /// A device other than its own partition mapping is built on the map.
    HeldBy {
        /// The map.
        map: String,
        /// The holder's kernel name.
        holder: String,
    },
    /// The device is in use as swap.
    Swap {
        /// The device.
        dev: String,
    },
    /// The device is mounted.
    Mounted {
        /// The device.
        dev: String,
        /// Where.
        on: String,
    },
    /// The map carries a partition table.
    PartitionTable {
        /// The map.
        map: String,
        /// Its type (`gpt`, `dos`).
        pttype: String,
    },
    /// The map carries a filesystem signature.
    Filesystem {
        /// The map.
        map: String,
        /// Its type.
        fstype: String,
        /// Its UUID, when it has one.
        uuid: Option<String>,
    },
    /// The map carries another signature (RAID member, LVM...).
    Other {
        /// The map.
        map: String,
        /// blkid's usage.
        usage: String,
    },
    /// A line of wipefs' listing of the map.
    Wipefs {
        /// The map.
        map: String,
        /// `TYPE OFFSET`.
        line: String,
    },
    /// The map has a partition.
    Partition {
        /// The partition.
        dev: String,
        /// Its filesystem, when it has one.
        fstype: Option<String>,
    },
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finding::NotTheLun { map, wwid, dm_uuid } => write!(
                f,
                "{map} is not the multipath map of WWID {wwid} (its dm uuid is {})",
                dm_uuid.as_deref().unwrap_or("absent")
            ),
            Finding::HeldBy { map, holder } => {
                write!(f, "{map} is held by {holder} (a device built on it)")
            }
            Finding::Swap { dev } => write!(f, "{dev} is in use as swap"),
            Finding::Mounted { dev, on } => write!(f, "{dev} is mounted on {on}"),
            Finding::PartitionTable { map, pttype } => {
                write!(f, "{map} carries a {pttype} partition table")
            }
            Finding::Filesystem { map, fstype, uuid } => write!(
                f,
                "{map} carries a {fstype} signature{}",
                uuid.as_ref()
                    .map(|u| format!(" (UUID {u})"))
                    .unwrap_or_default()
            ),
            Finding::Other { map, usage } => write!(f, "{map} carries a {usage} signature"),
            Finding::Wipefs { map, line } => write!(f, "wipefs lists on {map}: {line}"),
            Finding::Partition { dev, fstype } => write!(
                f,
                "{dev} is a partition{}",
                fstype
                    .as_ref()
                    .map(|t| format!(" with a {t} filesystem"))
                    .unwrap_or_default()
            ),
        }
    }
}

/// The decision for a probe.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Refuse (exit 3): why, and the evidence.
    Refuse(String, Vec<Finding>),
    /// Make or finish the filesystem and mount; `target` is the filesystem's device when it
    /// already exists (partition node or map).
    Make {
        /// Wipe signatures first (`--force-format`).
        wipe: bool,
        /// Partition (with these first/last sectors).
        parted: Option<(u64, u64)>,
        /// Make the filesystem (on the partition node or the map).
        mkfs: bool,
        /// The existing device that will carry the filesystem, when known now.
        target: Option<String>,
        /// The filesystem UUID (existing, or the one mkfs will be given).
        uuid: Option<String>,
    },
}

impl Decision {
    /// Nothing to make: the filesystem `uuid` exists on `target`.
    fn made(target: &BlockDev) -> Self {
        Decision::Make {
            wipe: false,
            parted: None,
            mkfs: false,
            target: Some(dev_path(target)),
            uuid: target.uuid.clone(),
        }
    }
}

/// The device's path as lsblk gives it (`/dev/...`).
pub fn dev_path(d: &BlockDev) -> String {
    d.path.clone().unwrap_or_else(|| {
        if d.name.starts_with('/') {
            d.name.clone()
        } else {
            format!("/dev/{}", d.name)
        }
    })
}

/// Every mount on the map or anything built on it.
fn mounts_below(d: &BlockDev, out: &mut Vec<Finding>) {
    for m in &d.mountpoints {
        out.push(Finding::Mounted {
            dev: dev_path(d),
            on: m.clone(),
        });
    }
    for c in &d.children {
        mounts_below(c, out);
    }
}

/// Every name of the device and of what is built on it (path and kernel name).
pub fn all_paths(d: &BlockDev, out: &mut Vec<String>) {
    out.push(dev_path(d));
    if let Some(k) = &d.kname {
        out.push(format!("/dev/{k}"));
    }
    for c in &d.children {
        all_paths(c, out);
    }
}

/// Whether `dev` (or a device built on it) named `target` is mounted on `mount_point`.
pub fn mounted_at(dev: &BlockDev, target: &str, mount_point: &str) -> bool {
    (dev_path(dev) == target && dev.mountpoints.iter().any(|m| m == mount_point))
        || dev
            .children
            .iter()
            .any(|c| mounted_at(c, target, mount_point))
}

/// Whether a device in the tree carries the filesystem `uuid`.
pub fn carries_uuid(dev: &BlockDev, uuid: &str) -> bool {
    dev.uuid.as_deref() == Some(uuid) || dev.children.iter().any(|c| carries_uuid(c, uuid))
}

/// The fstab entry for a mount point, if any: (spec, fstype, options).
pub fn fstab_entry(fstab: &str, mount_point: &str) -> Option<(String, String, String)> {
    fstab.lines().find_map(|l| {
        let l = l.trim();
        if l.starts_with('#') {
            return None;
        }
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() >= 3 && f[1] == mount_point).then(|| {
            (
                f[0].to_string(),
                f[2].to_string(),
                f.get(3).unwrap_or(&"defaults").to_string(),
            )
        })
    })
}

/// The map's partitions.
fn partitions(map: &BlockDev) -> Vec<&BlockDev> {
    map.children.iter().filter(|c| c.is_type("part")).collect()
}

/// What forbids touching the map whatever `--force-format` says: another LUN, a device
/// built on it that is not its own partition mapping, swap.
fn never_touch(p: &Probe, want: &Wanted) -> Vec<Finding> {
    let map = dev_path(&p.map);
    let mut found = Vec::new();
    if let Some(w) = &want.wwid {
        let expect = format!("mpath-{w}");
        if p.dm_uuid.as_deref() != Some(expect.as_str()) {
            found.push(Finding::NotTheLun {
                map: map.clone(),
                wwid: w.clone(),
                dm_uuid: p.dm_uuid.clone(),
            });
        }
    }
    // lsblk -p prints KNAME as /dev/dm-4; sysfs holders are bare kernel names (dm-4).
    let parts = partitions(&p.map);
    let part_knames: Vec<&str> = parts
        .iter()
        .filter_map(|c| c.kname.as_deref())
        .map(|k| k.trim_start_matches("/dev/"))
        .collect();
    for h in p
        .holders
        .iter()
        .filter(|h| !part_knames.contains(&h.as_str()))
    {
        found.push(Finding::HeldBy {
            map: map.clone(),
            holder: h.clone(),
        });
    }
    let mut paths = Vec::new();
    all_paths(&p.map, &mut paths);
    for s in p.swaps.iter().filter(|s| paths.contains(s)) {
        found.push(Finding::Swap { dev: s.clone() });
    }
    found
}

/// Our own unfinished work on `t`: the filesystem we made, or the partition we made.
fn resume(t: &BlockDev, want: &Wanted, ours: &VolumeFact) -> Option<Decision> {
    let ours_fs = ours.fs_uuid.is_some() && t.uuid == ours.fs_uuid;
    if ours_fs && t.fstype.as_deref() == Some(want.fstype.as_str()) {
        return Some(Decision::made(t));
    }
    let ours_part = want.partition
        && ours.partition.as_deref() == Some(dev_path(t).as_str())
        && t.fstype.is_none()
        && t.uuid.is_none();
    ours_part.then(|| Decision::Make {
        wipe: false,
        parted: None,
        mkfs: true,
        target: Some(dev_path(t)),
        uuid: None,
    })
}

/// What says the map carries data: signatures, wipefs' list, partitions.
fn data_evidence(p: &Probe) -> Vec<Finding> {
    let map = dev_path(&p.map);
    let mut evidence = Vec::new();
    if let Some(s) = &p.signature {
        if let Some(pt) = &s.pttype {
            evidence.push(Finding::PartitionTable {
                map: map.clone(),
                pttype: pt.clone(),
            });
        }
        if let Some(fs) = &s.fs_type {
            evidence.push(Finding::Filesystem {
                map: map.clone(),
                fstype: fs.clone(),
                uuid: s.uuid.clone(),
            });
        }
        if let (None, None, Some(usage)) = (&s.pttype, &s.fs_type, &s.usage) {
            evidence.push(Finding::Other {
                map: map.clone(),
                usage: usage.clone(),
            });
        }
    }
    for w in &p.wipefs {
        evidence.push(Finding::Wipefs {
            map: map.clone(),
            line: w.clone(),
        });
    }
    for c in partitions(&p.map) {
        evidence.push(Finding::Partition {
            dev: dev_path(c),
            fstype: c.fstype.clone(),
        });
    }
    evidence
}

/// The aligned partition's first and last sectors, or why it cannot be placed.
fn partition_span(p: &Probe) -> Result<(u64, u64), Decision> {
    let map = dev_path(&p.map);
    let (lss, opt, off) = p.queue;
    match p
        .map
        .size_bytes()
        .map(|size| aligned_partition(size, lss, opt, off))
    {
        Some(Ok(r)) => Ok(r),
        Some(Err(e)) => Err(Decision::Refuse(
            format!("cannot place the partition on {map}: {e}"),
            vec![],
        )),
        None => Err(Decision::Refuse(
            format!("lsblk gave no size for {map}"),
            vec![],
        )),
    }
}

/// Decide what to do. Pure: every safety rule is here and table-tested.
pub fn decide(p: &Probe, want: &Wanted, ours: &VolumeFact) -> Decision {
    let map = dev_path(&p.map);
    let mut always = never_touch(p, want);
    let parts = partitions(&p.map);
    let target_dev: Option<&BlockDev> = if want.partition {
        (parts.len() == 1).then(|| parts[0])
    } else {
        Some(&p.map)
    };

    // Done already: the right filesystem on the right device, mounted where asked.
    if let Some(t) = target_dev {
        let mounted_here = t.mountpoints.iter().any(|m| m == want.mount_point.as_str());
        if mounted_here && t.fstype.as_deref() == Some(want.fstype.as_str()) && always.is_empty() {
            return Decision::made(t);
        }
    }
    mounts_below(&p.map, &mut always);
    if !always.is_empty() {
        return Decision::Refuse(
            format!("{map} is in use or is not the expected LUN; nothing was changed"),
            always,
        );
    }
    if let Some((src, fs)) = &p.at_mount_point {
        return Decision::Refuse(
            format!(
                "{} already has {src} ({fs}) mounted on it; choose another mount point",
                want.mount_point
            ),
            vec![Finding::Mounted {
                dev: src.clone(),
                on: want.mount_point.to_string(),
            }],
        );
    }
    if let Some(d) = target_dev.and_then(|t| resume(t, want, ours)) {
        return d;
    }

    let evidence = data_evidence(p);
    if !evidence.is_empty() && !want.force {
        return Decision::Refuse(
            format!(
                "{map} carries data (a partition table or filesystem signature); nothing was \
                 changed. If it holds nothing you need, run again with --force-format"
            ),
            evidence,
        );
    }
    let parted = if want.partition {
        match partition_span(p) {
            Ok(span) => Some(span),
            Err(refusal) => return refusal,
        }
    } else {
        None
    };
    Decision::Make {
        wipe: !evidence.is_empty(),
        parted,
        mkfs: true,
        target: if want.partition { None } else { Some(map) },
        uuid: None,
    }
}
