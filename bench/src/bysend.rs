//! A window's packets indexed for judging by send time: what each receiver got of each
//! publisher's kind, and what each publisher sent of it, both in send order.

use std::collections::HashMap;

use crate::fleet::Window;
use crate::media::RecvRecord;
use crate::payload::Kind;

/// Receptions by (receiver, publisher, kind) and send times by (publisher, kind).
pub struct BySend {
    received: HashMap<(u32, u32, Kind), Vec<RecvRecord>>,
    sent: HashMap<(u32, Kind), Vec<u64>>,
}

impl BySend {
    /// Index `w`'s records.
    pub fn index(w: &Window) -> BySend {
        let mut received: HashMap<(u32, u32, Kind), Vec<RecvRecord>> = HashMap::new();
        for r in &w.records {
            received.entry((r.owner, r.publisher, r.kind)).or_default().push(*r);
        }
        for v in received.values_mut() {
            v.sort_by_key(|r| r.sent_us);
        }
        let mut sent: HashMap<(u32, Kind), Vec<u64>> = HashMap::new();
        for s in &w.sends {
            sent.entry((s.publisher, s.kind)).or_default().push(s.sent_us);
        }
        for v in sent.values_mut() {
            v.sort_unstable();
        }
        BySend { received, sent }
    }

    /// What `receiver` got of `publisher`'s `kind`, in send order.
    pub fn received(&self, receiver: u32, publisher: u32, kind: Kind) -> &[RecvRecord] {
        self.received.get(&(receiver, publisher, kind)).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Every (receiver, publisher, kind) that received anything, with what it got.
    pub fn streams(&self) -> impl Iterator<Item = (&(u32, u32, Kind), &Vec<RecvRecord>)> {
        self.received.iter()
    }

    /// How many packets of `publisher`'s `kind` were sent in `[from, to)` (µs).
    pub fn sent_between(&self, publisher: u32, kind: Kind, from: u64, to: u64) -> u64 {
        self.sent
            .get(&(publisher, kind))
            .map_or(0, |v| (v.partition_point(|t| *t < to) - v.partition_point(|t| *t < from)) as u64)
    }
}
