//! Several nodes on one real `redis-server` (docs/SCALING.md): placement by load, redirects
//! with media flowing at the owner, two nodes racing on one code, the room API in a cluster,
//! Redis dying and coming back, a node killed with SIGKILL (three `parlor` processes), and a
//! node drained with SIGTERM (real processes: until its rooms are empty, or to its deadline).
//!
//! Each test starts its own `redis-server` on a free port with persistence off and stops it
//! by PID. Without `redis-server` on PATH the tests fail (`.ci/run` installs it).

mod support;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use support::*;
use tokio_tungstenite::tungstenite::Message;

/// The tests of this file take turns: each runs several nodes and WebRTC clients, and the
/// media-gap and recovery-time checks measure the server, not a starved CPU.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A `redis-server` of this test's own.
struct Redis {
    child: Child,
    port: u16,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Redis {
    async fn start() -> Redis {
        Redis::start_on(free_port()).await
    }

    async fn start_on(port: u16) -> Redis {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server on PATH (apt-get install -y redis-server)");
        let up =
            wait_until_async(
                secs(10),
                || async move { tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() },
            )
            .await;
        assert!(up, "redis-server did not listen on {port} within 10 s");
        Redis { child, port }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// SIGKILL, by PID.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A node of the cluster on `redis`, in this process.
async fn node(redis: &Redis, id: &str) -> parlor::Server {
    let url = redis.url();
    let id = id.to_owned();
    server_with(move |c| {
        c.cluster.redis = url;
        c.cluster.node_id = id;
        c.cluster.heartbeat_seconds = 1.0;
        c.cluster.ttl_seconds = 3.0;
    })
    .await
}

fn ws_of(base: &str) -> String {
    let rest = base.strip_prefix("http://").expect("plain http in tests");
    format!("ws://{rest}/ws")
}

fn base_of(server: &parlor::Server) -> String {
    server.cluster_url().expect("a cluster node").to_owned()
}

/// What a node answered a `join`.
#[derive(Debug, PartialEq)]
enum Answer {
    Welcome(Value),
    Redirect { url: String, close: Option<u16> },
    Error(String),
}

/// A raw socket that sent a `join` and holds on to whatever seat it got.
struct Raw {
    /// Held so the seat stays connected.
    _stream: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
}

impl Raw {
    /// Give the seat up (`leave`), so it does not wait out the grace period.
    async fn leave(&mut self) {
        let _ = self._stream.send(Message::Text(json!({"type": "leave"}).to_string().into())).await;
    }

    async fn join(base: &str, join: Value) -> anyhow::Result<(Raw, Answer)> {
        let (mut stream, _) = tokio_tungstenite::connect_async(ws_of(base)).await?;
        stream.send(Message::Text(join.to_string().into())).await?;
        let deadline = tokio::time::Instant::now() + secs(10);
        loop {
            let frame = tokio::time::timeout_at(deadline, stream.next()).await?;
            let Some(Ok(Message::Text(t))) = frame else { anyhow::bail!("socket ended before an answer: {frame:?}") };
            let v: Value = serde_json::from_str(t.as_str())?;
            match v["type"].as_str() {
                Some("welcome") => return Ok((Raw { _stream: stream }, Answer::Welcome(v))),
                Some("error") => {
                    return Ok((Raw { _stream: stream }, Answer::Error(v["code"].as_str().unwrap_or("").into())))
                }
                Some("redirect") => {
                    let url = v["url"].as_str().unwrap_or("").to_owned();
                    let mut close = None;
                    while let Ok(Some(frame)) = tokio::time::timeout_at(deadline, stream.next()).await {
                        match frame {
                            Ok(Message::Close(c)) => {
                                close = c.map(|c| u16::from(c.code));
                                break;
                            }
                            Ok(_) => continue,
                            Err(_) => break,
                        }
                    }
                    return Ok((Raw { _stream: stream }, Answer::Redirect { url, close }));
                }
                _ => continue,
            }
        }
    }
}

/// Join `room` starting at `base`, following redirects (each must close with 4002): the
/// socket, the node that welcomed it and how many redirects it took.
async fn join_following(base: &str, room: &str, name: &str) -> (Raw, String, usize) {
    let mut at = base.to_owned();
    for hops in 0..4 {
        let (raw, answer) = Raw::join(&at, json!({"type": "join", "room": room, "name": name})).await.unwrap();
        match answer {
            Answer::Welcome(_) => return (raw, at, hops),
            Answer::Redirect { url, close } => {
                assert_eq!(close, Some(4002), "a redirect closes with 4002");
                at = url;
            }
            Answer::Error(e) => panic!("join {room} at {at}: error {e}"),
        }
    }
    panic!("more than 3 redirects for {room}");
}

/// A plain HTTP/1.0 request to `base`: (status, JSON body).
async fn http(base: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = base.strip_prefix("http://").unwrap();
    let mut stream = tokio::net::TcpStream::connect(host).await.expect("connect");
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.0\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// The body of `GET path` at `base`, as text.
async fn get_text(base: &str, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = base.strip_prefix("http://").unwrap();
    let mut stream = tokio::net::TcpStream::connect(host).await.expect("connect");
    stream.write_all(format!("GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    text.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn placement_spreads_new_rooms_by_load() {
    let _turn = TURN.lock().await;
    let redis = Redis::start().await;
    let nodes = [node(&redis, "n1").await, node(&redis, "n2").await, node(&redis, "n3").await];
    let entry = base_of(&nodes[0]);
    let mut held = Vec::new();
    let mut redirected = 0;
    for i in 0..6 {
        let (raw, at, hops) = join_following(&entry, &format!("spread-{i}"), "Ann").await;
        redirected += hops;
        held.push((raw, at));
    }
    let counts: Vec<usize> = nodes.iter().map(|n| n.room_count()).collect();
    assert_eq!(counts, vec![2, 2, 2], "six rooms of one participant each spread evenly");
    assert_eq!(redirected, 4, "the rooms placed on the two other nodes were each one redirect away");
    for (i, (_, at)) in held.iter().enumerate() {
        let owner = nodes.iter().find(|n| &base_of(n) == at).unwrap();
        assert!(owner.room_codes().contains(&format!("spread-{i}")), "spread-{i} is where the redirect pointed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_join_at_the_wrong_node_is_redirected_and_the_call_works_at_the_owner() {
    let _turn = TURN.lock().await;
    let redis = Redis::start().await;
    let n1 = node(&redis, "n1").await;
    let n2 = node(&redis, "n2").await;
    // Both empty: the tie goes to n1, so a join there opens the room there.
    let ann = TestClient::join(&ws_of(&base_of(&n1)), "call", "Ann", ClientOptions::default()).await.unwrap();
    assert_eq!(n1.room_codes(), vec!["call".to_owned()]);

    let (_probe, answer) =
        Raw::join(&base_of(&n2), json!({"type": "join", "room": "call", "name": "Bob"})).await.unwrap();
    assert_eq!(answer, Answer::Redirect { url: base_of(&n1), close: Some(4002) });
    assert_eq!(n2.room_count(), 0, "the wrong node opened nothing");

    let Answer::Redirect { url, .. } = answer else { unreachable!() };
    let bob = TestClient::join(&ws_of(&url), "call", "Bob", ClientOptions::default()).await.unwrap();
    bob.wait_count(ann.id(), Kind::Video, 30, secs(20)).await.unwrap();
    bob.wait_count(ann.id(), Kind::Audio, 30, secs(20)).await.unwrap();
    ann.wait_count(bob.id(), Kind::Video, 30, secs(20)).await.unwrap();

    // The room API of the wrong node points at the owner.
    let (status, body) = http(&base_of(&n2), "GET", "/api/rooms/call", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"code": "call", "remote": true, "node_url": base_of(&n1)}));
    let (status, body) = http(&base_of(&n1), "GET", "/api/rooms/call", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["node_url"], base_of(&n1));
    assert_eq!(body["participants"].as_array().map(Vec::len), Some(2), "{body}");
    let (status, body) = http(&base_of(&n2), "GET", "/api/rooms/nowhere", None).await;
    assert_eq!((status, body["error"].as_str()), (404, Some("room_not_found")));

    // Metrics count the redirect on the node that sent it.
    let (_, _, metrics) = http_get(&n2, "/metrics").await;
    assert!(metrics.contains("parlor_cluster_redirects_total 1"), "{metrics}");
    assert!(metrics.contains("parlor_cluster_nodes 2"), "{metrics}");
    assert!(metrics.contains("parlor_cluster_redis_up 1"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_racing_on_one_code_end_in_one_room() {
    let _turn = TURN.lock().await;
    let redis = Redis::start().await;
    let n1 = node(&redis, "n1").await;
    let n2 = node(&redis, "n2").await;
    let (b1, b2) = (base_of(&n1), base_of(&n2));
    for i in 0..8 {
        let code = format!("race-{i}");
        let join = |name: &str| json!({"type": "join", "room": code, "name": name});
        let (a, b) = tokio::join!(Raw::join(&b1, join("Ann")), Raw::join(&b2, join("Bob")));
        let (a, b) = (a.unwrap(), b.unwrap());
        let holders: Vec<&str> = [(&n1, "n1"), (&n2, "n2")]
            .iter()
            .filter(|(n, _)| n.room_codes().contains(&code))
            .map(|(_, id)| *id)
            .collect();
        assert_eq!(holders.len(), 1, "{code}: exactly one node holds it: {holders:?}");
        let owner = if holders[0] == "n1" { &b1 } else { &b2 };
        for (answer, name) in [(&a.1, "Ann"), (&b.1, "Bob")] {
            match answer {
                Answer::Welcome(_) => {}
                Answer::Redirect { url, close } => {
                    assert_eq!((url, *close), (owner, Some(4002)), "{code}: {name} is sent to the owner");
                    let (_raw, answer) = Raw::join(owner, join(name)).await.unwrap();
                    assert!(matches!(answer, Answer::Welcome(_)), "{code}: {name} at the owner: {answer:?}");
                }
                Answer::Error(e) => panic!("{code}: {name} got {e}"),
            }
        }
    }

    // Through the API both nodes claim for themselves: one creates, the other is told where.
    let body = json!({"code": "api-race"});
    let (r1, r2) = tokio::join!(
        http(&b1, "POST", "/api/rooms", Some(body.clone())),
        http(&b2, "POST", "/api/rooms", Some(body.clone()))
    );
    let mut statuses = [r1.0, r2.0];
    statuses.sort();
    assert_eq!(statuses, [201, 409], "{r1:?} {r2:?}");
    let (created, refused, owner) = if r1.0 == 201 { (&r1.1, &r2.1, &b1) } else { (&r2.1, &r1.1, &b2) };
    assert_eq!(&created["node_url"], owner);
    assert_eq!(refused["error"], "room_exists");
    assert_eq!(&refused["node_url"], owner);
    assert_eq!(
        n1.room_codes().contains(&"api-race".to_owned()) as u8 + n2.room_codes().contains(&"api-race".to_owned()) as u8,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_dying_keeps_rooms_going_refuses_new_ones_and_heals() {
    let _turn = TURN.lock().await;
    let mut redis = Redis::start().await;
    let port = redis.port;
    let n1 = node(&redis, "n1").await;
    let n2 = node(&redis, "n2").await;
    let (b1, b2) = (base_of(&n1), base_of(&n2));
    let ann = TestClient::join(&ws_of(&b1), "steady", "Ann", ClientOptions::default()).await.unwrap();
    let bob = TestClient::join(&ws_of(&b1), "steady", "Bob", ClientOptions::default()).await.unwrap();
    bob.wait_count(ann.id(), Kind::Video, 30, secs(20)).await.unwrap();

    redis.kill();
    let before = bob.count(ann.id(), Kind::Video);
    // The room in progress keeps its media and takes newcomers on its node.
    bob.wait_count(ann.id(), Kind::Video, before + 50, secs(10)).await.unwrap();
    let (_cy, answer) = Raw::join(&b1, json!({"type": "join", "room": "steady", "name": "Cy"})).await.unwrap();
    assert!(matches!(answer, Answer::Welcome(_)), "{answer:?}");
    // A new room cannot be placed: a clear error, the socket stays open.
    let (_dee, answer) = Raw::join(&b2, json!({"type": "join", "room": "fresh", "name": "Dee"})).await.unwrap();
    assert_eq!(answer, Answer::Error("cluster_unavailable".into()));
    let (status, body) = http(&b2, "GET", "/api/rooms/steady", None).await;
    assert_eq!((status, body["error"].as_str()), (503, Some("cluster_unavailable")), "{body}");
    let (_, _, metrics) = http_get(&n2, "/metrics").await;
    assert!(metrics.contains("parlor_cluster_redis_up 0"), "{metrics}");

    // Redis returns empty (no persistence): the heartbeats put the nodes and their rooms back.
    let _redis = Redis::start_on(port).await;
    let healed = wait_until_async(secs(10), || {
        let b2 = b2.clone();
        let b1 = b1.clone();
        async move {
            let (status, body) = http(&b2, "GET", "/api/rooms/steady", None).await;
            status == 200 && body["node_url"] == json!(b1)
        }
    })
    .await;
    assert!(healed, "the steady room's lock is back, pointing at n1");
    let (_dee, at, _) = join_following(&b2, "fresh", "Dee").await;
    assert!(at == b1 || at == b2);
    let after = bob.count(ann.id(), Kind::Video);
    bob.wait_count(ann.id(), Kind::Video, after + 30, secs(10)).await.unwrap();
    drop(n2);
    drop(n1);
}

// ---- three real processes ------------------------------------------------------------------

/// A `parlor serve` process, a node of the cluster on `redis`.
struct Process {
    child: Child,
    base: String,
}

impl Process {
    fn start(redis: &Redis, id: &str) -> Process {
        Process::start_with(redis, id, &[])
    }

    /// A node with more `PARLOR_…` variables.
    fn start_with(redis: &Redis, id: &str, env: &[(&str, &str)]) -> Process {
        use std::io::BufRead;
        let mut child = Command::new(env!("CARGO_BIN_EXE_parlor"))
            .args(["serve", "--listen", "127.0.0.1:0", "--udp-port", "0"])
            .envs(env.iter().copied())
            .env("PARLOR_CLUSTER__REDIS", redis.url())
            .env("PARLOR_CLUSTER__NODE_ID", id)
            .env("PARLOR_GAMES__LOG_DIR", "")
            .env("PARLOR_LOG__LEVEL", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("target/debug/parlor");
        // The log names the node's URL when it joins the cluster (derived from the bound port).
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            // Keep reading to the end, or a full pipe would block the server's logging.
            for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                if let (false, Some(at)) = (sent, line.find("http://127.0.0.1:")) {
                    let url: String =
                        line[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || ":/.".contains(*c)).collect();
                    let _ = tx.send(url);
                    sent = true;
                }
            }
        });
        let base = rx.recv_timeout(Duration::from_secs(30)).expect("parlor logs its address within 30 s");
        Process { child, base }
    }

    /// SIGTERM, by PID.
    fn sigterm(&self) {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success(), "kill -TERM");
    }

    /// The exit status once the process has ended, polling until `timeout`.
    async fn exited_within(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    fn sigkill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.sigkill();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_node_loses_only_its_rooms_which_come_back_on_a_survivor() {
    let _turn = TURN.lock().await;
    let redis = Redis::start().await;
    let mut procs = [Process::start(&redis, "p1"), Process::start(&redis, "p2"), Process::start(&redis, "p3")];
    // One room on each node (the API opens a room on the node that receives it).
    let mut calls = Vec::new();
    for (i, p) in procs.iter().enumerate() {
        let code = format!("room-{}", i + 1);
        let (status, body) = http(&p.base, "POST", "/api/rooms", Some(json!({"code": code}))).await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["node_url"], json!(p.base));
        let a = TestClient::join(&ws_of(&p.base), &code, "Ann", ClientOptions::default()).await.unwrap();
        let b = TestClient::join(&ws_of(&p.base), &code, "Bob", ClientOptions::default()).await.unwrap();
        calls.push((code, a, b));
    }
    for (code, a, b) in &calls {
        b.wait_count(a.id(), Kind::Video, 30, secs(30)).await.unwrap_or_else(|e| panic!("{code}: {e}"));
        a.wait_count(b.id(), Kind::Video, 30, secs(30)).await.unwrap_or_else(|e| panic!("{code}: {e}"));
    }
    let token = calls[2].2.resume_token().unwrap();

    procs[2].sigkill();
    let killed = Instant::now();

    // The other rooms' media never stops: packets keep arriving, with no gap of a second.
    let counts: Vec<usize> = calls[..2].iter().map(|(_, a, b)| b.count(a.id(), Kind::Video)).collect();
    for ((code, a, b), before) in calls[..2].iter().zip(&counts) {
        b.wait_count(a.id(), Kind::Video, before + 60, secs(10)).await.unwrap_or_else(|e| panic!("{code}: {e}"));
    }

    // The lost room comes back on a survivor at the next join, once its lock has gone.
    let survivor = procs[0].base.clone();
    let mut recovered = None;
    while killed.elapsed() < secs(15) {
        let (raw, answer) =
            Raw::join(&survivor, json!({"type": "join", "room": "room-3", "name": "Bob"})).await.unwrap();
        match answer {
            Answer::Welcome(_) => {
                recovered = Some((killed.elapsed(), raw, survivor.clone()));
                break;
            }
            // Sent to the dead node while its entry lives, or to the other survivor.
            Answer::Redirect { url, .. } => {
                if let Ok((raw, Answer::Welcome(_))) =
                    Raw::join(&url, json!({"type": "join", "room": "room-3", "name": "Bob"})).await
                {
                    recovered = Some((killed.elapsed(), raw, url));
                    break;
                }
            }
            Answer::Error(e) => panic!("join room-3 after the kill: {e}"),
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    let (took, _bob, at) = recovered.expect("room-3 came back within 15 s");
    println!("room-3 recreated on {at} {:.2} s after SIGKILL (ttl_seconds = 6)", took.as_secs_f64());
    assert!(took <= secs(7), "within the lock TTL plus a second: {took:?}");
    assert!(at == procs[0].base || at == procs[1].base);
    // The old seats are gone: a resume fails cleanly.
    let (_r, answer) =
        Raw::join(&at, json!({"type": "join", "room": "room-3", "name": "Bob", "resume": token})).await.unwrap();
    assert_eq!(answer, Answer::Error("resume_expired".into()));

    // And the other calls still flow, both ways.
    for (code, a, b) in &calls[..2] {
        let n = a.count(b.id(), Kind::Video);
        a.wait_count(b.id(), Kind::Video, n + 30, secs(10)).await.unwrap_or_else(|e| panic!("{code}: {e}"));
    }
    let gaps: Vec<Duration> = calls[..2]
        .iter()
        .map(|(_, a, b)| {
            let got: Vec<_> = b.received(a.id(), Kind::Video).into_iter().filter(|p| p.arrival >= killed).collect();
            got.windows(2).map(|w| w[1].arrival.duration_since(w[0].arrival)).max().unwrap_or_default()
        })
        .collect();
    assert!(gaps.iter().all(|g| *g < secs(1)), "no pause of a second in the surviving rooms: {gaps:?}");
}

// ---- SIGTERM drains -------------------------------------------------------------------------

/// A connection of the test's own to the cluster's Redis, to read what the nodes wrote there.
async fn peek(redis: &Redis) -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis.url()).unwrap().get_multiplexed_async_connection().await.unwrap()
}

/// The field `field` of node `id`'s entry (None: no entry, or no such field).
async fn node_field(con: &mut redis::aio::MultiplexedConnection, id: &str, field: &str) -> Option<String> {
    redis::cmd("HGET").arg(format!("parlor:node:{id}")).arg(field).query_async(con).await.unwrap()
}

/// Who holds the lock of room `code`.
async fn lock_of(con: &mut redis::aio::MultiplexedConnection, code: &str) -> Option<String> {
    redis::cmd("GET").arg(format!("parlor:room:{code}")).query_async(con).await.unwrap()
}

/// The longest pause between two of `b`'s video packets from `a` that arrived after `since`.
fn longest_gap(a: &TestClient, b: &TestClient, since: Instant) -> Duration {
    let got: Vec<_> = b.received(a.id(), Kind::Video).into_iter().filter(|p| p.arrival >= since).collect();
    got.windows(2).map(|w| w[1].arrival.duration_since(w[0].arrival)).max().unwrap_or_default()
}

/// A room opened through the API on `p` with two WebRTC participants exchanging media.
async fn call_on(p: &Process, code: &str) -> (TestClient, TestClient) {
    let (status, body) = http(&p.base, "POST", "/api/rooms", Some(json!({"code": code}))).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["node_url"], json!(p.base));
    let ann = TestClient::join(&ws_of(&p.base), code, "Ann", ClientOptions::default()).await.unwrap();
    let bob = TestClient::join(&ws_of(&p.base), code, "Bob", ClientOptions::default()).await.unwrap();
    bob.wait_count(ann.id(), Kind::Video, 30, secs(30)).await.unwrap();
    ann.wait_count(bob.id(), Kind::Video, 30, secs(30)).await.unwrap();
    (ann, bob)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_drains_a_node_new_rooms_go_elsewhere_its_call_runs_on_and_it_leaves_when_empty() {
    let _turn = TURN.lock().await;
    let redis = Redis::start().await;
    let mut con = peek(&redis).await;
    let mut d1 = Process::start_with(&redis, "d1", &[("PARLOR_CLUSTER__DRAIN_SECONDS", "120")]);
    let d2 = Process::start(&redis, "d2");
    let (mut ann, mut bob) = call_on(&d1, "held").await;
    assert_eq!(node_field(&mut con, "d1", "draining").await.as_deref(), Some("0"));
    assert_eq!(http(&d1.base, "GET", "/readyz", None).await.0, 200, "d1 is ready before SIGTERM");

    d1.sigterm();
    let termed = Instant::now();
    let mut said = false;
    for _ in 0..250 {
        if node_field(&mut con, "d1", "draining").await.as_deref() == Some("1") {
            said = true;
            break;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    assert!(said, "d1's entry says it drains within 5 s of SIGTERM");

    // A new room asked of d1 goes to d2: over the WebSocket a redirect, through the API a 503
    // that names d2.
    let (_probe, answer) = Raw::join(&d1.base, json!({"type": "join", "room": "fresh", "name": "Dee"})).await.unwrap();
    assert_eq!(answer, Answer::Redirect { url: d2.base.clone(), close: Some(4002) });
    let (mut dee, at, _) = join_following(&d1.base, "fresh", "Dee").await;
    assert_eq!(at, d2.base, "the new room opened on d2");
    let (status, body) = http(&d1.base, "POST", "/api/rooms", Some(json!({"code": "api-new"}))).await;
    assert_eq!((status, body["error"].as_str()), (503, Some("node_draining")), "{body}");
    assert_eq!(body["node_url"], json!(d2.base));
    let (status, body) = http(&d2.base, "GET", "/api/rooms/api-new", None).await;
    assert_eq!(status, 404, "the refused room was not opened anywhere: {body}");

    // The room it holds runs on: media flows, and a newcomer still gets in there.
    let before = bob.count(ann.id(), Kind::Video);
    bob.wait_count(ann.id(), Kind::Video, before + 60, secs(10)).await.unwrap();
    let before = ann.count(bob.id(), Kind::Video);
    ann.wait_count(bob.id(), Kind::Video, before + 60, secs(10)).await.unwrap();
    let (mut cy, answer) = Raw::join(&d1.base, json!({"type": "join", "room": "held", "name": "Cy"})).await.unwrap();
    assert!(matches!(answer, Answer::Welcome(_)), "{answer:?}");
    assert_eq!(lock_of(&mut con, "held").await.as_deref(), Some("d1"), "the room's lock is still d1's");
    assert!(d1.child.try_wait().unwrap().is_none(), "d1 runs while its room has people in it");
    let gaps = [longest_gap(&ann, &bob, termed), longest_gap(&bob, &ann, termed)];
    assert!(gaps.iter().all(|g| *g < secs(1)), "no pause of a second in the draining room: {gaps:?}");
    let metrics = get_text(&d1.base, "/metrics").await;
    assert!(metrics.contains("parlor_cluster_draining 1"), "{metrics}");
    // A load balancer sends no one new to it; its container's liveness check still passes.
    assert_eq!(http(&d1.base, "GET", "/readyz", None).await.0, 503);
    assert_eq!(get_text(&d1.base, "/readyz").await, "draining");
    assert_eq!(http(&d1.base, "GET", "/healthz", None).await.0, 200);
    assert_eq!(http(&d2.base, "GET", "/readyz", None).await.0, 200, "d2 is ready");

    // Everyone leaves: the node deregisters and exits.
    cy.leave().await;
    ann.leave().await.unwrap();
    bob.leave().await.unwrap();
    let emptied = Instant::now();
    let status = d1.exited_within(secs(15)).await.expect("d1 exits once its room is empty");
    println!(
        "d1 exited {:.2} s after its room emptied ({:.1} s after SIGTERM)",
        emptied.elapsed().as_secs_f64(),
        termed.elapsed().as_secs_f64()
    );
    assert!(status.success(), "a clean exit: {status:?}");
    assert_eq!(node_field(&mut con, "d1", "url").await, None, "d1's entry is gone");
    let member: bool = redis::cmd("SISMEMBER").arg("parlor:nodes").arg("d1").query_async(&mut con).await.unwrap();
    assert!(!member, "d1 is off the node set");
    assert_eq!(lock_of(&mut con, "held").await, None, "its room's lock is released");
    // The code is free at once: the next join opens it on d2, with no lock to wait out.
    let (_again, answer) = Raw::join(&d2.base, json!({"type": "join", "room": "held", "name": "Ann"})).await.unwrap();
    assert!(matches!(answer, Answer::Welcome(_)), "{answer:?}");
    assert_eq!(lock_of(&mut con, "held").await.as_deref(), Some("d2"));
    dee.leave().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_drain_ends_at_its_deadline_with_the_call_still_on() {
    let _turn = TURN.lock().await;
    let redis = Redis::start().await;
    let mut con = peek(&redis).await;
    let mut d1 = Process::start_with(&redis, "d1", &[("PARLOR_CLUSTER__DRAIN_SECONDS", "3")]);
    let d2 = Process::start(&redis, "d2");
    let (ann, bob) = call_on(&d1, "late").await;
    let token = bob.resume_token().unwrap();

    d1.sigterm();
    let termed = Instant::now();
    // Until the deadline the call goes on.
    let before = bob.count(ann.id(), Kind::Video);
    bob.wait_count(ann.id(), Kind::Video, before + 40, secs(3)).await.unwrap();
    let status = d1.exited_within(secs(20)).await.expect("d1 exits after its drain deadline");
    let took = termed.elapsed();
    println!("d1 exited {:.2} s after SIGTERM (drain_seconds = 3, call still on)", took.as_secs_f64());
    assert!(status.success(), "a clean exit: {status:?}");
    assert!(took >= secs(3), "the call ran on to the deadline: {took:?}");
    let still = bob.received(ann.id(), Kind::Video).into_iter().filter(|p| p.arrival >= termed + secs(2)).count();
    assert!(still > 0, "media still flowed in the drain's last second");
    // Those still in the room are told, as at any shutdown.
    assert_eq!(ann.expect_error(secs(5)).await.unwrap(), "server_shutdown");
    assert_eq!(node_field(&mut con, "d1", "url").await, None, "d1's entry is gone");
    assert_eq!(lock_of(&mut con, "late").await, None, "its room's lock is released");
    // Its people come back at d2: the resume fails cleanly, a fresh join opens the room there.
    let (_r, answer) =
        Raw::join(&d2.base, json!({"type": "join", "room": "late", "name": "Bob", "resume": token})).await.unwrap();
    assert_eq!(answer, Answer::Error("resume_expired".into()));
    let (_bob2, answer) = Raw::join(&d2.base, json!({"type": "join", "room": "late", "name": "Bob"})).await.unwrap();
    assert!(matches!(answer, Answer::Welcome(_)), "{answer:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_draining_node_is_skipped_by_every_placement_and_says_so_when_nobody_takes_new_rooms() {
    let _turn = TURN.lock().await;
    let redis = Redis::start().await;
    let mut con = peek(&redis).await;
    let n1 = node(&redis, "n1").await;
    let n2 = node(&redis, "n2").await;
    let (b1, b2) = (base_of(&n1), base_of(&n2));
    // n1 holds a room with one person, n2 one with two: n1 is the lighter node, and the tie-break
    // favours it too, so only its draining keeps new rooms off it.
    let (mut ann, _) = Raw::join(&b1, json!({"type": "join", "room": "keep", "name": "Ann"})).await.unwrap();
    let mut n2_seats = Vec::new();
    for name in ["Bob", "Cy"] {
        let (raw, answer) = Raw::join(&b2, json!({"type": "join", "room": "busy", "name": name})).await.unwrap();
        assert!(matches!(answer, Answer::Welcome(_)), "{answer:?}");
        n2_seats.push(raw);
    }
    assert_eq!((n1.room_codes(), n2.room_codes()), (vec!["keep".to_owned()], vec!["busy".to_owned()]));
    let published = wait_until_async(secs(5), || {
        let mut con = con.clone();
        async move {
            node_field(&mut con, "n1", "participants").await.as_deref() == Some("1")
                && node_field(&mut con, "n2", "participants").await.as_deref() == Some("2")
        }
    })
    .await;
    assert!(published, "both nodes' heartbeats published their participants");

    let mut drain = Box::pin(n1.drain(std::future::pending()));
    let body = async {
        let said = wait_until_async(secs(5), || {
            let mut con = con.clone();
            async move { node_field(&mut con, "n1", "draining").await.as_deref() == Some("1") }
        })
        .await;
        assert!(said, "n1's entry says it drains");
        // n2 places a new room on itself, not on the lighter but draining n1.
        let (_s, answer) = Raw::join(&b2, json!({"type": "join", "room": "new-a", "name": "Dee"})).await.unwrap();
        assert!(matches!(answer, Answer::Welcome(_)), "{answer:?}");
        // n1 sends a new room to n2, and still seats a newcomer in its own room.
        let (_s, answer) = Raw::join(&b1, json!({"type": "join", "room": "new-b", "name": "Eve"})).await.unwrap();
        assert_eq!(answer, Answer::Redirect { url: b2.clone(), close: Some(4002) });
        let (mut fay, answer) = Raw::join(&b1, json!({"type": "join", "room": "keep", "name": "Fay"})).await.unwrap();
        assert!(matches!(answer, Answer::Welcome(_)), "{answer:?}");
        fay.leave().await;
        // With n2 gone nobody takes new rooms: a clear refusal, nothing created.
        n2.shutdown(secs(4)).await;
        let client = TestClient::connect(&ws_of(&b1), ClientOptions::default()).await.unwrap();
        client.send_json(&json!({"type": "join", "room": "new-c", "name": "Gus"})).unwrap();
        let error = client.expect_message("error", secs(10)).await.unwrap();
        assert_eq!(error["code"], "cluster_unavailable", "{error}");
        let message = error["message"].as_str().unwrap_or("");
        assert!(message.contains("shutting down") && message.contains("no other node"), "{message}");
        let (status, body) = http(&b1, "POST", "/api/rooms", Some(json!({"code": "api-c"}))).await;
        assert_eq!((status, body["error"].as_str()), (503, Some("node_draining")), "{body}");
        assert!(body.get("node_url").is_none(), "no node to name: {body}");
        assert_eq!(n1.room_codes(), vec!["keep".to_owned()], "nothing new opened on n1");
        assert_eq!(lock_of(&mut con.clone(), "new-c").await, None);
        // The last one leaves: the drain is over.
        ann.leave().await;
    };
    let ended = tokio::select! {
        d = &mut drain => panic!("the drain ended while n1's room had people in it: {d}"),
        () = body => tokio::time::timeout(secs(10), &mut drain).await.expect("the drain ends once the room is empty"),
    };
    assert_eq!(ended, parlor::Drained::Empty);
    drop(drain);
    n1.shutdown(secs(4)).await;
    assert_eq!(node_field(&mut con, "n1", "url").await, None, "n1 left");
    assert_eq!(lock_of(&mut con, "keep").await, None, "and released its room");
}
