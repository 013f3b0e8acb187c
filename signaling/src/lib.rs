//! parlor's signaling: the wire protocol, client connections and rooms.
//!
//! A transport (the binary's WebSocket handler) creates a [`Connection`] per socket and feeds
//! it text frames; the connection parses each frame once into a typed [`ClientMsg`] and hands
//! it to its room. A room is one task that owns its participants and drives the media layer
//! through the [`MediaPort`] trait, which the binary implements — this crate never sees
//! sockets of the media kind, and the media layer never sees rooms.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod game;
pub mod gamelog;
mod hub;
pub mod ids;
pub mod limit;
pub mod media;
pub mod protocol;
mod room;
mod session;
pub mod stats;

pub use hub::{Access, Hub, HubSettings, OpenAccess, RoomInfo, RoomOptions};
pub use media::{BoxFuture, MediaBackend, MediaKind, MediaNotice, MediaPort, MediaRefusal, NoticeSink, Route};
pub use protocol::{ClientMsg, ErrorCode, Participant, Refusal, ServerMsg};
pub use session::{Connection, Outbound};
