//! The one file that names every game. Adding a game is a line in [`Registry::builtin`] and its
//! own module (docs/ARCHITECTURE.md, "Adding a game").

use super::any::{AnyDriver, Kinded};
use super::driver::Driver;
use super::stage::{StageLimits, StageRoom};
use super::{draw, mafia, rlgl, Game, GameError, Roster};

/// Makes a kind's game for a room: from the room's seed and its seats.
type Factory = Box<dyn Fn(u64, Roster) -> Box<dyn AnyDriver> + Send + Sync>;

/// Checks a kind's `start_game` settings on their own (JSON).
type Checker = Box<dyn Fn(&serde_json::Value) -> Result<(), GameError> + Send + Sync>;

/// One kind of room.
pub struct Kind {
    name: &'static str,
    commands: &'static [&'static str],
    capacity: usize,
    create: Factory,
    check: Checker,
}

impl Kind {
    /// The kind's name (`kind` on the wire).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Most participants a room of this kind holds unless the configuration says otherwise.
    pub fn default_capacity(&self) -> usize {
        self.capacity
    }
}

/// The kinds a server offers.
pub struct Registry {
    kinds: Vec<Kind>,
}

impl Registry {
    /// Every game parlor ships, with the default limits. The first is the default kind.
    pub fn builtin() -> Registry {
        Registry::builtin_with(StageLimits::default())
    }

    /// Every game parlor ships, stage rooms with `stage` limits.
    pub fn builtin_with(stage: StageLimits) -> Registry {
        Registry::new()
            .with("mafia", 24, mafia::Mafia::new)
            .with("stage", 100, move |_| StageRoom::new(stage))
            .with("draw", 100, move |seed| draw::Draw::new(seed, stage))
            .with("rlgl", 100, move |seed| rlgl::Rlgl::new(seed, stage))
    }

    /// No kinds at all (add them with [`Registry::with`]).
    pub fn new() -> Registry {
        Registry { kinds: Vec::new() }
    }

    /// Offer the game `G` as kind `name`, made by `new` from a seed, holding at most
    /// `capacity` participants by default.
    pub fn with<G: Game>(
        mut self,
        name: &'static str,
        capacity: usize,
        new: impl Fn(u64) -> G + Send + Sync + 'static,
    ) -> Registry {
        let create: Factory = Box::new(move |seed, roster| {
            Box::new(Kinded { kind: name, driver: Driver::with_roster(new(seed), roster) })
        });
        let check: Checker = Box::new(|value| {
            let settings: G::Settings = match value {
                serde_json::Value::Null => G::Settings::default(),
                v => serde_json::from_value(v.clone()).map_err(|e| GameError::BadField(format!("settings: {e}")))?,
            };
            G::check_settings(&settings)
        });
        self.kinds.retain(|k| k.name != name);
        self.kinds.push(Kind { name, commands: G::COMMANDS, capacity, create, check });
        self
    }

    /// The default kind (the first offered).
    pub fn default_kind(&self) -> &'static str {
        self.kinds.first().map_or("mafia", |k| k.name)
    }

    /// Every kind's name, in the order offered.
    pub fn names(&self) -> Vec<&'static str> {
        self.kinds.iter().map(|k| k.name).collect()
    }

    /// The kind `name`, or `bad_field` naming the kinds that exist.
    pub fn get(&self, name: &str) -> Result<&Kind, GameError> {
        self.kinds.iter().find(|k| k.name == name).ok_or_else(|| {
            let shown: String = name.chars().take(32).collect();
            GameError::BadField(format!("kind: no kind {shown:?}; this server offers {}", self.names().join(", ")))
        })
    }

    /// A fresh game of kind `name` over `roster`.
    pub fn create(&self, name: &str, seed: u64, roster: Roster) -> Result<Box<dyn AnyDriver>, GameError> {
        Ok((self.get(name)?.create)(seed, roster))
    }

    /// Check `start_game` settings for kind `name` on their own (the room API does).
    pub fn check_settings(&self, name: &str, settings: &serde_json::Value) -> Result<(), GameError> {
        (self.get(name)?.check)(settings)
    }

    /// The kind whose game takes message type `ty`, if any.
    pub fn kind_of_command(&self, ty: &str) -> Option<&'static str> {
        self.kinds.iter().find(|k| k.commands.contains(&ty)).map(|k| k.name)
    }

    /// The refusal of a message type the room's own game does not take: `wrong_kind` when
    /// another kind takes it, else `unknown_type`.
    pub fn refuse_type(&self, ty: &str, kind: &str) -> GameError {
        let shown: String = ty.chars().take(40).collect();
        match self.kind_of_command(ty) {
            Some(other) => GameError::WrongKind(format!("\"{shown}\" is for {other} rooms; this is a {kind} room")),
            None => GameError::UnknownType(format!("unknown message type \"{shown}\"")),
        }
    }
}

impl Default for Registry {
    fn default() -> Self {
        Registry::builtin()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_kinds_and_their_refusals() {
        let r = Registry::builtin();
        assert_eq!(r.default_kind(), "mafia");
        assert_eq!(r.get("stage").unwrap().default_capacity(), 100);
        assert_eq!(r.kind_of_command("raise_hand"), Some("stage"));
        assert!(matches!(r.refuse_type("view", "mafia"), GameError::WrongKind(_)));
        let err = r.get("poker").err().unwrap();
        assert!(matches!(&err, GameError::BadField(m) if m.contains("mafia")), "{err:?}");
        assert_eq!(r.kind_of_command("night_action"), Some("mafia"));
        assert!(matches!(r.refuse_type("dance", "mafia"), GameError::UnknownType(_)));
        assert!(matches!(r.refuse_type("night_action", "other"), GameError::WrongKind(_)));
        let game = r.create("mafia", 1, Roster::new()).unwrap();
        assert_eq!(game.kind(), "mafia");
        assert!(game.accepts("vote") && !game.accepts("join"));
        assert!(r.check_settings("mafia", &serde_json::json!({"mafia": 0})).is_err());
        assert!(r.check_settings("mafia", &serde_json::json!({"mafia": "x"})).is_err());
        assert!(r.check_settings("mafia", &serde_json::Value::Null).is_ok());
    }
}
