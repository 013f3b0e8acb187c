//! Janus VideoRoom, driven by the same synthetic participants: the Janus process (started from
//! the configuration in `bench/janus/`) and a participant's signaling over Janus's WebSocket transport
//! (protocol `janus-protocol`): create a session, attach `janus.plugin.videoroom`, `join` as a
//! publisher and `configure` with our offer; later attach again, `join` as a subscriber to
//! every other feed (one multistream subscription) and `start` with our answer to Janus's offer.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::sync::mpsc::{self, UnboundedReceiver};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::media::{Cmd, PeerSpec, SigOut};
use crate::participant::{Ctrl, PartCtx};
use crate::payload::now_us;

/// The Janus configuration this project keeps (`bench/janus/`: the `.jcfg` files and `netns.sh`),
/// found from the bench crate's own folder so it works from any checkout.
pub const CONFIG_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/janus");
/// Where Janus's WebSocket transport listens (janus.transport.websockets.jcfg).
pub const WS_URL: &str = "ws://127.0.0.1:8188";
/// The VideoRoom room of janus.plugin.videoroom.jcfg.
pub const ROOM: u64 = 1234;
/// Sessions expire after 60 s without traffic (janus.jcfg `session_timeout`).
const KEEPALIVE: Duration = Duration::from_secs(20);
/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// A Janus process we started.
pub struct JanusProc {
    child: Child,
    /// Its process id.
    pub pid: u32,
    dir: PathBuf,
}

impl JanusProc {
    /// Start `janus` with the configuration files in `config_dir` (`@CONFIG_DIR@` replaced by a
    /// private copy's folder), logging to `log`, and wait until its WebSocket port answers.
    pub fn start(config_dir: &Path, log: &Path) -> anyhow::Result<JanusProc> {
        let dir = std::env::temp_dir().join(format!("parlor-bench-janus-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let mut copied = 0;
        for entry in std::fs::read_dir(config_dir).with_context(|| format!("reading {}", config_dir.display()))? {
            let path = entry?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("jcfg") {
                continue;
            }
            let text = std::fs::read_to_string(&path)?;
            let name = path.file_name().ok_or_else(|| anyhow!("bad file name"))?;
            std::fs::write(dir.join(name), text.replace("@CONFIG_DIR@", &dir.to_string_lossy()))?;
            copied += 1;
        }
        if copied == 0 {
            bail!("no .jcfg files in {}", config_dir.display());
        }
        let out = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let err = out.try_clone()?;
        let child = crate::sys::server_command("janus".as_ref())
            .arg("-F")
            .arg(&dir)
            .arg("-C")
            .arg(dir.join("janus.jcfg"))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .context("starting janus (apt-get install -y janus)")?;
        let pid = child.id();
        let mut proc_ = JanusProc { child, pid, dir };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if std::net::TcpStream::connect("127.0.0.1:8188").is_ok() {
                return Ok(proc_);
            }
            if let Ok(Some(status)) = proc_.child.try_wait() {
                bail!("janus exited ({status}) before listening; see {}", log.display());
            }
            if Instant::now() >= deadline {
                bail!("janus did not listen on 127.0.0.1:8188 within 30 s; see {}", log.display());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stop it (SIGTERM, then SIGKILL after 5 s) and remove its configuration copy.
    pub fn stop(mut self) {
        crate::sys::signal(self.pid, libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

type Sink = SplitSink<WebSocketStream<MaybeTlsStream<TcpStream>>, Message>;
type Stream = SplitStream<WebSocketStream<MaybeTlsStream<TcpStream>>>;

/// One Janus session on one WebSocket.
struct Session {
    sink: Sink,
    stream: Stream,
    id: u64,
    next_tx: u64,
    /// Asynchronous messages read while waiting for a reply, handled later.
    backlog: VecDeque<Value>,
    last_sent: Instant,
}

impl Session {
    async fn connect(url: &str) -> anyhow::Result<Session> {
        let mut req = url.into_client_request()?;
        req.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static("janus-protocol"));
        let (ws, _) = tokio_tungstenite::connect_async(req).await.with_context(|| format!("connect {url}"))?;
        let (sink, stream) = ws.split();
        Ok(Session { sink, stream, id: 0, next_tx: 1, backlog: VecDeque::new(), last_sent: Instant::now() })
    }

    async fn send(&mut self, mut v: Value) -> anyhow::Result<String> {
        let tx = format!("t{}", self.next_tx);
        self.next_tx += 1;
        v["transaction"] = json!(tx);
        if self.id != 0 {
            v["session_id"] = json!(self.id);
        }
        self.sink.send(Message::Text(v.to_string().into())).await?;
        self.last_sent = Instant::now();
        Ok(tx)
    }

    async fn next(&mut self) -> anyhow::Result<Value> {
        loop {
            match self.stream.next().await {
                Some(Ok(Message::Text(t))) => return Ok(serde_json::from_str(t.as_str())?),
                Some(Ok(Message::Close(_))) | None => bail!("janus closed the socket"),
                Some(Ok(_)) => {}
                Some(Err(e)) => bail!("websocket: {e}"),
            }
        }
    }

    /// Send a request and wait for its reply (`success`, or the plugin's `event` after an
    /// `ack`); other messages are kept for later.
    async fn request(&mut self, v: Value) -> anyhow::Result<Value> {
        let tx = self.send(v).await?;
        let wait = async {
            loop {
                let m = self.next().await?;
                if m["transaction"].as_str() == Some(tx.as_str()) {
                    match m["janus"].as_str() {
                        Some("ack") => continue,
                        Some("error") => bail!("janus error: {}", m["error"]),
                        Some("event") | Some("success") => {
                            let data = &m["plugindata"]["data"];
                            if data.get("error").is_some() {
                                bail!("videoroom error {}: {}", data["error_code"], data["error"]);
                            }
                            return Ok(m);
                        }
                        _ => {}
                    }
                }
                self.backlog.push_back(m);
            }
        };
        tokio::time::timeout(REQUEST_TIMEOUT, wait)
            .await
            .map_err(|_| anyhow!("no reply from janus within {REQUEST_TIMEOUT:?}"))?
    }

    async fn attach(&mut self) -> anyhow::Result<u64> {
        let r = self.request(json!({"janus": "attach", "plugin": "janus.plugin.videoroom"})).await?;
        r["data"]["id"].as_u64().ok_or_else(|| anyhow!("attach without handle id: {r}"))
    }

    async fn message(&mut self, handle: u64, body: Value, jsep: Option<Value>) -> anyhow::Result<Value> {
        let mut m = json!({"janus": "message", "handle_id": handle, "body": body});
        if let Some(j) = jsep {
            m["jsep"] = j;
        }
        self.request(m).await
    }

    async fn trickle_done(&mut self, handle: u64) -> anyhow::Result<()> {
        self.send(json!({"janus": "trickle", "handle_id": handle, "candidate": {"completed": true}})).await?;
        Ok(())
    }
}

/// Wait for the first SDP of the wanted kind from a peer.
async fn sdp_from(rx: &mut UnboundedReceiver<SigOut>, want_offer: bool) -> anyhow::Result<String> {
    let wait = async {
        while let Some(out) = rx.recv().await {
            match out {
                SigOut::Offer(s) if want_offer => return Ok(s),
                SigOut::Answer(s) if !want_offer => return Ok(s),
                SigOut::Failed(why) => bail!("media: {why}"),
                _ => {}
            }
        }
        bail!("media peer gone")
    };
    tokio::time::timeout(REQUEST_TIMEOUT, wait).await.map_err(|_| anyhow!("no SDP from the media thread"))?
}

/// Run one participant until told to leave.
pub(crate) async fn participant(ctx: PartCtx, mut ctrl: UnboundedReceiver<Ctrl>) {
    if let Err(e) = run(&ctx, &mut ctrl).await {
        ctx.info.error(format!("{e:#}"));
    }
    ctx.media.send(Cmd::Remove(ctx.peer));
    ctx.sub_media.send(Cmd::Remove(ctx.sub_peer));
    ctx.info.closed.store(true, Ordering::SeqCst);
}

async fn run(ctx: &PartCtx, ctrl: &mut UnboundedReceiver<Ctrl>) -> anyhow::Result<()> {
    ctx.info.connect_us.store(now_us(), Ordering::SeqCst);
    let mut s = Session::connect(&ctx.url).await?;
    let created = s.request(json!({"janus": "create"})).await?;
    s.id = created["data"]["id"].as_u64().ok_or_else(|| anyhow!("create without session id: {created}"))?;
    ctx.info.set_id(&format!("janus-{}", ctx.idx));

    let mut pub_handle = 0;
    let (pub_tx, mut pub_rx) = mpsc::unbounded_channel();
    if let Some(publish) = &ctx.publish {
        pub_handle = s.attach().await?;
        let joined = s
            .message(
                pub_handle,
                json!({"request": "join", "ptype": "publisher", "room": ctx.janus_room, "display": ctx.name}),
                None,
            )
            .await?;
        let feed =
            joined["plugindata"]["data"]["id"].as_u64().ok_or_else(|| anyhow!("joined without feed id: {joined}"))?;
        ctx.media.send(Cmd::Add(Box::new(PeerSpec {
            peer: ctx.peer,
            owner: ctx.idx,
            label: ctx.name.clone(),
            publish: Some(publish.clone()),
            receive_only: false,
            offer: true,
            bind: ctx.bind,
            sig: pub_tx,
        })));
        let offer = sdp_from(&mut pub_rx, true).await?;
        let configured = s
            .message(
                pub_handle,
                json!({"request": "configure", "audio": true, "video": true}),
                Some(json!({"type": "offer", "sdp": offer})),
            )
            .await?;
        let answer =
            configured["jsep"]["sdp"].as_str().ok_or_else(|| anyhow!("configure without answer: {configured}"))?;
        ctx.media.send(Cmd::RemoteAnswer(ctx.peer, answer.to_owned()));
        // Janus lists the published streams with the mids subscribers ask for.
        let streams = configured["plugindata"]["data"]["streams"].as_array().cloned().unwrap_or_default();
        let video = streams.iter().find(|st| st["type"] == "video").and_then(|st| st["mid"].as_str());
        *ctx.info.video_mid.lock().unwrap_or_else(|e| e.into_inner()) = video.map(str::to_owned);
        s.trickle_done(pub_handle).await?;
        ctx.info.feed.store(feed, Ordering::SeqCst);
    }
    ctx.info.welcome_us.store(now_us(), Ordering::SeqCst);

    let mut sub_handle = 0;
    let (sub_tx, mut sub_rx) = mpsc::unbounded_channel();
    let mut sub_tx = Some(sub_tx);
    let mut keepalive = tokio::time::interval(KEEPALIVE);
    keepalive.tick().await;
    let (mut pub_open, mut sub_open) = (true, true);
    loop {
        while let Some(m) = s.backlog.pop_front() {
            on_async(ctx, &m, pub_handle, sub_handle);
        }
        tokio::select! {
            m = s.next() => on_async(ctx, &m?, pub_handle, sub_handle),
            c = ctrl.recv() => match c {
                Some(Ctrl::Subscribe(feeds)) => {
                    let Some(tx) = sub_tx.take() else { continue };
                    sub_handle = s.attach().await?;
                    let streams: Vec<Value> = feeds
                        .iter()
                        .map(|(f, mid)| match mid {
                            Some(mid) => json!({"feed": f, "mid": mid}),
                            None => json!({"feed": f}),
                        })
                        .collect();
                    let attached = s
                        .message(sub_handle, json!({"request": "join", "ptype": "subscriber", "room": ctx.janus_room, "streams": streams}), None)
                        .await?;
                    let offer = attached["jsep"]["sdp"].as_str().ok_or_else(|| anyhow!("subscriber join without offer: {attached}"))?;
                    ctx.sub_media.send(Cmd::Add(Box::new(PeerSpec {
                        peer: ctx.sub_peer,
                        owner: ctx.idx,
                        label: format!("{}-sub", ctx.name),
                        publish: None,
                        receive_only: false,
                        offer: false,
                        bind: ctx.bind,
                        sig: tx,
                    })));
                    ctx.sub_media.send(Cmd::RemoteOffer(ctx.sub_peer, offer.to_owned()));
                    let answer = sdp_from(&mut sub_rx, false).await?;
                    s.message(sub_handle, json!({"request": "start"}), Some(json!({"type": "answer", "sdp": answer}))).await?;
                    s.trickle_done(sub_handle).await?;
                }
                Some(Ctrl::Send(_)) => {}
                Some(Ctrl::Leave) | None => {
                    let _ = s.send(json!({"janus": "destroy"})).await;
                    let _ = tokio::time::timeout(Duration::from_secs(2), s.sink.close()).await;
                    return Ok(());
                }
            },
            out = pub_rx.recv(), if pub_open => match out {
                Some(SigOut::Failed(why)) => ctx.info.error(format!("publisher media: {why}")),
                Some(_) => {}
                None => pub_open = false,
            },
            out = sub_rx.recv(), if sub_open => match out {
                Some(SigOut::Failed(why)) => ctx.info.error(format!("subscriber media: {why}")),
                Some(_) => {}
                None => sub_open = false,
            },
            _ = keepalive.tick() => {
                if s.last_sent.elapsed() >= KEEPALIVE / 2 {
                    s.send(json!({"janus": "keepalive"})).await?;
                }
            }
        }
    }
}

/// Messages nobody waits for: trickled candidates, hang-ups, status events.
fn on_async(ctx: &PartCtx, m: &Value, pub_handle: u64, sub_handle: u64) {
    let sender = m["sender"].as_u64().unwrap_or(0);
    match m["janus"].as_str().unwrap_or_default() {
        "trickle" => {
            let line = m["candidate"]["candidate"].as_str().unwrap_or_default();
            if line.is_empty() {
                return;
            }
            if sender == pub_handle && pub_handle != 0 {
                ctx.media.send(Cmd::RemoteCandidate(ctx.peer, line.to_owned()));
            } else if sender == sub_handle && sub_handle != 0 {
                ctx.sub_media.send(Cmd::RemoteCandidate(ctx.sub_peer, line.to_owned()));
            }
        }
        "hangup" => ctx.info.error(format!("janus hung up handle {sender}: {}", m["reason"])),
        "detached" => ctx.info.error(format!("janus detached handle {sender}")),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    #[test]
    fn the_configuration_lives_in_the_project_and_names_no_absolute_path() {
        let dir = Path::new(super::CONFIG_DIR);
        assert!(dir.join("janus.jcfg").is_file() && dir.join("netns.sh").is_file(), "{}", dir.display());
        let mut files = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().and_then(|e| e.to_str()) != Some("jcfg") {
                continue;
            }
            files += 1;
            for (n, line) in std::fs::read_to_string(&path).unwrap().lines().enumerate() {
                let Some((key, value)) = line.split_once('=') else { continue };
                // `base_path` is the HTTP API's URL path, not a file.
                if key.trim() == "base_path" {
                    continue;
                }
                assert!(
                    !value.trim().trim_matches('"').starts_with('/'),
                    "{}:{}: an absolute path: {line}",
                    path.display(),
                    n + 1
                );
            }
        }
        assert!(files >= 4, "the jcfg files are there");
    }
}
