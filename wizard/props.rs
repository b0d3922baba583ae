//! Property tests: no validator panics on any answer, and every accepted value prints back
//! to a text that parses to the same value.
//!
//! Contract (issue 12, "no panic on any input"):
//! - Every `FromStr` of [`crate::settings`] refuses or accepts any string without a panic;
//!   what it accepts prints (`Display`) and serialises (serde) to a string that parses to the
//!   same value.
//! - [`answers::parse_text`], [`answers::validate`], [`answers::check_partial`],
//!   [`answers::typed`], [`answers::check_field`], [`answers::host_specific`] and
//!   [`answers::check_against_state_dir`] hold on arbitrary JSON, on the template with any
//!   value replaced, and on the template's text damaged as the parsers' inputs are
//!   (`steps/parse/props.rs`).
//! - Case counts keep the suite well under a minute in a debug build; `PROPTEST_CASES` raises
//!   them. Nothing is printed on success; the figures print with `--nocapture`.

use std::fmt::Debug;
use std::str::FromStr;

use proptest::prelude::*;
use serde::{de::DeserializeOwned, Serialize};
use serde_json::{Map, Value};

use crate::answers;
use crate::settings::{
    Discovery, EnvName, Fabric, FsType, Guid, HostAddr, HostName, InitiatorIqn, IpoibMode, Iqn,
    MountPoint, Netdev, PortKey, PortalAddr, Size, TargetIqn, Text, VerifySize, Wwid,
};
use crate::steps::parse::props::{cases, check, damage, op, Tally, PIECES};

/// Strings near the validators' grammars (so many are accepted and the round trip is
/// exercised), pieces that break parsers, and arbitrary text.
fn answer_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "iqn\\.[0-9]{4}-[0-9]{2}\\.[a-z0-9.-]{0,16}(:[a-zA-Z0-9.:-]{0,16})?",
        "(eui|naa)\\.[0-9a-fA-F]{14,34}",
        "(auto|discover|from-array|infiniband|roce|datagram|connected|sendtargets|manual|ext4|xfs)",
        "0x[0-9a-fA-F]{14,18}",
        "[a-zA-Z0-9_.:/-]{0,17}",
        "[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}(/[0-9]{1,3}|:[+0-9]{1,6})?",
        "[0-9]{1,22} ?(B|KiB|MiB|GiB|TiB|G|GB|kib)?",
        "(/[a-z.]{0,6}){0,5}/?",
        "[0-9a-fA-F]{6,66}",
        prop::collection::vec(proptest::sample::select(PIECES), 0..8).prop_map(|v| v.concat()),
    ]
}

/// Parse `s` as `T`; when accepted, its printed and serialised forms parse to the same value.
/// `true` when refused.
fn round_trip<T>(s: &str) -> bool
where
    T: FromStr<Err = String> + std::fmt::Display + PartialEq + Debug + Serialize + DeserializeOwned,
{
    match s.parse::<T>() {
        Ok(v) => {
            let printed = v.to_string();
            let again: T = printed
                .parse()
                .unwrap_or_else(|e| panic!("{s:?} parsed, but its print {printed:?} not: {e}"));
            assert_eq!(again, v, "{s:?} printed as {printed:?}");
            let json = serde_json::to_string(&v).expect("a setting serialises");
            let back: T = serde_json::from_str(&json)
                .unwrap_or_else(|e| panic!("{s:?} serialised as {json}, which does not read: {e}"));
            assert_eq!(back, v, "{s:?} serialised as {json}");
            false
        }
        Err(e) => {
            assert!(!e.is_empty(), "{s:?} refused with no message");
            true
        }
    }
}

/// Every validator on `s`; `true` when all refused.
fn every_setting(s: &str) -> bool {
    let results = [
        round_trip::<Text>(s),
        round_trip::<Iqn>(s),
        round_trip::<InitiatorIqn>(s),
        round_trip::<TargetIqn>(s),
        round_trip::<Netdev>(s),
        round_trip::<Guid>(s),
        round_trip::<PortKey>(s),
        round_trip::<HostAddr>(s),
        round_trip::<PortalAddr>(s),
        round_trip::<EnvName>(s),
        round_trip::<Wwid>(s),
        round_trip::<MountPoint>(s),
        round_trip::<VerifySize>(s),
        round_trip::<Fabric>(s),
        round_trip::<IpoibMode>(s),
        round_trip::<Discovery>(s),
        round_trip::<FsType>(s),
        s.parse::<HostName>().is_err(),
        Size::parse_bytes(s).is_none(),
        answers::parse_size(s).is_none(),
    ];
    let _ = answers::cut(s);
    results.iter().all(|r| *r)
}

#[test]
fn every_validator_refuses_or_round_trips() {
    let tally = Tally::default();
    check("validators", cases(3000), answer_text(), &tally, |s| {
        every_setting(&s)
    });
}

fn no_env(_: &str) -> Option<String> {
    None
}

fn some_env(_: &str) -> Option<String> {
    Some("secret".into())
}

/// Every answers-file check on `v`; `true` when the file has problems.
fn check_answers(v: &Value) -> bool {
    let problems = answers::validate(v, &no_env);
    let _ = answers::validate(v, &some_env);
    for p in &problems {
        assert!(!p.message.is_empty(), "{p:?}");
        let _ = p.to_string();
        let _ = answers::kind_at(&p.path);
    }
    let partial = answers::check_partial(v);
    let _ = answers::typed(v, &problems);
    let _ = answers::typed(v, &partial);
    let _ = answers::host_specific(v);
    let _ = answers::check_against_state_dir(v, std::path::Path::new("/var/lib/iser-wizard"));
    !problems.is_empty()
}

fn template() -> Value {
    serde_json::from_str(answers::TEMPLATE).expect("the template is JSON")
}

/// A JSON leaf near what the answers file holds.
fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        (-2i64..70000).prop_map(Value::from),
        answer_text().prop_map(Value::String),
    ]
}

/// The schema's key names and a few others, so arbitrary objects reach deep checks.
fn key() -> impl Strategy<Value = String> {
    const NAMES: &[&str] = &[
        "version",
        "host",
        "initiator_iqn",
        "mapping_host_name",
        "fabric",
        "subnet_manager",
        "priorities",
        "ports",
        "netdev",
        "address",
        "ipoib_mode",
        "mtu",
        "target",
        "iqn",
        "discovery",
        "portals",
        "chap",
        "username",
        "password_env",
        "iscsi",
        "replacement_timeout",
        "multipath",
        "volume",
        "wwid",
        "mount_point",
        "filesystem",
        "verify",
        "size",
        "array",
        "ports[0]",
        "a.b",
        "",
    ];
    prop_oneof![
        4 => proptest::sample::select(NAMES).prop_map(str::to_string),
        1 => any::<String>(),
    ]
}

fn json() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 48, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key(), inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Every path into `v`, as steps of object keys and array indexes.
fn paths(v: &Value, here: Vec<Value>, out: &mut Vec<Vec<Value>>) {
    out.push(here.clone());
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let mut p = here.clone();
                p.push(Value::String(k.clone()));
                paths(x, p, out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                let mut p = here.clone();
                p.push(Value::from(i));
                paths(x, p, out);
            }
        }
        _ => {}
    }
}

fn at_mut<'a>(v: &'a mut Value, path: &[Value]) -> &'a mut Value {
    path.iter().fold(v, |cur, step| match step {
        Value::String(k) => &mut cur[k.as_str()],
        s => &mut cur[s.as_u64().expect("an index") as usize],
    })
}

#[test]
fn validation_holds_on_arbitrary_json() {
    let tally = Tally::default();
    check(
        "answers on arbitrary JSON",
        cases(1500),
        json(),
        &tally,
        |v| check_answers(&v),
    );
}

#[test]
fn validation_holds_on_the_template_with_values_replaced() {
    let base = template();
    let mut all = Vec::new();
    paths(&base, Vec::new(), &mut all);
    let n = all.len();
    let tally = Tally::default();
    check(
        "answers on the template with values replaced",
        cases(1500),
        prop::collection::vec((0..n, json()), 1..4),
        &tally,
        |edits| {
            let mut v = base.clone();
            for (i, x) in edits {
                // An earlier edit may have removed the path: replace only what is still there.
                let p = &all[i];
                let still = p.iter().try_fold(&v, |cur, s| match s {
                    Value::String(k) => cur.get(k.as_str()),
                    s => cur.get(s.as_u64()? as usize),
                });
                if still.is_some() {
                    *at_mut(&mut v, p) = x;
                }
            }
            check_answers(&v)
        },
    );
}

#[test]
fn parse_text_holds_on_damaged_template_text() {
    let tally = Tally::default();
    check(
        "answers text damaged",
        cases(1500),
        prop::collection::vec(op(), 1..8),
        &tally,
        |ops| {
            let text = damage(answers::TEMPLATE, &ops);
            match answers::parse_text(&text) {
                Ok(v) => check_answers(&v),
                Err(problems) => {
                    assert!(!problems.is_empty());
                    true
                }
            }
        },
    );
}

#[test]
fn check_field_holds_on_any_path_and_value() {
    let tally = Tally::default();
    let path = prop_oneof![
        any::<String>(),
        "[a-z_]{0,12}(\\[[0-9]{0,3}\\]?)?(\\.[a-z_.\\[\\]0-9]{0,16}){0,3}",
        Just("ports[0].address".to_string()),
        Just("subnet_manager.priorities.0x248a070300a80a80".to_string()),
    ];
    check(
        "check_field",
        cases(2000),
        (path, leaf()),
        &tally,
        |(p, v)| answers::check_field(&p, &v).is_err(),
    );
}
