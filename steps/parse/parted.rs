//! Where to put one aligned partition on a device (the filesystem step's `parted mkpart`).
//!
//! Contract:
//! - [`aligned_partition`] computes where one partition covering the device should start
//!   and end (see its documentation for the policy); it is pure and never panics.

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
    use crate::steps::parse::fixtures::lab_fixture;

    fn lab(name: &str) -> Option<String> {
        lab_fixture(name).map(|(_, out, _)| out)
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
}
