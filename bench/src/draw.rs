//! `draw-100`: one drawing room at capacity — the host drawing (`drawer: host`) and 99 guessers
//! who only watch — with the drawer sending one `stroke` batch of 10 points every 50 ms, as the
//! web page batches them. Signaling only (no media). Every batch is a stroke of its own whose
//! `id` names it, so each guesser's copy is matched to the moment the drawer's socket sent it.
//! It reports the server's CPU, the relay latency stroke-in → stroke-out at the 99th socket
//! (per batch, the last of 99 guessers to read it) and over every delivery, and the bytes a
//! second each guesser's socket reads.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, Context};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::hist::{quantile_of, Histogram};
use crate::payload::now_us;
use crate::report::{self, table};
use crate::scenario::Opts;
use crate::signaling::{all_errors, cpu_percent, error_summary, keep_error, ms_spread, wait_phase, Phases, Run};
use crate::sys;

/// The drawer's batching interval (the web page's).
const BATCH: Duration = Duration::from_millis(50);
/// Points in a batch.
const POINTS: usize = 10;

/// What every socket counts.
#[derive(Default)]
struct Seen {
    phases: Phases,
    /// Stroke id → when this socket read it (µs).
    strokes: Mutex<HashMap<u64, u64>>,
    /// Every byte of text this socket read, and when measuring started (µs).
    bytes: AtomicU64,
    errors: Mutex<Vec<String>>,
}

/// The drawer's side: stroke id → when its socket sent it (µs).
type Sent = Arc<Mutex<HashMap<u64, u64>>>;

/// One socket: joins `room`; the drawer (`sent` given) picks the first word and draws while
/// the phase is `drawing`.
async fn seat(url: String, room: String, name: String, seen: Arc<Seen>, sent: Option<Sent>, start: Option<Value>) {
    let result: anyhow::Result<()> = async {
        let (ws, _) = tokio_tungstenite::connect_async(url.as_str()).await.with_context(|| format!("connect {url}"))?;
        let (mut sink, mut stream) = ws.split();
        let join = json!({"type": "join", "room": room, "name": name, "kind": "draw"});
        sink.send(Message::Text(join.to_string().into())).await?;
        let mut tick = tokio::time::interval(BATCH);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut start = start;
        let mut drawing = false;
        let mut next_id = 0u64;
        loop {
            tokio::select! {
                frame = stream.next() => {
                    let Some(frame) = frame else { break };
                    let Message::Text(text) = frame? else { continue };
                    let at = now_us();
                    seen.bytes.fetch_add(text.len() as u64, Ordering::Relaxed);
                    let v: Value = serde_json::from_str(text.as_str())?;
                    match v["type"].as_str().unwrap_or("") {
                        "phase" => {
                            let phase = v["phase"].as_str().unwrap_or("").to_owned();
                            drawing = phase == "drawing";
                            seen.phases.lock().unwrap_or_else(|e| e.into_inner()).push((at, phase, v["ends_at"].as_u64()));
                        }
                        "word_choices" if sent.is_some() => {
                            sink.send(Message::Text(json!({"type": "choose_word", "index": 0}).to_string().into())).await?;
                        }
                        "stroke" => {
                            if let Some(id) = v["id"].as_u64() {
                                seen.strokes.lock().unwrap_or_else(|e| e.into_inner()).insert(id, at);
                            }
                        }
                        "error" => seen.errors.lock().unwrap_or_else(|e| e.into_inner()).push(v["code"].to_string()),
                        _ => {}
                    }
                }
                _ = tick.tick() => {
                    // The host starts the game once everyone has had time to join (the caller says when).
                    if let Some(s) = start.take_if(|s| s["at"].as_u64().is_some_and(|t| now_us() >= t)) {
                        sink.send(Message::Text(s["msg"].to_string().into())).await?;
                    }
                    if let (Some(sent), true) = (&sent, drawing) {
                        let id = next_id;
                        next_id += 1;
                        // A zigzag across the board: coordinates of every size, as a real hand draws.
                        let points: Vec<[u64; 2]> =
                            (0..POINTS as u64).map(|i| [(id * 37 + i * 911) % 10_001, (id * 53 + i * 613) % 10_001]).collect();
                        let stroke = json!({"type": "stroke", "id": id, "color": "#1e88e5", "width": 40, "points": points});
                        let text = stroke.to_string();
                        sent.lock().unwrap_or_else(|e| e.into_inner()).insert(id, now_us());
                        sink.send(Message::Text(text.into())).await?;
                    }
                }
            }
        }
        Ok(())
    }
    .await;
    keep_error(&seen.errors, result);
}

/// `draw-100`: see the module's doc.
pub async fn draw100(opts: &Opts) -> anyhow::Result<Value> {
    let seats = opts.players.unwrap_or(100).clamp(2, 100);
    let seconds = opts.duration.unwrap_or(30.0).max(5.0);
    let run = Run::start(opts, "draw-100", seats, "draw-bench").await?;
    let (url, room) = (run.url.clone(), run.room.clone());
    let seen: Vec<Arc<Seen>> = (0..seats).map(|_| Arc::new(Seen::default())).collect();
    let sent: Sent = Arc::default();
    let settings = json!({"drawer": "host", "rounds": 1, "words": "en",
        "phase_seconds": {"choosing": 15, "drawing": seconds, "reveal": 6, "game_over": 20}});
    let start = json!({"at": now_us() + 3_000_000, "msg": {"type": "start_game", "settings": settings}});
    for (i, s) in seen.iter().enumerate() {
        let (name, drawer) =
            if i == 0 { ("Host".to_owned(), Some(sent.clone())) } else { (format!("Guesser {i}"), None) };
        let start = (i == 0).then(|| start.clone());
        tokio::spawn(seat(url.clone(), room.clone(), name, s.clone(), drawer, start));
        if i == 0 {
            // The host creates the room; everyone else joins it.
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    opts.say(format!("{seats} seats (the drawing host + {} guessers) in {room}; drawing {seconds:.0} s", seats - 1));
    let load = sys::loadavg().unwrap_or(0.0);
    let began = wait_phase(&seen[0].phases, "drawing", Duration::from_secs(30)).await?;
    let cpu0 = run.cpu_seconds();
    let bytes0: Vec<u64> = seen.iter().map(|s| s.bytes.load(Ordering::Relaxed)).collect();
    let ended = wait_phase(&seen[0].phases, "reveal", Duration::from_secs_f64(seconds + 20.0)).await?;
    let cpu1 = run.cpu_seconds();
    let window_s = (ended - began) as f64 / 1e6;
    let bytes: Vec<u64> = seen.iter().zip(&bytes0).map(|(s, b0)| s.bytes.load(Ordering::Relaxed) - b0).collect();
    let errors = all_errors(seen.iter().map(|s| &s.errors));
    run.target.stop();

    let sent = sent.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let guessers = &seen[1..];
    let nth_rank = 99.min(guessers.len());
    let (mut all, mut nth, mut missing) = (Histogram::default(), Vec::new(), 0u64);
    for (id, at) in &sent {
        let mut lat: Vec<u64> = Vec::new();
        for g in guessers {
            match g.strokes.lock().unwrap_or_else(|e| e.into_inner()).get(id) {
                Some(read) => lat.push(read.saturating_sub(*at)),
                None => missing += 1,
            }
        }
        lat.sort_unstable();
        for l in &lat {
            all.add(*l);
        }
        if lat.len() >= nth_rank {
            nth.push(lat[nth_rank - 1] as f64 / 1000.0);
        }
    }
    let cpu = cpu_percent(cpu0, cpu1, window_s);
    let per_socket: Vec<f64> = bytes[1..].iter().map(|b| *b as f64 / window_s).collect();
    let mean_bps = per_socket.iter().sum::<f64>() / per_socket.len().max(1) as f64;
    let (nth_p50, nth_p99) = (quantile_of(&mut nth.clone(), 0.5), quantile_of(&mut nth.clone(), 0.99));
    report::print_heading("draw-100", &run.label, load, "before the run");
    let fmt = |v: Option<f64>, unit: &str| v.map_or("n/a".into(), |v| format!("{v:.1}{unit}"));
    let (any_cell, any_json) = ms_spread(&all);
    let rows = vec![
        vec!["seats".into(), format!("{seats} (the drawing host + {} guessers)", seats - 1)],
        vec!["window".into(), format!("{window_s:.1} s of drawing")],
        vec![
            "strokes sent".into(),
            format!("{} ({:.1}/s, {POINTS} points each)", sent.len(), sent.len() as f64 / window_s),
        ],
        vec!["server CPU".into(), fmt(cpu, " % of one core")],
        vec![
            format!("relay latency at the {nth_rank}th socket, p50 / p99 over strokes"),
            format!("{} / {} ms", fmt(nth_p50, ""), fmt(nth_p99, "")),
        ],
        vec!["relay latency over every delivery, p50 / p99 / max".into(), any_cell],
        vec!["bytes read per guesser socket".into(), format!("{:.0} B/s (mean)", mean_bps)],
        vec!["deliveries missing (sent, not read by a guesser)".into(), missing.to_string()],
        vec!["errors".into(), error_summary(&errors)],
    ];
    println!("{}", table(&["metric", "value"], &rows));
    let v = json!({
        "scenario": "draw-100",
        "machine": report::machine_json(),
        "inputs": {"seats": seats, "seconds": seconds, "batch_ms": BATCH.as_millis() as u64, "points": POINTS, "settings": settings},
        "figures": {
            "window_s": window_s, "strokes": sent.len(), "server_cpu_percent": cpu,
            "relay_nth_socket_ms": {"n": nth_rank, "p50": nth_p50, "p99": nth_p99},
            "relay_any_socket_ms": any_json,
            "bytes_per_second_per_guesser": mean_bps, "missing": missing, "errors": error_summary(&errors),
        },
    });
    crate::scenario::save(opts, "draw-100", &v)?;
    if !errors.is_empty() {
        return Err(anyhow!("draw-100: errors {}", error_summary(&errors)));
    }
    Ok(v)
}
