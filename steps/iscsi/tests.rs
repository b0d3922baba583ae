//! The iscsi step against the recording fake: plans, verify, and the dry runs.

use super::*;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::prompt::Asker;
use crate::steps::facts::Distro;
use crate::steps::facts::OsInfo;
use crate::steps::fake::FakeHost;
use crate::steps::iscsid_conf::find_short_keys;
use crate::steps::testkit::{apply, summary, Run};
use crate::steps::Action;
use crate::steps::{CmdOutput, Facts, Options};
use crate::worksheets::Worksheet;
use serde_json::{json, Value};

/// An excerpt in the layout of the iscsid.conf Debian ships, written for these tests.
const CONF: &str = "\
# Open-iSCSI settings (test excerpt)
#iscsid.startup = /bin/systemctl start iscsid.socket
# To log in to node records at boot, use \"automatic\":
node.startup = manual
#node.session.auth.authmethod = CHAP
node.session.timeo.replacement_timeout = 120
node.conn[0].timeo.login_timeout = 15
node.conn[0].timeo.logout_timeout = 15
";
const IQN: &str = "iqn.1993-08.org.debian:01:ae66e52862dd";

fn answers() -> Value {
    json!({
        "host": {"initiator_iqn": "auto", "mapping_host_name": "db01",
                 "host_os_type": "Linux DM-MP"},
        "ports": [
            {"netdev": "vA", "address": "192.168.130.10/24"},
            {"netdev": "vB", "address": "192.168.131.10/24"}
        ],
        "iscsi": {"replacement_timeout": 20}
    })
}

impl Run {
    fn iscsi(answers: Value, distro: Distro) -> Self {
        let facts = Facts {
            os: Some(OsInfo {
                id: "debian".into(),
                id_like: Vec::new(),
                version_id: "12".into(),
                pretty_name: "Debian GNU/Linux 12 (bookworm)".into(),
                distro: Some(distro),
                supported: true,
            }),
            hostname: Some("db01".into()),
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

fn written(plan: &Plan, path: &str) -> String {
    plan.actions
        .iter()
        .find_map(|a| match a {
            Action::Write { path: p, new, .. } if p == Path::new(path) => Some(new.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no write of {path}"))
}

fn put_private(h: &FakeHost, path: &str, text: &str) {
    h.put_file(path, text);
    std::fs::set_permissions(h.path(path), std::fs::Permissions::from_mode(0o600)).unwrap();
}

fn iface_show(name: &str, netdev: &str, transport: &str, initiator: &str) -> CmdOutput {
    let or_empty = |v: &str| {
        if v.is_empty() {
            "<empty>".to_string()
        } else {
            v.to_string()
        }
    };
    CmdOutput::ok(format!(
        "# BEGIN RECORD 2.1.8\niface.iscsi_ifacename = {name}\niface.net_ifacename = {}\n\
         iface.ipaddress = <empty>\niface.hwaddress = <empty>\niface.transport_name = {transport}\n\
         iface.initiatorname = {}\niface.state = <empty>\n# END RECORD\n",
        or_empty(netdev),
        or_empty(initiator)
    ))
}

fn no_iface(name: &str) -> CmdOutput {
    CmdOutput::status(
        6,
        "",
        format!("iscsiadm: Could not read iface {name} (6).\n"),
    )
}

/// The units' states as the one `systemctl show` of the step reports them: (unit,
/// `is-enabled` word, `is-active` word), in the order the step asks.
fn units(h: &FakeHost, states: &[(&str, &str, &str)], once: bool) {
    let names: Vec<&str> = states.iter().map(|(u, _, _)| *u).collect();
    let cmd = crate::steps::host::units::unit_states_cmd(&names);
    let argv: Vec<&str> = cmd.argv.iter().map(String::as_str).collect();
    let out = CmdOutput::ok(crate::steps::host::units::show_output(states));
    if once {
        h.expect(&argv, out);
    } else {
        h.allow(&argv, out);
    }
}

/// The host as it should be after the step: what a second run finds.
fn configured(h: &FakeHost) {
    configured_files(h);
    // Debian after the step: the socket enabled and listening, iscsid started by it.
    units(
        h,
        &[
            ("iscsid.socket", "enabled", "active"),
            ("iscsid", "disabled", "active"),
            ("open-iscsi", "enabled", "inactive"),
        ],
        false,
    );
}

/// Files, module and ifaces as they should be after the step (no units).
fn configured_files(h: &FakeHost) {
    let conf = CONF
        .replace("node.startup = manual", "node.startup = automatic")
        .replace("replacement_timeout = 120", "replacement_timeout = 20")
        .replace("login_timeout = 15", "login_timeout = 5");
    put_private(h, ISCSID_CONF, &conf);
    h.put_file(INITIATORNAME, &format!("InitiatorName={IQN}\n"));
    h.put_file("/sys/module/ib_iser/initstate", "live\n");
    for (name, dev) in [("iface-vA", "vA"), ("iface-vB", "vB")] {
        h.allow(
            &["iscsiadm", "-m", "iface", "-I", name],
            iface_show(name, dev, "iser", IQN),
        );
    }
}

#[test]
fn a_fresh_debian_host_gets_the_whole_setup_and_verifies() {
    let h = FakeHost::new();
    put_private(&h, ISCSID_CONF, CONF);
    h.put_file(
        INITIATORNAME,
        &format!("## DO NOT EDIT OR REMOVE THIS FILE!\nInitiatorName={IQN}\n"),
    );
    units(
        &h,
        &[
            ("iscsid.socket", "disabled", "inactive"),
            ("iscsid", "disabled", "inactive"),
            ("open-iscsi", "disabled", "inactive"),
        ],
        true,
    );
    for name in ["iface-vA", "iface-vB"] {
        h.expect(&["iscsiadm", "-m", "iface", "-I", name], no_iface(name));
    }
    let mut run = Run::iscsi(answers(), Distro::Debian);
    let mut step = Iscsi::default();
    let plan = step.plan(&mut run.cx(&h)).unwrap();
    // Every setting of a new iface in one update.
    let upd = |i: &str, netdev: &str, iqn: &str| {
        format!(
            "iscsiadm -m iface -I {i} -o update -n iface.transport_name -v iser \
             -n iface.net_ifacename -v {netdev} -n iface.initiatorname -v {iqn}"
        )
    };
    assert_eq!(
        summary(&plan),
        vec![
            "write /etc/iscsi/iscsid.conf".to_string(),
            "modprobe ib_iser".into(),
            "systemctl enable --now iscsid.socket open-iscsi".into(),
            "iscsiadm -m iface -I iface-vA -o new".into(),
            upd("iface-vA", "vA", IQN),
            "iscsiadm -m iface -I iface-vB -o new".into(),
            upd("iface-vB", "vB", IQN),
        ]
    );
    assert_eq!(
        written(&plan, ISCSID_CONF),
        "\
# Open-iSCSI settings (test excerpt)
#iscsid.startup = /bin/systemctl start iscsid.socket
# To log in to node records at boot, use \"automatic\":
node.startup = automatic
#node.session.auth.authmethod = CHAP
node.session.timeo.replacement_timeout = 20
node.conn[0].timeo.login_timeout = 5
node.conn[0].timeo.logout_timeout = 15
"
    );
    let text = plan.render();
    assert!(text.contains("-node.startup = manual\n"), "{text}");
    assert!(text.contains("+node.startup = automatic\n"), "{text}");
    assert!(plan.notes.is_empty(), "{:?}", plan.notes);

    for cmd in &plan.actions {
        if let Action::Run { cmd, .. } = cmd {
            let argv: Vec<&str> = cmd.argv.iter().map(String::as_str).collect();
            h.expect(&argv, CmdOutput::ok(""));
        }
    }
    apply(&mut step, &mut run.cx(&h), &plan).unwrap();
    configured(&h);
    step.verify(&mut run.cx(&h)).unwrap();
    assert_eq!(run.facts.initiator_iqn.as_deref(), Some(IQN));
    assert_eq!(
        run.facts.ifaces,
        vec![
            IfaceFact {
                name: "iface-vA".into(),
                netdev: "vA".into(),
                address: "192.168.130.10/24".into()
            },
            IfaceFact {
                name: "iface-vB".into(),
                netdev: "vB".into(),
                address: "192.168.131.10/24".into()
            },
        ]
    );
    assert_eq!(run.sheet.host.initiator_iqn.as_deref(), Some(IQN));
    assert_eq!(run.sheet.host.mapping_host_name.as_deref(), Some("db01"));
    assert_eq!(run.sheet.host.host_os_type.as_deref(), Some("Linux DM-MP"));
    h.finish();
}

#[test]
fn a_host_that_already_matches_plans_nothing() {
    let h = FakeHost::new();
    configured(&h);
    let mut run = Run::iscsi(answers(), Distro::Debian);
    let mut step = Iscsi::default();
    let plan = step.plan(&mut run.cx(&h)).unwrap();
    assert!(plan.is_empty(), "{}", plan.render());
    assert!(plan.notes.is_empty(), "{:?}", plan.notes);
    step.verify(&mut run.cx(&h)).unwrap();
    assert!(h.changes().is_empty(), "{:?}", h.changes());
    h.finish();
}

#[test]
fn a_rerun_asks_systemd_and_iscsiadm_once() {
    let h = FakeHost::new();
    configured(&h);
    let mut run = Run::iscsi(answers(), Distro::Debian);
    let mut step = Iscsi::default();
    assert!(step.plan(&mut run.cx(&h)).unwrap().is_empty());
    step.verify(&mut run.cx(&h)).unwrap();
    // One systemctl for the three units, one iscsiadm per iface: plan's, reused by verify.
    let ran = h.ran();
    assert_eq!(
        ran.iter().filter(|c| c.starts_with("systemctl")).count(),
        1,
        "{ran:?}"
    );
    assert_eq!(
        ran.iter().filter(|c| c.starts_with("iscsiadm")).count(),
        2,
        "{ran:?}"
    );
    h.finish();
}

#[test]
fn a_running_iscsid_gets_its_socket_enabled_for_boot_not_started() {
    let h = FakeHost::new();
    configured_files(&h);
    // iscsid started by hand, its socket neither enabled nor listening: systemd refuses to
    // start a socket whose service runs, so only `enable`.
    units(
        &h,
        &[
            ("iscsid.socket", "disabled", "inactive"),
            ("iscsid", "disabled", "active"),
            ("open-iscsi", "enabled", "inactive"),
        ],
        false,
    );
    let mut run = Run::iscsi(answers(), Distro::Debian);
    let plan = Iscsi::default().plan(&mut run.cx(&h)).unwrap();
    assert_eq!(summary(&plan), vec!["systemctl enable iscsid.socket"]);
    h.finish();
}

#[test]
fn an_enabled_iscsid_service_needs_no_socket() {
    let h = FakeHost::new();
    configured_files(&h);
    units(
        &h,
        &[
            ("iscsid.socket", "disabled", "inactive"),
            ("iscsid", "enabled", "active"),
            ("open-iscsi", "enabled", "inactive"),
        ],
        false,
    );
    let mut run = Run::iscsi(answers(), Distro::Debian);
    let plan = Iscsi::default().plan(&mut run.cx(&h)).unwrap();
    assert!(plan.is_empty(), "{}", plan.render());
    h.finish();
}

#[test]
fn a_socket_that_stopped_is_started_and_named_when_it_does_not_take() {
    let h = FakeHost::new();
    configured_files(&h);
    units(
        &h,
        &[
            ("iscsid.socket", "enabled", "inactive"),
            ("iscsid", "disabled", "inactive"),
            ("open-iscsi", "enabled", "inactive"),
        ],
        false,
    );
    let mut run = Run::iscsi(answers(), Distro::Debian);
    let mut step = Iscsi::default();
    let plan = step.plan(&mut run.cx(&h)).unwrap();
    assert_eq!(summary(&plan), vec!["systemctl enable --now iscsid.socket"]);
    h.allow(
        &["systemctl", "enable", "--now", "iscsid.socket"],
        CmdOutput::ok(""),
    );
    apply(&mut step, &mut run.cx(&h), &plan).unwrap();
    let msg = step.verify(&mut run.cx(&h)).unwrap_err().to_string();
    assert!(
        msg.contains("iscsid.socket is \"inactive\", not running"),
        "{msg}"
    );
}

#[test]
fn rhel_enables_iscsi_and_a_masked_unit_is_unmasked_first() {
    let h = FakeHost::new();
    configured_files(&h);
    units(
        &h,
        &[
            ("iscsid", "enabled", "active"),
            ("iscsi", "masked", "inactive"),
        ],
        false,
    );
    let mut run = Run::iscsi(answers(), Distro::Rhel);
    let plan = Iscsi::default().plan(&mut run.cx(&h)).unwrap();
    assert_eq!(
        summary(&plan),
        vec!["systemctl unmask iscsi", "systemctl enable --now iscsi"]
    );
    assert!(
        plan.notes[0].contains("iscsi is masked"),
        "{:?}",
        plan.notes
    );
    h.finish();
}

#[test]
fn short_keys_are_flagged_and_commented_out() {
    let h = FakeHost::new();
    configured(&h);
    let conf = std::fs::read_to_string(h.path(ISCSID_CONF)).unwrap();
    // What the vendor's procedure prints, pasted as is.
    put_private(
        &h,
        ISCSID_CONF,
        &format!("{conf}replacement_timeout = 20\nqueue_depth=64\n"),
    );
    let mut run = Run::iscsi(answers(), Distro::Debian);
    let plan = Iscsi::default().plan(&mut run.cx(&h)).unwrap();
    assert_eq!(summary(&plan), vec!["write /etc/iscsi/iscsid.conf"]);
    assert_eq!(plan.notes.len(), 2, "{:?}", plan.notes);
    assert!(
        plan.notes[0].contains(
            "line 9: `replacement_timeout = 20` is not a full key name, so open-iscsi \
             ignores it without a word; it is commented out and \
             node.session.timeo.replacement_timeout = 20 is set instead"
        ),
        "{:?}",
        plan.notes
    );
    assert!(
        plan.notes[1].contains("write it as node.session.queue_depth"),
        "{:?}",
        plan.notes
    );
    let new = written(&plan, ISCSID_CONF);
    assert!(new.starts_with(&conf), "{new}");
    assert_eq!(
        &new[conf.len()..],
        "# Disabled by iser-wizard (not a full key name, ignored by open-iscsi): replacement_timeout = 20\n\
         # Disabled by iser-wizard (not a full key name, ignored by open-iscsi): queue_depth=64\n"
    );
    assert!(find_short_keys(&new).is_empty());
    h.finish();
}

#[test]
fn a_world_readable_conf_is_made_private() {
    let h = FakeHost::new();
    configured(&h);
    std::fs::set_permissions(h.path(ISCSID_CONF), std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut run = Run::iscsi(answers(), Distro::Debian);
    let plan = Iscsi::default().plan(&mut run.cx(&h)).unwrap();
    assert_eq!(
        summary(&plan),
        vec![format!("chmod 0600 {}", h.path(ISCSID_CONF).display())]
    );
    h.finish();
}

#[test]
fn a_missing_initiator_name_is_generated_and_iscsid_restarted() {
    let h = FakeHost::new();
    configured(&h);
    // Debian before its first iscsid start: the name is still to be generated.
    h.put_file(INITIATORNAME, "## DO NOT EDIT\nGenerateName=yes\n");
    let new_iqn = "iqn.2016-04.com.open-iscsi:5e1f0a9b8c7d";
    h.expect(&["iscsi-iname"], CmdOutput::ok(format!("{new_iqn}\n")));
    let mut run = Run::iscsi(answers(), Distro::Debian);
    let plan = Iscsi::default().plan(&mut run.cx(&h)).unwrap();
    let s = summary(&plan);
    assert_eq!(s[0], "write /etc/iscsi/initiatorname.iscsi");
    assert_eq!(s[1], "systemctl restart iscsid");
    assert!(
        s.contains(&format!(
            "iscsiadm -m iface -I iface-vA -o update -n iface.initiatorname -v {new_iqn}"
        )),
        "{s:#?}"
    );
    assert_eq!(
        written(&plan, INITIATORNAME),
        format!("## DO NOT EDIT\nInitiatorName={new_iqn}\n")
    );
    assert!(plan.notes[0].contains("generated"), "{:?}", plan.notes);
    h.finish();
}

#[test]
fn an_explicit_iqn_is_written_from_the_template_when_the_file_is_missing() {
    let h = FakeHost::new();
    configured(&h);
    std::fs::remove_file(h.path(INITIATORNAME)).unwrap();
    let mut a = answers();
    a["host"]["initiator_iqn"] = json!("iqn.2024-01.com.example:db01");
    let mut run = Run::iscsi(a, Distro::Debian);
    let plan = Iscsi::default().plan(&mut run.cx(&h)).unwrap();
    let new = written(&plan, INITIATORNAME);
    assert!(new.starts_with("## Written by iser-wizard."), "{new}");
    assert!(
        new.ends_with("\nInitiatorName=iqn.2024-01.com.example:db01\n"),
        "{new}"
    );
    assert!(summary(&plan).contains(&"systemctl restart iscsid".to_string()));
    h.finish();
}

#[test]
fn an_invalid_name_in_the_file_is_refused_naming_the_fix() {
    let h = FakeHost::new();
    configured(&h);
    h.put_file(INITIATORNAME, "InitiatorName=iqn.1993-08.org.debian:\n");
    let mut run = Run::iscsi(answers(), Distro::Debian);
    let e = Iscsi::default().plan(&mut run.cx(&h)).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("/etc/iscsi/initiatorname.iscsi names"),
        "{msg}"
    );
    assert!(msg.contains("host.initiator_iqn"), "{msg}");
    h.finish();
}

#[test]
fn a_non_ascii_character_in_the_hosts_initiator_name_is_refused_not_a_panic() {
    // `&head[..7]` once cut a UTF-8 character of the host's own file, even in a dry run.
    for name in [
        "iqn.199\u{e9}-08.org.debian:01:x",
        "iqn.1993-0\u{e9}.org.debian:01:x",
    ] {
        let h = FakeHost::new();
        configured(&h);
        h.put_file(INITIATORNAME, &format!("InitiatorName={name}\n"));
        let mut run = Run::iscsi(answers(), Distro::Debian);
        let e = Iscsi::default().plan(&mut run.cx(&h)).unwrap_err();
        assert!(
            e.to_string()
                .contains("/etc/iscsi/initiatorname.iscsi names"),
            "{e}"
        );
    }
}

#[test]
fn an_iface_with_tcp_transport_is_corrected_key_by_key() {
    let h = FakeHost::new();
    // Registered first: the fake answers from the first matching expectation.
    h.expect(
        &["iscsiadm", "-m", "iface", "-I", "iface-vA"],
        iface_show("iface-vA", "vA", "tcp", ""),
    );
    configured(&h);
    let mut run = Run::iscsi(answers(), Distro::Debian);
    let plan = Iscsi::default().plan(&mut run.cx(&h)).unwrap();
    assert_eq!(
        summary(&plan),
        vec![format!(
            "iscsiadm -m iface -I iface-vA -o update -n iface.transport_name -v iser \
                 -n iface.initiatorname -v {IQN}"
        ),]
    );
    assert!(plan
        .render()
        .contains("iface-vA has iface.transport_name tcp"));
    h.finish();
}

#[test]
fn verify_names_what_did_not_take() {
    let h = FakeHost::new();
    configured(&h);
    let mut run = Run::iscsi(answers(), Distro::Debian);
    let mut step = Iscsi::default();
    assert!(step.plan(&mut run.cx(&h)).unwrap().is_empty());
    std::fs::remove_dir_all(h.path("/sys/module/ib_iser")).unwrap();
    put_private(&h, ISCSID_CONF, "node.startup = manual\n");
    let msg = step.verify(&mut run.cx(&h)).unwrap_err().to_string();
    assert!(
        msg.contains("/etc/iscsi/iscsid.conf: node.startup is manual, not automatic"),
        "{msg}"
    );
    assert!(
        msg.contains("node.session.timeo.replacement_timeout is unset, not 20"),
        "{msg}"
    );
    assert!(msg.contains("ib_iser is not loaded"), "{msg}");
    assert!(run.facts.initiator_iqn.is_none());
    h.finish();
}

#[test]
fn a_dry_run_plans_everything_without_changing_anything() {
    let h = FakeHost::new();
    put_private(&h, ISCSID_CONF, CONF);
    units(
        &h,
        &[
            ("iscsid.socket", "disabled", "inactive"),
            ("iscsid", "disabled", "inactive"),
            ("open-iscsi", "disabled", "inactive"),
        ],
        true,
    );
    h.expect(
        &["iscsi-iname"],
        CmdOutput::ok("iqn.2016-04.com.open-iscsi:5e1f0a9b8c7d\n"),
    );
    for name in ["iface-vA", "iface-vB"] {
        h.expect(&["iscsiadm", "-m", "iface", "-I", name], no_iface(name));
    }
    let ro = crate::steps::host::ReadOnly(&h);
    let mut run = Run::iscsi(answers(), Distro::Debian);
    let plan = Iscsi::default().plan(&mut run.cx(&ro)).unwrap();
    // Both files, modprobe, the units in one call, and two commands per iface (create, one
    // update with every setting); iscsid was not running, so it starts with the new name
    // and needs no restart.
    assert_eq!(plan.actions.len(), 8, "{}", plan.render());
    assert!(h.changes().is_empty(), "{:?}", h.changes());
    assert!(!h.path(INITIATORNAME).exists());
    h.finish();
}

#[test]
fn a_dry_run_on_a_bare_host_plans_from_the_answers_with_the_iqn_to_learn() {
    // No open-iscsi, no iscsid.conf, no initiator name, no ib_iser: only the answers.
    let h = FakeHost::new().only_programs(&[]);
    let ro = crate::steps::host::ReadOnly(&h);
    let mut run = Run::iscsi(answers(), Distro::Debian);
    run.options.dry_run = true;
    let plan = Iscsi::default().plan(&mut run.cx(&ro)).unwrap();
    // As shown: the placeholder is shell-quoted.
    let iqn = "'<initiator IQN from iscsi-iname>'";
    // Every setting of a new iface in one update.
    let upd = |i: &str, netdev: &str, iqn: &str| {
        format!(
            "iscsiadm -m iface -I {i} -o update -n iface.transport_name -v iser \
             -n iface.net_ifacename -v {netdev} -n iface.initiatorname -v {iqn}"
        )
    };
    let mut want = vec![
        "write /etc/iscsi/iscsid.conf".to_string(),
        "write /etc/iscsi/initiatorname.iscsi".into(),
        "modprobe ib_iser".into(),
        "systemctl enable --now iscsid.socket open-iscsi".into(),
    ];
    for (i, dev) in [("iface-vA", "vA"), ("iface-vB", "vB")] {
        want.push(format!("iscsiadm -m iface -I {i} -o new"));
        want.push(upd(i, dev, iqn));
    }
    assert_eq!(summary(&plan), want, "{}", plan.render());
    assert_eq!(plan.learned, ["initiator IQN from iscsi-iname"]);
    assert!(
        written(&plan, INITIATORNAME).ends_with("InitiatorName=<initiator IQN from iscsi-iname>\n")
    );
    assert_eq!(
        written(&plan, ISCSID_CONF),
        "# Set by iser-wizard\nnode.startup = automatic\n\
         node.session.timeo.replacement_timeout = 20\n\
         node.conn[0].timeo.login_timeout = 5\n"
    );
    assert!(h.ran().is_empty(), "{:?}", h.ran());
    assert!(h.changes().is_empty(), "{:?}", h.changes());
    h.finish();
}

#[test]
fn without_preflight_facts_it_says_which_step_to_run() {
    let h = FakeHost::new();
    let mut run = Run::iscsi(answers(), Distro::Debian);
    run.facts.os = None;
    let msg = Iscsi::default()
        .plan(&mut run.cx(&h))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("run the preflight step first"), "{msg}");
    h.finish();
}

/// The files as configured, and none of open-iscsi's units known to systemd.
fn open_iscsi_units_missing(h: &FakeHost) {
    configured_files(h);
    units(
        h,
        &[
            ("iscsid.socket", "not-found", "inactive"),
            ("iscsid", "not-found", "inactive"),
            ("open-iscsi", "not-found", "inactive"),
        ],
        false,
    );
}

/// The plan stops, naming the service that is not installed and its package.
fn refused_for_the_package(h: &FakeHost) {
    let mut run = Run::iscsi(answers(), Distro::Debian);
    let msg = Iscsi::default()
        .plan(&mut run.cx(h))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("the iscsid service is not installed"), "{msg}");
    assert!(msg.contains("open-iscsi"), "{msg}");
}

#[test]
fn a_real_run_without_open_iscsi_names_the_package_before_asking_iscsiadm() {
    // open-iscsi brings iscsiadm and the units: the host has neither.
    let h = FakeHost::new().only_programs(&["systemctl"]);
    open_iscsi_units_missing(&h);
    refused_for_the_package(&h);
    assert!(
        !h.ran().iter().any(|c| c.starts_with("iscsiadm")),
        "{:?}",
        h.ran()
    );
}

#[test]
fn units_missing_beside_an_iscsiadm_still_name_the_package_whatever_the_ifaces_said() {
    // iscsiadm is there (read beside the units), the units are not: the plan stops on the
    // package, not on what iscsiadm answered about the ifaces.
    let h = FakeHost::new();
    open_iscsi_units_missing(&h);
    for iface in ["iface-vA", "iface-vB"] {
        h.allow(
            &["iscsiadm", "-m", "iface", "-I", iface],
            CmdOutput::status(6, "", "iscsiadm: Could not read iface info\n"),
        );
    }
    refused_for_the_package(&h);
}
