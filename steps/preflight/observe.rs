//! What preflight reads from the host, read-only: os-release, `uname` (from /proc), privileges,
//! SELinux, RDMA devices and link layers, kernel modules, and which programs are installed.

use std::collections::BTreeSet;
use std::path::Path;

use super::decide::{Observed, PROGRAMS};
use super::parse_os_release;
use crate::steps::facts::{Distro, ModuleState, OsInfo};
use crate::steps::{Ctx, StepError};

/// os-release (`/etc/os-release`, else `/usr/lib/os-release`), parsed.
pub fn os(cx: &Ctx<'_>) -> Result<OsInfo, StepError> {
    let text = match cx.host.read(Path::new("/etc/os-release"))? {
        Some(t) => t,
        None => cx
            .host
            .read(Path::new("/usr/lib/os-release"))?
            .unwrap_or_default(),
    };
    Ok(parse_os_release(&text))
}

/// The kernel release (`-r`) or host name (`-n`): what `uname` prints, read from
/// `/proc/sys/kernel/{osrelease,hostname}` without a process (both are the kernel's own
/// `utsname` fields); `uname` itself where /proc does not show them (a root other than the
/// running system).
fn uname(cx: &Ctx<'_>, arg: &str) -> Result<Option<String>, StepError> {
    let file = if arg == "-r" { "osrelease" } else { "hostname" };
    if let Some(text) = cx
        .host
        .read(Path::new(&format!("/proc/sys/kernel/{file}")))?
    {
        let text = text.trim();
        if !text.is_empty() {
            return Ok(Some(text.to_string()));
        }
    }
    let out = cx.probe(&["uname", arg])?;
    Ok(out
        .success()
        .then(|| out.stdout.trim().to_string())
        .filter(|s| !s.is_empty()))
}

fn selinux(cx: &Ctx<'_>) -> Result<Option<String>, StepError> {
    if cx.host.which("getenforce").is_some() {
        let out = cx.probe(&["getenforce"])?;
        return Ok(Some(out.stdout.trim().to_string()).filter(|s| !s.is_empty()));
    }
    Ok(cx
        .host
        .read(Path::new("/sys/fs/selinux/enforce"))?
        .map(|v| {
            if v.trim() == "1" {
                "Enforcing".to_string()
            } else {
                "Permissive".to_string()
            }
        }))
}

/// RDMA devices and whether any port has an InfiniBand link layer.
fn rdma_devices(cx: &Ctx<'_>) -> Result<(Vec<String>, bool), StepError> {
    let base = Path::new("/sys/class/infiniband");
    let devs = cx.host.list_dir(base)?;
    let mut has_ib = false;
    for d in &devs {
        let ports = base.join(d).join("ports");
        for p in cx.host.list_dir(&ports)? {
            let ll = cx.host.read(&ports.join(&p).join("link_layer"))?;
            if ll.is_some_and(|l| l.trim().eq_ignore_ascii_case("infiniband")) {
                has_ib = true;
            }
        }
    }
    Ok((devs, has_ib))
}

fn module_state(cx: &Ctx<'_>, name: &str) -> Result<ModuleState, StepError> {
    if cx.host.exists(&Path::new("/sys/module").join(name)) {
        return Ok(ModuleState::Loaded);
    }
    if cx.host.which("modprobe").is_none() {
        return Ok(ModuleState::Missing);
    }
    let out = cx.probe(&["modprobe", "-n", "-q", name])?;
    Ok(if out.success() {
        ModuleState::Available
    } else {
        ModuleState::Missing
    })
}

/// `ib_iser`, `ib_ipoib` on a host with InfiniBand ports, and the HCA drivers loaded.
fn modules(cx: &Ctx<'_>, has_ib: bool) -> Result<Vec<(String, ModuleState)>, StepError> {
    let mut names = vec!["ib_iser"];
    if has_ib {
        names.push("ib_ipoib");
    }
    for m in ["mlx5_ib", "mlx4_ib", "rdma_rxe"] {
        if cx.host.exists(&Path::new("/sys/module").join(m)) {
            names.push(m);
        }
    }
    names
        .into_iter()
        .map(|m| Ok((m.to_string(), module_state(cx, m)?)))
        .collect()
}

/// Which of [`PROGRAMS`] are installed.
pub fn installed(cx: &Ctx<'_>) -> BTreeSet<String> {
    PROGRAMS
        .iter()
        .filter(|p| cx.host.which(p).is_some())
        .map(|p| p.to_string())
        .collect()
}

/// Everything else about the host, once its os-release is known.
pub fn host(cx: &Ctx<'_>, os: OsInfo, distro: Distro) -> Result<Observed, StepError> {
    let kernel = uname(cx, "-r")?;
    let hostname = uname(cx, "-n")?;
    let root = cx.host.is_root();
    let selinux = selinux(cx)?;
    let (rdma_devices, has_ib) = rdma_devices(cx)?;
    let modules = modules(cx, has_ib)?;
    Ok(Observed {
        os,
        distro,
        kernel,
        hostname,
        root,
        selinux,
        rdma_devices,
        has_ib,
        modules,
        installed: installed(cx),
    })
}
