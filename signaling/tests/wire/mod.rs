//! Driving a hub over the wire without sockets: a client is a `Connection` and what it was
//! sent; media is a recorder of the routes the rooms hand it.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use parlor_signaling::{
    BoxFuture, Connection, Hub, MediaBackend, MediaKind, MediaPort, MediaRefusal, NoticeSink, Outbound, RouteChange,
};
use serde_json::{json, Value};
use tokio::sync::mpsc::UnboundedReceiver;

/// One route update: its epoch and what changed.
pub type Update = (u64, Vec<RouteChange>);

/// One `layout` the room passed on: whose, and its heights by publisher.
pub type Layout = (String, std::collections::BTreeMap<String, u16>);

/// Media that records every route update and answers nothing else.
#[derive(Default, Clone)]
pub struct Recorder {
    pub updates: Arc<Mutex<Vec<Update>>>,
    pub layouts: Arc<Mutex<Vec<Layout>>>,
}

impl MediaBackend for Recorder {
    fn open_room(&self, _: &str, _: NoticeSink) -> Box<dyn MediaPort> {
        Box::new(self.clone())
    }
}

impl MediaPort for Recorder {
    fn offer(&self, _: &str, _: String) -> BoxFuture<'_, Result<String, MediaRefusal>> {
        Box::pin(async { Err(MediaRefusal::Failed("no media in this test".into())) })
    }
    fn answer(&self, _: &str, _: String) -> BoxFuture<'_, Result<(), MediaRefusal>> {
        Box::pin(async { Err(MediaRefusal::Failed("no media in this test".into())) })
    }
    fn candidate(&self, _: &str, _: String) {}
    fn remove_peer(&self, _: &str) {}
    fn hold_offers(&self, _: &str) {}
    fn update_routes(&self, epoch: u64, changes: Vec<RouteChange>) -> BoxFuture<'_, ()> {
        self.updates.lock().unwrap().push((epoch, changes));
        Box::pin(async {})
    }
    fn layout(&self, peer: &str, heights: std::collections::BTreeMap<String, u16>) -> BoxFuture<'_, ()> {
        self.layouts.lock().unwrap().push((peer.to_owned(), heights));
        Box::pin(async {})
    }
}

impl Recorder {
    /// Who receives `publisher`'s `kind` according to the latest update that named it.
    pub fn receivers(&self, publisher: &str, kind: MediaKind) -> Option<Vec<String>> {
        let updates = self.updates.lock().unwrap();
        updates
            .iter()
            .rev()
            .flat_map(|(_, changes)| changes.iter())
            .find(|c| c.publisher == publisher && c.kind == kind)
            .map(|c| c.subscribers.clone())
    }
}

/// One client: a connection and what it was sent.
pub struct Client {
    pub conn: Connection,
    pub rx: UnboundedReceiver<Outbound>,
}

impl Client {
    pub fn new(hub: &Hub) -> Client {
        let (conn, rx) = Connection::new(hub.clone());
        Client { conn, rx }
    }

    pub async fn send(&mut self, v: Value) {
        self.conn.on_text(&v.to_string()).await;
    }

    /// The next message of type `ty` (others are skipped), within 5 s.
    pub async fn next(&mut self, ty: &str) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let out = tokio::time::timeout_at(deadline, self.rx.recv())
                .await
                .unwrap_or_else(|_| panic!("no {ty} within 5 s"))
                .expect("connection output closed");
            if let Outbound::Text(text) = out {
                let v: Value = serde_json::from_str(&text).unwrap();
                if v["type"] == ty {
                    return v;
                }
            }
        }
    }

    /// The next message of type `ty` for which `pred` holds (others are skipped), within 5 s.
    pub async fn next_where(&mut self, ty: &str, pred: impl Fn(&Value) -> bool) -> Value {
        loop {
            let v = self.next(ty).await;
            if pred(&v) {
                return v;
            }
        }
    }

    /// The next error's code.
    pub async fn error(&mut self) -> String {
        self.next("error").await["code"].as_str().unwrap().to_owned()
    }

    /// Everything sent so far that has not been read, waiting until the room has handled
    /// all this client sent before (the room answers in order: our own chat line comes back
    /// after everything the room sent us earlier).
    pub async fn drain(&mut self) -> Vec<Value> {
        self.send(json!({"type": "chat", "channel": "all", "text": "sync"})).await;
        let mut seen = Vec::new();
        loop {
            let v = self.next_any().await;
            if v["type"] == "chat" && v["text"] == "sync" {
                return seen;
            }
            seen.push(v);
        }
    }

    pub async fn next_any(&mut self) -> Value {
        loop {
            let out = tokio::time::timeout(Duration::from_secs(5), self.rx.recv()).await.expect("silent for 5 s");
            if let Some(Outbound::Text(text)) = out {
                return serde_json::from_str(&text).unwrap();
            }
        }
    }
}

/// Join `room` as `name` (creating it of `kind`, if given); the client and its id.
pub async fn join(hub: &Hub, room: &str, name: &str, kind: Option<&str>) -> (Client, String) {
    let mut c = Client::new(hub);
    let mut msg = json!({"type": "join", "room": room, "name": name});
    if let Some(kind) = kind {
        msg["kind"] = json!(kind);
    }
    c.send(msg).await;
    let welcome = c.next("welcome").await;
    let id = welcome["id"].as_str().unwrap().to_owned();
    (c, id)
}
