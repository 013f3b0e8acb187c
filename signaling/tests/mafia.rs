//! Whole-game scenarios of the Mafia engine, on synthetic time. Roles come from the seeded
//! deal, so every scenario reads who is who from the `Role` events instead of assuming it.

mod support;

use std::collections::BTreeMap;

use parlor_signaling::MediaKind;
use support::{
    ids, phases, role_map, settings, Ballot, Cause, Channel, Command, Event, GameError, Id, Phase, PhaseInfo, Role,
    Settings, Standing, Table, Verdict, VoteKind, Winner,
};

fn act(t: &mut Table, who: &str, target: &str) {
    t.ok(who, Command::NightAction(target.to_string()));
}

/// Every living mafioso picks `victim`; the night then ends (early if nobody else can act,
/// else on its timer, so no save happens).
fn kill(t: &mut Table, victim: &str) {
    assert_eq!(t.phase(), Phase::Night);
    for m in t.living_with(Role::Mafia) {
        act(t, &m, victim);
    }
    if t.phase() == Phase::Night {
        t.skip();
    }
}

/// In the nomination: everyone else accuses `who`, who abstains.
fn accuse(t: &mut Table, who: &str) {
    assert_eq!(t.phase(), Phase::Nomination);
    for voter in t.living() {
        let target = (voter != who).then(|| who.to_string());
        t.ok(&voter, Command::Nominate(target));
    }
    assert_eq!(t.phase(), Phase::Defense);
    assert_eq!(t.game.phase().accused.as_deref(), Some(who));
}

fn chat(channel: Channel) -> Command {
    Command::Chat { channel, text: "hi".into() }
}

/// The recipients of the single chat event in `events`.
fn chat_readers(events: &[Event]) -> Vec<Id> {
    match events {
        [Event::Chat { to, .. }] => to.clone(),
        other => panic!("expected one chat event, got {other:?}"),
    }
}

fn eliminated(events: &[Event]) -> Vec<(Id, Cause)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Eliminated { id, cause } => Some((id.clone(), *cause)),
            _ => None,
        })
        .collect()
}

fn strings(v: &[&str]) -> Vec<Id> {
    v.iter().map(|s| s.to_string()).collect()
}

fn not_allowed(e: GameError) -> bool {
    matches!(e, GameError::NotAllowed(_))
}

// ----- lobby and start -----

#[test]
fn lobby_basics() {
    let mut t = Table::room(1, 3);
    let info = t.game.phase();
    assert_eq!(info, PhaseInfo { phase: Phase::Lobby, round: 0, ends_at: None, alive: ids(3), accused: None });
    assert_eq!(t.game.next_deadline(), None);
    assert_eq!(t.game.host().as_deref(), Some("p0"));
    assert!(t.take().is_empty(), "joining emits nothing: the room announces joins");
    assert_eq!(t.game.standing("p1"), Standing { ready: false, playing: false, alive: true });
    assert_eq!(t.game.role_of("p0"), None);
    assert_eq!(t.game.routes().len(), 3 * 2 * 2);

    t.ok("p1", Command::Ready(true));
    assert_eq!(t.take(), vec![Event::ParticipantChanged { id: "p1".into() }]);
    t.ok("p1", Command::Ready(true));
    assert!(t.take().is_empty(), "unchanged readiness is not news");
    assert!(t.game.standing("p1").ready);

    assert!(not_allowed(t.err("p1", Command::Joined)));
    assert!(not_allowed(t.err("stranger", Command::Ready(true))));
    assert!(not_allowed(t.err("stranger", Command::Left)));
    assert!(not_allowed(t.err("stranger", Command::CallVote)));

    t.ok("p2", chat(Channel::All));
    let now = t.now;
    assert_eq!(
        t.take(),
        vec![Event::Chat { from: "p2".into(), channel: Channel::All, text: "hi".into(), at: now, to: ids(3) }]
    );
    assert!(not_allowed(t.err("p2", chat(Channel::Mafia))));
    assert!(not_allowed(t.err("p2", chat(Channel::Dead))));

    // Out-of-phase game commands.
    for command in
        [Command::CallVote, Command::Nominate(None), Command::Judge(Verdict::Guilty), Command::NightAction("p1".into())]
    {
        assert!(matches!(t.err("p1", command), GameError::WrongPhase(_)));
    }
}

#[test]
fn start_refused_outside_four_to_sixteen_players() {
    let mut t = Table::room(1, 3);
    match t.err("p0", Command::StartGame(Settings::default())) {
        GameError::NotAllowed(m) => assert!(m.contains("4 to 16"), "{m}"),
        e => panic!("{e:?}"),
    }
    let mut t = Table::room(1, 17);
    assert!(not_allowed(t.err("p0", Command::StartGame(Settings::default()))));
    // A moderating host is not a player: 4 in the room make 3 players.
    let mut t = Table::room(1, 4);
    let moderated = Settings { host_plays: Some(false), ..Settings::default() };
    assert!(not_allowed(t.err("p0", Command::StartGame(moderated))));
    // Sixteen players start.
    let mut t = Table::room(1, 16);
    t.ok("p0", Command::StartGame(Settings::default()));
    assert_eq!(t.with(Role::Mafia).len(), 4);
    assert!(t.take().len() > 16);
}

#[test]
fn only_the_host_starts() {
    let mut t = Table::room(1, 5);
    assert!(matches!(t.err("p1", Command::StartGame(Settings::default())), GameError::NotHost(_)));
    assert_eq!(t.phase(), Phase::Lobby);
}

#[test]
fn bad_settings_are_bad_fields() {
    let mut t = Table::room(1, 6);
    let mut bad = |s: Settings, field: &str| match t.err("p0", Command::StartGame(s)) {
        GameError::BadField(m) => assert!(m.contains(field), "{m:?} should name {field}"),
        e => panic!("{e:?}"),
    };
    bad(settings(Some(3), None, None), "mafia"); // 3 of 6: not fewer than the others
    bad(settings(Some(0), None, None), "mafia");
    bad(settings(Some(2), Some(3), Some(2)), "doctor");
    let seconds = |name: &str, secs: f64| {
        let mut s = Settings::default();
        s.phase_seconds.insert(name.into(), secs);
        s
    };
    bad(seconds("dusk", 10.0), "dusk");
    bad(seconds("lobby", 10.0), "phase_seconds.lobby");
    bad(seconds("night", -5.0), "phase_seconds.night");
    bad(seconds("night", 0.0), "phase_seconds.night");
    bad(seconds("day", 3600.5), "phase_seconds.day");
    bad(seconds("day", f64::NAN), "phase_seconds.day");
    bad(seconds("day", f64::INFINITY), "phase_seconds.day");
    assert_eq!(t.phase(), Phase::Lobby);
    assert!(t.take().is_empty(), "a refused start changes nothing");

    let mut t = Table::room(1, 4);
    assert!(matches!(t.err("p0", Command::StartGame(settings(Some(2), None, None))), GameError::BadField(_)));
    // Fractional seconds are fine, and the upper bound is inclusive.
    let mut s = settings(Some(1), Some(1), Some(1));
    s.phase_seconds.insert("role_reveal".into(), 0.25);
    s.phase_seconds.insert("night".into(), 3600.0);
    let now = t.now;
    t.ok("p0", Command::StartGame(s));
    assert_eq!(t.game.next_deadline(), Some(now + 250));
    assert_eq!(t.skip(), Phase::Night);
    assert_eq!(t.game.next_deadline(), Some(now + 250 + 3_600_000));
    assert_eq!((t.with(Role::Doctor).len(), t.with(Role::Detective).len()), (1, 1));
}

#[test]
fn start_deals_and_announces() {
    let mut t = Table::room(3, 6);
    t.ok("p1", Command::Ready(true));
    t.take();
    let now = t.now;
    t.ok("p0", Command::StartGame(Settings::default()));
    let events = t.take();
    let changed: Vec<Event> = ids(6).into_iter().map(|id| Event::ParticipantChanged { id }).collect();
    assert_eq!(events[..6], changed[..]);
    assert_eq!(
        events[6],
        Event::Phase(PhaseInfo {
            phase: Phase::RoleReveal,
            round: 0,
            ends_at: Some(now + 10_000),
            alive: ids(6),
            accused: None
        })
    );
    assert_eq!(events.len(), 6 + 1 + 6);
    let mafia = t.with(Role::Mafia);
    assert_eq!(mafia.len(), 2);
    assert_eq!((t.with(Role::Doctor).len(), t.with(Role::Detective).len(), t.with(Role::Citizen).len()), (1, 1, 2));
    for (i, event) in events[7..].iter().enumerate() {
        let Event::Role { to, role, teammates, roles } = event else { panic!("{event:?}") };
        assert_eq!(to, &format!("p{i}"), "roles go out in presence order");
        assert_eq!(roles, &None);
        let expected: Vec<Id> =
            if *role == Role::Mafia { mafia.iter().filter(|m| *m != to).cloned().collect() } else { vec![] };
        assert_eq!(teammates, &expected);
        assert_eq!(t.game.role_of(to).as_ref(), Some(event), "role_of redraws the same message");
        assert_eq!(t.game.standing(to), Standing { ready: false, playing: true, alive: true });
    }
    assert_eq!(t.game.host().as_deref(), Some("p0"));
}

#[test]
fn the_deal_is_deterministic_per_seed() {
    let deal = |seed| {
        let mut t = Table::room(seed, 8);
        t.ok("p0", Command::StartGame(Settings::default()));
        t.dealt.clone()
    };
    assert_eq!(deal(42), deal(42));
    let distinct: std::collections::BTreeSet<_> = (0..20).map(deal).collect();
    assert!(distinct.len() > 5, "seeds should deal differently");
}

// ----- whole games -----

#[test]
fn town_wins_by_executing_the_mafioso() {
    let mut t = Table::started(5, 4, Settings::default());
    assert_eq!(t.skip(), Phase::Night);
    assert_eq!(t.round(), 1);
    t.take();
    let m = t.with(Role::Mafia)[0].clone();
    let c = t.with(Role::Citizen);
    assert_eq!(c.len(), 3);
    // The only night role acts: the night ends at once.
    act(&mut t, &m, &c[0]);
    let events = t.take();
    assert_eq!(
        events[..2],
        [Event::Eliminated { id: c[0].clone(), cause: Cause::Killed }, Event::ParticipantChanged { id: c[0].clone() }]
    );
    assert_eq!(phases(&events), vec![Phase::Dawn]);
    assert_eq!(t.game.standing(&c[0]), Standing { ready: false, playing: true, alive: false });
    assert_eq!(t.round(), 1);
    assert_eq!(t.skip(), Phase::Day);
    t.take();
    t.ok(&c[1], Command::CallVote);
    let votes: BTreeMap<Id, Ballot> = [(c[1].clone(), Ballot::Call(true))].into();
    assert_eq!(t.take(), vec![Event::VoteUpdate { kind: VoteKind::CallVote, votes, needed: Some(2) }]);
    t.ok(&m, Command::CallVote);
    assert_eq!(phases(&t.take()), vec![Phase::Nomination]);
    t.ok(&c[1], Command::Nominate(Some(m.clone())));
    t.ok(&m, Command::Nominate(Some(c[1].clone())));
    t.ok(&c[2], Command::Nominate(Some(m.clone())));
    let events = t.take();
    let Some(Event::VoteUpdate { kind: VoteKind::Nomination, votes, needed: None }) = events.get(2) else {
        panic!("{events:?}")
    };
    assert_eq!(votes.get(&c[2]), Some(&Ballot::Target(Some(m.clone()))));
    assert_eq!(phases(&events), vec![Phase::Defense]);
    assert_eq!(t.game.phase().accused, Some(m.clone()));
    assert_eq!(t.skip(), Phase::Judgment);
    assert_eq!(t.game.phase().accused, Some(m.clone()));
    t.take();
    t.ok(&c[1], Command::Judge(Verdict::Guilty));
    t.ok(&c[2], Command::Judge(Verdict::Guilty));
    let events = t.take();
    let tail = &events[2..];
    assert_eq!(tail[0], Event::Eliminated { id: m.clone(), cause: Cause::Executed });
    assert_eq!(tail[1], Event::ParticipantChanged { id: m.clone() });
    assert_eq!(tail[2], Event::GameOver { winner: Winner::Town, roles: role_map(&t.dealt) });
    let now = t.now;
    let Event::Phase(info) = &tail[3] else { panic!("{tail:?}") };
    assert_eq!((info.phase, info.ends_at, info.round), (Phase::GameOver, Some(now + 30_000), 1));
    assert_eq!(info.alive, vec![c[1].clone(), c[2].clone()]);
    // Standings hold through game over; roles are still one's own.
    assert_eq!(t.game.standing(&m), Standing { ready: false, playing: true, alive: false });
    assert!(matches!(t.game.role_of(&m), Some(Event::Role { role: Role::Mafia, .. })));
}

#[test]
fn mafia_wins_at_parity() {
    let mut t = Table::started(6, 4, Settings::default());
    t.skip_to(Phase::Night);
    let m = t.with(Role::Mafia)[0].clone();
    let c = t.with(Role::Citizen);
    kill(&mut t, &c[0]);
    t.skip_to(Phase::Nomination);
    // Nobody votes: no trial.
    assert_eq!(t.skip(), Phase::Night);
    assert_eq!(t.round(), 2);
    t.take();
    act(&mut t, &m, &c[1]);
    let events = t.take();
    assert_eq!(eliminated(&events), vec![(c[1].clone(), Cause::Killed)]);
    assert!(events.contains(&Event::GameOver { winner: Winner::Mafia, roles: role_map(&t.dealt) }));
    assert_eq!(phases(&events), vec![Phase::GameOver], "no dawn after the last kill");
}

#[test]
fn game_over_returns_to_the_lobby_on_its_timer() {
    let mut t = Table::started(6, 4, Settings::default());
    t.skip_to(Phase::Night);
    let c = t.with(Role::Citizen);
    kill(&mut t, &c[0]);
    t.skip_to(Phase::Night);
    kill(&mut t, &c[1]);
    assert_eq!(t.phase(), Phase::GameOver);
    t.ok("p1", Command::Ready(true));
    t.take();
    assert_eq!(t.skip(), Phase::Lobby);
    let events = t.take();
    // Everyone's playing flag drops and the dead live again: one change each.
    let changed: Vec<Event> = ids(4).into_iter().map(|id| Event::ParticipantChanged { id }).collect();
    assert_eq!(events[..4], changed[..]);
    assert_eq!(
        events[4],
        Event::Phase(PhaseInfo { phase: Phase::Lobby, round: 0, ends_at: None, alive: ids(4), accused: None })
    );
    assert_eq!(events.len(), 5);
    assert_eq!(t.game.next_deadline(), None);
    assert_eq!(t.game.standing("p1"), Standing { ready: true, playing: false, alive: true });
    assert_eq!(t.game.role_of("p1"), None);
    // And a new game starts from the lobby.
    t.ok("p0", Command::StartGame(Settings::default()));
    assert_eq!(t.phase(), Phase::RoleReveal);
}

#[test]
fn a_second_game_starts_from_game_over() {
    let mut t = Table::started(6, 4, Settings::default());
    t.skip_to(Phase::Night);
    let c = t.with(Role::Citizen);
    kill(&mut t, &c[0]);
    // A spectator arrives mid-game and plays the next one.
    t.ok("late", Command::Joined);
    t.skip_to(Phase::Night);
    kill(&mut t, &c[1]);
    assert_eq!(t.phase(), Phase::GameOver);
    assert_eq!(t.game.standing("late"), Standing { ready: false, playing: false, alive: false });
    assert!(matches!(t.err("p1", Command::StartGame(Settings::default())), GameError::NotHost(_)));
    t.take();
    t.ok("p0", Command::StartGame(Settings::default()));
    let events = t.take();
    assert_eq!(phases(&events), vec![Phase::RoleReveal]);
    assert_eq!(t.round(), 0);
    assert_eq!(t.dealt.len(), 5);
    assert_eq!(t.with(Role::Doctor).len(), 1, "5 players deal a doctor");
    assert_eq!(t.living(), vec!["p0", "p1", "p2", "p3", "late"]);
    for id in t.living() {
        assert_eq!(t.game.standing(&id), Standing { ready: false, playing: true, alive: true }, "{id}");
    }
    // The dead of the last game and the spectator changed; everyone changed `alive` or
    // `playing`... except those who were alive and playing already.
    let changed: Vec<&Event> = events.iter().filter(|e| matches!(e, Event::ParticipantChanged { .. })).collect();
    assert_eq!(changed.len(), 3, "{changed:?}");
}

#[test]
fn tied_nomination_means_no_trial() {
    let mut t = Table::started(7, 5, Settings::default());
    t.skip_to(Phase::Nomination);
    assert_eq!(t.living().len(), 5, "nobody acted: nobody died");
    let l = t.living();
    t.take();
    t.ok(&l[0], Command::Nominate(Some(l[1].clone())));
    t.ok(&l[1], Command::Nominate(Some(l[0].clone())));
    t.ok(&l[2], Command::Nominate(Some(l[0].clone())));
    t.ok(&l[3], Command::Nominate(Some(l[1].clone())));
    t.ok(&l[4], Command::Nominate(None));
    let events = t.take();
    assert_eq!(phases(&events), vec![Phase::Night], "2 : 2 : 1 is no trial, decided when all voted");
    assert_eq!(t.round(), 2);
    let Some(Event::VoteUpdate { votes, .. }) = events.iter().rev().find(|e| matches!(e, Event::VoteUpdate { .. }))
    else {
        panic!()
    };
    assert_eq!(votes.len(), 5);
    assert_eq!(votes.get(&l[4]), Some(&Ballot::Target(None)));
}

#[test]
fn a_majority_abstaining_means_no_trial_and_a_plurality_accuses() {
    let mut t = Table::started(8, 5, Settings::default());
    t.skip_to(Phase::Nomination);
    let l = t.living();
    t.ok(&l[0], Command::Nominate(Some(l[1].clone())));
    t.ok(&l[2], Command::Nominate(Some(l[1].clone())));
    t.ok(&l[3], Command::Nominate(None));
    // Two missing votes join the abstention: 2 against 3.
    assert_eq!(t.skip(), Phase::Night);

    t.skip_to(Phase::Nomination);
    let l = t.living();
    for voter in &l[..3] {
        let target = if voter == &l[4] { &l[3] } else { &l[4] };
        t.ok(voter, Command::Nominate(Some(target.clone())));
    }
    // 3 for l[4] against 2 missing.
    assert_eq!(t.skip(), Phase::Defense);
    assert_eq!(t.game.phase().accused, Some(l[4].clone()));
}

#[test]
fn acquittal_spares_the_accused() {
    let mut t = Table::started(9, 6, Settings::default());
    t.skip_to(Phase::Nomination);
    let x = t.living_town()[0].clone();
    accuse(&mut t, &x);
    assert_eq!(t.skip(), Phase::Judgment);
    let jurors: Vec<Id> = t.living().into_iter().filter(|id| *id != x).collect();
    assert!(not_allowed(t.err(&x, Command::Judge(Verdict::Innocent))), "the accused does not vote");
    t.take();
    t.ok(&jurors[0], Command::Judge(Verdict::Guilty));
    assert!(not_allowed(t.err(&jurors[0], Command::Judge(Verdict::Innocent))), "a verdict is final");
    t.ok(&jurors[1], Command::Judge(Verdict::Guilty));
    t.ok(&jurors[2], Command::Judge(Verdict::Innocent));
    t.ok(&jurors[3], Command::Judge(Verdict::Innocent));
    let events = t.take();
    let Some(Event::VoteUpdate { kind: VoteKind::Judgment, votes, needed: None }) = events.last() else { panic!() };
    assert_eq!(votes.get(&jurors[2]), Some(&Ballot::Verdict(Verdict::Innocent)));
    assert_eq!(votes.len(), 4);
    // The fifth juror stays silent: 2 : 2 on the timer spares the accused.
    assert_eq!(t.skip(), Phase::Night);
    assert!(eliminated(&t.take()).is_empty());
    assert!(t.living().contains(&x));
}

#[test]
fn doctor_saves_and_never_twice_running() {
    let mut t = Table::started(10, 5, Settings::default());
    t.skip_to(Phase::Night);
    t.take();
    let m = t.with(Role::Mafia)[0].clone();
    let doc = t.with(Role::Doctor)[0].clone();
    let c = t.with(Role::Citizen);
    act(&mut t, &m, &c[0]);
    act(&mut t, &doc, &c[0]);
    // Both night roles acted: the night ends, nobody dies, and nothing tells of the save.
    let events = t.take();
    assert_eq!(phases(&events), vec![Phase::Dawn]);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(t.living().len(), 5);

    t.skip_to(Phase::Night);
    assert!(not_allowed(t.err(&doc, Command::NightAction(c[0].clone()))));
    act(&mut t, &doc, &doc); // oneself is fine
    act(&mut t, &m, &c[1]);
    assert_eq!(eliminated(&t.take()), vec![(c[1].clone(), Cause::Killed)]);

    // Two nights later the first patient may be saved again; the doctor's own action never kills.
    t.skip_to(Phase::Night);
    t.take();
    act(&mut t, &doc, &c[0]);
    assert_eq!(t.skip(), Phase::Dawn);
    assert!(eliminated(&t.take()).is_empty());
}

#[test]
fn a_doctor_saving_themself_survives_the_mafia_but_not_twice_running() {
    let mut t = Table::started(10, 5, Settings::default());
    t.skip_to(Phase::Night);
    t.take();
    let m = t.with(Role::Mafia)[0].clone();
    let doc = t.with(Role::Doctor)[0].clone();
    act(&mut t, &doc, &doc);
    act(&mut t, &m, &doc);
    let events = t.take();
    assert_eq!(phases(&events), vec![Phase::Dawn]);
    assert!(eliminated(&events).is_empty(), "the self-save stops the kill: {events:?}");
    assert!(t.living().contains(&doc));

    t.skip_to(Phase::Night);
    t.take();
    assert!(not_allowed(t.err(&doc, Command::NightAction(doc.clone()))), "not oneself two nights running");
    let c = t.with(Role::Citizen);
    act(&mut t, &doc, &c[0]);
    act(&mut t, &m, &doc);
    assert_eq!(eliminated(&t.take()), vec![(doc.clone(), Cause::Killed)]);
}

#[test]
fn a_player_who_left_cannot_be_targeted() {
    let mut t = Table::started(10, 5, Settings::default());
    t.skip_to(Phase::Night);
    t.take();
    let m = t.with(Role::Mafia)[0].clone();
    let c = t.with(Role::Citizen);
    t.ok(&c[0], Command::Left);
    t.take();
    // A dealt player who left is refused like the dead; an id never dealt is a bad field.
    assert!(not_allowed(t.err(&m, Command::NightAction(c[0].clone()))));
    assert!(matches!(t.err(&m, Command::NightAction("nobody".into())), GameError::BadField(_)));
    act(&mut t, &m, &c[1]);
    t.skip_to(Phase::Nomination);
    t.take();
    let voter = t.living().into_iter().find(|id| *id != m).unwrap();
    assert!(not_allowed(t.err(&voter, Command::Nominate(Some(c[0].clone())))));
}

#[test]
fn the_detective_alone_learns_the_answer() {
    let mut t = Table::started(11, 6, Settings::default());
    t.skip_to(Phase::Night);
    t.take();
    let det = t.with(Role::Detective)[0].clone();
    let mafia = t.with(Role::Mafia);
    let doc = t.with(Role::Doctor)[0].clone();
    assert!(not_allowed(t.err(&det, Command::NightAction(det.clone()))), "not oneself");
    act(&mut t, &det, &mafia[0]);
    assert_eq!(t.take(), vec![Event::Investigation { to: det.clone(), target: mafia[0].clone(), is_mafia: true }]);
    assert!(not_allowed(t.err(&det, Command::NightAction(doc.clone()))), "one action a night");
    assert!(t.take().is_empty());
    assert_eq!(t.skip(), Phase::Dawn);
    t.skip_to(Phase::Night);
    t.take();
    act(&mut t, &det, &doc);
    assert_eq!(t.take(), vec![Event::Investigation { to: det.clone(), target: doc, is_mafia: false }]);
    // Nobody else ever hears of it.
    let leaks = t.log.iter().filter(|e| matches!(e, Event::Investigation { to, .. } if *to != det)).count();
    assert_eq!(leaks, 0);
}

#[test]
fn leaving_mid_night_eliminates_and_can_end_the_night() {
    let mut t = Table::started(12, 6, Settings::default());
    t.skip_to(Phase::Night);
    t.take();
    let mafia = t.with(Role::Mafia);
    let doc = t.with(Role::Doctor)[0].clone();
    let det = t.with(Role::Detective)[0].clone();
    let c = t.with(Role::Citizen);
    // A citizen leaves: eliminated, no participant update (the room says they left).
    t.ok(&c[1], Command::Left);
    assert_eq!(t.take(), vec![Event::Eliminated { id: c[1].clone(), cause: Cause::Left }]);
    assert_eq!(t.game.standing(&c[1]), Standing { ready: false, playing: false, alive: false });
    assert!(!t.living().contains(&c[1]));
    act(&mut t, &mafia[0], &c[0]);
    act(&mut t, &doc, &doc);
    act(&mut t, &det, &c[0]);
    t.take();
    assert_eq!(t.phase(), Phase::Night, "the second mafioso has not acted");
    // The last night role to act leaves: the night ends now; the remaining mafioso is a majority.
    t.ok(&mafia[1], Command::Left);
    let events = t.take();
    assert_eq!(
        events,
        vec![
            Event::Eliminated { id: mafia[1].clone(), cause: Cause::Left },
            Event::Eliminated { id: c[0].clone(), cause: Cause::Killed },
            Event::ParticipantChanged { id: c[0].clone() },
            Event::Phase(t.game.phase()),
        ]
    );
    assert_eq!(t.phase(), Phase::Dawn);
    assert_eq!(t.living(), {
        let mut l = vec![mafia[0].clone(), doc.clone(), det.clone()];
        l.sort_by_key(|id| id[1..].parse::<u32>().unwrap());
        l
    });
}

#[test]
fn a_lone_mafioso_leaving_hands_the_town_the_win() {
    let mut t = Table::started(13, 4, Settings::default());
    t.skip_to(Phase::Night);
    t.take();
    let m = t.with(Role::Mafia)[0].clone();
    t.ok(&m, Command::Left);
    let events = t.take();
    assert_eq!(events[0], Event::Eliminated { id: m.clone(), cause: Cause::Left });
    assert!(matches!(&events[1], Event::GameOver { winner: Winner::Town, roles } if roles.len() == 4));
    assert_eq!(phases(&events), vec![Phase::GameOver]);
}

#[test]
fn the_accused_leaving_brings_the_night() {
    for phase in [Phase::Defense, Phase::Judgment] {
        let mut t = Table::started(14, 6, Settings::default());
        t.skip_to(Phase::Nomination);
        let x = t.living_town()[0].clone();
        accuse(&mut t, &x);
        if phase == Phase::Judgment {
            t.skip();
            let juror = t.living().into_iter().find(|id| *id != x).unwrap();
            t.ok(&juror, Command::Judge(Verdict::Guilty));
        }
        t.take();
        t.ok(&x, Command::Left);
        let events = t.take();
        assert_eq!(events[0], Event::Eliminated { id: x.clone(), cause: Cause::Left });
        assert_eq!(phases(&events), vec![Phase::Night], "{phase:?}");
        assert_eq!((t.round(), t.game.phase().accused), (2, None));
    }
}

#[test]
fn leaving_can_complete_a_vote() {
    // Day: the departure lowers the majority.
    let mut t = Table::started(15, 6, Settings::default());
    t.skip_to(Phase::Day);
    let l = t.living();
    for id in &l[..3] {
        t.ok(id, Command::CallVote); // 3 of 6: not yet a majority (4)
    }
    assert_eq!(t.phase(), Phase::Day);
    t.take();
    let leaver = l[5].clone();
    t.ok(&leaver, Command::Left);
    let events = t.take();
    let Some(Event::VoteUpdate { kind: VoteKind::CallVote, votes, needed: Some(3) }) = events.get(1) else {
        panic!("{events:?}")
    };
    assert_eq!(votes.len(), 3);
    assert_eq!(phases(&events), vec![Phase::Nomination]);

    // Nomination: everyone but the leaver voted; their leaving completes it.
    let mut t = Table::started(15, 6, Settings::default());
    t.skip_to(Phase::Nomination);
    let l = t.living();
    let (leaver, x) = (l[0].clone(), l[1].clone());
    for voter in &l[1..] {
        let target = if *voter == x { None } else { Some(x.clone()) };
        t.ok(voter, Command::Nominate(target));
    }
    t.take();
    t.ok(&leaver, Command::Left);
    // 6 players deal 2 mafia: one departure cannot end the game.
    let events = t.take();
    assert_eq!(phases(&events), vec![Phase::Defense]);
    assert_eq!(t.game.phase().accused, Some(x));

    // Judgment: the last juror leaves.
    let mut t = Table::started(16, 6, Settings::default());
    t.skip_to(Phase::Nomination);
    let x = t.living_town()[0].clone();
    accuse(&mut t, &x);
    t.skip();
    let jurors: Vec<Id> = t.living().into_iter().filter(|id| *id != x).collect();
    for j in &jurors[1..] {
        t.ok(j, Command::Judge(Verdict::Innocent));
    }
    t.take();
    t.ok(&jurors[0], Command::Left);
    let events = t.take();
    assert_eq!(phases(&events), vec![Phase::Night]);
    assert!(t.living().contains(&x), "acquitted");
}

#[test]
fn early_advance_in_every_phase_that_has_it() {
    let mut t = Table::started(17, 6, Settings::default());
    t.skip_to(Phase::Night);
    let deadline = t.game.next_deadline().unwrap();
    let mafia = t.with(Role::Mafia);
    let doc = t.with(Role::Doctor)[0].clone();
    let det = t.with(Role::Detective)[0].clone();
    let c = t.with(Role::Citizen);
    t.wait(1);
    act(&mut t, &mafia[0], &c[0]);
    act(&mut t, &mafia[1], &c[1]); // split picks: no majority, no kill
    act(&mut t, &det, &mafia[0]);
    assert_eq!(t.phase(), Phase::Night);
    act(&mut t, &doc, &c[0]);
    assert_eq!(t.phase(), Phase::Dawn, "night: all acted");
    assert!(t.now < deadline);
    assert_eq!(t.living().len(), 6);

    t.skip_to(Phase::Day);
    let deadline = t.game.next_deadline().unwrap();
    t.wait(1);
    let l = t.living();
    for (i, id) in l.iter().enumerate().take(4) {
        assert_eq!(t.phase(), Phase::Day, "{i} calls of 6");
        t.ok(id, Command::CallVote);
    }
    assert_eq!(t.phase(), Phase::Nomination, "day: majority called");
    assert!(t.now < deadline);

    let deadline = t.game.next_deadline().unwrap();
    t.wait(1);
    let x = c[0].clone();
    accuse(&mut t, &x);
    assert!(t.now < deadline, "nomination: all voted");

    t.skip();
    assert_eq!(t.phase(), Phase::Judgment);
    let deadline = t.game.next_deadline().unwrap();
    t.wait(1);
    for j in t.living().into_iter().filter(|id| *id != x) {
        t.ok(&j, Command::Judge(Verdict::Guilty));
    }
    assert_eq!(t.phase(), Phase::Night, "judgment: all voted");
    assert!(t.now < deadline);
    assert!(!t.living().contains(&x), "executed");
    assert_eq!(t.round(), 2);
}

#[test]
fn phases_carry_rounds_and_deadlines() {
    let mut t = Table::room(18, 5);
    let start = t.now;
    t.ok("p0", Command::StartGame(Settings::default()));
    let mut expect = vec![(Phase::RoleReveal, 0, start + 10_000)];
    let mut at = start + 10_000;
    for (phase, round, len) in [
        (Phase::Night, 1, 45_000),
        (Phase::Dawn, 1, 6_000),
        (Phase::Day, 1, 120_000),
        (Phase::Nomination, 1, 45_000),
        (Phase::Night, 2, 45_000),
        (Phase::Dawn, 2, 6_000),
    ] {
        expect.push((phase, round, at + len));
        assert_eq!(t.skip(), phase);
        at += len;
    }
    let got: Vec<(Phase, u32, u64)> = t
        .log
        .iter()
        .filter_map(|e| match e {
            Event::Phase(i) => Some((i.phase, i.round, i.ends_at.unwrap())),
            _ => None,
        })
        .collect();
    assert_eq!(got, expect);
}

#[test]
fn a_late_vote_meets_the_next_phase() {
    let mut t = Table::started(19, 5, Settings::default());
    t.skip_to(Phase::Nomination);
    let deadline = t.game.next_deadline().unwrap();
    t.take();
    t.now = deadline + 5;
    // The room's timer has not fired yet, but the nomination is over.
    let l = t.living();
    assert!(matches!(t.err(&l[0], Command::Nominate(None)), GameError::WrongPhase(_)));
    assert_eq!(phases(&t.take()), vec![Phase::Night]);
    assert_eq!(t.game.next_deadline(), Some(deadline + 5 + 45_000));
}

// ----- host, moderator, spectators -----

#[test]
fn host_leaving_passes_the_powers() {
    let mut t = Table::started(20, 6, Settings::default());
    t.skip_to(Phase::Day);
    t.take();
    t.ok("p0", Command::Left);
    let events = t.take();
    assert_eq!(events[0], Event::HostChanged { host: "p1".into() });
    assert_eq!(events[1], Event::Eliminated { id: "p0".into(), cause: Cause::Left });
    assert_eq!(t.game.host().as_deref(), Some("p1"));
    assert!(matches!(t.game.role_of("p1"), Some(Event::Role { to, roles: None, .. }) if to == "p1"));
    assert!(matches!(t.err("p2", Command::Kick("p3".into())), GameError::NotHost(_)));
    assert!(matches!(t.err("p1", Command::Kick("p1".into())), GameError::NotAllowed(_)));
    assert!(matches!(t.err("p1", Command::Kick("p0".into())), GameError::BadField(_)));
    t.ok("p1", Command::Kick("p3".into()));
    assert_eq!(t.take(), vec![Event::Kicked { id: "p3".into() }]);
    assert!(t.living().contains(&"p3".to_string()), "the room, not the game, removes the kicked");
    // Whoever is longest present now holds the powers through the next departures.
    t.ok("p1", Command::Left);
    assert!(t.take().contains(&Event::HostChanged { host: "p2".into() }));
}

#[test]
fn the_moderators_view_never_passes() {
    let mut t = Table::room(21, 7);
    t.ok("p0", Command::StartGame(Settings { host_plays: Some(false), ..Settings::default() }));
    assert!(t.moderator.as_deref() == Some("p0"));
    t.skip_to(Phase::Night);
    t.take();
    t.ok("p0", Command::Left);
    assert_eq!(t.take(), vec![Event::HostChanged { host: "p1".into() }], "a moderator leaving kills no one");
    let own = t.game.role_of("p1").unwrap();
    let Event::Role { role, roles, .. } = &own else { panic!() };
    assert_eq!((*role, roles), (t.role("p1"), &None));
    // Nobody receives everyone now.
    for id in t.living() {
        if t.role(&id) != Role::Mafia {
            assert!(t.game.routes().iter().all(|r| r.subscriber != id), "{id} is in the dark");
        }
    }
    // The returning moderator is a mere spectator.
    t.ok("p0", Command::Joined);
    assert_eq!(t.game.role_of("p0"), None);
    assert!(t.game.routes().iter().all(|r| r.subscriber != "p0" && r.publisher != "p0"));
}

#[test]
fn a_moderated_game() {
    let mut t = Table::room(22, 5);
    t.ok("p0", Command::StartGame(Settings { host_plays: Some(false), ..Settings::default() }));
    let events = t.take();
    let players = strings(&["p1", "p2", "p3", "p4"]);
    assert_eq!(t.dealt.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>(), players);
    let roles = role_map(&t.dealt);
    let moderator_role =
        Event::Role { to: "p0".into(), role: Role::Moderator, teammates: vec![], roles: Some(roles.clone()) };
    assert_eq!(events.last(), Some(&moderator_role));
    assert_eq!(t.game.role_of("p0"), Some(moderator_role));
    assert_eq!(t.game.standing("p0"), Standing { ready: false, playing: false, alive: false });
    assert_eq!(t.game.phase().alive, players);

    t.skip_to(Phase::Night);
    // The moderator receives every player and everyone receives the moderator.
    for p in &players {
        for kind in [MediaKind::Audio, MediaKind::Video] {
            assert!(t.receives("p0", p, kind));
            assert!(t.receives(p, "p0", kind));
        }
    }
    let c = t.with(Role::Citizen)[0].clone();
    assert_eq!(t.game.routes().iter().filter(|r| r.subscriber == c).count(), 2, "a citizen gets only the moderator");

    // Chat: the moderator writes `all` at night and reads every channel.
    t.take();
    t.ok("p0", chat(Channel::All));
    assert_eq!(chat_readers(&t.take()), ids(5));
    assert!(not_allowed(t.err(&c, chat(Channel::All))), "the living are silent at night");
    assert!(not_allowed(t.err("p0", chat(Channel::Mafia))));
    let m = t.with(Role::Mafia)[0].clone();
    t.ok(&m, chat(Channel::Mafia));
    assert_eq!(chat_readers(&t.take()), strings(&["p0", &m]));
    assert!(not_allowed(t.err("p0", Command::NightAction(c.clone()))));

    // The moderator never votes.
    kill(&mut t, &c);
    t.skip_to(Phase::Day);
    assert!(not_allowed(t.err("p0", Command::CallVote)));
    t.take();
    t.ok(&c, chat(Channel::Dead));
    assert_eq!(chat_readers(&t.take()), strings(&["p0", &c]));
    t.skip_to(Phase::Nomination);
    assert!(not_allowed(t.err("p0", Command::Nominate(None))));
}

#[test]
fn spectators_watch_and_are_not_seen() {
    let mut t = Table::started(23, 4, Settings::default());
    t.skip_to(Phase::Night);
    t.take();
    t.ok("late", Command::Joined);
    assert!(t.take().is_empty());
    assert_eq!(t.game.standing("late"), Standing { ready: false, playing: false, alive: false });
    assert_eq!(t.game.role_of("late"), None);
    let routes = t.game.routes();
    assert!(routes.iter().all(|r| r.subscriber != "late" && r.publisher != "late"), "dark at night");
    assert!(matches!(t.err("late", Command::NightAction("p1".into())), GameError::NotAllowed(_)));

    t.skip_to(Phase::Day);
    // The spectator receives exactly what a living citizen receives (others than themselves).
    let c = t.living_with(Role::Citizen)[0].clone();
    for p in t.living() {
        for kind in [MediaKind::Audio, MediaKind::Video] {
            assert_eq!(t.receives("late", &p, kind), p == c || t.receives(&c, &p, kind), "{p} {kind:?}");
        }
    }
    assert!(t.audience("late", MediaKind::Audio).is_empty(), "nobody receives a spectator");
    assert!(not_allowed(t.err("late", Command::CallVote)));
    assert!(not_allowed(t.err("late", chat(Channel::All))));
    t.take();
    t.ok(&c, chat(Channel::All));
    assert!(chat_readers(&t.take()).contains(&"late".to_string()));
    let m = t.with(Role::Mafia)[0].clone();
    t.ok(&m, chat(Channel::Mafia));
    assert!(!chat_readers(&t.take()).contains(&"late".to_string()));

    t.skip_to(Phase::Nomination);
    assert!(not_allowed(t.err("late", Command::Nominate(None))), "a spectator does not vote");
    assert!(matches!(t.err("late", Command::Nominate(Some("ghost".into()))), GameError::NotAllowed(_)));
    let x = t.living_town()[0].clone();
    accuse(&mut t, &x);
    assert_eq!(t.skip(), Phase::Judgment);
    assert!(not_allowed(t.err("late", Command::Judge(Verdict::Guilty))), "nor judges");
}

// ----- refusals -----

#[test]
fn out_of_phase_and_out_of_role_actions_are_refused() {
    let mut t = Table::started(24, 6, Settings::default());
    let wrong = |e: GameError| matches!(e, GameError::WrongPhase(_));
    assert!(wrong(t.err("p1", Command::Ready(true))));
    assert!(wrong(t.err("p0", Command::StartGame(Settings::default()))));
    assert!(matches!(t.err("p1", Command::StartGame(Settings::default())), GameError::NotHost(_)));
    assert!(wrong(t.err("p1", Command::NightAction("p2".into()))), "role reveal is not night");

    t.skip_to(Phase::Night);
    let mafia = t.with(Role::Mafia);
    let doc = t.with(Role::Doctor)[0].clone();
    let c = t.with(Role::Citizen);
    assert!(wrong(t.err(&c[0], Command::CallVote)));
    assert!(not_allowed(t.err(&c[0], Command::NightAction(mafia[0].clone()))), "citizens have no night action");
    assert!(not_allowed(t.err(&mafia[0], Command::NightAction(mafia[1].clone()))), "no killing one's own");
    assert!(matches!(t.err(&mafia[0], Command::NightAction("ghost".into())), GameError::BadField(_)));
    act(&mut t, &mafia[0], &c[0]);
    assert!(not_allowed(t.err(&mafia[0], Command::NightAction(c[1].clone()))), "a second night action");
    act(&mut t, &mafia[1], &c[0]);
    t.skip();
    assert!(!t.living().contains(&c[0]));
    let dead = c[0].clone();

    t.skip_to(Phase::Day);
    assert!(wrong(t.err(&doc, Command::NightAction(doc.clone()))));
    assert!(wrong(t.err(&doc, Command::Nominate(None))));
    assert!(not_allowed(t.err(&dead, Command::CallVote)), "the dead do not call");
    t.skip_to(Phase::Nomination);
    assert!(wrong(t.err(&doc, Command::CallVote)));
    assert!(wrong(t.err(&doc, Command::Judge(Verdict::Guilty))));
    assert!(not_allowed(t.err(&dead, Command::Nominate(None))), "voting while dead");
    assert!(not_allowed(t.err(&doc, Command::Nominate(Some(dead.clone())))), "voting for the dead");
    assert!(not_allowed(t.err(&doc, Command::Nominate(Some(doc.clone())))), "nominating oneself");
    assert!(matches!(t.err(&doc, Command::Nominate(Some("ghost".into()))), GameError::BadField(_)));
    t.ok(&doc, Command::Nominate(None));
    assert!(not_allowed(t.err(&doc, Command::Nominate(Some(c[1].clone())))), "a nomination is final");
    assert!(not_allowed(t.err(&dead, chat(Channel::All))));
    assert!(not_allowed(t.err(&doc, chat(Channel::Dead))));
    assert!(not_allowed(t.err(&doc, chat(Channel::Mafia))));
    t.skip_to(Phase::Night);
    assert!(not_allowed(t.err(&dead, Command::NightAction(c[1].clone()))), "the dead do not act");
    assert!(not_allowed(t.err(&mafia[0], Command::NightAction(dead.clone()))), "the dead are no target");
    let not_host = t.living().into_iter().find(|id| id != "p0").unwrap();
    assert!(matches!(t.err(&not_host, Command::Kick(doc.clone())), GameError::NotHost(_)));
    assert!(not_allowed(t.err("stranger", Command::NightAction(doc.clone()))), "not in the room");
}

#[test]
fn chat_channels_during_a_game() {
    // 9 players: 3 mafia, so one can die and the game goes on.
    let mut t = Table::started(25, 9, Settings::default());
    t.skip_to(Phase::Night);
    let mafia = t.with(Role::Mafia);
    let c = t.with(Role::Citizen);
    t.take();
    t.ok(&mafia[0], chat(Channel::Mafia));
    assert_eq!(chat_readers(&t.take()), mafia, "mafia chat at night");
    kill(&mut t, &c[0]);
    t.skip_to(Phase::Nomination);
    accuse(&mut t, &mafia[2]);
    t.skip();
    for j in t.living().into_iter().filter(|id| *id != mafia[2]) {
        t.ok(&j, Command::Judge(Verdict::Guilty));
    }
    assert_eq!(t.phase(), Phase::Night);
    assert!(!t.living().contains(&mafia[2]));
    t.skip_to(Phase::Day);
    t.take();

    let sorted = |mut v: Vec<Id>| {
        v.sort_by_key(|id| id[1..].parse::<u32>().unwrap());
        v
    };
    // all: the living write, everyone reads.
    t.ok(&c[1], chat(Channel::All));
    assert_eq!(chat_readers(&t.take()), ids(9));
    // mafia: the living mafia write; all mafia (the dead one too) and the dead read.
    t.ok(&mafia[1], chat(Channel::Mafia));
    assert_eq!(
        chat_readers(&t.take()),
        sorted(vec![mafia[0].clone(), mafia[1].clone(), mafia[2].clone(), c[0].clone()])
    );
    assert!(not_allowed(t.err(&mafia[2], chat(Channel::Mafia))), "a dead mafioso only reads mafia");
    // dead: the dead write and read.
    t.ok(&mafia[2], chat(Channel::Dead));
    assert_eq!(chat_readers(&t.take()), sorted(vec![mafia[2].clone(), c[0].clone()]));
    assert!(not_allowed(t.err(&mafia[0], chat(Channel::Dead))));
    assert!(not_allowed(t.err(&c[0], chat(Channel::All))));
}

#[test]
fn routes_follow_the_game() {
    let mut t = Table::started(26, 6, Settings::default());
    t.skip_to(Phase::Night);
    let mafia = t.with(Role::Mafia);
    let c = t.with(Role::Citizen);
    kill(&mut t, &c[0]);
    t.skip_to(Phase::Night);
    let dead = c[0].clone();
    // Night: the living town receive nothing; the mafia receive each other; the dead receive all.
    for id in t.living_town() {
        assert!(t.game.routes().iter().all(|r| r.subscriber != id), "{id}");
    }
    assert!(t.receives(&mafia[0], &mafia[1], MediaKind::Audio));
    assert!(!t.receives(&mafia[0], &dead, MediaKind::Audio));
    assert_eq!(t.audience(&dead, MediaKind::Video), Vec::<Id>::new());
    for p in t.living() {
        assert!(t.receives(&dead, &p, MediaKind::Audio));
    }
    // Day: the living hear the living, never the dead.
    t.skip_to(Phase::Day);
    for s in t.living() {
        assert!(!t.receives(&s, &dead, MediaKind::Audio));
        for p in t.living().into_iter().filter(|p| *p != s) {
            assert!(t.receives(&s, &p, MediaKind::Audio));
        }
    }
    // Defense: only the accused is heard, everyone is seen.
    t.skip_to(Phase::Nomination);
    let x = t.living_town()[0].clone();
    accuse(&mut t, &x);
    for s in t.living().into_iter().filter(|s| *s != x) {
        assert!(t.receives(&s, &x, MediaKind::Audio));
        for p in t.living().into_iter().filter(|p| *p != s && *p != x) {
            assert!(!t.receives(&s, &p, MediaKind::Audio));
            assert!(t.receives(&s, &p, MediaKind::Video));
        }
    }
}
