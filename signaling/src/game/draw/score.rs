//! Points. A right guess earns more the earlier it comes, by rank (the server's arrival order)
//! and by the drawing time left; the drawer earns by the share of guessers who got the word.

use crate::game::Millis;

/// What every right guess earns at least.
const BASE: u32 = 50;
/// The most a guess earns for time: all of it at the first instant, none at the end.
const TIME: u64 = 300;
/// The first guesser's bonus for rank; each later rank gets [`RANK_STEP`] less, down to 0.
const RANK: u32 = 200;
const RANK_STEP: u32 = 40;
/// The drawer's points when every guesser got the word.
const DRAWER: u64 = 250;

/// Points for the guess ranked `rank` (1 = first) with `left` of `length` ms of drawing to go.
/// Never rises with rank or with time spent: a later guess never earns more.
pub fn guess_points(rank: u32, left: Millis, length: Millis) -> u32 {
    let time = (TIME * left.min(length)).checked_div(length).unwrap_or(0);
    let rank_bonus = RANK.saturating_sub(RANK_STEP.saturating_mul(rank.saturating_sub(1)));
    // `time` is at most 300.
    BASE + time as u32 + rank_bonus
}

/// The drawer's points when `guessed` of `guessers` got the word.
pub fn drawer_points(guessed: usize, guessers: usize) -> u32 {
    if guessers == 0 {
        return 0;
    }
    // At most DRAWER, so the cast cannot truncate.
    (DRAWER * guessed.min(guessers) as u64 / guessers as u64) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_fall_with_rank_and_time() {
        assert_eq!(guess_points(1, 80_000, 80_000), 550);
        assert_eq!(guess_points(1, 40_000, 80_000), 400);
        assert_eq!(guess_points(2, 40_000, 80_000), 360);
        assert_eq!(guess_points(6, 0, 80_000), 50);
        assert_eq!(guess_points(99, 0, 80_000), 50, "never below the base");
        let mut last = u32::MAX;
        for rank in 1..=12 {
            let p = guess_points(rank, 80_000 - u64::from(rank) * 1000, 80_000);
            assert!(p < last, "rank {rank}: {p} after {last}");
            last = p;
        }
        assert_eq!(drawer_points(0, 5), 0);
        assert_eq!(drawer_points(5, 5), 250);
        assert_eq!(drawer_points(1, 2), 125);
        assert_eq!(drawer_points(3, 0), 0);
    }
}
