//! `parlor check`: what a firewall must let through, and whether every announced media
//! address answers. Each announced address and worker port gets a plain STUN binding request
//! (no ICE credentials) over UDP and over ICE-TCP; a media worker answers such a request with
//! the address it saw the request come from, so an answer proves the whole path: the address
//! is right, the port is open, and parlor is listening behind it.

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{anyhow, Result};
use parlor_media::binding::{binding_request, mapped_address};
use parlor_media::tcp::{read_frame, write_frame};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::Instant;

use rustls_pki_types::pem::PemObject;
use tokio_rustls::rustls::crypto::aws_lc_rs;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::ClientConfig;

use crate::config::Config;
use crate::tls::{cert_info, CertInfo};

/// First retransmission of an unanswered UDP request (RFC 8489 §6.2.1 suggests 500 ms; a
/// check should be quick on a lossless path).
const FIRST_RTO: Duration = Duration::from_millis(250);

/// Print the firewall plan for `config` and probe every announced address; true when all
/// answered.
pub async fn run(config: &Config, timeout: Duration, out: &mut impl Write) -> Result<bool> {
    let (announce, warning) = config.announce_plan();
    let workers = config.media.workers.count() as u16;
    let udp = config.media.udp_port;
    let tcp = config.media_tcp_port();
    let mut ok = true;

    writeln!(out, "Announced media addresses (media.announce_ips): {}", list(&announce))?;
    if config.media.announce_ips.is_empty() {
        writeln!(out, "  (none configured: derived from media.bind_ip / server.listen and the interfaces)")?;
    }
    if let Some(w) = warning {
        writeln!(out, "  warning: {w}")?;
    }
    writeln!(out)?;
    writeln!(out, "Open in the firewall (inbound):")?;
    let web = if config.tls.enabled() { "HTTPS and WSS (/ws)" } else { "HTTP and /ws (or your TLS proxy's 443)" };
    writeln!(out, "  TCP {:<13} {web}  [server.listen]", config.server.listen.port())?;
    if let Ok(redirect) = config.tls.redirect_http.parse::<SocketAddr>() {
        writeln!(out, "  TCP {:<13} redirect to HTTPS  [tls.redirect_http]", redirect.port())?;
    }
    writeln!(
        out,
        "  UDP {:<13} media, one port per worker  [media.udp_port, media.workers = {}]",
        range(udp, workers),
        config.media.workers
    )?;
    match tcp {
        Some(port) => {
            writeln!(out, "  TCP {:<13} ICE-TCP, media when UDP is blocked  [media.tcp_port]", range(port, workers))?
        }
        None => writeln!(out, "  (ICE-TCP is off: media.tcp_port = \"off\")")?,
    }
    writeln!(out)?;
    if config.tls.enabled() {
        certificate(config, timeout, out).await?;
        writeln!(out)?;
    }

    writeln!(out, "STUN binding request to each announced address (timeout {} ms):", timeout.as_millis())?;
    let mut probes: Vec<(&str, u16)> = Vec::new();
    if udp == 0 {
        writeln!(out, "  FAIL  media.udp_port is 0 (a free port picked at start): pass --udp-port with the port the server printed")?;
        ok = false;
    } else {
        probes.push(("udp", udp));
    }
    match tcp {
        Some(0) => {
            writeln!(out, "  FAIL  media.tcp_port is 0 (a free port picked at start): pass --tcp-port with the port the server printed")?;
            ok = false;
        }
        Some(port) => probes.push(("tcp", port)),
        None => {}
    }
    for ip in &announce {
        for &(proto, first) in &probes {
            for i in 0..workers {
                let target = SocketAddr::new(*ip, first.saturating_add(i));
                let result =
                    if proto == "udp" { probe_udp(target, timeout).await } else { probe_tcp(target, timeout).await };
                match result {
                    Ok(seen) => writeln!(out, "  ok    {proto} {target}  answered (it sees this machine as {seen})")?,
                    Err(why) => {
                        ok = false;
                        writeln!(out, "  FAIL  {proto} {target}  {why}")?;
                        writeln!(out, "        {}", hint(proto, target.port(), ip))?;
                    }
                }
            }
        }
    }
    writeln!(out)?;
    writeln!(
        out,
        "{}",
        if ok {
            "All announced addresses answer. (Run `parlor check` from outside too: from the server itself a cloud's NAT may not loop back.)"
        } else {
            "Some addresses did not answer: browsers reaching only those get no audio or video (docs/DEPLOY.md, Troubleshooting)."
        }
    )?;
    Ok(ok)
}

/// The certificate the running server presents (names, expiry), or else the one on disk.
async fn certificate(config: &Config, timeout: Duration, out: &mut impl Write) -> Result<()> {
    let (addr, _) = crate::health::target(config);
    let name = config.tls.acme.domains.first().cloned();
    match tokio::time::timeout(timeout, served_certificate(addr, name.clone())).await {
        Ok(Ok(der)) => match cert_info(&der) {
            Ok(info) => {
                writeln!(out, "TLS certificate served on {addr}:")?;
                describe(&info, out)?;
            }
            Err(e) => writeln!(out, "  FAIL  the certificate served on {addr} does not parse: {e:#}")?,
        },
        failed => {
            let why = match failed {
                Ok(Err(e)) => format!("{e:#}"),
                _ => format!("no handshake within {} ms", timeout.as_millis()),
            };
            writeln!(out, "TLS certificate: none served on {addr} ({why})")?;
            match on_disk(config) {
                Some((path, info)) => {
                    writeln!(out, "  on disk, {}:", path.display())?;
                    describe(&info, out)?;
                }
                None if config.tls.acme.enabled() => {
                    writeln!(out, "  none on disk yet: parlor serve gets one from {}", config.tls.acme.directory)?
                }
                None => writeln!(out, "  tls.cert {} does not load", config.tls.cert)?,
            }
        }
    }
    Ok(())
}

fn describe(info: &CertInfo, out: &mut impl Write) -> Result<()> {
    let left = match info.not_after.duration_since(SystemTime::now()) {
        Ok(d) if d.as_secs() >= 2 * 86_400 => format!("in {} days", d.as_secs() / 86_400),
        Ok(d) => format!("in {} h {} min", d.as_secs() / 3600, d.as_secs() / 60 % 60),
        Err(_) => "EXPIRED".to_owned(),
    };
    writeln!(out, "  names    {}", if info.names.is_empty() { "(none)".to_owned() } else { info.names.join(", ") })?;
    writeln!(out, "  expires  {} ({left})", info.expires())?;
    Ok(())
}

/// The certificate file: tls.cert, or the ACME cache's chain.
fn on_disk(config: &Config) -> Option<(PathBuf, CertInfo)> {
    let path = if config.tls.acme.enabled() {
        crate::acme::cached_chain(&config.tls.acme)
    } else {
        PathBuf::from(&config.tls.cert)
    };
    let der = CertificateDer::pem_file_iter(&path).ok()?.next()?.ok()?;
    Some((path.clone(), cert_info(&der).ok()?))
}

/// A TLS handshake with the server, accepting any certificate: the point is to see it.
async fn served_certificate(addr: SocketAddr, name: Option<String>) -> Result<CertificateDer<'static>> {
    let provider = Arc::new(aws_lc_rs::default_provider());
    let client = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(crate::health::AnyCertificate(provider)))
        .with_no_client_auth();
    // The ACME domain as SNI (the name the certificate is for); else the address.
    let server_name = match name.and_then(|n| ServerName::try_from(n).ok()) {
        Some(n) => n,
        None => ServerName::IpAddress(addr.ip().into()),
    };
    let tcp = TcpStream::connect(addr).await?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(client)).connect(server_name, tcp).await?;
    let leaf = tls.get_ref().1.peer_certificates().and_then(|c| c.first()).ok_or_else(|| anyhow!("no certificate"))?;
    Ok(leaf.clone().into_owned())
}

fn list(ips: &[IpAddr]) -> String {
    ips.iter().map(|ip| ip.to_string()).collect::<Vec<_>>().join(", ")
}

fn range(first: u16, workers: u16) -> String {
    if first == 0 {
        "(free ports)".into()
    } else if workers <= 1 {
        first.to_string()
    } else {
        format!("{first}-{}", first.saturating_add(workers - 1))
    }
}

fn hint(proto: &str, port: u16, ip: &IpAddr) -> String {
    let proto = proto.to_uppercase();
    format!(
        "is {proto} {port} open in every firewall on the way (host, cloud security group)? is {ip} really this \
         server's address (media.announce_ips)? is parlor running with this configuration?"
    )
}

/// Send a binding request over UDP (retransmitting) and wait for its answer.
async fn probe_udp(target: SocketAddr, timeout: Duration) -> Result<SocketAddr, String> {
    let any: SocketAddr = if target.is_ipv4() { "0.0.0.0:0".parse() } else { "[::]:0".parse() }.expect("literal");
    let socket = UdpSocket::bind(any).await.map_err(|e| format!("cannot open a UDP socket: {e}"))?;
    // Connected: an ICMP "port unreachable" then surfaces as an error instead of a timeout.
    socket.connect(target).await.map_err(|e| format!("no route: {e}"))?;
    let (request, id) = binding_request();
    let deadline = Instant::now() + timeout;
    let mut rto = FIRST_RTO;
    let mut buf = [0u8; 512];
    loop {
        socket.send(&request).await.map_err(|e| format!("cannot send: {e}"))?;
        let resend = (Instant::now() + rto).min(deadline);
        rto *= 2;
        loop {
            match tokio::time::timeout_at(resend, socket.recv(&mut buf)).await {
                Ok(Ok(n)) => {
                    if let Some(seen) = mapped_address(&buf[..n], &id) {
                        return Ok(seen);
                    }
                }
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    return Err("refused: nothing listens on this port (ICMP port unreachable)".into())
                }
                Ok(Err(e)) => return Err(format!("receive failed: {e}")),
                Err(_) => break,
            }
        }
        if Instant::now() >= deadline {
            return Err(format!("no answer within {} ms", timeout.as_millis()));
        }
    }
}

/// Connect, send one framed binding request (RFC 4571) and read the framed answer.
async fn probe_tcp(target: SocketAddr, timeout: Duration) -> Result<SocketAddr, String> {
    let exchange = async {
        let mut stream = TcpStream::connect(target).await.map_err(|e| format!("cannot connect: {e}"))?;
        let (request, id) = binding_request();
        write_frame(&mut stream, &request).await.map_err(|e| format!("cannot send: {e}"))?;
        let mut buf = Vec::new();
        match read_frame(&mut stream, &mut buf).await {
            Ok(Some(())) => mapped_address(&buf, &id).ok_or_else(|| "the answer is not a STUN binding response".into()),
            Ok(None) => Err("closed without answering".into()),
            Err(e) => Err(format!("broken answer: {e}")),
        }
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {} ms", timeout.as_millis())))
}
