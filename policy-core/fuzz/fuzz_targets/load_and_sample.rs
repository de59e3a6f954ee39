//! Any bytes: loading must return a typed error or a policy; a loaded policy must sample,
//! act and score without panicking, and every emitted action must be finite and in the box.
//!
//! Random mutations almost always break the CRC, which would stop every input at the first
//! check; so when the first byte is even the target re-seals the input with a correct CRC
//! (dropping the first byte), letting the fuzzer reach the parser and the math behind it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use policy_core::Policy;
use rand_core::SeedableRng;

fuzz_target!(|input: &[u8]| {
    let resealed;
    let data = match input.split_first() {
        Some((first, rest)) if first % 2 == 0 => {
            let body = rest.get(..rest.len().saturating_sub(4)).unwrap_or(&[]);
            let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(body);
            resealed = [body, &crc.to_le_bytes()].concat();
            &resealed[..]
        }
        _ => input,
    };
    let Ok(policy) = Policy::from_bytes(data) else {
        return;
    };
    // Observations from the tail of the input, so the fuzzer also explores them.
    let obs: Vec<f32> = (0..policy.obs_dim())
        .map(|i| {
            let b = data.get(data.len().saturating_sub(1 + i)).copied().unwrap_or(0);
            (f32::from(b) - 128.0) * 0.5
        })
        .collect();
    let mut rng = rand_pcg::Pcg32::seed_from_u64(data.len() as u64);
    let mut action = vec![0.0f32; policy.action_dim()];
    let header = policy.header().clone();
    let in_box = |a: &[f32]| {
        a.iter()
            .zip(header.action_low.iter().zip(header.action_high.iter()))
            .all(|(&x, (lo, hi))| x.is_finite() && lo <= x && x <= hi)
    };
    if policy.sample(&obs, &mut rng, &mut action).is_ok() {
        assert!(in_box(&action), "sampled {action:?}");
    }
    if policy.mode(&obs, &mut action).is_ok() {
        assert!(in_box(&action), "mode {action:?}");
    }
    let _ = policy.log_prob(&obs, &action);
    let mut weights = vec![0.0f32; policy.components()];
    let _ = policy.mixing_weights(&obs, &mut weights);
});
