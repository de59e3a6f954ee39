//! Measures how far the `fast-math` (micromath) build strays from libm.
//!
//! ```text
//! cargo run --release -p policy-core --features std,fast-math --example fast_math_error
//! ```
//! Both math implementations are compiled into this one binary and evaluate the same policy
//! files on the same observations and RNG streams; the figures go in policy-core/README.md.

fn main() {
    let e = policy_core::testing::fast_math_error();
    println!(
        "fast-math (micromath) vs libm, 4 random policies x 2000 observations, actions in [-2, 2]:"
    );
    println!("  mode action      max abs error {:.2e}", e.mode_action);
    println!(
        "  sampled action   max abs error {:.2e} (when both drew the same component)",
        e.sampled_action
    );
    println!(
        "  component        differs in {} of {} draws",
        e.component_mismatches, e.draws
    );
    println!("  mixing weight    max abs error {:.2e}", e.mixing_weight);
    println!(
        "  log_prob         max error relative to max(1, |log pi|) {:.2e}",
        e.log_prob_relative
    );
}
