//! The link's data rate, to report a workload's median as a share of it (METHOD.md "Line
//! rate").
//!
//! Contract: an InfiniBand port's data rate comes from its sysfs `rate` (speed name and
//! width), per lane SDR 2, DDR 4, QDR 8, FDR10 10, FDR 13.64, EDR 25, HDR 50, NDR 100 Gb/s
//! (so 4X: 8, 16, 32, 40, 54.55, 100, 200, 400); a RoCE port's is its Ethernet netdev's
//! `speed` (Mb/s). What cannot be known (no speed name, an Ethernet speed of -1) is `None`
//! with the reason, never a guess; the bench then prints no percentage.

use serde::{Deserialize, Serialize};

use crate::steps::parse::ibstat::{LinkLayer, Rate};

/// Data rate per lane in Gb/s, after line encoding, by speed name.
const LANE_DATA_GBPS: [(&str, f64); 8] = [
    ("SDR", 2.0),
    ("DDR", 4.0),
    ("QDR", 8.0),
    ("FDR10", 10.0),
    // 14.0625 Gb/s signalling with 64b/66b encoding.
    ("FDR", 14.0625 * 64.0 / 66.0),
    ("EDR", 25.0),
    ("HDR", 50.0),
    ("NDR", 100.0),
];

/// One host port's data rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PortRate {
    /// The port's netdev.
    pub netdev: String,
    /// Data rate in Gb/s, when known.
    pub data_gbps: Option<f64>,
    /// Where it came from, or why it is not known.
    pub basis: String,
}

/// A port's data rate from its sysfs files: the RDMA port's `rate` and `link_layer`, and
/// the netdev's `speed` (read only for Ethernet).
pub fn port_rate(
    netdev: &str,
    rate: Option<&str>,
    link_layer: Option<&str>,
    eth_speed: Option<&str>,
) -> PortRate {
    let ethernet = link_layer.and_then(LinkLayer::parse) == Some(LinkLayer::Ethernet);
    let (data_gbps, basis) = if ethernet {
        match eth_speed.and_then(|s| s.trim().parse::<i64>().ok()) {
            Some(mbps) if mbps > 0 => (
                Some(mbps as f64 / 1000.0),
                format!("RoCE, {netdev} speed {mbps} Mb/s"),
            ),
            _ => (None, format!("RoCE, {netdev} reports no Ethernet speed")),
        }
    } else {
        match rate.map(str::trim).filter(|r| !r.is_empty()) {
            None => (None, "no RDMA port rate".to_string()),
            Some(text) => match Rate::from_sysfs(text) {
                None => (None, format!("unreadable rate {text:?}")),
                Some(r) => {
                    let lanes = f64::from(r.width.unwrap_or(4));
                    let per_lane = r.label.as_deref().and_then(|l| {
                        LANE_DATA_GBPS
                            .iter()
                            .find(|(n, _)| n.eq_ignore_ascii_case(l))
                            .map(|(_, g)| *g)
                    });
                    match per_lane.map(|g| g * lanes).or(r.data_gbps) {
                        Some(g) => (Some(g), format!("InfiniBand {text}")),
                        None => (None, format!("InfiniBand {text}: no speed name")),
                    }
                }
            },
        }
    };
    PortRate {
        netdev: netdev.to_string(),
        data_gbps,
        basis,
    }
}

/// The sum of the ports' data rates in Gb/s; `None` when any is unknown (a partial sum would
/// inflate the percentage) or there is none.
pub fn total_gbps(ports: &[PortRate]) -> Option<f64> {
    if ports.is_empty() {
        return None;
    }
    ports.iter().map(|p| p.data_gbps).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn infiniband_rates_follow_method_s_table() {
        let cases = [
            ("10 Gb/sec (4X SDR)", 8.0),
            ("20 Gb/sec (4X DDR)", 16.0),
            ("40 Gb/sec (4X QDR)", 32.0),
            ("40 Gb/sec (4X FDR10)", 40.0),
            ("100 Gb/sec (4X EDR)", 100.0),
            ("200 Gb/sec (4X HDR)", 200.0),
            ("400 Gb/sec (4X NDR)", 400.0),
            ("100 Gb/sec (2X HDR)", 100.0),
            ("25 Gb/sec (1X EDR)", 25.0),
        ];
        for (text, want) in cases {
            let r = port_rate("ib0", Some(text), Some("InfiniBand"), None);
            assert_eq!(r.data_gbps, Some(want), "{text}");
        }
        let fdr = port_rate("ib0", Some("56 Gb/sec (4X FDR)"), Some("InfiniBand"), None);
        assert_eq!(format!("{:.2}", fdr.data_gbps.unwrap()), "54.55");
    }

    #[test]
    fn roce_uses_the_ethernet_speed_and_ignores_the_rdma_rate() {
        // rxe always says 1X FDR10, which means nothing on the wire.
        let r = port_rate(
            "ens1f0",
            Some("10 Gb/sec (1X FDR10)"),
            Some("Ethernet"),
            Some("100000\n"),
        );
        assert_eq!(r.data_gbps, Some(100.0));
        let unknown = port_rate(
            "vA",
            Some("10 Gb/sec (1X FDR10)"),
            Some("Ethernet"),
            Some("-1"),
        );
        assert_eq!(unknown.data_gbps, None);
        assert!(
            unknown.basis.contains("no Ethernet speed"),
            "{}",
            unknown.basis
        );
    }

    #[test]
    fn unknown_rates_are_not_guessed_and_spoil_the_sum() {
        assert_eq!(port_rate("ib0", None, None, None).data_gbps, None);
        assert_eq!(port_rate("ib0", Some("fast"), None, None).data_gbps, None);
        let a = port_rate("ib0", Some("100 Gb/sec (4X EDR)"), None, None);
        let b = port_rate("ib1", None, None, None);
        assert_eq!(total_gbps(&[a.clone(), a.clone()]), Some(200.0));
        assert_eq!(total_gbps(&[a, b]), None);
        assert_eq!(total_gbps(&[]), None);
    }
}
