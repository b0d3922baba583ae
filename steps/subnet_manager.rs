//! The subnet-manager step: an InfiniBand fabric needs a subnet manager, even on a cable from
//! the host straight to the array; RoCE needs none.
//!
//! Contract:
//! - Skipped, with the reason on the worksheet, on RoCE ports and when
//!   `subnet_manager.run_on_host` is false.
//! - Per InfiniBand port (each host port is usually its own fabric): a subnet manager already
//!   answering there (port Active with a non-zero SM lid in `ibstat`, confirmed by `sminfo`
//!   when it is installed) is recorded and left alone; otherwise one opensm runs for that
//!   port GUID with its priority (0-15, from `subnet_manager.priorities` by GUID or netdev;
//!   0 by default as in opensm(8)), started now and at boot. Always with `-g`: without it
//!   opensm may bind an Ethernet port.
//! - RHEL: `/etc/sysconfig/opensm` (`GUIDS`, `PRIORITY`) and opensm.service; elsewhere, and on
//!   RHEL when the ports want different priorities (the sysconfig file has one), a templated
//!   unit `opensm@<GUID>.service` per port. Never rc.local.
//! - Verify polls the ports (bounded) until they are Active; a port left in Initializing on
//!   an SELinux-enforcing host gets the `manage_subnet` explanation and its fix.
//! - A host where all of it is in place gets an empty plan.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::settings::PortKey;
use crate::steps::facts::{Distro, PortFact};
use crate::steps::network::{chosen_ports, distro, fabric_answer, state_name, systemctl_is};
use crate::steps::parse::ibstat::{parse_ibstat, Guid, PortState};
use crate::steps::templates::render;
use crate::steps::{Action, Cmd, Ctx, Plan, Step, StepError, StepName};
use crate::worksheets::SubnetManagerRecord;

/// The step implementation.
pub fn step() -> Box<dyn Step> {
    Box::new(SubnetManager::default())
}

const UNIT: &str = "/etc/systemd/system/opensm@.service";
const SYSCONFIG: &str = "/etc/sysconfig/opensm";

fn env_path(guid: Guid) -> String {
    format!("/etc/opensm/opensm-{guid}.env")
}

fn instance(guid: Guid) -> String {
    format!("opensm@{guid}.service")
}

/// How opensm is started at boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Launch {
    /// RHEL's opensm.service reading /etc/sysconfig/opensm.
    Sysconfig,
    /// The templated unit, one instance per port GUID.
    Units,
}

/// An InfiniBand port the step looks after.
#[derive(Debug, Clone)]
struct IbPort {
    netdev: String,
    ca: String,
    number: u8,
    guid: Guid,
    priority: u8,
    /// `Some(lid)`: a subnet manager elsewhere on the fabric serves this port.
    external: Option<u32>,
}

/// The subnet-manager step.
#[derive(Debug)]
pub struct SubnetManager {
    ports: Vec<IbPort>,
    record: Option<SubnetManagerRecord>,
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
            wait: Duration::from_secs(60),
            interval: Duration::from_secs(2),
        }
    }
}

/// `sminfo: sm lid 15 sm guid 0x10e0406d5aa0a0, activity count 26263191 priority 14 state 3
/// SMINFO_MASTER` -> 15.
fn sminfo_lid(text: &str) -> Option<u32> {
    let toks: Vec<&str> = text.split_whitespace().collect();
    toks.windows(3)
        .find(|w| w[0] == "sm" && w[1] == "lid")
        .and_then(|w| w[2].trim_end_matches(',').parse().ok())
}

/// `/etc/sysconfig/opensm` with its GUIDS and PRIORITY lines replaced by `block`; every other
/// line is kept.
fn edit_sysconfig(old: Option<&str>, block: &str) -> String {
    let marker = block.lines().next().unwrap_or_default();
    let mut out: String = old
        .unwrap_or_default()
        .lines()
        .filter(|l| {
            let t = l.trim_start();
            !(t.starts_with("GUIDS=") || t.starts_with("PRIORITY=") || *l == marker)
        })
        .map(|l| format!("{l}\n"))
        .collect();
    out.push_str(block);
    out
}

/// The GUIDs in the `GUIDS=` line of /etc/sysconfig/opensm.
fn sysconfig_guids(text: &str) -> Vec<Guid> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("GUIDS="))
        .flat_map(|v| {
            v.trim_matches(|c| c == '"' || c == '\'')
                .split_whitespace()
                .filter_map(|g| g.parse().ok())
                .collect::<Vec<Guid>>()
        })
        .collect()
}

fn priority(cx: &mut Ctx<'_>, guid: Guid, names: &[&str]) -> Result<u8, StepError> {
    let key = format!("subnet_manager.priorities.{guid}");
    cx.ask.check_refused("subnet_manager.priorities")?;
    let map = cx
        .ask
        .answers()
        .subnet_manager
        .as_ref()
        .and_then(|m| m.priorities.clone())
        .unwrap_or_default();
    let given = map.iter().find_map(|(k, p)| {
        let mine = match k {
            PortKey::Guid(g) => g.as_str().parse::<Guid>().ok() == Some(guid),
            PortKey::Netdev(n) => names.contains(&n.as_str()),
        };
        mine.then_some(*p)
    });
    if let Some(p) = given {
        return Ok(p);
    }
    let question = format!(
        "opensm priority for port {guid} ({}), 0 lowest (opensm's default) to 15 highest",
        names.join(", ")
    );
    let n = cx.ask.ask_number(&key, &question, Some(0), (0, 15))?;
    let p = u8::try_from(n).map_err(|_| {
        StepError::Failed(format!(
            "subnet_manager.priorities: {n} for {guid} is not a priority from 0 to 15"
        ))
    })?;
    if let Ok(k) = guid.to_string().parse() {
        cx.ask
            .answers_mut()
            .subnet_manager_mut()
            .priorities
            .get_or_insert_with(Default::default)
            .insert(PortKey::Guid(k), p);
    }
    Ok(p)
}

impl SubnetManager {
    fn skip(&mut self, cx: &mut Ctx<'_>, plan: &mut Plan, placement: &str, fabric: &str) {
        plan.note(format!("subnet manager: {placement}"));
        cx.facts.fabric = Some(fabric.to_string());
        self.ports.clear();
        self.record = Some(SubnetManagerRecord {
            placement: placement.to_string(),
            priorities: Vec::new(),
        });
    }

    /// Whether a subnet manager elsewhere answers on this port: its SM lid, or `None`.
    fn external_sm(
        cx: &Ctx<'_>,
        plan: &mut Plan,
        p: &crate::steps::parse::ibstat::Port,
    ) -> Result<Option<u32>, StepError> {
        // The port's own lid as SM lid is an opensm on this very port (this host's).
        if p.state != PortState::Active || p.sm_lid == 0 || p.sm_lid == p.base_lid {
            return Ok(None);
        }
        if cx.host.which("sminfo").is_none() {
            return Ok(Some(p.sm_lid));
        }
        let port = p.number.to_string();
        let out = cx.host.run(
            &Cmd::probe(["sminfo", "-C", &p.ca, "-P", &port]).timeout(Duration::from_secs(15)),
        )?;
        match sminfo_lid(&out.stdout).filter(|_| out.success()) {
            Some(lid) => Ok(Some(lid)),
            None => {
                plan.note(format!(
                    "{}/{} shows SM lid {}, but sminfo got no answer from it: that subnet \
                     manager may have stopped, so one will run here",
                    p.ca, p.number, p.sm_lid
                ));
                Ok(None)
            }
        }
    }

    fn ibstat_ports(cx: &Ctx<'_>) -> Result<Vec<crate::steps::parse::ibstat::Port>, StepError> {
        let cmd = Cmd::probe(["ibstat"]);
        let out = cx.host.run(&cmd)?;
        if !out.success() {
            return Err(StepError::command(
                &cmd,
                &out,
                Some("is the HCA driver (mlx5_ib, mlx4_ib) loaded?".into()),
            ));
        }
        let cas = parse_ibstat(&out.stdout)
            .map_err(|e| StepError::Failed(format!("reading the output of ibstat: {e}")))?;
        Ok(cas.into_iter().flat_map(|c| c.ports).collect())
    }
}

impl Step for SubnetManager {
    fn name(&self) -> StepName {
        StepName::SubnetManager
    }

    fn plan(&mut self, cx: &mut Ctx<'_>) -> Result<Plan, StepError> {
        let mut plan = Plan::new(StepName::SubnetManager);
        let fabric = fabric_answer(cx)?;
        if fabric == "roce" {
            self.skip(cx, &mut plan, "not needed (RoCE)", "roce");
            return Ok(plan);
        }
        let ask_run_on_host = |cx: &mut Ctx<'_>| {
            cx.ask.want_yes(
                "subnet_manager.run_on_host",
                "Run the InfiniBand subnet manager (opensm) on this host where the fabric has none?",
                true,
                |a| &mut a.subnet_manager_mut().run_on_host,
            )
        };
        // On an InfiniBand fabric the question comes first; with "auto" only once a port
        // turns out to be InfiniBand (nobody is asked about opensm on RoCE).
        let mut run_on_host = true;
        if fabric == "infiniband" {
            run_on_host = ask_run_on_host(cx)?;
        }
        if !run_on_host {
            self.skip(
                cx,
                &mut plan,
                "not on this host (run_on_host is false)",
                "infiniband",
            );
            return Ok(plan);
        }
        let (chosen, _) = chosen_ports(cx, &fabric, false)?;
        // The network step offers these as the defaults of its own questions.
        cx.facts.ports = chosen
            .iter()
            .map(|c| PortFact {
                netdev: c.answer.netdev.clone(),
                rdma_device: Some(c.rdma.info.ca.clone()),
                rdma_port: Some(u32::from(c.rdma.info.number)),
                guid: c.rdma.guid().map(|g| g.to_string()),
                link_layer: Some(
                    if c.rdma.is_ib() {
                        "infiniband"
                    } else {
                        "ethernet"
                    }
                    .into(),
                ),
                address: c.answer.address.map(|a| a.to_string()).unwrap_or_default(),
            })
            .collect();
        if !chosen.iter().any(|p| p.rdma.is_ib()) {
            self.skip(cx, &mut plan, "not needed (RoCE)", "roce");
            return Ok(plan);
        }
        if fabric != "infiniband" {
            run_on_host = ask_run_on_host(cx)?;
        }
        if !run_on_host {
            self.skip(
                cx,
                &mut plan,
                "not on this host (run_on_host is false)",
                "infiniband",
            );
            return Ok(plan);
        }
        cx.facts.fabric = Some("infiniband".into());
        let live = Self::ibstat_ports(cx)?;
        let (distro, _) = distro(cx)?;

        let mut ports = Vec::new();
        for c in chosen.iter().filter(|c| c.rdma.is_ib()) {
            let guid = c.rdma.guid().ok_or_else(|| {
                StepError::Failed(format!(
                    "{} ({}) has no port GUID: check `ibstat {} {}`",
                    c.answer.netdev,
                    c.rdma.label(),
                    c.rdma.info.ca,
                    c.rdma.info.number
                ))
            })?;
            let mut names = vec![c.answer.netdev.as_str()];
            if let Some(n) = &c.answer.persistent_name {
                names.push(n);
            }
            let priority = priority(cx, guid, &names)?;
            let p = live
                .iter()
                .find(|p| p.port_guid == guid)
                .unwrap_or(&c.rdma.info)
                .clone();
            ports.push((
                IbPort {
                    netdev: c.name().to_string(),
                    ca: p.ca.clone(),
                    number: p.number,
                    guid,
                    priority,
                    external: None,
                },
                p,
            ));
        }

        let prios: Vec<u8> = ports.iter().map(|(p, _)| p.priority).collect();
        let launch = if distro == Distro::Rhel && prios.windows(2).all(|w| w[0] == w[1]) {
            Launch::Sysconfig
        } else {
            if distro == Distro::Rhel {
                plan.note(
                    "the ports want different opensm priorities, which /etc/sysconfig/opensm \
                     cannot express (one PRIORITY for all): one opensm@<GUID> unit per port instead",
                );
            }
            Launch::Units
        };
        let sysconfig_old = cx.host.read(Path::new(SYSCONFIG))?;
        let configured = sysconfig_guids(sysconfig_old.as_deref().unwrap_or_default());
        for (p, live) in ports.iter_mut() {
            // A port this wizard already serves stays served, even when its opensm has become
            // the standby of a higher-priority one.
            let ours = match launch {
                Launch::Sysconfig => configured.contains(&p.guid),
                Launch::Units => systemctl_is(cx, "is-enabled", &instance(p.guid), "enabled")?,
            };
            if !ours {
                p.external = Self::external_sm(cx, &mut plan, live)?;
            }
        }
        let ports: Vec<IbPort> = ports.into_iter().map(|(p, _)| p).collect();
        let managed: Vec<&IbPort> = ports.iter().filter(|p| p.external.is_none()).collect();
        let external: Vec<&IbPort> = ports.iter().filter(|p| p.external.is_some()).collect();

        let lids = |ps: &[&IbPort]| {
            let mut l: Vec<String> = ps
                .iter()
                .filter_map(|p| p.external)
                .map(|l| l.to_string())
                .collect();
            l.dedup();
            l.join(", ")
        };
        let names = |ps: &[&IbPort]| {
            ps.iter()
                .map(|p| p.netdev.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let placement = match (managed.is_empty(), external.is_empty()) {
            (true, _) => format!("already on the fabric (SM lid {})", lids(&external)),
            (false, true) => "on this host".to_string(),
            (false, false) => format!(
                "on this host for {}; already on the fabric (SM lid {}) for {}",
                names(&managed),
                lids(&external),
                names(&external)
            ),
        };
        for p in &external {
            plan.note(format!(
                "a subnet manager already runs on the fabric of {} (SM lid {}): none is started here for it",
                p.netdev,
                p.external.unwrap_or_default()
            ));
        }
        self.record = Some(SubnetManagerRecord {
            placement,
            priorities: managed
                .iter()
                .map(|p| (p.guid.to_string(), p.priority))
                .collect(),
        });

        if !managed.is_empty() {
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
            let enable_now = |unit: &str| {
                Action::run(
                    Cmd::change(["systemctl", "enable", "--now", unit]),
                    "start opensm now and at every boot",
                )
            };
            match launch {
                Launch::Sysconfig => {
                    let guids: Vec<String> = managed.iter().map(|p| p.guid.to_string()).collect();
                    let block = render(
                        include_str!("../templates/opensm-sysconfig"),
                        &[
                            ("guids", &guids.join(" ")),
                            ("priority", &managed[0].priority.to_string()),
                        ],
                    )
                    .map_err(|e| StepError::Failed(format!("internal: {e}")))?;
                    let new = edit_sysconfig(sysconfig_old.as_deref(), &block);
                    let changed = sysconfig_old.as_deref() != Some(new.as_str());
                    let active = systemctl_is(cx, "is-active", "opensm.service", "active")?;
                    let enabled = systemctl_is(cx, "is-enabled", "opensm.service", "enabled")?;
                    if changed {
                        plan.push(Action::write(
                            SYSCONFIG,
                            sysconfig_old,
                            new,
                            0o644,
                            "one opensm per iSER port GUID, with its priority",
                        ));
                    }
                    if !active {
                        plan.push(enable_now("opensm.service"));
                    } else {
                        if !enabled {
                            plan.push(Action::run(
                                Cmd::change(["systemctl", "enable", "opensm.service"]),
                                "start opensm at every boot",
                            ));
                        }
                        if changed {
                            plan.push(Action::run(
                                Cmd::change(["systemctl", "restart", "opensm.service"]),
                                "opensm reads the new GUIDS and PRIORITY",
                            ));
                        }
                    }
                }
                Launch::Units => {
                    let unit = render(
                        include_str!("../templates/opensm@.service"),
                        &[("opensm", &opensm)],
                    )
                    .map_err(|e| StepError::Failed(format!("internal: {e}")))?;
                    let old = cx.host.read(Path::new(UNIT))?;
                    let unit_changed = old.as_deref() != Some(unit.as_str());
                    if unit_changed {
                        plan.push(Action::write(
                            UNIT,
                            old,
                            unit,
                            0o644,
                            "a templated opensm unit, one instance per port GUID (always -g)",
                        ));
                    }
                    // The packaged service starts opensm on ports of its own choosing; it
                    // would contend with the per-GUID instances.
                    let stock_on = systemctl_is(cx, "is-enabled", "opensm.service", "enabled")?
                        || systemctl_is(cx, "is-active", "opensm.service", "active")?;
                    if stock_on {
                        plan.push(Action::run(
                            Cmd::change(["systemctl", "disable", "--now", "opensm.service"]),
                            "the packaged opensm service would contend with the per-port instances",
                        ));
                    }
                    let mut starts = Vec::new();
                    for p in &managed {
                        let env = render(
                            include_str!("../templates/opensm-instance.env"),
                            &[
                                ("guid", &p.guid.to_string()),
                                ("priority", &p.priority.to_string()),
                            ],
                        )
                        .map_err(|e| StepError::Failed(format!("internal: {e}")))?;
                        let path = env_path(p.guid);
                        let old = cx.host.read(Path::new(&path))?;
                        let env_changed = old.as_deref() != Some(env.as_str());
                        if env_changed {
                            plan.push(Action::write(
                                &path,
                                old,
                                env,
                                0o644,
                                format!("priority {} for the opensm of {}", p.priority, p.netdev),
                            ));
                        }
                        let unit = instance(p.guid);
                        let active = systemctl_is(cx, "is-active", &unit, "active")?;
                        let enabled = systemctl_is(cx, "is-enabled", &unit, "enabled")?;
                        if !active {
                            starts.push(enable_now(&unit));
                        } else {
                            if !enabled {
                                starts.push(Action::run(
                                    Cmd::change(["systemctl", "enable", &unit]),
                                    "start opensm at every boot",
                                ));
                            }
                            if unit_changed || env_changed || stock_on {
                                starts.push(Action::run(
                                    Cmd::change(["systemctl", "restart", &unit]),
                                    "opensm takes the new settings",
                                ));
                            }
                        }
                    }
                    if unit_changed {
                        plan.push(Action::run(
                            Cmd::change(["systemctl", "daemon-reload"]),
                            "systemd reads the new unit",
                        ));
                    }
                    plan.actions.extend(starts);
                }
            }
        }
        self.ports = ports;
        Ok(plan)
    }

    fn verify(&mut self, cx: &mut Ctx<'_>) -> Result<(), StepError> {
        let record = self.record.clone().unwrap_or_default();
        if !self.ports.is_empty() {
            let deadline = Instant::now() + self.wait;
            let waiting = loop {
                let live = Self::ibstat_ports(cx)?;
                let waiting: Vec<(IbPort, PortState)> = self
                    .ports
                    .iter()
                    .filter_map(|p| {
                        let st = live
                            .iter()
                            .find(|l| l.port_guid == p.guid)
                            .map(|l| l.state.clone())
                            .unwrap_or(PortState::Other("missing".into()));
                        (st != PortState::Active).then(|| (p.clone(), st))
                    })
                    .collect();
                if waiting.is_empty() || Instant::now() + self.interval > deadline {
                    break waiting;
                }
                cx.progress.message(&format!(
                    "waiting for {} port(s) to become Active",
                    waiting.len()
                ));
                std::thread::sleep(self.interval);
            };
            if !waiting.is_empty() {
                let list: Vec<String> = waiting
                    .iter()
                    .map(|(p, s)| {
                        format!(
                            "{} ({}/{}, GUID {}): State: {}",
                            p.netdev,
                            p.ca,
                            p.number,
                            p.guid,
                            state_name(s)
                        )
                    })
                    .collect();
                let init = waiting.iter().any(|(_, s)| *s == PortState::Initializing);
                let enforcing = cx.facts.selinux.as_deref() == Some("Enforcing");
                let why = if init && enforcing {
                    "SELinux is enforcing, and ports that stay in Initializing while opensm runs \
                     are the sign of SELinux denying opensm `manage_subnet` on \
                     `infiniband_endport` (see `ausearch -m avc -ts recent | grep manage_subnet`). \
                     Fix: update selinux-policy, or allow it with a local module \
                     (`ausearch -m avc -c opensm --raw | audit2allow -M opensm-local && semodule -i \
                     opensm-local.pp`), then restart opensm"
                        .to_string()
                } else if init {
                    "the link is up but no subnet manager has configured the port: check that \
                     opensm runs (`systemctl status 'opensm*'`) and its log \
                     /var/log/opensm-<GUID>.log"
                        .to_string()
                } else {
                    "the port has no link: check the cable and the array port at the other end"
                        .to_string()
                };
                return Err(StepError::Failed(format!(
                    "InfiniBand port(s) not Active after {}s:\n    - {}\n  {why}",
                    self.wait.as_secs(),
                    list.join("\n    - ")
                )));
            }
        }
        cx.sheet.subnet_manager = Some(record);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::steps::fake::FakeHost;
    use crate::steps::network::testkit::*;
    use crate::steps::CmdOutput;

    const GUID_A: &str = "0x248a070300a80a80";
    const GUID_B: &str = "0x248a070300a80a81";

    /// `ibstat` for the two ports of [`ib_sysfs`].
    pub fn ibstat(state: &str, sm_lid: u32) -> CmdOutput {
        let phys = if state == "Down" { "Polling" } else { "LinkUp" };
        let mut text = String::new();
        for (ca, lid, guid) in [("mlx5_0", 3, GUID_A), ("mlx5_1", 4, GUID_B)] {
            text.push_str(&format!(
            "CA '{ca}'\n\tCA type: MT4119\n\tNumber of ports: 1\n\tFirmware version: 16.35.2000\n\
             \tHardware version: 0\n\tNode GUID: {guid}\n\tSystem image GUID: {guid}\n\tPort 1:\n\
             \t\tState: {state}\n\t\tPhysical state: {phys}\n\t\tRate: 100\n\t\tBase lid: {lid}\n\
             \t\tLMC: 0\n\t\tSM lid: {sm_lid}\n\t\tCapability mask: 0x2659e848\n\
             \t\tPort GUID: {guid}\n\t\tLink layer: InfiniBand\n"
        ));
        }
        CmdOutput::ok(text)
    }
    fn quick() -> SubnetManager {
        SubnetManager {
            wait: Duration::ZERO,
            interval: Duration::from_millis(1),
            ..SubnetManager::default()
        }
    }

    fn ib_host(state: &str, sm_lid: u32) -> FakeHost {
        let h = FakeHost::new();
        ib_sysfs(&h, state, sm_lid);
        h.allow(&IP, ip_out(&ib_links(false, "datagram")));
        h
    }

    fn with_priorities(p: serde_json::Value) -> serde_json::Value {
        let mut a = ib_answers(json!({}));
        a["subnet_manager"]["priorities"] = p;
        a
    }

    fn allow_is(h: &FakeHost, what: &str, unit: &str, answer: &str) {
        let code = if answer == "active" || answer == "enabled" {
            0
        } else {
            1
        };
        h.allow(
            &["systemctl", what, unit],
            CmdOutput::status(code, format!("{answer}\n"), ""),
        );
    }

    #[test]
    fn rhel_runs_one_opensm_per_guid_through_sysconfig_then_reruns_empty() {
        let h = ib_host("Initializing", 0);
        h.put_file(
            SYSCONFIG,
            "# Set GUIDS to the port GUIDs opensm should bind, one instance each\n#GUIDS=\"\"\n#PRIORITY=15\n",
        );
        h.expect(&["ibstat"], ibstat("Initializing", 0));
        h.allow(&["ibstat"], ibstat("Active", 3));
        h.expect(
            &["systemctl", "is-active", "opensm.service"],
            CmdOutput::status(3, "inactive\n", ""),
        );
        h.expect(
            &["systemctl", "is-enabled", "opensm.service"],
            CmdOutput::status(1, "disabled\n", ""),
        );
        h.expect(
            &["systemctl", "enable", "--now", "opensm.service"],
            CmdOutput::ok(""),
        );
        // GUID key for one port, netdev key for the other: both 15.
        let answers = with_priorities(json!({GUID_A: 15, "ib1": 15}));
        let mut run = Run::for_os(answers.clone(), RHEL9);
        let plan = run.full(&h, &mut quick()).unwrap();
        assert_eq!(
            steps_of(&plan),
            [
                "write /etc/sysconfig/opensm",
                "run systemctl enable --now opensm.service"
            ],
            "{}",
            plan.render()
        );
        golden(
            "subnet-manager/rhel-sysconfig-opensm",
            &written(&plan, SYSCONFIG),
        );
        let rec = run.sheet.subnet_manager.clone().unwrap();
        assert_eq!(rec.placement, "on this host");
        assert_eq!(
            rec.priorities,
            [(GUID_A.to_string(), 15), (GUID_B.to_string(), 15)]
        );
        assert_eq!(run.facts.fabric.as_deref(), Some("infiniband"));

        // Everything in place, opensm running and master on both ports: nothing to do.
        allow_is(&h, "is-active", "opensm.service", "active");
        allow_is(&h, "is-enabled", "opensm.service", "enabled");
        let mut run = Run::for_os(answers, RHEL9);
        let plan = run.with(&h, |cx| quick().plan(cx)).unwrap();
        assert!(plan.is_empty(), "{}", plan.render());
        h.finish();
    }

    #[test]
    fn debian_gets_a_templated_unit_per_guid_with_priorities_by_netdev_or_guid() {
        let h = ib_host("Initializing", 0);
        h.expect(&["ibstat"], ibstat("Initializing", 0));
        h.allow(&["ibstat"], ibstat("Active", 3));
        for g in [GUID_A, GUID_B] {
            let unit = format!("opensm@{g}.service");
            h.expect(
                &["systemctl", "is-enabled", &unit],
                CmdOutput::status(1, "disabled\n", ""),
            );
            h.expect(
                &["systemctl", "is-enabled", &unit],
                CmdOutput::status(1, "disabled\n", ""),
            );
            h.expect(
                &["systemctl", "is-active", &unit],
                CmdOutput::status(3, "inactive\n", ""),
            );
            h.expect(&["systemctl", "enable", "--now", &unit], CmdOutput::ok(""));
        }
        // The packaged service is enabled: it would bind ports of its own choosing.
        h.expect(
            &["systemctl", "is-enabled", "opensm.service"],
            CmdOutput::ok("enabled\n"),
        );
        h.expect(
            &["systemctl", "disable", "--now", "opensm.service"],
            CmdOutput::ok(""),
        );
        h.expect(&["systemctl", "daemon-reload"], CmdOutput::ok(""));
        let answers = with_priorities(json!({"ib0": 7, GUID_B: 3}));
        let mut run = Run::for_os(answers.clone(), DEBIAN);
        let plan = run.full(&h, &mut quick()).unwrap();
        assert_eq!(
            steps_of(&plan),
            [
                "write /etc/systemd/system/opensm@.service",
                "run systemctl disable --now opensm.service",
                "write /etc/opensm/opensm-0x248a070300a80a80.env",
                "write /etc/opensm/opensm-0x248a070300a80a81.env",
                "run systemctl daemon-reload",
                "run systemctl enable --now opensm@0x248a070300a80a80.service",
                "run systemctl enable --now opensm@0x248a070300a80a81.service",
            ],
            "{}",
            plan.render()
        );
        let unit = written(&plan, UNIT);
        golden("subnet-manager/opensm@.service", &unit);
        assert!(unit.contains("-g %i"), "{unit}");
        assert!(!unit.contains("rc.local"));
        golden(
            "subnet-manager/opensm-0x248a070300a80a80.env",
            &written(&plan, "/etc/opensm/opensm-0x248a070300a80a80.env"),
        );
        assert!(written(&plan, "/etc/opensm/opensm-0x248a070300a80a81.env")
            .contains("OPENSM_PRIORITY=3\n"));
        assert_eq!(
            run.sheet.subnet_manager.clone().unwrap().priorities,
            [(GUID_A.to_string(), 7), (GUID_B.to_string(), 3)]
        );

        // Rerun with the units enabled and running: nothing to do.
        for g in [GUID_A, GUID_B] {
            let unit = format!("opensm@{g}.service");
            allow_is(&h, "is-enabled", &unit, "enabled");
            allow_is(&h, "is-active", &unit, "active");
        }
        allow_is(&h, "is-enabled", "opensm.service", "disabled");
        allow_is(&h, "is-active", "opensm.service", "inactive");
        let mut run = Run::for_os(answers, DEBIAN);
        let plan = run.with(&h, |cx| quick().plan(cx)).unwrap();
        assert!(plan.is_empty(), "{}", plan.render());
        h.finish();
    }

    #[test]
    fn different_priorities_on_rhel_use_the_units_and_say_why() {
        let h = ib_host("Initializing", 0);
        h.allow(&["ibstat"], ibstat("Initializing", 0));
        for g in [GUID_A, GUID_B] {
            let unit = format!("opensm@{g}.service");
            allow_is(&h, "is-enabled", &unit, "disabled");
            allow_is(&h, "is-active", &unit, "inactive");
        }
        allow_is(&h, "is-enabled", "opensm.service", "disabled");
        allow_is(&h, "is-active", "opensm.service", "inactive");
        let mut run = Run::for_os(with_priorities(json!({GUID_A: 15, GUID_B: 1})), RHEL9);
        let plan = run.with(&h, |cx| quick().plan(cx)).unwrap();
        let text = plan.render();
        assert!(text.contains("one PRIORITY for all"), "{text}");
        assert!(text.contains("opensm@.service"), "{text}");
        assert!(!text.contains("/etc/sysconfig/opensm\n"), "{text}");
        h.finish();
    }

    #[test]
    fn a_subnet_manager_already_on_the_fabric_is_recorded_and_nothing_is_planned() {
        let h = ib_host("Active", 1);
        h.allow(&["ibstat"], ibstat("Active", 1));
        for (g, ca) in [(GUID_A, "mlx5_0"), (GUID_B, "mlx5_1")] {
            allow_is(&h, "is-enabled", &format!("opensm@{g}.service"), "disabled");
            h.expect(
                &["sminfo", "-C", ca, "-P", "1"],
                CmdOutput::ok("sminfo: sm lid 1 sm guid 0x10e0406d5aa0a0, activity count 26263191 priority 14 state 3 SMINFO_MASTER\n"),
            );
        }
        let mut run = Run::for_os(ib_answers(json!({})), DEBIAN);
        let plan = run.full(&h, &mut quick()).unwrap();
        assert!(plan.is_empty(), "{}", plan.render());
        assert!(plan
            .render()
            .contains("already runs on the fabric of ib0 (SM lid 1)"));
        let rec = run.sheet.subnet_manager.unwrap();
        assert_eq!(rec.placement, "already on the fabric (SM lid 1)");
        assert!(rec.priorities.is_empty());
        assert!(h.changes().is_empty());
        h.finish();
    }

    #[test]
    fn roce_ports_and_run_on_host_false_skip_with_the_reason() {
        // fabric "auto" on the soft-RoCE lab: link layer Ethernet, nothing to run.
        let h = lab_host();
        h.allow(&IP, ip_out(&lab_links(false)));
        let mut run = Run::for_os(lab_answers(), DEBIAN);
        let plan = run.full(&h, &mut quick()).unwrap();
        assert!(plan.is_empty(), "{}", plan.render());
        assert_eq!(
            run.sheet.subnet_manager.clone().unwrap().placement,
            "not needed (RoCE)"
        );
        assert_eq!(run.facts.fabric.as_deref(), Some("roce"));
        h.finish();

        // A person at the terminal is not asked about opensm once the ports are RoCE.
        let h = lab_host();
        h.allow(&IP, ip_out(&lab_links(false)));
        let mut run = Run::for_os(serde_json::Value::Null, DEBIAN);
        run.ask = crate::prompt::Asker::scripted(json!({}));
        assert!(run.full(&h, &mut quick()).unwrap().is_empty());
        let asked = run.ask.recorded();
        assert_eq!(asked["ports"][1]["netdev"], json!("vB"), "{asked}");
        assert!(asked.get("subnet_manager").is_none(), "{asked}");

        // fabric "roce": not even a probe.
        let h = FakeHost::new();
        let mut answers = lab_answers();
        answers["fabric"] = json!("roce");
        let mut run = Run::for_os(answers, DEBIAN);
        assert!(run.full(&h, &mut quick()).unwrap().is_empty());
        assert!(h.ran().is_empty(), "{:?}", h.ran());
        h.finish();

        let h = ib_host("Active", 1);
        let mut answers = ib_answers(json!({}));
        answers["subnet_manager"]["run_on_host"] = json!(false);
        let mut run = Run::for_os(answers, DEBIAN);
        assert!(run.full(&h, &mut quick()).unwrap().is_empty());
        assert_eq!(
            run.sheet.subnet_manager.unwrap().placement,
            "not on this host (run_on_host is false)"
        );
        h.finish();
    }

    #[test]
    fn ports_stuck_initializing_under_selinux_enforcing_get_the_manage_subnet_explanation() {
        let h = ib_host("Initializing", 0);
        h.allow(&["ibstat"], ibstat("Initializing", 0));
        h.put_file(
            SYSCONFIG,
            "# Set by iser-wizard: one opensm per iSER port GUID (opensm -g), started by opensm.service.\nGUIDS=\"0x248a070300a80a80 0x248a070300a80a81\"\nPRIORITY=0\n",
        );
        allow_is(&h, "is-active", "opensm.service", "active");
        allow_is(&h, "is-enabled", "opensm.service", "enabled");
        let mut run = Run::for_os(ib_answers(json!({})), RHEL9);
        run.facts.selinux = Some("Enforcing".into());
        let mut step = quick();
        let plan = run.with(&h, |cx| step.plan(cx)).unwrap();
        assert!(plan.is_empty(), "{}", plan.render());
        let err = run.with(&h, |cx| step.verify(cx)).unwrap_err().to_string();
        assert!(
            err.contains("ib0 (mlx5_0/1, GUID 0x248a070300a80a80): State: Initializing"),
            "{err}"
        );
        assert!(err.contains("manage_subnet"), "{err}");
        assert!(err.contains("infiniband_endport"), "{err}");
        assert!(err.contains("audit2allow"), "{err}");
        h.finish();
    }

    #[test]
    fn sysconfig_edits_keep_other_lines_and_sminfo_parses() {
        let block = "# Set by iser-wizard: x\nGUIDS=\"0x1\"\nPRIORITY=3\n";
        assert_eq!(
            edit_sysconfig(Some("# c\nGUIDS=\"0x2\"\nOTHER=1\nPRIORITY=15\n"), block),
            format!("# c\nOTHER=1\n{block}")
        );
        assert_eq!(edit_sysconfig(None, block), block);
        let once = edit_sysconfig(Some("A=1\n"), block);
        assert_eq!(edit_sysconfig(Some(&once), block), once);
        assert_eq!(
            sysconfig_guids("GUIDS=\"0x248a070300a80a80 0x248a070300a80a81\"\n"),
            [GUID_A.parse::<Guid>().unwrap(), GUID_B.parse().unwrap()]
        );
        assert_eq!(
            sminfo_lid("sminfo: sm lid 15 sm guid 0x10e0406d5aa0a0, activity count 26263191 priority 14 state 3 SMINFO_MASTER"),
            Some(15)
        );
        assert_eq!(sminfo_lid("ibwarn: query failed"), None);
    }
}
