//! Synthetic media payloads: recognisable Opus and VP8 (RFC 7741) RTP payloads that carry the
//! publisher's id, a per-kind counter and the send time, plus the parsers that read them back.
//!
//! Layout of the "mark" every payload carries (after the VP8 headers for video):
//!
//! ```text
//! "PRLR" | kind ('a' / 'v') | id length (u8) | id bytes | counter (u32 BE) | sent µs (u64 BE) | filler
//! ```
//!
//! The filler is a pure function of the counter, so apart from the send timestamp the payload is a
//! pure function of (publisher id, kind, counter, keyframe).

use bytes::Bytes;
use std::time::{SystemTime, UNIX_EPOCH};

use super::Kind;

/// Magic prefix of every synthetic payload body.
pub const MARK_MAGIC: [u8; 4] = *b"PRLR";
/// Total body length (mark + filler) of an Opus payload.
pub const OPUS_BODY_LEN: usize = 80;
/// Body length (after the VP8 headers) of an interframe.
pub const VP8_INTER_BODY_LEN: usize = 240;
/// Body length (after the VP8 headers) of a keyframe.
pub const VP8_KEY_BODY_LEN: usize = 1000;
/// Default synthetic resolution written into keyframes.
pub const VP8_WIDTH: u16 = 320;
pub const VP8_HEIGHT: u16 = 240;

/// Microseconds since the UNIX epoch.
pub fn now_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0)
}

fn kind_byte(kind: Kind) -> u8 {
    match kind {
        Kind::Audio => b'a',
        Kind::Video => b'v',
    }
}

/// The mark plus deterministic filler, `total_len` bytes long (or longer if the id needs it).
pub fn mark_body(publisher: &str, kind: Kind, counter: u32, sent_us: u64, total_len: usize) -> Vec<u8> {
    let id = publisher.as_bytes();
    let id_len = id.len().min(255);
    let mut out = Vec::with_capacity(total_len.max(4 + 2 + id_len + 12));
    out.extend_from_slice(&MARK_MAGIC);
    out.push(kind_byte(kind));
    out.push(id_len as u8);
    out.extend_from_slice(&id[..id_len]);
    out.extend_from_slice(&counter.to_be_bytes());
    out.extend_from_slice(&sent_us.to_be_bytes());
    let mut i: u32 = 0;
    while out.len() < total_len {
        out.push((counter.wrapping_mul(31).wrapping_add(i) & 0xff) as u8);
        i += 1;
    }
    out
}

/// An Opus RTP payload (no codec framing — it is never decoded, only forwarded).
pub fn opus_payload(publisher: &str, counter: u32, sent_us: u64) -> Bytes {
    Bytes::from(mark_body(publisher, Kind::Audio, counter, sent_us, OPUS_BODY_LEN))
}

/// A one-packet VP8 frame: a 1-byte RFC 7741 payload descriptor (X=0, N=0, S=1, PID=0) followed by
/// the VP8 payload header (3 bytes; 10 for a keyframe: start code 9d 01 2a and width/height) and
/// the mark.
pub fn vp8_payload(publisher: &str, counter: u32, sent_us: u64, keyframe: bool, width: u16, height: u16) -> Bytes {
    vp8_payload_sized(publisher, counter, sent_us, keyframe, (width, height), VP8_INTER_BODY_LEN, None)
}

/// [`vp8_payload`] with interframes of `inter_len` body bytes (simulcast layers differ in size)
/// and, with `picture` = (15-bit picture id, TL0PICIDX), the extended descriptor a browser's
/// simulcast sends: X=1; I, L and T set; the picture id in its 15-bit form; TID 0 with Y=1.
pub fn vp8_payload_sized(
    publisher: &str,
    counter: u32,
    sent_us: u64,
    keyframe: bool,
    (width, height): (u16, u16),
    inter_len: usize,
    picture: Option<(u16, u8)>,
) -> Bytes {
    let body_len = if keyframe { VP8_KEY_BODY_LEN } else { inter_len };
    let body = mark_body(publisher, Kind::Video, counter, sent_us, body_len);
    let mut out = Vec::with_capacity(body.len() + 16);
    // RFC 7741 §4.2 payload descriptor: |X|R|N|S|R|PID| — S=1 (start of partition 0), PID=0.
    match picture {
        None => out.push(0x10),
        Some((id, tl0)) => out.extend_from_slice(&[0x90, 0xe0, 0x80 | (id >> 8) as u8 & 0x7f, id as u8, tl0, 0x20]),
    }
    // RFC 6386 §9.1 frame tag: 3 bytes, little endian:
    //   bit 0 P (0 = key frame), bits 1-3 version, bit 4 show_frame, bits 5-23 first partition size.
    let first_partition_size = body.len() as u32;
    // version 0 (bits 1-3 zero).
    let p_bit: u32 = if keyframe { 0 } else { 1 };
    let tag: u32 = p_bit | (1 << 4) | (first_partition_size << 5);
    out.push((tag & 0xff) as u8);
    out.push(((tag >> 8) & 0xff) as u8);
    out.push(((tag >> 16) & 0xff) as u8);
    if keyframe {
        out.extend_from_slice(&[0x9d, 0x01, 0x2a]);
        // 14 bits of size, 2 bits of scale (0), little endian.
        out.extend_from_slice(&(width & 0x3fff).to_le_bytes());
        out.extend_from_slice(&(height & 0x3fff).to_le_bytes());
    }
    out.extend_from_slice(&body);
    Bytes::from(out)
}

/// The (15-bit picture id, TL0PICIDX) of a payload made by [`vp8_payload_sized`] with a picture.
pub fn vp8_picture(payload: &[u8]) -> Option<(u16, u8)> {
    match payload {
        [0x90, 0xe0, hi, lo, tl0, ..] if hi & 0x80 != 0 => Some(((u16::from(hi & 0x7f) << 8) | u16::from(*lo), *tl0)),
        _ => None,
    }
}

/// What a VP8 RTP payload says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vp8Info {
    /// S bit of the payload descriptor.
    pub start_of_partition: bool,
    /// PID of the payload descriptor.
    pub partition_id: u8,
    /// Length of the payload descriptor in bytes.
    pub descriptor_len: usize,
    /// Start of a frame (S=1, PID=0) whose P bit is 0 and whose start code is valid.
    pub keyframe: bool,
    /// Present only on the first packet of a frame.
    pub inter: Option<bool>,
    pub width: Option<u16>,
    pub height: Option<u16>,
    /// Offset of the VP8 payload (after the descriptor).
    pub payload_offset: usize,
}

/// Parses an RFC 7741 payload descriptor (including the optional X extension fields) and, on the
/// first packet of a frame, the VP8 payload header.
pub fn parse_vp8(payload: &[u8]) -> Option<Vp8Info> {
    let b0 = *payload.first()?;
    let x = b0 & 0x80 != 0;
    let s = b0 & 0x10 != 0;
    let pid = b0 & 0x07;
    let mut off = 1;
    if x {
        let ext = *payload.get(off)?;
        off += 1;
        if ext & 0x80 != 0 {
            // I: picture id, 7 or 15 bits.
            let pic = *payload.get(off)?;
            off += if pic & 0x80 != 0 { 2 } else { 1 };
        }
        if ext & 0x40 != 0 {
            off += 1; // L: TL0PICIDX
        }
        if ext & 0x20 != 0 || ext & 0x10 != 0 {
            off += 1; // T / K: TID|Y|KEYIDX
        }
    }
    if payload.len() <= off {
        return None;
    }
    let mut info = Vp8Info {
        start_of_partition: s,
        partition_id: pid,
        descriptor_len: off,
        keyframe: false,
        inter: None,
        width: None,
        height: None,
        payload_offset: off,
    };
    if s && pid == 0 {
        let vp8 = &payload[off..];
        if vp8.len() >= 3 {
            let inter = vp8[0] & 0x01 != 0;
            info.inter = Some(inter);
            if !inter && vp8.len() >= 10 && vp8[3..6] == [0x9d, 0x01, 0x2a] {
                info.keyframe = true;
                info.width = Some(u16::from_le_bytes([vp8[6], vp8[7]]) & 0x3fff);
                info.height = Some(u16::from_le_bytes([vp8[8], vp8[9]]) & 0x3fff);
            }
        }
    }
    Some(info)
}

/// True if this VP8 RTP payload starts a keyframe.
pub fn is_vp8_keyframe(payload: &[u8]) -> bool {
    parse_vp8(payload).map(|i| i.keyframe).unwrap_or(false)
}

/// The mark read back out of a payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaMark {
    pub publisher: String,
    pub kind: Kind,
    pub counter: u32,
    pub sent_us: u64,
}

/// Finds and decodes the mark in a synthetic payload of either kind. For VP8 the descriptor and
/// payload header are skipped; for anything else the mark is searched for from the start.
pub fn parse_mark(payload: &[u8]) -> Option<MediaMark> {
    let start = payload.windows(4).position(|w| w == MARK_MAGIC)?;
    let m = &payload[start..];
    let kind = match *m.get(4)? {
        b'a' => Kind::Audio,
        b'v' => Kind::Video,
        _ => return None,
    };
    let id_len = *m.get(5)? as usize;
    let id = m.get(6..6 + id_len)?;
    let c = m.get(6 + id_len..6 + id_len + 4)?;
    let t = m.get(6 + id_len + 4..6 + id_len + 12)?;
    Some(MediaMark {
        publisher: String::from_utf8_lossy(id).into_owned(),
        kind,
        counter: u32::from_be_bytes(c.try_into().ok()?),
        sent_us: u64::from_be_bytes(t.try_into().ok()?),
    })
}
