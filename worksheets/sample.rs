//! Sample worksheets for the renderers' and the content model's tests: one with a distinctive
//! value in every field, one far longer than a page.

use super::*;

/// A target IQN long enough to wrap in any table cell.
pub const LONG_IQN: &str =
    "iqn.1992-08.com.netapp:5700.600a098000af3c2a000000005f3e1d7c.storage-array-number-one";
/// A 20-byte IPoIB hardware address.
pub const IPOIB_HW: &str = "80:00:02:08:fe:80:00:00:00:00:00:00:b8:59:9f:03:00:c3:e1:a2";

/// A worksheet with a distinctive value in every field.
pub fn full() -> Worksheet {
    let mut w = Worksheet {
        host: HostRecord {
            host_name: Some("stor-host-ZULU".into()),
            os: Some("Debian GNU/Linux 12 (bookworm)".into()),
            kernel: Some("6.1.0-26-amd64".into()),
            initiator_iqn: Some("iqn.1994-05.com.redhat:initiator-9f3c1e".into()),
            mapping_host_name: Some("MAPPED-zulu-01".into()),
            host_os_type: Some("Linux DM-MP (28)".into()),
        },
        target_iqn: Some(LONG_IQN.into()),
        subnets: vec![
            SubnetRecord {
                name: "A".into(),
                network: Some("192.168.130.0".into()),
                netmask: Some("255.255.255.0".into()),
                controller_a: Some("192.168.130.101".into()),
                controller_b: Some("192.168.130.102".into()),
                host_port: Some("192.168.130.21".into()),
                other_portals: vec!["192.168.130.103 (controller A, port 3)".into()],
            },
            SubnetRecord {
                name: "B".into(),
                network: Some("192.168.131.0".into()),
                netmask: Some("255.255.254.0".into()),
                controller_a: Some("192.168.131.111".into()),
                controller_b: Some("192.168.131.112".into()),
                host_port: Some("192.168.131.22".into()),
                other_portals: vec![],
            },
        ],
        ports: vec![
            PortRecord {
                netdev: Some("ibp65s0".into()),
                rdma_device: Some("mlx5_0".into()),
                rdma_port: Some(1),
                guid: Some("0xb8599f0300c3e1a2".into()),
                hw_address: Some(IPOIB_HW.into()),
                link_layer: Some("InfiniBand".into()),
                rate: Some("100 Gb/sec (4X EDR)".into()),
                state: Some("ACTIVE".into()),
                address: Some("192.168.130.21/24".into()),
            },
            PortRecord {
                netdev: Some("enp66s0f1".into()),
                rdma_device: Some("rxe7".into()),
                rdma_port: Some(2),
                guid: Some("0x0202c9fffe0e8ab1".into()),
                hw_address: Some("02:02:c9:0e:8a:b1".into()),
                link_layer: Some("Ethernet".into()),
                rate: Some("25 Gb/sec (1X EDR)".into()),
                state: Some("DOWN".into()),
                address: Some("192.168.131.22/23".into()),
            },
        ],
        subnet_manager: Some(SubnetManagerRecord {
            placement: "on this host".into(),
            priorities: vec![
                ("0xb8599f0300c3e1a2".into(), 14),
                ("0xb8599f0300c3e1a3".into(), 3),
            ],
        }),
        sessions: vec![
            SessionRecord {
                iface: "iser-ibp65s0".into(),
                portal: "192.168.130.101:3260".into(),
                transport: "iser".into(),
                state: "LOGGED_IN".into(),
            },
            SessionRecord {
                iface: "iser-enp66s0f1".into(),
                portal: "192.168.131.112:3260".into(),
                transport: "iser".into(),
                state: "FREE".into(),
            },
        ],
        volumes: vec![VolumeRecord {
            wwid: Some("3600a098000af3c2a00000b4d5f3e1d7c".into()),
            vendor_product: Some("NETAPP,INF-01-00".into()),
            size: Some("1.5 TiB".into()),
            paths: vec![
                ("sdb".into(), "active ready running".into()),
                ("sdq".into(), "failed faulty offline".into()),
            ],
            partition: Some("/dev/mapper/3600a098000af3c2a00000b4d5f3e1d7c-part1".into()),
            filesystem: Some("xfs".into()),
            uuid: Some("5c0f3a1e-9b2d-4e8f-a6c7-1d2e3f4a5b6c".into()),
            mount_point: Some("/srv/iser-volume".into()),
            fstab_line: Some(
                "UUID=5c0f3a1e-9b2d-4e8f-a6c7-1d2e3f4a5b6c /srv/iser-volume xfs \
                 defaults,_netdev,nofail,x-systemd.requires=multipathd.service 0 0"
                    .into(),
            ),
            ..Default::default()
        }],
        verification: Some(VerificationRecord {
            bytes: 1_073_741_824,
            result: "passed".into(),
            write_mb_s: Some(1234.5),
            read_mb_s: Some(2345.6),
            at: Some("2026-03-14T09:42:17Z".into()),
            mount_point: Some("/srv/iser-volume".into()),
            fs_bytes: Some(4_397_046_890_496),
            ..Default::default()
        }),
        steps: vec![],
        notes: vec![
            "opensm priority raised so this host wins the election".into(),
            "port enp66s0f1 is DOWN: check the cable".into(),
        ],
        array: None,
        bench: Some(BenchSheet {
            label: "before-tune".into(),
            started_at: "2024-05-01T10:30:00Z".into(),
            mount_point: "/srv/bench-vol".into(),
            link: Some("200.00 Gb/s".into()),
            runs: "5 x 30 s".into(),
            workloads: vec![
                BenchWorkloadRecord {
                    workload: "rand4k-read".into(),
                    unit: "IOPS".into(),
                    values: vec![729817.0, 723531.0, 728540.0, 727669.0, 721322.0],
                    median: "728 kIOPS".into(),
                    pct_of_link: Some(11.9),
                    p99: Some("1.23 ms".into()),
                    balance: vec!["sdb 49.9%".into(), "sdd 50.1%".into()],
                },
                BenchWorkloadRecord {
                    workload: "seq1m-write".into(),
                    unit: "B/s".into(),
                    values: vec![9.1e9, 9.3e9, 9.2e9],
                    median: "9.20 GB/s".into(),
                    pct_of_link: None,
                    p99: None,
                    balance: vec![
                        "sdb 80.0%".into(),
                        "sdd 20.0%".into(),
                        "imbalance in the active group".into(),
                    ],
                },
            ],
        }),
        detached: vec![],
    };
    w.step_timed("preflight", "2024-05-01T10:00:01Z", Some(12.34));
    w.step_completed("subnet-manager", "2024-05-01T10:02:33Z");
    w
}

/// A worksheet far longer than a page: 40 ports, 60 sessions, 30 notes.
pub fn large() -> Worksheet {
    let mut w = full();
    let port = w.ports[0].clone();
    w.ports = (0..40)
        .map(|i| PortRecord {
            netdev: Some(format!("ib{i}")),
            ..port.clone()
        })
        .collect();
    let session = w.sessions[0].clone();
    w.sessions = (0..60)
        .map(|i| SessionRecord {
            portal: format!("192.168.130.{i}:3260"),
            ..session.clone()
        })
        .collect();
    w.notes = (0..30)
        .map(|i| format!("note {i}: the quick brown fox jumps over the lazy dog"))
        .collect();
    w
}
