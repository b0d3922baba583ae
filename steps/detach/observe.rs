//! What a detach needs to know of the host, read-only: mounts, `/etc/fstab`, the multipath
//! maps, the iSCSI sessions with their disks, the WWID of every SCSI disk, and the
//! processes holding anything below the volumes' mount points. Nothing here changes the
//! host, so a dry run and a refusal run exactly this.

use std::collections::BTreeMap;
use std::path::Path;

use crate::steps::parse::iscsiadm::{classify_exit, parse_session_p3, SessionDetail};
use crate::steps::parse::multipath::{parse_multipath_ll, Map};
use crate::steps::{Cmd, Host, StepError};

use super::Target;

/// A line of `/proc/self/mounts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The mounted device.
    pub source: String,
    /// Where.
    pub target: String,
}

/// The host as a detach sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// Every mount.
    pub mounts: Vec<Mount>,
    /// `/etc/fstab` (`None`: absent).
    pub fstab: Option<String>,
    /// `multipath -ll`.
    pub maps: Vec<Map>,
    /// `iscsiadm -m session -P 3`.
    pub sessions: Vec<SessionDetail>,
    /// SCSI disk to its WWID in multipath's form (`sdc` -> `3600a0980...`).
    pub disk_wwids: BTreeMap<String, String>,
    /// Mount point to the processes holding something below it
    /// (`pid 812 (bash): cwd /data`).
    pub holders: BTreeMap<String, Vec<String>>,
}

/// Unescape a field of `/proc/self/mounts` (`\040` is a space).
fn unescape(field: &str) -> String {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parse `/proc/self/mounts`.
pub fn parse_mounts(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some(Mount {
                source: unescape(f.next()?),
                target: unescape(f.next()?),
            })
        })
        .collect()
}

/// A sysfs `device/wwid` (`naa.600a0980...`) in multipath's form (`3600a0980...`): the
/// SCSI VPD page 0x83 designator type as its first digit, as `scsi_id` prints it.
pub fn sysfs_wwid_to_multipath(wwid: &str) -> Option<String> {
    let w = wwid.trim();
    let (kind, rest) = w.split_once('.')?;
    let digit = match kind {
        "t10" => '1',
        "eui" => '2',
        "naa" => '3',
        "name" => '8',
        _ => return None,
    };
    Some(format!("{digit}{}", rest.to_ascii_lowercase()))
}

/// Whether `path` is `dir` or lies below it.
pub fn below(path: &str, dir: &str) -> bool {
    path == dir || (dir == "/" || path.starts_with(&format!("{dir}/")))
}

/// The current mounts.
pub fn mounts(host: &dyn Host) -> Result<Vec<Mount>, StepError> {
    Ok(parse_mounts(
        &host
            .read(Path::new("/proc/self/mounts"))?
            .unwrap_or_default(),
    ))
}

/// `multipath -ll` (no maps, or no multipath installed: none).
pub fn maps(host: &dyn Host) -> Result<Vec<Map>, StepError> {
    if host.which("multipath").is_none() {
        return Ok(Vec::new());
    }
    let cmd = Cmd::probe(["multipath", "-ll"]);
    let out = host.run(&cmd)?;
    if !out.success() {
        return Err(StepError::command(&cmd, &out, None));
    }
    Ok(parse_multipath_ll(&out.stdout))
}

/// `iscsiadm -m session -P 3` (exit 21, no sessions: none).
pub fn sessions(host: &dyn Host) -> Result<Vec<SessionDetail>, StepError> {
    if host.which("iscsiadm").is_none() {
        return Ok(Vec::new());
    }
    let cmd = Cmd::probe(["iscsiadm", "-m", "session", "-P", "3"]);
    let out = host.run(&cmd)?;
    match out.code.map(classify_exit) {
        Some(e) if e.listing_ok() => Ok(if out.success() {
            parse_session_p3(&out.stdout)
        } else {
            Vec::new()
        }),
        _ => Err(StepError::command(&cmd, &out, None)),
    }
}

/// Every SCSI disk with its WWID in multipath's form.
pub fn disk_wwids(host: &dyn Host) -> Result<BTreeMap<String, String>, StepError> {
    let mut out = BTreeMap::new();
    for dev in host.list_dir(Path::new("/sys/block"))? {
        if !dev.starts_with("sd") {
            continue;
        }
        if let Some(w) = host
            .read(Path::new(&format!("/sys/block/{dev}/device/wwid")))?
            .as_deref()
            .and_then(sysfs_wwid_to_multipath)
        {
            out.insert(dev, w);
        }
    }
    Ok(out)
}

/// The processes holding something below `mount_point`: their working directory, root,
/// executable, an open file or a mapped file. Read from `/proc` (no fuser or lsof needed).
pub fn holders(host: &dyn Host, mount_point: &str) -> Result<Vec<String>, StepError> {
    let mut out = Vec::new();
    let me = std::process::id().to_string();
    for pid in host.list_dir(Path::new("/proc"))? {
        if !pid.bytes().all(|c| c.is_ascii_digit()) || pid == me {
            continue;
        }
        let base = format!("/proc/{pid}");
        let mut why: Vec<String> = Vec::new();
        for link in ["cwd", "root", "exe"] {
            if let Some(p) = host.read_link(Path::new(&format!("{base}/{link}")))? {
                let p = p.to_string_lossy().to_string();
                // Every process's root is `/`: only a root below the mount point holds it.
                if below(&p, mount_point) && !(link == "root" && mount_point == "/") {
                    why.push(format!("{link} {p}"));
                }
            }
        }
        for fd in host.list_dir(Path::new(&format!("{base}/fd")))? {
            if let Some(p) = host.read_link(Path::new(&format!("{base}/fd/{fd}")))? {
                let p = p.to_string_lossy().to_string();
                if p.starts_with('/') && below(p.trim_end_matches(" (deleted)"), mount_point) {
                    why.push(format!("open {p}"));
                }
            }
        }
        if let Some(maps) = host.read(Path::new(&format!("{base}/maps")))? {
            for l in maps.lines() {
                if let Some(p) = l.split_whitespace().nth(5) {
                    if below(p, mount_point) && !why.iter().any(|w| w.ends_with(p)) {
                        why.push(format!("mapped {p}"));
                    }
                }
            }
        }
        if !why.is_empty() {
            let comm = host
                .read(Path::new(&format!("{base}/comm")))?
                .map(|c| c.trim().to_string())
                .unwrap_or_default();
            why.dedup();
            out.push(format!("pid {pid} ({comm}): {}", why.join(", ")));
        }
    }
    Ok(out)
}

/// Read everything a detach of `targets` decides on.
pub fn observe(host: &dyn Host, targets: &[Target]) -> Result<Observed, StepError> {
    let mounts = mounts(host)?;
    let mut holders_of = BTreeMap::new();
    let maps = maps(host)?;
    for t in targets {
        let map = maps.iter().find(|m| m.wwid == t.wwid);
        for m in mounts
            .iter()
            .filter(|m| super::decide::mount_is_of(m, t, map.map(|m| m.name.as_str())))
        {
            holders_of.insert(m.target.clone(), holders(host, &m.target)?);
        }
    }
    Ok(Observed {
        mounts,
        fstab: host.read(Path::new("/etc/fstab"))?,
        maps,
        sessions: sessions(host)?,
        disk_wwids: disk_wwids(host)?,
        holders: holders_of,
    })
}
