use serde_json::json;

use super::*;
use crate::steps::fake::FakeHost;
use crate::steps::network::testkit::*;
use crate::steps::CmdOutput;

const GUID_A: &str = "0x248a070300a80a80";
const GUID_B: &str = "0x248a070300a80a81";

/// `ibstat` for the two ports of [`ib_sysfs`].
pub fn ibstat(state: &str, sm_lid: u32) -> CmdOutput {
    let phys = if state == "Down" { "Polling" } else { "LinkUp" };
    let mut text = String::new();
    for (ca, lid, guid) in [("mlx5_0", 3, GUID_A), ("mlx5_1", 4, GUID_B)] {
        text.push_str(&format!(
            "CA '{ca}'\n\tCA type: MT4119\n\tNumber of ports: 1\n\tFirmware version: 16.35.2000\n\
         \tHardware version: 0\n\tNode GUID: {guid}\n\tSystem image GUID: {guid}\n\tPort 1:\n\
         \t\tState: {state}\n\t\tPhysical state: {phys}\n\t\tRate: 100\n\t\tBase lid: {lid}\n\
         \t\tLMC: 0\n\t\tSM lid: {sm_lid}\n\t\tCapability mask: 0x2659e848\n\
         \t\tPort GUID: {guid}\n\t\tLink layer: InfiniBand\n"
        ));
    }
    CmdOutput::ok(text)
}
fn quick() -> SubnetManager {
    SubnetManager {
        wait: Duration::ZERO,
        interval: Duration::from_millis(1),
        ..SubnetManager::default()
    }
}

fn ib_host(state: &str, sm_lid: u32) -> FakeHost {
    let h = FakeHost::new();
    ib_sysfs(&h, state, sm_lid);
    h.allow(&IP, ip_out(&ib_links(false, "datagram")));
    h
}

fn with_priorities(p: serde_json::Value) -> serde_json::Value {
    let mut a = ib_answers(json!({}));
    a["subnet_manager"]["priorities"] = p;
    a
}

fn allow_is(h: &FakeHost, what: &str, unit: &str, answer: &str) {
    let code = if answer == "active" || answer == "enabled" {
        0
    } else {
        1
    };
    h.allow(
        &["systemctl", what, unit],
        CmdOutput::status(code, format!("{answer}\n"), ""),
    );
}

#[test]
fn rhel_runs_one_opensm_per_guid_through_sysconfig_then_reruns_empty() {
    let h = ib_host("Initializing", 0);
    h.put_file(
        SYSCONFIG,
        "# Set GUIDS to the port GUIDs opensm should bind, one instance each\n#GUIDS=\"\"\n#PRIORITY=15\n",
    );
    h.expect(&["ibstat"], ibstat("Initializing", 0));
    h.allow(&["ibstat"], ibstat("Active", 3));
    h.expect(
        &["systemctl", "is-active", "opensm.service"],
        CmdOutput::status(3, "inactive\n", ""),
    );
    h.expect(
        &["systemctl", "is-enabled", "opensm.service"],
        CmdOutput::status(1, "disabled\n", ""),
    );
    h.expect(
        &["systemctl", "enable", "--now", "opensm.service"],
        CmdOutput::ok(""),
    );
    // GUID key for one port, netdev key for the other: both 15.
    let answers = with_priorities(json!({GUID_A: 15, "ib1": 15}));
    let mut run = Run::for_os(answers.clone(), RHEL9);
    let plan = run.full(&h, &mut quick()).unwrap();
    assert_eq!(
        steps_of(&plan),
        [
            "write /etc/sysconfig/opensm",
            "run systemctl enable --now opensm.service"
        ],
        "{}",
        plan.render()
    );
    golden(
        "subnet-manager/rhel-sysconfig-opensm",
        &written(&plan, SYSCONFIG),
    );
    let rec = run.sheet.subnet_manager.clone().unwrap();
    assert_eq!(rec.placement, "on this host");
    assert_eq!(
        rec.priorities,
        [(GUID_A.to_string(), 15), (GUID_B.to_string(), 15)]
    );
    assert_eq!(run.facts.fabric.as_deref(), Some("infiniband"));

    // Everything in place, opensm running and master on both ports: nothing to do.
    allow_is(&h, "is-active", "opensm.service", "active");
    allow_is(&h, "is-enabled", "opensm.service", "enabled");
    let mut run = Run::for_os(answers, RHEL9);
    let plan = run.with(&h, |cx| quick().plan(cx)).unwrap();
    assert!(plan.is_empty(), "{}", plan.render());
    h.finish();
}

#[test]
fn debian_gets_a_templated_unit_per_guid_with_priorities_by_netdev_or_guid() {
    let h = ib_host("Initializing", 0);
    h.expect(&["ibstat"], ibstat("Initializing", 0));
    h.allow(&["ibstat"], ibstat("Active", 3));
    for g in [GUID_A, GUID_B] {
        let unit = format!("opensm@{g}.service");
        h.expect(
            &["systemctl", "is-enabled", &unit],
            CmdOutput::status(1, "disabled\n", ""),
        );
        h.expect(
            &["systemctl", "is-enabled", &unit],
            CmdOutput::status(1, "disabled\n", ""),
        );
        h.expect(
            &["systemctl", "is-active", &unit],
            CmdOutput::status(3, "inactive\n", ""),
        );
        h.expect(&["systemctl", "enable", "--now", &unit], CmdOutput::ok(""));
    }
    // The packaged service is enabled: it would bind ports of its own choosing.
    h.expect(
        &["systemctl", "is-enabled", "opensm.service"],
        CmdOutput::ok("enabled\n"),
    );
    h.expect(
        &["systemctl", "disable", "--now", "opensm.service"],
        CmdOutput::ok(""),
    );
    h.expect(&["systemctl", "daemon-reload"], CmdOutput::ok(""));
    let answers = with_priorities(json!({"ib0": 7, GUID_B: 3}));
    let mut run = Run::for_os(answers.clone(), DEBIAN);
    let plan = run.full(&h, &mut quick()).unwrap();
    assert_eq!(
        steps_of(&plan),
        [
            "write /etc/systemd/system/opensm@.service",
            "run systemctl disable --now opensm.service",
            "write /etc/opensm/opensm-0x248a070300a80a80.env",
            "write /etc/opensm/opensm-0x248a070300a80a81.env",
            "run systemctl daemon-reload",
            "run systemctl enable --now opensm@0x248a070300a80a80.service",
            "run systemctl enable --now opensm@0x248a070300a80a81.service",
        ],
        "{}",
        plan.render()
    );
    let unit = written(&plan, UNIT);
    golden("subnet-manager/opensm@.service", &unit);
    assert!(unit.contains("-g %i"), "{unit}");
    assert!(!unit.contains("rc.local"));
    golden(
        "subnet-manager/opensm-0x248a070300a80a80.env",
        &written(&plan, "/etc/opensm/opensm-0x248a070300a80a80.env"),
    );
    assert!(
        written(&plan, "/etc/opensm/opensm-0x248a070300a80a81.env").contains("OPENSM_PRIORITY=3\n")
    );
    assert_eq!(
        run.sheet.subnet_manager.clone().unwrap().priorities,
        [(GUID_A.to_string(), 7), (GUID_B.to_string(), 3)]
    );

    // Rerun with the units enabled and running: nothing to do.
    for g in [GUID_A, GUID_B] {
        let unit = format!("opensm@{g}.service");
        allow_is(&h, "is-enabled", &unit, "enabled");
        allow_is(&h, "is-active", &unit, "active");
    }
    allow_is(&h, "is-enabled", "opensm.service", "disabled");
    allow_is(&h, "is-active", "opensm.service", "inactive");
    let mut run = Run::for_os(answers, DEBIAN);
    let plan = run.with(&h, |cx| quick().plan(cx)).unwrap();
    assert!(plan.is_empty(), "{}", plan.render());
    h.finish();
}

#[test]
fn different_priorities_on_rhel_use_the_units_and_say_why() {
    let h = ib_host("Initializing", 0);
    h.allow(&["ibstat"], ibstat("Initializing", 0));
    for g in [GUID_A, GUID_B] {
        let unit = format!("opensm@{g}.service");
        allow_is(&h, "is-enabled", &unit, "disabled");
        allow_is(&h, "is-active", &unit, "inactive");
    }
    allow_is(&h, "is-enabled", "opensm.service", "disabled");
    allow_is(&h, "is-active", "opensm.service", "inactive");
    let mut run = Run::for_os(with_priorities(json!({GUID_A: 15, GUID_B: 1})), RHEL9);
    let plan = run.with(&h, |cx| quick().plan(cx)).unwrap();
    let text = plan.render();
    assert!(text.contains("one PRIORITY for all"), "{text}");
    assert!(text.contains("opensm@.service"), "{text}");
    assert!(!text.contains("/etc/sysconfig/opensm\n"), "{text}");
    h.finish();
}

#[test]
fn a_subnet_manager_already_on_the_fabric_is_recorded_and_nothing_is_planned() {
    let h = ib_host("Active", 1);
    h.allow(&["ibstat"], ibstat("Active", 1));
    for (g, ca) in [(GUID_A, "mlx5_0"), (GUID_B, "mlx5_1")] {
        allow_is(&h, "is-enabled", &format!("opensm@{g}.service"), "disabled");
        h.expect(
            &["sminfo", "-C", ca, "-P", "1"],
            CmdOutput::ok("sminfo: sm lid 1 sm guid 0x10e0406d5aa0a0, activity count 26263191 priority 14 state 3 SMINFO_MASTER\n"),
        );
    }
    let mut run = Run::for_os(ib_answers(json!({})), DEBIAN);
    let plan = run.full(&h, &mut quick()).unwrap();
    assert!(plan.is_empty(), "{}", plan.render());
    assert!(plan.render().contains(
        "already runs on the fabric of ib0 (SM lid 1, port GUID 0x0010e0406d5aa0a0, priority 14)"
    ));
    let rec = run.sheet.subnet_manager.unwrap();
    assert_eq!(
        rec.placement,
        "already on the fabric (SM lid 1, port GUID 0x0010e0406d5aa0a0, priority 14)"
    );
    assert!(rec.priorities.is_empty());
    assert!(h.changes().is_empty());
    h.finish();
}

#[test]
fn roce_ports_and_run_on_host_false_skip_with_the_reason() {
    // fabric "auto" on the soft-RoCE lab: link layer Ethernet, nothing to run.
    let h = lab_host();
    h.allow(&IP, ip_out(&lab_links(false)));
    let mut run = Run::for_os(lab_answers(), DEBIAN);
    let plan = run.full(&h, &mut quick()).unwrap();
    assert!(plan.is_empty(), "{}", plan.render());
    assert_eq!(
        run.sheet.subnet_manager.clone().unwrap().placement,
        "not needed (RoCE)"
    );
    assert_eq!(run.facts.fabric.as_deref(), Some("roce"));
    h.finish();

    // A person at the terminal is not asked about opensm once the ports are RoCE.
    let h = lab_host();
    h.allow(&IP, ip_out(&lab_links(false)));
    let mut run = Run::for_os(serde_json::Value::Null, DEBIAN);
    run.ask = crate::prompt::Asker::scripted(json!({}));
    assert!(run.full(&h, &mut quick()).unwrap().is_empty());
    let asked = run.ask.recorded();
    assert_eq!(asked["ports"][1]["netdev"], json!("vB"), "{asked}");
    assert!(asked.get("subnet_manager").is_none(), "{asked}");

    // fabric "roce": not even a probe.
    let h = FakeHost::new();
    let mut answers = lab_answers();
    answers["fabric"] = json!("roce");
    let mut run = Run::for_os(answers, DEBIAN);
    assert!(run.full(&h, &mut quick()).unwrap().is_empty());
    assert!(h.ran().is_empty(), "{:?}", h.ran());
    h.finish();

    let h = ib_host("Active", 1);
    let mut answers = ib_answers(json!({}));
    answers["subnet_manager"]["run_on_host"] = json!(false);
    let mut run = Run::for_os(answers, DEBIAN);
    assert!(run.full(&h, &mut quick()).unwrap().is_empty());
    assert_eq!(
        run.sheet.subnet_manager.unwrap().placement,
        "not on this host (run_on_host is false)"
    );
    h.finish();
}

#[test]
fn ports_stuck_initializing_under_selinux_enforcing_get_the_manage_subnet_explanation() {
    let h = ib_host("Initializing", 0);
    h.allow(&["ibstat"], ibstat("Initializing", 0));
    h.put_file(
        SYSCONFIG,
        "# Set by iser-wizard: one opensm per iSER port GUID (opensm -g), started by opensm.service.\nGUIDS=\"0x248a070300a80a80 0x248a070300a80a81\"\nPRIORITY=0\n",
    );
    allow_is(&h, "is-active", "opensm.service", "active");
    allow_is(&h, "is-enabled", "opensm.service", "enabled");
    let mut run = Run::for_os(ib_answers(json!({})), RHEL9);
    run.facts.selinux = Some("Enforcing".into());
    let mut step = quick();
    let plan = run.with(&h, |cx| step.plan(cx)).unwrap();
    assert!(plan.is_empty(), "{}", plan.render());
    let err = run.with(&h, |cx| step.verify(cx)).unwrap_err().to_string();
    assert!(
        err.contains("ib0 (mlx5_0/1, GUID 0x248a070300a80a80): State: Initializing"),
        "{err}"
    );
    assert!(err.contains("manage_subnet"), "{err}");
    assert!(err.contains("infiniband_endport"), "{err}");
    assert!(err.contains("audit2allow"), "{err}");
    h.finish();
}

#[test]
fn sysconfig_edits_keep_other_lines_and_sminfo_parses() {
    let block = "# Set by iser-wizard: x\nGUIDS=\"0x1\"\nPRIORITY=3\n";
    assert_eq!(
        edit_sysconfig(Some("# c\nGUIDS=\"0x2\"\nOTHER=1\nPRIORITY=15\n"), block),
        format!("# c\nOTHER=1\n{block}")
    );
    assert_eq!(edit_sysconfig(None, block), block);
    let once = edit_sysconfig(Some("A=1\n"), block);
    assert_eq!(edit_sysconfig(Some(&once), block), once);
    assert_eq!(
        sysconfig_guids("GUIDS=\"0x248a070300a80a80 0x248a070300a80a81\"\n"),
        [GUID_A.parse::<Guid>().unwrap(), GUID_B.parse().unwrap()]
    );
    assert_eq!(
        sminfo("sminfo: sm lid 15 sm guid 0x10e0406d5aa0a0, activity count 26263191 priority 14 state 3 SMINFO_MASTER"),
        Some(External {
            lid: 15,
            guid: Some(Guid(0x0010_e040_6d5a_a0a0)),
            priority: Some(14)
        })
    );
    assert_eq!(sminfo("ibwarn: query failed"), None);
    assert_eq!(
        sminfo("sminfo: sm lid 4").map(|e| e.to_string()).as_deref(),
        Some("SM lid 4")
    );
    // The real outputs: a switch's SM on hardware, and ibsim's (stderr mixed in).
    if let Some(text) = crate::steps::parse::fixtures::real_fixture(
        "sminfo",
        "oracle-bda-sun-dcs36-switch-sm-master-unpadded-guid.txt",
    ) {
        assert_eq!(
            sminfo(&text).unwrap().to_string(),
            "SM lid 15, port GUID 0x0010e0406d5aa0a0, priority 14"
        );
    }
    let (_, text, _) = ibsim("ibsim-sminfo-external-sm.txt");
    assert_eq!(
        sminfo(&text).unwrap().to_string(),
        "SM lid 4, port GUID 0x0000000000100004, priority 15"
    );
}

// ---------------------------------------------------------------------------------------------
// A dry run on a bare host: no RDMA device, no ibstat, no opensm.

/// A host with no RDMA device where only `ip` and `systemctl` are installed, and the packaged
/// opensm.service does not exist.
fn bare_host() -> FakeHost {
    let h = FakeHost::new().only_programs(&["ip", "systemctl"]);
    allow_is(&h, "is-enabled", "opensm.service", "not-found");
    allow_is(&h, "is-active", "opensm.service", "inactive");
    h
}

fn dry(answers: serde_json::Value, os: &str) -> Run {
    let mut run = Run::for_os(answers, os);
    run.options.dry_run = true;
    run
}

const G0: &str = "<port GUID of ib0>";
const G1: &str = "<port GUID of ib1>";

#[test]
fn bare_host_dry_run_plans_one_unit_per_answered_port_with_guid_placeholders() {
    let h = bare_host();
    let mut answers = with_priorities(json!({"ib0": 7, "ib1": 3}));
    answers["fabric"] = json!("infiniband");
    let mut run = dry(answers, DEBIAN);
    let plan = run.with(&h, |cx| quick().plan(cx)).unwrap();
    assert_eq!(
        steps_of(&plan),
        [
            "write /etc/systemd/system/opensm@.service".to_string(),
            format!("write /etc/opensm/opensm-{G0}.env"),
            format!("write /etc/opensm/opensm-{G1}.env"),
            "run systemctl daemon-reload".to_string(),
            format!("run systemctl enable --now 'opensm@{G0}.service'"),
            format!("run systemctl enable --now 'opensm@{G1}.service'"),
        ],
        "{}",
        plan.render()
    );
    let env = written(&plan, &format!("/etc/opensm/opensm-{G0}.env"));
    assert!(env.contains("OPENSM_PRIORITY=7\n"), "{env}");
    assert!(written(&plan, &format!("/etc/opensm/opensm-{G1}.env")).contains("OPENSM_PRIORITY=3\n"));
    assert_eq!(plan.learned, ["port GUID of ib0", "port GUID of ib1"]);
    let text = plan.render();
    assert!(text.contains("opensm is not installed yet"), "{text}");
    assert!(!text.contains("fabric is auto"), "{text}");
    // Planning records nothing and changes nothing.
    assert_eq!(run.facts.fabric, None);
    assert!(run.facts.ports.is_empty());
    assert!(run.sheet.subnet_manager.is_none());
    assert!(h.changes().is_empty());
    h.finish();
}

#[test]
fn bare_host_dry_run_with_auto_and_guid_keyed_priorities_shows_them_as_placeholders() {
    let h = bare_host();
    let mut run = dry(with_priorities(json!({GUID_A: 15, GUID_B: 1})), DEBIAN);
    let plan = run.with(&h, |cx| quick().plan(cx)).unwrap();
    let text = plan.render();
    assert!(text.contains("a subnet_manager section"), "{text}");
    let env = written(&plan, &format!("/etc/opensm/opensm-{G0}.env"));
    assert!(
        env.contains(
            "OPENSM_PRIORITY=<opensm priority of ib0: 1 or 15 by its port GUID, else 0>\n"
        ),
        "{env}"
    );
    assert_eq!(plan.actions.len(), 6, "{text}");
    assert!(plan.learned.contains(&"port GUID of ib1".to_string()));
    h.finish();
}

#[test]
fn bare_host_dry_run_with_auto_and_nothing_to_tell_says_the_link_layer_decides() {
    let h = bare_host();
    let mut answers = ib_answers(json!({}));
    answers.as_object_mut().unwrap().remove("subnet_manager");
    let mut run = dry(answers, DEBIAN);
    let plan = run.with(&h, |cx| quick().plan(cx)).unwrap();
    let text = plan.render();
    assert!(
        text.contains("the ports' link layer decides")
            && text.contains("if the ports are InfiniBand"),
        "{text}"
    );
    // Unattended, a port without a given priority gets opensm's default.
    assert!(written(&plan, &format!("/etc/opensm/opensm-{G1}.env")).contains("OPENSM_PRIORITY=0\n"));
    // Nobody was asked, and nothing was stored as an answer.
    assert!(run.ask.recorded().get("subnet_manager").is_none());
    h.finish();

    // run_on_host false: nothing to plan, with the reason.
    let h = bare_host();
    let mut answers = ib_answers(json!({}));
    answers["subnet_manager"]["run_on_host"] = json!(false);
    let mut run = dry(answers, DEBIAN);
    let plan = run.with(&h, |cx| quick().plan(cx)).unwrap();
    assert!(plan.is_empty(), "{}", plan.render());
    assert!(plan.render().contains(NOT_HERE));
    h.finish();
}

#[test]
fn bare_rhel_dry_run_with_one_priority_uses_sysconfig_with_placeholder_guids() {
    let h = bare_host();
    let mut answers = with_priorities(json!({"ib0": 15, "ib1": 15}));
    answers["fabric"] = json!("infiniband");
    let mut run = dry(answers, RHEL9);
    let plan = run.with(&h, |cx| quick().plan(cx)).unwrap();
    assert_eq!(
        steps_of(&plan),
        [
            "write /etc/sysconfig/opensm",
            "run systemctl enable --now opensm.service"
        ],
        "{}",
        plan.render()
    );
    let conf = written(&plan, SYSCONFIG);
    assert!(
        conf.contains(&format!("GUIDS=\"{G0} {G1}\"\nPRIORITY=15\n")),
        "{conf}"
    );

    // Priorities keyed by GUIDs not known yet may differ: the units, and why.
    let h = bare_host();
    let mut run = dry(with_priorities(json!({GUID_A: 15, GUID_B: 1})), RHEL9);
    let plan = run.with(&h, |cx| quick().plan(cx)).unwrap();
    let text = plan.render();
    assert!(
        text.contains("unless a real run finds that the ports share"),
        "{text}"
    );
    assert!(text.contains("opensm@.service"), "{text}");
    h.finish();
}

#[test]
fn a_dry_run_without_ibstat_reads_the_ports_from_sysfs() {
    let h = ib_host("Initializing", 0).only_programs(&["ip", "systemctl"]);
    for g in [GUID_A, GUID_B] {
        let unit = format!("opensm@{g}.service");
        allow_is(&h, "is-enabled", &unit, "disabled");
        allow_is(&h, "is-active", &unit, "inactive");
    }
    allow_is(&h, "is-enabled", "opensm.service", "disabled");
    allow_is(&h, "is-active", "opensm.service", "inactive");
    let mut run = dry(ib_answers(json!({})), DEBIAN);
    let plan = run.with(&h, |cx| quick().plan(cx)).unwrap();
    assert!(!h.ran().iter().any(|c| c == "ibstat"), "{:?}", h.ran());
    assert!(
        steps_of(&plan).contains(&format!(
            "run systemctl enable --now opensm@{GUID_A}.service"
        )),
        "{}",
        plan.render()
    );
    assert!(plan.learned.is_empty());
    h.finish();
}

#[test]
fn facts_are_recorded_by_verify_not_while_planning() {
    let h = lab_host();
    h.allow(&IP, ip_out(&lab_links(false)));
    let mut run = Run::for_os(lab_answers(), DEBIAN);
    let mut step = quick();
    let plan = run.with(&h, |cx| step.plan(cx)).unwrap();
    assert!(plan.is_empty());
    assert_eq!(run.facts.fabric, None);
    assert!(run.facts.ports.is_empty());
    assert!(run.sheet.subnet_manager.is_none());
    run.with(&h, |cx| step.verify(cx)).unwrap();
    assert_eq!(run.facts.fabric.as_deref(), Some("roce"));
    assert_eq!(run.facts.ports.len(), 2);
    assert_eq!(run.facts.ports[1].netdev, "vB");
    h.finish();
}

// ---------------------------------------------------------------------------------------------
// The pure decisions, table by table.

mod decisions {
    use super::super::decide::*;
    use crate::steps::facts::Distro;
    use crate::steps::parse::ibstat::{Guid, LinkLayer, PhysicalState, Port, PortState};
    use crate::steps::testkit::steps_of;
    use crate::steps::{Plan, StepName};

    fn g(n: u64) -> Guid {
        Guid(0x248a_0703_00a8_0a80 + n)
    }

    fn managed(prios: &[u8]) -> Vec<Managed> {
        prios
            .iter()
            .enumerate()
            .map(|(i, p)| Managed {
                netdev: format!("ib{i}"),
                guid: PortGuid::Known(g(i as u64)),
                priority: Priority::Known(*p),
            })
            .collect()
    }

    fn run(actions: Vec<crate::steps::Action>) -> Vec<String> {
        let mut plan = Plan::new(StepName::SubnetManager);
        plan.actions = actions;
        steps_of(&plan)
    }

    #[test]
    fn launch_by_distro_and_priorities() {
        let k = Priority::Known;
        let l = |s: &str| Priority::Learned(s.to_string());
        let cases = [
            (Distro::Rhel, vec![k(1), k(1)], Launch::Sysconfig),
            (Distro::Rhel, vec![k(1), k(2)], Launch::Units),
            (Distro::Rhel, vec![l("<a>"), l("<b>")], Launch::Units),
            (Distro::Rhel, vec![l("<a>")], Launch::Sysconfig),
            (Distro::Sles, vec![k(1), k(1)], Launch::Units),
            (Distro::Debian, vec![k(0)], Launch::Units),
        ];
        for (distro, prios, want) in cases {
            assert_eq!(launch(distro, &prios), want, "{distro:?} {prios:?}");
        }
    }

    #[test]
    fn sysconfig_actions_follow_the_file_and_the_service() {
        let m = managed(&[4, 4]);
        let current = {
            let Some(crate::steps::Action::Write { new, .. }) = actions(
                &m,
                &Seen::Sysconfig {
                    old: None,
                    service: Service::default(),
                },
                "/usr/sbin/opensm",
            )
            .unwrap()
            .into_iter()
            .next() else {
                panic!("no write")
            };
            new
        };
        let on = Service {
            active: true,
            enabled: true,
        };
        let cases: [(Option<&str>, Service, &[&str]); 5] = [
            (
                None,
                Service::default(),
                &[
                    "write /etc/sysconfig/opensm",
                    "run systemctl enable --now opensm.service",
                ],
            ),
            (Some(&current), on, &[]),
            (
                Some(&current),
                Service {
                    active: true,
                    enabled: false,
                },
                &["run systemctl enable opensm.service"],
            ),
            (
                Some(&current),
                Service {
                    active: false,
                    enabled: true,
                },
                &["run systemctl enable --now opensm.service"],
            ),
            (
                Some("PRIORITY=1\n"),
                on,
                &[
                    "write /etc/sysconfig/opensm",
                    "run systemctl restart opensm.service",
                ],
            ),
        ];
        for (old, service, want) in cases {
            let seen = Seen::Sysconfig {
                old: old.map(String::from),
                service,
            };
            assert_eq!(
                run(actions(&m, &seen, "/usr/sbin/opensm").unwrap()),
                want,
                "{old:?} {service:?}"
            );
        }
    }

    #[test]
    fn unit_actions_restart_running_instances_whose_settings_change() {
        let m = managed(&[7]);
        let unit = format!("opensm@{}.service", g(0));
        let fresh = actions(
            &m,
            &Seen::Units {
                unit: None,
                stock_on: false,
                instances: vec![Instance::default()],
            },
            "/usr/sbin/opensm",
        )
        .unwrap();
        let content = |i: usize| match &fresh[i] {
            crate::steps::Action::Write { new, .. } => new.clone(),
            other => panic!("{other:?}"),
        };
        let (unit_text, env) = (content(0), content(1));
        let on = Service {
            active: true,
            enabled: true,
        };
        let running = |env: &str| Instance {
            env: Some(env.to_string()),
            service: on,
        };
        let cases: Vec<(Option<String>, bool, Instance, Vec<String>)> = vec![
            (Some(unit_text.clone()), false, running(&env), vec![]),
            (
                Some(unit_text.clone()),
                true,
                running(&env),
                vec![
                    "run systemctl disable --now opensm.service".into(),
                    format!("run systemctl restart {unit}"),
                ],
            ),
            (
                Some(unit_text.clone()),
                false,
                running("OPENSM_PRIORITY=1\n"),
                vec![
                    format!("write {}", env_path(&PortGuid::Known(g(0)))),
                    format!("run systemctl restart {unit}"),
                ],
            ),
            (
                None,
                false,
                running(&env),
                vec![
                    "write /etc/systemd/system/opensm@.service".into(),
                    "run systemctl daemon-reload".into(),
                    format!("run systemctl restart {unit}"),
                ],
            ),
            (
                Some(unit_text.clone()),
                false,
                Instance {
                    env: Some(env.clone()),
                    service: Service {
                        active: true,
                        enabled: false,
                    },
                },
                vec![format!("run systemctl enable {unit}")],
            ),
        ];
        for (old, stock_on, inst, want) in cases {
            let seen = Seen::Units {
                unit: old,
                stock_on,
                instances: vec![inst],
            };
            assert_eq!(
                run(actions(&m, &seen, "/usr/sbin/opensm").unwrap()),
                want,
                "{seen:?}"
            );
        }
        assert!(actions(
            &[],
            &Seen::Units {
                unit: None,
                stock_on: true,
                instances: vec![]
            },
            "x"
        )
        .unwrap()
        .is_empty());
    }

    #[test]
    fn placement_names_where_each_subnet_manager_is() {
        let lid = |lid| External {
            lid,
            guid: None,
            priority: None,
        };
        let full = External {
            lid: 4,
            guid: Some(Guid(0x10_0004)),
            priority: Some(15),
        };
        assert_eq!(placement(&["ib0", "ib1"], &[]), "on this host");
        assert_eq!(
            placement(&[], &[("ib0", lid(1)), ("ib1", lid(1))]),
            "already on the fabric (SM lid 1)"
        );
        assert_eq!(
            placement(&["ib1"], &[("ib0", lid(5))]),
            "on this host for ib1; already on the fabric (SM lid 5) for ib0"
        );
        assert_eq!(
            placement(&[], &[("ibsim0/1", full)]),
            "already on the fabric (SM lid 4, port GUID 0x0000000000100004, priority 15)"
        );
        assert_eq!(
            placement(&[], &[("ib0", lid(1)), ("ib1", lid(2))]),
            "already on the fabric (SM lid 1; SM lid 2)"
        );
    }

    #[test]
    fn lagging_ports_and_their_cause() {
        let served = vec![Served {
            netdev: "ib0".into(),
            ca: "mlx5_0".into(),
            number: 1,
            guid: g(0),
        }];
        let port = |state: PortState| Port {
            ca: "mlx5_0".into(),
            number: 1,
            state,
            physical_state: PhysicalState::LinkUp,
            rate: None,
            base_lid: 0,
            lmc: 0,
            sm_lid: 0,
            capability_mask: 0,
            port_guid: g(0),
            link_layer: LinkLayer::Infiniband,
        };
        assert!(lagging(&served, &[port(PortState::Active)]).is_empty());
        let init = lagging(&served, &[port(PortState::Initializing)]);
        assert_eq!(
            init[0].to_string(),
            format!("ib0 (mlx5_0/1, GUID {}): State: Initializing", g(0))
        );
        assert_eq!(Cause::of(&init, true), Cause::SelinuxDenied);
        assert_eq!(Cause::of(&init, false), Cause::NoSubnetManager);
        let gone = lagging(&served, &[]);
        assert_eq!(gone[0].state, PortState::Other("missing".into()));
        assert_eq!(Cause::of(&gone, true), Cause::NoLink);
        assert_eq!(
            Cause::of(&lagging(&served, &[port(PortState::Down)]), false),
            Cause::NoLink
        );
    }
}

#[test]
fn a_person_on_a_bare_host_is_asked_the_fabric_and_a_port_but_no_priority_yet() {
    let h = bare_host();
    let mut run = dry(serde_json::Value::Null, DEBIAN);
    run.ask = crate::prompt::Asker::scripted(json!({
        "fabric": "infiniband",
        "ports": [{"netdev": "ib0"}],
    }));
    let plan = run.with(&h, |cx| quick().plan(cx)).unwrap();
    let asked = run.ask.recorded();
    assert_eq!(asked["fabric"], json!("infiniband"), "{asked}");
    assert_eq!(
        asked["subnet_manager"]["run_on_host"],
        json!(true),
        "{asked}"
    );
    assert_eq!(asked["ports"][0]["netdev"], json!("ib0"), "{asked}");
    // The priority is asked by GUID in a real run: here it is a placeholder, not a guess.
    assert!(
        asked["subnet_manager"].get("priorities").is_none(),
        "{asked}"
    );
    assert_eq!(
        plan.learned,
        [
            "port GUID of ib0",
            "opensm priority of ib0, asked once its port GUID is known"
        ]
    );
    assert!(written(&plan, &format!("/etc/opensm/opensm-{G0}.env"))
        .contains("OPENSM_PRIORITY=<opensm priority of ib0, asked once its port GUID is known>\n"));
    h.finish();
}

// ---------------------------------------------------------------------------------------------
// Ports from ibstat, named by GUID, with no IPoIB interface: the simulated fabric (ibsim, the
// lab's captured outputs) and real hardware outputs.

/// The ibsim port: ibstat `Port GUID: 0x0000000000100001` on CA `ibsim0`.
const SIM: &str = "0x0000000000100001";

/// A lab capture of `tests/lab/fixtures-captured/ibsim/`: (command, output, status).
fn ibsim(name: &str) -> (String, String, Option<i32>) {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/lab/fixtures-captured/ibsim")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    crate::steps::parse::fixtures::lab_capture(&text)
}

/// A capture as the wizard sees it: umad2sim's `ibwarn:` lines go to stderr.
fn sim_out(name: &str) -> CmdOutput {
    let (_, text, status) = ibsim(name);
    let (warn, out): (Vec<&str>, Vec<&str>) = text.lines().partition(|l| l.starts_with("ibwarn:"));
    CmdOutput::status(
        status.unwrap_or(0),
        format!("{}\n", out.join("\n")),
        format!("{}\n", warn.join("\n")),
    )
}

/// A host with no RDMA port in sysfs and no IPoIB interface: all it shows of InfiniBand is
/// what `ibstat` prints (the lab's simulated fabric, or a host before ib_ipoib is loaded).
fn ibstat_only_host(ibstat: CmdOutput) -> FakeHost {
    let h = FakeHost::new();
    h.allow(
        &IP,
        ip_out(&[link(
            2,
            "eno1",
            None,
            "52:54:00:12:34:56",
            1500,
            true,
            &["10.0.2.15/24"],
        )]),
    );
    h.allow(&["ibstat"], ibstat);
    h
}

/// Answers naming one iSER port whose interface does not exist, its SM port by GUID.
fn by_guid(priorities: serde_json::Value) -> serde_json::Value {
    json!({"version": 1, "fabric": "infiniband",
           "subnet_manager": {"run_on_host": true, "priorities": priorities},
           "ports": [{"netdev": "ib0", "address": "192.168.130.10/24"}],
           "target": portals()})
}

#[test]
fn the_simulated_fabric_port_is_served_by_guid_without_an_ipoib_interface() {
    let h = ibstat_only_host(sim_out("ibsim-ibstat-no-sm.txt"));
    let unit = format!("opensm@{SIM}.service");
    h.expect(
        &["systemctl", "is-enabled", &unit],
        CmdOutput::status(1, "disabled\n", ""),
    );
    h.expect(
        &["systemctl", "is-enabled", &unit],
        CmdOutput::status(1, "disabled\n", ""),
    );
    h.expect(
        &["systemctl", "is-active", &unit],
        CmdOutput::status(3, "inactive\n", ""),
    );
    allow_is(&h, "is-enabled", "opensm.service", "masked");
    allow_is(&h, "is-active", "opensm.service", "inactive");
    h.expect(&["systemctl", "daemon-reload"], CmdOutput::ok(""));
    h.expect(&["systemctl", "enable", "--now", &unit], CmdOutput::ok(""));
    let answers = by_guid(json!({SIM: 7}));
    let mut run = Run::for_os(answers.clone(), DEBIAN);
    let mut step = quick();
    let plan = run.with(&h, |cx| step.plan(cx)).unwrap();
    assert_eq!(
        steps_of(&plan),
        [
            "write /etc/systemd/system/opensm@.service".to_string(),
            format!("write /etc/opensm/opensm-{SIM}.env"),
            "run systemctl daemon-reload".to_string(),
            format!("run systemctl enable --now {unit}"),
        ],
        "{}",
        plan.render()
    );
    assert!(
        written(&plan, &format!("/etc/opensm/opensm-{SIM}.env")).contains("OPENSM_PRIORITY=7\n")
    );
    assert!(
        plan.render()
            .contains("ib0 has no network interface yet: the subnet manager serves the ports"),
        "{}",
        plan.render()
    );
    run.with(&h, |cx| crate::steps::testkit::apply(&mut step, cx, &plan))
        .unwrap();
    // Verify reads the port through the same probe: still Initializing, then Active.
    let err = run.with(&h, |cx| step.verify(cx)).unwrap_err().to_string();
    assert!(
        err.contains(&format!(
            "ibsim0/1 (ibsim0/1, GUID {SIM}): State: Initializing"
        )),
        "{err}"
    );
    let h2 = ibstat_only_host(sim_out("ibsim-ibstat-own-sm.txt"));
    run.with(&h2, |cx| step.verify(cx)).unwrap();
    let rec = run.sheet.subnet_manager.clone().unwrap();
    assert_eq!(rec.placement, "on this host");
    assert_eq!(rec.priorities, [(SIM.to_string(), 7)]);
    assert_eq!(run.facts.fabric.as_deref(), Some("infiniband"));
    // No interface, no RDMA port known: the port facts are left as they were.
    assert!(run.facts.ports.is_empty());
    h.finish();
    h2.finish();

    // The rerun on the running, enabled instance (its port Active with its own lid as SM
    // lid): nothing to do, and sminfo is not asked (the port is this host's).
    let h = ibstat_only_host(sim_out("ibsim-ibstat-own-sm.txt"));
    allow_is(&h, "is-enabled", &unit, "enabled");
    allow_is(&h, "is-active", &unit, "active");
    allow_is(&h, "is-enabled", "opensm.service", "masked");
    allow_is(&h, "is-active", "opensm.service", "inactive");
    let done = written(&plan, UNIT);
    h.put_file(UNIT, &done);
    h.put_file(
        &format!("/etc/opensm/opensm-{SIM}.env"),
        &written(&plan, &format!("/etc/opensm/opensm-{SIM}.env")),
    );
    let mut run = Run::for_os(answers, DEBIAN);
    let plan = run.with(&h, |cx| quick().plan(cx)).unwrap();
    assert!(plan.actions.is_empty(), "{}", plan.render());
    assert!(
        !h.ran().iter().any(|c| c.starts_with("sminfo")),
        "{:?}",
        h.ran()
    );
    h.finish();
}

#[test]
fn an_sm_elsewhere_on_the_simulated_fabric_is_named_and_none_is_started() {
    let h = ibstat_only_host(sim_out("ibsim-ibstat-external-sm.txt"));
    allow_is(
        &h,
        "is-enabled",
        &format!("opensm@{SIM}.service"),
        "disabled",
    );
    h.expect(
        &["sminfo", "-C", "ibsim0", "-P", "1"],
        sim_out("ibsim-sminfo-external-sm.txt"),
    );
    let mut run = Run::for_os(by_guid(json!({SIM: 7})), DEBIAN);
    let plan = run.full(&h, &mut quick()).unwrap();
    assert!(plan.is_empty(), "{}", plan.render());
    let where_ = "SM lid 4, port GUID 0x0000000000100004, priority 15";
    assert!(
        plan.render().contains(&format!(
            "already runs on the fabric of ibsim0/1 ({where_})"
        )),
        "{}",
        plan.render()
    );
    let rec = run.sheet.subnet_manager.unwrap();
    assert_eq!(rec.placement, format!("already on the fabric ({where_})"));
    assert!(rec.priorities.is_empty());
    assert!(h.changes().is_empty());
    h.finish();
}

#[test]
fn a_port_without_interface_or_guid_is_refused_naming_the_ports_ibstat_shows() {
    // Priorities by netdev only: nothing tells which port ib0 is.
    let h = ibstat_only_host(sim_out("ibsim-ibstat-no-sm.txt"));
    let mut run = Run::for_os(by_guid(json!({"ib0": 7})), DEBIAN);
    let err = run.with(&h, |cx| quick().plan(cx)).unwrap_err().to_string();
    assert!(
        err.contains("ports[0].netdev: there is no network interface ib0")
            && err.contains("name the port by its GUID in subnet_manager.priorities")
            && err.contains(&format!("ibsim0/1 {SIM} (Initializing)")),
        "{err}"
    );
    assert!(h.changes().is_empty());

    // A GUID this host does not have: said, and ib0 still unaccounted for.
    let mut run = Run::for_os(by_guid(json!({"0x0000000000abcdef": 7})), DEBIAN);
    let err = run.with(&h, |cx| quick().plan(cx)).unwrap_err().to_string();
    assert!(err.contains("there is no network interface ib0"), "{err}");

    // Two ports without interface, one named by GUID: the second is refused.
    let mut answers = by_guid(json!({SIM: 7}));
    answers["ports"]
        .as_array_mut()
        .unwrap()
        .push(json!({"netdev": "ib1", "address": "192.168.131.10/24"}));
    let mut run = Run::for_os(answers, DEBIAN);
    let err = run.with(&h, |cx| quick().plan(cx)).unwrap_err().to_string();
    assert!(
        err.contains("ports[1].netdev: there is no network interface ib1"),
        "{err}"
    );
    h.finish();
}

#[test]
fn a_guid_key_for_a_port_not_here_is_noted_beside_the_ports_served() {
    // ib0 and ib1 exist (sysfs, IPoIB): a third GUID in the answers is another host's.
    let h = ib_host("Initializing", 0);
    h.allow(&["ibstat"], ibstat("Initializing", 0));
    for g in [GUID_A, GUID_B] {
        let unit = format!("opensm@{g}.service");
        allow_is(&h, "is-enabled", &unit, "disabled");
        allow_is(&h, "is-active", &unit, "inactive");
    }
    allow_is(&h, "is-enabled", "opensm.service", "disabled");
    allow_is(&h, "is-active", "opensm.service", "inactive");
    let mut run = Run::for_os(
        with_priorities(json!({GUID_A: 3, "0x0000000000abcdef": 9})),
        DEBIAN,
    );
    let plan = run.with(&h, |cx| quick().plan(cx)).unwrap();
    let text = plan.render();
    assert!(
        text.contains(
            "subnet_manager.priorities names 0x0000000000abcdef, which is not a port of this host"
        ) && text.contains(&format!("mlx5_0/1 {GUID_A} (Initializing)")),
        "{text}"
    );
    assert_eq!(
        steps_of(&plan)
            .iter()
            .filter(|s| s.starts_with("run systemctl enable --now"))
            .count(),
        2,
        "{text}"
    );
    h.finish();
}

/// The hardware path on real ibstat outputs (`../shared/fixtures/real/ibstat/`, skipped when
/// absent): the ports named by GUID, no interface, the decision each port's state calls for.
#[test]
fn real_ibstat_outputs_ports_named_by_guid() {
    // (fixture, GUID named, expected: Some(placement) when served from elsewhere, None when
    // this host runs opensm for it, plus a note the plan must carry)
    let cases: [(&str, &str, Option<&str>, Option<&str>); 5] = [
        (
            "kaust-ibex-cx6-mt4123-hdr100-active-lid762.txt",
            "0xb8599f030022626e",
            Some("already on the fabric (SM lid 8)"),
            None,
        ),
        (
            "ckuelker-connectx2-mt26428-old-no-link-layer-line.txt",
            "0x002590ffff2e4f71",
            Some("already on the fabric (SM lid 1)"),
            None,
        ),
        // Its own lid as SM lid: an opensm on this very port, not one of ours; ours runs.
        (
            "archwiki-connectx-mt25418-dual-port-active-and-polling.txt",
            "0x0002c90300002f79",
            None,
            None,
        ),
        // The port without link: opensm is set up for it (verify then says "no link").
        (
            "archwiki-connectx-mt25418-dual-port-active-and-polling.txt",
            "0x0002c90300002f7a",
            None,
            None,
        ),
        // An Ethernet port named by GUID needs no SM; the InfiniBand ports beside it are
        // served by the fabric's (SM lid 83).
        (
            "gpud-a100-vm-mt4126-ib-200-plus-eth.txt",
            "0x1c918efffe7a03a0",
            None,
            Some("an Ethernet (RoCE) port: it needs no subnet manager"),
        ),
    ];
    for (file, guid, external, note) in cases {
        let Some(text) = crate::steps::parse::fixtures::real_fixture("ibstat", file) else {
            return;
        };
        // sminfo is not installed: the SM lid ibstat shows is taken as it is.
        let h = ibstat_only_host(CmdOutput::ok(text)).only_programs(&[
            "ip",
            "ibstat",
            "systemctl",
            "opensm",
        ]);
        let unit = format!("opensm@{guid}.service");
        allow_is(&h, "is-enabled", &unit, "disabled");
        allow_is(&h, "is-active", &unit, "inactive");
        allow_is(&h, "is-enabled", "opensm.service", "disabled");
        allow_is(&h, "is-active", "opensm.service", "inactive");
        // ib0 does not exist, and one GUID names it.
        let mut answers = by_guid(json!({guid: 4}));
        if note.is_some() {
            // The Ethernet GUID cannot stand for ib0: name an InfiniBand port too.
            answers["subnet_manager"]["priorities"]["0x6b9d7f2c99902a63"] = json!(4);
            allow_is(
                &h,
                "is-enabled",
                "opensm@0x6b9d7f2c99902a63.service",
                "disabled",
            );
        }
        let mut run = Run::for_os(answers, DEBIAN);
        let mut step = quick();
        let plan = run
            .with(&h, |cx| step.plan(cx))
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        let text = plan.render();
        if let Some(n) = note {
            assert!(text.contains(n), "{file}: {text}");
            assert!(plan.actions.is_empty(), "{file}: {text}");
            assert!(
                text.contains("already runs on the fabric of mlx5_1/1 (SM lid 83)"),
                "{file}: {text}"
            );
            continue;
        }
        match external {
            Some(placement) => {
                assert!(plan.actions.is_empty(), "{file}: {text}");
                run.with(&h, |cx| step.verify(cx)).unwrap();
                assert_eq!(
                    run.sheet.subnet_manager.clone().unwrap().placement,
                    placement,
                    "{file}"
                );
            }
            None => assert!(
                steps_of(&plan).contains(&format!("run systemctl enable --now {unit}"))
                    && written(&plan, &format!("/etc/opensm/opensm-{guid}.env"))
                        .contains("OPENSM_PRIORITY=4\n"),
                "{file}: {text}"
            ),
        }
        h.finish();
    }
}

#[test]
fn a_dry_run_plans_from_ibstat_where_sysfs_shows_no_rdma_device() {
    let h = ibstat_only_host(sim_out("ibsim-ibstat-no-sm.txt"));
    let unit = format!("opensm@{SIM}.service");
    allow_is(&h, "is-enabled", &unit, "disabled");
    allow_is(&h, "is-active", &unit, "inactive");
    allow_is(&h, "is-enabled", "opensm.service", "masked");
    allow_is(&h, "is-active", "opensm.service", "inactive");
    let mut run = dry(by_guid(json!({SIM: 7})), DEBIAN);
    let plan = run.with(&h, |cx| quick().plan(cx)).unwrap();
    assert!(plan.learned.is_empty(), "{}", plan.render());
    assert!(
        steps_of(&plan).contains(&format!("run systemctl enable --now {unit}")),
        "{}",
        plan.render()
    );
    assert!(h.changes().is_empty());
    h.finish();
}
