//! Dealing a game: `start_game` settings checked against the rules, default role counts,
//! phase lengths, and the seeded deal.

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use super::{Phase, Role, Settings};
use crate::game::{GameError, Id, Millis};

/// Fewest players a game needs.
pub(super) const MIN_PLAYERS: usize = 4;
/// Most players a game seats.
pub(super) const MAX_PLAYERS: usize = 16;
/// Longest phase a host may set, in seconds.
const MAX_PHASE_SECONDS: f64 = 3600.0;

/// A phase's default length in seconds; `None` for the lobby, which has no timer.
fn default_seconds(phase: Phase) -> Option<f64> {
    Some(match phase {
        Phase::Lobby => return None,
        Phase::RoleReveal => 10.0,
        Phase::Night => 45.0,
        Phase::Dawn => 6.0,
        Phase::Day => 120.0,
        Phase::Nomination => 45.0,
        Phase::Defense => 30.0,
        Phase::Judgment => 20.0,
        Phase::GameOver => 30.0,
    })
}

/// Seconds to whole milliseconds; never 0, so a timer always lies in the future and one
/// `handle_timeout` advances at most one phase.
fn to_millis(seconds: f64) -> Millis {
    // `seconds` is validated to (0, 3600], so the cast cannot saturate.
    ((seconds * 1000.0).round() as Millis).max(1)
}

/// Phase lengths for one game.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Lengths(BTreeMap<Phase, Millis>);

impl Default for Lengths {
    fn default() -> Self {
        let map = Phase::ALL.into_iter().filter_map(|p| default_seconds(p).map(|s| (p, to_millis(s)))).collect();
        Lengths(map)
    }
}

impl Lengths {
    /// How long `phase` lasts, or `None` when it has no timer.
    pub(super) fn get(&self, phase: Phase) -> Option<Millis> {
        self.0.get(&phase).copied()
    }

    /// The defaults overridden by `settings.phase_seconds`, or the first bad entry.
    pub(super) fn from_settings(settings: &Settings) -> Result<Lengths, GameError> {
        let mut lengths = Lengths::default();
        for (name, &seconds) in &settings.phase_seconds {
            let bad = |why: &str| GameError::BadField(format!("phase_seconds.{name}: {why}"));
            let phase = Phase::parse(name).ok_or_else(|| {
                GameError::BadField(format!(
                    "phase_seconds: unknown phase \"{name}\" (timed phases: role_reveal, night, \
                     dawn, day, nomination, defense, judgment, game_over)"
                ))
            })?;
            if default_seconds(phase).is_none() {
                return Err(bad("this phase has no timer"));
            }
            // The range check is false for NaN, so NaN is refused too.
            if !(seconds.is_finite() && seconds > 0.0 && seconds <= MAX_PHASE_SECONDS) {
                return Err(bad("must be a number of seconds above 0 and at most 3600"));
            }
            lengths.0.insert(phase, to_millis(seconds));
        }
        Ok(lengths)
    }
}

/// Why a game needs at least one mafioso.
const NO_MAFIA: &str = "mafia: at least 1 mafioso is needed";

/// The rules each setting meets on its own, before anyone is counted: phase lengths, and role
/// counts in range (the counts against the players can only be checked at the start). The
/// room API checks a room's default settings with this.
pub fn check_settings(settings: &Settings) -> Result<(), GameError> {
    Lengths::from_settings(settings)?;
    if settings.mafia == Some(0) {
        return Err(GameError::BadField(NO_MAFIA.into()));
    }
    for (name, count) in [("mafia", settings.mafia), ("doctor", settings.doctor), ("detective", settings.detective)] {
        if count.is_some_and(|n| usize::try_from(n).map_or(true, |n| n > MAX_PLAYERS)) {
            return Err(GameError::BadField(format!("{name}: at most {MAX_PLAYERS}")));
        }
    }
    Ok(())
}

/// How many of each special role a game deals; the rest are citizens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Counts {
    /// Mafia.
    pub mafia: usize,
    /// Doctors.
    pub doctor: usize,
    /// Detectives.
    pub detective: usize,
}

impl Counts {
    /// The default role counts (docs/PROTOCOL.md, `start_game`) for `players` players.
    pub(super) fn default_for(players: usize) -> Counts {
        let mafia = match players {
            0..=5 => 1,
            6..=8 => 2,
            9..=11 => 3,
            _ => 4,
        };
        Counts { mafia, doctor: usize::from(players >= 5), detective: usize::from(players >= 6) }
    }

    /// The defaults for `players`, overridden by `settings`, or why they cannot be dealt.
    pub(super) fn from_settings(settings: &Settings, players: usize) -> Result<Counts, GameError> {
        let defaults = Counts::default_for(players);
        // u32 → usize is lossless on every target we build for; saturate rather than trust it.
        let get = |v: Option<u32>, default: usize| v.map_or(default, |n| usize::try_from(n).unwrap_or(usize::MAX));
        let counts = Counts {
            mafia: get(settings.mafia, defaults.mafia),
            doctor: get(settings.doctor, defaults.doctor),
            detective: get(settings.detective, defaults.detective),
        };
        if counts.mafia == 0 {
            return Err(GameError::BadField(NO_MAFIA.into()));
        }
        // Written as a comparison of sums so no subtraction can underflow.
        if counts.mafia.saturating_mul(2) >= players {
            return Err(GameError::BadField(format!(
                "mafia: the mafia must start fewer than the others ({} mafia among {players} players)",
                counts.mafia
            )));
        }
        let special = counts.mafia.saturating_add(counts.doctor).saturating_add(counts.detective);
        if special > players {
            return Err(GameError::BadField(format!(
                "doctor, detective: {} mafia + {} doctor + {} detective is more than the {players} players",
                counts.mafia, counts.doctor, counts.detective
            )));
        }
        Ok(counts)
    }
}

/// Deal roles to `players` (presence order kept) with `rng`.
pub(super) fn deal(counts: Counts, players: &[Id], rng: &mut StdRng) -> Vec<(Id, Role)> {
    let mut deck = Vec::with_capacity(players.len());
    deck.extend(std::iter::repeat_n(Role::Mafia, counts.mafia));
    deck.extend(std::iter::repeat_n(Role::Doctor, counts.doctor));
    deck.extend(std::iter::repeat_n(Role::Detective, counts.detective));
    deck.resize(players.len(), Role::Citizen);
    deck.shuffle(rng);
    players.iter().cloned().zip(deck).collect()
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn default_counts_follow_the_rules_table() {
        let expect = [
            (4, 1, 0, 0),
            (5, 1, 1, 0),
            (6, 2, 1, 1),
            (8, 2, 1, 1),
            (9, 3, 1, 1),
            (11, 3, 1, 1),
            (12, 4, 1, 1),
            (16, 4, 1, 1),
        ];
        for (players, mafia, doctor, detective) in expect {
            assert_eq!(Counts::default_for(players), Counts { mafia, doctor, detective }, "{players}");
        }
    }

    #[test]
    fn overrides_are_checked() {
        let s = |mafia, doctor, detective| Settings { mafia, doctor, detective, ..Settings::default() };
        assert!(Counts::from_settings(&s(Some(0), None, None), 6).is_err());
        assert!(Counts::from_settings(&s(Some(3), None, None), 6).is_err());
        assert!(Counts::from_settings(&s(Some(2), None, None), 5).is_ok());
        assert!(Counts::from_settings(&s(Some(2), Some(2), Some(2)), 5).is_err());
        assert!(Counts::from_settings(&s(Some(u32::MAX), Some(u32::MAX), None), 6).is_err());
        assert_eq!(
            Counts::from_settings(&s(Some(1), Some(0), Some(3)), 7),
            Ok(Counts { mafia: 1, doctor: 0, detective: 3 })
        );
    }

    #[test]
    fn lengths_default_and_override() {
        let d = Lengths::default();
        assert_eq!(d.get(Phase::Lobby), None);
        assert_eq!(d.get(Phase::Night), Some(45_000));
        assert_eq!(d.get(Phase::GameOver), Some(30_000));
        let mut settings = Settings::default();
        settings.phase_seconds.insert("night".into(), 1.5);
        settings.phase_seconds.insert("dawn".into(), 0.0001);
        let l = Lengths::from_settings(&settings).unwrap();
        assert_eq!(l.get(Phase::Night), Some(1500));
        assert_eq!(l.get(Phase::Dawn), Some(1));
        for (name, secs) in [("lobby", 5.0), ("dusk", 5.0), ("day", -1.0), ("day", 0.0), ("day", 3600.5)] {
            let mut settings = Settings::default();
            settings.phase_seconds.insert(name.into(), secs);
            assert!(matches!(Lengths::from_settings(&settings), Err(GameError::BadField(_))), "{name} {secs}");
        }
        for secs in [f64::NAN, f64::INFINITY] {
            let mut settings = Settings::default();
            settings.phase_seconds.insert("day".into(), secs);
            assert!(Lengths::from_settings(&settings).is_err());
        }
    }

    #[test]
    fn deal_is_seeded_and_complete() {
        let players: Vec<Id> = (0..9).map(|i| format!("p{i}")).collect();
        let counts = Counts::default_for(9);
        let a = deal(counts, &players, &mut StdRng::seed_from_u64(7));
        let b = deal(counts, &players, &mut StdRng::seed_from_u64(7));
        assert_eq!(a, b);
        assert_eq!(a.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>(), players);
        let n = |r| a.iter().filter(|(_, role)| *role == r).count();
        assert_eq!((n(Role::Mafia), n(Role::Doctor), n(Role::Detective), n(Role::Citizen)), (3, 1, 1, 4));
    }
}
