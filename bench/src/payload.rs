//! Synthetic media that an SFU cannot tell from the real thing at the RTP level.
//!
//! Audio is one 80-byte "Opus" packet every 20 ms. Video is VP8 at a set bitrate and frame rate:
//! every packet starts with an RFC 7741 payload descriptor the way browsers write it (X=1, I=1,
//! a 15-bit PictureID), the first packet of a frame has S=1 and PID=0 followed by the VP8 payload
//! header (RFC 6386 §9.1 frame tag, P bit 0 on keyframes, plus the start code and dimensions),
//! and the last packet of a frame carries the RTP marker bit. Nothing is ever decoded.
//!
//! Every packet *ends* in a 24-byte [`Mark`] — publisher, kind, per-stream counter and the send
//! time in µs since the UNIX epoch — so a receiver can attribute, de-duplicate and time each
//! packet without parsing anything else:
//!
//! ```text
//! publisher u32 BE | counter u32 BE | sent_us u64 BE | kind u8 | flags u8 | layer u8 | 0 | "PBNC"
//! ```
//!
//! A simulcast publisher's layers are separate streams: each has its own counter, and `layer` says
//! which (0 is the lowest; always 0 without simulcast).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Length of the trailing mark.
pub const MARK_LEN: usize = 24;
const MAGIC: [u8; 4] = *b"PBNC";
const FLAG_KEYFRAME: u8 = 1;

/// Bytes of an audio payload (≈ 32 kbit/s at 50 packets/s).
pub const AUDIO_PAYLOAD: usize = 80;
/// Audio packets are 20 ms apart (50 packets/s).
pub const AUDIO_INTERVAL: Duration = Duration::from_millis(20);
/// RTP clock ticks per audio packet (48 kHz).
pub const AUDIO_TICKS: u32 = 960;
/// Largest video payload we write (browsers stay near 1200 bytes per packet).
pub const MAX_VIDEO_PAYLOAD: usize = 1100;
/// Keyframes are this many times larger than the frames between them.
const KEYFRAME_WEIGHT: usize = 3;
/// Synthetic picture size written into keyframes.
pub const WIDTH: u16 = 640;
/// Synthetic picture size written into keyframes.
pub const HEIGHT: u16 = 360;

/// Microseconds since the UNIX epoch: the one clock of the generator (send marks, message
/// arrivals and — via `SO_TIMESTAMPNS` — datagram arrivals all use CLOCK_REALTIME).
pub fn now_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0)
}

/// Media kind, as carried in the mark: the server's own type (audio 0, video 1 on the wire).
pub use parlor_media::Kind;

/// What every synthetic packet says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    /// Index of the publishing participant.
    pub publisher: u32,
    /// Audio or video.
    pub kind: Kind,
    /// The first packet of a keyframe (as the publisher meant it).
    pub keyframe: bool,
    /// Per (publisher, kind, layer) packet counter, from 0.
    pub counter: u32,
    /// The simulcast layer (0 without simulcast).
    pub layer: u8,
    /// Send time, µs since the UNIX epoch.
    pub sent_us: u64,
}

impl Mark {
    /// Write the mark into the last [`MARK_LEN`] bytes of `payload`.
    pub fn write_tail(&self, payload: &mut [u8]) {
        let n = payload.len();
        assert!(n >= MARK_LEN, "payload too short for a mark");
        let t = &mut payload[n - MARK_LEN..];
        t[0..4].copy_from_slice(&self.publisher.to_be_bytes());
        t[4..8].copy_from_slice(&self.counter.to_be_bytes());
        t[8..16].copy_from_slice(&self.sent_us.to_be_bytes());
        t[16] = match self.kind {
            Kind::Audio => 0,
            Kind::Video => 1,
        };
        t[17] = if self.keyframe { FLAG_KEYFRAME } else { 0 };
        t[18] = self.layer;
        t[19] = 0;
        t[20..24].copy_from_slice(&MAGIC);
    }

    /// Read the mark at the end of `payload`, if there is one.
    pub fn read_tail(payload: &[u8]) -> Option<Mark> {
        let n = payload.len();
        if n < MARK_LEN {
            return None;
        }
        let t = &payload[n - MARK_LEN..];
        if t[20..24] != MAGIC {
            return None;
        }
        let kind = match t[16] {
            0 => Kind::Audio,
            1 => Kind::Video,
            _ => return None,
        };
        Some(Mark {
            publisher: u32::from_be_bytes(t[0..4].try_into().ok()?),
            counter: u32::from_be_bytes(t[4..8].try_into().ok()?),
            sent_us: u64::from_be_bytes(t[8..16].try_into().ok()?),
            kind,
            keyframe: t[17] & FLAG_KEYFRAME != 0,
            layer: t[18],
        })
    }
}

/// An audio payload: an Opus TOC byte (CELT FB 20 ms, mono, one frame), filler, the mark.
pub fn audio_payload(publisher: u32, counter: u32, sent_us: u64) -> Vec<u8> {
    let mut p = vec![0x5a; AUDIO_PAYLOAD];
    p[0] = 0xf8;
    Mark { publisher, kind: Kind::Audio, keyframe: false, counter, sent_us, layer: 0 }.write_tail(&mut p);
    p
}

/// A video source: turns frame ticks into packets at a set bitrate.
#[derive(Debug, Clone)]
pub struct VideoSource {
    /// Frames per second.
    pub fps: u32,
    /// Target bitrate, bits per second (payload).
    pub bitrate: u32,
    /// Frames between periodic keyframes.
    pub keyframe_every: u32,
    /// The simulcast layer its packets are marked with (0 without simulcast).
    pub layer: u8,
    /// Picture size written into keyframes.
    pub size: (u16, u16),
    picture_id: u16,
}

impl VideoSource {
    /// A source of `bitrate` bit/s at `fps`, with a keyframe every `keyframe_interval`.
    pub fn new(bitrate: u32, fps: u32, keyframe_interval: Duration) -> Self {
        let fps = fps.max(1);
        let keyframe_every = ((keyframe_interval.as_secs_f64() * fps as f64).round() as u32).max(1);
        VideoSource { fps, bitrate, keyframe_every, layer: 0, size: (WIDTH, HEIGHT), picture_id: 0 }
    }

    /// Simulcast layer `layer` of `scale_down` times smaller pictures than the full size.
    pub fn layer(mut self, layer: u8, scale_down: u16) -> Self {
        self.layer = layer;
        self.size = (WIDTH / scale_down.max(1), HEIGHT / scale_down.max(1));
        self
    }

    /// Time between frames.
    pub fn frame_interval(&self) -> Duration {
        Duration::from_secs_f64(1.0 / self.fps as f64)
    }

    /// RTP clock ticks (90 kHz) per frame.
    pub fn ticks_per_frame(&self) -> u32 {
        90_000 / self.fps
    }

    /// Size of an interframe, chosen so that one keyframe interval (one keyframe
    /// [`KEYFRAME_WEIGHT`] times as large plus the interframes) averages the bitrate.
    fn inter_size(&self) -> usize {
        let per_frame = self.bitrate as f64 / 8.0 / self.fps as f64;
        let n = self.keyframe_every as f64;
        (per_frame * n / (n - 1.0 + KEYFRAME_WEIGHT as f64)).max(64.0) as usize
    }

    /// The packets of the next frame (payloads only; the caller sets the marker bit on the
    /// last one). Counters run from `first_counter`.
    pub fn frame(&mut self, keyframe: bool, publisher: u32, first_counter: u32, sent_us: u64) -> Vec<Vec<u8>> {
        let size = if keyframe { self.inter_size() * KEYFRAME_WEIGHT } else { self.inter_size() };
        let packets = size.div_ceil(MAX_VIDEO_PAYLOAD).max(1);
        let per_packet = size / packets;
        let pic = self.picture_id & 0x7fff;
        self.picture_id = self.picture_id.wrapping_add(1);
        let mut out = Vec::with_capacity(packets);
        for i in 0..packets {
            let first = i == 0;
            let mut header = Vec::with_capacity(14);
            // RFC 7741 §4.2: |X|R|N|S|R| PID | then |I|L|T|K| RSV | then |M| PictureID (15 bits) |.
            header.push(0x80 | if first { 0x10 } else { 0x00 });
            header.push(0x80);
            header.push(0x80 | (pic >> 8) as u8);
            header.push(pic as u8);
            if first {
                // RFC 6386 §9.1 frame tag, little endian: P (0 = keyframe), version 0,
                // show_frame 1, first partition size (19 bits).
                let partition = (size as u32).min(0x7ffff);
                let tag = (if keyframe { 0 } else { 1 }) | (1 << 4) | (partition << 5);
                header.extend_from_slice(&tag.to_le_bytes()[..3]);
                if keyframe {
                    header.extend_from_slice(&[0x9d, 0x01, 0x2a]);
                    header.extend_from_slice(&self.size.0.to_le_bytes());
                    header.extend_from_slice(&self.size.1.to_le_bytes());
                }
            }
            let len = per_packet.max(header.len() + MARK_LEN + 1);
            let mut p = vec![0xa5; len];
            p[..header.len()].copy_from_slice(&header);
            Mark {
                publisher,
                kind: Kind::Video,
                keyframe: keyframe && first,
                counter: first_counter.wrapping_add(i as u32),
                sent_us,
                layer: self.layer,
            }
            .write_tail(&mut p);
            out.push(p);
        }
        out
    }
}

/// Whether a VP8 RTP payload starts a keyframe: descriptor S=1 and PID=0 (any X extension
/// skipped) and the VP8 payload header's P bit 0 (RFC 7741 §4.3).
pub fn vp8_keyframe_start(payload: &[u8]) -> bool {
    let Some(&b0) = payload.first() else { return false };
    if b0 & 0x10 == 0 || b0 & 0x07 != 0 {
        return false;
    }
    let mut at = 1;
    if b0 & 0x80 != 0 {
        let Some(&ext) = payload.get(at) else { return false };
        at += 1;
        if ext & 0x80 != 0 {
            let Some(&pic) = payload.get(at) else { return false };
            at += if pic & 0x80 != 0 { 2 } else { 1 };
        }
        if ext & 0x40 != 0 {
            at += 1;
        }
        if ext & 0x30 != 0 {
            at += 1;
        }
    }
    payload.get(at).is_some_and(|h| h & 0x01 == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_roundtrip_at_the_tail() {
        let p = audio_payload(7, 42, 1_700_000_000_123_456);
        assert_eq!(p.len(), AUDIO_PAYLOAD);
        let m = Mark::read_tail(&p).unwrap();
        assert_eq!(
            m,
            Mark {
                publisher: 7,
                kind: Kind::Audio,
                keyframe: false,
                counter: 42,
                sent_us: 1_700_000_000_123_456,
                layer: 0
            }
        );
        assert!(Mark::read_tail(&p[..p.len() - 1]).is_none());
    }

    #[test]
    fn a_layer_marks_its_packets_and_declares_its_size() {
        let mut v = VideoSource::new(150_000, 30, Duration::from_secs(2)).layer(1, 2);
        let packets = v.frame(true, 4, 9, 5);
        let m = Mark::read_tail(&packets[0]).unwrap();
        assert_eq!((m.publisher, m.layer, m.counter, m.keyframe), (4, 1, 9, true));
        // Width and height (14 bits each, little endian) follow the start code.
        assert_eq!(&packets[0][10..14], &[(WIDTH / 2) as u8, ((WIDTH / 2) >> 8) as u8, (HEIGHT / 2) as u8, 0]);
    }

    #[test]
    fn frames_have_valid_descriptors_and_average_the_bitrate() {
        let mut v = VideoSource::new(600_000, 30, Duration::from_secs(2));
        assert_eq!(v.keyframe_every, 60);
        let mut bytes = 0;
        let mut counter = 0;
        for f in 0..60 {
            let key = f == 0;
            let packets = v.frame(key, 3, counter, 5);
            for (i, p) in packets.iter().enumerate() {
                assert!(p.len() <= MAX_VIDEO_PAYLOAD + MARK_LEN, "{}", p.len());
                // S=1 only on the first packet; PID always 0; X=1 with a 15-bit PictureID.
                assert_eq!(p[0] & 0x10 != 0, i == 0);
                assert_eq!(p[0] & 0x87, 0x80);
                assert_eq!(p[1], 0x80);
                assert_eq!(vp8_keyframe_start(p), key && i == 0);
                let m = Mark::read_tail(p).unwrap();
                assert_eq!((m.publisher, m.kind, m.counter), (3, Kind::Video, counter));
                assert_eq!(m.keyframe, key && i == 0);
                counter += 1;
                bytes += p.len();
            }
            if key {
                assert_eq!(&packets[0][7..10], &[0x9d, 0x01, 0x2a], "start code after the frame tag");
                assert_eq!(packets[0][4] & 1, 0, "P bit 0 on a keyframe");
            } else {
                assert_eq!(packets[0][4] & 1, 1, "P bit 1 on an interframe");
            }
        }
        let kbps = bytes as f64 * 8.0 / 2.0 / 1000.0;
        assert!((570.0..=630.0).contains(&kbps), "{kbps} kbit/s");
    }

    #[test]
    fn keyframe_detection_follows_rfc_7741() {
        assert!(vp8_keyframe_start(&[0x10, 0x00]));
        assert!(!vp8_keyframe_start(&[0x10, 0x01]));
        assert!(!vp8_keyframe_start(&[0x00, 0x00]), "S=0");
        assert!(!vp8_keyframe_start(&[0x11, 0x00]), "PID=1");
        assert!(vp8_keyframe_start(&[0x90, 0x80, 0x81, 0x02, 0x00]), "two-byte PictureID");
        assert!(vp8_keyframe_start(&[0x90, 0xe0, 0x05, 0x01, 0x02, 0x00]), "I, L, T");
        assert!(!vp8_keyframe_start(&[0x90, 0x80, 0x81]), "truncated");
    }
}
