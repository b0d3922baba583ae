//! The multipath step's view of the host: read-only probes (`multipath -ll`, udev's
//! properties of a disk, what a map carries, multipathd's state). Nothing here changes the
//! host. Command economy: multipathd's state is one `systemctl show`, a disk's udev
//! properties are read from udev's database without a process where it has the disk, and
//! the maps come from the running daemon (`multipathd show topology`) when it vouches for
//! every path, else from `multipath -ll`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::steps::host::units::unit_states;
use crate::steps::parse::blkid::parse_blkid_export;
use crate::steps::parse::lsblk::{parse_lsblk_json, BlockDev};
use crate::steps::parse::multipath::{parse_multipath_listing, Map};
use crate::steps::poll::{poll_until, Wait};
use crate::steps::{Cmd, Ctx, Host, StepError};

use super::decide::{find_multipaths_in, FindMultipaths, ServiceState};

/// multipathd's state, from systemd: one `systemctl show`, not `is-enabled` (which runs
/// Debian's SysV compatibility for multipath-tools' init script: 1.5 s in the lab) and
/// `is-active`.
pub fn service_state(cx: &Ctx<'_>) -> Result<ServiceState, StepError> {
    service_state_on(cx.host)
}

/// [`service_state`] from `host` alone, for a thread of its own: right after new sessions
/// systemd is busy with their disks' device units and answers in 0.5-3.6 s (lab), time
/// better spent listing the maps beside it.
pub fn service_state_on(host: &dyn Host) -> Result<ServiceState, StepError> {
    let state = unit_states(host, &["multipathd"])?
        .pop()
        .unwrap_or_default();
    Ok(ServiceState {
        active: state.is_active(),
        enabled: state.enabled,
    })
}

/// The `E:` properties of `disk`'s udev database record, `None` without one.
fn udev_db_properties(
    cx: &Ctx<'_>,
    disk: &str,
) -> Result<Option<BTreeMap<String, String>>, StepError> {
    if disk.contains('/') || disk.starts_with('.') {
        return Ok(None);
    }
    let Some(dev) = cx.host.read(Path::new(&format!("/sys/block/{disk}/dev")))? else {
        return Ok(None);
    };
    let dev = dev.trim();
    if dev.is_empty() || !dev.bytes().all(|b| b.is_ascii_digit() || b == b':') {
        return Ok(None);
    }
    let Some(text) = cx.host.read(Path::new(&format!("/run/udev/data/b{dev}")))? else {
        return Ok(None);
    };
    let props: BTreeMap<String, String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("E:"))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Ok((!props.is_empty()).then_some(props))
}

/// Whether udev's database already holds `disk`'s WWID (`ID_SERIAL`): udev has processed the
/// disk, so there is nothing to wait for before reading its properties.
pub fn udev_has_wwid(cx: &Ctx<'_>, disk: &str) -> Result<bool, StepError> {
    Ok(udev_db_properties(cx, disk)?
        .is_some_and(|p| p.get("ID_SERIAL").is_some_and(|w| !w.is_empty())))
}

/// How long the disks of new sessions may take to get their WWIDs into udev's records
/// before `udevadm settle` decides (lab: 1.3-2.7 s after the logins).
pub const UDEV_WAIT: Wait = Wait::new(Duration::from_secs(5), Duration::from_millis(50));

/// Wait (bounded by `wait`) until udev's record of each of `disks` holds its WWID: read from
/// udev's database, no process. Unlike `udevadm settle`, it ends as soon as these disks are
/// done, not when every event of the host is (right after a login, udev is still busy with
/// the other paths' disks, their bsg and partition-table probes). Returns whether they all
/// are. When not, only `udevadm settle` can tell "not yet" from "never": udev's queue file
/// (`/run/udev/queue`) does not count the events still in the kernel's netlink socket,
/// which settle's ping to udevd does (seen in the lab: the queue file gone while two new
/// disks had no record yet).
pub fn wait_for_udev(cx: &Ctx<'_>, disks: &[&str], wait: Wait) -> Result<bool, StepError> {
    let done = || -> Result<bool, StepError> {
        for d in disks {
            if !udev_has_wwid(cx, d)? {
                return Ok(false);
            }
        }
        Ok(true)
    };
    Ok(poll_until(cx.host, wait, || Ok(done()?.then_some(())))?.is_some())
}

/// Whether multipathd runs: its pid file names a live `multipathd` (read from /run and
/// /proc, no process). Never by asking its socket, which socket activation would answer by
/// starting the daemon.
fn multipathd_runs(cx: &Ctx<'_>) -> Result<bool, StepError> {
    let Some(pid) = cx.host.read(Path::new("/run/multipathd.pid"))? else {
        return Ok(false);
    };
    let pid = pid.trim();
    if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(false);
    }
    let comm = cx.host.read(Path::new(&format!("/proc/{pid}/comm")))?;
    Ok(comm.is_some_and(|c| c.trim() == "multipathd"))
}

/// Whether the kernel has a multipath map at all: a `dm-N` in /sys/block whose
/// `dm/uuid` starts with `mpath-` (no process). Without one, the daemon cannot list a map
/// either, and asking it would only come before `multipath -ll` on a first attach.
fn kernel_has_mpath_map(cx: &Ctx<'_>) -> Result<bool, StepError> {
    for name in cx.host.list_dir(Path::new("/sys/block"))? {
        if !name.starts_with("dm-") {
            continue;
        }
        let uuid = cx
            .host
            .read(Path::new(&format!("/sys/block/{name}/dm/uuid")))?;
        if uuid.is_some_and(|u| u.trim_start().starts_with("mpath-")) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The maps as the running multipathd knows them (`multipathd show topology`, the format of
/// `multipath -ll`), when that listing can stand for `multipath -ll`: at least one map, and
/// every path healthy by the daemon's own checkers. Otherwise `None`: an empty listing may
/// only mean the daemon has not taken up a map the kernel has yet, and a path in doubt is
/// left to `multipath -ll`, which runs the checkers now.
fn daemon_maps(cx: &Ctx<'_>) -> Result<Option<Vec<Map>>, StepError> {
    if !multipathd_runs(cx)? || !kernel_has_mpath_map(cx)? {
        return Ok(None);
    }
    let out = cx
        .host
        .run(&Cmd::probe(["multipathd", "show", "topology"]).reusable())?;
    if !out.success() {
        return Ok(None);
    }
    let maps = parse_multipath_listing(&out.stdout).maps;
    let sound = !maps.is_empty()
        && maps.iter().all(|m| {
            m.paths().next().is_some() && m.paths().all(|p| p.is_healthy() && p.dev.is_some())
        });
    Ok(sound.then_some(maps))
}

/// The maps, or none when the kernel driver is not loaded yet. From the running multipathd
/// when it answers for every path ([`daemon_maps`]: one small client, where `multipath -ll`
/// scans every disk and runs each path's checker and prioritizer, 1.5-5 s in the lab), else
/// from `multipath -ll`.
pub fn list_maps(cx: &Ctx<'_>) -> Result<(Vec<Map>, bool), StepError> {
    if let Some(maps) = daemon_maps(cx)? {
        return Ok((maps, true));
    }
    // Reusable: plan and verify (and a wait's last look, then verify) ask in turn.
    let cmd = Cmd::probe(["multipath", "-ll"]).reusable();
    let out = cx.host.run(&cmd)?;
    let all = format!("{}\n{}", out.stdout, out.stderr);
    if all.contains("driver not loaded") {
        return Ok((Vec::new(), false));
    }
    if !out.success() {
        return Err(StepError::command(&cmd, &out, None));
    }
    Ok((parse_multipath_listing(&out.stdout).maps, true))
}

/// udev's properties of a disk (`KEY=value` lines): from udev's database record of the
/// device (`/run/udev/data/b<major>:<minor>`, its `E:` lines: what `udevadm info
/// --query=property` prints beside the kernel's own keys), read without a process; from
/// `udevadm info` when there is no such record (udev has not processed the disk yet, or
/// the root is not the running system).
pub fn udev_properties(cx: &Ctx<'_>, disk: &str) -> Result<BTreeMap<String, String>, StepError> {
    if let Some(props) = udev_db_properties(cx, disk)? {
        return Ok(props);
    }
    let dev = format!("/dev/{disk}");
    let cmd = Cmd::probe([
        "udevadm",
        "info",
        "--query=property",
        &format!("--name={dev}"),
    ]);
    let out = cx.host.run(&cmd)?;
    if !out.success() {
        return Err(StepError::command(&cmd, &out, None));
    }
    Ok(out
        .stdout
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect())
}

/// How long udev may take to make a new map's device node.
const NODE_WAIT: Wait = Wait::new(Duration::from_secs(20), Duration::from_millis(100));

/// Wait (bounded) for a map's device node. multipathd reports a new map healthy before udev
/// has made `/dev/mapper/<name>` (seen on Debian 13): probing it then reads "nothing there"
/// (blkid exit 2) for a node that is missing, not for a map that is blank.
fn wait_for_node(cx: &Ctx<'_>, dev: &str) -> Result<(), StepError> {
    // Only where device-mapper is there to make nodes (not in a tree without /dev/mapper).
    if !cx.host.exists(Path::new("/dev/mapper")) {
        return Ok(());
    }
    let node = Path::new(dev);
    match poll_until(cx.host, NODE_WAIT, || {
        Ok(cx.host.exists(node).then_some(()))
    })? {
        Some(()) => Ok(()),
        None => Err(StepError::Failed(format!(
            "{dev} did not appear within {}s although multipathd lists the map: udev has not \
             made its device node (see `udevadm monitor`)",
            NODE_WAIT.bound.as_secs()
        ))),
    }
}

/// What the map carries: signatures, devices built on it, mounts (empty: nothing).
pub fn data_on(cx: &Ctx<'_>, map: &Map) -> Result<Vec<String>, StepError> {
    let dev = format!("/dev/mapper/{}", map.name);
    wait_for_node(cx, &dev)?;
    let mut found = Vec::new();
    let cmd = Cmd::probe(["blkid", "-p", "-o", "export", &dev]).reusable();
    let out = cx.host.run(&cmd)?;
    match out.code {
        // blkid exits 2 when it finds nothing.
        Some(2) if out.stdout.trim().is_empty() => {}
        Some(0) => {
            let sig = parse_blkid_export(&out.stdout)
                .map_err(|e| StepError::Failed(format!("reading blkid output for {dev}: {e}")))?;
            if let Some(s) = sig.filter(|s| s.is_occupied()) {
                let what = s
                    .pttype
                    .map(|p| format!("a {p} partition table"))
                    .or(s.fs_type.map(|f| format!("a {f} signature")))
                    .or(s.usage.map(|u| format!("a {u} signature")))
                    .unwrap_or_default();
                found.push(format!("carries {what}"));
            }
        }
        _ => return Err(StepError::command(&cmd, &out, None)),
    }
    let cmd = Cmd::probe(["lsblk", "-J", "-o", "NAME,TYPE,MOUNTPOINT", &dev]).reusable();
    let out = cx.host.run(&cmd)?;
    if !out.success() {
        return Err(StepError::command(&cmd, &out, None));
    }
    let devs = parse_lsblk_json(&out.stdout)
        .map_err(|e| StepError::Failed(format!("reading lsblk output for {dev}: {e}")))?;
    fn walk(d: &BlockDev, top: bool, found: &mut Vec<String>) {
        if !top {
            found.push(format!(
                "{} ({}) is built on it",
                d.name,
                d.dev_type.as_deref().unwrap_or("device")
            ));
        }
        for m in &d.mountpoints {
            found.push(format!("{} is mounted on {m}", d.name));
        }
        for c in &d.children {
            walk(c, false, found);
        }
    }
    if let Some(d) = devs.first() {
        walk(d, true, &mut found);
    }
    Ok(found)
}

/// `find_multipaths` in the configuration in effect (`multipath -t`), if it shows one.
pub fn find_multipaths(cx: &Ctx<'_>) -> Result<Option<FindMultipaths>, StepError> {
    let out = cx.probe_ok(&["multipath", "-t"], &[])?;
    Ok(find_multipaths_in(&out.stdout))
}
