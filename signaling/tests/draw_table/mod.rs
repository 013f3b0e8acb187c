//! A test table around the drawing game: a [`Driver`] on synthetic time, every event kept with
//! exactly who it reached, as JSON (what the wire would carry).
#![allow(dead_code)]

use parlor_signaling::game::draw::{Command, Draw, Settings};
use parlor_signaling::game::stage::StageLimits;
use parlor_signaling::game::{Driver, Event, GameError, Input, Millis, To};
use serde_json::{json, Value};

/// One delivered event: when, to whom (resolved against the room at that moment), and the
/// JSON message with its `type`.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub at: Millis,
    pub to: Vec<String>,
    pub msg: Value,
}

pub struct Table {
    pub driver: Driver<Draw>,
    pub now: Millis,
    pub log: Vec<Delivery>,
}

impl Table {
    pub fn new(seed: u64) -> Table {
        Table { driver: Driver::new(Draw::new(seed, StageLimits::default())), now: 1_000_000, log: Vec::new() }
    }

    /// A room with these seats; the first hosts.
    pub fn with(ids: &[&str]) -> Table {
        let mut t = Table::new(7);
        for id in ids {
            t.join(id);
        }
        t
    }

    fn recipients(&self, to: &To) -> Vec<String> {
        self.driver.roster().ids().filter(|id| to.includes(id)).cloned().collect()
    }

    fn drain(&mut self) {
        while let Some(event) = self.driver.poll_event() {
            let (to, msg) = match event {
                Event::Send(to, m) => (to, serde_json::to_value(&m).unwrap()),
                Event::Phase(p) => {
                    let mut v = serde_json::to_value(&p).unwrap();
                    v["type"] = json!("phase");
                    (To::All, v)
                }
                Event::Chat(to, line) => {
                    let mut v = serde_json::to_value(&line).unwrap();
                    v["type"] = json!("chat");
                    (to, v)
                }
                Event::Updated(id) => (To::All, json!({"type": "participant_updated", "id": id})),
                Event::HostChanged(id) => (To::All, json!({"type": "host_changed", "host": id})),
                Event::Kicked(id) => (To::All, json!({"type": "kicked", "id": id})),
            };
            let to = self.recipients(&to);
            self.log.push(Delivery { at: self.now, to, msg });
        }
    }

    pub fn input(&mut self, who: &str, input: Input<Command, Settings>) -> Result<(), GameError> {
        let r = self.driver.handle(self.now, who, input);
        self.drain();
        r
    }

    pub fn join(&mut self, id: &str) {
        self.join_named(id, &id.to_uppercase());
    }

    pub fn join_named(&mut self, id: &str, name: &str) {
        self.input(id, Input::Join { name: name.to_owned(), guest: false }).unwrap();
    }

    pub fn leave(&mut self, id: &str) {
        self.input(id, Input::Leave).unwrap();
    }

    pub fn start(&mut self, who: &str, settings: Value) -> Result<(), GameError> {
        let settings: Settings = serde_json::from_value(settings).map_err(|e| GameError::BadField(e.to_string()))?;
        self.input(who, Input::Start { settings, seed: Some(11) })
    }

    /// A game command, given as its wire JSON.
    pub fn send(&mut self, who: &str, v: Value) -> Result<(), GameError> {
        let command: Command = serde_json::from_value(v).map_err(|e| GameError::BadField(e.to_string()))?;
        self.input(who, Input::Game(command))
    }

    pub fn chat(&mut self, who: &str, text: &str) -> Result<(), GameError> {
        self.input(who, Input::Chat { channel: "all".into(), text: text.into() })
    }

    /// Let time run to `now + ms`, firing every timer on its due time.
    pub fn advance(&mut self, ms: Millis) {
        let until = self.now + ms;
        while let Some(due) = self.driver.next_deadline().filter(|d| *d <= until) {
            self.now = due.max(self.now);
            self.driver.handle_timeout(self.now);
            self.drain();
        }
        self.now = until;
    }

    /// Fire the next timer.
    pub fn next_timer(&mut self) {
        let due = self.driver.next_deadline().expect("a timer");
        self.advance(due.saturating_sub(self.now));
    }

    pub fn phase(&self) -> String {
        let (name, _) = phase_of(&self.driver);
        name
    }

    pub fn drawer(&self) -> Option<String> {
        self.driver.phase().drawer
    }

    /// Messages `id` received, in order.
    pub fn received(&self, id: &str) -> Vec<&Value> {
        self.log.iter().filter(|d| d.to.iter().any(|t| t == id)).map(|d| &d.msg).collect()
    }

    /// The last message of type `ty` that `id` received.
    pub fn last(&self, id: &str, ty: &str) -> Option<Value> {
        self.received(id).into_iter().rev().find(|m| m["type"] == ty).cloned()
    }

    /// Every message of type `ty` `id` received.
    pub fn all(&self, id: &str, ty: &str) -> Vec<Value> {
        self.received(id).into_iter().filter(|m| m["type"] == ty).cloned().collect()
    }

    /// The drawer's word this turn, from the `word` message only the drawer got.
    pub fn word(&self) -> String {
        let drawer = self.drawer().expect("a drawer");
        self.last(&drawer, "word").expect("the drawer got the word")["word"].as_str().unwrap().to_owned()
    }

    /// The words the drawer was offered last.
    pub fn choices(&self) -> Vec<String> {
        let drawer = self.drawer().expect("a drawer");
        let m = self.last(&drawer, "word_choices").expect("choices");
        m["words"].as_array().unwrap().iter().map(|w| w.as_str().unwrap().to_owned()).collect()
    }

    /// The welcome's catch-up for `id`, as one JSON object.
    pub fn catch_up(&self, id: &str, resumed: bool) -> Value {
        let mut map = serde_json::Map::new();
        for (k, v) in self.driver.catch_up(id, resumed) {
            map.insert(k.to_owned(), v);
        }
        Value::Object(map)
    }
}

fn phase_of(driver: &Driver<Draw>) -> (String, Value) {
    let p = driver.phase();
    (p.phase.as_str().to_owned(), serde_json::to_value(&p).unwrap())
}

/// An error's wire code.
pub fn code(e: &GameError) -> &'static str {
    match e {
        GameError::WrongPhase(_) => "wrong_phase",
        GameError::NotAllowed(_) => "not_allowed",
        GameError::NotHost(_) => "not_host",
        GameError::BadField(_) => "bad_field",
        GameError::StageFull(_) => "stage_full",
        GameError::UnknownType(_) => "unknown_type",
        GameError::WrongKind(_) => "wrong_kind",
        GameError::RateLimited(_) => "rate_limited",
    }
}
