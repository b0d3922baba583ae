//! Parsers: pure functions from a tool's text output to typed values.
//!
//! Every parser is tested on the real outputs under `../shared/fixtures/` (skipped, and
//! said so, where that folder is absent) and on outputs captured in the lab.

#[cfg(test)]
mod captured;
#[cfg(test)]
pub mod fixtures;
#[cfg(test)]
pub(crate) mod props;

pub mod blkid;
pub mod ibstat;
pub mod iscsiadm;
pub mod lsblk;
pub mod multipath;
pub mod netlink;
pub mod parted;

/// Decode `\xHH` escapes, as blkid and udev print spaces and unsafe bytes.
pub(crate) fn unhex(s: &str) -> String {
    if !s.contains("\\x") {
        return s.to_string();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && b.get(i + 1) == Some(&b'x') {
            if let Some(v) = s
                .get(i + 2..i + 4)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
