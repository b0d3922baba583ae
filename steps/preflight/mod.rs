//! Preflight: what host this is and whether the procedure can run on it.
//!
//! Probes: os-release (distro and version), `uname -r` and `uname -n`, privileges, SELinux
//! mode, RDMA devices and their link layers, the kernel modules the procedure uses, and every
//! program a later step needs. Plans: installing the missing programs with the distro's
//! package manager. Refuses to go on (exit 1, with the fix) without root, without an RDMA
//! device, or without the `ib_iser` module; an unsupported distro goes on only when the
//! operator accepts the risk (`host.allow_unsupported_os`).

//!
//! Shape: [`want`] takes what the answers say (asking only about an unsupported release),
//! [`observe`] reads the host, [`decide`] is pure: the programs needed and missing, the
//! install commands, and what stops a real run.
//!
//! The one exception to "record after verify": what preflight learns about the host (OS,
//! kernel, host name, SELinux, modules, missing programs) is recorded as soon as it is
//! observed, before the plan is confirmed, because the engine saves it when the operator
//! declines the plan, and the later steps' plans read the distribution from it.

pub mod decide;
pub mod observe;
mod want;

use crate::steps::facts::{Distro, MissingProgram, OsInfo};
use crate::steps::{Action, Ctx, Plan, Step, StepError, StepName};
use decide::{Observed, Wanted};

/// The preflight step.
#[derive(Debug, Default)]
pub struct Preflight {
    /// What planning found, and what the answers want: verify checks and records them.
    planned: Option<(Wanted, Observed)>,
}

/// Parse os-release (`KEY=value`, values optionally quoted).
pub fn parse_os_release(text: &str) -> OsInfo {
    let mut get = std::collections::HashMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(v);
            get.insert(k.trim().to_string(), v.replace("\\\"", "\""));
        }
    }
    let id = get.get("ID").cloned().unwrap_or_default().to_lowercase();
    let id_like: Vec<String> = get
        .get("ID_LIKE")
        .map(|s| s.split_whitespace().map(|w| w.to_lowercase()).collect())
        .unwrap_or_default();
    let version_id = get.get("VERSION_ID").cloned().unwrap_or_default();
    let pretty_name = get
        .get("PRETTY_NAME")
        .cloned()
        .unwrap_or_else(|| format!("{id} {version_id}"));
    let major = version_id.split('.').next().unwrap_or("");
    let (distro, supported) = match id.as_str() {
        "rhel" | "rocky" | "almalinux" => (Some(Distro::Rhel), matches!(major, "8" | "9")),
        "sles" | "sled" => (Some(Distro::Sles), major == "15"),
        "ubuntu" => (
            Some(Distro::Ubuntu),
            matches!(version_id.as_str(), "22.04" | "24.04"),
        ),
        "debian" => (Some(Distro::Debian), major == "12" || major == "13"),
        _ => {
            let like = |w: &str| id == w || id_like.iter().any(|l| l == w);
            let family = if like("rhel") || like("fedora") || like("centos") {
                Some(Distro::Rhel)
            } else if like("suse") || like("opensuse") || like("sles") {
                Some(Distro::Sles)
            } else if like("ubuntu") {
                Some(Distro::Ubuntu)
            } else if like("debian") {
                Some(Distro::Debian)
            } else {
                None
            };
            (family, false)
        }
    };
    OsInfo {
        id,
        id_like,
        version_id,
        pretty_name,
        distro,
        supported,
    }
}

impl Preflight {
    /// Read the host and decide; the plan gets the notes and the install commands.
    fn probe(
        &mut self,
        cx: &mut Ctx<'_>,
        plan: &mut Plan,
    ) -> Result<Vec<decide::Blocker>, StepError> {
        let os = observe::os(cx)?;
        let Some(distro) = os.distro else {
            return Err(StepError::Failed(format!(
                "{} (ID={:?}) is not a distribution the wizard knows how to configure; \
                 supported: RHEL/Rocky/Alma 8-9, SLES 15, Ubuntu 22.04/24.04, Debian 12-13",
                os.pretty_name, os.id
            )));
        };
        if !os.supported {
            if !want::allow_unsupported(cx, &os, distro)? {
                return Err(StepError::Failed(format!(
                    "{} is not supported; to continue at your own risk, set \
                     host.allow_unsupported_os to true (or answer yes)",
                    os.pretty_name
                )));
            }
            plan.note(format!(
                "{} is unsupported: continuing at the operator's risk, configured like {:?}",
                os.pretty_name, distro
            ));
        }
        let wanted = want::wanted(cx);
        let seen = observe::host(cx, os, distro)?;
        Self::record(cx, &seen, decide::missing(&wanted, &seen));
        if seen.selinux.as_deref() == Some("Enforcing") {
            plan.note(
                "SELinux is enforcing: if IB ports stay in State: Initializing, opensm is \
                 being denied manage_subnet on infiniband_endport (see the subnet-manager step)",
            );
        }
        let missing = decide::missing(&wanted, &seen);
        if !missing.is_empty() {
            let list: Vec<String> = missing
                .iter()
                .map(|m| format!("{} ({})", m.program, m.needed_by))
                .collect();
            plan.note(format!("missing programs: {}", list.join(", ")));
            for cmd in decide::install_commands(distro, &decide::packages(&missing)) {
                plan.push(Action::run(cmd, "install what later steps need"));
            }
        }
        let blockers = decide::blockers(&seen);
        self.planned = Some((wanted, seen));
        Ok(blockers)
    }

    /// The programs the later steps need that planning found missing.
    pub fn missing(&self) -> Vec<MissingProgram> {
        self.planned
            .as_ref()
            .map(|(w, seen)| decide::missing(w, seen))
            .unwrap_or_default()
    }

    /// Facts and the worksheet's host section, from what was observed.
    fn record(cx: &mut Ctx<'_>, seen: &Observed, missing: Vec<MissingProgram>) {
        cx.sheet.host.os = Some(seen.os.pretty_name.clone());
        cx.sheet.host.kernel = seen.kernel.clone();
        cx.sheet.host.host_name = seen.hostname.clone();
        cx.facts.os = Some(seen.os.clone());
        cx.facts.kernel = seen.kernel.clone();
        cx.facts.hostname = seen.hostname.clone();
        cx.facts.root = Some(seen.root);
        cx.facts.selinux = seen.selinux.clone();
        cx.facts.modules = seen.modules.iter().cloned().collect();
        cx.facts.missing_programs = missing;
    }
}

impl Step for Preflight {
    fn name(&self) -> StepName {
        StepName::Preflight
    }

    fn plan(&mut self, cx: &mut Ctx<'_>) -> Result<Plan, StepError> {
        let mut plan = Plan::new(StepName::Preflight);
        self.planned = None;
        let blocking = self.probe(cx, &mut plan)?;
        if !blocking.is_empty() {
            if cx.options.dry_run {
                for b in &blocking {
                    plan.note(format!("would stop here: {b}"));
                }
            } else {
                let list: Vec<String> = blocking.iter().map(ToString::to_string).collect();
                return Err(StepError::Failed(format!(
                    "the host is not ready:\n    - {}",
                    list.join("\n    - ")
                )));
            }
        }
        Ok(plan)
    }

    fn verify(&mut self, cx: &mut Ctx<'_>) -> Result<(), StepError> {
        let Some((wanted, planned)) = &self.planned else {
            return Err(StepError::Failed(
                "internal: preflight verified before planning".into(),
            ));
        };
        // The same check as the plan's, against what is installed now.
        let now = Observed {
            installed: observe::installed(cx),
            ..planned.clone()
        };
        let still: Vec<String> = decide::missing(wanted, &now)
            .into_iter()
            .map(|m| match &m.package {
                Some(p) => format!("{} (package {p})", m.program),
                None => m.program.clone(),
            })
            .collect();
        if !still.is_empty() {
            return Err(StepError::Failed(format!(
                "still missing after installing: {}",
                still.join(", ")
            )));
        }
        cx.facts.missing_programs.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests;
