//! `run --json` (CONTRACT.md): one JSON object per line on standard output, each step then a
//! summary, whatever the outcome; the human text on standard error; and no way to ask.

use serde_json::Value;

use crate::util::{run, snapshot, text};

/// Every line of standard output, each of which must be one JSON object.
fn lines(stdout: &[u8]) -> Vec<Value> {
    text(stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}")))
        .collect()
}

/// A Debian host with nothing prepared: only its os-release.
fn bare_root(dir: &std::path::Path) -> std::path::PathBuf {
    let root = dir.join("root");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(
        root.join("etc/os-release"),
        "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\n\
         VERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\nID=debian\n",
    )
    .unwrap();
    root
}

#[test]
fn a_dry_run_on_a_bare_host_prints_a_line_per_step_and_a_summary() {
    let tmp = tempfile::tempdir().unwrap();
    let root = bare_root(tmp.path());
    let state = tmp.path().join("state");
    let answers = tmp.path().join("answers.json");
    std::fs::write(&answers, run(&["answers", "--template"], None).stdout).unwrap();
    let before = snapshot(tmp.path());
    let o = run(
        &[
            "run",
            "--dry-run",
            "--json",
            "--answers",
            answers.to_str().unwrap(),
            "--root",
            root.to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
        ],
        None,
    );
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let v = lines(&o.stdout);
    let steps: Vec<&str> = v[..v.len() - 1]
        .iter()
        .map(|l| {
            assert_eq!(l["type"], "step", "{l}");
            assert_eq!(l["status"], "planned", "{l}");
            assert!(l["seconds"].as_f64().unwrap() >= 0.0, "{l}");
            assert!(l["plan"].is_string(), "{l}");
            l["step"].as_str().unwrap()
        })
        .collect();
    assert_eq!(
        steps,
        [
            "preflight",
            "subnet-manager",
            "network",
            "iscsi",
            "array",
            "sessions",
            "multipath",
            "filesystem",
            "verify"
        ]
    );
    // A bare host has everything to do: the plans are not empty, and add up in the summary
    // (but for verify's read-back, which leaves the host as it found it).
    let planned: u64 = v[..v.len() - 1]
        .iter()
        .filter(|l| l["step"] != "verify")
        .map(|l| l["changes"].as_u64().unwrap())
        .sum();
    assert!(planned > 0);
    let s = v.last().unwrap();
    assert_eq!(s["type"], "summary");
    assert_eq!(s["schema_version"], 1);
    assert_eq!(s["dry_run"], true);
    assert_eq!(s["changed"], false);
    assert_eq!(s["changes"], 0);
    assert_eq!(s["planned"], planned);
    assert_eq!(s["exit"], 0);
    assert!(s["worksheet"].is_null(), "{s}");
    assert!(s.get("message").is_none(), "{s}");
    // The human text is still there, on standard error.
    assert!(err.contains("[1/9] preflight"), "{err}");
    assert!(err.contains("Dry run: nothing was changed."), "{err}");
    assert_eq!(before, snapshot(tmp.path()));
}

#[test]
fn refused_answers_still_end_with_a_summary_and_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let root = bare_root(tmp.path());
    let state = tmp.path().join("state");
    let answers = tmp.path().join("answers.json");
    let mut a: Value =
        serde_json::from_slice(&run(&["answers", "--template"], None).stdout).unwrap();
    a["volume"]["filesystem"] = "fat32".into();
    std::fs::write(&answers, a.to_string()).unwrap();
    let before = snapshot(tmp.path());
    let o = run(
        &[
            "run",
            "--json",
            "--answers",
            answers.to_str().unwrap(),
            "--root",
            root.to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    let v = lines(&o.stdout);
    assert_eq!(v.len(), 1, "no step ran: {v:?}");
    let s = &v[0];
    assert_eq!(s["type"], "summary");
    assert_eq!(s["exit"], 2);
    assert_eq!(s["changed"], false);
    assert_eq!(s["dry_run"], false);
    let msg = s["message"].as_str().unwrap();
    assert!(msg.contains("volume.filesystem"), "{msg}");
    assert!(msg.contains("nothing was changed"), "{msg}");
    assert!(text(&o.stderr).contains("volume.filesystem"));
    assert_eq!(before, snapshot(tmp.path()));
}

#[test]
fn json_without_answers_is_refused_since_nothing_can_be_asked() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    for extra in [&[][..], &["--dry-run"][..]] {
        let mut args = vec!["run", "--json", "--state-dir", state.to_str().unwrap()];
        args.extend_from_slice(extra);
        let o = run(&args, None);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let v = lines(&o.stdout);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0]["exit"], 2);
        assert!(
            v[0]["message"].as_str().unwrap().contains("--answers"),
            "{v:?}"
        );
        assert!(text(&o.stderr).contains("--json cannot ask questions"));
    }
    assert!(!state.exists());
}
