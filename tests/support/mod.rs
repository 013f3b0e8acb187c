//! Test support for parlor's integration tests: a WebRTC test client built on `webrtc` 0.21.
//!
//! ```ignore
//! mod support;
//! use support::*;
//!
//! let a = TestClient::join(&ws, "room1", "alice", ClientOptions::default()).await?;
//! let b = TestClient::join(&ws, "room1", "bob", ClientOptions::default().with_pts(109, 120)).await?;
//! assert!(wait_until(secs(10), || b.count(a.id(), Kind::Video) > 30).await);
//! ```
//!
//! Every socket is bound to 127.0.0.1; no test helper sleeps for synchronisation — use
//! [`wait_until`] / [`wait_for`] with a deadline.
#![allow(dead_code, unused_imports)]

pub mod client;
pub mod delivery;
pub mod media;
pub mod media_room;
pub mod peer;
pub mod phases;
pub mod server;
pub mod tls_client;

pub use client::{msg_type, JoinError, MessageLog, TestClient};
pub use delivery::{assert_delivered, delivery};
pub use media::{
    is_vp8_keyframe, now_us, opus_payload, parse_mark, parse_vp8, vp8_payload, vp8_picture, MediaMark, Vp8Info,
};
pub use peer::{
    connect_pair, parse_sdp, FeedbackCounts, MLine, MediaPeer, RecvPacket, RemoteTrack, RtxInfo, SentPacket, SignalSink,
};
pub use phases::{leaked, phase_arrival, switched_at, ROUNDING_US, SLACK_US};
pub use server::{http_get, server, server_with, Got, Ws};

use std::time::{Duration, Instant};

/// A seeded xorshift64 stream for test garbage: the same bytes on every run, so a failure
/// reproduces.
pub struct XorShift(u64);

impl XorShift {
    /// A stream from `seed` (not 0).
    pub fn new(seed: u64) -> Self {
        XorShift(seed)
    }

    /// The next value.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// How often the polling helpers re-check their condition.
pub const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// Media kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Audio,
    Video,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Audio => "audio",
            Kind::Video => "video",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a [`TestClient`] / [`MediaPeer`] behaves.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Create a peer connection after `welcome` (false: signaling only).
    pub media: bool,
    /// Send synthetic audio+video on sendrecv transceivers (false: recvonly transceivers).
    pub publish: bool,
    /// Payload type Opus is registered (and therefore offered) under.
    pub opus_pt: u8,
    /// Payload type VP8 is registered (and therefore offered) under.
    pub vp8_pt: u8,
    /// Offer right after `welcome` (the protocol's rule). Off only for a peer that waits for an
    /// offer, like the answering side of [`connect_pair`].
    pub initial_offer: bool,
    /// When not publishing, add recvonly audio+video transceivers (the protocol's rule).
    pub recv_transceivers: bool,
    /// With `publish`, which kinds actually produce packets (the tracks exist either way).
    pub publish_audio: bool,
    pub publish_video: bool,
    /// Packet interval: Opus 20 ms, VP8 ~30 frames/s (one packet per frame).
    pub audio_interval: Duration,
    pub video_interval: Duration,
    /// Resolution written into keyframes.
    pub video_size: (u16, u16),
    /// How long a keyframe request (PLI/FIR) goes unanswered, like a real encoder that needs a
    /// moment: the keyframe goes out on the first frame tick at least this long after the
    /// request arrived, and ordinary interframes are sent meanwhile. Zero: the next frame.
    pub keyframe_delay: Duration,
    /// Register RTX (RFC 4588, `video/rtx` with `apt=<vp8_pt>` under [`Self::rtx_pt`]) next to
    /// VP8, as browsers do. The remote then may retransmit NACKed video on an RTX stream; such
    /// packets are recorded apart (see `MediaPeer::retransmissions`), never as received media.
    pub rtx: bool,
    /// Send video as simulcast layers with these rids, lowest first (empty: one plain stream).
    /// Each layer is its own stream (SSRC, sequence numbers, timestamps, keyframes on request of
    /// its own SSRC only, VP8 picture ids and TL0PICIDX counted per layer from a random start), and
    /// its payloads carry the mark publisher `"<id>/<rid>"`.
    pub simulcast: Vec<String>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            media: true,
            publish: true,
            opus_pt: 111,
            vp8_pt: 96,
            initial_offer: true,
            recv_transceivers: true,
            publish_audio: true,
            publish_video: true,
            audio_interval: Duration::from_millis(20),
            video_interval: Duration::from_millis(33),
            video_size: (media::VP8_WIDTH, media::VP8_HEIGHT),
            keyframe_delay: Duration::ZERO,
            rtx: true,
            simulcast: Vec::new(),
        }
    }
}

impl ClientOptions {
    /// Publishes audio and video with the default payload types 111/96.
    pub fn publisher() -> Self {
        Self::default()
    }
    /// Recvonly audio+video transceivers, publishes nothing.
    pub fn receiver() -> Self {
        ClientOptions { publish: false, ..Self::default() }
    }
    /// WebSocket only.
    pub fn signaling_only() -> Self {
        ClientOptions { media: false, publish: false, ..Self::default() }
    }
    /// Registers Opus and VP8 under these payload types.
    pub fn with_pts(mut self, opus_pt: u8, vp8_pt: u8) -> Self {
        self.opus_pt = opus_pt;
        self.vp8_pt = vp8_pt;
        self
    }
    pub fn with_publish(mut self, publish: bool) -> Self {
        self.publish = publish;
        self
    }
    /// Answer keyframe requests only after `delay` (see [`Self::keyframe_delay`]).
    pub fn with_keyframe_delay(mut self, delay: Duration) -> Self {
        self.keyframe_delay = delay;
        self
    }
    /// Publish video as simulcast layers with these rids, lowest first (see [`Self::simulcast`]).
    pub fn with_simulcast(mut self, rids: &[&str]) -> Self {
        self.simulcast = rids.iter().map(|r| r.to_string()).collect();
        self
    }
    /// Register RTX for VP8 or not (see [`Self::rtx`]).
    pub fn with_rtx(mut self, rtx: bool) -> Self {
        self.rtx = rtx;
        self
    }
    /// The payload type RTX is registered under if [`Self::rtx`]: the first dynamic payload
    /// type after VP8's that Opus does not use (wrapping round within 96..=127).
    pub fn rtx_pt(&self) -> Option<u8> {
        if !self.rtx {
            return None;
        }
        let vp8 = self.vp8_pt.clamp(96, 127);
        (vp8 + 1..=127).chain(96..vp8).find(|pt| *pt != self.opus_pt && *pt != self.vp8_pt)
    }
}

/// Shorthand for `Duration::from_secs`.
pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Shorthand for `Duration::from_millis`.
pub fn millis(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

/// Polls `cond` every 20 ms until it holds (true) or `timeout` passes (false).
pub async fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// [`wait_until`] that fails with a message naming what was awaited.
pub async fn wait_for(timeout: Duration, what: &str, cond: impl FnMut() -> bool) -> anyhow::Result<()> {
    if wait_until(timeout, cond).await {
        Ok(())
    } else {
        anyhow::bail!("timed out after {timeout:?} waiting for {what}")
    }
}

/// Polls an async condition every 20 ms until it holds or `timeout` passes.
pub async fn wait_until_async<F, Fut>(timeout: Duration, mut cond: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if cond().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Local addresses ("ip:port") of every UDP socket this process holds, read from /proc (Linux).
/// Lets a test assert that nothing was bound to a wildcard or non-loopback address.
pub fn process_udp_sockets() -> Vec<String> {
    use std::collections::HashSet;
    let mut inodes = HashSet::new();
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        for e in dir.flatten() {
            if let Ok(target) = std::fs::read_link(e.path()) {
                let t = target.to_string_lossy();
                if let Some(n) = t.strip_prefix("socket:[").and_then(|r| r.strip_suffix(']')) {
                    inodes.insert(n.to_owned());
                }
            }
        }
    }
    let mut out = Vec::new();
    for (file, v6) in [("/proc/net/udp", false), ("/proc/net/udp6", true)] {
        let Ok(text) = std::fs::read_to_string(file) else { continue };
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            if cols.len() < 10 || !inodes.contains(cols[9]) {
                continue;
            }
            let Some((ip_hex, port_hex)) = cols[1].split_once(':') else { continue };
            let port = u16::from_str_radix(port_hex, 16).unwrap_or(0);
            if v6 {
                out.push(format!("[{ip_hex}]:{port}"));
            } else {
                let raw = u32::from_str_radix(ip_hex, 16).unwrap_or(0);
                // The kernel prints the address as a host-endian integer.
                let ip = std::net::Ipv4Addr::from(raw.to_le_bytes());
                out.push(format!("{ip}:{port}"));
            }
        }
    }
    out
}
