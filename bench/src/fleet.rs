//! A fleet of synthetic participants: their signaling tasks (parlor or Janus), their peers on
//! the media threads, and measurement windows over all of them.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use tokio::sync::mpsc::{self, UnboundedSender};
use tokio::task::JoinHandle;

use crate::hist::Histogram;
use crate::media::{Counters, MediaPool, Publish, RecvRecord, SendRecord, SentReport, Shared, StreamReport};
use crate::participant::{Ctrl, PartCtx, PartInfo};
use crate::payload::{now_us, Kind};
use crate::sys::{self, Pid};

/// Which SFU the fleet talks to.
#[derive(Debug, Clone)]
pub enum Backend {
    /// parlor's `/ws` (the WebSocket URL).
    Parlor {
        /// `ws://host:port/ws`.
        url: String,
    },
    /// Janus VideoRoom over its WebSocket transport.
    Janus {
        /// `ws://host:port`.
        url: String,
        /// The VideoRoom room id.
        room: u64,
    },
}

impl Backend {
    /// "parlor" / "janus".
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Parlor { .. } => "parlor",
            Backend::Janus { .. } => "janus",
        }
    }
}

/// One participant of the fleet.
pub struct Member {
    /// Index (also the publisher number in marks).
    pub idx: u32,
    /// Room code.
    pub room: String,
    /// What it publishes.
    pub publish: Option<Publish>,
    /// Signaling progress.
    pub info: Arc<PartInfo>,
    ctrl: UnboundedSender<Ctrl>,
    task: JoinHandle<()>,
}

impl Member {
    /// Send a command to its signaling task.
    pub fn ctrl(&self, c: Ctrl) {
        let _ = self.ctrl.send(c);
    }

    /// Kinds it publishes.
    pub fn kinds(&self) -> Vec<Kind> {
        let Some(p) = &self.publish else { return Vec::new() };
        let mut k = Vec::new();
        if p.audio {
            k.push(Kind::Audio);
        }
        if p.video_bps > 0 {
            k.push(Kind::Video);
        }
        k
    }
}

/// The participants and their media threads.
pub struct Fleet {
    /// The media threads.
    pub pool: MediaPool,
    /// Everyone, by index.
    pub members: Vec<Member>,
    next_peer: u32,
    bind: IpAddr,
    backend: Backend,
}

/// A process whose CPU, memory and socket drops are measured, and where its counters are.
#[derive(Debug, Clone, Default)]
pub struct Probe {
    /// The SFU's process, if we can see it.
    pub pid: Option<u32>,
    /// parlor's HTTP address, for `GET /metrics`.
    pub metrics: Option<SocketAddr>,
}

/// Readings at one instant.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// When, µs.
    pub at_us: u64,
    /// SFU utime + stime, s.
    pub server_cpu: Option<f64>,
    /// SFU VmRSS, KiB.
    pub server_rss_kib: Option<u64>,
    /// SFU RssAnon, KiB.
    pub server_anon_kib: Option<u64>,
    /// Receive-buffer drops on the SFU's UDP sockets.
    pub server_drops: Option<u64>,
    /// `parlor_forwarded_packets_total`, if the server exposes it.
    pub forwarded: Option<u64>,
    /// Our utime + stime, s.
    pub self_cpu: f64,
    /// Receive-buffer drops on our UDP sockets.
    pub self_drops: u64,
    /// Machine (busy, total, steal) ticks.
    pub machine: Option<(u64, u64, u64)>,
}

impl Snapshot {
    /// Read everything now.
    pub async fn take(probe: &Probe) -> Snapshot {
        let forwarded = match probe.metrics {
            Some(addr) => tokio::task::spawn_blocking(move || scrape_forwarded(addr)).await.ok().flatten(),
            None => None,
        };
        let pid = probe.pid.map(Pid::Other);
        Snapshot {
            at_us: now_us(),
            server_cpu: pid.and_then(sys::cpu_seconds),
            server_rss_kib: pid.and_then(sys::rss_kib),
            server_anon_kib: pid.and_then(sys::anon_kib),
            server_drops: pid.map(sys::udp_drops),
            forwarded,
            self_cpu: sys::cpu_seconds(Pid::Me).unwrap_or(0.0),
            self_drops: sys::udp_drops(Pid::Me),
            machine: sys::machine_ticks(),
        }
    }
}

/// `parlor_forwarded_packets_total` summed over its labels, from `GET /metrics` (None when
/// the server has no such series).
pub fn scrape_forwarded(addr: SocketAddr) -> Option<u64> {
    metric_sum(&scrape_metrics(addr)?, "parlor_forwarded_packets_total").map(|v| v as u64)
}

/// The body of `GET /metrics` (None unless it answers 200).
pub fn scrape_metrics(addr: SocketAddr) -> Option<String> {
    use std::io::{Read, Write};
    let timeout = Duration::from_secs(2);
    let mut s = std::net::TcpStream::connect_timeout(&addr, timeout).ok()?;
    s.set_read_timeout(Some(timeout)).ok()?;
    s.write_all(format!("GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes()).ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    (head.split_whitespace().nth(1) == Some("200")).then(|| body.to_owned())
}

/// One series of a Prometheus text body, summed over its labels (None when absent).
pub fn metric_sum(body: &str, name: &str) -> Option<f64> {
    let mut total = None;
    for line in body.lines() {
        let Some(rest) = line.strip_prefix(name) else { continue };
        if !(rest.starts_with('{') || rest.starts_with(' ')) {
            continue;
        }
        if let Some(v) = rest.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) {
            *total.get_or_insert(0.0) += v;
        }
    }
    total
}

/// Everything measured over one window.
#[derive(Debug, Default)]
pub struct Window {
    /// Window start (send time), µs.
    pub t0: u64,
    /// Window end, µs.
    pub t1: u64,
    /// Readings at the start.
    pub before: Snapshot,
    /// Readings at the end.
    pub after: Snapshot,
    /// Received streams by (owner, publisher, kind).
    pub streams: HashMap<(u32, u32, Kind), StreamReport>,
    /// Sent packets by (publisher, kind).
    pub sent: HashMap<(u32, Kind), SentReport>,
    /// Latency of in-window packets, µs.
    pub latency: Histogram,
    /// Per-packet records (when recording).
    pub records: Vec<RecvRecord>,
    /// Per-packet send records (when recording).
    pub sends: Vec<SendRecord>,
    /// Thread counters, summed.
    pub counters: Counters,
}

impl Window {
    /// Length in seconds.
    pub fn seconds(&self) -> f64 {
        (self.t1.saturating_sub(self.t0)) as f64 / 1e6
    }

    /// Distinct in-window packets received, over all streams.
    pub fn received(&self) -> u64 {
        self.streams.values().map(|s| s.window).sum()
    }
}

/// How long a window waits after its end for packets still in flight.
const GRACE: Duration = Duration::from_millis(800);

impl Fleet {
    /// A fleet with `threads` media threads and room for `capacity` participants.
    pub fn new(threads: usize, capacity: usize, bind: IpAddr, backend: Backend) -> anyhow::Result<Fleet> {
        let shared = Shared::new(capacity);
        let pool = MediaPool::start(threads, shared)?;
        Ok(Fleet { pool, members: Vec::new(), next_peer: 0, bind, backend })
    }

    /// The shared counters.
    pub fn shared(&self) -> &Shared {
        &self.pool.shared
    }

    /// Add a participant (it connects at once). Must be called within a tokio runtime.
    pub fn join(&mut self, room: &str, name: &str, publish: Option<Publish>) -> anyhow::Result<u32> {
        self.join_kind(room, name, publish, None)
    }

    /// [`Fleet::join`], asking parlor for a room of `kind` should this join open it.
    pub fn join_kind(
        &mut self,
        room: &str,
        name: &str,
        publish: Option<Publish>,
        kind: Option<&str>,
    ) -> anyhow::Result<u32> {
        let idx = self.members.len() as u32;
        if idx as usize >= self.pool.shared.parts.len() {
            bail!("fleet is full ({} participants)", self.pool.shared.parts.len());
        }
        let publish = publish.map(|mut p| {
            p.publisher = idx;
            p
        });
        let (peer, sub_peer) = (self.next_peer, self.next_peer + 1);
        self.next_peer += 2;
        let info = Arc::new(PartInfo::default());
        let (url, janus_room) = match &self.backend {
            Backend::Parlor { url } => (url.clone(), 0),
            Backend::Janus { url, room } => (url.clone(), *room),
        };
        let ctx = PartCtx {
            idx,
            peer,
            sub_peer,
            url,
            room: room.to_owned(),
            kind: kind.map(str::to_owned),
            janus_room,
            name: name.to_owned(),
            publish: publish.clone(),
            bind: self.bind,
            media: self.pool.thread_for(peer).clone(),
            sub_media: self.pool.thread_for(sub_peer).clone(),
            info: info.clone(),
        };
        let (ctrl, rx) = mpsc::unbounded_channel();
        let task = match self.backend {
            Backend::Parlor { .. } => tokio::spawn(crate::parlor::participant(ctx, rx)),
            Backend::Janus { .. } => tokio::spawn(crate::janus::participant(ctx, rx)),
        };
        self.members.push(Member { idx, room: room.to_owned(), publish, info, ctrl, task });
        Ok(idx)
    }

    /// The (publisher, kind) streams `sub` should receive when everyone in its room receives
    /// every other publisher.
    pub fn expected(&self, sub: u32) -> Vec<(u32, Kind)> {
        let Some(s) = self.members.get(sub as usize) else { return Vec::new() };
        self.members
            .iter()
            .filter(|p| p.idx != sub && p.room == s.room)
            .flat_map(|p| p.kinds().into_iter().map(move |k| (p.idx, k)))
            .collect()
    }

    /// Wait until each of `idxs` receives every stream it should, or fail naming who does not.
    pub async fn wait_flowing(&self, idxs: &[u32], timeout: Duration) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let mut missing = Vec::new();
            for &i in idxs {
                let want = self.expected(i).len() as u32;
                let got = self.pool.shared.parts[i as usize].streams_seen.load(Ordering::Relaxed);
                if got < want {
                    missing.push((i, got, want));
                }
            }
            if missing.is_empty() {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                let detail: Vec<String> = missing
                    .iter()
                    .take(8)
                    .map(|(i, got, want)| {
                        let errs = self.members[*i as usize].info.errors();
                        format!(
                            "#{i}: {got}/{want} streams{}",
                            if errs.is_empty() { String::new() } else { format!(" ({})", errs.join("; ")) }
                        )
                    })
                    .collect();
                bail!(
                    "{} of {} participants not receiving everything after {timeout:?}: {}",
                    missing.len(),
                    idxs.len(),
                    detail.join(", ")
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Measure for `length`: readings before and after, and every thread's counters for
    /// packets *sent* within the window (collected after a grace period for late arrivals).
    pub async fn measure(&self, length: Duration, probe: &Probe) -> Window {
        let shared = &self.pool.shared;
        let before = Snapshot::take(probe).await;
        let t0 = now_us();
        shared.set_window(t0, u64::MAX);
        tokio::time::sleep(length).await;
        let t1 = now_us();
        shared.end_window(t1);
        let after = Snapshot::take(probe).await;
        tokio::time::sleep(GRACE).await;
        let reports = self.pool.collect();
        shared.clear_window();
        let mut w = Window { t0, t1, before, after, ..Default::default() };
        for r in reports {
            for s in r.streams {
                w.streams.insert((s.owner, s.publisher, s.kind), s);
            }
            for s in r.sent {
                w.sent.insert((s.publisher, s.kind), s);
            }
            w.latency.merge(&r.latency);
            w.records.extend(r.records);
            w.sends.extend(r.sends);
            w.counters.add(&r.counters);
        }
        w
    }

    /// Everyone leaves; waits briefly for the sockets to close.
    pub async fn leave_all(&mut self) {
        for m in &self.members {
            m.ctrl(Ctrl::Leave);
        }
        for m in self.members.iter_mut() {
            let _ = tokio::time::timeout(Duration::from_secs(3), &mut m.task).await;
            m.task.abort();
        }
    }

    /// Stop the media threads.
    pub fn shutdown(self) {
        self.pool.shutdown();
    }
}
