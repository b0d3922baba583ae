//! The sessions step against the recording fake: plans, tasks, verify, and the dry runs.

use super::*;
use crate::prompt::Asker;
use crate::steps::facts::{IfaceFact, SessionFact};
use crate::steps::fake::FakeHost;
use crate::steps::testkit::{apply, summary, Run};
use crate::steps::CmdOutput;
use crate::worksheets::{SessionRecord, SubnetRecord};

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

/// The four settings a record without them gets, in one update, displayed.
fn updates_for(iface: &str, portal: &str) -> Vec<String> {
    vec![update_argv(iface, portal).join(" ")]
}

/// The one update that sets the four settings on a record.
fn update_argv(iface: &str, portal: &str) -> Vec<String> {
    let mut tail = vec!["-o", "update"];
    for (k, v) in [
        ("node.startup", "automatic"),
        ("node.session.timeo.replacement_timeout", "20"),
        ("node.conn[0].timeo.login_timeout", "5"),
        ("node.session.auth.authmethod", "None"),
    ] {
        tail.extend(["-n", k, "-v", v]);
    }
    node(iface, portal, &tail)
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

fn discovery_argv(portal: &'static str, iface: &'static str) -> Vec<&'static str> {
    discoverydb_argv(portal, iface, &["--discover"])
}

fn discoverydb_argv(
    portal: &'static str,
    iface: &'static str,
    tail: &[&'static str],
) -> Vec<&'static str> {
    let mut argv = vec![
        "iscsiadm",
        "-m",
        "discoverydb",
        "-t",
        "st",
        "-p",
        portal,
        "-I",
        iface,
    ];
    argv.extend_from_slice(tail);
    argv
}

/// The discovery record's limits, as the `-o update` before each discovery sets them.
fn limits_argv(portal: &'static str, iface: &'static str) -> Vec<&'static str> {
    discoverydb_argv(
        portal,
        iface,
        &[
            "-o",
            "update",
            "-n",
            "discovery.sendtargets.timeo.login_timeout",
            "-v",
            "5",
            "-n",
            "discovery.sendtargets.timeo.auth_timeout",
            "-v",
            "5",
            "-n",
            "discovery.sendtargets.timeo.active_timeout",
            "-v",
            "8",
            "-n",
            "discovery.sendtargets.reopen_max",
            "-v",
            "0",
        ],
    )
}

/// One discovery from `portal` via `iface`: its record made, its limits set, then the
/// discovery from it answering `out`.
fn expect_discovery(h: &FakeHost, portal: &'static str, iface: &'static str, out: CmdOutput) {
    h.expect(
        &discoverydb_argv(portal, iface, &["-o", "new"]),
        CmdOutput::ok(format!(
            "New discovery record for [{},3260] added.\n",
            portal.trim_end_matches(":3260")
        )),
    );
    h.expect(&limits_argv(portal, iface), CmdOutput::ok(""));
    h.expect(&discovery_argv(portal, iface), out);
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
    let mut t =
        format!("iSCSI Transport Class version 2.0-870\nversion 2.1.8\nTarget: {T} (non-flash)\n");
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

/// Verify's first look at the sessions; a rescan follows only when one shows no disk.
fn verified(h: &FakeHost, sessions: CmdOutput) {
    h.expect(&["iscsiadm", "-m", "session", "-P", "3"], sessions);
}

fn rescanned(h: &FakeHost) {
    h.expect(
        &["iscsiadm", "-m", "session", "--rescan"],
        CmdOutput::ok(""),
    );
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
    rescanned(&h);
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
             192.168.131.101:3260 (one at a time, each from a discovery record that makes \
             iscsiadm give up after 8s without an answer and not retry, removing its \
             discovery session; each cut off after 20s, then the next portal of the subnet \
             for an iface whose portal did not answer)"
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
    expect_discovery(&h, A1, "iface-vA", discovery_output());
    expect_discovery(&h, A2, "iface-vB", discovery_output());
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
    expect_discovery(&h, A1, "iface-vA", discovery_output());
    expect_discovery(&h, A2, "iface-vB", discovery_output());
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
    expect_discovery(&h, A1, "iface-vA", discovery_output());
    expect_discovery(&h, A2, "iface-vB", discovery_output());
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
    expect_discovery(&h, A1, "iface-vA", discovery_output());
    expect_discovery(&h, A2, "iface-vB", killed());
    // The killed discovery left its session (no target name, port 0 as iscsiadm prints
    // it) and its record: the session is logged out by SID and the record deleted, before
    // the other portal is asked.
    h.expect(
        &["iscsiadm", "-m", "session"],
        CmdOutput::ok("iser: [1] 192.168.131.101:0,1  (non-flash)\n"),
    );
    h.expect(
        &["iscsiadm", "-m", "session", "-r", "1", "-u"],
        CmdOutput::ok(""),
    );
    h.expect(
        &["iscsiadm", "-m", "session"],
        CmdOutput::status(21, "", "iscsiadm: No active sessions.\n"),
    );
    h.expect(&discoverydb_delete(A2, "iface-vB"), CmdOutput::ok(""));
    expect_discovery(&h, B2, "iface-vB", discovery_output());
    expect_prune_configure_login(&h);
    let db = IscsiDb::new(&h, true);
    apply(&mut step, &mut run.cx(&db), &plan).unwrap();
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
    for said in [
        "sessions: logged out the discovery session 1 to 192.168.131.101 (no target name) \
         that the failed discovery left",
        "sessions: deleted the discovery record of 192.168.131.101:3260 that the failed \
         discovery left",
    ] {
        assert!(
            run.sheet.notes.iter().any(|n| n.starts_with(said)),
            "{said}\n{:?}",
            run.sheet.notes
        );
    }
    // Only the failed discovery's record went; the ones that answered stay.
    assert_eq!(
        db.records(),
        ["192.168.130.101,3260", "192.168.131.102,3260"]
    );
    let ran = h.ran();
    let at = |c: &str| ran.iter().position(|r| r == c).unwrap();
    assert!(
        at("iscsiadm -m session -r 1 -u")
            < at("iscsiadm -m discoverydb -t st -p 192.168.131.102:3260 -I iface-vB --discover")
    );
    h.finish();
}

#[test]
fn each_discovery_runs_from_a_record_whose_limits_end_it_before_the_bound() {
    // Killed at the bound, iscsiadm leaves its discovery session (it created it itself over
    // netlink, and no one else can remove it); giving up by itself it destroys it. So the
    // record's limits must end the discovery well before the bound: a connect of
    // login_timeout seconds plus active_timeout seconds without an answer, and no reopen.
    let limit = |key: &str| -> u64 {
        apply::DISCOVERY_LIMITS
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.parse().unwrap())
            .unwrap_or_else(|| panic!("{key} is not set"))
    };
    assert_eq!(limit("discovery.sendtargets.reopen_max"), 0);
    let worst = limit("discovery.sendtargets.timeo.login_timeout")
        + limit("discovery.sendtargets.timeo.active_timeout");
    assert!(
        worst + 5 <= DISCOVERY_BOUND.as_secs(),
        "iscsiadm may give up only after {worst}s, too near the {}s bound",
        DISCOVERY_BOUND.as_secs()
    );
    assert!(
        limit("discovery.sendtargets.timeo.auth_timeout")
            <= limit("discovery.sendtargets.timeo.login_timeout")
    );

    // The record is made, its limits set, and only then the discovery runs from it.
    let h = FakeHost::new();
    none_listed(&h);
    let mut run = Run::sessions(answers());
    let mut step = quick();
    let plan = step.plan(&mut run.cx(&h)).unwrap();
    expect_discovery(&h, A1, "iface-vA", discovery_output());
    expect_discovery(&h, A2, "iface-vB", discovery_output());
    expect_prune_configure_login(&h);
    let db = IscsiDb::new(&h, true);
    apply(&mut step, &mut run.cx(&db), &plan).unwrap();
    let ran = h.ran();
    let at = |argv: Vec<&str>| {
        let c = argv.join(" ");
        ran.iter()
            .position(|r| *r == c)
            .unwrap_or_else(|| panic!("{c} did not run:\n{ran:#?}"))
    };
    for (portal, iface) in [(A1, "iface-vA"), (A2, "iface-vB")] {
        let new = at(discoverydb_argv(portal, iface, &["-o", "new"]));
        let limits = at(limits_argv(portal, iface));
        let discover = at(discovery_argv(portal, iface));
        assert!(new < limits && limits < discover, "{ran:#?}");
    }
    // The discovery itself carries the bound, the last resort.
    let pair = Pair {
        iface: "iface-vA".into(),
        portal: crate::steps::parse::iscsiadm::Portal {
            address: "192.168.130.101".into(),
            port: 3260,
        },
    };
    let [_, _, discover] = apply::discovery_cmds(&pair);
    assert_eq!(discover.timeout, DISCOVERY_BOUND);
    assert_eq!(discover.argv, discovery_argv(A1, "iface-vA"));
    assert_eq!(
        db.records(),
        ["192.168.130.101,3260", "192.168.131.101,3260"]
    );
    h.finish();
}

#[test]
fn a_discovery_record_that_cannot_be_made_is_named_and_the_next_portal_tried() {
    let h = FakeHost::new();
    none_listed(&h);
    let mut run = Run::sessions(answers());
    let mut step = quick();
    let plan = step.plan(&mut run.cx(&h)).unwrap();
    expect_discovery(&h, A1, "iface-vA", discovery_output());
    h.expect(
        &discoverydb_argv(A2, "iface-vB", &["-o", "new"]),
        CmdOutput::status(6, "", "iscsiadm: Could not add new discovery record.\n"),
    );
    // Nothing ran to the portal, but the clean-up still looks (it costs one listing).
    h.expect(
        &["iscsiadm", "-m", "session"],
        CmdOutput::status(21, "", "iscsiadm: No active sessions.\n"),
    );
    expect_discovery(&h, B2, "iface-vB", discovery_output());
    expect_prune_configure_login(&h);
    apply(&mut step, &mut run.cx(&h), &plan).unwrap();
    assert!(
        run.sheet.notes.iter().any(|n| n.contains(
            "SendTargets discovery at 192.168.131.101:3260 via iface-vB: could not prepare \
             its discovery record: `iscsiadm -m discoverydb -t st -p 192.168.131.101:3260 -I \
             iface-vB -o new` (exit 6): iscsiadm: Could not add new discovery record."
        )),
        "{:?}",
        run.sheet.notes
    );
    // No discovery ran from a record without its limits.
    assert!(!h
        .ran()
        .iter()
        .any(|r| r.contains("192.168.131.101:3260 -I iface-vB --discover")));
    h.finish();
}

#[test]
fn a_failed_discovery_keeps_a_record_it_did_not_make_and_names_what_it_could_not_remove() {
    let h = FakeHost::new();
    none_listed(&h);
    // The record of 192.168.131.101 was there before this run (an earlier discovery).
    h.put_file(
        "/etc/iscsi/send_targets/192.168.131.101,3260/st_config",
        "x\n",
    );
    let mut run = Run::sessions(answers());
    let mut step = quick();
    let plan = step.plan(&mut run.cx(&h)).unwrap();
    expect_discovery(&h, A1, "iface-vA", discovery_output());
    expect_discovery(&h, A2, "iface-vB", killed());
    // Another target's session, and a discovery session to another address: not ours.
    let listing = CmdOutput::ok(
        "iser: [3] 192.168.131.101:0,1  (non-flash)\n\
         iser: [4] 192.168.130.102:0,1  (non-flash)\n\
         tcp: [5] 192.168.131.101:3260,1 iqn.other (non-flash)\n",
    );
    h.expect(&["iscsiadm", "-m", "session"], listing.clone());
    h.expect(
        &["iscsiadm", "-m", "session", "-r", "3", "-u"],
        CmdOutput {
            code: None,
            timed_out: true,
            ..Default::default()
        },
    );
    h.expect(&["iscsiadm", "-m", "session"], listing);
    expect_discovery(&h, B2, "iface-vB", discovery_output());
    expect_prune_configure_login(&h);
    let db = IscsiDb::new(&h, true);
    apply(&mut step, &mut run.cx(&db), &plan).unwrap();
    assert!(
        run.sheet.notes.iter().any(|n| n
            .starts_with("sessions: could not log out the discovery session 3 to 192.168.131.101")),
        "{:?}",
        run.sheet.notes
    );
    assert!(
        run.sheet.notes.iter().any(|n| n.starts_with(
            "sessions: the discovery session 3 to 192.168.131.101 (no target name) is still \
             logged in: iscsiadm cannot log out a session that has no target name"
        )),
        "{:?}",
        run.sheet.notes
    );
    assert!(db.records().contains(&"192.168.131.101,3260".to_string()));
    assert!(!h
        .ran()
        .iter()
        .any(|r| r.contains("discoverydb") && r.ends_with("-o delete")));
    h.finish();
}

fn discoverydb_delete(portal: &'static str, iface: &'static str) -> [&'static str; 11] {
    [
        "iscsiadm",
        "-m",
        "discoverydb",
        "-t",
        "st",
        "-p",
        portal,
        "-I",
        iface,
        "-o",
        "delete",
    ]
}

/// A host whose discoveries write their record into the fake's iSCSI database first (as
/// iscsiadm does, answered or not), and whose `discoverydb -o delete` removes it when
/// `deletes` is set.
struct IscsiDb<'a> {
    inner: &'a FakeHost,
    deletes: bool,
}

impl<'a> IscsiDb<'a> {
    fn new(inner: &'a FakeHost, deletes: bool) -> Self {
        IscsiDb { inner, deletes }
    }

    /// The SendTargets records in the database, sorted.
    fn records(&self) -> Vec<String> {
        let mut v = crate::steps::Host::list_dir(
            self.inner,
            std::path::Path::new("/etc/iscsi/send_targets"),
        )
        .unwrap();
        v.sort();
        v
    }
}

impl crate::steps::Host for IscsiDb<'_> {
    fn run(&self, cmd: &crate::steps::Cmd) -> Result<CmdOutput, crate::steps::host::HostError> {
        let a: Vec<&str> = cmd.argv.iter().map(String::as_str).collect();
        let dir = |portal: &str| {
            format!(
                "/etc/iscsi/send_targets/{}",
                super::leftover::portal_dir(portal)
            )
        };
        match a.as_slice() {
            ["iscsiadm", "-m", "discoverydb", "-t", "st", "-p", portal, .., "-o", "new"] => {
                self.inner
                    .put_file(&format!("{}/st_config", dir(portal)), "x\n");
            }
            ["iscsiadm", "-m", "discoverydb", "-t", "st", "-p", portal, .., "delete"]
                if self.deletes =>
            {
                let _ = std::fs::remove_dir_all(self.inner.path(&dir(portal)));
            }
            _ => {}
        }
        self.inner.run(cmd)
    }
    fn which(&self, program: &str) -> Option<std::path::PathBuf> {
        self.inner.which(program)
    }
    fn read(
        &self,
        path: &std::path::Path,
    ) -> Result<Option<String>, crate::steps::host::HostError> {
        self.inner.read(path)
    }
    fn list_dir(
        &self,
        path: &std::path::Path,
    ) -> Result<Vec<String>, crate::steps::host::HostError> {
        self.inner.list_dir(path)
    }
    fn exists(&self, path: &std::path::Path) -> bool {
        self.inner.exists(path)
    }
    fn write(
        &self,
        path: &std::path::Path,
        contents: &str,
        mode: u32,
    ) -> Result<crate::steps::host::WriteOutcome, crate::steps::host::HostError> {
        self.inner.write(path, contents, mode)
    }
    fn root(&self) -> &std::path::Path {
        self.inner.root()
    }
    fn is_root(&self) -> bool {
        self.inner.is_root()
    }
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
        msg.contains("login to 192.168.131.102:3260 via iface-vB: no answer within 60s (killed)"),
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
    expect_discovery(
        &h,
        A1,
        "iface-vA",
        CmdOutput::status(
            11,
            "",
            "iscsiadm: Received iferror -101: Network is unreachable.\n\
             iscsiadm: Connection to discovery portal 192.168.130.101 failed: encountered \
             connection failure\niscsiadm: connection login retries (reopen_max) 5 exceeded\n\
             iscsiadm: Could not perform SendTargets discovery: iSCSI PDU timed out\n",
        ),
    );
    expect_discovery(&h, A2, "iface-vB", killed());
    // After each failure the sessions are looked at: none was left.
    h.allow(
        &["iscsiadm", "-m", "session"],
        CmdOutput::status(21, "", "iscsiadm: No active sessions.\n"),
    );
    // Each iface then tries the other portal of its subnet; they fail too.
    expect_discovery(&h, B1, "iface-vA", killed());
    expect_discovery(&h, B2, "iface-vB", killed());
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
    // The secret is masked in the record's one update, whose reasons name CHAP.
    assert!(
        text.contains("-o update -n node.startup -v automatic")
            && text.contains(
                "-n node.session.auth.password -v '******'    # log in at boot; fail over \
                 per iscsi.replacement_timeout; give up fast on a dead portal; \
                 authentication per target.chap"
            ),
        "{text}"
    );
    assert!(!format!("{step:?}").contains(SECRET));
    expect_discovery(&h, A1, "iface-vA", discovery_output());
    expect_discovery(&h, A2, "iface-vB", discovery_output());
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
    let wrong = tree(&[
        (3, A1, "iface-vA", "iser", "FAILED", &[]),
        (4, B1, "iface-vA", "iser", "LOGGED_IN", &[]),
        (7, B1, "iface-vA", "iser", "LOGGED_IN", &[]),
        (5, A2, "iface-vB", "iser", "LOGGED_IN", &[]),
        (8, A2, "iface-vA", "iser", "LOGGED_IN", &[]),
    ]);
    verified(&h, wrong.clone());
    // Sessions without disks: a rescan, then the same sessions until the bound.
    rescanned(&h);
    h.allow(&["iscsiadm", "-m", "session", "-P", "3"], wrong);
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

/// A dry run on a bare host: no open-iscsi, and the iscsi step only planned (no iface facts).
fn bare_dry_run(answers: Value) -> (Plan, FakeHost) {
    let h = FakeHost::new().only_programs(&[]);
    let mut run = Run::new(answers, Facts::default());
    run.options.dry_run = true;
    let plan = {
        let ro = crate::steps::host::ReadOnly(&h);
        quick().plan(&mut run.cx(&ro)).unwrap()
    };
    assert!(h.ran().is_empty(), "{:?}", h.ran());
    assert!(h.changes().is_empty(), "{:?}", h.changes());
    (plan, h)
}

#[test]
fn a_bare_host_dry_run_plans_discovery_settings_and_logins_from_the_answers() {
    let (plan, h) = bare_dry_run(answers());
    let mut want = vec!["task discover".to_string()];
    for (iface, portal) in PAIRS {
        want.extend(updates_for(iface, portal));
    }
    want.push("task login".into());
    assert_eq!(summary(&plan), want, "{}", plan.render());
    let text = plan.render();
    assert!(
        text.contains(
            "SendTargets discovery from iface-vA at 192.168.130.101:3260, from iface-vB at \
             192.168.131.101:3260"
        ),
        "{text}"
    );
    assert!(text.contains("delete every record it creates that is not an expected pair"));
    assert!(plan.learned.is_empty(), "{:?}", plan.learned);
    h.finish();
}

#[test]
fn a_bare_host_dry_run_with_discover_shows_the_target_iqn_to_learn() {
    let mut a = answers();
    a["target"]["iqn"] = json!("discover");
    let (plan, h) = bare_dry_run(a);
    assert_eq!(plan.learned, [TARGET_FROM_DISCOVERY]);
    let s = summary(&plan);
    assert_eq!(s.first().map(String::as_str), Some("task discover"));
    assert_eq!(s.last().map(String::as_str), Some("task login"));
    // Discovery, one update per record (4), login.
    assert_eq!(s.len(), 2 + 4, "{s:#?}");
    assert!(
        s[1].starts_with(
            "iscsiadm -m node -T '<target IQN from SendTargets discovery>' -p \
             192.168.130.101:3260 -I iface-vA -o update -n node.startup -v automatic"
        ),
        "{s:#?}"
    );
    assert!(plan
        .render()
        .contains("did not answer), taking the target IQN from it; then delete"));
    h.finish();
}

#[test]
fn a_bare_host_dry_run_in_manual_mode_plans_one_record_per_pair() {
    let mut a = answers();
    a["target"]["discovery"] = json!("manual");
    let (plan, h) = bare_dry_run(a);
    let mut want: Vec<String> = PAIRS
        .iter()
        .map(|(i, p)| node(i, p, &["-o", "new"]).join(" "))
        .collect();
    for (iface, portal) in PAIRS {
        want.extend(updates_for(iface, portal));
    }
    want.push("task login".into());
    assert_eq!(summary(&plan), want);
    h.finish();
}

#[test]
fn a_task_id_the_step_does_not_have_is_an_internal_error() {
    assert_eq!("login".parse::<TaskId>().unwrap(), TaskId::Login);
    for t in [TaskId::Discover, TaskId::Configure, TaskId::Login] {
        assert_eq!(t.as_str().parse::<TaskId>().unwrap(), t);
    }
    let msg = "prune".parse::<TaskId>().unwrap_err().to_string();
    assert!(msg.contains("no task \"prune\""), "{msg}");
}

// ---- a volume added later ----

const OLD: &str = "36001405aaaaaaaaaaaaaaaaaaaaaaaa0";
const NEW: &str = "36001405bbbbbbbbbbbbbbbbbbbbbbbb0";

/// The answers with two volumes of these WWIDs.
fn two_volumes() -> Value {
    let mut a = answers();
    a["volumes"] = json!([
        {"wwid": OLD, "mount_point": "/mnt/a"},
        {"wwid": NEW.to_ascii_uppercase(), "mount_point": "/mnt/b"}
    ]);
    a
}

/// What sysfs says of each disk: `sd?` of the old LUN, `sdw`-`sdz` of the new one.
fn wwids_in_sysfs(h: &FakeHost, new_disks: &[&str]) {
    for d in ["sda", "sdb", "sdc", "sdd", "sde", "sdf", "sdg", "sdh"] {
        h.put_file(
            &format!("/sys/block/{d}/device/wwid"),
            &format!("naa.{}\n", &OLD[1..]),
        );
    }
    for d in new_disks {
        h.put_file(
            &format!("/sys/block/{d}/device/wwid"),
            &format!("naa.{}\n", &NEW[1..]),
        );
    }
}

#[test]
fn a_lun_with_no_disk_yet_is_rescanned_for_until_it_appears() {
    let h = FakeHost::new();
    configured(&h, all_logged_in("iser"));
    let mut run = Run::sessions(two_volumes());
    let mut step = Sessions {
        disk_wait: Duration::from_secs(10),
        ..Sessions::default()
    };
    assert!(step.plan(&mut run.cx(&h)).unwrap().is_empty());
    wwids_in_sysfs(&h, &["sdw", "sdx", "sdy", "sdz"]);
    // The first look: only the old LUN's disks; then a rescan, and the new LUN's disks.
    verified(&h, all_logged_in("iser"));
    h.expect(
        &["iscsiadm", "-m", "session", "--rescan"],
        CmdOutput::ok(""),
    );
    h.expect(
        &["iscsiadm", "-m", "session", "-P", "3"],
        all_logged_in("iser"),
    );
    h.allow(
        &["iscsiadm", "-m", "session", "-P", "3"],
        tree(&[
            (
                3,
                A1,
                "iface-vA",
                "iser",
                "LOGGED_IN",
                &["sda", "sdb", "sdw"],
            ),
            (
                4,
                B1,
                "iface-vA",
                "iser",
                "LOGGED_IN",
                &["sdc", "sdd", "sdx"],
            ),
            (
                5,
                A2,
                "iface-vB",
                "iser",
                "LOGGED_IN",
                &["sde", "sdf", "sdy"],
            ),
            (
                6,
                B2,
                "iface-vB",
                "iser",
                "LOGGED_IN",
                &["sdg", "sdh", "sdz"],
            ),
        ]),
    );
    step.verify(&mut run.cx(&h)).unwrap();
    h.finish();
    assert!(
        run.facts.sessions.iter().all(|s| s.disks.len() == 3),
        "{:?}",
        run.facts.sessions
    );
    assert!(run.sheet.notes.is_empty(), "{:?}", run.sheet.notes);
}

#[test]
fn a_lun_that_never_appears_is_named_and_left_to_the_multipath_step() {
    let h = FakeHost::new();
    configured(&h, all_logged_in("iser"));
    let mut run = Run::sessions(two_volumes());
    let mut step = Sessions {
        disk_wait: Duration::from_millis(50),
        ..Sessions::default()
    };
    assert!(step.plan(&mut run.cx(&h)).unwrap().is_empty());
    wwids_in_sysfs(&h, &[]);
    verified(&h, all_logged_in("iser"));
    h.expect(
        &["iscsiadm", "-m", "session", "--rescan"],
        CmdOutput::ok(""),
    );
    h.allow(
        &["iscsiadm", "-m", "session", "-P", "3"],
        all_logged_in("iser"),
    );
    step.verify(&mut run.cx(&h)).unwrap();
    h.finish();
    assert_eq!(run.sheet.notes.len(), 1, "{:?}", run.sheet.notes);
    assert!(run.sheet.notes[0].starts_with(&format!("no disk of LUN {NEW}")));
}

#[test]
fn every_lun_present_means_no_second_rescan() {
    let h = FakeHost::new();
    configured(&h, all_logged_in("iser"));
    let mut a = answers();
    a["volume"] = json!({"wwid": OLD, "mount_point": "/mnt/a"});
    let mut run = Run::sessions(a);
    let mut step = quick();
    assert!(step.plan(&mut run.cx(&h)).unwrap().is_empty());
    wwids_in_sysfs(&h, &[]);
    verified(&h, all_logged_in("iser"));
    step.verify(&mut run.cx(&h)).unwrap();
    h.finish();
}

/// A host that counts the discoveries in flight at once (each takes 30 ms).
struct Overlap<'a> {
    inner: &'a FakeHost,
    now: std::sync::atomic::AtomicUsize,
    most: std::sync::atomic::AtomicUsize,
}

impl crate::steps::Host for Overlap<'_> {
    fn run(&self, cmd: &crate::steps::Cmd) -> Result<CmdOutput, crate::steps::host::HostError> {
        use std::sync::atomic::Ordering::SeqCst;
        if !cmd.argv.iter().any(|a| a == "--discover") {
            return self.inner.run(cmd);
        }
        let n = self.now.fetch_add(1, SeqCst) + 1;
        self.most.fetch_max(n, SeqCst);
        std::thread::sleep(std::time::Duration::from_millis(30));
        let out = self.inner.run(cmd);
        self.now.fetch_sub(1, SeqCst);
        out
    }
    fn which(&self, program: &str) -> Option<std::path::PathBuf> {
        self.inner.which(program)
    }
    fn read(
        &self,
        path: &std::path::Path,
    ) -> Result<Option<String>, crate::steps::host::HostError> {
        self.inner.read(path)
    }
    fn list_dir(
        &self,
        path: &std::path::Path,
    ) -> Result<Vec<String>, crate::steps::host::HostError> {
        self.inner.list_dir(path)
    }
    fn exists(&self, path: &std::path::Path) -> bool {
        self.inner.exists(path)
    }
    fn write(
        &self,
        path: &std::path::Path,
        contents: &str,
        mode: u32,
    ) -> Result<crate::steps::host::WriteOutcome, crate::steps::host::HostError> {
        self.inner.write(path, contents, mode)
    }
    fn root(&self) -> &std::path::Path {
        self.inner.root()
    }
    fn is_root(&self) -> bool {
        self.inner.is_root()
    }
}

#[test]
fn discoveries_run_one_at_a_time() {
    // Two SendTargets at once over iSER made the lab's LIO target reject one (dmesg:
    // "MaxXmitDataSegmentLength 0"), and the run waited 20 s for its bound.
    let h = FakeHost::new();
    none_listed(&h);
    let mut run = Run::sessions(answers());
    let mut step = quick();
    let plan = step.plan(&mut run.cx(&h)).unwrap();
    expect_discovery(&h, A1, "iface-vA", discovery_output());
    expect_discovery(&h, A2, "iface-vB", discovery_output());
    expect_prune_configure_login(&h);
    let o = Overlap {
        inner: &h,
        now: Default::default(),
        most: Default::default(),
    };
    apply(&mut step, &mut run.cx(&o), &plan).unwrap();
    assert_eq!(o.most.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[test]
fn sessions_that_show_their_disks_are_listed_once_and_not_rescanned() {
    // A rerun (or a login whose scan is done): one listing, no rescan; h.finish() fails on
    // any command not expected, a rescan included.
    let h = FakeHost::new();
    configured(&h, all_logged_in("iser"));
    let mut run = Run::sessions(answers());
    let mut step = quick();
    assert!(step.plan(&mut run.cx(&h)).unwrap().is_empty());
    verified(&h, all_logged_in("iser"));
    step.verify(&mut run.cx(&h)).unwrap();
    h.finish();
    let ran = h.ran();
    assert!(!ran.iter().any(|c| c.contains("--rescan")), "{ran:?}");
    assert_eq!(
        ran.iter()
            .filter(|c| c.as_str() == "iscsiadm -m session -P 3")
            .count(),
        1,
        "{ran:?}"
    );
}

#[test]
fn right_after_the_logins_the_disks_are_waited_for_without_a_rescan() {
    // The kernel scans a new session itself: a rescan then would only repeat that scan.
    let h = FakeHost::new();
    none_listed(&h);
    let mut run = Run::sessions(answers());
    let mut step = Sessions {
        disk_wait: Duration::from_secs(10),
        ..Sessions::default()
    };
    let plan = step.plan(&mut run.cx(&h)).unwrap();
    expect_discovery(&h, A1, "iface-vA", discovery_output());
    expect_discovery(&h, A2, "iface-vB", discovery_output());
    expect_prune_configure_login(&h);
    apply(&mut step, &mut run.cx(&h), &plan).unwrap();
    // Logged in, no disk yet; a moment later, the disks. No rescan is expected: running one
    // would be an unexpected command.
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
    h.finish();
    assert!(
        run.facts.sessions.iter().all(|s| s.disks.len() == 2),
        "{:?}",
        run.facts.sessions
    );
}
