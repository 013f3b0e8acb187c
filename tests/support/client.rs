//! `TestClient`: a parlor participant — a WebSocket speaking signaling protocol v1, plus (with
//! `opts.media`) a [`MediaPeer`] negotiated through that socket.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

use super::peer::{MediaPeer, RecvPacket, SentPacket, SignalSink};
use super::{ClientOptions, Kind};

/// How long `join` waits for `welcome`.
pub const JOIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The server refused a `join` with `{"type":"error",…}`.
#[derive(Debug, Clone)]
pub struct JoinError {
    pub code: String,
    pub message: String,
    pub raw: Value,
}

impl std::fmt::Display for JoinError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "join refused: {} ({})", self.code, self.message)
    }
}

impl std::error::Error for JoinError {}

/// The `"type"` of a message, or "".
pub fn msg_type(v: &Value) -> &str {
    v.get("type").and_then(Value::as_str).unwrap_or("")
}

/// Everything the server sent on one socket, in order.
#[derive(Default)]
pub struct MessageLog {
    messages: Mutex<Vec<Value>>,
    /// When each message arrived, in µs since the UNIX epoch (the clock payload marks use).
    arrivals: Mutex<Vec<u64>>,
    consumed: Mutex<Vec<bool>>,
    /// Text frames that were not JSON, and binary frames (lossy).
    raw: Mutex<Vec<String>>,
    /// Set when the socket ends: Some(code, reason) for a close frame, None for a bare end.
    close: Mutex<Option<Option<(u16, String)>>>,
    closed: AtomicBool,
    notify: Notify,
}

impl MessageLog {
    fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
        m.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, v: Value) {
        Self::lock(&self.arrivals).push(super::now_us());
        Self::lock(&self.messages).push(v);
        Self::lock(&self.consumed).push(false);
        self.notify.notify_waiters();
    }

    fn push_raw(&self, s: String) {
        Self::lock(&self.raw).push(s);
        self.notify.notify_waiters();
    }

    fn set_closed(&self, frame: Option<(u16, String)>) {
        let mut c = Self::lock(&self.close);
        if c.is_none() {
            *c = Some(frame);
        }
        self.closed.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    pub fn all(&self) -> Vec<Value> {
        Self::lock(&self.messages).clone()
    }

    /// Every message with its arrival time (µs since the UNIX epoch).
    pub fn timed(&self) -> Vec<(u64, Value)> {
        let arrivals = Self::lock(&self.arrivals).clone();
        arrivals.into_iter().zip(Self::lock(&self.messages).iter().cloned()).collect()
    }

    pub fn raw(&self) -> Vec<String> {
        Self::lock(&self.raw).clone()
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    pub fn close_frame(&self) -> Option<Option<(u16, String)>> {
        Self::lock(&self.close).clone()
    }

    /// Marks and returns the first unconsumed message matching `pred`.
    fn take_first(&self, pred: &mut dyn FnMut(&Value) -> bool) -> Option<Value> {
        let msgs = Self::lock(&self.messages);
        let mut consumed = Self::lock(&self.consumed);
        for (i, m) in msgs.iter().enumerate() {
            if !consumed[i] && pred(m) {
                consumed[i] = true;
                return Some(m.clone());
            }
        }
        None
    }

    /// Waits for (and consumes) the next unconsumed message matching `pred`.
    pub async fn wait_take(&self, timeout: Duration, mut pred: impl FnMut(&Value) -> bool) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(v) = self.take_first(&mut pred) {
                return Some(v);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            // Wake on a new message, or re-check every 20 ms regardless.
            let tick = tokio::time::Instant::now() + super::POLL_INTERVAL;
            let _ = tokio::time::timeout_at(tick.min(deadline), notified).await;
        }
    }
}

fn is_signaling(v: &Value) -> bool {
    match msg_type(v) {
        "offer" | "answer" | "candidate" => true,
        "error" => v.get("code").and_then(Value::as_str) == Some("glare"),
        _ => false,
    }
}

/// One participant: WebSocket + optional media.
pub struct TestClient {
    id: String,
    welcome: Option<Value>,
    opts: ClientOptions,
    ws_url: String,
    ws_out: mpsc::UnboundedSender<Message>,
    log: Arc<MessageLog>,
    signal_rx: Option<mpsc::UnboundedReceiver<Value>>,
    peer: Option<MediaPeer>,
    ws_tasks: Vec<JoinHandle<()>>,
}

impl TestClient {
    /// Opens the WebSocket only (no `join`), for tests that misbehave before joining.
    pub async fn connect(ws_url: &str, opts: ClientOptions) -> anyhow::Result<TestClient> {
        let (ws, _resp) =
            tokio_tungstenite::connect_async(ws_url).await.with_context(|| format!("connect {ws_url}"))?;
        let (mut write, mut read) = ws.split();
        let log = Arc::new(MessageLog::default());
        let (ws_out, mut out_rx) = mpsc::unbounded_channel::<Message>();
        let (signal_tx, signal_rx) = mpsc::unbounded_channel::<Value>();

        let writer = tokio::spawn(async move {
            while let Some(m) = out_rx.recv().await {
                let is_close = matches!(m, Message::Close(_));
                if write.send(m).await.is_err() || is_close {
                    break;
                }
            }
        });
        let reader_log = Arc::clone(&log);
        let reader = tokio::spawn(async move {
            while let Some(frame) = read.next().await {
                match frame {
                    Ok(Message::Text(t)) => match serde_json::from_str::<Value>(t.as_str()) {
                        Ok(v) => {
                            if is_signaling(&v) {
                                let _ = signal_tx.send(v.clone());
                            }
                            reader_log.push(v);
                        }
                        Err(_) => reader_log.push_raw(t.as_str().to_owned()),
                    },
                    Ok(Message::Binary(b)) => reader_log.push_raw(String::from_utf8_lossy(&b).into_owned()),
                    Ok(Message::Close(frame)) => {
                        reader_log.set_closed(frame.map(|f| (u16::from(f.code), f.reason.as_str().to_owned())));
                        break;
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
            reader_log.set_closed(None);
        });

        Ok(TestClient {
            id: String::new(),
            welcome: None,
            opts,
            ws_url: ws_url.to_owned(),
            ws_out,
            log,
            signal_rx: Some(signal_rx),
            peer: None,
            ws_tasks: vec![writer, reader],
        })
    }

    /// Connects, sends `{"type":"join","room":room,"name":name}`, waits for `welcome` (a
    /// [`JoinError`] if the server answers `error`), then starts media if `opts.media`.
    pub async fn join(ws_url: &str, room: &str, name: &str, opts: ClientOptions) -> anyhow::Result<TestClient> {
        Self::join_with(ws_url, json!({"type": "join", "room": room, "name": name}), opts).await
    }

    /// Like [`join`](Self::join) with a caller-built join message (resume, token, pin …).
    pub async fn join_with(ws_url: &str, join: Value, opts: ClientOptions) -> anyhow::Result<TestClient> {
        let mut c = Self::connect(ws_url, opts).await?;
        c.join_room(join).await?;
        Ok(c)
    }

    /// Sends a join message on an open socket and waits for `welcome` or `error`.
    pub async fn join_room(&mut self, join: Value) -> anyhow::Result<Value> {
        self.send_json(&join)?;
        let v = self
            .log
            .wait_take(JOIN_TIMEOUT, |v| matches!(msg_type(v), "welcome" | "error"))
            .await
            .ok_or_else(|| anyhow!("no welcome within {JOIN_TIMEOUT:?}; got {:?}", self.types()))?;
        if msg_type(&v) == "error" {
            return Err(JoinError {
                code: v["code"].as_str().unwrap_or("").to_owned(),
                message: v["message"].as_str().unwrap_or("").to_owned(),
                raw: v,
            }
            .into());
        }
        self.id = v["id"].as_str().ok_or_else(|| anyhow!("welcome without id: {v}"))?.to_owned();
        self.welcome = Some(v.clone());
        if self.opts.media {
            self.start_media().await?;
        }
        Ok(v)
    }

    /// Starts the peer connection (after `welcome`); called by `join` when `opts.media`.
    pub async fn start_media(&mut self) -> anyhow::Result<()> {
        if self.peer.is_some() {
            return Ok(());
        }
        if self.id.is_empty() {
            bail!("start_media before welcome");
        }
        let signals = self.signal_rx.take().ok_or_else(|| anyhow!("signal channel already taken"))?;
        let out = self.ws_out.clone();
        let sink: SignalSink = Arc::new(move |v: Value| {
            let _ = out.send(Message::text(v.to_string()));
        });
        self.peer = Some(MediaPeer::start(&self.id, &self.opts, sink, signals).await?);
        Ok(())
    }

    /// Participant id from `welcome` ("" before).
    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn welcome(&self) -> Option<&Value> {
        self.welcome.as_ref()
    }

    /// `resume_token` from `welcome`.
    pub fn resume_token(&self) -> Option<String> {
        self.welcome.as_ref().and_then(|w| w.get("resume_token")).and_then(Value::as_str).map(str::to_owned)
    }

    pub fn ws_url(&self) -> &str {
        &self.ws_url
    }

    pub fn options(&self) -> &ClientOptions {
        &self.opts
    }

    // ----- sending -----

    pub fn send_json(&self, v: &Value) -> anyhow::Result<()> {
        self.send_text(v.to_string())
    }

    pub fn send_text(&self, s: impl Into<String>) -> anyhow::Result<()> {
        self.ws_out.send(Message::text(s.into())).map_err(|_| anyhow!("websocket writer gone"))
    }

    pub fn send_binary(&self, b: Vec<u8>) -> anyhow::Result<()> {
        self.ws_out.send(Message::binary(b)).map_err(|_| anyhow!("websocket writer gone"))
    }

    /// `{"type":"ping","t":t}`; the `pong` lands in the message log.
    pub fn ping(&self, t: u64) -> anyhow::Result<()> {
        self.send_json(&json!({"type": "ping", "t": t}))
    }

    /// `{"type":"chat","channel":..,"text":..}`.
    pub fn chat(&self, channel: &str, text: &str) -> anyhow::Result<()> {
        self.send_json(&json!({"type": "chat", "channel": channel, "text": text}))
    }

    // ----- received messages -----

    /// Every JSON message received, in order.
    pub fn messages(&self) -> Vec<Value> {
        self.log.all()
    }

    /// Messages of one type, in order.
    /// Every message with its arrival time (µs since the UNIX epoch).
    pub fn timed_messages(&self) -> Vec<(u64, Value)> {
        self.log.timed()
    }

    /// Arrival time (µs since the UNIX epoch) of the first message matching `pred`.
    pub fn arrival_of(&self, mut pred: impl FnMut(&Value) -> bool) -> Option<u64> {
        self.log.timed().into_iter().find(|(_, v)| pred(v)).map(|(t, _)| t)
    }

    pub fn messages_of(&self, ty: &str) -> Vec<Value> {
        self.log.all().into_iter().filter(|m| msg_type(m) == ty).collect()
    }

    /// The last message of a type.
    pub fn last_of(&self, ty: &str) -> Option<Value> {
        self.log.all().into_iter().rev().find(|m| msg_type(m) == ty)
    }

    /// The types of all messages received, in order (handy in assertion messages).
    pub fn types(&self) -> Vec<String> {
        self.log.all().iter().map(|m| msg_type(m).to_owned()).collect()
    }

    /// Non-JSON frames received.
    pub fn raw_frames(&self) -> Vec<String> {
        self.log.raw()
    }

    /// Waits for the next not-yet-consumed message of type `ty` and consumes it.
    pub async fn expect_message(&self, ty: &str, timeout: Duration) -> anyhow::Result<Value> {
        self.log.wait_take(timeout, |v| msg_type(v) == ty).await.ok_or_else(|| {
            anyhow!("client {:?}: no unconsumed {ty:?} within {timeout:?}; received {:?}", self.id, self.types())
        })
    }

    /// Waits for the next not-yet-consumed message satisfying `pred` and consumes it.
    pub async fn expect_where(
        &self,
        timeout: Duration,
        what: &str,
        pred: impl FnMut(&Value) -> bool,
    ) -> anyhow::Result<Value> {
        self.log.wait_take(timeout, pred).await.ok_or_else(|| {
            anyhow!("client {:?}: no message matching {what} within {timeout:?}; received {:?}", self.id, self.types())
        })
    }

    /// Waits for the next unconsumed `error` and returns its code.
    pub async fn expect_error(&self, timeout: Duration) -> anyhow::Result<String> {
        let v = self.expect_message("error", timeout).await?;
        Ok(v["code"].as_str().unwrap_or("").to_owned())
    }

    /// True once the server closed the socket (or it broke).
    pub fn socket_closed(&self) -> bool {
        self.log.is_closed()
    }

    /// The close frame's (code, reason), if the server sent one.
    pub fn close_frame(&self) -> Option<(u16, String)> {
        self.log.close_frame().flatten()
    }

    /// Waits until the socket is closed; returns the close frame if any.
    pub async fn wait_socket_closed(&self, timeout: Duration) -> anyhow::Result<Option<(u16, String)>> {
        if super::wait_until(timeout, || self.log.is_closed()).await {
            Ok(self.close_frame())
        } else {
            bail!("socket of {:?} still open after {timeout:?}", self.id)
        }
    }

    // ----- lifecycle -----

    /// Sends `leave` and closes the peer connection (the socket stays open).
    pub async fn leave(&mut self) -> anyhow::Result<()> {
        self.send_json(&json!({"type": "leave"}))?;
        if let Some(p) = &self.peer {
            p.close().await;
        }
        Ok(())
    }

    /// Drops the WebSocket without `leave` and without a close frame (a vanished client). The
    /// peer connection is left running.
    pub async fn close_socket(&mut self) {
        for t in self.ws_tasks.drain(..) {
            t.abort();
            let _ = t.await;
        }
        self.log.set_closed(None);
    }

    /// Closes the WebSocket politely with a close frame (e.g. 1001 for a page reload) and waits
    /// for the writer to flush it. The peer connection is left running.
    pub async fn close_socket_with(&mut self, code: u16, reason: &str) {
        let _ = self
            .ws_out
            .send(Message::Close(Some(CloseFrame { code: CloseCode::from(code), reason: reason.to_owned().into() })));
        if let Some(writer) = self.ws_tasks.first_mut() {
            let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
        }
        self.close_socket().await;
    }

    /// Closes the peer connection only.
    pub async fn close_media(&self) {
        if let Some(p) = &self.peer {
            p.close().await;
        }
    }

    // ----- media (delegated to the MediaPeer; panics if the client has no media) -----

    pub fn has_media(&self) -> bool {
        self.peer.is_some()
    }

    /// The media peer. Panics if the client was built without media.
    pub fn media(&self) -> &MediaPeer {
        self.peer.as_ref().expect("client has no media (opts.media was false)")
    }

    pub async fn wait_connected(&self, timeout: Duration) -> anyhow::Result<()> {
        self.media().wait_connected(timeout).await
    }

    pub fn received(&self, publisher: &str, kind: Kind) -> Vec<RecvPacket> {
        self.peer.as_ref().map(|p| p.received(publisher, kind)).unwrap_or_default()
    }

    /// Retransmissions of `publisher`'s `kind` that arrived on an RTX stream.
    pub fn retransmissions(&self, publisher: &str, kind: Kind) -> Vec<RecvPacket> {
        self.peer.as_ref().map(|p| p.retransmissions(publisher, kind)).unwrap_or_default()
    }

    pub fn count(&self, publisher: &str, kind: Kind) -> usize {
        self.peer.as_ref().map(|p| p.count(publisher, kind)).unwrap_or(0)
    }

    /// Waits until at least `n` packets of `kind` from `publisher` have arrived.
    pub async fn wait_count(&self, publisher: &str, kind: Kind, n: usize, timeout: Duration) -> anyhow::Result<()> {
        if super::wait_until(timeout, || self.count(publisher, kind) >= n).await {
            return Ok(());
        }
        let (counts, errors) = match &self.peer {
            Some(p) => (format!("{:?}", p.counts()), format!("{:?}", p.errors())),
            None => ("no media".to_owned(), String::new()),
        };
        bail!(
            "client {:?}: {} < {n} {kind} packets from {publisher:?} after {timeout:?}; counts {counts}; errors {errors}",
            self.id,
            self.count(publisher, kind)
        )
    }

    pub fn sent(&self, kind: Kind) -> Vec<SentPacket> {
        self.peer.as_ref().map(|p| p.sent(kind)).unwrap_or_default()
    }

    /// [`MediaPeer::sent_covering`]; empty without media.
    pub async fn sent_covering(&self, kind: Kind, received: &[RecvPacket]) -> Vec<SentPacket> {
        match &self.peer {
            Some(p) => p.sent_covering(kind, received).await,
            None => Vec::new(),
        }
    }

    pub fn sent_count(&self, kind: Kind) -> usize {
        self.peer.as_ref().map(|p| p.sent_count(kind)).unwrap_or(0)
    }

    pub fn keyframe_requests(&self) -> u64 {
        self.peer.as_ref().map(|p| p.keyframe_requests()).unwrap_or(0)
    }

    pub fn keyframes_sent(&self) -> usize {
        self.peer.as_ref().map(|p| p.keyframes_sent()).unwrap_or(0)
    }

    pub fn set_publishing(&self, on: bool) {
        if let Some(p) = &self.peer {
            p.set_publishing(on);
        }
    }

    pub async fn send_pli(&self, publisher: &str) -> anyhow::Result<usize> {
        self.media().send_pli(publisher).await
    }

    pub async fn send_nack(&self, publisher: &str, kind: Kind, seqs: &[u16]) -> anyhow::Result<usize> {
        self.media().send_nack(publisher, kind, seqs).await
    }

    pub async fn negotiated_pts(&self, codec: &str) -> Vec<u8> {
        self.media().negotiated_pts(codec).await
    }
}

impl Drop for TestClient {
    fn drop(&mut self) {
        for t in self.ws_tasks.drain(..) {
            t.abort();
        }
    }
}
