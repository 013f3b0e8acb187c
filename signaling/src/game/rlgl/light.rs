//! The automatic light: how long each colour lasts, drawn from the game's seeded RNG so a game
//! replays from its log (green 2–5 s, red 2–4 s, to the millisecond).

use rand::rngs::StdRng;
use rand::Rng;

use super::wire::Color;
use crate::game::Millis;

/// Shortest and longest green, ms.
pub const GREEN_MS: (Millis, Millis) = (2_000, 5_000);
/// Shortest and longest red, ms.
pub const RED_MS: (Millis, Millis) = (2_000, 4_000);

/// How long the next `color` lasts.
pub fn draw(rng: &mut StdRng, color: Color) -> Millis {
    let (min, max) = match color {
        Color::Green => GREEN_MS,
        Color::Red => RED_MS,
    };
    rng.random_range(min..=max)
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn lengths_stay_in_range_and_follow_the_seed() {
        let mut a = StdRng::seed_from_u64(9);
        let mut b = StdRng::seed_from_u64(9);
        let mut seen_green = Vec::new();
        for _ in 0..500 {
            let g = draw(&mut a, Color::Green);
            let r = draw(&mut a, Color::Red);
            assert!((GREEN_MS.0..=GREEN_MS.1).contains(&g), "{g}");
            assert!((RED_MS.0..=RED_MS.1).contains(&r), "{r}");
            assert_eq!((g, r), (draw(&mut b, Color::Green), draw(&mut b, Color::Red)), "same seed, same lights");
            seen_green.push(g);
        }
        // Not one fixed length: the light is not predictable from the last one.
        assert!(seen_green.iter().any(|g| *g < 2_500) && seen_green.iter().any(|g| *g > 4_500));
    }
}
