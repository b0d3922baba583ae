//! The filesystem step's view of the host: read-only probes of the map, what is built on
//! it, what is mounted where, and /etc/fstab. Nothing here changes the host.
//!
//! The listings (lsblk, blkid, findmnt) are reusable probes: while nothing changes the host,
//! verify after a plan that changed nothing reads what plan read (and blkid of the map what
//! the multipath step read) instead of spawning each again. A wait (`poll_until`) and
//! any change forget them.

use std::path::Path;

use serde::Deserialize;

use crate::steps::parse::blkid::{parse_blkid_export, Signature};
use crate::steps::parse::lsblk::{parse_lsblk_json, BlockDev};
use crate::steps::{Cmd, Ctx, StepError};

use super::decide::dev_path;

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

#[derive(Debug, Deserialize)]
struct Findmnt {
    filesystems: Vec<FindmntFs>,
}

#[derive(Debug, Deserialize)]
struct FindmntFs {
    source: String,
    fstype: String,
}

const LSBLK_COLUMNS: &str = "NAME,KNAME,PATH,TYPE,SIZE,FSTYPE,UUID,MOUNTPOINT";

/// The device and what is built on it, as lsblk shows them.
pub fn lsblk(cx: &Ctx<'_>, dev: &str) -> Result<BlockDev, StepError> {
    let cmd = Cmd::probe(["lsblk", "-J", "-b", "-p", "-o", LSBLK_COLUMNS, dev]).reusable();
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

/// `blkid -p` of a device: what it carries, read from the device itself.
pub fn signature(cx: &Ctx<'_>, dev: &str) -> Result<Option<Signature>, StepError> {
    let cmd = Cmd::probe(["blkid", "-p", "-o", "export", dev]).reusable();
    let out = cx.host.run(&cmd)?;
    match out.code {
        // blkid exits 2 when it finds nothing.
        Some(2) if out.stdout.trim().is_empty() => Ok(None),
        Some(0) => parse_blkid_export(&out.stdout)
            .map_err(|e| StepError::Failed(format!("reading blkid output for {dev}: {e}"))),
        _ => Err(StepError::command(&cmd, &out, None)),
    }
}

/// What is mounted on `mount_point`: (source, fstype), if anything.
pub fn mounted_on(cx: &Ctx<'_>, mount_point: &str) -> Result<Option<(String, String)>, StepError> {
    let fm = cx.host.run(
        &Cmd::probe([
            "findmnt",
            "-J",
            "-o",
            "SOURCE,FSTYPE",
            "--mountpoint",
            mount_point,
        ])
        .reusable(),
    )?;
    // findmnt exits 1, printing nothing, when nothing is mounted there.
    Ok(fm
        .success()
        .then(|| serde_json::from_str::<Findmnt>(&fm.stdout).ok())
        .flatten()
        .and_then(|f| f.filesystems.into_iter().next())
        .map(|f| (f.source, f.fstype)))
}

/// Probe the map and the mount point (read-only).
pub fn observe(cx: &Ctx<'_>, map: &str, mount_point: &str) -> Result<Probe, StepError> {
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
    let wout = cx.probe_ok(
        &["wipefs", "--noheadings", "--output", "TYPE,OFFSET", map],
        &[],
    )?;
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
    Ok(Probe {
        map: dev,
        holders,
        dm_uuid,
        signature: sig,
        wipefs,
        swaps,
        queue,
        fstab: cx.host.read(Path::new("/etc/fstab"))?,
        at_mount_point: mounted_on(cx, mount_point)?,
        mount_point_exists: cx.host.exists(Path::new(mount_point)),
    })
}
