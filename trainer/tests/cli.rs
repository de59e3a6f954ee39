//! `mixsac inspect` reports policy files, good and bad, through policy-core; `quantize`
//! and `train --export-int8` write int8 ones; bad command lines are usage errors.

use policy_core::format::{Activation, Header};
use policy_core::testing::random_policy;

mod common;
use common::{mixsac_command as mixsac, temp_dir};

#[test]
fn inspect_prints_the_header() {
    let dir = temp_dir("inspect");
    std::fs::create_dir_all(&dir).unwrap();
    let h = Header::new(
        17,
        &[256, 256],
        6,
        5,
        Activation::Tanh,
        true,
        (-20.0, 2.0),
        &[-1.0; 6],
        &[1.0; 6],
    )
    .unwrap();
    let path = dir.join("p.mxp");
    std::fs::write(&path, random_policy(&h, 1, 1.0)).unwrap();
    let out = mixsac().arg("inspect").arg(&path).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        text.contains("squashed Gaussian mixture, 5 component(s)"),
        "{text}"
    );
    assert!(
        text.contains("obs 17 -> hidden 256x256 (Tanh) -> action 6"),
        "{text}"
    );
    assert!(
        text.contains(&format!("parameters:    {}", h.weight_count())),
        "{text}"
    );

    // A corrupted copy: clear message, non-zero exit, and the file is left as it was.
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[100] ^= 0x10;
    std::fs::write(&path, &bytes).unwrap();
    let out = mixsac().arg("inspect").arg(&path).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("corrupted or truncated"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `mixsac quantize` writes a version-3 file that `inspect` describes and `eval` runs;
/// quantizing it again is refused.
#[test]
fn quantize_inspect_and_eval_an_int8_policy() {
    let dir = temp_dir("quantize");
    std::fs::create_dir_all(&dir).unwrap();
    let source = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../firmware-example/policies/pendulum-sgm5.mxp"
    );
    let out_path = dir.join("q.mxp");
    let out = mixsac()
        .args(["quantize", source, "--calibrate-env", "shaped-pendulum"])
        .args(["--episodes", "2", "--check-episodes", "1", "--out"])
        .arg(&out_path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        text.contains("calibrated on 400 states of 2 episodes"),
        "{text}"
    );
    assert!(text.contains("same component"), "{text}");

    let out = mixsac().arg("inspect").arg(&out_path).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(text.contains("format version 3"), "{text}");
    assert!(text.contains("parameters:    5391 (int8)"), "{text}");
    assert!(text.contains("16-bit activation codes"), "{text}");
    assert!(text.contains("hidden 0 3x64"), "{text}");

    let out = mixsac()
        .args([
            "eval",
            "--env",
            "shaped-pendulum",
            "--episodes",
            "2",
            "--policy",
        ])
        .arg(&out_path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("return    mean"));

    let again = mixsac()
        .arg("quantize")
        .arg(&out_path)
        .args(["--calibrate-env", "shaped-pendulum", "--out"])
        .arg(dir.join("qq.mxp"))
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already quantized"));

    // Keyword arguments are for gym:<ID> environments (trainer/tests/gym.rs passes some).
    let kwargs = mixsac()
        .args(["quantize", source, "--calibrate-env", "shaped-pendulum"])
        .args(["--env-kwargs", r#"{"g": 9.81}"#, "--out"])
        .arg(dir.join("kw.mxp"))
        .output()
        .unwrap();
    assert!(!kwargs.status.success());
    let err = String::from_utf8_lossy(&kwargs.stderr);
    assert!(
        err.contains("--env-kwargs applies to gym:<ID> environments only"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `mixsac train --export-int8` writes policy.mxp and its int8 quantization beside it,
/// calibrated in the training environment, and prints the accuracy.
#[test]
fn train_export_int8_writes_both_files_and_prints_the_accuracy() {
    use policy_core::format::{parse, Encoding};
    let dir = temp_dir("export-int8");
    let out = mixsac()
        .args([
            "train",
            "--env",
            "pendulum",
            "--steps",
            "300",
            "--learning-starts",
            "100",
        ])
        .args([
            "--log-every",
            "100",
            "--hidden",
            "16",
            "--export-int8",
            "--out",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(text.contains("int8 policy written to"), "{text}");
    assert!(
        text.contains("calibrated on 4000 states of 20 episodes"),
        "{text}"
    );
    assert!(text.contains("same component"), "{text}");
    let f32_file = std::fs::read(dir.join("policy.mxp")).unwrap();
    let int8_file = std::fs::read(dir.join("policy-int8.mxp")).unwrap();
    let (h32, _) = parse(&f32_file).unwrap();
    let (h8, _) = parse(&int8_file).unwrap();
    assert_eq!((h32.encoding, h8.encoding), (Encoding::F32, Encoding::Int8));
    assert_eq!(h32.hidden, h8.hidden);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `visited_states` cuts each episode at `max_steps` steps (the cap that keeps calibration
/// finite in an environment without a time limit); below the environment's own limit
/// (pendulum: 200 steps) it is what ends the episodes.
#[test]
fn visited_states_cuts_episodes_at_the_step_cap() {
    let source = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../firmware-example/policies/pendulum-sgm5.mxp"
    );
    let bytes = std::fs::read(source).unwrap();
    let policy = policy_core::HostPolicy::load(&bytes).unwrap();
    let mut env = trainer::envs::make("pendulum").unwrap();
    let capped = trainer::visited_states(&policy, &mut env, 3, 0, 50).unwrap();
    assert_eq!(capped.len(), 3 * 50);
    let whole = trainer::visited_states(&policy, &mut env, 3, 0, 1000).unwrap();
    assert_eq!(whole.len(), 3 * 200);
    // Same seed, same states up to the cut.
    assert_eq!(capped[..50], whole[..50]);
}

#[test]
fn bad_command_lines_are_usage_errors() {
    let bare = mixsac().output().unwrap();
    assert_eq!(bare.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bare.stderr).contains("Usage: mixsac <COMMAND>"));
    for args in [
        vec!["frobnicate"],
        vec!["inspect"],
        vec!["inspect", "a", "b"],
        vec!["eval"],
    ] {
        let out = mixsac().args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).starts_with("error: "),
            "{args:?}"
        );
    }
    // A value of the wrong type is a usage error that names the setting's rule.
    let out = mixsac()
        .args([
            "train",
            "--env",
            "pendulum",
            "--alpha",
            "-0.5",
            "--out",
            "/nonexistent",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--alpha must be a number ≥ 0 or `auto`"),
        "{err}"
    );
    let out = mixsac()
        .args(["inspect", "/nonexistent/policy.mxp"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read /nonexistent/policy.mxp"));
}

/// `quantize --max-steps 0` (episodes cut before their first step: nothing to calibrate on)
/// is refused before anything runs, naming the flag, and writes nothing.
#[test]
fn quantize_refuses_max_steps_0() {
    let dir = temp_dir("quantize-max-steps");
    std::fs::create_dir_all(&dir).unwrap();
    let out_file = dir.join("q.mxp");
    let out = mixsac()
        .args([
            "quantize",
            "../firmware-example/policies/pendulum-sgm5.mxp",
            "--calibrate-env",
            "shaped-pendulum",
            "--max-steps",
            "0",
            "--out",
        ])
        .arg(&out_file)
        .output()
        .unwrap();
    assert!(!out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--max-steps must be at least 1"), "{err}");
    assert!(!out_file.exists());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn envs_lists_every_environment() {
    let out = mixsac().arg("envs").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let names = trainer::envs::EnvId::builtin().map(|id| id.listed_name());
    for name in names.chain(["gym:<ID>".to_string()]) {
        assert!(text.contains(&name), "{name} missing from:\n{text}");
    }
    assert!(
        text.contains("[-2, 2]") && text.contains("200") && text.contains("1000"),
        "{text}"
    );
}

#[test]
fn env_replay_reports_bad_input_clearly() {
    let run = |args: &[&str], stdin: &str| {
        let mut command = mixsac();
        command.args(args);
        common::with_stdin(command, stdin)
    };
    let ok = run(
        &["env-replay", "--env", "pendulum", "--state", "0.1,-0.2"],
        "0.5\n1.0\n",
    );
    assert!(ok.status.success(), "{ok:?}");
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&ok.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["state"], serde_json::json!([0.1, -0.2]));
    assert_eq!(lines[2]["step"], 2);
    for (args, stdin, message) in [
        (
            vec!["env-replay", "--env", "nope"],
            "",
            "unknown environment `nope`",
        ),
        (
            vec!["env-replay", "--env", "pendulum", "--state", "1"],
            "",
            "needs 2 finite numbers",
        ),
        (
            vec!["env-replay", "--env", "pendulum"],
            "0.1\nnan\n",
            "line 2: action entry 0 is NaN",
        ),
        (
            vec!["env-replay", "--env", "pendulum"],
            "abc\n",
            "`abc` is not a number",
        ),
        (
            vec!["bench-envs", "--steps", "0"],
            "",
            "--steps must be at least 1",
        ),
    ] {
        let out = run(&args, stdin);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(message), "{args:?}: {err}");
    }
}

/// `train --env X --help` shows, for every hyperparameter, the default that a run on X
/// really resolves to (one environment per family).
#[test]
fn train_help_shows_the_defaults_each_family_resolves() {
    use trainer::config::HYPERPARAMETERS;
    for (env, family) in [
        ("shaped-pendulum", "classic control"),
        ("gym:Hopper-v5", "gym:<ID>"),
        ("random-bandit:3", "bandits"),
    ] {
        let out = mixsac()
            .args(["train", "--env", env, "--help"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let help = String::from_utf8_lossy(&out.stdout).replace('\n', " ");
        let config = trainer::TrainArgs {
            env: Some(env.parse().unwrap()),
            ..Default::default()
        }
        .resolve()
        .unwrap();
        let resolved = toml::Value::try_from(&config).unwrap();
        for h in HYPERPARAMETERS {
            let flag = format!("--{} <", h.name.replace('_', "-"));
            let after = &help[help.find(&flag).unwrap_or_else(|| panic!("{flag}: {help}"))..];
            let marker = format!("[default for {family}: ");
            let start = after.find(&marker).unwrap_or_else(|| panic!("{flag}")) + marker.len();
            let shown = &after[start..start + after[start..].find(']').unwrap()];
            if h.derived {
                // e.g. "1 for squashed/gaussian, 5 for sgm/gm": depends on other flags.
                assert_eq!(shown, (h.default)(config.env.family()), "{flag}");
                continue;
            }
            let value = &resolved[h.name];
            let agrees = match (value.as_float(), value.as_integer(), value.as_str()) {
                (Some(v), _, _) => shown.parse::<f64>() == Ok(v),
                (_, Some(v), _) => shown.parse::<i64>() == Ok(v),
                (_, _, Some(v)) => shown == v,
                _ => false,
            };
            assert!(
                agrees,
                "{env} {flag}: help shows {shown}, a run uses {value}"
            );
        }
    }
}
