//! A population of `gym:` members shares one Python worker (one round trip per population
//! step), and member i still sees what its solo run sees: the same observations, rewards,
//! episode ends and reset seeds, the same files after training and after `--resume`. A
//! member whose environment fails stops alone.
//!
//! Needs the Python with gymnasium and mujoco of `gym.rs`.

mod common;
use common::gym::{python, python_with_test_envs, temp_dir};
use common::{metrics_without_timing, mixsac};
use rand::{Rng, RngCore, SeedableRng};
use rand_pcg::Pcg64;
use std::path::Path;
use std::time::Duration;
use trainer::envs::{Env, EnvBatch, EnvId, GymOptions, MemberStep, Transition};

fn options() -> GymOptions {
    GymOptions {
        python: python(),
        timeout: Duration::from_secs(120),
        ..GymOptions::default()
    }
}

/// What one member saw in one step: observation bits, reward bits, flags, and the next
/// episode's first observation where the episode ended.
type Row = (Vec<u32>, u64, bool, bool, Option<Vec<u32>>);

fn bits(obs: &[f32]) -> Vec<u32> {
    obs.iter().map(|x| x.to_bits()).collect()
}

fn row(t: Transition, next_obs: &[f32], first: Option<&[f32]>) -> Row {
    let first = first.map(bits);
    (
        bits(next_obs),
        t.reward.to_bits(),
        t.terminated,
        t.truncated,
        first,
    )
}

/// `steps` steps of three members of `id` with random in-bound actions, through one
/// [`EnvBatch`] and through three solo [`Env`]s with the same generators. Member 1 sits out
/// every seventh step. Returns the rows of both and the episodes seen.
fn batch_and_solo_rows(id: &str, steps: usize) -> (Vec<Vec<Row>>, Vec<Vec<Row>>, usize) {
    let id: EnvId = id.parse().unwrap();
    let mut batch = EnvBatch::make(&id, 3, &options()).unwrap();
    let mut solos: Vec<Env> = (0..3).map(|_| id.make(&options()).unwrap()).collect();
    let seeds = [11u64, 12, 13];
    let mut batch_rngs: Vec<Pcg64> = seeds.iter().map(|&s| Pcg64::seed_from_u64(s)).collect();
    let mut solo_rngs = batch_rngs.clone();
    let mut action_rng = Pcg64::seed_from_u64(5);
    let o = batch.obs_dim();
    let mut obs = vec![0.0f32; o];
    for i in 0..3 {
        batch.reset(i, &mut batch_rngs[i], &mut obs).unwrap();
        let first = obs.clone();
        solos[i].reset(&mut solo_rngs[i], &mut obs).unwrap();
        assert_eq!(bits(&first), bits(&obs), "member {i}: first reset differs");
    }
    let spec = batch.spec().clone();
    let (mut batch_rows, mut solo_rows) = (vec![vec![]; 3], vec![vec![]; 3]);
    let mut episodes = 0;
    for step in 0..steps {
        let actions: Vec<Vec<f64>> = (0..3)
            .map(|_| {
                spec.action_low
                    .iter()
                    .zip(&spec.action_high)
                    // Past the bounds at times: both clip.
                    .map(|(&l, &h)| rng_range(&mut action_rng, l * 1.1, h * 1.1))
                    .collect()
            })
            .collect();
        let given: Vec<Option<&[f64]>> = (0..3)
            .map(|i| (i != 1 || step % 7 != 0).then_some(actions[i].as_slice()))
            .collect();
        let outcomes = batch.step_all(&given, &mut batch_rngs);
        for i in 0..3 {
            match (&outcomes[i], given[i]) {
                (MemberStep::Idle, None) => continue,
                (MemberStep::Stepped { transition, reset }, Some(_)) => {
                    let first = reset.as_ref().map(|r| {
                        r.as_ref().unwrap();
                        batch.first_obs(i)
                    });
                    batch_rows[i].push(row(*transition, batch.next_obs(i), first));
                }
                (other, _) => panic!("member {i} step {step}: {other:?}"),
            }
            let mut next = vec![0.0f32; o];
            let t = solos[i].step(&actions[i], &mut next).unwrap();
            let first = (t.terminated || t.truncated).then(|| {
                episodes += 1;
                solos[i].reset(&mut solo_rngs[i], &mut obs).unwrap();
                obs.clone()
            });
            solo_rows[i].push(row(t, &next, first.as_deref()));
            assert_eq!(batch.episode_steps(i), solos[i].episode_steps());
        }
    }
    // The generators drew the same numbers (the read-ahead seeds were drawn only at resets).
    for (b, s) in batch_rngs.iter_mut().zip(&mut solo_rngs) {
        assert_eq!(b.next_u64(), s.next_u64(), "the generators drifted apart");
    }
    (batch_rows, solo_rows, episodes)
}

fn rng_range(rng: &mut Pcg64, lo: f64, hi: f64) -> f64 {
    rng.random_range(lo..hi)
}

#[test]
fn members_of_a_shared_worker_see_what_solo_environments_see() {
    // Pendulum ends by truncation only (200 steps); InvertedPendulum mostly by termination.
    for (id, steps) in [("gym:Pendulum-v1", 450), ("gym:InvertedPendulum-v5", 300)] {
        let (batch, solo, episodes) = batch_and_solo_rows(id, steps);
        for i in 0..3 {
            assert_eq!(batch[i].len(), solo[i].len(), "{id} member {i}");
            for (t, (b, s)) in batch[i].iter().zip(&solo[i]).enumerate() {
                assert_eq!(b, s, "{id} member {i} step {t}");
            }
        }
        let truncated = solo.iter().flatten().filter(|r| r.3).count();
        let terminated = solo.iter().flatten().filter(|r| r.2).count();
        println!("{id}: {episodes} episodes ({terminated} terminated, {truncated} truncated)");
        assert!(episodes >= 3, "{id}: too few episode ends to test resets");
        match id {
            "gym:Pendulum-v1" => assert!(truncated >= 3 && terminated == 0),
            _ => assert!(terminated >= 3),
        }
    }
}

fn train(out: &Path, env: &str, python: &str, steps: &str, seeds: &[&str]) -> std::process::Output {
    let mut args = vec![
        "train",
        "--env",
        env,
        "--python",
        python,
        "--steps",
        steps,
        "--learning-starts",
        "100",
        "--hidden",
        "16",
        "--batch-size",
        "16",
        "--log-every",
        "100",
        "--out",
        out.to_str().unwrap(),
    ];
    match seeds {
        [seed] => args.extend(["--seed", seed]),
        _ => args.extend(["--seeds", seeds.join(",").leak()]),
    }
    mixsac(&args)
}

fn read(dir: &Path, file: &str) -> Vec<u8> {
    std::fs::read(dir.join(file)).unwrap_or_else(|e| panic!("{}: {e}", dir.join(file).display()))
}

fn metrics(dir: &Path) -> String {
    metrics_without_timing(&String::from_utf8(read(dir, "metrics.csv")).unwrap())
}

fn assert_same_run(member: &Path, solo: &Path) {
    assert_eq!(
        read(member, "policy.mxp"),
        read(solo, "policy.mxp"),
        "{}",
        member.display()
    );
    assert_eq!(metrics(member), metrics(solo), "{}", member.display());
}

/// Sets `steps` in a run's config.toml, so that `--resume` continues a finished run.
fn extend_to(run: &Path, steps: usize) {
    let path = run.join("config.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let text: String = text
        .lines()
        .map(|l| match l.starts_with("steps =") {
            true => format!("steps = {steps}\n"),
            false => format!("{l}\n"),
        })
        .collect();
    std::fs::write(path, text).unwrap();
}

fn ok(out: std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Three InvertedPendulum members (many terminations under early policies) end in the files
/// of their solo runs, byte for byte, and again after each is resumed to further steps
/// (Gymnasium's state is not restorable: each resumed member starts a new episode seeded
/// from its checkpoint's generator, as a resumed solo run does).
#[test]
fn gym_members_train_and_resume_exactly_as_their_solo_runs() {
    let dir = temp_dir("population-files");
    let (py, env) = (python(), "gym:InvertedPendulum-v5");
    let seeds = ["1", "2", "3"];
    let pop = dir.join("pop");
    ok(train(&pop, env, &py, "400", &seeds));
    for seed in seeds {
        let solo = dir.join(format!("solo-{seed}"));
        ok(train(&solo, env, &py, "400", &[seed]));
        assert_same_run(&pop.join(format!("seed-{seed}")), &solo);
        extend_to(&solo, 700);
        extend_to(&pop.join(format!("seed-{seed}")), 700);
        let log = ok(mixsac(&[
            "train",
            "--resume",
            "--out",
            solo.to_str().unwrap(),
        ]));
        assert!(log.contains("continuing with a new episode"), "{log}");
    }
    let log = ok(mixsac(&[
        "train",
        "--resume",
        "--out",
        pop.to_str().unwrap(),
    ]));
    assert!(
        log.contains("resuming") && log.contains("at step 400 of 700"),
        "{log}"
    );
    for seed in seeds {
        let member = pop.join(format!("seed-{seed}"));
        assert_same_run(&member, &dir.join(format!("solo-{seed}")));
        assert_eq!(metrics(&member).lines().count(), 8, "header and 7 rows");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A NaN observation or an exception in one member's environment stops that member alone
/// (its checkpoint of step 100 intact); the others train on in the shared worker and end as
/// their solo runs end. Which members fail is decided by the environment (an odd reset
/// seed for the episode at step 150): the same members fail in their solo runs.
#[test]
fn a_failing_member_stops_alone_and_the_others_end_as_alone() {
    let py = python_with_test_envs();
    for fault in ["nan", "raise"] {
        let env = format!("gym:mixsac_test_envs:Faulty-odd-{fault}-v0");
        let dir = temp_dir(&format!("population-fault-{fault}"));
        let seeds = ["0", "1", "2", "3"];
        let pop = dir.join("pop");
        let out = train(&pop, &env, &py, "300", &seeds);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let (mut failed, mut healthy) = (0, 0);
        for seed in seeds {
            let solo = dir.join(format!("solo-{seed}"));
            let alone = train(&solo, &env, &py, "300", &[seed]);
            let member = pop.join(format!("seed-{seed}"));
            if alone.status.success() {
                healthy += 1;
                assert_same_run(&member, &solo);
            } else {
                failed += 1;
                let line = stdout
                    .lines()
                    .find(|l| l.contains(&format!("seed-{seed}:")))
                    .unwrap();
                assert!(
                    line.contains("stopped") && line.contains("step 150"),
                    "{line}"
                );
                let expected = match fault {
                    "nan" => "non-finite observation",
                    _ => "RuntimeError: fault at step 150",
                };
                assert!(line.contains(expected), "{line}");
                let progress = String::from_utf8(read(&member, "checkpoint/progress.json"));
                assert!(progress.unwrap().contains("\"step\":100"));
                assert_eq!(read(&member, "policy.mxp"), read(&solo, "policy.mxp"));
            }
        }
        assert!(
            failed > 0 && healthy > 0,
            "{fault}: {failed} failed, {healthy} healthy: the seeds no longer split"
        );
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("{failed} of 4 population members stopped early")),
            "{stderr}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// The members share one process: if it dies, every member stops with its cause.
#[test]
fn a_dying_shared_worker_stops_every_member_with_its_cause() {
    let dir = temp_dir("population-exit");
    let env = "gym:mixsac_test_envs:Faulty-exit-v0";
    let out = train(&dir, env, &python_with_test_envs(), "300", &["1", "2"]);
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    for seed in ["1", "2"] {
        let line = stdout
            .lines()
            .find(|l| l.contains(&format!("seed-{seed}:")));
        let line = line.unwrap_or_else(|| panic!("{stdout}"));
        assert!(
            line.contains("exited unexpectedly (exit status: 3)"),
            "{line}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
