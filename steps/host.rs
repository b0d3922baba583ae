//! The `Host` seam: everything the steps do to a machine goes through it.
//!
//! - Commands are argv vectors, never shell strings; the child's stdin is /dev/null; each
//!   command has a time bound and is killed when it passes it or when the operator
//!   interrupts the run. Every command is logged (argv with secrets masked, exit status,
//!   duration, the tail of its output).
//! - Files are addressed by their path on the target system (`/etc/iscsi/iscsid.conf`) and
//!   live below the run's `--root`. Writes are atomic (temporary file in the same
//!   directory, fsync, rename, fsync of the directory), keep the mode and owner of the file
//!   they replace, and the first change to a file saves the original under `backups/`.
//! - A dry run wraps the host in [`ReadOnly`], which refuses anything that would change it,
//!   so a bug in a step cannot turn a dry run into a real one.

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::steps::timefmt;

/// Default time bound of a command when a step does not choose one.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// A command to run: argv only, never a shell line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmd {
    /// Program and arguments.
    pub argv: Vec<String>,
    /// The command is killed when it runs longer than this.
    pub timeout: Duration,
    /// Whether the command changes the host (false for probes). A dry run refuses these.
    pub changes_host: bool,
    /// Values masked as `******` wherever the command is shown or logged.
    pub secrets: Vec<String>,
}

impl Cmd {
    /// A read-only command (a probe).
    pub fn probe<I, S>(argv: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Cmd {
            argv: argv.into_iter().map(Into::into).collect(),
            timeout: DEFAULT_TIMEOUT,
            changes_host: false,
            secrets: Vec::new(),
        }
    }

    /// A command that changes the host.
    pub fn change<I, S>(argv: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Cmd {
            changes_host: true,
            ..Cmd::probe(argv)
        }
    }

    /// The same command with another time bound.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The same command with a value to mask in every display of it.
    pub fn secret(mut self, value: impl Into<String>) -> Self {
        let v = value.into();
        if !v.is_empty() {
            self.secrets.push(v);
        }
        self
    }

    /// The program name (first argv element).
    pub fn program(&self) -> &str {
        self.argv.first().map(String::as_str).unwrap_or("")
    }

    /// Mask the command's secrets in a text.
    pub fn mask(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in &self.secrets {
            out = out.replace(s.as_str(), "******");
        }
        out
    }
}

impl fmt::Display for Cmd {
    /// Shell-quoted, with secrets masked: for showing to the operator and for the log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let words: Vec<String> = self
            .argv
            .iter()
            .map(|a| shell_quote(&self.mask(a)))
            .collect();
        f.write_str(&words.join(" "))
    }
}

/// Quote a word for display the way a POSIX shell would need it.
pub fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,+@%[]".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// What a finished command left.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CmdOutput {
    /// Exit status; `None` when killed by a signal or by its time bound.
    pub code: Option<i32>,
    /// Standard output (lossy UTF-8).
    pub stdout: String,
    /// Standard error (lossy UTF-8).
    pub stderr: String,
    /// The command passed its time bound and was killed.
    pub timed_out: bool,
    /// How long it ran.
    pub duration: Duration,
}

impl CmdOutput {
    /// A successful output with this stdout (for fakes and tests).
    pub fn ok(stdout: impl Into<String>) -> Self {
        CmdOutput {
            code: Some(0),
            stdout: stdout.into(),
            ..Default::default()
        }
    }

    /// An output with this exit status and stdout/stderr (for fakes and tests).
    pub fn status(code: i32, stdout: impl Into<String>, stderr: impl Into<String>) -> Self {
        CmdOutput {
            code: Some(code),
            stdout: stdout.into(),
            stderr: stderr.into(),
            ..Default::default()
        }
    }

    /// Exit status 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// The last `n` lines of stdout and stderr together, for error messages.
    pub fn tail(&self, n: usize) -> String {
        let all: Vec<&str> = self
            .stdout
            .lines()
            .chain(self.stderr.lines())
            .filter(|l| !l.trim().is_empty())
            .collect();
        all[all.len().saturating_sub(n)..].join("\n")
    }

    /// "exit 3", "killed after 30s (time bound)" or "killed by a signal".
    pub fn describe_status(&self) -> String {
        match (self.code, self.timed_out) {
            (_, true) => format!("killed after {:.0?} (its time bound)", self.duration),
            (Some(c), _) => format!("exit {c}"),
            (None, _) => "killed by a signal".to_string(),
        }
    }
}

/// Why the host could not do what a step asked.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The program is not installed (or not on PATH).
    #[error("{program}: not found on this host")]
    NotFound {
        /// The program.
        program: String,
    },
    /// Starting or waiting for a command failed.
    #[error("running {cmd}: {source}")]
    Spawn {
        /// The command, as displayed.
        cmd: String,
        /// The OS error.
        source: io::Error,
    },
    /// A file operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done ("reading", "writing", ...).
        op: &'static str,
        /// The path on the target system.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// A dry run refused a change.
    #[error("dry run: refused to {0}")]
    DryRun(String),
    /// The operator interrupted the run.
    #[error("interrupted")]
    Interrupted,
    /// A test fake saw a command or file it did not expect.
    #[error("unexpected in test: {0}")]
    Unexpected(String),
    /// A path that is not absolute or tries to leave the root.
    #[error("{0}: not an absolute path inside the root")]
    BadPath(PathBuf),
}

/// Whether a write changed the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    /// The file already had exactly this content (and mode): nothing was written.
    Unchanged,
    /// The file was created.
    Created,
    /// The file was replaced (its original is in `backups/` from its first change).
    Replaced,
}

/// The seam between the steps and a machine.
pub trait Host: Send + Sync {
    /// Run a command to completion (or its time bound). `Err` only when it could not be
    /// started or the run was interrupted; a non-zero exit is an `Ok` output.
    fn run(&self, cmd: &Cmd) -> Result<CmdOutput, HostError>;

    /// Where a program is, if installed (PATH plus the sbin directories).
    fn which(&self, program: &str) -> Option<PathBuf>;

    /// Read a file by its path on the target system; `None` when it does not exist.
    fn read(&self, path: &Path) -> Result<Option<String>, HostError>;

    /// The names in a directory (sorted); empty when it does not exist.
    fn list_dir(&self, path: &Path) -> Result<Vec<String>, HostError>;

    /// Whether a path exists (file, directory or device).
    fn exists(&self, path: &Path) -> bool;

    /// Write a file atomically; `mode` applies to a new file (an existing one keeps its own).
    fn write(&self, path: &Path, contents: &str, mode: u32) -> Result<WriteOutcome, HostError>;

    /// The root below which target paths live (`/` on a real run).
    fn root(&self) -> &Path;

    /// Whether the wizard has root privileges on this host.
    fn is_root(&self) -> bool;

    /// The run's interrupt flag, for work done in-process (the verify's I/O) that must stop
    /// when Ctrl-C or SIGTERM sets it. A host without one gives a flag nobody sets.
    fn interrupt(&self) -> Interrupt {
        Interrupt::new()
    }
}

/// Join a target-system path below a root, refusing relative paths and `..`.
pub fn under_root(root: &Path, path: &Path) -> Result<PathBuf, HostError> {
    if !path.is_absolute() {
        return Err(HostError::BadPath(path.to_path_buf()));
    }
    let mut out = root.to_path_buf();
    for c in path.components() {
        match c {
            Component::RootDir => {}
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(HostError::BadPath(path.to_path_buf()))
            }
        }
    }
    Ok(out)
}

/// The state directory's log of commands and file changes. Disabled on dry runs and before
/// the answers are validated, so that nothing is written then.
#[derive(Debug, Default)]
pub struct Log {
    file: Mutex<Option<fs::File>>,
}

impl Log {
    /// A log that records nothing.
    pub fn disabled() -> Self {
        Log::default()
    }

    /// Append to `path` (created 0600: outputs may name hosts and IQNs).
    pub fn open(path: &Path) -> io::Result<Self> {
        use std::os::unix::fs::OpenOptionsExt;
        let f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)?;
        Ok(Log {
            file: Mutex::new(Some(f)),
        })
    }

    /// Append one entry (a line, then indented detail lines).
    pub fn entry(&self, line: &str, detail: &str) {
        let mut guard = self.file.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = guard.as_mut() {
            let mut text = format!("{} {}\n", timefmt::now_rfc3339(), line);
            for l in detail.lines() {
                text.push_str("    | ");
                text.push_str(l);
                text.push('\n');
            }
            // A log write failure must not fail the step that is changing the host.
            let _ = f.write_all(text.as_bytes());
        }
    }
}

/// Set by the Ctrl-C / SIGTERM handler; commands in flight are killed when it is set.
#[derive(Debug, Clone, Default)]
pub struct Interrupt(Arc<AtomicBool>);

impl Interrupt {
    /// A fresh, unset flag.
    pub fn new() -> Self {
        Self::default()
    }
    /// Mark the run interrupted.
    pub fn set(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    /// Whether the run was interrupted.
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// The real machine.
#[derive(Debug)]
pub struct RealHost {
    root: PathBuf,
    backups: Option<PathBuf>,
    log: Arc<Log>,
    interrupt: Interrupt,
}

impl RealHost {
    /// A host whose files live below `root`; `backups` is the state dir's `backups/`
    /// (`None` on dry runs).
    pub fn new(
        root: PathBuf,
        backups: Option<PathBuf>,
        log: Arc<Log>,
        interrupt: Interrupt,
    ) -> Self {
        RealHost {
            root,
            backups,
            log,
            interrupt,
        }
    }

    fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> HostError + 'a {
        move |source| HostError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }

    /// Save the original of `real` (target path `path`) under backups/ on its first change.
    fn back_up(&self, path: &Path, real: &Path, existed: bool) -> Result<(), HostError> {
        let Some(dir) = &self.backups else {
            return Ok(());
        };
        let rel = path.strip_prefix("/").unwrap_or(path);
        if existed {
            let dest = dir.join(rel);
            if dest.exists() {
                return Ok(());
            }
            if let Some(p) = dest.parent() {
                fs::create_dir_all(p).map_err(Self::io("creating", p))?;
            }
            fs::copy(real, &dest).map_err(Self::io("backing up", path))?;
            self.log.entry(
                &format!("backup {} -> {}", path.display(), dest.display()),
                "",
            );
        } else {
            // A file the wizard created has no original; record that so it can be removed.
            fs::create_dir_all(dir).map_err(Self::io("creating", dir))?;
            let list = dir.join("CREATED");
            let line = format!("{}\n", path.display());
            let known = fs::read_to_string(&list).unwrap_or_default();
            if !known.lines().any(|l| Path::new(l) == path) {
                let mut f = fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&list)
                    .map_err(Self::io("writing", &list))?;
                f.write_all(line.as_bytes())
                    .map_err(Self::io("writing", &list))?;
            }
        }
        Ok(())
    }
}

/// Directories searched for programs besides PATH: root's tools live in sbin, which is not
/// on every user's PATH.
const EXTRA_PATH: &str = "/usr/local/sbin:/usr/sbin:/sbin:/usr/local/bin:/usr/bin:/bin";

impl Host for RealHost {
    fn run(&self, cmd: &Cmd) -> Result<CmdOutput, HostError> {
        if self.interrupt.is_set() {
            return Err(HostError::Interrupted);
        }
        let program = self
            .which(cmd.program())
            .ok_or_else(|| HostError::NotFound {
                program: cmd.program().to_string(),
            })?;
        let start = Instant::now();
        let handle = duct::cmd(&program, &cmd.argv[1..])
            .stdin_null()
            .stdout_capture()
            .stderr_capture()
            .env("LC_ALL", "C")
            .unchecked()
            .start()
            .map_err(|source| HostError::Spawn {
                cmd: cmd.to_string(),
                source,
            })?;
        let deadline = start + cmd.timeout;
        let mut timed_out = false;
        let mut interrupted = false;
        loop {
            let step = Duration::from_millis(20);
            match handle.wait_timeout(step) {
                Ok(Some(_)) => break,
                Ok(None) => {}
                Err(source) => {
                    return Err(HostError::Spawn {
                        cmd: cmd.to_string(),
                        source,
                    })
                }
            }
            if self.interrupt.is_set() {
                interrupted = true;
            } else if Instant::now() >= deadline {
                timed_out = true;
            } else {
                continue;
            }
            let _ = handle.kill();
            break;
        }
        let out = handle.into_output().map_err(|source| HostError::Spawn {
            cmd: cmd.to_string(),
            source,
        })?;
        let result = CmdOutput {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            timed_out,
            duration: start.elapsed(),
        };
        self.log.entry(
            &format!(
                "run {} -> {} in {:.3}s",
                cmd,
                result.describe_status(),
                result.duration.as_secs_f64()
            ),
            &cmd.mask(&result.tail(12)),
        );
        if interrupted {
            return Err(HostError::Interrupted);
        }
        Ok(result)
    }

    fn which(&self, program: &str) -> Option<PathBuf> {
        if program.contains('/') {
            let p = PathBuf::from(program);
            return p.is_file().then_some(p);
        }
        let path = match std::env::var("PATH") {
            Ok(p) if !p.is_empty() => format!("{p}:{EXTRA_PATH}"),
            _ => EXTRA_PATH.to_string(),
        };
        which::which_in(program, Some(path), "/").ok()
    }

    fn read(&self, path: &Path) -> Result<Option<String>, HostError> {
        let real = under_root(&self.root, path)?;
        match fs::read(&real) {
            Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Self::io("reading", path)(e)),
        }
    }

    fn list_dir(&self, path: &Path) -> Result<Vec<String>, HostError> {
        let real = under_root(&self.root, path)?;
        let rd = match fs::read_dir(&real) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Self::io("listing", path)(e)),
        };
        let mut names: Vec<String> = rd
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        Ok(names)
    }

    fn exists(&self, path: &Path) -> bool {
        under_root(&self.root, path).is_ok_and(|p| p.exists())
    }

    fn write(&self, path: &Path, contents: &str, mode: u32) -> Result<WriteOutcome, HostError> {
        if self.interrupt.is_set() {
            return Err(HostError::Interrupted);
        }
        let real = under_root(&self.root, path)?;
        let existing = fs::metadata(&real).ok();
        if let Some(meta) = &existing {
            if fs::read(&real).is_ok_and(|cur| cur == contents.as_bytes()) {
                return Ok(WriteOutcome::Unchanged);
            }
            if !meta.is_file() {
                return Err(Self::io("writing", path)(io::Error::other(
                    "exists and is not a regular file",
                )));
            }
        }
        let dir = real
            .parent()
            .ok_or_else(|| HostError::BadPath(path.to_path_buf()))?;
        fs::create_dir_all(dir).map_err(Self::io("creating the directory of", path))?;
        self.back_up(path, &real, existing.is_some())?;

        let mut tmp = tempfile::Builder::new()
            .prefix(".iser-wizard.")
            .tempfile_in(dir)
            .map_err(Self::io("writing", path))?;
        tmp.write_all(contents.as_bytes())
            .map_err(Self::io("writing", path))?;
        let keep_mode = existing
            .as_ref()
            .map(|m| m.permissions().mode() & 0o7777)
            .unwrap_or(mode);
        tmp.as_file()
            .set_permissions(fs::Permissions::from_mode(keep_mode))
            .map_err(Self::io("setting the mode of", path))?;
        if let Some(m) = &existing {
            // Keep the owner of the file being replaced; only root can, so an EPERM for an
            // unprivileged run on its own files is not an error.
            let _ = std::os::unix::fs::fchown(tmp.as_file(), Some(m.uid()), Some(m.gid()));
        }
        tmp.as_file()
            .sync_all()
            .map_err(Self::io("syncing", path))?;
        tmp.persist(&real)
            .map_err(|e| Self::io("renaming into", path)(e.error))?;
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
        self.log.entry(
            &format!(
                "wrote {} ({} bytes, mode {:o})",
                path.display(),
                contents.len(),
                keep_mode
            ),
            "",
        );
        Ok(if existing.is_some() {
            WriteOutcome::Replaced
        } else {
            WriteOutcome::Created
        })
    }

    fn root(&self) -> &Path {
        &self.root
    }

    fn is_root(&self) -> bool {
        // SAFETY: geteuid has no preconditions and cannot fail.
        unsafe { libc::geteuid() == 0 }
    }

    fn interrupt(&self) -> Interrupt {
        self.interrupt.clone()
    }
}

/// A host for dry runs: reads pass through, anything that would change the host is refused.
pub struct ReadOnly<'a>(pub &'a dyn Host);

impl Host for ReadOnly<'_> {
    fn run(&self, cmd: &Cmd) -> Result<CmdOutput, HostError> {
        if cmd.changes_host {
            return Err(HostError::DryRun(format!("run {cmd}")));
        }
        self.0.run(cmd)
    }
    fn which(&self, program: &str) -> Option<PathBuf> {
        self.0.which(program)
    }
    fn read(&self, path: &Path) -> Result<Option<String>, HostError> {
        self.0.read(path)
    }
    fn list_dir(&self, path: &Path) -> Result<Vec<String>, HostError> {
        self.0.list_dir(path)
    }
    fn exists(&self, path: &Path) -> bool {
        self.0.exists(path)
    }
    fn write(&self, path: &Path, _contents: &str, _mode: u32) -> Result<WriteOutcome, HostError> {
        Err(HostError::DryRun(format!("write {}", path.display())))
    }
    fn root(&self) -> &Path {
        self.0.root()
    }
    fn is_root(&self) -> bool {
        self.0.is_root()
    }
    fn interrupt(&self) -> Interrupt {
        self.0.interrupt()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(root: &Path, backups: Option<PathBuf>) -> RealHost {
        RealHost::new(
            root.to_path_buf(),
            backups,
            Arc::new(Log::disabled()),
            Interrupt::new(),
        )
    }

    #[test]
    fn paths_stay_below_the_root() {
        let root = Path::new("/tmp/r");
        assert_eq!(
            under_root(root, Path::new("/etc/iscsi/iscsid.conf")).unwrap(),
            PathBuf::from("/tmp/r/etc/iscsi/iscsid.conf")
        );
        assert!(under_root(root, Path::new("etc/x")).is_err());
        assert!(under_root(root, Path::new("/etc/../../x")).is_err());
    }

    #[test]
    fn write_is_atomic_keeps_mode_and_backs_up_the_original_once() {
        let root = tempfile::tempdir().unwrap();
        let state = tempfile::tempdir().unwrap();
        let backups = state.path().join("backups");
        let h = host(root.path(), Some(backups.clone()));
        let p = Path::new("/etc/iscsi/iscsid.conf");
        let real = root.path().join("etc/iscsi/iscsid.conf");
        fs::create_dir_all(real.parent().unwrap()).unwrap();
        fs::write(&real, "original\n").unwrap();
        fs::set_permissions(&real, fs::Permissions::from_mode(0o600)).unwrap();

        assert_eq!(
            h.write(p, "first\n", 0o644).unwrap(),
            WriteOutcome::Replaced
        );
        assert_eq!(
            h.write(p, "second\n", 0o644).unwrap(),
            WriteOutcome::Replaced
        );
        assert_eq!(
            h.write(p, "second\n", 0o644).unwrap(),
            WriteOutcome::Unchanged
        );
        assert_eq!(fs::read_to_string(&real).unwrap(), "second\n");
        assert_eq!(
            fs::metadata(&real).unwrap().permissions().mode() & 0o777,
            0o600
        );
        // The backup is the file as it was before the FIRST change.
        assert_eq!(
            fs::read_to_string(backups.join("etc/iscsi/iscsid.conf")).unwrap(),
            "original\n"
        );
        // No temporary file is left behind.
        let names: Vec<_> = fs::read_dir(real.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn a_created_file_is_recorded_once_and_gets_the_requested_mode() {
        let root = tempfile::tempdir().unwrap();
        let state = tempfile::tempdir().unwrap();
        let backups = state.path().join("backups");
        let h = host(root.path(), Some(backups.clone()));
        let p = Path::new("/etc/x.conf");
        assert_eq!(h.write(p, "a\n", 0o640).unwrap(), WriteOutcome::Created);
        fs::remove_file(root.path().join("etc/x.conf")).unwrap();
        assert_eq!(h.write(p, "a\n", 0o640).unwrap(), WriteOutcome::Created);
        assert_eq!(
            fs::read_to_string(backups.join("CREATED")).unwrap(),
            "/etc/x.conf\n"
        );
        let mode = fs::metadata(root.path().join("etc/x.conf"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o640);
    }

    #[test]
    fn commands_run_without_a_shell_and_are_bounded() {
        let root = tempfile::tempdir().unwrap();
        let h = host(root.path(), None);
        let out = h.run(&Cmd::probe(["echo", "a;b", "$HOME"])).unwrap();
        assert_eq!(out.stdout, "a;b $HOME\n");
        let out = h
            .run(&Cmd::probe(["sleep", "5"]).timeout(Duration::from_millis(100)))
            .unwrap();
        assert!(out.timed_out);
        assert_eq!(out.code, None);
        let out = h.run(&Cmd::probe(["cat"])).unwrap();
        assert_eq!(out.stdout, "", "stdin must be /dev/null");
        assert!(matches!(
            h.run(&Cmd::probe(["no-such-program-here"])),
            Err(HostError::NotFound { .. })
        ));
    }

    #[test]
    fn the_log_masks_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let log = Arc::new(Log::open(&dir.path().join("log")).unwrap());
        let h = RealHost::new(dir.path().into(), None, log, Interrupt::new());
        h.run(&Cmd::probe(["echo", "pw=hunter2"]).secret("hunter2"))
            .unwrap();
        let text = fs::read_to_string(dir.path().join("log")).unwrap();
        assert!(text.contains("pw=******"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }

    #[test]
    fn read_only_refuses_changes() {
        let root = tempfile::tempdir().unwrap();
        let h = host(root.path(), None);
        let ro = ReadOnly(&h);
        assert!(ro.run(&Cmd::probe(["true"])).is_ok());
        assert!(matches!(
            ro.run(&Cmd::change(["true"])),
            Err(HostError::DryRun(_))
        ));
        assert!(matches!(
            ro.write(Path::new("/x"), "", 0o644),
            Err(HostError::DryRun(_))
        ));
        assert!(!root.path().join("x").exists());
    }

    #[test]
    fn display_quotes_and_masks() {
        let c = Cmd::change(["iscsiadm", "-v", "s3cret word", "-n", "a b"]).secret("s3cret word");
        assert_eq!(c.to_string(), "iscsiadm -v '******' -n 'a b'");
    }
}
