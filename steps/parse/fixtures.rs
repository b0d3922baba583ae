//! Test support: locating the shared fixture folders.
//!
//! `../shared/fixtures/` lives beside the repository and is not part of it. Tests that read
//! it call [`shared_dir`], which returns `None` (and prints that the cases are skipped) when
//! the folder is absent, so the suite still passes on a checkout without it.

use std::path::PathBuf;

/// The folder `../shared/fixtures/<sub>` beside the repository, or `None` with a note on
/// stderr saying that the cases reading it are skipped.
pub fn shared_dir(sub: &str) -> Option<PathBuf> {
    let base = std::env::var_os("ISER_WIZARD_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared"));
    let dir = base.join("fixtures").join(sub);
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "note: {} is absent; skipping the cases that read shared fixtures",
            dir.display()
        );
        None
    }
}

/// Every regular file below `dir` (recursively), sorted, with its text.
pub fn files_below(dir: &std::path::Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(text) = std::fs::read_to_string(&p) {
                out.push((p, text));
            }
        }
    }
    out.sort();
    out
}

/// Split a lab capture (`+ cmd` first line, output, `# exit=N` last line) into
/// (command, output, exit status).
pub fn lab_capture(text: &str) -> (String, String, Option<i32>) {
    let mut lines: Vec<&str> = text.lines().collect();
    let cmd = if lines.first().is_some_and(|l| l.starts_with("+ ")) {
        lines.remove(0)[2..].to_string()
    } else {
        String::new()
    };
    let mut status = None;
    if let Some(last) = lines.last() {
        if let Some(n) = last.strip_prefix("# exit=") {
            status = n.trim().parse().ok();
            lines.pop();
            // The shell traced the `echo '# exit=N'` that printed the status: not output.
            if lines
                .last()
                .is_some_and(|l| l.starts_with("+ echo '# exit="))
            {
                lines.pop();
            }
        }
    }
    let mut body = lines.join("\n");
    if !body.is_empty() {
        body.push('\n');
    }
    (cmd, body, status)
}
