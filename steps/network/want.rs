//! Want: the only place the network step asks. The fabric, each port's netdev and address
//! (offering what the host or an earlier step shows), and the IPoIB mode come back typed from
//! `crate::settings`; each answers port is then joined with its interface and RDMA port
//! ([`chosen_ports`], shared with the subnet-manager step), or, in a dry run on a host whose
//! ports do not exist yet, kept from the answers alone ([`NetPort`] with no device).

use std::net::IpAddr;

use crate::answers::check_netdev;
use crate::settings::{self, Fabric, HostAddr, Netdev};
use crate::steps::facts::PortFact;
use crate::steps::parse::netlink::Link;
use crate::steps::{Ctx, StepError};

use super::observe::{inventory, links, rdma_port_of, rdma_ports, RdmaPort};

/// One port as the answers give it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortAnswer {
    /// The netdev named in the answers.
    pub netdev: String,
    /// Address with prefix (absent when not asked for).
    pub address: Option<HostAddr>,
    /// `datagram` or `connected`, when given.
    pub ipoib_mode: Option<String>,
    /// MTU, when given.
    pub mtu: Option<u32>,
    /// The name to pin by udev rule, when given.
    pub persistent_name: Option<String>,
}

/// An answers port joined with its interface and RDMA port.
#[derive(Debug, Clone)]
pub struct ChosenPort {
    /// Index in `ports[]`.
    pub index: usize,
    /// The answers.
    pub answer: PortAnswer,
    /// The interface as it is now (possibly already under its persistent name).
    pub link: Link,
    /// Its RDMA port.
    pub rdma: RdmaPort,
}

impl ChosenPort {
    /// The name the port has once configured: its persistent name when one is given.
    pub fn name(&self) -> &str {
        self.answer
            .persistent_name
            .as_deref()
            .unwrap_or(&self.answer.netdev)
    }

    /// `mlx5_0 port 1, InfiniBand, GUID 0x...` for comments and messages.
    pub fn describe(&self) -> String {
        let ll = if self.rdma.is_ib() {
            "InfiniBand"
        } else {
            "Ethernet/RoCE"
        };
        match self.rdma.guid() {
            Some(g) => format!(
                "{} port {}, {ll}, GUID {g}",
                self.rdma.info.ca, self.rdma.info.number
            ),
            None => format!("{} port {}, {ll}", self.rdma.info.ca, self.rdma.info.number),
        }
    }
}

/// The fabric answer: `auto`, `infiniband` or `roce`.
pub fn fabric_answer(cx: &mut Ctx<'_>) -> Result<String, StepError> {
    if cx.ask.answers().fabric.is_none() && cx.ask.interactive() {
        // Asked (and resolved) by the subnet-manager step already: do not ask twice.
        if let Some(f) = cx.facts.fabric.clone() {
            cx.ask.answers_mut().fabric = f.parse().ok();
            return Ok(f);
        }
    }
    Ok(cx
        .ask
        .want_choice(
            "fabric",
            "Which fabric carries iSER? (auto: from each port's link layer)",
            &[Fabric::Auto, Fabric::Infiniband, Fabric::Roce],
            Fabric::Auto,
            |a| &mut a.fabric,
        )?
        .to_string())
}

fn port_answers(
    cx: &mut Ctx<'_>,
    inv: &[(String, Option<String>)],
    links: &[Link],
    ask_addresses: bool,
) -> Result<Vec<PortAnswer>, StepError> {
    let provided = cx.ask.answers().ports.as_ref().map_or(0, Vec::len);
    let from_facts: Vec<PortFact> = cx.facts.ports.clone();
    let detected: Vec<String> = inv.iter().filter_map(|(_, n)| n.clone()).collect();
    let n = if provided > 0 {
        provided
    } else if !from_facts.is_empty() {
        from_facts.len()
    } else {
        // The vendor's recommended configuration: two host ports.
        detected.len().clamp(1, 2)
    };
    let listing = if inv.is_empty() {
        "no RDMA ports found".to_string()
    } else {
        inv.iter()
            .map(|(t, _)| t.as_str())
            .collect::<Vec<_>>()
            .join("; ")
    };
    let mut out = Vec::new();
    for i in 0..n {
        let default = from_facts
            .get(i)
            .map(|p| p.netdev.clone())
            .or_else(|| detected.get(i).cloned());
        let netdev = cx.ask.want(
            &format!("ports[{i}].netdev"),
            &format!(
                "Network interface of iSER port {} (RDMA ports: {listing})",
                i + 1
            ),
            default.and_then(|d| d.parse::<Netdev>().ok()),
            |a| &mut a.port_mut(i).netdev,
        )?;
        let address = if ask_addresses {
            let current = links
                .iter()
                .find(|l| l.name == netdev.as_str())
                .and_then(|l| {
                    l.addrs.iter().find_map(|a| match a.address {
                        IpAddr::V4(v4) if a.scope.as_deref() != Some("link") => {
                            format!("{v4}/{}", a.prefix_len).parse::<HostAddr>().ok()
                        }
                        _ => None,
                    })
                })
                .or_else(|| from_facts.get(i).and_then(|p| p.address.parse().ok()));
            Some(cx.ask.want(
                &format!("ports[{i}].address"),
                // The vendor's example layout: host port 1 on 192.168.130.0/24, port 2 on .131.
                &format!(
                    "IPv4 address with prefix for {netdev} (like 192.168.{}.10/24)",
                    130 + i.min(125)
                ),
                current,
                |a| &mut a.port_mut(i).address,
            )?)
        } else {
            cx.ask
                .answers()
                .ports
                .as_ref()
                .and_then(|p| p.get(i)?.address)
        };
        let given = cx
            .ask
            .answers()
            .ports
            .as_ref()
            .and_then(|p| p.get(i).cloned())
            .unwrap_or_default();
        out.push(PortAnswer {
            netdev: netdev.to_string(),
            address,
            ipoib_mode: given.ipoib_mode.map(|m| m.to_string()),
            mtu: given.mtu,
            persistent_name: given.persistent_name.map(|n| n.to_string()),
        });
    }
    Ok(out)
}

/// The answers ports, each joined with its interface and RDMA port, and every interface on
/// the host; fails naming a netdev that does not exist or has no RDMA port, and a port whose
/// link layer contradicts `fabric`.
pub fn chosen_ports(
    cx: &mut Ctx<'_>,
    fabric: &str,
    ask_addresses: bool,
) -> Result<(Vec<ChosenPort>, Vec<Link>), StepError> {
    let (ports, links) = resolve_ports(cx, fabric, ask_addresses, false)?;
    let chosen = ports
        .into_iter()
        .map(|p| match (p.link, p.rdma) {
            (Some(link), Some(rdma)) => Ok(ChosenPort {
                index: p.index,
                answer: p.answer,
                link,
                rdma,
            }),
            _ => Err(StepError::Failed(format!(
                "internal: ports[{}] has no device",
                p.index
            ))),
        })
        .collect::<Result<_, _>>()?;
    Ok((chosen, links))
}

/// An answers port with what the host shows of it: in a real run always its interface and
/// RDMA port; in a dry run on a host whose ports do not exist yet, the answers alone.
#[derive(Debug, Clone)]
pub struct NetPort {
    /// Index in `ports[]`.
    pub index: usize,
    /// The answers.
    pub answer: PortAnswer,
    /// The interface as it is now (`None`: it does not exist yet).
    pub link: Option<Link>,
    /// Its RDMA port (`None`: not known until the device exists).
    pub rdma: Option<RdmaPort>,
    /// InfiniBand (`true`) or Ethernet/RoCE: from the RDMA port, else from the fabric answer;
    /// `None` when the fabric is `auto` and there is no device to tell.
    pub ib: Option<bool>,
}

impl NetPort {
    /// The name the port has once configured: its persistent name when one is given.
    pub fn name(&self) -> &str {
        self.answer
            .persistent_name
            .as_deref()
            .unwrap_or(&self.answer.netdev)
    }

    /// Known to be an InfiniBand port.
    pub fn is_ib(&self) -> bool {
        self.ib == Some(true)
    }
}

/// The RDMA ports of the host listed for an error message.
fn listing(inv: &[(String, Option<String>)]) -> String {
    if inv.is_empty() {
        "there is no RDMA port on this host".to_string()
    } else {
        format!(
            "the RDMA ports here are: {}",
            inv.iter()
                .map(|(t, _)| t.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        )
    }
}

/// The answers ports for the subnet-manager step, which needs no IPoIB interface: a port
/// whose interface exists is joined with its RDMA port (and fails as in [`chosen_ports`] when
/// it has none, or the wrong link layer); a port whose interface does not exist (no IPoIB
/// interface yet, or no sysfs to map it, as on a simulated fabric) is kept from the answers
/// alone (`link` and `rdma` `None`), for the step to find by port GUID.
pub fn interface_ports(cx: &mut Ctx<'_>, fabric: &str) -> Result<Vec<NetPort>, StepError> {
    Ok(resolve(cx, fabric, false, false, true)?.0)
}

/// The answers ports joined with what the host shows of them (see [`chosen_ports`]). With
/// `plan_missing` (a dry run), a port whose interface does not exist, or every port of a host
/// with no RDMA device yet (preflight loads the drivers), is kept from the answers alone.
pub fn resolve_ports(
    cx: &mut Ctx<'_>,
    fabric: &str,
    ask_addresses: bool,
    plan_missing: bool,
) -> Result<(Vec<NetPort>, Vec<Link>), StepError> {
    resolve(cx, fabric, ask_addresses, plan_missing, false)
}

/// [`resolve_ports`], and with `keep_absent` a port whose interface does not exist is kept
/// from the answers alone in a real run too.
fn resolve(
    cx: &mut Ctx<'_>,
    fabric: &str,
    ask_addresses: bool,
    plan_missing: bool,
    keep_absent: bool,
) -> Result<(Vec<NetPort>, Vec<Link>), StepError> {
    let rdma = rdma_ports(cx)?;
    let links = if plan_missing && cx.planning_without("ip") {
        Vec::new()
    } else {
        links(cx)?
    };
    let inv = inventory(&rdma, &links);
    let answers = port_answers(cx, &inv, &links, ask_addresses)?;
    let from_fabric = match fabric {
        "infiniband" => Some(true),
        "roce" => Some(false),
        _ => None,
    };
    let mut out: Vec<NetPort> = Vec::new();
    for (i, a) in answers.into_iter().enumerate() {
        for (key, name) in [
            ("netdev", Some(&a.netdev)),
            ("persistent_name", a.persistent_name.as_ref()),
        ] {
            if let Some(n) = name {
                check_netdev(n).map_err(|e| StepError::Failed(format!("ports[{i}].{key}: {e}")))?;
            }
        }
        let link = links
            .iter()
            .find(|l| l.name == a.netdev)
            .or_else(|| {
                // A rerun after the rename: the port already carries its persistent name.
                a.persistent_name
                    .as_ref()
                    .and_then(|p| links.iter().find(|l| l.name == *p))
            })
            .cloned();
        if (plan_missing && (link.is_none() || rdma.is_empty())) || (keep_absent && link.is_none())
        {
            out.push(NetPort {
                index: i,
                answer: a,
                link,
                rdma: None,
                ib: from_fabric,
            });
            continue;
        }
        let link = link.ok_or_else(|| {
            StepError::Failed(format!(
                "ports[{i}].netdev: there is no network interface {}; {}",
                a.netdev,
                listing(&inv)
            ))
        })?;
        let port = device_of(i, &a, &link, &rdma, &inv, fabric, &out)?;
        out.push(NetPort {
            index: i,
            answer: a,
            link: Some(link),
            ib: Some(port.is_ib()),
            rdma: Some(port),
        });
    }
    Ok((out, links))
}

/// The RDMA port of `ports[i]`'s interface, checked against the fabric and the ports before it.
fn device_of(
    i: usize,
    a: &PortAnswer,
    link: &Link,
    rdma: &[RdmaPort],
    inv: &[(String, Option<String>)],
    fabric: &str,
    before: &[NetPort],
) -> Result<RdmaPort, StepError> {
    let port = rdma_port_of(link, rdma).ok_or_else(|| {
        StepError::Failed(format!(
            "ports[{i}].netdev: {} has no RDMA port, so iSER cannot use it; {}. Name the \
             IPoIB interface of an InfiniBand port, or the Ethernet netdev of a RoCE device",
            a.netdev,
            listing(inv)
        ))
    })?;
    if fabric == "infiniband" && !port.is_ib() {
        return Err(StepError::Failed(format!(
            "ports[{i}].netdev: {} is on {}, whose link layer is Ethernet (RoCE), but \
             fabric is \"infiniband\": set fabric to \"roce\" or \"auto\"",
            a.netdev,
            port.label()
        )));
    }
    if fabric == "roce" && port.is_ib() {
        return Err(StepError::Failed(format!(
            "ports[{i}].netdev: {} is on {}, whose link layer is InfiniBand, but fabric is \
             \"roce\": set fabric to \"infiniband\" or \"auto\"",
            a.netdev,
            port.label()
        )));
    }
    if let Some(j) = before
        .iter()
        .position(|c| c.rdma.as_ref().is_some_and(|r| r.label() == port.label()))
    {
        return Err(StepError::Failed(format!(
            "ports[{i}].netdev: {} is on {}, the same RDMA port as ports[{j}]: give each \
             iSER port its own RDMA port",
            a.netdev,
            port.label()
        )));
    }
    Ok(port.clone())
}

/// The IPoIB mode of an InfiniBand port (or one whose link layer a dry run does not know
/// yet): the answer, else asked with the mode it runs now as the default (datagram on
/// Enhanced IPoIB, which has no other).
pub fn want_mode(
    cx: &mut Ctx<'_>,
    port: &NetPort,
    enhanced: bool,
    current: Option<&str>,
) -> Result<settings::IpoibMode, StepError> {
    if let Some(m) = port
        .answer
        .ipoib_mode
        .as_deref()
        .and_then(|m| m.parse().ok())
    {
        return Ok(m);
    }
    let i = port.index;
    let default = if !enhanced && current == Some("connected") {
        1
    } else {
        0
    };
    Ok(cx.ask.want_choice(
        &format!("ports[{i}].ipoib_mode"),
        &format!("IPoIB mode of {}", port.answer.netdev),
        settings::IpoibMode::ALL,
        settings::IpoibMode::ALL[default],
        |a| &mut a.port_mut(i).ipoib_mode,
    )?)
}
