//! Which volumes to detach: the attached volumes of the state (through
//! [`Facts::attached_volumes`], the one seam that knows how they are recorded), chosen by
//! mount point or all of them. Pure.

use crate::steps::Facts;

/// An attached volume to detach, as the state recorded it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Target {
    /// Its multipath WWID.
    pub wwid: String,
    /// The map name recorded at attach (`mpatha`), when known; the live one is found by WWID.
    pub map: Option<String>,
    /// Its mount point, when it was mounted.
    pub mount_point: Option<String>,
    /// The device its filesystem is on.
    pub fs_device: Option<String>,
}

/// Why the selection is not valid (a usage error: nothing was changed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectError {
    /// Neither `--mount-point` nor `--all`.
    #[error("say what to detach: --mount-point P (once per volume) or --all; attached: {0}")]
    NothingChosen(String),
    /// A mount point that is not one of an attached volume.
    #[error("{0} is not the mount point of a volume the wizard attached; attached: {1}")]
    NotAttached(String, String),
}

/// The attached volumes named by `mount_points`, or all of them with `all`. With nothing
/// attached, the answer is empty (there is nothing to do, which is not an error).
pub fn select(
    facts: &Facts,
    mount_points: &[String],
    all: bool,
) -> Result<Vec<Target>, SelectError> {
    let attached: Vec<Target> = facts
        .attached_volumes()
        .into_iter()
        .filter_map(|v| {
            Some(Target {
                wwid: v.wwid.clone()?,
                map: v
                    .map_device
                    .as_deref()
                    .and_then(|d| d.strip_prefix("/dev/mapper/"))
                    .map(str::to_string),
                mount_point: v.mount_point.clone(),
                fs_device: v.fs_device.clone(),
            })
        })
        .collect();
    let listed = || {
        if attached.is_empty() {
            "none".to_string()
        } else {
            attached
                .iter()
                .map(|t| match &t.mount_point {
                    Some(mp) => format!("{mp} ({})", t.wwid),
                    None => t.wwid.clone(),
                })
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    if all {
        return Ok(attached);
    }
    if mount_points.is_empty() {
        if attached.is_empty() {
            return Ok(Vec::new());
        }
        return Err(SelectError::NothingChosen(listed()));
    }
    let mut out: Vec<Target> = Vec::new();
    for mp in mount_points {
        let mp_norm = normalize(mp);
        match attached
            .iter()
            .find(|t| t.mount_point.as_deref().map(normalize) == Some(mp_norm.clone()))
        {
            Some(t) if !out.contains(t) => out.push(t.clone()),
            Some(_) => {}
            None => return Err(SelectError::NotAttached(mp.clone(), listed())),
        }
    }
    Ok(out)
}

/// A mount point without trailing slashes (`/data/` is `/data`).
fn normalize(mp: &str) -> String {
    let t = mp.trim_end_matches('/');
    if t.is_empty() { "/" } else { t }.to_string()
}
