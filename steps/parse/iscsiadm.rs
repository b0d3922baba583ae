//! Parsers for what open-iscsi's `iscsiadm` prints, and the meaning of its exit codes.
//!
//! Contract: every function here is pure (text in, values out), never panics, and skips
//! lines it does not recognise instead of failing, because `iscsiadm` mixes progress,
//! warnings (`iscsiadm: ...` on stderr) and results in one stream. A caller that needs to
//! know whether a command worked looks at the exit status first ([`classify_exit`]), then
//! at the parsed values.
//!
//! Formats covered (as printed by open-iscsi 2.0-87x, 2.1.x and 6.2.x):
//! - `iscsiadm -m session -P 1|2|3`: the tree ([`parse_session_p3`]). Several sessions to
//!   one target share one `Target:` line, and a session to the same portal as the one
//!   before it gets an empty line instead of its `Current Portal:`/`Persistent Portal:`
//!   lines, so a session starts at its `Interface:` header, not at a portal line;
//! - `iscsiadm -m session` (flat, one `transport: [sid] ip:port,tpgt iqn (non-flash)` line per
//!   session; a SendTargets discovery session over an offload or iSER transport has no
//!   target name) ([`parse_session_flat`]);
//! - `iscsiadm -m node`, `-m discovery` (flat `ip:port,tpgt iqn`, tpgt may be `-1`) and
//!   `-m node -P 1` (tree with `Iface Name:`) ([`parse_nodes`], [`parse_discovery`]);
//! - records, `key = value` between `# BEGIN RECORD` and `# END RECORD` ([`parse_record`]);
//! - logout progress ([`parse_logout_output`]), which names the session, never the transport;
//! - `/etc/iscsi/initiatorname.iscsi` ([`parse_initiatorname`]).
//!
//! Values printed as `<empty>` become `None` (or `""` in record maps). Other placeholders
//! are kept as printed: in the session tree `Iface Netdev: default` and
//! `Iface IPaddress: [default]` mean "not bound to one", which a caller may need to tell
//! apart from a real binding.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

/// A target portal: address and TCP port. IPv6 addresses are stored without brackets.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Portal {
    /// IPv4 or IPv6 address (no brackets), or a host name where the operator gave one.
    pub address: String,
    /// TCP port, 3260 unless the target says otherwise.
    pub port: u16,
}

impl std::fmt::Display for Portal {
    /// `ip:port`, with IPv6 addresses in brackets, as `iscsiadm -p` accepts it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.address.contains(':') {
            write!(f, "[{}]:{}", self.address, self.port)
        } else {
            write!(f, "{}:{}", self.address, self.port)
        }
    }
}

/// One SCSI device under a session in `iscsiadm -m session -P 3`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScsiDevice {
    /// SCSI host number (`scsi2` -> 2).
    pub host: u32,
    /// Channel (printed as `00`).
    pub channel: u32,
    /// Target id.
    pub id: u32,
    /// Logical unit number.
    pub lun: u64,
    /// Block device name (`sdb`) when the LUN has one.
    pub disk: Option<String>,
    /// Device state (`running`, `offline`, ...) when printed.
    pub state: Option<String>,
}

/// One session of `iscsiadm -m session -P 1` .. `-P 3`. Fields absent at the lower print
/// levels stay `None` or empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionDetail {
    /// Target IQN from the enclosing `Target:` line.
    pub target: String,
    /// `(non-flash)` / `(flash)` suffix of the `Target:` line, where printed.
    pub flash: Option<bool>,
    /// `Current Portal:` (the address the session is connected to now).
    pub current_portal: Option<Portal>,
    /// `Persistent Portal:` (the address of the node record).
    pub persistent_portal: Option<Portal>,
    /// Target portal group tag from the portal lines.
    pub tpgt: Option<i32>,
    /// `Iface Name:`.
    pub iface_name: Option<String>,
    /// `Iface Transport:` (`iser`, `tcp`).
    pub iface_transport: Option<String>,
    /// `Iface Initiatorname:`.
    pub iface_initiatorname: Option<String>,
    /// `Iface IPaddress:` as printed (`[default]` when unbound).
    pub iface_ipaddress: Option<String>,
    /// `Iface HWaddress:` as printed (`default` when unbound).
    pub iface_hwaddress: Option<String>,
    /// `Iface Netdev:` as printed (`default` when unbound).
    pub iface_netdev: Option<String>,
    /// `SID:`.
    pub sid: Option<u32>,
    /// `iSCSI Connection State:` (`LOGGED IN`, `TRANSPORT WAIT`, `IN LOGIN`, `FREE`, ...).
    pub connection_state: Option<String>,
    /// `iSCSI Session State:` from sysfs (`LOGGED_IN`, `FAILED`, `FREE`).
    pub session_state: Option<String>,
    /// `Internal iscsid Session State:` (`NO CHANGE`, `CLEANUP`, `REOPEN`, `REDIRECT`).
    pub internal_state: Option<String>,
    /// `Recovery Timeout:`, the effective `node.session.timeo.replacement_timeout`.
    pub recovery_timeout: Option<u32>,
    /// `Host Number:` of the SCSI host the session created.
    pub host_number: Option<u32>,
    /// Host state printed after the host number (`running`).
    pub host_state: Option<String>,
    /// Attached SCSI devices, in the order printed (iscsiadm sorts LUNs as text).
    pub devices: Vec<ScsiDevice>,
    /// Every other `Key: value` line of the session (timeouts, CHAP user names,
    /// negotiated parameters), keyed as printed.
    pub other: BTreeMap<String, String>,
}

impl SessionDetail {
    /// Whether the kernel reports the session as logged in.
    pub fn is_logged_in(&self) -> bool {
        self.session_state.as_deref() == Some("LOGGED_IN")
    }

    /// Block device names of the attached disks, in printed order.
    pub fn disks(&self) -> Vec<&str> {
        self.devices
            .iter()
            .filter_map(|d| d.disk.as_deref())
            .collect()
    }
}

/// A node record (target, portal, iface) as listed by `iscsiadm -m node` or discovery.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NodeRef {
    /// Target IQN.
    pub target: String,
    /// Target portal.
    pub portal: Portal,
    /// Target portal group tag; `-1` for a record created by hand without one.
    pub tpgt: i32,
    /// The iface of the record where the output names it (tree form, node DB paths).
    pub iface: Option<String>,
}

/// A session named in logout or rescan output: `[sid: 3, target: ..., portal: ip,port]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRef {
    /// Session id.
    pub sid: u32,
    /// Target IQN.
    pub target: String,
    /// Portal of the session.
    pub portal: Portal,
}

/// One line of the flat `iscsiadm -m session` listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionLine {
    /// Transport (`iser`, `tcp`).
    pub transport: String,
    /// Session id.
    pub sid: u32,
    /// The portal as printed: a discovery session may show port 0.
    pub portal: Portal,
    /// Target portal group tag.
    pub tpgt: i32,
    /// Target IQN; `None` for a session that carries no target name (what a SendTargets
    /// discovery over iSER logs in with, and leaves behind when it is killed).
    pub target: Option<String>,
}

/// The outcome of logging out of one session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LogoutOutcome {
    /// `Logging out of session [...]` without a result line.
    Pending,
    /// `Logout of [...] successful.`
    Succeeded,
    /// `Could not logout of [...]`, with the reported code and reason where present.
    Failed {
        /// iscsi_err.h code.
        code: Option<i32>,
        /// The reason as printed.
        reason: Option<String>,
    },
}

/// What `iscsiadm -m node -u` / `-m session -u` reported for one session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogoutResult {
    /// The session.
    pub session: SessionRef,
    /// What happened.
    pub outcome: LogoutOutcome,
}

/// Exit status of `iscsiadm`, per open-iscsi `include/iscsi_err.h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, thiserror::Error)]
pub enum IscsiadmExit {
    /// 0: success.
    #[error("success")]
    Ok,
    /// 1: generic error.
    #[error("unknown error")]
    Generic,
    /// 2: the session could not be found.
    #[error("session not found")]
    SessionNotFound,
    /// 3: out of memory.
    #[error("no available memory")]
    NoMemory,
    /// 4: the transport (connection) failed.
    #[error("encountered connection failure")]
    Transport,
    /// 5: generic login failure.
    #[error("encountered iSCSI login failure")]
    Login,
    /// 6: error reading or writing the node/iface database.
    #[error("encountered iSCSI database failure")]
    Idbm,
    /// 7: invalid argument; also "Invalid Initiatorname" until iscsid is restarted after
    /// initiatorname.iscsi changed.
    #[error("invalid parameter")]
    InvalidArgument,
    /// 8: the connection timer expired while connecting.
    #[error("connection timed out")]
    TransportTimeout,
    /// 9: internal iscsid error.
    #[error("internal error")]
    Internal,
    /// 10: logout failed.
    #[error("encountered iSCSI logout failure")]
    Logout,
    /// 11: an iSCSI PDU timed out (an unreachable discovery portal ends here).
    #[error("iSCSI PDU timed out")]
    PduTimeout,
    /// 12: the transport module (ib_iser, iscsi_tcp) is not loaded.
    #[error("iSCSI driver not found; make sure it is loaded (modprobe ib_iser) and retry")]
    TransportNotFound,
    /// 13: permission denied talking to iscsid (not root?).
    #[error("daemon access denied")]
    AccessDenied,
    /// 14: the transport does not support the operation.
    #[error("iSCSI driver does not support requested capability")]
    TransportCaps,
    /// 15: the session exists already (success for a login).
    #[error("session exists")]
    SessionExists,
    /// 16: invalid request to iscsid.
    #[error("unknown request")]
    InvalidMgmtRequest,
    /// 17: iSNS not supported.
    #[error("iSNS service not supported")]
    IsnsUnavailable,
    /// 18: a read or write to iscsid failed.
    #[error("could not communicate to iscsid")]
    IscsidCommError,
    /// 19: login failed and retrying will not help (target refused).
    #[error("encountered non-retryable iSCSI login failure")]
    FatalLogin,
    /// 20: iscsid is not running or not reachable.
    #[error("could not connect to iscsid")]
    IscsidNotConnected,
    /// 21: no records, targets, sessions or portals matched (success for listing sessions
    /// on a fresh host).
    #[error("no objects found")]
    NoObjectsFound,
    /// 22: sysfs lookup failed.
    #[error("sysfs lookup failure")]
    SysfsLookup,
    /// 23: SCSI host not found.
    #[error("host not found")]
    HostNotFound,
    /// 24: login refused by authentication (CHAP, or an initiator IQN the target does not
    /// accept).
    #[error("iSCSI login failed due to authorization failure")]
    LoginAuthFailed,
    /// 25: iSNS query failed.
    #[error("iSNS query failed")]
    IsnsQuery,
    /// 26: iSNS registration failed.
    #[error("iSNS registration failed")]
    IsnsRegFailed,
    /// 27: operation not supported.
    #[error("operation not supported")]
    OpNotSupported,
    /// 28: device or resource busy.
    #[error("device or resource in use")]
    Busy,
    /// 29: failed, but retrying later may succeed.
    #[error("operation failed, but retrying later may succeed")]
    TryAgain,
    /// 30: unknown discovery type.
    #[error("unknown discovery type")]
    UnknownDiscoveryType,
    /// 31: a child process terminated.
    #[error("child process terminated")]
    ChildTerminated,
    /// 32: the session is likely not connected.
    #[error("session likely not connected")]
    SessionNotConnected,
    /// 33: a request to iscsid timed out.
    #[error("request timed out")]
    RequestTimedOut,
    /// Any other status (a signal, `timeout(1)`'s 124, a newer iscsiadm).
    #[error("unknown exit status {0}")]
    Unknown(i32),
}

/// The meaning of an `iscsiadm` exit status.
pub fn classify_exit(code: i32) -> IscsiadmExit {
    use IscsiadmExit::*;
    match code {
        0 => Ok,
        1 => Generic,
        2 => SessionNotFound,
        3 => NoMemory,
        4 => Transport,
        5 => Login,
        6 => Idbm,
        7 => InvalidArgument,
        8 => TransportTimeout,
        9 => Internal,
        10 => Logout,
        11 => PduTimeout,
        12 => TransportNotFound,
        13 => AccessDenied,
        14 => TransportCaps,
        15 => SessionExists,
        16 => InvalidMgmtRequest,
        17 => IsnsUnavailable,
        18 => IscsidCommError,
        19 => FatalLogin,
        20 => IscsidNotConnected,
        21 => NoObjectsFound,
        22 => SysfsLookup,
        23 => HostNotFound,
        24 => LoginAuthFailed,
        25 => IsnsQuery,
        26 => IsnsRegFailed,
        27 => OpNotSupported,
        28 => Busy,
        29 => TryAgain,
        30 => UnknownDiscoveryType,
        31 => ChildTerminated,
        32 => SessionNotConnected,
        33 => RequestTimedOut,
        other => Unknown(other),
    }
}

impl IscsiadmExit {
    /// The numeric status this kind stands for.
    pub fn code(self) -> i32 {
        use IscsiadmExit::*;
        match self {
            Ok => 0,
            Generic => 1,
            SessionNotFound => 2,
            NoMemory => 3,
            Transport => 4,
            Login => 5,
            Idbm => 6,
            InvalidArgument => 7,
            TransportTimeout => 8,
            Internal => 9,
            Logout => 10,
            PduTimeout => 11,
            TransportNotFound => 12,
            AccessDenied => 13,
            TransportCaps => 14,
            SessionExists => 15,
            InvalidMgmtRequest => 16,
            IsnsUnavailable => 17,
            IscsidCommError => 18,
            FatalLogin => 19,
            IscsidNotConnected => 20,
            NoObjectsFound => 21,
            SysfsLookup => 22,
            HostNotFound => 23,
            LoginAuthFailed => 24,
            IsnsQuery => 25,
            IsnsRegFailed => 26,
            OpNotSupported => 27,
            Busy => 28,
            TryAgain => 29,
            UnknownDiscoveryType => 30,
            ChildTerminated => 31,
            SessionNotConnected => 32,
            RequestTimedOut => 33,
            Unknown(c) => c,
        }
    }

    /// A one-line description for the operator.
    pub fn description(self) -> String {
        self.to_string()
    }

    /// Timeouts: the connection, a PDU or a request to iscsid timed out (8, 11, 33).
    /// Usually an unreachable portal or a wrong subnet, not a refusal by the target.
    pub fn is_timeout(self) -> bool {
        matches!(
            self,
            IscsiadmExit::TransportTimeout
                | IscsiadmExit::PduTimeout
                | IscsiadmExit::RequestTimedOut
        )
    }

    /// Authentication failure (24): CHAP, or the target does not accept this IQN.
    pub fn is_auth(self) -> bool {
        self == IscsiadmExit::LoginAuthFailed
    }

    /// Whether a login ended with the session in place: 0, or 15 (it existed already).
    pub fn login_ok(self) -> bool {
        matches!(self, IscsiadmExit::Ok | IscsiadmExit::SessionExists)
    }

    /// Whether a listing ended normally: 0, or 21 (nothing to list).
    pub fn listing_ok(self) -> bool {
        matches!(self, IscsiadmExit::Ok | IscsiadmExit::NoObjectsFound)
    }
}

/// A failed `iscsiadm` run: its classified status and the most specific message it printed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("iscsiadm failed ({}: {exit}){}", exit.code(), detail.as_ref().map(|d| format!(": {d}")).unwrap_or_default())]
pub struct IscsiadmError {
    /// The classified exit status.
    pub exit: IscsiadmExit,
    /// The `initiator reported error (...)` reason if printed, else the last
    /// `iscsiadm: ...` line.
    pub detail: Option<String>,
}

impl IscsiadmError {
    /// Build the error for exit status `code` from what the command printed; `None` when
    /// `code` is 0.
    pub fn from_output(code: i32, output: &str) -> Option<IscsiadmError> {
        if code == 0 {
            return None;
        }
        let mut reported = None;
        let mut last = None;
        for line in output.lines() {
            let line = line.trim();
            if let Some((_, reason)) = reported_error(line) {
                reported = reason;
            }
            if let Some(msg) = line.strip_prefix("iscsiadm: ") {
                if !msg.trim().is_empty() {
                    last = Some(msg.trim().to_string());
                }
            }
        }
        Some(IscsiadmError {
            exit: classify_exit(code),
            detail: reported.or(last),
        })
    }
}

fn re(cell: &'static OnceLock<Regex>, pattern: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pattern).expect("static regex"))
}

/// Split `ip:port` or `[v6]:port` into a portal.
fn parse_host_port(s: &str) -> Option<Portal> {
    let (address, port) = if let Some(rest) = s.strip_prefix('[') {
        let (addr, after) = rest.split_once(']')?;
        (addr, after.strip_prefix(':')?)
    } else {
        s.rsplit_once(':')?
    };
    if address.is_empty() {
        return None;
    }
    Some(Portal {
        address: address.to_string(),
        port: port.parse().ok()?,
    })
}

/// Split `ip:port,tpgt` (or `[v6]:port,tpgt`) into portal and tpgt.
fn parse_portal_tpgt(s: &str) -> Option<(Portal, i32)> {
    let (hp, tpgt) = s.rsplit_once(',')?;
    Some((parse_host_port(hp)?, tpgt.trim().parse().ok()?))
}

/// Split the `ip,port` form of login/logout lines (IPv6 printed bare) into a portal.
fn parse_comma_portal(s: &str) -> Option<Portal> {
    let (address, port) = s.trim().rsplit_once(',')?;
    let address = address.trim_start_matches('[').trim_end_matches(']');
    if address.is_empty() {
        return None;
    }
    Some(Portal {
        address: address.to_string(),
        port: port.trim().parse().ok()?,
    })
}

fn none_if_empty(v: &str) -> Option<String> {
    let v = v.trim();
    if v.is_empty() || v == "<empty>" {
        None
    } else {
        Some(v.to_string())
    }
}

/// Split `Target: iqn (non-flash)` into IQN and flash flag.
fn split_flash(s: &str) -> (String, Option<bool>) {
    let s = s.trim();
    if let Some(t) = s.strip_suffix("(non-flash)") {
        (t.trim().to_string(), Some(false))
    } else if let Some(t) = s.strip_suffix("(flash)") {
        (t.trim().to_string(), Some(true))
    } else {
        (s.to_string(), None)
    }
}

/// Parse the session tree of `iscsiadm -m session -P 1`, `-P 2` or `-P 3`.
pub fn parse_session_p3(text: &str) -> Vec<SessionDetail> {
    static SCSI: OnceLock<Regex> = OnceLock::new();
    let scsi = re(&SCSI, r"^scsi(\d+) Channel (\d+) Id (\d+) Lun: (\d+)$");

    struct Builder {
        out: Vec<SessionDetail>,
        cur: Option<SessionDetail>,
        // The current session has more than its portal lines: a further portal or
        // `Interface:` line starts the next session.
        has_body: bool,
        target: String,
        flash: Option<bool>,
        current: Option<Portal>,
        persistent: Option<Portal>,
        tpgt: Option<i32>,
    }
    impl Builder {
        fn flush(&mut self) {
            if let Some(s) = self.cur.take() {
                self.out.push(s);
            }
            self.has_body = false;
        }
        fn open(&mut self) -> &mut SessionDetail {
            let (target, flash) = (self.target.clone(), self.flash);
            let (current, persistent, tpgt) =
                (self.current.clone(), self.persistent.clone(), self.tpgt);
            self.cur.get_or_insert_with(|| SessionDetail {
                target,
                flash,
                current_portal: current,
                persistent_portal: persistent,
                tpgt,
                ..SessionDetail::default()
            })
        }
        fn body(&mut self) -> &mut SessionDetail {
            self.has_body = true;
            self.open()
        }
    }

    let mut b = Builder {
        out: Vec::new(),
        cur: None,
        has_body: false,
        target: String::new(),
        flash: None,
        current: None,
        persistent: None,
        tpgt: None,
    };

    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() || line.chars().all(|c| c == '*') {
            continue;
        }
        // `Target:` alone (or `Target:  (non-flash)`): a session without a target name.
        if let Some(t) = line.strip_prefix("Target:") {
            b.flush();
            (b.target, b.flash) = split_flash(t);
            b.current = None;
            b.persistent = None;
            b.tpgt = None;
            continue;
        }
        if let Some(p) = line.strip_prefix("Current Portal: ") {
            if b.has_body {
                b.flush();
            }
            if let Some((portal, tpgt)) = parse_portal_tpgt(p.trim()) {
                b.current = Some(portal.clone());
                b.tpgt = Some(tpgt);
                let s = b.open();
                s.current_portal = Some(portal);
                s.tpgt = Some(tpgt);
            }
            continue;
        }
        if let Some(p) = line.strip_prefix("Persistent Portal: ") {
            if b.has_body {
                b.flush();
            }
            if let Some((portal, tpgt)) = parse_portal_tpgt(p.trim()) {
                b.persistent = Some(portal.clone());
                b.tpgt = b.tpgt.or(Some(tpgt));
                let s = b.open();
                s.persistent_portal = Some(portal);
                s.tpgt = s.tpgt.or(Some(tpgt));
            }
            continue;
        }
        if line == "Interface:" {
            if b.has_body {
                b.flush();
            }
            b.body();
            continue;
        }
        if let Some(c) = scsi.captures(line) {
            let dev = (|| {
                Some(ScsiDevice {
                    host: c[1].parse().ok()?,
                    channel: c[2].parse().ok()?,
                    id: c[3].parse().ok()?,
                    lun: c[4].parse().ok()?,
                    disk: None,
                    state: None,
                })
            })();
            if let Some(dev) = dev {
                b.body().devices.push(dev);
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("Attached scsi disk ") {
            let (disk, state) = match rest.split_once("State:") {
                Some((d, s)) => (d.trim(), none_if_empty(s)),
                None => (rest.trim(), None),
            };
            if let Some(dev) = b.body().devices.last_mut() {
                dev.disk = none_if_empty(disk);
                dev.state = state;
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("Host Number:") {
            let (num, state) = match rest.split_once("State:") {
                Some((n, s)) => (n.trim(), none_if_empty(s)),
                None => (rest.trim(), None),
            };
            let s = b.body();
            s.host_number = num.parse().ok();
            s.host_state = state;
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        if key == "SID" {
            if b.cur.as_ref().is_some_and(|s| s.sid.is_some()) {
                b.flush();
            }
            b.body().sid = value.parse().ok();
            continue;
        }
        // Lines before the first session (`iSCSI Transport Class version`, `version`)
        // belong to no session.
        if b.cur.is_none() && b.target.is_empty() {
            continue;
        }
        let s = b.body();
        let v = none_if_empty(value);
        match key {
            "Iface Name" => s.iface_name = v,
            "Iface Transport" => s.iface_transport = v,
            "Iface Initiatorname" => s.iface_initiatorname = v,
            "Iface IPaddress" => s.iface_ipaddress = v,
            "Iface HWaddress" => s.iface_hwaddress = v,
            "Iface Netdev" => s.iface_netdev = v,
            "iSCSI Connection State" => s.connection_state = v,
            "iSCSI Session State" => s.session_state = v,
            "Internal iscsid Session State" => s.internal_state = v,
            _ => {
                if key == "Recovery Timeout" {
                    s.recovery_timeout = value.parse().ok();
                }
                s.other.insert(key.to_string(), value.to_string());
            }
        }
    }
    b.flush();
    b.out
}

/// Parse the flat `iscsiadm -m session` listing (`iser: [3] 10.0.0.1:3260,1 iqn.x
/// (non-flash)`; IPv6 portals in brackets). A line with nothing between the tpgt and the
/// flash flag is a session without a target name.
pub fn parse_session_flat(text: &str) -> Vec<SessionLine> {
    static LINE: OnceLock<Regex> = OnceLock::new();
    let line = re(
        &LINE,
        r"^([A-Za-z0-9_]+): \[(\d+)\] (\S+?,-?\d+)(?:\s+(.*?))?\s*$",
    );
    text.lines()
        .filter_map(|raw| {
            let c = line.captures(raw.trim())?;
            let (portal, tpgt) = parse_portal_tpgt(&c[3])?;
            let rest = c.get(4).map_or("", |m| m.as_str());
            let (target, _) = split_flash(rest);
            Some(SessionLine {
                transport: c[1].to_string(),
                sid: c[2].parse().ok()?,
                portal,
                tpgt,
                target: none_if_empty(&target),
            })
        })
        .collect()
}

/// Parse `iscsiadm -m node` (flat `ip:port,tpgt iqn`) or its tree form `-m node -P 1`
/// (`Target:` / `Portal:` / `Iface Name:`). In the tree every `Iface Name:` line is one
/// record; a portal without one is reported once with `iface: None`.
pub fn parse_nodes(text: &str) -> Vec<NodeRef> {
    let mut out = Vec::new();
    let mut target: Option<String> = None;
    // Portal of the tree form, and whether a record was emitted for it yet.
    let mut portal: Option<(Portal, i32, bool)> = None;

    fn close(
        out: &mut Vec<NodeRef>,
        target: &Option<String>,
        portal: &mut Option<(Portal, i32, bool)>,
    ) {
        if let (Some(t), Some((p, tpgt, false))) = (target, portal.as_ref()) {
            out.push(NodeRef {
                target: t.clone(),
                portal: p.clone(),
                tpgt: *tpgt,
                iface: None,
            });
        }
        *portal = None;
    }

    for raw in text.lines() {
        let line = raw.trim();
        if let Some(t) = line.strip_prefix("Target: ") {
            close(&mut out, &target, &mut portal);
            target = Some(split_flash(t).0);
            continue;
        }
        if let Some(p) = line.strip_prefix("Portal: ") {
            close(&mut out, &target, &mut portal);
            portal = parse_portal_tpgt(p.trim()).map(|(p, t)| (p, t, false));
            continue;
        }
        if let Some(name) = line.strip_prefix("Iface Name: ") {
            if let (Some(t), Some((p, tpgt, emitted))) = (&target, portal.as_mut()) {
                out.push(NodeRef {
                    target: t.clone(),
                    portal: p.clone(),
                    tpgt: *tpgt,
                    iface: none_if_empty(name),
                });
                *emitted = true;
            }
            continue;
        }
        let mut fields = line.split_whitespace();
        let (Some(first), Some(iqn), None) = (fields.next(), fields.next(), fields.next()) else {
            continue;
        };
        if let Some((p, tpgt)) = parse_portal_tpgt(first) {
            out.push(NodeRef {
                target: iqn.to_string(),
                portal: p,
                tpgt,
                iface: None,
            });
        }
    }
    close(&mut out, &target, &mut portal);
    out
}

/// Parse the output of `iscsiadm -m discovery -t sendtargets` (same shape as
/// [`parse_nodes`]). Error lines of an unreachable portal are skipped: judge those by
/// the exit status (11 after the retries are spent).
pub fn parse_discovery(text: &str) -> Vec<NodeRef> {
    parse_nodes(text)
}

/// Parse one record (`iscsiadm -m node -T .. -p ..`, `-m iface -I X`, a file of the node
/// database) into `key -> value`. `<empty>` becomes `""`; comments and blank lines are
/// skipped; where a key repeats, the last value wins as in open-iscsi. Several records
/// in one text are merged.
pub fn parse_record(text: &str) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    for line in text.lines() {
        if let Some((k, v)) = record_line(line) {
            map.insert(k, v);
        }
    }
    map
}

fn record_line(line: &str) -> Option<(String, String)> {
    let t = line.trim();
    if t.is_empty() || t.starts_with('#') {
        return None;
    }
    let (k, v) = t.split_once('=')?;
    let k = k.trim();
    if k.is_empty() || k.contains(char::is_whitespace) {
        return None;
    }
    let v = v.trim();
    let v = if v == "<empty>" { "" } else { v };
    Some((k.to_string(), v.to_string()))
}

/// Parse `/etc/iscsi/initiatorname.iscsi`. Like open-iscsi: leading whitespace is
/// skipped, the name runs to the first whitespace, an empty name does not count, and if
/// the line appears more than once the last one wins. Commented lines never match.
pub fn parse_initiatorname(text: &str) -> Option<String> {
    let mut name = None;
    for line in text.lines() {
        if let Some(rest) = line.trim_start().strip_prefix("InitiatorName=") {
            if let Some(v) = rest.split_whitespace().next() {
                name = Some(v.to_string());
            }
        }
    }
    name
}

/// Fields of a bracketed `[iface: X, target: Y, portal: ip,port]` / `[sid: N, ...]`.
fn bracket_fields(s: &str) -> Option<BTreeMap<&str, &str>> {
    let start = s.find('[')?;
    let end = s.rfind(']')?;
    if end <= start {
        return None;
    }
    let inner = &s[start + 1..end];
    let mut map = BTreeMap::new();
    for part in inner.split(", ") {
        if let Some((k, v)) = part.split_once(": ") {
            map.insert(k.trim(), v.trim());
        }
    }
    Some(map)
}

/// `initiator reported error (N - reason)` -> (code, reason).
fn reported_error(line: &str) -> Option<(Option<i32>, Option<String>)> {
    let idx = line.find("initiator reported error (")?;
    let rest = &line[idx + "initiator reported error (".len()..];
    let rest = rest.strip_suffix(')').unwrap_or(rest);
    let (code, reason) = match rest.split_once(" - ") {
        Some((c, r)) => (c.trim().parse().ok(), none_if_empty(r)),
        None => (rest.trim().parse().ok(), None),
    };
    Some((code, reason))
}

fn session_ref(line: &str) -> Option<SessionRef> {
    let f = bracket_fields(line)?;
    Some(SessionRef {
        sid: f.get("sid")?.parse().ok()?,
        target: f.get("target")?.to_string(),
        portal: parse_comma_portal(f.get("portal")?)?,
    })
}

/// Parse the output of `iscsiadm -m node -u` / `-U all` / `-m session -u`: one result
/// per session, in the order first named.
pub fn parse_logout_output(text: &str) -> Vec<LogoutResult> {
    let mut out: Vec<LogoutResult> = Vec::new();
    for raw in text.lines() {
        let line = raw.trim();
        let msg = line.strip_prefix("iscsiadm: ").unwrap_or(line);
        let outcome = if msg.starts_with("Logging out of session [") {
            LogoutOutcome::Pending
        } else if msg.starts_with("Logout of [") && msg.contains("successful") {
            LogoutOutcome::Succeeded
        } else if msg.starts_with("Could not logout of [") {
            let (code, reason) = reported_error(msg).unwrap_or((None, None));
            LogoutOutcome::Failed { code, reason }
        } else {
            if let Some((code, reason)) = reported_error(msg) {
                if let Some(r) = out
                    .iter_mut()
                    .rev()
                    .find(|r| matches!(r.outcome, LogoutOutcome::Failed { code: None, .. }))
                {
                    r.outcome = LogoutOutcome::Failed { code, reason };
                }
            }
            continue;
        };
        let Some(session) = session_ref(msg) else {
            continue;
        };
        match out.iter().rposition(|r| r.session == session) {
            Some(i) if outcome != LogoutOutcome::Pending => out[i].outcome = outcome,
            _ => out.push(LogoutResult { session, outcome }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::steps::parse::fixtures::{files_below, lab_fixture, shared_dir};

    /// (file name, text) of every file under `real/<sub>`, or `None` when absent.
    fn real(sub: &str) -> Option<Vec<(String, String)>> {
        let dir = shared_dir("real")?.join(sub);
        let files: Vec<_> = files_below(&dir)
            .into_iter()
            .map(|(p, t)| (p.file_name().unwrap().to_string_lossy().into_owned(), t))
            .collect();
        assert!(!files.is_empty(), "no fixtures under real/{sub}");
        Some(files)
    }

    /// (command, output, exit status) of `lab/<name>`, or `None` when absent.
    fn lab(name: &str) -> Option<(String, String, Option<i32>)> {
        lab_fixture(name)
    }

    /// The lab captures these tests check; a new `iscsiadm-*` capture must be added here or
    /// to [`LAB_UNPARSED`].
    const LAB_COVERED: &[&str] = &[
        "initiatorname.txt",
        "iscsiadm-discovery-st-B.txt",
        "iscsiadm-discovery-st.txt",
        "iscsiadm-discovery-unreachable.txt",
        "iscsiadm-iface-I-iser.txt",
        "iscsiadm-iface-new.txt",
        "iscsiadm-iface-show.txt",
        "iscsiadm-logout-all.txt",
        "iscsiadm-node-P1.txt",
        "iscsiadm-node-delete-cross.txt",
        "iscsiadm-node-login-again.txt",
        "iscsiadm-node-login-bogus.txt",
        "iscsiadm-node-show.txt",
        "iscsiadm-node.txt",
        "iscsiadm-session-P1.txt",
        "iscsiadm-session-P3.txt",
        "iscsiadm-session-none.txt",
        "iscsiadm-session.txt",
    ];

    /// Lab captures of outputs no step parses (a step reads only the exit status of a login
    /// or rescan, and lists sessions and ifaces in their tree and record forms).
    const LAB_UNPARSED: &[&str] = &[
        "iscsiadm-iface.txt",
        "iscsiadm-node-login-all.txt",
        "iscsiadm-session-rescan.txt",
    ];

    fn p(address: &str, port: u16) -> Portal {
        Portal {
            address: address.to_string(),
            port,
        }
    }

    const LAB_IQN: &str = "iqn.2002-09.com.lab:array";
    const LAB_INITIATOR: &str = "iqn.1993-08.org.debian:01:ae66e52862dd";

    #[test]
    fn every_lab_iscsi_capture_is_covered() {
        let Some(dir) = shared_dir("lab") else { return };
        for (path, _) in files_below(&dir) {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name.starts_with("iscsiadm-") || name.starts_with("initiatorname") {
                assert!(
                    LAB_COVERED.contains(&name.as_str()) || LAB_UNPARSED.contains(&name.as_str()),
                    "{name} has no expectations"
                );
            }
        }
    }

    #[test]
    fn no_sessions_lab() {
        let Some((_, out, rc)) = lab("iscsiadm-session-none.txt") else {
            return;
        };
        assert_eq!(out, "iscsiadm: No active sessions.\n");
        assert!(parse_session_p3(&out).is_empty());
        let exit = classify_exit(rc.unwrap());
        assert_eq!(exit, IscsiadmExit::NoObjectsFound);
        assert!(exit.listing_ok());
    }

    #[test]
    fn session_tree_real() {
        let Some(files) = real("iscsiadm-session-P3") else {
            return;
        };
        for (name, text) in files {
            let s = parse_session_p3(&text);
            match name.as_str() {
                "b3stockage-rocky9-one-target-4-portals-tabs.txt" => {
                    // One `Target:` line, four sessions under it.
                    assert_eq!(s.len(), 4);
                    let got: Vec<_> = s
                        .iter()
                        .map(|x| {
                            (
                                x.sid.unwrap(),
                                x.persistent_portal.as_ref().unwrap().address.as_str(),
                                x.iface_ipaddress.as_deref().unwrap(),
                                x.host_number.unwrap(),
                                x.disks(),
                            )
                        })
                        .collect();
                    assert_eq!(
                        got,
                        [
                            (10, "10.3.2.2", "10.3.2.102", 6, vec!["sde"]),
                            (5, "10.3.1.1", "10.3.1.102", 7, vec!["sdb"]),
                            (6, "10.3.2.1", "10.3.2.102", 8, vec!["sdc"]),
                            (9, "10.3.1.2", "10.3.1.102", 5, vec!["sdd"]),
                        ]
                    );
                    for x in &s {
                        assert_eq!(x.target, "iqn.2024-12.tp2.b3:data-chunk2");
                        assert_eq!(x.flash, Some(false));
                        assert_eq!(x.current_portal, x.persistent_portal);
                        assert_eq!(x.tpgt, Some(1));
                        assert_eq!(x.iface_name.as_deref(), Some("default"));
                        assert_eq!(x.iface_transport.as_deref(), Some("tcp"));
                        assert_eq!(
                            x.iface_initiatorname.as_deref(),
                            Some("iqn.2024-12.tp2.b3:data-chunk2:chunk1-initiator")
                        );
                        assert_eq!(x.iface_hwaddress.as_deref(), Some("default"));
                        assert_eq!(x.iface_netdev.as_deref(), Some("default"));
                        assert!(x.is_logged_in());
                        assert_eq!(x.connection_state.as_deref(), Some("LOGGED IN"));
                        assert_eq!(x.internal_state.as_deref(), Some("NO CHANGE"));
                        assert_eq!(x.recovery_timeout, Some(5));
                        assert_eq!(x.host_state.as_deref(), Some("running"));
                        assert_eq!(x.devices.len(), 1);
                        assert_eq!(x.devices[0].lun, 0);
                        assert_eq!(x.devices[0].state.as_deref(), Some("running"));
                        assert_eq!(
                            x.other.get("MaxBurstLength").map(String::as_str),
                            Some("262144")
                        );
                    }
                }
                "sugon-ds600-centos7-tcp-17-luns-tabs.txt" => {
                    assert_eq!(s.len(), 1);
                    let x = &s[0];
                    assert_eq!(
                        x.target,
                        "iqn.2012-07.com.Sugon:alias.tgt0000.200000015555ee0d"
                    );
                    assert_eq!(x.persistent_portal, Some(p("10.0.40.1", 3260)));
                    assert_eq!(x.sid, Some(2));
                    assert_eq!(
                        x.iface_initiatorname.as_deref(),
                        Some("iqn.1994-05.com.redhat:a2c67b44fbb2")
                    );
                    assert_eq!(x.iface_ipaddress.as_deref(), Some("10.0.20.18"));
                    // `<empty>` here, where 6.2.1.9 prints `default`.
                    assert_eq!(
                        (x.iface_hwaddress.as_deref(), x.iface_netdev.as_deref()),
                        (None, None)
                    );
                    assert_eq!(x.session_state.as_deref(), Some("LOGGED_IN"));
                    assert_eq!((x.host_number, x.recovery_timeout), (Some(9), Some(5)));
                    let luns: Vec<u64> = x.devices.iter().map(|d| d.lun).collect();
                    assert_eq!(
                        luns,
                        [0, 1, 10, 11, 12, 13, 14, 15, 16, 2, 3, 4, 5, 6, 7, 8, 9]
                    );
                    assert_eq!(x.devices[0].disk.as_deref(), Some("sdo"));
                    assert_eq!(x.devices[8].disk.as_deref(), Some("sdaw"));
                    assert_eq!(x.devices[16].disk.as_deref(), Some("sdah"));
                    assert!(x.devices.iter().all(|d| d.host == 9
                        && d.channel == 0
                        && d.id == 0
                        && d.state.as_deref() == Some("running")));
                    assert_eq!(x.other.get("ImmediateData").map(String::as_str), Some("No"));
                }
                other => panic!("real/iscsiadm-session-P3/{other} has no expectations"),
            }
        }
    }

    #[test]
    fn session_lines_lab() {
        let Some((cmd, out, rc)) = lab("iscsiadm-session.txt") else {
            return;
        };
        assert_eq!((cmd.as_str(), rc), ("iscsiadm -m session", Some(0)));
        let got: Vec<_> = parse_session_flat(&out)
            .into_iter()
            .map(|s| (s.transport, s.sid, s.portal.to_string(), s.target))
            .collect();
        let t = Some("iqn.2002-09.com.lab:array".to_string());
        assert_eq!(
            got,
            [
                ("iser".into(), 3, "192.168.130.102:3260".into(), t.clone()),
                ("iser".into(), 4, "192.168.131.102:3260".into(), t.clone()),
                ("iser".into(), 5, "192.168.131.101:3260".into(), t.clone()),
                ("iser".into(), 6, "192.168.130.101:3260".into(), t),
            ]
        );
    }

    #[test]
    fn session_lines_real() {
        let Some(files) = real("iscsiadm-session") else {
            return;
        };
        for (name, text) in files {
            let lines = text.lines().filter(|l| !l.trim().is_empty()).count();
            let s = parse_session_flat(&text);
            assert_eq!(s.len(), lines, "{name}");
            assert!(s.iter().all(|x| x.target.is_some()), "{name}");
        }
    }

    #[test]
    fn session_lines_without_a_target_name_and_ipv6() {
        // What the lab's killed SendTargets discovery over iSER left (port printed as 0).
        let s = parse_session_flat(
            "iser: [1] 192.168.130.101:0,1  (non-flash)\n\
             iser: [2] 192.168.130.101:0,1\n\
             tcp: [7] [fd00::1]:3260,1 iqn.x (non-flash)\n\
             iscsiadm: No active sessions.\n",
        );
        assert_eq!(s.len(), 3);
        assert_eq!((s[0].sid, s[0].target.as_deref()), (1, None));
        assert_eq!(s[0].portal, p("192.168.130.101", 0));
        assert_eq!((s[1].sid, s[1].target.as_deref()), (2, None));
        assert_eq!((s[2].sid, s[2].target.as_deref()), (7, Some("iqn.x")));
        assert_eq!(s[2].portal, p("fd00::1", 3260));
    }

    #[test]
    fn session_tree_lab() {
        let Some((cmd, out, rc)) = lab("iscsiadm-session-P3.txt") else {
            return;
        };
        assert_eq!((cmd.as_str(), rc), ("iscsiadm -m session -P 3", Some(0)));
        let s = parse_session_p3(&out);
        let got: Vec<_> = s
            .iter()
            .map(|x| {
                (
                    x.sid.unwrap(),
                    x.iface_name.as_deref().unwrap(),
                    x.iface_netdev.as_deref().unwrap(),
                    x.persistent_portal.as_ref().unwrap().address.as_str(),
                    x.host_number.unwrap(),
                    x.disks(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    3,
                    "iface-vA",
                    "vA",
                    "192.168.130.102",
                    2,
                    vec!["sda", "sdb"]
                ),
                (
                    4,
                    "iface-vB",
                    "vB",
                    "192.168.131.102",
                    3,
                    vec!["sdc", "sdd"]
                ),
                (
                    5,
                    "iface-vB",
                    "vB",
                    "192.168.131.101",
                    4,
                    vec!["sde", "sdf"]
                ),
                (
                    6,
                    "iface-vA",
                    "vA",
                    "192.168.130.101",
                    5,
                    vec!["sdg", "sdh"]
                ),
            ]
        );
        for x in &s {
            assert_eq!(x.target, LAB_IQN);
            assert_eq!(x.iface_transport.as_deref(), Some("iser"));
            assert_eq!(x.iface_initiatorname.as_deref(), Some(LAB_INITIATOR));
            assert_eq!(x.iface_ipaddress.as_deref(), Some("[default]"));
            assert!(x.is_logged_in());
            assert_eq!(x.recovery_timeout, Some(120));
            assert_eq!(x.devices.iter().map(|d| d.lun).collect::<Vec<_>>(), [0, 1]);
            // iSER negotiates a small MaxRecvDataSegmentLength; kept as printed.
            assert_eq!(
                x.other.get("MaxRecvDataSegmentLength").map(String::as_str),
                Some("128")
            );
        }

        let (_, out, _) = lab("iscsiadm-session-P1.txt").unwrap();
        let s1 = parse_session_p3(&out);
        assert_eq!(s1.len(), 4);
        for (a, b) in s1.iter().zip(&s) {
            assert_eq!(
                (a.sid, &a.iface_name, &a.persistent_portal),
                (b.sid, &b.iface_name, &b.persistent_portal)
            );
            assert_eq!(a.session_state.as_deref(), Some("LOGGED_IN"));
            assert!(
                a.devices.is_empty() && a.host_number.is_none() && a.recovery_timeout.is_none()
            );
        }
    }

    #[test]
    fn session_tree_same_portal_failed_and_ipv6() {
        // Written after open-iscsi's session_info_print_tree: a second session to the same
        // portal prints an empty line instead of the portal lines.
        let text = "Target: iqn.2001-05.com.example:t (non-flash)\n\
            \tCurrent Portal: [fe80::1]:3260,1\n\
            \tPersistent Portal: [fe80::1]:3260,1\n\
            \t\t**********\n\t\tInterface:\n\t\t**********\n\
            \t\tIface Name: iface-ib0\n\t\tSID: 1\n\
            \t\tiSCSI Connection State: TRANSPORT WAIT\n\
            \t\tiSCSI Session State: FAILED\n\
            \t\tInternal iscsid Session State: REOPEN\n\
            \n\
            \t\t**********\n\t\tInterface:\n\t\t**********\n\
            \t\tIface Name: iface-ib1\n\t\tSID: 2\n\
            \t\tiSCSI Session State: LOGGED_IN\n\
            \t\t************************\n\t\tAttached SCSI devices:\n\t\t************************\n\
            \t\tHost Number: 4\tState: running\n\
            \t\tscsi4 Channel 00 Id 0 Lun: 31\n";
        let s = parse_session_p3(text);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].persistent_portal, Some(p("fe80::1", 3260)));
        assert_eq!(s[1].persistent_portal, Some(p("fe80::1", 3260)));
        assert_eq!((s[0].sid, s[1].sid), (Some(1), Some(2)));
        assert_eq!(s[0].session_state.as_deref(), Some("FAILED"));
        assert!(!s[0].is_logged_in());
        assert_eq!(s[0].internal_state.as_deref(), Some("REOPEN"));
        assert_eq!(s[1].iface_name.as_deref(), Some("iface-ib1"));
        // A LUN without a block device (no `Attached scsi disk` line).
        assert_eq!(s[1].devices.len(), 1);
        assert_eq!(
            (s[1].devices[0].lun, s[1].devices[0].disk.as_deref()),
            (31, None)
        );
    }

    #[test]
    fn nodes_and_discovery_real() {
        let Some(files) = real("iscsiadm-node") else {
            return;
        };
        for (name, text) in files {
            match name.as_str() {
                "zadara-vpsa-node-tpgt-minus-1.txt" => assert_eq!(
                    parse_nodes(&text),
                    vec![NodeRef {
                        target: "iqn.2011-04.com.zadarastorage:vsa-00000016:1".into(),
                        portal: p("10.10.12.2", 3260),
                        tpgt: -1,
                        iface: None,
                    }]
                ),
                other => panic!("real/iscsiadm-node/{other} has no expectations"),
            }
        }
        let files = real("iscsiadm-discovery").unwrap();
        for (name, text) in files {
            let n = parse_discovery(&text);
            let portals: Vec<(String, i32)> =
                n.iter().map(|x| (x.portal.to_string(), x.tpgt)).collect();
            assert!(n.iter().all(|x| x.iface.is_none()), "{name}");
            match name.as_str() {
                "open-iscsi-issue73-dell-powerstore-per-node-targets.txt" => {
                    // A different target IQN behind each portal.
                    let t: Vec<_> = n.iter().map(|x| x.target.as_str()).collect();
                    assert_eq!(
                        t,
                        [
                            "iqn.2015-10.com.dell:dellemc-powerstore-apx00240413185-a-725b50f6",
                            "iqn.2015-10.com.dell:dellemc-powerstore-apx00240413185-b-6dfd9c7b"
                        ]
                    );
                    assert_eq!(
                        portals,
                        [
                            ("10.81.32.10:3260".into(), 1),
                            ("10.81.32.11:3260".into(), 1)
                        ]
                    );
                }
                "phytium-lio-single-portal.txt" => {
                    assert_eq!(portals, [("192.168.100.8:3260".into(), 1)]);
                    assert_eq!(n[0].target, "iqn.2020-12.phytium.com.cn");
                }
                "scaleoutsean-eseries-ef570-iser-8-portals.txt" => {
                    assert_eq!(n.len(), 8);
                    assert!(n.iter().all(|x| x.target
                        == "iqn.1992-08.com.netapp:5700.600a098000f63714000000005e79c17c"));
                    assert_eq!(portals[0], ("192.168.130.101:3260".into(), 1));
                    assert_eq!(portals[4], ("192.168.130.102:3260".into(), 2));
                    assert_eq!(portals[7], ("192.168.101.2:3260".into(), 2));
                    assert_eq!(n.iter().filter(|x| x.tpgt == 1).count(), 4);
                }
                "sugon-ds600-8-portals-tpgt-1-2.txt" => {
                    assert_eq!(n.len(), 8);
                    assert!(n.iter().all(
                        |x| x.target == "iqn.2012-07.com.Sugon:alias.tgt0000.200000015555ee0d"
                    ));
                    assert_eq!(portals[6], ("172.16.22.70:3260".into(), 2));
                    assert_eq!(portals[3], ("10.0.40.1:3260".into(), 1));
                }
                other => panic!("real/iscsiadm-discovery/{other} has no expectations"),
            }
        }
    }

    #[test]
    fn nodes_and_discovery_lab() {
        let Some((_, out, rc)) = lab("iscsiadm-discovery-st.txt") else {
            return;
        };
        let both_subnets = [
            "192.168.130.101:3260",
            "192.168.130.102:3260",
            "192.168.131.101:3260",
            "192.168.131.102:3260",
        ];
        for f in ["iscsiadm-discovery-st.txt", "iscsiadm-discovery-st-B.txt"] {
            let (_, out, rc) = lab(f).unwrap();
            assert_eq!(rc, Some(0));
            let n = parse_discovery(&out);
            // Whichever iface asked, every portal of both subnets comes back.
            let got: Vec<String> = n.iter().map(|x| x.portal.to_string()).collect();
            assert_eq!(got, both_subnets, "{f}");
            assert!(n.iter().all(|x| x.target == LAB_IQN && x.tpgt == 1));
        }
        assert_eq!(parse_discovery(&out).len(), 4);
        assert_eq!(rc, Some(0));

        let (_, out, rc) = lab("iscsiadm-discovery-unreachable.txt").unwrap();
        assert!(parse_discovery(&out).is_empty());
        let exit = classify_exit(rc.unwrap());
        assert_eq!(exit, IscsiadmExit::PduTimeout);
        assert!(exit.is_timeout());
        let err = IscsiadmError::from_output(rc.unwrap(), &out).unwrap();
        assert_eq!(
            err.detail.as_deref(),
            Some("Could not perform SendTargets discovery: iSCSI PDU timed out")
        );
        assert_eq!(
            err.to_string(),
            "iscsiadm failed (11: iSCSI PDU timed out): Could not perform SendTargets discovery: iSCSI PDU timed out"
        );

        let (_, out, rc) = lab("iscsiadm-node.txt").unwrap();
        assert_eq!(rc, Some(0));
        let n = parse_nodes(&out);
        // One line per (portal, iface) record, the iface not shown.
        assert_eq!(n.len(), 8);
        let got: Vec<String> = n.iter().map(|x| x.portal.to_string()).collect();
        for (i, want) in both_subnets.iter().enumerate() {
            assert_eq!(
                (&got[2 * i], &got[2 * i + 1]),
                (&want.to_string(), &want.to_string())
            );
        }
        assert!(n.iter().all(|x| x.iface.is_none() && x.target == LAB_IQN));

        let (_, out, _) = lab("iscsiadm-node-P1.txt").unwrap();
        let n = parse_nodes(&out);
        let got: Vec<(String, &str)> = n
            .iter()
            .map(|x| (x.portal.to_string(), x.iface.as_deref().unwrap()))
            .collect();
        let mut want = Vec::new();
        for portal in both_subnets {
            want.push((portal.to_string(), "iface-vA"));
            want.push((portal.to_string(), "iface-vB"));
        }
        assert_eq!(got, want);
        assert!(n.iter().all(|x| x.target == LAB_IQN && x.tpgt == 1));

        let (cmd, out, rc) = lab("iscsiadm-node-delete-cross.txt").unwrap();
        assert!(cmd.ends_with("-o delete"));
        assert_eq!((out.as_str(), rc), ("", Some(0)));
        assert!(parse_nodes(&out).is_empty());
    }

    #[test]
    fn node_tree_portal_without_iface_and_ipv6() {
        let text = "Target: iqn.2001-05.com.example:t\n\tPortal: [fe80::2]:3260,1\n\
                    \tPortal: 10.0.0.1:3260,1\n\t\tIface Name: iface-ib0\n";
        let n = parse_nodes(text);
        assert_eq!(n.len(), 2);
        assert_eq!(
            (n[0].portal.clone(), n[0].iface.clone()),
            (p("fe80::2", 3260), None)
        );
        assert_eq!(n[1].iface.as_deref(), Some("iface-ib0"));
        assert_eq!(
            parse_nodes("[fe80::3]:3260,1 iqn.x:y\n")[0].portal,
            p("fe80::3", 3260)
        );
    }

    #[test]
    fn records_real() {
        let Some(files) = real("iscsiadm-node-show") else {
            return;
        };
        for (name, text) in files {
            match name.as_str() {
                "centos7-6.2.0.874-tcp-chap-full-record.txt" => {
                    let r = parse_record(&text);
                    let get = |k: &str| r.get(k).map(String::as_str);
                    assert_eq!(get("node.name"), Some("iqn.2019-07.jack.com:target00"));
                    assert_eq!(get("node.startup"), Some("automatic"));
                    assert_eq!(get("iface.transport_name"), Some("tcp"));
                    assert_eq!(get("iface.iscsi_ifacename"), Some("default"));
                    assert_eq!(get("iface.net_ifacename"), Some(""));
                    assert_eq!(get("node.session.auth.authmethod"), Some("CHAP"));
                    assert_eq!(get("node.session.auth.username"), Some("jack"));
                    assert_eq!(get("node.session.auth.password"), Some("********"));
                    assert_eq!(get("node.conn[0].address"), Some("192.168.1.232"));
                    assert_eq!(get("node.session.timeo.replacement_timeout"), Some("120"));
                    assert!(!r.keys().any(|k| k.starts_with('#')));
                }
                other => panic!("real/iscsiadm-node-show/{other} has no expectations"),
            }
        }
        for (name, text) in real("iscsiadm-iface").unwrap() {
            let rec = parse_record(&text);
            match name.as_str() {
                "open-iscsi-readme-iface-record-cxgb3i-show.txt" => {
                    assert_eq!(rec.len(), 6);
                    assert_eq!(rec["iface.iscsi_ifacename"], "cxgb3i.00:07:43:05:97:07");
                    assert_eq!(rec["iface.hwaddress"], "00:07:43:05:97:07");
                    assert_eq!(rec["iface.transport_name"], "cxgb3i");
                    assert_eq!(rec["iface.ipaddress"], "");
                }
                // `iscsiadm -m iface` listings: no `key = value` line.
                "open-iscsi-readme-default-iser-cxgb3i-qla4xxx.txt"
                | "zadara-default-iser-custom-iface.txt" => {
                    assert!(rec.is_empty());
                }
                other => panic!("real/iscsiadm-iface/{other} has no expectations"),
            }
        }
        for (name, text) in real("iscsiadm-iface-delete").unwrap() {
            assert_eq!(name, "zadara-iface-unbound-and-deleted.txt");
            assert!(parse_record(&text).is_empty());
        }
    }

    #[test]
    fn records_lab() {
        let Some((_, out, rc)) = lab("iscsiadm-node-show.txt") else {
            return;
        };
        assert_eq!(rc, Some(0));
        let r = parse_record(&out);
        let get = |k: &str| r.get(k).map(String::as_str);
        assert_eq!(get("node.name"), Some(LAB_IQN));
        assert_eq!(get("node.tpgt"), Some("1"));
        assert_eq!(get("node.startup"), Some("manual"));
        assert_eq!(get("iface.iscsi_ifacename"), Some("iface-vA"));
        assert_eq!(get("iface.net_ifacename"), Some("vA"));
        assert_eq!(get("iface.transport_name"), Some("iser"));
        assert_eq!(get("iface.initiatorname"), Some(""));
        assert_eq!(get("node.discovery_address"), Some("192.168.130.101"));
        assert_eq!(get("node.session.timeo.replacement_timeout"), Some("120"));
        assert_eq!(get("node.conn[0].timeo.login_timeout"), Some("15"));
        assert_eq!(get("node.conn[0].address"), Some("192.168.130.101"));
        assert_eq!(get("node.session.auth.chap_algs"), Some("MD5"));

        let (_, out, _) = lab("iscsiadm-iface-show.txt").unwrap();
        let r = parse_record(&out);
        assert_eq!(r.len(), 55);
        assert_eq!(r["iface.iscsi_ifacename"], "iface-vA");
        assert_eq!(r["iface.net_ifacename"], "vA");
        assert_eq!(r["iface.transport_name"], "iser");
        assert_eq!(r["iface.hwaddress"], "");

        let (_, out, _) = lab("iscsiadm-iface-I-iser.txt").unwrap();
        let r = parse_record(&out);
        assert_eq!(r["iface.iscsi_ifacename"], "iser");
        assert_eq!(r["iface.transport_name"], "iser");
        assert_eq!(r["iface.net_ifacename"], "");

        let (cmd, out, rc) = lab("iscsiadm-iface-new.txt").unwrap();
        assert_eq!(
            (cmd.as_str(), rc),
            ("iscsiadm -m iface -I iface-vA -o new", Some(0))
        );
        assert!(parse_record(&out).is_empty());
    }

    #[test]
    fn node_db_records_real() {
        let Some(files) = real("iscsi-node-db") else {
            return;
        };
        for (name, text) in files {
            assert_eq!(name, "open-iscsi-issue73-egrep-nodes-dir-layout.txt");
            let mut recs = Vec::new();
            for line in text.lines() {
                // egrep -r prints `<path>:<line>`; the IQN has a colon too, the iface not.
                let slash = line.rfind('/').unwrap();
                let colon = slash + line[slash..].find(':').unwrap();
                recs.push(parse_record(&line[colon + 1..]));
            }
            assert_eq!(recs.len(), 6);
            assert_eq!(recs[0]["node.startup"], "automatic");
            assert_eq!(recs[1]["node.leading_login"], "Yes");
            assert_eq!(recs[2]["node.conn[0].startup"], "manual");
        }
    }

    #[test]
    fn login_exit_codes_lab() {
        let Some((_, _, rc)) = lab("iscsiadm-node-login-again.txt") else {
            return;
        };
        let exit = classify_exit(rc.unwrap());
        assert_eq!(exit, IscsiadmExit::SessionExists);
        assert!(exit.login_ok());

        let (_, out, rc) = lab("iscsiadm-node-login-bogus.txt").unwrap();
        assert_eq!(classify_exit(rc.unwrap()), IscsiadmExit::NoObjectsFound);
        assert!(!classify_exit(rc.unwrap()).login_ok());
        assert_eq!(
            IscsiadmError::from_output(21, &out)
                .unwrap()
                .detail
                .as_deref(),
            Some("No records found")
        );
    }

    #[test]
    fn logout() {
        if let Some((_, out, rc)) = lab("iscsiadm-logout-all.txt") {
            assert_eq!(rc, Some(0));
            let r = parse_logout_output(&out);
            let got: Vec<_> = r
                .iter()
                .map(|x| (x.session.sid, x.session.portal.to_string(), &x.outcome))
                .collect();
            let ok = &LogoutOutcome::Succeeded;
            assert_eq!(
                got,
                [
                    (3, "192.168.130.102:3260".to_string(), ok),
                    (4, "192.168.131.102:3260".to_string(), ok),
                    (5, "192.168.131.101:3260".to_string(), ok),
                    (6, "192.168.130.101:3260".to_string(), ok),
                ]
            );
            assert!(r.iter().all(|x| x.session.target == LAB_IQN));

            let (cmd, out, _) = lab("iscsiadm-session-rescan.txt").unwrap();
            assert_eq!(cmd, "iscsiadm -m session --rescan");
            assert!(parse_logout_output(&out).is_empty());
        }
        if let Some(files) = real("iscsiadm-node-logout") {
            for (name, text) in files {
                assert_eq!(name, "sugon-logout-successful.txt");
                let r = parse_logout_output(&text);
                assert_eq!(r.len(), 1);
                assert_eq!(r[0].session.sid, 1);
                assert_eq!(r[0].session.portal, p("10.0.20.1", 3260));
                assert_eq!(r[0].outcome, LogoutOutcome::Succeeded);
            }
            for (name, text) in real("iscsiadm-session-logout").unwrap() {
                assert_eq!(name, "zadara-session-logout-line.txt");
                let r = parse_logout_output(&text);
                assert_eq!(r.len(), 1);
                assert_eq!(
                    r[0].session.target,
                    "iqn.2011-04.com.zadarastorage:vsa-00000016:1"
                );
                assert_eq!(r[0].outcome, LogoutOutcome::Pending);
            }
        }
        let failed = "Logging out of session [sid: 2, target: iqn.x:y, portal: 10.0.0.1,3260]\n\
            iscsiadm: Could not logout of [sid: 2, target: iqn.x:y, portal: 10.0.0.1,3260].\n\
            iscsiadm: initiator reported error (9 - internal error)\n";
        assert_eq!(
            parse_logout_output(failed)[0].outcome,
            LogoutOutcome::Failed {
                code: Some(9),
                reason: Some("internal error".into())
            }
        );
    }

    #[test]
    fn initiatorname() {
        if let Some(files) = real("initiatorname-iscsi") {
            for (name, text) in files {
                assert_eq!(name, "zadara-debian-default-iqn.txt");
                assert_eq!(
                    parse_initiatorname(&text).as_deref(),
                    Some("iqn.1993-08.org.debian:01:458917df7e2f")
                );
            }
        }
        if let Some((cmd, out, _)) = lab("initiatorname.txt") {
            assert_eq!(cmd, "cat /etc/iscsi/initiatorname.iscsi");
            assert_eq!(parse_initiatorname(&out).as_deref(), Some(LAB_INITIATOR));
        }
        assert_eq!(parse_initiatorname("#InitiatorName=iqn.a:b\n"), None);
        assert_eq!(parse_initiatorname("InitiatorName=\n"), None);
        assert_eq!(
            parse_initiatorname("  InitiatorName=iqn.a:b  \r\nInitiatorName=iqn.c:d trailing\n")
                .as_deref(),
            Some("iqn.c:d")
        );
        assert_eq!(parse_initiatorname("initiatorname=iqn.a:b\n"), None);
    }

    #[test]
    fn exit_codes() {
        for code in -3..40 {
            assert_eq!(classify_exit(code).code(), code);
        }
        let named = [
            (0, IscsiadmExit::Ok),
            (4, IscsiadmExit::Transport),
            (5, IscsiadmExit::Login),
            (6, IscsiadmExit::Idbm),
            (7, IscsiadmExit::InvalidArgument),
            (8, IscsiadmExit::TransportTimeout),
            (11, IscsiadmExit::PduTimeout),
            (12, IscsiadmExit::TransportNotFound),
            (15, IscsiadmExit::SessionExists),
            (19, IscsiadmExit::FatalLogin),
            (20, IscsiadmExit::IscsidNotConnected),
            (21, IscsiadmExit::NoObjectsFound),
            (24, IscsiadmExit::LoginAuthFailed),
            (29, IscsiadmExit::TryAgain),
            (32, IscsiadmExit::SessionNotConnected),
            (33, IscsiadmExit::RequestTimedOut),
            (124, IscsiadmExit::Unknown(124)),
        ];
        for (code, kind) in named {
            assert_eq!(classify_exit(code), kind, "{code}");
        }
        let timeouts: Vec<i32> = (0..40).filter(|&c| classify_exit(c).is_timeout()).collect();
        assert_eq!(timeouts, [8, 11, 33]);
        let auth: Vec<i32> = (0..40).filter(|&c| classify_exit(c).is_auth()).collect();
        assert_eq!(auth, [24]);
        assert_eq!(
            classify_exit(24).description(),
            "iSCSI login failed due to authorization failure"
        );
        assert_eq!(classify_exit(99).description(), "unknown exit status 99");
        assert!(IscsiadmError::from_output(0, "anything").is_none());
        let json = serde_json::to_string(&classify_exit(15)).unwrap();
        assert_eq!(
            serde_json::from_str::<IscsiadmExit>(&json).unwrap(),
            IscsiadmExit::SessionExists
        );
    }

    fn run_all(text: &str) {
        let _ = parse_session_p3(text);
        let _ = parse_session_flat(text);
        let _ = parse_nodes(text);
        let _ = parse_record(text);
        let _ = parse_initiatorname(text);
        let _ = parse_logout_output(text);
        let _ = IscsiadmError::from_output(1, text);
    }

    #[test]
    fn garbled_input_never_panics() {
        let garbage = [
            "",
            "\n\n\r\n",
            "[",
            "]",
            "][",
            "iser: [",
            "iser: [x] :,",
            "tcp: [1] []:3260,1 iqn",
            "tcp: [99999999999] 1.2.3.4:99999,1 iqn",
            "Target: \n\tCurrent Portal: \n\tPersistent Portal: [::\n",
            "SID: \nSID: 1\nSID: x\n",
            "scsi Channel Id Lun: \n\t\t\tAttached scsi disk \n",
            "Host Number: x\tState:\nHost Number:\n",
            "Attached scsi disk sda State: running\n",
            "Login to [ successful\nCould not login to []\n",
            "initiator reported error (\ninitiator reported error (x - \n",
            "Logging out of session [sid: x, target: , portal: ,]\n",
            "= = =\n=\nkey =\n# BEGIN RECORD\n# END RECORD\n",
            "a b,c,d,e,f\n, ,,,,\n",
            "/nodes///\n/etc/iscsi/nodes/iqn/,,/x\n",
            "é[ü]: ß, ∂: \u{0}\n",
            "iface: 1 session requested, but 1 already present.\n",
        ];
        for g in garbage {
            run_all(g);
        }
        // Every prefix of every fixture (cut anywhere, as a killed command would leave it).
        let mut texts = Vec::new();
        if let Some(dir) = shared_dir("real") {
            for (path, text) in files_below(&dir) {
                let name = path.to_string_lossy();
                if name.contains("iscsi") || name.contains("initiatorname") {
                    texts.push(text);
                }
            }
        }
        if let Some(dir) = shared_dir("lab") {
            for name in LAB_COVERED {
                texts.push(std::fs::read_to_string(dir.join(name)).unwrap());
            }
        }
        for t in &texts {
            let cuts = t.char_indices().map(|(i, _)| i).step_by(131);
            for i in cuts {
                run_all(&t[..i]);
                run_all(&t[i..]);
            }
        }
    }
}
