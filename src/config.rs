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
    pub stage: StageConfig,
    pub session: SessionConfig,
    pub games: GamesConfig,
    pub log: LogConfig,
    pub tls: TlsConfig,
    pub auth: AuthConfig,
    #[serde(default)]
    pub cluster: ClusterConfig,
}

/// `[cluster]`: several nodes sharing one Redis (docs/SCALING.md). An empty `redis`: no cluster.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    pub redis: String,
    pub node_id: String,
    pub url: String,
    pub heartbeat_seconds: f64,
    pub ttl_seconds: f64,
    /// How long SIGTERM lets this node's rooms run on before it leaves anyway.
    pub drain_seconds: f64,
}

impl ClusterConfig {
    /// Whether this node is part of a cluster.
    pub fn enabled(&self) -> bool {
        !self.redis.trim().is_empty()
    }

    fn validate(&self) -> Result<()> {
        if !self.enabled() {
            return Ok(());
        }
        if !(self.redis.starts_with("redis://")
            || self.redis.starts_with("rediss://")
            || self.redis.starts_with("unix:"))
        {
            bail!("invalid configuration\n  cluster.redis: a redis://, rediss:// or unix: URL, got \"{}\"", self.redis);
        }
        if !self.node_id.is_empty()
            && (self.node_id.len() > 64
                || !self.node_id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)))
        {
            bail!("invalid configuration\n  cluster.node_id: 1-64 characters of A-Z, a-z, 0-9, -, _ and .");
        }
        let url = self.url.trim_end_matches('/');
        let scheme_ok = url.starts_with("http://") || url.starts_with("https://");
        if !url.is_empty()
            && (!scheme_ok || url.split("://").nth(1).is_none_or(|rest| rest.is_empty() || rest.contains('/')))
        {
            bail!("invalid configuration\n  cluster.url: http(s)://host[:port] with no path, got \"{}\"", self.url);
        }
        if !(self.heartbeat_seconds.is_finite() && self.heartbeat_seconds >= 0.05) {
            bail!(
                "invalid configuration\n  cluster.heartbeat_seconds: must be at least 0.05, got {}",
                self.heartbeat_seconds
            );
        }
        if !(self.ttl_seconds.is_finite() && self.ttl_seconds >= 2.0 * self.heartbeat_seconds) {
            bail!(
                "invalid configuration\n  cluster.ttl_seconds: must be at least twice cluster.heartbeat_seconds ({}), got {}",
                self.heartbeat_seconds,
                self.ttl_seconds
            );
        }
        if !(self.drain_seconds.is_finite() && self.drain_seconds >= 0.0) {
            bail!("invalid configuration\n  cluster.drain_seconds: must be 0 or more, got {}", self.drain_seconds);
        }
        Ok(())
    }
}

/// `[tls]`: HTTPS and WSS served by parlor itself (see config/default.toml).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert: String,
    pub key: String,
    pub redirect_http: String,
    pub watch_seconds: f64,
    pub acme: AcmeConfig,
}

impl TlsConfig {
    /// Whether TLS is on (both files named, or a certificate from ACME).
    pub fn enabled(&self) -> bool {
        !self.cert.is_empty() || self.acme.enabled()
    }
}

/// `[tls.acme]`: a certificate from an ACME CA such as Let's Encrypt (see config/default.toml).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcmeConfig {
    pub domains: Vec<String>,
    pub contact: String,
    pub directory: String,
    pub cache_dir: String,
    pub ca_root: String,
    pub challenge: AcmeChallenge,
    pub retry_seconds: f64,
}

impl AcmeConfig {
    /// Whether ACME is on (at least one domain).
    pub fn enabled(&self) -> bool {
        !self.domains.is_empty()
    }
}

/// `tls.acme.challenge`: how the CA checks that this server answers for the domains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AcmeChallenge {
    /// TLS-ALPN-01 (RFC 8737) on the HTTPS port (server.listen): needs only that port open.
    #[serde(rename = "tls-alpn-01")]
    TlsAlpn01,
    /// HTTP-01 on the plain-HTTP listener (tls.redirect_http), which must be reachable on port 80.
    #[serde(rename = "http-01")]
    Http01,
}

/// A domain name as a CA accepts it: dot-separated labels of letters, digits and hyphens.
fn valid_domain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// `[auth]`: who may create rooms, host tokens, lookup limits (see config/default.toml).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    pub mode: AuthMode,
    pub host_keys: Vec<String>,
    pub secret: String,
    pub token_ttl_seconds: f64,
    pub lookup_burst: u32,
    pub lookups_per_minute: f64,
    pub trusted_proxies: Vec<String>,
}

/// `auth.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    /// A `join` to an unknown code creates the room; anyone may use the room API's POST.
    Open,
    /// Rooms are created only through the API, with a host key.
    HostKey,
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
    pub workers: Workers,
    pub bind_ip: String,
    pub announce_ips: Vec<IpAddr>,
    pub max_peers_per_worker: usize,
    pub tcp_port: TcpPort,
    /// STUN/TURN servers handed to browsers (`welcome.ice_servers`).
    pub ice_servers: Vec<parlor_signaling::protocol::IceServer>,
}

/// The most media workers a server starts (`"auto"` included).
pub const MAX_WORKERS: usize = 64;

/// `media.workers`: a number of media workers from 1 to [`MAX_WORKERS`], or `"auto"`: one per
/// core this process may use (see [`Workers::count`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workers {
    /// One per core ([`std::thread::available_parallelism`]), at most [`MAX_WORKERS`].
    Auto,
    /// This many.
    Count(usize),
}

impl Workers {
    /// How many workers to start.
    pub fn count(self) -> usize {
        match self {
            Workers::Count(n) => n,
            Workers::Auto => std::thread::available_parallelism().map_or(1, |n| n.get()).min(MAX_WORKERS),
        }
    }
}

impl std::fmt::Display for Workers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Workers::Auto => write!(f, "\"auto\" ({})", self.count()),
            Workers::Count(n) => write!(f, "{n}"),
        }
    }
}

impl Serialize for Workers {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Workers::Auto => serializer.serialize_str("auto"),
            Workers::Count(n) => serializer.serialize_u64(*n as u64),
        }
    }
}

impl<'de> Deserialize<'de> for Workers {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct Visitor;

        fn refuse<E: serde::de::Error>(got: impl std::fmt::Display) -> E {
            E::custom(format!("expected a number from 1 to {MAX_WORKERS} or \"auto\", got {got}"))
        }

        impl serde::de::Visitor<'_> for Visitor {
            type Value = Workers;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "a number from 1 to {MAX_WORKERS} or \"auto\"")
            }

            fn visit_u64<E: serde::de::Error>(self, n: u64) -> std::result::Result<Workers, E> {
                match usize::try_from(n) {
                    Ok(n) if (1..=MAX_WORKERS).contains(&n) => Ok(Workers::Count(n)),
                    _ => Err(refuse(n)),
                }
            }

            fn visit_i64<E: serde::de::Error>(self, n: i64) -> std::result::Result<Workers, E> {
                match u64::try_from(n) {
                    Ok(n) => self.visit_u64(n),
                    Err(_) => Err(refuse(n)),
                }
            }

            fn visit_f64<E: serde::de::Error>(self, n: f64) -> std::result::Result<Workers, E> {
                Err(refuse(n))
            }

            fn visit_bool<E: serde::de::Error>(self, b: bool) -> std::result::Result<Workers, E> {
                Err(refuse(b))
            }

            fn visit_str<E: serde::de::Error>(self, s: &str) -> std::result::Result<Workers, E> {
                if s.trim().eq_ignore_ascii_case("auto") {
                    return Ok(Workers::Auto);
                }
                match s.trim().parse::<u64>() {
                    Ok(n) => self.visit_u64(n),
                    Err(_) => Err(refuse(format_args!("{s:?}"))),
                }
            }
        }

        deserializer.deserialize_any(Visitor)
    }
}

/// `media.tcp_port`: the first worker's ICE-TCP port (0: free ports), `"same"` as
/// `media.udp_port`, or `"off"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TcpPort {
    /// This port number (0: a free port per worker).
    Port(u16),
    /// `"same"` or `"off"`.
    Word(TcpPortWord),
}

/// The words `media.tcp_port` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TcpPortWord {
    /// The same number as `media.udp_port`.
    Same,
    /// No ICE-TCP.
    Off,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoomsConfig {
    pub max_participants: usize,
    pub max_video_kbps: u32,
    pub max_rooms: usize,
    pub idle_seconds: f64,
}

/// `[stage]`: host-led stage rooms (kind `stage`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageConfig {
    pub capacity: usize,
    pub max_on_stage: usize,
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
        Self::env_prefixed("PARLOR_")
    }

    /// `{prefix}SECTION__KEY` variables. Every key lives in a section, so a variable without
    /// `__` (say `PARLOR_URL`, set for some other tool) cannot be configuration: it is left out
    /// rather than refused. [`Config::stray_env`] names them for a warning.
    pub fn env_prefixed(prefix: &str) -> Env {
        Env::prefixed(prefix).filter(|key| key.as_str().contains("__")).split("__")
    }

    /// The `PARLOR_…` variables [`Config::env`] leaves out, for a warning at start. One that
    /// starts like a section (`PARLOR_SERVER_LISTEN`, one underscore short) is an error instead.
    pub fn stray_env() -> Result<Vec<String>> {
        Self::stray_env_prefixed("PARLOR_")
    }

    fn stray_env_prefixed(prefix: &str) -> Result<Vec<String>> {
        let sections: Vec<&str> =
            DEFAULT_TOML.lines().filter_map(|l| l.trim().strip_prefix('[')?.strip_suffix(']')).collect();
        let mut names = Vec::new();
        for (name, _) in std::env::vars_os() {
            let Ok(name) = name.into_string() else { continue };
            // figment matches the prefix without regard to case; so does this.
            let Some(rest) =
                name.get(..prefix.len()).filter(|p| p.eq_ignore_ascii_case(prefix)).map(|_| &name[prefix.len()..])
            else {
                continue;
            };
            if rest.is_empty() || rest.contains("__") {
                continue;
            }
            let lower = rest.to_ascii_lowercase();
            if let Some(section) = sections.iter().find(|s| lower.starts_with(&format!("{s}_"))) {
                let key = &rest[section.len() + 1..];
                bail!(
                    "invalid configuration\n  {name}: section and key are separated by two underscores: \
                     {prefix}{}__{key}",
                    section.to_ascii_uppercase()
                );
            }
            names.push(name);
        }
        names.sort();
        Ok(names)
    }

    fn validate(&self) -> Result<()> {
        self.cluster.validate()?;
        let workers = self.media.workers.count();
        if workers == 0 || workers > MAX_WORKERS {
            bail!(
                "invalid configuration\n  media.workers: expected a number from 1 to {MAX_WORKERS} or \"auto\", got {}",
                self.media.workers
            );
        }
        if self.media.udp_port != 0 && u32::from(self.media.udp_port) + workers as u32 - 1 > 65535 {
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
        self.validate_tcp_port()?;
        for (i, server) in self.media.ice_servers.iter().enumerate() {
            let scheme_ok = |u: &String| ["stun:", "turn:", "turns:"].iter().any(|s| u.starts_with(s));
            if server.urls.is_empty() || !server.urls.iter().all(scheme_ok) {
                bail!(
                    "invalid configuration\n  media.ice_servers[{i}].urls: give one or more stun:, turn: or turns: URLs, got {:?}",
                    server.urls
                );
            }
            let turn = server.urls.iter().any(|u| u.starts_with("turn"));
            if turn && (server.username.is_none() || server.credential.is_none()) {
                bail!("invalid configuration\n  media.ice_servers[{i}]: a TURN server needs username and credential");
            }
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
        if self.stage.capacity < 2 || self.stage.capacity > 1000 {
            bail!("invalid configuration\n  stage.capacity: must be between 2 and 1000, got {}", self.stage.capacity);
        }
        if self.stage.max_on_stage == 0 || self.stage.max_on_stage > 16 {
            bail!(
                "invalid configuration\n  stage.max_on_stage: must be between 1 and 16, got {}",
                self.stage.max_on_stage
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
        if self.tls.cert.is_empty() != self.tls.key.is_empty() {
            bail!("invalid configuration\n  tls.cert, tls.key: give both PEM files, or neither");
        }
        let acme = &self.tls.acme;
        if acme.enabled() {
            if !self.tls.cert.is_empty() {
                bail!("invalid configuration\n  tls.acme.domains: either tls.cert and tls.key, or tls.acme, not both");
            }
            if let Some(bad) = acme.domains.iter().find(|d| !valid_domain(d)) {
                bail!(
                    "invalid configuration\n  tls.acme.domains: \"{bad}\" is not a domain name such as \
                     parlor.example.org (no wildcards, no IP addresses)"
                );
            }
            if !(acme.directory.starts_with("https://") || acme.directory.starts_with("http://")) {
                bail!(
                    "invalid configuration\n  tls.acme.directory: \"{}\" is not an http(s) URL of an ACME directory",
                    acme.directory
                );
            }
            if acme.cache_dir.is_empty() {
                bail!(
                    "invalid configuration\n  tls.acme.cache_dir: name a directory for the account key and certificate"
                );
            }
            if !acme.contact.is_empty() && (!acme.contact.contains('@') || acme.contact.contains(char::is_whitespace)) {
                bail!("invalid configuration\n  tls.acme.contact: \"{}\" is not an email address", acme.contact);
            }
            if acme.challenge == AcmeChallenge::Http01 && self.tls.redirect_http.is_empty() {
                bail!(
                    "invalid configuration\n  tls.acme.challenge: \"http-01\" is answered on tls.redirect_http; \
                     set it (e.g. \"0.0.0.0:80\") or use \"tls-alpn-01\""
                );
            }
            if !(acme.retry_seconds.is_finite() && acme.retry_seconds > 0.0) {
                bail!(
                    "invalid configuration\n  tls.acme.retry_seconds: must be a positive number of seconds, got {}",
                    acme.retry_seconds
                );
            }
        }
        if !self.tls.redirect_http.is_empty() {
            if !self.tls.enabled() {
                bail!("invalid configuration\n  tls.redirect_http: needs tls.cert and tls.key, or tls.acme");
            }
            self.tls.redirect_http.parse::<SocketAddr>().with_context(|| {
                format!(
                    "invalid configuration\n  tls.redirect_http: \"{}\" is not an address such as 0.0.0.0:80",
                    self.tls.redirect_http
                )
            })?;
        }
        if !(self.tls.watch_seconds.is_finite() && self.tls.watch_seconds >= 0.0) {
            bail!(
                "invalid configuration\n  tls.watch_seconds: must be 0 (off) or more, got {}",
                self.tls.watch_seconds
            );
        }
        if self.auth.mode == AuthMode::HostKey && self.auth.host_keys.is_empty() {
            bail!("invalid configuration\n  auth.host_keys: auth.mode = \"host_key\" needs at least one key");
        }
        if self.auth.host_keys.iter().any(|k| k.len() < 16) {
            bail!("invalid configuration\n  auth.host_keys: each key must be at least 16 characters");
        }
        if !self.auth.secret.is_empty() && self.auth.secret.len() < 32 {
            bail!("invalid configuration\n  auth.secret: must be at least 32 characters (or empty: random at start)");
        }
        if !(self.auth.token_ttl_seconds.is_finite() && self.auth.token_ttl_seconds >= 1.0) {
            bail!(
                "invalid configuration\n  auth.token_ttl_seconds: must be at least 1, got {}",
                self.auth.token_ttl_seconds
            );
        }
        if self.auth.lookup_burst == 0 {
            bail!("invalid configuration\n  auth.lookup_burst: must be at least 1");
        }
        if !(self.auth.lookups_per_minute.is_finite() && self.auth.lookups_per_minute > 0.0) {
            bail!(
                "invalid configuration\n  auth.lookups_per_minute: must be positive, got {}",
                self.auth.lookups_per_minute
            );
        }
        for entry in &self.auth.trusted_proxies {
            if let Err(why) = crate::network::Network::parse(entry) {
                bail!("invalid configuration\n  auth.trusted_proxies: {entry:?}: {why}");
            }
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

    fn validate_tcp_port(&self) -> Result<()> {
        if let Some(port) = self.media_tcp_port() {
            if port != 0 && u32::from(port) + self.media.workers.count() as u32 - 1 > 65535 {
                bail!(
                    "invalid configuration\n  media.tcp_port: {port} + {} workers runs past port 65535",
                    self.media.workers
                );
            }
        }
        Ok(())
    }

    /// The `--tcp-port` flag: overrides `media.tcp_port` (flags win over every other layer).
    pub fn set_tcp_port(&mut self, port: u16) -> Result<()> {
        self.media.tcp_port = TcpPort::Port(port);
        self.validate_tcp_port()
    }

    /// The first worker's ICE-TCP port (0: free ports), or `None` when ICE-TCP is off.
    pub fn media_tcp_port(&self) -> Option<u16> {
        match self.media.tcp_port {
            TcpPort::Port(p) => Some(p),
            TcpPort::Word(TcpPortWord::Same) => Some(self.media.udp_port),
            TcpPort::Word(TcpPortWord::Off) => None,
        }
    }

    /// The addresses announced as ICE candidates (see config/default.toml); warnings are logged.
    pub fn announce_ips(&self) -> Vec<IpAddr> {
        let (ips, warning) = self.announce_plan();
        if let Some(w) = warning {
            tracing::warn!("{w}");
        }
        ips
    }

    /// The addresses to announce, and a warning when they were detected and look wrong.
    pub fn announce_plan(&self) -> (Vec<IpAddr>, Option<String>) {
        if !self.media.announce_ips.is_empty() {
            return (self.media.announce_ips.clone(), None);
        }
        let bind = self.media_bind_ip();
        if !bind.is_unspecified() {
            return (vec![bind], None);
        }
        let found: Vec<IpAddr> = if_addrs::get_if_addrs()
            .map(|ifs| ifs.into_iter().filter(|i| !i.is_loopback()).map(|i| i.ip()).collect())
            .unwrap_or_default();
        detect_announce(bind, found)
    }
}

/// From the interfaces' addresses, those a socket bound to the wildcard `bind` serves: IPv4
/// for 0.0.0.0; both families for `::` (the media sockets are dual-stack).
fn detect_announce(bind: IpAddr, found: Vec<IpAddr>) -> (Vec<IpAddr>, Option<String>) {
    let found: Vec<IpAddr> = found
        .into_iter()
        .filter(|ip| (bind.is_ipv6() || ip.is_ipv4()) && !is_link_local(ip) && !ip.is_loopback())
        .collect();
    if found.is_empty() {
        let warning = "no usable interface address found; announcing 127.0.0.1 (set media.announce_ips)";
        return (vec![IpAddr::from([127, 0, 0, 1])], Some(warning.into()));
    }
    let warning = found.iter().all(is_private).then(|| {
        format!(
            "only private addresses found ({}); behind NAT set media.announce_ips to the public address",
            found.iter().map(|ip| ip.to_string()).collect::<Vec<_>>().join(", ")
        )
    });
    (found, warning)
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
        let result = Config::load(file, overrides, Config::env_prefixed(&prefix));
        for (k, _) in vars {
            std::env::remove_var(format!("{prefix}{k}"));
        }
        result
    }

    #[test]
    fn variables_outside_a_section_are_left_out_and_named() {
        let prefix = format!("PARLORSTRAY{}_", std::process::id());
        std::env::set_var(format!("{prefix}URL"), "http://127.0.0.1:1/");
        std::env::set_var(format!("{prefix}SERVER__MAX_CONNECTIONS"), "7");
        let loaded = Config::load(None, &Overrides::default(), Config::env_prefixed(&prefix));
        let stray = Config::stray_env_prefixed(&prefix).unwrap();
        std::env::remove_var(format!("{prefix}URL"));
        std::env::remove_var(format!("{prefix}SERVER__MAX_CONNECTIONS"));
        assert_eq!(loaded.unwrap().server.max_connections, 7, "section keys still apply");
        assert_eq!(stray, vec![format!("{prefix}URL")]);
        // A misspelt key inside a section is still refused, naming it.
        let err = load(None, &Overrides::default(), &[("SERVER__LISTENN", "127.0.0.1:1")]).unwrap_err();
        assert!(format!("{err:#}").contains("listenn"), "{err:#}");
        // One underscore short of a section (in any case) is an error that shows the right name.
        let near = format!("{prefix}Media_Udp_Port");
        std::env::set_var(&near, "1");
        let err = Config::stray_env_prefixed(&prefix).unwrap_err();
        std::env::remove_var(&near);
        assert!(format!("{err:#}").contains(&format!("{prefix}MEDIA__Udp_Port")), "{err:#}");
    }

    #[test]
    fn embedded_defaults() {
        let c = load(None, &Overrides::default(), &[]).unwrap();
        assert_eq!(c.server.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(c.media.udp_port, 50000);
        assert_eq!(c.media.workers, Workers::Count(1));
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
        assert_eq!(c.media.workers, Workers::Count(3));
        assert_eq!(c.rooms.max_participants, 8);
        let flags = Overrides { listen: Some("127.0.0.1:9999".parse().unwrap()), udp_port: Some(41000) };
        let c = load(Some(&file), &flags, &[("MEDIA__UDP_PORT", "42000")]).unwrap();
        assert_eq!(c.media.udp_port, 41000);
        assert_eq!(c.server.listen.port(), 9999);
    }

    #[test]
    fn ice_servers_from_a_file_and_their_checks() {
        let dir = std::env::temp_dir().join(format!("parlor-cfg-ice-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.toml");
        std::fs::write(
            &good,
            "[media]\nice_servers = [{ urls = [\"turns:t.example:443?transport=tcp\"], username = \"u\", credential = \"p\" },\n  { urls = [\"stun:s.example:3478\"] }]\n",
        )
        .unwrap();
        let c = load(Some(&good), &Overrides::default(), &[]).unwrap();
        assert_eq!(c.media.ice_servers.len(), 2);
        assert_eq!(c.media.ice_servers[0].username.as_deref(), Some("u"));
        for (name, body, key) in [
            ("scheme.toml", "[media]\nice_servers = [{ urls = [\"http://x\"] }]\n", "media.ice_servers[0].urls"),
            ("empty.toml", "[media]\nice_servers = [{ urls = [] }]\n", "media.ice_servers[0].urls"),
            ("nocred.toml", "[media]\nice_servers = [{ urls = [\"turn:t:3478\"] }]\n", "media.ice_servers[0]"),
            ("typo.toml", "[media]\nice_servers = [{ urls = [\"stun:s\"], user = \"u\" }]\n", "user"),
        ] {
            let file = dir.join(name);
            std::fs::write(&file, body).unwrap();
            let e = load(Some(&file), &Overrides::default(), &[]).unwrap_err().to_string();
            assert!(e.contains(key), "{name}: {e}");
        }
    }

    #[test]
    fn bad_values_name_the_key() {
        let e = load(None, &Overrides::default(), &[("MEDIA__UDP_PORT", "lots")]).unwrap_err().to_string();
        assert!(e.contains("media.udp_port"), "{e}");
        let e = load(None, &Overrides::default(), &[("MEDIA__WORKERS", "0")]).unwrap_err().to_string();
        assert!(e.contains("media.workers"), "{e}");
        let e = load(None, &Overrides::default(), &[("ROOMS__MAX_PARTICIPANTS", "1")]).unwrap_err().to_string();
        assert!(e.contains("rooms.max_participants"), "{e}");
        let e = load(None, &Overrides::default(), &[("SESSION__DEAD_AFTER_SECONDS", "1.5")]).unwrap_err().to_string();
        assert!(e.contains("session.dead_after_seconds"), "{e}");
        let e = load(None, &Overrides::default(), &[("SESSION__PING_SECONDS", "0")]).unwrap_err().to_string();
        assert!(e.contains("session.ping_seconds"), "{e}");
        let e = load(None, &Overrides::default(), &[("AUTH__TRUSTED_PROXIES", r#"["10.0.0.0/8", "10.0.0.0/40"]"#)])
            .unwrap_err()
            .to_string();
        assert!(e.contains("auth.trusted_proxies") && e.contains("10.0.0.0/40"), "{e}");
        let c =
            load(None, &Overrides::default(), &[("AUTH__TRUSTED_PROXIES", r#"["172.17.0.1", "fd00::/8"]"#)]).unwrap();
        assert_eq!(c.auth.trusted_proxies, vec!["172.17.0.1".to_string(), "fd00::/8".to_string()]);
        let dir = std::env::temp_dir().join(format!("parlor-cfg2-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("typo.toml");
        std::fs::write(&file, "[media]\nudp_prot = 1\n").unwrap();
        let e = load(Some(&file), &Overrides::default(), &[]).unwrap_err().to_string();
        assert!(e.contains("udp_prot"), "{e}");
        let e = load(Some(&dir.join("missing.toml")), &Overrides::default(), &[]).unwrap_err().to_string();
        assert!(e.contains("does not exist"), "{e}");
    }

    #[test]
    fn workers_take_a_number_or_auto() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()).min(MAX_WORKERS);
        let c = load(None, &Overrides::default(), &[("MEDIA__WORKERS", "auto")]).unwrap();
        assert_eq!(c.media.workers, Workers::Auto);
        assert_eq!(c.media.workers.count(), cores, "one per core");
        let c = load(None, &Overrides::default(), &[("MEDIA__WORKERS", "64")]).unwrap();
        assert_eq!(c.media.workers, Workers::Count(64));
        let dir = std::env::temp_dir().join(format!("parlor-cfg-workers-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (body, want) in [("workers = \"auto\"", Workers::Auto), ("workers = 4", Workers::Count(4))] {
            let file = dir.join("w.toml");
            std::fs::write(&file, format!("[media]\n{body}\n")).unwrap();
            assert_eq!(load(Some(&file), &Overrides::default(), &[]).unwrap().media.workers, want, "{body}");
        }
        // What a bad value says, from a variable or a file.
        let expected = "media.workers: expected a number from 1 to 64 or \"auto\", got";
        for (value, got) in [("x", "\"x\""), ("0", "0"), ("65", "65"), ("-1", "-1"), ("2.5", "2.5"), ("true", "true")] {
            let e = load(None, &Overrides::default(), &[("MEDIA__WORKERS", value)]).unwrap_err().to_string();
            assert!(e.contains(&format!("{expected} {got}")), "{value}: {e}");
        }
        for (body, got) in [("workers = \"many\"", "\"many\""), ("workers = 0", "0"), ("workers = 1.5", "1.5")] {
            let file = dir.join("bad.toml");
            std::fs::write(&file, format!("[media]\n{body}\n")).unwrap();
            let e = load(Some(&file), &Overrides::default(), &[]).unwrap_err().to_string();
            assert!(e.contains(&format!("{expected} {got}")), "{body}: {e}");
        }
        // "auto" counts for the port range like a number.
        let vars = [("MEDIA__WORKERS", "auto"), ("MEDIA__UDP_PORT", "65535")];
        let loaded = load(None, &Overrides::default(), &vars);
        if cores > 1 {
            assert!(loaded.unwrap_err().to_string().contains("media.udp_port: 65535 + \"auto\""));
        } else {
            assert!(loaded.is_ok());
        }
        // Written back as it was given.
        let c = load(None, &Overrides::default(), &[("MEDIA__WORKERS", "auto")]).unwrap();
        let again = Figment::from(Serialized::defaults(&c)).extract::<Config>().unwrap();
        assert_eq!(again.media.workers, Workers::Auto);
        assert_eq!(Workers::Count(3).to_string(), "3");
    }

    #[test]
    fn cluster_drain_key() {
        let redis = ("CLUSTER__REDIS", "redis://127.0.0.1:6379/");
        let c = load(None, &Overrides::default(), &[redis]).unwrap();
        assert!(c.cluster.enabled());
        assert_eq!(c.cluster.drain_seconds, 600.0);
        let c = load(None, &Overrides::default(), &[redis, ("CLUSTER__DRAIN_SECONDS", "0")]).unwrap();
        assert_eq!(c.cluster.drain_seconds, 0.0, "0 leaves at once");
        for bad in ["-1", "nan", "inf"] {
            let e = load(None, &Overrides::default(), &[redis, ("CLUSTER__DRAIN_SECONDS", bad)]).unwrap_err();
            assert!(format!("{e:#}").contains("cluster.drain_seconds"), "{bad}: {e:#}");
        }
    }

    #[test]
    fn tls_and_auth_keys() {
        let c = load(None, &Overrides::default(), &[]).unwrap();
        assert!(!c.tls.enabled());
        assert_eq!(c.auth.mode, AuthMode::Open);
        let e = load(None, &Overrides::default(), &[("TLS__CERT", "/x.pem")]).unwrap_err().to_string();
        assert!(e.contains("tls.cert"), "{e}");
        let e = load(None, &Overrides::default(), &[("AUTH__MODE", "host_key")]).unwrap_err().to_string();
        assert!(e.contains("auth.host_keys"), "{e}");
        let e = load(None, &Overrides::default(), &[("AUTH__MODE", "closed")]).unwrap_err().to_string();
        assert!(e.contains("auth.mode"), "{e}");
        // Keys may come from the environment, as a TOML-style list.
        let vars = [("AUTH__MODE", "host_key"), ("AUTH__HOST_KEYS", r#"["0123456789abcdef", "fedcba9876543210"]"#)];
        let c = load(None, &Overrides::default(), &vars).unwrap();
        assert_eq!(c.auth.mode, AuthMode::HostKey);
        assert_eq!(c.auth.host_keys, vec!["0123456789abcdef".to_string(), "fedcba9876543210".to_string()]);
        let e = load(None, &Overrides::default(), &[("AUTH__SECRET", "short")]).unwrap_err().to_string();
        assert!(e.contains("auth.secret"), "{e}");
    }

    #[test]
    fn acme_keys() {
        let c = load(None, &Overrides::default(), &[]).unwrap();
        assert!(!c.tls.acme.enabled());
        assert_eq!(c.tls.acme.directory, "https://acme-v02.api.letsencrypt.org/directory");
        assert_eq!(c.tls.acme.challenge, AcmeChallenge::TlsAlpn01);
        let on = [("TLS__ACME__DOMAINS", r#"["parlor.example.org"]"#), ("TLS__ACME__CONTACT", "ops@example.org")];
        let c = load(None, &Overrides::default(), &on).unwrap();
        assert!(c.tls.enabled() && c.tls.acme.enabled());
        let with = |extra: (&'static str, &'static str)| {
            let mut vars = on.to_vec();
            vars.push(extra);
            load(None, &Overrides::default(), &vars).map(|_| ()).map_err(|e| e.to_string())
        };
        let e = with(("TLS__ACME__DOMAINS", r#"["*.example.org"]"#)).unwrap_err();
        assert!(e.contains("tls.acme.domains") && e.contains("*.example.org"), "{e}");
        let mut vars = on.to_vec();
        vars.extend([("TLS__CERT", "/x.pem"), ("TLS__KEY", "/x.key")]);
        let e = load(None, &Overrides::default(), &vars).unwrap_err().to_string();
        assert!(e.contains("not both"), "{e}");
        let e = with(("TLS__ACME__DIRECTORY", "letsencrypt")).unwrap_err();
        assert!(e.contains("tls.acme.directory"), "{e}");
        let e = with(("TLS__ACME__CONTACT", "nobody")).unwrap_err();
        assert!(e.contains("tls.acme.contact"), "{e}");
        let e = with(("TLS__ACME__CHALLENGE", "http-01")).unwrap_err();
        assert!(e.contains("tls.redirect_http"), "{e}");
        let e = with(("TLS__ACME__CHALLENGE", "dns-01")).unwrap_err();
        assert!(e.contains("challenge"), "{e}");
        let e = with(("TLS__ACME__RETRY_SECONDS", "0")).unwrap_err();
        assert!(e.contains("tls.acme.retry_seconds"), "{e}");
        assert!(with(("TLS__REDIRECT_HTTP", "0.0.0.0:80")).is_ok(), "ACME turns TLS on for the redirect");
        let mut vars = on.to_vec();
        vars.extend([("TLS__REDIRECT_HTTP", "127.0.0.1:0"), ("TLS__ACME__CHALLENGE", "http-01")]);
        let c = load(None, &Overrides::default(), &vars).unwrap();
        assert_eq!(c.tls.acme.challenge, AcmeChallenge::Http01);
    }

    #[test]
    fn tcp_port_same_number_off_and_flag() {
        let c = load(None, &Overrides::default(), &[("MEDIA__UDP_PORT", "40000")]).unwrap();
        assert_eq!(c.media_tcp_port(), Some(40000), "default: the UDP port's number");
        let c = load(None, &Overrides::default(), &[("MEDIA__TCP_PORT", "off")]).unwrap();
        assert_eq!(c.media_tcp_port(), None);
        let c = load(None, &Overrides::default(), &[("MEDIA__TCP_PORT", "0")]).unwrap();
        assert_eq!(c.media_tcp_port(), Some(0));
        let mut c = load(None, &Overrides::default(), &[("MEDIA__TCP_PORT", "off")]).unwrap();
        c.set_tcp_port(443).unwrap();
        assert_eq!(c.media_tcp_port(), Some(443), "the flag wins");
        c.media.workers = Workers::Count(2);
        assert!(c.set_tcp_port(65535).unwrap_err().to_string().contains("media.tcp_port"));
        let e = load(None, &Overrides::default(), &[("MEDIA__TCP_PORT", "sometimes")]).unwrap_err().to_string();
        assert!(e.contains("media.tcp_port"), "{e}");
        let vars = [("MEDIA__TCP_PORT", "65535"), ("MEDIA__WORKERS", "2")];
        let e = load(None, &Overrides::default(), &vars).unwrap_err().to_string();
        assert!(e.contains("media.tcp_port"), "{e}");
    }

    #[test]
    fn announce_detection_by_family_with_a_warning_for_private_only() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let found = vec![ip("10.0.0.5"), ip("fe80::1"), ip("2001:db8::5"), ip("127.0.0.1"), ip("169.254.1.1")];
        let (v4, warning) = detect_announce(ip("0.0.0.0"), found.clone());
        assert_eq!(v4, vec![ip("10.0.0.5")]);
        assert!(warning.unwrap().contains("media.announce_ips"));
        let (both, warning) = detect_announce(ip("::"), found);
        assert_eq!(both, vec![ip("10.0.0.5"), ip("2001:db8::5")], "dual-stack: both families");
        assert!(warning.is_none(), "a public IPv6 address is there");
        let (fallback, warning) = detect_announce(ip("0.0.0.0"), vec![ip("fe80::1")]);
        assert_eq!(fallback, vec![ip("127.0.0.1")]);
        assert!(warning.is_some());
        let (public, warning) = detect_announce(ip("0.0.0.0"), vec![ip("203.0.113.4"), ip("10.1.1.1")]);
        assert_eq!(public.len(), 2);
        assert!(warning.is_none());
        // Configured addresses (several, both families) are taken as they are.
        let vars = [("MEDIA__ANNOUNCE_IPS", r#"["198.51.100.7", "2001:db8::7"]"#), ("MEDIA__BIND_IP", "0.0.0.0")];
        let c = load(None, &Overrides::default(), &vars).unwrap();
        assert_eq!(c.announce_plan(), (vec![ip("198.51.100.7"), ip("2001:db8::7")], None));
    }
}
