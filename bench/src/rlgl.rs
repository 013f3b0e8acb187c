//! `rlgl-100`: one red light, green light room at capacity — a host and 99 players, each moving
//! 10 times a second while the light it last read is green and standing still from the moment it
//! reads red — through the automatic light's changes. Signaling only (no media: the cost
//! measured is the game's and its fan-out's). It reports the server's CPU, the `progress`
//! fan-out, and how long after the server's switch (the green phase's `ends_at`, the server's
//! clock, which on one machine is the generator's) each socket read `red`: per switch the
//! 99th socket to read it, and over every delivery.

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

/// Moves a second per player (the protocol's most).
const MOVES_PER_SECOND: u64 = 10;

/// What every socket counts.
#[derive(Default)]
struct Seen {
    phases: Phases,
    progress: AtomicU64,
    progress_bytes: AtomicU64,
    eliminated: AtomicU64,
    moves: AtomicU64,
    errors: Mutex<Vec<String>>,
}

/// One socket: joins `room` as `name`, records what it reads, moves while green if `runs`.
async fn seat(
    url: String,
    room: String,
    name: String,
    runs: bool,
    seen: Arc<Seen>,
    mut ctrl: tokio::sync::mpsc::UnboundedReceiver<Value>,
) {
    let result: anyhow::Result<()> = async {
        let (ws, _) = tokio_tungstenite::connect_async(url.as_str()).await.with_context(|| format!("connect {url}"))?;
        let (mut sink, mut stream) = ws.split();
        let join = json!({"type": "join", "room": room, "name": name, "kind": "rlgl"});
        sink.send(Message::Text(join.to_string().into())).await?;
        let mut tick = tokio::time::interval(Duration::from_millis(1000 / MOVES_PER_SECOND));
        // Ticks missed while standing still are skipped, not sent in a burst at the next green.
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut green = false;
        let mut out = false;
        let mut me = String::new();
        loop {
            tokio::select! {
                frame = stream.next() => {
                    let Some(frame) = frame else { break };
                    let Message::Text(text) = frame? else { continue };
                    let at = now_us();
                    let v: Value = serde_json::from_str(text.as_str())?;
                    match v["type"].as_str().unwrap_or("") {
                        "welcome" => me = v["id"].as_str().unwrap_or("").to_owned(),
                        "phase" => {
                            let phase = v["phase"].as_str().unwrap_or("").to_owned();
                            green = phase == "green";
                            seen.phases.lock().unwrap_or_else(|e| e.into_inner()).push((at, phase, v["ends_at"].as_u64()));
                        }
                        "progress" => {
                            seen.progress.fetch_add(1, Ordering::Relaxed);
                            seen.progress_bytes.fetch_add(text.len() as u64, Ordering::Relaxed);
                        }
                        "eliminated" => {
                            seen.eliminated.fetch_add(1, Ordering::Relaxed);
                            out |= v["id"] == me.as_str();
                        }
                        "error" => seen.errors.lock().unwrap_or_else(|e| e.into_inner()).push(v["code"].to_string()),
                        _ => {}
                    }
                }
                msg = ctrl.recv() => match msg {
                    Some(m) => sink.send(Message::Text(m.to_string().into())).await?,
                    None => break,
                },
                _ = tick.tick(), if runs && green && !out => {
                    sink.send(Message::Text(json!({"type": "move", "steps": 1}).to_string().into())).await?;
                    seen.moves.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        Ok(())
    }
    .await;
    keep_error(&seen.errors, result);
}

/// `rlgl-100`: see the module's doc.
pub async fn rlgl100(opts: &Opts) -> anyhow::Result<Value> {
    let seats = opts.players.unwrap_or(100).clamp(2, 100);
    let seconds = opts.duration.unwrap_or(60.0);
    let run = Run::start(opts, "rlgl-100", seats, "rlgl-bench").await?;
    let (url, room) = (run.url.clone(), run.room.clone());
    let seen: Vec<Arc<Seen>> = (0..seats).map(|_| Arc::new(Seen::default())).collect();
    let mut ctrls = Vec::new();
    for (i, s) in seen.iter().enumerate() {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        ctrls.push(tx);
        let name = if i == 0 { "Host".to_owned() } else { format!("Runner {i}") };
        tokio::spawn(seat(url.clone(), room.clone(), name, i > 0, s.clone(), rx));
        if i == 0 {
            // The host creates the room; everyone else joins it.
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let settings = json!({"auto": true, "seconds": seconds, "distance": 100_000});
    ctrls[0].send(json!({"type": "start_game", "settings": settings})).map_err(|_| anyhow!("host gone"))?;
    opts.say(format!("{seats} seats (host + {} players) in {room}; playing {seconds:.0} s", seats - 1));
    let load = sys::loadavg().unwrap_or(0.0);
    // Measured from the first green to the game's end.
    let started = wait_phase(&seen[0].phases, "green", Duration::from_secs(20)).await?;
    let cpu0 = run.cpu_seconds();
    let progress0: u64 = seen.iter().map(|s| s.progress.load(Ordering::Relaxed)).sum();
    let bytes0: u64 = seen.iter().map(|s| s.progress_bytes.load(Ordering::Relaxed)).sum();
    let moves0: u64 = seen.iter().map(|s| s.moves.load(Ordering::Relaxed)).sum();
    let over = wait_phase(&seen[0].phases, "game_over", Duration::from_secs_f64(seconds + 20.0)).await?;
    let cpu1 = run.cpu_seconds();
    let window_s = (over - started) as f64 / 1e6;
    let progress = seen.iter().map(|s| s.progress.load(Ordering::Relaxed)).sum::<u64>() - progress0;
    let bytes = seen.iter().map(|s| s.progress_bytes.load(Ordering::Relaxed)).sum::<u64>() - bytes0;
    let moves = seen.iter().map(|s| s.moves.load(Ordering::Relaxed)).sum::<u64>() - moves0;
    let eliminated = seen[0].eliminated.load(Ordering::Relaxed);
    let errors = all_errors(seen.iter().map(|s| &s.errors));
    for c in &ctrls {
        let _ = c.send(json!({"type": "leave"}));
    }
    drop(ctrls);
    run.target.stop();

    // Each red: the switch is the preceding green's `ends_at` (as the host read it).
    let host_phases = seen[0].phases.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let mut switches: Vec<u64> = Vec::new();
    for pair in host_phases.windows(2) {
        if pair[0].1 == "green" && pair[1].1 == "red" {
            if let Some(ends) = pair[0].2 {
                switches.push(ends * 1000);
            }
        }
    }
    let mut all = Histogram::default();
    let mut nth = Vec::new();
    for &switch in &switches {
        let mut arrivals: Vec<u64> = seen
            .iter()
            .filter_map(|s| {
                let phases = s.phases.lock().unwrap_or_else(|e| e.into_inner());
                phases
                    .iter()
                    .find(|(at, name, _)| name == "red" && *at + 50_000 >= switch)
                    .map(|(at, _, _)| at.saturating_sub(switch))
            })
            .collect();
        arrivals.sort_unstable();
        for a in &arrivals {
            all.add(*a);
        }
        if arrivals.len() >= 99.min(seats) {
            nth.push(arrivals[99.min(seats) - 1] as f64 / 1000.0);
        }
    }
    let cpu = cpu_percent(cpu0, cpu1, window_s);
    let nth_p50 = quantile_of(&mut nth.clone(), 0.5);
    let nth_p99 = quantile_of(&mut nth.clone(), 0.99);
    report::print_heading("rlgl-100", &run.label, load, "before the run");
    let fmt = |v: Option<f64>, unit: &str| v.map_or("n/a".into(), |v| format!("{v:.1}{unit}"));
    let (any_cell, any_json) = ms_spread(&all);
    let rows = vec![
        vec!["seats".into(), format!("{seats} (host + {} players)", seats - 1)],
        vec!["window".into(), format!("{window_s:.1} s, {} red switches", switches.len())],
        vec!["moves sent".into(), format!("{moves} ({:.0}/s)", moves as f64 / window_s)],
        vec!["server CPU".into(), fmt(cpu, " % of one core")],
        vec![
            "progress received".into(),
            format!(
                "{progress} ({:.0}/s over all sockets, {:.2}/s per socket)",
                progress as f64 / window_s,
                progress as f64 / window_s / seats as f64
            ),
        ],
        vec![
            "progress bytes".into(),
            format!(
                "{:.0} kB/s ({:.0} B each)",
                bytes as f64 / window_s / 1000.0,
                bytes as f64 / progress.max(1) as f64
            ),
        ],
        vec![
            format!("red at the {}th socket, p50 / p99 over switches", 99.min(seats)),
            format!("{} / {} ms", fmt(nth_p50, ""), fmt(nth_p99, "")),
        ],
        vec!["red at any socket, p50 / p99 / max".into(), any_cell],
        vec!["eliminated (all stop on reading red)".into(), eliminated.to_string()],
        vec!["errors".into(), error_summary(&errors)],
    ];
    println!("{}", table(&["metric", "value"], &rows));
    let v = json!({
        "scenario": "rlgl-100",
        "machine": report::machine_json(),
        "inputs": {"seats": seats, "seconds": seconds, "moves_per_second": MOVES_PER_SECOND, "settings": settings},
        "figures": {
            "window_s": window_s, "red_switches": switches.len(), "moves": moves, "server_cpu_percent": cpu,
            "progress_messages": progress, "progress_bytes": bytes,
            "red_nth_socket_ms": {"n": 99.min(seats), "p50": nth_p50, "p99": nth_p99, "each": nth},
            "red_any_socket_ms": any_json,
            "eliminated": eliminated, "errors": error_summary(&errors),
        },
    });
    crate::scenario::save(opts, "rlgl-100", &v)?;
    Ok(v)
}
