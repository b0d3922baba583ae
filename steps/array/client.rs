//! A client for the SANtricity Web Services API embedded on each E-Series controller
//! (DOMAIN.md "SANtricity REST API").
//!
//! Contract:
//! - HTTPS only, through our own rustls configuration. The controller's certificate is
//!   trusted either because its SHA-256 fingerprint equals the pinned one, or because it
//!   chains to the CA file given; there is no "accept anything". Any other certificate is
//!   refused with [`ArrayError::Certificate`], which carries the fingerprint seen so the
//!   operator can compare it with the controller's and pin it.
//! - HTTP Basic auth; the password is a [`Secret`] whose `Debug`/`Display` never show it,
//!   and the client never logs request headers.
//! - [`Client::connect`] probes `GET /devmgr/utils/about` on each controller in turn; the
//!   first that answers serves every later call. A call that cannot reach the serving
//!   controller (connect failure or timeout) is retried once on each other controller.
//! - Every call is bounded by [`Timeouts`].
//! - A 4xx/5xx answer becomes [`ArrayError::Api`] with the array's own `errorMessage`.
//! - Responses are typed (serde, unknown fields ignored, as firmware adds fields); the two
//!   shapes of IB iSER host interfaces (before and after firmware 11.60.2) are both read by
//!   [`iser_ports`].

use std::fmt;
use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::blocking::Response;
use reqwest::{Method, StatusCode};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A password: never shown by `Debug` or `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap a password.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// A SHA-256 certificate fingerprint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// The fingerprint of a DER certificate.
    pub fn of(der: &[u8]) -> Self {
        Fingerprint(Sha256::digest(der).into())
    }
}

impl fmt::Display for Fingerprint {
    /// `AB:CD:...`, as `openssl x509 -fingerprint -sha256` prints it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hex: Vec<String> = self.0.iter().map(|b| format!("{b:02X}")).collect();
        f.write_str(&hex.join(":"))
    }
}

impl std::str::FromStr for Fingerprint {
    type Err = String;
    /// Hex with or without colons (or spaces), either case: 64 hex digits.
    fn from_str(s: &str) -> Result<Self, String> {
        let hex: String = s
            .chars()
            .filter(|c| !matches!(c, ':' | ' ' | '-'))
            .collect();
        if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(format!(
                "{s:?} is not a SHA-256 fingerprint: give 64 hex digits (colons allowed), as \
                 `openssl x509 -noout -fingerprint -sha256` prints them"
            ));
        }
        let mut out = [0u8; 32];
        for (i, b) in out.iter_mut().enumerate() {
            *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|e| e.to_string())?;
        }
        Ok(Fingerprint(out))
    }
}

/// How the controllers' certificate is trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// The end certificate's SHA-256 fingerprint must equal this (self-signed controllers).
    Pin(Fingerprint),
    /// The certificate must chain to one of these CA certificates (PEM file) and name the
    /// controller's host.
    CaFile(std::path::PathBuf),
    /// Nothing is trusted: every connection is refused with the fingerprint seen, so the
    /// operator can pin it. Used to show the fingerprint before it is confirmed.
    Nothing,
}

/// Bounds on each call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP connect plus TLS handshake.
    pub connect: Duration,
    /// The whole request, from connect to the last byte of the body.
    pub total: Duration,
}

impl Default for Timeouts {
    /// The embedded API answers in well under a second; 5 s to connect lets a dead
    /// controller be passed over quickly, 30 s covers a slow `POST volume-mappings`.
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(5),
            total: Duration::from_secs(30),
        }
    }
}

/// Where and how to reach the array.
#[derive(Debug, Clone)]
pub struct Config {
    /// Controller base URLs (`https://10.113.1.10:8443`), tried in order.
    pub controllers: Vec<String>,
    /// The API user.
    pub user: String,
    /// Its password.
    pub password: Secret,
    /// Certificate trust.
    pub trust: Trust,
    /// Storage system id (`1` on the embedded API).
    pub system_id: String,
    /// Bounds on each call.
    pub timeouts: Timeouts,
}

/// Why a call to the array failed. Callers branch on the kind (a certificate to confirm,
/// a password to ask again).
#[derive(Debug, thiserror::Error)]
pub enum ArrayError {
    /// The controller's certificate is not the pinned one / not signed by the CA.
    #[error(
        "{controller}: the certificate is not trusted ({reason}); its SHA-256 fingerprint is \
         {fingerprint}: if that is the controller's (System Manager shows it under Settings > \
         Certificates), pin it as array.tls.fingerprint_sha256"
    )]
    Certificate {
        /// The controller URL.
        controller: String,
        /// The fingerprint of the certificate the controller presented.
        fingerprint: Fingerprint,
        /// What did not match.
        reason: String,
    },
    /// No controller answered.
    #[error("no controller answered:\n    - {}", .tried.join("\n    - "))]
    Unreachable {
        /// Each controller with what happened.
        tried: Vec<String>,
    },
    /// 401: user or password refused.
    #[error(
        "{controller}: the array refused user {user:?} (HTTP 401): check array.user and the \
         password"
    )]
    Unauthorized {
        /// The controller URL.
        controller: String,
        /// The user.
        user: String,
    },
    /// Any other error status, with the array's message.
    #[error("{method} {path}: HTTP {status}: {message}")]
    Api {
        /// The method.
        method: String,
        /// The path below the storage system.
        path: String,
        /// The status code.
        status: u16,
        /// The array's `errorMessage` (or the body, or the status text).
        message: String,
    },
    /// The answer did not have the expected shape.
    #[error("{path}: unexpected answer: {reason}")]
    Decode {
        /// The path.
        path: String,
        /// What did not parse.
        reason: String,
    },
    /// The configuration cannot be used (CA file unreadable, bad URL).
    #[error("{0}")]
    Config(String),
}

/// What the certificate verifier saw on the last refused handshake.
type Seen = Arc<Mutex<Option<(Fingerprint, String)>>>;

/// Pins by fingerprint or checks against a CA, and remembers what it refused so the
/// error can name the certificate's fingerprint (rustls' own error cannot carry it).
#[derive(Debug)]
struct Verifier {
    trust: VerifierTrust,
    provider: Arc<rustls::crypto::CryptoProvider>,
    refused: Seen,
}

#[derive(Debug)]
enum VerifierTrust {
    Pin(Fingerprint),
    Ca(Arc<WebPkiServerVerifier>),
    Nothing,
}

impl Verifier {
    fn refuse(&self, fp: Fingerprint, why: String) -> rustls::Error {
        *self.refused.lock().unwrap_or_else(|e| e.into_inner()) = Some((fp, why.clone()));
        rustls::Error::General(why)
    }
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let fp = Fingerprint::of(end_entity.as_ref());
        match &self.trust {
            // A pinned certificate is the controller's identity: its name and dates do not
            // matter (controllers ship self-signed certificates for their factory names).
            VerifierTrust::Pin(want) if *want == fp => Ok(ServerCertVerified::assertion()),
            VerifierTrust::Pin(_) => Err(self.refuse(fp, "not the pinned certificate".into())),
            VerifierTrust::Ca(v) => v
                .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
                .map_err(|e| self.refuse(fp, format!("not valid for the CA file: {e}"))),
            VerifierTrust::Nothing => Err(self.refuse(
                fp,
                "neither array.tls.fingerprint_sha256 nor array.tls.ca_file is given".into(),
            )),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // The handshake signature is still checked: the pin proves the certificate, this
        // proves the server holds its key.
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

fn ca_verifier(
    path: &Path,
    provider: &Arc<rustls::crypto::CryptoProvider>,
) -> Result<Arc<WebPkiServerVerifier>, ArrayError> {
    let bad = |e: String| ArrayError::Config(format!("array.tls.ca_file {}: {e}", path.display()));
    let mut roots = RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path).map_err(|e| bad(e.to_string()))?;
    for c in certs {
        roots
            .add(c.map_err(|e| bad(e.to_string()))?)
            .map_err(|e| bad(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(bad("no certificate in the file".into()));
    }
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| bad(e.to_string()))
}

/// `GET /devmgr/utils/about`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct About {
    /// Web Services version.
    pub version: String,
    /// Whether this is the proxy (not the embedded API).
    pub running_as_proxy: bool,
}

/// `GET storage-systems/{id}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct StorageSystem {
    /// The array's name.
    pub name: String,
    /// Controller firmware version.
    pub fw_version: String,
    /// The array's WWN.
    pub wwn: String,
}

/// An iSCSI node name wrapper.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NodeName {
    /// `iscsi`, `fc`, ...
    pub io_interface_type: String,
    /// The iSCSI name, for iSCSI.
    pub iscsi_node_name: Option<String>,
}

/// An IP address as the API writes it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct IpAddress {
    /// `ipv4` or `ipv6`.
    pub address_type: String,
    /// The IPv4 address.
    pub ipv4_address: Option<String>,
}

/// One target portal.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TargetPortal {
    /// Portal group tag.
    pub group_tag: u32,
    /// Address.
    pub ip_address: IpAddress,
    /// TCP port.
    pub tcp_listen_port: u16,
}

/// `GET iscsi/target-settings`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TargetSettings {
    /// The target's reference.
    pub target_ref: String,
    /// The target's name.
    pub node_name: NodeName,
    /// Its portals.
    pub portals: Vec<TargetPortal>,
}

/// A host type (`GET host-types`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HostType {
    /// Display name.
    pub name: String,
    /// Index used when creating hosts (28: Linux DM-MP).
    pub index: u32,
    /// Short code (`LnxDHALUA`).
    pub code: String,
}

/// A host's initiator.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Initiator {
    /// Its name.
    pub node_name: NodeName,
    /// Its label.
    pub label: String,
}

/// A host-side port.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HostSidePort {
    /// `iscsi`, `fc`, `ib`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// The IQN or WWPN.
    pub address: String,
    /// Its label.
    pub label: String,
}

/// A host (`GET hosts`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ArrayHost {
    /// Reference used as a mapping target.
    pub host_ref: String,
    /// Host group (all zeros: none).
    pub cluster_ref: String,
    /// Name.
    pub name: String,
    /// Label (same as name).
    pub label: String,
    /// Host type index.
    pub host_type_index: u32,
    /// Initiators.
    pub initiators: Vec<Initiator>,
    /// Host-side ports.
    pub host_side_ports: Vec<HostSidePort>,
}

impl ArrayHost {
    /// Every initiator name of the host (initiators and host-side ports), lower case.
    pub fn iqns(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .initiators
            .iter()
            .filter_map(|i| i.node_name.iscsi_node_name.clone())
            .chain(
                self.host_side_ports
                    .iter()
                    .filter(|p| p.kind == "iscsi")
                    .map(|p| p.address.clone()),
            )
            .map(|s| s.to_ascii_lowercase())
            .collect();
        v.sort();
        v.dedup();
        v
    }
}

/// A host group (`GET host-groups`): SANtricity calls it a cluster; hosts in it carry its
/// `clusterRef`, and a mapping to it has `type` `cluster` and `mapRef` its `clusterRef`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HostGroup {
    /// Reference used as a mapping target and in the hosts' `clusterRef`.
    pub cluster_ref: String,
    /// Name.
    pub name: String,
    /// Label (same as name).
    pub label: String,
}

/// A volume (`GET volumes`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Volume {
    /// Name.
    pub name: String,
    /// Reference used when mapping.
    pub volume_ref: String,
    /// WWN (32 hex digits, NAA-6 without the leading 6... as the array writes it).
    pub wwn: String,
    /// The same WWN, as some firmware names it.
    pub world_wide_name: String,
    /// Capacity in bytes (a decimal string in the API).
    pub capacity: String,
    /// Whether it is mapped anywhere.
    pub mapped: bool,
}

impl Volume {
    /// The host's multipath WWID of this volume: `3` + the lower-case WWN.
    pub fn wwid(&self) -> Option<String> {
        let w = if self.wwn.is_empty() {
            &self.world_wide_name
        } else {
            &self.wwn
        };
        (!w.is_empty()).then(|| format!("3{}", w.to_ascii_lowercase()))
    }
}

/// A mapping (`GET volume-mappings`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Mapping {
    /// Reference (for DELETE).
    pub lun_mapping_ref: String,
    /// LUN.
    pub lun: u32,
    /// The volume.
    pub volume_ref: String,
    /// The host or host group it is mapped to.
    pub map_ref: String,
    /// `host`, `cluster` or `all`.
    #[serde(rename = "type")]
    pub kind: String,
}

/// `POST hosts` body.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewHost {
    /// Name.
    pub name: String,
    /// Host type.
    pub host_type: HostTypeRef,
    /// Ports.
    pub ports: Vec<NewPort>,
    /// Host group to join, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
}

/// `{"index": N}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HostTypeRef {
    /// Host type index.
    pub index: u32,
}

/// A port of a new host.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NewPort {
    /// `iscsi` (also for IB iSER).
    #[serde(rename = "type")]
    pub kind: String,
    /// Label.
    pub label: String,
    /// The initiator IQN.
    pub port: String,
}

/// `POST volume-mappings` body.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewMapping {
    /// The volume's reference.
    pub mappable_object_id: String,
    /// The host's reference.
    pub target_id: String,
    /// LUN (None: the array picks).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lun: Option<u32>,
}

/// An IB iSER port of the array, from `GET interfaces?channelType=hostside` in either
/// firmware shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IserPort {
    /// The owning controller's reference (`070000000000000000000001` is A).
    pub controller_ref: String,
    /// Host-side channel (port number on the controller).
    pub channel: u32,
    /// Its iSER IPv4 address.
    pub address: Ipv4Addr,
    /// `channelPortRef`, to join with the hardware inventory's link state.
    pub channel_port_ref: String,
}

impl IserPort {
    /// `A` or `B` from the controller reference's last digit, else the reference.
    pub fn controller_label(&self) -> String {
        match self.controller_ref.chars().last() {
            Some('1') => "A".into(),
            Some('2') => "B".into(),
            _ => self.controller_ref.clone(),
        }
    }
}

fn s<'a>(v: &'a serde_json::Value, path: &[&str]) -> Option<&'a serde_json::Value> {
    path.iter().try_fold(v, |v, k| v.get(k))
}

fn text(v: Option<&serde_json::Value>) -> String {
    match v {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

/// The IB iSER ports among host interfaces, in either shape: before 11.60.2,
/// `ioInterfaceTypeData.interfaceType == "iscsi"` with `iscsi.interfaceData.type ==
/// "infiniband"` and `infinibandData.isIser`, the address in `iscsi.ipv4Data`; since,
/// `interfaceType == "ib"` with `ib.isISERSupported` and the address in the `scsi`/`iser`
/// entry of `commandProtocolPropertiesList.commandProtocolProperties`. Ports without an
/// IPv4 address (unconfigured) are left out.
pub fn iser_ports(interfaces: &[serde_json::Value]) -> Vec<IserPort> {
    let mut out = Vec::new();
    for i in interfaces {
        let Some(d) = i.get("ioInterfaceTypeData") else {
            continue;
        };
        let kind = d.get("interfaceType").and_then(|v| v.as_str());
        let (data, addr) = match kind {
            Some("iscsi") => {
                let Some(x) = d.get("iscsi") else { continue };
                let ib =
                    s(x, &["interfaceData", "type"]).and_then(|v| v.as_str()) == Some("infiniband");
                let iser = s(x, &["interfaceData", "infinibandData", "isIser"])
                    .and_then(|v| v.as_bool())
                    == Some(true);
                if !(ib && iser) {
                    continue;
                }
                (
                    x,
                    text(s(x, &["ipv4Data", "ipv4AddressData", "ipv4Address"])),
                )
            }
            Some("ib") => {
                let Some(x) = d.get("ib") else { continue };
                if x.get("isISERSupported").and_then(|v| v.as_bool()) != Some(true) {
                    continue;
                }
                let props = s(
                    i,
                    &["commandProtocolPropertiesList", "commandProtocolProperties"],
                )
                .and_then(|v| v.as_array());
                let addr = props
                    .into_iter()
                    .flatten()
                    .find(|p| {
                        p.get("commandProtocol").and_then(|v| v.as_str()) == Some("scsi")
                            && s(p, &["scsiProperties", "scsiProtocolType"])
                                .and_then(|v| v.as_str())
                                == Some("iser")
                    })
                    .map(|p| {
                        text(s(
                            p,
                            &[
                                "scsiProperties",
                                "iserProperties",
                                "ipv4Data",
                                "ipv4AddressData",
                                "ipv4Address",
                            ],
                        ))
                    })
                    .unwrap_or_default();
                (x, addr)
            }
            _ => continue,
        };
        let Ok(address) = addr.parse::<Ipv4Addr>() else {
            continue;
        };
        if address.is_unspecified() {
            continue;
        }
        let controller_ref = {
            let c = text(data.get("controllerId"));
            if c.is_empty() {
                text(i.get("controllerRef"))
            } else {
                c
            }
        };
        let channel_port_ref = {
            let c = text(data.get("channelPortRef"));
            if c.is_empty() {
                text(i.get("channelPortRef"))
            } else {
                c
            }
        };
        out.push(IserPort {
            controller_ref,
            channel: data.get("channel").and_then(|v| v.as_u64()).unwrap_or(0) as u32,
            address,
            channel_port_ref,
        });
    }
    out
}

/// `GET hardware-inventory`, the part read here: each IB port's link state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HardwareInventory {
    /// IB ports.
    pub ib_ports: Vec<IbPortState>,
}

/// One IB port's link.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct IbPortState {
    /// Joins with [`IserPort::channel_port_ref`].
    #[serde(deserialize_with = "any_text")]
    pub channel_port_ref: String,
    /// `active`, `down`, ...
    pub link_state: String,
}

fn any_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    Ok(text(Some(&v)))
}

/// The array's error body.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct ApiErrorBody {
    error_message: Option<String>,
    localized_message: Option<String>,
}

/// One exchange, for the log: method, path and status (never headers or bodies, which may
/// carry the password or the array's secrets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    /// The controller that answered (or was tried).
    pub controller: String,
    /// Method.
    pub method: String,
    /// Path after the controller's base.
    pub path: String,
    /// Status, or what went wrong.
    pub outcome: String,
    /// How long it took.
    pub millis: u128,
}

/// The client. Blocking: the engine runs steps one after another.
pub struct Client {
    http: reqwest::blocking::Client,
    cfg: Config,
    /// Index into `cfg.controllers` of the controller serving calls.
    active: usize,
    refused: Seen,
    /// Every exchange so far, in order.
    pub exchanges: Vec<Exchange>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("controllers", &self.cfg.controllers)
            .field("active", &self.active)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Build the client and probe `GET /devmgr/utils/about` on each controller in turn;
    /// the first that answers serves the calls.
    pub fn connect(cfg: Config) -> Result<(Client, About), ArrayError> {
        if cfg.controllers.is_empty() {
            return Err(ArrayError::Config("array.controllers is empty".into()));
        }
        for c in &cfg.controllers {
            if !c.starts_with("https://") {
                return Err(ArrayError::Config(format!(
                    "array.controllers: {c:?} must start with https:// (the API carries the \
                     password)"
                )));
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let refused: Seen = Arc::default();
        let trust = match &cfg.trust {
            Trust::Pin(f) => VerifierTrust::Pin(*f),
            Trust::CaFile(p) => VerifierTrust::Ca(ca_verifier(p, &provider)?),
            Trust::Nothing => VerifierTrust::Nothing,
        };
        let verifier = Verifier {
            trust,
            provider: provider.clone(),
            refused: refused.clone(),
        };
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| ArrayError::Config(format!("TLS: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        let http = reqwest::blocking::Client::builder()
            .tls_backend_preconfigured(tls)
            .connect_timeout(cfg.timeouts.connect)
            .timeout(cfg.timeouts.total)
            // The controllers are on the management network: a proxy from the environment
            // would see the Basic auth header.
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ArrayError::Config(format!("HTTP client: {e}")))?;
        let mut client = Client {
            http,
            cfg,
            active: 0,
            refused,
            exchanges: Vec::new(),
        };
        let about: About = client.call(Method::GET, Path_::Utils("about"), None)?;
        Ok((client, about))
    }

    /// The controller serving calls.
    pub fn controller(&self) -> &str {
        &self.cfg.controllers[self.active]
    }

    /// The URL a call below the storage system goes to on the serving controller, as a
    /// dry run shows it (`rel` as in `volume-mappings/REF`).
    pub fn system_url(&self, rel: &str) -> String {
        self.url(self.active, &Path_::System(rel))
    }

    /// The configured controllers.
    pub fn controllers(&self) -> &[String] {
        &self.cfg.controllers
    }

    fn url(&self, i: usize, p: &Path_<'_>) -> String {
        let base = self.cfg.controllers[i].trim_end_matches('/');
        match p {
            Path_::Utils(x) => format!("{base}/devmgr/utils/{x}"),
            Path_::System("") => {
                format!("{base}/devmgr/v2/storage-systems/{}", self.cfg.system_id)
            }
            Path_::System(x) => format!(
                "{base}/devmgr/v2/storage-systems/{}/{x}",
                self.cfg.system_id
            ),
        }
    }

    /// One call, on the serving controller, then each other one when it cannot be reached.
    fn call<T: DeserializeOwned>(
        &mut self,
        method: Method,
        path: Path_<'_>,
        body: Option<&serde_json::Value>,
    ) -> Result<T, ArrayError> {
        let shown = path.shown();
        let n = self.cfg.controllers.len();
        let mut tried = Vec::new();
        for k in 0..n {
            let i = (self.active + k) % n;
            let controller = self.cfg.controllers[i].clone();
            *self.refused.lock().unwrap_or_else(|e| e.into_inner()) = None;
            let mut req = self
                .http
                .request(method.clone(), self.url(i, &path))
                .header(reqwest::header::ACCEPT, "application/json")
                .basic_auth(&self.cfg.user, Some(self.cfg.password.expose()));
            if let Some(b) = body {
                req = req.json(b);
            }
            let t0 = std::time::Instant::now();
            let res = req.send();
            let millis = t0.elapsed().as_millis();
            let mut log = |outcome: String| {
                self.exchanges.push(Exchange {
                    controller: controller.clone(),
                    method: method.to_string(),
                    path: shown.clone(),
                    outcome,
                    millis,
                })
            };
            match res {
                Ok(r) => {
                    log(r.status().as_u16().to_string());
                    self.active = i;
                    return self.read(&method, &shown, &controller, r);
                }
                Err(e) => {
                    let seen = self
                        .refused
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .take();
                    if let Some((fingerprint, reason)) = seen {
                        log("certificate refused".into());
                        // A certificate that is not trusted is never a reason to try the
                        // other controller: that would hide the refusal.
                        return Err(ArrayError::Certificate {
                            controller,
                            fingerprint,
                            reason,
                        });
                    }
                    let what = if e.is_timeout() {
                        format!(
                            "no answer within {} s",
                            self.cfg.timeouts.total.as_secs_f32()
                        )
                    } else if e.is_connect() {
                        format!("cannot connect: {}", root_cause(&e))
                    } else {
                        root_cause(&e)
                    };
                    log(what.clone());
                    tried.push(format!("{controller}: {what}"));
                }
            }
        }
        Err(ArrayError::Unreachable { tried })
    }

    fn read<T: DeserializeOwned>(
        &self,
        method: &Method,
        path: &str,
        controller: &str,
        r: Response,
    ) -> Result<T, ArrayError> {
        let status = r.status();
        let body = r.text().map_err(|e| ArrayError::Decode {
            path: path.into(),
            reason: root_cause(&e),
        })?;
        if status == StatusCode::UNAUTHORIZED {
            return Err(ArrayError::Unauthorized {
                controller: controller.into(),
                user: self.cfg.user.clone(),
            });
        }
        if !status.is_success() {
            let parsed: ApiErrorBody = serde_json::from_str(&body).unwrap_or_default();
            let message = parsed
                .error_message
                .or(parsed.localized_message)
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| {
                    let b = body.trim();
                    if b.is_empty() {
                        status.canonical_reason().unwrap_or("error").to_string()
                    } else {
                        b.chars().take(300).collect()
                    }
                });
            return Err(ArrayError::Api {
                method: method.to_string(),
                path: path.into(),
                status: status.as_u16(),
                message,
            });
        }
        // DELETE and some POSTs answer 204 or an empty body.
        let body = if body.trim().is_empty() {
            "null"
        } else {
            &body
        };
        serde_json::from_str(body).map_err(|e| ArrayError::Decode {
            path: path.into(),
            reason: e.to_string(),
        })
    }

    /// `GET storage-systems/{id}`: name and firmware.
    pub fn storage_system(&mut self) -> Result<StorageSystem, ArrayError> {
        self.call(Method::GET, Path_::System(""), None)
    }

    /// `GET iscsi/target-settings`: the target IQN and portals.
    pub fn target_settings(&mut self) -> Result<TargetSettings, ArrayError> {
        self.call(Method::GET, Path_::System("iscsi/target-settings"), None)
    }

    /// `GET interfaces?channelType=hostside`, the IB iSER ports of both shapes.
    pub fn iser_ports(&mut self) -> Result<Vec<IserPort>, ArrayError> {
        let v: Vec<serde_json::Value> = self.call(
            Method::GET,
            Path_::System("interfaces?channelType=hostside"),
            None,
        )?;
        Ok(iser_ports(&v))
    }

    /// `GET hardware-inventory`: the IB ports' link states.
    pub fn hardware_inventory(&mut self) -> Result<HardwareInventory, ArrayError> {
        self.call(Method::GET, Path_::System("hardware-inventory"), None)
    }

    /// `GET host-types`.
    pub fn host_types(&mut self) -> Result<Vec<HostType>, ArrayError> {
        self.call(Method::GET, Path_::System("host-types"), None)
    }

    /// `GET hosts`.
    pub fn hosts(&mut self) -> Result<Vec<ArrayHost>, ArrayError> {
        self.call(Method::GET, Path_::System("hosts"), None)
    }

    /// `GET host-groups`.
    pub fn host_groups(&mut self) -> Result<Vec<HostGroup>, ArrayError> {
        self.call(Method::GET, Path_::System("host-groups"), None)
    }

    /// `GET volumes`.
    pub fn volumes(&mut self) -> Result<Vec<Volume>, ArrayError> {
        self.call(Method::GET, Path_::System("volumes"), None)
    }

    /// `GET volume-mappings`.
    pub fn mappings(&mut self) -> Result<Vec<Mapping>, ArrayError> {
        self.call(Method::GET, Path_::System("volume-mappings"), None)
    }

    /// `POST hosts`: create a host; returns it as the array made it.
    pub fn create_host(&mut self, h: &NewHost) -> Result<ArrayHost, ArrayError> {
        let body = serde_json::to_value(h).map_err(|e| ArrayError::Config(e.to_string()))?;
        self.call(Method::POST, Path_::System("hosts"), Some(&body))
    }

    /// `POST host-groups`: create an empty host group; returns it as the array made it.
    pub fn create_host_group(&mut self, name: &str) -> Result<HostGroup, ArrayError> {
        let body = serde_json::json!({ "name": name, "hosts": [] });
        self.call(Method::POST, Path_::System("host-groups"), Some(&body))
    }

    /// `POST hosts/{ref}` with `groupId`: put a host in a host group.
    pub fn set_host_group(
        &mut self,
        host_ref: &str,
        cluster_ref: &str,
    ) -> Result<ArrayHost, ArrayError> {
        let body = serde_json::json!({ "groupId": cluster_ref });
        let p = format!("hosts/{host_ref}");
        self.call(Method::POST, Path_::System(&p), Some(&body))
    }

    /// `POST volume-mappings`: map a volume; returns the mapping.
    pub fn create_mapping(&mut self, m: &NewMapping) -> Result<Mapping, ArrayError> {
        let body = serde_json::to_value(m).map_err(|e| ArrayError::Config(e.to_string()))?;
        self.call(Method::POST, Path_::System("volume-mappings"), Some(&body))
    }

    /// `DELETE volume-mappings/{ref}`: unmap (detach `--unmap`).
    pub fn delete_mapping(&mut self, lun_mapping_ref: &str) -> Result<(), ArrayError> {
        let p = format!("volume-mappings/{lun_mapping_ref}");
        let _: serde_json::Value = self.call(Method::DELETE, Path_::System(&p), None)?;
        Ok(())
    }
}

/// Where a call goes.
enum Path_<'a> {
    /// `/devmgr/utils/...`.
    Utils(&'a str),
    /// `/devmgr/v2/storage-systems/{id}/...`.
    System(&'a str),
}

impl Path_<'_> {
    fn shown(&self) -> String {
        match self {
            Path_::Utils(x) => format!("/devmgr/utils/{x}"),
            Path_::System("") => "storage-systems/{id}".into(),
            Path_::System(x) => (*x).to_string(),
        }
    }
}

/// The innermost cause of an error, which is the part that names what went wrong (reqwest
/// wraps it as "error sending request for url ...").
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_parse_in_every_usual_spelling_and_print_like_openssl() {
        let colons = "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89";
        let f: Fingerprint = colons.parse().unwrap();
        assert_eq!(f.to_string(), colons);
        let bare: Fingerprint = colons.replace(':', "").to_lowercase().parse().unwrap();
        assert_eq!(bare, f);
        assert!("AB:CD".parse::<Fingerprint>().is_err());
        assert!(colons.replace('A', "G").parse::<Fingerprint>().is_err());
    }

    #[test]
    fn a_secret_never_shows_in_debug() {
        let s = Secret::new("hunter2");
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn the_wwid_is_3_and_the_lower_case_wwn() {
        let v = Volume {
            wwn: "600A098000A4B9D100000F095C2F7F31".into(),
            ..Default::default()
        };
        assert_eq!(
            v.wwid().as_deref(),
            Some("3600a098000a4b9d100000f095c2f7f31")
        );
        let v = Volume {
            world_wide_name: "600A0980".into(),
            ..Default::default()
        };
        assert_eq!(v.wwid().as_deref(), Some("3600a0980"));
        assert_eq!(Volume::default().wwid(), None);
    }

    #[test]
    fn http_controllers_are_refused_before_any_call() {
        let e = Client::connect(Config {
            controllers: vec!["http://10.0.0.1:8080".into()],
            user: "admin".into(),
            password: Secret::new("x"),
            trust: Trust::Nothing,
            system_id: "1".into(),
            timeouts: Timeouts::default(),
        })
        .unwrap_err();
        assert!(e.to_string().contains("must start with https://"), "{e}");
    }
}
