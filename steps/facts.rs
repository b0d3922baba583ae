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
            "ifup" | "ifdown" => {
                if self == Distro::Sles {
                    "wicked"
                } else if self == Distro::Rhel {
                    "network-scripts"
                } else {
                    "ifupdown"
                }
            }
            "nmcli" => {
                if rpm {
                    "NetworkManager"
                } else {
                    "network-manager"
                }
            }
            "netplan" => "netplan.io",
            "wicked" => "wicked",
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

/// An RDMA port the wizard configures, joined with its answers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PortFact {
    /// Network device carrying the address (IPoIB interface, or the Ethernet netdev on RoCE).
    pub netdev: String,
    /// RDMA device (mlx5_0, rxe0), when known.
    pub rdma_device: Option<String>,
    /// Port number on the RDMA device.
    pub rdma_port: Option<u32>,
    /// Port GUID (`0x` + 16 hex).
    pub guid: Option<String>,
    /// `infiniband` or `ethernet`.
    pub link_layer: Option<String>,
    /// Address with prefix, as configured (`192.168.130.10/24`).
    pub address: String,
}

/// An iSCSI iface the wizard made for a port.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct IfaceFact {
    /// iface name (`iface-ib0`).
    pub name: String,
    /// The netdev it is bound to.
    pub netdev: String,
    /// The port's address with prefix: portals in this subnet are reached through it.
    pub address: String,
}

/// A logged-in iSCSI session.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SessionFact {
    /// iface name.
    pub iface: String,
    /// Portal `address:port`.
    pub portal: String,
    /// Target IQN.
    pub target: String,
    /// Transport (`iser`).
    pub transport: String,
    /// SCSI disks attached through it (`sdb`).
    pub disks: Vec<String>,
}

/// The multipath volume and what was made on it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct VolumeFact {
    /// Multipath WWID.
    pub wwid: Option<String>,
    /// Map device (`/dev/mapper/<name>`).
    pub map_device: Option<String>,
    /// Size in bytes.
    pub size_bytes: Option<u64>,
    /// Partition node (found through lsblk), when partitioned.
    pub partition: Option<String>,
    /// The device the filesystem is on (partition or map).
    pub fs_device: Option<String>,
    /// Filesystem UUID.
    pub fs_uuid: Option<String>,
    /// Mount point.
    pub mount_point: Option<String>,
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
    /// The fabric in use (`infiniband` or `roce`), once known.
    pub fabric: Option<String>,
    /// The ports being configured.
    pub ports: Vec<PortFact>,
    /// The initiator IQN in effect.
    pub initiator_iqn: Option<String>,
    /// The target IQN (given, or discovered).
    pub target_iqn: Option<String>,
    /// iSCSI ifaces, one per port.
    pub ifaces: Vec<IfaceFact>,
    /// Logged-in sessions.
    pub sessions: Vec<SessionFact>,
    /// The volume.
    pub volume: VolumeFact,
    /// Facts of steps that keep their own typed records, by step name.
    pub extra: BTreeMap<String, serde_json::Value>,
}
