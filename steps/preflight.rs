//! Preflight: what host this is and whether the procedure can run on it.
//!
//! Probes: os-release (distro and version), `uname -r` and `uname -n`, privileges, SELinux
//! mode, RDMA devices and their link layers, the kernel modules the procedure uses, and every
//! program a later step needs. Plans: installing the missing programs with the distro's
//! package manager. Refuses to go on (exit 1, with the fix) without root, without an RDMA
//! device, or without the `ib_iser` module; an unsupported distro goes on only when the
//! operator accepts the risk (`host.allow_unsupported_os`).

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use crate::settings::{Fabric, FsType};
use crate::steps::facts::{Distro, MissingProgram, ModuleState, OsInfo};
use crate::steps::{Action, Cmd, Ctx, Plan, Step, StepError, StepName};

/// The preflight step.
#[derive(Debug, Default)]
pub struct Preflight {
    blocking: Vec<String>,
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
        "debian" => (Some(Distro::Debian), major == "12"),
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

/// Programs the later steps need, given what the answers already say.
fn needed_programs(cx: &Ctx<'_>, distro: Distro, has_ib: bool) -> Vec<(&'static str, StepName)> {
    let answers = cx.ask.answers();
    let ib = match answers.fabric.unwrap_or(Fabric::Auto) {
        Fabric::Infiniband => true,
        Fabric::Roce => false,
        Fabric::Auto => has_ib,
    };
    let mut need = vec![
        ("modprobe", StepName::Preflight),
        ("ip", StepName::Network),
        ("ping", StepName::Network),
        ("systemctl", StepName::Iscsi),
        ("iscsiadm", StepName::Iscsi),
        ("iscsi-iname", StepName::Iscsi),
        ("multipath", StepName::Multipath),
        ("multipathd", StepName::Multipath),
        ("udevadm", StepName::Multipath),
        ("lsblk", StepName::Filesystem),
        ("blkid", StepName::Filesystem),
        ("wipefs", StepName::Filesystem),
        ("findmnt", StepName::Filesystem),
        ("parted", StepName::Filesystem),
        ("mount", StepName::Filesystem),
    ];
    if ib {
        need.push(("ibstat", StepName::SubnetManager));
        let run_on_host = answers.subnet_manager.as_ref().and_then(|m| m.run_on_host);
        if run_on_host.unwrap_or(true) {
            need.push(("opensm", StepName::SubnetManager));
        }
    }
    // The network step writes the address in the distro's own stack and brings it up with
    // that stack's tool.
    let has = |p: &str| cx.host.which(p).is_some();
    match distro {
        Distro::Debian if !has("nmcli") => need.push(("ifup", StepName::Network)),
        Distro::Ubuntu => need.push(("netplan", StepName::Network)),
        Distro::Sles if !has("nmcli") => need.push(("wicked", StepName::Network)),
        Distro::Rhel if !has("ifup") => need.push(("nmcli", StepName::Network)),
        _ => {}
    }
    match answers.volume.filesystem {
        Some(FsType::Xfs) => need.push(("mkfs.xfs", StepName::Filesystem)),
        _ => need.push(("mkfs.ext4", StepName::Filesystem)),
    }
    let rebuild = answers.multipath.as_ref().and_then(|m| m.rebuild_initramfs);
    if rebuild.unwrap_or(false) {
        match distro {
            Distro::Rhel | Distro::Sles => need.push(("dracut", StepName::Multipath)),
            Distro::Debian | Distro::Ubuntu => need.push(("update-initramfs", StepName::Multipath)),
        }
    }
    need
}

/// The package manager commands that install `packages`.
fn install_commands(distro: Distro, packages: &[String]) -> Vec<Cmd> {
    let long = Duration::from_secs(900);
    match distro {
        Distro::Rhel => vec![Cmd::change(
            ["dnf", "install", "-y"]
                .into_iter()
                .map(String::from)
                .chain(packages.iter().cloned()),
        )
        .timeout(long)],
        Distro::Sles => vec![Cmd::change(
            ["zypper", "--non-interactive", "install"]
                .into_iter()
                .map(String::from)
                .chain(packages.iter().cloned()),
        )
        .timeout(long)],
        Distro::Debian | Distro::Ubuntu => vec![
            Cmd::change(["apt-get", "update"]).timeout(long),
            Cmd::change(
                ["apt-get", "install", "-y", "--no-install-recommends"]
                    .into_iter()
                    .map(String::from)
                    .chain(packages.iter().cloned()),
            )
            .timeout(long),
        ],
    }
}

/// RDMA devices and whether any port has an InfiniBand link layer.
fn rdma_devices(cx: &Ctx<'_>) -> Result<(Vec<String>, bool), StepError> {
    let base = Path::new("/sys/class/infiniband");
    let devs = cx.host.list_dir(base)?;
    let mut has_ib = false;
    for d in &devs {
        let ports = base.join(d).join("ports");
        for p in cx.host.list_dir(&ports)? {
            let ll = cx.host.read(&ports.join(&p).join("link_layer"))?;
            if ll.is_some_and(|l| l.trim().eq_ignore_ascii_case("infiniband")) {
                has_ib = true;
            }
        }
    }
    Ok((devs, has_ib))
}

fn module_state(cx: &Ctx<'_>, name: &str) -> Result<ModuleState, StepError> {
    if cx.host.exists(&Path::new("/sys/module").join(name)) {
        return Ok(ModuleState::Loaded);
    }
    if cx.host.which("modprobe").is_none() {
        return Ok(ModuleState::Missing);
    }
    let out = cx.probe(&["modprobe", "-n", "-q", name])?;
    Ok(if out.success() {
        ModuleState::Available
    } else {
        ModuleState::Missing
    })
}

impl Preflight {
    fn probe(&mut self, cx: &mut Ctx<'_>, plan: &mut Plan) -> Result<(), StepError> {
        self.blocking.clear();
        let text = match cx.host.read(Path::new("/etc/os-release"))? {
            Some(t) => t,
            None => cx
                .host
                .read(Path::new("/usr/lib/os-release"))?
                .unwrap_or_default(),
        };
        let os = parse_os_release(&text);
        let Some(distro) = os.distro else {
            return Err(StepError::Failed(format!(
                "{} (ID={:?}) is not a distribution the wizard knows how to configure; \
                 supported: RHEL/Rocky/Alma 8-9, SLES 15, Ubuntu 22.04/24.04, Debian 12",
                os.pretty_name, os.id
            )));
        };
        if !os.supported {
            let go_on = cx.ask.want_yes(
                "host.allow_unsupported_os",
                &format!(
                    "{} is not a supported release (RHEL/Rocky/Alma 8-9, SLES 15, Ubuntu \
                     22.04/24.04, Debian 12); it will be configured like {:?}. Continue at your \
                     own risk?",
                    os.pretty_name, distro
                ),
                false,
                |a| &mut a.host.allow_unsupported_os,
            )?;
            if !go_on {
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
        cx.sheet.host.os = Some(os.pretty_name.clone());
        cx.facts.os = Some(os);

        let uname = |cx: &Ctx<'_>, arg: &str| -> Result<Option<String>, StepError> {
            let out = cx.probe(&["uname", arg])?;
            Ok(out
                .success()
                .then(|| out.stdout.trim().to_string())
                .filter(|s| !s.is_empty()))
        };
        cx.facts.kernel = uname(cx, "-r")?;
        cx.facts.hostname = uname(cx, "-n")?;
        cx.sheet.host.kernel = cx.facts.kernel.clone();
        cx.sheet.host.host_name = cx.facts.hostname.clone();

        let root = cx.host.is_root();
        cx.facts.root = Some(root);
        if !root {
            self.blocking.push(
                "not running as root: the wizard configures services, devices and /etc; \
                 run it with sudo"
                    .into(),
            );
        }

        cx.facts.selinux = if cx.host.which("getenforce").is_some() {
            let out = cx.probe(&["getenforce"])?;
            Some(out.stdout.trim().to_string()).filter(|s| !s.is_empty())
        } else {
            cx.host
                .read(Path::new("/sys/fs/selinux/enforce"))?
                .map(|v| {
                    if v.trim() == "1" {
                        "Enforcing".to_string()
                    } else {
                        "Permissive".to_string()
                    }
                })
        };
        if cx.facts.selinux.as_deref() == Some("Enforcing") {
            plan.note(
                "SELinux is enforcing: if IB ports stay in State: Initializing, opensm is \
                 being denied manage_subnet on infiniband_endport (see the subnet-manager step)",
            );
        }

        let (devs, has_ib) = rdma_devices(cx)?;
        if devs.is_empty() {
            self.blocking.push(
                "no RDMA device under /sys/class/infiniband: load the HCA driver (mlx5_ib, \
                 mlx4_ib) or, for soft-RoCE, `rdma link add rxe0 type rxe netdev <ethernet \
                 netdev>`"
                    .into(),
            );
        }

        let mut modules = vec!["ib_iser"];
        if has_ib {
            modules.push("ib_ipoib");
        }
        for m in ["mlx5_ib", "mlx4_ib", "rdma_rxe"] {
            if cx.host.exists(&Path::new("/sys/module").join(m)) {
                modules.push(m);
            }
        }
        cx.facts.modules.clear();
        for m in modules {
            let st = module_state(cx, m)?;
            if st == ModuleState::Missing && m != "ib_ipoib" {
                self.blocking.push(format!(
                    "kernel module {m} is not available for kernel {}: install the kernel's \
                     extra modules package",
                    cx.facts.kernel.as_deref().unwrap_or("?")
                ));
            } else if st == ModuleState::Missing {
                self.blocking.push(format!(
                    "kernel module {m} (IPoIB) is not available: InfiniBand ports need it"
                ));
            }
            cx.facts.modules.insert(m.to_string(), st);
        }

        let mut missing = Vec::new();
        let mut packages = BTreeSet::new();
        for (program, step) in needed_programs(cx, distro, has_ib) {
            if cx.host.which(program).is_none() {
                let package = distro.package_for(program);
                if let Some(p) = package {
                    packages.insert(p.to_string());
                }
                missing.push(MissingProgram {
                    program: program.to_string(),
                    needed_by: step.to_string(),
                    package: package.map(String::from),
                });
            }
        }
        if !missing.is_empty() {
            let list: Vec<String> = missing
                .iter()
                .map(|m| format!("{} ({})", m.program, m.needed_by))
                .collect();
            plan.note(format!("missing programs: {}", list.join(", ")));
            let pkgs: Vec<String> = packages.into_iter().collect();
            for cmd in install_commands(distro, &pkgs) {
                plan.push(Action::run(cmd, "install what later steps need"));
            }
        }
        cx.facts.missing_programs = missing;
        Ok(())
    }
}

impl Step for Preflight {
    fn name(&self) -> StepName {
        StepName::Preflight
    }

    fn plan(&mut self, cx: &mut Ctx<'_>) -> Result<Plan, StepError> {
        let mut plan = Plan::new(StepName::Preflight);
        self.probe(cx, &mut plan)?;
        if !self.blocking.is_empty() {
            if cx.options.dry_run {
                for b in &self.blocking {
                    plan.note(format!("would stop here: {b}"));
                }
            } else {
                return Err(StepError::Failed(format!(
                    "the host is not ready:\n    - {}",
                    self.blocking.join("\n    - ")
                )));
            }
        }
        Ok(plan)
    }

    fn verify(&mut self, cx: &mut Ctx<'_>) -> Result<(), StepError> {
        let still: Vec<String> = cx
            .facts
            .missing_programs
            .iter()
            .filter(|m| cx.host.which(&m.program).is_none())
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
mod tests {
    use super::*;
    use crate::prompt::Asker;
    use crate::steps::fake::FakeHost;
    use crate::steps::{CmdOutput, Facts, NoProgress, Options};
    use crate::worksheets::Worksheet;

    #[test]
    fn os_release_of_each_supported_family() {
        let cases = [
            ("ID=\"rocky\"\nVERSION_ID=\"9.4\"\nPRETTY_NAME=\"Rocky Linux 9.4 (Blue Onyx)\"\nID_LIKE=\"rhel centos fedora\"\n", Some(Distro::Rhel), true),
            ("ID=\"sles\"\nVERSION_ID=\"15.5\"\n", Some(Distro::Sles), true),
            ("ID=ubuntu\nVERSION_ID=\"24.04\"\nID_LIKE=debian\n", Some(Distro::Ubuntu), true),
            ("ID=ubuntu\nVERSION_ID=\"20.04\"\n", Some(Distro::Ubuntu), false),
            ("ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n", Some(Distro::Debian), true),
            ("ID=linuxmint\nID_LIKE=\"ubuntu debian\"\nVERSION_ID=\"21.3\"\n", Some(Distro::Ubuntu), false),
            ("ID=\"ol\"\nID_LIKE=\"fedora\"\nVERSION_ID=\"9.3\"\n", Some(Distro::Rhel), false),
            ("ID=arch\n", None, false),
        ];
        for (text, distro, supported) in cases {
            let os = parse_os_release(text);
            assert_eq!((os.distro, os.supported), (distro, supported), "{text}");
        }
        assert_eq!(
            parse_os_release(cases[0].0).pretty_name,
            "Rocky Linux 9.4 (Blue Onyx)"
        );
    }

    fn debian_host() -> FakeHost {
        let h = FakeHost::new();
        h.put_file(
            "/etc/os-release",
            "ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n",
        );
        h.put_file(
            "/sys/class/infiniband/rxe0/ports/1/link_layer",
            "Ethernet\n",
        );
        h.put_file("/sys/module/ib_iser/initstate", "live\n");
        h.put_file("/sys/module/rdma_rxe/initstate", "live\n");
        h.allow(&["uname", "-r"], CmdOutput::ok("6.1.0-26-amd64\n"));
        h.allow(&["uname", "-n"], CmdOutput::ok("db01\n"));
        h.allow(&["getenforce"], CmdOutput::ok("Disabled\n"));
        h
    }

    fn plan_with(
        h: &FakeHost,
        answers: serde_json::Value,
        dry_run: bool,
    ) -> (Result<Plan, StepError>, Facts, Worksheet) {
        let mut ask = Asker::unattended(answers);
        let mut facts = Facts::default();
        let mut sheet = Worksheet::default();
        let options = Options {
            dry_run,
            ..Default::default()
        };
        let mut cx = Ctx {
            host: h,
            ask: &mut ask,
            facts: &mut facts,
            sheet: &mut sheet,
            progress: &NoProgress,
            options: &options,
        };
        let r = Preflight::default().plan(&mut cx);
        (r, facts, sheet)
    }

    #[test]
    fn a_ready_roce_host_has_nothing_to_do_and_fills_the_worksheet() {
        let h = debian_host();
        let (plan, facts, sheet) = plan_with(&h, serde_json::json!({"fabric": "roce"}), false);
        let plan = plan.unwrap();
        assert!(plan.is_empty(), "{}", plan.render());
        assert_eq!(facts.kernel.as_deref(), Some("6.1.0-26-amd64"));
        assert_eq!(facts.modules.get("ib_iser"), Some(&ModuleState::Loaded));
        assert_eq!(sheet.host.kernel.as_deref(), Some("6.1.0-26-amd64"));
        assert_eq!(sheet.host.host_name.as_deref(), Some("db01"));
        assert_eq!(
            sheet.host.os.as_deref(),
            Some("Debian GNU/Linux 12 (bookworm)")
        );
        assert!(h.changes().is_empty());
    }

    #[test]
    fn missing_programs_are_installed_by_package() {
        let h = debian_host().only_programs(&[
            "modprobe",
            "ip",
            "ping",
            "systemctl",
            "lsblk",
            "blkid",
            "wipefs",
            "findmnt",
            "mount",
            "mkfs.ext4",
            "udevadm",
        ]);
        let (plan, facts, _) = plan_with(&h, serde_json::json!({"fabric": "roce"}), false);
        let plan = plan.unwrap();
        let text = plan.render();
        assert!(
            text.contains(
                "apt-get install -y --no-install-recommends ifupdown multipath-tools open-iscsi parted"
            ),
            "{text}"
        );
        assert!(
            text.contains("missing programs: iscsiadm (iscsi)"),
            "{text}"
        );
        assert_eq!(
            facts.missing_programs.len(),
            6,
            "{:?}",
            facts.missing_programs
        );
    }

    #[test]
    fn an_infiniband_host_needs_opensm_and_ipoib() {
        let h = debian_host().only_programs(&[
            "modprobe",
            "ip",
            "ping",
            "systemctl",
            "iscsiadm",
            "iscsi-iname",
            "multipath",
            "multipathd",
            "lsblk",
            "blkid",
            "wipefs",
            "findmnt",
            "parted",
            "mount",
            "mkfs.ext4",
            "udevadm",
        ]);
        h.put_file(
            "/sys/class/infiniband/mlx5_0/ports/1/link_layer",
            "InfiniBand\n",
        );
        h.put_file("/sys/module/ib_ipoib/initstate", "live\n");
        let (plan, _, _) = plan_with(&h, serde_json::json!({}), false);
        let text = plan.unwrap().render();
        assert!(text.contains("infiniband-diags opensm"), "{text}");
    }

    #[test]
    fn no_rdma_device_and_no_root_stop_a_real_run_but_not_a_dry_run() {
        let h = FakeHost::new().not_root();
        h.put_file("/etc/os-release", "ID=debian\nVERSION_ID=12\n");
        h.allow(&["uname", "-r"], CmdOutput::ok("6.1.0\n"));
        h.allow(&["uname", "-n"], CmdOutput::ok("h\n"));
        h.allow(&["getenforce"], CmdOutput::ok("Enforcing\n"));
        h.allow(
            &["modprobe", "-n", "-q", "ib_iser"],
            CmdOutput::status(1, "", ""),
        );
        let (r, _, _) = plan_with(&h, serde_json::json!({}), false);
        let msg = r.unwrap_err().to_string();
        assert!(msg.contains("not running as root"), "{msg}");
        assert!(msg.contains("no RDMA device"), "{msg}");
        assert!(msg.contains("ib_iser is not available"), "{msg}");
        let (r, _, _) = plan_with(&h, serde_json::json!({}), true);
        let text = r.unwrap().render();
        assert!(
            text.contains("would stop here: not running as root"),
            "{text}"
        );
        assert!(text.contains("SELinux is enforcing"), "{text}");
    }

    #[test]
    fn an_unsupported_release_needs_the_operators_consent() {
        let h = debian_host();
        h.put_file(
            "/etc/os-release",
            "ID=ubuntu\nVERSION_ID=\"20.04\"\nPRETTY_NAME=\"Ubuntu 20.04.6 LTS\"\n",
        );
        let (r, _, _) = plan_with(&h, serde_json::json!({"fabric": "roce"}), false);
        let msg = r.unwrap_err().to_string();
        assert!(msg.contains("host.allow_unsupported_os"), "{msg}");
        let (r, _, _) = plan_with(
            &h,
            serde_json::json!({"fabric": "roce", "host": {"allow_unsupported_os": true}}),
            false,
        );
        assert!(r
            .unwrap()
            .render()
            .contains("continuing at the operator's risk"));
    }
}
