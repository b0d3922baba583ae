//! A dry run on a host that is not prepared yet plans every step (the preview an admin shows
//! a change board before anything is installed).

use crate::util::{run, snapshot, text};

fn template() -> serde_json::Value {
    let o = run(&["answers", "--template"], None);
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn a_dry_run_on_a_bare_host_plans_every_step_and_writes_nothing() {
    // A host that is not prepared yet: only its os-release, no open-iscsi, no
    // multipath-tools, no RDMA device. The dry run is the preview an admin shows a change
    // board: it must plan every step from the answers, exit 0, and write nothing.
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(
        root.join("etc/os-release"),
        "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\n\
         VERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\nID=debian\n",
    )
    .unwrap();
    let state = tmp.path().join("state");
    let answers = tmp.path().join("answers.json");
    std::fs::write(&answers, serde_json::to_vec(&template()).unwrap()).unwrap();
    let before = snapshot(tmp.path());
    let o = run(
        &[
            "run",
            "--dry-run",
            "--answers",
            answers.to_str().unwrap(),
            "--root",
            root.to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
        ],
        None,
    );
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}\n{}", text(&o.stderr));
    assert!(!out.contains("cannot plan"), "{out}");
    for (i, step) in [
        "preflight",
        "subnet-manager",
        "network",
        "iscsi",
        "array",
        "sessions",
        "multipath",
        "filesystem",
        "verify",
    ]
    .iter()
    .enumerate()
    {
        assert!(out.contains(&format!("[{}/9] {step}\n", i + 1)), "{out}");
    }
    assert!(out.contains("<initiator IQN from iscsi-iname>"), "{out}");
    assert!(out.contains("are learned by the real run"), "{out}");
    assert!(out.contains("Dry run: nothing was changed."), "{out}");
    assert_eq!(before, snapshot(tmp.path()));
}
