//! `mixsac slurm`: write (and with `--submit`, submit) the Slurm jobs of a sweep: the grid
//! as a job array, the reruns of its best settings and the figures as jobs that wait for
//! it. The scripts are in OUT/slurm/; see trainer::slurm.

use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use trainer::slurm::{self, Plan, Resources};
use trainer::{sweep, SweepDir};

#[derive(clap::Args)]
pub struct Args {
    /// The sweep spec (TOML); copied to OUT/spec.toml, which the jobs read.
    #[arg(long)]
    spec: PathBuf,
    /// The sweep directory, on a filesystem every node sees [default: runs/<spec file name>].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Tasks of the grid's job array (each trains 1/N of the grid); the reruns use as many,
    /// or fewer if there are fewer reruns.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    tasks: u32,
    /// Cores per task: the runs each task trains at once (one thread per run).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    cpus_per_task: u32,
    /// Slurm partition(s), comma-separated [default: the cluster's].
    #[arg(long)]
    partition: Option<String>,
    /// Time limit per task, [days-]hours:minutes:seconds [default: the partition's].
    #[arg(long)]
    time: Option<String>,
    /// Memory per task, e.g. 4G [default: the cluster's].
    #[arg(long)]
    mem: Option<String>,
    /// Account to charge [default: yours].
    #[arg(long)]
    account: Option<String>,
    /// GPUs per task of the grid and reruns, e.g. 1 or a100:1 (for specs with device = "cuda").
    #[arg(long)]
    gpus: Option<String>,
    /// The mixsac the nodes run, on the shared filesystem [default: this one].
    #[arg(long)]
    mixsac: Option<PathBuf>,
    /// Submit the jobs (OUT/slurm/submit.sh, which calls sbatch) and print their ids.
    #[arg(long)]
    submit: bool,
}

pub fn run(args: Args) -> Result<()> {
    // A bad spec fails here, at submission, not on the cluster: every run's config is
    // resolved and checked.
    let spec = sweep::Spec::read(&args.spec)?;
    let text = std::fs::read_to_string(&args.spec)?;
    let grid = spec.grid()?;
    let tasks = args.tasks as usize;
    if tasks > grid.len() {
        bail!(
            "--tasks {tasks} is more than the {} runs of the grid: use at most {}",
            grid.len(),
            grid.len()
        );
    }
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs").join(args.spec.file_stem().unwrap_or_default()));
    let mixsac = match &args.mixsac {
        Some(path) => std::path::absolute(path)?,
        None => std::env::current_exe().context("cannot find this mixsac's path: give --mixsac")?,
    };
    if !mixsac.is_file() {
        bail!("--mixsac {}: no such file", mixsac.display());
    }
    let plan = Plan {
        sweep: std::path::absolute(&out)?,
        mixsac,
        name: args
            .spec
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned(),
        grid_tasks: tasks,
        best_tasks: tasks.min(spec.reruns_upper_bound()?),
        resources: Resources {
            partition: args.partition,
            time: args.time,
            cpus_per_task: args.cpus_per_task,
            mem: args.mem,
            account: args.account,
            gpus: args.gpus,
        },
    };
    // Every value is checked before the directory is touched.
    plan.array_script("grid", plan.grid_tasks)?;
    plan.plot_script()?;
    let dir = SweepDir::new(&plan.sweep);
    dir.claim(&text)?;
    let scripts = slurm::write_scripts(&plan)?;
    eprintln!(
        "{} grid runs in {tasks} tasks of {} core(s){}; scripts in {}",
        grid.len(),
        args.cpus_per_task,
        if plan.best_tasks > 0 {
            format!(
                ", then {} reruns in {} tasks",
                spec.reruns_upper_bound()?,
                plan.best_tasks
            )
        } else {
            String::new()
        },
        dir.slurm().display()
    );
    if !args.submit {
        eprintln!("submit with: bash {}", scripts.submit.display());
        return Ok(());
    }
    let output = std::process::Command::new("bash")
        .arg(&scripts.submit)
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| "cannot run bash")?;
    print!("{}", String::from_utf8_lossy(&output.stdout));
    if !output.status.success() {
        bail!(
            "{} failed ({}){}",
            scripts.submit.display(),
            output.status,
            if which_sbatch() {
                ""
            } else {
                ": sbatch is not on PATH (is this a Slurm login node?)"
            }
        );
    }
    eprintln!(
        "logs in {}; results in {}",
        dir.slurm().display(),
        dir.results().display()
    );
    Ok(())
}

fn which_sbatch() -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|p| p.join("sbatch").is_file()))
}
