//! A seeded fuzz of the UDP demultiplexer's parsing: random datagrams, and STUN messages with
//! random lengths, attributes and usernames, never panic; what decodes names a plain ufrag.

use parlor_media::{local_ufrag, looks_like_stun};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn stun_like(rng: &mut StdRng) -> Vec<u8> {
    let mut b = vec![0u8, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42];
    b.extend((0..12).map(|_| rng.random::<u8>()));
    // Random attributes, often a USERNAME (0x0006) with a random value.
    for _ in 0..rng.random_range(0..6) {
        let ty: u16 = if rng.random_bool(0.4) { 0x0006 } else { rng.random() };
        let len: u16 = rng.random_range(0..64);
        let claimed = if rng.random_bool(0.2) { rng.random::<u16>() } else { len };
        b.extend_from_slice(&ty.to_be_bytes());
        b.extend_from_slice(&claimed.to_be_bytes());
        b.extend((0..len).map(|_| rng.random_range(0x21u8..0x7f)));
        b.extend(std::iter::repeat_n(0, (4 - len as usize % 4) % 4));
    }
    let body = (b.len() - 20) as u16;
    let declared = if rng.random_bool(0.8) { body } else { rng.random() };
    b[2..4].copy_from_slice(&declared.to_be_bytes());
    b
}

#[test]
fn random_datagrams_never_panic() {
    let mut rng = StdRng::seed_from_u64(0xd3);
    let mut stun = 0;
    let mut named = 0;
    for i in 0..50_000 {
        let buf: Vec<u8> = if i % 2 == 0 {
            stun_like(&mut rng)
        } else {
            (0..rng.random_range(0..1500)).map(|_| rng.random()).collect()
        };
        if looks_like_stun(&buf) {
            stun += 1;
        }
        if let Some(ufrag) = local_ufrag(&buf) {
            named += 1;
            assert!(!ufrag.is_empty() && !ufrag.contains(':'), "{ufrag:?}");
            assert!(looks_like_stun(&buf));
        }
    }
    assert!(stun >= 25_000, "the generator makes STUN-shaped datagrams: {stun}");
    assert!(named > 100, "and some decode with a username: {named}");
}
