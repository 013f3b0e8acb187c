//! Counting: the night's choices and the day's ballots, and what they decide.

use std::collections::{BTreeMap, BTreeSet};

use super::table::Table;
use super::{Ballot, Role, Verdict};
use crate::game::Id;

/// What the night roles chose tonight. Never revealed to anyone.
#[derive(Debug, Clone, Default)]
pub(super) struct Night {
    /// Who has used their action (each acts once, final).
    pub acted: BTreeSet<Id>,
    /// Mafioso → their pick.
    pub kills: BTreeMap<Id, Id>,
    /// Doctor → whom they save.
    pub saves: BTreeMap<Id, Id>,
}

impl Night {
    /// Whether every living night role has acted.
    pub(super) fn all_acted(&self, table: &Table) -> bool {
        table.living().filter(|id| table.role(id) != Some(Role::Citizen)).all(|id| self.acted.contains(id))
    }

    /// The mafia's victim: the living non-mafia picked by more than half of the living mafia,
    /// unless a living doctor saved them. Picks of mafia who died or left since do not count.
    pub(super) fn victim(&self, table: &Table) -> Option<Id> {
        let mafia: Vec<&Id> = table.living_with(Role::Mafia).collect();
        let mut picks: BTreeMap<&Id, usize> = BTreeMap::new();
        for target in mafia.iter().filter_map(|m| self.kills.get(*m)) {
            if table.is_living(target) && table.role(target) != Some(Role::Mafia) {
                *picks.entry(target).or_default() += 1;
            }
        }
        // At most one target can hold a strict majority.
        let (target, _) = picks.into_iter().find(|&(_, n)| n * 2 > mafia.len())?;
        let saved = self.saves.iter().any(|(doctor, saved)| saved == target && table.is_living(doctor));
        (!saved).then(|| target.clone())
    }

    /// Tonight's saves by doctors still alive: tomorrow night's `last_saves`.
    pub(super) fn saves_by_living(&self, table: &Table) -> BTreeMap<Id, Id> {
        self.saves.iter().filter(|(doctor, _)| table.is_living(doctor)).map(|(d, t)| (d.clone(), t.clone())).collect()
    }
}

/// The ballots of the current phase (only one kind is in use at a time).
#[derive(Debug, Clone, Default)]
pub(super) struct Ballots {
    /// Day: who asked to vote.
    pub calls: BTreeSet<Id>,
    /// Nomination: voter → target, or `None` to abstain.
    pub nominations: BTreeMap<Id, Option<Id>>,
    /// Judgment: voter → verdict.
    pub verdicts: BTreeMap<Id, Verdict>,
}

impl Ballots {
    /// The call-vote tally as shown to clients.
    pub(super) fn call_votes(&self) -> BTreeMap<Id, Ballot> {
        self.calls.iter().map(|id| (id.clone(), Ballot::Call(true))).collect()
    }

    /// The nomination tally as shown to clients.
    pub(super) fn nomination_votes(&self) -> BTreeMap<Id, Ballot> {
        self.nominations.iter().map(|(id, t)| (id.clone(), Ballot::Target(t.clone()))).collect()
    }

    /// The judgment tally as shown to clients.
    pub(super) fn judgment_votes(&self) -> BTreeMap<Id, Ballot> {
        self.verdicts.iter().map(|(id, v)| (id.clone(), Ballot::Verdict(*v))).collect()
    }

    /// Forget a voter who is gone. Returns whether they had voted.
    pub(super) fn forget(&mut self, id: &str) -> bool {
        let a = self.calls.remove(id);
        let b = self.nominations.remove(id).is_some();
        let c = self.verdicts.remove(id).is_some();
        a || b || c
    }
}

/// Call-vote majority: how many of `living` must call.
pub(super) fn calls_needed(living: usize) -> usize {
    living / 2 + 1
}

/// Whom the nomination puts on trial. Abstentions, missing votes and votes for someone no
/// longer living all count as "no trial"; the top candidate is accused only when they have
/// strictly more votes than every other candidate and than "no trial".
pub(super) fn accused(nominations: &BTreeMap<Id, Option<Id>>, living: &[Id]) -> Option<Id> {
    let mut counts: BTreeMap<&Id, usize> = BTreeMap::new();
    for voter in living {
        if let Some(Some(target)) = nominations.get(voter) {
            if living.contains(target) {
                *counts.entry(target).or_default() += 1;
            }
        }
    }
    let cast: usize = counts.values().sum();
    let no_trial = living.len().saturating_sub(cast);
    let mut ranked: Vec<(&Id, usize)> = counts.into_iter().collect();
    ranked.sort_by_key(|&(_, n)| std::cmp::Reverse(n));
    let (top, votes) = *ranked.first()?;
    let runner_up = ranked.get(1).map_or(0, |r| r.1).max(no_trial);
    (votes > runner_up).then(|| top.clone())
}

/// Whether the judgment convicts: more guilty than innocent votes among `voters`.
pub(super) fn convicts(verdicts: &BTreeMap<Id, Verdict>, voters: &[Id]) -> bool {
    let count = |v: Verdict| voters.iter().filter(|id| verdicts.get(*id) == Some(&v)).count();
    count(Verdict::Guilty) > count(Verdict::Innocent)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(s: &[&str]) -> Vec<Id> {
        s.iter().map(|s| s.to_string()).collect()
    }

    fn noms(v: &[(&str, Option<&str>)]) -> BTreeMap<Id, Option<Id>> {
        v.iter().map(|(a, b)| (a.to_string(), b.map(str::to_string))).collect()
    }

    #[test]
    fn nomination_needs_a_strict_plurality_over_no_trial() {
        let living = ids(&["a", "b", "c", "d", "e"]);
        // 3 for b, 2 missing: accused.
        assert_eq!(accused(&noms(&[("a", Some("b")), ("c", Some("b")), ("d", Some("b"))]), &living), Some("b".into()));
        // 2 for b, 3 missing: no trial wins.
        assert_eq!(accused(&noms(&[("a", Some("b")), ("c", Some("b"))]), &living), None);
        // Tie between candidates.
        let tie = noms(&[("a", Some("b")), ("c", Some("b")), ("b", Some("a")), ("d", Some("a")), ("e", None)]);
        assert_eq!(accused(&tie, &living), None);
        // 2 for b, 1 for a, 2 abstain: tie with no trial.
        let nt = noms(&[("a", Some("b")), ("c", Some("b")), ("b", Some("a")), ("d", None), ("e", None)]);
        assert_eq!(accused(&nt, &living), None);
        // Votes of and for the dead do not count.
        let gone = ids(&["a", "c", "d"]);
        let v = noms(&[("a", Some("c")), ("b", Some("c")), ("e", Some("c")), ("d", Some("e"))]);
        assert_eq!(accused(&v, &gone), None);
        assert_eq!(accused(&BTreeMap::new(), &[]), None);
    }

    #[test]
    fn guilty_needs_more_guilty_than_innocent() {
        let voters = ids(&["a", "b", "c"]);
        let v = |g: &[&str], i: &[&str]| -> BTreeMap<Id, Verdict> {
            g.iter()
                .map(|x| (x.to_string(), Verdict::Guilty))
                .chain(i.iter().map(|x| (x.to_string(), Verdict::Innocent)))
                .collect()
        };
        assert!(convicts(&v(&["a"], &[]), &voters));
        assert!(!convicts(&v(&["a"], &["b"]), &voters));
        assert!(convicts(&v(&["a", "b"], &["c"]), &voters));
        // A ballot from someone not voting (e.g. gone) is ignored.
        assert!(!convicts(&v(&["z"], &[]), &voters));
        assert!(!convicts(&BTreeMap::new(), &voters));
    }

    #[test]
    fn call_majority() {
        assert_eq!(calls_needed(1), 1);
        assert_eq!(calls_needed(4), 3);
        assert_eq!(calls_needed(5), 3);
        assert_eq!(calls_needed(0), 1);
    }
}
