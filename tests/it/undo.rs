//! `iser-wizard undo` from the outside, on a `--root` tree: files back from `backups/`,
//! created files removed, a dry run that changes nothing, a second undo that changes
//! nothing, and a refusal while a volume is attached.

use std::path::Path;

use iser_wizard::steps::host::backup;
use iser_wizard::steps::host::Log;
use serde_json::json;

use crate::util::{run, snapshot, text};

fn private_dir(p: &Path) {
    std::fs::create_dir_all(p).unwrap();
    std::fs::set_permissions(p, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
}

/// A root where the wizard changed /etc/fstab and created /etc/multipath.conf, and the
/// state directory that recorded both.
fn changed_host(tmp: &Path, attached: bool) -> (String, String) {
    let root = tmp.join("root");
    let sd = tmp.join("state");
    private_dir(&sd);
    std::fs::create_dir_all(root.join("etc")).unwrap();
    let fstab = root.join("etc/fstab");
    std::fs::write(&fstab, "UUID=r / ext4 defaults 0 1\n").unwrap();
    std::fs::set_permissions(&fstab, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let st = rustix::fs::stat(&fstab).unwrap();
    backup::save_original(
        &sd.join("backups"),
        Path::new("/etc/fstab"),
        b"UUID=r / ext4 defaults 0 1\n",
        &st,
        &Log::disabled(),
    )
    .unwrap();
    std::fs::write(
        &fstab,
        "UUID=r / ext4 defaults 0 1\nUUID=v /data ext4 _netdev 0 2\n",
    )
    .unwrap();
    // The wizard's write left it private: undo gives it back its mode too.
    std::fs::set_permissions(&fstab, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    backup::record_created(&sd.join("backups"), Path::new("/etc/multipath.conf")).unwrap();
    std::fs::write(root.join("etc/multipath.conf"), "defaults {}\n").unwrap();
    let volume = if attached {
        json!({"wwid": "3600a", "mount_point": "/data"})
    } else {
        json!({})
    };
    let state = json!({"version": 1, "facts": {"volume": volume}});
    std::fs::write(sd.join("state.json"), state.to_string()).unwrap();
    (
        root.to_str().unwrap().to_string(),
        sd.to_str().unwrap().to_string(),
    )
}

#[test]
fn undo_puts_files_back_removes_created_ones_and_a_second_undo_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (root, sd) = changed_host(tmp.path(), false);
    let before = snapshot(Path::new(&root));
    let o = run(
        &["undo", "--dry-run", "--root", &root, "--state-dir", &sd],
        None,
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let plan = text(&o.stdout);
    assert!(plan.contains("restore /etc/fstab"), "{plan}");
    assert!(plan.contains("-UUID=v /data ext4 _netdev 0 2"), "{plan}");
    assert!(plan.contains("remove /etc/multipath.conf"), "{plan}");
    assert_eq!(
        before,
        snapshot(Path::new(&root)),
        "the dry run changed files"
    );
    let o = run(&["undo", "--root", &root, "--state-dir", &sd], None);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(!text(&o.stdout).contains("left:"), "{}", text(&o.stdout));
    assert_eq!(
        std::fs::read_to_string(Path::new(&root).join("etc/fstab")).unwrap(),
        "UUID=r / ext4 defaults 0 1\n"
    );
    assert!(!Path::new(&root).join("etc/multipath.conf").exists());
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(Path::new(&root).join("etc/fstab"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o7777, 0o644, "the original mode is back");
    let after = snapshot(Path::new(&root));
    let o = run(&["undo", "--root", &root, "--state-dir", &sd], None);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        text(&o.stdout).contains("nothing to do"),
        "{}",
        text(&o.stdout)
    );
    assert_eq!(
        after,
        snapshot(Path::new(&root)),
        "a second undo changed files"
    );
}

#[test]
fn undo_refuses_while_a_volume_is_attached() {
    let tmp = tempfile::tempdir().unwrap();
    let (root, sd) = changed_host(tmp.path(), true);
    let before = snapshot(Path::new(&root));
    let o = run(&["undo", "--root", &root, "--state-dir", &sd], None);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("detach first"),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(before, snapshot(Path::new(&root)));
}

#[test]
fn undo_removes_what_tools_made_only_when_it_holds_nothing_else() {
    let tmp = tempfile::tempdir().unwrap();
    let (root, sd) = changed_host(tmp.path(), false);
    let r = Path::new(&root);
    backup::record_objects(&Path::new(&sd).join("backups"), |o| {
        // Recorded, but already gone from the database: nothing to run (and no iscsiadm
        // call, which would make /etc/iscsi/ifaces again).
        o.ifaces.push("iface-vA".into());
        o.discoveries
            .push(("10.0.0.1:3260".into(), "iface-vA".into()));
        o.paths_checked = true;
        o.absent_before = vec![
            "/etc/iscsi/nodes".into(),
            "/etc/iscsi/send_targets".into(),
            "/etc/multipath/wwids".into(),
            "/etc/multipath/bindings".into(),
        ];
    })
    .unwrap();
    // What iscsiadm leaves once its records are gone: empty directories.
    std::fs::create_dir_all(r.join("etc/iscsi/nodes/iqn.x/10.0.0.1,3260,1")).unwrap();
    // A record the wizard did not make: the directory stays.
    std::fs::create_dir_all(r.join("etc/iscsi/send_targets/10.9.9.9,3260")).unwrap();
    std::fs::write(
        r.join("etc/iscsi/send_targets/10.9.9.9,3260/st_config"),
        "x\n",
    )
    .unwrap();
    std::fs::create_dir_all(r.join("etc/multipath")).unwrap();
    std::fs::write(
        r.join("etc/multipath/wwids"),
        "# Multipath wwids, Version : 1.0\n/3600a/\n",
    )
    .unwrap();
    std::fs::write(
        r.join("etc/multipath/bindings"),
        "mpatha 3600a\nmpathb 3600b\n",
    )
    .unwrap();
    let state = json!({"version": 1, "detached": [{"wwid": "3600a"}]});
    std::fs::write(Path::new(&sd).join("state.json"), state.to_string()).unwrap();
    let o = run(&["undo", "--root", &root, "--state-dir", &sd], None);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(!r.join("etc/iscsi/nodes").exists(), "{out}");
    assert!(!out.contains("iscsiadm"), "{out}");
    assert!(!r.join("etc/iscsi/ifaces").exists(), "{out}");
    assert!(!r.join("etc/multipath/wwids").exists(), "{out}");
    assert!(r
        .join("etc/iscsi/send_targets/10.9.9.9,3260/st_config")
        .exists());
    assert!(r.join("etc/multipath/bindings").exists());
    assert!(
        out.contains("/etc/multipath/bindings is kept") && out.contains("mpathb 3600b"),
        "{out}"
    );
}

#[test]
fn undo_plans_the_deletion_of_records_it_finds_in_the_iscsi_database() {
    let tmp = tempfile::tempdir().unwrap();
    let (root, sd) = changed_host(tmp.path(), false);
    let r = Path::new(&root);
    backup::record_objects(&Path::new(&sd).join("backups"), |o| {
        o.ifaces.push("iface-vA".into());
        o.discoveries
            .push(("10.0.0.1:3260".into(), "iface-vA".into()));
    })
    .unwrap();
    std::fs::create_dir_all(r.join("etc/iscsi/send_targets/10.0.0.1,3260")).unwrap();
    std::fs::create_dir_all(r.join("etc/iscsi/ifaces")).unwrap();
    std::fs::write(r.join("etc/iscsi/ifaces/iface-vAB"), "not ours\n").unwrap();
    let o = run(
        &["undo", "--dry-run", "--root", &root, "--state-dir", &sd],
        None,
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let plan = text(&o.stdout);
    assert!(
        plan.contains("`iscsiadm -m discoverydb -t st -p 10.0.0.1:3260 -I iface-vA -o delete`"),
        "{plan}"
    );
    // iface-vAB is another iface: iface-vA itself is gone, so nothing to delete.
    assert!(!plan.contains("-m iface"), "{plan}");
}
