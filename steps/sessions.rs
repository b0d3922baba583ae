//! The sessions step: node records for exactly the expected (iface, portal) pairs, logged
//! in over iSER.
//!
//! A target portal belongs to the port whose subnet contains it; the expected pairs are
//! each answers' portal with the iface of that port. Probes: the sessions
//! (`iscsiadm -m session -P 1`), the node records (`iscsiadm -m node -P 1`) and the record
//! of each expected pair. Plans, each only where the host differs:
//! - node records: SendTargets discovery from each port's iface to a portal of its subnet,
//!   concurrently and time-bounded (an iface whose portal does not answer tries the next
//!   portal of its subnet), in a task because its result decides the rest; a
//!   target reports every portal to every iface (open-iscsi issue 439), so the records it
//!   creates for any other pair are deleted before login. Or, with
//!   `target.discovery = "manual"`, one `-o new` record per expected pair. Records of the
//!   target for other pairs left by earlier runs are deleted too (not while a session uses
//!   one: verify then names that session).
//! - the target IQN: checked against `target.iqn` (a mismatch names both), or taken from
//!   discovery with `"discover"`.
//! - each record brought to the answers' settings (`node.startup`, replacement and login
//!   timeouts, CHAP): iscsid.conf only seeds new records.
//! - login of every expected pair not logged in, concurrently and time-bounded; exit 15
//!   (session exists) is success, 24 is named an authentication failure, 8/11/33 a timeout
//!   of the named portal.
//!
//! Verify rescans, then requires exactly one LOGGED_IN iSER session per expected pair and
//! no other session to the target, and records the sessions, their disks and the subnets.
//!
//! The CHAP secret is read from the environment variable the answers name, passed to
//! iscsiadm only as a masked [`Cmd::secret`], and never written to a plan, log, fact or
//! the worksheet.

use std::collections::BTreeSet;
use std::fmt;

use std::time::Duration;

use crate::settings::{self, Discovery, HostAddr, Netdev, PortalAddr, TargetIqn};
use crate::steps::facts::{IfaceFact, SessionFact};
use crate::steps::host::HostError;
use crate::steps::iscsi::{planned_ifaces, DEFAULT_REPLACEMENT_TIMEOUT, LOGIN_TIMEOUT};
use crate::steps::parse::iscsiadm::{
    classify_exit, parse_discovery, parse_nodes, parse_record, parse_session_p3, IscsiadmError,
    NodeRef, Portal, SessionDetail,
};
use crate::steps::{Action, AskError, Cmd, CmdOutput, Ctx, Plan, Step, StepError, StepName};
use crate::worksheets::{SessionRecord, SubnetRecord};

/// Wall-clock bound of one SendTargets discovery. A reachable portal answers within a
/// second; an unreachable one keeps iscsiadm retrying for about a minute (lab capture
/// `iscsiadm-discovery-unreachable`), so it is cut short here and named.
pub const DISCOVERY_BOUND: Duration = Duration::from_secs(20);
/// Wall-clock bound of one login. With the iscsi step's 5 s login timeout, iscsiadm itself
/// gives up on an unreachable portal after 8 tries (about 40 s) and says why; this bound
/// only catches a login that hangs beyond that.
pub const LOGIN_BOUND: Duration = Duration::from_secs(60);

/// An expected session: the iface and the target portal it reaches.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Pair {
    iface: String,
    portal: Portal,
}

impl fmt::Display for Pair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} via {}", self.portal, self.iface)
    }
}

/// A target portal from the answers, with the index of the iface in its subnet.
#[derive(Debug, Clone)]
struct TargetPortal {
    portal: Portal,
    label: Option<String>,
    iface: usize,
}

/// CHAP credentials; the secret never leaves a masked [`Cmd`].
#[derive(Clone)]
struct Chap {
    username: String,
    secret: String,
    env: String,
}

impl fmt::Debug for Chap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Chap {{ username: {:?}, secret: ******, env: {:?} }}",
            self.username, self.env
        )
    }
}

/// A node record setting the answers ask for.
struct Setting {
    key: &'static str,
    value: String,
    secret: bool,
}

/// What the step wants, kept from plan for its tasks and verify.
#[derive(Debug, Clone)]
struct Want {
    explicit_iqn: Option<String>,
    ifaces: Vec<IfaceFact>,
    portals: Vec<TargetPortal>,
    pairs: Vec<Pair>,
    replacement_timeout: u32,
    chap: Option<Chap>,
    discover_from: Vec<Pair>,
    login: Vec<Pair>,
}

impl Want {
    fn settings(&self) -> Vec<Setting> {
        let s = |key, value: String, secret| Setting { key, value, secret };
        let mut out = vec![
            s("node.startup", "automatic".into(), false),
            s(
                "node.session.timeo.replacement_timeout",
                self.replacement_timeout.to_string(),
                false,
            ),
            s(
                "node.conn[0].timeo.login_timeout",
                LOGIN_TIMEOUT.to_string(),
                false,
            ),
        ];
        match &self.chap {
            Some(c) => {
                out.push(s("node.session.auth.authmethod", "CHAP".into(), false));
                out.push(s("node.session.auth.username", c.username.clone(), false));
                out.push(s("node.session.auth.password", c.secret.clone(), true));
            }
            None => out.push(s("node.session.auth.authmethod", "None".into(), false)),
        }
        out
    }

    /// The command with the CHAP secret (if any) masked wherever it or its output is shown:
    /// a target or iscsiadm may echo it.
    fn masked(&self, cmd: Cmd) -> Cmd {
        match &self.chap {
            Some(c) => cmd.secret(c.secret.clone()),
            None => cmd,
        }
    }

    fn iface(&self, name: &str) -> Option<&IfaceFact> {
        self.ifaces.iter().find(|i| i.name == name)
    }

    /// "from vA (`ping -I vA 192.168.130.101`)": how to check reachability of a pair.
    fn reach_hint(&self, p: &Pair) -> String {
        match self.iface(&p.iface) {
            Some(i) => format!(
                "check the link of {} and `ping -I {} {}`",
                i.netdev, i.netdev, p.portal.address
            ),
            None => format!("check that {} is reachable", p.portal.address),
        }
    }
}

/// The sessions step.
pub struct Sessions {
    env: fn(&str) -> Option<String>,
    want: Option<Want>,
    iqn: Option<String>,
    /// How long verify waits for the kernel to attach each session's LUNs.
    disk_wait: Duration,
}

/// The kernel attaches a new session's SCSI disks a moment after the login returns (seen in
/// the lab: a session listed with no disk yet, and the next step finding no LUN).
const DISK_WAIT: Duration = Duration::from_secs(20);

impl fmt::Debug for Sessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sessions")
            .field("want", &self.want)
            .field("iqn", &self.iqn)
            .finish()
    }
}

fn real_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

impl Default for Sessions {
    fn default() -> Self {
        Sessions {
            env: real_env,
            want: None,
            iqn: None,
            disk_wait: DISK_WAIT,
        }
    }
}

impl Sessions {
    /// A step reading environment variables (the CHAP secret) through `env`.
    pub fn with_env(env: fn(&str) -> Option<String>) -> Self {
        Sessions {
            env,
            ..Default::default()
        }
    }

    fn want(&self) -> Result<&Want, StepError> {
        self.want
            .as_ref()
            .ok_or_else(|| StepError::Failed("internal: the sessions step was not planned".into()))
    }

    fn iqn(&self) -> Result<String, StepError> {
        self.iqn.clone().ok_or_else(|| {
            StepError::Failed("internal: the target IQN is not known before discovery".into())
        })
    }
}

/// The step implementation.
pub fn step() -> Box<dyn Step> {
    Box::new(Sessions::default())
}

fn node_cmd(iqn: &str, p: &Pair, tail: &[&str]) -> Cmd {
    let portal = p.portal.to_string();
    let mut argv = vec![
        "iscsiadm", "-m", "node", "-T", iqn, "-p", &portal, "-I", &p.iface,
    ];
    argv.extend_from_slice(tail);
    Cmd::change(argv)
}

/// The updates that bring a record to the answers' settings (`current` `None`: a record
/// not created yet, everything is set).
fn update_cmds(
    iqn: &str,
    p: &Pair,
    current: Option<&std::collections::BTreeMap<String, String>>,
    want: &Want,
) -> Vec<Cmd> {
    want.settings()
        .into_iter()
        .filter(|s| current.and_then(|c| c.get(s.key)) != Some(&s.value))
        .map(|s| {
            want.masked(node_cmd(
                iqn,
                p,
                &["-o", "update", "-n", s.key, "-v", &s.value],
            ))
        })
        .collect()
}

/// Run an iscsiadm listing; exit 21 (nothing to list) is an empty listing.
fn listing(cx: &Ctx<'_>, cmd: Cmd) -> Result<String, StepError> {
    let out = cx.host.run(&cmd)?;
    match out.code.map(classify_exit) {
        Some(e) if e.listing_ok() => Ok(if out.success() {
            out.stdout
        } else {
            String::new()
        }),
        _ => Err(StepError::command(
            &cmd,
            &out,
            Some("is iscsid running? The iscsi step starts it (`systemctl status iscsid`)".into()),
        )),
    }
}

fn session_pair(s: &SessionDetail) -> Option<Pair> {
    Some(Pair {
        iface: s.iface_name.clone()?,
        portal: s
            .persistent_portal
            .clone()
            .or_else(|| s.current_portal.clone())?,
    })
}

fn node_pair(n: &NodeRef) -> Option<Pair> {
    Some(Pair {
        iface: n.iface.clone()?,
        portal: n.portal.clone(),
    })
}

/// The answers' `target.portals`; in an interactive run without them, asked: controllers A
/// and B on each host port's subnet (the recommended layout), each port given as its netdev
/// and address, and each address checked against that port's subnet as it is typed. The
/// network step asks first, to ping them; this step then finds them answered.
pub(crate) fn portal_answers(
    cx: &mut Ctx<'_>,
    ports: &[(Netdev, HostAddr)],
) -> Result<Vec<settings::Portal>, StepError> {
    cx.ask.check_refused("target.portals")?;
    if let Some(list) = &cx.ask.answers().target.portals {
        return Ok(list.clone());
    }
    if !cx.ask.interactive() {
        return Err(AskError::Missing {
            key: "target.portals".into(),
        }
        .into());
    }
    let addrs: Vec<HostAddr> = ports.iter().map(|(_, a)| *a).collect();
    let mut list = Vec::new();
    for (i, (netdev, address)) in ports.iter().enumerate() {
        for (j, ctrl) in ["A", "B"].iter().enumerate() {
            let k = 2 * i + j;
            let on_this_port = |p: &PortalAddr| match settings::owner_of(&addrs, p.ip()) {
                Ok(owner) if owner == i => Ok(()),
                Ok(owner) => Err(format!(
                    "{} is on {}'s subnet, not {netdev}'s ({address}): give controller {ctrl}'s \
                     port on {netdev}'s subnet",
                    p.ip(),
                    ports[owner].0
                )),
                Err(e) => Err(settings::owner_message(ports, p.ip(), e)),
            };
            let address = cx.ask.ask_value(
                &format!("target.portals[{k}].address"),
                &format!("Controller {ctrl} iSER port address on {netdev}'s subnet ({address})"),
                None,
                &on_this_port,
            )?;
            let label = format!("Controller {ctrl}, port {}", i + 1).parse().ok();
            list.push(settings::Portal { address, label });
        }
    }
    cx.ask.answers_mut().target.portals = Some(list.clone());
    Ok(list)
}

/// The answers' target portals, each with the iface of its subnet.
fn target_portals(cx: &mut Ctx<'_>, ifaces: &[IfaceFact]) -> Result<Vec<TargetPortal>, StepError> {
    let ports = iface_ports(ifaces)?;
    let list = portal_answers(cx, &ports)?;
    let resolved = settings::resolve_portals(&ports, &list).map_err(|e| {
        let k = list
            .iter()
            .position(|p| settings::resolve_portals(&ports, std::slice::from_ref(p)).is_err())
            .unwrap_or(0);
        StepError::Failed(format!("target.portals[{k}].address: {e}"))
    })?;
    Ok(resolved
        .into_iter()
        .map(|r| TargetPortal {
            portal: Portal {
                address: r.portal.address.ip().to_string(),
                port: r.portal.address.port(),
            },
            label: r.portal.label.map(|l| l.to_string()),
            iface: r.port,
        })
        .collect())
}

/// The ifaces' ports as typed values (their facts keep the text the network step wrote).
pub(crate) fn iface_ports(ifaces: &[IfaceFact]) -> Result<Vec<(Netdev, HostAddr)>, StepError> {
    ifaces
        .iter()
        .map(|i| {
            let bad = |e: String| StepError::Failed(format!("iface {}: {e}", i.name));
            Ok((
                i.netdev.parse().map_err(bad)?,
                i.address.parse().map_err(bad)?,
            ))
        })
        .collect()
}

fn chap(cx: &Ctx<'_>, env: fn(&str) -> Option<String>) -> Result<Option<Chap>, StepError> {
    cx.ask.check_refused("target.chap")?;
    let Some(Some(c)) = &cx.ask.answers().target.chap else {
        return Ok(None);
    };
    let username = c.username.to_string();
    let var = c.password_env.to_string();
    let secret = env(&var).filter(|s| !s.is_empty()).ok_or_else(|| {
        StepError::Failed(format!(
            "target.chap.password_env: the environment variable {var} is not set: export it \
             with the CHAP secret before running"
        ))
    })?;
    Ok(Some(Chap {
        username,
        secret,
        env: var,
    }))
}

/// The target of existing records when they cover every expected pair with one target.
fn existing_target(pairs: &[Pair], nodes: &[NodeRef]) -> Option<String> {
    let targets: BTreeSet<&str> = nodes
        .iter()
        .filter(|n| node_pair(n).is_some_and(|p| pairs.contains(&p)))
        .map(|n| n.target.as_str())
        .collect();
    let [t] = targets.into_iter().collect::<Vec<_>>()[..] else {
        return None;
    };
    let covered = pairs.iter().all(|p| {
        nodes
            .iter()
            .any(|n| n.target == t && node_pair(n).as_ref() == Some(p))
    });
    covered.then(|| t.to_string())
}

/// Why a login or discovery command failed, in the operator's words.
fn failure(what: &str, p: &Pair, out: &CmdOutput, bound: Duration, want: &Want) -> String {
    if out.timed_out || out.code.is_none() {
        return format!(
            "{what} {p}: no answer within {}s (killed): {} is unreachable or does not answer; {}",
            bound.as_secs(),
            p.portal,
            want.reach_hint(p)
        );
    }
    let code = out.code.unwrap_or(-1);
    let text = format!("{}\n{}", out.stdout, out.stderr);
    let err = IscsiadmError::from_output(code, &text).unwrap_or(IscsiadmError {
        exit: classify_exit(code),
        detail: None,
    });
    if err.exit.is_timeout() {
        format!(
            "{what} {p} timed out ({err}): {} does not answer; {}",
            p.portal,
            want.reach_hint(p)
        )
    } else if err.exit.is_auth() {
        let chap = match &want.chap {
            Some(c) => format!(
                "check target.chap.username ({}) and the secret in ${} against the array",
                c.username, c.env
            ),
            None => "the target wants CHAP (set target.chap)".into(),
        };
        format!(
            "{what} {p} was refused: authentication failed ({err}): {chap}, and that the array's \
             host mapping lists this host's initiator IQN"
        )
    } else {
        format!("{what} {p} failed: {err}")
    }
}

/// Run one command per pair concurrently; results in the order given.
fn run_concurrently(
    cx: &Ctx<'_>,
    jobs: Vec<(Pair, Cmd)>,
) -> Result<Vec<(Pair, Cmd, CmdOutput)>, StepError> {
    let host = cx.host;
    type Joined = std::thread::Result<(Pair, Cmd, Result<CmdOutput, HostError>)>;
    let results: Vec<Joined> = std::thread::scope(|s| {
        let handles: Vec<_> = jobs
            .into_iter()
            .map(|(p, cmd)| {
                s.spawn(move || {
                    let r = host.run(&cmd);
                    (p, cmd, r)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join()).collect()
    });
    let mut out = Vec::new();
    for joined in results {
        let (p, cmd, r) =
            joined.map_err(|_| StepError::Failed("internal: a command thread panicked".into()))?;
        out.push((p, cmd, r?));
    }
    Ok(out)
}

impl Sessions {
    fn task_discover(&mut self, cx: &mut Ctx<'_>) -> Result<(), StepError> {
        let want = self.want()?.clone();
        let discovery = |p: &Pair| {
            let portal = p.portal.to_string();
            let cmd = Cmd::change([
                "iscsiadm",
                "-m",
                "discovery",
                "-t",
                "st",
                "-p",
                &portal,
                "-I",
                &p.iface,
            ])
            .timeout(DISCOVERY_BOUND);
            (p.clone(), want.masked(cmd))
        };
        // One portal per iface at first, all at once. An iface whose portal fails tries the
        // next portal of its subnet (the other controller), so one controller that is down,
        // or a target that drops one SendTargets request, does not stop the run.
        let mut attempts: Vec<Pair> = want.discover_from.clone();
        let mut tried: BTreeSet<Pair> = BTreeSet::new();
        let mut failures: Vec<(String, String)> = Vec::new();
        let mut answered: BTreeSet<String> = BTreeSet::new();
        let mut found: Vec<(Pair, NodeRef)> = Vec::new();
        cx.progress.message("SendTargets discovery");
        while !attempts.is_empty() {
            tried.extend(attempts.iter().cloned());
            let results = run_concurrently(cx, attempts.iter().map(discovery).collect())?;
            let mut next = Vec::new();
            for (p, cmd, out) in &results {
                if out.success() {
                    answered.insert(p.iface.clone());
                    for n in parse_discovery(&out.stdout) {
                        found.push((p.clone(), n));
                    }
                    continue;
                }
                let text = failure("SendTargets discovery at", p, out, DISCOVERY_BOUND, &want);
                failures.push((p.iface.clone(), cmd.mask(&text)));
                if let Some(other) = want
                    .pairs
                    .iter()
                    .find(|q| q.iface == p.iface && !tried.contains(*q))
                {
                    next.push(other.clone());
                }
            }
            if !next.is_empty() {
                cx.progress.message(&format!(
                    "SendTargets discovery: trying {}",
                    next.iter()
                        .map(|p| p.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            attempts = next;
        }
        let problems: Vec<&str> = failures
            .iter()
            .filter(|(iface, _)| !answered.contains(iface))
            .map(|(_, text)| text.as_str())
            .collect();
        if !problems.is_empty() {
            return Err(StepError::Failed(format!(
                "discovery failed:\n    - {}",
                problems.join("\n    - ")
            )));
        }
        for (iface, text) in &failures {
            cx.sheet.note(format!(
                "sessions: {text}; discovery via {iface} used another portal of its subnet"
            ));
        }
        let targets: BTreeSet<&str> = found.iter().map(|(_, n)| n.target.as_str()).collect();
        let sources = want
            .discover_from
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let listed = targets.iter().copied().collect::<Vec<_>>().join(", ");
        let chosen: Result<String, String> = match &want.explicit_iqn {
            Some(iqn) if targets.contains(iqn.as_str()) => Ok(iqn.clone()),
            Some(iqn) => Err(format!(
                "target.iqn is {iqn}, but SendTargets at {sources} reported {}: correct \
                 target.iqn in the answers (or set it to \"discover\")",
                if listed.is_empty() {
                    "no target"
                } else {
                    &listed
                }
            )),
            None => match targets.iter().collect::<Vec<_>>()[..] {
                [t] => Ok(t.to_string()),
                [] => Err(format!(
                    "SendTargets at {sources} reported no target: check that the array maps \
                     a volume to this host's initiator IQN"
                )),
                _ => Err(format!(
                    "SendTargets at {sources} reported several targets ({listed}): set \
                     target.iqn to the one to use"
                )),
            },
        };
        // The target reports every portal to every iface: drop each record that is not an
        // expected pair before anything logs in to it (now, or at boot). When the target
        // is not the one expected, none is: discovery leaves nothing behind.
        let mut kept = BTreeSet::new();
        let mut seen = BTreeSet::new();
        for (source, n) in &found {
            let p = Pair {
                iface: source.iface.clone(),
                portal: n.portal.clone(),
            };
            if !seen.insert((n.target.clone(), p.clone())) {
                continue;
            }
            if chosen.as_deref() == Ok(n.target.as_str()) && want.pairs.contains(&p) {
                kept.insert(p);
                continue;
            }
            let cmd = node_cmd(&n.target, &p, &["-o", "delete"]);
            let out = cx.host.run(&cmd)?;
            if !out.success() {
                return Err(StepError::command(
                    &cmd,
                    &out,
                    Some(format!(
                        "the record of {p} is not an expected pair and must not log in at \
                         boot: delete it by hand"
                    )),
                ));
            }
        }
        let iqn = chosen.map_err(StepError::Failed)?;
        let unreported: Vec<String> = want
            .pairs
            .iter()
            .filter(|p| want.discover_from.iter().any(|d| d.iface == p.iface))
            .filter(|p| !kept.contains(*p))
            .map(|p| p.to_string())
            .collect();
        if !unreported.is_empty() {
            return Err(StepError::Failed(format!(
                "SendTargets did not report {} for target {iqn}: check target.portals against \
                 the array's iSER port addresses",
                unreported.join(", ")
            )));
        }
        self.iqn = Some(iqn);
        Ok(())
    }

    fn task_configure(&mut self, cx: &mut Ctx<'_>) -> Result<(), StepError> {
        let want = self.want()?.clone();
        let iqn = self.iqn()?;
        for p in &want.pairs {
            for cmd in update_cmds(&iqn, p, None, &want) {
                let out = cx.host.run(&cmd)?;
                if !out.success() {
                    return Err(StepError::command(&cmd, &out, None));
                }
            }
        }
        Ok(())
    }

    fn task_login(&mut self, cx: &mut Ctx<'_>) -> Result<(), StepError> {
        let want = self.want()?.clone();
        let iqn = self.iqn()?;
        let jobs: Vec<(Pair, Cmd)> = want
            .login
            .iter()
            .map(|p| {
                let cmd = node_cmd(&iqn, p, &["--login"]).timeout(LOGIN_BOUND);
                (p.clone(), want.masked(cmd))
            })
            .collect();
        cx.progress.message("logging in");
        let results = run_concurrently(cx, jobs)?;
        let problems: Vec<String> = results
            .iter()
            .filter(|(_, _, out)| {
                out.timed_out || !out.code.is_some_and(|c| classify_exit(c).login_ok())
            })
            .map(|(p, cmd, out)| cmd.mask(&failure("login to", p, out, LOGIN_BOUND, &want)))
            .collect();
        if !problems.is_empty() {
            return Err(StepError::Failed(format!(
                "{} of {} logins failed:\n    - {}",
                problems.len(),
                results.len(),
                problems.join("\n    - ")
            )));
        }
        Ok(())
    }
}

fn subnet_records(want: &Want) -> Vec<SubnetRecord> {
    let show = |p: &Portal| {
        if p.port == 3260 {
            p.address.clone()
        } else {
            p.to_string()
        }
    };
    want.ifaces
        .iter()
        .enumerate()
        .map(|(i, iface)| {
            let name = char::from(b'A' + (i as u8).min(25)).to_string();
            let mut rec = SubnetRecord {
                name,
                ..Default::default()
            };
            if let Ok(addr) = iface.address.parse::<HostAddr>() {
                rec.network = Some(addr.network().to_string());
                rec.netmask = Some(addr.netmask().to_string());
                rec.host_port = Some(addr.addr().to_string());
            }
            let mine: Vec<&TargetPortal> = want.portals.iter().filter(|p| p.iface == i).collect();
            let label_is = |p: &TargetPortal, c: &str| {
                p.label
                    .as_deref()
                    .is_some_and(|l| l.to_lowercase().contains(&format!("controller {c}")))
            };
            let a = mine.iter().position(|p| label_is(p, "a"));
            let b = mine.iter().position(|p| label_is(p, "b"));
            let mut rest: Vec<usize> = (0..mine.len())
                .filter(|k| Some(*k) != a && Some(*k) != b)
                .collect();
            // Without labels, the order within the subnet: controller A first, then B.
            let a = a.or_else(|| (!rest.is_empty()).then(|| rest.remove(0)));
            let b = b.or_else(|| (!rest.is_empty()).then(|| rest.remove(0)));
            rec.controller_a = a.map(|k| show(&mine[k].portal));
            rec.controller_b = b.map(|k| show(&mine[k].portal));
            rec.other_portals = rest
                .into_iter()
                .map(|k| match &mine[k].label {
                    Some(l) => format!("{} ({l})", show(&mine[k].portal)),
                    None => show(&mine[k].portal),
                })
                .collect();
            rec
        })
        .collect()
}

impl Step for Sessions {
    fn name(&self) -> StepName {
        StepName::Sessions
    }

    fn plan(&mut self, cx: &mut Ctx<'_>) -> Result<Plan, StepError> {
        let ifaces = if cx.facts.ifaces.is_empty() {
            planned_ifaces(cx)?
        } else {
            cx.facts.ifaces.clone()
        };
        let iqn_answer = cx
            .ask
            .want(
                "target.iqn",
                "Target IQN (\"discover\" takes it from SendTargets)",
                Some(TargetIqn::Discover),
                |a| &mut a.target.iqn,
            )?
            .to_string();
        let manual = cx.ask.want_choice(
            "target.discovery",
            "How to find the target's portals",
            Discovery::ALL,
            Discovery::SendTargets,
            |a| &mut a.target.discovery,
        )? == Discovery::Manual;
        if manual && iqn_answer == "discover" {
            return Err(StepError::Failed(
                "target.iqn: \"discover\" needs SendTargets discovery, but target.discovery is \
                 \"manual\": give the target IQN, or use \"sendtargets\""
                    .into(),
            ));
        }
        let portals = target_portals(cx, &ifaces)?;
        let replacement_timeout = cx.ask.want_number(
            "iscsi.replacement_timeout",
            "Seconds a failed path may take to come back before I/O fails over",
            Some(DEFAULT_REPLACEMENT_TIMEOUT),
            (1, 3600),
            |a| &mut a.iscsi.replacement_timeout,
        )?;
        let chap = chap(cx, self.env)?;
        let pairs: Vec<Pair> = portals
            .iter()
            .map(|p| Pair {
                iface: ifaces[p.iface].name.clone(),
                portal: p.portal.clone(),
            })
            .collect();
        let explicit_iqn = (iqn_answer != "discover").then_some(iqn_answer);
        let mut want = Want {
            explicit_iqn: explicit_iqn.clone(),
            ifaces,
            portals,
            pairs,
            replacement_timeout,
            chap,
            discover_from: Vec::new(),
            login: Vec::new(),
        };

        let sessions = parse_session_p3(&listing(
            cx,
            Cmd::probe(["iscsiadm", "-m", "session", "-P", "1"]),
        )?);
        let nodes = parse_nodes(&listing(
            cx,
            Cmd::probe(["iscsiadm", "-m", "node", "-P", "1"]),
        )?);
        let iqn = explicit_iqn.or_else(|| existing_target(&want.pairs, &nodes));

        let mut plan = Plan::new(StepName::Sessions);
        let mut updates = Vec::new();
        let mut discover = false;
        match &iqn {
            Some(iqn) => {
                let have: BTreeSet<Pair> = nodes
                    .iter()
                    .filter(|n| n.target == *iqn)
                    .filter_map(node_pair)
                    .collect();
                for p in &have {
                    if want.pairs.contains(p) {
                        continue;
                    }
                    let busy = sessions
                        .iter()
                        .any(|s| s.target == *iqn && session_pair(s).as_ref() == Some(p));
                    if busy {
                        plan.note(format!(
                            "a session uses the record of {p}, which is not an expected pair: \
                             it is kept (verify names the session to log out)"
                        ));
                    } else {
                        plan.push(Action::run(
                            node_cmd(iqn, p, &["-o", "delete"]),
                            "not an expected pair (other subnet, or not in target.portals): \
                             it must not log in at boot",
                        ));
                    }
                }
                let missing: Vec<Pair> = want
                    .pairs
                    .iter()
                    .filter(|p| !have.contains(*p))
                    .cloned()
                    .collect();
                if manual {
                    for p in &missing {
                        plan.push(Action::run(
                            node_cmd(iqn, p, &["-o", "new"]),
                            "a node record for this pair (manual discovery)",
                        ));
                    }
                } else if !missing.is_empty() {
                    discover = true;
                    for p in &missing {
                        if !want.discover_from.iter().any(|d| d.iface == p.iface) {
                            // The first portal of the iface's subnet, in the answers' order.
                            let first = want
                                .pairs
                                .iter()
                                .find(|q| q.iface == p.iface)
                                .cloned()
                                .unwrap_or_else(|| p.clone());
                            want.discover_from.push(first);
                        }
                    }
                }
                for p in &want.pairs {
                    let current = if have.contains(p) {
                        let mut argv = vec![
                            "iscsiadm".to_string(),
                            "-m".into(),
                            "node".into(),
                            "-T".into(),
                            iqn.clone(),
                            "-p".into(),
                            p.portal.to_string(),
                            "-I".into(),
                            p.iface.clone(),
                        ];
                        let mut cmd = Cmd::probe(argv.clone());
                        if let Some(c) = &want.chap {
                            // -S shows the stored secret, to compare; masked in the log.
                            argv.push("-S".into());
                            cmd = Cmd::probe(argv).secret(c.secret.clone());
                        }
                        let out = cx.host.run(&cmd)?;
                        if !out.success() {
                            return Err(StepError::command(&cmd, &out, None));
                        }
                        Some(parse_record(&out.stdout))
                    } else {
                        None
                    };
                    for cmd in update_cmds(iqn, p, current.as_ref(), &want) {
                        updates.push(cmd);
                    }
                }
            }
            None => {
                discover = true;
                for (i, _) in want.ifaces.iter().enumerate() {
                    if let Some(tp) = want.portals.iter().find(|tp| tp.iface == i) {
                        want.discover_from.push(Pair {
                            iface: want.ifaces[i].name.clone(),
                            portal: tp.portal.clone(),
                        });
                    }
                }
            }
        }

        if discover {
            let from = want
                .discover_from
                .iter()
                .map(|p| format!("from {} at {}", p.iface, p.portal))
                .collect::<Vec<_>>()
                .join(", ");
            plan.push(Action::task(
                "discover",
                format!(
                    "SendTargets discovery {from} (concurrently, each cut off after {}s, \
                     then the next portal of the subnet for an iface whose portal did not \
                     answer){}; then delete every record it creates that is not an expected pair (a \
                     target reports all its portals to every iface)",
                    DISCOVERY_BOUND.as_secs(),
                    if iqn.is_none() {
                        ", taking the target IQN from it"
                    } else {
                        ""
                    }
                ),
            ));
        }
        if iqn.is_some() {
            for cmd in updates {
                let why = match cmd.argv.get(12).map(String::as_str) {
                    Some("node.startup") => "log in at boot",
                    Some("node.session.timeo.replacement_timeout") => {
                        "fail over per iscsi.replacement_timeout"
                    }
                    Some("node.conn[0].timeo.login_timeout") => "give up fast on a dead portal",
                    _ => "authentication per target.chap",
                };
                plan.push(Action::run(cmd, why));
            }
        } else {
            let settings = want
                .settings()
                .iter()
                .map(|s| {
                    if s.secret {
                        format!(
                            "{} from ${}",
                            s.key,
                            want.chap.as_ref().map(|c| c.env.as_str()).unwrap_or("")
                        )
                    } else {
                        format!("{} {}", s.key, s.value)
                    }
                })
                .collect::<Vec<_>>()
                .join(", ");
            plan.push(Action::task(
                "configure",
                format!("set on each kept node record: {settings}"),
            ));
        }

        let logged_in: BTreeSet<Pair> = sessions
            .iter()
            .filter(|s| s.is_logged_in())
            .filter(|s| iqn.as_deref().is_some_and(|t| s.target == t))
            .filter_map(session_pair)
            .collect();
        want.login = want
            .pairs
            .iter()
            .filter(|p| !logged_in.contains(*p))
            .cloned()
            .collect();
        if !want.login.is_empty() {
            plan.push(Action::task(
                "login",
                format!(
                    "log in concurrently (each cut off after {}s): {}",
                    LOGIN_BOUND.as_secs(),
                    want.login
                        .iter()
                        .map(|p| p.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        self.iqn = iqn;
        self.want = Some(want);
        Ok(plan)
    }

    fn task(&mut self, cx: &mut Ctx<'_>, id: &str) -> Result<(), StepError> {
        match id {
            "discover" => self.task_discover(cx),
            "configure" => self.task_configure(cx),
            "login" => self.task_login(cx),
            other => Err(StepError::Failed(format!(
                "internal: no task {other:?} in the sessions step"
            ))),
        }
    }

    fn verify(&mut self, cx: &mut Ctx<'_>) -> Result<(), StepError> {
        let want = self.want()?.clone();
        let iqn = self.iqn()?;
        // Picks up LUNs mapped on the array after the sessions logged in.
        let rescan = Cmd::change(["iscsiadm", "-m", "session", "--rescan"]);
        let out = cx.host.run(&rescan)?;
        if !out.code.is_some_and(|c| classify_exit(c).listing_ok()) {
            return Err(StepError::command(&rescan, &out, None));
        }
        // Poll the real state (bounded) until every logged-in session of ours shows a disk.
        let deadline = std::time::Instant::now() + self.disk_wait;
        let sessions = loop {
            let sessions = parse_session_p3(&listing(
                cx,
                Cmd::probe(["iscsiadm", "-m", "session", "-P", "3"]),
            )?);
            let ready = sessions
                .iter()
                .filter(|s| s.target == iqn && s.is_logged_in())
                .all(|s| !s.disks().is_empty());
            if ready || std::time::Instant::now() >= deadline {
                break sessions;
            }
            cx.progress
                .message("waiting for the sessions' disks to attach");
            std::thread::sleep(Duration::from_millis(200));
        };
        let ours: Vec<&SessionDetail> = sessions.iter().filter(|s| s.target == iqn).collect();
        for s in ours
            .iter()
            .filter(|s| s.is_logged_in() && s.disks().is_empty())
        {
            if let Some(p) = session_pair(s) {
                cx.sheet.note(format!(
                    "no LUN is attached through the session to {p}: is a volume mapped to \
                     this host on the array?"
                ));
            }
        }
        let mut problems = Vec::new();
        let mut facts = Vec::new();
        let mut records = Vec::new();
        for p in &want.pairs {
            let found: Vec<&&SessionDetail> = ours
                .iter()
                .filter(|s| session_pair(s).as_ref() == Some(p))
                .collect();
            let s = match found[..] {
                [] => {
                    problems.push(format!("no session to {p}"));
                    continue;
                }
                [s] => s,
                _ => {
                    problems.push(format!(
                        "{} sessions to {p}, expected one: log out the extra ones \
                         (`iscsiadm -m session -r SID -u`)",
                        found.len()
                    ));
                    continue;
                }
            };
            let transport = s.iface_transport.clone().unwrap_or_default();
            let state = s.session_state.clone().unwrap_or_default();
            if transport != "iser" {
                problems.push(format!(
                    "the session to {p} uses transport {transport:?}, not iser: the iface is \
                     not an iSER iface (rerun the iscsi step), and this session must be logged \
                     out (`iscsiadm -m session -r {} -u`)",
                    s.sid.map(|n| n.to_string()).unwrap_or_else(|| "SID".into())
                ));
            }
            if !s.is_logged_in() {
                problems.push(format!(
                    "the session to {p} is {}, not LOGGED_IN: {}",
                    if state.is_empty() {
                        "in an unknown state"
                    } else {
                        &state
                    },
                    want.reach_hint(p)
                ));
            }
            facts.push(SessionFact {
                iface: p.iface.clone(),
                portal: p.portal.to_string(),
                target: iqn.clone(),
                transport: transport.clone(),
                disks: s.disks().into_iter().map(str::to_string).collect(),
            });
            records.push(SessionRecord {
                iface: p.iface.clone(),
                portal: p.portal.to_string(),
                transport,
                state,
            });
        }
        for s in &ours {
            let Some(p) = session_pair(s) else { continue };
            if !want.pairs.contains(&p) {
                problems.push(format!(
                    "an unexpected session to {p} ({}): log it out (`iscsiadm -m session -r {} \
                     -u`) and delete its record",
                    s.iface_transport.as_deref().unwrap_or("transport unknown"),
                    s.sid.map(|n| n.to_string()).unwrap_or_else(|| "SID".into())
                ));
            }
        }
        if !problems.is_empty() {
            return Err(StepError::Failed(format!(
                "the sessions to {iqn} are not as expected:\n    - {}",
                problems.join("\n    - ")
            )));
        }
        cx.facts.target_iqn = Some(iqn.clone());
        cx.facts.sessions = facts;
        cx.sheet.target_iqn = Some(iqn);
        cx.sheet.sessions = records;
        cx.sheet.subnets = subnet_records(&want);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prompt::Asker;
    use crate::steps::fake::FakeHost;
    use crate::steps::testkit::{apply, summary, Run};

    /// The step without the wait for disks (the fakes' sessions list no disks).
    fn quick() -> Sessions {
        Sessions {
            disk_wait: Duration::ZERO,
            ..Sessions::default()
        }
    }
    use crate::steps::{Facts, Options};
    use crate::worksheets::Worksheet;
    use serde_json::{json, Value};

    const T: &str = "iqn.2002-09.com.lab:array";
    const INITIATOR: &str = "iqn.1993-08.org.debian:01:ae66e52862dd";
    const SECRET: &str = "s3cr3t-Pa55w0rd";
    const A1: &str = "192.168.130.101:3260";
    const B1: &str = "192.168.130.102:3260";
    const A2: &str = "192.168.131.101:3260";
    const B2: &str = "192.168.131.102:3260";
    /// The expected pairs, in the answers' portal order.
    const PAIRS: [(&str, &str); 4] = [
        ("iface-vA", A1),
        ("iface-vA", B1),
        ("iface-vB", A2),
        ("iface-vB", B2),
    ];
    /// The pairs SendTargets creates besides those: every portal from every iface.
    const CROSS: [(&str, &str); 4] = [
        ("iface-vA", A2),
        ("iface-vA", B2),
        ("iface-vB", A1),
        ("iface-vB", B1),
    ];

    fn answers() -> Value {
        json!({
            "ports": [
                {"netdev": "vA", "address": "192.168.130.10/24"},
                {"netdev": "vB", "address": "192.168.131.10/24"}
            ],
            "target": {
                "iqn": T,
                "discovery": "sendtargets",
                "portals": [
                    {"address": "192.168.130.101", "label": "Controller A, port 1"},
                    {"address": "192.168.130.102", "label": "Controller B, port 1"},
                    {"address": "192.168.131.101", "label": "Controller A, port 2"},
                    {"address": "192.168.131.102", "label": "Controller B, port 2"}
                ],
                "chap": null
            },
            "iscsi": {"replacement_timeout": 20}
        })
    }

    fn with_chap() -> Value {
        let mut a = answers();
        a["target"]["chap"] = json!({"username": "db01", "password_env": "ISER_TEST_CHAP"});
        a
    }

    fn test_env(name: &str) -> Option<String> {
        (name == "ISER_TEST_CHAP").then(|| SECRET.to_string())
    }

    impl Run {
        fn sessions(answers: Value) -> Self {
            let iface = |n: &str, a: &str| IfaceFact {
                name: format!("iface-{n}"),
                netdev: n.into(),
                address: a.into(),
            };
            let facts = Facts {
                ifaces: vec![
                    iface("vA", "192.168.130.10/24"),
                    iface("vB", "192.168.131.10/24"),
                ],
                ..Default::default()
            };
            Run {
                ask: Asker::unattended(answers),
                facts,
                sheet: Worksheet::default(),
                options: Options::default(),
            }
        }
    }

    fn node(iface: &str, portal: &str, rest: &[&str]) -> Vec<String> {
        ["iscsiadm", "-m", "node", "-T", T, "-p", portal, "-I", iface]
            .iter()
            .chain(rest)
            .map(|s| s.to_string())
            .collect()
    }

    fn expect(h: &FakeHost, argv: &[String], out: CmdOutput) {
        let v: Vec<&str> = argv.iter().map(String::as_str).collect();
        h.expect(&v, out);
    }

    /// The four settings updates a record without them gets, displayed.
    fn updates_for(iface: &str, portal: &str) -> Vec<String> {
        [
            ("node.startup", "automatic"),
            ("node.session.timeo.replacement_timeout", "20"),
            ("node.conn[0].timeo.login_timeout", "5"),
            ("node.session.auth.authmethod", "None"),
        ]
        .iter()
        .map(|(k, v)| node(iface, portal, &["-o", "update", "-n", k, "-v", v]).join(" "))
        .collect()
    }

    fn none_listed(h: &FakeHost) {
        h.expect(
            &["iscsiadm", "-m", "session", "-P", "1"],
            CmdOutput::status(21, "", "iscsiadm: No active sessions.\n"),
        );
        h.expect(
            &["iscsiadm", "-m", "node", "-P", "1"],
            CmdOutput::status(21, "", "iscsiadm: No records found\n"),
        );
    }

    fn discovery_output() -> CmdOutput {
        CmdOutput::ok(
            [A1, B1, A2, B2]
                .iter()
                .map(|p| format!("{p},1 {T}\n"))
                .collect::<String>(),
        )
    }

    fn discovery_argv(portal: &'static str, iface: &'static str) -> [&'static str; 9] {
        [
            "iscsiadm",
            "-m",
            "discovery",
            "-t",
            "st",
            "-p",
            portal,
            "-I",
            iface,
        ]
    }

    /// After a discovery that reported every portal to both ifaces: the cross-subnet records
    /// deleted, each expected pair's record updated, each pair logged in.
    fn expect_prune_configure_login(h: &FakeHost) {
        for (iface, portal) in CROSS {
            expect(
                h,
                &node(iface, portal, &["-o", "delete"]),
                CmdOutput::ok(""),
            );
        }
        for (iface, portal) in PAIRS {
            for u in updates_for(iface, portal) {
                let argv: Vec<String> = u.split(' ').map(str::to_string).collect();
                expect(h, &argv, CmdOutput::ok(""));
            }
            expect(
                h,
                &node(iface, portal, &["--login"]),
                login_ok(iface, portal),
            );
        }
    }

    fn killed() -> CmdOutput {
        CmdOutput {
            code: None,
            timed_out: true,
            duration: DISCOVERY_BOUND,
            ..Default::default()
        }
    }

    /// (sid, portal, iface, transport, state, disks).
    type TestSession<'a> = (u32, &'a str, &'a str, &'a str, &'a str, &'a [&'a str]);

    /// A session tree (`-P 1` or `-P 3`) of sessions (sid, portal, iface, transport,
    /// state, disks), in the layout iscsiadm 2.1.8 prints.
    fn tree(sessions: &[TestSession]) -> CmdOutput {
        let mut t = format!(
            "iSCSI Transport Class version 2.0-870\nversion 2.1.8\nTarget: {T} (non-flash)\n"
        );
        for (sid, portal, iface, transport, state, disks) in sessions {
            let netdev = iface.trim_start_matches("iface-");
            t.push_str(&format!(
                "\tCurrent Portal: {portal},1\n\tPersistent Portal: {portal},1\n\
                 \t\t**********\n\t\tInterface:\n\t\t**********\n\
                 \t\tIface Name: {iface}\n\t\tIface Transport: {transport}\n\
                 \t\tIface Initiatorname: {INITIATOR}\n\t\tIface IPaddress: [default]\n\
                 \t\tIface HWaddress: default\n\t\tIface Netdev: {netdev}\n\t\tSID: {sid}\n\
                 \t\tiSCSI Connection State: LOGGED IN\n\t\tiSCSI Session State: {state}\n\
                 \t\tInternal iscsid Session State: NO CHANGE\n"
            ));
            if !disks.is_empty() {
                t.push_str(&format!(
                    "\t\t************************\n\t\tAttached SCSI devices:\n\
                     \t\t************************\n\t\tHost Number: {sid}\tState: running\n"
                ));
                for (lun, d) in disks.iter().enumerate() {
                    t.push_str(&format!(
                        "\t\tscsi{sid} Channel 00 Id 0 Lun: {lun}\n\
                         \t\t\tAttached scsi disk {d}\t\tState: running\n"
                    ));
                }
            }
        }
        CmdOutput::ok(t)
    }

    fn all_logged_in(transport_a1: &str) -> CmdOutput {
        tree(&[
            (
                3,
                A1,
                "iface-vA",
                transport_a1,
                "LOGGED_IN",
                &["sda", "sdb"],
            ),
            (4, B1, "iface-vA", "iser", "LOGGED_IN", &["sdc", "sdd"]),
            (5, A2, "iface-vB", "iser", "LOGGED_IN", &["sde", "sdf"]),
            (6, B2, "iface-vB", "iser", "LOGGED_IN", &["sdg", "sdh"]),
        ])
    }

    fn node_tree(pairs: &[(&str, &str)]) -> CmdOutput {
        let mut t = format!("Target: {T}\n");
        for (iface, portal) in pairs {
            t.push_str(&format!("\tPortal: {portal},1\n\t\tIface Name: {iface}\n"));
        }
        CmdOutput::ok(t)
    }

    fn record(iface: &str, portal: &str, startup: &str, auth: (&str, &str, &str)) -> CmdOutput {
        let addr = portal.split(':').next().unwrap();
        CmdOutput::ok(format!(
            "# BEGIN RECORD 2.1.8\nnode.name = {T}\nnode.tpgt = 1\nnode.startup = {startup}\n\
             iface.iscsi_ifacename = {iface}\niface.transport_name = iser\n\
             node.session.auth.authmethod = {}\nnode.session.auth.username = {}\n\
             node.session.auth.password = {}\n\
             node.session.timeo.replacement_timeout = 20\nnode.conn[0].address = {addr}\n\
             node.conn[0].port = 3260\nnode.conn[0].startup = manual\n\
             node.conn[0].timeo.login_timeout = 5\n# END RECORD\n",
            auth.0, auth.1, auth.2
        ))
    }

    const NO_AUTH: (&str, &str, &str) = ("None", "<empty>", "<empty>");

    /// Sessions, records and record details of a host the step already set up.
    fn configured(h: &FakeHost, sessions: CmdOutput) {
        h.expect(&["iscsiadm", "-m", "session", "-P", "1"], sessions);
        h.expect(&["iscsiadm", "-m", "node", "-P", "1"], node_tree(&PAIRS));
        for (iface, portal) in PAIRS {
            expect(
                h,
                &node(iface, portal, &[]),
                record(iface, portal, "automatic", NO_AUTH),
            );
        }
    }

    fn login_ok(iface: &str, portal: &str) -> CmdOutput {
        let p = portal.replace(':', ",");
        CmdOutput::ok(format!(
            "Logging in to [iface: {iface}, target: {T}, portal: {p}]\n\
             Login to [iface: {iface}, target: {T}, portal: {p}] successful.\n"
        ))
    }

    fn verified(h: &FakeHost, sessions: CmdOutput) {
        h.expect(
            &["iscsiadm", "-m", "session", "--rescan"],
            CmdOutput::ok(""),
        );
        h.expect(&["iscsiadm", "-m", "session", "-P", "3"], sessions);
    }

    #[test]
    fn verify_waits_for_the_kernel_to_attach_the_sessions_disks() {
        let h = FakeHost::new();
        configured(&h, all_logged_in("iser"));
        let mut run = Run::sessions(answers());
        let mut step = Sessions {
            disk_wait: Duration::from_secs(10),
            ..Sessions::default()
        };
        assert!(step.plan(&mut run.cx(&h)).unwrap().is_empty());
        // Right after login: logged in, no disk yet; a moment later, the disks.
        let bare = tree(&[
            (3, A1, "iface-vA", "iser", "LOGGED_IN", &[]),
            (4, B1, "iface-vA", "iser", "LOGGED_IN", &[]),
            (5, A2, "iface-vB", "iser", "LOGGED_IN", &[]),
            (6, B2, "iface-vB", "iser", "LOGGED_IN", &[]),
        ]);
        verified(&h, bare);
        h.allow(
            &["iscsiadm", "-m", "session", "-P", "3"],
            all_logged_in("iser"),
        );
        step.verify(&mut run.cx(&h)).unwrap();
        assert!(
            run.facts.sessions.iter().all(|s| s.disks.len() == 2),
            "{:?}",
            run.facts.sessions
        );
        h.finish();
    }

    #[test]
    fn a_fresh_host_discovers_prunes_cross_subnet_records_logs_in_and_verifies() {
        let h = FakeHost::new();
        none_listed(&h);
        let mut run = Run::sessions(answers());
        let mut step = quick();
        let plan = step.plan(&mut run.cx(&h)).unwrap();
        let mut want = vec!["task discover".to_string()];
        for (iface, portal) in PAIRS {
            want.extend(updates_for(iface, portal));
        }
        want.push("task login".into());
        assert_eq!(summary(&plan), want);
        let text = plan.render();
        assert!(
            text.contains(
                "SendTargets discovery from iface-vA at 192.168.130.101:3260, from iface-vB at \
                 192.168.131.101:3260 (concurrently, each cut off after 20s, then the next \
                 portal of the subnet for an iface whose portal did not answer)"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "log in concurrently (each cut off after 60s): 192.168.130.101:3260 via \
                 iface-vA, 192.168.130.102:3260 via iface-vA, 192.168.131.101:3260 via \
                 iface-vB, 192.168.131.102:3260 via iface-vB"
            ),
            "{text}"
        );
        assert!(h.changes().is_empty(), "planning changed the host");

        // As the lab shows: both ifaces are told about all four portals.
        h.expect(&discovery_argv(A1, "iface-vA"), discovery_output());
        h.expect(&discovery_argv(A2, "iface-vB"), discovery_output());
        for (iface, portal) in CROSS {
            expect(
                &h,
                &node(iface, portal, &["-o", "delete"]),
                CmdOutput::ok(""),
            );
        }
        for a in &plan.actions {
            if let Action::Run { cmd, .. } = a {
                expect(&h, &cmd.argv, CmdOutput::ok(""));
            }
        }
        for (iface, portal) in PAIRS {
            expect(
                &h,
                &node(iface, portal, &["--login"]),
                login_ok(iface, portal),
            );
        }
        apply(&mut step, &mut run.cx(&h), &plan).unwrap();
        verified(&h, all_logged_in("iser"));
        step.verify(&mut run.cx(&h)).unwrap();

        assert_eq!(run.facts.target_iqn.as_deref(), Some(T));
        assert_eq!(run.facts.sessions.len(), 4);
        assert_eq!(
            run.facts.sessions[0],
            SessionFact {
                iface: "iface-vA".into(),
                portal: A1.into(),
                target: T.into(),
                transport: "iser".into(),
                disks: vec!["sda".into(), "sdb".into()],
            }
        );
        assert_eq!(run.sheet.target_iqn.as_deref(), Some(T));
        assert_eq!(
            run.sheet.sessions[3],
            SessionRecord {
                iface: "iface-vB".into(),
                portal: B2.into(),
                transport: "iser".into(),
                state: "LOGGED_IN".into(),
            }
        );
        assert_eq!(
            run.sheet.subnets,
            vec![
                SubnetRecord {
                    name: "A".into(),
                    network: Some("192.168.130.0".into()),
                    netmask: Some("255.255.255.0".into()),
                    controller_a: Some("192.168.130.101".into()),
                    controller_b: Some("192.168.130.102".into()),
                    host_port: Some("192.168.130.10".into()),
                    other_portals: vec![],
                },
                SubnetRecord {
                    name: "B".into(),
                    network: Some("192.168.131.0".into()),
                    netmask: Some("255.255.255.0".into()),
                    controller_a: Some("192.168.131.101".into()),
                    controller_b: Some("192.168.131.102".into()),
                    host_port: Some("192.168.131.10".into()),
                    other_portals: vec![],
                },
            ]
        );
        h.finish();
    }

    #[test]
    fn a_dry_run_plans_without_changing_anything() {
        let h = FakeHost::new();
        configured(
            &h,
            CmdOutput::status(21, "", "iscsiadm: No active sessions.\n"),
        );
        let ro = crate::steps::host::ReadOnly(&h);
        let mut run = Run::sessions(answers());
        let plan = quick().plan(&mut run.cx(&ro)).unwrap();
        assert_eq!(summary(&plan), vec!["task login"]);
        assert!(h.changes().is_empty(), "{:?}", h.changes());
        h.finish();
    }

    #[test]
    fn a_host_that_already_matches_plans_nothing() {
        let h = FakeHost::new();
        configured(&h, all_logged_in("iser"));
        let mut run = Run::sessions(answers());
        let mut step = quick();
        let plan = step.plan(&mut run.cx(&h)).unwrap();
        assert!(plan.is_empty(), "{}", plan.render());
        assert!(plan.notes.is_empty(), "{:?}", plan.notes);
        assert!(h.changes().is_empty(), "{:?}", h.changes());
        verified(&h, all_logged_in("iser"));
        step.verify(&mut run.cx(&h)).unwrap();
        assert_eq!(run.facts.sessions.len(), 4);
        h.finish();
    }

    #[test]
    fn the_target_iqn_is_taken_from_existing_records_on_a_rerun_with_discover() {
        let h = FakeHost::new();
        configured(&h, all_logged_in("iser"));
        let mut a = answers();
        a["target"]["iqn"] = json!("discover");
        let mut run = Run::sessions(a);
        let mut step = quick();
        assert!(step.plan(&mut run.cx(&h)).unwrap().is_empty());
        verified(&h, all_logged_in("iser"));
        step.verify(&mut run.cx(&h)).unwrap();
        assert_eq!(run.sheet.target_iqn.as_deref(), Some(T));
        h.finish();
    }

    #[test]
    fn cross_subnet_records_left_from_an_earlier_discovery_are_deleted() {
        let h = FakeHost::new();
        // The lab's `iscsiadm -m node -P 1`: every portal from every iface.
        let all: Vec<(&str, &str)> = PAIRS.iter().chain(CROSS.iter()).copied().collect();
        h.expect(
            &["iscsiadm", "-m", "session", "-P", "1"],
            all_logged_in("iser"),
        );
        h.expect(&["iscsiadm", "-m", "node", "-P", "1"], node_tree(&all));
        for (iface, portal) in PAIRS {
            expect(
                &h,
                &node(iface, portal, &[]),
                record(iface, portal, "manual", NO_AUTH),
            );
        }
        let mut run = Run::sessions(answers());
        let plan = quick().plan(&mut run.cx(&h)).unwrap();
        let mut want: Vec<String> = CROSS
            .iter()
            .map(|(i, p)| node(i, p, &["-o", "delete"]).join(" "))
            .collect();
        for (iface, portal) in PAIRS {
            want.push(
                node(
                    iface,
                    portal,
                    &["-o", "update", "-n", "node.startup", "-v", "automatic"],
                )
                .join(" "),
            );
        }
        assert_eq!(summary(&plan), want);
        h.finish();
    }

    #[test]
    fn manual_mode_creates_one_record_per_expected_pair() {
        let h = FakeHost::new();
        none_listed(&h);
        let mut a = answers();
        a["target"]["discovery"] = json!("manual");
        let mut run = Run::sessions(a);
        let plan = quick().plan(&mut run.cx(&h)).unwrap();
        let mut want: Vec<String> = PAIRS
            .iter()
            .map(|(i, p)| node(i, p, &["-o", "new"]).join(" "))
            .collect();
        for (iface, portal) in PAIRS {
            want.extend(updates_for(iface, portal));
        }
        want.push("task login".into());
        assert_eq!(summary(&plan), want);
        assert!(!plan.render().contains("SendTargets"));
        h.finish();
    }

    #[test]
    fn a_target_iqn_mismatch_names_both_and_leaves_no_record() {
        let h = FakeHost::new();
        none_listed(&h);
        let wrong = "iqn.1992-08.com.netapp:2800.600a098000af40f5000000005e7bc1a9";
        let mut a = answers();
        a["target"]["iqn"] = json!(wrong);
        let mut run = Run::sessions(a);
        let mut step = quick();
        let plan = step.plan(&mut run.cx(&h)).unwrap();
        h.expect(&discovery_argv(A1, "iface-vA"), discovery_output());
        h.expect(&discovery_argv(A2, "iface-vB"), discovery_output());
        for (iface, portal) in PAIRS.iter().chain(CROSS.iter()) {
            expect(
                &h,
                &node(iface, portal, &["-o", "delete"]),
                CmdOutput::ok(""),
            );
        }
        let msg = apply(&mut step, &mut run.cx(&h), &plan)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains(&format!("target.iqn is {wrong}, but SendTargets at")),
            "{msg}"
        );
        assert!(msg.contains(&format!("reported {T}")), "{msg}");
        assert!(msg.contains("correct target.iqn"), "{msg}");
        h.finish();
    }

    #[test]
    fn discover_takes_the_iqn_from_sendtargets_and_configures_records_after() {
        let h = FakeHost::new();
        none_listed(&h);
        let mut a = answers();
        a["target"]["iqn"] = json!("discover");
        let mut run = Run::sessions(a);
        let mut step = quick();
        let plan = step.plan(&mut run.cx(&h)).unwrap();
        assert_eq!(
            summary(&plan),
            vec!["task discover", "task configure", "task login"]
        );
        assert!(plan.render().contains("taking the target IQN from it"));
        h.expect(&discovery_argv(A1, "iface-vA"), discovery_output());
        h.expect(&discovery_argv(A2, "iface-vB"), discovery_output());
        expect_prune_configure_login(&h);
        apply(&mut step, &mut run.cx(&h), &plan).unwrap();
        verified(&h, all_logged_in("iser"));
        step.verify(&mut run.cx(&h)).unwrap();
        assert_eq!(run.facts.target_iqn.as_deref(), Some(T));
        h.finish();
    }

    #[test]
    fn discovery_tries_the_other_portal_of_the_subnet_when_one_does_not_answer() {
        // The lab saw LIO reject a SendTargets request over iSER now and then; iscsiadm then
        // waits until it is killed. The other controller's portal on that subnet answers.
        let h = FakeHost::new();
        none_listed(&h);
        let mut run = Run::sessions(answers());
        let mut step = quick();
        let plan = step.plan(&mut run.cx(&h)).unwrap();
        h.expect(&discovery_argv(A1, "iface-vA"), discovery_output());
        h.expect(&discovery_argv(A2, "iface-vB"), killed());
        h.expect(&discovery_argv(B2, "iface-vB"), discovery_output());
        expect_prune_configure_login(&h);
        apply(&mut step, &mut run.cx(&h), &plan).unwrap();
        verified(&h, all_logged_in("iser"));
        step.verify(&mut run.cx(&h)).unwrap();
        assert!(
            run.sheet.notes.iter().any(|n| n.contains(
                "SendTargets discovery at 192.168.131.101:3260 via iface-vB: no answer within \
                 20s (killed)"
            ) && n
                .ends_with("discovery via iface-vB used another portal of its subnet")),
            "{:?}",
            run.sheet.notes
        );
        h.finish();
    }

    /// Records in place, no session: the plan is the login task alone.
    fn logins(outcomes: [CmdOutput; 4]) -> (Result<(), StepError>, FakeHost) {
        let h = FakeHost::new();
        configured(
            &h,
            CmdOutput::status(21, "", "iscsiadm: No active sessions.\n"),
        );
        let mut run = Run::sessions(answers());
        let mut step = quick();
        let plan = step.plan(&mut run.cx(&h)).unwrap();
        assert_eq!(summary(&plan), vec!["task login"]);
        for ((iface, portal), out) in PAIRS.iter().zip(outcomes) {
            expect(&h, &node(iface, portal, &["--login"]), out);
        }
        let r = apply(&mut step, &mut run.cx(&h), &plan);
        (r, h)
    }

    #[test]
    fn login_exit_15_is_success() {
        // The lab's second login: the session exists already.
        let again = CmdOutput::status(
            15,
            "",
            "iscsiadm: iface-vA: 1 session requested, but 1 already present.\n\
             iscsiadm: Could not log into all portals\n",
        );
        let (r, h) = logins([
            again,
            login_ok("iface-vA", B1),
            login_ok("iface-vB", A2),
            login_ok("iface-vB", B2),
        ]);
        r.unwrap();
        h.finish();
    }

    #[test]
    fn login_failures_name_the_portal_and_the_cause() {
        let p = |s: &str| s.replace(':', ",");
        let auth = CmdOutput::status(
            24,
            format!(
                "Logging in to [iface: iface-vA, target: {T}, portal: {}]\n",
                p(B1)
            ),
            format!(
                "iscsiadm: Could not login to [iface: iface-vA, target: {T}, portal: {}].\n\
                 iscsiadm: initiator reported error (24 - iSCSI login failed due to \
                 authorization failure)\niscsiadm: Could not log into all portals\n",
                p(B1)
            ),
        );
        let timeout = CmdOutput::status(
            8,
            format!(
                "Logging in to [iface: iface-vB, target: {T}, portal: {}]\n",
                p(A2)
            ),
            format!(
                "iscsiadm: Could not login to [iface: iface-vB, target: {T}, portal: {}].\n\
                 iscsiadm: initiator reported error (8 - connection timed out)\n\
                 iscsiadm: Could not log into all portals\n",
                p(A2)
            ),
        );
        let killed = CmdOutput {
            code: None,
            timed_out: true,
            duration: LOGIN_BOUND,
            ..Default::default()
        };
        let (r, h) = logins([login_ok("iface-vA", A1), auth, timeout, killed]);
        let msg = r.unwrap_err().to_string();
        assert!(msg.starts_with("3 of 4 logins failed:"), "{msg}");
        assert!(
            msg.contains(
                "login to 192.168.130.102:3260 via iface-vA was refused: authentication failed \
                 (iscsiadm failed (24: iSCSI login failed due to authorization failure): iSCSI \
                 login failed due to authorization failure): the target wants CHAP (set \
                 target.chap)"
            ),
            "{msg}"
        );
        assert!(
            msg.contains(
                "login to 192.168.131.101:3260 via iface-vB timed out (iscsiadm failed (8: \
                 connection timed out): connection timed out): 192.168.131.101:3260 does not \
                 answer; check the link of vB and `ping -I vB 192.168.131.101`"
            ),
            "{msg}"
        );
        assert!(
            msg.contains(
                "login to 192.168.131.102:3260 via iface-vB: no answer within 60s (killed)"
            ),
            "{msg}"
        );
        h.finish();
    }

    #[test]
    fn an_unreachable_discovery_portal_fails_naming_it() {
        let h = FakeHost::new();
        none_listed(&h);
        let mut run = Run::sessions(answers());
        let mut step = quick();
        let plan = step.plan(&mut run.cx(&h)).unwrap();
        // The lab capture: exit 11 after the retries.
        h.expect(
            &discovery_argv(A1, "iface-vA"),
            CmdOutput::status(
                11,
                "",
                "iscsiadm: Received iferror -101: Network is unreachable.\n\
                 iscsiadm: Connection to discovery portal 192.168.130.101 failed: encountered \
                 connection failure\niscsiadm: connection login retries (reopen_max) 5 exceeded\n\
                 iscsiadm: Could not perform SendTargets discovery: iSCSI PDU timed out\n",
            ),
        );
        h.expect(&discovery_argv(A2, "iface-vB"), killed());
        // Each iface then tries the other portal of its subnet; they fail too.
        h.expect(&discovery_argv(B1, "iface-vA"), killed());
        h.expect(&discovery_argv(B2, "iface-vB"), killed());
        let msg = apply(&mut step, &mut run.cx(&h), &plan)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains(
                "SendTargets discovery at 192.168.130.102:3260 via iface-vA: no answer within \
                 20s (killed)"
            ),
            "{msg}"
        );
        assert!(
            msg.contains(
                "SendTargets discovery at 192.168.130.101:3260 via iface-vA timed out \
                 (iscsiadm failed (11: iSCSI PDU timed out): Could not perform SendTargets \
                 discovery: iSCSI PDU timed out)"
            ),
            "{msg}"
        );
        assert!(
            msg.contains(
                "SendTargets discovery at 192.168.131.101:3260 via iface-vB: no answer within \
                 20s (killed): 192.168.131.101:3260 is unreachable or does not answer; check \
                 the link of vB"
            ),
            "{msg}"
        );
        h.finish();
    }

    #[test]
    fn the_chap_secret_is_masked_everywhere() {
        let h = FakeHost::new();
        none_listed(&h);
        let mut run = Run::sessions(with_chap());
        let mut step = Sessions::with_env(test_env);
        let plan = step.plan(&mut run.cx(&h)).unwrap();
        let text = plan.render();
        assert!(!text.contains(SECRET), "{text}");
        assert!(
            text.contains(
                "-o update -n node.session.auth.password -v '******'    # authentication per \
                 target.chap"
            ),
            "{text}"
        );
        assert!(!format!("{step:?}").contains(SECRET));
        h.expect(&discovery_argv(A1, "iface-vA"), discovery_output());
        h.expect(&discovery_argv(A2, "iface-vB"), discovery_output());
        for (iface, portal) in CROSS {
            expect(
                &h,
                &node(iface, portal, &["-o", "delete"]),
                CmdOutput::ok(""),
            );
        }
        let mut saw_secret = 0;
        for a in &plan.actions {
            if let Action::Run { cmd, .. } = a {
                saw_secret += usize::from(cmd.argv.iter().any(|x| x == SECRET));
                expect(&h, &cmd.argv, CmdOutput::ok(""));
            }
        }
        assert_eq!(saw_secret, 4, "the secret reaches iscsiadm once per record");
        for (iface, portal) in PAIRS {
            // A target that echoes what it was given must not leak it either.
            let out = CmdOutput::status(
                24,
                "",
                format!("iscsiadm: initiator reported error (24 - bad secret {SECRET})\n"),
            );
            expect(&h, &node(iface, portal, &["--login"]), out);
        }
        let msg = apply(&mut step, &mut run.cx(&h), &plan)
            .unwrap_err()
            .to_string();
        assert!(!msg.contains(SECRET), "{msg}");
        assert!(
            msg.contains("check target.chap.username (db01) and the secret in $ISER_TEST_CHAP"),
            "{msg}"
        );
        let ran = h.ran().join("\n");
        assert!(!ran.contains(SECRET), "{ran}");
        assert!(
            ran.contains("-n node.session.auth.password -v '******'"),
            "{ran}"
        );
        assert!(!run.ask.recorded().to_string().contains(SECRET));
        h.finish();
    }

    #[test]
    fn chap_settings_already_in_place_plan_nothing_and_are_compared_with_the_secret() {
        let h = FakeHost::new();
        h.expect(
            &["iscsiadm", "-m", "session", "-P", "1"],
            all_logged_in("iser"),
        );
        h.expect(&["iscsiadm", "-m", "node", "-P", "1"], node_tree(&PAIRS));
        for (iface, portal) in PAIRS {
            expect(
                &h,
                &node(iface, portal, &["-S"]),
                record(iface, portal, "automatic", ("CHAP", "db01", SECRET)),
            );
        }
        let mut run = Run::sessions(with_chap());
        let plan = Sessions::with_env(test_env).plan(&mut run.cx(&h)).unwrap();
        assert!(plan.is_empty(), "{}", plan.render());
        assert!(!h.ran().join("\n").contains(SECRET));
        h.finish();
    }

    #[test]
    fn an_unset_chap_variable_is_named() {
        let h = FakeHost::new();
        let mut run = Run::sessions(with_chap());
        let msg = Sessions::with_env(|_| None)
            .plan(&mut run.cx(&h))
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("the environment variable ISER_TEST_CHAP is not set"),
            "{msg}"
        );
        h.finish();
    }

    #[test]
    fn a_tcp_session_fails_verify() {
        let h = FakeHost::new();
        configured(&h, all_logged_in("iser"));
        let mut run = Run::sessions(answers());
        let mut step = quick();
        assert!(step.plan(&mut run.cx(&h)).unwrap().is_empty());
        verified(&h, all_logged_in("tcp"));
        let msg = step.verify(&mut run.cx(&h)).unwrap_err().to_string();
        assert!(
            msg.contains(
                "the session to 192.168.130.101:3260 via iface-vA uses transport \"tcp\", not \
                 iser"
            ),
            "{msg}"
        );
        assert!(msg.contains("iscsiadm -m session -r 3 -u"), "{msg}");
        assert!(run.facts.sessions.is_empty());
        h.finish();
    }

    #[test]
    fn verify_wants_exactly_one_logged_in_session_per_pair_and_no_other() {
        let h = FakeHost::new();
        configured(&h, all_logged_in("iser"));
        let mut run = Run::sessions(answers());
        let mut step = quick();
        assert!(step.plan(&mut run.cx(&h)).unwrap().is_empty());
        verified(
            &h,
            tree(&[
                (3, A1, "iface-vA", "iser", "FAILED", &[]),
                (4, B1, "iface-vA", "iser", "LOGGED_IN", &[]),
                (7, B1, "iface-vA", "iser", "LOGGED_IN", &[]),
                (5, A2, "iface-vB", "iser", "LOGGED_IN", &[]),
                (8, A2, "iface-vA", "iser", "LOGGED_IN", &[]),
            ]),
        );
        let msg = step.verify(&mut run.cx(&h)).unwrap_err().to_string();
        assert!(
            msg.contains("the session to 192.168.130.101:3260 via iface-vA is FAILED"),
            "{msg}"
        );
        assert!(
            msg.contains("2 sessions to 192.168.130.102:3260 via iface-vA, expected one"),
            "{msg}"
        );
        assert!(
            msg.contains("no session to 192.168.131.102:3260 via iface-vB"),
            "{msg}"
        );
        assert!(
            msg.contains(
                "an unexpected session to 192.168.131.101:3260 via iface-vA (iser): log it out \
                 (`iscsiadm -m session -r 8 -u`)"
            ),
            "{msg}"
        );
        h.finish();
    }
}
