//! The one place that sees both halves: signaling's media trait, implemented on parlor-media.

use parlor_media::{Kind, Media, MediaError, MediaEvent, Reach, RoomMedia};
use parlor_signaling::{
    BoxFuture, MediaBackend, MediaKind, MediaNotice, MediaPort, MediaRefusal, NoticeSink, RouteChange,
};
use std::sync::Arc;

/// parlor-media as signaling's media backend.
pub struct MediaGlue(pub Arc<Media>);

struct Port {
    media: RoomMedia,
}

fn refusal(e: MediaError) -> MediaRefusal {
    match e {
        MediaError::BadSdp(m) => MediaRefusal::BadSdp(m),
        MediaError::Glare => MediaRefusal::Glare,
        MediaError::NoPendingOffer => MediaRefusal::BadSdp("no offer from the server is outstanding".into()),
        MediaError::Full => MediaRefusal::Full,
        other => MediaRefusal::Failed(other.to_string()),
    }
}

impl MediaBackend for MediaGlue {
    fn open_room(&self, room: &str, sink: NoticeSink) -> Box<dyn MediaPort> {
        let events = Arc::new(move |e: MediaEvent| {
            sink(match e {
                MediaEvent::Offer { peer, sdp } => MediaNotice::Offer { peer, sdp },
                MediaEvent::Connected { peer } => MediaNotice::Connected { peer },
                MediaEvent::Speaking { peers } => MediaNotice::Speaking { peers },
                MediaEvent::Disconnected { peer } => MediaNotice::Lost { peer, reason: "ICE connectivity lost".into() },
                MediaEvent::Failed { peer, reason } => MediaNotice::Lost { peer, reason },
            })
        });
        Box::new(Port { media: self.0.open_room(room, events) })
    }
}

impl MediaPort for Port {
    fn offer(&self, peer: &str, sdp: String) -> BoxFuture<'_, Result<String, MediaRefusal>> {
        let peer = peer.to_owned();
        Box::pin(async move { self.media.offer(&peer, sdp).await.map_err(refusal) })
    }

    fn answer(&self, peer: &str, sdp: String) -> BoxFuture<'_, Result<(), MediaRefusal>> {
        let peer = peer.to_owned();
        Box::pin(async move { self.media.answer(&peer, sdp).await.map_err(refusal) })
    }

    fn candidate(&self, peer: &str, candidate: String) {
        self.media.candidate(peer, candidate);
    }

    fn remove_peer(&self, peer: &str) {
        self.media.remove_peer(peer);
    }

    fn hold_offers(&self, peer: &str) {
        self.media.hold_offers(peer);
    }

    fn layout(&self, peer: &str, heights: std::collections::BTreeMap<String, u16>) -> BoxFuture<'_, ()> {
        let peer = peer.to_owned();
        Box::pin(async move {
            if let Err(e) = self.media.set_tiles(&peer, heights.into_iter().collect()).await {
                tracing::error!("media worker refused a layout: {e}");
            }
        })
    }

    fn update_routes(&self, epoch: u64, changes: Vec<RouteChange>) -> BoxFuture<'_, ()> {
        // Both sides speak per publisher: a change is the complete new set of one
        // (publisher, kind), so this is a translation, and the worker touches only those.
        let reaches = changes.into_iter().map(reach).collect();
        Box::pin(async move {
            if let Err(e) = self.media.update_routes(epoch, reaches).await {
                tracing::error!("media worker refused a route update: {e}");
            }
        })
    }
}

/// A route change in parlor-media's words.
fn reach(change: RouteChange) -> Reach {
    let kind = match change.kind {
        MediaKind::Audio => Kind::Audio,
        MediaKind::Video => Kind::Video,
    };
    Reach { publisher: change.publisher, kind, subscribers: change.subscribers }
}
