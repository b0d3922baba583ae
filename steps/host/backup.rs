//! `backups/` in the state directory: each file as it was before the wizard first changed
//! it, and `CREATED`, the files the wizard created.
//!
//! Contract:
//! - A backup is written atomically (temporary file, fsync, rename, fsync of the directory),
//!   read back and compared (size and XXH3-128 hash) with the original, and only then
//!   recorded in `MANIFEST.json` beside it (written the same atomic way). The caller changes
//!   the original only after [`save_original`] returned `Ok`.
//! - A backup recorded in the manifest and still matching it is kept: the original is saved
//!   once, before the first change. One that no longer matches is an error: the file is not
//!   changed without a trusted copy of its original.
//! - A file at a backup's place with no manifest entry was never checked (a run cut short,
//!   or an older wizard): it is moved aside as `NAME.unchecked.SECONDS`, never trusted and
//!   never lost, and the backup is made again from the file as it is now (which the wizard
//!   did not change, since it changes a file only after its backup is recorded).
//! - Nothing below `backups/` is reached through a symlink: they are refused.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::sync::Mutex;

use rustix::fs::{self as rfs, Mode, OFlags};
use serde::{Deserialize, Serialize};

use super::confine::{self, Resolve};
use super::{read_fd, replace_at, Log};

/// The manifest's file name in `backups/`.
pub const MANIFEST: &str = "MANIFEST.json";

/// The list of created files in `backups/`.
pub const CREATED: &str = "CREATED";

/// `MANIFEST.json` and `CREATED` are read, changed and replaced whole: two threads of one
/// run doing that at once would lose one's entry. (Other processes are kept out by the
/// state directory's lock.)
static UPDATE: Mutex<()> = Mutex::new(());

/// `backups/MANIFEST.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Manifest {
    version: u32,
    /// By target path (`/etc/iscsi/iscsid.conf`).
    files: BTreeMap<String, Entry>,
}

/// What a checked backup holds, and the status of the original (for `undo`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    size: u64,
    xxh3_128: String,
    mode: u32,
    uid: u32,
    gid: u32,
}

fn digest(bytes: &[u8]) -> String {
    format!("{:032x}", xxhash_rust::xxh3::xxh3_128(bytes))
}

impl Entry {
    fn matches(&self, bytes: &[u8]) -> bool {
        self.size == bytes.len() as u64 && self.xxh3_128 == digest(bytes)
    }
}

/// `backups/`, opened without following a symlink (created 0700 when missing).
fn open_dir(dir: &Path) -> io::Result<OwnedFd> {
    match std::os::unix::fs::DirBuilderExt::mode(&mut std::fs::DirBuilder::new(), 0o700).create(dir)
    {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    confine::open_base_nofollow(dir)
}

fn open_in(base: BorrowedFd<'_>, rel: &Path, flags: OFlags) -> io::Result<OwnedFd> {
    confine::open(base, rel, flags, Mode::empty(), Resolve::NoSymlinks)
}

/// The whole of a file below `backups/`, `None` when absent.
fn read_in(base: BorrowedFd<'_>, rel: &Path) -> io::Result<Option<Vec<u8>>> {
    match open_in(base, rel, OFlags::RDONLY | OFlags::NONBLOCK).and_then(read_fd) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn load_manifest(base: BorrowedFd<'_>) -> io::Result<Manifest> {
    let empty = Manifest {
        version: 1,
        files: BTreeMap::new(),
    };
    let Some(bytes) = read_in(base, Path::new(MANIFEST))? else {
        return Ok(empty);
    };
    // A manifest that does not parse cannot vouch for any backup: stop rather than guess.
    let m: Manifest = serde_json::from_slice(&bytes).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("backups/{MANIFEST}: {e}"),
        )
    })?;
    if m.version != 1 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "backups/{MANIFEST}: version {} (this wizard reads version 1)",
                m.version
            ),
        ));
    }
    Ok(m)
}

fn rel(path: &Path) -> &Path {
    path.strip_prefix("/").unwrap_or(path)
}

/// Save `bytes`, the current content of the target file `path` (status `st`), as its
/// original in `dir` (`backups/`), unless a checked backup of it is already recorded.
pub fn save_original(
    dir: &Path,
    path: &Path,
    bytes: &[u8],
    st: &rfs::Stat,
    log: &Log,
) -> io::Result<()> {
    let _one_at_a_time = UPDATE.lock().unwrap_or_else(|e| e.into_inner());
    let base = open_dir(dir)?;
    let base = base.as_fd();
    let rel = rel(path);
    let key = path.to_string_lossy().into_owned();
    let mut manifest = load_manifest(base)?;
    if let Some(entry) = manifest.files.get(&key) {
        return match read_in(base, rel)? {
            Some(saved) if entry.matches(&saved) => Ok(()),
            seen => Err(io::Error::other(format!(
                "its backup backups/{} {} the size and hash recorded in backups/{MANIFEST}; \
                 refusing to change it without a trusted copy of its original",
                rel.display(),
                if seen.is_some() {
                    "no longer matches"
                } else {
                    "is missing, unlike"
                }
            ))),
        };
    }
    let (Some(parent), Some(name)) = (rel.parent(), rel.file_name()) else {
        return Err(io::Error::other("no file name"));
    };
    let parent_fd = confine::create_dirs(
        base,
        parent,
        Mode::from_raw_mode(0o700),
        Resolve::NoSymlinks,
    )?;
    if open_in(base, rel, OFlags::PATH).is_ok() {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let mut aside = name.to_os_string();
        aside.push(format!(".unchecked.{secs}"));
        rfs::renameat(&parent_fd, name, &parent_fd, aside.as_os_str())?;
        log.entry(
            &format!(
                "backup of {} was never checked (a run cut short?); kept aside as {}, \
                 made again",
                path.display(),
                aside.to_string_lossy()
            ),
            "",
        );
    }
    replace_at(parent_fd.as_fd(), name, bytes, 0o600, None)?;
    // Read it back through a fresh open: what is recorded is what is on disk.
    let saved = read_in(base, rel)?.unwrap_or_default();
    let entry = Entry {
        size: bytes.len() as u64,
        xxh3_128: digest(bytes),
        mode: st.st_mode & 0o7777,
        uid: st.st_uid,
        gid: st.st_gid,
    };
    if !entry.matches(&saved) {
        return Err(io::Error::other(format!(
            "backups/{} read back {} bytes of {}, or other bytes; the original is untouched",
            rel.display(),
            saved.len(),
            bytes.len()
        )));
    }
    manifest.files.insert(key, entry);
    let mut text = serde_json::to_vec_pretty(&manifest).map_err(io::Error::other)?;
    text.push(b'\n');
    replace_at(base, OsStr::new(MANIFEST), &text, 0o600, None)?;
    log.entry(
        &format!(
            "backup {} -> {} ({} bytes, checked)",
            path.display(),
            dir.join(rel).display(),
            bytes.len()
        ),
        "",
    );
    Ok(())
}

/// Record in `CREATED` that the wizard created the target file `path` (it has no
/// original), so that `undo` can remove it. Written atomically, once per path.
pub fn record_created(dir: &Path, path: &Path) -> io::Result<()> {
    let _one_at_a_time = UPDATE.lock().unwrap_or_else(|e| e.into_inner());
    let base = open_dir(dir)?;
    let base = base.as_fd();
    let known = read_in(base, Path::new(CREATED))?.unwrap_or_default();
    let text = String::from_utf8_lossy(&known).into_owned();
    if text.lines().any(|l| Path::new(l) == path) {
        return Ok(());
    }
    let mut new = text;
    if !new.is_empty() && !new.ends_with('\n') {
        new.push('\n');
    }
    new.push_str(&format!("{}\n", path.display()));
    replace_at(base, OsStr::new(CREATED), new.as_bytes(), 0o600, None)
}

/// The things the wizard created that are not files it wrote (`undo` takes them away):
/// recorded in `OBJECTS.json` in `backups/` as each command that made one succeeds.
pub const OBJECTS: &str = "OBJECTS.json";

/// `backups/OBJECTS.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Objects {
    /// Units the wizard enabled that were not enabled before.
    pub units_enabled: Vec<String>,
    /// Units the wizard unmasked.
    pub units_unmasked: Vec<String>,
    /// iSCSI ifaces it created.
    pub ifaces: Vec<String>,
    /// SendTargets discovery records it made: (portal, iface).
    pub discoveries: Vec<(String, String)>,
    /// Node records it made by hand: (target, portal, iface).
    pub nodes: Vec<(String, String, Option<String>)>,
    /// Whether [`TOOL_PATHS`] were looked at before the wizard's first change.
    pub paths_checked: bool,
    /// Those of [`TOOL_PATHS`] that did not exist then.
    pub absent_before: Vec<String>,
}

/// Paths that tools create on their own while the wizard works (the iSCSI database's
/// directories, multipath's WWID and alias files): whether each existed before the first
/// change is recorded, so `undo` can remove the ones it finds left empty (or holding only
/// the wizard's volumes).
pub const TOOL_PATHS: [&str; 10] = [
    "/etc/iscsi/ifaces",
    "/etc/iscsi/nodes",
    "/etc/iscsi/send_targets",
    "/var/lib/iscsi/ifaces",
    "/var/lib/iscsi/nodes",
    "/var/lib/iscsi/send_targets",
    "/etc/multipath/wwids",
    "/etc/multipath/bindings",
    "/etc/multipath",
    "/etc/multipath/conf.d",
];

impl Objects {
    /// Nothing recorded.
    pub fn is_empty(&self) -> bool {
        *self == Objects::default()
    }
}

/// `OBJECTS.json` as recorded (empty when none was).
pub fn load_objects(dir: &Path) -> io::Result<Objects> {
    let Ok(base) = confine::open_base_nofollow(dir) else {
        return Ok(Objects::default());
    };
    let Some(bytes) = read_in(base.as_fd(), Path::new(OBJECTS))? else {
        return Ok(Objects::default());
    };
    serde_json::from_slice(&bytes).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("backups/{OBJECTS}: {e}"),
        )
    })
}

/// Add to `OBJECTS.json` (written atomically; an entry already there is not repeated).
pub fn record_objects(dir: &Path, add: impl FnOnce(&mut Objects)) -> io::Result<()> {
    let _one_at_a_time = UPDATE.lock().unwrap_or_else(|e| e.into_inner());
    let mut objects = load_objects(dir)?;
    let before = objects.clone();
    add(&mut objects);
    fn dedup<T: PartialEq + Clone>(v: &mut Vec<T>) {
        let mut seen: Vec<T> = Vec::new();
        v.retain(|x| {
            let new = !seen.contains(x);
            seen.push(x.clone());
            new
        });
    }
    dedup(&mut objects.units_enabled);
    dedup(&mut objects.units_unmasked);
    dedup(&mut objects.ifaces);
    dedup(&mut objects.discoveries);
    dedup(&mut objects.nodes);
    if objects == before {
        return Ok(());
    }
    let base = open_dir(dir)?;
    let mut text = serde_json::to_vec_pretty(&objects).map_err(io::Error::other)?;
    text.push(b'\n');
    replace_at(base.as_fd(), OsStr::new(OBJECTS), &text, 0o600, None)
}

/// A file as it was before the wizard first changed it, read from `backups/` and checked
/// against the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Original {
    /// The path on the target system.
    pub path: std::path::PathBuf,
    /// Its content.
    pub bytes: Vec<u8>,
    /// Its permission bits.
    pub mode: u32,
    /// Its owner.
    pub uid: u32,
    /// Its group.
    pub gid: u32,
}

/// Every checked original in `backups/`, by path. A backup that no longer matches its
/// manifest entry is an error: nothing is restored from an untrusted copy.
pub fn originals(dir: &Path) -> io::Result<Vec<Original>> {
    let Ok(base) = confine::open_base_nofollow(dir) else {
        return Ok(Vec::new());
    };
    let base = base.as_fd();
    let manifest = load_manifest(base)?;
    let mut out = Vec::new();
    for (key, entry) in manifest.files {
        let path = std::path::PathBuf::from(&key);
        let bytes = read_in(base, rel(&path))?.unwrap_or_default();
        if !entry.matches(&bytes) {
            return Err(io::Error::other(format!(
                "the backup of {key} does not match backups/{MANIFEST}: refusing to restore \
                 from an untrusted copy"
            )));
        }
        out.push(Original {
            path,
            bytes,
            mode: entry.mode,
            uid: entry.uid,
            gid: entry.gid,
        });
    }
    Ok(out)
}

/// The files listed in `CREATED`.
pub fn created(dir: &Path) -> io::Result<Vec<std::path::PathBuf>> {
    let Ok(base) = confine::open_base_nofollow(dir) else {
        return Ok(Vec::new());
    };
    let text = read_in(base.as_fd(), Path::new(CREATED))?.unwrap_or_default();
    Ok(String::from_utf8_lossy(&text)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(std::path::PathBuf::from)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn stat_of(p: &Path) -> rfs::Stat {
        rfs::stat(p).unwrap()
    }

    #[test]
    fn a_backup_is_recorded_with_its_size_and_hash_and_kept_once() {
        let tmp = tempfile::tempdir().unwrap();
        let orig = tmp.path().join("orig");
        fs::write(&orig, "original\n").unwrap();
        let dir = tmp.path().join("backups");
        let log = Log::disabled();
        let p = Path::new("/etc/a.conf");
        save_original(&dir, p, b"original\n", &stat_of(&orig), &log).unwrap();
        // A second save (the file changed since) keeps the first original.
        save_original(&dir, p, b"changed\n", &stat_of(&orig), &log).unwrap();
        assert_eq!(fs::read(dir.join("etc/a.conf")).unwrap(), b"original\n");
        let m: serde_json::Value =
            serde_json::from_slice(&fs::read(dir.join(MANIFEST)).unwrap()).unwrap();
        assert_eq!(m["files"]["/etc/a.conf"]["size"], 9);
        assert_eq!(
            m["files"]["/etc/a.conf"]["xxh3_128"],
            digest(b"original\n").as_str()
        );
    }

    #[test]
    fn a_recorded_backup_that_changed_stops_the_change() {
        let tmp = tempfile::tempdir().unwrap();
        let orig = tmp.path().join("orig");
        fs::write(&orig, "original\n").unwrap();
        let dir = tmp.path().join("backups");
        let log = Log::disabled();
        let p = Path::new("/etc/a.conf");
        save_original(&dir, p, b"original\n", &stat_of(&orig), &log).unwrap();
        fs::write(dir.join("etc/a.conf"), "origin").unwrap();
        let e = save_original(&dir, p, b"changed\n", &stat_of(&orig), &log).unwrap_err();
        assert!(e.to_string().contains("no longer matches"), "{e}");
        fs::remove_file(dir.join("etc/a.conf")).unwrap();
        let e = save_original(&dir, p, b"changed\n", &stat_of(&orig), &log).unwrap_err();
        assert!(e.to_string().contains("is missing"), "{e}");
    }

    #[test]
    fn an_unchecked_backup_is_kept_aside_and_made_again() {
        let tmp = tempfile::tempdir().unwrap();
        let orig = tmp.path().join("orig");
        fs::write(&orig, "original\n").unwrap();
        let dir = tmp.path().join("backups");
        fs::create_dir_all(dir.join("etc")).unwrap();
        fs::write(dir.join("etc/a.conf"), "orig").unwrap();
        let p = Path::new("/etc/a.conf");
        save_original(&dir, p, b"original\n", &stat_of(&orig), &Log::disabled()).unwrap();
        assert_eq!(fs::read(dir.join("etc/a.conf")).unwrap(), b"original\n");
        let aside: Vec<String> = fs::read_dir(dir.join("etc"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("a.conf.unchecked."))
            .collect();
        assert_eq!(aside.len(), 1, "{aside:?}");
        assert_eq!(fs::read(dir.join("etc").join(&aside[0])).unwrap(), b"orig");
    }

    #[test]
    fn symlinks_in_backups_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let orig = tmp.path().join("orig");
        fs::write(&orig, "original\n").unwrap();
        let elsewhere = tmp.path().join("elsewhere");
        fs::create_dir_all(&elsewhere).unwrap();
        let dir = tmp.path().join("backups");
        fs::create_dir_all(&dir).unwrap();
        std::os::unix::fs::symlink(&elsewhere, dir.join("etc")).unwrap();
        let p = Path::new("/etc/a.conf");
        assert!(save_original(&dir, p, b"x", &stat_of(&orig), &Log::disabled()).is_err());
        let linked = tmp.path().join("linked-backups");
        std::os::unix::fs::symlink(&elsewhere, &linked).unwrap();
        let e = record_created(&linked, p).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 0);
    }

    #[test]
    fn objects_are_recorded_once_and_originals_and_created_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let b = dir.path().join("backups");
        assert!(load_objects(&b).unwrap().is_empty());
        for _ in 0..2 {
            record_objects(&b, |o| {
                o.ifaces.push("iface-vA".into());
                o.units_enabled.push("iscsid".into());
            })
            .unwrap();
        }
        let o = load_objects(&b).unwrap();
        assert_eq!(o.ifaces, ["iface-vA"]);
        assert_eq!(o.units_enabled, ["iscsid"]);
        let f = dir.path().join("fstab");
        fs::write(&f, "original\n").unwrap();
        let st = stat_of(&f);
        save_original(
            &b,
            Path::new("/etc/fstab"),
            b"original\n",
            &st,
            &Log::disabled(),
        )
        .unwrap();
        record_created(&b, Path::new("/etc/multipath.conf")).unwrap();
        let orig = originals(&b).unwrap();
        assert_eq!(orig.len(), 1);
        assert_eq!(orig[0].path, Path::new("/etc/fstab"));
        assert_eq!(orig[0].bytes, b"original\n");
        assert_eq!(created(&b).unwrap(), [Path::new("/etc/multipath.conf")]);
        // A backup changed behind the manifest's back is never restored from.
        fs::write(b.join("etc/fstab"), "tampered\n").unwrap();
        assert!(originals(&b).is_err());
    }
}
