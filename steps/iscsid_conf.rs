//! Editing `/etc/iscsi/iscsid.conf` as text: set full key names, keep everything else.
//!
//! Contract: pure functions, no I/O. [`set_keys`] changes only the lines that assign the
//! keys it is given (plus the lines it inserts) and keeps every other line byte for byte,
//! so the diff shown to the operator is exactly what changes. Its output fed back with
//! the same settings comes back unchanged.
//!
//! How open-iscsi reads the file (`idbm_recinfo_config` in `usr/idbm.c`), which these
//! functions follow:
//! - each line is stripped of surrounding whitespace; empty lines and lines starting
//!   with `#` are skipped, so `#` is a comment only at the start of a line;
//! - the key runs to the first whitespace or `=`, then `=`, then the value is the rest
//!   of the line; `key=value` and `key   =   value` are the same;
//! - keys are compared whole and exactly against the known names; an unknown key, such
//!   as the vendor's short `replacement_timeout = 20`, is skipped without a word
//!   ([`find_short_keys`] spots those);
//! - lines are applied in order, so when a key is assigned twice the LAST one wins
//!   ([`get_key`]);
//! - a line not ended by a newline counts as "too long" and is skipped: an unterminated
//!   last line is ignored. [`get_key`] reports what iscsid sees, and [`set_keys`] always
//!   ends its output with a line terminator.
//!
//! iscsid.conf only seeds node records created afterwards (discovery or `-o new`);
//! existing records keep their values and need `iscsiadm -m node -o update`.

use serde::{Deserialize, Serialize};

/// The comment line above the settings the wizard had to append.
pub const WIZARD_HEADER: &str = "# Set by iser-wizard";

/// Prefix of an assignment the wizard disabled because an earlier line of the same key
/// now holds the wanted value.
pub const DISABLED_PREFIX: &str =
    "# Disabled by iser-wizard (duplicate, the first assignment above holds): ";

/// A setting that cannot be written to iscsid.conf as given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum SettingError {
    /// A short name such as `replacement_timeout`: open-iscsi would silently ignore it.
    #[error(
        "{key:?} is not a full iscsid.conf key and would be ignored{}",
        suggestion.as_ref().map(|s| format!("; did you mean {s:?}?")).unwrap_or_default()
    )]
    ShortKey {
        /// The key as given.
        key: String,
        /// The full name it most likely stands for.
        suggestion: Option<String>,
    },
    /// A key that no iscsid.conf line can express (empty, whitespace, `=`, `#`).
    #[error("{key:?} cannot be written as an iscsid.conf key")]
    BadKey {
        /// The key as given.
        key: String,
    },
    /// A value that would not read back the same (empty, surrounding whitespace, a line
    /// break or another control character).
    #[error("{value:?} cannot be written as the value of {key}")]
    BadValue {
        /// The key.
        key: String,
        /// The value as given.
        value: String,
    },
}

/// Check that `key = value` can be written and will be read back by open-iscsi as given.
pub fn check_setting(key: &str, value: &str) -> Result<(), SettingError> {
    let bad_key = key.is_empty()
        || key.starts_with('#')
        || key.contains('=')
        || key.chars().any(|c| c.is_whitespace() || c.is_control());
    if bad_key {
        return Err(SettingError::BadKey {
            key: key.to_string(),
        });
    }
    if !key.contains('.') {
        return Err(SettingError::ShortKey {
            key: key.to_string(),
            suggestion: suggest_full_key(key).map(str::to_string),
        });
    }
    if value.is_empty() || value.trim() != value || value.chars().any(char::is_control) {
        return Err(SettingError::BadValue {
            key: key.to_string(),
            value: value.to_string(),
        });
    }
    Ok(())
}

/// Check every setting; the first one that cannot be written is the error.
pub fn check_settings(settings: &[(&str, &str)]) -> Result<(), SettingError> {
    settings.iter().try_for_each(|(k, v)| check_setting(k, v))
}

/// The full key a short or partial name most likely stands for, by its last
/// dot-separated part (`replacement_timeout` -> `node.session.timeo.replacement_timeout`).
pub fn suggest_full_key(key: &str) -> Option<&'static str> {
    let last = key.rsplit('.').next().unwrap_or(key);
    let full = match last {
        "startup" => "node.startup",
        "replacement_timeout" => "node.session.timeo.replacement_timeout",
        "login_timeout" => "node.conn[0].timeo.login_timeout",
        "logout_timeout" => "node.conn[0].timeo.logout_timeout",
        "noop_out_interval" => "node.conn[0].timeo.noop_out_interval",
        "noop_out_timeout" => "node.conn[0].timeo.noop_out_timeout",
        "abort_timeout" => "node.session.err_timeo.abort_timeout",
        "lu_reset_timeout" => "node.session.err_timeo.lu_reset_timeout",
        "tgt_reset_timeout" => "node.session.err_timeo.tgt_reset_timeout",
        "initial_login_retry_max" => "node.session.initial_login_retry_max",
        "cmds_max" => "node.session.cmds_max",
        "queue_depth" => "node.session.queue_depth",
        "nr_sessions" => "node.session.nr_sessions",
        "authmethod" => "node.session.auth.authmethod",
        _ => return None,
    };
    (full != key).then_some(full)
}

/// C `isspace` in the "C" locale, which open-iscsi uses to trim and split lines.
fn is_c_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c')
}

/// `(key, value)` of a line open-iscsi would apply, read the way idbm does.
fn assignment(body: &str) -> Option<(&str, &str)> {
    let t = body.trim_matches(is_c_space);
    if t.is_empty() || t.starts_with('#') {
        return None;
    }
    let end = t.find(|c| is_c_space(c) || c == '=').unwrap_or(t.len());
    let key = &t[..end];
    let value = t[end..]
        .trim_start_matches(is_c_space)
        .strip_prefix('=')?
        .trim_start_matches(is_c_space);
    if key.is_empty() || value.is_empty() {
        return None;
    }
    Some((key, value))
}

/// The key of a commented-out example line (`# node.startup = manual`, `#key=value`).
fn commented_key(body: &str) -> Option<&str> {
    let t = body.trim_start_matches(is_c_space);
    if !t.starts_with('#') {
        return None;
    }
    let inner = t.trim_start_matches(|c| c == '#' || is_c_space(c));
    assignment(inner).map(|(k, _)| k)
}

/// One line: its text without the terminator, and the terminator (`""` only for an
/// unterminated last line).
struct Line {
    body: String,
    eol: &'static str,
}

fn split_lines(text: &str) -> Vec<Line> {
    text.split_inclusive('\n')
        .map(|piece| {
            if let Some(b) = piece.strip_suffix("\r\n") {
                Line {
                    body: b.to_string(),
                    eol: "\r\n",
                }
            } else if let Some(b) = piece.strip_suffix('\n') {
                Line {
                    body: b.to_string(),
                    eol: "\n",
                }
            } else {
                Line {
                    body: piece.to_string(),
                    eol: "",
                }
            }
        })
        .collect()
}

/// The value open-iscsi takes for `key` from this text: the last active assignment,
/// ignoring an unterminated last line as iscsid does. `None` when the key is not set, in
/// which case open-iscsi's built-in default applies.
pub fn get_key(text: &str, key: &str) -> Option<String> {
    split_lines(text)
        .iter()
        .filter(|l| !l.eol.is_empty())
        .filter_map(|l| assignment(&l.body))
        .rfind(|(k, _)| *k == key)
        .map(|(_, v)| v.to_string())
}

/// Active assignments whose key has no dot: 1-based line number and key. Every key
/// open-iscsi reads from iscsid.conf is a dotted name (`iscsid.startup`, `node.*`,
/// `discovery.*`), so these lines are silently ignored; the vendor procedure's
/// `replacement_timeout = 20` is the case that bites. [`suggest_full_key`] names the
/// likely intended key.
pub fn find_short_keys(text: &str) -> Vec<(usize, String)> {
    split_lines(text)
        .iter()
        .enumerate()
        .filter_map(|(i, l)| {
            let (k, _) = assignment(&l.body)?;
            (!k.contains('.')).then(|| (i + 1, k.to_string()))
        })
        .collect()
}

/// Set each full key to its value, keeping every other line as it is.
///
/// For each `(key, value)`, in order:
/// - the first active assignment of the key is rewritten in place as `key = value`
///   (keeping its indentation), or left untouched when it already holds the value;
/// - every later active assignment of the key is commented out behind
///   [`DISABLED_PREFIX`], since open-iscsi would let the last one win;
/// - with no active assignment, `key = value` goes right after the last commented-out
///   example of the key (`# node.startup = manual`), or, without one, at the end under
///   [`WIZARD_HEADER`] (one block shared by all appended keys).
///
/// Settings that [`check_setting`] rejects are skipped: a short key would be ignored by
/// open-iscsi and a value with a line break would inject lines. Call [`check_settings`]
/// first to report them. Inserted lines use the file's dominant line ending (CRLF or LF),
/// and the output always ends with one, because iscsid skips an unterminated last line.
pub fn set_keys(original: &str, settings: &[(&str, &str)]) -> String {
    let mut lines = split_lines(original);
    let crlf = lines.iter().filter(|l| l.eol == "\r\n").count();
    let lf = lines.iter().filter(|l| l.eol == "\n").count();
    let eol: &'static str = if crlf > lf { "\r\n" } else { "\n" };
    let new_line = |body: String| Line { body, eol };

    for &(key, value) in settings {
        if check_setting(key, value).is_err() {
            continue;
        }
        let active: Vec<usize> = lines
            .iter()
            .enumerate()
            .filter(|(_, l)| assignment(&l.body).is_some_and(|(k, _)| k == key))
            .map(|(i, _)| i)
            .collect();

        if let Some((&first, later)) = active.split_first() {
            let line = &mut lines[first];
            if assignment(&line.body).map(|(_, v)| v) != Some(value) {
                let indent_len = line.body.len() - line.body.trim_start_matches(is_c_space).len();
                line.body = format!("{}{key} = {value}", &line.body[..indent_len]);
            }
            for &i in later {
                let old = lines[i].body.trim_matches(is_c_space).to_string();
                lines[i].body = format!("{DISABLED_PREFIX}{old}");
            }
            continue;
        }

        let example = lines
            .iter()
            .rposition(|l| commented_key(&l.body) == Some(key));
        if let Some(i) = example {
            lines.insert(i + 1, new_line(format!("{key} = {value}")));
            continue;
        }

        match lines
            .iter()
            .position(|l| l.body.trim_end_matches(is_c_space) == WIZARD_HEADER)
        {
            Some(h) => {
                // After the header and the assignments that follow it.
                let mut at = h + 1;
                while at < lines.len() && assignment(&lines[at].body).is_some() {
                    at += 1;
                }
                lines.insert(at, new_line(format!("{key} = {value}")));
            }
            None => {
                if lines
                    .last()
                    .is_some_and(|l| !l.body.trim_matches(is_c_space).is_empty())
                {
                    lines.push(new_line(String::new()));
                }
                lines.push(new_line(WIZARD_HEADER.to_string()));
                lines.push(new_line(format!("{key} = {value}")));
            }
        }
    }

    let mut out = String::with_capacity(original.len() + 64);
    for l in &lines {
        out.push_str(&l.body);
        // Only the original last line can lack a terminator; give it one, or iscsid
        // skips it (and anything inserted after it would be glued to it).
        out.push_str(if l.eol.is_empty() { eol } else { l.eol });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal excerpt in the layout of the iscsid.conf Debian ships (commented
    /// examples, CHAP block, active defaults), written for these tests.
    const DEBIAN_STYLE: &str = "\
#
# Open-iSCSI initiator settings (test excerpt)
#

######################
# iscsid daemon config
######################
# Let systemd start iscsid on demand through its socket:
#iscsid.startup = /bin/systemctl start iscsid.socket

#############################
# NIC/HBA and driver settings
#############################
# To log in to node records at boot, use \"automatic\":
# node.startup = automatic
#
# To log in only when asked, use \"manual\" (the default):
node.startup = manual

# CHAP for normal sessions:
#node.session.auth.authmethod = CHAP
#node.session.auth.username = username
#node.session.auth.password = password

# Seconds a failed session may take to come back before I/O fails upward:
node.session.timeo.replacement_timeout = 120

# Seconds allowed for a login:
node.conn[0].timeo.login_timeout = 15
node.conn[0].startup = manual

# Commands queued per LUN:
# node.session.queue_depth = 32
";

    #[test]
    fn vendor_settings_change_only_their_lines() {
        let out = set_keys(
            DEBIAN_STYLE,
            &[
                ("node.startup", "automatic"),
                ("node.session.timeo.replacement_timeout", "20"),
                ("node.conn[0].timeo.login_timeout", "5"),
            ],
        );
        let want = DEBIAN_STYLE
            .replace("\nnode.startup = manual\n", "\nnode.startup = automatic\n")
            .replace("replacement_timeout = 120", "replacement_timeout = 20")
            .replace("login_timeout = 15", "login_timeout = 5");
        assert_eq!(out, want);
        // The commented example and node.conn[0].startup (another key) are untouched.
        assert!(out.contains("\n# node.startup = automatic\n"));
        assert!(out.contains("\nnode.conn[0].startup = manual\n"));
        assert_eq!(get_key(&out, "node.startup").as_deref(), Some("automatic"));
        assert_eq!(
            get_key(&out, "node.conn[0].startup").as_deref(),
            Some("manual")
        );
        assert_eq!(
            get_key(&out, "node.session.timeo.replacement_timeout").as_deref(),
            Some("20")
        );
        assert_eq!(set_keys(&out, &[("node.startup", "automatic")]), out);
    }

    #[test]
    fn commented_example_gets_the_setting_below_it() {
        let out = set_keys(
            DEBIAN_STYLE,
            &[
                ("node.session.queue_depth", "64"),
                ("iscsid.startup", "/usr/sbin/iscsid"),
            ],
        );
        let want = DEBIAN_STYLE
            .replace(
                "# node.session.queue_depth = 32\n",
                "# node.session.queue_depth = 32\nnode.session.queue_depth = 64\n",
            )
            .replace(
                "#iscsid.startup = /bin/systemctl start iscsid.socket\n",
                "#iscsid.startup = /bin/systemctl start iscsid.socket\niscsid.startup = /usr/sbin/iscsid\n",
            );
        assert_eq!(out, want);
        // CHAP lines stay commented, whatever else was set.
        assert_eq!(get_key(&out, "node.session.auth.authmethod"), None);
        assert!(out.contains("\n#node.session.auth.password = password\n"));
    }

    #[test]
    fn absent_keys_are_appended_under_one_header() {
        let once = set_keys(DEBIAN_STYLE, &[("node.session.nr_sessions", "1")]);
        assert_eq!(
            once,
            format!("{DEBIAN_STYLE}\n# Set by iser-wizard\nnode.session.nr_sessions = 1\n")
        );
        let twice = set_keys(&once, &[("node.session.cmds_max", "256")]);
        assert_eq!(
            twice,
            format!(
                "{DEBIAN_STYLE}\n# Set by iser-wizard\nnode.session.nr_sessions = 1\nnode.session.cmds_max = 256\n"
            )
        );
        assert_eq!(
            set_keys("", &[("node.startup", "automatic")]),
            "# Set by iser-wizard\nnode.startup = automatic\n"
        );
    }

    #[test]
    fn later_duplicates_are_disabled_with_a_note() {
        let text = "node.startup = manual\n# keep me\nnode.startup=automatic\n  node.startup   =   onboot  \n";
        // open-iscsi applies lines in order: the last assignment is the one in force.
        assert_eq!(get_key(text, "node.startup").as_deref(), Some("onboot"));
        let out = set_keys(text, &[("node.startup", "automatic")]);
        assert_eq!(
            out,
            "node.startup = automatic\n\
             # keep me\n\
             # Disabled by iser-wizard (duplicate, the first assignment above holds): node.startup=automatic\n\
             # Disabled by iser-wizard (duplicate, the first assignment above holds): node.startup   =   onboot\n"
        );
        assert_eq!(get_key(&out, "node.startup").as_deref(), Some("automatic"));
        assert_eq!(set_keys(&out, &[("node.startup", "automatic")]), out);
        // The disabled lines are not taken for examples or assignments later.
        assert_eq!(
            set_keys(&out, &[("node.startup", "manual")]),
            out.replacen("= automatic", "= manual", 1)
        );
    }

    #[test]
    fn whitespace_around_equals_is_read_and_kept_when_value_holds() {
        let text = "\tnode.startup=automatic\r\nnode.session.timeo.replacement_timeout   =  20 \n";
        assert_eq!(get_key(text, "node.startup").as_deref(), Some("automatic"));
        assert_eq!(
            get_key(text, "node.session.timeo.replacement_timeout").as_deref(),
            Some("20")
        );
        // Already holding the values: not even reformatted.
        let same = set_keys(
            text,
            &[
                ("node.startup", "automatic"),
                ("node.session.timeo.replacement_timeout", "20"),
            ],
        );
        assert_eq!(same, text);
        // A changed value keeps the indentation and the line's own ending.
        assert_eq!(
            set_keys(text, &[("node.startup", "manual")]),
            "\tnode.startup = manual\r\nnode.session.timeo.replacement_timeout   =  20 \n"
        );
    }

    #[test]
    fn crlf_files_stay_crlf() {
        let crlf = DEBIAN_STYLE.replace('\n', "\r\n");
        let out = set_keys(
            &crlf,
            &[
                ("node.startup", "automatic"),
                ("node.session.queue_depth", "64"),
                ("node.session.nr_sessions", "1"),
            ],
        );
        let want_lf = format!(
            "{}\n# Set by iser-wizard\nnode.session.nr_sessions = 1\n",
            DEBIAN_STYLE
                .replace("\nnode.startup = manual\n", "\nnode.startup = automatic\n")
                .replace(
                    "# node.session.queue_depth = 32\n",
                    "# node.session.queue_depth = 32\nnode.session.queue_depth = 64\n"
                )
        );
        assert_eq!(out, want_lf.replace('\n', "\r\n"));
        assert_eq!(
            get_key(&out, "node.session.queue_depth").as_deref(),
            Some("64")
        );
        assert_eq!(
            set_keys(
                &out,
                &[
                    ("node.startup", "automatic"),
                    ("node.session.queue_depth", "64"),
                    ("node.session.nr_sessions", "1")
                ]
            ),
            out
        );
    }

    #[test]
    fn unterminated_last_line() {
        // iscsid skips a last line without a newline ("too long").
        let text = "# settings\nnode.startup = automatic";
        assert_eq!(get_key(text, "node.startup"), None);
        assert_eq!(
            set_keys(text, &[("node.startup", "automatic")]),
            "# settings\nnode.startup = automatic\n"
        );
        assert_eq!(
            set_keys(text, &[("node.startup", "manual")]),
            "# settings\nnode.startup = manual\n"
        );
        assert_eq!(
            set_keys("# node.startup = manual", &[("node.startup", "automatic")]),
            "# node.startup = manual\nnode.startup = automatic\n"
        );
        assert_eq!(
            set_keys("a.b = c", &[("node.startup", "automatic")]),
            "a.b = c\n\n# Set by iser-wizard\nnode.startup = automatic\n"
        );
        assert_eq!(
            set_keys("x.y = 1\r\nz.w = 2", &[]),
            "x.y = 1\r\nz.w = 2\r\n"
        );
    }

    #[test]
    fn keys_compare_exactly() {
        let text = "Node.startup = manual\nnode.startup2 = x\nnode.conn[0].startup = manual\n# node.startup is manual by default\n";
        assert_eq!(get_key(text, "node.startup"), None);
        let out = set_keys(text, &[("node.startup", "automatic")]);
        assert_eq!(
            out,
            format!("{text}\n# Set by iser-wizard\nnode.startup = automatic\n")
        );
        // A `#` after the value is not a comment for open-iscsi: it is part of the value.
        assert_eq!(
            get_key("node.startup = automatic # boot\n", "node.startup").as_deref(),
            Some("automatic # boot")
        );
    }

    #[test]
    fn short_keys_are_found_and_refused() {
        let text = "# vendor procedure\nreplacement_timeout = 20\nnode.startup = automatic\n  login_timeout=5\n# queue_depth = 3\nnode.session.timeo.replacement_timeout = 20\n";
        assert_eq!(
            find_short_keys(text),
            vec![
                (2, "replacement_timeout".to_string()),
                (4, "login_timeout".to_string())
            ]
        );
        assert_eq!(find_short_keys(DEBIAN_STYLE), vec![]);
        assert_eq!(
            suggest_full_key("replacement_timeout"),
            Some("node.session.timeo.replacement_timeout")
        );
        assert_eq!(
            suggest_full_key("login_timeout"),
            Some("node.conn[0].timeo.login_timeout")
        );
        assert_eq!(suggest_full_key("node.startup"), None);
        assert_eq!(suggest_full_key("colour"), None);

        assert_eq!(
            check_setting("replacement_timeout", "20"),
            Err(SettingError::ShortKey {
                key: "replacement_timeout".into(),
                suggestion: Some("node.session.timeo.replacement_timeout".into()),
            })
        );
        assert_eq!(
            check_setting("replacement_timeout", "20")
                .unwrap_err()
                .to_string(),
            "\"replacement_timeout\" is not a full iscsid.conf key and would be ignored; \
             did you mean \"node.session.timeo.replacement_timeout\"?"
        );
        assert!(matches!(
            check_setting("node.startup", "a\nb = c"),
            Err(SettingError::BadValue { .. })
        ));
        assert!(matches!(
            check_setting("node.startup", " automatic"),
            Err(SettingError::BadValue { .. })
        ));
        assert!(matches!(
            check_setting("node.startup", ""),
            Err(SettingError::BadValue { .. })
        ));
        assert!(matches!(
            check_setting("node .startup", "x"),
            Err(SettingError::BadKey { .. })
        ));
        assert!(matches!(
            check_setting("node=startup", "x"),
            Err(SettingError::BadKey { .. })
        ));
        assert!(matches!(
            check_setting("#node.startup", "x"),
            Err(SettingError::BadKey { .. })
        ));
        assert_eq!(
            check_settings(&[
                ("node.startup", "automatic"),
                ("node.conn[0].timeo.login_timeout", "5")
            ]),
            Ok(())
        );
        assert!(
            check_settings(&[("node.startup", "automatic"), ("startup", "automatic")]).is_err()
        );

        // set_keys skips what it cannot write instead of writing something ignored.
        let out = set_keys(
            text,
            &[
                ("replacement_timeout", "30"),
                ("node.startup", "x\nnode.startup = manual"),
            ],
        );
        assert_eq!(out, text);
    }

    #[test]
    fn idempotent_on_many_inputs() {
        let inputs = [
            DEBIAN_STYLE.to_string(),
            DEBIAN_STYLE.replace('\n', "\r\n"),
            DEBIAN_STYLE.trim_end().to_string(),
            String::new(),
            "node.startup = manual\nnode.startup = manual\n".to_string(),
            "#node.startup=automatic\r\n# node.startup = manual".to_string(),
        ];
        let settings: &[(&str, &str)] = &[
            ("node.startup", "automatic"),
            ("node.session.timeo.replacement_timeout", "20"),
            ("node.conn[0].timeo.login_timeout", "5"),
            ("node.session.queue_depth", "64"),
            ("discovery.sendtargets.timeo.login_timeout", "5"),
        ];
        for input in &inputs {
            let once = set_keys(input, settings);
            assert_eq!(set_keys(&once, settings), once, "input {input:?}");
            for (k, v) in settings {
                assert_eq!(get_key(&once, k).as_deref(), Some(*v), "{k} in {once:?}");
            }
            assert!(once.ends_with('\n'));
        }
    }

    #[test]
    fn garbled_input_never_panics() {
        let garbage = [
            "=",
            "==\n",
            " = x\n",
            "#\n#=\n# = =\n",
            "\r",
            "\r\r\n\n",
            "a\u{0}b = c\n",
            "é = ü\nß.x=∂",
            "\x0b\x0c\n",
            "# Set by iser-wizard",
            "# Set by iser-wizard\n=\n",
        ];
        for g in garbage {
            let out = set_keys(g, &[("node.startup", "automatic"), ("a.b", "c")]);
            assert_eq!(get_key(&out, "node.startup").as_deref(), Some("automatic"));
            let _ = find_short_keys(g);
            let _ = get_key(g, "");
            for i in g.char_indices().map(|(i, _)| i) {
                let _ = set_keys(&g[..i], &[("node.startup", "automatic")]);
            }
        }
    }
}
