//! What the iscsi step wants: the only place it asks. The distro (from preflight's facts),
//! the ifaces (one per port), the iscsid.conf settings, the initiator IQN answer, and the
//! names the worksheet carries for the array's host mapping.

use crate::settings::InitiatorIqn;
use crate::steps::facts::{Distro, IfaceFact};
use crate::steps::{Ctx, StepError};

use super::{planned_ifaces, DEFAULT_REPLACEMENT_TIMEOUT, LOGIN_TIMEOUT};

/// What the step wants, kept from plan for verify.
#[derive(Debug, Clone)]
pub(super) struct Wanted {
    pub distro: Distro,
    /// iscsid.conf settings, by full key name.
    pub settings: Vec<(&'static str, String)>,
    /// `host.initiator_iqn`.
    pub answer: InitiatorIqn,
    pub ifaces: Vec<IfaceFact>,
    pub mapping_host_name: String,
    pub host_os_type: String,
}

/// The iface settings each iface must carry, with the initiator IQN `iqn`.
pub(super) fn iface_keys(iface: &IfaceFact, iqn: &str) -> [(&'static str, String); 3] {
    [
        ("iface.transport_name", "iser".to_string()),
        ("iface.net_ifacename", iface.netdev.clone()),
        ("iface.initiatorname", iqn.to_string()),
    ]
}

fn distro(cx: &Ctx<'_>) -> Result<Distro, StepError> {
    cx.facts.os.as_ref().and_then(|o| o.distro).ok_or_else(|| {
        StepError::Failed(
            "the distribution is not known yet: run the preflight step first \
             (`iser-wizard run --from preflight`)"
                .into(),
        )
    })
}

/// Ask (or read) everything the step needs.
pub(super) fn want(cx: &mut Ctx<'_>) -> Result<Wanted, StepError> {
    let distro = distro(cx)?;
    let ifaces = planned_ifaces(cx)?;
    let replacement = cx.ask.want_number(
        "iscsi.replacement_timeout",
        "Seconds a failed path may take to come back before I/O fails over \
         (node.session.timeo.replacement_timeout)",
        Some(DEFAULT_REPLACEMENT_TIMEOUT),
        (1, 3600),
        |a| &mut a.iscsi.replacement_timeout,
    )?;
    let answer = cx.ask.want(
        "host.initiator_iqn",
        "Initiator IQN (\"auto\" keeps this host's own, or generates one)",
        Some(InitiatorIqn::Auto),
        |a| &mut a.host.initiator_iqn,
    )?;
    let hostname = cx.facts.hostname.as_deref().and_then(|h| h.parse().ok());
    let mapping_host_name = cx
        .ask
        .want(
            "host.mapping_host_name",
            "Host name to use in the array's host mapping",
            hostname,
            |a| &mut a.host.mapping_host_name,
        )?
        .to_string();
    let host_os_type = cx
        .ask
        .want(
            "host.host_os_type",
            "Host OS type on the array",
            "Linux DM-MP".parse().ok(),
            |a| &mut a.host.host_os_type,
        )?
        .to_string();
    let settings = vec![
        ("node.startup", "automatic".to_string()),
        (
            "node.session.timeo.replacement_timeout",
            replacement.to_string(),
        ),
        (
            "node.conn[0].timeo.login_timeout",
            LOGIN_TIMEOUT.to_string(),
        ),
    ];
    Ok(Wanted {
        distro,
        settings,
        answer,
        ifaces,
        mapping_host_name,
        host_os_type,
    })
}
