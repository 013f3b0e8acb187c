//! HTTPS and WSS served by parlor itself, with certificates made in the test (rcgen, on the
//! same aws-lc-rs provider): end to end, the plain-HTTP redirect, and certificate reloads
//! without a restart (explicit, as SIGHUP does, and by watching the files).

use crate::support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use support::tls_client::connector;
use support::{server_with, wait_until_async};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::Message;

/// A fresh self-signed certificate for `localhost` and 127.0.0.1: (cert PEM, key PEM, DER).
fn make_cert() -> (String, String, CertificateDer<'static>) {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .expect("rcgen makes a certificate");
    (made.cert.pem(), made.signing_key.serialize_pem(), made.cert.der().clone())
}

struct Files {
    dir: PathBuf,
}

impl Files {
    fn new(name: &str) -> Files {
        let dir = std::env::temp_dir().join(format!("parlor-tls-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Files { dir }
    }
    fn cert(&self) -> PathBuf {
        self.dir.join("cert.pem")
    }
    fn key(&self) -> PathBuf {
        self.dir.join("key.pem")
    }
    /// Write a pair the way a renewal does: to temporary names, then renamed into place.
    fn write(&self, cert: &str, key: &str) {
        for (path, text) in [(self.key(), key), (self.cert(), cert)] {
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, text).unwrap();
            std::fs::rename(&tmp, &path).unwrap();
        }
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn path_str(p: &Path) -> String {
    p.to_str().unwrap().to_owned()
}

async fn tls_connect(
    server: &parlor::Server,
    connector: &TlsConnector,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(server.http_addr).await?;
    connector.connect(ServerName::try_from("localhost").unwrap(), tcp).await
}

/// The certificate the server presents to a new connection.
async fn served_cert(server: &parlor::Server, connector: &TlsConnector) -> Option<CertificateDer<'static>> {
    let tls = tls_connect(server, connector).await.ok()?;
    tls.get_ref().1.peer_certificates().and_then(|c| c.first()).map(|c| c.clone().into_owned())
}

/// One HTTPS request (HTTP/1.0): status and body.
async fn https(server: &parlor::Server, connector: &TlsConnector, method: &str, path: &str) -> (u16, String) {
    let mut tls = tls_connect(server, connector).await.expect("TLS handshake");
    let req =
        format!("{method} {path} HTTP/1.0\r\nHost: localhost:{}\r\nContent-Length: 0\r\n\r\n", server.http_addr.port());
    tls.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    // rustls reports a peer that closes without close_notify as an error; the bytes are in.
    let _ = tokio::time::timeout(Duration::from_secs(5), tls.read_to_end(&mut raw)).await.expect("answer in 5 s");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

async fn tls_server(files: &Files, tweak: impl FnOnce(&mut parlor::Config)) -> parlor::Server {
    let (cert, key) = (path_str(&files.cert()), path_str(&files.key()));
    server_with(move |c| {
        c.tls.cert = cert;
        c.tls.key = key;
        c.tls.watch_seconds = 0.0;
        tweak(c);
    })
    .await
}

#[tokio::test]
async fn https_and_wss_end_to_end() {
    let files = Files::new("e2e");
    let (cert, key, der) = make_cert();
    files.write(&cert, &key);
    let server = tls_server(&files, |_| {}).await;
    let trusting = connector(&[&der]);

    let (status, body) = https(&server, &trusting, "GET", "/healthz").await;
    assert_eq!((status, body.as_str()), (200, "ok"));
    // Links handed out by the API use https.
    let (status, body) = https(&server, &trusting, "POST", "/api/rooms").await;
    assert_eq!(status, 201, "{body}");
    let created: Value = serde_json::from_str(&body).unwrap();
    let code = created["code"].as_str().unwrap();
    assert_eq!(created["join_url"], format!("https://localhost:{}/r/{code}", server.http_addr.port()));

    // WSS: join the room over the TLS connection.
    let tls = tls_connect(&server, &trusting).await.unwrap();
    let url = format!("wss://localhost:{}/ws", server.http_addr.port());
    let (mut ws, _) = tokio_tungstenite::client_async(url, tls).await.expect("WebSocket over TLS");
    let join = json!({"type": "join", "room": code, "name": "Ann", "token": created["host_token"]});
    ws.send(Message::Text(join.to_string().into())).await.unwrap();
    let welcome = loop {
        let frame = tokio::time::timeout(Duration::from_secs(5), ws.next()).await.expect("a frame").unwrap().unwrap();
        if let Message::Text(t) = frame {
            break serde_json::from_str::<Value>(t.as_str()).unwrap();
        }
    };
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    assert_eq!(welcome["host"], welcome["id"]);

    // A client that does not trust the certificate fails the handshake; plain HTTP gets no page.
    let other = make_cert().2;
    assert!(tls_connect(&server, &connector(&[&other])).await.is_err());
    let mut plain = TcpStream::connect(server.http_addr).await.unwrap();
    plain.write_all(b"GET /healthz HTTP/1.0\r\n\r\n").await.unwrap();
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), plain.read_to_end(&mut raw)).await;
    assert!(!String::from_utf8_lossy(&raw).contains("200 OK"));
}

#[tokio::test]
async fn healthcheck_speaks_tls_when_the_configuration_says_so() {
    let files = Files::new("health");
    let (cert, key, _) = make_cert();
    files.write(&cert, &key);
    let server = tls_server(&files, |_| {}).await;
    let listen = server.http_addr.to_string();
    let run = |args: &[&str], env: &[(&str, String)]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_parlor"));
        cmd.arg("healthcheck").args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("run parlor healthcheck");
        (
            out.status.success(),
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
        )
    };
    let env = [
        ("PARLOR_SERVER__LISTEN", listen.clone()),
        ("PARLOR_TLS__CERT", path_str(&files.cert())),
        ("PARLOR_TLS__KEY", path_str(&files.key())),
    ];
    let (ok, out) = tokio::task::spawn_blocking(move || run(&[], &env)).await.unwrap();
    assert!(ok && out.trim() == "ok", "{out}");
    let l = listen.clone();
    let (ok, out) = tokio::task::spawn_blocking(move || run(&["--addr", &l, "--tls"], &[])).await.unwrap();
    assert!(ok, "{out}");
    // Plain HTTP to the TLS port is not healthy.
    let (ok, out) = tokio::task::spawn_blocking(move || run(&["--addr", &listen], &[])).await.unwrap();
    assert!(!ok, "{out}");
}

#[tokio::test]
async fn plain_http_redirects_to_https() {
    let files = Files::new("redirect");
    let (cert, key, _) = make_cert();
    files.write(&cert, &key);
    let server = tls_server(&files, |c| c.tls.redirect_http = "127.0.0.1:0".into()).await;
    let addr = server.redirect_addr.expect("the redirect listener is up");
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let req = format!("GET /r/abc-def?x=1 HTTP/1.0\r\nHost: localhost:{}\r\n\r\n", addr.port());
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut raw = String::new();
    tcp.read_to_string(&mut raw).await.unwrap();
    assert!(raw.starts_with("HTTP/1.0 308") || raw.starts_with("HTTP/1.1 308"), "{raw}");
    let location = format!("location: https://localhost:{}/r/abc-def?x=1", server.http_addr.port());
    assert!(raw.to_ascii_lowercase().contains(&location), "{raw}");
}

#[tokio::test]
async fn a_new_certificate_is_served_without_a_restart() {
    let files = Files::new("reload");
    let (cert_a, key_a, der_a) = make_cert();
    let (cert_b, key_b, der_b) = make_cert();
    files.write(&cert_a, &key_a);
    let server = tls_server(&files, |_| {}).await;
    let both = connector(&[&der_a, &der_b]);
    assert_eq!(served_cert(&server, &both).await.as_ref(), Some(&der_a));

    // An open connection keeps working across the reload.
    let mut open = tls_connect(&server, &both).await.unwrap();
    files.write(&cert_b, &key_b);
    server.reload_tls().expect("the new pair loads");
    assert_eq!(served_cert(&server, &both).await.as_ref(), Some(&der_b));
    open.write_all(b"GET /healthz HTTP/1.0\r\n\r\n").await.unwrap();
    let mut raw = Vec::new();
    let _ = open.read_to_end(&mut raw).await;
    assert!(String::from_utf8_lossy(&raw).starts_with("HTTP/1.0 200"), "{}", String::from_utf8_lossy(&raw));

    // A broken pair (A's certificate with B's key) is refused, and B stays in service.
    files.write(&cert_a, &key_b);
    let err = server.reload_tls().unwrap_err().to_string();
    assert!(err.contains("pair"), "{err}");
    assert_eq!(served_cert(&server, &both).await.as_ref(), Some(&der_b));
}

#[tokio::test]
async fn changed_files_are_picked_up_by_the_watch() {
    let files = Files::new("watch");
    let (cert_a, key_a, der_a) = make_cert();
    let (cert_b, key_b, der_b) = make_cert();
    files.write(&cert_a, &key_a);
    let server = tls_server(&files, |c| c.tls.watch_seconds = 0.1).await;
    let both = connector(&[&der_a, &der_b]);
    assert_eq!(served_cert(&server, &both).await.as_ref(), Some(&der_a));
    // Modification times have a granularity; make sure the new files look newer.
    let stamp = std::fs::metadata(files.cert()).unwrap().modified().unwrap();
    files.write(&cert_b, &key_b);
    let later = std::fs::File::options().write(true).open(files.cert()).unwrap();
    later.set_modified(stamp + Duration::from_secs(2)).unwrap();
    drop(later);
    let picked_up = wait_until_async(Duration::from_secs(10), || {
        let (server, both, der_b) = (&server, &both, &der_b);
        async move { served_cert(server, both).await.as_ref() == Some(der_b) }
    })
    .await;
    assert!(picked_up, "the watch did not load the new certificate within 10 s");
}

/// A child process that is killed if the test ends early.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The binary itself: `kill -HUP` makes it serve the new certificate, without a restart.
#[tokio::test]
async fn sighup_reloads_the_certificate_in_the_binary() {
    use std::io::BufRead;
    let files = Files::new("sighup");
    let (cert_a, key_a, der_a) = make_cert();
    let (cert_b, key_b, der_b) = make_cert();
    files.write(&cert_a, &key_a);
    let mut child = Child(
        std::process::Command::new(env!("CARGO_BIN_EXE_parlor"))
            .args(["serve", "--listen", "127.0.0.1:0", "--udp-port", "0"])
            .env("PARLOR_TLS__CERT", files.cert())
            .env("PARLOR_TLS__KEY", files.key())
            .env("PARLOR_TLS__WATCH_SECONDS", "0")
            .env("PARLOR_GAMES__LOG_DIR", "")
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("parlor starts"),
    );
    let pid = child.0.id().to_string();
    let mut line = String::new();
    std::io::BufReader::new(child.0.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let addr: std::net::SocketAddr = line
        .split("https://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no https address in {line:?}"));
    let both = connector(&[&der_a, &der_b]);
    let served = |both: TlsConnector| async move {
        let tcp = TcpStream::connect(addr).await.ok()?;
        let tls = both.connect(ServerName::try_from("localhost").unwrap(), tcp).await.ok()?;
        tls.get_ref().1.peer_certificates().and_then(|c| c.first()).map(|c| c.clone().into_owned())
    };
    assert_eq!(served(both.clone()).await.as_ref(), Some(&der_a));
    files.write(&cert_b, &key_b);
    let hup = std::process::Command::new("kill").args(["-HUP", &pid]).status().unwrap();
    assert!(hup.success());
    let picked_up = wait_until_async(Duration::from_secs(10), || {
        let (both, der_b) = (both.clone(), &der_b);
        async move { served(both).await.as_ref() == Some(der_b) }
    })
    .await;
    let _ = std::process::Command::new("kill").args(["-TERM", &pid]).status();
    let stopped = child.0.wait().unwrap();
    assert!(picked_up, "SIGHUP did not load the new certificate within 10 s");
    assert!(stopped.success(), "a clean exit after SIGTERM: {stopped:?}");
}
