//! The iscsi step: the initiator side of open-iscsi, ready for sessions.
//!
//! Probes and plans, each part planning nothing when the host already matches:
//! - `/etc/iscsi/iscsid.conf`: `node.startup = automatic`, the answers' replacement timeout
//!   and a short login timeout ([`LOGIN_TIMEOUT`]), by FULL key name and keeping every other
//!   line ([`set_keys`](crate::steps::iscsid_conf::set_keys)); short keys such as the vendor's `replacement_timeout = 20`, which
//!   open-iscsi ignores without a word, are named in a note and commented out. A new file
//!   is created 0600; an existing one readable by others is made 0600 (it is where CHAP
//!   secrets go).
//! - the initiator IQN (`host.initiator_iqn`): `"auto"` keeps the name in
//!   `/etc/iscsi/initiatorname.iscsi`, or generates one with `iscsi-iname` when there is
//!   none; an explicit IQN is written there. When the name changes and iscsid is running,
//!   iscsid is restarted: it keeps the old name otherwise and logins fail with rc 7
//!   "Invalid Initiatorname".
//! - `ib_iser` loaded (`modprobe ib_iser` when `/sys/module/ib_iser` is absent);
//! - the distro's services enabled and started (`iscsid` or, on Debian and Ubuntu, its
//!   socket; and `iscsi` or `open-iscsi`, the unit that logs in at boot), none enabled
//!   again that already is;
//! - one iface per port, `iface-<netdev>` (never `iser` or `default`, which open-iscsi
//!   reserves), transport `iser`, bound to the netdev, carrying the initiator IQN (the
//!   settings an iface lacks in one `iscsiadm -o update` with several `-n`/`-v` pairs).
//!
//! Verify re-reads all of it (when the plan changed nothing, only the files: the units and
//! ifaces are those plan read a moment before, nothing was applied in between) and records the IQN and ifaces in the
//! facts and worksheet. The units' states come from one `systemctl show` for all of them;
//! on Debian and Ubuntu iscsid is the socket-activated `iscsid.socket` their package
//! enables ([`decide::service_units`]), and the units to enable start in one
//! `systemctl enable --now` call.
//!
//! A dry run on a host without open-iscsi yet (preflight installs it) plans from the answers:
//! the units enabled and started, every iface created, and a name `iscsi-iname` would
//! generate shown as `<initiator IQN from iscsi-iname>`. Nothing is probed that only
//! open-iscsi could answer.
//!
//! Layout: [`want`] asks, [`observe`] reads the host, [`decide`] is pure (plan and verify
//! share its expectations, [`decide::IscsiProblem`] names each difference), and verify
//! records the IQN and ifaces. The step has no tasks: every change is a command or a file.

mod decide;
mod observe;
mod want;

use crate::steps::facts::IfaceFact;
use crate::steps::{Ctx, Plan, Step, StepError, StepName};
use observe::Phase;
use want::Wanted;

/// The open-iscsi settings file.
pub const ISCSID_CONF: &str = "/etc/iscsi/iscsid.conf";
/// The file holding the host's initiator IQN.
pub const INITIATORNAME: &str = "/etc/iscsi/initiatorname.iscsi";
/// `node.conn[0].timeo.login_timeout`, seconds. open-iscsi's default is 15, and the first
/// login retries `node.session.initial_login_retry_max` (8) times: two minutes before an
/// unreachable portal is reported. An iSER login on a working RDMA link completes in
/// milliseconds, so 5 s is ample headroom while the same 8 tries give up in about 40 s;
/// during path recovery it also allows several reconnect attempts within a 20 s
/// replacement timeout instead of one.
pub const LOGIN_TIMEOUT: u32 = 5;
/// The vendor's replacement timeout, offered when the answers do not give one.
pub const DEFAULT_REPLACEMENT_TIMEOUT: u32 = 20;

/// The iface name for a port's netdev.
pub fn iface_name(netdev: &str) -> String {
    format!("iface-{netdev}")
}

/// The ports to configure: from the facts of the network step, or else from the answers
/// (`ports[].netdev`, `ports[].address`).
pub fn port_list(cx: &Ctx<'_>) -> Result<Vec<(String, String)>, StepError> {
    if !cx.facts.ports.is_empty() {
        return Ok(cx
            .facts
            .ports
            .iter()
            .map(|p| (p.netdev.clone(), p.address.clone()))
            .collect());
    }
    let ports: Vec<(String, String)> = cx
        .ask
        .answers()
        .known_ports()
        .into_iter()
        .map(|(n, a)| (n.to_string(), a.to_string()))
        .collect();
    if ports.is_empty() {
        return Err(StepError::Failed(
            "ports: no host port is known: run the network step first, or list the ports \
             (netdev and address) in the answers file"
                .into(),
        ));
    }
    Ok(ports)
}

/// The ifaces this step makes, one per port.
pub fn planned_ifaces(cx: &Ctx<'_>) -> Result<Vec<IfaceFact>, StepError> {
    Ok(port_list(cx)?
        .into_iter()
        .map(|(netdev, address)| IfaceFact {
            name: iface_name(&netdev),
            netdev,
            address,
        })
        .collect())
}

/// What plan decided, kept for verify.
#[derive(Debug, Clone)]
struct Planned {
    wanted: Wanted,
    /// The initiator IQN in effect after apply.
    iqn: String,
    /// What plan saw, when the plan changes nothing: verify then re-reads the files but
    /// takes the units and ifaces from it instead of asking systemd and iscsiadm again (a
    /// rerun runs each probe once).
    unchanged: Option<observe::Observed>,
}

/// The iscsi step.
#[derive(Debug, Default)]
pub struct Iscsi {
    planned: Option<Planned>,
}

/// The step implementation.
pub fn step() -> Box<dyn Step> {
    Box::new(Iscsi::default())
}

impl Step for Iscsi {
    fn name(&self) -> StepName {
        StepName::Iscsi
    }

    fn plan(&mut self, cx: &mut Ctx<'_>) -> Result<Plan, StepError> {
        let wanted = want::want(cx)?;
        let observed = observe::observe(cx, &wanted, Phase::Plan)?;
        let mut plan = Plan::new(StepName::Iscsi);
        let iqn = decide::plan(&wanted, &observed, &mut plan)?;
        let unchanged = plan.actions.is_empty().then_some(observed);
        self.planned = Some(Planned {
            wanted,
            iqn,
            unchanged,
        });
        Ok(plan)
    }

    fn verify(&mut self, cx: &mut Ctx<'_>) -> Result<(), StepError> {
        let Planned {
            wanted: w,
            iqn,
            unchanged,
        } = self
            .planned
            .clone()
            .ok_or_else(|| StepError::Failed("internal: verify before plan".into()))?;
        let observed = match &unchanged {
            Some(prior) => observe::recheck(cx, prior)?,
            None => observe::observe(cx, &w, Phase::Verify)?,
        };
        let problems = decide::check(&w, &iqn, &observed);
        if !problems.is_empty() {
            let shown: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
            return Err(StepError::Failed(format!(
                "the iSCSI initiator is not set up as planned:\n    - {}",
                shown.join("\n    - ")
            )));
        }
        cx.facts.initiator_iqn = Some(iqn.clone());
        cx.facts.ifaces = w.ifaces.clone();
        cx.sheet.host.initiator_iqn = Some(iqn);
        cx.sheet.host.mapping_host_name = Some(w.mapping_host_name.clone());
        cx.sheet.host.host_os_type = Some(w.host_os_type.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests;
