//! A game that lives only here, in the test tree, plugs into the server through the game
//! interface alone: one `Registry::with` line and its own module (below). Nothing in
//! parlor-signaling names it, and it is driven over the wire (JSON text in, JSON text out)
//! through `Connection`, the room and a recording media backend.
//!
//! The game, "coin": the host starts it; everyone playing calls heads or tails; the host alone
//! is told the coin when it starts; once everyone called, all learn who won. While calls are
//! open each player's audio reaches only the host (video reaches everyone), so the test can
//! see the routes that reached the media layer.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use parlor_signaling::game::{
    Game, GameError, Id, Millis, Output, PhaseView, Registry, Roster, Routes, Standing, To, LOBBY,
};
use parlor_signaling::{Hub, HubSettings, MediaKind, OpenAccess};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

mod wire;

use wire::{join, Client, Recorder};

mod coin {
    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum Side {
        Heads,
        Tails,
    }

    /// What a seat sends.
    #[derive(Debug, Clone, Serialize, Deserialize)]
    #[serde(tag = "type", rename_all = "snake_case")]
    pub enum Command {
        Call { side: Side },
    }

    /// What the game sends.
    #[derive(Debug, Clone, Serialize)]
    #[serde(tag = "type", rename_all = "snake_case")]
    pub enum Message {
        /// To the host only.
        Secret { coin: Side },
        /// To everyone, at the end.
        Result { coin: Side, winners: Vec<Id> },
    }

    #[derive(Debug, Clone, Serialize)]
    pub struct Phase {
        pub phase: &'static str,
        pub called: usize,
    }

    impl PhaseView for Phase {
        fn name(&self) -> &str {
            self.phase
        }
    }

    #[derive(Debug, Clone, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Settings {
        pub rounds: u32,
    }

    impl Default for Settings {
        fn default() -> Self {
            Settings { rounds: 1 }
        }
    }

    #[derive(Default)]
    pub struct Coin {
        seed: u64,
        coin: Option<Side>,
        players: BTreeSet<Id>,
        calls: BTreeMap<Id, Side>,
        out: Vec<Output<Message, Phase>>,
    }

    impl Coin {
        pub fn new(seed: u64) -> Coin {
            Coin { seed, ..Coin::default() }
        }

        fn calling(&self) -> bool {
            self.coin.is_some()
        }

        fn emit_phase(&mut self) {
            let phase = Phase { phase: if self.calling() { "calling" } else { LOBBY }, called: self.calls.len() };
            self.out.push(Output::Phase(phase));
        }
    }

    impl Game for Coin {
        type Command = Command;
        type Message = Message;
        type Phase = Phase;
        type Settings = Settings;

        const COMMANDS: &'static [&'static str] = &["call"];

        fn check_settings(settings: &Settings) -> Result<(), GameError> {
            if settings.rounds == 1 {
                Ok(())
            } else {
                Err(GameError::BadField("settings.rounds: coin has exactly 1 round".into()))
            }
        }

        fn start(
            &mut self,
            _: Millis,
            roster: &Roster,
            who: &str,
            _: Settings,
            seed: Option<u64>,
        ) -> Result<(), GameError> {
            if roster.len() < 2 {
                return Err(GameError::NotAllowed("coin needs 2 players".into()));
            }
            let coin = if seed.unwrap_or(self.seed).is_multiple_of(2) { Side::Heads } else { Side::Tails };
            self.coin = Some(coin);
            self.players = roster.ids().cloned().collect();
            self.calls.clear();
            self.out.push(Output::Send(To::one(who), Message::Secret { coin }));
            self.emit_phase();
            for id in self.players.clone() {
                self.out.push(Output::Standing(id));
            }
            Ok(())
        }

        fn handle(&mut self, _: Millis, _: &Roster, who: &str, command: Command) -> Result<(), GameError> {
            let Command::Call { side } = command;
            let Some(coin) = self.coin else {
                return Err(GameError::WrongPhase("no coin is in the air".into()));
            };
            if !self.players.contains(who) {
                return Err(GameError::NotAllowed("you are watching this toss".into()));
            }
            if self.calls.insert(who.to_owned(), side).is_some() {
                return Err(GameError::NotAllowed("you already called".into()));
            }
            if self.calls.len() < self.players.len() {
                self.emit_phase();
                return Ok(());
            }
            let winners = self.calls.iter().filter(|(_, s)| **s == coin).map(|(id, _)| id.clone()).collect();
            self.out.push(Output::Send(To::All, Message::Result { coin, winners }));
            self.coin = None;
            self.emit_phase();
            for id in std::mem::take(&mut self.players) {
                self.out.push(Output::Standing(id));
            }
            Ok(())
        }

        fn left(&mut self, _: Millis, _: &Roster, who: &str) {
            self.players.remove(who);
        }

        fn handle_timeout(&mut self, _: Millis, _: &Roster) {}

        fn poll_output(&mut self) -> Option<Output<Message, Phase>> {
            (!self.out.is_empty()).then(|| self.out.remove(0))
        }

        fn next_deadline(&self) -> Option<Millis> {
            None
        }

        fn phase(&self, _: &Roster) -> Phase {
            Phase { phase: if self.calling() { "calling" } else { LOBBY }, called: self.calls.len() }
        }

        fn running(&self) -> bool {
            self.calling()
        }

        fn routes(&self, roster: &Roster) -> Routes {
            let mut routes = Routes::new();
            let everyone: Vec<Id> = roster.id_list();
            for id in &everyone {
                let others: Vec<&Id> = everyone.iter().filter(|o| *o != id).collect();
                routes.allow_all(others.iter().copied(), id, MediaKind::Video);
                if self.calling() && self.players.contains(id) {
                    // While calls are open, a player's voice reaches only the host.
                    if let Some(host) = roster.host().filter(|h| h != id) {
                        routes.allow(host, id, MediaKind::Audio);
                    }
                } else {
                    routes.allow_all(others.iter().copied(), id, MediaKind::Audio);
                }
            }
            routes
        }

        fn standing(&self, _: &Roster, id: &str) -> Standing {
            Standing { playing: self.players.contains(id), ..Standing::LOBBY }
        }

        fn catch_up(&self, _: &Roster, _: &str, _: bool) -> Vec<(&'static str, Value)> {
            if self.calling() {
                vec![("calls_so_far", json!(self.calls.keys().collect::<Vec<_>>()))]
            } else {
                Vec::new()
            }
        }
    }
}

fn hub_with_coin(media: &Recorder) -> Hub {
    let registry = Registry::builtin().with("coin", 4, coin::Coin::new);
    Hub::with_games(Arc::new(media.clone()), HubSettings::default(), Arc::new(OpenAccess), registry)
}

#[tokio::test]
async fn a_game_from_the_test_tree_plays_over_the_wire() {
    let media = Recorder::default();
    let hub = hub_with_coin(&media);

    let mut alice = Client::new(&hub);
    alice.send(json!({"type": "join", "room": "toss", "name": "Alice", "kind": "coin"})).await;
    let welcome = alice.next("welcome").await;
    assert_eq!(welcome["kind"], "coin", "{welcome}");
    let a = welcome["id"].as_str().unwrap().to_owned();
    let (mut bob, b) = join(&hub, "toss", "Bob", None).await;

    // Settings are the game's own, checked by the game.
    alice.send(json!({"type": "start_game", "settings": {"rounds": 3}})).await;
    assert_eq!(alice.error().await, "bad_field");
    alice.send(json!({"type": "start_game", "settings": {"colour": "red"}})).await;
    assert_eq!(alice.error().await, "bad_field");
    // Seats are the room's: only the host starts.
    bob.send(json!({"type": "start_game"})).await;
    assert_eq!(bob.error().await, "not_host");

    alice.send(json!({"type": "start_game", "settings": {"rounds": 1}})).await;
    let secret = alice.next("secret").await;
    assert!(secret["coin"] == "heads" || secret["coin"] == "tails", "{secret}");
    let phase = bob.next("phase").await;
    assert_eq!(phase["phase"], "calling", "{phase}");
    assert_eq!(phase["called"], 0);
    // Addressed outputs: Bob never hears the coin.
    let seen = bob.drain().await;
    assert!(seen.iter().all(|v| v["type"] != "secret"), "bob was told the coin: {seen:?}");
    let joined_bob = seen.iter().any(|v| v["type"] == "participant_updated" && v["participant"]["playing"] == true);
    assert!(joined_bob, "standing from the game reaches the participant object: {seen:?}");

    // The game's routes reached the media layer, per publisher, before the phase.
    assert_eq!(media.receivers(&b, MediaKind::Audio), Some(vec![a.clone()]));
    assert_eq!(media.receivers(&a, MediaKind::Audio), Some(vec![]));
    assert_eq!(media.receivers(&b, MediaKind::Video), Some(vec![a.clone()]));

    // A type another kind takes is `wrong_kind`; one nobody takes is `unknown_type`; the
    // game's own checks come back as its errors.
    bob.send(json!({"type": "vote", "target": a})).await;
    assert_eq!(bob.error().await, "wrong_kind");
    bob.send(json!({"type": "dance"})).await;
    assert_eq!(bob.error().await, "unknown_type");
    bob.send(json!({"type": "call", "side": "edge"})).await;
    assert_eq!(bob.error().await, "bad_field");

    // A late joiner watches and is caught up by the game.
    alice.send(json!({"type": "call", "side": "heads"})).await;
    let (mut carol, c) = join(&hub, "toss", "Carol", None).await;
    drop(c);
    carol.send(json!({"type": "call", "side": "tails"})).await;
    assert_eq!(carol.error().await, "not_allowed");
    let mut dave = Client::new(&hub);
    dave.send(json!({"type": "join", "room": "toss", "name": "Dave"})).await;
    let late = dave.next("welcome").await;
    assert_eq!(late["calls_so_far"], json!([a]), "{late}");
    assert_eq!(late["game"]["phase"], "calling", "{late}");

    bob.send(json!({"type": "call", "side": "tails"})).await;
    let result = carol.next("result").await;
    let coin = secret["coin"].as_str().unwrap();
    let expected: Vec<&str> = if coin == "heads" { vec![a.as_str()] } else { vec![b.as_str()] };
    assert_eq!(result["winners"], json!(expected), "{result}");
    // Back in the lobby everyone hears everyone again.
    let lobby = bob.next("phase").await;
    let lobby = if lobby["phase"] == "calling" { bob.next("phase").await } else { lobby };
    assert_eq!(lobby["phase"], "lobby", "{lobby}");
    let mut heard = media.receivers(&b, MediaKind::Audio).unwrap();
    heard.sort();
    assert_eq!(heard.len(), 3, "{heard:?}");
    assert!(heard.contains(&a), "{heard:?}");
}

#[tokio::test]
async fn kinds_are_chosen_and_switched_by_the_host_in_the_lobby() {
    let media = Recorder::default();
    let hub = hub_with_coin(&media);

    // No kind: the registry's default.
    let mut host = Client::new(&hub);
    host.send(json!({"type": "join", "room": "night", "name": "Hana"})).await;
    assert_eq!(host.next("welcome").await["kind"], "mafia");
    let (mut guest, _) = join(&hub, "night", "Gil", Some("coin")).await;
    // A join's kind only counts when it creates the room.
    guest.send(json!({"type": "call", "side": "heads"})).await;
    assert_eq!(guest.error().await, "wrong_kind");

    guest.send(json!({"type": "set_kind", "kind": "coin"})).await;
    assert_eq!(guest.error().await, "not_host");
    host.send(json!({"type": "set_kind", "kind": "poker"})).await;
    let err = host.next("error").await;
    assert_eq!(err["code"], "bad_field");
    let message = err["message"].as_str().unwrap();
    assert!(message.contains("mafia") && message.contains("coin"), "{message}");

    host.send(json!({"type": "set_kind", "kind": "coin"})).await;
    assert_eq!(guest.next("kind_changed").await["kind"], "coin");
    assert_eq!(guest.next("phase").await["phase"], "lobby");
    // Mafia's types are now another kind's.
    guest.send(json!({"type": "call_vote"})).await;
    assert_eq!(guest.error().await, "wrong_kind");
    // The same kind again changes nothing and says nothing.
    host.send(json!({"type": "set_kind", "kind": "coin"})).await;
    let seen = guest.drain().await;
    assert!(seen.iter().all(|v| v["type"] != "kind_changed"), "{seen:?}");

    // Not during a game.
    host.send(json!({"type": "start_game"})).await;
    guest.next("phase").await;
    host.send(json!({"type": "set_kind", "kind": "mafia"})).await;
    assert_eq!(host.error().await, "wrong_phase");

    // A newcomer's welcome names the current kind.
    let mut late = Client::new(&hub);
    late.send(json!({"type": "join", "room": "night", "name": "Ivy"})).await;
    assert_eq!(late.next("welcome").await["kind"], "coin");
}

#[tokio::test]
async fn a_server_without_the_game_refuses_its_kind_naming_the_ones_it_has() {
    let media = Recorder::default();
    let hub = Hub::new(Arc::new(media), HubSettings::default());
    let mut c = Client::new(&hub);
    c.send(json!({"type": "join", "room": "toss", "name": "Alice", "kind": "coin"})).await;
    let err = c.next("error").await;
    assert_eq!(err["code"], "bad_field", "{err}");
    assert!(err["message"].as_str().unwrap().contains("mafia"), "{err}");
    // Nothing was created: a join without a kind makes a Mafia room of that code.
    c.send(json!({"type": "join", "room": "toss", "name": "Alice"})).await;
    assert_eq!(c.next("welcome").await["kind"], "mafia");
    // The game's message type is unknown on this server.
    c.send(json!({"type": "call", "side": "heads"})).await;
    assert_eq!(c.error().await, "unknown_type");
}

#[tokio::test]
async fn capacity_is_the_kind_s_own_unless_configured() {
    let media = Recorder::default();
    let hub = hub_with_coin(&media);
    let mut seats = Vec::new();
    for i in 0..4 {
        seats.push(join(&hub, "full", &format!("p{i}"), Some("coin")).await);
    }
    let mut fifth = Client::new(&hub);
    fifth.send(json!({"type": "join", "room": "full", "name": "p4"})).await;
    assert_eq!(fifth.error().await, "room_full");

    // Four fit in a coin room, but the host may not switch a room of 5 to coin.
    let (mut host, _) = join(&hub, "big", "h", None).await;
    let mut others = Vec::new();
    for i in 0..4 {
        others.push(join(&hub, "big", &format!("q{i}"), None).await);
    }
    host.send(json!({"type": "set_kind", "kind": "coin"})).await;
    assert_eq!(host.error().await, "not_allowed");

    let mut settings = HubSettings::default();
    settings.capacity.insert("coin".into(), 2);
    let registry = Registry::builtin().with("coin", 4, coin::Coin::new);
    let small = Hub::with_games(Arc::new(media.clone()), settings, Arc::new(OpenAccess), registry);
    let _a = join(&small, "two", "a", Some("coin")).await;
    let _b = join(&small, "two", "b", None).await;
    let mut c = Client::new(&small);
    c.send(json!({"type": "join", "room": "two", "name": "c"})).await;
    assert_eq!(c.error().await, "room_full");
}
