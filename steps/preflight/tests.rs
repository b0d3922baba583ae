use super::*;
use crate::prompt::Asker;
use crate::steps::facts::{Distro, ModuleState};
use crate::steps::fake::FakeHost;
use crate::steps::{CmdOutput, Facts, NoProgress, Options};
use crate::worksheets::Worksheet;

#[test]
fn os_release_of_each_supported_family() {
    let cases = [
        ("ID=\"rocky\"\nVERSION_ID=\"9.4\"\nPRETTY_NAME=\"Rocky Linux 9.4 (Blue Onyx)\"\nID_LIKE=\"rhel centos fedora\"\n", Some(Distro::Rhel), true),
        ("ID=\"sles\"\nVERSION_ID=\"15.5\"\n", Some(Distro::Sles), true),
        ("ID=ubuntu\nVERSION_ID=\"24.04\"\nID_LIKE=debian\n", Some(Distro::Ubuntu), true),
        ("ID=ubuntu\nVERSION_ID=\"20.04\"\n", Some(Distro::Ubuntu), false),
        ("ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n", Some(Distro::Debian), true),
        ("ID=linuxmint\nID_LIKE=\"ubuntu debian\"\nVERSION_ID=\"21.3\"\n", Some(Distro::Ubuntu), false),
        ("ID=\"ol\"\nID_LIKE=\"fedora\"\nVERSION_ID=\"9.3\"\n", Some(Distro::Rhel), false),
        ("ID=arch\n", None, false),
    ];
    for (text, distro, supported) in cases {
        let os = parse_os_release(text);
        assert_eq!((os.distro, os.supported), (distro, supported), "{text}");
    }
    assert_eq!(
        parse_os_release(cases[0].0).pretty_name,
        "Rocky Linux 9.4 (Blue Onyx)"
    );
}

fn debian_host() -> FakeHost {
    let h = FakeHost::new();
    h.put_file(
        "/etc/os-release",
        "ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n",
    );
    h.put_file(
        "/sys/class/infiniband/rxe0/ports/1/link_layer",
        "Ethernet\n",
    );
    h.put_file("/sys/module/ib_iser/initstate", "live\n");
    h.put_file("/sys/module/rdma_rxe/initstate", "live\n");
    h.allow(&["uname", "-r"], CmdOutput::ok("6.1.0-26-amd64\n"));
    h.allow(&["uname", "-n"], CmdOutput::ok("db01\n"));
    h.allow(&["getenforce"], CmdOutput::ok("Disabled\n"));
    h
}

fn plan_with(
    h: &FakeHost,
    answers: serde_json::Value,
    dry_run: bool,
) -> (Result<Plan, StepError>, Facts, Worksheet, Preflight) {
    let mut ask = Asker::unattended(answers);
    let mut facts = Facts::default();
    let mut sheet = Worksheet::default();
    let options = Options {
        dry_run,
        ..Default::default()
    };
    let mut cx = Ctx {
        host: h,
        ask: &mut ask,
        facts: &mut facts,
        sheet: &mut sheet,
        progress: &NoProgress,
        options: &options,
    };
    let mut step = Preflight::default();
    let r = step.plan(&mut cx);
    (r, facts, sheet, step)
}

#[test]
fn a_ready_roce_host_has_nothing_to_do_and_fills_the_worksheet() {
    let h = debian_host();
    let (plan, facts, sheet, _) = plan_with(&h, serde_json::json!({"fabric": "roce"}), false);
    let plan = plan.unwrap();
    assert!(plan.is_empty(), "{}", plan.render());
    assert_eq!(facts.kernel.as_deref(), Some("6.1.0-26-amd64"));
    assert_eq!(facts.modules.get("ib_iser"), Some(&ModuleState::Loaded));
    assert_eq!(sheet.host.kernel.as_deref(), Some("6.1.0-26-amd64"));
    assert_eq!(sheet.host.host_name.as_deref(), Some("db01"));
    assert_eq!(
        sheet.host.os.as_deref(),
        Some("Debian GNU/Linux 12 (bookworm)")
    );
    assert!(h.changes().is_empty());
}

#[test]
fn missing_programs_are_installed_by_package() {
    let h = debian_host().only_programs(&[
        "modprobe",
        "ip",
        "ping",
        "systemctl",
        "lsblk",
        "blkid",
        "wipefs",
        "findmnt",
        "mount",
        "mkfs.ext4",
        "udevadm",
    ]);
    let (plan, facts, _, _) = plan_with(&h, serde_json::json!({"fabric": "roce"}), false);
    let plan = plan.unwrap();
    let text = plan.render();
    assert!(
        text.contains(
            "apt-get install -y --no-install-recommends ifupdown multipath-tools open-iscsi parted"
        ),
        "{text}"
    );
    assert!(
        text.contains("missing programs: iscsiadm (iscsi)"),
        "{text}"
    );
    assert_eq!(
        facts.missing_programs.len(),
        6,
        "{:?}",
        facts.missing_programs
    );
}

#[test]
fn an_infiniband_host_needs_opensm_and_ipoib() {
    let h = debian_host().only_programs(&[
        "modprobe",
        "ip",
        "ping",
        "systemctl",
        "iscsiadm",
        "iscsi-iname",
        "multipath",
        "multipathd",
        "lsblk",
        "blkid",
        "wipefs",
        "findmnt",
        "parted",
        "mount",
        "mkfs.ext4",
        "udevadm",
    ]);
    h.put_file(
        "/sys/class/infiniband/mlx5_0/ports/1/link_layer",
        "InfiniBand\n",
    );
    h.put_file("/sys/module/ib_ipoib/initstate", "live\n");
    let (plan, _, _, _) = plan_with(&h, serde_json::json!({}), false);
    let text = plan.unwrap().render();
    assert!(text.contains("infiniband-diags opensm"), "{text}");
}

#[test]
fn no_rdma_device_and_no_root_stop_a_real_run_but_not_a_dry_run() {
    let h = FakeHost::new().not_root();
    h.put_file("/etc/os-release", "ID=debian\nVERSION_ID=12\n");
    h.allow(&["uname", "-r"], CmdOutput::ok("6.1.0\n"));
    h.allow(&["uname", "-n"], CmdOutput::ok("h\n"));
    h.allow(&["getenforce"], CmdOutput::ok("Enforcing\n"));
    h.allow(
        &["modprobe", "-n", "-q", "ib_iser"],
        CmdOutput::status(1, "", ""),
    );
    let (r, _, _, _) = plan_with(&h, serde_json::json!({}), false);
    let msg = r.unwrap_err().to_string();
    assert!(msg.contains("not running as root"), "{msg}");
    assert!(msg.contains("no RDMA device"), "{msg}");
    assert!(msg.contains("ib_iser is not available"), "{msg}");
    let (r, _, _, _) = plan_with(&h, serde_json::json!({}), true);
    let text = r.unwrap().render();
    assert!(
        text.contains("would stop here: not running as root"),
        "{text}"
    );
    assert!(text.contains("SELinux is enforcing"), "{text}");
}

#[test]
fn an_unsupported_release_needs_the_operators_consent() {
    let h = debian_host();
    h.put_file(
        "/etc/os-release",
        "ID=ubuntu\nVERSION_ID=\"20.04\"\nPRETTY_NAME=\"Ubuntu 20.04.6 LTS\"\n",
    );
    let (r, _, _, _) = plan_with(&h, serde_json::json!({"fabric": "roce"}), false);
    let msg = r.unwrap_err().to_string();
    assert!(msg.contains("host.allow_unsupported_os"), "{msg}");
    let (r, _, _, _) = plan_with(
        &h,
        serde_json::json!({"fabric": "roce", "host": {"allow_unsupported_os": true}}),
        false,
    );
    assert!(r
        .unwrap()
        .render()
        .contains("continuing at the operator's risk"));
}

#[test]
fn a_bare_host_dry_run_plans_the_installs_and_says_where_a_real_run_stops() {
    // Debian 12, no RDMA device, none of the iSCSI, multipath or RDMA tools.
    let h = FakeHost::new().only_programs(&["ip", "systemctl", "lsblk", "mount", "modprobe"]);
    h.put_file(
        "/etc/os-release",
        "ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n",
    );
    h.allow(&["uname", "-r"], CmdOutput::ok("6.1.0-26-amd64\n"));
    h.allow(&["uname", "-n"], CmdOutput::ok("db01\n"));
    h.allow(
        &["modprobe", "-n", "-q", "ib_iser"],
        CmdOutput::status(1, "", ""),
    );
    let answers = serde_json::json!({"fabric": "auto", "multipath": {"rebuild_initramfs": true}});
    let (plan, facts, _, step) = plan_with(&h, answers, true);
    let text = plan.unwrap().render();
    assert!(
        text.contains("would stop here: no RDMA device under /sys/class/infiniband"),
        "{text}"
    );
    assert!(
        text.contains(
            "would stop here: kernel module ib_iser is not available for kernel 6.1.0-26-amd64"
        ),
        "{text}"
    );
    assert!(text.contains("1. run   apt-get update"), "{text}");
    assert!(
        text.contains("apt-get install -y --no-install-recommends e2fsprogs ifupdown initramfs-tools iputils-ping multipath-tools open-iscsi parted udev util-linux"),
        "{text}"
    );
    // No InfiniBand port is seen, so no InfiniBand tools are installed for "auto".
    assert!(!text.contains("opensm"), "{text}");
    // What the later steps read is known, the missing programs among it; nothing changed.
    assert_eq!(facts.os.and_then(|o| o.distro), Some(Distro::Debian));
    assert_eq!(step.missing(), facts.missing_programs);
    assert!(h.changes().is_empty());
}

#[test]
fn verify_fails_naming_what_is_still_missing() {
    let h = debian_host().only_programs(&[
        "modprobe",
        "ip",
        "ping",
        "systemctl",
        "iscsiadm",
        "iscsi-iname",
        "multipathd",
        "udevadm",
        "lsblk",
        "blkid",
        "wipefs",
        "findmnt",
        "parted",
        "mount",
        "mkfs.ext4",
        "ifup",
    ]);
    let (plan, facts, _, mut step) = plan_with(&h, serde_json::json!({"fabric": "roce"}), false);
    assert_eq!(plan.unwrap().actions.len(), 2);
    let mut ask = Asker::unattended(serde_json::json!({}));
    let mut facts = facts;
    let mut sheet = Worksheet::default();
    let options = Options::default();
    let mut cx = Ctx {
        host: &h,
        ask: &mut ask,
        facts: &mut facts,
        sheet: &mut sheet,
        progress: &NoProgress,
        options: &options,
    };
    let err = step.verify(&mut cx).unwrap_err().to_string();
    assert_eq!(
        err,
        "still missing after installing: multipath (package multipath-tools)"
    );
    assert_eq!(cx.facts.missing_programs.len(), 1);
}

mod decisions {
    use std::collections::BTreeSet;

    use super::super::decide::*;
    use crate::settings::{Fabric, FsType};
    use crate::steps::facts::{Distro, ModuleState};
    use crate::steps::preflight::parse_os_release;

    fn want(fabric: Fabric) -> Wanted {
        Wanted {
            fabric,
            run_on_host: true,
            filesystem: FsType::Ext4,
            rebuild_initramfs: false,
        }
    }

    fn seen(distro: Distro, has_ib: bool, installed: &[&str]) -> Observed {
        Observed {
            os: parse_os_release("ID=debian\nVERSION_ID=12\n"),
            distro,
            kernel: Some("6.1.0".into()),
            hostname: None,
            root: true,
            selinux: None,
            rdma_devices: vec!["mlx5_0".into()],
            has_ib,
            modules: vec![("ib_iser".into(), ModuleState::Loaded)],
            installed: installed.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn every_program_that_can_be_needed_is_one_observe_checks() {
        let all: BTreeSet<String> = BTreeSet::new();
        for distro in [Distro::Rhel, Distro::Sles, Distro::Ubuntu, Distro::Debian] {
            for fabric in [Fabric::Auto, Fabric::Infiniband, Fabric::Roce] {
                for fs in [FsType::Ext4, FsType::Xfs] {
                    let w = Wanted {
                        filesystem: fs,
                        rebuild_initramfs: true,
                        ..want(fabric)
                    };
                    for (p, _) in needed_programs(&w, distro, true, &all) {
                        assert!(PROGRAMS.contains(&p), "{p} is not in PROGRAMS");
                        assert!(
                            distro.package_for(p).is_some(),
                            "{p} has no package on {distro:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn infiniband_tools_follow_the_fabric_and_run_on_host() {
        let cases = [
            (Fabric::Auto, true, true, vec!["ibstat", "opensm"]),
            (Fabric::Auto, false, true, vec![]),
            (Fabric::Infiniband, false, true, vec!["ibstat", "opensm"]),
            (Fabric::Infiniband, true, false, vec!["ibstat"]),
            (Fabric::Roce, true, true, vec![]),
        ];
        for (fabric, has_ib, run_on_host, expect) in cases {
            let w = Wanted {
                run_on_host,
                ..want(fabric)
            };
            let got: Vec<String> = missing(&w, &seen(Distro::Debian, has_ib, &[]))
                .into_iter()
                .filter(|m| m.needed_by == "subnet-manager")
                .map(|m| m.program)
                .collect();
            assert_eq!(
                got, expect,
                "{fabric:?} has_ib={has_ib} run_on_host={run_on_host}"
            );
        }
    }

    #[test]
    fn the_network_tool_follows_the_distro_and_what_is_installed() {
        let cases: [(Distro, &[&str], Option<&str>); 6] = [
            (Distro::Debian, &[], Some("ifup")),
            (Distro::Debian, &["nmcli"], None),
            (Distro::Ubuntu, &["nmcli"], Some("netplan")),
            (Distro::Sles, &[], Some("wicked")),
            (Distro::Rhel, &[], Some("nmcli")),
            (Distro::Rhel, &["ifup"], None),
        ];
        for (distro, installed, expect) in cases {
            let got = missing(&want(Fabric::Roce), &seen(distro, false, installed))
                .into_iter()
                .find(|m| m.needed_by == "network" && !["ip", "ping"].contains(&m.program.as_str()))
                .map(|m| m.program);
            assert_eq!(got.as_deref(), expect, "{distro:?} {installed:?}");
        }
    }

    #[test]
    fn blockers_in_the_order_the_operator_reads_them() {
        let mut s = seen(Distro::Debian, true, &[]);
        assert!(blockers(&s).is_empty());
        s.root = false;
        s.rdma_devices.clear();
        s.modules = vec![
            ("ib_iser".into(), ModuleState::Missing),
            ("ib_ipoib".into(), ModuleState::Missing),
            ("mlx5_ib".into(), ModuleState::Available),
        ];
        let text: Vec<String> = blockers(&s).iter().map(ToString::to_string).collect();
        assert_eq!(text.len(), 4, "{text:?}");
        assert!(text[0].starts_with("not running as root"));
        assert!(text[1].starts_with("no RDMA device"));
        assert!(text[2].starts_with("kernel module ib_iser is not available for kernel 6.1.0"));
        assert_eq!(
            text[3],
            "kernel module ib_ipoib (IPoIB) is not available: InfiniBand ports need it"
        );
    }

    #[test]
    fn packages_once_each_and_the_install_commands_per_distro() {
        let m = missing(&want(Fabric::Roce), &seen(Distro::Rhel, false, &[]));
        let p = packages(&m);
        assert!(p.windows(2).all(|w| w[0] < w[1]), "{p:?}");
        assert!(p.contains(&"device-mapper-multipath".to_string()), "{p:?}");
        let show = |d: Distro| -> Vec<String> {
            install_commands(d, &["a".into(), "b".into()])
                .iter()
                .map(ToString::to_string)
                .collect()
        };
        assert_eq!(show(Distro::Rhel), ["dnf install -y a b"]);
        assert_eq!(show(Distro::Sles), ["zypper --non-interactive install a b"]);
        assert_eq!(
            show(Distro::Ubuntu),
            [
                "apt-get update",
                "apt-get install -y --no-install-recommends a b"
            ]
        );
    }
}

#[test]
fn kernel_and_host_name_are_read_from_proc_without_uname() {
    // No `uname` is allowed: a run of it would be an unexpected command.
    let h = FakeHost::new();
    h.put_file(
        "/etc/os-release",
        "ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n",
    );
    h.put_file(
        "/sys/class/infiniband/rxe0/ports/1/link_layer",
        "Ethernet\n",
    );
    h.put_file("/sys/module/ib_iser/initstate", "live\n");
    h.put_file("/sys/module/rdma_rxe/initstate", "live\n");
    h.put_file("/proc/sys/kernel/osrelease", "6.12.48-amd64\n");
    h.put_file("/proc/sys/kernel/hostname", "db02\n");
    h.allow(&["getenforce"], CmdOutput::ok("Disabled\n"));
    let (plan, facts, _, _) = plan_with(&h, serde_json::json!({"fabric": "roce"}), false);
    plan.unwrap();
    assert_eq!(facts.kernel.as_deref(), Some("6.12.48-amd64"));
    assert!(
        !h.ran().iter().any(|c| c.starts_with("uname")),
        "{:?}",
        h.ran()
    );
    h.finish();
}
