//! The worksheet as Markdown: the sections of [`content`](super::content) in order, each a
//! heading and a table (the vendor's callout numbers in their own column), the notes as a
//! bullet list. This module owns only the Markdown syntax: headings, table pipes and the
//! escaping of values; unknown values print blank.
//!
//! Vendor sections are `##` headings; the part "What the wizard learned" is a `##` heading
//! with its sections at `###`. A list with no entries is left out: unlike a table it has no
//! blank row to write in. A chart is left out too: it is a drawing, and its values are in
//! the table before it.

use std::fmt::Write as _;

use super::content::{self, Body, Cell, List, Part, Section, Table, TITLE};
use super::Worksheet;

/// Escape a value for a Markdown table cell.
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace(['\n', '\r'], " ")
}

/// A cell's text: its callout number, or its values escaped and comma-separated.
fn cell(c: &Cell) -> String {
    match c.callout {
        Some(n) => n.to_string(),
        None => c
            .values
            .iter()
            .map(|v| escape(v))
            .collect::<Vec<_>>()
            .join(", "),
    }
}

fn table(out: &mut String, t: &Table) {
    let head: Vec<&str> = t.columns.iter().map(|c| c.head).collect();
    let _ = writeln!(out, "| {} |", head.join(" | "));
    let _ = writeln!(out, "|{}|", vec!["---"; head.len()].join("|"));
    for r in &t.rows {
        let cells: Vec<String> = r.iter().map(cell).collect();
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    out.push('\n');
}

fn list(out: &mut String, l: &List) {
    for item in &l.items {
        let _ = writeln!(out, "- {}", cell(item));
    }
    out.push('\n');
}

fn section(out: &mut String, s: &Section) {
    match &s.body {
        Body::List(l) if l.items.is_empty() => return,
        // A drawing: its values are in the table before it.
        Body::Chart(_) => return,
        _ => {}
    }
    let level = if s.part.heading().is_some() {
        "###"
    } else {
        "##"
    };
    let _ = writeln!(out, "{level} {}\n", s.heading);
    match &s.body {
        Body::Table(t) => table(out, t),
        Body::List(l) => list(out, l),
        Body::Chart(_) => {}
    }
}

/// Render the worksheet.
pub fn render(w: &Worksheet) -> String {
    let mut out = format!("# {TITLE}\n\n");
    let mut part: Option<Part> = None;
    for s in content::content(w) {
        if part != Some(s.part) {
            if let Some(h) = s.part.heading() {
                let _ = writeln!(out, "## {h}\n");
            }
            part = Some(s.part);
        }
        section(&mut out, &s);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::worksheets::*;

    #[test]
    fn the_last_bench_shows_each_workload_s_runs_median_share_and_balance() {
        let text = render(&crate::worksheets::sample::full());
        for want in [
            "| Label | before-tune |",
            "| Link data rate | 200.00 Gb/s |",
            "| rand4k-read | 729817, 723531, 728540, 727669, 721322 | 728 kIOPS | 11.9% | 1.23 ms | sdb 49.9%, sdd 50.1% |",
            "| seq1m-write | 9.1e+09, 9.3e+09, 9.2e+09 | 9.20 GB/s |  |  | sdb 80.0%, sdd 20.0%, imbalance in the active group |",
        ] {
            assert!(text.contains(want), "{want} in\n{text}");
        }
        assert!(!text.contains("each run per workload"), "{text}");
    }

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
            "### Last bench",
            "### Last bench: workloads",
        ] {
            assert!(text.contains(heading), "missing {heading}");
        }
        assert!(
            !text.contains("each run per workload"),
            "a chart is not Markdown"
        );
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

    #[test]
    fn lists_of_values_are_comma_separated_and_empty_notes_are_left_out() {
        let mut w = Worksheet::default();
        assert!(!render(&w).contains("### Notes"));
        w.volumes = vec![VolumeRecord {
            paths: vec![
                ("sdb".into(), "active ready running".into()),
                ("sd|c".into(), "failed".into()),
            ],
            ..Default::default()
        }];
        w.note("first");
        let text = render(&w);
        assert!(
            text.contains("| Multipath paths | sdb active ready running, sd\\|c failed |"),
            "{text}"
        );
        assert!(text.ends_with("### Notes\n\n- first\n\n"), "{text}");
    }
}
