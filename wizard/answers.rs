//! The answers file, version 1 (CONTRACT.md): its schema, and validation that reports every
//! problem at once, each with its JSON path and how to fix it.
//!
//! The same per-field checks serve the whole-file validation of an unattended run and each
//! answer typed at a prompt ([`check_field`]), so both paths accept exactly the same values.

use std::collections::BTreeSet;
use std::fmt;
use std::net::Ipv4Addr;

use serde_json::{Map, Value};

/// The answers template (`iser-wizard answers --template`); it validates as it is.
pub const TEMPLATE: &str = include_str!("../templates/answers.json");

/// One problem in an answers file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// JSON path (`ports[1].address`).
    pub path: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

type StrCheck = fn(&str) -> Result<(), String>;

/// The kind of value a key takes.
#[derive(Debug)]
pub enum Kind {
    /// A string checked by a function.
    Str(StrCheck),
    /// true or false.
    Bool,
    /// A whole number in a range.
    Int(i64, i64),
    /// An object with these fields (unknown keys are errors).
    Object(&'static [Field]),
    /// An array of items, with a length range.
    Array(&'static Kind, usize, usize),
    /// An object whose keys are checked by a function, values all of one kind.
    Map(StrCheck, &'static Kind),
    /// `null` or a value of the kind.
    NullOr(&'static Kind),
}

/// One key of an object.
#[derive(Debug)]
pub struct Field {
    /// Key.
    pub name: &'static str,
    /// Kind of value.
    pub kind: Kind,
    /// Whether the key must be present.
    pub required: bool,
}

const fn req(name: &'static str, kind: Kind) -> Field {
    Field {
        name,
        kind,
        required: true,
    }
}

const fn opt(name: &'static str, kind: Kind) -> Field {
    Field {
        name,
        kind,
        required: false,
    }
}

const HOST: &[Field] = &[
    req("initiator_iqn", Kind::Str(check_initiator_iqn)),
    req("mapping_host_name", Kind::Str(check_host_name)),
    req("host_os_type", Kind::Str(check_text)),
    opt("allow_unsupported_os", Kind::Bool),
];
const PRIORITY: Kind = Kind::Int(0, 15);
const SUBNET_MANAGER: &[Field] = &[
    req("run_on_host", Kind::Bool),
    opt("priorities", Kind::Map(check_guid_or_netdev, &PRIORITY)),
];
const PORT: &[Field] = &[
    req("netdev", Kind::Str(check_netdev)),
    req("address", Kind::Str(check_cidr)),
    opt("ipoib_mode", Kind::Str(check_ipoib_mode)),
    opt("mtu", Kind::Int(576, 65520)),
    opt("persistent_name", Kind::Str(check_netdev)),
];
const PORT_KIND: Kind = Kind::Object(PORT);
const PORTAL: &[Field] = &[
    req("address", Kind::Str(check_portal)),
    opt("label", Kind::Str(check_text)),
];
const PORTAL_KIND: Kind = Kind::Object(PORTAL);
const CHAP: &[Field] = &[
    req("username", Kind::Str(check_text)),
    req("password_env", Kind::Str(check_env_name)),
];
const CHAP_KIND: Kind = Kind::Object(CHAP);
const TARGET: &[Field] = &[
    req("iqn", Kind::Str(check_target_iqn)),
    req("discovery", Kind::Str(check_discovery)),
    req("portals", Kind::Array(&PORTAL_KIND, 1, 16)),
    opt("chap", Kind::NullOr(&CHAP_KIND)),
];
const ISCSI: &[Field] = &[req("replacement_timeout", Kind::Int(1, 3600))];
const MULTIPATH: &[Field] = &[opt("rebuild_initramfs", Kind::Bool)];
const VOLUME: &[Field] = &[
    req("wwid", Kind::Str(check_wwid)),
    req("partition", Kind::Bool),
    req("filesystem", Kind::Str(check_filesystem)),
    req("mount_point", Kind::Str(check_mount_point)),
    req("fstab", Kind::Bool),
];
const VERIFY: &[Field] = &[req("size", Kind::Str(check_size))];

/// The whole file.
pub const ROOT: &[Field] = &[
    req("version", Kind::Int(1, 1)),
    req("host", Kind::Object(HOST)),
    req("fabric", Kind::Str(check_fabric)),
    // Optional: RoCE has no subnet manager; on InfiniBand, run_on_host defaults to true.
    opt("subnet_manager", Kind::Object(SUBNET_MANAGER)),
    req("ports", Kind::Array(&PORT_KIND, 1, 8)),
    req("target", Kind::Object(TARGET)),
    req("iscsi", Kind::Object(ISCSI)),
    opt("multipath", Kind::Object(MULTIPATH)),
    req("volume", Kind::Object(VOLUME)),
    req("verify", Kind::Object(VERIFY)),
];

fn no_control(s: &str) -> Result<(), String> {
    if s.chars().any(|c| c.is_control()) {
        Err("contains a control character or newline; these would corrupt the configuration files the value lands in: remove it".into())
    } else {
        Ok(())
    }
}

/// Free text that may land in a file: printable, one line, at most 255 bytes.
pub fn check_text(s: &str) -> Result<(), String> {
    no_control(s)?;
    if s.trim().is_empty() {
        return Err("is empty: give a value".into());
    }
    if s.len() > 255 {
        return Err("is longer than 255 bytes: shorten it".into());
    }
    Ok(())
}

fn check_host_name(s: &str) -> Result<(), String> {
    check_text(s)?;
    if s.len() > 30
        || !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(format!(
            "{s:?} is not a valid array host name: use up to 30 letters, digits, '-' or '_'"
        ));
    }
    Ok(())
}

fn is_label(l: &str) -> bool {
    !l.is_empty()
        && l.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !l.starts_with('-')
        && !l.ends_with('-')
}

/// An iSCSI name per RFC 3720 section 3.2.6.3: `iqn.YYYY-MM.reversed.domain[:unique]`,
/// `eui.` + 16 hex digits, or `naa.` + 16 or 32 hex digits.
pub fn check_iscsi_name(s: &str) -> Result<(), String> {
    no_control(s)?;
    let fix = "an iSCSI name looks like iqn.1992-08.com.netapp:2800.600a0980... (iqn.YYYY-MM.reversed-domain[:unique]), eui.<16 hex digits> or naa.<16 or 32 hex digits>";
    if s.len() > 223 {
        return Err(format!(
            "is longer than 223 bytes (RFC 3720's limit); {fix}"
        ));
    }
    let hex = |t: &str| t.chars().all(|c| c.is_ascii_hexdigit());
    if let Some(rest) = s.strip_prefix("eui.") {
        return if rest.len() == 16 && hex(rest) {
            Ok(())
        } else {
            Err(format!(
                "{s:?}: an eui. name has exactly 16 hex digits; {fix}"
            ))
        };
    }
    if let Some(rest) = s.strip_prefix("naa.") {
        return if (rest.len() == 16 || rest.len() == 32) && hex(rest) {
            Ok(())
        } else {
            Err(format!("{s:?}: a naa. name has 16 or 32 hex digits; {fix}"))
        };
    }
    let Some(rest) = s.strip_prefix("iqn.") else {
        return Err(format!(
            "{s:?} does not start with iqn., eui. or naa.; {fix}"
        ));
    };
    if s.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(format!(
            "{s:?} has upper-case letters: iSCSI names are compared in lower case, write it in lower case"
        ));
    }
    let (head, unique) = match rest.split_once(':') {
        Some((h, u)) => (h, Some(u)),
        None => (rest, None),
    };
    let date_ok = head.len() > 8 && {
        let d = &head[..7];
        let b = d.as_bytes();
        b[..4].iter().all(u8::is_ascii_digit)
            && b[4] == b'-'
            && b[5..7].iter().all(u8::is_ascii_digit)
            && matches!(d[5..7].parse::<u8>(), Ok(1..=12))
            && head.as_bytes()[7] == b'.'
    };
    if !date_ok {
        return Err(format!(
            "{s:?}: after iqn. comes the year and month the naming authority registered its domain (YYYY-MM), then a dot; {fix}"
        ));
    }
    if !head[8..].split('.').all(is_label) {
        return Err(format!(
            "{s:?}: the naming authority must be a reversed domain name (com.example); {fix}"
        ));
    }
    if let Some(u) = unique {
        if u.is_empty()
            || !u
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || ".:-".contains(c))
        {
            return Err(format!(
                "{s:?}: after the colon only lower-case letters, digits, '.', ':' and '-' are allowed; {fix}"
            ));
        }
    }
    Ok(())
}

fn check_initiator_iqn(s: &str) -> Result<(), String> {
    if s == "auto" {
        return Ok(());
    }
    check_iscsi_name(s)
        .map_err(|e| format!("{e}; or \"auto\" to keep (or generate) the host's own"))
}

fn check_target_iqn(s: &str) -> Result<(), String> {
    if s == "discover" {
        return Ok(());
    }
    check_iscsi_name(s).map_err(|e| format!("{e}; or \"discover\" to take it from SendTargets"))
}

fn one_of(s: &str, allowed: &[&str]) -> Result<(), String> {
    if allowed.contains(&s) {
        Ok(())
    } else {
        Err(format!(
            "{s:?} is not one of {}",
            allowed
                .iter()
                .map(|a| format!("\"{a}\""))
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }
}

fn check_fabric(s: &str) -> Result<(), String> {
    one_of(s, &["infiniband", "roce", "auto"])
}
fn check_ipoib_mode(s: &str) -> Result<(), String> {
    one_of(s, &["datagram", "connected"])
}
fn check_discovery(s: &str) -> Result<(), String> {
    one_of(s, &["sendtargets", "manual"])
}
fn check_filesystem(s: &str) -> Result<(), String> {
    one_of(s, &["ext4", "xfs"])
}

/// A port GUID: `0x` and 16 hex digits.
pub fn check_guid(s: &str) -> Result<(), String> {
    match s.strip_prefix("0x") {
        Some(h) if h.len() == 16 && h.chars().all(|c| c.is_ascii_hexdigit()) => Ok(()),
        _ => Err(format!(
            "{s:?} is not a port GUID: write 0x and 16 hex digits, as `ibstat -p` prints them"
        )),
    }
}

fn check_guid_or_netdev(s: &str) -> Result<(), String> {
    if s.starts_with("0x") {
        check_guid(s)
    } else {
        check_netdev(s).map_err(|e| format!("{e}; or a port GUID (0x + 16 hex digits)"))
    }
}

/// A network interface name as the kernel accepts it (at most 15 bytes, no '/', ':' or
/// white space).
pub fn check_netdev(s: &str) -> Result<(), String> {
    no_control(s)?;
    if s.is_empty() || s.len() > 15 {
        return Err(format!(
            "{s:?} is not a network interface name: 1 to 15 characters"
        ));
    }
    if s == "." || s == ".." || s.chars().any(|c| c == '/' || c == ':' || c.is_whitespace()) {
        return Err(format!(
            "{s:?} is not a network interface name: no '/', ':' or spaces"
        ));
    }
    Ok(())
}

/// An IPv4 address and prefix length.
pub fn parse_cidr(s: &str) -> Option<(Ipv4Addr, u8)> {
    let (a, p) = s.split_once('/')?;
    let addr: Ipv4Addr = a.parse().ok()?;
    if p.is_empty() || !p.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let prefix: u8 = p.parse().ok()?;
    (1..=32).contains(&prefix).then_some((addr, prefix))
}

/// The network mask of a prefix length.
pub fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix as u32)
    }
}

/// Whether `addr` lies in `net/prefix`.
pub fn in_subnet(addr: Ipv4Addr, net: Ipv4Addr, prefix: u8) -> bool {
    let m = mask(prefix);
    u32::from(addr) & m == u32::from(net) & m
}

fn check_cidr(s: &str) -> Result<(), String> {
    no_control(s)?;
    let Some((addr, prefix)) = parse_cidr(s) else {
        return Err(format!(
            "{s:?} is not an IPv4 address with prefix length: write it like 192.168.130.10/24"
        ));
    };
    if prefix <= 30 {
        let m = mask(prefix);
        let a = u32::from(addr);
        if a & !m == 0 {
            return Err(format!(
                "{s:?} is the network address of its subnet: give the host's own address"
            ));
        }
        if a & !m == !m {
            return Err(format!(
                "{s:?} is the broadcast address of its subnet: give the host's own address"
            ));
        }
    }
    if addr.is_loopback() || addr.is_multicast() || addr.is_unspecified() {
        return Err(format!("{s:?} cannot be an interface address"));
    }
    Ok(())
}

/// A portal: an IPv4 address, optionally with `:port`.
pub fn parse_portal(s: &str) -> Option<(Ipv4Addr, u16)> {
    match s.split_once(':') {
        Some((a, p)) => Some((a.parse().ok()?, p.parse().ok().filter(|p| *p > 0)?)),
        None => Some((s.parse().ok()?, 3260)),
    }
}

fn check_portal(s: &str) -> Result<(), String> {
    no_control(s)?;
    match parse_portal(s) {
        Some((a, _)) if !a.is_unspecified() && !a.is_loopback() && !a.is_multicast() => Ok(()),
        _ => Err(format!(
            "{s:?} is not a target port address: write an IPv4 address like 192.168.130.101 (optionally :3260)"
        )),
    }
}

fn check_env_name(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{s:?} is not an environment variable name: letters, digits and '_' (the secret itself never goes in this file)"
        ))
    }
}

/// A multipath WWID: hex digits, as `multipath -ll` shows in parentheses.
pub fn check_wwid(s: &str) -> Result<(), String> {
    if s == "auto" {
        return Ok(());
    }
    if (8..=64).contains(&s.len()) && s.chars().all(|c| c.is_ascii_hexdigit()) {
        return Ok(());
    }
    Err(format!(
        "{s:?} is not a multipath WWID: give the hex WWID `multipath -ll` shows (like 3600a098000af40f5000000005e7bc1a9), or \"auto\""
    ))
}

/// Directories a volume must never be mounted over.
const SYSTEM_DIRS: &[&str] = &[
    "/", "/bin", "/boot", "/dev", "/etc", "/lib", "/lib64", "/proc", "/root", "/run", "/sbin",
    "/sys", "/tmp", "/usr", "/var",
];

fn check_mount_point(s: &str) -> Result<(), String> {
    no_control(s)?;
    if !s.starts_with('/') {
        return Err(format!(
            "{s:?} is not an absolute path: write it like /mnt/ext4"
        ));
    }
    if s.len() > 1 && s.ends_with('/') {
        return Err(format!("{s:?}: remove the trailing '/'"));
    }
    if s.split('/')
        .skip(1)
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err(format!(
            "{s:?} has an empty, '.' or '..' component: write the plain path"
        ));
    }
    if s.chars().any(|c| c.is_whitespace() || c == '\\') {
        return Err(format!(
            "{s:?} has white space or a backslash, which fstab cannot hold as written: choose another path"
        ));
    }
    if SYSTEM_DIRS.contains(&s) {
        return Err(format!(
            "{s} is a system directory: mount the volume on a directory of its own, like /mnt/ext4"
        ));
    }
    Ok(())
}

/// A size with a unit (`256MiB`): bytes.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().ok()?;
    let mult = match unit.trim() {
        "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(mult)
}

fn check_size(s: &str) -> Result<(), String> {
    let Some(b) = parse_size(s) else {
        return Err(format!(
            "{s:?} is not a size: write a whole number with B, KiB, MiB or GiB, like 256MiB"
        ));
    };
    if !(1 << 20..=64 << 30).contains(&b) {
        return Err(format!("{s} is outside 1MiB..64GiB"));
    }
    if b % 4096 != 0 {
        return Err(format!(
            "{s} is not a multiple of 4 KiB (direct I/O works in whole 4 KiB blocks)"
        ));
    }
    Ok(())
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "true/false",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn describe(kind: &Kind) -> String {
    match kind {
        Kind::Str(_) => "a string".into(),
        Kind::Bool => "true or false".into(),
        Kind::Int(a, b) if a == b => format!("the number {a}"),
        Kind::Int(a, b) => format!("a whole number from {a} to {b}"),
        Kind::Object(_) | Kind::Map(..) => "an object".into(),
        Kind::Array(..) => "a list".into(),
        Kind::NullOr(k) => format!("null or {}", describe(k)),
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Levenshtein distance, for "did you mean".
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let v = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
            cur.push(v);
        }
        prev = cur;
    }
    prev[b.len()]
}

fn check_value(v: &Value, kind: &Kind, path: &str, out: &mut Vec<Problem>) {
    let mut bad = |message: String| {
        out.push(Problem {
            path: path.to_string(),
            message,
        })
    };
    match (kind, v) {
        (Kind::Str(f), Value::String(s)) => {
            if let Err(m) = f(s) {
                bad(m)
            }
        }
        (Kind::Bool, Value::Bool(_)) => {}
        (Kind::Int(lo, hi), Value::Number(n)) => match n.as_i64() {
            Some(i) if (*lo..=*hi).contains(&i) => {}
            _ => bad(format!("{n} is not {}", describe(kind))),
        },
        (Kind::Object(fields), Value::Object(map)) => check_object(map, fields, path, out),
        (Kind::Array(item, lo, hi), Value::Array(items)) => {
            if items.len() < *lo || items.len() > *hi {
                bad(format!("has {} entries; give {lo} to {hi}", items.len()));
            }
            for (i, it) in items.iter().enumerate() {
                check_value(it, item, &format!("{path}[{i}]"), out);
            }
        }
        (Kind::Map(key_check, val), Value::Object(map)) => {
            for (k, x) in map {
                let p = join(path, k);
                if let Err(m) = key_check(k) {
                    out.push(Problem {
                        path: p.clone(),
                        message: m,
                    });
                }
                check_value(x, val, &p, out);
            }
        }
        (Kind::NullOr(_), Value::Null) => {}
        (Kind::NullOr(k), v) => check_value(v, k, path, out),
        (k, v) => bad(format!("is {}, should be {}", type_name(v), describe(k))),
    }
}

fn check_object(map: &Map<String, Value>, fields: &[Field], path: &str, out: &mut Vec<Problem>) {
    for f in fields {
        match map.get(f.name) {
            Some(v) => check_value(v, &f.kind, &join(path, f.name), out),
            None if f.required => out.push(Problem {
                path: join(path, f.name),
                message: format!(
                    "is missing: add it ({}); `iser-wizard answers --template` shows every key",
                    describe(&f.kind)
                ),
            }),
            None => {}
        }
    }
    for k in map.keys() {
        if !fields.iter().any(|f| f.name == k) {
            let near = fields
                .iter()
                .map(|f| (distance(k, f.name), f.name))
                .min()
                .filter(|(d, _)| *d <= 3);
            out.push(Problem {
                path: join(path, k),
                message: match near {
                    Some((_, n)) => format!("unknown key: did you mean \"{n}\"?"),
                    None => format!(
                        "unknown key: the keys here are {}",
                        fields.iter().map(|f| f.name).collect::<Vec<_>>().join(", ")
                    ),
                },
            });
        }
    }
}

/// The kind of the value at a JSON path (`ports[0].address`), if the schema has one.
pub fn kind_at(path: &str) -> Option<&'static Kind> {
    let mut fields: &[Field] = ROOT;
    let mut kind: Option<&'static Kind> = None;
    for seg in path.split('.') {
        let name = seg.split('[').next().unwrap_or(seg);
        if let Some(Kind::Map(_, v)) = kind {
            kind = Some(v);
            continue;
        }
        let f = fields.iter().find(|f| f.name == name)?;
        let mut k: &'static Kind = &f.kind;
        if seg.contains('[') {
            if let Kind::Array(item, ..) = k {
                k = item;
            }
        }
        if let Kind::NullOr(inner) = k {
            k = inner;
        }
        if let Kind::Object(fs) = k {
            fields = fs;
        }
        kind = Some(k);
    }
    kind
}

/// Check one answer exactly as the whole-file validation would.
pub fn check_field(path: &str, v: &Value) -> Result<(), String> {
    let Some(kind) = kind_at(path) else {
        return Ok(());
    };
    let mut out = Vec::new();
    check_value(v, kind, path, &mut out);
    match out.into_iter().next() {
        Some(p) => Err(p.message),
        None => Ok(()),
    }
}

/// Validate a whole answers file: every problem, structural and across fields.
/// `env` looks up environment variables (for the CHAP secret's variable).
pub fn validate(v: &Value, env: &dyn Fn(&str) -> Option<String>) -> Vec<Problem> {
    let mut out = Vec::new();
    let Value::Object(map) = v else {
        out.push(Problem {
            path: "(top)".into(),
            message: format!(
                "is {}, should be an object; start from `iser-wizard answers --template`",
                type_name(v)
            ),
        });
        return out;
    };
    check_object(map, ROOT, "", &mut out);
    cross_checks(v, env, &mut out);
    out
}

/// The answers that belong to this host alone, each as `key (value)`: what an operator must
/// change before replaying a recorded file on the next host. Port addresses and the mapping
/// host name are always this host's; an explicit initiator IQN must be unique per host; an
/// explicit WWID is this host's volume ("auto" and the rest travel as they are).
pub fn host_specific(v: &Value) -> Vec<String> {
    let ports = v.get("ports").and_then(Value::as_array).map_or(0, Vec::len);
    let mut out: Vec<String> = (0..ports)
        .filter_map(|i| {
            let a = v["ports"][i].get("address")?.as_str()?;
            Some(format!("ports[{i}].address ({a})"))
        })
        .collect();
    for (key, path, always) in [
        (
            "host.mapping_host_name",
            ["host", "mapping_host_name"],
            true,
        ),
        ("host.initiator_iqn", ["host", "initiator_iqn"], false),
        ("volume.wwid", ["volume", "wwid"], false),
    ] {
        if let Some(x) = s(v, &path).filter(|x| always || *x != "auto") {
            out.push(format!("{key} ({x})"));
        }
    }
    out
}

fn s<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    cur.as_str()
}

fn cross_checks(v: &Value, env: &dyn Fn(&str) -> Option<String>, out: &mut Vec<Problem>) {
    let mut bad = |path: String, message: String| out.push(Problem { path, message });
    let fabric = s(v, &["fabric"]).unwrap_or("auto");
    let empty = Vec::new();
    let ports = v.get("ports").and_then(Value::as_array).unwrap_or(&empty);
    let mut nets: Vec<(usize, Ipv4Addr, u8, String)> = Vec::new();
    let mut netdevs = BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        let netdev = s(p, &["netdev"]).unwrap_or("").to_string();
        if !netdev.is_empty() && !netdevs.insert(netdev.clone()) {
            bad(
                format!("ports[{i}].netdev"),
                format!("{netdev} is listed twice: one entry per port"),
            );
        }
        if let Some((addr, prefix)) = s(p, &["address"]).and_then(parse_cidr) {
            for (j, a, pf, _) in &nets {
                if in_subnet(addr, *a, (*pf).min(prefix)) {
                    bad(
                        format!("ports[{i}].address"),
                        format!(
                            "is in the same subnet as ports[{j}].address: each host port needs its own subnet, or the target ports cannot be told apart"
                        ),
                    );
                }
            }
            nets.push((i, addr, prefix, netdev.clone()));
        }
        let mode = s(p, &["ipoib_mode"]);
        if fabric == "roce" && mode == Some("connected") {
            bad(
                format!("ports[{i}].ipoib_mode"),
                "connected mode is IPoIB's; on RoCE there is no IPoIB: remove ipoib_mode".into(),
            );
        }
        if let Some(mtu) = p.get("mtu").and_then(Value::as_i64) {
            if fabric != "roce" && mode != Some("connected") && mtu > 4092 && fabric == "infiniband"
            {
                bad(
                    format!("ports[{i}].mtu"),
                    format!("{mtu} is above 4092, the largest IPoIB datagram-mode MTU (IB MTU 4096 - 4): use 4092 or 2044"),
                );
            }
        }
    }
    if let Some(prios) = v
        .get("subnet_manager")
        .and_then(|m| m.get("priorities"))
        .and_then(Value::as_object)
    {
        for k in prios.keys() {
            if !k.starts_with("0x") && check_netdev(k).is_ok() && !netdevs.contains(k) {
                bad(
                    format!("subnet_manager.priorities.{k}"),
                    format!(
                        "{k} is not one of the ports' netdevs: name a port GUID or a listed netdev"
                    ),
                );
            }
        }
    }
    let target_iqn = s(v, &["target", "iqn"]);
    if s(v, &["target", "discovery"]) == Some("manual") && target_iqn == Some("discover") {
        bad(
            "target.iqn".into(),
            "\"discover\" needs SendTargets discovery, but target.discovery is \"manual\": give the target IQN, or use \"sendtargets\"".into(),
        );
    }
    let portals = v
        .get("target")
        .and_then(|t| t.get("portals"))
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    // With a port address unreadable, subnet membership would only repeat that problem.
    let ports_readable = nets.len() == ports.len();
    let mut seen = BTreeSet::new();
    for (i, p) in portals.iter().enumerate() {
        let Some(text) = s(p, &["address"]) else {
            continue;
        };
        let Some((addr, _)) = parse_portal(text) else {
            continue;
        };
        if !seen.insert(addr) {
            bad(
                format!("target.portals[{i}].address"),
                format!("{addr} is listed twice"),
            );
        }
        if nets.is_empty() || !ports_readable {
            continue;
        }
        let owners: Vec<&(usize, Ipv4Addr, u8, String)> = nets
            .iter()
            .filter(|(_, a, pf, _)| in_subnet(addr, *a, *pf))
            .collect();
        match owners.as_slice() {
            [] => bad(
                format!("target.portals[{i}].address"),
                format!(
                    "{addr} is in no host port's subnet ({}): each target port must share a subnet with exactly one host port",
                    nets.iter()
                        .map(|(_, a, pf, n)| format!("{n} {a}/{pf}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
            [(_, a, _, n)] if *a == addr => bad(
                format!("target.portals[{i}].address"),
                format!("{addr} is the address of host port {n}, not of a target port"),
            ),
            [_] => {}
            _ => bad(
                format!("target.portals[{i}].address"),
                format!("{addr} lies in more than one host port's subnet"),
            ),
        }
    }
    if let Some(var) = v
        .get("target")
        .and_then(|t| t.get("chap"))
        .and_then(|c| c.get("password_env"))
        .and_then(Value::as_str)
    {
        if check_env_name(var).is_ok() && env(var).is_none_or(|x| x.is_empty()) {
            bad(
                "target.chap.password_env".into(),
                format!("the environment variable {var} is not set: export it with the CHAP secret before running"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn template() -> Value {
        serde_json::from_str(TEMPLATE).unwrap()
    }

    fn problems(v: &Value) -> Vec<String> {
        validate(v, &no_env).iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn the_template_validates() {
        assert_eq!(problems(&template()), Vec::<String>::new());
    }

    #[test]
    fn the_answers_of_this_host_alone_are_named() {
        let mut v = template();
        assert_eq!(
            host_specific(&v),
            [
                "ports[0].address (192.168.130.10/24)",
                "ports[1].address (192.168.131.10/24)",
                "host.mapping_host_name (db01)",
            ]
        );
        v["host"]["initiator_iqn"] = json!("iqn.2024-01.com.example:db01");
        v["volume"]["wwid"] = json!("360014051ab0000000000000000000000");
        let named = host_specific(&v);
        assert_eq!(named.len(), 5, "{named:?}");
        assert_eq!(
            named[3],
            "host.initiator_iqn (iqn.2024-01.com.example:db01)"
        );
        assert_eq!(named[4], "volume.wwid (360014051ab0000000000000000000000)");
    }

    #[test]
    fn roce_answers_need_no_subnet_manager() {
        // What an interactive run on RoCE records: nobody was asked about opensm.
        let mut v = template();
        v["fabric"] = json!("roce");
        v.as_object_mut().unwrap().remove("subnet_manager");
        assert_eq!(problems(&v), Vec::<String>::new());
        // When it is there, it is checked.
        v["subnet_manager"] = json!({"priorities": {}});
        assert_eq!(
            problems(&v),
            ["subnet_manager.run_on_host: is missing: add it (true or false); `iser-wizard answers --template` shows every key"]
        );
    }

    #[test]
    fn iscsi_names_per_rfc_3720() {
        for ok in [
            "iqn.1992-08.com.netapp:2800.600a098000af40f5000000005e7bc1a9",
            "iqn.2002-09.com.lab:array",
            "iqn.1993-08.org.debian:01:9f1c2d3e4b5a",
            "iqn.2001-04.com.example",
            "eui.02004567A425678D",
            "naa.52004567BA64678D",
            "naa.6001405ab5c1e0a4d8e44f4d8d0d7c9a",
        ] {
            assert_eq!(check_iscsi_name(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "iqn.92-08.com.netapp:x",
            "iqn.1992-13.com.netapp:x",
            "iqn.1992-08.com.netapp:",
            "iqn.1992-08.com..netapp",
            "iqn.1992-08.com.NetApp:x",
            "iqn.1992-08.com.netapp:a b",
            "iqn.1992-08.com.netapp:a\nnode.startup = manual",
            "eui.0200",
            "naa.123",
            "2002-09.com.lab:array",
        ] {
            assert!(check_iscsi_name(bad).is_err(), "{bad:?} passed");
        }
    }

    #[test]
    fn cidrs_guids_sizes_netdevs_and_mount_points() {
        assert!(check_cidr("192.168.130.10/24").is_ok());
        assert!(check_cidr("192.168.130.0/24").is_err());
        assert!(check_cidr("192.168.130.255/24").is_err());
        assert!(check_cidr("192.168.130.300/24").is_err());
        assert!(check_cidr("192.168.130.10").is_err());
        assert!(check_cidr("192.168.130.10/33").is_err());
        assert!(check_cidr("192.168.130.10/+4").is_err());
        assert!(check_guid("0x248a070300a80a80").is_ok());
        assert!(check_guid("0x248a070300a80a8").is_err());
        assert!(check_guid("248a070300a80a80").is_err());
        assert_eq!(parse_size("256MiB"), Some(256 << 20));
        assert_eq!(parse_size("1GiB"), Some(1 << 30));
        assert_eq!(parse_size("256MB"), None);
        assert!(check_size("4097B").is_err());
        assert!(check_size("100GiB").is_err());
        assert!(check_netdev("ib0").is_ok());
        assert!(check_netdev("ib0:1").is_err());
        assert!(check_netdev("averyveryverylongname").is_err());
        assert!(check_mount_point("/mnt/ext4").is_ok());
        for bad in [
            "mnt",
            "/",
            "/etc",
            "/mnt/",
            "/mnt/a b",
            "/mnt/../etc",
            "/mnt//x",
        ] {
            assert!(check_mount_point(bad).is_err(), "{bad}");
        }
        assert!(check_env_name("CHAP_SECRET").is_ok());
        assert!(check_env_name("1X").is_err());
    }

    #[test]
    fn every_problem_is_reported_at_once_with_its_path() {
        let mut v = template();
        v["version"] = json!(2);
        v["fabric"] = json!("ethernet");
        v["ports"][1]["address"] = json!("192.168.131.300/24");
        v["volume"]["mount_pint"] = json!("/mnt/x");
        v["volume"].as_object_mut().unwrap().remove("mount_point");
        v["subnet_manager"]["priorities"]["0x248a070300a80a80"] = json!(16);
        v["iscsi"]["replacement_timeout"] = json!("20");
        let p = problems(&v);
        let has = |needle: &str| p.iter().any(|x| x.contains(needle));
        assert!(has("version: 2 is not the number 1"), "{p:#?}");
        assert!(has("fabric: \"ethernet\" is not one of"), "{p:#?}");
        assert!(
            has("ports[1].address: \"192.168.131.300/24\" is not an IPv4"),
            "{p:#?}"
        );
        assert!(
            has("volume.mount_pint: unknown key: did you mean \"mount_point\"?"),
            "{p:#?}"
        );
        assert!(has("volume.mount_point: is missing"), "{p:#?}");
        assert!(has("subnet_manager.priorities.0x248a070300a80a80: 16 is not a whole number from 0 to 15"), "{p:#?}");
        assert!(
            has("iscsi.replacement_timeout: is a string, should be a whole number"),
            "{p:#?}"
        );
        assert_eq!(p.len(), 7, "{p:#?}");
    }

    #[test]
    fn contradictions_are_refused() {
        let mut v = template();
        v["target"]["discovery"] = json!("manual");
        v["target"]["iqn"] = json!("discover");
        v["ports"][1]["address"] = json!("192.168.130.11/24");
        v["target"]["portals"][1]["address"] = json!("192.168.130.101");
        v["target"]["portals"][3]["address"] = json!("10.0.0.1");
        v["fabric"] = json!("roce");
        v["ports"][0]["ipoib_mode"] = json!("connected");
        v["target"]["chap"] = json!({"username": "u", "password_env": "ISER_TEST_UNSET_SECRET"});
        let p = problems(&v);
        let has = |needle: &str| p.iter().any(|x| x.contains(needle));
        assert!(has("target.iqn: \"discover\" needs SendTargets"), "{p:#?}");
        assert!(
            has("ports[1].address: is in the same subnet as ports[0].address"),
            "{p:#?}"
        );
        assert!(
            has("target.portals[1].address: 192.168.130.101 is listed twice"),
            "{p:#?}"
        );
        assert!(
            has("ports[0].ipoib_mode: connected mode is IPoIB's"),
            "{p:#?}"
        );
        assert!(
            has("target.portals[3].address: 10.0.0.1 is in no host port's subnet"),
            "{p:#?}"
        );
        assert!(has("target.chap.password_env: the environment variable ISER_TEST_UNSET_SECRET is not set"), "{p:#?}");
        let with_env = validate(&v, &|k| (k == "ISER_TEST_UNSET_SECRET").then(|| "s".into()));
        assert!(!with_env
            .iter()
            .any(|x| x.path == "target.chap.password_env"));
    }

    #[test]
    fn control_characters_never_reach_a_config_file() {
        let mut v = template();
        v["host"]["host_os_type"] = json!("Linux\nnode.startup = manual");
        v["target"]["portals"][0]["label"] = json!("A\u{7}");
        let p = problems(&v);
        assert_eq!(p.len(), 2, "{p:#?}");
        assert!(p.iter().all(|x| x.contains("control character")), "{p:#?}");
    }

    #[test]
    fn not_an_object_and_wrong_types() {
        assert!(problems(&json!([]))[0].contains("should be an object"));
        let mut v = template();
        v["ports"] = json!({});
        v["volume"]["partition"] = json!("yes");
        let p = problems(&v);
        assert!(
            p.iter()
                .any(|x| x.starts_with("ports: is an object, should be a list")),
            "{p:#?}"
        );
        assert!(
            p.iter()
                .any(|x| x.starts_with("volume.partition: is a string, should be true or false")),
            "{p:#?}"
        );
    }

    #[test]
    fn single_fields_check_like_the_whole_file() {
        assert!(check_field("volume.mount_point", &json!("/etc")).is_err());
        assert!(check_field("volume.mount_point", &json!("/mnt/data")).is_ok());
        assert!(check_field("ports[3].address", &json!("10.1.1.1")).is_err());
        assert!(check_field("ports[3].address", &json!("10.1.1.1/24")).is_ok());
        assert!(check_field("subnet_manager.priorities.0x248a070300a80a80", &json!(3)).is_ok());
        assert!(check_field("subnet_manager.priorities.0x248a070300a80a80", &json!(30)).is_err());
        assert!(check_field("target.chap.password_env", &json!("X Y")).is_err());
        assert!(check_field("host.allow_unsupported_os", &json!(true)).is_ok());
        assert!(check_field("iscsi.replacement_timeout", &json!(0)).is_err());
    }
}
