//! `iser-wizard detach` from the outside: the refusals and usage errors that change
//! nothing, on state directories written as a run leaves them.

use std::path::Path;

use serde_json::json;

use crate::util::{run, snapshot, text};

/// A state directory holding one attached volume, mounted on `/data`.
fn attached_state(dir: &Path, answers: serde_json::Value) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let state = json!({
        "version": 1,
        "run": {"started_at": "2026-12-01T00:00:00Z", "done": []},
        "facts": {"volume": {
            "wwid": "360014050c0ffe0012344abc9def00000",
            "map_device": "/dev/mapper/mpatha",
            "mount_point": "/data",
            "fs_device": "/dev/mapper/mpatha-part1"
        }}
    });
    std::fs::write(dir.join("state.json"), state.to_string()).unwrap();
    std::fs::write(dir.join("answers.json"), answers.to_string()).unwrap();
}

#[test]
fn detach_usage_errors_exit_2_and_change_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let sd = tmp.path().join("state");
    let sd_s = sd.to_str().unwrap();
    // No state directory at all.
    let o = run(&["detach", "--all", "--state-dir", sd_s], None);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("no such state directory"));
    attached_state(&sd, json!({"version": 1}));
    let before = snapshot(tmp.path());
    // Nothing chosen: the attached volumes are listed.
    let o = run(&["detach", "--state-dir", sd_s], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("/data (360014050c0ffe0012344abc9def00000)"),
        "{}",
        text(&o.stderr)
    );
    // A mount point the wizard did not attach.
    let o = run(
        &["detach", "--mount-point", "/srv", "--state-dir", sd_s],
        None,
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("/srv is not the mount point"),
        "{}",
        text(&o.stderr)
    );
    // --unmap without an array section says so plainly.
    let o = run(&["detach", "--all", "--unmap", "--state-dir", sd_s], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("no `array` section"),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(before, snapshot(tmp.path()), "a usage error changed files");
}

#[test]
fn detach_with_nothing_attached_does_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let sd = tmp.path().join("state");
    std::fs::create_dir_all(&sd).unwrap();
    std::fs::set_permissions(&sd, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let o = run(
        &["detach", "--all", "--state-dir", sd.to_str().unwrap()],
        None,
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("no volume is attached"));
}
