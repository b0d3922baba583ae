//! Table tests of `decide`, and `apply`/`observe` on the recording fake.

use std::time::Duration;

use super::apply::Waits;
use super::observe::{parse_mounts, sysfs_wwid_to_multipath, Mount, Observed};
use super::*;
use crate::steps::facts::VolumeFact;
use crate::steps::fake::FakeHost;
use crate::steps::parse::iscsiadm::parse_session_p3;
use crate::steps::parse::multipath::parse_multipath_ll;
use crate::steps::poll::Wait;
use crate::steps::{CmdOutput, Facts, StepError};

const W0: &str = "360014050c0ffe0012344abc9def00000";
const W1: &str = "360014050c0ffe1012344abc9def00000";
const T: &str = "iqn.2002-09.com.lab:array";

/// `multipath -ll` of two LUNs over four sessions (as in the lab), with `state` for
/// the first map's paths.
fn two_maps(state0: &str) -> String {
    format!(
        "mpatha ({W0}) dm-0 LIO-ORG,FILEIO\n\
         size=512M features='1 queue_if_no_path' hwhandler='1 alua' wp=rw\n\
         `-+- policy='service-time 0' prio=50 status=enabled\n\
         \x20 |- 2:0:0:0 sda 8:0  {state0}\n\
         \x20 `- 3:0:0:0 sdc 8:32 active ready running\n\
         mpathb ({W1}) dm-1 LIO-ORG,FILEIO\n\
         size=256M features='1 queue_if_no_path' hwhandler='1 alua' wp=rw\n\
         `-+- policy='service-time 0' prio=50 status=enabled\n\
         \x20 |- 2:0:0:1 sdb 8:16 active ready running\n\
         \x20 `- 3:0:0:1 sdd 8:48 active ready running\n"
    )
}

/// `iscsiadm -m session -P 3` of sessions (sid, portal, iface, disks).
fn sessions_text(sessions: &[(u32, &str, &str, &[&str])]) -> String {
    let mut t =
        format!("iSCSI Transport Class version 2.0-870\nversion 2.1.8\nTarget: {T} (non-flash)\n");
    for (sid, portal, iface, disks) in sessions {
        t.push_str(&format!(
            "\tCurrent Portal: {portal},1\n\tPersistent Portal: {portal},1\n\
             \t\tIface Name: {iface}\n\t\tIface Transport: iser\n\t\tSID: {sid}\n\
             \t\tiSCSI Connection State: LOGGED IN\n\t\tiSCSI Session State: LOGGED_IN\n"
        ));
        if !disks.is_empty() {
            t.push_str(&format!(
                "\t\tAttached SCSI devices:\n\t\tHost Number: {sid}\tState: running\n"
            ));
            for (lun, d) in disks.iter().enumerate() {
                t.push_str(&format!(
                    "\t\tscsi{sid} Channel 00 Id 0 Lun: {lun}\n\
                     \t\t\tAttached scsi disk {d}\t\tState: running\n"
                ));
            }
        }
    }
    t
}

const A: &str = "192.168.130.101:3260";
const B: &str = "192.168.131.101:3260";

fn target0() -> Target {
    Target {
        wwid: W0.into(),
        map: Some("mpatha".into()),
        mount_point: Some("/data".into()),
        fs_device: Some("/dev/mapper/mpatha-part1".into()),
    }
}

fn target1() -> Target {
    Target {
        wwid: W1.into(),
        map: Some("mpathb".into()),
        mount_point: Some("/logs".into()),
        fs_device: Some("/dev/mapper/mpathb-part1".into()),
    }
}

const FSTAB: &str = "UUID=root / ext4 defaults 0 1\n\
    UUID=u0 /data ext4 defaults,_netdev,nofail 0 2\n\
    # UUID=old /data ext4 defaults 0 2\n\
    UUID=u1 /logs ext4 defaults,_netdev,nofail 0 2\n";

/// Two volumes attached and mounted, each LUN on both sessions.
fn two_attached() -> Observed {
    Observed {
        mounts: parse_mounts(
            "/dev/sda1 / ext4 rw 0 0\n/dev/mapper/mpatha-part1 /data ext4 rw 0 0\n\
             /dev/mapper/mpathb-part1 /logs ext4 rw 0 0\n",
        ),
        fstab: Some(FSTAB.into()),
        maps: parse_multipath_ll(&two_maps("active ready running")),
        sessions: parse_session_p3(&sessions_text(&[
            (3, A, "iface-vA", &["sda", "sdb"]),
            (4, B, "iface-vB", &["sdc", "sdd"]),
        ])),
        disk_wwids: [("sda", W0), ("sdb", W1), ("sdc", W0), ("sdd", W1)]
            .into_iter()
            .map(|(d, w)| (d.to_string(), w.to_string()))
            .collect(),
        holders: [("/data", vec![]), ("/logs", vec![])]
            .into_iter()
            .map(|(m, h)| (m.to_string(), h))
            .collect(),
    }
}

fn names(plan: &Plan) -> Vec<String> {
    plan.acts
        .iter()
        .map(|a| match a {
            Act::Unmount { mount_point } => format!("umount {mount_point}"),
            Act::RemoveFstabLine { mount_point, .. } => format!("fstab {mount_point}"),
            Act::RemoveDir { path } => format!("rmdir {path}"),
            Act::FailQueued { map } => format!("fail-queued {map}"),
            Act::Flush { map, .. } => format!("flush {map}"),
            Act::DeletePath { dev } => format!("delete {dev}"),
            Act::Logout { sid, .. } => format!("logout {sid}"),
            Act::NodeManual(n) => format!("manual {} {}", n.portal, n.iface),
            Act::NodeDelete(n) => format!("delete-node {} {}", n.portal, n.iface),
        })
        .collect()
}

fn refusal(r: Result<Plan, StepError>) -> (String, Vec<String>) {
    match r {
        Err(StepError::Refused { reason, evidence }) => (reason, evidence),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn one_of_two_volumes_goes_in_order_and_the_shared_sessions_stay() {
    let plan = decide(&[target0()], &two_attached(), false).unwrap();
    assert_eq!(
        names(&plan),
        [
            "umount /data",
            "fstab /data",
            "flush mpatha",
            "delete sda",
            "delete sdc"
        ]
    );
    assert_eq!(plan.notes.len(), 2, "{:?}", plan.notes);
    assert!(plan.notes[0].contains("session 3") && plan.notes[0].contains("sdb"));
    let Act::RemoveFstabLine { new, .. } = &plan.acts[1] else {
        unreachable!()
    };
    // Only the live /data line goes: the comment and the other volume's line stay.
    assert_eq!(
        new,
        "UUID=root / ext4 defaults 0 1\n# UUID=old /data ext4 defaults 0 2\n\
         UUID=u1 /logs ext4 defaults,_netdev,nofail 0 2\n"
    );
}

#[test]
fn the_last_volume_takes_its_sessions_and_node_records_with_it() {
    let plan = decide(&[target0(), target1()], &two_attached(), false).unwrap();
    assert_eq!(
        names(&plan),
        [
            "umount /data",
            "fstab /data",
            "umount /logs",
            "fstab /logs",
            "flush mpatha",
            "flush mpathb",
            "delete sda",
            "delete sdb",
            "delete sdc",
            "delete sdd",
            "logout 3",
            "logout 4",
            "manual 192.168.130.101:3260 iface-vA",
            "manual 192.168.131.101:3260 iface-vB",
            "delete-node 192.168.130.101:3260 iface-vA",
            "delete-node 192.168.131.101:3260 iface-vB",
        ]
    );
    assert!(plan.notes.is_empty(), "{:?}", plan.notes);
    let Act::RemoveFstabLine { new, .. } = &plan.acts[3] else {
        unreachable!()
    };
    assert_eq!(
        new,
        "UUID=root / ext4 defaults 0 1\n# UUID=old /data ext4 defaults 0 2\n"
    );
}

#[test]
fn refusals_name_what_was_seen() {
    // Busy: holders listed.
    let mut busy = two_attached();
    busy.holders
        .insert("/data".into(), vec!["pid 812 (sleep): cwd /data".into()]);
    let (reason, evidence) = refusal(decide(&[target0()], &busy, true));
    assert!(reason.contains("/data is busy"), "{reason}");
    assert_eq!(evidence, ["pid 812 (sleep): cwd /data"]);
    // Something else mounted below it.
    let mut nested = two_attached();
    nested.mounts.push(Mount {
        source: "tmpfs".into(),
        target: "/data/tmp".into(),
    });
    let (_, evidence) = refusal(decide(&[target0()], &nested, false));
    assert_eq!(evidence, ["tmpfs on /data/tmp"]);
    // The mount point holds another device now.
    let mut other = two_attached();
    other.mounts[1].source = "/dev/sdz1".into();
    let (reason, _) = refusal(decide(&[target0()], &other, false));
    assert!(reason.contains("holds /dev/sdz1"), "{reason}");
    // A path down on a map that queues: the flush could lose writes.
    let mut down = two_attached();
    down.maps = parse_multipath_ll(&two_maps("failed faulty running"));
    let (reason, evidence) = refusal(decide(&[target0()], &down, false));
    assert!(reason.contains("--force"), "{reason}");
    assert!(
        evidence.iter().any(|e| e == "sda failed faulty"),
        "{evidence:?}"
    );
}

#[test]
fn force_fails_the_queue_before_the_flush_but_never_forces_a_busy_mount() {
    let mut down = two_attached();
    down.maps = parse_multipath_ll(&two_maps("failed faulty running"));
    let plan = decide(&[target0()], &down, true).unwrap();
    assert_eq!(names(&plan)[2..4], ["fail-queued mpatha", "flush mpatha"]);
    // A map that fails I/O instead of queueing it loses nothing: no refusal.
    let mut no_queue = down.clone();
    no_queue.maps[0].features = Some("0".into());
    assert!(decide(&[target0()], &no_queue, false).is_ok());
}

#[test]
fn what_is_already_gone_is_skipped_and_a_stray_path_of_the_lun_is_still_deleted() {
    // Unmounted, no fstab line, map flushed, but sdc of the LUN still there.
    let mut obs = two_attached();
    obs.mounts.remove(1);
    obs.fstab = Some("UUID=root / ext4 defaults 0 1\n".into());
    obs.maps.remove(0);
    obs.disk_wwids.remove("sda");
    let plan = decide(&[target0()], &obs, false).unwrap();
    assert_eq!(names(&plan), ["delete sdc"]);
    assert!(
        plan.notes[0].contains("no multipath map"),
        "{:?}",
        plan.notes
    );
    // Nothing left at all: an empty plan.
    obs.disk_wwids.remove("sdc");
    let plan = decide(&[target0()], &obs, false).unwrap();
    assert!(plan.acts.is_empty());
    assert!(plan.render().starts_with("nothing to do"));
}

#[test]
fn mounts_of_the_map_are_recognised_by_device_too() {
    let t = target0();
    let m = |s: &str, tgt: &str| Mount {
        source: s.into(),
        target: tgt.into(),
    };
    assert!(decide::mount_is_of(
        &m("/dev/mapper/mpatha-part1", "/else"),
        &t,
        None
    ));
    assert!(decide::mount_is_of(
        &m("/dev/mapper/mpatha", "/x"),
        &t,
        Some("mpatha")
    ));
    assert!(decide::mount_is_of(
        &m("/dev/mapper/mpathap2", "/x"),
        &t,
        Some("mpatha")
    ));
    assert!(!decide::mount_is_of(
        &m("/dev/mapper/mpathab", "/x"),
        &t,
        Some("mpatha")
    ));
    assert!(!decide::mount_is_of(
        &m("/dev/mapper/mpathb-part1", "/logs"),
        &t,
        None
    ));
}

#[test]
fn mounts_and_wwids_parse() {
    let m = parse_mounts("/dev/mapper/a-part1 /mnt/my\\040data ext4 rw 0 0\n");
    assert_eq!(m[0].target, "/mnt/my data");
    assert_eq!(
        sysfs_wwid_to_multipath("naa.60014050C0FFE0012344ABC9DEF00000\n").as_deref(),
        Some(W0)
    );
    assert_eq!(sysfs_wwid_to_multipath("garbage"), None);
}

#[test]
fn selection_reads_the_attached_volumes_and_refuses_strangers() {
    let mut f = Facts::default();
    assert_eq!(select(&f, &[], false).unwrap(), vec![]);
    f.volumes = vec![VolumeFact {
        wwid: Some(W0.into()),
        map_device: Some("/dev/mapper/mpatha".into()),
        mount_point: Some("/data".into()),
        fs_device: Some("/dev/mapper/mpatha-part1".into()),
        ..VolumeFact::default()
    }];
    assert_eq!(
        select(&f, &["/data/".into()], false).unwrap(),
        vec![target0()]
    );
    assert_eq!(select(&f, &[], true).unwrap(), vec![target0()]);
    let e = select(&f, &[], false).unwrap_err().to_string();
    assert!(e.contains("--all") && e.contains("/data"), "{e}");
    let e = select(&f, &["/else".into()], false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("/else is not"), "{e}");
}

#[test]
fn holders_are_found_in_proc_without_fuser() {
    let h = FakeHost::new();
    let link = |p: &str, to: &str| {
        let real = h.path(p);
        std::fs::create_dir_all(real.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(to, real).unwrap();
    };
    link("/proc/812/cwd", "/data/work");
    link("/proc/812/root", "/");
    h.put_file("/proc/812/comm", "sleep\n");
    link("/proc/900/cwd", "/");
    link("/proc/900/fd/3", "/data/db.log");
    link("/proc/900/fd/4", "socket:[1234]");
    h.put_file("/proc/900/comm", "postgres\n");
    h.put_file(
        "/proc/901/maps",
        "7f00-7f01 r-xp 00000000 fd:00 12 /data/lib.so\n7f02-7f03 r-xp 0 fd:00 13 /usr/lib/x.so\n",
    );
    h.put_file("/proc/901/comm", "app\n");
    link("/proc/902/cwd", "/database");
    h.put_file("/proc/902/comm", "other\n");
    h.put_file("/proc/meminfo", "");
    let found = observe::holders(&h, "/data").unwrap();
    assert_eq!(
        found,
        [
            "pid 812 (sleep): cwd /data/work",
            "pid 900 (postgres): open /data/db.log",
            "pid 901 (app): mapped /data/lib.so",
        ]
    );
    h.finish();
}

fn quick() -> Waits {
    Waits {
        map: Wait::new(Duration::from_millis(200), Duration::from_millis(10)),
        paths: Wait::new(Duration::from_millis(200), Duration::from_millis(10)),
    }
}

#[test]
fn apply_runs_the_plan_and_checks_what_is_left() {
    let h = FakeHost::new();
    h.put_file("/etc/fstab", FSTAB);
    h.put_file("/proc/self/mounts", "/dev/sda1 / ext4 rw 0 0\n");
    for d in ["sda", "sdb", "sdc", "sdd"] {
        h.put_file(&format!("/sys/block/{d}/device/delete"), "");
    }
    let plan = decide(&[target0(), target1()], &two_attached(), false).unwrap();
    h.expect(&["umount", "/data"], CmdOutput::ok(""));
    h.expect(&["umount", "/logs"], CmdOutput::ok(""));
    h.expect(&["multipath", "-f", "mpatha"], CmdOutput::ok(""));
    h.expect(&["multipath", "-f", "mpathb"], CmdOutput::ok(""));
    h.allow(&["multipath", "-ll"], CmdOutput::ok(""));
    let logout = |sid: u32, portal: &str| {
        let p = portal.replace(':', ",");
        CmdOutput::ok(format!(
            "Logging out of session [sid: {sid}, target: {T}, portal: {p}]\n\
             Logout of [sid: {sid}, target: {T}, portal: {p}] successful.\n"
        ))
    };
    h.expect(
        &["iscsiadm", "-m", "session", "-r", "3", "-u"],
        logout(3, A),
    );
    // Session 4 will not go: reported, and the rest still done.
    h.expect(
        &["iscsiadm", "-m", "session", "-r", "4", "-u"],
        CmdOutput::status(
            2,
            "",
            "iscsiadm: Could not logout of [sid: 4, target: iqn.2002-09.com.lab:array, portal: 192.168.131.101,3260].\n",
        ),
    );
    for (p, i) in [(A, "iface-vA"), (B, "iface-vB")] {
        let base = ["iscsiadm", "-m", "node", "-T", T, "-p", p, "-I", i];
        let manual: Vec<&str> = base
            .iter()
            .copied()
            .chain(["-o", "update", "-n", "node.startup", "-v", "manual"])
            .collect();
        h.expect(&manual, CmdOutput::ok(""));
        let delete: Vec<&str> = base.iter().copied().chain(["-o", "delete"]).collect();
        h.expect(&delete, CmdOutput::ok(""));
    }
    h.expect(
        &["iscsiadm", "-m", "session", "-P", "3"],
        CmdOutput::ok(sessions_text(&[(4, B, "iface-vB", &[])])),
    );
    h.expect(&["iscsiadm", "-m", "node", "-P", "1"], CmdOutput::ok(""));
    // The kernel removes the device once `1` is written: the fake does it by hand, so
    // sdd stays and is reported.
    let out = std::thread::scope(|s| {
        s.spawn(|| {
            for d in ["sda", "sdb", "sdc"] {
                let attr = h.path(&format!("/sys/block/{d}/device/delete"));
                while std::fs::read_to_string(&attr).unwrap_or_default() != "1" {
                    std::thread::sleep(Duration::from_millis(5));
                }
                std::fs::remove_dir_all(h.path(&format!("/sys/block/{d}"))).unwrap();
            }
        });
        apply(&h, &plan, quick()).unwrap()
    });
    assert_eq!(out.done.len(), plan.acts.len());
    assert_eq!(
        std::fs::read_to_string(h.path("/etc/fstab")).unwrap(),
        "UUID=root / ext4 defaults 0 1\n# UUID=old /data ext4 defaults 0 2\n"
    );
    assert_eq!(out.left.len(), 3, "{:?}", out.left);
    assert!(out.left[0].contains("sdd is still there"), "{:?}", out.left);
    assert!(
        out.left[1].starts_with("`iscsiadm -m session -r 4 -u` (exit 2): session 4"),
        "{:?}",
        out.left
    );
    assert!(out.left[2].contains("session 4") && out.left[2].contains("still logged in"));
    h.finish();
}

#[test]
fn a_map_that_stays_stops_before_its_paths() {
    let h = FakeHost::new();
    h.put_file("/etc/fstab", FSTAB);
    h.put_file("/proc/self/mounts", "");
    let mut obs = two_attached();
    obs.mounts.truncate(1);
    let plan = decide(&[target0()], &obs, false).unwrap();
    h.expect(&["multipath", "-f", "mpatha"], CmdOutput::ok(""));
    h.allow(
        &["multipath", "-ll"],
        CmdOutput::ok(two_maps("active ready running")),
    );
    let stopped = apply(&h, &plan, quick()).unwrap_err();
    assert!(
        stopped.error.to_string().contains("still there"),
        "{}",
        stopped.error
    );
    assert_eq!(stopped.outcome.done.len(), 1, "only the fstab line");
    h.finish();
}

#[test]
fn a_dry_run_refuses_every_change() {
    let h = FakeHost::new();
    h.put_file("/sys/block/sda/device/delete", "");
    let ro = crate::steps::host::ReadOnly(&h);
    use crate::steps::Host as _;
    assert!(ro
        .write_attr(std::path::Path::new("/sys/block/sda/device/delete"), "1")
        .is_err());
    assert!(ro.remove_file(std::path::Path::new("/etc/fstab")).is_err());
    assert_eq!(
        std::fs::read_to_string(h.path("/sys/block/sda/device/delete")).unwrap(),
        ""
    );
}

#[test]
fn a_map_with_no_working_path_is_a_ghost_and_offline_devices_are_stale() {
    let maps = parse_multipath_ll(&two_maps("failed faulty running"));
    // One path down of two: degraded, not a ghost.
    assert!(!decide::is_ghost(&maps[0]));
    let mut gone = maps[0].clone();
    for p in gone.path_groups.iter_mut().flat_map(|g| g.paths.iter_mut()) {
        p.dm_state = Some("failed".into());
        p.path_state = Some("faulty".into());
    }
    assert!(decide::is_ghost(&gone));
    gone.path_groups.clear();
    assert!(
        decide::is_ghost(&gone),
        "a map with no path left is a ghost"
    );
    let mut s = parse_session_p3(&sessions_text(&[(3, A, "iface-vA", &["sda", "sdb"])]));
    assert!(decide::stale_devices(&s).is_empty());
    s[0].devices[1].state = Some("transport-offline".into());
    assert_eq!(
        decide::stale_devices(&s),
        ["sdb (session 3, LUN 1): transport-offline"]
    );
}

#[test]
fn a_ghost_is_detached_like_a_volume_without_a_mount() {
    let mut obs = two_attached();
    let ghost = Target {
        wwid: W1.into(),
        map: Some("mpathb".into()),
        ..Target::default()
    };
    for p in obs.maps[1]
        .path_groups
        .iter_mut()
        .flat_map(|g| g.paths.iter_mut())
    {
        p.dm_state = Some("failed".into());
        p.path_state = Some("faulty".into());
    }
    obs.maps[1].features = Some("0".into());
    obs.mounts.truncate(2);
    let plan = decide(&[ghost], &obs, false).unwrap();
    assert_eq!(names(&plan), ["flush mpathb", "delete sdb", "delete sdd"]);
}
