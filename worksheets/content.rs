//! The worksheet's content, defined once: which sections it has and in which order, their
//! headings, their tables' columns and rows, which rows carry the vendor's callout numbers,
//! which values are identifiers (set in a fixed-width font on paper), and what a value that
//! is not known yet prints as (nothing: a blank cell, as on the paper form).
//!
//! [`content`] turns a [`Worksheet`] into [`Section`]s; the Markdown and PDF renderers walk
//! them and add only presentation (Markdown escaping and table syntax; PDF fonts, layout,
//! wrapping and pagination). A new row or section is added here and appears in both.
//!
//! Contract:
//! - Every section is present whatever the record holds (except "Array", present only when the
//!   run has an `array` section and so a record of the array); a table with no rows keeps one
//!   blank row to write in. A [`List`] may be empty; each renderer decides how to show that.
//! - Cell values are the record's strings unchanged (no escaping, no encoding): control
//!   characters and Markdown or PDF syntax are the renderers' business.
//! - Column weights and [`Table::dense`] are layout hints for paper; Markdown ignores them.

use super::{BenchSheet, SubnetRecord, VolumeRecord, Worksheet};

/// The worksheet's title.
pub const TITLE: &str = "iSER configuration worksheet";

/// Which part of the worksheet a section belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The tables of the vendor's worksheet, with their callout numbers.
    Vendor,
    /// What the wizard learned beyond the vendor's form.
    Learned,
}

impl Part {
    /// The heading printed before the part's first section, if the part has one.
    pub fn heading(self) -> Option<&'static str> {
        match self {
            Part::Vendor => None,
            Part::Learned => Some("What the wizard learned"),
        }
    }
}

/// One section: a heading and its table or list.
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    /// The part the section belongs to (which also sets its heading level).
    pub part: Part,
    /// The section's heading.
    pub heading: &'static str,
    /// What the section holds.
    pub body: Body,
}

/// What a section holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// A table with a header row.
    Table(Table),
    /// A list of entries of one kind (the notes).
    List(List),
    /// A chart of values (the bench's runs): paper draws it; Markdown leaves it out, the
    /// values being in the table before it.
    Chart(Chart),
}

/// Points on a horizontal axis per series, from 0 to the series' largest value.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    /// The series, top to bottom; possibly none (nothing is drawn then).
    pub series: Vec<Series>,
}

/// One row of a [`Chart`].
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// What the row shows (`rand4k-read`).
    pub label: String,
    /// The values' unit (`IOPS`).
    pub unit: String,
    /// The points, in order.
    pub values: Vec<f64>,
}

/// A table: columns and rows of cells, one cell per column in every row.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// The columns, left to right.
    pub columns: Vec<Column>,
    /// The rows; never empty (an empty table has one blank row).
    pub rows: Vec<Vec<Cell>>,
    /// Many columns with long identifiers: paper prints the table smaller.
    pub dense: bool,
}

/// A table column.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// The header text.
    pub head: &'static str,
    /// Relative width on paper.
    pub weight: f32,
}

/// A list of entries.
#[derive(Debug, Clone, PartialEq)]
pub struct List {
    /// What one entry is called (a column header where the list is printed as a table).
    pub item: &'static str,
    /// The entries, possibly none.
    pub items: Vec<Cell>,
}

/// One cell of a table or one list entry.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cell {
    /// The text: usually one value; several for a list of values (one a line on paper,
    /// comma-separated in Markdown); none when the value is not known yet.
    pub values: Vec<String>,
    /// The vendor's callout number this cell shows (circled on paper). A callout cell has no
    /// values.
    pub callout: Option<u8>,
    /// The value is an identifier (IQN, GUID, WWID, ...): set in a fixed-width font on paper.
    pub mono: bool,
}

impl Cell {
    /// A blank cell.
    pub fn blank() -> Cell {
        Cell::default()
    }

    /// A cell holding `s`.
    pub fn text(s: impl Into<String>) -> Cell {
        Cell {
            values: vec![s.into()],
            ..Cell::default()
        }
    }

    /// A cell holding the value if it is known, blank otherwise.
    pub fn value(v: &Option<String>) -> Cell {
        Cell {
            values: v.iter().cloned().collect(),
            ..Cell::default()
        }
    }

    /// A cell holding a list of values.
    pub fn list(values: impl IntoIterator<Item = String>) -> Cell {
        Cell {
            values: values.into_iter().collect(),
            ..Cell::default()
        }
    }

    /// The cell showing callout number `n`.
    pub fn callout(n: u8) -> Cell {
        Cell {
            callout: Some(n),
            ..Cell::default()
        }
    }

    /// The same cell, marked as an identifier.
    pub fn mono(self) -> Cell {
        Cell { mono: true, ..self }
    }
}

fn column(head: &'static str, weight: f32) -> Column {
    Column { head, weight }
}

fn section(
    part: Part,
    heading: &'static str,
    columns: Vec<Column>,
    rows: Vec<Vec<Cell>>,
) -> Section {
    Section {
        part,
        heading,
        body: Body::Table(table(columns, rows)),
    }
}

fn table(columns: Vec<Column>, mut rows: Vec<Vec<Cell>>) -> Table {
    if rows.is_empty() {
        // An empty table keeps one blank row to write in, as on the paper form.
        rows.push(columns.iter().map(|_| Cell::blank()).collect());
    }
    Table {
        columns,
        rows,
        dense: false,
    }
}

/// A table of the vendor's worksheet whose first column holds the callout numbers.
fn callout_section(
    heading: &'static str,
    what: &'static str,
    value: &'static str,
    rows: Vec<Vec<Cell>>,
) -> Section {
    let columns = vec![
        column("Callout", 1.0),
        column(what, 3.4),
        column(value, 5.6),
    ];
    section(Part::Vendor, heading, columns, rows)
}

/// A two-column table of named values.
fn items_section<K: Into<String>>(
    part: Part,
    heading: &'static str,
    rows: Vec<(K, Cell)>,
) -> Section {
    let rows = rows
        .into_iter()
        .map(|(name, value)| vec![Cell::text(name), value])
        .collect();
    section(
        part,
        heading,
        vec![column("Item", 3.0), column("Value", 7.0)],
        rows,
    )
}

/// The worksheet's content, section by section: the vendor's tables first, then what the
/// wizard learned.
pub fn content(w: &Worksheet) -> Vec<Section> {
    let mut out = vendor(w);
    out.extend(learned(w));
    out
}

/// The vendor's tables, with their callout numbers.
fn vendor(w: &Worksheet) -> Vec<Section> {
    let mut out = vec![
        callout_section(
            "Host identifiers",
            "Host identifier",
            "Value",
            vec![
                vec![
                    Cell::callout(1),
                    Cell::text("Software initiator IQN"),
                    Cell::value(&w.host.initiator_iqn).mono(),
                ],
                vec![
                    Cell::blank(),
                    Cell::text("Host name"),
                    Cell::value(&w.host.host_name),
                ],
            ],
        ),
        callout_section(
            "Target IQN",
            "Target port connection",
            "Target IQN",
            vec![vec![
                Cell::callout(6),
                Cell::text("Target port"),
                Cell::value(&w.target_iqn).mono(),
            ]],
        ),
    ];
    out.extend((0..2).map(|i| subnet(w, i)));
    out.push(items_section(
        Part::Vendor,
        "Mapping host",
        vec![
            ("Mapping host name", Cell::value(&w.host.mapping_host_name)),
            ("Host OS type", Cell::value(&w.host.host_os_type)),
        ],
    ));
    out
}

/// Subnet A (`i` = 0) or B (1); blank when the record has no such subnet yet.
fn subnet(w: &Worksheet, i: usize) -> Section {
    let empty = SubnetRecord::default();
    let s = w.subnets.get(i).unwrap_or(&empty);
    let (host, ca, cb) = SubnetRecord::callouts(i).unwrap_or((0, 0, 0));
    let port = i + 1;
    let mut rows = vec![
        vec![
            Cell::blank(),
            Cell::text("Network address"),
            Cell::value(&s.network),
        ],
        vec![
            Cell::blank(),
            Cell::text("Netmask"),
            Cell::value(&s.netmask),
        ],
        vec![
            Cell::callout(ca),
            Cell::text(format!("Controller A, port {port}")),
            Cell::value(&s.controller_a),
        ],
        vec![
            Cell::callout(cb),
            Cell::text(format!("Controller B, port {port}")),
            Cell::value(&s.controller_b),
        ],
        vec![
            Cell::callout(host),
            Cell::text(format!("Host 1, port {port}")),
            Cell::value(&s.host_port),
        ],
    ];
    for p in &s.other_portals {
        rows.push(vec![
            Cell::blank(),
            Cell::text("Other target port"),
            Cell::text(p.as_str()),
        ]);
    }
    let heading = if i == 0 { "Subnet A" } else { "Subnet B" };
    callout_section(heading, "Port", "Address", rows)
}

/// What the wizard learned beyond the vendor's form.
fn learned(w: &Worksheet) -> Vec<Section> {
    let mut out = vec![
        items_section(
            Part::Learned,
            "Host",
            vec![
                ("Host name", Cell::value(&w.host.host_name)),
                ("Operating system", Cell::value(&w.host.os)),
                ("Kernel", Cell::value(&w.host.kernel)),
            ],
        ),
        ports(w),
        subnet_manager(w),
        sessions(w),
    ];
    out.extend(volumes(w));
    out.extend([
        verification(w),
        bench_identity(w),
        bench(w),
        Section {
            part: Part::Learned,
            heading: "Last bench: each run per workload",
            body: Body::Chart(Chart {
                series: w
                    .bench
                    .iter()
                    .flat_map(|b| &b.workloads)
                    .map(|r| Series {
                        label: r.workload.clone(),
                        unit: r.unit.clone(),
                        values: r.values.clone(),
                    })
                    .collect(),
            }),
        },
    ]);
    if !w.detached.is_empty() {
        out.push(detached(w));
    }
    out.extend([
        steps(w),
        Section {
            part: Part::Learned,
            heading: "Notes",
            body: Body::List(List {
                item: "Note",
                items: w.notes.iter().map(|n| Cell::text(n.as_str())).collect(),
            }),
        },
    ]);
    if w.array.is_some() {
        // After "Host": the array is the other end of everything that follows.
        out.insert(1, array(w));
    }
    out
}

/// The array as its API showed it.
fn array(w: &Worksheet) -> Section {
    let a = w.array.clone().unwrap_or_default();
    let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
    let volumes = a
        .volumes
        .iter()
        .map(|(name, wwn, lun)| format!("{name}: WWN {wwn}, LUN {lun}"));
    items_section(
        Part::Learned,
        "Array",
        vec![
            ("Array name", Cell::value(&opt(&a.name))),
            ("Firmware", Cell::value(&opt(&a.firmware))),
            ("Controllers", Cell::list(a.controllers.clone())),
            (
                "Target IQN (from the array)",
                Cell::value(&opt(&a.target_iqn)).mono(),
            ),
            ("iSER ports", Cell::list(a.ports.clone())),
            ("Host on the array", Cell::value(&opt(&a.host_name))),
            ("Host type", Cell::value(&opt(&a.host_type))),
            (
                "Host group",
                Cell::value(&a.host_group.as_deref().map(|g| {
                    if g.is_empty() {
                        "none: the volumes are mapped to the host".to_string()
                    } else {
                        g.to_string()
                    }
                })),
            ),
            ("Volumes mapped", Cell::list(volumes)),
        ],
    )
}

/// The volumes `detach` took off the host (a section only once there is one).
fn detached(w: &Worksheet) -> Section {
    let rows = w
        .detached
        .iter()
        .map(|d| {
            vec![
                Cell::text(d.at.as_str()),
                Cell::text(d.wwid.as_str()).mono(),
                Cell::value(&d.mount_point),
                Cell::text(if d.left.is_empty() {
                    "nothing".to_string()
                } else {
                    d.left.join("; ")
                }),
            ]
        })
        .collect();
    let columns = vec![
        column("Detached at", 3.0),
        column("WWID", 5.0),
        column("Mount point", 2.0),
        column("Left behind", 4.0),
    ];
    section(Part::Learned, "Detached volumes", columns, rows)
}

fn ports(w: &Worksheet) -> Section {
    let rows = w
        .ports
        .iter()
        .map(|p| {
            let device = match (&p.rdma_device, p.rdma_port) {
                (Some(d), Some(n)) => Some(format!("{d}/{n}")),
                (Some(d), None) => Some(d.clone()),
                (None, _) => None,
            };
            vec![
                Cell::value(&p.netdev),
                Cell::value(&device),
                Cell::value(&p.guid).mono(),
                Cell::value(&p.hw_address).mono(),
                Cell::value(&p.link_layer),
                Cell::value(&p.rate),
                Cell::value(&p.state),
                Cell::value(&p.address),
            ]
        })
        .collect();
    // Weights are points on A4: a GUID fits one line, a 20-byte IPoIB address breaks into
    // lines of eight bytes.
    let columns = vec![
        column("Netdev", 48.0),
        column("RDMA device/port", 48.0),
        column("Port GUID", 90.0),
        column("Hardware address", 116.0),
        column("Link layer", 46.0),
        column("Rate", 46.0),
        column("State", 38.0),
        column("Address", 75.0),
    ];
    let mut s = section(Part::Learned, "Ports", columns, rows);
    if let Body::Table(t) = &mut s.body {
        // Eight columns and 20-byte IPoIB addresses.
        t.dense = true;
    }
    s
}

fn subnet_manager(w: &Worksheet) -> Section {
    let sm = w.subnet_manager.clone().unwrap_or_default();
    let mut rows = vec![("Placement".to_string(), Cell::text(sm.placement))];
    for (guid, prio) in &sm.priorities {
        rows.push((
            format!("opensm on {guid}"),
            Cell::text(format!("priority {prio}")),
        ));
    }
    items_section(Part::Learned, "Subnet manager", rows)
}

fn sessions(w: &Worksheet) -> Section {
    let rows = w
        .sessions
        .iter()
        .map(|s| {
            [&s.iface, &s.portal, &s.transport, &s.state]
                .into_iter()
                .map(|v| Cell::text(v.as_str()))
                .collect()
        })
        .collect();
    let columns = vec![
        column("iface", 2.6),
        column("Portal", 3.0),
        column("Transport", 1.6),
        column("State", 2.0),
    ];
    section(Part::Learned, "Sessions", columns, rows)
}

/// One "Volume" section per volume (one blank section before any is known); with several,
/// each starts with its name (or its place in the list).
fn volumes(w: &Worksheet) -> Vec<Section> {
    if w.volumes.is_empty() {
        return vec![volume(&VolumeRecord::default(), None)];
    }
    let several = w.volumes.len() > 1;
    w.volumes
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let name = several.then(|| {
                v.name
                    .clone()
                    .unwrap_or_else(|| format!("volume {} of {}", i + 1, w.volumes.len()))
            });
            volume(v, name)
        })
        .collect()
}

fn volume(v: &VolumeRecord, name: Option<String>) -> Section {
    let paths = v
        .paths
        .iter()
        .map(|(device, state)| format!("{device} {state}"));
    let name = name.or_else(|| v.name.clone());
    let mut items = Vec::new();
    if name.is_some() {
        items.push(("Name", Cell::value(&name)));
    }
    items.extend([
        ("WWID", Cell::value(&v.wwid).mono()),
        ("Vendor/product", Cell::value(&v.vendor_product)),
        ("Size", Cell::value(&v.size)),
        ("Multipath paths", Cell::list(paths)),
        ("Partition", Cell::value(&v.partition)),
        ("Filesystem", Cell::value(&v.filesystem)),
        ("Filesystem UUID", Cell::value(&v.uuid).mono()),
        ("Mount point", Cell::value(&v.mount_point)),
        ("fstab line", Cell::value(&v.fstab_line).mono()),
    ]);
    items_section(Part::Learned, "Volume", items)
}

fn verification(w: &Worksheet) -> Section {
    // Throughput to one decimal: the record keeps the full figure.
    let mbs = |x: Option<f64>| Cell::value(&x.map(|v| format!("{v:.1}")));
    let rows = w
        .verification
        .iter()
        .map(|r| {
            vec![
                Cell::text(r.bytes.to_string()),
                Cell::text(r.result.as_str()),
                mbs(r.write_mb_s),
                mbs(r.read_mb_s),
                Cell::value(&r.at),
                // The file system checked: a rerun relies on this check only while it is
                // the same size (and UUID, shown under Volume).
                Cell::value(&r.fs_bytes.map(|b| b.to_string())),
            ]
        })
        .collect();
    let columns = vec![
        column("Bytes", 2.0),
        column("Result", 4.0),
        column("Write MB/s", 2.0),
        column("Read MB/s", 2.0),
        column("Checked (UTC)", 3.0),
        column("File system bytes", 2.5),
    ];
    section(Part::Learned, "Verification", columns, rows)
}

/// Which bench is the last, where it ran and against what link.
fn bench_identity(w: &Worksheet) -> Section {
    let b = w.bench.as_ref();
    let get = |f: fn(&BenchSheet) -> &str| Cell::value(&b.map(|b| f(b).to_string()));
    items_section(
        Part::Learned,
        "Last bench",
        vec![
            ("Label", get(|b| &b.label)),
            ("Started (UTC)", get(|b| &b.started_at)),
            ("Mount point", get(|b| &b.mount_point)),
            ("Runs per workload", get(|b| &b.runs)),
            (
                "Link data rate",
                Cell::value(&b.and_then(|b| b.link.clone())),
            ),
        ],
    )
}

/// The last bench: per workload its runs, median, share of the link, p99 and per-path
/// balance.
fn bench(w: &Worksheet) -> Section {
    let rows = w
        .bench
        .iter()
        .flat_map(|b| &b.workloads)
        .map(|r| {
            vec![
                Cell::text(r.workload.as_str()),
                Cell::list(r.values.iter().map(|v| crate::cfmt::g6(*v))),
                Cell::text(r.median.as_str()),
                Cell::value(
                    &r.pct_of_link
                        .map(|p| format!("{}%", crate::bench::percent(p))),
                ),
                Cell::value(&r.p99),
                Cell::list(r.balance.iter().cloned()),
            ]
        })
        .collect();
    let columns = vec![
        column("Workload", 2.2),
        column("Runs", 2.0),
        column("Median", 2.0),
        column("% of link", 1.4),
        column("p99 latency", 1.6),
        column("Per-path share", 3.0),
    ];
    section(Part::Learned, "Last bench: workloads", columns, rows)
}

/// A step's duration as the operator reads it: `0.4 s`, `12.3 s`, `2 min 5 s`.
fn seconds(s: f64) -> String {
    if s < 120.0 {
        format!("{s:.1} s")
    } else {
        let whole = s.round() as u64;
        format!("{} min {} s", whole / 60, whole % 60)
    }
}

fn steps(w: &Worksheet) -> Section {
    let rows = w
        .steps
        .iter()
        .map(|s| {
            vec![
                Cell::text(s.step.as_str()),
                Cell::text(s.completed_at.as_str()),
                Cell::text(s.seconds.map(seconds).unwrap_or_default()),
            ]
        })
        .collect();
    let columns = vec![
        column("Step", 4.0),
        column("Completed (UTC)", 4.0),
        column("Took", 2.0),
    ];
    section(Part::Learned, "Steps completed", columns, rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::worksheets::sample::{full, large, LONG_IQN};
    use crate::worksheets::VerificationRecord;

    fn section<'a>(sections: &'a [Section], heading: &str) -> &'a Section {
        sections
            .iter()
            .find(|s| s.heading == heading)
            .unwrap_or_else(|| panic!("no section {heading}"))
    }

    fn table<'a>(sections: &'a [Section], heading: &str) -> &'a Table {
        match &section(sections, heading).body {
            Body::Table(t) => t,
            Body::List(_) => panic!("{heading} is a list"),
            Body::Chart(_) => panic!("{heading} is a chart"),
        }
    }

    /// The row of `heading` with a cell reading exactly `label`.
    #[test]
    fn every_volume_has_its_section_named_when_there_are_several() {
        let mut w = full();
        let one = w.volumes[0].clone();
        let sections = content(&w);
        let vols: Vec<&Section> = sections.iter().filter(|s| s.heading == "Volume").collect();
        assert_eq!(vols.len(), 1);
        let Body::Table(t) = &vols[0].body else {
            panic!("a table")
        };
        assert!(
            !t.rows.iter().any(|r| r[0].values == ["Name"]),
            "one volume: no name row"
        );
        w.volumes.push(VolumeRecord {
            name: Some("logs".into()),
            mount_point: Some("/srv/logs".into()),
            ..one
        });
        let sections = content(&w);
        let vols: Vec<&Section> = sections.iter().filter(|s| s.heading == "Volume").collect();
        assert_eq!(vols.len(), 2);
        let names: Vec<Vec<String>> = vols
            .iter()
            .map(|s| {
                let Body::Table(t) = &s.body else {
                    panic!("a table")
                };
                assert_eq!(t.rows[0][0].values, ["Name"]);
                t.rows[0][1].values.clone()
            })
            .collect();
        assert_eq!(
            names,
            [vec!["volume 1 of 2".to_string()], vec!["logs".into()]]
        );
        // And both render in Markdown (the PDF: pdf.rs's tests).
        let md = crate::worksheets::markdown::render(&w);
        assert_eq!(md.matches("### Volume").count(), 2, "{md}");
        assert!(md.contains("| Name | logs |"), "{md}");
        assert!(md.contains("/srv/logs"), "{md}");
    }

    fn row<'a>(sections: &'a [Section], heading: &str, label: &str) -> &'a [Cell] {
        table(sections, heading)
            .rows
            .iter()
            .find(|r| r.iter().any(|c| c.values == [label]))
            .unwrap_or_else(|| panic!("no row {label} in {heading}"))
    }

    /// (section, row label, callout, value, identifier): a row of a callout table or of a
    /// table of named values, its callout (callout tables only) and its last cell.
    type Case = (
        &'static str,
        &'static str,
        Option<u8>,
        &'static [&'static str],
        bool,
    );

    #[test]
    fn durations_read_as_seconds_then_minutes() {
        assert_eq!(seconds(0.42), "0.4 s");
        assert_eq!(seconds(119.94), "119.9 s");
        assert_eq!(seconds(125.4), "2 min 5 s");
    }

    fn check(sections: &[Section], cases: &[Case]) {
        for &(heading, label, callout, value, mono) in cases {
            let r = row(sections, heading, label);
            let callouts = table(sections, heading).columns[0].head == "Callout";
            if callouts {
                assert_eq!(r[0].callout, callout, "{heading}/{label} callout");
                assert!(
                    r[0].values.is_empty(),
                    "{heading}/{label}: callout with text"
                );
            } else {
                assert_eq!(callout, None, "{heading} has no callouts");
            }
            let last = r.last().expect("a cell");
            assert_eq!(last.values, value, "{heading}/{label} value");
            assert_eq!(last.mono, mono, "{heading}/{label} identifier");
            assert_eq!(
                last.callout, None,
                "{heading}/{label}: value with a callout"
            );
        }
    }

    #[test]
    fn sections_come_in_the_worksheet_order_whatever_the_record_holds() {
        let expected = [
            (Part::Vendor, "Host identifiers"),
            (Part::Vendor, "Target IQN"),
            (Part::Vendor, "Subnet A"),
            (Part::Vendor, "Subnet B"),
            (Part::Vendor, "Mapping host"),
            (Part::Learned, "Host"),
            (Part::Learned, "Ports"),
            (Part::Learned, "Subnet manager"),
            (Part::Learned, "Sessions"),
            (Part::Learned, "Volume"),
            (Part::Learned, "Verification"),
            (Part::Learned, "Last bench"),
            (Part::Learned, "Last bench: workloads"),
            (Part::Learned, "Last bench: each run per workload"),
            (Part::Learned, "Steps completed"),
            (Part::Learned, "Notes"),
        ];
        for w in [Worksheet::default(), full(), large()] {
            let got: Vec<(Part, &str)> = content(&w).iter().map(|s| (s.part, s.heading)).collect();
            assert_eq!(got, expected);
        }
    }

    #[test]
    fn the_array_section_follows_host_when_the_run_had_an_array() {
        let mut w = full();
        let f = crate::steps::facts::ArrayFact {
            name: "ictm0704s01".into(),
            firmware: "08.52.00.00".into(),
            controllers: vec!["https://10.113.1.10:8443".into()],
            target_iqn: "iqn.1992-08.com.netapp:2806.600a098000a4b28d000000005da9d744".into(),
            ports: vec![crate::steps::facts::ArrayPortFact {
                controller: "A".into(),
                channel: 1,
                address: "10.10.10.110".into(),
                link: "active".into(),
                used: true,
            }],
            host_name: "db01".into(),
            host_type_index: 28,
            host_type: "LnxDHALUA".into(),
            host_group: "dbs".into(),
            volumes: vec![crate::steps::facts::ArrayVolumeFact {
                name: "Matthew".into(),
                wwn: "600A098000A4B9D100000F095C2F7F31".into(),
                wwid: "3600a098000a4b9d100000f095c2f7f31".into(),
                lun: 1,
                lun_mapping_ref: "88".into(),
            }],
        };
        crate::worksheets::fill_array(&mut w, &f);
        let sections = content(&w);
        assert_eq!(sections[6].heading, "Array");
        assert_eq!(sections[5].heading, "Host");
        for (label, want) in [
            ("Array name", "ictm0704s01"),
            ("Target IQN (from the array)", f.target_iqn.as_str()),
            ("iSER ports", "A1 10.10.10.110 active, used"),
            ("Host type", "28 LnxDHALUA"),
            ("Host group", "dbs"),
            (
                "Volumes mapped",
                "Matthew: WWN 600A098000A4B9D100000F095C2F7F31, LUN 1",
            ),
        ] {
            let cells = row(&sections, "Array", label);
            assert!(
                format!("{:?}", cells[1]).contains(want),
                "{label}: {cells:?}"
            );
        }
        assert_eq!(w.target_iqn.as_deref(), Some(f.target_iqn.as_str()));
    }

    #[test]
    fn every_row_has_one_cell_per_column_and_no_table_is_empty() {
        for w in [Worksheet::default(), full(), large()] {
            for s in content(&w) {
                if let Body::Table(t) = &s.body {
                    assert!(!t.rows.is_empty(), "{}", s.heading);
                    for r in &t.rows {
                        assert_eq!(r.len(), t.columns.len(), "{}", s.heading);
                    }
                }
            }
        }
    }

    #[test]
    fn a_blank_worksheet_has_every_callout_and_blank_values() {
        let blank: &[&str] = &[];
        let cases: &[Case] = &[
            (
                "Host identifiers",
                "Software initiator IQN",
                Some(1),
                blank,
                true,
            ),
            ("Host identifiers", "Host name", None, blank, false),
            ("Target IQN", "Target port", Some(6), blank, true),
            ("Subnet A", "Network address", None, blank, false),
            ("Subnet A", "Netmask", None, blank, false),
            ("Subnet A", "Controller A, port 1", Some(5), blank, false),
            ("Subnet A", "Controller B, port 1", Some(4), blank, false),
            ("Subnet A", "Host 1, port 1", Some(2), blank, false),
            ("Subnet B", "Controller A, port 2", Some(10), blank, false),
            ("Subnet B", "Controller B, port 2", Some(9), blank, false),
            ("Subnet B", "Host 1, port 2", Some(7), blank, false),
            ("Mapping host", "Mapping host name", None, blank, false),
            ("Mapping host", "Host OS type", None, blank, false),
            ("Host", "Kernel", None, blank, false),
            ("Subnet manager", "Placement", None, &[""], false),
            ("Volume", "WWID", None, blank, true),
            ("Volume", "Multipath paths", None, blank, false),
            ("Volume", "fstab line", None, blank, true),
        ];
        let sections = content(&Worksheet::default());
        check(&sections, cases);
        // The tables of things found one by one keep one blank row to write in.
        for heading in ["Ports", "Sessions", "Verification", "Steps completed"] {
            let t = table(&sections, heading);
            assert_eq!(t.rows.len(), 1, "{heading}");
            assert!(t.rows[0].iter().all(|c| *c == Cell::blank()), "{heading}");
        }
        assert_eq!(
            section(&sections, "Notes").body,
            Body::List(List {
                item: "Note",
                items: vec![]
            })
        );
    }

    #[test]
    fn a_filled_worksheet_carries_its_values_beside_their_callouts() {
        let cases: &[Case] = &[
            (
                "Host identifiers",
                "Software initiator IQN",
                Some(1),
                &["iqn.1994-05.com.redhat:initiator-9f3c1e"],
                true,
            ),
            (
                "Host identifiers",
                "Host name",
                None,
                &["stor-host-ZULU"],
                false,
            ),
            ("Target IQN", "Target port", Some(6), &[LONG_IQN], true),
            ("Subnet A", "Netmask", None, &["255.255.255.0"], false),
            (
                "Subnet A",
                "Controller A, port 1",
                Some(5),
                &["192.168.130.101"],
                false,
            ),
            (
                "Subnet A",
                "Controller B, port 1",
                Some(4),
                &["192.168.130.102"],
                false,
            ),
            (
                "Subnet A",
                "Host 1, port 1",
                Some(2),
                &["192.168.130.21"],
                false,
            ),
            (
                "Subnet A",
                "Other target port",
                None,
                &["192.168.130.103 (controller A, port 3)"],
                false,
            ),
            (
                "Subnet B",
                "Controller A, port 2",
                Some(10),
                &["192.168.131.111"],
                false,
            ),
            (
                "Subnet B",
                "Controller B, port 2",
                Some(9),
                &["192.168.131.112"],
                false,
            ),
            (
                "Subnet B",
                "Host 1, port 2",
                Some(7),
                &["192.168.131.22"],
                false,
            ),
            (
                "Mapping host",
                "Host OS type",
                None,
                &["Linux DM-MP (28)"],
                false,
            ),
            (
                "Host",
                "Operating system",
                None,
                &["Debian GNU/Linux 12 (bookworm)"],
                false,
            ),
            (
                "Subnet manager",
                "Placement",
                None,
                &["on this host"],
                false,
            ),
            (
                "Subnet manager",
                "opensm on 0xb8599f0300c3e1a2",
                None,
                &["priority 14"],
                false,
            ),
            (
                "Subnet manager",
                "opensm on 0xb8599f0300c3e1a3",
                None,
                &["priority 3"],
                false,
            ),
            (
                "Volume",
                "WWID",
                None,
                &["3600a098000af3c2a00000b4d5f3e1d7c"],
                true,
            ),
            (
                "Volume",
                "Multipath paths",
                None,
                &["sdb active ready running", "sdq failed faulty offline"],
                false,
            ),
            ("Volume", "Mount point", None, &["/srv/iser-volume"], false),
            ("Steps completed", "preflight", None, &["12.3 s"], false),
        ];
        let sections = content(&full());
        check(&sections, cases);
        let step = row(&sections, "Steps completed", "preflight");
        assert_eq!(step[1].values, ["2024-05-01T10:00:01Z"]);
        // A step completed before durations were recorded shows none.
        let older = row(&sections, "Steps completed", "subnet-manager");
        assert!(older[2].values.iter().all(String::is_empty), "{older:?}");
        // Subnet B of the sample has no further portals: exactly the five fixed rows.
        assert_eq!(table(&sections, "Subnet B").rows.len(), 5);
        assert_eq!(table(&sections, "Subnet A").rows.len(), 6);
        let port = row(&sections, "Ports", "ibp65s0");
        let texts: Vec<&[String]> = port.iter().map(|c| c.values.as_slice()).collect();
        assert_eq!(texts[1], ["mlx5_0/1"]);
        assert_eq!(texts[7], ["192.168.130.21/24"]);
        let monos: Vec<bool> = port.iter().map(|c| c.mono).collect();
        assert_eq!(
            monos,
            [false, false, true, true, false, false, false, false]
        );
        assert!(table(&sections, "Ports").dense);
        assert_eq!(
            row(&sections, "Verification", "passed")
                .iter()
                .map(|c| c.values.concat())
                .collect::<Vec<_>>(),
            [
                "1073741824",
                "passed",
                "1234.5",
                "2345.6",
                "2026-03-14T09:42:17Z",
                "4397046890496"
            ]
        );
        let Body::List(notes) = &section(&sections, "Notes").body else {
            panic!("notes are a list");
        };
        assert_eq!(notes.items.len(), 2);
        assert_eq!(
            notes.items[1].values,
            ["port enp66s0f1 is DOWN: check the cable"]
        );
    }

    #[test]
    fn partly_known_values_print_what_is_known_and_blank_the_rest() {
        // (rdma device, rdma port, expected "RDMA device/port")
        for (device, port, expected) in [
            (Some("rxe0"), Some(1), vec!["rxe0/1"]),
            (Some("rxe0"), None, vec!["rxe0"]),
            (None, Some(1), vec![]),
        ] {
            let mut w = Worksheet::default();
            w.ports.push(crate::worksheets::PortRecord {
                netdev: Some("eth9".into()),
                rdma_device: device.map(String::from),
                rdma_port: port,
                ..Default::default()
            });
            let sections = content(&w);
            assert_eq!(row(&sections, "Ports", "eth9")[1].values, expected);
        }
        // Throughput not measured: blank, the rest of the row filled.
        let mut w = Worksheet {
            verification: Some(VerificationRecord {
                bytes: 4096,
                result: "passed".into(),
                write_mb_s: Some(99.96),
                read_mb_s: None,
                ..Default::default()
            }),
            ..Default::default()
        };
        let sections = content(&w);
        let r = row(&sections, "Verification", "passed");
        assert_eq!(r[2].values, ["100.0"]);
        assert!(r[3].values.is_empty());
        // Only subnet A known: subnet B is all blank but keeps its callouts.
        w.subnets.push(SubnetRecord {
            name: "A".into(),
            host_port: Some("10.0.0.2".into()),
            ..Default::default()
        });
        let sections = content(&w);
        assert_eq!(
            row(&sections, "Subnet A", "Host 1, port 1")[2].values,
            ["10.0.0.2"]
        );
        let b = row(&sections, "Subnet B", "Host 1, port 2");
        assert_eq!((b[0].callout, b[2].values.len()), (Some(7), 0));
    }
}
