//! The state directory: `state.json` (steps done, facts found), `worksheet.json`,
//! `answers.json` (the effective answers, secrets redacted), `log`, `backups/`.
//!
//! Nothing here is created before the answers are validated, and nothing at all on a dry run.
//! Every file is written atomically (temporary file, fsync, rename) with mode 0600.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::steps::plan::Completed;
use crate::steps::Facts;
use crate::worksheets::Worksheet;

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
}

/// `state.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct State {
    /// Format version.
    pub version: u32,
    /// The last run.
    pub run: RunRecord,
    /// Facts learned.
    pub facts: Facts,
}

impl Default for State {
    fn default() -> Self {
        State {
            version: 1,
            run: RunRecord::default(),
            facts: Facts::default(),
        }
    }
}

/// The state directory.
#[derive(Debug, Clone)]
pub struct StateDir {
    /// Its path.
    pub path: PathBuf,
}

/// Write a file atomically with mode 0600.
pub fn write_private(path: &Path, contents: &[u8]) -> io::Result<()> {
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

    /// Create it (0700) with `backups/`.
    pub fn create(&self) -> io::Result<()> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(self.path.join("backups"))
    }

    /// `log`.
    pub fn log(&self) -> PathBuf {
        self.path.join("log")
    }

    /// `backups/`.
    pub fn backups(&self) -> PathBuf {
        self.path.join("backups")
    }

    fn load<T: for<'de> Deserialize<'de>>(&self, name: &str) -> io::Result<Option<T>> {
        let p = self.path.join(name);
        match fs::read(&p) {
            Ok(b) => serde_json::from_slice(&b).map(Some).map_err(|e| {
                io::Error::new(io::ErrorKind::InvalidData, format!("{}: {e}", p.display()))
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io::Error::new(e.kind(), format!("{}: {e}", p.display()))),
        }
    }

    fn save<T: Serialize>(&self, name: &str, v: &T) -> io::Result<()> {
        let mut text = serde_json::to_vec_pretty(v).map_err(io::Error::other)?;
        text.push(b'\n');
        write_private(&self.path.join(name), &text)
    }

    /// `state.json`, or a fresh state.
    pub fn load_state(&self) -> io::Result<State> {
        Ok(self.load("state.json")?.unwrap_or_default())
    }

    /// Save `state.json`.
    pub fn save_state(&self, s: &State) -> io::Result<()> {
        self.save("state.json", s)
    }

    /// `worksheet.json`, or an empty worksheet.
    pub fn load_worksheet(&self) -> io::Result<Worksheet> {
        Ok(self.load("worksheet.json")?.unwrap_or_default())
    }

    /// Save `worksheet.json`.
    pub fn save_worksheet(&self, w: &Worksheet) -> io::Result<()> {
        self.save("worksheet.json", w)
    }

    /// Save `answers.json`.
    pub fn save_answers(&self, v: &serde_json::Value) -> io::Result<()> {
        self.save("answers.json", v)
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
}
