//! The connections behind a room's seats, and sending to them. (The seats themselves — names,
//! order, host — are the game driver's [`crate::game::Roster`].)

use std::collections::{BTreeMap, HashMap};

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::Room;
use crate::game::{Id, To};
use crate::ids;
use crate::media::MediaRefusal;
use crate::outbound::Outbound;
use crate::protocol::{ErrorCode, Reception, ServerMsg};

/// One seat's connection state.
pub(super) struct Member {
    pub connected: bool,
    pub out: Option<mpsc::UnboundedSender<Outbound>>,
    pub connection: u64,
    /// Presented by `join` with `resume` to take this seat back; rotated on every resume.
    pub resume_token: String,
    /// When the grace period of a disconnected member ends.
    pub grace_until: Option<Instant>,
    /// The last `media_state` sent, to send again only on change within a phase.
    pub media_state: Option<BTreeMap<Id, Reception>>,
    /// The last `speaking` sent (none yet: nobody).
    pub speaking: Vec<Id>,
}

/// Every seat's connection, by participant id.
#[derive(Default)]
pub(super) struct Members {
    map: HashMap<Id, Member>,
}

impl Members {
    pub fn contains(&self, id: &str) -> bool {
        self.map.contains_key(id)
    }

    pub fn get(&self, id: &str) -> Option<&Member> {
        self.map.get(id)
    }

    pub fn get_mut(&mut self, id: &str) -> Option<&mut Member> {
        self.map.get_mut(id)
    }

    pub fn insert(&mut self, id: Id, member: Member) {
        self.map.insert(id, member);
    }

    pub fn remove(&mut self, id: &str) -> Option<Member> {
        self.map.remove(id)
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn ids(&self) -> Vec<Id> {
        self.map.keys().cloned().collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Id, &Member)> {
        self.map.iter()
    }

    pub fn clear(&mut self) {
        self.map.clear();
    }

    pub fn any_connected(&self) -> bool {
        self.map.values().any(|m| m.connected)
    }

    pub fn earliest_grace(&self) -> Option<Instant> {
        self.map.values().filter_map(|m| m.grace_until).min()
    }

    /// The seat whose resume token is `token` (compared in constant time).
    pub fn by_token(&self, token: &str) -> Option<Id> {
        self.map.iter().find(|(_, m)| ids::same_secret(&m.resume_token, token)).map(|(id, _)| id.clone())
    }
}

impl Room {
    pub(super) fn send(&self, id: &str, msg: &ServerMsg) {
        self.send_text(id, msg.to_text());
    }

    pub(super) fn send_text(&self, id: &str, text: String) {
        if let Some(out) = self.members.get(id).and_then(|m| m.out.as_ref()) {
            let _ = out.send(Outbound::Text(text));
        }
    }

    pub(super) fn broadcast(&self, msg: &ServerMsg) {
        self.send_to(&To::All, msg.to_text());
    }

    pub(super) fn broadcast_except(&self, except: &str, msg: &ServerMsg) {
        self.send_to(&To::AllBut(vec![except.to_owned()]), msg.to_text());
    }

    /// `text`, encoded once, to everyone `to` addresses.
    pub(super) fn send_to(&self, to: &To, text: String) {
        match to {
            To::Only(ids) => {
                for id in ids {
                    self.send_text(id, text.clone());
                }
            }
            _ => {
                for (id, m) in self.members.iter() {
                    if let (true, Some(out)) = (to.includes(id), &m.out) {
                        let _ = out.send(Outbound::Text(text.clone()));
                    }
                }
            }
        }
    }
}

/// The `error` for a refusal of the media layer.
pub(super) fn media_error(refusal: MediaRefusal, what: &str) -> ServerMsg {
    match refusal {
        MediaRefusal::BadSdp(e) => ServerMsg::error(ErrorCode::BadSdp, format!("invalid {what}: {e}")),
        MediaRefusal::Glare => ServerMsg::error(
            ErrorCode::Glare,
            "the server's offer is outstanding: roll back, answer it, then offer again",
        ),
        MediaRefusal::Full => ServerMsg::error(ErrorCode::ServerFull, "the media server is at capacity"),
        MediaRefusal::Failed(e) => ServerMsg::error(ErrorCode::BadSdp, format!("{what} failed: {e}")),
    }
}
