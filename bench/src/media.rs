//! The generator's media side: a few threads, each owning the str0m instances and UDP sockets
//! of many peers, driven sans-IO from one `mio` poll loop — no task or channel per packet.
//!
//! A thread waits for a readable socket, a command or the next deadline (a str0m timeout or a
//! packet due to be sent). A datagram goes straight into its peer's `Rtc` (`handle_input`),
//! whose output is drained at once: transmits go out on the peer's socket, received RTP packets
//! are counted by their trailing [`Mark`], keyframe requests make the next frame a keyframe.
//! Signaling stays outside: a peer talks to its participant's WebSocket task through a channel
//! of [`SigOut`] and is fed the remote side's SDP through [`Cmd`]s.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token, Waker};
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind, Mid, Pt, Rid, Simulcast, SimulcastLayer};
use str0m::net::{Protocol, Receive};
use str0m::rtp::RtpWrite;
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};
use tokio::sync::mpsc::UnboundedSender;

use crate::hist::Histogram;
use crate::payload::{audio_payload, now_us, vp8_keyframe_start, Kind, Mark, VideoSource, AUDIO_INTERVAL, AUDIO_TICKS};
use crate::sys;

const WAKER: Token = Token(usize::MAX);
/// Socket buffers for each peer: enough that a thread busy for a few tens of milliseconds
/// does not lose datagrams on the generator's side.
const SOCKET_BUFFER: usize = 4 << 20;
/// A sender more than this late skips ticks instead of bursting to catch up.
const LATE_LIMIT: Duration = Duration::from_millis(100);
/// Largest datagram read.
const MAX_DATAGRAM: usize = 2048;
/// How long the loop sleeps when nothing is due.
const IDLE: Duration = Duration::from_millis(50);
/// Replay window of the duplicate detector, in packets.
const SEEN_WINDOW: u32 = 4096;

/// What a peer publishes.
#[derive(Debug, Clone)]
pub struct Publish {
    /// Participant index written into every mark.
    pub publisher: u32,
    /// Send audio (50 packets/s).
    pub audio: bool,
    /// Video bitrate, bit/s (0: no video).
    pub video_bps: u32,
    /// Video frame rate.
    pub fps: u32,
    /// Periodic keyframe interval.
    pub keyframe_interval: Duration,
    /// Simulcast layers of the video (0: none; 2 or 3), each with its own rid, counter and
    /// keyframes; the top one at `video_bps`, each lower one a third of the one above.
    pub simulcast: u8,
}

/// How to create a peer.
pub struct PeerSpec {
    /// Unique peer number (also picks its thread).
    pub peer: u32,
    /// Participant the received media is counted for.
    pub owner: u32,
    /// msid stream id for our own tracks.
    pub label: String,
    /// Tracks to publish (send-only m-lines).
    pub publish: Option<Publish>,
    /// Without `publish`: offer recvonly audio and video (an audience member).
    pub receive_only: bool,
    /// Make the first offer (false: wait for the remote's offer, as a Janus subscriber does).
    pub offer: bool,
    /// Address to bind the peer's socket to (port 0).
    pub bind: IpAddr,
    /// Where the peer's signaling goes.
    pub sig: UnboundedSender<SigOut>,
}

/// What a peer asks its signaling task to send, or tells it.
#[derive(Debug, Clone)]
pub enum SigOut {
    /// Our SDP offer.
    Offer(String),
    /// Our SDP answer to the remote offer.
    Answer(String),
    /// A local candidate (`candidate:…`), with the mid and m-line index it is for.
    Candidate {
        /// The candidate line without `a=`.
        candidate: String,
        /// Its m-line's mid.
        mid: Option<String>,
        /// Its m-line's index.
        index: Option<u32>,
    },
    /// No more local candidates.
    EndOfCandidates,
    /// ICE and DTLS are up.
    Connected,
    /// The peer could not go on (SDP refused, socket error, …).
    Failed(String),
}

/// Commands to a media thread.
pub enum Cmd {
    /// Create a peer.
    Add(Box<PeerSpec>),
    /// The remote side's offer for peer N.
    RemoteOffer(u32, String),
    /// The remote side's answer for peer N.
    RemoteAnswer(u32, String),
    /// A remote candidate line for peer N.
    RemoteCandidate(u32, String),
    /// The remote refused peer N's offer as glare (we rolled it back already).
    Glare(u32),
    /// Close peer N.
    Remove(u32),
    /// Start or stop publishing on every peer.
    Sending(bool),
    /// Report (and reset) the window counters.
    Collect(std_mpsc::Sender<ThreadReport>),
    /// Stop the thread.
    Shutdown,
}

/// Per-participant progress, readable from any thread.
#[derive(Debug, Default)]
pub struct PartMedia {
    /// Arrival of the first media packet (µs since the epoch), 0 until then.
    pub first_rx_us: AtomicU64,
    /// Distinct (publisher, kind) streams received so far.
    pub streams_seen: AtomicU32,
    /// When the first of its peers connected (ICE + DTLS), 0 until then.
    pub connected_us: AtomicU64,
}

/// State every media thread shares with the orchestrator.
#[derive(Debug)]
pub struct Shared {
    win_start: AtomicU64,
    win_end: AtomicU64,
    record: AtomicBool,
    /// Indexed by participant.
    pub parts: Vec<PartMedia>,
}

impl Shared {
    /// Room for `participants` participants.
    pub fn new(participants: usize) -> Arc<Shared> {
        Arc::new(Shared {
            win_start: AtomicU64::new(u64::MAX),
            win_end: AtomicU64::new(0),
            record: AtomicBool::new(false),
            parts: (0..participants).map(|_| PartMedia::default()).collect(),
        })
    }

    /// Count packets whose *send* time lies in [start, end).
    pub fn set_window(&self, start: u64, end: u64) {
        self.win_end.store(end, Ordering::SeqCst);
        self.win_start.store(start, Ordering::SeqCst);
    }

    /// End the window at `end` (its start stays).
    pub fn end_window(&self, end: u64) {
        self.win_end.store(end, Ordering::SeqCst);
    }

    /// Count nothing.
    pub fn clear_window(&self) {
        self.win_start.store(u64::MAX, Ordering::SeqCst);
        self.win_end.store(0, Ordering::SeqCst);
    }

    /// Keep a record of every packet sent and received (for per-packet analysis).
    pub fn set_record(&self, on: bool) {
        self.record.store(on, Ordering::SeqCst);
    }

    fn in_window(&self, sent_us: u64) -> bool {
        sent_us >= self.win_start.load(Ordering::Relaxed) && sent_us < self.win_end.load(Ordering::Relaxed)
    }

    fn part(&self, i: u32) -> Option<&PartMedia> {
        self.parts.get(i as usize)
    }
}

/// One received stream: a (receiving participant, publisher, kind).
#[derive(Debug, Clone)]
pub struct StreamReport {
    /// Receiving participant.
    pub owner: u32,
    /// Publishing participant.
    pub publisher: u32,
    /// Kind.
    pub kind: Kind,
    /// Distinct packets sent within the window that arrived.
    pub window: u64,
    /// Duplicates of such packets.
    pub window_dups: u64,
    /// Packets received since the start.
    pub total: u64,
    /// Keyframe starts received since the start.
    pub keyframes: u64,
    /// RTP sequence numbers the in-window packets span (highest − lowest + 1, 0 with none): what
    /// a subscriber of a simulcast track should have received, since the SFU keeps its sequence
    /// contiguous across layer switches while the layers' own counters cannot say which it got.
    pub window_span: u64,
    /// In-window packets by simulcast layer (all in 0 without simulcast).
    pub window_layers: [u64; 3],
}

/// Packets one publisher sent of one kind.
#[derive(Debug, Clone)]
pub struct SentReport {
    /// Publishing participant.
    pub publisher: u32,
    /// Kind.
    pub kind: Kind,
    /// Sent within the window (all layers).
    pub window: u64,
    /// Sent since the start.
    pub total: u64,
    /// Sent as simulcast layers (a subscriber gets one of them at a time).
    pub layered: bool,
}

/// One received packet, when recording.
#[derive(Debug, Clone, Copy)]
pub struct RecvRecord {
    /// Receiving participant.
    pub owner: u32,
    /// Publisher.
    pub publisher: u32,
    /// Kind.
    pub kind: Kind,
    /// First packet of a VP8 keyframe (parsed from the payload descriptor, not the mark).
    pub keyframe: bool,
    /// Send time, µs.
    pub sent_us: u64,
    /// Kernel arrival time, µs.
    pub recv_us: u64,
}

/// One sent packet, when recording.
#[derive(Debug, Clone, Copy)]
pub struct SendRecord {
    /// Publisher.
    pub publisher: u32,
    /// Kind.
    pub kind: Kind,
    /// First packet of a keyframe.
    pub keyframe: bool,
    /// Send time, µs.
    pub sent_us: u64,
}

/// Cumulative counters of a thread.
#[derive(Debug, Clone, Default)]
pub struct Counters {
    /// Datagrams read.
    pub datagrams_in: u64,
    /// Datagrams sent.
    pub datagrams_out: u64,
    /// Datagrams the socket refused.
    pub send_errors: u64,
    /// RTP packets str0m handed us.
    pub rtp_in: u64,
    /// RTP packets without our mark.
    pub unmarked: u64,
    /// Keyframe requests (PLI/FIR) received by publishers.
    pub keyframe_requests: u64,
    /// Keyframes sent.
    pub keyframes_sent: u64,
    /// Send ticks skipped because the thread was late.
    pub late_skips: u64,
    /// SDP we could not parse or apply.
    pub sdp_errors: u64,
    /// Errors str0m returned.
    pub rtc_errors: u64,
    /// ICE disconnections.
    pub ice_disconnects: u64,
    /// Glare errors received.
    pub glares: u64,
    /// Our offers rolled back by a remote offer.
    pub rollbacks: u64,
}

impl Counters {
    /// Add another thread's counters.
    pub fn add(&mut self, o: &Counters) {
        self.datagrams_in += o.datagrams_in;
        self.datagrams_out += o.datagrams_out;
        self.send_errors += o.send_errors;
        self.rtp_in += o.rtp_in;
        self.unmarked += o.unmarked;
        self.keyframe_requests += o.keyframe_requests;
        self.keyframes_sent += o.keyframes_sent;
        self.late_skips += o.late_skips;
        self.sdp_errors += o.sdp_errors;
        self.rtc_errors += o.rtc_errors;
        self.ice_disconnects += o.ice_disconnects;
        self.glares += o.glares;
        self.rollbacks += o.rollbacks;
    }
}

/// What a thread reports on `Collect`.
#[derive(Debug, Default)]
pub struct ThreadReport {
    /// Every stream it received.
    pub streams: Vec<StreamReport>,
    /// Every (publisher, kind) it sent.
    pub sent: Vec<SentReport>,
    /// Latency (arrival − send time) of in-window packets, µs.
    pub latency: Histogram,
    /// Received packets, when recording.
    pub records: Vec<RecvRecord>,
    /// Sent packets, when recording.
    pub sends: Vec<SendRecord>,
    /// Cumulative counters.
    pub counters: Counters,
}

/// A handle on one media thread.
#[derive(Clone)]
pub struct MediaThread {
    tx: std_mpsc::Sender<Cmd>,
    waker: Arc<Waker>,
}

impl MediaThread {
    /// Queue a command and wake the thread.
    pub fn send(&self, cmd: Cmd) {
        if self.tx.send(cmd).is_ok() {
            let _ = self.waker.wake();
        }
    }
}

/// The media threads.
pub struct MediaPool {
    threads: Vec<MediaThread>,
    joins: Vec<JoinHandle<()>>,
    /// State shared with the threads.
    pub shared: Arc<Shared>,
}

impl MediaPool {
    /// Start `n` threads.
    pub fn start(n: usize, shared: Arc<Shared>) -> io::Result<MediaPool> {
        let mut threads = Vec::new();
        let mut joins = Vec::new();
        for i in 0..n.max(1) {
            let poll = Poll::new()?;
            let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
            let (tx, rx) = std_mpsc::channel();
            let worker = Worker {
                poll,
                rx,
                peers: Vec::new(),
                slots: HashMap::new(),
                acct: Accounts::new(shared.clone()),
                sending: true,
                buf: vec![0; MAX_DATAGRAM],
            };
            joins.push(std::thread::Builder::new().name(format!("gen-media-{i}")).spawn(move || worker.run())?);
            threads.push(MediaThread { tx, waker });
        }
        Ok(MediaPool { threads, joins, shared })
    }

    /// The thread that owns peer `peer`.
    pub fn thread_for(&self, peer: u32) -> &MediaThread {
        &self.threads[peer as usize % self.threads.len()]
    }

    /// Tell every thread.
    pub fn broadcast(&self, mut make: impl FnMut() -> Cmd) {
        for t in &self.threads {
            t.send(make());
        }
    }

    /// Collect (and reset) every thread's window counters. Blocks briefly.
    pub fn collect(&self) -> Vec<ThreadReport> {
        let mut out = Vec::new();
        for t in &self.threads {
            let (tx, rx) = std_mpsc::channel();
            t.send(Cmd::Collect(tx));
            if let Ok(r) = rx.recv_timeout(Duration::from_secs(10)) {
                out.push(r);
            }
        }
        out
    }

    /// Stop the threads and wait for them.
    pub fn shutdown(self) {
        for t in &self.threads {
            t.send(Cmd::Shutdown);
        }
        for j in self.joins {
            let _ = j.join();
        }
    }
}

fn media_kind(kind: Kind) -> MediaKind {
    match kind {
        Kind::Audio => MediaKind::Audio,
        Kind::Video => MediaKind::Video,
    }
}

/// Which counters of a 4096-packet window were seen (a replay window, like SRTP's).
#[derive(Debug, Clone)]
struct Seen {
    any: bool,
    high: u32,
    bits: [u64; (SEEN_WINDOW / 64) as usize],
}

impl Default for Seen {
    fn default() -> Self {
        Seen { any: false, high: 0, bits: [0; (SEEN_WINDOW / 64) as usize] }
    }
}

impl Seen {
    fn bit(c: u32) -> (usize, u64) {
        let i = c % SEEN_WINDOW;
        ((i / 64) as usize, 1u64 << (i % 64))
    }

    /// Mark `c` seen; true if it was seen before.
    fn insert(&mut self, c: u32) -> bool {
        if !self.any {
            self.any = true;
            self.high = c;
        } else if c > self.high {
            if c - self.high >= SEEN_WINDOW {
                self.bits = [0; (SEEN_WINDOW / 64) as usize];
            } else {
                for k in self.high + 1..=c {
                    let (w, b) = Self::bit(k);
                    self.bits[w] &= !b;
                }
            }
            self.high = c;
        } else if self.high - c >= SEEN_WINDOW {
            return false; // too old to tell
        }
        let (w, b) = Self::bit(c);
        let was = self.bits[w] & b != 0;
        self.bits[w] |= b;
        was
    }
}

#[derive(Debug, Default)]
struct StreamStats {
    total: u64,
    window: u64,
    window_dups: u64,
    keyframes: u64,
    seen: Seen,
    /// Lowest and highest sequence number of the window's packets.
    window_seq: Option<(u64, u64)>,
    window_layers: [u64; 3],
}

/// Everything the packet path counts.
struct Accounts {
    shared: Arc<Shared>,
    streams: HashMap<u64, StreamStats>,
    sent: HashMap<(u32, Kind), (u64, u64, bool)>,
    latency: Histogram,
    records: Vec<RecvRecord>,
    sends: Vec<SendRecord>,
    counters: Counters,
}

impl Accounts {
    fn new(shared: Arc<Shared>) -> Self {
        Accounts {
            shared,
            streams: HashMap::new(),
            sent: HashMap::new(),
            latency: Histogram::default(),
            records: Vec::new(),
            sends: Vec::new(),
            counters: Counters::default(),
        }
    }

    /// A packet of sequence number `seq` (extended) arrived for `owner`. Duplicates are told by
    /// `seq`, not the mark's counter: a simulcast track's layers each count from 0.
    fn received(&mut self, owner: u32, payload: &[u8], seq: u64, recv_us: u64) {
        self.counters.rtp_in += 1;
        let Some(m) = Mark::read_tail(payload) else {
            self.counters.unmarked += 1;
            return;
        };
        let key = ((owner as u64) << 33) | ((m.publisher as u64) << 1) | m.kind as u64;
        let st = self.streams.entry(key).or_default();
        st.total += 1;
        if st.total == 1 {
            if let Some(p) = self.shared.part(owner) {
                p.streams_seen.fetch_add(1, Ordering::Relaxed);
                let _ = p.first_rx_us.compare_exchange(0, recv_us, Ordering::Relaxed, Ordering::Relaxed);
            }
        }
        let keyframe = m.kind == Kind::Video && vp8_keyframe_start(payload);
        if keyframe {
            st.keyframes += 1;
        }
        let dup = st.seen.insert(seq as u32);
        if self.shared.in_window(m.sent_us) {
            if dup {
                st.window_dups += 1;
            } else {
                st.window += 1;
                st.window_layers[usize::from(m.layer).min(2)] += 1;
                st.window_seq = Some(st.window_seq.map_or((seq, seq), |(lo, hi)| (lo.min(seq), hi.max(seq))));
                self.latency.add(recv_us.saturating_sub(m.sent_us));
            }
        }
        if self.shared.record.load(Ordering::Relaxed) && !dup {
            self.records.push(RecvRecord {
                owner,
                publisher: m.publisher,
                kind: m.kind,
                keyframe,
                sent_us: m.sent_us,
                recv_us,
            });
        }
    }

    fn sent(&mut self, publisher: u32, kind: Kind, layer: u8, keyframe: bool, sent_us: u64) {
        let e = self.sent.entry((publisher, kind)).or_default();
        e.1 += 1;
        e.2 |= layer > 0;
        if self.shared.in_window(sent_us) {
            e.0 += 1;
        }
        if self.shared.record.load(Ordering::Relaxed) {
            self.sends.push(SendRecord { publisher, kind, keyframe, sent_us });
        }
    }

    fn report(&mut self) -> ThreadReport {
        let mut r = ThreadReport::default();
        for (key, st) in self.streams.iter_mut() {
            r.streams.push(StreamReport {
                owner: (key >> 33) as u32,
                publisher: ((key >> 1) & 0xffff_ffff) as u32,
                kind: if key & 1 == 1 { Kind::Video } else { Kind::Audio },
                window: st.window,
                window_dups: st.window_dups,
                total: st.total,
                keyframes: st.keyframes,
                window_span: st.window_seq.map_or(0, |(lo, hi)| hi - lo + 1),
                window_layers: st.window_layers,
            });
            st.window = 0;
            st.window_dups = 0;
            st.window_seq = None;
            st.window_layers = [0; 3];
        }
        for ((publisher, kind), (window, total, layered)) in self.sent.iter_mut() {
            r.sent.push(SentReport {
                publisher: *publisher,
                kind: *kind,
                window: *window,
                total: *total,
                layered: *layered,
            });
            *window = 0;
        }
        r.latency = std::mem::take(&mut self.latency);
        r.records = std::mem::take(&mut self.records);
        r.sends = std::mem::take(&mut self.sends);
        r.counters = self.counters.clone();
        r
    }
}

/// One outgoing stream of a publisher.
struct Track {
    mid: Option<Mid>,
    pt: Option<Pt>,
    seq: u64,
    time: u32,
    counter: u32,
    next: Instant,
}

/// One video stream of a publisher: its only one, or one simulcast layer (`rid`).
struct VideoLayer {
    rid: Option<Rid>,
    track: Track,
    source: VideoSource,
    next_keyframe: Instant,
    keyframe_requested: bool,
}

struct Publisher {
    spec: Publish,
    audio: Track,
    /// Lowest layer first.
    video: Vec<VideoLayer>,
    /// The video m-line and payload type, shared by all layers.
    video_mid: Option<Mid>,
    video_pt: Option<Pt>,
}

/// The rids of `n` simulcast layers, lowest first (the names browsers use).
fn layer_rids(n: u8) -> &'static [&'static str] {
    match n {
        2 => &["h", "f"],
        _ => &["q", "h", "f"],
    }
}

impl Publisher {
    fn new(spec: Publish, now: Instant, seed: u32) -> Self {
        // Spread the peers' send ticks over the interval, and start sequence numbers apart.
        let frac = (seed.wrapping_mul(2_654_435_761) >> 16) as f64 / 65_536.0;
        let track = |interval: Duration, seq: u64| Track {
            mid: None,
            pt: None,
            seq,
            time: seed.wrapping_mul(7919),
            counter: 0,
            next: now + interval.mul_f64(frac),
        };
        let layer = |rid: Option<&str>, source: VideoSource, i: u64| VideoLayer {
            rid: rid.map(Rid::from),
            track: track(source.frame_interval(), (seed as u64 * 197 + i * 7_001) % 30_000 + 1_000),
            source,
            next_keyframe: now,
            keyframe_requested: true,
        };
        let video = if spec.simulcast >= 2 {
            // Each layer down has half the width and height and a third of the bitrate (about
            // the ratios a browser's three layers have).
            let rids = layer_rids(spec.simulcast);
            let top = rids.len() - 1;
            rids.iter()
                .enumerate()
                .map(|(i, rid)| {
                    let down = (top - i) as u32;
                    let source = VideoSource::new(spec.video_bps / 3u32.pow(down), spec.fps, spec.keyframe_interval)
                        .layer(i as u8, 1 << down);
                    layer(Some(rid), source, i as u64)
                })
                .collect()
        } else {
            vec![layer(None, VideoSource::new(spec.video_bps, spec.fps, spec.keyframe_interval), 0)]
        };
        Publisher {
            audio: track(AUDIO_INTERVAL, (seed as u64 * 131) % 30_000),
            video,
            video_mid: None,
            video_pt: None,
            spec,
        }
    }

    /// The simulcast layers to offer, if any.
    fn simulcast(&self) -> Option<Simulcast> {
        if self.video.len() < 2 {
            return None;
        }
        let mut s = Simulcast::new();
        for l in &self.video {
            s.add_send_layer(SimulcastLayer::new(l.rid.as_deref().unwrap_or("")));
        }
        Some(s)
    }

    fn next_due(&self) -> Option<Instant> {
        let a = (self.spec.audio && self.audio.mid.is_some()).then_some(self.audio.next);
        let v = (self.spec.video_bps > 0 && self.video_mid.is_some())
            .then(|| self.video.iter().map(|l| l.track.next).min())
            .flatten();
        match (a, v) {
            (Some(a), Some(v)) => Some(a.min(v)),
            (a, v) => a.or(v),
        }
    }
}

struct Peer {
    id: u32,
    owner: u32,
    label: String,
    rtc: Rtc,
    socket: mio::net::UdpSocket,
    local: SocketAddr,
    timeout: Instant,
    sig: UnboundedSender<SigOut>,
    pending: Option<SdpPendingOffer>,
    staged: Vec<(Mid, Kind)>,
    own: Vec<(Mid, Kind)>,
    wants: Vec<(Kind, Direction)>,
    publisher: Option<Publisher>,
    connected: bool,
    failed: bool,
}

impl Peer {
    fn fail(&mut self, why: String) {
        if !self.failed {
            self.failed = true;
            let _ = self.sig.send(SigOut::Failed(why));
        }
    }

    /// Offer whatever own m-lines we want and do not have, unless an offer is outstanding.
    fn offer(&mut self) {
        if self.pending.is_some() || self.failed {
            return;
        }
        let missing: Vec<(Kind, Direction)> =
            self.wants.iter().filter(|(k, _)| !self.own.iter().any(|(_, o)| o == k)).copied().collect();
        if missing.is_empty() {
            return;
        }
        let mut api = self.rtc.sdp_api();
        let mut staged = Vec::new();
        for (kind, dir) in missing {
            let track = format!("{}-{}", self.label, kind.as_str());
            let simulcast = match (kind, &self.publisher) {
                (Kind::Video, Some(p)) if dir == Direction::SendOnly => p.simulcast(),
                _ => None,
            };
            let mid = api.add_media(media_kind(kind), dir, Some(self.label.clone()), Some(track), simulcast);
            staged.push((mid, kind));
        }
        if let Some((offer, pending)) = api.apply() {
            self.pending = Some(pending);
            self.staged = staged;
            let _ = self.sig.send(SigOut::Offer(offer.to_sdp_string()));
        }
    }

    fn remote_answer(&mut self, sdp: &str, counters: &mut Counters) {
        let Some(pending) = self.pending.take() else {
            // Our offer was rolled back (glare): this answer is not for us to apply.
            return;
        };
        let answer = match SdpAnswer::from_sdp_string(sdp) {
            Ok(a) => a,
            Err(e) => {
                counters.sdp_errors += 1;
                return self.fail(format!("unparsable answer: {e}"));
            }
        };
        match self.rtc.sdp_api().accept_answer(pending, answer) {
            Ok(()) => {
                let staged = std::mem::take(&mut self.staged);
                self.own.extend(staged);
                if let Some(p) = self.publisher.as_mut() {
                    for (mid, kind) in &self.own {
                        match kind {
                            Kind::Audio => p.audio.mid = Some(*mid),
                            Kind::Video => p.video_mid = Some(*mid),
                        }
                    }
                }
            }
            Err(e) => {
                counters.sdp_errors += 1;
                self.fail(format!("answer refused: {e}"));
            }
        }
    }

    fn remote_offer(&mut self, sdp: &str, counters: &mut Counters) {
        let offer = match SdpOffer::from_sdp_string(sdp) {
            Ok(o) => o,
            Err(e) => {
                counters.sdp_errors += 1;
                return self.fail(format!("unparsable offer: {e}"));
            }
        };
        // Accepting an offer rolls back an outstanding one of ours (the polite peer's part
        // of glare); we offer again once we have answered.
        if self.pending.take().is_some() {
            counters.rollbacks += 1;
            self.staged.clear();
        }
        match self.rtc.sdp_api().accept_offer(offer) {
            Ok(answer) => {
                let _ = self.sig.send(SigOut::Answer(answer.to_sdp_string()));
                self.offer();
            }
            Err(e) => {
                counters.sdp_errors += 1;
                self.fail(format!("offer refused: {e}"));
            }
        }
    }

    /// Send what is due; returns when the next packet is due.
    fn send_due(&mut self, now: Instant, acct: &mut Accounts) -> bool {
        if !self.connected {
            return false;
        }
        let Some(p) = self.publisher.as_mut() else { return false };
        let pt_of = |rtc: &Rtc, codec: Codec| rtc.codec_config().find(|c| c.spec().codec == codec).map(|c| c.pt());
        if p.audio.pt.is_none() {
            p.audio.pt = pt_of(&self.rtc, Codec::Opus);
        }
        if p.video_pt.is_none() {
            p.video_pt = pt_of(&self.rtc, Codec::Vp8);
        }
        let mut wrote = false;
        if p.spec.audio {
            if let (Some(mid), Some(pt)) = (p.audio.mid, p.audio.pt) {
                if now.saturating_duration_since(p.audio.next) > LATE_LIMIT {
                    let skipped = (now - p.audio.next).as_micros() / AUDIO_INTERVAL.as_micros();
                    acct.counters.late_skips += skipped as u64;
                    p.audio.time = p.audio.time.wrapping_add(AUDIO_TICKS.wrapping_mul(skipped as u32));
                    p.audio.next = now;
                }
                while p.audio.next <= now {
                    let sent_us = now_us();
                    let payload = audio_payload(p.spec.publisher, p.audio.counter, sent_us);
                    let mut api = self.rtc.direct_api();
                    let Some(tx) = api.stream_tx_by_mid(mid, None) else { break };
                    tx.write_rtp(
                        RtpWrite::new(pt, p.audio.seq.into(), p.audio.time, Instant::now(), payload).marker(true),
                    );
                    acct.sent(p.spec.publisher, Kind::Audio, 0, false, sent_us);
                    p.audio.seq += 1;
                    p.audio.counter = p.audio.counter.wrapping_add(1);
                    p.audio.time = p.audio.time.wrapping_add(AUDIO_TICKS);
                    p.audio.next += AUDIO_INTERVAL;
                    wrote = true;
                }
            }
        }
        if p.spec.video_bps > 0 {
            if let (Some(mid), Some(pt)) = (p.video_mid, p.video_pt) {
                for l in p.video.iter_mut() {
                    wrote |= send_frames(&mut self.rtc, mid, pt, l, &p.spec, now, acct);
                }
            }
        }
        wrote
    }

    /// Drain str0m's output until it asks for time; `recv_us` is the arrival time of the
    /// datagram just handed in (0: none). str0m releases a freshly written RTP packet only on
    /// the next `Input::Timeout` (its timeout is then already due), so a due timeout is handled
    /// at once rather than on the next trip through the poll loop — otherwise every packet we
    /// send would wait for the poll's millisecond granularity.
    fn drain(&mut self, acct: &mut Accounts, recv_us: u64) {
        for _ in 0..8 {
            self.drain_once(acct, recv_us);
            let now = Instant::now();
            if self.failed || self.timeout > now {
                return;
            }
            if self.rtc.handle_input(Input::Timeout(now)).is_err() {
                acct.counters.rtc_errors += 1;
            }
        }
        self.drain_once(acct, recv_us);
    }

    fn drain_once(&mut self, acct: &mut Accounts, recv_us: u64) {
        loop {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(t)) => {
                    self.timeout = t;
                    return;
                }
                Ok(Output::Transmit(t)) => match self.socket.send_to(&t.contents, t.destination) {
                    Ok(_) => acct.counters.datagrams_out += 1,
                    Err(_) => acct.counters.send_errors += 1,
                },
                Ok(Output::Event(e)) => self.event(e, acct, recv_us),
                Err(e) => {
                    acct.counters.rtc_errors += 1;
                    self.fail(format!("str0m: {e}"));
                    self.timeout = Instant::now() + Duration::from_secs(3600);
                    return;
                }
            }
        }
    }

    fn event(&mut self, e: Event, acct: &mut Accounts, recv_us: u64) {
        match e {
            Event::RtpPacket(pkt) => {
                let at = if recv_us == 0 { now_us() } else { recv_us };
                acct.received(self.owner, &pkt.payload, *pkt.seq_no, at);
            }
            Event::KeyframeRequest(req) => {
                if let Some(p) = self.publisher.as_mut() {
                    if p.video_mid == Some(req.mid) {
                        // A request names its layer (rid) under simulcast; without one, every layer.
                        for l in p.video.iter_mut().filter(|l| req.rid.is_none() || l.rid == req.rid) {
                            l.keyframe_requested = true;
                        }
                        acct.counters.keyframe_requests += 1;
                    }
                }
            }
            Event::Connected => {
                self.connected = true;
                if let Some(p) = acct.shared.part(self.owner) {
                    let _ = p.connected_us.compare_exchange(0, now_us(), Ordering::Relaxed, Ordering::Relaxed);
                }
                let _ = self.sig.send(SigOut::Connected);
            }
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                acct.counters.ice_disconnects += 1;
            }
            _ => {}
        }
    }

    fn read(&mut self, acct: &mut Accounts, buf: &mut [u8]) {
        let fd = self.socket.as_raw_fd();
        loop {
            match sys::recv_timestamped(fd, buf) {
                Ok((n, source, stamp)) => {
                    acct.counters.datagrams_in += 1;
                    if self.failed {
                        continue;
                    }
                    let recv_us = stamp.unwrap_or_else(now_us);
                    let Ok(contents) = buf[..n].try_into() else { continue };
                    let input = Input::Receive(
                        Instant::now(),
                        Receive { proto: Protocol::Udp, source, destination: self.local, contents },
                    );
                    if self.rtc.handle_input(input).is_err() {
                        acct.counters.rtc_errors += 1;
                    }
                    self.drain(acct, recv_us);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return,
            }
        }
    }
}

/// Write the frames of one video stream that are due; true if any was.
fn send_frames(
    rtc: &mut Rtc,
    mid: Mid,
    pt: Pt,
    l: &mut VideoLayer,
    spec: &Publish,
    now: Instant,
    acct: &mut Accounts,
) -> bool {
    let interval = l.source.frame_interval();
    let v = &mut l.track;
    if now.saturating_duration_since(v.next) > LATE_LIMIT {
        let skipped = (now - v.next).as_micros() / interval.as_micros().max(1);
        acct.counters.late_skips += skipped as u64;
        v.time = v.time.wrapping_add(l.source.ticks_per_frame().wrapping_mul(skipped as u32));
        v.next = now;
    }
    let mut wrote = false;
    while v.next <= now {
        let keyframe = l.keyframe_requested || now >= l.next_keyframe;
        let sent_us = now_us();
        let packets = l.source.frame(keyframe, spec.publisher, v.counter, sent_us);
        let mut api = rtc.direct_api();
        let Some(tx) = api.stream_tx_by_mid(mid, l.rid) else { break };
        let n = packets.len();
        for (i, payload) in packets.into_iter().enumerate() {
            tx.write_rtp(
                RtpWrite::new(pt, v.seq.into(), v.time, Instant::now(), payload).marker(i + 1 == n).nackable(true),
            );
            acct.sent(spec.publisher, Kind::Video, l.source.layer, keyframe && i == 0, sent_us);
            v.seq += 1;
            v.counter = v.counter.wrapping_add(1);
        }
        if keyframe {
            acct.counters.keyframes_sent += 1;
            l.keyframe_requested = false;
            l.next_keyframe = now + spec.keyframe_interval;
        }
        v.time = v.time.wrapping_add(l.source.ticks_per_frame());
        v.next += interval;
        wrote = true;
    }
    wrote
}

struct Worker {
    poll: Poll,
    rx: std_mpsc::Receiver<Cmd>,
    peers: Vec<Option<Peer>>,
    slots: HashMap<u32, usize>,
    acct: Accounts,
    sending: bool,
    buf: Vec<u8>,
}

impl Worker {
    fn run(mut self) {
        let mut events = Events::with_capacity(512);
        let mut next = Instant::now();
        loop {
            loop {
                match self.rx.try_recv() {
                    Ok(Cmd::Shutdown) | Err(std_mpsc::TryRecvError::Disconnected) => return self.close_all(),
                    Ok(cmd) => {
                        self.command(cmd);
                        next = Instant::now();
                    }
                    Err(std_mpsc::TryRecvError::Empty) => break,
                }
            }
            let now = Instant::now();
            if now >= next {
                next = self.scan(now);
            }
            let wait = next.saturating_duration_since(Instant::now());
            if let Err(e) = self.poll.poll(&mut events, Some(wait)) {
                if e.kind() != io::ErrorKind::Interrupted {
                    eprintln!("media thread: poll failed: {e}");
                    return self.close_all();
                }
            }
            for ev in events.iter() {
                if ev.token() == WAKER {
                    continue;
                }
                if let Some(Some(peer)) = self.peers.get_mut(ev.token().0) {
                    peer.read(&mut self.acct, &mut self.buf);
                    next = next.min(peer.timeout);
                }
            }
        }
    }

    fn close_all(&mut self) {
        for p in self.peers.iter_mut().flatten() {
            p.rtc.disconnect();
        }
    }

    /// Sends and str0m timeouts that are due; returns the next deadline.
    fn scan(&mut self, now: Instant) -> Instant {
        let mut next = now + IDLE;
        for peer in self.peers.iter_mut().flatten() {
            if peer.failed {
                continue;
            }
            let mut touched = false;
            if self.sending {
                touched |= peer.send_due(now, &mut self.acct);
            }
            if peer.timeout <= now {
                if peer.rtc.handle_input(Input::Timeout(now)).is_err() {
                    self.acct.counters.rtc_errors += 1;
                }
                touched = true;
            }
            if touched {
                peer.drain(&mut self.acct, 0);
            }
            next = next.min(peer.timeout);
            if self.sending && peer.connected {
                if let Some(due) = peer.publisher.as_ref().and_then(Publisher::next_due) {
                    next = next.min(due);
                }
            }
        }
        next.max(now + Duration::from_micros(200))
    }

    fn command(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Add(spec) => {
                let sig = spec.sig.clone();
                if let Err(e) = self.add(*spec) {
                    let _ = sig.send(SigOut::Failed(format!("cannot create peer: {e}")));
                }
            }
            Cmd::RemoteOffer(id, sdp) => self.with(id, |p, acct| {
                p.remote_offer(&sdp, &mut acct.counters);
                p.drain(acct, 0);
            }),
            Cmd::RemoteAnswer(id, sdp) => self.with(id, |p, acct| {
                p.remote_answer(&sdp, &mut acct.counters);
                p.drain(acct, 0);
                p.offer();
            }),
            Cmd::RemoteCandidate(id, line) => self.with(id, |p, acct| {
                let line = line.trim();
                let line = line.strip_prefix("a=").unwrap_or(line);
                if line.is_empty() {
                    return;
                }
                if let Ok(c) = Candidate::from_sdp_string(line) {
                    p.rtc.add_remote_candidate(c);
                    p.drain(acct, 0);
                }
            }),
            Cmd::Glare(id) => self.with(id, |p, acct| {
                acct.counters.glares += 1;
                p.offer();
            }),
            Cmd::Remove(id) => {
                if let Some(slot) = self.slots.remove(&id) {
                    if let Some(mut p) = self.peers[slot].take() {
                        let _ = self.poll.registry().deregister(&mut p.socket);
                        p.rtc.disconnect();
                    }
                }
            }
            Cmd::Sending(on) => self.sending = on,
            Cmd::Collect(reply) => {
                let _ = reply.send(self.acct.report());
            }
            Cmd::Shutdown => {}
        }
    }

    fn with(&mut self, id: u32, f: impl FnOnce(&mut Peer, &mut Accounts)) {
        let Some(&slot) = self.slots.get(&id) else { return };
        if let Some(Some(p)) = self.peers.get_mut(slot) {
            f(p, &mut self.acct);
        }
    }

    fn add(&mut self, spec: PeerSpec) -> io::Result<()> {
        let std_socket = std::net::UdpSocket::bind(SocketAddr::new(spec.bind, 0))?;
        std_socket.set_nonblocking(true)?;
        sys::tune_socket(std_socket.as_raw_fd(), SOCKET_BUFFER);
        let local = std_socket.local_addr()?;
        let mut socket = mio::net::UdpSocket::from_std(std_socket);
        let slot = match self.peers.iter().position(Option::is_none) {
            Some(s) => s,
            None => {
                self.peers.push(None);
                self.peers.len() - 1
            }
        };
        self.poll.registry().register(&mut socket, Token(slot), Interest::READABLE)?;
        let now = Instant::now();
        let mut rtc =
            Rtc::builder().set_rtp_mode(true).clear_codecs().enable_opus(true, false).enable_vp8(true).build(now);
        let candidate = Candidate::host(local, "udp").map_err(|e| io::Error::other(e.to_string()))?;
        let line = candidate.to_sdp_string();
        rtc.add_local_candidate(candidate);
        let mut wants = Vec::new();
        match &spec.publish {
            Some(p) => {
                if p.audio {
                    wants.push((Kind::Audio, Direction::SendOnly));
                }
                if p.video_bps > 0 {
                    wants.push((Kind::Video, Direction::SendOnly));
                }
            }
            None if spec.receive_only => {
                wants.push((Kind::Audio, Direction::RecvOnly));
                wants.push((Kind::Video, Direction::RecvOnly));
            }
            None => {}
        }
        let mut peer = Peer {
            id: spec.peer,
            owner: spec.owner,
            label: spec.label,
            rtc,
            socket,
            local,
            timeout: now,
            sig: spec.sig,
            pending: None,
            staged: Vec::new(),
            own: Vec::new(),
            wants,
            publisher: spec.publish.map(|p| Publisher::new(p, now, spec.peer)),
            connected: false,
            failed: false,
        };
        if spec.offer {
            peer.offer();
            let mid = peer.staged.first().map(|(m, _)| m.to_string());
            let _ = peer.sig.send(SigOut::Candidate { candidate: line, mid, index: Some(0) });
            let _ = peer.sig.send(SigOut::EndOfCandidates);
        }
        peer.drain(&mut self.acct, 0);
        self.slots.insert(peer.id, slot);
        self.peers[slot] = Some(peer);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seen_window_tells_duplicates() {
        let mut s = Seen::default();
        assert!(!s.insert(10));
        assert!(s.insert(10));
        assert!(!s.insert(12));
        assert!(!s.insert(11), "late but new");
        assert!(s.insert(11));
        assert!(!s.insert(10 + SEEN_WINDOW + 5), "jump clears");
        assert!(!s.insert(12 + SEEN_WINDOW), "bit of an old counter was cleared by the jump");
        assert!(!s.insert(3), "too old to tell counts as new");
    }
}
