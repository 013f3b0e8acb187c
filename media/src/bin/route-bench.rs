//! How long a route change takes to apply in a media worker: the per-publisher delta against
//! the all-pairs rebuild it replaced, on one worker room whose members are negotiated
//! in-process (no network). Prints its inputs and mean / p50 / p99 / max per change.
//!
//! `cargo run --release -p parlor-media --features bench --bin route-bench [-- ROUNDS]`

use std::time::{Duration, Instant};

use parlor_media::bench::RouteBench;
use parlor_media::{Kind, Reach};

/// Routes of a room: per (publisher, kind), its receivers.
type Routes = Vec<Reach>;

fn everyone_but(ids: &[String], p: &str) -> Vec<String> {
    ids.iter().filter(|s| *s != p).cloned().collect()
}

/// Mafia, 12 players of whom the first 3 are mafia, all alive, no moderator: by day everyone
/// receives everyone; at night the mafia receive each other and nobody receives the town.
fn mafia(n: usize) -> (Vec<String>, Routes, Routes) {
    let ids: Vec<String> = (0..n).map(|i| format!("p{i:02}")).collect();
    let mafia = &ids[..3];
    let (mut day, mut night) = (Vec::new(), Vec::new());
    for p in &ids {
        for kind in Kind::ALL {
            day.push(Reach::new(p.clone(), kind, everyone_but(&ids, p)));
            let at_night = if mafia.contains(p) { everyone_but(mafia, p) } else { Vec::new() };
            night.push(Reach::new(p.clone(), kind, at_night));
        }
    }
    (ids, day, night)
}

/// A stage room: the host reaches everyone; the audience's audio reaches nobody and its video
/// only the host, for the 16 in the host's view. The change brings one audience member (not
/// in view) on stage: its audio and video then reach everyone; and back.
fn stage(n: usize) -> (Vec<String>, Routes, Routes, Routes) {
    let ids: Vec<String> = std::iter::once("host".to_owned()).chain((1..n).map(|i| format!("a{i:02}"))).collect();
    let mut all = Vec::new();
    for (i, p) in ids.iter().enumerate() {
        let (audio, video) = match i {
            0 => (everyone_but(&ids, p), everyone_but(&ids, p)),
            1..=16 => (Vec::new(), vec!["host".to_owned()]),
            _ => (Vec::new(), Vec::new()),
        };
        all.push(Reach::new(p.clone(), Kind::Audio, audio));
        all.push(Reach::new(p.clone(), Kind::Video, video));
    }
    let star = ids[n / 2].clone();
    let on = Kind::ALL.iter().map(|k| Reach::new(star.clone(), *k, everyone_but(&ids, &star))).collect();
    let off = Kind::ALL.iter().map(|k| Reach::new(star.clone(), *k, Vec::<String>::new())).collect();
    (ids, all, on, off)
}

fn pairs(routes: &Routes) -> usize {
    routes.iter().map(|r| r.subscribers.len()).sum()
}

/// Applied changes' times, in one direction, one path.
#[derive(Default)]
struct Samples(Vec<Duration>);

impl Samples {
    fn line(&mut self, label: &str) -> String {
        let v = &mut self.0;
        v.sort();
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        let mean = v.iter().map(|d| us(*d)).sum::<f64>() / v.len().max(1) as f64;
        let at = |q: f64| us(v[((v.len() as f64 * q) as usize).min(v.len() - 1)]);
        format!(
            "  {label:<34} n={:<5} mean {mean:>9.1} µs  p50 {:>9.1}  p99 {:>9.1}  max {:>9.1}",
            v.len(),
            at(0.5),
            at(0.99),
            us(v[v.len() - 1])
        )
    }
}

/// Alternate `a -> b -> a` on both paths, `rounds` times each, interleaved so both see the same
/// worker; every change's result is checked against the expected allowed track count.
fn run(name: &str, ids: &[String], initial: Routes, to_b: (&str, Routes), to_a: (&str, Routes), rounds: usize) {
    let setup = Instant::now();
    let mut bench = RouteBench::new(ids);
    let negotiated = setup.elapsed();
    bench.apply_delta(initial.clone());
    bench.apply_all_pairs(initial.clone());
    let at_a = bench.tracks().0;
    let (all_tracks, peers) = (bench.tracks().1, bench.peers());
    let mut samples: [Samples; 4] = Default::default();
    let mut at_b = None;
    let kf0 = bench.keyframe_requests();
    for _ in 0..rounds {
        for (path, delta) in [(0, true), (2, false)] {
            for (dir, change, expect) in [(0, &to_b.1, None), (1, &to_a.1, Some(at_a))] {
                // Past the keyframe rate limit: every resume asks, as phase switches seconds apart do.
                bench.advance(Duration::from_millis(250));
                let change = change.clone();
                let took = if delta { bench.apply_delta(change) } else { bench.apply_all_pairs(change) };
                samples[path + dir].0.push(took);
                let allowed = bench.tracks().0;
                match expect {
                    Some(n) => assert_eq!(allowed, n, "{name}: back to the first routes"),
                    None => assert_eq!(*at_b.get_or_insert(allowed), allowed, "{name}: both paths agree"),
                }
            }
        }
    }
    assert_eq!(bench.peers(), peers, "no peer failed");
    println!("{name}");
    println!(
        "  inputs: {} members publishing audio+video, {all_tracks} receiving tracks in the worker (negotiated in {:.1} s)",
        ids.len(),
        negotiated.as_secs_f64()
    );
    println!(
        "  routes: {} (publisher, kind) with {} allowed pairs; {}: {} reaches naming {} subscribers; {}: {} reaches naming {}",
        initial.len(),
        pairs(&initial),
        to_b.0,
        to_b.1.len(),
        pairs(&to_b.1),
        to_a.0,
        to_a.1.len(),
        pairs(&to_a.1),
    );
    println!(
        "  allowed tracks: {at_a} <-> {}; {rounds} rounds per path; keyframe requests sent: {}",
        at_b.unwrap_or(0),
        bench.keyframe_requests() - kf0
    );
    let labels = [
        format!("new, per-publisher delta, {}", to_b.0),
        format!("new, per-publisher delta, {}", to_a.0),
        format!("old, all-pairs rebuild, {}", to_b.0),
        format!("old, all-pairs rebuild, {}", to_a.0),
    ];
    for (s, label) in samples.iter_mut().zip(labels) {
        println!("{}", s.line(&label));
    }
}

fn main() {
    let rounds: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(500);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let _inside = runtime.enter();
    println!("route-bench: time for a media worker to apply one route change (µs), {rounds} rounds");
    let (ids, day, night) = mafia(12);
    run(
        "mafia, 12 players (3 mafia), all alive",
        &ids,
        day.clone(),
        ("day->night", night),
        ("night->day", day),
        rounds,
    );
    let (ids, all, on, off) = stage(100);
    run("stage, host + 99 audience (16 in view)", &ids, all, ("one on stage", on), ("off stage", off), rounds);
}
