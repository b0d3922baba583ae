//! The one answer path for interactive and unattended runs.
//!
//! Each question names its key in the answers file. The answer is taken from the provided
//! answers when it is there (and checked by [`crate::answers::check_field`], exactly as a
//! typed answer is); otherwise a person is asked through dialoguer with the detected default;
//! with nobody to ask, the question fails naming the missing key. Every answer given is
//! recorded at its key, so `--record-answers` writes a file `run --answers` accepts.
//!
//! At the terminal, parentheses after a question only ever mean its default: a question's
//! own note in parentheses is shown after a dash, and Enter without a default says an answer
//! is needed. Esc or `q` at a yes/no or a choice, and Ctrl-C anywhere, are
//! [`AskError::Interrupted`], with the cursor dialoguer hid shown again.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::settings::Answers;
use crate::steps::{Ask, AskError, Question, Reply};

/// How questions are answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A person at a terminal.
    Interactive,
    /// Only the answers file; missing optional answers take their default.
    Unattended,
    /// A dry run with nobody to ask: provided answers, else detected defaults, else missing.
    Defaults,
}

/// Answers from a file, a terminal, or both.
#[derive(Debug, Clone)]
pub struct Asker {
    answers: Answers,
    /// Provided answers that did not parse, by key, with the reason (a lenient reader: a
    /// step that needs one of them fails naming it).
    refused: BTreeMap<String, String>,
    mode: Mode,
    /// A scripted person: what they type at each key (Enter, taking the default, where the
    /// script has nothing). `None`: a real terminal.
    script: Option<Value>,
    /// Mount points other volumes hold: a typed `volume.mount_point` among them is refused
    /// where it is typed (see [`Asker::refuse_mount_points`]).
    taken: Vec<TakenMountPoint>,
}

/// A mount point another volume holds: mounted there now, or listed for it in /etc/fstab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TakenMountPoint {
    /// The directory.
    pub mount_point: String,
    /// What holds it (`/dev/sdb1`, `UUID=...`).
    pub source: String,
    /// Whether it is mounted now (else only listed in /etc/fstab).
    pub mounted: bool,
}

impl TakenMountPoint {
    /// Why a typed mount point is refused.
    fn reason(&self) -> String {
        if self.mounted {
            format!(
                "{} already has {} mounted on it (another volume): choose another mount point",
                self.mount_point, self.source
            )
        } else {
            format!(
                "/etc/fstab already mounts {} on {} (another volume): choose another mount point",
                self.source, self.mount_point
            )
        }
    }
}

/// `/mnt/data/` and `/mnt/data` name one directory.
fn same_dir(a: &str, b: &str) -> bool {
    let norm = |s: &str| {
        let t = s.trim().trim_end_matches('/');
        if t.is_empty() {
            "/".to_string()
        } else {
            t.to_string()
        }
    };
    norm(a) == norm(b)
}

/// Split `a.b[2].c` into segments: keys and indexes.
fn segments(key: &str) -> Vec<Seg> {
    let mut out = Vec::new();
    for part in key.split('.') {
        let mut rest = part;
        if let Some(i) = rest.find('[') {
            out.push(Seg::Key(rest[..i].to_string()));
            rest = &rest[i..];
            while let Some(end) = rest.find(']') {
                if let Ok(n) = rest[1..end].parse() {
                    out.push(Seg::Index(n));
                }
                rest = &rest[end + 1..];
                if !rest.starts_with('[') {
                    break;
                }
            }
        } else {
            out.push(Seg::Key(rest.to_string()));
        }
    }
    out
}

enum Seg {
    Key(String),
    Index(usize),
}

/// The value at a key path.
pub fn get_path<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    let mut cur = v;
    for s in segments(key) {
        cur = match s {
            Seg::Key(k) => cur.get(k)?,
            Seg::Index(i) => cur.get(i)?,
        };
    }
    Some(cur)
}

/// The value at a key path, to change it.
pub fn get_path_mut<'a>(v: &'a mut Value, key: &str) -> Option<&'a mut Value> {
    let mut cur = v;
    for s in segments(key) {
        cur = match s {
            Seg::Key(k) => cur.get_mut(k)?,
            Seg::Index(i) => cur.get_mut(i)?,
        };
    }
    Some(cur)
}

/// Set the value at a key path, creating objects and array slots on the way.
pub fn set_path(v: &mut Value, key: &str, value: Value) {
    let segs = segments(key);
    let mut cur = v;
    for s in segs {
        cur = match s {
            Seg::Key(k) => {
                if !cur.is_object() {
                    *cur = Value::Object(Default::default());
                }
                cur.as_object_mut()
                    .expect("just made an object")
                    .entry(k)
                    .or_insert(Value::Null)
            }
            Seg::Index(i) => {
                if !cur.is_array() {
                    *cur = Value::Array(Vec::new());
                }
                let arr = cur.as_array_mut().expect("just made an array");
                while arr.len() <= i {
                    arr.push(Value::Null);
                }
                &mut arr[i]
            }
        };
    }
    *cur = value;
}

impl Asker {
    /// An asker over provided answers (an empty object when there are none). Values that do
    /// not parse are kept out, each with its reason for the step that needs it.
    pub fn new(provided: Value, mode: Mode) -> Self {
        let provided = if provided.is_object() {
            provided
        } else {
            Value::Object(Default::default())
        };
        let problems = crate::answers::check_partial(&provided);
        let answers = crate::answers::typed(&provided, &problems);
        Asker {
            answers,
            refused: problems.into_iter().map(|p| (p.path, p.message)).collect(),
            mode,
            script: None,
            taken: Vec::new(),
        }
    }

    /// An asker over answers already read and checked.
    pub fn with_answers(answers: Answers, mode: Mode) -> Self {
        Asker {
            answers,
            refused: BTreeMap::new(),
            mode,
            script: None,
            taken: Vec::new(),
        }
    }

    /// An interactive asker whose person types from a script: the answer at each asked key,
    /// or Enter (the offered default) where the script has none. What is typed is checked as
    /// at a terminal. Tests use it to run interactive paths without one.
    pub fn scripted(typed: Value) -> Self {
        let mut a = Self::new(Value::Object(Default::default()), Mode::Interactive);
        a.script = Some(typed);
        a
    }

    /// An unattended asker (tests use it as the fake answer source).
    pub fn unattended(provided: Value) -> Self {
        Self::new(provided, Mode::Unattended)
    }

    /// From now on, refuse a typed `volume.mount_point` that another volume holds, saying
    /// which; an empty list lifts the check. (The filesystem step's plan refuses such an
    /// answer too; this asks again where it is typed instead of failing after the questions.)
    pub fn refuse_mount_points(&mut self, taken: Vec<TakenMountPoint>) {
        self.taken = taken;
    }

    /// Everything answered so far (what `--record-answers` writes): the provided answers
    /// with every asked answer laid over them.
    pub fn recorded(&self) -> Value {
        serde_json::to_value(&self.answers).unwrap_or(Value::Null)
    }

    /// A scripted person's reply at `key`: what the script types, else Enter.
    fn scripted_reply(&self, key: &str, q: &Question<'_>) -> Result<Reply, AskError> {
        let typed = self.script.as_ref().and_then(|s| get_path(s, key));
        let invalid = |reason: String| AskError::Invalid {
            key: key.to_string(),
            reason,
        };
        match (q, typed) {
            (Question::Text { check, .. }, Some(v)) => {
                let text = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                check(&text).map_err(invalid)?;
                Ok(Reply::Text(text))
            }
            (Question::Confirm { .. }, Some(v)) => v
                .as_bool()
                .map(Reply::Yes)
                .ok_or_else(|| invalid("should be true or false".into())),
            (Question::Secret, Some(v)) => v
                .as_str()
                .filter(|s| !s.is_empty())
                .map(|s| Reply::Text(s.to_string()))
                .ok_or_else(|| invalid("should be a non-empty string".into())),
            (Question::Select { choices, .. }, Some(v)) => {
                let word = v.as_str().unwrap_or_default();
                choices
                    .iter()
                    .position(|c| *c == word)
                    .map(Reply::Chose)
                    .ok_or_else(|| {
                        invalid(format!("{word:?} is not one of {}", choices.join(", ")))
                    })
            }
            // Enter on a default: checked as dialoguer checks it at a terminal.
            (
                Question::Text {
                    default: Some(d),
                    check,
                },
                None,
            ) => {
                check(d).map_err(invalid)?;
                Ok(Reply::Text(d.clone()))
            }
            (q, None) => default_reply(key, q),
        }
    }
}

/// Enter at a prompt, or nobody to ask: the default, else the key is missing.
fn default_reply(key: &str, q: &Question<'_>) -> Result<Reply, AskError> {
    match q {
        Question::Text {
            default: Some(d), ..
        } => Ok(Reply::Text(d.clone())),
        Question::Text { default: None, .. } | Question::Secret => Err(AskError::Missing {
            key: key.to_string(),
        }),
        Question::Confirm { default } => Ok(Reply::Yes(*default)),
        Question::Select { default, .. } => Ok(Reply::Chose(*default)),
    }
}

fn terminal(e: dialoguer::Error) -> AskError {
    // dialoguer hides the cursor while a choice is drawn and shows it again only on the
    // normal way out: Ctrl-C (an `Interrupted` read) would leave the shell without one.
    show_cursor();
    let dialoguer::Error::IO(io) = e;
    if io.kind() == std::io::ErrorKind::Interrupted {
        AskError::Interrupted
    } else {
        AskError::Terminal(io.to_string())
    }
}

/// Show the terminal's cursor again (best effort: there may be no terminal).
pub fn show_cursor() {
    let term = console::Term::stderr();
    if term.is_term() {
        let _ = term.show_cursor();
    }
}

/// Split a question's trailing note in parentheses, `... (like 192.168.130.10/24)` or
/// `... (RDMA ports: ib0, ib1)`, from its text.
///
/// dialoguer draws a default as `(value)` after the question, so a note in parentheses reads
/// as a default, and Enter on it only asks again. The note is shown as words after a dash
/// instead, so that on a text question parentheses only ever mean the default.
pub fn split_note(question: &str) -> (&str, Option<&str>) {
    let Some(inner_end) = question.strip_suffix(')').map(str::len) else {
        return (question, None);
    };
    let mut depth = 0usize;
    for (i, c) in question[..inner_end].char_indices().rev() {
        match c {
            ')' => depth += 1,
            '(' if depth > 0 => depth -= 1,
            '(' => {
                let text = question[..i].trim_end();
                let note = &question[i + 1..inner_end];
                return if text.is_empty() {
                    (question, None)
                } else {
                    (text, Some(note))
                };
            }
            _ => {}
        }
    }
    (question, None)
}

/// What a text prompt shows: the question, and its note (if any) as words that cannot be
/// mistaken for a default; an example reads "for example ...".
pub fn shown_question(question: &str) -> String {
    match split_note(question) {
        (text, Some(note)) => match note.strip_prefix("like ") {
            Some(example) => format!("{text} \u{2014} for example {example}"),
            None => format!("{text} \u{2014} {note}"),
        },
        (text, None) => text.to_string(),
    }
}

/// The reason given when Enter is pressed on a question without a default.
pub fn empty_reason(question: &str) -> String {
    match split_note(question).1.and_then(|n| n.strip_prefix("like ")) {
        Some(example) => format!(
            "an answer is needed (there is no default; the example is not one): type it, like {example}"
        ),
        None => "an answer is needed (there is no default): type it".to_string(),
    }
}

/// Esc or `q` at a choice: the person wants to stop, as with Ctrl-C.
fn quit(answer: Option<Reply>) -> Result<Reply, AskError> {
    answer.ok_or(AskError::Interrupted)
}

/// Ask a person at the terminal.
fn terminal_reply(question: &str, q: &Question<'_>) -> Result<Reply, AskError> {
    let theme = dialoguer::theme::ColorfulTheme::default();
    match q {
        Question::Text { default, check } => {
            let shown = shown_question(question);
            let empty = empty_reason(question);
            let has_default = default.is_some();
            let mut input = dialoguer::Input::<String>::with_theme(&theme)
                .with_prompt(shown)
                .allow_empty(true)
                .validate_with(|s: &String| {
                    if s.trim().is_empty() && !has_default {
                        Err(empty.clone())
                    } else {
                        check(s)
                    }
                });
            if let Some(d) = default {
                input = input.default(d.clone());
            }
            crate::progress::suspend(|| input.interact_text())
                .map(Reply::Text)
                .map_err(terminal)
        }
        Question::Confirm { default } => {
            let confirm = dialoguer::Confirm::with_theme(&theme)
                .with_prompt(question)
                .default(*default);
            crate::progress::suspend(|| confirm.interact_opt())
                .map_err(terminal)
                .and_then(|a| quit(a.map(Reply::Yes)))
        }
        Question::Secret => {
            // Echo off; an empty reply is asked again by dialoguer.
            let password = dialoguer::Password::with_theme(&theme).with_prompt(question);
            crate::progress::suspend(|| password.interact())
                .map(Reply::Text)
                .map_err(terminal)
        }
        Question::Select { choices, default } => {
            let select = dialoguer::Select::with_theme(&theme)
                .with_prompt(question)
                .items(choices.iter())
                .default(*default);
            crate::progress::suspend(|| select.interact_opt())
                .map_err(terminal)
                .and_then(|a| quit(a.map(Reply::Chose)))
        }
    }
}

impl Ask for Asker {
    fn answers(&self) -> &Answers {
        &self.answers
    }

    fn answers_mut(&mut self) -> &mut Answers {
        &mut self.answers
    }

    fn refused(&self, key: &str) -> Option<String> {
        // The key itself, or a value under it (`target.portals[1].address` under
        // `target.portals`): the message names the exact key.
        self.refused
            .iter()
            .find(|(k, _)| {
                k.as_str() == key
                    || k.strip_prefix(key)
                        .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
            })
            .map(|(k, m)| {
                if k == key {
                    m.clone()
                } else {
                    format!("{k}: {m}")
                }
            })
    }

    fn prompt(&mut self, key: &str, question: &str, q: Question<'_>) -> Result<Reply, AskError> {
        let taken = std::mem::take(&mut self.taken);
        let r = self.prompt_checked(key, question, q, &taken);
        self.taken = taken;
        r
    }

    fn interactive(&self) -> bool {
        self.mode == Mode::Interactive
    }
}

impl Asker {
    /// Ask, with the mount points other volumes hold refused at `volume.mount_point`.
    fn prompt_checked(
        &mut self,
        key: &str,
        question: &str,
        q: Question<'_>,
        taken: &[TakenMountPoint],
    ) -> Result<Reply, AskError> {
        let own_check;
        let q = match q {
            Question::Text { default, check }
                if key == "volume.mount_point"
                    || (key.starts_with("volumes[") && key.ends_with("].mount_point")) =>
            {
                own_check = move |s: &str| {
                    check(s)?;
                    match taken.iter().find(|t| same_dir(&t.mount_point, s)) {
                        Some(t) => Err(t.reason()),
                        None => Ok(()),
                    }
                };
                Question::Text {
                    default,
                    check: &own_check,
                }
            }
            q => q,
        };
        match self.mode {
            Mode::Interactive if self.script.is_some() => self.scripted_reply(key, &q),
            Mode::Interactive => terminal_reply(question, &q),
            Mode::Unattended | Mode::Defaults => default_reply(key, &q),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::{Fabric, MountPoint, Netdev};
    use serde_json::json;

    #[test]
    fn a_note_in_parentheses_is_shown_as_words_so_only_a_default_has_them() {
        let q = "IPv4 address with prefix for vA (like 192.168.130.10/24)";
        assert_eq!(
            shown_question(q),
            "IPv4 address with prefix for vA \u{2014} for example 192.168.130.10/24"
        );
        assert!(empty_reason(q).ends_with("like 192.168.130.10/24"));
        assert_eq!(
            shown_question("Network interface of iSER port 1 (RDMA ports: ib0 (mlx5_0 port 1))"),
            "Network interface of iSER port 1 \u{2014} RDMA ports: ib0 (mlx5_0 port 1)"
        );
        assert_eq!(shown_question("Mount point"), "Mount point");
        assert_eq!(shown_question("(odd)"), "(odd)");
        assert_eq!(shown_question("unbalanced)"), "unbalanced)");
        assert!(!empty_reason("Mount point").contains("like"));
    }

    #[test]
    fn a_secret_is_typed_or_missing_and_never_recorded() {
        let mut a = Asker::scripted(json!({"array": {"password": "s3cret-pw"}}));
        let r = a
            .prompt("array.password", "Password", Question::Secret)
            .unwrap();
        assert_eq!(r, Reply::Text("s3cret-pw".into()));
        assert!(!a.recorded().to_string().contains("s3cret-pw"));
        // Enter is no answer: a secret has no default.
        let mut a = Asker::scripted(json!({}));
        let e = a
            .prompt("array.password", "Password", Question::Secret)
            .unwrap_err();
        assert!(matches!(e, AskError::Missing { .. }), "{e:?}");
        let mut a = Asker::scripted(json!({"array": {"password": ""}}));
        assert!(a
            .prompt("array.password", "Password", Question::Secret)
            .is_err());
        // Nobody to ask: missing, named by its key.
        let mut a = Asker::unattended(json!({}));
        let e = a
            .prompt("array.password", "Password", Question::Secret)
            .unwrap_err();
        assert!(matches!(e, AskError::Missing { ref key } if key == "array.password"));
    }

    #[test]
    fn a_typed_mount_point_another_volume_holds_is_refused_with_the_reason() {
        let mut a = Asker::scripted(json!({"volume": {"mount_point": "/mnt/data"}}));
        a.refuse_mount_points(vec![TakenMountPoint {
            mount_point: "/mnt/data/".into(),
            source: "/dev/sdb1".into(),
            mounted: true,
        }]);
        let e = mount_point(&mut a, None).unwrap_err();
        assert!(
            matches!(&e, AskError::Invalid { reason, .. } if reason == "/mnt/data/ already has /dev/sdb1 mounted on it (another volume): choose another mount point"),
            "{e:?}"
        );
        // Enter on a default another volume holds is refused too.
        let mut a = Asker::scripted(json!({}));
        a.refuse_mount_points(vec![TakenMountPoint {
            mount_point: "/mnt/ext4".into(),
            source: "UUID=1234".into(),
            mounted: false,
        }]);
        let e = mount_point(&mut a, Some("/mnt/ext4")).unwrap_err();
        assert!(format!("{e:?}").contains("/etc/fstab already mounts UUID=1234"));
        assert_eq!(
            mount_point(&mut a, Some("/mnt/other")).unwrap(),
            "/mnt/other"
        );
        // Other keys are not concerned, and an empty list lifts the check.
        a.refuse_mount_points(Vec::new());
        let mut b = Asker::scripted(json!({"volume": {"mount_point": "/mnt/ext4"}}));
        assert_eq!(mount_point(&mut b, None).unwrap(), "/mnt/ext4");
    }

    #[test]
    fn paths_get_and_set() {
        let mut v = json!({});
        set_path(&mut v, "ports[1].address", json!("10.0.0.1/24"));
        set_path(
            &mut v,
            "subnet_manager.priorities.0x248a070300a80a80",
            json!(15),
        );
        assert_eq!(
            v,
            json!({"ports": [null, {"address": "10.0.0.1/24"}],
                   "subnet_manager": {"priorities": {"0x248a070300a80a80": 15}}})
        );
        assert_eq!(
            get_path(&v, "ports[1].address"),
            Some(&json!("10.0.0.1/24"))
        );
        assert_eq!(get_path(&v, "ports[2].address"), None);
    }

    fn mount_point(a: &mut Asker, default: Option<&str>) -> Result<String, AskError> {
        let a: &mut dyn Ask = a;
        a.want(
            "volume.mount_point",
            "Mount point",
            default.map(|d| d.parse::<MountPoint>().unwrap()),
            |x| &mut x.volume.mount_point,
        )
        .map(|m| m.to_string())
    }

    fn netdev(a: &mut Asker, default: &str) -> Result<String, AskError> {
        let a: &mut dyn Ask = a;
        a.want("ports[0].netdev", "q", default.parse().ok(), |x| {
            &mut x.port_mut(0).netdev
        })
        .map(|n: Netdev| n.to_string())
    }

    #[test]
    fn provided_answers_are_validated_like_typed_ones_and_recorded() {
        let mut a = Asker::unattended(json!({"volume": {"mount_point": "/etc"}}));
        let e = mount_point(&mut a, None).unwrap_err();
        assert!(matches!(e, AskError::Invalid { .. }), "{e:?}");
        let mut a = Asker::unattended(json!({"volume": {"mount_point": "/mnt/data"}}));
        assert_eq!(mount_point(&mut a, None).unwrap(), "/mnt/data");
        assert_eq!(
            get_path(&a.recorded(), "volume.mount_point"),
            Some(&json!("/mnt/data"))
        );
    }

    #[test]
    fn recorded_answers_replay_what_was_provided_and_what_was_asked() {
        let template: Value = serde_json::from_str(crate::answers::TEMPLATE).unwrap();
        let mut a = Asker::unattended(template.clone());
        a.answers_mut().volume.mount_point = Some("/mnt/other".parse().unwrap());
        let rec = a.recorded();
        assert_eq!(rec["volume"]["mount_point"], json!("/mnt/other"));
        assert_eq!(rec["target"], template["target"]);
        assert!(crate::answers::validate(&rec, &|_| None).is_empty());
    }

    #[test]
    fn a_key_answered_earlier_in_the_run_is_not_asked_again() {
        let mut a = Asker::new(json!({}), Mode::Defaults);
        assert_eq!(netdev(&mut a, "ib0").unwrap(), "ib0");
        // A later step offering another default still gets the first answer.
        assert_eq!(netdev(&mut a, "ib9").unwrap(), "ib0");
        assert_eq!(
            get_path(&a.recorded(), "ports[0].netdev"),
            Some(&json!("ib0"))
        );
    }

    #[test]
    fn unattended_missing_answers_take_a_default_or_name_the_key() {
        let mut a = Asker::unattended(json!({}));
        let ask: &mut dyn Ask = &mut a;
        assert!(!ask
            .want_yes("host.allow_unsupported_os", "q", false, |x| {
                &mut x.host.allow_unsupported_os
            })
            .unwrap());
        assert_eq!(
            mount_point(&mut a, None).unwrap_err(),
            AskError::Missing {
                key: "volume.mount_point".into()
            }
        );
        let ask: &mut dyn Ask = &mut a;
        assert_eq!(
            ask.want_choice(
                "fabric",
                "q",
                &[Fabric::Auto, Fabric::Roce],
                Fabric::Auto,
                |x| { &mut x.fabric }
            )
            .unwrap(),
            Fabric::Auto
        );
    }

    #[test]
    fn a_partial_file_keeps_its_good_answers_and_names_the_bad_one_when_it_is_needed() {
        let mut a = Asker::unattended(json!({
            "ports": [{"netdev": "ib0", "address": "10.0.0.300/24"}],
            "target": {"portals": [{"address": "10.0.0.1"}, {"address": "nope"}]}
        }));
        assert_eq!(netdev(&mut a, "x").unwrap(), "ib0");
        let ask: &mut dyn Ask = &mut a;
        let e = ask
            .want("ports[0].address", "q", None, |x| {
                &mut x.port_mut(0).address
            })
            .unwrap_err();
        assert!(
            matches!(&e, AskError::Invalid { key, reason } if key == "ports[0].address" && reason.contains("is not an IPv4 address")),
            "{e:?}"
        );
        let e = ask.check_refused("target.portals").unwrap_err();
        assert!(e.to_string().contains("target.portals[1].address"), "{e}");
    }
}
