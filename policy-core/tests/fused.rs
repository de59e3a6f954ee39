//! `math::Fused`: the network's multiply-adds rounded once. On a Cortex-M4F or M33 they are
//! `vfma.f32` (checked against this host, bit for bit, by `tests/tests/firmware.rs` under
//! QEMU); elsewhere they are `libm::fmaf`, which must be IEEE's fusedMultiplyAdd exactly.

use policy_core::format::{Activation, Header};
use policy_core::math::{Fused, Libm};
use policy_core::testing::random_policy;
use policy_core::Policy;
use rand_core::{RngCore, SeedableRng};

#[test]
fn fused_mul_add_is_rounded_once() {
    let mut rng = rand_pcg::Pcg32::seed_from_u64(5);
    // Random bit patterns (every exponent, subnormals, infinities, NaNs), then values of
    // one scale, where products and sums interact most.
    let mut value = |i: u32| {
        if i.is_multiple_of(2) {
            f32::from_bits(rng.next_u32())
        } else {
            (rng.next_u32() as f32 / u32::MAX as f32 - 0.5) * 4.0
        }
    };
    for i in 0..1_000_000 {
        let (acc, x, w) = (value(i), value(i), value(i));
        let fused = libm::fmaf(x, w, acc); // what `Fused` does off the FPU
        let exact = x.mul_add(w, acc); // std: correctly rounded
        assert!(
            fused.to_bits() == exact.to_bits() || (fused.is_nan() && exact.is_nan()),
            "{acc:e} + {x:e} · {w:e}: {fused:e}, expected {exact:e}"
        );
    }
    // The unfused default rounds the product first: 1 + 2^-12 squared is 1 + 2^-11 + 2^-24,
    // whose last term a fused multiply-add keeps and a rounded product loses.
    let x = 1.0 + f32::EPSILON * 2048.0;
    assert_eq!(libm::fmaf(x, x, -1.0), 2f32.powi(-11) + 2f32.powi(-24));
    assert_eq!(x * x - 1.0, 2f32.powi(-11));
}

#[test]
fn fused_and_unfused_policies_differ_in_the_last_bits_only() {
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
    let fused = Policy::<Fused<Libm>>::load(&file).unwrap();
    let unfused = Policy::<Libm>::load(&file).unwrap();
    let mut obs_rng = rand_pcg::Pcg32::seed_from_u64(3);
    let mut differ = 0;
    for _ in 0..500 {
        let obs: Vec<f32> = (0..5)
            .map(|_| obs_rng.next_u32() as f32 / u32::MAX as f32 * 6.0 - 3.0)
            .collect();
        let (mut a, mut b) = ([0.0f32; 2], [0.0f32; 2]);
        let k = fused.mode(&obs, &mut a).unwrap();
        assert_eq!(k, unfused.mode(&obs, &mut b).unwrap());
        for (x, y) in a.iter().zip(&b) {
            // policy-core's accuracy against exact arithmetic (tests/tests/policy_file.rs).
            assert!((x - y).abs() <= 1e-5, "{obs:?}: {a:?} vs {b:?}");
        }
        differ += usize::from(a != b);
    }
    assert!(differ > 0, "fusing changed no action");
}
