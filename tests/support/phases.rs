//! Phase timing for the game tests: when the server switched phases, and which packets it
//! forwarded while the routes denied them.

use serde_json::Value;

use super::{Kind, RecvPacket, TestClient};

/// How long after a phase message a packet sent before it may still be in flight, and how
/// much earlier than the phase message the server may already apply the next phase's routes.
pub const SLACK_US: u64 = 50_000;
/// The server's `ends_at` is whole unix milliseconds (rounded down); the test's clock has µs.
pub const ROUNDING_US: u64 = 2_000;

/// When the room switched to `phase` (round `round`), on the test's clock (unix µs, the clock
/// of payload marks and arrivals), from `c`'s copy of the `phase` message, whose `ends_at` is
/// the room's clock reading at the switch plus the phase's length `len_s`. The room reads its
/// clock before it applies the new routes, so routes that open at this switch opened no
/// earlier than this. Unlike a client's arrival of the message, a stalled reader cannot move it.
pub fn switched_at(c: &TestClient, phase: &str, round: u64, len_s: f64) -> u64 {
    let (arrival, msg) = phase_message(c, phase, round);
    let ends_at = msg["ends_at"].as_u64().unwrap_or_else(|| panic!("{phase} has an end: {msg}"));
    let len_ms = (len_s * 1000.0).round() as u64;
    let at = (ends_at - len_ms) * 1000 - ROUNDING_US;
    // The phase message is sent after the switch: a check that both clocks agree.
    assert!(at <= arrival, "{}: {phase} arrived before the switch", c.id());
    at
}

/// Packets `rx` got from `tx` of `kind` that the server forwarded while routes denied them:
/// sent at or after `from` (when `rx` got the `phase` message that closed them) and forwarded
/// before they opened again at the switch `open_us` ([`switched_at`]). That is every such packet
/// that arrived before the switch, and every one sent more than [`SLACK_US`] before it (one sent
/// later may have been in flight across the switch and legitimately forwarded after it).
pub fn leaked(rx: &TestClient, tx: &str, kind: Kind, from: u64, open_us: u64) -> Vec<RecvPacket> {
    rx.received(tx, kind)
        .into_iter()
        .filter(|p| {
            p.mark().is_some_and(|m| m.sent_us >= from && (m.sent_us + SLACK_US < open_us || p.arrival_us() < open_us))
        })
        .collect()
}

/// When `c` got the `phase` message for `phase` of round `round` (unix µs).
pub fn phase_arrival(c: &TestClient, phase: &str, round: u64) -> u64 {
    phase_message(c, phase, round).0
}

/// `c`'s `phase` message for `phase` of round `round`, with its arrival (unix µs).
fn phase_message(c: &TestClient, phase: &str, round: u64) -> (u64, Value) {
    c.timed_messages()
        .into_iter()
        .find(|(_, m)| m["type"] == "phase" && m["phase"] == phase && m["round"] == round)
        .unwrap_or_else(|| panic!("{} never got phase {phase} (round {round})", c.id()))
}
