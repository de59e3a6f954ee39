//! The fused draw of a single squashed Gaussian (`MixturePolicy::draw_action`, K = 1 on the
//! CPU) against the composition of candle operations it replaces (`rsample`, `squash`,
//! `log_prob_u`): the same random draws, the same action and log π bits, and the same
//! parameter gradients up to the order of roundings.

use candle_core::{Device, Tensor};
use policy_core::format::{Activation, Header};
use rand::{Rng, SeedableRng};
use trainer::{to_f32_vec, MixturePolicy};

fn policy(obs_dim: usize, action_dim: usize, members: usize) -> MixturePolicy {
    let low: Vec<f32> = (0..action_dim).map(|d| -1.0 - d as f32).collect();
    let high: Vec<f32> = (0..action_dim).map(|d| 2.0 + 0.5 * d as f32).collect();
    let spec = Header::new(
        obs_dim,
        &[16, 16],
        action_dim,
        1,
        Activation::Relu,
        true,
        (-5.0, 2.0),
        &low,
        &high,
    )
    .unwrap()
    .into_owned();
    let mut rngs: Vec<_> = (0..members)
        .map(|m| rand_pcg::Pcg64::seed_from_u64(10 + m as u64))
        .collect();
    MixturePolicy::new(spec, &mut rngs, &Device::Cpu).unwrap()
}

/// Σ action ⊙ W_a + Σ log π ⊙ W_l for fixed random weights: a loss that reaches both
/// outputs.
fn loss(action: &Tensor, log_prob: &Tensor, seed: u64) -> Tensor {
    let mut rng = rand_pcg::Pcg64::seed_from_u64(seed);
    let mut weights = |t: &Tensor| {
        let w: Vec<f32> = (0..t.elem_count())
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        Tensor::from_vec(w, t.shape(), t.device()).unwrap()
    };
    let (wa, wl) = (weights(action), weights(log_prob));
    ((action * wa).unwrap().sum_all().unwrap() + (log_prob * wl).unwrap().sum_all().unwrap())
        .unwrap()
}

fn bits(t: &Tensor) -> Vec<u32> {
    to_f32_vec(t).unwrap().iter().map(|x| x.to_bits()).collect()
}

#[test]
fn the_fused_draw_matches_the_composition() {
    let batch = 64;
    for (obs_dim, action_dim, members) in [(3, 1, 1), (5, 3, 2), (2, 6, 3)] {
        let p = policy(obs_dim, action_dim, members);
        let mut rng = rand_pcg::Pcg64::seed_from_u64(99);
        let obs: Vec<f32> = (0..members * batch * obs_dim)
            .map(|_| rng.random_range(-2.0..2.0))
            .collect();
        let obs = Tensor::from_vec(obs, (members, batch, obs_dim), &Device::Cpu).unwrap();
        let heads = p.heads(&obs).unwrap();
        assert!(p.fuses_draws(&heads));
        let draw_rngs = || -> Vec<rand_pcg::Pcg64> {
            (0..members)
                .map(|m| rand_pcg::Pcg64::seed_from_u64(500 + m as u64))
                .collect()
        };

        let mut fused_rngs = draw_rngs();
        let (action, log_prob) = p.draw_action(&heads, &mut fused_rngs).unwrap();
        let mut composed_rngs = draw_rngs();
        let u = p.rsample(&heads, &mut composed_rngs).unwrap().u;
        let (want_action, want_log_prob) =
            (p.squash(&u).unwrap(), p.log_prob_u(&heads, &u).unwrap());

        let shape = format!("obs {obs_dim}, actions {action_dim}, members {members}");
        assert_eq!(action.dims(), want_action.dims(), "{shape}");
        assert_eq!(log_prob.dims(), want_log_prob.dims(), "{shape}");
        assert_eq!(bits(&action), bits(&want_action), "{shape}: actions");
        assert_eq!(bits(&log_prob), bits(&want_log_prob), "{shape}: log π");
        for (f, c) in fused_rngs.iter_mut().zip(&mut composed_rngs) {
            assert_eq!(
                f.random::<u64>(),
                c.random::<u64>(),
                "{shape}: the same draws were taken"
            );
        }

        let fused = loss(&action, &log_prob, 7).backward().unwrap();
        let composed = loss(&want_action, &want_log_prob, 7).backward().unwrap();
        let mut reached = 0;
        for (name, var) in p.named_vars() {
            let (Some(f), Some(c)) = (fused.get(var.as_tensor()), composed.get(var.as_tensor()))
            else {
                assert!(
                    fused.get(var.as_tensor()).is_none() && composed.get(var.as_tensor()).is_none(),
                    "{shape}: {name} has a gradient on one side only"
                );
                continue;
            };
            reached += 1;
            let (f, c) = (to_f32_vec(f).unwrap(), to_f32_vec(c).unwrap());
            // Both are sums of the same terms rounded in another order; at these scales
            // (σ within e^±2, 64 rows) a few hundred roundings of 2⁻²⁴ relative to the
            // largest term: 1e-5 of the gradient's largest entry.
            let scale = c.iter().fold(0f32, |m, x| m.max(x.abs()));
            let worst = f
                .iter()
                .zip(&c)
                .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
            assert!(scale > 0.0, "{shape}: {name}'s gradient is zero");
            assert!(
                worst <= 1e-5 * scale,
                "{shape}: {name} differs by {worst:e} (largest entry {scale:e})"
            );
        }
        // The trunk's two layers and the mean and log σ heads (K = 1: no logits).
        assert_eq!(reached, 8, "{shape}");
    }
}
