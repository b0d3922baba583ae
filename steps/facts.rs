//! Facts learned about the host, saved in `state.json` after every step so that later
//! steps (and `--only`/`--from` runs) can use them without probing again.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::settings::{Answers, Wwid};

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

/// One multipath volume and what was made on it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct VolumeFact {
    /// The volume's name in the answers (`volumes[].name`), when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Chosen by `wwid: "auto"` (the one empty LUN), so a later run finds the same one.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub auto: bool,
    /// Multipath WWID.
    pub wwid: Option<String>,
    /// The map's name (`mpatha`, or the WWID).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub map_name: Option<String>,
    /// The map's paths when the multipath step verified it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<MapPathFact>,
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
    /// The volumes, one per entry of the answers' volume list that the multipath step
    /// found (in its order), then any recorded earlier and since left out of the answers
    /// (they stay attached: only `detach` removes one). An earlier version's `volume` (one
    /// object) is read as a list of one.
    #[serde(alias = "volume", deserialize_with = "one_or_many")]
    pub volumes: Vec<VolumeFact>,
    /// What the multipath step recorded about the map and its own changes.
    pub multipath: MultipathFact,
    /// The untyped record of earlier versions (`extra` in an old `state.json`): read so
    /// that a rebuild of the initramfs left pending is not forgotten, and written back only
    /// while that is so (the multipath step clears it when it rebuilds).
    #[serde(rename = "extra", skip_serializing_if = "LegacyExtra::is_empty")]
    pub legacy_extra: LegacyExtra,
    /// What the array step read back from the array (with an `array` section only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub array: Option<ArrayFact>,
}

/// The array as the array step verified it: the values the later steps use instead of
/// answers (`target.iqn: "from-array"`, omitted portals, each volume's WWID) and the
/// worksheet records.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ArrayFact {
    /// The array's name.
    pub name: String,
    /// Controller firmware version.
    pub firmware: String,
    /// The controller URLs, as configured.
    pub controllers: Vec<String>,
    /// The target IQN from the array's iSCSI settings.
    pub target_iqn: String,
    /// The array's iSER ports (all of them, with link state and whether they are used).
    pub ports: Vec<ArrayPortFact>,
    /// The host's name on the array.
    pub host_name: String,
    /// Its host type index.
    pub host_type_index: u32,
    /// Its host type's name (`LnxDHALUA`).
    pub host_type: String,
    /// The host group the host is in (empty: none, the volumes are mapped to the host).
    pub host_group: String,
    /// The mapped volumes.
    pub volumes: Vec<ArrayVolumeFact>,
}

impl ArrayFact {
    /// The portals sessions log in to: the ports that are up and in a host port's subnet.
    pub fn portals(&self) -> Vec<&ArrayPortFact> {
        self.ports.iter().filter(|p| p.used).collect()
    }
}

/// One iSER port of the array.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ArrayPortFact {
    /// `A` or `B`.
    pub controller: String,
    /// Host-side channel (port number on the controller).
    pub channel: u32,
    /// IPv4 address.
    pub address: String,
    /// Link state from the hardware inventory (`active`, `down`; empty when not listed).
    pub link: String,
    /// Up and in one of the host ports' subnets: a portal the sessions use.
    pub used: bool,
}

/// One volume mapped to the host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ArrayVolumeFact {
    /// The array's volume name.
    pub name: String,
    /// Its WWN as the array gives it.
    pub wwn: String,
    /// The host's multipath WWID (`3` + lower-case WWN).
    pub wwid: String,
    /// The LUN it is mapped at.
    pub lun: u32,
    /// The mapping's reference (for `detach --unmap`).
    pub lun_mapping_ref: String,
}

/// `volumes` as a list, or an earlier version's `volume` as a list of one; a record with
/// nothing in it (an old state saved before the multipath step) is no volume.
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<VolumeFact>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        Many(Vec<VolumeFact>),
        One(Box<VolumeFact>),
    }
    let list = match OneOrMany::deserialize(d)? {
        OneOrMany::Many(v) => v,
        OneOrMany::One(v) => vec![*v],
    };
    Ok(list
        .into_iter()
        .filter(|v| *v != VolumeFact::default())
        .collect())
}

impl Facts {
    /// The volumes the wizard attached and has not detached: those with a WWID, in the
    /// order of the record. `detach` and `status` read volumes only through here.
    pub fn attached_volumes(&self) -> Vec<&VolumeFact> {
        self.volumes.iter().filter(|v| v.wwid.is_some()).collect()
    }

    /// Which record is the volume of answers entry `i`: the one of its WWID, or for
    /// `"auto"` the one an earlier run chose by "auto" (or, from a state of the time of one
    /// volume, the only record when the answers have only one volume).
    pub fn volume_index(&self, answers: &Answers, i: usize) -> Option<usize> {
        let list = answers.volume_list();
        let a = list.get(i)?;
        match &a.wwid {
            Some(Wwid::Id(w)) => self
                .volumes
                .iter()
                .position(|v| v.wwid.as_deref().is_some_and(|x| x.eq_ignore_ascii_case(w))),
            _ => self
                .volumes
                .iter()
                .position(|v| v.auto)
                .or_else(|| (list.len() == 1 && self.volumes.len() == 1).then_some(0)),
        }
    }

    /// The record of answers entry `i`, when there is one.
    pub fn volume_of(&self, answers: &Answers, i: usize) -> Option<&VolumeFact> {
        self.volume_index(answers, i).map(|k| &self.volumes[k])
    }

    /// The record of answers entry `i`, made (empty) when there is none.
    pub fn volume_of_mut(&mut self, answers: &Answers, i: usize) -> &mut VolumeFact {
        let k = match self.volume_index(answers, i) {
            Some(k) => k,
            None => {
                self.volumes.push(VolumeFact::default());
                self.volumes.len() - 1
            }
        };
        &mut self.volumes[k]
    }

    /// Forget the attached volume `wwid` (after `detach` took it off the host), with what
    /// the multipath step recorded of its map. Whether it was attached.
    pub fn forget_volume(&mut self, wwid: &str) -> bool {
        let before = self.volumes.len();
        self.volumes.retain(|v| {
            !v.wwid
                .as_deref()
                .is_some_and(|w| w.eq_ignore_ascii_case(wwid))
        });
        if self.volumes.len() == before {
            return false;
        }
        // The map-wide record describes the volumes' maps: with none left it describes
        // nothing (a pending initramfs rebuild is the configuration's, and stays).
        if self.volumes.is_empty() {
            let pending = self.multipath.initramfs_pending;
            self.multipath = MultipathFact {
                initramfs_pending: pending,
                ..MultipathFact::default()
            };
        }
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
        f.volumes.push(VolumeFact {
            mount_point: Some("/data".into()),
            ..Default::default()
        });
        assert!(f.attached_volumes().is_empty());
        f.volumes[0].wwid = Some("3600a098000a0b1c2000000005f0a0b1c".into());
        f.volumes.push(VolumeFact {
            wwid: Some("3600a098000a0b1c2000000005f0a0b1d".into()),
            ..Default::default()
        });
        assert_eq!(f.attached_volumes().len(), 2);
    }

    #[test]
    fn an_old_state_with_one_volume_loads_as_a_list_and_is_written_as_one() {
        let old = serde_json::json!({"volume": {
            "wwid": "3600a098000a0b1c2000000005f0a0b1c",
            "map_device": "/dev/mapper/mpatha",
            "mount_point": "/data"
        }});
        let f: Facts = serde_json::from_value(old).unwrap();
        assert_eq!(f.volumes.len(), 1);
        assert_eq!(
            f.volumes[0].map_device.as_deref(),
            Some("/dev/mapper/mpatha")
        );
        let written = serde_json::to_value(&f).unwrap();
        assert!(written.get("volume").is_none(), "{written}");
        assert_eq!(written["volumes"][0]["mount_point"], "/data");
        let back: Facts = serde_json::from_value(written).unwrap();
        assert_eq!(back, f);
        // An old state saved before the multipath step holds an empty record: no volume.
        let empty: Facts = serde_json::from_value(serde_json::json!({"volume": {
            "wwid": null, "map_device": null
        }}))
        .unwrap();
        assert!(empty.volumes.is_empty());
    }

    #[test]
    fn each_answered_volume_finds_its_record_by_wwid_or_by_auto() {
        let answers: Answers = serde_json::from_value(serde_json::json!({
            "version": 1,
            "volumes": [
                {"wwid": "auto", "mount_point": "/mnt/a"},
                {"wwid": "3600A098000A0B1C2000000005F0A0B1D", "mount_point": "/mnt/b"}
            ]
        }))
        .unwrap();
        let mut f = Facts::default();
        assert_eq!(f.volume_index(&answers, 0), None);
        assert_eq!(f.volume_index(&answers, 2), None);
        f.volume_of_mut(&answers, 1).wwid = Some("3600a098000a0b1c2000000005f0a0b1d".into());
        assert_eq!(f.volume_index(&answers, 1), Some(0), "case does not matter");
        assert_eq!(
            f.volume_index(&answers, 0),
            None,
            "no record chosen by auto yet"
        );
        let v = f.volume_of_mut(&answers, 0);
        v.auto = true;
        v.wwid = Some("3600a098000a0b1c2000000005f0a0b1c".into());
        assert_eq!(f.volume_index(&answers, 0), Some(1));
        assert_eq!(f.volume_of(&answers, 1).unwrap().wwid, f.volumes[0].wwid);
        // A state of the time of one volume: its only record is the "auto" volume's.
        let one: Answers =
            serde_json::from_value(serde_json::json!({"version": 1, "volume": {"wwid": "auto"}}))
                .unwrap();
        let mut old = Facts::default();
        old.volumes.push(VolumeFact {
            wwid: Some("3600a098000a0b1c2000000005f0a0b1c".into()),
            ..Default::default()
        });
        assert_eq!(old.volume_index(&one, 0), Some(0));
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
