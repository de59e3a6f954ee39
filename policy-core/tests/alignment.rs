//! policy-core reads weights in place, as `f32` when they sit on a 4-byte boundary and from
//! little-endian bytes otherwise. Both paths must give the same numbers to the last bit.

use policy_core::format::{parse, Activation, Header};
use policy_core::testing::random_policy;
use policy_core::Policy;
use rand_core::{RngCore, SeedableRng};

#[test]
fn aligned_and_unaligned_weights_give_bit_identical_results() {
    // Odd widths exercise every tile size and the odd-input remainder of the kernel.
    let header = Header::new(
        5,
        &[37, 23],
        2,
        3,
        Activation::Relu,
        true,
        (-5.0, 2.0),
        &[-1.0, -2.0],
        &[1.0, 2.0],
    )
    .unwrap();
    let file = random_policy(&header, 11, 1.0);

    // The same file at four addresses: exactly one puts its weights on a 4-byte boundary.
    let copies: Vec<Vec<u8>> = (0..4)
        .map(|shift| {
            let mut buf = vec![0u8; shift];
            buf.extend_from_slice(&file);
            buf
        })
        .collect();
    let files: Vec<&[u8]> = copies.iter().enumerate().map(|(s, c)| &c[s..]).collect();
    let aligned = files
        .iter()
        .filter(|f| (parse(f).unwrap().1.as_ptr() as usize).is_multiple_of(4))
        .count();
    assert_eq!(aligned, 1, "both load paths must be exercised");

    let policies: Vec<Policy> = files
        .iter()
        .map(|f| Policy::from_bytes(f).unwrap())
        .collect();
    let mut obs_rng = rand_pcg::Pcg32::seed_from_u64(3);
    for step in 0..200 {
        let obs: Vec<f32> = (0..5)
            .map(|_| obs_rng.next_u32() as f32 / u32::MAX as f32 * 6.0 - 3.0)
            .collect();
        let results: Vec<_> = policies
            .iter()
            .map(|p| {
                let mut rng = rand_pcg::Pcg32::seed_from_u64(step);
                let mut action = [0.0f32; 2];
                let sample = p.sample(&obs, &mut rng, &mut action).unwrap();
                let mut mode = [0.0f32; 2];
                let component = p.mode(&obs, &mut mode).unwrap();
                let log_prob = p.log_prob(&obs, &action).unwrap();
                let mut weights = [0.0f32; 3];
                p.mixing_weights(&obs, &mut weights).unwrap();
                let bits = |xs: &[f32]| xs.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                (
                    sample.component,
                    sample.log_prob.to_bits(),
                    bits(&action),
                    component,
                    bits(&mode),
                    log_prob.to_bits(),
                    bits(&weights),
                )
            })
            .collect();
        assert!(
            results.windows(2).all(|w| w[0] == w[1]),
            "step {step}: {results:?}"
        );
    }
}
