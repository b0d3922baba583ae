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
    /// The volume.
    pub volume: Option<VolumeRecord>,
    /// The verification result.
    pub verification: Option<VerificationRecord>,
    /// When each step completed.
    pub steps: Vec<StepRecord>,
    /// Findings worth keeping with the record.
    pub notes: Vec<String>,
    /// Volumes taken off the host by `detach`, oldest first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub detached: Vec<DetachRecord>,
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
    /// "on this host", "already on the fabric (SM lid N)", or "not needed (RoCE)".
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

/// The volume.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct VolumeRecord {
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
