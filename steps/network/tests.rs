//! Tests of the network step: whole runs on hosts modelled on real outputs, golden files per
//! distro and fabric, and the bare-host dry run.

use serde_json::json;

use super::files::{connection_uuid, render_opt, sources_interfaces_d};
use super::testkit::*;
use super::*;
use crate::steps::fake::FakeHost;
use crate::steps::CmdOutput;

fn ping(netdev: &str, addr: &str) -> Vec<String> {
    ["ping", "-c", "1", "-W", "2", "-I", netdev, addr]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// The lab's portals live on vA-t/vB-t of the same host: pinged from the port addresses.
fn expect_lab_pings(h: &FakeHost) {
    for (n, a) in [
        ("192.168.130.10", "192.168.130.101"),
        ("192.168.130.10", "192.168.130.102"),
        ("192.168.131.10", "192.168.131.101"),
        ("192.168.131.10", "192.168.131.102"),
    ] {
        let argv = ping(n, a);
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        h.expect(&argv, CmdOutput::ok("1 packets transmitted, 1 received\n"));
    }
}

fn quick() -> Network {
    Network {
        ping_bound: Duration::ZERO,
        ping_interval: Duration::from_millis(1),
        ..Network::default()
    }
}

#[test]
fn the_lab_debian_roce_ports_get_ifupdown_files_and_reach_every_portal_then_rerun_is_empty() {
    let h = lab_host();
    h.expect(&IP, ip_out(&lab_links(false)));
    h.allow(&IP, ip_out(&lab_links(true)));
    h.expect(&["ifup", "vA"], CmdOutput::ok(""));
    h.expect(&["ifup", "vB"], CmdOutput::ok(""));
    expect_lab_pings(&h);
    let mut run = Run::for_os(lab_answers(), DEBIAN);
    let mut step = quick();
    let plan = run.full(&h, &mut step).unwrap();
    assert_eq!(
        steps_of(&plan),
        [
            "write /etc/network/interfaces.d/iser-vA",
            "write /etc/network/interfaces.d/iser-vB",
            "task up",
            "task reach",
        ],
        "{}",
        plan.render()
    );
    golden(
        "network/debian-roce-vA",
        &written(&plan, "/etc/network/interfaces.d/iser-vA"),
    );
    assert!(
        plan.render()
            .contains("192.168.130.101 (on vA-t), 192.168.130.102 (on vA-t)"),
        "{}",
        plan.render()
    );
    assert!(run.sheet.notes.iter().any(|n| n.contains("loopback")));
    // The files are on the host now; with the addresses live a rerun changes nothing.
    assert_eq!(run.facts.fabric.as_deref(), Some("roce"));
    assert_eq!(run.facts.ports.len(), 2);
    assert_eq!(run.facts.ports[0].rdma_device.as_deref(), Some("rxe0"));
    assert_eq!(run.facts.ports[1].netdev, "vB");
    assert_eq!(
        run.facts.ports[1].guid.as_deref(),
        Some("0xa0180ffffe2a3a69")
    );
    assert_eq!(
        run.sheet.ports[0].hw_address.as_deref(),
        Some("2e:9b:86:72:9e:0b")
    );
    assert_eq!(run.sheet.ports[0].link_layer.as_deref(), Some("Ethernet"));
    assert_eq!(run.sheet.ports[0].state.as_deref(), Some("Active"));
    let plan = run.with(&h, |cx| quick().plan(cx)).unwrap();
    assert!(plan.is_empty(), "{}", plan.render());
    h.finish();
}

#[test]
fn an_interactive_run_asks_for_the_portals_to_ping_and_its_recorded_answers_replay_the_plan() {
    // A person answers the ports and the portals; everything else is Enter.
    let typed = json!({
        "ports": [{"netdev": "vA", "address": "192.168.130.10/24"},
                  {"netdev": "vB", "address": "192.168.131.10/24"}],
        "target": {"portals": [{"address": "192.168.130.101"},
                               {"address": "192.168.130.102"},
                               {"address": "192.168.131.101"},
                               {"address": "192.168.131.102"}]},
    });
    let h = lab_host();
    h.allow(&IP, ip_out(&lab_links(false)));
    let mut run = Run::for_os(serde_json::Value::Null, DEBIAN);
    run.ask = crate::prompt::Asker::scripted(typed);
    let asked = run.with(&h, |cx| quick().plan(cx)).unwrap();
    let text = asked.render();
    assert!(
        text.contains("ping each of the 4 target portal(s)"),
        "{text}"
    );
    let recorded = run.ask.recorded();
    assert_eq!(
        recorded["target"]["portals"][3],
        json!({"address": "192.168.131.102", "label": "Controller B, port 2"})
    );
    assert_eq!(recorded["fabric"], json!("auto"));

    // The recorded answers, unattended, on the same host: the same plan.
    let mut replay = Run::for_os(recorded, DEBIAN);
    let replayed = replay.with(&h, |cx| quick().plan(cx)).unwrap();
    assert_eq!(replayed.render(), text);
}

#[test]
fn ifupdown_is_made_to_read_interfaces_d_and_ipoib_mode_on_roce_is_a_note() {
    let h = lab_host();
    h.put_file(
        "/etc/network/interfaces",
        "auto lo\niface lo inet loopback\n",
    );
    h.allow(&IP, ip_out(&lab_links(false)));
    let mut answers = lab_answers();
    answers["ports"][0]["ipoib_mode"] = json!("datagram");
    let mut run = Run::for_os(answers, DEBIAN);
    let plan = run.with(&h, |cx| quick().plan(cx)).unwrap();
    assert_eq!(
        written(&plan, "/etc/network/interfaces"),
        "auto lo\niface lo inet loopback\n\n# Added by iser-wizard: the iSER ports are configured in files of their own.\nsource /etc/network/interfaces.d/*\n"
    );
    assert_eq!(steps_of(&plan)[0], "write /etc/network/interfaces");
    let text = plan.render();
    assert!(
        text.contains("ports[0].ipoib_mode (datagram) is ignored: vA is RoCE"),
        "{text}"
    );
    h.finish();
}

#[test]
fn an_unreachable_portal_is_named_and_cross_subnet_pings_are_never_tried() {
    let h = lab_host();
    h.expect(&IP, ip_out(&remote_links(false)));
    h.allow(&IP, ip_out(&remote_links(true)));
    h.expect(&["ifup", "vA"], CmdOutput::ok(""));
    h.expect(&["ifup", "vB"], CmdOutput::ok(""));
    for (n, a, ok) in [
        ("vA", "192.168.130.101", true),
        ("vA", "192.168.130.102", true),
        ("vB", "192.168.131.101", true),
        ("vB", "192.168.131.102", false),
    ] {
        let out = if ok {
            CmdOutput::ok("")
        } else {
            CmdOutput::status(
                1,
                "1 packets transmitted, 0 received, 100% packet loss\n",
                "",
            )
        };
        h.allow(&["ping", "-c", "1", "-W", "2", "-I", n, a], out);
    }
    let mut run = Run::for_os(lab_answers(), DEBIAN);
    let err = run.full(&h, &mut quick()).unwrap_err().to_string();
    assert!(
        err.contains("192.168.131.102 (Controller B, port 2) did not answer a ping from vB (192.168.131.10/24)"),
        "{err}"
    );
    assert!(!err.contains("192.168.131.101"), "{err}");
    let pings: Vec<String> = h
        .ran()
        .into_iter()
        .filter(|c| c.starts_with("ping"))
        .collect();
    assert_eq!(pings.len(), 4, "{pings:?}");
    for p in &pings {
        let cross = (p.contains("-I vA") && p.contains("192.168.131."))
            || (p.contains("-I vB") && p.contains("192.168.130."));
        assert!(!cross, "pinged across subnets: {p}");
    }
    h.finish();
}

#[test]
fn a_netdev_without_an_rdma_port_fails_naming_the_ports_there_are() {
    let h = lab_host();
    h.allow(&IP, ip_out(&lab_links(false)));
    let mut answers = lab_answers();
    answers["ports"][0]["netdev"] = json!("eth0");
    let mut run = Run::for_os(answers, DEBIAN);
    let err = run.with(&h, |cx| quick().plan(cx)).unwrap_err().to_string();
    assert!(
        err.contains("ports[0].netdev: eth0 has no RDMA port"),
        "{err}"
    );
    assert!(err.contains("rxe0/1 (Ethernet, Active) -> vA"), "{err}");
    answers = lab_answers();
    answers["ports"][1]["netdev"] = json!("ib7");
    let mut run = Run::for_os(answers, DEBIAN);
    let err = run.with(&h, |cx| quick().plan(cx)).unwrap_err().to_string();
    assert!(err.contains("there is no network interface ib7"), "{err}");
    assert!(h.changes().is_empty());
    h.finish();
}

#[test]
fn connected_mode_is_refused_on_enhanced_ipoib() {
    let h = FakeHost::new();
    ib_sysfs(&h, "Active", 1);
    h.allow(&IP, ip_out(&ib_links(false, "datagram")));
    let answers = ib_answers(json!({"ipoib_mode": "connected", "mtu": 65520}));
    let mut run = Run::for_os(answers, RHEL8);
    let err = run.with(&h, |cx| quick().plan(cx)).unwrap_err().to_string();
    assert!(err.contains("ports[0].ipoib_mode"), "{err}");
    assert!(err.contains("Enhanced IPoIB"), "{err}");
    assert!(err.contains("datagram-only"), "{err}");
    h.finish();
}

#[test]
fn a_datagram_mtu_above_4092_is_refused() {
    let h = FakeHost::new();
    ib_sysfs(&h, "Active", 1);
    h.allow(&IP, ip_out(&ib_links(false, "datagram")));
    let mut run = Run::for_os(ib_answers(json!({"mtu": 9000})), DEBIAN);
    let err = run.with(&h, |cx| quick().plan(cx)).unwrap_err().to_string();
    assert!(err.contains("ports[0].mtu: 9000 is above 4092"), "{err}");
    h.finish();
}

/// One golden file per distro and fabric: the file of the first port.
fn golden_case(os: &str, ib: bool, setup: impl Fn(&FakeHost), path: &str, name: &str) {
    let h = FakeHost::new();
    let answers = if ib {
        ib_sysfs(&h, "Active", 1);
        h.allow(&IP, ip_out(&ib_links(false, "datagram")));
        ib_answers(json!({}))
    } else {
        let h2 = &h;
        rxe(
            h2,
            "rxe0",
            "ens1f0",
            "fe80:0000:0000:0000:2c9b:86ff:fe72:9e0b",
        );
        rxe(
            h2,
            "rxe1",
            "ens1f1",
            "fe80:0000:0000:0000:a018:0fff:fe2a:3a69",
        );
        h.allow(
            &IP,
            ip_out(&[
                link(3, "ens1f0", None, "2e:9b:86:72:9e:0b", 9000, true, &[]),
                link(4, "ens1f1", None, "a2:18:0f:2a:3a:69", 9000, true, &[]),
            ]),
        );
        json!({"version": 1, "fabric": "roce", "subnet_manager": {"run_on_host": false},
               "ports": [{"netdev": "ens1f0", "address": "192.168.130.10/24", "mtu": 9000},
                         {"netdev": "ens1f1", "address": "192.168.131.10/24"}],
               "target": portals()})
    };
    setup(&h);
    let mut run = Run::for_os(answers, os);
    let plan = run.with(&h, |cx| quick().plan(cx)).unwrap();
    golden(name, &written(&plan, path));
    h.finish();
}

fn nm_active(devices: &'static str) -> impl Fn(&FakeHost) {
    move |h: &FakeHost| {
        h.allow(
            &["systemctl", "is-active", "NetworkManager"],
            CmdOutput::ok("active\n"),
        );
        h.allow(
            &["nmcli", "-t", "-f", "DEVICE,STATE", "device"],
            CmdOutput::ok(devices),
        );
    }
}

fn nm_inactive(h: &FakeHost) {
    h.allow(
        &["systemctl", "is-active", "NetworkManager"],
        CmdOutput::status(3, "inactive\n", ""),
    );
}

#[test]
fn golden_rhel9_keyfiles() {
    golden_case(
        RHEL9,
        true,
        nm_active("ib0:disconnected\nib1:disconnected\neno1:connected\n"),
        "/etc/NetworkManager/system-connections/iser-ib0.nmconnection",
        "network/rhel9-ipoib-ib0.nmconnection",
    );
    golden_case(
        RHEL9,
        false,
        nm_active("ens1f0:disconnected\nens1f1:disconnected\n"),
        "/etc/NetworkManager/system-connections/iser-ens1f0.nmconnection",
        "network/rhel9-roce-ens1f0.nmconnection",
    );
}

#[test]
fn golden_rhel8_ifcfg() {
    golden_case(
        RHEL8,
        true,
        nm_active("ib0:disconnected\nib1:disconnected\n"),
        "/etc/sysconfig/network-scripts/ifcfg-ib0",
        "network/rhel8-ipoib-ifcfg-ib0",
    );
    golden_case(
        RHEL8,
        false,
        |h: &FakeHost| {
            nm_inactive(h);
            h.put_file("/etc/sysconfig/network-scripts/ifcfg-lo", "DEVICE=lo\n");
        },
        "/etc/sysconfig/network-scripts/ifcfg-ens1f0",
        "network/rhel8-roce-ifcfg-ens1f0",
    );
}

#[test]
fn golden_sles_wicked() {
    golden_case(
        SLES,
        true,
        nm_inactive,
        "/etc/sysconfig/network/ifcfg-ib0",
        "network/sles-ipoib-ifcfg-ib0",
    );
    golden_case(
        SLES,
        false,
        nm_inactive,
        "/etc/sysconfig/network/ifcfg-ens1f0",
        "network/sles-roce-ifcfg-ens1f0",
    );
}

#[test]
fn golden_ubuntu_netplan() {
    golden_case(
        UBUNTU,
        true,
        |_| {},
        "/etc/netplan/60-iser-ib0.yaml",
        "network/ubuntu-ipoib-60-iser-ib0.yaml",
    );
    golden_case(
        UBUNTU,
        false,
        |_| {},
        "/etc/netplan/60-iser-ens1f0.yaml",
        "network/ubuntu-roce-60-iser-ens1f0.yaml",
    );
}

#[test]
fn golden_debian_ifupdown() {
    let interfaces = |h: &FakeHost| {
        h.put_file(
            "/etc/network/interfaces",
            "source /etc/network/interfaces.d/*\n",
        )
    };
    golden_case(
        DEBIAN,
        true,
        interfaces,
        "/etc/network/interfaces.d/iser-ib0",
        "network/debian-ipoib-iser-ib0",
    );
    golden_case(
        DEBIAN,
        false,
        interfaces,
        "/etc/network/interfaces.d/iser-ens1f0",
        "network/debian-roce-iser-ens1f0",
    );
}

#[test]
fn a_port_that_does_not_come_up_fails_the_step_by_its_command_while_the_other_comes_up() {
    let h = lab_host();
    h.expect(&IP, ip_out(&lab_links(false)));
    h.allow(&IP, ip_out(&lab_links(false)));
    h.expect(&["ifup", "vA"], CmdOutput::ok(""));
    h.expect(
        &["ifup", "vB"],
        CmdOutput::status(
            1,
            "",
            "RTNETLINK answers: File exists\nifup: failed to bring up vB\n",
        ),
    );
    let mut run = Run::for_os(lab_answers(), DEBIAN);
    let err = run.full(&h, &mut quick()).unwrap_err().to_string();
    assert!(err.contains("ifup vB"), "{err}");
    assert!(err.contains("failed to bring up vB"), "{err}");
    assert!(!err.contains("ifup vA"), "{err}");
}

#[test]
fn each_distro_brings_the_ports_up_its_own_way() {
    type Setup = Box<dyn Fn(&FakeHost)>;
    let cases: Vec<(&str, Setup, Vec<&str>)> = vec![
        (
            RHEL9,
            Box::new(nm_active("ib0:disconnected\nib1:disconnected\n")),
            vec![
                "write /etc/NetworkManager/system-connections/iser-ib0.nmconnection",
                "run nmcli connection load /etc/NetworkManager/system-connections/iser-ib0.nmconnection",
                "write /etc/NetworkManager/system-connections/iser-ib1.nmconnection",
                "run nmcli connection load /etc/NetworkManager/system-connections/iser-ib1.nmconnection",
                "task up",
            ],
        ),
        (
            RHEL8,
            Box::new(nm_inactive),
            vec![
                "write /etc/sysconfig/network-scripts/ifcfg-ib0",
                "write /etc/sysconfig/network-scripts/ifcfg-ib1",
                "task up",
            ],
        ),
        (
            SLES,
            Box::new(nm_inactive),
            vec!["write /etc/sysconfig/network/ifcfg-ib0", "run wicked ifreload ib0"],
        ),
        (
            UBUNTU,
            Box::new(|_: &FakeHost| {}),
            vec!["write /etc/netplan/60-iser-ib0.yaml", "write /etc/netplan/60-iser-ib1.yaml", "run netplan apply"],
        ),
    ];
    for (os, setup, want) in cases {
        let h = FakeHost::new();
        h.put_file("/etc/sysconfig/network-scripts/ifcfg-lo", "DEVICE=lo\n");
        ib_sysfs(&h, "Active", 1);
        h.allow(&IP, ip_out(&ib_links(false, "datagram")));
        setup(&h);
        let mut run = Run::for_os(ib_answers(json!({})), os);
        let plan = run.with(&h, |cx| quick().plan(cx)).unwrap();
        let got = steps_of(&plan);
        assert_eq!(&got[..want.len()], &want[..], "{os}: {}", plan.render());
        assert_eq!(got.last().map(String::as_str), Some("task reach"));
        if os == UBUNTU {
            let modes: Vec<u32> = plan
                .actions
                .iter()
                .filter_map(|a| match a {
                    Action::Write { mode, .. } => Some(*mode),
                    _ => None,
                })
                .collect();
            assert_eq!(modes, [0o600, 0o600]);
        }
        h.finish();
    }
}

#[test]
fn a_persistent_name_is_pinned_on_the_guid_bytes_and_applied_now() {
    let h = FakeHost::new();
    ib_sysfs(&h, "Active", 1);
    h.put_file(
        "/etc/network/interfaces",
        "source /etc/network/interfaces.d/*\n",
    );
    h.allow(&IP, ip_out(&ib_links(false, "datagram")));
    let answers = ib_answers(json!({"persistent_name": "iser-a"}));
    let mut run = Run::for_os(answers, DEBIAN);
    let plan = run.with(&h, |cx| quick().plan(cx)).unwrap();
    let rules = written(&plan, "/etc/udev/rules.d/70-iser-persistent-net.rules");
    golden("network/70-iser-persistent-net.rules", &rules);
    assert!(
        rules.contains("ATTR{address}==\"?*24:8a:07:03:00:a8:0a:80\""),
        "{rules}"
    );
    // Never the first bytes, which hold the queue pair number.
    assert!(!rules.contains("00:00:10:49"), "{rules}");
    assert_eq!(
        &steps_of(&plan)[..4],
        [
            "write /etc/udev/rules.d/70-iser-persistent-net.rules",
            "run ip link set dev ib0 down",
            "run ip link set dev ib0 name iser-a",
            "write /etc/network/interfaces.d/iser-iser-a",
        ]
    );
    h.finish();
}

#[test]
fn a_changed_address_takes_the_port_down_with_its_old_file_first() {
    let h = lab_host();
    h.put_file(
        "/etc/network/interfaces.d/iser-vA",
        "auto vA\niface vA inet static\n    address 192.168.130.9/24\n",
    );
    let mut links = lab_links(true);
    links[2] = link(
        4,
        "vA",
        Some("veth"),
        "2e:9b:86:72:9e:0b",
        1500,
        true,
        &["192.168.130.9/24"],
    );
    h.allow(&IP, ip_out(&links));
    let mut run = Run::for_os(lab_answers(), DEBIAN);
    let plan = run.with(&h, |cx| quick().plan(cx)).unwrap();
    assert_eq!(
        steps_of(&plan),
        [
            "run ifdown vA",
            "write /etc/network/interfaces.d/iser-vA",
            "run ifup vA",
            // vB's address is already live: its new file only makes it persistent.
            "write /etc/network/interfaces.d/iser-vB",
            "task reach"
        ],
        "{}",
        plan.render()
    );
    assert!(plan.render().contains("vB already has its address live"));
    h.finish();
}

#[test]
fn an_unreadable_sysfs_attribute_is_unknown_not_fatal() {
    // The kernel answers EINVAL for gid_attrs/ndevs/0 of an InfiniBand GID; a directory in
    // its place fails the read the same way.
    let h = FakeHost::new();
    ib_sysfs(&h, "Active", 1);
    h.put_file(
        "/sys/class/infiniband/mlx5_0/ports/1/gid_attrs/ndevs/0/x",
        "",
    );
    std::fs::remove_file(h.path("/sys/class/infiniband/mlx5_0/ports/1/rate")).unwrap();
    h.put_file("/sys/class/infiniband/mlx5_0/ports/1/rate/x", "");
    h.put_file(
        "/etc/network/interfaces",
        "source /etc/network/interfaces.d/*\n",
    );
    h.allow(&IP, ip_out(&ib_links(false, "datagram")));
    let mut run = Run::for_os(ib_answers(json!({})), DEBIAN);
    let plan = run.with(&h, |cx| quick().plan(cx)).unwrap();
    assert_eq!(
        steps_of(&plan)[0],
        "write /etc/network/interfaces.d/iser-ib0"
    );
    h.finish();
}

#[test]
fn optional_lines_drop_out_and_names_are_checked_for_files() {
    assert_eq!(
        render_opt("a={{a}}\nb={{b}}\nc\n", &[("a", Some("1")), ("b", None)]).unwrap(),
        "a=1\nc\n"
    );
    assert!(crate::answers::check_netdev("ib0.8001").is_ok());
    assert!(crate::answers::check_netdev("a;b").is_err());
    assert!(crate::answers::check_netdev("a$b").is_err());
    let u = connection_uuid("iser-ib0");
    assert_eq!(u, connection_uuid("iser-ib0"));
    assert_ne!(u, connection_uuid("iser-ib1"));
    assert_eq!(&u[14..15], "8");
    assert!(sources_interfaces_d("source /etc/network/interfaces.d/*\n"));
    assert!(sources_interfaces_d("source-directory interfaces.d\n"));
    assert!(!sources_interfaces_d(
        "#source /etc/network/interfaces.d/*\n"
    ));
}

/// A dry run of these answers on a host with no RDMA device, no network tool but `ip` (which
/// shows only the management interface), and this os-release.
fn bare_dry_run(answers: serde_json::Value, os: &str, with_ip: bool) -> (Plan, FakeHost) {
    let h = if with_ip {
        let h = FakeHost::new().only_programs(&["ip"]);
        h.allow(
            &IP,
            ip_out(&[link(
                2,
                "eth0",
                None,
                "52:54:00:12:34:56",
                1500,
                true,
                &["10.0.2.15/24"],
            )]),
        );
        h
    } else {
        FakeHost::new().only_programs(&[])
    };
    let mut run = Run::for_os(answers, os);
    run.options.dry_run = true;
    let plan = run.with(&h, |cx| quick().plan(cx)).unwrap();
    (plan, h)
}

#[test]
fn a_dry_run_on_a_bare_debian_host_plans_ifupdown_files_from_the_answers() {
    for with_ip in [true, false] {
        let (plan, h) = bare_dry_run(ib_answers(json!({})), DEBIAN, with_ip);
        assert_eq!(
            steps_of(&plan),
            [
                "write /etc/network/interfaces",
                "write /etc/network/interfaces.d/iser-ib0",
                "write /etc/network/interfaces.d/iser-ib1",
                "task up",
                "task reach",
            ],
            "{}",
            plan.render()
        );
        let ib0 = written(&plan, "/etc/network/interfaces.d/iser-ib0");
        assert_eq!(
            ib0,
            "# Written by iser-wizard: iSER port ib0 (<RDMA device and port of ib0>, \
             <link layer of ib0>, GUID <port GUID of ib0>).\nauto ib0\niface ib0 inet static\n    \
             address 192.168.130.10/24\n    mtu 4092\n    pre-up echo datagram > \
             /sys/class/net/ib0/mode\n"
        );
        assert_eq!(
            plan.learned,
            [
                "link layer of ib0",
                "RDMA device and port of ib0",
                "port GUID of ib0",
                "link layer of ib1",
                "RDMA device and port of ib1",
                "port GUID of ib1",
            ]
        );
        let text = plan.render();
        assert!(
            text.contains("ping each of the 4 target portal(s)"),
            "{text}"
        );
        assert!(
            text.contains("applies if ib0 turns out to be InfiniBand"),
            "{text}"
        );
        assert!(h.changes().is_empty());
        h.finish();
    }
}

#[test]
fn a_dry_run_with_a_known_fabric_needs_no_link_layer_placeholder() {
    let mut answers = ib_answers(json!({"persistent_name": "iser-a"}));
    answers["fabric"] = json!("infiniband");
    let (plan, h) = bare_dry_run(answers, RHEL9, true);
    let file = written(
        &plan,
        "/etc/NetworkManager/system-connections/iser-iser-a.nmconnection",
    );
    assert!(file.contains("type=infiniband\n"), "{file}");
    assert!(
        file.contains("(<RDMA device and port of ib0>, InfiniBand, GUID <port GUID of ib0>)"),
        "{file}"
    );
    let rules = written(&plan, "/etc/udev/rules.d/70-iser-persistent-net.rules");
    assert!(
        rules.contains("ATTR{address}==\"?*<port GUID bytes of ib0>\", NAME=\"iser-a\""),
        "{rules}"
    );
    assert!(!plan.learned.iter().any(|l| l.contains("link layer")));
    assert!(
        plan.render()
            .contains("addresses are kept with NetworkManager keyfile (Rhel 9)"),
        "{}",
        plan.render()
    );
    assert_eq!(
        &steps_of(&plan)[..5],
        [
            "write /etc/udev/rules.d/70-iser-persistent-net.rules",
            "run ip link set dev ib0 down",
            "run ip link set dev ib0 name iser-a",
            "write /etc/NetworkManager/system-connections/iser-iser-a.nmconnection",
            "run nmcli connection load /etc/NetworkManager/system-connections/iser-iser-a.nmconnection",
        ]
    );
    h.finish();
}

#[test]
fn a_real_run_on_a_bare_host_still_stops_at_the_missing_port() {
    let h = FakeHost::new().only_programs(&["ip"]);
    h.allow(&IP, ip_out(&[]));
    let mut run = Run::for_os(ib_answers(json!({})), DEBIAN);
    let err = run.with(&h, |cx| quick().plan(cx)).unwrap_err().to_string();
    assert!(
        err.contains("ports[0].netdev: there is no network interface ib0; there is no RDMA port on this host"),
        "{err}"
    );
    h.finish();
}

#[test]
fn a_dry_run_on_a_bare_rhel_host_plans_keyfiles_whose_type_the_device_will_tell() {
    let (plan, h) = bare_dry_run(ib_answers(json!({})), RHEL9, true);
    let file = written(
        &plan,
        "/etc/NetworkManager/system-connections/iser-ib0.nmconnection",
    );
    assert!(
        file.contains("type=<infiniband or ethernet, from the link layer of ib0>\n"),
        "{file}"
    );
    assert!(file.contains("address1=192.168.130.10/24\n"), "{file}");
    assert_eq!(
        steps_of(&plan).last().map(String::as_str),
        Some("task reach")
    );
    h.finish();
}

#[test]
fn a_rerun_pings_only_the_portals_no_logged_in_session_reaches() {
    let h = lab_host();
    h.expect(&IP, ip_out(&lab_links(false)));
    h.allow(&IP, ip_out(&lab_links(true)));
    h.expect(&["ifup", "vA"], CmdOutput::ok(""));
    h.expect(&["ifup", "vB"], CmdOutput::ok(""));
    expect_lab_pings(&h);
    let mut run = Run::for_os(lab_answers(), DEBIAN);
    run.full(&h, &mut quick()).unwrap();
    // The sessions the iscsi step's ifaces logged in: three live, one failed, and one of
    // another iface to the fourth portal (which proves nothing about port vB).
    for (sid, iface, addr, state) in [
        (1, "iface-vA", "192.168.130.101", "LOGGED_IN"),
        (2, "iface-vA", "192.168.130.102", "LOGGED_IN"),
        (3, "iface-vB", "192.168.131.101", "LOGGED_IN"),
        (4, "iface-vB", "192.168.131.102", "FAILED"),
        (5, "default", "192.168.131.102", "LOGGED_IN"),
    ] {
        let s = format!("/sys/class/iscsi_session/session{sid}");
        h.put_file(&format!("{s}/state"), &format!("{state}\n"));
        h.put_file(&format!("{s}/ifacename"), &format!("{iface}\n"));
        h.put_file(
            &format!("/sys/class/iscsi_connection/connection{sid}:0/address"),
            &format!("{addr}\n"),
        );
    }
    let before = h.ran().iter().filter(|c| c.starts_with("ping")).count();
    let argv = ping("192.168.131.10", "192.168.131.102");
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    h.expect(&argv, CmdOutput::ok("1 packets transmitted, 1 received\n"));
    let plan = run.full(&h, &mut quick()).unwrap();
    assert!(plan.is_empty(), "{}", plan.render());
    h.finish();
    let pings: Vec<String> = h
        .ran()
        .into_iter()
        .filter(|c| c.starts_with("ping"))
        .skip(before)
        .collect();
    assert_eq!(pings, [argv.join(" ")], "{pings:?}");
}
