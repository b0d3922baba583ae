//! `lsblk` output: JSON (`-J`), key/value pairs (`-P`) and raw (`-r`) into [`BlockDev`]s, and
//! a [`BlockGraph`] that answers "what is on this device" questions.
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
//! - A device-mapper map built on several paths appears once under EACH path in lsblk's tree.
//!   [`BlockGraph`] merges those copies into one node (keyed by KNAME, else MAJ:MIN, else
//!   NAME) with one parent per path.
//! - Partition nodes are found as children of TYPE `part`, never by guessing a name suffix:
//!   a multipath partition is `<wwid>-part1` on Debian but `<wwid>1` or `<wwid>p1` elsewhere.

use std::collections::BTreeMap;

use super::unhex;
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
    /// A `-P` or `-r` line that does not fit the format.
    #[error("lsblk line {line}: {reason}")]
    Line {
        /// 1-based line number.
        line: usize,
        /// What was wrong with it.
        reason: String,
    },
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
    /// Devices built on this one, as nested in lsblk's tree (empty in `-P`/`-r` output).
    pub children: Vec<BlockDev>,
}

impl BlockDev {
    /// The size in bytes when lsblk printed an exact count (`-b`); `None` for `"512M"`.
    pub fn size_bytes(&self) -> Option<u64> {
        self.size.as_deref()?.trim().parse().ok()
    }

    /// The size in bytes, also from lsblk's human form (`"49.1M"`), which is rounded.
    pub fn approx_size_bytes(&self) -> Option<u64> {
        let s = self.size.as_deref()?.trim();
        if let Ok(n) = s.parse::<u64>() {
            return Some(n);
        }
        let (num, suffix) = s.split_at(s.find(|c: char| c.is_ascii_alphabetic())?);
        let shift = match suffix {
            "B" => 0,
            "K" => 10,
            "M" => 20,
            "G" => 30,
            "T" => 40,
            "P" => 50,
            "E" => 60,
            _ => return None,
        };
        let v: f64 = num.parse().ok()?;
        if !v.is_finite() || v < 0.0 {
            return None;
        }
        Some((v * (1u64 << shift) as f64).round() as u64)
    }

    /// Whether TYPE is `t` (`"part"`, `"mpath"`, ...).
    pub fn is_type(&self, t: &str) -> bool {
        self.dev_type.as_deref() == Some(t)
    }

    /// Whether `q` names this device: NAME, KNAME, PATH, or `/dev/NAME`, `/dev/KNAME`,
    /// `/dev/mapper/NAME`.
    pub fn answers_to(&self, q: &str) -> bool {
        let q = q.trim();
        if q.is_empty() {
            return false;
        }
        let names = [
            Some(self.name.as_str()),
            self.kname.as_deref(),
            self.path.as_deref(),
        ];
        names.into_iter().flatten().any(|n| {
            n == q
                || q.strip_prefix("/dev/") == Some(n)
                || q.strip_prefix("/dev/mapper/") == Some(n)
        })
    }

    /// The key under which copies of the same device are merged.
    fn identity(&self) -> String {
        self.kname
            .clone()
            .or_else(|| self.maj_min.clone())
            .unwrap_or_else(|| self.name.clone())
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

/// Column names differ between formats: JSON `maj:min`/`log-sec`, pairs `MAJ:MIN` or
/// `MAJ_MIN`/`LOG_SEC` (2.37 renamed them to be shell-safe).
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

/// Parse `lsblk -P` output (`NAME="sda" TYPE="disk" RM="0"`, one device a line, flat).
///
/// Values are decoded from lsblk's `\xHH` escapes. Use [`BlockGraph::new`] to relate the
/// devices through their PKNAME column when it was asked for.
pub fn parse_lsblk_pairs(text: &str) -> Result<Vec<BlockDev>, LsblkError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let err = |reason: &str| LsblkError::Line {
            line: i + 1,
            reason: reason.to_string(),
        };
        let mut d = BlockDev::default();
        let mut have_name = false;
        let mut rest = line.trim_start();
        while !rest.is_empty() {
            let eq = rest
                .find("=\"")
                .ok_or_else(|| err("expected KEY=\"value\""))?;
            let key = &rest[..eq];
            if key.is_empty() || key.contains(char::is_whitespace) {
                return Err(err("expected KEY=\"value\""));
            }
            let after = &rest[eq + 2..];
            let close = after.find('"').ok_or_else(|| err("unterminated value"))?;
            let key = norm_key(key);
            if key == "name" {
                have_name = true;
            }
            set_column(&mut d, &key, unhex(&after[..close]));
            rest = after[close + 1..].trim_start();
        }
        if !have_name {
            return Err(err("no NAME column"));
        }
        out.push(d);
    }
    Ok(out)
}

/// Parse `lsblk -r` (raw) output printed with `-o` `columns` (in that order), with or without
/// the header line (`-n`).
///
/// Raw output separates columns with ONE space and prints an empty column as nothing, so an
/// empty column shows as two spaces; spaces inside values are escaped as `\x20`. A line with
/// a different number of fields is an error rather than a guess (some published copies have
/// the double spaces collapsed, which makes the columns ambiguous).
pub fn parse_lsblk_raw(text: &str, columns: &[&str]) -> Result<Vec<BlockDev>, LsblkError> {
    let cols: Vec<String> = columns.iter().map(|c| norm_key(c)).collect();
    if !cols.iter().any(|c| c == "name") {
        return Err(LsblkError::Line {
            line: 0,
            reason: "the column list has no NAME".to_string(),
        });
    }
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(' ').collect();
        let is_header = i == 0
            && fields.len() == cols.len()
            && fields.iter().zip(&cols).all(|(f, c)| norm_key(f) == *c);
        if is_header {
            continue;
        }
        if fields.len() != cols.len() {
            return Err(LsblkError::Line {
                line: i + 1,
                reason: format!("{} fields for {} columns", fields.len(), cols.len()),
            });
        }
        let mut d = BlockDev::default();
        for (c, f) in cols.iter().zip(fields) {
            set_column(&mut d, c, unhex(f));
        }
        if d.name.is_empty() {
            return Err(LsblkError::Line {
                line: i + 1,
                reason: "empty NAME".to_string(),
            });
        }
        out.push(d);
    }
    Ok(out)
}

/// The devices of an lsblk listing with parent links, each device once.
///
/// Built from a tree ([`parse_lsblk_json`]) or a flat list with a PKNAME column
/// ([`parse_lsblk_pairs`], [`parse_lsblk_raw`]). A multipath map that lsblk shows under each
/// of its paths is one node here with every path as a parent.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BlockGraph {
    /// Each device once, without its `children` (see [`BlockGraph::children_of`]). Its
    /// `pkname` is the one of the first copy lsblk printed; use [`BlockGraph::parents_of`].
    pub devices: Vec<BlockDev>,
    /// `parents[i]`: indexes into `devices` of the devices `devices[i]` is built on.
    pub parents: Vec<Vec<usize>>,
    /// `children[i]`: indexes of the devices built on `devices[i]`.
    pub children: Vec<Vec<usize>>,
}

impl BlockGraph {
    /// Flatten `roots` (a tree or a flat list) into a graph.
    pub fn new(roots: &[BlockDev]) -> Self {
        let mut g = BlockGraph::default();
        let mut by_key: BTreeMap<String, usize> = BTreeMap::new();
        for r in roots {
            g.add(r, None, &mut by_key);
        }
        // Flat listings carry the tree in PKNAME only.
        for i in 0..g.devices.len() {
            let Some(pk) = g.devices[i].pkname.clone() else {
                continue;
            };
            if let Some(p) = g.devices.iter().position(|d| d.answers_to(&pk)) {
                g.link(p, i);
            }
        }
        g
    }

    fn add(&mut self, d: &BlockDev, parent: Option<usize>, by_key: &mut BTreeMap<String, usize>) {
        let key = d.identity();
        let idx = match by_key.get(&key) {
            Some(&i) => {
                // A second copy may know columns the first did not.
                for m in &d.mountpoints {
                    push_mount(&mut self.devices[i].mountpoints, m.clone());
                }
                i
            }
            None => {
                let mut flat = d.clone();
                flat.children.clear();
                self.devices.push(flat);
                self.parents.push(Vec::new());
                self.children.push(Vec::new());
                by_key.insert(key, self.devices.len() - 1);
                self.devices.len() - 1
            }
        };
        if let Some(p) = parent {
            self.link(p, idx);
        }
        for c in &d.children {
            self.add(c, Some(idx), by_key);
        }
    }

    fn link(&mut self, parent: usize, child: usize) {
        if parent == child {
            return;
        }
        if !self.children[parent].contains(&child) {
            self.children[parent].push(child);
        }
        if !self.parents[child].contains(&parent) {
            self.parents[child].push(parent);
        }
    }

    fn index(&self, q: &str) -> Option<usize> {
        self.devices.iter().position(|d| d.answers_to(q))
    }

    /// The device named by NAME, KNAME, PATH, `/dev/NAME` or `/dev/mapper/NAME`.
    pub fn find(&self, name_or_path: &str) -> Option<&BlockDev> {
        self.index(name_or_path).map(|i| &self.devices[i])
    }

    /// The devices built directly on `dev` (partitions, maps, crypt devices, ...).
    pub fn children_of(&self, dev: &str) -> Vec<&BlockDev> {
        self.index(dev)
            .map(|i| self.children[i].iter().map(|&c| &self.devices[c]).collect())
            .unwrap_or_default()
    }

    /// The partitions of `dev`: its children of TYPE `part`. This is how the partition node
    /// of a multipath map is found, whatever its name (`-part1`, `1`, `p1`).
    pub fn partitions_of(&self, dev: &str) -> Vec<&BlockDev> {
        let mut v: Vec<&BlockDev> = self
            .children_of(dev)
            .into_iter()
            .filter(|d| d.is_type("part"))
            .collect();
        v.sort_by_key(|d| natural_key(&d.name));
        v
    }

    /// The holders of `dev` as in `/sys/block/DEV/holders`: children that are not its own
    /// partitions (a multipath map on a path, a crypt or LVM device on a map).
    pub fn holders(&self, dev: &str) -> Vec<&BlockDev> {
        self.children_of(dev)
            .into_iter()
            .filter(|d| !d.is_type("part"))
            .collect()
    }

    /// The devices `dev` is built on (the paths of a multipath map, the disk of a partition).
    pub fn parents_of(&self, dev: &str) -> Vec<&BlockDev> {
        self.index(dev)
            .map(|i| self.parents[i].iter().map(|&p| &self.devices[p]).collect())
            .unwrap_or_default()
    }

    /// `dev` and everything built on it, each once, `dev` first.
    pub fn descendants(&self, dev: &str) -> Vec<&BlockDev> {
        let Some(start) = self.index(dev) else {
            return Vec::new();
        };
        let mut seen = vec![start];
        let mut i = 0;
        while i < seen.len() {
            for &c in &self.children[seen[i]] {
                if !seen.contains(&c) {
                    seen.push(c);
                }
            }
            i += 1;
        }
        seen.into_iter().map(|j| &self.devices[j]).collect()
    }

    /// Every (device name, mount point) on `dev` or anything built on it, `[SWAP]` included.
    /// Empty means nothing below `dev` is mounted or used as swap.
    pub fn mounts_below(&self, dev: &str) -> Vec<(String, String)> {
        self.descendants(dev)
            .into_iter()
            .flat_map(|d| d.mountpoints.iter().map(|m| (d.name.clone(), m.clone())))
            .collect()
    }
}

/// Sort `mpatha2` before `mpatha10`.
fn natural_key(s: &str) -> (String, u64) {
    let digits = s.len() - s.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    let (head, tail) = s.split_at(s.len() - digits);
    (head.to_string(), tail.parse().unwrap_or(0))
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
    fn lab_json_merges_the_map_under_its_four_paths() {
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
        assert_eq!(sda.approx_size_bytes(), Some(512 << 20));

        let g = BlockGraph::new(&roots);
        let map = g.find(&format!("/dev/mapper/{WWID0}")).unwrap();
        assert_eq!(map.kname.as_deref(), Some("dm-0"));
        assert!(map.is_type("mpath"));
        assert_eq!(g.find("/dev/dm-0"), Some(map));
        let paths: Vec<&str> = g
            .parents_of("dm-0")
            .iter()
            .map(|d| d.name.as_str())
            .collect();
        assert_eq!(paths, ["sda", "sdc", "sde", "sdg"]);
        let paths1: Vec<&str> = g
            .parents_of("dm-1")
            .iter()
            .map(|d| d.name.as_str())
            .collect();
        assert_eq!(paths1, ["sdb", "sdd", "sdf", "sdh"]);
        assert_eq!(g.holders("sdc").len(), 1);
        assert_eq!(g.holders("sdc")[0].name, WWID0);
        assert!(g.partitions_of(WWID0).is_empty());
        assert!(g.mounts_below("sda").is_empty());
        assert_eq!(
            g.mounts_below("vda"),
            [("vda".to_string(), "/".to_string())]
        );
        // Each device once: 11 roots + 2 maps.
        assert_eq!(g.devices.len(), 13);
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
        let g = BlockGraph::new(&roots);
        let h = g.holders("3600a0980796f6377432b577333523168");
        assert_eq!(h.len(), 1);
        assert!(h[0].is_type("crypt"));
        assert_eq!(h[0].kname.as_deref(), Some("dm-1"));
        let parts: Vec<&str> = g
            .partitions_of("sda")
            .iter()
            .map(|d| d.name.as_str())
            .collect();
        assert_eq!(parts, ["sda1", "sda2"]);
        let mut m = g.mounts_below("/dev/sda");
        m.sort();
        assert_eq!(
            m,
            [
                ("sda1".to_string(), "/boot/efi".to_string()),
                ("sda2".to_string(), "/".to_string())
            ]
        );
        assert_eq!(g.find("loop1").unwrap().approx_size_bytes(), Some(51485082));
    }

    #[test]
    fn debian_partition_node_is_found_by_type_not_by_suffix() {
        // The lab's `lsblk -nrpo NAME,TYPE,PKNAME`: PKNAME is the kernel node /dev/dm-0,
        // the map's NAME is its /dev/mapper path; the part is linked through PATH aliases.
        let Some(out) = lab("lsblk-part.txt") else {
            return;
        };
        let devs = parse_lsblk_raw(&out, &["NAME", "TYPE", "PKNAME"]).unwrap();
        assert_eq!(devs.len(), 2);
        assert_eq!(devs[1].pkname.as_deref(), Some("/dev/dm-0"));
        assert!(devs[0].pkname.is_none());

        // With KNAME listed too, the graph links them.
        let text = format!(
            "/dev/mapper/{WWID0} /dev/dm-0 mpath \n/dev/mapper/{WWID0}-part1 /dev/dm-2 part /dev/dm-0\n"
        );
        let devs = parse_lsblk_raw(&text, &["NAME", "KNAME", "TYPE", "PKNAME"]).unwrap();
        let g = BlockGraph::new(&devs);
        let parts = g.partitions_of(&format!("/dev/mapper/{WWID0}"));
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].name, format!("/dev/mapper/{WWID0}-part1"));
    }

    #[test]
    fn rhel_style_partition_names_are_found_the_same_way() {
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
        let g = BlockGraph::new(&roots);
        assert_eq!(g.devices.len(), 4);
        let parts = g.partitions_of("/dev/mapper/mpathb");
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].kname.as_deref(), Some("dm-5"));
        assert_eq!(parts[0].size_bytes(), Some(1063256064));
        assert_eq!(
            g.mounts_below("sdc"),
            [
                ("mpathb1".to_string(), "/mnt/data_chunk2".to_string()),
                ("mpathb1".to_string(), "/srv/bind".to_string())
            ]
        );
        assert_eq!(g.parents_of("dm-3").len(), 2);
    }

    #[test]
    fn swap_counts_as_in_use() {
        let json = r#"{"blockdevices":[{"name":"sda","type":"disk","children":[
            {"name":"sda2","type":"part","mountpoint":"[SWAP]"}]}]}"#;
        let g = BlockGraph::new(&parse_lsblk_json(json).unwrap());
        assert_eq!(g.mounts_below("sda"), [("sda2".into(), "[SWAP]".into())]);
    }

    #[test]
    fn pairs_from_centos6() {
        let Some(dir) = shared_dir("real/lsblk-pairs") else {
            return;
        };
        let files = files_below(&dir);
        let devs = parse_lsblk_pairs(&files[0].1).unwrap();
        let names: Vec<&str> = devs.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["sda", "sda1", "sda2", "sda3"]);
        assert!(devs[0].is_type("disk"));
        assert!(devs[3].is_type("part"));
        assert!(devs.iter().all(|d| d.rm == Some(false)));
    }

    #[test]
    fn pairs_decode_escapes_and_new_key_names() {
        let text = "NAME=\"sdb\" MAJ_MIN=\"8:16\" LABEL=\"my\\x20data\" PKNAME=\"\"\n";
        let devs = parse_lsblk_pairs(text).unwrap();
        assert_eq!(devs[0].maj_min.as_deref(), Some("8:16"));
        assert_eq!(devs[0].label.as_deref(), Some("my data"));
        assert_eq!(devs[0].pkname, None);
    }

    const RAW_COLS: [&str; 7] = ["NAME", "KNAME", "PKNAME", "HCTL", "TYPE", "TRAN", "SIZE"];

    #[test]
    fn raw_ubuntu_keeps_empty_columns() {
        let Some(dir) = shared_dir("real/lsblk-raw") else {
            return;
        };
        let files = files_below(&dir);
        let (_, text) = files
            .iter()
            .find(|(p, _)| p.to_string_lossy().contains("ubuntu2004"))
            .unwrap();
        let devs = parse_lsblk_raw(text, &RAW_COLS).unwrap();
        assert_eq!(devs.len(), 3);
        assert_eq!(devs[0].hctl.as_deref(), Some("38:0:0:1"));
        assert_eq!(devs[0].pkname, None);
        let map = &devs[2];
        assert_eq!(map.name, "3600c0ff00001277388d2976101000000");
        assert_eq!(map.kname.as_deref(), Some("dm-3"));
        assert_eq!(map.pkname.as_deref(), Some("sdd"));
        assert_eq!(map.hctl, None);
        assert_eq!(map.tran, None);
        assert!(map.is_type("mpath"));
        let g = BlockGraph::new(&devs);
        assert_eq!(g.holders("sdd")[0].kname.as_deref(), Some("dm-3"));
    }

    #[test]
    fn raw_with_collapsed_spaces_is_refused_not_guessed() {
        let Some(dir) = shared_dir("real/lsblk-raw") else {
            return;
        };
        let files = files_below(&dir);
        let (_, text) = files
            .iter()
            .find(|(p, _)| p.to_string_lossy().contains("collapsed-spaces"))
            .unwrap();
        match parse_lsblk_raw(text, &RAW_COLS) {
            Err(LsblkError::Line { line: 1, reason }) => assert!(reason.contains("6 fields")),
            other => panic!("expected a line error, got {other:?}"),
        }
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
        for bad in ["NAME=\"x", "garbage", "=\"\"", "TYPE=\"disk\""] {
            assert!(parse_lsblk_pairs(bad).is_err(), "{bad:?}");
        }
        assert!(parse_lsblk_raw("a b c", &["TYPE"]).is_err());
        let _ = parse_lsblk_raw("\\x4\\x\\", &["NAME"]);
        let _ = parse_lsblk_pairs("NAME=\"\\x\" X=\"\\xZZ\\x4");
        let g = BlockGraph::new(&[]);
        assert!(g.find("").is_none());
        assert!(g.mounts_below("sda").is_empty());
    }
}
