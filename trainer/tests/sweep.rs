//! `mixsac sweep` and `mixsac plot` (the machinery, not the science): a tiny sweep runs end
//! to end with its best-setting reruns, a second invocation skips every finished run, a
//! killed sweep continues to the same results, bad specs are refused, and the figures are
//! written.

mod common;
use common::{data, mixsac, mixsac_command, results_without_timing, temp_dir};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

fn sweep(spec: &str, out: &Path, jobs: &str) -> Output {
    common::mixsac_ok(&[
        "sweep",
        "--spec",
        spec,
        "--out",
        out.to_str().unwrap(),
        "--jobs",
        jobs,
    ])
}

#[test]
fn a_tiny_sweep_runs_end_to_end_and_a_second_call_skips_it() {
    let dir = temp_dir("tiny");
    sweep(&data("tiny-sweep.toml"), &dir, "2");
    let results = std::fs::read_to_string(dir.join("results.csv")).unwrap();
    let rows: Vec<&str> = results.lines().skip(1).collect();
    // Grid: 2 methods × 2 α × 2 learning rates × 2 seeds; reruns: 2 methods × 2 seeds.
    assert_eq!(rows.len(), 16 + 4, "{results}");
    assert_eq!(rows.iter().filter(|r| r.starts_with("grid,")).count(), 16);
    assert_eq!(rows.iter().filter(|r| r.starts_with("best,")).count(), 4);
    assert!(rows.iter().all(|r| r.contains(",ok,")), "{results}");
    for row in &rows {
        let run = row.rsplit(',').next().unwrap();
        assert!(
            dir.join("runs").join(run).join("policy.mxp").exists(),
            "{run}"
        );
    }
    // Each method's reruns use the setting with the best mean AUC in the grid.
    for method in ["halfrep-sgm-k3", "rep-squashed-k1"] {
        let setting = |r: &&str| {
            let f: Vec<&str> = r.split(',').collect();
            (f[3].to_string(), f[4].to_string(), f[5].to_string())
        };
        let best_rerun = rows
            .iter()
            .find(|r| r.starts_with("best,") && r.contains(method))
            .map(setting)
            .unwrap();
        let mut aucs: std::collections::BTreeMap<(String, String, String), Vec<f64>> =
            Default::default();
        for r in rows
            .iter()
            .filter(|r| r.starts_with("grid,") && r.contains(method))
        {
            aucs.entry(setting(r))
                .or_default()
                .push(r.split(',').nth(10).unwrap().parse().unwrap());
        }
        let best_grid = aucs
            .iter()
            .max_by(|a, b| {
                let m = |v: &Vec<f64>| v.iter().sum::<f64>() / v.len() as f64;
                m(a.1).total_cmp(&m(b.1))
            })
            .unwrap()
            .0
            .clone();
        assert_eq!(best_rerun, best_grid, "{method}");
    }

    let before = std::fs::read_to_string(dir.join("results.csv")).unwrap();
    let again = sweep(&data("tiny-sweep.toml"), &dir, "1");
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(
        stderr.contains("16 runs already finished, skipped"),
        "{stderr}"
    );
    assert!(
        stderr.contains("4 runs already finished, skipped"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("results.csv")).unwrap(),
        before
    );

    // The figures.
    let plots = dir.join("plots");
    let out = mixsac(&["plot", "--sweep", dir.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for kind in ["learning", "alpha", "runs"] {
        for ext in ["png", "svg"] {
            let file = plots.join(format!("{kind}-bimodal-bandit.{ext}"));
            let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
            assert!(size > 5_000, "{} has {size} bytes", file.display());
        }
    }
}

/// Kills a sweep of three runs once `ready` holds for its run directories (given how many
/// have finished and how many hold a checkpoint without having finished), resumes it, and
/// checks the results equal an uninterrupted sweep's.
fn kill_and_resume(name: &str, population: &str, ready: impl Fn(usize, usize) -> bool) {
    let spec = data("kill-sweep.toml");
    let whole = temp_dir(&format!("{name}-whole"));
    sweep(&spec, &whole, "1");

    let cut = temp_dir(&format!("{name}-cut"));
    let mut child = mixsac_command()
        .args([
            "sweep",
            "--spec",
            &spec,
            "--out",
            cut.to_str().unwrap(),
            "--jobs",
            "1",
            "--population",
            population,
        ])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let runs = cut.join("runs");
    common::kill_when(&mut child, Duration::from_secs(300), || {
        let dirs: Vec<PathBuf> = std::fs::read_dir(&runs)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        let finished = dirs
            .iter()
            .filter(|d| d.join("summary.json").exists())
            .count();
        let in_progress = dirs
            .iter()
            .filter(|d| !d.join("summary.json").exists() && d.join("checkpoint").exists())
            .count();
        ready(finished, in_progress)
    });
    let summaries = std::fs::read_dir(&runs)
        .unwrap()
        .flatten()
        .filter(|e| e.path().join("summary.json").exists())
        .count();
    assert!(summaries < 3, "killed too late to test resuming");

    let resumed = common::mixsac_ok(&[
        "sweep",
        "--spec",
        &spec,
        "--out",
        cut.to_str().unwrap(),
        "--jobs",
        "1",
        "--population",
        population,
    ]);
    let stderr = String::from_utf8_lossy(&resumed.stderr);
    assert!(!stderr.contains("could not train together"), "{stderr}");
    if summaries > 0 {
        assert!(stderr.contains("already finished, skipped"), "{stderr}");
    }
    assert_eq!(results_without_timing(&cut), results_without_timing(&whole));
}

#[test]
fn a_killed_sweep_continues_to_the_same_results() {
    // One run at a time: killed once the first has finished and the second has a checkpoint.
    kill_and_resume("kill-solo", "1", |finished, in_progress| {
        finished >= 1 && in_progress >= 1
    });
}

#[test]
fn a_killed_sweep_of_populations_continues_to_the_same_results() {
    // The three seeds train as one population: killed once all three hold a checkpoint.
    kill_and_resume("kill-population", "3", |finished, in_progress| {
        finished == 0 && in_progress == 3
    });
}

/// Packing runs into populations changes nothing in the results: each member computes
/// exactly its solo run.
#[test]
fn populations_give_the_results_of_runs_trained_alone() {
    let spec = data("tiny-sweep.toml");
    let (alone, packed) = (temp_dir("alone"), temp_dir("packed"));
    for (dir, population) in [(&alone, "1"), (&packed, "16")] {
        let out = common::mixsac_ok(&[
            "sweep",
            "--spec",
            &spec,
            "--out",
            dir.to_str().unwrap(),
            "--jobs",
            "1",
            "--population",
            population,
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("could not train together"), "{stderr}");
    }
    assert_eq!(
        results_without_timing(&alone),
        results_without_timing(&packed)
    );
}

#[test]
fn bad_specs_and_a_foreign_directory_are_refused() {
    let dir = temp_dir("bad");
    std::fs::create_dir_all(&dir).unwrap();
    let cases = [
        ("envs = []\nseeds = [0]\n[[methods]]\npolicy = \"sgm\"\nestimator = \"halfrep\"\n", "at least one entry in `envs`"),
        ("envs = [\"pendulum\"]\nseeds = [0]\ncolour = 1\n[[methods]]\npolicy = \"sgm\"\nestimator = \"halfrep\"\n", "unknown field `colour`"),
        ("envs = [\"nowhere\"]\nseeds = [0]\n[[methods]]\npolicy = \"sgm\"\nestimator = \"halfrep\"\n", "unknown environment `nowhere`"),
        ("envs = [\"pendulum\"]\nseeds = [0]\n[[methods]]\npolicy = \"squashed\"\nestimator = \"halfrep\"\ncomponents = 3\n", "one component"),
    ];
    for (i, (text, message)) in cases.iter().enumerate() {
        let spec = dir.join(format!("bad-{i}.toml"));
        std::fs::write(&spec, text).unwrap();
        let out = mixsac(&[
            "sweep",
            "--spec",
            spec.to_str().unwrap(),
            "--out",
            dir.join(format!("out-{i}")).to_str().unwrap(),
        ]);
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(message), "case {i}: {stderr}");
    }
    // A directory holding another spec's sweep.
    let out_dir = temp_dir("foreign");
    sweep(&data("tiny-sweep.toml"), &out_dir, "2");
    let out = mixsac(&[
        "sweep",
        "--spec",
        &data("kill-sweep.toml"),
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("holds a sweep of another spec"));
    let out = mixsac(&["plot", "--sweep", dir.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is this a sweep directory?"));
}

#[test]
fn bootstrap_intervals_cover_the_mean_with_the_expected_width() {
    use rand::SeedableRng;
    let mut rng = rand_pcg::Pcg64::seed_from_u64(5);
    assert_eq!(
        trainer::report::bootstrap_ci(&[2.0; 10], &mut rng),
        (2.0, 2.0)
    );
    // 0, 1, ..., 99: mean 49.5, standard error 29.0/√100 = 2.90; a 95 % interval spans about
    // 2 × 1.96 × 2.90 = 11.4. With 2000 resamples its ends are known to about ±0.3.
    let values: Vec<f64> = (0..100).map(f64::from).collect();
    let (lo, hi) = trainer::report::bootstrap_ci(&values, &mut rng);
    assert!(lo < 49.5 && 49.5 < hi, "({lo}, {hi})");
    assert!((hi - lo - 11.4).abs() < 1.5, "width {}", hi - lo);
}

/// With α tuned automatically everywhere there is no α axis: `mixsac plot` says so instead of
/// leaving the figure out silently, and still draws the others.
#[test]
fn plot_says_which_figures_it_cannot_draw() {
    let dir = temp_dir("auto-only");
    std::fs::create_dir_all(&dir).unwrap();
    let spec = dir.join("spec.toml");
    std::fs::write(
        &spec,
        "envs = [\"bimodal-bandit\"]\nalphas = [\"auto\"]\nseeds = [0]\n\n\
         [[methods]]\npolicy = \"squashed\"\nestimator = \"rep\"\n\n\
         [train]\nsteps = 200\nlog_every = 50\n",
    )
    .unwrap();
    let out_dir = dir.join("sweep");
    sweep(spec.to_str().unwrap(), &out_dir, "1");
    let out = mixsac(&["plot", "--sweep", out_dir.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("alpha-bimodal-bandit: not drawn, no grid run with a numeric α"),
        "{stderr}"
    );
    assert!(out_dir.join("plots/learning-bimodal-bandit.png").exists());
    assert!(!out_dir.join("plots/alpha-bimodal-bandit.png").exists());
}

/// A sweep resumes its runs from their checkpoints through the same checks as `mixsac train
/// --resume`: a run whose checkpoint is damaged fails, naming the file, with its directory
/// left as it was (but for its summary.json); removed as the message says, it runs afresh to
/// the same results.
#[test]
fn a_sweep_run_with_a_damaged_checkpoint_fails_by_name_and_reruns_once_removed() {
    let dir = temp_dir("damaged-sweep");
    std::fs::create_dir_all(&dir).unwrap();
    let spec = dir.join("spec.toml");
    std::fs::write(
        &spec,
        "envs = [\"bimodal-bandit\"]\nseeds = [0]\n\n\
         [[methods]]\npolicy = \"squashed\"\nestimator = \"rep\"\n\n\
         [train]\nsteps = 200\nlog_every = 100\nlearning_starts = 50\n",
    )
    .unwrap();
    let (spec, out) = (spec.to_str().unwrap(), dir.join("sweep"));
    sweep(spec, &out, "1");
    let whole = results_without_timing(&out);
    let runs: Vec<PathBuf> = std::fs::read_dir(out.join("runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let [run] = &runs[..] else { panic!("{runs:?}") };
    // As if the sweep was killed after the run's last checkpoint, then a byte went bad.
    std::fs::remove_file(run.join("summary.json")).unwrap();
    let model = run.join("checkpoint/model.safetensors");
    let mut bytes = std::fs::read(&model).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xFF;
    std::fs::write(&model, &bytes).unwrap();
    let files = |dir: &Path| -> Vec<(PathBuf, Vec<u8>)> {
        let mut files: Vec<(PathBuf, Vec<u8>)> = ["config.toml", "metrics.csv", "policy.mxp"]
            .iter()
            .map(|f| dir.join(f))
            .chain(
                std::fs::read_dir(dir.join("checkpoint"))
                    .unwrap()
                    .map(|e| e.unwrap().path()),
            )
            .map(|f| (f.clone(), std::fs::read(&f).unwrap()))
            .collect();
        files.sort();
        files
    };
    let before = files(run);

    let again = sweep(spec, &out, "1");
    let stderr = String::from_utf8_lossy(&again.stderr);
    let damaged = format!("{} is damaged", model.display());
    let advice = format!(
        "remove {} and run the sweep again (it then starts this run afresh)",
        run.display()
    );
    assert!(
        stderr.contains(&damaged) && stderr.contains(&advice),
        "{stderr}"
    );
    let rows = trainer::results::read(&trainer::SweepDir::new(&out).results()).unwrap();
    assert!(
        rows[0].status.starts_with("failed: ") && rows[0].status.contains(&damaged),
        "{}",
        rows[0].status
    );
    assert!(files(run) == before, "the failed run changed its directory");

    std::fs::remove_dir_all(run).unwrap();
    sweep(spec, &out, "1");
    assert_eq!(results_without_timing(&out), whole);
    std::fs::remove_dir_all(dir).unwrap();
}

fn shard(spec: &str, out: &Path, part: &str, phase: &str) -> std::process::Child {
    mixsac_command()
        .args(["sweep", "--spec", spec, "--out", out.to_str().unwrap()])
        .args(["--shard", part, "--phase", phase])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

fn wait_ok(children: Vec<std::process::Child>) -> Vec<String> {
    children
        .into_iter()
        .map(|child| {
            let out = child.wait_with_output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
            assert!(out.status.success(), "{stderr}");
            stderr
        })
        .collect()
}

/// Three shard processes at once in one directory, then two for the reruns, then
/// `--collect`: the same results.csv as one sweep, every run trained by exactly one shard.
#[test]
fn shards_running_at_once_give_the_results_of_one_sweep() {
    let spec = data("shard-sweep.toml");
    let whole = temp_dir("shards-whole");
    sweep(&spec, &whole, "2");

    let dir = temp_dir("shards");
    let grid = wait_ok(
        (1..=3)
            .map(|i| shard(&spec, &dir, &format!("{i}/3"), "grid"))
            .collect(),
    );
    // 12 grid runs of equal cost: 4 per shard, each trained once.
    for stderr in &grid {
        assert_eq!(stderr.matches(": ok (final return").count(), 4, "{stderr}");
    }
    let best = wait_ok(
        (1..=2)
            .map(|i| shard(&spec, &dir, &format!("{i}/2"), "best"))
            .collect(),
    );
    let reruns: usize = best
        .iter()
        .map(|s| s.matches(": ok (final return").count())
        .sum();
    assert_eq!(reruns, 4, "{best:?}");
    // The last shard to finish wrote the whole table.
    assert_eq!(results_without_timing(&dir), results_without_timing(&whole));
    std::fs::remove_file(dir.join("results.csv")).unwrap();
    let out = common::mixsac_ok(&["sweep", "--collect", dir.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "sweep: 16 runs finished (0 failed); grid: 12 of 12; reruns of the best settings: 4"
        ),
        "{stderr}"
    );
    assert_eq!(results_without_timing(&dir), results_without_timing(&whole));
    // No temporary file was left behind.
    let leftovers: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn shard_phase_and_collect_arguments_are_checked() {
    let spec = data("shard-sweep.toml");
    let dir = temp_dir("shard-args");
    let out_dir = dir.to_str().unwrap();
    let cases: [(&[&str], &str); 6] = [
        (
            &["--shard", "3/2"],
            "there is no part 3 of 2: I in I/N counts from 1 to N",
        ),
        (&["--shard", "0/2"], "there is no part 0 of 2"),
        (&["--shard", "1/0"], "N in I/N must be at least 1"),
        (&["--shard", "x"], "`x` is not a shard: write I/N"),
        (
            &["--phase", "later"],
            "invalid value 'later' for '--phase <PHASE>'",
        ),
        (&["--jobs", "0"], "--jobs must be at least 1"),
    ];
    for (extra, message) in cases {
        let mut args = vec!["sweep", "--spec", &spec, "--out", out_dir];
        args.extend_from_slice(extra);
        let out = mixsac(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains(message),
            "{extra:?}: {stderr}"
        );
    }
    let out = mixsac(&["sweep", "--collect", out_dir, "--spec", &spec]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("cannot be used with"),
        "{stderr}"
    );
    // The reruns need the whole grid.
    let out = mixsac(&[
        "sweep", "--spec", &spec, "--out", out_dir, "--shard", "1/2", "--phase", "best",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && stderr.contains("need the whole grid, but 12 of its 12 runs have not finished"),
        "{stderr}"
    );
    // A shard meeting another spec's directory is refused.
    let out = mixsac(&[
        "sweep",
        "--spec",
        &data("kill-sweep.toml"),
        "--out",
        out_dir,
        "--shard",
        "1/2",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("holds a sweep of another spec"),
        "{stderr}"
    );
    // --collect on a folder that is no sweep.
    let out = mixsac(&["sweep", "--collect", dir.join("nowhere").to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("cannot read sweep spec"),
        "{stderr}"
    );
}

/// A run whose lock another process holds (a resubmitted task while the first one still
/// trains it) is left to that process: skipped here, trained by a later call once free.
#[test]
fn a_run_another_process_is_training_is_skipped() {
    use std::os::fd::AsRawFd;
    let spec = data("kill-sweep.toml");
    let (whole, busy) = (temp_dir("lock-whole"), temp_dir("lock-busy"));
    sweep(&spec, &whole, "1");
    let mut ids: Vec<String> = std::fs::read_dir(whole.join("runs"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    ids.sort();
    let held = &ids[1];
    std::fs::create_dir_all(busy.join("locks")).unwrap();
    let lock = std::fs::File::create(busy.join("locks").join(format!("{held}.lock"))).unwrap();
    // SAFETY: the descriptor belongs to `lock`, open for the whole call.
    assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) }, 0);
    let out = sweep(&spec, &busy, "1");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{held}: another process is training it; skipped")),
        "{stderr}"
    );
    assert!(!busy.join("runs").join(held).join("summary.json").exists());
    drop(lock);
    sweep(&spec, &busy, "1");
    assert_eq!(
        results_without_timing(&busy),
        results_without_timing(&whole)
    );
}
