//! The route path this crate replaced, kept only so the route benchmark can measure the new
//! one against it on the same worker: the binary rebuilt an all-pairs matrix of (subscriber,
//! publisher, kind) from its stored routes on every change, and the worker resolved that
//! matrix onto every receiving track of the room. Built only with the `bench` feature.

use std::collections::{BTreeMap, HashMap, HashSet};

use str0m::media::{KeyframeRequestKind, Mid};
use str0m::Input;

use super::{Worker, RTX_CACHE_AGE, RTX_CACHE_PACKETS, RTX_RATIO_CAP};
use crate::peer::PeerKey;
use crate::routes::{Kind, Reach};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Entry {
    subscriber: String,
    publisher: String,
    kind: Kind,
}

/// An epoch-versioned set of allowed pairs, as the worker held it.
#[derive(Debug, Default)]
pub(crate) struct AllPairs {
    epoch: u64,
    allowed: HashSet<Entry>,
}

impl AllPairs {
    fn allows(&self, subscriber: &str, publisher: &str, kind: Kind) -> bool {
        // An owned key per query, as it was.
        self.allowed.contains(&Entry { subscriber: subscriber.to_owned(), publisher: publisher.to_owned(), kind })
    }
}

/// The binary's side: store the changed (publisher, kind)s, then list every allowed pair.
pub(crate) fn rebuild(routes: &mut BTreeMap<(String, Kind), Vec<String>>, epoch: u64, changes: Vec<Reach>) -> AllPairs {
    let mut matrix = AllPairs { epoch, allowed: HashSet::new() };
    for change in changes {
        routes.insert((change.publisher, change.kind), change.subscribers);
    }
    for ((publisher, kind), subscribers) in routes.iter() {
        for subscriber in subscribers {
            matrix.allowed.insert(Entry { subscriber: subscriber.clone(), publisher: publisher.clone(), kind: *kind });
        }
    }
    matrix
}

impl Worker {
    /// The worker's side: replace the room's matrix (held in `matrices`, by room, as the room
    /// held it) and resolve it onto every receiving track of the room.
    pub(crate) fn set_all_pairs(
        &mut self,
        matrices: &mut HashMap<String, AllPairs>,
        room: &str,
        matrix: AllPairs,
    ) -> u64 {
        if !self.rooms.contains_key(room) {
            return 0;
        }
        let held = matrices.entry(room.to_owned()).or_default();
        if matrix.epoch < held.epoch {
            return held.epoch;
        }
        *held = matrix;
        self.counters.matrix_updates += 1;
        let epoch = held.epoch;
        self.apply_all_pairs(matrices, room);
        epoch
    }

    fn apply_all_pairs(&mut self, matrices: &HashMap<String, AllPairs>, room: &str) {
        let Some(r) = self.rooms.get(room) else { return };
        let members = r.members.clone();
        let mut keyframes = Vec::new();
        let mut paused: Vec<(PeerKey, Mid)> = Vec::new();
        for &s in &members {
            let Some(sub_id) = self.peer(s).map(|p| p.id.clone()) else { continue };
            let mut decisions = Vec::new();
            if let Some(sp) = self.peer(s) {
                for (i, t) in sp.tracks_out.iter().enumerate() {
                    let pub_id = self.peer(t.publisher).map(|p| p.id.as_str()).unwrap_or("");
                    let allowed = matrices[room].allows(&sub_id, pub_id, t.kind);
                    decisions.push((i, allowed));
                }
            }
            let Some(sp) = self.peer_mut(s) else { continue };
            for (i, allowed) in decisions {
                let t = &mut sp.tracks_out[i];
                if t.allowed && !allowed {
                    t.rewriter.pause();
                    paused.push((s, t.mid));
                }
                if !t.allowed && allowed && t.kind == Kind::Video {
                    keyframes.push((t.publisher, t.publisher_mid));
                }
                t.allowed = allowed;
            }
        }
        let now = self.now;
        for (s, mid) in paused {
            self.with_peer(s, |rtc| rtc.handle_input(Input::Timeout(now)));
            self.with_peer(s, |rtc| {
                if let Some(tx) = rtc.direct_api().stream_tx_by_mid(mid, None) {
                    tx.set_rtx_cache(RTX_CACHE_PACKETS, RTX_CACHE_AGE, Some(RTX_RATIO_CAP));
                }
            });
        }
        for (p, mid) in keyframes {
            self.request_keyframe(p, mid, None, KeyframeRequestKind::Pli);
        }
    }
}
