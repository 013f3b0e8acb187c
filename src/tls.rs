//! HTTPS and WSS served by parlor itself: rustls (on aws-lc-rs, the provider the media layer
//! already builds), a certificate that can be swapped while serving (SIGHUP, or the files
//! changing), an axum listener that hands over finished handshakes, and the optional
//! plain-HTTP listener that redirects to HTTPS.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use anyhow::{anyhow, Context, Result};
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

/// A client that has not finished its handshake by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Most TLS handshakes in progress at once.
const MAX_HANDSHAKES: usize = 256;
/// Finished handshakes waiting for the HTTP server to take them.
const ACCEPT_QUEUE: usize = 64;

/// The certificate in use; swapped whole on reload, so a handshake sees the old or the new.
#[derive(Debug)]
struct Current(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for Current {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.read().unwrap_or_else(|e| e.into_inner()).clone())
    }
}

/// The server's TLS setup: the PEM files, the certificate served now, the rustls config.
pub struct Tls {
    cert_path: PathBuf,
    key_path: PathBuf,
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
        let current = Arc::new(Current(RwLock::new(Arc::new(pair))));
        let mut config = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .context("tls: protocol versions")?
            .with_no_client_auth()
            .with_cert_resolver(current.clone());
        // The HTTP server speaks HTTP/1.1 only (WebSocket upgrades need it).
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(Tls {
            cert_path: cert_path.to_owned(),
            key_path: key_path.to_owned(),
            provider,
            current,
            config: Arc::new(config),
            stamps: Mutex::new(stamps),
        }))
    }

    /// Read the files again and serve the new certificate from the next handshake on. A
    /// pair that does not load leaves the old certificate in place.
    pub fn reload(&self) -> Result<()> {
        let stamps = (modified(&self.cert_path), modified(&self.key_path));
        let pair = read_pair(&self.provider, &self.cert_path, &self.key_path)?;
        *self.current.0.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(pair);
        *self.stamps.lock().unwrap_or_else(|e| e.into_inner()) = stamps;
        tracing::info!(cert = %self.cert_path.display(), "TLS certificate loaded");
        Ok(())
    }

    /// Reload when either file's modification time changed since the last load.
    fn reload_if_changed(&self) {
        let now = (modified(&self.cert_path), modified(&self.key_path));
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

    /// Accept TLS connections on `tcp`; the listener hands over finished handshakes.
    pub fn listener(&self, tcp: TcpListener) -> Result<TlsListener> {
        let local = tcp.local_addr()?;
        let acceptor = TlsAcceptor::from(self.config.clone());
        let (tx, rx) = mpsc::channel(ACCEPT_QUEUE);
        tokio::spawn(accept_loop(tcp, acceptor, tx));
        Ok(TlsListener { rx, local })
    }
}

/// Accept TCP connections and run each handshake in its own task, so a slow or silent client
/// holds up nobody. Ends when the [`TlsListener`] is dropped.
async fn accept_loop(tcp: TcpListener, acceptor: TlsAcceptor, tx: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>) {
    // Handshakes in progress are bounded: a flood of half-open connections waits in the kernel's
    // backlog instead of taking memory and file descriptors here.
    let handshakes = std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_HANDSHAKES));
    loop {
        let Ok(permit) = handshakes.clone().acquire_owned().await else { return };
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

/// The plain-HTTP redirect: every request goes to the same path over HTTPS on `https_port`.
pub fn redirect_router(https_port: u16) -> axum::Router {
    axum::Router::new()
        .fallback(move |headers: HeaderMap, uri: Uri| async move { redirect(https_port, &headers, &uri) })
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
    fn redirects_keep_host_and_path() {
        let (s, l) = location(443, "example.org:80", "/r/abc?x=1");
        assert_eq!(s, StatusCode::PERMANENT_REDIRECT);
        assert_eq!(l.as_deref(), Some("https://example.org/r/abc?x=1"));
        assert_eq!(location(8443, "example.org", "/").1.as_deref(), Some("https://example.org:8443/"));
        assert_eq!(location(8443, "[::1]:8080", "/a").1.as_deref(), Some("https://[::1]:8443/a"));
        assert_eq!(location(443, "bad host/", "/").0, StatusCode::BAD_REQUEST);
    }
}
