//! `iser-wizard status`: a read-only health check of what the last run set up: ports,
//! subnet manager, sessions, multipath paths, mount. Healthy (exit 0) only when every
//! check passes; anything degraded exits 1; a state directory with no completed run (no
//! step done, nothing recorded to check: a host never set up) is "not configured", exit 4,
//! and the host is not probed at all. Nothing is written, not even the state directory.
//!
//! What "healthy" means is the steps' own: a port's interface is judged by the network
//! step's `live_differences`, its RDMA port by the subnet-manager step's `lagging`, the
//! sessions by the sessions step's check (in its form over recorded facts), each fed with
//! what status observes (sysfs and `iscsiadm -m session -P 3`; status runs no `ip`). The SM
//! lid, the multipath paths and the mount are still judged here.
//!
//! `--json` prints the [`Report`]: `schema_version` ([`SCHEMA_VERSION`]; keys may be added,
//! a rename or removal bumps it), `checked_at` (RFC 3339, UTC), `status` (`healthy`,
//! `degraded` or `not-configured`), `healthy`, and the checks.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use serde::Serialize;

use crate::exit::WizardError;
use crate::state::{State, StateDir};
use crate::steps::facts::{PortFact, SessionFact};
use crate::steps::host::{Interrupt, Log, RealHost};
use crate::steps::network::decide::{live_differences, Difference};
use crate::steps::network::{NetPort, PortAnswer};
use crate::steps::parse::ibstat::{Guid, LinkLayer, PhysicalState, Port, PortState};
use crate::steps::parse::iscsiadm::{parse_session_p3, SessionDetail};
use crate::steps::parse::multipath::parse_multipath_ll;
use crate::steps::parse::netlink::{Link, OperState};
use crate::steps::sessions::decide::{check_recorded, SessionProblem};
use crate::steps::subnet_manager::decide::{lagging, Served};
use crate::steps::{timefmt, Cmd, Facts, Host, StepError};

/// The version of the shape of `status --json`.
pub const SCHEMA_VERSION: u32 = 1;

/// One check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// What was checked ("port vA", "session iface-vA -> 192.168.130.101:3260").
    pub what: String,
    /// Whether it is as it should be.
    pub ok: bool,
    /// What was seen.
    pub detail: String,
}

/// The verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Health {
    /// Every check passed.
    Healthy,
    /// At least one check failed.
    Degraded,
    /// No completed run is recorded: nothing to check.
    NotConfigured,
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// When the check ran (RFC 3339, UTC).
    pub checked_at: String,
    /// The verdict.
    pub status: Health,
    /// Every check passed (`status` is `healthy`).
    pub healthy: bool,
    /// The checks, in order.
    pub checks: Vec<Check>,
}

fn check(checks: &mut Vec<Check>, what: impl Into<String>, ok: bool, detail: impl Into<String>) {
    checks.push(Check {
        what: what.into(),
        ok,
        detail: detail.into(),
    });
}

fn read_trim(host: &dyn Host, p: &str) -> Option<String> {
    host.read(Path::new(p))
        .ok()
        .flatten()
        .map(|s| s.trim().to_string())
}

/// Whether the state records a set-up to check: a finished run, a completed step, or
/// facts of ports, sessions or a volume.
pub fn configured(state: &State) -> bool {
    let facts = &state.facts;
    state.run.finished_at.is_some()
        || !state.run.done.is_empty()
        || !facts.ports.is_empty()
        || !facts.sessions.is_empty()
        || !facts.attached_volumes().is_empty()
}

/// Check the host against the state of the last run (not probed when not configured).
pub fn report(host: &dyn Host, state: &State) -> Result<Report, StepError> {
    let checked_at = timefmt::now_rfc3339();
    if !configured(state) {
        return Ok(Report {
            schema_version: SCHEMA_VERSION,
            checked_at,
            status: Health::NotConfigured,
            healthy: false,
            checks: Vec::new(),
        });
    }
    let checks = checks(host, &state.facts)?;
    let healthy = !checks.is_empty() && checks.iter().all(|c| c.ok);
    Ok(Report {
        schema_version: SCHEMA_VERSION,
        checked_at,
        status: if healthy {
            Health::Healthy
        } else {
            Health::Degraded
        },
        healthy,
        checks,
    })
}

/// The interface of a port as sysfs shows it, in the shape the network step judges
/// (`ip -j addr` there; status runs no `ip`). Only the name and the operational state are
/// read: an interface reports `up` or `unknown` only while administratively up, so those
/// carry the `UP` flag; any other state (`down`, `lowerlayerdown`, `dormant`) counts as not
/// up, stricter than the flag alone. Addresses and MTU are not read, so left empty.
fn sysfs_link(name: &str, operstate: &str) -> Link {
    let up = matches!(operstate, "up" | "unknown");
    let mut link = Link::new(0, name, None);
    if up {
        link.flags = vec!["UP".into()];
    }
    link.state = Some(OperState::parse(&operstate.to_ascii_uppercase()));
    link
}

/// The network step's verdict on the port's interface ([`live_differences`]): it exists and
/// is up. The address is not compared (status reads none), nor the MTU or IPoIB mode (the
/// facts do not record what was asked).
fn link_ok(p: &PortFact, operstate: Option<&str>) -> bool {
    let link = operstate.map(|o| sysfs_link(&p.netdev, o));
    let port = NetPort {
        index: 0,
        answer: PortAnswer {
            netdev: p.netdev.clone(),
            address: None,
            ipoib_mode: None,
            mtu: None,
            persistent_name: None,
        },
        link: link.clone(),
        rdma: None,
        ib: p.link_layer.as_deref().map(|l| l == "infiniband"),
    };
    live_differences(link.as_ref(), &port, None, None)
        .iter()
        .all(|d| matches!(d, Difference::NoAddress { .. }))
}

/// The subnet-manager step's verdict on the RDMA port ([`lagging`]): it is Active. The port
/// is found by its sysfs path (device and number as the run recorded them), so it carries
/// the recorded GUID and `lagging` judges its state only; the other fields of the ibstat
/// shape are not read and stay empty.
fn rdma_port_ok(p: &PortFact, dev: &str, number: u32, state: Option<&str>) -> bool {
    let Ok(number) = u8::try_from(number) else {
        return false;
    };
    let guid = p
        .guid
        .as_deref()
        .and_then(|g| g.parse::<Guid>().ok())
        .unwrap_or(Guid(0));
    let served = [Served {
        netdev: p.netdev.clone(),
        ca: dev.to_string(),
        number,
        guid,
    }];
    let live: Vec<Port> = state
        .map(|s| Port {
            ca: dev.to_string(),
            number,
            state: PortState::parse(s),
            physical_state: PhysicalState::parse(""),
            rate: None,
            base_lid: 0,
            lmc: 0,
            sm_lid: 0,
            capability_mask: 0,
            port_guid: guid,
            link_layer: if p.link_layer.as_deref() == Some("ethernet") {
                LinkLayer::Ethernet
            } else {
                LinkLayer::Infiniband
            },
        })
        .into_iter()
        .collect();
    lagging(&served, &live).is_empty()
}

/// One port: its interface, its RDMA port and, on InfiniBand, the subnet manager.
fn port_check(host: &dyn Host, p: &PortFact) -> Check {
    let oper = read_trim(host, &format!("/sys/class/net/{}/operstate", p.netdev));
    let mut ok = link_ok(p, oper.as_deref());
    let mut detail = format!("link {}", oper.as_deref().unwrap_or("absent"));
    if let (Some(dev), Some(n)) = (&p.rdma_device, p.rdma_port) {
        let base = format!("/sys/class/infiniband/{dev}/ports/{n}");
        let state = read_trim(host, &format!("{base}/state"));
        ok &= rdma_port_ok(p, dev, n, state.as_deref());
        let _ = write!(
            detail,
            ", {dev}/{n} {}",
            state.as_deref().unwrap_or("absent")
        );
        if p.link_layer.as_deref() == Some("infiniband") {
            // The subnet-manager step judges "already served" while planning, in its own
            // module and from ibstat; until that is a decide function this stays here.
            let sm = read_trim(host, &format!("{base}/sm_lid"));
            let has_sm = sm
                .as_deref()
                .is_some_and(|s| !matches!(s, "0" | "0x0" | "0x0000"));
            ok &= has_sm;
            let _ = write!(
                detail,
                ", subnet manager {}",
                if has_sm {
                    format!("at lid {}", sm.unwrap_or_default())
                } else {
                    "not seen (SM lid 0)".into()
                }
            );
        }
    }
    Check {
        what: format!("port {}", p.netdev),
        ok,
        detail,
    }
}

/// The recorded sessions, judged by the sessions step's own check ([`check_recorded`]):
/// one check per recorded session, then one per unexpected session to a recorded target.
fn session_checks(recorded: &[SessionFact], live: &[SessionDetail]) -> Vec<Check> {
    let verdict = check_recorded(recorded, live);
    let mut checks = Vec::new();
    for (s, problems) in recorded.iter().zip(&verdict.per_fact) {
        let found = live.iter().find(|l| {
            l.target == s.target
                && l.iface_name.as_deref() == Some(s.iface.as_str())
                && l.current_portal
                    .as_ref()
                    .or(l.persistent_portal.as_ref())
                    .is_some_and(|p| p.to_string() == s.portal)
        });
        let detail = match (found, problems.first()) {
            (_, Some(SessionProblem::Several(_, n))) => format!("{n} sessions, expected one"),
            (_, Some(p @ SessionProblem::Unreadable(_))) => p.to_string(),
            (Some(l), _) => format!(
                "{} over {}",
                l.session_state.as_deref().unwrap_or("?"),
                l.iface_transport.as_deref().unwrap_or("?")
            ),
            (None, _) => "no session".to_string(),
        };
        checks.push(Check {
            what: format!("session {} -> {}", s.iface, s.portal),
            ok: problems.is_empty(),
            detail,
        });
    }
    for u in &verdict.unexpected {
        if let SessionProblem::Unexpected {
            pair, transport, ..
        } = u
        {
            checks.push(Check {
                what: format!("session {} -> {}", pair.iface, pair.portal),
                ok: false,
                detail: format!(
                    "not recorded by the last run (over {})",
                    transport.as_deref().unwrap_or("?")
                ),
            });
        }
    }
    checks
}

fn checks(host: &dyn Host, facts: &Facts) -> Result<Vec<Check>, StepError> {
    let mut checks: Vec<Check> = facts.ports.iter().map(|p| port_check(host, p)).collect();
    if !facts.sessions.is_empty() {
        let out = host.run(&Cmd::probe(["iscsiadm", "-m", "session", "-P", "3"]))?;
        let live = if out.success() {
            parse_session_p3(&out.stdout)
        } else {
            Vec::new()
        };
        checks.extend(session_checks(&facts.sessions, &live));
        for d in crate::steps::detach::decide::stale_devices(&live) {
            check(
                &mut checks,
                "stale session device",
                false,
                format!("{d}; `iser-wizard detach --all` removes it"),
            );
        }
        for s in crate::steps::sessions::leftover::discovery_sessions(&live) {
            check(
                &mut checks,
                "stale discovery session",
                false,
                format!(
                    "session {} to {} has no target name (a SendTargets discovery that did \
                     not finish left it); `iser-wizard detach --all` tries to log it out, \
                     but {}",
                    s.sid.map(|n| n.to_string()).unwrap_or_else(|| "?".into()),
                    s.current_portal
                        .as_ref()
                        .or(s.persistent_portal.as_ref())
                        .map(|p| p.to_string())
                        .unwrap_or_else(|| "?".into()),
                    crate::steps::sessions::leftover::NO_LOGOUT_HINT
                ),
            );
        }
    }
    // Ghost maps (no working path: the LUN is gone), ours or left by anyone; only where
    // device-mapper multipath is loaded at all.
    if host.exists(Path::new("/sys/module/dm_multipath")) {
        for m in crate::steps::detach::observe::maps(host)?
            .iter()
            .filter(|m| crate::steps::detach::decide::is_ghost(m))
        {
            let paths: Vec<String> = m
                .path_groups
                .iter()
                .flat_map(|g| &g.paths)
                .map(|p| {
                    format!(
                        "{} {}",
                        p.dev.as_deref().unwrap_or("-"),
                        p.path_state.as_deref().unwrap_or("?")
                    )
                })
                .collect();
            check(
                &mut checks,
                format!("ghost map {}", m.name),
                false,
                format!(
                    "{}: no working path ({}); `iser-wizard detach --all` removes it",
                    m.wwid,
                    if paths.is_empty() {
                        "none left".to_string()
                    } else {
                        paths.join(", ")
                    }
                ),
            );
        }
    }
    // Each attached volume: its map, then its mount.
    for v in facts.attached_volumes() {
        volume_checks(host, facts, v, &mut checks)?;
    }
    Ok(checks)
}

/// The checks of one attached volume: its map's paths and its mount.
fn volume_checks(
    host: &dyn Host,
    facts: &Facts,
    v: &crate::steps::facts::VolumeFact,
    checks: &mut Vec<Check>,
) -> Result<(), StepError> {
    if let Some(wwid) = &v.wwid {
        let out = host.run(&Cmd::probe(["multipath", "-ll", wwid]))?;
        let maps = parse_multipath_ll(&out.stdout);
        let map = maps.iter().find(|m| &m.wwid == wwid);
        let expected = facts.sessions.len().max(1);
        let (ok, detail) = match map {
            Some(m) => {
                let healthy = m.healthy_paths().count();
                let total = m.paths().count();
                (
                    healthy >= expected && healthy == total,
                    format!("{healthy} of {total} paths active (expected {expected})"),
                )
            }
            None => (false, "no multipath map".to_string()),
        };
        check(checks, format!("multipath {wwid}"), ok, detail);
    }
    if let Some(mp) = &v.mount_point {
        let src = crate::steps::verify::mounted_source(host, mp)?;
        let ok = match (&src, &v.fs_device) {
            (Some(s), Some(want)) => s == want,
            (Some(_), None) => true,
            (None, _) => false,
        };
        check(
            checks,
            format!("mount {mp}"),
            ok,
            src.map(|s| format!("mounted from {s}"))
                .unwrap_or_else(|| "not mounted".into()),
        );
    }
    Ok(())
}

/// The report as text.
pub fn render(r: &Report) -> String {
    let mut out = String::new();
    for c in &r.checks {
        let _ = writeln!(
            out,
            "{} {}: {}",
            if c.ok { "ok  " } else { "FAIL" },
            c.what,
            c.detail
        );
    }
    let verdict = match r.status {
        Health::Healthy => "healthy",
        Health::Degraded => "degraded",
        Health::NotConfigured => "not configured",
    };
    let _ = writeln!(out, "{verdict}");
    out
}

/// `iser-wizard status`: read the state, check the host below `root`, print the report
/// (text or JSON) to `out`; the verdict becomes the exit code.
pub fn command(
    root: &Path,
    state_dir: &Path,
    json: bool,
    interrupt: Interrupt,
    out: &mut dyn std::io::Write,
) -> Result<(), WizardError> {
    let state = StateDir::new(state_dir)
        .load_state()
        .context("reading the state")?;
    let host = RealHost::new(
        root.to_path_buf(),
        None,
        Arc::new(Log::disabled()),
        interrupt,
    );
    let r = report(&host, &state).map_err(|e| anyhow::anyhow!("status: {e}"))?;
    let text = if json {
        let mut t = serde_json::to_string_pretty(&r).context("encoding the report")?;
        t.push('\n');
        t
    } else {
        render(&r)
    };
    let _ = out.write_all(text.as_bytes());
    match r.status {
        Health::Healthy => Ok(()),
        Health::Degraded => Err(WizardError::Degraded),
        Health::NotConfigured => Err(WizardError::NotConfigured(state_dir.display().to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::steps::facts::{PortFact, SessionFact};
    use crate::steps::fake::FakeHost;
    use crate::steps::parse::ibstat::parse_sysfs_port;
    use crate::steps::parse::netlink::parse_ip_j_addr;
    use crate::steps::CmdOutput;
    use std::collections::BTreeMap;

    fn facts() -> Facts {
        let mut f = Facts::default();
        f.ports.push(PortFact {
            netdev: "vA".into(),
            rdma_device: Some("rxe0".into()),
            rdma_port: Some(1),
            link_layer: Some("ethernet".into()),
            address: "192.168.130.10/24".into(),
            ..Default::default()
        });
        f.sessions.push(SessionFact {
            iface: "iface-vA".into(),
            portal: "192.168.130.101:3260".into(),
            target: "iqn.2002-09.com.lab:array".into(),
            transport: "iser".into(),
            disks: vec!["sdb".into()],
        });
        f
    }

    const P3: &str = "iSCSI Transport Class version 2.0-870\nversion 2.1.8\nTarget: iqn.2002-09.com.lab:array (non-flash)\n\tCurrent Portal: 192.168.130.101:3260,1\n\tPersistent Portal: 192.168.130.101:3260,1\n\t\t**********\n\t\tInterface:\n\t\t**********\n\t\tIface Name: iface-vA\n\t\tIface Transport: iser\n\t\tIface Netdev: vA\n\t\tSID: 1\n\t\tiSCSI Connection State: LOGGED IN\n\t\tiSCSI Session State: LOGGED_IN\n\t\tInternal iscsid Session State: NO CHANGE\n";

    #[test]
    fn healthy_when_everything_matches_and_degraded_otherwise() {
        let h = FakeHost::new();
        h.put_file("/sys/class/net/vA/operstate", "up\n");
        h.put_file("/sys/class/infiniband/rxe0/ports/1/state", "4: ACTIVE\n");
        h.allow(&["iscsiadm", "-m", "session", "-P", "3"], CmdOutput::ok(P3));
        let r = report(&h, &state()).unwrap();
        assert!(r.healthy, "{}", render(&r));
        assert_eq!(r.status, Health::Healthy);
        assert!(render(&r)
            .contains("ok   session iface-vA -> 192.168.130.101:3260: LOGGED_IN over iser"));
        h.finish();

        let h = FakeHost::new();
        h.put_file("/sys/class/net/vA/operstate", "down\n");
        h.put_file("/sys/class/infiniband/rxe0/ports/1/state", "1: DOWN\n");
        h.allow(
            &["iscsiadm", "-m", "session", "-P", "3"],
            CmdOutput::status(21, "", "iscsiadm: No active sessions.\n"),
        );
        let r = report(&h, &state()).unwrap();
        assert!(!r.healthy);
        assert_eq!(r.status, Health::Degraded);
        let text = render(&r);
        assert!(
            text.contains("FAIL port vA: link down, rxe0/1 1: DOWN"),
            "{text}"
        );
        assert!(
            text.contains("FAIL session iface-vA -> 192.168.130.101:3260: no session"),
            "{text}"
        );
        h.finish();
    }

    #[test]
    fn ghost_maps_and_stale_devices_are_reported() {
        let h = FakeHost::new();
        h.put_file("/sys/class/net/vA/operstate", "up\n");
        h.put_file("/sys/class/infiniband/rxe0/ports/1/state", "4: ACTIVE\n");
        h.put_file("/sys/module/dm_multipath/refcnt", "1\n");
        // The session's LUN 3 disk is offline: a stale device.
        let stale = format!(
            "{P3}\t\t************************\n\t\tAttached SCSI devices:\n\
             \t\t************************\n\t\tHost Number: 7\tState: running\n\
             \t\tscsi7 Channel 00 Id 0 Lun: 3\n\t\t\tAttached scsi disk sdq\t\tState: offline\n"
        );
        h.allow(
            &["iscsiadm", "-m", "session", "-P", "3"],
            CmdOutput::ok(stale.clone()),
        );
        h.allow(
            &["multipath", "-ll"],
            CmdOutput::ok(
                "mpathz (3600a098000000000000000000000dead) dm-4 NETAPP,INF-01-00\n\
                 size=10G features='1 queue_if_no_path' hwhandler='1 alua' wp=rw\n\
                 `-+- policy='service-time 0' prio=0 status=enabled\n\
                 \x20 `- 7:0:0:3 sdq 65:0 failed faulty offline\n",
            ),
        );
        let r = report(&h, &state()).unwrap();
        let text = render(&r);
        assert!(!r.healthy, "{text}");
        assert!(
            text.contains("FAIL ghost map mpathz: 3600a098000000000000000000000dead: no working path (sdq faulty)"),
            "{text}"
        );
        assert!(
            text.contains("FAIL stale session device: sdq (session 1, LUN 3): offline"),
            "{text}"
        );
        h.finish();
    }

    #[test]
    fn a_discovery_session_left_behind_is_reported_as_stale() {
        let h = FakeHost::new();
        h.put_file("/sys/class/net/vA/operstate", "up\n");
        h.put_file("/sys/class/infiniband/rxe0/ports/1/state", "4: ACTIVE\n");
        // The tree iscsiadm prints for a session without a target name sorts it first.
        let left = format!(
            "Target:  (non-flash)\n\tCurrent Portal: 192.168.130.101:0,1\n\
             \tPersistent Portal: 192.168.130.101:0,1\n\t\t**********\n\t\tInterface:\n\
             \t\t**********\n\t\tIface Name: iface-vA\n\t\tIface Transport: iser\n\
             \t\tSID: 9\n\t\tiSCSI Session State: LOGGED_IN\n{}",
            P3.split_once("version 2.1.8\n").unwrap().1
        );
        h.allow(
            &["iscsiadm", "-m", "session", "-P", "3"],
            CmdOutput::ok(left),
        );
        let r = report(&h, &state()).unwrap();
        let text = render(&r);
        assert!(!r.healthy, "{text}");
        assert!(
            text.contains(
                "FAIL stale discovery session: session 9 to 192.168.130.101:0 has no target name"
            ),
            "{text}"
        );
        // The target's own session is still checked as before.
        assert!(
            text.contains("ok   session iface-vA -> 192.168.130.101:3260: LOGGED_IN over iser"),
            "{text}"
        );
        h.finish();
    }

    fn state() -> State {
        State {
            facts: facts(),
            ..State::default()
        }
    }

    #[test]
    fn every_attached_volume_is_checked_on_its_own() {
        const W1: &str = "360014051ab0000000000000000000000";
        const W2: &str = "360014052ab0000000000000000000000";
        let h = FakeHost::new();
        h.put_file("/sys/class/net/vA/operstate", "up\n");
        h.put_file("/sys/class/infiniband/rxe0/ports/1/state", "4: ACTIVE\n");
        h.allow(&["iscsiadm", "-m", "session", "-P", "3"], CmdOutput::ok(P3));
        h.allow(
            &["multipath", "-ll", W1],
            CmdOutput::ok(format!(
                "{W1} dm-0 LIO-ORG,FILEIO\nsize=512M features='0' hwhandler='1 alua' wp=rw\n\
                 `-+- policy='service-time 0' prio=50 status=active\n  \
                 `- 3:0:0:0 sdb 8:16 active ready running\n"
            )),
        );
        h.allow(&["multipath", "-ll", W2], CmdOutput::ok(""));
        for (mp, src) in [("/mnt/a", "/dev/mapper/a-part1"), ("/mnt/b", "/dev/sdz")] {
            let cmd = crate::steps::verify::mounted_fs_cmd(mp);
            let argv: Vec<&str> = cmd.argv.iter().map(String::as_str).collect();
            h.allow(
                &argv,
                CmdOutput::ok(format!(r#"{{"filesystems": [{{"source": "{src}"}}]}}"#)),
            );
        }
        let mut st = state();
        for (w, mp, dev) in [
            (W1, "/mnt/a", "/dev/mapper/a-part1"),
            (W2, "/mnt/b", "/dev/mapper/b"),
        ] {
            st.facts.volumes.push(crate::steps::facts::VolumeFact {
                wwid: Some(w.into()),
                mount_point: Some(mp.into()),
                fs_device: Some(dev.into()),
                ..Default::default()
            });
        }
        let r = report(&h, &st).unwrap();
        let text = render(&r);
        h.finish();
        assert_eq!(r.status, Health::Degraded, "{text}");
        assert!(
            text.contains(&format!("ok   multipath {W1}: 1 of 1 paths active")),
            "{text}"
        );
        assert!(
            text.contains("ok   mount /mnt/a: mounted from /dev/mapper/a-part1"),
            "{text}"
        );
        assert!(
            text.contains(&format!("FAIL multipath {W2}: no multipath map")),
            "{text}"
        );
        assert!(
            text.contains("FAIL mount /mnt/b: mounted from /dev/sdz"),
            "{text}"
        );
    }

    #[test]
    fn a_host_never_set_up_is_not_configured_and_not_probed() {
        // The fake fails on any command or file it was not told of.
        let h = FakeHost::new();
        let r = report(&h, &State::default()).unwrap();
        assert_eq!(r.status, Health::NotConfigured);
        assert!(!r.healthy);
        assert!(r.checks.is_empty());
        assert_eq!(r.schema_version, SCHEMA_VERSION);
        assert!(render(&r).ends_with("not configured\n"));
        h.finish();
        let mut done = State::default();
        done.run.finished_at = Some("2026-12-01T00:00:00Z".into());
        assert!(configured(&done));
    }

    /// The report of a host with only these facts, its files `files` and `iscsiadm` output.
    fn report_of(facts: Facts, files: &[(&str, &str)], p3: Option<CmdOutput>) -> Report {
        let h = FakeHost::new();
        for (path, text) in files {
            h.put_file(path, text);
        }
        if let Some(out) = p3 {
            h.allow(&["iscsiadm", "-m", "session", "-P", "3"], out);
        }
        let r = report(
            &h,
            &State {
                facts,
                ..State::default()
            },
        )
        .unwrap();
        h.finish();
        r
    }

    #[test]
    fn status_and_the_network_step_agree_on_a_port_interface() {
        // A port with no RDMA device recorded: only its interface is judged.
        let fact = PortFact {
            netdev: "vA".into(),
            link_layer: Some("ethernet".into()),
            address: "192.168.130.10/24".into(),
            ..Default::default()
        };
        let answer = PortAnswer {
            netdev: "vA".into(),
            address: fact.address.parse().ok(),
            ipoib_mode: None,
            mtu: None,
            persistent_name: None,
        };
        // Each row: the same interface as sysfs shows it to status and as `ip -j addr`
        // shows it to the network step's verify (`None`: there is no such interface).
        // Not a row: up with no carrier (`UP` flag, operstate down), which status counts
        // as down and the network step as up (its ping and the RDMA port state fail then).
        type Row<'a> = (&'a str, Option<&'a str>, Option<(&'a str, &'a str)>);
        let rows: [Row; 4] = [
            ("up", Some("up"), Some(("\"UP\",\"LOWER_UP\"", "UP"))),
            (
                "unknown",
                Some("unknown"),
                Some(("\"UP\",\"LOWER_UP\"", "UNKNOWN")),
            ),
            ("set down", Some("down"), Some(("\"BROADCAST\"", "DOWN"))),
            ("absent", None, None),
        ];
        for (name, operstate, ip) in rows {
            let files: Vec<(&str, &str)> = operstate
                .map(|o| ("/sys/class/net/vA/operstate", o))
                .into_iter()
                .collect();
            let mut facts = Facts::default();
            facts.ports.push(fact.clone());
            let status = report_of(facts, &files, None);
            let link = ip.map(|(flags, oper)| {
                let json = format!(
                    "[{{\"ifindex\":4,\"ifname\":\"vA\",\"flags\":[{flags}],\"mtu\":1500,\
                     \"operstate\":\"{oper}\",\"addr_info\":[{{\"family\":\"inet\",\
                     \"local\":\"192.168.130.10\",\"prefixlen\":24}}]}}]"
                );
                parse_ip_j_addr(&json).unwrap().remove(0)
            });
            let port = NetPort {
                index: 0,
                answer: answer.clone(),
                link: link.clone(),
                rdma: None,
                ib: Some(false),
            };
            let verify = live_differences(link.as_ref(), &port, None, None);
            assert_eq!(status.healthy, verify.is_empty(), "{name}: {verify:?}");
            assert_eq!(status.checks.len(), 1, "{name}");
        }
    }

    #[test]
    fn status_and_the_subnet_manager_step_agree_on_an_rdma_port() {
        let guid = "0x0002c90300a1b2c3";
        let fact = PortFact {
            netdev: "ib0".into(),
            rdma_device: Some("mlx5_0".into()),
            rdma_port: Some(1),
            guid: Some(guid.into()),
            link_layer: Some("infiniband".into()),
            address: "192.168.130.10/24".into(),
        };
        let base = "/sys/class/infiniband/mlx5_0/ports/1";
        // Each row: the port's state in sysfs (`None`: the port is gone), its link up and a
        // subnet manager seen, so that the port state alone decides.
        let rows: [(&str, Option<&str>); 6] = [
            ("active", Some("4: ACTIVE")),
            ("initializing", Some("2: INIT")),
            ("armed", Some("3: ARMED")),
            ("down", Some("1: DOWN")),
            ("active, deferred", Some("5: ACTIVE_DEFER")),
            ("gone", None),
        ];
        for (name, state) in rows {
            let state_path = format!("{base}/state");
            let sm_path = format!("{base}/sm_lid");
            let mut files = vec![
                ("/sys/class/net/ib0/operstate", "up\n"),
                (sm_path.as_str(), "0x1\n"),
            ];
            if let Some(s) = state {
                files.push((state_path.as_str(), s));
            }
            let mut facts = Facts::default();
            facts.ports.push(fact.clone());
            let status = report_of(facts, &files, None);
            // The step's view of the same port: every file of its sysfs folder, read as the
            // step reads ports (its verify reads them from ibstat, in the same shape).
            let live: Vec<Port> = state
                .map(|s| {
                    let files: BTreeMap<String, String> = [
                        ("state", s),
                        ("phys_state", "5: LinkUp"),
                        ("link_layer", "InfiniBand"),
                        ("sm_lid", "0x1"),
                        ("gids/0", "fe80:0000:0000:0000:0002:c903:00a1:b2c3"),
                    ]
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
                    parse_sysfs_port("mlx5_0", 1, &files).unwrap()
                })
                .into_iter()
                .collect();
            let served = [Served {
                netdev: "ib0".into(),
                ca: "mlx5_0".into(),
                number: 1,
                guid: guid.parse().unwrap(),
            }];
            let verify = lagging(&served, &live);
            assert_eq!(status.healthy, verify.is_empty(), "{name}: {verify:?}");
        }
    }

    /// `iscsiadm -m session -P 3` with one session per (iface, portal, transport, state).
    fn p3(sessions: &[(&str, &str, &str, &str)]) -> CmdOutput {
        let mut text = String::from("iSCSI Transport Class version 2.0-870\nversion 2.1.8\n");
        for (sid, (iface, portal, transport, state)) in sessions.iter().enumerate() {
            text.push_str(&format!(
                "Target: iqn.2002-09.com.lab:array (non-flash)\n\tCurrent Portal: {portal},1\n\
                 \tPersistent Portal: {portal},1\n\t\t**********\n\t\tInterface:\n\
                 \t\t**********\n\t\tIface Name: {iface}\n\t\tIface Transport: {transport}\n\
                 \t\tSID: {}\n\t\tiSCSI Connection State: LOGGED IN\n\
                 \t\tiSCSI Session State: {state}\n",
                sid + 1
            ));
        }
        CmdOutput::ok(text)
    }

    #[test]
    fn status_judges_sessions_as_the_sessions_step_verifies_them() {
        // The rows of the sessions step's check table, as `status` sees them: the recorded
        // session of iface-vA to .101 (`the_recorded_form_agrees_with_check` there shows its
        // check and the recorded form agree on each).
        let a = ("iface-vA", "192.168.130.101:3260");
        let b = ("iface-vB", "192.168.130.101:3260");
        let rows: [(&str, CmdOutput, &[&str]); 6] = [
            ("healthy", p3(&[(a.0, a.1, "iser", "LOGGED_IN")]), &[]),
            (
                "over tcp",
                p3(&[(a.0, a.1, "tcp", "LOGGED_IN")]),
                &["session iface-vA -> 192.168.130.101:3260: LOGGED_IN over tcp"],
            ),
            (
                "failed",
                p3(&[(a.0, a.1, "iser", "FAILED")]),
                &["session iface-vA -> 192.168.130.101:3260: FAILED over iser"],
            ),
            (
                "twice",
                p3(&[
                    (a.0, a.1, "iser", "LOGGED_IN"),
                    (a.0, a.1, "iser", "LOGGED_IN"),
                ]),
                &["session iface-vA -> 192.168.130.101:3260: 2 sessions, expected one"],
            ),
            (
                "an unexpected session to the target",
                p3(&[
                    (a.0, a.1, "iser", "LOGGED_IN"),
                    (b.0, b.1, "iser", "LOGGED_IN"),
                ]),
                &["session iface-vB -> 192.168.130.101:3260: not recorded by the last run"],
            ),
            (
                "none",
                CmdOutput::status(21, "", "iscsiadm: No active sessions.\n"),
                &["session iface-vA -> 192.168.130.101:3260: no session"],
            ),
        ];
        for (name, out, failing) in rows {
            let f = Facts {
                sessions: facts().sessions,
                ..Facts::default()
            };
            let r = report_of(f, &[], Some(out));
            let text = render(&r);
            assert_eq!(r.healthy, failing.is_empty(), "{name}: {text}");
            for line in failing {
                assert!(text.contains(&format!("FAIL {line}")), "{name}: {text}");
            }
            let failed = r.checks.iter().filter(|c| !c.ok).count();
            assert_eq!(failed, failing.len(), "{name}: {text}");
        }
    }
}
