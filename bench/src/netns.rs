//! The network namespace Janus needs (it skips loopback interfaces when gathering candidates):
//! `parlor-net`, with a veth carrying 127.1.0.1, made by `bench/janus/netns.sh`. The comparison
//! re-runs this very command inside it.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context};

/// The namespace's name (netns.sh).
pub const NAME: &str = "parlor-net";
const MARK: &str = "PBENCH_IN_NETNS";

/// Whether this process runs inside the namespace.
pub fn inside() -> bool {
    let ours = std::fs::metadata("/proc/self/ns/net").map(|m| (m.dev(), m.ino()));
    let theirs = std::fs::metadata(format!("/run/netns/{NAME}")).map(|m| (m.dev(), m.ino()));
    matches!((ours, theirs), (Ok(a), Ok(b)) if a == b)
}

/// Run this command again inside the namespace (creating it with `script` if needed, and
/// deleting it afterwards if we created it). Returns the inner run's exit code.
pub fn rerun_inside(script: &Path) -> anyhow::Result<i32> {
    if std::env::var_os(MARK).is_some() {
        bail!("still not inside network namespace {NAME} after entering it");
    }
    let created = if Path::new(&format!("/run/netns/{NAME}")).exists() {
        false
    } else {
        let status =
            Command::new("sh").arg(script).status().with_context(|| format!("running {}", script.display()))?;
        if !status.success() {
            bail!("{} failed ({status}); creating a network namespace needs root", script.display());
        }
        true
    };
    let exe = std::env::current_exe()?;
    eprintln!("entering network namespace {NAME}{}", if created { " (created for this run)" } else { "" });
    let status = Command::new("ip")
        .args(["netns", "exec", NAME])
        .arg(exe)
        .args(std::env::args_os().skip(1))
        .env(MARK, "1")
        .status()
        .context("ip netns exec")?;
    if created {
        let _ = Command::new("ip").args(["netns", "del", NAME]).status();
    }
    Ok(status.code().unwrap_or(1))
}
