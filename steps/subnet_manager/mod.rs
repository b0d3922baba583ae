//! The subnet-manager step: an InfiniBand fabric needs a subnet manager, even on a cable from
//! the host straight to the array; RoCE needs none.
//!
//! Contract:
//! - Skipped, with the reason on the worksheet, on RoCE ports and when
//!   `subnet_manager.run_on_host` is false.
//! - The InfiniBand ports come from `ibstat` (CA, port, port GUID, state, SM lid, link
//!   layer), keyed by port GUID; no IPoIB interface is needed. The ports served: each answers
//!   port whose interface exists and is InfiniBand (its GUID from the interface's address and
//!   sysfs), and each port `subnet_manager.priorities` names by GUID that `ibstat` lists. An
//!   answers port whose interface does not exist stands for a GUID-named port no interface
//!   claims; one left over stops the step, naming the InfiniBand ports `ibstat` shows. A GUID
//!   that is not a port here, or names an Ethernet port, is a note.
//! - Per InfiniBand port (each host port is usually its own fabric): a subnet manager already
//!   answering there (port Active with a non-zero SM lid in `ibstat`, confirmed by `sminfo`
//!   when it is installed) is recorded and left alone, the worksheet saying where it runs
//!   (its lid, and sminfo's port GUID and priority); otherwise one opensm runs for that
//!   port GUID with its priority (0-15, from `subnet_manager.priorities` by GUID or netdev;
//!   0 by default as in opensm(8)), started now and at boot. Always with `-g`: without it
//!   opensm may bind an Ethernet port.
//! - RHEL: `/etc/sysconfig/opensm` (`GUIDS`, `PRIORITY`) and opensm.service; elsewhere, and on
//!   RHEL when the ports want different priorities (the sysconfig file has one), a templated
//!   unit `opensm@<GUID>.service` per port. Never rc.local.
//! - Verify polls the ports (bounded) until they are Active; a port left in Initializing on
//!   an SELinux-enforcing host gets the `manage_subnet` explanation and its fix.
//! - A host where all of it is in place gets an empty plan.

//! - Facts (`fabric`, `ports`) and the worksheet are written by verify only, never while
//!   planning.
//! - A dry run on a host with no RDMA device (none in sysfs, none in `ibstat`) plans from the
//!   answers: one opensm per answered port, its GUID a placeholder (`<port GUID of ib0>`) and
//!   its priority from the answers (a placeholder when they key it by a GUID not known yet).
//!
//! Shape: [`want`] asks, [`observe`] reads the host, [`decide`] is pure (table-tested), and
//! this module strings them into a plan and verifies and records.

pub mod decide;
mod observe;
mod want;

use std::time::Duration;

use crate::settings::Fabric;
use crate::steps::facts::{Distro, PortFact};
use crate::steps::network::{distro, interface_ports, rdma_ports, state_name, NetPort, RdmaPort};
#[cfg(test)]
use crate::steps::parse::ibstat::Guid;
use crate::steps::parse::ibstat::{LinkLayer, Port};
use crate::steps::poll::{poll_until, Wait};
use crate::steps::{Ctx, Plan, Step, StepError, StepName};
use crate::worksheets::SubnetManagerRecord;
#[cfg(test)]
use decide::{edit_sysconfig, SYSCONFIG, UNIT};
use decide::{Cause, External, Launch, Managed, PortGuid, Priority, Served};
#[cfg(test)]
use observe::{sminfo, sysconfig_guids};

/// The step implementation.
pub fn step() -> Box<dyn Step> {
    Box::new(SubnetManager::default())
}

const NOT_NEEDED: &str = "not needed (RoCE)";
const NOT_HERE: &str = "not on this host (run_on_host is false)";

/// An InfiniBand port the step looks after, while planning.
#[derive(Debug, Clone)]
struct IbPort {
    served: Served,
    priority: u8,
    /// `Some`: a subnet manager elsewhere on the fabric serves this port.
    external: Option<External>,
}

impl IbPort {
    /// The port `p`, known as `name`, with its priority; not known to be served from
    /// elsewhere yet.
    fn new(name: &str, p: &Port, priority: u8) -> IbPort {
        IbPort {
            served: Served {
                netdev: name.to_string(),
                ca: p.ca.clone(),
                number: p.number,
                guid: p.port_guid,
            },
            priority,
            external: None,
        }
    }
}

/// The subnet-manager step.
#[derive(Debug)]
pub struct SubnetManager {
    /// The ports verify checks.
    ports: Vec<Served>,
    record: Option<SubnetManagerRecord>,
    /// The fabric and ports verify records (`None`: left as they are).
    fabric: Option<&'static str>,
    port_facts: Option<Vec<PortFact>>,
    /// How long verify waits for the ports to become Active.
    pub wait: Duration,
    /// Pause between two looks at the ports.
    pub interval: Duration,
}

impl Default for SubnetManager {
    fn default() -> Self {
        SubnetManager {
            ports: Vec::new(),
            record: None,
            fabric: None,
            port_facts: None,
            wait: Duration::from_secs(60),
            interval: Duration::from_secs(2),
        }
    }
}

/// The facts of the answers ports, recorded after verify (the network step offers them as the
/// defaults of its own questions on a later run); `None` (left as they are) when a port's
/// interface does not exist, as its RDMA port is then not known.
fn port_facts(named: &[NetPort]) -> Option<Vec<PortFact>> {
    named
        .iter()
        .map(|p| {
            let rdma = p.rdma.as_ref()?;
            Some(PortFact {
                netdev: p.answer.netdev.clone(),
                rdma_device: Some(rdma.info.ca.clone()),
                rdma_port: Some(u32::from(rdma.info.number)),
                guid: rdma.guid().map(|g| g.to_string()),
                link_layer: Some(
                    if rdma.is_ib() {
                        "infiniband"
                    } else {
                        "ethernet"
                    }
                    .into(),
                ),
                address: p.answer.address.map(|a| a.to_string()).unwrap_or_default(),
            })
        })
        .collect()
}

/// `ibsim0/1 0x0000000000100001 (Initializing)` for each InfiniBand port `live` shows.
fn ib_listing(live: &[Port]) -> String {
    let ports: Vec<String> = live
        .iter()
        .filter(|p| p.link_layer == LinkLayer::Infiniband)
        .map(|p| {
            format!(
                "{}/{} {} ({})",
                p.ca,
                p.number,
                p.port_guid,
                state_name(&p.state)
            )
        })
        .collect();
    if ports.is_empty() {
        "none".to_string()
    } else {
        ports.join(", ")
    }
}

const DIFFERENT_PRIORITIES: &str = "the ports want different opensm priorities, which \
     /etc/sysconfig/opensm cannot express (one PRIORITY for all): one opensm@<GUID> unit per \
     port instead";

impl SubnetManager {
    fn skip(&mut self, plan: &mut Plan, placement: &str, fabric: &'static str) {
        plan.note(format!("subnet manager: {placement}"));
        self.fabric = Some(fabric);
        self.ports.clear();
        self.record = Some(SubnetManagerRecord {
            placement: placement.to_string(),
            priorities: Vec::new(),
        });
    }

    /// The InfiniBand ports this step serves, keyed by port GUID, each with its priority
    /// (asked when not given) and its port as `live` shows it (ibstat; sysfs in a dry run
    /// without ibstat): the answers ports whose interface exists and is InfiniBand, their GUID
    /// read from the interface, then the ports `subnet_manager.priorities` names by GUID that
    /// `live` lists. No IPoIB interface is needed: an answers port whose interface does not
    /// exist stands for one of the GUID-named ports no interface claims, and more of those
    /// ports than GUID-named ones is an error naming the ports there are.
    fn ib_ports(
        cx: &mut Ctx<'_>,
        plan: &mut Plan,
        named: &[NetPort],
        live: &[Port],
    ) -> Result<Vec<(IbPort, Port)>, StepError> {
        let mut ports: Vec<(IbPort, Port)> = Vec::new();
        for p in named {
            let Some(rdma) = p.rdma.as_ref().filter(|r| r.is_ib()) else {
                continue;
            };
            let guid = rdma.guid().ok_or_else(|| {
                StepError::Failed(format!(
                    "{} ({}) has no port GUID: check `ibstat {} {}`",
                    p.answer.netdev,
                    rdma.label(),
                    rdma.info.ca,
                    rdma.info.number
                ))
            })?;
            let mut names = vec![p.answer.netdev.as_str()];
            if let Some(n) = &p.answer.persistent_name {
                names.push(n);
            }
            let priority = want::priority(cx, guid, &names)?;
            let port = live
                .iter()
                .find(|l| l.port_guid == guid)
                .unwrap_or(&rdma.info)
                .clone();
            ports.push((IbPort::new(p.name(), &port, priority), port));
        }
        let mut by_guid = 0;
        for guid in want::guid_keys(cx)? {
            if ports.iter().any(|(p, _)| p.served.guid == guid) {
                continue;
            }
            match live.iter().find(|l| l.port_guid == guid) {
                Some(l) if l.link_layer == LinkLayer::Infiniband => {
                    let priority = want::priority(cx, guid, &[])?;
                    let name = format!("{}/{}", l.ca, l.number);
                    ports.push((IbPort::new(&name, l, priority), l.clone()));
                    by_guid += 1;
                }
                Some(l) => {
                    plan.note(format!(
                        "subnet_manager.priorities names {guid}, {}/{}, an Ethernet (RoCE) \
                         port: it needs no subnet manager",
                        l.ca, l.number
                    ));
                }
                None => {
                    plan.note(format!(
                        "subnet_manager.priorities names {guid}, which is not a port of this \
                         host (InfiniBand ports here: {}): ignored",
                        ib_listing(live)
                    ));
                }
            }
        }
        let absent: Vec<&NetPort> = named.iter().filter(|p| p.rdma.is_none()).collect();
        if let Some(p) = absent.get(by_guid) {
            return Err(StepError::Failed(format!(
                "ports[{}].netdev: there is no network interface {}, so the subnet manager \
                 cannot tell its InfiniBand port; name the port by its GUID in \
                 subnet_manager.priorities (InfiniBand ports here: {})",
                p.index,
                p.answer.netdev,
                ib_listing(live)
            )));
        }
        for p in absent {
            plan.note(format!(
                "{} has no network interface yet: the subnet manager serves the ports \
                 subnet_manager.priorities names by GUID",
                p.answer.netdev
            ));
        }
        Ok(ports)
    }

    /// Plan for the InfiniBand ports of a host that shows them: which are served from
    /// elsewhere, and opensm for the others.
    fn plan_ports(
        &mut self,
        cx: &mut Ctx<'_>,
        plan: &mut Plan,
        distro: Distro,
        mut ports: Vec<(IbPort, Port)>,
    ) -> Result<(), StepError> {
        let prios: Vec<Priority> = ports
            .iter()
            .map(|(p, _)| Priority::Known(p.priority))
            .collect();
        let launch = decide::launch(distro, &prios);
        if launch == Launch::Units && distro == Distro::Rhel {
            plan.note(DIFFERENT_PRIORITIES);
        }
        let sysconfig_old = observe::sysconfig(cx)?;
        let configured = observe::sysconfig_guids(sysconfig_old.as_deref().unwrap_or_default());
        for (p, live) in ports.iter_mut() {
            if !observe::ours(cx, launch, &configured, p.served.guid)? {
                p.external = observe::external_sm(cx, plan, live)?;
            }
        }
        let ports: Vec<IbPort> = ports.into_iter().map(|(p, _)| p).collect();
        let managed: Vec<Managed> = ports
            .iter()
            .filter(|p| p.external.is_none())
            .map(|p| Managed {
                netdev: p.served.netdev.clone(),
                guid: PortGuid::Known(p.served.guid),
                priority: Priority::Known(p.priority),
            })
            .collect();
        let external: Vec<(&str, External)> = ports
            .iter()
            .filter_map(|p| Some((p.served.netdev.as_str(), p.external?)))
            .collect();
        let names: Vec<&str> = managed.iter().map(|m| m.netdev.as_str()).collect();
        let placement = decide::placement(&names, &external);
        for (netdev, sm) in &external {
            plan.note(format!(
                "a subnet manager already runs on the fabric of {netdev} ({sm}): none is started here for it"
            ));
        }
        self.record = Some(SubnetManagerRecord {
            placement,
            priorities: ports
                .iter()
                .filter(|p| p.external.is_none())
                .map(|p| (p.served.guid.to_string(), p.priority))
                .collect(),
        });
        self.ports = ports.into_iter().map(|p| p.served).collect();
        plan_service(cx, plan, distro, launch, sysconfig_old, &managed)
    }

    /// A dry run on a host with no RDMA device: plan from the answers, with what only a real
    /// run learns (the port GUIDs, priorities keyed by them) as placeholders.
    fn plan_from_answers(
        &mut self,
        cx: &mut Ctx<'_>,
        plan: &mut Plan,
        fabric: Fabric,
    ) -> Result<(), StepError> {
        if fabric == Fabric::Auto {
            plan.note(if want::has_section(cx) {
                "fabric is auto: the ports' link layer decides (InfiniBand needs a subnet \
                 manager, RoCE none), and this host shows no RDMA port yet; the answers have \
                 a subnet_manager section, so this is the plan for InfiniBand ports"
            } else {
                "fabric is auto: the ports' link layer decides (InfiniBand needs a subnet \
                 manager, RoCE none), and this host shows no RDMA port yet; this is what a \
                 real run does if the ports are InfiniBand (nothing if they are RoCE)"
            });
            if !want::run_on_host_given(cx)? {
                self.skip(plan, NOT_HERE, "infiniband");
                return Ok(());
            }
        }
        let answered = want::answered_ports(cx)?;
        let (distro, _) = distro(cx)?;
        let mut managed = Vec::new();
        for p in &answered {
            let guid = plan.learn(&format!("port GUID of {}", p.netdev));
            managed.push(Managed {
                netdev: p.name().to_string(),
                guid: PortGuid::Learned(guid),
                priority: want::planned_priority(cx, plan, p)?,
            });
        }
        plan.note(
            "whether a subnet manager already answers on a port's fabric shows once the port \
             is up: a real run starts none for such a port",
        );
        let prios: Vec<Priority> = managed.iter().map(|m| m.priority.clone()).collect();
        let launch = decide::launch(distro, &prios);
        if launch == Launch::Units && distro == Distro::Rhel {
            plan.note(
                "one opensm@<GUID> unit per port, unless a real run finds that the ports share \
                 one priority (then /etc/sysconfig/opensm)",
            );
        }
        let sysconfig_old = observe::sysconfig(cx)?;
        plan_service(cx, plan, distro, launch, sysconfig_old, &managed)
    }

    fn record(&self, cx: &mut Ctx<'_>) {
        if let Some(f) = self.fabric {
            cx.facts.fabric = Some(f.to_string());
        }
        if let Some(p) = &self.port_facts {
            cx.facts.ports = p.clone();
        }
        cx.sheet.subnet_manager = Some(self.record.clone().unwrap_or_default());
    }
}

/// The opensm files and services for the `managed` ports: observed, then decided.
fn plan_service(
    cx: &mut Ctx<'_>,
    plan: &mut Plan,
    distro: Distro,
    launch: Launch,
    sysconfig_old: Option<String>,
    managed: &[Managed],
) -> Result<(), StepError> {
    if managed.is_empty() {
        return Ok(());
    }
    let opensm = match cx.host.which("opensm") {
        Some(p) => p.display().to_string(),
        None if cx.options.dry_run => {
            plan.note("opensm is not installed yet (preflight installs it)");
            "/usr/sbin/opensm".to_string()
        }
        None => {
            return Err(StepError::Failed(format!(
                "opensm is not installed: {}",
                distro.install_hint(&["opensm"])
            )))
        }
    };
    let seen = observe::seen(cx, launch, sysconfig_old, managed)?;
    plan.actions
        .extend(decide::actions(managed, &seen, &opensm)?);
    Ok(())
}

impl Step for SubnetManager {
    fn name(&self) -> StepName {
        StepName::SubnetManager
    }

    fn plan(&mut self, cx: &mut Ctx<'_>) -> Result<Plan, StepError> {
        let mut plan = Plan::new(StepName::SubnetManager);
        *self = SubnetManager {
            wait: self.wait,
            interval: self.interval,
            ..SubnetManager::default()
        };
        let fabric = want::fabric(cx)?;
        if fabric == Fabric::Roce {
            self.skip(&mut plan, NOT_NEEDED, "roce");
            return Ok(plan);
        }
        // On an InfiniBand fabric the question comes first; with "auto" only once a port
        // turns out to be InfiniBand (nobody is asked about opensm on RoCE).
        let asked_first = fabric == Fabric::Infiniband;
        if asked_first && !want::run_on_host(cx)? {
            self.skip(&mut plan, NOT_HERE, "infiniband");
            return Ok(plan);
        }
        if cx.options.dry_run && observe::no_rdma_device(cx)? && !observe::ibstat_shows_ports(cx)? {
            self.plan_from_answers(cx, &mut plan, fabric)?;
            return Ok(plan);
        }
        let named = interface_ports(cx, fabric.as_str())?;
        self.port_facts = port_facts(&named);
        let any_ib = named
            .iter()
            .any(|p| p.rdma.as_ref().is_some_and(RdmaPort::is_ib));
        // A port without an interface may be InfiniBand: found by GUID below.
        let absent = named.iter().any(|p| p.rdma.is_none());
        if !any_ib && !absent {
            self.skip(&mut plan, NOT_NEEDED, "roce");
            return Ok(plan);
        }
        if !asked_first && !want::run_on_host(cx)? {
            self.skip(&mut plan, NOT_HERE, "infiniband");
            return Ok(plan);
        }
        self.fabric = Some("infiniband");
        // A dry run before preflight installed infiniband-diags reads the ports from sysfs.
        let live = if cx.planning_without("ibstat") {
            rdma_ports(cx)?.into_iter().map(|p| p.info).collect()
        } else {
            observe::ibstat_ports(cx)?
        };
        let (distro, _) = distro(cx)?;
        let ports = Self::ib_ports(cx, &mut plan, &named, &live)?;
        self.plan_ports(cx, &mut plan, distro, ports)?;
        Ok(plan)
    }

    fn verify(&mut self, cx: &mut Ctx<'_>) -> Result<(), StepError> {
        if !self.ports.is_empty() {
            let view: &Ctx<'_> = cx;
            let mut last = Vec::new();
            let healthy = poll_until(view.host, Wait::new(self.wait, self.interval), || {
                let lagging = decide::lagging(&self.ports, &observe::ibstat_ports(view)?);
                if lagging.is_empty() {
                    return Ok(Some(()));
                }
                view.progress.message(&format!(
                    "waiting for {} port(s) to become Active",
                    lagging.len()
                ));
                last = lagging;
                Ok(None)
            })?;
            if healthy.is_none() {
                let cause = Cause::of(&last, cx.facts.selinux.as_deref() == Some("Enforcing"));
                let list: Vec<String> = last.iter().map(ToString::to_string).collect();
                return Err(StepError::Failed(format!(
                    "InfiniBand port(s) not Active after {}s:\n    - {}\n  {cause}",
                    self.wait.as_secs(),
                    list.join("\n    - ")
                )));
            }
        }
        self.record(cx);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
