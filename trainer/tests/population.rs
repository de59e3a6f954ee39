//! Population training: member i of a population computes the run `mixsac train` computes
//! with member i's config, a member that diverges stops alone, and a killed population
//! resumes to the weights of an uninterrupted one.

mod common;

use candle_core::Device;
use common::members::{agent, member_configs, random_batch, stack, worst, ESTIMATOR_CASES};
use common::{
    kill_when, line_count, metrics_without_timing, mixsac, mixsac_command, mixsac_ok, temp_dir,
};
use rand::SeedableRng;
use rand_pcg::Pcg64;
use std::path::Path;
use trainer::{Agent, Batch};

/// The tolerance for member-versus-solo losses. Members draw the same random
/// numbers as their solo runs and run the same operations on their own slices, so the
/// measured difference is 0 (asserted and printed below); 1e-4 leaves room for a future
/// kernel that sums in another order.
const REL_TOL: f64 = 1e-4;

#[test]
fn every_estimator_members_first_200_updates_equal_their_solo_runs() {
    for (policy, estimator, alpha) in ESTIMATOR_CASES {
        let configs = member_configs(policy, estimator, alpha);
        let seeds: Vec<u64> = configs.iter().map(|c| c.seed).collect();
        let mut pop_rngs: Vec<Pcg64> = seeds.iter().map(|&s| Pcg64::seed_from_u64(s)).collect();
        let mut population = agent(&configs, &mut pop_rngs, &Device::Cpu);
        let mut solos: Vec<(Agent, Pcg64)> = configs
            .iter()
            .map(|c| {
                let mut rng = [Pcg64::seed_from_u64(c.seed)];
                let a = agent(std::slice::from_ref(c), &mut rng, &Device::Cpu);
                let [rng] = rng;
                (a, rng)
            })
            .collect();
        let mut data = Pcg64::seed_from_u64(99);
        let mut max_diff: f64 = 0.0;
        for update in 0..200 {
            let batches: Vec<Batch> = (0..configs.len())
                .map(|_| random_batch(&mut data, 32))
                .collect();
            let stats = population
                .update(&stack(&batches, &Device::Cpu), &mut pop_rngs)
                .unwrap();
            for (i, (solo, rng)) in solos.iter_mut().enumerate() {
                let alone = solo
                    .update(
                        &stack(std::slice::from_ref(&batches[i]), &Device::Cpu),
                        std::slice::from_mut(rng),
                    )
                    .unwrap()[0];
                let diff = worst(&stats[i], &alone, 1e-30);
                assert!(
                    diff <= REL_TOL,
                    "{policy}/{estimator}/{alpha} member {i} update {update}: {:?} vs solo {:?}",
                    stats[i],
                    alone
                );
                max_diff = max_diff.max(diff);
            }
        }
        println!("{policy}-{estimator} alpha {alpha}: largest relative difference {max_diff:e}");
        assert_eq!(
            max_diff, 0.0,
            "{policy}/{estimator}: members are no longer exact"
        );
    }
}

fn train_args<'a>(out: &'a str, steps: &'a str) -> Vec<&'a str> {
    vec![
        "train",
        "--out",
        out,
        "--env",
        "shaped-pendulum",
        "--policy",
        "sgm",
        "--components",
        "3",
        "--estimator",
        "halfrep",
        "--hidden",
        "32",
        "--steps",
        steps,
        "--learning-starts",
        "300",
        "--log-every",
        "300",
    ]
}

/// Ten seeds as one population end in the files of ten solo runs, byte for byte, so their
/// final returns are the solo runs' (a fortiori statistically indistinguishable).
#[test]
fn a_population_of_ten_seeds_writes_the_files_of_ten_solo_runs() {
    let dir = temp_dir("population-ten");
    let pop = dir.join("pop");
    let pop_s = pop.to_str().unwrap();
    let mut args = train_args(pop_s, "900");
    args.extend(["--seeds", "0,1,2,3,4,5,6,7,8,9"]);
    mixsac_ok(&args);
    for seed in 0..10 {
        let solo = dir.join(format!("solo-{seed}"));
        let seed_s = seed.to_string();
        let mut args = train_args(solo.to_str().unwrap(), "900");
        args.extend(["--seed", &seed_s]);
        mixsac_ok(&args);
        let member = pop.join(format!("seed-{seed}"));
        let read = |d: &Path, f: &str| std::fs::read(d.join(f)).unwrap();
        assert_eq!(
            read(&member, "policy.mxp"),
            read(&solo, "policy.mxp"),
            "seed {seed}"
        );
        let metrics =
            |d: &Path| metrics_without_timing(&String::from_utf8(read(d, "metrics.csv")).unwrap());
        assert_eq!(metrics(&member), metrics(&solo), "seed {seed}");
        // config.toml's first line is a comment naming its own path.
        let config = |d: &Path| {
            let text = String::from_utf8(read(d, "config.toml")).unwrap();
            text.lines().skip(1).collect::<Vec<_>>().join("\n")
        };
        assert_eq!(config(&member), config(&solo), "seed {seed}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_diverging_member_stops_alone_with_its_checkpoint_intact() {
    let dir = temp_dir("population-diverge");
    let pop = dir.join("pop");
    let mut args = train_args(pop.to_str().unwrap(), "1500");
    args.extend(["--seeds", "4", "--actor-lrs", "1e-3,1e30"]);
    let out = mixsac(&args);
    assert!(
        !out.status.success(),
        "a stopped member must fail the command"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("1 of 2 population members stopped early"),
        "{stderr}"
    );
    let healthy = pop.join("seed-4_actor-lr-0.001");
    let diverged = pop.join("seed-4_actor-lr-1000000000000000000000000000000");
    assert!(
        stdout.contains("training diverged") || stdout.contains("non-finite loss"),
        "{stdout}"
    );
    // The healthy member trained to the end, exactly as alone.
    let solo = dir.join("solo");
    let mut args = train_args(solo.to_str().unwrap(), "1500");
    args.extend(["--seed", "4"]);
    mixsac_ok(&args);
    assert_eq!(
        std::fs::read(healthy.join("policy.mxp")).unwrap(),
        std::fs::read(solo.join("policy.mxp")).unwrap()
    );
    // The diverged member's last checkpoint and policy are intact and finite.
    let bytes = std::fs::read(diverged.join("policy.mxp")).unwrap();
    let policy = policy_core::Policy::from_bytes(&bytes).unwrap();
    let mut action = [0.0f32];
    policy.mode(&[1.0, 0.0, 0.0], &mut action).unwrap();
    assert!(action[0].is_finite());
    assert!(diverged.join("checkpoint").join("manifest.txt").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_killed_population_resumes_to_the_weights_of_an_uninterrupted_one() {
    let dir = temp_dir("population-kill");
    let (whole, killed) = (dir.join("whole"), dir.join("killed"));
    let population = ["--seeds", "1,2", "--alphas", "0.05,0.2"];
    let mut args = train_args(whole.to_str().unwrap(), "6000");
    args.extend(population);
    mixsac_ok(&args);

    let mut args = train_args(killed.to_str().unwrap(), "6000");
    args.extend(population);
    let mut child = mixsac_command()
        .args(&args)
        .stderr(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let last = killed.join("seed-2_alpha-0.2").join("metrics.csv");
    let limit = std::time::Duration::from_secs(120);
    kill_when(&mut child, limit, || line_count(&last) > 4);
    let rows = std::fs::read_to_string(&last).unwrap().lines().count();
    assert!(rows < 21, "killed too late to test resuming ({rows} rows)");
    mixsac_ok(&["train", "--resume", "--out", killed.to_str().unwrap()]);
    for member in [
        "seed-1_alpha-0.05",
        "seed-1_alpha-0.2",
        "seed-2_alpha-0.05",
        "seed-2_alpha-0.2",
    ] {
        let read = |d: &Path, f: &str| std::fs::read(d.join(member).join(f)).unwrap();
        assert_eq!(
            read(&killed, "policy.mxp"),
            read(&whole, "policy.mxp"),
            "{member}"
        );
        let metrics =
            |d: &Path| metrics_without_timing(&String::from_utf8(read(d, "metrics.csv")).unwrap());
        assert_eq!(metrics(&killed), metrics(&whole), "{member}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn populations_refuse_bad_input() {
    let dir = temp_dir("population-bad");
    let out = dir.to_str().unwrap();
    let mut args = train_args(out, "600");
    args.extend(["--seeds", "1,1"]);
    let err = mixsac(&args);
    assert!(!err.status.success());
    assert!(String::from_utf8_lossy(&err.stderr).contains("would both be seed-1"));
    let mut args = train_args(out, "600");
    args.extend(["--alphas", "0.1,auto"]);
    let err = mixsac(&args);
    let stderr = String::from_utf8_lossy(&err.stderr);
    assert!(
        stderr.contains("differs from member 0 in `alpha`"),
        "{stderr}"
    );
    let err = mixsac(&["train", "--resume", "--out", out, "--seeds", "1,2"]);
    assert!(!err.status.success());
    let stderr = String::from_utf8_lossy(&err.stderr);
    assert!(
        stderr.contains("give only --out (and --resume)"),
        "{stderr}"
    );
    let mut args = train_args(out, "600");
    args.extend(["--seeds", "1,2", "--seed", "3"]);
    let stderr = String::from_utf8_lossy(&mixsac(&args).stderr).into_owned();
    assert!(stderr.contains("either --seed or --seeds"), "{stderr}");
    let mut args = train_args(out, "600");
    args.extend(["--seeds", "1,2", "--actor-lrs", "0.001,-1"]);
    let stderr = String::from_utf8_lossy(&mixsac(&args).stderr).into_owned();
    assert!(stderr.contains("actor"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A population interrupted while it writes its members' checkpoints (every member's
/// `checkpoint.new/` first, then the swaps) resumes at the latest step every member can
/// reach. The states are built from two uninterrupted populations of the same seeds: one
/// stopped at step 600, one at 900 (whose step-900 checkpoints are what the interrupted one
/// was writing).
#[test]
fn a_population_cut_while_checkpointing_resumes_at_a_common_step() {
    let dir = temp_dir("population-cut");
    let (at600, at900) = (dir.join("at600"), dir.join("at900"));
    for (out, steps) in [(&at600, "600"), (&at900, "900")] {
        let mut args = train_args(out.to_str().unwrap(), steps);
        args.extend(["--seeds", "5,6"]);
        mixsac_ok(&args);
    }
    let members = ["seed-5", "seed-6"];
    // Members at step 600 with the 900-step run's config (it trains on to 900).
    let cut = |name: &str| -> std::path::PathBuf {
        let z = dir.join(name);
        std::fs::copy(at900.join("population.toml"), {
            std::fs::create_dir_all(&z).unwrap();
            z.join("population.toml")
        })
        .unwrap();
        for m in members {
            copy_dir(&at600.join(m), &z.join(m));
            std::fs::copy(
                at900.join(m).join("config.toml"),
                z.join(m).join("config.toml"),
            )
            .unwrap();
        }
        z
    };
    let same_as_uninterrupted = |z: &Path| {
        for m in members {
            let read = |d: &Path, f: &str| std::fs::read(d.join(m).join(f)).unwrap();
            assert_eq!(read(z, "policy.mxp"), read(&at900, "policy.mxp"), "{m}");
            let metrics = |d: &Path| {
                metrics_without_timing(&String::from_utf8(read(d, "metrics.csv")).unwrap())
            };
            assert_eq!(metrics(z), metrics(&at900), "{m}");
        }
    };

    // Cut while writing: seed-5's step-900 checkpoint is pending, seed-6's was never
    // written. Step 600 is common: the pending one is discarded and both train on.
    let z = cut("writing");
    copy_dir(
        &at900.join("seed-5/checkpoint"),
        &z.join("seed-5/checkpoint.new"),
    );
    mixsac_ok(&["train", "--resume", "--out", z.to_str().unwrap()]);
    assert!(!z.join("seed-5/checkpoint.new").exists());
    same_as_uninterrupted(&z);

    // Cut while swapping: seed-5 already swapped to step 900, seed-6's step-900 checkpoint
    // is still pending. Step 900 is common: seed-6 finishes its swap.
    let z = cut("swapping");
    std::fs::remove_dir_all(z.join("seed-5/checkpoint")).unwrap();
    copy_dir(
        &at900.join("seed-5/checkpoint"),
        &z.join("seed-5/checkpoint"),
    );
    copy_dir(
        &at900.join("seed-6/checkpoint"),
        &z.join("seed-6/checkpoint.new"),
    );
    mixsac_ok(&["train", "--resume", "--out", z.to_str().unwrap()]);
    same_as_uninterrupted(&z);

    // No common step (seed-6's pending checkpoint lost): refused, naming the steps.
    let z = cut("lost");
    std::fs::remove_dir_all(z.join("seed-5/checkpoint")).unwrap();
    copy_dir(
        &at900.join("seed-5/checkpoint"),
        &z.join("seed-5/checkpoint"),
    );
    let out = mixsac(&["train", "--resume", "--out", z.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no step in common"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}
