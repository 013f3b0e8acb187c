//! Who receives whom in a drawing room, on top of the stage table (docs/PROTOCOL.md,
//! "Drawing rooms"):
//!
//! - between games: the stage's table, unchanged;
//! - while choosing and at the reveal: the host and the drawer reach everyone; the others'
//!   cameras reach the host while in the host's view, their microphones nobody;
//! - while drawing: the drawer reaches everyone. A guesser who has not guessed yet is heard
//!   by nobody (nobody can shout the word); their camera reaches the host while in view (the
//!   host's own camera reaches everyone, as on any stage). Those who have guessed hear and see
//!   each other and the drawer, and nobody else — the host included, if the host has not
//!   guessed — so what they say or hold up stays among those who know the word.

use std::collections::BTreeSet;

use crate::game::stage::Stage;
use crate::game::{Id, MediaKind, Roster, Routes};

/// Where a turn stands, for routing.
pub struct TurnView<'a> {
    /// Who draws.
    pub drawer: &'a str,
    /// Whether the drawing is under way (else choosing or the reveal).
    pub drawing: bool,
    /// Who has guessed the word.
    pub guessed: &'a BTreeSet<Id>,
}

/// The routes now.
pub fn routes(stage: &Stage, roster: &Roster, turn: Option<TurnView<'_>>) -> Routes {
    let Some(turn) = turn else { return stage.routes(roster) };
    let mut routes = Routes::new();
    let everyone = roster.id_list();
    let both = |routes: &mut Routes, to: &[Id], from: &str| {
        for kind in MediaKind::ALL {
            routes.allow_all(to, from, kind);
        }
    };
    let present = |id: &str| roster.contains(id);
    if present(turn.drawer) {
        both(&mut routes, &everyone, turn.drawer);
    }
    let host = roster.host();
    let view: BTreeSet<&Id> = stage.view(roster).collect();
    if !turn.drawing {
        if let Some(host) = host.filter(|h| *h != turn.drawer) {
            both(&mut routes, &everyone, host);
        }
        for id in &everyone {
            if let Some(host) = host.filter(|_| view.contains(id) && id != turn.drawer) {
                routes.allow(host, id, MediaKind::Video);
            }
        }
        return routes;
    }
    let knowers: Vec<Id> =
        std::iter::once(turn.drawer.to_owned()).chain(turn.guessed.iter().filter(|id| present(id)).cloned()).collect();
    for id in everyone.iter().filter(|id| *id != turn.drawer) {
        if turn.guessed.contains(id) {
            both(&mut routes, &knowers, id);
        } else if host == Some(id.as_str()) {
            routes.allow_all(&everyone, id, MediaKind::Video);
        } else if let Some(host) = host.filter(|_| view.contains(id)) {
            routes.allow(host, id, MediaKind::Video);
        }
    }
    routes
}
