//! Red light, green light on synthetic time (docs/PROTOCOL.md, "Red light, green light
//! rooms"): the game as the room drives it (JSON in, events out, every input logged), with
//! each player's round trip given as the server's measurement. A player's screen turns red
//! half a round trip after the server's switch, and what they send reaches the server half a
//! round trip later: the tests send moves at times on the player's own screen and let them
//! arrive accordingly.

use parlor_signaling::game::{AnyDriver, AnyEvent, AnyInput, Input, MediaKind, Millis, Rtt};
use parlor_signaling::gamelog::{self, Record};
use parlor_signaling::Registry;
use serde_json::{json, Value};

const HOST: &str = "h";

trait EventValue {
    fn event_value(&self) -> Value;
}

impl EventValue for Record {
    /// The event this record holds (null for any other record).
    fn event_value(&self) -> Value {
        match self {
            Record::Event { event } => event.clone(),
            _ => Value::Null,
        }
    }
}

/// One rlgl room on a synthetic clock, logged the way the room logs it.
struct Table {
    game: Box<dyn AnyDriver>,
    log: Vec<Record>,
    /// Every event's JSON, in order, with the time it was produced.
    events: Vec<(Millis, Value)>,
    now: Millis,
}

impl Table {
    /// The host and `players` (id, round trip ms) seated; not started.
    fn new(players: &[(&str, Option<u32>)]) -> Table {
        let registry = Registry::builtin();
        let mut game = registry.create("rlgl", 1, Default::default()).unwrap();
        game.handle(0, HOST, Input::Join { name: HOST.into(), guest: false }).unwrap();
        for (id, rtt) in players {
            game.handle(0, id, Input::Join { name: id.to_string(), guest: false }).unwrap();
            if let Some(ms) = rtt {
                game.handle(0, id, Input::Rtt(Rtt { ms: *ms, jitter_ms: 0 })).unwrap();
            }
        }
        while game.poll_event().is_some() {}
        Table { game, log: Vec::new(), events: Vec::new(), now: 0 }
    }

    fn drain(&mut self) {
        while let Some(e) = self.game.poll_event() {
            let json = gamelog::event_json(&e);
            self.log.push(Record::Event { event: json.clone() });
            if let AnyEvent::Send { text, .. } = &e {
                self.events.push((self.now, serde_json::from_str(text).unwrap()));
            } else if let AnyEvent::Phase { info, .. } = &e {
                let mut info = info.clone();
                info["type"] = json!("phase");
                self.events.push((self.now, info));
            }
        }
    }

    /// Run every timer due by `t`, at its own time, as the room's timer does.
    fn until(&mut self, t: Millis) {
        while let Some(d) = self.game.next_deadline().filter(|d| *d <= t) {
            self.now = self.now.max(d);
            self.log.push(Record::Timeout { at: self.now });
            self.game.handle_timeout(self.now);
            self.drain();
        }
        self.now = self.now.max(t);
    }

    /// One input arriving at `at` (timers due before it run first, at their own times).
    fn input(&mut self, at: Millis, who: &str, input: AnyInput) -> Result<(), String> {
        self.until(at.saturating_sub(1));
        self.now = self.now.max(at);
        self.log.push(Record::Input { at: self.now, who: who.into(), input: input.clone() });
        let result = self.game.handle(self.now, who, input).map_err(|e| format!("{e:?}"));
        self.drain();
        result
    }

    fn start(&mut self, at: Millis, settings: Value, seed: u64) {
        self.log.push(gamelog::header("rlgl", "test", seed, at, self.game.roster()));
        self.input(at, HOST, Input::Start { settings, seed: Some(seed) }).unwrap();
    }

    fn send(&mut self, at: Millis, who: &str, msg: Value) -> Result<(), String> {
        self.input(at, who, Input::Game(msg))
    }

    fn mv(&mut self, at: Millis, who: &str, steps: u32) -> Result<(), String> {
        self.send(at, who, json!({"type": "move", "steps": steps}))
    }

    fn light(&mut self, at: Millis, color: &str) {
        self.send(at, HOST, json!({"type": "light", "color": color})).unwrap();
    }

    fn phase(&self) -> String {
        self.game.phase().0
    }

    /// The messages of type `ty` so far.
    fn of(&self, ty: &str) -> Vec<Value> {
        self.events.iter().filter(|(_, e)| e["type"] == ty).map(|(_, e)| e.clone()).collect()
    }

    fn eliminated(&self) -> Vec<String> {
        self.of("eliminated").iter().map(|e| e["id"].as_str().unwrap().to_owned()).collect()
    }

    /// Distances as the last `progress` told them (after flushing any pending one).
    fn distance(&mut self, id: &str) -> u64 {
        self.until(self.now + 1_000);
        self.of("progress").last().and_then(|p| p["distances"][id].as_u64()).unwrap_or(0)
    }

    fn standing(&self, id: &str) -> (bool, bool) {
        let s = self.game.standing(id);
        (s.alive, s.on_stage)
    }
}

/// Host-held light, started at 0: the first green at 3 000.
fn held(players: &[(&str, Option<u32>)]) -> Table {
    let mut t = Table::new(players);
    t.start(0, json!({"auto": false, "seconds": 600}), 7);
    t.until(3_000);
    assert_eq!(t.phase(), "green");
    t
}

/// On the player's screen at `screen` (ms since the server's switch at `switch`), sent then,
/// it arrives half a round trip later; so the arrival of a move sent `after` ms after the
/// player saw the switch is `switch + rtt/2 + after + rtt/2`.
fn arrival(switch: Millis, rtt: u32, after: i64) -> Millis {
    (switch as i64 + i64::from(rtt) + after) as Millis
}

#[test]
fn a_move_made_before_ones_screen_turned_red_survives_at_20_and_400_ms() {
    let mut t = held(&[("fast", Some(20)), ("slow", Some(400))]);
    for (i, id) in ["fast", "slow"].into_iter().enumerate() {
        t.mv(3_100 + i as u64, id, 5).unwrap();
    }
    let red = 5_000;
    t.light(red, "red");
    assert_eq!(t.phase(), "red");
    // Each one's last move, made 1 ms before their own screen turned red.
    t.mv(arrival(red, 20, -1), "fast", 2).unwrap();
    t.mv(arrival(red, 400, -1), "slow", 2).unwrap();
    assert!(t.eliminated().is_empty(), "{:?}", t.of("eliminated"));
    // Made before red: they count.
    assert_eq!((t.distance("fast"), t.distance("slow")), (7, 7));
    // And even after the grace, the cap is what counts: a 400 ms path gets 400 ms.
    t.light(9_000, "green");
    t.light(10_000, "red");
    t.mv(10_000 + 200 + 20, "fast", 1).unwrap();
    t.mv(10_000 + 200 + 400, "slow", 1).unwrap();
    assert!(t.eliminated().is_empty());
}

#[test]
fn a_move_made_300_ms_after_ones_screen_turned_red_is_out_at_20_and_400_ms() {
    let mut t = held(&[("fast", Some(20)), ("slow", Some(400)), ("still", Some(400))]);
    let red = 5_000;
    t.light(red, "red");
    t.mv(arrival(red, 20, 300), "fast", 1).unwrap();
    t.mv(arrival(red, 400, 300), "slow", 1).unwrap();
    assert_eq!(t.eliminated(), ["fast", "slow"]);
    let out = t.of("eliminated");
    // The figures it was judged on travel with it (and so into the log).
    assert_eq!(out[0]["cause"], "moved");
    assert_eq!(
        out[0]["judgment"],
        json!({"red_at": red, "arrived_at": red + 320, "rtt_ms": 20, "grace_ms": 200, "allowance_ms": 20, "deadline": red + 220})
    );
    assert_eq!(out[1]["judgment"]["allowance_ms"], 400);
    assert_eq!(out[1]["judgment"]["deadline"], red + 600);
    assert_eq!(t.standing("fast"), (false, true), "out, and in the spotlight");
    assert_eq!(t.standing("still"), (true, false));
    // Nothing the client adds changes it: a latency, a clock, a claimed send time.
    let mut u = held(&[("fast", Some(20)), ("slow", Some(400))]);
    u.light(red, "red");
    let claims = json!({"latency": 5_000, "rtt": 5_000, "t": red, "sent_at": red, "at": red});
    for (id, rtt) in [("fast", 20), ("slow", 400)] {
        let mut msg = json!({"type": "move", "steps": 1});
        for (k, v) in claims.as_object().unwrap() {
            msg[k] = v.clone();
        }
        u.send(arrival(red, rtt, 300), id, msg).unwrap();
    }
    assert_eq!(u.eliminated(), ["fast", "slow"]);
    assert_eq!(u.of("eliminated"), t.of("eliminated")[..2]);
}

#[test]
fn an_unmeasured_seat_gets_the_cap_and_settings_move_the_line() {
    let mut t = Table::new(&[("new", None), ("far", Some(3_000))]);
    t.start(0, json!({"auto": false, "grace_ms": 100, "max_allowance_ms": 300}), 1);
    t.until(3_000);
    t.light(4_000, "red");
    t.mv(4_000 + 400, "new", 1).unwrap();
    t.mv(4_000 + 400, "far", 1).unwrap();
    assert!(t.eliminated().is_empty(), "400 = 100 grace + the 300 cap");
    t.mv(4_000 + 401, "new", 1).unwrap();
    t.mv(4_000 + 401, "far", 1).unwrap();
    assert_eq!(t.eliminated(), ["new", "far"]);
    let out = t.of("eliminated");
    assert_eq!(out[0]["judgment"]["rtt_ms"], Value::Null);
    assert_eq!(out[1]["judgment"]["rtt_ms"], 3_000);
    assert_eq!(out[1]["judgment"]["allowance_ms"], 300);
}

#[test]
fn the_speed_cap_holds() {
    let mut t = held(&[("a", Some(20)), ("b", Some(20))]);
    // 1000 claimed steps every 10 ms for 2 s of green.
    for i in 0..200 {
        t.mv(3_000 + i * 10, "a", 1_000).unwrap();
    }
    // One second's worth at once, then 10 a second: 10 + 20 (the last claim at 4 990).
    assert_eq!(t.distance("a"), 10 + 19);
    // An honest phone sending 1 step every 100 ms loses nothing.
    for i in 0..20 {
        t.mv(6_000 + i * 100, "b", 1).unwrap();
    }
    assert_eq!(t.distance("b"), 20);
}

#[test]
fn progress_goes_out_at_most_five_times_a_second() {
    let mut t = held(&[("a", Some(20)), ("b", Some(20)), ("c", Some(20))]);
    for i in 0..300 {
        for id in ["a", "b", "c"] {
            t.mv(3_000 + i * 10 + 1, id, 1).unwrap();
        }
    }
    t.until(7_000);
    let times: Vec<Millis> = t.events.iter().filter(|(_, e)| e["type"] == "progress").map(|(at, _)| *at).collect();
    assert!(times.len() >= 14, "{times:?}");
    for w in times.windows(2) {
        assert!(w[1] - w[0] >= 200, "two progress {} ms apart: {times:?}", w[1] - w[0]);
    }
    let last = t.of("progress").pop().unwrap();
    // A full bucket (10) and 10 a second over the 2.99 s of claims, for everyone.
    assert_eq!(last["distances"], json!({"a": 39, "b": 39, "c": 39}));
}

#[test]
fn the_host_holds_the_light_and_nobody_else_does() {
    let mut t = held(&[("a", Some(20))]);
    assert_eq!(t.game.phase().1["ends_at"], Value::Null, "a held light has no end");
    assert_eq!(
        t.send(3_500, "a", json!({"type": "light", "color": "red"})).unwrap_err(),
        "NotHost(\"only the host switches the light\")"
    );
    assert_eq!(t.phase(), "green");
    t.light(3_600, "green");
    assert_eq!(t.of("phase").len(), 2, "the same colour changes nothing: countdown, green");
    t.light(4_000, "red");
    t.light(4_100, "green");
    t.light(4_200, "red");
    let lights: Vec<String> = t.of("phase").iter().map(|p| p["phase"].as_str().unwrap().to_owned()).collect();
    assert_eq!(lights, ["countdown", "green", "red", "green", "red"]);
    // It stays red until the host says otherwise.
    t.until(100_000);
    assert_eq!(t.phase(), "red");
    assert!(t.send(100_001, HOST, json!({"type": "light", "color": "blue"})).unwrap_err().starts_with("BadField"));

    let mut auto = Table::new(&[("a", Some(20))]);
    auto.start(0, Value::Null, 3);
    auto.until(3_000);
    assert!(auto.send(3_001, HOST, json!({"type": "light", "color": "red"})).unwrap_err().starts_with("NotAllowed"));
    let mut lobby = Table::new(&[("a", Some(20))]);
    assert!(lobby.send(1, HOST, json!({"type": "light", "color": "red"})).unwrap_err().starts_with("WrongPhase"));
}

#[test]
fn the_automatic_light_alternates_within_its_ranges_and_ends_the_game() {
    let run = |seed| {
        let mut t = Table::new(&[("a", Some(20))]);
        t.start(1_000, json!({"seconds": 60}), seed);
        t.until(200_000);
        t.of("phase")
    };
    let phases = run(11);
    let names: Vec<&str> = phases.iter().map(|p| p["phase"].as_str().unwrap()).collect();
    assert_eq!(names[..2], ["countdown", "green"]);
    let first_green = phases[1]["ends_at"].as_u64().unwrap();
    assert!(first_green > 4_000);
    let game_end = phases[1]["game_ends_at"].as_u64().unwrap();
    assert_eq!(game_end, 4_000 + 60_000);
    let lights: Vec<&Value> = phases.iter().filter(|p| p["phase"] == "green" || p["phase"] == "red").collect();
    assert!(lights.len() > 10, "{}", lights.len());
    let mut start = 4_000;
    for pair in lights.windows(2) {
        assert_ne!(pair[0]["phase"], pair[1]["phase"], "alternating");
        let end = pair[0]["ends_at"].as_u64().unwrap();
        let length = end - start;
        let range = if pair[0]["phase"] == "green" { 2_000..=5_000 } else { 2_000..=4_000 };
        assert!(range.contains(&length), "{} lasted {length}", pair[0]["phase"]);
        start = end;
    }
    assert!(lights.last().unwrap()["ends_at"].as_u64().unwrap() <= game_end, "no light outlasts the game");
    assert_eq!(names[names.len() - 2..], ["game_over", "lobby"]);
    assert_eq!(run(11), phases, "the seed decides the lights");
    assert_ne!(run(12), phases);
}

#[test]
fn ties_at_the_finish_share_a_place_and_the_winners_take_the_stage() {
    let mut t = Table::new(&[("a", Some(20)), ("b", Some(20)), ("c", Some(20)), ("d", Some(20))]);
    t.start(0, json!({"auto": false, "distance": 10}), 1);
    t.until(3_000);
    t.mv(3_500, "b", 10).unwrap();
    t.mv(3_500, "c", 10).unwrap();
    t.mv(3_600, "a", 10).unwrap();
    let finished: Vec<(String, u64)> =
        t.of("finished").iter().map(|f| (f["id"].as_str().unwrap().to_owned(), f["rank"].as_u64().unwrap())).collect();
    assert_eq!(finished, [("b".into(), 1), ("c".into(), 1), ("a".into(), 3)]);
    assert!(t.mv(3_700, "b", 1).unwrap_err().starts_with("NotAllowed"), "no moves after the finish");
    t.mv(3_700, "d", 4).unwrap();
    t.light(4_000, "red");
    t.mv(5_000, "d", 1).unwrap();
    assert_eq!(t.phase(), "game_over", "everyone finished or out");
    let over = t.of("game_over").pop().unwrap();
    assert_eq!(
        over["ranking"],
        json!([
            {"id": "b", "rank": 1, "distance": 10, "status": "finished"},
            {"id": "c", "rank": 1, "distance": 10, "status": "finished"},
            {"id": "a", "rank": 3, "distance": 10, "status": "finished"},
            {"id": "d", "rank": 4, "distance": 4, "status": "out"},
        ])
    );
    // Both winners in the spotlight: everyone receives them; the loser's spotlight is over.
    let routes = t.game.routes();
    for w in ["b", "c"] {
        assert!(routes.allows("a", w, MediaKind::Video) && routes.allows("d", w, MediaKind::Audio), "{w}");
        assert_eq!(t.standing(w), (true, true));
    }
    assert!(!routes.allows("a", "d", MediaKind::Video));
    t.until(5_000 + 15_000);
    assert_eq!(t.phase(), "lobby");
    // The lobby's phase is the game's last event (the room's log ends with it); the winners'
    // return to the audience comes before it.
    assert_eq!(t.log.last().unwrap().event_value()["phase"]["name"], "lobby");
    let before_lobby: Vec<Value> = t.log.iter().rev().skip(1).take(4).map(|r| r.event_value()).collect();
    for w in ["b", "c"] {
        assert!(before_lobby.contains(&gamelog::event_json(&AnyEvent::Updated(w.into()))), "{before_lobby:?}");
    }
    assert!(!t.game.routes().allows("a", "b", MediaKind::Video), "back in the audience");
}

#[test]
fn the_eliminated_are_spotlighted_for_their_seconds_and_the_host_throughout() {
    let players: Vec<(String, Option<u32>)> = (0..6).map(|i| (format!("p{i}"), Some(20))).collect();
    let seats: Vec<(&str, Option<u32>)> = players.iter().map(|(id, r)| (id.as_str(), *r)).collect();
    let mut t = Table::new(&seats);
    t.start(0, json!({"auto": false, "spotlight_seconds": 2}), 1);
    t.until(3_000);
    t.light(4_000, "red");
    for i in 0..5 {
        t.mv(5_000 + i, &format!("p{i}"), 1).unwrap();
    }
    assert_eq!(t.eliminated().len(), 5);
    let lit = |t: &Table| -> Vec<String> {
        let routes = t.game.routes();
        (0..6).map(|i| format!("p{i}")).filter(|p| routes.allows(HOST, p, MediaKind::Audio)).collect()
    };
    // Four places (the stage's max_on_stage): the fifth waits its turn.
    assert_eq!(lit(&t), ["p0", "p1", "p2", "p3"]);
    assert!(t.game.routes().allows("p5", "p0", MediaKind::Video), "everyone sees them fall");
    t.until(6_999);
    assert_eq!(lit(&t).len(), 4);
    t.until(7_000);
    assert_eq!(lit(&t), ["p1", "p2", "p3", "p4"], "p0's two seconds are over; p4 steps in");
    t.until(9_004);
    assert!(lit(&t).is_empty());
    for p in (0..6).map(|i| format!("p{i}")) {
        assert!(
            t.game.routes().allows(&p, HOST, MediaKind::Video) && t.game.routes().allows(&p, HOST, MediaKind::Audio)
        );
    }
}

#[test]
fn a_player_who_leaves_mid_game_is_out_and_the_game_ends_when_nobody_runs() {
    let mut t = held(&[("a", Some(20)), ("b", Some(20))]);
    t.mv(3_100, "a", 3).unwrap();
    t.input(3_200, "a", Input::Leave).unwrap();
    let out = t.of("eliminated").pop().unwrap();
    assert_eq!(out, json!({"type": "eliminated", "id": "a", "cause": "left"}));
    assert_eq!(t.phase(), "green");
    assert!(t.mv(3_300, "a", 1).is_err(), "gone");
    t.input(3_400, "b", Input::Leave).unwrap();
    assert_eq!(t.phase(), "game_over");
    let ranking = &t.of("game_over")[0]["ranking"];
    assert_eq!(ranking[0], json!({"id": "a", "rank": 1, "distance": 3, "status": "left"}));
    assert_eq!(ranking[1]["status"], "left");
}

#[test]
fn a_tv_screen_watches() {
    let mut t = Table::new(&[("a", Some(20))]);
    t.input(0, "tv", Input::Join { name: "TV k3x9".into(), guest: false }).unwrap();
    t.input(0, "tvfan", Input::Join { name: "TV fan club".into(), guest: false }).unwrap();
    t.start(0, json!({"auto": false}), 1);
    t.until(3_000);
    assert!(t.mv(3_100, "tv", 1).unwrap_err().starts_with("NotAllowed"));
    t.mv(3_100, "tvfan", 1).unwrap();
    assert_eq!(t.distance("a"), 0);
    let distances = t.of("progress").pop().unwrap()["distances"].clone();
    assert_eq!(distances, json!({"a": 0, "tvfan": 1}), "the screen has no dot");
}

#[test]
fn refusals_change_nothing() {
    let mut t = held(&[("a", Some(20)), ("b", Some(20))]);
    t.mv(3_100, "a", 4).unwrap();
    let before = t.distance("a");
    let count = t.events.len();
    // Not a player: the host, and a spectator who arrives now.
    assert!(t.mv(4_300, HOST, 5).unwrap_err().starts_with("NotAllowed"));
    t.input(4_300, "late", Input::Join { name: "late".into(), guest: false }).unwrap();
    assert!(t.mv(4_300, "late", 5).unwrap_err().starts_with("NotAllowed"));
    // Malformed steps.
    for bad in [json!(-1), json!(1.5), json!("7"), json!(null), json!(5_000_000_000u64)] {
        let err = t.send(4_300, "a", json!({"type": "move", "steps": bad})).unwrap_err();
        assert!(err.starts_with("BadField"), "{bad}: {err}");
    }
    assert_eq!(t.events.len(), count, "nothing was sent");
    // Out, then moving again.
    t.light(5_000, "red");
    t.mv(6_000, "a", 1).unwrap();
    assert_eq!(t.eliminated(), ["a"]);
    assert!(t.mv(6_100, "a", 1).unwrap_err().starts_with("NotAllowed"));
    t.light(7_000, "green");
    assert!(t.mv(7_100, "a", 1).unwrap_err().starts_with("NotAllowed"));
    assert_eq!(t.distance("a"), before);
    assert_eq!(t.eliminated(), ["a"], "judged once");
    // 0 steps during red is standing still.
    t.light(8_000, "red");
    t.mv(9_000, "b", 0).unwrap();
    assert_eq!(t.eliminated(), ["a"]);
    // A move in the lobby.
    let mut lobby = Table::new(&[("a", None)]);
    assert!(lobby.mv(10, "a", 1).unwrap_err().starts_with("WrongPhase"));
}

#[test]
fn settings_are_checked_field_by_field() {
    let registry = Registry::builtin();
    assert!(registry.check_settings("rlgl", &Value::Null).is_ok());
    let ok = json!({"auto": false, "seconds": 30.5, "distance": 50, "grace_ms": 0, "max_allowance_ms": 1000,
        "max_steps_per_second": 5, "spotlight_seconds": 0});
    assert!(registry.check_settings("rlgl", &ok).is_ok());
    for (bad, field) in [
        (json!({"seconds": 0}), "seconds"),
        (json!({"seconds": "long"}), "seconds"),
        (json!({"distance": 0}), "distance"),
        (json!({"distance": -5}), "distance"),
        (json!({"grace_ms": 9_999}), "grace_ms"),
        (json!({"max_allowance_ms": 6_000}), "max_allowance_ms"),
        (json!({"max_steps_per_second": 0}), "max_steps_per_second"),
        (json!({"max_steps_per_second": 1_000}), "max_steps_per_second"),
        (json!({"spotlight_seconds": -1}), "spotlight_seconds"),
        (json!({"auto": "yes"}), "auto"),
        (json!({"speed": 3}), "speed"),
    ] {
        let err = registry.check_settings("rlgl", &bad).unwrap_err().to_string();
        assert!(err.contains(field), "{bad}: {err}");
        assert!(format!("{:?}", registry.check_settings("rlgl", &bad).unwrap_err()).starts_with("BadField"));
    }
    // Starting needs a player besides the host.
    let mut alone = Table::new(&[]);
    alone.log.push(gamelog::header("rlgl", "t", 1, 0, alone.game.roster()));
    assert!(alone
        .input(0, HOST, Input::Start { settings: Value::Null, seed: Some(1) })
        .unwrap_err()
        .starts_with("NotAllowed"));
    assert!(alone.input(0, HOST, Input::Start { settings: json!({"distance": 0}), seed: Some(1) }).is_err());
}

#[test]
fn the_log_replays_every_elimination_from_its_inputs_round_trips_included() {
    let mut t = Table::new(&[("a", Some(30)), ("b", Some(300)), ("c", None)]);
    // A TV view watches by its name: the log keeps the names, or the replay would seat it as a player.
    t.input(0, "tv", Input::Join { name: "TV k3x9".into(), guest: false }).unwrap();
    t.log.clear(); // the room before the game is the header's
    t.start(0, json!({"seconds": 30}), 99);
    // The round trips change during the game, as the server measures them.
    t.until(3_000);
    t.input(3_001, "c", Input::Rtt(Rtt { ms: 150, jitter_ms: 4 })).unwrap();
    // Everyone runs all game, each sending every 100 ms, regardless of the light.
    let mut at = 3_000;
    while t.phase() != "game_over" && at < 40_000 {
        for id in ["a", "b", "c"] {
            let _ = t.mv(at, id, 1);
        }
        at += 100;
    }
    t.until(at + 20_000);
    let out = t.eliminated();
    assert_eq!(out.len(), 3, "all run through a red: {out:?}");
    let records: String = t.log.iter().map(|r| serde_json::to_string(r).unwrap() + "\n").collect();
    let parsed = gamelog::parse(&records).unwrap();
    let replayed = gamelog::replay(&Registry::builtin(), &parsed).unwrap();
    assert_eq!(replayed.mismatch, None);
    let replayed_out: Vec<&Value> = replayed
        .events
        .iter()
        .filter_map(|e| e.get("send")?.get("text"))
        .filter(|m| m["type"] == "eliminated")
        .collect();
    assert_eq!(replayed_out.len(), 3);
    assert_eq!(replayed_out[0]["judgment"], t.of("eliminated")[0]["judgment"]);
    assert!(replayed.game_over.is_some());

    // The round trip is part of the judgment: log c as measured at 900 ms instead and c's
    // elimination replays differently (or not at all).
    let mut tampered = parsed.clone();
    for r in &mut tampered {
        if let Record::Input { who, input: Input::Rtt(rtt), .. } = r {
            if who == "c" {
                rtt.ms = 900;
            }
        }
    }
    assert!(gamelog::replay(&Registry::builtin(), &tampered).unwrap().mismatch.is_some());
}
