//! The answers file, version 1 (CONTRACT.md): its schema, and validation that reports every
//! problem at once, each with its JSON path and how to fix it.
//!
//! The same per-field checks serve the whole-file validation of an unattended run and each
//! answer typed at a prompt ([`check_field`]), so both paths accept exactly the same values.

use std::collections::BTreeSet;
use std::fmt;

use serde_json::{Map, Value};

use crate::settings::{
    owner_message, owner_of, Answers, Discovery, EnvName, Fabric, FsType, Guid, HostAddr, HostName,
    InitiatorIqn, IpoibMode, Iqn, MountPoint, Netdev, PortKey, PortalAddr, Setting, Size,
    TargetIqn, Text, VerifySize, Wwid,
};

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

/// One key of an object, with what it means: the validator checks by `name`, `kind` and
/// `required`, and `answers --explain` and iser-wizard-answers(5) print the same entry, so a
/// key cannot be documented differently from how it is checked.
#[derive(Debug)]
pub struct Field {
    /// Key.
    pub name: &'static str,
    /// Kind of value.
    pub kind: Kind,
    /// Whether the key must be present.
    pub required: bool,
    /// The values accepted, in words, when the kind alone does not say (a string's forms);
    /// empty when it does.
    pub forms: &'static str,
    /// What an absent optional key means; empty for a required key.
    pub default: &'static str,
    /// What the key means and what the wizard does with it: paragraphs separated by a
    /// newline, one that starts with `{` or `"` being a JSON example, printed as it is.
    pub doc: &'static str,
}

const fn req(name: &'static str, kind: Kind, forms: &'static str, doc: &'static str) -> Field {
    Field {
        name,
        kind,
        required: true,
        forms,
        default: "",
        doc,
    }
}

const fn opt(
    name: &'static str,
    kind: Kind,
    forms: &'static str,
    default: &'static str,
    doc: &'static str,
) -> Field {
    Field {
        name,
        kind,
        required: false,
        forms,
        default,
        doc,
    }
}

const NETDEV_FORMS: &str = "a network interface name: 1 to 15 letters, digits, '-', '_' or '.'";
const TEXT_FORMS: &str = "one line of printable text, at most 255 bytes";

const HOST: &[Field] = &[
    req(
        "initiator_iqn",
        Kind::Str(check_initiator_iqn),
        "\"auto\", or an iSCSI name per RFC 3720 in lower case: \
         iqn.YYYY-MM.reversed.domain[:unique], eui. and 16 hex digits, or naa. and 16 or 32 \
         hex digits",
        "The host's iSCSI initiator name, which the array maps the volume to: unique per \
         host. \"auto\" keeps the one in /etc/iscsi/initiatorname.iscsi (generating one with \
         iscsi-iname when the file is missing); a name is written there.",
    ),
    req(
        "mapping_host_name",
        Kind::Str(check_host_name),
        "up to 30 letters, digits, '-' or '_'",
        "The host's name on the array (the worksheet's mapping host name). With an array \
         section the array step creates (or checks) the host of this name with the initiator \
         IQN as its port; without one, create it on the array by hand. The wizard records it \
         on the worksheet.",
    ),
    req(
        "host_os_type",
        Kind::Str(check_text),
        TEXT_FORMS,
        "The host operating system type of the host on the array (\"Linux DM-MP\" for \
         E-Series with device-mapper multipath); recorded on the worksheet.",
    ),
    opt(
        "allow_unsupported_os",
        Kind::Bool,
        "",
        "false (asked on a terminal)",
        "true goes on, at the operator's risk, on a release of a known family that the wizard \
         does not support (it supports RHEL, Rocky and Alma 8-9, SLES 15, Ubuntu 22.04 and \
         24.04, Debian 12-13), configuring it like its family; false stops such a run at \
         preflight.",
    ),
];
const PRIORITY: Kind = Kind::Int(0, 15);
const SUBNET_MANAGER: &[Field] = &[
    req(
        "run_on_host",
        Kind::Bool,
        "",
        "true starts one opensm per InfiniBand port on which no subnet manager answers, now \
         and at boot (one that answers already is left alone); false means the fabric has its \
         own (a managed switch) and the subnet-manager step is skipped.",
    ),
    opt(
        "priorities",
        Kind::Map(check_guid_or_netdev, &PRIORITY),
        "an object: each key a port GUID (0x and 16 hex digits, as `ibstat -p` prints it) or \
         the netdev of one of ports[]; each value a whole number from 0 to 15",
        "0 for every port, opensm's default (asked on a terminal)",
        "The opensm priority of each port's subnet manager: where several subnet managers \
         share a fabric, the highest priority is the master.",
    ),
];
const PORT: &[Field] = &[
    req(
        "netdev",
        Kind::Str(check_netdev),
        NETDEV_FORMS,
        "The port's IPoIB interface (InfiniBand) or Ethernet netdev (RoCE), as it is named \
         now; each listed once. The wizard maps it to its RDMA port before planning anything.",
    ),
    req(
        "address",
        Kind::Str(check_cidr),
        "an IPv4 address with its prefix length, like 192.168.130.10/24: not the network or \
         broadcast address of its subnet",
        "The port's address, made persistent with the distribution's own network stack. Each \
         port needs its own subnet (no two may overlap): a target portal belongs to the port \
         whose subnet holds it.",
    ),
    opt(
        "ipoib_mode",
        Kind::Str(check_ipoib_mode),
        "\"datagram\" or \"connected\"",
        "the mode the port runs now, datagram on Enhanced IPoIB (asked on a terminal)",
        "The IPoIB mode, on InfiniBand only: refused when fabric is \"roce\", ignored with a \
         note on a port that turns out to be RoCE. Connected mode is refused on Enhanced IPoIB \
         (mlx5: ConnectX-4 and newer), which is datagram-only.",
    ),
    opt(
        "mtu",
        Kind::Int(576, 65520),
        "",
        "the MTU is left as it is",
        "The port's MTU. On InfiniBand in datagram mode at most 4092 (IB MTU 4096 minus 4), \
         or 2044 on a fabric whose IB MTU is 2048; up to 65520 in connected mode.",
    ),
    opt(
        "persistent_name",
        Kind::Str(check_netdev),
        NETDEV_FORMS,
        "none: the interface keeps the name the kernel gives it",
        "A name pinned to the port by a udev rule on its hardware address, so it survives \
         reboots and added cards; the port is renamed now when its name differs. It must not \
         be the name of another interface.",
    ),
];
const PORT_KIND: Kind = Kind::Object(PORT);
const PORTAL: &[Field] = &[
    req(
        "address",
        Kind::Str(check_portal),
        "an IPv4 address, optionally with :PORT (3260 when absent), like 192.168.130.101",
        "The address of one of the target's iSER ports. It must lie in exactly one host \
         port's subnet (and not be that port's own address), and be listed once.",
    ),
    opt(
        "label",
        Kind::Str(check_text),
        TEXT_FORMS,
        "none",
        "A name for the portal on the worksheet and in messages, like \"Controller A, port 1\".",
    ),
];
const PORTAL_KIND: Kind = Kind::Object(PORTAL);
const CHAP: &[Field] = &[
    req(
        "username",
        Kind::Str(check_text),
        TEXT_FORMS,
        "The CHAP user name the target expects.",
    ),
    req(
        "password_env",
        Kind::Str(check_env_name),
        "an environment variable name: letters, digits and '_', not starting with a digit",
        "The name of the environment variable that holds the CHAP secret, never the secret \
         itself. A file whose variable is not set (or is empty) does not validate.",
    ),
];
const CHAP_KIND: Kind = Kind::Object(CHAP);
const TARGET: &[Field] = &[
    req(
        "iqn",
        Kind::Str(check_target_iqn),
        "\"discover\", \"from-array\", or an iSCSI name per RFC 3720 in lower case: \
         iqn.YYYY-MM.reversed.domain[:unique], eui. and 16 hex digits, or naa. and 16 or 32 \
         hex digits",
        "The target's name, as the array shows it in its iSCSI settings; \"discover\" takes \
         it from SendTargets discovery (discovery must then be \"sendtargets\"); \
         \"from-array\" reads it from the array's API (needs the array section).",
    ),
    req(
        "discovery",
        Kind::Str(check_discovery),
        "\"sendtargets\" or \"manual\"",
        "\"sendtargets\" discovers the target through its portals and logs in only to the \
         portals that lie in a host port's subnet, each from that port; \"manual\" creates \
         one node record per portal with no discovery (the vendor's Method 2).",
    ),
    opt(
        "portals",
        Kind::Array(&PORTAL_KIND, 1, 16),
        "",
        "required without an array section; with one, the array's iSER ports that are up \
         and in a host port's subnet",
        "The target's iSER ports the host logs in to, one session per portal from the port \
         whose subnet holds it. With an array section it may be left out: the array's iSER \
         ports that are up and lie in a host port's subnet are used.",
    ),
    opt(
        "chap",
        Kind::NullOr(&CHAP_KIND),
        "null, or an object with username and password_env",
        "null: no CHAP",
        "CHAP authentication of the sessions. The secret is read from the environment \
         variable password_env names, and never written to the worksheet, the log, the state \
         or recorded answers, nor passed to any child process's environment. The template \
         leaves it null because a file with CHAP validates only while that variable is set. \
         An example, with `export ISER_CHAP_SECRET=...` before the run:\n\
         \"chap\": { \"username\": \"iqn.2024-01.com.example:db01\", \
         \"password_env\": \"ISER_CHAP_SECRET\" }",
    ),
];
const ISCSI: &[Field] = &[req(
    "replacement_timeout",
    Kind::Int(1, 3600),
    "",
    "Seconds open-iscsi waits for a lost session to come back before failing its I/O up to \
     multipath (node.session.timeo.replacement_timeout, written by its full name in \
     iscsid.conf and in every node record). Short, like the vendor's 20, so multipath fails \
     over to another path quickly.",
)];
const MULTIPATH: &[Field] = &[opt(
    "rebuild_initramfs",
    Kind::Bool,
    "",
    "false (asked on a terminal)",
    "true rebuilds the initramfs when the run changes the multipath configuration, so a boot \
     from the initramfs uses the same settings.",
)];
const VOLUME: &[Field] = &[
    opt(
        "name",
        Kind::Str(check_text),
        TEXT_FORMS,
        "none; required with array",
        "The volume's name: on the worksheet and in messages. With an array section it is \
         the array's name of the volume: the array step maps it to this host, and its WWN \
         gives the WWID (wwid may then be left out); with an array section and no name, an \
         interactive run offers the array's unmapped volumes and an unattended one stops at \
         the array step naming this key. Two volumes cannot share one.",
    ),
    opt(
        "wwid",
        Kind::Str(check_wwid),
        "\"auto\", or 8 to 64 hex digits, as `multipath -ll` shows in parentheses",
        "required without an array section; with one, from the array's volume WWN",
        "The multipath WWID of the volume. \"auto\" takes the one map of the target that \
         appears, only when there is exactly one and it carries no data; otherwise the run \
         stops and lists the candidates. Among several volumes at most one is \"auto\", and \
         no two have the same WWID.",
    ),
    req(
        "partition",
        Kind::Bool,
        "",
        "true makes one GPT partition aligned at 1 MiB and the filesystem on it; false puts \
         the filesystem on the whole map.",
    ),
    req(
        "filesystem",
        Kind::Str(check_filesystem),
        "\"ext4\" or \"xfs\"",
        "The filesystem made on the volume. A device that already carries a partition table \
         or a filesystem signature is refused (exit 3) unless `run --force-format`; a mounted \
         or held device is never touched.",
    ),
    req(
        "mount_point",
        Kind::Str(check_mount_point),
        "an absolute path with no '.' or '..' component, trailing '/', white space or \
         backslash; not a system directory (/etc, /var, ...) nor inside /usr, /etc and the \
         like",
        "Where the volume is mounted (created when missing). It must not hide the wizard's \
         state directory, nor be (or lie inside) another volume's mount point.",
    ),
    req(
        "fstab",
        Kind::Bool,
        "",
        "true adds a line to /etc/fstab (by filesystem UUID, with _netdev and nofail) so the \
         volume is mounted at boot once the network is up.",
    ),
];
const VOLUME_KIND: Kind = Kind::Object(VOLUME);
/// The most volumes one answers file attaches.
pub const MAX_VOLUMES: usize = 64;
const VERIFY: &[Field] = &[req(
    "size",
    Kind::Str(check_size),
    "a whole number with B, KiB, MiB, GiB or TiB (powers of 1024), a multiple of 4 KiB, \
     from 1MiB to 64GiB, like 256MiB",
    "How much the verify step writes to a test file with O_DIRECT, each 4 KiB sector \
     stamped, and reads back from the device, checking every sector; the file is removed \
     afterwards.",
)];

const ARRAY_TLS: &[Field] = &[
    opt(
        "fingerprint_sha256",
        Kind::Str(check_fingerprint),
        "64 hex digits, colons allowed, as `openssl x509 -noout -fingerprint -sha256` prints",
        "absent: ca_file is used",
        "The SHA-256 fingerprint of the controllers' certificate, pinned (E-Series controllers \
         ship self-signed certificates). A run without it prints the fingerprint it was shown.",
    ),
    opt(
        "ca_file",
        Kind::Str(check_text),
        TEXT_FORMS,
        "absent: fingerprint_sha256 is used",
        "A PEM file of the CA that signed the controllers' certificates (which must then name \
         the controllers' addresses). When both are given, the pinned fingerprint is used.",
    ),
];
const ARRAY_TLS_KIND: Kind = Kind::Object(ARRAY_TLS);
const CONTROLLER_KIND: Kind = Kind::Str(check_controller);
const ARRAY_KIND: Kind = Kind::Object(ARRAY);
const ARRAY: &[Field] = &[
    req(
        "controllers",
        Kind::Array(&CONTROLLER_KIND, 1, 2),
        "",
        "The base URLs of the controllers' SANtricity Web Services API, A then B, like \
         \"https://10.113.1.10:8443\". The first that answers serves the run; the other is \
         tried when one does not answer.",
    ),
    req(
        "user",
        Kind::Str(check_text),
        TEXT_FORMS,
        "The API user (a storage administrator, to create hosts and mappings).",
    ),
    req(
        "password_env",
        Kind::Str(check_env_name),
        "an environment variable name: letters, digits and '_', not starting with a digit",
        "The name of the environment variable that holds the API password, never the password \
         itself: it is never written to the worksheet, the log, the state or recorded \
         answers, nor passed to any child process's environment.",
    ),
    opt(
        "tls",
        ARRAY_TLS_KIND,
        "",
        "nothing trusted: the run stops and prints the certificate's fingerprint (an \
         interactive run shows it and asks)",
        "How the controllers' certificate is trusted: a pinned fingerprint or a CA file. There \
         is no switch to accept any certificate.",
    ),
    opt(
        "system_id",
        Kind::Str(check_text),
        TEXT_FORMS,
        "\"1\", the embedded API's",
        "The storage system's id in the API.",
    ),
    opt(
        "host_type_index",
        Kind::Int(0, 255),
        "",
        "28 (Linux DM-MP, LnxDHALUA)",
        "The host type the array step gives the host it creates.",
    ),
    opt(
        "host_group",
        Kind::NullOr(&Kind::Str(check_text)),
        "null",
        "null",
        "The array's host group to map the volumes to (null: map them to the host). The \
         group is created when absent and the host made in it, or put in it when it is in no \
         group; a host already in another group is refused (exit 3). Give it when the \
         volumes are shared by a cluster; `detach --unmap` then removes the group's mapping \
         only while this host is the group's only member.",
    ),
];

/// The whole file.
pub const ROOT: &[Field] = &[
    req(
        "version",
        Kind::Int(1, 1),
        "",
        "The version of the answers file's format: this wizard reads version 1.",
    ),
    req(
        "host",
        Kind::Object(HOST),
        "",
        "The host as the array knows it.",
    ),
    req(
        "fabric",
        Kind::Str(check_fabric),
        "\"infiniband\", \"roce\" or \"auto\"",
        "The RDMA fabric; \"auto\" tells it from each port's link layer. On RoCE there is no \
         subnet manager and no IPoIB: each port's address goes on its Ethernet netdev.",
    ),
    // Optional: RoCE has no subnet manager; on InfiniBand, run_on_host defaults to true.
    opt(
        "subnet_manager",
        Kind::Object(SUBNET_MANAGER),
        "",
        "on InfiniBand, run_on_host true with every priority 0; nothing on RoCE",
        "Where the InfiniBand fabric's subnet manager runs. RoCE has none, so the section \
         may be left out there.",
    ),
    req(
        "ports",
        Kind::Array(&PORT_KIND, 1, 8),
        "",
        "The host's iSER ports, each in its own subnet.",
    ),
    req(
        "target",
        Kind::Object(TARGET),
        "",
        "The iSCSI target: the array's name and iSER ports.",
    ),
    req("iscsi", Kind::Object(ISCSI), "", "open-iscsi settings."),
    opt(
        "multipath",
        Kind::Object(MULTIPATH),
        "",
        "rebuild_initramfs false",
        "device-mapper multipath settings.",
    ),
    opt(
        "volume",
        Kind::Object(VOLUME),
        "",
        "none: then `volumes` is required",
        "The volume: which multipath map, and how it is partitioned, formatted and mounted. \
         The same as `volumes` with one entry; give one of the two, not both.",
    ),
    opt(
        "volumes",
        Kind::Array(&VOLUME_KIND, 1, MAX_VOLUMES),
        "",
        "none: then `volume` is required",
        "Several volumes, each with the keys of `volume`: each gets its own map, partition, \
         filesystem, mount and fstab line. Adding one to the list and running again attaches \
         it on a host already set up (the sessions are rescanned for the new LUN), leaving \
         the others as they are; removing one from the list does not detach it. Two entries:\n\
         { \"name\": \"db\", \"wwid\": \"auto\", \"partition\": true, \"filesystem\": \"xfs\", \
         \"mount_point\": \"/mnt/db\", \"fstab\": true }\n\
         { \"name\": \"logs\", \"wwid\": \"3600140512f5e8a2c4b1d4e6f8a0b2c4d\", \
         \"partition\": true, \"filesystem\": \"ext4\", \"mount_point\": \"/mnt/logs\", \
         \"fstab\": true }",
    ),
    req(
        "verify",
        Kind::Object(VERIFY),
        "",
        "The write and read-back check of the mounted volume.",
    ),
    opt(
        "array",
        Kind::NullOr(&ARRAY_KIND),
        "null, or an object with controllers, user, password_env and tls",
        "null: the array side is done by hand in SANtricity System Manager",
        "The array's SANtricity Web Services API: the array step creates the host (named \
         host.mapping_host_name, the initiator IQN as its port) and maps each named volume \
         (volume.name) to it, and the target IQN (target.iqn \"from-array\"), the portals \
         (target.portals left out) and each volume's WWID (wwid left out) come from the \
         array. The template leaves it null. An example, with `export \
         ISER_ARRAY_PASSWORD=...` before the run:\n\
         \"array\": { \"controllers\": [\"https://10.113.1.10:8443\", \
         \"https://10.113.1.11:8443\"], \"user\": \"admin\", \"password_env\": \
         \"ISER_ARRAY_PASSWORD\", \"tls\": { \"fingerprint_sha256\": \"AB:CD:...:EF\" } }",
    ),
];

/// No value of the answers file is valid beyond this many bytes.
const LONGEST_VALUE: usize = 1024;

/// A value as messages show it: whole when short, else its start and its length.
pub fn cut(s: &str) -> String {
    const SHOWN: usize = 60;
    if s.len() <= SHOWN {
        return s.to_string();
    }
    let mut end = SHOWN;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{:?}... ({} bytes)", &s[..end], s.len())
}

fn parses<T: Setting>(s: &str) -> Result<(), String> {
    s.parse::<T>().map(drop)
}

/// Free text that may land in a file: printable, one line, at most 255 bytes.
pub fn check_text(s: &str) -> Result<(), String> {
    parses::<Text>(s)
}

fn check_host_name(s: &str) -> Result<(), String> {
    parses::<HostName>(s)
}

/// An iSCSI name per RFC 3720 section 3.2.6.3 ([`Iqn`]).
pub fn check_iscsi_name(s: &str) -> Result<(), String> {
    parses::<Iqn>(s)
}

fn check_initiator_iqn(s: &str) -> Result<(), String> {
    parses::<InitiatorIqn>(s)
}

fn check_target_iqn(s: &str) -> Result<(), String> {
    parses::<TargetIqn>(s)
}

fn check_fabric(s: &str) -> Result<(), String> {
    parses::<Fabric>(s)
}
fn check_ipoib_mode(s: &str) -> Result<(), String> {
    parses::<IpoibMode>(s)
}
fn check_discovery(s: &str) -> Result<(), String> {
    parses::<Discovery>(s)
}
fn check_filesystem(s: &str) -> Result<(), String> {
    parses::<FsType>(s)
}

/// A port GUID: `0x` and 16 hex digits.
pub fn check_guid(s: &str) -> Result<(), String> {
    parses::<Guid>(s)
}

fn check_guid_or_netdev(s: &str) -> Result<(), String> {
    parses::<PortKey>(s)
}

/// A network interface name as the kernel accepts it.
pub fn check_netdev(s: &str) -> Result<(), String> {
    parses::<Netdev>(s)
}

fn check_cidr(s: &str) -> Result<(), String> {
    parses::<HostAddr>(s)
}

fn check_portal(s: &str) -> Result<(), String> {
    parses::<PortalAddr>(s)
}

fn check_fingerprint(s: &str) -> Result<(), String> {
    parses::<crate::steps::array::client::Fingerprint>(s)
}
fn check_controller(s: &str) -> Result<(), String> {
    check_text(s)?;
    if !s.starts_with("https://") || s.len() <= "https://".len() {
        return Err(format!(
            "{s:?} is not an https:// URL: give the controller's API base, like \
             \"https://10.113.1.10:8443\" (the API carries the password, so plain http is \
             refused)"
        ));
    }
    Ok(())
}
fn check_env_name(s: &str) -> Result<(), String> {
    parses::<EnvName>(s)
}

/// A multipath WWID: hex digits, as `multipath -ll` shows in parentheses, or "auto".
pub fn check_wwid(s: &str) -> Result<(), String> {
    parses::<Wwid>(s)
}

fn check_mount_point(s: &str) -> Result<(), String> {
    parses::<MountPoint>(s)
}

/// A size with a unit (`256MiB`): bytes.
pub fn parse_size(s: &str) -> Option<u64> {
    Size::parse_bytes(s)
}

fn check_size(s: &str) -> Result<(), String> {
    parses::<VerifySize>(s)
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
    strsim::levenshtein(a, b)
}

fn check_value(v: &Value, kind: &Kind, path: &str, out: &mut Vec<Problem>) {
    let mut bad = |message: String| {
        out.push(Problem {
            path: path.to_string(),
            message,
        })
    };
    match (kind, v) {
        // A value far longer than any valid one is not echoed back whole.
        (Kind::Str(_), Value::String(s)) if s.len() > LONGEST_VALUE => bad(format!(
            "is {} bytes long, far longer than any value here: {}",
            s.len(),
            cut(s)
        )),
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
            // "Did you mean" only for keys of a plausible length: a distance over a huge
            // key costs time and says nothing.
            let near = fields
                .iter()
                .filter(|_| k.len() <= 64)
                .map(|f| (distance(k, f.name), f.name))
                .min()
                .filter(|(d, _)| *d <= 3);
            out.push(Problem {
                path: join(path, &cut(k)),
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
    one_of_volume_and_volumes(map, &mut out);
    // Required unless the array gives them (its iSER ports; each volume's WWN).
    if map.get("array").is_none_or(Value::is_null) {
        let mut need = |path: String, o: &Map<String, Value>, key: &str, kind: Kind| {
            if !o.contains_key(key) {
                out.push(Problem {
                    path: format!("{path}.{key}"),
                    message: format!(
                        "is missing: add it ({}), or add an array section that gives it; \
                         `iser-wizard answers --template` shows every key",
                        describe(&kind)
                    ),
                });
            }
        };
        if let Some(Value::Object(o)) = map.get("target") {
            need(
                "target".into(),
                o,
                "portals",
                Kind::Array(&PORTAL_KIND, 1, 16),
            );
        }
        if let Some(Value::Object(o)) = map.get("volume") {
            need("volume".into(), o, "wwid", Kind::Str(check_wwid));
        }
        if let Some(Value::Array(list)) = map.get("volumes") {
            for (i, v) in list.iter().enumerate() {
                if let Value::Object(o) = v {
                    need(format!("volumes[{i}]"), o, "wwid", Kind::Str(check_wwid));
                }
            }
        }
    }
    let typed = typed(v, &out);
    cross_checks(&typed, env, &mut out);
    volume_checks(&typed, &mut out);
    out
}

/// `volume` and `volumes` are two spellings of one list: exactly one of them is given.
fn one_of_volume_and_volumes(map: &Map<String, Value>, out: &mut Vec<Problem>) {
    match (map.contains_key("volume"), map.contains_key("volumes")) {
        (true, true) => out.push(Problem {
            path: "volumes".into(),
            message: "is given together with `volume`: give one of them. Move the `volume` \
                      object into the `volumes` list and remove the `volume` key"
                .into(),
        }),
        (false, false) => out.push(Problem {
            path: "volume".into(),
            message: "is missing: add it (an object), or `volumes` (a list of such objects) \
                      for several; `iser-wizard answers --template` shows every key"
                .into(),
        }),
        _ => {}
    }
}

/// The JSON path of volume `i` as the file spells it: `volume` or `volumes[i]`.
pub fn volume_path(a: &Answers, i: usize) -> String {
    if a.volumes.is_some() {
        format!("volumes[{i}]")
    } else {
        "volume".into()
    }
}

/// Checks across volumes: at most one `"auto"` WWID (none with an `array` section, which
/// gives every WWID), and no WWID, name or mount point shared by two volumes (nor a mount
/// point inside another's, which would hide it or depend on its mount order).
fn volume_checks(a: &Answers, out: &mut Vec<Problem>) {
    let list = a.volume_list();
    let mut bad = |i: usize, key: &str, message: String| {
        out.push(Problem {
            path: format!("{}.{key}", volume_path(a, i)),
            message,
        })
    };
    let mut auto: Option<usize> = None;
    for (i, v) in list.iter().enumerate() {
        if v.wwid != Some(Wwid::Auto) {
            continue;
        }
        if a.array.is_some() {
            bad(
                i,
                "wwid",
                "\"auto\" is not needed with the array section, which gives each volume's \
                 WWID: remove the wwid key (or give the WWID the array shows)"
                    .into(),
            );
        } else if let Some(first) = auto {
            bad(
                i,
                "wwid",
                format!(
                    "\"auto\" is already the WWID of {}: only one volume can be the one \
                     empty LUN of the target. Give this one its WWID (`multipath -ll` shows \
                     it in parentheses)",
                    volume_path(a, first)
                ),
            );
        } else {
            auto = Some(i);
        }
    }
    for (i, v) in list.iter().enumerate() {
        for (j, w) in list.iter().enumerate().take(i) {
            let other = volume_path(a, j);
            if let (Some(Wwid::Id(x)), Some(Wwid::Id(y))) = (&v.wwid, &w.wwid) {
                if x == y {
                    bad(
                        i,
                        "wwid",
                        format!("{x} is also the WWID of {other}: each volume is its own LUN"),
                    );
                }
            }
            if let (Some(x), Some(y)) = (&v.name, &w.name) {
                if x == y {
                    bad(i, "name", format!("{x} is also the name of {other}"));
                }
            }
            if let (Some(x), Some(y)) = (&v.mount_point, &w.mount_point) {
                let (px, py) = (
                    std::path::Path::new(x.as_str()),
                    std::path::Path::new(y.as_str()),
                );
                if px == py {
                    bad(
                        i,
                        "mount_point",
                        format!("{x} is also the mount point of {other}: give each volume its own"),
                    );
                } else if px.starts_with(py) || py.starts_with(px) {
                    bad(
                        i,
                        "mount_point",
                        format!(
                            "{x} and {y} (the mount point of {other}) lie one inside the other: \
                             one mount would hide the other or depend on its order; give each \
                             volume a directory of its own"
                        ),
                    );
                }
            }
        }
    }
}

/// The largest answers file read: a real one is a few KiB.
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// Parse the text of an answers file into JSON, with every duplicate key reported (JSON
/// readers keep the last value silently; a typo'd repeat must not pass) and a message that
/// names the likely cause when the text is not JSON at all.
pub fn parse_text(text: &str) -> Result<Value, Vec<Problem>> {
    let one = |path: String, message: String| vec![Problem { path, message }];
    if text.starts_with('\u{feff}') {
        return Err(one(
            "line 1 column 1".into(),
            "the file starts with a byte-order mark (an editor saved it as \"UTF-8 with BOM\"): \
             save it as plain UTF-8"
                .into(),
        ));
    }
    let dups = std::cell::RefCell::new(Vec::new());
    let mut de = serde_json::Deserializer::from_str(text);
    let parsed = serde::de::DeserializeSeed::deserialize(
        Tree {
            path: String::new(),
            dups: &dups,
        },
        &mut de,
    )
    .and_then(|v| de.end().map(|()| v));
    match parsed {
        Ok(v) => {
            let dups = dups.into_inner();
            if dups.is_empty() {
                Ok(v)
            } else {
                Err(dups)
            }
        }
        Err(e) => Err(one(
            format!("line {} column {}", e.line(), e.column()),
            format!("not valid JSON: {e}{}", likely_cause(text)),
        )),
    }
}

/// Why a text that is not JSON is probably not: comments, YAML.
fn likely_cause(text: &str) -> &'static str {
    let lines = || text.lines().map(str::trim_start);
    if lines().any(|l| l.starts_with("//") || l.starts_with("/*") || l.starts_with('#')) {
        return "; JSON has no comments: remove the lines that start with //, /* or #";
    }
    let first = text.trim_start();
    if !first.starts_with('{')
        && lines().any(|l| {
            l.split_once(':')
                .is_some_and(|(k, _)| !k.is_empty() && !k.contains('"') && !k.contains(' '))
        })
    {
        return "; this looks like YAML, but the answers file is JSON: start from \
                `iser-wizard answers --template`";
    }
    ""
}

/// A JSON value read with its path known, so a duplicate key is reported where it is.
struct Tree<'a> {
    path: String,
    dups: &'a std::cell::RefCell<Vec<Problem>>,
}

impl<'de> serde::de::DeserializeSeed<'de> for Tree<'_> {
    type Value = Value;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Tree<'_> {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
        Ok(Value::from(n))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
        Ok(Value::from(n))
    }
    fn visit_f64<E>(self, n: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_string()))
    }
    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(Tree {
            path: format!("{}[{}]", self.path, out.len()),
            dups: self.dups,
        })? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(k) = map.next_key::<String>()? {
            let path = join(&self.path, &k);
            let v = map.next_value_seed(Tree {
                path: path.clone(),
                dups: self.dups,
            })?;
            if out.insert(k, v).is_some() {
                self.dups.borrow_mut().push(Problem {
                    path,
                    message: "is given twice in this object; JSON readers would keep only the \
                              last one: keep one"
                        .into(),
                });
            }
        }
        Ok(Value::Object(out))
    }
}

/// A mount point inside the wizard's own state directory would hide its state (each volume's,
/// at its path as the file spells it).
pub fn check_against_state_dir(v: &Value, state_dir: &std::path::Path) -> Vec<Problem> {
    volume_values(v)
        .into_iter()
        .filter_map(|(path, vol)| {
            let mp = std::path::Path::new(vol.get("mount_point")?.as_str()?);
            let sd = state_dir;
            (mp.starts_with(sd) || sd.starts_with(mp)).then(|| Problem {
                path: format!("{path}.mount_point"),
                message: format!(
                    "{} would hide the wizard's state directory {}: choose another mount point",
                    mp.display(),
                    sd.display()
                ),
            })
        })
        .collect()
}

/// Each volume object of a file with its path: `volume`, or `volumes[i]`.
fn volume_values(v: &Value) -> Vec<(String, &Value)> {
    let mut out: Vec<(String, &Value)> = v
        .get("volume")
        .filter(|x| x.is_object())
        .map(|x| ("volume".to_string(), x))
        .into_iter()
        .collect();
    if let Some(list) = v.get("volumes").and_then(Value::as_array) {
        out.extend(
            list.iter()
                .enumerate()
                .map(|(i, x)| (format!("volumes[{i}]"), x)),
        );
    }
    out
}

/// The problems of a partial answers file: every check of [`validate`] on the values that
/// are there (a missing key is asked for later, not a problem yet), no cross-field checks.
pub fn check_partial(v: &Value) -> Vec<Problem> {
    let mut out = Vec::new();
    if let Value::Object(map) = v {
        check_object(map, ROOT, "", &mut out);
    }
    out.retain(|p| !p.message.starts_with("is missing"));
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
    ] {
        if let Some(x) = s(v, &path).filter(|x| always || *x != "auto") {
            out.push(format!("{key} ({x})"));
        }
    }
    for (path, vol) in volume_values(v) {
        if let Some(x) = s(vol, &["wwid"]).filter(|x| *x != "auto") {
            out.push(format!("{path}.wwid ({x})"));
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

/// The typed answers of a file, leaving out every value with a problem (those are reported
/// already): what the cross-field checks and a lenient reader (tests, a partial file at an
/// interactive run) work on.
pub fn typed(v: &Value, problems: &[Problem]) -> Answers {
    let mut v = v.clone();
    for p in problems {
        remove_path(&mut v, &p.path);
    }
    let Value::Object(map) = v else {
        return Answers::default();
    };
    // Section by section, so one that still does not read drops alone.
    let mut good = Map::new();
    for (k, x) in map {
        let mut one = Map::new();
        one.insert("version".into(), Value::from(1));
        one.insert(k.clone(), x.clone());
        if serde_json::from_value::<Answers>(Value::Object(one)).is_ok() {
            good.insert(k, x);
        }
    }
    good.insert("version".into(), Value::from(1));
    serde_json::from_value(Value::Object(good)).unwrap_or_default()
}

/// Remove the value at a problem's path (`ports[1].address`, `volume.mount_pint`).
fn remove_path(v: &mut Value, path: &str) {
    let (parent, last) = match path.rsplit_once('.') {
        Some((p, l)) => (crate::prompt::get_path_mut(v, p), l),
        None => (Some(v), path),
    };
    let Some(parent) = parent else { return };
    match last.split_once('[') {
        None => {
            if let Some(m) = parent.as_object_mut() {
                m.remove(last);
            }
        }
        Some((key, _)) => {
            // A bad list item: the list drops, its items cannot be read one by one.
            if let Some(m) = parent.as_object_mut() {
                m.remove(key);
            }
        }
    }
}

fn cross_checks(a: &Answers, env: &dyn Fn(&str) -> Option<String>, out: &mut Vec<Problem>) {
    let mut bad = |path: String, message: String| out.push(Problem { path, message });
    let fabric = a.fabric.unwrap_or(Fabric::Auto);
    let ports = a.ports.as_deref().unwrap_or(&[]);
    let mut nets: Vec<(usize, HostAddr)> = Vec::new();
    let mut netdevs = BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        if let Some(netdev) = &p.netdev {
            if !netdevs.insert(netdev.clone()) {
                bad(
                    format!("ports[{i}].netdev"),
                    format!("{netdev} is listed twice: one entry per port"),
                );
            }
        }
        if let Some(addr) = p.address {
            for (j, other) in &nets {
                if addr.overlaps(other) {
                    bad(
                        format!("ports[{i}].address"),
                        format!(
                            "is in the same subnet as ports[{j}].address: each host port needs its own subnet, or the target ports cannot be told apart"
                        ),
                    );
                }
            }
            nets.push((i, addr));
        }
        if fabric == Fabric::Roce && p.ipoib_mode == Some(IpoibMode::Connected) {
            bad(
                format!("ports[{i}].ipoib_mode"),
                "connected mode is IPoIB's; on RoCE there is no IPoIB: remove ipoib_mode".into(),
            );
        }
        if let Some(mtu) = p.mtu {
            if fabric == Fabric::Infiniband
                && p.ipoib_mode != Some(IpoibMode::Connected)
                && mtu > 4092
            {
                bad(
                    format!("ports[{i}].mtu"),
                    format!("{mtu} is above 4092, the largest IPoIB datagram-mode MTU (IB MTU 4096 - 4): use 4092 or 2044"),
                );
            }
        }
    }
    let prios = a
        .subnet_manager
        .as_ref()
        .and_then(|m| m.priorities.as_ref());
    for k in prios.into_iter().flat_map(|p| p.keys()) {
        if let PortKey::Netdev(n) = k {
            if !netdevs.contains(n) {
                bad(
                    format!("subnet_manager.priorities.{k}"),
                    format!(
                        "{k} is not one of the ports' netdevs: name a port GUID or a listed netdev"
                    ),
                );
            }
        }
    }
    if a.target.discovery == Some(Discovery::Manual) && a.target.iqn == Some(TargetIqn::Discover) {
        bad(
            "target.iqn".into(),
            "\"discover\" needs SendTargets discovery, but target.discovery is \"manual\": give the target IQN, or use \"sendtargets\"".into(),
        );
    }
    if a.target.iqn == Some(TargetIqn::FromArray) && a.array.is_none() {
        bad(
            "target.iqn".into(),
            "\"from-array\" reads the target from the array's API: add the array section, or give the target IQN, or \"discover\"".into(),
        );
    }
    // With a port address unreadable, subnet membership would only repeat that problem.
    let ports_readable = nets.len() == ports.len();
    let labelled: Vec<(Netdev, HostAddr)> = ports
        .iter()
        .zip(&nets)
        .map(|(p, (i, a))| {
            let name = p
                .netdev
                .clone()
                .or_else(|| format!("port{}", i + 1).parse().ok());
            (name.expect("port<N> is a valid name"), *a)
        })
        .collect();
    let addrs: Vec<HostAddr> = nets.iter().map(|(_, a)| *a).collect();
    let mut seen = BTreeSet::new();
    for (i, p) in a.target.portals.iter().flatten().enumerate() {
        let ip = p.address.ip();
        if !seen.insert(ip) {
            bad(
                format!("target.portals[{i}].address"),
                format!("{ip} is listed twice"),
            );
        }
        if nets.is_empty() || !ports_readable {
            continue;
        }
        if let Err(e) = owner_of(&addrs, ip) {
            bad(
                format!("target.portals[{i}].address"),
                owner_message(&labelled, ip, e),
            );
        }
    }
    if let Some(Some(chap)) = &a.target.chap {
        let var = chap.password_env.as_str();
        if env(var).is_none_or(|x| x.is_empty()) {
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

    /// The template with its `volume` moved into a `volumes` list of `n` copies, each with
    /// its own WWID and mount point.
    fn with_volumes(n: usize) -> Value {
        let mut v = template();
        let one = v.as_object_mut().unwrap().remove("volume").unwrap();
        let list: Vec<Value> = (0..n)
            .map(|i| {
                let mut x = one.clone();
                x["wwid"] = json!(format!("36001405{i:024x}"));
                x["mount_point"] = json!(format!("/mnt/v{i}"));
                x["name"] = json!(format!("v{i}"));
                x
            })
            .collect();
        v["volumes"] = json!(list);
        v
    }

    #[test]
    fn volumes_is_a_list_and_volume_a_list_of_one() {
        assert_eq!(problems(&with_volumes(3)), Vec::<String>::new());
        let a = typed(&with_volumes(3), &[]);
        assert_eq!(a.volume_list().len(), 3);
        assert_eq!(
            a.volume_list()[2].mount_point.as_ref().unwrap().as_str(),
            "/mnt/v2"
        );
        assert_eq!(typed(&template(), &[]).volume_list().len(), 1);
        let mut none = template();
        none.as_object_mut().unwrap().remove("volume");
        assert!(
            problems(&none)
                .iter()
                .any(|p| p.starts_with("volume: is missing: add it (an object), or `volumes`")),
            "{:?}",
            problems(&none)
        );
        let mut empty = with_volumes(1);
        empty["volumes"] = json!([]);
        assert!(problems(&empty)
            .iter()
            .any(|p| p.starts_with("volumes: has 0 entries")));
    }

    #[test]
    fn volume_and_volumes_together_are_refused_naming_the_fix() {
        let mut v = with_volumes(2);
        v["volume"] = template()["volume"].clone();
        let p = problems(&v);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].starts_with("volumes: is given together with `volume`"));
        assert!(p[0].contains("Move the `volume` object into the `volumes` list"));
    }

    #[test]
    fn one_auto_wwid_at_most_and_none_with_an_array() {
        let mut v = with_volumes(3);
        v["volumes"][0]["wwid"] = json!("auto");
        assert_eq!(problems(&v), Vec::<String>::new());
        v["volumes"][2]["wwid"] = json!("auto");
        assert_eq!(
            problems(&v),
            [
                "volumes[2].wwid: \"auto\" is already the WWID of volumes[0]: only one volume \
              can be the one empty LUN of the target. Give this one its WWID (`multipath -ll` \
              shows it in parentheses)"
            ]
        );
        // The array section gives the WWIDs (its schema is another feature's; the rule is
        // checked on the typed answers).
        let mut a = typed(&template(), &[]);
        a.array = Some(
            serde_json::from_value(json!({
                "controllers": ["https://10.0.0.1:8443"], "user": "admin",
                "password_env": "ISER_ARRAY_PASSWORD"
            }))
            .unwrap(),
        );
        let mut out = Vec::new();
        volume_checks(&a, &mut out);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].path, "volume.wwid");
        assert!(out[0].message.contains("with the array section"));
    }

    #[test]
    fn two_volumes_cannot_share_a_wwid_a_name_or_a_mount_point() {
        let mut v = with_volumes(3);
        v["volumes"][1]["wwid"] = v["volumes"][0]["wwid"].clone();
        v["volumes"][2]["name"] = json!("v0");
        v["volumes"][2]["mount_point"] = json!("/mnt/v1");
        let p = problems(&v);
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(p[0].starts_with("volumes[1].wwid: 36001405"), "{p:?}");
        assert!(p[0].ends_with("is also the WWID of volumes[0]: each volume is its own LUN"));
        assert_eq!(p[1], "volumes[2].name: v0 is also the name of volumes[0]");
        assert_eq!(
            p[2],
            "volumes[2].mount_point: /mnt/v1 is also the mount point of volumes[1]: give each \
             volume its own"
        );
        let mut nested = with_volumes(2);
        nested["volumes"][1]["mount_point"] = json!("/mnt/v0/logs");
        let p = problems(&nested);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].starts_with("volumes[1].mount_point: /mnt/v0/logs and /mnt/v0 (the mount point of volumes[0]) lie one inside the other"));
        // Different directories that share a prefix are not nested.
        nested["volumes"][1]["mount_point"] = json!("/mnt/v00");
        assert_eq!(problems(&nested), Vec::<String>::new());
    }

    #[test]
    fn every_volume_is_checked_against_the_state_dir_and_named_as_this_hosts() {
        let mut v = with_volumes(2);
        v["volumes"][1]["mount_point"] = json!("/var/lib/iser-wizard");
        let p = check_against_state_dir(&v, std::path::Path::new("/var/lib/iser-wizard"));
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].path, "volumes[1].mount_point");
        let named = host_specific(&with_volumes(2));
        assert!(
            named.contains(&format!("volumes[1].wwid (36001405{:024x})", 1)),
            "{named:?}"
        );
        // A bad item is reported at its own path.
        let mut bad = with_volumes(2);
        bad["volumes"][1]["mount_pint"] = json!("/mnt/x");
        assert!(problems(&bad)
            .iter()
            .any(|p| p == "volumes[1].mount_pint: unknown key: did you mean \"mount_point\"?"));
        assert!(check_field("volumes[0].mount_point", &json!("/etc")).is_err());
        assert!(check_field("volumes[3].name", &json!("logs")).is_ok());
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
    fn from_array_needs_the_array_section() {
        let mut v = template();
        v["target"]["iqn"] = json!("from-array");
        let p = problems(&v);
        assert_eq!(p.len(), 1, "{p:#?}");
        assert!(
            p[0].starts_with("target.iqn: \"from-array\" reads the target from the array's API"),
            "{p:#?}"
        );
    }

    fn with_array() -> Value {
        let mut v = template();
        v["target"]["iqn"] = json!("from-array");
        v["target"].as_object_mut().unwrap().remove("portals");
        v["volume"].as_object_mut().unwrap().remove("wwid");
        v["volume"]["name"] = json!("db01_data");
        v["array"] = json!({
            "controllers": ["https://10.113.1.10:8443", "https://10.113.1.11:8443"],
            "user": "admin",
            "password_env": "ISER_ARRAY_PASSWORD",
            "tls": {"fingerprint_sha256": "AB".repeat(32)},
            "host_type_index": 28
        });
        v
    }

    #[test]
    fn an_array_section_lets_target_iqn_portals_and_wwid_come_from_the_array() {
        assert_eq!(problems(&with_array()), Vec::<String>::new());
    }

    #[test]
    fn the_array_section_is_checked_key_by_key() {
        let mut v = with_array();
        v["array"]["controllers"] = json!(["http://10.113.1.10:8080"]);
        v["array"]["tls"]["fingerprint_sha256"] = json!("AB:CD");
        v["array"]["insecure"] = json!(true);
        let p = problems(&v).join("\n");
        for want in [
            "array.controllers[0]: ",
            "array.tls.fingerprint_sha256: ",
            "array.insecure: ",
        ] {
            assert!(p.contains(want), "{want} in {p}");
        }
        let mut v = with_array();
        v["array"]["host_group"] = json!("cluster1");
        assert_eq!(problems(&v), Vec::<String>::new());
        v["array"]["host_group"] = json!("");
        assert!(
            problems(&v).join("\n").contains("array.host_group"),
            "an empty group name is refused"
        );
    }

    #[test]
    fn without_an_array_section_portals_and_wwid_stay_required() {
        let mut v = template();
        v["target"].as_object_mut().unwrap().remove("portals");
        v["volume"].as_object_mut().unwrap().remove("wwid");
        let p = problems(&v).join("\n");
        assert!(p.contains("target.portals: is missing"), "{p}");
        assert!(p.contains("volume.wwid: is missing"), "{p}");
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
