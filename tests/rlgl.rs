//! Red light, green light over the real WebSocket, with latency made real: players reach the
//! server through an in-test TCP proxy that holds every chunk for a fixed time each way (so
//! the server's own WebSocket Ping frames see the delay too, and its round-trip figure is the
//! path's). Clients that stop the instant they read `red` are never eliminated, at 10 ms or
//! 200 ms each way; the same clients running on for 300 ms after reading it all are. A
//! client that writes latency or clock fields into its moves gets exactly the same outcome.
//! And what a client could abuse — claimed steps beyond the cap, moves after finishing or
//! going out, the light from a player — is refused or capped and changes nothing else.

use crate::support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use support::server_with;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

const LONG: Duration = Duration::from_secs(20);

/// A TCP proxy on 127.0.0.1 in front of `target` that delivers every chunk `delay` after it
/// was read, in order, both ways.
async fn delaying_proxy(target: SocketAddr, delay: Duration) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((inbound, _)) = listener.accept().await {
            let Ok(outbound) = TcpStream::connect(target).await else { continue };
            let _ = (inbound.set_nodelay(true), outbound.set_nodelay(true));
            let (in_read, in_write) = inbound.into_split();
            let (out_read, out_write) = outbound.into_split();
            tokio::spawn(pipe(in_read, out_write, delay));
            tokio::spawn(pipe(out_read, in_write, delay));
        }
    });
    addr
}

/// Copy `from` to `to`, each chunk held until `delay` after it arrived.
async fn pipe(mut from: tokio::net::tcp::OwnedReadHalf, mut to: tokio::net::tcp::OwnedWriteHalf, delay: Duration) {
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let writer = tokio::spawn(async move {
        while let Some((due, bytes)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if to.write_all(&bytes).await.is_err() {
                break;
            }
        }
        let _ = to.shutdown().await;
    });
    let mut buf = vec![0u8; 64 * 1024];
    while let Ok(n) = from.read(&mut buf).await {
        if n == 0 || tx.send((Instant::now() + delay, buf[..n].to_vec())).is_err() {
            break;
        }
    }
    drop(tx);
    let _ = writer.await;
}

/// How a player behaves at red.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    /// Never moves (the host, a watcher).
    Idle,
    /// Moves every 100 ms while the light it last read is green; stops the instant it reads red.
    StopOnRed,
    /// As [`Mode::StopOnRed`], but keeps moving for this long after reading red (a last move
    /// exactly then).
    RunOn(Duration),
}

/// A client in its own task, reading all the time (so it answers Pings as a browser does).
struct Player {
    name: String,
    id: String,
    seen: Arc<Mutex<Vec<Value>>>,
    mode: Arc<Mutex<Mode>>,
    out: mpsc::UnboundedSender<Value>,
}

impl Player {
    /// Connects to `addr`, joins `room` (creating it as an rlgl room) and plays in `mode`;
    /// with `liar`, every move also claims a huge latency and send times of its own.
    async fn join(addr: SocketAddr, room: &str, name: &str, mode: Mode, liar: bool) -> Player {
        let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws")).await.expect("connects");
        let join = json!({"type": "join", "room": room, "name": name, "kind": "rlgl"});
        ws.send(Message::Text(join.to_string().into())).await.unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mode = Arc::new(Mutex::new(mode));
        let (out, mut rx) = mpsc::unbounded_channel::<Value>();
        let (seen2, mode2) = (seen.clone(), mode.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            // Ticks missed while standing still are skipped, not sent in a burst at the next green.
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            let mut light = String::new();
            let mut red_read: Option<Instant> = None;
            let mut last_move: Option<Instant> = None;
            let mut out_of_game = false;
            let mut my_id = String::new();
            loop {
                let mode = *mode2.lock().unwrap();
                let run_on = match mode {
                    Mode::RunOn(d) => Some(d),
                    _ => None,
                };
                let last_at = red_read.zip(run_on).map(|(r, d)| r + d).filter(|_| last_move.is_none());
                let moving = match mode {
                    Mode::Idle => false,
                    _ if out_of_game => false,
                    _ if light == "green" => true,
                    _ if light == "red" => red_read.zip(run_on).is_some_and(|(r, d)| Instant::now() < r + d),
                    _ => false,
                };
                let step = |liar: bool| {
                    let mut m = json!({"type": "move", "steps": 1});
                    if liar {
                        let now = unix_ms();
                        m["latency"] = json!(5_000);
                        m["rtt_ms"] = json!(5_000);
                        m["t"] = json!(now - 5_000);
                        m["sent_at"] = json!(now - 5_000);
                    }
                    Message::Text(m.to_string().into())
                };
                tokio::select! {
                    frame = ws.next() => match frame {
                        Some(Ok(Message::Text(text))) => {
                            let v: Value = serde_json::from_str(text.as_str()).unwrap();
                            if v["type"] == "welcome" {
                                my_id = v["id"].as_str().unwrap_or("").to_owned();
                            }
                            if v["type"] == "phase" {
                                light = v["phase"].as_str().unwrap_or("").to_owned();
                                red_read = (light == "red").then(Instant::now);
                                last_move = None;
                            }
                            if v["type"] == "eliminated" && v["id"] == my_id.as_str() {
                                out_of_game = true;
                            }
                            seen2.lock().unwrap().push(v);
                        }
                        Some(Ok(_)) => {}
                        _ => break,
                    },
                    msg = rx.recv() => match msg {
                        Some(m) => { let _ = ws.send(Message::Text(m.to_string().into())).await; }
                        None => break,
                    },
                    _ = tick.tick(), if moving => { let _ = ws.send(step(liar)).await; }
                    _ = sleep_until_opt(last_at), if !out_of_game && light == "red" => {
                        last_move = Some(Instant::now());
                        let _ = ws.send(step(liar)).await;
                    }
                }
            }
        });
        let mut p = Player { name: name.to_owned(), id: String::new(), seen, mode, out };
        let welcome = p.wait_for("welcome", |_| true).await;
        p.id = welcome["id"].as_str().unwrap().to_owned();
        p
    }

    fn send(&self, v: Value) {
        self.out.send(v).unwrap();
    }

    fn set_mode(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    fn find(&self, ty: &str, pred: &impl Fn(&Value) -> bool) -> Option<Value> {
        self.seen.lock().unwrap().iter().find(|v| v["type"] == ty && pred(v)).cloned()
    }

    fn all(&self, ty: &str) -> Vec<Value> {
        self.seen.lock().unwrap().iter().filter(|v| v["type"] == ty).cloned().collect()
    }

    fn count(&self, ty: &str, pred: impl Fn(&Value) -> bool) -> usize {
        self.seen.lock().unwrap().iter().filter(|v| v["type"] == ty && pred(v)).count()
    }

    /// The first message of type `ty` for which `pred` holds, polling for up to 20 s.
    async fn wait_for(&self, ty: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + LONG;
        loop {
            if let Some(v) = self.find(ty, &pred) {
                return v;
            }
            assert!(Instant::now() < deadline, "{}: no {ty} within {LONG:?}; saw {:?}", self.name, self.types());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits until `n` messages of type `ty` satisfy `pred`.
    async fn wait_count(&self, ty: &str, n: usize, pred: impl Fn(&Value) -> bool) {
        let deadline = Instant::now() + LONG;
        while self.count(ty, &pred) < n {
            assert!(Instant::now() < deadline, "{}: fewer than {n} {ty} within {LONG:?}", self.name);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn types(&self) -> Vec<String> {
        self.seen.lock().unwrap().iter().map(|v| v["type"].as_str().unwrap_or("?").to_owned()).collect()
    }

    /// Waits until the server's own figure for this connection (`pong.rtt_ms`) is at least
    /// `min_ms`: its Ping frames have crossed the proxy.
    async fn wait_rtt(&self, min_ms: u64) -> u64 {
        let deadline = Instant::now() + LONG;
        loop {
            self.send(json!({"type": "ping", "t": 1}));
            tokio::time::sleep(Duration::from_millis(100)).await;
            let best = self.all("pong").iter().filter_map(|p| p["rtt_ms"].as_u64()).rfind(|ms| *ms >= min_ms);
            if let Some(ms) = best {
                return ms;
            }
            assert!(Instant::now() < deadline, "{}: no rtt_ms >= {min_ms}: {:?}", self.name, self.all("pong"));
        }
    }
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_neither_punishes_nor_helps_at_10_and_200_ms_each_way() {
    // Pings every 100 ms, so the server's figure for each path settles within a second. The
    // game is logged, to read every judgment's inputs back at the end.
    let dir = std::env::temp_dir().join(format!("parlor-rlgl-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let log_dir = dir.to_string_lossy().into_owned();
    let server = server_with(|c| {
        c.session.ping_seconds = 0.1;
        c.games.log_dir = log_dir.clone();
    })
    .await;
    let room = "fair-light";
    let host = Player::join(server.http_addr, room, "Host", Mode::Idle, false).await;
    let mut players = Vec::new();
    for delay_ms in [10u64, 200] {
        let proxy = delaying_proxy(server.http_addr, Duration::from_millis(delay_ms)).await;
        for liar in [false, true] {
            let name = format!("{}{delay_ms}", if liar { "Liar" } else { "Honest" });
            players.push((delay_ms, Player::join(proxy, room, &name, Mode::StopOnRed, liar).await));
        }
    }
    for (delay_ms, p) in &players {
        let rtt = p.wait_rtt(2 * delay_ms).await;
        println!("{}: the server measures {rtt} ms round trip ({delay_ms} ms each way)", p.name);
    }

    host.send(json!({"type": "start_game", "settings": {"auto": false, "seconds": 600, "distance": 100000}}));
    let phases = |n: usize, name: &'static str| {
        let all: Vec<&Player> = std::iter::once(&host).chain(players.iter().map(|(_, p)| p)).collect();
        async move {
            for p in all {
                p.wait_count("phase", n, |v| v["phase"] == name).await;
            }
        }
    };
    phases(1, "green").await;
    // Everyone runs for a while; the host turns the light red and holds it for a second and a
    // half (past T + grace + the largest allowance), then green again.
    players[3].1.wait_count("progress", 5, |_| true).await;
    host.send(json!({"type": "light", "color": "red"}));
    phases(1, "red").await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    host.send(json!({"type": "light", "color": "green"}));
    phases(2, "green").await;
    for (_, p) in &players {
        assert_eq!(p.all("eliminated"), Vec::<Value>::new(), "{}: stopped on reading red", p.name);
    }
    let distances = host.all("progress").last().unwrap()["distances"].clone();
    for (_, p) in &players {
        assert!(distances[&p.id].as_u64().unwrap() > 0, "{} ran: {distances}", p.name);
    }

    // Round two: the same clients run on for 300 ms after they read red.
    for (_, p) in &players {
        p.set_mode(Mode::RunOn(Duration::from_millis(300)));
    }
    let before = host.all("progress").len();
    host.wait_count("progress", before + 3, |_| true).await;
    host.send(json!({"type": "light", "color": "red"}));
    for (_, p) in &players {
        host.wait_for("eliminated", |v| v["id"] == p.id.as_str()).await;
    }
    for (delay_ms, p) in &players {
        let out = host.find("eliminated", &|v| v["id"] == p.id.as_str()).unwrap();
        assert_eq!(out["cause"], "moved");
        let j = &out["judgment"];
        let (red_at, arrived, deadline) =
            (j["red_at"].as_u64().unwrap(), j["arrived_at"].as_u64().unwrap(), j["deadline"].as_u64().unwrap());
        let rtt = j["rtt_ms"].as_u64().unwrap();
        assert!(rtt >= 2 * delay_ms && rtt < 2 * delay_ms + 150, "{}: the server's figure, not the claim: {j}", p.name);
        assert!(arrived > deadline, "{j}");
        println!(
            "{}: out; move arrived {} ms after red, deadline {} ms after red (grace {} + allowance {}), rtt {rtt} ms",
            p.name,
            arrived - red_at,
            deadline - red_at,
            j["grace_ms"],
            j["allowance_ms"]
        );
    }
    for (_, p) in &players {
        p.wait_count("eliminated", 4, |_| true).await;
        assert_eq!(p.count("eliminated", |v| v["id"] == p.id.as_str()), 1, "{}: out once", p.name);
    }

    // Everyone leaves: the room closes and its log is complete. It replays to the same
    // events, and it shows how close the stopping clients' last moves came to the line.
    for p in players.iter().map(|(_, p)| p).chain([&host]) {
        p.send(json!({"type": "leave"}));
    }
    let records = wait_for_log(&dir).await;
    let replay = parlor_signaling::gamelog::replay(&parlor_signaling::Registry::builtin(), &records).unwrap();
    assert_eq!(replay.mismatch, None);
    for (delay_ms, p) in &players {
        let margin = first_red_margin(&records, &p.id);
        println!("{}: {delay_ms} ms each way; first red: last move {margin}", p.name);
    }
}

/// The log in `dir` once it holds a whole game (the room closed).
async fn wait_for_log(dir: &std::path::Path) -> Vec<parlor_signaling::gamelog::Record> {
    let deadline = Instant::now() + LONG;
    loop {
        let text = std::fs::read_dir(dir)
            .ok()
            .and_then(|mut d| d.next())
            .and_then(|e| std::fs::read_to_string(e.ok()?.path()).ok())
            .unwrap_or_default();
        if let Ok(records) = parlor_signaling::gamelog::parse(&text) {
            // Written out whole when the room closes (a buffer's worth before that need not end
            // on a line).
            if text.ends_with('\n') && text.matches("\"eliminated\"").count() >= 4 {
                return records;
            }
        }
        assert!(Instant::now() < deadline, "no complete game log in {}", dir.display());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// For `id`, the last `move` that arrived during the first red: how long after red, against
/// the deadline the server judged by (from the logged round trips).
fn first_red_margin(records: &[parlor_signaling::gamelog::Record], id: &str) -> String {
    use parlor_signaling::game::Input;
    use parlor_signaling::gamelog::Record;
    let (mut at, mut red_at, mut rtt, mut reds, mut last) = (0, None, None, 0, None);
    for r in records {
        match r {
            Record::Input { at: t, who, input } => {
                at = *t;
                match input {
                    Input::Rtt(m) if who == id => rtt = Some(m.ms),
                    Input::Game(v) if who == id && v["type"] == "move" && reds == 1 => {
                        if let Some(red) = red_at {
                            last = Some((at - red, rtt));
                        }
                    }
                    _ => {}
                }
            }
            Record::Timeout { at: t } => at = *t,
            Record::Event { event } if event["phase"]["name"] == "red" => {
                red_at = Some(at);
                reds += 1;
            }
            Record::Event { event } if event["phase"]["name"] == "green" => red_at = None,
            _ => {}
        }
    }
    match last {
        Some((after, Some(rtt))) => {
            let deadline = 200 + u64::from(rtt.min(500));
            assert!(after <= deadline, "{id}: counted at {after} ms, deadline {deadline}");
            format!("arrived {after} ms after red, {} ms inside its deadline (200 + rtt {rtt})", deadline - after)
        }
        Some((after, None)) => format!("arrived {after} ms after red, no rtt"),
        None => "arrived before red".into(),
    }
}

#[tokio::test]
async fn what_a_client_could_abuse_is_refused_or_capped() {
    let server = server_with(|_| {}).await;
    let room = "abuse-light";
    let host = Player::join(server.http_addr, room, "Host", Mode::Idle, false).await;
    let a = Player::join(server.http_addr, room, "Ann", Mode::Idle, false).await;
    let b = Player::join(server.http_addr, room, "Bob", Mode::Idle, false).await;
    // A player may not start, nor switch the light.
    a.send(json!({"type": "light", "color": "red"}));
    a.wait_for("error", |e| e["code"] == "wrong_phase" || e["code"] == "not_host").await;
    let settings = json!({"auto": false, "seconds": 600, "distance": 30, "max_steps_per_second": 10});
    host.send(json!({"type": "start_game", "settings": settings}));
    for p in [&host, &a, &b] {
        p.wait_for("phase", |v| v["phase"] == "green").await;
    }
    let started = Instant::now();
    // Claims far beyond the cap: a full bucket (10) and 10 a second, whatever is claimed.
    for _ in 0..10 {
        a.send(json!({"type": "move", "steps": 1_000_000}));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    b.send(json!({"type": "move", "steps": 3}));
    let elapsed = started.elapsed().as_secs_f64();
    host.wait_for("progress", |p| p["distances"][&b.id] == 3).await;
    let got = host.all("progress").last().unwrap()["distances"][&a.id].as_u64().unwrap();
    assert!(got >= 10 && f64::from(got as u32) <= 10.0 + 10.0 * (elapsed + 0.2), "capped: {got} in {elapsed:.2} s");
    assert!(host.all("error").is_empty());

    // A player's light is refused and nothing changes.
    b.send(json!({"type": "light", "color": "red"}));
    assert_eq!(b.wait_for("error", |e| e["code"] == "not_host").await["code"], "not_host");
    // A mafia message in an rlgl room, and a malformed move.
    b.send(json!({"type": "vote", "target": a.id}));
    b.wait_for("error", |e| e["code"] == "wrong_kind").await;
    b.send(json!({"type": "move", "steps": -4}));
    b.wait_for("error", |e| e["code"] == "bad_field").await;

    // Ann reaches the finish (30) and moves on: refused, nothing counted.
    let deadline = Instant::now() + LONG;
    while a.find("finished", &|f| f["id"] == a.id.as_str()).is_none() {
        assert!(Instant::now() < deadline, "Ann never finished");
        a.send(json!({"type": "move", "steps": 10}));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(host.wait_for("finished", |_| true).await["rank"], 1);
    a.send(json!({"type": "move", "steps": 10}));
    a.wait_for("error", |e| e["code"] == "not_allowed").await;

    // Bob moves a second into red: out, once; moving again is refused, and so is moving in the
    // next green.
    host.send(json!({"type": "light", "color": "red"}));
    b.wait_for("phase", |v| v["phase"] == "red").await;
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    b.send(json!({"type": "move", "steps": 1}));
    b.wait_for("eliminated", |e| e["id"] == b.id.as_str()).await;
    b.send(json!({"type": "move", "steps": 1}));
    b.wait_count("error", 1, |e| e["code"] == "not_allowed" || e["code"] == "wrong_phase").await;
    // Everyone has finished or is out: the game is over, with the ranking.
    let over = host.wait_for("game_over", |_| true).await;
    assert_eq!(
        over["ranking"],
        json!([
            {"id": a.id, "rank": 1, "distance": 30, "status": "finished"},
            {"id": b.id, "rank": 2, "distance": 3, "status": "out"},
        ])
    );
    // Nothing of the refusals reached anyone else: one `eliminated`, one `finished`, and the
    // phases countdown, green, red, game_over.
    assert_eq!(host.all("eliminated").len(), 1);
    assert_eq!(host.all("finished").len(), 1);
    let phases: Vec<Value> = host.all("phase").iter().map(|p| p["phase"].clone()).collect();
    assert_eq!(phases, [json!("countdown"), json!("green"), json!("red"), json!("game_over")]);
}
