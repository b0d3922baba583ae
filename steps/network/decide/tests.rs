//! Table tests of the network step's pure decisions.

use std::collections::BTreeMap;

use super::*;
use crate::steps::network::testkit::{ipoib, link};
use crate::steps::network::want::PortAnswer;
use crate::steps::parse::netlink::parse_ip_j_addr;

fn live(v: serde_json::Value) -> Link {
    parse_ip_j_addr(&serde_json::to_string(&[v]).unwrap())
        .unwrap()
        .remove(0)
}

fn port(ib: Option<bool>, mtu: Option<u32>, link: Option<Link>) -> NetPort {
    NetPort {
        index: 0,
        answer: PortAnswer {
            netdev: "ib0".into(),
            address: Some("192.168.130.10/24".parse().unwrap()),
            ipoib_mode: None,
            mtu,
            persistent_name: None,
        },
        link,
        rdma: None,
        ib,
    }
}

const HW: &str = "00:00:10:49:fe:80:00:00:00:00:00:00:24:8a:07:03:00:a8:0a:80";

#[test]
fn live_differences_name_each_way_a_port_differs() {
    let want: HostAddr = "192.168.130.10/24".parse().unwrap();
    let up = live(ipoib(
        5,
        "ib0",
        HW,
        4092,
        "datagram",
        &["192.168.130.10/24"],
    ));
    let bare = live(ipoib(5, "ib0", HW, 2044, "datagram", &[]));
    let name = || "ib0".to_string();
    type Case = (
        Option<Link>,
        Option<u32>,
        Option<IpoibMode>,
        Option<&'static str>,
    );
    let cases: Vec<(&str, Case, Vec<Difference>)> = vec![
        (
            "absent",
            (None, None, None, None),
            vec![Difference::Absent { name: name() }],
        ),
        (
            "matches",
            (
                Some(up.clone()),
                Some(4092),
                Some(IpoibMode::Datagram),
                Some("datagram"),
            ),
            vec![],
        ),
        (
            "down, no address, wrong MTU",
            (Some(bare), Some(4092), None, None),
            vec![
                Difference::LacksAddress { name: name(), want },
                Difference::Down { name: name() },
                Difference::Mtu {
                    name: name(),
                    have: Some(2044),
                    want: 4092,
                },
            ],
        ),
        (
            "mode did not take",
            (Some(up), None, Some(IpoibMode::Connected), Some("datagram")),
            vec![Difference::Mode {
                name: name(),
                want: IpoibMode::Connected,
            }],
        ),
    ];
    for (what, (l, mtu, mode, live_mode), want) in cases {
        let p = port(Some(true), mtu, l.clone());
        assert_eq!(
            live_differences(l.as_ref(), &p, mode, live_mode),
            want,
            "{what}"
        );
    }
    // A RoCE port has no IPoIB mode to differ in.
    let eth = live(link(
        3,
        "ib0",
        None,
        "2e:9b:86:72:9e:0b",
        1500,
        true,
        &["192.168.130.10/24"],
    ));
    let p = port(Some(false), None, Some(eth.clone()));
    assert!(live_differences(Some(&eth), &p, Some(IpoibMode::Connected), None).is_empty());
}

#[test]
fn differences_read_as_the_operator_s_words() {
    let name = "ib0".to_string();
    let cases = [
        (
            Difference::Absent { name: name.clone() },
            "ib0 does not exist yet",
        ),
        (
            Difference::LacksAddress {
                name: name.clone(),
                want: "10.0.0.1/24".parse().unwrap(),
            },
            "ib0 lacks 10.0.0.1/24",
        ),
        (
            Difference::NoAddress { name: name.clone() },
            "ib0: no address is known for it",
        ),
        (Difference::Down { name: name.clone() }, "ib0 is down"),
        (
            Difference::Mtu {
                name: name.clone(),
                have: Some(1500),
                want: 4092,
            },
            "ib0 has MTU Some(1500), wanted 4092",
        ),
        (
            Difference::Mode {
                name,
                want: IpoibMode::Connected,
            },
            "ib0 is not in connected mode",
        ),
    ];
    for (d, text) in cases {
        assert_eq!(d.to_string(), text);
    }
}

#[test]
fn each_distro_keeps_addresses_with_its_own_stack() {
    let nm = |state: &str| Some(BTreeMap::from([("ib0".to_string(), state.to_string())]));
    let tools =
        |ifup, netplan, wicked, scripts_dir, nm: Option<BTreeMap<String, String>>| StackTools {
            ifup,
            netplan,
            wicked,
            scripts_dir,
            nm,
        };
    let cases: Vec<(Distro, u32, StackTools, Result<Stack, &str>)> = vec![
        (
            Distro::Ubuntu,
            24,
            tools(false, true, false, false, None),
            Ok(Stack::Netplan),
        ),
        (
            Distro::Ubuntu,
            24,
            tools(true, false, false, false, None),
            Err("netplan is not installed"),
        ),
        (
            Distro::Debian,
            12,
            tools(true, false, false, false, None),
            Ok(Stack::Ifupdown),
        ),
        (
            Distro::Debian,
            12,
            tools(false, false, false, false, nm("disconnected")),
            Ok(Stack::Keyfile),
        ),
        (
            Distro::Debian,
            12,
            tools(false, false, false, false, nm("unmanaged")),
            Err("does not manage ib0"),
        ),
        (
            Distro::Debian,
            12,
            tools(false, false, false, false, None),
            Err("apt-get install ifupdown"),
        ),
        (
            Distro::Rhel,
            8,
            tools(false, false, false, false, nm("unmanaged")),
            Ok(Stack::Ifcfg { nm: true }),
        ),
        (
            Distro::Rhel,
            8,
            tools(true, false, false, true, None),
            Ok(Stack::Ifcfg { nm: false }),
        ),
        (
            Distro::Rhel,
            9,
            tools(true, false, false, true, None),
            Ok(Stack::Ifcfg { nm: false }),
        ),
        (
            Distro::Rhel,
            9,
            tools(false, false, false, false, nm("connected")),
            Ok(Stack::Keyfile),
        ),
        (
            Distro::Rhel,
            9,
            tools(false, false, false, false, nm("unmanaged")),
            Err("does not manage ib0"),
        ),
        (
            Distro::Rhel,
            9,
            tools(true, false, false, false, None),
            Err("systemctl enable --now NetworkManager"),
        ),
        (
            Distro::Sles,
            15,
            tools(false, false, true, false, nm("connected")),
            Ok(Stack::Keyfile),
        ),
        (
            Distro::Sles,
            15,
            tools(false, false, true, false, nm("unmanaged")),
            Ok(Stack::Wicked),
        ),
        (
            Distro::Sles,
            15,
            tools(false, false, false, false, None),
            Err("zypper install wicked"),
        ),
    ];
    for (distro, major, t, want) in cases {
        let got = choose_stack(distro, major, &t, &["ib0"]);
        match (got, want) {
            (Ok(s), Ok(w)) => assert_eq!(s, w, "{distro:?} {major} {t:?}"),
            (Err(e), Err(w)) => assert!(e.to_string().contains(w), "{distro:?} {major}: {e}"),
            (got, want) => panic!("{distro:?} {major} {t:?}: got {got:?}, wanted {want:?}"),
        }
    }
}

fn change(old: Option<&str>, diff: Vec<Difference>, was_up: bool) -> PortChange {
    PortChange {
        name: "ib0".into(),
        path: "/etc/x/ib0".into(),
        old: old.map(str::to_string),
        new: "new\n".into(),
        mode: 0o644,
        diff,
        was_up,
    }
}

fn lines(p: &Plan) -> Vec<String> {
    p.actions
        .iter()
        .map(|a| match a {
            Action::Run { cmd, .. } => format!("run {cmd}"),
            Action::Write { path, .. } => format!("write {}", path.display()),
            Action::Task { id, .. } => format!("task {id}"),
        })
        .collect()
}

#[test]
fn a_port_s_actions_follow_its_stack_its_file_and_its_live_state() {
    let down = || vec![Difference::Down { name: "ib0".into() }];
    let cases: Vec<(Stack, PortChange, Vec<&str>, bool)> = vec![
        (
            Stack::Ifupdown,
            change(Some("new\n"), vec![], true),
            vec![],
            false,
        ),
        (
            Stack::Ifupdown,
            change(Some("old\n"), down(), true),
            vec!["run ifdown ib0", "write /etc/x/ib0", "run ifup ib0"],
            false,
        ),
        (
            Stack::Ifupdown,
            change(None, vec![], true),
            vec!["write /etc/x/ib0"],
            false,
        ),
        (
            Stack::Ifupdown,
            change(Some("new\n"), down(), false),
            vec!["run ifup --force ib0"],
            false,
        ),
        (
            Stack::Ifcfg { nm: false },
            change(Some("new\n"), down(), false),
            vec!["run ifup ib0"],
            false,
        ),
        (
            Stack::Keyfile,
            change(None, down(), false),
            vec![
                "write /etc/x/ib0",
                "run nmcli connection load /etc/x/ib0",
                "run nmcli connection up iser-ib0",
            ],
            false,
        ),
        (
            Stack::Ifcfg { nm: true },
            change(Some("new\n"), down(), true),
            vec!["run nmcli connection up iser-ib0"],
            false,
        ),
        (
            Stack::Wicked,
            change(None, down(), false),
            vec!["write /etc/x/ib0", "run wicked ifreload ib0"],
            false,
        ),
        (
            Stack::Wicked,
            change(Some("new\n"), down(), false),
            vec!["run wicked ifup ib0"],
            false,
        ),
        (
            Stack::Netplan,
            change(None, vec![], false),
            vec!["write /etc/x/ib0"],
            true,
        ),
        (
            Stack::Netplan,
            change(Some("new\n"), down(), false),
            vec![],
            true,
        ),
    ];
    for (stack, c, want, netplan) in cases {
        let what = format!("{stack:?} {:?} {:?}", c.old, c.diff);
        let mut plan = Plan::new(crate::steps::StepName::Network);
        assert_eq!(port_actions(&mut plan, stack, c), netplan, "{what}");
        assert_eq!(lines(&plan), want, "{what}");
    }
}

#[test]
fn modes_the_port_cannot_run_are_refused() {
    let mut p = port(Some(true), Some(9000), None);
    assert!(check_mode(&p, IpoibMode::Connected, false).is_ok());
    let e = check_mode(&p, IpoibMode::Datagram, false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("ports[0].mtu: 9000 is above 4092"), "{e}");
    let e = check_mode(&p, IpoibMode::Connected, true)
        .unwrap_err()
        .to_string();
    assert!(e.contains("Enhanced IPoIB"), "{e}");
    // A dry run that does not know the link layer yet refuses nothing it cannot know.
    p.ib = None;
    assert!(check_mode(&p, IpoibMode::Datagram, false).is_ok());
}

#[test]
fn interfaces_is_made_to_read_interfaces_d_once() {
    assert_eq!(
        interfaces_source(Some("source /etc/network/interfaces.d/*\n")),
        None
    );
    assert_eq!(
        interfaces_source(None).unwrap(),
        "# Added by iser-wizard: the iSER ports are configured in files of their own.\nsource /etc/network/interfaces.d/*\n"
    );
    assert!(interfaces_source(Some("auto lo"))
        .unwrap()
        .starts_with("auto lo\n\n# Added by"));
}

#[test]
fn two_ports_come_up_at_once_after_every_file_is_written_and_one_port_stays_in_the_plan() {
    let named = |name: &str, old: Option<&str>| PortChange {
        name: name.into(),
        path: format!("/etc/x/{name}").into(),
        ..change(old, vec![Difference::Down { name: name.into() }], true)
    };
    // ifupdown, both files changed under ports that were up: down, write, then both up.
    let mut plan = Plan::new(crate::steps::StepName::Network);
    port_actions(&mut plan, Stack::Ifupdown, named("ib0", Some("old\n")));
    port_actions(&mut plan, Stack::Ifupdown, named("ib1", Some("old\n")));
    let ups = take_ups(&mut plan);
    assert_eq!(
        lines(&plan),
        [
            "run ifdown ib0",
            "write /etc/x/ib0",
            "run ifdown ib1",
            "write /etc/x/ib1"
        ]
    );
    let cmds: Vec<String> = ups.iter().map(|(c, _)| c.to_string()).collect();
    assert_eq!(cmds, ["ifup ib0", "ifup ib1"]);
    assert!(ups[0].1.contains("ib0"), "{:?}", ups[0].1);
    // NetworkManager: each profile loaded, then both activated together.
    let mut plan = Plan::new(crate::steps::StepName::Network);
    port_actions(&mut plan, Stack::Keyfile, named("ib0", None));
    port_actions(&mut plan, Stack::Keyfile, named("ib1", None));
    let ups = take_ups(&mut plan);
    assert_eq!(
        lines(&plan),
        [
            "write /etc/x/ib0",
            "run nmcli connection load /etc/x/ib0",
            "write /etc/x/ib1",
            "run nmcli connection load /etc/x/ib1"
        ]
    );
    assert_eq!(ups.len(), 2);
    // One port: nothing to run at once, its ifup stays an action of the plan.
    let mut plan = Plan::new(crate::steps::StepName::Network);
    port_actions(&mut plan, Stack::Ifupdown, named("ib0", None));
    assert!(take_ups(&mut plan).is_empty());
    assert_eq!(lines(&plan), ["write /etc/x/ib0", "run ifup ib0"]);
}
