//! The operator's answers on the worksheet, as soon as they are given.
//!
//! Contract: [`Worksheet::fill_answers`] writes what the answers say (target IQN, the ports'
//! addresses, the portals by subnet, the mapping host name and OS type, the volume's WWID,
//! filesystem and mount point) into the fields that are still blank. A field a step recorded
//! after verifying it is never replaced: what the host shows wins over what was planned.
//! Answers that say "work it out" (`discover`, `auto`) leave their field blank.

use crate::settings::{Answers, InitiatorIqn, Portal, TargetIqn, Wwid};

use super::{PortRecord, SubnetRecord, VolumeRecord, Worksheet};

/// Set `slot` to `value` when it is blank.
fn fill(slot: &mut Option<String>, value: Option<String>) {
    if slot.is_none() {
        *slot = value;
    }
}

/// A portal as the sheet shows it: the address, with the port only when not 3260.
fn show(p: &Portal) -> String {
    if p.address.port() == 3260 {
        p.address.ip().to_string()
    } else {
        format!("{}:{}", p.address.ip(), p.address.port())
    }
}

/// Whether a portal's label names controller `c` ("Controller A port 1").
fn labelled(p: &Portal, c: char) -> bool {
    p.label.as_ref().is_some_and(|l| {
        l.to_string()
            .to_lowercase()
            .contains(&format!("controller {c}"))
    })
}

/// One subnet row per answered port: its network, the host port, and the portals in it
/// (by label, else controller A first, then B), as the sessions step records them.
fn subnets(a: &Answers) -> Vec<SubnetRecord> {
    let ports = a.known_ports();
    let portals = a.target.portals.clone().unwrap_or_default();
    ports
        .iter()
        .enumerate()
        .map(|(i, (_, addr))| {
            let mine: Vec<&Portal> = portals
                .iter()
                .filter(|p| {
                    let owners: Vec<usize> = (0..ports.len())
                        .filter(|&k| ports[k].1.contains(p.address.ip()))
                        .collect();
                    owners == [i]
                })
                .collect();
            let a_at = mine.iter().position(|p| labelled(p, 'a'));
            let b_at = mine.iter().position(|p| labelled(p, 'b'));
            let mut rest: Vec<usize> = (0..mine.len())
                .filter(|k| Some(*k) != a_at && Some(*k) != b_at)
                .collect();
            let a_at = a_at.or_else(|| (!rest.is_empty()).then(|| rest.remove(0)));
            let b_at = b_at.or_else(|| (!rest.is_empty()).then(|| rest.remove(0)));
            SubnetRecord {
                name: char::from(b'A' + (i as u8).min(25)).to_string(),
                network: Some(addr.network().to_string()),
                netmask: Some(addr.netmask().to_string()),
                controller_a: a_at.map(|k| show(mine[k])),
                controller_b: b_at.map(|k| show(mine[k])),
                host_port: Some(addr.addr().to_string()),
                other_portals: rest
                    .into_iter()
                    .map(|k| match &mine[k].label {
                        Some(l) => format!("{} ({l})", show(mine[k])),
                        None => show(mine[k]),
                    })
                    .collect(),
            }
        })
        .collect()
}

impl Worksheet {
    /// Fill the blank fields from the operator's answers (see the module's contract).
    pub fn fill_answers(&mut self, a: &Answers) {
        if let Some(InitiatorIqn::Name(iqn)) = &a.host.initiator_iqn {
            fill(&mut self.host.initiator_iqn, Some(iqn.to_string()));
        }
        fill(
            &mut self.host.mapping_host_name,
            a.host.mapping_host_name.as_ref().map(ToString::to_string),
        );
        fill(
            &mut self.host.host_os_type,
            a.host.host_os_type.as_ref().map(ToString::to_string),
        );
        if let Some(TargetIqn::Name(iqn)) = &a.target.iqn {
            fill(&mut self.target_iqn, Some(iqn.to_string()));
        }
        for (netdev, addr) in a.known_ports() {
            match self
                .ports
                .iter_mut()
                .find(|p| p.netdev.as_deref() == Some(netdev.as_str()))
            {
                Some(p) => fill(&mut p.address, Some(addr.to_string())),
                None => self.ports.push(PortRecord {
                    netdev: Some(netdev.to_string()),
                    address: Some(addr.to_string()),
                    ..Default::default()
                }),
            }
        }
        if self.subnets.is_empty() {
            self.subnets = subnets(a);
        } else {
            // Rows a step recorded: only their blanks are filled, row by row.
            for (have, from) in self.subnets.iter_mut().zip(subnets(a)) {
                fill(&mut have.network, from.network);
                fill(&mut have.netmask, from.netmask);
                fill(&mut have.host_port, from.host_port);
                fill(&mut have.controller_a, from.controller_a);
                fill(&mut have.controller_b, from.controller_b);
            }
        }
        // Each volume: its record found by WWID, else by mount point, else a new one.
        for v in a.volume_list() {
            let wwid = match &v.wwid {
                Some(Wwid::Id(id)) => Some(id.to_ascii_lowercase()),
                _ => None,
            };
            let name = v.name.as_ref().map(ToString::to_string);
            let filesystem = v.filesystem.as_ref().map(ToString::to_string);
            let mount_point = v.mount_point.as_ref().map(ToString::to_string);
            if wwid.is_none() && filesystem.is_none() && mount_point.is_none() {
                continue;
            }
            let found = self
                .volumes
                .iter()
                .position(|r| wwid.is_some() && r.wwid == wwid)
                .or_else(|| {
                    self.volumes
                        .iter()
                        .position(|r| mount_point.is_some() && r.mount_point == mount_point)
                });
            let k = found.unwrap_or_else(|| {
                self.volumes.push(VolumeRecord::default());
                self.volumes.len() - 1
            });
            let rec = &mut self.volumes[k];
            fill(&mut rec.name, name);
            fill(&mut rec.wwid, wwid);
            fill(&mut rec.filesystem, filesystem);
            fill(&mut rec.mount_point, mount_point);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answers() -> Answers {
        let v: serde_json::Value =
            serde_json::from_str(include_str!("../templates/answers.json")).unwrap();
        crate::answers::typed(&v, &[])
    }

    #[test]
    fn a_blank_sheet_carries_every_answer() {
        let a = answers();
        let mut sheet = Worksheet::default();
        sheet.fill_answers(&a);
        let md = crate::worksheets::markdown::render(&sheet);
        if let Some(TargetIqn::Name(iqn)) = &a.target.iqn {
            assert_eq!(sheet.target_iqn.as_deref(), Some(iqn.as_str()));
            assert!(md.contains(iqn.as_str()), "{md}");
        }
        assert_eq!(
            sheet.host.mapping_host_name,
            a.host.mapping_host_name.as_ref().map(ToString::to_string)
        );
        assert!(sheet.host.mapping_host_name.is_some());
        assert_eq!(sheet.subnets.len(), a.known_ports().len());
        for p in a.target.portals.as_deref().unwrap_or_default() {
            let shown = show(p);
            assert!(
                sheet.subnets.iter().any(|s| {
                    s.controller_a.as_deref() == Some(shown.as_str())
                        || s.controller_b.as_deref() == Some(shown.as_str())
                        || s.other_portals.iter().any(|o| o.starts_with(&shown))
                }),
                "{shown} is on no subnet row: {:?}",
                sheet.subnets
            );
            assert!(md.contains(&shown), "{shown} not in\n{md}");
        }
        let (_, addr) = &a.known_ports()[0];
        assert_eq!(sheet.subnets[0].host_port, Some(addr.addr().to_string()));
        assert_eq!(
            sheet.volumes.first().and_then(|v| v.mount_point.clone()),
            a.volume.mount_point.as_ref().map(ToString::to_string)
        );
    }

    #[test]
    fn what_a_step_recorded_is_kept() {
        let a = answers();
        let mut sheet = Worksheet {
            target_iqn: Some("iqn.2002-09.com.lab:verified".into()),
            ..Default::default()
        };
        sheet.ports.push(PortRecord {
            netdev: a.known_ports().first().map(|(n, _)| n.to_string()),
            address: Some("10.9.9.9/24".into()),
            ..Default::default()
        });
        sheet.fill_answers(&a);
        assert_eq!(
            sheet.target_iqn.as_deref(),
            Some("iqn.2002-09.com.lab:verified")
        );
        assert_eq!(sheet.ports[0].address.as_deref(), Some("10.9.9.9/24"));
        assert_eq!(sheet.ports.len(), a.known_ports().len());
    }

    #[test]
    fn answers_that_say_work_it_out_leave_the_field_blank() {
        let mut a = Answers::default();
        a.target.iqn = Some(TargetIqn::Discover);
        a.volume.wwid = Some(Wwid::Auto);
        let mut sheet = Worksheet::default();
        sheet.fill_answers(&a);
        assert_eq!(sheet, Worksheet::default());
    }
}
