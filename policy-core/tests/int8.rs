//! Format version 3 (int8): the quantizer's files load, act as FORMAT.md §8 specifies to
//! the last bit, and every malformed parameter gets its typed error.

mod common;

use common::*;
use policy_core::format::{self, Activation, Encoding, Header, FORMAT_VERSION_INT8};
use policy_core::int8::{code, Params, CODE_MAX};
use policy_core::math::{Libm, Math};
use policy_core::quantize::{quantize, QuantizeError};
use policy_core::{HostPolicy, LoadError};

/// Observations spread over the calibration box, one after the other.
fn calibration(n: usize, seed: u64) -> Vec<f32> {
    let mut r = rng(seed);
    (0..n).flat_map(|_| random_obs(&mut r)).collect()
}

fn tanh_header() -> Header<'static> {
    Header::new(
        3,
        &[16, 8],
        2,
        3,
        Activation::Tanh,
        true,
        (-5.0, 2.0),
        &[-1.0, 0.0],
        &[1.0, 3.0],
    )
    .unwrap()
    .into_owned()
}

/// A version-1 file and its quantized version, ReLU (1 action) and tanh (2 actions).
fn pairs() -> Vec<(Vec<u8>, Vec<u8>)> {
    let relu = policy_bytes(1, 5, true, 2.0, 3);
    let h = tanh_header();
    let tanh = format::write_policy(&h, &policy_weights(&h, 4)).unwrap();
    [relu, tanh]
        .into_iter()
        .map(|f| {
            let q = quantize(&f, &calibration(500, 9)).unwrap();
            (f, q)
        })
        .collect()
}

/// Recomputes the file by a new CRC after an edit of its bytes.
fn recrc(bytes: &mut [u8]) {
    let n = bytes.len() - 4;
    let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(&bytes[..n]);
    bytes[n..].copy_from_slice(&crc.to_le_bytes());
}

#[test]
fn quantized_files_are_version_2_and_load() {
    for (f32_file, q) in pairs() {
        assert_eq!(
            q[4], FORMAT_VERSION_INT8 as u8,
            "version varint at offset 4"
        );
        let (h, params) = format::parse(&q).unwrap();
        assert_eq!(h.encoding, Encoding::Int8);
        let (h1, _) = format::parse(&f32_file).unwrap();
        assert_eq!(
            Header {
                encoding: Encoding::F32,
                ..h.clone()
            },
            h1,
            "same header"
        );
        assert_eq!(params.len(), h.weight_bytes_len().unwrap());
        HostPolicy::load(&q).unwrap();
    }
}

/// FORMAT.md §8.4's `code`, as the page writes it: `round(clip(x · inv, ±32767))`, `round`
/// half away from zero (`libm::roundf`). (`int8::code` computes it another way.)
fn spec_code(x: f32, inv: f32) -> i16 {
    libm::roundf((x * inv).clamp(-32767.0, 32767.0)) as i16
}

/// FORMAT.md §8 step by step, written from the page with the accessors of `int8::Params`
/// (which only read bytes): the heads, then the mode as §7 step 5. Policy-core must agree
/// to the last bit, with the libm math (the host default).
fn reference_mode(file: &[u8], obs: &[f32]) -> (usize, Vec<f32>) {
    let (h, bytes) = format::parse(file).unwrap();
    let p = Params::new(&h, bytes).unwrap();
    let mut x: Vec<i16> = (0..h.obs_dim)
        .map(|i| spec_code(obs[i], 1.0 / p.obs_scale(i).unwrap()))
        .collect();
    let layers = h.hidden.len();
    let mut heads = vec![];
    for (j, b) in p.blocks.iter().enumerate() {
        let z: Vec<f32> = (0..b.outputs)
            .map(|o| {
                let mut acc = i64::from(b.bias(o).unwrap());
                for (i, &xi) in x.iter().enumerate() {
                    acc += i64::from(xi) * i64::from(b.weight(i, o).unwrap());
                }
                assert!(acc.abs() <= i64::from(i32::MAX));
                acc as i32 as f32 * b.scale(o).unwrap()
            })
            .collect();
        if j < layers {
            let inv = 1.0 / p.act_scale(j).unwrap();
            x = z
                .iter()
                .map(|&z| {
                    let a = match h.activation {
                        Activation::Relu => z.max(0.0),
                        Activation::Tanh => Libm::tanh(z),
                    };
                    spec_code(a, inv)
                })
                .collect();
        } else {
            heads.push(z);
        }
    }
    let (mean, logits) = (&heads[0], &heads[2]);
    let (a, k) = (h.action_dim, h.components);
    // Largest logit, lowest index on ties: the same order as log w (a shift of the logits).
    let mut best = 0;
    for j in 1..k {
        if logits[j] > logits[best] {
            best = j;
        }
    }
    let action = (0..a)
        .map(|d| {
            let (lo, hi) = (h.action_low.get(d).unwrap(), h.action_high.get(d).unwrap());
            let (s, o) = (hi / 2.0 - lo / 2.0, hi / 2.0 + lo / 2.0);
            (s * Libm::tanh(mean[best * a + d]) + o).clamp(lo, hi)
        })
        .collect();
    (best, action)
}

#[test]
fn inference_follows_the_spec_to_the_last_bit() {
    let mut r = rng(11);
    for (_, q) in pairs() {
        let policy = HostPolicy::load(&q).unwrap();
        let n = policy.obs_dim();
        for _ in 0..200 {
            // Mostly inside the calibrated box, some far outside (saturated codes).
            let obs: Vec<f32> = (0..n).map(|_| uniform(&mut r, -12.0, 12.0)).collect();
            let mut action = vec![0.0; policy.action_dim()];
            let k = policy.mode(&obs, &mut action).unwrap();
            let (k_ref, a_ref) = reference_mode(&q, &obs);
            assert_eq!(k, k_ref, "component at {obs:?}");
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&action), bits(&a_ref), "mode at {obs:?}");
        }
    }
}

#[test]
fn observations_far_outside_calibration_saturate_instead_of_failing() {
    for (_, q) in pairs() {
        let policy = HostPolicy::load(&q).unwrap();
        let mut action = vec![0.0; policy.action_dim()];
        for v in [1e30f32, -1e30, f32::MAX] {
            let obs = vec![v; policy.obs_dim()];
            policy.mode(&obs, &mut action).unwrap();
            let lp = policy.log_prob(&obs, &action).unwrap();
            assert!(action.iter().all(|a| a.is_finite()) && !lp.is_nan());
        }
        let bad = vec![f32::NAN; policy.obs_dim()];
        assert!(
            policy.mode(&bad, &mut action).is_err(),
            "NaN is still an error"
        );
    }
}

#[test]
fn code_rounds_half_away_from_zero_and_saturates() {
    assert_eq!(code(2.5, 1.0), 3);
    assert_eq!(code(-2.5, 1.0), -3);
    assert_eq!(code(0.49999997, 1.0), 0);
    assert_eq!(code(1e9, 1.0), CODE_MAX as i16);
    assert_eq!(code(-1e9, 1.0), -CODE_MAX as i16);
    assert_eq!(code(f32::INFINITY, 1.0), CODE_MAX as i16);
}

/// `int8::code` (no `roundf`: a truncating conversion of `2 · x · inv`, then integer
/// arithmetic) equals FORMAT.md's `round(clip(x · inv))` for every `f32` it can meet:
/// every 61st bit pattern of all 2³², every float within 4 ulps of each integer and each
/// half-integer up to ±33 000 (where rounding decides), and the special values; at
/// `inv = 1` and at scales that make `x · inv` round.
#[test]
fn code_equals_the_spec_formula_for_every_kind_of_float() {
    let check = |x: f32| {
        for inv in [1.0f32, 3.0517578e-5, 0.1, 7.3, 32767.0] {
            let (got, want) = (code(x, inv), spec_code(x, inv));
            assert_eq!(got, want, "code({x:e} = {:#010x}, {inv})", x.to_bits());
        }
    };
    every_kind_of_float(check);
}

/// Every 61st bit pattern of all 2³², every float within 4 ulps of each integer and each
/// half-integer up to ±33 000 (where rounding decides), and the special values, both signs.
fn every_kind_of_float(check: impl Fn(f32)) {
    for bits in (0..=u32::MAX).step_by(61) {
        check(f32::from_bits(bits));
    }
    for k in -66_000i32..=66_000 {
        let at = k as f32 / 2.0; // every integer and half-integer up to ±33 000
        for ulps in -4i32..=4 {
            check(f32::from_bits(at.to_bits().wrapping_add_signed(ulps)));
        }
    }
    for x in [
        0.0,
        -0.0,
        f32::MIN_POSITIVE,
        f32::MAX,
        f32::INFINITY,
        f32::NAN,
    ] {
        check(x);
        check(-x);
    }
}

/// The hot path codes `x` as `code_doubled(x · inv2)` with `inv2 = 2 / s` (`qnet.rs`), not
/// as `code(x, 1 / s) = code_doubled((x · (1 / s)) · 2)`; `code_doubled(y)` depends on `y`
/// only through `trunc(y)` (`y as i32`). Over the sweep above and scales of every size
/// (`1 / s` of the `inv`s there, and the extremes a file allows), the two products truncate
/// alike, so the hot path's code is `code`'s, which is FORMAT.md's; and they are the same
/// float except where `int8.rs` says they may differ (a product below 2⁻¹²⁵ in magnitude,
/// or an overflow to ±∞).
#[test]
fn the_hot_paths_doubled_inverse_codes_as_code_does() {
    let scales = [
        1.0f32,
        32768.0,
        10.0,
        1.0 / 7.3,
        1.0 / 32767.0,
        f32::MIN_POSITIVE,
        policy_core::int8::SCALE_MAX,
    ];
    every_kind_of_float(|x| {
        for s in scales {
            let (hot, via_inv) = (x * (2.0 / s), x * (1.0 / s) * 2.0);
            assert_eq!(hot as i32, via_inv as i32, "x = {x:e}, s = {s:e}");
            let differs_allowed = hot.is_nan()
                || hot.abs() < 2f32.powi(-124)
                || hot.is_infinite()
                || via_inv.is_infinite();
            assert!(
                hot.to_bits() == via_inv.to_bits() || differs_allowed,
                "x = {x:e}, s = {s:e}: {hot:e} vs {via_inv:e}"
            );
        }
    });
}

#[test]
fn quantizing_refuses_what_it_cannot_do() {
    let (f, q) = pairs().remove(0);
    assert_eq!(
        quantize(&q, &calibration(10, 1)),
        Err(QuantizeError::NotF32)
    );
    assert_eq!(
        quantize(&f, &[]),
        Err(QuantizeError::Calibration { len: 0, obs_dim: 3 })
    );
    assert_eq!(
        quantize(&f, &[0.0; 4]),
        Err(QuantizeError::Calibration { len: 4, obs_dim: 3 })
    );
    assert_eq!(
        quantize(&f, &[0.0, f32::NAN, 1.0]),
        Err(QuantizeError::NonFiniteCalibration { index: 1 })
    );
    let h = header(1, 5, true, 2.0);
    assert_eq!(
        format::write_policy(
            &Header {
                encoding: Encoding::Int8,
                ..h.clone()
            },
            &policy_weights(&h, 1)
        ),
        Err(policy_core::WriteError::Encoding)
    );
}

/// Where the parameters of block 0 sit in a quantized file: (start of field 12, start of
/// block 0's scales, start of block 0's weights).
fn offsets(q: &[u8]) -> (usize, usize, usize) {
    let (h, params) = format::parse(q).unwrap();
    let start = params.as_ptr() as usize - q.as_ptr() as usize;
    let scales = start + 4 * (h.obs_dim + h.hidden.len());
    let outputs: usize = h.blocks().iter().map(|b| b.outputs).sum();
    (start, scales, scales + 8 * outputs)
}

#[test]
fn malformed_parameters_get_typed_errors() {
    let (_, q) = pairs().remove(0);
    let (start, scales, weights) = offsets(&q);
    let edit = |at: usize, bytes: &[u8]| {
        let mut f = q.clone();
        f[at..at + bytes.len()].copy_from_slice(bytes);
        recrc(&mut f);
        format::parse(&f).map(|_| ()).unwrap_err()
    };
    assert_eq!(
        edit(start, &0.0f32.to_le_bytes()),
        LoadError::BadScale { index: 0 }
    );
    assert_eq!(
        edit(start + 4, &f32::NAN.to_le_bytes()),
        LoadError::BadScale { index: 1 }
    );
    assert_eq!(
        edit(scales, &(-1.0f32).to_le_bytes()),
        LoadError::BadScale { index: 5 }
    );
    assert_eq!(
        edit(scales, &1e31f32.to_le_bytes()),
        LoadError::BadScale { index: 5 }
    );
    // The largest scale allowed keeps acc · scale finite for every i32 accumulator
    // (2³¹ · SCALE_MAX < f32::MAX); the next float up is refused.
    assert!((2f32.powi(31) * policy_core::int8::SCALE_MAX).is_finite());
    let above = f32::from_bits(policy_core::int8::SCALE_MAX.to_bits() + 1);
    assert_eq!(
        edit(scales, &above.to_le_bytes()),
        LoadError::BadScale { index: 5 }
    );
    let mut largest = q.clone();
    largest[scales..scales + 4].copy_from_slice(&policy_core::int8::SCALE_MAX.to_le_bytes());
    recrc(&mut largest);
    assert!(
        format::parse(&largest).is_ok(),
        "SCALE_MAX itself is allowed"
    );
    assert_eq!(
        edit(weights + 7, &[0x80]),
        LoadError::BadWeightCode { index: 7 }
    );
    // Block 0 output 2's bias (after its 16 scales): i32::MAX leaves no room for any input.
    let bias = scales + 4 * 16 + 4 * 2;
    assert_eq!(
        edit(bias, &i32::MAX.to_le_bytes()),
        LoadError::AccumulatorOverflow {
            block: 0,
            output: 2
        }
    );
    // A bias that fits exactly: |bias| + 32767 · Σ|w| = i32::MAX.
    let (h, params) = format::parse(&q).unwrap();
    let b0 = &Params::new(&h, params).unwrap().blocks[0];
    let abs_sum: i64 = (0..3)
        .map(|i| i64::from(b0.weight(i, 2).unwrap()).abs())
        .sum();
    let room = (i64::from(i32::MAX) - 32767 * abs_sum) as i32;
    assert_eq!(
        edit(bias, &(room + 1).to_le_bytes()),
        LoadError::AccumulatorOverflow {
            block: 0,
            output: 2
        }
    );
    let mut ok = q.clone();
    ok[bias..bias + 4].copy_from_slice(&(-room).to_le_bytes());
    recrc(&mut ok);
    format::parse(&ok).unwrap();
}

#[test]
fn a_truncated_parameter_block_is_a_length_error() {
    let (_, q) = pairs().remove(0);
    let (_, params) = format::parse(&q).unwrap();
    let n = params.len();
    // Rebuild the file with one byte fewer in field 12 (and a length prefix to match).
    let mut short = params.to_vec();
    short.pop();
    let (start, _, _) = offsets(&q);
    let mut f = q[..start].to_vec();
    // The length prefix is the varint just before `start`: two bytes for this size.
    assert!((128..16384).contains(&n));
    f.truncate(start - 2);
    f.push(((n - 1) as u8 & 0x7f) | 0x80);
    f.push(((n - 1) >> 7) as u8);
    f.extend_from_slice(&short);
    f.extend_from_slice(&[0; 4]);
    recrc(&mut f);
    assert_eq!(
        format::parse(&f).map(|_| ()).unwrap_err(),
        LoadError::WeightsLength {
            expected: n,
            found: n - 1
        }
    );
}

/// A column of weights so small that its scale would be subnormal, and an observation
/// feature whose calibrated range is that small, get normal scales (the format refuses
/// subnormal ones) instead of failing: the file loads and acts like its source.
#[test]
fn tiny_columns_and_ranges_get_normal_scales() {
    let h = header(1, 5, true, 2.0);
    let mut w = policy_weights(&h, 3);
    let block = h.blocks()[0];
    for i in 0..block.inputs {
        // Output 3 of layer 0: weights around 1e-40 (max / 127 is subnormal).
        w[block.weight_index(i, 3)] *= 1e-40;
    }
    let f32_file = format::write_policy(&h, &w).unwrap();
    let mut calibration = calibration(500, 9);
    for state in calibration.chunks_exact_mut(3) {
        state[1] *= 1e-39; // feature 1's range: about 1e-38 / 32767 per code
    }
    let q = quantize(&f32_file, &calibration).unwrap();
    let (hq, bytes) = format::parse(&q).unwrap();
    let p = Params::new(&hq, bytes).unwrap();
    assert!(p.obs_scale(1).unwrap().is_normal());
    assert!(p.blocks[0].scale(3).unwrap().is_normal());
    let (reference, quantized) = (
        HostPolicy::load(&f32_file).unwrap(),
        HostPolicy::load(&q).unwrap(),
    );
    let observations: Vec<Vec<f32>> = calibration.chunks_exact(3).map(<[f32]>::to_vec).collect();
    let r = policy_core::testing::quantization_error(&reference, &quantized, &observations, 16)
        .unwrap();
    assert!(r.mode_agreement > 0.95 && r.mean_mode_error < 0.02, "{r:?}");
}

/// Weights far smaller than their bias (here about 1e-9 against a bias near 0.1): the
/// output's scale is chosen so that the bias code fits the load-time accumulator proof
/// whatever the weight codes are (`|bias code| ≤ room = i32::MAX − 32767 · 127 · inputs`),
/// instead of quantizing failing with `Overflow`. Just below the bias where that starts to
/// matter (`room · top / 127`), the scale is the weights' own (`top / 127`); just above, it
/// is the bias's (`|bias| / room`, rounded up), the two nearly equal (no jump), and both
/// files load and keep the output's bias to within one code.
#[test]
fn a_bias_that_dwarfs_its_weights_widens_the_scale_instead_of_overflowing() {
    let h = header(1, 5, true, 2.0);
    let block = h.blocks()[0];
    let (inputs, o) = (block.inputs, 3);
    let mut w = policy_weights(&h, 3);
    for i in 0..inputs {
        w[block.weight_index(i, o)] *= 1e-9;
    }
    let calibration = calibration(500, 9);
    let quantized = |w: &[f32]| {
        let f32_file = format::write_policy(&h, w).unwrap();
        let q = quantize(&f32_file, &calibration).unwrap();
        HostPolicy::load(&q).unwrap();
        q
    };
    // The reviewer's case: it used to fail with Overflow.
    w[block.bias_index(o)] = 0.1;
    let q = quantized(&w);
    let room = f64::from(i32::MAX) - 32767.0 * 127.0 * inputs as f64;
    let (hq, bytes) = format::parse(&q).unwrap();
    let p = Params::new(&hq, bytes).unwrap();
    let (s, b) = (p.blocks[0].scale(o).unwrap(), p.blocks[0].bias(o).unwrap());
    assert!(f64::from(b).abs() <= room, "{b}");
    assert!(
        (f64::from(b) * f64::from(s) - 0.1f32 as f64).abs() <= 0.5 * f64::from(s) * (1.0 + 1e-9)
    );
    // The threshold: the weights' scale, from the observation scales the calibration gives.
    let top = (0..inputs)
        .map(|i| {
            (f64::from(w[block.weight_index(i, o)]) * f64::from(p.obs_scale(i).unwrap())).abs()
        })
        .fold(0.0, f64::max);
    let threshold = room * top / 127.0;
    for (factor, bias_bound) in [(1.0 - 1e-4, false), (1.0 + 1e-4, true)] {
        let bias = (threshold * factor) as f32;
        w[block.bias_index(o)] = bias;
        let q = quantized(&w);
        let (hq, bytes) = format::parse(&q).unwrap();
        let p = Params::new(&hq, bytes).unwrap();
        let (s, b) = (p.blocks[0].scale(o).unwrap(), p.blocks[0].bias(o).unwrap());
        let (s, b) = (f64::from(s), f64::from(b));
        assert!(
            b.abs() <= room,
            "factor {factor}: bias code {b}, room {room}"
        );
        assert!(
            (b * s - f64::from(bias)).abs() <= 0.5 * s * (1.0 + 1e-9),
            "factor {factor}"
        );
        if bias_bound {
            assert!(s >= f64::from(bias) / room, "factor {factor}");
            // Rounded up by at most one ulp of the scale (2^-23 relative) from |bias| / room.
            assert!(
                s <= f64::from(bias) / room * (1.0 + 2.0f64.powi(-23)),
                "factor {factor}"
            );
        } else {
            assert_eq!(s, f64::from((top / 127.0) as f32), "factor {factor}");
        }
        // Continuity: either way the scale is within 1e-4 (+ f32 rounding) of top / 127.
        assert!(
            (s / (top / 127.0) - 1.0).abs() <= 1e-4 + 2.0f64.powi(-23),
            "factor {factor}"
        );
    }
}
