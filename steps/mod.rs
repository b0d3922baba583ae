//! The host side: one module per step, the `Host` seam and the parsers of tool output.

pub mod blockio;
pub mod iscsid_conf;
pub mod parse;
