//! The one error type of `parlor-media`.

/// Everything that can go wrong in the media layer, in its own vocabulary.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// The UDP socket for a worker could not be bound.
    #[error("cannot bind media UDP socket {addr}: {source}")]
    Bind {
        /// The address we tried.
        addr: std::net::SocketAddr,
        /// Why the OS refused.
        source: std::io::Error,
    },
    /// A worker thread could not be started.
    #[error("cannot start media worker: {0}")]
    Spawn(std::io::Error),
    /// The SDP could not be parsed or applied.
    #[error("invalid SDP: {0}")]
    BadSdp(String),
    /// A client offer arrived while a server offer is outstanding (the server is the impolite peer).
    #[error("an offer from the server is outstanding; answer it first")]
    Glare,
    /// An answer arrived while no server offer was outstanding.
    #[error("no offer from the server is outstanding")]
    NoPendingOffer,
    /// The peer is not known to this room's worker.
    #[error("unknown peer")]
    UnknownPeer,
    /// The peer's str0m instance hit an internal fault and was dropped.
    #[error("peer failed: {0}")]
    PeerFailed(String),
    /// The worker has stopped (shutdown or crash).
    #[error("media worker is gone")]
    WorkerGone,
    /// The worker is at its configured peer capacity.
    #[error("media worker is full")]
    Full,
}
