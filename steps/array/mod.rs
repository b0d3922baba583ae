//! The array step: the array side of the vendor procedure through the SANtricity Web
//! Services API (DOMAIN.md "SANtricity REST API"), between `iscsi` (which fixes the
//! initiator IQN) and `sessions` (which must find the volumes mapped).
//!
//! Contract:
//! - Runs only with an `array` section in the answers; otherwise its plan is empty with a
//!   note saying why.
//! - *want*: the host's name (`host.mapping_host_name`), host type (`array.host_type_index`,
//!   28 Linux DM-MP by default), the initiator IQN (the iscsi step's fact), the array's names
//!   of the volumes (`volume.name` / `volumes[].name`; offered from the array's unmapped
//!   volumes in an interactive run), the password from `array.password_env` (never stored,
//!   logged or recorded; the variable is kept out of every command's environment by the
//!   engine).
//! - *observe* ([`observe`]): one probe of the array, read-only (`GET` only).
//! - *decide* ([`decide()`]): pure; refuses (exit 3, the array's evidence listed) an
//!   initiator IQN on another host, a host of our name that is another machine's, or a
//!   volume mapped to another host or group; plans nothing when all is in place.
//! - *apply* ([`apply`]): `POST hosts`, then `POST volume-mappings` per volume, as plan
//!   tasks. With `array.host_group`: `POST host-groups` when the group is absent, the host
//!   made in it (`groupId`) or put in it (`POST hosts/{ref}`) when it is in no group, and
//!   the volumes mapped to the group.
//! - *verify*: a fresh probe must decide no change; then [`record`] puts the array's name,
//!   firmware, target IQN, iSER ports (used: up and in a host port's subnet), host and each
//!   volume's WWN, WWID and LUN in the facts and the worksheet. `sessions` takes the target
//!   IQN (`"from-array"`) and, when `target.portals` is omitted, the portals from there; each
//!   volume's WWID is set in the answers (absent or `"auto"`) or must agree.
//! - Interactive, without an `array` section: asks first whether to do the array side
//!   (default no), then the controllers, user, password variable and how to trust the
//!   certificate (`ask_array`); the answers are kept (and recorded by `--record-answers`),
//!   the password never.
//! - Certificate: pinned or CA-checked ([`client`]); without either, an interactive run
//!   shows the fingerprint and asks to trust it (stored as `array.tls.fingerprint_sha256`),
//!   an unattended one is refused with the fingerprint printed.

pub mod client;
mod decide;
pub mod unmap;

use std::time::Duration;

use ipnet::Ipv4Net;

use crate::settings::{ArrayAnswers, ArrayTls, EnvName, Text, VolumeAnswers, Wwid};
use crate::steps::{Ctx, Plan, Question, Reply, Step, StepError, StepName};
use client::{ArrayError, Client, Config, Secret, Timeouts, Trust};
pub use decide::{decide, mapping_body, record, Change, Decision, Observed, Stop, Wanted};

pub use crate::steps::facts::ArrayFact;

/// The host type index of Linux DM-MP (`LnxDHALUA`).
pub const LINUX_DM_MP: u32 = 28;

/// One read-only probe of everything the step decides on. Eight `GET`s, nine with
/// `groups` (`GET host-groups`, read only when the run wants a host group).
pub fn observe(c: &mut Client, groups: bool) -> Result<Observed, ArrayError> {
    Ok(Observed {
        groups: if groups { c.host_groups()? } else { Vec::new() },
        system: c.storage_system()?,
        target: c.target_settings()?,
        ports: c.iser_ports()?,
        inventory: c.hardware_inventory()?,
        host_types: c.host_types()?,
        hosts: c.hosts()?,
        volumes: c.volumes()?,
        mappings: c.mappings()?,
    })
}

/// The references the changes need, known from the probe or set as the changes make the
/// host and the group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Refs {
    /// The host's reference.
    pub host: Option<String>,
    /// The host group's reference (with `array.host_group`).
    pub group: Option<String>,
}

impl Refs {
    /// The references the decision found.
    pub fn of(d: &Decision) -> Refs {
        Refs {
            host: d.host_ref.clone(),
            group: d.group_ref.clone(),
        }
    }
}

/// Make one change, in the decision's order (group, host, membership, mappings).
pub fn apply(c: &mut Client, change: &Change, refs: &mut Refs) -> Result<(), ArrayError> {
    let missing = |what: &str| ArrayError::Config(format!("internal: {what} before it exists"));
    match change {
        Change::CreateGroup { name } => {
            let made = c.create_host_group(name)?;
            refs.group = Some(made.cluster_ref);
        }
        Change::CreateHost(h) => {
            let mut h = h.clone();
            if h.group_id.is_none() {
                h.group_id = refs.group.clone();
            }
            let made = c.create_host(&h)?;
            refs.host = Some(made.host_ref);
        }
        Change::JoinGroup { host_ref, .. } => {
            let g = refs
                .group
                .clone()
                .ok_or_else(|| missing("the host group"))?;
            c.set_host_group(host_ref, &g)?;
        }
        Change::Map {
            volume_ref, group, ..
        } => {
            let target = match group {
                Some(_) => refs
                    .group
                    .clone()
                    .ok_or_else(|| missing("the host group"))?,
                None => refs.host.clone().ok_or_else(|| missing("the host"))?,
            };
            c.create_mapping(&mapping_body(volume_ref, &target))?;
        }
    }
    Ok(())
}

/// With an `array` section, give each named volume that has no WWID in the answers the
/// WWID the array step recorded for it in the state: a run that does not run the array
/// step (`run --from sessions`, or a resume past it) then needs no `wwid` in the answers,
/// as the run that did needed none. Volumes the record does not name are left to the
/// later steps (which ask or stop naming the key). Returns how many were filled.
pub fn wwids_from_state(a: &mut crate::settings::Answers, facts: &crate::steps::Facts) -> usize {
    let Some(fact) = facts.array.as_ref() else {
        return 0;
    };
    if a.array.is_none() {
        return 0;
    }
    let slots: Vec<&mut VolumeAnswers> = match a.volumes.as_mut() {
        Some(list) => list.iter_mut().collect(),
        None => vec![&mut a.volume],
    };
    let mut n = 0;
    for v in slots.into_iter().filter(|v| v.wwid.is_none()) {
        let Some(name) = v.name.as_ref().map(|n| n.to_string()) else {
            continue;
        };
        if let Some(f) = fact
            .volumes
            .iter()
            .find(|f| f.name == name && !f.wwid.is_empty())
        {
            v.wwid = Some(Wwid::Id(f.wwid.clone()));
            n += 1;
        }
    }
    n
}

/// Write the calls made since the last time to the run's log: method, path, controller,
/// status and time, never headers or bodies (the password is in a header).
fn log_calls(cx: &Ctx<'_>, c: &mut Client) {
    for e in c.exchanges.drain(..) {
        cx.host.log_entry(
            &format!(
                "array API: {} {} -> {} ({} ms, {})",
                e.method, e.path, e.outcome, e.millis, e.controller
            ),
            "",
        );
    }
}

/// The environment lookup (a seam for tests).
type Env = fn(&str) -> Option<String>;

/// What plan found, kept for the tasks and verify.
struct Planned {
    wanted: Wanted,
    decision: Decision,
    refs: Refs,
    client: Client,
}

/// The array step.
pub struct ArrayStep {
    env: Env,
    planned: Option<Planned>,
}

impl std::fmt::Debug for ArrayStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArrayStep").finish_non_exhaustive()
    }
}

/// The step implementation.
pub fn step() -> Box<dyn Step> {
    Box::new(ArrayStep {
        env: |k| std::env::var(k).ok(),
        planned: None,
    })
}

fn failed(e: ArrayError) -> StepError {
    match e {
        ArrayError::Certificate { .. } => StepError::Refused {
            reason: "the array's certificate is not trusted; nothing was sent to it".into(),
            evidence: vec![e.to_string()],
        },
        other => StepError::Failed(format!("array: {other}")),
    }
}

fn stopped(s: Stop) -> StepError {
    match s {
        Stop::Refused { reason, evidence } => StepError::Refused { reason, evidence },
        Stop::Failed(m) => StepError::Failed(m),
    }
}

/// The volumes of the answers: `volumes` when given, else `volume`.
fn volume_answers(a: &crate::settings::Answers) -> Vec<&VolumeAnswers> {
    match &a.volumes {
        Some(list) => list.iter().collect(),
        None => vec![&a.volume],
    }
}

impl ArrayStep {
    fn connect(&self, cx: &mut Ctx<'_>, a: &ArrayAnswers) -> Result<Client, StepError> {
        let var = a.password_env.to_string();
        let password = match (self.env)(&var).filter(|s| !s.is_empty()) {
            Some(p) => p,
            // At a terminal the person types it, hidden; it is kept only in this client.
            None if cx.ask.interactive() => {
                let q = format!(
                    "Password of array user {} ({var} is not set; typed hidden, never stored)",
                    a.user
                );
                match cx.ask.prompt("array.password", &q, Question::Secret)? {
                    Reply::Text(p) => p,
                    _ => {
                        return Err(StepError::Failed(
                            "array.password: no password was typed".into(),
                        ))
                    }
                }
            }
            None => {
                return Err(StepError::Failed(format!(
                    "array.password_env: the environment variable {var} is not set: export \
                     it with the password of array user {} before running",
                    a.user
                )))
            }
        };
        let cfg = config_of(a, password).map_err(StepError::Failed)?;
        cx.progress.message("connecting to the array's API");
        match Client::connect(cfg.clone()) {
            Ok((c, _)) => Ok(c),
            Err(ArrayError::Certificate {
                controller,
                fingerprint,
                reason,
            }) if cx.ask.interactive() && cfg.trust == Trust::Nothing => {
                let q = format!(
                    "{controller} presents a certificate with SHA-256 fingerprint {fingerprint}. \
                     Compare it with the controller's (System Manager: Settings > \
                     Certificates). Trust it"
                );
                match cx
                    .ask
                    .prompt("array.tls", &q, Question::Confirm { default: false })?
                {
                    Reply::Yes(true) => {}
                    _ => {
                        return Err(failed(ArrayError::Certificate {
                            controller,
                            fingerprint,
                            reason,
                        }))
                    }
                }
                let pin = fingerprint.to_string();
                if let Some(arr) = cx.ask.answers_mut().array.as_mut() {
                    arr.tls = Some(ArrayTls {
                        ca_file: None,
                        fingerprint_sha256: pin.parse::<Text>().ok(),
                    });
                }
                Client::connect(Config {
                    trust: Trust::Pin(fingerprint),
                    ..cfg
                })
                .map(|(c, _)| c)
                .map_err(failed)
            }
            Err(e) => Err(failed(e)),
        }
    }

    /// The volume names; asked from the array's unmapped volumes when missing and a
    /// person answers.
    fn volume_names(cx: &mut Ctx<'_>, o: &Observed) -> Result<Vec<String>, StepError> {
        let a = cx.ask.answers();
        let named: Vec<Option<String>> = volume_answers(a)
            .iter()
            .map(|v| v.name.as_ref().map(|n| n.to_string()))
            .collect();
        if named.iter().all(Option::is_some) {
            return Ok(named.into_iter().flatten().collect());
        }
        if a.volumes.is_some() || !cx.ask.interactive() {
            let k = named.iter().position(Option::is_none).unwrap_or(0);
            let key = if a.volumes.is_some() {
                format!("volumes[{k}].name")
            } else {
                "volume.name".to_string()
            };
            return Err(crate::steps::AskError::Missing { key }.into());
        }
        let free: Vec<&str> = o
            .volumes
            .iter()
            .filter(|v| !o.mappings.iter().any(|m| m.volume_ref == v.volume_ref))
            .map(|v| v.name.as_str())
            .collect();
        if free.is_empty() {
            return Err(StepError::Failed(
                "the array has no unmapped volume to offer: create one, or name one in \
                 volume.name"
                    .into(),
            ));
        }
        let r = cx.ask.prompt(
            "volume.name",
            "Which of the array's unmapped volumes is this host's",
            Question::Select {
                choices: &free,
                default: 0,
            },
        )?;
        let name = match r {
            Reply::Chose(i) => free.get(i).map(|s| s.to_string()),
            Reply::Text(s) => Some(s),
            Reply::Yes(_) => None,
        }
        .ok_or_else(|| StepError::Failed("volume.name: no volume chosen".into()))?;
        cx.ask.answers_mut().volume.name = name.parse::<Text>().ok();
        Ok(vec![name])
    }

    /// The subnets of the host's ports: the iscsi step's ifaces, else the answers.
    fn host_nets(cx: &Ctx<'_>) -> Vec<Ipv4Net> {
        let from_facts: Vec<Ipv4Net> = cx
            .facts
            .ifaces
            .iter()
            .filter_map(|i| i.address.parse::<Ipv4Net>().ok())
            .collect();
        if !from_facts.is_empty() {
            return from_facts;
        }
        cx.ask
            .answers()
            .known_ports()
            .iter()
            .filter_map(|(_, a)| Ipv4Net::new(a.addr(), a.prefix()).ok())
            .collect()
    }
}

/// The client's configuration from the answers' `array` section and the password.
fn config_of(a: &ArrayAnswers, password: String) -> Result<Config, String> {
    Ok(Config {
        controllers: a.controllers.iter().map(|c| c.to_string()).collect(),
        user: a.user.to_string(),
        password: Secret::new(password),
        trust: trust(a)?,
        system_id: a
            .system_id
            .as_ref()
            .map_or_else(|| "1".to_string(), |s| s.to_string()),
        timeouts: Timeouts {
            connect: Duration::from_secs(5),
            total: Duration::from_secs(30),
        },
    })
}

/// The default variable for the array's password.
pub const PASSWORD_ENV: &str = "ISER_ARRAY_PASSWORD";

/// An interactive run without an `array` section: ask whether the wizard should do the
/// array side (default no: the storage team may do it in System Manager), then the
/// controllers, user, password variable and certificate trust. The password itself is
/// asked (hidden) when it is needed and kept only in the client; a certificate with
/// neither pin nor CA is shown by its fingerprint to confirm when the client connects.
fn ask_array(cx: &mut Ctx<'_>) -> Result<Option<ArrayAnswers>, StepError> {
    let yes = cx.ask.prompt(
        "array.use",
        "Create the host and map the volumes on the array through its SANtricity API (needs \
         the controllers' management addresses and an API user)",
        Question::Confirm { default: false },
    )?;
    if yes != Reply::Yes(true) {
        return Ok(None);
    }
    let https = |t: &Text| -> Result<(), String> {
        let list = split_controllers(&t.to_string());
        if list.is_empty() {
            return Err("give one or two addresses".into());
        }
        match list.iter().find(|c| !c.starts_with("https://")) {
            Some(c) => Err(format!(
                "{c} must start with https:// (the API carries the password)"
            )),
            None => Ok(()),
        }
    };
    let controllers: Text = cx.ask.ask_value(
        "array.controllers",
        "Controller A and B management API addresses (https://HOST:8443, separated by a \
         comma)",
        None,
        &https,
    )?;
    let controllers = split_controllers(&controllers.to_string())
        .into_iter()
        .map(|c| c.parse::<Text>())
        .collect::<Result<Vec<Text>, String>>()
        .map_err(|e| StepError::Failed(format!("array.controllers: {e}")))?;
    let user: Text = cx.ask.ask_value(
        "array.user",
        "API user on the array",
        "admin".parse().ok(),
        &|_| Ok(()),
    )?;
    let password_env: EnvName = cx.ask.ask_value(
        "array.password_env",
        "Environment variable holding the API password (when it is not set the password is \
         asked, hidden, and never stored)",
        PASSWORD_ENV.parse().ok(),
        &|_| Ok(()),
    )?;
    let kinds = ["fingerprint", "ca-file"];
    let how = cx.ask.prompt(
        "array.tls.kind",
        "Trust the controllers' certificate by its fingerprint (shown to compare when \
         connecting) or by a CA file",
        Question::Select {
            choices: &kinds,
            default: 0,
        },
    )?;
    let tls = match how {
        Reply::Chose(1) => Some(ArrayTls {
            ca_file: Some(cx.ask.ask_value(
                "array.tls.ca_file",
                "CA file (PEM) that signed the controllers' certificates",
                None,
                &|_: &Text| Ok(()),
            )?),
            fingerprint_sha256: None,
        }),
        _ => None,
    };
    Ok(Some(ArrayAnswers {
        controllers,
        user,
        password_env,
        tls,
        system_id: None,
        host_type_index: None,
        host_group: None,
    }))
}

/// `https://a:8443, https://b:8443` as a list (commas or spaces between).
fn split_controllers(s: &str) -> Vec<String> {
    s.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect()
}

fn trust(a: &ArrayAnswers) -> Result<Trust, String> {
    match &a.tls {
        Some(ArrayTls {
            fingerprint_sha256: Some(f),
            ..
        }) => f
            .to_string()
            .parse()
            .map(Trust::Pin)
            .map_err(|e| format!("array.tls.fingerprint_sha256: {e}")),
        Some(ArrayTls {
            ca_file: Some(p), ..
        }) => Ok(Trust::CaFile(p.to_string().into())),
        _ => Ok(Trust::Nothing),
    }
}

impl Step for ArrayStep {
    fn name(&self) -> StepName {
        StepName::Array
    }

    fn plan(&mut self, cx: &mut Ctx<'_>) -> Result<Plan, StepError> {
        let mut plan = Plan::new(StepName::Array);
        cx.ask.check_refused("array")?;
        if cx.ask.answers().array.is_none() && cx.ask.interactive() {
            if let Some(a) = ask_array(cx)? {
                cx.ask.answers_mut().array = Some(a);
            }
        }
        let Some(a) = cx.ask.answers().array.clone() else {
            plan.note(
                "array: skipped: the answers have no array section, so the host and its \
                 mapping are made on the array by hand (SANtricity System Manager)",
            );
            return Ok(plan);
        };
        let host_name = cx.ask.want(
            "host.mapping_host_name",
            "Host name to use in the array's host mapping",
            cx.facts.hostname.as_ref().and_then(|h| h.parse().ok()),
            |x| &mut x.host.mapping_host_name,
        )?;
        let initiator_iqn = match &cx.facts.initiator_iqn {
            Some(i) => i.clone(),
            None if cx.options.dry_run => plan.learn("initiator IQN from the iscsi step"),
            None => {
                return Err(StepError::Failed(
                    "the initiator IQN is not known: run the iscsi step first".into(),
                ))
            }
        };
        let mut client = self.connect(cx, &a)?;
        let observed = observe(&mut client, a.host_group.is_some());
        log_calls(cx, &mut client);
        let observed = observed.map_err(failed)?;
        let volumes = Self::volume_names(cx, &observed)?;
        let wanted = Wanted {
            host_name: host_name.to_string(),
            host_type_index: a.host_type_index.unwrap_or(LINUX_DM_MP),
            initiator_iqn,
            volumes,
            host_group: a.host_group.as_ref().map(|g| g.to_string()),
        };
        let decision = decide(&wanted, &observed).map_err(stopped)?;
        plan.note(format!(
            "array {} (firmware {}) answered at {}",
            observed.system.name,
            observed.system.fw_version,
            client.controller()
        ));
        for n in &decision.notes {
            plan.note(n.clone());
        }
        for ch in &decision.changes {
            plan.push(crate::steps::Action::task(
                ch.id(),
                ch.describe(&wanted.host_name),
            ));
        }
        self.planned = Some(Planned {
            refs: Refs::of(&decision),
            wanted,
            decision,
            client,
        });
        Ok(plan)
    }

    fn task(&mut self, cx: &mut Ctx<'_>, id: &str) -> Result<(), StepError> {
        let p = self
            .planned
            .as_mut()
            .ok_or_else(|| StepError::Failed("internal: task before plan".into()))?;
        let ch = p
            .decision
            .changes
            .iter()
            .find(|c| c.id() == id)
            .cloned()
            .ok_or_else(|| StepError::Failed(format!("internal: no array task {id:?}")))?;
        let done = apply(&mut p.client, &ch, &mut p.refs);
        log_calls(cx, &mut p.client);
        done.map_err(failed)
    }

    fn verify(&mut self, cx: &mut Ctx<'_>) -> Result<(), StepError> {
        let Some(p) = self.planned.as_mut() else {
            // Skipped (no array section): nothing to check.
            return Ok(());
        };
        let o = observe(&mut p.client, p.wanted.host_group.is_some());
        log_calls(cx, &mut p.client);
        let o = o.map_err(failed)?;
        let again = decide(&p.wanted, &o).map_err(stopped)?;
        if !again.changes.is_empty() {
            let left: Vec<String> = again
                .changes
                .iter()
                .map(|c| c.describe(&p.wanted.host_name))
                .collect();
            return Err(StepError::Failed(format!(
                "the array does not show what was applied; still to do:\n    - {}",
                left.join("\n    - ")
            )));
        }
        let nets = Self::host_nets(cx);
        let fact = record(&p.wanted, &o, p.client.controllers(), &nets)
            .map_err(|e| StepError::Failed(format!("reading back the array: {e}")))?;
        // Each volume's WWID comes from the array: fill it in, or check the one given.
        let answers = cx.ask.answers_mut();
        let slots: Vec<&mut VolumeAnswers> = match answers.volumes.as_mut() {
            Some(list) => list.iter_mut().collect(),
            None => vec![&mut answers.volume],
        };
        for v in slots {
            let Some(name) = v.name.as_ref().map(|n| n.to_string()) else {
                continue;
            };
            let Some(f) = fact.volumes.iter().find(|f| f.name == name) else {
                continue;
            };
            match &v.wwid {
                Some(Wwid::Id(w)) if !w.eq_ignore_ascii_case(&f.wwid) => {
                    return Err(StepError::Failed(format!(
                        "volume {name}: the answers give WWID {w}, but the array's volume has \
                         WWN {} (WWID {}): remove wwid or correct it",
                        f.wwn, f.wwid
                    )));
                }
                _ => v.wwid = Some(Wwid::Id(f.wwid.clone())),
            }
        }
        cx.sheet.host.mapping_host_name = Some(fact.host_name.clone());
        crate::worksheets::fill_array(cx.sheet, &fact);
        cx.facts.array = Some(fact);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prompt::Asker;
    use crate::steps::fake::FakeHost;
    use crate::steps::testkit::Run;
    use crate::steps::{Ask, Facts};
    use serde_json::json;

    fn run(script: serde_json::Value) -> Run {
        let mut r = Run::new(
            json!({"version": 1}),
            Facts {
                hostname: Some("db01".into()),
                initiator_iqn: Some("iqn.1994-05.com.redhat:db01".into()),
                ..Facts::default()
            },
        );
        r.ask = Asker::scripted(script);
        r
    }

    fn step() -> ArrayStep {
        ArrayStep {
            env: |k| (k == PASSWORD_ENV).then(|| "pw-never-recorded".to_string()),
            planned: None,
        }
    }

    #[test]
    fn an_interactive_run_asks_for_the_array_and_records_no_password() {
        let mut r = run(json!({"array": {
            "use": true,
            "controllers": "https://127.0.0.1:1, https://127.0.0.1:2",
            "user": "ops"
        }}));
        let h = FakeHost::new();
        // Nothing listens there: the plan stops at the connection, after the questions.
        let e = r.with(&h, |cx| step().plan(cx)).unwrap_err();
        assert!(e.to_string().contains("no controller answered"), "{e}");
        let a = r
            .ask
            .answers()
            .array
            .clone()
            .expect("the array section was asked");
        let c: Vec<String> = a.controllers.iter().map(|c| c.to_string()).collect();
        assert_eq!(c, ["https://127.0.0.1:1", "https://127.0.0.1:2"]);
        assert_eq!(a.user.to_string(), "ops");
        assert_eq!(a.password_env.to_string(), PASSWORD_ENV);
        assert_eq!(
            a.tls, None,
            "the fingerprint is shown to confirm on connecting"
        );
        let rec = r.ask.recorded().to_string();
        assert!(
            rec.contains("\"password_env\":\"ISER_ARRAY_PASSWORD\""),
            "{rec}"
        );
        assert!(!rec.contains("pw-never-recorded"), "{rec}");
        assert!(!rec.contains("\"use\""), "{rec}");
    }

    #[test]
    fn a_run_past_the_array_step_takes_the_wwids_it_recorded() {
        use crate::steps::facts::{ArrayFact, ArrayVolumeFact};
        let mut a: crate::settings::Answers = serde_json::from_value(json!({
            "version": 1,
            "array": {"controllers": ["https://a:8443"], "user": "admin",
                      "password_env": "ISER_ARRAY_PASSWORD"},
            "volumes": [
                {"name": "Matthew", "mount_point": "/data"},
                {"name": "Micah", "mount_point": "/logs", "wwid": "3600a0000000000000000000000000001"},
                {"name": "Other", "mount_point": "/other"}
            ]
        }))
        .unwrap();
        let vol = |name: &str, wwid: &str| ArrayVolumeFact {
            name: name.into(),
            wwid: wwid.into(),
            ..ArrayVolumeFact::default()
        };
        let facts = Facts {
            array: Some(ArrayFact {
                volumes: vec![
                    vol("Matthew", "3600a098000a4b9d100000f095c2f7f31"),
                    vol("Micah", "3600a098000a4b9d100000f0b5c2f7f40"),
                ],
                ..ArrayFact::default()
            }),
            ..Facts::default()
        };
        assert_eq!(wwids_from_state(&mut a, &facts), 1);
        let w: Vec<Option<String>> = a
            .volume_list()
            .iter()
            .map(|v| v.wwid.as_ref().map(|w| w.to_string()))
            .collect();
        assert_eq!(
            w,
            [
                Some("3600a098000a4b9d100000f095c2f7f31".to_string()),
                Some("3600a0000000000000000000000000001".to_string()),
                None
            ],
            "a given WWID is kept (the array step checks it when it runs); an unrecorded \
             volume is left"
        );
        a.array = None;
        a.volume_mut(0).wwid = None;
        assert_eq!(
            wwids_from_state(&mut a, &facts),
            0,
            "no array section: no fill"
        );
    }

    #[test]
    fn the_array_side_is_not_done_unless_the_operator_says_yes() {
        let mut r = run(json!({}));
        let h = FakeHost::new();
        let plan = r.with(&h, |cx| step().plan(cx)).unwrap();
        assert!(plan.actions.is_empty());
        assert!(r.ask.answers().array.is_none());
    }

    #[test]
    fn a_ca_file_is_asked_when_chosen_and_plain_http_is_refused_as_typed() {
        let mut r = run(json!({"array": {
            "use": true,
            "controllers": "https://10.0.0.1:8443",
            "tls": {"kind": "ca-file", "ca_file": "/etc/ssl/array-ca.pem"}
        }}));
        let h = FakeHost::new();
        let _ = r.with(&h, |cx| step().plan(cx));
        let a = r.ask.answers().array.clone().unwrap();
        assert_eq!(
            a.tls.and_then(|t| t.ca_file).map(|c| c.to_string()),
            Some("/etc/ssl/array-ca.pem".to_string())
        );
        let mut r = run(json!({"array": {"use": true, "controllers": "http://10.0.0.1"}}));
        let e = r.with(&h, |cx| step().plan(cx)).unwrap_err();
        assert!(e.to_string().contains("must start with https://"), "{e}");
    }
}
