//! The `.mxp` format stays stable: the writer reproduces a committed version-1 file.

#[path = "../../policy-core/tests/common/mod.rs"]
mod oracle;

use policy_core::format::{write_policy, Activation, Header};
use policy_core::Policy;
use std::path::PathBuf;

fn golden_header() -> Header<'static> {
    Header::new(
        3,
        &[4, 4],
        1,
        2,
        Activation::Relu,
        true,
        (-20.0, 2.0),
        &[-2.0],
        &[2.0],
    )
    .unwrap()
}

/// Weights 0, 0.01, 0.02, … so every value is exact and visible in a hex dump.
fn golden_weights(h: &Header) -> Vec<f32> {
    (0..h.weight_count()).map(|i| i as f32 * 0.01).collect()
}

fn golden_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/golden-v1.mxp")
}

#[test]
fn the_writer_reproduces_the_committed_version_1_file_byte_for_byte() {
    // If this fails, the format changed: bump FORMAT_VERSION and keep reading old files,
    // or revert. For a deliberate new version, write its golden file with
    // `MIXPOLICY_WRITE_GOLDEN=1 cargo test -p mixpolicy-tests --test policy_file`.
    let h = golden_header();
    let bytes = write_policy(&h, &golden_weights(&h)).unwrap();
    if std::env::var_os("MIXPOLICY_WRITE_GOLDEN").is_some() {
        std::fs::write(golden_path(), &bytes).unwrap();
    }
    let committed = std::fs::read(golden_path()).expect("tests/data/golden-v1.mxp is committed");
    assert_eq!(bytes, committed);
}

/// (mode component, mode action, log π(mode action)) of a squashed policy with a 1-D action,
/// from policy-core's f64 oracle of DESIGN.md §3 (its test helpers, which evaluate the
/// documented weight layout independently of policy-core's evaluation code).
fn reference_mode(h: &Header, w: &[f32], obs: &[f64]) -> (usize, f64, f64) {
    let heads = oracle::reference_heads(h, w, obs);
    let (mean, log_std, logits) = (&heads.mean, &heads.log_std, &heads.logits);
    let k = (0..logits.len()).fold(0, |best, j| if logits[j] > logits[best] { j } else { best });
    let u = mean[k];
    let scale = f64::from(h.action_high.get(0).unwrap() - h.action_low.get(0).unwrap()) / 2.0;
    let bias = f64::from(h.action_high.get(0).unwrap() + h.action_low.get(0).unwrap()) / 2.0;
    let action = scale * u.tanh() + bias;
    let norm = logits.iter().map(|l| l.exp()).sum::<f64>().ln();
    let density: f64 = (0..logits.len())
        .map(|j| {
            let z = (u - mean[j]) / log_std[j].exp();
            (logits[j] - norm - 0.5 * z * z - log_std[j] - 0.5 * (2.0 * std::f64::consts::PI).ln())
                .exp()
        })
        .sum();
    let log_det = scale.ln() + (1.0 - u.tanh().powi(2)).ln();
    (k, action, density.ln() - log_det)
}

/// policy-core's mode action, its component and the log-prob of it match the oracle.
fn assert_matches_reference(policy: &Policy, h: &Header, w: &[f32], obs: &[f32]) {
    let obs64: Vec<f64> = obs.iter().map(|&x| f64::from(x)).collect();
    let (k_ref, a_ref, lp_ref) = reference_mode(h, w, &obs64);
    let mut a = [0.0];
    assert_eq!(policy.mode(obs, &mut a).unwrap(), k_ref, "{obs:?}");
    let lp = policy.log_prob(obs, &a).unwrap();
    assert!(
        (f64::from(a[0]) - a_ref).abs() <= 1e-5,
        "{obs:?}: {a:?} vs {a_ref}"
    );
    let tol = 1e-4 * lp_ref.abs().max(1.0);
    assert!(
        (f64::from(lp) - lp_ref).abs() <= tol,
        "{obs:?}: {lp} vs {lp_ref}"
    );
}

#[test]
fn the_committed_file_acts_as_the_documented_layout_says() {
    let committed = std::fs::read(golden_path()).unwrap();
    let policy = Policy::from_bytes(&committed).unwrap();
    let h = golden_header();
    let w = golden_weights(&h);
    for obs in [[0.5f32, -0.25, 1.0], [-1.0, 2.0, 0.0], [3.0, 1.0, -2.0]] {
        assert_matches_reference(&policy, &h, &w, &obs);
    }
}

#[test]
fn a_tanh_mixture_acts_as_the_documented_layout_says() {
    let h = Header::new(
        5,
        &[8, 6, 7],
        1,
        4,
        Activation::Tanh,
        true,
        (-3.0, 0.5),
        &[-0.5],
        &[1.5],
    )
    .unwrap();
    let w: Vec<f32> = (0..h.weight_count())
        .map(|i| ((i * 37 % 101) as f32 - 50.0) / 60.0)
        .collect();
    let bytes = write_policy(&h, &w).unwrap();
    let policy = Policy::from_bytes(&bytes).unwrap();
    for obs in [[0.5f32, -0.25, 1.0, 0.0, 2.0], [-1.0, 2.0, 0.0, 0.3, -0.7]] {
        assert_matches_reference(&policy, &h, &w, &obs);
    }
}

#[test]
fn samples_of_the_committed_file_pass_the_ks_helper() {
    // The golden policy's components sit far out, so much of its mass lands exactly on
    // the bounds when f32 tanh saturates. The helper once reported D = 1.146, p = 0 here.
    use rand_core::SeedableRng;
    let committed = std::fs::read(golden_path()).unwrap();
    let policy = Policy::from_bytes(&committed).unwrap();
    let mut rng = rand_pcg::Pcg32::seed_from_u64(77);
    for obs in [[0.5f32, -0.25, 1.0], [-1.0, 2.0, 0.0], [0.0, 0.0, 0.0]] {
        let report = policy_core::testing::ks_test(&policy, &obs, 20_000, &mut rng).unwrap();
        assert!(report.statistic <= 1.0, "{obs:?}: {report:?}");
        assert!(report.passes(0.01 / 3.0), "{obs:?}: {report:?}");
    }
}

fn golden_v3_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/golden-v3.mxp")
}

/// A tanh mixture with two actions and three components, hidden widths 8 and 6 (whole groups
/// of four and remainders), quantized by policy-core's quantizer from fixed weights and a
/// fixed calibration set: the committed version-3 file `scripts/mxp_reader.py` reads
/// independently (`scripts/check_format_reader.py`).
fn golden_v3_bytes() -> Vec<u8> {
    let h = Header::new(
        3,
        &[8, 6],
        2,
        3,
        Activation::Tanh,
        true,
        (-5.0, 1.0),
        &[-1.0, 0.0],
        &[1.0, 3.0],
    )
    .unwrap();
    let w: Vec<f32> = (0..h.weight_count())
        .map(|i| ((i * 37 % 101) as f32 - 50.0) / 80.0)
        .collect();
    let f32_file = write_policy(&h, &w).unwrap();
    let calibration: Vec<f32> = (0..64)
        .flat_map(|i| {
            let t = i as f32 * 0.37;
            [t.sin() * 2.0, t.cos(), (i % 9) as f32 - 4.0]
        })
        .collect();
    policy_core::quantize::quantize(&f32_file, &calibration).unwrap()
}

#[test]
fn the_quantizer_reproduces_the_committed_version_3_file_byte_for_byte() {
    // If this fails, version 3's layout or the quantizer changed. A deliberate change is
    // written with `MIXPOLICY_WRITE_GOLDEN=1 cargo test -p mixpolicy-tests --test policy_file`.
    let bytes = golden_v3_bytes();
    if std::env::var_os("MIXPOLICY_WRITE_GOLDEN").is_some() {
        std::fs::write(golden_v3_path(), &bytes).unwrap();
    }
    let committed = std::fs::read(golden_v3_path()).expect("tests/data/golden-v3.mxp is committed");
    assert_eq!(bytes, committed);
    let (header, _) = policy_core::format::parse(&committed).unwrap();
    assert_eq!(header.encoding, policy_core::format::Encoding::Int8);
}
