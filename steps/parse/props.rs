//! Property tests: no parser of tool output or host files panics, whatever text it is given.
//!
//! Contract (issue 12, "no panic on any input"):
//! - Every pub parse function of `steps/parse/` (and the host-file readers elsewhere in
//!   `steps/`: os-release, iscsid.conf, multipath.conf's `find_multipaths`) returns, on any
//!   text, a value or a refusal (`Err`, `None`, nothing found): never a panic, never a hang.
//! - The inputs are the real outputs (`../shared/fixtures/real/` and `lab/`, skipped and said
//!   so where absent; the committed `tests/lab/fixtures-captured/` always) damaged by
//!   [`Op`]s (byte flips, truncation, line duplication and swaps, non-ASCII and huge numbers
//!   inserted), the captures cut short (at every char boundary of a short one; see
//!   [`cut_points`]), and arbitrary text.
//! - The case counts keep the suite well under a minute in a debug build on two cores;
//!   `PROPTEST_CASES` raises them (CI, a long local run). Nothing is printed on success; each
//!   test's figures (inputs tried, refused cleanly) print with `--nocapture`.
//!
//! [`Op`], [`damage`] and [`Tally`] are shared with the validators' properties
//! (`wizard/props.rs`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use super::fixtures::{files_below, lab_capture, shared_dir};
use super::{blkid, ibstat, iscsiadm, lsblk, multipath, netlink, parted, unhex};

/// Text that tends to break hand-written parsers: non-ASCII, control characters, numbers
/// beyond every integer type, separators and half escapes.
pub const PIECES: &[&str] = &[
    "é",
    "\u{200b}",
    "🦀",
    "\u{feff}",
    "\0",
    "\r\n",
    "\t",
    "\n\n",
    " ",
    ":",
    "=",
    "\"",
    "'",
    "[",
    "]",
    "{",
    "}",
    ",",
    "|-",
    "`-",
    "\\x",
    "\\xZ",
    "\\x4",
    "0x",
    "-1",
    "0",
    "255",
    "65536",
    "4294967296",
    "18446744073709551616",
    "99999999999999999999999999999999999999",
    "-9223372036854775809",
    "1e309",
    "NaN",
    "null",
    "Port 1:",
    "CA '",
    "Target: ",
    "\t\tAttached scsi disk ",
    "size=",
    "status=",
    "(",
    ")",
    "/",
];

/// One way of damaging a text. Positions are taken modulo the text's length at the time, so
/// any op applies to any text.
#[derive(Debug, Clone)]
pub enum Op {
    /// XOR one byte with a non-zero mask (the result is read back lossily as UTF-8).
    Flip(usize, u8),
    /// Cut the text at a char boundary.
    Truncate(usize),
    /// Repeat one line.
    DupLine(usize),
    /// Swap two lines.
    SwapLines(usize, usize),
    /// Remove up to this many bytes (widened to char boundaries).
    Delete(usize, u8),
    /// Insert text at a char boundary.
    Insert(usize, String),
}

/// A random [`Op`]: pieces from [`PIECES`] or arbitrary short text.
pub fn op() -> impl Strategy<Value = Op> {
    let piece = prop_oneof![
        3 => proptest::sample::select(PIECES).prop_map(str::to_string),
        1 => any::<String>().prop_map(|s| s.chars().take(12).collect()),
    ];
    prop_oneof![
        (any::<usize>(), 1u8..).prop_map(|(p, m)| Op::Flip(p, m)),
        any::<usize>().prop_map(Op::Truncate),
        any::<usize>().prop_map(Op::DupLine),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Op::SwapLines(a, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(p, n)| Op::Delete(p, n)),
        (any::<usize>(), piece).prop_map(|(p, s)| Op::Insert(p, s)),
    ]
}

fn floor_boundary(s: &str, at: usize) -> usize {
    let mut at = at.min(s.len());
    while !s.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// `text` with `ops` applied in order.
pub fn damage(text: &str, ops: &[Op]) -> String {
    let mut s = text.to_string();
    for op in ops {
        match op {
            Op::Flip(p, m) => {
                if !s.is_empty() {
                    let mut b = std::mem::take(&mut s).into_bytes();
                    let i = p % b.len();
                    b[i] ^= m;
                    s = String::from_utf8_lossy(&b).into_owned();
                }
            }
            Op::Truncate(p) => {
                let at = floor_boundary(&s, p % (s.len() + 1));
                s.truncate(at);
            }
            Op::DupLine(i) => {
                let mut lines: Vec<&str> = s.split_inclusive('\n').collect();
                if !lines.is_empty() {
                    let i = i % lines.len();
                    lines.insert(i, lines[i]);
                    s = lines.concat();
                }
            }
            Op::SwapLines(a, b) => {
                let mut lines: Vec<&str> = s.split_inclusive('\n').collect();
                if !lines.is_empty() {
                    let n = lines.len();
                    lines.swap(a % n, b % n);
                    s = lines.concat();
                }
            }
            Op::Delete(p, n) => {
                let start = floor_boundary(&s, p % (s.len() + 1));
                let end = floor_boundary(&s, start + usize::from(*n));
                s.replace_range(start..end, "");
            }
            Op::Insert(p, piece) => {
                let at = floor_boundary(&s, p % (s.len() + 1));
                s.insert_str(at, piece);
            }
        }
    }
    s
}

/// Counts for a property's closing figures: inputs tried and how many every parser refused
/// (an error, `None`, or nothing found). Shared by the threads a test runs in.
#[derive(Default)]
pub struct Tally {
    tried: AtomicU64,
    refused: AtomicU64,
}

impl Tally {
    /// Count one input, refused cleanly or not.
    pub fn count(&self, refused: bool) {
        self.tried.fetch_add(1, Ordering::Relaxed);
        if refused {
            self.refused.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// `name: N inputs, M refused cleanly, 0 panics` (a panic fails the test before this).
    pub fn line(&self, name: &str) -> String {
        format!(
            "{name}: {} inputs, {} refused cleanly, 0 panics",
            self.tried.load(Ordering::Relaxed),
            self.refused.load(Ordering::Relaxed)
        )
    }
}

/// The case count: `PROPTEST_CASES` when set, else `default`.
pub fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Run `test` on `cases` values of `strategy`; a panic or failure fails the Rust test with
/// proptest's shrunk input. Failures are not persisted to files: a found case becomes a
/// named regression test instead. Prints the tally (seen with `--nocapture`).
pub fn check<S: Strategy>(
    name: &str,
    cases: u32,
    strategy: S,
    tally: &Tally,
    test: impl Fn(S::Value) -> bool,
) {
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let result = runner.run(&strategy, |v| {
        tally.count(test(v));
        Ok(())
    });
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
    println!("{}", tally.line(name));
}

/// Every seed text: the real and lab fixtures (when `../shared` is there) and the captures
/// committed with the repository, each with its file name, plus a few inline samples so the
/// suite has seeds on any checkout.
pub fn seeds() -> &'static [(String, String)] {
    static SEEDS: OnceLock<Vec<(String, String)>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let mut out: Vec<(String, String)> = vec![
            (
                "inline-ibstat".into(),
                "CA 'mlx4_0'\n\tCA type: MT4099\n\tNumber of ports: 1\n\tPort 1:\n\t\tState: Active\n\t\tPhysical state: LinkUp\n\t\tRate: 40 (FDR10)\n\t\tBase lid: 7\n\t\tLMC: 0\n\t\tSM lid: 4\n\t\tCapability mask: 0x0251486a\n\t\tPort GUID: 0x0002c90300ea9941\n\t\tLink layer: InfiniBand\n".into(),
            ),
            (
                "inline-os-release".into(),
                "NAME=\"Debian GNU/Linux\"\nID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n".into(),
            ),
            (
                "inline-iscsid.conf".into(),
                "node.startup = automatic\n# comment\nreplacement_timeout = 20\nnode.session.timeo.replacement_timeout=20\n".into(),
            ),
        ];
        let mut add = |dir: PathBuf, lab: bool| {
            for (path, text) in files_below(&dir) {
                let name = path.file_name().map_or_else(String::new, |n| {
                    n.to_string_lossy().into_owned()
                });
                if name.ends_with(".md") {
                    continue;
                }
                let text = if lab { lab_capture(&text).1 } else { text };
                out.push((name, text));
            }
        };
        if let Some(d) = shared_dir("real") {
            add(d, false);
        }
        if let Some(d) = shared_dir("lab") {
            add(d, true);
        }
        add(
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/lab/fixtures-captured"),
            true,
        );
        out
    })
}

/// Run one parser on `text`; `true` when it refused (error, `None`, or nothing found).
type Parser = fn(&str) -> bool;

fn p_blkid(t: &str) -> bool {
    match blkid::parse_blkid_export(t) {
        Ok(Some(sig)) => {
            let _ = sig.is_occupied();
            false
        }
        Ok(None) | Err(_) => true,
    }
}

fn p_ibstat(t: &str) -> bool {
    match ibstat::parse_ibstat(t) {
        Ok(cas) => {
            for p in cas.iter().flat_map(|c| &c.ports) {
                let _ = p.rate.as_ref().map(ibstat::Rate::describe);
            }
            cas.is_empty()
        }
        Err(e) => {
            let _ = e.to_string();
            true
        }
    }
}

fn p_ib_values(t: &str) -> bool {
    let _ = ibstat::PortState::parse(t);
    let _ = ibstat::PhysicalState::parse(t);
    let _ = ibstat::LinkLayer::parse(t);
    if let Some(r) = ibstat::Rate::from_ibstat(t) {
        let _ = r.describe();
    }
    if let Some(r) = ibstat::Rate::from_sysfs(t) {
        let _ = r.on_link_layer(ibstat::LinkLayer::Ethernet).describe();
    }
    let guids = [
        t.parse::<ibstat::Guid>().ok(),
        ibstat::Guid::from_colon_groups(t),
        ibstat::Guid::from_gid(t),
        ibstat::Guid::eui64_from_mac(t),
        ibstat::ipoib_guid_from_hwaddr(t),
    ];
    guids.iter().all(Option::is_none)
}

fn p_sysfs_port(t: &str) -> bool {
    // The text as every sysfs file at once, and its lines as the files in order.
    let keys = [
        "state",
        "phys_state",
        "rate",
        "link_layer",
        "lid",
        "sm_lid",
        "lid_mask_count",
        "cap_mask",
        "gids/0",
    ];
    let all: BTreeMap<String, String> = keys
        .iter()
        .map(|k| (k.to_string(), t.to_string()))
        .collect();
    let lines: BTreeMap<String, String> = keys
        .iter()
        .zip(t.lines())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let a = ibstat::parse_sysfs_port("x", 1, &all).is_err();
    let b = ibstat::parse_sysfs_port("x", 255, &lines).is_err();
    a && b
}

fn p_session_p3(t: &str) -> bool {
    let d = iscsiadm::parse_session_p3(t);
    for s in &d {
        let _ = (s.is_logged_in(), s.disks());
        if let Some(p) = &s.current_portal {
            let _ = p.to_string();
        }
    }
    d.is_empty()
}

fn p_iscsiadm_lists(t: &str) -> bool {
    let n = iscsiadm::parse_nodes(t);
    let d = iscsiadm::parse_discovery(t);
    for x in n.iter().chain(&d) {
        let _ = x.portal.to_string();
    }
    let r = iscsiadm::parse_record(t);
    let i = iscsiadm::parse_initiatorname(t);
    let l = iscsiadm::parse_logout_output(t);
    n.is_empty() && d.is_empty() && r.is_empty() && i.is_none() && l.is_empty()
}

/// Classifies a failed run's output; every non-zero exit yields an error, so this never
/// counts as reading something.
fn p_iscsiadm_errors(t: &str) -> bool {
    for code in [
        1,
        2,
        3,
        4,
        8,
        15,
        19,
        21,
        24,
        29,
        255,
        -1,
        i32::MAX,
        i32::MIN,
    ] {
        if let Some(e) = iscsiadm::IscsiadmError::from_output(code, t) {
            let _ = e.to_string();
        }
    }
    true
}

fn p_lsblk(t: &str) -> bool {
    fn walk(d: &lsblk::BlockDev) {
        let _ = (d.size_bytes(), d.is_type("disk"));
        d.children.iter().for_each(walk);
    }
    match lsblk::parse_lsblk_json(t) {
        Ok(devs) => {
            devs.iter().for_each(walk);
            devs.is_empty()
        }
        Err(e) => {
            let _ = e.to_string();
            true
        }
    }
}

fn p_multipath(t: &str) -> bool {
    let maps = multipath::parse_multipath_ll(t);
    for m in &maps {
        let _ = (m.paths().count(), m.healthy_paths().count());
    }
    let l = multipath::parse_multipath_listing(t);
    maps.is_empty() && l.maps.is_empty()
}

fn p_netlink(t: &str) -> bool {
    let links = match netlink::parse_ip_j_addr(t) {
        Ok(links) => {
            for l in &links {
                let _ = (l.is_up(), l.is_ipoib(), l.port_guid());
            }
            links.is_empty()
        }
        Err(_) => true,
    };
    let _ = netlink::OperState::parse(t);
    links && netlink::parse_rdma_link(t).is_empty()
}

fn p_host_files(t: &str) -> bool {
    let os = crate::steps::preflight::parse_os_release(t);
    let conf = crate::steps::iscsid_conf::get_key(t, "node.startup");
    let short = crate::steps::iscsid_conf::find_short_keys(t);
    let fm = crate::steps::multipath::FindMultipaths::parse(t);
    let _ = unhex(t);
    os.id.is_empty() && conf.is_none() && short.is_empty() && fm.is_none()
}

/// Every parser.
const PARSERS: &[Parser] = &[
    p_blkid,
    p_ibstat,
    p_ib_values,
    p_sysfs_port,
    p_session_p3,
    p_iscsiadm_lists,
    p_iscsiadm_errors,
    p_lsblk,
    p_multipath,
    p_netlink,
    p_host_files,
];

/// Run each of `parsers` (all of them: no stop at the first that reads something); `true`
/// when all refused.
fn run(parsers: impl IntoIterator<Item = Parser>, t: &str) -> bool {
    let mut refused = true;
    for p in parsers {
        refused &= p(t);
    }
    refused
}

/// Run every parser; `true` when all refused.
fn run_all(t: &str) -> bool {
    run(PARSERS.iter().copied(), t)
}

/// The parsers a fixture is output of (by its file name), for the costly every-boundary
/// truncation; every parser when the name says nothing.
fn parsers_for(name: &str) -> Vec<Parser> {
    let by: &[(&str, &[Parser])] = &[
        ("blkid", &[p_blkid]),
        ("ibstat", &[p_ibstat, p_ib_values]),
        ("sysfs", &[p_sysfs_port, p_ib_values]),
        ("session-P3", &[p_session_p3]),
        ("iscsiadm", &[p_iscsiadm_lists, p_iscsiadm_errors]),
        ("initiatorname", &[p_iscsiadm_lists]),
        ("lsblk", &[p_lsblk]),
        ("multipath", &[p_multipath]),
        ("ip-", &[p_netlink]),
        ("rdma", &[p_netlink]),
    ];
    let found: Vec<Parser> = by
        .iter()
        .filter(|(k, _)| name.contains(k))
        .flat_map(|(_, ps)| ps.iter().copied())
        .collect();
    if found.is_empty() {
        PARSERS.to_vec()
    } else {
        found
    }
}

#[test]
fn every_parser_survives_damaged_real_output() {
    let seeds = seeds();
    let tally = Tally::default();
    check(
        "parsers on damaged fixtures",
        cases(1500),
        (0..seeds.len(), prop::collection::vec(op(), 1..8)),
        &tally,
        |(i, ops)| run_all(&damage(&seeds[i].1, &ops)),
    );
}

#[test]
fn every_parser_survives_arbitrary_text() {
    let tally = Tally::default();
    let text = prop_oneof![
        any::<String>(),
        prop::collection::vec(any::<u8>(), 0..512)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        prop::collection::vec(proptest::sample::select(PIECES), 0..64).prop_map(|v| v.concat()),
    ];
    check(
        "parsers on arbitrary text",
        cases(1500),
        text,
        &tally,
        |t| run_all(&t),
    );
}

/// Where [`every_parser_survives_truncated_fixtures`] cuts `text`: every char
/// boundary of a short text; of a long one (each cut re-parses the whole prefix, so all of
/// them cost the square of its length) every line's end and the boundary after it, the whole
/// last 64 bytes, and 64 boundaries spread evenly.
fn cut_points(text: &str) -> Vec<usize> {
    const SHORT: usize = 256;
    let mut at: Vec<usize> = if text.len() <= SHORT {
        (0..=text.len()).collect()
    } else {
        let ends = text.match_indices('\n').map(|(i, _)| i);
        let near = ends.flat_map(|i| [i, i + 1]);
        let tail = text.len().saturating_sub(64)..=text.len();
        let spread = (0..=64).map(|k| k * text.len() / 64);
        near.chain(tail).chain(spread).collect()
    };
    at.retain(|&i| i <= text.len() && text.is_char_boundary(i));
    at.sort_unstable();
    at.dedup();
    at
}

#[test]
fn every_parser_survives_truncated_fixtures() {
    // A capture cut short (a killed command, a full disk) must be refused or read in part,
    // by the parsers of that output.
    let tally = Tally::default();
    for (name, text) in seeds() {
        let ps = parsers_for(name);
        for at in cut_points(text) {
            let cut = &text[..at];
            tally.count(run(ps.iter().copied(), cut));
        }
    }
    println!("{}", tally.line("parsers on truncated fixtures"));
}

#[test]
fn aligned_partition_never_panics_and_stays_inside_the_device() {
    let tally = Tally::default();
    let num = || {
        prop_oneof![
            any::<u64>(),
            (0u32..64).prop_map(|s| 1u64 << s),
            (0u32..64, 0u64..4).prop_map(|(s, k)| (1u64 << s).wrapping_mul(k + 1)),
            Just(u64::MAX),
            Just(0),
        ]
    };
    check(
        "aligned_partition",
        cases(4000),
        (num(), num(), num(), num()),
        &tally,
        |(size, lss, opt, off)| match parted::aligned_partition(size, lss, opt, off) {
            Ok((first, last)) => {
                assert!(first <= last, "{first} > {last}");
                assert!(last < size / lss, "{last} beyond the device's {size} bytes");
                false
            }
            Err(e) => {
                let _ = e.to_string();
                true
            }
        },
    );
}

#[test]
fn iscsiadm_exit_codes_classify_and_print() {
    let tally = Tally::default();
    check("classify_exit", cases(2000), any::<i32>(), &tally, |code| {
        let e = iscsiadm::classify_exit(code);
        let _ = (e.description(), e.is_timeout(), e.is_auth(), e.login_ok());
        let _ = e.listing_ok();
        // Every code classifies: there is nothing to refuse.
        false
    });
}

#[test]
fn damage_applies_every_op_to_any_text() {
    // The mutator itself must hold for the properties to mean anything: empty text, text
    // ending in a multi-byte char, huge positions.
    let ops = [
        Op::Flip(usize::MAX, 0xff),
        Op::Truncate(usize::MAX),
        Op::DupLine(usize::MAX),
        Op::SwapLines(usize::MAX, 3),
        Op::Delete(usize::MAX, 255),
        Op::Insert(usize::MAX, "🦀".into()),
    ];
    for t in ["", "é", "a\nb\n🦀", "\n"] {
        for op in &ops {
            let _ = damage(t, std::slice::from_ref(op));
        }
    }
    assert_eq!(damage("ab\ncd\n", &[Op::DupLine(1)]), "ab\ncd\ncd\n");
    assert_eq!(damage("ab\ncd\n", &[Op::SwapLines(0, 1)]), "cd\nab\n");
    assert_eq!(damage("aé", &[Op::Truncate(2)]), "a");
    assert_eq!(damage("abc", &[Op::Insert(1, "é".into())]), "aébc");
}
