//! `[tls.acme]` against a real ACME server: Debian's `pebble`, started per test, inside a
//! network namespace made for the test that has nothing but a loopback interface (so nothing
//! can reach any other address). A DNS responder in the test answers every name with
//! 127.0.0.1, where parlor listens on the ports pebble validates (its `httpPort`, `tlsPort`).
//!
//! Each case re-runs this test binary inside its namespace (`ip netns exec`), which needs root
//! and `ip` (iproute2) and the `pebble` package: without them the test fails, it does not skip.

#[path = "support/tls_client.rs"]
mod tls_client;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use futures_util::{SinkExt, StreamExt};
use parlor::config::{AcmeChallenge, Overrides};
use parlor::tls::{cert_info, CertInfo};
use parlor::Config;
use serde_json::{json, Value};
use tls_client::connector;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::Message;

/// The name parlor gets a certificate for; the test's DNS answers it (and any name) with 127.0.0.1.
const DOMAIN: &str = "parlor.test";
/// Set in the re-run inside the namespace: the case to run there.
const INSIDE: &str = "PARLOR_ACME_TEST_INSIDE_NETNS";
const PEBBLE: &str = "/usr/bin/pebble";

// ---------------------------------------------------------------------------------------------
// The namespace

/// Deletes the namespace when the case ends, whatever the outcome.
struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "delete", &self.0]).status();
    }
}

/// Run `case` of this binary inside a new network namespace with only `lo` up; inside the
/// namespace (the re-run), run `body`.
fn in_netns<F: std::future::Future<Output = ()>>(case: &str, body: impl FnOnce() -> F) {
    if std::env::var(INSIDE).as_deref() == Ok(case) {
        if let Ok(filter) = std::env::var("PARLOR_TEST_LOG") {
            let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
        }
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        return runtime.block_on(body());
    }
    assert!(
        Path::new(PEBBLE).exists(),
        "this test needs Debian's pebble ACME test server at {PEBBLE} (apt-get install pebble; .ci/run does)"
    );
    let name = format!("parlor-acme-{}-{case}", std::process::id());
    let add = Command::new("ip").args(["netns", "add", &name]).output();
    match add {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "this test makes a network namespace and needs root (CI runs as root): `ip netns add {name}` failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => panic!("this test needs `ip` (iproute2) to make a network namespace: {e}"),
    }
    let ns = Netns(name);
    let up = Command::new("ip").args(["netns", "exec", &ns.0, "ip", "link", "set", "lo", "up"]).status().unwrap();
    assert!(up.success(), "cannot bring lo up in {}", ns.0);
    let exe = std::env::current_exe().unwrap();
    let out = Command::new("ip")
        .args(["netns", "exec", &ns.0])
        .arg(exe)
        .args([case, "--exact", "--nocapture", "--test-threads=1"])
        .env(INSIDE, case)
        .output()
        .expect("re-run the test inside the namespace");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    println!("{text}");
    assert!(out.status.success(), "case {case} failed inside network namespace {}:\n{text}", ns.0);
    // The filter must have matched exactly this case (a typo would run nothing and pass).
    assert!(text.contains("1 passed"), "case {case} did not run inside the namespace:\n{text}");
}

// ---------------------------------------------------------------------------------------------
// Test DNS: every A question answered with 127.0.0.1, everything else with no records.

async fn dns_responder() -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = [0u8; 512];
        loop {
            let Ok((n, from)) = socket.recv_from(&mut buf).await else { return };
            if let Some(answer) = dns_answer(&buf[..n]) {
                let _ = socket.send_to(&answer, from).await;
            }
        }
    });
    addr
}

/// The response to one query (RFC 1035 §4.1): the question echoed, an A record for type A.
fn dns_answer(query: &[u8]) -> Option<Vec<u8>> {
    if query.len() < 12 || u16::from_be_bytes([query[4], query[5]]) != 1 {
        return None;
    }
    // The question's name: labels up to the zero byte, then type and class.
    let mut i = 12;
    while *query.get(i)? != 0 {
        i += 1 + usize::from(query[i]);
    }
    let end = i + 5;
    let qtype = u16::from_be_bytes([*query.get(i + 1)?, *query.get(i + 2)?]);
    let mut out = query[..end.min(query.len())].to_vec();
    out[2] = 0x84 | (query[2] & 0x01); // response, authoritative, RD copied
    out[3] = 0; // NOERROR
    out[6..12].copy_from_slice(&[0, u8::from(qtype == 1), 0, 0, 0, 0]);
    if qtype == 1 {
        out.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1]);
    }
    Some(out)
}

// ---------------------------------------------------------------------------------------------
// pebble

/// A port for a listener of this case. Each case runs alone in a namespace of its own, so ports
/// handed out in turn from below the ephemeral range (32768 up) are free and stay free: a port
/// the kernel picked for us (bind to 0, then close) could meanwhile become the source port of
/// one of pebble's outgoing connections, and parlor's bind then fails (seen in CI).
fn free_port() -> u16 {
    static NEXT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(20_000);
    let port = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    assert!(std::env::var_os(INSIDE).is_some(), "ports are handed out inside a case's namespace only");
    port
}

/// The TLS certificate of pebble's own HTTPS (its directory): a root made here, and a
/// certificate for 127.0.0.1 signed by it. Debian's package ships none.
struct DirectoryTls {
    root_pem: PathBuf,
    cert_pem: PathBuf,
    key_pem: PathBuf,
    root: CertificateDer<'static>,
}

fn directory_tls(dir: &Path) -> DirectoryTls {
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name.push(rcgen::DnType::CommonName, "test root for pebble's directory");
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).unwrap();
    let paths = DirectoryTls {
        root_pem: dir.join("directory-root.pem"),
        cert_pem: dir.join("directory-cert.pem"),
        key_pem: dir.join("directory-key.pem"),
        root: ca_cert.der().clone(),
    };
    std::fs::write(&paths.root_pem, ca_cert.pem()).unwrap();
    std::fs::write(&paths.cert_pem, leaf_cert.pem()).unwrap();
    std::fs::write(&paths.key_pem, leaf_key.serialize_pem()).unwrap();
    paths
}

/// One pebble process, stopped (by PID) when dropped.
struct Pebble {
    child: Child,
    port: u16,
    management: u16,
}

impl Drop for Pebble {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where pebble validates and how long its certificates last.
struct PebbleSetup<'a> {
    dir: &'a Path,
    tls: &'a DirectoryTls,
    dns: SocketAddr,
    http_port: u16,
    tls_port: u16,
    validity_seconds: u64,
    port: u16,
    management: u16,
}

async fn start_pebble(s: &PebbleSetup<'_>) -> Pebble {
    let config = json!({"pebble": {
        "listenAddress": format!("127.0.0.1:{}", s.port),
        "managementListenAddress": format!("127.0.0.1:{}", s.management),
        "certificate": s.tls.cert_pem,
        "privateKey": s.tls.key_pem,
        "httpPort": s.http_port,
        "tlsPort": s.tls_port,
        "ocspResponderURL": "",
        "externalAccountBindingRequired": false,
        "certificateValidityPeriod": s.validity_seconds,
    }});
    let file = s.dir.join("pebble.json");
    std::fs::write(&file, config.to_string()).unwrap();
    let log = std::fs::File::create(s.dir.join("pebble.log")).unwrap();
    let child = Command::new(PEBBLE)
        .arg("-config")
        .arg(&file)
        .args(["-dnsserver", &s.dns.to_string()])
        // No random sleeps before validating, no rejected nonces, every order validated anew.
        .env("PEBBLE_VA_NOSLEEP", "1")
        .env("PEBBLE_WFE_NONCEREJECT", "0")
        .env("PEBBLE_AUTHZREUSE", "0")
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .stdin(Stdio::null())
        .spawn()
        .expect("start pebble");
    let pebble = Pebble { child, port: s.port, management: s.management };
    let trusting = connector(&[&s.tls.root]);
    let up = poll(Duration::from_secs(15), || async {
        https_get(&trusting, "127.0.0.1", pebble.port, "/dir").await.ok().filter(|(status, _)| *status == 200)
    })
    .await;
    assert!(up.is_some(), "pebble did not come up:\n{}", std::fs::read_to_string(s.dir.join("pebble.log")).unwrap());
    pebble
}

impl Pebble {
    fn directory(&self) -> String {
        format!("https://127.0.0.1:{}/dir", self.port)
    }

    /// The root pebble issues from (it makes a new one at each start).
    async fn issuing_root(&self, tls: &DirectoryTls) -> CertificateDer<'static> {
        let (status, body) =
            https_get(&connector(&[&tls.root]), "127.0.0.1", self.management, "/roots/0").await.expect("pebble root");
        assert_eq!(status, 200, "{body}");
        CertificateDer::from_pem_slice(body.as_bytes()).expect("PEM root").into_owned()
    }
}

// ---------------------------------------------------------------------------------------------
// Clients

async fn tls_to(
    connector: &TlsConnector,
    name: &str,
    port: u16,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let tcp = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).await?;
    connector.connect(ServerName::try_from(name.to_owned()).unwrap(), tcp).await
}

/// One HTTPS request (HTTP/1.0): status and body.
async fn https_request(
    connector: &TlsConnector,
    name: &str,
    port: u16,
    method: &str,
    path: &str,
) -> std::io::Result<(u16, String)> {
    let mut tls = tls_to(connector, name, port).await?;
    let req = format!("{method} {path} HTTP/1.0\r\nHost: {name}\r\nContent-Length: 0\r\n\r\n");
    tls.write_all(req.as_bytes()).await?;
    let mut raw = Vec::new();
    // A peer closing without close_notify is reported as an error; the bytes are in.
    let _ = tokio::time::timeout(Duration::from_secs(5), tls.read_to_end(&mut raw)).await;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    Ok((status, text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default()))
}

async fn https_get(connector: &TlsConnector, name: &str, port: u16, path: &str) -> std::io::Result<(u16, String)> {
    https_request(connector, name, port, "GET", path).await
}

/// The certificate parlor serves for DOMAIN, if a client trusting `root` accepts it.
async fn served(root: &CertificateDer<'static>, port: u16) -> Option<CertInfo> {
    let tls = tls_to(&connector(&[root]), DOMAIN, port).await.ok()?;
    let leaf = tls.get_ref().1.peer_certificates()?.first()?.clone();
    Some(cert_info(&leaf).unwrap())
}

/// Call `f` every 100 ms until it gives Some, for at most `limit`.
async fn poll<T, F: std::future::Future<Output = Option<T>>>(limit: Duration, mut f: impl FnMut() -> F) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f().await {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<TcpStream>>;

/// Create a room over HTTPS and join it over WSS, both verified against `root`; the socket
/// after its `welcome`.
async fn wss_join(root: &CertificateDer<'static>, port: u16) -> Ws {
    let trusting = connector(&[root]);
    let (status, body) = https_request(&trusting, DOMAIN, port, "POST", "/api/rooms").await.unwrap();
    assert_eq!(status, 201, "{body}");
    let created: Value = serde_json::from_str(&body).unwrap();
    let tls = tls_to(&trusting, DOMAIN, port).await.expect("WSS handshake verified against pebble's root");
    let (mut ws, _) = tokio_tungstenite::client_async(format!("wss://{DOMAIN}:{port}/ws"), tls).await.unwrap();
    let join = json!({"type": "join", "room": created["code"], "name": "Ann", "token": created["host_token"]});
    ws.send(Message::Text(join.to_string().into())).await.unwrap();
    let welcome = next_json(&mut ws).await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    ws
}

async fn next_json(ws: &mut Ws) -> Value {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(5), ws.next()).await.expect("a frame").unwrap().unwrap();
        if let Message::Text(t) = frame {
            return serde_json::from_str(t.as_str()).unwrap();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// parlor

struct Case {
    dir: PathBuf,
    tls: DirectoryTls,
    dns: SocketAddr,
    https_port: u16,
    http_port: u16,
}

impl Case {
    async fn new(name: &str) -> Case {
        let dir = std::env::temp_dir().join(format!("parlor-acme-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let tls = directory_tls(&dir);
        Case { tls, dns: dns_responder().await, https_port: free_port(), http_port: free_port(), dir }
    }

    fn pebble_setup(&self, validity_seconds: u64) -> PebbleSetup<'_> {
        PebbleSetup {
            dir: &self.dir,
            tls: &self.tls,
            dns: self.dns,
            http_port: self.http_port,
            tls_port: self.https_port,
            validity_seconds,
            port: free_port(),
            management: free_port(),
        }
    }

    fn cache(&self) -> PathBuf {
        self.dir.join("cache")
    }

    /// parlor's configuration: HTTPS on the port pebble validates TLS-ALPN-01 on.
    fn config(&self, directory: &str, challenge: AcmeChallenge) -> Config {
        let overrides =
            Overrides { listen: Some(SocketAddr::from((Ipv4Addr::LOCALHOST, self.https_port))), udp_port: Some(0) };
        let env = figment::providers::Env::prefixed("PARLOR_TEST_UNSET_PREFIX_");
        let mut c = Config::load(None, &overrides, env).expect("default config");
        c.games.log_dir = String::new();
        c.tls.acme.domains = vec![DOMAIN.to_owned()];
        c.tls.acme.contact = "ops@parlor.test".to_owned();
        c.tls.acme.directory = directory.to_owned();
        c.tls.acme.cache_dir = self.cache().to_str().unwrap().to_owned();
        c.tls.acme.ca_root = self.tls.root_pem.to_str().unwrap().to_owned();
        c.tls.acme.challenge = challenge;
        c.tls.acme.retry_seconds = 0.5;
        if challenge == AcmeChallenge::Http01 {
            c.tls.redirect_http = format!("127.0.0.1:{}", self.http_port);
        }
        c
    }
}

impl Drop for Case {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Wait (up to 30 s) until parlor serves a certificate for DOMAIN that verifies against `root`.
async fn issued(root: &CertificateDer<'static>, port: u16) -> CertInfo {
    poll(Duration::from_secs(30), || served(root, port)).await.expect("a certificate from pebble within 30 s")
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}

// ---------------------------------------------------------------------------------------------
// The cases

#[test]
fn tls_alpn_01_issues_and_a_wss_join_verifies() {
    in_netns("tls_alpn_01_issues_and_a_wss_join_verifies", || async {
        let case = Case::new("alpn").await;
        let pebble = start_pebble(&case.pebble_setup(3600)).await;
        let config = case.config(&pebble.directory(), AcmeChallenge::TlsAlpn01);
        let server = parlor::start(&config).await.expect("parlor starts");
        let root = pebble.issuing_root(&case.tls).await;
        let cert = issued(&root, server.http_addr.port()).await;
        assert_eq!(cert.names, vec![DOMAIN.to_string()]);
        let _ws = wss_join(&root, server.http_addr.port()).await;

        // The cache: account key, chain and key, owner-only.
        let sub = std::fs::read_dir(case.cache()).unwrap().next().unwrap().unwrap().path();
        for file in ["account.json", "cert.pem", "key.pem"] {
            assert_eq!(mode(&sub.join(file)), 0o600, "{file}");
        }
        assert_eq!(mode(&sub), 0o700);

        // `parlor check` names the served certificate and its expiry.
        let mut out = Vec::new();
        let _ = parlor::check::run(&config, Duration::from_millis(300), &mut out).await.unwrap();
        let out = String::from_utf8(out).unwrap();
        println!("{out}");
        assert!(out.contains(DOMAIN) && out.contains(&cert.expires()), "{out}");

        // A restart with pebble gone: the cached certificate is served, nothing asked of the CA.
        server.shutdown(Duration::from_secs(2)).await;
        drop(pebble);
        let server = parlor::start(&config).await.expect("parlor starts from the cache without the CA");
        let again = served(&root, server.http_addr.port()).await.expect("the cached certificate is served at once");
        assert_eq!(again.serial, cert.serial);
        server.shutdown(Duration::from_secs(2)).await;

        // With nothing serving, `parlor check` says so and shows the cached certificate.
        let mut out = Vec::new();
        let _ = parlor::check::run(&config, Duration::from_millis(300), &mut out).await.unwrap();
        let out = String::from_utf8(out).unwrap();
        println!("{out}");
        assert!(out.contains("none served") && out.contains("cert.pem"), "{out}");
        assert!(out.contains(DOMAIN) && out.contains(&cert.expires()), "{out}");
    });
}

#[test]
fn http_01_issues_on_the_redirect_listener() {
    in_netns("http_01_issues_on_the_redirect_listener", || async {
        let case = Case::new("http").await;
        let pebble = start_pebble(&case.pebble_setup(3600)).await;
        let config = case.config(&pebble.directory(), AcmeChallenge::Http01);
        let server = parlor::start(&config).await.expect("parlor starts");
        assert_eq!(server.redirect_addr.map(|a| a.port()), Some(case.http_port));
        let root = pebble.issuing_root(&case.tls).await;
        let cert = issued(&root, server.http_addr.port()).await;
        assert_eq!(cert.names, vec![DOMAIN.to_string()]);
        let _ws = wss_join(&root, server.http_addr.port()).await;

        // Other paths still redirect; unknown challenge tokens are 404.
        let mut plain = TcpStream::connect((Ipv4Addr::LOCALHOST, case.http_port)).await.unwrap();
        let ask = |path: &str| format!("GET {path} HTTP/1.0\r\nHost: {DOMAIN}\r\n\r\n");
        plain.write_all(ask("/r/abc").as_bytes()).await.unwrap();
        let mut raw = String::new();
        plain.read_to_string(&mut raw).await.unwrap();
        assert!(raw.starts_with("HTTP/1.0 308") || raw.starts_with("HTTP/1.1 308"), "{raw}");
        let mut plain = TcpStream::connect((Ipv4Addr::LOCALHOST, case.http_port)).await.unwrap();
        plain.write_all(ask("/.well-known/acme-challenge/nope").as_bytes()).await.unwrap();
        let mut raw = String::new();
        plain.read_to_string(&mut raw).await.unwrap();
        assert!(raw.contains(" 404 "), "{raw}");
        server.shutdown(Duration::from_secs(2)).await;
    });
}

#[test]
fn renewal_swaps_the_certificate_under_an_open_connection() {
    in_netns("renewal_swaps_the_certificate_under_an_open_connection", || async {
        let case = Case::new("renew").await;
        // 9 s certificates: renewed 6 s after they start.
        let pebble = start_pebble(&case.pebble_setup(9)).await;
        let config = case.config(&pebble.directory(), AcmeChallenge::TlsAlpn01);
        let server = parlor::start(&config).await.expect("parlor starts");
        let port = server.http_addr.port();
        let root = pebble.issuing_root(&case.tls).await;
        let first = issued(&root, port).await;
        let ws = wss_join(&root, port).await;
        // Keep reading (the server's pings need answers) while waiting for the renewal.
        let (mut sink, mut stream) = ws.split();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(Ok(frame)) = stream.next().await {
                if let Message::Text(t) = frame {
                    let _ = tx.send(serde_json::from_str::<Value>(t.as_str()).unwrap());
                }
            }
        });
        let second =
            poll(Duration::from_secs(30), || async { served(&root, port).await.filter(|c| c.serial != first.serial) })
                .await
                .expect("renewed within 30 s");
        assert!(SystemTime::now() >= first.renew_at(), "renewed before two thirds of the lifetime");
        assert_eq!(second.names, vec![DOMAIN.to_string()]);
        assert!(second.not_after > first.not_after);

        // The connection opened under the first certificate is still there and answers.
        sink.send(Message::Text(json!({"type": "ping", "t": 1}).to_string().into())).await.unwrap();
        let pong = tokio::time::timeout(Duration::from_secs(5), async {
            while let Some(v) = rx.recv().await {
                if v["type"] == "pong" {
                    return Some(v);
                }
            }
            None
        })
        .await
        .expect("an answer on the old connection");
        assert!(pong.is_some(), "the connection opened before the swap was closed");
        server.shutdown(Duration::from_secs(2)).await;
    });
}

#[test]
fn ca_down_at_renewal_keeps_the_old_certificate_and_retries() {
    in_netns("ca_down_at_renewal_keeps_the_old_certificate_and_retries", || async {
        let case = Case::new("down").await;
        // 15 s certificates: renewal due 10 s in, long after the first is seen here.
        let setup = case.pebble_setup(15);
        let pebble = start_pebble(&setup).await;
        let config = case.config(&pebble.directory(), AcmeChallenge::TlsAlpn01);
        let server = parlor::start(&config).await.expect("parlor starts");
        let port = server.http_addr.port();
        let root = pebble.issuing_root(&case.tls).await;
        let first = issued(&root, port).await;
        drop(pebble); // killed by PID

        // Past the renewal point, with attempts failing: the first certificate is still served.
        let past = first.renew_at() + Duration::from_millis(1500);
        while SystemTime::now() < past {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let still = served(&root, port).await.expect("the old certificate is still served");
        assert_eq!(still.serial, first.serial);

        // The CA back (a new pebble on the same address: new roots, and it forgot our account):
        // a later retry gets a new certificate.
        let pebble = start_pebble(&setup).await;
        let root = pebble.issuing_root(&case.tls).await;
        let renewed = issued(&root, port).await;
        assert_ne!(renewed.serial, first.serial);
        server.shutdown(Duration::from_secs(2)).await;
    });
}

#[test]
fn a_bad_directory_fails_the_start_clearly() {
    in_netns("a_bad_directory_fails_the_start_clearly", || async {
        let case = Case::new("bad").await;
        let pebble = start_pebble(&case.pebble_setup(3600)).await;
        let start_error = |directory: String, ca_root: Option<&str>| {
            let mut config = case.config(&directory, AcmeChallenge::TlsAlpn01);
            if let Some(root) = ca_root {
                config.tls.acme.ca_root = root.to_owned();
            }
            async move {
                match parlor::start(&config).await {
                    Ok(_) => panic!("parlor started with tls.acme.directory = {directory}"),
                    Err(e) => format!("{e:#}"),
                }
            }
        };
        // Nothing listening there.
        let nowhere = format!("https://127.0.0.1:{}/dir", free_port());
        let e = start_error(nowhere.clone(), None).await;
        assert!(e.contains("tls.acme.directory") && e.contains(&nowhere), "{e}");
        // A server that is not an ACME directory at that path.
        let wrong = format!("https://127.0.0.1:{}/not-a-directory", pebble.port);
        let e = start_error(wrong.clone(), None).await;
        assert!(e.contains("tls.acme.directory") && e.contains(&wrong), "{e}");
        // The right directory, but its TLS root not trusted (no ca_root: the system's roots).
        let e = start_error(pebble.directory(), Some("")).await;
        assert!(e.contains("tls.acme.directory") && e.to_lowercase().contains("certificate"), "{e}");
        // A ca_root that is not there.
        let e = start_error(pebble.directory(), Some("/nonexistent/root.pem")).await;
        assert!(e.contains("tls.acme.ca_root"), "{e}");
    });
}
