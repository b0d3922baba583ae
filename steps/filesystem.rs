//! The filesystem step: safety checks, GPT partition, mkfs, mount, fstab.
//!
//! This is the step that can destroy data, and nothing below it protects an in-use disk
//! (parted relabels a disk whose partition is mounted and exits 0). Before anything
//! destructive the device must be: the multipath map of the expected WWID (its dm uuid is
//! `mpath-<wwid>`), not mounted (nor anything on it), not swap, not held by anything but its
//! own partition mappings, and free of any partition table or filesystem signature
//! (`blkid -p`, `wipefs`). Otherwise the step refuses (exit 3) with the evidence;
//! `--force-format` allows a device that only carries signatures, never a mounted or held one.
//!
//! The partition starts on the device's `optimal_io_size` (else 1 MiB), not at sector 34 as
//! the vendor's `0% 100%` does. The partition node is found through lsblk (Debian names it
//! `<wwid>-part1`, RHEL `<wwid>1` or `p1`). The wizard chooses the filesystem UUID and gives
//! it to mkfs, so the fstab line (by UUID, `_netdev,nofail`) is part of the plan shown.
//! A filesystem of the right type already mounted where asked means nothing to do.
//!
//! The step is in four parts: *want* ([`Filesystem::wanted`], the only place that asks),
//! *observe* ([`observe`], read-only probes), *decide* ([`mod@decide`], pure, table-tested) and
//! *apply* ([`apply`]: the plan's actions and its tasks). Facts and the worksheet are
//! recorded by `verify`, from a fresh look, except the partition node and the filesystem
//! UUID, which the tasks record the moment they exist so that an interrupted run resumes
//! on its own work. A dry run before the map exists (a bare host) plans from the answers,
//! showing the map and the partition's alignment as values the real run learns.

pub mod apply;
pub mod decide;
pub mod observe;

use std::path::Path;

use crate::settings::{FsType, MountPoint, Wwid};
use crate::steps::facts::VolumeFact;
use crate::steps::{Action, Ctx, Plan, Step, StepError, StepName};

pub use apply::{Layout, Parted};
pub use decide::{decide, fstab_entry, Decision, Finding};
pub use observe::Probe;

const FSTAB_LINE: &str = include_str!("../templates/fstab-line");

/// The step implementation.
pub fn step() -> Box<dyn Step> {
    Box::new(Filesystem::default())
}

/// The work this step's plan hands back to it ([`Action::Task`] ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    /// The safety checks on the map (planned only by a dry run before the map exists).
    SafetyChecks,
    /// Find the new partition's node.
    FindPartition,
    /// Make the filesystem on the new partition.
    Mkfs,
    /// Mount the new partition.
    Mount,
}

impl Task {
    /// Every task.
    pub const ALL: [Task; 4] = [
        Task::SafetyChecks,
        Task::FindPartition,
        Task::Mkfs,
        Task::Mount,
    ];

    /// The id in the plan.
    pub fn id(self) -> &'static str {
        match self {
            Task::SafetyChecks => "safety-checks",
            Task::FindPartition => "find-partition",
            Task::Mkfs => "mkfs",
            Task::Mount => "mount",
        }
    }

    /// The task of a plan's id.
    pub fn from_id(id: &str) -> Option<Task> {
        Task::ALL.into_iter().find(|t| t.id() == id)
    }

    /// The plan's id of this task for volume `volume` of the answers' list: the bare id for
    /// the first, `mkfs@2` for the third.
    pub fn id_for(self, volume: usize) -> String {
        match volume {
            0 => self.id().to_string(),
            i => format!("{}@{i}", self.id()),
        }
    }

    /// The task and volume of a plan's id.
    pub fn parse(id: &str) -> Option<(Task, usize)> {
        match id.split_once('@') {
            None => Task::from_id(id).map(|t| (t, 0)),
            Some((t, i)) => Some((Task::from_id(t)?, i.parse().ok()?)),
        }
    }

    /// The plan's action for this task on volume `volume`.
    pub fn action(self, volume: usize, description: String) -> Action {
        Action::task(self.id_for(volume), description)
    }
}

/// What the step was asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    /// Partition the map (GPT, one partition) or put the filesystem on the map itself.
    pub partition: bool,
    /// `ext4` or `xfs`.
    pub fstype: FsType,
    /// Where to mount it.
    pub mount_point: MountPoint,
    /// Add an fstab line.
    pub fstab: bool,
    /// The WWID the map must carry (the one the multipath step verified).
    pub wwid: Option<String>,
    /// Which volume of the answers' list this is (its facts are found through it).
    pub volume: usize,
    /// `--force-format`.
    pub force: bool,
}

/// A random version-4 UUID (filesystem UUIDs only need to be unique).
fn new_uuid() -> String {
    let mut b = [0u8; 16];
    let hi = crate::steps::blockio::random_seed().to_le_bytes();
    let lo = crate::steps::blockio::random_seed().to_le_bytes();
    b[..8].copy_from_slice(&hi);
    b[8..].copy_from_slice(&lo);
    crate::steps::templates::uuid_text(b, 4)
}

/// What the plan decided for one volume, for its tasks and verify.
#[derive(Debug, Clone)]
struct Planned {
    want: Wanted,
    /// The map (none: a dry run before it exists).
    map: Option<String>,
    uuid: String,
}

/// The filesystem step.
#[derive(Debug, Default)]
pub struct Filesystem {
    /// One per volume of the answers' list, in order.
    planned: Vec<Planned>,
    /// Fixed UUID for tests (the first volume's).
    pub uuid_for_tests: Option<String>,
}

impl Filesystem {
    /// What the operator wants for volume `i` of the answers' list: the only place this
    /// step asks.
    pub fn wanted(cx: &mut Ctx<'_>, i: usize) -> Result<Wanted, StepError> {
        let answers = cx.ask.answers();
        let key = |field: &str| answers.volume_key(i, field);
        let (k_part, k_fs, k_mp, k_fstab) = (
            key("partition"),
            key("filesystem"),
            key("mount_point"),
            key("fstab"),
        );
        let several = answers.volume_list().len() > 1;
        let label = answers.volume_label(i);
        let of = |q: &str| {
            if several {
                format!("{q} ({label})")
            } else {
                q.to_string()
            }
        };
        let partition = cx.ask.want_yes(
            &k_part,
            &of("Partition the volume (GPT, one aligned partition)?"),
            true,
            |a| &mut a.volume_mut(i).partition,
        )?;
        let fstype =
            cx.ask
                .want_choice(&k_fs, &of("Filesystem"), FsType::ALL, FsType::Ext4, |a| {
                    &mut a.volume_mut(i).filesystem
                })?;
        // The second volume's default mount point is not the first's.
        let default_mp = if i == 0 {
            format!("/mnt/{fstype}")
        } else {
            format!("/mnt/{fstype}-{}", i + 1)
        };
        let mount_point = cx.ask.want(
            &k_mp,
            &of("Mount point"),
            default_mp.parse::<MountPoint>().ok(),
            |a| &mut a.volume_mut(i).mount_point,
        )?;
        // A mount point typed at a terminal is not checked across volumes as a file is.
        let answers = cx.ask.answers();
        for (j, other) in answers.volume_list().iter().enumerate().take(i) {
            if let Some(o) = &other.mount_point {
                let (a, b) = (Path::new(mount_point.as_str()), Path::new(o.as_str()));
                if a.starts_with(b) || b.starts_with(a) {
                    return Err(StepError::Failed(format!(
                        "{k_mp}: {mount_point} is, holds or lies inside {o} ({}): give each \
                         volume a directory of its own",
                        answers.volume_key(j, "mount_point")
                    )));
                }
            }
        }
        let fstab = cx.ask.want_yes(
            &k_fstab,
            &of("Mount at boot (fstab, by UUID, _netdev)?"),
            true,
            |a| &mut a.volume_mut(i).fstab,
        )?;
        Ok(Wanted {
            partition,
            fstype,
            mount_point,
            fstab,
            wwid: fact(cx, i).wwid,
            volume: i,
            force: cx.options.force_format,
        })
    }

    fn chosen_uuid(&self, i: usize) -> String {
        match &self.uuid_for_tests {
            Some(u) if i == 0 => u.clone(),
            _ => new_uuid(),
        }
    }

    /// A dry run before the map exists: the real run's actions from the answers, the map
    /// and the partition's sectors as values the real run learns. The safety checks the
    /// real run makes while planning are shown as a task of their own.
    fn plan_from_answers(
        &mut self,
        cx: &mut Ctx<'_>,
        plan: &mut Plan,
        want: Wanted,
        fstab: &mut Option<String>,
    ) -> Result<(), StepError> {
        let map = plan.learn(&if cx.ask.answers().volume_list().len() > 1 {
            format!(
                "multipath map of {}",
                cx.ask.answers().volume_label(want.volume)
            )
        } else {
            "multipath map of the volume".to_string()
        });
        let wwid = match (
            &want.wwid,
            &cx.ask.answers().volume_list()[want.volume].wwid,
        ) {
            (Some(w), _) => w.clone(),
            // multipath prints WWIDs in lowercase; the answer may be in either case.
            (None, Some(Wwid::Id(w))) => w.to_ascii_lowercase(),
            _ => plan.learn("WWID of the volume, learned after login"),
        };
        plan.push(Task::SafetyChecks.action(
            want.volume,
            format!(
                "check that {map} is the multipath map of WWID {wwid}, that nothing on it is \
             mounted, used as swap or held by another device, and that it carries no \
             partition table or filesystem signature{}; otherwise refuse (exit 3), changing \
             nothing",
                if want.force {
                    " (--force-format: signatures alone are erased)"
                } else {
                    ""
                }
            ),
        ));
        let parted = want.partition.then(|| Parted {
            first: plan.learn("first sector, on the alignment"),
            last: plan.learn("last sector, before the backup GPT, on the alignment"),
            note: format!(
                "partition aligned to {}",
                plan.learn("optimal I/O size of the map, else 1 MiB")
            ),
        });
        let layout = Layout {
            map: map.clone(),
            wipe: false,
            remove_partition_maps: false,
            target: (!want.partition).then(|| map.clone()),
            parted,
            mkfs: true,
            mounted: false,
            mount_point_exists: cx.host.exists(Path::new(want.mount_point.as_str())),
        };
        let uuid = self.chosen_uuid(want.volume);
        apply::push_actions(plan, &want, &layout, &uuid, fstab)?;
        self.planned.push(Planned {
            want,
            map: None,
            uuid,
        });
        Ok(())
    }

    /// The safety checks again, on the map the multipath step found: refuse unless the
    /// decision is to make (or keep) the filesystem.
    fn safety_checks(&self, cx: &mut Ctx<'_>, want: &Wanted) -> Result<(), StepError> {
        // Right before the map is written: the host as it is now, not as plan saw it
        // (a person may have mounted something while the plan waited for a yes).
        cx.host.forget();
        let map = known_map(cx, want.volume)?;
        let probe = observe::observe(cx, &map, want.mount_point.as_str())?;
        match decide(&probe, want, &fact(cx, want.volume)) {
            Decision::Refuse(reason, evidence) => Err(refused(reason, &evidence)),
            Decision::Make { .. } => Ok(()),
        }
    }
}

/// A refusal (exit 3), the evidence in the operator's words.
fn refused(reason: String, evidence: &[Finding]) -> StepError {
    StepError::Refused {
        reason,
        evidence: evidence.iter().map(ToString::to_string).collect(),
    }
}

/// What the earlier steps recorded about volume `i` of the answers (empty when nothing).
fn fact(cx: &Ctx<'_>, i: usize) -> VolumeFact {
    cx.facts
        .volume_of(cx.ask.answers(), i)
        .cloned()
        .unwrap_or_default()
}

/// The map the multipath step recorded for volume `i`.
fn known_map(cx: &Ctx<'_>, i: usize) -> Result<String, StepError> {
    fact(cx, i).map_device.ok_or_else(|| {
        StepError::Failed(
            "no multipath map is known yet: run the multipath step first (it finds the \
             volume's map)"
                .into(),
        )
    })
}

impl Step for Filesystem {
    fn name(&self) -> StepName {
        StepName::Filesystem
    }

    fn plan(&mut self, cx: &mut Ctx<'_>) -> Result<Plan, StepError> {
        let mut plan = Plan::new(StepName::Filesystem);
        self.planned.clear();
        // One fstab for every volume's line: each planned write starts from the one before.
        let mut fstab = cx.host.read(Path::new("/etc/fstab"))?;
        for i in 0..cx.ask.answers().volume_list().len() {
            let want = Self::wanted(cx, i)?;
            self.plan_volume(cx, &mut plan, want, &mut fstab)?;
        }
        Ok(plan)
    }

    fn task(&mut self, cx: &mut Ctx<'_>, id: &str) -> Result<(), StepError> {
        let Some((task, i)) = Task::parse(id) else {
            return Err(StepError::Failed(format!("internal: no task {id}")));
        };
        let p = self
            .planned
            .iter()
            .find(|p| p.want.volume == i)
            .cloned()
            .expect("plan ran before task");
        let map = p.map.clone().unwrap_or_default();
        match task {
            Task::SafetyChecks => self.safety_checks(cx, &p.want),
            Task::FindPartition => apply::find_partition(cx, &map, i).map(drop),
            Task::Mkfs => apply::mkfs_on_partition(cx, &map, &p.want, &p.uuid),
            Task::Mount => apply::mount_partition(cx, &map, &p.want),
        }
    }

    fn verify(&mut self, cx: &mut Ctx<'_>) -> Result<(), StepError> {
        // Every volume is checked before anything is recorded.
        let mut seen = Vec::new();
        for i in 0..cx.ask.answers().volume_list().len() {
            let planned = self.planned.iter().find(|p| p.want.volume == i).cloned();
            let (want, map) = match planned {
                Some(p) => (p.want, p.map),
                None => (Self::wanted(cx, i)?, None),
            };
            seen.push(self.verify_volume(cx, want, map)?);
        }
        for (want, source, fstype, uuid, fstab_line) in seen {
            self.record(cx, &want, &source, &fstype, uuid, fstab_line);
        }
        Ok(())
    }
}

/// What verify saw of one volume: what was asked, the mounted source, its type, its
/// filesystem UUID and its fstab line.
type Seen = (Wanted, String, String, Option<String>, Option<String>);

impl Filesystem {
    /// Plan volume `want.volume`: from the answers on a dry run before its map exists,
    /// else from what its map carries.
    fn plan_volume(
        &mut self,
        cx: &mut Ctx<'_>,
        plan: &mut Plan,
        want: Wanted,
        fstab: &mut Option<String>,
    ) -> Result<(), StepError> {
        let known = fact(cx, want.volume).map_device;
        let map = match known {
            Some(m) if !cx.options.dry_run || cx.host.exists(Path::new(&m)) => m,
            _ if cx.options.dry_run => return self.plan_from_answers(cx, plan, want, fstab),
            _ => known_map(cx, want.volume)?,
        };
        let probe = observe::observe(cx, &map, want.mount_point.as_str())?;
        let ours = fact(cx, want.volume);
        let (wipe, parted, mkfs, target, uuid) = match decide(&probe, &want, &ours) {
            Decision::Refuse(reason, evidence) => return Err(refused(reason, &evidence)),
            Decision::Make {
                wipe,
                parted,
                mkfs,
                target,
                uuid,
            } => (wipe, parted, mkfs, target, uuid),
        };
        let uuid = uuid.unwrap_or_else(|| self.chosen_uuid(want.volume));
        let (lss, opt, _) = probe.queue;
        let layout = Layout {
            map: map.clone(),
            wipe,
            remove_partition_maps: probe.map.children.iter().any(|c| c.is_type("part")),
            parted: parted.map(|(first, last)| Parted {
                first: format!("{first}s"),
                last: format!("{last}s"),
                note: format!(
                    "partition from sector {first} to {last} ({lss}-byte sectors), aligned to {}",
                    if opt > 0 {
                        format!("the device's optimal I/O size of {opt} bytes")
                    } else {
                        "1 MiB".to_string()
                    }
                ),
            }),
            mkfs,
            mounted: target
                .as_ref()
                .is_some_and(|t| decide::mounted_at(&probe.map, t, want.mount_point.as_str())),
            target,
            mount_point_exists: probe.mount_point_exists,
        };
        apply::push_actions(plan, &want, &layout, &uuid, fstab)?;
        self.planned.push(Planned {
            want,
            map: Some(map),
            uuid,
        });
        Ok(())
    }

    /// Check one volume as it is now: mounted where asked, from its map, with its fstab line.
    fn verify_volume(
        &self,
        cx: &mut Ctx<'_>,
        want: Wanted,
        map: Option<String>,
    ) -> Result<Seen, StepError> {
        let mount_point = want.mount_point.as_str();
        let (source, fstype) = observe::mounted_on(cx, mount_point)?
            .ok_or_else(|| StepError::Failed(format!("nothing is mounted on {mount_point}")))?;
        if fstype != want.fstype.as_str() {
            return Err(StepError::Failed(format!(
                "{mount_point} has {source} ({fstype}) mounted, not {}",
                want.fstype
            )));
        }
        let sig = observe::signature(cx, &source)?.unwrap_or_default();
        let map = map
            .or_else(|| fact(cx, want.volume).map_device)
            .unwrap_or_default();
        let dev = observe::lsblk(cx, &map)?;
        let mut paths = Vec::new();
        decide::all_paths(&dev, &mut paths);
        // findmnt may name the node by another alias (/dev/dm-3 vs /dev/mapper/...).
        let on_volume = paths.contains(&source)
            || sig
                .uuid
                .as_deref()
                .is_some_and(|u| decide::carries_uuid(&dev, u));
        if !on_volume {
            return Err(StepError::Failed(format!(
                "{mount_point} is mounted from {source}, which is not on {map}"
            )));
        }
        let fstab_line = match (&sig.uuid, want.fstab) {
            (_, false) => None,
            (uuid, true) => {
                let fstab = cx.host.read(Path::new("/etc/fstab"))?.unwrap_or_default();
                let expect = uuid.as_ref().map(|u| format!("UUID={u}"));
                match fstab_entry(&fstab, mount_point) {
                    Some((spec, ..)) if Some(&spec) == expect.as_ref() => {}
                    other => {
                        return Err(StepError::Failed(format!(
                            "/etc/fstab has no line mounting {source} by UUID on {mount_point} \
                             (found {other:?})"
                        )))
                    }
                }
                uuid.as_deref()
                    .map(|u| apply::fstab_line(&want, u))
                    .transpose()?
                    .map(|l| l.trim_end().to_string())
            }
        };
        Ok((want, source, fstype, sig.uuid, fstab_line))
    }

    /// Facts and worksheet, from what verify saw.
    fn record(
        &self,
        cx: &mut Ctx<'_>,
        want: &Wanted,
        source: &str,
        fstype: &str,
        uuid: Option<String>,
        fstab_line: Option<String>,
    ) {
        let v = cx.facts.volume_of_mut(cx.ask.answers(), want.volume);
        let wwid = v.wwid.clone().unwrap_or_default();
        v.fs_device = Some(source.to_string());
        v.fs_uuid = uuid.clone();
        v.mount_point = Some(want.mount_point.to_string());
        if want.partition {
            v.partition = Some(source.to_string());
        }
        let rec = crate::worksheets::volume_record_mut(cx.sheet, &wwid);
        rec.partition = want.partition.then(|| source.to_string());
        rec.filesystem = Some(fstype.to_string());
        rec.uuid = uuid;
        rec.mount_point = Some(want.mount_point.to_string());
        rec.fstab_line = fstab_line;
    }
}

#[cfg(test)]
mod tests;
