//! InfiniBand and RoCE port facts: `ibstat` (full, `-s`, `ibstat CA`, `ibstat CA PORT`) and
//! the port files under `/sys/class/infiniband/<dev>/ports/<n>/`.
//!
//! Contract:
//! - Pure functions from text to typed values: no I/O, and no input makes them panic.
//! - Lines are matched on their trimmed `Key: value` form, never on indentation: raw output
//!   indents with tabs, published copies with 4/8/12/16 spaces, and `ibstat CA PORT` not at all.
//! - Unknown keys and diagnostics (`ibpanic: ...`, `ibwarn: ...`, `libibverbs: Warning ...`) are
//!   skipped.
//! - A port block that lacks a line every `ibstat` version prints is an error (the output was
//!   truncated), never a silent default. The two lines old tools omit have documented defaults:
//!   no `Link layer:` means InfiniBand (pre-RoCE infiniband-diags), no `Rate:` means `None`.
//! - Empty values (`CA type: ` on Omni-Path hfi1 and soft-RoCE rxe) become `None`.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why an `ibstat` output or sysfs port files could not be turned into ports.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// A CA or port field appeared before any `CA '<name>'` header.
    #[error("line {line}: `{field}` before any CA header")]
    OutsideCa {
        /// 1-based line number.
        line: usize,
        /// The field name as printed.
        field: String,
    },
    /// A port field appeared inside a CA block but before any `Port N:` line.
    #[error("line {line}: port field `{field}` before any port line")]
    OutsidePort {
        /// 1-based line number.
        line: usize,
        /// The field name as printed.
        field: String,
    },
    /// A known field carried a value that does not parse.
    #[error("line {line}: bad {field} value {value:?}")]
    BadValue {
        /// 1-based line number (0 for sysfs files, which have no line of their own).
        line: usize,
        /// The field (or sysfs file) name.
        field: String,
        /// The value as printed.
        value: String,
    },
    /// A port block ended without a field every version of the tool prints: truncated output.
    #[error("{ca} port {port}: no `{field}` (truncated output?)")]
    MissingField {
        /// CA (device) name.
        ca: String,
        /// Port number.
        port: u8,
        /// The missing field (or sysfs file) name.
        field: String,
    },
}

// ---------------------------------------------------------------------------------------------
// GUIDs

/// A 64-bit InfiniBand GUID (node, system image or port GUID).
///
/// Parses from `0x` + 1 to 16 hex digits (ibstat, sminfo; sminfo does not zero-pad), displays
/// as `0x` + 16 lowercase hex digits (the form `opensm -g` and `ibstat -p` use), and
/// serialises as that string so that JSON readers that hold numbers as doubles cannot round it.
/// A zero GUID is what ibstat prints for a RoCE port whose GID 0 is empty: see [`Guid::is_zero`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct Guid(pub u64);

/// A string that is not a GUID in the expected notation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a GUID: {0:?}")]
pub struct GuidError(pub String);

impl Guid {
    /// True for `0x0000000000000000`, which means "no GUID" (an empty GID 0 on a RoCE port).
    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// Parse the colon-grouped form `0002:c903:00a0:6f80` of sysfs `node_guid`,
    /// `sys_image_guid` and `ibv_devinfo`: exactly four groups of 1 to 4 hex digits.
    pub fn from_colon_groups(s: &str) -> Option<Guid> {
        let groups: Vec<&str> = s.trim().split(':').collect();
        if groups.len() != 4 {
            return None;
        }
        groups
            .iter()
            .try_fold(0u64, |acc, g| Some((acc << 16) | u64::from(hex_u16(g)?)))
            .map(Guid)
    }

    /// The interface ID (last 64 bits) of a GID printed as eight colon groups
    /// (`fe80:0000:0000:0000:0002:c903:00a4:e721`, sysfs `gids/N`, ibstatus, `ibv_devinfo -v`).
    /// For an InfiniBand port, GID 0's interface ID is the port GUID.
    pub fn from_gid(s: &str) -> Option<Guid> {
        let groups: Vec<&str> = s.trim().split(':').collect();
        if groups.len() != 8 || groups.iter().any(|g| hex_u16(g).is_none()) {
            return None;
        }
        Guid::from_colon_groups(&groups[4..].join(":"))
    }

    /// The modified EUI-64 of an Ethernet MAC (`2e:9b:86:72:9e:0b` -> `0x2c9b86fffe729e0b`):
    /// the interface ID a RoCE device puts in its link-local GID 0, and so the port GUID
    /// ibstat shows for it. Lets the caller match a RoCE netdev to its RDMA device.
    pub fn eui64_from_mac(mac: &str) -> Option<Guid> {
        let b = hex_bytes(mac)?;
        if b.len() != 6 {
            return None;
        }
        let bytes = [b[0] ^ 0x02, b[1], b[2], 0xff, 0xfe, b[3], b[4], b[5]];
        Some(Guid(u64::from_be_bytes(bytes)))
    }
}

impl FromStr for Guid {
    type Err = GuidError;

    /// `0x` (or `0X`) followed by 1 to 16 hex digits, surrounding whitespace allowed.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let digits = t
            .strip_prefix("0x")
            .or_else(|| t.strip_prefix("0X"))
            .ok_or_else(|| GuidError(s.to_string()))?;
        hex_u64(digits)
            .map(Guid)
            .ok_or_else(|| GuidError(s.to_string()))
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:016x}", self.0)
    }
}

impl From<Guid> for String {
    fn from(g: Guid) -> String {
        g.to_string()
    }
}

impl TryFrom<String> for Guid {
    type Error = GuidError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

/// The port GUID inside a 20-byte IPoIB hardware address (`ip link` `link/infiniband`,
/// NetworkManager `mac-address`): the LAST 8 bytes. Bytes 0-3 are flags and the QP number,
/// which change whenever the interface is recreated, so nothing may be keyed on them; bytes
/// 4-11 are the GID subnet prefix. Accepts `:` or `-` separators; `None` unless there are
/// exactly 20 bytes (net-tools `ifconfig` prints only the first 16, which lack the GUID).
pub fn ipoib_guid_from_hwaddr(hw: &str) -> Option<Guid> {
    let b = hex_bytes(hw)?;
    if b.len() != 20 {
        return None;
    }
    let mut guid = [0u8; 8];
    guid.copy_from_slice(&b[12..20]);
    Some(Guid(u64::from_be_bytes(guid)))
}

/// Bytes of a `:`- or `-`-separated hex address; `None` if any group is not 1-2 hex digits.
fn hex_bytes(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    s.split([':', '-'])
        .map(|g| {
            if g.is_empty() || g.len() > 2 || !g.bytes().all(|b| b.is_ascii_hexdigit()) {
                None
            } else {
                u8::from_str_radix(g, 16).ok()
            }
        })
        .collect()
}

/// 1 to 16 hex digits and nothing else (from_str_radix alone would take a leading '+').
fn hex_u64(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 16 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(s, 16).ok()
}

fn hex_u16(g: &str) -> Option<u16> {
    if g.is_empty() || g.len() > 4 || !g.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u16::from_str_radix(g, 16).ok()
}

// ---------------------------------------------------------------------------------------------
// Port states, link layer

/// Logical port state (`State:` in ibstat; `4: ACTIVE` in sysfs; `PORT_ACTIVE (4)` in
/// ibv_devinfo; `ACTIVE` in `rdma link`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PortState {
    /// Up and configured by the subnet manager (or, on RoCE, the netdev is up).
    Active,
    /// No link.
    Down,
    /// Physical link up, waiting for a subnet manager (or SELinux denies it `manage_subnet`).
    Initializing,
    /// Configured by the SM, not yet activated.
    Armed,
    /// Anything else, as printed.
    Other(String),
}

impl PortState {
    /// Parse any of the spellings above; unknown values become [`PortState::Other`].
    pub fn parse(s: &str) -> PortState {
        match normalise_enum(s).as_str() {
            "ACTIVE" => PortState::Active,
            "DOWN" => PortState::Down,
            "INIT" | "INITIALIZE" | "INITIALIZING" => PortState::Initializing,
            "ARMED" => PortState::Armed,
            _ => PortState::Other(s.trim().to_string()),
        }
    }
}

/// Physical port state (`Physical state:` in ibstat; `5: LinkUp` in sysfs; `LINK_UP (5)` in
/// `ibv_devinfo -v`; `LINK_UP` in `rdma link`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PhysicalState {
    /// Link trained.
    LinkUp,
    /// Looking for a peer: no cable, or nothing at the other end.
    Polling,
    /// Administratively disabled (or an Ethernet port whose netdev is down).
    Disabled,
    /// Anything else (`Sleep`, `LinkErrorRecovery`, ...), as printed.
    Other(String),
}

impl PhysicalState {
    /// Parse any of the spellings above; unknown values become [`PhysicalState::Other`].
    pub fn parse(s: &str) -> PhysicalState {
        match normalise_enum(s).replace('_', "").as_str() {
            "LINKUP" => PhysicalState::LinkUp,
            "POLLING" => PhysicalState::Polling,
            "DISABLED" => PhysicalState::Disabled,
            _ => PhysicalState::Other(s.trim().to_string()),
        }
    }
}

/// Strip the numeric decorations tools add around a state name (`4: ACTIVE`,
/// `PORT_ACTIVE (4)`), drop a `PORT_` prefix, remove spaces and upper-case the rest.
fn normalise_enum(s: &str) -> String {
    let mut t = s.trim();
    if let Some((num, rest)) = t.split_once(':') {
        if !num.is_empty() && num.trim().bytes().all(|b| b.is_ascii_digit()) {
            t = rest.trim();
        }
    }
    if let Some(open) = t.rfind('(') {
        if t.ends_with(')') {
            t = t[..open].trim();
        }
    }
    let up = t.to_ascii_uppercase().replace(' ', "");
    up.strip_prefix("PORT_").map(str::to_string).unwrap_or(up)
}

/// What the port's RDMA traffic runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LinkLayer {
    /// InfiniBand (also Omni-Path): needs a subnet manager, carries IPoIB.
    Infiniband,
    /// Ethernet (RoCE, iWARP): no subnet manager, the IP lives on the Ethernet netdev.
    Ethernet,
}

impl LinkLayer {
    /// `InfiniBand` / `Ethernet` in any case, surrounding whitespace (and the extra blank line
    /// some sysfs copies carry) ignored; `IB` too, which libibumad prints when sysfs has no
    /// `link_layer` file (older kernels; the ibsim simulator always). `None` for anything else.
    pub fn parse(s: &str) -> Option<LinkLayer> {
        match s.trim().to_ascii_lowercase().as_str() {
            "infiniband" | "ib" => Some(LinkLayer::Infiniband),
            "ethernet" => Some(LinkLayer::Ethernet),
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Rates

/// One InfiniBand lane speed: the name, the per-lane figure the kernel prints (ibstat's
/// `Rate:` is this times the width) and the per-lane data rate after line encoding.
struct Speed {
    name: &'static str,
    lane_gbps: f64,
    lane_data_gbps: f64,
}

impl Speed {
    const fn new(name: &'static str, lane_gbps: f64, lane_data_gbps: f64) -> Speed {
        Speed {
            name,
            lane_gbps,
            lane_data_gbps,
        }
    }
}

/// Per-lane figures. Data rates per 4X link (DOMAIN.md): SDR 8, DDR 16, QDR 32 (8b/10b),
/// FDR10 40, FDR 54.5, EDR 100, HDR 200, NDR 400. XDR is the kernel's next speed (200/lane).
const SPEEDS: [Speed; 9] = [
    Speed::new("SDR", 2.5, 2.0),
    Speed::new("DDR", 5.0, 4.0),
    Speed::new("QDR", 10.0, 8.0),
    Speed::new("FDR10", 10.0, 10.0),
    Speed::new("FDR", 14.0, 13.625),
    Speed::new("EDR", 25.0, 25.0),
    Speed::new("HDR", 50.0, 50.0),
    Speed::new("NDR", 100.0, 100.0),
    Speed::new("XDR", 200.0, 200.0),
];

/// Link widths InfiniBand defines.
const WIDTHS: [u8; 5] = [1, 2, 4, 8, 12];

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6
}

fn speed_named(name: &str) -> Option<&'static Speed> {
    SPEEDS.iter().find(|s| s.name.eq_ignore_ascii_case(name))
}

/// How a [`Rate`]'s speed name and data rate were arrived at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RateBasis {
    /// The tool printed the speed name (sysfs and ibstatus `(4X EDR)`, ibstat `40 (FDR10)`).
    Printed,
    /// The name was not printed but the width was (sysfs `10 Gb/sec (4X)`, iWARP):
    /// the name follows from the per-lane figure.
    InferredFromWidth,
    /// ibstat printed only the total (`Rate: 56`), which is speed x width: the name assumes
    /// a 4X link, the usual HCA port. A 2X HDR ("HDR100") port prints 100 and is named EDR;
    /// a 2X NDR port prints 200 and is named HDR. The data rate is right either way.
    Assumed4x,
    /// The total fits speeds with different data rates: bare `Rate: 40` is 4X QDR (32 Gb/s
    /// of data) or 4X FDR10 (40). No name, no data rate; read the sysfs `rate` file.
    Ambiguous,
    /// Ethernet link layer (RoCE, iWARP): the figure is the Ethernet line rate, which is also
    /// the data rate; any InfiniBand name printed beside it is the driver's translation (rxe
    /// always reports `1X FDR10`) and means nothing on the wire.
    Ethernet,
    /// No known InfiniBand speed fits; no data rate.
    Unrecognised,
}

/// A port's link rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rate {
    /// The total as printed, in Gb/s (`Rate: 56` -> 56; `25 Gb/sec (1X EDR)` -> 25). This is
    /// the nominal per-lane figure times the width, not the data rate.
    pub signalling_gbps: f64,
    /// The speed name (`FDR10`, `EDR`), printed or inferred: see [`Rate::basis`].
    pub label: Option<String>,
    /// Lanes: printed by sysfs/ibstatus, derived from a printed name, or 4 when assumed.
    pub width: Option<u8>,
    /// Data rate in Gb/s after line encoding, when it can be known.
    pub data_gbps: Option<f64>,
    /// How `label`, `width` and `data_gbps` were arrived at.
    pub basis: RateBasis,
}

impl Rate {
    /// Parse ibstat's `Rate:` value: an integer (or decimal) total in Gb/s, optionally
    /// followed by a parenthesised speed name (`40 (FDR10)`). `None` if it is not a number.
    pub fn from_ibstat(value: &str) -> Option<Rate> {
        let (num, label) = match value.split_once('(') {
            Some((n, rest)) => {
                let name = rest.trim().strip_suffix(')')?.trim();
                (n.trim(), (!name.is_empty()).then(|| name.to_string()))
            }
            None => (value.trim(), None),
        };
        let total = parse_gbps(num)?;
        Some(match label {
            Some(name) => Rate::named(total, name, None),
            None => Rate::assume_4x(total),
        })
    }

    /// Parse the sysfs `rate` file (also ibstatus' `rate:`): `100 Gb/sec (4X EDR)`,
    /// `25 Gb/sec (1X EDR)`, `10 Gb/sec (4X)` (no speed name: iWARP). `None` if malformed.
    pub fn from_sysfs(value: &str) -> Option<Rate> {
        let v = value.trim();
        let (num, rest) = v.split_once("Gb/sec")?;
        let total = parse_gbps(num)?;
        let inner = rest.trim().strip_prefix('(')?.strip_suffix(')')?;
        let mut parts = inner.split_whitespace();
        let width_tok = parts.next()?;
        let width: u8 = width_tok
            .strip_suffix(['X', 'x'])?
            .parse()
            .ok()
            .filter(|w| WIDTHS.contains(w))?;
        let name = parts.next();
        if parts.next().is_some() {
            return None;
        }
        Some(match name {
            Some(n) => Rate::named(total, n.to_string(), Some(width)),
            None => Rate::from_width(total, width),
        })
    }

    /// This rate as it applies on a port of `link_layer`: on Ethernet the figure is the line
    /// rate and becomes the data rate ([`RateBasis::Ethernet`]); on InfiniBand nothing changes.
    pub fn on_link_layer(mut self, link_layer: LinkLayer) -> Rate {
        if link_layer == LinkLayer::Ethernet {
            self.data_gbps = Some(self.signalling_gbps);
            self.basis = RateBasis::Ethernet;
        }
        self
    }

    /// One line for the operator and the worksheet, saying what is known and what is assumed.
    pub fn describe(&self) -> String {
        let total = self.signalling_gbps;
        let name = match (self.width, &self.label) {
            (Some(w), Some(l)) => format!("{w}X {l}"),
            (None, Some(l)) => l.clone(),
            (Some(w), None) => format!("{w}X"),
            (None, None) => String::new(),
        };
        let data = self.data_gbps.map(|d| format!("{d} Gb/s data"));
        match self.basis {
            RateBasis::Printed | RateBasis::InferredFromWidth => {
                format!("{total} Gb/s {name} ({})", data.unwrap_or_default())
            }
            RateBasis::Assumed4x => format!(
                "{total} Gb/s {name} ({}; ibstat prints no width, 4X assumed)",
                data.unwrap_or_default()
            ),
            RateBasis::Ambiguous => {
                let w = self.width.unwrap_or(4);
                let lanes = f64::from(w);
                let options: Vec<String> = SPEEDS
                    .iter()
                    .filter(|s| close(total, lanes * s.lane_gbps))
                    .map(|s| format!("{w}X {} ({} Gb/s data)", s.name, lanes * s.lane_data_gbps))
                    .collect();
                format!(
                    "{total} Gb/s: {}; the speed name was not printed, \
                     /sys/class/infiniband/<CA>/ports/<N>/rate names it",
                    options.join(" or ")
                )
            }
            RateBasis::Ethernet => format!("{total} Gb/s Ethernet"),
            RateBasis::Unrecognised => {
                let shown = if name.is_empty() {
                    String::new()
                } else {
                    format!(" {name}")
                };
                format!("{total} Gb/s{shown} (unrecognised speed, data rate unknown)")
            }
        }
    }

    /// Name printed: the width is printed too (sysfs) or follows from total / per-lane figure.
    fn named(total: f64, name: String, width: Option<u8>) -> Rate {
        let speed = speed_named(&name);
        let width = width.or_else(|| {
            let s = speed?;
            WIDTHS
                .iter()
                .copied()
                .find(|w| close(total, f64::from(*w) * s.lane_gbps))
        });
        let data = match (speed, width) {
            (Some(s), Some(w)) => Some(f64::from(w) * s.lane_data_gbps),
            _ => None,
        };
        Rate {
            signalling_gbps: total,
            basis: if data.is_some() {
                RateBasis::Printed
            } else {
                RateBasis::Unrecognised
            },
            label: Some(name),
            width,
            data_gbps: data,
        }
    }

    /// Width printed, name not: the name follows from the per-lane figure when one speed fits.
    fn from_width(total: f64, width: u8) -> Rate {
        let lanes = f64::from(width);
        let fits: Vec<&Speed> = SPEEDS
            .iter()
            .filter(|s| close(total, lanes * s.lane_gbps))
            .collect();
        let mut rate = Rate::inferred(total, &fits, lanes, RateBasis::InferredFromWidth);
        rate.width = Some(width);
        rate
    }

    /// Only the total: assume 4X.
    fn assume_4x(total: f64) -> Rate {
        let fits: Vec<&Speed> = SPEEDS
            .iter()
            .filter(|s| close(total, 4.0 * s.lane_gbps))
            .collect();
        Rate::inferred(total, &fits, 4.0, RateBasis::Assumed4x)
    }

    fn inferred(total: f64, fits: &[&Speed], lanes: f64, basis: RateBasis) -> Rate {
        match fits {
            [one] => Rate {
                signalling_gbps: total,
                label: Some(one.name.to_string()),
                width: Some(lanes as u8),
                data_gbps: Some(lanes * one.lane_data_gbps),
                basis,
            },
            [] => Rate {
                signalling_gbps: total,
                label: None,
                width: None,
                data_gbps: None,
                basis: RateBasis::Unrecognised,
            },
            // QDR and FDR10 share the 10 Gb/s per-lane figure but not the data rate.
            _ => Rate {
                signalling_gbps: total,
                label: None,
                width: Some(lanes as u8),
                data_gbps: None,
                basis: RateBasis::Ambiguous,
            },
        }
    }
}

fn parse_gbps(s: &str) -> Option<f64> {
    let s = s.trim();
    // Only plain decimals: f64::from_str would also take "inf" and "NaN".
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    s.parse::<f64>().ok().filter(|v| v.is_finite())
}

// ---------------------------------------------------------------------------------------------
// ibstat

/// One port of a channel adapter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Port {
    /// The CA (RDMA device) name: `mlx5_0`, `hfi1_0`, `rxe0`, `ibp134s0f0`.
    pub ca: String,
    /// Port number on the CA, from 1.
    pub number: u8,
    /// Logical state.
    pub state: PortState,
    /// Physical state.
    pub physical_state: PhysicalState,
    /// Link rate; `None` when not printed. On Ethernet ports see [`RateBasis::Ethernet`].
    pub rate: Option<Rate>,
    /// LID assigned by the subnet manager; 0 means none (no SM yet, or an Ethernet port).
    /// 32 bits because Omni-Path LIDs are wider than InfiniBand's 16.
    pub base_lid: u32,
    /// LID mask count.
    pub lmc: u8,
    /// LID of the master subnet manager; 0 means none seen.
    pub sm_lid: u32,
    /// Port capability mask (bit 1: this port runs an SM).
    pub capability_mask: u32,
    /// Port GUID (the interface ID of GID 0). Zero on RoCE ports whose GID 0 is empty.
    pub port_guid: Guid,
    /// InfiniBand or Ethernet (RoCE).
    pub link_layer: LinkLayer,
}

/// A channel adapter (RDMA device) and its ports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ca {
    /// Device name.
    pub name: String,
    /// `CA type:` (`MT4099`); `None` when absent or empty (hfi1, rxe).
    pub ca_type: Option<String>,
    /// `Number of ports:`; `None` in `ibstat CA PORT` output, which prints no CA fields.
    pub num_ports: Option<u8>,
    /// `Firmware version:`; `None` when absent or empty.
    pub firmware: Option<String>,
    /// `Hardware version:`; `None` when absent or empty.
    pub hardware: Option<String>,
    /// `Node GUID:`.
    pub node_guid: Option<Guid>,
    /// `System image GUID:`.
    pub system_image_guid: Option<Guid>,
    /// Ports in the order printed; empty for `ibstat -s`.
    pub ports: Vec<Port>,
}

impl Ca {
    fn named(name: &str) -> Ca {
        Ca {
            name: name.to_string(),
            ca_type: None,
            num_ports: None,
            firmware: None,
            hardware: None,
            node_guid: None,
            system_image_guid: None,
            ports: Vec::new(),
        }
    }
}

/// Port fields as they arrive, with the line each came from (for error messages).
#[derive(Default)]
struct PortLines {
    number: u8,
    state: Option<String>,
    physical_state: Option<String>,
    rate: Option<(usize, String)>,
    base_lid: Option<u32>,
    lmc: Option<u8>,
    sm_lid: Option<u32>,
    capability_mask: Option<u32>,
    port_guid: Option<Guid>,
    link_layer: Option<LinkLayer>,
}

impl PortLines {
    fn finish(self, ca: &str) -> Result<Port, ParseError> {
        let missing = |field: &str| ParseError::MissingField {
            ca: ca.to_string(),
            port: self.number,
            field: field.to_string(),
        };
        // Old infiniband-diags predate RoCE and print no link layer: those ports are InfiniBand.
        let link_layer = self.link_layer.unwrap_or(LinkLayer::Infiniband);
        let rate = match &self.rate {
            Some((line, v)) => Some(
                Rate::from_ibstat(v)
                    .ok_or_else(|| bad(*line, "Rate", v))?
                    .on_link_layer(link_layer),
            ),
            None => None,
        };
        Ok(Port {
            ca: ca.to_string(),
            number: self.number,
            state: PortState::parse(self.state.as_deref().ok_or_else(|| missing("State"))?),
            physical_state: PhysicalState::parse(
                self.physical_state
                    .as_deref()
                    .ok_or_else(|| missing("Physical state"))?,
            ),
            rate,
            base_lid: self.base_lid.ok_or_else(|| missing("Base lid"))?,
            lmc: self.lmc.ok_or_else(|| missing("LMC"))?,
            sm_lid: self.sm_lid.ok_or_else(|| missing("SM lid"))?,
            capability_mask: self
                .capability_mask
                .ok_or_else(|| missing("Capability mask"))?,
            port_guid: self.port_guid.ok_or_else(|| missing("Port GUID"))?,
            link_layer,
        })
    }
}

fn bad(line: usize, field: &str, value: &str) -> ParseError {
    ParseError::BadValue {
        line,
        field: field.to_string(),
        value: value.to_string(),
    }
}

/// Decimal, or hex with `0x` (ibstatus and sysfs print LIDs in hex).
fn parse_uint<T: TryFrom<u64>>(s: &str) -> Option<T> {
    let s = s.trim();
    let v = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) if !h.is_empty() && h.bytes().all(|b| b.is_ascii_hexdigit()) => {
            u64::from_str_radix(h, 16).ok()?
        }
        Some(_) => return None,
        None if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => s.parse().ok()?,
        None => return None,
    };
    T::try_from(v).ok()
}

fn non_empty(s: &str) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_string())
}

/// `CA 'mlx4_0'` (full output) or `CA: 'mlx4_0'` (`ibstat CA PORT`): the name.
fn ca_header(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("CA")?;
    let rest = rest.strip_prefix(':').unwrap_or(rest).trim_start();
    let name = rest.strip_prefix('\'')?.strip_suffix('\'')?;
    (!name.is_empty() && !name.contains('\'')).then_some(name)
}

/// `Port 2:`: the number.
fn port_header(line: &str) -> Option<Result<u8, ()>> {
    let rest = line.strip_prefix("Port ")?;
    let num = rest.strip_suffix(':')?.trim();
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(num.parse().map_err(|_| ()))
}

/// Parse `ibstat`, `ibstat -s`, `ibstat CA` and `ibstat CA PORT` output into CAs, in the
/// order printed. Text without any CA header gives an empty list.
pub fn parse_ibstat(text: &str) -> Result<Vec<Ca>, ParseError> {
    let mut cas: Vec<Ca> = Vec::new();
    let mut port: Option<PortLines> = None;

    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(name) = ca_header(line) {
            close_port(&mut cas, &mut port)?;
            cas.push(Ca::named(name));
            continue;
        }
        if let Some(num) = port_header(line) {
            let num = num.map_err(|()| bad(line_no, "Port", line))?;
            close_port(&mut cas, &mut port)?;
            if cas.is_empty() {
                return Err(ParseError::OutsideCa {
                    line: line_no,
                    field: "Port".into(),
                });
            }
            port = Some(PortLines {
                number: num,
                ..PortLines::default()
            });
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        let is_ca_field = matches!(
            key,
            "CA type"
                | "Number of ports"
                | "Firmware version"
                | "Hardware version"
                | "Node GUID"
                | "System image GUID"
        );
        let is_port_field = matches!(
            key,
            "State"
                | "Physical state"
                | "Rate"
                | "Base lid"
                | "LMC"
                | "SM lid"
                | "Capability mask"
                | "Port GUID"
                | "Link layer"
        );
        if !is_ca_field && !is_port_field {
            // ibpanic:/ibwarn: lines and fields of newer tools.
            continue;
        }
        let Some(ca) = cas.last_mut() else {
            return Err(ParseError::OutsideCa {
                line: line_no,
                field: key.to_string(),
            });
        };
        let guid = |v: &str| v.parse::<Guid>().map_err(|_| bad(line_no, key, v));
        if is_ca_field {
            match key {
                "CA type" => ca.ca_type = non_empty(value),
                "Number of ports" => {
                    ca.num_ports = Some(parse_uint(value).ok_or_else(|| bad(line_no, key, value))?)
                }
                "Firmware version" => ca.firmware = non_empty(value),
                "Hardware version" => ca.hardware = non_empty(value),
                "Node GUID" => ca.node_guid = Some(guid(value)?),
                _ => ca.system_image_guid = Some(guid(value)?),
            }
            continue;
        }
        let Some(p) = port.as_mut() else {
            return Err(ParseError::OutsidePort {
                line: line_no,
                field: key.to_string(),
            });
        };
        let num = |v: &str| parse_uint::<u32>(v).ok_or_else(|| bad(line_no, key, v));
        match key {
            "State" => p.state = Some(value.to_string()),
            "Physical state" => p.physical_state = Some(value.to_string()),
            "Rate" => p.rate = Some((line_no, value.to_string())),
            "Base lid" => p.base_lid = Some(num(value)?),
            "LMC" => p.lmc = Some(parse_uint(value).ok_or_else(|| bad(line_no, key, value))?),
            "SM lid" => p.sm_lid = Some(num(value)?),
            "Capability mask" => p.capability_mask = Some(num(value)?),
            "Port GUID" => p.port_guid = Some(guid(value)?),
            _ => {
                p.link_layer =
                    Some(LinkLayer::parse(value).ok_or_else(|| bad(line_no, key, value))?)
            }
        }
    }
    close_port(&mut cas, &mut port)?;
    Ok(cas)
}

fn close_port(cas: &mut [Ca], port: &mut Option<PortLines>) -> Result<(), ParseError> {
    if let (Some(p), Some(ca)) = (port.take(), cas.last_mut()) {
        let done = p.finish(&ca.name)?;
        ca.ports.push(done);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// sysfs

/// Build a [`Port`] from the files of `/sys/class/infiniband/<ca>/ports/<number>/`, keyed by
/// their path relative to that folder: `state` (`4: ACTIVE`) and `phys_state` (`5: LinkUp`)
/// are required; `rate` (`100 Gb/sec (4X EDR)`), `link_layer` (absent on old kernels:
/// InfiniBand), `lid` and `sm_lid` (hex), `lid_mask_count`, `cap_mask` and `gids/0` (whose
/// interface ID is the port GUID) are optional, and numeric files the caller did not read
/// count as 0, as does a missing `gids/0` (ibstat prints the same zero GUID then).
/// Values are trimmed: copies may lack the newline or carry an extra blank line.
pub fn parse_sysfs_port(
    ca: &str,
    number: u8,
    files: &BTreeMap<String, String>,
) -> Result<Port, ParseError> {
    let get = |name: &str| files.get(name).map(|v| v.trim());
    let missing = |name: &str| ParseError::MissingField {
        ca: ca.to_string(),
        port: number,
        field: name.to_string(),
    };
    let num = |name: &str| -> Result<u32, ParseError> {
        match get(name) {
            Some(v) => parse_uint(v).ok_or_else(|| bad(0, name, v)),
            None => Ok(0),
        }
    };
    let link_layer = match get("link_layer") {
        Some(v) => LinkLayer::parse(v).ok_or_else(|| bad(0, "link_layer", v))?,
        None => LinkLayer::Infiniband,
    };
    let rate = match get("rate") {
        Some(v) => Some(
            Rate::from_sysfs(v)
                .ok_or_else(|| bad(0, "rate", v))?
                .on_link_layer(link_layer),
        ),
        None => None,
    };
    let port_guid = match get("gids/0") {
        Some(v) => Guid::from_gid(v).ok_or_else(|| bad(0, "gids/0", v))?,
        None => Guid(0),
    };
    let lmc = num("lid_mask_count")?;
    Ok(Port {
        ca: ca.to_string(),
        number,
        state: PortState::parse(get("state").ok_or_else(|| missing("state"))?),
        physical_state: PhysicalState::parse(
            get("phys_state").ok_or_else(|| missing("phys_state"))?,
        ),
        rate,
        base_lid: num("lid")?,
        lmc: u8::try_from(lmc).map_err(|_| bad(0, "lid_mask_count", &lmc.to_string()))?,
        sm_lid: num("sm_lid")?,
        capability_mask: num("cap_mask")?,
        port_guid,
        link_layer,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::steps::parse::fixtures::{
        files_below, lab_fixture, mutate, real_fixture, shared_dir, Rng,
    };

    /// A real fixture's text, or `None` when the shared folder is absent. A missing file in a
    /// present folder panics: a renamed fixture must not turn its test into a no-op.
    fn real(sub: &str, name: &str) -> Option<String> {
        real_fixture(sub, name)
    }

    /// A lab capture's (command, output, exit status).
    fn lab(name: &str) -> Option<(String, String, Option<i32>)> {
        lab_fixture(name)
    }

    fn g(s: &str) -> Guid {
        s.parse().unwrap()
    }

    fn ca<'a>(cas: &'a [Ca], name: &str) -> &'a Ca {
        cas.iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no CA {name}"))
    }

    fn names(cas: &[Ca]) -> Vec<&str> {
        cas.iter().map(|c| c.name.as_str()).collect()
    }

    fn port_guids(cas: &[Ca]) -> Vec<Guid> {
        cas.iter()
            .flat_map(|c| c.ports.iter().map(|p| p.port_guid))
            .collect()
    }

    // ---- Guid -------------------------------------------------------------------------------

    #[test]
    fn guid_parses_and_displays_padded_lowercase() {
        assert_eq!(g("0x0002c90300002f79"), Guid(0x0002_c903_0000_2f79));
        assert_eq!(g("0X10E0406D5AA0A0").to_string(), "0x0010e0406d5aa0a0");
        assert_eq!(g(" 0x1 ").to_string(), "0x0000000000000001");
        for bad in [
            "",
            "0x",
            "2c9b86fffe729e0b",
            "0x+1",
            "0x-1",
            "0x12345678901234567",
            "0xg1",
            "0x 1",
        ] {
            assert!(bad.parse::<Guid>().is_err(), "{bad:?} accepted");
        }
        assert!(Guid(0).is_zero());
    }

    #[test]
    fn guid_serialises_as_hex_string() {
        let json = serde_json::to_string(&Guid(0xa088_c203_00da_6342)).unwrap();
        assert_eq!(json, "\"0xa088c20300da6342\"");
        assert_eq!(
            serde_json::from_str::<Guid>(&json).unwrap(),
            Guid(0xa088_c203_00da_6342)
        );
        assert!(serde_json::from_str::<Guid>("12").is_err());
    }

    #[test]
    fn guid_other_notations() {
        assert_eq!(
            Guid::from_colon_groups("0002:c903:00a0:6f80"),
            Some(Guid(0x0002_c903_00a0_6f80))
        );
        assert_eq!(Guid::from_colon_groups("0002:c903:00a0"), None);
        assert_eq!(Guid::from_colon_groups("0002:c903:00a0:6f80x"), None);
        assert_eq!(
            Guid::from_gid("fe80:0000:0000:0000:0002:c903:00a4:e721"),
            Some(Guid(0x0002_c903_00a4_e721))
        );
        assert_eq!(Guid::from_gid("fe80::2:c903:a4:e721"), None);
        assert_eq!(
            Guid::eui64_from_mac("2e:9b:86:72:9e:0b"),
            Some(Guid(0x2c9b_86ff_fe72_9e0b))
        );
        assert_eq!(Guid::eui64_from_mac("2e:9b:86:72:9e"), None);
    }

    #[test]
    fn ipoib_guid_is_the_last_eight_bytes_whatever_the_qpn() {
        // Same port, two QPNs (the base interface before and after a reload, from the
        // linux-rdma thread the ip-d-link-show fixtures come from).
        let a = "00:00:1f:e4:fe:80:00:00:00:00:00:00:24:8a:07:03:00:a3:19:64";
        let b = "00:00:11:79:fe:80:00:00:00:00:00:00:24:8a:07:03:00:a3:19:64";
        assert_eq!(ipoib_guid_from_hwaddr(a), Some(Guid(0x248a_0703_00a3_1964)));
        assert_eq!(ipoib_guid_from_hwaddr(a), ipoib_guid_from_hwaddr(b));
        assert_eq!(
            ipoib_guid_from_hwaddr("A0-00-02-20-FE-80-00-00-00-00-00-00-00-02-C9-03-00-EA-99-41"),
            Some(Guid(0x0002_c903_00ea_9941))
        );
        assert_eq!(ipoib_guid_from_hwaddr("2e:9b:86:72:9e:0b"), None);
        assert_eq!(
            ipoib_guid_from_hwaddr("00:00:1f:e4:fe:80:00:00:00:00:00:00:24:8a:07:03:00:a3:19:641"),
            None
        );
    }

    #[test]
    fn ifconfig_addresses_are_too_short_to_carry_the_guid() {
        // net-tools prints 16 of the 20 bytes: the port GUID cannot be read from it.
        for (file, hw) in [
            (
                "ckuelker-ib0-unspec-hwaddr-truncated.txt",
                "80-00-00-48-FE-80-00-00-00-00-00-00-00-00-00-00",
            ),
            (
                "felixfu-ib0-unspec-up-mtu2044-datagram.txt",
                "A0-00-02-20-FE-80-00-00-00-00-00-00-00-00-00-00",
            ),
        ] {
            let Some(text) = real("ifconfig", file) else {
                return;
            };
            let printed = text
                .split_whitespace()
                .skip_while(|w| *w != "HWaddr")
                .nth(1)
                .unwrap();
            assert_eq!(printed, hw, "{file}");
            assert_eq!(ipoib_guid_from_hwaddr(printed), None, "{file}");
        }
    }

    // ---- states -------------------------------------------------------------------------------

    #[test]
    fn state_spellings_of_every_tool() {
        for s in ["Active", "4: ACTIVE", "PORT_ACTIVE (4)", "ACTIVE"] {
            assert_eq!(PortState::parse(s), PortState::Active, "{s}");
        }
        for s in ["Down", "1: DOWN", "PORT_DOWN (1)"] {
            assert_eq!(PortState::parse(s), PortState::Down, "{s}");
        }
        for s in ["Initializing", "2: INIT", "PORT_INIT (2)", "INIT"] {
            assert_eq!(PortState::parse(s), PortState::Initializing, "{s}");
        }
        assert_eq!(PortState::parse("3: ARMED"), PortState::Armed);
        assert_eq!(
            PortState::parse("5: ACTIVE_DEFER"),
            PortState::Other("5: ACTIVE_DEFER".into())
        );
        for s in ["LinkUp", "5: LinkUp", "LINK_UP (5)", "LINK_UP"] {
            assert_eq!(PhysicalState::parse(s), PhysicalState::LinkUp, "{s}");
        }
        assert_eq!(PhysicalState::parse("POLLING (2)"), PhysicalState::Polling);
        assert_eq!(PhysicalState::parse("3: Disabled"), PhysicalState::Disabled);
        assert_eq!(
            PhysicalState::parse("Sleep"),
            PhysicalState::Other("Sleep".into())
        );
        assert_eq!(
            LinkLayer::parse("InfiniBand\n\n"),
            Some(LinkLayer::Infiniband)
        );
        assert_eq!(LinkLayer::parse("Ethernet"), Some(LinkLayer::Ethernet));
        assert_eq!(LinkLayer::parse("Omni"), None);
    }

    // ---- rates --------------------------------------------------------------------------------

    fn data(r: &Rate) -> Option<f64> {
        r.data_gbps
    }

    #[test]
    fn bare_ibstat_rates_assume_4x() {
        for (printed, label, d) in [
            ("10", "SDR", 8.0),
            ("20", "DDR", 16.0),
            ("56", "FDR", 54.5),
            ("100", "EDR", 100.0),
            ("200", "HDR", 200.0),
            ("400", "NDR", 400.0),
        ] {
            let r = Rate::from_ibstat(printed).unwrap();
            assert_eq!(r.label.as_deref(), Some(label), "{printed}");
            assert_eq!(data(&r), Some(d), "{printed}");
            assert_eq!(r.width, Some(4));
            assert_eq!(r.basis, RateBasis::Assumed4x);
            assert!(r.describe().contains("4X assumed"), "{}", r.describe());
        }
    }

    #[test]
    fn bare_40_is_ambiguous_and_says_so() {
        let r = Rate::from_ibstat("40").unwrap();
        assert_eq!(r.basis, RateBasis::Ambiguous);
        assert_eq!(r.label, None);
        assert_eq!(r.data_gbps, None);
        let d = r.describe();
        assert!(
            d.contains("QDR (32 Gb/s data)") && d.contains("FDR10 (40 Gb/s data)"),
            "{d}"
        );
    }

    #[test]
    fn printed_speed_names_resolve_the_width() {
        let r = Rate::from_ibstat("40 (FDR10)").unwrap();
        assert_eq!(
            (r.label.as_deref(), r.width, data(&r), r.basis),
            (Some("FDR10"), Some(4), Some(40.0), RateBasis::Printed)
        );
        // Soft-RoCE prints FDR10 on a 10 Gb/s total: one lane.
        let r = Rate::from_ibstat("10 (FDR10)").unwrap();
        assert_eq!((r.width, data(&r)), (Some(1), Some(10.0)));
        let r = Rate::from_ibstat("40 (XYZ)").unwrap();
        assert_eq!((r.basis, r.data_gbps), (RateBasis::Unrecognised, None));
        assert_eq!(
            Rate::from_ibstat("2.5").unwrap().basis,
            RateBasis::Unrecognised
        );
        for bad in ["", "fast", "inf", "NaN", "40 (FDR10", "-40"] {
            assert_eq!(Rate::from_ibstat(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn sysfs_rates() {
        let r = Rate::from_sysfs("25 Gb/sec (1X EDR)").unwrap();
        assert_eq!(
            (r.width, r.label.as_deref(), data(&r), r.basis),
            (Some(1), Some("EDR"), Some(25.0), RateBasis::Printed)
        );
        let r = Rate::from_sysfs("40 Gb/sec (4X QDR)").unwrap();
        assert_eq!(data(&r), Some(32.0));
        let r = Rate::from_sysfs("10 Gb/sec (4X)").unwrap();
        assert_eq!(
            (r.label.as_deref(), data(&r), r.basis),
            (Some("SDR"), Some(8.0), RateBasis::InferredFromWidth)
        );
        let r = Rate::from_sysfs("40 Gb/sec (4X)").unwrap();
        assert_eq!((r.basis, r.width), (RateBasis::Ambiguous, Some(4)));
        let r = Rate::from_sysfs("10 Gb/sec (1X)").unwrap();
        assert_eq!((r.basis, r.data_gbps), (RateBasis::Ambiguous, None));
        let d = r.describe();
        assert!(
            d.contains("1X QDR (8 Gb/s data) or 1X FDR10 (10 Gb/s data)"),
            "{d}"
        );
        let r = Rate::from_sysfs("200 Gb/sec (2X NDR)")
            .unwrap()
            .on_link_layer(LinkLayer::Ethernet);
        assert_eq!((data(&r), r.basis), (Some(200.0), RateBasis::Ethernet));
        assert_eq!(r.describe(), "200 Gb/s Ethernet");
        for bad in [
            "",
            "100",
            "100 Gb/sec",
            "100 Gb/sec (3X EDR)",
            "100 Gb/sec (4X EDR extra)",
            "x Gb/sec (4X)",
        ] {
            assert_eq!(Rate::from_sysfs(bad), None, "{bad:?}");
        }
    }

    // ---- ibstat: edge cases written here -------------------------------------------------------

    #[test]
    fn ibstat_needs_every_always_printed_field() {
        let text = "CA 'mlx4_0'\n\tPort 1:\n\t\tState: Active\n\t\tPhysical state: LinkUp\n";
        assert_eq!(
            parse_ibstat(text),
            Err(ParseError::MissingField {
                ca: "mlx4_0".into(),
                port: 1,
                field: "Base lid".into()
            })
        );
        assert_eq!(
            parse_ibstat("State: Active\n"),
            Err(ParseError::OutsideCa {
                line: 1,
                field: "State".into()
            })
        );
        assert_eq!(
            parse_ibstat("CA 'x'\nState: Active\n"),
            Err(ParseError::OutsidePort {
                line: 2,
                field: "State".into()
            })
        );
        assert!(matches!(
            parse_ibstat("CA 'x'\n\tNode GUID: 0xzz\n"),
            Err(ParseError::BadValue { line: 2, .. })
        ));
        assert_eq!(parse_ibstat("").unwrap(), vec![]);
        assert_eq!(
            parse_ibstat("ibpanic: [1] main: stat of IB device 'mlx5_0' failed\n").unwrap(),
            vec![]
        );
    }

    // ---- ibstat: real fixtures ---------------------------------------------------------------

    #[test]
    fn ibstat_archwiki_ddr_dual_port_space_indented() {
        let Some(t) = real(
            "ibstat",
            "archwiki-connectx-mt25418-dual-port-active-and-polling.txt",
        ) else {
            return;
        };
        let cas = parse_ibstat(&t).unwrap();
        assert_eq!(names(&cas), ["mlx4_0"]);
        let c = &cas[0];
        assert_eq!(c.ca_type.as_deref(), Some("MT25418"));
        assert_eq!(c.num_ports, Some(2));
        assert_eq!(c.firmware.as_deref(), Some("2.9.1000"));
        assert_eq!(c.hardware.as_deref(), Some("a0"));
        assert_eq!(c.node_guid, Some(g("0x0002c90300002f78")));
        assert_eq!(c.system_image_guid, Some(g("0x0002c90300002f7b")));
        let p1 = &c.ports[0];
        assert_eq!(
            p1,
            &Port {
                ca: "mlx4_0".into(),
                number: 1,
                state: PortState::Active,
                physical_state: PhysicalState::LinkUp,
                rate: Rate::from_ibstat("20"),
                base_lid: 3,
                lmc: 0,
                sm_lid: 3,
                capability_mask: 0x0251_086a,
                port_guid: g("0x0002c90300002f79"),
                link_layer: LinkLayer::Infiniband,
            }
        );
        assert_eq!(p1.rate.as_ref().and_then(data), Some(16.0));
        let p2 = &c.ports[1];
        assert_eq!(
            (p2.number, &p2.state, &p2.physical_state),
            (2, &PortState::Down, &PhysicalState::Polling)
        );
        assert_eq!(p2.rate.as_ref().and_then(data), Some(8.0));
        assert_eq!(p2.capability_mask, 0x0251_0868);
        assert_eq!(p2.port_guid, g("0x0002c90300002f7a"));
    }

    #[test]
    fn ibstat_old_tools_without_link_layer_line_mean_infiniband() {
        let Some(t) = real(
            "ibstat",
            "ckuelker-connectx2-mt26428-old-no-link-layer-line.txt",
        ) else {
            return;
        };
        let cas = parse_ibstat(&t).unwrap();
        let p = &ca(&cas, "mlx4_0").ports[0];
        assert_eq!(p.link_layer, LinkLayer::Infiniband);
        assert_eq!(p.port_guid, g("0x002590ffff2e4f71"));
        assert_eq!((p.base_lid, p.sm_lid), (2, 1));
        assert_eq!(p.rate.as_ref().map(|r| r.basis), Some(RateBasis::Ambiguous));
        assert_eq!(p.rate.as_ref().and_then(data), None);
        assert_eq!(cas[0].firmware.as_deref(), Some("2.7.200"));
    }

    #[test]
    fn ibstat_fdr10_suffix_resolves_40() {
        let Some(t) = real(
            "ibstat",
            "felixfu-cx3-mt4099-single-port-rate-40-fdr10-suffix.txt",
        ) else {
            return;
        };
        let cas = parse_ibstat(&t).unwrap();
        let p = &ca(&cas, "mlx4_0").ports[0];
        let r = p.rate.as_ref().unwrap();
        assert_eq!(
            (r.label.as_deref(), r.data_gbps, r.basis),
            (Some("FDR10"), Some(40.0), RateBasis::Printed)
        );
        assert_eq!(p.port_guid, g("0x0002c90300ea9941"));
        assert_eq!(
            (p.base_lid, p.sm_lid, p.capability_mask),
            (7, 4, 0x0251_486a)
        );
        // This copy also ends without a `Link layer:` line.
        assert_eq!(p.link_layer, LinkLayer::Infiniband);
    }

    #[test]
    fn ibstat_ibpanic_trailer_is_ignored_and_reported() {
        let Some(t) = real("ibstat", "gpud-a100-vm-cx6vf-ibpanic-trailer-spaces.txt") else {
            return;
        };
        let cas = parse_ibstat(&t).unwrap();
        assert_eq!(
            names(&cas),
            ["mlx5_0", "mlx5_1", "mlx5_2", "mlx5_3", "mlx5_4", "mlx5_5", "mlx5_6", "mlx5_7"]
        );
        let guids: Vec<String> = port_guids(&cas).iter().map(Guid::to_string).collect();
        assert_eq!(
            guids.first().map(String::as_str),
            Some("0x00155dfffd3411eb")
        );
        assert_eq!(guids.last().map(String::as_str), Some("0x00155dfffd3411f2"));
        for c in &cas {
            let p = &c.ports[0];
            assert_eq!(
                (&p.state, p.link_layer, p.sm_lid),
                (&PortState::Active, LinkLayer::Infiniband, 1)
            );
            assert_eq!(
                p.rate.as_ref().and_then(|r| r.label.clone()).as_deref(),
                Some("HDR")
            );
        }
        assert_eq!(ca(&cas, "mlx5_0").ports[0].base_lid, 13247);
    }

    #[test]
    fn ibstat_a100_vm_infiniband_plus_one_ethernet() {
        let Some(t) = real("ibstat", "gpud-a100-vm-mt4126-ib-200-plus-eth.txt") else {
            return;
        };
        let cas = parse_ibstat(&t).unwrap();
        assert_eq!(cas.len(), 9);
        let eth = &ca(&cas, "mlx5_0").ports[0];
        assert_eq!(eth.link_layer, LinkLayer::Ethernet);
        assert_eq!(eth.port_guid, g("0x1c918efffe7a03a0"));
        assert_eq!(
            eth.rate.as_ref().map(|r| (r.basis, r.data_gbps)),
            Some((RateBasis::Ethernet, Some(200.0)))
        );
        let ib = &ca(&cas, "mlx5_1").ports[0];
        assert_eq!(
            (ib.link_layer, ib.base_lid, ib.sm_lid),
            (LinkLayer::Infiniband, 1369, 83)
        );
        assert_eq!(ca(&cas, "mlx5_1").firmware.as_deref(), Some("28.37.1014"));
        assert_eq!(ca(&cas, "mlx5_0").firmware.as_deref(), Some("22.35.2302"));
        assert_eq!(
            ca(&cas, "mlx5_8").ports[0].port_guid,
            g("0x4c1037318e9cd20a")
        );
        let ib_count = cas
            .iter()
            .filter(|c| c.ports[0].link_layer == LinkLayer::Infiniband)
            .count();
        assert_eq!(ib_count, 8);
    }

    #[test]
    fn ibstat_h100_ndr_with_roce_bond() {
        let Some(t) = real("ibstat", "gpud-h100-cx7-all-active-bond-space-indented.txt") else {
            return;
        };
        let cas = parse_ibstat(&t).unwrap();
        assert_eq!(
            names(&cas),
            [
                "mlx5_0",
                "mlx5_1",
                "mlx5_4",
                "mlx5_5",
                "mlx5_6",
                "mlx5_7",
                "mlx5_8",
                "mlx5_9",
                "mlx5_bond_0"
            ]
        );
        for c in &cas[..8] {
            let r = c.ports[0].rate.as_ref().unwrap();
            assert_eq!(
                (r.label.as_deref(), r.data_gbps),
                (Some("NDR"), Some(400.0)),
                "{}",
                c.name
            );
        }
        let bond = ca(&cas, "mlx5_bond_0");
        assert_eq!(bond.ca_type.as_deref(), Some("MT41692"));
        assert_eq!(bond.firmware.as_deref(), Some("32.38.3056"));
        assert_eq!(bond.ports[0].link_layer, LinkLayer::Ethernet);
        assert_eq!(bond.ports[0].port_guid, g("0x201d97fffe0056cf"));
        assert_eq!(bond.ports[0].rate.as_ref().and_then(data), Some(200.0));
        assert_eq!(ca(&cas, "mlx5_9").ports[0].base_lid, 2015);
    }

    #[test]
    fn ibstat_h100_ethernet_ports_down_disabled() {
        let Some(t) = real("ibstat", "gpud-h100-cx7-eth-ports-down-disabled.txt") else {
            return;
        };
        let cas = parse_ibstat(&t).unwrap();
        assert_eq!(cas.len(), 12);
        let down: Vec<&str> = cas
            .iter()
            .filter(|c| c.ports[0].state == PortState::Down)
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(down, ["mlx5_2", "mlx5_7", "mlx5_8"]);
        for name in down {
            let p = &ca(&cas, name).ports[0];
            assert_eq!(
                (&p.physical_state, p.link_layer),
                (&PhysicalState::Disabled, LinkLayer::Ethernet)
            );
            // Ethernet: a bare 40 is 40GbE, not the QDR/FDR10 question.
            assert_eq!(
                p.rate.as_ref().map(|r| (r.basis, r.data_gbps)),
                Some((RateBasis::Ethernet, Some(40.0)))
            );
        }
        assert_eq!(
            ca(&cas, "mlx5_2").ports[0].port_guid,
            g("0x966daefffec2b691")
        );
        assert_eq!(ca(&cas, "mlx5_0").ports[0].sm_lid, 334);
        assert_eq!(
            ca(&cas, "mlx5_1").ports[0].rate.as_ref().and_then(data),
            Some(100.0)
        );
    }

    #[test]
    fn ibstat_all_roce_with_zero_port_guids() {
        let Some(t) = real("ibstat", "gpud-h100-roce-cx7-cx6dx-down-polling.txt") else {
            return;
        };
        let cas = parse_ibstat(&t).unwrap();
        assert_eq!(cas.len(), 12);
        assert!(cas
            .iter()
            .all(|c| c.ports[0].link_layer == LinkLayer::Ethernet));
        let zero: Vec<&str> = cas
            .iter()
            .filter(|c| c.ports[0].port_guid.is_zero())
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(
            zero,
            ["mlx5_1", "mlx5_11", "mlx5_2", "mlx5_5", "mlx5_7", "mlx5_8"]
        );
        let p = &ca(&cas, "mlx5_11").ports[0];
        assert_eq!(
            (&p.state, &p.physical_state),
            (&PortState::Down, &PhysicalState::Polling)
        );
        assert_eq!(
            ca(&cas, "mlx5_5").ports[0].physical_state,
            PhysicalState::Disabled
        );
        assert_eq!(
            ca(&cas, "mlx5_0").ports[0].port_guid,
            g("0xa288c2fffeadeab8")
        );
    }

    #[test]
    fn ibstat_two_fdr_hcas_on_two_fabrics() {
        let Some(t) = real(
            "ibstat",
            "heioy-two-cx3-dual-port-fdr56-all-active-tabs.txt",
        ) else {
            return;
        };
        let cas = parse_ibstat(&t).unwrap();
        assert_eq!(names(&cas), ["mlx4_0", "mlx4_1"]);
        let sm: Vec<(u32, u32)> = cas
            .iter()
            .flat_map(|c| c.ports.iter().map(|p| (p.base_lid, p.sm_lid)))
            .collect();
        assert_eq!(sm, [(10, 9), (12, 9), (1, 7), (4, 7)]);
        for p in cas.iter().flat_map(|c| &c.ports) {
            assert_eq!(
                p.rate.as_ref().map(|r| (r.label.as_deref(), r.data_gbps)),
                Some((Some("FDR"), Some(54.5)))
            );
        }
        if let Some(one) = real("ibstat-ca-port", "heioy-ibstat-mlx4_0-port2-unindented.txt") {
            let single = parse_ibstat(&one).unwrap();
            assert_eq!(single[0].ports[0], cas[0].ports[1]);
        }
        if let Some(s) = real("ibstat-s", "heioy-two-cx3-short.txt") {
            let short = parse_ibstat(&s).unwrap();
            let without_ports: Vec<Ca> = cas
                .iter()
                .map(|c| Ca {
                    ports: vec![],
                    ..c.clone()
                })
                .collect();
            assert_eq!(short, without_ports);
        }
    }

    #[test]
    fn ibstat_kaust_hdr100_reads_as_100_data() {
        let Some(t) = real("ibstat", "kaust-ibex-cx6-mt4123-hdr100-active-lid762.txt") else {
            return;
        };
        let cas = parse_ibstat(&t).unwrap();
        let c = ca(&cas, "mlx5_0");
        assert_eq!(c.ca_type.as_deref(), Some("MT4123"));
        let p = &c.ports[0];
        assert_eq!(
            (p.base_lid, p.sm_lid, p.capability_mask),
            (762, 8, 0xa651_e848)
        );
        assert_eq!(Some(p.port_guid), c.node_guid);
        // HDR100 is 2X HDR; ibstat prints 100 and the 4X assumption names it EDR. Same data rate.
        assert_eq!(
            p.rate.as_ref().map(|r| (r.basis, r.data_gbps)),
            Some((RateBasis::Assumed4x, Some(100.0)))
        );
    }

    #[test]
    fn ibstat_vpi_card_with_one_ib_and_one_ethernet_port() {
        let Some(t) = real(
            "ibstat",
            "linux-rdma-list-mlx4-cx3-vpi-ib-polling-eth-disabled.txt",
        ) else {
            return;
        };
        let cas = parse_ibstat(&t).unwrap();
        let c = ca(&cas, "mlx4_0");
        let [p1, p2] = c.ports.as_slice() else {
            panic!("{:?}", c.ports)
        };
        assert_eq!(
            (p1.link_layer, &p1.physical_state),
            (LinkLayer::Infiniband, &PhysicalState::Polling)
        );
        assert_eq!(p1.port_guid, g("0xe41d2d03007b4081"));
        assert_eq!(
            (p2.link_layer, &p2.physical_state),
            (LinkLayer::Ethernet, &PhysicalState::Disabled)
        );
        assert_eq!(p2.port_guid, g("0xe61d2dfffe7b4082"));
        assert_eq!(p2.capability_mask, 0x0001_0000);
    }

    #[test]
    fn ibstat_omnipath_empty_fields() {
        let Some(t) = real("ibstat", "opa-ff-issue4-hfi1-omnipath-empty-ca-type-fw.txt") else {
            return;
        };
        let cas = parse_ibstat(&t).unwrap();
        let c = ca(&cas, "hfi1_0");
        assert_eq!(
            (
                c.ca_type.as_deref(),
                c.firmware.as_deref(),
                c.hardware.as_deref()
            ),
            (None, None, Some("10"))
        );
        let p = &c.ports[0];
        assert_eq!(p.port_guid, g("0x0011750101670fb0"));
        assert_eq!(
            (p.base_lid, p.sm_lid, p.capability_mask),
            (3, 3, 0x0049_0022)
        );
        assert_eq!(p.rate.as_ref().and_then(data), Some(100.0));
    }

    #[test]
    fn ibstat_disabled_port_keeps_its_lids() {
        let Some(t) = real(
            "ibstat",
            "rdma-core-pr847-mlx4-cx3-port1-disabled-port2-active-56-tabs.txt",
        ) else {
            return;
        };
        let cas = parse_ibstat(&t).unwrap();
        let c = ca(&cas, "mlx4_0");
        let p1 = &c.ports[0];
        assert_eq!(
            (&p1.state, &p1.physical_state, p1.base_lid, p1.sm_lid),
            (&PortState::Down, &PhysicalState::Disabled, 38, 13)
        );
        let p2 = &c.ports[1];
        assert_eq!(
            (&p2.state, p2.base_lid, p2.sm_lid),
            (&PortState::Active, 3, 1)
        );
        assert_eq!(p2.port_guid, g("0xf4521403007be0e2"));
        assert_eq!(p2.rate.as_ref().and_then(data), Some(54.5));
    }

    #[test]
    fn ibstat_netdev_style_ca_name() {
        let Some(t) = real(
            "ibstat",
            "scaleoutsean-cx5-mt4119-single-port-active-100-spaces.txt",
        ) else {
            return;
        };
        let cas = parse_ibstat(&t).unwrap();
        let c = ca(&cas, "ibp134s0f0");
        assert_eq!(
            (c.ca_type.as_deref(), c.firmware.as_deref()),
            (Some("MT4119"), Some("16.26.1040"))
        );
        let p = &c.ports[0];
        assert_eq!(p.port_guid, g("0x1c34da03007ca2da"));
        assert_eq!(
            (p.base_lid, p.sm_lid, p.capability_mask),
            (1, 1, 0x2651_e84a)
        );
    }

    #[test]
    fn ibstat_ca_port_unindented_with_colon_header() {
        let Some(t) = real("ibstat-ca-port", "heioy-ibstat-mlx4_0-port2-unindented.txt") else {
            return;
        };
        let cas = parse_ibstat(&t).unwrap();
        assert_eq!(names(&cas), ["mlx4_0"]);
        assert_eq!(
            (cas[0].ca_type.clone(), cas[0].num_ports, cas[0].node_guid),
            (None, None, None)
        );
        let p = &cas[0].ports[0];
        assert_eq!(
            (p.number, &p.state, p.base_lid, p.sm_lid),
            (2, &PortState::Active, 12, 9)
        );
        assert_eq!(p.port_guid, g("0xec0d9a03000c8982"));
    }

    #[test]
    fn ibstat_s_has_cas_without_ports() {
        let Some(t) = real("ibstat-s", "heioy-two-cx3-short.txt") else {
            return;
        };
        let cas = parse_ibstat(&t).unwrap();
        assert_eq!(names(&cas), ["mlx4_0", "mlx4_1"]);
        assert!(cas
            .iter()
            .all(|c| c.ports.is_empty() && c.num_ports == Some(2)));
        assert_eq!(ca(&cas, "mlx4_1").node_guid, Some(g("0xf45214030033b850")));
    }

    // ---- ibstat: lab (soft-RoCE) -------------------------------------------------------------

    const LAB_GUIDS: [&str; 4] = [
        "0x2c9b86fffe729e0b",
        "0xa0180ffffe2a3a69",
        "0x0c5861fffee71c81",
        "0xa43ed1fffee9b52e",
    ];

    #[test]
    fn lab_ibstat_soft_roce() {
        let Some((cmd, body, status)) = lab("ibstat.txt") else {
            return;
        };
        assert_eq!((cmd.as_str(), status), ("ibstat", Some(0)));
        let cas = parse_ibstat(&body).unwrap();
        assert_eq!(names(&cas), ["rxe0", "rxe1", "rxe2", "rxe3"]);
        assert_eq!(port_guids(&cas), LAB_GUIDS.map(g));
        for c in &cas {
            assert_eq!(
                (&c.ca_type, &c.firmware, &c.hardware),
                (&None, &None, &None)
            );
            assert_eq!(c.node_guid, Some(c.ports[0].port_guid));
            let p = &c.ports[0];
            assert_eq!(
                (p.link_layer, &p.state, p.base_lid),
                (LinkLayer::Ethernet, &PortState::Active, 0)
            );
            let r = p.rate.as_ref().unwrap();
            assert_eq!(
                (r.label.as_deref(), r.width, r.data_gbps, r.basis),
                (Some("FDR10"), Some(1), Some(10.0), RateBasis::Ethernet)
            );
        }
    }

    #[test]
    fn lab_rxe0_guid_is_the_eui64_of_its_netdev_mac() {
        // vA's MAC, from ip-d-link-show-vA.txt (rdma link show says rxe0's netdev is vA).
        let Some((_, full, _)) = lab("ibstat.txt") else {
            return;
        };
        let cas = parse_ibstat(&full).unwrap();
        let (_, ip, _) = lab("ip-d-link-show-vA.txt").unwrap();
        assert!(ip.contains("link/ether 2e:9b:86:72:9e:0b "));
        assert_eq!(
            Guid::eui64_from_mac("2e:9b:86:72:9e:0b"),
            Some(ca(&cas, "rxe0").ports[0].port_guid)
        );
    }

    #[test]
    fn every_ibstat_fixture_parses_with_cas_and_ports() {
        let Some(real_dir) = shared_dir("real") else {
            return;
        };
        let mut seen = 0;
        for sub in ["ibstat", "ibstat-ca-port", "ibstat-s"] {
            for (path, text) in files_below(&real_dir.join(sub)) {
                let cas = parse_ibstat(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                assert!(!cas.is_empty(), "{}: no CA", path.display());
                for c in &cas {
                    if sub == "ibstat-s" {
                        assert!(c.ports.is_empty(), "{}", path.display());
                    } else {
                        assert!(
                            !c.ports.is_empty(),
                            "{}: {} has no port",
                            path.display(),
                            c.name
                        );
                        if let Some(n) = c.num_ports {
                            assert_eq!(
                                usize::from(n),
                                c.ports.len(),
                                "{}: {}",
                                path.display(),
                                c.name
                            );
                        }
                    }
                    assert!(c.ports.iter().all(|p| p.ca == c.name && p.rate.is_some()));
                }
                seen += 1;
            }
        }
        assert!(seen >= 16, "only {seen} ibstat fixtures found");
        for name in ["ibstat.txt", "ibstat-rxe0-1.txt"] {
            let (_, body, status) = lab(name).unwrap();
            assert_eq!(status, Some(0));
            let cas = parse_ibstat(&body).unwrap();
            assert!(
                !cas.is_empty() && cas.iter().all(|c| !c.ports.is_empty()),
                "{name}"
            );
        }
    }

    // ---- sysfs ----------------------------------------------------------------------------------

    fn files(pairs: &[(&str, String)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn sysfs_cx7_ndr_port() {
        let Some(dir) = shared_dir("real") else {
            return;
        };
        let read = |f: &str| {
            std::fs::read_to_string(dir.join("sysfs-class-infiniband").join(f))
                .unwrap_or_else(|e| panic!("{f}: {e}"))
        };
        let f = files(&[
            ("state", read("gpud-h100-cx7-mlx5_0-port1-state.txt")),
            (
                "phys_state",
                read("gpud-h100-cx7-mlx5_0-port1-phys_state.txt"),
            ),
            ("rate", read("gpud-h100-cx7-mlx5_0-port1-rate.txt")),
            (
                "link_layer",
                read("gpud-h100-cx7-mlx5_0-port1-link_layer.txt"),
            ),
        ]);
        let p = &parse_sysfs_port("mlx5_0", 1, &f).unwrap();
        assert_eq!((p.ca.as_str(), p.number), ("mlx5_0", 1));
        assert_eq!(
            (&p.state, &p.physical_state, p.link_layer),
            (
                &PortState::Active,
                &PhysicalState::LinkUp,
                LinkLayer::Infiniband
            )
        );
        let r = p.rate.as_ref().unwrap();
        assert_eq!(
            (r.width, r.label.as_deref(), r.data_gbps, r.basis),
            (Some(4), Some("NDR"), Some(400.0), RateBasis::Printed)
        );
        // No gids/0 given: the zero GUID, as ibstat prints when it cannot read one.
        assert!(p.port_guid.is_zero());
    }

    #[test]
    fn sysfs_bluefield_bond_is_ethernet_2x_ndr() {
        let Some(dir) = shared_dir("real") else {
            return;
        };
        let read =
            |f: &str| std::fs::read_to_string(dir.join("sysfs-class-infiniband").join(f)).unwrap();
        let f = files(&[
            ("state", "4: ACTIVE".into()),
            ("phys_state", "5: LinkUp".into()),
            ("rate", read("gpud-h100-bf3-mlx5_bond_0-port1-rate.txt")),
            (
                "link_layer",
                read("gpud-h100-bf3-mlx5_bond_0-port1-link_layer.txt"),
            ),
        ]);
        let p = parse_sysfs_port("mlx5_bond_0", 1, &f).unwrap();
        assert_eq!(p.link_layer, LinkLayer::Ethernet);
        let r = p.rate.unwrap();
        assert_eq!(
            (r.width, r.label.as_deref(), r.data_gbps, r.basis),
            (Some(2), Some("NDR"), Some(200.0), RateBasis::Ethernet)
        );
        assert_eq!(
            read("gpud-h100-bf3-mlx5_bond_0-hca_type.txt").trim(),
            "MT41692"
        );
        assert_eq!(
            read("gpud-h100-bf3-mlx5_bond_0-fw_ver.txt").trim(),
            "32.38.3056"
        );
    }

    #[test]
    fn sysfs_single_files() {
        let Some(dir) = shared_dir("real") else {
            return;
        };
        let read =
            |f: &str| std::fs::read_to_string(dir.join("sysfs-class-infiniband").join(f)).unwrap();
        let rate = |f: &str| Rate::from_sysfs(&read(f)).unwrap_or_else(|| panic!("{f}"));
        let r = rate("node_exporter-i40iw0-iwarp-port1-rate-no-speedname.txt");
        assert_eq!(
            (r.width, r.label.as_deref(), r.basis),
            (Some(4), Some("SDR"), RateBasis::InferredFromWidth)
        );
        // iWARP runs on Ethernet: on the port, the 10 is 10GbE.
        assert_eq!(r.on_link_layer(LinkLayer::Ethernet).data_gbps, Some(10.0));
        let r = rate("procfs-hfi1_0-opa-port1-rate.txt");
        assert_eq!(
            (r.label.as_deref(), r.data_gbps),
            (Some("EDR"), Some(100.0))
        );
        let r = rate("procfs-mlx4_0-cx3-port2-rate-qdr.txt");
        assert_eq!((r.label.as_deref(), r.data_gbps), (Some("QDR"), Some(32.0)));
        let r = rate("procfs-mlx5_0-cx4-port1-rate-1x-edr.txt");
        assert_eq!((r.width, r.data_gbps), (Some(1), Some(25.0)));
        assert_eq!(
            LinkLayer::parse(&read(
                "procfs-mlx4_0-cx3-port2-link_layer-extra-blank-line.txt"
            )),
            Some(LinkLayer::Infiniband)
        );
        assert_eq!(
            Guid::from_colon_groups(&read("procfs-mlx5_0-node_guid-no-newline.txt")),
            Some(g("0x0a7fbc1245efd23b"))
        );
    }

    #[test]
    fn every_sysfs_fixture_parses() {
        let Some(dir) = shared_dir("real") else {
            return;
        };
        let all = files_below(&dir.join("sysfs-class-infiniband"));
        assert!(all.len() >= 19, "only {} sysfs fixtures", all.len());
        for (path, text) in all {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let stem = name.trim_end_matches(".txt");
            let ok = if stem.ends_with("-rate")
                || stem.ends_with("-rate-qdr")
                || stem.contains("-rate-")
            {
                Rate::from_sysfs(&text).is_some()
            } else if stem.contains("link_layer") {
                LinkLayer::parse(&text).is_some()
            } else if stem.ends_with("phys_state") {
                !matches!(PhysicalState::parse(&text), PhysicalState::Other(_))
            } else if stem.ends_with("-state") {
                !matches!(PortState::parse(&text), PortState::Other(_))
            } else if stem.contains("node_guid") {
                Guid::from_colon_groups(&text).is_some()
            } else {
                // fw_ver, hca_type, board_id: free text the Ca keeps as printed.
                !text.trim().is_empty()
            };
            assert!(ok, "{name}: {text:?}");
        }
    }

    #[test]
    fn sysfs_errors() {
        let f = files(&[("phys_state", "5: LinkUp".into())]);
        assert_eq!(
            parse_sysfs_port("mlx5_0", 1, &f),
            Err(ParseError::MissingField {
                ca: "mlx5_0".into(),
                port: 1,
                field: "state".into()
            })
        );
        let f = files(&[
            ("state", "4: ACTIVE".into()),
            ("phys_state", "5: LinkUp".into()),
            ("lid", "0xnope".into()),
        ]);
        assert!(matches!(
            parse_sysfs_port("x", 1, &f),
            Err(ParseError::BadValue { .. })
        ));
    }

    /// `path: value` lines of the lab's sysfs dump, keyed relative to the port folder.
    fn lab_sysfs_port_files(body: &str, port_dir: &str) -> BTreeMap<String, String> {
        body.lines()
            .filter_map(|l| {
                let (path, value) = l.split_once(": ")?;
                Some((path.strip_prefix(port_dir)?.to_string(), value.to_string()))
            })
            .collect()
    }

    #[test]
    fn lab_sysfs_rxe0_matches_ibstat() {
        let Some((_, body, status)) = lab("sysfs-rxe0.txt") else {
            return;
        };
        assert_eq!(status, Some(0));
        let f = lab_sysfs_port_files(&body, "/sys/class/infiniband/rxe0/ports/1/");
        assert_eq!(f.len(), 6, "{f:?}");
        let p = parse_sysfs_port("rxe0", 1, &f).unwrap();
        assert_eq!(
            (&p.state, &p.physical_state, p.link_layer),
            (
                &PortState::Active,
                &PhysicalState::LinkUp,
                LinkLayer::Ethernet
            )
        );
        assert_eq!(p.port_guid, g("0x2c9b86fffe729e0b"));
        let r = p.rate.as_ref().unwrap();
        assert_eq!(
            (r.width, r.label.as_deref(), r.data_gbps),
            (Some(1), Some("FDR10"), Some(10.0))
        );
        // GID 1 is the IPv4-mapped RoCEv2 GID of vA's address 192.168.130.10.
        assert_eq!(Guid::from_gid(&f["gids/1"]), Some(g("0x0000ffffc0a8820a")));
        // The netdev is printed by the `parent` file, last line of the capture.
        assert_eq!(body.lines().last(), Some("vA"));
        let (_, ib, _) = lab("ibstat.txt").unwrap();
        let cas = parse_ibstat(&ib).unwrap();
        let from_ibstat = &ca(&cas, "rxe0").ports[0];
        assert_eq!(
            (p.port_guid, &p.state, p.link_layer),
            (
                from_ibstat.port_guid,
                &from_ibstat.state,
                from_ibstat.link_layer
            )
        );
        assert_eq!(
            p.rate.as_ref().and_then(data),
            from_ibstat.rate.as_ref().and_then(data)
        );
    }

    /// (device, rate, link layer) of each `Infiniband device '<ca>' port N status:` block.
    fn ibstatus_blocks(text: &str) -> Vec<(String, Rate, LinkLayer)> {
        text.split("Infiniband device '")
            .skip(1)
            .map(|block| {
                let dev = block.split('\'').next().unwrap().to_string();
                let field = |k: &str| {
                    block
                        .lines()
                        .find_map(|l| l.trim().strip_prefix(k))
                        .unwrap_or_else(|| panic!("{dev}: {k}"))
                };
                let ll = LinkLayer::parse(field("link_layer:")).unwrap();
                let rate = Rate::from_sysfs(field("rate:")).unwrap_or_else(|| panic!("{dev}"));
                (dev, rate.on_link_layer(ll), ll)
            })
            .collect()
    }

    #[test]
    fn ibstatus_rate_lines_are_sysfs_rates() {
        if let Some(t) = real("ibstatus", "gpud-a100-mlx5-hdr-all-active.txt") {
            let blocks = ibstatus_blocks(&t);
            assert_eq!(blocks.len(), 9);
            for (dev, r, ll) in &blocks[..8] {
                assert_eq!(
                    (r.label.as_deref(), r.data_gbps, *ll),
                    (Some("HDR"), Some(200.0), LinkLayer::Infiniband),
                    "{dev}"
                );
            }
            // The ninth is a 40GbE RoCE port the driver reports as "4X QDR": 40, not 32, Gb/s.
            let (dev, r, ll) = &blocks[8];
            assert_eq!((dev.as_str(), *ll), ("mlx5_8", LinkLayer::Ethernet));
            assert_eq!(
                (r.label.as_deref(), r.data_gbps, r.basis),
                (Some("QDR"), Some(40.0), RateBasis::Ethernet)
            );
        }
        if let Some(t) = real("ibstatus", "heioy-cx3-dual-port-fdr-both-active.txt") {
            let blocks = ibstatus_blocks(&t);
            assert_eq!(blocks.len(), 2);
            assert!(blocks
                .iter()
                .all(|(d, r, _)| d == "mlx4_0" && r.data_gbps == Some(54.5)));
        }
        if let Some((_, body, _)) = lab("ibstatus.txt") {
            let blocks = ibstatus_blocks(&body);
            assert_eq!(blocks.len(), 4);
            for (_, r, ll) in blocks {
                assert_eq!(
                    (r.width, r.label.as_deref(), ll),
                    (Some(1), Some("FDR10"), LinkLayer::Ethernet)
                );
            }
        }
    }

    // ---- never panics ----------------------------------------------------------------------------

    /// xorshift64*: deterministic, so a failure reproduces.
    const PIECES: [&str; 24] = [
        "CA '",
        "CA: '",
        "'",
        "\n",
        "\t",
        " ",
        ":",
        "Port ",
        "Port 300:",
        "State: ",
        "Rate: ",
        "40 (",
        ")",
        "Gb/sec (",
        "X ",
        "0x",
        "ffffffffffffffffff",
        "Link layer: ",
        "hca_id:",
        "port:",
        "GID[  0]:",
        "é",
        "\u{0}",
        "99999999999",
    ];

    fn run_all(text: &str) {
        let _ = parse_ibstat(text);
        let _ = Rate::from_ibstat(text).map(|r| r.describe());
        let _ = Rate::from_sysfs(text).map(|r| r.describe());
        let _ = ipoib_guid_from_hwaddr(text);
        let _ = Guid::from_gid(text);
        let _ = Guid::eui64_from_mac(text);
        let f: BTreeMap<String, String> =
            ["state", "phys_state", "rate", "link_layer", "lid", "gids/0"]
                .iter()
                .map(|k| (k.to_string(), text.to_string()))
                .collect();
        let _ = parse_sysfs_port("x", 1, &f);
    }

    #[test]
    fn garbled_input_never_panics() {
        let mut seeds: Vec<String> = vec![
            "CA 'mlx4_0'\n\tCA type: MT4099\n\tPort 1:\n\t\tState: Active\n\t\tPhysical state: LinkUp\n\t\tRate: 40 (FDR10)\n\t\tBase lid: 7\n\t\tLMC: 0\n\t\tSM lid: 4\n\t\tCapability mask: 0x0251486a\n\t\tPort GUID: 0x0002c90300ea9941\n\t\tLink layer: InfiniBand\n".into(),
            "hca_id:\tmlx5_0\n\tnode_guid:\tb859:9f03:0022:626e\n\t\tport:\t1\n\t\t\tstate:\t\t\tPORT_ACTIVE (4)\n\t\t\tactive_mtu:\t\t4096 (5)\n".into(),
            "100 Gb/sec (4X EDR)".into(),
            "00:00:1f:e4:fe:80:00:00:00:00:00:00:24:8a:07:03:00:a3:19:64".into(),
        ];
        if let Some(dir) = shared_dir("real") {
            for sub in [
                "ibstat",
                "ibstat-ca-port",
                "ibv_devinfo-v",
                "sysfs-class-infiniband",
            ] {
                seeds.extend(
                    files_below(&dir.join(sub))
                        .into_iter()
                        .map(|(_, t)| t)
                        .take(3),
                );
            }
        }
        let mut rng = Rng(0x5eed_1b57_a7f0_0d00);
        for seed in &seeds {
            run_all(seed);
            for _ in 0..300 {
                run_all(&mutate(&mut rng, seed, &PIECES));
            }
        }
        for _ in 0..500 {
            let s: String = (0..rng.below(200))
                .map(|_| PIECES[rng.below(PIECES.len())])
                .collect();
            run_all(&s);
        }
    }
}
