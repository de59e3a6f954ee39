//! The `fast-math` build keeps the accuracy the README promises. Run with
//! `cargo test -p policy-core --features std,fast-math --test fast_math`.
#![cfg(feature = "fast-math")]

#[test]
fn fast_math_stays_within_the_documented_error() {
    // Documented bounds (policy-core/README.md): the measured figures rounded up to one
    // significant digit, so a change that makes fast-math less accurate fails here.
    let e = policy_core::testing::fast_math_error();
    println!("{e:?}");
    assert_eq!(e.draws, 8000);
    assert!(e.mode_action <= 3e-3, "{e:?}");
    assert!(e.sampled_action <= 6e-3, "{e:?}");
    assert!(e.mixing_weight <= 6e-4, "{e:?}");
    assert!(e.log_prob_relative <= 2e-2, "{e:?}");
    assert!(e.component_mismatches * 500 <= e.draws, "{e:?}"); // at most 0.2%
}

#[test]
fn fast_math_saturates_instead_of_returning_nan() {
    use policy_core::math::{Math, MicroMath};
    // micromath's own exp is NaN just past f32's range; the wrappers must saturate.
    for x in [44.5f32, 60.0, 1e30] {
        assert_eq!(MicroMath::tanh(x), 1.0);
        assert_eq!(MicroMath::tanh(-x), -1.0);
    }
    for x in [88.8f32, 89.0, 89.4, 1e30] {
        assert_eq!(MicroMath::exp(x), f32::INFINITY);
    }
    assert_eq!(MicroMath::exp(-100.0), 0.0);
    assert!((MicroMath::tanh(0.5) - 0.5f32.tanh()).abs() < 2e-3);
}
