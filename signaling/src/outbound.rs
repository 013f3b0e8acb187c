//! What a connection's transport must do: the one type the room, the connection and the
//! transport all speak.

/// What the transport should do for this connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outbound {
    /// Send this text frame.
    Text(String),
    /// Close the socket with this code and reason.
    Close {
        /// WebSocket close code.
        code: u16,
        /// Close reason.
        reason: String,
    },
}
