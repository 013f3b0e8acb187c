//! The HTTP surface: health, the embedded web client, room pages and QR codes.

mod support;

use support::{http_get, server};

#[tokio::test]
async fn health_pages_and_assets() {
    let server = server().await;
    assert_eq!(http_get(&server, "/healthz").await, (200, "text/plain; charset=utf-8".into(), "ok".into()));
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
