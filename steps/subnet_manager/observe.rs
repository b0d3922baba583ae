//! What the subnet-manager step finds on the host, read-only: the InfiniBand ports as
//! `ibstat` shows them, whether a subnet manager elsewhere answers on a port (`sminfo`), the
//! opensm files and services this step manages. Nothing here changes the host.

use std::path::Path;
use std::time::Duration;

use super::decide::{
    env_path, instance, External, Instance, Launch, Managed, PortGuid, Seen, Service,
};
use super::decide::{SYSCONFIG, UNIT};
use crate::steps::network::systemctl_is;
use crate::steps::parse::ibstat::{parse_ibstat, Guid, Port, PortState};
use crate::steps::{Cmd, Ctx, Plan, StepError};

/// The subnet manager `sminfo` describes (`sminfo: sm lid 15 sm guid 0x10e0406d5aa0a0,
/// activity count 26263191 priority 14 state 3 SMINFO_MASTER`): its lid, and its port GUID and priority when printed
/// (sminfo prints the GUID without leading zeros; it is kept as ibstat prints GUIDs).
pub fn sminfo(text: &str) -> Option<External> {
    let toks: Vec<&str> = text
        .split_whitespace()
        .map(|t| t.trim_end_matches(','))
        .collect();
    let after = |a: &str, b: &str| {
        toks.windows(3)
            .find(|w| w[0] == a && w[1] == b)
            .map(|w| w[2])
    };
    let lid = after("sm", "lid")?.parse().ok()?;
    Some(External {
        lid,
        guid: after("sm", "guid").and_then(|g| g.parse::<Guid>().ok()),
        priority: toks
            .windows(2)
            .find(|w| w[0] == "priority")
            .and_then(|w| w[1].parse().ok()),
    })
}

/// The GUIDs in the `GUIDS=` line of /etc/sysconfig/opensm.
pub fn sysconfig_guids(text: &str) -> Vec<Guid> {
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

/// Whether the host has no RDMA device at all (a bare host, before drivers or soft-RoCE).
pub fn no_rdma_device(cx: &Ctx<'_>) -> Result<bool, StepError> {
    Ok(cx
        .host
        .list_dir(Path::new("/sys/class/infiniband"))?
        .is_empty())
}

/// Whether `ibstat` is installed and lists a port: the ports it shows are planned from even
/// where sysfs shows no RDMA device (a simulated fabric). A failing `ibstat` lists none.
pub fn ibstat_shows_ports(cx: &Ctx<'_>) -> Result<bool, StepError> {
    if cx.host.which("ibstat").is_none() {
        return Ok(false);
    }
    let out = cx.host.run(&Cmd::probe(["ibstat"]))?;
    Ok(out.success()
        && parse_ibstat(&out.stdout).is_ok_and(|cas| cas.iter().any(|c| !c.ports.is_empty())))
}

/// Every port `ibstat` lists.
pub fn ibstat_ports(cx: &Ctx<'_>) -> Result<Vec<Port>, StepError> {
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

/// Whether a subnet manager elsewhere answers on this port: where it runs (its lid, with its
/// GUID and priority from `sminfo`), or `None`. A stale SM lid (sminfo gets no answer) is
/// noted in the plan.
pub fn external_sm(cx: &Ctx<'_>, plan: &mut Plan, p: &Port) -> Result<Option<External>, StepError> {
    // The port's own lid as SM lid is an opensm on this very port (this host's).
    if p.state != PortState::Active || p.sm_lid == 0 || p.sm_lid == p.base_lid {
        return Ok(None);
    }
    if cx.host.which("sminfo").is_none() {
        return Ok(Some(External {
            lid: p.sm_lid,
            guid: None,
            priority: None,
        }));
    }
    let port = p.number.to_string();
    let out = cx
        .host
        .run(&Cmd::probe(["sminfo", "-C", &p.ca, "-P", &port]).timeout(Duration::from_secs(15)))?;
    match sminfo(&out.stdout).filter(|_| out.success()) {
        Some(sm) => Ok(Some(sm)),
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

/// Whether this wizard already serves the port (then it stays served, even when its opensm
/// has become the standby of a higher-priority one).
pub fn ours(
    cx: &Ctx<'_>,
    launch: Launch,
    configured: &[Guid],
    guid: Guid,
) -> Result<bool, StepError> {
    match launch {
        Launch::Sysconfig => Ok(configured.contains(&guid)),
        Launch::Units => systemctl_is(
            cx,
            "is-enabled",
            &instance(&PortGuid::Known(guid)),
            "enabled",
        ),
    }
}

/// /etc/sysconfig/opensm, if any.
pub fn sysconfig(cx: &Ctx<'_>) -> Result<Option<String>, StepError> {
    Ok(cx.host.read(Path::new(SYSCONFIG))?)
}

/// The files and services the plan may change. `sysconfig` is the file as read already.
/// An instance whose GUID only a real run learns cannot exist yet: it is not probed.
pub fn seen(
    cx: &Ctx<'_>,
    launch: Launch,
    sysconfig: Option<String>,
    managed: &[Managed],
) -> Result<Seen, StepError> {
    let is = |what: &str, unit: &str, word: &str| systemctl_is(cx, what, unit, word);
    match launch {
        Launch::Sysconfig => Ok(Seen::Sysconfig {
            old: sysconfig,
            service: Service {
                active: is("is-active", "opensm.service", "active")?,
                enabled: is("is-enabled", "opensm.service", "enabled")?,
            },
        }),
        Launch::Units => {
            let unit = cx.host.read(Path::new(UNIT))?;
            let stock_on = is("is-enabled", "opensm.service", "enabled")?
                || is("is-active", "opensm.service", "active")?;
            let mut instances = Vec::new();
            for p in managed {
                if let PortGuid::Learned(_) = p.guid {
                    instances.push(Instance::default());
                    continue;
                }
                let unit = instance(&p.guid);
                instances.push(Instance {
                    env: cx.host.read(Path::new(&env_path(&p.guid)))?,
                    service: Service {
                        active: is("is-active", &unit, "active")?,
                        enabled: is("is-enabled", &unit, "enabled")?,
                    },
                });
            }
            Ok(Seen::Units {
                unit,
                stock_on,
                instances,
            })
        }
    }
}
