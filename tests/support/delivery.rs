//! Whether what a publisher sent in a window reached a subscriber, judged by the send times its
//! payloads carry (never by when a busy reader got to them).

use std::collections::HashSet;
use std::time::Duration;

use super::{parse_mark, wait_until, Kind, TestClient};

/// How long [`assert_delivered`] waits for a lagging reader to catch up with the window.
pub const DELIVERY_WAIT: Duration = Duration::from_secs(30);

/// (packets `tx` sent of `kind` in [from, to), how many of those `rx` got), by payload counter.
/// A simulcast publisher's layers count their frames alike (one counter value per frame tick),
/// and a subscriber gets one layer of each, so a frame counts once whichever layer brought it.
pub fn delivery(tx: &TestClient, rx: &TestClient, kind: Kind, from: u64, to: u64) -> (usize, usize) {
    let sent: HashSet<u32> = tx
        .sent(kind)
        .iter()
        .filter_map(|p| parse_mark(&p.payload))
        .filter(|m| m.sent_us >= from && m.sent_us < to)
        .map(|m| m.counter)
        .collect();
    let got: HashSet<u32> = rx
        .received(tx.id(), kind)
        .iter()
        .filter_map(|p| p.mark())
        .filter(|m| (m.publisher == tx.id() || is_layer_of(&m.publisher, tx.id())) && sent.contains(&m.counter))
        .map(|m| m.counter)
        .collect();
    (sent.len(), got.len())
}

/// Whether a payload mark names a simulcast layer (`"<id>/<rid>"`) of `publisher`.
fn is_layer_of(mark: &str, publisher: &str) -> bool {
    mark.strip_prefix(publisher).is_some_and(|rest| rest.starts_with('/'))
}

/// Asserts that `rx` got at least 90 % of what `tx` sent of `kind` in `window` = [from, to), with
/// at least `min_sent` packets sent so the check is never vacuous; returns the share. Waits (up
/// to [`DELIVERY_WAIT`]) for the share: a stalled receiver may not have read the window's last
/// packets yet.
pub async fn assert_delivered(
    tx: &TestClient,
    rx: &TestClient,
    kind: Kind,
    window: (u64, u64),
    min_sent: usize,
    what: &str,
) -> f64 {
    let (from, to) = window;
    let whole = || {
        let (sent, got) = delivery(tx, rx, kind, from, to);
        sent >= min_sent && got * 10 >= sent * 9
    };
    wait_until(DELIVERY_WAIT, whole).await;
    let (sent, got) = delivery(tx, rx, kind, from, to);
    assert!(sent >= min_sent, "{what}: {} sent only {sent} {kind} packets in the window", tx.id());
    assert!(got * 10 >= sent * 9, "{what}: {} got {got} of the {sent} {kind} packets {} sent", rx.id(), tx.id());
    got as f64 / sent as f64
}
