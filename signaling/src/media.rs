//! The room's view of the media layer: a small trait the binary implements, so this crate
//! never depends on the SFU (and the SFU never on games).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use crate::game::RouteChange;

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why the media layer refused a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaRefusal {
    /// The SDP is invalid or cannot be applied.
    BadSdp(String),
    /// A server offer is outstanding.
    Glare,
    /// The media layer is at capacity.
    Full,
    /// Anything else (the message says what).
    Failed(String),
}

/// What the media layer tells a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaNotice {
    /// Send this offer to `peer`.
    Offer {
        /// Recipient.
        peer: String,
        /// The SDP.
        sdp: String,
    },
    /// `peer`'s media connected.
    Connected {
        /// The peer.
        peer: String,
    },
    /// Who speaks now changed: these publishers, loudest first, whoever may hear them (the
    /// room tells each participant only about those it may hear).
    Speaking {
        /// The publishers speaking now.
        peers: Vec<String>,
    },
    /// `peer`'s media path was lost or dropped.
    Lost {
        /// The peer.
        peer: String,
        /// Why.
        reason: String,
    },
}

/// Where a room's media notices go.
pub type NoticeSink = Box<dyn Fn(MediaNotice) + Send + Sync>;

/// One room's media, as the room drives it.
pub trait MediaPort: Send + Sync {
    /// A client's offer; returns the answer SDP.
    fn offer(&self, peer: &str, sdp: String) -> BoxFuture<'_, Result<String, MediaRefusal>>;
    /// A client's answer to the server's offer.
    fn answer(&self, peer: &str, sdp: String) -> BoxFuture<'_, Result<(), MediaRefusal>>;
    /// A trickled candidate from the client.
    fn candidate(&self, peer: &str, candidate: String);
    /// The participant is gone: drop its media.
    fn remove_peer(&self, peer: &str);
    /// The participant resumed on a new socket: send it no offers until it offers again.
    fn hold_offers(&self, peer: &str);
    /// Change the room's routes: each listed (publisher, kind) reaches exactly its
    /// subscribers; what is not listed stays as it is. Resolves once the media layer applied
    /// them (a phase is announced only then).
    fn update_routes(&self, epoch: u64, changes: Vec<RouteChange>) -> BoxFuture<'_, ()>;
    /// How tall (device pixels) `peer` shows each publisher's video, by publisher id, from its
    /// page's `layout`: what simulcast layer each needs. A media layer without simulcast
    /// ignores it.
    fn layout(&self, peer: &str, heights: BTreeMap<String, u16>) -> BoxFuture<'_, ()> {
        let _ = (peer, heights);
        Box::pin(async {})
    }
}

/// Opens rooms on the media layer.
pub trait MediaBackend: Send + Sync {
    /// Open `room`; its notices go to `sink`. Dropping the port closes the room's media.
    fn open_room(&self, room: &str, sink: NoticeSink) -> Box<dyn MediaPort>;
}
