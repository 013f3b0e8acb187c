//! The scenarios of issue #5: `mafia-12`, `rooms`, `phase-flip`, `compare`, and a quick `smoke`
//! run, with what they share (options, targets, outcomes). `stage-100` (issue #12) is in
//! `stage`, which builds on this module.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{anyhow, bail};
use serde_json::{json, Value};

use crate::bysend::BySend;
use crate::fleet::{Backend, Fleet, Probe, Window};
use crate::janus::JanusProc;
use crate::media::Publish;
use crate::participant::Ctrl;
use crate::payload::{now_us, Kind};
use crate::report::{self, table, Figures};
use crate::server::ServerProc;
use crate::sys::{self, Pid};

/// Command-line options shared by the scenarios.
#[derive(Debug, Clone)]
pub struct Opts {
    /// Use a running parlor at this URL instead of starting one.
    pub url: Option<String>,
    /// With `url`: the server's pid, to measure it.
    pub server_pid: Option<u32>,
    /// The parlor binary to start.
    pub server_bin: PathBuf,
    /// `PARLOR_MEDIA__WORKERS` for the started server.
    pub workers: usize,
    /// Generator media threads.
    pub threads: usize,
    /// Measured window, s (None: the scenario's default).
    pub duration: Option<f64>,
    /// Seconds between "everyone receives everything" and the window.
    pub warmup: f64,
    /// Where results go (None: nowhere).
    pub out: Option<PathBuf>,
    /// Suffix of the result file name.
    pub tag: Option<String>,
    /// Address the generator binds its sockets to.
    pub bind: IpAddr,
    /// Players per room (`mafia-12`, `rooms`, `phase-flip`).
    pub players: Option<usize>,
    /// `phase-flip`: receive-only participants who join once the game has started (spectators).
    pub audience: usize,
    /// `stage-100`: audience members publishing a camera, all in the host's `view` (at most 16).
    pub cameras: usize,
    /// `stage-100`: their video bitrate, kbit/s.
    pub camera_kbps: Option<u32>,
    /// Video bitrate, kbit/s.
    pub video_kbps: Option<u32>,
    /// `mafia-12`: simulcast layers each publisher sends (0: none, 2 or 3).
    pub simulcast: u8,
    /// `rooms`: rooms at the first step.
    pub start_rooms: usize,
    /// `rooms`: rooms added per step.
    pub step_rooms: usize,
    /// `rooms`: the most rooms to try.
    pub max_rooms: usize,
    /// Folder with Janus's configuration (and netns.sh).
    pub janus_dir: PathBuf,
    /// Print progress.
    pub verbose: bool,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            url: None,
            server_pid: None,
            server_bin: crate::server::default_binary(),
            workers: 1,
            threads: 2,
            duration: None,
            warmup: 3.0,
            out: None,
            tag: None,
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            players: None,
            audience: 0,
            cameras: 16,
            camera_kbps: None,
            video_kbps: None,
            simulcast: 0,
            start_rooms: 2,
            step_rooms: 2,
            max_rooms: 64,
            janus_dir: PathBuf::from(crate::janus::CONFIG_DIR),
            verbose: true,
        }
    }
}

impl Opts {
    pub(crate) fn say(&self, msg: impl AsRef<str>) {
        if self.verbose {
            eprintln!("[{}] {}", &report::utc(now_us())[11..], msg.as_ref());
        }
    }

    pub(crate) fn window(&self, default: f64) -> Duration {
        Duration::from_secs_f64(self.duration.unwrap_or(default).max(0.5))
    }

    pub(crate) fn log_path(&self, name: &str) -> PathBuf {
        let dir = self.out.clone().unwrap_or_else(std::env::temp_dir);
        let _ = std::fs::create_dir_all(&dir);
        dir.join(format!("{name}.log.tmp"))
    }
}

/// The SFU under test.
pub struct Target {
    /// How participants reach it.
    pub backend: Backend,
    /// What to measure.
    pub probe: Probe,
    /// Its RssAnon before anyone joined, KiB.
    pub idle_anon_kib: Option<u64>,
    /// Where the generator binds.
    pub bind: IpAddr,
    /// "parlor (1 worker)", "janus 1.1.2", …
    pub label: String,
    /// The started server's log (stderr).
    pub log: Option<PathBuf>,
    server: Option<ServerProc>,
    janus: Option<JanusProc>,
}

impl Target {
    /// parlor: started as a child process (unless `opts.url`), with `max_participants` per room.
    pub async fn parlor(opts: &Opts, name: &str, max_participants: usize) -> anyhow::Result<Target> {
        Target::parlor_env(opts, name, max_participants, &[]).await
    }

    /// [`Target::parlor`] with `extra` environment variables for the started server.
    pub async fn parlor_env(
        opts: &Opts,
        name: &str,
        max_participants: usize,
        extra: &[(String, String)],
    ) -> anyhow::Result<Target> {
        if let Some(url) = &opts.url {
            let ws = crate::parlor::ws_url(url);
            let host = ws.trim_start_matches("ws://").trim_end_matches("/ws");
            let metrics = host.parse().ok();
            let idle = opts.server_pid.and_then(|p| sys::anon_kib(Pid::Other(p)));
            return Ok(Target {
                backend: Backend::Parlor { url: ws },
                probe: Probe { pid: opts.server_pid, metrics },
                idle_anon_kib: idle,
                bind: opts.bind,
                label: format!("parlor at {url}"),
                log: None,
                server: None,
                janus: None,
            });
        }
        let mut env = vec![
            ("PARLOR_MEDIA__WORKERS".to_owned(), opts.workers.to_string()),
            ("PARLOR_ROOMS__MAX_PARTICIPANTS".to_owned(), max_participants.max(2).to_string()),
            ("PARLOR_MEDIA__MAX_PEERS_PER_WORKER".to_owned(), "5000".to_owned()),
            ("PARLOR_LOG__LEVEL".to_owned(), "warn".to_owned()),
        ];
        // A later entry wins (the process sees the last value set).
        env.extend(extra.iter().cloned());
        let log = opts.log_path(&format!("{name}-parlor"));
        let server = ServerProc::spawn(&opts.server_bin, &env, &log)?;
        opts.say(format!("parlor pid {} serving http://{} (media {:?})", server.pid, server.http, server.media));
        tokio::time::sleep(Duration::from_millis(500)).await;
        let idle = sys::anon_kib(Pid::Other(server.pid));
        Ok(Target {
            backend: Backend::Parlor { url: format!("ws://{}/ws", server.http) },
            probe: Probe { pid: Some(server.pid), metrics: Some(server.http) },
            idle_anon_kib: idle,
            bind: opts.bind,
            label: format!("parlor ({} worker{})", opts.workers, if opts.workers == 1 { "" } else { "s" }),
            log: Some(log),
            server: Some(server),
            janus: None,
        })
    }

    /// Janus, started from `opts.janus_dir` (inside the network namespace).
    pub async fn janus(opts: &Opts, name: &str) -> anyhow::Result<Target> {
        let proc_ = JanusProc::start(&opts.janus_dir, &opts.log_path(&format!("{name}-janus")))?;
        opts.say(format!("janus pid {} listening on {}", proc_.pid, crate::janus::WS_URL));
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let idle = sys::anon_kib(Pid::Other(proc_.pid));
        Ok(Target {
            backend: Backend::Janus { url: crate::janus::WS_URL.to_owned(), room: crate::janus::ROOM },
            probe: Probe { pid: Some(proc_.pid), metrics: None },
            idle_anon_kib: idle,
            bind: "127.1.0.1".parse().expect("address"),
            label: "janus 1.1.2 videoroom".into(),
            log: None,
            server: None,
            janus: Some(proc_),
        })
    }

    /// Stop what we started.
    pub fn stop(mut self) {
        if let Some(s) = self.server.take() {
            s.stop();
        }
        if let Some(j) = self.janus.take() {
            j.stop();
        }
    }
}

/// Publishing at `video_kbps` with Opus audio, 30 fps, a keyframe every 2 s.
pub fn av(video_kbps: u32) -> Publish {
    Publish {
        publisher: 0,
        audio: true,
        video_bps: video_kbps * 1000,
        fps: 30,
        keyframe_interval: Duration::from_secs(2),
        simulcast: 0,
    }
}

/// What a scenario measured.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The figures.
    pub figures: Figures,
    /// The inputs, as JSON.
    pub inputs: Value,
    /// The inputs, in words.
    pub inputs_text: String,
    /// Scenario-specific results.
    pub extra: Value,
}

/// Add a room of `publishers` (the first joins alone, so it is the host) and `audience`
/// receive-only participants. Returns their indexes.
pub(crate) async fn add_room(
    fleet: &mut Fleet,
    code: &str,
    publishers: usize,
    audience: usize,
    publish: &Publish,
) -> anyhow::Result<Vec<u32>> {
    let mut idxs = Vec::new();
    for i in 0..publishers {
        let idx = fleet.join(code, &format!("{code}-p{i}"), Some(publish.clone()))?;
        idxs.push(idx);
        if i == 0 {
            wait_welcome(fleet, idx).await?;
        }
    }
    for i in 0..audience {
        idxs.push(fleet.join(code, &format!("{code}-a{i}"), None)?);
    }
    Ok(idxs)
}

async fn wait_welcome(fleet: &Fleet, idx: u32) -> anyhow::Result<()> {
    let info = fleet.members[idx as usize].info.clone();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while info.welcome_us.load(Ordering::SeqCst) == 0 {
        if info.closed.load(Ordering::SeqCst) || tokio::time::Instant::now() >= deadline {
            bail!("participant #{idx} was not welcomed: {}", info.errors().join("; "));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Janus: once every publisher among `idxs` has a feed and a connected peer, subscribe each of
/// `idxs` to every other feed of its room.
async fn janus_subscribe(fleet: &Fleet, idxs: &[u32], timeout: Duration) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let waiting: Vec<u32> = idxs
            .iter()
            .copied()
            .filter(|&i| {
                let m = &fleet.members[i as usize];
                m.publish.is_some()
                    && (m.info.feed.load(Ordering::SeqCst) == 0
                        || fleet.shared().parts[i as usize].connected_us.load(Ordering::SeqCst) == 0)
            })
            .collect();
        if waiting.is_empty() {
            break;
        }
        if tokio::time::Instant::now() >= deadline {
            let errs: Vec<String> =
                waiting.iter().flat_map(|i| fleet.members[*i as usize].info.errors()).take(4).collect();
            bail!("{} Janus publishers not up after {timeout:?}: {}", waiting.len(), errs.join("; "));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for &i in idxs {
        let m = &fleet.members[i as usize];
        let feeds: Vec<u64> = fleet
            .members
            .iter()
            .filter(|o| o.idx != i && o.room == m.room && o.publish.is_some())
            .map(|o| o.info.feed.load(Ordering::SeqCst))
            .collect();
        if !feeds.is_empty() {
            m.ctrl(Ctrl::Subscribe(feeds.into_iter().map(|f| (f, None)).collect()));
        }
    }
    Ok(())
}

/// Every (subscriber, publisher, kind) that should flow when everyone in a room receives
/// every other publisher.
fn all_flows(fleet: &Fleet) -> Vec<(u32, u32, Kind)> {
    fleet.members.iter().flat_map(|s| fleet.expected(s.idx).into_iter().map(move |(p, k)| (s.idx, p, k))).collect()
}

fn room_inputs(
    rooms: usize,
    publishers: usize,
    audience: usize,
    publish: &Publish,
    window: Duration,
    opts: &Opts,
) -> (Value, String) {
    let v = json!({
        "rooms": rooms,
        "publishers_per_room": publishers,
        "audience_per_room": audience,
        "video_kbps": publish.video_bps / 1000,
        "video_fps": publish.fps,
        "keyframe_interval_s": publish.keyframe_interval.as_secs_f64(),
        "audio_pps": if publish.audio { 50 } else { 0 },
        "simulcast_layers": publish.simulcast,
        "window_s": window.as_secs_f64(),
        "warmup_s": opts.warmup,
        "generator_threads": opts.threads,
        "server_workers": opts.workers,
    });
    let who = if audience > 0 {
        format!("{publishers} publisher(s) + {audience} receive-only")
    } else {
        format!("{publishers} players, all receive all")
    };
    let video = if publish.simulcast >= 2 {
        let layers: Vec<String> = (0..publish.simulcast)
            .rev()
            .map(|d| (publish.video_bps / 3u32.pow(u32::from(d)) / 1000).to_string())
            .collect();
        format!("simulcast {} layers at {} kbit/s", publish.simulcast, layers.join(" / "))
    } else {
        format!("{} kbit/s", publish.video_bps / 1000)
    };
    let text = format!(
        "{rooms} room(s) × ({who}); video VP8 {video} {} fps, keyframe every {:.0} s and on request; audio Opus 50 packets/s; \
         window {:.0} s after {:.0} s warm-up; generator {} media thread(s)",
        publish.fps,
        publish.keyframe_interval.as_secs_f64(),
        window.as_secs_f64(),
        opts.warmup,
        opts.threads
    );
    (v, text)
}

/// Rooms where everyone receives every publisher: join, wait until all flows run, warm up,
/// measure one window.
pub async fn run_rooms_once(
    opts: &Opts,
    target: &Target,
    rooms: usize,
    publishers: usize,
    audience: usize,
    publish: Publish,
    window: Duration,
) -> anyhow::Result<Outcome> {
    let total = rooms * (publishers + audience);
    let mut fleet = Fleet::new(opts.threads, total, target.bind, target.backend.clone())?;
    let result = async {
        let mut idxs = Vec::new();
        for r in 0..rooms {
            idxs.extend(add_room(&mut fleet, &format!("bench-{r}"), publishers, audience, &publish).await?);
        }
        opts.say(format!("{}: {} participants joining", target.label, idxs.len()));
        if matches!(target.backend, Backend::Janus { .. }) {
            janus_subscribe(&fleet, &idxs, Duration::from_secs(60)).await?;
        }
        fleet.wait_flowing(&idxs, Duration::from_secs(60)).await?;
        opts.say(format!(
            "everyone receives everything; warming up {:.0} s, then measuring {:.0} s",
            opts.warmup,
            window.as_secs_f64()
        ));
        tokio::time::sleep(Duration::from_secs_f64(opts.warmup)).await;
        let w = fleet.measure(window, &target.probe).await;
        let flows = all_flows(&fleet);
        let figures = Figures::compute(&w, &fleet, Some(&flows), target.idle_anon_kib);
        let (inputs, inputs_text) = room_inputs(rooms, publishers, audience, &publish, window, opts);
        Ok::<_, anyhow::Error>(Outcome { figures, inputs, inputs_text, extra: counters_json(&w, &fleet) })
    }
    .await;
    fleet.leave_all().await;
    fleet.shutdown();
    result
}

pub(crate) fn counters_json(w: &Window, fleet: &Fleet) -> Value {
    let c = &w.counters;
    let errors: Vec<String> = fleet.members.iter().flat_map(|m| m.info.errors()).take(20).collect();
    let glares: u32 = fleet.members.iter().map(|m| m.info.glares.load(Ordering::Relaxed)).sum();
    json!({
        "generator": {
            "datagrams_in": c.datagrams_in, "datagrams_out": c.datagrams_out, "send_errors": c.send_errors,
            "rtp_in": c.rtp_in, "unmarked": c.unmarked, "keyframes_sent": c.keyframes_sent,
            "keyframe_requests": c.keyframe_requests, "late_skips": c.late_skips, "sdp_errors": c.sdp_errors,
            "rtc_errors": c.rtc_errors, "ice_disconnects": c.ice_disconnects, "glare_errors": glares,
            "offers_rolled_back": c.rollbacks,
        },
        "participant_errors": errors,
    })
}

/// Print one scenario's table and write its JSON.
pub fn publish_result(opts: &Opts, name: &str, title: &str, target: &str, o: &Outcome) -> anyhow::Result<Value> {
    let rows: Vec<Vec<String>> = o.figures.rows().into_iter().map(|(k, v)| vec![k.to_owned(), v]).collect();
    report::print_heading(title, target, sys::loadavg().unwrap_or(0.0), "before the run");
    println!("Inputs: {}\n", o.inputs_text);
    println!("{}", table(&["metric", "value"], &rows));
    let v = json!({
        "scenario": name,
        "target": target,
        "command": report::command_line(),
        "machine": report::machine_json(),
        "inputs": o.inputs,
        "figures": o.figures.to_json(),
        "details": o.extra,
    });
    save(opts, name, &v)?;
    Ok(v)
}

pub(crate) fn save(opts: &Opts, name: &str, v: &Value) -> anyhow::Result<()> {
    if let Some(dir) = &opts.out {
        let file = match &opts.tag {
            Some(t) => format!("{name}-{t}"),
            None => name.to_owned(),
        };
        let path = report::write_json(dir, &file, v)?;
        println!("(written to {})", path.display());
    }
    Ok(())
}

pub(crate) fn result_name(base: &str, opts: &Opts) -> String {
    if opts.url.is_some() {
        format!("{base}-url")
    } else {
        format!("{base}-w{}", opts.workers)
    }
}

/// `mafia-12`: one room, 12 players, all receive all, 600 kbit/s video + audio each.
pub async fn mafia12(opts: &Opts) -> anyhow::Result<Value> {
    let players = opts.players.unwrap_or(12);
    let target = Target::parlor(opts, "mafia-12", players).await?;
    let label = target.label.clone();
    let mut publish = av(opts.video_kbps.unwrap_or(600));
    if opts.simulcast >= 2 {
        if matches!(target.backend, Backend::Janus { .. }) {
            target.stop();
            bail!("--simulcast is for parlor only: the Janus dialect of the bench does not publish layers");
        }
        publish.simulcast = opts.simulcast;
    }
    let o = run_rooms_once(opts, &target, 1, players, 0, publish, opts.window(20.0)).await;
    target.stop();
    let base = if opts.simulcast >= 2 { format!("mafia-12-sim{}", opts.simulcast) } else { "mafia-12".to_owned() };
    publish_result(opts, &result_name(&base, opts), "mafia-12", &label, &o?)
}

/// `smoke`: a few seconds, one room of 3 publishers at 100 kbit/s and 1 receive-only member.
pub async fn smoke(opts: &Opts) -> anyhow::Result<Outcome> {
    let target = Target::parlor(opts, "smoke", 8).await?;
    let o = run_rooms_once(opts, &target, 1, 3, 1, av(opts.video_kbps.unwrap_or(100)), opts.window(3.0)).await;
    target.stop();
    o
}

/// `rooms`: 8-player rooms at 300 kbit/s, added step by step until loss reaches 1 % or the
/// CPU saturates; the count is the most rooms carried with < 1 % loss.
pub async fn rooms(opts: &Opts) -> anyhow::Result<Value> {
    let players = opts.players.unwrap_or(8);
    let publish = av(opts.video_kbps.unwrap_or(300));
    let window = opts.window(10.0);
    let target = Target::parlor(opts, "rooms", players).await?;
    let label = target.label.clone();
    let mut fleet = Fleet::new(opts.threads, opts.max_rooms * players, target.bind, target.backend.clone())?;
    let mut steps: Vec<(usize, Figures, Value)> = Vec::new();
    let mut stop_reason = String::from("reached --max-rooms");
    let mut count = 0usize;
    let mut rooms = 0usize;
    let run = async {
        loop {
            let add = if rooms == 0 { opts.start_rooms.max(1) } else { opts.step_rooms.max(1) };
            if rooms + add > opts.max_rooms {
                break;
            }
            let mut idxs = Vec::new();
            for r in rooms..rooms + add {
                idxs.extend(add_room(&mut fleet, &format!("bench-{r}"), players, 0, &publish).await?);
            }
            rooms += add;
            opts.say(format!("{rooms} rooms ({} participants): joining", rooms * players));
            if let Err(e) = fleet.wait_flowing(&idxs, Duration::from_secs(60)).await {
                stop_reason = format!("the new rooms did not get all their media at {rooms} rooms: {e}");
                break;
            }
            tokio::time::sleep(Duration::from_secs_f64(opts.warmup)).await;
            let w = fleet.measure(window, &target.probe).await;
            let flows = all_flows(&fleet);
            let f = Figures::compute(&w, &fleet, Some(&flows), target.idle_anon_kib);
            let loss = f.loss_pct.unwrap_or(100.0);
            opts.say(format!(
                "{rooms} rooms: loss {loss:.3} %, server CPU {:.0} %, {:.2} µs/packet, {:.0} packets/s, machine {:.0} % busy, generator {:.0} %",
                f.server_cpu_pct.unwrap_or(0.0),
                f.server_us_per_packet.unwrap_or(0.0),
                f.pps,
                f.machine_busy_pct.unwrap_or(0.0),
                f.generator_cpu_pct
            ));
            // A pegged worker is not a stop by itself: loss decides, one step later.
            let server_saturated = f.server_cpu_pct.is_some_and(|c| c >= 99.0 * opts.workers as f64);
            // Our own processes only: on a shared machine others' load must not end the count
            // (it shows as loss, the real criterion, if it starves us).
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
            let ours = f.server_cpu_pct.unwrap_or(0.0) + f.generator_cpu_pct;
            let machine_saturated = ours >= 95.0 * cores;
            let rate = f.generator_rate_pct.unwrap_or(100.0);
            steps.push((rooms, f, counters_json(&w, &fleet)));
            if rate < 98.0 {
                // A starved generator sends less: "no loss" would then overstate what was carried.
                stop_reason = format!("the generator fell behind (sent {rate:.1} % of its audio) at {rooms} rooms");
                break;
            }
            if loss >= 1.0 {
                stop_reason = format!("loss {loss:.2} % ≥ 1 % at {rooms} rooms");
                break;
            }
            count = rooms;
            if server_saturated {
                stop_reason = format!("server CPU saturated ({} worker(s)) at {rooms} rooms", opts.workers);
                break;
            }
            if machine_saturated {
                stop_reason = format!("server + generator use ≥ 95 % of all cores at {rooms} rooms");
                break;
            }
        }
        Ok::<_, anyhow::Error>(())
    }
    .await;
    fleet.leave_all().await;
    fleet.shutdown();
    target.stop();
    run?;
    let header = [
        "rooms",
        "participants",
        "loss %",
        "server CPU µs/pkt",
        "server CPU % core",
        "forwarded pkt/s",
        "latency p50/p99 ms",
        "RSS/participant KiB",
        "join p95 ms",
        "generator CPU % core",
        "machine busy %",
        "generator rate %",
    ];
    let rows: Vec<Vec<String>> = steps
        .iter()
        .map(|(r, f, _)| {
            vec![
                r.to_string(),
                f.participants.to_string(),
                f.loss_pct.map_or("n/a".into(), |l| format!("{l:.3}")),
                f.server_us_per_packet.map_or("n/a".into(), |v| format!("{v:.2}")),
                f.server_cpu_pct.map_or("n/a".into(), |v| format!("{v:.0}")),
                format!("{:.0}", f.pps),
                format!("{:.2} / {:.2}", f.latency_p50_ms, f.latency_p99_ms),
                f.rss_per_participant_kib.map_or("n/a".into(), |v| format!("{v:.0}")),
                f.join_ms.map_or("n/a".into(), |j| format!("{:.0}", j.1)),
                format!("{:.0}", f.generator_cpu_pct),
                f.machine_busy_pct.map_or("n/a".into(), |v| format!("{v:.0}")),
                f.generator_rate_pct.map_or("n/a".into(), |v| format!("{v:.1}")),
            ]
        })
        .collect();
    let (cores, model) = sys::cpu_info();
    println!("\n### rooms — {label}\n");
    println!("`{}`  ", report::command_line());
    println!("{} UTC, {cores} × {model}, load average {:.2}  ", report::utc(now_us()), sys::loadavg().unwrap_or(0.0));
    println!(
        "Inputs: rooms of {players} players, all receive all; video VP8 {} kbit/s 30 fps, keyframe every 2 s; audio Opus 50 packets/s; \
         start {} room(s), +{} per step, {:.0} s window per step after {:.0} s warm-up; generator {} media thread(s)\n",
        publish.video_bps / 1000,
        opts.start_rooms,
        opts.step_rooms,
        window.as_secs_f64(),
        opts.warmup,
        opts.threads
    );
    println!("{}", table(&header, &rows));
    println!("**{count} rooms** carried with < 1 % loss; stopped: {stop_reason}.");
    let v = json!({
        "scenario": "rooms",
        "target": label,
        "command": report::command_line(),
        "machine": report::machine_json(),
        "inputs": {
            "players_per_room": players, "video_kbps": publish.video_bps / 1000, "start_rooms": opts.start_rooms,
            "step_rooms": opts.step_rooms, "max_rooms": opts.max_rooms, "window_s": window.as_secs_f64(),
            "warmup_s": opts.warmup, "generator_threads": opts.threads, "server_workers": opts.workers,
        },
        "rooms_carried": count,
        "stopped_because": stop_reason,
        "steps": steps.iter().map(|(r, f, c)| json!({"rooms": r, "figures": f.to_json(), "details": c})).collect::<Vec<_>>(),
    });
    save(opts, &result_name("rooms", opts), &v)?;
    Ok(v)
}

// ---------------------------------------------------------------------------------------------
// phase-flip

/// What a subscriber may receive from each publisher, from one point in time on.
#[derive(Debug, Clone)]
struct Point {
    /// When the subscriber learned it (arrival of the `phase` message; of the `media_state`
    /// for a change within a phase), µs.
    from: u64,
    /// The phase's `ends_at` (server clock = our clock), µs.
    ends_at: Option<u64>,
    /// Phase name.
    phase: String,
    /// Publisher index → (audio, video).
    allowed: HashMap<u32, (bool, bool)>,
}

/// Build one subscriber's timeline from its `phase` and `media_state` messages.
fn timeline(msgs: &[(u64, Value)], id_to_idx: &HashMap<String, u32>) -> Vec<Point> {
    let mut out: Vec<Point> = Vec::new();
    let mut phase: Option<(u64, Option<u64>, String)> = None;
    for (at, m) in msgs {
        match m["type"].as_str() {
            Some("phase") => {
                let ends = m["ends_at"].as_u64().map(|ms| ms * 1000);
                phase = Some((*at, ends, m["phase"].as_str().unwrap_or("?").to_owned()));
            }
            Some("media_state") => {
                let mut allowed = HashMap::new();
                if let Some(map) = m["receive"].as_object() {
                    for (id, r) in map {
                        if let Some(&i) = id_to_idx.get(id) {
                            allowed.insert(
                                i,
                                (r["audio"].as_bool().unwrap_or(false), r["video"].as_bool().unwrap_or(false)),
                            );
                        }
                    }
                }
                let (from, ends_at, name) = match phase.take() {
                    Some(p) => p,
                    None => {
                        let last = out.last();
                        (*at, last.and_then(|p| p.ends_at), last.map_or("lobby".into(), |p| p.phase.clone()))
                    }
                };
                out.push(Point { from, ends_at, phase: name, allowed });
            }
            _ => {}
        }
    }
    out
}

fn allows(p: &Point, publisher: u32, kind: Kind) -> bool {
    p.allowed.get(&publisher).is_none_or(|(a, v)| match kind {
        Kind::Audio => *a,
        Kind::Video => *v,
    })
}

/// A packet sent before this margin ahead of a phase's `ends_at` reached the server before the
/// next phase's routes could apply (one-way latency is far below it), so it must obey the
/// current phase.
const REALLOW_GUARD_US: u64 = 5_000;
/// Margin around phase switches excluded from the loss count.
const LOSS_MARGIN_US: u64 = 100_000;

/// The game of `phase-flip` and `soak`: 2 mafia, day and night of 2 s each, the steps in
/// between as short as the engine allows; nobody acts, so nobody dies and it never ends.
pub(crate) fn flip_settings() -> Value {
    json!({"mafia": 2, "phase_seconds": {
        "role_reveal": 0.2, "night": 2, "dawn": 0.05, "day": 2, "nomination": 0.05,
        "defense": 0.05, "judgment": 0.05, "game_over": 1}})
}

/// `phase-flip`: 12 players in a Mafia game whose policy switches between day and night every
/// ~2 s for 60 s; with `--audience N`, N receive-only participants join once the game has
/// started (spectators), so every switch changes each publisher's reach to ~N + 12 subscribers.
pub async fn phase_flip(opts: &Opts) -> anyhow::Result<Value> {
    let players = opts.players.unwrap_or(12);
    let audience = opts.audience;
    let publish = av(opts.video_kbps.unwrap_or(600));
    let window = opts.window(60.0);
    let target = Target::parlor(opts, "phase-flip", players + audience).await?;
    let label = target.label.clone();
    let mut fleet = Fleet::new(opts.threads, players + audience, target.bind, target.backend.clone())?;
    let settings = flip_settings();
    let metrics = target.probe.metrics;
    let run = async {
        let idxs = add_room(&mut fleet, "phase-flip", players, 0, &publish).await?;
        fleet.wait_flowing(&idxs, Duration::from_secs(60)).await?;
        tokio::time::sleep(Duration::from_secs_f64(opts.warmup)).await;
        fleet.shared().set_record(true);
        opts.say(format!(
            "everyone receives everything; host starts the game{}, playing for {:.0} s",
            if audience > 0 { format!(", then {audience} spectators join") } else { String::new() },
            window.as_secs_f64()
        ));
        fleet.members[0].ctrl(Ctrl::Send(json!({"type": "start_game", "settings": settings})));
        if audience > 0 {
            join_audience(&mut fleet, players, audience, opts).await?;
        }
        let before = scrape_switches(metrics).await;
        let w = fleet.measure(window, &target.probe).await;
        let after = scrape_switches(metrics).await;
        fleet.shared().set_record(false);
        Ok::<_, anyhow::Error>((w, before, after))
    }
    .await;
    let outcome = match &run {
        Ok((w, _, _)) => analyse_phase_flip(w, &fleet, &target, &publish, window, opts),
        Err(e) => Err(anyhow!("{e:#}")),
    };
    fleet.leave_all().await;
    fleet.shutdown();
    target.stop();
    let o = outcome?;
    let (_, before, after) = run?;
    let mut v = publish_result(opts, &result_name("phase-flip", opts), "phase-flip", &label, &o)?;
    v["phase_flip"] = o.extra["phase_flip"].clone();
    match (before, after) {
        (Some(before), Some(after)) => {
            let in_window = after.since(&before);
            println!(
                "phase switch, timer firing -> routes applied, server /metrics, {} seats: in the window {} switches, mean {}, max {}; \
                 since the server started {} switches, mean {}, max {:.0} µs",
                players + audience,
                in_window.count,
                in_window.mean_us().map_or("n/a".into(), |m| format!("{m:.0} µs")),
                in_window.max_bound_us().map_or("above the last histogram bucket".into(), |m| format!("≤ {m:.0} µs (histogram bucket)")),
                after.count,
                after.mean_us().map_or("n/a".into(), |m| format!("{m:.0} µs")),
                after.max * 1e6,
            );
            v["phase_flip"]["switch_apply"] = json!({
                "seats": players + audience,
                "window": {"count": in_window.count, "mean_us": in_window.mean_us(), "max_bucket_us": in_window.max_bound_us()},
                "since_start": {"count": after.count, "mean_us": after.mean_us(), "max_us": after.max * 1e6},
            });
        }
        _ => println!("phase switch apply time: the server exposes no parlor_phase_switch_apply_seconds"),
    }
    Ok(v)
}

/// Join `audience` receive-only participants to the running game (once the host has seen its
/// first phase), and wait until each has connected and received every player's audio and video
/// (spectators receive everyone by day).
async fn join_audience(fleet: &mut Fleet, players: usize, audience: usize, opts: &Opts) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !fleet.members[0].info.game_messages().iter().any(|(_, m)| m["type"] == "phase") {
        if tokio::time::Instant::now() >= deadline {
            bail!("the game did not start within 20 s: {:?}", fleet.members[0].info.errors());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut idxs = Vec::new();
    for i in 0..audience {
        idxs.push(fleet.join("phase-flip", &format!("phase-flip-a{i}"), None)?);
    }
    opts.say(format!("{audience} spectators joining the game"));
    let want: u32 = fleet.members[..players].iter().map(|m| m.kinds().len() as u32).sum();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        let missing: Vec<u32> = idxs
            .iter()
            .copied()
            .filter(|&i| fleet.shared().parts[i as usize].streams_seen.load(Ordering::Relaxed) < want)
            .collect();
        if missing.is_empty() {
            break;
        }
        if tokio::time::Instant::now() >= deadline {
            let detail: Vec<String> = missing
                .iter()
                .take(5)
                .map(|&i| {
                    let got = fleet.shared().parts[i as usize].streams_seen.load(Ordering::Relaxed);
                    format!("#{i}: {got}/{want} streams {:?}", fleet.members[i as usize].info.errors())
                })
                .collect();
            bail!("{} of {audience} spectators did not receive every player: {}", missing.len(), detail.join(", "));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    opts.say("every spectator receives every player");
    Ok(())
}

/// The server's timer-driven phase-switch apply times (`parlor_phase_switch_apply_seconds`,
/// cause "timer"), read at one instant.
#[derive(Debug, Clone, Default)]
struct SwitchStats {
    count: u64,
    sum: f64,
    /// The largest since the server started, s.
    max: f64,
    /// (upper bound s, cumulative count), ascending, without +Inf.
    buckets: Vec<(f64, u64)>,
}

impl SwitchStats {
    fn parse(body: &str) -> Option<SwitchStats> {
        const NAME: &str = "parlor_phase_switch_apply_seconds";
        let timer = |name: &str| crate::fleet::metric_sum(body, &format!("{name}{{cause=\"timer\"}}"));
        let prefix = format!("{NAME}_bucket{{cause=\"timer\",le=\"");
        let mut buckets: Vec<(f64, u64)> = body
            .lines()
            .filter_map(|l| {
                let (le, rest) = l.strip_prefix(&prefix)?.split_once("\"}")?;
                Some((le.parse().ok()?, rest.trim().parse().ok()?))
            })
            .filter(|(le, _): &(f64, u64)| le.is_finite())
            .collect();
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        Some(SwitchStats {
            count: timer(&format!("{NAME}_count"))? as u64,
            sum: timer(&format!("{NAME}_sum"))?,
            max: timer("parlor_phase_switch_apply_max_seconds").unwrap_or(0.0),
            buckets,
        })
    }

    /// What was added since `before` (the lifetime maximum stays as it is).
    fn since(&self, before: &SwitchStats) -> SwitchStats {
        let old = |le: f64| before.buckets.iter().find(|b| b.0 == le).map_or(0, |b| b.1);
        SwitchStats {
            count: self.count.saturating_sub(before.count),
            sum: (self.sum - before.sum).max(0.0),
            max: self.max,
            buckets: self.buckets.iter().map(|&(le, n)| (le, n.saturating_sub(old(le)))).collect(),
        }
    }

    fn mean_us(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum / self.count as f64 * 1e6)
    }

    /// The smallest bucket bound holding every observation, µs (None above the last bound).
    fn max_bound_us(&self) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        self.buckets.iter().find(|b| b.1 >= self.count).map(|b| b.0 * 1e6)
    }
}

async fn scrape_switches(addr: Option<std::net::SocketAddr>) -> Option<SwitchStats> {
    let addr = addr?;
    let body = tokio::task::spawn_blocking(move || crate::fleet::scrape_metrics(addr)).await.ok().flatten()?;
    SwitchStats::parse(&body)
}

fn analyse_phase_flip(
    w: &Window,
    fleet: &Fleet,
    target: &Target,
    publish: &Publish,
    window: Duration,
    opts: &Opts,
) -> anyhow::Result<Outcome> {
    if let Some(path) = std::env::var_os("PBENCH_DUMP") {
        // Diagnostics: every received packet and every participant's game messages.
        use std::io::Write;
        if let Ok(mut f) = std::fs::File::create(&path) {
            for r in &w.records {
                let _ = writeln!(
                    f,
                    "rx,{},{},{},{},{},{}",
                    r.owner,
                    r.publisher,
                    r.kind.as_str(),
                    r.keyframe as u8,
                    r.sent_us,
                    r.recv_us
                );
            }
            for m in &fleet.members {
                for (at, v) in m.info.game_messages() {
                    let _ = writeln!(
                        f,
                        "msg,{},{},{},{},{}",
                        m.idx,
                        at,
                        v["type"].as_str().unwrap_or(""),
                        v["phase"].as_str().unwrap_or(""),
                        v
                    );
                }
            }
        }
    }
    let id_to_idx: HashMap<String, u32> =
        fleet.members.iter().filter_map(|m| m.info.id().map(|id| (id, m.idx))).collect();
    let timelines: HashMap<u32, Vec<Point>> =
        fleet.members.iter().map(|m| (m.idx, timeline(&m.info.game_messages(), &id_to_idx))).collect();
    // Players publish and were there from the start; the audience (receive-only, joined during
    // the game) is checked for leaks only: its loss while joining is not the switch's.
    let is_player = |m: &&crate::fleet::Member| m.publish.is_some();
    let audience = fleet.members.iter().filter(|m| !is_player(m)).count();
    let phases_seen = fleet.members.iter().filter(is_player).map(|m| timelines[&m.idx].len()).min().unwrap_or(0);
    if phases_seen < 3 {
        bail!(
            "the game did not run: a participant saw only {phases_seen} phase(s); errors: {:?}",
            fleet.members.iter().flat_map(|m| m.info.errors()).take(5).collect::<Vec<_>>()
        );
    }
    let by_send = BySend::index(w);

    let mut leaked: BTreeMap<String, u64> = BTreeMap::new();
    let mut leaked_total = 0u64;
    let (mut audience_leaked, mut audience_checked) = (0u64, 0u64);
    let mut leak_examples: Vec<Value> = Vec::new();
    let mut reallow_band = 0u64;
    let mut checked = 0u64;
    let mut unmute_ms: Vec<f64> = Vec::new();
    let mut keyframe_before_phase = 0u64;
    let mut unmute_missing = 0u64;
    let (mut allowed_expected, mut allowed_received) = (0u64, 0u64);
    let mut denials = 0u64;
    let end_us = w.t1;

    for s in &fleet.members {
        let tl = &timelines[&s.idx];
        let player = is_player(&s);
        for p in fleet.members.iter().filter(|p| p.idx != s.idx).filter(is_player) {
            for kind in Kind::ALL {
                let recs = by_send.received(s.idx, p.idx, kind);
                // Leaks: sent after s learned a phase that denies it, and early enough that the
                // server had not yet moved on to the next phase.
                for r in recs {
                    let Some(k) = tl.iter().rposition(|pt| pt.from <= r.sent_us) else { continue };
                    if player {
                        checked += 1;
                    } else {
                        audience_checked += 1;
                    }
                    let pt = &tl[k];
                    if allows(pt, p.idx, kind) {
                        continue;
                    }
                    let next_from = tl.get(k + 1).map_or(u64::MAX, |n| n.from);
                    let deny_end = pt.ends_at.map_or(next_from, |e| e.saturating_sub(REALLOW_GUARD_US)).min(next_from);
                    if r.sent_us < deny_end {
                        if player {
                            leaked_total += 1;
                            *leaked.entry(pt.phase.clone()).or_default() += 1;
                        } else {
                            audience_leaked += 1;
                        }
                        if leak_examples.len() < 20 {
                            leak_examples.push(json!({
                                "subscriber": s.idx, "audience": !player, "publisher": p.idx, "kind": kind.as_str(), "phase": pt.phase,
                                "sent_after_phase_ms": (r.sent_us as f64 - pt.from as f64) / 1000.0,
                                "sent_before_phase_end_ms": (deny_end as f64 - r.sent_us as f64) / 1000.0,
                                "latency_ms": (r.recv_us as f64 - r.sent_us as f64) / 1000.0,
                            }));
                        }
                    } else if player {
                        reallow_band += 1;
                    }
                }
                if !player {
                    continue;
                }
                // Loss while allowed, away from the switches (video from the first keyframe on).
                for (k, pt) in tl.iter().enumerate() {
                    if !allows(pt, p.idx, kind) {
                        continue;
                    }
                    let mut from = pt.from + LOSS_MARGIN_US;
                    let to = tl.get(k + 1).map_or(end_us, |n| n.from.min(end_us)).saturating_sub(LOSS_MARGIN_US);
                    if kind == Kind::Video && k > 0 && !allows(&tl[k - 1], p.idx, kind) {
                        let first_key =
                            recs.iter().find(|r| r.keyframe && r.sent_us >= tl[k - 1].from).map(|r| r.sent_us);
                        from = from.max(first_key.unwrap_or(u64::MAX));
                    }
                    if from >= to || from < w.t0 {
                        continue;
                    }
                    allowed_expected += by_send.sent_between(p.idx, kind, from, to);
                    let lo = recs.partition_point(|r| r.sent_us < from);
                    let hi = recs.partition_point(|r| r.sent_us < to);
                    allowed_received += (hi - lo) as u64;
                }
            }
            if !player || !p.kinds().contains(&Kind::Video) {
                continue;
            }
            // Unmute → first keyframe: each time video from p becomes allowed again for s.
            let vrecs = by_send.received(s.idx, p.idx, Kind::Video);
            for k in 1..tl.len() {
                if allows(&tl[k - 1], p.idx, Kind::Video) || !allows(&tl[k], p.idx, Kind::Video) {
                    continue;
                }
                let t_deny = tl[k - 1].from;
                let t_allow = tl[k].from;
                let until = tl[k + 1..].iter().find(|n| !allows(n, p.idx, Kind::Video)).map_or(u64::MAX, |n| n.from);
                if t_allow < w.t0 || t_allow + 1_000_000 > end_us {
                    continue; // outside the window, or too close to its end to judge
                }
                denials += 1;
                let first = vrecs
                    .iter()
                    .filter(|r| r.keyframe && r.sent_us >= t_deny && r.recv_us < until)
                    .min_by_key(|r| r.recv_us);
                match first {
                    Some(r) => {
                        if r.recv_us < t_allow {
                            keyframe_before_phase += 1;
                        }
                        unmute_ms.push(r.recv_us.saturating_sub(t_allow) as f64 / 1000.0);
                    }
                    None => unmute_missing += 1,
                }
            }
        }
    }
    let in_window = |p: &&Point| p.from >= w.t0 && p.from < w.t1;
    let switches = timelines[&0].iter().filter(in_window).filter(|p| p.phase == "night" || p.phase == "day").count();
    let rounds = timelines[&0].iter().filter(in_window).filter(|p| p.phase == "night").count();
    let mut u = unmute_ms.clone();
    let p50 = crate::hist::quantile_of(&mut u, 0.5);
    let p95 = crate::hist::quantile_of(&mut u, 0.95);
    let max = crate::hist::quantile_of(&mut u, 1.0);
    let audience_received: u64 =
        w.streams.values().filter(|st| fleet.members[st.owner as usize].publish.is_none()).map(|st| st.window).sum();
    let mut figures = Figures::compute(w, fleet, None, target.idle_anon_kib);
    if allowed_expected > 0 {
        figures.expected = allowed_expected;
        figures.received = allowed_received.min(allowed_expected);
        figures.loss_pct = Some(100.0 * (allowed_expected - figures.received) as f64 / allowed_expected as f64);
    }
    let extra = json!({
        "phase_flip": {
            "leaked_packets": leaked_total,
            "leaked_by_phase": leaked,
            "leak_examples": leak_examples,
            "packets_checked": checked,
            "packets_in_reallow_band": reallow_band,
            "reallow_guard_ms": REALLOW_GUARD_US as f64 / 1000.0,
            "nights": rounds,
            "day_night_switches_seen_by_host": switches,
            "video_reallows": denials,
            "unmute_to_keyframe_ms_p50": p50,
            "unmute_to_keyframe_ms_p95": p95,
            "unmute_to_keyframe_ms_max": max,
            "unmute_samples": unmute_ms.len(),
            "keyframe_arrived_before_phase_message": keyframe_before_phase,
            "reallows_without_keyframe": unmute_missing,
            "loss_counted": "packets sent while allowed, 100 ms away from each switch; video from the first keyframe after a re-allow; players only",
            "audience": audience,
            "audience_packets_checked": audience_checked,
            "audience_leaked_packets": audience_leaked,
            "audience_packets_received_in_window": audience_received,
        },
        "details": counters_json(w, fleet),
    });
    let players = fleet.members.len() - audience;
    let (mut inputs, mut inputs_text) = room_inputs(1, players, audience, publish, window, opts);
    inputs["game_settings"] = flip_settings();
    inputs_text.push_str(
        "; start_game {mafia: 2, night 2 s, day 2 s, role_reveal 0.2 s, dawn/nomination 0.05 s}, nobody acts",
    );
    if audience > 0 {
        inputs_text.push_str(&format!(
            "; the {audience} receive-only participants join after the game started (spectators: every living player by day, nobody by night), \
             and the window starts once each receives every player"
        ));
    }
    figures.join_ms = report::join_times_of(fleet, |m| m.publish.is_some());
    let o = Outcome { figures, inputs, inputs_text, extra };
    // The scenario's own rows go under the common ones.
    println!("\nphase-flip: {rounds} nights in {:.0} s; leaked {leaked_total} of {checked} packets checked ({reallow_band} in the {:.0} ms re-allow band); \
              unmute → keyframe p50 {} / p95 {} / max {} ms over {} re-allows ({} with no keyframe, {} keyframes before the phase message)",
        window.as_secs_f64(), REALLOW_GUARD_US as f64 / 1000.0,
        p50.map_or("n/a".into(), |v| format!("{v:.1}")), p95.map_or("n/a".into(), |v| format!("{v:.1}")),
        max.map_or("n/a".into(), |v| format!("{v:.1}")), unmute_ms.len(), unmute_missing, keyframe_before_phase);
    if audience > 0 {
        println!(
            "audience: {audience} spectators received {audience_received} packets sent in the window; \
             leaked to them {audience_leaked} of {audience_checked} packets checked"
        );
    }
    Ok(o)
}

// ---------------------------------------------------------------------------------------------
// compare

/// `compare mafia-12` / `compare stage-100` / `compare stage-room`: the same scenario against
/// parlor and Janus, one after the other, inside the network namespace Janus needs.
pub async fn compare(opts: &Opts, which: &str) -> anyhow::Result<Value> {
    let (rooms_publishers, audience, kbps, default_window) = match which {
        "mafia-12" => (opts.players.unwrap_or(12), 0, opts.video_kbps.unwrap_or(600), 20.0),
        "stage-100" => (1, opts.players.unwrap_or(100).saturating_sub(1), opts.video_kbps.unwrap_or(1000), 20.0),
        // `stage-room` is `stage::compare_stage_room`, which prints through `print_compare`.
        other => bail!("compare takes mafia-12, stage-100 or stage-room, not {other}"),
    };
    let window = opts.window(default_window);
    let publish = av(kbps);
    let parlor_target = Target::parlor(opts, &format!("compare-{which}"), rooms_publishers + audience).await?;
    let parlor_label = parlor_target.label.clone();
    let p = run_rooms_once(opts, &parlor_target, 1, rooms_publishers, audience, publish.clone(), window).await;
    parlor_target.stop();
    let p = p?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let janus_target = Target::janus(opts, &format!("compare-{which}")).await?;
    let janus_label = janus_target.label.clone();
    let j = run_rooms_once(opts, &janus_target, 1, rooms_publishers, audience, publish, window).await;
    janus_target.stop();
    let j = j?;
    print_compare(opts, which, &(parlor_label, p), &(janus_label, j))
}

/// Print the side-by-side table of a `compare` run and write its JSON.
pub fn print_compare(
    opts: &Opts,
    which: &str,
    (parlor_label, p): &(String, Outcome),
    (janus_label, j): &(String, Outcome),
) -> anyhow::Result<Value> {
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
        _ => "n/a".into(),
    };
    let (pf, jf) = (&p.figures, &j.figures);
    let fmt = |v: Option<f64>, d: usize| v.map_or("n/a".into(), |v| format!("{v:.d$}"));
    let rows = vec![
        vec![
            "server CPU per forwarded packet (µs)".into(),
            fmt(pf.server_us_per_packet, 2),
            fmt(jf.server_us_per_packet, 2),
            ratio(pf.server_us_per_packet, jf.server_us_per_packet),
        ],
        vec![
            "server CPU (% of a core)".into(),
            fmt(pf.server_cpu_pct, 1),
            fmt(jf.server_cpu_pct, 1),
            ratio(pf.server_cpu_pct, jf.server_cpu_pct),
        ],
        vec![
            "forwarded packets/s".into(),
            format!("{:.0}", pf.pps),
            format!("{:.0}", jf.pps),
            ratio(Some(pf.pps), Some(jf.pps)),
        ],
        vec!["loss (%)".into(), fmt(pf.loss_pct, 3), fmt(jf.loss_pct, 3), String::new()],
        vec![
            "added latency p50 (ms)".into(),
            format!("{:.2}", pf.latency_p50_ms),
            format!("{:.2}", jf.latency_p50_ms),
            ratio(Some(pf.latency_p50_ms), Some(jf.latency_p50_ms)),
        ],
        vec![
            "added latency p99 (ms)".into(),
            format!("{:.2}", pf.latency_p99_ms),
            format!("{:.2}", jf.latency_p99_ms),
            ratio(Some(pf.latency_p99_ms), Some(jf.latency_p99_ms)),
        ],
        vec![
            "server memory per participant (anon RSS KiB)".into(),
            fmt(pf.rss_per_participant_kib, 0),
            fmt(jf.rss_per_participant_kib, 0),
            ratio(pf.rss_per_participant_kib, jf.rss_per_participant_kib),
        ],
        vec![
            "join time p50 (ms)".into(),
            fmt(pf.join_ms.map(|j| j.0), 0),
            fmt(jf.join_ms.map(|j| j.0), 0),
            String::new(),
        ],
        vec![
            "generator CPU (% of a core)".into(),
            format!("{:.1}", pf.generator_cpu_pct),
            format!("{:.1}", jf.generator_cpu_pct),
            String::new(),
        ],
        vec!["machine busy (%)".into(), fmt(pf.machine_busy_pct, 1), fmt(jf.machine_busy_pct, 1), String::new()],
        vec![
            "generator kept its send rate (% of nominal audio)".into(),
            fmt(pf.generator_rate_pct, 1),
            fmt(jf.generator_rate_pct, 1),
            String::new(),
        ],
    ];
    let (cores, model) = sys::cpu_info();
    println!("\n### compare {which} — {parlor_label} vs {janus_label}\n");
    println!("`{}`  ", report::command_line());
    println!(
        "{} UTC, {cores} × {model}, load average {:.2}; both inside network namespace parlor-net  ",
        report::utc(now_us()),
        sys::loadavg().unwrap_or(0.0)
    );
    if let Some(n) = sys::nice_of("self").filter(|n| *n != 0) {
        println!("generator at niceness {n}, both servers at 0  ");
    }
    println!("Inputs: {}\n", p.inputs_text);
    println!("{}", table(&["metric", "parlor", "janus", "parlor / janus"], &rows));
    let v = json!({
        "scenario": format!("compare-{which}"),
        "command": report::command_line(),
        "machine": report::machine_json(),
        "inputs": p.inputs,
        "parlor": {"target": parlor_label, "figures": pf.to_json(), "details": p.extra},
        "janus": {"target": janus_label, "figures": jf.to_json(), "details": j.extra},
        "ratio_cpu_per_packet": match (pf.server_us_per_packet, jf.server_us_per_packet) { (Some(a), Some(b)) if b > 0.0 => Some(a / b), _ => None },
    });
    save(opts, &format!("compare-{which}"), &v)?;
    Ok(v)
}

/// Fail early with a clear message when a scenario name is unknown.
pub fn check_name(name: &str) -> anyhow::Result<()> {
    match name {
        "mafia-12" | "rooms" | "stage-100" | "phase-flip" | "smoke" | "compare" => Ok(()),
        other => Err(anyhow!("unknown scenario {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::SwitchStats;

    /// Two readings of `/metrics` as the server writes them (src/metrics.rs), 3 then 5 switches.
    fn body(count: u64, sum: f64, max: f64, buckets: &[(&str, u64)]) -> String {
        let mut s = String::from("# TYPE parlor_phase_switch_apply_seconds histogram\n");
        for (le, n) in buckets {
            s.push_str(&format!("parlor_phase_switch_apply_seconds_bucket{{cause=\"timer\",le=\"{le}\"}} {n}\n"));
            s.push_str(&format!("parlor_phase_switch_apply_seconds_bucket{{cause=\"input\",le=\"{le}\"}} 7\n"));
        }
        s.push_str(&format!("parlor_phase_switch_apply_seconds_bucket{{cause=\"timer\",le=\"+Inf\"}} {count}\n"));
        s.push_str(&format!("parlor_phase_switch_apply_seconds_sum{{cause=\"timer\"}} {sum}\n"));
        s.push_str(&format!("parlor_phase_switch_apply_seconds_count{{cause=\"timer\"}} {count}\n"));
        s.push_str("parlor_phase_switch_apply_seconds_count{cause=\"input\"} 7\n");
        s.push_str(&format!("parlor_phase_switch_apply_max_seconds{{cause=\"timer\"}} {max}\n"));
        s
    }

    #[test]
    fn switch_times_over_a_window_come_from_two_readings() {
        let before =
            SwitchStats::parse(&body(3, 0.0009, 0.0005, &[("0.0001", 1), ("0.00025", 2), ("0.0005", 3), ("0.001", 3)]))
                .unwrap();
        let after =
            SwitchStats::parse(&body(5, 0.0011, 0.0005, &[("0.0001", 3), ("0.00025", 4), ("0.0005", 5), ("0.001", 5)]))
                .unwrap();
        assert_eq!((before.count, after.count), (3, 5));
        assert!((after.mean_us().unwrap() - 220.0).abs() < 1e-6, "the input cause is not mixed in");
        let w = after.since(&before);
        assert_eq!(w.count, 2);
        assert!((w.mean_us().unwrap() - 100.0).abs() < 1e-6);
        // Both new switches fell in the buckets up to 0.1 ms.
        assert_eq!(w.max_bound_us(), Some(100.0));
        assert_eq!(before.max_bound_us(), Some(500.0));
        assert_eq!(before.buckets.len(), 4, "+Inf is not a bound");
        let slow = SwitchStats::parse(&body(2, 3.0, 2.0, &[("0.5", 0), ("1", 1)])).unwrap();
        assert_eq!(slow.max_bound_us(), None, "one switch beyond the last finite bound");
        assert_eq!(SwitchStats::default().mean_us(), None);
        assert!(SwitchStats::parse("parlor_forwarded_packets_total 3\n").is_none(), "no such series");
    }
}
