//! What the operator wants of the subnet-manager step, and the only place it asks: the
//! fabric, whether opensm runs on this host, the ports (from the answers when the host cannot
//! show them yet; the ports named by GUID in `subnet_manager.priorities`) and each port's
//! opensm priority.

use super::decide::Priority;
use crate::settings::{Fabric, Netdev, PortKey};
use crate::steps::network::fabric_answer;
use crate::steps::parse::ibstat::Guid;
use crate::steps::{Ctx, Plan, StepError};

/// The fabric answer, typed.
pub fn fabric(cx: &mut Ctx<'_>) -> Result<Fabric, StepError> {
    fabric_answer(cx)?.parse().map_err(StepError::Failed)
}

const RUN_ON_HOST: &str =
    "Run the InfiniBand subnet manager (opensm) on this host where the fabric has none?";

/// Whether opensm runs on this host where the fabric has none.
pub fn run_on_host(cx: &mut Ctx<'_>) -> Result<bool, StepError> {
    Ok(cx
        .ask
        .want_yes("subnet_manager.run_on_host", RUN_ON_HOST, true, |a| {
            &mut a.subnet_manager_mut().run_on_host
        })?)
}

/// `subnet_manager.run_on_host` as given, without asking (a real run asks only once a port
/// turns out to be InfiniBand): the question's default when absent.
pub fn run_on_host_given(cx: &Ctx<'_>) -> Result<bool, StepError> {
    cx.ask.check_refused("subnet_manager.run_on_host")?;
    Ok(cx
        .ask
        .answers()
        .subnet_manager
        .as_ref()
        .and_then(|m| m.run_on_host)
        .unwrap_or(true))
}

/// Whether the answers have a `subnet_manager` section.
pub fn has_section(cx: &Ctx<'_>) -> bool {
    cx.ask.answers().subnet_manager.is_some()
}

fn priorities(cx: &Ctx<'_>) -> Result<Vec<(PortKey, u8)>, StepError> {
    cx.ask.check_refused("subnet_manager.priorities")?;
    Ok(cx
        .ask
        .answers()
        .subnet_manager
        .as_ref()
        .and_then(|m| m.priorities.clone())
        .unwrap_or_default()
        .into_iter()
        .collect())
}

/// The port GUIDs `subnet_manager.priorities` names (its keys that are GUIDs), in key order:
/// the ports this step serves even where no interface shows them.
pub fn guid_keys(cx: &Ctx<'_>) -> Result<Vec<Guid>, StepError> {
    Ok(priorities(cx)?
        .into_iter()
        .filter_map(|(k, _)| match k {
            PortKey::Guid(g) => g.as_str().parse::<Guid>().ok(),
            PortKey::Netdev(_) => None,
        })
        .collect())
}

/// The opensm priority of the port with this GUID (known by any of `names`): from
/// `subnet_manager.priorities` by GUID or netdev, else asked (0, opensm's default, offered).
pub fn priority(cx: &mut Ctx<'_>, guid: Guid, names: &[&str]) -> Result<u8, StepError> {
    let key = format!("subnet_manager.priorities.{guid}");
    let given = priorities(cx)?.into_iter().find_map(|(k, p)| {
        let mine = match k {
            PortKey::Guid(g) => g.as_str().parse::<Guid>().ok() == Some(guid),
            PortKey::Netdev(n) => names.contains(&n.as_str()),
        };
        mine.then_some(p)
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

/// A port as the answers name it, for planning before the host can show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnsweredPort {
    /// `ports[i].netdev`.
    pub netdev: Netdev,
    /// `ports[i].persistent_name`, the name it will carry.
    pub persistent_name: Option<Netdev>,
}

impl AnsweredPort {
    /// The name the port is known by once configured.
    pub fn name(&self) -> &str {
        self.persistent_name
            .as_ref()
            .unwrap_or(&self.netdev)
            .as_str()
    }
}

/// The ports the answers name; with none given, the first one is asked for (as the network
/// step would on a host that shows no RDMA port).
pub fn answered_ports(cx: &mut Ctx<'_>) -> Result<Vec<AnsweredPort>, StepError> {
    cx.ask.check_refused("ports")?;
    let given = cx.ask.answers().ports.clone().unwrap_or_default();
    if given.iter().all(|p| p.netdev.is_none()) {
        let netdev = cx.ask.want(
            "ports[0].netdev",
            "Network interface of iSER port 1 (RDMA ports: no RDMA ports found)",
            None,
            |a| &mut a.port_mut(0).netdev,
        )?;
        return Ok(vec![AnsweredPort {
            netdev,
            persistent_name: None,
        }]);
    }
    Ok(given
        .into_iter()
        .filter_map(|p| {
            Some(AnsweredPort {
                netdev: p.netdev?,
                persistent_name: p.persistent_name,
            })
        })
        .collect())
}

/// The priority of an answered port whose GUID only a real run learns: known when the
/// answers key it by netdev, or when nothing is keyed by GUID and nobody would be asked
/// (opensm's default 0); otherwise a placeholder naming the GUID-keyed answers.
pub fn planned_priority(
    cx: &Ctx<'_>,
    plan: &mut Plan,
    port: &AnsweredPort,
) -> Result<Priority, StepError> {
    let all = priorities(cx)?;
    let names = [Some(&port.netdev), port.persistent_name.as_ref()];
    let by_name = all.iter().find_map(|(k, p)| match k {
        PortKey::Netdev(n) if names.contains(&Some(n)) => Some(*p),
        _ => None,
    });
    if let Some(p) = by_name {
        return Ok(Priority::Known(p));
    }
    let mut by_guid: Vec<u8> = all
        .iter()
        .filter_map(|(k, p)| matches!(k, PortKey::Guid(_)).then_some(*p))
        .collect();
    by_guid.sort_unstable();
    by_guid.dedup();
    let name = port.name();
    if by_guid.is_empty() {
        if cx.ask.interactive() {
            return Ok(Priority::Learned(plan.learn(&format!(
                "opensm priority of {name}, asked once its port GUID is known"
            ))));
        }
        return Ok(Priority::Known(0));
    }
    let values: Vec<String> = by_guid.iter().map(u8::to_string).collect();
    let other = if cx.ask.interactive() { "asked" } else { "0" };
    Ok(Priority::Learned(plan.learn(&format!(
        "opensm priority of {name}: {} by its port GUID, else {other}",
        values.join(" or ")
    ))))
}
