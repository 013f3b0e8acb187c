//! `stage-100`: a real host-led stage room (kind `stage`, docs/PROTOCOL.md "Stage rooms").
//!
//! The host publishes video and audio to everyone; `--cameras` audience members (16) publish
//! a camera and a microphone and the host's `view` names them, so the server forwards their
//! video to the host and nothing of theirs to anyone else; the rest of the audience only
//! receives. During the measured window the host brings [`BROUGHT_UP`] of the cameras on
//! stage one after another (`stage {id, on: true}`) and sends each back (`on: false`).
//!
//! Besides the common figures (CPU per forwarded packet, added latency, memory per
//! participant) it reports, per stage change: the time from the host's `stage` to the first
//! keyframe of the newcomer's video at every audience member, the time from `stage` to its
//! `participant_updated` there, and the room's own apply time (input taken → routes applied
//! by the media worker, from the server's `routes applied` debug line). Leaks are judged by
//! send time: a packet an audience member receives from another audience member who was not
//! on stage when it was sent, or one sent after a subscriber learned that the publisher went
//! back to the audience, counts as leaked.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{anyhow, bail};
use serde_json::{json, Value};

use crate::bysend::BySend;
use crate::fleet::{Backend, Fleet, Window};
use crate::hist::quantile_of;
use crate::media::Publish;
use crate::participant::Ctrl;
use crate::payload::{now_us, Kind};
use crate::report::{self, table, Figures};
use crate::scenario::{av, publish_result, Opts, Outcome, Target};

/// Room code of the run.
const ROOM: &str = "stage-100";
/// How many of the cameras the host brings on stage during the window, one after another.
pub const BROUGHT_UP: usize = 3;
/// From the start of the window to the first `stage`.
const LEAD: Duration = Duration::from_secs(2);
/// How long each stays on stage.
const ON_STAGE: Duration = Duration::from_secs(4);
/// From sending one back to bringing the next up.
const BETWEEN: Duration = Duration::from_secs(2);
/// After the last is sent back, time left in the window to catch late leaks.
const TAIL: Duration = Duration::from_secs(3);
/// Audio delivery while on stage is counted from this long after a member learned of it to
/// this long before the host sent them back.
const DELIVERY_MARGIN_US: u64 = 100_000;

/// One stage change the host made.
#[derive(Debug, Clone)]
struct Step {
    /// The member brought up and sent back.
    who: u32,
    /// When the host's `stage {on: true}` was handed to its socket, µs.
    on_us: u64,
    /// When its `stage {on: false}` was, µs.
    off_us: u64,
}

/// The size of the run.
#[derive(Debug, Clone)]
struct Shape {
    participants: usize,
    cameras: usize,
    host: Publish,
    camera: Publish,
}

impl Shape {
    fn of(opts: &Opts) -> anyhow::Result<Shape> {
        let participants = opts.players.unwrap_or(100).max(2);
        let cameras = opts.cameras.min(participants - 1);
        if cameras < BROUGHT_UP {
            bail!("stage-100 needs at least {BROUGHT_UP} cameras to bring on stage (--cameras, --players)");
        }
        Ok(Shape {
            participants,
            cameras,
            host: av(opts.video_kbps.unwrap_or(1000)),
            camera: av(opts.camera_kbps.unwrap_or(300)),
        })
    }
}

/// The measured window: long enough for the stage script, if there is one.
fn window_of(opts: &Opts, switches: bool) -> Duration {
    let script = LEAD + (ON_STAGE + BETWEEN) * BROUGHT_UP as u32 + TAIL;
    if switches {
        opts.window(script.as_secs_f64()).max(script)
    } else {
        opts.window(20.0)
    }
}

/// parlor, with a stage capacity for the run and the room's route-apply lines in its log.
async fn parlor_target(opts: &Opts, name: &str, shape: &Shape) -> anyhow::Result<Target> {
    let env = vec![
        ("PARLOR_STAGE__CAPACITY".to_owned(), shape.participants.to_string()),
        // The room logs each route change's apply time at debug level; nothing else is needed.
        ("PARLOR_LOG__LEVEL".to_owned(), "warn,parlor_signaling::room::play=debug".to_owned()),
        ("NO_COLOR".to_owned(), "1".to_owned()),
    ];
    Target::parlor_env(opts, name, shape.participants, &env).await
}

/// Run the shape once against `target`; with `switches`, the host brings people on stage.
async fn once(opts: &Opts, target: &Target, shape: &Shape, switches: bool) -> anyhow::Result<Outcome> {
    let mut fleet = Fleet::new(opts.threads, shape.participants, target.bind, target.backend.clone())?;
    let run = run(opts, &mut fleet, target, shape, window_of(opts, switches), switches).await;
    fleet.leave_all().await;
    fleet.shutdown();
    run
}

/// `stage-100`: see the module documentation.
pub async fn stage100(opts: &Opts) -> anyhow::Result<Value> {
    let shape = Shape::of(opts)?;
    let target = parlor_target(opts, ROOM, &shape).await?;
    let label = target.label.clone();
    let o = once(opts, &target, &shape, true).await;
    target.stop();
    let o = o?;
    let v = publish_result(opts, &crate::scenario::result_name(ROOM, opts), ROOM, &label, &o)?;
    print_stage(&o.extra["stage"]);
    Ok(v)
}

/// `compare stage-room`: the part of the stage room Janus VideoRoom can hold too — the host
/// to everyone, each camera to the host only — without stage changes (a VideoRoom has no
/// server-side policy to switch: its subscribers choose their feeds), on parlor then Janus.
pub async fn compare_stage_room(opts: &Opts) -> anyhow::Result<((String, Outcome), (String, Outcome))> {
    let shape = Shape::of(opts)?;
    let target = parlor_target(opts, "compare-stage-room", &shape).await?;
    let parlor_label = target.label.clone();
    let p = once(opts, &target, &shape, false).await;
    target.stop();
    let p = p?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let target = Target::janus(opts, "compare-stage-room").await?;
    let janus_label = target.label.clone();
    let j = once(opts, &target, &shape, false).await;
    target.stop();
    Ok(((parlor_label, p), (janus_label, j?)))
}

async fn run(
    opts: &Opts,
    fleet: &mut Fleet,
    target: &Target,
    shape: &Shape,
    window: Duration,
    switches: bool,
) -> anyhow::Result<Outcome> {
    let janus = matches!(target.backend, Backend::Janus { .. });
    let log = target.log.as_deref();
    let host = fleet.join_kind(ROOM, "host", Some(shape.host.clone()), Some("stage"))?;
    wait_welcomed(fleet, &[host]).await?;
    let mut cams = Vec::new();
    for i in 0..shape.cameras {
        cams.push(fleet.join(ROOM, &format!("cam{i}"), Some(shape.camera.clone()))?);
    }
    for i in 0..shape.participants - 1 - shape.cameras {
        fleet.join(ROOM, &format!("aud{i}"), None)?;
    }
    let everyone: Vec<u32> = (0..fleet.members.len() as u32).collect();
    opts.say(format!("{}: {} participants joining a stage room", target.label, everyone.len()));
    wait_welcomed(fleet, &everyone).await?;
    let welcome = if janus {
        janus_subscribe(fleet, host, &cams).await?;
        Value::Null
    } else {
        let welcome = fleet.members[host as usize]
            .info
            .game_messages()
            .into_iter()
            .find(|(_, m)| m["type"] == "welcome")
            .map(|(_, m)| m)
            .ok_or_else(|| anyhow!("the host's welcome was not kept"))?;
        if welcome["kind"] != "stage" || welcome["host"] != welcome["id"] {
            bail!(
                "the room is not a stage room led by the first to join: kind {}, host {}",
                welcome["kind"],
                welcome["host"]
            );
        }
        let ids: Vec<String> = cams.iter().map(|&c| fleet.members[c as usize].info.id().unwrap_or_default()).collect();
        fleet.members[host as usize].ctrl(Ctrl::Send(json!({"type": "view", "ids": ids})));
        welcome
    };
    // The host receives every camera's video; everyone else the host's audio and video.
    let want = |i: u32| if i == host { shape.cameras as u32 } else { 2 };
    wait_streams(fleet, &everyone, want, Duration::from_secs(90)).await?;
    opts.say(format!(
        "the host receives its {} cameras and everyone the host; warming up {:.0} s, then measuring {:.0} s{}",
        shape.cameras,
        opts.warmup,
        window.as_secs_f64(),
        if switches { format!(" with {BROUGHT_UP} brought on stage in turn") } else { String::new() }
    ));
    tokio::time::sleep(Duration::from_secs_f64(opts.warmup)).await;
    let log_from = log.and_then(|p| std::fs::metadata(p).ok()).map_or(0, |m| m.len());
    fleet.shared().set_record(true);
    let chosen: Vec<u32> = if switches { cams.iter().copied().take(BROUGHT_UP).collect() } else { Vec::new() };
    let (w, steps) = tokio::join!(fleet.measure(window, &target.probe), stage_script(fleet, host, &chosen));
    fleet.shared().set_record(false);
    let applies = log.map(|p| route_applies(p, log_from)).unwrap_or_default();
    analyse(fleet, target, shape, &w, &steps, &applies, &welcome, window, opts)
}

/// The host brings each of `who` on stage for [`ON_STAGE`], one after another.
async fn stage_script(fleet: &Fleet, host: u32, who: &[u32]) -> Vec<Step> {
    let mut steps = Vec::new();
    if who.is_empty() {
        return steps;
    }
    tokio::time::sleep(LEAD).await;
    for &p in who {
        let id = fleet.members[p as usize].info.id().unwrap_or_default();
        let on_us = now_us();
        fleet.members[host as usize].ctrl(Ctrl::Send(json!({"type": "stage", "id": id, "on": true})));
        tokio::time::sleep(ON_STAGE).await;
        let off_us = now_us();
        fleet.members[host as usize].ctrl(Ctrl::Send(json!({"type": "stage", "id": id, "on": false})));
        steps.push(Step { who: p, on_us, off_us });
        tokio::time::sleep(BETWEEN).await;
    }
    steps
}

/// Janus: once every publisher has its feed and a connected peer, subscribe the host to the
/// cameras and everyone else to the host: the same forwarding as the stage room's, chosen by
/// the subscribers.
async fn janus_subscribe(fleet: &Fleet, host: u32, cams: &[u32]) -> anyhow::Result<()> {
    let publishers: Vec<u32> = std::iter::once(host).chain(cams.iter().copied()).collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let feed = |i: u32| fleet.members[i as usize].info.feed.load(Ordering::SeqCst);
    while publishers
        .iter()
        .any(|&i| feed(i) == 0 || fleet.shared().parts[i as usize].connected_us.load(Ordering::SeqCst) == 0)
    {
        if tokio::time::Instant::now() >= deadline {
            bail!("Janus publishers not up within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The host takes only the cameras' video, as the stage room forwards.
    let mut cameras = Vec::new();
    for &c in cams {
        let mid = fleet.members[c as usize].info.video_mid.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let Some(mid) = mid else { bail!("Janus named no video stream for camera #{c}") };
        cameras.push((feed(c), Some(mid)));
    }
    fleet.members[host as usize].ctrl(Ctrl::Subscribe(cameras));
    for m in fleet.members.iter().filter(|m| m.idx != host) {
        m.ctrl(Ctrl::Subscribe(vec![(feed(host), None)]));
    }
    Ok(())
}

async fn wait_welcomed(fleet: &Fleet, idxs: &[u32]) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let waiting: Vec<u32> = idxs
            .iter()
            .copied()
            .filter(|&i| fleet.members[i as usize].info.welcome_us.load(Ordering::SeqCst) == 0)
            .collect();
        if waiting.is_empty() {
            return Ok(());
        }
        let gone = waiting.iter().find(|&&i| fleet.members[i as usize].info.closed.load(Ordering::SeqCst));
        if let Some(&i) = gone {
            bail!("participant #{i} was not welcomed: {}", fleet.members[i as usize].info.errors().join("; "));
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("{} participants not welcomed within 60 s", waiting.len());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_streams(fleet: &Fleet, idxs: &[u32], want: impl Fn(u32) -> u32, timeout: Duration) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let missing: Vec<(u32, u32, u32)> = idxs
            .iter()
            .map(|&i| (i, fleet.shared().parts[i as usize].streams_seen.load(Ordering::Relaxed), want(i)))
            .filter(|(_, got, want)| got < want)
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            let detail: Vec<String> = missing
                .iter()
                .take(6)
                .map(|(i, got, want)| {
                    format!("#{i}: {got}/{want} streams {:?}", fleet.members[*i as usize].info.errors())
                })
                .collect();
            bail!(
                "{} of {} participants lack streams after {timeout:?}: {}",
                missing.len(),
                idxs.len(),
                detail.join(", ")
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One `routes applied` line of the server's log: (epoch, changes, apply µs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Apply {
    epoch: u64,
    changes: u64,
    apply_us: u64,
}

/// The `routes applied` lines logged from byte `from` of the server's log on.
fn route_applies(path: &std::path::Path, from: u64) -> Vec<Apply> {
    let text = std::fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(text.get(from as usize..).unwrap_or_default()).into_owned();
    text.lines().filter_map(parse_apply).collect()
}

/// `… DEBUG parlor_signaling::room::play: routes applied room=stage-100 epoch=7 changes=2 apply_us=312`
fn parse_apply(line: &str) -> Option<Apply> {
    let rest = line.split_once("routes applied")?.1;
    let field = |name: &str| -> Option<u64> {
        rest.split_whitespace().find_map(|kv| kv.strip_prefix(name)?.strip_prefix('=')?.parse().ok())
    };
    Some(Apply { epoch: field("epoch")?, changes: field("changes")?, apply_us: field("apply_us")? })
}

/// When each member learned that `who` went on (`on`) or off stage, at or after `after`, µs.
fn learned(fleet: &Fleet, who_id: &str, on: bool, after: u64) -> HashMap<u32, u64> {
    let mut out = HashMap::new();
    for m in &fleet.members {
        let hit = m.info.game_messages().into_iter().find(|(at, v)| {
            *at >= after
                && v["type"] == "participant_updated"
                && v["participant"]["id"] == who_id
                && v["participant"]["on_stage"] == on
        });
        if let Some((at, _)) = hit {
            out.insert(m.idx, at);
        }
    }
    out
}

/// What a camera packet a subscriber received means, given the intervals in which that
/// subscriber may receive the camera: (the host's `stage {on: true}`, when the subscriber
/// learned the return), µs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// Sent while the publisher was on stage for this subscriber.
    Allowed,
    /// Sent before a `stage {on: true}` and received after it: it may have met the new routes
    /// in the server's queues.
    InFlight,
    /// Sent while the subscriber may not receive it; `after_return`: after it learned the
    /// publisher went back.
    Leaked {
        /// Sent after a return the subscriber had been told of.
        after_return: bool,
    },
}

fn judge(sent_us: u64, recv_us: u64, windows: &[(u64, u64)]) -> Verdict {
    if windows.iter().any(|&(on, back)| sent_us >= on && sent_us < back) {
        return Verdict::Allowed;
    }
    // The server applies the new routes some time after the host sent `stage`, and a packet
    // still queued then (in a socket buffer, behind a busy worker) is forwarded by them: only
    // one that arrived before the host even asked was provably forwarded against the routes.
    if windows.iter().any(|&(on, _)| sent_us < on && recv_us >= on) {
        return Verdict::InFlight;
    }
    Verdict::Leaked { after_return: windows.iter().any(|&(_, back)| sent_us >= back) }
}

fn spread(v: &[f64]) -> Value {
    let mut v = v.to_vec();
    json!({
        "n": v.len(),
        "p50": quantile_of(&mut v, 0.5),
        "p99": quantile_of(&mut v, 0.99),
        "max": quantile_of(&mut v, 1.0),
    })
}

#[allow(clippy::too_many_arguments)]
fn analyse(
    fleet: &Fleet,
    target: &Target,
    shape: &Shape,
    w: &Window,
    steps: &[Step],
    applies: &[Apply],
    welcome: &Value,
    window: Duration,
    opts: &Opts,
) -> anyhow::Result<Outcome> {
    let host = 0u32;
    let cams: Vec<u32> = fleet.members.iter().filter(|m| m.idx != host && m.publish.is_some()).map(|m| m.idx).collect();
    // The steady flows: the host to everyone, each camera's video to the host.
    let mut flows: Vec<(u32, u32, Kind)> = Vec::new();
    for m in fleet.members.iter().filter(|m| m.idx != host) {
        flows.push((m.idx, host, Kind::Audio));
        flows.push((m.idx, host, Kind::Video));
    }
    flows.extend(cams.iter().map(|&c| (host, c, Kind::Video)));
    let mut figures = Figures::compute(w, fleet, Some(&flows), target.idle_anon_kib);
    figures.join_ms = report::join_times(fleet);

    let by_send = BySend::index(w);

    // Per stage change: who learned it when, who got the first keyframe when.
    let mut step_json = Vec::new();
    let (mut keyframe_ms, mut update_ms, mut audio_ms) = (Vec::new(), Vec::new(), Vec::new());
    let (mut keyframe_expected, mut keyframe_got) = (0usize, 0usize);
    let (mut on_expected, mut on_received) = (0u64, 0u64);
    // Per publisher brought up: the intervals in which member s may receive them.
    let mut allowed: HashMap<(u32, u32), Vec<(u64, u64)>> = HashMap::new();
    for st in steps {
        let who_id = fleet.members[st.who as usize].info.id().unwrap_or_default();
        let on_learned = learned(fleet, &who_id, true, st.on_us);
        let off_learned = learned(fleet, &who_id, false, st.off_us);
        let audience: Vec<u32> = fleet.members.iter().map(|m| m.idx).filter(|&i| i != host && i != st.who).collect();
        let (mut kf, mut upd, mut au) = (Vec::new(), Vec::new(), Vec::new());
        let mut missing = Vec::new();
        // (expected, received) of audio and video while on stage, this step.
        let mut delivered = [(0u64, 0u64); 2];
        for &s in &audience {
            keyframe_expected += 1;
            // Until s learned the return (or the end, if it never heard of it: then every
            // later packet counts as allowed and this shows as a missing update instead).
            let until = off_learned.get(&s).copied().unwrap_or(u64::MAX);
            allowed.entry((s, st.who)).or_default().push((st.on_us, until));
            let video = by_send.received(s, st.who, Kind::Video);
            let first_key = video.iter().filter(|r| r.keyframe && r.recv_us >= st.on_us).min_by_key(|r| r.recv_us);
            match first_key {
                Some(r) => {
                    keyframe_got += 1;
                    kf.push((r.recv_us - st.on_us) as f64 / 1000.0);
                }
                None => missing.push(s),
            }
            if let Some(t) = on_learned.get(&s) {
                upd.push(t.saturating_sub(st.on_us) as f64 / 1000.0);
            }
            let audio = by_send.received(s, st.who, Kind::Audio);
            if let Some(t) = audio.iter().filter(|r| r.recv_us >= st.on_us).map(|r| r.recv_us).min() {
                au.push((t - st.on_us) as f64 / 1000.0);
            }
            // Delivery while on stage: audio throughout, video from the first keyframe on; up to
            // what the server had surely handled before the host sent them back. A packet still
            // queued at the switch is rightly not forwarded, and under load the queue is deep:
            // the last host packet s received before the host's `stage {on: false}` shows how
            // far the server had got (host and guest share the worker's queue, in send order).
            let from = on_learned.get(&s).copied().unwrap_or(st.on_us) + DELIVERY_MARGIN_US;
            let host_recs = by_send.received(s, host, Kind::Audio);
            let drained = host_recs.iter().filter(|r| r.recv_us < st.off_us).map(|r| r.sent_us).max().unwrap_or(0);
            let to = st.off_us.saturating_sub(DELIVERY_MARGIN_US).min(drained);
            let video_from = first_key.map_or(u64::MAX, |r| r.sent_us.max(from));
            for (n, (kind, recs, start)) in
                [(Kind::Audio, audio, from), (Kind::Video, video, video_from)].into_iter().enumerate()
            {
                if start >= to {
                    continue;
                }
                let exp = by_send.sent_between(st.who, kind, start, to);
                let lo = recs.partition_point(|r| r.sent_us < start);
                let hi = recs.partition_point(|r| r.sent_us < to);
                let got = ((hi - lo) as u64).min(exp);
                on_expected += exp;
                on_received += got;
                delivered[n].0 += exp;
                delivered[n].1 += got;
            }
        }
        // The host hears them while on stage (it sees them all along: they are in its view).
        allowed
            .entry((host, st.who))
            .or_default()
            .push((st.on_us, off_learned.get(&host).copied().unwrap_or(u64::MAX)));
        let host_audio = by_send.received(host, st.who, Kind::Audio);
        let host_hears = host_audio.iter().filter(|r| r.recv_us >= st.on_us).map(|r| r.recv_us).min();
        keyframe_ms.extend(kf.iter().copied());
        update_ms.extend(upd.iter().copied());
        audio_ms.extend(au.iter().copied());
        step_json.push(json!({
            "publisher": st.who,
            "audience": audience.len(),
            "stage_to_first_keyframe_ms": spread(&kf),
            "stage_to_participant_updated_ms": spread(&upd),
            "stage_to_first_audio_ms": spread(&au),
            "host_first_audio_ms": host_hears.map(|t| (t - st.on_us) as f64 / 1000.0),
            "no_keyframe": missing.iter().take(10).collect::<Vec<_>>(),
            "no_keyframe_count": missing.len(),
            "learned_return": off_learned.len(),
            "on_stage_audio_expected_received": delivered[0],
            "on_stage_video_expected_received": delivered[1],
        }));
    }

    // Leaks: everything an audience camera sent that reached anyone it may not reach.
    let (mut leaked, mut band, mut checked) = (0u64, 0u64, 0u64);
    let mut in_flight_max_ms = 0.0f64;
    let mut after_return = 0u64;
    let mut examples = Vec::new();
    for ((s, p, kind), recs) in by_send.streams() {
        if !cams.contains(p) {
            continue;
        }
        let steady = *s == host && *kind == Kind::Video;
        let windows = allowed.get(&(*s, *p)).map(Vec::as_slice).unwrap_or(&[]);
        for r in recs {
            checked += 1;
            if steady {
                continue;
            }
            match judge(r.sent_us, r.recv_us, windows) {
                Verdict::Allowed => continue,
                Verdict::InFlight => {
                    band += 1;
                    let before = windows.iter().filter(|w| w.0 > r.sent_us).map(|w| w.0 - r.sent_us).min().unwrap_or(0);
                    in_flight_max_ms = in_flight_max_ms.max(before as f64 / 1000.0);
                    continue;
                }
                Verdict::Leaked { after_return: late } => {
                    leaked += 1;
                    after_return += late as u64;
                }
            }
            if examples.len() < 10 {
                // Where it fell against the publisher's time on stage, as this subscriber knew it.
                let near: Vec<Value> = windows
                    .iter()
                    .map(|&(a, b)| {
                        json!({"sent_after_stage_ms": (r.sent_us as f64 - a as f64) / 1000.0,
                               "sent_after_learned_return_ms": (b != u64::MAX).then(|| (r.sent_us as f64 - b as f64) / 1000.0)})
                    })
                    .collect();
                examples.push(json!({"subscriber": s, "host": *s == host, "publisher": p, "kind": kind.as_str(),
                    "latency_ms": (r.recv_us as f64 - r.sent_us as f64) / 1000.0, "on_stage": near}));
            }
        }
    }

    // Added latency second by second (by send time), to show what the stage changes do to it.
    let mut by_second: Vec<Vec<f64>> = vec![Vec::new(); (w.seconds().ceil() as usize).max(1)];
    for r in w.records.iter().filter(|r| r.sent_us >= w.t0 && r.sent_us < w.t1) {
        let k = ((r.sent_us - w.t0) / 1_000_000) as usize;
        if let Some(b) = by_second.get_mut(k) {
            b.push(r.recv_us.saturating_sub(r.sent_us) as f64 / 1000.0);
        }
    }
    let latency_by_second: Vec<Value> = by_second.iter().map(|v| spread(v)).collect();
    let steps_at_s: Vec<Value> = steps
        .iter()
        .map(|st| json!({"on_s": (st.on_us.saturating_sub(w.t0)) as f64 / 1e6, "off_s": (st.off_us.saturating_sub(w.t0)) as f64 / 1e6}))
        .collect();
    let stage_step_applies: Vec<f64> = applies.iter().map(|a| a.apply_us as f64).collect();
    // Nothing else changes routes during the window, so the lines alternate: up, back, up, …
    let paired = applies.len() == 2 * steps.len();
    let pick = |parity: usize| -> Vec<f64> {
        if !paired {
            return Vec::new();
        }
        applies.iter().skip(parity).step_by(2).map(|a| a.apply_us as f64).collect()
    };
    let (apply_on, apply_off) = (pick(0), pick(1));
    let extra = json!({
        "stage": {
            "participants": shape.participants,
            "cameras": shape.cameras,
            "welcome_limits": welcome["limits"],
            "steps": step_json,
            "steps_in_window_s": steps_at_s,
            "latency_ms_by_second": latency_by_second,
            "stage_to_first_keyframe_ms": spread(&keyframe_ms),
            "keyframes_expected": keyframe_expected,
            "keyframes_got": keyframe_got,
            "stage_to_participant_updated_ms": spread(&update_ms),
            "stage_to_first_audio_ms": spread(&audio_ms),
            "route_apply_us": spread(&stage_step_applies),
            "route_apply_on_us": spread(&apply_on),
            "route_apply_off_us": spread(&apply_off),
            "route_applies": applies.iter().map(|a| json!({"epoch": a.epoch, "changes": a.changes, "apply_us": a.apply_us})).collect::<Vec<_>>(),
            "route_apply_source": "server log: `routes applied … apply_us` (parlor_signaling::room::play at debug), input taken up → media worker acknowledged the routes",
            "on_stage_expected_packets": on_expected,
            "on_stage_received_packets": on_received,
            "on_stage_loss_pct": (on_expected > 0).then(|| 100.0 * (on_expected - on_received) as f64 / on_expected as f64),
            "on_stage_counted": "the newcomer's audio from 100 ms after each member learned of the stage, video from its first keyframe, up to 100 ms before the host sent them back or, if earlier, the send time of the last host packet that member received before then",
            "camera_packets_checked": checked,
            "leaked_packets": leaked,
            "leaked_after_return": after_return,
            "packets_in_flight_at_stage": band,
            "leak_rule": "leaked: a camera packet at anyone but the host (or camera audio at the host) sent while its publisher was not on stage: before the host's `stage {on: true}` (unless received after it: in flight at the switch, counted apart) or after the receiver got `participant_updated` saying they went back",
            "in_flight_sent_before_stage_ms_max": in_flight_max_ms,
            "leak_examples": examples,
        },
        "details": crate::scenario::counters_json(w, fleet),
    });
    let inputs = json!({
        "participants": shape.participants,
        "cameras_in_view": shape.cameras,
        "receive_only": shape.participants - 1 - shape.cameras,
        "host_video_kbps": shape.host.video_bps / 1000,
        "camera_video_kbps": shape.camera.video_bps / 1000,
        "video_fps": shape.host.fps,
        "keyframe_interval_s": shape.host.keyframe_interval.as_secs_f64(),
        "audio_pps": 50,
        "brought_up": steps.len(),
        "lead_s": LEAD.as_secs_f64(), "on_stage_s": ON_STAGE.as_secs_f64(), "between_s": BETWEEN.as_secs_f64(),
        "window_s": window.as_secs_f64(),
        "warmup_s": opts.warmup,
        "generator_threads": opts.threads,
        "server_workers": opts.workers,
    });
    let script = if steps.is_empty() {
        "no stage changes (the shape a Janus VideoRoom can hold: its subscribers pick the host's feed, the host the cameras)".to_owned()
    } else {
        format!(
            "during which the host brings {BROUGHT_UP} cameras on stage one after another ({:.0} s after the start, {:.0} s on stage, {:.0} s apart)",
            LEAD.as_secs_f64(),
            ON_STAGE.as_secs_f64(),
            BETWEEN.as_secs_f64()
        )
    };
    let inputs_text = format!(
        "1 stage room (kind `stage`) of {} participants: the host publishes VP8 {} kbit/s + Opus to all; {} audience members publish \
         VP8 {} kbit/s + Opus and the host's `view` names them (their video goes to the host only); {} receive only; 30 fps, \
         keyframe every 2 s and on request; audio 50 packets/s; window {:.0} s after {:.0} s warm-up, {script}; generator {} media thread(s)",
        shape.participants,
        shape.host.video_bps / 1000,
        shape.cameras,
        shape.camera.video_bps / 1000,
        shape.participants - 1 - shape.cameras,
        window.as_secs_f64(),
        opts.warmup,
        opts.threads
    );
    Ok(Outcome { figures, inputs, inputs_text, extra })
}

/// The stage rows under the common table.
fn print_stage(s: &Value) {
    let ms = |v: &Value| {
        let f = |k: &str| v[k].as_f64().map_or("n/a".to_owned(), |x| format!("{x:.1}"));
        format!("{} / {} / {} ms (n = {})", f("p50"), f("p99"), f("max"), v["n"])
    };
    let us = |v: &Value| {
        let f = |k: &str| v[k].as_f64().map_or("n/a".to_owned(), |x| format!("{x:.0}"));
        format!("{} / {} / {} µs (n = {})", f("p50"), f("p99"), f("max"), v["n"])
    };
    let rows = vec![
        vec![
            "`stage` → first keyframe at each audience member, p50 / p99 / max".to_owned(),
            format!(
                "{} — {} of {} got it",
                ms(&s["stage_to_first_keyframe_ms"]),
                s["keyframes_got"],
                s["keyframes_expected"]
            ),
        ],
        vec!["`stage` → first audio packet there".to_owned(), ms(&s["stage_to_first_audio_ms"])],
        vec!["`stage` → `participant_updated` there".to_owned(), ms(&s["stage_to_participant_updated_ms"])],
        vec![
            "room applies a stage change (input → routes applied), p50 / p99 / max".to_owned(),
            us(&s["route_apply_us"]),
        ],
        vec![
            "… of which bringing up / sending back".to_owned(),
            format!("{} / {}", us(&s["route_apply_on_us"]), us(&s["route_apply_off_us"])),
        ],
        vec![
            "on-stage delivery loss (audio; video from the first keyframe)".to_owned(),
            format!(
                "{} % of {} packets",
                s["on_stage_loss_pct"].as_f64().map_or("n/a".into(), |l| format!("{l:.3}")),
                s["on_stage_expected_packets"]
            ),
        ],
        vec![
            "leaked camera packets (audience ← audience; after the return)".to_owned(),
            format!(
                "{} of {} checked ({} after the return; {} sent before `stage` and received after it, apart: sent up to {:.1} ms before)",
                s["leaked_packets"],
                s["camera_packets_checked"],
                s["leaked_after_return"],
                s["packets_in_flight_at_stage"],
                s["in_flight_sent_before_stage_ms_max"].as_f64().unwrap_or(0.0)
            ),
        ],
        vec!["welcome.limits".to_owned(), s["welcome_limits"].to_string()],
    ];
    println!("\nstage changes ({} brought up and sent back):\n", BROUGHT_UP);
    println!("{}", table(&["metric", "value"], &rows));
}

#[cfg(test)]
mod tests {
    use super::{judge, parse_apply, Apply, Verdict};

    #[test]
    fn packets_are_judged_by_send_time_against_the_time_on_stage() {
        // On stage for this subscriber from 10 s (the host's `stage`) until it learned the
        // return at 14 s; again from 20 s, return never learned.
        let windows = [(10_000_000, 14_000_000), (20_000_000, u64::MAX)];
        let at = |sent: u64, recv: u64| judge(sent, recv, &windows);
        assert_eq!(at(12_000_000, 12_005_000), Verdict::Allowed);
        assert_eq!(at(10_000_000, 10_001_000), Verdict::Allowed, "sent at the `stage` itself");
        assert_eq!(at(25_000_000, 25_001_000), Verdict::Allowed);
        assert_eq!(at(9_990_000, 10_002_000), Verdict::InFlight, "sent before, forwarded after");
        assert_eq!(
            at(9_990_000, 9_995_000),
            Verdict::Leaked { after_return: false },
            "forwarded before the host asked"
        );
        assert_eq!(at(7_000_000, 10_200_000), Verdict::InFlight, "a queue 3 s deep: forwarded after the switch");
        assert_eq!(at(14_000_000, 14_001_000), Verdict::Leaked { after_return: true });
        assert_eq!(at(5_000_000, 5_001_000), Verdict::Leaked { after_return: false });
        // A camera never brought up reaches nobody but the host's view.
        assert_eq!(judge(12_000_000, 12_001_000, &[]), Verdict::Leaked { after_return: false });
    }

    #[test]
    fn route_apply_lines_as_the_server_writes_them() {
        let line = "2026-12-03T19:20:01.123456Z DEBUG parlor_signaling::room::play: routes applied room=stage-100 epoch=7 changes=2 apply_us=312";
        assert_eq!(parse_apply(line), Some(Apply { epoch: 7, changes: 2, apply_us: 312 }));
        assert_eq!(parse_apply("2026-12-03T19:20:01Z DEBUG phase switch applied elapsed_us=9"), None);
        assert_eq!(parse_apply("routes applied room=x epoch=1 changes=2"), None, "no apply time");
    }
}
