//! The verify engine: write a stamped pattern to a file, read it back from the device and
//! check every 4 KiB sector.
//!
//! Why not `cp` + `diff` (the vendor's method): on a mounted file system both copies are
//! served from the page cache, so the check passes without a byte ever being read from the
//! array. This engine writes with `O_DIRECT`, `fdatasync`s, and reads back with `O_DIRECT`
//! through a new descriptor, so what it checks came from the device.
//!
//! Contract:
//! - [`verify_file`] creates the file (never overwriting one: `O_CREAT|O_EXCL`), writes
//!   `size` bytes in blocks of [`VerifyOptions::block_size`], `fdatasync`s, reads it back,
//!   checks it and removes it, on failure too, unless [`VerifyOptions::keep`].
//!   [`write_pattern`] and [`read_verify`] are the two halves, so a test can damage the file
//!   in between.
//! - `size` must be a positive multiple of 4096 ([`SECTOR`]); the last block may be shorter
//!   than the others but is still whole sectors, which `O_DIRECT` requires.
//! - Every sector starts with a 32-byte header: [`MAGIC`], the run seed, the sector's own
//!   byte offset in the file, and a checksum of the rest of the sector (the payload): its
//!   xxh3-64 xor a key derived from (seed, offset), so the checksum is bound to the sector
//!   it was made for. The payload is pseudo-random from (seed, offset), so it does not
//!   compress or dedupe and two sectors never look alike. On read a sector passes when its
//!   header names this run and this offset and its payload hashes to the bound checksum:
//!   the header pins what the payload must be, so it is not regenerated (a wrong payload
//!   passes with probability 2^-64). A sector that fails is regenerated in full, which
//!   names the first differing byte and what went wrong ([`MismatchKind`]): another
//!   offset's sector (misplaced write), another run's sector (stale data), no stamp at all
//!   (lost write, reads as zeroes, or foreign data), or changed bytes (corruption).
//!   Mismatches do not stop the read: the report gives the first one, byte-exact, and how
//!   many sectors were bad.
//! - A data mismatch is a result ([`VerifyOutcome::Failed`]), not an error; [`VerifyError`]
//!   is for what kept the check from running (cannot create, no space, I/O error).
//! - When the file system refuses `O_DIRECT` (`EINVAL`, e.g. ramfs or tmpfs before Linux
//!   6.6), the engine falls back to buffered I/O with `fdatasync` and
//!   `posix_fadvise(DONTNEED)` before the read, and says so in [`WriteStats::fallback`] /
//!   [`ReadReport::fallback`]; on such a file system the read may still be served from
//!   memory.
//! - The first block is written (read) alone on the calling thread, which settles direct
//!   or buffered I/O; then a pool of threads ([`VerifyOptions::overlap`],
//!   [`VerifyOptions::threads`]) each claims the next block, stamps and writes it (reads and
//!   checks it) in its own aligned buffer, so several blocks are in flight and stamping and
//!   checking use every core, on data still in that core's cache. The calling thread takes
//!   the results in block order, so progress and the report are what a serial run gives.
//! - [`verify_file_until`] stops at the next block when its [`Interrupt`] is set (Ctrl-C,
//!   SIGTERM), removes the file (even with [`VerifyOptions::keep`]) and returns
//!   [`VerifyError::Interrupted`].
//! - Throughput is in MB/s of 10^6 bytes, as `dd` prints it; the write time includes the
//!   `fdatasync`.

use std::alloc::{handle_alloc_error, Layout};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use twox_hash::XxHash3_64;

use crate::steps::host::Interrupt;

/// The checking granularity, and the alignment of every I/O.
pub const SECTOR: usize = 4096;
/// Header bytes at the start of every sector.
pub const HEADER: usize = 32;
/// First 8 bytes of every sector written by this engine.
pub const MAGIC: u64 = u64::from_le_bytes(*b"ISERWZV1");
/// Default I/O block: 1 MiB. Small enough that a block is still in a core's L2 cache (2
/// MiB here) when it is checked after its read, or written after its stamping: hashing ran
/// at 25-40 GB/s from cache and 3.5-5 GB/s from memory on this machine, no faster than a
/// memory-backed device. Large enough for the device, with several blocks in flight.
pub const DEFAULT_BLOCK_SIZE: usize = 1 << 20;

/// How to do the I/O.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum IoPolicy {
    /// `O_DIRECT`; buffered I/O with cache dropping when the file system refuses it.
    Auto,
    /// Buffered I/O with `fdatasync` and `posix_fadvise(DONTNEED)`, never `O_DIRECT`.
    Buffered,
}

/// What the I/O of a phase actually was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum IoMode {
    /// `O_DIRECT`: straight between the buffers and the device.
    Direct,
    /// Through the page cache, with `fdatasync` and `posix_fadvise(DONTNEED)`.
    Buffered,
}

/// Options of a verify run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyOptions {
    /// Stamped in every sector; the wizard draws a new one per run ([`random_seed`]) so
    /// data left from an earlier run is told apart from this run's.
    pub seed: u64,
    /// Bytes per I/O: a positive multiple of 4096. Default 1 MiB ([`DEFAULT_BLOCK_SIZE`]).
    pub block_size: usize,
    /// Keep the file afterwards (also after a failure), for inspection.
    pub keep: bool,
    /// `O_DIRECT` or buffered.
    pub io: IoPolicy,
    /// Run the blocks on several threads, each stamping or checking its block and doing
    /// its I/O, so that blocks are in flight while others are stamped or checked; `false`
    /// does one block at a time on the calling thread.
    pub overlap: bool,
    /// Threads of the overlapped pipeline; 0 picks one more than the cores (3 to 16).
    #[serde(default)]
    pub threads: usize,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            seed: 0,
            block_size: DEFAULT_BLOCK_SIZE,
            keep: false,
            io: IoPolicy::Auto,
            overlap: true,
            threads: 0,
        }
    }
}

/// Which half of the run a progress report is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    /// Writing the pattern.
    Write,
    /// Reading it back and checking it.
    Read,
}

/// What was wrong with a sector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MismatchKind {
    /// The sector carries this run's stamp for this offset, but its bytes changed.
    Corrupted,
    /// The sector holds the intact data written for another offset: a misplaced write.
    Misplaced {
        /// The offset the data was written for.
        stamped_offset: u64,
    },
    /// The sector holds data from another run (another seed): the write never landed.
    Stale {
        /// The seed of the run that wrote it.
        stamped_seed: u64,
    },
    /// No stamp at all: the write was lost (`zeroed`) or foreign data overwrote it.
    Unstamped {
        /// The whole sector reads as zeroes.
        zeroed: bool,
    },
    /// The file ended before this offset.
    Missing,
}

impl std::fmt::Display for MismatchKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MismatchKind::Corrupted => write!(f, "corrupted data"),
            MismatchKind::Misplaced { stamped_offset } => {
                write!(
                    f,
                    "misplaced write: holds the data for offset {stamped_offset}"
                )
            }
            MismatchKind::Stale { stamped_seed } => {
                write!(f, "stale data from another run (seed {stamped_seed:#x})")
            }
            MismatchKind::Unstamped { zeroed: true } => write!(f, "lost write: reads as zeroes"),
            MismatchKind::Unstamped { zeroed: false } => {
                write!(f, "foreign data: no verify stamp")
            }
            MismatchKind::Missing => write!(f, "missing: the file ends before it"),
        }
    }
}

/// The first bad place found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mismatch {
    /// Byte offset in the file of the first byte that differs from what was written.
    pub offset: u64,
    /// Byte offset of the 4 KiB sector holding it.
    pub sector_offset: u64,
    /// What was found there.
    pub kind: MismatchKind,
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "byte {} (sector at {}): {}",
            self.offset, self.sector_offset, self.kind
        )
    }
}

/// The write half of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WriteStats {
    /// Bytes written.
    pub bytes: u64,
    /// Seconds from the first write to the end of `fdatasync`.
    pub seconds: f64,
    /// Direct or buffered.
    pub mode: IoMode,
    /// Why buffered I/O was used, when `O_DIRECT` was wanted but refused.
    pub fallback: Option<String>,
}

impl WriteStats {
    /// Throughput in MB/s (10^6 bytes).
    pub fn mb_per_s(&self) -> f64 {
        mb_per_s(self.bytes, self.seconds)
    }
}

/// The read-and-check half of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReadReport {
    /// Bytes read from the file.
    pub bytes: u64,
    /// Seconds from opening to the last check.
    pub seconds: f64,
    /// Direct or buffered.
    pub mode: IoMode,
    /// Why buffered I/O was used, when `O_DIRECT` was wanted but refused.
    pub fallback: Option<String>,
    /// Sectors checked.
    pub sectors: u64,
    /// Sectors that did not hold what was written (missing ones included).
    pub bad_sectors: u64,
    /// The first bad place, if any.
    pub first_mismatch: Option<Mismatch>,
}

impl ReadReport {
    /// Throughput in MB/s (10^6 bytes).
    pub fn mb_per_s(&self) -> f64 {
        mb_per_s(self.bytes, self.seconds)
    }

    /// Every sector held exactly what was written.
    pub fn passed(&self) -> bool {
        self.bad_sectors == 0 && self.first_mismatch.is_none()
    }
}

/// The verdict of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum VerifyOutcome {
    /// Every sector read back as written.
    Passed,
    /// Some did not.
    Failed {
        /// The first bad place.
        first: Mismatch,
        /// How many sectors were bad.
        bad_sectors: u64,
    },
}

/// The record of a [`verify_file`] run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[must_use = "a verify run can fail: look at `outcome`"]
pub struct VerifyReport {
    /// The file written and read.
    pub path: PathBuf,
    /// Bytes verified.
    pub bytes: u64,
    /// Write throughput, MB/s.
    pub write_mb_s: f64,
    /// Read-and-check throughput, MB/s.
    pub read_mb_s: f64,
    /// `Some(why)` when either half ran buffered instead of `O_DIRECT`.
    pub fallback: Option<String>,
    /// The write half.
    pub write: WriteStats,
    /// The read half.
    pub read: ReadReport,
    /// Passed or failed.
    pub outcome: VerifyOutcome,
}

impl VerifyReport {
    /// Every sector read back as written.
    pub fn passed(&self) -> bool {
        self.outcome == VerifyOutcome::Passed
    }
}

/// What kept a verify run from completing.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// `size` is zero or not a multiple of 4096.
    #[error("verify size {0} is not a positive multiple of 4096 bytes")]
    InvalidSize(u64),
    /// `block_size` is zero or not a multiple of 4096.
    #[error("verify block size {0} is not a positive multiple of 4096 bytes")]
    InvalidBlockSize(usize),
    /// The file already exists; the engine never overwrites a file.
    #[error("{} already exists; refusing to overwrite it", .0.display())]
    Exists(PathBuf),
    /// The file system has less free space than the run needs.
    #[error("{}: {available} bytes free, the verify needs {needed}", .path.display())]
    NoSpace {
        /// The directory checked.
        path: PathBuf,
        /// Bytes needed.
        needed: u64,
        /// Bytes available to this user.
        available: u64,
    },
    /// Ctrl-C or SIGTERM stopped the run; the test file was removed.
    #[error("interrupted; the test file was removed")]
    Interrupted,
    /// An I/O call failed.
    #[error("{action} {}{}: {source}", .path.display(), .offset.map(|o| format!(" at byte {o}")).unwrap_or_default())]
    Io {
        /// What was being done (`writing`, `reading`, ...).
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// Where, when it was a read or write.
        offset: Option<u64>,
        /// The error.
        #[source]
        source: io::Error,
    },
}

fn io_err(
    action: &'static str,
    path: &Path,
    offset: Option<u64>,
    source: io::Error,
) -> VerifyError {
    VerifyError::Io {
        action,
        path: path.to_path_buf(),
        offset,
        source,
    }
}

fn mb_per_s(bytes: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        bytes as f64 / seconds / 1e6
    } else {
        0.0
    }
}

/// A fresh seed from the kernel's random source (falls back to time and pid).
pub fn random_seed() -> u64 {
    let mut b = [0u8; 8];
    // SAFETY: getrandom writes at most b.len() bytes into b.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    if n == 8 {
        return u64::from_le_bytes(b);
    }
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    mix64(t ^ u64::from(std::process::id()).rotate_left(32))
}

// ---------------------------------------------------------------------------------------
// The pattern.

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// splitmix64's finaliser: a bijective mix of 64 bits.
#[inline(always)]
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The per-sector key everything else of a sector derives from.
#[inline(always)]
fn sector_key(seed: u64, offset: u64) -> u64 {
    mix64(seed ^ mix64(offset.wrapping_add(GOLDEN)))
}

/// The checksum stamped in a sector's header: xxh3-64 of the payload, bound to the
/// sector's own (seed, offset). The binding is what lets the read check by hash alone: a
/// payload and checksum carried over from any other sector or run fail the check even
/// under a header that names this sector, so skipping the regeneration loses nothing but a
/// 2^-64 chance.
///
/// The xxh3 is twox-hash's, which uses AVX2 when the CPU has it (chosen at run time): 40
/// GB/s on one core here in cache against 25 for the SSE2 build of xxhash-rust, the same
/// function.
#[inline]
fn sector_sum(payload: &[u8], seed: u64, offset: u64) -> u64 {
    XxHash3_64::oneshot(payload) ^ mix64(sector_key(seed, offset) ^ GOLDEN)
}

/// The generator body: eight xorshift64 lanes, each seeded through splitmix64 from the
/// sector key and its lane number. The lanes are independent and there is no multiply in
/// the loop, so the compiler keeps them in vector registers.
#[inline(always)]
fn fill_lanes(payload: &mut [u8], seed: u64, offset: u64) {
    debug_assert_eq!(payload.len() % 32, 0);
    let key = sector_key(seed, offset);
    // xorshift64 must not start at 0; mix64 is a bijection, so only one input maps to 0.
    let lane = |l: u64| mix64(key.wrapping_add(l.wrapping_mul(GOLDEN))) | 1;
    let mut s = [
        lane(1),
        lane(2),
        lane(3),
        lane(4),
        lane(5),
        lane(6),
        lane(7),
        lane(8),
    ];
    let whole = payload.len() / 64 * 64;
    let (rows, tail) = payload.split_at_mut(whole);
    for row in rows.chunks_exact_mut(64) {
        for (x, w) in s.iter_mut().zip(row.chunks_exact_mut(8)) {
            *x ^= *x << 13;
            *x ^= *x >> 7;
            *x ^= *x << 17;
            w.copy_from_slice(&x.to_le_bytes());
        }
    }
    for (x, w) in s.iter_mut().zip(tail.chunks_exact_mut(8)) {
        *x ^= *x << 13;
        *x ^= *x >> 7;
        *x ^= *x << 17;
        w.copy_from_slice(&x.to_le_bytes());
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn fill_avx512(payload: &mut [u8], seed: u64, offset: u64) {
    fill_lanes(payload, seed, offset)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn fill_avx2(payload: &mut [u8], seed: u64, offset: u64) {
    fill_lanes(payload, seed, offset)
}

/// Fill a sector's payload (4064 bytes) from (seed, offset).
///
/// The same code compiled for the widest vector unit the CPU has, chosen at run time (the
/// default x86-64 target has only SSE2). In cache, one core here generated 16 GB/s with
/// SSE2, 30 with AVX2 and 40 with AVX-512, against 26 GB/s for the xxh3 of the same bytes
/// (a scratch benchmark of this function).
#[inline]
fn fill_payload(payload: &mut [u8], seed: u64, offset: u64) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F (checked just above).
            return unsafe { fill_avx512(payload, seed, offset) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked just above).
            return unsafe { fill_avx2(payload, seed, offset) };
        }
    }
    fill_lanes(payload, seed, offset)
}

fn le64(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

fn stamp_sector(sector: &mut [u8], seed: u64, offset: u64) {
    let (hdr, payload) = sector.split_at_mut(HEADER);
    fill_payload(payload, seed, offset);
    let sum = sector_sum(payload, seed, offset);
    hdr[0..8].copy_from_slice(&MAGIC.to_le_bytes());
    hdr[8..16].copy_from_slice(&seed.to_le_bytes());
    hdr[16..24].copy_from_slice(&offset.to_le_bytes());
    hdr[24..32].copy_from_slice(&sum.to_le_bytes());
}

/// Fill `block` (a whole number of sectors) with the pattern of the sectors starting at
/// byte `offset` of the file.
pub fn stamp_block(block: &mut [u8], seed: u64, offset: u64) {
    debug_assert_eq!(block.len() % SECTOR, 0);
    for (i, s) in block.chunks_exact_mut(SECTOR).enumerate() {
        stamp_sector(s, seed, offset + (i * SECTOR) as u64);
    }
}

/// Check one sector read from byte `offset`; `scratch` is a sector-sized work buffer.
fn check_sector(sector: &[u8], seed: u64, offset: u64, scratch: &mut [u8]) -> Option<Mismatch> {
    let (hdr, payload) = sector.split_at(HEADER);
    let (magic, s, o, sum) = (le64(hdr, 0), le64(hdr, 8), le64(hdr, 16), le64(hdr, 24));
    // The fast path: the header pins (seed, offset), and the bound checksum pins the
    // payload, so a good sector costs one hash and no regeneration.
    if magic == MAGIC && s == seed && o == offset && sum == sector_sum(payload, seed, offset) {
        return None;
    }
    // The slow path, taken only for bad sectors: find the first differing byte against
    // the whole expected sector, then say what the sector holds instead.
    stamp_sector(scratch, seed, offset);
    let first = sector
        .iter()
        .zip(scratch.iter())
        .position(|(a, b)| a != b)
        .unwrap_or(0) as u64;
    let kind = if magic != MAGIC {
        MismatchKind::Unstamped {
            zeroed: sector.iter().all(|&b| b == 0),
        }
    } else if s != seed {
        MismatchKind::Stale { stamped_seed: s }
    } else if o != offset {
        // An intact sector of this run written for another offset is a misplaced write;
        // anything else with a wrong offset field is corruption of the header.
        fill_payload(&mut scratch[HEADER..], seed, o);
        if payload == &scratch[HEADER..] && sum == sector_sum(payload, seed, o) {
            MismatchKind::Misplaced { stamped_offset: o }
        } else {
            MismatchKind::Corrupted
        }
    } else {
        MismatchKind::Corrupted
    };
    Some(Mismatch {
        offset: offset + first,
        sector_offset: offset,
        kind,
    })
}

/// Check `block` (whole sectors) read from byte `offset`: the number of bad sectors and
/// the first bad place.
pub fn check_block(block: &[u8], seed: u64, offset: u64) -> (u64, Option<Mismatch>) {
    let mut scratch = [0u8; SECTOR];
    let mut bad = 0;
    let mut first = None;
    for (i, s) in block.chunks_exact(SECTOR).enumerate() {
        if let Some(m) = check_sector(s, seed, offset + (i * SECTOR) as u64, &mut scratch) {
            bad += 1;
            first.get_or_insert(m);
        }
    }
    (bad, first)
}

// ---------------------------------------------------------------------------------------
// Buffers and file handling.

/// The buffers' alignment and granule: one x86-64 huge page.
const HUGE_PAGE: usize = 2 << 20;

/// An I/O buffer for `O_DIRECT`: its own anonymous mapping, aligned to 2 MiB and advised
/// onto transparent huge pages (`MADV_HUGEPAGE`; the kernel's default here is `madvise`).
///
/// Why not the heap: every `O_DIRECT` call pins the buffer's pages (`get_user_pages`), and
/// with 4 KiB pages that walk was 15% of the engine's CPU in a profile on a memory-backed
/// loop device (`perf record`, 1 GiB each way): one huge page is pinned as a single entry.
/// Where the kernel gives no huge page the buffer is still aligned, zeroed memory.
struct AlignedBuf {
    ptr: NonNull<u8>,
    len: usize,
    /// The whole mapping, for munmap.
    map: NonNull<libc::c_void>,
    map_len: usize,
}

// SAFETY: the buffer owns its mapping exclusively; moving it between threads moves that
// ownership.
unsafe impl Send for AlignedBuf {}

impl AlignedBuf {
    fn new(len: usize) -> Self {
        let size = len.max(SECTOR).next_multiple_of(HUGE_PAGE);
        // One huge page more than needed, so a 2 MiB boundary falls inside.
        let map_len = size + HUGE_PAGE;
        // SAFETY: a fresh private anonymous mapping; no existing memory is touched.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        let layout = Layout::from_size_align(size, HUGE_PAGE).expect("block size fits a layout");
        if base == libc::MAP_FAILED {
            handle_alloc_error(layout);
        }
        let map = NonNull::new(base).unwrap_or_else(|| handle_alloc_error(layout));
        let skip = (base as usize).next_multiple_of(HUGE_PAGE) - base as usize;
        // SAFETY: skip + size <= map_len, so the pointer stays inside the mapping.
        let start = unsafe { base.cast::<u8>().add(skip) };
        // Advisory: without huge pages the buffer works the same, only with more pinning.
        // SAFETY: madvise on a range inside our own mapping.
        unsafe { libc::madvise(start.cast(), size, libc::MADV_HUGEPAGE) };
        let ptr = NonNull::new(start).unwrap_or_else(|| handle_alloc_error(layout));
        AlignedBuf {
            ptr,
            len,
            map,
            map_len,
        }
    }
}

impl std::ops::Deref for AlignedBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: ptr points to len bytes of the mapping (anonymous memory reads as
        // zeroes until written), owned by self.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl std::ops::DerefMut for AlignedBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in deref, and &mut self makes the access exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        // SAFETY: the mapping made in new(), unmapped once.
        unsafe { libc::munmap(self.map.as_ptr(), self.map_len) };
    }
}

fn set_direct(file: &File, on: bool) -> io::Result<()> {
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on an fd we own; F_GETFL/F_SETFL take and return plain ints.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    let new = if on {
        flags | libc::O_DIRECT
    } else {
        flags & !libc::O_DIRECT
    };
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, new) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn drop_cache(file: &File, offset: u64, len: u64) {
    // Advisory: the kernel drops what clean pages it can. Failure only means the read may
    // come from memory, which the report already says for buffered mode.
    // SAFETY: posix_fadvise on an fd we own.
    unsafe {
        libc::posix_fadvise(
            file.as_raw_fd(),
            offset as libc::off_t,
            len as libc::off_t,
            libc::POSIX_FADV_DONTNEED,
        );
    }
}

fn is_einval(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::EINVAL)
}

fn validate(size: u64, opts: &VerifyOptions) -> Result<(), VerifyError> {
    if size == 0 || size % SECTOR as u64 != 0 {
        return Err(VerifyError::InvalidSize(size));
    }
    if opts.block_size == 0 || opts.block_size % SECTOR != 0 {
        return Err(VerifyError::InvalidBlockSize(opts.block_size));
    }
    Ok(())
}

fn check_space(path: &Path, size: u64) -> Result<(), VerifyError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|e| io_err("checking free space in", dir, None, io::Error::other(e)))?;
    // SAFETY: statvfs fills the zeroed struct; c is a valid NUL-terminated path.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        let e = io::Error::last_os_error();
        return Err(io_err("checking free space in", dir, None, e));
    }
    // ramfs and some pseudo file systems report no size at all (f_blocks 0): no check.
    let available = (st.f_bavail as u64).saturating_mul(st.f_frsize as u64);
    if st.f_blocks > 0 && size > available {
        return Err(VerifyError::NoSpace {
            path: dir.to_path_buf(),
            needed: size,
            available,
        });
    }
    Ok(())
}

/// The blocks of a run: (offset, length).
fn blocks(size: u64, block: usize) -> impl Iterator<Item = (u64, usize)> {
    let block = block as u64;
    (0..size.div_ceil(block)).map(move |i| {
        let off = i * block;
        (off, (size - off).min(block) as usize)
    })
}

/// Writes blocks, switching to buffered I/O if the first `O_DIRECT` write is refused.
struct Writer<'a> {
    file: &'a File,
    path: &'a Path,
    mode: IoMode,
    fallback: Option<String>,
}

impl Writer<'_> {
    /// The first block: settles the I/O mode.
    fn write_first(&mut self, data: &[u8], offset: u64) -> Result<(), VerifyError> {
        match self.file.write_all_at(data, offset) {
            // Some file systems accept the flag but refuse the I/O itself.
            Err(e) if is_einval(&e) && self.mode == IoMode::Direct && offset == 0 => {
                set_direct(self.file, false)
                    .map_err(|e| io_err("clearing O_DIRECT on", self.path, None, e))?;
                self.mode = IoMode::Buffered;
                self.fallback = Some("the file system refused an O_DIRECT write (EINVAL)".into());
                self.write(data, offset)
            }
            r => r.map_err(|e| io_err("writing", self.path, Some(offset), e)),
        }
    }

    /// Any later block; shared by the worker threads once the mode is settled.
    fn write(&self, data: &[u8], offset: u64) -> Result<(), VerifyError> {
        self.file
            .write_all_at(data, offset)
            .map_err(|e| io_err("writing", self.path, Some(offset), e))
    }
}

/// Reads blocks; a short count means the file ended.
struct Reader<'a> {
    file: &'a File,
    path: &'a Path,
    mode: IoMode,
    fallback: Option<String>,
}

impl Reader<'_> {
    /// The first block: settles the I/O mode.
    fn read_first(&mut self, buf: &mut [u8], offset: u64) -> Result<usize, VerifyError> {
        match self.read_raw(buf, offset) {
            Err((e, _)) if is_einval(&e) && self.mode == IoMode::Direct && offset == 0 => {
                set_direct(self.file, false)
                    .map_err(|e| io_err("clearing O_DIRECT on", self.path, None, e))?;
                self.mode = IoMode::Buffered;
                self.fallback = Some("the file system refused an O_DIRECT read (EINVAL)".into());
                drop_cache(self.file, 0, 0);
                self.read(buf, offset)
            }
            r => self.finish(r, buf.len(), offset),
        }
    }

    /// Any later block; shared by the worker threads once the mode is settled.
    fn read(&self, buf: &mut [u8], offset: u64) -> Result<usize, VerifyError> {
        let r = self.read_raw(buf, offset);
        self.finish(r, buf.len(), offset)
    }

    fn read_raw(&self, buf: &mut [u8], offset: u64) -> Result<usize, (io::Error, usize)> {
        let mut got = 0;
        while got < buf.len() {
            match self.file.read_at(&mut buf[got..], offset + got as u64) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err((e, got)),
            }
        }
        Ok(got)
    }

    fn finish(
        &self,
        r: Result<usize, (io::Error, usize)>,
        len: usize,
        offset: u64,
    ) -> Result<usize, VerifyError> {
        let got =
            r.map_err(|(e, got)| io_err("reading", self.path, Some(offset + got as u64), e))?;
        if self.mode == IoMode::Buffered {
            // Keep the test data out of the cache; it will not be read again.
            drop_cache(self.file, offset, len as u64);
        }
        Ok(got)
    }
}

/// The worker threads of the pipeline: [`VerifyOptions::threads`], or by default one more
/// than the cores (at least 3, at most 16), so that while some threads wait on the device
/// others keep every core busy stamping or checking.
fn workers(opts: &VerifyOptions) -> usize {
    if opts.threads > 0 {
        return opts.threads;
    }
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    (cores + 1).clamp(3, 16)
}

/// Run `work` on the blocks of a run from block index `first` on, on [`workers`] threads
/// each with its own aligned buffer, and hand each block's result to `done` on the calling
/// thread, in block order (`done` returns true to stop early: the file ended).
///
/// Stops at the next block when `interrupt` is set (within 50 ms on the calling thread,
/// which does not wait for the block in flight to be handed over) and returns
/// [`VerifyError::Interrupted`]; the threads finish their block and are joined before it
/// returns.
fn pipeline<R, W>(
    size: u64,
    opts: &VerifyOptions,
    first: u64,
    interrupt: &Interrupt,
    work: &W,
    done: &mut dyn FnMut(u64, usize, R) -> bool,
) -> Result<(), VerifyError>
where
    R: Send,
    W: Fn(&mut [u8], u64) -> Result<R, VerifyError> + Sync,
{
    let block = opts.block_size as u64;
    let count = size.div_ceil(block);
    if first >= count {
        return Ok(());
    }
    let span = |i: u64| (i * block, (size - i * block).min(block) as usize);
    let next = AtomicU64::new(first);
    let stop = AtomicBool::new(false);
    let threads = workers(opts).min((count - first) as usize);
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::channel::<Result<(u64, R), VerifyError>>();
        for _ in 0..threads {
            let (tx, next, stop) = (tx.clone(), &next, &stop);
            scope.spawn(move || {
                let mut buf = AlignedBuf::new(opts.block_size);
                while !stop.load(Ordering::Relaxed) && !interrupt.is_set() {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= count {
                        break;
                    }
                    let (off, len) = span(i);
                    let r = work(&mut buf[..len], off).map(|r| (i, r));
                    let failed = r.is_err();
                    if tx.send(r).is_err() || failed {
                        break;
                    }
                }
            });
        }
        drop(tx);
        // Results arrive in any order; at most one per thread waits here for its turn.
        let mut pending = BTreeMap::new();
        let mut expect = first;
        let result = loop {
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(Ok((i, r))) => {
                    pending.insert(i, r);
                    let mut ended = false;
                    while let Some(r) = pending.remove(&expect) {
                        let (off, len) = span(expect);
                        expect += 1;
                        if done(off, len, r) {
                            ended = true;
                            break;
                        }
                    }
                    if ended || expect == count {
                        break Ok(());
                    }
                }
                Ok(Err(e)) => break Err(e),
                Err(RecvTimeoutError::Timeout) => {}
                // Every thread stopped without an error: only an interruption does that.
                Err(RecvTimeoutError::Disconnected) if !interrupt.is_set() => {
                    break Err(VerifyError::Io {
                        action: "running the I/O threads for",
                        path: PathBuf::new(),
                        offset: Some(expect * block),
                        source: io::Error::other("the I/O threads stopped early"),
                    });
                }
                Err(RecvTimeoutError::Disconnected) => {}
            }
            if interrupt.is_set() {
                break Err(VerifyError::Interrupted);
            }
        };
        stop.store(true, Ordering::Relaxed);
        result
    })
}

// ---------------------------------------------------------------------------------------
// The two halves.

/// Create `path` and write `size` bytes of this run's pattern to it, then `fdatasync`.
///
/// The file is removed again if the write fails, unless `opts.keep`.
pub fn write_pattern(
    path: &Path,
    size: u64,
    opts: &VerifyOptions,
) -> Result<WriteStats, VerifyError> {
    write_pattern_with(path, size, opts, &Interrupt::new(), &mut |_, _| {})
}

/// Read `path` back and check `size` bytes of it against this run's pattern.
pub fn read_verify(
    path: &Path,
    size: u64,
    opts: &VerifyOptions,
) -> Result<ReadReport, VerifyError> {
    read_verify_with(path, size, opts, &Interrupt::new(), &mut |_, _| {})
}

/// Write, read back, check and remove (unless `opts.keep`) a `size`-byte file at `path`.
/// `progress` is called on the calling thread with the phase and the bytes done so far.
pub fn verify_file(
    path: &Path,
    size: u64,
    opts: &VerifyOptions,
    progress: &mut dyn FnMut(Phase, u64),
) -> Result<VerifyReport, VerifyError> {
    verify_file_until(path, size, opts, &Interrupt::new(), progress)
}

/// [`verify_file`] that stops at the next block once `interrupt` is set (Ctrl-C, SIGTERM):
/// it then removes the file, even with `opts.keep` (a partial test file is no use and may
/// be large), and returns [`VerifyError::Interrupted`].
pub fn verify_file_until(
    path: &Path,
    size: u64,
    opts: &VerifyOptions,
    interrupt: &Interrupt,
    progress: &mut dyn FnMut(Phase, u64),
) -> Result<VerifyReport, VerifyError> {
    let write = write_pattern_with(path, size, opts, interrupt, progress)?;
    // Listed only once this run created the file: it must never remove someone else's.
    let _listed = Unfinished::new(path);
    let read = read_verify_with(path, size, opts, interrupt, progress);
    let interrupted = matches!(read, Err(VerifyError::Interrupted));
    if !opts.keep || interrupted {
        let removed = std::fs::remove_file(path).map_err(|e| io_err("removing", path, None, e));
        if read.is_ok() {
            removed?;
        }
    }
    let read = read?;
    let outcome = match read.first_mismatch {
        Some(first) => VerifyOutcome::Failed {
            first,
            bad_sectors: read.bad_sectors,
        },
        None => VerifyOutcome::Passed,
    };
    Ok(VerifyReport {
        path: path.to_path_buf(),
        bytes: size,
        write_mb_s: write.mb_per_s(),
        read_mb_s: read.mb_per_s(),
        fallback: write.fallback.clone().or_else(|| read.fallback.clone()),
        write,
        read,
        outcome,
    })
}

/// Test files of runs in progress, for [`remove_unfinished_files`].
static UNFINISHED: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

/// Lists a test file in [`UNFINISHED`] while it lives.
struct Unfinished(PathBuf);

impl Unfinished {
    fn new(path: &Path) -> Self {
        let mut list = UNFINISHED.lock().unwrap_or_else(|e| e.into_inner());
        list.push(path.to_path_buf());
        Unfinished(path.to_path_buf())
    }
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        let mut list = UNFINISHED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = list.iter().position(|p| *p == self.0) {
            list.swap_remove(i);
        }
    }
}

/// Remove the test files of the runs still in progress in this process.
///
/// For a process about to exit without unwinding (a second Ctrl-C while the first one's
/// clean-up waits on a hung device): the file's name goes at once, and its space when the
/// I/O in flight ends with the process.
pub fn remove_unfinished_files() {
    let list = UNFINISHED.lock().unwrap_or_else(|e| e.into_inner());
    for p in list.iter() {
        let _ = std::fs::remove_file(p);
    }
}

fn write_pattern_with(
    path: &Path,
    size: u64,
    opts: &VerifyOptions,
    interrupt: &Interrupt,
    progress: &mut dyn FnMut(Phase, u64),
) -> Result<WriteStats, VerifyError> {
    validate(size, opts)?;
    check_space(path, size)?;
    // Created without O_DIRECT, which is set afterwards: a file system that refuses
    // O_DIRECT at open() (ramfs) does so AFTER creating the file, so an exclusive create
    // with O_DIRECT would leave an empty file behind and a retry would hit EEXIST.
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| match e.kind() {
            io::ErrorKind::AlreadyExists => VerifyError::Exists(path.to_path_buf()),
            _ => io_err("creating", path, None, e),
        })?;
    let _listed = Unfinished::new(path);
    let result = write_open_file(&file, path, size, opts, interrupt, progress);
    if let Err(e) = &result {
        if !opts.keep || matches!(e, VerifyError::Interrupted) {
            drop(file);
            let _ = std::fs::remove_file(path);
        }
    }
    result
}

fn write_open_file(
    file: &File,
    path: &Path,
    size: u64,
    opts: &VerifyOptions,
    interrupt: &Interrupt,
    progress: &mut dyn FnMut(Phase, u64),
) -> Result<WriteStats, VerifyError> {
    let mut w = Writer {
        file,
        path,
        mode: IoMode::Buffered,
        fallback: None,
    };
    if opts.io == IoPolicy::Auto {
        match set_direct(file, true) {
            Ok(()) => w.mode = IoMode::Direct,
            Err(e) if is_einval(&e) => {
                w.fallback = Some("the file system refused O_DIRECT (EINVAL)".into());
            }
            Err(e) => return Err(io_err("setting O_DIRECT on", path, None, e)),
        }
    }
    let start = Instant::now();
    // The first block alone, on this thread: it settles direct or buffered for the rest.
    let mut buf = AlignedBuf::new(opts.block_size);
    let first = opts.block_size.min(size as usize);
    stamp_block(&mut buf[..first], opts.seed, 0);
    w.write_first(&buf[..first], 0)?;
    progress(Phase::Write, first as u64);
    if opts.overlap {
        drop(buf);
        let w = &w;
        pipeline(
            size,
            opts,
            1,
            interrupt,
            &|b: &mut [u8], off| {
                stamp_block(b, opts.seed, off);
                w.write(b, off)
            },
            &mut |off, len, ()| {
                progress(Phase::Write, off + len as u64);
                false
            },
        )?;
    } else {
        for (off, len) in blocks(size, opts.block_size).skip(1) {
            if interrupt.is_set() {
                return Err(VerifyError::Interrupted);
            }
            stamp_block(&mut buf[..len], opts.seed, off);
            w.write(&buf[..len], off)?;
            progress(Phase::Write, off + len as u64);
        }
    }
    file.sync_data()
        .map_err(|e| io_err("syncing", path, None, e))?;
    let seconds = start.elapsed().as_secs_f64();
    if w.mode == IoMode::Buffered {
        drop_cache(file, 0, 0);
    }
    Ok(WriteStats {
        bytes: size,
        seconds,
        mode: w.mode,
        fallback: w.fallback,
    })
}

fn read_verify_with(
    path: &Path,
    size: u64,
    opts: &VerifyOptions,
    interrupt: &Interrupt,
    progress: &mut dyn FnMut(Phase, u64),
) -> Result<ReadReport, VerifyError> {
    validate(size, opts)?;
    let start = Instant::now();
    let open = |direct: bool| {
        let mut o = OpenOptions::new();
        o.read(true);
        if direct {
            o.custom_flags(libc::O_DIRECT);
        }
        o.open(path)
    };
    let (file, mode, fallback) = match opts.io {
        IoPolicy::Buffered => (open(false), IoMode::Buffered, None),
        IoPolicy::Auto => match open(true) {
            Err(e) if is_einval(&e) => (
                open(false),
                IoMode::Buffered,
                Some("the file system refused O_DIRECT (EINVAL)".to_string()),
            ),
            r => (r, IoMode::Direct, None),
        },
    };
    let file = file.map_err(|e| io_err("opening", path, None, e))?;
    if mode == IoMode::Buffered {
        drop_cache(&file, 0, 0);
    }
    let mut r = Reader {
        file: &file,
        path,
        mode,
        fallback,
    };
    let mut tally = Tally::default();
    let seed = opts.seed;
    // The first block alone, on this thread: it settles direct or buffered for the rest.
    let mut buf = AlignedBuf::new(opts.block_size);
    let first = opts.block_size.min(size as usize);
    let got = r.read_first(&mut buf[..first], 0)?;
    let (bad, m) = check_read(&buf[..got], seed, 0);
    let mut ended = tally.add(0, first, got, bad, m, size);
    progress(Phase::Read, first as u64);
    if !ended && opts.overlap {
        drop(buf);
        let r = &r;
        pipeline(
            size,
            opts,
            1,
            interrupt,
            &|b: &mut [u8], off| {
                let got = r.read(b, off)?;
                let (bad, m) = check_read(&b[..got], seed, off);
                Ok((got, bad, m))
            },
            &mut |off, len, (got, bad, m)| {
                let ended = tally.add(off, len, got, bad, m, size);
                progress(Phase::Read, off + len as u64);
                ended
            },
        )?;
    } else if !ended {
        for (off, len) in blocks(size, opts.block_size).skip(1) {
            if interrupt.is_set() {
                return Err(VerifyError::Interrupted);
            }
            let got = r.read(&mut buf[..len], off)?;
            let (bad, m) = check_read(&buf[..got], seed, off);
            ended = tally.add(off, len, got, bad, m, size);
            progress(Phase::Read, off + len as u64);
            if ended {
                break;
            }
        }
    }
    Ok(ReadReport {
        bytes: tally.bytes,
        seconds: start.elapsed().as_secs_f64(),
        mode: r.mode,
        fallback: r.fallback,
        sectors: tally.sectors,
        bad_sectors: tally.bad,
        first_mismatch: tally.first,
    })
}

/// Check the whole sectors of the `got` bytes read into `data`.
fn check_read(data: &[u8], seed: u64, off: u64) -> (u64, Option<Mismatch>) {
    let whole = data.len() / SECTOR * SECTOR;
    check_block(&data[..whole], seed, off)
}

#[derive(Default)]
struct Tally {
    bytes: u64,
    sectors: u64,
    bad: u64,
    first: Option<Mismatch>,
}

impl Tally {
    /// Add the checked block at `off` (`len` long, of which `got` bytes were read, with
    /// `bad` bad sectors, the first at `first`); true when the file ended in it.
    fn add(
        &mut self,
        off: u64,
        len: usize,
        got: usize,
        bad: u64,
        first: Option<Mismatch>,
        size: u64,
    ) -> bool {
        let whole = got / SECTOR * SECTOR;
        self.bytes += got as u64;
        self.sectors += (whole / SECTOR) as u64;
        self.bad += bad;
        if self.first.is_none() {
            self.first = first;
        }
        if got < len {
            // Everything from the first incomplete sector to the end is missing.
            let missing_from = off + whole as u64;
            self.bad += (size - missing_from) / SECTOR as u64;
            self.first.get_or_insert(Mismatch {
                offset: off + got as u64,
                sector_offset: missing_from,
                kind: MismatchKind::Missing,
            });
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    const MIB: u64 = 1 << 20;

    fn opts(seed: u64) -> VerifyOptions {
        VerifyOptions {
            seed,
            block_size: MIB as usize,
            ..VerifyOptions::default()
        }
    }

    #[test]
    fn io_buffers_are_huge_page_aligned_zeroed_and_their_own() {
        for len in [SECTOR, 1 << 20, HUGE_PAGE, 3 * HUGE_PAGE + SECTOR] {
            let mut a = AlignedBuf::new(len);
            let mut b = AlignedBuf::new(len);
            assert_eq!(a.len(), len);
            assert_eq!(a.as_ptr() as usize % HUGE_PAGE, 0, "len {len}");
            assert!(a.iter().all(|&x| x == 0), "len {len}");
            a.fill(0xa5);
            b[len - 1] = 1;
            assert!(a.iter().all(|&x| x == 0xa5), "len {len}");
            assert_eq!(b.iter().filter(|&&x| x != 0).count(), 1, "len {len}");
            // Moved to another thread and dropped there (the pipeline's workers do so).
            std::thread::spawn(move || assert_eq!(a[len / 2], 0xa5))
                .join()
                .unwrap();
        }
    }

    /// A temp dir under TMPDIR. Where that is tmpfs, the direct-I/O assertions are
    /// replaced by a note (see `roundtrip_passes_with_direct_io_on_a_disk_file_system`).
    fn real_fs_dir() -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix("blockio-test")
            .tempdir()
            .expect("temp dir")
    }

    fn fs_magic(p: &Path) -> i64 {
        let c = std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
        let mut st: libc::statfs = unsafe { std::mem::zeroed() };
        assert_eq!(unsafe { libc::statfs(c.as_ptr(), &mut st) }, 0);
        st.f_type as i64
    }

    const EXT4_MAGIC: i64 = 0xEF53;
    const XFS_MAGIC: i64 = 0x5846_5342;

    #[test]
    fn pattern_is_unique_per_sector_seed_and_not_trivial() {
        let mut a = vec![0u8; 2 * SECTOR];
        stamp_block(&mut a, 7, 0);
        let mut b = vec![0u8; SECTOR];
        stamp_block(&mut b, 8, 0);
        assert_ne!(a[HEADER..SECTOR], a[SECTOR + HEADER..]);
        assert_ne!(a[HEADER..SECTOR], b[HEADER..]);
        assert_eq!(le64(&a, 0), MAGIC);
        assert_eq!(le64(&a, SECTOR + 16), SECTOR as u64);
        // No zero words and roughly balanced bits: not compressible.
        let words: Vec<u64> = a[HEADER..SECTOR].chunks(8).map(|w| le64(w, 0)).collect();
        assert!(words.iter().all(|&w| w != 0));
        let ones: u32 = words.iter().map(|w| w.count_ones()).sum();
        let bits = (words.len() * 64) as f64;
        assert!((ones as f64 / bits - 0.5).abs() < 0.02, "{ones} of {bits}");
        assert_eq!(check_block(&a, 7, 0), (0, None));
    }

    #[test]
    fn check_names_each_kind_of_damage() {
        let mut blk = vec![0u8; 4 * SECTOR];
        stamp_block(&mut blk, 1, 0);
        let mut c = blk.clone();
        c[SECTOR + 1000] ^= 1;
        let (bad, m) = check_block(&c, 1, 0);
        assert_eq!(bad, 1);
        assert_eq!(
            m,
            Some(Mismatch {
                offset: SECTOR as u64 + 1000,
                sector_offset: SECTOR as u64,
                kind: MismatchKind::Corrupted
            })
        );
        // A flipped bit in the offset field is corruption, not a misplaced write.
        let mut c = blk.clone();
        c[2 * SECTOR + 17] ^= 0x40;
        assert_eq!(
            check_block(&c, 1, 0).1.unwrap().kind,
            MismatchKind::Corrupted
        );
        // A corrupted checksum field alone is caught too.
        let mut c = blk.clone();
        c[24] ^= 1;
        assert_eq!(check_block(&c, 1, 0).1.unwrap().offset, 24);
        let mut c = blk.clone();
        c[3 * SECTOR..].fill(0);
        assert_eq!(
            check_block(&c, 1, 0).1.unwrap().kind,
            MismatchKind::Unstamped { zeroed: true }
        );
        c[3 * SECTOR..].fill(0x5a);
        assert_eq!(
            check_block(&c, 1, 0).1.unwrap().kind,
            MismatchKind::Unstamped { zeroed: false }
        );
    }

    #[test]
    fn roundtrip_passes_with_direct_io_on_a_disk_file_system() {
        let dir = real_fs_dir();
        let path = dir.path().join("verify.dat");
        // 3 MiB + 8 KiB in 1 MiB blocks: the last block is short.
        let size = 3 * MIB + 8192;
        let mut seen = Vec::new();
        let rep = verify_file(&path, size, &opts(0x1234), &mut |ph, n| seen.push((ph, n))).unwrap();
        assert!(rep.passed(), "{:?}", rep.outcome);
        assert_eq!(rep.read.sectors, size / SECTOR as u64);
        assert_eq!(rep.read.bytes, size);
        assert!(!path.exists(), "the file is removed afterwards");
        assert!(rep.write_mb_s > 0.0 && rep.read_mb_s > 0.0);
        let magic = fs_magic(dir.path());
        if magic == EXT4_MAGIC || magic == XFS_MAGIC {
            assert_eq!(
                (rep.write.mode, rep.read.mode),
                (IoMode::Direct, IoMode::Direct)
            );
            assert_eq!(rep.fallback, None);
        } else {
            eprintln!(
                "note: temp dir fs {magic:#x} is not ext4/xfs; I/O mode was {:?}",
                rep.write.mode
            );
        }
        let writes: Vec<u64> = seen
            .iter()
            .filter(|s| s.0 == Phase::Write)
            .map(|s| s.1)
            .collect();
        let reads: Vec<u64> = seen
            .iter()
            .filter(|s| s.0 == Phase::Read)
            .map(|s| s.1)
            .collect();
        assert_eq!(writes, [MIB, 2 * MIB, 3 * MIB, size]);
        assert_eq!(reads, [MIB, 2 * MIB, 3 * MIB, size]);
        let json = serde_json::to_string(&rep).unwrap();
        assert!(json.contains("\"outcome\":\"Passed\""));
    }

    #[test]
    fn serial_and_buffered_modes_pass_too() {
        let dir = real_fs_dir();
        for (i, (overlap, io)) in [(false, IoPolicy::Auto), (true, IoPolicy::Buffered)]
            .into_iter()
            .enumerate()
        {
            let path = dir.path().join(format!("v{i}.dat"));
            let o = VerifyOptions {
                overlap,
                io,
                ..opts(i as u64)
            };
            let rep = verify_file(&path, 2 * MIB + 4096, &o, &mut |_, _| {}).unwrap();
            assert!(rep.passed());
            if io == IoPolicy::Buffered {
                assert_eq!(rep.write.mode, IoMode::Buffered);
                // Asked for, not a fallback.
                assert_eq!(rep.fallback, None);
            }
        }
    }

    #[test]
    fn a_corrupted_byte_is_named_by_its_offset() {
        let dir = real_fs_dir();
        let path = dir.path().join("verify.dat");
        let o = VerifyOptions {
            keep: true,
            ..opts(42)
        };
        write_pattern(&path, 4 * MIB, &o).unwrap();
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        let at = 2 * MIB + 5 * SECTOR as u64 + 777;
        f.write_all_at(b"\xde\xad", at).unwrap();
        f.sync_data().unwrap();
        drop(f);
        let rep = read_verify(&path, 4 * MIB, &o).unwrap();
        assert!(!rep.passed());
        assert_eq!(rep.bad_sectors, 1);
        let m = rep.first_mismatch.unwrap();
        assert_eq!(m.offset, at);
        assert_eq!(m.sector_offset, 2 * MIB + 5 * SECTOR as u64);
        assert_eq!(m.kind, MismatchKind::Corrupted);
    }

    #[test]
    fn swapped_sectors_are_misplaced_writes() {
        let dir = real_fs_dir();
        let path = dir.path().join("verify.dat");
        let o = opts(9);
        write_pattern(&path, 2 * MIB, &o).unwrap();
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        let (a, b) = (3 * SECTOR as u64, MIB + 10 * SECTOR as u64);
        let mut sa = vec![0u8; SECTOR];
        let mut sb = vec![0u8; SECTOR];
        f.read_exact_at(&mut sa, a).unwrap();
        f.read_exact_at(&mut sb, b).unwrap();
        f.write_all_at(&sb, a).unwrap();
        f.write_all_at(&sa, b).unwrap();
        f.sync_data().unwrap();
        let rep = read_verify(&path, 2 * MIB, &o).unwrap();
        assert_eq!(rep.bad_sectors, 2);
        let m = rep.first_mismatch.unwrap();
        assert_eq!(m.sector_offset, a);
        assert_eq!(m.kind, MismatchKind::Misplaced { stamped_offset: b });
        assert!(
            m.offset >= a + 16 && m.offset < a + 24,
            "in the offset stamp: {m}"
        );
    }

    #[test]
    fn a_sector_left_from_another_run_is_stale() {
        let dir = real_fs_dir();
        let (old, new) = (dir.path().join("old.dat"), dir.path().join("new.dat"));
        write_pattern(&old, MIB, &opts(0xAAAA)).unwrap();
        write_pattern(&new, MIB, &opts(0xBBBB)).unwrap();
        let mut s = vec![0u8; SECTOR];
        File::open(&old)
            .unwrap()
            .read_exact_at(&mut s, 8192)
            .unwrap();
        let f = OpenOptions::new().write(true).open(&new).unwrap();
        f.write_all_at(&s, 8192).unwrap();
        f.sync_data().unwrap();
        let rep = read_verify(&new, MIB, &opts(0xBBBB)).unwrap();
        assert_eq!(rep.bad_sectors, 1);
        let m = rep.first_mismatch.unwrap();
        assert_eq!(
            m.kind,
            MismatchKind::Stale {
                stamped_seed: 0xAAAA
            }
        );
        assert_eq!(m.sector_offset, 8192);
        assert_eq!(m.offset, 8192 + 8, "the first byte of the seed stamp");
        // Read with the wrong seed altogether: every sector is stale.
        let rep = read_verify(&new, MIB, &opts(0xCCCC)).unwrap();
        assert_eq!(rep.bad_sectors, MIB / SECTOR as u64);
    }

    #[test]
    fn a_short_file_is_missing_data() {
        let dir = real_fs_dir();
        let path = dir.path().join("verify.dat");
        write_pattern(&path, 2 * MIB, &opts(5)).unwrap();
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(MIB + 100).unwrap();
        drop(f);
        let rep = read_verify(&path, 2 * MIB, &opts(5)).unwrap();
        let m = rep.first_mismatch.unwrap();
        assert_eq!(m.kind, MismatchKind::Missing);
        assert_eq!(m.sector_offset, MIB);
        assert_eq!(rep.bad_sectors, MIB / SECTOR as u64);
        assert_eq!(rep.sectors, MIB / SECTOR as u64);
    }

    #[test]
    fn refuses_to_overwrite_and_checks_sizes_and_space() {
        let dir = real_fs_dir();
        let path = dir.path().join("precious.dat");
        std::fs::write(&path, b"operator data").unwrap();
        let e = verify_file(&path, MIB, &opts(1), &mut |_, _| {}).unwrap_err();
        assert!(matches!(e, VerifyError::Exists(_)), "{e}");
        assert_eq!(std::fs::read(&path).unwrap(), b"operator data");
        let p2 = dir.path().join("x.dat");
        assert!(matches!(
            verify_file(&p2, 1000, &opts(1), &mut |_, _| {}),
            Err(VerifyError::InvalidSize(1000))
        ));
        assert!(matches!(
            write_pattern(&p2, 0, &opts(1)),
            Err(VerifyError::InvalidSize(0))
        ));
        let bad_block = VerifyOptions {
            block_size: 1000,
            ..opts(1)
        };
        assert!(matches!(
            write_pattern(&p2, MIB, &bad_block),
            Err(VerifyError::InvalidBlockSize(1000))
        ));
        let e = write_pattern(&p2, 1 << 60, &opts(1)).unwrap_err();
        assert!(matches!(e, VerifyError::NoSpace { .. }), "{e}");
        assert!(!p2.exists());
        let e = read_verify(&dir.path().join("absent"), MIB, &opts(1)).unwrap_err();
        assert!(e.to_string().starts_with("opening "), "{e}");
    }

    #[test]
    fn keep_leaves_the_file() {
        let dir = real_fs_dir();
        let path = dir.path().join("kept.dat");
        let o = VerifyOptions {
            keep: true,
            ..opts(3)
        };
        assert!(verify_file(&path, MIB, &o, &mut |_, _| {})
            .unwrap()
            .passed());
        assert_eq!(std::fs::metadata(&path).unwrap().len(), MIB);
    }

    fn unfinished_has(path: &Path) -> bool {
        UNFINISHED.lock().unwrap().iter().any(|p| p == path)
    }

    /// Issue 12: verify ignored Ctrl-C / SIGTERM, and a second Ctrl-C left its test file.
    #[test]
    fn verify_ignored_ctrl_c_now_an_interrupt_stops_it_and_removes_the_file() {
        let dir = real_fs_dir();
        let size = 64 * MIB;
        for (i, (phase, overlap, keep)) in [
            (Phase::Write, true, false),
            (Phase::Read, true, true),
            (Phase::Write, false, true),
            (Phase::Read, false, false),
        ]
        .into_iter()
        .enumerate()
        {
            let path = dir.path().join(format!("v{i}.dat"));
            let o = VerifyOptions {
                overlap,
                keep,
                ..opts(i as u64)
            };
            let interrupt = Interrupt::new();
            let mut seen = Vec::new();
            let mut listed = false;
            let r = verify_file_until(&path, size, &o, &interrupt, &mut |ph, n| {
                seen.push((ph, n));
                listed |= unfinished_has(&path);
                // Ctrl-C a few blocks into the phase.
                if ph == phase && n >= 4 * MIB {
                    interrupt.set();
                }
            });
            let case = format!("{phase:?} overlap={overlap} keep={keep}");
            assert!(matches!(r, Err(VerifyError::Interrupted)), "{case}: {r:?}");
            assert!(!path.exists(), "{case}: the test file is removed");
            assert!(listed, "{case}: listed for a forced exit while it ran");
            assert!(!unfinished_has(&path), "{case}: and no longer listed");
            // Stopped at the next blocks, not at the end of the phase (or the run).
            let last = seen.iter().filter(|s| s.0 == phase).map(|s| s.1).max();
            assert!(last.unwrap() < 16 * MIB, "{case}: ran on to {last:?}");
            if phase == Phase::Write {
                assert!(seen.iter().all(|s| s.0 == Phase::Write), "{case}: no read");
            }
        }
    }

    #[test]
    fn only_files_this_run_created_are_listed_for_removal() {
        let dir = real_fs_dir();
        let (mine, other) = (dir.path().join("mine.dat"), dir.path().join("other.dat"));
        std::fs::write(&mine, b"test data").unwrap();
        std::fs::write(&other, b"operator data").unwrap();
        let listed = Unfinished::new(&mine);
        assert!(unfinished_has(&mine) && !unfinished_has(&other));
        // Not remove_unfinished_files(): tests run in parallel and others' files are listed.
        let snapshot: Vec<PathBuf> = UNFINISHED.lock().unwrap().clone();
        assert!(snapshot.contains(&mine) && !snapshot.contains(&other));
        drop(listed);
        assert!(!unfinished_has(&mine));
        // An existing file is never listed: the exclusive create fails first.
        let e = write_pattern(&other, MIB, &opts(1)).unwrap_err();
        assert!(matches!(e, VerifyError::Exists(_)));
        assert!(!unfinished_has(&other));
        assert_eq!(std::fs::read(&other).unwrap(), b"operator data");
    }

    // -----------------------------------------------------------------------------------
    // Tests that need root and loop devices; they skip, saying why, elsewhere.

    fn root_tools(tools: &[&str]) -> bool {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("note: not root; skipping the loop-device/mount test");
            return false;
        }
        for t in tools {
            let found = Command::new("sh")
                .args(["-c", &format!("command -v {t}")])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !found {
                eprintln!("note: {t} not found; skipping the loop-device/mount test");
                return false;
            }
        }
        true
    }

    fn run(cmd: &str, args: &[&str]) -> Result<String, String> {
        let out = Command::new(cmd)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("{cmd}: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "{cmd} {args:?}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// Unmounts and detaches whatever was set up, also when the test panics.
    #[derive(Default)]
    struct Cleanup {
        mount: Option<PathBuf>,
        loopdev: Option<String>,
    }

    impl Drop for Cleanup {
        fn drop(&mut self) {
            if let Some(m) = self.mount.take() {
                let _ = run("umount", &[m.to_str().unwrap_or_default()]);
            }
            if let Some(l) = self.loopdev.take() {
                let _ = run("losetup", &["-d", &l]);
            }
        }
    }

    #[test]
    fn corruption_written_under_a_mounted_loop_fs_is_caught() {
        if !Path::new("/dev/loop-control").exists() {
            eprintln!("note: no /dev/loop-control; skipping the loop-device test");
            return;
        }
        if !root_tools(&["losetup", "mkfs.ext4", "mount", "umount", "blockdev"]) {
            return;
        }
        let dir = real_fs_dir();
        let img = dir.path().join("backing.img");
        let mnt = dir.path().join("mnt");
        std::fs::create_dir(&mnt).unwrap();
        File::create(&img).unwrap().set_len(64 * MIB).unwrap();
        let mut guard = Cleanup::default();
        let img_s = img.to_str().unwrap();
        if let Err(e) = run("mkfs.ext4", &["-q", "-F", "-b", "4096", img_s]) {
            eprintln!("note: {e}; skipping the loop-device test");
            return;
        }
        let dev = match run("losetup", &["-f", "--show", img_s]) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("note: {e}; skipping the loop-device test");
                return;
            }
        };
        guard.loopdev = Some(dev.clone());
        if let Err(e) = run("mount", &[&dev, mnt.to_str().unwrap()]) {
            eprintln!("note: {e}; skipping the loop-device test");
            return;
        }
        guard.mount = Some(mnt.clone());

        let path = mnt.join("verify.dat");
        let o = VerifyOptions {
            keep: true,
            ..opts(0x5eed)
        };
        let w = write_pattern(&path, 4 * MIB, &o).unwrap();
        assert_eq!(
            w.mode,
            IoMode::Direct,
            "ext4 on a loop device takes O_DIRECT"
        );

        // Find the sector written for file offset `target` in the backing image by its
        // unique stamp (magic, seed, offset), then damage it there, below the file system.
        let target = MIB + 3 * SECTOR as u64;
        let mut stamp = Vec::new();
        stamp.extend_from_slice(&MAGIC.to_le_bytes());
        stamp.extend_from_slice(&o.seed.to_le_bytes());
        stamp.extend_from_slice(&target.to_le_bytes());
        let image = std::fs::read(&img).unwrap();
        let at = (0..image.len() - SECTOR)
            .step_by(512)
            .find(|&i| image[i..i + 24] == stamp[..])
            .expect("the fdatasync'd sector is in the backing file") as u64;
        let original = &image[(at + 1234) as usize..(at + 1237) as usize];
        let damaged: Vec<u8> = original.iter().map(|b| !b).collect();
        let backing = OpenOptions::new().write(true).open(&img).unwrap();
        backing.write_all_at(&damaged, at + 1234).unwrap();
        backing.sync_data().unwrap();
        // Drop any copy the loop device's own cache holds.
        run("blockdev", &["--flushbufs", &dev]).unwrap();

        let rep = read_verify(&path, 4 * MIB, &o).unwrap();
        assert_eq!(rep.mode, IoMode::Direct);
        assert_eq!(rep.bad_sectors, 1);
        let m = rep.first_mismatch.unwrap();
        assert_eq!(m.sector_offset, target);
        assert_eq!(m.kind, MismatchKind::Corrupted);
        assert_eq!(m.offset, target + 1234);
    }

    #[test]
    fn a_file_system_without_o_direct_falls_back_and_says_so() {
        if !root_tools(&["mount", "umount"]) {
            return;
        }
        let dir = real_fs_dir();
        let mnt = dir.path().join("ram");
        std::fs::create_dir(&mnt).unwrap();
        // ramfs has no O_DIRECT on any kernel (tmpfs gained it in 6.6).
        if let Err(e) = run("mount", &["-t", "ramfs", "ramfs", mnt.to_str().unwrap()]) {
            eprintln!("note: {e}; skipping the fallback test");
            return;
        }
        let _guard = Cleanup {
            mount: Some(mnt.clone()),
            loopdev: None,
        };
        let path = mnt.join("verify.dat");
        let rep = verify_file(&path, 2 * MIB, &opts(77), &mut |_, _| {}).unwrap();
        assert!(rep.passed());
        assert_eq!(
            (rep.write.mode, rep.read.mode),
            (IoMode::Buffered, IoMode::Buffered)
        );
        assert!(rep.fallback.as_deref().unwrap().contains("O_DIRECT"));
        assert!(!path.exists());
    }
}
