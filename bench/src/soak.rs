//! `soak`: the `phase-flip` game played for a long time (30 minutes by default) while the
//! server's RSS is sampled every 10 s; it must stay flat (±5 %) once warmed up (issue #6).

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::fleet::Fleet;
use crate::participant::Ctrl;
use crate::report::{self, table, Figures};
use crate::scenario::{add_room, av, flip_settings, save, Opts, Target};
use crate::sys;

/// One RSS sample, with what the server did in the ~10 s before it.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Seconds since the game started.
    pub t_s: f64,
    /// Server VmRSS, KiB.
    pub rss_kib: u64,
    /// Of which anonymous (heap and stacks), KiB.
    pub anon_kib: Option<u64>,
    /// Server CPU over the interval, % of one core.
    pub cpu_pct: Option<f64>,
    /// Forwarded packets per second over the interval.
    pub pps: f64,
    /// Phases the host has seen so far (the game still flips).
    pub phases: usize,
    /// 1-minute load average of the machine.
    pub load: f64,
}

/// The ±5 % verdict over the samples taken after `warmup_s`.
#[derive(Debug, Clone, PartialEq)]
pub struct Flatness {
    /// Samples in the judged window.
    pub samples: usize,
    /// First, last, smallest, largest and median RSS of the window, KiB.
    pub first: u64,
    /// Last sample.
    pub last: u64,
    /// Smallest.
    pub min: u64,
    /// Largest.
    pub max: u64,
    /// Median: the reference the ±5 % band is drawn around.
    pub median: u64,
    /// Largest distance from the median, % of the median.
    pub worst_dev_pct: f64,
    /// Least-squares slope, KiB per minute (a leak shows here first).
    pub slope_kib_per_min: f64,
    /// Every sample within ±`band_pct` of the median.
    pub flat: bool,
}

/// Judge the samples taken at or after `warmup_s` against a ±`band_pct` band around their
/// median. None when fewer than two samples are in the window.
pub fn flatness(samples: &[Sample], warmup_s: f64, band_pct: f64) -> Option<Flatness> {
    let w: Vec<&Sample> = samples.iter().filter(|s| s.t_s >= warmup_s).collect();
    if w.len() < 2 {
        return None;
    }
    let mut sorted: Vec<u64> = w.iter().map(|s| s.rss_kib).collect();
    sorted.sort_unstable();
    let median = sorted[sorted.len() / 2];
    let (min, max) = (sorted[0], sorted[sorted.len() - 1]);
    let dev = |v: u64| 100.0 * (v as f64 - median as f64).abs() / median.max(1) as f64;
    let worst_dev_pct = dev(min).max(dev(max));
    let n = w.len() as f64;
    let mx = w.iter().map(|s| s.t_s / 60.0).sum::<f64>() / n;
    let my = w.iter().map(|s| s.rss_kib as f64).sum::<f64>() / n;
    let sxy: f64 = w.iter().map(|s| (s.t_s / 60.0 - mx) * (s.rss_kib as f64 - my)).sum();
    let sxx: f64 = w.iter().map(|s| (s.t_s / 60.0 - mx).powi(2)).sum();
    let slope_kib_per_min = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    Some(Flatness {
        samples: w.len(),
        first: w[0].rss_kib,
        last: w[w.len() - 1].rss_kib,
        min,
        max,
        median,
        worst_dev_pct,
        slope_kib_per_min,
        flat: worst_dev_pct <= band_pct,
    })
}

/// Run the soak: `minutes` of phase flips with `players` (12) players at 600 kbit/s, an RSS
/// sample every `interval` (10 s); the first `warmup_minutes` are shown but not judged.
pub async fn soak(opts: &Opts, minutes: f64, warmup_minutes: f64) -> anyhow::Result<Value> {
    let players = opts.players.unwrap_or(12);
    let publish = av(opts.video_kbps.unwrap_or(600));
    let interval = Duration::from_secs_f64(opts.duration.unwrap_or(10.0).max(2.0));
    let target = Target::parlor(opts, "soak", players).await?;
    let label = target.label.clone();
    let mut fleet = Fleet::new(opts.threads, players, target.bind, target.backend.clone())?;
    let load_before = sys::loadavg().unwrap_or(0.0);
    let mut samples: Vec<Sample> = Vec::new();
    let run = async {
        let idxs = add_room(&mut fleet, "soak", players, 0, &publish).await?;
        fleet.wait_flowing(&idxs, Duration::from_secs(60)).await?;
        fleet.members[0].ctrl(Ctrl::Send(json!({"type": "start_game", "settings": flip_settings()})));
        let start = Instant::now();
        let total = Duration::from_secs_f64(minutes * 60.0);
        opts.say(format!(
            "{label}: game started; soaking {minutes} min, an RSS sample every {:.0} s",
            interval.as_secs_f64()
        ));
        // A window's grace period and readings take about a second; the rest is measured.
        let length = interval.saturating_sub(Duration::from_millis(1000)).max(Duration::from_millis(500));
        while start.elapsed() < total {
            let w = fleet.measure(length, &target.probe).await;
            let f = Figures::compute(&w, &fleet, None, target.idle_anon_kib);
            let s = Sample {
                t_s: start.elapsed().as_secs_f64(),
                rss_kib: w.after.server_rss_kib.unwrap_or(0),
                anon_kib: w.after.server_anon_kib,
                cpu_pct: f.server_cpu_pct,
                pps: f.pps,
                phases: fleet.members[0].info.game_messages().iter().filter(|(_, m)| m["type"] == "phase").count(),
                load: sys::loadavg().unwrap_or(0.0),
            };
            if samples.len().is_multiple_of(6) {
                opts.say(format!(
                    "t={:.0} s RSS {} KiB, server CPU {:.0} %, {:.0} packets/s, {} phases, load {:.2}",
                    s.t_s,
                    s.rss_kib,
                    s.cpu_pct.unwrap_or(0.0),
                    s.pps,
                    s.phases,
                    s.load
                ));
            }
            if s.rss_kib == 0 {
                anyhow::bail!("cannot read the server's RSS");
            }
            samples.push(s);
        }
        Ok::<_, anyhow::Error>(())
    }
    .await;
    fleet.leave_all().await;
    fleet.shutdown();
    target.stop();
    run?;
    print_and_save(opts, &label, &samples, minutes, warmup_minutes, interval, players, load_before)
}

#[allow(clippy::too_many_arguments)]
fn print_and_save(
    opts: &Opts,
    label: &str,
    samples: &[Sample],
    minutes: f64,
    warmup_minutes: f64,
    interval: Duration,
    players: usize,
    load_before: f64,
) -> anyhow::Result<Value> {
    let verdict = flatness(samples, warmup_minutes * 60.0, 5.0);
    // One row a minute (the sample closest after each full minute), plus the last.
    let mut rows = Vec::new();
    let mut next_min = 0.0;
    for (i, s) in samples.iter().enumerate() {
        if s.t_s >= next_min * 60.0 || i + 1 == samples.len() {
            rows.push(vec![
                format!("{:.1}", s.t_s / 60.0),
                format!("{:.1}", s.rss_kib as f64 / 1024.0),
                s.anon_kib.map_or("n/a".into(), |a| format!("{:.1}", a as f64 / 1024.0)),
                s.cpu_pct.map_or("n/a".into(), |c| format!("{c:.0}")),
                format!("{:.0}", s.pps),
                s.phases.to_string(),
                format!("{:.2}", s.load),
            ]);
            next_min = (s.t_s / 60.0).floor() + 1.0;
        }
    }
    report::print_heading("soak", label, load_before, "at the start");
    println!(
        "Inputs: 1 room × {players} players at {} kbit/s VP8 + Opus, the phase-flip game (day/night every 2 s) for {minutes} min; \
         an RSS sample every {:.0} s; judged after {warmup_minutes} min\n",
        opts.video_kbps.unwrap_or(600),
        interval.as_secs_f64()
    );
    println!(
        "{}",
        table(
            &["minute", "RSS MiB", "of which anon MiB", "server CPU %", "forwarded pkt/s", "phases so far", "load 1m"],
            &rows
        )
    );
    let v_json = match &verdict {
        Some(f) => {
            println!(
                "RSS from minute {warmup_minutes} on ({} samples): first {:.1}, last {:.1}, min {:.1}, max {:.1}, median {:.1} MiB; \
                 worst {:.2} % from the median, slope {:+.1} KiB/min → {}",
                f.samples,
                f.first as f64 / 1024.0,
                f.last as f64 / 1024.0,
                f.min as f64 / 1024.0,
                f.max as f64 / 1024.0,
                f.median as f64 / 1024.0,
                f.worst_dev_pct,
                f.slope_kib_per_min,
                if f.flat { "flat (within ±5 %)" } else { "NOT flat (outside ±5 %)" }
            );
            json!({"warmup_minutes": warmup_minutes, "samples": f.samples, "first_kib": f.first, "last_kib": f.last,
                   "min_kib": f.min, "max_kib": f.max, "median_kib": f.median, "worst_dev_pct": f.worst_dev_pct,
                   "slope_kib_per_min": f.slope_kib_per_min, "flat_within_5pct": f.flat})
        }
        None => {
            println!("too few samples after the warm-up to judge");
            Value::Null
        }
    };
    let v = json!({
        "scenario": "soak",
        "target": label,
        "command": report::command_line(),
        "machine": report::machine_json(),
        "load_average_at_start": load_before,
        "inputs": {"players": players, "video_kbps": opts.video_kbps.unwrap_or(600), "minutes": minutes,
                   "sample_interval_s": interval.as_secs_f64(), "warmup_minutes": warmup_minutes,
                   "game_settings": flip_settings()},
        "verdict": v_json,
        "samples": samples.iter().map(|s| json!({"t_s": s.t_s, "rss_kib": s.rss_kib, "anon_kib": s.anon_kib, "server_cpu_pct": s.cpu_pct,
            "forwarded_pps": s.pps, "phases": s.phases, "load_1m": s.load})).collect::<Vec<_>>(),
    });
    save(opts, "soak", &v)?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t_s: f64, rss_kib: u64) -> Sample {
        Sample { t_s, rss_kib, anon_kib: None, cpu_pct: None, pps: 0.0, phases: 0, load: 0.0 }
    }

    #[test]
    fn flat_curve_passes_and_warmup_is_ignored() {
        // A big start-up climb, then ±2 % around 40 MiB.
        let mut s = vec![at(10.0, 20_000), at(60.0, 35_000)];
        s.extend((0..20).map(|i| at(120.0 + 10.0 * i as f64, if i % 2 == 0 { 40_000 } else { 40_800 })));
        let f = flatness(&s, 120.0, 5.0).unwrap();
        assert_eq!(f.samples, 20);
        assert_eq!((f.min, f.max, f.first, f.last), (40_000, 40_800, 40_000, 40_800));
        assert!(f.flat, "{f:?}");
        assert!(f.worst_dev_pct <= 2.0 + 1e-9);
    }

    #[test]
    fn a_leak_fails_and_shows_in_the_slope() {
        // +1 MiB a minute for 20 minutes from 40 MiB.
        let s: Vec<Sample> = (0..=20).map(|m| at(60.0 * m as f64, 40_960 + 1024 * m)).collect();
        let f = flatness(&s, 0.0, 5.0).unwrap();
        assert!(!f.flat, "{f:?}");
        assert!((f.slope_kib_per_min - 1024.0).abs() < 1.0, "{}", f.slope_kib_per_min);
    }

    #[test]
    fn too_few_samples_give_no_verdict() {
        assert_eq!(flatness(&[at(5.0, 1), at(200.0, 2)], 60.0, 5.0), None);
    }
}
