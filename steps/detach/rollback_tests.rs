//! The cleanup after a failed attach: what it takes down, what it leaves (table tests of
//! `decide`), and `apply` of its plan on the recording fake.

use std::time::Duration;

use super::*;
use crate::steps::detach::apply::{apply, Waits};
use crate::steps::detach::observe::{parse_mounts, Observed};
use crate::steps::fake::FakeHost;
use crate::steps::parse::iscsiadm::{parse_nodes, parse_session_p3};
use crate::steps::parse::multipath::parse_multipath_ll;
use crate::steps::poll::Wait;
use crate::steps::CmdOutput;

const OLD: &str = "360014050c0ffe0012344abc9def00000";
const NEW: &str = "360014050c0ffe1012344abc9def00000";
const T: &str = "iqn.2002-09.com.lab:array";
const OTHER: &str = "iqn.2002-09.com.lab:other";
const A: &str = "192.168.130.101:3260";
const B: &str = "192.168.131.101:3260";
const C: &str = "10.0.0.9:3260";

/// `iscsiadm -m session -P 3` of sessions (target, sid, portal, iface, disks).
fn sessions_text(sessions: &[(&str, u32, &str, &str, &[&str])]) -> String {
    let mut t = String::from("iSCSI Transport Class version 2.0-870\nversion 2.1.8\n");
    for (target, sid, portal, iface, disks) in sessions {
        t.push_str(&format!(
            "Target: {target} (non-flash)\n\
             \tCurrent Portal: {portal},1\n\tPersistent Portal: {portal},1\n\
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

/// `iscsiadm -m node -P 1` of records (target, portal, iface).
fn nodes_text(nodes: &[(&str, &str, &str)]) -> String {
    let mut t = String::new();
    for (target, portal, iface) in nodes {
        t.push_str(&format!(
            "Target: {target}\n\tPortal: {portal},1\n\t\tIface Name: {iface}\n"
        ));
    }
    t
}

fn map_text(name: &str, wwid: &str, paths: &[(&str, &str)]) -> String {
    let mut t = format!(
        "{name} ({wwid}) dm-0 LIO-ORG,FILEIO\n\
         size=512M features='1 queue_if_no_path' hwhandler='1 alua' wp=rw\n\
         `-+- policy='service-time 0' prio=50 status=enabled\n"
    );
    for (i, (hctl, dev)) in paths.iter().enumerate() {
        let lead = if i + 1 == paths.len() { "`-" } else { "|-" };
        t.push_str(&format!(
            "  {lead} {hctl} {dev} 8:{i} active ready running\n"
        ));
    }
    t
}

/// Before the run: an earlier volume (`OLD` on sdb, mounted at /logs) over a session to
/// another target, and that session's node record.
fn before() -> Before {
    let obs = Observed {
        mounts: parse_mounts("/dev/sda1 / ext4 rw 0 0\n/dev/mapper/mpathb /logs ext4 rw 0 0\n"),
        fstab: Some(FSTAB_BEFORE.into()),
        maps: parse_multipath_ll(&map_text("mpathb", OLD, &[("1:0:0:0", "sdb")])),
        sessions: parse_session_p3(&sessions_text(&[(OTHER, 1, C, "default", &["sdb"])])),
        disk_wwids: [("sdb".to_string(), OLD.to_string())].into_iter().collect(),
        holders: Default::default(),
    };
    Before::of(
        "2026-12-02T00:00:00Z".into(),
        &obs,
        &parse_nodes(&nodes_text(&[(OTHER, C, "default")])),
    )
}

const FSTAB_BEFORE: &str = "UUID=root / ext4 defaults 0 1\nUUID=old /logs ext4 defaults 0 2\n";

/// The run logged in on A and B (sessions 3 and 4) and made node records for both.
fn run_sessions(disks3: &'static [&'static str], disks4: &'static [&'static str]) -> String {
    sessions_text(&[
        (OTHER, 1, C, "default", &["sdb"]),
        (T, 3, A, "iface-vA", disks3),
        (T, 4, B, "iface-vB", disks4),
    ])
}

fn run_nodes() -> Vec<crate::steps::parse::iscsiadm::NodeRef> {
    parse_nodes(&nodes_text(&[
        (OTHER, C, "default"),
        (T, A, "iface-vA"),
        (T, B, "iface-vB"),
    ]))
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

fn plan_for(obs: &Observed, volumes: &[VolumeFact], made: &[&str]) -> Plan {
    let b = before();
    let targets = targets(&b, obs, volumes);
    let made: Vec<String> = made.iter().map(|s| s.to_string()).collect();
    decide(&b, &targets, obs, &run_nodes(), &made).unwrap()
}

#[test]
fn a_failure_in_multipath_after_the_logins_logs_out_exactly_the_runs_sessions() {
    // The LUN came up on both new sessions; multipathd made a map of it (with a path
    // down, queueing: the map is the run's own, so it is flushed all the same).
    let obs = Observed {
        mounts: parse_mounts("/dev/sda1 / ext4 rw 0 0\n/dev/mapper/mpathb /logs ext4 rw 0 0\n"),
        fstab: Some(FSTAB_BEFORE.into()),
        maps: parse_multipath_ll(&format!(
            "{}{}",
            map_text("mpathb", OLD, &[("1:0:0:0", "sdb")]),
            map_text("mpatha", NEW, &[("3:0:0:0", "sdc"), ("4:0:0:0", "sdd")]).replace(
                "sdd 8:1 active ready running",
                "sdd 8:1 failed faulty running"
            )
        )),
        sessions: parse_session_p3(&run_sessions(&["sdc"], &["sdd"])),
        disk_wwids: [("sdb", OLD), ("sdc", NEW), ("sdd", NEW)]
            .into_iter()
            .map(|(d, w)| (d.to_string(), w.to_string()))
            .collect(),
        holders: Default::default(),
    };
    let plan = plan_for(&obs, &[], &[]);
    assert_eq!(plan.wwids, vec![NEW.to_string()]);
    assert_eq!(
        names(&plan),
        [
            "fail-queued mpatha",
            "flush mpatha",
            "delete sdc",
            "delete sdd",
            "logout 3",
            "logout 4",
            &format!("manual {A} iface-vA"),
            &format!("manual {B} iface-vB"),
            &format!("delete-node {A} iface-vA"),
            &format!("delete-node {B} iface-vB"),
        ]
    );
}

#[test]
fn sessions_without_a_lun_and_records_without_a_session_go_too() {
    // Failed at the second login: session 3 is up with no LUN scanned yet; the record of
    // B (made by discovery) has no session.
    let obs = Observed {
        mounts: parse_mounts("/dev/mapper/mpathb /logs ext4 rw 0 0\n"),
        fstab: Some(FSTAB_BEFORE.into()),
        maps: parse_multipath_ll(&map_text("mpathb", OLD, &[("1:0:0:0", "sdb")])),
        sessions: parse_session_p3(&sessions_text(&[
            (OTHER, 1, C, "default", &["sdb"]),
            (T, 3, A, "iface-vA", &[]),
        ])),
        disk_wwids: [("sdb".to_string(), OLD.to_string())].into_iter().collect(),
        holders: Default::default(),
    };
    let plan = plan_for(&obs, &[], &[]);
    assert!(plan.wwids.is_empty());
    assert_eq!(
        names(&plan),
        [
            "logout 3",
            &format!("manual {A} iface-vA"),
            &format!("delete-node {A} iface-vA"),
            &format!("delete-node {B} iface-vB"),
        ]
    );
}

/// After the filesystem step made a partition, a filesystem, the mount, the fstab line
/// and the mount point, and then failed.
fn after_filesystem() -> (Observed, VolumeFact) {
    let fstab = format!("{FSTAB_BEFORE}UUID=new /data ext4 defaults,_netdev,nofail 0 2\n");
    let obs = Observed {
        mounts: parse_mounts(
            "/dev/sda1 / ext4 rw 0 0\n/dev/mapper/mpathb /logs ext4 rw 0 0\n\
             /dev/mapper/mpatha-part1 /data ext4 rw 0 0\n",
        ),
        fstab: Some(fstab),
        maps: parse_multipath_ll(&format!(
            "{}{}",
            map_text("mpathb", OLD, &[("1:0:0:0", "sdb")]),
            map_text("mpatha", NEW, &[("3:0:0:0", "sdc"), ("4:0:0:0", "sdd")])
        )),
        sessions: parse_session_p3(&run_sessions(&["sdc"], &["sdd"])),
        disk_wwids: [("sdb", OLD), ("sdc", NEW), ("sdd", NEW)]
            .into_iter()
            .map(|(d, w)| (d.to_string(), w.to_string()))
            .collect(),
        holders: [("/data".to_string(), vec![])].into_iter().collect(),
    };
    let fact = VolumeFact {
        wwid: Some(NEW.into()),
        map_name: Some("mpatha".into()),
        map_device: Some("/dev/mapper/mpatha".into()),
        partition: Some("/dev/mapper/mpatha-part1".into()),
        fs_device: Some("/dev/mapper/mpatha-part1".into()),
        fs_uuid: Some("new".into()),
        mount_point: Some("/data".into()),
        ..Default::default()
    };
    (obs, fact)
}

#[test]
fn a_failure_in_filesystem_takes_down_mount_fstab_line_mount_point_and_map_in_order() {
    let (obs, fact) = after_filesystem();
    // The earlier volume's fact is there too: nothing of it is in the plan.
    let old = VolumeFact {
        wwid: Some(OLD.into()),
        mount_point: Some("/logs".into()),
        fs_device: Some("/dev/mapper/mpathb".into()),
        ..Default::default()
    };
    let plan = plan_for(&obs, &[old, fact], &["/data"]);
    assert_eq!(
        names(&plan),
        [
            "umount /data",
            "fstab /data",
            "rmdir /data",
            "flush mpatha",
            "delete sdc",
            "delete sdd",
            "logout 3",
            "logout 4",
            &format!("manual {A} iface-vA"),
            &format!("manual {B} iface-vB"),
            &format!("delete-node {A} iface-vA"),
            &format!("delete-node {B} iface-vB"),
        ]
    );
    let Act::RemoveFstabLine { new, .. } = &plan.acts[1] else {
        panic!("{plan:?}")
    };
    assert_eq!(new, FSTAB_BEFORE);
}

#[test]
fn what_was_there_before_is_never_touched() {
    // A session of before that now also carries the new LUN stays (with its record); a
    // mount point directory of before is not removed; the earlier volume is untouched.
    let (mut obs, fact) = after_filesystem();
    obs.sessions = parse_session_p3(&sessions_text(&[
        (OTHER, 1, C, "default", &["sdb", "sde"]),
        (T, 3, A, "iface-vA", &["sdc"]),
        (T, 4, B, "iface-vB", &["sdd"]),
    ]));
    obs.disk_wwids.insert("sde".into(), NEW.into());
    let plan = plan_for(&obs, &[fact], &[]);
    let n = names(&plan);
    assert!(!n.iter().any(|a| a.contains("rmdir")), "{n:?}");
    assert!(!n.iter().any(|a| a == "logout 1"), "{n:?}");
    assert!(!n.iter().any(|a| a.contains(C)), "{n:?}");
    assert!(
        !n.iter()
            .any(|a| a.contains("mpathb") || a.contains("/logs") || a == "delete sdb"),
        "{n:?}"
    );
    // sde (the new LUN on the old session) goes: it is the run's path device.
    assert!(n.iter().any(|a| a == "delete sde"), "{n:?}");
    assert!(
        plan.notes
            .iter()
            .any(|x| x.contains("session 1") && x.contains("stays")),
        "{:?}",
        plan.notes
    );
    // A run that made nothing new plans nothing.
    let b = before();
    let same = Observed {
        mounts: parse_mounts("/dev/sda1 / ext4 rw 0 0\n/dev/mapper/mpathb /logs ext4 rw 0 0\n"),
        fstab: Some(FSTAB_BEFORE.into()),
        maps: parse_multipath_ll(&map_text("mpathb", OLD, &[("1:0:0:0", "sdb")])),
        sessions: parse_session_p3(&sessions_text(&[(OTHER, 1, C, "default", &["sdb"])])),
        disk_wwids: [("sdb".to_string(), OLD.to_string())].into_iter().collect(),
        holders: Default::default(),
    };
    let nodes = parse_nodes(&nodes_text(&[(OTHER, C, "default")]));
    let plan = decide(&b, &targets(&b, &same, &[]), &same, &nodes, &[]).unwrap();
    assert!(plan.acts.is_empty(), "{plan:?}");
}

#[test]
fn a_busy_mount_of_the_new_lun_is_refused_and_nothing_planned() {
    let (mut obs, fact) = after_filesystem();
    obs.holders
        .insert("/data".into(), vec!["pid 812 (sleep): cwd /data".into()]);
    let b = before();
    let r = decide(&b, &targets(&b, &obs, &[fact]), &obs, &run_nodes(), &[]);
    assert!(matches!(r, Err(StepError::Refused { .. })), "{r:?}");
}

#[test]
fn the_record_of_before_reads_the_host() {
    let h = FakeHost::new();
    h.put_file("/proc/self/mounts", "/dev/sda1 / ext4 rw 0 0\n");
    h.put_file("/etc/fstab", FSTAB_BEFORE);
    h.put_file(
        "/sys/block/sdb/device/wwid",
        &format!("naa.{}\n", &OLD[1..]),
    );
    h.expect(
        &["multipath", "-ll"],
        CmdOutput::ok(map_text("mpathb", OLD, &[("1:0:0:0", "sdb")])),
    );
    h.expect(
        &["iscsiadm", "-m", "session", "-P", "3"],
        CmdOutput::ok(sessions_text(&[(OTHER, 1, C, "default", &["sdb"])])),
    );
    h.expect(
        &["iscsiadm", "-m", "node", "-P", "1"],
        CmdOutput::status(21, "", "iscsiadm: No records found\n"),
    );
    let b = Before::observe(&h, "t".into()).unwrap();
    h.finish();
    assert_eq!(b.wwids, vec![OLD.to_string()]);
    assert_eq!(b.mounts, vec!["/".to_string()]);
    assert_eq!(
        b.fstab_mount_points,
        vec!["/".to_string(), "/logs".to_string()]
    );
    assert_eq!(
        b.sessions,
        vec![Key {
            target: OTHER.into(),
            portal: C.into(),
            iface: Some("default".into())
        }]
    );
    assert!(b.nodes.is_empty());
}

fn quick() -> Waits {
    Waits {
        map: Wait::new(Duration::from_millis(200), Duration::from_millis(10)),
        paths: Wait::new(Duration::from_millis(200), Duration::from_millis(10)),
    }
}

#[test]
fn a_cleanup_command_that_fails_is_reported_as_left_behind() {
    let (obs, fact) = after_filesystem();
    let plan = plan_for(&obs, &[fact], &["/data"]);
    let h = FakeHost::new();
    h.put_file("/etc/fstab", obs.fstab.as_deref().unwrap());
    h.put_file("/proc/self/mounts", "/dev/sda1 / ext4 rw 0 0\n");
    std::fs::create_dir_all(h.path("/data")).unwrap();
    h.expect(&["umount", "/data"], CmdOutput::ok(""));
    h.expect(&["multipath", "-f", "mpatha"], CmdOutput::ok(""));
    h.allow(&["multipath", "-ll"], CmdOutput::ok(""));
    h.expect(
        &["iscsiadm", "-m", "session", "-r", "3", "-u"],
        CmdOutput::ok(""),
    );
    // Session 4 will not log out: reported, and the rest still done.
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
        CmdOutput::ok(sessions_text(&[
            (OTHER, 1, C, "default", &["sdb"]),
            (T, 4, B, "iface-vB", &[]),
        ])),
    );
    h.expect(
        &["iscsiadm", "-m", "node", "-P", "1"],
        CmdOutput::ok(nodes_text(&[(OTHER, C, "default")])),
    );
    let out = apply(&h, &plan, quick()).unwrap();
    h.finish();
    assert_eq!(out.done.len(), plan.acts.len());
    assert_eq!(
        std::fs::read_to_string(h.path("/etc/fstab")).unwrap(),
        FSTAB_BEFORE
    );
    assert!(!h.path("/data").exists(), "the mount point it made is gone");
    assert_eq!(out.left.len(), 2, "{:?}", out.left);
    assert!(
        out.left[0].starts_with("`iscsiadm -m session -r 4 -u` (exit 2): session 4"),
        "{:?}",
        out.left
    );
    assert!(out.left[1].contains("session 4") && out.left[1].contains("still logged in"));
}

#[test]
fn a_mount_point_with_something_in_it_stays_and_is_reported() {
    let h = FakeHost::new();
    h.put_file("/data/kept.txt", "x\n");
    let plan = Plan {
        acts: vec![Act::RemoveDir {
            path: "/data".into(),
        }],
        ..Default::default()
    };
    let out = apply(&h, &plan, quick()).unwrap();
    assert!(h.path("/data/kept.txt").exists());
    assert_eq!(out.left.len(), 1, "{:?}", out.left);
    assert!(out.left[0].starts_with("directory /data"), "{:?}", out.left);
    h.finish();
}

#[test]
fn a_discovery_session_without_a_target_name_is_logged_out_and_has_no_record_to_delete() {
    let obs = Observed {
        mounts: parse_mounts("/dev/mapper/mpathb /logs ext4 rw 0 0\n"),
        fstab: Some(FSTAB_BEFORE.into()),
        maps: parse_multipath_ll(&map_text("mpathb", OLD, &[("1:0:0:0", "sdb")])),
        sessions: parse_session_p3(&sessions_text(&[
            (OTHER, 1, C, "default", &["sdb"]),
            ("", 7, A, "iface-vA", &[]),
        ])),
        disk_wwids: [("sdb".to_string(), OLD.to_string())].into_iter().collect(),
        holders: Default::default(),
    };
    let plan = plan_for(&obs, &[], &[]);
    assert_eq!(
        names(&plan),
        [
            "logout 7",
            &format!("delete-node {A} iface-vA"),
            &format!("delete-node {B} iface-vB"),
        ]
    );
}
