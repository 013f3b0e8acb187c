//! A synthetic participant's signaling with parlor: one WebSocket on `/ws` speaking protocol v1
//! (`join`, `offer` / `answer` / `candidate`, answering server offers, glare), with its media
//! peer living on a media thread.

use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::mpsc::{self, UnboundedReceiver};
use tokio_tungstenite::tungstenite::Message;

use crate::media::{Cmd, PeerSpec, SigOut};
use crate::participant::{Ctrl, PartCtx};
use crate::payload::now_us;

/// How long `join` may take to be welcomed.
const JOIN_TIMEOUT: Duration = Duration::from_secs(20);
/// Protocol `ping` period (keeps the socket busy in both directions besides WebSocket pings).
const PING_EVERY: Duration = Duration::from_secs(5);

/// The WebSocket URL of a server given as `http://host:port`, `ws://host:port` or `host:port`.
pub fn ws_url(base: &str) -> String {
    let base = base.trim_end_matches('/');
    let rest = base.strip_prefix("http://").or_else(|| base.strip_prefix("ws://")).unwrap_or(base);
    let rest = rest.strip_suffix("/ws").unwrap_or(rest);
    format!("ws://{rest}/ws")
}

/// Run one participant until told to leave or the socket ends.
pub(crate) async fn participant(ctx: PartCtx, mut ctrl: UnboundedReceiver<Ctrl>) {
    if let Err(e) = run(&ctx, &mut ctrl).await {
        ctx.info.error(format!("{e:#}"));
    }
    ctx.media.send(Cmd::Remove(ctx.peer));
    ctx.info.closed.store(true, Ordering::SeqCst);
}

async fn run(ctx: &PartCtx, ctrl: &mut UnboundedReceiver<Ctrl>) -> anyhow::Result<()> {
    ctx.info.connect_us.store(now_us(), Ordering::SeqCst);
    let (ws, _) =
        tokio_tungstenite::connect_async(ctx.url.as_str()).await.with_context(|| format!("connect {}", ctx.url))?;
    let (mut sink, mut stream) = ws.split();
    let mut join = json!({"type": "join", "room": ctx.room, "name": ctx.name});
    if let Some(kind) = &ctx.kind {
        join["kind"] = json!(kind);
    }
    sink.send(Message::Text(join.to_string().into())).await?;
    let welcome = tokio::time::timeout(JOIN_TIMEOUT, async {
        while let Some(frame) = stream.next().await {
            if let Message::Text(t) = frame? {
                let v: Value = serde_json::from_str(t.as_str())?;
                match v["type"].as_str() {
                    Some("welcome") => return Ok(v),
                    Some("error") => bail!("join refused: {}", v["code"]),
                    _ => {}
                }
            }
        }
        Err(anyhow!("socket closed before welcome"))
    })
    .await
    .map_err(|_| anyhow!("no welcome within {JOIN_TIMEOUT:?}"))??;
    let id = welcome["id"].as_str().ok_or_else(|| anyhow!("welcome without id"))?.to_owned();
    ctx.info.set_id(&id);
    let welcomed = now_us();
    ctx.info.welcome_us.store(welcomed, Ordering::SeqCst);
    // Kept with the game messages: scenarios read the room's kind and limits from it.
    ctx.info.game(welcomed, welcome);

    let (sig_tx, mut sig_rx) = mpsc::unbounded_channel();
    ctx.media.send(Cmd::Add(Box::new(PeerSpec {
        peer: ctx.peer,
        owner: ctx.idx,
        label: id,
        publish: ctx.publish.clone(),
        receive_only: ctx.publish.is_none(),
        offer: true,
        bind: ctx.bind,
        sig: sig_tx,
    })));

    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    let mut sig_open = true;
    loop {
        tokio::select! {
            frame = stream.next() => match frame {
                Some(Ok(Message::Text(t))) => {
                    let arrived = now_us();
                    on_text(ctx, t.as_str(), arrived);
                }
                Some(Ok(Message::Close(_))) | None => return Ok(()),
                Some(Ok(_)) => {}
                Some(Err(e)) => bail!("websocket: {e}"),
            },
            out = sig_rx.recv(), if sig_open => {
                let Some(out) = out else {
                    sig_open = false;
                    continue;
                };
                let msg = match out {
                    SigOut::Offer(sdp) => json!({"type": "offer", "sdp": sdp}),
                    SigOut::Answer(sdp) => json!({"type": "answer", "sdp": sdp}),
                    SigOut::Candidate { candidate, mid, index } => {
                        json!({"type": "candidate", "candidate": candidate, "sdp_mid": mid, "sdp_mline_index": index})
                    }
                    SigOut::EndOfCandidates => {
                        json!({"type": "candidate", "candidate": "", "sdp_mid": null, "sdp_mline_index": null})
                    }
                    SigOut::Connected => continue,
                    SigOut::Failed(why) => {
                        ctx.info.error(format!("media: {why}"));
                        continue;
                    }
                };
                sink.send(Message::Text(msg.to_string().into())).await?;
            },
            c = ctrl.recv() => match c {
                Some(Ctrl::Send(v)) => sink.send(Message::Text(v.to_string().into())).await?,
                Some(Ctrl::Subscribe(_)) => {}
                Some(Ctrl::Leave) | None => {
                    let _ = sink.send(Message::Text(json!({"type": "leave"}).to_string().into())).await;
                    let _ = tokio::time::timeout(Duration::from_secs(2), sink.close()).await;
                    return Ok(());
                }
            },
            _ = ping.tick() => {
                let msg = json!({"type": "ping", "t": now_us() as f64 / 1000.0});
                sink.send(Message::Text(msg.to_string().into())).await?;
            }
        }
    }
}

fn on_text(ctx: &PartCtx, text: &str, arrived: u64) {
    let Ok(v) = serde_json::from_str::<Value>(text) else {
        return ctx.info.error(format!("server sent non-JSON text: {text:.80}"));
    };
    let sdp = || v["sdp"].as_str().unwrap_or_default().to_owned();
    match v["type"].as_str().unwrap_or_default() {
        "offer" => ctx.media.send(Cmd::RemoteOffer(ctx.peer, sdp())),
        "answer" => ctx.media.send(Cmd::RemoteAnswer(ctx.peer, sdp())),
        "candidate" => {
            let line = v["candidate"].as_str().unwrap_or_default();
            if !line.is_empty() {
                ctx.media.send(Cmd::RemoteCandidate(ctx.peer, line.to_owned()));
            }
        }
        "error" => {
            if v["code"] == "glare" {
                ctx.info.glares.fetch_add(1, Ordering::Relaxed);
                ctx.media.send(Cmd::Glare(ctx.peer));
            } else {
                ctx.info.error(format!("server error: {} {}", v["code"], v["message"]));
            }
        }
        "phase" | "media_state" | "role" | "eliminated" | "game_over" | "vote_update" | "participant_updated" => {
            ctx.info.game(arrived, v)
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ws_urls() {
        assert_eq!(super::ws_url("http://127.0.0.1:8080/"), "ws://127.0.0.1:8080/ws");
        assert_eq!(super::ws_url("127.0.0.1:8080"), "ws://127.0.0.1:8080/ws");
        assert_eq!(super::ws_url("ws://h:1/ws"), "ws://h:1/ws");
    }
}
