//! The hub: every room of the server, created on demand and removed when empty.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use crate::directory::{Directory, Standalone};
use crate::game::Registry;
use crate::media::{MediaBackend, MediaNotice};
use crate::options::{HubSettings, RoomInfo, RoomOptions};
use crate::protocol::{ErrorCode, Refusal};
use crate::room::{Home, Room, RoomHandle, RoomInput};
use crate::stats::SignalingStats;

/// Who may create rooms and who holds a room's host powers. The binary decides (host keys,
/// signed host tokens, per-address limits); connections and the hub ask.
pub trait Access: Send + Sync {
    /// Whether a `join` to a code that has no room opens it (open mode).
    fn rooms_on_join(&self) -> bool;
    /// Whether `token` is a valid host token for the room `code`.
    fn host_token_valid(&self, code: &str, token: &str) -> bool;
    /// A client (at `client`, if known) looks a room code up; `found` says whether the room
    /// exists. False refuses the lookup: the client looked up too many unknown codes.
    fn lookup(&self, client: Option<std::net::IpAddr>, found: bool) -> bool;
}

/// Open mode with no host tokens and no lookup limit: what [`Hub::new`] uses.
pub struct OpenAccess;

impl Access for OpenAccess {
    fn rooms_on_join(&self) -> bool {
        true
    }
    fn host_token_valid(&self, _code: &str, _token: &str) -> bool {
        false
    }
    fn lookup(&self, _client: Option<std::net::IpAddr>, _found: bool) -> bool {
        true
    }
}

struct HubInner {
    rooms: Mutex<HashMap<String, RoomHandle>>,
    media: Arc<dyn MediaBackend>,
    access: Arc<dyn Access>,
    settings: HubSettings,
    counter: AtomicU64,
    stats: Arc<SignalingStats>,
    registry: Registry,
    directory: Arc<dyn Directory>,
}

impl Home for HubInner {
    fn next_connection(&self) -> u64 {
        self.counter.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn room_closed(&self, code: &str, instance: u64) {
        let mut rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        if rooms.get(code).is_some_and(|r| r.instance == instance) {
            rooms.remove(code);
        }
        // A newer room of the same code may already be open here (closed through the API,
        // then joined again): its claim stays.
        if rooms.get(code).is_none_or(|r| r.tx.is_closed()) {
            self.directory.released(code);
        }
    }

    fn stats(&self) -> &SignalingStats {
        &self.stats
    }

    fn registry(&self) -> &Registry {
        &self.registry
    }
}

/// The server's rooms. Cheap to clone.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<HubInner>,
}

impl Hub {
    /// A hub whose rooms use `media` and `settings`, in open mode without host tokens.
    pub fn new(media: Arc<dyn MediaBackend>, settings: HubSettings) -> Self {
        Hub::with_access(media, settings, Arc::new(OpenAccess))
    }

    /// A hub whose room creation and host powers `access` decides, offering the built-in games.
    pub fn with_access(media: Arc<dyn MediaBackend>, settings: HubSettings, access: Arc<dyn Access>) -> Self {
        Hub::with_games(media, settings, access, Registry::builtin())
    }

    /// A hub offering the kinds of room in `registry`, on one node ([`Standalone`]).
    pub fn with_games(
        media: Arc<dyn MediaBackend>,
        settings: HubSettings,
        access: Arc<dyn Access>,
        registry: Registry,
    ) -> Self {
        Hub::with_directory(media, settings, access, registry, Arc::new(Standalone))
    }

    /// A hub that is one node of a cluster: `directory` says where the rooms it does not hold
    /// live, and hears when one of its rooms closes.
    pub fn with_directory(
        media: Arc<dyn MediaBackend>,
        settings: HubSettings,
        access: Arc<dyn Access>,
        registry: Registry,
        directory: Arc<dyn Directory>,
    ) -> Self {
        Hub {
            inner: Arc::new(HubInner {
                rooms: Mutex::new(HashMap::new()),
                media,
                access,
                settings,
                counter: AtomicU64::new(0),
                stats: Arc::new(SignalingStats::default()),
                registry,
                directory,
            }),
        }
    }

    /// Where the rooms this node does not hold live.
    pub fn directory(&self) -> &dyn Directory {
        self.inner.directory.as_ref()
    }

    /// Whether a room with this code is open on this node.
    pub fn holds(&self, code: &str) -> bool {
        self.existing(code).is_some()
    }

    /// The kinds of room this hub offers.
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// The signaling statistics (shared; read them for metrics).
    pub fn stats(&self) -> Arc<SignalingStats> {
        self.inner.stats.clone()
    }

    /// Number of open rooms.
    pub fn room_count(&self) -> usize {
        self.inner.rooms.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// The codes of the open rooms, in no order.
    pub fn room_codes(&self) -> Vec<String> {
        let rooms = self.inner.rooms.lock().unwrap_or_else(|e| e.into_inner());
        rooms.iter().filter(|(_, h)| !h.tx.is_closed()).map(|(c, _)| c.clone()).collect()
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

    /// Who may create rooms and hold host powers.
    pub fn access(&self) -> &dyn Access {
        self.inner.access.as_ref()
    }

    /// Open a room through the room API: with `code`, or a fresh unguessable code when
    /// `None`. Refused with `bad_field` (invalid code, unknown kind, bad settings), `name_taken`
    /// (a room with this code is open) or `too_many_rooms`. Must be called inside a tokio
    /// runtime.
    pub fn create_room(&self, code: Option<String>, options: RoomOptions) -> Result<String, Refusal> {
        let kind = options.kind.as_deref().unwrap_or(self.inner.registry.default_kind());
        self.inner.registry.check_settings(kind, &options.settings)?;
        let mut rooms = self.inner.rooms.lock().unwrap_or_else(|e| e.into_inner());
        rooms.retain(|_, h| !h.tx.is_closed());
        let code = match code {
            Some(code) if !crate::ids::is_valid_code(&code) => {
                return Err(Refusal::new(ErrorCode::BadField, "code: 1-32 characters of A-Z, a-z, 0-9 and -"))
            }
            Some(code) if rooms.contains_key(&code) => {
                return Err(Refusal::new(ErrorCode::NameTaken, format!("a room with code {code} is open")))
            }
            Some(code) => code,
            None => loop {
                let code = crate::ids::new_room_code();
                if !rooms.contains_key(&code) {
                    break code;
                }
            },
        };
        if rooms.len() >= self.inner.settings.max_rooms {
            return Err(Refusal::new(ErrorCode::TooManyRooms, "the server holds as many rooms as it may"));
        }
        let handle = self.open(&code, options)?;
        rooms.insert(code.clone(), handle);
        Ok(code)
    }

    /// What the room API shows of the room `code`, if it is open.
    pub async fn room_info(&self, code: &str) -> Option<RoomInfo> {
        let handle = self.existing(code)?;
        let (reply, rx) = tokio::sync::oneshot::channel();
        handle.tx.send(RoomInput::Info { reply }).ok()?;
        rx.await.ok()
    }

    /// Every open room, as the room API shows it, by code.
    pub async fn rooms(&self) -> Vec<RoomInfo> {
        let codes: Vec<String> = {
            let rooms = self.inner.rooms.lock().unwrap_or_else(|e| e.into_inner());
            rooms.iter().filter(|(_, h)| !h.tx.is_closed()).map(|(c, _)| c.clone()).collect()
        };
        let mut all = Vec::with_capacity(codes.len());
        for code in codes {
            if let Some(info) = self.room_info(&code).await {
                all.push(info);
            }
        }
        all.sort_by(|a, b| a.code.cmp(&b.code));
        all
    }

    /// Close the room `code` (room API): everyone in it gets `room_closed` and is
    /// disconnected. False when no such room is open.
    pub fn close_room(&self, code: &str) -> bool {
        let mut rooms = self.inner.rooms.lock().unwrap_or_else(|e| e.into_inner());
        match rooms.remove(code) {
            Some(handle) => handle.tx.send(RoomInput::Close).is_ok(),
            None => false,
        }
    }

    /// The room with this code, opened now as a room of `kind` (the default kind when `None`)
    /// if it does not exist (open mode). Refused with `too_many_rooms` when the server already
    /// holds its maximum of rooms, `bad_field` for a kind it does not offer. Must be called
    /// inside a tokio runtime: a new room is a new task.
    pub(crate) fn room(&self, code: &str, kind: Option<&str>) -> Result<RoomHandle, Refusal> {
        let mut rooms = self.inner.rooms.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(handle) = rooms.get(code) {
            if !handle.tx.is_closed() {
                return Ok(handle.clone());
            }
        }
        rooms.retain(|_, h| !h.tx.is_closed());
        if rooms.len() >= self.inner.settings.max_rooms {
            return Err(Refusal::new(
                ErrorCode::TooManyRooms,
                "the server holds as many rooms as it may; try again later",
            ));
        }
        let options = RoomOptions { kind: kind.map(str::to_owned), ..RoomOptions::default() };
        let handle = self.open(code, options)?;
        rooms.insert(code.to_owned(), handle.clone());
        Ok(handle)
    }

    /// Start a room task (the caller holds the rooms lock and registers the handle).
    fn open(&self, code: &str, options: RoomOptions) -> Result<RoomHandle, Refusal> {
        let instance = self.inner.next_connection();
        let (tx, rx) = mpsc::unbounded_channel();
        let notify = tx.clone();
        let sink = Box::new(move |n: MediaNotice| {
            let _ = notify.send(RoomInput::Media(n));
        });
        // The media layer keys rooms by name: a code closed and opened again at once must not
        // share its media room with the old instance that is still winding down.
        if let Some(kind) = &options.kind {
            self.inner.registry.get(kind)?;
        }
        let port = self.inner.media.open_room(&format!("{code}#{instance}"), sink);
        let home: Arc<dyn Home> = self.inner.clone();
        let room = Room::new(code.to_owned(), instance, self.inner.settings.clone(), home, port, options)?;
        tokio::spawn(room.run(rx));
        Ok(RoomHandle { tx, instance })
    }
}
