//! The reference, generated from the definitions the program itself runs on, so it cannot
//! say something the program does not do.
//!
//! Contract:
//! - [`keys`] lists every key of the answers file by walking [`answers::ROOT`], the table the
//!   validator checks with: `answers --explain`, the iser-wizard-answers(5) page and
//!   `docs/answers.md` all print from it, with each key's kind, whether it is required, its
//!   default, the forms it accepts and what it means.
//! - [`explain`] finds a key however it is written (`ports[0].mtu`, `ports[].mtu`,
//!   `ports.mtu`, or the last name alone when only one key has it) and, for a key it does not
//!   know, names the nearest ones.
//! - [`man_pages`] renders iser-wizard(8), one page per command and iser-wizard-answers(5)
//!   from the clap definitions (clap_mangen); [`write_completions`] writes bash, zsh and fish
//!   completions (clap_complete); `examples/gen_docs.rs` writes them for packaging. Nothing
//!   here touches the host: files are written only where the caller says.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_complete::Shell;
use clap_mangen::roff::{bold, italic, roman, Inline, Roff};

use crate::answers::{self, Field, Kind};
use crate::cli::Cli;

/// Every key of the answers file, with its full path (`ports[].mtu`), parents before their
/// keys, in the order of the file.
pub fn keys() -> Vec<(String, &'static Field)> {
    let mut out = Vec::new();
    walk(answers::ROOT, "", &mut out);
    out
}

fn walk(fields: &'static [Field], parent: &str, out: &mut Vec<(String, &'static Field)>) {
    for f in fields {
        let path = if parent.is_empty() {
            f.name.to_string()
        } else {
            format!("{parent}.{}", f.name)
        };
        out.push((path.clone(), f));
        if let Some((children, list)) = children(&f.kind) {
            let below = if list { format!("{path}[]") } else { path };
            walk(children, &below, out);
        }
    }
}

/// The keys below a kind, and whether they are those of a list's items.
fn children(kind: &'static Kind) -> Option<(&'static [Field], bool)> {
    match kind {
        Kind::Object(fs) => Some((fs, false)),
        Kind::NullOr(k) => children(k),
        Kind::Array(item, ..) => children(item).map(|(fs, _)| (fs, true)),
        _ => None,
    }
}

/// The kind of a value in words.
pub fn kind_words(kind: &Kind) -> String {
    match kind {
        Kind::Str(_) => "a string".into(),
        Kind::Bool => "true or false".into(),
        Kind::Int(a, b) if a == b => format!("the number {a}"),
        Kind::Int(a, b) => format!("a whole number from {a} to {b}"),
        Kind::Object(_) => "an object".into(),
        Kind::Array(item, lo, hi) => {
            let what = match item {
                Kind::Object(_) => "objects".to_string(),
                k => kind_words(k),
            };
            format!("a list of {lo} to {hi} {what}")
        }
        Kind::Map(_, v) => format!("an object whose values are each {}", kind_words(v)),
        Kind::NullOr(k) => format!("null or {}", kind_words(k)),
    }
}

/// The names of the keys directly below a key, if it has any.
fn child_names(f: &'static Field) -> Vec<&'static str> {
    children(&f.kind)
        .map(|(fs, _)| fs.iter().map(|c| c.name).collect())
        .unwrap_or_default()
}

/// The lines `answers --explain` and the references print for one key: label and text.
pub fn facts(f: &'static Field) -> Vec<(&'static str, String)> {
    let mut out = vec![("kind", kind_words(&f.kind))];
    out.push((
        "required",
        if f.required { "yes" } else { "no" }.to_string(),
    ));
    if !f.required {
        out.push(("default", f.default.to_string()));
    }
    if !f.forms.is_empty() {
        out.push(("accepts", f.forms.to_string()));
    }
    let names = child_names(f);
    if !names.is_empty() {
        out.push(("keys", names.join(", ")));
    }
    out
}

/// Why `answers --explain` found no key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExplainError {
    /// No key is written so or near it.
    #[error("{0}: no such key in the answers file{1}")]
    Unknown(String, String),
    /// The last name alone fits several keys.
    #[error("{0} is the name of several keys: {1}; give the whole key")]
    Ambiguous(String, String),
}

/// A path with list indexes dropped: `ports[1].mtu` and `ports.mtu` both read `ports.mtu`.
fn plain(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut in_index = false;
    for c in path.chars() {
        match c {
            '[' => in_index = true,
            ']' => in_index = false,
            c if !in_index => out.push(c),
            _ => {}
        }
    }
    out
}

/// The key written as `key`, however its list indexes are written, or by its last name
/// alone; a member of an object of free keys (`subnet_manager.priorities.ib0`) is that
/// object.
pub fn find(key: &str) -> Result<(String, &'static Field), ExplainError> {
    let all = keys();
    let want = plain(key.trim());
    if let Some(k) = all.iter().find(|(p, _)| plain(p) == want) {
        return Ok(k.clone());
    }
    if let Some((head, _)) = want.rsplit_once('.') {
        if let Some(k) = all
            .iter()
            .find(|(p, f)| matches!(f.kind, Kind::Map(..)) && plain(p) == head)
        {
            return Ok(k.clone());
        }
    }
    let by_name: Vec<_> = all.iter().filter(|(_, f)| f.name == want).collect();
    match by_name.as_slice() {
        [one] => return Ok((*one).clone()),
        [] => {}
        many => {
            let names: Vec<&str> = many.iter().map(|(p, _)| p.as_str()).collect();
            return Err(ExplainError::Ambiguous(want, names.join(", ")));
        }
    }
    // The nearest keys, by the whole path or by the last name, when they are near at all:
    // within a third of what was typed (at least one edit, at most three), so "x" or ""
    // suggests nothing rather than every three-letter key.
    let within = (want.chars().count() / 3).clamp(1, 3);
    let mut near: Vec<(usize, &str)> = all
        .iter()
        .filter(|_| !want.is_empty() && want.len() <= 64)
        .map(|(p, f)| {
            let d = strsim::levenshtein(&want, &plain(p)).min(strsim::levenshtein(&want, f.name));
            (d, p.as_str())
        })
        .filter(|(d, _)| *d <= within)
        .collect();
    near.sort();
    let hint = match near.first() {
        Some(&(best, _)) => {
            let names: Vec<&str> = near
                .iter()
                .filter(|(d, _)| *d == best)
                .map(|(_, p)| *p)
                .collect();
            format!("; did you mean {}?", names.join(" or "))
        }
        None => "; `iser-wizard answers --template` shows every key, and `man 5 \
                 iser-wizard-answers` describes them"
            .to_string(),
    };
    Err(ExplainError::Unknown(answers::cut(key), hint))
}

/// Greedy word wrap of `text` to `width` columns, each line after `indent`.
fn wrap(text: &str, indent: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for w in text.split_whitespace() {
        if !line.is_empty() && indent.len() + line.len() + 1 + w.len() > width {
            let _ = writeln!(out, "{indent}{line}");
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(w);
    }
    if !line.is_empty() {
        let _ = writeln!(out, "{indent}{line}");
    }
    out
}

/// The paragraphs of a key's doc, each with whether it is an example to print as it is.
fn paragraphs(doc: &str) -> impl Iterator<Item = (bool, &str)> {
    doc.split('\n')
        .map(|p| (p.starts_with('{') || p.starts_with('"'), p))
}

/// A key's doc as text: paragraphs wrapped after `indent`, examples indented as they are.
fn doc_text(doc: &str, indent: &str) -> String {
    paragraphs(doc)
        .map(|(example, p)| {
            if example {
                // A blank line first: Markdown reads an indented line right after a
                // paragraph as more of it, not as code.
                format!("\n{indent}    {p}\n")
            } else {
                wrap(p, indent, 92)
            }
        })
        .collect()
}

/// What `answers --explain KEY` prints: the key, its facts, and what it means.
pub fn explain(key: &str) -> Result<String, ExplainError> {
    let (path, f) = find(key)?;
    let mut out = format!("{path}\n");
    for (label, value) in facts(f) {
        let first = format!("  {label}:{}", " ".repeat(10 - label.len()));
        let body = wrap(&value, &" ".repeat(first.len()), 92);
        out.push_str(&first);
        out.push_str(body.trim_start());
    }
    out.push('\n');
    out.push_str(&doc_text(f.doc, "  "));
    Ok(out)
}

/// What an operator should know about the template that its keys cannot say.
const TEMPLATE_NOTE: &str = "The template has every key, and validates as it is. Some of \
    its values are examples where absence has a meaning of its own: ports[].mtu (absent: the \
    MTU is left as it is) and ports[].persistent_name (absent: no name is pinned); \
    target.chap is null there because a file with CHAP validates only while its secret's \
    variable is set (see target.chap for an example).";

/// The general rules of the answers file, for the references.
const RULES: &[&str] = &[
    "The file is JSON, at most 1 MiB, and a regular file (or standard input with \
     `--answers -`). It is validated whole before anything is touched: every problem is \
     reported at once, each with its JSON path and how to fix it, and the run exits 2 having \
     changed nothing.",
    "Unknown keys are errors (a typo must not be silently ignored), with the nearest known \
     key named. A key given twice in one object is an error. JSON has no comments.",
    "Values are checked exactly as the same answer typed at a prompt would be. A missing \
     optional key takes its default; in an interactive run the wizard asks for what is \
     missing instead.",
];

/// `docs/answers.md`: the answers reference in Markdown (a test keeps the committed copy in
/// step with this).
pub fn answers_markdown() -> String {
    let mut out = String::from(
        "# The answers file (`iser-wizard run --answers FILE`)\n\n\
         <!-- Generated from the table the validator checks with (wizard/answers.rs) by\n\
         `cargo run --example gen_docs -- markdown > docs/answers.md`; a test fails when\n\
         this copy is stale. -->\n\n",
    );
    for r in RULES {
        out.push_str(&wrap(r, "", 92));
        out.push('\n');
    }
    out.push_str(&wrap(TEMPLATE_NOTE, "", 92));
    out.push_str("\n## Keys\n\n");
    for (path, f) in keys() {
        let _ = writeln!(out, "### `{path}`\n");
        for (label, value) in facts(f) {
            out.push_str(&wrap(&format!("- {label}: {value}"), "", 92).replace("\n", "\n  "));
            out.truncate(out.trim_end().len());
            out.push('\n');
        }
        out.push('\n');
        out.push_str(&doc_text(f.doc, ""));
        out.push('\n');
    }
    out.push_str("## The template (`iser-wizard answers --template`)\n\n```json\n");
    out.push_str(answers::TEMPLATE);
    out.push_str("```\n");
    out
}

/// The command line, built, with the display names clap gives subcommands.
fn command() -> clap::Command {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    cmd
}

fn page_header(title: &str, section: &str) -> Roff {
    let mut r = Roff::new();
    let source = format!("iser-wizard {}", env!("CARGO_PKG_VERSION"));
    r.control(
        "TH",
        [title, section, "", source.as_str(), "System Administration"],
    );
    r
}

/// The KEYS section: every key, as the validator knows it.
fn keys_section(r: &mut Roff) {
    r.control("SH", ["KEYS"]);
    for (path, f) in keys() {
        r.control("SS", [path.as_str()]);
        for (label, value) in facts(f) {
            r.text([italic(label), roman(format!(": {value}"))]);
            r.control("br", []);
        }
        r.control("sp", []);
        for (example, p) in paragraphs(f.doc) {
            if example {
                r.control("nf", []);
                r.text([roman(format!("    {p}"))]);
                r.control("fi", []);
            } else {
                r.text([roman(p)]);
            }
        }
    }
}

fn exit_status_section(r: &mut Roff) {
    r.control("SH", ["EXIT STATUS"]);
    for (code, what) in EXIT_CODES {
        r.control("TP", []);
        r.text([bold(code.to_string())]);
        r.text([roman(*what)]);
    }
}

/// The exit codes, for iser-wizard(8) and the Markdown reference.
pub const EXIT_CODES: &[(i32, &str)] = &[
    (0, "Done (status: healthy)."),
    (
        1,
        "A step failed: the message names the step, the command and its output tail, and \
         what was left changed (status: degraded).",
    ),
    (
        2,
        "Usage error, invalid answers, or a state directory another run holds or others can \
         write to: nothing was changed.",
    ),
    (
        3,
        "Refused for safety: the device is in use, carries data, or is not the expected LUN; \
         nothing was changed.",
    ),
    (4, "status: not configured (no completed run is recorded)."),
    (130, "Interrupted: state is saved, and `run` again resumes."),
];

fn see_also(r: &mut Roff, pages: &[&str]) {
    r.control("SH", ["SEE ALSO"]);
    let mut line: Vec<Inline> = Vec::new();
    for (i, p) in pages.iter().enumerate() {
        let (name, sec) = p.split_once('(').unwrap_or((p, ""));
        line.push(bold(name));
        line.push(roman(format!(
            "({}{}",
            sec,
            if i + 1 < pages.len() { ", " } else { "" }
        )));
    }
    r.text(line);
}

/// The steps, for iser-wizard(8).
pub const STEPS_TEXT: &str = "A run takes the steps in this order: preflight, subnet-manager, \
    network, iscsi, array, sessions, multipath, filesystem, verify (array only when the answers \
    have an array section). Each probes the host, shows its \
    plan (commands and file diffs), applies it, and verifies the result; a second run changes \
    nothing, and an interrupted run resumes. --only and --from run some of them, the facts \
    of earlier steps coming from the state file.";

const FILES_TEXT: &[(&str, &str)] = &[
    (
        "/var/lib/iser-wizard/state.json",
        "Steps done, facts found, schema version (the state directory is --state-dir; it is \
         created 0700 and refused when others can write to it).",
    ),
    (
        "/var/lib/iser-wizard/worksheet.json",
        "The worksheet record `worksheet` renders.",
    ),
    (
        "/var/lib/iser-wizard/answers.json",
        "The effective answers, secrets redacted.",
    ),
    (
        "/var/lib/iser-wizard/log",
        "Every command with its exit status, duration and output tail; every step's outcome.",
    ),
    (
        "/var/lib/iser-wizard/backups/",
        "Every file as it was before the wizard first changed it; CREATED lists the files \
         the wizard created.",
    ),
];

fn render(man: clap_mangen::Man, extra: impl FnOnce(&mut Roff)) -> String {
    let mut buf = Vec::new();
    man.render(&mut buf).expect("rendering to memory");
    let mut r = Roff::new();
    extra(&mut r);
    let mut text = String::from_utf8(buf).expect("roff is UTF-8");
    text.push_str(&r.to_roff());
    text
}

/// Every man page: file name and roff text.
pub fn man_pages() -> Vec<(String, String)> {
    let cmd = command();
    let source = format!("iser-wizard {}", env!("CARGO_PKG_VERSION"));
    let man = |c: clap::Command| {
        clap_mangen::Man::new(c)
            .section("8")
            .source(source.clone())
            .manual("System Administration")
    };
    let subs: Vec<clap::Command> = cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .cloned()
        .collect();
    let sub_pages: Vec<String> = subs
        .iter()
        .map(|s| format!("{}(8)", s.get_display_name().unwrap_or(s.get_name())))
        .collect();
    let mut out = Vec::new();
    let mut all_see: Vec<&str> = sub_pages.iter().map(String::as_str).collect();
    all_see.push("iser-wizard-answers(5)");
    out.push((
        "iser-wizard.8".to_string(),
        render(man(cmd.clone()), |r| {
            r.control("SH", ["STEPS"]);
            r.text([roman(STEPS_TEXT)]);
            exit_status_section(r);
            r.control("SH", ["FILES"]);
            for (f, what) in FILES_TEXT {
                r.control("TP", []);
                r.text([italic(*f)]);
                r.text([roman(*what)]);
            }
            see_also(r, &all_see);
        }),
    ));
    for s in subs {
        let name = s.get_display_name().unwrap_or(s.get_name()).to_string();
        let is_answers = s.get_name() == "answers";
        out.push((
            format!("{name}.8"),
            render(man(s), |r| {
                if is_answers {
                    // `man iser-wizard-answers` may open this page rather than the
                    // file format's: both list every key.
                    keys_section(r);
                }
                see_also(r, &["iser-wizard(8)", "iser-wizard-answers(5)"]);
            }),
        ));
    }
    out.push(("iser-wizard-answers.5".to_string(), answers_page()));
    out
}

/// iser-wizard-answers(5): the answers file.
fn answers_page() -> String {
    let mut r = page_header("ISER-WIZARD-ANSWERS", "5");
    r.control("SH", ["NAME"]);
    r.text([roman(
        "iser-wizard-answers - the answers file of an unattended iser-wizard run",
    )]);
    r.control("SH", ["SYNOPSIS"]);
    r.text([
        bold("iser-wizard run --answers"),
        roman(" "),
        italic("FILE"),
    ]);
    r.control("SH", ["DESCRIPTION"]);
    for p in RULES.iter().chain([&TEMPLATE_NOTE]) {
        r.control("PP", []);
        r.text([roman(*p)]);
    }
    keys_section(&mut r);
    r.control("SH", ["EXAMPLE"]);
    r.text([
        roman("The template, from "),
        bold("iser-wizard answers --template"),
        roman(":"),
    ]);
    r.control("PP", []);
    r.control("nf", []);
    for line in answers::TEMPLATE.lines() {
        r.text([roman(line)]);
    }
    r.control("fi", []);
    see_also(
        &mut r,
        &[
            "iser-wizard(8)",
            "iser-wizard-run(8)",
            "iser-wizard-answers(8)",
        ],
    );
    r.to_roff()
}

/// Write every man page into `dir` (created when missing); the paths written.
pub fn write_man(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    man_pages()
        .into_iter()
        .map(|(name, text)| {
            let p = dir.join(name);
            std::fs::write(&p, text).map(|()| p)
        })
        .collect()
}

/// Write bash, zsh and fish completions into `dir` (created when missing); the paths
/// written.
pub fn write_completions(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    [Shell::Bash, Shell::Zsh, Shell::Fish]
        .into_iter()
        .map(|sh| clap_complete::generate_to(sh, &mut Cli::command(), "iser-wizard", dir))
        .collect()
}
