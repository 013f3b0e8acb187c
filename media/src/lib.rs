//! parlor's media layer: a selective forwarding unit on [str0m] in RTP mode.
//!
//! It knows peers, tracks and each room's routes (per publisher, who receives its audio and
//! who its video: a [`Reach`]) — nothing about games. Each [`Media`] runs one or more
//! workers; a worker is one thread with one UDP socket that owns every peer of the rooms
//! assigned to it, so forwarding never crosses threads. The caller
//! opens a room ([`Media::open_room`]) with an [`EventSink`] and then drives it through the
//! returned [`RoomMedia`]: offers, answers, candidates, routes.
//!
//! What it guarantees: a packet is written to a subscriber only while the routes allow that
//! (subscriber, publisher, kind); payload types are mapped by codec to what each subscriber
//! negotiated; sequence numbers stay contiguous across pauses; video resumes on a keyframe.
//! A route change costs the publishers it names, never all pairs of the room.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod allocate;
mod batch;
#[cfg(feature = "bench")]
pub mod bench;
pub mod binding;
mod demux;
mod error;
mod estimate;
mod layers;
mod nat;
mod peer;
mod rewrite;
mod routes;
mod speaker;
mod stats;
pub mod tcp;
mod vp8;
mod worker;

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

pub use demux::{local_ufrag, looks_like_stun};
pub use error::MediaError;
pub use layers::LayerState;
pub use routes::{Kind, Reach};
pub use stats::{BweDecision, Counters, DropReason};

use worker::{Command, Worker};

/// What a room hears from its worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaEvent {
    /// The server wants to renegotiate with `peer` (the tracks it receives changed):
    /// send it this offer and pass its answer to [`RoomMedia::answer`].
    Offer {
        /// The peer to send the offer to.
        peer: String,
        /// The offer SDP.
        sdp: String,
    },
    /// ICE and DTLS are up for `peer`.
    Connected {
        /// The peer.
        peer: String,
    },
    /// ICE lost `peer` (consent or connectivity failure); it may come back.
    Disconnected {
        /// The peer.
        peer: String,
    },
    /// Who speaks now changed: these publishers, loudest first (at most four), from the audio
    /// level their packets carry. Sent at most four times a second, whoever may hear them:
    /// the room decides whom to tell.
    Speaking {
        /// The publishers speaking now (none: silence).
        peers: Vec<String>,
    },
    /// The worker dropped `peer` (its connection closed, or its str0m instance failed).
    Failed {
        /// The peer.
        peer: String,
        /// Why.
        reason: String,
    },
}

/// Where a room's [`MediaEvent`]s go. Called on the worker thread: keep it cheap (a channel send).
pub type EventSink = Arc<dyn Fn(MediaEvent) + Send + Sync>;

/// How to run the media layer.
#[derive(Debug, Clone)]
pub struct MediaConfig {
    /// The IP the UDP sockets bind to.
    pub bind_ip: IpAddr,
    /// The first worker's UDP port; further workers use the following ports. 0 picks free
    /// ports (tests).
    pub udp_port: u16,
    /// Number of workers (threads, sockets).
    pub workers: usize,
    /// Addresses announced to clients as host candidates.
    pub announce_ips: Vec<IpAddr>,
    /// Most peers one worker holds.
    pub max_peers_per_worker: usize,
}

#[derive(Clone)]
struct WorkerHandle {
    commands: mpsc::UnboundedSender<Command>,
    rooms: Arc<AtomicUsize>,
    addr: SocketAddr,
}

/// The running media layer: a set of workers.
pub struct Media {
    workers: Vec<WorkerHandle>,
}

/// Socket buffers asked of the kernel. The default receive buffer (about 208 KB) overflows
/// when a dozen browsers send a keyframe at once after a phase switch, and every lost
/// packet then costs a NACK round trip or a new keyframe.
const SOCKET_BUFFER: usize = 4 << 20;

/// A non-blocking UDP socket on `addr` with large buffers.
fn bind_udp(addr: SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(false).ok();
    }
    // Best effort: the kernel caps both at net.core.{r,w}mem_max.
    let _ = socket.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = socket.set_send_buffer_size(SOCKET_BUFFER);
    socket.bind(&addr.into())?;
    socket.set_nonblocking(true)?;
    let got = socket.recv_buffer_size().unwrap_or(0);
    // Linux reports twice what it grants.
    if got < SOCKET_BUFFER {
        tracing::warn!(
            %addr,
            granted = got,
            wanted = SOCKET_BUFFER,
            "small UDP receive buffer; raise net.core.rmem_max to avoid packet loss under load"
        );
    }
    Ok(socket.into())
}

/// A TCP listener on `addr`, dual-stack when `addr` is an IPv6 wildcard (like [`bind_udp`]).
fn bind_tcp(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(false).ok();
    }
    // A restarted server must not wait out the old connections' TIME_WAIT.
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

impl Media {
    /// Bind every worker's socket and start the workers.
    pub fn start(config: &MediaConfig) -> Result<Media, MediaError> {
        let mut workers = Vec::new();
        for i in 0..config.workers.max(1) {
            let port = if config.udp_port == 0 { 0 } else { config.udp_port.saturating_add(i as u16) };
            let addr = SocketAddr::new(config.bind_ip, port);
            let socket = bind_udp(addr).map_err(|source| MediaError::Bind { addr, source })?;
            let local = socket.local_addr().map_err(|source| MediaError::Bind { addr, source })?;
            let (tx, rx) = mpsc::unbounded_channel();
            let announce = config.announce_ips.clone();
            let max_peers = config.max_peers_per_worker;
            std::thread::Builder::new()
                .name(format!("media-{i}"))
                .spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
                    let runtime = match runtime {
                        Ok(r) => r,
                        Err(e) => return tracing::error!("media worker runtime: {e}"),
                    };
                    runtime.block_on(async move {
                        let socket = match tokio::net::UdpSocket::from_std(socket) {
                            Ok(s) => s,
                            Err(e) => return tracing::error!("media worker socket: {e}"),
                        };
                        match Worker::new(socket, announce, max_peers) {
                            Ok(worker) => worker.run(rx).await,
                            Err(e) => tracing::error!("media worker: {e}"),
                        }
                    });
                })
                .map_err(MediaError::Spawn)?;
            tracing::info!(%local, "media worker listening");
            workers.push(WorkerHandle { commands: tx, rooms: Arc::new(AtomicUsize::new(0)), addr: local });
        }
        Ok(Media { workers })
    }

    /// Accept ICE-TCP (RFC 6544) too: worker N listens on `addr`'s port + N (each on a free
    /// port when it is 0) and announces it as a passive TCP candidate to the peers it creates
    /// from now on. Returns the listeners' addresses in worker order.
    pub async fn listen_tcp(&self, addr: SocketAddr) -> Result<Vec<SocketAddr>, MediaError> {
        let mut bound = Vec::with_capacity(self.workers.len());
        for (i, w) in self.workers.iter().enumerate() {
            let port = if addr.port() == 0 { 0 } else { addr.port().saturating_add(i as u16) };
            let at = SocketAddr::new(addr.ip(), port);
            let listener = bind_tcp(at).map_err(|source| MediaError::Bind { addr: at, source })?;
            let (reply, rx) = oneshot::channel();
            w.commands.send(Command::ListenTcp { listener, reply }).map_err(|_| MediaError::WorkerGone)?;
            let local = rx
                .await
                .map_err(|_| MediaError::WorkerGone)?
                .map_err(|source| MediaError::Bind { addr: at, source })?;
            tracing::info!(%local, "media worker listening for ICE-TCP");
            bound.push(local);
        }
        Ok(bound)
    }

    /// The UDP addresses the workers listen on, in worker order.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.workers.iter().map(|w| w.addr).collect()
    }

    /// Open a room on the least loaded worker. Its events go to `sink`.
    pub fn open_room(&self, room: &str, sink: EventSink) -> RoomMedia {
        let worker =
            self.workers.iter().min_by_key(|w| w.rooms.load(Ordering::Relaxed)).expect("at least one worker").clone();
        worker.rooms.fetch_add(1, Ordering::Relaxed);
        let _ = worker.commands.send(Command::OpenRoom { room: room.to_owned(), sink });
        RoomMedia { room: room.to_owned(), worker }
    }

    /// Counters summed over all workers.
    pub async fn counters(&self) -> Counters {
        let mut total = Counters::default();
        for c in self.worker_counters().await {
            total.add(&c);
        }
        total
    }

    /// Each worker's counters, in worker order (a stopped worker reports zeros).
    pub async fn worker_counters(&self) -> Vec<Counters> {
        let mut all = Vec::with_capacity(self.workers.len());
        for w in &self.workers {
            let (reply, rx) = oneshot::channel();
            let counters = match w.commands.send(Command::Stats { reply }) {
                Ok(()) => rx.await.unwrap_or_default(),
                Err(_) => Counters::default(),
            };
            all.push(counters);
        }
        all
    }
}

/// One room's handle on its worker. Dropping it closes the room and all its peers.
pub struct RoomMedia {
    room: String,
    worker: WorkerHandle,
}

impl RoomMedia {
    /// A client's offer: creates the peer on its first offer; returns the answer SDP.
    /// [`MediaError::Glare`] when a server offer to this peer is outstanding.
    pub async fn offer(&self, peer: &str, sdp: String) -> Result<String, MediaError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Offer { room: self.room.clone(), peer: peer.to_owned(), sdp, reply })?;
        rx.await.map_err(|_| MediaError::WorkerGone)?
    }

    /// A client's answer to the server's latest offer.
    pub async fn answer(&self, peer: &str, sdp: String) -> Result<(), MediaError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Answer { room: self.room.clone(), peer: peer.to_owned(), sdp, reply })?;
        rx.await.map_err(|_| MediaError::WorkerGone)?
    }

    /// A trickled remote candidate (`""` ends the candidates and is ignored).
    pub fn candidate(&self, peer: &str, candidate: String) {
        let _ = self.send(Command::Candidate { room: self.room.clone(), peer: peer.to_owned(), candidate });
    }

    /// Drop a peer and stop forwarding its tracks (others get an offer without them).
    pub fn remove_peer(&self, peer: &str) {
        let _ = self.send(Command::RemovePeer { room: self.room.clone(), peer: peer.to_owned() });
    }

    /// Send `peer` no offers until it offers again: its client was replaced (a resume), and
    /// the next offer tells whether it kept this peer connection.
    pub fn hold_offers(&self, peer: &str) {
        let _ = self.send(Command::HoldOffers { room: self.room.clone(), peer: peer.to_owned() });
    }

    /// Change the room's routes: each reach replaces its (publisher, kind)'s receivers; a
    /// (publisher, kind) not listed keeps its own, and one never listed reaches nobody. Returns
    /// once the worker has applied it, with the epoch now in force: an update older than the
    /// one in force is ignored.
    pub async fn update_routes(&self, epoch: u64, reaches: Vec<Reach>) -> Result<u64, MediaError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::UpdateRoutes { room: self.room.clone(), epoch, reaches, reply })?;
        rx.await.map_err(|_| MediaError::WorkerGone)
    }

    /// Cap the simulcast layer `subscriber` gets of `publisher`'s video: from now on its target
    /// is the highest flowing layer at or below `max_layer` (0 is the lowest; `None`: no cap,
    /// the highest flowing). The switch happens on the next keyframe of the target, which the
    /// worker asks for. Returns whether `publisher` sends `subscriber` a simulcast track.
    pub async fn prefer_layer(
        &self,
        subscriber: &str,
        publisher: &str,
        max_layer: Option<u8>,
    ) -> Result<bool, MediaError> {
        let (reply, rx) = oneshot::channel();
        let pair = (subscriber.to_owned(), publisher.to_owned());
        self.send(Command::PreferLayer { room: self.room.clone(), pair, max_layer, reply })?;
        rx.await.map_err(|_| MediaError::WorkerGone)
    }

    /// Make `peer`'s simulcast video fit in `bps` bits per second (`None`: no limit): every
    /// simulcast track it may receive gets its lowest flowing layer, and the tracks then move
    /// up evenly, one layer at a time, while the layers' measured bitrates fit (refitted as
    /// they change). Bandwidth estimation sets a budget of its own per subscriber (see
    /// [`RoomMedia::estimate`]); this one is an upper bound on it. False for an unknown peer.
    pub async fn set_budget(&self, peer: &str, bps: Option<u64>) -> Result<bool, MediaError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::SetBudget { room: self.room.clone(), peer: peer.to_owned(), bps, reply })?;
        rx.await.map_err(|_| MediaError::WorkerGone)
    }

    /// `peer`'s bandwidth estimate in bits per second, from its receiver reports (see
    /// `estimate.rs`), once one came; `None` before that or for an unknown peer.
    pub async fn estimate(&self, peer: &str) -> Result<Option<u64>, MediaError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Estimate { room: self.room.clone(), peer: peer.to_owned(), reply })?;
        rx.await.map_err(|_| MediaError::WorkerGone)
    }

    /// How tall (device pixels) `peer` shows each publisher's video, by publisher id (e.g. from
    /// its page's layout; a publisher left out has no size): each simulcast track it receives
    /// gets at most the lowest layer whose keyframes are at least that tall, the tallest when
    /// none is. Returns how many of its simulcast tracks a size now limits.
    pub async fn set_tiles(
        &self,
        peer: &str,
        tiles: std::collections::HashMap<String, u16>,
    ) -> Result<usize, MediaError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::SetTiles { room: self.room.clone(), peer: peer.to_owned(), tiles, reply })?;
        rx.await.map_err(|_| MediaError::WorkerGone)
    }

    /// What `subscriber` gets of `publisher`'s simulcast video (`None`: no such track).
    pub async fn layers(&self, subscriber: &str, publisher: &str) -> Result<Option<LayerState>, MediaError> {
        let (reply, rx) = oneshot::channel();
        let pair = (subscriber.to_owned(), publisher.to_owned());
        self.send(Command::Layers { room: self.room.clone(), pair, reply })?;
        rx.await.map_err(|_| MediaError::WorkerGone)
    }

    fn send(&self, cmd: Command) -> Result<(), MediaError> {
        self.worker.commands.send(cmd).map_err(|_| MediaError::WorkerGone)
    }
}

impl Drop for RoomMedia {
    fn drop(&mut self) {
        self.worker.rooms.fetch_sub(1, Ordering::Relaxed);
        let _ = self.worker.commands.send(Command::CloseRoom { room: self.room.clone() });
    }
}
