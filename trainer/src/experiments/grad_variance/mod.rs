//! The variance and bias of the actor gradient estimators at fixed policy parameters (issue
//! 18; the later version of the paper claims that its marginalised reparameterisation `mrp`
//! has lower gradient variance than the likelihood ratio `like`). For every subject (a
//! policy held fixed, its critic and one batch of states, [`subjects`]) and every estimator
//! case ([`cases`]), the gradient of the estimator's loss is drawn N times with independent
//! randomness; the draws' mean and total variance ([`moments`]) are compared with the exact
//! gradient, by quadrature where the action is one-dimensional ([`exact`]). Writes
//! `grad-variance.csv` (its rows: `table`) and the figure `grad-variance.{png,svg}`
//! (`figure`).

pub mod cases;
pub mod exact;
mod figure;
pub mod moments;
pub mod subjects;
mod table;

use crate::envs::EnvId;
use crate::nn::to_f32_vec;
use crate::sac::actor::MixturePolicy;
use crate::sac::estimators::actor_loss;
use anyhow::{Context, Result};
use candle_core::backprop::GradStore;
use cases::Case;
use exact::Quadrature;
use moments::Moments;
use std::path::{Path, PathBuf};
use std::time::Instant;
use subjects::Subject;
pub use table::{Row, CSV_HEADER, NO_EXACT};

/// What to measure.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// Independent gradient draws per estimator and subject.
    pub draws: usize,
    /// States per draw (a bandit's are copies of its one state).
    pub batch: usize,
    /// Seed of the policies' initialisation, the states and every draw.
    pub seed: u64,
    /// Entropy scales of the bimodal bandit.
    pub bimodal_alphas: Vec<f64>,
    /// Random bandits (their seeds) and the α they are measured at.
    pub random_bandits: Vec<u64>,
    pub random_alpha: f64,
    /// The bandits' parameter points: training updates before each (0: the initialisation).
    pub updates: Vec<usize>,
    /// Run directories measured at their latest checkpoint.
    pub checkpoints: Vec<PathBuf>,
    /// The quadrature rule of ∇J (compared with the rule of twice as many panels).
    pub quadrature: Quadrature,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            draws: 1000,
            batch: 32,
            seed: 0,
            bimodal_alphas: vec![0.05, 0.2, 0.4],
            random_bandits: vec![1, 2, 3],
            random_alpha: 0.1,
            updates: vec![0, 300, 1000],
            checkpoints: Vec::new(),
            quadrature: Quadrature::DEFAULT,
        }
    }
}

/// Options that cannot be measured, each naming the flag to fix.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OptionsError {
    #[error("--draws must be at least 2 (a variance needs two draws), got {0}")]
    Draws(usize),
    #[error("--batch-size must be at least 1")]
    Batch,
    #[error("--panels must be at least 1")]
    Panels,
    #[error("every α must be a number ≥ 0, got {0}")]
    Alpha(f64),
    #[error("--updates needs at least one parameter point (0: the initialisation)")]
    NoPoints,
    #[error("nothing to measure: no bandit and no --checkpoint")]
    NothingToMeasure,
}

impl Options {
    fn has_bandits(&self) -> bool {
        !(self.bimodal_alphas.is_empty() && self.random_bandits.is_empty())
    }

    pub fn validate(&self) -> std::result::Result<(), OptionsError> {
        if self.draws < 2 {
            return Err(OptionsError::Draws(self.draws));
        }
        if self.batch == 0 {
            return Err(OptionsError::Batch);
        }
        if self.quadrature.panels == 0 {
            return Err(OptionsError::Panels);
        }
        let mut alphas = self.bimodal_alphas.iter().chain([&self.random_alpha]);
        if let Some(&a) = alphas.find(|a| !(a.is_finite() && **a >= 0.0)) {
            return Err(OptionsError::Alpha(a));
        }
        match (self.has_bandits(), self.updates.is_empty()) {
            (true, true) => Err(OptionsError::NoPoints),
            (false, _) if self.checkpoints.is_empty() => Err(OptionsError::NothingToMeasure),
            _ => Ok(()),
        }
    }
}

/// The gradient of a loss with respect to the actor's parameters, flattened in the order of
/// [`MixturePolicy::named_vars`] (a parameter the loss does not reach counts as 0).
pub fn flat_gradient(policy: &MixturePolicy, grads: &GradStore) -> candle_core::Result<Vec<f64>> {
    let mut out = Vec::new();
    for (_, var) in policy.named_vars() {
        match grads.get(var.as_tensor()) {
            Some(g) => out.extend(to_f32_vec(g)?.into_iter().map(f64::from)),
            None => out.extend(std::iter::repeat_n(0.0, var.as_tensor().elem_count())),
        }
    }
    Ok(out)
}

/// `draws` gradients of `case`'s loss at `subject`, each with fresh randomness from `rng`.
/// The loss's gradient estimates −∇J.
pub fn measure(
    subject: &Subject,
    case: Case,
    draws: usize,
    rng: &mut rand_pcg::Pcg64,
) -> Result<Moments> {
    let policy = &subject.run.agent.actor;
    let settings = case.settings(&subject.estimator_settings());
    let mut moments = Moments::new(
        policy
            .named_vars()
            .iter()
            .map(|(_, v)| v.elem_count())
            .sum(),
    );
    for _ in 0..draws {
        let out = actor_loss(
            case.estimator(),
            policy,
            &subject.obs,
            subject.run.agent.critic(),
            &settings,
            std::slice::from_mut(rng),
        )?;
        moments.add(&flat_gradient(policy, &out.loss.sum_all()?.backward()?)?);
    }
    Ok(moments)
}

/// ∇J at `subject` by the refinement of `quadrature`, with its distance from the rule's own
/// (an estimate of the quadrature error); None where the action is not one-dimensional.
pub fn exact_gradient(
    subject: &Subject,
    quadrature: Quadrature,
) -> Result<Option<(Vec<f64>, f64)>> {
    let at = |q: Quadrature| {
        exact::objective(
            &subject.run.agent.actor,
            subject.run.agent.critic(),
            &subject.exact_obs,
            subject.alpha,
            q,
        )
    };
    let (Some(coarse), Some(fine)) = (at(quadrature)?, at(quadrature.refined())?) else {
        return Ok(None);
    };
    let error = coarse
        .gradient
        .iter()
        .zip(&fine.gradient)
        .map(|(a, b)| (a - b).powi(2))
        .sum::<f64>()
        .sqrt();
    Ok(Some((fine.gradient, error)))
}

/// A generator for the draws of one (subject, case), named by their labels: the same rows
/// come out whichever other settings a command measures, and differently named rows get
/// independent draws.
pub fn stream(seed: u64, label: &str) -> rand_pcg::Pcg64 {
    // FNV-1a: stable across Rust versions, unlike std's hasher.
    let hash = label.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    rand_pcg::Pcg64::new(u128::from(seed), u128::from(hash))
}

/// The subjects of `options`: each bandit at each of its parameter points, then each
/// checkpoint.
fn subjects(
    options: &Options,
    scratch: &Path,
    progress: &mut impl FnMut(&str),
) -> Result<Vec<Subject>> {
    let bandits = options
        .bimodal_alphas
        .iter()
        .map(|&a| (EnvId::BimodalBandit, a))
        .chain(
            options
                .random_bandits
                .iter()
                .map(|&id| (EnvId::RandomBandit(id), options.random_alpha)),
        );
    let mut all = Vec::new();
    for (env, alpha) in bandits {
        for &updates in &options.updates {
            progress(&format!(
                "preparing {env} α={alpha} after {updates} updates"
            ));
            all.extend(subjects::bandit(
                &env,
                alpha,
                updates,
                options.seed,
                options.batch,
                scratch,
            )?);
        }
    }
    for dir in &options.checkpoints {
        let mut rng = stream(options.seed, &format!("states of {}", dir.display()));
        all.push(subjects::checkpoint(dir, options.batch, &mut rng)?);
    }
    Ok(all)
}

/// Measures every estimator at every subject of `options` and writes `dir/grad-variance.csv`
/// and `dir/grad-variance.{png,svg}`; `progress` gets a line per estimator and subject.
pub fn run_study(
    options: &Options,
    dir: &Path,
    mut progress: impl FnMut(&str),
) -> Result<Vec<Row>> {
    options.validate()?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let scratch = dir.join("scratch-runs");
    let subjects = subjects(options, &scratch, &mut progress);
    let _ = std::fs::remove_dir_all(&scratch);
    let subjects = subjects?;
    let total: usize = subjects.iter().map(|s| s.cases.len()).sum();
    let mut rows = Vec::with_capacity(total);
    for subject in &subjects {
        let policy_std = subject.policy_std()?;
        let exact = exact_gradient(subject, options.quadrature)?;
        if exact.is_none() {
            progress(&format!(
                "{} {}: the action is {}-dimensional: {NO_EXACT} (variance only)",
                subject.setting, subject.point, subject.run.action_dim
            ));
        }
        for &case in &subject.cases {
            let start = Instant::now();
            // α is part of the name: the bimodal bandit's settings differ only in it, and
            // each setting needs draws of its own.
            let label = format!(
                "{} {} α={} {}",
                subject.setting,
                subject.point,
                subject.alpha,
                case.name()
            );
            let moments = measure(
                subject,
                case,
                options.draws,
                &mut stream(options.seed, &label),
            )?;
            // The losses estimate −∇J.
            let comparison = exact.as_ref().map(|(g, _)| {
                let negative: Vec<f64> = g.iter().map(|x| -x).collect();
                moments.compare(&negative)
            });
            let row = Row {
                setting: subject.setting.clone(),
                point: subject.point.clone(),
                alpha: subject.alpha,
                case,
                components: subject.run.config.components,
                policy_std,
                draws: options.draws,
                batch: options.batch,
                total_variance: moments.total_variance(),
                exact: comparison,
                quadrature_error: exact.as_ref().map(|(_, e)| *e),
            };
            progress(&format!(
                "[{}/{total}] {} {} α={}: {:<15} variance {:.3e}{} ({:.1} s)",
                rows.len() + 1,
                row.setting,
                row.point,
                row.alpha,
                case.name(),
                row.total_variance,
                comparison.map_or(String::new(), |c| format!(
                    ", relative {:.3e}, bias {:.3e} (noise {:.3e}), cosine {:.4}",
                    c.relative_variance, c.bias, c.bias_se, c.cosine
                )),
                start.elapsed().as_secs_f64()
            ));
            rows.push(row);
        }
    }
    table::write_csv(&rows, &dir.join("grad-variance.csv"))?;
    figure::draw(&rows, &dir.join("grad-variance"))?;
    Ok(rows)
}
