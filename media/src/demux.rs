//! Finding the peer that owns an incoming datagram: by source address once known, else by
//! the local ufrag in a STUN request's USERNAME (RFC 8445 §7.2.2: "local:remote").

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::net::SocketAddr;

use stun_rs::attributes::stun::UserName;
use stun_rs::MessageDecoderBuilder;

/// Whether a datagram looks like STUN (RFC 7983 demultiplexing: first byte 0..=3 and the
/// magic cookie in place).
pub fn looks_like_stun(buf: &[u8]) -> bool {
    buf.len() >= 20 && buf[0] < 4 && buf[4..8] == [0x21, 0x12, 0xa4, 0x42]
}

/// The receiver's (our) ufrag from a STUN message's USERNAME, if it has one.
pub fn local_ufrag(buf: &[u8]) -> Option<String> {
    if !looks_like_stun(buf) {
        return None;
    }
    let decoder = MessageDecoderBuilder::default().build();
    let (msg, _) = decoder.decode(buf).ok()?;
    let user = msg.get::<UserName>()?.as_user_name().ok()?;
    let local = user.as_str().split(':').next()?;
    (!local.is_empty()).then(|| local.to_owned())
}

/// How many source addresses one peer keeps (its candidate pairs, an ICE restart's move, an
/// ICE-TCP reconnect); beyond it the oldest is forgotten.
pub const MAX_ADDRESSES_PER_PEER: usize = 8;

/// The demultiplexing tables of one worker.
#[derive(Debug)]
pub struct Demux<K> {
    by_ufrag: HashMap<String, K>,
    by_addr: HashMap<SocketAddr, K>,
    /// Each peer's learnt addresses, oldest first.
    learned: HashMap<K, VecDeque<SocketAddr>>,
}

impl<K: Copy + Eq + Hash> Default for Demux<K> {
    fn default() -> Self {
        Demux { by_ufrag: HashMap::new(), by_addr: HashMap::new(), learned: HashMap::new() }
    }
}

impl<K: Copy + Eq + Hash> Demux<K> {
    /// Register (or, after an ICE restart, re-key) a peer's local ufrag.
    pub fn set_ufrag(&mut self, key: K, ufrag: &str) {
        self.by_ufrag.retain(|_, k| *k != key);
        self.by_ufrag.insert(ufrag.to_owned(), key);
    }

    /// Find the owner of a datagram from `source`: a STUN request by the ufrag it names, anything
    /// else by its source address. Routing a request learns nothing: its MESSAGE-INTEGRITY is
    /// checked only by the owner's str0m, so the address is learnt ([`Demux::learn`]) once the
    /// owner answers it. Otherwise a forged request from a spoofed address could point a
    /// peer's address at another peer (diverting its media) or fill the table.
    pub fn route(&self, source: SocketAddr, buf: &[u8]) -> Option<K> {
        if looks_like_stun(buf) {
            if let Some(key) = local_ufrag(buf).and_then(|u| self.by_ufrag.get(&u).copied()) {
                return Some(key);
            }
        }
        self.by_addr.get(&source).copied()
    }

    /// The peer datagrams from `addr` go to, if any.
    pub fn owner(&self, addr: SocketAddr) -> Option<K> {
        self.by_addr.get(&addr).copied()
    }

    /// `key`'s str0m sent to `addr` (it answered a check from there, or uses it as the
    /// nominated pair): datagrams from `addr` are its from now on. The caller decides whether
    /// another peer's claim on `addr` may be overridden. A peer keeps at most
    /// [`MAX_ADDRESSES_PER_PEER`]; the oldest goes first.
    pub fn learn(&mut self, addr: SocketAddr, key: K) {
        if let Some(old) = self.by_addr.insert(addr, key).filter(|old| *old != key) {
            if let Some(list) = self.learned.get_mut(&old) {
                list.retain(|a| *a != addr);
            }
        }
        let list = self.learned.entry(key).or_default();
        list.retain(|a| *a != addr);
        list.push_back(addr);
        while list.len() > MAX_ADDRESSES_PER_PEER {
            if let Some(gone) = list.pop_front() {
                self.by_addr.remove(&gone);
            }
        }
    }

    /// Forget one address (its ICE-TCP connection closed).
    pub fn forget_addr(&mut self, addr: SocketAddr) {
        if let Some(key) = self.by_addr.remove(&addr) {
            if let Some(list) = self.learned.get_mut(&key) {
                list.retain(|a| *a != addr);
            }
        }
    }

    /// Forget everything about a peer.
    pub fn remove(&mut self, key: K) {
        self.by_ufrag.retain(|_, k| *k != key);
        self.by_addr.retain(|_, k| *k != key);
        self.learned.remove(&key);
    }

    /// Number of known addresses.
    #[cfg(test)]
    pub fn addresses(&self) -> usize {
        self.by_addr.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stun_rs::methods::BINDING;
    use stun_rs::{MessageClass, MessageEncoderBuilder, StunMessageBuilder};

    fn binding(username: &str) -> Vec<u8> {
        let msg = StunMessageBuilder::new(BINDING, MessageClass::Request)
            .with_attribute(UserName::new(username).unwrap())
            .build();
        let mut buf = vec![0u8; 256];
        let n = MessageEncoderBuilder::default().build().encode(&mut buf, &msg).unwrap();
        buf.truncate(n);
        buf
    }

    #[test]
    fn parses_local_ufrag() {
        assert_eq!(local_ufrag(&binding("abcd:wxyz")).as_deref(), Some("abcd"));
        assert_eq!(local_ufrag(b"not stun at all, not stun at all"), None);
        assert_eq!(local_ufrag(&[]), None);
    }

    #[test]
    fn routes_by_ufrag_then_address_and_rekeys() {
        let mut d = Demux::default();
        d.set_ufrag(1u32, "one");
        d.set_ufrag(2u32, "two");
        let a: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:4001".parse().unwrap();
        assert_eq!(d.route(a, b"\x80rtp packet from nowhere....."), None);
        assert_eq!(d.route(a, &binding("two:x")), Some(2));
        // A request alone teaches nothing: its integrity is unchecked here.
        assert_eq!(d.route(a, b"\x80rtp packet still unknown...."), None);
        assert_eq!(d.addresses(), 0);
        d.learn(a, 2); // peer 2 answered the check
        assert_eq!(d.route(a, b"\x80rtp packet now known......."), Some(2));
        // A request naming another peer goes to that peer, and does not re-point the address.
        assert_eq!(d.route(a, &binding("one:x")), Some(1));
        assert_eq!(d.route(a, b"\x80rtp packet still peer two.."), Some(2));
        // ICE restart: new ufrag, new address.
        d.set_ufrag(2, "deux");
        assert_eq!(d.route(b, &binding("two:x")), None);
        assert_eq!(d.route(b, &binding("deux:x")), Some(2));
        d.learn(b, 2);
        d.remove(2);
        assert_eq!(d.route(a, b"\x80rtp....................."), None);
        assert_eq!(d.addresses(), 0);
    }

    #[test]
    fn a_peer_keeps_a_bounded_number_of_addresses() {
        let mut d = Demux::default();
        d.set_ufrag(1u32, "one");
        let addr = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
        for port in 5000..5100 {
            d.learn(addr(port), 1);
        }
        assert_eq!(d.addresses(), MAX_ADDRESSES_PER_PEER);
        assert_eq!(d.owner(addr(5099)), Some(1), "the newest stays");
        assert_eq!(d.owner(addr(5000)), None, "the oldest went");
        // Learnt by another peer: it moves, and the first peer's list no longer holds it.
        d.learn(addr(5099), 2);
        assert_eq!(d.owner(addr(5099)), Some(2));
        d.forget_addr(addr(5098));
        assert_eq!(d.owner(addr(5098)), None);
        d.remove(1);
        assert_eq!(d.addresses(), 1);
    }

    #[test]
    fn garbage_never_routes() {
        let mut d: Demux<u32> = Demux::default();
        d.set_ufrag(1, "one");
        let a: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let mut junk = binding("one:x");
        junk[2] = 0xff; // broken length
        assert_eq!(d.route(a, &junk), None);
    }
}
