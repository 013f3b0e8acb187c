//! Replayable games: every input of one game, with its time, as JSON lines — and the replay
//! that feeds them to a fresh game of the same kind and checks it produces the same events.
//!
//! A log is a header (kind, room, the game's seed, the start time, the seats at the start in
//! presence order with their names, readiness and measured round trips, the host) followed by `input`
//! and `timeout` records, each followed by the `event`s it produced. Replaying needs nothing
//! else: games are pure, and the seats are replayed by the same [`AnyDriver`] the room uses.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::game::{AnyDriver, AnyEvent, AnyInput, Id, Input, Millis, Registry, Roster, Rtt};

/// Format version written in every header.
pub const VERSION: u32 = 2;

/// A seat at the start of a game.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatRecord {
    /// Participant id.
    pub id: Id,
    /// Display name (a game may go by it: an rlgl room's TV views watch); the id when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Ready when the game started.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ready: bool,
    /// The measured round trip at the start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt: Option<Rtt>,
}

/// One line of a game log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case")]
pub enum Record {
    /// The first line.
    Header {
        /// Format version.
        version: u32,
        /// The room's kind.
        kind: String,
        /// Room code.
        room: String,
        /// The game's seed.
        seed: u64,
        /// When the game started (room clock, unix ms).
        started_at: Millis,
        /// Everyone in the room at the start, in presence order.
        seats: Vec<SeatRecord>,
        /// Who held the host's powers.
        host: Option<Id>,
    },
    /// An input handed to the room's game (accepted or not).
    Input {
        /// When.
        at: Millis,
        /// From whom.
        who: Id,
        /// What.
        input: AnyInput,
    },
    /// The game's timer ran.
    Timeout {
        /// When.
        at: Millis,
    },
    /// An event produced for the record before it (a game message as JSON, not as text).
    Event {
        /// The event.
        event: serde_json::Value,
    },
}

/// The header of a game that starts now.
pub fn header(kind: &str, room: &str, seed: u64, now: Millis, roster: &Roster) -> Record {
    Record::Header {
        version: VERSION,
        kind: kind.to_owned(),
        room: room.to_owned(),
        seed,
        started_at: now,
        seats: roster
            .seats()
            .iter()
            .map(|s| SeatRecord { id: s.id.clone(), name: Some(s.name.clone()), ready: s.ready, rtt: s.rtt })
            .collect(),
        host: roster.host().map(str::to_owned),
    }
}

/// An event as the log keeps it: a message's text becomes the JSON it is, so the log reads as
/// JSON and compares by value.
pub fn event_json(event: &AnyEvent) -> serde_json::Value {
    let mut value = serde_json::to_value(event).unwrap_or_default();
    if let AnyEvent::Send { text, .. } = event {
        if let (Some(send), Ok(message)) = (value.get_mut("send"), serde_json::from_str::<serde_json::Value>(text)) {
            send["text"] = message;
        }
    }
    value
}

/// Writes one game's log. Failures are reported to the caller, which stops logging that game
/// rather than disturbing the room.
#[derive(Debug)]
pub struct GameLog {
    out: BufWriter<File>,
    path: PathBuf,
}

impl GameLog {
    /// Create `dir/<room>-<started_at>.jsonl` (and `dir`) and write the header.
    pub fn create(dir: &Path, header: &Record) -> std::io::Result<GameLog> {
        let Record::Header { room, started_at, .. } = header else {
            return Err(std::io::Error::other("a game log starts with its header"));
        };
        std::fs::create_dir_all(dir)?;
        let path = dir.join(format!("{room}-{started_at}.jsonl"));
        let mut log = GameLog { out: BufWriter::new(File::create(&path)?), path };
        log.write(header)?;
        Ok(log)
    }

    /// Append one record.
    pub fn write(&mut self, record: &Record) -> std::io::Result<()> {
        serde_json::to_writer(&mut self.out, record)?;
        self.out.write_all(b"\n")
    }

    /// Flush to disk.
    pub fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }

    /// Where the log is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// What a replay found.
#[derive(Debug, Clone, PartialEq)]
pub struct Replay {
    /// The room's kind.
    pub kind: String,
    /// Every event the game produced, in order (as the log keeps them).
    pub events: Vec<serde_json::Value>,
    /// The game's `game_over` message, if the game ended.
    pub game_over: Option<serde_json::Value>,
    /// The first difference from the recording: (index of the event, recorded, replayed).
    pub mismatch: Option<(usize, Option<serde_json::Value>, Option<serde_json::Value>)>,
}

/// Parse a log's text (one JSON record per line; blank lines ignored).
pub fn parse(text: &str) -> Result<Vec<Record>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).map_err(|e| format!("line {}: {e}", i + 1)))
        .collect()
}

/// Run the records' inputs through a fresh game of the logged kind (from `registry`) and
/// compare its events with the recorded ones.
pub fn replay(registry: &Registry, records: &[Record]) -> Result<Replay, String> {
    let Some(Record::Header { version, kind, seed, seats, host, .. }) = records.first() else {
        return Err("the log does not start with a header".into());
    };
    if *version != VERSION {
        return Err(format!("log format version {version}; this parlor reads version {VERSION}"));
    }
    let mut game: Box<dyn AnyDriver> = registry.create(kind, *seed, Roster::new()).map_err(|e| e.to_string())?;
    seat(game.as_mut(), seats, host.as_deref())?;
    let mut produced = Vec::new();
    let mut recorded = Vec::new();
    for record in &records[1..] {
        match record {
            Record::Header { .. } => return Err("a second header".into()),
            // Refusals are part of the game too: they may have run a due timer.
            Record::Input { at, who, input } => drop(game.handle(*at, who, input.clone())),
            Record::Timeout { at } => game.handle_timeout(*at),
            Record::Event { event } => {
                recorded.push(event.clone());
                continue;
            }
        }
        while let Some(e) = game.poll_event() {
            produced.push(event_json(&e));
        }
    }
    let mismatch = (0..produced.len().max(recorded.len()))
        .find(|i| produced.get(*i) != recorded.get(*i))
        .map(|i| (i, recorded.get(i).cloned(), produced.get(i).cloned()));
    let game_over = produced.iter().rev().find_map(|e| {
        let text = e.get("send")?.get("text")?;
        (text.get("type")? == "game_over").then(|| text.clone())
    });
    Ok(Replay { kind: kind.clone(), events: produced, game_over, mismatch })
}

/// Seat the header's room: everyone in order, the host's powers, readiness and round trips;
/// what that produces is the room before the game, not part of the log.
fn seat(game: &mut dyn AnyDriver, seats: &[SeatRecord], host: Option<&str>) -> Result<(), String> {
    for s in seats {
        let name = s.name.clone().unwrap_or_else(|| s.id.clone());
        let join = Input::Join { name, guest: host != Some(s.id.as_str()) };
        game.handle(0, &s.id, join).map_err(|e| format!("seat {}: {e}", s.id))?;
        if s.ready {
            game.handle(0, &s.id, Input::Ready { ready: true }).map_err(|e| format!("seat {}: {e}", s.id))?;
        }
        if let Some(rtt) = s.rtt {
            game.handle(0, &s.id, Input::Rtt(rtt)).map_err(|e| format!("seat {}: {e}", s.id))?;
        }
    }
    if let Some(host) = host {
        game.handle(0, host, Input::TakeHost).map_err(|e| format!("host {host}: {e}"))?;
    }
    while game.poll_event().is_some() {}
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Play a game the way the room does, recording it; then replay.
    #[test]
    fn a_recorded_game_replays_identically() {
        let registry = Registry::builtin();
        let mut game = registry.create("mafia", 7, Roster::new()).unwrap();
        let roster: Vec<Id> = (0..5).map(|i| format!("p{i}")).collect();
        for id in &roster {
            game.handle(0, id, Input::Join { name: id.clone(), guest: false }).unwrap();
        }
        while game.poll_event().is_some() {}
        let seed = 42;
        let mut log = vec![header("mafia", "r", seed, 10, game.roster())];
        let mut step = |game: &mut Box<dyn AnyDriver>, at: Millis, who: Option<&str>, input: Option<AnyInput>| {
            match (who, input) {
                (Some(who), Some(input)) => {
                    log.push(Record::Input { at, who: who.into(), input: input.clone() });
                    let _ = game.handle(at, who, input);
                }
                _ => {
                    log.push(Record::Timeout { at });
                    game.handle_timeout(at);
                }
            }
            while let Some(event) = game.poll_event() {
                log.push(Record::Event { event: event_json(&event) });
            }
        };
        let settings = serde_json::json!({"phase_seconds": {"role_reveal": 1.0}});
        step(&mut game, 10, Some("p0"), Some(Input::Start { settings, seed: Some(seed) }));
        let vote = |v: serde_json::Value| Some(Input::Game(v));
        let mut t = 10;
        // Let time run: timers take the game around until someone wins or time is up.
        for _ in 0..200 {
            t += 500;
            if game.next_deadline().is_some_and(|d| d <= t) {
                step(&mut game, t, None, None);
            }
            // Everyone keeps calling votes and nominating p1; a refusal is fine.
            for id in &roster {
                step(&mut game, t, Some(id), vote(serde_json::json!({"type": "call_vote"})));
                step(&mut game, t, Some(id), vote(serde_json::json!({"type": "vote", "target": "p1"})));
                step(&mut game, t, Some(id), vote(serde_json::json!({"type": "vote", "verdict": "guilty"})));
                step(&mut game, t, Some(id), Some(Input::Chat { channel: "all".into(), text: "hi".into() }));
            }
        }
        let text: String = log.iter().map(|r| serde_json::to_string(r).unwrap() + "\n").collect();
        let parsed = parse(&text).unwrap();
        assert_eq!(parsed, log);
        let replayed = replay(&registry, &parsed).unwrap();
        assert_eq!(replayed.mismatch, None);
        assert!(replayed.events.len() > 20);
        // Tampering shows: change the seed and the roles come out differently.
        let mut tampered = parsed.clone();
        if let Record::Input { input: Input::Start { seed, .. }, .. } = &mut tampered[1] {
            *seed = Some(43);
        }
        let other = replay(&registry, &tampered).unwrap();
        assert!(other.mismatch.is_some(), "a different seed deals differently");
    }

    #[test]
    fn bad_logs_are_refused() {
        let registry = Registry::builtin();
        assert!(parse("{not json}\n").is_err());
        assert!(replay(&registry, &[]).is_err());
        assert!(replay(&registry, &[Record::Timeout { at: 1 }]).is_err());
        let header = |version, kind: &str| Record::Header {
            version,
            kind: kind.into(),
            room: "r".into(),
            seed: 1,
            started_at: 0,
            seats: vec![],
            host: None,
        };
        assert!(replay(&registry, &[header(99, "mafia")]).unwrap_err().contains("version"));
        assert!(replay(&registry, &[header(VERSION, "poker")]).unwrap_err().contains("poker"));
    }
}
