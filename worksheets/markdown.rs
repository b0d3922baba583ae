//! The worksheet as Markdown: the vendor's tables with their callout numbers, then what the
//! wizard learned. Unknown values print blank.

use std::fmt::Write as _;

use super::{SubnetRecord, Worksheet};

fn cell(v: &Option<String>) -> String {
    v.as_deref().map(escape).unwrap_or_default()
}

/// Escape a value for a Markdown table cell.
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace(['\n', '\r'], " ")
}

fn table(out: &mut String, head: &[&str], rows: &[Vec<String>]) {
    let _ = writeln!(out, "| {} |", head.join(" | "));
    let _ = writeln!(
        out,
        "|{}|",
        head.iter().map(|_| "---").collect::<Vec<_>>().join("|")
    );
    for r in rows {
        let _ = writeln!(out, "| {} |", r.join(" | "));
    }
    out.push('\n');
}

/// Render the worksheet.
pub fn render(w: &Worksheet) -> String {
    let mut out = String::new();
    out.push_str("# iSER configuration worksheet\n\n");

    out.push_str("## Host identifiers\n\n");
    table(
        &mut out,
        &["Callout", "Host identifier", "Value"],
        &[
            vec![
                "1".into(),
                "Software initiator IQN".into(),
                cell(&w.host.initiator_iqn),
            ],
            vec!["".into(), "Host name".into(), cell(&w.host.host_name)],
        ],
    );

    out.push_str("## Target IQN\n\n");
    table(
        &mut out,
        &["Callout", "Target port connection", "Target IQN"],
        &[vec!["6".into(), "Target port".into(), cell(&w.target_iqn)]],
    );

    for i in 0..2 {
        let name = if i == 0 { "A" } else { "B" };
        let empty = SubnetRecord {
            name: name.into(),
            ..Default::default()
        };
        let s = w.subnets.get(i).unwrap_or(&empty);
        let (host, ca, cb) = SubnetRecord::callouts(i).unwrap_or((0, 0, 0));
        let port = i + 1;
        let _ = writeln!(out, "## Subnet {name}\n");
        let mut rows = vec![
            vec!["".into(), "Network address".into(), cell(&s.network)],
            vec!["".into(), "Netmask".into(), cell(&s.netmask)],
            vec![
                ca.to_string(),
                format!("Controller A, port {port}"),
                cell(&s.controller_a),
            ],
            vec![
                cb.to_string(),
                format!("Controller B, port {port}"),
                cell(&s.controller_b),
            ],
            vec![
                host.to_string(),
                format!("Host 1, port {port}"),
                cell(&s.host_port),
            ],
        ];
        for p in &s.other_portals {
            rows.push(vec!["".into(), "Other target port".into(), escape(p)]);
        }
        table(&mut out, &["Callout", "Port", "Address"], &rows);
    }

    out.push_str("## Mapping host\n\n");
    table(
        &mut out,
        &["Item", "Value"],
        &[
            vec!["Mapping host name".into(), cell(&w.host.mapping_host_name)],
            vec!["Host OS type".into(), cell(&w.host.host_os_type)],
        ],
    );

    out.push_str("## What the wizard learned\n\n### Host\n\n");
    table(
        &mut out,
        &["Item", "Value"],
        &[
            vec!["Host name".into(), cell(&w.host.host_name)],
            vec!["Operating system".into(), cell(&w.host.os)],
            vec!["Kernel".into(), cell(&w.host.kernel)],
        ],
    );

    out.push_str("### Ports\n\n");
    let port_rows: Vec<Vec<String>> = w
        .ports
        .iter()
        .map(|p| {
            vec![
                cell(&p.netdev),
                p.rdma_device
                    .as_ref()
                    .map(|d| match p.rdma_port {
                        Some(n) => format!("{}/{}", escape(d), n),
                        None => escape(d),
                    })
                    .unwrap_or_default(),
                cell(&p.guid),
                cell(&p.hw_address),
                cell(&p.link_layer),
                cell(&p.rate),
                cell(&p.state),
                cell(&p.address),
            ]
        })
        .collect();
    table(
        &mut out,
        &[
            "Netdev",
            "RDMA device/port",
            "Port GUID",
            "Hardware address",
            "Link layer",
            "Rate",
            "State",
            "Address",
        ],
        &if port_rows.is_empty() {
            vec![vec![String::new(); 8]]
        } else {
            port_rows
        },
    );

    out.push_str("### Subnet manager\n\n");
    let sm = w.subnet_manager.clone().unwrap_or_default();
    let mut sm_rows = vec![vec!["Placement".into(), escape(&sm.placement)]];
    for (guid, prio) in &sm.priorities {
        sm_rows.push(vec![
            format!("opensm on {}", escape(guid)),
            format!("priority {prio}"),
        ]);
    }
    table(&mut out, &["Item", "Value"], &sm_rows);

    out.push_str("### Sessions\n\n");
    let mut srows: Vec<Vec<String>> = w
        .sessions
        .iter()
        .map(|s| {
            vec![
                escape(&s.iface),
                escape(&s.portal),
                escape(&s.transport),
                escape(&s.state),
            ]
        })
        .collect();
    if srows.is_empty() {
        srows.push(vec![String::new(); 4]);
    }
    table(&mut out, &["iface", "Portal", "Transport", "State"], &srows);

    out.push_str("### Volume\n\n");
    let v = w.volume.clone().unwrap_or_default();
    let paths = v
        .paths
        .iter()
        .map(|(d, s)| format!("{} {}", escape(d), escape(s)))
        .collect::<Vec<_>>()
        .join(", ");
    table(
        &mut out,
        &["Item", "Value"],
        &[
            vec!["WWID".into(), cell(&v.wwid)],
            vec!["Vendor/product".into(), cell(&v.vendor_product)],
            vec!["Size".into(), cell(&v.size)],
            vec!["Multipath paths".into(), paths],
            vec!["Partition".into(), cell(&v.partition)],
            vec!["Filesystem".into(), cell(&v.filesystem)],
            vec!["Filesystem UUID".into(), cell(&v.uuid)],
            vec!["Mount point".into(), cell(&v.mount_point)],
            vec!["fstab line".into(), cell(&v.fstab_line)],
        ],
    );

    out.push_str("### Verification\n\n");
    let vr = w.verification.clone();
    let mbs = |x: Option<f64>| x.map(|v| format!("{v:.1}")).unwrap_or_default();
    table(
        &mut out,
        &["Bytes", "Result", "Write MB/s", "Read MB/s"],
        &[match vr {
            Some(r) => vec![
                r.bytes.to_string(),
                escape(&r.result),
                mbs(r.write_mb_s),
                mbs(r.read_mb_s),
            ],
            None => vec![String::new(); 4],
        }],
    );

    out.push_str("### Steps completed\n\n");
    let mut step_rows: Vec<Vec<String>> = w
        .steps
        .iter()
        .map(|s| vec![escape(&s.step), escape(&s.completed_at)])
        .collect();
    if step_rows.is_empty() {
        step_rows.push(vec![String::new(); 2]);
    }
    table(&mut out, &["Step", "Completed (UTC)"], &step_rows);

    if !w.notes.is_empty() {
        out.push_str("### Notes\n\n");
        for n in &w.notes {
            let _ = writeln!(out, "- {}", escape(n));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::worksheets::*;

    #[test]
    fn an_empty_worksheet_has_every_table_with_blank_values() {
        let text = render(&Worksheet::default());
        for heading in [
            "## Host identifiers",
            "## Target IQN",
            "## Subnet A",
            "## Subnet B",
            "## Mapping host",
            "### Ports",
            "### Sessions",
            "### Volume",
            "### Verification",
        ] {
            assert!(text.contains(heading), "missing {heading}");
        }
        assert!(text.contains("| 1 | Software initiator IQN |  |"), "{text}");
        assert!(text.contains("| 6 | Target port |  |"), "{text}");
        assert!(text.contains("| 5 | Controller A, port 1 |  |"), "{text}");
        assert!(text.contains("| 9 | Controller B, port 2 |  |"), "{text}");
        assert!(text.contains("| 7 | Host 1, port 2 |  |"), "{text}");
    }

    #[test]
    fn a_partial_worksheet_fills_what_is_known() {
        let mut w = Worksheet::default();
        w.host.initiator_iqn = Some("iqn.1994-05.com.redhat:abc".into());
        w.host.kernel = Some("6.1.0-26-amd64".into());
        w.subnets.push(SubnetRecord {
            name: "A".into(),
            network: Some("192.168.130.0".into()),
            netmask: Some("255.255.255.0".into()),
            controller_a: Some("192.168.130.101".into()),
            ..Default::default()
        });
        w.notes.push("a | pipe".into());
        let text = render(&w);
        assert!(text.contains("| 1 | Software initiator IQN | iqn.1994-05.com.redhat:abc |"));
        assert!(text.contains("| Kernel | 6.1.0-26-amd64 |"));
        assert!(text.contains("| 5 | Controller A, port 1 | 192.168.130.101 |"));
        assert!(text.contains("| 4 | Controller B, port 1 |  |"));
        assert!(text.contains("- a \\| pipe"));
    }
}
