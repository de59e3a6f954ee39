//! Host inference benchmark: nanoseconds per sampled action, log-prob and mode.
//!
//! ```text
//! cargo run --release -p policy-core --features std --example bench -- [--json]
//! ```
//! Add `--features std,fast-math` to measure the micromath build. One thread; each figure is
//! the median (and minimum) of 7 timed batches of at least 0.1 s, cycling through 256
//! observations.

use policy_core::format::{Activation, Header};
use policy_core::testing::random_policy;
use policy_core::Policy;
use rand_core::SeedableRng;
use rand_pcg::Pcg32;
use std::hint::black_box;
use std::time::Instant;

struct Case {
    name: &'static str,
    obs: usize,
    hidden: usize,
    action: usize,
    components: usize,
}

const CASES: [Case; 2] = [
    Case {
        name: "obs3-h64x64-a1-k5",
        obs: 3,
        hidden: 64,
        action: 1,
        components: 5,
    },
    Case {
        name: "obs17-h256x256-a6-k5",
        obs: 17,
        hidden: 256,
        action: 6,
        components: 5,
    },
];

/// (median, minimum) nanoseconds per call of `op` over 7 batches of at least 0.1 s each.
/// The minimum is the figure least disturbed by other load on the machine.
fn time_per_op(mut op: impl FnMut(usize)) -> (f64, f64) {
    let mut batch = 1usize;
    loop {
        let t = Instant::now();
        (0..batch).for_each(&mut op);
        if t.elapsed().as_secs_f64() > 0.1 {
            break;
        }
        batch *= 2;
    }
    let mut runs: Vec<f64> = (0..7)
        .map(|_| {
            let t = Instant::now();
            (0..batch).for_each(&mut op);
            t.elapsed().as_nanos() as f64 / batch as f64
        })
        .collect();
    runs.sort_by(f64::total_cmp);
    (runs[3], runs[0])
}

fn main() {
    let json = std::env::args().any(|a| a == "--json");
    let math = if cfg!(feature = "fast-math") {
        "micromath"
    } else {
        "libm"
    };
    if !json {
        println!(
            "{:<24} {:<9} {:>10}   (math: {math})",
            "policy", "op", "ns/op"
        );
    }
    for case in CASES {
        let low = vec![-1.0; case.action];
        let high = vec![1.0; case.action];
        let header = Header::new(
            case.obs,
            &[case.hidden, case.hidden],
            case.action,
            case.components,
            Activation::Relu,
            true,
            (-20.0, 2.0),
            &low,
            &high,
        )
        .expect("benchmark header is valid");
        let bytes = random_policy(&header, 1, 1.0);
        let policy = Policy::from_bytes(&bytes).expect("benchmark policy loads");
        let mut rng = Pcg32::seed_from_u64(7);
        let observations: Vec<Vec<f32>> = (0..256)
            .map(|i| {
                (0..case.obs)
                    .map(|j| ((i * 31 + j * 7) % 17) as f32 / 8.0 - 1.0)
                    .collect()
            })
            .collect();
        let mut action = vec![0.0f32; case.action];
        let obs = |i: usize| black_box(observations[i % observations.len()].as_slice());

        let sample = time_per_op(|i| {
            black_box(policy.sample(obs(i), &mut rng, &mut action).ok());
        });
        let mode = time_per_op(|i| {
            black_box(policy.mode(obs(i), &mut action).ok());
        });
        let given = vec![0.25f32; case.action];
        let log_prob = time_per_op(|i| {
            black_box(policy.log_prob(obs(i), &given).ok());
        });
        for (op, (ns, min)) in [("sample", sample), ("log_prob", log_prob), ("mode", mode)] {
            if json {
                println!(
                    "{{\"policy\": \"{}\", \"op\": \"{op}\", \"ns_per_op\": {ns:.1}, \"ns_per_op_min\": {min:.1}, \"math\": \"{math}\"}}",
                    case.name
                );
            } else {
                println!("{:<24} {:<9} {:>10.1} {:>10.1}", case.name, op, ns, min);
            }
        }
    }
}
