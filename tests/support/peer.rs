//! One WebRTC peer connection built on `webrtc` 0.21 (the sans-I/O `rtc` core plus its async
//! driver): publishes synthetic Opus and VP8, records what it receives per publisher, counts
//! keyframe requests, and negotiates through JSON messages shaped like parlor's signaling protocol
//! (`offer` / `answer` / `candidate` / `error` `glare`).
//!
//! The peer does not know about WebSockets: it emits JSON through a [`SignalSink`] and consumes
//! JSON from a channel. [`super::TestClient`] wires it to the server's WebSocket;
//! [`connect_pair`] wires two peers straight to each other.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use bytes::Bytes;
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use rtc::ice::mdns::MulticastDnsMode;
use rtc::interceptor::{Interceptor, Packet as ChainPacket, Slot, StreamInfo, TaggedPacket};
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_OPUS, MIME_TYPE_RTX, MIME_TYPE_VP8};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::{nack_pairs_from_sequence_numbers, TransportLayerNack};
use rtc::rtp::extension::audio_level_extension::AudioLevelExtension;
use rtc::rtp::extension::video_orientation_extension::VideoOrientationExtension;
use rtc::rtp::extension::HeaderExtension;
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters,
    RTCRtpHeaderExtensionCapability, RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use rtc::shared::marshal::Unmarshal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::media_stream::Track;
use webrtc::peer_connection::{
    register_default_interceptors, MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCIceCandidateInit, RTCIceGatheringState, RTCPeerConnectionIceEvent, RTCPeerConnectionState,
    RTCSessionDescription, Registry, SettingEngineBuilder,
};
use webrtc::rtp_transceiver::RtpSender;

use super::media::{is_vp8_keyframe, now_us, opus_payload, parse_mark, vp8_payload, vp8_payload_sized, MediaMark};
use super::{ClientOptions, Kind};

/// Where a peer's outgoing signaling JSON goes.
pub type SignalSink = Arc<dyn Fn(Value) + Send + Sync>;

/// One RTP packet as received.
#[derive(Debug, Clone)]
pub struct RecvPacket {
    pub seq: u16,
    pub timestamp: u32,
    pub pt: u8,
    pub marker: bool,
    pub ssrc: u32,
    pub payload: Bytes,
    pub arrival: Instant,
    /// `Some` for a retransmission that came on an RTX stream (RFC 4588). Its `seq`, `ssrc` and
    /// `pt` above are then the original sequence number (OSN) and the primary stream's SSRC and
    /// payload type (where the RTX SSRC could be tied to one), and `payload` is the original
    /// payload without the OSN. Such packets are only in [`MediaPeer::retransmissions`], never in
    /// [`MediaPeer::received`].
    pub rtx: Option<RtxInfo>,
    /// The RTP header extensions as they arrived: (id, raw value). Ids are this peer's own
    /// negotiated ones (see [`MediaPeer::negotiated_extension_id_for`]). Empty for RTX.
    pub extensions: Vec<(u8, Bytes)>,
}

/// The RTX packet a retransmission arrived in, as it was on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtxInfo {
    pub ssrc: u32,
    pub pt: u8,
    pub seq: u16,
    /// The receive chain knew this SSRC as the RTX stream of a primary SSRC (from the remote
    /// description's `a=ssrc-group:FID`); false if it was recognised by payload type only.
    pub associated: bool,
    /// webrtc de-encapsulated it and handed it to the primary stream's track (as of the query).
    pub repaired: bool,
}

impl RecvPacket {
    /// Arrival time in µs since the UNIX epoch (the clock of payload marks and of
    /// `TestClient::arrival_of`), derived from the monotonic arrival instant.
    pub fn arrival_us(&self) -> u64 {
        super::now_us().saturating_sub(self.arrival.elapsed().as_micros() as u64)
    }

    /// The synthetic mark (publisher id, kind, counter, send time) in the payload, if any.
    pub fn mark(&self) -> Option<MediaMark> {
        parse_mark(&self.payload)
    }
    /// True if this is the first packet of a VP8 keyframe.
    pub fn is_keyframe(&self) -> bool {
        is_vp8_keyframe(&self.payload)
    }
    /// The raw value of header extension `id`, if the packet carried it.
    pub fn extension(&self, id: u8) -> Option<&Bytes> {
        self.extensions.iter().find(|(i, _)| *i == id).map(|(_, v)| v)
    }
}

/// `urn:ietf:params:rtp-hdrext:ssrc-audio-level` (RFC 6464), registered for audio.
pub const AUDIO_LEVEL_URI: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";
/// `urn:3gpp:video-orientation` (CVO), registered for video.
pub const VIDEO_ORIENTATION_URI: &str = "urn:3gpp:video-orientation";

tokio::task_local! {
    static EXTENSIONS_FIRST: bool;
}

/// Runs `fut` so that every peer it starts (e.g. through `TestClient::join`, on this task)
/// registers the audio-level and video-orientation extensions before webrtc's default ones.
/// webrtc numbers extensions in registration order, so such a peer offers them as ids 1 and 2
/// instead of 5 and 6: two clients that number extensions differently, as different browsers
/// do.
pub async fn with_early_extension_ids<F: Future>(fut: F) -> F::Output {
    EXTENSIONS_FIRST.scope(true, fut).await
}

/// One RTP packet this peer handed to its sender.
#[derive(Debug, Clone)]
pub struct SentPacket {
    pub kind: Kind,
    pub seq: u16,
    pub timestamp: u32,
    pub pt: u8,
    pub marker: bool,
    pub ssrc: u32,
    /// Per-kind counter embedded in the payload.
    pub counter: u32,
    pub keyframe: bool,
    pub payload: Bytes,
    pub sent_at: Instant,
    /// The audio level (RFC 6464: level in -dBov 0..=127, voice activity) this packet carried,
    /// with [`MediaPeer::set_header_extensions`] on.
    pub audio_level: Option<(u8, bool)>,
    /// The video-orientation byte (`0 0 0 0 C F R1 R0`) this packet carried, with
    /// [`MediaPeer::set_header_extensions`] on.
    pub video_orientation: Option<u8>,
    /// The simulcast layer (rid) it was sent on, if the video is simulcast.
    pub rid: Option<String>,
}

/// A remote track as announced by `on_track` (fires on its first RTP packet).
#[derive(Debug, Clone)]
pub struct RemoteTrack {
    /// `streams[0].id` — the msid stream id, which parlor sets to the publisher's participant id.
    pub publisher: String,
    pub kind: Kind,
    pub track_id: String,
    pub ssrcs: Vec<u32>,
    /// Codec (mime type, payload type) of the first packet, as resolved by the receiver.
    pub codec: Option<(String, u8)>,
    pub opened_at: Instant,
}

/// RTCP feedback this peer received about one of its own SSRCs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FeedbackCounts {
    pub pli: u64,
    pub fir: u64,
    pub nack: u64,
    /// Sequence numbers named by the NACKs.
    pub nacked_seqs: u64,
}

/// One m-line of an SDP, as far as the tests care.
#[derive(Debug, Clone, Default)]
pub struct MLine {
    pub index: usize,
    pub kind: String,
    pub mid: String,
    pub direction: String,
    /// (payload type, codec name as in rtpmap, e.g. "opus", "VP8").
    pub codecs: Vec<(u8, String)>,
    /// (stream id, track id) from `a=msid`.
    pub msid: Option<(String, String)>,
    pub ssrcs: Vec<u32>,
    /// (id, uri) from `a=extmap`.
    pub extmaps: Vec<(u8, String)>,
}

impl MLine {
    /// Payload types bound to `codec` (case-insensitive rtpmap name) in this m-line.
    pub fn pts_for(&self, codec: &str) -> Vec<u8> {
        self.codecs.iter().filter(|(_, name)| name.eq_ignore_ascii_case(codec)).map(|(pt, _)| *pt).collect()
    }
    /// The `a=extmap` id bound to `uri` in this m-line.
    pub fn extmap_id(&self, uri: &str) -> Option<u8> {
        self.extmaps.iter().find(|(_, u)| u == uri).map(|(id, _)| *id)
    }
}

/// Minimal SDP reader: m-lines with mid, direction, rtpmap, msid and ssrc.
pub fn parse_sdp(sdp: &str) -> Vec<MLine> {
    let mut out: Vec<MLine> = Vec::new();
    for raw in sdp.lines() {
        let line = raw.trim_end();
        if let Some(rest) = line.strip_prefix("m=") {
            out.push(MLine {
                index: out.len(),
                kind: rest.split(' ').next().unwrap_or("").to_owned(),
                ..Default::default()
            });
            continue;
        }
        let Some(m) = out.last_mut() else { continue };
        if let Some(v) = line.strip_prefix("a=mid:") {
            m.mid = v.to_owned();
        } else if let Some(v) = line.strip_prefix("a=rtpmap:") {
            let mut it = v.splitn(2, ' ');
            let pt = it.next().and_then(|p| p.parse::<u8>().ok());
            let name = it.next().and_then(|n| n.split('/').next());
            if let (Some(pt), Some(name)) = (pt, name) {
                m.codecs.push((pt, name.to_owned()));
            }
        } else if let Some(v) = line.strip_prefix("a=msid:") {
            let mut it = v.split(' ');
            let s = it.next().unwrap_or("").to_owned();
            let t = it.next().unwrap_or("").to_owned();
            m.msid = Some((s, t));
        } else if let Some(v) = line.strip_prefix("a=ssrc:") {
            if let Some(ssrc) = v.split(' ').next().and_then(|s| s.parse::<u32>().ok()) {
                if !m.ssrcs.contains(&ssrc) {
                    m.ssrcs.push(ssrc);
                }
            }
        } else if let Some(v) = line.strip_prefix("a=extmap:") {
            // `a=extmap:<id>[/<direction>] <uri> [attributes]`
            let mut it = v.split(' ');
            let id = it.next().and_then(|i| i.split('/').next()).and_then(|i| i.parse::<u8>().ok());
            if let (Some(id), Some(uri)) = (id, it.next()) {
                m.extmaps.push((id, uri.to_owned()));
            }
        } else if matches!(line, "a=sendrecv" | "a=sendonly" | "a=recvonly" | "a=inactive") {
            m.direction = line[2..].to_owned();
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Small utilities
// ---------------------------------------------------------------------------------------------

/// CRC-32 (IEEE), for STUN's FINGERPRINT.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for byte in data {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// A STUN attribute: type, length, value padded to 4 bytes.
fn stun_attr(out: &mut Vec<u8>, ty: u16, value: &[u8]) {
    out.extend_from_slice(&ty.to_be_bytes());
    out.extend_from_slice(&(value.len() as u16).to_be_bytes());
    out.extend_from_slice(value);
    out.resize(out.len().next_multiple_of(4), 0);
}

/// An ICE connectivity check as a controlling agent sends it (USERNAME, PRIORITY,
/// ICE-CONTROLLING, USE-CANDIDATE, MESSAGE-INTEGRITY, FINGERPRINT), except that the integrity
/// is `integrity` rather than an HMAC under the password the sender does not know.
pub fn forged_binding_request(username: &str, integrity: [u8; 20], txid: [u8; 12]) -> Vec<u8> {
    let mut m = vec![0x00, 0x01, 0, 0, 0x21, 0x12, 0xa4, 0x42];
    m.extend_from_slice(&txid);
    stun_attr(&mut m, 0x0006, username.as_bytes());
    stun_attr(&mut m, 0x0024, &0x6e00_1eff_u32.to_be_bytes());
    stun_attr(&mut m, 0x802a, &txid[..8]);
    stun_attr(&mut m, 0x0025, &[]);
    stun_attr(&mut m, 0x0008, &integrity);
    // FINGERPRINT covers everything before it, with the length already counting it.
    let len = (m.len() - 20 + 8) as u16;
    m[2..4].copy_from_slice(&len.to_be_bytes());
    let fingerprint = crc32(&m) ^ 0x5354_554e;
    stun_attr(&mut m, 0x8028, &fingerprint.to_be_bytes());
    m
}

/// The `a=ice-ufrag` of an SDP.
pub fn ice_ufrag(sdp: &str) -> String {
    sdp.lines().find_map(|l| l.trim_end().strip_prefix("a=ice-ufrag:")).expect("SDP has an ice-ufrag").to_owned()
}

/// The `a=ice-pwd` of an SDP.
pub fn ice_pwd(sdp: &str) -> String {
    sdp.lines().find_map(|l| l.trim_end().strip_prefix("a=ice-pwd:")).expect("SDP has an ice-pwd").to_owned()
}

/// A genuine ICE check (USERNAME, PRIORITY, ICE-CONTROLLING, MESSAGE-INTEGRITY under
/// `password`, FINGERPRINT), without USE-CANDIDATE: what a participant can send with its own
/// credentials from any address it can spoof.
pub fn signed_binding_request(username: &str, password: &str, txid: [u8; 12]) -> Vec<u8> {
    use stun_rs::attributes::ice::{IceControlling, Priority};
    use stun_rs::attributes::stun::{Fingerprint, MessageIntegrity, UserName};
    use stun_rs::methods::BINDING;
    use stun_rs::{HMACKey, MessageClass, MessageEncoderBuilder, StunMessageBuilder, TransactionId};
    let key = HMACKey::new_short_term(password).expect("a short-term key");
    let msg = StunMessageBuilder::new(BINDING, MessageClass::Request)
        .with_transaction_id(TransactionId::from(txid))
        .with_attribute(UserName::new(username).expect("a username"))
        .with_attribute(Priority::from(0x6e00_1eff))
        .with_attribute(IceControlling::from(u64::from_be_bytes(txid[..8].try_into().unwrap())))
        .with_attribute(MessageIntegrity::new(key))
        .with_attribute(Fingerprint::default())
        .build();
    let mut buf = vec![0u8; 512];
    let n = MessageEncoderBuilder::default().build().encode(&mut buf, &msg).expect("encodes");
    buf.truncate(n);
    buf
}

/// Cheap non-cryptographic randomness (no `rand` dependency in the root package).
pub(crate) fn random_u32() -> u32 {
    static COUNTER: AtomicU64 = AtomicU64::new(0x9E37_79B9_7F4A_7C15);
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
    let mut x = nanos ^ COUNTER.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
    // splitmix64 finaliser
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 31;
    (x >> 16) as u32
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn opus_codec() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_OPUS.to_owned(),
        clock_rate: 48000,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
        rtcp_feedback: vec![],
    }
}

fn rtx_codec(apt: u8) -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_RTX.to_owned(),
        clock_rate: 90000,
        channels: 0,
        sdp_fmtp_line: format!("apt={apt}"),
        rtcp_feedback: vec![],
    }
}

fn vp8_codec() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_VP8.to_owned(),
        clock_rate: 90000,
        channels: 0,
        sdp_fmtp_line: String::new(),
        rtcp_feedback: vec![RTCPFeedback { typ: "ccm".to_owned(), parameter: "fir".to_owned() }],
    }
}

// ---------------------------------------------------------------------------------------------
// The wire tap: keyframe-request / feedback counting and RTX recording
// ---------------------------------------------------------------------------------------------

/// Inbound RTCP feedback per media SSRC, filled by [`WireTap`].
#[derive(Default)]
pub(crate) struct FeedbackTable {
    map: Mutex<HashMap<u32, FeedbackCounts>>,
    /// When each keyframe request (PLI, or FIR entry) for an SSRC arrived, in order.
    keyframe_requests: Mutex<HashMap<u32, Vec<Instant>>>,
}

impl FeedbackTable {
    fn get(&self, ssrc: u32) -> FeedbackCounts {
        lock(&self.map).get(&ssrc).copied().unwrap_or_default()
    }
    /// Arrival time of the `index`-th (0-based) keyframe request for `ssrc`.
    fn keyframe_request_at(&self, ssrc: u32, index: u64) -> Option<Instant> {
        lock(&self.keyframe_requests).get(&ssrc).and_then(|v| v.get(index as usize).copied())
    }
}

/// One RTX packet as it arrived, before webrtc de-encapsulated it.
#[derive(Debug, Clone)]
struct RtxArrival {
    rtx_ssrc: u32,
    rtx_pt: u8,
    rtx_seq: u16,
    /// (primary SSRC, primary payload type), if the chain bound this RTX SSRC to one.
    primary: Option<(u32, u8)>,
    osn: u16,
    timestamp: u32,
    marker: bool,
    payload: Bytes,
    arrival: Instant,
    repaired: bool,
}

/// Retransmissions received on RTX streams, filled by [`WireTap`].
///
/// webrtc 0.21 repairs RTX silently: the endpoint handler, application-ward of the interceptor
/// chain, rewrites an RTX packet whose SSRC the remote description tied to a primary SSRC
/// (`a=ssrc-group:FID`) into the original (primary SSRC, the `apt` payload type, the OSN as
/// sequence number, the OSN stripped) and hands it to the primary track, indistinguishable from
/// an original. The chain still sees it as sent, so it is recorded here, and the track reader
/// claims its repaired copy so that `received` holds original transmissions only.
#[derive(Default)]
pub(crate) struct RtxLog {
    /// RTX SSRC → (primary SSRC, primary payload type), from the remote streams the chain binds.
    repairs: Mutex<HashMap<u32, (u32, u8)>>,
    arrivals: Mutex<Vec<RtxArrival>>,
    /// RTX packets too short to carry an OSN (padding, RFC 4588 §4): not retransmissions.
    padding: AtomicU64,
}

impl RtxLog {
    /// Records `p` if it is an RTX packet: on an SSRC bound as a repair flow, or carrying one of
    /// `rtx_pts`.
    fn observe(&self, p: &rtc::rtp::packet::Packet, rtx_pts: &[u8]) {
        let primary = lock(&self.repairs).get(&p.header.ssrc).copied();
        if primary.is_none() && !rtx_pts.contains(&p.header.payload_type) {
            return;
        }
        if p.payload.len() < 2 {
            self.padding.fetch_add(1, Ordering::Relaxed);
            return;
        }
        lock(&self.arrivals).push(RtxArrival {
            rtx_ssrc: p.header.ssrc,
            rtx_pt: p.header.payload_type,
            rtx_seq: p.header.sequence_number,
            primary,
            osn: u16::from_be_bytes([p.payload[0], p.payload[1]]),
            timestamp: p.header.timestamp,
            marker: p.header.marker,
            payload: p.payload.slice(2..),
            arrival: Instant::now(),
            repaired: false,
        });
    }

    /// The track reader got (`ssrc`, `seq`): true if that is the repaired copy of a recorded RTX
    /// packet (which is then marked repaired). The chain records an RTX packet before the
    /// endpoint repairs it, so the record always exists by the time its copy reaches a track.
    fn claim_repaired(&self, ssrc: u32, seq: u16) -> bool {
        let mut arrivals = lock(&self.arrivals);
        match arrivals.iter_mut().rev().find(|a| !a.repaired && a.osn == seq && a.primary.map(|p| p.0) == Some(ssrc)) {
            Some(a) => {
                a.repaired = true;
                true
            }
            None => false,
        }
    }
}

/// Sees every inbound packet on its way through the interceptor chain: counts PLI, FIR and NACK
/// per media SSRC (and when each keyframe request came), and records RTX packets in the
/// [`RtxLog`]. It passes everything on unchanged and marks nothing for the application.
///
/// Why here and not on the sender's RTCP reader (`TrackLocal::poll`): in webrtc 0.21 inbound RTCP
/// only reaches that reader if an interceptor tags it `Attribute::DeliverToApplication`, and the
/// core routes a whole compound packet to one track by the *first* sub-packet's destination SSRC,
/// so a PLI bundled behind a receiver report about the audio SSRC would surface on the audio
/// track. Counting by each sub-packet's own media SSRC is exact.
struct WireTap {
    table: Arc<FeedbackTable>,
    rtx: Arc<RtxLog>,
    /// Payload types that mark an RTX packet: ours, plus any the chain binds a repair flow with.
    rtx_pts: Vec<u8>,
    reads: VecDeque<TaggedPacket>,
    writes: VecDeque<TaggedPacket>,
}

impl rtc::sansio::Protocol<TaggedPacket, TaggedPacket, ()> for WireTap {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = rtc::shared::error::Error;
    type Time = Instant;

    fn handle_read(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        if let ChainPacket::Rtp(p) = &msg.message.packet {
            self.rtx.observe(p, &self.rtx_pts);
        }
        if let ChainPacket::Rtcp(packets) = &msg.message.packet {
            let now = Instant::now();
            let mut map = lock(&self.table.map);
            let mut times = lock(&self.table.keyframe_requests);
            for p in packets {
                let any = p.as_any();
                if let Some(pli) = any.downcast_ref::<PictureLossIndication>() {
                    map.entry(pli.media_ssrc).or_default().pli += 1;
                    times.entry(pli.media_ssrc).or_default().push(now);
                } else if let Some(fir) = any.downcast_ref::<FullIntraRequest>() {
                    for e in &fir.fir {
                        map.entry(e.ssrc).or_default().fir += 1;
                        times.entry(e.ssrc).or_default().push(now);
                    }
                } else if let Some(nack) = any.downcast_ref::<TransportLayerNack>() {
                    let n: u64 = nack.nacks.iter().map(|p| 1 + p.lost_packets.count_ones() as u64).sum();
                    let e = map.entry(nack.media_ssrc).or_default();
                    e.nack += 1;
                    e.nacked_seqs += n;
                }
            }
        }
        self.reads.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<TaggedPacket> {
        self.reads.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.writes.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<TaggedPacket> {
        self.writes.pop_front()
    }
}

impl Interceptor for WireTap {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, info: &StreamInfo) {
        // webrtc binds a primary stream with its repair flow (and then the repair flow alone,
        // with no `ssrc_rtx` of its own).
        if let Some(rtx_ssrc) = info.ssrc_rtx {
            lock(&self.rtx.repairs).insert(rtx_ssrc, (info.ssrc, info.payload_type));
            if let Some(pt) = info.payload_type_rtx {
                if !self.rtx_pts.contains(&pt) {
                    self.rtx_pts.push(pt);
                }
            }
        }
    }
    // Kept after unbinding: late retransmissions still belong to their stream.
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}

// ---------------------------------------------------------------------------------------------
// Shared state and the event handler
// ---------------------------------------------------------------------------------------------

/// [`Shared::fixed_level`] when no fixed level is set.
const NO_LEVEL: u8 = u8::MAX;

pub(crate) struct Shared {
    id: String,
    received: Mutex<HashMap<(String, Kind), Vec<RecvPacket>>>,
    remote_tracks: Mutex<Vec<(RemoteTrack, Arc<dyn TrackRemote>)>>,
    sent: Mutex<Vec<SentPacket>>,
    feedback: Arc<FeedbackTable>,
    rtx: Arc<RtxLog>,
    publishing: AtomicBool,
    /// Simulcast layers (rids) that send nothing for now, as a browser's encoder drops its top
    /// layer when the uplink is short.
    stopped_layers: Mutex<Vec<String>>,
    /// Stamp audio level / video orientation on what we publish.
    header_extensions: AtomicBool,
    /// A fixed audio level for every audio packet ([`NO_LEVEL`]: none, or as above).
    fixed_level: AtomicU8,
    closed: AtomicBool,
    state_tx: watch::Sender<RTCPeerConnectionState>,
    /// Bumped after every completed offer/answer exchange.
    negotiations: AtomicU64,
    errors: Mutex<Vec<String>>,
    local_candidates: Mutex<Vec<String>>,
    signaling_log: Mutex<Vec<String>>,
    rtcp_sender_ssrc: u32,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Shared {
    fn error(&self, e: impl std::fmt::Display) {
        lock(&self.errors).push(e.to_string());
    }
    fn log(&self, s: impl Into<String>) {
        lock(&self.signaling_log).push(s.into());
    }
}

enum NegEvent {
    LocalCandidate(String),
    GatheringComplete,
    Renegotiate,
    /// Offer again with new ICE credentials.
    RestartIce,
}

struct Handler {
    shared: Arc<Shared>,
    neg_tx: mpsc::UnboundedSender<NegEvent>,
}

type Ready<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

fn ready<'a>() -> Ready<'a> {
    Box::pin(std::future::ready(()))
}

// Implemented by hand (what `#[async_trait]` would expand to) so the root package needs no
// `async-trait` dependency. Every callback does its work synchronously or spawns it; none blocks
// the driver.
impl PeerConnectionEventHandler for Handler {
    fn on_ice_candidate<'life0, 'async_trait>(&'life0 self, event: RTCPeerConnectionIceEvent) -> Ready<'async_trait>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        match event.candidate.to_json() {
            Ok(init) => {
                lock(&self.shared.local_candidates).push(init.candidate.clone());
                let _ = self.neg_tx.send(NegEvent::LocalCandidate(init.candidate));
            }
            Err(e) => self.shared.error(format!("local candidate to_json: {e}")),
        }
        ready()
    }

    fn on_ice_gathering_state_change<'life0, 'async_trait>(
        &'life0 self,
        state: RTCIceGatheringState,
    ) -> Ready<'async_trait>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        if state == RTCIceGatheringState::Complete {
            let _ = self.neg_tx.send(NegEvent::GatheringComplete);
        }
        ready()
    }

    fn on_connection_state_change<'life0, 'async_trait>(
        &'life0 self,
        state: RTCPeerConnectionState,
    ) -> Ready<'async_trait>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        self.shared.log(format!("connection state {state}"));
        self.shared.state_tx.send_replace(state);
        ready()
    }

    fn on_track<'life0, 'async_trait>(&'life0 self, track: Arc<dyn TrackRemote>) -> Ready<'async_trait>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        let shared = Arc::clone(&self.shared);
        let handle = tokio::spawn(read_remote_track(Arc::clone(&shared), track));
        lock(&shared.tasks).push(handle);
        ready()
    }
}

async fn read_remote_track(shared: Arc<Shared>, track: Arc<dyn TrackRemote>) {
    let publisher = track.stream_id().await;
    let track_id = track.track_id().await;
    let kind = match track.kind().await {
        RtpCodecKind::Audio => Kind::Audio,
        RtpCodecKind::Video => Kind::Video,
        other => {
            shared.error(format!("on_track with unexpected kind {other:?}"));
            return;
        }
    };
    let ssrcs = track.ssrcs().await;
    let mut codec = None;
    for ssrc in &ssrcs {
        if let Some(c) = track.codec(*ssrc).await {
            codec = Some((c.mime_type.clone(), 0));
            break;
        }
    }
    let index = {
        let mut tracks = lock(&shared.remote_tracks);
        tracks.push((
            RemoteTrack { publisher: publisher.clone(), kind, track_id, ssrcs, codec, opened_at: Instant::now() },
            Arc::clone(&track),
        ));
        tracks.len() - 1
    };
    let key = (publisher, kind);
    let mut first = true;
    while let Some(event) = track.poll().await {
        match event {
            TrackRemoteEvent::OnRtpPacket(p) => {
                if shared.rtx.claim_repaired(p.header.ssrc, p.header.sequence_number) {
                    // A retransmission webrtc repaired from RTX: already in the RtxLog.
                    continue;
                }
                if first {
                    first = false;
                    let mut tracks = lock(&shared.remote_tracks);
                    if let Some((info, _)) = tracks.get_mut(index) {
                        let mime = info.codec.take().map(|(m, _)| m).unwrap_or_default();
                        info.codec = Some((mime, p.header.payload_type));
                        if !info.ssrcs.contains(&p.header.ssrc) {
                            info.ssrcs.push(p.header.ssrc);
                        }
                    }
                }
                let rp = RecvPacket {
                    seq: p.header.sequence_number,
                    timestamp: p.header.timestamp,
                    pt: p.header.payload_type,
                    marker: p.header.marker,
                    ssrc: p.header.ssrc,
                    payload: p.payload,
                    arrival: Instant::now(),
                    rtx: None,
                    extensions: p.header.extensions.iter().map(|e| (e.id, e.payload.clone())).collect(),
                };
                lock(&shared.received).entry(key.clone()).or_default().push(rp);
            }
            TrackRemoteEvent::OnEnded => break,
            _ => {}
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Negotiation
// ---------------------------------------------------------------------------------------------

struct Negotiator {
    pc: Arc<dyn PeerConnection>,
    shared: Arc<Shared>,
    sink: SignalSink,
    /// Our own candidates go out only after our first description (offer or answer) has.
    can_send_candidates: bool,
    pending_local: Vec<String>,
    gathering_complete: bool,
    end_of_candidates_sent: bool,
    have_local_offer: bool,
    reoffer_pending: bool,
    /// The next offer restarts ICE.
    ice_restart: bool,
    remote_set: bool,
    pending_remote: Vec<RTCIceCandidateInit>,
    /// (opus, vp8, rtx) payload types the first offer must carry; checked once.
    check_pts: Option<(u8, u8, Option<u8>)>,
}

impl Negotiator {
    fn send_candidate(&self, candidate: &str) {
        (self.sink)(json!({
            "type": "candidate",
            "candidate": candidate,
            "sdp_mid": "0",
            "sdp_mline_index": 0,
        }));
    }

    fn after_local_description_sent(&mut self) {
        if !self.can_send_candidates {
            self.can_send_candidates = true;
            for c in std::mem::take(&mut self.pending_local) {
                self.send_candidate(&c);
            }
        }
        if self.gathering_complete && !self.end_of_candidates_sent {
            self.end_of_candidates_sent = true;
            self.send_candidate("");
        }
    }

    async fn local_sdp_or(&self, fallback: String) -> String {
        self.pc.local_description().await.map(|d| d.sdp).filter(|s| !s.is_empty()).unwrap_or(fallback)
    }

    async fn offer(&mut self) -> anyhow::Result<()> {
        let options = std::mem::take(&mut self.ice_restart)
            .then_some(rtc::peer_connection::configuration::RTCOfferOptions { ice_restart: true });
        let offer = self.pc.create_offer(options).await.context("create_offer")?;
        let fallback = offer.sdp.clone();
        self.pc.set_local_description(offer).await.context("set_local_description(offer)")?;
        self.have_local_offer = true;
        let sdp = self.local_sdp_or(fallback).await;
        if let Some((opus, vp8, rtx)) = self.check_pts.take() {
            let mut wanted = vec![format!("a=rtpmap:{opus} opus/48000/2"), format!("a=rtpmap:{vp8} VP8/90000")];
            if let Some(rtx) = rtx {
                wanted.push(format!("a=rtpmap:{rtx} rtx/90000"));
                wanted.push(format!("a=fmtp:{rtx} apt={vp8}"));
            }
            for want in wanted {
                if !sdp.lines().any(|l| l.trim_end() == want) {
                    self.shared.error(format!("own offer lacks {want:?}:\n{sdp}"));
                }
            }
        }
        self.shared.log("sent offer");
        (self.sink)(json!({"type": "offer", "sdp": sdp}));
        self.after_local_description_sent();
        Ok(())
    }

    async fn rollback(&mut self) -> anyhow::Result<()> {
        let rb = RTCSessionDescription::rollback(None).context("rollback description")?;
        self.pc.set_local_description(rb).await.context("set_local_description(rollback)")?;
        self.have_local_offer = false;
        self.shared.log("rolled back local offer");
        Ok(())
    }

    async fn flush_remote_candidates(&mut self) {
        for c in std::mem::take(&mut self.pending_remote) {
            if let Err(e) = self.pc.add_ice_candidate(c).await {
                self.shared.error(format!("add_ice_candidate: {e}"));
            }
        }
    }

    async fn maybe_reoffer(&mut self) -> anyhow::Result<()> {
        if self.reoffer_pending && !self.have_local_offer {
            self.reoffer_pending = false;
            self.offer().await?;
        }
        Ok(())
    }

    async fn on_remote_offer(&mut self, sdp: String) -> anyhow::Result<()> {
        self.shared.log("received offer");
        if self.have_local_offer {
            // Glare: the server is the impolite peer, so we yield.
            self.rollback().await?;
        }
        let desc = RTCSessionDescription::offer(sdp).context("parse remote offer")?;
        self.pc.set_remote_description(desc).await.context("set_remote_description(offer)")?;
        self.remote_set = true;
        self.flush_remote_candidates().await;
        let answer = self.pc.create_answer(None).await.context("create_answer")?;
        let fallback = answer.sdp.clone();
        self.pc.set_local_description(answer).await.context("set_local_description(answer)")?;
        let sdp = self.local_sdp_or(fallback).await;
        self.shared.log("sent answer");
        (self.sink)(json!({"type": "answer", "sdp": sdp}));
        self.shared.negotiations.fetch_add(1, Ordering::SeqCst);
        self.after_local_description_sent();
        self.maybe_reoffer().await
    }

    async fn on_remote_answer(&mut self, sdp: String) -> anyhow::Result<()> {
        self.shared.log("received answer");
        if !self.have_local_offer {
            bail!("answer received without an outstanding local offer");
        }
        let desc = RTCSessionDescription::answer(sdp).context("parse remote answer")?;
        self.pc.set_remote_description(desc).await.context("set_remote_description(answer)")?;
        self.have_local_offer = false;
        self.remote_set = true;
        self.flush_remote_candidates().await;
        self.shared.negotiations.fetch_add(1, Ordering::SeqCst);
        self.maybe_reoffer().await
    }

    async fn on_glare(&mut self) -> anyhow::Result<()> {
        self.shared.log("received glare");
        // The server ignored our offer. Normally its own offer arrived first and we have already
        // rolled back and answered; if not, roll back now and offer once stable.
        if self.have_local_offer {
            self.rollback().await?;
        }
        self.reoffer_pending = true;
        self.maybe_reoffer().await
    }

    async fn on_remote_candidate(&mut self, msg: &Value) -> anyhow::Result<()> {
        let candidate = msg.get("candidate").and_then(Value::as_str).unwrap_or("");
        if candidate.is_empty() {
            self.shared.log("remote end of candidates");
            return Ok(());
        }
        let init = RTCIceCandidateInit {
            candidate: candidate.to_owned(),
            sdp_mid: msg.get("sdp_mid").and_then(Value::as_str).map(str::to_owned),
            sdp_mline_index: msg.get("sdp_mline_index").and_then(Value::as_u64).map(|v| v as u16),
            ..Default::default()
        };
        if self.remote_set {
            self.pc.add_ice_candidate(init).await.context("add_ice_candidate")?;
        } else {
            self.pending_remote.push(init);
        }
        Ok(())
    }

    async fn on_signal(&mut self, msg: Value) -> anyhow::Result<()> {
        let ty = msg.get("type").and_then(Value::as_str).unwrap_or("");
        let sdp = || msg.get("sdp").and_then(Value::as_str).unwrap_or("").to_owned();
        match ty {
            "offer" => self.on_remote_offer(sdp()).await,
            "answer" => self.on_remote_answer(sdp()).await,
            "candidate" => self.on_remote_candidate(&msg).await,
            "error" if msg.get("code").and_then(Value::as_str) == Some("glare") => self.on_glare().await,
            _ => Ok(()),
        }
    }

    async fn on_event(&mut self, ev: NegEvent) -> anyhow::Result<()> {
        match ev {
            NegEvent::LocalCandidate(c) => {
                if self.can_send_candidates {
                    self.send_candidate(&c);
                } else {
                    self.pending_local.push(c);
                }
            }
            NegEvent::GatheringComplete => {
                self.gathering_complete = true;
                if self.can_send_candidates && !self.end_of_candidates_sent {
                    self.end_of_candidates_sent = true;
                    self.send_candidate("");
                }
            }
            NegEvent::Renegotiate => {
                self.reoffer_pending = true;
                self.maybe_reoffer().await?;
            }
            NegEvent::RestartIce => {
                self.ice_restart = true;
                self.reoffer_pending = true;
                self.maybe_reoffer().await?;
            }
        }
        Ok(())
    }
}

async fn negotiation_loop(
    mut neg: Negotiator,
    initial_offer: bool,
    mut signals: mpsc::UnboundedReceiver<Value>,
    mut events: mpsc::UnboundedReceiver<NegEvent>,
) {
    if initial_offer {
        if let Err(e) = neg.offer().await {
            neg.shared.error(format!("initial offer: {e:#}"));
        }
    }
    loop {
        let result = tokio::select! {
            msg = signals.recv() => match msg {
                Some(msg) => neg.on_signal(msg).await,
                None => break,
            },
            ev = events.recv() => match ev {
                Some(ev) => neg.on_event(ev).await,
                None => break,
            },
        };
        if let Err(e) = result {
            neg.shared.error(format!("negotiation: {e:#}"));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Publishing
// ---------------------------------------------------------------------------------------------

struct LocalMedia {
    kind: Kind,
    ssrc: u32,
    track: Arc<TrackLocalStaticRTP>,
    sender: Arc<dyn RtpSender>,
    /// Simulcast video: each layer's (rid, SSRC), lowest first; `ssrc` is the first's.
    layers: Vec<(String, u32)>,
}

async fn negotiated_send_pt(sender: &Arc<dyn RtpSender>, mime: &str) -> Option<u8> {
    let params = sender.get_parameters().await.ok()?;
    params
        .rtp_parameters
        .codecs
        .iter()
        .find(|c| c.rtp_codec.mime_type.eq_ignore_ascii_case(mime))
        .map(|c| c.payload_type)
}

async fn wait_connected_rx(rx: &mut watch::Receiver<RTCPeerConnectionState>) -> bool {
    loop {
        if *rx.borrow_and_update() == RTCPeerConnectionState::Connected {
            return true;
        }
        if rx.changed().await.is_err() {
            return false;
        }
    }
}

async fn publish_loop(shared: Arc<Shared>, media: LocalMedia, opts: ClientOptions) {
    let mut state_rx = shared.state_tx.subscribe();
    if !wait_connected_rx(&mut state_rx).await {
        return;
    }
    let (period, clock, mime) = match media.kind {
        Kind::Audio => (opts.audio_interval, 48_000u64, MIME_TYPE_OPUS),
        Kind::Video => (opts.video_interval, 90_000u64, MIME_TYPE_VP8),
    };
    let started = Instant::now();
    let ts_base = random_u32();
    let mut seq = (random_u32() & 0x7fff) as u16;
    let mut counter: u32 = 0;
    let mut pt_cache: Option<(u64, u8)> = None;
    let mut keyframes_sent: u64 = 0;
    let mut requests_handled: u64 = 0;
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        if shared.closed.load(Ordering::SeqCst) {
            break;
        }
        if !shared.publishing.load(Ordering::SeqCst) {
            continue;
        }
        let generation = shared.negotiations.load(Ordering::SeqCst);
        let pt = match pt_cache {
            Some((g, pt)) if g == generation => pt,
            _ => match negotiated_send_pt(&media.sender, mime).await {
                Some(pt) => {
                    pt_cache = Some((generation, pt));
                    pt
                }
                None => continue,
            },
        };
        let elapsed = started.elapsed().as_micros() as u64;
        let timestamp = ts_base.wrapping_add((elapsed * clock / 1_000_000) as u32);
        let sent_us = now_us();
        let (payload, keyframe, requests_seen) = match media.kind {
            Kind::Audio => (opus_payload(&shared.id, counter, sent_us), false, 0),
            Kind::Video => {
                let fb = shared.feedback.get(media.ssrc);
                let requests = fb.pli + fb.fir;
                // The oldest unanswered request is due once `keyframe_delay` has passed.
                let request_due = requests > requests_handled
                    && shared
                        .feedback
                        .keyframe_request_at(media.ssrc, requests_handled)
                        .is_none_or(|at| at.elapsed() >= opts.keyframe_delay);
                let keyframe = keyframes_sent == 0 || request_due;
                let payload = vp8_payload(&shared.id, counter, sent_us, keyframe, opts.video_size.0, opts.video_size.1);
                (payload, keyframe, requests)
            }
        };
        let packet = rtc::rtp::packet::Packet {
            header: rtc::rtp::header::Header {
                version: 2,
                // Audio: one packet per talk spurt would set it once; we mark every video frame end.
                marker: media.kind == Kind::Video,
                payload_type: pt,
                sequence_number: seq,
                timestamp,
                ssrc: media.ssrc,
                ..Default::default()
            },
            payload: payload.clone(),
        };
        // Header extensions, when asked for: values that change with every packet, so a receiver
        // can tell that each packet kept its own.
        let (audio_level, video_orientation) = match shared.header_extensions.load(Ordering::SeqCst) {
            false => (None, None),
            true => match media.kind {
                Kind::Audio => (Some(((counter.wrapping_mul(7) % 128) as u8, counter.is_multiple_of(3))), None),
                Kind::Video => (None, Some((counter % 16) as u8)),
            },
        };
        let fixed = shared.fixed_level.load(Ordering::SeqCst);
        let audio_level =
            if fixed != NO_LEVEL && media.kind == Kind::Audio { Some((fixed, true)) } else { audio_level };
        let mut extensions = Vec::new();
        if let Some((level, voice)) = audio_level {
            extensions.push(HeaderExtension::AudioLevel(AudioLevelExtension { level, voice }));
        }
        if let Some(cvo) = video_orientation {
            // The typed value reads C, F and R1R0 from the byte; it cannot fail for 0..16.
            let value = VideoOrientationExtension::unmarshal(&mut &[cvo][..]).unwrap_or_default();
            extensions.push(HeaderExtension::VideoOrientation(value));
        }
        let written = if extensions.is_empty() {
            media.track.write_rtp(packet).await
        } else {
            // Maps each extension's URI onto the id negotiated for this sender.
            media.track.write_rtp_with_extensions(packet, &extensions).await
        };
        match written {
            Ok(()) => {
                lock(&shared.sent).push(SentPacket {
                    kind: media.kind,
                    seq,
                    timestamp,
                    pt,
                    marker: media.kind == Kind::Video,
                    ssrc: media.ssrc,
                    counter,
                    keyframe,
                    payload,
                    sent_at: Instant::now(),
                    audio_level,
                    video_orientation,
                    rid: None,
                });
                seq = seq.wrapping_add(1);
                counter = counter.wrapping_add(1);
                if keyframe {
                    keyframes_sent += 1;
                    requests_handled = requests_seen;
                }
            }
            Err(e) => {
                if shared.closed.load(Ordering::SeqCst) {
                    break;
                }
                shared.error(format!("write_rtp {:?}: {e}", media.kind));
            }
        }
    }
}

/// One simulcast layer's sending state.
struct LayerSend {
    rid: String,
    /// Its place, lowest first.
    index: usize,
    /// Its next VP8 picture id (15 bits) and TL0PICIDX: each layer counts its own.
    picture: u16,
    tl0: u8,
    ssrc: u32,
    seq: u16,
    ts_base: u32,
    counter: u32,
    keyframes_sent: u64,
    requests_handled: u64,
}

/// The header extension ids negotiated for `uris` on `sender`, in order.
async fn sender_extension_ids(sender: &Arc<dyn RtpSender>, uris: &[&str]) -> Vec<Option<u8>> {
    let params = sender.get_parameters().await.ok();
    let exts = params.map(|p| p.rtp_parameters.header_extensions).unwrap_or_default();
    uris.iter().map(|uri| exts.iter().find(|e| e.uri == *uri).map(|e| e.id as u8)).collect()
}

/// Synthetic simulcast video: on every frame tick one packet per layer, all from the same moment
/// (each layer's timestamp is its own random base plus the time since start), each a one-packet
/// VP8 frame whose mark names `"<id>/<rid>"`. A layer sends a keyframe first and then only when
/// its own SSRC is asked for one. Every packet carries the mid and rid header extensions, as a
/// browser's simulcast does (webrtc 0.21 does not add them by itself).
async fn simulcast_loop(shared: Arc<Shared>, pc: Arc<dyn PeerConnection>, media: LocalMedia, opts: ClientOptions) {
    let mut state_rx = shared.state_tx.subscribe();
    if !wait_connected_rx(&mut state_rx).await {
        return;
    }
    let track_id = format!("{}-video", shared.id);
    let mid = match pc.local_description().await {
        Some(d) => parse_sdp(&d.sdp).into_iter().find(|m| m.msid.as_ref().is_some_and(|(_, t)| *t == track_id)),
        None => None,
    };
    let Some(mid) = mid.map(|m| m.mid) else {
        shared.error("simulcast: no m-line for the video track");
        return;
    };
    let ids = sender_extension_ids(
        &media.sender,
        &["urn:ietf:params:rtp-hdrext:sdes:mid", "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"],
    )
    .await;
    let (Some(mid_id), Some(rid_id)) = (ids[0], ids[1]) else {
        shared.error("simulcast: mid / rid header extensions not negotiated");
        return;
    };
    let mut layers: Vec<LayerSend> = media
        .layers
        .iter()
        .enumerate()
        .map(|(index, (rid, ssrc))| LayerSend {
            rid: rid.clone(),
            index,
            picture: (random_u32() & 0x7fff) as u16,
            tl0: random_u32() as u8,
            ssrc: *ssrc,
            seq: (random_u32() & 0x7fff) as u16,
            ts_base: random_u32(),
            counter: 0,
            keyframes_sent: 0,
            requests_handled: 0,
        })
        .collect();
    let started = Instant::now();
    let mut ticker = tokio::time::interval(opts.video_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        if shared.closed.load(Ordering::SeqCst) {
            break;
        }
        if !shared.publishing.load(Ordering::SeqCst) {
            continue;
        }
        let Some(pt) = negotiated_send_pt(&media.sender, MIME_TYPE_VP8).await else { continue };
        let elapsed = started.elapsed().as_micros() as u64;
        let sent_us = now_us();
        let stopped = lock(&shared.stopped_layers).clone();
        let count = layers.len();
        for layer in layers.iter_mut().filter(|l| !stopped.contains(&l.rid)) {
            let timestamp = layer.ts_base.wrapping_add((elapsed * 90_000 / 1_000_000) as u32);
            let fb = shared.feedback.get(layer.ssrc);
            let requests = fb.pli + fb.fir;
            let request_due = requests > layer.requests_handled
                && shared
                    .feedback
                    .keyframe_request_at(layer.ssrc, layer.requests_handled)
                    .is_none_or(|at| at.elapsed() >= opts.keyframe_delay);
            let keyframe = layer.keyframes_sent == 0 || request_due;
            let mark = format!("{}/{}", shared.id, layer.rid);
            // Each layer twice the size of the one below, like real layers (and so a budget can
            // tell them apart): 240, 480, 960 bytes an interframe.
            let inter_len = super::media::VP8_INTER_BODY_LEN << layer.index.min(4);
            let picture = Some((layer.picture, layer.tl0));
            // Its keyframes say its picture size: the top layer `video_size`, each one below
            // half as wide and high (as a browser's scaleResolutionDownBy 4, 2, 1).
            let down = (count - 1 - layer.index).min(4) as u32;
            let size = ((opts.video_size.0 >> down).max(1), (opts.video_size.1 >> down).max(1));
            let payload = vp8_payload_sized(&mark, layer.counter, sent_us, keyframe, size, inter_len, picture);
            let mut header = rtc::rtp::header::Header {
                version: 2,
                marker: true,
                payload_type: pt,
                sequence_number: layer.seq,
                timestamp,
                ssrc: layer.ssrc,
                ..Default::default()
            };
            let tagged = header.set_extension(mid_id, Bytes::from(mid.clone().into_bytes())).is_ok()
                && header.set_extension(rid_id, Bytes::from(layer.rid.clone().into_bytes())).is_ok();
            if !tagged {
                shared.error("simulcast: cannot set mid / rid extensions");
                return;
            }
            let packet = rtc::rtp::packet::Packet { header, payload: payload.clone() };
            match media.track.write_rtp(packet).await {
                Ok(()) => {
                    lock(&shared.sent).push(SentPacket {
                        kind: Kind::Video,
                        seq: layer.seq,
                        timestamp,
                        pt,
                        marker: true,
                        ssrc: layer.ssrc,
                        counter: layer.counter,
                        keyframe,
                        payload,
                        sent_at: Instant::now(),
                        audio_level: None,
                        video_orientation: None,
                        rid: Some(layer.rid.clone()),
                    });
                    layer.seq = layer.seq.wrapping_add(1);
                    layer.counter = layer.counter.wrapping_add(1);
                    // Every frame is a temporal base-layer frame: both count up.
                    layer.picture = layer.picture.wrapping_add(1) & 0x7fff;
                    layer.tl0 = layer.tl0.wrapping_add(1);
                    if keyframe {
                        layer.keyframes_sent += 1;
                        layer.requests_handled = requests;
                    }
                }
                Err(e) => {
                    if shared.closed.load(Ordering::SeqCst) {
                        return;
                    }
                    shared.error(format!("write_rtp simulcast {}: {e}", layer.rid));
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// MediaPeer
// ---------------------------------------------------------------------------------------------

/// A WebRTC peer connection bound to 127.0.0.1 only, with synthetic publishing and per-publisher
/// receive recording.
pub struct MediaPeer {
    id: String,
    opts: ClientOptions,
    pc: Arc<dyn PeerConnection>,
    shared: Arc<Shared>,
    neg_tx: mpsc::UnboundedSender<NegEvent>,
    audio_ssrc: Option<u32>,
    video_ssrc: Option<u32>,
    /// Simulcast video: each layer's (rid, SSRC), lowest first.
    layer_ssrcs: Vec<(String, u32)>,
}

impl MediaPeer {
    /// Builds the peer connection, adds the local tracks (or recvonly transceivers), and starts
    /// negotiating: if `opts.initial_offer`, it offers at once; it then handles whatever arrives
    /// on `signals` and sends its own messages through `sink`.
    ///
    /// `id` is both the msid stream id of the published tracks and the publisher id embedded in
    /// every payload.
    pub async fn start(
        id: &str,
        opts: &ClientOptions,
        sink: SignalSink,
        signals: mpsc::UnboundedReceiver<Value>,
    ) -> anyhow::Result<MediaPeer> {
        let opts = opts.clone();
        let (state_tx, _) = watch::channel(RTCPeerConnectionState::New);
        let feedback = Arc::new(FeedbackTable::default());
        let rtx_log = Arc::new(RtxLog::default());
        let shared = Arc::new(Shared {
            id: id.to_owned(),
            received: Mutex::default(),
            remote_tracks: Mutex::default(),
            sent: Mutex::default(),
            feedback: Arc::clone(&feedback),
            rtx: Arc::clone(&rtx_log),
            publishing: AtomicBool::new(opts.publish),
            stopped_layers: Mutex::default(),
            header_extensions: AtomicBool::new(false),
            fixed_level: AtomicU8::new(NO_LEVEL),
            closed: AtomicBool::new(false),
            state_tx,
            negotiations: AtomicU64::new(0),
            errors: Mutex::default(),
            local_candidates: Mutex::default(),
            signaling_log: Mutex::default(),
            rtcp_sender_ssrc: random_u32(),
            tasks: Mutex::default(),
        });
        let (neg_tx, neg_rx) = mpsc::unbounded_channel();

        let mut media_engine = MediaEngine::default();
        media_engine
            .register_codec(
                RTCRtpCodecParameters { rtp_codec: opus_codec(), payload_type: opts.opus_pt },
                RtpCodecKind::Audio,
            )
            .context("register opus")?;
        media_engine
            .register_codec(
                RTCRtpCodecParameters { rtp_codec: vp8_codec(), payload_type: opts.vp8_pt },
                RtpCodecKind::Video,
            )
            .context("register vp8")?;
        if let Some(rtx_pt) = opts.rtx_pt() {
            media_engine
                .register_codec(
                    RTCRtpCodecParameters { rtp_codec: rtx_codec(opts.vp8_pt), payload_type: rtx_pt },
                    RtpCodecKind::Video,
                )
                .context("register rtx")?;
        }
        // Offered as browsers do; values go out only with `set_header_extensions(true)`.
        let register_extensions = |media_engine: &mut MediaEngine| -> anyhow::Result<()> {
            for (uri, kind) in [(AUDIO_LEVEL_URI, RtpCodecKind::Audio), (VIDEO_ORIENTATION_URI, RtpCodecKind::Video)] {
                media_engine
                    .register_header_extension(RTCRtpHeaderExtensionCapability { uri: uri.to_owned() }, kind, None)
                    .with_context(|| format!("register {uri}"))?;
            }
            Ok(())
        };
        let extensions_first = EXTENSIONS_FIRST.try_with(|first| *first).unwrap_or(false);
        if extensions_first {
            register_extensions(&mut media_engine)?;
        }
        let registry =
            register_default_interceptors(Registry::new(), &mut media_engine).context("default interceptors")?;
        if !extensions_first {
            register_extensions(&mut media_engine)?;
        }
        let registry = registry.with(
            Slot::from(14_000),
            WireTap {
                table: feedback,
                rtx: rtx_log,
                rtx_pts: opts.rtx_pt().into_iter().collect(),
                reads: VecDeque::new(),
                writes: VecDeque::new(),
            },
        );
        // mDNS off: in its default QueryOnly mode the driver opens a multicast socket on the
        // wildcard address. Only 127.0.0.1:0 is bound, so only a loopback host candidate exists.
        let setting_engine = SettingEngineBuilder::new()
            .with_multicast_dns_mode(MulticastDnsMode::Disabled)
            .with_include_loopback_candidate(true)
            .build();
        let handler = Arc::new(Handler { shared: Arc::clone(&shared), neg_tx: neg_tx.clone() });
        let pc = PeerConnectionBuilder::new()
            .with_media_engine(media_engine)
            .with_setting_engine(setting_engine)
            .with_interceptor_registry(registry)
            .with_handler(handler)
            .with_udp_addrs(vec!["127.0.0.1:0".to_owned()])
            .build()
            .await
            .context("build peer connection")?;
        let pc: Arc<dyn PeerConnection> = Arc::new(pc);

        let mut locals = Vec::new();
        if opts.publish {
            for (kind, codec) in [(Kind::Audio, opus_codec()), (Kind::Video, vp8_codec())] {
                let ssrc = random_u32();
                let rtc_kind = match kind {
                    Kind::Audio => RtpCodecKind::Audio,
                    Kind::Video => RtpCodecKind::Video,
                };
                // Simulcast: one encoding per rid, each with an SSRC of its own (and no RTX).
                let layers: Vec<(String, u32)> = match kind {
                    Kind::Video => opts
                        .simulcast
                        .iter()
                        .enumerate()
                        .map(|(i, rid)| (rid.clone(), if i == 0 { ssrc } else { random_u32() }))
                        .collect(),
                    Kind::Audio => Vec::new(),
                };
                let encodings = if layers.is_empty() {
                    vec![RTCRtpEncodingParameters {
                        rtp_coding_parameters: RTCRtpCodingParameters { ssrc: Some(ssrc), ..Default::default() },
                        codec,
                        ..Default::default()
                    }]
                } else {
                    layers
                        .iter()
                        .map(|(rid, ssrc)| RTCRtpEncodingParameters {
                            rtp_coding_parameters: RTCRtpCodingParameters {
                                rid: rid.clone(),
                                ssrc: Some(*ssrc),
                                ..Default::default()
                            },
                            codec: codec.clone(),
                            ..Default::default()
                        })
                        .collect()
                };
                let track = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
                    id.to_owned(),
                    format!("{id}-{kind}"),
                    format!("parlor-test-{kind}"),
                    rtc_kind,
                    encodings,
                )));
                let sender = pc
                    .add_track(Arc::clone(&track) as Arc<dyn TrackLocal>)
                    .await
                    .with_context(|| format!("add {kind} track"))?;
                locals.push(LocalMedia { kind, ssrc, track, sender, layers });
            }
        } else if opts.recv_transceivers {
            for kind in [RtpCodecKind::Audio, RtpCodecKind::Video] {
                pc.add_transceiver_from_kind(
                    kind,
                    Some(RTCRtpTransceiverInit {
                        direction: RTCRtpTransceiverDirection::Recvonly,
                        streams: vec![],
                        send_encodings: vec![],
                    }),
                )
                .await
                .with_context(|| format!("add recvonly {kind:?} transceiver"))?;
            }
        }

        let layer_ssrcs = locals.iter().flat_map(|m| m.layers.clone()).collect();
        let audio_ssrc = locals.iter().find(|m| m.kind == Kind::Audio).map(|m| m.ssrc);
        let video_ssrc = locals.iter().find(|m| m.kind == Kind::Video).map(|m| m.ssrc);

        let negotiator = Negotiator {
            pc: Arc::clone(&pc),
            shared: Arc::clone(&shared),
            sink,
            can_send_candidates: false,
            pending_local: Vec::new(),
            gathering_complete: false,
            end_of_candidates_sent: false,
            have_local_offer: false,
            reoffer_pending: false,
            ice_restart: false,
            remote_set: false,
            pending_remote: Vec::new(),
            check_pts: (opts.publish || opts.recv_transceivers).then_some((opts.opus_pt, opts.vp8_pt, opts.rtx_pt())),
        };
        let mut tasks = vec![tokio::spawn(negotiation_loop(negotiator, opts.initial_offer, signals, neg_rx))];
        for media in locals {
            let enabled = match media.kind {
                Kind::Audio => opts.publish_audio,
                Kind::Video => opts.publish_video,
            };
            if enabled && !media.layers.is_empty() {
                tasks.push(tokio::spawn(simulcast_loop(Arc::clone(&shared), Arc::clone(&pc), media, opts.clone())));
            } else if enabled {
                tasks.push(tokio::spawn(publish_loop(Arc::clone(&shared), media, opts.clone())));
            }
        }
        lock(&shared.tasks).extend(tasks);

        Ok(MediaPeer { id: id.to_owned(), opts, pc, shared, neg_tx, audio_ssrc, video_ssrc, layer_ssrcs })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn options(&self) -> &ClientOptions {
        &self.opts
    }

    /// The underlying peer connection, for anything not wrapped here.
    pub fn pc(&self) -> &Arc<dyn PeerConnection> {
        &self.pc
    }

    /// Current connection state.
    pub fn state(&self) -> RTCPeerConnectionState {
        *self.shared.state_tx.borrow()
    }

    pub fn is_connected(&self) -> bool {
        self.state() == RTCPeerConnectionState::Connected
    }

    /// Waits for `connected`; fails early on `failed`/`closed`.
    pub async fn wait_connected(&self, timeout: Duration) -> anyhow::Result<()> {
        let mut rx = self.shared.state_tx.subscribe();
        let fut = async {
            loop {
                let s = *rx.borrow_and_update();
                match s {
                    RTCPeerConnectionState::Connected => return Ok(()),
                    RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed => {
                        return Err(anyhow!("peer connection {s}"));
                    }
                    _ => {}
                }
                if rx.changed().await.is_err() {
                    return Err(anyhow!("peer dropped"));
                }
            }
        };
        tokio::time::timeout(timeout, fut).await.map_err(|_| {
            anyhow!(
                "peer {} not connected within {timeout:?} (state {}, errors {:?})",
                self.id,
                self.state(),
                self.errors()
            )
        })?
    }

    /// Number of completed offer/answer exchanges (either direction).
    pub fn negotiations(&self) -> u64 {
        self.shared.negotiations.load(Ordering::SeqCst)
    }

    /// Asks the negotiator to send a fresh offer (once no offer of ours is outstanding).
    /// Offer again with new ICE credentials (what a browser's `restartIce()` does).
    pub fn restart_ice(&self) {
        let _ = self.neg_tx.send(NegEvent::RestartIce);
    }

    pub fn renegotiate(&self) {
        let _ = self.neg_tx.send(NegEvent::Renegotiate);
    }

    /// Pauses or resumes the synthetic RTP (sequence numbers continue without a gap).
    /// Stop or resume sending one simulcast layer (the others go on).
    pub fn set_layer_sending(&self, rid: &str, on: bool) {
        let mut stopped = lock(&self.shared.stopped_layers);
        stopped.retain(|r| r != rid);
        if !on {
            stopped.push(rid.to_owned());
        }
    }

    pub fn set_publishing(&self, on: bool) {
        self.shared.publishing.store(on, Ordering::SeqCst);
    }

    pub fn is_publishing(&self) -> bool {
        self.shared.publishing.load(Ordering::SeqCst)
    }

    /// Stamps (or stops stamping) header extensions on what we publish: every audio packet
    /// carries an RFC 6464 audio level (level `counter * 7 % 128`, voice on every third
    /// packet), every video packet a video-orientation byte `counter % 16` (camera, flip and
    /// rotation bits), under the ids negotiated for our senders. What each packet carried is in
    /// [`SentPacket::audio_level`] / [`SentPacket::video_orientation`].
    pub fn set_header_extensions(&self, on: bool) {
        self.shared.header_extensions.store(on, Ordering::SeqCst);
    }

    /// Stamps every audio packet we publish with this RFC 6464 level (-dBov: 0 loudest, 127
    /// silence; voice on), or stops (`None`).
    pub fn set_audio_level(&self, level: Option<u8>) {
        self.shared.fixed_level.store(level.map_or(NO_LEVEL, |l| l.min(127)), Ordering::SeqCst);
    }

    /// The id `uri` is negotiated under for what we send of `kind` (our sender's parameters).
    pub async fn sent_extension_id(&self, kind: Kind, uri: &str) -> Option<u8> {
        let mlines = self.local_mlines().await;
        let kind_str = kind.as_str();
        let own = format!("{}-{kind}", self.id);
        mlines
            .iter()
            .filter(|m| m.kind == kind_str && m.msid.as_ref().is_some_and(|(_, t)| *t == own))
            .find_map(|m| m.extmap_id(uri))
    }

    /// Our SSRC for `kind`, if we publish it.
    pub fn local_ssrc(&self, kind: Kind) -> Option<u32> {
        match kind {
            Kind::Audio => self.audio_ssrc,
            Kind::Video => self.video_ssrc,
        }
    }

    /// Every packet handed to our sender of `kind`, in order.
    pub fn sent(&self, kind: Kind) -> Vec<SentPacket> {
        lock(&self.shared.sent).iter().filter(|p| p.kind == kind).cloned().collect()
    }

    /// Simulcast video: each layer's (rid, SSRC), lowest first (empty for plain video).
    pub fn layer_ssrcs(&self) -> Vec<(String, u32)> {
        self.layer_ssrcs.clone()
    }

    /// PLI + FIR received for one simulcast layer's SSRC.
    pub fn layer_keyframe_requests(&self, rid: &str) -> u64 {
        self.layer_ssrcs
            .iter()
            .find(|(r, _)| r == rid)
            .map(|(_, ssrc)| {
                let fb = self.shared.feedback.get(*ssrc);
                fb.pli + fb.fir
            })
            .unwrap_or(0)
    }

    /// Our send log of `kind`, once it covers every packet in `received` (a subscriber's view of
    /// us). We keep sending while a test checks and log a packet just after writing it, so a test
    /// takes the subscriber's packets first and then asks for this.
    pub async fn sent_covering(&self, kind: Kind, received: &[RecvPacket]) -> Vec<SentPacket> {
        let newest = received.iter().filter_map(|r| r.mark().map(|m| m.counter)).max().unwrap_or(0);
        let logged = || self.sent(kind).last().is_some_and(|s| s.counter >= newest);
        assert!(super::wait_until(Duration::from_secs(20), logged).await, "our send log reaches packet {newest}");
        self.sent(kind)
    }

    pub fn sent_count(&self, kind: Kind) -> usize {
        lock(&self.shared.sent).iter().filter(|p| p.kind == kind).count()
    }

    /// Keyframes we have sent (the first one, then one per request).
    pub fn keyframes_sent(&self) -> usize {
        lock(&self.shared.sent).iter().filter(|p| p.keyframe).count()
    }

    /// PLI + FIR received for our video SSRC (for simulcast video: for any of its layers).
    pub fn keyframe_requests(&self) -> u64 {
        if !self.layer_ssrcs.is_empty() {
            return self.layer_ssrcs.iter().map(|(rid, _)| self.layer_keyframe_requests(rid)).sum();
        }
        let fb = self.feedback(Kind::Video);
        fb.pli + fb.fir
    }

    /// RTCP feedback received about our `kind` SSRC.
    pub fn feedback(&self, kind: Kind) -> FeedbackCounts {
        self.local_ssrc(kind).map(|s| self.shared.feedback.get(s)).unwrap_or_default()
    }

    /// RTCP feedback received about any SSRC (e.g. one we never sent).
    pub fn feedback_for_ssrc(&self, ssrc: u32) -> FeedbackCounts {
        self.shared.feedback.get(ssrc)
    }

    /// Packets received from `publisher` of `kind`, in arrival order: what arrived on the
    /// primary stream, not retransmissions repaired from RTX (see [`Self::retransmissions`]).
    pub fn received(&self, publisher: &str, kind: Kind) -> Vec<RecvPacket> {
        lock(&self.shared.received).get(&(publisher.to_owned(), kind)).cloned().unwrap_or_default()
    }

    /// Cheap count of packets received from `publisher` of `kind`.
    pub fn count(&self, publisher: &str, kind: Kind) -> usize {
        lock(&self.shared.received).get(&(publisher.to_owned(), kind)).map(Vec::len).unwrap_or(0)
    }

    /// (publisher, kind) → packet count, for everything received so far.
    pub fn counts(&self) -> HashMap<(String, Kind), usize> {
        lock(&self.shared.received).iter().map(|(k, v)| (k.clone(), v.len())).collect()
    }

    /// Retransmissions of `publisher`'s `kind` that arrived on an RTX stream, in arrival order
    /// (see [`RecvPacket::rtx`]). Attributed through the primary SSRC's track where the RTX SSRC
    /// is tied to one, else by the mark in the payload.
    pub fn retransmissions(&self, publisher: &str, kind: Kind) -> Vec<RecvPacket> {
        self.rtx_packets()
            .into_iter()
            .filter(|(owner, _)| owner.as_ref().is_some_and(|(p, k)| p == publisher && *k == kind))
            .map(|(_, p)| p)
            .collect()
    }

    /// Every retransmission that arrived on an RTX stream, whoever it came from.
    pub fn all_retransmissions(&self) -> Vec<RecvPacket> {
        self.rtx_packets().into_iter().map(|(_, p)| p).collect()
    }

    /// RTX packets that carried no original packet (padding only).
    pub fn rtx_padding(&self) -> u64 {
        self.shared.rtx.padding.load(Ordering::Relaxed)
    }

    fn rtx_packets(&self) -> Vec<(Option<(String, Kind)>, RecvPacket)> {
        let tracks: Vec<(String, Kind, Vec<u32>)> = lock(&self.shared.remote_tracks)
            .iter()
            .map(|(t, _)| (t.publisher.clone(), t.kind, t.ssrcs.clone()))
            .collect();
        let arrivals = lock(&self.shared.rtx.arrivals).clone();
        arrivals
            .into_iter()
            .map(|a| {
                let by_track = a.primary.and_then(|(ssrc, _)| {
                    tracks.iter().find(|(_, _, ssrcs)| ssrcs.contains(&ssrc)).map(|(p, k, _)| (p.clone(), *k))
                });
                let owner = by_track.or_else(|| parse_mark(&a.payload).map(|m| (m.publisher, m.kind)));
                let (ssrc, pt) = a.primary.unwrap_or((a.rtx_ssrc, a.rtx_pt));
                let packet = RecvPacket {
                    seq: a.osn,
                    timestamp: a.timestamp,
                    pt,
                    marker: a.marker,
                    ssrc,
                    payload: a.payload,
                    arrival: a.arrival,
                    rtx: Some(RtxInfo {
                        ssrc: a.rtx_ssrc,
                        pt: a.rtx_pt,
                        seq: a.rtx_seq,
                        associated: a.primary.is_some(),
                        repaired: a.repaired,
                    }),
                    extensions: Vec::new(),
                };
                (owner, packet)
            })
            .collect()
    }

    /// Publishers we have received at least one packet from.
    pub fn publishers(&self) -> Vec<String> {
        let mut v: Vec<String> = lock(&self.shared.received).keys().map(|(p, _)| p.clone()).collect();
        v.sort();
        v.dedup();
        v
    }

    /// Remote tracks seen by `on_track`, in order.
    pub fn remote_tracks(&self) -> Vec<RemoteTrack> {
        lock(&self.shared.remote_tracks).iter().map(|(t, _)| t.clone()).collect()
    }

    /// Errors the peer swallowed (negotiation failures, write errors); empty when all is well.
    pub fn errors(&self) -> Vec<String> {
        lock(&self.shared.errors).clone()
    }

    /// What the negotiator did, in order ("sent offer", "received glare", …).
    pub fn signaling_log(&self) -> Vec<String> {
        lock(&self.shared.signaling_log).clone()
    }

    /// Our gathered candidates (all must be 127.0.0.1).
    pub fn local_candidates(&self) -> Vec<String> {
        lock(&self.shared.local_candidates).clone()
    }

    pub async fn local_sdp(&self) -> Option<String> {
        self.pc.local_description().await.map(|d| d.sdp)
    }

    pub async fn remote_sdp(&self) -> Option<String> {
        self.pc.remote_description().await.map(|d| d.sdp)
    }

    /// m-lines of the current local description.
    pub async fn local_mlines(&self) -> Vec<MLine> {
        self.local_sdp().await.map(|s| parse_sdp(&s)).unwrap_or_default()
    }

    /// m-lines of the current remote description.
    pub async fn remote_mlines(&self) -> Vec<MLine> {
        self.remote_sdp().await.map(|s| parse_sdp(&s)).unwrap_or_default()
    }

    /// Payload types negotiated for `codec` ("opus", "VP8") across all m-lines of the current
    /// local description — the payload types this client expects to receive that codec under.
    pub async fn negotiated_pts(&self, codec: &str) -> Vec<u8> {
        let mut v: Vec<u8> = self.local_mlines().await.iter().flat_map(|m| m.pts_for(codec)).collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Payload types this client negotiated for the m-line(s) carrying `publisher`'s `kind` track
    /// (found by the `a=msid:<publisher> …` of the remote description, matched by mid to the
    /// local description). Use to check that forwarded packets arrive under *this* client's
    /// payload types.
    pub async fn negotiated_pts_for(&self, publisher: &str, kind: Kind) -> Vec<u8> {
        let codec = match kind {
            Kind::Audio => "opus",
            Kind::Video => "VP8",
        };
        let remote = self.remote_mlines().await;
        let local = self.local_mlines().await;
        let mut v: Vec<u8> = remote
            .iter()
            .filter(|m| m.kind == kind.as_str())
            .filter(|m| m.msid.as_ref().map(|x| x.0.as_str()) == Some(publisher))
            .filter_map(|r| local.iter().find(|l| l.mid == r.mid))
            .flat_map(|l| l.pts_for(codec))
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// The id this client negotiated for header extension `uri` on the m-line carrying
    /// `publisher`'s `kind` track (found like [`Self::negotiated_pts_for`]): the id under which
    /// it parses that extension in what it receives from `publisher`.
    pub async fn negotiated_extension_id_for(&self, publisher: &str, kind: Kind, uri: &str) -> Option<u8> {
        let remote = self.remote_mlines().await;
        let local = self.local_mlines().await;
        remote
            .iter()
            .filter(|m| m.kind == kind.as_str())
            .filter(|m| m.msid.as_ref().map(|x| x.0.as_str()) == Some(publisher))
            .filter_map(|r| local.iter().find(|l| l.mid == r.mid))
            .find_map(|l| l.extmap_id(uri))
    }

    fn remote_tracks_of(&self, publisher: &str, kind: Kind) -> Vec<(u32, Arc<dyn TrackRemote>)> {
        let last_ssrc =
            lock(&self.shared.received).get(&(publisher.to_owned(), kind)).and_then(|v| v.last().map(|p| p.ssrc));
        lock(&self.shared.remote_tracks)
            .iter()
            .filter(|(t, _)| t.publisher == publisher && t.kind == kind)
            .filter_map(|(t, track)| {
                let ssrc = last_ssrc.filter(|s| t.ssrcs.contains(s)).or_else(|| t.ssrcs.first().copied())?;
                Some((ssrc, Arc::clone(track)))
            })
            .collect()
    }

    /// Sends a PLI for every video track received from `publisher`. Returns how many were sent.
    pub async fn send_pli(&self, publisher: &str) -> anyhow::Result<usize> {
        let tracks = self.remote_tracks_of(publisher, Kind::Video);
        if tracks.is_empty() {
            bail!("no video track received from {publisher}");
        }
        for (media_ssrc, track) in &tracks {
            track
                .write_rtcp(vec![Box::new(PictureLossIndication {
                    sender_ssrc: self.shared.rtcp_sender_ssrc,
                    media_ssrc: *media_ssrc,
                })])
                .await
                .context("write PLI")?;
        }
        Ok(tracks.len())
    }

    /// Sends a NACK for `seqs` on every `kind` track received from `publisher`.
    pub async fn send_nack(&self, publisher: &str, kind: Kind, seqs: &[u16]) -> anyhow::Result<usize> {
        let tracks = self.remote_tracks_of(publisher, kind);
        if tracks.is_empty() {
            bail!("no {kind} track received from {publisher}");
        }
        for (media_ssrc, track) in &tracks {
            track
                .write_rtcp(vec![Box::new(TransportLayerNack {
                    sender_ssrc: self.shared.rtcp_sender_ssrc,
                    media_ssrc: *media_ssrc,
                    nacks: nack_pairs_from_sequence_numbers(seqs),
                })])
                .await
                .context("write NACK")?;
        }
        Ok(tracks.len())
    }

    /// Sends `packets` as one RTCP compound through the receiver of the first remote track
    /// (webrtc sends them as they are, whatever SSRCs they name): feedback about streams this
    /// peer never received, as an adversary would send. Fails before any track has arrived.
    pub async fn send_rtcp_any(&self, packets: Vec<Box<dyn rtc::rtcp::Packet>>) -> anyhow::Result<()> {
        let track = lock(&self.shared.remote_tracks).first().map(|(_, t)| Arc::clone(t));
        let track = track.ok_or_else(|| anyhow!("no remote track to send RTCP through"))?;
        track.write_rtcp(packets).await.context("write RTCP")
    }

    /// A PLI naming `media_ssrc`, whether or not we receive it ([`Self::send_rtcp_any`]).
    pub async fn send_pli_for_ssrc(&self, media_ssrc: u32) -> anyhow::Result<()> {
        let sender_ssrc = self.shared.rtcp_sender_ssrc;
        self.send_rtcp_any(vec![Box::new(PictureLossIndication { sender_ssrc, media_ssrc })]).await
    }

    /// A FIR (RFC 5104) for `ssrc` with command sequence number `seq` ([`Self::send_rtcp_any`]).
    pub async fn send_fir_for_ssrc(&self, ssrc: u32, seq: u8) -> anyhow::Result<()> {
        use rtc::rtcp::payload_feedbacks::full_intra_request::FirEntry;
        let fir = FullIntraRequest {
            sender_ssrc: self.shared.rtcp_sender_ssrc,
            media_ssrc: ssrc,
            fir: vec![FirEntry { ssrc, sequence_number: seq }],
        };
        self.send_rtcp_any(vec![Box::new(fir)]).await
    }

    /// A NACK for `seqs` of `media_ssrc`, whether or not we receive it ([`Self::send_rtcp_any`]).
    pub async fn send_nack_for_ssrc(&self, media_ssrc: u32, seqs: &[u16]) -> anyhow::Result<()> {
        let nack = TransportLayerNack {
            sender_ssrc: self.shared.rtcp_sender_ssrc,
            media_ssrc,
            nacks: nack_pairs_from_sequence_numbers(seqs),
        };
        self.send_rtcp_any(vec![Box::new(nack)]).await
    }

    /// Stops publishing and closes the peer connection.
    pub async fn close(&self) {
        if self.shared.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        if let Err(e) = self.pc.close().await {
            self.shared.error(format!("close: {e}"));
        }
        for t in lock(&self.shared.tasks).drain(..) {
            t.abort();
        }
    }
}

impl Drop for MediaPeer {
    fn drop(&mut self) {
        let already = self.shared.closed.swap(true, Ordering::SeqCst);
        for t in lock(&self.shared.tasks).drain(..) {
            t.abort();
        }
        if !already {
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                let pc = Arc::clone(&self.pc);
                rt.spawn(async move {
                    let _ = pc.close().await;
                });
            }
        }
    }
}

/// Connects two peers directly (no server): `a` offers, `b` answers (`b`'s `initial_offer` is
/// forced off). Signaling JSON is passed straight across, exactly as a server would relay it.
pub async fn connect_pair(
    a_id: &str,
    a_opts: &ClientOptions,
    b_id: &str,
    b_opts: &ClientOptions,
) -> anyhow::Result<(MediaPeer, MediaPeer)> {
    let (to_a, a_in) = mpsc::unbounded_channel::<Value>();
    let (to_b, b_in) = mpsc::unbounded_channel::<Value>();
    let sink_a: SignalSink = Arc::new(move |v| {
        let _ = to_b.send(v);
    });
    let sink_b: SignalSink = Arc::new(move |v| {
        let _ = to_a.send(v);
    });
    let mut a_opts = a_opts.clone();
    a_opts.initial_offer = true;
    let mut b_opts = b_opts.clone();
    b_opts.initial_offer = false;
    // b first, so its transceivers exist before a's offer reaches it.
    let b = MediaPeer::start(b_id, &b_opts, sink_b, b_in).await?;
    let a = MediaPeer::start(a_id, &a_opts, sink_a, a_in).await?;
    Ok((a, b))
}
