//! What the sessions step wants: the only place it asks. From the typed answers (target IQN,
//! discovery mode, portals, replacement timeout, CHAP) and the iscsi step's ifaces, it builds
//! [`Want`]: the expected (iface, portal) pairs and the settings each node record must carry.
//! Nothing here touches the host; the CHAP secret is read from the environment variable the
//! answers name.

use std::fmt;

use crate::settings::{self, Discovery, HostAddr, Netdev, PortalAddr, TargetIqn};
use crate::steps::facts::IfaceFact;
use crate::steps::iscsi::{planned_ifaces, DEFAULT_REPLACEMENT_TIMEOUT, LOGIN_TIMEOUT};
use crate::steps::parse::iscsiadm::Portal;
use crate::steps::{AskError, Cmd, Ctx, StepError};

/// An expected session: the iface and the target portal it reaches.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Pair {
    pub iface: String,
    pub portal: Portal,
}

impl fmt::Display for Pair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} via {}", self.portal, self.iface)
    }
}

/// A target portal from the answers, with the index of the iface in its subnet.
#[derive(Debug, Clone)]
pub(super) struct TargetPortal {
    pub portal: Portal,
    pub label: Option<String>,
    pub iface: usize,
}

/// CHAP credentials; the secret never leaves a masked [`Cmd`].
#[derive(Clone)]
pub(super) struct Chap {
    pub username: String,
    pub secret: String,
    pub env: String,
}

impl fmt::Debug for Chap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Chap {{ username: {:?}, secret: ******, env: {:?} }}",
            self.username, self.env
        )
    }
}

/// A node record setting the answers ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Setting {
    pub key: &'static str,
    pub value: String,
    pub secret: bool,
}

impl Setting {
    /// Why the plan sets it, in the operator's words.
    pub fn why(&self) -> &'static str {
        match self.key {
            "node.startup" => "log in at boot",
            "node.session.timeo.replacement_timeout" => "fail over per iscsi.replacement_timeout",
            "node.conn[0].timeo.login_timeout" => "give up fast on a dead portal",
            _ => "authentication per target.chap",
        }
    }
}

/// What the step wants, kept from plan for its tasks and verify.
#[derive(Debug, Clone)]
pub(super) struct Want {
    /// `target.iqn` when it names the target (not "discover").
    pub explicit_iqn: Option<String>,
    /// `target.discovery = "manual"`: node records by hand, no SendTargets.
    pub manual: bool,
    pub ifaces: Vec<IfaceFact>,
    pub portals: Vec<TargetPortal>,
    pub pairs: Vec<Pair>,
    pub replacement_timeout: u32,
    pub chap: Option<Chap>,
}

impl Want {
    /// The settings every expected record must carry.
    pub fn settings(&self) -> Vec<Setting> {
        let s = |key, value: String, secret| Setting { key, value, secret };
        let mut out = vec![
            s("node.startup", "automatic".into(), false),
            s(
                "node.session.timeo.replacement_timeout",
                self.replacement_timeout.to_string(),
                false,
            ),
            s(
                "node.conn[0].timeo.login_timeout",
                LOGIN_TIMEOUT.to_string(),
                false,
            ),
        ];
        match &self.chap {
            Some(c) => {
                out.push(s("node.session.auth.authmethod", "CHAP".into(), false));
                out.push(s("node.session.auth.username", c.username.clone(), false));
                out.push(s("node.session.auth.password", c.secret.clone(), true));
            }
            None => out.push(s("node.session.auth.authmethod", "None".into(), false)),
        }
        out
    }

    /// The command with the CHAP secret (if any) masked wherever it or its output is shown:
    /// a target or iscsiadm may echo it.
    pub fn masked(&self, cmd: Cmd) -> Cmd {
        match &self.chap {
            Some(c) => cmd.secret(c.secret.clone()),
            None => cmd,
        }
    }

    fn iface(&self, name: &str) -> Option<&IfaceFact> {
        self.ifaces.iter().find(|i| i.name == name)
    }

    /// "check the link of vA and `ping -I vA 192.168.130.101`": how to check reachability
    /// of a pair.
    pub fn reach_hint(&self, p: &Pair) -> String {
        match self.iface(&p.iface) {
            Some(i) => format!(
                "check the link of {} and `ping -I {} {}`",
                i.netdev, i.netdev, p.portal.address
            ),
            None => format!("check that {} is reachable", p.portal.address),
        }
    }

    /// The first portal of each iface's subnet, in the answers' order, for the ifaces of
    /// `pairs` (each iface once, in the order they first appear).
    pub fn first_pair_per_iface<'a>(&self, pairs: impl IntoIterator<Item = &'a Pair>) -> Vec<Pair> {
        let mut out: Vec<Pair> = Vec::new();
        for p in pairs {
            if !out.iter().any(|d| d.iface == p.iface) {
                let first = self.pairs.iter().find(|q| q.iface == p.iface).unwrap_or(p);
                out.push(first.clone());
            }
        }
        out
    }
}

/// Ask (or read) everything the step needs. The ifaces come from the iscsi step's facts, or
/// from the answers when that step only planned.
pub(super) fn want(cx: &mut Ctx<'_>, env: fn(&str) -> Option<String>) -> Result<Want, StepError> {
    let ifaces = if cx.facts.ifaces.is_empty() {
        planned_ifaces(cx)?
    } else {
        cx.facts.ifaces.clone()
    };
    let iqn_answer = cx.ask.want(
        "target.iqn",
        "Target IQN (\"discover\" takes it from SendTargets)",
        Some(TargetIqn::Discover),
        |a| &mut a.target.iqn,
    )?;
    let manual = cx.ask.want_choice(
        "target.discovery",
        "How to find the target's portals",
        Discovery::ALL,
        Discovery::SendTargets,
        |a| &mut a.target.discovery,
    )? == Discovery::Manual;
    let discover = iqn_answer == TargetIqn::Discover;
    if manual && discover {
        return Err(StepError::Failed(
            "target.iqn: \"discover\" needs SendTargets discovery, but target.discovery is \
             \"manual\": give the target IQN, or use \"sendtargets\""
                .into(),
        ));
    }
    let portals = target_portals(cx, &ifaces)?;
    let replacement_timeout = cx.ask.want_number(
        "iscsi.replacement_timeout",
        "Seconds a failed path may take to come back before I/O fails over",
        Some(DEFAULT_REPLACEMENT_TIMEOUT),
        (1, 3600),
        |a| &mut a.iscsi.replacement_timeout,
    )?;
    let chap = chap(cx, env)?;
    let pairs = portals
        .iter()
        .map(|p| Pair {
            iface: ifaces[p.iface].name.clone(),
            portal: p.portal.clone(),
        })
        .collect();
    Ok(Want {
        explicit_iqn: match &iqn_answer {
            TargetIqn::Discover => None,
            TargetIqn::FromArray => Some(from_array(cx)?.target_iqn.clone()),
            other => Some(other.to_string()),
        },
        manual,
        ifaces,
        portals,
        pairs,
        replacement_timeout,
        chap,
    })
}

/// The answers' `target.portals`; in an interactive run without them, asked: controllers A
/// and B on each host port's subnet (the recommended layout), each port given as its netdev
/// and address, and each address checked against that port's subnet as it is typed. The
/// network step asks first, to ping them; this step then finds them answered.
pub(crate) fn portal_answers(
    cx: &mut Ctx<'_>,
    ports: &[(Netdev, HostAddr)],
) -> Result<Vec<settings::Portal>, StepError> {
    cx.ask.check_refused("target.portals")?;
    if let Some(list) = &cx.ask.answers().target.portals {
        return Ok(list.clone());
    }
    if !cx.ask.interactive() {
        return Err(AskError::Missing {
            key: "target.portals".into(),
        }
        .into());
    }
    let addrs: Vec<HostAddr> = ports.iter().map(|(_, a)| *a).collect();
    let mut list = Vec::new();
    for (i, (netdev, address)) in ports.iter().enumerate() {
        for (j, ctrl) in ["A", "B"].iter().enumerate() {
            let k = 2 * i + j;
            let on_this_port = |p: &PortalAddr| match settings::owner_of(&addrs, p.ip()) {
                Ok(owner) if owner == i => Ok(()),
                Ok(owner) => Err(format!(
                    "{} is on {}'s subnet, not {netdev}'s ({address}): give controller {ctrl}'s \
                     port on {netdev}'s subnet",
                    p.ip(),
                    ports[owner].0
                )),
                Err(e) => Err(settings::owner_message(ports, p.ip(), e)),
            };
            let address = cx.ask.ask_value(
                &format!("target.portals[{k}].address"),
                &format!("Controller {ctrl} iSER port address on {netdev}'s subnet ({address})"),
                None,
                &on_this_port,
            )?;
            let label = format!("Controller {ctrl}, port {}", i + 1).parse().ok();
            list.push(settings::Portal { address, label });
        }
    }
    cx.ask.answers_mut().target.portals = Some(list.clone());
    Ok(list)
}

/// What the array step read back; `target.iqn: "from-array"` needs it.
fn from_array<'a>(cx: &'a Ctx<'_>) -> Result<&'a crate::steps::facts::ArrayFact, StepError> {
    cx.facts.array.as_ref().ok_or_else(|| {
        StepError::Failed(
            "target.iqn is \"from-array\", but the array step has not read the array yet: \
             run it first (it needs the array section)"
                .into(),
        )
    })
}

/// With an array section and no `target.portals`: the array's iSER ports that are up and in
/// a host port's subnet, as the array step recorded them.
fn array_portals(cx: &Ctx<'_>) -> Option<Vec<settings::Portal>> {
    if cx.ask.answers().target.portals.is_some() {
        return None;
    }
    let a = cx.facts.array.as_ref()?;
    Some(
        a.portals()
            .iter()
            .filter_map(|p| {
                Some(settings::Portal {
                    address: p.address.parse().ok()?,
                    label: format!("Controller {}, port {}", p.controller, p.channel)
                        .parse()
                        .ok(),
                })
            })
            .collect(),
    )
}

/// The answers' target portals, each with the iface of its subnet.
fn target_portals(cx: &mut Ctx<'_>, ifaces: &[IfaceFact]) -> Result<Vec<TargetPortal>, StepError> {
    let ports = iface_ports(ifaces)?;
    let list = match array_portals(cx) {
        Some(l) if !l.is_empty() => l,
        Some(_) => {
            return Err(StepError::Failed(
                "the array has no iSER port that is up and in a host port's subnet: check the \
                 array's port addresses and links against ports[].address"
                    .into(),
            ))
        }
        None => portal_answers(cx, &ports)?,
    };
    let resolved = settings::resolve_portals(&ports, &list).map_err(|e| {
        let k = list
            .iter()
            .position(|p| settings::resolve_portals(&ports, std::slice::from_ref(p)).is_err())
            .unwrap_or(0);
        StepError::Failed(format!("target.portals[{k}].address: {e}"))
    })?;
    Ok(resolved
        .into_iter()
        .map(|r| TargetPortal {
            portal: Portal {
                address: r.portal.address.ip().to_string(),
                port: r.portal.address.port(),
            },
            label: r.portal.label.map(|l| l.to_string()),
            iface: r.port,
        })
        .collect())
}

/// The ifaces' ports as typed values (their facts keep the text the network step wrote).
fn iface_ports(ifaces: &[IfaceFact]) -> Result<Vec<(Netdev, HostAddr)>, StepError> {
    ifaces
        .iter()
        .map(|i| {
            let bad = |e: String| StepError::Failed(format!("iface {}: {e}", i.name));
            Ok((
                i.netdev.parse().map_err(bad)?,
                i.address.parse().map_err(bad)?,
            ))
        })
        .collect()
}

fn chap(cx: &Ctx<'_>, env: fn(&str) -> Option<String>) -> Result<Option<Chap>, StepError> {
    cx.ask.check_refused("target.chap")?;
    let Some(Some(c)) = &cx.ask.answers().target.chap else {
        return Ok(None);
    };
    let username = c.username.to_string();
    let var = c.password_env.to_string();
    let secret = env(&var).filter(|s| !s.is_empty()).ok_or_else(|| {
        StepError::Failed(format!(
            "target.chap.password_env: the environment variable {var} is not set: export it \
             with the CHAP secret before running"
        ))
    })?;
    Ok(Some(Chap {
        username,
        secret,
        env: var,
    }))
}
