use super::*;
use crate::steps::facts::VolumeFact;
use crate::steps::parse::blkid::Signature;
use crate::steps::parse::lsblk::BlockDev;
use crate::steps::Cmd;

fn dev(path: &str, t: &str) -> BlockDev {
    BlockDev {
        name: path.into(),
        // As lsblk -p prints it.
        kname: Some("/dev/dm-3".into()),
        path: Some(path.into()),
        dev_type: Some(t.into()),
        size: Some((512u64 << 20).to_string()),
        ..Default::default()
    }
}

const MAP: &str = "/dev/mapper/36001405aa";

fn blank() -> Probe {
    Probe {
        map: dev(MAP, "mpath"),
        dm_uuid: Some("mpath-36001405aa".into()),
        queue: (512, 8 << 20, 0),
        ..Default::default()
    }
}

fn want() -> Wanted {
    Wanted {
        partition: true,
        fstype: FsType::Ext4,
        mount_point: "/mnt/ext4".parse().unwrap(),
        fstab: true,
        wwid: Some("36001405aa".into()),
        volume: 0,
        force: false,
    }
}

fn part(fstype: Option<&str>, uuid: Option<&str>, mounted: &[&str]) -> BlockDev {
    let mut p = dev(&format!("{MAP}-part1"), "part");
    p.kname = Some("/dev/dm-4".into());
    p.fstype = fstype.map(String::from);
    p.uuid = uuid.map(String::from);
    p.mountpoints = mounted.iter().map(|s| s.to_string()).collect();
    p
}

/// The evidence of a refusal, in the operator's words.
fn refused(d: &Decision) -> Vec<String> {
    match d {
        Decision::Refuse(_, ev) => ev.iter().map(ToString::to_string).collect(),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn a_blank_map_gets_an_aligned_partition_and_a_filesystem() {
    let d = decide(&blank(), &want(), &VolumeFact::default());
    assert_eq!(
        d,
        Decision::Make {
            wipe: false,
            // 8 MiB grain in 512-byte sectors: starts at 16384, not at the vendor's sector 34.
            parted: Some((16384, (512u64 << 20) / 512 - 16384 - 1)),
            mkfs: true,
            target: None,
            uuid: None,
        }
    );
}

#[test]
fn a_mounted_partition_is_refused_even_when_forced() {
    let mut p = blank();
    p.map
        .children
        .push(part(Some("ext4"), Some("u1"), &["/data"]));
    p.holders = vec!["dm-4".into()];
    for force in [false, true] {
        let w = Wanted { force, ..want() };
        let ev = refused(&decide(&p, &w, &VolumeFact::default()));
        assert!(
            ev.iter()
                .any(|e| e == &format!("{MAP}-part1 is mounted on /data")),
            "{ev:?}"
        );
    }
}

#[test]
fn a_filesystem_or_partition_table_is_data_unless_forced() {
    let mut p = blank();
    p.signature = Some(Signature {
        fs_type: Some("ext4".into()),
        uuid: Some("abcd".into()),
        ..Default::default()
    });
    p.wipefs = vec!["ext4 0x438".into()];
    let ev = refused(&decide(&p, &want(), &VolumeFact::default()));
    assert!(
        ev.contains(&format!("{MAP} carries a ext4 signature (UUID abcd)")),
        "{ev:?}"
    );
    assert!(
        ev.contains(&format!("wipefs lists on {MAP}: ext4 0x438")),
        "{ev:?}"
    );
    let forced = decide(
        &p,
        &Wanted {
            force: true,
            ..want()
        },
        &VolumeFact::default(),
    );
    assert!(
        matches!(
            forced,
            Decision::Make {
                wipe: true,
                mkfs: true,
                ..
            }
        ),
        "{forced:?}"
    );

    let mut p = blank();
    p.signature = Some(Signature {
        pttype: Some("gpt".into()),
        ..Default::default()
    });
    p.map.children.push(part(None, None, &[]));
    p.holders = vec!["dm-4".into()];
    let ev = refused(&decide(&p, &want(), &VolumeFact::default()));
    assert!(
        ev.contains(&format!("{MAP} carries a gpt partition table")),
        "{ev:?}"
    );
    assert!(
        ev.contains(&format!("{MAP}-part1 is a partition")),
        "{ev:?}"
    );
}

#[test]
fn the_wrong_lun_a_foreign_holder_or_swap_is_refused_even_when_forced() {
    let forced = Wanted {
        force: true,
        ..want()
    };
    let mut p = blank();
    p.dm_uuid = Some("mpath-36001405bb".into());
    let ev = refused(&decide(&p, &forced, &VolumeFact::default()));
    assert!(
        ev[0].contains("is not the multipath map of WWID 36001405aa"),
        "{ev:?}"
    );

    let mut p = blank();
    p.holders = vec!["dm-9".into()];
    let ev = refused(&decide(&p, &forced, &VolumeFact::default()));
    assert!(
        ev.contains(&format!("{MAP} is held by dm-9 (a device built on it)")),
        "{ev:?}"
    );

    let mut p = blank();
    p.swaps = vec![MAP.into()];
    let ev = refused(&decide(&p, &forced, &VolumeFact::default()));
    assert!(ev.contains(&format!("{MAP} is in use as swap")), "{ev:?}");
}

#[test]
fn the_finished_state_means_nothing_to_do() {
    let mut p = blank();
    p.map
        .children
        .push(part(Some("ext4"), Some("u1"), &["/mnt/ext4"]));
    p.holders = vec!["dm-4".into()];
    assert_eq!(
        decide(&p, &want(), &VolumeFact::default()),
        Decision::Make {
            wipe: false,
            parted: None,
            mkfs: false,
            target: Some(format!("{MAP}-part1")),
            uuid: Some("u1".into()),
        }
    );
}

#[test]
fn an_interrupted_run_resumes_on_its_own_partition_or_filesystem_only() {
    let mut p = blank();
    p.signature = Some(Signature {
        pttype: Some("gpt".into()),
        ..Default::default()
    });
    p.map.children.push(part(None, None, &[]));
    p.holders = vec!["dm-4".into()];
    let ours = VolumeFact {
        partition: Some(format!("{MAP}-part1")),
        ..Default::default()
    };
    assert!(matches!(
        decide(&p, &want(), &ours),
        Decision::Make {
            mkfs: true,
            parted: None,
            ..
        }
    ));
    // The same layout without our record of it is somebody's data.
    refused(&decide(&p, &want(), &VolumeFact::default()));

    p.map.children[0] = part(Some("ext4"), Some("u1"), &[]);
    let ours = VolumeFact {
        fs_uuid: Some("u1".into()),
        ..Default::default()
    };
    assert!(matches!(
        decide(&p, &want(), &ours),
        Decision::Make {
            mkfs: false,
            parted: None,
            ..
        }
    ));
    // An unmounted filesystem that is not ours is refused: mounting it would change it.
    refused(&decide(&p, &want(), &VolumeFact::default()));
}

#[test]
fn a_mount_point_in_use_is_refused() {
    let mut p = blank();
    p.at_mount_point = Some(("/dev/sda3".into(), "xfs".into()));
    let d = decide(&p, &want(), &VolumeFact::default());
    assert!(
        matches!(&d, Decision::Refuse(r, _) if r.contains("already has /dev/sda3")),
        "{d:?}"
    );
}

#[test]
fn fstab_entries_are_found_by_mount_point() {
    let fstab = "# comment /mnt/ext4\nUUID=u1 / ext4 defaults 0 1\nUUID=u2 /mnt/ext4 ext4 defaults,_netdev,nofail 0 2\n";
    assert_eq!(
        fstab_entry(fstab, "/mnt/ext4"),
        Some((
            "UUID=u2".into(),
            "ext4".into(),
            "defaults,_netdev,nofail".into()
        ))
    );
    assert_eq!(fstab_entry(fstab, "/mnt"), None);
}

#[test]
fn the_evidence_is_typed() {
    let mut p = blank();
    p.dm_uuid = None;
    p.swaps = vec![MAP.into()];
    p.signature = Some(Signature {
        usage: Some("raid".into()),
        ..Default::default()
    });
    let d = decide(&p, &want(), &VolumeFact::default());
    let Decision::Refuse(_, ev) = &d else {
        panic!("{d:?}")
    };
    assert_eq!(
        ev,
        &[
            Finding::NotTheLun {
                map: MAP.into(),
                wwid: "36001405aa".into(),
                dm_uuid: None,
            },
            Finding::Swap { dev: MAP.into() },
        ]
    );
    assert_eq!(
        ev[0].to_string(),
        format!("{MAP} is not the multipath map of WWID 36001405aa (its dm uuid is absent)")
    );
    // Only signatures: the evidence names what blkid saw.
    p.dm_uuid = Some("mpath-36001405aa".into());
    p.swaps.clear();
    assert_eq!(
        refused(&decide(&p, &want(), &VolumeFact::default())),
        [format!("{MAP} carries a raid signature")]
    );
}

/// Tests on real loop devices: real lsblk, blkid, wipefs, parted, mkfs and mount, with
/// /etc/fstab kept in a temporary root. They skip (and say so) where loop devices or the
/// tools are not available, or without root.
mod loopdev {
    use super::*;
    use crate::prompt::Asker;
    use crate::steps::fake::FakeHost;
    use crate::steps::host::{CmdOutput, Host, HostError, Interrupt, Log, RealHost, WriteOutcome};
    use crate::steps::{Facts, NoProgress, Options};
    use crate::worksheets::Worksheet;
    use std::path::PathBuf;
    use std::sync::Arc;

    /// Commands and /sys, /proc, /dev on the real machine; /etc below a temporary root.
    struct Split {
        real: RealHost,
        etc: FakeHost,
    }

    impl Split {
        fn new() -> Self {
            Split {
                real: RealHost::new(
                    "/".into(),
                    None,
                    Arc::new(Log::disabled()),
                    Interrupt::new(),
                ),
                etc: FakeHost::new(),
            }
        }
        fn pick(&self, p: &Path) -> &dyn Host {
            if p.starts_with("/etc") {
                &self.etc
            } else {
                &self.real
            }
        }
    }

    impl Host for Split {
        fn run(&self, cmd: &Cmd) -> Result<CmdOutput, HostError> {
            self.real.run(cmd)
        }
        fn which(&self, program: &str) -> Option<PathBuf> {
            self.real.which(program)
        }
        fn read(&self, path: &Path) -> Result<Option<String>, HostError> {
            self.pick(path).read(path)
        }
        fn list_dir(&self, path: &Path) -> Result<Vec<String>, HostError> {
            self.pick(path).list_dir(path)
        }
        fn exists(&self, path: &Path) -> bool {
            self.pick(path).exists(path)
        }
        fn write(&self, path: &Path, c: &str, mode: u32) -> Result<WriteOutcome, HostError> {
            assert!(
                path.starts_with("/etc"),
                "test wrote outside /etc: {path:?}"
            );
            self.etc.write(path, c, mode)
        }
        fn root(&self) -> &Path {
            self.etc.root()
        }
        fn is_root(&self) -> bool {
            self.real.is_root()
        }
        fn forget(&self) {
            self.real.forget()
        }
    }

    struct Loop {
        dev: String,
        _img: tempfile::TempDir,
        mounts: Vec<PathBuf>,
    }

    impl Drop for Loop {
        fn drop(&mut self) {
            for m in self.mounts.iter().rev() {
                let _ = std::process::Command::new("umount").arg(m).status();
            }
            let _ = std::process::Command::new("losetup")
                .args(["-d", &self.dev])
                .status();
        }
    }

    fn sh(args: &[&str]) -> std::process::Output {
        std::process::Command::new(args[0])
            .args(&args[1..])
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    }

    fn setup() -> Option<Loop> {
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        let tools = [
            "losetup",
            "parted",
            "mkfs.ext4",
            "blkid",
            "wipefs",
            "lsblk",
            "findmnt",
            "mount",
        ];
        let missing: Vec<&str> = tools
            .iter()
            .copied()
            .filter(|t| {
                which::which(t).is_err()
                    && !Path::new(&format!("/usr/sbin/{t}")).exists()
                    && !Path::new(&format!("/sbin/{t}")).exists()
            })
            .collect();
        if !root || !Path::new("/dev/loop-control").exists() || !missing.is_empty() {
            eprintln!(
                "note: skipping loop-device filesystem tests (root: {root}, /dev/loop-control: {}, missing tools: {missing:?})",
                Path::new("/dev/loop-control").exists()
            );
            return None;
        }
        let img = tempfile::tempdir().unwrap();
        let file = img.path().join("lun.img");
        std::fs::File::create(&file)
            .unwrap()
            .set_len(64 << 20)
            .unwrap();
        let out = sh(&["losetup", "-f", "--show", "-P", file.to_str().unwrap()]);
        if !out.status.success() {
            eprintln!(
                "note: skipping loop-device tests: losetup failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            return None;
        }
        let dev = String::from_utf8_lossy(&out.stdout).trim().to_string();
        Some(Loop {
            dev,
            _img: img,
            mounts: Vec::new(),
        })
    }

    fn answers(mp: &Path, fstab: bool) -> serde_json::Value {
        serde_json::json!({"volume": {"partition": true, "filesystem": "ext4",
            "mount_point": mp.to_str().unwrap(), "fstab": fstab, "wwid": "auto"}})
    }

    /// Plan, apply and verify like the engine does.
    fn run_step(
        host: &Split,
        dev: &str,
        mp: &Path,
        force: bool,
        facts: &mut Facts,
    ) -> Result<Plan, StepError> {
        // Each call is a run of its own, and a run starts keeping no probe output: the test
        // changed the disk behind the host's back since the last one.
        host.forget();
        let mut ask = Asker::unattended(answers(mp, true));
        let mut sheet = Worksheet::default();
        let options = Options {
            dry_run: false,
            force_format: force,
            ..Default::default()
        };
        if facts.volumes.is_empty() {
            facts.volumes.push(Default::default());
        }
        facts.volumes[0].map_device = Some(dev.to_string());
        let mut cx = Ctx {
            host,
            ask: &mut ask,
            facts,
            sheet: &mut sheet,
            progress: &NoProgress,
            options: &options,
        };
        let mut step = Filesystem::default();
        let plan = step.plan(&mut cx)?;
        crate::steps::apply_plan(&mut step, &mut cx, &plan)?;
        step.verify(&mut cx)?;
        Ok(plan)
    }

    fn bytes_of(dev: &str) -> Vec<u8> {
        std::fs::read(dev).unwrap()
    }

    #[test]
    fn the_whole_chain_on_a_loop_device_then_a_rerun_changes_nothing() {
        let Some(mut lo) = setup() else { return };
        let host = Split::new();
        let mp = lo._img.path().join("mnt");
        let mut facts = Facts::default();
        let plan = run_step(&host, &lo.dev, &mp, false, &mut facts).unwrap();
        lo.mounts.push(mp.clone());
        let text = plan.render();
        assert!(text.contains("mkpart iser-data ext4 2048s"), "{text}");
        let part = facts.volumes[0].partition.clone().unwrap();
        assert_eq!(part, format!("{}p1", lo.dev));
        // Aligned: 1 MiB on a loop device (no optimal_io_size), never sector 34.
        let start = std::fs::read_to_string(format!(
            "/sys/class/block/{}/start",
            Path::new(&part).file_name().unwrap().to_str().unwrap()
        ))
        .unwrap();
        assert_eq!(start.trim(), "2048");
        let fstab = std::fs::read_to_string(host.etc.path("/etc/fstab")).unwrap();
        let uuid = facts.volumes[0].fs_uuid.clone().unwrap();
        assert_eq!(
            fstab,
            format!(
                "UUID={uuid} {} ext4 defaults,_netdev,nofail 0 2\n",
                mp.display()
            )
        );
        // Rerun: the plan is empty and fstab is not duplicated.
        let plan = run_step(&host, &lo.dev, &mp, false, &mut facts).unwrap();
        assert!(plan.is_empty(), "{}", plan.render());
        assert_eq!(
            std::fs::read_to_string(host.etc.path("/etc/fstab")).unwrap(),
            fstab
        );
    }

    #[test]
    fn a_mounted_partition_is_refused_and_the_disk_is_unchanged() {
        let Some(mut lo) = setup() else { return };
        assert!(sh(&[
            "parted", "-s", &lo.dev, "mklabel", "gpt", "mkpart", "p", "ext4", "1MiB", "100%"
        ])
        .status
        .success());
        let part = format!("{}p1", lo.dev);
        assert!(sh(&["mkfs.ext4", "-q", &part]).status.success());
        let other = lo._img.path().join("elsewhere");
        std::fs::create_dir_all(&other).unwrap();
        assert!(sh(&["mount", &part, other.to_str().unwrap()])
            .status
            .success());
        lo.mounts.push(other.clone());
        let before = bytes_of(&lo.dev);
        let host = Split::new();
        let mp = lo._img.path().join("mnt");
        for force in [false, true] {
            let e = run_step(&host, &lo.dev, &mp, force, &mut Facts::default()).unwrap_err();
            let StepError::Refused { evidence, .. } = &e else {
                panic!("{e}")
            };
            assert!(
                evidence.contains(&format!("{part} is mounted on {}", other.display())),
                "{evidence:?}"
            );
        }
        assert!(bytes_of(&lo.dev) == before, "the disk changed");
    }

    #[test]
    fn a_filesystem_or_partition_table_is_refused_unless_forced() {
        let Some(mut lo) = setup() else { return };
        let host = Split::new();
        let mp = lo._img.path().join("mnt");
        // A filesystem on the whole device.
        assert!(sh(&["mkfs.ext4", "-q", &lo.dev]).status.success());
        let before = bytes_of(&lo.dev);
        let e = run_step(&host, &lo.dev, &mp, false, &mut Facts::default()).unwrap_err();
        assert!(matches!(e, StepError::Refused { .. }), "{e}");
        assert!(e.to_string().contains("carries a ext4 signature"), "{e}");
        assert!(bytes_of(&lo.dev) == before, "the disk changed");
        // A partition table without a filesystem.
        assert!(sh(&["wipefs", "-a", "-q", &lo.dev]).status.success());
        assert!(sh(&["parted", "-s", &lo.dev, "mklabel", "gpt"])
            .status
            .success());
        let before = bytes_of(&lo.dev);
        let e = run_step(&host, &lo.dev, &mp, false, &mut Facts::default()).unwrap_err();
        assert!(
            e.to_string().contains("carries a gpt partition table"),
            "{e}"
        );
        assert!(bytes_of(&lo.dev) == before, "the disk changed");
        // Forced: wiped, partitioned, formatted, mounted.
        let mut facts = Facts::default();
        let plan = run_step(&host, &lo.dev, &mp, true, &mut facts).unwrap();
        lo.mounts.push(mp.clone());
        assert!(plan.render().contains(&format!("wipefs -a {}", lo.dev)));
        assert!(facts.volumes[0].fs_uuid.is_some());
    }
}

// ---- a dry run on a bare host ----

mod bare {
    use super::*;
    use crate::steps::fake::FakeHost;
    use crate::steps::host::ReadOnly;
    use crate::steps::testkit::{summary, Run};
    use crate::steps::Facts;

    const UUID: &str = "170b7b73-5af6-4160-bff9-8e3913308e30";

    fn run(volume: serde_json::Value) -> Run {
        let mut run = Run::new(serde_json::json!({ "volume": volume }), Facts::default());
        run.options.dry_run = true;
        run
    }

    fn step() -> Filesystem {
        Filesystem {
            uuid_for_tests: Some(UUID.into()),
            ..Default::default()
        }
    }

    #[test]
    fn a_bare_host_plans_every_action_from_the_answers() {
        let h = FakeHost::new().only_programs(&["lsblk", "blkid"]);
        let mut run = run(serde_json::json!({"wwid": "auto", "partition": true,
            "filesystem": "ext4", "mount_point": "/mnt/ext4", "fstab": true}));
        let ro = ReadOnly(&h);
        let plan = step().plan(&mut run.cx(&ro)).unwrap();
        h.finish();
        assert!(h.ran().is_empty(), "probed: {:?}", h.ran());
        let map = "<multipath map of the volume>";
        assert_eq!(
            summary(&plan),
            [
                "task safety-checks".to_string(),
                format!(
                    "parted -s '{map}' unit s mklabel gpt mkpart iser-data ext4 \
                     '<first sector, on the alignment>' \
                     '<last sector, before the backup GPT, on the alignment>'"
                ),
                "task find-partition".into(),
                "task mkfs".into(),
                "mkdir -p /mnt/ext4".into(),
                "write /etc/fstab".into(),
                "task mount".into(),
            ]
        );
        assert_eq!(
            plan.learned,
            [
                "multipath map of the volume",
                "WWID of the volume, learned after login",
                "first sector, on the alignment",
                "last sector, before the backup GPT, on the alignment",
                "optimal I/O size of the map, else 1 MiB",
            ]
        );
        let text = plan.render();
        assert!(
            text.contains("partition aligned to <optimal I/O size of the map, else 1 MiB>"),
            "{text}"
        );
        assert!(text.contains(&format!("mkfs.ext4 -q -U {UUID}")), "{text}");
        assert!(
            text.contains(&format!(
                "+UUID={UUID} /mnt/ext4 ext4 defaults,_netdev,nofail 0 2"
            )),
            "{text}"
        );
        assert!(text.contains("refuse (exit 3)"), "{text}");
        assert_eq!(run.facts, Facts::default(), "a plan records nothing");
        assert!(run.sheet.volumes.is_empty(), "a plan records nothing");
    }

    #[test]
    fn without_a_partition_the_map_itself_is_formatted_and_mounted() {
        let h = FakeHost::new();
        h.put_file("/etc/fstab", "UUID=u1 / ext4 defaults 0 1\n");
        h.put_file("/srv/data/.keep", "");
        let mut run = run(serde_json::json!({"wwid": "36001405aa", "partition": false,
            "filesystem": "xfs", "mount_point": "/srv/data", "fstab": true}));
        let ro = ReadOnly(&h);
        let plan = step().plan(&mut run.cx(&ro)).unwrap();
        h.finish();
        assert_eq!(
            summary(&plan),
            [
                "task safety-checks".to_string(),
                format!("mkfs.xfs -q -m uuid={UUID} '<multipath map of the volume>'"),
                "write /etc/fstab".into(),
                "mount -t xfs '<multipath map of the volume>' /srv/data".into(),
            ]
        );
        assert_eq!(plan.learned, ["multipath map of the volume"]);
        assert!(
            plan.render().contains("WWID 36001405aa"),
            "{}",
            plan.render()
        );
    }

    #[test]
    fn a_real_run_without_a_map_still_stops() {
        let h = FakeHost::new();
        let mut run = run(serde_json::json!({"wwid": "auto", "partition": true,
            "filesystem": "ext4", "mount_point": "/mnt/ext4", "fstab": true}));
        run.options.dry_run = false;
        let e = step().plan(&mut run.cx(&h)).unwrap_err().to_string();
        assert!(e.contains("run the multipath step first"), "{e}");
        h.finish();
    }

    #[test]
    fn task_ids_round_trip() {
        for t in Task::ALL {
            assert_eq!(Task::from_id(t.id()), Some(t));
            assert_eq!(Task::parse(&t.id_for(0)), Some((t, 0)));
            assert_eq!(Task::parse(&t.id_for(3)), Some((t, 3)));
        }
        assert_eq!(Task::from_id("format"), None);
        assert_eq!(Task::parse("mkfs@x"), None);
        assert_eq!(Task::parse("format@1"), None);
    }

    #[test]
    fn a_mount_point_inside_another_volumes_is_refused() {
        let h = FakeHost::new().only_programs(&["lsblk", "blkid"]);
        let mut run = Run::new(
            serde_json::json!({"volumes": [
                {"wwid": "36001405aa", "partition": true, "filesystem": "ext4",
                 "mount_point": "/srv/db", "fstab": true},
                {"wwid": "36001405bb", "partition": true, "filesystem": "ext4",
                 "mount_point": "/srv/db/logs", "fstab": true}
            ]}),
            Facts::default(),
        );
        run.options.dry_run = true;
        let e = step()
            .plan(&mut run.cx(&ReadOnly(&h)))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(
                "volumes[1].mount_point: /srv/db/logs is, holds or lies inside /srv/db \
                 (volumes[0].mount_point): give each volume a directory of its own"
            ),
            "{e}"
        );
    }

    #[test]
    fn each_volume_gets_its_own_actions_and_fstab_line_in_one_plan() {
        let h = FakeHost::new().only_programs(&["lsblk", "blkid"]);
        h.put_file("/etc/fstab", "UUID=u1 / ext4 defaults 0 1\n");
        let mut run = Run::new(
            serde_json::json!({"volumes": [
                {"name": "db", "wwid": "36001405aa", "partition": false,
                 "filesystem": "xfs", "mount_point": "/srv/db", "fstab": true},
                {"name": "logs", "wwid": "36001405bb", "partition": true,
                 "filesystem": "ext4", "mount_point": "/srv/logs", "fstab": true}
            ]}),
            Facts::default(),
        );
        run.options.dry_run = true;
        let ro = ReadOnly(&h);
        let plan = step().plan(&mut run.cx(&ro)).unwrap();
        h.finish();
        let s = summary(&plan);
        assert_eq!(s[0], "task safety-checks");
        let second = s.iter().position(|a| a == "task safety-checks@1").unwrap();
        assert_eq!(
            s[second..],
            [
                "task safety-checks@1".to_string(),
                "parted -s '<multipath map of volume logs>' unit s mklabel gpt mkpart \
                 iser-data ext4 '<first sector, on the alignment>' \
                 '<last sector, before the backup GPT, on the alignment>'"
                    .into(),
                "task find-partition@1".into(),
                "task mkfs@1".into(),
                "mkdir -p /srv/logs".into(),
                "write /etc/fstab".into(),
                "task mount@1".into(),
            ]
        );
        // The second fstab write starts from the first one's result: both lines end up there.
        let writes: Vec<(Option<String>, String)> = plan
            .actions
            .iter()
            .filter_map(|a| match a {
                crate::steps::Action::Write { old, new, .. } => Some((old.clone(), new.clone())),
                _ => None,
            })
            .collect();
        assert_eq!(writes.len(), 2);
        assert_eq!(writes[1].0.as_ref(), Some(&writes[0].1));
        assert!(writes[1].1.contains(" /srv/db xfs "), "{}", writes[1].1);
        assert!(writes[1].1.contains(" /srv/logs ext4 "), "{}", writes[1].1);
        // Two volumes, two filesystem UUIDs.
        let uuids: Vec<&str> = writes[1]
            .1
            .lines()
            .filter_map(|l| l.strip_prefix("UUID="))
            .filter_map(|l| l.split_whitespace().next())
            .filter(|u| *u != "u1")
            .collect();
        assert_eq!(uuids.len(), 2);
        assert_ne!(uuids[0], uuids[1]);
    }
}

// ---- the mount after mkfs ----

mod mount {
    use super::*;
    use crate::steps::fake::FakeHost;
    use crate::steps::testkit::Run;
    use crate::steps::{CmdOutput, Facts};

    const LSBLK: [&str; 7] = [
        "lsblk",
        "-J",
        "-b",
        "-p",
        "-o",
        "NAME,KNAME,PATH,TYPE,SIZE,FSTYPE,UUID,MOUNTPOINT",
        MAP,
    ];

    fn lsblk_with(part: &str) -> CmdOutput {
        CmdOutput::ok(format!(
            r#"{{"blockdevices": [{{"name": "{MAP}", "kname": "/dev/dm-3", "path": "{MAP}",
               "type": "mpath", "children": [{{"name": "{part}", "kname": "/dev/dm-4",
               "path": "{part}", "type": "part"}}]}}]}}"#
        ))
    }

    fn run_with_partition(recorded: &str) -> Run {
        let facts = Facts {
            volumes: vec![VolumeFact {
                wwid: Some("36001405aa".into()),
                map_device: Some(MAP.into()),
                partition: Some(recorded.into()),
                ..Default::default()
            }],
            ..Default::default()
        };
        Run::new(
            serde_json::json!({"volume": {"wwid": "36001405aa", "mount_point": "/mnt/ext4"}}),
            facts,
        )
    }

    #[test]
    fn the_partition_found_before_mkfs_is_mounted_after_one_look() {
        let part = format!("{MAP}-part1");
        let h = FakeHost::new();
        h.put_file(&part, "");
        h.expect(&LSBLK, lsblk_with(&part));
        h.expect(
            &["mount", "-t", "ext4", &part, "/mnt/ext4"],
            CmdOutput::ok(""),
        );
        let mut run = run_with_partition(&part);
        apply::mount_partition(&mut run.cx(&h), MAP, &want()).unwrap();
        // No `udevadm settle` and no second look: h.finish() fails on any other command.
        h.finish();
    }

    #[test]
    fn a_partition_that_is_not_the_one_recorded_is_resolved_again() {
        // Recorded under libparted's transient name; lsblk now shows udev's.
        let part = format!("{MAP}-part1");
        let h = FakeHost::new();
        h.put_file(&part, "");
        h.allow(&LSBLK, lsblk_with(&part));
        h.allow(&["udevadm", "settle", "--timeout=5"], CmdOutput::ok(""));
        h.expect(
            &["mount", "-t", "ext4", &part, "/mnt/ext4"],
            CmdOutput::ok(""),
        );
        let mut run = run_with_partition(&format!("{MAP}p1"));
        apply::mount_partition(&mut run.cx(&h), MAP, &want()).unwrap();
        h.finish();
        let looks = h.ran().iter().filter(|c| c.starts_with("lsblk")).count();
        assert_eq!(looks, 2, "{:?}", h.ran());
        assert_eq!(
            run.facts.volumes[0].partition.as_deref(),
            Some(part.as_str())
        );
    }

    #[test]
    fn mkfs_takes_the_partition_the_find_task_found_after_one_look() {
        let part = format!("{MAP}-part1");
        let h = FakeHost::new();
        h.put_file(&part, "");
        h.expect(&LSBLK, lsblk_with(&part));
        h.expect(
            &["blkid", "-p", "-o", "export", &part],
            CmdOutput::status(2, "", ""),
        );
        let uuid = "170b7b73-5af6-4160-bff9-8e3913308e30";
        h.expect(&["mkfs.ext4", "-q", "-U", uuid, &part], CmdOutput::ok(""));
        let mut run = run_with_partition(&part);
        apply::mkfs_on_partition(&mut run.cx(&h), MAP, &want(), uuid).unwrap();
        // No `udevadm settle` and no second look: h.finish() fails on any other command.
        h.finish();
        assert_eq!(run.facts.volumes[0].fs_uuid.as_deref(), Some(uuid));
    }
}
