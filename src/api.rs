//! The room API (docs/API.md): JSON over HTTP under `/api/rooms`.
//!
//! `POST /api/rooms` creates a room and a host token; `GET /api/rooms/CODE` shows its public
//! state; `DELETE /api/rooms/CODE` closes it; `GET /api/rooms` lists every room (host key).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, Extensions, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use parlor_signaling::Registry;
use parlor_signaling::{ids, Access, ErrorCode, Hub, RoomOptions};
use serde::Deserialize;
use serde_json::json;

use crate::auth::Auth;
use crate::cluster::{Cluster, Whereabouts};
use crate::config::AuthMode;

/// Largest request body read (a room's settings are a few hundred bytes).
const MAX_BODY: usize = 16 * 1024;
/// Longest PIN, in characters.
const MAX_PIN_CHARS: usize = 32;

/// What the API handlers share.
#[derive(Clone)]
pub struct ApiState {
    pub hub: Hub,
    pub auth: Arc<Auth>,
    /// Whether parlor serves HTTPS itself (the scheme of the links it hands out).
    pub tls: bool,
    /// The server's own address, for links when a request carries no usable Host.
    pub listen: SocketAddr,
    /// This node's cluster, when it is one node of several.
    pub cluster: Option<Arc<Cluster>>,
}

/// The API's routes, with their state.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/api/rooms", get(list_rooms).post(create_room))
        .route("/api/rooms/{code}", get(room_state).delete(close_room))
        .with_state(state)
}

/// A JSON response (axum's `json` feature is off: this is all the API needs of it).
struct Json<T>(T);

impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        match serde_json::to_string(&self.0) {
            Ok(text) => ([(header::CONTENT_TYPE, "application/json")], text).into_response(),
            Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
        }
    }
}

/// An API error: a status and a JSON body `{"error": code, "message": text}`.
struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into() }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(json!({"error": self.code, "message": self.message}));
        let mut response = (self.status, body).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
        }
        response
    }
}

fn unauthorized(what: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", format!("{what}: send Authorization: Bearer <key>"))
}

fn forbidden() -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "forbidden", "that key or token does not grant this")
}

/// The bearer credential, if the request has one. A malformed header counts as a wrong one.
fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?;
    let text = value.to_str().unwrap_or("");
    let credential = text.strip_prefix("Bearer ").or_else(|| text.strip_prefix("bearer ")).unwrap_or("");
    Some(credential.trim().to_owned())
}

/// The address the lookup limit counts (see [`Auth::limited_client`]).
fn client_ip(auth: &Auth, extensions: &Extensions, headers: &HeaderMap) -> Option<IpAddr> {
    auth.limited_client(extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0), headers)
}

/// `scheme://host` as the client reached us: links must work from where the client is.
fn origin(state: &ApiState, headers: &HeaderMap) -> String {
    let forwarded_https = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"));
    let scheme = if state.tls || forwarded_https { "https" } else { "http" };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| !h.is_empty() && h.len() <= 255)
        .filter(|h| h.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b)))
        .map(str::to_owned)
        .unwrap_or_else(|| state.listen.to_string());
    format!("{scheme}://{host}")
}

/// Percent-encode everything but RFC 3986's unreserved characters.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `POST /api/rooms`'s body; every field is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateRoom {
    /// A code of one's own instead of a server-made one.
    code: Option<String>,
    /// A PIN that newcomers must give.
    pin: Option<String>,
    /// Locked from the start.
    #[serde(default)]
    locked: bool,
    /// The kind of room (default: the server's default kind, `mafia`).
    kind: Option<String>,
    /// Defaults for `start_game` (the kind's settings object).
    settings: Option<serde_json::Value>,
}

fn bad_field(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "bad_field", message)
}

/// The kind, and the rules its game's `start_game` applies to each value on its own (counts
/// against the number of players can only be checked at the start).
fn check_settings(registry: &Registry, kind: &str, settings: &serde_json::Value) -> Result<(), ApiError> {
    registry.get(kind).map_err(|e| bad_field(e.to_string()))?;
    registry.check_settings(kind, settings).map_err(|e| {
        let message = e.to_string();
        bad_field(if message.starts_with("settings") { message } else { format!("settings.{message}") })
    })
}

fn check_pin(pin: &str) -> Result<(), ApiError> {
    let n = pin.chars().count();
    if n == 0 || n > MAX_PIN_CHARS || pin.chars().any(char::is_control) || pin.trim() != pin {
        return Err(bad_field(format!(
            "pin: 1-{MAX_PIN_CHARS} characters, no control characters or surrounding spaces"
        )));
    }
    Ok(())
}

fn rate_limited(state: &ApiState, message: &str) -> Response {
    let retry = state.auth.lookup_refill_seconds().to_string();
    let error = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message);
    ([(header::RETRY_AFTER, retry)], error).into_response()
}

async fn create_room(
    State(state): State<ApiState>,
    headers: HeaderMap,
    extensions: Extensions,
    body: Bytes,
) -> Result<Response, ApiError> {
    match (bearer(&headers), state.auth.mode()) {
        (Some(key), _) if !state.auth.is_host_key(&key) => return Err(forbidden()),
        (None, AuthMode::HostKey) => return Err(unauthorized("this server creates rooms for host keys only")),
        // Open mode without a key: each room costs the address a lookup, so nobody fills the
        // server with empty rooms.
        (None, AuthMode::Open) if !state.auth.lookup(client_ip(&state.auth, &extensions, &headers), false) => {
            return Ok(rate_limited(&state, "too many rooms created from this address; wait a minute"))
        }
        _ => {}
    }
    if body.len() > MAX_BODY {
        return Err(ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", format!("at most {MAX_BODY} bytes")));
    }
    let request: CreateRoom = if body.iter().all(u8::is_ascii_whitespace) {
        CreateRoom::default()
    } else {
        let value: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_json", format!("invalid JSON: {e}")))?;
        if !value.is_object() {
            return Err(ApiError::new(StatusCode::BAD_REQUEST, "bad_json", "the body must be a JSON object"));
        }
        serde_json::from_value(value).map_err(|e| bad_field(e.to_string()))?
    };
    if let Some(code) = &request.code {
        if !ids::is_valid_code(code) {
            return Err(bad_field("code: 1-32 characters of A-Z, a-z, 0-9 and -"));
        }
    }
    if let Some(pin) = &request.pin {
        check_pin(pin)?;
    }
    let settings = request.settings.unwrap_or_default();
    let kind = request.kind.unwrap_or_else(|| state.hub.registry().default_kind().to_owned());
    check_settings(state.hub.registry(), &kind, &settings)?;
    let options = RoomOptions {
        kind: Some(kind),
        pin: request.pin,
        locked: request.locked,
        // In open mode anyone could have made the room by joining it, so its first player
        // holds the powers as usual; with host keys only the token does.
        token_host: state.auth.mode() == AuthMode::HostKey,
        keep_when_empty: true,
        settings,
    };
    // In a cluster the code is claimed cluster-wide first, so codes stay unique across nodes;
    // the room opens on this node (docs/API.md, "In a cluster").
    let mut code = request.code;
    if let Some(cluster) = &state.cluster {
        if cluster.is_draining() {
            return draining(cluster.taker().await);
        }
        let wanted = code.is_some();
        let mut tries = 0;
        loop {
            let candidate = code.clone().unwrap_or_else(ids::new_room_code);
            match cluster.claim_here(&candidate).await {
                Ok(()) => {
                    code = Some(candidate);
                    break;
                }
                Err(Some(url)) if wanted => {
                    let message = format!("a room with code {candidate} is open on another node");
                    let body = json!({"error": "room_exists", "message": message, "node_url": url});
                    return Ok((StatusCode::CONFLICT, Json(body)).into_response());
                }
                Err(Some(_)) if tries < 5 => tries += 1,
                Err(_) => return Err(cluster_unavailable()),
            }
        }
    }
    let claimed = code.clone().filter(|_| state.cluster.is_some());
    let created = state.hub.create_room(code, options);
    if let (Err(_), Some(claimed)) = (&created, &claimed) {
        // The claim must not outlive a room that never opened.
        state.hub.directory().released(claimed);
    }
    let code = created.map_err(|r| match r.code {
        ErrorCode::NameTaken => ApiError::new(StatusCode::CONFLICT, "room_exists", r.message),
        ErrorCode::TooManyRooms => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "too_many_rooms", r.message),
        _ => bad_field(r.message),
    })?;
    let token = state.auth.mint(&code, state.auth.ttl()).map_err(|e| {
        state.hub.close_room(&code);
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
    })?;
    let origin = origin(&state, &headers);
    let join_url = format!("{origin}/r/{code}");
    let qr_url = format!("{origin}/qr.svg?text={}", percent_encode(&join_url));
    tracing::info!(room = %code, "room created through the API");
    let mut body = json!({
        "code": code,
        "join_url": join_url,
        "qr_url": qr_url,
        "host_token": token.token,
        "host_token_expires_at": token.expires_at,
    });
    if let Some(cluster) = &state.cluster {
        body["node_url"] = json!(cluster.url());
    }
    Ok((StatusCode::CREATED, [(header::LOCATION, format!("/api/rooms/{code}"))], Json(body)).into_response())
}

async fn room_state(
    State(state): State<ApiState>,
    Path(code): Path<String>,
    headers: HeaderMap,
    extensions: Extensions,
) -> Result<Response, ApiError> {
    if !ids::is_valid_code(&code) {
        return Err(bad_field("room codes are 1-32 characters of A-Z, a-z, 0-9 and -"));
    }
    let info = state.hub.room_info(&code).await;
    // In a cluster a room open elsewhere is found too: its owner's URL is the answer.
    let elsewhere = match (&info, &state.cluster) {
        (None, Some(cluster)) => match cluster.locate(&code).await {
            Ok(Whereabouts::There(url)) => Some(url),
            Ok(Whereabouts::Here) => None,
            Err(()) => return Err(cluster_unavailable()),
        },
        _ => None,
    };
    let found = info.is_some() || elsewhere.is_some();
    if !state.auth.lookup(client_ip(&state.auth, &extensions, &headers), found) {
        return Ok(rate_limited(&state, "too many unknown room codes tried; wait a minute"));
    }
    match (info, elsewhere) {
        (Some(info), _) => {
            let mut body = serde_json::to_value(info)
                .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
            if let Some(cluster) = &state.cluster {
                body["node_url"] = json!(cluster.url());
            }
            Ok(Json(body).into_response())
        }
        (None, Some(url)) => Ok(Json(json!({"code": code, "remote": true, "node_url": url})).into_response()),
        (None, None) => Err(ApiError::new(StatusCode::NOT_FOUND, "room_not_found", format!("there is no room {code}"))),
    }
}

/// A draining node opens no rooms: `503 node_draining`, with the URL of a node that does
/// (`node_url`) when there is one.
fn draining(taker: Result<Option<String>, ()>) -> Result<Response, ApiError> {
    let taker = taker.map_err(|()| cluster_unavailable())?;
    let body = match taker {
        Some(url) => json!({
            "error": "node_draining",
            "message": "this node is shutting down and opens no new rooms: create the room at node_url",
            "node_url": url,
        }),
        None => json!({
            "error": "node_draining",
            "message": "this node is shutting down and no other node of the cluster takes new rooms right now; \
                        try again in a few seconds",
        }),
    };
    Ok((StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response())
}

fn cluster_unavailable() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "cluster_unavailable",
        "the cluster's directory (Redis) is unreachable: rooms on other nodes cannot be found or new ones placed now; \
         try again in a few seconds",
    )
}

async fn close_room(
    State(state): State<ApiState>,
    Path(code): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let Some(credential) = bearer(&headers) else {
        return Err(unauthorized("closing a room takes its host token or a host key"));
    };
    if !state.auth.is_host_key(&credential) && !state.auth.verify(&code, &credential) {
        return Err(forbidden());
    }
    if state.hub.close_room(&code) {
        tracing::info!(room = %code, "room closed through the API");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(StatusCode::NOT_FOUND, "room_not_found", format!("there is no room {code}")))
    }
}

async fn list_rooms(State(state): State<ApiState>, headers: HeaderMap) -> Result<Response, ApiError> {
    match bearer(&headers) {
        None => return Err(unauthorized("listing rooms takes a host key")),
        Some(key) if !state.auth.is_host_key(&key) => return Err(forbidden()),
        Some(_) => {}
    }
    let rooms = state.hub.rooms().await;
    Ok(Json(json!({"rooms": rooms})).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_encoding() {
        assert_eq!(percent_encode("http://h:1/r/ab-c"), "http%3A%2F%2Fh%3A1%2Fr%2Fab-c");
        assert_eq!(percent_encode("a b~é"), "a%20b~%C3%A9");
    }

    #[test]
    fn settings_rules() {
        let r = Registry::builtin();
        let check = |v: serde_json::Value| check_settings(&r, "mafia", &v);
        assert!(check(json!({})).is_ok());
        assert!(check(json!(null)).is_ok());
        assert!(check(json!({"mafia": 0})).is_err());
        assert!(check(json!({"doctor": 17})).is_err());
        assert!(check(json!({"phase_seconds": {"lobby": 5.0}})).is_err());
        assert!(check(json!({"phase_seconds": {"night": 0.0}})).is_err());
        assert!(check(json!({"phase_seconds": {"night": 30.0}})).is_ok());
        assert!(check(json!({"mafia": "two"})).is_err());
        assert!(check_settings(&r, "poker", &json!({})).is_err(), "an unknown kind");
    }

    #[test]
    fn pins() {
        assert!(check_pin("1234").is_ok());
        assert!(check_pin("").is_err());
        assert!(check_pin(" 12").is_err());
        assert!(check_pin("1\n2").is_err());
        assert!(check_pin(&"9".repeat(33)).is_err());
    }

    #[test]
    fn bearer_header() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer(&h), None);
        h.insert(header::AUTHORIZATION, "Bearer abc".parse().unwrap());
        assert_eq!(bearer(&h).as_deref(), Some("abc"));
        h.insert(header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert_eq!(bearer(&h).as_deref(), Some(""));
    }
}
