//! Reachability: every target portal pinged from the port whose subnet holds it, all at once,
//! each within a bound (through [`poll_until`], so an interruption ends the wait). Which port
//! pings which portal is decided from the answers alone ([`probes`], pure), so a dry run shows
//! the same checks a real run makes.
//!
//! A portal that a logged-in iSCSI session already reaches from the port's iface (read from
//! sysfs, no process) needs no ping: the session's own NOP-Outs prove that path every few
//! seconds, more than one ping does ([`reached_by_sessions`]); a rerun pings only the rest.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::Duration;

use crate::settings::{resolve_portals, HostAddr, Netdev, Portal, ResolvedPortal};
use crate::steps::parse::netlink::Link;
use crate::steps::poll::{poll_until, Wait};
use crate::steps::{Cmd, Host, StepError};

use super::want::NetPort;

/// A target portal and the port that reaches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// The portal's address.
    pub portal: Ipv4Addr,
    /// What the operator calls it.
    pub label: Option<String>,
    /// The port that reaches it.
    pub netdev: String,
    /// That port's address with prefix.
    pub address: String,
    /// The interface of this host that carries the portal address (a lab with the target on
    /// the same host): the kernel answers its own addresses over loopback, so a ping bound
    /// to the port never sees the reply; it goes from the port's address instead.
    pub local_on: Option<String>,
}

impl Probe {
    /// The ping that proves the path.
    pub fn cmd(&self) -> Cmd {
        let portal = self.portal.to_string();
        let from = match &self.local_on {
            Some(_) => self
                .address
                .split('/')
                .next()
                .unwrap_or_default()
                .to_string(),
            None => self.netdev.clone(),
        };
        Cmd::probe(["ping", "-c", "1", "-W", "2", "-I", &from, &portal])
            .timeout(Duration::from_secs(5))
    }
}

/// What to tell the operator about portals that are this host's own addresses.
pub fn local_note(probes: &[Probe]) -> Option<String> {
    let local: Vec<String> = probes
        .iter()
        .filter_map(|p| {
            p.local_on
                .as_ref()
                .map(|on| format!("{} (on {on})", p.portal))
        })
        .collect();
    (!local.is_empty()).then(|| {
        format!(
            "target portal(s) {} are addresses of this host itself (the target runs here, as in \
             a lab): the kernel answers them over loopback, so they are pinged from the port's \
             address rather than bound to the port, which cannot prove the path on the wire",
            local.join(", ")
        )
    })
}

/// Ping every portal from its port, concurrently; each portal gets attempts until `bound`.
pub fn ping_all(
    host: &dyn Host,
    probes: &[Probe],
    bound: Duration,
    interval: Duration,
) -> Result<(), StepError> {
    let wait = Wait::new(bound, interval);
    let results = crate::steps::map_at_once(probes, |p| {
        let cmd = p.cmd();
        let answered = poll_until(host, wait, || Ok(host.run(&cmd)?.success().then_some(())))?;
        Ok(answered.is_some())
    })?;
    let mut failed = Vec::new();
    for (p, answered) in probes.iter().zip(results) {
        if !answered {
            failed.push(format!(
                "{}{} did not answer a ping from {} ({})",
                p.portal,
                p.label
                    .as_ref()
                    .map(|l| format!(" ({l})"))
                    .unwrap_or_default(),
                p.netdev,
                p.address
            ));
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(StepError::Failed(format!(
            "target portal{} unreachable within {}s:\n    - {}\n  check the cable or switch of \
             that subnet, the array port's address and link, and `ip addr show` on the host port",
            if failed.len() == 1 { "" } else { "s" },
            bound.as_secs(),
            failed.join("\n    - ")
        )))
    }
}

/// Each answers portal with the port whose subnet holds it; portals no port holds are left
/// to the answers validation (and never pinged from another subnet). `links` tells which
/// portals are addresses of this host itself.
pub fn probes(portals: Option<&[Portal]>, ports: &[NetPort], links: &[Link]) -> Vec<Probe> {
    let Some(portals) = portals else {
        return Vec::new();
    };
    let addrs: Vec<(Netdev, HostAddr)> = ports
        .iter()
        .filter_map(|c| Some((c.name().parse().ok()?, c.answer.address?)))
        .collect();
    let mut out = Vec::new();
    for r in resolve_each(&addrs, portals) {
        let addr = r.portal.address.ip();
        let local_on = links
            .iter()
            .find(|l| l.addrs.iter().any(|a| a.address == IpAddr::V4(addr)))
            .map(|l| l.name.clone());
        out.push(Probe {
            portal: addr,
            label: r.portal.label.map(|l| l.to_string()),
            netdev: addrs[r.port].0.to_string(),
            address: addrs[r.port].1.to_string(),
            local_on,
        });
    }
    out
}

/// The portals that have an owning port, each with it (the others are the answers
/// validation's to report).
fn resolve_each(ports: &[(Netdev, HostAddr)], portals: &[Portal]) -> Vec<ResolvedPortal> {
    portals
        .iter()
        .filter_map(|p| resolve_portals(ports, std::slice::from_ref(p)).ok()?.pop())
        .collect()
}

/// The (iface, portal address) of every LOGGED_IN iSCSI session, from sysfs
/// (`/sys/class/iscsi_session/sessionN/{state,ifacename}` and the address of its connection
/// `/sys/class/iscsi_connection/connectionN:0/address`). Empty where there is none (no
/// open-iscsi, no session, a root that is not the running system).
pub fn logged_in_sessions(host: &dyn Host) -> Result<BTreeSet<(String, String)>, StepError> {
    let mut out = BTreeSet::new();
    let root = Path::new("/sys/class/iscsi_session");
    if !host.exists(root) {
        return Ok(out);
    }
    for name in host.list_dir(root)? {
        let Some(sid) = name.strip_prefix("session") else {
            continue;
        };
        let attr = |a: &str| -> Result<Option<String>, StepError> {
            Ok(host
                .read(&root.join(&name).join(a))?
                .map(|t| t.trim().to_string()))
        };
        if attr("state")?.as_deref() != Some("LOGGED_IN") {
            continue;
        }
        let Some(iface) = attr("ifacename")? else {
            continue;
        };
        let conn = format!("/sys/class/iscsi_connection/connection{sid}:0/address");
        if let Some(addr) = host.read(Path::new(&conn))? {
            out.insert((iface, addr.trim().to_string()));
        }
    }
    Ok(out)
}

/// The probes a logged-in session already proves: its portal, from the iface the iscsi
/// step makes for the probe's port.
pub fn reached_by_sessions(probes: &[Probe], sessions: &BTreeSet<(String, String)>) -> Vec<bool> {
    probes
        .iter()
        .map(|p| {
            sessions.contains(&(
                crate::steps::iscsi::iface_name(&p.netdev),
                p.portal.to_string(),
            ))
        })
        .collect()
}
