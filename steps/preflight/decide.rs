//! Preflight's decisions, pure (no IO, no `Ctx`): which programs the later steps need given
//! the answers and the host, which of them are missing and from which packages, the commands
//! that install them, and what stops a real run. The same `missing` check serves the plan
//! (what to install) and verify (is it installed now).

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use crate::settings::{Fabric, FsType};
use crate::steps::facts::{Distro, MissingProgram, ModuleState, OsInfo};
use crate::steps::{Cmd, StepName};

/// What the answers say that decides which programs are needed (nothing is asked for it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    /// The fabric answer (`auto` when not given).
    pub fabric: Fabric,
    /// `subnet_manager.run_on_host` (`true` when not given).
    pub run_on_host: bool,
    /// The filesystem to make.
    pub filesystem: FsType,
    /// `multipath.rebuild_initramfs`.
    pub rebuild_initramfs: bool,
}

/// What preflight found on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// os-release.
    pub os: OsInfo,
    /// The family it is configured as.
    pub distro: Distro,
    /// `uname -r`.
    pub kernel: Option<String>,
    /// `uname -n`.
    pub hostname: Option<String>,
    /// Running as root.
    pub root: bool,
    /// SELinux mode, when SELinux is there.
    pub selinux: Option<String>,
    /// RDMA devices under /sys/class/infiniband.
    pub rdma_devices: Vec<String>,
    /// Whether any RDMA port has an InfiniBand link layer.
    pub has_ib: bool,
    /// The kernel modules the procedure uses, in the order checked.
    pub modules: Vec<(String, ModuleState)>,
    /// Which of [`PROGRAMS`] are installed.
    pub installed: BTreeSet<String>,
}

/// Every program [`needed_programs`] may name or look at: observe checks each.
pub const PROGRAMS: &[&str] = &[
    "modprobe",
    "ip",
    "ping",
    "systemctl",
    "iscsiadm",
    "iscsi-iname",
    "multipath",
    "multipathd",
    "udevadm",
    "lsblk",
    "blkid",
    "wipefs",
    "findmnt",
    "parted",
    "mount",
    "ibstat",
    "opensm",
    "ifup",
    "netplan",
    "wicked",
    "nmcli",
    "mkfs.xfs",
    "mkfs.ext4",
    "dracut",
    "update-initramfs",
];

/// Programs the later steps need, given what the answers say and what the host has.
pub fn needed_programs(
    want: &Wanted,
    distro: Distro,
    has_ib: bool,
    installed: &BTreeSet<String>,
) -> Vec<(&'static str, StepName)> {
    let ib = match want.fabric {
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
        if want.run_on_host {
            need.push(("opensm", StepName::SubnetManager));
        }
    }
    // The network step writes the address in the distro's own stack and brings it up with
    // that stack's tool.
    if let Some(tool) = network_tool(distro, &|p| installed.contains(p)) {
        need.push((tool, StepName::Network));
    }
    match want.filesystem {
        FsType::Xfs => need.push(("mkfs.xfs", StepName::Filesystem)),
        FsType::Ext4 => need.push(("mkfs.ext4", StepName::Filesystem)),
    }
    if want.rebuild_initramfs {
        match distro {
            Distro::Rhel | Distro::Sles => need.push(("dracut", StepName::Multipath)),
            Distro::Debian | Distro::Ubuntu => need.push(("update-initramfs", StepName::Multipath)),
        }
    }
    need
}

/// The needed programs that are not installed, each with the package that provides it.
pub fn missing(want: &Wanted, seen: &Observed) -> Vec<MissingProgram> {
    needed_programs(want, seen.distro, seen.has_ib, &seen.installed)
        .into_iter()
        .filter(|(program, _)| !seen.installed.contains(*program))
        .map(|(program, step)| MissingProgram {
            program: program.to_string(),
            needed_by: step.to_string(),
            package: seen.distro.package_for(program).map(String::from),
        })
        .collect()
}

/// The packages that provide `missing`, sorted and once each.
pub fn packages(missing: &[MissingProgram]) -> Vec<String> {
    let set: BTreeSet<String> = missing.iter().filter_map(|m| m.package.clone()).collect();
    set.into_iter().collect()
}

/// The package manager commands that install `packages`.
pub fn install_commands(distro: Distro, packages: &[String]) -> Vec<Cmd> {
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

/// What stops a real run: a dry run shows it as "would stop here".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Blocker {
    /// Not root.
    NotRoot,
    /// No RDMA device at all.
    NoRdmaDevice,
    /// A module the procedure needs is not there for this kernel.
    ModuleMissing {
        /// The module.
        module: String,
        /// `uname -r`.
        kernel: Option<String>,
    },
    /// IPoIB is missing on a host with InfiniBand ports.
    IpoibMissing {
        /// The module (`ib_ipoib`).
        module: String,
    },
}

impl fmt::Display for Blocker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Blocker::NotRoot => f.write_str(
                "not running as root: the wizard configures services, devices and /etc; \
                 run it with sudo",
            ),
            Blocker::NoRdmaDevice => f.write_str(
                "no RDMA device under /sys/class/infiniband: load the HCA driver (mlx5_ib, \
                 mlx4_ib) or, for soft-RoCE, `rdma link add rxe0 type rxe netdev <ethernet \
                 netdev>`",
            ),
            Blocker::ModuleMissing { module, kernel } => write!(
                f,
                "kernel module {module} is not available for kernel {}: install the kernel's \
                 extra modules package",
                kernel.as_deref().unwrap_or("?")
            ),
            Blocker::IpoibMissing { module } => write!(
                f,
                "kernel module {module} (IPoIB) is not available: InfiniBand ports need it"
            ),
        }
    }
}

/// Everything that stops a real run on this host, in the order the operator reads it.
pub fn blockers(seen: &Observed) -> Vec<Blocker> {
    let mut out = Vec::new();
    if !seen.root {
        out.push(Blocker::NotRoot);
    }
    if seen.rdma_devices.is_empty() {
        out.push(Blocker::NoRdmaDevice);
    }
    for (m, st) in &seen.modules {
        if *st != ModuleState::Missing {
            continue;
        }
        out.push(if m == "ib_ipoib" {
            Blocker::IpoibMissing { module: m.clone() }
        } else {
            Blocker::ModuleMissing {
                module: m.clone(),
                kernel: seen.kernel.clone(),
            }
        });
    }
    out
}

/// The tool the network step needs to bring a port up in the distro's own stack, when it is
/// missing (`has` tells what is installed): preflight installs it, and a dry run plans with
/// it. The one place this rule lives.
pub fn network_tool(distro: Distro, has: &dyn Fn(&str) -> bool) -> Option<&'static str> {
    match distro {
        Distro::Debian if !has("nmcli") => Some("ifup"),
        Distro::Ubuntu => Some("netplan"),
        Distro::Sles if !has("nmcli") => Some("wicked"),
        Distro::Rhel if !has("ifup") => Some("nmcli"),
        _ => None,
    }
}
