//! Host inference benchmark: nanoseconds per sampled action, log-prob and mode.
//!
//! ```text
//! cargo run --release -p policy-core --example bench -- [--json] [--instructions]
//! ```
//! `--instructions` adds x86-64 instructions per op counted by valgrind (callgrind), a
//! figure that does not move with the load on the machine.
//! Add `--features fast-math` to measure the micromath build. One thread; each figure is
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

/// A benchmark policy and observations for one case.
struct Setup {
    bytes: Vec<u8>,
    observations: Vec<Vec<f32>>,
    action: usize,
}

fn setup(case: &Case) -> Setup {
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
    let observations = (0..256)
        .map(|i| {
            (0..case.obs)
                .map(|j| ((i * 31 + j * 7) % 17) as f32 / 8.0 - 1.0)
                .collect()
        })
        .collect();
    Setup {
        bytes: random_policy(&header, 1, 1.0),
        observations,
        action: case.action,
    }
}

const OPS: [&str; 3] = ["sample", "log_prob", "mode"];

/// Runs `op` on observation `i` (cycling).
fn run_op(policy: &Policy, setup: &Setup, rng: &mut Pcg32, action: &mut [f32], op: &str, i: usize) {
    let obs = black_box(setup.observations[i % setup.observations.len()].as_slice());
    match op {
        "sample" => {
            black_box(policy.sample(obs, rng, action).ok());
        }
        "log_prob" => {
            let given = [0.25f32; 8];
            black_box(policy.log_prob(obs, &given[..setup.action]).ok());
        }
        _ => {
            black_box(policy.mode(obs, action).ok());
        }
    }
}

/// Instructions per op, counted by valgrind (deterministic, unlike time on a shared VM):
/// the difference between runs of 4000 and 2000 ops, so setup costs cancel.
fn instructions_per_op(case: &str, op: &str) -> f64 {
    let exe = std::env::current_exe().expect("own path");
    let count = |n: usize| -> f64 {
        let out = std::process::Command::new("valgrind")
            .args(["--tool=callgrind", "--callgrind-out-file=/dev/null"])
            .arg(&exe)
            .args(["--count", &n.to_string(), "--case", case, "--op", op])
            .output()
            .expect("valgrind runs (apt-get install valgrind)");
        let text = String::from_utf8_lossy(&out.stderr);
        let collected = text
            .lines()
            .find_map(|l| l.split("Collected :").nth(1))
            .expect("callgrind reports the instruction count");
        collected.trim().parse().expect("a number")
    };
    (count(4000) - count(2000)) / 2000.0
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| {
        let i = args.iter().position(|a| a == flag)?;
        args.get(i + 1).cloned()
    };
    // Internal mode for `--instructions`: run exactly N ops of one kind, print nothing.
    if let (Some(n), Some(case), Some(op)) = (value("--count"), value("--case"), value("--op")) {
        let case = CASES.iter().find(|c| c.name == case).expect("known case");
        let setup = setup(case);
        let policy = Policy::from_bytes(&setup.bytes).expect("loads");
        let mut rng = Pcg32::seed_from_u64(7);
        let mut action = vec![0.0f32; setup.action];
        for i in 0..n.parse::<usize>().expect("a count") {
            run_op(&policy, &setup, &mut rng, &mut action, &op, i);
        }
        return;
    }
    let json = args.iter().any(|a| a == "--json");
    let instructions = args.iter().any(|a| a == "--instructions");
    let math = if cfg!(feature = "fast-math") {
        "micromath"
    } else {
        "libm"
    };
    if !json {
        println!(
            "{:<24} {:<9} {:>10} {:>10}   (math: {math})",
            "policy", "op", "ns/op", "min ns/op"
        );
    }
    for case in &CASES {
        let setup = setup(case);
        let policy = Policy::from_bytes(&setup.bytes).expect("benchmark policy loads");
        let mut rng = Pcg32::seed_from_u64(7);
        let mut action = vec![0.0f32; setup.action];
        for op in OPS {
            let (ns, min) = time_per_op(|i| run_op(&policy, &setup, &mut rng, &mut action, op, i));
            let ir = instructions.then(|| instructions_per_op(case.name, op));
            if json {
                let ir = ir
                    .map(|ir| format!(", \"instructions_per_op\": {ir:.0}"))
                    .unwrap_or_default();
                println!(
                    "{{\"policy\": \"{}\", \"op\": \"{op}\", \"ns_per_op\": {ns:.1}, \"ns_per_op_min\": {min:.1}{ir}, \"math\": \"{math}\"}}",
                    case.name
                );
            } else {
                let ir = ir
                    .map(|ir| format!(" {ir:>10.0} instr/op"))
                    .unwrap_or_default();
                println!("{:<24} {:<9} {:>10.1} {:>10.1}{ir}", case.name, op, ns, min);
            }
        }
    }
}
