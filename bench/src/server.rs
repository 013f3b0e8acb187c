//! parlor as a separate process, so its /proc figures are its own.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};

/// Where `cargo build --release -p parlor` puts the server.
pub fn default_binary() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/parlor")
}

/// A parlor server we started.
pub struct ServerProc {
    child: Child,
    /// Its process id.
    pub pid: u32,
    /// Its HTTP address (`/ws`, `/metrics`).
    pub http: SocketAddr,
    /// Its media UDP addresses.
    pub media: Vec<SocketAddr>,
}

impl ServerProc {
    /// Start `bin serve --listen 127.0.0.1:0 --udp-port 0` with `env` added, and wait for its
    /// "parlor is serving http://…" line. stderr goes to `log`.
    pub fn spawn(bin: &Path, env: &[(String, String)], log: &Path) -> anyhow::Result<ServerProc> {
        if !bin.exists() {
            bail!(
                "{} does not exist: build it with `cargo build --release -p parlor` (or pass --server-bin / --url)",
                bin.display()
            );
        }
        let err = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let mut cmd = crate::sys::server_command(bin.as_os_str());
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--udp-port", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(err);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().with_context(|| format!("starting {}", bin.display()))?;
        let pid = child.id();
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            // Keep reading so the server never blocks on a full pipe.
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.contains("parlor is serving") {
                    let _ = tx.send(line);
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        let line = loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => break line,
                Err(_) => {
                    if let Ok(Some(status)) = child.try_wait() {
                        bail!("the server exited ({status}) before serving; see {}", log.display());
                    }
                    if Instant::now() >= deadline {
                        let _ = child.kill();
                        bail!("the server printed no \"parlor is serving\" line within 20 s; see {}", log.display());
                    }
                }
            }
        };
        let (http, media) = parse_serving(&line).ok_or_else(|| anyhow!("cannot parse {line:?}"))?;
        Ok(ServerProc { child, pid, http, media })
    }

    /// Stop it: SIGTERM, then SIGKILL after 5 s.
    pub fn stop(mut self) {
        self.terminate();
    }

    fn terminate(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        crate::sys::signal(self.pid, libc::SIGINT);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        self.terminate();
    }
}

/// "parlor is serving http://127.0.0.1:41234/ (media UDP [127.0.0.1:50000, 127.0.0.1:50001])"
fn parse_serving(line: &str) -> Option<(SocketAddr, Vec<SocketAddr>)> {
    let rest = line.split("http://").nth(1)?;
    let http: SocketAddr = rest.split('/').next()?.parse().ok()?;
    let media = line
        .split('[')
        .nth(1)
        .and_then(|r| r.split(']').next())
        .map(|list| list.split(',').filter_map(|a| a.trim().parse().ok()).collect())
        .unwrap_or_default();
    Some((http, media))
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_the_serving_line() {
        let (http, media) = super::parse_serving(
            "parlor is serving http://127.0.0.1:41234/ (media UDP [127.0.0.1:50000, 127.0.0.1:50001])",
        )
        .unwrap();
        assert_eq!(http, "127.0.0.1:41234".parse().unwrap());
        assert_eq!(media.len(), 2);
    }
}
