//! Figures computed from a measurement window, printed as Markdown tables and written as JSON.

use std::path::Path;

use serde_json::{json, Value};

use crate::fleet::{Fleet, Member, Window};
use crate::hist::quantile_of;
use crate::payload::{now_us, Kind};
use crate::sys;

/// What one window says about the SFU and the generator.
#[derive(Debug, Clone, Default)]
pub struct Figures {
    /// Window length, s.
    pub seconds: f64,
    /// Participants in the fleet.
    pub participants: usize,
    /// Packets the receivers should have got (sent in the window on a pair that should flow).
    pub expected: u64,
    /// Of those, distinct packets that arrived.
    pub received: u64,
    /// 1 − received / expected, %.
    pub loss_pct: Option<f64>,
    /// The worst single stream's loss, %.
    pub worst_stream_loss_pct: Option<f64>,
    /// Streams that should flow and got nothing in the window.
    pub silent_streams: usize,
    /// Duplicate packets (retransmissions of packets already received).
    pub duplicates: u64,
    /// Forwarded packets: the server's own counter when it has one, else what the receivers got.
    pub forwarded: u64,
    /// Where `forwarded` comes from.
    pub forwarded_source: &'static str,
    /// Forwarded packets per second.
    pub pps: f64,
    /// Added latency (kernel arrival − send time), ms.
    pub latency_p50_ms: f64,
    /// 99th percentile, ms.
    pub latency_p99_ms: f64,
    /// Largest, ms.
    pub latency_max_ms: f64,
    /// SFU CPU, % of one core.
    pub server_cpu_pct: Option<f64>,
    /// SFU CPU per forwarded packet, µs.
    pub server_us_per_packet: Option<f64>,
    /// SFU VmRSS at the end, MiB.
    pub server_rss_mib: Option<f64>,
    /// (RssAnon − idle RssAnon) / participants, KiB: the heap each participant adds (code
    /// pages the binary touches under load are not per participant).
    pub rss_per_participant_kib: Option<f64>,
    /// Datagrams the SFU's sockets dropped in the window.
    pub server_socket_drops: Option<u64>,
    /// Generator CPU, % of one core.
    pub generator_cpu_pct: f64,
    /// Generator CPU per packet it handled (sent + received), µs.
    pub generator_us_per_packet: f64,
    /// Datagrams the generator's sockets dropped in the window.
    pub generator_socket_drops: u64,
    /// Audio packets the generator sent in the window, % of its nominal 50/s per publisher:
    /// below ~98 % it fell behind (a starved machine), and the window understates the load.
    pub generator_rate_pct: Option<f64>,
    /// Whole machine busy, % of all cores.
    pub machine_busy_pct: Option<f64>,
    /// Of which stolen by the hypervisor, % of all cores.
    pub machine_steal_pct: Option<f64>,
    /// Join time (WebSocket connect → first media packet), ms: p50, p95, max.
    pub join_ms: Option<(f64, f64, f64)>,
    /// Keyframe requests our publishers received, keyframes they sent (cumulative).
    pub keyframe_requests: u64,
    /// Send ticks the generator skipped because it ran late (cumulative).
    pub late_skips: u64,
    /// Simulcast video packets the subscribers received in the window by layer, lowest first
    /// (None: no publisher sent layers).
    pub video_layers: Option<[u64; 3]>,
}

impl Figures {
    /// Compute from a window. `flows` lists the (subscriber, publisher, kind) that should
    /// carry every packet (None: no loss figure); `idle_anon_kib` is the SFU's RssAnon before
    /// anyone joined.
    pub fn compute(
        w: &Window,
        fleet: &Fleet,
        flows: Option<&[(u32, u32, Kind)]>,
        idle_anon_kib: Option<u64>,
    ) -> Figures {
        let seconds = w.seconds().max(1e-6);
        let mut f = Figures { seconds, participants: fleet.members.len(), ..Default::default() };
        if let Some(flows) = flows {
            let mut worst: f64 = 0.0;
            for &(s, p, k) in flows {
                let sent = w.sent.get(&(p, k));
                let stream = w.streams.get(&(s, p, k));
                // A subscriber gets one layer of a simulcast track at a time: what it should have
                // is the sequence its packets span (the SFU numbers them contiguously).
                let exp = match sent {
                    Some(x) if x.layered => stream.map_or(0, |x| x.window_span),
                    Some(x) => x.window,
                    None => 0,
                };
                let got = stream.map_or(0, |x| x.window).min(exp);
                f.expected += exp;
                f.received += got;
                if exp > 0 {
                    worst = worst.max(100.0 * (exp - got) as f64 / exp as f64);
                    if got == 0 {
                        f.silent_streams += 1;
                    }
                }
            }
            f.loss_pct = (f.expected > 0).then(|| 100.0 * (f.expected - f.received) as f64 / f.expected as f64);
            f.worst_stream_loss_pct = Some(worst);
        } else {
            f.received = w.received();
        }
        f.duplicates = w.streams.values().map(|s| s.window_dups).sum();
        if w.sent.values().any(|s| s.layered) {
            let mut layers = [0u64; 3];
            for st in w.streams.values().filter(|s| w.sent.get(&(s.publisher, s.kind)).is_some_and(|x| x.layered)) {
                for (sum, n) in layers.iter_mut().zip(st.window_layers) {
                    *sum += n;
                }
            }
            f.video_layers = Some(layers);
        }
        let receivers_count = w.received();
        match (w.before.forwarded, w.after.forwarded) {
            (Some(a), Some(b)) if b >= a => {
                f.forwarded = b - a;
                f.forwarded_source = "server /metrics";
            }
            _ => {
                f.forwarded = receivers_count;
                f.forwarded_source = "receivers";
            }
        }
        f.pps = f.forwarded as f64 / seconds;
        f.latency_p50_ms = w.latency.quantile(0.50) as f64 / 1000.0;
        f.latency_p99_ms = w.latency.quantile(0.99) as f64 / 1000.0;
        f.latency_max_ms = w.latency.max() as f64 / 1000.0;
        let span = (w.after.at_us.saturating_sub(w.before.at_us)) as f64 / 1e6;
        if let (Some(a), Some(b)) = (w.before.server_cpu, w.after.server_cpu) {
            let cpu = b - a;
            f.server_cpu_pct = Some(100.0 * cpu / span.max(1e-6));
            if f.forwarded > 0 {
                f.server_us_per_packet = Some(cpu * 1e6 / f.forwarded as f64);
            }
        }
        f.server_rss_mib = w.after.server_rss_kib.map(|k| k as f64 / 1024.0);
        if let (Some(now), Some(idle)) = (w.after.server_anon_kib, idle_anon_kib) {
            if f.participants > 0 {
                f.rss_per_participant_kib = Some((now as f64 - idle as f64) / f.participants as f64);
            }
        }
        if let (Some(a), Some(b)) = (w.before.server_drops, w.after.server_drops) {
            f.server_socket_drops = Some(b.saturating_sub(a));
        }
        let gen_cpu = w.after.self_cpu - w.before.self_cpu;
        f.generator_cpu_pct = 100.0 * gen_cpu / span.max(1e-6);
        let sent: u64 = w.sent.values().map(|s| s.window).sum();
        let handled = (receivers_count + sent).max(1);
        f.generator_us_per_packet = gen_cpu * 1e6 / handled as f64;
        f.generator_socket_drops = w.after.self_drops.saturating_sub(w.before.self_drops);
        let audio_publishers = fleet.members.iter().filter(|m| m.publish.as_ref().is_some_and(|p| p.audio)).count();
        let audio_sent: u64 = w.sent.iter().filter(|((_, k), _)| *k == Kind::Audio).map(|(_, s)| s.window).sum();
        if audio_publishers > 0 {
            f.generator_rate_pct = Some(100.0 * audio_sent as f64 / (audio_publishers as f64 * 50.0 * seconds));
        }
        if let (Some((b0, t0, s0)), Some((b1, t1, s1))) = (w.before.machine, w.after.machine) {
            if t1 > t0 {
                f.machine_busy_pct = Some(100.0 * (b1 - b0) as f64 / (t1 - t0) as f64);
                f.machine_steal_pct = Some(100.0 * (s1 - s0) as f64 / (t1 - t0) as f64);
            }
        }
        f.join_ms = join_times(fleet);
        f.keyframe_requests = w.counters.keyframe_requests;
        f.late_skips = w.counters.late_skips;
        f
    }

    /// The figures as JSON.
    pub fn to_json(&self) -> Value {
        json!({
            "window_seconds": self.seconds,
            "participants": self.participants,
            "expected_packets": self.expected,
            "received_packets": self.received,
            "loss_pct": self.loss_pct,
            "worst_stream_loss_pct": self.worst_stream_loss_pct,
            "silent_streams": self.silent_streams,
            "duplicates": self.duplicates,
            "forwarded_packets": self.forwarded,
            "forwarded_source": self.forwarded_source,
            "forwarded_pps": self.pps,
            "latency_p50_ms": self.latency_p50_ms,
            "latency_p99_ms": self.latency_p99_ms,
            "latency_max_ms": self.latency_max_ms,
            "server_cpu_pct_of_core": self.server_cpu_pct,
            "server_cpu_us_per_forwarded_packet": self.server_us_per_packet,
            "server_rss_mib": self.server_rss_mib,
            "server_memory_per_participant_kib": self.rss_per_participant_kib,
            "generator_rate_pct": self.generator_rate_pct,
            "server_socket_drops": self.server_socket_drops,
            "generator_cpu_pct_of_core": self.generator_cpu_pct,
            "generator_cpu_us_per_packet": self.generator_us_per_packet,
            "generator_socket_drops": self.generator_socket_drops,
            "machine_busy_pct": self.machine_busy_pct,
            "machine_steal_pct": self.machine_steal_pct,
            "simulcast_layers_received": self.video_layers,
            "join_ms_p50": self.join_ms.map(|j| j.0),
            "join_ms_p95": self.join_ms.map(|j| j.1),
            "join_ms_max": self.join_ms.map(|j| j.2),
            "keyframe_requests_received": self.keyframe_requests,
            "generator_late_skips": self.late_skips,
        })
    }

    /// (metric, value) rows for a table.
    pub fn rows(&self) -> Vec<(&'static str, String)> {
        let opt =
            |v: Option<f64>, digits: usize, unit: &str| v.map_or("n/a".to_owned(), |v| format!("{v:.digits$}{unit}"));
        vec![
            ("server CPU per forwarded packet", opt(self.server_us_per_packet, 2, " µs")),
            ("server CPU", opt(self.server_cpu_pct, 1, " % of a core")),
            ("forwarded packets/s", format!("{:.0} ({})", self.pps, self.forwarded_source)),
            (
                "loss",
                match self.loss_pct {
                    Some(l) => format!(
                        "{l:.3} % ({} of {} packets; worst stream {}, silent streams {})",
                        self.expected - self.received,
                        self.expected,
                        opt(self.worst_stream_loss_pct, 2, " %"),
                        self.silent_streams
                    ),
                    None => "n/a".into(),
                },
            ),
            (
                "added latency p50 / p99 / max",
                format!("{:.2} / {:.2} / {:.1} ms", self.latency_p50_ms, self.latency_p99_ms, self.latency_max_ms),
            ),
            ("server memory per participant (anon RSS)", opt(self.rss_per_participant_kib, 0, " KiB")),
            ("server RSS", opt(self.server_rss_mib, 1, " MiB")),
            (
                "join time p50 / p95 / max",
                self.join_ms.map_or("n/a".into(), |(a, b, c)| format!("{a:.0} / {b:.0} / {c:.0} ms")),
            ),
            (
                "simulcast video received by layer 0 / 1 / 2 (0 lowest)",
                self.video_layers.map_or("n/a".into(), |l| {
                    let all = l.iter().sum::<u64>().max(1) as f64;
                    format!(
                        "{:.1} / {:.1} / {:.1} % of packets",
                        100.0 * l[0] as f64 / all,
                        100.0 * l[1] as f64 / all,
                        100.0 * l[2] as f64 / all
                    )
                }),
            ),
            (
                "socket drops server / generator",
                format!(
                    "{} / {}",
                    self.server_socket_drops.map_or("n/a".into(), |d| d.to_string()),
                    self.generator_socket_drops
                ),
            ),
            (
                "generator CPU",
                format!(
                    "{:.1} % of a core ({:.2} µs per packet sent or received)",
                    self.generator_cpu_pct, self.generator_us_per_packet
                ),
            ),
            ("generator kept its send rate", opt(self.generator_rate_pct, 1, " % of nominal audio packets")),
            (
                "machine busy (all cores)",
                format!("{} (steal {})", opt(self.machine_busy_pct, 1, " %"), opt(self.machine_steal_pct, 1, " %")),
            ),
        ]
    }
}

/// Join times (WebSocket connect → first media packet) over the fleet, ms: p50, p95, max.
pub fn join_times(fleet: &Fleet) -> Option<(f64, f64, f64)> {
    join_times_of(fleet, |_| true)
}

/// [`join_times`] of the members `which` selects.
pub fn join_times_of(fleet: &Fleet, which: impl Fn(&Member) -> bool) -> Option<(f64, f64, f64)> {
    let mut v: Vec<f64> = fleet
        .members
        .iter()
        .filter(|m| which(m))
        .filter_map(|m| {
            let first = fleet.shared().parts[m.idx as usize].first_rx_us.load(std::sync::atomic::Ordering::Relaxed);
            let start = m.info.connect_us.load(std::sync::atomic::Ordering::Relaxed);
            (first > 0 && start > 0).then(|| first.saturating_sub(start) as f64 / 1000.0)
        })
        .collect();
    let p50 = quantile_of(&mut v, 0.5)?;
    let p95 = quantile_of(&mut v, 0.95)?;
    let max = quantile_of(&mut v, 1.0)?;
    Some((p50, p95, max))
}

/// A Markdown table.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = String::new();
    out.push_str(&format!("| {} |\n", header.join(" | ")));
    out.push_str(&format!("|{}\n", "---|".repeat(header.len())));
    for r in rows {
        out.push_str(&format!("| {} |\n", r.join(" | ")));
    }
    out
}

/// UTC date and time of a unix time in µs, "YYYY-MM-DD HH:MM".
pub fn utc(us: u64) -> String {
    let secs = us / 1_000_000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}", rem / 3600, rem % 3600 / 60)
}

/// The machine and the moment, for every result.
pub fn machine_json() -> Value {
    let (cores, model) = sys::cpu_info();
    json!({
        "cores": cores,
        "cpu_model": model,
        "load_average_1m": sys::loadavg(),
        "date_utc": utc(now_us()),
        "generator_niceness": sys::nice_of("self"),
    })
}

/// The heading every printed result starts with: what ran against what, the command, when, on
/// which machine, and the load average (`load_when` says when it was read).
pub fn print_heading(title: &str, target: &str, load: f64, load_when: &str) {
    let (cores, model) = sys::cpu_info();
    println!("\n### {title} — {target}\n");
    println!("`{}`  ", command_line());
    println!("{} UTC, {cores} × {model}, load average {load:.2} {load_when}  ", utc(now_us()));
    if let Some(n) = sys::nice_of("self").filter(|n| *n != 0) {
        println!("generator at niceness {n}, the server under test at 0  ");
    }
}

/// The command that produced a result, as a user would type it.
pub fn command_line() -> String {
    let args: Vec<String> = std::env::args().skip(1).collect();
    format!("cargo run --release -p parlor-bench -- {}", args.join(" "))
}

/// Write `value` to `dir/name.json` (through a temporary file).
pub fn write_json(dir: &Path, name: &str, value: &Value) -> anyhow::Result<std::path::PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!("{name}.json"));
    let tmp = dir.join(format!("{name}.json.tmp"));
    std::fs::write(&tmp, serde_json::to_string_pretty(value)? + "\n")?;
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_dates() {
        assert_eq!(super::utc(0), "1970-01-01 00:00");
        assert_eq!(super::utc(1_795_330_800_000_000), "2026-11-22 07:00");
        assert_eq!(super::utc(951_782_400_000_000), "2000-02-29 00:00");
    }
}
