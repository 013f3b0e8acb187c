//! `parlor check` against a running server: the real binary on both sides.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const PARLOR: &str = env!("CARGO_BIN_EXE_parlor");

/// A `parlor serve` on free loopback ports, killed on drop.
struct Server {
    child: Child,
    http: SocketAddr,
    udp: u16,
    tcp: Option<u16>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The first address inside the brackets after `label` in the "serving" line.
fn port_after(line: &str, label: &str) -> Option<u16> {
    let rest = line[line.find(label)? + label.len()..].strip_prefix(" [")?;
    // Addresses are "a:p, b:p" (IPv6 ones bracketed); the list ends at "]," or "])".
    let end = [rest.find("],"), rest.find("])")].into_iter().flatten().min()?;
    rest[..end].split(", ").next()?.parse::<SocketAddr>().ok().map(|a| a.port())
}

fn serve(env: &[(&str, &str)]) -> Server {
    let mut cmd = Command::new(PARLOR);
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--udp-port", "0"])
        .env("PARLOR_GAMES__LOG_DIR", "")
        .env("PARLOR_LOG__LEVEL", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("start parlor");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let line = rx.recv_timeout(Duration::from_secs(30)).expect("parlor printed its serving line");
    let http: SocketAddr = line
        .split("http://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP address in {line:?}"));
    let udp = port_after(&line, "UDP").unwrap_or_else(|| panic!("no UDP port in {line:?}"));
    let tcp = port_after(&line, "ICE-TCP");
    Server { child, http, udp, tcp }
}

fn check(args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let mut cmd = Command::new(PARLOR);
    cmd.arg("check").args(args).env("PARLOR_LOG__LEVEL", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let Output { status, stdout, stderr } = cmd.output().expect("run parlor check");
    let text = format!("{}{}", String::from_utf8_lossy(&stdout), String::from_utf8_lossy(&stderr));
    (status.success(), text)
}

#[test]
fn check_passes_against_a_running_server_over_udp_and_tcp() {
    let server = serve(&[]);
    let tcp = server.tcp.expect("ICE-TCP on by default");
    let (udp, tcp) = (server.udp.to_string(), tcp.to_string());
    let listen = server.http.to_string();
    let (ok, out) = check(&["--listen", &listen, "--udp-port", &udp, "--tcp-port", &tcp, "--timeout-ms", "5000"], &[]);
    assert!(ok, "{out}");
    // What to open, and one answered probe per protocol, each naming the address it saw.
    assert!(out.contains(&format!("TCP {}", server.http.port())), "{out}");
    assert!(out.contains(&format!("UDP {udp} ")), "{out}");
    assert!(out.contains(&format!("TCP {tcp} ")), "{out}");
    assert!(out.contains(&format!("ok    udp 127.0.0.1:{udp}  answered (it sees this machine as 127.0.0.1:")), "{out}");
    assert!(out.contains(&format!("ok    tcp 127.0.0.1:{tcp}  answered (it sees this machine as 127.0.0.1:")), "{out}");
    assert!(!out.contains("FAIL"), "{out}");
}

#[test]
fn check_fails_and_names_the_port_that_does_not_answer() {
    let server = serve(&[("PARLOR_MEDIA__TCP_PORT", "off")]);
    assert_eq!(server.tcp, None, "ICE-TCP off");
    // A UDP port that something holds but never answers on: silence, not a refusal.
    let mute = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let mute_port = mute.local_addr().unwrap().port().to_string();
    let off = [("PARLOR_MEDIA__TCP_PORT", "off")];
    let (ok, out) = check(&["--udp-port", &mute_port, "--timeout-ms", "600"], &off);
    assert!(!ok, "{out}");
    assert!(out.contains(&format!("FAIL  udp 127.0.0.1:{mute_port}  no answer within 600 ms")), "{out}");
    assert!(out.contains(&format!("is UDP {mute_port} open")), "{out}");
    assert!(out.contains("ICE-TCP is off"), "{out}");
    // The server's own port answers while the other does not: only the mute one fails.
    let good = server.udp.to_string();
    let (ok, out) = check(&["--udp-port", &good, "--timeout-ms", "5000"], &off);
    assert!(ok, "{out}");
    // A port picked at start cannot be probed from the configuration alone.
    let (ok, out) = check(&["--udp-port", "0"], &off);
    assert!(!ok && out.contains("media.udp_port is 0"), "{out}");
}

#[test]
fn dual_stack_media_answers_on_ipv4_and_ipv6() {
    // Bound to "::" (one dual-stack socket per worker), announcing one address of each family.
    let env = [("PARLOR_MEDIA__BIND_IP", "::"), ("PARLOR_MEDIA__ANNOUNCE_IPS", r#"["127.0.0.1", "::1"]"#)];
    let server = serve(&env);
    let (udp, tcp) = (server.udp.to_string(), server.tcp.expect("ICE-TCP on").to_string());
    let (ok, out) = check(&["--udp-port", &udp, "--tcp-port", &tcp, "--timeout-ms", "5000"], &env);
    assert!(ok, "{out}");
    // IPv4 clients of the dual-stack socket are seen (and answered) as IPv4, not ::ffff:127.0.0.1.
    assert!(out.contains(&format!("ok    udp 127.0.0.1:{udp}  answered (it sees this machine as 127.0.0.1:")), "{out}");
    assert!(out.contains(&format!("ok    tcp 127.0.0.1:{tcp}  answered (it sees this machine as 127.0.0.1:")), "{out}");
    assert!(out.contains(&format!("ok    udp [::1]:{udp}  answered (it sees this machine as [::1]:")), "{out}");
    assert!(out.contains(&format!("ok    tcp [::1]:{tcp}  answered (it sees this machine as [::1]:")), "{out}");
}

/// `parlor healthcheck` with these arguments and variables: (success, stdout + stderr).
fn healthcheck(args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let mut cmd = Command::new(PARLOR);
    cmd.arg("healthcheck").args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let Output { status, stdout, stderr } = cmd.output().expect("run parlor healthcheck");
    (status.success(), format!("{}{}", String::from_utf8_lossy(&stdout), String::from_utf8_lossy(&stderr)))
}

#[test]
fn healthcheck_finds_the_server_from_its_configuration() {
    // A variable outside any section (as other tools set) is ignored, not fatal.
    let server = serve(&[("PARLOR_URL", "http://127.0.0.1:9/")]);
    let listen = server.http.to_string();
    let (ok, out) = healthcheck(&["--addr", &listen], &[]);
    assert!(ok && out.trim() == "ok", "{out}");
    // Without --addr: server.listen from the environment, as in the container's HEALTHCHECK.
    let (ok, out) = healthcheck(&[], &[("PARLOR_SERVER__LISTEN", &listen), ("PARLOR_URL", "x")]);
    assert!(ok && out.trim() == "ok", "{out}");
    // Speaking TLS to a plain server fails; so does a port where nothing listens.
    let (ok, out) = healthcheck(&["--addr", &listen, "--tls"], &[]);
    assert!(!ok, "{out}");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string();
    let (ok, out) = healthcheck(&["--addr", &closed], &[]);
    assert!(!ok && out.contains("cannot reach"), "{out}");
    // A misspelt key inside a section is still an error that names it; so is a variable one
    // underscore short of a section, which shows the right spelling.
    let (ok, out) = healthcheck(&[], &[("PARLOR_SERVER__LISTN", &listen)]);
    assert!(!ok && out.contains("listn"), "{out}");
    let (ok, out) = healthcheck(&[], &[("PARLOR_SERVER_LISTEN", &listen)]);
    assert!(!ok && out.contains("PARLOR_SERVER__LISTEN"), "{out}");
}
