use super::*;
use crate::prompt::Asker;
use crate::steps::facts::OsInfo;
use crate::steps::fake::FakeHost;
use crate::steps::host::ReadOnly;
use crate::steps::parse::multipath::parse_multipath_listing;
use crate::steps::testkit::{apply, summary, Run};
use crate::steps::{CmdOutput, Facts, Options};
use crate::worksheets::Worksheet;
use serde_json::json;

const T: &str = "iqn.2002-09.com.lab:array";
/// The lab's two LIO LUNs (512M and 256M).
const W0: &str = "360014050c0ffe0012344abc9def00000";
const W1: &str = "360014050c0ffe1012344abc9def00000";
const GOOD: &str = "active ready running";

/// The lab's four sessions; each sees LUN 0 and LUN 1 (sda/sdb, sdc/sdd, ...).
fn lab_sessions(luns: usize) -> Vec<SessionFact> {
    let pairs = [
        ("iface-vA", "192.168.130.101:3260"),
        ("iface-vA", "192.168.130.102:3260"),
        ("iface-vB", "192.168.131.101:3260"),
        ("iface-vB", "192.168.131.102:3260"),
    ];
    pairs
        .iter()
        .enumerate()
        .map(|(i, (iface, portal))| SessionFact {
            iface: iface.to_string(),
            portal: portal.to_string(),
            target: T.into(),
            transport: "iser".into(),
            disks: (0..luns).map(|l| disk(i * 2 + l)).collect(),
        })
        .collect()
}

fn disk(i: usize) -> String {
    format!("sd{}", (b'a' + i as u8) as char)
}

/// `multipath -ll` text of one map in multipath-tools 0.9's layout, paths as (dev, state).
fn map_text(header: &str, size: &str, hwhandler: &str, paths: &[(&str, &str)]) -> String {
    let mut s = format!(
        "{header}\nsize={size} features='1 queue_if_no_path' hwhandler='{hwhandler}' wp=rw\n\
         `-+- policy='service-time 0' prio=50 status=active\n"
    );
    for (n, (dev, state)) in paths.iter().enumerate() {
        let i = (dev.as_bytes()[2] - b'a') as usize;
        let tree = if n + 1 == paths.len() { '`' } else { '|' };
        s.push_str(&format!(
            "  {tree}- {}:0:0:{} {dev} 8:{} {state}\n",
            2 + i / 2,
            i % 2,
            i * 16
        ));
    }
    s
}

/// A lab LUN's map (named by its WWID, as on Debian) with these path devices.
fn lio(wwid: &str, dm: &str, size: &str, devs: &[&str]) -> String {
    let paths: Vec<(&str, &str)> = devs.iter().map(|d| (*d, GOOD)).collect();
    map_text(
        &format!("{wwid} {dm} LIO-ORG,FILEIO"),
        size,
        "1 alua",
        &paths,
    )
}

fn both_maps() -> String {
    lio(W0, "dm-0", "512M", &["sda", "sdc", "sde", "sdg"])
        + &lio(W1, "dm-1", "256M", &["sdb", "sdd", "sdf", "sdh"])
}

fn udev(wwid: &str, dev: &str) -> CmdOutput {
    CmdOutput::ok(format!(
        "DEVNAME=/dev/{dev}\nDEVTYPE=disk\nID_VENDOR=LIO-ORG\nID_MODEL=FILEIO\n\
         ID_SERIAL={wwid}\nID_SCSI=1\n"
    ))
}

fn config(find_multipaths: &str) -> String {
    format!(
        "defaults {{\n\tverbosity 2\n\tpolling_interval 5\n\tfind_multipaths {find_multipaths}\n\
         \tconfig_dir \"/etc/multipath/conf.d\"\n}}\nblacklist {{\n\tdevice {{\n\t\tvendor \
         \"SGI\"\n\t\tproduct \"Universal Xport\"\n\t}}\n}}\ndevices {{\n\tdevice {{\n\t\tvendor \
         \"(NETAPP|LSI|ENGENIO)\"\n\t\tproduct \"INF-01-00\"\n\t\thardware_handler \"1 rdac\"\n\
         \t\tno_path_retry 30\n\t}}\n}}\n"
    )
}

impl Run {
    fn multipath(distro: Distro, wwid: &str, rebuild: bool, luns: usize) -> Self {
        let facts = Facts {
            os: Some(OsInfo {
                id: "x".into(),
                id_like: vec![],
                version_id: "1".into(),
                pretty_name: "x".into(),
                distro: Some(distro),
                supported: true,
            }),
            target_iqn: Some(T.into()),
            sessions: lab_sessions(luns),
            ..Default::default()
        };
        Run {
            ask: Asker::unattended(json!({
                "multipath": {"rebuild_initramfs": rebuild},
                "volume": {"wwid": wwid}
            })),
            facts,
            sheet: Worksheet::default(),
            options: Options::default(),
        }
    }
}

fn quick() -> Multipath {
    Multipath {
        poll: Poll {
            bound: Duration::from_secs(5),
            interval: Duration::from_millis(1),
        },
        ..Default::default()
    }
}

fn service(h: &FakeHost, enabled: &str, active: &str) {
    // One `systemctl show` answers both questions.
    let cmd = crate::steps::host::units::unit_states_cmd(&["multipathd"]);
    let argv: Vec<&str> = cmd.argv.iter().map(String::as_str).collect();
    h.allow(
        &argv,
        CmdOutput::ok(crate::steps::host::units::show_output(&[(
            "multipathd",
            enabled,
            active,
        )])),
    );
}

/// udev answers for the lab's eight disks (even: LUN 0, odd: LUN 1).
fn udev_all(h: &FakeHost, luns: usize) {
    h.allow(&["udevadm", "settle", "--timeout=10"], CmdOutput::ok(""));
    for i in 0..4 * luns {
        let d = disk(if luns == 2 { i } else { i * 2 });
        let w = if luns == 2 && i % 2 == 1 { W1 } else { W0 };
        h.allow(
            &[
                "udevadm",
                "info",
                "--query=property",
                &format!("--name=/dev/{d}"),
            ],
            udev(w, &d),
        );
    }
}

fn empty_data(h: &FakeHost, name: &str) {
    let dev = format!("/dev/mapper/{name}");
    h.allow(
        &["blkid", "-p", "-o", "export", &dev],
        CmdOutput::status(2, "", ""),
    );
    h.allow(
        &["lsblk", "-J", "-o", "NAME,TYPE,MOUNTPOINT", &dev],
        CmdOutput::ok(format!(
            r#"{{"blockdevices": [{{"name": "{name}", "type": "mpath", "mountpoint": null}}]}}"#
        )),
    );
}

/// A map with an ext4 filesystem on a partition, mounted.
fn used_data(h: &FakeHost, name: &str) {
    let dev = format!("/dev/mapper/{name}");
    h.allow(
        &["blkid", "-p", "-o", "export", &dev],
        CmdOutput::ok(format!("DEVNAME={dev}\nPTUUID=4a3b\nPTTYPE=gpt\n")),
    );
    h.allow(
        &["lsblk", "-J", "-o", "NAME,TYPE,MOUNTPOINT", &dev],
        CmdOutput::ok(format!(
            r#"{{"blockdevices": [{{"name": "{name}", "type": "mpath", "mountpoint": null,
               "children": [{{"name": "{name}-part1", "type": "part", "mountpoint": "/data"}}]}}]}}"#
        )),
    );
}

fn err_text(r: Result<impl std::fmt::Debug, StepError>) -> String {
    match r {
        Err(e) => e.to_string(),
        Ok(v) => panic!("expected an error, got {v:?}"),
    }
}

// ---- pure rules ----

#[test]
fn find_multipaths_is_read_from_the_defaults_section_only() {
    assert_eq!(
        find_multipaths_in(&config("\"strict\"")),
        Some(FindMultipaths::Strict)
    );
    assert_eq!(find_multipaths_in(&config("no")), Some(FindMultipaths::Off));
    assert_eq!(
        find_multipaths_in(&config("\"on\"")),
        Some(FindMultipaths::On)
    );
    assert_eq!(
        find_multipaths_in(&config("smart")),
        Some(FindMultipaths::Smart)
    );
    // A device section's setting is not the default, nor is find_multipaths_timeout.
    let text = "defaults {\n\tfind_multipaths_timeout -10\n}\ndevices {\n\tdevice {\n\t\t\
                find_multipaths no\n\t}\n}\n";
    assert_eq!(find_multipaths_in(text), None);
}

#[test]
fn which_modes_map_a_wwid_that_is_not_listed() {
    use FindMultipaths::*;
    for (mode, one, four) in [
        (Off, true, true),
        (Greedy, true, true),
        (On, false, true),
        (Smart, false, true),
        (Strict, false, false),
    ] {
        assert_eq!(mode.maps_unknown_wwid(1), one, "{mode}");
        assert_eq!(mode.maps_unknown_wwid(4), four, "{mode}");
    }
}

#[test]
fn the_wwids_file_is_matched_by_whole_wwid() {
    let f = "# Multipath wwids, Version : 1.0\n/3600a098000af40f5000000005e7bc1a9/\n/360014050c0ffe0012344abc9def00000/\n";
    assert!(wwids_lists(f, W0));
    assert!(!wwids_lists(f, W1));
    assert!(!wwids_lists(f, "3600a098000af40f5"));
}

fn cand(wwid: &str, size: &str, data: &[&str]) -> Candidate {
    Candidate {
        map: parse_multipath_listing(&lio(wwid, "dm-0", size, &["sda"]))
            .maps
            .remove(0),
        data: data.iter().map(|s| s.to_string()).collect(),
    }
}

#[test]
fn choosing_the_volume() {
    let free0 = cand(W0, "512M", &[]);
    let used1 = cand(W1, "256M", &["carries a gpt partition table"]);
    let free1 = cand(W1, "256M", &[]);

    // auto: the one empty map.
    let t = [used1.clone(), free0.clone()];
    assert_eq!(
        choose(&t, &[], &Wanted::Auto, None, T).unwrap().map.wwid,
        W0
    );
    // auto: an earlier run's choice is kept, data or not.
    assert_eq!(
        choose(&t, &[], &Wanted::Auto, Some(W1), T)
            .unwrap()
            .map
            .wwid,
        W1
    );
    // auto: two empty maps are listed with size and vendor/product.
    let e = choose(&[free0.clone(), free1], &[], &Wanted::Auto, None, T).unwrap_err();
    assert!(e.contains(&format!("{W0} (512M, LIO-ORG,FILEIO)")), "{e}");
    assert!(e.contains(&format!("{W1} (256M, LIO-ORG,FILEIO)")), "{e}");
    assert!(e.contains("Set volume.wwid"), "{e}");
    // auto: only maps with data.
    let e = choose(std::slice::from_ref(&used1), &[], &Wanted::Auto, None, T).unwrap_err();
    assert!(e.contains("every map of"), "{e}");
    assert!(e.contains("carries a gpt partition table"), "{e}");
    // auto: nothing at all.
    let e = choose(&[], &[], &Wanted::Auto, None, T).unwrap_err();
    assert!(
        e.contains("no multipath map of iqn.2002-09.com.lab:array"),
        "{e}"
    );
    assert!(e.contains("find_multipaths"), "{e}");
    // a given WWID with data is chosen: the filesystem step decides about data.
    let w1 = Wanted::Wwid(W1.into());
    assert_eq!(choose(&t, &[], &w1, None, T).unwrap().data.len(), 1);
    // a given WWID of another storage's map is named as such.
    let other = free1_map();
    let e = choose(std::slice::from_ref(&free0), &[other], &w1, None, T).unwrap_err();
    assert!(e.contains("is not a LUN of"), "{e}");
}

fn free1_map() -> Map {
    cand(W1, "256M", &[]).map
}

#[test]
fn paths_are_checked_against_the_sessions() {
    let sessions = lab_sessions(1);
    let map = &parse_multipath_listing(&map_text(
        &format!("{W0} dm-0 LIO-ORG,FILEIO"),
        "512M",
        "1 alua",
        &[
            ("sda", GOOD),
            ("sdc", GOOD),
            ("sde", "failed faulty running"),
            ("sdg", "active ghost running"),
        ],
    ))
    .maps[0];
    let (paths, problems) = check_paths(map, &sessions);
    assert_eq!(paths.len(), 4);
    assert_eq!(paths[3], ("sdg".into(), "active ghost running".into()));
    assert_eq!(
        problems,
        vec![
            "path sde (session iface-vB to 192.168.131.101:3260) is failed faulty running, \
             not active and ready"
                .to_string()
        ]
    );
}

// ---- the step on a host ----

#[test]
fn a_fresh_debian_host_adds_every_lun_of_the_target_and_waits_for_the_map() {
    let h = FakeHost::new();
    let mut run = Run::multipath(Distro::Debian, W0, true, 2);
    let mut step = quick();
    service(&h, "enabled", "active");
    // Debian's strict default: the LUNs' paths are there, no map.
    h.expect(&["multipath", "-ll"], CmdOutput::ok(""));
    udev_all(&h, 2);
    h.expect(&["multipath", "-t"], CmdOutput::ok(config("\"strict\"")));
    let plan = step.plan(&mut run.cx(&h)).unwrap();
    assert_eq!(
        summary(&plan),
        [
            "multipath -a /dev/sda",
            "multipath -a /dev/sdb",
            "multipath -r",
            "task rebuild-initramfs",
            "task wait-map",
        ]
    );
    let text = plan.render();
    assert!(text.contains(&format!("add the LUN's WWID {W0}")), "{text}");
    assert!(
        text.contains("find_multipaths strict and 4 paths"),
        "{text}"
    );
    assert!(text.contains("update-initramfs -u"), "{text}");
    assert!(
        h.changes().is_empty(),
        "plan ran a change: {:?}",
        h.changes()
    );

    h.expect(
        &["multipath", "-a", "/dev/sda"],
        CmdOutput::ok(format!("wwid '{W0}' added\n")),
    );
    h.expect(
        &["multipath", "-a", "/dev/sdb"],
        CmdOutput::ok(format!("wwid '{W1}' added\n")),
    );
    h.expect(&["multipath", "-r"], CmdOutput::ok(""));
    h.expect(&["update-initramfs", "-u"], CmdOutput::ok(""));
    h.allow(&["multipath", "-ll"], CmdOutput::ok(both_maps()));
    empty_data(&h, W0);
    h.put_file("/sys/class/block/dm-0/size", "1048576\n");
    apply(&mut step, &mut run.cx(&h), &plan).unwrap();
    step.verify(&mut run.cx(&h)).unwrap();
    h.finish();

    assert!(!h.path(CONF).exists(), "Debian needs no multipath.conf");
    let v = &run.facts.volumes[0];
    assert_eq!(v.wwid.as_deref(), Some(W0));
    assert_eq!(v.map_device.as_deref(), Some(&*format!("/dev/mapper/{W0}")));
    assert_eq!(v.size_bytes, Some(512 << 20));
    let rec = &run.sheet.volumes[0];
    assert_eq!(rec.vendor_product.as_deref(), Some("LIO-ORG,FILEIO"));
    assert_eq!(rec.size.as_deref(), Some("512M"));
    assert_eq!(
        rec.paths,
        ["sda", "sdc", "sde", "sdg"].map(|d| (d.to_string(), GOOD.to_string()))
    );
    let rec = &run.facts.multipath;
    assert!(!rec.initramfs_pending);
    assert_eq!(
        rec.initramfs_rebuilt.as_deref(),
        Some("update-initramfs -u")
    );
    assert_eq!(
        rec.config_changes,
        [
            format!("{W0} added to {WWIDS}"),
            format!("{W1} added to {WWIDS}")
        ]
    );
    assert_eq!(rec.paths[3].portal.as_deref(), Some("192.168.131.102:3260"));
}

#[test]
fn auto_on_a_fresh_debian_host_adds_every_lun_of_the_target_and_nothing_else() {
    let h = FakeHost::new();
    let mut run = Run::multipath(Distro::Debian, "auto", false, 2);
    let mut step = quick();
    service(&h, "enabled", "active");
    h.expect(&["multipath", "-ll"], CmdOutput::ok(""));
    udev_all(&h, 2);
    h.expect(&["multipath", "-t"], CmdOutput::ok(config("\"strict\"")));
    let plan = step.plan(&mut run.cx(&h)).unwrap();
    assert_eq!(
        summary(&plan),
        [
            "multipath -a /dev/sda",
            "multipath -a /dev/sdb",
            "multipath -r",
            "task wait-map",
        ]
    );
    // Without the rebuild the operator is told the initramfs is stale.
    assert!(
        plan.notes.iter().any(|n| n.contains("update-initramfs -u")),
        "{:?}",
        plan.notes
    );
    h.finish();
}

#[test]
fn a_wwid_already_listed_or_a_mode_that_maps_needs_no_change() {
    // Listed in the wwids file: only the reload that makes the maps.
    let h = FakeHost::new();
    let mut run = Run::multipath(Distro::Ubuntu, W0, true, 2);
    let mut step = quick();
    service(&h, "enabled", "active");
    h.expect(&["multipath", "-ll"], CmdOutput::ok(""));
    udev_all(&h, 2);
    h.expect(&["multipath", "-t"], CmdOutput::ok(config("\"strict\"")));
    h.put_file(
        WWIDS,
        &format!("# Multipath wwids, Version : 1.0\n/{W0}/\n/{W1}/\n"),
    );
    let plan = step.plan(&mut run.cx(&h)).unwrap();
    assert_eq!(summary(&plan), ["multipath -r", "task wait-map"]);
    h.finish();

    // find_multipaths smart with four paths: mapped as it is; the daemon is started.
    let h = FakeHost::new();
    let mut run = Run::multipath(Distro::Sles, W0, true, 2);
    let mut step = quick();
    service(&h, "disabled", "inactive");
    h.expect(&["multipath", "-ll"], CmdOutput::ok(""));
    udev_all(&h, 2);
    h.expect(&["multipath", "-t"], CmdOutput::ok(config("\"smart\"")));
    let plan = step.plan(&mut run.cx(&h)).unwrap();
    assert_eq!(
        summary(&plan),
        [
            "systemctl enable --now multipathd",
            "multipath -r",
            "task wait-map"
        ]
    );
    h.finish();
}

#[test]
fn rhel_without_multipath_conf_gets_the_mpathconf_file_and_dracut() {
    let h = FakeHost::new();
    let mut run = Run::multipath(Distro::Rhel, W0, true, 2);
    let mut step = quick();
    // The unit's ConditionPathExists kept the daemon from starting.
    service(&h, "enabled", "inactive");
    h.expect(
        &["multipath", "-ll"],
        CmdOutput::ok(
            "Apr 14 09:38:09 | /etc/multipath.conf does not exist, blacklisting all devices.\n",
        ),
    );
    udev_all(&h, 2);
    let plan = step.plan(&mut run.cx(&h)).unwrap();
    assert_eq!(
        summary(&plan),
        [
            "write /etc/multipath.conf",
            "systemctl enable --now multipathd",
            "multipath -r",
            "task rebuild-initramfs",
            "task wait-map",
        ]
    );
    let text = plan.render();
    assert!(text.contains("+\tfind_multipaths yes"), "{text}");
    assert!(
        !text.contains("devices {"),
        "E-Series needs no devices section: {text}"
    );
    assert!(text.contains("dracut --force --add multipath"), "{text}");
    h.finish();
}

#[test]
fn rhel_with_its_own_multipath_conf_keeps_it_and_only_adds_the_targets_wwids() {
    let state = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let h = FakeHost::with_root(root.path(), Some(state.path().join("backups")));
    let mut run = Run::multipath(Distro::Rhel, W0, true, 2);
    let mut step = quick();
    let own = "defaults {\n\tuser_friendly_names yes\n\tfind_multipaths strict\n}\n\
               blacklist {\n\twwid 3600508b1001c5d4b5e7f6a0c2b6d6e01\n}\n";
    h.put_file(CONF, own);
    service(&h, "enabled", "active");
    h.expect(&["multipath", "-ll"], CmdOutput::ok(""));
    udev_all(&h, 2);
    h.expect(&["multipath", "-t"], CmdOutput::ok(config("\"strict\"")));
    let plan = step.plan(&mut run.cx(&h)).unwrap();
    assert_eq!(
        summary(&plan),
        [
            "multipath -a /dev/sda",
            "multipath -a /dev/sdb",
            "multipath -r",
            "task rebuild-initramfs",
            "task wait-map",
        ]
    );
    h.expect(&["multipath", "-a", "/dev/sda"], CmdOutput::ok(""));
    h.expect(&["multipath", "-a", "/dev/sdb"], CmdOutput::ok(""));
    h.expect(&["multipath", "-r"], CmdOutput::ok(""));
    h.expect(
        &["dracut", "--force", "--add", "multipath"],
        CmdOutput::ok(""),
    );
    // user_friendly_names: the map is mpatha, and the facts name it so.
    let rhel_ll = map_text(
        &format!("mpatha ({W0}) dm-3 LIO-ORG,FILEIO"),
        "512M",
        "1 alua",
        &[("sda", GOOD), ("sdc", GOOD), ("sde", GOOD), ("sdg", GOOD)],
    ) + &map_text(
        &format!("mpathb ({W1}) dm-4 LIO-ORG,FILEIO"),
        "256M",
        "1 alua",
        &[("sdb", GOOD), ("sdd", GOOD), ("sdf", GOOD), ("sdh", GOOD)],
    );
    h.allow(&["multipath", "-ll"], CmdOutput::ok(rhel_ll));
    empty_data(&h, "mpatha");
    apply(&mut step, &mut run.cx(&h), &plan).unwrap();
    step.verify(&mut run.cx(&h)).unwrap();
    h.finish();
    assert_eq!(std::fs::read_to_string(h.path(CONF)).unwrap(), own);
    assert!(!state.path().join("backups").exists(), "no file was edited");
    assert_eq!(
        run.facts.volumes[0].map_device.as_deref(),
        Some("/dev/mapper/mpatha")
    );
    assert_eq!(run.facts.volumes[0].wwid.as_deref(), Some(W0));
}

#[test]
fn a_rerun_plans_nothing_and_does_not_rebuild_the_initramfs() {
    let h = FakeHost::new();
    let mut run = Run::multipath(Distro::Debian, W0, true, 2);
    let mut step = quick();
    service(&h, "enabled", "active");
    // Only probes: udevadm, multipath -t or any change would be unexpected.
    h.allow(&["multipath", "-ll"], CmdOutput::ok(both_maps()));
    empty_data(&h, W0);
    let plan = step.plan(&mut run.cx(&h)).unwrap();
    assert!(plan.is_empty(), "{}", plan.render());
    assert!(
        plan.notes.iter().any(|n| n.contains(W0)),
        "{:?}",
        plan.notes
    );
    step.verify(&mut run.cx(&h)).unwrap();
    h.finish();
    assert!(h.changes().is_empty());
    assert_eq!(run.facts.volumes[0].wwid.as_deref(), Some(W0));
}

#[test]
fn a_rebuild_left_pending_by_a_stopped_run_is_done_on_the_next() {
    let h = FakeHost::new();
    let mut run = Run::multipath(Distro::Debian, W0, true, 2);
    run.facts.multipath.initramfs_pending = true;
    let mut step = quick();
    service(&h, "enabled", "active");
    h.allow(&["multipath", "-ll"], CmdOutput::ok(both_maps()));
    let plan = step.plan(&mut run.cx(&h)).unwrap();
    assert_eq!(summary(&plan), ["task rebuild-initramfs", "task wait-map"]);
    h.expect(&["update-initramfs", "-u"], CmdOutput::ok(""));
    empty_data(&h, W0);
    apply(&mut step, &mut run.cx(&h), &plan).unwrap();
    step.verify(&mut run.cx(&h)).unwrap();
    h.finish();
    assert!(!run.facts.multipath.initramfs_pending);
}

#[test]
fn auto_picks_the_one_map_without_data() {
    let h = FakeHost::new();
    let mut run = Run::multipath(Distro::Debian, "auto", false, 2);
    let mut step = quick();
    service(&h, "enabled", "active");
    h.allow(&["multipath", "-ll"], CmdOutput::ok(both_maps()));
    used_data(&h, W0);
    empty_data(&h, W1);
    h.put_file("/sys/class/block/dm-1/size", "524288\n");
    let plan = step.plan(&mut run.cx(&h)).unwrap();
    assert!(plan.is_empty());
    step.verify(&mut run.cx(&h)).unwrap();
    h.finish();
    assert_eq!(run.facts.volumes[0].wwid.as_deref(), Some(W1));
    assert_eq!(run.facts.volumes[0].size_bytes, Some(256 << 20));
}

#[test]
fn auto_with_two_empty_maps_lists_both_and_stops() {
    let h = FakeHost::new();
    let mut run = Run::multipath(Distro::Debian, "auto", false, 2);
    let mut step = quick();
    service(&h, "enabled", "active");
    h.allow(&["multipath", "-ll"], CmdOutput::ok(both_maps()));
    empty_data(&h, W0);
    empty_data(&h, W1);
    let e = err_text(step.plan(&mut run.cx(&h)));
    h.finish();
    assert!(
        e.contains("2 maps of iqn.2002-09.com.lab:array carry no data"),
        "{e}"
    );
    assert!(e.contains(&format!("{W0} (512M, LIO-ORG,FILEIO)")), "{e}");
    assert!(e.contains(&format!("{W1} (256M, LIO-ORG,FILEIO)")), "{e}");
    assert!(e.contains("Set volume.wwid"), "{e}");
    assert!(run.facts.attached_volumes().is_empty());
}

#[test]
fn auto_where_the_only_map_carries_data_says_so() {
    let h = FakeHost::new();
    let mut run = Run::multipath(Distro::Debian, "auto", false, 1);
    let mut step = quick();
    service(&h, "enabled", "active");
    h.allow(
        &["multipath", "-ll"],
        CmdOutput::ok(lio(W0, "dm-0", "512M", &["sda", "sdc", "sde", "sdg"])),
    );
    used_data(&h, W0);
    let e = err_text(step.plan(&mut run.cx(&h)));
    h.finish();
    assert!(
        e.contains("every map of iqn.2002-09.com.lab:array carries data"),
        "{e}"
    );
    assert!(e.contains("carries a gpt partition table"), "{e}");
    assert!(
        e.contains(&format!("{W0}-part1 (part) is built on it")),
        "{e}"
    );
    assert!(
        e.contains(&format!("{W0}-part1 is mounted on /data")),
        "{e}"
    );
    assert!(e.contains("Set volume.wwid"), "{e}");
}

#[test]
fn auto_keeps_the_map_an_earlier_run_chose_though_it_now_carries_data() {
    let h = FakeHost::new();
    let mut run = Run::multipath(Distro::Debian, "auto", false, 1);
    run.facts.volumes.push(VolumeFact {
        wwid: Some(W0.into()),
        ..Default::default()
    });
    let mut step = quick();
    service(&h, "enabled", "active");
    h.allow(
        &["multipath", "-ll"],
        CmdOutput::ok(lio(W0, "dm-0", "512M", &["sda", "sdc", "sde", "sdg"])),
    );
    used_data(&h, W0);
    assert!(step.plan(&mut run.cx(&h)).unwrap().is_empty());
    step.verify(&mut run.cx(&h)).unwrap();
    h.finish();
    assert_eq!(run.facts.volumes[0].wwid.as_deref(), Some(W0));
}

#[test]
fn a_given_wwid_that_carries_data_is_recorded_not_refused() {
    let h = FakeHost::new();
    let mut run = Run::multipath(Distro::Debian, W0, false, 2);
    let mut step = quick();
    service(&h, "enabled", "active");
    h.allow(&["multipath", "-ll"], CmdOutput::ok(both_maps()));
    used_data(&h, W0);
    assert!(step.plan(&mut run.cx(&h)).unwrap().is_empty());
    step.verify(&mut run.cx(&h)).unwrap();
    h.finish();
    assert_eq!(run.facts.volumes[0].wwid.as_deref(), Some(W0));
    let data = &run.facts.multipath.data;
    assert_eq!(data[0], "carries a gpt partition table", "{data:?}");
}

#[test]
fn a_given_wwid_that_is_absent_is_named_with_the_ones_seen() {
    const OTHER: &str = "3600a098000af40f5000000005e7bc1a9";
    // Maps present: the plan looks for it at once.
    let h = FakeHost::new();
    let mut run = Run::multipath(Distro::Debian, OTHER, false, 2);
    let mut step = quick();
    service(&h, "enabled", "active");
    h.allow(&["multipath", "-ll"], CmdOutput::ok(both_maps()));
    let e = err_text(step.plan(&mut run.cx(&h)));
    h.finish();
    assert!(e.contains(&format!("WWID {OTHER} (volume.wwid)")), "{e}");
    assert!(e.contains(W0) && e.contains(W1), "{e}");

    // Nothing mapped yet: the disks' WWIDs show it will never appear; no change is planned.
    let h = FakeHost::new();
    let mut run = Run::multipath(Distro::Debian, OTHER, false, 2);
    let mut step = quick();
    service(&h, "enabled", "active");
    h.expect(&["multipath", "-ll"], CmdOutput::ok(""));
    udev_all(&h, 2);
    let e = err_text(step.plan(&mut run.cx(&h)));
    h.finish();
    assert!(
        e.contains(&format!("no LUN of {T} has WWID {OTHER}")),
        "{e}"
    );
    assert!(
        e.contains(&format!("{W0} (not mapped yet, disks sda, sdc, sde, sdg)")),
        "{e}"
    );
    assert!(e.contains(&format!("{W1} (not mapped yet")), "{e}");
}

#[test]
fn four_sessions_but_three_paths_fail_naming_the_missing_session() {
    let h = FakeHost::new();
    let mut run = Run::multipath(Distro::Debian, W0, false, 1);
    // The LUN is not reported through the fourth session.
    run.facts.sessions[3].disks.clear();
    let mut step = quick();
    service(&h, "enabled", "active");
    h.allow(
        &["multipath", "-ll"],
        CmdOutput::ok(lio(W0, "dm-0", "512M", &["sda", "sdc", "sde"])),
    );
    empty_data(&h, W0);
    assert!(step.plan(&mut run.cx(&h)).unwrap().is_empty());
    let e = err_text(step.verify(&mut run.cx(&h)));
    h.finish();
    assert!(
        e.contains(
            "no path through the session iface-vB to 192.168.131.102:3260: none of its \
             disks (none)"
        ),
        "{e}"
    );
    assert!(
        run.facts.attached_volumes().is_empty(),
        "nothing recorded on failure"
    );
}

#[test]
fn the_wait_polls_until_the_map_appears() {
    let h = FakeHost::new();
    let mut run = Run::multipath(Distro::Debian, W0, false, 2);
    let mut step = quick();
    step.wanted = Some(vec![Wanted::Wwid(W0.into())]);
    for _ in 0..3 {
        h.expect(&["multipath", "-ll"], CmdOutput::ok(""));
    }
    // A path still being checked is not enough.
    h.expect(
        &["multipath", "-ll"],
        CmdOutput::ok(map_text(
            &format!("{W0} dm-0 LIO-ORG,FILEIO"),
            "512M",
            "1 alua",
            &[
                ("sda", GOOD),
                ("sdc", GOOD),
                ("sde", GOOD),
                ("sdg", "active i/o pending running"),
            ],
        )),
    );
    h.expect(&["multipath", "-ll"], CmdOutput::ok(both_maps()));
    step.task(&mut run.cx(&h), "wait-map").unwrap();
    h.finish();
}

#[test]
fn the_wait_gives_up_within_its_bound_and_verify_names_what_is_missing() {
    let h = FakeHost::new();
    let mut run = Run::multipath(Distro::Debian, "auto", false, 2);
    let mut step = Multipath {
        poll: Poll {
            bound: Duration::from_millis(150),
            interval: Duration::from_millis(10),
        },
        ..Default::default()
    };
    step.wanted = Some(vec![Wanted::Auto]);
    step.expected = (0..8).map(disk).collect();
    h.allow(&["multipath", "-ll"], CmdOutput::ok(""));
    let start = Instant::now();
    step.task(&mut run.cx(&h), "wait-map").unwrap();
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(150), "{took:?}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    let e = err_text(step.verify(&mut run.cx(&h)));
    h.finish();
    assert!(
        e.contains("no multipath map of iqn.2002-09.com.lab:array appeared"),
        "{e}"
    );
}

#[test]
fn a_dry_run_plan_runs_no_change_and_marks_nothing_pending() {
    let h = FakeHost::new();
    let mut run = Run::multipath(Distro::Debian, "auto", true, 2);
    run.options.dry_run = true;
    let mut step = quick();
    service(&h, "enabled", "active");
    h.expect(&["multipath", "-ll"], CmdOutput::ok(""));
    udev_all(&h, 2);
    h.expect(&["multipath", "-t"], CmdOutput::ok(config("\"strict\"")));
    let ro = ReadOnly(&h);
    let plan = step.plan(&mut run.cx(&ro)).unwrap();
    assert!(!plan.is_empty());
    h.finish();
    assert!(h.changes().is_empty());
    assert_eq!(run.facts.multipath, MultipathFact::default());
}

#[test]
fn missing_facts_from_earlier_steps_are_named() {
    let h = FakeHost::new();
    let mut run = Run::multipath(Distro::Debian, "auto", false, 2);
    run.facts.sessions.clear();
    let e = err_text(quick().plan(&mut run.cx(&h)));
    assert!(e.contains("run the sessions step first"), "{e}");
    run.facts.os = None;
    let e = err_text(quick().plan(&mut run.cx(&h)));
    assert!(e.contains("run the preflight step first"), "{e}");
    h.finish();
}

#[test]
fn a_path_missing_from_an_existing_map_is_reloaded_not_listed_again() {
    let h = FakeHost::new();
    let mut run = Run::multipath(Distro::Debian, W0, false, 1);
    let mut step = quick();
    service(&h, "enabled", "active");
    h.allow(
        &["multipath", "-ll"],
        CmdOutput::ok(lio(W0, "dm-0", "512M", &["sda", "sdc", "sde"])),
    );
    h.allow(&["udevadm", "settle", "--timeout=10"], CmdOutput::ok(""));
    h.allow(
        &["udevadm", "info", "--query=property", "--name=/dev/sdg"],
        udev(W0, "sdg"),
    );
    h.expect(&["multipath", "-t"], CmdOutput::ok(config("\"strict\"")));
    let plan = step.plan(&mut run.cx(&h)).unwrap();
    assert_eq!(summary(&plan), ["multipath -r", "task wait-map"]);
    h.finish();
}

#[test]
fn choosing_another_volume_records_it_apart_from_the_old_one() {
    let h = FakeHost::new();
    let mut run = Run::multipath(Distro::Debian, W0, false, 2);
    run.facts.volumes = vec![VolumeFact {
        wwid: Some(W1.into()),
        partition: Some(format!("/dev/mapper/{W1}-part1")),
        fs_uuid: Some("170b7b73-5af6-4160-bff9-8e3913308e30".into()),
        ..Default::default()
    }];
    let mut step = quick();
    service(&h, "enabled", "active");
    h.allow(&["multipath", "-ll"], CmdOutput::ok(both_maps()));
    empty_data(&h, W0);
    assert!(step.plan(&mut run.cx(&h)).unwrap().is_empty());
    step.verify(&mut run.cx(&h)).unwrap();
    h.finish();
    let v = run
        .facts
        .volumes
        .iter()
        .find(|v| v.wwid.as_deref() == Some(W0))
        .unwrap();
    assert_eq!(v.partition, None);
    assert_eq!(v.fs_uuid, None);
    // The other volume stays recorded (and attached): only `detach` removes one.
    assert_eq!(run.facts.attached_volumes().len(), 2);
}

// ---- a dry run on a bare host ----

/// A dry run on Debian before preflight installed anything: no sessions, no multipath.
fn bare(wwid: &str, rebuild: bool) -> (FakeHost, Run) {
    let h = FakeHost::new().only_programs(&["systemctl", "lsblk", "blkid"]);
    let mut run = Run::multipath(Distro::Debian, wwid, rebuild, 2);
    run.facts.sessions.clear();
    run.facts.target_iqn = None;
    run.options.dry_run = true;
    (h, run)
}

#[test]
fn a_bare_host_dry_run_plans_from_the_answers_with_the_wwid_as_a_placeholder() {
    let (h, mut run) = bare("auto", true);
    let ro = ReadOnly(&h);
    let plan = quick().plan(&mut run.cx(&ro)).unwrap();
    h.finish();
    assert!(h.ran().is_empty(), "probed: {:?}", h.ran());
    assert_eq!(
        summary(&plan),
        [
            "modprobe dm_multipath",
            "multipath -a '<WWID of the volume, learned after login>'",
            "systemctl enable --now multipathd",
            "multipath -r",
            "task rebuild-initramfs",
            "task wait-map",
        ]
    );
    assert_eq!(plan.learned, ["WWID of the volume, learned after login"]);
    let text = plan.render();
    assert!(text.contains("update-initramfs -u"), "{text}");
    assert!(text.contains("the target's sessions"), "{text}");
    assert_eq!(run.facts.multipath, MultipathFact::default());
    assert!(run.facts.volumes.is_empty());
}

#[test]
fn a_bare_host_dry_run_names_the_answered_wwid_and_keeps_rhel_s_file() {
    let (h, mut run) = bare(W0, false);
    run.facts.os.as_mut().unwrap().distro = Some(Distro::Rhel);
    h.put_file("/sys/module/dm_multipath/refcnt", "0\n");
    let ro = ReadOnly(&h);
    let plan = quick().plan(&mut run.cx(&ro)).unwrap();
    h.finish();
    assert_eq!(
        summary(&plan),
        [
            format!("write {CONF}"),
            format!("multipath -a {W0}"),
            "systemctl enable --now multipathd".into(),
            "multipath -r".into(),
            "task wait-map".into(),
        ]
    );
    assert!(plan.learned.is_empty(), "{:?}", plan.learned);
    assert!(
        plan.notes
            .iter()
            .any(|n| n.contains("dracut --force --add multipath")),
        "{:?}",
        plan.notes
    );
}

#[test]
fn a_dry_run_with_multipath_installed_but_no_sessions_asks_systemd() {
    let (h, mut run) = bare(W0, false);
    let h = {
        drop(h);
        FakeHost::new().only_programs(&["systemctl", "multipath", "multipathd"])
    };
    h.put_file("/sys/module/dm_multipath/refcnt", "0\n");
    service(&h, "enabled", "active");
    let ro = ReadOnly(&h);
    let plan = quick().plan(&mut run.cx(&ro)).unwrap();
    h.finish();
    assert_eq!(
        summary(&plan),
        [
            format!("multipath -a {W0}"),
            "multipath -r".into(),
            "task wait-map".into()
        ]
    );
}

#[test]
fn a_real_run_without_sessions_still_stops() {
    let (h, mut run) = bare("auto", false);
    run.options.dry_run = false;
    let e = err_text(quick().plan(&mut run.cx(&h)));
    assert!(e.contains("run the sessions step first"), "{e}");
    h.finish();
}

#[test]
fn a_legacy_pending_rebuild_is_done_and_cleared() {
    let h = FakeHost::new();
    let mut run = Run::multipath(Distro::Debian, W0, true, 2);
    run.facts = serde_json::from_value(json!({
        "os": serde_json::to_value(&run.facts.os).unwrap(),
        "target_iqn": T,
        "sessions": serde_json::to_value(&run.facts.sessions).unwrap(),
        "extra": {"multipath": {"initramfs_pending": true}}
    }))
    .unwrap();
    let mut step = quick();
    service(&h, "enabled", "active");
    h.allow(&["multipath", "-ll"], CmdOutput::ok(both_maps()));
    let plan = step.plan(&mut run.cx(&h)).unwrap();
    assert_eq!(summary(&plan), ["task rebuild-initramfs", "task wait-map"]);
    h.expect(&["update-initramfs", "-u"], CmdOutput::ok(""));
    empty_data(&h, W0);
    apply(&mut step, &mut run.cx(&h), &plan).unwrap();
    step.verify(&mut run.cx(&h)).unwrap();
    h.finish();
    assert!(!run.facts.initramfs_pending());
    let saved = serde_json::to_value(&run.facts).unwrap();
    assert!(saved.get("extra").is_none(), "{saved}");
}

// ---- typed differences and the service's changes ----

#[test]
fn path_differences_are_typed() {
    let mut sessions = lab_sessions(1);
    // The first session sees the LUN twice; the fourth not at all.
    sessions[0].disks = vec!["sda".into(), "sdc".into()];
    sessions[3].disks.clear();
    let map = &parse_multipath_listing(&lio(W0, "dm-0", "512M", &["sda", "sdc", "sde"])).maps[0];
    let (_, diffs) = path_differences(map, &sessions);
    assert!(
        diffs.contains(&PathDiff::SeveralPaths {
            session: "iface-vA to 192.168.130.101:3260".into(),
            wwid: W0.into(),
            paths: vec!["sda".into(), "sdc".into()],
        }),
        "{diffs:?}"
    );
    assert!(
        diffs.contains(&PathDiff::NoPath {
            session: "iface-vB to 192.168.131.102:3260".into(),
            disks: vec![],
            wwid: W0.into(),
        }),
        "{diffs:?}"
    );
    assert!(
        diffs
            .iter()
            .all(|d| !matches!(d, PathDiff::Unhealthy { .. } | PathDiff::LostDevice { .. })),
        "{diffs:?}"
    );
    let healthy = &parse_multipath_listing(&both_maps()).maps[0];
    assert!(path_differences(healthy, &lab_sessions(2)).1.is_empty());
}

#[test]
fn the_service_changes_follow_its_state() {
    let st = |enabled: &str, active: bool| ServiceState {
        enabled: enabled.into(),
        active,
    };
    let cmds = |s: ServiceState, conf: bool| -> Vec<String> {
        s.actions(conf)
            .iter()
            .map(|a| match a {
                Action::Run { cmd, .. } => cmd.to_string(),
                other => panic!("{other:?}"),
            })
            .collect()
    };
    let enable = "systemctl enable --now multipathd";
    for (state, conf, want) in [
        (st("enabled", true), false, vec![]),
        (
            st("enabled", true),
            true,
            vec!["systemctl reload multipathd"],
        ),
        (st("static", false), false, vec![enable]),
        (st("disabled", true), false, vec![enable]),
        (
            st("masked", false),
            false,
            vec!["systemctl unmask multipathd", enable],
        ),
        (ServiceState::absent(), true, vec![enable]),
    ] {
        assert_eq!(cmds(state.clone(), conf), want, "{state:?} conf {conf}");
    }
    assert!(!ServiceState::absent().installed());
    assert!(!st("not-found", false).installed());
    assert!(st("disabled", false).installed());
}

#[test]
fn which_luns_get_their_wwid_listed() {
    let groups: BTreeMap<String, Vec<String>> = [
        (W0.to_string(), vec!["sda".to_string()]),
        (W1.to_string(), vec!["sdb".to_string(), "sdd".to_string()]),
    ]
    .into();
    let wwids_of = |l: Vec<(&String, &Vec<String>)>| -> Vec<String> {
        l.into_iter().map(|(w, _)| w.clone()).collect()
    };
    let none: &[Map] = &[];
    let w0_map = parse_multipath_listing(&lio(W0, "dm-0", "512M", &["sdc"])).maps;
    for (maps, wwids, mode, want) in [
        (none, "", FindMultipaths::Strict, vec![W0, W1]),
        (none, "", FindMultipaths::On, vec![W0]),
        (none, "", FindMultipaths::Smart, vec![W0]),
        (none, "", FindMultipaths::Greedy, vec![]),
        (none, "", FindMultipaths::Off, vec![]),
        (
            none,
            &*format!("/{W1}/\n"),
            FindMultipaths::Strict,
            vec![W0],
        ),
        (&w0_map[..], "", FindMultipaths::Strict, vec![W1]),
    ] {
        assert_eq!(
            wwids_of(to_list(&groups, maps, wwids, mode)),
            want,
            "{mode} {wwids:?}"
        );
    }
}

#[test]
fn a_dry_run_without_preflight_s_facts_reads_os_release() {
    let (h, mut run) = bare("auto", false);
    run.facts.os = None;
    h.put_file(
        "/etc/os-release",
        "ID=rocky\nID_LIKE=\"rhel centos fedora\"\nVERSION_ID=\"9.3\"\n",
    );
    let ro = ReadOnly(&h);
    let plan = quick().plan(&mut run.cx(&ro)).unwrap();
    h.finish();
    assert_eq!(summary(&plan)[0], format!("write {CONF}"), "RHEL's file");
    assert_eq!(run.facts.os, None, "a plan records nothing");
    // A real run still needs preflight's facts.
    run.options.dry_run = false;
    let e = err_text(quick().plan(&mut run.cx(&h)));
    assert!(e.contains("run the preflight step first"), "{e}");
}

// ---- several volumes ----

/// Two volumes: `first` and `second` as their WWIDs (or "auto").
fn two_volumes(first: &str, second: &str) -> Run {
    let mut run = Run::multipath(Distro::Debian, "auto", false, 2);
    run.ask = Asker::unattended(json!({
        "multipath": {"rebuild_initramfs": false},
        "volumes": [
            {"name": "db", "wwid": first},
            {"name": "logs", "wwid": second}
        ]
    }));
    run
}

#[test]
fn auto_beside_a_given_wwid_takes_the_other_map_and_each_volume_is_recorded() {
    let h = FakeHost::new();
    let mut run = two_volumes(W0, "auto");
    let mut step = quick();
    service(&h, "enabled", "active");
    h.allow(&["multipath", "-ll"], CmdOutput::ok(both_maps()));
    // W0 carries data already: it is not a candidate for "auto", being another volume.
    used_data(&h, W0);
    empty_data(&h, W1);
    let plan = step.plan(&mut run.cx(&h)).unwrap();
    assert!(plan.is_empty());
    let text = plan.render();
    assert!(text.contains(&format!("volume db: {W0} (512M")), "{text}");
    assert!(text.contains(&format!("volume logs: {W1} (256M")), "{text}");
    step.verify(&mut run.cx(&h)).unwrap();
    h.finish();
    let f = &run.facts.volumes;
    assert_eq!(f.len(), 2);
    assert_eq!(
        (f[0].name.as_deref(), f[0].wwid.as_deref(), f[0].auto),
        (Some("db"), Some(W0), false)
    );
    assert_eq!(
        (f[1].name.as_deref(), f[1].wwid.as_deref(), f[1].auto),
        (Some("logs"), Some(W1), true)
    );
    assert_eq!(f[1].map_name.as_deref(), Some(W1));
    assert_eq!(
        f[1].paths
            .iter()
            .map(|p| p.dev.as_str())
            .collect::<Vec<_>>(),
        ["sdb", "sdd", "sdf", "sdh"]
    );
    assert!(f[1].paths.iter().all(|p| p.iface.is_some()));
    let sheet: Vec<_> = run
        .sheet
        .volumes
        .iter()
        .map(|r| (r.name.clone().unwrap(), r.wwid.clone().unwrap()))
        .collect();
    assert_eq!(
        sheet,
        [
            ("db".into(), W0.to_string()),
            ("logs".into(), W1.to_string())
        ]
    );
}

#[test]
fn auto_leaves_out_a_volume_an_earlier_run_attached() {
    // The earlier run attached W1 (then "auto"); the answers now add W0's volume... by
    // "auto", and list W1's by its WWID: "auto" can only be W0.
    let h = FakeHost::new();
    let mut run = two_volumes(W1, "auto");
    run.facts.volumes.push(VolumeFact {
        wwid: Some(W1.into()),
        auto: true,
        mount_point: Some("/mnt/a".into()),
        ..Default::default()
    });
    let mut step = quick();
    service(&h, "enabled", "active");
    h.allow(&["multipath", "-ll"], CmdOutput::ok(both_maps()));
    empty_data(&h, W0);
    empty_data(&h, W1);
    step.plan(&mut run.cx(&h)).unwrap();
    step.verify(&mut run.cx(&h)).unwrap();
    h.finish();
    let f = &run.facts.volumes;
    assert_eq!(f.len(), 2, "{f:#?}");
    assert_eq!(f[0].wwid.as_deref(), Some(W1));
    assert_eq!(f[0].mount_point.as_deref(), Some("/mnt/a"), "kept");
    assert!(!f[0].auto, "now given by its WWID");
    assert_eq!(f[1].wwid.as_deref(), Some(W0));
    assert!(f[1].auto);
}

#[test]
fn a_volume_whose_lun_is_missing_stops_naming_its_key() {
    let h = FakeHost::new();
    let mut run = two_volumes(W0, "3600140500000000000000000000000ff");
    let mut step = quick();
    service(&h, "enabled", "active");
    h.allow(&["multipath", "-ll"], CmdOutput::ok(both_maps()));
    let e = err_text(step.plan(&mut run.cx(&h)));
    assert!(
        e.contains("has WWID 3600140500000000000000000000000ff (volumes[1].wwid)"),
        "{e}"
    );
    assert!(run.facts.volumes.is_empty());
}

#[test]
fn at_a_terminal_another_volume_may_be_added_after_the_first() {
    use crate::steps::Ask;
    let h = FakeHost::new();
    let mut run = Run::multipath(Distro::Debian, "auto", false, 2);
    // Typed: the first WWID, yes to another, its WWID, no to a third.
    run.ask = Asker::scripted(json!({
        "multipath": {"rebuild_initramfs": false},
        "volume": {"wwid": W0},
        "volumes": [{"wwid": W0}, {"wwid": W1}],
        "add_volume": [true, false]
    }));
    let mut step = quick();
    service(&h, "enabled", "active");
    h.allow(&["multipath", "-ll"], CmdOutput::ok(both_maps()));
    empty_data(&h, W0);
    empty_data(&h, W1);
    let plan = step.plan(&mut run.cx(&h)).unwrap();
    let text = plan.render();
    assert!(text.contains(&format!("volume 1: {W0}")), "{text}");
    assert!(text.contains(&format!("volume 2: {W1}")), "{text}");
    step.verify(&mut run.cx(&h)).unwrap();
    let a = run.ask.answers();
    assert_eq!(a.volume_list().len(), 2);
    assert_eq!(a.volume_key(1, "wwid"), "volumes[1].wwid");
    assert_eq!(run.facts.attached_volumes().len(), 2);
    // Enter at the question adds none.
    let mut run = Run::multipath(Distro::Debian, "auto", false, 2);
    run.ask = Asker::scripted(json!({
        "multipath": {"rebuild_initramfs": false},
        "volume": {"wwid": W0}
    }));
    let mut step = quick();
    step.plan(&mut run.cx(&h)).unwrap();
    assert_eq!(run.ask.answers().volume_list().len(), 1);
    h.finish();
}

#[test]
fn udev_properties_come_from_udevs_database_without_a_process() {
    let h = FakeHost::new();
    h.put_file("/sys/block/sdc/dev", "8:32\n");
    // As udev 252 writes it: S: symlinks, E: properties, G:/Q:/V: the rest.
    h.put_file(
        "/run/udev/data/b8:32",
        &format!(
            "S:disk/by-id/wwn-0x{w}\nI:2893104\nE:ID_MODEL=FILEIO\nE:ID_SERIAL={W0}\n\
             E:ID_VENDOR=LIO-ORG\nG:systemd\nQ:systemd\nV:1\n",
            w = &W0[1..]
        ),
    );
    let mut run = Run::multipath(Distro::Debian, W0, true, 1);
    let props = observe::udev_properties(&run.cx(&h), "sdc").unwrap();
    assert_eq!(props.get("ID_SERIAL").map(String::as_str), Some(W0));
    assert_eq!(props.get("ID_MODEL").map(String::as_str), Some("FILEIO"));
    assert!(!props.contains_key("S"), "{props:?}");
    // No database record: udevadm answers, as before.
    h.expect(
        &["udevadm", "info", "--query=property", "--name=/dev/sdd"],
        udev(W1, "sdd"),
    );
    let props = observe::udev_properties(&run.cx(&h), "sdd").unwrap();
    assert_eq!(props.get("ID_SERIAL").map(String::as_str), Some(W1));
    assert_eq!(h.ran().len(), 1, "{:?}", h.ran());
    h.finish();
}

/// A running multipathd as the host shows it: its pid file and the process's name.
fn daemon_runs(h: &FakeHost) {
    h.put_file("/run/multipathd.pid", "612\n");
    h.put_file("/proc/612/comm", "multipathd\n");
    // The kernel's maps, as sysfs shows them: the daemon is asked only when there is one.
    h.put_file("/sys/block/dm-0/dm/uuid", &format!("mpath-{W0}\n"));
}

#[test]
fn a_rerun_asks_the_running_daemon_for_the_maps_instead_of_multipath_ll() {
    let h = FakeHost::new();
    let mut run = Run::multipath(Distro::Debian, W0, true, 2);
    let mut step = quick();
    service(&h, "enabled", "active");
    daemon_runs(&h);
    // `multipath -ll` is not allowed: running it would be an unexpected command.
    h.allow(
        &["multipathd", "show", "topology"],
        CmdOutput::ok(both_maps()),
    );
    empty_data(&h, W0);
    let plan = step.plan(&mut run.cx(&h)).unwrap();
    assert!(plan.is_empty(), "{}", plan.render());
    step.verify(&mut run.cx(&h)).unwrap();
    h.finish();
    assert_eq!(run.facts.volumes[0].wwid.as_deref(), Some(W0));
}

#[test]
fn a_path_the_daemon_doubts_or_no_daemon_means_multipath_ll() {
    // The daemon's checker has not run on a path yet: multipath -ll runs the checkers now.
    let doubtful = map_text(
        &format!("{W0} dm-0 LIO-ORG,FILEIO"),
        "512M",
        "1 alua",
        &[
            ("sda", GOOD),
            ("sdc", "active undef running"),
            ("sde", GOOD),
            ("sdg", GOOD),
        ],
    ) + &lio(W1, "dm-1", "256M", &["sdb", "sdd", "sdf", "sdh"]);
    // A stale pid file (another process has the pid): no daemon to ask.
    let stale = |h: &FakeHost| {
        h.put_file("/run/multipathd.pid", "612\n");
        h.put_file("/proc/612/comm", "bash\n");
    };
    type Setup<'a> = &'a dyn Fn(&FakeHost);
    let daemon: [(Setup, Option<String>); 3] = [
        (&daemon_runs, Some(doubtful)),
        (&daemon_runs, Some(String::new())),
        (&stale, None),
    ];
    for (setup, topology) in daemon {
        let h = FakeHost::new();
        let mut run = Run::multipath(Distro::Debian, W0, true, 2);
        let mut step = quick();
        service(&h, "enabled", "active");
        setup(&h);
        if let Some(t) = &topology {
            h.allow(
                &["multipathd", "show", "topology"],
                CmdOutput::ok(t.clone()),
            );
        }
        h.allow(&["multipath", "-ll"], CmdOutput::ok(both_maps()));
        empty_data(&h, W0);
        let plan = step.plan(&mut run.cx(&h)).unwrap();
        assert!(plan.is_empty(), "{}", plan.render());
        h.finish();
        assert!(
            h.ran().iter().any(|c| c == "multipath -ll"),
            "{topology:?}: {:?}",
            h.ran()
        );
    }
}

/// udev's database records of the lab's eight disks (even: LUN 0, odd: LUN 1), all but
/// `missing`.
fn udev_db_all(h: &FakeHost, missing: Option<&str>) {
    for i in 0..8 {
        let d = disk(i);
        if missing == Some(d.as_str()) {
            continue;
        }
        let w = if i % 2 == 1 { W1 } else { W0 };
        h.put_file(&format!("/sys/block/{d}/dev"), &format!("8:{}\n", i * 16));
        h.put_file(
            &format!("/run/udev/data/b8:{}", i * 16),
            &format!("E:ID_MODEL=FILEIO\nE:ID_SERIAL={w}\nE:ID_VENDOR=LIO-ORG\n"),
        );
    }
}

/// A first attach's plan on Debian (multipathd enabled and running, no map, `strict`),
/// with the step's waits bounded by `bound`.
fn udev_case(bound: Duration) -> (FakeHost, Run, Multipath) {
    let h = FakeHost::new();
    let run = Run::multipath(Distro::Debian, W0, true, 2);
    let step = Multipath {
        poll: Poll {
            bound,
            interval: Duration::from_millis(10),
        },
        ..Default::default()
    };
    service(&h, "enabled", "active");
    h.expect(&["multipath", "-ll"], CmdOutput::ok(""));
    h.expect(&["multipath", "-t"], CmdOutput::ok(config("\"strict\"")));
    (h, run, step)
}

#[test]
fn udev_is_waited_for_only_when_a_disk_lacks_its_record() {
    for missing in [None, Some("sdc")] {
        let (h, mut run, mut step) = udev_case(Duration::from_millis(100));
        udev_db_all(&h, missing);
        if let Some(d) = missing {
            // udev's record of it does not come within the wait: settle decides, then
            // udevadm answers for it.
            h.expect(&["udevadm", "settle", "--timeout=10"], CmdOutput::ok(""));
            h.expect(
                &[
                    "udevadm",
                    "info",
                    "--query=property",
                    &format!("--name=/dev/{d}"),
                ],
                udev(W0, d),
            );
        }
        let plan = step.plan(&mut run.cx(&h)).unwrap();
        assert_eq!(
            summary(&plan)[..2],
            ["multipath -a /dev/sda", "multipath -a /dev/sdb"],
            "{missing:?}"
        );
        // Any other command (a settle with every record there) is unexpected.
        h.finish();
    }
}

#[test]
fn without_udev_s_database_the_step_settles_once_and_asks_udevadm() {
    let (h, mut run, mut step) = udev_case(Duration::from_secs(5));
    h.expect(&["udevadm", "settle", "--timeout=10"], CmdOutput::ok(""));
    for i in 0..8 {
        let d = disk(i);
        let w = if i % 2 == 1 { W1 } else { W0 };
        h.expect(
            &[
                "udevadm",
                "info",
                "--query=property",
                &format!("--name=/dev/{d}"),
            ],
            udev(w, &d),
        );
    }
    let plan = step.plan(&mut run.cx(&h)).unwrap();
    assert_eq!(
        summary(&plan)[..2],
        ["multipath -a /dev/sda", "multipath -a /dev/sdb"]
    );
    h.finish();
}

#[test]
fn a_disk_udev_is_still_processing_is_waited_for_by_its_own_record_then_settled() {
    // sdc's record has no WWID: the wait looks at sdc's record (no process) until the
    // bound, udev's queue file gone or not, then settle decides and udevadm is asked.
    let bound = Duration::from_millis(300);
    let (h, mut run, mut step) = udev_case(bound);
    udev_db_all(&h, Some("sdc"));
    h.expect(&["udevadm", "settle", "--timeout=10"], CmdOutput::ok(""));
    h.expect(
        &["udevadm", "info", "--query=property", "--name=/dev/sdc"],
        udev(W0, "sdc"),
    );
    let start = std::time::Instant::now();
    let plan = step.plan(&mut run.cx(&h)).unwrap();
    // It waited (the whole bound: sdc's record never came), rather than going on at once.
    assert!(start.elapsed() >= bound, "no wait for sdc's record");
    assert_eq!(
        summary(&plan)[..2],
        ["multipath -a /dev/sda", "multipath -a /dev/sdb"]
    );
    h.finish();
}

#[test]
fn without_a_multipath_map_in_the_kernel_the_daemon_is_not_asked() {
    // A first attach: multipathd runs, no map yet (a partition's dm device is no map).
    let h = FakeHost::new();
    h.put_file("/run/multipathd.pid", "612\n");
    h.put_file("/proc/612/comm", "multipathd\n");
    h.put_file("/sys/block/dm-1/dm/uuid", "part1-mpath-36001405aa\n");
    h.expect(&["multipath", "-ll"], CmdOutput::ok(""));
    let mut run = Run::multipath(Distro::Debian, W0, true, 2);
    let (maps, driver) = observe::list_maps(&run.cx(&h)).unwrap();
    assert!(maps.is_empty() && driver);
    // `multipathd show topology` is not allowed: asking it would be unexpected.
    h.finish();
}

#[test]
fn a_record_that_comes_during_the_wait_ends_it_without_a_settle() {
    // sdc's record is written by "udev" 50 ms into the wait: no settle, no udevadm.
    let (h, mut run, mut step) = udev_case(Duration::from_secs(5));
    udev_db_all(&h, Some("sdc"));
    h.put_file("/sys/block/sdc/dev", "8:32\n");
    let plan = std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(Duration::from_millis(50));
            h.put_file(
                "/run/udev/data/b8:32",
                &format!("E:ID_MODEL=FILEIO\nE:ID_SERIAL={W0}\nE:ID_VENDOR=LIO-ORG\n"),
            );
        });
        step.plan(&mut run.cx(&h)).unwrap()
    });
    assert_eq!(
        summary(&plan)[..2],
        ["multipath -a /dev/sda", "multipath -a /dev/sdb"]
    );
    // Any other command (a settle, a udevadm info) is unexpected.
    h.finish();
}
