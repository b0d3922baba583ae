//! Pure decisions of the sessions step: no IO, no `Ctx`. What is wanted and what is there
//! go in; the records to delete or create, the discovery to run, the settings to change and
//! the pairs to log in come out ([`decide`]), and after apply the same expectations say what
//! is still wrong ([`check`]), so "healthy" is defined once; `status`, which has the facts
//! of the last run and no answers, asks the same of them ([`check_recorded`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::observe::{Observed, Record};
use super::want::{Pair, Setting, Want};
use crate::steps::facts::SessionFact;
use crate::steps::parse::iscsiadm::{NodeRef, Portal, SessionDetail};
use crate::worksheets::SessionRecord;

/// The pair a session serves (its persistent portal, else its current one).
pub(super) fn session_pair(s: &SessionDetail) -> Option<Pair> {
    Some(Pair {
        iface: s.iface_name.clone()?,
        portal: s
            .persistent_portal
            .clone()
            .or_else(|| s.current_portal.clone())?,
    })
}

/// The pair a node record is for.
pub(super) fn node_pair(n: &NodeRef) -> Option<Pair> {
    Some(Pair {
        iface: n.iface.clone()?,
        portal: n.portal.clone(),
    })
}

/// The target of existing records when they cover every expected pair with one target.
pub(super) fn existing_target(pairs: &[Pair], nodes: &[NodeRef]) -> Option<String> {
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

/// The records of `iqn` on the host, as pairs.
pub(super) fn records_of(iqn: &str, nodes: &[NodeRef]) -> BTreeSet<Pair> {
    nodes
        .iter()
        .filter(|n| n.target == iqn)
        .filter_map(node_pair)
        .collect()
}

/// The settings a record lacks (`current` `None`: a record not created yet, all of them).
pub(super) fn settings_to_change(want: &Want, current: Option<&Record>) -> Vec<Setting> {
    want.settings()
        .into_iter()
        .filter(|s| current.and_then(|c| c.get(s.key)) != Some(&s.value))
        .collect()
}

/// What the plan does, each part only where the host differs.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Decision {
    /// Records of the target for pairs that are not expected: deleted.
    pub delete: Vec<Pair>,
    /// Such records a session uses: kept (verify names the session to log out).
    pub busy: Vec<Pair>,
    /// Records to create by hand (`target.discovery = "manual"`).
    pub create: Vec<Pair>,
    /// SendTargets discovery from these pairs (empty: no discovery).
    pub discover_from: Vec<Pair>,
    /// Settings to change per expected pair, when the target is known at plan time; `None`
    /// when only discovery names it (a task sets them all then).
    pub updates: Option<Vec<(Pair, Setting)>>,
    /// Pairs to log in.
    pub login: Vec<Pair>,
}

/// Decide from what is wanted, the target IQN as known at plan time (`None`: discovery
/// names it), what is there, and the settings of the target's existing records.
pub(super) fn decide(
    want: &Want,
    iqn: Option<&str>,
    obs: &Observed,
    records: &BTreeMap<Pair, Record>,
) -> Decision {
    let mut d = Decision::default();
    match iqn {
        Some(iqn) => {
            let have = records_of(iqn, &obs.nodes);
            for p in have.iter().filter(|p| !want.pairs.contains(*p)) {
                let busy = obs
                    .sessions
                    .iter()
                    .any(|s| s.target == iqn && session_pair(s).as_ref() == Some(p));
                if busy {
                    d.busy.push(p.clone());
                } else {
                    d.delete.push(p.clone());
                }
            }
            let missing: Vec<&Pair> = want.pairs.iter().filter(|p| !have.contains(*p)).collect();
            if want.manual {
                d.create = missing.into_iter().cloned().collect();
            } else {
                d.discover_from = want.first_pair_per_iface(missing);
            }
            let mut updates = Vec::new();
            for p in &want.pairs {
                // A record that is not there has no settings, whatever was read before.
                let current = records.get(p).filter(|_| have.contains(p));
                for s in settings_to_change(want, current) {
                    updates.push((p.clone(), s));
                }
            }
            d.updates = Some(updates);
        }
        None => {
            // One portal per iface, the first of its subnet in the answers' order.
            d.discover_from = want
                .ifaces
                .iter()
                .filter_map(|i| want.pairs.iter().find(|q| q.iface == i.name).cloned())
                .collect();
        }
    }
    let logged_in: BTreeSet<Pair> = obs
        .sessions
        .iter()
        .filter(|s| s.is_logged_in())
        .filter(|s| iqn.is_some_and(|t| s.target == t))
        .filter_map(session_pair)
        .collect();
    d.login = want
        .pairs
        .iter()
        .filter(|p| !logged_in.contains(*p))
        .cloned()
        .collect();
    d
}

/// The target to use after discovery reported `targets` (from `sources`, for messages):
/// the answers' `explicit` one when reported, else the only one reported.
pub(super) fn choose_target(
    explicit: Option<&str>,
    targets: &BTreeSet<&str>,
    sources: &str,
) -> Result<String, String> {
    let listed = targets.iter().copied().collect::<Vec<_>>().join(", ");
    match explicit {
        Some(iqn) if targets.contains(iqn) => Ok(iqn.to_string()),
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
    }
}

/// How the sessions to the target differ from the expected ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SessionProblem {
    /// No session for an expected pair.
    Missing(Pair),
    /// More than one session for a pair.
    Several(Pair, usize),
    /// A session that is not over iSER.
    NotIser {
        pair: Pair,
        transport: String,
        sid: Option<u32>,
    },
    /// A session that is not logged in; `hint` says how to check the path.
    NotLoggedIn {
        pair: Pair,
        state: String,
        hint: String,
    },
    /// A session to the target for a pair that is not expected.
    Unexpected {
        pair: Pair,
        transport: Option<String>,
        sid: Option<u32>,
    },
    /// A recorded session whose portal does not read back as `ip:port` (a state file
    /// edited by hand).
    Unreadable(String),
}

fn sid_text(sid: Option<u32>) -> String {
    sid.map(|n| n.to_string()).unwrap_or_else(|| "SID".into())
}

impl fmt::Display for SessionProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionProblem::Missing(p) => write!(f, "no session to {p}"),
            SessionProblem::Several(p, n) => write!(
                f,
                "{n} sessions to {p}, expected one: log out the extra ones \
                 (`iscsiadm -m session -r SID -u`)"
            ),
            SessionProblem::NotIser {
                pair,
                transport,
                sid,
            } => write!(
                f,
                "the session to {pair} uses transport {transport:?}, not iser: the iface is \
                 not an iSER iface (rerun the iscsi step), and this session must be logged \
                 out (`iscsiadm -m session -r {} -u`)",
                sid_text(*sid)
            ),
            SessionProblem::NotLoggedIn { pair, state, hint } => write!(
                f,
                "the session to {pair} is {}, not LOGGED_IN: {hint}",
                if state.is_empty() {
                    "in an unknown state"
                } else {
                    state
                }
            ),
            SessionProblem::Unexpected {
                pair,
                transport,
                sid,
            } => write!(
                f,
                "an unexpected session to {pair} ({}): log it out (`iscsiadm -m session -r {} \
                 -u`) and delete its record",
                transport.as_deref().unwrap_or("transport unknown"),
                sid_text(*sid)
            ),
            SessionProblem::Unreadable(portal) => {
                write!(f, "the recorded portal {portal:?} is not ip:port")
            }
        }
    }
}

/// The sessions to the target compared with the expected pairs.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Checked {
    /// What is wrong (empty: healthy).
    pub problems: Vec<SessionProblem>,
    /// Logged-in sessions with no disk attached (a volume not mapped yet).
    pub no_disk: Vec<Pair>,
    /// The facts of each expected pair's session.
    pub facts: Vec<SessionFact>,
    /// The worksheet rows of each expected pair's session.
    pub records: Vec<SessionRecord>,
}

/// The sessions among `ours` (those to the target) that serve `p`.
fn sessions_of<'a>(ours: &[&'a SessionDetail], p: &Pair) -> Vec<&'a SessionDetail> {
    ours.iter()
        .copied()
        .filter(|s| session_pair(s).as_ref() == Some(p))
        .collect()
}

/// What is wrong with the session of one expected pair `p` among `ours`, and that session
/// when there is exactly one. `hint` says how to check the path of a session not logged in.
fn pair_verdict<'a>(
    ours: &[&'a SessionDetail],
    p: &Pair,
    hint: impl FnOnce() -> String,
) -> (Vec<SessionProblem>, Option<&'a SessionDetail>) {
    let s = match sessions_of(ours, p)[..] {
        [] => return (vec![SessionProblem::Missing(p.clone())], None),
        [s] => s,
        ref several => {
            return (
                vec![SessionProblem::Several(p.clone(), several.len())],
                None,
            )
        }
    };
    let mut problems = Vec::new();
    let transport = s.iface_transport.clone().unwrap_or_default();
    if transport != "iser" {
        problems.push(SessionProblem::NotIser {
            pair: p.clone(),
            transport,
            sid: s.sid,
        });
    }
    if !s.is_logged_in() {
        problems.push(SessionProblem::NotLoggedIn {
            pair: p.clone(),
            state: s.session_state.clone().unwrap_or_default(),
            hint: hint(),
        });
    }
    (problems, Some(s))
}

/// The sessions among `ours` for a pair that is not in `pairs`.
fn unexpected(ours: &[&SessionDetail], pairs: &[Pair]) -> Vec<SessionProblem> {
    ours.iter()
        .filter_map(|s| {
            let p = session_pair(s)?;
            (!pairs.contains(&p)).then(|| SessionProblem::Unexpected {
                pair: p,
                transport: s.iface_transport.clone(),
                sid: s.sid,
            })
        })
        .collect()
}

/// Exactly one logged-in iSER session per expected pair, and no other session to `iqn`.
pub(super) fn check(want: &Want, iqn: &str, sessions: &[SessionDetail]) -> Checked {
    let ours: Vec<&SessionDetail> = sessions.iter().filter(|s| s.target == iqn).collect();
    let mut c = Checked {
        no_disk: ours
            .iter()
            .filter(|s| s.is_logged_in() && s.disks().is_empty())
            .filter_map(|s| session_pair(s))
            .collect(),
        ..Default::default()
    };
    for p in &want.pairs {
        let (problems, found) = pair_verdict(&ours, p, || want.reach_hint(p));
        c.problems.extend(problems);
        let Some(s) = found else { continue };
        let transport = s.iface_transport.clone().unwrap_or_default();
        c.facts.push(SessionFact {
            iface: p.iface.clone(),
            portal: p.portal.to_string(),
            target: iqn.to_string(),
            transport: transport.clone(),
            disks: s.disks().into_iter().map(str::to_string).collect(),
        });
        c.records.push(SessionRecord {
            iface: p.iface.clone(),
            portal: p.portal.to_string(),
            transport,
            state: s.session_state.clone().unwrap_or_default(),
        });
    }
    c.problems.extend(unexpected(&ours, &want.pairs));
    c
}

/// A recorded portal (`ip:port`, `[v6]:port`, as [`Portal`] prints it) read back.
fn recorded_portal(s: &str) -> Option<Portal> {
    let (address, port) = s.trim().rsplit_once(':')?;
    let address = address.trim_start_matches('[').trim_end_matches(']');
    if address.is_empty() {
        return None;
    }
    Some(Portal {
        address: address.to_string(),
        port: port.parse().ok()?,
    })
}

/// The verdict of [`check_recorded`].
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct RecordedChecked {
    /// Per recorded session, in order: what is wrong with it (empty: healthy).
    pub per_fact: Vec<Vec<SessionProblem>>,
    /// Sessions to a recorded target for no recorded pair.
    pub unexpected: Vec<SessionProblem>,
}

/// [`check`] against what a finished run recorded (`status` has no answers): each fact's
/// (iface, portal) pair is expected once, logged in over iSER, to the fact's target, and no
/// other session to those targets. A fact whose portal does not read back has no session.
pub(crate) fn check_recorded(
    recorded: &[SessionFact],
    sessions: &[SessionDetail],
) -> RecordedChecked {
    let pairs: Vec<Option<Pair>> = recorded
        .iter()
        .map(|f| {
            Some(Pair {
                iface: f.iface.clone(),
                portal: recorded_portal(&f.portal)?,
            })
        })
        .collect();
    let mut c = RecordedChecked::default();
    for (f, p) in recorded.iter().zip(&pairs) {
        let ours: Vec<&SessionDetail> = sessions.iter().filter(|s| s.target == f.target).collect();
        c.per_fact.push(match p {
            Some(p) => {
                let hint = || format!("check that {} is reachable", p.portal.address);
                pair_verdict(&ours, p, hint).0
            }
            None => vec![SessionProblem::Unreadable(f.portal.clone())],
        });
    }
    let targets: BTreeSet<&str> = recorded.iter().map(|f| f.target.as_str()).collect();
    for t in targets {
        let ours: Vec<&SessionDetail> = sessions.iter().filter(|s| s.target == t).collect();
        let expected: Vec<Pair> = recorded
            .iter()
            .zip(&pairs)
            .filter(|(f, _)| f.target == t)
            .filter_map(|(_, p)| p.clone())
            .collect();
        c.unexpected.extend(unexpected(&ours, &expected));
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::steps::facts::IfaceFact;
    use crate::steps::parse::iscsiadm::Portal;

    const T: &str = "iqn.2002-09.com.lab:array";

    fn pair(iface: &str, ip: &str) -> Pair {
        Pair {
            iface: iface.into(),
            portal: Portal {
                address: ip.into(),
                port: 3260,
            },
        }
    }

    /// Two ports; portals A1, B1 on vA's subnet and A2, B2 on vB's, listed in `order`.
    fn want(order: &[(&str, &str)], manual: bool) -> Want {
        let iface = |n: &str, a: &str| IfaceFact {
            name: format!("iface-{n}"),
            netdev: n.into(),
            address: a.into(),
        };
        Want {
            explicit_iqn: Some(T.into()),
            manual,
            ifaces: vec![
                iface("vA", "192.168.130.10/24"),
                iface("vB", "192.168.131.10/24"),
            ],
            portals: Vec::new(),
            pairs: order.iter().map(|(i, p)| pair(i, p)).collect(),
            replacement_timeout: 20,
            chap: None,
        }
    }

    const PAIRS: [(&str, &str); 4] = [
        ("iface-vA", "192.168.130.101"),
        ("iface-vA", "192.168.130.102"),
        ("iface-vB", "192.168.131.101"),
        ("iface-vB", "192.168.131.102"),
    ];

    fn node(p: &Pair) -> NodeRef {
        NodeRef {
            target: T.into(),
            portal: p.portal.clone(),
            tpgt: 1,
            iface: Some(p.iface.clone()),
        }
    }

    fn session(p: &Pair, transport: &str, state: &str) -> SessionDetail {
        SessionDetail {
            target: T.into(),
            persistent_portal: Some(p.portal.clone()),
            iface_name: Some(p.iface.clone()),
            iface_transport: Some(transport.into()),
            session_state: Some(state.into()),
            sid: Some(7),
            ..Default::default()
        }
    }

    /// Records of every expected pair, with every wanted setting.
    fn good_records(w: &Want) -> BTreeMap<Pair, Record> {
        let rec: Record = w
            .settings()
            .into_iter()
            .map(|s| (s.key.to_string(), s.value))
            .collect();
        w.pairs.iter().map(|p| (p.clone(), rec.clone())).collect()
    }

    #[test]
    fn decide_table() {
        let w = want(&PAIRS, false);
        let all = w.pairs.clone();
        let cross = pair("iface-vA", "192.168.131.101");
        let logged_in: Vec<SessionDetail> = all
            .iter()
            .map(|p| session(p, "iser", "LOGGED_IN"))
            .collect();
        let healthy = Observed {
            sessions: logged_in.clone(),
            nodes: all.iter().map(node).collect(),
        };
        let mut with_cross = healthy.clone();
        with_cross.nodes.push(node(&cross));
        let mut cross_busy = with_cross.clone();
        cross_busy
            .sessions
            .push(session(&cross, "iser", "LOGGED_IN"));
        let mut one_record_missing = healthy.clone();
        one_record_missing.nodes.remove(2);
        one_record_missing.sessions.remove(2);
        let mut no_records = BTreeMap::new();
        no_records.insert(all[0].clone(), Record::new());
        struct Case<'a> {
            name: &'a str,
            iqn: Option<&'a str>,
            obs: &'a Observed,
            records: BTreeMap<Pair, Record>,
            want: Decision,
        }
        let good = good_records(&w);
        let cases = [
            Case {
                name: "healthy: nothing to do",
                iqn: Some(T),
                obs: &healthy,
                records: good.clone(),
                want: Decision {
                    updates: Some(vec![]),
                    ..Default::default()
                },
            },
            Case {
                name: "a cross-subnet record is deleted",
                iqn: Some(T),
                obs: &with_cross,
                records: good.clone(),
                want: Decision {
                    delete: vec![cross.clone()],
                    updates: Some(vec![]),
                    ..Default::default()
                },
            },
            Case {
                name: "a cross-subnet record a session uses is kept",
                iqn: Some(T),
                obs: &cross_busy,
                records: good.clone(),
                want: Decision {
                    busy: vec![cross.clone()],
                    updates: Some(vec![]),
                    ..Default::default()
                },
            },
            Case {
                name: "a missing record: discovery from its subnet's first portal, then login",
                iqn: Some(T),
                obs: &one_record_missing,
                records: good.clone(),
                want: Decision {
                    discover_from: vec![all[2].clone()],
                    updates: Some(
                        w.settings()
                            .into_iter()
                            .map(|s| (all[2].clone(), s))
                            .collect(),
                    ),
                    login: vec![all[2].clone()],
                    ..Default::default()
                },
            },
            Case {
                name: "target unknown: discovery from each iface, a task configures",
                iqn: None,
                obs: &healthy,
                records: BTreeMap::new(),
                want: Decision {
                    discover_from: vec![all[0].clone(), all[2].clone()],
                    login: all.clone(),
                    ..Default::default()
                },
            },
        ];
        for c in cases {
            let got = decide(&w, c.iqn, c.obs, &c.records);
            assert_eq!(got, c.want, "{}", c.name);
        }
    }

    #[test]
    fn discovery_without_a_target_goes_in_iface_order_whatever_the_portal_order() {
        let reversed: Vec<(&str, &str)> = PAIRS.iter().rev().copied().collect();
        let w = want(&reversed, false);
        let d = decide(&w, None, &Observed::default(), &BTreeMap::new());
        assert_eq!(
            d.discover_from,
            vec![
                pair("iface-vA", "192.168.130.102"),
                pair("iface-vB", "192.168.131.102")
            ]
        );
    }

    #[test]
    fn manual_mode_creates_the_missing_records_and_never_discovers() {
        let w = want(&PAIRS, true);
        let d = decide(&w, Some(T), &Observed::default(), &BTreeMap::new());
        assert_eq!(d.create, w.pairs);
        assert!(d.discover_from.is_empty());
        assert_eq!(d.updates.as_ref().map(Vec::len), Some(4 * 4));
    }

    #[test]
    fn check_table() {
        let w = want(&PAIRS, false);
        let all = w.pairs.clone();
        let good: Vec<SessionDetail> = all
            .iter()
            .map(|p| session(p, "iser", "LOGGED_IN"))
            .collect();
        assert!(check(&w, T, &good).problems.is_empty());
        assert_eq!(check(&w, T, &good).facts.len(), 4);

        let mut tcp = good.clone();
        tcp[0].iface_transport = Some("tcp".into());
        let mut failed = good.clone();
        failed[1].session_state = Some("FAILED".into());
        let mut extra = good.clone();
        extra.push(session(
            &pair("iface-vB", "192.168.130.101"),
            "iser",
            "LOGGED_IN",
        ));
        let mut twice = good.clone();
        twice.push(good[3].clone());
        let other_target: Vec<SessionDetail> = good
            .iter()
            .map(|s| SessionDetail {
                target: "iqn.2002-09.com.lab:other".into(),
                ..s.clone()
            })
            .collect();
        let cases: [(&str, &[SessionDetail], &str); 5] = [
            ("tcp", &tcp, "uses transport \"tcp\", not iser"),
            (
                "failed",
                &failed,
                "is FAILED, not LOGGED_IN: check the link of vA",
            ),
            (
                "extra",
                &extra,
                "an unexpected session to 192.168.130.101:3260 via iface-vB",
            ),
            (
                "twice",
                &twice,
                "2 sessions to 192.168.131.102:3260 via iface-vB",
            ),
            (
                "other target",
                &other_target,
                "no session to 192.168.130.101:3260 via iface-vA",
            ),
        ];
        for (name, sessions, text) in cases {
            let c = check(&w, T, sessions);
            let shown: Vec<String> = c.problems.iter().map(|p| p.to_string()).collect();
            assert!(shown.iter().any(|s| s.contains(text)), "{name}: {shown:#?}");
        }
    }

    /// The pair a problem is about.
    fn about(p: &SessionProblem) -> Option<&Pair> {
        match p {
            SessionProblem::Missing(p) | SessionProblem::Several(p, _) => Some(p),
            SessionProblem::NotIser { pair, .. }
            | SessionProblem::NotLoggedIn { pair, .. }
            | SessionProblem::Unexpected { pair, .. } => Some(pair),
            SessionProblem::Unreadable(_) => None,
        }
    }

    #[test]
    fn the_recorded_form_agrees_with_check() {
        let w = want(&PAIRS, false);
        let good: Vec<SessionDetail> = w
            .pairs
            .iter()
            .map(|p| session(p, "iser", "LOGGED_IN"))
            .collect();
        // What a run that verified records, and `status` later reads back.
        let recorded = check(&w, T, &good).facts;
        assert_eq!(recorded.len(), 4);
        let mut tcp = good.clone();
        tcp[0].iface_transport = Some("tcp".into());
        let mut failed = good.clone();
        failed[1].session_state = Some("FAILED".into());
        let mut tcp_and_failed = good.clone();
        tcp_and_failed[2].iface_transport = Some("tcp".into());
        tcp_and_failed[2].session_state = Some("FREE".into());
        let mut extra = good.clone();
        extra.push(session(
            &pair("iface-vB", "192.168.130.101"),
            "iser",
            "LOGGED_IN",
        ));
        let mut twice = good.clone();
        twice.push(good[3].clone());
        let mut gone = good.clone();
        gone.remove(1);
        let other_target: Vec<SessionDetail> = good
            .iter()
            .map(|s| SessionDetail {
                target: "iqn.2002-09.com.lab:other".into(),
                ..s.clone()
            })
            .collect();
        let rows: [(&str, &[SessionDetail]); 9] = [
            ("healthy", &good),
            ("tcp", &tcp),
            ("failed", &failed),
            ("tcp and not logged in", &tcp_and_failed),
            ("extra", &extra),
            ("twice", &twice),
            ("one gone", &gone),
            ("other target", &other_target),
            ("none", &[]),
        ];
        let kinds = |ps: &[&SessionProblem]| -> Vec<std::mem::Discriminant<SessionProblem>> {
            ps.iter().map(|p| std::mem::discriminant(*p)).collect()
        };
        for (name, sessions) in rows {
            let verify = check(&w, T, sessions);
            let status = check_recorded(&recorded, sessions);
            assert_eq!(
                verify.problems.is_empty(),
                status.per_fact.iter().all(Vec::is_empty) && status.unexpected.is_empty(),
                "{name}"
            );
            for (p, got) in w.pairs.iter().zip(&status.per_fact) {
                let want: Vec<&SessionProblem> = verify
                    .problems
                    .iter()
                    .filter(|x| !matches!(x, SessionProblem::Unexpected { .. }))
                    .filter(|x| about(x) == Some(p))
                    .collect();
                let got: Vec<&SessionProblem> = got.iter().collect();
                assert_eq!(kinds(&want), kinds(&got), "{name}: {p}");
            }
            let unexpected: Vec<SessionProblem> = verify
                .problems
                .iter()
                .filter(|x| matches!(x, SessionProblem::Unexpected { .. }))
                .cloned()
                .collect();
            assert_eq!(unexpected, status.unexpected, "{name}");
        }
    }

    #[test]
    fn a_recorded_portal_reads_back_and_a_bad_one_is_named() {
        let v6 = Portal {
            address: "fd00::101".into(),
            port: 3260,
        };
        for p in [pair("iface-vA", "192.168.130.101").portal, v6] {
            assert_eq!(recorded_portal(&p.to_string()), Some(p));
        }
        let bad = SessionFact {
            iface: "iface-vA".into(),
            portal: "192.168.130.101".into(),
            target: T.into(),
            ..Default::default()
        };
        let c = check_recorded(&[bad], &[]);
        assert_eq!(
            c.per_fact,
            vec![vec![SessionProblem::Unreadable("192.168.130.101".into())]]
        );
    }
}
