//! The network step: the address of every iSER port, made persistent with the distro's own
//! network stack, then every target portal pinged from the port whose subnet holds it.
//!
//! Contract:
//! - Each answers port (`ports[].netdev`) is mapped to its RDMA port before anything is
//!   planned: an IPoIB interface by the port GUID in the LAST 8 bytes of its 20-byte address,
//!   an Ethernet netdev (RoCE) by `gid_attrs/ndevs/0`, the device's `parent`, `rdma link show`
//!   or the EUI-64 of its MAC. A netdev with no RDMA port stops the step, naming the ports
//!   there are.
//! - Files come from `templates/` with validated values only, in the distro's own format:
//!   NetworkManager keyfile (RHEL 9+, and SLES when NetworkManager manages the ports), ifcfg
//!   (RHEL 8, or network-scripts), wicked ifcfg (SLES), netplan (Ubuntu), ifupdown (Debian).
//! - A port whose file and live state (address, up, MTU, IPoIB mode) already match plans
//!   nothing; a host where every port matches gets an empty plan.
//! - Connected mode is refused where the driver cannot do it (Enhanced IPoIB, ConnectX-4 and
//!   newer on mlx5), and a datagram MTU above 4092 is refused; on RoCE `ipoib_mode` is
//!   ignored with a note.
//! - After the changes, a task pings every target portal from its own port, concurrently and
//!   within a time bound; a portal that does not answer is named in the failure. Verify
//!   re-probes the ports and fills the facts and the worksheet.
//! - A dry run on a host that is not prepared yet (no RDMA device, ports that do not exist,
//!   the stack's tool not installed) plans from the answers: the files in the stack preflight
//!   would install, with placeholders for what only the device tells (RDMA device and port,
//!   GUID, link layer when the fabric is `auto`), and the ping of the answers' portals.
//!
//! The phases live in their own files: [`want`] (the only questions), [`observe`] (the only
//! IO), [`decide`] (pure: differences and actions), [`files`] (rendering), [`reach`] (pings).

pub mod decide;
pub mod files;
pub mod observe;
pub mod reach;
pub mod want;

#[cfg(test)]
pub(crate) mod testkit;
#[cfg(test)]
mod tests;

use std::path::Path;
use std::time::Duration;

use crate::settings::{HostAddr, IpoibMode, Netdev};
use crate::steps::facts::PortFact;
use crate::steps::parse::netlink::Link;
use crate::steps::{Action, Cmd, CmdOutput, Ctx, Plan, Step, StepError, StepName};
use crate::worksheets::PortRecord;

use decide::{
    check_mode, choose_stack, interfaces_source, live_differences, port_actions, take_ups,
    udev_rules_file, Difference, PortChange,
};
use files::{port_file, udev_rule, Identity, Stack, INTERFACES, UDEV_RULES};
pub use observe::{
    distro, inventory, links, rdma_port_of, rdma_ports, state_name, systemctl_is, RdmaPort,
};
use observe::{enhanced_ipoib, live_mode, stack_tools};
use reach::{local_note, logged_in_sessions, ping_all, probes, reached_by_sessions, Probe};
pub use want::{chosen_ports, fabric_answer, interface_ports, ChosenPort, NetPort, PortAnswer};
use want::{resolve_ports, want_mode};

/// The step implementation.
pub fn step() -> Box<dyn Step> {
    Box::new(Network::default())
}

/// The step's own tasks (the `Action::Task` id is converted here only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Task {
    /// Bring every port up at once ([`take_ups`]).
    Up,
    /// Wait for the ports, then ping every portal from its port.
    Reach,
}

impl Task {
    const ALL: [Task; 2] = [Task::Up, Task::Reach];

    fn id(self) -> &'static str {
        match self {
            Task::Up => "up",
            Task::Reach => "reach",
        }
    }

    fn from_id(id: &str) -> Option<Task> {
        Task::ALL.into_iter().find(|t| t.id() == id)
    }
}

/// Run `ups` at once; the first that failed (in the plan's order) fails the step, naming the
/// others that failed too.
fn up_all(cx: &Ctx<'_>, ups: &[Cmd]) -> Result<(), StepError> {
    let outs = crate::steps::run_at_once(cx.host, ups)?;
    let failed: Vec<(&Cmd, CmdOutput)> = ups
        .iter()
        .zip(outs)
        .filter(|(_, out)| !out.success())
        .collect();
    let Some((cmd, out)) = failed.first() else {
        return Ok(());
    };
    let also = (failed.len() > 1).then(|| {
        let rest: Vec<String> = failed[1..].iter().map(|(c, _)| format!("`{c}`")).collect();
        format!("{} failed as well", rest.join(", "))
    });
    Err(StepError::command(cmd, out, also))
}

/// The network step.
#[derive(Debug)]
pub struct Network {
    ports: Vec<NetPort>,
    modes: Vec<Option<IpoibMode>>,
    /// The commands of [`Task::Up`], planned.
    ups: Vec<Cmd>,
    pinged: bool,
    /// How long each portal may take to answer.
    pub ping_bound: Duration,
    /// Pause between ping attempts.
    pub ping_interval: Duration,
}

impl Default for Network {
    fn default() -> Self {
        Network {
            ports: Vec::new(),
            modes: Vec::new(),
            ups: Vec::new(),
            pinged: false,
            ping_bound: Duration::from_secs(20),
            ping_interval: Duration::from_secs(1),
        }
    }
}

impl Network {
    /// The IPoIB mode of each port: observed (Enhanced IPoIB, the mode now), asked, checked.
    fn modes(&mut self, cx: &mut Ctx<'_>, plan: &mut Plan) -> Result<(), StepError> {
        self.modes.clear();
        for port in &self.ports {
            let i = port.index;
            if port.ib == Some(false) {
                if let Some(m) = &port.answer.ipoib_mode {
                    plan.note(format!(
                        "ports[{i}].ipoib_mode ({m}) is ignored: {} is RoCE, which has no IPoIB",
                        port.answer.netdev
                    ));
                }
                self.modes.push(None);
                continue;
            }
            let enhanced = match (&port.rdma, &port.link) {
                (Some(r), Some(l)) => enhanced_ipoib(cx, r, l)?,
                _ => false,
            };
            let current = match &port.link {
                Some(l) => live_mode(cx, l)?,
                None => None,
            };
            let mode = want_mode(cx, port, enhanced, current.as_deref())?;
            if port.ib.is_none() {
                plan.note(format!(
                    "ports[{i}].ipoib_mode ({mode}) applies if {} turns out to be InfiniBand; \
                     on RoCE a real run leaves it out",
                    port.answer.netdev
                ));
            }
            check_mode(port, mode, enhanced)?;
            self.modes.push(Some(mode));
        }
        Ok(())
    }

    /// Persistent names first: the rest of the plan configures the ports by them.
    fn plan_names(&self, cx: &Ctx<'_>, links: &[Link], plan: &mut Plan) -> Result<(), StepError> {
        let mut renames = Vec::new();
        let mut rules = Vec::new();
        for p in &self.ports {
            let Some(name) = &p.answer.persistent_name else {
                continue;
            };
            let now = p
                .link
                .as_ref()
                .map_or(p.answer.netdev.as_str(), |l| &l.name);
            if let Some(other) = links.iter().find(|l| l.name == *name && l.name != now) {
                return Err(StepError::Failed(format!(
                    "ports[{}].persistent_name: {name} is already the name of another interface ({})",
                    p.index,
                    other.address.as_deref().unwrap_or("no address")
                )));
            }
            rules.push(udev_rule(p, name, plan)?);
            if now != name {
                renames.push((now.to_string(), name.clone()));
            }
        }
        if !rules.is_empty() {
            let text = udev_rules_file(&rules);
            let old = cx.host.read(Path::new(UDEV_RULES))?;
            if old.as_deref() != Some(text.as_str()) {
                plan.push(Action::write(
                    UDEV_RULES,
                    old,
                    text,
                    0o644,
                    "pin the iSER port names across reboots",
                ));
            }
        }
        for (from, to) in &renames {
            plan.push(Action::run(
                Cmd::change(["ip", "link", "set", "dev", from, "down"]),
                format!("a link must be down to be renamed ({from} -> {to})"),
            ));
            plan.push(Action::run(
                Cmd::change(["ip", "link", "set", "dev", from, "name", to]),
                "give the port its persistent name now, not only from the next boot",
            ));
        }
        Ok(())
    }

    /// Each port's file and live state, weighed against what is wanted.
    fn plan_ports(
        &mut self,
        cx: &Ctx<'_>,
        stack: Stack,
        links: &[Link],
        plan: &mut Plan,
    ) -> Result<(), StepError> {
        if stack == Stack::Ifupdown {
            let old = cx.host.read(Path::new(INTERFACES))?;
            if let Some(new) = interfaces_source(old.as_deref()) {
                plan.push(Action::write(
                    INTERFACES,
                    old,
                    new,
                    0o644,
                    "ifupdown must read the port files in /etc/network/interfaces.d",
                ));
            }
        }
        let mut netplan_apply = false;
        for (p, mode) in self.ports.iter().zip(&self.modes) {
            let id = Identity::of(p, stack, plan);
            let (path, new, fmode) = port_file(stack, p, &id, mode.map(IpoibMode::as_str))?;
            let old = cx.host.read(&path)?;
            let live = links.iter().find(|l| l.name == p.name());
            let diff = self.differences(cx, p, *mode, live)?;
            netplan_apply |= port_actions(
                plan,
                stack,
                PortChange {
                    name: p.name().to_string(),
                    path,
                    old,
                    new,
                    mode: fmode,
                    diff,
                    was_up: live.is_some_and(|l| l.is_up()),
                },
            );
        }
        let ups = take_ups(plan);
        if !ups.is_empty() {
            let each: Vec<String> = ups
                .iter()
                .map(|(c, why)| format!("`{c}` ({why})"))
                .collect();
            plan.push(Action::task(
                Task::Up.id(),
                format!("bring the ports up at once: {}", each.join("; ")),
            ));
        }
        self.ups = ups.into_iter().map(|(c, _)| c).collect();
        if netplan_apply {
            plan.push(Action::run(
                Cmd::change(["netplan", "apply"]).timeout(Duration::from_secs(120)),
                "apply the netplan configuration now",
            ));
        }
        Ok(())
    }

    /// Observe the live IPoIB mode where it matters, then decide what differs.
    fn differences(
        &self,
        cx: &Ctx<'_>,
        p: &NetPort,
        mode: Option<IpoibMode>,
        live: Option<&Link>,
    ) -> Result<Vec<Difference>, StepError> {
        let live_mode = match live {
            Some(l) if mode.is_some() && p.is_ib() => live_mode(cx, l)?,
            _ => None,
        };
        Ok(live_differences(live, p, mode, live_mode.as_deref()))
    }

    /// The checks of reachability, from the answers' portals.
    fn probes(&self, cx: &Ctx<'_>, links: &[Link]) -> Vec<Probe> {
        probes(
            cx.ask.answers().target.portals.as_deref(),
            &self.ports,
            links,
        )
    }

    fn fill_records(&self, cx: &mut Ctx<'_>, links: &[Link]) {
        let mut facts = Vec::new();
        let mut records = Vec::new();
        for p in &self.ports {
            let link = links
                .iter()
                .find(|l| l.name == p.name())
                .or(p.link.as_ref());
            let rdma = p.rdma.as_ref();
            let guid = rdma.and_then(|r| r.guid()).map(|g| g.to_string());
            let (ll, word) = match p.ib {
                Some(true) => (Some("infiniband"), Some("InfiniBand")),
                Some(false) => (Some("ethernet"), Some("Ethernet")),
                None => (None, None),
            };
            facts.push(PortFact {
                netdev: p.name().to_string(),
                rdma_device: rdma.map(|r| r.info.ca.clone()),
                rdma_port: rdma.map(|r| u32::from(r.info.number)),
                guid: guid.clone(),
                link_layer: ll.map(str::to_string),
                address: p.answer.address.map(|a| a.to_string()).unwrap_or_default(),
            });
            records.push(PortRecord {
                netdev: Some(p.name().to_string()),
                rdma_device: rdma.map(|r| r.info.ca.clone()),
                rdma_port: rdma.map(|r| u32::from(r.info.number)),
                guid,
                hw_address: link.and_then(|l| l.address.clone()),
                link_layer: word.map(str::to_string),
                rate: rdma.and_then(|r| r.info.rate.as_ref().map(|r| r.describe())),
                state: rdma.map(|r| state_name(&r.info.state)),
                address: p.answer.address.map(|a| a.to_string()),
            });
        }
        cx.facts.ports = facts;
        cx.sheet.ports = records;
        let any_ib = self.ports.iter().any(NetPort::is_ib);
        cx.facts.fabric = Some(if any_ib { "infiniband" } else { "roce" }.into());
    }
}

impl Step for Network {
    fn name(&self) -> StepName {
        StepName::Network
    }

    fn plan(&mut self, cx: &mut Ctx<'_>) -> Result<Plan, StepError> {
        let mut plan = Plan::new(StepName::Network);
        self.pinged = false;
        let fabric = fabric_answer(cx)?;
        let dry = cx.options.dry_run;
        let (ports, links) = resolve_ports(cx, &fabric, true, dry)?;
        self.ports = ports;
        for p in self.ports.iter().filter(|p| p.rdma.is_none()) {
            plan.note(format!(
                "{} has no RDMA port on this host yet: its configuration is planned from the answers",
                p.answer.netdev
            ));
        }
        // With an array section the portals come from the array (the array step, later).
        if cx.ask.interactive() && cx.ask.answers().array.is_none() {
            // Asked here, not first in the sessions step, so this step can ping them.
            let ports: Vec<(Netdev, HostAddr)> = self
                .ports
                .iter()
                .filter_map(|p| Some((p.name().parse().ok()?, p.answer.address?)))
                .collect();
            crate::steps::sessions::portal_answers(cx, &ports)?;
        }
        self.modes(cx, &mut plan)?;
        let (distro, major) = distro(cx)?;
        let tools = stack_tools(cx, distro)?;
        let names: Vec<&str> = self.ports.iter().map(NetPort::name).collect();
        let stack = choose_stack(distro, major, &tools, &names)?;
        plan.note(format!(
            "addresses are kept with {} ({distro:?} {major})",
            stack.describe()
        ));
        self.plan_names(cx, &links, &mut plan)?;
        self.plan_ports(cx, stack, &links, &mut plan)?;
        if !plan.is_empty() {
            let probes = self.probes(cx, &links);
            if let Some(n) = local_note(&probes) {
                plan.note(n);
            }
            let n = probes.len();
            plan.push(Action::task(
                Task::Reach.id(),
                format!(
                    "wait for the ports, then ping each of the {n} target portal(s) from the \
                     port whose subnet holds it (`ping -c 1 -W 2 -I <netdev> <portal>`, all at \
                     once, each within {}s)",
                    self.ping_bound.as_secs()
                ),
            ));
        }
        Ok(plan)
    }

    fn task(&mut self, cx: &mut Ctx<'_>, id: &str) -> Result<(), StepError> {
        match Task::from_id(id) {
            Some(Task::Up) => {
                cx.progress
                    .message(&format!("bringing {} ports up", self.ups.len()));
                up_all(cx, &self.ups)
            }
            Some(Task::Reach) => {
                let links = links(cx)?;
                let probes = self.probes(cx, &links);
                cx.progress
                    .message(&format!("pinging {} target portal(s)", probes.len()));
                ping_all(cx.host, &probes, self.ping_bound, self.ping_interval)?;
                self.pinged = true;
                Ok(())
            }
            None => Err(StepError::Failed(format!(
                "internal: no task {id:?} in this step"
            ))),
        }
    }

    fn verify(&mut self, cx: &mut Ctx<'_>) -> Result<(), StepError> {
        let links = links(cx)?;
        let mut problems = Vec::new();
        for (p, mode) in self.ports.iter().zip(&self.modes) {
            let live = links.iter().find(|l| l.name == p.name());
            let diff = self.differences(cx, p, *mode, live)?;
            let connected = Difference::Mode {
                name: p.name().to_string(),
                want: IpoibMode::Connected,
            };
            if diff.contains(&connected) {
                problems.push(format!(
                    "{}: connected mode did not take; the driver may be datagram-only \
                     (Enhanced IPoIB): use ipoib_mode \"datagram\"",
                    p.name()
                ));
            }
            problems.extend(diff.iter().map(ToString::to_string));
        }
        self.fill_records(cx, &links);
        if !problems.is_empty() {
            return Err(StepError::Failed(format!(
                "the ports are not as configured:\n    - {}",
                problems.join("\n    - ")
            )));
        }
        let probes = self.probes(cx, &links);
        if let Some(n) = local_note(&probes) {
            cx.sheet.note(format!("network: {n}"));
        }
        if probes.is_empty() {
            cx.sheet
                .note("network: no target portals given yet; their reachability was not checked");
        } else if !self.pinged {
            // A portal a logged-in session reaches from the port is proven by that session.
            let sessions = logged_in_sessions(cx.host)?;
            let proven = reached_by_sessions(&probes, &sessions);
            let rest: Vec<Probe> = probes
                .into_iter()
                .zip(proven)
                .filter_map(|(p, proven)| (!proven).then_some(p))
                .collect();
            if !rest.is_empty() {
                ping_all(cx.host, &rest, self.ping_bound, self.ping_interval)?;
            }
        }
        Ok(())
    }
}
