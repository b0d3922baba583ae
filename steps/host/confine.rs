//! Opening paths below a directory without ever leaving it.
//!
//! Contract: every function here takes a directory handle (`base`) and a path, and either
//! opens something inside `base` or fails. Two ways of resolving:
//! - [`Resolve::InRoot`]: as if `base` were `/` after chroot(2): an absolute symlink starts
//!   again at `base`, `..` never climbs above it. This is how the files of an image tree
//!   given with `--root` are reached: `ROOT/etc -> /srv/etc` means `ROOT/srv/etc`.
//! - [`Resolve::NoSymlinks`]: no symlink at all and no `..` above `base`; for the wizard's
//!   own backups, where a symlink can only be a mistake or an attack.
//!
//! The kernel does the resolution with `openat2(2)` (`RESOLVE_IN_ROOT`, `RESOLVE_BENEATH`,
//! `RESOLVE_NO_SYMLINKS`), which also guards against a concurrent rename. Where it is
//! missing (ENOSYS: Linux before 5.6, or a seccomp filter), a component-by-component walk
//! takes over: it opens one component at a time with `O_NOFOLLOW`, expands symlinks itself
//! with chroot semantics, and refuses a `..` that would leave `base`.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path};
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, ResolveFlags, CWD};

/// How symlinks below the base directory are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolve {
    /// As inside a chroot at the base: absolute symlinks start again at the base.
    InRoot,
    /// Symlinks are refused, and so is `..` above the base.
    NoSymlinks,
}

/// The kernel answered ENOSYS to openat2 once: use the walk from then on.
static NO_OPENAT2: AtomicBool = AtomicBool::new(false);

#[cfg(test)]
thread_local! {
    /// Tests of the fallback: this thread resolves as if openat2 were missing.
    pub static FORCE_WALK: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn openat2_missing() -> bool {
    #[cfg(test)]
    if FORCE_WALK.with(|f| f.get()) {
        return true;
    }
    NO_OPENAT2.load(Ordering::Relaxed)
}

/// Linux's limit of symlinks followed in one resolution (MAXSYMLINKS).
const MAX_SYMLINKS: usize = 40;

/// Open a directory to serve as a base (following symlinks on the way to it, as the
/// operator named it).
pub fn open_base(path: &Path) -> io::Result<OwnedFd> {
    Ok(rfs::open(
        path,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// Open a directory to serve as a base, refusing it when its own last component is a
/// symlink (the state directory's `backups/`). Opened for reading, so that it can be
/// fsynced after a rename in it.
pub fn open_base_nofollow(path: &Path) -> io::Result<OwnedFd> {
    rfs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| match e {
        rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR if is_symlink_at(CWD, path) => {
            symlink_refused(path)
        }
        e => e.into(),
    })
}

fn is_symlink_at(dir: BorrowedFd<'_>, name: impl rustix::path::Arg) -> bool {
    rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
        .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Symlink)
}

fn symlink_refused(path: &Path) -> io::Error {
    io::Error::other(format!(
        "{} is a symbolic link; refused (never followed)",
        path.display()
    ))
}

/// Open `path` (absolute or relative, both taken from `base`) with `flags` (`mode` for a
/// file `O_CREAT` makes), resolving every component inside `base`.
pub fn open(
    base: BorrowedFd<'_>,
    path: &Path,
    flags: OFlags,
    mode: Mode,
    how: Resolve,
) -> io::Result<OwnedFd> {
    if !openat2_missing() {
        let resolve = match how {
            Resolve::InRoot => ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
            Resolve::NoSymlinks => ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS,
        };
        // RESOLVE_BENEATH refuses absolute paths; InRoot takes them from base already.
        let rel = relative(path);
        let mut tries = 0;
        loop {
            match rfs::openat2(base, rel, flags | OFlags::CLOEXEC, mode, resolve) {
                Err(rustix::io::Errno::NOSYS) => {
                    NO_OPENAT2.store(true, Ordering::Relaxed);
                    break;
                }
                // A rename somewhere in the tree raced the lookup; the kernel asks to retry.
                Err(rustix::io::Errno::AGAIN) if tries < 8 => tries += 1,
                Err(rustix::io::Errno::LOOP) if how == Resolve::NoSymlinks => {
                    return Err(symlink_refused(path))
                }
                Err(rustix::io::Errno::XDEV) => return Err(leaves(path)),
                r => return Ok(r?),
            }
        }
    }
    walk(base, path, flags, mode, how)
}

fn relative(path: &Path) -> &Path {
    let rel = path.strip_prefix("/").unwrap_or(path);
    if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    }
}

fn leaves(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        format!("{}: resolving it leaves the root; refused", path.display()),
    )
}

/// The resolution without openat2: one component at a time, never following a symlink
/// the kernel would resolve outside `base`.
pub fn walk(
    base: BorrowedFd<'_>,
    path: &Path,
    flags: OFlags,
    mode: Mode,
    how: Resolve,
) -> io::Result<OwnedFd> {
    let base_id = id(base)?;
    let mut queue: VecDeque<OsString> = VecDeque::new();
    push_front(&mut queue, path);
    // Where the walk stands; None is the base itself.
    let mut cur: Option<OwnedFd> = None;
    let mut links = 0;
    while let Some(name) = queue.pop_front() {
        let dir = cur.as_ref().map(|f| f.as_fd()).unwrap_or(base);
        let last = queue.is_empty();
        if name == ".." {
            if id(dir)? == base_id {
                return Err(leaves(path));
            }
            cur = Some(rfs::openat(
                dir,
                "..",
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )?);
            continue;
        }
        match rfs::statat(dir, name.as_os_str(), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Symlink => {
                if how == Resolve::NoSymlinks {
                    return Err(symlink_refused(path));
                }
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(rustix::io::Errno::LOOP.into());
                }
                let target = rfs::readlinkat(dir, name.as_os_str(), Vec::new())?;
                let target = Path::new(OsStr::from_bytes(target.as_bytes()));
                if target.is_absolute() {
                    cur = None;
                }
                push_front(&mut queue, target);
            }
            Ok(st) if !last => {
                if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
                    return Err(rustix::io::Errno::NOTDIR.into());
                }
                // O_NOFOLLOW: a symlink swapped in since the stat fails here, not escapes.
                cur = Some(rfs::openat(
                    dir,
                    name.as_os_str(),
                    OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )?);
            }
            Ok(_) => return final_open(dir, &name, flags, mode),
            Err(rustix::io::Errno::NOENT) if last => return final_open(dir, &name, flags, mode),
            Err(e) => return Err(e.into()),
        }
    }
    // The path ended on a directory reached by `..` or a symlink (or is the base itself).
    let dir = cur.as_ref().map(|f| f.as_fd()).unwrap_or(base);
    Ok(rfs::openat(dir, ".", flags | OFlags::CLOEXEC, mode)?)
}

fn final_open(dir: BorrowedFd<'_>, name: &OsStr, flags: OFlags, mode: Mode) -> io::Result<OwnedFd> {
    Ok(rfs::openat(
        dir,
        name,
        flags | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        mode,
    )?)
}

/// Put the components of `path` in front of the queue, in order (`.` and `/` dropped).
fn push_front(queue: &mut VecDeque<OsString>, path: &Path) {
    let names: Vec<OsString> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect();
    for n in names.into_iter().rev() {
        queue.push_front(n);
    }
}

fn id(fd: BorrowedFd<'_>) -> io::Result<(u64, u64)> {
    let st = rfs::fstat(fd)?;
    Ok((st.st_dev, st.st_ino))
}

/// Open the directory `dir` below `base` for `*at` calls and fsync, creating the missing
/// directories on the way (with `mode`), each resolved inside `base`.
pub fn create_dirs(
    base: BorrowedFd<'_>,
    dir: &Path,
    mode: Mode,
    how: Resolve,
) -> io::Result<OwnedFd> {
    let dir_flags = OFlags::RDONLY | OFlags::DIRECTORY;
    match open(base, dir, dir_flags, Mode::empty(), how) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        r => return r,
    }
    let names: Vec<&OsStr> = dir
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n),
            _ => None,
        })
        .collect();
    let mut prefix = std::path::PathBuf::from("/");
    for name in names {
        let parent = open(
            base,
            &prefix,
            OFlags::PATH | OFlags::DIRECTORY,
            Mode::empty(),
            how,
        )?;
        prefix.push(name);
        match rfs::mkdirat(&parent, name, mode) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(e.into()),
        }
    }
    open(base, dir, dir_flags, Mode::empty(), how)
}

/// The real path `path` names below `root`, resolved as [`Resolve::InRoot`] does, for
/// handing to other programs. Components that do not exist yet are appended as they are.
/// This is a path, so it can change under a concurrent rename: file access in the wizard
/// itself goes through [`open`].
pub fn resolve_path(root: &Path, path: &Path) -> io::Result<std::path::PathBuf> {
    let mut queue: VecDeque<OsString> = VecDeque::new();
    push_front(&mut queue, path);
    let mut done: Vec<OsString> = Vec::new();
    let mut links = 0;
    let mut missing = false;
    while let Some(name) = queue.pop_front() {
        if name == ".." {
            // As in a chroot: `..` at the root stays there.
            done.pop();
            continue;
        }
        let mut real = root.to_path_buf();
        real.extend(&done);
        real.push(&name);
        match std::fs::symlink_metadata(&real) {
            Ok(m) if !missing && m.file_type().is_symlink() => {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(rustix::io::Errno::LOOP.into());
                }
                let target = std::fs::read_link(&real)?;
                if target.is_absolute() {
                    done.clear();
                }
                push_front(&mut queue, &target);
            }
            Ok(_) => done.push(name),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                missing = true;
                done.push(name);
            }
            Err(e) => return Err(e),
        }
    }
    let mut real = root.to_path_buf();
    real.extend(&done);
    Ok(real)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::io::Read as _;

    fn read(fd: OwnedFd) -> String {
        let mut s = String::new();
        fs::File::from(fd).read_to_string(&mut s).unwrap();
        s
    }

    /// ROOT/etc -> /elsewhere (absolute), ROOT/up -> ../.. (relative, out of the root),
    /// ROOT/loop -> loop, and a file outside ROOT with the same names.
    fn tree() -> (tempfile::TempDir, std::path::PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        fs::create_dir_all(root.join("elsewhere")).unwrap();
        fs::write(root.join("elsewhere/f"), "inside\n").unwrap();
        fs::create_dir_all(tmp.path().join("elsewhere")).unwrap();
        fs::write(tmp.path().join("elsewhere/f"), "outside\n").unwrap();
        fs::write(tmp.path().join("f"), "outside\n").unwrap();
        std::os::unix::fs::symlink("/elsewhere", root.join("etc")).unwrap();
        std::os::unix::fs::symlink(tmp.path().join("elsewhere"), root.join("abs-out")).unwrap();
        std::os::unix::fs::symlink("../..", root.join("up")).unwrap();
        std::os::unix::fs::symlink("loop", root.join("loop")).unwrap();
        (tmp, root)
    }

    #[test]
    fn the_walk_resolves_like_a_chroot_and_refuses_to_climb_out() {
        let (_tmp, root) = tree();
        let base = open_base(&root).unwrap();
        let o = |p: &str| {
            walk(
                base.as_fd(),
                Path::new(p),
                OFlags::RDONLY,
                Mode::empty(),
                Resolve::InRoot,
            )
        };
        assert_eq!(read(o("/etc/f").unwrap()), "inside\n");
        // An absolute symlink naming a directory outside resolves inside the root.
        assert_eq!(o("/abs-out/f").unwrap_err().kind(), io::ErrorKind::NotFound);
        // `..` out of the root: refused, never followed.
        assert_eq!(
            o("/up/f").unwrap_err().kind(),
            io::ErrorKind::PermissionDenied
        );
        assert!(o("/loop").is_err());
        assert_eq!(read(o("elsewhere/../elsewhere/f").unwrap()), "inside\n");
    }

    #[test]
    fn openat2_and_the_walk_agree() {
        let (_tmp, root) = tree();
        let base = open_base(&root).unwrap();
        for p in ["/etc/f", "/elsewhere/f", "/abs-out/f", "/nothing", "/etc"] {
            let a = open(
                base.as_fd(),
                Path::new(p),
                OFlags::PATH,
                Mode::empty(),
                Resolve::InRoot,
            );
            let b = walk(
                base.as_fd(),
                Path::new(p),
                OFlags::PATH,
                Mode::empty(),
                Resolve::InRoot,
            );
            let ids = |r: io::Result<OwnedFd>| r.map(|f| id(f.as_fd()).unwrap()).ok();
            assert_eq!(ids(a), ids(b), "{p}");
        }
    }

    #[test]
    fn no_symlinks_refuses_every_symlink() {
        let (_tmp, root) = tree();
        let base = open_base(&root).unwrap();
        for p in ["/etc/f", "/up", "/elsewhere/../etc"] {
            for r in [
                open(
                    base.as_fd(),
                    Path::new(p),
                    OFlags::PATH,
                    Mode::empty(),
                    Resolve::NoSymlinks,
                ),
                walk(
                    base.as_fd(),
                    Path::new(p),
                    OFlags::PATH,
                    Mode::empty(),
                    Resolve::NoSymlinks,
                ),
            ] {
                assert!(r.is_err(), "{p}");
            }
        }
        assert!(open_base_nofollow(&root.join("etc"))
            .unwrap_err()
            .to_string()
            .contains("symbolic link"));
    }

    #[test]
    fn create_dirs_stays_inside() {
        let (tmp, root) = tree();
        let base = open_base(&root).unwrap();
        let mk = |p: &str| {
            create_dirs(
                base.as_fd(),
                Path::new(p),
                Mode::from_raw_mode(0o755),
                Resolve::InRoot,
            )
        };
        mk("/etc/new/deeper").unwrap();
        assert!(root.join("elsewhere/new/deeper").is_dir());
        // Through a symlink whose target does not exist inside the root: refused, as
        // `mkdir -p` refuses a dangling symlink; nothing is made outside.
        assert!(mk("/abs-out/new").is_err());
        // `..` out of the root: openat2 stays at the root as a chroot does, the walk
        // refuses; either way nothing is made outside.
        if mk("/up/new").is_ok() {
            assert!(root.join("new").is_dir());
        }
        assert!(!tmp.path().join("elsewhere/new").exists());
        assert!(!tmp.path().join("new").exists());
    }

    #[test]
    fn resolve_path_follows_links_inside_the_root() {
        let (_tmp, root) = tree();
        assert_eq!(
            resolve_path(&root, Path::new("/etc/f")).unwrap(),
            root.join("elsewhere/f")
        );
        assert_eq!(
            resolve_path(&root, Path::new("/up/f")).unwrap(),
            root.join("f")
        );
        assert_eq!(
            resolve_path(&root, Path::new("/etc/new/x")).unwrap(),
            root.join("elsewhere/new/x")
        );
    }
}
