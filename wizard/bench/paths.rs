//! Per-path balance: how the I/O of a workload spread over the multipath map's paths.
//!
//! fio's `disk_util` averages the slave counters and hides an imbalance (METHOD.md), so the
//! bench reads `/sys/block/<dev>/stat` of the map and of every path before and after a
//! workload and turns the deltas into rates, grouped by path group as `multipath -ll` shows
//! them, with the map's own total beside them (the `nic-queue-usage` view of the method).
//!
//! Contract: [`DiskStat::parse`] reads the kernel's block `stat` file (sectors are 512
//! bytes whatever the device's block size); [`balance`] is pure. A path missing from either
//! snapshot is shown with no rate (it came or went during the workload). An imbalance is
//! judged inside the active group only (E-Series maps are RDAC: the other controller's
//! paths carry nothing by design): a path of that group carrying less than half, or more
//! than one and a half times, its even share of the group's bytes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The counters of `/sys/block/<dev>/stat` the bench uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskStat {
    /// Reads completed.
    pub read_ios: u64,
    /// Sectors read (512 bytes each).
    pub read_sectors: u64,
    /// Writes completed.
    pub write_ios: u64,
    /// Sectors written.
    pub write_sectors: u64,
}

impl DiskStat {
    /// Parse the `stat` file: at least the first 7 of its whitespace-separated fields.
    pub fn parse(text: &str) -> Option<DiskStat> {
        let f: Vec<u64> = text
            .split_whitespace()
            .map(|w| w.parse().ok())
            .collect::<Option<Vec<u64>>>()?;
        if f.len() < 7 {
            return None;
        }
        Some(DiskStat {
            read_ios: f[0],
            read_sectors: f[2],
            write_ios: f[4],
            write_sectors: f[6],
        })
    }

    /// I/Os and bytes from `before` to `self` (a counter that went backwards counts 0).
    pub fn since(&self, before: &DiskStat) -> (u64, u64) {
        let ios = self.read_ios.saturating_sub(before.read_ios)
            + self.write_ios.saturating_sub(before.write_ios);
        let sectors = self.read_sectors.saturating_sub(before.read_sectors)
            + self.write_sectors.saturating_sub(before.write_sectors);
        (ios, sectors * 512)
    }
}

/// A path group of the map, in `multipath -ll`'s order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    /// `active`, `enabled`, or what multipath printed.
    pub status: String,
    /// The group's priority, when printed.
    pub prio: Option<i32>,
    /// The SCSI disks of the group (`sdb`).
    pub paths: Vec<String>,
}

/// The map and its groups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    /// The map's block device (`dm-0`).
    pub map: String,
    /// Its path groups.
    pub groups: Vec<Group>,
}

impl Layout {
    /// Every block device whose counters are read: the map, then the paths.
    pub fn devices(&self) -> Vec<String> {
        let mut v = vec![self.map.clone()];
        v.extend(self.groups.iter().flat_map(|g| g.paths.iter().cloned()));
        v
    }
}

/// One device's rate over a workload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PathRate {
    /// The block device.
    pub dev: String,
    /// I/Os per second; `None` when the device was not in both snapshots.
    pub ios_per_s: Option<f64>,
    /// Bytes per second; `None` likewise.
    pub bytes_per_s: Option<f64>,
    /// Its share of the map's bytes, in percent (paths only).
    pub share_pct: Option<f64>,
}

/// A group's rates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupRate {
    /// As in [`Group::status`].
    pub status: String,
    /// As in [`Group::prio`].
    pub prio: Option<i32>,
    /// Its paths.
    pub paths: Vec<PathRate>,
}

/// The balance of one workload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Balance {
    /// The map's own rate.
    pub map: PathRate,
    /// The groups.
    pub groups: Vec<GroupRate>,
    /// What is uneven inside the active group, if anything.
    pub imbalance: Option<String>,
}

/// A path's share of its group outside this band of its even share is an imbalance.
const SHARE_BAND: (f64, f64) = (0.5, 1.5);

fn rate(
    dev: &str,
    before: &BTreeMap<String, DiskStat>,
    after: &BTreeMap<String, DiskStat>,
    seconds: f64,
) -> (PathRate, Option<u64>) {
    match (before.get(dev), after.get(dev)) {
        (Some(b), Some(a)) if seconds > 0.0 => {
            let (ios, bytes) = a.since(b);
            (
                PathRate {
                    dev: dev.to_string(),
                    ios_per_s: Some(ios as f64 / seconds),
                    bytes_per_s: Some(bytes as f64 / seconds),
                    share_pct: None,
                },
                Some(bytes),
            )
        }
        _ => (
            PathRate {
                dev: dev.to_string(),
                ios_per_s: None,
                bytes_per_s: None,
                share_pct: None,
            },
            None,
        ),
    }
}

/// The balance over a workload that took `seconds`, from the snapshots around it.
pub fn balance(
    layout: &Layout,
    before: &BTreeMap<String, DiskStat>,
    after: &BTreeMap<String, DiskStat>,
    seconds: f64,
) -> Balance {
    let (map, _) = rate(&layout.map, before, after, seconds);
    let mut all_bytes = 0u64;
    let mut groups = Vec::new();
    let mut counted: Vec<Vec<Option<u64>>> = Vec::new();
    for g in &layout.groups {
        let mut paths = Vec::new();
        let mut bytes = Vec::new();
        for p in &g.paths {
            let (r, b) = rate(p, before, after, seconds);
            all_bytes += b.unwrap_or(0);
            paths.push(r);
            bytes.push(b);
        }
        groups.push(GroupRate {
            status: g.status.clone(),
            prio: g.prio,
            paths,
        });
        counted.push(bytes);
    }
    for (g, bytes) in groups.iter_mut().zip(&counted) {
        for (p, b) in g.paths.iter_mut().zip(bytes) {
            if let (Some(b), true) = (b, all_bytes > 0) {
                p.share_pct = Some(*b as f64 * 100.0 / all_bytes as f64);
            }
        }
    }
    // Before any I/O multipath may show no group "active" (ALUA's one group is "enabled"):
    // the first group listed is then the one in use, as multipath orders them by priority.
    let active = groups
        .iter()
        .position(|g| g.status == "active")
        .unwrap_or(0);
    let imbalance = groups.get(active).and_then(|g| judge(g, &counted[active]));
    Balance {
        map,
        groups,
        imbalance,
    }
}

fn judge(g: &GroupRate, bytes: &[Option<u64>]) -> Option<String> {
    if g.paths.len() < 2 {
        return None;
    }
    let total: u64 = bytes.iter().flatten().sum();
    if total == 0 {
        return None;
    }
    let even = total as f64 / g.paths.len() as f64;
    let uneven: Vec<String> = g
        .paths
        .iter()
        .zip(bytes)
        .filter_map(|(p, b)| {
            let share = b.unwrap_or(0) as f64 / even;
            (!(SHARE_BAND.0..=SHARE_BAND.1).contains(&share))
                .then(|| format!("{} carries {:.0}% of an even share", p.dev, share * 100.0))
        })
        .collect();
    (!uneven.is_empty()).then(|| {
        format!(
            "imbalance in the active group: {} (a path selector or a slow path?)",
            uneven.join(", ")
        )
    })
}

/// The layout from `multipath -ll`'s map: its groups with their status and disks.
pub fn layout_of(map_dev: &str, map: &crate::steps::parse::multipath::Map) -> Layout {
    Layout {
        map: map_dev.to_string(),
        groups: map
            .path_groups
            .iter()
            .map(|g| Group {
                status: g.status.clone().unwrap_or_default(),
                prio: g.prio,
                paths: g.paths.iter().filter_map(|p| p.dev.clone()).collect(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(read_sectors: u64, write_sectors: u64) -> DiskStat {
        DiskStat {
            read_ios: read_sectors / 8,
            read_sectors,
            write_ios: write_sectors / 8,
            write_sectors,
        }
    }

    fn layout() -> Layout {
        Layout {
            map: "dm-0".into(),
            groups: vec![
                Group {
                    status: "active".into(),
                    prio: Some(14),
                    paths: vec!["sdb".into(), "sdd".into()],
                },
                Group {
                    status: "enabled".into(),
                    prio: Some(9),
                    paths: vec!["sdc".into(), "sde".into()],
                },
            ],
        }
    }

    fn snaps(after: &[(&str, u64)]) -> (BTreeMap<String, DiskStat>, BTreeMap<String, DiskStat>) {
        let before = after
            .iter()
            .map(|(d, _)| (d.to_string(), stat(1000, 0)))
            .collect();
        let after = after
            .iter()
            .map(|(d, s)| (d.to_string(), stat(1000 + s, 0)))
            .collect();
        (before, after)
    }

    #[test]
    fn the_kernel_stat_file_parses() {
        let text = "    1234        5    98765      321     4321        6    56789      654        0      987     1975        0        0        0        0        0        0\n";
        let s = DiskStat::parse(text).unwrap();
        assert_eq!(
            s,
            DiskStat {
                read_ios: 1234,
                read_sectors: 98765,
                write_ios: 4321,
                write_sectors: 56789
            }
        );
        assert_eq!(DiskStat::parse("1 2 3"), None);
        assert_eq!(DiskStat::parse("1 2 x 4 5 6 7"), None);
        let later = DiskStat {
            read_sectors: 98765 + 2,
            ..s
        };
        assert_eq!(later.since(&s), (0, 1024));
        assert_eq!(
            s.since(&later),
            (0, 0),
            "a counter going back counts nothing"
        );
    }

    #[test]
    fn an_even_active_group_is_balanced_and_rdac_s_idle_group_is_no_imbalance() {
        let (b, a) = snaps(&[
            ("dm-0", 2000),
            ("sdb", 1000),
            ("sdd", 1000),
            ("sdc", 0),
            ("sde", 0),
        ]);
        let r = balance(&layout(), &b, &a, 2.0);
        assert_eq!(r.map.bytes_per_s, Some(2000.0 * 512.0 / 2.0));
        assert_eq!(r.groups[0].paths[0].bytes_per_s, Some(1000.0 * 512.0 / 2.0));
        assert_eq!(r.groups[0].paths[1].share_pct, Some(50.0));
        assert_eq!(r.groups[1].paths[0].share_pct, Some(0.0));
        assert_eq!(r.imbalance, None);
    }

    #[test]
    fn an_uneven_active_group_is_flagged_naming_the_paths() {
        let (b, a) = snaps(&[
            ("dm-0", 2000),
            ("sdb", 1800),
            ("sdd", 200),
            ("sdc", 0),
            ("sde", 0),
        ]);
        let r = balance(&layout(), &b, &a, 1.0);
        let why = r.imbalance.unwrap();
        assert!(why.contains("sdb carries 180%"), "{why}");
        assert!(why.contains("sdd carries 20%"), "{why}");
        // Just inside the band on both sides: not flagged.
        let (b, a) = snaps(&[
            ("dm-0", 2000),
            ("sdb", 1290),
            ("sdd", 710),
            ("sdc", 0),
            ("sde", 0),
        ]);
        assert_eq!(balance(&layout(), &b, &a, 1.0).imbalance, None);
    }

    #[test]
    fn a_path_missing_from_a_snapshot_has_no_rate() {
        let (b, mut a) = snaps(&[("dm-0", 10), ("sdb", 10), ("sdd", 0)]);
        a.remove("sdd");
        let r = balance(&layout(), &b, &a, 1.0);
        assert_eq!(r.groups[0].paths[1].bytes_per_s, None);
        assert_eq!(r.groups[1].paths[0].bytes_per_s, None);
        assert_eq!(r.groups[0].paths[0].share_pct, Some(100.0));
        // The missing path carries nothing of an even share: flagged.
        assert!(r.imbalance.is_some());
    }

    #[test]
    fn the_layout_comes_from_multipath_ll() {
        let Some((_, text, _)) = crate::steps::parse::fixtures::lab_fixture("multipath-ll.txt")
        else {
            return;
        };
        let maps = crate::steps::parse::multipath::parse_multipath_ll(&text);
        let l = layout_of("dm-0", &maps[0]);
        assert!(!l.groups.is_empty());
        assert_eq!(l.devices()[0], "dm-0");
        assert_eq!(
            l.devices().len(),
            1 + maps[0].paths().filter(|p| p.dev.is_some()).count()
        );
    }
}
