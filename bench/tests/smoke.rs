//! The load generator's smoke run against an in-process parlor: synthetic participants join
//! through the real protocol and real WebRTC, publish, and receive every stream without loss.

use std::time::Duration;

use parlor::config::{Config, Overrides};
use parlor_bench::scenario::{self, Opts};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generator_participants_join_send_and_receive_everything() {
    let overrides = Overrides { listen: Some("127.0.0.1:0".parse().unwrap()), udp_port: Some(0) };
    // A prefix nobody sets keeps the server independent of the environment.
    let env = figment::providers::Env::prefixed("PARLOR_BENCH_TEST_UNSET_PREFIX_");
    let config = Config::load(None, &overrides, env).expect("default config");
    let server = parlor::start(&config).await.expect("server starts");
    let opts = Opts {
        url: Some(format!("http://{}", server.http_addr)),
        duration: Some(2.0),
        warmup: 0.5,
        threads: 1,
        out: None,
        verbose: false,
        ..Opts::default()
    };
    let started = std::time::Instant::now();
    let o = tokio::time::timeout(Duration::from_secs(40), scenario::smoke(&opts))
        .await
        .expect("smoke run finishes")
        .expect("smoke run succeeds");
    let f = &o.figures;
    eprintln!("smoke took {:?}: {:#}", started.elapsed(), f.to_json());
    // 3 publishers and 1 receive-only participant in one room; each receives the audio and the
    // video of every other publisher: 3 × 2 × 2 + 1 × 3 × 2 = 18 streams.
    assert_eq!(f.participants, 4);
    assert_eq!(f.silent_streams, 0, "{f:?}");
    // Over a 2 s window each stream carries ~100 audio or ~60 video packets.
    assert!(f.expected >= 18 * 50, "expected packets: {}", f.expected);
    assert_eq!(f.received, f.expected, "no loss at a low rate: {f:?}");
    assert_eq!(f.loss_pct, Some(0.0));
    assert!(f.forwarded >= f.received, "the server counts at least what arrived");
    let (p50, _, max) = f.join_ms.expect("everyone got media");
    assert!(p50 > 0.0 && max < 20_000.0, "join times {:?}", f.join_ms);
    assert!(f.latency_p50_ms > 0.0 && f.latency_p50_ms < 100.0, "latency p50 {} ms", f.latency_p50_ms);
    let details = &o.extra;
    assert_eq!(details["generator"]["unmarked"], 0, "every packet carried its mark: {details}");
    assert_eq!(details["generator"]["sdp_errors"], 0, "{details}");
    assert!(details["participant_errors"].as_array().is_some_and(|e| e.is_empty()), "{details}");
    drop(server);
}
