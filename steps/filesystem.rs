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

use std::path::Path;
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::settings::{FsType, MountPoint};
use crate::steps::parse::blkid::{parse_blkid_export, Signature};
use crate::steps::parse::lsblk::{parse_lsblk_json, BlockDev};
use crate::steps::parse::parted::aligned_partition;
use crate::steps::{Action, Cmd, Ctx, Plan, Step, StepError, StepName};

const FSTAB_LINE: &str = include_str!("../templates/fstab-line");

/// The step implementation.
pub fn step() -> Box<dyn Step> {
    Box::new(Filesystem::default())
}

/// What the step was asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    /// Partition the map (GPT, one partition) or put the filesystem on the map itself.
    pub partition: bool,
    /// `ext4` or `xfs`.
    pub fstype: String,
    /// Where to mount it.
    pub mount_point: String,
    /// Add an fstab line.
    pub fstab: bool,
    /// The WWID the map must carry.
    pub wwid: Option<String>,
    /// `--force-format`.
    pub force: bool,
}

/// Everything probed about the map, read-only.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Probe {
    /// The map as lsblk shows it, with its children.
    pub map: BlockDev,
    /// `/sys/class/block/<kname>/holders`.
    pub holders: Vec<String>,
    /// `/sys/class/block/<kname>/dm/uuid`.
    pub dm_uuid: Option<String>,
    /// `blkid -p` of the map.
    pub signature: Option<Signature>,
    /// `wipefs` listing of the map (TYPE OFFSET lines).
    pub wipefs: Vec<String>,
    /// Devices in /proc/swaps.
    pub swaps: Vec<String>,
    /// Logical sector size, optimal I/O size, alignment offset (bytes).
    pub queue: (u64, u64, u64),
    /// /etc/fstab.
    pub fstab: Option<String>,
    /// What is mounted at the mount point: (source, fstype).
    pub at_mount_point: Option<(String, String)>,
    /// Whether the mount point directory exists.
    pub mount_point_exists: bool,
}

/// The decision for a probe.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Refuse (exit 3), with evidence.
    Refuse(String, Vec<String>),
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

fn dev_path(d: &BlockDev) -> String {
    d.path.clone().unwrap_or_else(|| {
        if d.name.starts_with('/') {
            d.name.clone()
        } else {
            format!("/dev/{}", d.name)
        }
    })
}

/// Every mount on the map or anything built on it, as "device on mountpoint".
fn mounts_below(d: &BlockDev, out: &mut Vec<String>) {
    for m in &d.mountpoints {
        out.push(format!("{} is mounted on {m}", dev_path(d)));
    }
    for c in &d.children {
        mounts_below(c, out);
    }
}

fn all_paths(d: &BlockDev, out: &mut Vec<String>) {
    out.push(dev_path(d));
    if let Some(k) = &d.kname {
        out.push(format!("/dev/{k}"));
    }
    for c in &d.children {
        all_paths(c, out);
    }
}

/// The fstab entry for a mount point, if any: (spec, fstype, options).
fn fstab_entry(fstab: &str, mount_point: &str) -> Option<(String, String, String)> {
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

/// Decide what to do. Pure: every safety rule is here and table-tested.
pub fn decide(p: &Probe, want: &Wanted, ours: &crate::steps::facts::VolumeFact) -> Decision {
    let map = dev_path(&p.map);
    let mut always = Vec::new();
    if let Some(w) = &want.wwid {
        let expect = format!("mpath-{w}");
        if p.dm_uuid.as_deref() != Some(expect.as_str()) {
            always.push(format!(
                "{map} is not the multipath map of WWID {w} (its dm uuid is {})",
                p.dm_uuid.as_deref().unwrap_or("absent")
            ));
        }
    }
    let parts: Vec<&BlockDev> = p
        .map
        .children
        .iter()
        .filter(|c| c.is_type("part"))
        .collect();
    // lsblk -p prints KNAME as /dev/dm-4; sysfs holders are bare kernel names (dm-4).
    let part_knames: Vec<&str> = parts
        .iter()
        .filter_map(|c| c.kname.as_deref())
        .map(|k| k.trim_start_matches("/dev/"))
        .collect();
    let foreign: Vec<&String> = p
        .holders
        .iter()
        .filter(|h| !part_knames.contains(&h.as_str()))
        .collect();
    for h in &foreign {
        always.push(format!("{map} is held by {h} (a device built on it)"));
    }
    let mut paths = Vec::new();
    all_paths(&p.map, &mut paths);
    for s in &p.swaps {
        if paths.contains(s) {
            always.push(format!("{s} is in use as swap"));
        }
    }
    let target_dev: Option<&BlockDev> = if want.partition {
        (parts.len() == 1).then(|| parts[0])
    } else {
        Some(&p.map)
    };

    // Done already: the right filesystem on the right device, mounted where asked.
    if let Some(t) = target_dev {
        let mounted_here = t.mountpoints.contains(&want.mount_point);
        if mounted_here && t.fstype.as_deref() == Some(want.fstype.as_str()) && always.is_empty() {
            return Decision::Make {
                wipe: false,
                parted: None,
                mkfs: false,
                target: Some(dev_path(t)),
                uuid: t.uuid.clone(),
            };
        }
    }
    let mut mounts = Vec::new();
    mounts_below(&p.map, &mut mounts);
    always.extend(mounts);
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
            vec![format!("{src} is mounted on {}", want.mount_point)],
        );
    }

    // Resuming our own work: the partition we made, or the filesystem we made.
    if let Some(t) = target_dev {
        let ours_fs = ours.fs_uuid.is_some() && t.uuid == ours.fs_uuid;
        if ours_fs && t.fstype.as_deref() == Some(want.fstype.as_str()) {
            return Decision::Make {
                wipe: false,
                parted: None,
                mkfs: false,
                target: Some(dev_path(t)),
                uuid: t.uuid.clone(),
            };
        }
        let ours_part = want.partition
            && ours.partition.as_deref() == Some(dev_path(t).as_str())
            && t.fstype.is_none()
            && t.uuid.is_none();
        if ours_part {
            return Decision::Make {
                wipe: false,
                parted: None,
                mkfs: true,
                target: Some(dev_path(t)),
                uuid: None,
            };
        }
    }

    let mut evidence = Vec::new();
    if let Some(s) = &p.signature {
        if let Some(pt) = &s.pttype {
            evidence.push(format!("{map} carries a {pt} partition table"));
        }
        if let Some(fs) = &s.fs_type {
            evidence.push(format!(
                "{map} carries a {fs} signature{}",
                s.uuid
                    .as_ref()
                    .map(|u| format!(" (UUID {u})"))
                    .unwrap_or_default()
            ));
        }
        if s.pttype.is_none() && s.fs_type.is_none() && s.usage.is_some() {
            evidence.push(format!(
                "{map} carries a {} signature",
                s.usage.as_deref().unwrap_or("")
            ));
        }
    }
    for w in &p.wipefs {
        evidence.push(format!("wipefs lists on {map}: {w}"));
    }
    for c in &parts {
        evidence.push(format!(
            "{} is a partition{}",
            dev_path(c),
            c.fstype
                .as_ref()
                .map(|f| format!(" with a {f} filesystem"))
                .unwrap_or_default()
        ));
    }
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
        let (lss, opt, off) = p.queue;
        match p
            .map
            .size_bytes()
            .map(|size| aligned_partition(size, lss, opt, off))
        {
            Some(Ok(r)) => Some(r),
            Some(Err(e)) => {
                return Decision::Refuse(
                    format!("cannot place the partition on {map}: {e}"),
                    vec![],
                )
            }
            None => {
                return Decision::Refuse(format!("lsblk gave no size for {map}"), vec![]);
            }
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

#[derive(Debug, Deserialize)]
struct Findmnt {
    filesystems: Vec<FindmntFs>,
}

#[derive(Debug, Deserialize)]
struct FindmntFs {
    source: String,
    fstype: String,
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

/// The filesystem step.
#[derive(Debug, Default)]
pub struct Filesystem {
    want: Option<Wanted>,
    map: Option<String>,
    uuid: Option<String>,
    /// Fixed UUID for tests.
    pub uuid_for_tests: Option<String>,
}

const LSBLK_COLUMNS: &str = "NAME,KNAME,PATH,TYPE,SIZE,FSTYPE,UUID,MOUNTPOINT";

fn lsblk(cx: &Ctx<'_>, dev: &str) -> Result<BlockDev, StepError> {
    let cmd = Cmd::probe(["lsblk", "-J", "-b", "-p", "-o", LSBLK_COLUMNS, dev]);
    let out = cx.host.run(&cmd)?;
    if !out.success() {
        return Err(StepError::command(
            &cmd,
            &out,
            Some("is the multipath map present? (`multipath -ll`)".into()),
        ));
    }
    let devs = parse_lsblk_json(&out.stdout)
        .map_err(|e| StepError::Failed(format!("reading lsblk output for {dev}: {e}")))?;
    devs.into_iter()
        .next()
        .ok_or_else(|| StepError::Failed(format!("lsblk printed nothing for {dev}")))
}

fn sys_num(cx: &Ctx<'_>, path: &str) -> Result<u64, StepError> {
    Ok(cx
        .host
        .read(Path::new(path))?
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0))
}

fn signature(cx: &Ctx<'_>, dev: &str) -> Result<Option<Signature>, StepError> {
    let cmd = Cmd::probe(["blkid", "-p", "-o", "export", dev]);
    let out = cx.host.run(&cmd)?;
    match out.code {
        // blkid exits 2 when it finds nothing.
        Some(2) if out.stdout.trim().is_empty() => Ok(None),
        Some(0) => parse_blkid_export(&out.stdout)
            .map_err(|e| StepError::Failed(format!("reading blkid output for {dev}: {e}"))),
        _ => Err(StepError::command(&cmd, &out, None)),
    }
}

impl Filesystem {
    fn wanted(cx: &mut Ctx<'_>) -> Result<Wanted, StepError> {
        let partition = cx.ask.want_yes(
            "volume.partition",
            "Partition the volume (GPT, one aligned partition)?",
            true,
            |a| &mut a.volume.partition,
        )?;
        let fstype = cx
            .ask
            .want_choice(
                "volume.filesystem",
                "Filesystem",
                FsType::ALL,
                FsType::Ext4,
                |a| &mut a.volume.filesystem,
            )?
            .to_string();
        let mount_point = cx
            .ask
            .want(
                "volume.mount_point",
                "Mount point",
                format!("/mnt/{fstype}").parse::<MountPoint>().ok(),
                |a| &mut a.volume.mount_point,
            )?
            .to_string();
        let fstab = cx.ask.want_yes(
            "volume.fstab",
            "Mount at boot (fstab, by UUID, _netdev)?",
            true,
            |a| &mut a.volume.fstab,
        )?;
        Ok(Wanted {
            partition,
            fstype,
            mount_point,
            fstab,
            wwid: cx.facts.volume.wwid.clone(),
            force: cx.options.force_format,
        })
    }

    fn probe(cx: &Ctx<'_>, map: &str, want: &Wanted) -> Result<Probe, StepError> {
        let mut dev = lsblk(cx, map)?;
        // lsblk's FSTYPE and UUID come from the udev database, which can be stale or absent;
        // blkid -p reads the device itself.
        for c in dev.children.iter_mut().filter(|c| c.is_type("part")) {
            let sig = signature(cx, &dev_path(c))?.unwrap_or_default();
            c.fstype = sig.fs_type.clone();
            c.uuid = sig.uuid.clone();
        }
        let kname = dev
            .kname
            .clone()
            .map(|k| k.trim_start_matches("/dev/").to_string())
            .unwrap_or_default();
        let sys = format!("/sys/class/block/{kname}");
        let holders = cx.host.list_dir(Path::new(&format!("{sys}/holders")))?;
        let dm_uuid = cx
            .host
            .read(Path::new(&format!("{sys}/dm/uuid")))?
            .map(|s| s.trim().to_string());
        let sig = signature(cx, map)?;
        dev.fstype = sig.as_ref().and_then(|s| s.fs_type.clone());
        dev.uuid = sig.as_ref().and_then(|s| s.uuid.clone());
        let wcmd = Cmd::probe(["wipefs", "--noheadings", "--output", "TYPE,OFFSET", map]);
        let wout = cx.host.run(&wcmd)?;
        if !wout.success() {
            return Err(StepError::command(&wcmd, &wout, None));
        }
        let wipefs = wout
            .stdout
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect();
        let swaps = cx
            .host
            .read(Path::new("/proc/swaps"))?
            .unwrap_or_default()
            .lines()
            .skip(1)
            .filter_map(|l| l.split_whitespace().next().map(String::from))
            .collect();
        let queue = (
            sys_num(cx, &format!("{sys}/queue/logical_block_size"))?.max(512),
            sys_num(cx, &format!("{sys}/queue/optimal_io_size"))?,
            sys_num(cx, &format!("{sys}/alignment_offset"))?,
        );
        let fstab = cx.host.read(Path::new("/etc/fstab"))?;
        let fm = cx.host.run(&Cmd::probe([
            "findmnt",
            "-J",
            "-o",
            "SOURCE,FSTYPE",
            "--mountpoint",
            &want.mount_point,
        ]))?;
        let at_mount_point = if fm.success() {
            serde_json::from_str::<Findmnt>(&fm.stdout)
                .ok()
                .and_then(|f| f.filesystems.into_iter().next())
                .map(|f| (f.source, f.fstype))
        } else {
            None
        };
        Ok(Probe {
            map: dev,
            holders,
            dm_uuid,
            signature: sig,
            wipefs,
            swaps,
            queue,
            fstab,
            at_mount_point,
            mount_point_exists: cx.host.exists(Path::new(&want.mount_point)),
        })
    }

    fn fstab_plan(
        &self,
        plan: &mut Plan,
        probe: &Probe,
        want: &Wanted,
        uuid: &str,
    ) -> Result<Option<String>, StepError> {
        let pass = if want.fstype == "xfs" { "0" } else { "2" };
        let line = crate::steps::templates::render(
            FSTAB_LINE,
            &[
                ("uuid", uuid),
                ("mount_point", &want.mount_point),
                ("fstype", &want.fstype),
                ("pass", pass),
            ],
        )
        .map_err(StepError::Failed)?;
        if !want.fstab {
            return Ok(None);
        }
        let old = probe.fstab.clone();
        let current = old.clone().unwrap_or_default();
        match fstab_entry(&current, &want.mount_point) {
            Some((spec, _, opts)) if spec == format!("UUID={uuid}") => {
                if !opts.split(',').any(|o| o == "_netdev") {
                    plan.note(format!(
                        "the fstab line for {} lacks _netdev: the host may drop to emergency \
                         mode at boot when the fabric is late; add _netdev,nofail",
                        want.mount_point
                    ));
                }
            }
            Some((spec, ..)) => {
                return Err(StepError::Failed(format!(
                    "/etc/fstab already mounts {spec} on {}: remove or change that line, or \
                     choose another mount point",
                    want.mount_point
                )))
            }
            None => {
                let mut new = current.clone();
                if !new.is_empty() && !new.ends_with('\n') {
                    new.push('\n');
                }
                new.push_str(&line);
                plan.push(Action::write(
                    "/etc/fstab",
                    old,
                    new,
                    0o644,
                    "mount at boot, after the network (_netdev), without blocking boot (nofail)",
                ));
            }
        }
        Ok(Some(line.trim_end().to_string()))
    }

    /// The partition node of the map, once its name holds still. Right after parted, Debian
    /// briefly shows libparted's own `<wwid>p1` mapping, which udev then replaces with
    /// `<wwid>-part1` (seen in the lab: a mount of the first name failed). So wait for udev,
    /// and accept a name only when two looks, a settle apart, agree and the node exists.
    fn find_partition(&self, cx: &mut Ctx<'_>) -> Result<String, StepError> {
        let map = self.map.clone().unwrap_or_default();
        let start = Instant::now();
        let mut kpartx_tried = false;
        let mut last: Option<String> = None;
        loop {
            if cx.host.which("udevadm").is_some() {
                cx.host.run(
                    &Cmd::probe(["udevadm", "settle", "--timeout=5"])
                        .timeout(Duration::from_secs(10)),
                )?;
            }
            let dev = lsblk(cx, &map)?;
            let parts: Vec<&BlockDev> = dev.children.iter().filter(|c| c.is_type("part")).collect();
            if parts.len() > 1 {
                return Err(StepError::Failed(format!(
                    "{map} shows {} partitions after partitioning; expected one",
                    parts.len()
                )));
            }
            if let Some(p) = parts.first().map(|d| dev_path(d)) {
                if last.as_deref() == Some(p.as_str()) && cx.host.exists(Path::new(&p)) {
                    cx.facts.volume.partition = Some(p.clone());
                    return Ok(p);
                }
                last = Some(p);
            } else {
                last = None;
            }
            let waited = start.elapsed();
            // udev normally maps the new partition (kpartx rules) within a second.
            if last.is_none()
                && waited > Duration::from_secs(5)
                && !kpartx_tried
                && cx.host.which("kpartx").is_some()
            {
                kpartx_tried = true;
                let cmd = Cmd::change(["kpartx", "-a", &map]);
                let out = cx.host.run(&cmd)?;
                if !out.success() {
                    return Err(StepError::command(&cmd, &out, None));
                }
            }
            if waited > Duration::from_secs(30) {
                return Err(StepError::Failed(format!(
                    "the partition of {map} did not appear (or kept changing its name) within \
                     30 s; check `multipath -ll` and `kpartx -l {map}`"
                )));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

fn mount_cmd(fstype: &str, dev: &str, mount_point: &str) -> Cmd {
    Cmd::change(["mount", "-t", fstype, dev, mount_point]).timeout(Duration::from_secs(300))
}

fn mkfs_cmd(fstype: &str, uuid: &str, dev: &str) -> Cmd {
    let long = Duration::from_secs(1800);
    if fstype == "xfs" {
        Cmd::change(["mkfs.xfs", "-q", "-m", &format!("uuid={uuid}"), dev]).timeout(long)
    } else {
        Cmd::change(["mkfs.ext4", "-q", "-U", uuid, dev]).timeout(long)
    }
}

impl Step for Filesystem {
    fn name(&self) -> StepName {
        StepName::Filesystem
    }

    fn plan(&mut self, cx: &mut Ctx<'_>) -> Result<Plan, StepError> {
        let want = Self::wanted(cx)?;
        let map = cx.facts.volume.map_device.clone().ok_or_else(|| {
            StepError::Failed(
                "no multipath map is known yet: run the multipath step first (it finds the \
                 volume's map)"
                    .into(),
            )
        })?;
        let probe = Self::probe(cx, &map, &want)?;
        let mut plan = Plan::new(StepName::Filesystem);
        let decision = decide(&probe, &want, &cx.facts.volume);
        let Decision::Make {
            wipe,
            parted,
            mkfs,
            target,
            uuid,
        } = decision
        else {
            let Decision::Refuse(reason, evidence) = decision else {
                unreachable!()
            };
            return Err(StepError::Refused { reason, evidence });
        };
        let uuid = uuid.unwrap_or_else(|| self.uuid_for_tests.clone().unwrap_or_else(new_uuid));
        if wipe {
            plan.note("--force-format: the signatures listed by wipefs will be erased");
            if probe.map.children.iter().any(|c| c.is_type("part")) {
                plan.push(Action::run(
                    Cmd::change(["kpartx", "-d", &map]),
                    "remove the old partition mappings",
                ));
            }
            plan.push(Action::run(
                Cmd::change(["wipefs", "-a", &map]),
                "erase the old signatures (--force-format)",
            ));
        }
        if let Some((first, last)) = parted {
            let (lss, opt, _) = probe.queue;
            plan.note(format!(
                "partition from sector {first} to {last} ({lss}-byte sectors), aligned to {}",
                if opt > 0 {
                    format!("the device's optimal I/O size of {opt} bytes")
                } else {
                    "1 MiB".to_string()
                }
            ));
            plan.push(Action::run(
                Cmd::change([
                    "parted".to_string(),
                    "-s".into(),
                    map.clone(),
                    "unit".into(),
                    "s".into(),
                    "mklabel".into(),
                    "gpt".into(),
                    "mkpart".into(),
                    "iser-data".into(),
                    want.fstype.clone(),
                    format!("{first}s"),
                    format!("{last}s"),
                ]),
                "GPT label with one aligned partition",
            ));
            plan.push(Action::task(
                "find-partition",
                format!(
                    "find the new partition of {map} through lsblk (its name differs by distro)"
                ),
            ));
        }
        if mkfs {
            match &target {
                Some(dev) if !want.partition || parted.is_none() => plan.push(Action::run(
                    mkfs_cmd(&want.fstype, &uuid, dev),
                    "make the filesystem with a UUID chosen now, so fstab can name it",
                )),
                _ => plan.push(Action::task(
                    "mkfs",
                    format!(
                        "{} on the new partition",
                        mkfs_cmd(&want.fstype, &uuid, "<partition>")
                    ),
                )),
            };
        }
        if !probe.mount_point_exists {
            plan.push(Action::run(
                Cmd::change(["mkdir", "-p", &want.mount_point]),
                "create the mount point",
            ));
        }
        let fstab_line = self.fstab_plan(&mut plan, &probe, &want, &uuid)?;
        let mounted = target.as_ref().is_some_and(|t| {
            let mut found = false;
            fn walk(d: &BlockDev, t: &str, mp: &str, found: &mut bool) {
                if dev_path(d) == t && d.mountpoints.iter().any(|m| m == mp) {
                    *found = true;
                }
                for c in &d.children {
                    walk(c, t, mp, found);
                }
            }
            walk(&probe.map, t, &want.mount_point, &mut found);
            found
        });
        if !mounted {
            match &target {
                Some(dev) if parted.is_none() => plan.push(Action::run(
                    mount_cmd(&want.fstype, dev, &want.mount_point),
                    "mount the volume",
                )),
                _ => plan.push(Action::task(
                    "mount",
                    format!(
                        "{} (the new partition)",
                        mount_cmd(&want.fstype, "<partition>", &want.mount_point)
                    ),
                )),
            };
        }
        cx.facts.volume.mount_point = Some(want.mount_point.clone());
        if let Some(l) = fstab_line {
            cx.sheet
                .volume
                .get_or_insert_with(Default::default)
                .fstab_line = Some(l);
        }
        self.want = Some(want);
        self.map = Some(map);
        self.uuid = Some(uuid);
        Ok(plan)
    }

    fn task(&mut self, cx: &mut Ctx<'_>, id: &str) -> Result<(), StepError> {
        let want = self.want.clone().expect("plan ran before task");
        let uuid = self.uuid.clone().expect("plan ran before task");
        match id {
            "find-partition" => {
                self.find_partition(cx)?;
                Ok(())
            }
            "mkfs" => {
                let part = self.find_partition(cx)?;
                // The new partition may start where an old filesystem did: never let mkfs
                // meet a signature it would ask about (it reads EOF and stops) or overwrite.
                if let Some(sig) = signature(cx, &part)? {
                    if sig.is_occupied() && !want.force {
                        return Err(StepError::Refused {
                            reason: format!(
                                "the new partition {part} shows an old signature; not making a \
                                 filesystem over it. If it holds nothing you need, run again \
                                 with --force-format"
                            ),
                            evidence: vec![format!(
                                "{part}: {}",
                                sig.fs_type.or(sig.pttype).unwrap_or_default()
                            )],
                        });
                    }
                    if sig.is_occupied() {
                        let cmd = Cmd::change(["wipefs", "-a", &part]);
                        let out = cx.host.run(&cmd)?;
                        if !out.success() {
                            return Err(StepError::command(&cmd, &out, None));
                        }
                    }
                }
                let cmd = mkfs_cmd(&want.fstype, &uuid, &part);
                cx.progress.message(&format!("{cmd}"));
                let out = cx.host.run(&cmd)?;
                if !out.success() {
                    return Err(StepError::command(&cmd, &out, None));
                }
                cx.facts.volume.fs_uuid = Some(uuid);
                Ok(())
            }
            "mount" => {
                // Resolve again: the node's name may have changed since mkfs.
                let part = self.find_partition(cx)?;
                let cmd = mount_cmd(&want.fstype, &part, &want.mount_point);
                let out = cx.host.run(&cmd)?;
                if !out.success() {
                    return Err(StepError::command(&cmd, &out, None));
                }
                Ok(())
            }
            other => Err(StepError::Failed(format!("internal: no task {other}"))),
        }
    }

    fn verify(&mut self, cx: &mut Ctx<'_>) -> Result<(), StepError> {
        let want = match self.want.clone() {
            Some(w) => w,
            None => Self::wanted(cx)?,
        };
        let cmd = Cmd::probe([
            "findmnt",
            "-J",
            "-o",
            "SOURCE,FSTYPE",
            "--mountpoint",
            &want.mount_point,
        ]);
        let out = cx.host.run(&cmd)?;
        let fs = serde_json::from_str::<Findmnt>(&out.stdout)
            .ok()
            .and_then(|f| f.filesystems.into_iter().next())
            .ok_or_else(|| {
                StepError::Failed(format!("nothing is mounted on {}", want.mount_point))
            })?;
        if fs.fstype != want.fstype {
            return Err(StepError::Failed(format!(
                "{} has {} ({}) mounted, not {}",
                want.mount_point, fs.source, fs.fstype, want.fstype
            )));
        }
        let sig = signature(cx, &fs.source)?.unwrap_or_default();
        let map = self
            .map
            .clone()
            .or_else(|| cx.facts.volume.map_device.clone())
            .unwrap_or_default();
        let dev = lsblk(cx, &map)?;
        let mut paths = Vec::new();
        all_paths(&dev, &mut paths);
        // findmnt may name the node by another alias (/dev/dm-3 vs /dev/mapper/...).
        let on_volume = paths.contains(&fs.source) || {
            let mut ok = false;
            fn walk(d: &BlockDev, uuid: &Option<String>, ok: &mut bool) {
                if uuid.is_some() && d.uuid == *uuid {
                    *ok = true;
                }
                d.children.iter().for_each(|c| walk(c, uuid, ok));
            }
            walk(&dev, &sig.uuid, &mut ok);
            ok
        };
        if !on_volume {
            return Err(StepError::Failed(format!(
                "{} is mounted from {}, which is not on {map}",
                want.mount_point, fs.source
            )));
        }
        if want.fstab {
            let fstab = cx.host.read(Path::new("/etc/fstab"))?.unwrap_or_default();
            let expect = sig.uuid.as_ref().map(|u| format!("UUID={u}"));
            match fstab_entry(&fstab, &want.mount_point) {
                Some((spec, ..)) if Some(&spec) == expect.as_ref() => {}
                other => {
                    return Err(StepError::Failed(format!(
                        "/etc/fstab has no line mounting {} by UUID on {} (found {other:?})",
                        fs.source, want.mount_point
                    )))
                }
            }
        }
        let v = &mut cx.facts.volume;
        v.fs_device = Some(fs.source.clone());
        v.fs_uuid = sig.uuid.clone();
        v.mount_point = Some(want.mount_point.clone());
        if want.partition {
            v.partition = Some(fs.source.clone());
        }
        let rec = cx.sheet.volume.get_or_insert_with(Default::default);
        rec.partition = want.partition.then(|| fs.source.clone());
        rec.filesystem = Some(fs.fstype.clone());
        rec.uuid = sig.uuid.clone();
        rec.mount_point = Some(want.mount_point.clone());
        if !want.fstab {
            rec.fstab_line = None;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
