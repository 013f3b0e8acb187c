//! The one place that sees both halves: signaling's media trait, implemented on parlor-media.

use parlor_media::{Kind, Matrix, Media, MediaError, MediaEvent, RoomMedia};
use parlor_signaling::{BoxFuture, MediaBackend, MediaKind, MediaNotice, MediaPort, MediaRefusal, NoticeSink, Route};
use std::sync::Arc;

/// parlor-media as signaling's media backend.
pub struct MediaGlue(pub Arc<Media>);

struct Port(RoomMedia);

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
                MediaEvent::Disconnected { peer } => MediaNotice::Lost { peer, reason: "ICE connectivity lost".into() },
                MediaEvent::Failed { peer, reason } => MediaNotice::Lost { peer, reason },
            })
        });
        Box::new(Port(self.0.open_room(room, events)))
    }
}

impl MediaPort for Port {
    fn offer(&self, peer: &str, sdp: String) -> BoxFuture<'_, Result<String, MediaRefusal>> {
        let peer = peer.to_owned();
        Box::pin(async move { self.0.offer(&peer, sdp).await.map_err(refusal) })
    }

    fn answer(&self, peer: &str, sdp: String) -> BoxFuture<'_, Result<(), MediaRefusal>> {
        let peer = peer.to_owned();
        Box::pin(async move { self.0.answer(&peer, sdp).await.map_err(refusal) })
    }

    fn candidate(&self, peer: &str, candidate: String) {
        self.0.candidate(peer, candidate);
    }

    fn remove_peer(&self, peer: &str) {
        self.0.remove_peer(peer);
    }

    fn hold_offers(&self, peer: &str) {
        self.0.hold_offers(peer);
    }

    fn set_routes(&self, epoch: u64, routes: Vec<Route>) -> BoxFuture<'_, ()> {
        let mut matrix = Matrix::new(epoch);
        for r in &routes {
            let kind = match r.kind {
                MediaKind::Audio => Kind::Audio,
                MediaKind::Video => Kind::Video,
            };
            matrix.allow(&r.subscriber, &r.publisher, kind);
        }
        Box::pin(async move {
            if let Err(e) = self.0.set_matrix(matrix).await {
                tracing::error!("media worker refused a matrix: {e}");
            }
        })
    }
}
