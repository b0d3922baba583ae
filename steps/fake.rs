//! A recording fake of [`Host`] for tests.
//!
//! Commands are answered from expectations set up by the test; files live in a real
//! temporary directory used as the root (so atomic writes and backups are the real code).
//! The fake fails the test when a command ran that was not expected, or when an expected
//! command did not run: call [`FakeHost::finish`] at the end (dropping it checks too).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::steps::host::{Cmd, CmdOutput, Host, HostError, Interrupt, Log, RealHost, WriteOutcome};

#[derive(Debug)]
struct Expectation {
    argv: Vec<String>,
    output: CmdOutput,
    /// `None`: any number of times, at least zero; `Some(n)`: exactly n times.
    times: Option<usize>,
    used: usize,
}

/// The recording fake. Files live below a temporary root owned by the fake.
pub struct FakeHost {
    files: RealHost,
    _root: Option<tempfile::TempDir>,
    expectations: Mutex<Vec<Expectation>>,
    ran: Mutex<Vec<Cmd>>,
    unexpected: Mutex<Vec<String>>,
    programs: Mutex<BTreeSet<String>>,
    all_programs: bool,
    checked: Mutex<bool>,
    root_user: bool,
}

impl FakeHost {
    /// A fake with an empty temporary root where every program is "installed".
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("creating a temporary root");
        let root = dir.path().to_path_buf();
        Self::build(root, None, Some(dir), true)
    }

    /// A fake whose files live below `root`, with backups saved to `backups`.
    pub fn with_root(root: &Path, backups: Option<PathBuf>) -> Self {
        Self::build(root.to_path_buf(), backups, None, true)
    }

    fn build(
        root: PathBuf,
        backups: Option<PathBuf>,
        dir: Option<tempfile::TempDir>,
        all_programs: bool,
    ) -> Self {
        FakeHost {
            files: RealHost::new(root, backups, Arc::new(Log::disabled()), Interrupt::new()),
            _root: dir,
            expectations: Mutex::new(Vec::new()),
            ran: Mutex::new(Vec::new()),
            unexpected: Mutex::new(Vec::new()),
            programs: Mutex::new(BTreeSet::new()),
            all_programs,
            checked: Mutex::new(false),
            root_user: true,
        }
    }

    /// Only these programs are installed (others: `which` finds nothing).
    pub fn only_programs(mut self, names: &[&str]) -> Self {
        self.all_programs = false;
        *self.programs.get_mut().unwrap() = names.iter().map(|s| s.to_string()).collect();
        self
    }

    /// Run as an unprivileged user.
    pub fn not_root(mut self) -> Self {
        self.root_user = false;
        self
    }

    /// Expect `argv` to run exactly once, answering `output`.
    pub fn expect(&self, argv: &[&str], output: CmdOutput) -> &Self {
        self.push(argv, output, Some(1))
    }

    /// Allow `argv` to run any number of times (a probe), answering `output`.
    pub fn allow(&self, argv: &[&str], output: CmdOutput) -> &Self {
        self.push(argv, output, None)
    }

    fn push(&self, argv: &[&str], output: CmdOutput, times: Option<usize>) -> &Self {
        self.expectations.lock().unwrap().push(Expectation {
            argv: argv.iter().map(|s| s.to_string()).collect(),
            output,
            times,
            used: 0,
        });
        self
    }

    /// Write a file below the root (test setup; not recorded).
    pub fn put_file(&self, path: &str, contents: &str) {
        let real = self.path(path);
        std::fs::create_dir_all(real.parent().unwrap()).unwrap();
        std::fs::write(real, contents).unwrap();
    }

    /// The real location of a target path below the fake's root.
    pub fn path(&self, path: &str) -> PathBuf {
        crate::steps::host::under_root(self.files.root(), Path::new(path)).unwrap()
    }

    /// The commands that ran, in order, as displayed.
    pub fn ran(&self) -> Vec<String> {
        self.ran
            .lock()
            .unwrap()
            .iter()
            .map(|c| c.to_string())
            .collect()
    }

    /// The commands that ran and change the host.
    pub fn changes(&self) -> Vec<String> {
        self.ran
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c.changes_host)
            .map(|c| c.to_string())
            .collect()
    }

    /// Check that every expected command ran and nothing unexpected did.
    pub fn finish(&self) {
        *self.checked.lock().unwrap() = true;
        let mut problems: Vec<String> = self.unexpected.lock().unwrap().clone();
        for e in self.expectations.lock().unwrap().iter() {
            if let Some(n) = e.times {
                if e.used != n {
                    problems.push(format!(
                        "expected to run {} time(s), ran {}: {}",
                        n,
                        e.used,
                        e.argv.join(" ")
                    ));
                }
            }
        }
        assert!(
            problems.is_empty(),
            "fake host:\n  {}\ncommands that ran:\n  {}",
            problems.join("\n  "),
            self.ran().join("\n  ")
        );
    }
}

impl Default for FakeHost {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for FakeHost {
    fn drop(&mut self) {
        if !std::thread::panicking() && !*self.checked.lock().unwrap() {
            self.finish();
        }
    }
}

impl Host for FakeHost {
    fn run(&self, cmd: &Cmd) -> Result<CmdOutput, HostError> {
        self.ran.lock().unwrap().push(cmd.clone());
        let mut exps = self.expectations.lock().unwrap();
        let found = exps
            .iter_mut()
            .find(|e| e.argv == cmd.argv && e.times.is_none_or(|n| e.used < n));
        match found {
            Some(e) => {
                e.used += 1;
                Ok(e.output.clone())
            }
            None => {
                let what = format!("unexpected command: {cmd}");
                self.unexpected.lock().unwrap().push(what.clone());
                Err(HostError::Unexpected(what))
            }
        }
    }

    fn which(&self, program: &str) -> Option<PathBuf> {
        let known = self.all_programs || self.programs.lock().unwrap().contains(program);
        known.then(|| PathBuf::from("/usr/sbin").join(program))
    }

    fn read(&self, path: &Path) -> Result<Option<String>, HostError> {
        self.files.read(path)
    }

    fn list_dir(&self, path: &Path) -> Result<Vec<String>, HostError> {
        self.files.list_dir(path)
    }

    fn exists(&self, path: &Path) -> bool {
        self.files.exists(path)
    }

    fn write(&self, path: &Path, contents: &str, mode: u32) -> Result<WriteOutcome, HostError> {
        self.files.write(path, contents, mode)
    }

    fn root(&self) -> &Path {
        self.files.root()
    }

    fn is_root(&self) -> bool {
        self.root_user
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_expected_commands() {
        let h = FakeHost::new();
        h.expect(&["iscsiadm", "-m", "session"], CmdOutput::ok("x\n"));
        let out = h.run(&Cmd::probe(["iscsiadm", "-m", "session"])).unwrap();
        assert_eq!(out.stdout, "x\n");
        h.finish();
    }

    #[test]
    #[should_panic(expected = "unexpected command: rm -rf /")]
    fn fails_on_an_unexpected_command() {
        let h = FakeHost::new();
        let _ = h.run(&Cmd::change(["rm", "-rf", "/"]));
        h.finish();
    }

    #[test]
    #[should_panic(expected = "expected to run 1 time(s), ran 0: modprobe ib_iser")]
    fn fails_when_an_expected_command_did_not_run() {
        let h = FakeHost::new();
        h.expect(&["modprobe", "ib_iser"], CmdOutput::ok(""));
        h.finish();
    }

    #[test]
    fn a_once_expectation_is_used_once() {
        let h = FakeHost::new();
        h.expect(&["true"], CmdOutput::ok(""));
        assert!(h.run(&Cmd::probe(["true"])).is_ok());
        assert!(h.run(&Cmd::probe(["true"])).is_err());
        *h.checked.lock().unwrap() = true;
    }
}
