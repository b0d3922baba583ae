//! `iser-wizard bench`: the measurement method of METHOD.md on the attached, mounted volume.
//!
//! Contract:
//! - The volume is one of [`Facts::attached_volumes`] (the only way the attached volumes are
//!   read); it must be mounted (else refused, exit 3) and its filesystem must hold the test
//!   file with room to spare (else refused, exit 3). No attached volume is a usage error
//!   (exit 2). Nothing is written to the device itself: fio writes one test file under the
//!   mount point, which is removed afterwards, on error and on interruption alike.
//! - Each of the four [`fio::Workload`]s runs N times (one fio process per run, with a
//!   ramp before measuring). Each run's value is kept, one per line, in
//!   `<state>/bench/<label>/<workload>.txt` (plain `ministat` reads it), fio's JSON beside it
//!   as `<workload>-<run>.json`, and the whole result as `bench.json` ([`BenchRecord`]).
//! - Per workload the output has ministat's Vitals line (from `stats`, not recomputed here),
//!   the median as a percentage of the data rate of the host ports that carry the active
//!   paths ([`linerate`]; never a failure when unknown), the p99 completion latency (the
//!   median of the runs'), and the per-path balance ([`paths`]) from the block counters
//!   around the workload's runs.
//! - `--compare A B` prints ministat's comparison of two kept benches per workload.
//!
//! The work on the host goes through the `Host` seam (fio and multipath are commands; sysfs
//! is read with `Host::read`), so the whole bench runs against the recording fake in tests.

pub mod fio;
pub mod linerate;
pub mod paths;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Args;
use serde::{Deserialize, Serialize};

use crate::exit::WizardError;
use crate::state::StateDir;
use crate::stats::{self, Dataset, Mode};
use crate::steps::facts::{Facts, VolumeFact};
use crate::steps::host::{Host, HostError};
use crate::steps::parse::multipath::parse_multipath_ll;
use crate::steps::{Cmd, StepError};

use self::fio::Workload;
use self::linerate::PortRate;
use self::paths::{Balance, DiskStat, Layout};

/// Smallest test file the bench will use: below this, a 1 MiB workload with 4 jobs measures
/// the filesystem's metadata more than the volume.
pub const MIN_FILE: u64 = 64 << 20;
/// Test file size unless `--size` says otherwise (halved until it fits in half the free
/// space, down to [`MIN_FILE`]).
pub const DEFAULT_FILE: u64 = 1 << 30;

/// Flags of `bench`.
#[derive(Debug, Args, Clone)]
pub struct BenchFlags {
    /// Runs per workload (at least 3, which ministat needs).
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub runs: usize,
    /// Seconds measured per run.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub runtime: u32,
    /// Seconds of ramp before each run's measurement (not counted).
    #[arg(long, value_name = "SECS", default_value_t = 5)]
    pub ramp: u32,
    /// Name the bench is kept under (default: the time it starts, `20261202-013000`).
    #[arg(long, value_name = "LABEL")]
    pub label: Option<String>,
    /// The volume to measure, by mount point (default: the one attached volume).
    #[arg(long, value_name = "DIR")]
    pub mount_point: Option<String>,
    /// Size of the test file (MiB or GiB; default 1GiB, less on a small filesystem).
    #[arg(long, value_name = "SIZE")]
    pub size: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
    /// Compare two kept benches with ministat, per workload (the first is the reference).
    #[arg(long, num_args = 2, value_names = ["LABEL_A", "LABEL_B"])]
    pub compare: Option<Vec<String>>,
    /// Root of the files read and written (default `/`).
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
    /// State directory of the run.
    #[arg(long, value_name = "DIR", default_value = crate::cli::DEFAULT_STATE_DIR)]
    pub state_dir: PathBuf,
}

/// Why a bench did not complete.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// No attached volume is recorded, or none at the mount point asked for.
    #[error("{0}")]
    NoVolume(String),
    /// The volume is not mounted: the bench writes only through a filesystem.
    #[error("{0} is not mounted: the bench writes only to a test file under the mount point, never to the device; mount it (or run `iser-wizard run --only filesystem`)")]
    NotMounted(String),
    /// Not enough free space for the test file.
    #[error("{mount_point} has {free} MiB free; the bench needs a {need} MiB test file and as much again to spare")]
    NoSpace {
        /// The mount point.
        mount_point: String,
        /// Free MiB.
        free: u64,
        /// The test file's MiB.
        need: u64,
    },
    /// A command failed, fio's report was unreadable, or the host refused.
    #[error(transparent)]
    Step(#[from] StepError),
    /// fio's report was unreadable.
    #[error("{workload} run {run}: {source}")]
    Fio {
        /// The workload.
        workload: Workload,
        /// 1-based run.
        run: usize,
        /// Why.
        source: fio::FioError,
    },
    /// Keeping the results failed.
    #[error("keeping the results in {path}: {source}")]
    Keep {
        /// Where.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The operator interrupted the bench.
    #[error("interrupted")]
    Interrupted,
}

impl From<HostError> for BenchError {
    fn from(e: HostError) -> Self {
        match e {
            HostError::Interrupted => BenchError::Interrupted,
            e => BenchError::Step(StepError::Host(e)),
        }
    }
}

impl BenchError {
    /// The wizard's error, with its exit code (CONTRACT.md).
    pub fn into_wizard(self) -> WizardError {
        match self {
            BenchError::NoVolume(m) => WizardError::Usage(m),
            e @ (BenchError::NotMounted(_) | BenchError::NoSpace { .. }) => {
                WizardError::Refused(format!("bench: {e}"))
            }
            BenchError::Interrupted => WizardError::CommandInterrupted(
                "bench stopped; its test file was removed and nothing was kept".into(),
            ),
            e => WizardError::Other(anyhow::anyhow!("bench: {e}")),
        }
    }
}

/// What is measured: the volume, its map and paths, the ports under it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Target {
    /// Mount point.
    pub mount_point: String,
    /// Multipath WWID.
    pub wwid: String,
    /// The map's block device and its path groups.
    pub layout: Layout,
    /// The host ports that carry the active paths (all ports when that is not known).
    pub ports: Vec<PortRate>,
}

/// One workload's results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkloadResult {
    /// The workload.
    pub workload: Workload,
    /// What its values count.
    pub unit: fio::Unit,
    /// Each run's value, in run order.
    pub values: Vec<f64>,
    /// ministat's median of the values.
    pub median: f64,
    /// The median's data rate in percent of the link's, when the link's is known.
    pub pct_of_link: Option<f64>,
    /// The median of the runs' p99 completion latencies, in nanoseconds.
    pub p99_ns: Option<f64>,
    /// The per-path balance over the workload's runs.
    pub balance: Balance,
}

/// A kept bench (`bench.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchRecord {
    /// Its label.
    pub label: String,
    /// When it started (RFC 3339, UTC).
    pub started_at: String,
    /// What was measured.
    pub target: Target,
    /// The sum of the ports' data rates in Gb/s, when known.
    pub link_gbps: Option<f64>,
    /// Runs per workload.
    pub runs: usize,
    /// Seconds measured per run.
    pub runtime: u32,
    /// Seconds of ramp per run.
    pub ramp: u32,
    /// Test file size in bytes.
    pub file_bytes: u64,
    /// The workloads, in [`Workload::ALL`]'s order.
    pub workloads: Vec<WorkloadResult>,
}

/// How a bench runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Runs per workload.
    pub runs: usize,
    /// Seconds measured.
    pub runtime: u32,
    /// Seconds of ramp.
    pub ramp: u32,
    /// Test file size in bytes, or `None` for the default sizing.
    pub size: Option<u64>,
    /// CPUs for the random workloads' job count.
    pub cpus: usize,
    /// The workloads to run.
    pub workloads: Vec<Workload>,
}

/// The volume to measure among the attached ones.
pub fn choose_volume<'a>(
    facts: &'a Facts,
    mount_point: Option<&str>,
) -> Result<&'a VolumeFact, BenchError> {
    let attached = facts.attached_volumes();
    if attached.is_empty() {
        return Err(BenchError::NoVolume(
            "no attached volume is recorded in the state directory: attach one with \
             `iser-wizard run` first (or give --state-dir)"
                .into(),
        ));
    }
    match mount_point {
        Some(mp) => attached
            .into_iter()
            .find(|v| v.mount_point.as_deref() == Some(mp))
            .ok_or_else(|| {
                BenchError::NoVolume(format!(
                    "--mount-point {mp}: no attached volume is recorded there"
                ))
            }),
        None if attached.len() == 1 => Ok(attached[0]),
        None => Err(BenchError::NoVolume(format!(
            "{} volumes are attached: choose one with --mount-point ({})",
            attached.len(),
            attached
                .iter()
                .filter_map(|v| v.mount_point.clone())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

fn read_trim(host: &dyn Host, path: &str) -> Option<String> {
    host.read(Path::new(path))
        .ok()
        .flatten()
        .map(|s| s.trim().to_string())
}

/// The data rates of the host ports that carry the paths of `devs` (every recorded port
/// when none of them can be told).
pub fn port_rates(host: &dyn Host, facts: &Facts, devs: &[String]) -> Vec<PortRate> {
    let netdevs: Vec<&str> = facts
        .multipath
        .paths
        .iter()
        .filter(|p| devs.contains(&p.dev))
        .filter_map(|p| p.iface.as_deref())
        .filter_map(|i| facts.ifaces.iter().find(|f| f.name == i))
        .map(|f| f.netdev.as_str())
        .collect();
    facts
        .ports
        .iter()
        .filter(|p| netdevs.is_empty() || netdevs.contains(&p.netdev.as_str()))
        .map(|p| {
            let rdma = match (&p.rdma_device, p.rdma_port) {
                (Some(d), Some(n)) => Some(format!("/sys/class/infiniband/{d}/ports/{n}")),
                _ => None,
            };
            let rate = rdma
                .as_ref()
                .and_then(|r| read_trim(host, &format!("{r}/rate")));
            let ll = p.link_layer.clone().or_else(|| {
                rdma.as_ref()
                    .and_then(|r| read_trim(host, &format!("{r}/link_layer")))
            });
            let speed = read_trim(host, &format!("/sys/class/net/{}/speed", p.netdev));
            linerate::port_rate(&p.netdev, rate.as_deref(), ll.as_deref(), speed.as_deref())
        })
        .collect()
}

/// Find what to measure: the volume, mounted, its map's layout and the ports under it.
pub fn resolve(
    host: &dyn Host,
    facts: &Facts,
    mount_point: Option<&str>,
) -> Result<Target, BenchError> {
    let v = choose_volume(facts, mount_point)?;
    let wwid = v.wwid.clone().unwrap_or_default();
    let mp = v.mount_point.clone().ok_or_else(|| {
        BenchError::NoVolume(format!(
            "the attached volume {wwid} has no mount point recorded: the bench measures \
             through a filesystem"
        ))
    })?;
    if crate::steps::verify::mounted_source(host, &mp)?.is_none() {
        return Err(BenchError::NotMounted(mp));
    }
    let cmd = Cmd::probe(["multipath", "-ll", wwid.as_str()]);
    let out = host.run(&cmd)?;
    let maps = parse_multipath_ll(&out.stdout);
    let map = maps
        .iter()
        .find(|m| m.wwid == wwid)
        .ok_or_else(|| StepError::command(&cmd, &out, Some(format!("no map of {wwid}"))))?;
    let dm = map
        .dm
        .clone()
        .ok_or_else(|| StepError::Failed(format!("multipath names no dm device for {wwid}")))?;
    let layout = paths::layout_of(&dm, map);
    let active = layout
        .groups
        .iter()
        .find(|g| g.status == "active")
        .or(layout.groups.first())
        .map(|g| g.paths.clone())
        .unwrap_or_default();
    let ports = port_rates(host, facts, &active);
    Ok(Target {
        mount_point: mp,
        wwid,
        layout,
        ports,
    })
}

/// Free bytes of the filesystem holding `dir` (as an unprivileged user could use them).
fn free_bytes(dir: &Path) -> std::io::Result<u64> {
    let s = rustix::fs::statvfs(dir).map_err(std::io::Error::from)?;
    Ok(s.f_bavail.saturating_mul(s.f_frsize))
}

/// The test file's size: the one asked for if half the free space holds it, else the default
/// halved until it does; refused below [`MIN_FILE`] or when the asked size does not fit.
pub fn file_size(asked: Option<u64>, free: u64, mount_point: &str) -> Result<u64, BenchError> {
    let room = free / 2;
    let refuse = |need: u64| BenchError::NoSpace {
        mount_point: mount_point.to_string(),
        free: free >> 20,
        need: need >> 20,
    };
    match asked {
        Some(s) if s <= room => Ok(s),
        Some(s) => Err(refuse(s)),
        None => {
            let mut s = DEFAULT_FILE;
            while s > room && s > MIN_FILE {
                s /= 2;
            }
            if s <= room {
                Ok(s)
            } else {
                Err(refuse(MIN_FILE))
            }
        }
    }
}

/// The test file's path on the host, and as the target system names it.
fn test_file(host: &dyn Host, mount_point: &str) -> (PathBuf, String) {
    let name = format!(
        "{}/.iser-wizard-bench.{}",
        mount_point.trim_end_matches('/'),
        std::process::id()
    );
    let real = host.root().join(name.trim_start_matches('/'));
    (real, name)
}

fn snapshot(host: &dyn Host, devs: &[String]) -> BTreeMap<String, DiskStat> {
    devs.iter()
        .filter_map(|d| {
            let text = host
                .read(Path::new(&format!("/sys/block/{d}/stat")))
                .ok()??;
            Some((d.clone(), DiskStat::parse(&text)?))
        })
        .collect()
}

/// The median of some values (of the p99 latencies, which ministat does not judge; and of
/// fewer than 3 values, which it refuses).
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.is_empty() {
        f64::NAN
    } else if v.len() % 2 == 0 {
        (v[m] + v[m - 1]) / 2.0
    } else {
        v[m]
    }
}

/// The values as a file plain ministat reads: one a line.
pub fn values_text(values: &[f64]) -> String {
    values.iter().map(|v| format!("{v}\n")).collect()
}

/// Where a label's bench is kept.
pub fn bench_dir(state_dir: &Path, label: &str) -> PathBuf {
    state_dir.join("bench").join(label)
}

/// A label is a plain file name: letters, digits, `.`, `_`, `-`, not starting with `.`.
pub fn check_label(label: &str) -> Result<(), String> {
    let ok = !label.is_empty()
        && label.len() <= 64
        && !label.starts_with('.')
        && label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "--label {label:?}: use letters, digits, '.', '_' and '-' (at most 64, not starting with '.')"
        ))
    }
}

/// Progress of a bench: called before each run with (workload, 1-based run).
pub type OnRun<'a> = dyn FnMut(Workload, usize) + 'a;

/// A test file laid out on the volume, for one bench or several (tune).
#[derive(Debug)]
pub struct TestFile {
    /// Its path on this machine.
    pub real: PathBuf,
    /// Its path on the target system, as fio is given it.
    pub file: String,
    /// Its size in bytes.
    pub size: u64,
}

impl Drop for TestFile {
    fn drop(&mut self) {
        // The test file goes in every case; fio killed by an interruption may leave it.
        let _ = std::fs::remove_file(&self.real);
    }
}

/// Size the test file for the filesystem's free space, and fill it with data. Dropping
/// the result removes the file.
pub fn prepare(host: &dyn Host, target: &Target, plan: &Plan) -> Result<TestFile, BenchError> {
    let (real, file) = test_file(host, &target.mount_point);
    let mp_real = host.root().join(target.mount_point.trim_start_matches('/'));
    let free = free_bytes(&mp_real).map_err(|source| {
        StepError::Host(HostError::Io {
            op: "reading the free space of",
            path: PathBuf::from(&target.mount_point),
            source,
        })
    })?;
    let size = file_size(plan.size, free, &target.mount_point)?;
    let t = TestFile { real, file, size };
    // Write the whole file once, before any counter is read: a file fio only allocates
    // (fallocate: unwritten extents) reads back as zeros without touching the device, which
    // would measure the filesystem, not the volume; and the first workload's balance must
    // not be the layout's writes.
    fio(host, layout_argv(&t.file, size), 0)?;
    Ok(t)
}

/// Run the bench on `target`, keeping everything under `keep` (created). The test file is
/// removed whatever happens.
pub fn run(
    host: &dyn Host,
    target: &Target,
    plan: &Plan,
    label: &str,
    keep: &Path,
    on_run: &mut OnRun<'_>,
) -> Result<BenchRecord, BenchError> {
    let started_at = crate::steps::timefmt::now_rfc3339();
    let t = prepare(host, target, plan)?;
    let workloads = measure(host, target, plan, &t, keep, on_run)?;
    let file_bytes = t.size;
    drop(t);
    Ok(BenchRecord {
        label: label.to_string(),
        started_at,
        target: target.clone(),
        link_gbps: linerate::total_gbps(&target.ports),
        runs: plan.runs,
        runtime: plan.runtime,
        ramp: plan.ramp,
        file_bytes,
        workloads,
    })
}

/// Run each of the plan's workloads once for `seconds`, its result discarded: the queues,
/// the paths and the array's cache are warm before the first measured run.
pub fn warm_up(host: &dyn Host, plan: &Plan, t: &TestFile, seconds: u32) -> Result<(), BenchError> {
    for &w in &plan.workloads {
        fio(
            host,
            w.argv(&t.file, t.size, seconds, 0, plan.cpus),
            seconds,
        )?;
    }
    Ok(())
}

/// fio's command line that fills the test file with data, sequentially and past the cache.
pub fn layout_argv(file: &str, size: u64) -> Vec<String> {
    [
        "fio",
        "--name=layout",
        &format!("--filename={file}"),
        &format!("--size={size}"),
        "--rw=write",
        "--bs=1M",
        "--iodepth=16",
        "--direct=1",
        "--ioengine=libaio",
        "--fallocate=none",
    ]
    .map(String::from)
    .to_vec()
}

fn fio(host: &dyn Host, argv: Vec<String>, seconds: u32) -> Result<String, BenchError> {
    // fio's own time plus its file layout and start-up, with a wide margin for a slow array.
    let cmd = Cmd::change(argv).timeout(Duration::from_secs(u64::from(seconds) + 300));
    let out = host.run(&cmd)?;
    if !out.success() {
        return Err(StepError::command(&cmd, &out, None).into());
    }
    Ok(out.stdout)
}

/// Run the plan's workloads on a prepared test file, keeping each run's JSON and each
/// workload's values under `keep` (created).
pub fn measure(
    host: &dyn Host,
    target: &Target,
    plan: &Plan,
    t: &TestFile,
    keep: &Path,
    on_run: &mut OnRun<'_>,
) -> Result<Vec<WorkloadResult>, BenchError> {
    let (file, size) = (t.file.as_str(), t.size);
    std::fs::create_dir_all(keep).map_err(|source| BenchError::Keep {
        path: keep.to_path_buf(),
        source,
    })?;
    let keep_err = |path: PathBuf| move |source| BenchError::Keep { path, source };
    let devs = target.layout.devices();
    let mut results = Vec::new();
    for &w in &plan.workloads {
        let before = snapshot(host, &devs);
        let t0 = Instant::now();
        let mut values = Vec::new();
        let mut p99s = Vec::new();
        for run in 1..=plan.runs {
            on_run(w, run);
            let argv = w.argv(file, size, plan.runtime, plan.ramp, plan.cpus);
            let stdout = fio(host, argv, plan.runtime + plan.ramp)?;
            let json = keep.join(format!("{}-{run}.json", w.name()));
            std::fs::write(&json, &stdout).map_err(keep_err(json.clone()))?;
            let m = fio::parse(w, &stdout).map_err(|source| BenchError::Fio {
                workload: w,
                run,
                source,
            })?;
            values.push(m.value);
            p99s.extend(m.p99_ns);
        }
        let seconds = t0.elapsed().as_secs_f64();
        let after = snapshot(host, &devs);
        let txt = keep.join(format!("{}.txt", w.name()));
        std::fs::write(&txt, values_text(&values)).map_err(keep_err(txt.clone()))?;
        let med = ministat_median(&values).unwrap_or_else(|| median(&values));
        let link = linerate::total_gbps(&target.ports);
        results.push(WorkloadResult {
            workload: w,
            unit: w.unit(),
            pct_of_link: link
                .filter(|g| *g > 0.0)
                .map(|g| w.bits_per_second(med) * 100.0 / (g * 1e9)),
            p99_ns: (!p99s.is_empty()).then(|| median(&p99s)),
            median: med,
            balance: paths::balance(&target.layout, &before, &after, seconds),
            values,
        });
    }
    Ok(results)
}

/// ministat's Vitals header and the line of one workload (from `stats`, not recomputed).
pub fn vitals(name: &str, values: &[f64]) -> Option<(String, String)> {
    let ds = Dataset::parse(name, values_text(values).as_bytes()).ok()?;
    let opts = stats::Options {
        plot: false,
        compare: false,
        ..stats::Options::default()
    };
    let text = stats::render(&[ds], &opts);
    let mut lines = text.lines().skip(1);
    Some((lines.next()?.to_string(), lines.next()?.to_string()))
}

/// A rate in SI units with 3 significant figures (`1.32 GB/s`, `145k IOPS`).
pub fn si(v: f64, unit: &str) -> String {
    let (d, p) = [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")]
        .into_iter()
        .find(|(d, _)| v.abs() >= *d)
        .unwrap_or((1.0, ""));
    let x = v / d;
    let digits = if x >= 100.0 {
        0
    } else if x >= 10.0 {
        1
    } else {
        2
    };
    format!("{x:.digits$} {p}{unit}")
}

/// A percentage with one decimal, or three significant figures below 1% (a slow link's
/// worst case must not print as 0.0%).
pub fn percent(p: f64) -> String {
    if p >= 1.0 || p == 0.0 {
        format!("{p:.1}")
    } else {
        crate::cfmt::g(p, 0, 3)
    }
}

/// A latency in nanoseconds, in the unit that reads best.
pub fn latency(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.0} us", ns / 1e3)
    }
}

/// The per-path lines of a balance.
pub fn balance_lines(b: &Balance) -> Vec<String> {
    let cell = |r: &paths::PathRate| match (r.ios_per_s, r.bytes_per_s) {
        (Some(i), Some(by)) => format!("{:>11} {:>11}", si(i, "IO/s"), si(by, "B/s")),
        _ => "   (not counted: the device came or went)".to_string(),
    };
    let mut out = Vec::new();
    for (i, g) in b.groups.iter().enumerate() {
        out.push(format!(
            "path group {} ({}{}):",
            i + 1,
            if g.status.is_empty() { "?" } else { &g.status },
            g.prio.map(|p| format!(", prio {p}")).unwrap_or_default()
        ));
        for p in &g.paths {
            out.push(format!(
                "  {:<8} {}{}",
                p.dev,
                cell(p),
                p.share_pct
                    .map(|s| format!(" {s:5.1}%"))
                    .unwrap_or_default()
            ));
        }
    }
    out.push(format!("map {:<6} {}", b.map.dev, cell(&b.map)));
    if let Some(why) = &b.imbalance {
        out.push(format!("WARNING: {why}"));
    }
    out
}

/// The bench as the operator reads it.
pub fn render(r: &BenchRecord) -> String {
    let mut out = String::new();
    let paths: usize = r.target.layout.groups.iter().map(|g| g.paths.len()).sum();
    out.push_str(&format!(
        "bench {} on {} ({}, {} paths): {} runs x {} s after a {} s ramp, test file {} MiB\n",
        r.label,
        r.target.mount_point,
        r.target.layout.map,
        paths,
        r.runs,
        r.runtime,
        r.ramp,
        r.file_bytes >> 20
    ));
    let ports: Vec<String> = r
        .target
        .ports
        .iter()
        .map(|p| format!("{}: {}", p.netdev, p.basis))
        .collect();
    let ports = if ports.is_empty() {
        "no host port is recorded".to_string()
    } else {
        ports.join("; ")
    };
    out.push_str(&match r.link_gbps {
        Some(g) => format!("link: {g:.2} Gb/s of data ({ports})\n"),
        None => format!("link: data rate not known ({ports})\n"),
    });
    // The paths' rates span each workload's wall time, ramps and fio's start included: they
    // read a little below fio's figures; the shares are what to compare.
    out.push_str("per-path rates are over each workload's wall time (ramps included)\n");
    for w in &r.workloads {
        out.push('\n');
        out.push_str(&format!("{} ({})\n", w.workload, w.unit.label()));
        if let Some((head, line)) = vitals(w.workload.name(), &w.values) {
            out.push_str(&format!("{head}\n{line}\n"));
        }
        let rate = si(w.workload.bits_per_second(w.median), "b/s");
        let pct = w
            .pct_of_link
            .map(|p| format!(", {}% of the link", percent(p)))
            .unwrap_or_default();
        let p99 = w
            .p99_ns
            .map(|ns| format!("; p99 latency {}", latency(ns)))
            .unwrap_or_default();
        out.push_str(&format!(
            "median {} = {rate}{pct}{p99}\n",
            si(w.median, w.unit.label())
        ));
        for l in balance_lines(&w.balance) {
            out.push_str(&format!("  {l}\n"));
        }
    }
    out
}

/// The bench as the worksheet records it.
pub fn sheet(r: &BenchRecord) -> crate::worksheets::BenchSheet {
    crate::worksheets::BenchSheet {
        label: r.label.clone(),
        started_at: r.started_at.clone(),
        mount_point: r.target.mount_point.clone(),
        link: r.link_gbps.map(|g| format!("{g:.2} Gb/s")),
        runs: format!("{} x {} s", r.runs, r.runtime),
        workloads: r
            .workloads
            .iter()
            .map(|w| {
                let mut balance: Vec<String> = w
                    .balance
                    .groups
                    .iter()
                    .flat_map(|g| &g.paths)
                    .map(|p| match p.share_pct {
                        Some(s) => format!("{} {s:.1}%", p.dev),
                        None => format!("{} -", p.dev),
                    })
                    .collect();
                balance.extend(w.balance.imbalance.clone());
                crate::worksheets::BenchWorkloadRecord {
                    workload: w.workload.name().to_string(),
                    unit: w.unit.label().to_string(),
                    values: w.values.clone(),
                    median: si(w.median, w.unit.label()),
                    pct_of_link: w.pct_of_link,
                    p99: w.p99_ns.map(latency),
                    balance,
                }
            })
            .collect(),
    }
}

/// Read a kept bench.
pub fn load(state_dir: &Path, label: &str) -> Result<BenchRecord, WizardError> {
    check_label(label).map_err(WizardError::Usage)?;
    let path = bench_dir(state_dir, label).join("bench.json");
    let text = std::fs::read_to_string(&path).map_err(|e| {
        WizardError::Usage(format!(
            "no kept bench {label:?} ({}: {e}); kept benches are under {}",
            path.display(),
            state_dir.join("bench").display()
        ))
    })?;
    serde_json::from_str(&text)
        .map_err(|e| WizardError::Other(anyhow::anyhow!("reading {}: {e}", path.display())))
}

/// ministat's comparison of two kept benches, per workload (A is the reference).
pub fn compare_text(a: &BenchRecord, b: &BenchRecord) -> Result<String, WizardError> {
    let mut out = String::new();
    for wa in &a.workloads {
        let Some(wb) = b.workloads.iter().find(|w| w.workload == wa.workload) else {
            out.push_str(&format!("{}: not in {}\n\n", wa.workload, b.label));
            continue;
        };
        let set = |r: &BenchRecord, w: &WorkloadResult| {
            Dataset::parse(
                &format!("{}/{}", r.label, w.workload),
                values_text(&w.values).as_bytes(),
            )
            .map_err(|e| WizardError::Usage(format!("{}: {e}", r.label)))
        };
        let sets = [set(a, wa)?, set(b, wb)?];
        out.push_str(&format!("{} ({})\n", wa.workload, wa.unit.label()));
        out.push_str(&stats::render(&sets, &stats::Options::default()));
        out.push('\n');
    }
    Ok(out)
}

/// The number of CPUs, for the random workloads' job count.
pub fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// A size given as `512MiB` or `1GiB`.
fn parse_size(s: &str) -> Result<u64, WizardError> {
    let t = s.trim();
    let (num, mult) = if let Some(n) = t.strip_suffix("GiB") {
        (n, 1u64 << 30)
    } else if let Some(n) = t.strip_suffix("MiB") {
        (n, 1u64 << 20)
    } else {
        (t, 0)
    };
    match num.trim().parse::<u64>() {
        Ok(n) if mult > 0 && n > 0 => n
            .checked_mul(mult)
            .filter(|b| *b >= MIN_FILE)
            .ok_or_else(|| WizardError::Usage(format!("--size {s:?}: at least 64MiB"))),
        _ => Err(WizardError::Usage(format!(
            "--size {s:?}: give a whole number of MiB or GiB, like 512MiB"
        ))),
    }
}

/// Validate the flags into a plan.
pub fn plan(f: &BenchFlags) -> Result<Plan, WizardError> {
    if f.runs < 3 {
        return Err(WizardError::Usage(format!(
            "--runs {}: at least 3 (ministat needs 3 values to compare)",
            f.runs
        )));
    }
    if f.runtime == 0 {
        return Err(WizardError::Usage("--runtime 0: at least 1 second".into()));
    }
    Ok(Plan {
        runs: f.runs,
        runtime: f.runtime,
        ramp: f.ramp,
        size: f.size.as_deref().map(parse_size).transpose()?,
        cpus: cpus(),
        workloads: Workload::ALL.to_vec(),
    })
}

/// A default label: the UTC time, `20261202-013000`.
pub fn default_label() -> String {
    let t = crate::steps::timefmt::now_rfc3339();
    t.replace(['-', ':'], "")
        .replace('T', "-")
        .trim_end_matches('Z')
        .to_string()
}

/// `iser-wizard bench`.
pub fn command(
    f: &BenchFlags,
    interrupt: crate::steps::host::Interrupt,
    out: &mut dyn Write,
) -> Result<(), WizardError> {
    if let Some(labels) = &f.compare {
        let a = load(&f.state_dir, &labels[0])?;
        let b = load(&f.state_dir, &labels[1])?;
        let text = compare_text(&a, &b)?;
        return out
            .write_all(text.as_bytes())
            .map_err(|e| WizardError::Other(e.into()));
    }
    let plan = plan(f)?;
    let label = f.label.clone().unwrap_or_else(default_label);
    check_label(&label).map_err(WizardError::Usage)?;
    if !f.state_dir.is_dir() {
        return Err(WizardError::Usage(format!(
            "--state-dir {}: no such directory; give the state directory of a run",
            f.state_dir.display()
        )));
    }
    let sd = StateDir::new(&f.state_dir);
    let keep = bench_dir(&f.state_dir, &label);
    if keep.exists() {
        return Err(WizardError::Usage(format!(
            "a bench {label:?} is already kept ({}): give another --label",
            keep.display()
        )));
    }
    let lock = sd.lock()?;
    let state = sd
        .load_state()
        .map_err(|e| WizardError::Other(anyhow::anyhow!("reading the state: {e}")))?;
    let log = std::sync::Arc::new(
        crate::steps::host::Log::open(&sd.log())
            .unwrap_or_else(|_| crate::steps::host::Log::disabled()),
    );
    let host = crate::steps::host::RealHost::new(f.root.clone(), None, log, interrupt);
    let target =
        resolve(&host, &state.facts, f.mount_point.as_deref()).map_err(BenchError::into_wizard)?;
    let bar = progress_bar((plan.runs * plan.workloads.len()) as u64, "bench", "runs");
    let mut started = 0;
    let mut on_run = |w: Workload, run: usize| {
        bar.set_message(format!("{w} run {run}/{}", plan.runs));
        bar.set_position(started);
        started += 1;
    };
    let result = run(&host, &target, &plan, &label, &keep, &mut on_run);
    bar.finish_and_clear();
    let record = match result {
        Ok(r) => r,
        Err(e) => {
            // Nothing half-kept: a later --compare must not read a bench cut short.
            let _ = std::fs::remove_dir_all(&keep);
            return Err(e.into_wizard());
        }
    };
    let json = serde_json::to_string_pretty(&record).map_err(|e| WizardError::Other(e.into()))?;
    crate::state::write_private(&keep.join("bench.json"), format!("{json}\n").as_bytes())
        .map_err(|e| WizardError::Other(anyhow::anyhow!("keeping bench.json: {e}")))?;
    // The last bench goes on the worksheet (CONTRACT.md "Worksheet").
    let mut ws = sd
        .load_worksheet()
        .map_err(|e| WizardError::Other(anyhow::anyhow!("reading the worksheet: {e}")))?;
    ws.bench = Some(sheet(&record));
    sd.save_worksheet(&ws)
        .map_err(|e| WizardError::Other(anyhow::anyhow!("saving the worksheet: {e}")))?;
    drop(lock);
    let text = if f.json {
        format!("{json}\n")
    } else {
        render(&record)
    };
    out.write_all(text.as_bytes())
        .map_err(|e| WizardError::Other(e.into()))
}

/// An indicatif bar over `len` steps counted as `what`, drawn only on a terminal.
pub fn progress_bar(len: u64, prefix: &str, what: &str) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    let bar = indicatif::ProgressBar::new(len);
    if std::io::stderr().is_terminal() {
        bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        bar.enable_steady_tick(Duration::from_millis(200));
    } else {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            &format!("{prefix}: {{msg}} [{{bar:30}}] {{pos}}/{{len}} {what}, {{elapsed}} (about {{eta}} left)"),
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar
}

/// ministat's median of a workload's values (`None` below its 3 points).
pub fn ministat_median(values: &[f64]) -> Option<f64> {
    Dataset::parse("values", values_text(values).as_bytes())
        .ok()
        .map(|d| d.median(Mode::Current))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::steps::facts::{IfaceFact, MapPathFact, PortFact};
    use crate::steps::fake::FakeHost;
    use crate::steps::CmdOutput;

    const WWID: &str = "360014050c0ffe0012344abc9def00000";

    fn multipath_ll() -> String {
        format!(
            "{WWID} dm-0 LIO-ORG,FILEIO\n\
             size=512M features='1 queue_if_no_path' hwhandler='1 alua' wp=rw\n\
             `-+- policy='service-time 0' prio=50 status=active\n\
             \x20 |- 2:0:0:0 sda 8:0  active ready running\n\
             \x20 `- 3:0:0:0 sdc 8:32 active ready running\n"
        )
    }

    fn facts() -> Facts {
        let mut f = Facts {
            volumes: vec![VolumeFact {
                wwid: Some(WWID.into()),
                mount_point: Some("/mnt/v".into()),
                ..VolumeFact::default()
            }],
            ..Facts::default()
        };
        f.ports = vec![
            PortFact {
                netdev: "ib0".into(),
                rdma_device: Some("mlx5_0".into()),
                rdma_port: Some(1),
                ..PortFact::default()
            },
            PortFact {
                netdev: "ib1".into(),
                rdma_device: Some("mlx5_1".into()),
                rdma_port: Some(1),
                ..PortFact::default()
            },
            // A port no path of the volume goes through: not part of its link.
            PortFact {
                netdev: "ib2".into(),
                rdma_device: Some("mlx5_2".into()),
                rdma_port: Some(1),
                ..PortFact::default()
            },
        ];
        f.ifaces = ["ib0", "ib1", "ib2"]
            .iter()
            .map(|n| IfaceFact {
                name: format!("iface-{n}"),
                netdev: n.to_string(),
                address: String::new(),
            })
            .collect();
        f.multipath.paths = [("sda", "ib0"), ("sdc", "ib1")]
            .iter()
            .map(|(d, n)| MapPathFact {
                dev: d.to_string(),
                state: "active ready running".into(),
                iface: Some(format!("iface-{n}")),
                portal: None,
            })
            .collect();
        f
    }

    fn host(mounted: bool) -> FakeHost {
        let h = FakeHost::new();
        h.put_file("/mnt/v/lost+found/.keep", "");
        let cmd = crate::steps::verify::mounted_fs_cmd("/mnt/v");
        let findmnt: Vec<&str> = cmd.argv.iter().map(String::as_str).collect();
        if mounted {
            h.allow(
                &findmnt,
                CmdOutput::ok(r#"{"filesystems":[{"source":"/dev/mapper/mpatha"}]}"#),
            );
        } else {
            h.allow(&findmnt, CmdOutput::status(1, "", ""));
        }
        h.allow(&["multipath", "-ll", WWID], CmdOutput::ok(multipath_ll()));
        for (dev, rate) in [("mlx5_0", "100"), ("mlx5_1", "100"), ("mlx5_2", "200")] {
            h.put_file(
                &format!("/sys/class/infiniband/{dev}/ports/1/rate"),
                &format!(
                    "{rate} Gb/sec (4X {})\n",
                    if rate == "100" { "EDR" } else { "HDR" }
                ),
            );
        }
        for d in ["dm-0", "sda", "sdc"] {
            h.put_file(&format!("/sys/block/{d}/stat"), "1 0 8 0 1 0 8 0 0 0 0\n");
        }
        h
    }

    fn fixture(w: Workload) -> String {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/fio")
            .join(format!("{}.json", w.name()));
        std::fs::read_to_string(p).unwrap()
    }

    #[test]
    fn the_volume_is_chosen_among_the_attached_ones() {
        let mut f = Facts::default();
        let e = choose_volume(&f, None).unwrap_err();
        assert_eq!(e.into_wizard().exit_code(), 2);
        f.volumes = vec![VolumeFact {
            wwid: Some(WWID.into()),
            mount_point: Some("/mnt/v".into()),
            ..VolumeFact::default()
        }];
        assert!(choose_volume(&f, None).is_ok());
        assert!(choose_volume(&f, Some("/mnt/v")).is_ok());
        let e = choose_volume(&f, Some("/mnt/w")).unwrap_err();
        assert!(e.to_string().contains("/mnt/w"), "{e}");
    }

    #[test]
    fn a_volume_not_mounted_is_refused_with_exit_3() {
        let h = host(false);
        let e = resolve(&h, &facts(), None).unwrap_err();
        assert!(matches!(e, BenchError::NotMounted(_)), "{e}");
        assert_eq!(e.into_wizard().exit_code(), 3);
        assert!(h.changes().is_empty());
    }

    #[test]
    fn the_test_file_fits_in_half_the_free_space_or_is_refused() {
        let mib = 1u64 << 20;
        let cases: [(Option<u64>, u64, Option<u64>); 6] = [
            (None, 100 << 30, Some(DEFAULT_FILE)),
            (None, 1 << 30, Some(512 * mib)),
            (None, 300 * mib, Some(128 * mib)),
            (None, 100 * mib, None),
            (Some(256 * mib), 600 * mib, Some(256 * mib)),
            (Some(256 * mib), 500 * mib, None),
        ];
        for (asked, free, want) in cases {
            let got = file_size(asked, free, "/mnt/v");
            match want {
                Some(w) => assert_eq!(got.unwrap(), w, "{asked:?} {free}"),
                None => {
                    let e = got.unwrap_err();
                    assert!(matches!(e, BenchError::NoSpace { .. }), "{e}");
                    assert_eq!(e.into_wizard().exit_code(), 3);
                }
            }
        }
    }

    #[test]
    fn a_bench_runs_every_workload_keeps_its_values_and_removes_the_test_file() {
        let h = host(true);
        let target = resolve(&h, &facts(), None).unwrap();
        assert_eq!(target.layout.map, "dm-0");
        assert_eq!(
            target
                .ports
                .iter()
                .map(|p| p.netdev.as_str())
                .collect::<Vec<_>>(),
            ["ib0", "ib1"]
        );
        let plan = Plan {
            runs: 3,
            runtime: 5,
            ramp: 1,
            size: Some(MIN_FILE),
            cpus: 2,
            workloads: Workload::ALL.to_vec(),
        };
        let (real, file) = test_file(&h, "/mnt/v");
        std::fs::write(&real, "left by fio").unwrap();
        let layout = layout_argv(&file, MIN_FILE);
        let layout: Vec<&str> = layout.iter().map(String::as_str).collect();
        assert!(layout.contains(&"--direct=1") && layout.contains(&"--fallocate=none"));
        h.expect(&layout, CmdOutput::ok(""));
        for w in Workload::ALL {
            let argv = w.argv(&file, MIN_FILE, 5, 1, 2);
            let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
            h.allow(&argv, CmdOutput::ok(fixture(w)));
        }
        let keep = tempfile::tempdir().unwrap();
        let mut seen = Vec::new();
        let r = run(&h, &target, &plan, "t1", keep.path(), &mut |w, n| {
            seen.push((w, n))
        })
        .unwrap();
        h.finish();
        assert_eq!(seen.len(), 12);
        assert_eq!(
            h.ran()
                .iter()
                .filter(|c| c.starts_with("fio --name="))
                .count(),
            13
        );
        assert!(!real.exists(), "the test file is removed");
        assert_eq!(r.link_gbps, Some(200.0));
        let w = &r.workloads[0];
        assert_eq!(w.values, vec![145092.96901; 3]);
        assert_eq!(w.median, 145092.96901);
        let pct = w.pct_of_link.unwrap();
        assert!((pct - 145092.96901 * 4096.0 * 8.0 * 100.0 / 200e9).abs() < 1e-9);
        assert_eq!(w.p99_ns, Some(2965504.0));
        let kept = std::fs::read_to_string(keep.path().join("rand4k-read.txt")).unwrap();
        assert_eq!(kept, "145092.96901\n145092.96901\n145092.96901\n");
        assert!(keep.path().join("seq1m-write-3.json").exists());
        let text = render(&r);
        for want in [
            "    N           Min           Max        Median           Avg        Stddev",
            "x   3  145092.97  145092.97  145092.97  145092.97  0",
            "% of the link",
            "p99 latency 2.97 ms",
            "path group 1 (active, prio 50):",
            "  sda ",
            "map dm-0",
        ] {
            let want = want.split_whitespace().collect::<Vec<_>>().join(" ");
            let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
            assert!(flat.contains(&want), "{want:?} in\n{text}");
        }
    }

    #[test]
    fn a_failing_fio_stops_the_bench_and_still_removes_the_test_file() {
        let h = host(true);
        let target = resolve(&h, &facts(), None).unwrap();
        let (real, file) = test_file(&h, "/mnt/v");
        std::fs::write(&real, "x").unwrap();
        let layout = layout_argv(&file, MIN_FILE);
        let layout: Vec<&str> = layout.iter().map(String::as_str).collect();
        h.allow(
            &layout,
            CmdOutput::status(1, "", "fio: pid=0, err=28/file:No space left on device"),
        );
        let plan = Plan {
            runs: 3,
            runtime: 5,
            ramp: 1,
            size: Some(MIN_FILE),
            cpus: 2,
            workloads: Workload::ALL.to_vec(),
        };
        let keep = tempfile::tempdir().unwrap();
        let e = run(&h, &target, &plan, "t", keep.path(), &mut |_, _| {}).unwrap_err();
        assert!(e.to_string().contains("No space left"), "{e}");
        assert!(!real.exists());
        assert_eq!(e.into_wizard().exit_code(), 1);
    }

    #[test]
    fn two_kept_benches_compare_as_ministat_does() {
        let rec = |label: &str, values: &[f64]| BenchRecord {
            label: label.into(),
            started_at: String::new(),
            target: Target {
                mount_point: "/mnt/v".into(),
                wwid: WWID.into(),
                layout: Layout {
                    map: "dm-0".into(),
                    groups: vec![],
                },
                ports: vec![],
            },
            link_gbps: None,
            runs: values.len(),
            runtime: 5,
            ramp: 1,
            file_bytes: MIN_FILE,
            workloads: vec![WorkloadResult {
                workload: Workload::Rand4kRead,
                unit: fio::Unit::Iops,
                values: values.to_vec(),
                median: 0.0,
                pct_of_link: None,
                p99_ns: None,
                balance: Balance {
                    map: paths::PathRate {
                        dev: "dm-0".into(),
                        ios_per_s: None,
                        bytes_per_s: None,
                        share_pct: None,
                    },
                    groups: vec![],
                    imbalance: None,
                },
            }],
        };
        // METHOD.md's netbenches vector.
        let a = rec("a", &[729817.0, 723531.0, 728540.0, 727669.0, 721322.0]);
        let b = rec("b", &[735181.0, 735392.0, 735682.0, 733327.0, 736835.0]);
        let text = compare_text(&a, &b).unwrap();
        assert!(text.starts_with("rand4k-read (IOPS)\nx a/rand4k-read\n+ b/rand4k-read\n"));
        assert!(text.contains("\t9107.6 +/- 3928.6\n"), "{text}");
        assert!(text.contains("\t1.25419% +/- 0.547037%\n"), "{text}");
        assert!(text.contains("pooled s = 2693.69"), "{text}");
    }

    #[test]
    fn labels_are_plain_names() {
        for ok in ["20261202-013000", "before_tune", "a.b-c"] {
            assert!(check_label(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".hidden", "a/b", "..", "a b", &"x".repeat(65)] {
            assert!(check_label(bad).is_err(), "{bad}");
        }
        assert!(check_label(&default_label()).is_ok());
        assert_eq!(parse_size("512MiB").unwrap(), 512 << 20);
        assert_eq!(parse_size("2GiB").unwrap(), 2 << 30);
        assert!(parse_size("1MiB").is_err());
        assert!(parse_size("512").is_err());
    }
}
