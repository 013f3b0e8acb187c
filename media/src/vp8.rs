//! Just enough VP8 RTP payload parsing (RFC 7741) to tell where a keyframe starts.

/// Whether an RTP payload is the first packet of a VP8 keyframe: the payload descriptor
/// has S=1 and PID=0, and the VP8 payload header that follows has the P (inverse keyframe)
/// bit cleared (RFC 7741 §4.2, §4.3). Malformed payloads are never keyframes.
pub fn is_keyframe_start(payload: &[u8]) -> bool {
    let Some(&first) = payload.first() else {
        return false;
    };
    let extended = first & 0x80 != 0;
    let start = first & 0x10 != 0;
    let pid = first & 0x0f;
    if !start || pid != 0 {
        return false;
    }
    let mut at = 1;
    if extended {
        let Some(&ext) = payload.get(at) else {
            return false;
        };
        at += 1;
        if ext & 0x80 != 0 {
            // PictureID: one byte, or two when its M bit is set.
            let Some(&pic) = payload.get(at) else {
                return false;
            };
            at += if pic & 0x80 != 0 { 2 } else { 1 };
        }
        if ext & 0x40 != 0 {
            at += 1; // TL0PICIDX
        }
        if ext & 0x30 != 0 {
            at += 1; // TID / Y / KEYIDX
        }
    }
    match payload.get(at) {
        Some(&header) => header & 0x01 == 0,
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::is_keyframe_start;

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
}
