//! The `Host` seam: everything the steps do to a machine goes through it.
//!
//! - Commands are argv vectors, never shell strings; the child's stdin is /dev/null; each
//!   command has a time bound and is killed when it passes it or when the operator
//!   interrupts the run. Every command is logged (argv with secrets masked, exit status,
//!   duration, the tail of its output).
//! - Files are addressed by their path on the target system (`/etc/iscsi/iscsid.conf`) and
//!   live below the run's `--root`. With a root other than `/`, every read, write, listing,
//!   existence check and directory creation resolves inside the root as a chroot would
//!   (`confine`): a symlink in an image tree never leads out of it. Writes are atomic
//!   (temporary file in the same directory, fsync, rename, fsync of the directory), keep
//!   the mode and owner of the file they replace, and the first change to a file saves the
//!   original under `backups/`, complete and checked, before the file is touched (`backup`).
//! - A dry run wraps the host in [`ReadOnly`], which refuses anything that would change it,
//!   so a bug in a step cannot turn a dry run into a real one.
//! - A probe marked [`Cmd::reusable`] is run once while nothing changes: [`RealHost`] keeps
//!   its output and gives it again (logged as `reused`) until a command that changes the
//!   host runs, a file is written, or a wait looks again ([`Host::forget`], called by
//!   [`poll_until`](crate::steps::poll::poll_until)). A rerun then asks each listing once.

use std::ffi::OsStr;
use std::fmt;
use std::fs;
use std::io::{self, Read as _, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags};

use crate::steps::timefmt;

pub mod backup;
pub mod confine;
pub mod units;

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
    /// A probe whose output the host may give again, without running it, until anything
    /// changes the host or a wait looks again ([`Cmd::reusable`]).
    pub reuse: bool,
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
            reuse: false,
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

    /// The same probe, its output reusable within the run: a host that keeps outputs
    /// ([`RealHost`]) answers it again from the last run of the same argv as long as
    /// nothing changed the host since (no command that changes it, no file written) and no
    /// wait looked again ([`Host::forget`]). For listings two steps (or plan and verify)
    /// ask in turn: `multipath -ll`, `iscsiadm -m session`, `ip -j addr`. No effect on a
    /// command that changes the host.
    pub fn reusable(mut self) -> Self {
        self.reuse = !self.changes_host;
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

    /// Whether the operator interrupted the run (waits end at once).
    fn interrupted(&self) -> bool {
        self.interrupt().is_set()
    }

    /// Record work that is not a command (a call to the array's API) in the run's log, as a
    /// line and indented detail. A host without a log keeps nothing.
    fn log_entry(&self, _line: &str, _detail: &str) {}

    /// Forget the outputs kept for reusable probes: the host may have changed by itself (a
    /// wait calls this before it looks again). A host that keeps none does nothing.
    fn forget(&self) {}

    /// Where a symbolic link points (`None`: absent, not a link, or not ours to read), for
    /// reading `/proc/PID/{cwd,root,exe,fd/N}` when looking for what holds a mount. The
    /// link itself is never followed: its directory resolves below the root.
    fn read_link(&self, path: &Path) -> Result<Option<PathBuf>, HostError> {
        let real = in_root_dir(self.root(), path)?;
        match fs::read_link(&real) {
            Ok(p) => Ok(Some(p)),
            // A process may end between the listing and the read; another user's links
            // are unreadable to a non-root run: neither is an error of the host.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound
                        | io::ErrorKind::InvalidInput
                        | io::ErrorKind::PermissionDenied
                ) =>
            {
                Ok(None)
            }
            Err(source) => Err(HostError::Io {
                op: "reading the link",
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Write `value` into an existing kernel attribute (`/sys/block/sdc/device/delete`):
    /// opened for writing in place, never created, never replaced or backed up as
    /// [`Host::write`] does with files (a sysfs attribute cannot be renamed over).
    fn write_attr(&self, path: &Path, value: &str) -> Result<(), HostError> {
        if self.interrupted() {
            return Err(HostError::Interrupted);
        }
        let real = in_root_dir(self.root(), path)?;
        let io_err = |source| HostError::Io {
            op: "writing",
            path: path.to_path_buf(),
            source,
        };
        let mut f = fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc_nofollow())
            .open(&real)
            .map_err(io_err)?;
        f.write_all(value.as_bytes()).map_err(io_err)
    }

    /// Remove a file the wizard created (`undo`); `false` when it was already gone.
    fn remove_file(&self, path: &Path) -> Result<bool, HostError> {
        remove_in_root(self.interrupted(), self.root(), path, |p| {
            fs::remove_file(p)
        })
    }

    /// The mode (type and permission bits, as `st_mode`) of a path, not following a
    /// symlink at its end; `None` when it does not exist.
    fn mode(&self, path: &Path) -> Result<Option<u32>, HostError> {
        let real = in_root_dir(self.root(), path)?;
        match fs::symlink_metadata(&real) {
            Ok(m) => Ok(Some(std::os::unix::fs::MetadataExt::mode(&m))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(HostError::Io {
                op: "reading the status of",
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Set the permission bits of a file (`undo` giving a file back its original mode).
    fn set_mode(&self, path: &Path, mode: u32) -> Result<(), HostError> {
        if self.interrupted() {
            return Err(HostError::Interrupted);
        }
        let real = in_root_dir(self.root(), path)?;
        fs::set_permissions(
            &real,
            std::os::unix::fs::PermissionsExt::from_mode(mode & 0o7777),
        )
        .map_err(|source| HostError::Io {
            op: "changing the mode of",
            path: path.to_path_buf(),
            source,
        })
    }

    /// Remove an empty directory; `false` when it was already gone.
    fn remove_dir(&self, path: &Path) -> Result<bool, HostError> {
        remove_in_root(self.interrupted(), self.root(), path, |p| fs::remove_dir(p))
    }
}

/// `remove` (a file or an empty directory) of `path` below `root`, its last component never
/// followed: `false` when it was already gone; nothing once the run is interrupted.
fn remove_in_root(
    interrupted: bool,
    root: &Path,
    path: &Path,
    remove: fn(&Path) -> io::Result<()>,
) -> Result<bool, HostError> {
    if interrupted {
        return Err(HostError::Interrupted);
    }
    let real = in_root_dir(root, path)?;
    match remove(&real) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(HostError::Io {
            op: "removing",
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// `O_NOFOLLOW`: an attribute path whose last component is a symlink is refused.
fn libc_nofollow() -> i32 {
    OFlags::NOFOLLOW.bits() as i32
}

/// The real path of a target path whose directory resolves below the root (as
/// [`under_root`] does) and whose last component is kept as it is, never followed.
fn in_root_dir(root: &Path, path: &Path) -> Result<PathBuf, HostError> {
    check_target(path)?;
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(HostError::BadPath(path.to_path_buf()));
    };
    Ok(under_root(root, parent)?.join(name))
}

/// Refuse a target path that is relative or holds `..`.
fn check_target(path: &Path) -> Result<(), HostError> {
    let bad = !path.is_absolute()
        || path
            .components()
            .any(|c| matches!(c, Component::ParentDir | Component::Prefix(_)));
    if bad {
        Err(HostError::BadPath(path.to_path_buf()))
    } else {
        Ok(())
    }
}

fn is_host_root(root: &Path) -> bool {
    root.components().all(|c| c == Component::RootDir)
}

/// The real path of a target-system path below a root, for handing to another program:
/// refuses relative paths and `..`; below a root other than `/`, symlinks resolve inside
/// the root as in a chroot (so the result always lies below `root`).
pub fn under_root(root: &Path, path: &Path) -> Result<PathBuf, HostError> {
    check_target(path)?;
    if is_host_root(root) {
        let mut out = PathBuf::from("/");
        out.extend(
            path.components()
                .filter(|c| matches!(c, Component::Normal(_))),
        );
        return Ok(out);
    }
    confine::resolve_path(root, path).map_err(|source| HostError::Io {
        op: "resolving",
        path: path.to_path_buf(),
        source,
    })
}

/// Replace `name` in `dir` atomically: a new temporary file in `dir`, written, given its
/// owner and mode, fsynced, renamed over `name`, then the directory fsynced. On any error
/// the temporary file is removed and `name` is as it was.
fn replace_at(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    bytes: &[u8],
    mode: u32,
    owner: Option<(u32, u32)>,
) -> io::Result<()> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let (tmp, fd) = loop {
        let tmp = format!(
            ".iser-wizard.{}.{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        match rfs::openat(
            dir,
            tmp.as_str(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        ) {
            Ok(fd) => break (tmp, fd),
            Err(rustix::io::Errno::EXIST) => continue,
            Err(e) => return Err(e.into()),
        }
    };
    let done = (|| -> io::Result<()> {
        let mut f = fs::File::from(fd);
        f.write_all(bytes)?;
        if let Some((uid, gid)) = owner {
            // Keep the owner of the file being replaced; only root can, so an EPERM for an
            // unprivileged run on its own files is not an error. Before the chmod: a chown
            // clears set-id bits.
            let _ = rfs::fchown(
                &f,
                Some(rfs::Uid::from_raw(uid)),
                Some(rfs::Gid::from_raw(gid)),
            );
        }
        rfs::fchmod(&f, Mode::from_raw_mode(mode))?;
        f.sync_all()?;
        rfs::renameat(dir, tmp.as_str(), dir, name)?;
        Ok(())
    })();
    if done.is_err() {
        let _ = rfs::unlinkat(dir, tmp.as_str(), AtFlags::empty());
        return done;
    }
    match rfs::fsync(dir) {
        // Some filesystems cannot sync a directory; the rename is done either way.
        Ok(()) | Err(rustix::io::Errno::INVAL) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Read all of an open file.
fn read_fd(fd: OwnedFd) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    fs::File::from(fd).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// The state directory's log of commands and file changes. Disabled on dry runs and before
/// the answers are validated, so that nothing is written then.
#[derive(Debug, Default)]
pub struct Log {
    file: Mutex<Option<fs::File>>,
    /// Every command's wall time in this process, for `run --timings`.
    times: Mutex<Vec<(f64, String)>>,
}

impl Log {
    /// A log that records nothing.
    pub fn disabled() -> Self {
        Log::default()
    }

    /// Append to `path` (created 0600: outputs may name hosts and IQNs). A `path` that is
    /// a symlink is refused, never followed.
    pub fn open(path: &Path) -> io::Result<Self> {
        use std::os::unix::fs::OpenOptionsExt;
        let f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .map_err(|e| {
                if path.is_symlink() {
                    io::Error::other(format!(
                        "{} is a symbolic link; refused (never followed)",
                        path.display()
                    ))
                } else {
                    e
                }
            })?;
        Ok(Log {
            file: Mutex::new(Some(f)),
            times: Mutex::default(),
        })
    }

    /// Note how long a command took (its display form, secrets masked).
    pub fn time(&self, what: &str, seconds: f64) {
        let mut t = self.times.lock().unwrap_or_else(|e| e.into_inner());
        t.push((seconds, what.to_string()));
    }

    /// The `n` slowest commands noted so far, slowest first, and the total of all of them
    /// with their count.
    pub fn slowest(&self, n: usize) -> (Vec<(f64, String)>, f64, usize) {
        let t = self.times.lock().unwrap_or_else(|e| e.into_inner());
        let total = t.iter().map(|(s, _)| s).sum();
        let mut v = t.clone();
        v.sort_by(|a, b| b.0.total_cmp(&a.0));
        v.truncate(n);
        (v, total, t.len())
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
    /// Environment variables that hold secrets: no child process inherits them.
    secret_env: Vec<String>,
    /// The last output of each reusable probe (by argv) since the host last changed.
    kept: Mutex<std::collections::HashMap<Vec<String>, CmdOutput>>,
    /// Whether the tool-made paths absent before the first change were noted (once).
    paths_noted: AtomicBool,
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
            secret_env: Vec::new(),
            kept: Mutex::default(),
            paths_noted: AtomicBool::new(false),
        }
    }

    fn kept(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<Vec<String>, CmdOutput>> {
        self.kept.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keep these environment variables (the ones holding secrets, such as the CHAP
    /// password's) out of every command's environment: only the wizard itself reads them.
    pub fn without_env(mut self, names: impl IntoIterator<Item = String>) -> Self {
        self.secret_env.extend(names);
        self
    }

    fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> HostError + 'a {
        move |source| HostError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }

    /// Open a target path with `flags`, resolved inside the root.
    fn open(&self, path: &Path, flags: OFlags) -> io::Result<OwnedFd> {
        if is_host_root(&self.root) {
            return Ok(rfs::open(path, flags | OFlags::CLOEXEC, Mode::empty())?);
        }
        let base = confine::open_base(&self.root)?;
        confine::open(
            base.as_fd(),
            path,
            flags,
            Mode::empty(),
            confine::Resolve::InRoot,
        )
    }

    /// Open the directory `dir` (a target path) for `*at` calls, creating what is missing.
    fn dir_creating(&self, dir: &Path) -> io::Result<OwnedFd> {
        if is_host_root(&self.root) {
            fs::create_dir_all(dir)?;
            return Ok(rfs::open(
                dir,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )?);
        }
        let base = confine::open_base(&self.root)?;
        confine::create_dirs(
            base.as_fd(),
            dir,
            Mode::from_raw_mode(0o755),
            confine::Resolve::InRoot,
        )
    }

    /// The contents and status of a regular file at a target path; `None` when absent.
    fn current(&self, path: &Path) -> Result<Option<(Vec<u8>, rfs::Stat)>, HostError> {
        // O_NONBLOCK: a FIFO in its place must not hang the run (it is refused below).
        let fd = match self.open(path, OFlags::RDONLY | OFlags::NONBLOCK) {
            Ok(fd) => fd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Self::io("reading", path)(e)),
        };
        let st = rfs::fstat(&fd).map_err(|e| Self::io("reading", path)(e.into()))?;
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            return Err(Self::io("writing", path)(io::Error::other(
                "exists and is not a regular file",
            )));
        }
        let bytes = read_fd(fd).map_err(Self::io("reading", path))?;
        Ok(Some((bytes, st)))
    }
}

/// Of `names`, those `systemctl show` (`out`, of [`units::unit_states_cmd`]) says are not
/// enabled; none when it failed or answered for other units (nothing is then recorded as
/// the wizard's to disable, as when each unit's probe failed).
fn not_enabled(names: &[&str], out: Option<&CmdOutput>) -> Vec<String> {
    let Some(states) = out
        .filter(|o| o.success())
        .and_then(|o| units::parse_unit_states(&o.stdout, names.len()))
    else {
        return Vec::new();
    };
    names
        .iter()
        .zip(states)
        .filter(|(_, st)| st.enabled != "enabled")
        .map(|(u, _)| u.to_string())
        .collect()
}

/// Directories searched for programs besides PATH: root's tools live in sbin, which is not
/// on every user's PATH.
const EXTRA_PATH: &str = "/usr/local/sbin:/usr/sbin:/sbin:/usr/local/bin:/usr/bin:/bin";

impl RealHost {
    /// Before a command that may create something `undo` must take away: the units of a
    /// `systemctl enable` that are not enabled yet (only those are the wizard's to disable).
    fn units_not_enabled(&self, cmd: &Cmd) -> Vec<String> {
        let a = &cmd.argv;
        if self.backups.is_none() || a.len() < 3 || a[0] != "systemctl" || a[1] != "enable" {
            return Vec::new();
        }
        let names: Vec<&str> = a[2..]
            .iter()
            .map(String::as_str)
            .filter(|u| !u.starts_with('-'))
            .collect();
        if names.is_empty() {
            return Vec::new();
        }
        // One `systemctl show` for every unit, not one `is-enabled` each (which on Debian
        // also runs the SysV compatibility script per unit).
        let out = self.run_command(&units::unit_states_cmd(&names)).ok();
        not_enabled(&names, out.as_ref())
    }

    /// Before the first change this wizard makes: record which of the paths that tools
    /// create on their own (TOOL_PATHS) do not exist yet, so `undo` can take them away.
    /// Once per state directory: a later run finds them already made by the first.
    fn note_absent_paths(&self) -> Result<(), HostError> {
        let Some(dir) = &self.backups else {
            return Ok(());
        };
        if self.paths_noted.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let absent: Vec<String> = backup::TOOL_PATHS
            .iter()
            .filter(|p| !self.exists(Path::new(p)))
            .map(|p| p.to_string())
            .collect();
        backup::record_objects(dir, |o| {
            if !o.paths_checked {
                o.paths_checked = true;
                o.absent_before = absent;
            }
        })
        .map_err(|source| HostError::Io {
            op: "recording in",
            path: dir.join(backup::OBJECTS),
            source,
        })
    }

    /// Record in `backups/OBJECTS.json` what a change command created (or may create)
    /// that no file backup covers.
    fn record_objects(&self, new: backup::Objects) -> Result<(), HostError> {
        let Some(dir) = &self.backups else {
            return Ok(());
        };
        if new.is_empty() {
            return Ok(());
        }
        backup::record_objects(dir, |o| {
            o.units_enabled.extend(new.units_enabled);
            o.units_unmasked.extend(new.units_unmasked);
            o.ifaces.extend(new.ifaces);
            o.discoveries.extend(new.discoveries);
            o.nodes.extend(new.nodes);
        })
        .map_err(|source| HostError::Io {
            op: "recording in",
            path: dir.join(backup::OBJECTS),
            source,
        })
    }
}

impl RealHost {
    /// Run a command (the whole of [`Host::run`] but the record of what it created).
    fn run_command(&self, cmd: &Cmd) -> Result<CmdOutput, HostError> {
        if self.interrupt.is_set() {
            return Err(HostError::Interrupted);
        }
        if cmd.changes_host {
            self.forget();
        } else if cmd.reuse {
            if let Some(out) = self.kept().get(&cmd.argv).cloned() {
                self.log.entry(
                    &format!(
                        "reused {cmd} -> {} (nothing changed since it ran)",
                        out.describe_status()
                    ),
                    "",
                );
                return Ok(out);
            }
        }
        let program = self
            .which(cmd.program())
            .ok_or_else(|| HostError::NotFound {
                program: cmd.program().to_string(),
            })?;
        let start = Instant::now();
        let mut expr = duct::cmd(&program, &cmd.argv[1..])
            .stdin_null()
            .stdout_capture()
            .stderr_capture()
            .env("LC_ALL", "C")
            .unchecked();
        for name in &self.secret_env {
            expr = expr.env_remove(name);
        }
        let handle = expr.start().map_err(|source| HostError::Spawn {
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
        self.log
            .time(&cmd.to_string(), result.duration.as_secs_f64());
        if interrupted {
            return Err(HostError::Interrupted);
        }
        if cmd.changes_host {
            // What it changed shows only in probes run after it.
            self.forget();
        } else if cmd.reuse && !timed_out && result.code.is_some() {
            self.kept().insert(cmd.argv.clone(), result.clone());
        }
        Ok(result)
    }
}

/// What a change command that succeeded created that no file backup covers (units it
/// enabled: `enabled`, found not enabled before it ran; units unmasked; iSCSI ifaces,
/// SendTargets and node records). The program is known by its file name (`iscsiadm` or
/// `/usr/sbin/iscsiadm`). Pure.
pub fn objects_created(argv: &[String], enabled: Vec<String>) -> backup::Objects {
    let program = argv
        .first()
        .map(|p| p.rsplit('/').next().unwrap_or(p.as_str()));
    let a: Vec<&str> = program
        .into_iter()
        .chain(argv.iter().skip(1).map(String::as_str))
        .collect();
    let opt = |flag: &str| {
        a.iter()
            .position(|x| *x == flag)
            .and_then(|i| a.get(i + 1))
            .map(|v| v.to_string())
    };
    let mut o = backup::Objects::default();
    match a.as_slice() {
        ["systemctl", "enable", ..] => o.units_enabled = enabled,
        ["systemctl", "unmask", units @ ..] => {
            o.units_unmasked = units
                .iter()
                .filter(|u| !u.starts_with('-'))
                .map(|u| u.to_string())
                .collect()
        }
        ["iscsiadm", "-m", "iface", ..] if opt("-o").as_deref() == Some("new") => {
            o.ifaces.extend(opt("-I"))
        }
        ["iscsiadm", "-m", "discovery" | "discoverydb", ..]
            if matches!(opt("-o").as_deref(), None | Some("new")) =>
        {
            if let Some(p) = opt("-p") {
                o.discoveries
                    .push((p, opt("-I").unwrap_or_else(|| "default".into())));
            }
        }
        ["iscsiadm", "-m", "node", ..] if opt("-o").as_deref() == Some("new") => {
            if let (Some(t), Some(p)) = (opt("-T"), opt("-p")) {
                o.nodes.push((t, p, opt("-I")));
            }
        }
        _ => {}
    }
    o
}

/// Whether a change command's objects are recorded before it runs, not after it
/// succeeded: a SendTargets discovery writes its record first and may then fail or be
/// killed at its bound, leaving the record (and node records under it) behind; undo must
/// know of it. Its objects are known from its arguments. (Undo deletes only what it finds
/// still there.)
fn recorded_before(argv: &[String]) -> bool {
    !objects_created(argv, Vec::new()).discoveries.is_empty()
}

impl Host for RealHost {
    fn log_entry(&self, line: &str, detail: &str) {
        self.log.entry(line, detail);
    }

    fn run(&self, cmd: &Cmd) -> Result<CmdOutput, HostError> {
        if !cmd.changes_host {
            return self.run_command(cmd);
        }
        self.note_absent_paths()?;
        if recorded_before(&cmd.argv) {
            // Only a record the command makes: one that is there already (the admin's, or
            // noted by an earlier run of the wizard) is not the wizard's to delete on undo.
            let mut new = objects_created(&cmd.argv, Vec::new());
            new.discoveries.retain(|(portal, _)| {
                !crate::steps::sessions::leftover::iscsi_db_has(
                    self,
                    "send_targets",
                    &crate::steps::sessions::leftover::portal_dir(portal),
                )
                .unwrap_or(false)
            });
            self.record_objects(new)?;
            return self.run_command(cmd);
        }
        let enabled = self.units_not_enabled(cmd);
        let out = self.run_command(cmd)?;
        if out.success() {
            self.record_objects(objects_created(&cmd.argv, enabled))?;
        }
        Ok(out)
    }

    fn forget(&self) {
        self.kept().clear();
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
        check_target(path)?;
        match self.open(path, OFlags::RDONLY).and_then(read_fd) {
            Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Self::io("reading", path)(e)),
        }
    }

    fn list_dir(&self, path: &Path) -> Result<Vec<String>, HostError> {
        check_target(path)?;
        let fd = match self.open(path, OFlags::RDONLY | OFlags::DIRECTORY) {
            Ok(fd) => fd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Self::io("listing", path)(e)),
        };
        let dir = rfs::Dir::new(fd).map_err(|e| Self::io("listing", path)(e.into()))?;
        let mut names: Vec<String> = dir
            .filter_map(|e| e.ok())
            .map(|e| String::from_utf8_lossy(e.file_name().to_bytes()).into_owned())
            .filter(|n| n != "." && n != "..")
            .collect();
        names.sort();
        Ok(names)
    }

    fn exists(&self, path: &Path) -> bool {
        check_target(path).is_ok() && self.open(path, OFlags::PATH).is_ok()
    }

    fn write(&self, path: &Path, contents: &str, mode: u32) -> Result<WriteOutcome, HostError> {
        self.forget();
        if self.interrupt.is_set() {
            return Err(HostError::Interrupted);
        }
        check_target(path)?;
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
            return Err(HostError::BadPath(path.to_path_buf()));
        };
        let existing = self.current(path)?;
        if existing
            .as_ref()
            .is_some_and(|(cur, _)| cur == contents.as_bytes())
        {
            return Ok(WriteOutcome::Unchanged);
        }
        let dir = self
            .dir_creating(parent)
            .map_err(Self::io("creating the directory of", path))?;
        // The original is saved, complete and checked, before the file is touched.
        if let Some(backups) = &self.backups {
            match &existing {
                Some((bytes, st)) => backup::save_original(backups, path, bytes, st, &self.log),
                None => backup::record_created(backups, path),
            }
            .map_err(Self::io("backing up", path))?;
        }
        let keep_mode = existing
            .as_ref()
            .map(|(_, st)| st.st_mode & 0o7777)
            .unwrap_or(mode);
        let owner = existing.as_ref().map(|(_, st)| (st.st_uid, st.st_gid));
        replace_at(dir.as_fd(), name, contents.as_bytes(), keep_mode, owner)
            .map_err(Self::io("writing", path))?;
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
        rustix::process::geteuid().is_root()
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
    fn write_attr(&self, path: &Path, _value: &str) -> Result<(), HostError> {
        Err(HostError::DryRun(format!("write {}", path.display())))
    }
    fn remove_file(&self, path: &Path) -> Result<bool, HostError> {
        Err(HostError::DryRun(format!("remove {}", path.display())))
    }
    fn set_mode(&self, path: &Path, _mode: u32) -> Result<(), HostError> {
        Err(HostError::DryRun(format!("chmod {}", path.display())))
    }
    fn remove_dir(&self, path: &Path) -> Result<bool, HostError> {
        Err(HostError::DryRun(format!("remove {}", path.display())))
    }
    fn mode(&self, path: &Path) -> Result<Option<u32>, HostError> {
        self.0.mode(path)
    }
    fn read_link(&self, path: &Path) -> Result<Option<PathBuf>, HostError> {
        self.0.read_link(path)
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

    fn forget(&self) {
        self.0.forget()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn units_not_enabled_yet_are_read_from_one_systemctl_show() {
        let show = units::show_output(&[
            ("iscsid", "enabled", "active"),
            ("multipathd", "disabled", "inactive"),
            ("opensm@0x1", "static", "inactive"),
        ]);
        let names = ["iscsid", "multipathd", "opensm@0x1"];
        assert_eq!(
            not_enabled(&names, Some(&CmdOutput::ok(show.clone()))),
            ["multipathd", "opensm@0x1"]
        );
        // A failed or short answer records nothing.
        assert!(not_enabled(&names, Some(&CmdOutput::status(1, "", "Failed\n"))).is_empty());
        assert!(not_enabled(&names[..2], Some(&CmdOutput::ok(show))).is_empty());
        assert!(not_enabled(&names, None).is_empty());
    }

    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn host(root: &Path, backups: Option<PathBuf>) -> RealHost {
        RealHost::new(
            root.to_path_buf(),
            backups,
            Arc::new(Log::disabled()),
            Interrupt::new(),
        )
    }

    #[test]
    fn a_reusable_probe_runs_again_only_after_a_change_or_a_forget() {
        let root = tempfile::tempdir().unwrap();
        let h = host(root.path(), None);
        // Prints its own process id: a new run prints another number.
        let probe = Cmd::probe(["sh", "-c", "echo $$"]).reusable();
        let first = h.run(&probe).unwrap().stdout;
        assert_eq!(h.run(&probe).unwrap().stdout, first);
        // Not reusable: runs every time.
        let plain = Cmd::probe(["sh", "-c", "echo $$"]);
        assert_ne!(h.run(&plain).unwrap().stdout, first);
        assert_eq!(h.run(&probe).unwrap().stdout, first);
        h.run(&Cmd::change(["true"])).unwrap();
        let second = h.run(&probe).unwrap().stdout;
        assert_ne!(second, first);
        h.forget();
        let third = h.run(&probe).unwrap().stdout;
        assert_ne!(third, second);
        h.write(Path::new("/x"), "y", 0o644).unwrap();
        assert_ne!(h.run(&probe).unwrap().stdout, third);
        // A change command is never reused.
        assert!(!Cmd::change(["true"]).reusable().reuse);
    }

    #[test]
    fn commands_that_create_objects_are_recognised() {
        let argv = |s: &str| s.split_whitespace().map(str::to_string).collect::<Vec<_>>();
        let o = objects_created(&argv("iscsiadm -m iface -I iface-vA -o new"), vec![]);
        assert_eq!(o.ifaces, ["iface-vA"]);
        let o = objects_created(
            &argv("iscsiadm -m discovery -t st -p 192.168.130.101:3260 -I iface-vA"),
            vec![],
        );
        assert_eq!(
            o.discoveries,
            [("192.168.130.101:3260".into(), "iface-vA".into())]
        );
        let o = objects_created(
            &argv("iscsiadm -m node -T iqn.x -p 10.0.0.1:3260 -I iface-vB -o new"),
            vec![],
        );
        assert_eq!(
            o.nodes,
            [(
                "iqn.x".into(),
                "10.0.0.1:3260".into(),
                Some("iface-vB".into())
            )]
        );
        // Enabled units are those found not enabled before the command ran.
        let o = objects_created(
            &argv("systemctl enable --now iscsid"),
            vec!["iscsid".into()],
        );
        assert_eq!(o.units_enabled, ["iscsid"]);
        assert!(objects_created(&argv("systemctl enable --now iscsid"), vec![]).is_empty());
        assert_eq!(
            objects_created(&argv("systemctl unmask opensm"), vec![]).units_unmasked,
            ["opensm"]
        );
        // Updates and deletions create nothing.
        for a in [
            "iscsiadm -m node -T iqn.x -p 10.0.0.1:3260 -o update -n node.startup -v manual",
            "iscsiadm -m iface -I iface-vA -o update -n iface.net_ifacename -v vA",
            "iscsiadm -m discoverydb -t st -p 10.0.0.1:3260 -o delete",
            "multipath -f mpatha",
        ] {
            assert!(objects_created(&argv(a), vec![]).is_empty(), "{a}");
        }
    }

    #[test]
    fn a_discovery_s_record_is_noted_even_when_the_discovery_fails() {
        // A SendTargets discovery writes its record before it asks; killed or failed, it
        // leaves the record, which undo must know of. `iscsiadm` here is `false`.
        let root = tempfile::tempdir().unwrap();
        let state = tempfile::tempdir().unwrap();
        let bin = tempfile::tempdir().unwrap();
        let Some(f) = ["/bin/false", "/usr/bin/false"]
            .into_iter()
            .find(|p| Path::new(p).exists())
        else {
            eprintln!("skipped: no `false` to stand in for iscsiadm");
            return;
        };
        let fake = bin.path().join("iscsiadm");
        std::os::unix::fs::symlink(f, &fake).unwrap();
        let backups = state.path().join("backups");
        let h = host(root.path(), Some(backups.clone()));
        let prog = fake.to_string_lossy().into_owned();
        let argv = [
            prog.as_str(),
            "-m",
            "discovery",
            "-t",
            "st",
            "-p",
            "192.0.2.7:3260",
            "-I",
            "iface-vA",
        ];
        let out = h.run(&Cmd::change(argv)).unwrap();
        assert!(!out.success());
        let o = backup::load_objects(&backups).unwrap();
        assert_eq!(
            o.discoveries,
            [("192.0.2.7:3260".to_string(), "iface-vA".to_string())]
        );
        // Other commands are still recorded only when they succeed.
        let argv = [prog.as_str(), "-m", "iface", "-I", "iface-vB", "-o", "new"];
        assert!(!h.run(&Cmd::change(argv)).unwrap().success());
        assert!(backup::load_objects(&backups).unwrap().ifaces.is_empty());
        // A discovery from a portal whose record is there already (the admin's) is not
        // noted: undo must not delete what the wizard did not make.
        let db = root.path().join("etc/iscsi/send_targets/192.0.2.8,3260");
        std::fs::create_dir_all(&db).unwrap();
        std::fs::write(db.join("st_config"), "discovery.type = sendtargets\n").unwrap();
        let argv = [
            prog.as_str(),
            "-m",
            "discoverydb",
            "-t",
            "st",
            "-p",
            "192.0.2.8:3260",
            "-I",
            "iface-vA",
            "--discover",
        ];
        h.run(&Cmd::change(argv)).unwrap();
        assert_eq!(
            backup::load_objects(&backups).unwrap().discoveries,
            [("192.0.2.7:3260".to_string(), "iface-vA".to_string())]
        );
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
    fn the_chap_secret_variable_is_in_no_childs_environment() {
        let root = tempfile::tempdir().unwrap();
        let var = "ISER_WIZARD_TEST_CHAP_SECRET_ENV";
        // Set once, for this test's own variable name only.
        std::env::set_var(var, "s3cret");
        let plain = host(root.path(), None);
        assert!(plain
            .run(&Cmd::probe(["env"]))
            .unwrap()
            .stdout
            .contains(var));
        let h = host(root.path(), None).without_env([var.to_string()]);
        let env = h.run(&Cmd::probe(["env"])).unwrap().stdout;
        assert!(!env.contains(var) && !env.contains("s3cret"), "{env}");
    }

    #[test]
    fn every_command_s_time_is_kept_for_the_timings_summary() {
        let root = tempfile::tempdir().unwrap();
        let log = Arc::new(Log::disabled());
        let h = RealHost::new(
            root.path().to_path_buf(),
            None,
            log.clone(),
            Interrupt::new(),
        );
        h.run(&Cmd::probe(["sleep", "0.2"])).unwrap();
        h.run(&Cmd::probe(["true"])).unwrap();
        let (slow, total, count) = log.slowest(1);
        assert_eq!(count, 2);
        assert_eq!(slow.len(), 1);
        assert_eq!(slow[0].1, "sleep 0.2");
        assert!(slow[0].0 >= 0.2 && total >= slow[0].0, "{slow:?} {total}");
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

    /// A tree with `ROOT/etc` (or `ROOT/etc/iscsi`) leading out of the root, and a file
    /// outside that must never be touched.
    struct Escape {
        _tmp: tempfile::TempDir,
        root: PathBuf,
        outside: PathBuf,
        state: PathBuf,
    }

    fn escape(link_at: &str, absolute: bool) -> Escape {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        let outside = tmp.path().join("outside");
        fs::create_dir_all(outside.join("iscsi")).unwrap();
        fs::write(outside.join("iscsi/iscsid.conf"), "outside\n").unwrap();
        let state = tmp.path().join("state");
        fs::create_dir_all(&state).unwrap();
        let (link, target) = match (link_at, absolute) {
            ("etc", true) => (root.join("etc"), outside.clone()),
            ("etc", false) => (root.join("etc"), PathBuf::from("../outside")),
            (_, true) => (root.join("etc/iscsi"), outside.join("iscsi")),
            (_, false) => (root.join("etc/iscsi"), PathBuf::from("../../outside/iscsi")),
        };
        fs::create_dir_all(link.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(target, &link).unwrap();
        Escape {
            _tmp: tmp,
            root,
            outside,
            state,
        }
    }

    #[test]
    fn root_does_not_confine_writes_through_a_symlink_out_of_it() {
        for (link_at, absolute) in [
            ("etc", true),
            ("etc", false),
            ("etc/iscsi", true),
            ("etc/iscsi", false),
        ] {
            let t = escape(link_at, absolute);
            let h = host(&t.root, Some(t.state.join("backups")));
            let p = Path::new("/etc/iscsi/iscsid.conf");
            let case = format!("{link_at} absolute={absolute}");
            // Reads and existence checks do not see the file outside the root.
            assert_eq!(h.read(p).unwrap(), None, "{case}");
            assert!(!h.exists(p), "{case}");
            assert!(
                h.list_dir(Path::new("/etc/iscsi")).unwrap().is_empty(),
                "{case}"
            );
            // The link's target does not exist inside the root: the write fails, as
            // `mkdir -p` in a chroot would, and nothing outside changes.
            assert!(h.write(p, "inside\n", 0o600).is_err(), "{case}");
            let untouched = |t: &Escape| {
                assert_eq!(
                    fs::read_to_string(t.outside.join("iscsi/iscsid.conf")).unwrap(),
                    "outside\n",
                    "{case}"
                );
                assert_eq!(
                    fs::read_dir(t.outside.join("iscsi")).unwrap().count(),
                    1,
                    "{case}"
                );
                assert!(
                    !t.state.join("backups/etc/iscsi/iscsid.conf").exists(),
                    "{case}"
                );
            };
            untouched(&t);
            // Once it exists inside the root, the write lands there, where a chroot puts it.
            let real = under_root(&t.root, p).unwrap();
            assert!(real.starts_with(&t.root), "{case}: {}", real.display());
            fs::create_dir_all(real.parent().unwrap()).unwrap();
            assert_eq!(
                h.write(p, "inside\n", 0o600).unwrap(),
                WriteOutcome::Created,
                "{case}"
            );
            untouched(&t);
            assert_eq!(h.read(p).unwrap().as_deref(), Some("inside\n"), "{case}");
            assert!(h.exists(p), "{case}");
            assert_eq!(fs::read_to_string(&real).unwrap(), "inside\n", "{case}");
        }
    }

    #[test]
    fn root_confines_writes_without_openat2_too() {
        confine::FORCE_WALK.with(|f| f.set(true));
        for (link_at, absolute) in [
            ("etc", true),
            ("etc", false),
            ("etc/iscsi", true),
            ("etc/iscsi", false),
        ] {
            let t = escape(link_at, absolute);
            let h = host(&t.root, Some(t.state.join("backups")));
            let p = Path::new("/etc/iscsi/iscsid.conf");
            let case = format!("{link_at} absolute={absolute}");
            assert_eq!(h.read(p).ok().flatten(), None, "{case}");
            assert!(!h.exists(p), "{case}");
            // Make the absolute link's target exist inside the root; a relative link that
            // climbs out is refused by the walk whatever exists.
            let real = under_root(&t.root, p).unwrap();
            fs::create_dir_all(real.parent().unwrap()).unwrap();
            let wrote = h.write(p, "inside\n", 0o600);
            assert_eq!(wrote.is_ok(), absolute, "{case}: {wrote:?}");
            assert_eq!(
                fs::read_to_string(t.outside.join("iscsi/iscsid.conf")).unwrap(),
                "outside\n",
                "{case}"
            );
            assert_eq!(
                fs::read_dir(t.outside.join("iscsi")).unwrap().count(),
                1,
                "{case}"
            );
            if absolute {
                assert_eq!(fs::read_to_string(&real).unwrap(), "inside\n", "{case}");
            }
        }
    }

    #[test]
    fn root_slash_resolves_paths_as_the_host_does() {
        let h = host(Path::new("/"), None);
        assert!(h.exists(Path::new("/proc/self/status")));
        assert!(h.read(Path::new("/proc/mounts")).unwrap().is_some());
        assert!(!h.list_dir(Path::new("/proc/self")).unwrap().is_empty());
        assert_eq!(
            under_root(Path::new("/"), Path::new("/proc/mounts")).unwrap(),
            PathBuf::from("/proc/mounts")
        );
    }

    /// A 74 KB file, as iscsid.conf is.
    fn big_original() -> String {
        (0..2000)
            .map(|i| format!("# line {i:05} of the original file\n"))
            .collect()
    }

    #[test]
    fn a_backup_cut_short_is_redone_not_trusted() {
        let root = tempfile::tempdir().unwrap();
        let state = tempfile::tempdir().unwrap();
        let backups = state.path().join("backups");
        let original = big_original();
        let real = root.path().join("etc/iscsi/iscsid.conf");
        fs::create_dir_all(real.parent().unwrap()).unwrap();
        fs::write(&real, &original).unwrap();
        // What an earlier run cut short left: 32 KiB of the original, never checked.
        let cut = backups.join("etc/iscsi/iscsid.conf");
        fs::create_dir_all(cut.parent().unwrap()).unwrap();
        fs::write(&cut, &original.as_bytes()[..32 * 1024]).unwrap();

        let h = host(root.path(), Some(backups.clone()));
        let p = Path::new("/etc/iscsi/iscsid.conf");
        assert_eq!(h.write(p, "new\n", 0o600).unwrap(), WriteOutcome::Replaced);
        assert_eq!(fs::read_to_string(&cut).unwrap(), original);
        assert_eq!(fs::read_to_string(&real).unwrap(), "new\n");
    }

    /// A tmpfs of `size` mounted on a fresh directory; unmounted on drop.
    struct SmallFs(tempfile::TempDir);

    impl SmallFs {
        fn mount(size: &str) -> Option<SmallFs> {
            if !rustix::process::geteuid().is_root() {
                eprintln!("note: not root; skipping the full-disk case");
                return None;
            }
            let dir = tempfile::tempdir().unwrap();
            let ok = std::process::Command::new("mount")
                .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
                .arg(dir.path())
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                eprintln!("note: cannot mount a tmpfs here; skipping the full-disk case");
                return None;
            }
            Some(SmallFs(dir))
        }

        fn resize(&self, size: &str) {
            let ok = std::process::Command::new("mount")
                .args(["-o", &format!("remount,size={size}")])
                .arg(self.0.path())
                .status()
                .unwrap();
            assert!(ok.success());
        }
    }

    impl Drop for SmallFs {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount")
                .arg(self.0.path())
                .status();
        }
    }

    #[test]
    fn a_backup_on_a_full_disk_is_never_trusted_and_the_original_is_untouched() {
        let Some(small) = SmallFs::mount("32k") else {
            return;
        };
        let root = tempfile::tempdir().unwrap();
        let backups = small.0.path().join("backups");
        let original = big_original();
        let real = root.path().join("etc/iscsi/iscsid.conf");
        fs::create_dir_all(real.parent().unwrap()).unwrap();
        fs::write(&real, &original).unwrap();
        let h = host(root.path(), Some(backups.clone()));
        let p = Path::new("/etc/iscsi/iscsid.conf");

        let e = h.write(p, "new\n", 0o600).unwrap_err();
        assert!(e.to_string().contains("No space left on device"), "{e}");
        assert_eq!(fs::read_to_string(&real).unwrap(), original);

        // Room again: the next run makes a whole backup before changing the file.
        small.resize("1m");
        assert_eq!(h.write(p, "new\n", 0o600).unwrap(), WriteOutcome::Replaced);
        assert_eq!(
            fs::read_to_string(backups.join("etc/iscsi/iscsid.conf")).unwrap(),
            original
        );
        assert_eq!(fs::read_to_string(&real).unwrap(), "new\n");
    }
}
