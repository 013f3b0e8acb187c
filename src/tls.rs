//! HTTPS and WSS served by parlor itself: rustls (on aws-lc-rs, the provider the media layer
//! already builds), a certificate that can be swapped while serving (SIGHUP, or the files
//! changing), an axum listener that hands over finished handshakes, and the optional
//! plain-HTTP listener that redirects to HTTPS.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use anyhow::{anyhow, Context, Result};
use axum::extract::Path as UrlPath;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::rustls::crypto::{aws_lc_rs, CryptoProvider};
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::challenges::{Challenges, ACME_TLS_ALPN};

/// A client that has not finished its handshake by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Most TLS handshakes in progress at once.
const MAX_HANDSHAKES: usize = 256;
/// Finished handshakes waiting for the HTTP server to take them.
const ACCEPT_QUEUE: usize = 64;

/// The certificate in use; swapped whole on reload, so a handshake sees the old or the new.
/// With ACME it also answers the CA's TLS-ALPN-01 handshakes with the challenge certificate,
/// and has no certificate at all until the first one is issued.
#[derive(Debug)]
struct Current {
    served: RwLock<Option<Arc<CertifiedKey>>>,
    challenges: Option<Arc<Challenges>>,
}

impl ResolvesServerCert for Current {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        if let Some(challenges) = &self.challenges {
            // RFC 8737 §3: the validator offers acme-tls/1 as its only protocol.
            let mut alpn = hello.alpn().into_iter().flatten();
            if alpn.next() == Some(ACME_TLS_ALPN) && alpn.next().is_none() {
                return hello.server_name().and_then(|name| challenges.alpn_cert(name));
            }
        }
        self.served.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// The server's TLS setup: the PEM files, the certificate served now, the rustls config.
pub struct Tls {
    /// The PEM chain and key (tls.cert, tls.key); none with ACME, which sets the certificate itself.
    files: Option<(PathBuf, PathBuf)>,
    provider: Arc<CryptoProvider>,
    current: Arc<Current>,
    config: Arc<ServerConfig>,
    /// The files' modification times when last loaded, to notice a change.
    stamps: Mutex<(Option<SystemTime>, Option<SystemTime>)>,
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Read a chain and its key, and check that they belong together.
fn read_pair(provider: &CryptoProvider, cert_path: &Path, key_path: &Path) -> Result<CertifiedKey> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_path)
        .with_context(|| format!("tls.cert: cannot read {}", cert_path.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("tls.cert: {} is not a PEM certificate chain", cert_path.display()))?;
    if chain.is_empty() {
        return Err(anyhow!("tls.cert: no certificate in {}", cert_path.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key_path)
        .with_context(|| format!("tls.key: no PEM private key in {}", key_path.display()))?;
    CertifiedKey::from_der(chain, key, provider)
        .map_err(|e| anyhow!("tls: {} and {} do not make a usable pair: {e}", cert_path.display(), key_path.display()))
}

impl Tls {
    /// Load the certificate chain and key (PEM) and build the rustls configuration.
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Arc<Tls>> {
        let provider = Arc::new(aws_lc_rs::default_provider());
        let stamps = (modified(cert_path), modified(key_path));
        let pair = read_pair(&provider, cert_path, key_path)?;
        let files = Some((cert_path.to_owned(), key_path.to_owned()));
        Tls::build(provider, files, Some(Arc::new(pair)), None, stamps)
    }

    /// TLS whose certificate comes from ACME ([`Tls::set`]): no certificate until the first is
    /// issued (handshakes fail meanwhile), and TLS-ALPN-01 answered from `challenges`.
    pub fn for_acme(challenges: Arc<Challenges>) -> Result<Arc<Tls>> {
        Tls::build(Arc::new(aws_lc_rs::default_provider()), None, None, Some(challenges), (None, None))
    }

    fn build(
        provider: Arc<CryptoProvider>,
        files: Option<(PathBuf, PathBuf)>,
        served: Option<Arc<CertifiedKey>>,
        challenges: Option<Arc<Challenges>>,
        stamps: (Option<SystemTime>, Option<SystemTime>),
    ) -> Result<Arc<Tls>> {
        let acme = challenges.is_some();
        let current = Arc::new(Current { served: RwLock::new(served), challenges });
        let mut config = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .context("tls: protocol versions")?
            .with_no_client_auth()
            .with_cert_resolver(current.clone());
        // The HTTP server speaks HTTP/1.1 only (WebSocket upgrades need it); acme-tls/1 only
        // for the CA's validation handshakes, which carry no HTTP.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        if acme {
            config.alpn_protocols.push(ACME_TLS_ALPN.to_vec());
        }
        Ok(Arc::new(Tls { files, provider, current, config: Arc::new(config), stamps: Mutex::new(stamps) }))
    }

    /// The crypto provider certificates are loaded with.
    pub fn provider(&self) -> &Arc<CryptoProvider> {
        &self.provider
    }

    /// Serve `pair` from the next handshake on; open connections keep theirs (the same swap as
    /// [`Tls::reload`]).
    pub fn set(&self, pair: CertifiedKey) {
        *self.current.served.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(pair));
    }

    /// The certificate served now, if any.
    pub fn served(&self) -> Option<Arc<CertifiedKey>> {
        self.current.served.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Read the files again and serve the new certificate from the next handshake on. A
    /// pair that does not load leaves the old certificate in place. Without files (ACME) there
    /// is nothing to read: the ACME task swaps certificates itself.
    pub fn reload(&self) -> Result<()> {
        let Some((cert_path, key_path)) = &self.files else { return Ok(()) };
        let stamps = (modified(cert_path), modified(key_path));
        let pair = read_pair(&self.provider, cert_path, key_path)?;
        self.set(pair);
        *self.stamps.lock().unwrap_or_else(|e| e.into_inner()) = stamps;
        tracing::info!(cert = %cert_path.display(), "TLS certificate loaded");
        Ok(())
    }

    /// Reload when either file's modification time changed since the last load.
    fn reload_if_changed(&self) {
        let Some((cert_path, key_path)) = &self.files else { return };
        let now = (modified(cert_path), modified(key_path));
        if *self.stamps.lock().unwrap_or_else(|e| e.into_inner()) == now {
            return;
        }
        // A renewal writes two files; a half-written pair fails to load and is tried again at
        // the next check (the stamps stay old).
        if let Err(e) = self.reload() {
            tracing::warn!("TLS files changed but do not load (keeping the old certificate): {e:#}");
        }
    }

    /// Check the files every `every` until the returned task is aborted.
    pub fn watch(self: &Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        let tls = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                let tls = tls.clone();
                // File reads are blocking; keep them off the async workers.
                let _ = tokio::task::spawn_blocking(move || tls.reload_if_changed()).await;
            }
        })
    }

    /// Accept TLS connections on `tcp`; the listener hands over finished handshakes. The task
    /// returned owns `tcp` and ends (closing it) once the listener is dropped.
    pub fn listener(&self, tcp: TcpListener) -> Result<(TlsListener, tokio::task::JoinHandle<()>)> {
        let local = tcp.local_addr()?;
        let acceptor = TlsAcceptor::from(self.config.clone());
        let (tx, rx) = mpsc::channel(ACCEPT_QUEUE);
        let accepting = tokio::spawn(accept_loop(tcp, acceptor, tx));
        Ok((TlsListener { rx, local }, accepting))
    }
}

/// What a certificate says about itself: the names it covers and when it is valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// The DNS names of its subjectAltName extension.
    pub names: Vec<String>,
    pub not_before: SystemTime,
    pub not_after: SystemTime,
    /// The serial number, hex: tells one issuance from the next.
    pub serial: String,
}

impl CertInfo {
    /// Whether it covers every name in `domains` (case-insensitively).
    pub fn covers(&self, domains: &[String]) -> bool {
        domains.iter().all(|d| self.names.iter().any(|n| n.eq_ignore_ascii_case(d)))
    }

    /// Two thirds into its lifetime, when a renewal is due.
    pub fn renew_at(&self) -> SystemTime {
        let life = self.not_after.duration_since(self.not_before).unwrap_or_default();
        self.not_before + life * 2 / 3
    }

    /// The expiry as a UTC date and time.
    pub fn expires(&self) -> String {
        utc(self.not_after)
    }
}

/// Read the names, validity and serial of a DER certificate.
pub fn cert_info(der: &[u8]) -> Result<CertInfo> {
    use x509_parser::extensions::GeneralName;
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| anyhow!("not an X.509 certificate: {e}"))?;
    let time = |t: x509_parser::time::ASN1Time| {
        let secs = t.timestamp();
        match u64::try_from(secs) {
            Ok(s) => SystemTime::UNIX_EPOCH + Duration::from_secs(s),
            Err(_) => SystemTime::UNIX_EPOCH,
        }
    };
    let names = match cert.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .filter_map(|n| match n {
                GeneralName::DNSName(name) => Some(name.to_string()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    Ok(CertInfo {
        names,
        not_before: time(cert.validity().not_before),
        not_after: time(cert.validity().not_after),
        serial: cert.raw_serial_as_string(),
    })
}

/// `t` as "YYYY-MM-DD HH:MM:SS UTC" (the proleptic Gregorian calendar, from days since 1970).
pub fn utc(t: SystemTime) -> String {
    let secs = t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days, for days >= 0.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC", rest / 3600, rest / 60 % 60, rest % 60)
}

/// Accept TCP connections and run each handshake in its own task, so a slow or silent client
/// holds up nobody. Ends when the [`TlsListener`] is dropped.
async fn accept_loop(tcp: TcpListener, acceptor: TlsAcceptor, tx: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>) {
    // Handshakes in progress are bounded: a flood of half-open connections waits in the kernel's
    // backlog instead of taking memory and file descriptors here.
    let handshakes = std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_HANDSHAKES));
    loop {
        // Waiting for a free handshake slot must not keep the socket open past the listener.
        let permit = tokio::select! {
            _ = tx.closed() => return,
            permit = handshakes.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
        };
        let (stream, peer) = tokio::select! {
            _ = tx.closed() => return,
            accepted = tcp.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little instead of spinning.
                    tracing::warn!("TLS listener accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let acceptor = acceptor.clone();
        let tx = tx.clone();
        tokio::spawn(async move {
            let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await;
            drop(permit);
            match handshake {
                // A CA's TLS-ALPN-01 validation: the handshake was the whole answer.
                Ok(Ok(tls)) if tls.get_ref().1.alpn_protocol() == Some(ACME_TLS_ALPN) => {
                    tracing::debug!(%peer, "answered a TLS-ALPN-01 validation");
                }
                Ok(Ok(tls)) => {
                    let _ = tx.send((tls, peer)).await;
                }
                Ok(Err(e)) => tracing::debug!(%peer, "TLS handshake failed: {e}"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        });
    }
}

/// Finished TLS connections, as axum's listener.
pub struct TlsListener {
    rx: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(conn) => conn,
            // The accept task only ends when this listener is dropped, so this never comes.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// The plain-HTTP redirect: every request goes to the same path over HTTPS on `https_port`,
/// except the ACME CA's HTTP-01 requests when `challenges` is given.
pub fn redirect_router(https_port: u16, challenges: Option<Arc<Challenges>>) -> axum::Router {
    let router = axum::Router::new();
    let router = match challenges {
        Some(challenges) => router.route(
            "/.well-known/acme-challenge/{token}",
            axum::routing::get(move |UrlPath(token): UrlPath<String>| async move { http_01(&challenges, &token) }),
        ),
        None => router,
    };
    router.fallback(move |headers: HeaderMap, uri: Uri| async move { redirect(https_port, &headers, &uri) })
}

/// RFC 8555 §8.3: the key authorization for a token being validated, as text.
fn http_01(challenges: &Challenges, token: &str) -> Response {
    match challenges.http_answer(token) {
        Some(answer) => ([(header::CONTENT_TYPE, "application/octet-stream")], answer).into_response(),
        None => (StatusCode::NOT_FOUND, "no such ACME challenge").into_response(),
    }
}

fn redirect(https_port: u16, headers: &HeaderMap, uri: &Uri) -> Response {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    // The host name without the plain listener's port; brackets kept for IPv6.
    let name = match host.rfind(':') {
        Some(i) if !host[i..].contains(']') => &host[..i],
        _ => host,
    };
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b".-[]:".contains(&b)) {
        return (StatusCode::BAD_REQUEST, "this address serves HTTPS only; give a Host header").into_response();
    }
    let port = if https_port == 443 { String::new() } else { format!(":{https_port}") };
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let location = format!("https://{name}{port}{path}");
    (StatusCode::PERMANENT_REDIRECT, [(header::LOCATION, location)]).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn location(port: u16, host: &str, path: &str) -> (StatusCode, Option<String>) {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, host.parse().unwrap());
        let r = redirect(port, &headers, &path.parse().unwrap());
        (r.status(), r.headers().get(header::LOCATION).map(|v| v.to_str().unwrap().to_owned()))
    }

    #[test]
    fn utc_dates() {
        let at = |s: u64| utc(SystemTime::UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(at(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(at(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(at(1_796_317_199), "2026-12-03 16:59:59 UTC");
    }

    #[test]
    fn cert_info_names_validity_and_renewal_point() {
        let mut params = rcgen::CertificateParams::new(vec!["a.example".into(), "B.example".into()]).unwrap();
        params.not_before = rcgen::date_time_ymd(2026, 1, 1);
        params.not_after = rcgen::date_time_ymd(2026, 4, 1);
        let key = rcgen::KeyPair::generate().unwrap();
        let info = cert_info(params.self_signed(&key).unwrap().der()).unwrap();
        assert_eq!(info.names, vec!["a.example".to_string(), "B.example".to_string()]);
        assert!(info.covers(&["b.example".into()]) && !info.covers(&["c.example".into()]));
        assert_eq!(info.expires(), "2026-04-01 00:00:00 UTC");
        // 90 days: renewal due after 60.
        assert_eq!(utc(info.renew_at()), "2026-03-02 00:00:00 UTC");
    }

    #[test]
    fn redirects_keep_host_and_path() {
        let (s, l) = location(443, "example.org:80", "/r/abc?x=1");
        assert_eq!(s, StatusCode::PERMANENT_REDIRECT);
        assert_eq!(l.as_deref(), Some("https://example.org/r/abc?x=1"));
        assert_eq!(location(8443, "example.org", "/").1.as_deref(), Some("https://example.org:8443/"));
        assert_eq!(location(8443, "[::1]:8080", "/a").1.as_deref(), Some("https://[::1]:8443/a"));
        assert_eq!(location(443, "bad host/", "/").0, StatusCode::BAD_REQUEST);
    }
}
