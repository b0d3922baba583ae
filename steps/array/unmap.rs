//! `detach --unmap`: after the host side of a detach, remove the detached volumes'
//! mappings on the array, so the LUN is no longer presented to this host.
//!
//! Contract:
//! - *observe*: `GET hosts`, `GET host-groups`, `GET volumes`, `GET volume-mappings` (after
//!   `GET /devmgr/utils/about`), read-only.
//! - *decide* ([`decide_unmap`]) is pure. A volume is found by its WWID (`3` + the array's
//!   WWN), else by the name the array step recorded. Its mapping is removed only when it
//!   targets this host (`host.mapping_host_name`) or this host's group when this host is
//!   the group's only member; a mapping to another host, or to a group that others share
//!   (removing it would take the LUN from them too), is left alone with a note saying why.
//!   A volume the array does not have, or that is not mapped, gets a note and no call.
//! - *apply* ([`unmap`]): one `DELETE volume-mappings/{lunMappingRef}` per mapping; each
//!   removal is then checked against a fresh `GET volume-mappings`. A dry run connects and
//!   reads (GET only) and prints the DELETEs it would send.
//! - The password comes from `array.password_env` only (detach asks nothing), never logged.

use super::client::{ArrayError, ArrayHost, Client, HostGroup, Mapping, Volume};
use crate::settings::ArrayAnswers;

/// A volume the detach took off the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detached {
    /// The host's multipath WWID (`3` + lower-case WWN).
    pub wwid: String,
    /// The array's volume name, when the array step recorded it.
    pub name: Option<String>,
}

/// What the array shows, for the unmap decision.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Seen {
    /// Hosts.
    pub hosts: Vec<ArrayHost>,
    /// Host groups.
    pub groups: Vec<HostGroup>,
    /// Volumes.
    pub volumes: Vec<Volume>,
    /// Mappings.
    pub mappings: Vec<Mapping>,
}

/// One mapping to remove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removal {
    /// The volume's name on the array.
    pub volume: String,
    /// Its LUN.
    pub lun: u32,
    /// The mapping's reference (the DELETE's last path segment).
    pub lun_mapping_ref: String,
    /// What it maps to, as the operator reads it (`host db01`, `host group cl1`).
    pub target: String,
}

impl Removal {
    /// The call, relative to the storage system.
    pub fn path(&self) -> String {
        format!("volume-mappings/{}", self.lun_mapping_ref)
    }
}

/// The unmap plan: the removals and what is left alone, with why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnmapPlan {
    /// Mappings to delete, in the order of the volumes.
    pub removals: Vec<Removal>,
    /// Volumes left as they are, and why.
    pub notes: Vec<String>,
}

/// Why `--unmap` could not be done.
#[derive(Debug, thiserror::Error)]
pub enum UnmapError {
    /// The answers of the last run cannot be used to reach the array.
    #[error("{0}")]
    Config(String),
    /// The array call failed.
    #[error("array: {0}")]
    Array(#[from] ArrayError),
    /// A DELETE was answered but the mapping is still there.
    #[error(
        "the array still shows the mapping of volume {volume} (LUN {lun}) after DELETE {path}"
    )]
    Stayed {
        /// The volume.
        volume: String,
        /// Its LUN.
        lun: u32,
        /// The call.
        path: String,
    },
}

fn target_name(m: &Mapping, s: &Seen) -> String {
    if let Some(h) = s.hosts.iter().find(|h| h.host_ref == m.map_ref) {
        return format!("host {}", h.name);
    }
    if let Some(g) = s.groups.iter().find(|g| g.cluster_ref == m.map_ref) {
        return format!("host group {}", g.name);
    }
    match m.kind.as_str() {
        "all" => "the default group (every host)".into(),
        _ => format!("{} {}", m.kind, m.map_ref),
    }
}

/// Decide which mappings to remove for the detached volumes (pure; see the module's rules).
pub fn decide_unmap(host_name: &str, volumes: &[Detached], s: &Seen) -> UnmapPlan {
    let mut plan = UnmapPlan::default();
    let host = s.hosts.iter().find(|h| h.name == host_name);
    for d in volumes {
        let vol = s
            .volumes
            .iter()
            .find(|v| v.wwid().is_some_and(|w| w.eq_ignore_ascii_case(&d.wwid)))
            .or_else(|| {
                d.name
                    .as_deref()
                    .and_then(|n| s.volumes.iter().find(|v| v.name == n))
            });
        let Some(vol) = vol else {
            plan.notes.push(format!(
                "volume {}: the array has no volume with this WWID; nothing to unmap",
                d.name.as_deref().unwrap_or(&d.wwid)
            ));
            continue;
        };
        let maps: Vec<&Mapping> = s
            .mappings
            .iter()
            .filter(|m| m.volume_ref == vol.volume_ref)
            .collect();
        if maps.is_empty() {
            plan.notes.push(format!(
                "volume {}: not mapped on the array; nothing to unmap",
                vol.name
            ));
        }
        for m in maps {
            let target = target_name(m, s);
            let ours_host = host.is_some_and(|h| h.host_ref == m.map_ref);
            let ours_group =
                host.filter(|h| !is_no_group(&h.cluster_ref) && h.cluster_ref == m.map_ref);
            if ours_host {
                plan.removals.push(Removal {
                    volume: vol.name.clone(),
                    lun: m.lun,
                    lun_mapping_ref: m.lun_mapping_ref.clone(),
                    target,
                });
            } else if let Some(h) = ours_group {
                let others: Vec<&str> = s
                    .hosts
                    .iter()
                    .filter(|o| o.cluster_ref == h.cluster_ref && o.name != h.name)
                    .map(|o| o.name.as_str())
                    .collect();
                if others.is_empty() {
                    plan.removals.push(Removal {
                        volume: vol.name.clone(),
                        lun: m.lun,
                        lun_mapping_ref: m.lun_mapping_ref.clone(),
                        target,
                    });
                } else {
                    plan.notes.push(format!(
                        "volume {}: mapped to {target} at LUN {}, which also holds host{} {}: \
                         removing it would take the volume from them too; left mapped (remove \
                         it on the array when none of them uses it)",
                        vol.name,
                        m.lun,
                        if others.len() == 1 { "" } else { "s" },
                        others.join(", ")
                    ));
                }
            } else {
                plan.notes.push(format!(
                    "volume {}: mapped to {target} at LUN {}, not to host {host_name}; left \
                     alone (it is not this host's mapping)",
                    vol.name, m.lun
                ));
            }
        }
    }
    plan
}

/// A `clusterRef` of all zeros: the host is in no group.
pub fn is_no_group(cluster_ref: &str) -> bool {
    cluster_ref.is_empty() || cluster_ref.bytes().all(|b| b == b'0')
}

/// Read what the unmap decision needs.
pub fn observe_unmap(c: &mut Client) -> Result<Seen, ArrayError> {
    Ok(Seen {
        hosts: c.hosts()?,
        groups: c.host_groups()?,
        volumes: c.volumes()?,
        mappings: c.mappings()?,
    })
}

/// What [`unmap`] did (or, in a dry run, would do): one line per call or note.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnmapReport {
    /// The lines to print.
    pub lines: Vec<String>,
    /// Mappings removed (none in a dry run).
    pub removed: usize,
}

/// Connect with the answers' `array` section, decide, and (unless `dry_run`) delete.
/// `env` looks up the password variable.
pub fn unmap(
    a: &ArrayAnswers,
    host_name: &str,
    volumes: &[Detached],
    dry_run: bool,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<UnmapReport, UnmapError> {
    let var = a.password_env.to_string();
    let password = env(&var).filter(|p| !p.is_empty()).ok_or_else(|| {
        UnmapError::Config(format!(
            "array.password_env: the environment variable {var} is not set: export it with \
             the password of array user {} to unmap",
            a.user
        ))
    })?;
    let cfg = super::config_of(a, password).map_err(UnmapError::Config)?;
    let (mut c, _) = Client::connect(cfg)?;
    let seen = observe_unmap(&mut c)?;
    let plan = decide_unmap(host_name, volumes, &seen);
    let mut report = UnmapReport::default();
    for r in &plan.removals {
        let call = format!("DELETE {}", c.system_url(&r.path()));
        if dry_run {
            report.lines.push(format!(
                "would unmap volume {} (LUN {}) from {}: `{call}`",
                r.volume, r.lun, r.target
            ));
            continue;
        }
        c.delete_mapping(&r.lun_mapping_ref)?;
        report.removed += 1;
        report.lines.push(format!(
            "unmapped volume {} (LUN {}) from {}: `{call}`",
            r.volume, r.lun, r.target
        ));
    }
    if !dry_run && !plan.removals.is_empty() {
        let after = c.mappings()?;
        if let Some(r) = plan
            .removals
            .iter()
            .find(|r| after.iter().any(|m| m.lun_mapping_ref == r.lun_mapping_ref))
        {
            return Err(UnmapError::Stayed {
                volume: r.volume.clone(),
                lun: r.lun,
                path: r.path(),
            });
        }
    }
    report
        .lines
        .extend(plan.notes.iter().map(|n| format!("note: {n}")));
    Ok(report)
}

/// `detach --unmap` as the detach command holds it: the last run's `array` section, the
/// host's name on the array and the volume names the array step recorded, checked before
/// the host is touched so a request that cannot be done changes nothing.
#[derive(Debug, Clone)]
pub struct Request {
    array: ArrayAnswers,
    host_name: String,
    names: Vec<(String, String)>,
}

impl Request {
    /// From the effective answers of the last run (`answers.json`) and the state's facts;
    /// `Err` is a usage error naming the fix (nothing was changed).
    pub fn from_last_run(
        answers: Option<&serde_json::Value>,
        facts: &crate::steps::Facts,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Request, String> {
        let section = answers
            .and_then(|a| a.get("array"))
            .filter(|v| !v.is_null());
        let Some(section) = section else {
            return Err("detach --unmap: the answers of the last run have no `array` section,                         so the wizard cannot reach the array; remove the mapping on the array                         yourself, or detach without --unmap (nothing was changed)"
                .into());
        };
        let array: ArrayAnswers = serde_json::from_value(section.clone()).map_err(|e| {
            format!(
                "detach --unmap: the `array` section of the last run's answers cannot be                  read ({e}); nothing was changed"
            )
        })?;
        let host_name = facts
            .array
            .as_ref()
            .map(|f| f.host_name.clone())
            .filter(|h| !h.is_empty())
            .or_else(|| {
                answers
                    .and_then(|a| a.pointer("/host/mapping_host_name"))
                    .and_then(|v| v.as_str())
                    .map(str::to_string)
            })
            .ok_or_else(|| {
                "detach --unmap: neither the state nor the answers name the host on the array                  (host.mapping_host_name); nothing was changed"
                    .to_string()
            })?;
        let var = array.password_env.to_string();
        if env(&var).is_none_or(|p| p.is_empty()) {
            return Err(format!(
                "detach --unmap: the environment variable {var} (array.password_env) is not                  set: export it with the password of array user {}; nothing was changed",
                array.user
            ));
        }
        let names = facts
            .array
            .iter()
            .flat_map(|f| f.volumes.iter())
            .map(|v| (v.wwid.to_ascii_lowercase(), v.name.clone()))
            .collect();
        Ok(Request {
            array,
            host_name,
            names,
        })
    }

    /// Unmap the detached volumes of these WWIDs (a dry run only reads and says what it
    /// would send).
    pub fn run(
        &self,
        wwids: &[String],
        dry_run: bool,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<UnmapReport, UnmapError> {
        let volumes: Vec<Detached> = wwids
            .iter()
            .map(|w| Detached {
                wwid: w.clone(),
                name: self
                    .names
                    .iter()
                    .find(|(x, _)| x.eq_ignore_ascii_case(w))
                    .map(|(_, n)| n.clone()),
            })
            .collect();
        unmap(&self.array, &self.host_name, &volumes, dry_run, env)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(name: &str, r: &str, cluster: &str) -> ArrayHost {
        ArrayHost {
            host_ref: r.into(),
            cluster_ref: cluster.into(),
            name: name.into(),
            ..ArrayHost::default()
        }
    }

    fn vol(name: &str, r: &str, wwn: &str) -> Volume {
        Volume {
            name: name.into(),
            volume_ref: r.into(),
            wwn: wwn.into(),
            ..Volume::default()
        }
    }

    fn map(r: &str, vol: &str, to: &str, kind: &str, lun: u32) -> Mapping {
        Mapping {
            lun_mapping_ref: r.into(),
            lun,
            volume_ref: vol.into(),
            map_ref: to.into(),
            kind: kind.into(),
        }
    }

    const NONE: &str = "0000000000000000000000000000000000000000";

    fn seen() -> Seen {
        Seen {
            hosts: vec![
                host("db01", "H1", NONE),
                host("db02", "H2", "G1"),
                host("db03", "H3", "G1"),
                host("db04", "H4", "G2"),
            ],
            groups: vec![
                HostGroup {
                    cluster_ref: "G1".into(),
                    name: "shared".into(),
                    label: "shared".into(),
                },
                HostGroup {
                    cluster_ref: "G2".into(),
                    name: "solo".into(),
                    label: "solo".into(),
                },
            ],
            volumes: vec![
                vol("a", "V1", "600A0001"),
                vol("b", "V2", "600A0002"),
                vol("c", "V3", "600A0003"),
                vol("d", "V4", "600A0004"),
            ],
            mappings: vec![
                map("M1", "V1", "H1", "host", 1),
                map("M2", "V2", "H2", "host", 2),
                map("M3", "V3", "G1", "cluster", 3),
                map("M4", "V4", "G2", "cluster", 4),
            ],
        }
    }

    fn d(wwid: &str) -> Detached {
        Detached {
            wwid: wwid.into(),
            name: None,
        }
    }

    #[test]
    fn our_host_s_mapping_is_removed_by_wwid_in_any_case() {
        let p = decide_unmap("db01", &[d("3600A0001")], &seen());
        assert_eq!(p.removals.len(), 1);
        assert_eq!(p.removals[0].path(), "volume-mappings/M1");
        assert_eq!(p.removals[0].target, "host db01");
        assert!(p.notes.is_empty());
    }

    #[test]
    fn another_host_s_mapping_is_left_with_a_note() {
        let p = decide_unmap("db01", &[d("3600a0002")], &seen());
        assert!(p.removals.is_empty());
        assert!(p.notes[0].contains("mapped to host db02 at LUN 2"), "{p:?}");
    }

    #[test]
    fn a_group_mapping_goes_only_when_this_host_is_its_only_member() {
        let p = decide_unmap("db02", &[d("3600a0003")], &seen());
        assert!(p.removals.is_empty());
        assert!(p.notes[0].contains("also holds host db03"), "{p:?}");
        let p = decide_unmap("db04", &[d("3600a0004")], &seen());
        assert_eq!(p.removals[0].target, "host group solo");
    }

    #[test]
    fn unknown_and_unmapped_volumes_are_notes_and_the_name_is_a_fallback() {
        let mut s = seen();
        s.mappings.clear();
        let named = Detached {
            wwid: "3ffff".into(),
            name: Some("a".into()),
        };
        let p = decide_unmap("db01", &[d("3ffff"), named], &s);
        assert!(p.removals.is_empty());
        assert!(p.notes[0].contains("no volume with this WWID"), "{p:?}");
        assert!(p.notes[1].contains("volume a: not mapped"), "{p:?}");
    }

    #[test]
    fn a_host_unknown_to_the_array_removes_nothing() {
        let p = decide_unmap("ghost", &[d("3600a0001")], &seen());
        assert!(p.removals.is_empty());
        assert!(p.notes[0].contains("not to host ghost"), "{p:?}");
    }
}
