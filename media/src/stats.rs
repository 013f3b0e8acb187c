//! Counters kept by each worker: what was forwarded and what was dropped, and why.

use crate::routes::Kind;

/// Why a packet (or a datagram) was not forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// The routes deny this (subscriber, publisher, kind).
    NotAllowed,
    /// Video for this subscriber waits for a keyframe.
    WaitingKeyframe,
    /// Nobody else is in the room to receive it.
    NoSubscriber,
    /// The subscriber has not yet answered the offer that carries this track.
    NotNegotiated,
    /// The subscriber's ICE/DTLS is not up yet (str0m would drop the write unencrypted).
    NotConnected,
    /// The subscriber did not negotiate the publisher's codec.
    NoCodec,
    /// A datagram that is neither from a known address nor a STUN request for a known peer.
    UnknownSource,
    /// A datagram or packet that could not be parsed.
    BadPacket,
    /// A subscriber's keyframe request for a pair it may not receive.
    DeniedKeyframeRequest,
    /// A reordered packet from before the point where a subscriber's run resumed.
    Stale,
    /// A simulcast layer other than the one this subscriber gets now.
    OtherLayer,
    /// The simulcast layer this subscriber should switch to, whose sender report (or the
    /// selected layer's) is not known yet: their timestamps cannot be aligned.
    NoSenderReport,
}

impl DropReason {
    /// Every reason, in a fixed order.
    pub const ALL: [DropReason; 12] = [
        DropReason::NotAllowed,
        DropReason::WaitingKeyframe,
        DropReason::NoSubscriber,
        DropReason::NotNegotiated,
        DropReason::NotConnected,
        DropReason::NoCodec,
        DropReason::UnknownSource,
        DropReason::BadPacket,
        DropReason::DeniedKeyframeRequest,
        DropReason::Stale,
        DropReason::OtherLayer,
        DropReason::NoSenderReport,
    ];

    /// The label used in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::NotAllowed => "not_allowed",
            DropReason::WaitingKeyframe => "waiting_keyframe",
            DropReason::NoSubscriber => "no_subscriber",
            DropReason::NotNegotiated => "not_negotiated",
            DropReason::NotConnected => "not_connected",
            DropReason::NoCodec => "no_codec",
            DropReason::UnknownSource => "unknown_source",
            DropReason::BadPacket => "bad_packet",
            DropReason::DeniedKeyframeRequest => "denied_keyframe_request",
            DropReason::Stale => "stale",
            DropReason::OtherLayer => "other_layer",
            DropReason::NoSenderReport => "no_sender_report",
        }
    }

    fn index(self) -> usize {
        DropReason::ALL.iter().position(|r| *r == self).unwrap_or(0)
    }
}

/// What bandwidth estimation decided (`parlor_bwe_decisions_total{decision=...}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BweDecision {
    /// A report with low loss: the estimate grew (up to its ceiling).
    EstimateGrew,
    /// A report with some loss (2–10 %): the estimate held.
    EstimateHeld,
    /// A report with heavy loss (over 10 %): the estimate was cut.
    EstimateCut,
    /// The estimate let a subscriber's simulcast video up a layer (the upgrade is the probe).
    Upgrade,
    /// The estimate took a subscriber's simulcast video down a layer.
    Downgrade,
    /// The estimate would afford an upgrade the hysteresis holds off (within 10 s of a
    /// downgrade, or 2 s of the last change); counted once per report.
    UpgradeHeld,
}

impl BweDecision {
    /// Every decision, in a fixed order.
    pub const ALL: [BweDecision; 6] = [
        BweDecision::EstimateGrew,
        BweDecision::EstimateHeld,
        BweDecision::EstimateCut,
        BweDecision::Upgrade,
        BweDecision::Downgrade,
        BweDecision::UpgradeHeld,
    ];

    /// The label used in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            BweDecision::EstimateGrew => "estimate_grew",
            BweDecision::EstimateHeld => "estimate_held",
            BweDecision::EstimateCut => "estimate_cut",
            BweDecision::Upgrade => "upgrade",
            BweDecision::Downgrade => "downgrade",
            BweDecision::UpgradeHeld => "upgrade_held",
        }
    }

    fn index(self) -> usize {
        BweDecision::ALL.iter().position(|d| *d == self).unwrap_or(0)
    }
}

/// A snapshot of one worker's (or all workers') counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// Forwarded RTP packets, by kind (audio, video).
    pub forwarded_packets: [u64; 2],
    /// Forwarded RTP payload bytes, by kind.
    pub forwarded_bytes: [u64; 2],
    /// Dropped packets by reason, indexed like [`DropReason::ALL`].
    pub dropped: [u64; DropReason::ALL.len()],
    /// Keyframe requests sent to publishers (after rate limiting).
    pub keyframe_requests: u64,
    /// Route updates applied.
    pub matrix_updates: u64,
    /// Datagrams received and sent.
    pub datagrams_in: u64,
    /// Datagrams handed to the socket.
    pub datagrams_out: u64,
    /// Datagrams the socket refused to send.
    pub send_errors: u64,
    /// Send system calls (`sendmmsg`) made for the UDP datagrams: `datagrams_out` over this is
    /// the batch size.
    pub send_calls: u64,
    /// Peers dropped after a str0m error or panic.
    pub peer_faults: u64,
    /// Media paths lost: ICE consent failed (no binding request from the peer for 15 s).
    pub paths_lost: u64,
    /// Peers currently held.
    pub peers: u64,
    /// Rooms currently held.
    pub rooms: u64,
    /// Time the worker spent handling input (not waiting), nanoseconds.
    pub busy_ns: u64,
    /// Simulcast packets forwarded, by layer (0 the lowest).
    pub forwarded_layers: [u64; crate::layers::MAX_LAYERS],
    /// A subscriber's simulcast video started on a layer: its first, or a switch.
    pub layer_starts: u64,
    /// Bandwidth estimation's decisions, indexed like [`BweDecision::ALL`].
    pub bwe: [u64; BweDecision::ALL.len()],
    /// Receiver-report intervals read into a subscriber's estimate.
    pub estimate_reports: u64,
    /// Each subscriber's bandwidth estimate, bits per second, as (room, peer, estimate), for
    /// those that have one (a gauge per subscriber: `parlor_bwe_estimate_bps{room,peer}`).
    pub estimates: Vec<(String, String, u64)>,
}

impl Counters {
    /// Count one dropped packet.
    pub(crate) fn drop(&mut self, reason: DropReason) {
        self.dropped[reason.index()] += 1;
    }

    /// Count one bandwidth estimation decision.
    pub(crate) fn bwe(&mut self, decision: BweDecision) {
        self.bwe[decision.index()] += 1;
    }

    /// How often bandwidth estimation decided `decision`.
    pub fn bwe_decisions(&self, decision: BweDecision) -> u64 {
        self.bwe[decision.index()]
    }

    /// Dropped packets for one reason.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped[reason.index()]
    }

    /// How many times bandwidth estimation decided `decision`.
    pub fn decided(&self, decision: BweDecision) -> u64 {
        self.bwe[decision.index()]
    }

    /// Count one forwarded packet.
    pub(crate) fn forwarded(&mut self, kind: Kind, bytes: usize) {
        let i = kind as usize;
        self.forwarded_packets[i] += 1;
        self.forwarded_bytes[i] += bytes as u64;
    }

    /// Add another snapshot to this one (for totals over workers).
    pub fn add(&mut self, other: &Counters) {
        for i in 0..2 {
            self.forwarded_packets[i] += other.forwarded_packets[i];
            self.forwarded_bytes[i] += other.forwarded_bytes[i];
        }
        for i in 0..self.dropped.len() {
            self.dropped[i] += other.dropped[i];
        }
        self.keyframe_requests += other.keyframe_requests;
        self.matrix_updates += other.matrix_updates;
        self.datagrams_in += other.datagrams_in;
        self.datagrams_out += other.datagrams_out;
        self.send_errors += other.send_errors;
        self.send_calls += other.send_calls;
        self.peer_faults += other.peer_faults;
        self.paths_lost += other.paths_lost;
        self.peers += other.peers;
        self.rooms += other.rooms;
        self.busy_ns += other.busy_ns;
        for i in 0..self.forwarded_layers.len() {
            self.forwarded_layers[i] += other.forwarded_layers[i];
        }
        self.layer_starts += other.layer_starts;
        for i in 0..self.bwe.len() {
            self.bwe[i] += other.bwe[i];
        }
        self.estimate_reports += other.estimate_reports;
        self.estimates.extend(other.estimates.iter().cloned());
    }
}
