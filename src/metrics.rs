//! `GET /metrics`: Prometheus text exposition (format 0.0.4), every series prefixed `parlor_`.
//!
//! Written by hand: a dozen series read from snapshots at scrape time need no registry.

use std::fmt::Write;

use parlor_media::{BweDecision, Counters, DropReason, Kind, Media};
use parlor_signaling::stats::HistogramSnapshot;
use parlor_signaling::Hub;

/// The whole exposition.
pub async fn render(hub: &Hub, media: &Media) -> String {
    let workers = media.worker_counters().await;
    let mut total = Counters::default();
    for w in &workers {
        total.add(w);
    }
    let stats = hub.stats();
    let mut out = String::with_capacity(4096);
    gauge(&mut out, "parlor_rooms", "Open rooms.", hub.room_count() as u64);
    gauge(
        &mut out,
        "parlor_participants",
        "Participants in all rooms.",
        stats.participants.load(std::sync::atomic::Ordering::Relaxed),
    );
    gauge(&mut out, "parlor_media_peers", "WebRTC peers held by the media workers.", total.peers);
    // A cluster node's own figures (none on a standalone server).
    for f in hub.directory().figures() {
        if f.counter {
            counter(&mut out, f.name, f.help, f.value);
        } else {
            gauge(&mut out, f.name, f.help, f.value);
        }
    }
    header(&mut out, "parlor_forwarded_packets_total", "RTP packets forwarded to subscribers.", "counter");
    for kind in Kind::ALL {
        let _ = writeln!(
            out,
            "parlor_forwarded_packets_total{{kind=\"{}\"}} {}",
            kind.as_str(),
            total.forwarded_packets[kind as usize]
        );
    }
    header(&mut out, "parlor_forwarded_bytes_total", "RTP payload bytes forwarded to subscribers.", "counter");
    for kind in Kind::ALL {
        let _ = writeln!(
            out,
            "parlor_forwarded_bytes_total{{kind=\"{}\"}} {}",
            kind.as_str(),
            total.forwarded_bytes[kind as usize]
        );
    }
    header(&mut out, "parlor_dropped_packets_total", "Packets or datagrams not forwarded, by reason.", "counter");
    for reason in DropReason::ALL {
        let _ =
            writeln!(out, "parlor_dropped_packets_total{{reason=\"{}\"}} {}", reason.as_str(), total.dropped(reason));
    }
    header(
        &mut out,
        "parlor_simulcast_forwarded_packets_total",
        "Simulcast video packets forwarded, by layer (0 the lowest).",
        "counter",
    );
    for (layer, n) in total.forwarded_layers.iter().enumerate() {
        let _ = writeln!(out, "parlor_simulcast_forwarded_packets_total{{layer=\"{layer}\"}} {n}");
    }
    counter(
        &mut out,
        "parlor_simulcast_layer_starts_total",
        "A subscriber's simulcast video started on a layer: its first, or a switch (on the layer's keyframe).",
        total.layer_starts,
    );
    header(&mut out, "parlor_bwe_decisions_total", "Bandwidth estimation's decisions, by kind.", "counter");
    for decision in BweDecision::ALL {
        let _ = writeln!(
            out,
            "parlor_bwe_decisions_total{{decision=\"{}\"}} {}",
            decision.as_str(),
            total.decided(decision)
        );
    }
    counter(
        &mut out,
        "parlor_bwe_reports_total",
        "Receiver-report intervals read into subscribers' bandwidth estimates.",
        total.estimate_reports,
    );
    // One series per subscriber would grow with the audience: the spread instead.
    let mut estimates: Vec<u64> = total.estimates.iter().map(|(_, _, bps)| *bps).collect();
    estimates.sort_unstable();
    gauge(&mut out, "parlor_bwe_subscribers", "Subscribers with a bandwidth estimate.", estimates.len() as u64);
    header(
        &mut out,
        "parlor_bwe_estimate_bps",
        "Subscribers' bandwidth estimates: the lowest, the median and the highest.",
        "gauge",
    );
    if let (Some(low), Some(high)) = (estimates.first(), estimates.last()) {
        let median = estimates[estimates.len() / 2];
        for (q, v) in [("min", *low), ("median", median), ("max", *high)] {
            let _ = writeln!(out, "parlor_bwe_estimate_bps{{of=\"{q}\"}} {v}");
        }
    }
    counter(
        &mut out,
        "parlor_keyframe_requests_total",
        "Keyframe requests sent to publishers.",
        total.keyframe_requests,
    );
    counter(
        &mut out,
        "parlor_matrix_updates_total",
        "Route updates applied by the media workers (the name is kept from when they were whole matrices).",
        total.matrix_updates,
    );
    counter(
        &mut out,
        "parlor_datagrams_received_total",
        "UDP datagrams received by the media workers.",
        total.datagrams_in,
    );
    counter(&mut out, "parlor_datagrams_sent_total", "UDP datagrams sent by the media workers.", total.datagrams_out);
    counter(&mut out, "parlor_send_errors_total", "UDP datagrams the socket refused to send.", total.send_errors);
    counter(
        &mut out,
        "parlor_send_calls_total",
        "sendmmsg system calls the media workers made (datagrams sent over this is the batch size).",
        total.send_calls,
    );
    counter(
        &mut out,
        "parlor_peer_faults_total",
        "Peers dropped after a media-stack error or panic.",
        total.peer_faults,
    );
    counter(
        &mut out,
        "parlor_media_paths_lost_total",
        "Media paths lost to ICE consent failure (nothing heard from the peer for 15 s).",
        total.paths_lost,
    );
    counter(
        &mut out,
        "parlor_phase_switches_total",
        "Game phase changes.",
        stats.phase_switches.load(std::sync::atomic::Ordering::Relaxed),
    );
    let by_cause =
        [("timer", stats.phase_switch_apply.snapshot()), ("input", stats.phase_switch_apply_input.snapshot())];
    let name = "parlor_phase_switch_apply_seconds";
    header(
        &mut out,
        name,
        "From a phase change's cause (its timer firing, or the participant input that ended the phase) to its routes applied by the media workers.",
        "histogram",
    );
    for (cause, h) in &by_cause {
        histogram_series(&mut out, name, &format!("cause=\"{cause}\","), h);
    }
    let max = "parlor_phase_switch_apply_max_seconds";
    header(&mut out, max, "The longest phase switch so far, by cause.", "gauge");
    for (cause, h) in &by_cause {
        let _ = writeln!(out, "{max}{{cause=\"{cause}\"}} {}", h.max);
    }
    histogram(
        &mut out,
        "parlor_signaling_rtt_seconds",
        "WebSocket round trip (server Ping to client Pong).",
        &stats.rtt.snapshot(),
    );
    header(&mut out, "parlor_worker_busy_seconds_total", "Time each media worker spent handling input.", "counter");
    for (i, w) in workers.iter().enumerate() {
        let _ = writeln!(out, "parlor_worker_busy_seconds_total{{worker=\"{i}\"}} {}", w.busy_ns as f64 / 1e9);
    }
    out
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn gauge(out: &mut String, name: &str, help: &str, value: u64) {
    header(out, name, help, "gauge");
    let _ = writeln!(out, "{name} {value}");
}

fn counter(out: &mut String, name: &str, help: &str, value: u64) {
    header(out, name, help, "counter");
    let _ = writeln!(out, "{name} {value}");
}

fn histogram(out: &mut String, name: &str, help: &str, h: &HistogramSnapshot) {
    header(out, name, help, "histogram");
    histogram_series(out, name, "", h);
}

/// One series of a histogram; `labels` is empty or `key="value",` (with its trailing comma).
fn histogram_series(out: &mut String, name: &str, labels: &str, h: &HistogramSnapshot) {
    for (bound, count) in &h.buckets {
        let _ = writeln!(out, "{name}_bucket{{{labels}le=\"{bound}\"}} {count}");
    }
    let _ = writeln!(out, "{name}_bucket{{{labels}le=\"+Inf\"}} {}", h.count);
    let braced = labels.strip_suffix(',').map_or(String::new(), |l| format!("{{{l}}}"));
    let _ = writeln!(out, "{name}_sum{braced} {}\n{name}_count{braced} {}", h.sum, h.count);
}
