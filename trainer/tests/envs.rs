//! Environments: bandit rewards (f64 and tensor forms), bad actions, clipping, cut-offs,
//! and the reward formulas of DESIGN.md §6. Dynamics conformance with Gymnasium is checked
//! by scripts/gym_conformance.py against the shipped binary.

use candle_core::{DType, Device, Tensor, Var};
use rand::SeedableRng;
use trainer::envs::{self, Bandit, EnvError, EnvId, Family};

fn rng() -> rand_pcg::Pcg64 {
    rand_pcg::Pcg64::seed_from_u64(7)
}

#[test]
fn every_listed_environment_can_be_made() {
    for id in EnvId::builtin() {
        let env = id.make(&Default::default()).unwrap();
        assert!(
            env.obs_dim() > 0 && env.action_dim() == 1 && env.spec().cutoff > 0,
            "{id}"
        );
        // Every name prints as it parses.
        assert_eq!(id.to_string().parse::<EnvId>().unwrap(), id);
    }
    for bad in [
        "Pendulum-v1",
        "random-bandit:",
        "random-bandit:x",
        "random-bandit:-1",
        "",
    ] {
        assert!(
            matches!(envs::make(bad), Err(EnvError::Unknown(_))),
            "{bad}"
        );
        // Parsing a name (which builds nothing) agrees with `make`.
        assert!(
            matches!(bad.parse::<EnvId>(), Err(EnvError::Unknown(_))),
            "{bad}"
        );
    }
    let families = [
        ("shaped-acrobot", Family::ClassicControl),
        ("random-bandit:12", Family::Bandit),
        ("bimodal-bandit", Family::Bandit),
        ("gym:Hopper-v5", Family::Gym),
    ];
    for (name, family) in families {
        let id: EnvId = name.parse().unwrap();
        assert_eq!((id.family(), id.to_string().as_str()), (family, name));
        assert_eq!(id.bandit().is_some(), family == Family::Bandit, "{name}");
    }
    assert_eq!(
        EnvId::parse_range("random-bandit:3..5").unwrap(),
        [EnvId::RandomBandit(3), EnvId::RandomBandit(4)]
    );
    assert!(matches!(
        EnvId::parse_range("random-bandit:5..x"),
        Err(EnvError::BadRange(_))
    ));
}

#[test]
fn bandit_rewards_peak_at_exactly_one() {
    // On a grid of 1e6 + 1 points (spacing 6e-6) the maximum is 1 to within what the
    // narrowest possible peak (s = 0.1) can lose between grid points: δ²/(2s²) < 2e-9.
    let mut bandits = vec![Bandit::bimodal()];
    bandits.extend((0..5).map(Bandit::random));
    for bandit in bandits {
        let n = 1_000_000;
        let max = (0..=n)
            .map(|i| bandit.reward(-3.0 + 6.0 * i as f64 / n as f64))
            .fold(f64::MIN, f64::max);
        assert!((1.0 - 2e-9..=1.0 + 1e-12).contains(&max), "max {max}");
    }
}

#[test]
fn bimodal_bandit_is_the_documented_function() {
    let b = Bandit::bimodal();
    let unscaled = |a: f64| (-2.0 * (a + 1.0).powi(2)).exp() + (-2.0 * (a - 1.0).powi(2)).exp();
    // Symmetric with peaks near ±1; ratios between points are those of the unscaled sum.
    assert!((b.reward(0.7) - b.reward(-0.7)).abs() < 1e-15);
    assert!((b.reward(0.0) / b.reward(1.0) - unscaled(0.0) / unscaled(1.0)).abs() < 1e-12);
    assert!(b.reward(1.0) > 0.99 && b.reward(0.0) < 0.3);
    let components: Vec<(f64, f64)> = b.components().collect();
    assert_eq!(components, vec![(-1.0, 0.5), (1.0, 0.5)]);
}

#[test]
fn random_bandits_follow_their_recipe_and_their_seed() {
    for seed in [0, 1, 42, u64::MAX] {
        let b = Bandit::random(seed);
        let c: Vec<(f64, f64)> = b.components().collect();
        assert_eq!(c.len(), 30);
        assert!(
            c.iter()
                .all(|&(m, s)| (-3.0..=3.0).contains(&m) && (0.1..=1.0).contains(&s)),
            "{c:?}"
        );
        assert_eq!(b, Bandit::random(seed), "same seed, same bandit");
        assert_eq!(
            Some(b.clone()),
            format!("random-bandit:{seed}")
                .parse::<EnvId>()
                .unwrap()
                .bandit()
        );
        assert_ne!(
            b,
            Bandit::random(seed.wrapping_add(1)),
            "different seeds differ"
        );
    }
}

#[test]
fn tensor_reward_equals_the_f64_reward_and_has_its_gradient() {
    let device = Device::Cpu;
    for bandit in [Bandit::bimodal(), Bandit::random(3)] {
        let actions: Vec<f64> = (0..61).map(|i| -3.0 + 0.1 * i as f64).collect();
        // f64 tensors: equal to rounding.
        let a = Var::from_vec(actions.clone(), (61, 1), &device).unwrap();
        let r = bandit.reward_tensor(a.as_tensor()).unwrap();
        let values: Vec<f64> = r.flatten_all().unwrap().to_vec1().unwrap();
        for (&x, &v) in actions.iter().zip(&values) {
            assert!(
                (v - bandit.reward(x)).abs() < 1e-12,
                "r({x}) = {v} vs {}",
                bandit.reward(x)
            );
        }
        // Gradient of Σ r(a_i) w.r.t. each a_i is r'(a_i): compare with central differences.
        let grads = r.sum_all().unwrap().backward().unwrap();
        let g: Vec<f64> = grads
            .get(&a)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        for (&x, &gx) in actions.iter().zip(&g).filter(|(x, _)| x.abs() < 2.95) {
            let h = 1e-6;
            let numeric = (bandit.reward(x + h) - bandit.reward(x - h)) / (2.0 * h);
            assert!(
                (gx - numeric).abs() < 1e-6 * numeric.abs().max(1.0),
                "r'({x}) = {gx} vs {numeric}"
            );
        }
        // f32 tensors of shape [B], as the trainer uses them.
        let a32 = Tensor::from_vec(
            actions.iter().map(|&x| x as f32).collect::<Vec<_>>(),
            61,
            &device,
        )
        .unwrap();
        let r32: Vec<f32> = bandit.reward_tensor(&a32).unwrap().to_vec1().unwrap();
        assert_eq!(bandit.reward_tensor(&a32).unwrap().dtype(), DType::F32);
        for (&x, &v) in actions.iter().zip(&r32) {
            assert!(
                (f64::from(v) - bandit.reward(x)).abs() < 1e-5,
                "f32 r({x}) = {v}"
            );
        }
    }
}

#[test]
fn bad_actions_are_errors_and_leave_the_state_alone() {
    for name in ["pendulum", "acrobot", "mountaincar", "bimodal-bandit"] {
        let mut env = envs::make(name).unwrap();
        let mut obs = vec![0.0f32; env.obs_dim()];
        env.reset(&mut rng(), &mut obs).unwrap();
        env.step(&[0.3], &mut obs).unwrap();
        let (state, before) = (env.state(), obs.clone());
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let err = env.step(&[bad], &mut obs).unwrap_err();
            assert!(
                matches!(err, EnvError::NonFiniteAction { index: 0, .. }),
                "{name}: {err}"
            );
        }
        let err = env.step(&[0.1, 0.2], &mut obs).unwrap_err();
        assert!(
            matches!(
                err,
                EnvError::ActionLength {
                    expected: 1,
                    found: 2,
                    ..
                }
            ),
            "{name}: {err}"
        );
        assert_eq!(
            (env.state(), obs.clone()),
            (state, before),
            "{name}: state changed"
        );
    }
}

#[test]
fn actions_are_clipped_to_the_bounds() {
    for (name, high) in [
        ("shaped-pendulum", 2.0),
        ("shaped-acrobot", 1.0),
        ("shaped-mountaincar", 1.0),
        ("random-bandit:4", 3.0),
    ] {
        let run = |a: f64| {
            let mut env = envs::make(name).unwrap();
            let mut obs = vec![0.0f32; env.obs_dim()];
            env.reset(&mut rng(), &mut obs).unwrap();
            let t = env.step(&[a], &mut obs).unwrap();
            (env.state(), obs, t)
        };
        assert_eq!(run(high * 10.0), run(high), "{name}");
        assert_eq!(run(-high - 0.5), run(-high), "{name}");
        assert_ne!(run(high), run(-high), "{name}: the action matters");
    }
}

#[test]
fn the_cut_off_truncates_and_never_terminates() {
    for (name, cutoff) in [
        ("pendulum", 200),
        ("shaped-pendulum", 200),
        ("acrobot", 1000),
        ("mountaincar", 1000),
    ] {
        let mut env = envs::make(name).unwrap();
        let mut obs = vec![0.0f32; env.obs_dim()];
        env.reset(&mut rng(), &mut obs).unwrap();
        // Zero torque keeps pendulum, acrobot and car away from their goals.
        for step in 1..=cutoff {
            let t = env.step(&[0.0], &mut obs).unwrap();
            assert!(!t.terminated, "{name} step {step}");
            assert_eq!(t.truncated, step == cutoff, "{name} step {step}");
        }
        env.reset(&mut rng(), &mut obs).unwrap();
        assert!(
            !env.step(&[0.0], &mut obs).unwrap().truncated,
            "{name}: reset restarts the count"
        );
    }
}

#[test]
fn rewards_follow_their_definitions() {
    let mut obs = vec![0.0f32; 6];
    // Unshaped pendulum: 1 within 0.25 rad of upright (angles wrap), judged before the step.
    let mut p = envs::make("pendulum").unwrap();
    for (theta, reward) in [
        (0.2, 1.0),
        (-0.24, 1.0),
        (0.3, 0.0),
        (2.0 * std::f64::consts::PI + 0.1, 1.0),
        (3.0, 0.0),
    ] {
        p.reset_to(&[theta, 0.0], &mut obs[..3]).unwrap();
        assert_eq!(
            p.step(&[0.0], &mut obs[..3]).unwrap().reward,
            reward,
            "theta {theta}"
        );
    }
    // Shaped pendulum: Gymnasium's cost with the torque after clipping.
    let mut p = envs::make("shaped-pendulum").unwrap();
    p.reset_to(&[0.5, -1.0], &mut obs[..3]).unwrap();
    let r = p.step(&[3.0], &mut obs[..3]).unwrap().reward;
    assert!((r + (0.25 + 0.1 + 0.001 * 4.0)).abs() < 1e-12, "{r}");
    // Acrobot: −1 per step, 0 on the terminal step; shaped: height − 1 after the step.
    let mut a = envs::make("acrobot").unwrap();
    a.reset_to(&[0.0, 0.0, 0.0, 0.0], &mut obs).unwrap();
    assert_eq!(a.step(&[1.0], &mut obs).unwrap().reward, -1.0);
    a.reset_to(&[3.0, 0.0, 0.0, 0.0], &mut obs).unwrap(); // nearly inverted: tip above the goal line
    let t = a.step(&[0.0], &mut obs).unwrap();
    assert!(t.terminated && t.reward == 0.0, "{t:?}");
    let mut s = envs::make("shaped-acrobot").unwrap();
    s.reset_to(&[0.4, -0.3, 0.1, 0.2], &mut obs).unwrap();
    let t = s.step(&[0.5], &mut obs).unwrap();
    let st = s.state();
    assert!((t.reward - (-st[0].cos() - (st[0] + st[1]).cos() - 1.0)).abs() < 1e-15);
    // Mountain car: −1 per step; shaped: x − 0.6 with x after the step; goal terminates.
    let mut m = envs::make("mountaincar").unwrap();
    m.reset_to(&[-0.5, 0.0], &mut obs[..2]).unwrap();
    assert_eq!(m.step(&[1.0], &mut obs[..2]).unwrap().reward, -1.0);
    m.reset_to(&[0.449, 0.01], &mut obs[..2]).unwrap();
    let t = m.step(&[1.0], &mut obs[..2]).unwrap();
    assert!(t.terminated && t.reward == -1.0, "{t:?}");
    let mut m = envs::make("shaped-mountaincar").unwrap();
    m.reset_to(&[-0.5, 0.01], &mut obs[..2]).unwrap();
    let r = m.step(&[0.2], &mut obs[..2]).unwrap().reward;
    assert!((r - (m.state()[0] - 0.6)).abs() < 1e-15);
    // Bandits: one step, terminal, reward r(a).
    let mut b = envs::make("random-bandit:9").unwrap();
    b.reset(&mut rng(), &mut obs[..1]).unwrap();
    let t = b.step(&[0.7], &mut obs[..1]).unwrap();
    assert!(
        t.terminated && !t.truncated && t.reward == Bandit::random(9).reward(0.7),
        "{t:?}"
    );
}

#[test]
fn start_states_follow_the_paper() {
    let mut r = rng();
    let mut obs = vec![0.0f32; 6];
    for _ in 0..200 {
        let mut p = envs::make("pendulum").unwrap();
        p.reset(&mut r, &mut obs[..3]).unwrap();
        let s = p.state();
        assert!(
            s[0].abs() <= std::f64::consts::PI && s[1].abs() <= 1.0,
            "{s:?}"
        );
        let mut m = envs::make("mountaincar").unwrap();
        m.reset(&mut r, &mut obs[..2]).unwrap();
        let s = m.state();
        assert!((-0.6..=-0.4).contains(&s[0]) && s[1] == 0.0, "{s:?}");
    }
    let mut a = envs::make("acrobot").unwrap();
    a.reset(&mut r, &mut obs).unwrap();
    assert_eq!(a.state(), vec![0.0; 4]);
    assert_eq!(obs, vec![1.0, 0.0, 1.0, 0.0, 0.0, 0.0]);
}

#[test]
fn bad_states_are_refused() {
    let mut p = envs::make("pendulum").unwrap();
    let mut obs = vec![0.0f32; 3];
    assert!(matches!(
        p.reset_to(&[0.1], &mut obs),
        Err(EnvError::BadState { expected: 2, .. })
    ));
    assert!(matches!(
        p.reset_to(&[0.1, f64::NAN], &mut obs),
        Err(EnvError::BadState { .. })
    ));
}
