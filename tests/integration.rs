//! Integration tests: the `iser-wizard` binary seen from the outside (CONTRACT.md).

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_iser-wizard"));
    c.stdin(Stdio::null());
    c
}

fn run(args: &[&str], stdin: Option<&str>) -> Output {
    let mut c = bin();
    c.args(args);
    if let Some(text) = stdin {
        c.stdin(Stdio::piped());
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        return child.wait_with_output().unwrap();
    }
    c.output().unwrap()
}

fn text(o: &[u8]) -> String {
    String::from_utf8_lossy(o).into_owned()
}

/// Everything about a tree that a change could touch: paths, types, modes, sizes, contents,
/// modification times.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (u32, u64, i64, i64, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let m = std::fs::symlink_metadata(&d).unwrap();
        out.insert(
            d.clone(),
            (m.mode(), m.size(), m.mtime(), m.mtime_nsec(), Vec::new()),
        );
        if m.is_dir() {
            for e in std::fs::read_dir(&d).unwrap() {
                stack.push(e.unwrap().path());
            }
        } else {
            let bytes = std::fs::read(&d).unwrap();
            out.get_mut(&d).unwrap().4 = bytes;
        }
    }
    out
}

struct Trees {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    state: PathBuf,
}

fn trees() -> Trees {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let state = tmp.path().join("state");
    std::fs::create_dir_all(root.join("etc/iscsi")).unwrap();
    std::fs::write(
        root.join("etc/iscsi/iscsid.conf"),
        "node.startup = manual\n",
    )
    .unwrap();
    std::fs::create_dir_all(state.join("backups")).unwrap();
    std::fs::write(state.join("state.json"), "{\"version\": 1}\n").unwrap();
    Trees {
        _tmp: tmp,
        root,
        state,
    }
}

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
        assert!(out.contains("[1/8] preflight"), "{out}");
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
    let o = run(
        &[
            "worksheet",
            "--state-dir",
            tmp.path().join("none").to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
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
fn status_without_a_recorded_run_is_degraded() {
    let tmp = tempfile::tempdir().unwrap();
    for extra in [&[][..], &["--json"][..]] {
        let mut args = vec!["status", "--state-dir", tmp.path().to_str().unwrap()];
        args.extend_from_slice(extra);
        let o = run(&args, None);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
        assert!(
            text(&o.stdout).contains("no run recorded"),
            "{}",
            text(&o.stdout)
        );
    }
}
