//! Replayable games: every input of one game, with its time, as JSON lines — and the replay
//! that feeds them to a fresh engine and checks it produces the same events.
//!
//! A log is a header (room, the deal's seed, the start time, the room's participants in
//! presence order) followed by `input` / `timeout` records, each followed by the `event`s the
//! engine produced for it. Replaying needs nothing else: the engine is pure.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::game::mafia::Mafia;
use crate::game::{Command, Event, Game, Id, Millis, Winner};

/// Format version written in every header.
pub const VERSION: u32 = 1;

/// One line of a game log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Record {
    /// The first line.
    Header {
        /// Format version.
        version: u32,
        /// Room code.
        room: String,
        /// Seed of this game's deal.
        seed: u64,
        /// When the game started (room clock, unix ms).
        started_at: Millis,
        /// Everyone in the room at the start, in presence order (the first is the host).
        roster: Vec<Id>,
    },
    /// A command handed to the engine (accepted or not).
    Input {
        /// When.
        at: Millis,
        /// From whom.
        who: Id,
        /// What.
        command: Command,
    },
    /// The engine's timer ran.
    Timeout {
        /// When.
        at: Millis,
    },
    /// An event the engine produced for the input before it.
    Event {
        /// The event.
        event: Event,
    },
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
    /// Every event the engine produced, in order.
    pub events: Vec<Event>,
    /// The winner, if the game ended.
    pub winner: Option<Winner>,
    /// The first difference from the recording: (index of the event, recorded, replayed).
    pub mismatch: Option<(usize, Option<Event>, Option<Event>)>,
}

/// Parse a log's text (one JSON record per line; blank lines ignored).
pub fn parse(text: &str) -> Result<Vec<Record>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).map_err(|e| format!("line {}: {e}", i + 1)))
        .collect()
}

/// Run the records' inputs through a fresh engine and compare its events with the recorded ones.
pub fn replay(records: &[Record]) -> Result<Replay, String> {
    let Some(Record::Header { version, seed, started_at, roster, .. }) = records.first() else {
        return Err("the log does not start with a header".into());
    };
    if *version != VERSION {
        return Err(format!("log format version {version}; this parlor reads version {VERSION}"));
    }
    let mut game = Mafia::new(*seed);
    for id in roster {
        game.handle(*started_at, id, Command::Joined).map_err(|e| format!("roster {id}: {e}"))?;
    }
    while game.poll_event().is_some() {} // the lobby before the game is not part of the log
    let mut produced = Vec::new();
    let mut recorded = Vec::new();
    for record in &records[1..] {
        match record {
            Record::Header { .. } => return Err("a second header".into()),
            Record::Input { at, who, command } => {
                let mut command = command.clone();
                if let Command::StartGame(settings) = &mut command {
                    settings.seed = Some(*seed);
                }
                // Refusals are part of the game too: they may have run a due timer.
                let _ = game.handle(*at, who, command);
            }
            Record::Timeout { at } => game.handle_timeout(*at),
            Record::Event { event } => {
                recorded.push(event.clone());
                continue;
            }
        }
        while let Some(e) = game.poll_event() {
            produced.push(e);
        }
    }
    let mismatch = (0..produced.len().max(recorded.len()))
        .find(|i| produced.get(*i) != recorded.get(*i))
        .map(|i| (i, recorded.get(i).cloned(), produced.get(i).cloned()));
    let winner = produced.iter().find_map(|e| match e {
        Event::GameOver { winner, .. } => Some(*winner),
        _ => None,
    });
    Ok(Replay { events: produced, winner, mismatch })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::game::Settings;

    /// Play a game on the engine the way the room does, recording it; then replay.
    #[test]
    fn a_recorded_game_replays_identically() {
        let roster: Vec<Id> = (0..5).map(|i| format!("p{i}")).collect();
        let seed = 42;
        let mut game = Mafia::new(7);
        for id in &roster {
            game.handle(0, id, Command::Joined).unwrap();
        }
        while game.poll_event().is_some() {}
        let mut log =
            vec![Record::Header { version: VERSION, room: "r".into(), seed, started_at: 0, roster: roster.clone() }];
        let step =
            |game: &mut Mafia, at: Millis, who: Option<&str>, command: Option<Command>, log: &mut Vec<Record>| {
                match (who, command) {
                    (Some(who), Some(mut command)) => {
                        log.push(Record::Input { at, who: who.into(), command: command.clone() });
                        if let Command::StartGame(s) = &mut command {
                            s.seed = Some(seed);
                        }
                        let _ = game.handle(at, who, command);
                    }
                    _ => {
                        log.push(Record::Timeout { at });
                        game.handle_timeout(at);
                    }
                }
                while let Some(event) = game.poll_event() {
                    log.push(Record::Event { event });
                }
            };
        let mut settings = Settings::default();
        settings.phase_seconds.insert("role_reveal".into(), 1.0);
        step(&mut game, 10, Some("p0"), Some(Command::StartGame(settings)), &mut log);
        let mut t = 10;
        // Let time run: timers take the game around until someone wins or time is up.
        for _ in 0..200 {
            t += 500;
            if let Some(d) = game.next_deadline() {
                if d <= t {
                    step(&mut game, t, None, None, &mut log);
                }
            }
            // Everyone keeps calling votes and nominating p1; a refusal is fine.
            for id in &roster {
                step(&mut game, t, Some(id), Some(Command::CallVote), &mut log);
                step(&mut game, t, Some(id), Some(Command::Nominate(Some("p1".into()))), &mut log);
                step(&mut game, t, Some(id), Some(Command::Judge(crate::game::Verdict::Guilty)), &mut log);
            }
        }
        let text: String = log.iter().map(|r| serde_json::to_string(r).unwrap() + "\n").collect();
        let parsed = parse(&text).unwrap();
        assert_eq!(parsed, log);
        let replay = replay(&parsed).unwrap();
        assert_eq!(replay.mismatch, None);
        assert!(replay.events.len() > 20);
        // Tampering shows: drop the deal's seed and the roles come out differently.
        let mut tampered = parsed.clone();
        if let Record::Header { seed, .. } = &mut tampered[0] {
            *seed += 1;
        }
        let other = super::replay(&tampered).unwrap();
        assert!(other.mismatch.is_some(), "a different seed deals differently");
    }

    #[test]
    fn bad_logs_are_refused() {
        assert!(parse("{not json}\n").is_err());
        assert!(replay(&[]).is_err());
        assert!(replay(&[Record::Timeout { at: 1 }]).is_err());
        let wrong_version = Record::Header { version: 99, room: "r".into(), seed: 1, started_at: 0, roster: vec![] };
        assert!(replay(&[wrong_version]).unwrap_err().contains("version"));
    }
}
