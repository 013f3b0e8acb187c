//! HTTP: the web client, `/healthz`, and the `/ws` signaling socket.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures_util::{SinkExt, StreamExt};
use parlor_signaling::{ids, Connection, Hub, Outbound};

use crate::web;

/// How often the server pings each socket (browsers answer WebSocket pings on their own).
const PING_INTERVAL: Duration = Duration::from_secs(5);
/// A socket from which nothing at all (not even a Pong) arrived for this long is dead.
const DEAD_AFTER: Duration = Duration::from_secs(15);
/// Frames up to this size are read and then refused with `too_large` (the protocol's limit
/// is 64 KiB); larger ones make the WebSocket layer drop the connection outright.
const READ_LIMIT: usize = 1 << 20;

pub fn router(hub: Hub) -> Router {
    Router::new()
        .route("/", get(|| async { serve_asset("/") }))
        .route("/r/{code}", get(room_page))
        .route("/app.js", get(|| async { serve_asset("/app.js") }))
        .route("/style.css", get(|| async { serve_asset("/style.css") }))
        .route("/healthz", get(|| async { "ok" }))
        .route("/qr.svg", get(qr_svg))
        .route("/ws", get(ws_upgrade))
        .with_state(hub)
}

fn serve_asset(path: &str) -> Response {
    match web::asset(path) {
        Some(a) => ([(header::CONTENT_TYPE, a.content_type), (header::CACHE_CONTROL, "no-cache")], a.body)
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn room_page(Path(code): Path<String>) -> Response {
    if ids::is_valid_code(&code) {
        serve_asset("/")
    } else {
        (StatusCode::NOT_FOUND, "room codes are 1-32 characters of A-Z, a-z, 0-9 and -").into_response()
    }
}

/// Longest text the QR endpoint encodes (an invite link is far shorter).
const QR_MAX_TEXT: usize = 512;

#[derive(serde::Deserialize)]
struct QrQuery {
    text: String,
}

/// `GET /qr.svg?text=…`: the text as an SVG QR code. The browser asks for its own invite link,
/// so the code is right behind any proxy or port mapping.
async fn qr_svg(Query(q): Query<QrQuery>) -> Response {
    if q.text.is_empty() || q.text.len() > QR_MAX_TEXT {
        return (StatusCode::BAD_REQUEST, format!("text must be 1-{QR_MAX_TEXT} bytes")).into_response();
    }
    match qrcode::QrCode::new(q.text.as_bytes()) {
        Ok(code) => {
            let svg = code
                .render::<qrcode::render::svg::Color<'_>>()
                .min_dimensions(200, 200)
                .quiet_zone(true)
                .build();
            ([(header::CONTENT_TYPE, "image/svg+xml"), (header::CACHE_CONTROL, "max-age=3600")], svg).into_response()
        }
        Err(e) => (StatusCode::BAD_REQUEST, format!("cannot encode: {e}")).into_response(),
    }
}

async fn ws_upgrade(ws: WebSocketUpgrade, State(hub): State<Hub>) -> Response {
    ws.max_message_size(READ_LIMIT).max_frame_size(READ_LIMIT).on_upgrade(move |socket| serve_socket(socket, hub))
}

async fn serve_socket(socket: WebSocket, hub: Hub) {
    let (mut sink, mut stream) = socket.split();
    let (mut conn, mut out) = Connection::new(hub);
    let mut ping = tokio::time::interval(PING_INTERVAL);
    ping.tick().await;
    let mut last_heard = tokio::time::Instant::now();
    loop {
        tokio::select! {
            frame = stream.next() => {
                last_heard = tokio::time::Instant::now();
                match frame {
                Some(Ok(Message::Text(text))) => conn.on_text(text.as_str()).await,
                Some(Ok(Message::Binary(_))) => conn.on_binary(),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                }
            },
            outbound = out.recv() => match outbound {
                Some(Outbound::Text(text)) => {
                    if sink.send(Message::Text(text.into())).await.is_err() {
                        break;
                    }
                }
                Some(Outbound::Close { code, reason }) => {
                    let _ = sink.send(Message::Close(Some(CloseFrame { code, reason: reason.into() }))).await;
                    break;
                }
                None => break,
            },
            _ = ping.tick() => {
                if last_heard.elapsed() >= DEAD_AFTER {
                    tracing::debug!("socket silent for {DEAD_AFTER:?}; treating it as closed");
                    break;
                }
                if sink.send(Message::Ping(Default::default())).await.is_err() {
                    break;
                }
            }
        }
    }
    conn.on_closed();
}
