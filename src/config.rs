//! Configuration: the embedded defaults (config/default.toml), then a file, then
//! `PARLOR_…` environment variables, then flags — validated once at start.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use anyhow::{bail, Context, Result};
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

/// The commented defaults, compiled in: the single source of every default value.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub media: MediaSection,
    pub rooms: RoomsConfig,
    pub session: SessionConfig,
    pub games: GamesConfig,
    pub log: LogConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GamesConfig {
    pub log_dir: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub max_connections: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaSection {
    pub udp_port: u16,
    pub workers: usize,
    pub bind_ip: String,
    pub announce_ips: Vec<IpAddr>,
    pub max_peers_per_worker: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoomsConfig {
    pub max_participants: usize,
    pub max_video_kbps: u32,
    pub max_rooms: usize,
    pub idle_seconds: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionConfig {
    pub grace_seconds: f64,
    pub ping_seconds: f64,
    pub dead_after_seconds: f64,
    pub messages_per_second: f64,
    pub message_burst: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    pub level: String,
}

/// Values given on the command line; each overrides everything else.
#[derive(Debug, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub udp_port: Option<u16>,
}

impl Config {
    /// Load from the layers, reading environment variables from `env` (normally the process
    /// environment; tests pass their own).
    pub fn load(file: Option<&Path>, overrides: &Overrides, env: Env) -> Result<Config> {
        let mut figment = Figment::from(Toml::string(DEFAULT_TOML));
        if let Some(path) = file {
            if !path.exists() {
                bail!("config file {} does not exist", path.display());
            }
            figment = figment.merge(Toml::file(path));
        }
        figment = figment.merge(env);
        if let Some(listen) = overrides.listen {
            figment = figment.merge(Serialized::default("server.listen", listen));
        }
        if let Some(port) = overrides.udp_port {
            figment = figment.merge(Serialized::default("media.udp_port", port));
        }
        let config: Config = figment.extract().map_err(|e| {
            let mut msg = String::from("invalid configuration");
            for err in e {
                let key = err.path.join(".");
                msg.push_str(&format!("\n  {}: {}", if key.is_empty() { "(root)".into() } else { key }, err.kind));
                if let Some(meta) = &err.metadata {
                    msg.push_str(&format!(" (from {})", meta.name));
                }
            }
            anyhow::anyhow!(msg)
        })?;
        config.validate()?;
        Ok(config)
    }

    /// The process environment's `PARLOR_SECTION__KEY` variables.
    pub fn env() -> Env {
        Env::prefixed("PARLOR_").split("__")
    }

    fn validate(&self) -> Result<()> {
        if self.media.workers == 0 || self.media.workers > 64 {
            bail!("invalid configuration\n  media.workers: must be between 1 and 64, got {}", self.media.workers);
        }
        if self.media.udp_port != 0 && u32::from(self.media.udp_port) + self.media.workers as u32 - 1 > 65535 {
            bail!(
                "invalid configuration\n  media.udp_port: {} + {} workers runs past port 65535",
                self.media.udp_port,
                self.media.workers
            );
        }
        if !self.media.bind_ip.is_empty() {
            self.media.bind_ip.parse::<IpAddr>().with_context(|| {
                format!("invalid configuration\n  media.bind_ip: \"{}\" is not an IP address", self.media.bind_ip)
            })?;
        }
        if self.media.max_peers_per_worker == 0 {
            bail!("invalid configuration\n  media.max_peers_per_worker: must be at least 1");
        }
        if self.rooms.max_participants < 2 || self.rooms.max_participants > 1000 {
            bail!(
                "invalid configuration\n  rooms.max_participants: must be between 2 and 1000, got {}",
                self.rooms.max_participants
            );
        }
        if self.rooms.max_video_kbps < 50 {
            bail!(
                "invalid configuration\n  rooms.max_video_kbps: must be at least 50, got {}",
                self.rooms.max_video_kbps
            );
        }
        if !(self.session.grace_seconds.is_finite()
            && self.session.grace_seconds >= 0.0
            && self.session.grace_seconds <= 86_400.0)
        {
            bail!(
                "invalid configuration\n  session.grace_seconds: must be between 0 and 86400, got {}",
                self.session.grace_seconds
            );
        }
        if !(self.session.ping_seconds.is_finite()
            && self.session.ping_seconds >= 0.05
            && self.session.ping_seconds <= 3600.0)
        {
            bail!(
                "invalid configuration\n  session.ping_seconds: must be between 0.05 and 3600, got {}",
                self.session.ping_seconds
            );
        }
        if !(self.session.dead_after_seconds.is_finite() && self.session.dead_after_seconds > self.session.ping_seconds)
        {
            bail!(
                "invalid configuration\n  session.dead_after_seconds: must be longer than session.ping_seconds ({}), got {}",
                self.session.ping_seconds,
                self.session.dead_after_seconds
            );
        }
        if self.server.max_connections == 0 {
            bail!("invalid configuration\n  server.max_connections: must be at least 1");
        }
        if self.rooms.max_rooms == 0 {
            bail!("invalid configuration\n  rooms.max_rooms: must be at least 1");
        }
        if !(self.rooms.idle_seconds.is_finite() && self.rooms.idle_seconds > 0.0) {
            bail!(
                "invalid configuration\n  rooms.idle_seconds: must be a positive number of seconds, got {}",
                self.rooms.idle_seconds
            );
        }
        if !(self.session.messages_per_second.is_finite() && self.session.messages_per_second > 0.0) {
            bail!(
                "invalid configuration\n  session.messages_per_second: must be positive, got {}",
                self.session.messages_per_second
            );
        }
        if self.session.message_burst == 0 {
            bail!("invalid configuration\n  session.message_burst: must be at least 1");
        }
        tracing_subscriber::EnvFilter::try_new(&self.log.level).with_context(|| {
            format!("invalid configuration\n  log.level: \"{}\" is not a valid filter", self.log.level)
        })?;
        Ok(())
    }

    /// The IP the media sockets bind to.
    pub fn media_bind_ip(&self) -> IpAddr {
        self.media.bind_ip.parse().unwrap_or(self.server.listen.ip())
    }

    /// The addresses announced as ICE host candidates (see config/default.toml).
    pub fn announce_ips(&self) -> Vec<IpAddr> {
        if !self.media.announce_ips.is_empty() {
            return self.media.announce_ips.clone();
        }
        let bind = self.media_bind_ip();
        if !bind.is_unspecified() {
            return vec![bind];
        }
        let found: Vec<IpAddr> = if_addrs::get_if_addrs()
            .map(|ifs| ifs.into_iter().filter(|i| !i.is_loopback()).map(|i| i.ip()).collect())
            .unwrap_or_default();
        let found: Vec<IpAddr> =
            found.into_iter().filter(|ip| ip.is_ipv4() == bind.is_ipv4() && !is_link_local(ip)).collect();
        if found.is_empty() {
            tracing::warn!("no usable interface address found; announcing 127.0.0.1 (set media.announce_ips)");
            return vec![IpAddr::from([127, 0, 0, 1])];
        }
        if found.iter().all(is_private) {
            tracing::warn!(
                ?found,
                "only private addresses found; behind NAT set media.announce_ips to the public address"
            );
        }
        found
    }
}

fn is_link_local(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
    }
}

fn is_private(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_private() || v4.is_loopback(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xfe00) == 0xfc00 || v6.is_loopback(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(file: Option<&Path>, overrides: &Overrides, vars: &[(&str, &str)]) -> Result<Config> {
        // figment's Env reads the process environment, so tests use a unique prefix.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let prefix = format!("PARLORTEST{}X{n}_", std::process::id());
        for (k, v) in vars {
            std::env::set_var(format!("{prefix}{k}"), v);
        }
        let result = Config::load(file, overrides, Env::prefixed(&prefix).split("__"));
        for (k, _) in vars {
            std::env::remove_var(format!("{prefix}{k}"));
        }
        result
    }

    #[test]
    fn embedded_defaults() {
        let c = load(None, &Overrides::default(), &[]).unwrap();
        assert_eq!(c.server.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(c.media.udp_port, 50000);
        assert_eq!(c.media.workers, 1);
        assert_eq!(c.rooms.max_participants, 24);
        assert_eq!(c.session.grace_seconds, 30.0);
        assert_eq!(c.announce_ips(), vec![IpAddr::from([127, 0, 0, 1])]);
    }

    #[test]
    fn layers_override_in_order() {
        let dir = std::env::temp_dir().join(format!("parlor-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.toml");
        std::fs::write(&file, "[media]\nudp_port = 40000\nworkers = 2\n[rooms]\nmax_participants = 8\n").unwrap();
        let c = load(Some(&file), &Overrides::default(), &[("MEDIA__WORKERS", "3")]).unwrap();
        assert_eq!(c.media.udp_port, 40000);
        assert_eq!(c.media.workers, 3);
        assert_eq!(c.rooms.max_participants, 8);
        let flags = Overrides { listen: Some("127.0.0.1:9999".parse().unwrap()), udp_port: Some(41000) };
        let c = load(Some(&file), &flags, &[("MEDIA__UDP_PORT", "42000")]).unwrap();
        assert_eq!(c.media.udp_port, 41000);
        assert_eq!(c.server.listen.port(), 9999);
    }

    #[test]
    fn bad_values_name_the_key() {
        let e = load(None, &Overrides::default(), &[("MEDIA__UDP_PORT", "lots")]).unwrap_err().to_string();
        assert!(e.contains("media.udp_port"), "{e}");
        let e = load(None, &Overrides::default(), &[("MEDIA__WORKERS", "0")]).unwrap_err().to_string();
        assert!(e.contains("media.workers"), "{e}");
        let e = load(None, &Overrides::default(), &[("ROOMS__MAX_PARTICIPANTS", "1")]).unwrap_err().to_string();
        assert!(e.contains("rooms.max_participants"), "{e}");
        let e = load(None, &Overrides::default(), &[("SESSION__DEAD_AFTER_SECONDS", "4")]).unwrap_err().to_string();
        assert!(e.contains("session.dead_after_seconds"), "{e}");
        let e = load(None, &Overrides::default(), &[("SESSION__PING_SECONDS", "0")]).unwrap_err().to_string();
        assert!(e.contains("session.ping_seconds"), "{e}");
        let dir = std::env::temp_dir().join(format!("parlor-cfg2-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("typo.toml");
        std::fs::write(&file, "[media]\nudp_prot = 1\n").unwrap();
        let e = load(Some(&file), &Overrides::default(), &[]).unwrap_err().to_string();
        assert!(e.contains("udp_prot"), "{e}");
        let e = load(Some(&dir.join("missing.toml")), &Overrides::default(), &[]).unwrap_err().to_string();
        assert!(e.contains("does not exist"), "{e}");
    }
}
