//! The four fio workloads of METHOD.md, the command line that runs one of them, and the
//! parser of fio's JSON output.
//!
//! Contract: [`Workload::argv`] always asks for `direct=1`, `libaio`, `time_based`, a ramp,
//! `group_reporting` and JSON output, on the test file it is given (never a device);
//! [`parse`] reads the one number the method measures (`jobs[].read.iops`,
//! `jobs[].write.iops`, `jobs[].read.bw_bytes`, `jobs[].write.bw_bytes`, summed over the
//! jobs) and the 99th percentile of completion latency (the worst job's), from fio's whole
//! stdout (text fio prints before the JSON, such as warnings, is skipped).

use serde::{Deserialize, Serialize};

/// One workload of METHOD.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    /// 4 KiB random reads at high queue depth: the worst case, IOPS.
    Rand4kRead,
    /// 4 KiB random writes at high queue depth, IOPS.
    Rand4kWrite,
    /// 1 MiB sequential reads, bytes/s.
    Seq1mRead,
    /// 1 MiB sequential writes, bytes/s.
    Seq1mWrite,
}

/// The direction a workload measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `jobs[].read`.
    Read,
    /// `jobs[].write`.
    Write,
}

/// What a workload's value counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Unit {
    /// I/O operations per second.
    Iops,
    /// Bytes per second.
    BytesPerSecond,
}

impl Unit {
    /// As printed after a value.
    pub fn label(self) -> &'static str {
        match self {
            Unit::Iops => "IOPS",
            Unit::BytesPerSecond => "B/s",
        }
    }
}

impl Workload {
    /// Every workload, in the order they run and print.
    pub const ALL: [Workload; 4] = [
        Workload::Rand4kRead,
        Workload::Rand4kWrite,
        Workload::Seq1mRead,
        Workload::Seq1mWrite,
    ];

    /// The name used on screen, in file names and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Rand4kRead => "rand4k-read",
            Workload::Rand4kWrite => "rand4k-write",
            Workload::Seq1mRead => "seq1m-read",
            Workload::Seq1mWrite => "seq1m-write",
        }
    }

    /// The workload of a name.
    pub fn from_name(s: &str) -> Option<Workload> {
        Workload::ALL.into_iter().find(|w| w.name() == s)
    }

    /// fio's `rw`.
    pub fn rw(self) -> &'static str {
        match self {
            Workload::Rand4kRead => "randread",
            Workload::Rand4kWrite => "randwrite",
            Workload::Seq1mRead => "read",
            Workload::Seq1mWrite => "write",
        }
    }

    /// Block size in bytes.
    pub fn block_size(self) -> u64 {
        match self {
            Workload::Rand4kRead | Workload::Rand4kWrite => 4096,
            Workload::Seq1mRead | Workload::Seq1mWrite => 1 << 20,
        }
    }

    /// Which side of fio's job record holds the figures.
    pub fn direction(self) -> Direction {
        match self {
            Workload::Rand4kRead | Workload::Seq1mRead => Direction::Read,
            Workload::Rand4kWrite | Workload::Seq1mWrite => Direction::Write,
        }
    }

    /// What the value counts.
    pub fn unit(self) -> Unit {
        match self {
            Workload::Rand4kRead | Workload::Rand4kWrite => Unit::Iops,
            Workload::Seq1mRead | Workload::Seq1mWrite => Unit::BytesPerSecond,
        }
    }

    /// `(iodepth, numjobs)`: 32 per job with one job per CPU (at most 8) for the random
    /// workloads, so that the worst case is not limited by one submitting CPU; 16 x 4 for
    /// the sequential ones (METHOD.md).
    pub fn depth_and_jobs(self, cpus: usize) -> (u32, u32) {
        match self.unit() {
            Unit::Iops => (32, cpus.clamp(1, 8) as u32),
            Unit::BytesPerSecond => (16, 4),
        }
    }

    /// The value's data rate in bits per second (to compare with the link's).
    pub fn bits_per_second(self, value: f64) -> f64 {
        match self.unit() {
            Unit::Iops => value * self.block_size() as f64 * 8.0,
            Unit::BytesPerSecond => value * 8.0,
        }
    }

    /// fio's command line for one run of this workload on `file` (`size` bytes), measuring
    /// `runtime` seconds after `ramp` seconds.
    pub fn argv(self, file: &str, size: u64, runtime: u32, ramp: u32, cpus: usize) -> Vec<String> {
        let (depth, jobs) = self.depth_and_jobs(cpus);
        vec![
            "fio".into(),
            format!("--name={}", self.name()),
            format!("--filename={file}"),
            format!("--size={size}"),
            format!("--rw={}", self.rw()),
            format!("--bs={}", self.block_size()),
            format!("--iodepth={depth}"),
            format!("--numjobs={jobs}"),
            // Past the page cache: the volume is measured, not the host's memory.
            "--direct=1".into(),
            "--ioengine=libaio".into(),
            "--group_reporting".into(),
            "--time_based".into(),
            format!("--ramp_time={ramp}"),
            format!("--runtime={runtime}"),
            "--output-format=json".into(),
        ]
    }
}

impl std::fmt::Display for Workload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What one fio run measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measured {
    /// The workload's value (IOPS or bytes/s), summed over the jobs.
    pub value: f64,
    /// The 99th percentile of completion latency in nanoseconds (the worst job's), when fio
    /// reported it.
    pub p99_ns: Option<f64>,
}

/// Why fio's output could not be read.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FioError {
    /// No JSON object in the output.
    #[error("fio printed no JSON report")]
    NoJson,
    /// The JSON is not fio's report.
    #[error("fio's report is not readable: {0}")]
    Malformed(String),
    /// fio reports an error for a job.
    #[error("fio reports error {code} for job {job}")]
    JobError {
        /// The job's name.
        job: String,
        /// fio's error number (an errno).
        code: i64,
    },
}

#[derive(Deserialize)]
struct Report {
    jobs: Vec<Job>,
}

#[derive(Deserialize)]
struct Job {
    #[serde(default)]
    jobname: String,
    #[serde(default)]
    error: i64,
    read: Side,
    write: Side,
}

#[derive(Deserialize)]
struct Side {
    iops: f64,
    bw_bytes: f64,
    #[serde(default)]
    clat_ns: Option<Latency>,
}

#[derive(Deserialize)]
struct Latency {
    #[serde(default)]
    percentile: Option<std::collections::BTreeMap<String, f64>>,
}

/// The JSON part of fio's stdout: from the first line that opens an object.
pub fn json_part(stdout: &str) -> Option<&str> {
    let mut at = 0;
    for line in stdout.split_inclusive('\n') {
        if line.starts_with('{') {
            return Some(&stdout[at..]);
        }
        at += line.len();
    }
    None
}

/// Read what a run of `workload` measured from fio's stdout.
pub fn parse(workload: Workload, stdout: &str) -> Result<Measured, FioError> {
    let json = json_part(stdout).ok_or(FioError::NoJson)?;
    let report: Report =
        serde_json::from_str(json).map_err(|e| FioError::Malformed(e.to_string()))?;
    if report.jobs.is_empty() {
        return Err(FioError::Malformed("it lists no job".into()));
    }
    let mut value = 0.0;
    let mut p99: Option<f64> = None;
    for job in &report.jobs {
        if job.error != 0 {
            return Err(FioError::JobError {
                job: job.jobname.clone(),
                code: job.error,
            });
        }
        let side = match workload.direction() {
            Direction::Read => &job.read,
            Direction::Write => &job.write,
        };
        value += match workload.unit() {
            Unit::Iops => side.iops,
            Unit::BytesPerSecond => side.bw_bytes,
        };
        let this = side
            .clat_ns
            .as_ref()
            .and_then(|l| l.percentile.as_ref())
            .and_then(|p| p.get("99.000000").copied());
        if let Some(v) = this {
            p99 = Some(p99.map_or(v, |m: f64| m.max(v)));
        }
    }
    Ok(Measured { value, p99_ns: p99 })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/fio")
            .join(format!("{name}.json"));
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    #[test]
    fn real_fio_reports_give_each_workload_s_figure_and_p99() {
        // Figures read from the captures by hand (jq '.jobs[0].read.iops' and so on).
        let cases = [
            (Workload::Rand4kRead, 145092.96901, 2965504.0),
            (Workload::Rand4kWrite, 131841.719427, 4177920.0),
            (Workload::Seq1mRead, 1325149944.0, 87556096.0),
            (Workload::Seq1mWrite, 2735758436.0, 55312384.0),
        ];
        for (w, value, p99) in cases {
            let m = parse(w, &fixture(w.name())).unwrap();
            assert_eq!(m.value, value, "{w}");
            assert_eq!(m.p99_ns, Some(p99), "{w}");
        }
    }

    #[test]
    fn the_other_direction_of_a_capture_measures_nothing() {
        let m = parse(Workload::Rand4kWrite, &fixture("rand4k-read")).unwrap();
        assert_eq!(m.value, 0.0);
        assert_eq!(m.p99_ns, None);
    }

    #[test]
    fn jobs_are_summed_and_the_worst_p99_kept() {
        let one = |iops: f64, p99: f64| {
            format!(
                r#"{{"jobname":"j","error":0,"read":{{"iops":{iops},"bw_bytes":1,
                "clat_ns":{{"percentile":{{"99.000000":{p99}}}}}}},
                "write":{{"iops":0,"bw_bytes":0}}}}"#
            )
        };
        let text = format!(
            "fio: warning: something\n{{\"jobs\":[{},{}]}}\n",
            one(100.0, 5.0),
            one(50.5, 9.0)
        );
        let m = parse(Workload::Rand4kRead, &text).unwrap();
        assert_eq!(m.value, 150.5);
        assert_eq!(m.p99_ns, Some(9.0));
    }

    #[test]
    fn errors_are_named() {
        assert_eq!(parse(Workload::Seq1mRead, "fio: no"), Err(FioError::NoJson));
        assert!(matches!(
            parse(Workload::Seq1mRead, "{\"jobs\":[]}"),
            Err(FioError::Malformed(_))
        ));
        assert!(matches!(
            parse(Workload::Seq1mRead, "{\"jobs\":"),
            Err(FioError::Malformed(_))
        ));
        let bad = r#"{"jobs":[{"jobname":"x","error":5,"read":{"iops":0,"bw_bytes":0},
            "write":{"iops":0,"bw_bytes":0}}]}"#;
        assert_eq!(
            parse(Workload::Seq1mRead, bad),
            Err(FioError::JobError {
                job: "x".into(),
                code: 5
            })
        );
    }

    #[test]
    fn the_command_line_is_direct_time_based_on_the_file() {
        let a = Workload::Rand4kWrite.argv("/mnt/v/.t", 1 << 30, 5, 2, 2);
        for want in [
            "--filename=/mnt/v/.t",
            "--rw=randwrite",
            "--bs=4096",
            "--iodepth=32",
            "--numjobs=2",
            "--direct=1",
            "--time_based",
            "--ramp_time=2",
            "--runtime=5",
            "--output-format=json",
        ] {
            assert!(a.iter().any(|x| x == want), "{want} in {a:?}");
        }
        assert_eq!(Workload::Seq1mRead.depth_and_jobs(64), (16, 4));
        assert_eq!(Workload::Rand4kRead.depth_and_jobs(64), (32, 8));
        assert_eq!(Workload::Rand4kRead.bits_per_second(1000.0), 32_768_000.0);
        for w in Workload::ALL {
            assert_eq!(Workload::from_name(w.name()), Some(w));
        }
    }
}
