//! What the signaling-only room benches (`rlgl-100`, `draw-100`) share: a started parlor with a
//! fresh room code, the phases a socket read, its errors, and the server CPU over a window.

use std::sync::Mutex;
use std::time::Duration;

use anyhow::bail;
use serde_json::{json, Value};

use crate::fleet::Backend;
use crate::hist::Histogram;
use crate::payload::now_us;
use crate::scenario::{Opts, Target};
use crate::sys::{self, Pid};

/// (arrived µs, phase name, ends_at ms) of every `phase` a socket read.
pub(crate) type Phases = Mutex<Vec<(u64, String, Option<u64>)>>;

/// A parlor started for one signaling-only room.
pub(crate) struct Run {
    pub target: Target,
    /// The server's `/ws` URL.
    pub url: String,
    pub label: String,
    /// A room code of this run's own.
    pub room: String,
    pid: Option<u32>,
}

impl Run {
    /// Starts (or reaches, with `--url`) a parlor for `seats` in `scenario`; the room is `prefix-N`.
    pub(crate) async fn start(opts: &Opts, scenario: &str, seats: usize, prefix: &str) -> anyhow::Result<Self> {
        let target = Target::parlor(opts, scenario, seats).await?;
        let Backend::Parlor { url } = target.backend.clone() else { bail!("{scenario} runs against parlor only") };
        Ok(Run {
            pid: target.probe.pid,
            label: target.label.clone(),
            room: format!("{prefix}-{}", now_us() % 100_000),
            url,
            target,
        })
    }

    /// The server's CPU seconds so far, where they can be read.
    pub(crate) fn cpu_seconds(&self) -> Option<f64> {
        self.pid.and_then(|p| sys::cpu_seconds(Pid::Other(p)))
    }
}

/// Percent of one core between two CPU readings `window_s` apart.
pub(crate) fn cpu_percent(before: Option<f64>, after: Option<f64>, window_s: f64) -> Option<f64> {
    Some((after? - before?) / window_s * 100.0)
}

/// Keeps a socket task's failure for the report.
pub(crate) fn keep_error(errors: &Mutex<Vec<String>>, result: anyhow::Result<()>) {
    if let Err(e) = result {
        errors.lock().unwrap_or_else(|e| e.into_inner()).push(format!("{e:#}"));
    }
}

/// Every socket's kept errors, in one list.
pub(crate) fn all_errors<'a>(errors: impl Iterator<Item = &'a Mutex<Vec<String>>>) -> Vec<String> {
    errors.flat_map(|e| e.lock().unwrap_or_else(|e| e.into_inner()).clone()).collect()
}

/// Errors by code, e.g. `3 × "wrong_phase"` (a move in flight when the game ended is one).
pub(crate) fn error_summary(errors: &[String]) -> String {
    let mut counts: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for e in errors {
        *counts.entry(e.as_str()).or_default() += 1;
    }
    if counts.is_empty() {
        return "none".into();
    }
    counts.iter().map(|(code, n)| format!("{n} × {code}")).collect::<Vec<_>>().join(", ")
}

/// When a socket first read phase `name` (µs), waiting up to `timeout`.
pub(crate) async fn wait_phase(phases: &Phases, name: &str, timeout: Duration) -> anyhow::Result<u64> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let found =
            phases.lock().unwrap_or_else(|e| e.into_inner()).iter().find(|(_, n, _)| n == name).map(|(at, _, _)| *at);
        if let Some(at) = found {
            return Ok(at);
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("no {name} phase within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A histogram of µs as p50 / p99 / max in ms: the table's cell and the report's figures.
pub(crate) fn ms_spread(h: &Histogram) -> (String, Value) {
    let [p50, p99, max] = [h.quantile(0.5), h.quantile(0.99), h.max()].map(|us| us as f64 / 1000.0);
    (format!("{p50:.1} / {p99:.1} / {max:.1} ms"), json!({"p50": p50, "p99": p99, "max": max}))
}
