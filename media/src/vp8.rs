//! Just enough VP8 RTP payload parsing (RFC 7741) to tell where a keyframe starts, and the
//! picture size it declares.

/// Where the VP8 payload header starts in the first packet of a frame: after the payload
/// descriptor, which must have S=1 and PID=0 (RFC 7741 §4.2). None for any other packet, or a
/// malformed one.
fn frame_start(payload: &[u8]) -> Option<usize> {
    let &first = payload.first()?;
    let extended = first & 0x80 != 0;
    let start = first & 0x10 != 0;
    let pid = first & 0x0f;
    if !start || pid != 0 {
        return None;
    }
    let mut at = 1;
    if extended {
        let &ext = payload.get(at)?;
        at += 1;
        if ext & 0x80 != 0 {
            // PictureID: one byte, or two when its M bit is set.
            let &pic = payload.get(at)?;
            at += if pic & 0x80 != 0 { 2 } else { 1 };
        }
        if ext & 0x40 != 0 {
            at += 1; // TL0PICIDX
        }
        if ext & 0x30 != 0 {
            at += 1; // TID / Y / KEYIDX
        }
    }
    (at < payload.len()).then_some(at)
}

/// Whether an RTP payload is the first packet of a VP8 keyframe: the payload descriptor
/// has S=1 and PID=0, and the VP8 payload header that follows has the P (inverse keyframe)
/// bit cleared (RFC 7741 §4.2, §4.3). Malformed payloads are never keyframes.
pub fn is_keyframe_start(payload: &[u8]) -> bool {
    frame_start(payload).is_some_and(|at| payload[at] & 0x01 == 0)
}

/// The picture size (width, height) a keyframe's first packet declares: after the 3-byte
/// frame tag, the start code 9d 01 2a and two 14-bit little-endian sizes, each with two
/// scaling bits on top (RFC 6386 §9.1). None for anything else or a size of 0.
pub fn keyframe_size(payload: &[u8]) -> Option<(u16, u16)> {
    let at = frame_start(payload)?;
    let header = payload.get(at..at + 10)?;
    if header[0] & 0x01 != 0 || header[3..6] != [0x9d, 0x01, 0x2a] {
        return None;
    }
    let width = u16::from_le_bytes([header[6], header[7]]) & 0x3fff;
    let height = u16::from_le_bytes([header[8], header[9]]) & 0x3fff;
    (width > 0 && height > 0).then_some((width, height))
}

#[cfg(test)]
mod tests {
    use super::{is_keyframe_start, keyframe_size};

    #[test]
    fn plain_descriptor() {
        assert!(is_keyframe_start(&[0x10, 0x00, 0x9d, 0x01, 0x2a]));
        // P bit set: interframe.
        assert!(!is_keyframe_start(&[0x10, 0x01, 0x00]));
        // Not the start of a partition.
        assert!(!is_keyframe_start(&[0x00, 0x00, 0x9d]));
        // Start of partition 1, not 0.
        assert!(!is_keyframe_start(&[0x11, 0x00]));
    }

    #[test]
    fn extended_descriptor() {
        // X, I with a 15-bit picture id, L, T.
        assert!(is_keyframe_start(&[0x90, 0xe0, 0x80, 0x05, 0x07, 0x20, 0x00, 0x9d]));
        assert!(!is_keyframe_start(&[0x90, 0xe0, 0x80, 0x05, 0x07, 0x20, 0x01]));
        // X, I with a 7-bit picture id.
        assert!(is_keyframe_start(&[0x90, 0x80, 0x05, 0x00]));
    }

    #[test]
    fn truncated_is_not_a_keyframe() {
        assert!(!is_keyframe_start(&[]));
        assert!(!is_keyframe_start(&[0x10]));
        assert!(!is_keyframe_start(&[0x90]));
        assert!(!is_keyframe_start(&[0x90, 0x80]));
        assert!(!is_keyframe_start(&[0x90, 0x80, 0x85, 0x01]));
    }

    #[test]
    fn a_keyframe_says_its_size() {
        // Plain descriptor; frame tag (key); start code; 640 x 480 with scaling bits set on top.
        let key = [0x10, 0x50, 0x01, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x42, 0xe0, 0x01];
        assert_eq!(keyframe_size(&key), Some((640, 480)));
        // The same behind an extended descriptor (X, I with a 15-bit picture id).
        let mut ext = vec![0x90, 0x80, 0x81, 0x02];
        ext.extend_from_slice(&key[1..]);
        assert_eq!(keyframe_size(&ext), Some((640, 480)));
        // An interframe, a wrong start code, a truncated header, a zero size: no size.
        let mut inter = key;
        inter[1] |= 0x01;
        assert_eq!(keyframe_size(&inter), None);
        let mut bad = key;
        bad[4] = 0x9e;
        assert_eq!(keyframe_size(&bad), None);
        assert_eq!(keyframe_size(&key[..10]), None);
        let mut zero = key;
        zero[7] = 0;
        zero[8] = 0;
        assert_eq!(keyframe_size(&zero), None);
    }
}
