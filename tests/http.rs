//! The HTTP surface: health, the embedded web client, room pages and QR codes.

use crate::support;

use support::{http_get, server};

#[tokio::test]
async fn health_pages_and_assets() {
    let server = server().await;
    assert_eq!(http_get(&server, "/healthz").await, (200, "text/plain; charset=utf-8".into(), "ok".into()));
    assert_eq!(http_get(&server, "/readyz").await, (200, "text/plain; charset=utf-8".into(), "ready".into()));
    let (status, ty, body) = http_get(&server, "/").await;
    assert_eq!((status, ty.as_str()), (200, "text/html; charset=utf-8"));
    assert!(body.contains("<script") && body.contains("app.js"), "{body}");
    let (status, _, room_page) = http_get(&server, "/r/Game-Night-7").await;
    assert_eq!(status, 200);
    assert_eq!(room_page, body, "room pages serve the client");
    assert_eq!(http_get(&server, "/r/not%20a%20code").await.0, 404);
    assert_eq!(http_get(&server, &format!("/r/{}", "x".repeat(33))).await.0, 404);
    let (status, ty, js) = http_get(&server, "/app.js").await;
    assert_eq!((status, ty.as_str()), (200, "text/javascript; charset=utf-8"));
    assert!(js.contains("WebSocket"));
    assert_eq!(http_get(&server, "/style.css").await.1, "text/css; charset=utf-8");
    assert_eq!(http_get(&server, "/nothing-here").await.0, 404);
}

#[tokio::test]
async fn qr_codes_encode_the_invite_link() {
    let server = server().await;
    let (status, ty, svg) = http_get(&server, "/qr.svg?text=http%3A%2F%2F127.0.0.1%3A8080%2Fr%2Fdemo").await;
    assert_eq!((status, ty.as_str()), (200, "image/svg+xml"));
    assert!(svg.starts_with("<?xml") && svg.contains("<svg") && svg.contains("<path"), "{svg}");
    // A longer text makes a denser (larger) code.
    let long = "http%3A%2F%2Fexample.org%2Fr%2F".to_owned() + &"a".repeat(200);
    let (_, _, dense) = http_get(&server, &format!("/qr.svg?text={long}")).await;
    assert!(dense.len() > svg.len());
    assert_eq!(http_get(&server, "/qr.svg?text=").await.0, 400);
    assert_eq!(http_get(&server, &format!("/qr.svg?text={}", "a".repeat(513))).await.0, 400);
    assert_eq!(http_get(&server, "/qr.svg").await.0, 400);
}

/// Parse Prometheus text into `series → value` (series includes its labels).
fn parse_metrics(text: &str) -> std::collections::HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.rsplit_once(' ').and_then(|(k, v)| Some((k.to_owned(), v.parse().ok()?))))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_describe_a_call() {
    use support::{ClientOptions, Kind, TestClient};
    let server = support::server_with(|c| c.session.ping_seconds = 0.1).await;
    let url = format!("ws://{}/ws", server.http_addr);
    let a = TestClient::join(&url, "metered", "Ann", ClientOptions::publisher()).await.unwrap();
    let b = TestClient::join(&url, "metered", "Bob", ClientOptions::publisher()).await.unwrap();
    a.wait_count(b.id(), Kind::Video, 20, std::time::Duration::from_secs(20)).await.unwrap();
    b.wait_count(a.id(), Kind::Audio, 20, std::time::Duration::from_secs(20)).await.unwrap();
    // Pings every 100 ms: RTT samples arrive quickly.
    let mut m = parse_metrics(&http_get(&server, "/metrics").await.2);
    for _ in 0..100 {
        if m.get("parlor_signaling_rtt_seconds_count").copied().unwrap_or(0.0) >= 2.0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        m = parse_metrics(&http_get(&server, "/metrics").await.2);
    }
    let (status, ty, _) = http_get(&server, "/metrics").await;
    assert_eq!((status, ty.as_str()), (200, "text/plain; version=0.0.4; charset=utf-8"));
    assert_eq!(m["parlor_rooms"], 1.0);
    assert_eq!(m["parlor_participants"], 2.0);
    assert_eq!(m["parlor_media_peers"], 2.0);
    assert!(m["parlor_forwarded_packets_total{kind=\"video\"}"] >= 20.0);
    assert!(m["parlor_forwarded_packets_total{kind=\"audio\"}"] >= 20.0);
    assert!(m["parlor_forwarded_bytes_total{kind=\"video\"}"] > m["parlor_forwarded_packets_total{kind=\"video\"}"]);
    assert!(m.contains_key("parlor_dropped_packets_total{reason=\"not_allowed\"}"));
    assert!(m["parlor_matrix_updates_total"] >= 1.0);
    assert!(m["parlor_worker_busy_seconds_total{worker=\"0\"}"] > 0.0);
    assert!(m["parlor_signaling_rtt_seconds_count"] >= 2.0, "RTT samples: {m:?}");
    assert_eq!(m["parlor_signaling_rtt_seconds_bucket{le=\"+Inf\"}"], m["parlor_signaling_rtt_seconds_count"]);
    for cause in ["timer", "input"] {
        assert!(m.contains_key(&format!("parlor_phase_switch_apply_seconds_count{{cause=\"{cause}\"}}")));
        assert!(m.contains_key(&format!("parlor_phase_switch_apply_seconds_bucket{{cause=\"{cause}\",le=\"+Inf\"}}")));
        assert!(m.contains_key(&format!("parlor_phase_switch_apply_max_seconds{{cause=\"{cause}\"}}")));
    }
    for layer in 0..3 {
        assert!(m.contains_key(&format!("parlor_simulcast_forwarded_packets_total{{layer=\"{layer}\"}}")));
    }
    assert!(m.contains_key("parlor_simulcast_layer_starts_total"));
    for decision in ["estimate_grew", "estimate_held", "estimate_cut", "upgrade", "downgrade", "upgrade_held"] {
        assert!(m.contains_key(&format!("parlor_bwe_decisions_total{{decision=\"{decision}\"}}")), "{decision}");
    }
    assert!(m.contains_key("parlor_bwe_reports_total") && m.contains_key("parlor_bwe_subscribers"));
    assert!(m.keys().all(|k| k.starts_with("parlor_")), "every series is prefixed");
}

#[tokio::test]
async fn a_silent_socket_is_treated_as_closed() {
    use serde_json::json;
    use support::Ws;
    let server = support::server_with(|c| {
        c.session.ping_seconds = 0.1;
        c.session.dead_after_seconds = 0.5;
    })
    .await;
    let mut ann = Ws::connect(&server).await;
    ann.join("quiet", "Ann").await;
    // Bob joins and then never reads again, so he answers no Ping.
    // Bob's silence starts no earlier than his connection.
    let started = std::time::Instant::now();
    let mut bob = Ws::connect(&server).await;
    bob.send(json!({"type": "join", "room": "quiet", "name": "Bob"})).await;
    let joined = ann.expect("participant_joined").await;
    let bob_id = joined["participant"]["id"].as_str().unwrap().to_owned();
    let update = ann.expect("participant_updated").await;
    assert_eq!(update["participant"]["id"], bob_id.as_str());
    assert_eq!(update["participant"]["connected"], false);
    assert!(started.elapsed() >= std::time::Duration::from_millis(300), "not before the dead-after time");
    // Ann, who reads (and so answers Pings), is still connected.
    ann.assert_alive().await;
    drop(bob);
}
