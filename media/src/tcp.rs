//! ICE-TCP (RFC 6544) for clients whose network blocks UDP: each worker also listens on a TCP
//! port, announced as a passive host candidate. Every packet on such a connection is framed
//! with a 2-byte big-endian length (RFC 4571). Connections are read by small tasks on the
//! worker's own thread and handed to the worker as whole packets, so a packet over TCP takes
//! the same path as a datagram; the worker writes answers back through [`TcpSide::send`].

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Semaphore};
use tracing::debug;

/// Largest framed packet accepted. WebRTC packets stay under the path MTU; a longer frame is
/// not ICE-TCP, and the connection is closed.
pub(crate) const MAX_FRAME: usize = 4096;
/// A connection that sends nothing for this long is closed (ICE consent checks arrive every
/// few seconds on a live one).
const IDLE: Duration = Duration::from_secs(30);
/// Most TCP connections one worker keeps open.
const MAX_CONNECTIONS: usize = 2000;
/// Most of them from one client address (an IPv6 /64 counts as one): a browser needs one or
/// two, and one host must not take every place.
const MAX_PER_ADDRESS: usize = 64;
/// Frames queued towards one client before further ones are dropped (like a full UDP buffer).
const SEND_QUEUE: usize = 512;
/// Packets queued from all connections towards the worker; readers wait when it is full.
const EVENT_QUEUE: usize = 1024;

/// `payload` with its RFC 4571 length prefix, or `None` when it cannot be framed (too long).
pub(crate) fn frame(payload: &[u8]) -> Option<Vec<u8>> {
    let len = u16::try_from(payload.len()).ok()?;
    let mut out = Vec::with_capacity(payload.len() + 2);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(payload);
    Some(out)
}

/// Write `payload` as one framed packet.
pub async fn write_frame<W: AsyncWrite + Unpin>(writer: &mut W, payload: &[u8]) -> std::io::Result<()> {
    let framed = frame(payload)
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "packet too long for a frame"))?;
    writer.write_all(&framed).await
}

/// Read one framed packet into `buf`. `Ok(None)` at a clean end of stream (between frames);
/// an error for a stream cut inside a frame or a frame longer than 4096 bytes (not ICE-TCP).
pub async fn read_frame<R: AsyncRead + Unpin>(reader: &mut R, buf: &mut Vec<u8>) -> std::io::Result<Option<()>> {
    let mut len = [0u8; 2];
    match reader.read_exact(&mut len[..1]).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    reader.read_exact(&mut len[1..]).await?;
    let len = usize::from(u16::from_be_bytes(len));
    if len > MAX_FRAME {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, format!("frame of {len} bytes")));
    }
    buf.resize(len, 0);
    reader.read_exact(buf).await?;
    Ok(Some(()))
}

/// What the connection tasks tell their worker.
#[derive(Debug)]
pub(crate) enum TcpEvent {
    /// A client connected; frames for it go into `sender`.
    Opened { id: u64, remote: SocketAddr, sender: mpsc::Sender<Vec<u8>> },
    /// One packet (without its length prefix).
    Packet { remote: SocketAddr, data: Vec<u8> },
    /// The connection ended.
    Closed { id: u64, remote: SocketAddr },
}

/// A worker's TCP side: its listener's address and the open connections.
pub(crate) struct TcpSide {
    addr: Option<SocketAddr>,
    events_tx: mpsc::Sender<TcpEvent>,
    events_rx: Option<mpsc::Receiver<TcpEvent>>,
    conns: HashMap<SocketAddr, (u64, mpsc::Sender<Vec<u8>>)>,
}

impl TcpSide {
    pub(crate) fn new() -> Self {
        let (events_tx, events_rx) = mpsc::channel(EVENT_QUEUE);
        TcpSide { addr: None, events_tx, events_rx: Some(events_rx), conns: HashMap::new() }
    }

    /// Where the listener is bound, once listening.
    pub(crate) fn addr(&self) -> Option<SocketAddr> {
        self.addr
    }

    /// The receiving end of the connections' events (taken once, by the worker loop).
    pub(crate) fn take_events(&mut self) -> Option<mpsc::Receiver<TcpEvent>> {
        self.events_rx.take()
    }

    /// Start accepting on `listener`. Must run inside the worker's runtime.
    pub(crate) fn listen(&mut self, listener: std::net::TcpListener) -> std::io::Result<SocketAddr> {
        listener.set_nonblocking(true)?;
        let listener = TcpListener::from_std(listener)?;
        let addr = listener.local_addr()?;
        self.addr = Some(addr);
        tokio::spawn(accept_loop(listener, self.events_tx.clone(), MAX_PER_ADDRESS));
        Ok(addr)
    }

    /// Track what a connection task reported; returns the packet of a `Packet` event.
    pub(crate) fn event(&mut self, event: TcpEvent) -> Option<(SocketAddr, Vec<u8>)> {
        match event {
            TcpEvent::Opened { id, remote, sender } => {
                self.conns.insert(remote, (id, sender));
                None
            }
            TcpEvent::Closed { id, remote } => {
                // A late goodbye must not remove a newer connection from the same address.
                if self.conns.get(&remote).is_some_and(|(current, _)| *current == id) {
                    self.conns.remove(&remote);
                }
                None
            }
            TcpEvent::Packet { remote, data } => Some((remote, data)),
        }
    }

    /// Whether a connection from `remote` is open.
    pub(crate) fn is_open(&self, remote: SocketAddr) -> bool {
        self.conns.contains_key(&remote)
    }

    /// Queue one packet to the client at `remote`; false if there is no such connection or
    /// its queue is full.
    pub(crate) fn send(&self, remote: SocketAddr, payload: &[u8]) -> bool {
        let Some((_, sender)) = self.conns.get(&remote) else { return false };
        match frame(payload) {
            Some(framed) => sender.try_send(framed).is_ok(),
            None => false,
        }
    }

    /// Number of open connections.
    #[cfg(test)]
    pub(crate) fn connections(&self) -> usize {
        self.conns.len()
    }
}

/// Open connections per client address, for [`MAX_PER_ADDRESS`].
#[derive(Default)]
struct PerAddress(Mutex<HashMap<IpAddr, usize>>);

/// One connection's place in [`PerAddress`], given back when dropped.
struct AddressPlace(Arc<PerAddress>, IpAddr);

impl PerAddress {
    /// The counting key: the address, or its /64 for IPv6 (one host holds a whole /64).
    fn key(ip: IpAddr) -> IpAddr {
        match ip.to_canonical() {
            IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
            v4 => v4,
        }
    }

    fn take(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<AddressPlace> {
        let key = Self::key(ip);
        let mut counts = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let n = counts.entry(key).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(AddressPlace(self.clone(), key))
    }
}

impl Drop for AddressPlace {
    fn drop(&mut self) {
        let mut counts = self.0 .0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = counts.get_mut(&self.1) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.1);
            }
        }
    }
}

async fn accept_loop(listener: TcpListener, events: mpsc::Sender<TcpEvent>, per_address_max: usize) {
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let per_address = Arc::new(PerAddress::default());
    let mut next_id = 0u64;
    loop {
        let (stream, remote) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors and the like: wait a moment instead of spinning.
                debug!("tcp accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            debug!(%remote, "too many ICE-TCP connections; refusing");
            continue;
        };
        let Some(place) = per_address.take(remote.ip(), per_address_max) else {
            debug!(%remote, "too many ICE-TCP connections from this address; refusing");
            continue;
        };
        if events.is_closed() {
            return; // the worker is gone
        }
        next_id += 1;
        let id = next_id;
        let events = events.clone();
        tokio::spawn(async move {
            let _places = (permit, place);
            let _ = stream.set_nodelay(true);
            // Browsers see IPv4 clients of a dual-stack socket as IPv4: so must ICE.
            let remote = SocketAddr::new(remote.ip().to_canonical(), remote.port());
            let (mut reader, mut writer) = stream.into_split();
            let (sender, mut outgoing) = mpsc::channel::<Vec<u8>>(SEND_QUEUE);
            if events.send(TcpEvent::Opened { id, remote, sender }).await.is_err() {
                return;
            }
            let write = async move {
                while let Some(framed) = outgoing.recv().await {
                    if writer.write_all(&framed).await.is_err() {
                        break;
                    }
                }
            };
            let read = async {
                let mut buf = Vec::with_capacity(1500);
                loop {
                    match tokio::time::timeout(IDLE, read_frame(&mut reader, &mut buf)).await {
                        Ok(Ok(Some(()))) => {
                            let data = std::mem::take(&mut buf);
                            if events.send(TcpEvent::Packet { remote, data }).await.is_err() {
                                break;
                            }
                        }
                        Ok(Ok(None)) => break,
                        Ok(Err(e)) => {
                            debug!(%remote, "ICE-TCP connection closed: {e}");
                            break;
                        }
                        Err(_) => {
                            debug!(%remote, "idle ICE-TCP connection closed");
                            break;
                        }
                    }
                }
            };
            // Either half ending ends the connection.
            tokio::select! {
                _ = read => {}
                _ = write => {}
            }
            let _ = events.send(TcpEvent::Closed { id, remote }).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip() {
        let mut stream = Vec::new();
        for payload in [&b"one"[..], b"", &[7u8; 1500][..]] {
            stream.extend(frame(payload).unwrap());
        }
        assert_eq!(&stream[..5], b"\x00\x03one");
        let mut reader = &stream[..];
        let mut buf = Vec::new();
        assert!(read_frame(&mut reader, &mut buf).await.unwrap().is_some());
        assert_eq!(buf, b"one");
        assert!(read_frame(&mut reader, &mut buf).await.unwrap().is_some());
        assert!(buf.is_empty());
        assert!(read_frame(&mut reader, &mut buf).await.unwrap().is_some());
        assert_eq!(buf, vec![7u8; 1500]);
        assert!(read_frame(&mut reader, &mut buf).await.unwrap().is_none(), "clean end");
        assert!(frame(&vec![0u8; 70_000]).is_none(), "longer than a 16-bit length");
    }

    #[tokio::test]
    async fn broken_streams_are_errors() {
        let mut buf = Vec::new();
        // Cut inside the length, inside the payload, and a frame longer than the limit.
        for bad in [&b"\x00"[..], b"\x00\x05abc", b"\xff\xffxxxx"] {
            let mut reader = bad;
            assert!(read_frame(&mut reader, &mut buf).await.is_err(), "{bad:?}");
        }
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..2000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let junk: Vec<u8> = (0..(seed % 64) as usize).map(|j| (seed >> (j % 50)) as u8).collect();
            let mut reader = &junk[..];
            // Whatever the bytes, reading ends (a frame, an end or an error) without panicking.
            while let Ok(Some(())) = read_frame(&mut reader, &mut buf).await {
                assert!(buf.len() <= MAX_FRAME);
            }
        }
    }

    #[tokio::test]
    async fn one_address_gets_a_bounded_number_of_connections() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, mut events) = mpsc::channel(64);
        tokio::spawn(accept_loop(listener, tx, 3));
        let mut clients = Vec::new();
        for _ in 0..4 {
            clients.push(tokio::net::TcpStream::connect(addr).await.unwrap());
        }
        // The fourth is closed at once; the first three stay open.
        let mut buf = Vec::new();
        let refused = tokio::time::timeout(Duration::from_secs(10), read_frame(&mut clients[3], &mut buf)).await;
        assert!(matches!(refused, Ok(Ok(None)) | Ok(Err(_))), "the fourth connection is closed: {refused:?}");
        // Keep each connection's sender, as the worker does: dropping it ends the connection.
        let mut senders = Vec::new();
        while senders.len() < 3 {
            match tokio::time::timeout(Duration::from_secs(10), events.recv()).await.unwrap().unwrap() {
                TcpEvent::Opened { sender, .. } => senders.push(sender),
                other => panic!("{other:?}"),
            }
        }
        // One closes: its place is given back, and a new connection is taken.
        drop(clients.remove(0));
        let closed = tokio::time::timeout(Duration::from_secs(10), events.recv()).await.unwrap().unwrap();
        assert!(matches!(closed, TcpEvent::Closed { .. }), "{closed:?}");
        let _again = tokio::net::TcpStream::connect(addr).await.unwrap();
        let opened = tokio::time::timeout(Duration::from_secs(10), events.recv()).await.unwrap().unwrap();
        assert!(matches!(opened, TcpEvent::Opened { .. }), "{opened:?}");
    }

    #[test]
    fn ipv6_clients_count_by_their_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(PerAddress::key(a), PerAddress::key(b));
        assert_ne!(PerAddress::key(a), PerAddress::key(c));
        let mapped: IpAddr = "::ffff:198.51.100.7".parse().unwrap();
        assert_eq!(PerAddress::key(mapped), "198.51.100.7".parse::<IpAddr>().unwrap());
    }

    #[tokio::test]
    async fn connections_are_tracked_and_echo_through_send() {
        let mut side = TcpSide::new();
        let mut events = side.take_events().unwrap();
        let addr = side.listen(std::net::TcpListener::bind("127.0.0.1:0").unwrap()).unwrap();
        let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let me = client.local_addr().unwrap();
        write_frame(&mut client, b"hello").await.unwrap();
        let mut got = None;
        while got.is_none() {
            got = side.event(events.recv().await.unwrap());
        }
        assert_eq!(got, Some((me, b"hello".to_vec())));
        assert_eq!(side.connections(), 1);
        assert!(side.send(me, b"back"));
        assert!(!side.send("127.0.0.1:1".parse().unwrap(), b"nobody"));
        let mut buf = Vec::new();
        read_frame(&mut client, &mut buf).await.unwrap().unwrap();
        assert_eq!(buf, b"back");
        // A frame over the limit closes the connection.
        client.write_all(&[0xff, 0xff, 1, 2, 3]).await.unwrap();
        loop {
            side.event(events.recv().await.unwrap());
            if side.connections() == 0 {
                break;
            }
        }
        assert!(read_frame(&mut client, &mut buf).await.unwrap().is_none(), "server closed it");
    }
}
