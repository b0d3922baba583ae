//! The verify step: write a test file on the mounted volume with O_DIRECT, each 4 KiB
//! sector stamped with its offset, a per-run seed and a checksum; fsync; read it back with
//! O_DIRECT and check every sector; remove it. Unlike the vendor's copy-back-and-diff, which
//! compares page-cache pages and passes without reading the array at all, the read-back here
//! comes from the device. The result (bytes, MB/s each way, first bad offset) goes on the
//! worksheet. The same check runs alone as `iser-wizard verify MOUNTPOINT`.
//!
//! A rerun that is nearly free: when every earlier step of a whole run found nothing to
//! change ([`crate::steps::Options::nothing_changed_before`]) and the worksheet records a
//! passed check of this very file system (same UUID, mount point and size, the same verify
//! size), the step writes nothing: its plan is empty (no change counted) and says when the
//! last check passed and at what speed. Any change before it, a failed or absent record, a
//! different file system, or a partial run (`run --only verify`) checks again. Only the
//! first volume has a record on the worksheet, so the others are always checked.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::settings::{MountPoint, VerifySize};
use crate::steps::blockio::{
    self, IoMode, Phase, VerifyError, VerifyOptions, VerifyOutcome, VerifyReport,
};
use crate::steps::host::{under_root, HostError, Interrupt};
use crate::steps::{Action, Cmd, Ctx, Plan, Step, StepError, StepName};
use crate::worksheets::VerificationRecord;

/// The step implementation.
pub fn step() -> Box<dyn Step> {
    Box::new(Verify::default())
}

/// The verify step.
#[derive(Debug, Default)]
pub struct Verify {
    /// Each volume's mount point, in the order of the answers' list.
    mount_points: Vec<String>,
    size: u64,
    /// Each volume's report, once its check ran.
    reports: Vec<Option<VerifyReport>>,
    /// Each volume whose check this run does not repeat: the passed record it relies on.
    not_repeated: Vec<Option<VerificationRecord>>,
}

#[derive(Debug, Deserialize)]
struct Findmnt {
    filesystems: Vec<FindmntFs>,
}

#[derive(Debug, Deserialize)]
struct FindmntFs {
    source: String,
    #[serde(default)]
    uuid: Option<String>,
    /// A number, or a string of digits from older util-linux.
    #[serde(default)]
    size: Option<serde_json::Value>,
}

/// The file system mounted exactly at a mount point, as `findmnt -b` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountedFs {
    /// The device mounted there.
    pub source: String,
    /// The file system's UUID, when it has one.
    pub uuid: Option<String>,
    /// The file system's size in bytes.
    pub size: Option<u64>,
}

/// The probe of [`mounted_fs`] (and so of [`mounted_source`]).
pub fn mounted_fs_cmd(mount_point: &str) -> Cmd {
    Cmd::probe([
        "findmnt",
        "-J",
        "-b",
        "-o",
        "SOURCE,UUID,SIZE",
        "--mountpoint",
        mount_point,
    ])
}

/// The file system mounted exactly at `mount_point`, if any, with its UUID and size: one
/// `findmnt` for what [`mounted_source`] gives and what a rerun compares with the record.
pub fn mounted_fs(
    host: &dyn crate::steps::Host,
    mount_point: &str,
) -> Result<Option<MountedFs>, StepError> {
    let out = host.run(&mounted_fs_cmd(mount_point))?;
    if !out.success() {
        return Ok(None);
    }
    let Some(fs) = serde_json::from_str::<Findmnt>(&out.stdout)
        .ok()
        .and_then(|f| f.filesystems.into_iter().next())
    else {
        return Ok(None);
    };
    let size = match fs.size {
        Some(serde_json::Value::Number(n)) => n.as_u64(),
        Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    };
    Ok(Some(MountedFs {
        source: fs.source,
        uuid: fs.uuid.filter(|u| !u.is_empty()),
        size,
    }))
}

/// The device mounted at `mount_point` (`None`: nothing is mounted there), from the same
/// probe as [`mounted_fs`].
pub fn mounted_source(
    host: &dyn crate::steps::Host,
    mount_point: &str,
) -> Result<Option<String>, StepError> {
    Ok(mounted_fs(host, mount_point)?.map(|fs| fs.source))
}

/// A size in MiB, as the operator gave it (`256MiB`), to two places when not whole.
fn mib(bytes: u64) -> String {
    if bytes % (1 << 20) == 0 {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{:.2} MiB", bytes as f64 / (1u64 << 20) as f64)
    }
}

/// One line for the operator: the size in MiB, throughput each way in MB/s (10^6 bytes a
/// second, as `dd` prints it), and how the I/O was done.
pub fn summary(r: &VerifyReport) -> String {
    let how = match (r.write.mode, r.read.mode) {
        (IoMode::Direct, IoMode::Direct) => "O_DIRECT both ways".to_string(),
        _ => format!(
            "buffered with cache dropping ({})",
            r.fallback.as_deref().unwrap_or("O_DIRECT refused")
        ),
    };
    match &r.outcome {
        VerifyOutcome::Passed => format!(
            "verified {}: write {:.1} MB/s, read back {:.1} MB/s, {how}",
            mib(r.bytes),
            r.write_mb_s,
            r.read_mb_s
        ),
        VerifyOutcome::Failed { first, bad_sectors } => {
            format!("verify FAILED: {bad_sectors} bad 4 KiB sector(s); the first at {first}")
        }
    }
}

/// Run the check on a file below `dir`, reporting progress in bytes. When `interrupt` is
/// set it stops at the next block, removes the file and fails with
/// [`HostError::Interrupted`], which the wizard turns into exit code 130.
pub fn run_check(
    dir: &Path,
    size: u64,
    interrupt: &Interrupt,
    progress: &mut dyn FnMut(Phase, u64),
) -> Result<VerifyReport, StepError> {
    let seed = blockio::random_seed();
    let path: PathBuf = dir.join(format!(".iser-wizard-verify-{seed:016x}"));
    let opts = VerifyOptions {
        seed,
        ..Default::default()
    };
    blockio::verify_file_until(&path, size, &opts, interrupt, progress).map_err(|e| match e {
        VerifyError::Interrupted => StepError::Host(HostError::Interrupted),
        e => StepError::Failed(format!("verify on {}: {e}", dir.display())),
    })
}

/// The worksheet record of a report, stamped with the time it is made.
pub fn record(r: &VerifyReport) -> VerificationRecord {
    VerificationRecord {
        bytes: r.bytes,
        result: match &r.outcome {
            VerifyOutcome::Passed => "passed".into(),
            VerifyOutcome::Failed { first, .. } => format!("failed at {first}"),
        },
        write_mb_s: Some(r.write_mb_s),
        read_mb_s: Some(r.read_mb_s),
        at: Some(crate::steps::timefmt::now_rfc3339()),
        ..Default::default()
    }
}

/// The line a rerun shows instead of checking again.
fn not_repeated_line(r: &VerificationRecord, mount_point: &str) -> String {
    let mbs = |x: Option<f64>| x.map_or_else(|| "?".to_string(), |v| format!("{v:.1}"));
    format!(
        "verified {} (passed, {} at {} MB/s write, {} MB/s read); nothing changed since, so \
         not repeated: run `iser-wizard verify {mount_point}` to check again",
        r.at.as_deref().unwrap_or("earlier"),
        mib(r.bytes),
        mbs(r.write_mb_s),
        mbs(r.read_mb_s)
    )
}

/// Whether `r` is a passed check of the file system `fs` now mounted on `mount_point`,
/// `size` bytes written: then a run that changed nothing before need not write again.
fn still_holds(r: &VerificationRecord, mount_point: &str, fs: &MountedFs, size: u64) -> bool {
    r.result == "passed"
        && r.at.is_some()
        && r.bytes == size
        && r.mount_point.as_deref() == Some(mount_point)
        && fs.uuid.is_some()
        && r.fs_uuid == fs.uuid
        && fs.size.is_some()
        && r.fs_bytes == fs.size
}

impl Step for Verify {
    fn name(&self) -> StepName {
        StepName::Verify
    }

    fn plan(&mut self, cx: &mut Ctx<'_>) -> Result<Plan, StepError> {
        let n = cx.ask.answers().volume_list().len();
        self.mount_points.clear();
        for i in 0..n {
            let default_mp = cx
                .facts
                .volume_of(cx.ask.answers(), i)
                .and_then(|v| v.mount_point.as_deref())
                .and_then(|m| m.parse::<MountPoint>().ok());
            let key = cx.ask.answers().volume_key(i, "mount_point");
            let question = if n == 1 {
                "Mount point of the volume".to_string()
            } else {
                format!("Mount point of {}", cx.ask.answers().volume_label(i))
            };
            let mp = cx
                .ask
                .want(&key, &question, default_mp, |a| {
                    &mut a.volume_mut(i).mount_point
                })?
                .to_string();
            self.mount_points.push(mp);
        }
        self.reports = vec![None; n];
        let size = cx.ask.want(
            "verify.size",
            "How much to write and read back",
            "256MiB".parse::<VerifySize>().ok(),
            |a| &mut a.verify.size,
        )?;
        self.size = size.bytes();
        self.not_repeated = vec![None; n];
        let mut plan = Plan::new(StepName::Verify);
        for (i, mp) in self.mount_points.iter().enumerate() {
            if let Some(r) = self.last_check_holds(cx, i)? {
                plan.note(not_repeated_line(&r, mp));
                self.not_repeated[i] = Some(r);
                continue;
            }
            plan.push(Action::task(
                task_id(i),
                format!(
                    "write {size} to a test file on {mp} with O_DIRECT (every 4 KiB stamped \
                     with its offset, this run's seed and a checksum), read it back with \
                     O_DIRECT, compare, remove it"
                ),
            ));
        }
        Ok(plan)
    }

    fn task(&mut self, cx: &mut Ctx<'_>, id: &str) -> Result<(), StepError> {
        let Some(i) = (0..self.mount_points.len()).find(|i| task_id(*i) == id) else {
            return Err(StepError::Failed(format!("internal: no task {id}")));
        };
        let mount_point = self.mount_points[i].clone();
        // Never write the test file into whatever lies below an unmounted mount point.
        let fs = mounted_fs(cx.host, &mount_point)?.ok_or_else(|| {
            StepError::Failed(format!(
                "nothing is mounted on {mount_point}: the verify writes only to the volume"
            ))
        })?;
        let source = fs.source.clone();
        let expected = cx
            .facts
            .volume_of(cx.ask.answers(), i)
            .and_then(|v| v.fs_device.clone());
        if let Some(expected) = &expected {
            if &source != expected {
                return Err(StepError::Failed(format!(
                    "{mount_point} is mounted from {source}, not from the volume's {expected}"
                )));
            }
        }
        let dir = under_root(cx.host.root(), Path::new(&mount_point))?;
        let size = self.size;
        let progress = cx.progress;
        progress.start_bytes("writing", size * 2);
        let report = run_check(&dir, size, &cx.host.interrupt(), &mut |phase, done| {
            let base = if phase == Phase::Read { size } else { 0 };
            progress.set_bytes(base + done);
        })?;
        // The worksheet's verification is the first volume's; every volume's result is a note.
        if i == 0 {
            cx.sheet.verification = Some(VerificationRecord {
                mount_point: Some(mount_point.clone()),
                fs_uuid: fs.uuid,
                fs_bytes: fs.size,
                ..record(&report)
            });
        }
        let passed = report.passed();
        let line = if self.mount_points.len() > 1 {
            format!("{mount_point}: {}", summary(&report))
        } else {
            summary(&report)
        };
        self.reports[i] = Some(report);
        if !passed {
            return Err(StepError::Failed(format!(
                "{line}. The data read back from {source} is not what was written: check the \
                 multipath paths and the array's logs"
            )));
        }
        cx.sheet.note(line);
        Ok(())
    }

    fn verify(&mut self, _cx: &mut Ctx<'_>) -> Result<(), StepError> {
        if self.reports.is_empty() {
            return Err(StepError::Failed("the verify did not run".into()));
        }
        for (i, (mp, r)) in self.mount_points.iter().zip(&self.reports).enumerate() {
            let relied_on = self.not_repeated.get(i).is_some_and(Option::is_some);
            match r {
                Some(r) if r.passed() => {}
                Some(r) => return Err(StepError::Failed(format!("{mp}: {}", summary(r)))),
                None if relied_on => {}
                None => return Err(StepError::Failed(format!("the verify of {mp} did not run"))),
            }
        }
        Ok(())
    }
}

impl Verify {
    /// The passed record of volume `i`'s file system that this run may rely on instead of
    /// writing again, if any (see the module's contract). Probes the mount only when the
    /// rest allows it, so a first run or one with changes spends no process on it.
    fn last_check_holds(
        &self,
        cx: &mut Ctx<'_>,
        i: usize,
    ) -> Result<Option<VerificationRecord>, StepError> {
        // Only the first volume's check is recorded on the worksheet.
        let Some(r) = cx.sheet.verification.as_ref().filter(|_| i == 0) else {
            return Ok(None);
        };
        if !cx.options.nothing_changed_before {
            return Ok(None);
        }
        let mp = &self.mount_points[i];
        if r.result != "passed" || r.mount_point.as_deref() != Some(mp.as_str()) {
            return Ok(None);
        }
        let r = r.clone();
        let Some(fs) = mounted_fs(cx.host, mp)? else {
            return Ok(None);
        };
        let expected = cx
            .facts
            .volume_of(cx.ask.answers(), i)
            .and_then(|v| v.fs_device.clone());
        if expected.is_some_and(|e| e != fs.source) {
            return Ok(None);
        }
        Ok(still_holds(&r, mp, &fs, self.size).then_some(r))
    }
}

/// The plan's task id of volume `i`'s check: `verify`, then `verify@1`, ...
fn task_id(i: usize) -> String {
    match i {
        0 => "verify".into(),
        i => format!("verify@{i}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prompt::Asker;
    use crate::steps::facts::VolumeFact;
    use crate::steps::fake::FakeHost;
    use crate::steps::{CmdOutput, Facts, NoProgress, Options};
    use crate::worksheets::Worksheet;

    fn ctx_run(
        h: &FakeHost,
        mp: &str,
        facts: &mut Facts,
        sheet: &mut Worksheet,
    ) -> Result<(), StepError> {
        let mut ask = Asker::unattended(serde_json::json!({
            "volume": {"mount_point": mp}, "verify": {"size": "1MiB"}}));
        let options = Options::default();
        let mut cx = Ctx {
            host: h,
            ask: &mut ask,
            facts,
            sheet,
            progress: &NoProgress,
            options: &options,
        };
        let mut v = Verify::default();
        let plan = v.plan(&mut cx)?;
        assert_eq!(plan.actions.len(), 1);
        v.task(&mut cx, "verify")?;
        v.verify(&mut cx)
    }

    #[test]
    fn each_volume_is_checked_on_its_own_mount_point_against_its_own_device() {
        let h = FakeHost::new();
        for (mp, dev) in [
            ("/mnt/a", "/dev/mapper/aa-part1"),
            ("/mnt/b", "/dev/mapper/bb"),
        ] {
            h.put_file(&format!("{mp}/keep"), "");
            h.allow(
                &[
                    "findmnt",
                    "-J",
                    "-b",
                    "-o",
                    "SOURCE,UUID,SIZE",
                    "--mountpoint",
                    mp,
                ],
                CmdOutput::ok(format!(r#"{{"filesystems": [{{"source": "{dev}"}}]}}"#)),
            );
        }
        let mut facts = Facts::default();
        for (w, dev) in [
            ("36001405aa", "/dev/mapper/aa-part1"),
            ("36001405bb", "/dev/mapper/bb"),
        ] {
            facts.volumes.push(VolumeFact {
                wwid: Some(w.into()),
                fs_device: Some(dev.into()),
                ..Default::default()
            });
        }
        let answers = |second: &str| {
            Asker::unattended(serde_json::json!({"volumes": [
                {"wwid": "36001405aa", "mount_point": "/mnt/a"},
                {"wwid": "36001405bb", "mount_point": second}
            ], "verify": {"size": "1MiB"}}))
        };
        let options = Options::default();
        let mut sheet = Worksheet::default();
        let mut ask = answers("/mnt/b");
        let mut cx = Ctx {
            host: &h,
            ask: &mut ask,
            facts: &mut facts,
            sheet: &mut sheet,
            progress: &NoProgress,
            options: &options,
        };
        let mut v = Verify::default();
        let plan = v.plan(&mut cx).unwrap();
        assert_eq!(
            crate::steps::testkit::summary(&plan),
            ["task verify", "task verify@1"]
        );
        v.task(&mut cx, "verify").unwrap();
        assert!(v.verify(&mut cx).is_err(), "the second has not run yet");
        v.task(&mut cx, "verify@1").unwrap();
        v.verify(&mut cx).unwrap();
        assert!(sheet
            .notes
            .iter()
            .any(|n| n.starts_with("/mnt/a: verified 1 MiB")));
        assert!(sheet
            .notes
            .iter()
            .any(|n| n.starts_with("/mnt/b: verified 1 MiB")));
        // The second volume's mount point mounted from the first's device is refused.
        let mut ask = answers("/mnt/a2");
        h.put_file("/mnt/a2/keep", "");
        h.allow(
            &[
                "findmnt",
                "-J",
                "-b",
                "-o",
                "SOURCE,UUID,SIZE",
                "--mountpoint",
                "/mnt/a2",
            ],
            CmdOutput::ok(r#"{"filesystems": [{"source": "/dev/mapper/aa-part1"}]}"#),
        );
        let mut cx = Ctx {
            host: &h,
            ask: &mut ask,
            facts: &mut facts,
            sheet: &mut Worksheet::default(),
            progress: &NoProgress,
            options: &options,
        };
        let mut v = Verify::default();
        v.plan(&mut cx).unwrap();
        let e = v.task(&mut cx, "verify@1").unwrap_err().to_string();
        assert!(e.contains("not from the volume's /dev/mapper/bb"), "{e}");
    }

    #[test]
    fn passes_on_a_mounted_volume_and_records_the_result() {
        let h = FakeHost::new();
        h.put_file("/mnt/data/keep", "");
        h.allow(
            &[
                "findmnt",
                "-J",
                "-b",
                "-o",
                "SOURCE,UUID,SIZE",
                "--mountpoint",
                "/mnt/data",
            ],
            CmdOutput::ok(r#"{"filesystems": [{"source": "/dev/mapper/36001405aa-part1"}]}"#),
        );
        let mut facts = Facts::default();
        facts.volumes.push(VolumeFact {
            fs_device: Some("/dev/mapper/36001405aa-part1".into()),
            ..Default::default()
        });
        let mut sheet = Worksheet::default();
        ctx_run(&h, "/mnt/data", &mut facts, &mut sheet).unwrap();
        let rec = sheet.verification.unwrap();
        assert_eq!(rec.bytes, 1 << 20);
        assert_eq!(rec.result, "passed");
        // The test file is gone.
        let names: Vec<_> = std::fs::read_dir(h.path("/mnt/data")).unwrap().collect();
        assert_eq!(names.len(), 1);
        h.finish();
    }

    /// Issue 12: Ctrl-C during `verify` was ignored; now it stops the check, the test file
    /// goes, and the wizard exits 130.
    #[test]
    fn ctrl_c_during_the_check_removes_the_test_file_and_exits_130() {
        let dir = tempfile::tempdir().unwrap();
        let interrupt = Interrupt::new();
        let mut last = 0;
        let e = run_check(dir.path(), 32 << 20, &interrupt, &mut |_, done| {
            last = done;
            if done >= 2 << 20 {
                interrupt.set();
            }
        })
        .unwrap_err();
        assert!(matches!(e, StepError::Host(HostError::Interrupted)), "{e}");
        assert!(last < 32 << 20, "stopped early, not at {last}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        let w = crate::exit::WizardError::from_step(StepName::Verify, e, Vec::new());
        assert_eq!(w.exit_code(), 130);
    }

    #[test]
    fn the_summary_gives_sizes_in_mib_and_speeds_in_mb_per_s() {
        let dir = tempfile::tempdir().unwrap();
        let r = run_check(dir.path(), 3 << 20, &Interrupt::new(), &mut |_, _| {}).unwrap();
        let line = summary(&r);
        assert!(line.starts_with("verified 3 MiB: write "), "{line}");
        assert!(line.contains(" MB/s, read back "), "{line}");
        assert_eq!(mib(4096), "0.00 MiB");
        assert_eq!(mib((1 << 20) + (1 << 19)), "1.50 MiB");
    }

    #[test]
    fn refuses_to_write_below_an_unmounted_or_foreign_mount_point() {
        let h = FakeHost::new();
        h.put_file("/mnt/data/keep", "");
        h.allow(
            &[
                "findmnt",
                "-J",
                "-b",
                "-o",
                "SOURCE,UUID,SIZE",
                "--mountpoint",
                "/mnt/data",
            ],
            CmdOutput::status(1, "", ""),
        );
        let e = ctx_run(
            &h,
            "/mnt/data",
            &mut Facts::default(),
            &mut Worksheet::default(),
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("nothing is mounted on /mnt/data"),
            "{e}"
        );
        h.finish();

        let h = FakeHost::new();
        h.put_file("/mnt/data/keep", "");
        h.allow(
            &[
                "findmnt",
                "-J",
                "-b",
                "-o",
                "SOURCE,UUID,SIZE",
                "--mountpoint",
                "/mnt/data",
            ],
            CmdOutput::ok(r#"{"filesystems": [{"source": "/dev/sda3"}]}"#),
        );
        let mut facts = Facts::default();
        facts.volumes.push(VolumeFact {
            fs_device: Some("/dev/mapper/x-part1".into()),
            ..Default::default()
        });
        let e = ctx_run(&h, "/mnt/data", &mut facts, &mut Worksheet::default()).unwrap_err();
        assert!(e.to_string().contains("not from the volume's"), "{e}");
        h.finish();
    }

    /// The findmnt probe of the verify step, and its answer for a file system.
    fn allow_fs(h: &FakeHost, mp: &str, dev: &str, uuid: &str, size: u64) {
        h.put_file(&format!("{mp}/keep"), "");
        let cmd = mounted_fs_cmd(mp);
        let argv: Vec<&str> = cmd.argv.iter().map(String::as_str).collect();
        h.allow(
            &argv,
            CmdOutput::ok(format!(
                r#"{{"filesystems": [{{"source": "{dev}", "uuid": "{uuid}", "size": {size}}}]}}"#
            )),
        );
    }

    /// Plan the step on `sheet` and run what it plans: the plan, and what the verify says.
    fn plan_and_run(
        h: &FakeHost,
        answers: serde_json::Value,
        nothing_changed_before: bool,
        sheet: &mut Worksheet,
    ) -> (Plan, Result<(), StepError>) {
        let mut facts = Facts::default();
        facts.volumes.push(VolumeFact {
            fs_device: Some("/dev/mapper/aa-part1".into()),
            ..Default::default()
        });
        let mut ask = Asker::unattended(answers);
        let options = Options {
            nothing_changed_before,
            ..Default::default()
        };
        let mut cx = Ctx {
            host: h,
            ask: &mut ask,
            facts: &mut facts,
            sheet,
            progress: &NoProgress,
            options: &options,
        };
        let mut v = Verify::default();
        let plan = v.plan(&mut cx).unwrap();
        for a in &plan.actions {
            let Action::Task { id, .. } = a else {
                panic!("the verify plans tasks only: {a:?}");
            };
            if let Err(e) = v.task(&mut cx, id) {
                return (plan, Err(e));
            }
        }
        let verified = v.verify(&mut cx);
        (plan, verified)
    }

    fn answers(mp: &str, size: &str) -> serde_json::Value {
        serde_json::json!({"volume": {"mount_point": mp}, "verify": {"size": size}})
    }

    /// Issue 18: a rerun that changed nothing wrote the whole verify again; now it relies on
    /// the passed check of the same file system, and any difference checks again.
    #[test]
    fn a_rerun_that_changed_nothing_does_not_write_again_unless_something_differs() {
        let h = FakeHost::new();
        let uuid = "5c0f3a1e-9b2d-4e8f-a6c7-1d2e3f4a5b6c";
        allow_fs(&h, "/mnt/data", "/dev/mapper/aa-part1", uuid, 10 << 30);
        let mut sheet = Worksheet::default();
        // The first run checks (nothing recorded yet, even when nothing changed before).
        let (plan, r) = plan_and_run(&h, answers("/mnt/data", "1MiB"), true, &mut sheet);
        r.unwrap();
        assert_eq!(plan.actions.len(), 1);
        let rec = sheet.verification.clone().unwrap();
        assert_eq!(rec.result, "passed");
        assert_eq!(rec.mount_point.as_deref(), Some("/mnt/data"));
        assert_eq!(rec.fs_uuid.as_deref(), Some(uuid));
        assert_eq!(rec.fs_bytes, Some(10 << 30));
        let at = rec.at.clone().expect("the time of the check is recorded");

        // A rerun that changed nothing: no task, a note with the last result, sheet kept.
        let (plan, r) = plan_and_run(&h, answers("/mnt/data", "1MiB"), true, &mut sheet);
        r.unwrap();
        assert!(plan.is_empty(), "{}", plan.render());
        let note = plan.notes.join("\n");
        assert!(
            note.starts_with(&format!("verified {at} (passed, 1 MiB at ")),
            "{note}"
        );
        assert!(
            note.ends_with(
                "MB/s read); nothing changed since, so not repeated: run `iser-wizard verify \
                 /mnt/data` to check again"
            ),
            "{note}"
        );
        assert_eq!(sheet.verification.as_ref(), Some(&rec));

        // Each of these checks again.
        let (plan, r) = plan_and_run(&h, answers("/mnt/data", "1MiB"), false, &mut sheet);
        r.unwrap();
        assert_eq!(plan.actions.len(), 1, "an earlier step changed something");
        let (plan, _) = plan_and_run(&h, answers("/mnt/data", "2MiB"), true, &mut sheet);
        assert_eq!(plan.actions.len(), 1, "another verify size");
        let failed = |sheet: &mut Worksheet| {
            sheet.verification.as_mut().unwrap().result = "failed at byte 0".into();
        };
        let mut s = sheet.clone();
        failed(&mut s);
        let (plan, _) = plan_and_run(&h, answers("/mnt/data", "2MiB"), true, &mut s);
        assert_eq!(plan.actions.len(), 1, "the last check failed");
        let mut s = sheet.clone();
        s.verification.as_mut().unwrap().at = None;
        let (plan, _) = plan_and_run(&h, answers("/mnt/data", "2MiB"), true, &mut s);
        assert_eq!(
            plan.actions.len(),
            1,
            "a record from before times were kept"
        );
        let (plan, _) = plan_and_run(
            &h,
            answers("/mnt/data", "2MiB"),
            true,
            &mut Worksheet::default(),
        );
        assert_eq!(plan.actions.len(), 1, "no record");
        // The same sheet, but the file system was made anew (another UUID), or grown.
        let h2 = FakeHost::new();
        allow_fs(
            &h2,
            "/mnt/data",
            "/dev/mapper/aa-part1",
            "another-uuid",
            10 << 30,
        );
        let (plan, _) = plan_and_run(&h2, answers("/mnt/data", "2MiB"), true, &mut sheet.clone());
        assert_eq!(plan.actions.len(), 1, "another file system");
        let h3 = FakeHost::new();
        allow_fs(&h3, "/mnt/data", "/dev/mapper/aa-part1", uuid, 20 << 30);
        let (plan, _) = plan_and_run(&h3, answers("/mnt/data", "2MiB"), true, &mut sheet.clone());
        assert_eq!(plan.actions.len(), 1, "a grown file system");
        // Mounted from another device than the volume's: checked, and refused there.
        let h4 = FakeHost::new();
        allow_fs(&h4, "/mnt/data", "/dev/sdz1", uuid, 10 << 30);
        let (plan, r) = plan_and_run(&h4, answers("/mnt/data", "2MiB"), true, &mut sheet.clone());
        assert_eq!(plan.actions.len(), 1, "another device");
        assert!(r.unwrap_err().to_string().contains("not from the volume's"));
    }

    #[test]
    fn the_record_holds_only_for_the_same_mount_point_size_and_file_system() {
        let rec = VerificationRecord {
            bytes: 1 << 20,
            result: "passed".into(),
            at: Some("2026-12-02T05:00:00Z".into()),
            mount_point: Some("/mnt/a".into()),
            fs_uuid: Some("u1".into()),
            fs_bytes: Some(1 << 30),
            ..Default::default()
        };
        let fs = MountedFs {
            source: "/dev/x".into(),
            uuid: Some("u1".into()),
            size: Some(1 << 30),
        };
        assert!(still_holds(&rec, "/mnt/a", &fs, 1 << 20));
        assert!(!still_holds(&rec, "/mnt/b", &fs, 1 << 20));
        assert!(!still_holds(&rec, "/mnt/a", &fs, 2 << 20));
        let no_uuid = MountedFs {
            uuid: None,
            ..fs.clone()
        };
        let no_record_uuid = VerificationRecord {
            fs_uuid: None,
            ..rec.clone()
        };
        assert!(!still_holds(&no_record_uuid, "/mnt/a", &no_uuid, 1 << 20));
        let no_size = MountedFs {
            size: None,
            ..fs.clone()
        };
        assert!(!still_holds(&rec, "/mnt/a", &no_size, 1 << 20));
    }

    #[test]
    fn findmnt_sizes_read_as_numbers_or_strings() {
        let h = FakeHost::new();
        h.allow(
            &[
                "findmnt",
                "-J",
                "-b",
                "-o",
                "SOURCE,UUID,SIZE",
                "--mountpoint",
                "/m",
            ],
            CmdOutput::ok(
                r#"{"filesystems": [{"source": "/dev/a", "uuid": null, "size": "4096"}]}"#,
            ),
        );
        let fs = mounted_fs(&h, "/m").unwrap().unwrap();
        assert_eq!((fs.uuid, fs.size), (None, Some(4096)));
        let h = FakeHost::new();
        h.allow(
            &[
                "findmnt",
                "-J",
                "-b",
                "-o",
                "SOURCE,UUID,SIZE",
                "--mountpoint",
                "/m",
            ],
            CmdOutput::status(1, "", ""),
        );
        assert_eq!(mounted_fs(&h, "/m").unwrap(), None);
    }

    /// The engine's side of issue 18: a whole run whose earlier steps planned nothing lets
    /// the verify rely on its last check; a change before it, or `run --only verify`, not.
    #[test]
    fn the_engine_tells_the_verify_whether_anything_changed_before_it() {
        use crate::flow::{execute, RunConfig};
        use crate::prompt::Mode;
        use crate::steps::host::Log;
        use std::cell::Cell;
        use std::rc::Rc;

        /// An earlier step that has one change to make while `change` is set.
        struct Earlier(Rc<Cell<bool>>);
        impl Step for Earlier {
            fn name(&self) -> StepName {
                StepName::Filesystem
            }
            fn plan(&mut self, _cx: &mut Ctx<'_>) -> Result<Plan, StepError> {
                let mut p = Plan::new(StepName::Filesystem);
                if self.0.get() {
                    p.push(Action::task("mount", "mount it"));
                }
                Ok(p)
            }
            fn task(&mut self, _cx: &mut Ctx<'_>, _id: &str) -> Result<(), StepError> {
                self.0.set(false);
                Ok(())
            }
            fn verify(&mut self, _cx: &mut Ctx<'_>) -> Result<(), StepError> {
                Ok(())
            }
        }

        let h = FakeHost::new();
        allow_fs(&h, "/mnt/data", "/dev/mapper/aa-part1", "u-1", 1 << 30);
        // Before its first volume-level step the engine notes what is on the host, for the
        // clean-up of a failed run (steps/detach/rollback.rs): no maps here.
        h.allow(&["multipath", "-ll"], CmdOutput::ok(""));
        h.allow(
            &["iscsiadm", "-m", "session", "-P", "3"],
            CmdOutput::status(21, "", "iscsiadm: No active sessions.\n"),
        );
        h.allow(
            &["iscsiadm", "-m", "node", "-P", "1"],
            CmdOutput::status(21, "", "iscsiadm: No records found\n"),
        );
        let state = tempfile::tempdir().unwrap();
        let change = Rc::new(Cell::new(true));
        let go = |steps: Vec<StepName>, partial: bool| {
            let cfg = RunConfig {
                root: PathBuf::from("/"),
                state_dir: state.path().to_path_buf(),
                steps,
                partial,
                dry_run: false,
                force_format: false,
                answers: Some(serde_json::json!({"version": 1,
                    "volume": {"mount_point": "/mnt/data"}, "verify": {"size": "1MiB"}})),
                mode: Mode::Unattended,
                record_answers: None,
                timings: false,
            };
            let c = change.clone();
            let mut make = move |n: StepName| -> Box<dyn Step> {
                match n {
                    StepName::Verify => step(),
                    _ => Box::new(Earlier(c.clone())),
                }
            };
            let mut out = Vec::new();
            let r = execute(
                &cfg,
                &h,
                &Log::disabled(),
                &Interrupt::new(),
                &mut make,
                &mut out,
            );
            let out = String::from_utf8(out).unwrap();
            r.unwrap_or_else(|e| panic!("{e}\n{out}"));
            out
        };
        let whole = vec![StepName::Filesystem, StepName::Verify];
        // The first run changes something before the verify: it checks.
        let out = go(whole.clone(), false);
        assert!(out.contains("done (1 change)"), "{out}");
        assert!(!out.contains("not repeated"), "{out}");
        // The rerun changes nothing: the verify relies on the check just done.
        let out = go(whole.clone(), false);
        assert!(out.contains("not repeated"), "{out}");
        assert!(!out.contains("change)"), "no change counted: {out}");
        // `run --only verify` checks again.
        let out = go(vec![StepName::Verify], true);
        assert!(
            out.contains("done (1 change)") && !out.contains("not repeated"),
            "{out}"
        );
        // A change before it: checks again.
        change.set(true);
        let out = go(whole, false);
        assert!(!out.contains("not repeated"), "{out}");
    }
}
