//! A statistical sanity check of session ids: 100,000 ids of 32 bytes from
//! the OS CSPRNG have no duplicate, a constant length, and every byte value
//! (about equally often).

use std::collections::HashSet;

use session_core::{generate_session_id, is_well_formed_session_id};

const IDS: usize = 100_000;

#[test]
fn one_hundred_thousand_ids_are_distinct_and_cover_every_byte() {
    let mut seen = HashSet::with_capacity(IDS);
    let mut counts = [0u64; 256];
    for _ in 0..IDS {
        let id = generate_session_id(32).unwrap();
        assert_eq!(id.len(), 64, "{id}");
        assert!(is_well_formed_session_id(&id, 32), "{id}");
        for pair in id.as_bytes().chunks(2) {
            let byte = u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap();
            counts[usize::from(byte)] += 1;
        }
        assert!(seen.insert(id), "a duplicate session id");
    }
    let total: u64 = counts.iter().sum();
    assert_eq!(total, (IDS * 32) as u64);
    let expected = total as f64 / 256.0;
    let chi2: f64 = counts
        .iter()
        .map(|&c| (c as f64 - expected).powi(2) / expected)
        .sum();
    let (min, max) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
    println!(
        "{IDS} ids, {total} bytes: no duplicates, every byte value seen {min}..={max} times \
         (expected {expected:.0}); chi-square {chi2:.1} on 255 degrees of freedom"
    );
    assert!(counts.iter().all(|&c| c > 0), "a byte value never appears");
    // Each count is within 10% of the mean (about 11 standard deviations),
    // and chi-square far below what a biased source gives (p < 1e-9 at ~430).
    for (byte, &c) in counts.iter().enumerate() {
        assert!(
            (c as f64 - expected).abs() < expected * 0.1,
            "byte {byte:#04x} seen {c} times, expected about {expected:.0}"
        );
    }
    assert!(chi2 < 430.0, "chi-square {chi2}");
}
