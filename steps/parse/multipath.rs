//! `multipath -ll` / `multipath -l` output.
//!
//! Contract:
//! - [`parse_multipath_ll`] returns one [`Map`] per map header, with its path groups and
//!   paths; [`parse_multipath_listing`] also returns the warning lines multipath printed
//!   (`Nov 05 17:17:03 | ...`, `6996.373607 | ...`) and lines it could not place.
//! - Both layouts are read: the current one (`size=... features='...'`,
//!   `` `-+- policy='service-time 0' prio=50 status=active``, `` `- 2:0:0:0 sda 8:0 active
//!   ready running``) and the old bracket one of multipath-tools 0.4.7
//!   (`[size=7.3T][features=0]...`, `\_ round-robin 0 [prio=0][active]`,
//!   `\_ 3:0:1:11 sdaj 66:48 [failed][undef]`). Tree characters are not relied on.
//! - Header: `ALIAS (WWID) dm-N VENDOR,PRODUCT` or `WWID dm-N VENDOR,PRODUCT`. WWIDs may
//!   contain spaces (`1IET     00010001`) or be IQNs; vendor and product lose their padding.
//! - A path whose device is gone prints placeholders (`#:#:#:# -   #:#`): it is kept, with
//!   `hctl`, `dev` and `devnum` `None`, because a missing path is what the operator must see.
//! - `multipath -l` does not run the path checkers: the checker state reads `undef` and
//!   priorities 0. Judge path health from `-ll`.
//! - The parsers are pure and never panic.

use std::sync::OnceLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

/// One multipath map.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Map {
    /// The map name: the alias (`mpatha`) or, without user_friendly_names, the WWID.
    pub name: String,
    /// The WWID (in parentheses after an alias, else the name itself).
    pub wwid: String,
    /// The device-mapper node (`dm-0`); `None` when printed as `undef` (map being created).
    pub dm: Option<String>,
    /// SCSI vendor, padding removed (`NETAPP`, `LIO-ORG`; `##` after the last path left).
    pub vendor: Option<String>,
    /// SCSI product, padding removed (`INF-01-00`).
    pub product: Option<String>,
    /// Size as printed (`512M`, `10T`).
    pub size: Option<String>,
    /// Features (`1 queue_if_no_path`).
    pub features: Option<String>,
    /// Hardware handler (`1 alua`, `1 rdac`, `0`).
    pub hwhandler: Option<String>,
    /// Write protection: `rw` or `ro`.
    pub wp: Option<String>,
    /// Path groups in priority order.
    pub path_groups: Vec<PathGroup>,
}

impl Map {
    /// Every path of every group.
    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.path_groups.iter().flat_map(|g| g.paths.iter())
    }

    /// Paths the kernel uses (dm state `active`) whose checker says `ready` or `ghost`
    /// (an rdac/ALUA standby path, usable on failover).
    pub fn healthy_paths(&self) -> impl Iterator<Item = &Path> {
        self.paths().filter(|p| p.is_healthy())
    }
}

/// A path group (priority group) of a map.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PathGroup {
    /// Path selector (`service-time 0`, `round-robin 0`).
    pub policy: Option<String>,
    /// Group priority (`-1` when unknown to old tools).
    pub prio: Option<i32>,
    /// `active`, `enabled` or `disabled`.
    pub status: Option<String>,
    /// The paths of this group.
    pub paths: Vec<Path>,
}

/// SCSI address `host:channel:target:lun`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Hctl {
    /// SCSI host (one per iSCSI session).
    pub host: u32,
    /// Channel.
    pub channel: u32,
    /// Target.
    pub target: u32,
    /// LUN.
    pub lun: u64,
}

/// One path of a map.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Path {
    /// SCSI address; `None` for a placeholder line (`#:#:#:#`).
    pub hctl: Option<Hctl>,
    /// Device name (`sdc`); `None` for a placeholder (`-`).
    pub dev: Option<String>,
    /// `major:minor`; `None` for a placeholder (`#:#`).
    pub devnum: Option<String>,
    /// Device-mapper state: `active` or `failed`.
    pub dm_state: Option<String>,
    /// Path checker state: `ready`, `ghost`, `faulty`, `shaky`, `undef`, ...
    pub path_state: Option<String>,
    /// SCSI device state: `running`, `offline`, `blocked`, ... (absent in the old layout).
    pub online_state: Option<String>,
}

impl Path {
    /// dm state `active` and checker `ready` or `ghost`.
    pub fn is_healthy(&self) -> bool {
        self.dm_state.as_deref() == Some("active")
            && matches!(self.path_state.as_deref(), Some("ready" | "ghost"))
            && !matches!(self.online_state.as_deref(), Some("offline" | "blocked"))
    }
}

/// Everything `multipath -l`/`-ll` printed.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Listing {
    /// The maps.
    pub maps: Vec<Map>,
    /// Warning lines (`Jun 21 04:39:26 | ...`), timestamp removed.
    pub warnings: Vec<String>,
    /// Lines that fit nowhere (damaged output), as printed.
    pub unparsed: Vec<String>,
}

fn re(cell: &'static OnceLock<Regex>, pat: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pat).expect("static regex"))
}

fn warning_re() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    // `Nov 05 17:17:03 | msg` (syslog time) or `6996.373607 | msg` (0.8+ monotonic time).
    re(
        &R,
        r"^\s*(?:[A-Z][a-z]{2} +\d{1,2} \d\d:\d\d:\d\d|\d+\.\d+) \| (.*)$",
    )
}

fn header_re() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    re(
        &R,
        r"^(?:(?:create|reload|switchpg|rename|resize): )?(.+?) (dm-\d+|undef) (.*)$",
    )
}

fn hctl_re() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    re(&R, r"^(\d+|#):(\d+|#):(\d+|#):(\d+|#)$")
}

/// Parse `multipath -ll` or `multipath -l` output into its maps.
pub fn parse_multipath_ll(text: &str) -> Vec<Map> {
    parse_multipath_listing(text).maps
}

/// Parse `multipath -ll` / `-l` output, keeping warnings and unplaceable lines.
pub fn parse_multipath_listing(text: &str) -> Listing {
    let mut out = Listing::default();
    for raw in text.lines() {
        let line = raw.trim_end();
        if line.trim().is_empty() {
            continue;
        }
        if let Some(c) = warning_re().captures(line) {
            out.warnings.push(c[1].to_string());
            continue;
        }
        let body = strip_tree(line);
        if body.starts_with("size=") || body.starts_with("[size=") {
            match out.maps.last_mut() {
                Some(m) => map_attributes(m, body),
                None => out.unparsed.push(raw.to_string()),
            }
            continue;
        }
        if body.starts_with("policy=") || is_old_group(body) {
            match out.maps.last_mut() {
                Some(m) => m.path_groups.push(group_line(body)),
                None => out.unparsed.push(raw.to_string()),
            }
            continue;
        }
        if let Some(p) = path_line(body) {
            match out.maps.last_mut() {
                Some(m) => {
                    if m.path_groups.is_empty() {
                        m.path_groups.push(PathGroup::default());
                    }
                    m.path_groups
                        .last_mut()
                        .expect("just ensured")
                        .paths
                        .push(p);
                }
                None => out.unparsed.push(raw.to_string()),
            }
            continue;
        }
        // A header starts in column 0 with the map's name, never with a tree character.
        let starts_plain = !line.starts_with([' ', '|', '`', '\\', '-', '+']);
        if starts_plain {
            if let Some(m) = header_line(line) {
                out.maps.push(m);
                continue;
            }
        }
        out.unparsed.push(raw.to_string());
    }
    out
}

/// Remove the leading tree drawing (`|-+- `, `` `- ``, `\_ `, spaces) of a line.
fn strip_tree(line: &str) -> &str {
    line.trim_start_matches([' ', '|', '`', '\\', '-', '+', '_'])
}

/// Old layout group line: `round-robin 0 [prio=0][active]`.
fn is_old_group(body: &str) -> bool {
    body.contains("[prio=") && !body.starts_with('[')
}

fn header_line(line: &str) -> Option<Map> {
    let c = header_re().captures(line)?;
    let ident = c[1].trim();
    let (name, wwid) = match (ident.find(" ("), ident.strip_suffix(')')) {
        (Some(open), Some(inner)) => (
            ident[..open].trim().to_string(),
            inner[open + 2..].to_string(),
        ),
        _ => (ident.to_string(), ident.to_string()),
    };
    if name.is_empty() || wwid.is_empty() {
        return None;
    }
    let vp = c[3].trim_end();
    let (vendor, product) = match vp.split_once(',') {
        Some((v, p)) => (v.trim(), p.trim()),
        None => (vp.trim(), ""),
    };
    let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
    Some(Map {
        name,
        wwid,
        dm: (&c[2] != "undef").then(|| c[2].to_string()),
        vendor: opt(vendor),
        product: opt(product),
        ..Map::default()
    })
}

/// `key=value key='quoted value'` pairs, also in the bracket form `[key=value][flag]`.
fn attributes(body: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if body.starts_with('[') || body.contains("][") {
        for item in body
            .split(['[', ']'])
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            match item.split_once('=') {
                Some((k, v)) => out.push((k.trim().to_string(), v.trim().to_string())),
                None => out.push((String::new(), item.to_string())),
            }
        }
        return out;
    }
    let mut rest = body.trim();
    while !rest.is_empty() {
        let Some(eq) = rest.find('=') else {
            out.push((String::new(), rest.to_string()));
            break;
        };
        let key = rest[..eq].trim().to_string();
        let after = &rest[eq + 1..];
        let (value, next) = if let Some(q) = after.strip_prefix('\'') {
            match q.find('\'') {
                Some(end) => (&q[..end], &q[end + 1..]),
                None => (q, ""),
            }
        } else {
            match after.find(' ') {
                Some(sp) => (&after[..sp], &after[sp..]),
                None => (after, ""),
            }
        };
        out.push((key, value.to_string()));
        rest = next.trim_start();
    }
    out
}

fn map_attributes(m: &mut Map, body: &str) {
    for (k, v) in attributes(body) {
        match k.as_str() {
            "size" => m.size = Some(v),
            "features" => m.features = Some(v),
            "hwhandler" => m.hwhandler = Some(v),
            "wp" => m.wp = Some(v),
            // The bracket layout prints write protection bare: `[rw]`.
            "" if v == "rw" || v == "ro" => m.wp = Some(v),
            _ => {}
        }
    }
}

fn group_line(body: &str) -> PathGroup {
    let mut g = PathGroup::default();
    let attr_part = if body.starts_with("policy=") {
        body
    } else {
        // Old layout: the selector comes bare before the brackets.
        let open = body.find('[').unwrap_or(body.len());
        let policy = body[..open].trim();
        if !policy.is_empty() {
            g.policy = Some(policy.to_string());
        }
        &body[open..]
    };
    for (k, v) in attributes(attr_part) {
        match k.as_str() {
            "policy" => g.policy = Some(v),
            "prio" => g.prio = v.parse().ok(),
            "status" => g.status = Some(v),
            "" if matches!(v.as_str(), "active" | "enabled" | "disabled") => g.status = Some(v),
            _ => {}
        }
    }
    g
}

fn path_line(body: &str) -> Option<Path> {
    let mut tok = body.split_whitespace();
    let hctl_text = tok.next()?;
    let caps = hctl_re().captures(hctl_text)?;
    let num = |i: usize| caps[i].parse::<u64>().ok();
    let hctl = match (num(1), num(2), num(3), num(4)) {
        (Some(h), Some(c), Some(t), Some(l)) => Some(Hctl {
            host: u32::try_from(h).ok()?,
            channel: u32::try_from(c).ok()?,
            target: u32::try_from(t).ok()?,
            lun: l,
        }),
        _ => None,
    };
    let dev = tok.next()?;
    let devnum = tok.next()?;
    let rest: Vec<&str> = tok.collect();
    let joined = rest.join(" ");
    let states: Vec<String> = if joined.contains('[') {
        joined
            .split(['[', ']'])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    } else {
        rest.iter().map(|s| s.to_string()).collect()
    };
    let placeholder = |s: &str| !(s == "-" || s.contains('#'));
    Some(Path {
        hctl,
        dev: placeholder(dev).then(|| dev.to_string()),
        devnum: placeholder(devnum).then(|| devnum.to_string()),
        dm_state: states.first().cloned(),
        path_state: states.get(1).cloned(),
        online_state: states.get(2).cloned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::steps::parse::fixtures::{files_below, lab_fixture, shared_dir};

    const LAB0: &str = "360014050c0ffe0012344abc9def00000";
    const LAB1: &str = "360014050c0ffe1012344abc9def00000";

    fn lab(name: &str) -> Option<String> {
        lab_fixture(name).map(|(_, out, _)| out)
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

    fn devs(m: &Map) -> Vec<&str> {
        m.paths().filter_map(|p| p.dev.as_deref()).collect()
    }

    #[test]
    fn lab_ll_two_maps_four_ready_paths_each() {
        let Some(out) = lab("multipath-ll.txt") else {
            return;
        };
        let maps = parse_multipath_ll(&out);
        assert_eq!(maps.len(), 2);
        let m = &maps[0];
        assert_eq!((m.name.as_str(), m.wwid.as_str()), (LAB0, LAB0));
        assert_eq!(m.dm.as_deref(), Some("dm-0"));
        assert_eq!(m.vendor.as_deref(), Some("LIO-ORG"));
        assert_eq!(m.product.as_deref(), Some("FILEIO"));
        assert_eq!(m.size.as_deref(), Some("512M"));
        assert_eq!(m.features.as_deref(), Some("1 queue_if_no_path"));
        assert_eq!(m.hwhandler.as_deref(), Some("1 alua"));
        assert_eq!(m.wp.as_deref(), Some("rw"));
        assert_eq!(m.path_groups.len(), 1);
        let g = &m.path_groups[0];
        assert_eq!(g.policy.as_deref(), Some("service-time 0"));
        assert_eq!((g.prio, g.status.as_deref()), (Some(50), Some("enabled")));
        assert_eq!(devs(m), ["sda", "sdc", "sde", "sdg"]);
        assert_eq!(m.healthy_paths().count(), 4);
        let p = &g.paths[1];
        assert_eq!(
            p.hctl,
            Some(Hctl {
                host: 3,
                channel: 0,
                target: 0,
                lun: 0
            })
        );
        assert_eq!(p.devnum.as_deref(), Some("8:32"));
        assert_eq!(p.online_state.as_deref(), Some("running"));
        assert_eq!(maps[1].wwid, LAB1);
        assert_eq!(devs(&maps[1]), ["sdb", "sdd", "sdf", "sdh"]);
        assert_eq!(
            maps[1].paths().last().unwrap().devnum.as_deref(),
            Some("8:112")
        );
    }

    #[test]
    fn lab_l_has_undef_checker_states() {
        let Some(out) = lab("multipath-l.txt") else {
            return;
        };
        let maps = parse_multipath_ll(&out);
        assert_eq!(maps.len(), 2);
        assert_eq!(maps[0].path_groups[0].prio, Some(0));
        assert_eq!(maps[0].path_groups[0].status.as_deref(), Some("active"));
        assert!(maps[0]
            .paths()
            .all(|p| p.path_state.as_deref() == Some("undef")));
        assert_eq!(maps[0].healthy_paths().count(), 0);
    }

    #[test]
    fn lab_after_logout_map_without_paths() {
        let Some(out) = lab("multipath-ll-after-logout.txt") else {
            return;
        };
        let maps = parse_multipath_ll(&out);
        assert_eq!(maps.len(), 1);
        assert_eq!(maps[0].wwid, LAB0);
        assert_eq!(maps[0].vendor.as_deref(), Some("##"));
        assert_eq!(maps[0].hwhandler.as_deref(), Some("0"));
        assert_eq!(maps[0].paths().count(), 0);
    }

    #[test]
    fn eseries_alias_two_groups() {
        let Some(t) = real(
            "real/multipath-ll",
            "kbase-netapp-eseries-inf-01-00-alua-mpatha-4paths.txt",
        ) else {
            return;
        };
        let maps = parse_multipath_ll(&t);
        assert_eq!(maps.len(), 1);
        let m = &maps[0];
        assert_eq!(m.name, "mpatha");
        assert_eq!(m.wwid, "36d039ea000b119ac000000d465b8b748");
        assert_eq!(m.dm.as_deref(), Some("dm-1"));
        assert_eq!(
            (m.vendor.as_deref(), m.product.as_deref()),
            (Some("NETAPP"), Some("INF-01-00"))
        );
        assert_eq!(
            m.features.as_deref(),
            Some("3 queue_if_no_path pg_init_retries 50")
        );
        let prios: Vec<_> = m.path_groups.iter().map(|g| g.prio).collect();
        assert_eq!(prios, [Some(50), Some(10)]);
        assert_eq!(devs(m), ["sdf", "sdc", "sde", "sdd"]);
        assert_eq!(m.path_groups[0].paths[0].hctl.unwrap().host, 23);
    }

    #[test]
    fn eseries_iser_maps() {
        let Some(t) = real(
            "real/multipath-ll",
            "scaleoutsean-netapp-ef570-iser-alua-two-maps.txt",
        ) else {
            return;
        };
        let maps = parse_multipath_ll(&t);
        let wwids: Vec<&str> = maps.iter().map(|m| m.wwid.as_str()).collect();
        assert_eq!(
            wwids,
            [
                "3600a098000e3c1b000002be3620b681e",
                "3600a098000e3c1b000002d14634f47c9"
            ]
        );
        assert_eq!(maps[1].dm.as_deref(), Some("dm-0"));
        assert_eq!(devs(&maps[1]), ["sdf", "sdu"]);
        assert_eq!(
            maps[1].paths().nth(1).unwrap().devnum.as_deref(),
            Some("65:64")
        );

        let t = real(
            "real/multipath-ll",
            "scaleoutsean-netapp-ef570-iser-single-pathgroup-2paths.txt",
        )
        .unwrap();
        let m = &parse_multipath_ll(&t)[0];
        assert_eq!(m.dm.as_deref(), Some("dm-12"));
        assert_eq!(m.path_groups.len(), 1);
        assert_eq!(devs(m), ["sdae", "sdal"]);
        assert_eq!(m.path_groups[0].paths[0].hctl.unwrap().lun, 9);
    }

    #[test]
    fn failed_paths_after_link_down_and_transitional() {
        let Some(t) = real(
            "real/multipath-ll",
            "b3stockage-lio-rocky9-failed-faulty-after-link-down.txt",
        ) else {
            return;
        };
        let maps = parse_multipath_ll(&t);
        assert_eq!(maps.len(), 2);
        let a = &maps[0];
        assert_eq!((a.name.as_str(), a.dm.as_deref()), ("mpatha", Some("dm-2")));
        assert_eq!(a.wwid, "3600140557c66dd047214999a651eb037");
        assert_eq!(a.product.as_deref(), Some("data-chunk2"));
        let bad = &a.path_groups[0].paths[0];
        assert_eq!(bad.dev.as_deref(), Some("sdd"));
        assert_eq!(
            (bad.dm_state.as_deref(), bad.path_state.as_deref()),
            (Some("failed"), Some("faulty"))
        );
        assert_eq!(a.healthy_paths().count(), 1);
        assert_eq!(maps[1].path_groups[1].status.as_deref(), Some("active"));

        let t = real(
            "real/multipath-ll",
            "b3stockage-lio-rocky9-failed-ready-transitional.txt",
        )
        .unwrap();
        let maps = parse_multipath_ll(&t);
        let p = &maps[0].path_groups[0].paths[0];
        assert_eq!(
            (p.dm_state.as_deref(), p.path_state.as_deref()),
            (Some("failed"), Some("ready"))
        );
        assert!(!p.is_healthy());
    }

    #[test]
    fn warning_lines_are_kept_apart() {
        let Some(t) = real(
            "real/multipath-ll",
            "b3stockage-lio-rocky9-leading-config-warning-line.txt",
        ) else {
            return;
        };
        let l = parse_multipath_listing(&t);
        assert_eq!(l.maps.len(), 2);
        assert_eq!(
            l.warnings,
            ["/etc/multipath.conf line 26, invalid keyword in the multipath section: path_checker"]
        );
        assert!(l.unparsed.is_empty());

        let t = real(
            "real/multipath-ll",
            "osbrick-pure-flasharray-leading-warning-lines.txt",
        )
        .unwrap();
        let l = parse_multipath_listing(&t);
        assert_eq!(l.warnings.len(), 3);
        assert_eq!(l.maps.len(), 1);
        assert_eq!(l.maps[0].vendor.as_deref(), Some("PURE"));
        assert_eq!(l.maps[0].dm.as_deref(), Some("dm-84"));
        assert_eq!(
            l.maps[0].path_groups[0].policy.as_deref(),
            Some("queue-length 0")
        );

        let t = real(
            "real/multipath-ll",
            "osbrick-ibm-2107900-scsi_id-error-line.txt",
        )
        .unwrap();
        let l = parse_multipath_listing(&t);
        assert_eq!(l.warnings, ["/lib/udev/scsi_id exited with 1"]);
        assert_eq!(l.maps[0].wwid, "36005076303ffc48e0000000000000101");
        assert_eq!(devs(&l.maps[0]), ["sdd", "sdc"]);

        let t = real(
            "real/multipath-l",
            "checkmk-rhel6-no-module-no-conf-warnings-only.txt",
        )
        .unwrap();
        let l = parse_multipath_listing(&t);
        assert!(l.maps.is_empty());
        assert_eq!(l.warnings.len(), 6);
        assert_eq!(l.warnings[0], "DM multipath kernel driver not loaded");
    }

    #[test]
    fn wwids_with_spaces_and_padded_products() {
        let Some(t) = real(
            "real/multipath-ll",
            "util-linux-303-centos6-ppc64-ibm-nvdisk-wwid-with-spaces.txt",
        ) else {
            return;
        };
        let m = &parse_multipath_ll(&t)[0];
        assert_eq!(m.name, "mpatha");
        assert_eq!(
            m.wwid,
            "SIBM     3303      NVDIS73d7b7e3d96684bf579ad8abeb679b53"
        );
        assert_eq!(m.product.as_deref(), Some("3303      NVDISK"));

        let t = real(
            "real/multipath-l",
            "checkmk-rhel6-iet-wwid-with-spaces-4-groups.txt",
        )
        .unwrap();
        let m = &parse_multipath_ll(&t)[0];
        assert_eq!(m.wwid, "1IET     00010001");
        assert_eq!(m.name, m.wwid);
        assert_eq!(m.path_groups.len(), 4);
        assert_eq!(devs(m), ["sdk", "sdj", "sdg", "sdi"]);

        let t = real(
            "real/multipath-ll",
            "sugon-ds600-centos7-padded-vendor-product-3paths.txt",
        )
        .unwrap();
        let maps = parse_multipath_ll(&t);
        assert_eq!(maps.len(), 2);
        assert_eq!(maps[0].wwid, "222ed0001554cc6c9");
        assert_eq!(maps[0].vendor.as_deref(), Some("Sugon"));
        assert_eq!(maps[0].product.as_deref(), Some("DS600 G10"));
        assert_eq!(devs(&maps[1]), ["sdak", "sdar", "sdm"]);

        let t = real(
            "real/multipath-ll",
            "centos7-tgt-iet-padded-vendor-multibus.txt",
        )
        .unwrap();
        let m = &parse_multipath_ll(&t)[0];
        assert_eq!(
            (m.vendor.as_deref(), m.product.as_deref()),
            (Some("IET"), Some("VIRTUAL-DISK"))
        );
    }

    #[test]
    fn other_real_listings() {
        let Some(t) = real(
            "real/multipath-ll",
            "osbrick-3par-vv-user-friendly-undef.txt",
        ) else {
            return;
        };
        let m = &parse_multipath_ll(&t)[0];
        assert_eq!(
            (m.name.as_str(), m.wwid.as_str()),
            ("mpath6", "350002ac20398383d")
        );
        assert_eq!(m.path_groups[0].prio, Some(-1));

        let t = real(
            "real/multipath-ll",
            "osbrick-ibm-2145-svc-two-groups-no-alias.txt",
        )
        .unwrap();
        let m = &parse_multipath_ll(&t)[0];
        assert_eq!(m.wwid, "36005076da00638089c000000000004d5");
        assert_eq!(m.path_groups.len(), 2);
        assert_eq!(devs(m), ["sde", "sdg", "sdf", "sdh"]);

        let t = real(
            "real/multipath-l",
            "checkmk-exadata-iqn-as-wwid-4-groups-unknown-state.txt",
        )
        .unwrap();
        let m = &parse_multipath_ll(&t)[0];
        assert_eq!(
            m.wwid,
            "iqn.2015-05.com.oracle:QD_DG_VOTE101_EXAO2ADM1VM101"
        );
        assert_eq!(m.dm.as_deref(), Some("dm-7"));
        assert_eq!(m.path_groups.len(), 4);
        assert_eq!(m.path_groups[2].paths[0].hctl.unwrap().host, 10);
        assert_eq!(
            m.path_groups[3].paths[0].online_state.as_deref(),
            Some("unknown")
        );

        let t = real(
            "real/multipath-l",
            "checkmk-ibm-1814-fastt-lsi-rdac-360080e5.txt",
        )
        .unwrap();
        let m = &parse_multipath_ll(&t)[0];
        assert_eq!(m.product.as_deref(), Some("1814      FAStT"));
        assert_eq!(m.hwhandler.as_deref(), Some("1 rdac"));
        assert_eq!(m.paths().nth(1).unwrap().hctl.unwrap().lun, 81);

        let t = real(
            "real/multipath-l",
            "scaleoutsean-netapp-ef280-sas-alua-prio0-undef.txt",
        )
        .unwrap();
        let m = &parse_multipath_ll(&t)[0];
        assert_eq!(m.wwid, "3600a098000a1bfa80000044663902199");
        assert_eq!(devs(m), ["sdc", "sda"]);
    }

    #[test]
    fn old_bracket_layout() {
        let Some(t) = real(
            "real/multipath-l",
            "checkmk-rhel5-bracket-format-ddn-failed-paths.txt",
        ) else {
            return;
        };
        let l = parse_multipath_listing(&t);
        assert!(l.unparsed.is_empty(), "{:?}", l.unparsed);
        let m = &l.maps[0];
        assert_eq!(m.wwid, "SDDN_S2A_9900_1308xxxxxxxx");
        assert_eq!(m.product.as_deref(), Some("S2A 9900"));
        assert_eq!(m.size.as_deref(), Some("7.3T"));
        assert_eq!(m.features.as_deref(), Some("0"));
        assert_eq!(m.wp.as_deref(), Some("rw"));
        assert_eq!(m.path_groups.len(), 2);
        let g = &m.path_groups[0];
        assert_eq!(g.policy.as_deref(), Some("round-robin 0"));
        assert_eq!((g.prio, g.status.as_deref()), (Some(0), Some("active")));
        assert_eq!(g.paths.len(), 4);
        let failed = m
            .paths()
            .filter(|p| p.dm_state.as_deref() == Some("failed"))
            .count();
        assert_eq!(failed, 2);
        assert_eq!(g.paths[0].path_state.as_deref(), Some("undef"));
        assert_eq!(g.paths[0].online_state, None);
        assert_eq!(devs(m).last(), Some(&"sdl"));

        let t = real(
            "real/multipath-l",
            "checkmk-rhel5-bracket-format-netapp-alias.txt",
        )
        .unwrap();
        let m = &parse_multipath_ll(&t)[0];
        assert_eq!(m.name, "orabase.lun50");
        assert_eq!(m.wwid, "360a9800043346937686f456f59386741");
        assert_eq!(m.features.as_deref(), Some("1 queue_if_no_path"));
        assert_eq!(devs(m), ["sdy", "sdz"]);
    }

    #[test]
    fn mangled_publications_still_give_values() {
        let Some(t) = real(
            "real/multipath-ll-mangled",
            "openwares-debian-lsi-inf-01-00-rdac-ghost-markdown-escaped.txt",
        ) else {
            return;
        };
        let m = &parse_multipath_ll(&t)[0];
        assert_eq!(m.wwid, "360080e500018a38a0000027c4dc9d637");
        assert_eq!(m.hwhandler.as_deref(), Some("1 rdac"));
        assert_eq!(m.path_groups.len(), 2);
        let ghost = &m.path_groups[1].paths[0];
        assert_eq!(ghost.path_state.as_deref(), Some("ghost"));
        assert!(ghost.is_healthy());

        let t = real(
            "real/multipath-ll-mangled",
            "osbrick-blog-dgc-vraid-faulty-and-orphan-path-line.txt",
        )
        .unwrap();
        let maps = parse_multipath_ll(&t);
        assert_eq!(maps.len(), 2);
        assert_eq!(maps[0].paths().count(), 2);
        assert_eq!(maps[0].healthy_paths().count(), 0);
        let orphan = maps[1].paths().next().unwrap();
        assert_eq!((orphan.hctl, orphan.dev.as_deref()), (None, None));
        assert_eq!(orphan.devnum, None);
        assert_eq!(orphan.path_state.as_deref(), Some("faulty"));
    }

    #[test]
    fn every_real_listing_parses_without_unplaced_lines() {
        for sub in ["real/multipath-ll", "real/multipath-l"] {
            let Some(dir) = shared_dir(sub) else { return };
            for (p, t) in files_below(&dir) {
                let l = parse_multipath_listing(&t);
                assert!(l.unparsed.is_empty(), "{}: {:?}", p.display(), l.unparsed);
                for m in &l.maps {
                    assert!(m.size.is_some(), "{}: {}", p.display(), m.name);
                }
            }
        }
    }

    #[test]
    fn garbage_never_panics() {
        for bad in [
            "",
            "dm-0",
            " dm-0 x",
            "size=",
            "|- 1:2:3:4",
            "`-+- policy='",
            "a (b dm-1 ,",
            "( ) dm-1 x,y",
            "x dm-1 a,b\nsize='\n|-+- policy='x prio=zz\n| `- 99999999999:0:0:0 sda 8:0 [",
            "\u{1F600} dm-3 é,ü\n \\_ é [prio=é][x",
        ] {
            let _ = parse_multipath_listing(bad);
        }
    }
}
