//! What one synthetic participant's signaling task is given and what it reports: the leaf the
//! fleet and both signaling dialects (`parlor`, `janus`) share, so none of them imports another
//! that imports it back.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64};
use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::media::{MediaThread, Publish};

/// Commands to a participant's signaling task.
#[derive(Debug)]
pub enum Ctrl {
    /// Send this JSON message (parlor).
    Send(Value),
    /// Subscribe to these publisher feeds (Janus): each feed whole, or only the stream `mid`.
    Subscribe(Vec<(u64, Option<String>)>),
    /// Leave and close the socket.
    Leave,
}

/// What the signaling side of a participant has seen.
#[derive(Debug, Default)]
pub struct PartInfo {
    id: Mutex<Option<String>>,
    /// When the WebSocket connect began, µs.
    pub connect_us: AtomicU64,
    /// When the join was answered (parlor `welcome`, Janus publisher `joined`), µs.
    pub welcome_us: AtomicU64,
    /// Janus: our publisher feed id (0 until known).
    pub feed: AtomicU64,
    /// Janus: the mid of our published video stream, as Janus names it (once configured).
    pub video_mid: Mutex<Option<String>>,
    /// The signaling task ended.
    pub closed: AtomicBool,
    /// `glare` errors received.
    pub glares: AtomicU32,
    game: Mutex<Vec<(u64, Value)>>,
    errors: Mutex<Vec<String>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl PartInfo {
    /// The participant id the server gave us.
    pub fn id(&self) -> Option<String> {
        lock(&self.id).clone()
    }

    pub(crate) fn set_id(&self, id: &str) {
        *lock(&self.id) = Some(id.to_owned());
    }

    /// Record a problem.
    pub fn error(&self, e: String) {
        lock(&self.errors).push(e);
    }

    /// Problems recorded so far.
    pub fn errors(&self) -> Vec<String> {
        lock(&self.errors).clone()
    }

    pub(crate) fn game(&self, arrived_us: u64, v: Value) {
        lock(&self.game).push((arrived_us, v));
    }

    /// Game messages (`phase`, `media_state`, `role`, …) with their arrival times, µs.
    pub fn game_messages(&self) -> Vec<(u64, Value)> {
        lock(&self.game).clone()
    }
}

/// Everything a signaling task needs.
#[derive(Clone)]
pub(crate) struct PartCtx {
    pub idx: u32,
    pub peer: u32,
    pub sub_peer: u32,
    pub url: String,
    pub room: String,
    /// parlor: the room kind asked for in `join` (used when this join opens the room).
    pub kind: Option<String>,
    pub janus_room: u64,
    pub name: String,
    pub publish: Option<Publish>,
    pub bind: IpAddr,
    pub media: MediaThread,
    pub sub_media: MediaThread,
    pub info: Arc<PartInfo>,
}
