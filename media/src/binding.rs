//! Plain STUN binding (RFC 8489 §3): a request without ICE credentials is answered with the
//! sender's address as seen here (XOR-MAPPED-ADDRESS), the way a STUN server does. `parlor
//! check` uses it to prove that an announced address reaches a media worker; such a request
//! never reaches a peer. The client half (request, reading the answer) lives here too.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use stun_rs::attributes::stun::XorMappedAddress;
use stun_rs::methods::BINDING;
use stun_rs::{
    MessageClass, MessageDecoderBuilder, MessageEncoderBuilder, StunAttribute, StunMessageBuilder, TransactionId,
};

use crate::demux::looks_like_stun;

/// Largest answer we write: header (20) + XOR-MAPPED-ADDRESS for IPv6 (24).
const MAX_REPLY: usize = 64;

/// The STUN type of a Binding request (method 0x001, class request).
const BINDING_REQUEST_TYPE: [u8; 2] = [0x00, 0x01];

/// Whether `attr` would make a request an ICE connectivity check rather than a plain one.
fn is_credential(attr: &StunAttribute) -> bool {
    attr.is_user_name() || attr.is_message_integrity() || attr.is_message_integrity_sha256() || attr.is_user_hash()
}

/// The answer to a credential-less Binding request from `source`, or `None` when `buf` is
/// anything else (not STUN, not a Binding request, malformed, or carrying credentials: an ICE
/// check, which belongs to a peer).
pub(crate) fn plain_binding_reply(buf: &[u8], source: SocketAddr) -> Option<Vec<u8>> {
    if !looks_like_stun(buf) || buf[0..2] != BINDING_REQUEST_TYPE {
        return None;
    }
    let (msg, _) = MessageDecoderBuilder::default().build().decode(buf).ok()?;
    if msg.attributes().iter().any(is_credential) {
        return None;
    }
    let reply = StunMessageBuilder::new(BINDING, MessageClass::SuccessResponse)
        .with_transaction_id(*msg.transaction_id())
        .with_attribute(XorMappedAddress::from(source))
        .build();
    let mut out = vec![0u8; MAX_REPLY];
    let n = MessageEncoderBuilder::default().build().encode(&mut out, &reply).ok()?;
    out.truncate(n);
    Some(out)
}

/// Most plain binding answers per second from one worker: they are unauthenticated, and a
/// little larger than the request, so a spoofed flood must not turn the server into a reflector.
const REPLIES_PER_SECOND: u32 = 200;

/// A fixed-window cap on plain binding answers.
#[derive(Debug, Default)]
pub(crate) struct ReplyBudget {
    window: Option<Instant>,
    used: u32,
}

impl ReplyBudget {
    /// Whether one more answer may go out at `now`.
    pub(crate) fn allow(&mut self, now: Instant) -> bool {
        if self.window.is_none_or(|start| now.duration_since(start) >= Duration::from_secs(1)) {
            self.window = Some(now);
            self.used = 0;
        }
        self.used += 1;
        self.used <= REPLIES_PER_SECOND
    }
}

/// A new credential-less Binding request and its transaction id (to match the answer).
pub fn binding_request() -> (Vec<u8>, [u8; 12]) {
    let id = TransactionId::default();
    let msg = StunMessageBuilder::new(BINDING, MessageClass::Request).with_transaction_id(id).build();
    let mut out = vec![0u8; MAX_REPLY];
    // A bare 20-byte header always fits.
    let n = MessageEncoderBuilder::default().build().encode(&mut out, &msg).unwrap_or(0);
    out.truncate(n);
    (out, *id.as_bytes())
}

/// The mapped address in `buf` if it is the success answer to the request `id`.
pub fn mapped_address(buf: &[u8], id: &[u8; 12]) -> Option<SocketAddr> {
    if !looks_like_stun(buf) {
        return None;
    }
    let (msg, _) = MessageDecoderBuilder::default().build().decode(buf).ok()?;
    if msg.method() != BINDING || msg.class() != MessageClass::SuccessResponse || msg.transaction_id().as_bytes() != id
    {
        return None;
    }
    let attr = msg.get::<XorMappedAddress>()?.as_xor_mapped_address().ok()?;
    Some(*attr.socket_address())
}

#[cfg(test)]
mod tests {
    use super::*;
    use stun_rs::attributes::stun::UserName;

    fn encode(msg: stun_rs::StunMessage) -> Vec<u8> {
        let mut out = vec![0u8; 256];
        let n = MessageEncoderBuilder::default().build().encode(&mut out, &msg).unwrap();
        out.truncate(n);
        out
    }

    #[test]
    fn answers_a_plain_request_with_the_source_address() {
        for source in ["203.0.113.9:40000", "[2001:db8::7]:5000"] {
            let source: SocketAddr = source.parse().unwrap();
            let (req, id) = binding_request();
            assert_eq!(req.len(), 20);
            let reply = plain_binding_reply(&req, source).expect("answered");
            assert_eq!(mapped_address(&reply, &id), Some(source));
            // Another transaction's answer is not ours.
            let (_, other) = binding_request();
            assert_eq!(mapped_address(&reply, &other), None);
        }
    }

    #[test]
    fn leaves_ice_checks_and_other_stun_alone() {
        let src: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let check = encode(
            StunMessageBuilder::new(BINDING, MessageClass::Request)
                .with_attribute(UserName::new("abcd:wxyz").unwrap())
                .build(),
        );
        assert_eq!(plain_binding_reply(&check, src), None, "an ICE check goes to its peer");
        let indication = encode(StunMessageBuilder::new(BINDING, MessageClass::Indication).build());
        assert_eq!(plain_binding_reply(&indication, src), None);
        let response = plain_binding_reply(&binding_request().0, src).unwrap();
        assert_eq!(plain_binding_reply(&response, src), None, "a response is never answered");
    }

    #[test]
    fn answers_are_capped_per_second() {
        let mut budget = ReplyBudget::default();
        let t0 = Instant::now();
        let allowed = (0..REPLIES_PER_SECOND * 2).filter(|_| budget.allow(t0)).count();
        assert_eq!(allowed, REPLIES_PER_SECOND as usize);
        assert!(budget.allow(t0 + Duration::from_secs(1)), "a new second, a new budget");
    }

    #[test]
    fn garbage_is_ignored_without_panicking() {
        let src: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let (req, id) = binding_request();
        assert_eq!(plain_binding_reply(&[], src), None);
        assert_eq!(plain_binding_reply(&req[..19], src), None);
        assert_eq!(mapped_address(&req, &id), None, "a request is not an answer");
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for i in 0..5000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 120) as usize;
            let mut buf: Vec<u8> = (0..len).map(|j| (seed >> (j % 57)) as u8 ^ (j as u8)).collect();
            if i % 2 == 0 && buf.len() >= 20 {
                // A valid header over random attributes and lengths.
                buf[..2].copy_from_slice(&BINDING_REQUEST_TYPE);
                buf[4..8].copy_from_slice(&[0x21, 0x12, 0xa4, 0x42]);
            }
            if let Some(reply) = plain_binding_reply(&buf, src) {
                // Whatever was answered must have been a well-formed request.
                assert!(looks_like_stun(&reply));
            }
            let _ = mapped_address(&buf, &id);
        }
    }
}
