//! Where a room lives when there is more than one node: a small trait the binary implements
//! (on Redis, `src/cluster.rs`), so this crate knows nothing of the cluster's machinery.
//!
//! The hub asks only about codes it holds no room for: a room that is open here is here. A
//! standalone server answers "here" to everything ([`Standalone`]), so nothing changes without
//! a cluster. docs/PROTOCOL.md ("Redirects") describes what a client sees.

use crate::media::BoxFuture;
use crate::protocol::Refusal;

/// Where the room with a given code lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// On this node: open it here (or, when it may not be created, refuse as a standalone
    /// server would).
    Here,
    /// On another node, reached at `url` (its public base URL, e.g. `https://node2.example`):
    /// the client is sent there.
    There {
        /// The owner's public base URL.
        url: String,
    },
}

/// The cluster's map of rooms to nodes, as the hub sees it.
pub trait Directory: Send + Sync {
    /// Where the room `code`, which this node does not hold, lives. With `may_create` (an
    /// open-mode join) a code no node owns is placed now — here or on another node — and
    /// claimed for it; without, an unowned code is [`Placement::Here`], so the caller refuses
    /// it as unknown. A refusal means the directory cannot answer (its store is unreachable).
    fn place(&self, code: &str, may_create: bool) -> BoxFuture<'_, Result<Placement, Refusal>>;

    /// The room `code` on this node has closed: give up its claim.
    fn released(&self, code: &str);

    /// What the directory counts, for the server's metrics. None by default.
    fn figures(&self) -> Vec<Figure> {
        Vec::new()
    }
}

/// One number a [`Directory`] reports for the server's metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Figure {
    /// The series name (`parlor_…`).
    pub name: &'static str,
    /// What it counts.
    pub help: &'static str,
    /// Its value now.
    pub value: u64,
    /// A counter (only grows) rather than a gauge.
    pub counter: bool,
}

/// One node, no cluster: every room is here.
pub struct Standalone;

impl Directory for Standalone {
    fn place(&self, _code: &str, _may_create: bool) -> BoxFuture<'_, Result<Placement, Refusal>> {
        Box::pin(async { Ok(Placement::Here) })
    }

    fn released(&self, _code: &str) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn standalone_is_always_here() {
        for may_create in [false, true] {
            assert_eq!(Standalone.place("abc", may_create).await, Ok(Placement::Here));
        }
    }
}
