//! An in-process server on ephemeral ports, and a bare WebSocket client for protocol-level checks.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use parlor::config::{Config, Overrides};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Start a server on 127.0.0.1 with an ephemeral HTTP port and ephemeral UDP ports.
/// `tweak` may adjust the configuration first.
/// With `PARLOR_TEST_LOG=<filter>` set, the server's logs go to the test's output.
pub async fn server_with(tweak: impl FnOnce(&mut Config)) -> parlor::Server {
    if let Ok(filter) = std::env::var("PARLOR_TEST_LOG") {
        let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
    }
    let overrides = Overrides { listen: Some("127.0.0.1:0".parse().unwrap()), udp_port: Some(0) };
    // An empty prefix nobody sets keeps the test independent of the environment.
    let env = figment::providers::Env::prefixed("PARLOR_TEST_UNSET_PREFIX_");
    let mut config = Config::load(None, &overrides, env).expect("default config");
    config.games.log_dir = String::new(); // tests that want game logs name a temporary folder
    tweak(&mut config);
    parlor::start(&config).await.expect("server starts")
}

/// A server with the defaults.
pub async fn server() -> parlor::Server {
    server_with(|_| {}).await
}

/// A raw protocol client: JSON in, JSON out.
pub struct Ws {
    pub stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// What came back from the socket.
#[derive(Debug)]
pub enum Got {
    Json(Value),
    Closed(Option<u16>),
}

impl Ws {
    pub async fn connect(server: &parlor::Server) -> Ws {
        let url = format!("ws://{}/ws", server.http_addr);
        let (stream, _) = tokio_tungstenite::connect_async(url).await.expect("websocket connects");
        Ws { stream }
    }

    pub async fn send_text(&mut self, text: impl Into<String>) {
        self.stream.send(Message::Text(text.into().into())).await.expect("send");
    }

    pub async fn send(&mut self, v: Value) {
        self.send_text(v.to_string()).await;
    }

    /// Next JSON message or close, within 20 s; control frames are skipped.
    pub async fn next(&mut self) -> Got {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let frame = tokio::time::timeout_at(deadline, self.stream.next()).await.expect("a frame within 20 s");
            match frame {
                Some(Ok(Message::Text(t))) => {
                    return Got::Json(serde_json::from_str(t.as_str()).expect("server sends JSON"))
                }
                Some(Ok(Message::Close(c))) => return Got::Closed(c.map(|c| u16::from(c.code))),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Got::Closed(None),
            }
        }
    }

    /// Next JSON message (panics on close).
    pub async fn json(&mut self) -> Value {
        match self.next().await {
            Got::Json(v) => v,
            Got::Closed(c) => panic!("socket closed ({c:?}) while a message was expected"),
        }
    }

    /// Skip messages until one of type `ty` arrives.
    pub async fn expect(&mut self, ty: &str) -> Value {
        loop {
            let v = self.json().await;
            if v["type"] == ty {
                return v;
            }
        }
    }

    /// Join `room` as `name` and return the welcome. Also consumes the `media_state` that
    /// always follows a welcome (the joiner's view is new).
    pub async fn join(&mut self, room: &str, name: &str) -> Value {
        self.send(serde_json::json!({"type": "join", "room": room, "name": name})).await;
        let v = self.json().await;
        assert_eq!(v["type"], "welcome", "expected welcome, got {v}");
        let state = self.json().await;
        assert_eq!(state["type"], "media_state", "media_state follows welcome, got {state}");
        v
    }

    /// Skip messages until the socket closes; the close code.
    pub async fn closed(&mut self) -> Option<u16> {
        loop {
            if let Got::Closed(code) = self.next().await {
                return code;
            }
        }
    }

    /// Send a ping and expect the pong to echo it: proves the socket still works.
    pub async fn assert_alive(&mut self) {
        self.send(serde_json::json!({"type": "ping", "t": 42.5})).await;
        let pong = self.expect("pong").await;
        assert_eq!(pong["t"], 42.5);
        assert!(pong["server_time"].as_u64().unwrap() > 1_600_000_000_000);
    }
}

/// A plain HTTP/1.0 GET against the server: (status, content type, body).
pub async fn http_get(server: &parlor::Server, path: &str) -> (u16, String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = TcpStream::connect(server.http_addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.0\r\nHost: {}\r\n\r\n", server.http_addr);
    stream.write_all(request.as_bytes()).await.expect("send request");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read response");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let content_type = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-type:").map(|v| v.trim().to_owned()))
        .unwrap_or_default();
    (status, content_type, body.to_owned())
}
