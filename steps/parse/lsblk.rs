//! `lsblk -J` output into the tree of [`BlockDev`]s lsblk printed.
//!
//! Contract:
//! - The parsers are pure and never panic; input they cannot read is an [`LsblkError`].
//! - Every column is optional: lsblk prints only the columns it was asked for, and older
//!   releases print numbers and booleans as strings (`"rm": "0"`, `"size": "536870912"`).
//!   Values are kept as printed (`size` `"512M"` without `-b`); [`BlockDev::size_bytes`] is
//!   `Some` only when the size was printed as an exact byte count.
//! - `mountpoint` (util-linux < 2.37) and `mountpoints` (newer, may hold `null`) both land in
//!   [`BlockDev::mountpoints`]; `[SWAP]` is kept there, as lsblk prints it, because an active
//!   swap area makes a device as busy as a mount does.
//! - A device-mapper map built on several paths appears once under EACH path in lsblk's tree,
//!   and is kept so: one copy per path.
//! - Partition nodes are found as children of TYPE `part`, never by guessing a name suffix:
//!   a multipath partition is `<wwid>-part1` on Debian but `<wwid>1` or `<wwid>p1` elsewhere.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Why lsblk output could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LsblkError {
    /// The text is not JSON.
    #[error("lsblk JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The JSON has no `blockdevices` array.
    #[error("lsblk JSON: no \"blockdevices\" array")]
    NoBlockDevices,
    /// A device object has no `name`.
    #[error("lsblk JSON: a device has no \"name\"")]
    NoName,
}

/// One block device as lsblk printed it. Columns lsblk was not asked for are `None`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BlockDev {
    /// NAME: `sda`, `360014050c0ffe0012344abc9def00000`, `mpatha1`, or `/dev/...` with `-p`.
    pub name: String,
    /// KNAME: the kernel name (`dm-0`).
    pub kname: Option<String>,
    /// PATH: the device node (util-linux 2.33 and newer).
    pub path: Option<String>,
    /// MAJ:MIN.
    pub maj_min: Option<String>,
    /// TYPE: `disk`, `part`, `mpath`, `crypt`, `lvm`, `loop`, `rom`, ...
    pub dev_type: Option<String>,
    /// SIZE as printed: `"512M"`, or a byte count with `-b`.
    pub size: Option<String>,
    /// FSTYPE (`ext4`, `mpath_member`, `crypto_LUKS`, ...).
    pub fstype: Option<String>,
    /// LABEL (file system label).
    pub label: Option<String>,
    /// UUID (file system UUID).
    pub uuid: Option<String>,
    /// PARTUUID.
    pub partuuid: Option<String>,
    /// Every mount point (MOUNTPOINT or MOUNTPOINTS), `[SWAP]` included; empty when unmounted.
    pub mountpoints: Vec<String>,
    /// PKNAME: the parent's kernel name in this copy of the tree.
    pub pkname: Option<String>,
    /// WWN.
    pub wwn: Option<String>,
    /// VENDOR, trailing padding removed (`"LIO-ORG "` becomes `"LIO-ORG"`).
    pub vendor: Option<String>,
    /// MODEL, trailing padding removed.
    pub model: Option<String>,
    /// SERIAL.
    pub serial: Option<String>,
    /// TRAN: `iscsi`, `sas`, `nvme`, ...
    pub tran: Option<String>,
    /// HCTL: `host:channel:target:lun`.
    pub hctl: Option<String>,
    /// RM: removable.
    pub rm: Option<bool>,
    /// RO: read-only.
    pub ro: Option<bool>,
    /// Columns not modelled above, by lowercase name with `-` (`log-sec`, `opt-io`, ...).
    pub other: BTreeMap<String, String>,
    /// Devices built on this one, as nested in lsblk's tree.
    pub children: Vec<BlockDev>,
}

impl BlockDev {
    /// The size in bytes when lsblk printed an exact count (`-b`); `None` for `"512M"`.
    pub fn size_bytes(&self) -> Option<u64> {
        self.size.as_deref()?.trim().parse().ok()
    }

    /// Whether TYPE is `t` (`"part"`, `"mpath"`, ...).
    pub fn is_type(&self, t: &str) -> bool {
        self.dev_type.as_deref() == Some(t)
    }
}

/// Parse `lsblk -J` output (any util-linux from 2.27 on) into the tree lsblk printed.
pub fn parse_lsblk_json(text: &str) -> Result<Vec<BlockDev>, LsblkError> {
    let v: serde_json::Value = serde_json::from_str(text)?;
    let arr = v
        .get("blockdevices")
        .and_then(|b| b.as_array())
        .ok_or(LsblkError::NoBlockDevices)?;
    arr.iter().map(json_dev).collect()
}

fn json_dev(v: &serde_json::Value) -> Result<BlockDev, LsblkError> {
    let obj = v.as_object().ok_or(LsblkError::NoName)?;
    let mut d = BlockDev::default();
    let mut have_name = false;
    for (k, val) in obj {
        let key = norm_key(k);
        match key.as_str() {
            "children" => {
                if let Some(kids) = val.as_array() {
                    d.children = kids.iter().map(json_dev).collect::<Result<_, _>>()?;
                }
            }
            "mountpoints" => {
                if let Some(mps) = val.as_array() {
                    for mp in mps.iter().filter_map(json_scalar) {
                        push_mount(&mut d.mountpoints, mp);
                    }
                } else if let Some(mp) = json_scalar(val) {
                    push_mount(&mut d.mountpoints, mp);
                }
            }
            _ => {
                if let Some(s) = json_scalar(val) {
                    if key == "name" {
                        have_name = true;
                    }
                    set_column(&mut d, &key, s);
                }
            }
        }
    }
    if !have_name {
        return Err(LsblkError::NoName);
    }
    Ok(d)
}

/// A JSON scalar as lsblk meant it: strings as is, numbers in decimal, booleans as 1/0.
fn json_scalar(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(if *b { "1" } else { "0" }.to_string()),
        _ => None,
    }
}

fn push_mount(v: &mut Vec<String>, mp: String) {
    if !mp.is_empty() && !v.contains(&mp) {
        v.push(mp);
    }
}

/// Column names as JSON keys differ between releases: `maj:min`/`log-sec`, and
/// `maj_min`/`log_sec` where 2.37 renamed them to be shell-safe.
fn norm_key(k: &str) -> String {
    let k = k.to_ascii_lowercase().replace('_', "-");
    if k == "maj-min" {
        "maj:min".to_string()
    } else {
        k
    }
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.trim() {
        "1" | "true" => Some(true),
        "0" | "false" => Some(false),
        _ => None,
    }
}

fn set_column(d: &mut BlockDev, key: &str, s: String) {
    let opt = |s: String| if s.is_empty() { None } else { Some(s) };
    match key {
        "name" => d.name = s,
        "kname" => d.kname = opt(s),
        "path" => d.path = opt(s),
        "maj:min" => d.maj_min = opt(s.trim().to_string()),
        "type" => d.dev_type = opt(s),
        "size" => d.size = opt(s.trim().to_string()),
        "fstype" => d.fstype = opt(s),
        "label" => d.label = opt(s),
        "uuid" => d.uuid = opt(s),
        "partuuid" => d.partuuid = opt(s),
        "mountpoint" => push_mount(&mut d.mountpoints, s),
        "pkname" => d.pkname = opt(s),
        "wwn" => d.wwn = opt(s),
        "vendor" => d.vendor = opt(s.trim_end().to_string()),
        "model" => d.model = opt(s.trim_end().to_string()),
        "serial" => d.serial = opt(s),
        "tran" => d.tran = opt(s),
        "hctl" => d.hctl = opt(s),
        "rm" => d.rm = parse_bool(&s),
        "ro" => d.ro = parse_bool(&s),
        _ => {
            d.other.insert(key.to_string(), s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::steps::parse::fixtures::{files_below, lab_fixture, shared_dir};

    const WWID0: &str = "360014050c0ffe0012344abc9def00000";

    fn lab(name: &str) -> Option<String> {
        lab_fixture(name).map(|(_, out, _)| out)
    }

    #[test]
    fn lab_json_nests_the_map_under_each_of_its_four_paths() {
        let Some(out) = lab("lsblk-json.txt") else {
            return;
        };
        let roots = parse_lsblk_json(&out).unwrap();
        assert_eq!(roots.len(), 11);
        let sda = &roots[1];
        assert_eq!(sda.name, "sda");
        assert_eq!(sda.vendor.as_deref(), Some("LIO-ORG"));
        assert_eq!(
            sda.wwn.as_deref(),
            Some("0x60014050c0ffe0012344abc9def00000")
        );
        assert_eq!(sda.fstype.as_deref(), Some("mpath_member"));
        assert_eq!(sda.tran.as_deref(), Some("iscsi"));
        assert_eq!(sda.size.as_deref(), Some("512M"));
        assert_eq!(sda.size_bytes(), None);

        let holders = |path: &str| -> Vec<&str> {
            let d = roots.iter().find(|d| d.name == path).unwrap();
            d.children.iter().map(|c| c.name.as_str()).collect()
        };
        for path in ["sda", "sdc", "sde", "sdg"] {
            assert_eq!(holders(path), [WWID0], "{path}");
        }
        let map = &sda.children[0];
        assert_eq!(map.kname.as_deref(), Some("dm-0"));
        assert!(map.is_type("mpath"));
        assert!(map.children.is_empty() && map.mountpoints.is_empty());
        let vda = roots.iter().find(|d| d.name == "vda").unwrap();
        assert_eq!(vda.mountpoints, ["/"]);
    }

    #[test]
    fn trident_json_finds_a_crypt_holder_and_mounts() {
        let Some(dir) = shared_dir("real/lsblk-json") else {
            return;
        };
        let files = files_below(&dir);
        let text = &files
            .iter()
            .find(|(p, _)| p.ends_with("trident-ubuntu-ontap-mpath-luks-crypt.txt"))
            .unwrap()
            .1;
        let roots = parse_lsblk_json(text).unwrap();
        assert_eq!(roots.len(), 5);
        fn find<'a>(devs: &'a [BlockDev], name: &str) -> Option<&'a BlockDev> {
            devs.iter().find_map(|d| {
                if d.name == name {
                    Some(d)
                } else {
                    find(&d.children, name)
                }
            })
        }
        let map = find(&roots, "3600a0980796f6377432b577333523168").unwrap();
        let h: Vec<&BlockDev> = map.children.iter().filter(|c| !c.is_type("part")).collect();
        assert_eq!(h.len(), 1);
        assert!(h[0].is_type("crypt"));
        assert_eq!(h[0].kname.as_deref(), Some("dm-1"));
        let sda = find(&roots, "sda").unwrap();
        let parts: Vec<(&str, &[String])> = sda
            .children
            .iter()
            .filter(|c| c.is_type("part"))
            .map(|c| (c.name.as_str(), c.mountpoints.as_slice()))
            .collect();
        assert_eq!(
            parts,
            [
                ("sda1", &["/boot/efi".to_string()][..]),
                ("sda2", &["/".to_string()][..])
            ]
        );
    }

    #[test]
    fn rhel_style_partition_under_both_copies_of_the_map() {
        let json = r#"{"blockdevices": [
          {"name": "sdb", "kname": "sdb", "type": "disk", "size": 1071644672, "rm": false,
           "mountpoints": [null],
           "children": [{"name": "mpathb", "kname": "dm-3", "type": "mpath",
             "size": 1071644672, "mountpoints": [null],
             "children": [{"name": "mpathb1", "kname": "dm-5", "type": "part",
               "size": 1063256064, "mountpoints": ["/mnt/data_chunk2", "/srv/bind"]}]}]},
          {"name": "sdc", "kname": "sdc", "type": "disk", "size": "1071644672", "rm": "0",
           "mountpoint": null,
           "children": [{"name": "mpathb", "kname": "dm-3", "type": "mpath",
             "size": "1071644672", "mountpoint": null,
             "children": [{"name": "mpathb1", "kname": "dm-5", "type": "part",
               "size": "1063256064", "mountpoint": "/mnt/data_chunk2"}]}]}
        ]}"#;
        let roots = parse_lsblk_json(json).unwrap();
        assert_eq!(roots[0].rm, Some(false));
        assert_eq!(roots[1].rm, Some(false));
        assert_eq!(roots[0].size_bytes(), Some(1071644672));
        for root in &roots {
            let map = &root.children[0];
            assert_eq!(
                (map.name.as_str(), map.kname.as_deref()),
                ("mpathb", Some("dm-3"))
            );
            let part = &map.children[0];
            assert!(part.is_type("part"));
            assert_eq!(part.kname.as_deref(), Some("dm-5"));
            assert_eq!(part.size_bytes(), Some(1063256064));
        }
        // `mountpoints` (with several entries) and the old single `mountpoint` key.
        assert_eq!(
            roots[0].children[0].children[0].mountpoints,
            ["/mnt/data_chunk2", "/srv/bind"]
        );
        assert_eq!(
            roots[1].children[0].children[0].mountpoints,
            ["/mnt/data_chunk2"]
        );
    }

    #[test]
    fn swap_counts_as_in_use() {
        let json = r#"{"blockdevices":[{"name":"sda","type":"disk","children":[
            {"name":"sda2","type":"part","mountpoint":"[SWAP]"}]}]}"#;
        let roots = parse_lsblk_json(json).unwrap();
        assert_eq!(roots[0].children[0].mountpoints, ["[SWAP]"]);
    }

    #[test]
    fn garbage_is_an_error_never_a_panic() {
        for bad in [
            "",
            "{",
            "[]",
            "{\"blockdevices\": 3}",
            "{\"blockdevices\": [{\"kname\": \"x\"}]}",
            "{\"blockdevices\": [17]}",
        ] {
            assert!(parse_lsblk_json(bad).is_err(), "{bad:?}");
        }
    }
}
