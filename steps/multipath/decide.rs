//! The multipath step's decisions: pure (no IO, no context) and table-tested. What
//! `find_multipaths` maps, which map is the volume, whether a map is healthy (one healthy
//! path through each session: the same check for the wait and for verify), and what makes
//! multipathd run.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::settings::Wwid;
use crate::steps::facts::SessionFact;
use crate::steps::parse::multipath::Map;
use crate::steps::{Action, Cmd};

use super::CONF;

/// `find_multipaths` as multipath-tools reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FindMultipaths {
    /// `no`, `off`: every path is mapped.
    Off,
    /// `greedy`: every path is mapped.
    Greedy,
    /// `yes`, `on`: a WWID on two or more paths (or listed in wwids) is mapped.
    On,
    /// `smart`: like `on`; a single path is released after a timeout.
    Smart,
    /// `strict`: only WWIDs listed in `/etc/multipath/wwids`.
    Strict,
}

impl FindMultipaths {
    /// Read a value as multipath.conf accepts it (quoted or not).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.trim().trim_matches('"') {
            "no" | "off" | "0" => Self::Off,
            "greedy" => Self::Greedy,
            "yes" | "on" | "1" => Self::On,
            "smart" => Self::Smart,
            "strict" => Self::Strict,
            _ => return None,
        })
    }

    /// Whether a WWID not in the wwids file, seen on `paths` paths, gets a map.
    pub fn maps_unknown_wwid(self, paths: usize) -> bool {
        match self {
            Self::Off | Self::Greedy => true,
            Self::On | Self::Smart => paths >= 2,
            Self::Strict => false,
        }
    }
}

impl fmt::Display for FindMultipaths {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Off => "no",
            Self::Greedy => "greedy",
            Self::On => "yes",
            Self::Smart => "smart",
            Self::Strict => "strict",
        })
    }
}

/// The `find_multipaths` value of the `defaults` section of `multipath -t` output.
pub fn find_multipaths_in(config: &str) -> Option<FindMultipaths> {
    let mut section = String::new();
    let mut depth = 0usize;
    for line in config.lines() {
        let l = line.trim();
        if l.starts_with('#') {
            continue;
        }
        if depth == 0 {
            if let Some(name) = l.strip_suffix('{') {
                section = name.trim().to_string();
                depth = 1;
            }
            continue;
        }
        if l.ends_with('{') {
            depth += 1;
        } else if l == "}" {
            depth -= 1;
        } else if depth == 1 && section == "defaults" {
            if let Some(v) = l.strip_prefix("find_multipaths") {
                if v.starts_with([' ', '\t']) {
                    return FindMultipaths::parse(v);
                }
            }
        }
    }
    None
}

/// Whether the wwids file lists `wwid` (lines `/WWID/`).
pub fn wwids_lists(wwids: &str, wwid: &str) -> bool {
    wwids
        .lines()
        .map(str::trim)
        .any(|l| l.strip_prefix('/').and_then(|l| l.strip_suffix('/')) == Some(wwid))
}

/// The unmapped LUNs (WWID -> path devices) whose WWID must be listed in the wwids file to
/// get a map under `mode`. Every LUN reached through the sessions gets a map, not only the
/// volume: a LUN left as raw SCSI paths invites I/O without failover (or a mkfs on one
/// path). A LUN with a map already is known to multipath (`multipath -r` adds the missing
/// path), and a listed WWID needs no listing.
pub fn to_list<'g>(
    groups: &'g BTreeMap<String, Vec<String>>,
    maps: &[Map],
    wwids: &str,
    mode: FindMultipaths,
) -> Vec<(&'g String, &'g Vec<String>)> {
    groups
        .iter()
        .filter(|(wwid, disks)| {
            let has_map = maps.iter().any(|m| &m.wwid == *wwid);
            !(has_map || wwids_lists(wwids, wwid) || mode.maps_unknown_wwid(disks.len()))
        })
        .collect()
}

/// Which volume the operator asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wanted {
    /// The one map of the target's LUNs that carries no data.
    Auto,
    /// This WWID (lowercase, as multipath prints it).
    Wwid(String),
}

impl From<&Wwid> for Wanted {
    fn from(w: &Wwid) -> Self {
        match w {
            Wwid::Auto => Wanted::Auto,
            // multipath prints WWIDs in lowercase; the answer may be in either case.
            Wwid::Id(w) => Wanted::Wwid(w.to_ascii_lowercase()),
        }
    }
}

/// A map of the target's LUNs and what it carries (empty: no data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The map.
    pub map: Map,
    /// What was found on it: signatures, devices built on it, mounts.
    pub data: Vec<String>,
}

/// The maps with at least one path among the sessions' disks.
pub fn target_maps<'m>(maps: &'m [Map], sessions: &[SessionFact]) -> Vec<&'m Map> {
    let disks: BTreeSet<&str> = sessions
        .iter()
        .flat_map(|s| s.disks.iter().map(String::as_str))
        .collect();
    maps.iter()
        .filter(|m| {
            m.paths()
                .any(|p| p.dev.as_deref().is_some_and(|d| disks.contains(d)))
        })
        .collect()
}

/// A map in one line: WWID, size, vendor and product.
pub fn describe(m: &Map) -> String {
    format!(
        "{} ({}, {},{})",
        m.wwid,
        m.size.as_deref().unwrap_or("size unknown"),
        m.vendor.as_deref().unwrap_or("?"),
        m.product.as_deref().unwrap_or("?")
    )
}

/// Choose the volume among the target's maps. `earlier` is the WWID an earlier run chose;
/// `others` are maps not of this target (named when a given WWID is one of them).
/// Pure: every rule of the choice is here and table-tested.
pub fn choose<'c>(
    target: &'c [Candidate],
    others: &[Map],
    wanted: &Wanted,
    earlier: Option<&str>,
    iqn: &str,
) -> Result<&'c Candidate, String> {
    let seen = || {
        if target.is_empty() {
            "none".to_string()
        } else {
            target
                .iter()
                .map(|c| describe(&c.map))
                .collect::<Vec<_>>()
                .join("; ")
        }
    };
    match wanted {
        Wanted::Wwid(w) => {
            if let Some(c) = target.iter().find(|c| &c.map.wwid == w) {
                return Ok(c);
            }
            if others.iter().any(|m| &m.wwid == w) {
                return Err(format!(
                    "the multipath map of WWID {w} (volume.wwid) is not a LUN of {iqn}: none of \
                     its paths is a disk of this target's sessions. The maps of {iqn}: {}",
                    seen()
                ));
            }
            Err(format!(
                "no multipath map has WWID {w} (volume.wwid). The maps of {iqn}: {}. Check the \
                 WWID against the array's volume, and that the volume is mapped to this host",
                seen()
            ))
        }
        Wanted::Auto => {
            if let Some(c) = earlier.and_then(|e| target.iter().find(|c| c.map.wwid == e)) {
                return Ok(c);
            }
            if target.is_empty() {
                return Err(format!(
                    "no multipath map of {iqn} appeared. Is a volume mapped to this host on the \
                     array (host mapping with this initiator IQN)? Do the sessions show disks \
                     (`iscsiadm -m session -P 3`)? Is the LUN blacklisted or left out by \
                     find_multipaths (`multipath -t`, `multipath -v3`)?"
                ));
            }
            let free: Vec<&Candidate> = target.iter().filter(|c| c.data.is_empty()).collect();
            match free[..] {
                [one] => Ok(one),
                [] => Err(format!(
                    "volume.wwid is \"auto\", but every map of {iqn} carries data, and the \
                     wizard does not pick a volume that does:\n    - {}\nSet volume.wwid to \
                     the volume to use (the filesystem step still refuses to format one that \
                     carries data unless --force-format is given)",
                    target
                        .iter()
                        .map(|c| format!("{}: {}", describe(&c.map), c.data.join("; ")))
                        .collect::<Vec<_>>()
                        .join("\n    - ")
                )),
                _ => Err(format!(
                    "volume.wwid is \"auto\", but {} maps of {iqn} carry no data:\n    - {}\n\
                     Set volume.wwid to the WWID of the volume to use",
                    free.len(),
                    free.iter()
                        .map(|c| describe(&c.map))
                        .collect::<Vec<_>>()
                        .join("\n    - ")
                )),
            }
        }
    }
}

fn session_label(s: &SessionFact) -> String {
    format!("{} to {}", s.iface, s.portal)
}

fn path_state(p: &crate::steps::parse::multipath::Path) -> String {
    [&p.dm_state, &p.path_state, &p.online_state]
        .iter()
        .filter_map(|s| s.as_deref())
        .collect::<Vec<_>>()
        .join(" ")
}

/// How a map's paths differ from one healthy path through each session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathDiff {
    /// No path of the map goes through this session.
    NoPath {
        /// The session, as "iface to portal".
        session: String,
        /// The session's disks.
        disks: Vec<String>,
        /// The map's WWID.
        wwid: String,
    },
    /// The session gives the map more than one path (a LUN seen twice).
    SeveralPaths {
        /// The session, as "iface to portal".
        session: String,
        /// The map's WWID.
        wwid: String,
        /// The paths through it.
        paths: Vec<String>,
    },
    /// A path has no device any more (its session is gone).
    LostDevice {
        /// The map's WWID.
        wwid: String,
        /// The path's states.
        state: String,
    },
    /// A path is not active and ready.
    Unhealthy {
        /// The disk.
        dev: String,
        /// The session it goes through, when one does.
        session: Option<String>,
        /// Its states (empty: unknown).
        state: String,
    },
}

impl fmt::Display for PathDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathDiff::NoPath {
                session,
                disks,
                wwid,
            } => write!(
                f,
                "no path through the session {session}: none of its disks ({}) is a path of \
                 {wwid}",
                if disks.is_empty() {
                    "none".to_string()
                } else {
                    disks.join(", ")
                }
            ),
            PathDiff::SeveralPaths {
                session,
                wwid,
                paths,
            } => write!(
                f,
                "the session {session} gives {} paths to {wwid} ({}): one LUN seen twice \
                 through one session",
                paths.len(),
                paths.join(", ")
            ),
            PathDiff::LostDevice { wwid, state } => write!(
                f,
                "a path of {wwid} has lost its device ({state}): its session is gone"
            ),
            PathDiff::Unhealthy {
                dev,
                session,
                state,
            } => write!(
                f,
                "path {dev}{} is {}, not active and ready",
                session
                    .as_ref()
                    .map(|s| format!(" (session {s})"))
                    .unwrap_or_default(),
                if state.is_empty() {
                    "in an unknown state"
                } else {
                    state
                }
            ),
        }
    }
}

/// The map's paths as (device, state), and how they differ from one healthy path through
/// each session. Pure: the one definition of a healthy map, for the wait and for verify.
pub fn path_differences(
    map: &Map,
    sessions: &[SessionFact],
) -> (Vec<(String, String)>, Vec<PathDiff>) {
    let mut diffs = Vec::new();
    let mut record = Vec::new();
    let devs: BTreeSet<&str> = map.paths().filter_map(|p| p.dev.as_deref()).collect();
    for s in sessions {
        let through: Vec<String> = s
            .disks
            .iter()
            .filter(|d| devs.contains(d.as_str()))
            .cloned()
            .collect();
        match through.len() {
            1 => {}
            0 => diffs.push(PathDiff::NoPath {
                session: session_label(s),
                disks: s.disks.clone(),
                wwid: map.wwid.clone(),
            }),
            _ => diffs.push(PathDiff::SeveralPaths {
                session: session_label(s),
                wwid: map.wwid.clone(),
                paths: through,
            }),
        }
    }
    for p in map.paths() {
        let state = path_state(p);
        let Some(dev) = p.dev.clone() else {
            diffs.push(PathDiff::LostDevice {
                wwid: map.wwid.clone(),
                state,
            });
            continue;
        };
        if !p.is_healthy() {
            diffs.push(PathDiff::Unhealthy {
                session: sessions
                    .iter()
                    .find(|s| s.disks.contains(&dev))
                    .map(session_label),
                dev: dev.clone(),
                state: state.clone(),
            });
        }
        record.push((dev, state));
    }
    (record, diffs)
}

/// [`path_differences`] with the differences in the operator's words.
pub fn check_paths(map: &Map, sessions: &[SessionFact]) -> (Vec<(String, String)>, Vec<String>) {
    let (paths, diffs) = path_differences(map, sessions);
    (paths, diffs.iter().map(ToString::to_string).collect())
}

/// Whether the maps are as complete as waiting can make them: for a given WWID its map has a
/// healthy path through every session; for "auto" every disk of `expected` is a healthy path.
pub fn complete(
    maps: &[Map],
    sessions: &[SessionFact],
    wanted: &Wanted,
    expected: &[String],
) -> bool {
    match wanted {
        Wanted::Wwid(w) => maps
            .iter()
            .find(|m| &m.wwid == w)
            .is_some_and(|m| path_differences(m, sessions).1.is_empty()),
        Wanted::Auto => {
            let healthy: BTreeSet<&str> = maps
                .iter()
                .flat_map(|m| m.healthy_paths())
                .filter_map(|p| p.dev.as_deref())
                .collect();
            !expected.is_empty() && expected.iter().all(|d| healthy.contains(d.as_str()))
        }
    }
}

/// multipathd as systemd reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceState {
    /// `systemctl is-enabled` (empty or `not-found`: not installed).
    pub enabled: String,
    /// `systemctl is-active` said `active`.
    pub active: bool,
}

impl ServiceState {
    /// A service that is not installed yet (a dry run before preflight installs it).
    pub fn absent() -> Self {
        ServiceState {
            enabled: String::new(),
            active: false,
        }
    }

    /// Whether systemd knows the unit.
    pub fn installed(&self) -> bool {
        !(self.enabled.is_empty() || self.enabled == "not-found")
    }

    /// The changes that make multipathd run now and at boot; `created_conf`: a running
    /// daemon must read a new multipath.conf. Pure.
    pub fn actions(&self, created_conf: bool) -> Vec<Action> {
        let mut out = Vec::new();
        if self.enabled == "masked" {
            out.push(Action::run(
                Cmd::change(["systemctl", "unmask", "multipathd"]),
                "multipathd was masked",
            ));
        }
        let enabled_ok = matches!(
            self.enabled.as_str(),
            "enabled" | "enabled-runtime" | "static" | "indirect" | "alias" | "generated"
        );
        if !enabled_ok || !self.active {
            out.push(Action::run(
                Cmd::change(["systemctl", "enable", "--now", "multipathd"]),
                "the multipath daemon, now and at boot (it restores failed paths)",
            ));
        } else if created_conf {
            out.push(Action::run(
                Cmd::change(["systemctl", "reload", "multipathd"]),
                format!("the running daemon reads the new {CONF}"),
            ));
        }
        out
    }
}
