//! The parlor server: configuration, HTTP and signaling, and the wiring between signaling
//! and the media layer. `main.rs` is the command line around [`start`].

pub mod acme;
mod api;
pub mod auth;
pub mod challenges;
pub mod check;
pub mod cluster;
pub mod config;
mod glue;
pub mod health;
mod http;
mod metrics;
pub mod network;
pub mod tls;
mod web;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use parlor_media::{Counters, Media, MediaConfig};
use parlor_signaling::game::stage::StageLimits;
use parlor_signaling::{Hub, HubSettings, Registry};
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

pub use config::Config;

/// A running server.
pub struct Server {
    /// Where HTTP (and `/ws`) listens.
    pub http_addr: SocketAddr,
    /// Where each media worker listens (UDP).
    pub media_addrs: Vec<SocketAddr>,
    /// Where each media worker listens for ICE-TCP (empty when `media.tcp_port` is off).
    pub media_tcp_addrs: Vec<SocketAddr>,
    media: Arc<Media>,
    hub: Hub,
    stop: Option<oneshot::Sender<()>>,
    going_away: watch::Sender<bool>,
    task: JoinHandle<()>,
    /// With TLS: the task that accepts TCP connections and runs their handshakes (it holds the
    /// listening socket until the HTTP server drops its end).
    accepting: Option<JoinHandle<()>>,
    /// Open WebSocket connections (shutdown waits for them to close).
    connections: Arc<AtomicUsize>,
    /// Where the plain-HTTP redirect to HTTPS listens (`tls.redirect_http`).
    pub redirect_addr: Option<SocketAddr>,
    /// The TLS setup, when parlor serves HTTPS itself, and its file watch.
    tls: Option<Arc<tls::Tls>>,
    tls_watch: Option<JoinHandle<()>>,
    /// The ACME certificate manager (`[tls.acme]`).
    acme: Option<JoinHandle<()>>,
    /// This node's membership of a cluster (`[cluster]`), and the hub slot its directory reads.
    cluster: Option<(Arc<cluster::Cluster>, cluster::HubSlot)>,
}

impl Server {
    /// The media workers' counters, summed.
    pub async fn media_counters(&self) -> Counters {
        self.media.counters().await
    }

    /// The signaling statistics (`/metrics` reads the same).
    pub fn signaling_stats(&self) -> Arc<parlor_signaling::stats::SignalingStats> {
        self.hub.stats()
    }

    /// Number of open rooms.
    pub fn room_count(&self) -> usize {
        self.hub.room_count()
    }

    /// The codes of the rooms open on this node.
    pub fn room_codes(&self) -> Vec<String> {
        self.hub.room_codes()
    }

    /// This node's id in its cluster, when it is part of one.
    pub fn cluster_node_id(&self) -> Option<&str> {
        self.cluster.as_ref().map(|(c, _)| c.node_id())
    }

    /// This node's public base URL in its cluster, when it is part of one.
    pub fn cluster_url(&self) -> Option<&str> {
        self.cluster.as_ref().map(|(c, _)| c.url())
    }

    /// How long a drain may last (`cluster.drain_seconds`) when this node is part of a cluster;
    /// `None` on a single server, which does not drain.
    pub fn drain_limit(&self) -> Option<Duration> {
        self.cluster.as_ref().map(|(c, _)| c.drain_limit())
    }

    /// Drain this cluster node (SIGTERM, docs/SCALING.md): it takes no new rooms from now on
    /// (placement skips it; new rooms asked of it go to another node) while its rooms run on.
    /// Returns when nobody is left in them, at `cluster.drain_seconds`, or when `cut` resolves
    /// (a second signal), whichever comes first; [`Server::shutdown`] then leaves the cluster.
    /// On a single server it returns [`Drained::Empty`] at once.
    pub async fn drain(&self, cut: impl std::future::Future<Output = ()>) -> Drained {
        let Some((cluster, _)) = &self.cluster else { return Drained::Empty };
        let limit = cluster.drain_limit();
        cluster.start_draining(&self.hub).await;
        let stats = self.hub.stats();
        // Seats waiting for a resume count: their holders are coming back.
        let empty = async {
            while stats.participants.load(Ordering::Relaxed) > 0 {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        };
        tokio::select! {
            _ = empty => Drained::Empty,
            _ = tokio::time::sleep(limit) => Drained::Deadline,
            _ = cut => Drained::Cut,
        }
    }

    /// Load the TLS certificate and key files again (SIGHUP): new connections get the new
    /// certificate. Without TLS there is nothing to reload.
    pub fn reload_tls(&self) -> Result<()> {
        match &self.tls {
            Some(tls) => tls.reload(),
            None => Ok(()),
        }
    }

    /// Graceful shutdown: stop accepting, tell every client (`server_shutdown`) and close its
    /// socket, end every room (releasing its media), and wait — at most `limit` — for the
    /// connections to finish.
    pub async fn shutdown(mut self, limit: Duration) {
        let _ = self.going_away.send(true);
        if let Some(watch) = self.tls_watch.take() {
            watch.abort();
        }
        if let Some(acme) = self.acme.take() {
            acme.abort();
        }
        // Leave the cluster first: this node's rooms may be placed elsewhere at once.
        if let Some((cluster, slot)) = self.cluster.take() {
            cluster.leave(&self.hub.room_codes()).await;
            slot.lock().unwrap_or_else(|e| e.into_inner()).take();
        }
        self.hub.shutdown();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let deadline = tokio::time::Instant::now() + limit;
        let drained = tokio::time::timeout_at(deadline, &mut self.task).await.is_ok();
        // Upgraded sockets outlive the HTTP server's own drain: wait until each has said goodbye,
        // or the process would exit with its last frames unsent.
        while self.connections.load(Ordering::Acquire) > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // Past the limit (a client that never answers its close frame keeps the drain open for
        // the close linger) the HTTP server stops anyway, and its listening socket closes before
        // this returns: the port is free, and nothing answers on it any more.
        if !drained {
            self.task.abort();
            let _ = (&mut self.task).await;
        }
        if let Some(accepting) = self.accepting.take() {
            let _ = accepting.await;
        }
    }
}

/// What ended a [`Server::drain`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drained {
    /// Nobody is left in this node's rooms.
    Empty,
    /// `cluster.drain_seconds` passed with people still in a room.
    Deadline,
    /// Stopped early (a second signal).
    Cut,
}

impl std::fmt::Display for Drained {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Drained::Empty => "the rooms are empty",
            Drained::Deadline => "cluster.drain_seconds passed",
            Drained::Cut => "stopped by a second signal",
        })
    }
}

/// Bind everything `config` names and start serving.
pub async fn start(config: &Config) -> Result<Server> {
    let media_config = MediaConfig {
        bind_ip: config.media_bind_ip(),
        udp_port: config.media.udp_port,
        workers: config.media.workers.count(),
        announce_ips: config.announce_ips(),
        max_peers_per_worker: config.media.max_peers_per_worker,
    };
    let media = Arc::new(Media::start(&media_config).context("starting the media workers")?);
    // `media.workers = "auto"` resolves here: say to what (the ports a firewall must open follow).
    tracing::info!(
        workers = media_config.workers,
        configured = %config.media.workers,
        udp = ?media.local_addrs(),
        "media workers started"
    );
    let media_tcp_addrs = match config.media_tcp_port() {
        Some(port) => media
            .listen_tcp(SocketAddr::new(media_config.bind_ip, port))
            .await
            .context("starting ICE-TCP (media.tcp_port)")?,
        None => Vec::new(),
    };
    let settings = HubSettings {
        capacity: [("mafia".to_owned(), config.rooms.max_participants), ("stage".to_owned(), config.stage.capacity)]
            .into(),
        grace: Duration::from_secs_f64(config.session.grace_seconds),
        max_video_kbps: config.rooms.max_video_kbps,
        max_rooms: config.rooms.max_rooms,
        idle: Duration::from_secs_f64(config.rooms.idle_seconds),
        messages_per_second: config.session.messages_per_second,
        message_burst: config.session.message_burst,
        game_log_dir: (!config.games.log_dir.is_empty()).then(|| config.games.log_dir.clone().into()),
        ice_servers: config.media.ice_servers.clone(),
    };
    let auth = Arc::new(auth::Auth::new(&config.auth));
    let stage = StageLimits { max_on_stage: config.stage.max_on_stage };
    let registry = Registry::builtin_with(stage);
    // With ACME: the challenges answered on the HTTPS and redirect listeners, and the manager,
    // whose account is checked before anything listens.
    let challenges = config.tls.acme.enabled().then(|| Arc::new(challenges::Challenges::default()));
    let (tls, acme) = match &challenges {
        Some(challenges) => {
            let tls = tls::Tls::for_acme(challenges.clone())?;
            let manager = acme::prepare(&config.tls.acme, tls.clone(), challenges.clone()).await?;
            (Some(tls), Some(manager))
        }
        None if config.tls.enabled() => {
            (Some(tls::Tls::load(config.tls.cert.as_ref(), config.tls.key.as_ref())?), None)
        }
        None => (None, None),
    };
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("binding HTTP listener {}", config.server.listen))?;
    let http_addr = listener.local_addr()?;
    let media_glue = Arc::new(glue::MediaGlue(media.clone()));
    let (hub, cluster) = if config.cluster.enabled() {
        let node = cluster_settings(&config.cluster, http_addr, tls.is_some())?;
        let (cluster, directory, slot) = cluster::Cluster::new(node)?;
        let hub = Hub::with_directory(media_glue, settings, auth.clone(), registry, directory);
        *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(hub.clone());
        cluster.start_heartbeat(hub.clone()).await;
        (hub, Some((cluster, slot)))
    } else {
        (Hub::with_games(media_glue, settings, auth.clone(), registry), None)
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let (going_away, going_away_rx) = watch::channel(false);
    let heartbeat = http::Heartbeat {
        ping: Duration::from_secs_f64(config.session.ping_seconds),
        dead_after: Duration::from_secs_f64(config.session.dead_after_seconds),
    };
    let connections = Arc::new(AtomicUsize::new(0));
    let app = http::router(http::AppState {
        hub: hub.clone(),
        media: media.clone(),
        heartbeat,
        auth: auth.clone(),
        connections: connections.clone(),
        max_connections: config.server.max_connections,
        going_away: going_away_rx.clone(),
        cluster: cluster.as_ref().map(|(c, _)| c.clone()),
    })
    .merge(api::router(api::ApiState {
        hub: hub.clone(),
        auth,
        tls: tls.is_some(),
        listen: http_addr,
        cluster: cluster.as_ref().map(|(c, _)| c.clone()),
    }));
    // Client addresses feed the per-address lookup limit.
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    let stopped = async move {
        let _ = stopped.await;
    };
    let mut accepting = None;
    let task = match &tls {
        Some(tls) => {
            use axum::serve::ListenerExt;
            let (listener, accept_task) = tls.listener(listener)?;
            accepting = Some(accept_task);
            let listener = listener.tap_io(|_| {});
            tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(stopped).await {
                    tracing::error!("HTTPS server failed: {e}");
                }
            })
        }
        None => tokio::spawn(async move {
            use axum::serve::ListenerExt;
            // Signaling is many small messages in bursts (a phase, then everyone's media
            // state): with Nagle's algorithm a burst's tail waited for the client's delayed
            // ACK, about 40 ms on Linux. The TLS listener sets the same option.
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(stopped).await {
                tracing::error!("HTTP server failed: {e}");
            }
        }),
    };
    let redirect_addr = match config.tls.redirect_http.parse::<SocketAddr>() {
        Ok(addr) if tls.is_some() => {
            let plain = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding the HTTP redirect listener {addr}"))?;
            let bound = plain.local_addr()?;
            tracing::info!(%bound, "plain HTTP redirects to HTTPS");
            let redirect = tls::redirect_router(http_addr.port(), challenges.clone());
            let mut going = going_away_rx.clone();
            tokio::spawn(async move {
                let stop = async move {
                    let _ = going.wait_for(|g| *g).await;
                };
                if let Err(e) = axum::serve(plain, redirect).with_graceful_shutdown(stop).await {
                    tracing::error!("HTTP redirect listener failed: {e}");
                }
            });
            Some(bound)
        }
        _ => None,
    };
    let tls_watch = match (&tls, config.tls.watch_seconds) {
        (Some(tls), secs) if secs > 0.0 && acme.is_none() => Some(tls.watch(Duration::from_secs_f64(secs))),
        _ => None,
    };
    let acme = acme.map(acme::Manager::spawn);
    tracing::info!(%http_addr, tls = tls.is_some(), announce = ?media_config.announce_ips, "parlor serving");
    Ok(Server {
        http_addr,
        media_addrs: media.local_addrs(),
        media_tcp_addrs,
        media,
        hub,
        stop: Some(stop),
        going_away,
        task,
        accepting,
        connections,
        redirect_addr,
        tls,
        tls_watch,
        acme,
        cluster,
    })
}

/// `[cluster]` resolved: the node id chosen and this node's URL known.
fn cluster_settings(
    config: &config::ClusterConfig,
    http_addr: SocketAddr,
    tls: bool,
) -> Result<cluster::ClusterSettings> {
    let url = if config.url.is_empty() {
        if http_addr.ip().is_unspecified() {
            anyhow::bail!(
                "invalid configuration\n  cluster.url: required when server.listen is a wildcard address ({http_addr})"
            );
        }
        format!("{}://{http_addr}", if tls { "https" } else { "http" })
    } else {
        config.url.trim_end_matches('/').to_owned()
    };
    let node_id = if config.node_id.is_empty() { cluster::random_node_id() } else { config.node_id.clone() };
    Ok(cluster::ClusterSettings {
        redis: config.redis.clone(),
        node_id,
        url,
        heartbeat: Duration::from_secs_f64(config.heartbeat_seconds),
        ttl: Duration::from_secs_f64(config.ttl_seconds),
        drain: Duration::from_secs_f64(config.drain_seconds),
    })
}
