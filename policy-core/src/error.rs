//! Typed errors. Every variant says what was wrong with the input. The enums are
//! `#[non_exhaustive]`: a later version may add a variant (as `LoadError::RetiredVersion`
//! was) without breaking a caller's `match`, which must therefore have a `_` arm.

use core::fmt;

/// A header whose dimensions or bounds cannot describe a usable policy.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum HeaderError {
    /// A dimension is larger than the format allows or than the capacity of the
    /// [`crate::Policy`] type loading it ([`crate::capacity`]).
    OverCapacity {
        /// Which dimension (`"obs"`, `"hidden"`, `"hidden layers"`, `"action"`, `"components"`).
        what: &'static str,
        /// The value in the file.
        value: usize,
        /// The capacity.
        capacity: usize,
    },
    /// The weights the dimensions describe do not fit this target's address space.
    TooLarge,
    /// A dimension is zero.
    ZeroDim {
        /// Which dimension.
        what: &'static str,
    },
    /// Action bounds of dimension `dim` are not finite with `low < high`, or the box is too
    /// wide or too narrow for f32 (its half-width must be a normal positive f32).
    ActionBounds {
        /// The action dimension at fault.
        dim: usize,
    },
    /// Log-std bounds are not ordered `min <= max` within [`crate::format::LOG_STD_LIMITS`].
    LogStdBounds,
    /// The number of action bounds does not match the action dimension.
    BoundsLength {
        /// Action dimension.
        expected: usize,
        /// Bounds given.
        found: usize,
    },
}

/// Why a byte slice is not a loadable `.mxp` policy.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum LoadError {
    /// The slice is empty.
    Empty,
    /// The slice is shorter than the smallest possible policy file.
    Truncated {
        /// Bytes given.
        len: usize,
        /// Bytes needed at least.
        min: usize,
    },
    /// The CRC-32 stored in the last four bytes does not match the contents
    /// (corrupted or truncated file).
    BadCrc {
        /// CRC stored in the file.
        stored: u32,
        /// CRC computed over the contents.
        computed: u32,
    },
    /// The file does not start with [`crate::format::MAGIC`].
    BadMagic {
        /// The first four bytes found.
        found: [u8; 4],
    },
    /// The format version is not one policy-core knows (a file from a newer writer).
    UnsupportedVersion {
        /// Version in the file.
        found: u16,
        /// Newest version policy-core knows ([`crate::format::NEWEST_VERSION`]).
        supported: u16,
    },
    /// Format version 2: int8 weights in the input-major layout `mixsac quantize` wrote
    /// before version 3, which no build reads (its bytes would parse as version 3 and act
    /// wrongly). Quantize the policy's f32 file again.
    RetiredVersion {
        /// Version in the file.
        found: u16,
    },
    /// The file is format version 3 (int8 weights) and this build of policy-core was
    /// compiled without its `int8` feature, which reads and evaluates that version. (Only a
    /// build without the feature returns it; the variant exists in every build.)
    Int8FeatureDisabled,
    /// The header describes no usable policy (see [`HeaderError`]).
    Header(HeaderError),
    /// A field could not be decoded although the CRC matched (a writer bug, not corruption).
    Malformed {
        /// The field being decoded.
        field: &'static str,
    },
    /// The weight block has the wrong size for the declared dimensions.
    WeightsLength {
        /// Bytes the dimensions require.
        expected: usize,
        /// Bytes in the file.
        found: usize,
    },
    /// A weight is NaN or infinite.
    NonFiniteWeight {
        /// Index of the weight in the documented order.
        index: usize,
    },
    /// Version 3: a scale is not a positive normal `f32` of at most `int8::SCALE_MAX`
    /// (1e29).
    BadScale {
        /// Index of the scale among all of the file's scales, in file order.
        index: usize,
    },
    /// Version 3: a weight code is −128 (codes are symmetric, −127 ..= 127).
    BadWeightCode {
        /// Index of the weight among the int8 weights, in file order.
        index: usize,
    },
    /// Version 3: an output's bias and weights could overflow its 32-bit accumulator for
    /// some input codes (`|bias| + 32767 · Σ_i |w[i][o]| > 2^31 − 1`).
    AccumulatorOverflow {
        /// Block index in file order (hidden layers, then mean, log-std, logits).
        block: usize,
        /// Output of that block.
        output: usize,
    },
}

/// Why an evaluation request was refused. Nothing is emitted when this is returned.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum ActError {
    /// The observation has the wrong length.
    ObsLength {
        /// Length the policy expects.
        expected: usize,
        /// Length given.
        found: usize,
    },
    /// The observation holds a NaN or infinity.
    NonFiniteObs {
        /// Index of the first bad entry.
        index: usize,
    },
    /// An action buffer (input or output) has the wrong length.
    ActionLength {
        /// Length the policy expects.
        expected: usize,
        /// Length given.
        found: usize,
    },
    /// A given action holds a NaN or infinity.
    NonFiniteAction {
        /// Index of the first bad entry.
        index: usize,
    },
    /// The mixing-weight buffer has the wrong length.
    WeightsLength {
        /// Number of components.
        expected: usize,
        /// Length given.
        found: usize,
    },
    /// The network produced a non-finite value (observation far outside the training range).
    NonFiniteOutput,
}

/// Why a policy could not be written.
#[cfg(feature = "alloc")]
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum WriteError {
    /// The header describes no usable policy.
    Header(HeaderError),
    /// The number of weights does not match the header's dimensions.
    WeightCount {
        /// Weights the dimensions require.
        expected: usize,
        /// Weights given.
        found: usize,
    },
    /// A weight is NaN or infinite.
    NonFiniteWeight {
        /// Index of the weight in the documented order.
        index: usize,
    },
    /// [`crate::format::write_policy`] writes `f32` (version-1) files only; version 3 comes
    /// from `quantize` (features `alloc` and `int8`).
    Encoding,
}

impl From<HeaderError> for LoadError {
    fn from(e: HeaderError) -> Self {
        LoadError::Header(e)
    }
}

#[cfg(feature = "alloc")]
impl From<HeaderError> for WriteError {
    fn from(e: HeaderError) -> Self {
        WriteError::Header(e)
    }
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            HeaderError::OverCapacity {
                what,
                value,
                capacity,
            } => write!(
                f,
                "{what} dimension {value} exceeds the capacity {capacity} (see policy_core::capacity)"
            ),
            HeaderError::TooLarge => write!(
                f,
                "the dimensions describe more weight bytes than this target can address"
            ),
            HeaderError::ZeroDim { what } => write!(f, "{what} dimension is zero"),
            HeaderError::ActionBounds { dim } => write!(
                f,
                "action bounds of dimension {dim} are not finite with low < high and a box width f32 can hold"
            ),
            // Literal numbers: formatting floats would link core's float printer, whose
            // panic paths the firmware must not contain (tests/errors.rs keeps them in sync).
            HeaderError::LogStdBounds => {
                write!(f, "log-std bounds must satisfy -40 <= min <= max <= 40")
            }
            HeaderError::BoundsLength { expected, found } => write!(
                f,
                "{found} action bounds given for a {expected}-dimensional action"
            ),
        }
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            LoadError::Empty => write!(f, "policy file is empty"),
            LoadError::Truncated { len, min } => write!(
                f,
                "policy file is truncated: {len} bytes, a policy file has at least {min}"
            ),
            LoadError::BadCrc { stored, computed } => write!(
                f,
                "policy file is corrupted or truncated: CRC-32 {computed:#010x} does not match the stored {stored:#010x}"
            ),
            LoadError::BadMagic { found } => write!(
                f,
                "not a policy file: starts with {found:02x?}, expected {:02x?} (\"MXPF\")",
                crate::format::MAGIC
            ),
            LoadError::UnsupportedVersion { found, supported } => write!(
                f,
                "policy file format version {found} is not supported (policy-core knows versions 1 to {supported})"
            ),
            LoadError::Int8FeatureDisabled => write!(
                f,
                "policy file is format version 3 (int8 weights), which this build does not read: enable policy-core's `int8` feature"
            ),
            LoadError::RetiredVersion { found } => write!(
                f,
                "policy file is format version {found}, the int8 layout written before version 3, which no build reads any more: quantize the f32 policy again with `mixsac quantize`"
            ),
            LoadError::Header(e) => write!(f, "invalid policy header: {e}"),
            LoadError::Malformed { field } => {
                write!(f, "policy file field `{field}` could not be decoded")
            }
            LoadError::WeightsLength { expected, found } => write!(
                f,
                "weight block has {found} bytes, the dimensions require {expected}"
            ),
            LoadError::NonFiniteWeight { index } => {
                write!(f, "weight {index} is not finite")
            }
            LoadError::BadScale { index } => write!(
                f,
                "quantization scale {index} is not a positive normal number within range"
            ),
            LoadError::BadWeightCode { index } => {
                write!(f, "int8 weight {index} is -128 (codes are -127 to 127)")
            }
            LoadError::AccumulatorOverflow { block, output } => write!(
                f,
                "output {output} of block {block} could overflow its 32-bit accumulator"
            ),
        }
    }
}

impl fmt::Display for ActError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ActError::ObsLength { expected, found } => write!(
                f,
                "observation has {found} entries, the policy expects {expected}"
            ),
            ActError::NonFiniteObs { index } => {
                write!(f, "observation entry {index} is not finite")
            }
            ActError::ActionLength { expected, found } => write!(
                f,
                "action buffer has {found} entries, the policy acts in {expected} dimensions"
            ),
            ActError::NonFiniteAction { index } => {
                write!(f, "action entry {index} is not finite")
            }
            ActError::WeightsLength { expected, found } => write!(
                f,
                "mixing-weight buffer has {found} entries, the policy has {expected} components"
            ),
            ActError::NonFiniteOutput => write!(
                f,
                "the network produced a non-finite value (observation far outside the training range?)"
            ),
        }
    }
}

#[cfg(feature = "alloc")]
impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            WriteError::Header(e) => write!(f, "invalid policy header: {e}"),
            WriteError::WeightCount { expected, found } => write!(
                f,
                "{found} weights given, the dimensions require {expected}"
            ),
            WriteError::NonFiniteWeight { index } => write!(f, "weight {index} is not finite"),
            WriteError::Encoding => write!(
                f,
                "write_policy writes f32 (version 1) files; quantize writes version 3"
            ),
        }
    }
}

impl core::error::Error for HeaderError {}
impl core::error::Error for LoadError {}
impl core::error::Error for ActError {}
#[cfg(feature = "alloc")]
impl core::error::Error for WriteError {}
