//! Mafia's vocabulary and its wire messages (docs/PROTOCOL.md, "Mafia"): what a seat sends
//! (`call_vote`, `vote`, `night_action`), what the game sends (`role`, `vote_update`,
//! `investigation`, `eliminated`, `game_over`), the `phase` message and `start_game.settings`.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

use crate::game::{Id, Millis, PhaseView};

/// The phases of a Mafia game (the lobby included), in wire spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Before a game: everyone sees and hears everyone.
    Lobby,
    /// Roles are dealt.
    RoleReveal,
    /// The night roles act; the living town is in the dark.
    Night,
    /// The night's outcome is announced.
    Dawn,
    /// Free talk.
    Day,
    /// Votes to put someone on trial.
    Nomination,
    /// The accused speaks alone.
    Defense,
    /// Guilty or innocent.
    Judgment,
    /// The game ended; roles are revealed.
    GameOver,
}

impl Phase {
    /// Every phase, in wire order.
    pub const ALL: [Phase; 9] = [
        Phase::Lobby,
        Phase::RoleReveal,
        Phase::Night,
        Phase::Dawn,
        Phase::Day,
        Phase::Nomination,
        Phase::Defense,
        Phase::Judgment,
        Phase::GameOver,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Lobby => "lobby",
            Phase::RoleReveal => "role_reveal",
            Phase::Night => "night",
            Phase::Dawn => "dawn",
            Phase::Day => "day",
            Phase::Nomination => "nomination",
            Phase::Defense => "defense",
            Phase::Judgment => "judgment",
            Phase::GameOver => "game_over",
        }
    }

    /// Parse a wire name.
    pub fn parse(s: &str) -> Option<Phase> {
        Phase::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// Whether a game is running (neither lobby nor game over).
    pub fn in_game(self) -> bool {
        !matches!(self, Phase::Lobby | Phase::GameOver)
    }
}

/// A role, as told to its owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Kills at night, knows the other mafia.
    Mafia,
    /// Saves one player a night.
    Doctor,
    /// Learns whether one player is mafia each night.
    Detective,
    /// No night action.
    Citizen,
    /// A host who does not play: sees every role and everyone.
    Moderator,
}

/// Chat channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// Everyone.
    All,
    /// The mafia (read also by the dead and the moderator).
    Mafia,
    /// The dead (read also by the moderator).
    Dead,
}

impl Channel {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::All => "all",
            Channel::Mafia => "mafia",
            Channel::Dead => "dead",
        }
    }

    /// Parse a wire name.
    pub fn parse(s: &str) -> Option<Channel> {
        [Channel::All, Channel::Mafia, Channel::Dead].into_iter().find(|c| c.as_str() == s)
    }
}

/// A judgment vote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Execute the accused.
    Guilty,
    /// Spare the accused.
    Innocent,
}

/// Who won.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Winner {
    /// Every mafioso is dead.
    Town,
    /// The living mafia are at least as many as the other living players.
    Mafia,
}

/// Why a player was eliminated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// The mafia's night kill.
    Killed,
    /// Found guilty.
    Executed,
    /// Left mid-game (or their reconnection grace ran out).
    Left,
}

/// Which vote a tally is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VoteKind {
    /// Asking to end the day early.
    CallVote,
    /// Choosing whom to put on trial.
    Nomination,
    /// Guilty or innocent.
    Judgment,
}

/// One voter's current vote, as shown in a tally.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Ballot {
    /// `call_vote`: true. (Serialized as `true`.)
    Call(bool),
    /// Judgment. Listed before `Target` so `"guilty"` reads back as a verdict; participant ids
    /// are 10 characters long, so no id is ever spelled like a verdict.
    Verdict(Verdict),
    /// Nomination: a target id, or `null` to abstain.
    Target(Option<Id>),
}

/// `start_game` settings; anything absent takes its default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// Number of mafia (default by player count).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mafia: Option<u32>,
    /// Number of doctors (default 1 from 5 players).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doctor: Option<u32>,
    /// Number of detectives (default 1 from 6 players).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detective: Option<u32>,
    /// Whether the host plays (default true) or moderates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_plays: Option<bool>,
    /// Phase lengths in seconds, by wire phase name; fractions allowed.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub phase_seconds: BTreeMap<String, f64>,
}

/// The `phase` message of a Mafia room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhaseInfo {
    /// The phase.
    pub phase: Phase,
    /// The round (0 in the lobby; 1 for the first night and the day after it, …).
    pub round: u32,
    /// When it ends on the room clock, if it has a timer.
    pub ends_at: Option<Millis>,
    /// The living players.
    pub alive: Vec<Id>,
    /// The accused, during defense and judgment.
    pub accused: Option<Id>,
}

impl PhaseView for PhaseInfo {
    fn name(&self) -> &str {
        self.phase.as_str()
    }
}

/// A role as its owner learns it (the `role` message, and `welcome.role` on resume).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleInfo {
    /// The role.
    pub role: Role,
    /// The other mafia (mafia only; empty otherwise).
    pub teammates: Vec<Id>,
    /// Every player's role (moderator only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<BTreeMap<Id, Role>>,
}

/// A public tally (the `vote_update` message, and `welcome.vote_update` on resume).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoteTally {
    /// Which vote.
    pub kind: VoteKind,
    /// Voter → ballot.
    pub votes: BTreeMap<Id, Ballot>,
    /// Votes needed (`call_vote` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub needed: Option<usize>,
}

/// What a seat sends in a Mafia room.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Command {
    /// Ask to end the day and vote.
    CallVote,
    /// Nomination (`target`: an id, or null to abstain) or judgment (`verdict`).
    Vote {
        /// Nomination target; `null` abstains. Absent during judgment.
        #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
        target: Option<Option<Id>>,
        /// Judgment verdict. Absent during nomination.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        verdict: Option<Verdict>,
    },
    /// A night action on a target (kill for mafia, save for doctor, investigate for detective).
    NightAction {
        /// Whom.
        target: Id,
    },
}

impl Command {
    /// The message types of this enum.
    pub const TYPES: &'static [&'static str] = &["call_vote", "vote", "night_action"];
}

/// Tells a present `null` (Some(None)) from an absent field (None, via `default`).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<Id>>, D::Error> {
    Option::<Id>::deserialize(d).map(Some)
}

/// What a Mafia game sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Message {
    /// A role, to its owner only.
    Role(RoleInfo),
    /// A public tally.
    VoteUpdate(VoteTally),
    /// The detective's answer; only to the detective.
    Investigation {
        /// Whom they investigated.
        target: Id,
        /// Whether that player is mafia.
        is_mafia: bool,
    },
    /// A player was eliminated (to everyone).
    Eliminated {
        /// Who.
        id: Id,
        /// How.
        cause: Cause,
    },
    /// The game ended (to everyone, with every role).
    GameOver {
        /// Who won.
        winner: Winner,
        /// Every player's role.
        roles: BTreeMap<Id, Role>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Command, serde_json::Error> {
        serde_json::from_str(text)
    }

    #[test]
    fn commands_roundtrip() {
        for command in [
            Command::CallVote,
            Command::Vote { target: Some(Some("abc".into())), verdict: None },
            Command::Vote { target: None, verdict: Some(Verdict::Guilty) },
            Command::NightAction { target: "abc".into() },
        ] {
            let text = serde_json::to_string(&command).unwrap();
            assert_eq!(parse(&text).unwrap(), command, "{text}");
        }
    }

    #[test]
    fn vote_tells_abstain_from_absent() {
        let abstain = parse(r#"{"type":"vote","target":null}"#).unwrap();
        assert_eq!(abstain, Command::Vote { target: Some(None), verdict: None });
        let verdict = parse(r#"{"type":"vote","verdict":"innocent"}"#).unwrap();
        assert_eq!(verdict, Command::Vote { target: None, verdict: Some(Verdict::Innocent) });
        let text = serde_json::to_string(&Command::Vote { target: Some(None), verdict: None }).unwrap();
        assert_eq!(text, r#"{"type":"vote","target":null}"#);
        assert!(parse(r#"{"type":"vote","verdict":"maybe"}"#).is_err());
        assert!(parse(r#"{"type":"night_action"}"#).is_err());
        assert_eq!(Channel::parse("town"), None);
        assert_eq!(Channel::parse("dead"), Some(Channel::Dead));
    }

    #[test]
    fn messages_keep_the_v1_wire_form() {
        let roles: BTreeMap<Id, Role> = [("a".to_string(), Role::Mafia), ("b".to_string(), Role::Doctor)].into();
        let cases = [
            (
                Message::Role(RoleInfo { role: Role::Mafia, teammates: vec!["c".into()], roles: None }),
                r#"{"type":"role","role":"mafia","teammates":["c"]}"#,
            ),
            (
                Message::VoteUpdate(VoteTally {
                    kind: VoteKind::Nomination,
                    votes: [
                        ("a".to_string(), Ballot::Target(Some("b".into()))),
                        ("c".to_string(), Ballot::Target(None)),
                    ]
                    .into(),
                    needed: None,
                }),
                r#"{"type":"vote_update","kind":"nomination","votes":{"a":"b","c":null}}"#,
            ),
            (
                Message::VoteUpdate(VoteTally {
                    kind: VoteKind::CallVote,
                    votes: [("a".to_string(), Ballot::Call(true))].into(),
                    needed: Some(3),
                }),
                r#"{"type":"vote_update","kind":"call_vote","votes":{"a":true},"needed":3}"#,
            ),
            (
                Message::Investigation { target: "b".into(), is_mafia: false },
                r#"{"type":"investigation","target":"b","is_mafia":false}"#,
            ),
            (
                Message::Eliminated { id: "b".into(), cause: Cause::Killed },
                r#"{"type":"eliminated","id":"b","cause":"killed"}"#,
            ),
            (
                Message::GameOver { winner: Winner::Town, roles },
                r#"{"type":"game_over","winner":"town","roles":{"a":"mafia","b":"doctor"}}"#,
            ),
        ];
        for (message, text) in cases {
            assert_eq!(serde_json::to_string(&message).unwrap(), text);
            let back: Message = serde_json::from_str(text).unwrap();
            assert_eq!(back, message);
        }
        let judgment = VoteTally {
            kind: VoteKind::Judgment,
            votes: [("a".to_string(), Ballot::Verdict(Verdict::Guilty))].into(),
            needed: None,
        };
        let back: VoteTally = serde_json::from_str(&serde_json::to_string(&judgment).unwrap()).unwrap();
        assert_eq!(back, judgment);
        let phase = PhaseInfo {
            phase: Phase::Night,
            round: 1,
            ends_at: Some(1_700_000_045_000),
            alive: vec!["a".into(), "b".into()],
            accused: None,
        };
        assert_eq!(
            serde_json::to_string(&phase).unwrap(),
            r#"{"phase":"night","round":1,"ends_at":1700000045000,"alive":["a","b"],"accused":null}"#
        );
    }
}
