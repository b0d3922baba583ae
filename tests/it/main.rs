//! The one integration-test binary: the `iser-wizard` executable seen from the outside
//! (CONTRACT.md). One binary rather than one per file, so `cargo test` links the crate into a
//! single test executable (ripgrep's `tests/tests.rs` layout).
//!
//! - [`cli`]: commands, exit codes and what each leaves on disk, with stdin from a pipe or
//!   /dev/null.
//! - [`detach`]: `detach`'s usage errors and refusals, which change nothing.
//! - [`undo`]: `undo` on a `--root` tree: files back, created files gone, idempotent.
//! - [`terminal`]: the interactive run in a real pseudo-terminal.
//! - [`docs`]: the man pages, completions, `docs/` and `answers --explain` against the
//!   validator and the command line.
//! - [`json`]: `run --json`, line by line.
//! - [`bench`]: `bench` and `tune`: their refusals and exit codes.
//! - [`stats`]: `iser-wizard stats` against ministat's published vectors and Debian's binary.
//! - [`util`]: the shared builders (running the binary, temporary roots, tree snapshots).
//!
//! Run one part with `cargo test --test it cli::` or `cargo test --test it terminal::`.

mod array;
mod bare;
mod bench;
mod cli;
mod detach;
mod docs;
mod hostile;
mod json;
mod stats;
mod terminal;
mod undo;
mod util;
