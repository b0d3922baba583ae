//! The array step's pure part: what the array has ([`Observed`], one probe) against what
//! the run wants ([`Wanted`]) gives the changes ([`Decision`]) or a refusal.
//!
//! Rules (DOMAIN.md "SANtricity REST API"):
//! - the host is found by name; it is created (name, host type, the initiator IQN as an
//!   `iscsi` port) when absent;
//! - the initiator IQN on any other host is refused: the array would give this host that
//!   host's LUNs (NetApp's module refuses it too unless forced);
//! - a host of that name without this initiator is refused (it is another machine's);
//! - each named volume is mapped to the host when unmapped, left alone when mapped to it,
//!   and refused when mapped to another host or a host group: it is someone else's LUN;
//! - with `array.host_group`: the group is created when absent, the host created in it or
//!   moved into it when it is in no group (a host in another group is refused: moving it
//!   would change which volumes that group's hosts see), and the volumes are mapped to the
//!   group (`mapRef` = its `clusterRef`, `type` `cluster`); a volume already mapped to the
//!   group, or straight to the host, is in place;
//! - nothing is changed when everything is in place, so a second run sends no POST.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::client::{
    ArrayHost, HardwareInventory, HostGroup, HostType, HostTypeRef, IserPort, Mapping, NewHost,
    NewMapping, NewPort, StorageSystem, TargetSettings, Volume,
};
use super::unmap::is_no_group;
use crate::steps::facts::{ArrayFact, ArrayPortFact, ArrayVolumeFact};

/// Everything the step read from the array in one probe.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observed {
    /// The storage system.
    pub system: StorageSystem,
    /// iSCSI target settings.
    pub target: TargetSettings,
    /// IB iSER ports.
    pub ports: Vec<IserPort>,
    /// Link states.
    pub inventory: HardwareInventory,
    /// Host types.
    pub host_types: Vec<HostType>,
    /// Hosts.
    pub hosts: Vec<ArrayHost>,
    /// Volumes.
    pub volumes: Vec<Volume>,
    /// Mappings.
    pub mappings: Vec<Mapping>,
    /// Host groups (read only when the run wants one; empty otherwise).
    pub groups: Vec<HostGroup>,
}

/// What the run wants on the array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    /// The host's name on the array (`host.mapping_host_name`).
    pub host_name: String,
    /// Host type index (`array.host_type_index`, default 28).
    pub host_type_index: u32,
    /// The initiator IQN in effect.
    pub initiator_iqn: String,
    /// The array's names of the volumes to map.
    pub volumes: Vec<String>,
    /// The host group to put the host in and map the volumes to (`array.host_group`).
    pub host_group: Option<String>,
}

/// A change on the array.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// `POST host-groups` (with no hosts: the host joins when it is made or moved).
    CreateGroup {
        /// The group's name.
        name: String,
    },
    /// `POST hosts` (the group's reference is filled in when the group is made).
    CreateHost(NewHost),
    /// `POST hosts/{ref}` with `groupId`: put an existing host, in no group, in the group.
    JoinGroup {
        /// The host's reference.
        host_ref: String,
        /// The group's name.
        group: String,
    },
    /// `POST volume-mappings` (the host's or group's reference is filled in when it is
    /// made).
    Map {
        /// The volume's name.
        volume: String,
        /// Its reference.
        volume_ref: String,
        /// The host group it is mapped to (`None`: the host).
        group: Option<String>,
    },
}

impl Change {
    /// The plan's task id.
    pub fn id(&self) -> String {
        match self {
            Change::CreateGroup { .. } => "create-host-group".into(),
            Change::CreateHost(_) => "create-host".into(),
            Change::JoinGroup { .. } => "join-host-group".into(),
            Change::Map { volume, .. } => format!("map:{volume}"),
        }
    }

    /// What the operator is shown.
    pub fn describe(&self, host: &str) -> String {
        match self {
            Change::CreateGroup { name } => {
                format!("create host group {name} on the array (POST host-groups)")
            }
            Change::CreateHost(h) => format!(
                "create host {} on the array (POST hosts): host type {}, iSCSI port {}{}",
                h.name,
                h.host_type.index,
                h.ports.first().map(|p| p.port.as_str()).unwrap_or(""),
                if h.group_id.is_some() {
                    ", in the host group"
                } else {
                    ""
                }
            ),
            Change::JoinGroup { group, .. } => format!(
                "put host {host} in host group {group} on the array (POST hosts/REF groupId)"
            ),
            Change::Map {
                volume,
                group: None,
                ..
            } => format!(
                "map volume {volume} to host {host} on the array (POST volume-mappings; the \
                 array picks the LUN)"
            ),
            Change::Map {
                volume,
                group: Some(g),
                ..
            } => format!(
                "map volume {volume} to host group {g} on the array (POST volume-mappings; \
                 the array picks the LUN)"
            ),
        }
    }
}

/// The result of comparing.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Decision {
    /// The host's reference when it exists.
    pub host_ref: Option<String>,
    /// The host group's reference when one is wanted and exists.
    pub group_ref: Option<String>,
    /// Changes, in order (the host first).
    pub changes: Vec<Change>,
    /// Findings worth a note.
    pub notes: Vec<String>,
}

/// Why the step must stop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// Refused for safety: nothing was changed (exit 3).
    Refused {
        /// Why.
        reason: String,
        /// What the array showed.
        evidence: Vec<String>,
    },
    /// The answers do not fit the array (an unknown volume or host type).
    Failed(String),
}

fn target_name(o: &Observed, map_ref: &str) -> String {
    o.hosts
        .iter()
        .find(|h| h.host_ref == map_ref)
        .map(|h| format!("host {}", h.name))
        .or_else(|| {
            o.groups
                .iter()
                .find(|g| g.cluster_ref == map_ref)
                .map(|g| format!("host group {}", g.name))
        })
        .or_else(|| {
            o.hosts
                .iter()
                .any(|h| h.cluster_ref == map_ref)
                .then(|| format!("host group {map_ref}"))
        })
        .unwrap_or_else(|| format!("{map_ref} (a host group or the default group)"))
}

/// Compare; the changes to make, or why not.
pub fn decide(w: &Wanted, o: &Observed) -> Result<Decision, Stop> {
    let mut d = Decision::default();
    if !o.host_types.iter().any(|t| t.index == w.host_type_index) {
        let known: Vec<String> = o
            .host_types
            .iter()
            .map(|t| format!("{} ({})", t.index, t.name))
            .collect();
        return Err(Stop::Failed(format!(
            "array.host_type_index: the array has no host type {}; it has: {}",
            w.host_type_index,
            known.join(", ")
        )));
    }
    let iqn = w.initiator_iqn.to_ascii_lowercase();
    let ours = o
        .hosts
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(&w.host_name));
    let others: Vec<&ArrayHost> = o
        .hosts
        .iter()
        .filter(|h| !h.name.eq_ignore_ascii_case(&w.host_name) && h.iqns().contains(&iqn))
        .collect();
    if !others.is_empty() {
        return Err(Stop::Refused {
            reason: format!(
                "the initiator IQN {} already belongs to another host on the array; mapping \
                 through it would give this host that host's volumes. Remove the port from \
                 that host on the array, or use that host's name as host.mapping_host_name",
                w.initiator_iqn
            ),
            evidence: others
                .iter()
                .map(|h| {
                    format!(
                        "host {} ({}): ports {}",
                        h.name,
                        h.host_ref,
                        h.iqns().join(", ")
                    )
                })
                .collect(),
        });
    }
    let group = w.host_group.as_deref().map(|name| {
        (
            name,
            o.groups
                .iter()
                .find(|g| g.name.eq_ignore_ascii_case(name) || g.label == name),
        )
    });
    match group {
        Some((name, None)) => d.changes.push(Change::CreateGroup { name: name.into() }),
        Some((_, Some(g))) => d.group_ref = Some(g.cluster_ref.clone()),
        None => {}
    }
    match ours {
        Some(h) => {
            if !h.iqns().contains(&iqn) {
                return Err(Stop::Refused {
                    reason: format!(
                        "a host named {} exists on the array without this initiator ({}): it is \
                         another machine's; choose another host.mapping_host_name, or add the \
                         port to it on the array if it is this machine",
                        h.name, w.initiator_iqn
                    ),
                    evidence: vec![format!(
                        "host {} ({}): ports {}",
                        h.name,
                        h.host_ref,
                        if h.iqns().is_empty() {
                            "none".to_string()
                        } else {
                            h.iqns().join(", ")
                        }
                    )],
                });
            }
            if h.host_type_index != w.host_type_index {
                d.notes.push(format!(
                    "host {} has host type {} on the array, not {}: left as it is",
                    h.name, h.host_type_index, w.host_type_index
                ));
            }
            d.host_ref = Some(h.host_ref.clone());
            if let Some((name, _)) = group {
                let in_ours = d.group_ref.as_deref() == Some(h.cluster_ref.as_str());
                if is_no_group(&h.cluster_ref) {
                    d.changes.push(Change::JoinGroup {
                        host_ref: h.host_ref.clone(),
                        group: name.into(),
                    });
                } else if !in_ours {
                    return Err(Stop::Refused {
                        reason: format!(
                            "host {} is in another host group on the array; moving it into \
                             {name} would change which volumes it and that group's hosts see. \
                             Use that group as array.host_group, or move the host on the array",
                            h.name
                        ),
                        evidence: vec![format!(
                            "host {} ({}) is in {}",
                            h.name,
                            h.host_ref,
                            target_name(o, &h.cluster_ref)
                        )],
                    });
                }
            }
        }
        None => d.changes.push(Change::CreateHost(NewHost {
            name: w.host_name.clone(),
            host_type: HostTypeRef {
                index: w.host_type_index,
            },
            ports: vec![NewPort {
                kind: "iscsi".into(),
                label: port_label(&w.host_name),
                port: w.initiator_iqn.clone(),
            }],
            group_id: d.group_ref.clone(),
        })),
    }
    let mut refusals = Vec::new();
    for name in &w.volumes {
        let Some(v) = o.volumes.iter().find(|v| &v.name == name) else {
            let names: Vec<&str> = o.volumes.iter().map(|v| v.name.as_str()).collect();
            return Err(Stop::Failed(format!(
                "the array has no volume named {name:?}; its volumes: {}",
                names.join(", ")
            )));
        };
        let maps: Vec<&Mapping> = o
            .mappings
            .iter()
            .filter(|m| m.volume_ref == v.volume_ref)
            .collect();
        let mine = |r: &str| {
            d.host_ref.as_deref() == Some(r)
                || (group.is_some() && d.group_ref.as_deref() == Some(r))
        };
        let elsewhere: Vec<&&Mapping> = maps.iter().filter(|m| !mine(&m.map_ref)).collect();
        if !elsewhere.is_empty() {
            for m in elsewhere {
                refusals.push(format!(
                    "volume {name} ({}) is mapped to {} at LUN {}",
                    v.wwn,
                    target_name(o, &m.map_ref),
                    m.lun
                ));
            }
            continue;
        }
        if maps.is_empty() {
            d.changes.push(Change::Map {
                volume: name.clone(),
                volume_ref: v.volume_ref.clone(),
                group: w.host_group.clone(),
            });
        }
    }
    if !refusals.is_empty() {
        return Err(Stop::Refused {
            reason: "a volume is mapped to another host or host group; the wizard does not \
                     move someone else's LUN. Unmap it on the array first if it is free"
                .into(),
            evidence: refusals,
        });
    }
    Ok(d)
}

/// The label of the host's port: `<name>_1`, within the 30 characters older firmware takes.
pub fn port_label(host: &str) -> String {
    let base: String = host.chars().take(28).collect();
    format!("{base}_1")
}

/// The mapping body for a volume once the host's reference is known.
pub fn mapping_body(volume_ref: &str, host_ref: &str) -> NewMapping {
    NewMapping {
        mappable_object_id: volume_ref.to_string(),
        target_id: host_ref.to_string(),
        lun: None,
    }
}

/// The record of a verified array: the ports marked used when up and in one of
/// `host_nets`, each wanted volume with its WWN and LUN.
pub fn record(
    w: &Wanted,
    o: &Observed,
    controllers: &[String],
    host_nets: &[Ipv4Net],
) -> Result<ArrayFact, String> {
    let host = o
        .hosts
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(&w.host_name))
        .ok_or_else(|| format!("host {} is not on the array", w.host_name))?;
    let mut volumes = Vec::new();
    for name in &w.volumes {
        let v = o
            .volumes
            .iter()
            .find(|v| &v.name == name)
            .ok_or_else(|| format!("volume {name} is not on the array"))?;
        let m = o
            .mappings
            .iter()
            .find(|m| {
                m.volume_ref == v.volume_ref
                    && (m.map_ref == host.host_ref
                        || (!is_no_group(&host.cluster_ref) && m.map_ref == host.cluster_ref))
            })
            .ok_or_else(|| {
                format!(
                    "volume {name} is not mapped to host {} or its host group",
                    host.name
                )
            })?;
        volumes.push(ArrayVolumeFact {
            name: name.clone(),
            wwn: if v.wwn.is_empty() {
                v.world_wide_name.clone()
            } else {
                v.wwn.clone()
            },
            wwid: v
                .wwid()
                .ok_or_else(|| format!("volume {name} has no WWN in the array's answer"))?,
            lun: m.lun,
            lun_mapping_ref: m.lun_mapping_ref.clone(),
        });
    }
    let ports = o
        .ports
        .iter()
        .map(|p| {
            let link = o
                .inventory
                .ib_ports
                .iter()
                .find(|l| l.channel_port_ref == p.channel_port_ref)
                .map(|l| l.link_state.clone())
                .unwrap_or_default();
            let used = link == "active" && in_subnets(p.address, host_nets);
            ArrayPortFact {
                controller: p.controller_label(),
                channel: p.channel,
                address: p.address.to_string(),
                link,
                used,
            }
        })
        .collect();
    let target_iqn = o
        .target
        .node_name
        .iscsi_node_name
        .clone()
        .filter(|s| !s.is_empty())
        .ok_or("the array's iSCSI target settings carry no target IQN")?;
    Ok(ArrayFact {
        name: o.system.name.clone(),
        firmware: o.system.fw_version.clone(),
        controllers: controllers.to_vec(),
        target_iqn,
        ports,
        host_name: host.name.clone(),
        host_type_index: host.host_type_index,
        host_type: o
            .host_types
            .iter()
            .find(|t| t.index == host.host_type_index)
            .map(|t| t.code.clone())
            .unwrap_or_default(),
        // By its reference among the groups read, else the wanted group it was put in.
        host_group: if is_no_group(&host.cluster_ref) {
            String::new()
        } else {
            o.groups
                .iter()
                .find(|g| g.cluster_ref == host.cluster_ref)
                .map(|g| g.name.clone())
                .or_else(|| w.host_group.clone())
                .unwrap_or_default()
        },
        volumes,
    })
}

fn in_subnets(a: Ipv4Addr, nets: &[Ipv4Net]) -> bool {
    nets.iter().any(|n| n.contains(&a))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::steps::array::client::iser_ports;

    fn fixture<T: serde::de::DeserializeOwned>(name: &str) -> T {
        let path = format!(
            "{}/tests/fixtures/santricity/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
    }

    fn observed() -> Observed {
        let ifaces: Vec<serde_json::Value> = fixture("interfaces-old.json");
        Observed {
            system: fixture("storage-system.json"),
            target: fixture("target-settings.json"),
            ports: iser_ports(&ifaces),
            inventory: fixture("hardware-inventory.json"),
            host_types: fixture("host-types.json"),
            hosts: fixture("hosts.json"),
            volumes: fixture("volumes.json"),
            mappings: fixture("volume-mappings.json"),
            groups: fixture("host-groups.json"),
        }
    }

    const IQN: &str = "iqn.1994-05.com.redhat:db01";

    fn wanted(volumes: &[&str]) -> Wanted {
        Wanted {
            host_name: "db01".into(),
            host_type_index: 28,
            initiator_iqn: IQN.into(),
            volumes: volumes.iter().map(|s| s.to_string()).collect(),
            host_group: None,
        }
    }

    #[test]
    fn a_wanted_host_group_is_created_the_host_made_in_it_and_volumes_mapped_to_it() {
        let mut w = wanted(&["Matthew"]);
        w.host_group = Some("dbs".into());
        let d = decide(&w, &observed()).unwrap();
        let ids: Vec<String> = d.changes.iter().map(Change::id).collect();
        assert_eq!(ids, ["create-host-group", "create-host", "map:Matthew"]);
        assert!(d.changes[2].describe("db01").contains("to host group dbs"));
        // An existing group: the host is made in it.
        w.host_group = Some("group3".into());
        let d = decide(&w, &observed()).unwrap();
        let Change::CreateHost(h) = &d.changes[0] else {
            panic!("{d:?}")
        };
        assert_eq!(
            h.group_id.as_deref(),
            Some("85000000600A098000A4B9D100360F775C3DFC1E")
        );
    }

    #[test]
    fn a_host_in_no_group_joins_and_one_in_another_group_is_refused() {
        let mut o = observed();
        let mut w = wanted(&["Matthew"]);
        w.host_name = "beegfs_metadata1".into();
        w.initiator_iqn = o.hosts[1].iqns()[0].clone();
        // beegfs_metadata2 shares the IQN in the fixture; take it out of the picture.
        o.hosts.truncate(2);
        w.host_group = Some("group1".into());
        let d = decide(&w, &o).unwrap();
        assert!(
            matches!(&d.changes[0], Change::JoinGroup { group, .. } if group == "group1"),
            "{d:?}"
        );
        o.hosts[1].cluster_ref = "85000000600A098000A4B9D100360F765C3DFC1C".into();
        let Err(Stop::Refused { evidence, .. }) = decide(&w, &o) else {
            panic!()
        };
        assert!(evidence[0].contains("host group group2"), "{evidence:?}");
        // In the wanted group, with the volume mapped to the group: nothing to do.
        o.hosts[1].cluster_ref = "85000000600A098000A4B28D0036102C5C3DFC08".into();
        o.mappings[0].volume_ref = o.volumes[0].volume_ref.clone();
        o.mappings[0].map_ref = "85000000600A098000A4B28D0036102C5C3DFC08".into();
        o.mappings[0].kind = "cluster".into();
        let d = decide(&w, &o).unwrap();
        assert!(d.changes.is_empty(), "{d:?}");
        let f = record(&w, &o, &[], &[]).unwrap();
        assert_eq!(f.volumes[0].lun, 5);
    }

    #[test]
    fn both_firmware_shapes_give_the_same_four_iser_ports() {
        let old: Vec<serde_json::Value> = fixture("interfaces-old.json");
        let new: Vec<serde_json::Value> = fixture("interfaces-new.json");
        let (a, b) = (iser_ports(&old), iser_ports(&new));
        assert_eq!(a.len(), 4, "the FC port is left out: {a:?}");
        assert_eq!(a, b);
        assert_eq!(a[0].address.to_string(), "10.10.10.110");
        assert_eq!(a[0].controller_label(), "A");
        assert_eq!(a[1].controller_label(), "B");
    }

    #[test]
    fn a_new_host_and_an_unmapped_volume_plan_both_changes() {
        let d = decide(&wanted(&["Matthew"]), &observed()).unwrap();
        assert_eq!(d.host_ref, None);
        let ids: Vec<String> = d.changes.iter().map(Change::id).collect();
        assert_eq!(ids, ["create-host", "map:Matthew"]);
        let Change::CreateHost(h) = &d.changes[0] else {
            panic!()
        };
        assert_eq!(
            serde_json::to_value(h).unwrap(),
            serde_json::json!({"name": "db01", "hostType": {"index": 28},
                "ports": [{"type": "iscsi", "label": "db01_1", "port": IQN}]})
        );
    }

    #[test]
    fn everything_in_place_plans_nothing() {
        let mut w = wanted(&["Samantha"]);
        w.host_name = "beegfs_storage1".into();
        w.initiator_iqn = "iqn.1993-08.org.debian.beegfs-storage1:01:b0621126818".into();
        let d = decide(&w, &observed()).unwrap();
        assert!(d.changes.is_empty(), "{d:?}");
        assert_eq!(
            d.host_ref.as_deref(),
            Some("84000000600A098000A4B28D00303D065D430118")
        );
    }

    #[test]
    fn an_iqn_on_another_host_is_refused_with_that_host() {
        let mut w = wanted(&["Matthew"]);
        w.initiator_iqn = "iqn.1993-08.org.debian.beegfs-metadata:01:69e4efdf30b8".into();
        let Err(Stop::Refused { reason, evidence }) = decide(&w, &observed()) else {
            panic!()
        };
        assert!(
            reason.contains("already belongs to another host"),
            "{reason}"
        );
        assert!(
            evidence[0].starts_with("host beegfs_metadata1"),
            "{evidence:?}"
        );
    }

    #[test]
    fn a_volume_mapped_elsewhere_is_refused_with_the_mapping() {
        let Err(Stop::Refused { evidence, .. }) = decide(&wanted(&["Samantha"]), &observed())
        else {
            panic!()
        };
        assert_eq!(
            evidence,
            [
                "volume Samantha (600A098000A4B28D00000FBE5C2F7F26) is mapped to host \
              beegfs_storage1 at LUN 5"
            ]
        );
    }

    #[test]
    fn a_host_of_that_name_without_this_initiator_is_refused() {
        let mut w = wanted(&["Matthew"]);
        w.host_name = "beegfs_storage1".into();
        assert!(matches!(decide(&w, &observed()), Err(Stop::Refused { .. })));
    }

    #[test]
    fn unknown_volumes_and_host_types_name_what_the_array_has() {
        let Err(Stop::Failed(m)) = decide(&wanted(&["nope"]), &observed()) else {
            panic!()
        };
        assert!(m.contains("Matthew, Samantha, Micah"), "{m}");
        let mut w = wanted(&["Matthew"]);
        w.host_type_index = 99;
        let Err(Stop::Failed(m)) = decide(&w, &observed()) else {
            panic!()
        };
        assert!(m.contains("28 (LnxDHALUA)"), "{m}");
    }

    #[test]
    fn the_record_uses_ports_that_are_up_and_in_a_host_subnet() {
        let mut o = observed();
        let host = o.hosts[0].clone();
        o.mappings[0].volume_ref = o.volumes[0].volume_ref.clone();
        let mut w = wanted(&["Matthew"]);
        w.host_name = host.name.clone();
        let nets: Vec<Ipv4Net> = vec!["10.10.10.5/24".parse().unwrap()];
        let f = record(&w, &o, &["https://a:8443".into()], &nets).unwrap();
        assert_eq!(
            f.target_iqn,
            "iqn.1992-08.com.netapp:2806.600a098000a4b28d000000005da9d744"
        );
        assert_eq!(f.host_type, "LnxDHALUA");
        assert_eq!(f.volumes[0].wwid, "3600a098000a4b9d100000f095c2f7f31");
        assert_eq!(f.volumes[0].lun, 5);
        let used: Vec<&str> = f.portals().iter().map(|p| p.address.as_str()).collect();
        // 10.10.10.112 is down (channelPortRef 2); 10.10.11.x is not on a host subnet.
        assert_eq!(used, ["10.10.10.110"]);
    }
}
