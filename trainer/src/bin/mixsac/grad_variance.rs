//! `mixsac grad-variance`: the actor gradient estimators' variance and bias at fixed
//! parameters.

use anyhow::Result;
use std::path::PathBuf;
use std::time::Instant;
use trainer::grad_variance::{self, exact::Quadrature, Options};

#[derive(clap::Args)]
pub struct Args {
    /// Output directory (grad-variance.csv, grad-variance.png and .svg).
    #[arg(long)]
    out: PathBuf,
    /// Independent gradient draws per estimator and setting.
    #[arg(long, default_value_t = 1000)]
    draws: usize,
    /// States per draw, the same for every estimator.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Seed of the bandit policies' initialisation, the checkpoints' states and every draw.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// A run directory to measure at its latest checkpoint (actor and critic frozen, states
    /// drawn from its replay buffer); repeatable.
    #[arg(long, value_name = "RUN_DIR")]
    checkpoint: Vec<PathBuf>,
    /// Entropy scales of the bimodal bandit.
    #[arg(long, value_delimiter = ',', default_value = "0.05,0.2,0.4")]
    alphas: Vec<f64>,
    /// Random bandits (their seeds) to measure.
    #[arg(long, value_delimiter = ',', default_value = "1,2,3")]
    random_bandits: Vec<u64>,
    /// Entropy scale of the random bandits.
    #[arg(long, default_value_t = 0.1)]
    random_alpha: f64,
    /// The bandits' parameter points, as training updates from the initialisation (0: the
    /// initialisation itself); each bandit is measured at every point.
    #[arg(long, value_delimiter = ',', default_value = "0,300,1000")]
    updates: Vec<usize>,
    /// Measure the --checkpoint runs only, no bandits.
    #[arg(long)]
    no_bandits: bool,
    /// Panels of the quadrature rule for the exact gradient (checked against twice as many;
    /// more panels cost time, not memory: they are differentiated a run at a time).
    #[arg(long, default_value_t = Quadrature::DEFAULT.panels)]
    panels: usize,
}

pub fn run(args: Args) -> Result<()> {
    let options = Options {
        draws: args.draws,
        batch: args.batch_size,
        seed: args.seed,
        bimodal_alphas: if args.no_bandits { vec![] } else { args.alphas },
        random_bandits: if args.no_bandits {
            vec![]
        } else {
            args.random_bandits
        },
        random_alpha: args.random_alpha,
        updates: args.updates,
        checkpoints: args.checkpoint,
        quadrature: Quadrature {
            panels: args.panels,
        },
    };
    let start = Instant::now();
    let rows = grad_variance::run_study(&options, &args.out, |line| eprintln!("{line}"))?;
    eprintln!(
        "wrote {0}/grad-variance.csv ({1} rows), {0}/grad-variance.png and {0}/grad-variance.svg in {2:.1} s",
        args.out.display(),
        rows.len(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
