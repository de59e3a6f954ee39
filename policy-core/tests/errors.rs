//! Every bad input gets its typed error; nothing panics; the writer round-trips.

mod common;

use common::*;
use policy_core::format::{
    self, write_policy, Activation, Header, FORMAT_VERSION, FORMAT_VERSION_INT8, MAGIC,
    MIN_FILE_LEN, NEWEST_VERSION, RETIRED_INT8_VERSION,
};
use policy_core::{ActError, HeaderError, LoadError, Policy, WriteError};

/// The documented layout, encoded field by field with postcard directly (independently of
/// the crate's writer), so tests can build files the writer refuses to write.
struct RawFile {
    magic: [u8; 4],
    version: u16,
    obs: u16,
    hidden: Vec<u16>,
    action: u16,
    components: u16,
    activation: Activation,
    squash: bool,
    log_std: (f32, f32),
    low: Vec<f32>,
    high: Vec<f32>,
    weights: Vec<f32>,
    /// Field 12 as given, in place of `weights` (a version-3 block).
    weight_bytes: Option<Vec<u8>>,
    trailing: Vec<u8>,
}

impl RawFile {
    fn valid() -> RawFile {
        let h = header(1, 2, true, 2.0);
        RawFile {
            magic: MAGIC,
            version: FORMAT_VERSION,
            obs: 3,
            hidden: vec![16, 16],
            action: 1,
            components: 2,
            activation: Activation::Relu,
            squash: true,
            log_std: (-20.0, 2.0),
            low: vec![-2.0],
            high: vec![2.0],
            weights: policy_weights(&h, 4),
            weight_bytes: None,
            trailing: vec![],
        }
    }

    fn encode(&self) -> Vec<u8> {
        fn put<T: serde::Serialize>(out: &mut Vec<u8>, v: &T) {
            out.extend(postcard::to_allocvec(v).unwrap());
        }
        let mut out = Vec::new();
        put(&mut out, &self.magic);
        put(&mut out, &self.version);
        put(&mut out, &self.obs);
        put(&mut out, &(self.hidden.len() as u8));
        self.hidden.iter().for_each(|w| put(&mut out, w));
        put(&mut out, &self.action);
        put(&mut out, &self.components);
        put(&mut out, &self.activation);
        put(&mut out, &self.squash);
        put(&mut out, &self.log_std.0);
        put(&mut out, &self.log_std.1);
        self.low
            .iter()
            .chain(&self.high)
            .for_each(|v| put(&mut out, v));
        let bytes: Vec<u8> = match &self.weight_bytes {
            Some(bytes) => bytes.clone(),
            None => self.weights.iter().flat_map(|w| w.to_le_bytes()).collect(),
        };
        put(&mut out, &bytes.as_slice());
        out.extend(&self.trailing);
        let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(&out);
        out.extend(crc.to_le_bytes());
        out
    }

    fn load_error(&self) -> LoadError {
        Policy::from_bytes(&self.encode()).unwrap_err()
    }
}

#[test]
fn the_writer_produces_exactly_the_documented_layout() {
    let raw = RawFile::valid();
    let h = header(1, 2, true, 2.0);
    assert_eq!(write_policy(&h, &raw.weights).unwrap(), raw.encode());
}

#[test]
fn writer_and_reader_round_trip() {
    let h = Header::new(
        17,
        &[256, 256],
        6,
        8,
        Activation::Tanh,
        false,
        (-5.0, 1.5),
        &[-1.0; 6],
        &[0.5; 6],
    )
    .unwrap();
    let weights = policy_weights(&h, 77);
    let bytes = write_policy(&h, &weights).unwrap();
    let (read, weight_bytes) = format::parse(&bytes).unwrap();
    assert_eq!(read, h);
    let read_weights: Vec<f32> = weight_bytes
        .chunks(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(read_weights, weights);
    let policy = Policy::from_bytes(&bytes).unwrap();
    assert_eq!(
        (policy.obs_dim(), policy.action_dim(), policy.components()),
        (17, 6, 8)
    );
}

#[test]
fn loading_borrows_the_weights_in_place() {
    let bytes = policy_bytes(1, 2, true, 2.0, 3);
    let (_, weights) = format::parse(&bytes).unwrap();
    let range = bytes.as_ptr_range();
    assert!(range.contains(&weights.as_ptr()), "weights were copied");
}

#[test]
fn the_smallest_file_is_min_file_len_bytes() {
    let h = Header::new(
        1,
        &[1],
        1,
        1,
        Activation::Relu,
        true,
        (-1.0, 1.0),
        &[-1.0],
        &[1.0],
    )
    .unwrap();
    let bytes = write_policy(&h, &vec![0.5; h.weight_count()]).unwrap();
    assert_eq!(bytes.len(), MIN_FILE_LEN);
    Policy::from_bytes(&bytes).unwrap();
}

#[test]
fn empty_input_is_empty() {
    assert_eq!(Policy::from_bytes(&[]).unwrap_err(), LoadError::Empty);
}

#[test]
fn every_truncation_is_refused() {
    let bytes = RawFile::valid().encode();
    for len in 1..bytes.len() {
        match Policy::from_bytes(&bytes[..len]).unwrap_err() {
            LoadError::Truncated { len: l, min } => assert!(l == len && len < min),
            LoadError::BadCrc { .. } => assert!(len >= MIN_FILE_LEN),
            e => panic!("length {len}: unexpected {e:?}"),
        }
    }
}

#[test]
fn every_flipped_byte_is_caught_by_the_crc() {
    let bytes = RawFile::valid().encode();
    for pos in 0..bytes.len() {
        for mask in [0x01, 0x80, 0xff] {
            let mut corrupt = bytes.clone();
            corrupt[pos] ^= mask;
            let err = Policy::from_bytes(&corrupt).unwrap_err();
            assert!(
                matches!(err, LoadError::BadCrc { .. }),
                "byte {pos} ^ {mask:#x}: {err:?}"
            );
        }
    }
}

#[test]
fn wrong_magic_is_named() {
    let raw = RawFile {
        magic: *b"GGUF",
        ..RawFile::valid()
    };
    assert_eq!(raw.load_error(), LoadError::BadMagic { found: *b"GGUF" });
}

#[test]
fn a_future_version_is_unsupported() {
    // A header from a writer newer than this build: one past every version it knows.
    let raw = RawFile {
        version: NEWEST_VERSION + 1,
        ..RawFile::valid()
    };
    let expected = LoadError::UnsupportedVersion {
        found: NEWEST_VERSION + 1,
        supported: NEWEST_VERSION,
    };
    assert_eq!(raw.load_error(), expected);
    assert_eq!(NEWEST_VERSION, 3, "versions 1 (f32) and 3 (int8) are known");
}

/// A valid version-3 (int8) file written from FORMAT.md §8.2 alone, with `RawFile::valid`'s
/// header: every scale 1, every bias 0, weight codes cycling −1, 0, 1.
fn int8_file() -> Vec<u8> {
    int8_file_of_version(FORMAT_VERSION_INT8)
}

fn int8_file_of_version(version: u16) -> Vec<u8> {
    let h = header(1, 2, true, 2.0);
    let mut field = Vec::new();
    for _ in 0..h.obs_dim + h.hidden.len() {
        field.extend(1.0f32.to_le_bytes());
    }
    let blocks = h.blocks();
    for b in &blocks {
        (0..b.outputs).for_each(|_| field.extend(1.0f32.to_le_bytes()));
        (0..b.outputs).for_each(|_| field.extend(0i32.to_le_bytes()));
    }
    for b in &blocks {
        field.extend((0..b.inputs * b.outputs).map(|i| ((i % 3) as i8 - 1) as u8));
    }
    RawFile {
        version,
        weight_bytes: Some(field),
        ..RawFile::valid()
    }
    .encode()
}

/// Without feature `int8` (the firmware's build) a version-3 file gets its own typed error,
/// from the file check and from every loader, before any of its weights are read.
#[cfg(not(feature = "int8"))]
#[test]
fn without_the_int8_feature_a_version_3_file_is_refused() {
    let bytes = int8_file();
    let expected = LoadError::Int8FeatureDisabled;
    assert_eq!(format::parse(&bytes).unwrap_err(), expected);
    assert_eq!(Policy::from_bytes(&bytes).unwrap_err(), expected);
    assert_eq!(policy_core::HostPolicy::load(&bytes).unwrap_err(), expected);
    assert_eq!(
        expected.to_string(),
        "policy file is format version 3 (int8 weights), which this build does not read: \
         enable policy-core's `int8` feature"
    );
    // Version 1 is unaffected.
    Policy::from_bytes(&RawFile::valid().encode()).unwrap();
}

/// Version 2 (the int8 layout before version 3: the same bytes, input-major) would parse
/// as version 3 and act wrongly: every build refuses it, naming the fix.
#[test]
fn a_version_2_file_is_retired_in_every_build() {
    let bytes = int8_file_of_version(RETIRED_INT8_VERSION);
    let expected = LoadError::RetiredVersion { found: 2 };
    assert_eq!(format::parse(&bytes).unwrap_err(), expected);
    assert_eq!(Policy::from_bytes(&bytes).unwrap_err(), expected);
    assert!(expected
        .to_string()
        .contains("quantize the f32 policy again"));
}

/// The file the test above refuses is a genuine version-3 file: the `int8` build loads and
/// evaluates it.
#[cfg(feature = "int8")]
#[test]
fn with_the_int8_feature_the_version_3_file_loads() {
    let bytes = int8_file();
    let policy = Policy::from_bytes(&bytes).unwrap();
    assert_eq!(policy.header().encoding, format::Encoding::Int8);
    let mut action = [0.0f32];
    policy.mode(&[0.5, -1.0, 2.0], &mut action).unwrap();
    assert!((-2.0..=2.0).contains(&action[0]));
}

fn over(what: &'static str, value: usize, capacity: usize) -> LoadError {
    LoadError::Header(HeaderError::OverCapacity {
        what,
        value,
        capacity,
    })
}

/// A valid file of the given sizes (3 observations, two hidden layers of `width`).
fn sized_policy(action: usize, components: usize, width: usize) -> Vec<u8> {
    let (low, high) = (vec![-1.0; action], vec![1.0; action]);
    let h = Header::new(
        3,
        &[width, width],
        action,
        components,
        Activation::Relu,
        true,
        (-20.0, 2.0),
        &low,
        &high,
    )
    .unwrap();
    policy_core::testing::random_policy(&h, 5, 0.1)
}

#[test]
fn dimensions_over_a_policy_types_capacity_are_refused_at_load() {
    use policy_core::capacity::*;
    use policy_core::math::DefaultMath;
    // The default type: 8 actions, 8 components, 256 wide.
    let cases = [
        (
            sized_policy(DEFAULT_ACTIONS + 1, 2, 16),
            "action",
            DEFAULT_ACTIONS + 1,
            DEFAULT_ACTIONS,
        ),
        (
            sized_policy(1, DEFAULT_COMPONENTS + 1, 16),
            "components",
            DEFAULT_COMPONENTS + 1,
            DEFAULT_COMPONENTS,
        ),
        (
            sized_policy(1, 2, DEFAULT_WIDTH + 1),
            "hidden",
            DEFAULT_WIDTH + 1,
            DEFAULT_WIDTH,
        ),
    ];
    for (bytes, what, value, capacity) in &cases {
        assert_eq!(
            Policy::from_bytes(bytes).unwrap_err(),
            over(what, *value, *capacity)
        );
        // The file itself is fine: a type with room for it loads it.
        HostPolicy::load(bytes).unwrap();
    }
    // A type sized exactly to its policy loads it; one size smaller in any capacity does not.
    let bytes = sized_policy(2, 3, 32);
    Policy::<DefaultMath, 2, 3, 32>::load(&bytes).unwrap();
    let err = Policy::<DefaultMath, 1, 3, 32>::load(&bytes).unwrap_err();
    assert_eq!(err, over("action", 2, 1));
    let err = Policy::<DefaultMath, 2, 2, 32>::load(&bytes).unwrap_err();
    assert_eq!(err, over("components", 3, 2));
    let err = Policy::<DefaultMath, 2, 3, 31>::load(&bytes).unwrap_err();
    assert_eq!(err, over("hidden", 32, 31));
    assert_eq!(
        err.to_string(),
        "invalid policy header: hidden dimension 32 exceeds the capacity 31 (see policy_core::capacity)"
    );

    let raw = RawFile {
        hidden: vec![4; MAX_HIDDEN_LAYERS + 1],
        ..RawFile::valid()
    };
    assert_eq!(
        raw.load_error(),
        over("hidden layers", MAX_HIDDEN_LAYERS + 1, MAX_HIDDEN_LAYERS)
    );
    // The largest 16-bit dimension with no weights to match must not allocate, overflow or
    // read past the end: the bounds it announces are not there.
    let raw = RawFile {
        action: u16::MAX,
        ..RawFile::valid()
    };
    assert_eq!(
        raw.load_error(),
        LoadError::Malformed {
            field: "action_low"
        }
    );
}

#[test]
fn a_host_policy_holds_400_actions_16_components_and_1024_wide_layers() {
    let bytes = sized_policy(400, 16, 1024);
    let policy = policy_core::HostPolicy::load(&bytes).unwrap();
    let obs = [0.3, -0.2, 0.9];
    let mut action = vec![0.0f32; 400];
    let mut rng = rng(11);
    let sample = policy.sample(&obs, &mut rng, &mut action).unwrap();
    assert!(sample.component < 16 && sample.log_prob.is_finite());
    assert!(action.iter().all(|a| (-1.0..=1.0).contains(a)));
    // The log-prob of the emitted action agrees with the one sampling reported (the
    // round trip through atanh loses a little in 400 dimensions).
    let lp = policy.log_prob(&obs, &action).unwrap();
    assert!(
        (lp - sample.log_prob).abs() < 1e-2 * sample.log_prob.abs().max(1.0),
        "{lp} vs {}",
        sample.log_prob
    );
    let k = policy.mode(&obs, &mut action).unwrap();
    let mut w = vec![0.0f32; 16];
    policy.mixing_weights(&obs, &mut w).unwrap();
    let best = w.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    assert_eq!(w[k], best);
}

#[test]
fn zero_dimensions_and_bad_bounds_are_refused() {
    let zero = |what| LoadError::Header(HeaderError::ZeroDim { what });
    assert_eq!(
        RawFile {
            obs: 0,
            ..RawFile::valid()
        }
        .load_error(),
        zero("obs")
    );
    assert_eq!(
        RawFile {
            components: 0,
            ..RawFile::valid()
        }
        .load_error(),
        zero("components")
    );
    assert_eq!(
        RawFile {
            hidden: vec![],
            ..RawFile::valid()
        }
        .load_error(),
        zero("hidden layers")
    );
    let bounds = LoadError::Header(HeaderError::ActionBounds { dim: 0 });
    assert_eq!(
        RawFile {
            low: vec![2.0],
            ..RawFile::valid()
        }
        .load_error(),
        bounds
    );
    assert_eq!(
        RawFile {
            high: vec![f32::INFINITY],
            ..RawFile::valid()
        }
        .load_error(),
        bounds
    );
    // A box whose half-width underflows to zero or a subnormal has no usable scale.
    let narrow = |lo: f32, hi: f32| RawFile {
        low: vec![lo],
        high: vec![hi],
        ..RawFile::valid()
    };
    assert_eq!(narrow(0.0, 1e-45).load_error(), bounds);
    assert_eq!(narrow(1e-40, 2e-40).load_error(), bounds);
    // The widest finite box still works: its width overflows f32, its half-width does not.
    let wide = narrow(-3e38, 3e38).encode();
    let policy = Policy::from_bytes(&wide).unwrap();
    let mut a = [0.0];
    let s = policy
        .sample(&[0.1, 0.2, 0.3], &mut rng(1), &mut a)
        .unwrap();
    assert!(a[0].is_finite() && s.log_prob.is_finite(), "{a:?} {s:?}");
    let log_std = LoadError::Header(HeaderError::LogStdBounds);
    assert_eq!(
        RawFile {
            log_std: (-20.0, 100.0),
            ..RawFile::valid()
        }
        .load_error(),
        log_std
    );
    assert_eq!(
        RawFile {
            log_std: (-100.0, 2.0),
            ..RawFile::valid()
        }
        .load_error(),
        log_std
    );
    assert_eq!(
        RawFile {
            log_std: (1.0, -1.0),
            ..RawFile::valid()
        }
        .load_error(),
        log_std
    );
    assert_eq!(
        RawFile {
            log_std: (f32::NAN, 1.0),
            ..RawFile::valid()
        }
        .load_error(),
        log_std
    );
}

#[test]
fn weight_block_problems_are_refused() {
    let mut raw = RawFile::valid();
    let expected = raw.weights.len() * 4;
    raw.weights.pop();
    assert_eq!(
        raw.load_error(),
        LoadError::WeightsLength {
            expected,
            found: expected - 4
        }
    );
    let mut raw = RawFile::valid();
    raw.weights[17] = f32::NAN;
    assert_eq!(raw.load_error(), LoadError::NonFiniteWeight { index: 17 });
    let raw = RawFile {
        trailing: vec![0],
        ..RawFile::valid()
    };
    assert_eq!(
        raw.load_error(),
        LoadError::Malformed {
            field: "trailing bytes"
        }
    );
    // An activation the format does not define.
    let mut bytes = RawFile::valid().encode();
    let activation_at = 4 + 1 + 1 + 1 + 2 + 1 + 1; // magic, version, obs, layers, widths (16, 16), action, components
    assert_eq!(bytes[activation_at], 0);
    bytes[activation_at] = 7;
    let n = bytes.len() - 4;
    let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(&bytes[..n]);
    bytes[n..].copy_from_slice(&crc.to_le_bytes());
    assert_eq!(
        Policy::from_bytes(&bytes).unwrap_err(),
        LoadError::Malformed {
            field: "activation"
        }
    );
}

#[test]
fn the_writer_refuses_what_the_reader_would_refuse() {
    let h = header(1, 2, true, 2.0);
    let n = h.weight_count();
    assert_eq!(
        write_policy(&h, &vec![0.0; n - 1]).unwrap_err(),
        WriteError::WeightCount {
            expected: n,
            found: n - 1
        }
    );
    let mut w = vec![0.0; n];
    w[3] = f32::INFINITY;
    assert_eq!(
        write_policy(&h, &w).unwrap_err(),
        WriteError::NonFiniteWeight { index: 3 }
    );
    // Dimensions are 16-bit fields: the writer refuses what it could not store.
    let bad = Header::new(
        3,
        &[16],
        1,
        65_536,
        Activation::Relu,
        true,
        (-20.0, 2.0),
        &[-1.0],
        &[1.0],
    );
    assert_eq!(
        bad.unwrap_err(),
        HeaderError::OverCapacity {
            what: "components",
            value: 65_536,
            capacity: 65_535
        }
    );
    let bad = Header::new(
        3,
        &[16],
        2,
        1,
        Activation::Relu,
        true,
        (-20.0, 2.0),
        &[-1.0],
        &[1.0],
    );
    assert_eq!(
        bad.unwrap_err(),
        HeaderError::BoundsLength {
            expected: 2,
            found: 1
        }
    );
}

#[test]
fn bad_requests_get_typed_errors_and_leave_the_output_untouched() {
    let bytes = policy_bytes(2, 3, true, 1.0, 6);
    let policy = Policy::from_bytes(&bytes).unwrap();
    let mut r = rng(1);
    let mut a = [7.0f32; 2];
    assert_eq!(
        policy.sample(&[0.0; 2], &mut r, &mut a).unwrap_err(),
        ActError::ObsLength {
            expected: 3,
            found: 2
        }
    );
    assert_eq!(
        policy.mode(&[0.0, f32::NAN, 0.0], &mut a).unwrap_err(),
        ActError::NonFiniteObs { index: 1 }
    );
    assert_eq!(
        policy
            .sample(&[f32::NEG_INFINITY, 0.0, 0.0], &mut r, &mut a)
            .unwrap_err(),
        ActError::NonFiniteObs { index: 0 }
    );
    assert_eq!(a, [7.0; 2]);
    let mut short = [0.0f32; 1];
    assert_eq!(
        policy.sample(&[0.0; 3], &mut r, &mut short).unwrap_err(),
        ActError::ActionLength {
            expected: 2,
            found: 1
        }
    );
    assert_eq!(
        policy.log_prob(&[0.0; 3], &[0.0, f32::NAN]).unwrap_err(),
        ActError::NonFiniteAction { index: 1 }
    );
    assert_eq!(
        policy.log_prob(&[0.0; 3], &[0.0]).unwrap_err(),
        ActError::ActionLength {
            expected: 2,
            found: 1
        }
    );
    let mut w = [0.0; 2];
    assert_eq!(
        policy.mixing_weights(&[0.0; 3], &mut w).unwrap_err(),
        ActError::WeightsLength {
            expected: 3,
            found: 2
        }
    );
}

#[test]
fn errors_explain_themselves() {
    let (lo, hi) = policy_core::format::LOG_STD_LIMITS;
    let msg = HeaderError::LogStdBounds.to_string();
    assert!(
        msg.contains(&format!("{lo} <= min <= max <= {hi}")),
        "{msg}"
    );
    let msg = RawFile {
        magic: *b"GGUF",
        ..RawFile::valid()
    }
    .load_error()
    .to_string();
    assert!(msg.contains("not a policy file"), "{msg}");
    let msg = over("hidden", 300, 256).to_string();
    assert!(
        msg.contains("hidden") && msg.contains("300") && msg.contains("256"),
        "{msg}"
    );
}
