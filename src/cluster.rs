//! One node of a cluster on Redis (`[cluster]`, docs/SCALING.md): the node's entry, the rooms'
//! owner locks, and placement — signaling's [`Directory`] for the hub.
//!
//! Keys (all under `parlor:`):
//! - `nodes`: the set of node ids ever seen (a member whose entry expired is dead, and dropped);
//! - `node:ID`: a hash `url`, `rooms`, `participants`, `cpu`, `draining`, refreshed every
//!   heartbeat with a TTL of `ttl_seconds`;
//! - `room:CODE`: the owner's node id, `SET NX PX ttl`, refreshed by its owner only (a Lua
//!   script compares before it extends), deleted by its owner when the room closes.
//!
//! A room lives where its lock says. A node answers for a code it holds no room for by asking
//! the lock: another live node's → `redirect` there; none, or a dead node's → placed on the
//! least-loaded live node, claimed in one script, and whoever lost a race on the same code
//! reads the winner from the same script.
//!
//! A draining node (SIGTERM, [`Cluster::start_draining`]) says so in its entry: placement skips
//! it, and it sends every new room to another node, while the rooms it holds run on.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use parlor_signaling::{BoxFuture, Directory, ErrorCode, Figure, Hub, Placement, Refusal};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Script};
use tokio::task::JoinHandle;

/// How long one exchange with Redis may take before the directory counts as unreachable.
const OP_TIMEOUT: Duration = Duration::from_millis(1500);

const NODES: &str = "parlor:nodes";

fn node_key(id: &str) -> String {
    format!("parlor:node:{id}")
}

fn room_key(code: &str) -> String {
    format!("parlor:room:{code}")
}

/// Claim `KEYS[1]` (a room) for `ARGV[1]` unless someone holds it — or the holder is
/// `ARGV[3]`, a node known dead. Counts the room on the new owner's entry (`KEYS[2]`) at once,
/// so placements between two heartbeats see it. Returns the owner after the call.
const CLAIM: &str = r"
local cur = redis.call('GET', KEYS[1])
if cur == false or cur == ARGV[3] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('HINCRBY', KEYS[2], 'rooms', 1) end
  return ARGV[1]
end
return cur
";

/// Extend each room lock in `KEYS` that `ARGV[1]` holds; take back one nobody holds (expired
/// while Redis was away, or lost with a restarted Redis). Returns the 1-based positions of the
/// locks another node holds.
const REFRESH: &str = r"
local lost = {}
for i, key in ipairs(KEYS) do
  local cur = redis.call('GET', key)
  if cur == ARGV[1] then
    redis.call('PEXPIRE', key, ARGV[2])
  elseif cur == false then
    redis.call('SET', key, ARGV[1], 'PX', ARGV[2])
  else
    table.insert(lost, i)
  end
end
return lost
";

/// Delete the lock `KEYS[1]` if `ARGV[1]` holds it.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

/// What `[cluster]` says, resolved (the node id chosen, the URL known).
#[derive(Debug, Clone)]
pub struct ClusterSettings {
    /// The Redis URL.
    pub redis: String,
    /// This node's id.
    pub node_id: String,
    /// This node's public base URL.
    pub url: String,
    /// How often the node publishes itself and refreshes its locks.
    pub heartbeat: Duration,
    /// How long its entry and its locks live without a refresh.
    pub ttl: Duration,
    /// How long a drain (SIGTERM) lets the rooms run on at most.
    pub drain: Duration,
}

/// A live node as the directory sees it.
#[derive(Debug, Clone, PartialEq)]
struct NodeEntry {
    id: String,
    url: String,
    rooms: u64,
    participants: u64,
    /// Draining nodes take no new rooms.
    draining: bool,
}

impl NodeEntry {
    /// Placement's measure: an empty room costs what one participant does, so rooms placed
    /// between heartbeats (counted at claim time) spread too.
    fn load(&self) -> u64 {
        self.rooms + self.participants
    }
}

/// The least-loaded node that takes new rooms; ties go to the smallest id, so every node
/// decides alike.
fn least_loaded(nodes: &[NodeEntry]) -> Option<&NodeEntry> {
    nodes.iter().filter(|n| !n.draining).min_by(|a, b| a.load().cmp(&b.load()).then_with(|| a.id.cmp(&b.id)))
}

#[derive(Default)]
struct Counts {
    redirects: AtomicU64,
    placed_here: AtomicU64,
    placed_elsewhere: AtomicU64,
    takeovers: AtomicU64,
    lost_locks: AtomicU64,
    redis_errors: AtomicU64,
    live_nodes: AtomicU64,
}

struct Inner {
    redis: ConnectionManager,
    settings: ClusterSettings,
    /// Codes claimed for a room on this node that the hub may not list yet (the join that
    /// opens it is on its way), refreshed with the hub's rooms.
    held: Mutex<HashSet<String>>,
    /// Whether the last exchange with Redis succeeded.
    reachable: AtomicBool,
    /// This node's last published rooms and participants (placement counts itself with these
    /// when its entry is missing, e.g. just after Redis restarted).
    local: Mutex<(u64, u64)>,
    /// Set once SIGTERM asked this node to drain; never cleared.
    draining: AtomicBool,
    counts: Counts,
}

/// No live node takes new rooms (every one is draining, or none is left).
#[derive(Debug)]
struct NoTaker;

impl std::fmt::Display for NoTaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("no live node takes new rooms")
    }
}

impl std::error::Error for NoTaker {}

fn no_taker() -> Refusal {
    Refusal::new(
        ErrorCode::ClusterUnavailable,
        "this node is shutting down and no other node of the cluster takes new rooms right now; \
         rooms in progress go on. Try again in a few seconds",
    )
}

fn unavailable() -> Refusal {
    Refusal::new(
        ErrorCode::ClusterUnavailable,
        "the cluster cannot find or place rooms right now (its directory is unreachable); rooms in progress go on. \
         Try again in a few seconds",
    )
}

impl Inner {
    fn ttl_ms(&self) -> u64 {
        self.settings.ttl.as_millis() as u64
    }

    fn id(&self) -> &str {
        &self.settings.node_id
    }

    fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// Note how the last exchange went, logging only the changes.
    fn outcome<T>(&self, what: &str, result: Result<T>) -> Result<T> {
        // "No node takes the room" is an answer from Redis, not a failure to reach it.
        let answered = match &result {
            Ok(_) => true,
            Err(e) => e.is::<NoTaker>(),
        };
        match &result {
            _ if answered => {
                if !self.reachable.swap(true, Ordering::Relaxed) {
                    tracing::info!(node = %self.id(), "cluster: Redis is reachable again");
                }
            }
            Ok(_) => {}
            Err(e) => {
                self.counts.redis_errors.fetch_add(1, Ordering::Relaxed);
                if self.reachable.swap(false, Ordering::Relaxed) {
                    tracing::warn!(node = %self.id(), "cluster: Redis unreachable ({what}: {e:#}); rooms in progress go on, new rooms wait");
                }
            }
        }
        result
    }

    /// Run `fut` against Redis within [`OP_TIMEOUT`].
    async fn bounded<T>(&self, what: &str, fut: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        let result = match tokio::time::timeout(OP_TIMEOUT, fut).await {
            Ok(r) => r,
            Err(_) => Err(anyhow!("no answer within {OP_TIMEOUT:?}")),
        };
        self.outcome(what, result)
    }

    /// Every live node, this one included (from its own figures if its entry is missing).
    async fn live_nodes(&self, con: &mut ConnectionManager) -> Result<Vec<NodeEntry>> {
        let ids: Vec<String> = con.smembers(NODES).await?;
        let mut pipe = redis::pipe();
        for id in &ids {
            pipe.hgetall(node_key(id));
        }
        let entries: Vec<HashMap<String, String>> =
            if ids.is_empty() { Vec::new() } else { pipe.query_async(con).await? };
        let mut nodes = Vec::new();
        let mut dead = Vec::new();
        for (id, entry) in ids.into_iter().zip(entries) {
            let Some(url) = entry.get("url") else {
                dead.push(id);
                continue;
            };
            let number = |k: &str| entry.get(k).and_then(|v| v.parse().ok()).unwrap_or(0);
            nodes.push(NodeEntry {
                url: url.clone(),
                rooms: number("rooms"),
                participants: number("participants"),
                draining: number("draining") != 0,
                id,
            });
        }
        if !dead.is_empty() {
            let _: () = con.srem(NODES, &dead).await?;
        }
        if !nodes.iter().any(|n| n.id == self.id()) {
            let (rooms, participants) = *self.local.lock().unwrap_or_else(|e| e.into_inner());
            nodes.push(NodeEntry {
                id: self.id().to_owned(),
                url: self.settings.url.clone(),
                rooms,
                participants,
                draining: self.is_draining(),
            });
        }
        self.counts.live_nodes.store(nodes.len() as u64, Ordering::Relaxed);
        Ok(nodes)
    }

    async fn url_of(&self, con: &mut ConnectionManager, id: &str) -> Result<Option<String>> {
        Ok(con.hget(node_key(id), "url").await?)
    }

    async fn place(&self, code: &str, may_create: bool) -> Result<Placement> {
        let mut con = self.redis.clone();
        let owner: Option<String> = con.get(room_key(code)).await?;
        let mut dead = String::new();
        if let Some(owner) = owner {
            if owner == self.id() && self.is_draining() {
                // Claimed for this node by a placement that did not see it draining yet: the
                // code is placed anew below, taking this node's claim over like a dead node's.
                dead = owner;
            } else if owner == self.id() {
                // Claimed for this node by another one's placement: open it here.
                self.hold(code);
                return Ok(Placement::Here);
            } else if let Some(url) = self.url_of(&mut con, &owner).await? {
                return Ok(Placement::There { url });
            } else {
                // The owner's entry expired: it is dead, and so is the room; its lock may go.
                dead = owner;
            }
        }
        if !may_create {
            return Ok(Placement::Here);
        }
        let nodes = self.live_nodes(&mut con).await?;
        let target = least_loaded(&nodes).ok_or(NoTaker)?;
        let winner: String = Script::new(CLAIM)
            .key(room_key(code))
            .key(node_key(&target.id))
            .arg(&target.id)
            .arg(self.ttl_ms())
            .arg(&dead)
            .invoke_async(&mut con)
            .await?;
        if !dead.is_empty() && winner != dead {
            self.counts.takeovers.fetch_add(1, Ordering::Relaxed);
            tracing::info!(room = %code, dead = %dead, to = %winner, "cluster: a dead node's room placed anew");
        }
        if winner == self.id() {
            // Only a placement racing this node's start of draining lands here while it drains.
            self.counts.placed_here.fetch_add(1, Ordering::Relaxed);
            self.hold(code);
            return Ok(Placement::Here);
        }
        let url = match nodes.iter().find(|n| n.id == winner) {
            Some(n) => Some(n.url.clone()),
            None => self.url_of(&mut con, &winner).await?,
        };
        let url = url.ok_or_else(|| anyhow!("room {code} is claimed by node {winner}, which has no entry"))?;
        self.counts.placed_elsewhere.fetch_add(1, Ordering::Relaxed);
        Ok(Placement::There { url })
    }

    fn hold(&self, code: &str) {
        self.held.lock().unwrap_or_else(|e| e.into_inner()).insert(code.to_owned());
    }

    /// Publish this node and refresh the locks of `codes` (its rooms).
    async fn beat(&self, codes: &[String], participants: u64) -> Result<()> {
        let mut con = self.redis.clone();
        let rooms = codes.len() as u64;
        *self.local.lock().unwrap_or_else(|e| e.into_inner()) = (rooms, participants);
        let key = node_key(self.id());
        let cpu = cpu_load();
        let _: () = redis::pipe()
            .hset_multiple(
                &key,
                &[
                    ("url", self.settings.url.clone()),
                    ("rooms", rooms.to_string()),
                    ("participants", participants.to_string()),
                    ("cpu", format!("{cpu:.2}")),
                    ("draining", u8::from(self.is_draining()).to_string()),
                ],
            )
            .ignore()
            .pexpire(&key, self.ttl_ms() as i64)
            .ignore()
            .sadd(NODES, self.id())
            .ignore()
            .query_async(&mut con)
            .await?;
        // Keeps the live-node gauge current (and drops dead members) even on a node that places nothing.
        self.live_nodes(&mut con).await?;
        if codes.is_empty() {
            return Ok(());
        }
        let script = Script::new(REFRESH);
        let mut call = script.prepare_invoke();
        for code in codes {
            call.key(room_key(code));
        }
        let lost: Vec<usize> = call.arg(self.id()).arg(self.ttl_ms()).invoke_async(&mut con).await?;
        for i in lost {
            if let Some(code) = codes.get(i.wrapping_sub(1)) {
                self.counts.lost_locks.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(room = %code, "cluster: another node claimed this room while it ran here (Redis was away); it goes on here");
            }
        }
        Ok(())
    }

    /// One heartbeat: `hub`'s rooms (and the codes claimed for rooms about to open) and its
    /// participants.
    async fn publish(&self, hub: &Hub) {
        let mut codes = hub.room_codes();
        {
            let held = self.held.lock().unwrap_or_else(|e| e.into_inner());
            codes.extend(held.iter().filter(|c| !hub.holds(c)).cloned());
        }
        let participants = hub.stats().participants.load(Ordering::Relaxed);
        let _ = self.bounded("heartbeat", self.beat(&codes, participants)).await;
    }

    async fn release(&self, code: &str) -> Result<()> {
        let mut con = self.redis.clone();
        let _: i64 = Script::new(RELEASE).key(room_key(code)).arg(self.id()).invoke_async(&mut con).await?;
        Ok(())
    }
}

/// The 1-minute load average per core (0 where the system does not tell).
fn cpu_load() -> f64 {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) as f64;
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse::<f64>().ok()))
        .map_or(0.0, |l| l / cores)
}

/// Where the directory finds the hub once it exists (cleared when the node leaves).
pub type HubSlot = Arc<Mutex<Option<Hub>>>;

/// This node's membership of the cluster: the directory the hub asks, and the heartbeat.
pub struct Cluster {
    inner: Arc<Inner>,
    heartbeat: Mutex<Option<JoinHandle<()>>>,
}

/// The hub's view of the cluster.
struct ClusterDirectory {
    inner: Arc<Inner>,
    /// Which rooms the hub holds now (set once the hub exists), so a release racing a reopen
    /// of the same code here does not drop the new room's lock.
    hub: HubSlot,
}

impl Directory for ClusterDirectory {
    fn place(&self, code: &str, may_create: bool) -> BoxFuture<'_, Result<Placement, Refusal>> {
        let code = code.to_owned();
        Box::pin(async move {
            let inner = &self.inner;
            let placement = inner.bounded("placing a room", inner.place(&code, may_create)).await.map_err(|e| {
                if e.is::<NoTaker>() {
                    no_taker()
                } else {
                    unavailable()
                }
            })?;
            if matches!(placement, Placement::There { .. }) {
                inner.counts.redirects.fetch_add(1, Ordering::Relaxed);
            }
            Ok(placement)
        })
    }

    fn released(&self, code: &str) {
        self.inner.held.lock().unwrap_or_else(|e| e.into_inner()).remove(code);
        let inner = self.inner.clone();
        let hub = self.hub.clone();
        let code = code.to_owned();
        // Called from the room's task as it ends; the lock goes after the room did.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        runtime.spawn(async move {
            let reopened = hub.lock().unwrap_or_else(|e| e.into_inner()).as_ref().is_some_and(|h| h.holds(&code))
                || inner.held.lock().unwrap_or_else(|e| e.into_inner()).contains(&code);
            if !reopened {
                // An unreachable Redis lets the lock expire on its own.
                let _ = inner.bounded("releasing a room", inner.release(&code)).await;
            }
        });
    }

    fn figures(&self) -> Vec<Figure> {
        let c = &self.inner.counts;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let figure = |name, help, value, counter| Figure { name, help, value, counter };
        vec![
            figure(
                "parlor_cluster_nodes",
                "Live nodes of the cluster, as last seen by this node.",
                get(&c.live_nodes),
                false,
            ),
            figure(
                "parlor_cluster_draining",
                "1 while this node drains (SIGTERM): it takes no new rooms and leaves once its rooms are empty.",
                u64::from(self.inner.is_draining()),
                false,
            ),
            figure(
                "parlor_cluster_redis_up",
                "1 when this node's last exchange with the cluster's Redis succeeded.",
                u64::from(self.inner.reachable.load(Ordering::Relaxed)),
                false,
            ),
            figure("parlor_cluster_redirects_total", "Joins sent to another node (redirect).", get(&c.redirects), true),
            figure(
                "parlor_cluster_placed_here_total",
                "New rooms this node placed on itself.",
                get(&c.placed_here),
                true,
            ),
            figure(
                "parlor_cluster_placed_elsewhere_total",
                "New rooms this node placed on another node.",
                get(&c.placed_elsewhere),
                true,
            ),
            figure(
                "parlor_cluster_takeovers_total",
                "Rooms of a dead node placed anew by this node.",
                get(&c.takeovers),
                true,
            ),
            figure(
                "parlor_cluster_lost_locks_total",
                "Refreshes that found this node's room claimed by another node.",
                get(&c.lost_locks),
                true,
            ),
            figure(
                "parlor_cluster_redis_errors_total",
                "Failed or timed-out exchanges with Redis.",
                get(&c.redis_errors),
                true,
            ),
        ]
    }
}

/// Where a room lives, as the room API reports it.
pub enum Whereabouts {
    /// On this node (or nowhere).
    Here,
    /// On the node at this URL.
    There(String),
}

impl Cluster {
    /// Join the cluster: connect to Redis (lazily — a Redis that is down now only delays new
    /// rooms) and return the directory for the hub. Start the heartbeat with
    /// [`Cluster::start_heartbeat`] once the hub exists.
    pub fn new(settings: ClusterSettings) -> Result<(Arc<Cluster>, Arc<dyn Directory>, HubSlot)> {
        let client = redis::Client::open(settings.redis.as_str()).context("cluster.redis")?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_millis(1000)))
            .set_response_timeout(Some(Duration::from_millis(1000)))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let redis = ConnectionManager::new_lazy_with_config(client, config).context("connecting to cluster.redis")?;
        tracing::info!(node = %settings.node_id, url = %settings.url, "cluster: joining");
        let inner = Arc::new(Inner {
            redis,
            settings,
            held: Mutex::new(HashSet::new()),
            reachable: AtomicBool::new(true),
            local: Mutex::new((0, 0)),
            draining: AtomicBool::new(false),
            counts: Counts::default(),
        });
        let hub: HubSlot = Arc::new(Mutex::new(None));
        let directory = Arc::new(ClusterDirectory { inner: inner.clone(), hub: hub.clone() });
        Ok((Arc::new(Cluster { inner, heartbeat: Mutex::new(None) }), directory, hub))
    }

    /// This node's id.
    pub fn node_id(&self) -> &str {
        self.inner.id()
    }

    /// This node's public base URL.
    pub fn url(&self) -> &str {
        &self.inner.settings.url
    }

    /// Publish this node now, then every heartbeat, with `hub`'s rooms and participants.
    pub async fn start_heartbeat(&self, hub: Hub) {
        let inner = self.inner.clone();
        let beat = |inner: Arc<Inner>, hub: Hub| async move { inner.publish(&hub).await };
        beat(inner.clone(), hub.clone()).await;
        let every = inner.settings.heartbeat;
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                beat(inner.clone(), hub.clone()).await;
            }
        });
        *self.heartbeat.lock().unwrap_or_else(|e| e.into_inner()) = Some(task);
    }

    /// Stop taking new rooms (SIGTERM): say so in this node's entry at once, so placement on
    /// every node skips it, and send every new room elsewhere from now on. The rooms `hub`
    /// holds run on; [`Cluster::leave`] ends the membership.
    pub async fn start_draining(&self, hub: &Hub) {
        if self.inner.draining.swap(true, Ordering::Relaxed) {
            return;
        }
        tracing::info!(node = %self.node_id(), "cluster: draining (no new rooms here)");
        self.inner.publish(hub).await;
    }

    /// How long a drain lets this node's rooms run on at most (`cluster.drain_seconds`).
    pub fn drain_limit(&self) -> Duration {
        self.inner.settings.drain
    }

    /// Whether this node is draining.
    pub fn is_draining(&self) -> bool {
        self.inner.is_draining()
    }

    /// The public URL of the node a new room would go to now (the least-loaded one that is not
    /// draining), for a draining node's API; `Ok(None)` when no node takes new rooms, `Err`
    /// when Redis is unreachable.
    pub async fn taker(&self) -> std::result::Result<Option<String>, ()> {
        let inner = &self.inner;
        let find = async {
            let mut con = inner.redis.clone();
            let nodes = inner.live_nodes(&mut con).await?;
            Ok(least_loaded(&nodes).map(|n| n.url.clone()))
        };
        inner.bounded("finding a node for a new room", find).await.map_err(|_| ())
    }

    /// Claim `code` for a room the API is about to open here. `Err(Some(url))`: another live
    /// node holds it; `Err(None)`: Redis is unreachable.
    pub async fn claim_here(&self, code: &str) -> std::result::Result<(), Option<String>> {
        let inner = &self.inner;
        let claim = async {
            let mut con = inner.redis.clone();
            let owner: Option<String> = con.get(room_key(code)).await?;
            let dead = match owner {
                Some(owner) if owner == inner.id() => return Ok(None),
                Some(owner) => match inner.url_of(&mut con, &owner).await? {
                    Some(url) => return Ok(Some(url)),
                    None => owner,
                },
                None => String::new(),
            };
            let winner: String = Script::new(CLAIM)
                .key(room_key(code))
                .key(node_key(inner.id()))
                .arg(inner.id())
                .arg(inner.ttl_ms())
                .arg(&dead)
                .invoke_async(&mut con)
                .await?;
            if winner == inner.id() {
                return Ok(None);
            }
            Ok(Some(inner.url_of(&mut con, &winner).await?.unwrap_or_default()))
        };
        match inner.bounded("claiming a room", claim).await {
            Ok(None) => {
                inner.hold(code);
                Ok(())
            }
            Ok(Some(url)) => Err(Some(url)),
            Err(_) => Err(None),
        }
    }

    /// Where the room `code` (not open here) lives, for the room API; `Err` when Redis is
    /// unreachable.
    pub async fn locate(&self, code: &str) -> std::result::Result<Whereabouts, ()> {
        let inner = &self.inner;
        match inner.bounded("looking a room up", inner.place(code, false)).await {
            Ok(Placement::There { url }) => Ok(Whereabouts::There(url)),
            Ok(Placement::Here) => Ok(Whereabouts::Here),
            Err(_) => Err(()),
        }
    }

    /// Leave the cluster: stop the heartbeat, release the locks of `codes` and remove this
    /// node's entry, so its rooms can be placed elsewhere at once.
    pub async fn leave(&self, codes: &[String]) {
        if let Some(task) = self.heartbeat.lock().unwrap_or_else(|e| e.into_inner()).take() {
            task.abort();
        }
        let inner = &self.inner;
        let leave = async {
            for code in codes {
                inner.release(code).await?;
            }
            let mut con = inner.redis.clone();
            let _: () = redis::pipe()
                .del(node_key(inner.id()))
                .ignore()
                .srem(NODES, inner.id())
                .ignore()
                .query_async(&mut con)
                .await?;
            Ok(())
        };
        if inner.bounded("leaving the cluster", leave).await.is_ok() {
            tracing::info!(node = %inner.id(), "cluster: left");
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(task) = self.heartbeat.get_mut().unwrap_or_else(|e| e.into_inner()).take() {
            task.abort();
        }
    }
}

/// A random node id (when `cluster.node_id` is empty).
pub fn random_node_id() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
    let mut rng = rand::rng();
    (0..10).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, rooms: u64, participants: u64) -> NodeEntry {
        NodeEntry { id: id.into(), url: format!("http://{id}"), rooms, participants, draining: false }
    }

    #[test]
    fn placement_takes_the_least_loaded_and_breaks_ties_by_id() {
        assert_eq!(least_loaded(&[]), None);
        let nodes = [node("b", 1, 10), node("a", 2, 3), node("c", 0, 5)];
        // b carries 11, a and c 5 each: a tie, which the smaller id takes.
        assert_eq!(least_loaded(&nodes).unwrap().id, "a");
        let nodes = [node("b", 1, 10), node("a", 2, 4), node("c", 0, 5)];
        assert_eq!(least_loaded(&nodes).unwrap().id, "c");
    }

    #[test]
    fn ties_go_to_the_smallest_id() {
        let nodes = [node("n2", 1, 0), node("n1", 0, 1), node("n3", 0, 0)];
        assert_eq!(least_loaded(&nodes).unwrap().id, "n3");
        let tied = [node("n2", 1, 0), node("n1", 0, 1)];
        assert_eq!(least_loaded(&tied).unwrap().id, "n1");
    }

    #[test]
    fn draining_nodes_take_no_new_rooms() {
        let mut nodes = [node("n1", 0, 0), node("n2", 3, 9), node("n3", 1, 1)];
        nodes[0].draining = true;
        assert_eq!(least_loaded(&nodes).unwrap().id, "n3", "the emptiest node drains: the next one takes it");
        nodes[2].draining = true;
        assert_eq!(least_loaded(&nodes).unwrap().id, "n2");
        nodes[1].draining = true;
        assert_eq!(least_loaded(&nodes), None, "nobody takes new rooms");
    }

    #[test]
    fn node_ids_are_random_and_plain() {
        let a = random_node_id();
        assert_eq!(a.len(), 10);
        assert!(a.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(a, random_node_id());
    }
}
