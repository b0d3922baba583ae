//! `iser-wizard status`: a read-only health check of what the last run set up: ports,
//! subnet manager, sessions, multipath paths, mount. Healthy (exit 0) only when every
//! check passes; anything degraded exits 1; a state directory with no completed run (no
//! step done, nothing recorded to check: a host never set up) is "not configured", exit 4,
//! and the host is not probed at all. Nothing is written, not even the state directory.
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
use crate::steps::host::{Interrupt, Log, RealHost};
use crate::steps::parse::iscsiadm::parse_session_p3;
use crate::steps::parse::multipath::parse_multipath_ll;
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
        || facts.volume.wwid.is_some()
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

fn checks(host: &dyn Host, facts: &Facts) -> Result<Vec<Check>, StepError> {
    let mut checks = Vec::new();
    for p in &facts.ports {
        let oper = read_trim(host, &format!("/sys/class/net/{}/operstate", p.netdev));
        let mut ok = matches!(oper.as_deref(), Some("up" | "unknown"));
        let mut detail = format!("link {}", oper.as_deref().unwrap_or("absent"));
        if let (Some(dev), Some(n)) = (&p.rdma_device, p.rdma_port) {
            let base = format!("/sys/class/infiniband/{dev}/ports/{n}");
            let state = read_trim(host, &format!("{base}/state"));
            let active = state.as_deref().is_some_and(|s| s.ends_with("ACTIVE"));
            ok &= active;
            let _ = write!(
                detail,
                ", {dev}/{n} {}",
                state.as_deref().unwrap_or("absent")
            );
            if p.link_layer.as_deref() == Some("infiniband") {
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
        check(&mut checks, format!("port {}", p.netdev), ok, detail);
    }
    if !facts.sessions.is_empty() {
        let out = host.run(&Cmd::probe(["iscsiadm", "-m", "session", "-P", "3"]))?;
        let live = if out.success() {
            parse_session_p3(&out.stdout)
        } else {
            Vec::new()
        };
        for s in &facts.sessions {
            let found = live.iter().find(|l| {
                l.iface_name.as_deref() == Some(s.iface.as_str())
                    && l.current_portal
                        .as_ref()
                        .or(l.persistent_portal.as_ref())
                        .is_some_and(|p| p.to_string() == s.portal)
            });
            let (ok, detail) = match found {
                Some(l) => (
                    l.is_logged_in() && l.iface_transport.as_deref() == Some("iser"),
                    format!(
                        "{} over {}",
                        l.session_state.as_deref().unwrap_or("?"),
                        l.iface_transport.as_deref().unwrap_or("?")
                    ),
                ),
                None => (false, "no session".to_string()),
            };
            check(
                &mut checks,
                format!("session {} -> {}", s.iface, s.portal),
                ok,
                detail,
            );
        }
    }
    if let Some(wwid) = &facts.volume.wwid {
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
        check(&mut checks, format!("multipath {wwid}"), ok, detail);
    }
    if let Some(mp) = &facts.volume.mount_point {
        let src = crate::steps::verify::mounted_source(host, mp)?;
        let ok = match (&src, &facts.volume.fs_device) {
            (Some(s), Some(want)) => s == want,
            (Some(_), None) => true,
            (None, _) => false,
        };
        check(
            &mut checks,
            format!("mount {mp}"),
            ok,
            src.map(|s| format!("mounted from {s}"))
                .unwrap_or_else(|| "not mounted".into()),
        );
    }
    Ok(checks)
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
    use crate::steps::CmdOutput;

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

    fn state() -> State {
        State {
            facts: facts(),
            ..State::default()
        }
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
}
