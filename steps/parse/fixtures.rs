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

/// The text of `real/<sub>/<name>`, or `None` when the shared folder is absent. A missing file
/// in a present folder panics: a renamed fixture must not turn its test into a no-op.
pub fn real_fixture(sub: &str, name: &str) -> Option<String> {
    let path = shared_dir("real")?.join(sub).join(name);
    Some(std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

/// `lab/<name>` split into (command, output, exit status), or `None` when the shared folder
/// is absent (a missing file in a present folder panics).
pub fn lab_fixture(name: &str) -> Option<(String, String, Option<i32>)> {
    let path = shared_dir("lab")?.join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Some(lab_capture(&text))
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

/// A small deterministic PRNG (xorshift64*) for the never-panics tests.
pub struct Rng(pub u64);

impl Rng {
    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

/// `seed` damaged a few times: cut short, a stretch removed, or one of `pieces` inserted.
pub fn mutate(rng: &mut Rng, seed: &str, pieces: &[&str]) -> String {
    let mut chars: Vec<char> = seed.chars().collect();
    for _ in 0..1 + rng.below(8) {
        let at = rng.below(chars.len() + 1);
        match rng.below(4) {
            0 => chars.truncate(at),
            1 => {
                let end = (at + rng.below(20)).min(chars.len());
                chars.drain(at..end);
            }
            _ => {
                let piece = pieces[rng.below(pieces.len())];
                chars.splice(at..at, piece.chars());
            }
        }
    }
    chars.into_iter().collect()
}
