//! The hub: every room of the server, created on demand and removed when empty.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::media::{MediaBackend, MediaNotice};
use crate::room::{Room, RoomHandle, RoomInput};
use crate::stats::SignalingStats;

/// The signaling side's limits and timings, server-wide.
#[derive(Debug, Clone)]
pub struct HubSettings {
    /// Most participants a room holds (`room_full` beyond).
    pub max_participants: usize,
    /// How long a participant whose socket closed keeps their seat.
    pub grace: Duration,
    /// The camera bitrate clients are asked to stay under.
    pub max_video_kbps: u32,
    /// Most rooms at once (`too_many_rooms` beyond).
    pub max_rooms: usize,
    /// A room in which nobody has been connected for this long closes.
    pub idle: Duration,
    /// Messages per second each connection may send, sustained.
    pub messages_per_second: f64,
    /// Burst of messages each connection may send.
    pub message_burst: u32,
    /// Where each game's replayable log is written (`None`: not written).
    pub game_log_dir: Option<std::path::PathBuf>,
}

impl Default for HubSettings {
    fn default() -> Self {
        HubSettings {
            max_participants: 24,
            grace: Duration::from_secs(30),
            max_video_kbps: 600,
            max_rooms: 1000,
            idle: Duration::from_secs(600),
            messages_per_second: 20.0,
            message_burst: 60,
            game_log_dir: None,
        }
    }
}

pub(crate) struct HubInner {
    rooms: Mutex<HashMap<String, RoomHandle>>,
    media: Arc<dyn MediaBackend>,
    settings: HubSettings,
    counter: AtomicU64,
    pub(crate) stats: Arc<SignalingStats>,
}

impl HubInner {
    pub(crate) fn next_connection(&self) -> u64 {
        self.counter.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub(crate) fn remove_room(&self, code: &str, instance: u64) {
        let mut rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        if rooms.get(code).is_some_and(|r| r.instance == instance) {
            rooms.remove(code);
        }
    }
}

/// The server's rooms. Cheap to clone.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<HubInner>,
}

impl Hub {
    /// A hub whose rooms use `media` and `settings`.
    pub fn new(media: Arc<dyn MediaBackend>, settings: HubSettings) -> Self {
        Hub {
            inner: Arc::new(HubInner {
                rooms: Mutex::new(HashMap::new()),
                media,
                settings,
                counter: AtomicU64::new(0),
                stats: Arc::new(SignalingStats::default()),
            }),
        }
    }

    /// The signaling statistics (shared; read them for metrics).
    pub fn stats(&self) -> Arc<SignalingStats> {
        self.inner.stats.clone()
    }

    /// Number of open rooms.
    pub fn room_count(&self) -> usize {
        self.inner.rooms.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// The room with this code, if it is open.
    pub(crate) fn existing(&self, code: &str) -> Option<RoomHandle> {
        let rooms = self.inner.rooms.lock().unwrap_or_else(|e| e.into_inner());
        rooms.get(code).filter(|h| !h.tx.is_closed()).cloned()
    }

    /// The settings every room and connection uses.
    pub fn settings(&self) -> &HubSettings {
        &self.inner.settings
    }

    /// Tell every room the server is going away: each tells its participants
    /// (`server_shutdown`), closes their sockets and releases its media.
    pub fn shutdown(&self) {
        let rooms = self.inner.rooms.lock().unwrap_or_else(|e| e.into_inner());
        for handle in rooms.values() {
            let _ = handle.tx.send(RoomInput::Shutdown);
        }
    }

    /// The room with this code, opened now if it does not exist (open mode); `None` when the
    /// server already holds its maximum of rooms. Must be called inside a tokio runtime: a
    /// new room is a new task.
    pub(crate) fn room(&self, code: &str) -> Option<RoomHandle> {
        let mut rooms = self.inner.rooms.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(handle) = rooms.get(code) {
            if !handle.tx.is_closed() {
                return Some(handle.clone());
            }
        }
        rooms.retain(|_, h| !h.tx.is_closed());
        if rooms.len() >= self.inner.settings.max_rooms {
            return None;
        }
        let instance = self.inner.next_connection();
        let (tx, rx) = mpsc::unbounded_channel();
        let notify = tx.clone();
        let sink = Box::new(move |n: MediaNotice| {
            let _ = notify.send(RoomInput::Media(n));
        });
        let port = self.inner.media.open_room(code, sink);
        let room = Room::new(code.to_owned(), instance, self.inner.settings.clone(), self.inner.clone(), port);
        tokio::spawn(room.run(rx));
        let handle = RoomHandle { tx, instance };
        rooms.insert(code.to_owned(), handle.clone());
        Some(handle)
    }
}
