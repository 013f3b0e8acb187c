//! One WebRTC peer as the worker sees it: its str0m instance, the tracks it publishes, the
//! tracks it receives, and where its SDP negotiation stands.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

use str0m::change::SdpPendingOffer;
use str0m::media::Mid;
use str0m::media::Rid;
use str0m::net::Protocol;
use str0m::rtp::{Ssrc, StreamTx};
use str0m::{Event, Output, Rtc};

use crate::allocate::Rate;
use crate::batch::SendBatch;
use crate::layers::{LayerSelector, MAX_LAYERS};
use crate::rewrite::Rewriter;
use crate::routes::Kind;
use crate::stats::Counters;
use crate::tcp::TcpSide;

/// Index of a peer in its worker's table.
pub(crate) type PeerKey = usize;

/// A track this peer publishes.
#[derive(Debug)]
pub(crate) struct TrackIn {
    pub mid: Mid,
    pub kind: Kind,
    /// When a keyframe was last asked of it (a track without layers).
    pub last_keyframe_request: Option<Instant>,
    /// Its simulcast layers, lowest first as the offer listed them (empty: one plain stream).
    pub layers: Vec<LayerIn>,
}

/// One simulcast layer of a published track.
#[derive(Debug)]
pub(crate) struct LayerIn {
    pub rid: Rid,
    /// Packets arrive on it (from its first packet until str0m reports its stream paused).
    pub flowing: bool,
    /// Keyframe requests are rate-limited per layer: each layer is its own encoder.
    pub last_keyframe_request: Option<Instant>,
    /// Its bitrate as it arrives, what a subscriber's budget pays for it.
    pub rate: Rate,
    /// Its picture size (width, height), from its latest keyframe: what a tile needs of it.
    pub size: Option<(u16, u16)>,
}

impl TrackIn {
    /// A published track; `rids` are its simulcast layers (at most [`MAX_LAYERS`] are kept).
    pub fn new(mid: Mid, kind: Kind, rids: &[Rid]) -> TrackIn {
        let layers = rids
            .iter()
            .take(MAX_LAYERS)
            .map(|rid| LayerIn {
                rid: *rid,
                flowing: false,
                last_keyframe_request: None,
                rate: Rate::default(),
                size: None,
            })
            .collect();
        TrackIn { mid, kind, last_keyframe_request: None, layers }
    }

    /// The index of the layer `rid` names, if it is one of ours.
    pub fn layer_of(&self, rid: Rid) -> Option<u8> {
        self.layers.iter().position(|l| l.rid == rid).map(|i| i as u8)
    }

    /// The layers flowing now, one bit each.
    pub fn flowing(&self) -> u8 {
        self.layers.iter().enumerate().filter(|(_, l)| l.flowing).fold(0, |m, (i, _)| m | 1 << i)
    }
}

/// A track this peer receives: one publisher's track, on one of our send-only m-lines.
#[derive(Debug)]
pub(crate) struct TrackOut {
    pub publisher: PeerKey,
    pub publisher_mid: Mid,
    pub kind: Kind,
    pub mid: Mid,
    /// Whether the last answer covered this m-line (only then can it be written).
    pub negotiated: bool,
    /// Whether the room's routes currently allow this pair (the packet path reads only this).
    pub allowed: bool,
    pub rewriter: Rewriter,
    /// For a simulcast publisher's track: which of its layers this subscriber gets.
    pub layers: Option<LayerSelector>,
    /// How tall (device pixels) the subscriber shows this video, if its page said so.
    pub tile_height: Option<u16>,
    /// The SSRC of our send stream on `mid`, once found: str0m finds a send stream by SSRC in
    /// a hash map but by mid only by a pass over all of the peer's streams (200 in a stage
    /// room of 100), once per packet.
    pub tx_ssrc: Option<Ssrc>,
}

/// A peer and its negotiation state.
pub(crate) struct Peer {
    pub id: String,
    pub room: String,
    pub rtc: Rtc,
    pub ufrag: String,
    pub timeout: Instant,
    pub tracks_in: Vec<TrackIn>,
    /// Sorted by (publisher, publisher's mid): a publisher's tracks lie together and are
    /// found by binary search, on the packet path and by a route change alike.
    pub tracks_out: Vec<TrackOut>,
    /// Our offer, waiting for the client's answer.
    pub pending: Option<SdpPendingOffer>,
    /// Whether we have answered the client's first offer (we never offer before that).
    pub answered: bool,
    /// No server offers until the client offers again (its signaling was replaced: the offer
    /// would reach a client that may no longer hold this peer connection).
    pub held: bool,
    pub connected: bool,
    /// The bitrate its simulcast video must fit in, if the room set one (`RoomMedia::set_budget`).
    pub budget: Option<u64>,
    /// Its bandwidth estimate, from its receiver reports (what its budget is fitted to as well).
    pub bwe: crate::estimate::PeerEstimate,
    /// How tall its page shows each publisher's video, by publisher id (`RoomMedia::set_tiles`);
    /// kept for the tracks negotiated later.
    pub tiles: HashMap<String, u16>,
    /// Where str0m last sent to, and the addresses it newly sent to since the worker last
    /// looked: str0m answers only checks that pass MESSAGE-INTEGRITY and sends media only to
    /// the pair it nominated, so these are the addresses the demultiplexer may trust.
    pub sent_to: Option<std::net::SocketAddr>,
    pub new_addresses: Vec<std::net::SocketAddr>,
}

impl Peer {
    /// The track we send to this peer for `publisher`'s `mid`, if any.
    pub fn track_out_mut(&mut self, publisher: PeerKey, publisher_mid: Mid) -> Option<&mut TrackOut> {
        let at = self.tracks_out.binary_search_by(|t| (t.publisher, t.publisher_mid).cmp(&(publisher, publisher_mid)));
        at.ok().map(|i| &mut self.tracks_out[i])
    }

    /// Restore the order of `tracks_out` after adding to it.
    pub fn sort_tracks_out(&mut self) {
        self.tracks_out.sort_unstable_by_key(|t| (t.publisher, t.publisher_mid));
    }
}

/// Run `f` on our send stream on `mid`, found by `known` (its SSRC, from an earlier call)
/// while that is still the stream on `mid`, else by its mid. Returns `f`'s result and the
/// stream's SSRC, for the caller to remember; `None` when `mid` has no send stream.
pub(crate) fn on_stream_tx<T>(
    rtc: &mut Rtc,
    mid: Mid,
    known: Option<Ssrc>,
    f: impl FnOnce(&mut StreamTx) -> T,
) -> Option<(T, Ssrc)> {
    let mut api = rtc.direct_api();
    let current = known.filter(|ssrc| api.stream_tx(ssrc).is_some_and(|tx| tx.mid() == mid));
    let tx = match current {
        Some(ssrc) => api.stream_tx(&ssrc),
        None => api.stream_tx_by_mid(mid, None),
    }?;
    let ssrc = tx.ssrc();
    Some((f(tx), ssrc))
}

/// The tracks of `publisher` among `tracks` (sorted as [`Peer::tracks_out`] is).
pub(crate) fn tracks_of(tracks: &mut [TrackOut], publisher: PeerKey) -> &mut [TrackOut] {
    let start = tracks.partition_point(|t| t.publisher < publisher);
    // A publisher has a track or two: walk them rather than search again.
    let len = tracks[start..].iter().take_while(|t| t.publisher == publisher).count();
    &mut tracks[start..start + len]
}

/// Why a call into a peer's str0m instance failed.
#[derive(Debug)]
pub(crate) enum Fault {
    /// str0m returned an error: the peer is no longer usable.
    Rtc(String),
    /// str0m panicked on a broken internal invariant.
    Panic(String),
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fault::Rtc(e) => write!(f, "rtc error: {e}"),
            Fault::Panic(e) => write!(f, "panic: {e}"),
        }
    }
}

/// Remember a destination str0m chose, if it differs from the last one.
fn note_destination(peer: &mut Peer, destination: std::net::SocketAddr) {
    if peer.sent_to != Some(destination) {
        peer.sent_to = Some(destination);
        peer.new_addresses.push(destination);
    }
}

/// Change the peer's `Rtc` by `f` where the change makes no output to poll (a stream's
/// retransmission cache emptied): no drain of `poll_output`, whose pass over every stream of
/// a peer receiving 99 publishers costs more than the change. A panic is contained as in
/// [`mutate`].
pub(crate) fn configure<T>(peer: &mut Peer, f: impl FnOnce(&mut Rtc) -> T) -> Result<T, Fault> {
    catch_unwind(AssertUnwindSafe(|| f(&mut peer.rtc))).map_err(|panic| Fault::Panic(panic_message(panic)))
}

/// Run `f` against the peer's `Rtc`, then drain `poll_output` to its timeout (the
/// single-mutation invariant), queueing UDP transmits in `sends` (the worker flushes them with
/// one `sendmmsg` per pass; see [`crate::batch`]), sending ICE-TCP ones on their connection in
/// `tcp`, and collecting events.
/// A panic inside str0m is contained here, so one broken peer cannot take down its worker.
pub(crate) fn mutate<T>(
    peer: &mut Peer,
    sends: &mut SendBatch,
    tcp: &TcpSide,
    counters: &mut Counters,
    events: &mut Vec<Event>,
    f: impl FnOnce(&mut Rtc) -> T,
) -> Result<T, Fault> {
    let result = catch_unwind(AssertUnwindSafe(|| {
        let value = f(&mut peer.rtc);
        loop {
            match peer.rtc.poll_output() {
                Ok(Output::Timeout(t)) => {
                    peer.timeout = t;
                    return Ok(value);
                }
                Ok(Output::Transmit(t)) if t.proto == Protocol::Tcp => {
                    note_destination(peer, t.destination);
                    if tcp.send(t.destination, &t.contents) {
                        counters.datagrams_out += 1;
                    } else {
                        counters.send_errors += 1;
                    }
                }
                Ok(Output::Transmit(t)) => {
                    note_destination(peer, t.destination);
                    // The buffer moves into the batch. A full queue loses the datagram as a full
                    // socket buffer would.
                    if !sends.push(t.destination, t.contents.into()) {
                        counters.send_errors += 1;
                    }
                }
                Ok(Output::Event(e)) => events.push(e),
                Err(e) => return Err(Fault::Rtc(e.to_string())),
            }
        }
    }));
    match result {
        Ok(r) => r,
        Err(panic) => Err(Fault::Panic(panic_message(panic))),
    }
}

/// What a contained panic said.
fn panic_message(panic: Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}
