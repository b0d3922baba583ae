//! `iser-wizard bench` and `tune` from the outside: what they refuse before touching the host,
//! and the exit codes of CONTRACT.md. The measurements themselves run in the lab
//! (tests/lab/scenarios/bench.sh); the loop's decisions are table-tested in the library.

use crate::util::{run, text};

fn state_dir() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    d
}

#[test]
fn bench_and_tune_usage_errors_exit_2_and_keep_nothing() {
    let sd = state_dir();
    let s = sd.path().to_str().unwrap();
    for args in [
        vec!["bench", "--state-dir", s, "--runs", "2"],
        vec!["bench", "--state-dir", s, "--runtime", "0"],
        vec!["bench", "--state-dir", s, "--label", "../x"],
        vec!["bench", "--state-dir", s, "--size", "1MiB"],
        vec!["bench", "--state-dir", "/no/such/state-dir"],
        vec!["bench", "--state-dir", s, "--compare", "a"],
        vec!["tune", "--state-dir", s, "--knobs", "nr_request"],
        vec!["tune", "--state-dir", s, "--workloads", "rand8k-read"],
        vec!["tune", "--state-dir", s, "--runs", "1"],
    ] {
        let o = run(&args, None);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o.stderr));
    }
    assert!(!sd.path().join("bench").exists());
    assert!(!sd.path().join("tune").exists());
}

#[test]
fn bench_with_no_attached_volume_says_so_and_exits_2() {
    let sd = state_dir();
    let s = sd.path().to_str().unwrap();
    for cmd in ["bench", "tune"] {
        let o = run(&[cmd, "--state-dir", s, "--runs", "3"], None);
        assert_eq!(o.status.code(), Some(2), "{cmd}: {}", text(&o.stderr));
        let err = text(&o.stderr);
        assert!(
            err.contains("no attached volume is recorded"),
            "{cmd}: {err}"
        );
    }
    assert!(!sd.path().join("bench").exists());
    assert!(!sd.path().join("tune").exists());
}

#[test]
fn compare_names_a_bench_that_is_not_kept() {
    let sd = state_dir();
    let s = sd.path().to_str().unwrap();
    let o = run(
        &["bench", "--state-dir", s, "--compare", "before", "after"],
        None,
    );
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert!(err.contains("no kept bench \"before\""), "{err}");
}
