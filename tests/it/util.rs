//! Shared builders for the integration tests: running the built binary, scratch trees for
//! `--root` and `--state-dir`, and snapshots that tell whether a run touched a tree.
//!
//! Everything here only builds inputs or observes outputs; no assertion about the wizard's
//! behaviour lives here, so each test states its own expectations.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The `iser-wizard` executable cargo built for these tests.
pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_iser-wizard");

/// The binary with stdin from /dev/null (no terminal, no answers on a pipe).
pub(crate) fn bin() -> Command {
    let mut c = Command::new(BIN);
    c.stdin(Stdio::null());
    c
}

/// Run the binary with `args`, feeding `stdin` through a pipe when given, and collect its
/// exit status and output.
pub(crate) fn run(args: &[&str], stdin: Option<&str>) -> Output {
    let mut c = bin();
    c.args(args);
    if let Some(text) = stdin {
        c.stdin(Stdio::piped());
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        return child.wait_with_output().unwrap();
    }
    c.output().unwrap()
}

/// Output bytes as text (lossy: a stray byte must not hide the rest of a message).
pub(crate) fn text(o: &[u8]) -> String {
    String::from_utf8_lossy(o).into_owned()
}

/// Everything about a tree that a change could touch: paths, types, modes, sizes, contents,
/// modification times.
pub(crate) fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (u32, u64, i64, i64, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let m = std::fs::symlink_metadata(&d).unwrap();
        out.insert(
            d.clone(),
            (m.mode(), m.size(), m.mtime(), m.mtime_nsec(), Vec::new()),
        );
        if m.is_dir() {
            for e in std::fs::read_dir(&d).unwrap() {
                stack.push(e.unwrap().path());
            }
        } else {
            let bytes = std::fs::read(&d).unwrap();
            out.get_mut(&d).unwrap().4 = bytes;
        }
    }
    out
}

/// A scratch host root and state directory, both already holding files, removed on drop.
pub(crate) struct Trees {
    _tmp: tempfile::TempDir,
    /// The `--root`: an `etc/iscsi/iscsid.conf` a run could change.
    pub(crate) root: PathBuf,
    /// The `--state-dir`: a `state.json` and an empty `backups/`.
    pub(crate) state: PathBuf,
}

/// Fresh [`Trees`] with content in both, so "nothing was touched" is a real check.
pub(crate) fn trees() -> Trees {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let state = tmp.path().join("state");
    std::fs::create_dir_all(root.join("etc/iscsi")).unwrap();
    std::fs::write(
        root.join("etc/iscsi/iscsid.conf"),
        "node.startup = manual\n",
    )
    .unwrap();
    std::fs::create_dir_all(state.join("backups")).unwrap();
    std::fs::write(state.join("state.json"), "{\"version\": 1}\n").unwrap();
    Trees {
        _tmp: tmp,
        root,
        state,
    }
}
