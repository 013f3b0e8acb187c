//! Host access: the auth mode, host keys (API callers), host tokens (JWT, HS256, signed with the
//! server secret) and the per-address limit on lookups of unknown room codes.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use parlor_signaling::limit::TokenBucket;
use parlor_signaling::{ids, Access};
use rand::Rng;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::config::{AuthConfig, AuthMode};
use crate::network::{canonical, Network};

/// `iss` of every host token.
const ISSUER: &str = "parlor";
/// `sub` of every host token: what it grants.
const SUBJECT: &str = "host";
/// Clock skew tolerated on `exp`.
const LEEWAY_SECONDS: u64 = 5;
/// Above this many tracked addresses, full buckets are forgotten.
const PRUNE_ABOVE: usize = 10_000;

/// The claims of a host token.
#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    iss: String,
    sub: String,
    /// The room code the token is for.
    room: String,
    iat: u64,
    exp: u64,
}

/// A freshly minted host token.
#[derive(Debug, Clone)]
pub struct HostToken {
    /// The JWT.
    pub token: String,
    /// When it expires (unix seconds).
    pub expires_at: u64,
}

/// The server's access rules; the hub consults them as its [`Access`].
pub struct Auth {
    mode: AuthMode,
    host_keys: Vec<String>,
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: Duration,
    burst: f64,
    per_second: f64,
    lookups: Mutex<HashMap<IpAddr, TokenBucket>>,
    /// Reverse proxies besides loopback whose forwarding headers are believed.
    trusted: Vec<Network>,
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Addresses are limited per host, IPv6 per /64: one machine usually holds a whole /64.
fn limit_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut seg = v6.segments();
                seg[4..].fill(0);
                IpAddr::V6(seg.into())
            }
        },
        v4 => v4,
    }
}

impl Auth {
    /// The rules `config` sets. Without a configured secret, a random one is made (and tokens
    /// then die with the process).
    pub fn new(config: &AuthConfig) -> Auth {
        let secret: Vec<u8> = if config.secret.is_empty() {
            tracing::info!(
                "auth.secret is not set: host tokens are signed with a random secret and end with this process"
            );
            let bytes: [u8; 32] = rand::rng().random();
            bytes.to_vec()
        } else {
            config.secret.as_bytes().to_vec()
        };
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.sub = Some(SUBJECT.to_owned());
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        validation.leeway = LEEWAY_SECONDS;
        Auth {
            mode: config.mode,
            host_keys: config.host_keys.clone(),
            encoding: EncodingKey::from_secret(&secret),
            decoding: DecodingKey::from_secret(&secret),
            validation,
            ttl: Duration::from_secs_f64(config.token_ttl_seconds),
            burst: f64::from(config.lookup_burst),
            per_second: config.lookups_per_minute / 60.0,
            lookups: Mutex::new(HashMap::new()),
            // Validated with the configuration; an entry that still fails is left out.
            trusted: config.trusted_proxies.iter().filter_map(|t| Network::parse(t).ok()).collect(),
        }
    }

    /// The address the lookup limit counts for a request from `peer`, or `None` for no limit.
    ///
    /// A peer on this machine is a local tool or a reverse proxy; so is a peer in
    /// `auth.trusted_proxies`. A proxy names its client in `X-Forwarded-For` (the last entry,
    /// which it appended itself) or `X-Real-IP`, and that address counts. Without either header
    /// a local peer is not limited (benchmarks, health checks) and a trusted one counts as
    /// itself. Other peers count as themselves: their forwarding headers could be forged.
    pub fn limited_client(
        &self,
        peer: Option<std::net::SocketAddr>,
        headers: &axum::http::HeaderMap,
    ) -> Option<IpAddr> {
        let peer = canonical(peer?.ip());
        let local = peer.is_loopback();
        if !local && !self.trusted.iter().any(|n| n.contains(peer)) {
            return Some(peer);
        }
        let named = |name: &str| -> Option<IpAddr> {
            let value = headers.get_all(name).iter().next_back()?.to_str().ok()?;
            let last = value.rsplit(',').next()?.trim();
            last.trim_start_matches('[').split(']').next()?.parse().ok()
        };
        named("x-forwarded-for").or_else(|| named("x-real-ip")).or((!local).then_some(peer))
    }

    /// The auth mode.
    pub fn mode(&self) -> AuthMode {
        self.mode
    }

    /// Whether `presented` is one of the host keys. Every key is compared, each in constant
    /// time, so the answer's timing tells nothing of where a guess went wrong.
    pub fn is_host_key(&self, presented: &str) -> bool {
        // Every key is compared, whichever matches: the time says nothing about which one did.
        self.host_keys.iter().fold(false, |found, key| found | ids::same_secret(key, presented))
    }

    /// The default lifetime of host tokens.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// A host token for room `code`, valid for `ttl`.
    pub fn mint(&self, code: &str, ttl: Duration) -> Result<HostToken> {
        let iat = unix_now();
        let exp = iat + ttl.as_secs().max(1);
        let claims = Claims { iss: ISSUER.to_owned(), sub: SUBJECT.to_owned(), room: code.to_owned(), iat, exp };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .context("signing a host token")?;
        Ok(HostToken { token, expires_at: exp })
    }

    /// Whether `token` is a host token of this server for room `code`, not expired.
    pub fn verify(&self, code: &str, token: &str) -> bool {
        match jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation) {
            Ok(data) => data.claims.room == code,
            Err(e) => {
                tracing::debug!(room = code, "host token refused: {e}");
                false
            }
        }
    }

    /// Seconds until a refused address may look a code up again (at most).
    pub fn lookup_refill_seconds(&self) -> u64 {
        (1.0 / self.per_second).ceil().max(1.0) as u64
    }

    /// The per-address lookup limit (see [`Access::lookup`]).
    fn take_lookup(&self, client: Option<IpAddr>, found: bool) -> bool {
        let Some(ip) = client else { return true };
        let now = Instant::now();
        let mut buckets = self.lookups.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() > PRUNE_ABOVE {
            buckets.retain(|_, b| !b.full_by(now));
        }
        let bucket =
            buckets.entry(limit_key(ip)).or_insert_with(|| TokenBucket::full(self.per_second, self.burst, now));
        // An empty bucket refuses every lookup, found or not: otherwise the refusal itself
        // would tell which codes exist.
        if !bucket.refill(now) {
            return false;
        }
        if !found {
            bucket.spend();
        }
        true
    }
}

impl Access for Auth {
    fn rooms_on_join(&self) -> bool {
        self.mode == AuthMode::Open
    }

    fn host_token_valid(&self, code: &str, token: &str) -> bool {
        self.verify(code, token)
    }

    fn lookup(&self, client: Option<IpAddr>, found: bool) -> bool {
        self.take_lookup(client, found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> AuthConfig {
        AuthConfig {
            mode: AuthMode::HostKey,
            host_keys: vec!["key-one-0123456789".into(), "key-two-0123456789".into()],
            secret: "s".repeat(32),
            token_ttl_seconds: 60.0,
            lookup_burst: 3,
            lookups_per_minute: 0.001,
            trusted_proxies: vec!["172.17.0.1".into(), "10.8.0.0/16".into()],
        }
    }

    #[test]
    fn host_keys() {
        let auth = Auth::new(&config());
        assert!(auth.is_host_key("key-one-0123456789"));
        assert!(auth.is_host_key("key-two-0123456789"));
        assert!(!auth.is_host_key("key-two-012345678"));
        assert!(!auth.is_host_key(""));
    }

    #[test]
    fn tokens_are_bound_to_room_secret_and_time() {
        let auth = Auth::new(&config());
        let t = auth.mint("room-1", Duration::from_secs(60)).unwrap();
        assert!(auth.verify("room-1", &t.token));
        assert!(!auth.verify("room-2", &t.token), "another room");
        assert!(!auth.verify("room-1", "not.a.token"));
        let mut tampered = t.token.clone();
        tampered.pop();
        assert!(!auth.verify("room-1", &tampered));
        let other = Auth::new(&AuthConfig { secret: "t".repeat(32), ..config() });
        assert!(!other.verify("room-1", &t.token), "another secret");
        // An expired token: minted by hand with exp in the past (beyond the leeway).
        let claims = Claims {
            iss: ISSUER.into(),
            sub: SUBJECT.into(),
            room: "room-1".into(),
            iat: unix_now() - 100,
            exp: unix_now() - 60,
        };
        let old = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &auth.encoding).unwrap();
        assert!(!auth.verify("room-1", &old));
        // Another algorithm in the header (e.g. "none") is refused.
        let none = format!("eyJhbGciOiJub25lIn0.{}.", t.token.split('.').nth(1).unwrap());
        assert!(!auth.verify("room-1", &none));
    }

    #[test]
    fn random_secrets_differ() {
        let a = Auth::new(&AuthConfig { secret: String::new(), ..config() });
        let b = Auth::new(&AuthConfig { secret: String::new(), ..config() });
        let t = a.mint("r", Duration::from_secs(60)).unwrap();
        assert!(a.verify("r", &t.token));
        assert!(!b.verify("r", &t.token));
    }

    #[test]
    fn the_limited_address() {
        use axum::http::HeaderMap;
        let remote: std::net::SocketAddr = "198.51.100.4:5000".parse().unwrap();
        let local: std::net::SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let mut forwarded = HeaderMap::new();
        forwarded.insert("x-forwarded-for", "10.0.0.1, 203.0.113.9".parse().unwrap());
        let none = HeaderMap::new();
        let auth = Auth::new(&config());
        let limited_client = |peer, headers| auth.limited_client(peer, headers);
        // A remote peer is itself, whatever it claims.
        assert_eq!(limited_client(Some(remote), &forwarded), Some(remote.ip()));
        // A local proxy's last entry counts; a local peer without one is not limited.
        assert_eq!(limited_client(Some(local), &forwarded), Some("203.0.113.9".parse().unwrap()));
        assert_eq!(limited_client(Some(local), &none), None);
        let mut real = HeaderMap::new();
        real.insert("x-real-ip", "2001:db8::7".parse().unwrap());
        assert_eq!(limited_client(Some(local), &real), Some("2001:db8::7".parse().unwrap()));
        let mut junk = HeaderMap::new();
        junk.insert("x-forwarded-for", "unknown".parse().unwrap());
        assert_eq!(limited_client(Some(local), &junk), None);
        assert_eq!(limited_client(None, &forwarded), None);
        // A configured proxy (the Docker bridge, a network) is believed too, also when it
        // reaches a dual-stack listener as an IPv4-mapped address; without a header it is itself.
        for proxy in ["172.17.0.1:40000", "10.8.3.4:40000", "[::ffff:172.17.0.1]:40000"] {
            let proxy: std::net::SocketAddr = proxy.parse().unwrap();
            assert_eq!(limited_client(Some(proxy), &forwarded), Some("203.0.113.9".parse().unwrap()), "{proxy}");
            assert_eq!(limited_client(Some(proxy), &none), Some(canonical(proxy.ip())), "{proxy}");
        }
        let outside: std::net::SocketAddr = "10.9.0.1:40000".parse().unwrap();
        assert_eq!(limited_client(Some(outside), &forwarded), Some(outside.ip()));
    }

    #[test]
    fn lookups_are_limited_per_address() {
        let auth = Auth::new(&config());
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..10 {
            assert!(auth.take_lookup(Some(a), true), "found codes cost nothing");
        }
        for _ in 0..3 {
            assert!(auth.take_lookup(Some(a), false));
        }
        assert!(!auth.take_lookup(Some(a), false));
        assert!(!auth.take_lookup(Some(a), true), "an empty bucket refuses found codes too");
        assert!(auth.take_lookup(Some(b), false), "another address has its own bucket");
        // One /64 shares a bucket.
        let v6a: IpAddr = "2001:db8::1".parse().unwrap();
        let v6b: IpAddr = "2001:db8::2".parse().unwrap();
        for _ in 0..3 {
            assert!(auth.take_lookup(Some(v6a), false));
        }
        assert!(!auth.take_lookup(Some(v6b), false));
    }
}
