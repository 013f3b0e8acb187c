//! The room API and host access (docs/API.md): host keys, host tokens, PINs, locking, bad
//! input, lookup limits and `parlor token`. Everything on 127.0.0.1, ephemeral ports.

use crate::support;

use std::time::Duration;

use serde_json::{json, Value};
use support::{server_with, Got, Ws};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const KEY: &str = "test-host-key-0123456789";
const SECRET: &str = "test-secret-0123456789-0123456789-abcdef";

/// A response: status, headers (lower-case names), body.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("JSON body expected ({e}): {}", self.body))
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.0 request (the server closes after the response).
async fn request(server: &parlor::Server, method: &str, path: &str, auth: Option<&str>, body: Option<&str>) -> Reply {
    request_via(server, None, method, path, auth, body).await
}

/// The address a reverse proxy on this machine says its client has.
const CLIENT: &str = "203.0.113.7";

/// [`request`] as a local reverse proxy sends it for a client: with `X-Forwarded-For`.
async fn request_via(
    server: &parlor::Server,
    forwarded_for: Option<&str>,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: Option<&str>,
) -> Reply {
    let mut stream = TcpStream::connect(server.http_addr).await.expect("connect");
    let mut head = format!("{method} {path} HTTP/1.0\r\nHost: {}\r\n", server.http_addr);
    if let Some(client) = forwarded_for {
        head.push_str(&format!("X-Forwarded-For: 10.9.8.7, {client}\r\n"));
    }
    if let Some(a) = auth {
        head.push_str(&format!("Authorization: Bearer {a}\r\n"));
    }
    let body = body.unwrap_or("");
    head.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n\r\n", body.len()));
    stream.write_all(head.as_bytes()).await.expect("send head");
    stream.write_all(body.as_bytes()).await.expect("send body");
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut raw))
        .await
        .expect("a response within 20 s")
        .expect("read");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split_whitespace().nth(1)).and_then(|s| s.parse().ok()).unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Reply { status, headers, body: body.to_owned() }
}

/// A WebSocket as a local reverse proxy opens it for `client`.
async fn ws_via(server: &parlor::Server, client: &str) -> Ws {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = format!("ws://{}/ws", server.http_addr).into_client_request().unwrap();
    req.headers_mut().insert("x-forwarded-for", client.parse().unwrap());
    let (stream, _) = tokio_tungstenite::connect_async(req).await.expect("websocket connects");
    Ws { stream }
}

async fn host_key_server() -> parlor::Server {
    server_with(|c| {
        c.auth.mode = parlor::config::AuthMode::HostKey;
        c.auth.host_keys = vec![KEY.into()];
        c.auth.secret = SECRET.into();
    })
    .await
}

/// Host-key mode with a lookup burst of 3 that does not refill within a test.
async fn lookup_limited_server() -> parlor::Server {
    server_with(|c| {
        c.auth.mode = parlor::config::AuthMode::HostKey;
        c.auth.host_keys = vec![KEY.into()];
        c.auth.lookup_burst = 3;
        c.auth.lookups_per_minute = 0.01;
    })
    .await
}

/// `join` with extra fields; the first message back.
async fn join_with(ws: &mut Ws, room: &str, name: &str, extra: Value) -> Value {
    let mut msg = json!({"type": "join", "room": room, "name": name});
    for (k, v) in extra.as_object().expect("an object") {
        msg[k] = v.clone();
    }
    ws.send(msg).await;
    ws.json().await
}

fn assert_error(v: &Value, code: &str) {
    assert_eq!(v["type"], "error", "expected error {code}, got {v}");
    assert_eq!(v["code"], code, "{v}");
}

#[tokio::test]
async fn host_key_mode_creates_rooms_only_with_a_key() {
    let server = host_key_server().await;
    let r = request(&server, "POST", "/api/rooms", None, Some("{}")).await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    assert_eq!(r.json()["error"], "unauthorized");
    let r = request(&server, "POST", "/api/rooms", Some("not-the-key-0123456789"), Some("{}")).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(server.room_count(), 0);

    let r = request(&server, "POST", "/api/rooms", Some(KEY), None).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let created = r.json();
    let code = created["code"].as_str().unwrap().to_owned();
    assert!(parlor_signaling::ids::is_valid_code(&code), "{code}");
    assert_eq!(r.header("location"), Some(format!("/api/rooms/{code}").as_str()));
    assert_eq!(created["join_url"], format!("http://{}/r/{code}", server.http_addr));
    let qr = created["qr_url"].as_str().unwrap();
    let qr_path = qr.strip_prefix(&format!("http://{}", server.http_addr)).expect("qr_url on this server");
    let (status, content_type, svg) = support::http_get(&server, qr_path).await;
    assert_eq!((status, content_type.as_str()), (200, "image/svg+xml"));
    assert!(svg.contains("<svg"));
    assert!(created["host_token"].as_str().unwrap().split('.').count() == 3, "a JWT");
    assert!(created["host_token_expires_at"].as_u64().unwrap() > 1_700_000_000);
    assert_eq!(server.room_count(), 1);

    // The list takes a key.
    assert_eq!(request(&server, "GET", "/api/rooms", None, None).await.status, 401);
    assert_eq!(request(&server, "GET", "/api/rooms", Some("wrong-key-0123456789"), None).await.status, 403);
    let r = request(&server, "GET", "/api/rooms", Some(KEY), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let rooms = r.json()["rooms"].as_array().unwrap().clone();
    assert_eq!(rooms.len(), 1);
    assert_eq!(rooms[0]["code"], code.as_str());
    assert_eq!(rooms[0]["phase"], "lobby");
    // An empty API-made room stays open: it waits for its players.
    let r = request(&server, "GET", &format!("/api/rooms/{code}"), None, None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["participants"], json!([]));
    assert_eq!(r.json()["host"], Value::Null);
}

#[tokio::test]
async fn join_to_an_unknown_room_in_host_key_mode_is_refused() {
    let server = host_key_server().await;
    let mut ws = Ws::connect(&server).await;
    assert_error(&join_with(&mut ws, "no-such-room", "Ann", json!({})).await, "room_not_found");
    assert_eq!(server.room_count(), 0, "no room was created");
    // The socket stays open: a join to a room that exists works on it.
    let created = request(&server, "POST", "/api/rooms", Some(KEY), Some("{}")).await.json();
    let code = created["code"].as_str().unwrap();
    assert_eq!(join_with(&mut ws, code, "Ann", json!({})).await["type"], "welcome");
}

#[tokio::test]
async fn the_host_token_holds_the_powers() {
    let server = host_key_server().await;
    let created = request(&server, "POST", "/api/rooms", Some(KEY), Some("{}")).await.json();
    let code = created["code"].as_str().unwrap();
    let token = created["host_token"].as_str().unwrap();

    // A player who comes first does not become host.
    let mut ann = Ws::connect(&server).await;
    let welcome = ann.join(code, "Ann").await;
    assert_eq!(welcome["host"], "", "nobody holds the powers yet: {welcome}");
    ann.send(json!({"type": "start_game"})).await;
    assert_error(&ann.json().await, "not_host");
    ann.send(json!({"type": "lock", "locked": true})).await;
    assert_error(&ann.json().await, "not_host");

    // A wrong token, or one for another room, is refused.
    let mut hal = Ws::connect(&server).await;
    assert_error(&join_with(&mut hal, code, "Hal", json!({"token": "x.y.z"})).await, "bad_token");
    let other = request(&server, "POST", "/api/rooms", Some(KEY), Some("{}")).await.json();
    let other_token = other["host_token"].as_str().unwrap();
    assert_error(&join_with(&mut hal, code, "Hal", json!({"token": other_token})).await, "bad_token");

    // The token holder joins as host.
    let welcome = join_with(&mut hal, code, "Hal", json!({"token": token})).await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    let hal_id = welcome["id"].as_str().unwrap().to_owned();
    assert_eq!(welcome["host"], hal_id.as_str());
    assert_eq!(ann.expect("host_changed").await["host"], hal_id.as_str());

    // The host leaves: the powers pass to Ann, as always.
    hal.send(json!({"type": "leave"})).await;
    let ann_id = welcome["participants"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(ann.expect("host_changed").await["host"], ann_id.as_str());
    // A host-token join takes them back.
    let mut hal2 = Ws::connect(&server).await;
    let welcome = join_with(&mut hal2, code, "Hal", json!({"token": token})).await;
    let hal2_id = welcome["id"].as_str().unwrap().to_owned();
    assert_eq!(welcome["host"], hal2_id.as_str(), "{welcome}");
    assert_eq!(ann.expect("host_changed").await["host"], hal2_id.as_str());
    ann.send(json!({"type": "kick", "id": hal2_id})).await;
    assert_error(&ann.expect("error").await, "not_host");
    // The room API agrees.
    let state = request(&server, "GET", &format!("/api/rooms/{code}"), None, None).await.json();
    assert_eq!(state["host"], hal2_id.as_str());
    assert_eq!(state["participants"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_pin_keeps_strangers_out() {
    let server = host_key_server().await;
    let body = json!({"pin": "4321"}).to_string();
    let created = request(&server, "POST", "/api/rooms", Some(KEY), Some(&body)).await.json();
    let code = created["code"].as_str().unwrap();
    let mut ws = Ws::connect(&server).await;
    assert_error(&join_with(&mut ws, code, "Ann", json!({})).await, "bad_pin");
    assert_error(&join_with(&mut ws, code, "Ann", json!({"pin": "1234"})).await, "bad_pin");
    assert_eq!(join_with(&mut ws, code, "Ann", json!({"pin": "4321"})).await["type"], "welcome");
    // The host token needs no PIN.
    let mut hal = Ws::connect(&server).await;
    let w = join_with(&mut hal, code, "Hal", json!({"token": created["host_token"]})).await;
    assert_eq!(w["type"], "welcome", "{w}");
    let state = request(&server, "GET", &format!("/api/rooms/{code}"), None, None).await.json();
    assert_eq!(state["pin"], true);
}

#[tokio::test]
async fn a_locked_room_refuses_newcomers_but_not_resumes() {
    // Open mode, a room made by joining: its first participant is host.
    let server = server_with(|c| c.session.grace_seconds = 30.0).await;
    let mut ann = Ws::connect(&server).await;
    let welcome = ann.join("lockme", "Ann").await;
    assert_eq!(welcome["locked"], false);
    let mut bob = Ws::connect(&server).await;
    let bob_welcome = bob.join("lockme", "Bob").await;
    let bob_token = bob_welcome["resume_token"].as_str().unwrap().to_owned();

    bob.send(json!({"type": "lock", "locked": true})).await;
    assert_error(&bob.expect("error").await, "not_host");
    ann.send(json!({"type": "lock", "locked": true})).await;
    assert_eq!(ann.expect("locked").await["locked"], true);
    assert_eq!(bob.expect("locked").await["locked"], true);

    let mut cid = Ws::connect(&server).await;
    assert_error(&join_with(&mut cid, "lockme", "Cid", json!({})).await, "room_locked");

    // Bob's connection drops; he takes his seat back although the room is locked.
    drop(bob);
    let mut bob = Ws::connect(&server).await;
    let back = join_with(&mut bob, "lockme", "Bob", json!({"resume": bob_token})).await;
    assert_eq!(back["type"], "welcome", "{back}");
    assert_eq!(back["locked"], true);
    assert_eq!(back["id"], bob_welcome["id"]);

    ann.send(json!({"type": "lock", "locked": false})).await;
    assert_eq!(ann.expect("locked").await["locked"], false);
    assert_eq!(join_with(&mut cid, "lockme", "Cid", json!({})).await["type"], "welcome");
}

#[tokio::test]
async fn open_mode_rooms_from_the_api() {
    let server = server_with(|c| c.auth.secret = SECRET.into()).await;
    // Anyone may create; a key is not needed, but a wrong one is refused.
    assert_eq!(request(&server, "POST", "/api/rooms", Some("bad-key-0123456789"), Some("{}")).await.status, 403);
    let body = json!({"code": "game-night", "locked": false, "settings": {"phase_seconds": {"role_reveal": 1.5}}});
    let r = request(&server, "POST", "/api/rooms", None, Some(&body.to_string())).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["code"], "game-night");
    // The same code again: conflict.
    let r = request(&server, "POST", "/api/rooms", None, Some(&json!({"code": "game-night"}).to_string())).await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(r.json()["error"], "room_exists");

    // In open mode the first to join holds the powers, as in a room made by joining.
    let mut players = Vec::new();
    for name in ["Ann", "Bob", "Cid", "Dee"] {
        let mut ws = Ws::connect(&server).await;
        ws.join("game-night", name).await;
        players.push(ws);
    }
    // The room's settings fill in what start_game leaves out: a 1.5 s role reveal.
    players[0].send(json!({"type": "start_game"})).await;
    let phase = players[0].expect("phase").await;
    assert_eq!(phase["phase"], "role_reveal");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let left = phase["ends_at"].as_i64().unwrap() - now;
    assert!((0..=1600).contains(&left), "role_reveal ends in {left} ms, not the default 10 s");
}

#[tokio::test]
async fn bad_requests_get_clear_errors() {
    let server = host_key_server().await;
    let post = |body: &'static str| {
        let server = &server;
        async move { request(server, "POST", "/api/rooms", Some(KEY), Some(body)).await }
    };
    for (body, error) in [
        ("{not json", "bad_json"),
        ("[1, 2]", "bad_json"),
        (r#"{"pin": 1234}"#, "bad_field"),
        (r#"{"colour": "red"}"#, "bad_field"),
        (r#"{"pin": ""}"#, "bad_field"),
        (r#"{"code": "no spaces"}"#, "bad_field"),
        (r#"{"settings": {"mafia": 0}}"#, "bad_field"),
        (r#"{"settings": {"mafia": -1}}"#, "bad_field"),
        (r#"{"settings": {"phase_seconds": {"lobby": 5}}}"#, "bad_field"),
        (r#"{"settings": {"phase_seconds": {"night": 0}}}"#, "bad_field"),
        (r#"{"settings": {"host_plays": "yes"}}"#, "bad_field"),
    ] {
        let r = post(body).await;
        assert_eq!(r.status, 400, "{body} → {}", r.body);
        let v = r.json();
        assert_eq!(v["error"], error, "{body} → {v}");
        assert!(!v["message"].as_str().unwrap().is_empty());
    }
    assert_eq!(server.room_count(), 0);

    // Unknown and invalid codes.
    let r = request(&server, "GET", "/api/rooms/abcd-efgh-23", None, None).await;
    assert_eq!((r.status, r.json()["error"].as_str()), (404, Some("room_not_found")));
    assert_eq!(request(&server, "GET", "/api/rooms/bad%20code", None, None).await.status, 400);
    assert_eq!(request(&server, "DELETE", "/api/rooms/abcd-efgh-23", Some(KEY), None).await.status, 404);

    // Closing a room: its host token or a host key; anything else is refused.
    let created = request(&server, "POST", "/api/rooms", Some(KEY), Some("{}")).await.json();
    let code = created["code"].as_str().unwrap();
    let path = format!("/api/rooms/{code}");
    let mut ann = Ws::connect(&server).await;
    ann.join(code, "Ann").await;
    assert_eq!(request(&server, "DELETE", &path, None, None).await.status, 401);
    assert_eq!(request(&server, "DELETE", &path, Some("wrong-0123456789abcdef"), None).await.status, 403);
    let other = request(&server, "POST", "/api/rooms", Some(KEY), Some("{}")).await.json();
    let r = request(&server, "DELETE", &path, other["host_token"].as_str(), None).await;
    assert_eq!(r.status, 403, "another room's token");
    let r = request(&server, "DELETE", &path, created["host_token"].as_str(), None).await;
    assert_eq!(r.status, 204, "{}", r.body);
    assert_error(&ann.expect("error").await, "room_closed");
    assert_eq!(ann.closed().await, Some(1000));
    assert_eq!(request(&server, "GET", &path, None, None).await.status, 404);
    // A host key closes any room.
    let other_code = other["code"].as_str().unwrap();
    assert_eq!(request(&server, "DELETE", &format!("/api/rooms/{other_code}"), Some(KEY), None).await.status, 204);
}

#[tokio::test]
async fn lookups_of_unknown_codes_are_rate_limited() {
    let server = lookup_limited_server().await;
    let code =
        request(&server, "POST", "/api/rooms", Some(KEY), Some("{}")).await.json()["code"].as_str().unwrap().to_owned();
    // Found codes cost nothing.
    for _ in 0..5 {
        let r = request_via(&server, Some(CLIENT), "GET", &format!("/api/rooms/{code}"), None, None).await;
        assert_eq!(r.status, 200);
    }
    // Two misses over HTTP and one over the WebSocket use up the burst of 3.
    for i in 0..2 {
        let r = request_via(&server, Some(CLIENT), "GET", &format!("/api/rooms/miss-{i}"), None, None).await;
        assert_eq!(r.status, 404);
    }
    let mut ws = ws_via(&server, CLIENT).await;
    assert_error(&join_with(&mut ws, "miss-ws", "Ann", json!({})).await, "room_not_found");
    let r = request_via(&server, Some(CLIENT), "GET", "/api/rooms/miss-3", None, None).await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(r.json()["error"], "rate_limited");
    assert!(r.header("retry-after").and_then(|v| v.parse::<u64>().ok()).is_some_and(|s| s >= 1));
    // Now even a code that exists is refused, so the answer tells nothing.
    let r = request_via(&server, Some(CLIENT), "GET", &format!("/api/rooms/{code}"), None, None).await;
    assert_eq!(r.status, 429);
    // Other clients are not affected; nor are local tools that name no client.
    let r = request_via(&server, Some("203.0.113.8"), "GET", &format!("/api/rooms/{code}"), None, None).await;
    assert_eq!(r.status, 200);
    for _ in 0..5 {
        assert_eq!(request(&server, "GET", "/api/rooms/local-miss", None, None).await.status, 404);
    }
    assert_error(&join_with(&mut ws, "miss-ws2", "Ann", json!({})).await, "rate_limited");
    assert_error(&join_with(&mut ws, &code, "Ann", json!({})).await, "rate_limited");
    // The socket stays open, not joined.
    ws.send(json!({"type": "ready", "ready": true})).await;
    assert_error(&ws.json().await, "not_joined");
}

#[tokio::test]
async fn parlor_token_prints_a_token_the_server_accepts() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_parlor"))
        .args(["token", "cli-room", "--ttl", "600"])
        .env("PARLOR_AUTH__SECRET", SECRET)
        .env("RUST_LOG", "off")
        .output()
        .expect("parlor token runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert_eq!(token.split('.').count(), 3, "{token}");

    let server = host_key_server().await;
    let r = request(&server, "POST", "/api/rooms", Some(KEY), Some(r#"{"code": "cli-room"}"#)).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let mut ann = Ws::connect(&server).await;
    ann.join("cli-room", "Ann").await;
    let mut hal = Ws::connect(&server).await;
    let welcome = join_with(&mut hal, "cli-room", "Hal", json!({"token": token})).await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    assert_eq!(welcome["host"], welcome["id"]);
    // The same token closes the room.
    assert_eq!(request(&server, "DELETE", "/api/rooms/cli-room", Some(&token), None).await.status, 204);

    // Without a configured secret the command refuses (the server could not check it).
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_parlor"))
        .args(["token", "cli-room"])
        .env_remove("PARLOR_AUTH__SECRET")
        .output()
        .expect("parlor token runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("auth.secret"));
}

#[tokio::test]
async fn a_closed_socket_does_not_matter_to_an_api_room() {
    // An API-made room outlives its last participant (until idle), so the host can come back.
    let server = host_key_server().await;
    let created = request(&server, "POST", "/api/rooms", Some(KEY), Some("{}")).await.json();
    let code = created["code"].as_str().unwrap();
    let mut ann = Ws::connect(&server).await;
    ann.join(code, "Ann").await;
    ann.send(json!({"type": "leave"})).await;
    assert!(matches!(ann.next().await, Got::Json(_) | Got::Closed(_)));
    let mut ben = Ws::connect(&server).await;
    assert_eq!(join_with(&mut ben, code, "Ben", json!({})).await["type"], "welcome");
}

#[tokio::test]
async fn open_mode_room_creation_is_limited_per_address() {
    let server = server_with(|c| {
        c.auth.host_keys = vec![KEY.into()];
        c.auth.lookup_burst = 2;
        c.auth.lookups_per_minute = 0.01;
    })
    .await;
    for _ in 0..2 {
        assert_eq!(request_via(&server, Some(CLIENT), "POST", "/api/rooms", None, None).await.status, 201);
    }
    let r = request_via(&server, Some(CLIENT), "POST", "/api/rooms", None, None).await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(r.json()["error"], "rate_limited");
    // A host key is not limited.
    assert_eq!(request_via(&server, Some(CLIENT), "POST", "/api/rooms", Some(KEY), None).await.status, 201);
    assert_eq!(server.room_count(), 3);
}

#[tokio::test]
async fn a_game_whose_host_came_by_token_replays_from_its_log() {
    let dir = std::env::temp_dir().join(format!("parlor-api-replay-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let log_dir = dir.to_string_lossy().into_owned();
    let server = server_with(|c| {
        c.auth.mode = parlor::config::AuthMode::HostKey;
        c.auth.host_keys = vec![KEY.into()];
        c.auth.secret = SECRET.into();
        c.games.log_dir = log_dir;
    })
    .await;
    let created = request(&server, "POST", "/api/rooms", Some(KEY), None).await.json();
    let code = created["code"].as_str().unwrap();
    let token = created["host_token"].clone();
    // Three players first, then the host: the host is not the first of the roster.
    let mut socks = Vec::new();
    for name in ["Ann", "Bob", "Cid"] {
        let mut ws = Ws::connect(&server).await;
        ws.join(code, name).await;
        socks.push(ws);
    }
    let mut hal = Ws::connect(&server).await;
    assert_eq!(join_with(&mut hal, code, "Hal", json!({"token": token})).await["type"], "welcome");
    hal.send(json!({"type": "start_game", "settings": {"phase_seconds": {"role_reveal": 30}}})).await;
    assert_eq!(hal.expect("phase").await["phase"], "role_reveal");
    // Mid-game, a second holder of the token takes the powers (as a spectator).
    let mut hal2 = Ws::connect(&server).await;
    let w = join_with(&mut hal2, code, "Hal2", json!({"token": token})).await;
    assert_eq!(hal.expect("host_changed").await["host"], w["id"]);
    // Closing the room ends the game's log.
    let status = request(&server, "DELETE", &format!("/api/rooms/{code}"), Some(KEY), None).await.status;
    assert_eq!(status, 204);
    assert_eq!(hal.closed().await, Some(1000));
    let mut logs = Vec::new();
    let found = support::wait_until(Duration::from_secs(5), || {
        logs = std::fs::read_dir(&dir).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
        logs.len() == 1 && std::fs::read_to_string(&logs[0]).is_ok_and(|t| t.contains("take_host"))
    })
    .await;
    assert!(found, "one game log with the host's token moves: {logs:?}");
    let text = std::fs::read_to_string(&logs[0]).unwrap();
    let records = parlor_signaling::gamelog::parse(&text).unwrap();
    let replay = parlor_signaling::gamelog::replay(&parlor_signaling::Registry::builtin(), &records).unwrap();
    assert_eq!(replay.mismatch, None, "the replay matches the recording");
    assert!(replay.events.len() > 3);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A room closed through the API and created again with the same code carries media again, three
/// times over. (The media layer keys each room instance apart — `code#instance` — so an old room
/// still winding down cannot close the new one's media; this test does not force that race, it
/// checks that the reopened rooms work.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_closed_and_created_again_carries_media() {
    use support::{ClientOptions, Kind, TestClient};
    let server = server_with(|c| c.auth.secret = SECRET.into()).await;
    let url = format!("ws://{}/ws", server.http_addr);
    let long = Duration::from_secs(20);
    for round in 0..3 {
        let r = request(&server, "POST", "/api/rooms", None, Some(&json!({"code": "again"}).to_string())).await;
        assert_eq!(r.status, 201, "round {round}: {}", r.body);
        let a = TestClient::join(&url, "again", "Ann", ClientOptions::publisher()).await.unwrap();
        let b = TestClient::join(&url, "again", "Bob", ClientOptions::publisher()).await.unwrap();
        a.wait_count(b.id(), Kind::Video, 10, long).await.unwrap();
        b.wait_count(a.id(), Kind::Video, 10, long).await.unwrap();
        let token = r.json()["host_token"].as_str().unwrap().to_owned();
        let d = request(&server, "DELETE", "/api/rooms/again", Some(&token), None).await;
        assert!(d.status == 204 || d.status == 200, "round {round}: DELETE → {} {}", d.status, d.body);
    }
}

/// Wrong PINs and resumes of unknown codes cost lookups like unknown codes do, and a resume says
/// the same whether the room exists or not.
#[tokio::test]
async fn wrong_pins_and_resumes_are_rate_limited_too() {
    let server = lookup_limited_server().await;
    let body = json!({"pin": "4321"}).to_string();
    let code = request(&server, "POST", "/api/rooms", Some(KEY), Some(&body)).await.json()["code"]
        .as_str()
        .unwrap()
        .to_owned();
    // A resume names no room it could reveal: an unknown room and an unknown token read alike.
    let mut ws = ws_via(&server, CLIENT).await;
    let unknown_room = join_with(&mut ws, "no-such-room", "Ann", json!({"resume": "0".repeat(32)})).await;
    assert_error(&unknown_room, "resume_expired");
    let unknown_token = join_with(&mut ws, &code, "Ann", json!({"resume": "0".repeat(32)})).await;
    assert_error(&unknown_token, "resume_expired");
    assert_eq!(unknown_room["message"], unknown_token["message"]);
    // That resume used one of the 3 lookups; two wrong PINs use the rest.
    assert_error(&join_with(&mut ws, &code, "Ann", json!({"pin": "0000"})).await, "bad_pin");
    assert_error(&join_with(&mut ws, &code, "Ann", json!({"pin": "0001"})).await, "bad_pin");
    // Then even the right PIN is refused for a while, and so are resumes from that address.
    assert_error(&join_with(&mut ws, &code, "Ann", json!({"pin": "0002"})).await, "rate_limited");
    assert_error(&join_with(&mut ws, &code, "Ann", json!({"pin": "4321"})).await, "rate_limited");
    assert_error(&join_with(&mut ws, "no-such-room", "Ann", json!({"resume": "0".repeat(32)})).await, "rate_limited");
    // Another address is not affected.
    let mut other = ws_via(&server, "203.0.113.9").await;
    assert_eq!(join_with(&mut other, &code, "Bea", json!({"pin": "4321"})).await["type"], "welcome");
}

/// A stale host token beside a valid resume token: the seat comes back, without the powers.
#[tokio::test]
async fn a_stale_host_token_does_not_cost_the_seat() {
    let server = server_with(|c| c.auth.secret = SECRET.into()).await;
    let mut ws = Ws::connect(&server).await;
    let welcome = ws.join("stale", "Ann").await;
    let resume = welcome["resume_token"].as_str().unwrap().to_owned();
    let mut bob = Ws::connect(&server).await;
    bob.join("stale", "Bob").await;
    drop(ws);
    let mut back = Ws::connect(&server).await;
    let w = join_with(&mut back, "stale", "Ann", json!({"resume": resume, "token": "not.a.token"})).await;
    assert_eq!(w["type"], "welcome", "{w}");
    assert_eq!(w["id"], welcome["id"]);
    // Without a resume, a bad token is still refused.
    let mut cid = Ws::connect(&server).await;
    assert_error(&join_with(&mut cid, "stale", "Cid", json!({"token": "not.a.token"})).await, "bad_token");
}
