//! The path-selector knob: which dm-multipath path selector the volume's map uses
//! (METHOD.md "Tuning": service-time 0, queue-length 0, round-robin 0).
//!
//! Contract:
//! - The selector in effect is read from the running map (`multipath -ll WWID`, every path
//!   group's `policy=`), never from a configuration file: `/etc/multipath.conf` may be the
//!   wizard's, the distro's or the admin's, and a `devices`, `overrides` or `multipaths`
//!   section may outrank what a file says. The daemon's configuration (`multipathd show
//!   config`) gives the drop-in directory (`config_dir`) and its `defaults` selector, shown
//!   beside the live one.
//! - A value is tried by writing a `multipaths` entry for the map's WWID (the section that
//!   outranks every other, for this map only) as the trial drop-in
//!   [`TRIAL_FILE`] in `config_dir`, then `multipathd reconfigure`, then polling the live
//!   map until every group shows the value with every path healthy (at most
//!   [`SETTLE`]). A value the live map does not take in that time is an error: the caller
//!   puts the original back and says the value was not tried.
//! - The original is put back by removing the trial drop-in, `multipathd reconfigure`, and
//!   the same wait for the original selector; that wait ignores an interruption (a revert
//!   must finish), a trial's wait does not.
//! - The trial drop-in is written without a backup and never recorded as created: it exists
//!   only while tune runs (or until the restore script removes it). `--persist` writes
//!   [`PERSIST_FILE`] through the run's host (backed up, atomic, recorded so `undo` removes
//!   it).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::steps::host::{Cmd, Host, Interrupt};
use crate::steps::parse::multipath::{parse_multipath_ll, Map};
use crate::steps::poll::{poll_until, Wait};
use crate::steps::{HostError, StepError};

/// The knob's name on the command line and in the table.
pub const NAME: &str = "path_selector";
/// The selectors tried (METHOD.md); `service-time 0` is multipath-tools' default.
pub const CANDIDATES: [&str; 3] = ["service-time 0", "queue-length 0", "round-robin 0"];
/// The drop-in written for a trial; named to sort after every other drop-in.
pub const TRIAL_FILE: &str = "99-iser-wizard-tune-trial.conf";
/// The drop-in `--persist` writes for a kept selector.
pub const PERSIST_FILE: &str = "90-iser-wizard-tune.conf";
/// multipath-tools' `config_dir` when the daemon's configuration does not name one.
pub const DEFAULT_CONFIG_DIR: &str = "/etc/multipath/conf.d";
/// How long a reconfigured map may take to show a selector with every path healthy: a
/// reload is quick, but the path checkers of a loaded array may take a few intervals.
pub const SETTLE: Duration = Duration::from_secs(60);

/// The same selector text, whitespace normalised (`service-time  0` = `service-time 0`).
pub fn norm(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// What the daemon's configuration (`multipathd show config`) says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The drop-in directory.
    pub config_dir: String,
    /// The `defaults` section's `path_selector`, when printed.
    pub default_selector: Option<String>,
}

/// Read `config_dir` and `path_selector` from the `defaults` section of `multipathd show
/// config` (or `multipath -t`); keywords of other sections are ignored.
pub fn parse_config(text: &str) -> Config {
    let mut depth = 0usize;
    let mut in_defaults = false;
    let mut c = Config {
        config_dir: DEFAULT_CONFIG_DIR.to_string(),
        default_selector: None,
    };
    for line in text.lines() {
        let t = line.trim();
        if t.ends_with('{') {
            if depth == 0 {
                in_defaults = t.trim_end_matches('{').trim() == "defaults";
            }
            depth += 1;
            continue;
        }
        if t == "}" {
            depth = depth.saturating_sub(1);
            if depth == 0 {
                in_defaults = false;
            }
            continue;
        }
        if !(in_defaults && depth == 1) {
            continue;
        }
        let Some((key, value)) = t.split_once(char::is_whitespace) else {
            continue;
        };
        let value = value.trim().trim_matches('"').to_string();
        match key {
            "config_dir" if !value.is_empty() => c.config_dir = value,
            "path_selector" => c.default_selector = Some(norm(&value)),
            _ => {}
        }
    }
    c
}

/// The selector a live map uses: its groups' policy when they all agree.
pub fn live_selector(map: &Map) -> Result<String, String> {
    let mut policies: Vec<String> = map
        .path_groups
        .iter()
        .filter_map(|g| g.policy.as_deref().map(norm))
        .collect();
    policies.dedup();
    match policies.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(format!("multipath -ll shows no policy for {}", map.wwid)),
        many => Err(format!(
            "the path groups of {} use different selectors: {}",
            map.wwid,
            many.join(", ")
        )),
    }
}

/// Whether the map shows `value` on every group with every path healthy.
pub fn settled(map: &Map, value: &str) -> bool {
    !map.path_groups.is_empty()
        && live_selector(map).is_ok_and(|s| s == norm(value))
        && map.paths().next().is_some()
        && map.paths().all(|p| p.is_healthy())
}

/// The drop-in that makes the map of `wwid` use `selector`; `purpose` says why it exists.
pub fn drop_in(wwid: &str, selector: &str, purpose: &str) -> Result<String, String> {
    if wwid.contains('"') || selector.contains('"') {
        return Err(format!("a quote in {wwid:?} or {selector:?}"));
    }
    crate::steps::templates::render(
        include_str!("../../templates/tune/multipath-selector.conf"),
        &[("wwid", wwid), ("selector", selector), ("purpose", purpose)],
    )
}

/// Changes the map's selector. The real one is [`Multipath`]; tests use a fake.
pub trait Selector {
    /// The selector the live map uses now.
    fn current(&self) -> Result<String, String>;
    /// Make the map use `value` and wait until it does; `value == original` removes the
    /// trial drop-in instead, giving the map back its configured selector.
    fn set(&self, value: &str, original: &str) -> Result<(), String>;
    /// Whether the run was interrupted (a failed trial is then the interruption, not a value
    /// the map refused).
    fn interrupted(&self) -> bool {
        false
    }
}

/// The real selector knob of one map.
pub struct Multipath<'a> {
    /// A host whose commands an interruption does not stop (a revert must finish) and whose
    /// writes are not backed up (the trial drop-in is transient).
    pub host: &'a dyn Host,
    /// The run's interrupt: a trial's wait ends on it.
    pub interrupt: Interrupt,
    /// The map's WWID.
    pub wwid: String,
    /// The daemon's configuration.
    pub config: Config,
    /// The bound of each wait.
    pub settle: Duration,
}

impl Multipath<'_> {
    /// Where the trial drop-in is.
    pub fn trial_path(&self) -> PathBuf {
        Path::new(&self.config.config_dir).join(TRIAL_FILE)
    }

    /// Where `--persist` writes a kept selector.
    pub fn persist_path(&self) -> PathBuf {
        Path::new(&self.config.config_dir).join(PERSIST_FILE)
    }

    fn map(&self) -> Result<Map, String> {
        let cmd = Cmd::probe(["multipath", "-ll", self.wwid.as_str()]);
        let out = self.host.run(&cmd).map_err(|e| format!("{cmd}: {e}"))?;
        parse_multipath_ll(&out.stdout)
            .into_iter()
            .find(|m| m.wwid == self.wwid)
            .ok_or_else(|| format!("{cmd} shows no map of {}", self.wwid))
    }

    /// `multipathd reconfigure`, then wait until the map shows `value`.
    pub fn reconfigure_and_wait(&self, value: &str, interruptible: bool) -> Result<(), String> {
        let cmd = Cmd::change(["multipathd", "reconfigure"]);
        let out = self.host.run(&cmd).map_err(|e| format!("{cmd}: {e}"))?;
        if !out.success() {
            return Err(format!("{cmd}: {}: {}", out.describe_status(), out.tail(3)));
        }
        let mut last = String::new();
        let found = poll_until(
            self.host,
            Wait::new(self.settle, Duration::from_millis(500)),
            || {
                if interruptible && self.interrupt.is_set() {
                    return Err(StepError::Host(HostError::Interrupted));
                }
                let map = self.map().map_err(StepError::Failed)?;
                if settled(&map, value) {
                    return Ok(Some(()));
                }
                last = live_selector(&map).unwrap_or_else(|e| e);
                Ok(None)
            },
        )
        .map_err(|e| e.to_string())?;
        found.ok_or_else(|| {
            format!(
                "after {} s the map shows {last:?}, not {value:?} with every path healthy: \
                 the configuration in effect did not take it",
                self.settle.as_secs()
            )
        })
    }
}

impl Selector for Multipath<'_> {
    fn current(&self) -> Result<String, String> {
        live_selector(&self.map()?)
    }

    fn set(&self, value: &str, original: &str) -> Result<(), String> {
        let trial = self.trial_path();
        let back = norm(value) == norm(original);
        if back {
            self.host
                .remove_file(&trial)
                .map_err(|e| format!("removing {}: {e}", trial.display()))?;
        } else {
            let text = drop_in(&self.wwid, value, "tried by a running tune (transient)")?;
            self.host
                .write(&trial, &text, 0o644)
                .map_err(|e| format!("writing {}: {e}", trial.display()))?;
        }
        self.reconfigure_and_wait(value, !back)
    }

    fn interrupted(&self) -> bool {
        self.interrupt.is_set()
    }
}

/// The restore script's lines for the selector: the trial drop-in removed, the daemon
/// reconfigured, and a wait for the original selector (so the queue values written after
/// it are not undone by the map's reload).
pub fn restore_lines(trial: &Path, wwid: &str, original: &str) -> String {
    let q = crate::steps::host::shell_quote;
    format!(
        "rm -f {trial}\n\
         multipathd reconfigure || echo \"could not reconfigure multipathd\" >&2\n\
         i=0; while [ $i -lt 60 ] && ! multipath -ll {wwid} | grep -q {policy}; do sleep 1; \
         i=$((i+1)); done\n",
        trial = q(&trial.display().to_string()),
        wwid = q(wwid),
        policy = q(&format!("policy='{}'", norm(original))),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::steps::fake::FakeHost;
    use crate::steps::host::CmdOutput;

    const WWID: &str = "360014050c0ffe0012344abc9def00000";

    fn ll(policy: &str, state: &str) -> String {
        format!(
            "{WWID} dm-0 LIO-ORG,FILEIO\n\
             size=512M features='1 queue_if_no_path' hwhandler='1 alua' wp=rw\n\
             `-+- policy='{policy}' prio=50 status=active\n\
             \x20 |- 2:0:0:0 sda 8:0  active ready running\n\
             \x20 `- 3:0:0:0 sdc 8:32 {state} ready running\n"
        )
    }

    fn knob(host: &FakeHost) -> Multipath<'_> {
        Multipath {
            host,
            interrupt: Interrupt::new(),
            wwid: WWID.into(),
            config: Config {
                config_dir: DEFAULT_CONFIG_DIR.into(),
                default_selector: Some("service-time 0".into()),
            },
            settle: Duration::from_millis(1200),
        }
    }

    #[test]
    fn the_config_in_effect_gives_the_drop_in_directory_and_the_default() {
        let text = "defaults {\n\tverbosity 2\n\tpath_selector \"service-time 0\"\n\
                    \tconfig_dir \"/etc/multipath/conf.d\"\n}\nblacklist {\n\tdevnode \"^sda\"\n}\n\
                    devices {\n\tdevice {\n\t\tvendor \"NETAPP\"\n\t\tpath_selector \"round-robin 0\"\n\
                    \t\tconfig_dir \"/nope\"\n\t}\n}\n";
        let c = parse_config(text);
        assert_eq!(c.config_dir, "/etc/multipath/conf.d");
        assert_eq!(c.default_selector.as_deref(), Some("service-time 0"));
        let c = parse_config("defaults {\n\tconfig_dir \"/etc/mp.d\"\n}\n");
        assert_eq!(c.config_dir, "/etc/mp.d");
        assert_eq!(c.default_selector, None);
        assert_eq!(parse_config("").config_dir, DEFAULT_CONFIG_DIR);
    }

    #[test]
    fn the_live_selector_is_every_groups_policy() {
        let m = &parse_multipath_ll(&ll("service-time 0", "active"))[0];
        assert_eq!(live_selector(m).unwrap(), "service-time 0");
        assert!(settled(m, "service-time  0"));
        assert!(!settled(m, "round-robin 0"));
        let failed = &parse_multipath_ll(&ll("round-robin 0", "failed"))[0];
        assert!(
            !settled(failed, "round-robin 0"),
            "a failed path is not settled"
        );
        let two = ll("service-time 0", "active")
            + "`-+- policy='round-robin 0' prio=10 status=enabled\n  `- 4:0:0:0 sde 8:64 active ghost running\n";
        let two = &parse_multipath_ll(&two)[0];
        assert!(live_selector(two)
            .unwrap_err()
            .contains("different selectors"));
    }

    #[test]
    fn the_drop_in_is_a_multipaths_entry_for_the_map_only() {
        let d = drop_in(WWID, "queue-length 0", "kept").unwrap();
        assert!(d.contains(&format!(
            "multipaths {{\n\tmultipath {{\n\t\twwid \"{WWID}\"\n\t\tpath_selector \"queue-length 0\"\n"
        )));
        assert!(d.starts_with("# Written by `iser-wizard tune`: the path selector kept"));
        assert!(drop_in("a\"b", "round-robin 0", "x").is_err());
    }

    #[test]
    fn a_trial_writes_the_drop_in_reconfigures_and_waits_for_the_map() {
        let h = FakeHost::new();
        h.expect(&["multipathd", "reconfigure"], CmdOutput::ok(""));
        // The reload shows first the old selector, then the new one.
        h.expect(
            &["multipath", "-ll", WWID],
            CmdOutput::ok(ll("service-time 0", "active")),
        );
        h.allow(
            &["multipath", "-ll", WWID],
            CmdOutput::ok(ll("queue-length 0", "active")),
        );
        let k = knob(&h);
        k.set("queue-length 0", "service-time 0").unwrap();
        let text = std::fs::read_to_string(h.path(&k.trial_path().display().to_string())).unwrap();
        assert!(text.contains("path_selector \"queue-length 0\""), "{text}");
        h.finish();
    }

    #[test]
    fn the_revert_removes_the_drop_in_and_waits_for_the_original() {
        let h = FakeHost::new();
        let k = knob(&h);
        let trial = k.trial_path().display().to_string();
        h.put_file(&trial, "multipaths {}\n");
        h.expect(&["multipathd", "reconfigure"], CmdOutput::ok(""));
        h.allow(
            &["multipath", "-ll", WWID],
            CmdOutput::ok(ll("service-time 0", "active")),
        );
        k.set("service-time 0", "service-time 0").unwrap();
        assert!(!h.path(&trial).exists());
        h.finish();
    }

    #[test]
    fn a_value_the_map_never_shows_is_an_error() {
        let h = FakeHost::new();
        h.expect(&["multipathd", "reconfigure"], CmdOutput::ok(""));
        // An overriding section elsewhere keeps the map on its selector.
        h.allow(
            &["multipath", "-ll", WWID],
            CmdOutput::ok(ll("service-time 0", "active")),
        );
        let e = knob(&h).set("round-robin 0", "service-time 0").unwrap_err();
        assert!(e.contains("did not take it"), "{e}");
        assert!(e.contains("service-time 0"), "{e}");
        h.finish();
    }

    #[test]
    fn the_restore_lines_remove_the_trial_and_wait() {
        let s = restore_lines(
            Path::new("/etc/multipath/conf.d/99-iser-wizard-tune-trial.conf"),
            WWID,
            "service-time 0",
        );
        assert!(s.starts_with("rm -f /etc/multipath/conf.d/99-iser-wizard-tune-trial.conf\n"));
        assert!(s.contains("multipathd reconfigure ||"));
        assert!(
            s.contains("grep -q 'policy='\\''service-time 0'\\'''"),
            "{s}"
        );
    }
}
