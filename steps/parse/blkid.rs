//! `blkid` output into a [`Signature`]: what a device already carries.
//!
//! Contract:
//! - [`parse_blkid_export`] reads `-o export` and `-o udev` (`KEY=VALUE` lines, `ID_FS_` and
//!   `ID_PART_TABLE_` prefixes) for ONE device.
//! - Empty output is `Ok(None)`: no signature. `blkid -p` prints nothing and exits 2 on a
//!   blank device, so the caller treats exit 2 with empty output as "nothing there", not as
//!   a failure (and any other non-zero exit as a failure).
//! - Escapes are decoded: `\xHH` (udev), backslash-quoted characters (export). A udev `_ENC` value wins over its unencoded twin, which blkid makes "safe" by
//!   replacing whitespace.
//! - The parsers are pure and never panic; text that is not blkid output is a [`BlkidError`].

use std::collections::BTreeMap;

use super::unhex;
use serde::{Deserialize, Serialize};

/// Why blkid output could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlkidError {
    /// A line that is not `KEY=VALUE` / `DEV: KEY="value"`.
    #[error("blkid line {line}: not blkid output: {text:?}")]
    Garbled {
        /// 1-based line number.
        line: usize,
        /// The line.
        text: String,
    },
    /// Output for several devices where one was expected.
    #[error("blkid printed {0} devices where one was expected")]
    SeveralDevices(usize),
}

/// The signatures blkid found on a device. Every field is `None` when blkid did not report it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Signature {
    /// The device, when the output named it (`DEVNAME=` or the `DEV:` prefix).
    pub devname: Option<String>,
    /// TYPE: file system or other content (`ext4`, `xfs`, `LVM2_member`, `mpath_member`).
    pub fs_type: Option<String>,
    /// UUID of the file system.
    pub uuid: Option<String>,
    /// LABEL of the file system.
    pub label: Option<String>,
    /// PTTYPE: partition table type (`gpt`, `dos`).
    pub pttype: Option<String>,
    /// PTUUID: partition table identifier.
    pub ptuuid: Option<String>,
    /// USAGE (low-level probe only): `filesystem`, `raid`, `crypto`, `other`.
    pub usage: Option<String>,
    /// VERSION (low-level probe only) of the file system format.
    pub version: Option<String>,
    /// Every other key, without the `ID_FS_` prefix (`PARTUUID`, `PART_ENTRY_OFFSET`, ...).
    pub other: BTreeMap<String, String>,
}

impl Signature {
    /// Whether the device carries a file system, a partition table or any other content
    /// signature that a destructive step would overwrite.
    pub fn is_occupied(&self) -> bool {
        self.fs_type.is_some() || self.pttype.is_some() || self.usage.is_some()
    }

    fn set(&mut self, key: &str, value: String) {
        let slot = match key {
            "DEVNAME" => &mut self.devname,
            "TYPE" => &mut self.fs_type,
            "UUID" => &mut self.uuid,
            "LABEL" => &mut self.label,
            "PTTYPE" => &mut self.pttype,
            "PTUUID" => &mut self.ptuuid,
            "USAGE" => &mut self.usage,
            "VERSION" => &mut self.version,
            _ => {
                self.other.insert(key.to_string(), value);
                return;
            }
        };
        *slot = Some(value);
    }
}

fn is_key(k: &str) -> bool {
    !k.is_empty()
        && k.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

/// Parse `blkid -o export DEV` or `blkid -p -o udev DEV` output for one device.
pub fn parse_blkid_export(text: &str) -> Result<Option<Signature>, BlkidError> {
    let mut devices: Vec<Vec<(String, String)>> = vec![Vec::new()];
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            // `-o export` separates devices with an empty line.
            if !devices.last().is_some_and(Vec::is_empty) {
                devices.push(Vec::new());
            }
            continue;
        }
        let garbled = || BlkidError::Garbled {
            line: i + 1,
            text: line.to_string(),
        };
        let (k, v) = line.split_once('=').ok_or_else(garbled)?;
        if !is_key(k) {
            return Err(garbled());
        }
        devices
            .last_mut()
            .expect("never empty")
            .push((k.to_string(), v.to_string()));
    }
    devices.retain(|d| !d.is_empty());
    match devices.len() {
        0 => Ok(None),
        1 => Ok(Some(signature_from_pairs(&devices[0]))),
        n => Err(BlkidError::SeveralDevices(n)),
    }
}

fn signature_from_pairs(pairs: &[(String, String)]) -> Signature {
    let mut sig = Signature::default();
    let has = |k: &str| pairs.iter().any(|(key, _)| key == k);
    for (k, v) in pairs {
        let (key, value) = if let Some(base) = k.strip_prefix("ID_FS_") {
            // ID_FS_LABEL is the "safe" form (whitespace made `_`): prefer ID_FS_LABEL_ENC.
            if let Some(plain) = base.strip_suffix("_ENC") {
                (plain.to_string(), unhex(v))
            } else if has(&format!("{k}_ENC")) {
                continue;
            } else {
                (base.to_string(), unhex(v))
            }
        } else if let Some(base) = k.strip_prefix("ID_PART_TABLE_") {
            (format!("PT{base}"), unhex(v))
        } else if let Some(base) = k.strip_prefix("ID_PART_ENTRY_") {
            (format!("PART_ENTRY_{base}"), unhex(v))
        } else {
            (k.clone(), unbackslash(v))
        };
        sig.set(&key, value);
    }
    sig
}

/// Undo blkid's `safe_print`, which puts a backslash before special characters.
fn unbackslash(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c == '\\' {
            if let Some(n) = it.next() {
                out.push(n);
                continue;
            }
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::steps::parse::fixtures::{files_below, lab_fixture, shared_dir};

    const LAB_UUID: &str = "170b7b73-5af6-4160-bff9-8e3913308e30";

    fn lab(name: &str) -> Option<(String, Option<i32>)> {
        lab_fixture(name).map(|(_, out, status)| (out, status))
    }

    fn real(sub: &str, file: &str) -> Option<String> {
        let dir = shared_dir(sub)?;
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
    fn lab_export_of_the_multipath_partition() {
        let Some((out, status)) = lab("blkid-o-export.txt") else {
            return;
        };
        assert_eq!(status, Some(0));
        let sig = parse_blkid_export(&out).unwrap().unwrap();
        assert_eq!(
            sig.devname.as_deref(),
            Some("/dev/mapper/360014050c0ffe0012344abc9def00000-part1")
        );
        assert_eq!(sig.fs_type.as_deref(), Some("ext4"));
        assert_eq!(sig.uuid.as_deref(), Some(LAB_UUID));
        assert_eq!(
            sig.other["PARTUUID"],
            "ae252eb7-6c5a-4565-81ed-248205f21852"
        );
        assert_eq!(sig.other["PARTLABEL"], "primary");
        assert!(sig.is_occupied());
    }

    #[test]
    fn lab_blank_device_prints_nothing_and_exits_2() {
        let Some((out, status)) = lab("blkid-p-empty.txt") else {
            return;
        };
        assert_eq!(status, Some(2));
        assert_eq!(parse_blkid_export(&out).unwrap(), None);
    }

    #[test]
    fn real_udev_probes() {
        let Some(t) = real("real/blkid-p-udev", "util-linux-low-probe-ext4.txt") else {
            return;
        };
        let sig = parse_blkid_export(&t).unwrap().unwrap();
        assert_eq!(sig.fs_type.as_deref(), Some("ext4"));
        assert_eq!(sig.label.as_deref(), Some("test-ext4"));
        assert_eq!(
            sig.uuid.as_deref(),
            Some("ada110f6-bd6d-49db-955d-342c27627b61")
        );
        assert_eq!(sig.other["FSSIZE"], "67108864");

        let t = real("real/blkid-p-udev", "util-linux-low-probe-lvm2.txt").unwrap();
        let sig = parse_blkid_export(&t).unwrap().unwrap();
        assert_eq!(sig.fs_type.as_deref(), Some("LVM2_member"));
        assert_eq!(sig.usage.as_deref(), Some("raid"));
        assert_eq!(sig.version.as_deref(), Some("LVM2 001"));
        assert_eq!(
            sig.uuid.as_deref(),
            Some("Vynv4k-APH8-xQER-HSBb-8VJ3-SvFF-PB5O1U")
        );

        let t = real("real/blkid-p-udev", "util-linux-low-probe-xfs.txt").unwrap();
        let sig = parse_blkid_export(&t).unwrap().unwrap();
        assert_eq!(sig.fs_type.as_deref(), Some("xfs"));
        assert_eq!(sig.label.as_deref(), Some("test-xfs"));
        assert_eq!(sig.version, None);
    }

    #[test]
    fn encoded_label_wins_and_pt_keys_map() {
        let t = "ID_FS_LABEL=my_disk\nID_FS_LABEL_ENC=my\\x20disk\nID_PART_TABLE_TYPE=gpt\n\
                 ID_PART_TABLE_UUID=0a1b\n";
        let sig = parse_blkid_export(t).unwrap().unwrap();
        assert_eq!(sig.label.as_deref(), Some("my disk"));
        assert_eq!(sig.pttype.as_deref(), Some("gpt"));
        assert_eq!(sig.ptuuid.as_deref(), Some("0a1b"));
    }

    #[test]
    fn several_devices_where_one_was_expected() {
        let t = "DEVNAME=/dev/sda\nTYPE=ext4\n\nDEVNAME=/dev/sdb\nTYPE=xfs\n";
        assert_eq!(parse_blkid_export(t), Err(BlkidError::SeveralDevices(2)));
    }

    #[test]
    fn garbage_is_an_error_never_a_panic() {
        for bad in ["hello", "lower=case", "=x", "/dev/sda UUID=\"x\""] {
            assert!(parse_blkid_export(bad).is_err(), "{bad:?}");
        }
        let _ = parse_blkid_export("ID_FS_X=\\x\nID_FS_Y=\\xé\n");
    }
}
