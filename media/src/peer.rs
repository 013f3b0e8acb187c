//! One WebRTC peer as the worker sees it: its str0m instance, the tracks it publishes, the
//! tracks it receives, and where its SDP negotiation stands.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

use str0m::change::SdpPendingOffer;
use str0m::media::Mid;
use str0m::net::Protocol;
use str0m::{Event, Output, Rtc};
use tokio::net::UdpSocket;

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
    pub last_keyframe_request: Option<Instant>,
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
}

/// A peer and its negotiation state.
pub(crate) struct Peer {
    pub id: String,
    pub room: String,
    pub rtc: Rtc,
    pub ufrag: String,
    pub timeout: Instant,
    pub tracks_in: Vec<TrackIn>,
    pub tracks_out: Vec<TrackOut>,
    /// Our offer, waiting for the client's answer.
    pub pending: Option<SdpPendingOffer>,
    /// Whether we have answered the client's first offer (we never offer before that).
    pub answered: bool,
    /// No server offers until the client offers again (its signaling was replaced: the offer
    /// would reach a client that may no longer hold this peer connection).
    pub held: bool,
    pub connected: bool,
    /// Where str0m last sent to, and the addresses it newly sent to since the worker last
    /// looked: str0m answers only checks that pass MESSAGE-INTEGRITY and sends media only to
    /// the pair it nominated, so these are the addresses the demultiplexer may trust.
    pub sent_to: Option<std::net::SocketAddr>,
    pub new_addresses: Vec<std::net::SocketAddr>,
}

impl Peer {
    /// The track we send to this peer for `publisher`'s `mid`, if any.
    pub fn track_out_mut(&mut self, publisher: PeerKey, publisher_mid: Mid) -> Option<&mut TrackOut> {
        self.tracks_out.iter_mut().find(|t| t.publisher == publisher && t.publisher_mid == publisher_mid)
    }
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

/// Run `f` against the peer's `Rtc`, then drain `poll_output` to its timeout (the
/// single-mutation invariant), sending transmits on `socket` (or their ICE-TCP connection in
/// `tcp`) and collecting events.
/// A panic inside str0m is contained here, so one broken peer cannot take down its worker.
pub(crate) fn mutate<T>(
    peer: &mut Peer,
    socket: &UdpSocket,
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
                    match socket.try_send_to(&t.contents, t.destination) {
                        Ok(_) => counters.datagrams_out += 1,
                        // A full socket buffer loses this datagram like the network would.
                        Err(_) => counters.send_errors += 1,
                    }
                }
                Ok(Output::Event(e)) => events.push(e),
                Err(e) => return Err(Fault::Rtc(e.to_string())),
            }
        }
    }));
    match result {
        Ok(r) => r,
        Err(panic) => {
            let msg = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(Fault::Panic(msg))
        }
    }
}
