//! The one answer path for interactive and unattended runs.
//!
//! Each question names its key in the answers file. The answer is taken from the provided
//! answers when it is there (and checked by [`crate::answers::check_field`], exactly as a
//! typed answer is); otherwise a person is asked through dialoguer with the detected default;
//! with nobody to ask, the question fails naming the missing key. Every answer given is
//! recorded at its key, so `--record-answers` writes a file `run --answers` accepts.

use serde_json::Value;

use crate::answers::check_field;
use crate::steps::{Ask, AskError};

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
    provided: Value,
    recorded: Value,
    mode: Mode,
    /// A scripted person: what they type at each key (Enter, taking the default, where the
    /// script has nothing). `None`: a real terminal.
    script: Option<Value>,
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
    /// An asker over provided answers (an empty object when there are none).
    pub fn new(provided: Value, mode: Mode) -> Self {
        let provided = if provided.is_object() {
            provided
        } else {
            Value::Object(Default::default())
        };
        let mut recorded = Value::Object(Default::default());
        set_path(&mut recorded, "version", Value::from(1));
        Asker {
            provided,
            recorded,
            mode,
            script: None,
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

    /// Everything answered so far (what `--record-answers` writes): the provided answers
    /// with every asked or recorded answer laid over them.
    pub fn recorded(&self) -> Value {
        let mut out = self.provided.clone();
        merge(&mut out, &self.recorded);
        out
    }

    /// Take the provided answer at `key` (validated) or ask for one of the given kind.
    fn answer(
        &mut self,
        key: &str,
        default: Option<Value>,
        prompt: impl FnOnce(Option<&Value>) -> Result<Value, AskError>,
    ) -> Result<Value, AskError> {
        // An answer given earlier in this run (another step asked the same key) counts as
        // provided: nobody is asked twice.
        let given = get_path(&self.recorded, key).or_else(|| get_path(&self.provided, key));
        let v = if let Some(v) = given {
            check_field(key, v).map_err(|reason| AskError::Invalid {
                key: key.to_string(),
                reason,
            })?;
            v.clone()
        } else {
            match (self.mode, default) {
                (Mode::Interactive, d) if self.script.is_some() => {
                    let typed = self.script.as_ref().and_then(|s| get_path(s, key)).cloned();
                    let v = typed.or(d).ok_or_else(|| AskError::Missing {
                        key: key.to_string(),
                    })?;
                    check_field(key, &v).map_err(|reason| AskError::Invalid {
                        key: key.to_string(),
                        reason,
                    })?;
                    v
                }
                (Mode::Interactive, d) => prompt(d.as_ref())?,
                (_, Some(d)) => d,
                (_, None) => {
                    return Err(AskError::Missing {
                        key: key.to_string(),
                    })
                }
            }
        };
        set_path(&mut self.recorded, key, v.clone());
        Ok(v)
    }
}

/// Lay `over` onto `base`: objects merge key by key, anything else is replaced.
fn merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                merge(b.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (b, o) => *b = o.clone(),
    }
}

fn terminal(e: dialoguer::Error) -> AskError {
    let dialoguer::Error::IO(io) = e;
    if io.kind() == std::io::ErrorKind::Interrupted {
        AskError::Interrupted
    } else {
        AskError::Terminal(io.to_string())
    }
}

impl Ask for Asker {
    fn text(
        &mut self,
        key: &str,
        question: &str,
        default: Option<&str>,
    ) -> Result<String, AskError> {
        let owned_key = key.to_string();
        let v = self.answer(key, default.map(Value::from), |d| {
            let theme = dialoguer::theme::ColorfulTheme::default();
            let mut input = dialoguer::Input::<String>::with_theme(&theme)
                .with_prompt(question)
                .validate_with(move |s: &String| check_field(&owned_key, &Value::from(s.as_str())));
            if let Some(d) = d.and_then(Value::as_str) {
                input = input.default(d.to_string());
            }
            crate::progress::suspend(|| input.interact_text())
                .map(Value::from)
                .map_err(terminal)
        })?;
        Ok(match v {
            Value::String(s) => s,
            other => other.to_string(),
        })
    }

    fn confirm(&mut self, key: &str, question: &str, default: bool) -> Result<bool, AskError> {
        let v = self.answer(key, Some(Value::from(default)), |_| {
            let theme = dialoguer::theme::ColorfulTheme::default();
            let confirm = dialoguer::Confirm::with_theme(&theme)
                .with_prompt(question)
                .default(default);
            crate::progress::suspend(|| confirm.interact())
                .map(Value::from)
                .map_err(terminal)
        })?;
        v.as_bool().ok_or_else(|| AskError::Invalid {
            key: key.to_string(),
            reason: "should be true or false".into(),
        })
    }

    fn choose(
        &mut self,
        key: &str,
        question: &str,
        choices: &[&str],
        default: usize,
    ) -> Result<String, AskError> {
        let d = choices.get(default).map(|c| Value::from(*c));
        let v = self.answer(key, d, |_| {
            let theme = dialoguer::theme::ColorfulTheme::default();
            let select = dialoguer::Select::with_theme(&theme)
                .with_prompt(question)
                .items(choices)
                .default(default);
            crate::progress::suspend(|| select.interact())
                .map(|i| Value::from(choices[i]))
                .map_err(terminal)
        })?;
        let s = v.as_str().unwrap_or_default().to_string();
        if choices.contains(&s.as_str()) {
            Ok(s)
        } else {
            Err(AskError::Invalid {
                key: key.to_string(),
                reason: format!("{s:?} is not one of {}", choices.join(", ")),
            })
        }
    }

    fn number(&mut self, key: &str, question: &str, default: Option<i64>) -> Result<i64, AskError> {
        let owned_key = key.to_string();
        let v = self.answer(key, default.map(Value::from), |d| {
            let theme = dialoguer::theme::ColorfulTheme::default();
            let mut input = dialoguer::Input::<i64>::with_theme(&theme)
                .with_prompt(question)
                .validate_with(move |n: &i64| check_field(&owned_key, &Value::from(*n)));
            if let Some(d) = d.and_then(Value::as_i64) {
                input = input.default(d);
            }
            crate::progress::suspend(|| input.interact_text())
                .map(Value::from)
                .map_err(terminal)
        })?;
        v.as_i64().ok_or_else(|| AskError::Invalid {
            key: key.to_string(),
            reason: "should be a whole number".into(),
        })
    }

    fn provided(&self, key: &str) -> Option<Value> {
        match (get_path(&self.provided, key), get_path(&self.recorded, key)) {
            (Some(p), Some(r)) => {
                let mut v = p.clone();
                merge(&mut v, r);
                Some(v)
            }
            (p, r) => r.or(p).cloned(),
        }
    }

    fn record(&mut self, key: &str, value: Value) {
        set_path(&mut self.recorded, key, value);
    }

    fn interactive(&self) -> bool {
        self.mode == Mode::Interactive
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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

    #[test]
    fn provided_answers_are_validated_like_typed_ones_and_recorded() {
        let mut a = Asker::unattended(json!({"volume": {"mount_point": "/etc"}}));
        let e = a
            .text("volume.mount_point", "Mount point", None)
            .unwrap_err();
        assert!(matches!(e, AskError::Invalid { .. }), "{e:?}");
        let mut a = Asker::unattended(json!({"volume": {"mount_point": "/mnt/data"}}));
        assert_eq!(
            a.text("volume.mount_point", "q", None).unwrap(),
            "/mnt/data"
        );
        assert_eq!(
            get_path(&a.recorded(), "volume.mount_point"),
            Some(&json!("/mnt/data"))
        );
    }

    #[test]
    fn recorded_answers_replay_what_was_provided_and_what_was_asked() {
        let template: Value = serde_json::from_str(crate::answers::TEMPLATE).unwrap();
        let mut a = Asker::unattended(template.clone());
        a.record("volume.mount_point", json!("/mnt/other"));
        let rec = a.recorded();
        assert_eq!(rec["volume"]["mount_point"], json!("/mnt/other"));
        assert_eq!(rec["target"], template["target"]);
        assert!(crate::answers::validate(&rec, &|_| None).is_empty());
    }

    #[test]
    fn a_key_answered_earlier_in_the_run_is_not_asked_again() {
        let mut a = Asker::new(json!({}), Mode::Defaults);
        assert_eq!(a.text("ports[0].netdev", "q", Some("ib0")).unwrap(), "ib0");
        // A later step offering another default still gets the first answer.
        assert_eq!(a.text("ports[0].netdev", "q", Some("ib9")).unwrap(), "ib0");
        assert_eq!(a.provided("ports[0].netdev"), Some(json!("ib0")));
    }

    #[test]
    fn unattended_missing_answers_take_a_default_or_name_the_key() {
        let mut a = Asker::unattended(json!({}));
        assert!(!a.confirm("host.allow_unsupported_os", "q", false).unwrap());
        assert_eq!(
            a.text("volume.mount_point", "q", None).unwrap_err(),
            AskError::Missing {
                key: "volume.mount_point".into()
            }
        );
        assert_eq!(
            a.choose("fabric", "q", &["auto", "roce"], 0).unwrap(),
            "auto"
        );
    }
}
