//! Facts learned about the host, saved in `state.json` after every step so that later
//! steps (and `--only`/`--from` runs) can use them without probing again.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The distribution families the wizard knows how to configure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Distro {
    /// RHEL, Rocky, Alma 8-9.
    Rhel,
    /// SUSE Linux Enterprise Server 15.
    Sles,
    /// Ubuntu 22.04, 24.04.
    Ubuntu,
    /// Debian 12.
    Debian,
}

impl Distro {
    /// The package that provides a program on this distro (`None`: not packaged there).
    pub fn package_for(self, program: &str) -> Option<&'static str> {
        let rpm = matches!(self, Distro::Rhel | Distro::Sles);
        Some(match program {
            "iscsiadm" | "iscsi-iname" | "iscsid" => {
                if rpm {
                    if self == Distro::Sles {
                        "open-iscsi"
                    } else {
                        "iscsi-initiator-utils"
                    }
                } else {
                    "open-iscsi"
                }
            }
            "multipath" | "multipathd" | "kpartx" => {
                if self == Distro::Rhel {
                    "device-mapper-multipath"
                } else {
                    "multipath-tools"
                }
            }
            "ibstat" | "sminfo" => "infiniband-diags",
            "opensm" => "opensm",
            "ibv_devinfo" => {
                if rpm {
                    "libibverbs-utils"
                } else {
                    "ibverbs-utils"
                }
            }
            "rdma" | "ip" => {
                if rpm {
                    "iproute"
                } else {
                    "iproute2"
                }
            }
            "ping" => {
                if rpm {
                    "iputils"
                } else {
                    "iputils-ping"
                }
            }
            "parted" => "parted",
            "mkfs.ext4" | "e2fsck" => "e2fsprogs",
            "mkfs.xfs" => "xfsprogs",
            "lsblk" | "blkid" | "wipefs" | "findmnt" | "mount" | "umount" => "util-linux",
            "modprobe" | "lsmod" => "kmod",
            "udevadm" => {
                if rpm {
                    "systemd-udev"
                } else {
                    "udev"
                }
            }
            "systemctl" => "systemd",
            "dracut" => "dracut",
            "update-initramfs" => "initramfs-tools",
            "getenforce" => {
                if rpm {
                    "libselinux-utils"
                } else {
                    "selinux-utils"
                }
            }
            _ => return None,
        })
    }

    /// The install command an administrator would type for these packages.
    pub fn install_hint(self, packages: &[&str]) -> String {
        let tool = match self {
            Distro::Rhel => "dnf install",
            Distro::Sles => "zypper install",
            Distro::Ubuntu | Distro::Debian => "apt-get install",
        };
        format!("{tool} {}", packages.join(" "))
    }

    /// The services that make iSCSI log in at boot on this distro (besides iscsid).
    pub fn iscsi_services(self) -> &'static [&'static str] {
        match self {
            Distro::Rhel => &["iscsid", "iscsi"],
            Distro::Sles => &["iscsid", "iscsi"],
            Distro::Ubuntu | Distro::Debian => &["iscsid", "open-iscsi"],
        }
    }
}

/// The operating system, from os-release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OsInfo {
    /// `ID`.
    pub id: String,
    /// `ID_LIKE`, split.
    pub id_like: Vec<String>,
    /// `VERSION_ID`.
    pub version_id: String,
    /// `PRETTY_NAME`.
    pub pretty_name: String,
    /// The family the wizard configures it as (`None`: unsupported).
    pub distro: Option<Distro>,
    /// Whether this exact release is one the wizard supports.
    pub supported: bool,
}

/// A kernel module's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModuleState {
    /// Loaded (present under /sys/module).
    Loaded,
    /// Not loaded, but `modprobe -n` finds it.
    Available,
    /// Not found for the running kernel.
    Missing,
}

/// A program a later step needs that is not installed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MissingProgram {
    /// The program.
    pub program: String,
    /// The step that needs it.
    pub needed_by: String,
    /// The package that provides it on this distro, if known.
    pub package: Option<String>,
}

/// Everything learned so far.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Facts {
    /// Operating system.
    pub os: Option<OsInfo>,
    /// `uname -r`.
    pub kernel: Option<String>,
    /// Host name.
    pub hostname: Option<String>,
    /// SELinux mode (`Enforcing`, `Permissive`, `Disabled`), `None` when SELinux is absent.
    pub selinux: Option<String>,
    /// Whether the wizard runs as root.
    pub root: Option<bool>,
    /// Programs later steps need that are missing.
    pub missing_programs: Vec<MissingProgram>,
    /// Kernel modules the procedure uses, by name.
    pub modules: BTreeMap<String, ModuleState>,
}
