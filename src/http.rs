//! HTTP: the web client, `/healthz`, and the `/ws` signaling socket.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures_util::{SinkExt, StreamExt};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::watch;

use parlor_media::Media;
use parlor_signaling::protocol::CLOSE_GOING_AWAY;
use parlor_signaling::{ids, Connection, ErrorCode, Hub, Outbound, ServerMsg};

use crate::{metrics, web};

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub hub: Hub,
    pub media: Arc<Media>,
    pub heartbeat: Heartbeat,
    /// Access rules (here: whose forwarding headers name the client).
    pub auth: Arc<crate::auth::Auth>,
    /// Open WebSocket connections, and how many may be open at once.
    pub connections: Arc<AtomicUsize>,
    pub max_connections: usize,
    /// Becomes true when the server shuts down.
    pub going_away: watch::Receiver<bool>,
    /// In a cluster: whether this node drains (SIGTERM), so `/readyz` turns load balancers away.
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
}

/// Holds one of the `max_connections` places while a socket lives.
struct Place(Arc<AtomicUsize>);

impl Place {
    fn take(count: &Arc<AtomicUsize>, max: usize) -> Option<Place> {
        let taken = count.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1));
        taken.ok().map(|_| Place(count.clone()))
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// WebSocket liveness: Ping every `ping`; a socket silent for `dead_after` is closed.
#[derive(Clone, Copy, Debug)]
pub struct Heartbeat {
    pub ping: Duration,
    pub dead_after: Duration,
}

/// Frames up to this size are read and then refused with `too_large` (the protocol's limit
/// is 64 KiB); larger ones make the WebSocket layer drop the connection outright.
const READ_LIMIT: usize = 1 << 20;
/// Each socket's read buffer (tungstenite's default is 128 KiB, and its write buffer another
/// 128 KiB: 150 KB a participant, more than its whole media state, for messages of a few hundred
/// bytes). A larger message is read in several chunks; writes go out one message at a time
/// (every send flushes anyway), so the write buffer only ever holds the message being sent.
const READ_BUFFER: usize = 4096;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(|| async { serve_asset("/") }))
        .route("/r/{code}", get(room_page))
        // The room's TV view: the same page, which reads the path (no camera, receive-only).
        .route("/r/{code}/tv", get(room_page))
        // Liveness (the container's health check): up while the process serves, draining or not.
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .route("/qr.svg", get(qr_svg))
        .route("/metrics", get(metrics_text))
        .route("/ws", get(ws_upgrade))
        // Every other file of the web client, from the table build.rs generates.
        .fallback(static_asset)
        .with_state(state)
}

/// Readiness for a load balancer: 503 while the node drains (its rooms run on, new ones belong
/// elsewhere) or shuts down.
async fn ready(State(state): State<AppState>) -> Response {
    if *state.going_away.borrow() {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response()
    } else if state.cluster.as_ref().is_some_and(|c| c.is_draining()) {
        (StatusCode::SERVICE_UNAVAILABLE, "draining").into_response()
    } else {
        "ready".into_response()
    }
}

async fn static_asset(method: axum::http::Method, uri: axum::http::Uri) -> Response {
    if method != axum::http::Method::GET && method != axum::http::Method::HEAD {
        return StatusCode::NOT_FOUND.into_response();
    }
    serve_asset(uri.path())
}

fn serve_asset(path: &str) -> Response {
    match web::asset(path) {
        Some(a) => {
            ([(header::CONTENT_TYPE, a.content_type), (header::CACHE_CONTROL, "no-cache")], a.body).into_response()
        }
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
            let svg = code.render::<qrcode::render::svg::Color<'_>>().min_dimensions(200, 200).quiet_zone(true).build();
            ([(header::CONTENT_TYPE, "image/svg+xml"), (header::CACHE_CONTROL, "max-age=3600")], svg).into_response()
        }
        Err(e) => (StatusCode::BAD_REQUEST, format!("cannot encode: {e}")).into_response(),
    }
}

async fn metrics_text(State(state): State<AppState>) -> Response {
    let body = metrics::render(&state.hub, &state.media).await;
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body).into_response()
}

async fn ws_upgrade(
    ws: WebSocketUpgrade,
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    extensions: axum::http::Extensions,
) -> Response {
    // The client's address limits its lookups of unknown room codes (see Auth::limited_client).
    let peer = extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0);
    let client = state.auth.limited_client(peer, &headers);
    let ws =
        ws.max_message_size(READ_LIMIT).max_frame_size(READ_LIMIT).read_buffer_size(READ_BUFFER).write_buffer_size(0);
    let Some(place) = Place::take(&state.connections, state.max_connections) else {
        return ws.on_upgrade(|socket| {
            refuse(socket, ErrorCode::ServerFull, "the server holds as many connections as it may")
        });
    };
    if *state.going_away.borrow() {
        return ws.on_upgrade(|socket| refuse(socket, ErrorCode::ServerShutdown, "the server is shutting down"));
    }
    ws.on_upgrade(move |socket| async move {
        serve_socket(socket, state.hub, state.heartbeat, state.going_away, client).await;
        drop(place);
    })
}

/// Say why, then close.
async fn refuse(socket: WebSocket, code: ErrorCode, message: &str) {
    let text = ServerMsg::error(code, message).to_text();
    let (mut sink, mut stream) = socket.split();
    let close = CloseFrame { code: CLOSE_GOING_AWAY, reason: "".into() };
    // A client may send its `join` before it reads this: the handshake is completed all the same.
    close_gracefully(&mut sink, &mut stream, Some(text), close).await;
}

/// How long a socket the server closes may take to answer its close frame. Until then what
/// the client sends is read and discarded, so the socket is not dropped with unread bytes (the
/// kernel would answer with a reset, and a reset makes the client's kernel discard what the
/// client has not read yet: the last replies, the `error`, the close frame itself). A client
/// that goes on sending, or never answers, is dropped when this runs out.
const CLOSE_LINGER: Duration = Duration::from_secs(2);

/// How a socket's loop ended.
enum Ending {
    /// The server closes: this text first if any, this close frame, then the rest of the
    /// closing handshake (see [`close_gracefully`]).
    Close(Option<String>, CloseFrame),
    /// The client sent its close frame: the WebSocket layer has queued the reply; flush it.
    ClosedByClient,
    /// The connection is gone (an error, end of stream, silence): nothing more to say.
    Gone,
}

/// The server is going away: tell the client why, then close with 1001.
fn server_shutdown() -> Ending {
    let text = ServerMsg::error(ErrorCode::ServerShutdown, "the server is shutting down").to_text();
    Ending::Close(Some(text), CloseFrame { code: CLOSE_GOING_AWAY, reason: "server_shutdown".into() })
}

/// Send `text` if any and the server's close frame, then read and discard until the client's
/// close frame or the end of the stream — for at most [`CLOSE_LINGER`] in all — so the
/// closing handshake completes and the client reads everything sent before it.
async fn close_gracefully(
    sink: &mut futures_util::stream::SplitSink<WebSocket, Message>,
    stream: &mut futures_util::stream::SplitStream<WebSocket>,
    text: Option<String>,
    frame: CloseFrame,
) {
    let deadline = tokio::time::Instant::now() + CLOSE_LINGER;
    let send = async {
        if let Some(text) = text {
            sink.send(Message::Text(text.into())).await?;
        }
        sink.send(Message::Close(Some(frame))).await
    };
    match tokio::time::timeout_at(deadline, send).await {
        Ok(Ok(())) => {}
        // The socket is gone, or takes nothing: there is no handshake to wait for.
        Ok(Err(_)) | Err(_) => return,
    }
    let drain = async {
        while let Some(Ok(message)) = stream.next().await {
            if let Message::Close(_) = message {
                break;
            }
        }
    };
    if tokio::time::timeout_at(deadline, drain).await.is_err() {
        tracing::debug!("no close frame back within {CLOSE_LINGER:?}; dropping the socket");
    }
}

async fn serve_socket(
    socket: WebSocket,
    hub: Hub,
    heartbeat: Heartbeat,
    mut going_away: watch::Receiver<bool>,
    client: Option<std::net::IpAddr>,
) {
    let (mut sink, mut stream) = socket.split();
    let stats = hub.stats();
    let (mut conn, mut out) = Connection::new(hub);
    if let Some(ip) = client {
        conn.set_client(ip);
    }
    // Each Ping carries its send time (µs since this socket opened); the Pong echoes it.
    let opened = tokio::time::Instant::now();
    let mut ping = tokio::time::interval(heartbeat.ping);
    ping.tick().await;
    let mut last_heard = tokio::time::Instant::now();
    let ending = loop {
        tokio::select! {
            // Shutdown first: the rooms end at the same moment and drop their senders, and the
            // client must still hear why its socket closes.
            biased;
            _ = going_away.changed() => break server_shutdown(),
            // What is queued goes out before the next frame is read: a client that floods must
            // not starve its own replies, its `rate_limited` or its close.
            outbound = out.recv() => match outbound {
                Some(Outbound::Text(text)) => {
                    if sink.send(Message::Text(text.into())).await.is_err() {
                        break Ending::Gone;
                    }
                }
                Some(Outbound::Close { code, reason }) => {
                    break Ending::Close(None, CloseFrame { code, reason: reason.into() })
                }
                None => {
                    if *going_away.borrow() {
                        break server_shutdown();
                    }
                    break Ending::Gone;
                }
            },
            frame = stream.next() => {
                last_heard = tokio::time::Instant::now();
                match frame {
                Some(Ok(Message::Text(text))) => conn.on_text(text.as_str()).await,
                Some(Ok(Message::Binary(_))) => conn.on_binary(),
                Some(Ok(Message::Pong(payload))) => {
                    if let Ok(sent) = <[u8; 8]>::try_from(payload.as_ref()) {
                        let sent = Duration::from_micros(u64::from_be_bytes(sent));
                        let rtt = opened.elapsed().saturating_sub(sent);
                        stats.rtt.observe(rtt);
                        // The seat's latency, as games read it (never a figure the client sends).
                        conn.on_pong(rtt);
                    }
                }
                Some(Ok(Message::Ping(_))) => {}
                Some(Ok(Message::Close(_))) => break Ending::ClosedByClient,
                Some(Err(_)) | None => break Ending::Gone,
                }
            },
            _ = ping.tick() => {
                if last_heard.elapsed() >= heartbeat.dead_after {
                    tracing::debug!("socket silent for {:?}; treating it as closed", heartbeat.dead_after);
                    break Ending::Gone;
                }
                let now = (opened.elapsed().as_micros() as u64).to_be_bytes();
                if sink.send(Message::Ping(now.to_vec().into())).await.is_err() {
                    break Ending::Gone;
                }
            }
        }
    };
    // The room hears at once; the socket's goodbye below takes at most CLOSE_LINGER.
    conn.on_closed();
    match ending {
        Ending::Close(text, frame) => close_gracefully(&mut sink, &mut stream, text, frame).await,
        // Sends the reply the WebSocket layer queued to the client's close frame.
        Ending::ClosedByClient => {
            let _ = tokio::time::timeout(CLOSE_LINGER, sink.close()).await;
        }
        Ending::Gone => {}
    }
}
