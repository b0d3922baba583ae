//! The verify step: write a test file on the mounted volume with O_DIRECT, each 4 KiB
//! sector stamped with its offset, a per-run seed and a checksum; fsync; read it back with
//! O_DIRECT and check every sector; remove it. Unlike the vendor's copy-back-and-diff, which
//! compares page-cache pages and passes without reading the array at all, the read-back here
//! comes from the device. The result (bytes, MB/s each way, first bad offset) goes on the
//! worksheet. The same check runs alone as `iser-wizard verify MOUNTPOINT`.

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
}

#[derive(Debug, Deserialize)]
struct Findmnt {
    filesystems: Vec<FindmntFs>,
}

#[derive(Debug, Deserialize)]
struct FindmntFs {
    source: String,
}

/// The device mounted exactly at `mount_point`, if any (`findmnt --mountpoint`).
pub fn mounted_source(
    host: &dyn crate::steps::Host,
    mount_point: &str,
) -> Result<Option<String>, StepError> {
    let out = host.run(&Cmd::probe([
        "findmnt",
        "-J",
        "-o",
        "SOURCE",
        "--mountpoint",
        mount_point,
    ]))?;
    if !out.success() {
        return Ok(None);
    }
    Ok(serde_json::from_str::<Findmnt>(&out.stdout)
        .ok()
        .and_then(|f| f.filesystems.into_iter().next())
        .map(|f| f.source))
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

/// The worksheet record of a report.
pub fn record(r: &VerifyReport) -> VerificationRecord {
    VerificationRecord {
        bytes: r.bytes,
        result: match &r.outcome {
            VerifyOutcome::Passed => "passed".into(),
            VerifyOutcome::Failed { first, .. } => format!("failed at {first}"),
        },
        write_mb_s: Some(r.write_mb_s),
        read_mb_s: Some(r.read_mb_s),
    }
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
        let mut plan = Plan::new(StepName::Verify);
        for (i, mp) in self.mount_points.iter().enumerate() {
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
        let source = mounted_source(cx.host, &mount_point)?.ok_or_else(|| {
            StepError::Failed(format!(
                "nothing is mounted on {mount_point}: the verify writes only to the volume"
            ))
        })?;
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
            cx.sheet.verification = Some(record(&report));
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
        for (mp, r) in self.mount_points.iter().zip(&self.reports) {
            match r {
                Some(r) if r.passed() => {}
                Some(r) => return Err(StepError::Failed(format!("{mp}: {}", summary(r)))),
                None => return Err(StepError::Failed(format!("the verify of {mp} did not run"))),
            }
        }
        Ok(())
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
                &["findmnt", "-J", "-o", "SOURCE", "--mountpoint", mp],
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
            &["findmnt", "-J", "-o", "SOURCE", "--mountpoint", "/mnt/a2"],
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
            &["findmnt", "-J", "-o", "SOURCE", "--mountpoint", "/mnt/data"],
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
            &["findmnt", "-J", "-o", "SOURCE", "--mountpoint", "/mnt/data"],
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
            &["findmnt", "-J", "-o", "SOURCE", "--mountpoint", "/mnt/data"],
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
}
