//! The state directory: `state.json` (steps done, facts found, schema version),
//! `worksheet.json`, `answers.json` (the effective answers, secrets redacted), `log`,
//! `backups/`, `lock`.
//!
//! Contract:
//! - Nothing here is created before the answers are validated, and nothing at all on a dry
//!   run. Every file is written atomically (temporary file, fsync, rename) with mode 0600.
//! - The directory is created 0700, and refused when group or others can write to it or
//!   another (non-root) user owns it: whoever can write there can rewrite what `undo`
//!   restores. `log`, `backups`, `lock` and the state files are refused when they are
//!   symlinks, never followed.
//! - `state.json` carries a schema version; a file of any version but
//!   [`STATE_VERSION`] (or none) is refused, never read as if it were this one.
//! - One changing command at a time: [`StateDir::lock`] takes an exclusive `flock` on
//!   `lock`, holding this process's pid, for as long as the returned [`StateLock`] lives;
//!   a second holder is refused at once with [`StateError::Busy`] naming the first. A dry
//!   run writes nothing, so it takes no lock: it reads files that are only ever replaced
//!   whole (rename), so it sees one consistent state, at worst one step old.

use std::fs;
use std::io::{self, Read as _, Write};
use std::os::unix::fs::{DirBuilderExt, FileExt as _, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::steps::plan::Completed;
use crate::steps::Facts;
use crate::worksheets::{DetachRecord, Worksheet};

/// The schema version of `state.json` this wizard writes and reads.
pub const STATE_VERSION: u32 = 1;

/// Why the state directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Reading or writing failed.
    #[error("{op} {}: {source}", .path.display())]
    Io {
        /// What was being done ("reading", "writing", ...).
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// A state file is not valid JSON of the expected shape.
    #[error("{}: not a state file of this wizard: {source}", .path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What does not parse.
        source: serde_json::Error,
    },
    /// `state.json` has another schema version.
    #[error("{}: schema version {}, but iser-wizard {} reads version {STATE_VERSION} only; \
             refused (run the version of the wizard that wrote it, or move the state \
             directory aside)", .path.display(),
             .found.map(|v| v.to_string()).unwrap_or_else(|| "none".into()),
             env!("CARGO_PKG_VERSION"))]
    Version {
        /// The file.
        path: PathBuf,
        /// The version it declares, if any.
        found: Option<u64>,
    },
    /// A file of the state directory is a symlink.
    #[error("{} is a symbolic link; refused (never followed)", .0.display())]
    Symlink(PathBuf),
    /// Others can write to the state directory.
    #[error("{}: group or others can write to it (mode {mode:o}); refused: `chmod go-w` it \
             or use another --state-dir", .path.display())]
    Writable {
        /// The directory.
        path: PathBuf,
        /// Its mode.
        mode: u32,
    },
    /// Another user owns the state directory.
    #[error("{}: owned by uid {uid}, neither root nor this user; refused", .path.display())]
    Owner {
        /// The directory.
        path: PathBuf,
        /// Its owner.
        uid: u32,
    },
    /// Another command holds the state directory.
    #[error("another iser-wizard ({}) is using the state directory {}; nothing was \
             changed: wait for it to finish, then run again",
             .pid.map(|p| format!("pid {p}")).unwrap_or_else(|| "pid unknown".into()),
             .path.display())]
    Busy {
        /// The state directory.
        path: PathBuf,
        /// The holder's pid, as it wrote it in `lock`.
        pid: Option<u32>,
    },
}

/// The current run and what it has done.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunRecord {
    /// When the run started.
    pub started_at: String,
    /// When it finished (all selected steps done).
    pub finished_at: Option<String>,
    /// Digest of the answers it runs with: a resume with other answers starts over.
    pub answers_digest: String,
    /// Steps completed in this run, in order.
    pub done: Vec<Completed>,
    /// What was on the host before the run's first volume-level step: a failure takes
    /// down only what is new since (kept through a resume).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<crate::steps::detach::rollback::Before>,
    /// Directories the run made (`mkdir`), which a cleanup after a failure removes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub made_dirs: Vec<String>,
    /// The cleanup after the run's last failure, if one ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cleanup: Option<CleanupRecord>,
}

/// The cleanup after a failed run: what it removed and what it could not.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CleanupRecord {
    /// When it ran.
    pub at: String,
    /// The step that failed.
    pub step: String,
    /// Each thing removed, as the operator read it.
    pub removed: Vec<String>,
    /// What it could not remove, and why.
    pub left: Vec<String>,
}

/// `state.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct State {
    /// Schema version ([`STATE_VERSION`]).
    pub version: u32,
    /// The last run.
    pub run: RunRecord,
    /// Facts learned.
    pub facts: Facts,
    /// Volumes `detach` took off the host, oldest first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub detached: Vec<DetachRecord>,
}

impl Default for State {
    fn default() -> Self {
        State {
            version: STATE_VERSION,
            run: RunRecord::default(),
            facts: Facts::default(),
            detached: Vec::new(),
        }
    }
}

/// The state directory.
#[derive(Debug, Clone)]
pub struct StateDir {
    /// Its path.
    pub path: PathBuf,
}

/// Held while a changing command uses the state directory; dropping it releases the lock.
#[derive(Debug)]
pub struct StateLock {
    _file: fs::File,
}

/// The names in the state directory that must never be symlinks.
const OWN_NAMES: [&str; 6] = [
    "state.json",
    "worksheet.json",
    "answers.json",
    "log",
    "backups",
    "lock",
];

fn symlink_refused(path: &Path) -> io::Error {
    io::Error::other(format!(
        "{} is a symbolic link; refused (never followed)",
        path.display()
    ))
}

/// Write a file atomically with mode 0600. A `path` that is a symlink is refused (the
/// rename would replace the link; refusing says plainly that something is off).
pub fn write_private(path: &Path, contents: &[u8]) -> io::Result<()> {
    if path.is_symlink() {
        return Err(symlink_refused(path));
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".iser-wizard.")
        .tempfile_in(dir)?;
    tmp.write_all(contents)?;
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(0o600))?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

impl StateDir {
    /// A state directory at `path` (not created yet).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        StateDir { path: path.into() }
    }

    /// Create it (0700) with `backups/`, or check the one there: refused when others can
    /// write to it or when one of its own files is a symlink.
    pub fn create(&self) -> Result<(), StateError> {
        let io = |op, path: &Path| {
            let path = path.to_path_buf();
            move |source| StateError::Io { op, path, source }
        };
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.path)
            .map_err(io("creating", &self.path))?;
        // The directory itself may be reached through a symlink the operator made
        // (/var/lib/iser-wizard -> /srv/...): what counts is the directory it names.
        let meta = fs::metadata(&self.path).map_err(io("checking", &self.path))?;
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o022 != 0 {
            return Err(StateError::Writable {
                path: self.path.clone(),
                mode,
            });
        }
        let me = rustix::process::geteuid().as_raw();
        if meta.uid() != me && meta.uid() != 0 {
            return Err(StateError::Owner {
                path: self.path.clone(),
                uid: meta.uid(),
            });
        }
        for name in OWN_NAMES {
            let p = self.path.join(name);
            if p.is_symlink() {
                return Err(StateError::Symlink(p));
            }
        }
        match fs::DirBuilder::new().mode(0o700).create(self.backups()) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
                Err(io("creating", &self.backups())(e))
            }
            _ => Ok(()),
        }
    }

    /// Take the state directory for one changing command (`run`, and `detach`, `undo`,
    /// `tune`): creates and checks it as [`StateDir::create`] does, then takes an
    /// exclusive lock, refused at once ([`StateError::Busy`]) while another process holds
    /// it. The lock lasts as long as the returned value.
    pub fn lock(&self) -> Result<StateLock, StateError> {
        self.create()?;
        let path = self.path.join("lock");
        let io = |op| {
            let path = path.clone();
            move |source| StateError::Io { op, path, source }
        };
        let mut file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .map_err(|e| {
                if path.is_symlink() {
                    StateError::Symlink(path.clone())
                } else {
                    io("opening")(e)
                }
            })?;
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                return Err(StateError::Busy {
                    path: self.path.clone(),
                    pid: text.trim().parse().ok(),
                });
            }
            Err(e) => return Err(io("locking")(e.into())),
        }
        // The pid is for the message of whoever is refused; the lock is the flock itself,
        // which the kernel drops when this process ends, however it ends.
        file.set_len(0).map_err(io("writing"))?;
        file.write_all_at(format!("{}\n", std::process::id()).as_bytes(), 0)
            .map_err(io("writing"))?;
        Ok(StateLock { _file: file })
    }

    /// `log`.
    pub fn log(&self) -> PathBuf {
        self.path.join("log")
    }

    /// `backups/`.
    pub fn backups(&self) -> PathBuf {
        self.path.join("backups")
    }

    /// The bytes of a state file, `None` when absent; a symlink is refused.
    fn read(&self, name: &str) -> Result<Option<Vec<u8>>, StateError> {
        let p = self.path.join(name);
        let opened = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&p);
        let mut f = match opened {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(_) if p.is_symlink() => return Err(StateError::Symlink(p)),
            Err(source) => {
                return Err(StateError::Io {
                    op: "reading",
                    path: p,
                    source,
                })
            }
        };
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes).map_err(|source| StateError::Io {
            op: "reading",
            path: p,
            source,
        })?;
        Ok(Some(bytes))
    }

    fn load<T: for<'de> Deserialize<'de>>(&self, name: &str) -> Result<Option<T>, StateError> {
        let Some(bytes) = self.read(name)? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| StateError::Corrupt {
                path: self.path.join(name),
                source,
            })
    }

    fn save<T: Serialize>(&self, name: &str, v: &T) -> Result<(), StateError> {
        let path = self.path.join(name);
        if path.is_symlink() {
            return Err(StateError::Symlink(path));
        }
        let mut text = serde_json::to_vec_pretty(v).map_err(|e| StateError::Io {
            op: "encoding",
            path: path.clone(),
            source: io::Error::other(e),
        })?;
        text.push(b'\n');
        write_private(&path, &text).map_err(|source| StateError::Io {
            op: "writing",
            path,
            source,
        })
    }

    /// `state.json`, or a fresh state; refused when its schema version is not
    /// [`STATE_VERSION`].
    pub fn load_state(&self) -> Result<State, StateError> {
        let path = self.path.join("state.json");
        let Some(v) = self.load::<serde_json::Value>("state.json")? else {
            return Ok(State::default());
        };
        let found = v.get("version").and_then(serde_json::Value::as_u64);
        if found != Some(u64::from(STATE_VERSION)) {
            return Err(StateError::Version { path, found });
        }
        serde_json::from_value(v).map_err(|source| StateError::Corrupt { path, source })
    }

    /// Save `state.json`.
    pub fn save_state(&self, s: &State) -> Result<(), StateError> {
        self.save("state.json", s)
    }

    /// `worksheet.json`, or an empty worksheet.
    pub fn load_worksheet(&self) -> Result<Worksheet, StateError> {
        Ok(self.load("worksheet.json")?.unwrap_or_default())
    }

    /// Save `worksheet.json`.
    pub fn save_worksheet(&self, w: &Worksheet) -> Result<(), StateError> {
        self.save("worksheet.json", w)
    }

    /// Save `answers.json`.
    pub fn save_answers(&self, v: &serde_json::Value) -> Result<(), StateError> {
        self.save("answers.json", v)
    }

    /// `answers.json` of the last run (`None`: no run saved it).
    pub fn load_answers(&self) -> Result<Option<serde_json::Value>, StateError> {
        self.load("answers.json")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_files_are_private() {
        let d = tempfile::tempdir().unwrap();
        let sd = StateDir::new(d.path().join("state"));
        assert_eq!(sd.load_state().unwrap(), State::default());
        sd.create().unwrap();
        let mut s = State::default();
        s.facts.kernel = Some("6.1.0".into());
        sd.save_state(&s).unwrap();
        assert_eq!(sd.load_state().unwrap(), s);
        let mode = fs::metadata(sd.path.join("state.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let dmode = fs::metadata(&sd.path).unwrap().permissions().mode();
        assert_eq!(dmode & 0o777, 0o700);
    }

    #[test]
    fn a_corrupt_state_file_is_an_error_naming_it() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("state.json"), "{").unwrap();
        let e = StateDir::new(d.path()).load_state().unwrap_err();
        assert!(e.to_string().contains("state.json"), "{e}");
    }

    #[test]
    fn a_state_file_of_another_schema_version_is_refused() {
        for (text, version) in [
            ("{\"version\": 0}", "0"),
            ("{\"version\": 99}", "99"),
            ("{\"run\": {}}", "none"),
        ] {
            let d = tempfile::tempdir().unwrap();
            fs::write(d.path().join("state.json"), text).unwrap();
            let e = StateDir::new(d.path())
                .load_state()
                .unwrap_err()
                .to_string();
            assert!(e.contains("state.json"), "{e}");
            assert!(e.contains(&format!("schema version {version}")), "{e}");
        }
        // What this version writes, it reads.
        let d = tempfile::tempdir().unwrap();
        let sd = StateDir::new(d.path());
        sd.save_state(&State::default()).unwrap();
        let text = fs::read_to_string(d.path().join("state.json")).unwrap();
        assert!(text.contains("\"version\": 1"), "{text}");
        assert_eq!(sd.load_state().unwrap(), State::default());
    }

    #[test]
    fn the_state_dir_is_created_0700_and_refused_when_others_can_write() {
        let d = tempfile::tempdir().unwrap();
        let sd = StateDir::new(d.path().join("new/state"));
        sd.create().unwrap();
        let mode = fs::metadata(&sd.path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        for open in [0o777, 0o770, 0o702, 0o1777] {
            fs::set_permissions(&sd.path, fs::Permissions::from_mode(open)).unwrap();
            let e = sd.create().unwrap_err().to_string();
            assert!(e.contains("can write"), "{open:o}: {e}");
        }
        fs::set_permissions(&sd.path, fs::Permissions::from_mode(0o755)).unwrap();
        sd.create().unwrap();
    }

    #[test]
    fn symlinks_in_the_state_dir_are_refused_never_followed() {
        for name in [
            "state.json",
            "log",
            "backups",
            "worksheet.json",
            "answers.json",
        ] {
            let d = tempfile::tempdir().unwrap();
            let target = d.path().join("elsewhere");
            fs::write(&target, "{\"version\": 1}").unwrap();
            let sd = StateDir::new(d.path().join("state"));
            fs::create_dir(&sd.path).unwrap();
            std::os::unix::fs::symlink(&target, sd.path.join(name)).unwrap();
            let e = sd.create().unwrap_err().to_string();
            assert!(
                e.contains(name) && e.contains("symbolic link"),
                "{name}: {e}"
            );
            if name == "state.json" {
                let e = sd.load_state().unwrap_err().to_string();
                assert!(e.contains("symbolic link"), "{e}");
                assert!(sd.save_state(&State::default()).is_err());
            }
            assert_eq!(fs::read_to_string(&target).unwrap(), "{\"version\": 1}");
        }
    }

    #[test]
    fn a_second_run_on_one_state_dir_is_refused_naming_the_holder() {
        let d = tempfile::tempdir().unwrap();
        let sd = StateDir::new(d.path().join("state"));
        let held = sd.lock().unwrap();
        let e = sd.lock().unwrap_err();
        assert!(matches!(e, StateError::Busy { .. }), "{e}");
        let text = e.to_string();
        assert!(
            text.contains(&format!("pid {}", std::process::id())),
            "{text}"
        );
        drop(held);
        let _again = sd.lock().unwrap();
    }
}
