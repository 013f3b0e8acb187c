//! What arrives from the network: UDP datagrams and ICE-TCP frames, demultiplexed to their
//! peer (or answered here, for plain STUN binding requests).

use std::net::SocketAddr;
use std::time::Instant;

use str0m::net::{Protocol, Receive};
use str0m::Input;
use tracing::debug;

use super::Worker;
use crate::stats::DropReason;
use crate::tcp::TcpEvent;
use crate::{binding, nat};

impl Worker {
    /// A UDP datagram from `source`, received at `now`.
    pub(super) fn datagram(&mut self, source: SocketAddr, buf: &[u8], now: Instant) {
        self.now = now;
        self.counters.datagrams_in += 1;
        self.receive(Protocol::Udp, nat::canonical(source), buf);
    }

    /// A packet from an ICE-TCP connection, or news of one, at `now`.
    pub(super) fn tcp_event(&mut self, event: TcpEvent, now: Instant) {
        self.now = now;
        let closed = match &event {
            TcpEvent::Closed { remote, .. } => Some(*remote),
            _ => None,
        };
        if let Some(remote) = closed {
            self.tcp.event(event);
            // Its address may come back as a new connection; until then it routes nowhere.
            if !self.tcp.is_open(remote) {
                self.demux.forget_addr(remote);
            }
            return;
        }
        if let Some((source, packet)) = self.tcp.event(event) {
            self.counters.datagrams_in += 1;
            self.receive(Protocol::Tcp, source, &packet);
        }
    }

    /// One packet, from UDP or ICE-TCP: to its peer, or answered here if it is a plain STUN
    /// binding request (those never reach a peer).
    fn receive(&mut self, proto: Protocol, source: SocketAddr, buf: &[u8]) {
        if let Some(reply) = binding::plain_binding_reply(buf, source) {
            if self.plain_stun.allow(self.now) {
                let sent = match proto {
                    Protocol::Tcp => self.tcp.send(source, &reply),
                    _ => self.socket.try_send_to(&reply, source).is_ok(),
                };
                if sent {
                    self.counters.datagrams_out += 1;
                } else {
                    self.counters.send_errors += 1;
                }
            }
            return;
        }
        let Some(key) = self.demux.route(source, buf) else {
            self.counters.drop(DropReason::UnknownSource);
            return;
        };
        let Ok(contents) = buf.try_into() else {
            self.counters.drop(DropReason::BadPacket);
            return;
        };
        let destination = self.destination(proto, source);
        let input = Input::Receive(self.now, Receive { proto, source, destination, contents });
        let accepted = self.with_peer(key, |rtc| rtc.handle_input(input));
        if let Some(Err(e)) = accepted {
            debug!("peer rejected datagram: {e}");
            self.counters.drop(DropReason::BadPacket);
        }
    }

    /// The address a packet from `source` was sent to, as str0m must see it (it only answers
    /// STUN sent to one of its local candidates; see [`nat`]).
    fn destination(&self, proto: Protocol, source: SocketAddr) -> SocketAddr {
        let bound = match (proto, self.tcp.addr()) {
            (Protocol::Tcp, Some(tcp)) => tcp,
            _ => self.local,
        };
        nat::candidate_addr(bound, &self.announce, source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::worker::rig::{client_offer, worker_with_room};
    use crate::MediaEvent;
    use std::time::Duration;
    use tokio::net::UdpSocket;

    #[tokio::test]
    async fn plain_binding_requests_are_answered_here_never_by_peers() {
        use stun_rs::attributes::stun::UserName;
        let (mut w, events) = worker_with_room().await;
        w.offer("r", "a", &client_offer()).unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let src = client.local_addr().unwrap();
        // The client's address already belongs to peer a (as after a's first ICE check).
        let ufrag = w.peers.values().next().unwrap().ufrag.clone();
        let check = stun_rs::StunMessageBuilder::new(stun_rs::methods::BINDING, stun_rs::MessageClass::Request)
            .with_attribute(UserName::new(format!("{ufrag}:remote")).unwrap())
            .build();
        let mut buf = vec![0u8; 128];
        let n = stun_rs::MessageEncoderBuilder::default().build().encode(&mut buf, &check).unwrap();
        w.datagram(src, &buf[..n], Instant::now());
        let bad_before = w.counters.dropped(DropReason::BadPacket);
        let (request, id) = binding::binding_request();
        // tokio's try_send_to needs the socket's writability seen once (the run loop does that).
        w.socket.writable().await.unwrap();
        w.datagram(src, &request, Instant::now());
        let mut reply = [0u8; 128];
        let (n, from) =
            tokio::time::timeout(Duration::from_secs(5), client.recv_from(&mut reply)).await.unwrap().unwrap();
        assert_eq!(from, w.local);
        assert_eq!(binding::mapped_address(&reply[..n], &id), Some(src));
        // The peer never saw it: nothing rejected, nothing failed, the peer is still there.
        assert_eq!(w.counters.dropped(DropReason::BadPacket), bad_before);
        assert_eq!(w.peers.len(), 1);
        assert!(events.lock().unwrap().iter().all(|e| !matches!(e, MediaEvent::Failed { .. })));
    }

    #[tokio::test]
    async fn garbage_datagrams_are_counted_not_fatal() {
        let (mut w, _) = worker_with_room().await;
        w.offer("r", "a", &client_offer()).unwrap();
        let src: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for i in 0..2000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 1200) as usize;
            let mut buf: Vec<u8> = (0..len).map(|j| (seed >> (j % 56)) as u8 ^ j as u8).collect();
            if i % 3 == 0 && buf.len() >= 20 {
                // Make some look like STUN so the ufrag parser sees them too.
                buf[0] = 0;
                buf[4..8].copy_from_slice(&[0x21, 0x12, 0xa4, 0x42]);
            }
            w.datagram(src, &buf, Instant::now());
        }
        assert_eq!(w.counters.datagrams_in, 2000);
        assert_eq!(w.counters.dropped(DropReason::UnknownSource), 2000);
        assert_eq!(w.peers.len(), 1);
    }
}
