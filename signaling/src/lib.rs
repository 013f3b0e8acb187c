//! parlor's signaling: the wire protocol, client connections, rooms, and the games.
//!
//! A transport (the binary's WebSocket handler) creates a [`Connection`] per socket and feeds
//! it text frames; the connection parses each frame once ([`protocol`]) and hands it to its
//! room. A room is one task that owns its participants' connections and drives two things
//! through small interfaces: its game, whatever the kind ([`game`]: pure state machines behind
//! one interface, named in [`game::registry`]), and the media layer ([`MediaPort`], which the
//! binary implements — this crate never sees the SFU, and the SFU never sees games).
//! docs/ARCHITECTURE.md draws the layers.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod directory;
pub mod game;
pub mod gamelog;
mod hub;
pub mod ids;
pub mod limit;
pub mod media;
mod options;
mod outbound;
pub mod protocol;
mod room;
pub mod rtt;
mod session;
pub mod stats;

pub use directory::{Directory, Figure, Placement, Standalone};
pub use game::{MediaKind, Registry, Route, RouteChange};
pub use hub::{Access, Hub, OpenAccess};
pub use media::{BoxFuture, MediaBackend, MediaNotice, MediaPort, MediaRefusal, NoticeSink};
pub use options::{HubSettings, RoomInfo, RoomOptions};
pub use outbound::Outbound;
pub use protocol::{ClientMsg, ErrorCode, Participant, Refusal, ServerMsg};
pub use session::Connection;
