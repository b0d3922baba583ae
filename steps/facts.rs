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
    /// Debian 12 and 13.
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
    /// What the multipath step recorded about the map and its own changes.
    pub multipath: MultipathFact,
    /// The untyped record of earlier versions (`extra` in an old `state.json`): read so
    /// that a rebuild of the initramfs left pending is not forgotten, and written back only
    /// while that is so (the multipath step clears it when it rebuilds).
    #[serde(rename = "extra", skip_serializing_if = "LegacyExtra::is_empty")]
    pub legacy_extra: LegacyExtra,
}

impl Facts {
    /// The volumes the wizard attached and has not detached: those with a WWID. Today the
    /// record holds at most one (`volume`); `detach` and `status` read volumes only through
    /// here, so a list of volumes changes this function and not its callers.
    pub fn attached_volumes(&self) -> Vec<&VolumeFact> {
        [&self.volume]
            .into_iter()
            .filter(|v| v.wwid.is_some())
            .collect()
    }

    /// Forget the attached volume `wwid` (after `detach` took it off the host), with what
    /// the multipath step recorded of its map. Whether it was attached.
    pub fn forget_volume(&mut self, wwid: &str) -> bool {
        if self.volume.wwid.as_deref() != Some(wwid) {
            return false;
        }
        self.volume = VolumeFact::default();
        let pending = self.multipath.initramfs_pending;
        self.multipath = MultipathFact {
            initramfs_pending: pending,
            ..MultipathFact::default()
        };
        true
    }

    /// Whether a change to the multipath configuration still waits for its initramfs
    /// rebuild (recorded by this version, or by an earlier one under `extra`).
    pub fn initramfs_pending(&self) -> bool {
        self.multipath.initramfs_pending
            || self
                .legacy_extra
                .multipath
                .as_ref()
                .is_some_and(|m| m.initramfs_pending)
    }
}

/// One path of the volume's map, and the session it goes through.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MapPathFact {
    /// The SCSI disk (`sdb`).
    pub dev: String,
    /// Its states as `multipath -ll` shows them (`active ready running`).
    pub state: String,
    /// The iface of the session it goes through, when one does.
    pub iface: Option<String>,
    /// The portal of that session.
    pub portal: Option<String>,
}

/// What the multipath step recorded (under the keys earlier versions used in `extra`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MultipathFact {
    /// The map's name (`mpatha`, or the WWID).
    pub name: Option<String>,
    /// `VENDOR,PRODUCT` of the LUN.
    pub vendor_product: Option<String>,
    /// The map's hardware handler (`1 alua`, `1 rdac`).
    pub hwhandler: Option<String>,
    /// The map's paths.
    pub paths: Vec<MapPathFact>,
    /// What the volume carried when it was chosen (signatures, mounts; empty: nothing).
    pub data: Vec<String>,
    /// What the run that verified changed in the configuration.
    pub config_changes: Vec<String>,
    /// A configuration change was applied and the initramfs not yet rebuilt.
    pub initramfs_pending: bool,
    /// The command that last rebuilt the initramfs.
    pub initramfs_rebuilt: Option<String>,
}

/// The `extra` map of earlier versions, as far as anything still reads it (its other keys
/// are left unread: the multipath step records them again when it verifies).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LegacyExtra {
    /// `extra.multipath`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub multipath: Option<LegacyMultipath>,
}

impl LegacyExtra {
    /// Nothing left to carry forward.
    pub fn is_empty(&self) -> bool {
        !self.multipath.as_ref().is_some_and(|m| m.initramfs_pending)
    }
}

/// `extra.multipath` of earlier versions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LegacyMultipath {
    /// A configuration change was applied and the initramfs not yet rebuilt.
    pub initramfs_pending: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_old_state_with_extra_loads_and_keeps_a_pending_rebuild() {
        let old = serde_json::json!({
            "kernel": "6.1.0",
            "extra": {"multipath": {
                "initramfs_pending": true,
                "name": "mpatha",
                "paths": [{"dev": "sda", "state": "active ready running", "iface": null}],
                "something": {"else": 1}
            }, "other-step": [1, 2]}
        });
        let f: Facts = serde_json::from_value(old).unwrap();
        assert_eq!(f.kernel.as_deref(), Some("6.1.0"));
        assert!(f.initramfs_pending());
        assert_eq!(f.multipath, MultipathFact::default());
        // Saved again before the multipath step runs, the pending rebuild is kept.
        let again: Facts = serde_json::from_value(serde_json::to_value(&f).unwrap()).unwrap();
        assert!(again.initramfs_pending());
        let none = serde_json::json!({"extra": {"multipath": {"initramfs_pending": false}}});
        let f: Facts = serde_json::from_value(none).unwrap();
        assert!(!f.initramfs_pending());
        let written = serde_json::to_value(&f).unwrap();
        assert!(written.get("extra").is_none(), "{written}");
    }

    #[test]
    fn only_a_volume_with_a_wwid_counts_as_attached() {
        let mut f = Facts::default();
        assert!(f.attached_volumes().is_empty());
        f.volume.mount_point = Some("/data".into());
        assert!(f.attached_volumes().is_empty());
        f.volume.wwid = Some("3600a098000a0b1c2000000005f0a0b1c".into());
        assert_eq!(f.attached_volumes().len(), 1);
    }

    #[test]
    fn the_multipath_record_round_trips() {
        let mut f = Facts::default();
        f.multipath.initramfs_pending = true;
        f.multipath.paths.push(MapPathFact {
            dev: "sdb".into(),
            state: "active ready running".into(),
            iface: Some("iface-ib0".into()),
            portal: Some("192.168.130.101:3260".into()),
        });
        let back: Facts = serde_json::from_str(&serde_json::to_string(&f).unwrap()).unwrap();
        assert_eq!(back, f);
        assert!(back.initramfs_pending());
    }
}
