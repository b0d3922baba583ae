//! `parted -m DEV unit UNIT print` output, and where to put an aligned partition.
//!
//! Contract:
//! - [`parse_parted_machine`] reads parted's machine format: `BYT;` (or `CHS;`/`CYL;`), the
//!   disk line `path:size:transport:lss:pss:label:model:flags;` (older parted has no flags
//!   field), then `number:start:end:size:fs:name:flags;` per partition (free-space lines of
//!   `print free` are skipped). Fields are split on unescaped `:` (parted escapes `:` and `\`
//!   in strings), so `/dev/disk/by-path/...:3260-...` paths survive.
//! - Every amount keeps its text and unit ([`Amount`]). Sector positions
//!   ([`PartedPartition::start_sector`], ...) are filled only when they are EXACT: printed in
//!   sectors (`unit s`), in bytes (`unit B`, where parted prints the END as the last byte),
//!   or in a binary unit whose value is a whole number of sectors. Decimal units (`MB`, `GB`)
//!   are rounded by parted and never give sectors; ask parted for `unit s` or `unit B`.
//! - [`aligned_partition`] computes where one partition covering the device should start
//!   and end (see its documentation for the policy).
//! - The parser is pure and never panics; output it cannot read is a [`PartedError`].

use serde::{Deserialize, Serialize};

/// Why parted output could not be read, or a partition could not be placed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PartedError {
    /// No `BYT;`/`CHS;`/`CYL;` line: not machine output (`-m` missing?).
    #[error("parted: not machine-readable output (no BYT; line)")]
    NotMachine,
    /// No disk line after `BYT;`.
    #[error("parted: no disk line")]
    NoDisk,
    /// A disk or partition line that does not fit the format.
    #[error("parted line {line}: {reason}")]
    Line {
        /// 1-based line number.
        line: usize,
        /// What was wrong with it.
        reason: String,
    },
}

/// Units parted prints after a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Unit {
    /// `s`: logical sectors.
    Sectors,
    /// `B`: bytes.
    Bytes,
    /// `kB`, `MB`, `GB`, `TB`, `PB`: powers of 1000 (rounded by parted).
    Decimal(u32),
    /// `KiB`, `MiB`, `GiB`, `TiB`, `PiB`: powers of 1024.
    Binary(u32),
    /// `%` of the device.
    Percent,
    /// Anything else (`cyl`, CHS triples).
    Other,
}

/// A number as parted printed it, with its unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Amount {
    /// The text, e.g. `2048s`, `1048576B`, `1.05MB`.
    pub text: String,
    /// The unit of `value`.
    pub unit: Unit,
    /// The number before the unit.
    pub value: f64,
}

impl Amount {
    /// Read `2048s`, `1048576B`, `1.05MB`, `8.00MiB`, `100%`.
    pub fn parse(text: &str) -> Option<Amount> {
        let t = text.trim();
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
            .unwrap_or(t.len());
        let (num, suffix) = t.split_at(split);
        let value: f64 = num.parse().ok()?;
        if !value.is_finite() {
            return None;
        }
        let unit = match suffix {
            "s" => Unit::Sectors,
            "B" => Unit::Bytes,
            "kB" => Unit::Decimal(1),
            "MB" => Unit::Decimal(2),
            "GB" => Unit::Decimal(3),
            "TB" => Unit::Decimal(4),
            "PB" => Unit::Decimal(5),
            "KiB" => Unit::Binary(1),
            "MiB" => Unit::Binary(2),
            "GiB" => Unit::Binary(3),
            "TiB" => Unit::Binary(4),
            "PiB" => Unit::Binary(5),
            "%" => Unit::Percent,
            _ => Unit::Other,
        };
        Some(Amount {
            text: t.to_string(),
            unit,
            value,
        })
    }

    /// The exact byte count, when the unit allows it (`s` needs the logical sector size).
    pub fn exact_bytes(&self, logical_sector: u64) -> Option<u64> {
        let whole = |v: f64| (v >= 0.0 && v.fract() == 0.0 && v < 1.8e19).then_some(v as u64);
        match self.unit {
            Unit::Sectors => whole(self.value)?.checked_mul(logical_sector),
            Unit::Bytes => whole(self.value),
            Unit::Binary(p) => whole(self.value * 1024f64.powi(p as i32)),
            _ => None,
        }
    }

    /// The byte count, rounded for decimal units.
    pub fn approx_bytes(&self, logical_sector: u64) -> Option<u64> {
        match self.unit {
            Unit::Decimal(p) => {
                let b = self.value * 1000f64.powi(p as i32);
                (0.0..1.8e19).contains(&b).then(|| b.round() as u64)
            }
            _ => self.exact_bytes(logical_sector),
        }
    }
}

/// The disk line of `parted -m print`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartedDisk {
    /// Device path.
    pub path: String,
    /// Device size.
    pub size: Amount,
    /// Transport (`scsi`, `dm`, `virtblk`, ...).
    pub transport: String,
    /// Logical sector size in bytes.
    pub logical_sector: u64,
    /// Physical sector size in bytes.
    pub physical_sector: u64,
    /// Partition table: `gpt`, `msdos`, `loop` (a file system on the whole disk), `unknown`.
    pub label: String,
    /// Model (`Linux device-mapper (multipath)`).
    pub model: String,
    /// Disk flags (parted 3.x; empty when absent).
    pub flags: Vec<String>,
    /// Size in logical sectors, when exact.
    pub size_sectors: Option<u64>,
    /// The partitions, in the order printed.
    pub partitions: Vec<PartedPartition>,
}

/// A partition line of `parted -m print`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartedPartition {
    /// Partition number.
    pub number: u32,
    /// Start as printed.
    pub start: Amount,
    /// End as printed (inclusive: the last sector, or with `unit B` the last byte).
    pub end: Amount,
    /// Size as printed (absent in CHS output).
    pub size: Option<Amount>,
    /// File system parted recognised (`ext4`, `fat32`), if any.
    pub fs_type: Option<String>,
    /// GPT partition name (`primary`); `None` on msdos.
    pub name: Option<String>,
    /// Flags (`esp`, `boot`, `lvm`).
    pub flags: Vec<String>,
    /// First sector, when exact.
    pub start_sector: Option<u64>,
    /// Last sector (inclusive), when exact.
    pub end_sector: Option<u64>,
    /// Size in sectors, when exact.
    pub size_sectors: Option<u64>,
}

/// Split on `:` not preceded by a backslash, undoing parted's `\:` and `\\` escapes.
fn split_fields(s: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    out.last_mut().expect("never empty").push(n);
                }
            }
            ':' => out.push(String::new()),
            _ => out.last_mut().expect("never empty").push(c),
        }
    }
    out
}

fn opt(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

fn flag_list(s: &str) -> Vec<String> {
    s.split([',', ' '])
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .map(str::to_string)
        .collect()
}

/// Parse `parted -m -s DEV unit s print` (or any unit) output.
pub fn parse_parted_machine(text: &str) -> Result<PartedDisk, PartedError> {
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty())
        // parted prints warnings and errors before the table on stderr; skip to `BYT;`.
        .skip_while(|(_, l)| !matches!(*l, "BYT;" | "CHS;" | "CYL;"));
    lines.next().ok_or(PartedError::NotMachine)?;
    let (dn, disk_line) = lines.next().ok_or(PartedError::NoDisk)?;
    let line_err = |line: usize, reason: &str| PartedError::Line {
        line,
        reason: reason.to_string(),
    };
    let body = disk_line
        .strip_suffix(';')
        .ok_or_else(|| line_err(dn, "no terminating ';'"))?;
    let f = split_fields(body);
    if f.len() < 7 {
        return Err(line_err(dn, "fewer than 7 disk fields"));
    }
    let size = Amount::parse(&f[1]).ok_or_else(|| line_err(dn, "unreadable disk size"))?;
    let lss: u64 = f[3]
        .parse()
        .ok()
        .filter(|v: &u64| *v >= 512 && v.is_power_of_two())
        .ok_or_else(|| line_err(dn, "unreadable logical sector size"))?;
    let pss: u64 = f[4]
        .parse()
        .map_err(|_| line_err(dn, "unreadable physical sector size"))?;
    let mut disk = PartedDisk {
        path: f[0].clone(),
        size_sectors: size
            .exact_bytes(lss)
            .filter(|b| b % lss == 0)
            .map(|b| b / lss),
        size,
        transport: f[2].clone(),
        logical_sector: lss,
        physical_sector: pss,
        label: f[5].clone(),
        model: f[6].clone(),
        flags: f.get(7).map(|s| flag_list(s)).unwrap_or_default(),
        partitions: Vec::new(),
    };
    for (n, line) in lines {
        let body = line
            .strip_suffix(';')
            .ok_or_else(|| line_err(n, "no terminating ';'"))?;
        let f = split_fields(body);
        if f.get(4).map(String::as_str) == Some("free") {
            continue;
        }
        if f.len() < 3 {
            return Err(line_err(n, "fewer than 3 partition fields"));
        }
        let number: u32 = f[0]
            .parse()
            .map_err(|_| line_err(n, "unreadable partition number"))?;
        let start = Amount::parse(&f[1]).ok_or_else(|| line_err(n, "unreadable start"))?;
        let end = Amount::parse(&f[2]).ok_or_else(|| line_err(n, "unreadable end"))?;
        let size = f.get(3).and_then(|s| Amount::parse(s));
        let start_sector = start
            .exact_bytes(lss)
            .filter(|b| b % lss == 0)
            .map(|b| b / lss);
        // In sectors the end is the last sector; in bytes it is the last byte.
        let end_sector = match end.unit {
            Unit::Sectors => end.exact_bytes(1),
            _ => end
                .exact_bytes(lss)
                .and_then(|b| b.checked_add(1))
                .filter(|b| b % lss == 0)
                .map(|b| b / lss - 1),
        };
        let size_sectors = size
            .as_ref()
            .and_then(|s| s.exact_bytes(lss))
            .filter(|b| b % lss == 0)
            .map(|b| b / lss);
        disk.partitions.push(PartedPartition {
            number,
            start,
            end,
            size,
            fs_type: f.get(4).and_then(|s| opt(s)),
            name: f.get(5).and_then(|s| opt(s)),
            flags: f.get(6).map(|s| flag_list(s)).unwrap_or_default(),
            start_sector,
            end_sector,
            size_sectors,
        });
    }
    Ok(disk)
}

/// Why [`aligned_partition`] cannot place a partition.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlignError {
    /// The logical sector size is not a power of two of at least 512.
    #[error("logical sector size {0} is not a power of two >= 512")]
    BadSectorSize(u64),
    /// The device size is not a whole number of logical sectors.
    #[error("device size {0} bytes is not a whole number of sectors")]
    BadDeviceSize(u64),
    /// The alignment offset is not a whole number of logical sectors.
    #[error("alignment offset {0} bytes is not a whole number of sectors")]
    BadAlignmentOffset(u64),
    /// The device cannot hold one aligned grain after the GPT structures.
    #[error("device of {size} bytes is too small for a partition aligned to {grain} bytes")]
    TooSmall {
        /// Device size in bytes.
        size: u64,
        /// Alignment grain in bytes.
        grain: u64,
    },
}

/// 1 MiB: the alignment every current partitioning tool defaults to.
pub const DEFAULT_ALIGNMENT: u64 = 1 << 20;

/// The size in bytes of the GPT partition entry array (128 entries of 128 bytes).
const GPT_ENTRIES_BYTES: u64 = 128 * 128;

/// Where one GPT partition covering the device should go: `(first, last)` logical sector,
/// both inclusive, as `parted -s DEV unit s mkpart NAME FIRSTs LASTs` takes them.
///
/// Policy:
/// - The grain is `optimal_io_size` when the device reports one that is a whole number of
///   logical sectors (8 MiB on the lab LUN: a RAID stripe), else 1 MiB. A grain below 1 MiB
///   is rounded up to its smallest multiple of at least 1 MiB, so the start stays aligned to
///   the stripe and also clears the GPT header and entries (34 sectors at 512 B) like every
///   current tool's 1 MiB default. `parted ... 0% 100%` would start at sector 34 instead.
/// - The start is the first grain boundary, shifted by `alignment_offset` (the bytes by
///   which the device's LBA 0 is offset from its natural alignment, sysfs
///   `alignment_offset`).
/// - The end leaves room for the backup GPT (header plus 16 KiB of entries: 33 sectors at
///   512 B, 5 at 4 KiB) and is then rounded DOWN so that the partition size is a whole
///   number of grains, as fdisk/sfdisk do. This costs less than one grain at the tail and
///   keeps the file system's last allocation group stripe-aligned and the partition
///   growable by whole stripes if the LUN is extended.
pub fn aligned_partition(
    size_bytes: u64,
    logical_sector: u64,
    optimal_io_size: u64,
    alignment_offset: u64,
) -> Result<(u64, u64), AlignError> {
    let lss = logical_sector;
    if lss < 512 || !lss.is_power_of_two() {
        return Err(AlignError::BadSectorSize(lss));
    }
    if size_bytes % lss != 0 {
        return Err(AlignError::BadDeviceSize(size_bytes));
    }
    if alignment_offset % lss != 0 {
        return Err(AlignError::BadAlignmentOffset(alignment_offset));
    }
    let grain_bytes = if optimal_io_size > 0 && optimal_io_size % lss == 0 {
        optimal_io_size * DEFAULT_ALIGNMENT.div_ceil(optimal_io_size)
    } else {
        DEFAULT_ALIGNMENT.max(lss)
    };
    let grain = grain_bytes / lss;
    let offset = alignment_offset / lss % grain;
    let total = size_bytes / lss;
    let backup = 1 + GPT_ENTRIES_BYTES.div_ceil(lss);
    let too_small = AlignError::TooSmall {
        size: size_bytes,
        grain: grain_bytes,
    };
    // Primary GPT: protective MBR, header, entries.
    let first_usable = 2 + GPT_ENTRIES_BYTES.div_ceil(lss);
    let mut start = grain + offset;
    while start < first_usable {
        start += grain;
    }
    let usable_end = total.checked_sub(backup).ok_or(too_small.clone())?; // exclusive
    let whole_grains = usable_end.checked_sub(start).ok_or(too_small.clone())? / grain;
    if whole_grains == 0 {
        return Err(too_small);
    }
    Ok((start, start + whole_grains * grain - 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::steps::parse::fixtures::{files_below, lab_fixture, shared_dir};

    fn lab(name: &str) -> Option<String> {
        lab_fixture(name).map(|(_, out, _)| out)
    }

    fn real(file: &str) -> Option<String> {
        let dir = shared_dir("real/parted-machine")?;
        let files = files_below(&dir);
        Some(
            files
                .into_iter()
                .find(|(p, _)| p.ends_with(file))
                .expect(file)
                .1,
        )
    }

    #[test]
    fn lab_print_in_bytes_gives_exact_sectors() {
        let Some(out) = lab("parted-m-print.txt") else {
            return;
        };
        let d = parse_parted_machine(&out).unwrap();
        assert_eq!(d.path, "/dev/mapper/360014050c0ffe0012344abc9def00000");
        assert_eq!(d.transport, "dm");
        assert_eq!((d.logical_sector, d.physical_sector), (512, 512));
        assert_eq!(d.label, "gpt");
        assert_eq!(d.model, "Linux device-mapper (multipath)");
        assert_eq!(d.size_sectors, Some(1_048_576));
        assert_eq!(d.partitions.len(), 1);
        let p = &d.partitions[0];
        assert_eq!(p.number, 1);
        assert_eq!(p.start_sector, Some(2048));
        assert_eq!(p.end_sector, Some(1_048_542));
        // The same figure blkid reports as PART_ENTRY_SIZE for this partition.
        assert_eq!(p.size_sectors, Some(1_046_495));
        assert_eq!(p.fs_type, None);
        assert_eq!(p.name.as_deref(), Some("primary"));
        // 1 MiB start: misaligned against the lab LUN's 8 MiB optimal_io_size.
        assert_ne!(p.start_sector.unwrap() % 16384, 0);
    }

    #[test]
    fn lab_alignment_warnings_match_the_computed_start() {
        for (capture, bad_start) in [
            ("parted-mklabel-0pct.txt", 34),
            ("parted-mklabel-1MiB.txt", 2048),
        ] {
            let Some(out) = lab(capture) else { return };
            assert!(
                out.contains(&format!("{bad_start}s % 16384s != 0s")),
                "{capture}"
            );
        }
        let Some(limits) = lab("queue-limits.txt") else {
            return;
        };
        let value = |key: &str| -> u64 {
            limits
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{key}: ")))
                .unwrap()
                .trim()
                .parse()
                .unwrap()
        };
        let (start, end) = aligned_partition(
            536_870_912,
            value("logical_block_size"),
            value("optimal_io_size"),
            value("alignment_offset"),
        )
        .unwrap();
        assert_eq!(start, 16384);
        assert_eq!(end, 1_032_191);
        assert_eq!((end + 1 - start) % 16384, 0);
    }

    #[test]
    fn real_msdos_in_megabytes_has_no_exact_sectors() {
        let Some(t) = real("ansible-parted-msdos-3-partitions-unit-mb.txt") else {
            return;
        };
        let d = parse_parted_machine(&t).unwrap();
        assert_eq!(d.path, "/dev/sdb");
        assert_eq!(d.label, "msdos");
        assert_eq!(d.model, "ATA TOSHIBA THNSFJ25");
        assert_eq!(d.size.unit, Unit::Decimal(2));
        assert_eq!(d.size.approx_bytes(512), Some(286_061_000_000));
        assert_eq!(d.size_sectors, None);
        let nums: Vec<u32> = d.partitions.iter().map(|p| p.number).collect();
        assert_eq!(nums, [1, 2, 3]);
        let p1 = &d.partitions[0];
        assert_eq!(p1.fs_type.as_deref(), Some("fat32"));
        assert_eq!(p1.name, None);
        assert_eq!(p1.flags, ["esp"]);
        assert_eq!(p1.start.value, 1.05);
        assert_eq!(p1.start_sector, None);
        assert_eq!(d.partitions[1].fs_type.as_deref(), Some("ext2"));
        assert_eq!(d.partitions[2].fs_type, None);
        assert!(d.partitions[2].flags.is_empty());

        let t = real("ansible-parted-msdos-no-partitions.txt").unwrap();
        let d = parse_parted_machine(&t).unwrap();
        assert_eq!(d.label, "msdos");
        assert!(d.partitions.is_empty());
    }

    #[test]
    fn sectors_and_mib_units_and_escaped_paths() {
        let t = "Warning: something\nBYT;\n\
                 /dev/disk/by-path/ip-10.0.0.1\\:3260-lun-0:1048576s:scsi:512:4096:gpt:NETAPP INF-01-00:;\n\
                 1:16384s:1032191s:1015808s:ext4:primary:;\n\
                 2:1032192s:1040383s:8192s:::lvm, boot;\n";
        let d = parse_parted_machine(t).unwrap();
        assert_eq!(d.path, "/dev/disk/by-path/ip-10.0.0.1:3260-lun-0");
        assert_eq!(d.physical_sector, 4096);
        assert_eq!(d.size_sectors, Some(1_048_576));
        let p = &d.partitions[0];
        assert_eq!(
            (p.start_sector, p.end_sector, p.size_sectors),
            (Some(16384), Some(1_032_191), Some(1_015_808))
        );
        assert_eq!(p.fs_type.as_deref(), Some("ext4"));
        assert_eq!(d.partitions[1].flags, ["lvm", "boot"]);

        let t = "BYT;\n/dev/sdx:512MiB:scsi:512:512:gpt:X:;\n1:8.00MiB:504MiB:496MiB:ext4:p:;\n\
                 1:0.02MiB:1.00MiB:0.98MiB:free;\n";
        let d = parse_parted_machine(t).unwrap();
        assert_eq!(d.size_sectors, Some(1_048_576));
        assert_eq!(d.partitions.len(), 1);
        let p = &d.partitions[0];
        assert_eq!(p.start_sector, Some(16384));
        assert_eq!(p.size_sectors, Some(1_015_808));
        // A rounded end is not a last byte: no exact sector.
        assert_eq!(p.end_sector, None);
    }

    #[test]
    fn alignment_defaults_and_4k_sectors() {
        // No optimal_io_size: 1 MiB.
        let (s, e) = aligned_partition(536_870_912, 512, 0, 0).unwrap();
        assert_eq!(s, 2048);
        assert_eq!((e + 1) % 2048, 0);
        assert!(e <= 1_048_576 - 34);
        // 4 KiB logical sectors: 1 MiB is 256 sectors; the backup GPT takes 5 sectors.
        let (s, e) = aligned_partition(1 << 30, 4096, 0, 0).unwrap();
        assert_eq!((s, e), (256, 261_887));
        let (s, _) = aligned_partition(1 << 30, 4096, 8 << 20, 0).unwrap();
        assert_eq!(s, 2048);
        // An optimal size that is not a whole number of sectors is ignored.
        let (s, _) = aligned_partition(1 << 30, 4096, 6144, 0).unwrap();
        assert_eq!(s, 256);
        // A small stripe (64 KiB) still starts at 1 MiB; a 768 KiB stripe at 1.5 MiB.
        assert_eq!(aligned_partition(1 << 30, 512, 65536, 0).unwrap().0, 2048);
        assert_eq!(aligned_partition(1 << 30, 512, 786_432, 0).unwrap().0, 3072);
        // alignment_offset shifts the start.
        assert_eq!(aligned_partition(1 << 30, 512, 0, 3584).unwrap().0, 2055);
        // An end whose last usable sector is exactly on a grain boundary.
        let total = 2048 * 10 + 33;
        let (s, e) = aligned_partition(total * 512, 512, 0, 0).unwrap();
        assert_eq!((s, e), (2048, 2048 * 10 - 1));
    }

    #[test]
    fn alignment_refuses_impossible_geometry() {
        assert_eq!(
            aligned_partition(1 << 30, 520, 0, 0),
            Err(AlignError::BadSectorSize(520))
        );
        assert_eq!(
            aligned_partition(1 << 30, 0, 0, 0),
            Err(AlignError::BadSectorSize(0))
        );
        assert_eq!(
            aligned_partition(1000, 512, 0, 0),
            Err(AlignError::BadDeviceSize(1000))
        );
        assert!(matches!(
            aligned_partition(2 << 20, 512, 0, 0),
            Err(AlignError::TooSmall { .. })
        ));
        assert!(aligned_partition(0, 512, 0, 0).is_err());
        assert!(matches!(
            aligned_partition(u64::MAX - 511, 512, u64::MAX - 511, 0),
            Err(AlignError::TooSmall { .. })
        ));
        assert_eq!(
            aligned_partition(1 << 30, 512, 0, 100),
            Err(AlignError::BadAlignmentOffset(100))
        );
    }

    #[test]
    fn garbage_is_an_error_never_a_panic() {
        for bad in [
            "",
            "BYT;",
            "BYT;\nnope",
            "BYT;\n/dev/x:1s:scsi:abc:512:gpt:m:;",
            "BYT;\n/dev/x:1s:scsi:512:512:gpt:m:;\nx:1s:2s:1s:::;",
            "BYT;\n/dev/x:1s:scsi:512:512:gpt:m:;\n1:zz:2s:1s:::;",
            "BYT;\n/dev/x:1s:scsi:512:512:gpt:m:;\n1:1s",
            "Model: Linux device-mapper (multipath) (dm)\nDisk /dev/mapper/mpatha: 11.0TB\n",
        ] {
            assert!(parse_parted_machine(bad).is_err(), "{bad:?}");
        }
        let _ = parse_parted_machine("BYT;\n\\:\\\\\\:::::::;\n1:1e400B:-1s:NaNs:::;");
        let _ = parse_parted_machine("BYT;\n/dev/x:99999999999999999999999s:s:512:512:g:m:;");
        let _ = Amount::parse("1e999MiB");
    }
}
