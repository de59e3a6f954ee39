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
