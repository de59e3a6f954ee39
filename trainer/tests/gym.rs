//! `gym:<ID>` environments through the Python worker: trajectories equal direct Gymnasium
//! stepping bit for bit; a short SAC run on MuJoCo's InvertedPendulum trains, exports and
//! evaluates; missing packages, non-Box spaces, NaN, hangs and dying workers are clear
//! errors that leave no process behind.
//!
//! Needs a Python with gymnasium 1.4 and mujoco: the repository's `.venv` (which
//! `scripts/test.sh` creates), or `MIXSAC_PYTHON`. Without one these tests fail and say so.

mod common;
use common::gym::{python, python_with_test_envs, repo, temp_dir, wrapper};
use common::mixsac;
use rand::{Rng, SeedableRng};
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use trainer::envs::gym::{GymError, GymOptions, GymWorker};
use trainer::envs::{self, EnvError};

fn options(python: String, timeout_s: u64) -> GymOptions {
    GymOptions {
        python,
        timeout: Duration::from_secs(timeout_s),
        ..GymOptions::default()
    }
}

/// Whether process `pid` still exists (a zombie counts: it has not been reaped).
fn process_exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

fn bits(x: f64) -> u64 {
    x.to_bits()
}

/// Three seeded episodes of random in-bound actions through the bridge and directly in
/// Python: every observation, reward and flag equal to the bit.
fn assert_bridge_equals_direct(id: &str) {
    let mut worker = GymWorker::start(id, &options(python(), 120)).unwrap();
    let spec = worker.spec().clone();
    let mut rng = rand_pcg::Pcg64::seed_from_u64(3);
    let mut episodes = Vec::new();
    let mut bridge_rows: Vec<Vec<Vec<u64>>> = Vec::new();
    for seed in [7u64, 8, 9] {
        let mut rows = vec![worker.reset(seed).unwrap().into_iter().map(bits).collect()];
        let mut actions = Vec::new();
        for _ in 0..150 {
            let action: Vec<f64> = spec
                .action_low
                .iter()
                .zip(&spec.action_high)
                .map(|(&l, &h)| rng.random_range(l..h))
                .collect();
            let step = worker.step(&action).unwrap();
            actions.push(action);
            let mut row: Vec<u64> = step.obs.iter().copied().map(bits).collect();
            row.extend([
                bits(step.reward),
                step.terminated as u64,
                step.truncated as u64,
            ]);
            rows.push(row);
            if step.terminated || step.truncated {
                break;
            }
        }
        episodes.push(serde_json::json!({"seed": seed, "actions": actions}));
        bridge_rows.push(rows);
    }
    let request = serde_json::json!({"id": id, "episodes": episodes}).to_string();
    let mut command = Command::new(python());
    command.arg(repo().join("trainer/tests/gym_envs/direct_rollout.py"));
    let out = common::with_stdin(command, &request);
    assert!(
        out.status.success(),
        "direct rollout of {id} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let direct: Vec<Vec<Vec<u64>>> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(direct.len(), 3);
    let steps: usize = bridge_rows.iter().map(Vec::len).sum();
    for (e, (b, d)) in bridge_rows.iter().zip(&direct).enumerate() {
        assert_eq!(b.len(), d.len(), "{id} episode {e}: lengths differ");
        for (t, (rb, rd)) in b.iter().zip(d).enumerate() {
            assert_eq!(
                rb, rd,
                "{id} episode {e} step {t}: bridge and Python differ"
            );
        }
    }
    println!("{id}: {steps} rows equal to the bit");
}

#[test]
fn bridge_trajectories_equal_direct_python_stepping() {
    assert_bridge_equals_direct("Pendulum-v1");
    assert_bridge_equals_direct("InvertedPendulum-v5");
}

#[test]
fn spaces_and_limits_are_read_from_the_environment() {
    let env = "gym:InvertedPendulum-v5"
        .parse::<envs::EnvId>()
        .unwrap()
        .make(&options(python(), 120))
        .unwrap();
    assert_eq!(env.obs_dim(), 4);
    assert_eq!(env.spec().action_low, vec![-3.0]);
    assert_eq!(env.spec().action_high, vec![3.0]);
    assert_eq!(env.spec().cutoff, 1000);
    assert!(!env.can_restore());
}

#[test]
fn non_box_spaces_and_unknown_ids_are_clear_errors() {
    let err = GymWorker::start("CartPole-v1", &options(python(), 120))
        .err()
        .unwrap();
    assert!(
        matches!(&err, GymError::Environment { message, .. } if message.contains("Discrete action space")),
        "{err}"
    );
    let err = GymWorker::start("NoSuchEnv-v0", &options(python(), 120))
        .err()
        .unwrap();
    assert!(err.to_string().contains("NoSuchEnv"), "{err}");
    assert!(matches!(
        "gym:".parse::<envs::EnvId>(),
        Err(EnvError::Unknown(_))
    ));
}

#[test]
fn a_missing_package_or_python_names_the_fix() {
    // -S hides site-packages: numpy and gymnasium are "not installed".
    let bare = wrapper("bare", "exec \"$PY\" -S \"$@\"");
    let err = GymWorker::start("Pendulum-v1", &options(bare, 120))
        .err()
        .unwrap();
    assert!(matches!(err, GymError::MissingPackage { .. }), "{err}");
    assert!(err.to_string().contains("is not installed in"), "{err}");
    assert!(err.to_string().contains("pip install"), "{err}");

    let err = GymWorker::start("Pendulum-v1", &options("/nonexistent/python3".into(), 5))
        .err()
        .unwrap();
    assert!(matches!(err, GymError::Spawn { .. }), "{err}");
    assert!(err.to_string().contains("MIXSAC_PYTHON"), "{err}");
}

/// Starts `mixsac_test_envs:Faulty-<fault>-v0`, takes the four good steps, and returns the
/// worker, its pid and the error of the fifth step, where the fault strikes.
fn fifth_step_error(fault: &str, timeout_s: u64) -> (GymWorker, u32, GymError) {
    let id = format!("mixsac_test_envs:Faulty-{fault}-v0");
    let mut w = GymWorker::start(&id, &options(python_with_test_envs(), timeout_s)).unwrap();
    let pid = w.pid();
    w.reset(1).unwrap();
    for _ in 0..4 {
        w.step(&[0.5]).unwrap();
    }
    let err = w.step(&[0.5]).unwrap_err();
    (w, pid, err)
}

#[test]
fn nan_from_the_environment_is_an_error() {
    let (_, _, err) = fifth_step_error("nan", 120);
    assert!(
        matches!(
            err,
            GymError::NonFinite {
                what: "observation",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn a_hanging_worker_times_out_and_is_reaped() {
    let (mut w, pid, err) = fifth_step_error("hang", 2);
    assert!(matches!(err, GymError::Timeout { .. }), "{err}");
    assert!(
        err.to_string().contains("did not answer step within 2 s"),
        "{err}"
    );
    assert!(!process_exists(pid), "the hung worker {pid} is still there");
    // Further use is refused rather than waited for.
    assert!(w.step(&[0.5]).is_err());

    // A worker that hangs before its first reply is stopped too.
    let pid_file = temp_dir("hang-start").join("pid");
    let sleeper = wrapper(
        "sleeper",
        &format!("echo $$ > '{}'; exec sleep 600", pid_file.display()),
    );
    let err = GymWorker::start("Pendulum-v1", &options(sleeper, 1))
        .err()
        .unwrap();
    assert!(
        matches!(
            err,
            GymError::Timeout {
                during: "start-up",
                ..
            }
        ),
        "{err}"
    );
    let pid: u32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        !process_exists(pid),
        "the sleeping worker {pid} is still there"
    );
}

#[test]
fn a_dying_worker_is_reported_with_its_exit_status() {
    let (_w, pid, err) = fifth_step_error("exit", 120);
    assert!(matches!(err, GymError::Died { .. }), "{err}");
    assert!(err.to_string().contains("exit status: 3"), "{err}");
    assert!(!process_exists(pid), "the dead worker {pid} was not reaped");
}

#[test]
fn dropping_an_environment_ends_its_worker() {
    let mut w = GymWorker::start("Pendulum-v1", &options(python(), 120)).unwrap();
    let pid = w.pid();
    w.reset(0).unwrap();
    assert!(process_exists(pid));
    drop(w);
    assert!(!process_exists(pid), "worker {pid} outlived its owner");
}

#[test]
fn sac_trains_on_mujoco_inverted_pendulum_and_eval_runs_the_export() {
    let dir = temp_dir("train");
    let out_dir = dir.join("run");
    let py = python();
    let out = mixsac(&[
        "train",
        "--env",
        "gym:InvertedPendulum-v5",
        "--python",
        &py,
        "--steps",
        "1500",
        "--learning-starts",
        "500",
        "--hidden",
        "32",
        "--batch-size",
        "32",
        "--log-every",
        "500",
        "--seed",
        "4",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config = std::fs::read_to_string(out_dir.join("config.toml")).unwrap();
    // MuJoCo-size defaults where no flag was given.
    for line in [
        "alpha = \"auto\"",
        "buffer_size = 1000000",
        "tau = 0.005",
        "actor_lr = 0.0003",
    ] {
        assert!(
            config.contains(line),
            "config.toml lacks `{line}`:\n{config}"
        );
    }
    let metrics = std::fs::read_to_string(out_dir.join("metrics.csv")).unwrap();
    assert_eq!(metrics.lines().count(), 4, "{metrics}");
    let policy = out_dir.join("policy.mxp");
    let out = mixsac(&[
        "eval",
        "--policy",
        policy.to_str().unwrap(),
        "--env",
        "gym:InvertedPendulum-v5",
        "--python",
        &py,
        "--episodes",
        "3",
        "--seed",
        "2",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let returns = v["returns"].as_array().unwrap();
    assert_eq!(returns.len(), 3);
    // InvertedPendulum pays 1 per step the pole stays up: at least one step per episode.
    assert!(returns.iter().all(|r| r.as_f64().unwrap() >= 1.0), "{v}");
}

/// A humanoid (17 actions, 348 observations) is past the default `Policy`'s 8 actions:
/// `mixsac` trains it, exports it and evaluates the file through policy-core's `HostPolicy`.
#[test]
fn a_humanoid_trains_exports_and_evaluates_through_policy_core() {
    let dir = temp_dir("humanoid");
    let out_dir = dir.join("run");
    let py = python();
    let out = mixsac(&[
        "train",
        "--env",
        "gym:Humanoid-v5",
        "--python",
        &py,
        "--steps",
        "300",
        "--learning-starts",
        "100",
        "--hidden",
        "32",
        "--policy",
        "sgm",
        "--components",
        "3",
        "--batch-size",
        "32",
        "--buffer-size",
        "1000",
        "--log-every",
        "100",
        "--seed",
        "5",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let policy = out_dir.join("policy.mxp");
    let bytes = std::fs::read(&policy).unwrap();
    let (header, _) = policy_core::format::parse(&bytes).unwrap();
    assert_eq!(
        (header.obs_dim, header.action_dim, header.components),
        (348, 17, 3)
    );
    // The default capacities refuse it by name; the host type holds it.
    let err = policy_core::Policy::from_bytes(&bytes).unwrap_err();
    assert!(
        err.to_string()
            .contains("action dimension 17 exceeds the capacity 8"),
        "{err}"
    );
    let out = mixsac(&[
        "eval",
        "--policy",
        policy.to_str().unwrap(),
        "--env",
        "gym:Humanoid-v5",
        "--python",
        &py,
        "--episodes",
        "2",
        "--seed",
        "2",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let returns = v["returns"].as_array().unwrap();
    assert_eq!(returns.len(), 2);
    // Humanoid pays a healthy reward of 5 per step it stays up, minus small control and
    // contact costs: every episode lasts at least one step, so each return is finite and
    // nonzero.
    assert!(
        returns
            .iter()
            .all(|r| r.as_f64().unwrap().is_finite() && r.as_f64().unwrap() != 0.0),
        "{v}"
    );
}

#[test]
fn nan_during_training_stops_with_the_checkpoint_intact() {
    let dir = temp_dir("train-nan");
    let out_dir = dir.join("run");
    let out = mixsac(&[
        "train",
        "--env",
        "gym:mixsac_test_envs:Faulty-late-nan-v0",
        "--python",
        &python_with_test_envs(),
        "--steps",
        "400",
        "--learning-starts",
        "50",
        "--hidden",
        "16",
        "--batch-size",
        "16",
        "--log-every",
        "100",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("non-finite observation"), "{stderr}");
    assert!(stderr.contains("step 150"), "{stderr}");
    assert!(
        stderr.contains("step 100) and its policy.mxp are intact"),
        "{stderr}"
    );
    let progress = std::fs::read_to_string(out_dir.join("checkpoint/progress.json")).unwrap();
    assert!(progress.contains("\"step\":100"), "{progress}");
    let inspect = mixsac(&["inspect", out_dir.join("policy.mxp").to_str().unwrap()]);
    assert!(
        inspect.status.success(),
        "{}",
        String::from_utf8_lossy(&inspect.stderr)
    );
}

fn with_kwargs(json: &str) -> GymOptions {
    GymOptions {
        kwargs: json.parse().unwrap(),
        ..options(python(), 120)
    }
}

fn make(id: &str, options: &GymOptions) -> Result<envs::Env, EnvError> {
    id.parse::<envs::EnvId>().unwrap().make(options)
}

/// Steps until the episode ends (at most `limit`) with large alternating actions, which
/// topple the hopper quickly; returns (steps, terminated, truncated).
fn hop(env: &mut envs::Env, limit: usize) -> (usize, bool, bool) {
    let mut rng = rand_pcg::Pcg64::seed_from_u64(1);
    let mut obs = vec![0.0f32; env.obs_dim()];
    env.reset(&mut rng, &mut obs).unwrap();
    for step in 1..=limit {
        let sign = if step % 20 < 10 { 1.0 } else { -1.0 };
        let t = env.step(&[sign, -sign, sign], &mut obs).unwrap();
        if t.terminated || t.truncated {
            return (step, t.terminated, t.truncated);
        }
    }
    (limit, false, false)
}

#[test]
fn env_kwargs_reach_gym_make_mujoco_options_included() {
    let mut plain = make("gym:Hopper-v5", &options(python(), 120)).unwrap();
    let (steps, terminated, _) = hop(&mut plain, 1000);
    assert!(
        terminated && steps < 1000,
        "the hopper did not fall ({steps} steps)"
    );
    let mut never = make(
        "gym:Hopper-v5",
        &with_kwargs(r#"{"terminate_when_unhealthy": false}"#),
    )
    .unwrap();
    assert_eq!(hop(&mut never, 1000), (1000, false, true));
    // gym.make's own keywords too: the time limit the worker reports follows.
    let short = make(
        "gym:Pendulum-v1",
        &with_kwargs(r#"{"max_episode_steps": 7, "g": 9.81}"#),
    );
    assert_eq!(short.unwrap().spec().cutoff, 7);
}

#[test]
fn unknown_ids_say_how_to_import_their_package_and_refused_keywords_are_named() {
    let start = |id: &str, options: &GymOptions| GymWorker::start(id, options).err().unwrap();
    for (id, advice) in [
        (
            "myoElbowPose1D6MRandom-v0",
            "gym:myosuite:myoElbowPose1D6MRandom-v0",
        ),
        ("Meta-World/MT1", "gym:metaworld:Meta-World/MT1"),
        ("NoSuchEnv-v0", "gym:<module>:NoSuchEnv-v0"),
    ] {
        let err = start(id, &options(python(), 120));
        assert!(matches!(err, GymError::UnknownId { .. }), "{err}");
        assert!(err.to_string().contains(advice), "{err}");
    }
    let err = start("mixsac_no_such_module:Foo-v0", &options(python(), 120));
    assert!(matches!(err, GymError::MissingPackage { .. }), "{err}");
    assert!(err.to_string().contains("`mixsac_no_such_module`"), "{err}");

    let typo = with_kwargs(r#"{"terminate_when_unhealty": false}"#);
    match start("Hopper-v5", &typo) {
        GymError::RejectedKeyword {
            keyword, message, ..
        } => {
            assert_eq!(keyword, "terminate_when_unhealty");
            assert!(
                message.contains("does not take the keyword argument `terminate_when_unhealty`"),
                "{message}"
            );
        }
        other => panic!("{other}"),
    }
}

/// `--env-kwargs` is saved in config.toml, and `eval` and `--resume` make the environment
/// with it: Pendulum cut off after 5 steps keeps every return above 5 × (−16.3).
#[test]
fn env_kwargs_are_saved_and_used_by_resume_and_eval() {
    let dir = temp_dir("kwargs");
    let run = dir.join("run");
    let py = python();
    let train = |extra: &[&str]| {
        let mut args = vec![
            "train",
            "--python",
            &py,
            "--learning-starts",
            "100",
            "--hidden",
            "16",
            "--batch-size",
            "16",
            "--log-every",
            "100",
            "--out",
            run.to_str().unwrap(),
        ];
        args.extend(extra);
        let out = mixsac(&args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    train(&[
        "--env",
        "gym:Pendulum-v1",
        "--env-kwargs",
        r#"{"max_episode_steps": 5, "g": 9.81}"#,
        "--steps",
        "200",
    ]);
    let config = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(config.contains("env_kwargs"), "{config}");
    let text = config.replace("steps = 200", "steps = 300");
    std::fs::write(run.join("config.toml"), text).unwrap();
    train(&["--resume"]);
    let metrics = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let lengths: Vec<&str> = metrics
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(3).unwrap())
        .collect();
    assert_eq!(lengths, ["5", "5", "5"], "{metrics}");

    let eval = |extra: &[&str]| {
        let policy = run.join("policy.mxp");
        let mut args = vec![
            "eval",
            "--policy",
            policy.to_str().unwrap(),
            "--env",
            "gym:Pendulum-v1",
            "--python",
            &py,
            "--episodes",
            "3",
            "--json",
        ];
        args.extend(extra);
        let out = mixsac(&args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let returns: Vec<f64> = v["returns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_f64().unwrap())
            .collect();
        (returns, String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (returns, stderr) = eval(&[]);
    assert!(
        stderr.contains("env_kwargs of its training run"),
        "{stderr}"
    );
    assert!(returns.iter().all(|&r| r > -82.0), "{returns:?}");
    let (returns, _) = eval(&["--env-kwargs", r#"{"max_episode_steps": 5}"#]);
    assert!(returns.iter().all(|&r| r > -82.0), "{returns:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `mixsac quantize --calibrate-env gym:<ID>` takes `--env-kwargs` as `train` does: they
/// reach gym.make (a keyword Pendulum-v1 does not take is refused, naming it), and a short
/// time limit given that way caps the calibration episodes.
#[test]
fn quantize_passes_env_kwargs_to_its_calibration_environment() {
    let dir = temp_dir("quantize-kwargs");
    let source = repo().join("firmware-example/policies/pendulum-sgm5.mxp");
    let quantize = |kwargs: &str| {
        common::mixsac_command()
            .arg("quantize")
            .arg(&source)
            .args(["--calibrate-env", "gym:Pendulum-v1", "--python", &python()])
            .args([
                "--episodes",
                "2",
                "--check-episodes",
                "0",
                "--env-kwargs",
                kwargs,
            ])
            .arg("--out")
            .arg(dir.join("q.mxp"))
            .output()
            .unwrap()
    };
    let out = quantize(r#"{"max_episode_steps": 30, "g": 9.81}"#);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("calibrated on 60 states of 2 episodes"),
        "{text}"
    );
    let refused = quantize(r#"{"gravity_typo": 9.81}"#);
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("gravity_typo"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

/// Without `--env-kwargs`, `mixsac quantize` takes the `env_kwargs` of the config.toml beside
/// the policy file when that run trained on the calibration environment, and says so: a
/// 30-step time limit there caps the calibration episodes at 30 states each.
#[test]
fn quantize_takes_env_kwargs_from_the_runs_config_by_default() {
    let dir = temp_dir("quantize-config-kwargs");
    let policies = repo().join("firmware-example/policies");
    let source = dir.join("policy.mxp");
    std::fs::copy(policies.join("pendulum-sgm5.mxp"), &source).unwrap();
    let config = std::fs::read_to_string(policies.join("pendulum-sgm5.config.toml")).unwrap();
    // That file predates `checkpoint_every`: older config files load without it.
    let config = config.replacen(
        "env = \"shaped-pendulum\"",
        "env = \"gym:Pendulum-v1\"\nenv_kwargs = { max_episode_steps = 30 }",
        1,
    );
    assert!(config.contains("max_episode_steps"), "{config}");
    std::fs::write(dir.join("config.toml"), config).unwrap();
    let out = common::mixsac_command()
        .arg("quantize")
        .arg(&source)
        .args(["--calibrate-env", "gym:Pendulum-v1", "--python", &python()])
        .args(["--episodes", "2", "--check-episodes", "0"])
        .arg("--out")
        .arg(dir.join("q.mxp"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let (text, err) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(err.contains("env_kwargs of its training run"), "{err}");
    assert!(
        text.contains("calibrated on 60 states of 2 episodes"),
        "{text}"
    );
    std::fs::remove_dir_all(&dir).ok();
}
