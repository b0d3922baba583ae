//! Commands from the outside: exit codes, messages, and that a refused or dry run leaves
//! every file as it was (CONTRACT.md).

use std::process::Command;

use crate::util::{run, snapshot, text, trees};

fn template() -> serde_json::Value {
    let o = run(&["answers", "--template"], None);
    assert_eq!(o.status.code(), Some(0));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn refused_and_untouched(answers: &str, expect: &[&str]) {
    let t = trees();
    let before = (snapshot(&t.root), snapshot(&t.state));
    let o = run(
        &[
            "run",
            "--answers",
            "-",
            "--root",
            t.root.to_str().unwrap(),
            "--state-dir",
            t.state.to_str().unwrap(),
        ],
        Some(answers),
    );
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "stderr: {err}");
    for e in expect {
        assert!(err.contains(e), "missing {e:?} in:\n{err}");
    }
    assert!(err.contains("nothing was changed"), "{err}");
    assert_eq!(before, (snapshot(&t.root), snapshot(&t.state)));
}

#[test]
fn malformed_answers_are_refused_and_nothing_is_touched() {
    refused_and_untouched(
        "{\"version\": 1,\n \"host\": }",
        &["line 2 column", "not valid JSON"],
    );
}

#[test]
fn mistyped_answers_list_every_problem_and_nothing_is_touched() {
    let mut v = template();
    v["volume"]["mountpoint"] = v["volume"]["mount_point"].take();
    v["volume"].as_object_mut().unwrap().remove("mount_point");
    v["iscsi"]["replacement_timeout"] = serde_json::json!("20");
    v["ports"][0]["address"] = serde_json::json!("192.168.130.10");
    refused_and_untouched(
        &v.to_string(),
        &[
            "4 problems",
            "volume.mountpoint: unknown key: did you mean \"mount_point\"?",
            "volume.mount_point: is missing",
            "iscsi.replacement_timeout: is a string",
            "ports[0].address: \"192.168.130.10\" is not an IPv4 address with prefix length",
        ],
    );
}

#[test]
fn contradictory_answers_are_refused_and_nothing_is_touched() {
    let mut v = template();
    v["target"]["portals"][3]["address"] = serde_json::json!("192.168.132.102");
    v["target"]["discovery"] = serde_json::json!("manual");
    v["target"]["iqn"] = serde_json::json!("discover");
    refused_and_untouched(
        &v.to_string(),
        &[
            "target.portals[3].address: 192.168.132.102 is in no host port's subnet",
            "target.iqn: \"discover\" needs SendTargets discovery",
        ],
    );
}

#[test]
fn no_terminal_and_no_answers_is_a_usage_error() {
    let t = trees();
    let before = snapshot(&t.state);
    let o = run(&["run", "--state-dir", t.state.to_str().unwrap()], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("--answers FILE"),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(before, snapshot(&t.state));
    // The bare command is `run`.
    let o = run(&["--state-dir", t.state.to_str().unwrap()], None);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn a_dry_run_writes_nothing_anywhere() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(root.join("etc/os-release"), "ID=debian\nVERSION_ID=12\n").unwrap();
    let state = tmp.path().join("state-never-created");
    let before = snapshot(tmp.path());
    let answers = template().to_string();
    for args in [
        vec!["run", "--dry-run"],
        vec!["run", "--dry-run", "--answers", "-"],
    ] {
        let mut a = args.clone();
        a.extend(["--root", root.to_str().unwrap()]);
        a.extend(["--state-dir", state.to_str().unwrap()]);
        let stdin = a.contains(&"-").then_some(answers.as_str());
        let o = run(&a, stdin);
        let out = text(&o.stdout);
        assert!(out.contains("[1/9] preflight"), "{out}");
        assert!(out.contains("Dry run: nothing was changed."), "{out}");
        // Unbuilt steps say so plainly, and the dry run then exits 1.
        if out.contains("not built yet") {
            assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
        }
    }
    assert!(!state.exists());
    assert_eq!(before, snapshot(tmp.path()));
}

#[test]
fn the_worksheet_renders_from_an_empty_and_a_partial_state() {
    let tmp = tempfile::tempdir().unwrap();
    // A state directory that does not exist is a mistyped path, not a blank form.
    let none = tmp.path().join("none");
    let o = run(&["worksheet", "--state-dir", none.to_str().unwrap()], None);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains(none.to_str().unwrap()));
    // One with no run recorded prints the blank form, and says so on stderr.
    let o = run(
        &["worksheet", "--state-dir", tmp.path().to_str().unwrap()],
        None,
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("no run is recorded"),
        "{}",
        text(&o.stderr)
    );
    let md = text(&o.stdout);
    assert!(md.contains("| 1 | Software initiator IQN |  |"), "{md}");
    assert!(md.contains("## Subnet B"), "{md}");

    std::fs::write(
        tmp.path().join("worksheet.json"),
        r#"{"host": {"initiator_iqn": "iqn.1993-08.org.debian:01:abc", "kernel": "6.1.0-26-amd64"},
            "target_iqn": "iqn.2002-09.com.lab:array",
            "steps": [{"step": "preflight", "completed_at": "2026-11-22T16:00:00Z"}]}"#,
    )
    .unwrap();
    let out_file = tmp.path().join("sheet.md");
    let o = run(
        &[
            "worksheet",
            "--format",
            "markdown",
            "--state-dir",
            tmp.path().to_str().unwrap(),
            "--out",
            out_file.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let md = std::fs::read_to_string(out_file).unwrap();
    assert!(md.contains("| 1 | Software initiator IQN | iqn.1993-08.org.debian:01:abc |"));
    assert!(md.contains("| 6 | Target port | iqn.2002-09.com.lab:array |"));
    assert!(md.contains("| preflight | 2026-11-22T16:00:00Z |"));
    assert!(md.contains("| 5 | Controller A, port 1 |  |"));
}

#[test]
fn the_template_is_accepted_as_it_is() {
    let o = run(&["answers", "--template"], None);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(iser_wizard::answers::validate(&v, &|_| None).is_empty());
    let o = run(&["answers"], None);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        vec!["run", "--only", "preflight,bogus"],
        vec!["run", "--from", "nope"],
        vec!["run", "--root", "relative/dir"],
        vec!["verify", "/mnt", "--size", "12 parsecs"],
        vec!["verify", "/mnt", "--size", "4097B"],
        vec!["verify", "relative", "--size", "1MiB"],
        vec!["run", "--only", "preflight", "--from", "network"],
        vec!["--no-such-flag"],
    ] {
        let o = run(&args, None);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o.stderr));
    }
}

#[test]
fn verify_names_a_mount_point_that_does_not_exist() {
    let o = run(&["verify", "/no/such/mount-point", "--size", "1MiB"], None);
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert!(
        err.contains("/no/such/mount-point: no such directory"),
        "{err}"
    );
}

#[test]
fn version_prints_the_crate_version() {
    let o = run(&["--version"], None);
    assert_eq!(o.status.code(), Some(0));
    assert!(text(&o.stdout).contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn the_worksheet_renders_as_pdf() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("worksheet.json"),
        r#"{"target_iqn": "iqn.2002-09.com.lab:array"}"#,
    )
    .unwrap();
    let out = tmp.path().join("w.pdf");
    let o = run(
        &[
            "worksheet",
            "--format",
            "pdf",
            "--paper",
            "letter",
            "--state-dir",
            tmp.path().to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let pdf = std::fs::read(&out).unwrap();
    assert!(pdf.starts_with(b"%PDF-"));
    if let Ok(t) = Command::new("pdftotext")
        .args([out.to_str().unwrap(), "-"])
        .output()
    {
        assert!(
            text(&t.stdout).contains("iqn.2002-09.com.lab:array"),
            "{}",
            text(&t.stdout)
        );
    } else {
        eprintln!("note: pdftotext is not installed; skipping the PDF read-back");
    }
}

#[test]
fn status_on_a_host_never_set_up_is_not_configured() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    for dir in [tmp.path(), state.as_path()] {
        let args = ["status", "--state-dir", dir.to_str().unwrap()];
        let o = run(&args, None);
        assert_eq!(o.status.code(), Some(4), "{}", text(&o.stderr));
        assert!(
            text(&o.stdout).contains("not configured"),
            "{}",
            text(&o.stdout)
        );
        assert!(
            text(&o.stderr).contains("no completed run"),
            "{}",
            text(&o.stderr)
        );

        let o = run(&[&args[..], &["--json"]].concat(), None);
        assert_eq!(o.status.code(), Some(4), "{}", text(&o.stderr));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["schema_version"], 1, "{v}");
        assert_eq!(v["status"], "not-configured", "{v}");
        assert_eq!(v["healthy"], false, "{v}");
        let at = v["checked_at"].as_str().unwrap_or_default();
        assert!(at.len() == 20 && at.ends_with('Z'), "{v}");
    }
    // status reads; it creates nothing.
    assert!(!state.exists());
}

#[test]
fn a_state_file_of_another_schema_version_is_refused() {
    let t = trees();
    std::fs::write(t.state.join("state.json"), "{\"version\": 99}\n").unwrap();
    let o = run(&["status", "--state-dir", t.state.to_str().unwrap()], None);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("state.json: schema version 99"), "{err}");
}

#[test]
fn a_second_run_on_one_state_dir_is_refused_naming_the_holder() {
    let t = trees();
    let held = iser_wizard::state::StateDir::new(&t.state).lock().unwrap();
    let before = (snapshot(&t.root), snapshot(&t.state));
    let answers = template().to_string();
    let o = run(
        &[
            "run",
            "--answers",
            "-",
            "--root",
            t.root.to_str().unwrap(),
            "--state-dir",
            t.state.to_str().unwrap(),
        ],
        Some(&answers),
    );
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!("pid {}", std::process::id())),
        "{err}"
    );
    assert!(err.contains("nothing was changed"), "{err}");
    assert_eq!(before, (snapshot(&t.root), snapshot(&t.state)));
    drop(held);
}
