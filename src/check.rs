//! `parlor check`: what a firewall must let through, and whether every announced media
//! address answers. Each announced address and worker port gets a plain STUN binding request
//! (no ICE credentials) over UDP and over ICE-TCP; a media worker answers such a request with
//! the address it saw the request come from, so an answer proves the whole path: the address
//! is right, the port is open, and parlor is listening behind it.

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::Result;
use parlor_media::binding::{binding_request, mapped_address};
use parlor_media::tcp::{read_frame, write_frame};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::Instant;

use crate::config::Config;

/// First retransmission of an unanswered UDP request (RFC 8489 §6.2.1 suggests 500 ms; a
/// check should be quick on a lossless path).
const FIRST_RTO: Duration = Duration::from_millis(250);

/// Print the firewall plan for `config` and probe every announced address; true when all
/// answered.
pub async fn run(config: &Config, timeout: Duration, out: &mut impl Write) -> Result<bool> {
    let (announce, warning) = config.announce_plan();
    let workers = config.media.workers as u16;
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
        "  UDP {:<13} media, one port per worker  [media.udp_port, media.workers = {workers}]",
        range(udp, workers)
    )?;
    match tcp {
        Some(port) => {
            writeln!(out, "  TCP {:<13} ICE-TCP, media when UDP is blocked  [media.tcp_port]", range(port, workers))?
        }
        None => writeln!(out, "  (ICE-TCP is off: media.tcp_port = \"off\")")?,
    }
    writeln!(out)?;

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
