//! What the route benchmark (`route-bench`) drives: one worker room of members negotiated
//! in-process (str0m clients, no network), and two ways to change its routes — this crate's
//! per-publisher delta, and the all-pairs rebuild it replaced. Only with the `bench` feature.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use crate::routes::{Kind, Reach};
use crate::worker::replaced::{rebuild, AllPairs};
use crate::worker::rig::{Rig, ROOM};

/// A worker with one room of negotiated members. Must be made and used inside a tokio
/// runtime (the worker's socket is bound on loopback, but nothing is ever sent).
pub struct RouteBench {
    rig: Rig,
    /// The all-pairs path's state: the binary's stored routes and the worker's matrix.
    stored: BTreeMap<(String, Kind), Vec<String>>,
    matrices: HashMap<String, AllPairs>,
    epoch: u64,
}

impl RouteBench {
    /// A room where every one of `ids` publishes audio and video and receives a track of
    /// every other member's (all denied until routes allow them).
    pub fn new(ids: &[String]) -> RouteBench {
        let mut rig = Rig::on_loopback();
        for id in ids {
            rig.join(id);
        }
        rig.settle();
        RouteBench { rig, stored: BTreeMap::new(), matrices: HashMap::new(), epoch: 0 }
    }

    /// (allowed, all) receiving tracks in the room.
    pub fn tracks(&self) -> (usize, usize) {
        self.rig.allowed_tracks()
    }

    /// Peers the worker holds (a peer that failed would be gone).
    pub fn peers(&self) -> usize {
        self.rig.peers()
    }

    /// Keyframe requests the worker sent so far.
    pub fn keyframe_requests(&self) -> u64 {
        self.rig.keyframe_requests()
    }

    /// Move the synthetic clock on (past the keyframe rate limit, say) and run the timeouts
    /// then due, as the worker's loop does between inputs.
    pub fn advance(&mut self, by: Duration) {
        self.rig.advance(by);
        self.rig.timeouts();
    }

    /// Apply `changes` the new way (the binary translates, the worker applies the delta);
    /// returns the time the worker took.
    pub fn apply_delta(&mut self, changes: Vec<Reach>) -> Duration {
        self.epoch += 1;
        let started = Instant::now();
        let epoch = self.rig.update_routes(self.epoch, changes);
        let took = started.elapsed();
        assert_eq!(epoch, self.epoch);
        took
    }

    /// Apply `changes` the replaced way: the binary stores them and rebuilds the whole
    /// matrix, the worker resolves it onto every track. Returns the time both took.
    pub fn apply_all_pairs(&mut self, changes: Vec<Reach>) -> Duration {
        self.epoch += 1;
        let worker = self.rig.worker_now();
        let started = Instant::now();
        let matrix = rebuild(&mut self.stored, self.epoch, changes);
        let epoch = worker.set_all_pairs(&mut self.matrices, ROOM, matrix);
        let took = started.elapsed();
        assert_eq!(epoch, self.epoch);
        took
    }
}
