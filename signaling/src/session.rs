//! One client connection: parses each frame once, enforces "join first", answers `ping`,
//! and hands everything else to its room.

use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::directory::Placement;
use crate::game::{AnyInput, Millis, Rtt};
use crate::hub::Hub;
use crate::ids;
use crate::limit::TokenBucket;
use crate::outbound::Outbound;
use crate::protocol::{
    self, ClientMsg, ErrorCode, Parsed, Refusal, ServerMsg, CLOSE_POLICY, CLOSE_REDIRECT, CLOSE_TOO_LARGE,
    MAX_LAYOUT_TILES, MAX_TILE_HEIGHT,
};
use crate::room::{unix_ms, RoomHandle, RoomInput};
use crate::rtt::RttTracker;

/// The message limit: `messages_per_second`, bursts of `message_burst`.
struct Bucket {
    tokens: TokenBucket,
    /// Messages refused since the last one accepted.
    refused: u32,
}

impl Bucket {
    fn take(&mut self) -> bool {
        if self.tokens.try_take(Instant::now()) {
            self.refused = 0;
            true
        } else {
            self.refused += 1;
            false
        }
    }
}

struct Seat {
    room: RoomHandle,
    id: String,
    connection: u64,
}

/// The protocol state of one WebSocket connection. The transport feeds it frames and
/// writes out whatever appears on the receiver returned by [`Connection::new`].
pub struct Connection {
    hub: Hub,
    out: mpsc::UnboundedSender<Outbound>,
    seat: Option<Seat>,
    left: bool,
    bucket: Bucket,
    /// The client's address, for per-address limits on room lookups.
    client: Option<std::net::IpAddr>,
    /// Round trips of the transport's Ping frames.
    rtt: RttTracker,
    /// The figure last told to the room.
    told_rtt: Option<Rtt>,
}

impl Connection {
    /// A new connection and the receiver of what must be sent on it.
    pub fn new(hub: Hub) -> (Connection, mpsc::UnboundedReceiver<Outbound>) {
        let (out, rx) = mpsc::unbounded_channel();
        let settings = hub.settings();
        let burst = f64::from(settings.message_burst);
        let bucket =
            Bucket { tokens: TokenBucket::full(settings.messages_per_second, burst, Instant::now()), refused: 0 };
        (
            Connection {
                hub,
                out,
                seat: None,
                left: false,
                bucket,
                client: None,
                rtt: RttTracker::new(),
                told_rtt: None,
            },
            rx,
        )
    }

    /// Tell the connection its client's address (lookups of unknown room codes are limited
    /// per address).
    pub fn set_client(&mut self, client: std::net::IpAddr) {
        self.client = Some(client);
    }

    /// The participant id, once joined.
    pub fn participant(&self) -> Option<&str> {
        self.seat.as_ref().map(|s| s.id.as_str())
    }

    /// The transport's WebSocket Ping came back after `rtt` (the server's own measurement:
    /// page code cannot touch these frames).
    pub fn on_pong(&mut self, rtt: Duration) {
        self.rtt.observe(unix_ms(), rtt.as_secs_f64() * 1000.0);
        self.on_pong_figure();
    }

    /// This connection's measured round trip, once there is one.
    pub fn rtt(&self) -> Option<Rtt> {
        self.rtt.current()
    }

    /// A text frame arrived.
    pub async fn on_text(&mut self, text: &str) {
        // Judged by when it arrived, not by when the room gets to it.
        let at = unix_ms();
        if !self.admit() {
            return;
        }
        let msg = match protocol::parse_client(text) {
            Ok(msg) => msg,
            Err(refusal) => {
                self.refuse(&refusal);
                if refusal.code == ErrorCode::TooLarge {
                    self.emit(Outbound::Close { code: CLOSE_TOO_LARGE, reason: "too_large".into() });
                }
                return;
            }
        };
        let result = match msg {
            Parsed::Room(msg) => self.dispatch(msg, at).await,
            Parsed::Game { ty, value } => self.game_message(&ty, value, at),
        };
        if let Err(refusal) = result {
            self.refuse(&refusal);
        }
    }

    /// A message for the room's game (the room checks it is one of its game's).
    fn game_message(&mut self, ty: &str, value: serde_json::Value, at: Millis) -> Result<(), Refusal> {
        let Some(seat) = &self.seat else {
            // A type no game knows is unknown whether or not one has joined.
            if self.hub.registry().kind_of_command(ty).is_none() {
                return Err(self.hub.registry().refuse_type(ty, "").into());
            }
            return Err(Refusal::new(ErrorCode::NotJoined, "send join first"));
        };
        let input = RoomInput::Play { id: seat.id.clone(), input: AnyInput::Game(value), at };
        seat.room.tx.send(input).map_err(|_| Refusal::new(ErrorCode::RoomNotFound, "the room has closed"))
    }

    /// Rate limiting: refuse what exceeds the bucket; disconnect a client that keeps on
    /// after another burst's worth of refusals.
    fn admit(&mut self) -> bool {
        if self.bucket.take() {
            return true;
        }
        let refused = self.bucket.refused;
        let burst = self.bucket.tokens.burst();
        if f64::from(refused) > burst {
            if refused == burst as u32 + 1 {
                self.refuse(&Refusal::new(ErrorCode::RateLimited, "still too many messages; disconnecting"));
                self.emit(Outbound::Close { code: CLOSE_POLICY, reason: "rate_limited".into() });
            }
            return false;
        }
        if refused == 1 || refused.is_multiple_of(10) {
            // One error per episode (and a reminder now and then), not one per message.
            let rate = self.bucket.tokens.rate();
            self.refuse(&Refusal::new(ErrorCode::RateLimited, format!("too many messages; at most {rate} a second")));
        }
        false
    }

    /// A binary frame arrived: the protocol is text only.
    pub fn on_binary(&mut self) {
        if !self.admit() {
            return;
        }
        self.refuse(&Refusal::new(ErrorCode::BadJson, "binary frames are not part of the protocol; send JSON text"));
    }

    /// The socket closed (any close code, or none): not a departure, unless `leave` came first.
    pub fn on_closed(self) {
        if self.left {
            return;
        }
        if let Some(seat) = self.seat {
            let _ = seat.room.tx.send(RoomInput::SocketClosed { id: seat.id, connection: seat.connection });
        }
    }

    async fn dispatch(&mut self, msg: ClientMsg, at: Millis) -> Result<(), Refusal> {
        if let ClientMsg::Join { room, name, resume, token, pin, kind } = msg {
            self.join(room, name, resume, token, pin, kind).await?;
            // The room learns the round trip measured before the join.
            self.told_rtt = None;
            self.on_pong_figure();
            return Ok(());
        }
        let Some(seat) = &self.seat else {
            return Err(Refusal::new(ErrorCode::NotJoined, "send join first"));
        };
        let id = seat.id.clone();
        let play = |id: String, input: AnyInput| RoomInput::Play { id, input, at };
        let input = match msg {
            ClientMsg::Join { .. } => unreachable!("handled above"),
            ClientMsg::Ping { t } => {
                let rtt_ms = self.rtt.current().map(|r| r.ms);
                self.emit_msg(&ServerMsg::Pong { t, server_time: unix_ms(), rtt_ms });
                return Ok(());
            }
            ClientMsg::Offer { sdp } => RoomInput::Offer { id, sdp },
            ClientMsg::Answer { sdp } => RoomInput::Answer { id, sdp },
            ClientMsg::Candidate(candidate) => RoomInput::Candidate { id, candidate },
            ClientMsg::Leave => {
                self.left = true;
                RoomInput::Leave { id }
            }
            ClientMsg::Chat { channel, text } => {
                let text =
                    ids::clean_chat(&text).map_err(|e| Refusal::new(ErrorCode::BadField, format!("text: {e}")))?;
                play(id, AnyInput::Chat { channel, text })
            }
            ClientMsg::Ready { ready } => play(id, AnyInput::Ready { ready }),
            ClientMsg::StartGame { settings } => {
                play(id, AnyInput::Start { settings: settings.unwrap_or(serde_json::Value::Null), seed: None })
            }
            ClientMsg::Kick { id: target } => play(id, AnyInput::Kick { id: target }),
            ClientMsg::Lock { locked } => RoomInput::Lock { id, locked },
            ClientMsg::SetKind { kind } => RoomInput::SetKind { id, kind },
            ClientMsg::Layout { tiles } => {
                if tiles.len() > MAX_LAYOUT_TILES {
                    let why = format!("tiles: at most {MAX_LAYOUT_TILES} publishers");
                    return Err(Refusal::new(ErrorCode::BadField, why));
                }
                if let Some((who, _)) = tiles.iter().find(|(_, t)| t.height > MAX_TILE_HEIGHT) {
                    let why = format!("tiles.{who}.height: at most {MAX_TILE_HEIGHT}");
                    return Err(Refusal::new(ErrorCode::BadField, why));
                }
                RoomInput::Layout { id, heights: tiles.into_iter().map(|(who, t)| (who, t.height)).collect() }
            }
        };
        if seat.room.tx.send(input).is_err() {
            return Err(Refusal::new(ErrorCode::RoomNotFound, "the room has closed"));
        }
        Ok(())
    }

    /// Tell the room the current round trip if it has not heard it.
    fn on_pong_figure(&mut self) {
        let current = self.rtt.current();
        if current == self.told_rtt {
            return;
        }
        if let (Some(seat), Some(rtt)) = (&self.seat, current) {
            if seat.room.tx.send(RoomInput::Rtt { id: seat.id.clone(), rtt }).is_ok() {
                self.told_rtt = current;
            }
        }
    }

    async fn join(
        &mut self,
        room: String,
        name: String,
        resume: Option<String>,
        token: Option<String>,
        pin: Option<String>,
        kind: Option<String>,
    ) -> Result<(), Refusal> {
        if self.seat.is_some() {
            return Err(Refusal::new(ErrorCode::BadField, "already joined; this socket holds a seat"));
        }
        if !ids::is_valid_code(&room) {
            return Err(Refusal::new(ErrorCode::BadField, "room: codes are 1-32 characters of A-Z, a-z, 0-9 and -"));
        }
        let name = ids::clean_name(&name).map_err(|e| Refusal::new(ErrorCode::BadField, format!("name: {e}")))?;
        let access = self.hub.access();
        let host = match &token {
            Some(t) if access.host_token_valid(&room, t) => true,
            // A stale host token (expired, or the server restarted without a fixed secret) must not
            // cost a player the seat their resume token still holds: resume without the powers.
            Some(_) if resume.is_some() => false,
            Some(_) => {
                return Err(Refusal::new(
                    ErrorCode::BadToken,
                    "the host token is invalid, expired, or for another room",
                ))
            }
            None => false,
        };
        // Codes must not be found by guessing: an address that looked up too many unknown
        // codes is refused for a while, whether the next code exists or not. Resumes count too.
        let mut exists = self.hub.existing(&room).is_some();
        // A code with no room here may live on another node (docs/PROTOCOL.md, "Redirects").
        let may_create = resume.is_none() && access.rooms_on_join();
        let mut claimed = false;
        if !exists {
            match self.hub.directory().place(&room, may_create).await? {
                Placement::There { url } => {
                    if !access.lookup(self.client, true) {
                        return Err(Refusal::new(
                            ErrorCode::RateLimited,
                            "too many unknown room codes tried; wait a minute",
                        ));
                    }
                    self.emit_msg(&ServerMsg::Redirect { url });
                    self.emit(Outbound::Close { code: CLOSE_REDIRECT, reason: "redirect".into() });
                    return Ok(());
                }
                Placement::Here => {
                    claimed = may_create;
                    exists = self.hub.existing(&room).is_some();
                }
            }
        }
        let result = self.join_here(room.clone(), name, resume, pin, kind, host, exists).await;
        // A claim made for a room that did not open here must not hold the code.
        if claimed && !self.hub.holds(&room) {
            self.hub.directory().released(&room);
        }
        result
    }

    /// The rest of `join`, once the room is known to live on this node.
    #[allow(clippy::too_many_arguments)]
    async fn join_here(
        &mut self,
        room: String,
        name: String,
        resume: Option<String>,
        pin: Option<String>,
        kind: Option<String>,
        host: bool,
        exists: bool,
    ) -> Result<(), Refusal> {
        let access = self.hub.access();
        if !access.lookup(self.client, exists) {
            return Err(Refusal::new(ErrorCode::RateLimited, "too many unknown room codes tried; wait a minute"));
        }
        if let Some(resume) = resume {
            return self.resume(&room, resume, host).await;
        }
        if !exists && !access.rooms_on_join() {
            return Err(Refusal::new(ErrorCode::RoomNotFound, format!("there is no room {room}")));
        }
        // A room that closes between lookup and join drops our request; try a fresh one once.
        for _ in 0..2 {
            let handle = if access.rooms_on_join() {
                self.hub.room(&room, kind.as_deref())?
            } else {
                match self.hub.existing(&room) {
                    Some(h) => h,
                    None => break,
                }
            };
            let (reply, rx) = oneshot::channel();
            let sent = handle.tx.send(RoomInput::Join {
                name: name.clone(),
                out: self.out.clone(),
                reply,
                host,
                pin: pin.clone(),
            });
            if sent.is_err() {
                continue;
            }
            match rx.await {
                Ok(Ok(joined)) => {
                    self.seat = Some(Seat { room: handle, id: joined.id, connection: joined.connection });
                    return Ok(());
                }
                Ok(Err(refusal)) => {
                    // A wrong PIN costs what an unknown code costs, or PINs could be tried at will.
                    if refusal.code == ErrorCode::BadPin && !access.lookup(self.client, false) {
                        return Err(Refusal::new(ErrorCode::RateLimited, "too many wrong PINs tried; wait a minute"));
                    }
                    return Err(refusal);
                }
                Err(_) => continue,
            }
        }
        Err(Refusal::new(ErrorCode::RoomNotFound, "the room closed while joining; try again"))
    }

    /// Take back a seat in an existing room; a room that no longer exists has no seats.
    async fn resume(&mut self, room: &str, token: String, host: bool) -> Result<(), Refusal> {
        // The same words as the room's own refusal: a resume must not tell whether a code exists.
        let expired = || {
            Refusal::new(
                ErrorCode::ResumeExpired,
                "that seat is gone (unknown token, or its grace period ended); join again",
            )
        };
        let handle = self.hub.existing(room).ok_or_else(expired)?;
        let (reply, rx) = oneshot::channel();
        handle.tx.send(RoomInput::Resume { token, out: self.out.clone(), reply, host }).map_err(|_| expired())?;
        let joined = rx.await.map_err(|_| expired())??;
        self.seat = Some(Seat { room: handle, id: joined.id, connection: joined.connection });
        Ok(())
    }

    fn refuse(&self, refusal: &Refusal) {
        self.emit_msg(&refusal.to_msg());
    }

    fn emit_msg(&self, msg: &ServerMsg) {
        self.emit(Outbound::Text(msg.to_text()));
    }

    fn emit(&self, out: Outbound) {
        let _ = self.out.send(out);
    }
}
