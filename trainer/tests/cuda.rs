//! The CUDA path (`--device cuda`): parameters, Adam's moments and the replay buffer's copy
//! live on the GPU, and a population trained there computes what it computes on the CPU up
//! to the kernels' summation order.
//!
//! Built only with `--features cuda`, and it needs an NVIDIA GPU: scripts/test.sh runs it
//! when `nvidia-smi` finds one and otherwise says in its summary that it did not run. Here a
//! missing device is a failure, never a skip.
#![cfg(feature = "cuda")]

mod common;

use candle_core::{Device, Tensor};
use common::members::{agent, member_configs, random_batch, stack, worst, ESTIMATOR_CASES};
use common::{kill_when, line_count, mixsac_command, mixsac_ok, temp_dir};
use rand::SeedableRng;
use rand_pcg::Pcg64;
use std::collections::HashMap;
use std::path::Path;
use trainer::{Batch, DeviceReplay, ReplayBuffer};

/// One update from the same state on the GPU and on the CPU agrees to this difference
/// (`worst`, relative to at least 1), the 1e-4. Both draw the same random numbers;
/// the GPU's matrix
/// products and reductions sum in another order, a few roundings of 2⁻²⁴ relative per
/// operation, far below it. Measured on an H200: see the printed largest difference and
/// BENCHMARKS.md.
const REL_TOL: f64 = 1e-4;

fn cuda() -> Device {
    Device::new_cuda(0).unwrap_or_else(|e| {
        panic!("this test needs a CUDA device (scripts/test.sh runs it only when nvidia-smi finds one): {e}")
    })
}

/// Every estimator: three members that differ in seed, α and learning rates, on the GPU and
/// on the CPU, fed the same minibatches, 200 updates.
#[test]
fn every_estimator_on_cuda_matches_the_cpu_for_200_updates() {
    let gpu = cuda();
    // Every case runs and prints its largest difference before any is judged.
    let mut over = Vec::new();
    for (policy, estimator, alpha) in ESTIMATOR_CASES {
        let configs = member_configs(policy, estimator, alpha);
        let rngs = || -> Vec<Pcg64> {
            configs
                .iter()
                .map(|c| Pcg64::seed_from_u64(c.seed))
                .collect()
        };
        let (mut cpu_rngs, mut gpu_rngs) = (rngs(), rngs());
        let mut on_cpu = agent(&configs, &mut cpu_rngs, &Device::Cpu);
        let mut on_gpu = agent(&configs, &mut gpu_rngs, &gpu);
        let mut data = Pcg64::seed_from_u64(99);
        let mut max_diff: f64 = 0.0;
        let mut first_over = None;
        for update in 0..200 {
            let batches: Vec<Batch> = (0..configs.len())
                .map(|_| random_batch(&mut data, 32))
                .collect();
            // Each update starts from the CPU's parameters, moments and random streams, so
            // one update's rounding is compared, not 200 updates' divergence: a component
            // draw that a last-bit difference flips would otherwise change a whole
            // trajectory (measured: 2e-2 after 160 updates for halfrep and gumbel).
            for member in 0..configs.len() {
                let state: HashMap<String, Tensor> =
                    on_cpu.state(member).unwrap().into_iter().collect();
                on_gpu.load_state(member, &state).unwrap();
            }
            gpu_rngs.clone_from(&cpu_rngs);
            let cpu = on_cpu
                .update(&stack(&batches, &Device::Cpu), &mut cpu_rngs)
                .unwrap();
            let gpu_stats = on_gpu
                .update(&stack(&batches, &gpu), &mut gpu_rngs)
                .unwrap();
            for (i, (c, g)) in cpu.iter().zip(&gpu_stats).enumerate() {
                // Relative to at least 1: log π's mean is a small difference of terms of order 1
                // (near 0.03 at times), so it is measured against the terms' scale.
                let diff = worst(g, c, 1.0);
                if diff > REL_TOL && first_over.is_none() {
                    first_over = Some(format!(
                        "{policy}/{estimator}/{alpha} member {i} update {update}: cuda {g:?} vs cpu {c:?}"
                    ));
                }
                max_diff = max_diff.max(diff);
            }
        }
        println!("{policy}-{estimator} alpha {alpha}: largest difference of one update, cuda vs cpu {max_diff:e}");
        over.extend(first_over);
    }
    assert!(over.is_empty(), "beyond {REL_TOL:e}: {over:#?}");
}

/// `mixsac train --device cuda` with a population: every member writes its run directory
/// and its policy file evaluates through policy-core; a population killed mid-run resumes
/// from its checkpoints (restoring the moments and the replay copy on the GPU) to the
/// policy files of an uninterrupted one, bit for bit: the same kernels on the same device
/// sum in the same order.
#[test]
fn a_population_trains_on_cuda_exports_and_resumes() {
    cuda();
    let dir = temp_dir("cuda-population");
    let args = |out: &Path| -> Vec<String> {
        [
            "train",
            "--env",
            "pendulum",
            "--policy",
            "sgm",
            "--components",
            "3",
            "--estimator",
            "halfrep",
            "--seeds",
            "1,2",
            "--steps",
            "3000",
            "--learning-starts",
            "300",
            "--log-every",
            "300",
            "--device",
            "cuda",
            "--out",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([out.to_str().unwrap().to_string()])
        .collect()
    };
    let (whole, killed) = (dir.join("whole"), dir.join("killed"));
    let whole_args = args(&whole);
    mixsac_ok(&whole_args.iter().map(String::as_str).collect::<Vec<_>>());
    let mut child = mixsac_command()
        .args(args(&killed))
        .stderr(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let last = killed.join("seed-2").join("metrics.csv");
    kill_when(&mut child, std::time::Duration::from_secs(300), || {
        line_count(&last) > 3
    });
    mixsac_ok(&["train", "--resume", "--out", killed.to_str().unwrap()]);
    for seed in ["seed-1", "seed-2"] {
        for out in [&whole, &killed] {
            let run = out.join(seed);
            for file in ["config.toml", "metrics.csv", "policy.mxp"] {
                assert!(run.join(file).exists(), "{} lacks {file}", run.display());
            }
            assert_eq!(
                line_count(&run.join("metrics.csv")),
                11,
                "{}",
                run.display()
            );
            let policy = run.join("policy.mxp");
            let eval = mixsac_ok(&[
                "eval",
                "--policy",
                policy.to_str().unwrap(),
                "--env",
                "pendulum",
                "--episodes",
                "2",
                "--json",
            ]);
            assert!(!eval.stdout.is_empty());
        }
        let read = |d: &Path| std::fs::read(d.join(seed).join("policy.mxp")).unwrap();
        assert!(
            read(&whole) == read(&killed),
            "{seed}: the killed and resumed policy differs from the uninterrupted one"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The replay copy on the GPU gathers exactly the transitions the host buffers sample, ring
/// wrapped, including a member drawing from another's buffer (a stopped member does).
#[test]
fn the_replay_copy_on_cuda_gathers_what_the_host_samples() {
    let gpu = cuda();
    let (o, a) = (3, 1);
    let mut buffers = [ReplayBuffer::new(50, o, a), ReplayBuffer::new(50, o, a)];
    let mut copy: Option<DeviceReplay> = None;
    for step in 0..80 {
        for (m, buffer) in buffers.iter_mut().enumerate() {
            let x = (1000 * m + step) as f32;
            buffer.push(
                &[x, -x, 0.5 * x],
                &[x / 7.0],
                x,
                &[x + 1.0; 3],
                step % 9 == 0,
            );
        }
        let refs: Vec<&ReplayBuffer> = buffers.iter().collect();
        match &copy {
            None if step == 10 => copy = Some(DeviceReplay::new(&refs, &gpu).unwrap()),
            None => {}
            Some(replay) => replay.store(&refs, refs[0].last_slot().unwrap()).unwrap(),
        }
    }
    let replay = copy.unwrap();
    let sources = [0, 0];
    let draw = |seed: u64| -> Vec<Pcg64> {
        vec![Pcg64::seed_from_u64(seed), Pcg64::seed_from_u64(seed + 1)]
    };
    let (mut host_rngs, mut gpu_rngs) = (draw(5), draw(5));
    let batches: Vec<Batch> = host_rngs
        .iter_mut()
        .zip(sources)
        .map(|(rng, m)| buffers[m].sample(32, rng))
        .collect();
    let slots: Vec<Vec<usize>> = gpu_rngs
        .iter_mut()
        .zip(sources)
        .map(|(rng, m)| buffers[m].sample_slots(32, rng))
        .collect();
    let on_gpu = replay.gather(&slots, &sources).unwrap();
    let on_host = stack(&batches, &Device::Cpu);
    let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    for (g, h) in [
        (&on_gpu.obs, &on_host.obs),
        (&on_gpu.actions, &on_host.actions),
        (&on_gpu.rewards, &on_host.rewards),
        (&on_gpu.next_obs, &on_host.next_obs),
        (&on_gpu.terminated, &on_host.terminated),
    ] {
        assert_eq!(g.dims(), h.dims());
        assert_eq!(flat(g), flat(h));
    }
}
