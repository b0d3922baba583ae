//! The filesystem step's changes: the plan's actions built from a decision (or, in a dry
//! run, from the answers), and the tasks that depend on what earlier actions left (the
//! partition node's name, the filesystem on it).

use std::path::Path;
use std::time::{Duration, Instant};

use crate::steps::parse::lsblk::BlockDev;
use crate::steps::poll::{poll_until, Wait};
use crate::steps::{Action, Cmd, Ctx, Plan, StepError};

use super::decide::{dev_path, fstab_entry};
use super::observe::{lsblk, signature};
use super::{Task, Wanted, FSTAB_LINE};

/// How long the partition node may take to appear and hold still.
pub const PARTITION_BOUND: Duration = Duration::from_secs(30);
/// Time between two looks for the partition node.
const PARTITION_INTERVAL: Duration = Duration::from_millis(200);
/// After this long without a partition node, map it with kpartx.
const KPARTX_AFTER: Duration = Duration::from_secs(5);

/// The partition the plan makes: parted's first and last sector arguments and the note
/// saying how they are aligned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parted {
    /// The first sector, as given to parted.
    pub first: String,
    /// The last sector, as given to parted.
    pub last: String,
    /// How it is aligned, in the operator's words.
    pub note: String,
}

/// What the plan makes on the map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// The map's device (or its placeholder).
    pub map: String,
    /// Erase the old signatures first (`--force-format`).
    pub wipe: bool,
    /// The map has partition mappings to remove before wiping.
    pub remove_partition_maps: bool,
    /// Partition the map.
    pub parted: Option<Parted>,
    /// Make the filesystem.
    pub mkfs: bool,
    /// The existing device that will carry the filesystem, when known now.
    pub target: Option<String>,
    /// The filesystem is mounted where asked already.
    pub mounted: bool,
    /// The mount point directory exists.
    pub mount_point_exists: bool,
}

/// The mount command.
pub fn mount_cmd(fstype: &str, dev: &str, mount_point: &str) -> Cmd {
    Cmd::change(["mount", "-t", fstype, dev, mount_point]).timeout(Duration::from_secs(300))
}

/// The mkfs command, with the filesystem UUID chosen up front.
pub fn mkfs_cmd(fstype: &str, uuid: &str, dev: &str) -> Cmd {
    let long = Duration::from_secs(1800);
    if fstype == "xfs" {
        Cmd::change(["mkfs.xfs", "-q", "-m", &format!("uuid={uuid}"), dev]).timeout(long)
    } else {
        Cmd::change(["mkfs.ext4", "-q", "-U", uuid, dev]).timeout(long)
    }
}

/// The fstab line for the filesystem `uuid`.
pub fn fstab_line(want: &Wanted, uuid: &str) -> Result<String, StepError> {
    let pass = if want.fstype.as_str() == "xfs" {
        "0"
    } else {
        "2"
    };
    crate::steps::templates::render(
        FSTAB_LINE,
        &[
            ("uuid", uuid),
            ("mount_point", want.mount_point.as_str()),
            ("fstype", want.fstype.as_str()),
            ("pass", pass),
        ],
    )
    .map_err(StepError::Failed)
}

/// The plan's actions for `layout`, in the order they run. `fstab` is /etc/fstab as the
/// plan leaves it so far (another volume's line may be planned already); a planned line
/// updates it.
pub fn push_actions(
    plan: &mut Plan,
    want: &Wanted,
    layout: &Layout,
    uuid: &str,
    fstab: &mut Option<String>,
) -> Result<(), StepError> {
    let v = want.volume;
    let map = layout.map.as_str();
    let fstype = want.fstype.as_str();
    let mount_point = want.mount_point.as_str();
    if layout.wipe {
        plan.note("--force-format: the signatures listed by wipefs will be erased");
        if layout.remove_partition_maps {
            plan.push(Action::run(
                Cmd::change(["kpartx", "-d", map]),
                "remove the old partition mappings",
            ));
        }
        plan.push(Action::run(
            Cmd::change(["wipefs", "-a", map]),
            "erase the old signatures (--force-format)",
        ));
    }
    if let Some(p) = &layout.parted {
        plan.note(p.note.clone());
        plan.push(Action::run(
            Cmd::change([
                "parted",
                "-s",
                map,
                "unit",
                "s",
                "mklabel",
                "gpt",
                "mkpart",
                "iser-data",
                fstype,
                &p.first,
                &p.last,
            ]),
            "GPT label with one aligned partition",
        ));
        plan.push(Task::FindPartition.action(
            v,
            format!("find the new partition of {map} through lsblk (its name differs by distro)"),
        ));
    }
    if layout.mkfs {
        match &layout.target {
            Some(dev) if !want.partition || layout.parted.is_none() => plan.push(Action::run(
                mkfs_cmd(fstype, uuid, dev),
                "make the filesystem with a UUID chosen now, so fstab can name it",
            )),
            _ => plan.push(Task::Mkfs.action(
                v,
                format!(
                    "{} on the new partition",
                    mkfs_cmd(fstype, uuid, "<partition>")
                ),
            )),
        };
    }
    if !layout.mount_point_exists {
        plan.push(Action::run(
            Cmd::change(["mkdir", "-p", mount_point]),
            "create the mount point",
        ));
    }
    plan_fstab(plan, want, uuid, fstab)?;
    if !layout.mounted {
        match &layout.target {
            Some(dev) if layout.parted.is_none() => plan.push(Action::run(
                mount_cmd(fstype, dev, mount_point),
                "mount the volume",
            )),
            _ => plan.push(Task::Mount.action(
                v,
                format!(
                    "{} (the new partition)",
                    mount_cmd(fstype, "<partition>", mount_point)
                ),
            )),
        };
    }
    Ok(())
}

/// The fstab line, when asked for and not there yet; a line of another device on the mount
/// point stops the plan.
fn plan_fstab(
    plan: &mut Plan,
    want: &Wanted,
    uuid: &str,
    fstab: &mut Option<String>,
) -> Result<(), StepError> {
    let line = fstab_line(want, uuid)?;
    if !want.fstab {
        return Ok(());
    }
    let current = fstab.as_deref().unwrap_or_default();
    match fstab_entry(current, want.mount_point.as_str()) {
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
            let mut new = current.to_string();
            if !new.is_empty() && !new.ends_with('\n') {
                new.push('\n');
            }
            new.push_str(&line);
            plan.push(Action::write(
                "/etc/fstab",
                fstab.clone(),
                new.clone(),
                0o644,
                "mount at boot, after the network (_netdev), without blocking boot (nofail)",
            ));
            *fstab = Some(new);
        }
    }
    Ok(())
}

/// Run a change; a failure is an error naming the command.
pub fn run_checked(cx: &Ctx<'_>, cmd: &Cmd) -> Result<(), StepError> {
    let out = cx.host.run(cmd)?;
    if out.success() {
        Ok(())
    } else {
        Err(StepError::command(cmd, &out, None))
    }
}

/// The partition node of the map, once its name holds still. Right after parted, Debian
/// briefly shows libparted's own `<wwid>p1` mapping, which udev then replaces with
/// `<wwid>-part1` (seen in the lab: a mount of the first name failed). So wait for udev,
/// and accept a name only when two looks, a settle apart, agree and the node exists.
/// The node found is recorded at once, so a run stopped after it resumes on its own
/// partition instead of refusing it as foreign data.
/// `volume`: which volume of the answers' list the map is (where the node is recorded).
pub fn find_partition(cx: &mut Ctx<'_>, map: &str, volume: usize) -> Result<String, StepError> {
    let start = Instant::now();
    let mut kpartx_tried = false;
    let mut last: Option<String> = None;
    let look = |last: &mut Option<String>, kpartx_tried: &mut bool| {
        if cx.host.which("udevadm").is_some() {
            cx.host.run(
                &Cmd::probe(["udevadm", "settle", "--timeout=5"]).timeout(Duration::from_secs(10)),
            )?;
        }
        let dev = lsblk(cx, map)?;
        let parts: Vec<&BlockDev> = dev.children.iter().filter(|c| c.is_type("part")).collect();
        if parts.len() > 1 {
            return Err(StepError::Failed(format!(
                "{map} shows {} partitions after partitioning; expected one",
                parts.len()
            )));
        }
        match parts.first().map(|d| dev_path(d)) {
            Some(p) if last.as_deref() == Some(p.as_str()) && cx.host.exists(Path::new(&p)) => {
                return Ok(Some(p))
            }
            found => *last = found,
        }
        // udev normally maps the new partition (kpartx rules) within a second.
        if last.is_none()
            && start.elapsed() > KPARTX_AFTER
            && !*kpartx_tried
            && cx.host.which("kpartx").is_some()
        {
            *kpartx_tried = true;
            run_checked(cx, &Cmd::change(["kpartx", "-a", map]))?;
        }
        Ok(None)
    };
    let found = poll_until(
        cx.host,
        Wait::new(PARTITION_BOUND, PARTITION_INTERVAL),
        || look(&mut last, &mut kpartx_tried),
    )?;
    let Some(p) = found else {
        return Err(StepError::Failed(format!(
            "the partition of {map} did not appear (or kept changing its name) within \
             30 s; check `multipath -ll` and `kpartx -l {map}`"
        )));
    };
    cx.facts.volume_of_mut(cx.ask.answers(), volume).partition = Some(p.clone());
    Ok(p)
}

/// Make the filesystem on the new partition, never over an old signature unless forced.
pub fn mkfs_on_partition(
    cx: &mut Ctx<'_>,
    map: &str,
    want: &Wanted,
    uuid: &str,
) -> Result<(), StepError> {
    // The find-partition task has just found it holding still: one look confirms it.
    let part = match confirmed_partition(cx, map, want.volume)? {
        Some(p) => p,
        None => find_partition(cx, map, want.volume)?,
    };
    // The new partition may start where an old filesystem did: never let mkfs meet a
    // signature it would ask about (it reads EOF and stops) or overwrite.
    if let Some(sig) = signature(cx, &part)? {
        if sig.is_occupied() && !want.force {
            return Err(StepError::Refused {
                reason: format!(
                    "the new partition {part} shows an old signature; not making a filesystem \
                     over it. If it holds nothing you need, run again with --force-format"
                ),
                evidence: vec![format!(
                    "{part}: {}",
                    sig.fs_type.or(sig.pttype).unwrap_or_default()
                )],
            });
        }
        if sig.is_occupied() {
            run_checked(cx, &Cmd::change(["wipefs", "-a", &part]))?;
        }
    }
    let cmd = mkfs_cmd(want.fstype.as_str(), uuid, &part);
    cx.progress.message(&format!("{cmd}"));
    run_checked(cx, &cmd)?;
    // Recorded at once, like the partition: a resumed run knows this filesystem as its own.
    cx.facts
        .volume_of_mut(cx.ask.answers(), want.volume)
        .fs_uuid = Some(uuid.to_string());
    Ok(())
}

/// The partition found earlier (by the find-partition task, before mkfs), when one look
/// confirms it: its node exists and lsblk shows it as the map's only partition. It held still
/// across two looks a settle apart when it was found, and neither mkfs nor the fstab line
/// renames it, so no settle and second look are needed again.
fn confirmed_partition(
    cx: &Ctx<'_>,
    map: &str,
    volume: usize,
) -> Result<Option<String>, StepError> {
    let Some(known) = cx
        .facts
        .volume_of(cx.ask.answers(), volume)
        .and_then(|v| v.partition.clone())
    else {
        return Ok(None);
    };
    if !cx.host.exists(Path::new(&known)) {
        return Ok(None);
    }
    let dev = lsblk(cx, map)?;
    let parts: Vec<String> = dev
        .children
        .iter()
        .filter(|c| c.is_type("part"))
        .map(dev_path)
        .collect();
    Ok((parts == [known.clone()]).then_some(known))
}

/// Mount the new partition: the one found before when one look confirms it, else resolved
/// again (its name may have changed).
pub fn mount_partition(cx: &mut Ctx<'_>, map: &str, want: &Wanted) -> Result<(), StepError> {
    let part = match confirmed_partition(cx, map, want.volume)? {
        Some(p) => p,
        None => find_partition(cx, map, want.volume)?,
    };
    run_checked(
        cx,
        &mount_cmd(want.fstype.as_str(), &part, want.mount_point.as_str()),
    )
}
