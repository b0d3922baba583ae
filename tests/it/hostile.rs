//! Hostile and mistyped answers files (issue: hold under hostile input): each is refused at
//! the answers stage with exit 2, a message that names the cause, and nothing touched.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::util::{bin, run, snapshot, text, trees};

fn template_text() -> String {
    let o = run(&["answers", "--template"], None);
    assert_eq!(o.status.code(), Some(0));
    text(&o.stdout)
}

/// Run unattended with `answers` as the file at `file` (written by `make`), expecting exit 2
/// with each of `expect` in stderr and both trees untouched.
fn refused(
    make: impl FnOnce(&std::path::Path, &std::path::Path),
    extra: &[&str],
    expect: &[&str],
) -> String {
    let t = trees();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("answers.json");
    make(&file, &t.state);
    let before = (snapshot(&t.root), snapshot(&t.state));
    let mut args = vec![
        "run",
        "--answers",
        file.to_str().unwrap(),
        "--root",
        t.root.to_str().unwrap(),
        "--state-dir",
        t.state.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let mut child = bin()
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A file the wizard waits on forever (a FIFO) must fail this test, not hang it.
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(30) {
            child.kill().unwrap();
            panic!("the wizard did not return within 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = child.wait_with_output().unwrap();
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "stderr: {err}");
    for e in expect {
        assert!(err.contains(e), "missing {e:?} in:\n{err}");
    }
    assert_eq!(before, (snapshot(&t.root), snapshot(&t.state)));
    err
}

fn with_text(s: String) -> impl FnOnce(&std::path::Path, &std::path::Path) {
    move |p, _| std::fs::write(p, s).unwrap()
}

#[test]
fn duplicate_keys_are_refused_not_silently_the_last() {
    let t = template_text().replacen(
        "\"fabric\": \"auto\",",
        "\"fabric\": \"auto\", \"fabric\": \"roce\",",
        1,
    );
    refused(with_text(t), &[], &["fabric: is given twice"]);
}

#[test]
fn an_answers_file_that_is_a_fifo_is_refused_not_waited_on() {
    refused(
        |p, _| {
            let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
            // SAFETY: a valid NUL-terminated path; mkfifo has no other preconditions.
            assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        },
        &[],
        &["is not a regular file"],
    );
}

#[test]
fn an_answers_file_over_1_mib_is_refused_unread() {
    let big = format!("{{\"version\": 1, \"x\": \"{}\"}}", "a".repeat(2 << 20));
    refused(with_text(big), &[], &["larger than 1024 KiB"]);
}

#[test]
fn a_long_value_is_not_echoed_whole() {
    let long = "a".repeat(50_000);
    let t = template_text().replacen("\"db01\"", &format!("\"{long}\""), 1);
    let err = refused(
        with_text(t),
        &[],
        &["host.mapping_host_name: is 50000 bytes long"],
    );
    assert!(err.len() < 4000, "{} bytes of message", err.len());
}

#[test]
fn a_byte_order_mark_comments_and_yaml_are_named() {
    refused(
        with_text(format!("\u{feff}{}", template_text())),
        &[],
        &["byte-order mark", "plain UTF-8"],
    );
    refused(
        with_text(format!("// my host\n{}", template_text())),
        &[],
        &["JSON has no comments"],
    );
    refused(
        with_text("version: 1\nfabric: auto\n".into()),
        &[],
        &["looks like YAML"],
    );
}

#[test]
fn a_non_ascii_character_in_an_iqn_is_refused_not_a_panic() {
    let t = template_text().replacen("\"auto\"", "\"iqn.199\u{e9}-08.com.x:y\"", 1);
    refused(with_text(t), &[], &["host.initiator_iqn"]);
}

#[test]
fn mount_points_in_system_trees_or_the_state_dir_are_refused() {
    let t = template_text().replacen("\"/mnt/ext4\"", "\"/boot/efi\"", 1);
    refused(with_text(t), &[], &["inside /boot"]);
    refused(
        |p, state| {
            let inside = format!("{:?}", state.join("vol").to_str().unwrap());
            let t = template_text().replacen("\"/mnt/ext4\"", &inside, 1);
            std::fs::write(p, t).unwrap()
        },
        &[],
        &["would hide the wizard's state directory"],
    );
}

#[test]
fn interface_names_a_config_file_cannot_hold_are_refused_before_any_step() {
    let t = template_text().replacen("\"ib0\"", "\"ib$x\"", 1);
    refused(with_text(t), &[], &["ports[0].netdev", "use only letters"]);
}

#[test]
fn record_answers_to_an_unwritable_place_is_refused_before_any_step() {
    refused(
        with_text(template_text()),
        &["--record-answers", "/nonexistent-dir/host1.json"],
        &["--record-answers /nonexistent-dir/host1.json: cannot write"],
    );
}
