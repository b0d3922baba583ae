//! iser-wizard: a guided, verified attach of a Linux host to iSER storage.
//!
//! The crate is laid out by ownership:
//! - `wizard/` (this directory) owns the operator: CLI, prompts, progress, the order of
//!   steps, the answers file, the state file and resume;
//! - `steps/` owns the host: one module per step that probes, plans, applies and verifies,
//!   plus the `Host` seam and the parsers of tool output;
//! - `worksheets/` owns the record and its renderers;
//! - `templates/` holds the text of every file the wizard writes.

pub mod answers;
pub mod bench;
pub mod cfmt;
pub mod cli;
pub mod docs;
pub mod exit;
pub mod flow;
pub mod output;
pub mod progress;
pub mod prompt;
#[cfg(test)]
mod props;
pub mod settings;
pub mod state;
pub mod stats;
pub mod status;
pub mod tune;
pub mod undo;

#[path = "../steps/mod.rs"]
pub mod steps;
#[path = "../worksheets/mod.rs"]
pub mod worksheets;
