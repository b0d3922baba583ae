//! What the sessions step records, after verify only: the target IQN and the sessions in the
//! facts (the multipath step reads them), and the sessions and subnets on the worksheet.

use super::decide::Checked;
use super::want::{TargetPortal, Want};
use crate::settings::HostAddr;
use crate::steps::parse::iscsiadm::Portal;
use crate::steps::Ctx;
use crate::worksheets::SubnetRecord;

/// Record a verified state.
pub(super) fn record(cx: &mut Ctx<'_>, want: &Want, iqn: &str, checked: Checked) {
    cx.facts.target_iqn = Some(iqn.to_string());
    cx.facts.sessions = checked.facts;
    cx.sheet.target_iqn = Some(iqn.to_string());
    cx.sheet.sessions = checked.records;
    cx.sheet.subnets = subnet_records(want);
}

/// One worksheet row per host port's subnet: its network, the host port, and the
/// controllers' portals on it (by label, else controller A first, then B).
pub(super) fn subnet_records(want: &Want) -> Vec<SubnetRecord> {
    let show = |p: &Portal| {
        if p.port == 3260 {
            p.address.clone()
        } else {
            p.to_string()
        }
    };
    want.ifaces
        .iter()
        .enumerate()
        .map(|(i, iface)| {
            let name = char::from(b'A' + (i as u8).min(25)).to_string();
            let mut rec = SubnetRecord {
                name,
                ..Default::default()
            };
            if let Ok(addr) = iface.address.parse::<HostAddr>() {
                rec.network = Some(addr.network().to_string());
                rec.netmask = Some(addr.netmask().to_string());
                rec.host_port = Some(addr.addr().to_string());
            }
            let mine: Vec<&TargetPortal> = want.portals.iter().filter(|p| p.iface == i).collect();
            let label_is = |p: &TargetPortal, c: &str| {
                p.label
                    .as_deref()
                    .is_some_and(|l| l.to_lowercase().contains(&format!("controller {c}")))
            };
            let a = mine.iter().position(|p| label_is(p, "a"));
            let b = mine.iter().position(|p| label_is(p, "b"));
            let mut rest: Vec<usize> = (0..mine.len())
                .filter(|k| Some(*k) != a && Some(*k) != b)
                .collect();
            // Without labels, the order within the subnet: controller A first, then B.
            let a = a.or_else(|| (!rest.is_empty()).then(|| rest.remove(0)));
            let b = b.or_else(|| (!rest.is_empty()).then(|| rest.remove(0)));
            rec.controller_a = a.map(|k| show(&mine[k].portal));
            rec.controller_b = b.map(|k| show(&mine[k].portal));
            rec.other_portals = rest
                .into_iter()
                .map(|k| match &mine[k].label {
                    Some(l) => format!("{} ({l})", show(&mine[k].portal)),
                    None => show(&mine[k].portal),
                })
                .collect();
            rec
        })
        .collect()
}
