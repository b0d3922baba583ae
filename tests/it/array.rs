//! The array side against a test double of the SANtricity Web Services API: a small HTTPS
//! server on 127.0.0.1 with a self-signed certificate (rcgen), serving the real response
//! bodies of `tests/fixtures/santricity/` (see its README for their sources), keeping hosts
//! and mappings as state so POSTs change what later GETs answer, and recording every
//! request. Tests: pinning accepted and refused (with the fingerprint), a CA file, a wrong
//! password, controller A down, a hung controller bounded by the timeout, a 4xx with the
//! array's `errorMessage`, both iSER port shapes, plan/apply/read back, idempotence (a
//! second run sends no POST), and the refusals.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use iser_wizard::steps::array::client::{ArrayError, Client, Config, Secret, Timeouts, Trust};
use iser_wizard::steps::array::{self, Change, Stop, Wanted};
use serde_json::{json, Value};

const USER: &str = "admin";
const PASSWORD: &str = "s3cret-array";
const IQN: &str = "iqn.1994-05.com.redhat:db01";

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/santricity/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// One request as the double saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    body: Value,
}

/// The array's state behind the double.
struct ArrayState {
    hosts: Vec<Value>,
    groups: Vec<Value>,
    volumes: Vec<Value>,
    mappings: Vec<Value>,
    interfaces: Value,
    next: u32,
}

impl ArrayState {
    fn new(interfaces: &str) -> Self {
        ArrayState {
            hosts: serde_json::from_value(fixture("hosts.json")).unwrap(),
            groups: serde_json::from_value(fixture("host-groups.json")).unwrap(),
            volumes: serde_json::from_value(fixture("volumes.json")).unwrap(),
            mappings: serde_json::from_value(fixture("volume-mappings.json")).unwrap(),
            interfaces: fixture(interfaces),
            next: 1,
        }
    }

    fn error(status: u16, message: &str) -> (u16, Value) {
        let mut e = fixture("error-422.json");
        e["errorMessage"] = json!(message);
        e["localizedMessage"] = json!(message);
        (status, e)
    }

    /// Route one request, as the embedded API at storage system 1 does.
    fn answer(&mut self, method: &str, path: &str, body: &Value) -> (u16, Value) {
        let sys = "/devmgr/v2/storage-systems/1";
        match (method, path) {
            ("GET", "/devmgr/utils/about") => (200, fixture("about.json")),
            ("GET", p) if p == sys => (200, fixture("storage-system.json")),
            ("GET", p) => match p.strip_prefix(sys).unwrap_or("") {
                "/iscsi/target-settings" => (200, fixture("target-settings.json")),
                "/interfaces?channelType=hostside" => (200, self.interfaces.clone()),
                "/hardware-inventory" => (200, fixture("hardware-inventory.json")),
                "/host-types" => (200, fixture("host-types.json")),
                "/hosts" => (200, json!(self.hosts)),
                "/host-groups" => (200, json!(self.groups)),
                "/volumes" => (200, json!(self.volumes)),
                "/volume-mappings" => (200, json!(self.mappings)),
                _ => Self::error(404, "The requested resource was not found."),
            },
            ("POST", p) if p == format!("{sys}/hosts") => {
                let name = body["name"].as_str().unwrap_or("");
                if self.hosts.iter().any(|h| h["name"] == name) {
                    return Self::error(422, "The host name is already in use.");
                }
                let r = format!("84000000600A0980000000000000{:012}", self.next);
                self.next += 1;
                let port = &body["ports"][0];
                let group = body["groupId"]
                    .as_str()
                    .unwrap_or("0000000000000000000000000000000000000000");
                let h = json!({
                    "hostRef": r, "id": r, "clusterRef": group,
                    "name": name, "label": name,
                    "hostTypeIndex": body["hostType"]["index"],
                    "initiators": [{"nodeName": {"ioInterfaceType": "iscsi",
                        "iscsiNodeName": port["port"]}, "label": port["label"], "hostRef": r}],
                    "hostSidePorts": [{"type": "iscsi", "address": port["port"], "label": port["label"]}],
                    "ports": []
                });
                self.hosts.push(h.clone());
                (201, h)
            }
            ("POST", p) if p == format!("{sys}/host-groups") => {
                let name = body["name"].as_str().unwrap_or("");
                if self.groups.iter().any(|g| g["name"] == name) {
                    return Self::error(422, "The host group name is already in use.");
                }
                let r = format!("85000000600A0980000000000000{:012}", self.next);
                self.next += 1;
                let g = json!({"clusterRef": r, "id": r, "name": name, "label": name});
                for h in body["hosts"].as_array().into_iter().flatten() {
                    for x in self.hosts.iter_mut().filter(|x| x["hostRef"] == *h) {
                        x["clusterRef"] = json!(r);
                    }
                }
                self.groups.push(g.clone());
                (201, g)
            }
            ("POST", p) if p.starts_with(&format!("{sys}/hosts/")) => {
                let r = &p[format!("{sys}/hosts/").len()..];
                let Some(h) = self.hosts.iter_mut().find(|h| h["hostRef"] == r) else {
                    return Self::error(404, "The host does not exist.");
                };
                if let Some(g) = body.get("groupId") {
                    h["clusterRef"] = g.clone();
                }
                (200, h.clone())
            }
            ("POST", p) if p == format!("{sys}/volume-mappings") => {
                let vol = body["mappableObjectId"].as_str().unwrap_or("");
                let target = body["targetId"].as_str().unwrap_or("");
                if self.mappings.iter().any(|m| m["volumeRef"] == vol) {
                    return Self::error(422, "The volume is already mapped.");
                }
                let used: Vec<u64> = self
                    .mappings
                    .iter()
                    .filter(|m| m["mapRef"] == target)
                    .filter_map(|m| m["lun"].as_u64())
                    .collect();
                let lun = (1..).find(|l| !used.contains(l)).unwrap();
                let r = format!("88000000A10000000000000000000000{:08}", self.next);
                self.next += 1;
                let kind = if self.groups.iter().any(|g| g["clusterRef"] == target) {
                    "cluster"
                } else {
                    "host"
                };
                let m = json!({"lunMappingRef": r, "lun": lun, "volumeRef": vol,
                               "mapRef": target, "type": kind});
                self.mappings.push(m.clone());
                (201, m)
            }
            ("DELETE", p) => {
                let r = p
                    .strip_prefix(&format!("{sys}/volume-mappings/"))
                    .unwrap_or("");
                let before = self.mappings.len();
                self.mappings.retain(|m| m["lunMappingRef"] != r);
                if self.mappings.len() == before {
                    Self::error(404, "The mapping does not exist.")
                } else {
                    (204, Value::Null)
                }
            }
            _ => Self::error(405, "Method not allowed."),
        }
    }
}

/// A running double: its URL, certificate fingerprint, recorded requests.
struct Double {
    url: String,
    fingerprint: String,
    cert_pem: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    state: Arc<Mutex<ArrayState>>,
    stop: Arc<AtomicBool>,
}

impl Drop for Double {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect(self.url.trim_start_matches("https://"));
    }
}

impl Double {
    fn start(interfaces: &str) -> Double {
        Self::start_with(interfaces, false)
    }

    /// `hang`: accept connections and never answer (a controller that is up but stuck).
    fn start_with(interfaces: &str, hang: bool) -> Double {
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
            .unwrap();
        let der = ck.cert.der().to_vec();
        let fingerprint = iser_wizard::steps::array::client::Fingerprint::of(&der).to_string();
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(ck.key_pair.serialize_der().into());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let cfg = Arc::new(
            rustls::ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(vec![der.into()], key)
                .unwrap(),
        );
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("https://{}", listener.local_addr().unwrap());
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let state = Arc::new(Mutex::new(ArrayState::new(interfaces)));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen2, state2, stop2) = (seen.clone(), state.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(tcp) = conn else { continue };
                if hang {
                    // Keep the socket open and silent until the double stops.
                    let stop3 = stop2.clone();
                    std::thread::spawn(move || {
                        while !stop3.load(Ordering::SeqCst) {
                            std::thread::sleep(Duration::from_millis(50));
                        }
                        drop(tcp);
                    });
                    continue;
                }
                let (cfg, seen, state) = (cfg.clone(), seen2.clone(), state2.clone());
                std::thread::spawn(move || {
                    let _ = serve(tcp, cfg, &seen, &state);
                });
            }
        });
        Double {
            url,
            fingerprint,
            cert_pem: ck.cert.pem(),
            seen,
            state,
            stop,
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn posts(&self) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.method != "GET")
            .collect()
    }
}

fn serve(
    tcp: TcpStream,
    cfg: Arc<rustls::ServerConfig>,
    seen: &Mutex<Vec<Seen>>,
    state: &Mutex<ArrayState>,
) -> std::io::Result<()> {
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    let conn = rustls::ServerConnection::new(cfg).map_err(std::io::Error::other)?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let mut reader = BufReader::new(&mut tls);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("").to_string();
    let (mut len, mut auth) = (0usize, String::new());
    loop {
        let mut h = String::new();
        reader.read_line(&mut h)?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':').unwrap_or((h, ""));
        match k.to_ascii_lowercase().as_str() {
            "content-length" => len = v.trim().parse().unwrap_or(0),
            "authorization" => auth = v.trim().to_string(),
            _ => {}
        }
    }
    let mut body = vec![0; len];
    reader.read_exact(&mut body)?;
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let want = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"))
    );
    seen.lock().unwrap().push(Seen {
        method: method.clone(),
        path: path.clone(),
        body: body.clone(),
    });
    let (status, out) = if auth != want {
        // The embedded API answers a bad password with 401 and no error body.
        (401, Value::Null)
    } else {
        state.lock().unwrap().answer(&method, &path, &body)
    };
    let text = if out.is_null() {
        String::new()
    } else {
        out.to_string()
    };
    write!(
        tls,
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{text}",
        text.len()
    )?;
    tls.flush()?;
    tls.conn.send_close_notify();
    let _ = tls.flush();
    Ok(())
}

fn config(controllers: Vec<String>, trust: Trust, password: &str) -> Config {
    Config {
        controllers,
        user: USER.into(),
        password: Secret::new(password),
        trust,
        system_id: "1".into(),
        timeouts: Timeouts {
            connect: Duration::from_secs(2),
            total: Duration::from_secs(2),
        },
    }
}

fn pinned(d: &Double) -> Trust {
    Trust::Pin(d.fingerprint.parse().unwrap())
}

/// A URL where nothing listens (a controller that is down).
fn dead_url() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://{}", l.local_addr().unwrap());
    drop(l);
    url
}

#[test]
fn the_right_pin_connects_and_about_comes_first() {
    let d = Double::start("interfaces-old.json");
    let (mut c, about) =
        Client::connect(config(vec![d.url.clone()], pinned(&d), PASSWORD)).unwrap();
    assert!(!about.running_as_proxy);
    assert_eq!(about.version, "03.10.9000.0009");
    assert_eq!(c.storage_system().unwrap().fw_version, "08.52.00.00");
    let seen = d.seen();
    assert_eq!(seen[0].path, "/devmgr/utils/about");
    assert_eq!(seen[1].path, "/devmgr/v2/storage-systems/1");
}

#[test]
fn a_wrong_pin_is_refused_with_the_certificate_s_fingerprint() {
    let d = Double::start("interfaces-old.json");
    let other = Trust::Pin("00".repeat(32).parse().unwrap());
    let e = Client::connect(config(vec![d.url.clone()], other, PASSWORD)).unwrap_err();
    assert!(matches!(e, ArrayError::Certificate { .. }), "{e}");
    let msg = e.to_string();
    assert!(msg.contains(&d.fingerprint), "{msg}");
    assert!(msg.contains("not the pinned certificate"), "{msg}");
    assert!(
        d.seen().is_empty(),
        "no request may reach an untrusted server"
    );
}

#[test]
fn without_trust_nothing_is_accepted_and_the_fingerprint_is_shown() {
    let d = Double::start("interfaces-old.json");
    let e = Client::connect(config(vec![d.url.clone()], Trust::Nothing, PASSWORD)).unwrap_err();
    let ArrayError::Certificate { fingerprint, .. } = &e else {
        panic!("{e}")
    };
    assert_eq!(fingerprint.to_string(), d.fingerprint);
    assert!(d.seen().is_empty());
}

#[test]
fn a_ca_file_that_signed_the_certificate_is_accepted() {
    let d = Double::start("interfaces-old.json");
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    // The self-signed certificate is its own CA; it names 127.0.0.1.
    std::fs::write(&ca, &d.cert_pem).unwrap();
    Client::connect(config(vec![d.url.clone()], Trust::CaFile(ca), PASSWORD)).unwrap();
    let other = Double::start("interfaces-old.json");
    let ca2 = dir.path().join("other.pem");
    std::fs::write(&ca2, &other.cert_pem).unwrap();
    let e = Client::connect(config(vec![d.url.clone()], Trust::CaFile(ca2), PASSWORD)).unwrap_err();
    assert!(e.to_string().contains(&d.fingerprint), "{e}");
}

#[test]
fn a_wrong_password_is_a_401_naming_the_user_and_never_the_password() {
    let d = Double::start("interfaces-old.json");
    let e = Client::connect(config(vec![d.url.clone()], pinned(&d), "wrong")).unwrap_err();
    assert!(matches!(e, ArrayError::Unauthorized { .. }), "{e}");
    let msg = e.to_string();
    assert!(msg.contains("\"admin\"") && !msg.contains("wrong"), "{msg}");
}

#[test]
fn controller_a_down_fails_over_to_b() {
    let d = Double::start("interfaces-old.json");
    let (mut c, _) = Client::connect(config(
        vec![dead_url(), d.url.clone()],
        pinned(&d),
        PASSWORD,
    ))
    .unwrap();
    assert_eq!(c.controller(), d.url);
    assert_eq!(c.hosts().unwrap().len(), 3);
    assert!(
        c.exchanges[0].outcome.starts_with("cannot connect"),
        "{:?}",
        c.exchanges
    );
}

#[test]
fn a_hung_controller_is_given_up_within_the_bound_and_b_answers() {
    let hung = Double::start_with("interfaces-old.json", true);
    let d = Double::start("interfaces-old.json");
    let t0 = Instant::now();
    let (c, _) = Client::connect(config(
        vec![hung.url.clone(), d.url.clone()],
        pinned(&d),
        PASSWORD,
    ))
    .unwrap();
    assert!(t0.elapsed() < Duration::from_secs(6), "{:?}", t0.elapsed());
    assert_eq!(c.controller(), d.url);
    let e = Client::connect(config(vec![hung.url.clone()], pinned(&d), PASSWORD)).unwrap_err();
    assert!(matches!(e, ArrayError::Unreachable { .. }), "{e}");
    assert!(e.to_string().contains("no answer within"), "{e}");
}

#[test]
fn a_4xx_shows_the_array_s_error_message() {
    let d = Double::start("interfaces-old.json");
    let (mut c, _) = Client::connect(config(vec![d.url.clone()], pinned(&d), PASSWORD)).unwrap();
    let e = c.delete_mapping("nope").unwrap_err();
    assert_eq!(
        e.to_string(),
        "DELETE volume-mappings/nope: HTTP 404: The mapping does not exist."
    );
}

fn wanted(volumes: &[&str]) -> Wanted {
    Wanted {
        host_name: "db01".into(),
        host_type_index: 28,
        initiator_iqn: IQN.into(),
        volumes: volumes.iter().map(|s| s.to_string()).collect(),
        host_group: None,
    }
}

/// Probe, decide, apply, read back; returns the record and the changes made.
fn attach(d: &Double, w: &Wanted) -> Result<(array::ArrayFact, usize), Stop> {
    let (mut c, _) = Client::connect(config(vec![d.url.clone()], pinned(d), PASSWORD)).unwrap();
    let groups = w.host_group.is_some();
    let o = array::observe(&mut c, groups).unwrap();
    let dec = array::decide(w, &o)?;
    let n = dec.changes.len();
    let mut refs = array::Refs::of(&dec);
    for ch in &dec.changes {
        array::apply(&mut c, ch, &mut refs).unwrap();
    }
    let o = array::observe(&mut c, groups).unwrap();
    assert!(array::decide(w, &o).unwrap().changes.is_empty());
    let nets = vec![
        "10.10.10.5/24".parse().unwrap(),
        "10.10.11.5/24".parse().unwrap(),
    ];
    Ok((array::record(w, &o, c.controllers(), &nets).unwrap(), n))
}

#[test]
fn plan_apply_read_back_then_a_second_run_sends_no_post() {
    for shape in ["interfaces-old.json", "interfaces-new.json"] {
        let d = Double::start(shape);
        let w = wanted(&["Matthew", "Micah"]);
        let (f, n) = attach(&d, &w).unwrap();
        assert_eq!(n, 3, "create the host, map two volumes");
        assert_eq!(
            f.host_group, "",
            "no group: the volumes are mapped to the host"
        );
        let posts = d.posts();
        assert_eq!(posts.len(), 3);
        assert_eq!(
            posts[0].body,
            json!({"name": "db01", "hostType": {"index": 28},
                   "ports": [{"type": "iscsi", "label": "db01_1", "port": IQN}]})
        );
        assert_eq!(
            posts[1].path,
            "/devmgr/v2/storage-systems/1/volume-mappings"
        );
        assert_eq!(
            posts[1].body["mappableObjectId"],
            "02000000600A098000A4B9D100000F095C2F7F31"
        );
        assert_eq!(f.volumes[0].lun, 1);
        assert_eq!(f.volumes[1].lun, 2);
        assert_eq!(f.volumes[0].wwid, "3600a098000a4b9d100000f095c2f7f31");
        assert_eq!(
            f.target_iqn,
            "iqn.1992-08.com.netapp:2806.600a098000a4b28d000000005da9d744"
        );
        // Link states: ports 1 (A, 10.10.10.110) and 4 (B, 10.10.11.112) are active.
        let used: Vec<&str> = f.portals().iter().map(|p| p.address.as_str()).collect();
        assert_eq!(used, ["10.10.10.110", "10.10.11.112"], "{shape}");

        let (_, n) = attach(&d, &w).unwrap();
        assert_eq!(n, 0);
        assert_eq!(d.posts().len(), 3, "the second run sent no POST");
        let s = d.state.lock().unwrap();
        assert_eq!(s.hosts.len(), 4);
    }
}

#[test]
fn an_iqn_owned_by_another_host_and_a_volume_mapped_elsewhere_stop_with_no_change() {
    let d = Double::start("interfaces-old.json");
    let mut w = wanted(&["Matthew"]);
    w.initiator_iqn = "iqn.1993-08.org.debian.beegfs-storage1:01:b0621126818".into();
    let Err(Stop::Refused { evidence, .. }) = attach(&d, &w) else {
        panic!()
    };
    assert!(evidence[0].contains("beegfs_storage1"), "{evidence:?}");
    let Err(Stop::Refused { evidence, .. }) = attach(&d, &wanted(&["Samantha"])) else {
        panic!()
    };
    assert!(evidence[0].contains("mapped to host beegfs_storage1 at LUN 5"));
    assert!(d.posts().is_empty(), "{:?}", d.posts());
}

#[test]
fn changes_are_described_for_the_plan() {
    let d = Double::start("interfaces-new.json");
    let (mut c, _) = Client::connect(config(vec![d.url.clone()], pinned(&d), PASSWORD)).unwrap();
    let o = array::observe(&mut c, false).unwrap();
    let dec = array::decide(&wanted(&["Matthew"]), &o).unwrap();
    let shown: Vec<String> = dec.changes.iter().map(|c| c.describe("db01")).collect();
    assert!(matches!(dec.changes[0], Change::CreateHost(_)));
    assert!(shown[0].contains("create host db01"), "{shown:?}");
    assert!(
        shown[1].contains("map volume Matthew to host db01"),
        "{shown:?}"
    );
}

/// The last run's answers and facts as `detach --unmap` reads them, for this double.
fn last_run(d: &Double, fact: array::ArrayFact) -> (Value, iser_wizard::steps::Facts) {
    let answers = json!({
        "version": 1,
        "host": {"mapping_host_name": "db01"},
        "array": {
            "controllers": [d.url],
            "user": USER,
            "password_env": "ISER_ARRAY_PASSWORD",
            "tls": {"fingerprint_sha256": d.fingerprint}
        }
    });
    let facts = iser_wizard::steps::Facts {
        array: Some(fact),
        ..Default::default()
    };
    (answers, facts)
}

fn env(k: &str) -> Option<String> {
    (k == "ISER_ARRAY_PASSWORD").then(|| PASSWORD.to_string())
}

#[test]
fn unmap_removes_only_this_host_s_mappings_and_a_dry_run_only_reads() {
    use iser_wizard::steps::array::unmap::Request;
    let d = Double::start("interfaces-new.json");
    let (f, _) = attach(&d, &wanted(&["Matthew", "Micah"])).unwrap();
    let matthew = f.volumes[0].wwid.clone();
    // Samantha is beegfs_storage1's (LUN 5): named here, it must stay mapped.
    let samantha = "3600a098000a4b28d00000fbe5c2f7f26".to_string();
    let (answers, facts) = last_run(&d, f);
    let u = Request::from_last_run(Some(&answers), &facts, &env).unwrap();
    let before = d.seen().len();
    let dry = u
        .run(&[matthew.clone(), samantha.clone()], true, &env)
        .unwrap();
    assert_eq!(dry.removed, 0);
    assert!(
        d.seen()[before..].iter().all(|s| s.method == "GET"),
        "a dry run only reads"
    );
    assert!(
        dry.lines[0]
            .starts_with("would unmap volume Matthew (LUN 1) from host db01: `DELETE https://")
            && dry.lines[0].contains("/devmgr/v2/storage-systems/1/volume-mappings/"),
        "{:?}",
        dry.lines
    );
    assert!(
        dry.lines[1].contains("mapped to host beegfs_storage1 at LUN 5"),
        "{:?}",
        dry.lines
    );

    let done = u.run(&[matthew.clone(), samantha], false, &env).unwrap();
    assert_eq!(done.removed, 1, "{:?}", done.lines);
    let deletes: Vec<Seen> = d
        .posts()
        .into_iter()
        .filter(|s| s.method == "DELETE")
        .collect();
    assert_eq!(deletes.len(), 1);
    {
        let s = d.state.lock().unwrap();
        let vols: Vec<&Value> = s.mappings.iter().map(|m| &m["volumeRef"]).collect();
        assert!(!vols.contains(&&json!("02000000600A098000A4B9D100000F095C2F7F31")));
        assert!(
            vols.contains(&&json!("02000000600A098000A4B9D100000F0B5C2F7F40")),
            "Micah stays"
        );
        assert!(
            vols.contains(&&json!("02000000600A098000A4B28D00000FBE5C2F7F26")),
            "Samantha stays"
        );
    }
    // Again: nothing left to remove, no DELETE.
    let again = u.run(&[matthew], false, &env).unwrap();
    assert_eq!(again.removed, 0);
    assert!(
        again.lines[0].contains("Matthew: not mapped"),
        "{:?}",
        again.lines
    );
    assert_eq!(d.posts().iter().filter(|s| s.method == "DELETE").count(), 1);
}

#[test]
fn unmap_without_an_array_section_or_password_is_refused_before_any_call() {
    use iser_wizard::steps::array::unmap::Request;
    let d = Double::start("interfaces-old.json");
    let (answers, facts) = last_run(&d, array::ArrayFact::default());
    let e = Request::from_last_run(Some(&json!({"version": 1})), &facts, &env).unwrap_err();
    assert!(e.contains("no `array` section"), "{e}");
    let e = Request::from_last_run(Some(&answers), &facts, &|_| None).unwrap_err();
    assert!(
        e.contains("ISER_ARRAY_PASSWORD") && e.contains("nothing was changed"),
        "{e}"
    );
    // The host's name comes from the answers when the state has no array record.
    assert!(Request::from_last_run(Some(&answers), &facts, &env).is_ok());
    assert!(d.seen().is_empty());
}

#[test]
fn a_host_group_is_made_the_host_put_in_it_and_the_volume_mapped_to_it_once() {
    use iser_wizard::steps::array::unmap::Request;
    let d = Double::start("interfaces-old.json");
    let mut w = wanted(&["Matthew"]);
    w.host_group = Some("dbs".into());
    let (f, n) = attach(&d, &w).unwrap();
    assert_eq!(n, 3, "create the group, the host in it, map the volume");
    let posts = d.posts();
    assert_eq!(posts[0].path, "/devmgr/v2/storage-systems/1/host-groups");
    assert_eq!(posts[0].body, json!({"name": "dbs", "hosts": []}));
    let group = {
        let s = d.state.lock().unwrap();
        let g = s
            .groups
            .iter()
            .find(|g| g["name"] == "dbs")
            .unwrap()
            .clone();
        g["clusterRef"].as_str().unwrap().to_string()
    };
    assert_eq!(posts[1].body["groupId"], json!(group));
    assert_eq!(posts[2].body["targetId"], json!(group));
    assert_eq!(f.volumes[0].lun, 1);
    assert_eq!(f.host_group, "dbs", "the record names the host's group");
    let (_, n) = attach(&d, &w).unwrap();
    assert_eq!(n, 0);
    assert_eq!(d.posts().len(), 3, "the second run sent no POST");
    // db01 is the group's only host: --unmap removes the group's mapping.
    let (answers, facts) = last_run(&d, f.clone());
    let u = Request::from_last_run(Some(&answers), &facts, &env).unwrap();
    let r = u.run(&[f.volumes[0].wwid.clone()], false, &env).unwrap();
    assert_eq!(r.removed, 1, "{:?}", r.lines);
    assert!(r.lines[0].contains("from host group dbs"), "{:?}", r.lines);
}
