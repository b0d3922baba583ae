//! What preflight takes from the answers, and the one question it may ask: whether to go on
//! on a release the wizard does not support.

use super::decide::Wanted;
use crate::settings::{Fabric, FsType};
use crate::steps::facts::{Distro, OsInfo};
use crate::steps::{Ctx, StepError};

/// What the answers say about the programs the later steps need (nothing is asked: a
/// missing answer means its default).
pub fn wanted(cx: &Ctx<'_>) -> Wanted {
    let a = cx.ask.answers();
    Wanted {
        fabric: a.fabric.unwrap_or(Fabric::Auto),
        run_on_host: a
            .subnet_manager
            .as_ref()
            .and_then(|m| m.run_on_host)
            .unwrap_or(true),
        filesystem: a.volume.filesystem.unwrap_or(FsType::Ext4),
        rebuild_initramfs: a
            .multipath
            .as_ref()
            .and_then(|m| m.rebuild_initramfs)
            .unwrap_or(false),
    }
}

/// Whether the operator goes on, at their own risk, on an unsupported release of a known
/// family (asked; `host.allow_unsupported_os`).
pub fn allow_unsupported(cx: &mut Ctx<'_>, os: &OsInfo, distro: Distro) -> Result<bool, StepError> {
    Ok(cx.ask.want_yes(
        "host.allow_unsupported_os",
        &format!(
            "{} is not a supported release (RHEL/Rocky/Alma 8-9, SLES 15, Ubuntu \
             22.04/24.04, Debian 12-13); it will be configured like {:?}. Continue at your \
             own risk?",
            os.pretty_name, distro
        ),
        false,
        |a| &mut a.host.allow_unsupported_os,
    )?)
}
