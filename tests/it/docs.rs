//! The reference against the program: the man pages, `docs/` and `answers --explain` name
//! every key the validator knows and no other, each as required or optional as the validator
//! treats it; the template has every key; the committed Markdown is what the code generates;
//! every link of the README and `docs/` resolves inside a fresh clone; the completions and
//! pages cover every command.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use clap::CommandFactory;
use iser_wizard::answers::{validate, Field, Kind, ROOT, TEMPLATE};
use serde_json::{json, Value};

use crate::util::{run, text};

const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// The CHAP secret's variable in the complete document below.
const SECRET_VAR: &str = "ISER_DOCS_TEST_SECRET";

/// The validator's keys, walked here rather than taken from `iser_wizard::docs`, so a walk
/// that skipped a kind there would show: path and whether it is required.
fn validator_keys() -> Vec<(String, bool)> {
    fn walk(fields: &[Field], parent: &str, out: &mut Vec<(String, bool)>) {
        for f in fields {
            let path = if parent.is_empty() {
                f.name.to_string()
            } else {
                format!("{parent}.{}", f.name)
            };
            out.push((path.clone(), f.required));
            let mut k = &f.kind;
            let mut list = false;
            loop {
                match k {
                    Kind::NullOr(inner) => k = inner,
                    Kind::Array(item, ..) => {
                        k = item;
                        list = true;
                    }
                    _ => break,
                }
            }
            if let Kind::Object(fs) = k {
                let below = if list { format!("{path}[]") } else { path };
                walk(fs, &below, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(ROOT, "", &mut out);
    out
}

/// The keys a man page lists (`.SS` headings of its KEYS section), each with whether the
/// page calls it required.
fn page_keys(page: &str) -> Vec<(String, bool)> {
    let lines: Vec<&str> = page.lines().collect();
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let Some(key) = l.strip_prefix(".SS ") else {
            continue;
        };
        let required = lines[i + 1..]
            .iter()
            .take_while(|l| !l.starts_with(".SS"))
            .find_map(|l| l.strip_prefix("\\fIrequired\\fR: "))
            .unwrap_or_else(|| panic!("{key}: the page does not say whether it is required"));
        out.push((key.trim_matches('"').to_string(), required == "yes"));
    }
    out
}

fn man_pages() -> (tempfile::TempDir, Vec<PathBuf>) {
    let dir = tempfile::tempdir().unwrap();
    let written = iser_wizard::docs::write_man(dir.path()).unwrap();
    (dir, written)
}

#[test]
fn man_iser_wizard_answers_lists_every_key_the_validator_knows() {
    let (dir, _) = man_pages();
    let want = validator_keys();
    // Both pages `man iser-wizard-answers` may open: the file format's and the command's.
    for page in ["iser-wizard-answers.5", "iser-wizard-answers.8"] {
        let text = std::fs::read_to_string(dir.path().join(page)).unwrap();
        assert_eq!(page_keys(&text), want, "{page}");
    }
}

#[test]
fn explain_knows_every_key_as_the_validator_does() {
    for (key, required) in validator_keys() {
        let o = run(&["answers", "--explain", &key], None);
        let out = text(&o.stdout);
        assert_eq!(o.status.code(), Some(0), "{key}: {}", text(&o.stderr));
        assert!(out.starts_with(&format!("{key}\n")), "{out}");
        let said = if required { "yes" } else { "no" };
        assert!(out.contains(&format!("required:  {said}\n")), "{out}");
        assert_eq!(out.contains("default:"), !required, "{out}");
    }
}

/// The template with a CHAP section, a volume name and an array section, so every key of the
/// schema is present once, but for `volumes`, the list form of `volume` (see [`complete_for`]).
fn complete() -> Value {
    let mut v: Value = serde_json::from_str(TEMPLATE).unwrap();
    v["target"]["chap"] = json!({"username": "db01", "password_env": SECRET_VAR});
    v["volume"]["name"] = json!("db01_data");
    // With an array section the WWID comes from the array: "auto" is refused beside it.
    v["volume"]["wwid"] = json!("3600a098000a0b1c2000000005f0a0b1c");
    v["array"] = json!({
        "controllers": ["https://10.113.1.10:8443", "https://10.113.1.11:8443"],
        "user": "admin",
        "password_env": "ISER_ARRAY_PASSWORD",
        "tls": {"fingerprint_sha256": "AB".repeat(32), "ca_file": "/etc/iser/array-ca.pem"},
        "system_id": "1",
        "host_type_index": 28,
        "host_group": null
    });
    v
}

/// The complete document in the form that has `key`: `volume` and `volumes` cannot be
/// given together, so a key under `volumes` gets the volume moved into a list of one.
fn complete_for(key: &str) -> Value {
    let mut v = complete();
    if key.starts_with("volumes") {
        let one = v.as_object_mut().unwrap().remove("volume").unwrap();
        v["volumes"] = json!([one]);
    }
    v
}

/// What the validator says when neither `volume` nor `volumes` is given.
const NO_VOLUME: &str = "volume: is missing: add it (an object), or `volumes` (a list of \
                         such objects) for several; `iser-wizard answers --template` shows \
                         every key";

fn env(k: &str) -> Option<String> {
    (k == SECRET_VAR).then(|| "s3cret".to_string())
}

/// The object holding `path`'s key (a list's first item for `[]`), and the key.
fn parent_mut<'a>(v: &'a mut Value, path: &str) -> (&'a mut Value, String) {
    let mut segs: Vec<&str> = path.split('.').collect();
    let last = segs.pop().unwrap().to_string();
    let mut cur = v;
    for s in segs {
        cur = match s.strip_suffix("[]") {
            Some(list) => &mut cur[list][0],
            None => &mut cur[s],
        };
    }
    (cur, last)
}

#[test]
fn the_documented_required_keys_are_those_the_validator_requires() {
    for key in ["volume", "volumes"] {
        assert_eq!(
            validate(&complete_for(key), &env),
            vec![],
            "the complete document validates (with {key})"
        );
    }
    for (key, required) in iser_wizard::docs::keys()
        .into_iter()
        .map(|(p, f)| (p, f.required))
    {
        let mut v = complete_for(&key);
        let (parent, name) = parent_mut(&mut v, &key);
        parent.as_object_mut().unwrap().remove(&name);
        let problems: Vec<String> = validate(&v, &env).iter().map(|p| p.to_string()).collect();
        let path = key.replace("[]", "[0]");
        if key == "volume" || key == "volumes" {
            // Each is optional, but one of the two is needed.
            assert!(!required, "{key} is documented as optional");
            assert_eq!(problems, [NO_VOLUME], "{key}: one of volume and volumes");
        } else if required {
            assert_eq!(
                problems.first().map(String::as_str),
                Some(
                    format!(
                        "{path}: is missing: add it ({}); `iser-wizard answers --template` shows every key",
                        missing_words(&key)
                    )
                    .as_str()
                ),
                "{key} is documented as required"
            );
        } else {
            assert_eq!(
                problems,
                Vec::<String>::new(),
                "{key} is documented as optional"
            );
        }
    }
}

/// How the validator names the kind of a missing key (only its start is compared loosely:
/// the message is the validator's own).
fn missing_words(key: &str) -> String {
    let o = run(&["answers", "--explain", key], None);
    let out = text(&o.stdout);
    let kind = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("kind:"))
        .unwrap()
        .trim()
        .to_string();
    // The validator says "a list" and "an object" where the reference says more.
    if kind.starts_with("a list") {
        "a list".into()
    } else if kind.starts_with("an object") {
        "an object".into()
    } else {
        kind
    }
}

#[test]
fn the_validator_knows_each_documented_key_by_name() {
    // A misspelt key is refused, naming the documented one: the validator knows it.
    for (key, _) in iser_wizard::docs::keys() {
        let mut v = complete_for(&key);
        let (parent, name) = parent_mut(&mut v, &key);
        let m = parent.as_object_mut().unwrap();
        let x = m.remove(&name).unwrap();
        m.insert(format!("{name}x"), x);
        let problems: Vec<String> = validate(&v, &env).iter().map(|p| p.to_string()).collect();
        let typo = format!(
            "{}x: unknown key: did you mean \"{name}\"?",
            key.replace("[]", "[0]")
        );
        assert!(problems.contains(&typo), "{key}: {problems:#?}");
    }
}

#[test]
fn the_template_has_every_key_but_chaps_which_explain_shows() {
    let mut t: Value = serde_json::from_str(TEMPLATE).unwrap();
    let mut absent = Vec::new();
    for (key, _) in validator_keys() {
        if key.starts_with("volumes") {
            absent.push(key);
            continue;
        }
        let (parent, name) = parent_mut(&mut t, &key);
        if parent.get(&name).is_none() {
            absent.push(key);
        }
    }
    // CHAP validates only with its secret's variable set, so the template keeps it null
    // and its example lives in the reference; the array section turns the array step on, so
    // the template keeps it null too, and volume.name is optional. The template gives one
    // `volume`; `volumes`, its list form, cannot be given with it.
    let (volumes, absent): (Vec<String>, Vec<String>) =
        absent.into_iter().partition(|k| k.starts_with("volumes"));
    assert_eq!(
        absent,
        [
            "target.chap.username",
            "target.chap.password_env",
            "volume.name",
            "array.controllers",
            "array.user",
            "array.password_env",
            "array.tls",
            "array.tls.fingerprint_sha256",
            "array.tls.ca_file",
            "array.system_id",
            "array.host_type_index",
            "array.host_group",
        ]
    );
    assert_eq!(volumes.len(), 7, "{volumes:?}");
    let o = run(&["answers", "--explain", "target.chap"], None);
    let out = text(&o.stdout);
    assert!(
        out.contains("\"password_env\": \"ISER_CHAP_SECRET\""),
        "{out}"
    );
    assert!(out.contains("The template leaves it null"), "{out}");
}

#[test]
fn explain_takes_indexes_and_last_names_and_suggests_for_typos() {
    let one = |k: &str| {
        let o = run(&["answers", "--explain", k], None);
        (o.status.code(), text(&o.stdout), text(&o.stderr))
    };
    let (code, out, _) = one("ports[1].mtu");
    assert_eq!(code, Some(0));
    assert!(out.starts_with("ports[].mtu\n"), "{out}");
    assert!(
        out.contains("kind:      a whole number from 576 to 65520\n"),
        "{out}"
    );
    assert!(
        out.contains("default:   the MTU is left as it is\n"),
        "{out}"
    );
    assert_eq!(one("ports.mtu").1, out);
    assert_eq!(one("mtu").1, out);
    let (code, out, _) = one("subnet_manager.priorities.ib0");
    assert_eq!(code, Some(0));
    assert!(out.starts_with("subnet_manager.priorities\n"), "{out}");

    let (code, out, err) = one("volume.mount_pint");
    assert_eq!(code, Some(2));
    assert_eq!(out, "");
    assert!(err.contains("did you mean volume.mount_point?"), "{err}");
    let (code, _, err) = one("address");
    assert_eq!(code, Some(2));
    assert!(
        err.contains("ports[].address, target.portals[].address; give the whole key"),
        "{err}"
    );
    let (code, _, err) = one("mtuu");
    assert_eq!(code, Some(2));
    assert!(err.contains("did you mean ports[].mtu?"), "{err}");
    // Too short to be near anything: no guess.
    for far in ["x", ""] {
        let (code, _, err) = one(far);
        assert_eq!(code, Some(2));
        assert!(!err.contains("did you mean"), "{far:?}: {err}");
    }
    let (code, _, err) = one("array.insecure");
    assert_eq!(code, Some(2));
    assert!(err.contains("no such key"), "{err}");
    let o = run(&["answers", "--template", "--explain", "mtu"], None);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn docs_answers_md_is_what_the_code_generates() {
    let committed = std::fs::read_to_string(Path::new(REPO).join("docs/answers.md")).unwrap();
    assert!(
        committed == iser_wizard::docs::answers_markdown(),
        "docs/answers.md is stale: run `cargo run --example gen_docs -- markdown > docs/answers.md`"
    );
}

/// Relative link targets of a Markdown text: `](target)`, without an anchor.
fn links(md: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = md;
    while let Some(i) = rest.find("](") {
        rest = &rest[i + 2..];
        let end = rest.find(')').unwrap_or(rest.len());
        let target = rest[..end].split('#').next().unwrap_or("").to_string();
        if !target.contains("://") && !target.is_empty() {
            out.push(target);
        }
    }
    out
}

#[test]
fn every_link_of_the_readme_and_docs_resolves_in_a_fresh_clone() {
    let repo = Path::new(REPO).canonicalize().unwrap();
    // What a commit would hold: tracked files and new ones not ignored (a link into
    // target/ or another ignored place is absent from a fresh clone). Without git (a source
    // tarball), being inside the repository is the check.
    let listed = std::process::Command::new("git")
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .current_dir(&repo)
        .output();
    let listed: Option<BTreeSet<PathBuf>> = listed.ok().filter(|o| o.status.success()).map(|o| {
        o.stdout
            .split(|b| *b == 0)
            .filter(|p| !p.is_empty())
            .map(|p| repo.join(String::from_utf8_lossy(p).as_ref()))
            .collect()
    });
    let mut files = vec![repo.join("README.md")];
    for e in std::fs::read_dir(repo.join("docs")).unwrap() {
        files.push(e.unwrap().path());
    }
    let mut checked = 0;
    for f in files {
        let md = std::fs::read_to_string(&f).unwrap();
        for l in links(&md) {
            let target = f.parent().unwrap().join(&l);
            let resolved = target
                .canonicalize()
                .unwrap_or_else(|e| panic!("{}: link {l}: {e}", f.display()));
            assert!(
                resolved.starts_with(&repo),
                "{}: link {l} leaves the repository",
                f.display()
            );
            if let Some(files) = &listed {
                assert!(
                    files.iter().any(|p| p.starts_with(&resolved)),
                    "{}: link {l} is to a file a clone would not have",
                    f.display()
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 5, "only {checked} links found");
}

/// The commands a user can run, with their long flags.
fn visible_commands() -> Vec<(String, Vec<String>)> {
    let cmd = iser_wizard::cli::Cli::command();
    cmd.get_subcommands()
        .filter(|s| !s.is_hide_set())
        .map(|s| {
            let flags = s
                .get_arguments()
                .filter(|a| !a.is_hide_set())
                .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
                .filter(|l| l != "--help")
                .collect();
            (s.get_name().to_string(), flags)
        })
        .collect()
}

#[test]
fn docs_commands_md_and_the_man_pages_cover_every_command_and_flag() {
    let md = std::fs::read_to_string(Path::new(REPO).join("docs/commands.md")).unwrap();
    let (dir, written) = man_pages();
    let names: BTreeSet<String> = written
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(names.contains("iser-wizard.8"), "{names:?}");
    assert!(names.contains("iser-wizard-answers.5"), "{names:?}");
    for (name, flags) in visible_commands() {
        assert!(
            md.contains(&format!("`iser-wizard {name}")) || md.contains(&format!("`{name} ")),
            "{name}"
        );
        let page = format!("iser-wizard-{name}.8");
        assert!(names.contains(&page), "no {page} in {names:?}");
        let roff = std::fs::read_to_string(dir.path().join(&page)).unwrap();
        for f in flags {
            assert!(md.contains(&f), "docs/commands.md lacks {name} {f}");
            // roff writes a hyphen as \-.
            assert!(roff.contains(&f.replace('-', "\\-")), "{page} lacks {f}");
        }
    }
}

#[test]
fn completions_for_bash_zsh_and_fish_cover_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let written = iser_wizard::docs::write_completions(dir.path()).unwrap();
    let names: Vec<String> = written
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        ["iser-wizard.bash", "_iser-wizard", "iser-wizard.fish"]
    );
    for p in &written {
        let script = std::fs::read_to_string(p).unwrap();
        for (name, flags) in visible_commands() {
            assert!(script.contains(&name), "{}: {name}", p.display());
            for f in flags {
                assert!(
                    script.contains(f.trim_start_matches('-')),
                    "{}: {f}",
                    p.display()
                );
            }
        }
    }
    // The shells' own syntax checks, where the shell is installed.
    for (shell, file) in [
        ("bash", "iser-wizard.bash"),
        ("zsh", "_iser-wizard"),
        ("fish", "iser-wizard.fish"),
    ] {
        let path = dir.path().join(file);
        match std::process::Command::new(shell)
            .arg("-n")
            .arg(&path)
            .output()
        {
            Ok(o) => assert!(o.status.success(), "{shell} -n {file}: {}", text(&o.stderr)),
            Err(_) => {
                eprintln!("note: {shell} is not installed; its completion's syntax is not checked")
            }
        }
    }
}

#[test]
fn the_man_pages_render_without_warnings() {
    let (dir, written) = man_pages();
    for p in written {
        let o = std::process::Command::new("groff")
            .args(["-man", "-Tutf8", "-ww", "-z"])
            .arg(&p)
            .output();
        match o {
            Ok(o) => assert!(
                o.status.success() && o.stderr.is_empty(),
                "{}: {}",
                p.display(),
                text(&o.stderr)
            ),
            Err(_) => {
                eprintln!("note: groff is not installed; the man pages' rendering is not checked");
                return;
            }
        }
    }
    drop(dir);
}
