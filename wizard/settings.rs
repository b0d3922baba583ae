//! The settings stage: every answer (from the answers file or a prompt) becomes a typed value
//! once, here, and the steps get those values instead of strings.
//!
//! Each value type parses from a string the same way for serde (the answers file), for a
//! prompt (what a person types) and for the file validation in [`crate::answers`], with the
//! message that names what is wrong and how to write it. [`Answers`] is the partial record of
//! what is known: what the file provided plus what was asked in this run; `--record-answers`
//! writes it as it is. A step's *want* phase turns it into complete values through
//! [`crate::steps::Ask`], asking for what is missing.

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A value that parses from a string with an operator-facing message, and prints back as it
/// was written.
pub trait Setting: FromStr<Err = String> + fmt::Display + Clone {}
impl<T: FromStr<Err = String> + fmt::Display + Clone> Setting for T {}

/// Serde through `Display` / `FromStr`, so the file and a prompt parse alike.
macro_rules! serde_by_str {
    ($($t:ty),* $(,)?) => {$(
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    )*};
}

fn no_control(s: &str) -> Result<(), String> {
    if s.chars().any(|c| c.is_control()) {
        Err("contains a control character or newline; these would corrupt the configuration files the value lands in: remove it".into())
    } else {
        Ok(())
    }
}

/// Free text that may land in a file: printable, one line, at most 255 bytes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Text(String);

impl FromStr for Text {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        no_control(s)?;
        if s.trim().is_empty() {
            return Err("is empty: give a value".into());
        }
        if s.len() > 255 {
            return Err("is longer than 255 bytes: shorten it".into());
        }
        Ok(Text(s.to_string()))
    }
}

/// The host's name on the array: up to 30 letters, digits, '-' or '_'.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostName(String);

impl FromStr for HostName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Text::from_str(s)?;
        if s.len() > 30
            || !s
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(format!(
                "{s:?} is not a valid array host name: use up to 30 letters, digits, '-' or '_'"
            ));
        }
        Ok(HostName(s.to_string()))
    }
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
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Iqn(String);

impl Iqn {
    /// The name as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Iqn {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        check_iscsi_name(s)?;
        Ok(Iqn(s.to_string()))
    }
}

fn check_iscsi_name(s: &str) -> Result<(), String> {
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
    // Byte-wise on purpose: a non-ASCII character anywhere in the date must fail the check,
    // not split a UTF-8 sequence.
    let b = head.as_bytes();
    let date_ok = b.len() > 8
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[5..7].iter().all(u8::is_ascii_digit)
        && matches!((b[5] - b'0') * 10 + (b[6] - b'0'), 1..=12)
        && b[7] == b'.';
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

/// `host.initiator_iqn`: keep (or generate) the host's own, or set this one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitiatorIqn {
    /// Keep `/etc/iscsi/initiatorname.iscsi`, generating one when it is missing.
    Auto,
    /// Set this name.
    Name(Iqn),
}

impl FromStr for InitiatorIqn {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "auto" {
            return Ok(InitiatorIqn::Auto);
        }
        s.parse()
            .map(InitiatorIqn::Name)
            .map_err(|e| format!("{e}; or \"auto\" to keep (or generate) the host's own"))
    }
}

/// `target.iqn`: the target's name, or where to learn it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetIqn {
    /// Take it from SendTargets discovery.
    Discover,
    /// Take it from the array's API (needs an `array` section).
    FromArray,
    /// This name.
    Name(Iqn),
}

impl FromStr for TargetIqn {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "discover" => Ok(TargetIqn::Discover),
            "from-array" => Ok(TargetIqn::FromArray),
            _ => s
                .parse()
                .map(TargetIqn::Name)
                .map_err(|e| format!("{e}; or \"discover\" to take it from SendTargets")),
        }
    }
}

/// A network interface name as the kernel accepts it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Netdev(String);

impl Netdev {
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Netdev {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
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
        // The kernel allows more, but the name goes into configuration files, udev rules and
        // unit names, where a quote, '$' or a look-alike letter would be read specially.
        if !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(format!(
                "{s:?}: the wizard writes interface names into configuration files; use only letters, digits, '-', '_' and '.'"
            ));
        }
        Ok(Netdev(s.to_string()))
    }
}

/// A port GUID: `0x` and 16 hex digits, as `ibstat -p` prints them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Guid(String);

impl Guid {
    /// The GUID as written (`0x...`).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Guid {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.strip_prefix("0x") {
            Some(h) if h.len() == 16 && h.chars().all(|c| c.is_ascii_hexdigit()) => {
                Ok(Guid(s.to_string()))
            }
            _ => Err(format!(
                "{s:?} is not a port GUID: write 0x and 16 hex digits, as `ibstat -p` prints them"
            )),
        }
    }
}

/// A key of `subnet_manager.priorities`: a port GUID or a port's netdev.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum PortKey {
    /// By GUID.
    Guid(Guid),
    /// By netdev name.
    Netdev(Netdev),
}

impl FromStr for PortKey {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.starts_with("0x") {
            s.parse().map(PortKey::Guid)
        } else {
            s.parse()
                .map(PortKey::Netdev)
                .map_err(|e| format!("{e}; or a port GUID (0x + 16 hex digits)"))
        }
    }
}

/// A host port's address with its prefix length (`192.168.130.10/24`): never the network or
/// broadcast address of its subnet, never loopback, multicast or unspecified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostAddr(Ipv4Net);

impl HostAddr {
    /// The address.
    pub fn addr(&self) -> Ipv4Addr {
        self.0.addr()
    }
    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.0.prefix_len()
    }
    /// The network address.
    pub fn network(&self) -> Ipv4Addr {
        self.0.network()
    }
    /// The netmask.
    pub fn netmask(&self) -> Ipv4Addr {
        self.0.netmask()
    }
    /// Whether `ip` lies in this address's subnet.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        self.0.contains(&ip)
    }
    /// Whether two subnets overlap.
    pub fn overlaps(&self, other: &HostAddr) -> bool {
        self.0.contains(&other.0.network()) || other.0.contains(&self.0.network())
    }
}

impl FromStr for HostAddr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        no_control(s)?;
        let parsed = s.split_once('/').and_then(|(a, p)| {
            let addr: Ipv4Addr = a.parse().ok()?;
            if p.is_empty() || !p.chars().all(|c| c.is_ascii_digit()) {
                return None;
            }
            let prefix: u8 = p.parse().ok().filter(|p| (1..=32).contains(p))?;
            Ipv4Net::new(addr, prefix).ok()
        });
        let Some(net) = parsed else {
            return Err(format!(
                "{s:?} is not an IPv4 address with prefix length: write it like 192.168.130.10/24"
            ));
        };
        let addr = net.addr();
        if net.prefix_len() <= 30 {
            if addr == net.network() {
                return Err(format!(
                    "{s:?} is the network address of its subnet: give the host's own address"
                ));
            }
            if addr == net.broadcast() {
                return Err(format!(
                    "{s:?} is the broadcast address of its subnet: give the host's own address"
                ));
            }
        }
        if addr.is_loopback() || addr.is_multicast() || addr.is_unspecified() {
            return Err(format!("{s:?} cannot be an interface address"));
        }
        Ok(HostAddr(net))
    }
}

impl fmt::Display for HostAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.0.addr(), self.0.prefix_len())
    }
}

/// A target port's address: IPv4, optionally with `:port` (3260 when absent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalAddr {
    ip: Ipv4Addr,
    port: u16,
    /// As written, so commands and records show the operator's own spelling.
    text: String,
}

impl PortalAddr {
    /// The IPv4 address.
    pub fn ip(&self) -> Ipv4Addr {
        self.ip
    }
    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }
    /// As written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl FromStr for PortalAddr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        no_control(s)?;
        let parsed = match s.split_once(':') {
            Some((a, p)) => a.parse().ok().zip(p.parse::<u16>().ok().filter(|p| *p > 0)),
            None => s.parse().ok().map(|a| (a, 3260)),
        };
        match parsed {
            Some((ip, port))
                if !Ipv4Addr::is_unspecified(&ip) && !ip.is_loopback() && !ip.is_multicast() =>
            {
                Ok(PortalAddr {
                    ip,
                    port,
                    text: s.to_string(),
                })
            }
            _ => Err(format!(
                "{s:?} is not a target port address: write an IPv4 address like 192.168.130.101 (optionally :3260)"
            )),
        }
    }
}

/// The name of an environment variable that holds a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvName(String);

impl EnvName {
    /// The variable's name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for EnvName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let ok = !s.is_empty()
            && !s.starts_with(|c: char| c.is_ascii_digit())
            && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if ok {
            Ok(EnvName(s.to_string()))
        } else {
            Err(format!(
                "{s:?} is not an environment variable name: letters, digits and '_' (the secret itself never goes in this file)"
            ))
        }
    }
}

/// `volume.wwid`: the multipath WWID of the volume, or "auto".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wwid {
    /// The one map of the target that carries no data.
    Auto,
    /// This WWID (hex, as `multipath -ll` shows in parentheses).
    Id(String),
}

impl FromStr for Wwid {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "auto" {
            return Ok(Wwid::Auto);
        }
        if (8..=64).contains(&s.len()) && s.chars().all(|c| c.is_ascii_hexdigit()) {
            return Ok(Wwid::Id(s.to_string()));
        }
        Err(format!(
            "{s:?} is not a multipath WWID: give the hex WWID `multipath -ll` shows (like 3600a098000af40f5000000005e7bc1a9), or \"auto\""
        ))
    }
}

/// Directories a volume must never be mounted over.
const SYSTEM_DIRS: &[&str] = &[
    "/", "/bin", "/boot", "/dev", "/etc", "/lib", "/lib64", "/proc", "/root", "/run", "/sbin",
    "/sys", "/tmp", "/usr", "/var",
];

/// Trees no volume is mounted inside (`/var/lib/mysql` is a fine mount point; `/etc/iscsi` or
/// `/boot/efi` is not).
const SYSTEM_TREES: &[&str] = &[
    "/bin", "/boot", "/dev", "/etc", "/lib", "/lib64", "/proc", "/run", "/sbin", "/sys", "/usr",
];

/// Where a volume is mounted: an absolute, plain path fstab can hold, never a system
/// directory.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct MountPoint(String);

impl MountPoint {
    /// The path.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for MountPoint {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
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
        if let Some(tree) = SYSTEM_TREES.iter().find(|t| {
            s.strip_prefix(**t)
                .is_some_and(|rest| rest.starts_with('/'))
        }) {
            return Err(format!(
                "{s} is inside {tree}, which belongs to the operating system: mount the volume on a directory of its own, like /mnt/ext4"
            ));
        }
        Ok(MountPoint(s.to_string()))
    }
}

/// A size in bytes, written with a unit (`256MiB`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Size(u64);

impl Size {
    /// Bytes.
    pub fn bytes(self) -> u64 {
        self.0
    }

    /// Parse `N` + `B`/`KiB`/`MiB`/`GiB`/`TiB` without range checks (powers of 1024 only:
    /// `1G` or `100GB` are ambiguous and refused).
    pub fn parse_bytes(s: &str) -> Option<u64> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit())?;
        let (n, unit) = s.split_at(split);
        let n: u64 = n.parse().ok()?;
        let mult: u64 = match unit.trim() {
            "B" => 1,
            "KiB" => 1 << 10,
            "MiB" => 1 << 20,
            "GiB" => 1 << 30,
            "TiB" => 1 << 40,
            _ => return None,
        };
        n.checked_mul(mult)
    }
}

/// The verify size: 1 MiB to 64 GiB, whole 4 KiB blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifySize(Size);

impl VerifySize {
    /// Bytes.
    pub fn bytes(self) -> u64 {
        self.0 .0
    }
}

impl FromStr for VerifySize {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let Some(b) = Size::parse_bytes(s) else {
            return Err(format!(
                "{s:?} is not a size: write a whole number with B, KiB, MiB, GiB or TiB (powers of 1024; G or GB are not taken, being ambiguous), like 256MiB or 1GiB"
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
        Ok(VerifySize(Size(b)))
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        for (unit, shift) in [("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)] {
            if b != 0 && b % (1u64 << shift) == 0 {
                return write!(f, "{}{unit}", b >> shift);
            }
        }
        write!(f, "{b}B")
    }
}

impl fmt::Display for VerifySize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A choice among fixed words.
macro_rules! word_enum {
    ($(#[$m:meta])* $t:ident { $($(#[$vm:meta])* $v:ident = $s:literal),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
        pub enum $t { $($(#[$vm])* $v),* }
        impl $t {
            /// Every choice, in the order prompts offer them.
            pub const ALL: &'static [$t] = &[$($t::$v),*];
            /// The word as written in the answers file.
            pub fn as_str(self) -> &'static str {
                match self { $($t::$v => $s),* }
            }
        }
        impl FromStr for $t {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                $t::ALL.iter().copied().find(|c| c.as_str() == s).ok_or_else(|| {
                    format!(
                        "{s:?} is not one of {}",
                        $t::ALL.iter().map(|c| format!("\"{}\"", c.as_str())).collect::<Vec<_>>().join(", ")
                    )
                })
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

word_enum!(
    /// The fabric the host ports are on.
    Fabric {
        /// InfiniBand: IPoIB addresses, a subnet manager.
        Infiniband = "infiniband",
        /// RoCE: addresses on the Ethernet netdev, no subnet manager.
        Roce = "roce",
        /// From each port's link layer.
        Auto = "auto",
    }
);
word_enum!(
    /// IPoIB transport mode.
    IpoibMode {
        /// Datagram (the only mode of Enhanced IPoIB).
        Datagram = "datagram",
        /// Connected.
        Connected = "connected",
    }
);
word_enum!(
    /// How the target's nodes are found.
    Discovery {
        /// SendTargets discovery per port.
        SendTargets = "sendtargets",
        /// One node per portal, no discovery (the vendor's Method 2).
        Manual = "manual",
    }
);
word_enum!(
    /// The file system made on the volume.
    FsType {
        /// ext4, as in the vendor procedure.
        Ext4 = "ext4",
        /// XFS.
        Xfs = "xfs",
    }
);

/// Display for the string newtypes.
macro_rules! display_inner {
    ($($t:ty),* $(,)?) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    )*};
}
display_inner!(Text, HostName, Iqn, Netdev, Guid, EnvName, MountPoint);

impl fmt::Display for InitiatorIqn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InitiatorIqn::Auto => f.write_str("auto"),
            InitiatorIqn::Name(n) => n.fmt(f),
        }
    }
}

impl fmt::Display for TargetIqn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetIqn::Discover => f.write_str("discover"),
            TargetIqn::FromArray => f.write_str("from-array"),
            TargetIqn::Name(n) => n.fmt(f),
        }
    }
}

impl fmt::Display for PortKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortKey::Guid(g) => g.fmt(f),
            PortKey::Netdev(n) => n.fmt(f),
        }
    }
}

impl fmt::Display for PortalAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Display for Wwid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Wwid::Auto => f.write_str("auto"),
            Wwid::Id(w) => f.write_str(w),
        }
    }
}

serde_by_str!(
    Text,
    HostName,
    Iqn,
    InitiatorIqn,
    TargetIqn,
    Netdev,
    Guid,
    PortKey,
    HostAddr,
    PortalAddr,
    EnvName,
    Wwid,
    MountPoint,
    VerifySize,
    Fabric,
    IpoibMode,
    Discovery,
    FsType,
);

// ---------------------------------------------------------------------------------------
// What is known: the answers file's shape, every field optional (the file validation says
// which are required in an unattended run; a person is asked for the rest).

/// `host`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostAnswers {
    /// Initiator IQN, or auto.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initiator_iqn: Option<InitiatorIqn>,
    /// The host's name on the array.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mapping_host_name: Option<HostName>,
    /// Host OS type on the array.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_os_type: Option<Text>,
    /// Run on a distro release the wizard does not know.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_unsupported_os: Option<bool>,
}

/// `subnet_manager`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubnetManagerAnswers {
    /// Run opensm on this host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_on_host: Option<bool>,
    /// opensm priority by port GUID or netdev (0-15).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priorities: Option<BTreeMap<PortKey, u8>>,
}

/// One of `ports`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortAnswers {
    /// The IPoIB interface (IB) or the Ethernet netdev (RoCE).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netdev: Option<Netdev>,
    /// Its address and prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<HostAddr>,
    /// IPoIB mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipoib_mode: Option<IpoibMode>,
    /// MTU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// A name pinned by udev rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistent_name: Option<Netdev>,
}

/// One of `target.portals`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Portal {
    /// The target port's address.
    pub address: PortalAddr,
    /// What the operator calls it ("Controller A, port 1").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<Text>,
}

/// `target.chap`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Chap {
    /// CHAP user name.
    pub username: Text,
    /// The environment variable that holds the secret.
    pub password_env: EnvName,
}

/// `target`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetAnswers {
    /// Target IQN, or where to learn it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iqn: Option<TargetIqn>,
    /// SendTargets or manual nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovery: Option<Discovery>,
    /// The target's ports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub portals: Option<Vec<Portal>>,
    /// CHAP: absent (not asked), `null` (none) or the credentials.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub chap: Option<Option<Chap>>,
}

/// A key that is present counts even when it is `null` (`"chap": null` means "no CHAP").
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// `iscsi`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IscsiAnswers {
    /// `node.session.timeo.replacement_timeout`, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replacement_timeout: Option<u32>,
}

/// `multipath`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MultipathAnswers {
    /// Rebuild the initramfs when the multipath configuration changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rebuild_initramfs: Option<bool>,
}

/// `volume` (and each of `volumes`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolumeAnswers {
    /// The array's volume name (with `array`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<Text>,
    /// The multipath WWID, or auto.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wwid: Option<Wwid>,
    /// Make a GPT partition (else the whole map carries the file system).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<bool>,
    /// File system.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filesystem: Option<FsType>,
    /// Mount point.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount_point: Option<MountPoint>,
    /// Add an fstab line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fstab: Option<bool>,
}

impl VolumeAnswers {
    /// Nothing answered.
    pub fn is_empty(&self) -> bool {
        *self == VolumeAnswers::default()
    }
}

/// `verify`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyAnswers {
    /// How much to write and read back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<VerifySize>,
}

/// `array.tls`: how the controller's certificate is trusted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArrayTls {
    /// A CA file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<Text>,
    /// The certificate's SHA-256 fingerprint, pinned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint_sha256: Option<Text>,
}

/// `array`: the SANtricity Web Services API (CONTRACT.md), used by the array step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArrayAnswers {
    /// Controller base URLs.
    pub controllers: Vec<Text>,
    /// API user.
    pub user: Text,
    /// The environment variable that holds the password.
    pub password_env: EnvName,
    /// Certificate trust.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<ArrayTls>,
    /// Storage system id (`1` on the embedded API).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_id: Option<Text>,
    /// Host type index (28: Linux DM-MP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_type_index: Option<u32>,
    /// Host group to map into.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_group: Option<Text>,
}

/// Everything known: the answers file's values and those asked in this run, typed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Answers {
    /// Answers file version (1).
    pub version: u32,
    /// `host`.
    #[serde(default)]
    pub host: HostAnswers,
    /// `fabric`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fabric: Option<Fabric>,
    /// `subnet_manager`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet_manager: Option<SubnetManagerAnswers>,
    /// `ports`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ports: Option<Vec<PortAnswers>>,
    /// `target`.
    #[serde(default)]
    pub target: TargetAnswers,
    /// `iscsi`.
    #[serde(default)]
    pub iscsi: IscsiAnswers,
    /// `multipath`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multipath: Option<MultipathAnswers>,
    /// `volume` (one object): the same as `volumes` with one entry. Read the volumes through
    /// [`Answers::volume_list`], which takes whichever of the two the file gives. Left out
    /// of a written file when empty, so answers recorded with `volumes` replay (the two
    /// keys together are refused).
    #[serde(default, skip_serializing_if = "VolumeAnswers::is_empty")]
    pub volume: VolumeAnswers,
    /// `volumes` (CONTRACT.md): several volumes, each with its own map, file system and
    /// mount. The validator refuses a file that gives both this and `volume`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<Vec<VolumeAnswers>>,
    /// `verify`.
    #[serde(default)]
    pub verify: VerifyAnswers,
    /// `array` (`null` when absent, as the template writes it: no array side).
    #[serde(default)]
    pub array: Option<ArrayAnswers>,
}

impl Default for Answers {
    fn default() -> Self {
        Answers {
            version: 1,
            host: HostAnswers::default(),
            fabric: None,
            subnet_manager: None,
            ports: None,
            target: TargetAnswers::default(),
            iscsi: IscsiAnswers::default(),
            multipath: None,
            volume: VolumeAnswers::default(),
            volumes: None,
            verify: VerifyAnswers::default(),
            array: None,
        }
    }
}

impl Answers {
    /// The answers of port `i`, made (with the slots before it) when missing.
    pub fn port_mut(&mut self, i: usize) -> &mut PortAnswers {
        let ports = self.ports.get_or_insert_with(Vec::new);
        if ports.len() <= i {
            ports.resize_with(i + 1, PortAnswers::default);
        }
        &mut ports[i]
    }

    /// The subnet manager answers, made when missing.
    pub fn subnet_manager_mut(&mut self) -> &mut SubnetManagerAnswers {
        self.subnet_manager.get_or_insert_with(Default::default)
    }

    /// The multipath answers, made when missing.
    pub fn multipath_mut(&mut self) -> &mut MultipathAnswers {
        self.multipath.get_or_insert_with(Default::default)
    }

    /// The volumes to attach: `volumes` when given, else `volume` as a list of one.
    pub fn volume_list(&self) -> Vec<&VolumeAnswers> {
        match &self.volumes {
            Some(list) => list.iter().collect(),
            None => vec![&self.volume],
        }
    }

    /// The answers of volume `i` of [`Answers::volume_list`], made (with the entries before
    /// it) when missing; a second volume turns `volume` into the first of `volumes`.
    pub fn volume_mut(&mut self, i: usize) -> &mut VolumeAnswers {
        if self.volumes.is_none() && i == 0 {
            return &mut self.volume;
        }
        let list = self
            .volumes
            .get_or_insert_with(|| vec![std::mem::take(&mut self.volume)]);
        if list.len() <= i {
            list.resize_with(i + 1, VolumeAnswers::default);
        }
        &mut list[i]
    }

    /// The answers key of `field` of volume `i`, as the file spells it: `volume.wwid` for
    /// the one volume of `volume`, `volumes[1].wwid` in a list.
    pub fn volume_key(&self, i: usize, field: &str) -> String {
        if self.volumes.is_none() && i == 0 {
            format!("volume.{field}")
        } else {
            format!("volumes[{i}].{field}")
        }
    }

    /// How messages name volume `i`: its name, else its mount point, else its place.
    pub fn volume_label(&self, i: usize) -> String {
        let list = self.volume_list();
        match list.get(i) {
            Some(v) => match (&v.name, &v.mount_point) {
                (Some(n), _) => format!("volume {n}"),
                (None, Some(m)) if list.len() > 1 => format!("the volume for {m}"),
                _ if list.len() > 1 => format!("volume {}", i + 1),
                _ => "the volume".into(),
            },
            None => format!("volume {}", i + 1),
        }
    }

    /// The ports whose netdev and address are both known, in order.
    pub fn known_ports(&self) -> Vec<(Netdev, HostAddr)> {
        self.ports
            .iter()
            .flatten()
            .filter_map(|p| Some((p.netdev.clone()?, p.address?)))
            .collect()
    }
}

/// A target portal with the host port whose subnet holds it (resolved once, here).
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedPortal {
    /// The portal.
    pub portal: Portal,
    /// Index of the owning host port in `ports`.
    pub port: usize,
}

/// Which host port owns each portal: the one port whose subnet contains it. A portal in no
/// port's subnet, in several, or equal to a port's own address is a problem, named.
pub fn owner_of(ports: &[HostAddr], ip: Ipv4Addr) -> Result<usize, OwnerError> {
    let owners: Vec<usize> = (0..ports.len())
        .filter(|&i| ports[i].contains(ip))
        .collect();
    match owners.as_slice() {
        [] => Err(OwnerError::NoSubnet),
        [i] if ports[*i].addr() == ip => Err(OwnerError::HostOwn(*i)),
        [i] => Ok(*i),
        _ => Err(OwnerError::Several),
    }
}

/// Why a portal has no owning port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerError {
    /// In no host port's subnet.
    NoSubnet,
    /// It is host port `i`'s own address.
    HostOwn(usize),
    /// In more than one port's subnet.
    Several,
}

/// Resolve every portal's owning port; the first portal without one is named.
pub fn resolve_portals(
    ports: &[(Netdev, HostAddr)],
    portals: &[Portal],
) -> Result<Vec<ResolvedPortal>, String> {
    let addrs: Vec<HostAddr> = ports.iter().map(|(_, a)| *a).collect();
    portals
        .iter()
        .map(|p| {
            let ip = p.address.ip();
            match owner_of(&addrs, ip) {
                Ok(port) => Ok(ResolvedPortal {
                    portal: p.clone(),
                    port,
                }),
                Err(e) => Err(owner_message(ports, ip, e)),
            }
        })
        .collect()
}

/// The operator's message for a portal without an owning port.
pub fn owner_message(ports: &[(Netdev, HostAddr)], ip: Ipv4Addr, e: OwnerError) -> String {
    match e {
        OwnerError::NoSubnet => format!(
            "{ip} is in no host port's subnet ({}): each target port must share a subnet with exactly one host port",
            ports
                .iter()
                .map(|(n, a)| format!("{n} {}/{}", a.addr(), a.prefix()))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        OwnerError::HostOwn(i) => format!(
            "{ip} is the address of host port {}, not of a target port",
            ports[i].0
        ),
        OwnerError::Several => format!("{ip} lies in more than one host port's subnet"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_non_ascii_character_in_an_iqn_is_refused_not_a_panic() {
        for s in [
            "iqn.199é-08.com.x",
            "iqn.1992-0é.com.x:y",
            "iqn.é",
            "iqn.1992-08é",
        ] {
            assert!(s.parse::<Iqn>().is_err(), "{s}");
        }
    }

    #[test]
    fn interface_names_are_refused_at_the_answers_stage_when_a_config_file_could_not_hold_them() {
        for bad in ["$(id)", "ib\"x", "ib0;", "іb0"] {
            assert!(bad.parse::<Netdev>().is_err(), "{bad}");
        }
        for ok in ["ib0", "ib0.8001", "enp1s0f0", "vA", "ib_a-1"] {
            assert!(ok.parse::<Netdev>().is_ok(), "{ok}");
        }
    }

    #[test]
    fn mount_points_inside_system_trees_are_refused() {
        for bad in [
            "/etc/iscsi",
            "/boot/efi",
            "/proc/sys",
            "/usr/local/data",
            "/run/x",
        ] {
            let e = bad.parse::<MountPoint>().unwrap_err();
            assert!(e.contains("belongs to the operating system"), "{bad}: {e}");
        }
        for ok in [
            "/mnt/ext4",
            "/var/lib/mysql",
            "/srv/data",
            "/data",
            "/home/vol",
            "/etcd",
        ] {
            assert!(ok.parse::<MountPoint>().is_ok(), "{ok}");
        }
    }

    #[test]
    fn sizes_name_the_accepted_forms() {
        for bad in ["1G", "100GB", "256mb"] {
            let e = bad.parse::<VerifySize>().unwrap_err();
            assert!(e.contains("B, KiB, MiB, GiB or TiB"), "{bad}: {e}");
        }
    }

    #[test]
    fn values_print_back_as_written() {
        for s in ["192.168.130.101", "192.168.130.101:3261"] {
            assert_eq!(s.parse::<PortalAddr>().unwrap().to_string(), s);
        }
        assert_eq!(
            "192.168.130.10/24".parse::<HostAddr>().unwrap().to_string(),
            "192.168.130.10/24"
        );
        assert_eq!(
            "256MiB".parse::<VerifySize>().unwrap().to_string(),
            "256MiB"
        );
        assert_eq!("1GiB".parse::<VerifySize>().unwrap().bytes(), 1 << 30);
        assert_eq!("roce".parse::<Fabric>().unwrap(), Fabric::Roce);
        assert_eq!(
            "ethernet".parse::<Fabric>().unwrap_err(),
            "\"ethernet\" is not one of \"infiniband\", \"roce\", \"auto\""
        );
    }

    #[test]
    fn the_owning_port_is_the_one_whose_subnet_holds_the_portal() {
        let ports = [
            ("vA".parse().unwrap(), "192.168.130.10/24".parse().unwrap()),
            ("vB".parse().unwrap(), "192.168.131.10/24".parse().unwrap()),
        ];
        let portal = |a: &str| Portal {
            address: a.parse().unwrap(),
            label: None,
        };
        let r = resolve_portals(
            &ports,
            &[portal("192.168.131.102"), portal("192.168.130.101")],
        )
        .unwrap();
        assert_eq!((r[0].port, r[1].port), (1, 0));
        let e = resolve_portals(&ports, &[portal("10.0.0.1")]).unwrap_err();
        assert!(
            e.contains("is in no host port's subnet (vA 192.168.130.10/24"),
            "{e}"
        );
        let e = resolve_portals(&ports, &[portal("192.168.130.10")]).unwrap_err();
        assert!(e.contains("is the address of host port vA"), "{e}");
    }

    #[test]
    fn volume_is_a_list_of_one_and_volumes_a_list() {
        let mut a = Answers::default();
        a.volume.mount_point = Some("/mnt/a".parse().unwrap());
        assert_eq!(a.volume_list().len(), 1);
        a.volumes = Some(vec![VolumeAnswers::default(), VolumeAnswers::default()]);
        assert_eq!(a.volume_list().len(), 2);
        assert_eq!(a.volume_key(1, "wwid"), "volumes[1].wwid");
        let mut b = Answers::default();
        b.volume_mut(0).fstab = Some(true);
        assert_eq!(b.volume_key(0, "fstab"), "volume.fstab");
        assert_eq!(b.volume_label(0), "the volume");
        // A second volume makes the first the head of the list.
        b.volume_mut(1).fstab = Some(false);
        assert_eq!(b.volume_key(0, "fstab"), "volumes[0].fstab");
        assert_eq!(b.volume_list()[0].fstab, Some(true));
        assert_eq!(b.volume_list()[1].fstab, Some(false));
        assert_eq!(b.volume, VolumeAnswers::default());
        assert_eq!(b.volume_label(1), "volume 2");
        // Written back, only the list: `volume` and `volumes` together would be refused.
        let written = serde_json::to_value(&b).unwrap();
        assert!(written.get("volume").is_none(), "{written}");
        assert_eq!(written["volumes"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn the_template_converts_and_prints_back() {
        let v: serde_json::Value = serde_json::from_str(crate::answers::TEMPLATE).unwrap();
        let a: Answers = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(serde_json::to_value(&a).unwrap(), v);
    }
}
