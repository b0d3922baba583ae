//! The command line (CONTRACT.md), in two stages: raw flags parsed by clap, then a validated
//! form ([`RunConfig`]) that the engine uses. `main` only parses and dispatches.

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::Value;

use crate::answers;
use crate::exit::WizardError;
use crate::flow::{self, RunConfig};
use crate::prompt::Mode;
use crate::state::StateDir;
use crate::steps::host::Interrupt;
use crate::steps::StepName;

/// Default state directory.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/iser-wizard";

/// Attach this host to iSER storage: a guided, verified procedure.
#[derive(Debug, Parser)]
#[command(
    name = "iser-wizard",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// What to do (default: run).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Flags of `run`, when no command is given.
    #[command(flatten)]
    pub run: RunFlags,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Set the host up, step by step (interactive on a terminal, or from --answers).
    Run(RunFlags),
    /// Print the worksheet of the last run (complete or partial).
    Worksheet(WorksheetFlags),
    /// Print a complete answers file to edit, or what one of its keys means.
    Answers(AnswersFlags),
    /// Read-only health check: ports, subnet manager, sessions, paths, mount.
    Status(StatusFlags),
    /// Write and read back a test file past the page cache, and report throughput.
    Verify(VerifyFlags),
    /// ministat(1) digit for digit: compare data sets (the first is the reference).
    Stats(crate::stats::StatsFlags),
    /// Measure the attached volume with fio (METHOD.md), or compare two kept benches.
    Bench(crate::bench::BenchFlags),
    /// One knob at a time: keep a value only when benches prove it twice (METHOD.md).
    Tune(crate::tune::TuneFlags),
    /// Take attached volumes off the host safely: unmount, fstab line, map, paths, sessions.
    Detach(DetachFlags),
    /// Put the host's configuration back as it was before the wizard first changed it.
    Undo(UndoFlags),
}

/// Flags of `undo`.
#[derive(Debug, Args)]
pub struct UndoFlags {
    /// Print what would be put back (with the diff of each file); change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Every file read or written lives below DIR.
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
    /// State directory of the runs to take back.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_STATE_DIR)]
    pub state_dir: PathBuf,
}

/// Flags of `detach`.
#[derive(Debug, Args)]
pub struct DetachFlags {
    /// The mount point of a volume to detach (repeat for several).
    #[arg(long = "mount-point", value_name = "P")]
    pub mount_points: Vec<String>,
    /// Detach every volume the wizard attached.
    #[arg(long, conflicts_with = "mount_points")]
    pub all: bool,
    /// Also remove the volume's mapping on the array (needs an `array` section).
    #[arg(long)]
    pub unmap: bool,
    /// Print the plan; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Let the map's flush drop I/O queued while a path is down (a busy mount is never
    /// forced).
    #[arg(long)]
    pub force: bool,
    /// Every file read or written lives below DIR.
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
    /// State directory of the runs that attached the volumes.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_STATE_DIR)]
    pub state_dir: PathBuf,
}

/// Flags of `run`.
#[derive(Debug, Args, Default, Clone)]
pub struct RunFlags {
    /// Answers file for an unattended run (`-` reads standard input).
    #[arg(long, value_name = "FILE")]
    pub answers: Option<PathBuf>,
    /// Probe the host and print the full plan; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Every file read or written lives below DIR.
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
    /// Where state, worksheet, log and backups live.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_STATE_DIR)]
    pub state_dir: PathBuf,
    /// Run only these steps (comma-separated).
    #[arg(
        long,
        value_name = "STEP,...",
        value_delimiter = ',',
        conflicts_with = "from"
    )]
    pub only: Vec<String>,
    /// Run from this step to the end.
    #[arg(long, value_name = "STEP")]
    pub from: Option<String>,
    /// After the run, write the answers given to FILE, for --answers on the next host.
    #[arg(long, value_name = "FILE")]
    pub record_answers: Option<PathBuf>,
    /// Allow partitioning a device that carries a partition table or filesystem signature
    /// (never a mounted or held one).
    #[arg(long)]
    pub force_format: bool,
    /// At the end, list the slowest commands the run ran and the total time in commands.
    #[arg(long)]
    pub timings: bool,
    /// One JSON object per line on standard output: each step (name, status, changes,
    /// seconds), then a summary (changed, exit code, worksheet); the human text goes to
    /// standard error. Needs --answers (nothing can be asked).
    #[arg(long)]
    pub json: bool,
}

/// Output formats of the worksheet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Format {
    /// Markdown.
    #[default]
    Markdown,
    /// PDF.
    Pdf,
}

/// Flags of `worksheet`.
#[derive(Debug, Args)]
pub struct WorksheetFlags {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Markdown)]
    pub format: Format,
    /// Write to FILE instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Paper size of the PDF.
    #[arg(long, value_enum, default_value_t = Paper::A4)]
    pub paper: Paper,
    /// State directory of the run.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_STATE_DIR)]
    pub state_dir: PathBuf,
}

/// Paper sizes of the PDF worksheet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Paper {
    /// ISO A4.
    #[default]
    A4,
    /// US Letter.
    Letter,
}

/// Flags of `answers`.
#[derive(Debug, Args)]
pub struct AnswersFlags {
    /// Print the template: every key, validating as it is.
    #[arg(long, conflicts_with = "explain")]
    pub template: bool,
    /// Print what a key means: its kind, whether it is required, its default, the forms it
    /// accepts (`ports[].mtu`, `ports.mtu` or `mtu`).
    #[arg(long, value_name = "KEY")]
    pub explain: Option<String>,
}

/// Flags of `status`.
#[derive(Debug, Args)]
pub struct StatusFlags {
    /// JSON output.
    #[arg(long)]
    pub json: bool,
    /// Root of the files to read (default `/`).
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
    /// State directory of the run.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_STATE_DIR)]
    pub state_dir: PathBuf,
}

/// Flags of `verify`.
#[derive(Debug, Args)]
pub struct VerifyFlags {
    /// The mounted filesystem to check.
    pub mountpoint: PathBuf,
    /// How much to write and read back (B, KiB, MiB, GiB).
    #[arg(long, default_value = "256MiB")]
    pub size: String,
}

fn read_answers(path: &PathBuf) -> Result<(String, Value), WizardError> {
    let limit = answers::MAX_FILE_BYTES;
    let too_big = |name: &str| {
        WizardError::Usage(format!(
            "the answers {name} is larger than {} KiB; a real one is a few KiB: is it the right file?",
            limit >> 10
        ))
    };
    let (name, bytes) = if path.as_os_str() == "-" {
        let mut b = Vec::new();
        std::io::stdin()
            .take(limit + 1)
            .read_to_end(&mut b)
            .map_err(|e| WizardError::Usage(format!("reading answers from standard input: {e}")))?;
        ("standard input".to_string(), b)
    } else {
        let name = path.display().to_string();
        let file_err =
            |e: std::io::Error| WizardError::Usage(format!("reading the answers file {name}: {e}"));
        // A FIFO or a device would block or never end: only a regular file is read.
        let meta = std::fs::metadata(path).map_err(file_err)?;
        if !meta.is_file() {
            return Err(WizardError::Usage(format!(
                "the answers file {name} is not a regular file: give a file (or - for standard input)"
            )));
        }
        if meta.len() > limit {
            return Err(too_big(&format!("file {name}")));
        }
        let mut b = Vec::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(limit + 1).read_to_end(&mut b))
            .map_err(file_err)?;
        (name, b)
    };
    if bytes.len() as u64 > limit {
        return Err(too_big(&name));
    }
    let text = String::from_utf8(bytes).map_err(|e| WizardError::InvalidAnswers {
        source_name: name.clone(),
        problems: vec![answers::Problem {
            path: format!("byte {}", e.utf8_error().valid_up_to()),
            message: "is not UTF-8 text: save the file as UTF-8".into(),
        }],
    })?;
    let v = answers::parse_text(&text).map_err(|problems| WizardError::InvalidAnswers {
        source_name: name.clone(),
        problems,
    })?;
    Ok((name, v))
}

/// Refuse before anything runs a file the run could not write at its end.
fn check_writable(path: &std::path::Path, flag: &str) -> Result<(), WizardError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if path.is_dir() {
        return Err(WizardError::Usage(format!(
            "{flag} {}: is a directory: give a file name",
            path.display()
        )));
    }
    tempfile::NamedTempFile::new_in(&dir)
        .map(drop)
        .map_err(|e| {
            WizardError::Usage(format!(
                "{flag} {}: cannot write in {}: {e}",
                path.display(),
                dir.display()
            ))
        })
}

/// Validate `run`'s flags into the engine's configuration. Touches nothing.
pub fn run_config(f: &RunFlags, stdin_is_terminal: bool) -> Result<RunConfig, WizardError> {
    if f.json && f.answers.is_none() {
        // Questions would be mixed into the lines a program reads, and nobody answers them.
        return Err(WizardError::Usage(
            "--json cannot ask questions: give --answers FILE (start from `iser-wizard \
             answers --template > answers.json`)"
                .into(),
        ));
    }
    let steps: Vec<StepName> = if !f.only.is_empty() {
        let mut v = Vec::new();
        for s in &f.only {
            let n: StepName = s
                .trim()
                .parse()
                .map_err(|e| WizardError::Usage(format!("--only: {e}")))?;
            if !v.contains(&n) {
                v.push(n);
            }
        }
        v.sort();
        v
    } else if let Some(from) = &f.from {
        let n: StepName = from
            .parse()
            .map_err(|e| WizardError::Usage(format!("--from: {e}")))?;
        StepName::ALL.into_iter().filter(|s| *s >= n).collect()
    } else {
        StepName::ALL.to_vec()
    };
    if !f.root.is_absolute() {
        return Err(WizardError::Usage(format!(
            "--root {}: give an absolute path",
            f.root.display()
        )));
    }
    if !f.root.is_dir() {
        return Err(WizardError::Usage(format!(
            "--root {}: not a directory",
            f.root.display()
        )));
    }
    let answers = match &f.answers {
        Some(p) => {
            let (name, v) = read_answers(p)?;
            let mut problems = answers::validate(&v, &|k| std::env::var(k).ok());
            problems.extend(answers::check_against_state_dir(&v, &f.state_dir));
            if !problems.is_empty() {
                return Err(WizardError::InvalidAnswers {
                    source_name: name,
                    problems,
                });
            }
            Some(v)
        }
        None => None,
    };
    if let Some(path) = &f.record_answers {
        check_writable(path, "--record-answers")?;
    }
    let mode = match (&answers, stdin_is_terminal, f.dry_run) {
        (Some(_), _, _) => Mode::Unattended,
        (None, true, _) => Mode::Interactive,
        (None, false, true) => Mode::Defaults,
        (None, false, false) => {
            return Err(WizardError::Usage(
                "no terminal to ask questions on: run unattended with --answers FILE \
                 (start from `iser-wizard answers --template > answers.json`), or try --dry-run"
                    .into(),
            ))
        }
    };
    Ok(RunConfig {
        root: f.root.clone(),
        state_dir: f.state_dir.clone(),
        partial: !f.only.is_empty() || f.from.is_some(),
        steps,
        dry_run: f.dry_run,
        force_format: f.force_format,
        answers,
        mode,
        record_answers: f.record_answers.clone(),
        timings: f.timings,
    })
}

fn worksheet(
    f: &WorksheetFlags,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), WizardError> {
    // A mistyped --state-dir must not print a blank sheet as if all were well.
    if !f.state_dir.is_dir() {
        return Err(WizardError::Usage(format!(
            "--state-dir {}: no such directory; give the state directory of a run (default \
             /var/lib/iser-wizard)",
            f.state_dir.display()
        )));
    }
    if !f.state_dir.join("worksheet.json").exists() {
        let _ = writeln!(
            err,
            "note: no run is recorded in {}: this is the blank form",
            f.state_dir.display()
        );
    }
    let sheet = StateDir::new(&f.state_dir)
        .load_worksheet()
        .map_err(|e| WizardError::Other(anyhow::anyhow!("reading the worksheet: {e}")))?;
    let bytes = match f.format {
        Format::Markdown => crate::worksheets::markdown::render(&sheet).into_bytes(),
        Format::Pdf => {
            if f.out.is_none() && std::io::stdout().is_terminal() {
                return Err(WizardError::Usage(
                    "worksheet --format pdf: give --out FILE (a PDF is not for the terminal)"
                        .into(),
                ));
            }
            let paper = match f.paper {
                Paper::A4 => crate::worksheets::pdf::Paper::A4,
                Paper::Letter => crate::worksheets::pdf::Paper::Letter,
            };
            crate::worksheets::pdf::render(&sheet, paper)
        }
    };
    match &f.out {
        Some(p) => std::fs::write(p, &bytes)
            .map_err(|e| WizardError::Other(anyhow::anyhow!("writing {}: {e}", p.display()))),
        None => out
            .write_all(&bytes)
            .map_err(|e| WizardError::Other(e.into())),
    }
}

/// Parse, dispatch, and return the exit code. Messages go to `out` and `err`.
pub fn main_with(cli: Cli, interrupt: Interrupt, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let result = match cli.command {
        None => run(&cli.run, interrupt, out, err),
        Some(Command::Run(f)) => run(&f, interrupt, out, err),
        Some(Command::Worksheet(f)) => worksheet(&f, out, err),
        Some(Command::Answers(f)) => answers_command(&f, out),
        Some(Command::Status(f)) => status(&f, interrupt, out),
        Some(Command::Verify(f)) => verify(&f, interrupt, out),
        Some(Command::Stats(f)) => crate::stats::run(&f, out),
        Some(Command::Bench(f)) => crate::bench::command(&f, interrupt, out),
        Some(Command::Tune(f)) => crate::tune::command(&f, interrupt, out),
        Some(Command::Detach(f)) => crate::undo::detach_command(
            &crate::undo::DetachRequest {
                mount_points: f.mount_points,
                all: f.all,
                unmap: f.unmap,
                dry_run: f.dry_run,
                force: f.force,
                root: f.root,
                state_dir: f.state_dir,
            },
            interrupt,
            out,
        ),
        Some(Command::Undo(f)) => {
            crate::undo::undo_command(&f.root, &f.state_dir, f.dry_run, interrupt, out)
        }
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            let _ = writeln!(err, "iser-wizard: {e}");
            e.exit_code()
        }
    }
}

fn answers_command(f: &AnswersFlags, out: &mut dyn Write) -> Result<(), WizardError> {
    let text = match (&f.explain, f.template) {
        (Some(key), _) => crate::docs::explain(key)
            .map_err(|e| WizardError::Usage(format!("answers --explain {e}")))?,
        (None, true) => answers::TEMPLATE.to_string(),
        (None, false) => {
            return Err(WizardError::Usage(
                "answers: use --template to print a complete answers file, or --explain KEY \
                 to read what a key means"
                    .into(),
            ))
        }
    };
    out.write_all(text.as_bytes())
        .map_err(|e| WizardError::Other(e.into()))
}

fn verify(f: &VerifyFlags, interrupt: Interrupt, out: &mut dyn Write) -> Result<(), WizardError> {
    use crate::steps::verify::{mounted_source, run_check, summary};
    use crate::steps::Progress as _;
    let size = f
        .size
        .parse::<crate::settings::VerifySize>()
        .map(crate::settings::VerifySize::bytes)
        .map_err(|_| {
            WizardError::Usage(format!(
                "--size {:?}: write a whole number of 4 KiB blocks with B, KiB, MiB or GiB, \
                 from 1MiB to 64GiB, like 256MiB",
                f.size
            ))
        })?;
    let mp = f.mountpoint.to_string_lossy().to_string();
    if !f.mountpoint.is_absolute() {
        return Err(WizardError::Usage(format!(
            "{mp}: give the absolute mount point"
        )));
    }
    let host = crate::steps::host::RealHost::new(
        "/".into(),
        None,
        std::sync::Arc::new(crate::steps::host::Log::disabled()),
        interrupt.clone(),
    );
    if !f.mountpoint.exists() {
        return Err(WizardError::Usage(format!(
            "{mp}: no such directory; give the mount point of the volume"
        )));
    }
    if !f.mountpoint.is_dir() {
        return Err(WizardError::Usage(format!(
            "{mp}: not a directory; give the mount point of the volume"
        )));
    }
    let step_err = |e| WizardError::from_step(StepName::Verify, e, Vec::new());
    let source = mounted_source(&host, &mp)
        .map_err(step_err)?
        .ok_or_else(|| WizardError::Usage(format!("{mp}: nothing is mounted there")))?;
    let progress = crate::progress::TermProgress::new("verify");
    progress.start_bytes(&format!("{mp} ({source})"), size * 2);
    let report = run_check(&f.mountpoint, size, &interrupt, &mut |phase, done| {
        let base = if phase == crate::steps::blockio::Phase::Read {
            size
        } else {
            0
        };
        progress.set_bytes(base + done);
    });
    progress.finish();
    let report = report.map_err(|e| {
        if matches!(
            e,
            crate::steps::StepError::Host(crate::steps::HostError::Interrupted)
        ) {
            let _ = writeln!(
                out,
                "{mp} ({source}): verify interrupted; its test file was removed"
            );
        }
        step_err(e)
    })?;
    let line = summary(&report);
    if report.passed() {
        let _ = writeln!(out, "{mp} ({source}): {line}");
        Ok(())
    } else {
        Err(step_err(crate::steps::StepError::Failed(line)))
    }
}

fn status(f: &StatusFlags, interrupt: Interrupt, out: &mut dyn Write) -> Result<(), WizardError> {
    crate::status::command(&f.root, &f.state_dir, f.json, interrupt, out)
}

/// `run`: the human text on `out`, or with `--json` the JSON lines on `out` and the human
/// text on `err`, ending with the summary line whatever the outcome.
fn run(
    f: &RunFlags,
    interrupt: Interrupt,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), WizardError> {
    if !f.json {
        return run_reporting(f, interrupt, out, &crate::output::Human);
    }
    let json = crate::output::JsonLines::new(out);
    let result = run_reporting(f, interrupt, err, &json);
    let (code, message) = match &result {
        Ok(()) => (0, None),
        Err(e) => (e.exit_code(), Some(e.to_string())),
    };
    json.summary(code, message, &f.state_dir, f.dry_run);
    result
}

fn run_reporting(
    f: &RunFlags,
    interrupt: Interrupt,
    out: &mut dyn Write,
    report: &dyn crate::output::Report,
) -> Result<(), WizardError> {
    let cfg = run_config(f, std::io::stdin().is_terminal())?;
    // One changing run per state directory; a dry run writes nothing, so it needs no lock.
    let _lock = (!cfg.dry_run)
        .then(|| StateDir::new(&cfg.state_dir).lock())
        .transpose()?;
    let dry_run = cfg.dry_run;
    flow::run(cfg, interrupt, out, report).map_err(|e| match e {
        WizardError::Interrupted(step) => WizardError::RunInterrupted {
            step,
            resume: (!dry_run).then(|| resume_command(f)),
        },
        other => other,
    })
}

/// The command that resumes an interrupted run: `run` with the flags that chose what it
/// works on (answers, root, state directory, steps).
fn resume_command(f: &RunFlags) -> String {
    use crate::steps::host::shell_quote;
    let mut words = vec!["iser-wizard".to_string(), "run".to_string()];
    let mut flag = |name: &str, value: &std::path::Path| {
        words.push(name.to_string());
        words.push(shell_quote(&value.display().to_string()));
    };
    match &f.answers {
        Some(a) if a.as_os_str() != "-" => flag("--answers", a),
        _ => {}
    }
    if f.root != std::path::Path::new("/") {
        flag("--root", &f.root);
    }
    if f.state_dir != std::path::Path::new(DEFAULT_STATE_DIR) {
        flag("--state-dir", &f.state_dir);
    }
    if !f.only.is_empty() {
        words.push("--only".into());
        words.push(shell_quote(&f.only.join(",")));
    }
    if let Some(from) = &f.from {
        words.push("--from".into());
        words.push(shell_quote(from));
    }
    words.join(" ")
}
