//! `mixsac slurm` on a real one-node Slurm cluster (started by `scripts/slurm-one-node.sh`,
//! stopped by this test whether it passes or fails): a sweep submitted as a 3-task array
//! ends with the results of the same sweep run locally, with its reruns and figures; a task
//! cancelled mid-run and resubmitted resumes to identical results; a bad spec fails at
//! submission. Without the cluster: hostile values cannot run a command through the
//! generated scripts, and the arguments are checked.

mod common;
use common::{data, mixsac, results_without_timing, temp_dir};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// A one-node Slurm cluster, stopped when dropped (also when the test panics).
struct Cluster {
    state: PathBuf,
    conf: String,
}

impl Cluster {
    fn script() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/slurm-one-node.sh")
    }

    /// Starts the cluster; a fixed state folder, so that a start after a killed test stops
    /// that test's daemons first.
    fn start() -> Cluster {
        let state = std::env::temp_dir().join("mixsac-slurm-test");
        let out = Command::new("bash")
            .arg(Self::script())
            .arg("start")
            .env("MIXSAC_SLURM_STATE", &state)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "scripts/slurm-one-node.sh start failed: {}{stdout}",
            String::from_utf8_lossy(&out.stderr)
        );
        let conf = stdout
            .lines()
            .find_map(|l| l.strip_prefix("SLURM_CONF="))
            .unwrap_or_else(|| panic!("no SLURM_CONF in {stdout}"))
            .to_string();
        Cluster { state, conf }
    }

    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        command.env("SLURM_CONF", &self.conf);
        command
    }

    fn output(&self, program: &str, args: &[&str]) -> Output {
        self.command(program).args(args).output().unwrap()
    }

    /// `mixsac slurm ARGS --submit` under this cluster; returns the ids by job name.
    fn submit(&self, args: &[&str]) -> Vec<(String, String)> {
        let out = self
            .command(env!("CARGO_BIN_EXE_mixsac"))
            .arg("slurm")
            .args(args)
            .arg("--submit")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "mixsac slurm failed: {}{stdout}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
            .lines()
            .map(|l| {
                let (name, id) = l.split_once(' ').unwrap();
                assert!(id.parse::<u64>().is_ok(), "{stdout}");
                (name.to_string(), id.to_string())
            })
            .collect()
    }

    /// squeue's lines (id, state, reason) for `jobs`.
    fn queued(&self, jobs: &[&str]) -> Vec<String> {
        let out = self.output(
            "squeue",
            &[
                "--noheader",
                "--format=%i %T %r",
                &format!("--jobs={}", jobs.join(",")),
            ],
        );
        // squeue fails for ids that have left the queue; no line then.
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Waits until `jobs` have left the queue; fails on a job that can never start.
    fn wait(&self, jobs: &[&str], logs: &Path) {
        let started = Instant::now();
        loop {
            let queued = self.queued(jobs);
            if queued.is_empty() {
                return;
            }
            assert!(
                !queued
                    .iter()
                    .any(|l| l.contains("DependencyNeverSatisfied"))
                    && started.elapsed() < Duration::from_secs(300),
                "jobs stuck: {queued:?}\n{}",
                logs_text(logs)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let out = Command::new("bash")
            .arg(Self::script())
            .arg("stop")
            .env("MIXSAC_SLURM_STATE", &self.state)
            .output();
        if !matches!(&out, Ok(o) if o.status.success()) {
            eprintln!("scripts/slurm-one-node.sh stop failed: {out:?}");
        }
    }
}

/// Every log in `dir`, for failure messages.
fn logs_text(dir: &Path) -> String {
    let mut text = String::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.path().extension().is_some_and(|e| e == "log") {
            text += &format!("== {}\n", entry.path().display());
            text += &std::fs::read_to_string(entry.path()).unwrap_or_default();
        }
    }
    text
}

fn local_sweep(spec: &str, out: &Path) {
    common::mixsac_ok(&[
        "sweep",
        "--spec",
        spec,
        "--out",
        out.to_str().unwrap(),
        "--jobs",
        "2",
    ]);
}

fn id<'a>(jobs: &'a [(String, String)], name: &str) -> &'a str {
    &jobs.iter().find(|(n, _)| n == name).unwrap().1
}

/// One test, one cluster: its scenarios run one after the other.
#[test]
fn sweeps_run_on_a_one_node_slurm_cluster() {
    let cluster = Cluster::start();
    let out = cluster.output("sinfo", &["--noheader", "--format=%t"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "idle");

    // A bad spec fails at submission: nothing is written or queued.
    let bad_dir = temp_dir("slurm-bad");
    std::fs::create_dir_all(&bad_dir).unwrap();
    let bad = bad_dir.join("bad.toml");
    std::fs::write(&bad, "envs = [\"nowhere\"]\nseeds = [0]\n[[methods]]\npolicy = \"sgm\"\nestimator = \"halfrep\"\n").unwrap();
    let out = cluster
        .command(env!("CARGO_BIN_EXE_mixsac"))
        .args([
            "slurm",
            "--spec",
            bad.to_str().unwrap(),
            "--tasks",
            "2",
            "--submit",
        ])
        .args(["--out", bad_dir.join("sweep").to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("unknown environment `nowhere`"),
        "{stderr}"
    );
    assert!(!bad_dir.join("sweep").exists());
    let queue = cluster.output("squeue", &["--noheader"]);
    assert!(
        queue.status.success() && queue.stdout.is_empty(),
        "{queue:?}"
    );

    // A 3-task array: the grid, its reruns, the figures, as the local sweep.
    let spec = data("shard-sweep.toml");
    let local = temp_dir("slurm-local");
    local_sweep(&spec, &local);
    let dir = temp_dir("slurm-array");
    let jobs = cluster.submit(&[
        "--spec",
        &spec,
        "--out",
        dir.to_str().unwrap(),
        "--tasks",
        "3",
    ]);
    let names: Vec<&str> = jobs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["grid", "best", "plot"]);
    let logs = dir.join("slurm");
    cluster.wait(
        &[id(&jobs, "grid"), id(&jobs, "best"), id(&jobs, "plot")],
        &logs,
    );
    assert_eq!(
        results_without_timing(&dir),
        results_without_timing(&local),
        "{}",
        logs_text(&logs)
    );
    for task in 1..=3 {
        let log = logs.join(format!("grid-{}_{task}.log", id(&jobs, "grid")));
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        assert_eq!(
            text.matches(": ok (final return").count(),
            4,
            "{}: {text}",
            log.display()
        );
    }
    for kind in ["learning", "alpha", "runs"] {
        let figure = dir.join(format!("plots/{kind}-bimodal-bandit.png"));
        assert!(
            figure.exists(),
            "{} missing\n{}",
            figure.display(),
            logs_text(&logs)
        );
    }

    // A task cancelled mid-run leaves its run resumable; submitted again, the sweep ends as
    // the uninterrupted one, training only what was missing.
    let spec = data("cancel-sweep.toml");
    let local = temp_dir("slurm-cancel-local");
    local_sweep(&spec, &local);
    let dir = temp_dir("slurm-cancel");
    let args = [
        "--spec",
        spec.as_str(),
        "--out",
        dir.to_str().unwrap(),
        "--tasks",
        "3",
    ];
    let first = cluster.submit(&args);
    let grid = id(&first, "grid");
    // Task 1 trains run 1 of 3 (seed 0): cancel it once it has a checkpoint.
    let run = dir.join(
        "runs/grid__shaped-pendulum__rep-squashed-k1__alpha-0.01__lr-adefault-cdefault__seed-0",
    );
    let started = Instant::now();
    while !run.join("checkpoint").exists() {
        assert!(
            !run.join("summary.json").exists() && started.elapsed() < Duration::from_secs(300),
            "no checkpoint to cancel at\n{}",
            logs_text(&dir.join("slurm"))
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = cluster.output("scancel", &[&format!("{grid}_1")]);
    assert!(out.status.success(), "{out:?}");
    cluster.wait(&[grid], &dir.join("slurm"));
    assert!(
        !run.join("summary.json").exists(),
        "the run finished before it was cancelled: too late to test resuming"
    );
    assert!(run.join("checkpoint").exists());
    // The figures of the first submission wait on a grid that did not succeed: never.
    let plot = id(&first, "plot");
    let started = Instant::now();
    loop {
        let queued = cluster.queued(&[plot]);
        if queued
            .iter()
            .any(|l| l.contains("DependencyNeverSatisfied"))
        {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{queued:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(cluster.output("scancel", &[plot]).status.success());
    let finished_before: Vec<(PathBuf, Vec<u8>)> = ["seed-1", "seed-2"]
        .iter()
        .map(|s| {
            run.with_file_name(
                run.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .replace("seed-0", s),
            )
        })
        .map(|r| (r.clone(), std::fs::read(r.join("summary.json")).unwrap()))
        .collect();

    let second = cluster.submit(&args);
    cluster.wait(
        &[id(&second, "grid"), id(&second, "plot")],
        &dir.join("slurm"),
    );
    assert_eq!(
        results_without_timing(&dir),
        results_without_timing(&local),
        "{}",
        logs_text(&dir.join("slurm"))
    );
    for (run, summary) in finished_before {
        assert_eq!(
            std::fs::read(run.join("summary.json")).unwrap(),
            summary,
            "{} ran again",
            run.display()
        );
    }
    let log = dir.join(format!("slurm/grid-{}_2.log", id(&second, "grid")));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("1 runs already finished, skipped"), "{text}");
}

/// Values that reach the scripts are quoted (paths) or refused (#SBATCH values): a mixsac
/// path and a spec name made of spaces, `;`, `$(…)`, quotes and a newline run no command,
/// and the script they are in still does its work when run by bash as Slurm would.
#[test]
fn hostile_values_cannot_run_a_command() {
    let dir = temp_dir("slurm-hostile");
    let odd = dir.join("bin dir; touch MARK $(touch MARK) `touch MARK` ' \" \n x");
    std::fs::create_dir_all(&odd).unwrap();
    let marker = odd.join("MARK");
    let mixsac_copy = odd.join("mix sac'$(touch MARK)");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_mixsac"), &mixsac_copy).unwrap();
    let spec = odd.join("a b;$(touch MARK)'\".toml");
    std::fs::write(
        &spec,
        "envs = [\"bimodal-bandit\"]\nseeds = [0, 1]\n[[methods]]\npolicy = \"squashed\"\nestimator = \"rep\"\n\
         [train]\nsteps = 100\nlog_every = 50\n",
    )
    .unwrap();
    let sweep = dir.join("sweep");
    let out = common::mixsac_ok(&[
        "slurm",
        "--spec",
        spec.to_str().unwrap(),
        "--out",
        sweep.to_str().unwrap(),
        "--tasks",
        "2",
        "--mixsac",
        mixsac_copy.to_str().unwrap(),
    ]);
    drop(out);
    let grid = sweep.join("slurm/grid.sbatch");
    let text = std::fs::read_to_string(&grid).unwrap();
    assert!(
        text.contains("#SBATCH --job-name=mixsac-a_b___touch_MARK___-grid\n"),
        "{text}"
    );
    // Run by bash as the array's tasks would be, from inside the odd folder.
    for task in ["1", "2"] {
        let out = Command::new("bash")
            .arg(&grid)
            .current_dir(&odd)
            .env("SLURM_ARRAY_TASK_ID", task)
            .env("SLURM_CPUS_PER_TASK", "1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let plot = Command::new("bash")
        .arg(sweep.join("slurm/plot.sbatch"))
        .current_dir(&odd)
        .output()
        .unwrap();
    assert!(
        plot.status.success(),
        "{}",
        String::from_utf8_lossy(&plot.stderr)
    );
    assert_eq!(results_without_timing(&sweep).len(), 2);
    assert!(!marker.exists(), "a value ran a command");
    let stray: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(stray.len(), 2, "{stray:?}");

    // #SBATCH values and a sweep directory Slurm cannot take are refused, naming the flag;
    // nothing is written.
    for (flag, value) in [
        ("--partition", "debug; touch MARK"),
        ("--account", "$(touch MARK)"),
        ("--time", "1:00\n#SBATCH --uid=0"),
        ("--mem", "4G'"),
        ("--gpus", "1 \"x\""),
        ("--out", "/tmp/with space/sweep"),
    ] {
        let fresh = dir.join(format!("refused{flag}"));
        let out_dir = if flag == "--out" {
            value.to_string()
        } else {
            fresh.to_string_lossy().into_owned()
        };
        let mut args = vec![
            "slurm",
            "--spec",
            spec.to_str().unwrap(),
            "--tasks",
            "1",
            "--out",
            &out_dir,
        ];
        if flag != "--out" {
            args.extend([flag, value]);
        }
        let out = mixsac(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success()
                && stderr.contains(&format!("{flag} "))
                && stderr.contains("cannot go into an #SBATCH line"),
            "{flag} {value:?}: {stderr}"
        );
        assert!(!Path::new(&out_dir).exists(), "{out_dir} was written");
    }
    assert!(!marker.exists());
}

#[test]
fn slurm_arguments_are_checked() {
    let spec = data("shard-sweep.toml");
    let dir = temp_dir("slurm-args");
    let out_dir = dir.to_str().unwrap();
    let cases: [(&[&str], &str); 5] = [
        (
            &["--tasks", "0"],
            "invalid value '0' for '--tasks <TASKS>': 0 is not in 1..",
        ),
        (
            &["--tasks", "13"],
            "--tasks 13 is more than the 12 runs of the grid: use at most 12",
        ),
        (
            &["--tasks", "2", "--cpus-per-task", "0"],
            "invalid value '0' for '--cpus-per-task",
        ),
        (
            &["--tasks", "2", "--mixsac", "/nowhere/mixsac"],
            "--mixsac /nowhere/mixsac: no such file",
        ),
        (&[], "the following required arguments were not provided"),
    ];
    for (extra, message) in cases {
        let mut args = vec!["slurm", "--spec", &spec, "--out", out_dir];
        args.extend_from_slice(extra);
        let out = mixsac(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains(message),
            "{extra:?}: {stderr}"
        );
    }
    assert!(!dir.exists());
    // A directory holding another spec's sweep is refused at submission.
    common::mixsac_ok(&["slurm", "--spec", &spec, "--out", out_dir, "--tasks", "2"]);
    let out = mixsac(&[
        "slurm",
        "--spec",
        &data("kill-sweep.toml"),
        "--out",
        out_dir,
        "--tasks",
        "2",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("holds a sweep of another spec"),
        "{stderr}"
    );
}
