//! systemd units' states, several units in one process.
//!
//! Contract: [`unit_states`] asks systemd once (`systemctl show` with the load, unit-file and
//! active states of every unit named) and answers in the words of `systemctl is-enabled`
//! and `is-active`, in the order asked, so a step that used two processes per unit now uses
//! one for all of them. It never runs `is-enabled`, which on Debian runs the SysV
//! compatibility (`systemd-sysv-install is-enabled`) for every unit that also has an init
//! script: that alone was seen taking 1.5 s for multipathd in the lab. For a unit with a
//! native unit file, `UnitFileState` is what systemd acts on at boot either way.
//!
//! [`is_enabled_word`] says which `is-enabled` words mean "starts at boot, or is pulled in
//! by a unit that does" (an `enable` would change nothing there).

use super::{Cmd, Host};
use crate::steps::StepError;

/// A unit's state in the words of `systemctl is-enabled` and `systemctl is-active`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UnitState {
    /// `enabled`, `disabled`, `static`, `masked`, `indirect`, ...; `not-found` when systemd
    /// has no such unit.
    pub enabled: String,
    /// `active`, `inactive`, `activating`, `failed`, ...
    pub active: String,
}

impl UnitState {
    /// Whether systemd knows the unit (older `is-enabled` printed nothing for a unit it did
    /// not know, newer prints `not-found`; both are read as not installed).
    pub fn installed(&self) -> bool {
        !(self.enabled.is_empty() || self.enabled == "not-found")
    }

    /// Whether the unit starts at boot or is pulled in by one that does.
    pub fn enabled_ok(&self) -> bool {
        is_enabled_word(&self.enabled)
    }

    /// Whether the unit is running (a socket: listening).
    pub fn is_active(&self) -> bool {
        self.active == "active"
    }
}

/// `systemctl is-enabled` words in which a unit starts at boot (or is pulled in by a unit
/// that does, such as a socket); `enable` would change nothing there.
pub fn is_enabled_word(word: &str) -> bool {
    matches!(
        word,
        "enabled" | "enabled-runtime" | "static" | "indirect" | "alias" | "generated"
    )
}

/// The one command that reads the state of `units`.
pub fn unit_states_cmd(units: &[&str]) -> Cmd {
    let mut argv = vec![
        "systemctl",
        "show",
        "--property=Id,LoadState,UnitFileState,ActiveState",
        "--",
    ];
    argv.extend_from_slice(units);
    Cmd::probe(argv).reusable()
}

/// `systemctl show`'s blocks (one per unit, in the order asked, separated by blank lines)
/// as [`UnitState`]s; `None` when the number of blocks is not `n`.
pub fn parse_unit_states(text: &str, n: usize) -> Option<Vec<UnitState>> {
    let mut out = Vec::new();
    for block in text.split("\n\n").filter(|b| !b.trim().is_empty()) {
        let mut load = "";
        let mut file = "";
        let mut active = "";
        for line in block.lines() {
            match line.split_once('=') {
                Some(("LoadState", v)) => load = v.trim(),
                Some(("UnitFileState", v)) => file = v.trim(),
                Some(("ActiveState", v)) => active = v.trim(),
                _ => {}
            }
        }
        let enabled = match load {
            "not-found" => "not-found",
            // A masked unit loads as "masked" and its file state says so too.
            "masked" => "masked",
            _ => file,
        };
        out.push(UnitState {
            enabled: enabled.to_string(),
            active: active.to_string(),
        });
    }
    (out.len() == n).then_some(out)
}

/// The states of `units`, in that order, from one `systemctl show`; an error names the
/// command when systemctl fails or prints something else than one block per unit.
pub fn unit_states(host: &dyn Host, units: &[&str]) -> Result<Vec<UnitState>, StepError> {
    if units.is_empty() {
        return Ok(Vec::new());
    }
    let cmd = unit_states_cmd(units);
    let out = host.run(&cmd)?;
    if out.success() {
        if let Some(states) = parse_unit_states(&out.stdout, units.len()) {
            return Ok(states);
        }
    }
    Err(StepError::command(
        &cmd,
        &out,
        Some(format!(
            "expected one state per unit ({})",
            units.join(", ")
        )),
    ))
}

/// `systemctl show` output for `states` (unit name, `is-enabled` word, `is-active` word),
/// as systemd prints it: for the fakes of tests that stand in for a host.
pub fn show_output(states: &[(&str, &str, &str)]) -> String {
    states
        .iter()
        .map(|(unit, enabled, active)| {
            let id = if unit.contains('.') {
                unit.to_string()
            } else {
                format!("{unit}.service")
            };
            let (load, file) = match *enabled {
                "not-found" | "" => ("not-found", ""),
                "masked" => ("masked", "masked"),
                e => ("loaded", e),
            };
            format!("Id={id}\nLoadState={load}\nActiveState={active}\nUnitFileState={file}\n")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_read_in_the_order_asked() {
        // As systemd 252 prints `systemctl show --property=Id,LoadState,UnitFileState,
        // ActiveState -- iscsid.socket iscsid open-iscsi nosuch` on Debian 12.
        let text = "Id=iscsid.socket\nLoadState=loaded\nActiveState=active\nUnitFileState=enabled\n\n\
                    Id=iscsid.service\nLoadState=loaded\nActiveState=inactive\nUnitFileState=disabled\n\n\
                    Id=open-iscsi.service\nLoadState=loaded\nActiveState=inactive\nUnitFileState=enabled\n\n\
                    Id=nosuch.service\nLoadState=not-found\nActiveState=inactive\nUnitFileState=\n";
        let s = parse_unit_states(text, 4).unwrap();
        assert_eq!(s[0].enabled, "enabled");
        assert!(s[0].is_active() && s[0].enabled_ok());
        assert_eq!(s[1].enabled, "disabled");
        assert!(!s[1].enabled_ok() && !s[1].is_active());
        assert_eq!(s[2].active, "inactive");
        assert_eq!(s[3].enabled, "not-found");
        assert!(!s[3].installed());
        assert!(parse_unit_states(text, 3).is_none());
    }

    #[test]
    fn a_masked_unit_reads_masked() {
        let text =
            "Id=multipathd.service\nLoadState=masked\nActiveState=inactive\nUnitFileState=masked\n";
        let s = parse_unit_states(text, 1).unwrap();
        assert_eq!(s[0].enabled, "masked");
        assert!(s[0].installed());
    }

    #[test]
    fn the_fake_output_reads_back() {
        let text = show_output(&[
            ("iscsid", "disabled", "inactive"),
            ("x.socket", "static", "active"),
        ]);
        let s = parse_unit_states(&text, 2).unwrap();
        assert_eq!(
            s[0],
            UnitState {
                enabled: "disabled".into(),
                active: "inactive".into()
            }
        );
        assert_eq!(
            s[1],
            UnitState {
                enabled: "static".into(),
                active: "active".into()
            }
        );
    }
}
