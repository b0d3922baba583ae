//! The worksheet: the vendor's configuration worksheet, filled in by the steps as they learn
//! facts, saved as `worksheet.json` in the state directory and rendered as Markdown and PDF.
//! Every field is optional: what is not known yet prints blank, as on the paper form.
//!
//! What the worksheet shows is defined once, in [`content`]; [`markdown`] and [`pdf`] walk
//! that model and add only presentation.
//!
//! Callout numbers follow the vendor's worksheet: initiator IQN (1), host port 1 (2),
//! switch A (3), controller B port 1 (4), controller A port 1 (5), target IQN (6),
//! host port 2 (7), switch B (8), controller B port 2 (9), controller A port 2 (10).

mod answers;
pub mod content;
pub mod markdown;
pub mod pdf;
#[cfg(test)]
mod sample;

use serde::{Deserialize, Serialize};

/// The whole record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Worksheet {
    /// Host identifiers.
    pub host: HostRecord,
    /// Target IQN (callout 6).
    pub target_iqn: Option<String>,
    /// Subnet A and subnet B, in that order.
    pub subnets: Vec<SubnetRecord>,
    /// The host's RDMA ports.
    pub ports: Vec<PortRecord>,
    /// Subnet manager placement.
    pub subnet_manager: Option<SubnetManagerRecord>,
    /// iSCSI sessions.
    pub sessions: Vec<SessionRecord>,
    /// The volumes, in the order of the answers (an earlier version's `volume`, one
    /// object or null, reads as a list of one or none).
    #[serde(alias = "volume", deserialize_with = "volume_list")]
    pub volumes: Vec<VolumeRecord>,
    /// The verification result.
    pub verification: Option<VerificationRecord>,
    /// When each step completed.
    pub steps: Vec<StepRecord>,
    /// Findings worth keeping with the record.
    pub notes: Vec<String>,
    /// The array as its API showed it (runs with an `array` section).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub array: Option<ArrayRecord>,
    /// The last bench (`iser-wizard bench`), once one is kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bench: Option<BenchSheet>,
    /// Volumes taken off the host by `detach`, oldest first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub detached: Vec<DetachRecord>,
}

/// The last bench, as the worksheet shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BenchSheet {
    /// The bench's label (`bench/LABEL/` in the state directory).
    pub label: String,
    /// When it started (RFC 3339, UTC).
    pub started_at: String,
    /// The mount point measured.
    pub mount_point: String,
    /// The link's data rate as measured against (`200 Gb/s`), when known.
    pub link: Option<String>,
    /// Runs per workload and seconds each (`5 x 30 s`).
    pub runs: String,
    /// Each workload.
    pub workloads: Vec<BenchWorkloadRecord>,
}

/// One workload of the last bench.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BenchWorkloadRecord {
    /// `rand4k-read`, ...
    pub workload: String,
    /// What the values count (`IOPS`, `B/s`).
    pub unit: String,
    /// Each run's value, in run order.
    pub values: Vec<f64>,
    /// The median, as printed (`145 kIOPS`).
    pub median: String,
    /// The median in percent of the link's data rate, when known.
    pub pct_of_link: Option<f64>,
    /// The p99 completion latency, as printed (`2.97 ms`).
    pub p99: Option<String>,
    /// One entry per path (`sdb 50.1%`), then the imbalance warning if any.
    pub balance: Vec<String>,
}

/// The array's facts, read from its API by the array step.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ArrayRecord {
    /// The array's name.
    pub name: String,
    /// Controller firmware.
    pub firmware: String,
    /// Controller API addresses.
    pub controllers: Vec<String>,
    /// Target IQN from the array.
    pub target_iqn: String,
    /// iSER ports: "A1 10.10.10.110 active, used".
    pub ports: Vec<String>,
    /// The host's name on the array.
    pub host_name: String,
    /// Its host type (`28 LnxDHALUA`).
    pub host_type: String,
    /// Its host group: `Some("")` none (the volumes are mapped to the host), `None` not
    /// recorded (a worksheet of an earlier version).
    pub host_group: Option<String>,
    /// Mapped volumes: (name, WWN, LUN).
    pub volumes: Vec<(String, String, u32)>,
}

/// Put the array step's verified facts on the worksheet: its own section, the target IQN
/// (callout 6) and each subnet's controller A/B port addresses (callouts 5/4 and 10/9) from
/// the array's iSER ports in that subnet.
pub fn fill_array(w: &mut Worksheet, f: &crate::steps::facts::ArrayFact) {
    w.target_iqn = Some(f.target_iqn.clone());
    for s in &mut w.subnets {
        let (Some(net), Some(mask)) = (&s.network, &s.netmask) else {
            continue;
        };
        let (Ok(net), Ok(mask)) = (
            net.parse::<std::net::Ipv4Addr>(),
            mask.parse::<std::net::Ipv4Addr>(),
        ) else {
            continue;
        };
        let Ok(net) = ipnet::Ipv4Net::with_netmask(net, mask) else {
            continue;
        };
        for p in &f.ports {
            let Ok(a) = p.address.parse::<std::net::Ipv4Addr>() else {
                continue;
            };
            if !net.contains(&a) {
                continue;
            }
            match p.controller.as_str() {
                "A" => s.controller_a = Some(p.address.clone()),
                "B" => s.controller_b = Some(p.address.clone()),
                _ => {}
            }
        }
    }
    w.array = Some(ArrayRecord {
        name: f.name.clone(),
        firmware: f.firmware.clone(),
        controllers: f.controllers.clone(),
        target_iqn: f.target_iqn.clone(),
        ports: f
            .ports
            .iter()
            .map(|p| {
                format!(
                    "{}{} {} {}{}",
                    p.controller,
                    p.channel,
                    p.address,
                    if p.link.is_empty() {
                        "link unknown"
                    } else {
                        &p.link
                    },
                    if p.used { ", used" } else { "" }
                )
            })
            .collect(),
        host_name: f.host_name.clone(),
        host_type: format!("{} {}", f.host_type_index, f.host_type),
        host_group: Some(f.host_group.clone()),
        volumes: f
            .volumes
            .iter()
            .map(|v| (v.name.clone(), v.wwn.clone(), v.lun))
            .collect(),
    });
}

/// A volume `detach` took off the host, and what it found left afterwards.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DetachRecord {
    /// RFC 3339 time the detach finished.
    pub at: String,
    /// Multipath WWID of the volume.
    pub wwid: String,
    /// Where it was mounted.
    pub mount_point: Option<String>,
    /// What the detach did, in order.
    pub done: Vec<String>,
    /// What it meant to remove and found still there (empty: nothing).
    pub left: Vec<String>,
}

/// Host identifiers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HostRecord {
    /// Host name.
    pub host_name: Option<String>,
    /// Operating system (pretty name).
    pub os: Option<String>,
    /// Kernel version (`uname -r`), which the vendor asks to record.
    pub kernel: Option<String>,
    /// Software initiator IQN (callout 1).
    pub initiator_iqn: Option<String>,
    /// Host name as mapped on the array.
    pub mapping_host_name: Option<String>,
    /// Host OS type on the array (Linux DM-MP).
    pub host_os_type: Option<String>,
}

/// One subnet of the recommended two-subnet layout.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SubnetRecord {
    /// "A" or "B".
    pub name: String,
    /// Network address.
    pub network: Option<String>,
    /// Netmask (dotted).
    pub netmask: Option<String>,
    /// Controller A port address (callout 5 in subnet A, 10 in subnet B).
    pub controller_a: Option<String>,
    /// Controller B port address (callout 4 in subnet A, 9 in subnet B).
    pub controller_b: Option<String>,
    /// Host port address (callout 2 in subnet A, 7 in subnet B).
    pub host_port: Option<String>,
    /// Further target portals in this subnet, with their labels.
    pub other_portals: Vec<String>,
}

impl SubnetRecord {
    /// Callouts (host port, controller A, controller B) for subnet `index` (0 = A, 1 = B).
    pub fn callouts(index: usize) -> Option<(u8, u8, u8)> {
        match index {
            0 => Some((2, 5, 4)),
            1 => Some((7, 10, 9)),
            _ => None,
        }
    }
}

/// One RDMA port of the host.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PortRecord {
    /// Network device (ib0, or the Ethernet netdev on RoCE).
    pub netdev: Option<String>,
    /// RDMA device (mlx5_0, rxe0).
    pub rdma_device: Option<String>,
    /// Port number on the RDMA device.
    pub rdma_port: Option<u32>,
    /// Port GUID.
    pub guid: Option<String>,
    /// Hardware address (20 bytes on IPoIB).
    pub hw_address: Option<String>,
    /// Infiniband or Ethernet.
    pub link_layer: Option<String>,
    /// Rate as the tools describe it.
    pub rate: Option<String>,
    /// Port state.
    pub state: Option<String>,
    /// Address with prefix.
    pub address: Option<String>,
}

/// Where the subnet manager runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SubnetManagerRecord {
    /// "on this host", "already on the fabric (SM lid N, port GUID G, priority P)" (GUID and
    /// priority as `sminfo` reports them, when it answers), or "not needed (RoCE)".
    pub placement: String,
    /// (port GUID, priority) pairs of opensm instances on this host.
    pub priorities: Vec<(String, u8)>,
}

/// One iSCSI session.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SessionRecord {
    /// iface name.
    pub iface: String,
    /// Portal address:port.
    pub portal: String,
    /// Transport (`iser`).
    pub transport: String,
    /// Session state (LOGGED_IN).
    pub state: String,
}

/// `volumes` as a list, or an earlier version's `volume` (an object or null).
fn volume_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<VolumeRecord>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        Many(Vec<VolumeRecord>),
        One(Option<Box<VolumeRecord>>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::Many(v) => v,
        OneOrMany::One(v) => v.into_iter().map(|b| *b).collect(),
    })
}

/// The record of the volume of `wwid`, made (at the end) when there is none. A record the
/// answers made before the WWID was known (an "auto" volume) is taken for it, the first one
/// without a WWID.
pub fn volume_record_mut<'w>(sheet: &'w mut Worksheet, wwid: &str) -> &'w mut VolumeRecord {
    let list = &mut sheet.volumes;
    let k = list
        .iter()
        .position(|v| v.wwid.as_deref() == Some(wwid))
        .or_else(|| list.iter().position(|v| v.wwid.is_none()))
        .unwrap_or_else(|| {
            list.push(VolumeRecord::default());
            list.len() - 1
        });
    &mut list[k]
}

/// One volume.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct VolumeRecord {
    /// The volume's name in the answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Multipath WWID.
    pub wwid: Option<String>,
    /// Vendor/product.
    pub vendor_product: Option<String>,
    /// Size, human readable.
    pub size: Option<String>,
    /// Paths as (device, state).
    pub paths: Vec<(String, String)>,
    /// Partition node.
    pub partition: Option<String>,
    /// Filesystem type.
    pub filesystem: Option<String>,
    /// Filesystem UUID.
    pub uuid: Option<String>,
    /// Mount point.
    pub mount_point: Option<String>,
    /// The fstab line.
    pub fstab_line: Option<String>,
}

/// The verification result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct VerificationRecord {
    /// Bytes written and read back.
    pub bytes: u64,
    /// "passed" or the failure.
    pub result: String,
    /// Write throughput, MB/s.
    pub write_mb_s: Option<f64>,
    /// Read throughput, MB/s.
    pub read_mb_s: Option<f64>,
    /// When the check ended (RFC 3339, UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    /// The mount point the test file was written under.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mount_point: Option<String>,
    /// The UUID of the file system checked: a rerun repeats the check when it changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fs_uuid: Option<String>,
    /// The size in bytes of the file system checked, as `findmnt -b` gives it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fs_bytes: Option<u64>,
}

/// When a step completed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StepRecord {
    /// Step name.
    pub step: String,
    /// RFC 3339 time.
    pub completed_at: String,
    /// How long the step took, seconds (plan, apply and verify), when measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
}

impl Worksheet {
    /// Record (or update) the completion time of a step.
    pub fn step_completed(&mut self, step: &str, at: &str) {
        self.step_timed(step, at, None);
    }

    /// Record (or update) the completion time of a step and how long it took.
    pub fn step_timed(&mut self, step: &str, at: &str, seconds: Option<f64>) {
        match self.steps.iter_mut().find(|s| s.step == step) {
            Some(s) => {
                s.completed_at = at.to_string();
                s.seconds = seconds;
            }
            None => self.steps.push(StepRecord {
                step: step.to_string(),
                completed_at: at.to_string(),
                seconds,
            }),
        }
    }

    /// Add a note once.
    pub fn note(&mut self, note: impl Into<String>) {
        let n = note.into();
        if !self.notes.contains(&n) {
            self.notes.push(n);
        }
    }
}
