//! Batched UDP sends: the datagrams one worker pass makes (forwarded RTP, RTCP, STUN, DTLS
//! from every peer's str0m instance) are queued here, each buffer moved out of its `Transmit`
//! (never copied), and flushed with `sendmmsg` — one system call for up to [`MAX_BATCH`]
//! datagrams to any mix of destinations, where fan-out made one `sendto` per subscriber.
//!
//! Order is kept: the queue is sent front to back, so no subscriber's packets are reordered.
//! A flush stops at `WouldBlock` (the socket buffer is full) and keeps the rest for the next
//! one, which the worker runs once the socket is writable again; what does not fit in
//! [`MAX_QUEUED`] meanwhile is dropped, as a full buffer loses it on a `sendto` too. A datagram
//! the kernel refuses for itself (an unreachable or invalid destination) is dropped and the
//! flush goes on with the next.

use std::io;
use std::io::IoSlice;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;

use nix::sys::socket::{sendmmsg, ControlMessage, MsgFlags, MultiHeaders, SockaddrStorage};
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// Datagrams handed to one `sendmmsg` at most (Linux takes up to 1024; past a few dozen the
/// saving per datagram is already made, and a smaller header array stays in cache).
pub const MAX_BATCH: usize = 64;
/// Datagrams kept while the socket is not writable; further ones are dropped.
pub const MAX_QUEUED: usize = 8192;

/// What one flush did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Flushed {
    /// Datagrams the kernel took.
    pub sent: usize,
    /// Datagrams the kernel refused one by one (dropped).
    pub refused: usize,
    /// System calls made.
    pub calls: usize,
    /// The socket would block: the rest waits for writability.
    pub blocked: bool,
}

/// The outgoing datagrams of one worker pass, in the order they were made.
#[derive(Debug, Default)]
pub struct SendBatch {
    queue: Vec<(SocketAddr, Vec<u8>)>,
    /// Where the unsent part of `queue` starts.
    head: usize,
}

impl SendBatch {
    /// Queue one datagram; false (and it is dropped) when [`MAX_QUEUED`] wait already.
    pub fn push(&mut self, to: SocketAddr, datagram: Vec<u8>) -> bool {
        if self.len() >= MAX_QUEUED {
            return false;
        }
        self.queue.push((to, datagram));
        true
    }

    /// Datagrams waiting.
    pub fn len(&self) -> usize {
        self.queue.len() - self.head
    }

    /// Nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Send what waits, front to back, [`MAX_BATCH`] at a time through `send`, which returns
    /// how many of the datagrams it is given the kernel took (from the first; fewer than given
    /// is a partial send), or the error of the first one.
    pub fn flush(&mut self, mut send: impl FnMut(&[(SocketAddr, Vec<u8>)]) -> io::Result<usize>) -> Flushed {
        let mut done = Flushed::default();
        while self.head < self.queue.len() {
            let end = self.queue.len().min(self.head + MAX_BATCH);
            done.calls += 1;
            match send(&self.queue[self.head..end]) {
                // Zero taken without an error: treat as a full buffer rather than spin.
                Ok(0) => {
                    done.blocked = true;
                    break;
                }
                Ok(n) => {
                    let n = n.min(end - self.head);
                    done.sent += n;
                    self.head += n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    done.blocked = true;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // sendmmsg fails only when its first datagram does: drop that one, go on.
                Err(_) => {
                    done.refused += 1;
                    self.head += 1;
                }
            }
        }
        if self.head == self.queue.len() {
            // Keep the allocation: the next pass fills it again.
            self.queue.clear();
            self.head = 0;
        } else if self.head >= MAX_BATCH * 4 {
            self.queue.drain(..self.head);
            self.head = 0;
        }
        done
    }
}

/// Send `datagrams` on `socket` with one `sendmmsg`, inside tokio's readiness tracking
/// (`try_io`: a `WouldBlock` clears the socket's writable flag, so the worker's next
/// `writable().await` waits for the kernel to make room). Returns how many the kernel took.
pub fn send_mmsg(socket: &UdpSocket, datagrams: &[(SocketAddr, Vec<u8>)]) -> io::Result<usize> {
    socket.try_io(Interest::WRITABLE, || {
        let iovs: Vec<[IoSlice<'_>; 1]> = datagrams.iter().map(|(_, d)| [IoSlice::new(d)]).collect();
        let addrs: Vec<Option<SockaddrStorage>> =
            datagrams.iter().map(|(to, _)| Some(SockaddrStorage::from(*to))).collect();
        let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(datagrams.len(), None);
        let no_cmsgs: [ControlMessage<'_>; 0] = [];
        let sent = sendmmsg(socket.as_raw_fd(), &mut headers, &iovs, &addrs, no_cmsgs, MsgFlags::empty())
            .map_err(io::Error::from)?;
        Ok(sent.count())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn to(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn batch(n: usize) -> SendBatch {
        let mut b = SendBatch::default();
        for i in 0..n {
            assert!(b.push(to(1000 + (i % 7) as u16), vec![i as u8; 3]));
        }
        b
    }

    /// A fake kernel: answers each call from its script (then takes all it is given), and
    /// records what it took.
    struct Kernel {
        taken: Vec<u8>,
        script: Vec<io::Result<usize>>,
    }

    impl Kernel {
        fn send(&mut self, d: &[(SocketAddr, Vec<u8>)]) -> io::Result<usize> {
            let step = if self.script.is_empty() { Ok(d.len()) } else { self.script.remove(0) };
            if let Ok(n) = step {
                self.taken.extend(d.iter().take(n).map(|(_, p)| p[0]));
            }
            step
        }
    }

    #[test]
    fn partial_sends_go_on_from_the_first_unsent_datagram_in_order() {
        let mut b = batch(150);
        let mut k = Kernel { taken: Vec::new(), script: vec![Ok(10), Ok(64), Ok(1)] };
        let done = b.flush(|d| k.send(d));
        assert_eq!(done.sent, 150);
        assert_eq!(done.calls, 5, "10, 64, 1, then 64 and 11 whole");
        assert!(!done.blocked);
        assert_eq!(k.taken, (0..150).map(|i| i as u8).collect::<Vec<_>>(), "each once, in order");
        assert!(b.is_empty());
    }

    #[test]
    fn a_full_socket_keeps_the_rest_for_the_next_flush() {
        let mut b = batch(100);
        let wouldblock = || Err(io::Error::from(io::ErrorKind::WouldBlock));
        let mut k = Kernel { taken: Vec::new(), script: vec![Ok(30), wouldblock()] };
        let done = b.flush(|d| k.send(d));
        assert_eq!((done.sent, done.blocked), (30, true));
        assert_eq!(b.len(), 70);
        // More datagrams queue behind the waiting ones; the next flush sends all, in order.
        assert!(b.push(to(9), vec![200]));
        let done = b.flush(|d| k.send(d));
        assert_eq!((done.sent, done.blocked), (71, false));
        let mut want: Vec<u8> = (0..100).map(|i| i as u8).collect();
        want.push(200);
        assert_eq!(k.taken, want);
    }

    #[test]
    fn a_refused_datagram_is_dropped_and_the_others_still_go() {
        let mut b = batch(5);
        let refused = || Err(io::Error::from(io::ErrorKind::PermissionDenied));
        let interrupted = || Err(io::Error::from(io::ErrorKind::Interrupted));
        let mut k = Kernel { taken: Vec::new(), script: vec![Ok(2), refused(), interrupted()] };
        let done = b.flush(|d| k.send(d));
        assert_eq!((done.sent, done.refused, done.blocked), (4, 1, false));
        assert_eq!(k.taken, vec![0, 1, 3, 4], "datagram 2 refused, 3 and 4 after the retry");
    }

    #[test]
    fn the_queue_is_bounded_while_blocked() {
        let mut b = batch(MAX_QUEUED);
        assert!(!b.push(to(1), vec![1]), "over the bound: dropped");
        let done = b.flush(|_| Err(io::Error::from(io::ErrorKind::WouldBlock)));
        assert_eq!((done.sent, done.blocked, b.len()), (0, true, MAX_QUEUED));
        let done = b.flush(|d| Ok(d.len()));
        assert_eq!(done.sent, MAX_QUEUED);
        assert!(b.push(to(1), vec![1]), "room again");
    }

    #[tokio::test]
    async fn sendmmsg_reaches_every_destination() {
        let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let a = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let c = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut b = SendBatch::default();
        for i in 0..10u8 {
            let dest = if i % 2 == 0 { a.local_addr().unwrap() } else { c.local_addr().unwrap() };
            b.push(dest, vec![i; 100 + usize::from(i)]);
        }
        server.writable().await.unwrap();
        let done = b.flush(|d| send_mmsg(&server, d));
        assert_eq!((done.sent, done.calls, done.refused), (10, 1, 0));
        for (sock, first) in [(&a, 0u8), (&c, 1u8)] {
            sock.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
            let mut buf = [0u8; 512];
            for i in (first..10).step_by(2) {
                let (n, from) = sock.recv_from(&mut buf).unwrap();
                assert_eq!(from, server.local_addr().unwrap());
                assert_eq!((n, buf[0]), (100 + usize::from(i), i), "in the order queued");
            }
        }
    }
}
