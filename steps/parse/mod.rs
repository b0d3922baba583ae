//! Parsers: pure functions from a tool's text output to typed values.
//!
//! Every parser is tested on the real outputs under `../shared/fixtures/` (skipped, and
//! said so, where that folder is absent) and on outputs captured in the lab.

#[cfg(test)]
mod captured;
#[cfg(test)]
pub mod fixtures;

pub mod blkid;
pub mod ibstat;
pub mod iscsiadm;
pub mod lsblk;
pub mod multipath;
pub mod netlink;
pub mod parted;
