//! The `.mxp` policy file: one definition, read here and written here (feature `alloc`).
//!
//! A file is a sequence of [postcard](https://docs.rs/postcard)-encoded fields followed by a
//! CRC-32 (ISO-HDLC, the zlib/PNG one) of every byte before it, stored little-endian:
//!
//! | # | field | postcard type | meaning |
//! |---|---|---|---|
//! | 1 | `magic` | `[u8; 4]` | [`MAGIC`], `"MXPF"` |
//! | 2 | `version` | `u16` | [`FORMAT_VERSION`] |
//! | 3 | `obs_dim` | `u16` | observation length |
//! | 4 | `hidden_layers` | `u8` | number of hidden layers L ≥ 1 |
//! | 5 | `hidden` | L × `u16` | width of each hidden layer |
//! | 6 | `action_dim` | `u16` | action length A |
//! | 7 | `components` | `u16` | mixture components K (1 = base policy) |
//! | 8 | `activation` | enum ([`Activation`]) | hidden-layer nonlinearity |
//! | 9 | `squash` | `bool` | `tanh` squashing of actions |
//! | 10 | `log_std_min`, `log_std_max` | `f32`, `f32` | log-std clamp |
//! | 11 | `action_low`, `action_high` | A × `f32`, A × `f32` | action box |
//! | 12 | `weights` | `&[u8]` | all parameters as little-endian `f32`, order below |
//! | 13 | CRC-32 | 4 raw bytes, LE | over fields 1–12 |
//!
//! **Weight order** ([`Header::blocks`]): the hidden layers in order, then the heads `mean`
//! (K·A outputs, component-major: output `k·A + d`), `log_std` (same layout) and `logits`
//! (K outputs). Each block is its weight matrix stored **input-major** (`w[i][o]` at
//! `i·outputs + o`, i.e. the transpose of a PyTorch/candle `Linear` weight) followed by its
//! bias. Input-major lets the matrix–vector product run as contiguous multiply-adds.
//!
//! A reader checks, in this order: length, CRC, magic, version (2 only with feature `int8`:
//! [`FORMAT_VERSION_INT8`]), number of hidden layers
//! ([`MAX_HIDDEN_LAYERS`]), bounds, weight-block size, finiteness of every weight. Whether
//! the dimensions fit a [`crate::Policy`] type's capacities is checked when it loads.
//!
//! `policy-core/FORMAT.md` specifies all of this byte by byte for readers in other
//! languages, with a worked hex dump and the arithmetic that evaluates a policy.

use crate::capacity::{MAX_DIM, MAX_HIDDEN_LAYERS};
use crate::error::{HeaderError, LoadError};
use heapless::Vec as FixedVec;
use serde::{Deserialize, Serialize};

/// First four bytes of every policy file.
pub const MAGIC: [u8; 4] = *b"MXPF";
/// Version 1: every parameter an `f32`. `write_policy` (feature `alloc`) writes it; every
/// build reads it.
pub const FORMAT_VERSION: u16 = 1;
/// Version 3: int8 weights (output-major) with per-output `f32` scales, quantized
/// activations (module `int8`, feature `int8`). Same header as version 1; only the weight
/// bytes differ. A build without feature `int8` refuses it with
/// [`LoadError::Int8FeatureDisabled`].
pub const FORMAT_VERSION_INT8: u16 = 3;
/// Version 2: the same int8 scheme with the weights stored input-major, as `mixsac quantize`
/// wrote them until the layout changed for the Cortex-M4 kernel. Its bytes would parse as
/// version 3 and act wrongly, so every build refuses it with [`LoadError::RetiredVersion`].
pub const RETIRED_INT8_VERSION: u16 = 2;
/// The newest version policy-core knows; a later one is refused with
/// [`LoadError::UnsupportedVersion`]. A build reads versions 1 and 3, version 3 only with
/// feature `int8`.
pub const NEWEST_VERSION: u16 = FORMAT_VERSION_INT8;
/// Size of the smallest possible policy file (all dimensions 1, one hidden layer).
pub const MIN_FILE_LEN: usize = 65;

/// Log-std clamp bounds must lie within these: σ between 4e-18 and 2e17 keeps `exp(±log σ)`,
/// the sampled pre-squash action and the log-density finite in f32.
pub const LOG_STD_LIMITS: (f32, f32) = (-40.0, 40.0);

const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// (scale, offset) of the box [lo, hi]: a = scale · y + offset maps [−1, 1] onto it.
/// Halving first keeps both finite for any finite bounds.
pub(crate) fn box_affine(lo: f32, hi: f32) -> (f32, f32) {
    (hi / 2.0 - lo / 2.0, hi / 2.0 + lo / 2.0)
}

/// How the parameters are stored: the format version (1 or 3) says which.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Version 1: every parameter a little-endian `f32` (§4 of FORMAT.md).
    F32,
    /// Version 3: int8 weights, `i32` biases, `f32` scales (module `int8`, §8 of FORMAT.md;
    /// read only with feature `int8`).
    Int8,
}

impl Encoding {
    /// The format version that stores parameters this way.
    pub fn version(self) -> u16 {
        match self {
            Encoding::F32 => FORMAT_VERSION,
            Encoding::Int8 => FORMAT_VERSION_INT8,
        }
    }

    fn of_version(version: u16) -> Option<Encoding> {
        match version {
            FORMAT_VERSION => Some(Encoding::F32),
            FORMAT_VERSION_INT8 => Some(Encoding::Int8),
            _ => None,
        }
    }
}

/// Hidden-layer nonlinearity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Activation {
    /// `max(0, x)`
    Relu,
    /// `tanh(x)`
    Tanh,
}

/// A list of `f32`s read in place: the action bounds of a parsed file (little-endian bytes
/// inside the file), or a caller's slice. With feature `alloc` it can also own its values
/// (`Header::into_owned`, feature `alloc`).
#[derive(Clone)]
pub struct Floats<'a>(FloatsRepr<'a>);

#[derive(Clone)]
enum FloatsRepr<'a> {
    LeBytes(&'a [[u8; 4]]),
    Native(&'a [f32]),
    #[cfg(feature = "alloc")]
    Owned(alloc::vec::Vec<f32>),
}

impl<'a> Floats<'a> {
    /// The values of a slice.
    pub fn new(values: &'a [f32]) -> Floats<'a> {
        Floats(FloatsRepr::Native(values))
    }

    fn from_le_bytes(bytes: &'a [u8]) -> Floats<'a> {
        Floats(FloatsRepr::LeBytes(bytes.as_chunks::<4>().0))
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        match &self.0 {
            FloatsRepr::LeBytes(b) => b.len(),
            FloatsRepr::Native(v) => v.len(),
            #[cfg(feature = "alloc")]
            FloatsRepr::Owned(v) => v.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Value `i`, if there is one.
    pub fn get(&self, i: usize) -> Option<f32> {
        match &self.0 {
            FloatsRepr::LeBytes(b) => b.get(i).map(|w| f32::from_le_bytes(*w)),
            FloatsRepr::Native(v) => v.get(i).copied(),
            #[cfg(feature = "alloc")]
            FloatsRepr::Owned(v) => v.get(i).copied(),
        }
    }

    /// The values in order.
    pub fn iter(&self) -> impl Iterator<Item = f32> + '_ {
        (0..self.len()).filter_map(|i| self.get(i))
    }

    /// The values as a vector.
    #[cfg(feature = "alloc")]
    pub fn to_vec(&self) -> alloc::vec::Vec<f32> {
        self.iter().collect()
    }
}

impl PartialEq for Floats<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().zip(other.iter()).all(|(a, b)| a == b)
    }
}

impl core::fmt::Debug for Floats<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// Everything about a policy except its weights. Borrows the action bounds from the file
/// (or from the slices given to [`Header::new`]), so its size does not grow with them.
#[derive(Debug, Clone, PartialEq)]
pub struct Header<'a> {
    /// Observation length.
    pub obs_dim: usize,
    /// Width of each hidden layer.
    pub hidden: FixedVec<usize, MAX_HIDDEN_LAYERS>,
    /// Action length A.
    pub action_dim: usize,
    /// Mixture components K (1 = base policy).
    pub components: usize,
    /// Hidden-layer nonlinearity.
    pub activation: Activation,
    /// Whether actions are `tanh`-squashed into the box (else clipped to it).
    pub squash: bool,
    /// Lower log-std clamp.
    pub log_std_min: f32,
    /// Upper log-std clamp.
    pub log_std_max: f32,
    /// Lower action bounds, one per action dimension.
    pub action_low: Floats<'a>,
    /// Upper action bounds, one per action dimension.
    pub action_high: Floats<'a>,
    /// How the parameters are stored (the file's format version).
    pub encoding: Encoding,
}

/// Which parameter block of the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockKind {
    /// Hidden layer `i` (0-based).
    Hidden(usize),
    /// Component means, K·A outputs.
    Mean,
    /// Component log-stds, K·A outputs.
    LogStd,
    /// Mixing logits, K outputs.
    Logits,
}

/// One dense layer's place in the weight block: `inputs × outputs` weights (input-major),
/// then `outputs` biases, starting at `offset` (counted in `f32`s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    /// Which block.
    pub kind: BlockKind,
    /// Input width.
    pub inputs: usize,
    /// Output width.
    pub outputs: usize,
    /// Index of the block's first weight.
    pub offset: usize,
}

impl Block {
    /// Index of weight `w[input][output]`.
    pub fn weight_index(&self, input: usize, output: usize) -> usize {
        self.offset + input * self.outputs + output
    }
    /// Index of bias `b[output]`.
    pub fn bias_index(&self, output: usize) -> usize {
        self.offset + self.inputs * self.outputs + output
    }
    /// Number of parameters in the block.
    pub fn len(&self) -> usize {
        (self.inputs + 1) * self.outputs
    }
    /// Whether the block has no parameters (never, for a valid header).
    pub fn is_empty(&self) -> bool {
        self.outputs == 0
    }
}

impl<'a> Header<'a> {
    /// A validated header. Bounds slices must have `action_dim` entries; the header borrows
    /// them (`Header::into_owned`, feature `alloc`, copies them).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        obs_dim: usize,
        hidden: &[usize],
        action_dim: usize,
        components: usize,
        activation: Activation,
        squash: bool,
        log_std_bounds: (f32, f32),
        action_low: &'a [f32],
        action_high: &'a [f32],
    ) -> Result<Header<'a>, HeaderError> {
        let over = |what, value, capacity| HeaderError::OverCapacity {
            what,
            value,
            capacity,
        };
        let hidden = FixedVec::from_slice(hidden)
            .map_err(|_| over("hidden layers", hidden.len(), MAX_HIDDEN_LAYERS))?;
        let bounds_len = HeaderError::BoundsLength {
            expected: action_dim,
            found: action_low.len().max(action_high.len()),
        };
        if action_low.len() != action_dim || action_high.len() != action_dim {
            return Err(bounds_len);
        }
        let header = Header {
            obs_dim,
            hidden,
            action_dim,
            components,
            activation,
            squash,
            log_std_min: log_std_bounds.0,
            log_std_max: log_std_bounds.1,
            action_low: Floats::new(action_low),
            action_high: Floats::new(action_high),
            encoding: Encoding::F32,
        };
        header.validate()?;
        Ok(header)
    }

    /// The same header owning a copy of its bounds.
    #[cfg(feature = "alloc")]
    pub fn into_owned(self) -> Header<'static> {
        let owned = |f: Floats<'_>| Floats(FloatsRepr::Owned(f.to_vec()));
        Header {
            obs_dim: self.obs_dim,
            hidden: self.hidden,
            action_dim: self.action_dim,
            components: self.components,
            activation: self.activation,
            squash: self.squash,
            log_std_min: self.log_std_min,
            log_std_max: self.log_std_max,
            action_low: owned(self.action_low),
            action_high: owned(self.action_high),
            encoding: self.encoding,
        }
    }

    /// Checks the dimensions against the format's limits ([`crate::capacity::MAX_DIM`],
    /// [`MAX_HIDDEN_LAYERS`], a weight block addressable on this target) and the bounds
    /// for sanity.
    pub fn validate(&self) -> Result<(), HeaderError> {
        let dims = [
            ("obs", self.obs_dim, MAX_DIM),
            ("hidden layers", self.hidden.len(), MAX_HIDDEN_LAYERS),
            ("action", self.action_dim, MAX_DIM),
            ("components", self.components, MAX_DIM),
        ];
        let widths = self.hidden.iter().map(|&w| ("hidden", w, MAX_DIM));
        for (what, value, capacity) in dims.into_iter().chain(widths) {
            if value == 0 {
                return Err(HeaderError::ZeroDim { what });
            }
            if value > capacity {
                return Err(HeaderError::OverCapacity {
                    what,
                    value,
                    capacity,
                });
            }
        }
        if self.action_low.len() != self.action_dim || self.action_high.len() != self.action_dim {
            return Err(HeaderError::BoundsLength {
                expected: self.action_dim,
                found: self.action_low.len(),
            });
        }
        if self.weight_bytes().is_none() {
            return Err(HeaderError::TooLarge);
        }
        for (dim, (lo, hi)) in self
            .action_low
            .iter()
            .zip(self.action_high.iter())
            .enumerate()
        {
            let (scale, offset) = box_affine(lo, hi);
            // The squash maps onto the box through scale and offset, so both must be
            // finite and the scale a normal positive number (its log enters log π).
            if !(lo < hi && scale.is_normal() && scale > 0.0 && offset.is_finite()) {
                return Err(HeaderError::ActionBounds { dim });
            }
        }
        let (lo, hi) = (self.log_std_min, self.log_std_max);
        let (min, max) = LOG_STD_LIMITS;
        if !(min <= lo && lo <= hi && hi <= max) {
            return Err(HeaderError::LogStdBounds);
        }
        Ok(())
    }

    /// The parameter blocks in file order (see the module docs).
    pub fn blocks(&self) -> FixedVec<Block, { MAX_HIDDEN_LAYERS + 3 }> {
        let mut blocks = FixedVec::new();
        let mut offset = 0;
        let mut inputs = self.obs_dim;
        let heads = [
            (BlockKind::Mean, self.components * self.action_dim),
            (BlockKind::LogStd, self.components * self.action_dim),
            (BlockKind::Logits, self.components),
        ];
        let hidden = self.hidden.iter().enumerate();
        let layers = hidden.map(|(i, &w)| (BlockKind::Hidden(i), w));
        let last_hidden = self.hidden.last().copied().unwrap_or(self.obs_dim);
        for (kind, outputs) in layers.chain(heads) {
            if matches!(kind, BlockKind::Mean) {
                inputs = last_hidden;
            }
            let block = Block {
                kind,
                inputs,
                outputs,
                offset,
            };
            offset += block.len();
            if let BlockKind::Hidden(_) = kind {
                inputs = outputs;
            }
            // Capacity MAX_HIDDEN_LAYERS + 3 always suffices for a header of at most
            // MAX_HIDDEN_LAYERS hidden layers, so push cannot fail.
            let _ = blocks.push(block);
        }
        blocks
    }

    /// Total number of parameters (weights and biases) of the network.
    pub fn weight_count(&self) -> usize {
        self.blocks().iter().map(Block::len).sum()
    }

    /// Bytes of field 12 (the parameters) that this header's dimensions and encoding
    /// require; `None` if they are not addressable on this target.
    pub fn weight_bytes_len(&self) -> Option<usize> {
        self.weight_bytes()
    }

    /// Size of the weight block in bytes, if it is addressable on this target (16-bit
    /// dimensions can describe more than 4 GiB of weights: a 32-bit device must not
    /// compute their offsets with wrapping arithmetic).
    fn weight_bytes(&self) -> Option<usize> {
        let (obs, k, a) = (
            self.obs_dim as u64,
            self.components as u64,
            self.action_dim as u64,
        );
        let mut inputs = obs;
        // (matrix entries, outputs) over all blocks.
        let (mut matrix, mut outputs) = (0u64, 0u64);
        for &w in &self.hidden {
            matrix += inputs * w as u64;
            outputs += w as u64;
            inputs = w as u64;
        }
        matrix += inputs * (2 * k * a + k);
        outputs += 2 * k * a + k;
        let bytes = match self.encoding {
            Encoding::F32 => (matrix + outputs).checked_mul(4)?,
            // Observation scales, one activation scale per hidden layer, a scale and a
            // bias per output (4 bytes each), one byte per matrix entry.
            Encoding::Int8 => 4 * (obs + self.hidden.len() as u64) + 8 * outputs + matrix,
        };
        usize::try_from(bytes).ok()
    }
}

/// Sequential postcard decoding with the field name attached to any failure.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take<T: Deserialize<'a>>(&mut self, field: &'static str) -> Result<T, LoadError> {
        let (value, rest) =
            postcard::take_from_bytes(self.rest).map_err(|_| LoadError::Malformed { field })?;
        self.rest = rest;
        Ok(value)
    }

    fn take_dim(&mut self, field: &'static str) -> Result<usize, LoadError> {
        self.take::<u16>(field).map(usize::from)
    }

    /// `n` values into a fixed vector whose capacity was already checked against `n`.
    fn take_many<T: Deserialize<'a>, const N: usize>(
        &mut self,
        n: usize,
        field: &'static str,
    ) -> Result<FixedVec<T, N>, LoadError> {
        let mut out = FixedVec::new();
        for _ in 0..n {
            let value = self.take(field)?;
            out.push(value)
                .map_err(|_| LoadError::Malformed { field })?;
        }
        Ok(out)
    }

    /// `n` `f32`s, left in place: postcard stores each as 4 little-endian bytes.
    fn take_floats(&mut self, n: usize, field: &'static str) -> Result<Floats<'a>, LoadError> {
        let len = n.checked_mul(4).ok_or(LoadError::Malformed { field })?;
        let (floats, rest) = self
            .rest
            .split_at_checked(len)
            .ok_or(LoadError::Malformed { field })?;
        self.rest = rest;
        Ok(Floats::from_le_bytes(floats))
    }
}

/// Checks a file and splits it into its header and its weight bytes (borrowed, not copied).
pub fn parse(bytes: &[u8]) -> Result<(Header<'_>, &[u8]), LoadError> {
    if bytes.is_empty() {
        return Err(LoadError::Empty);
    }
    if bytes.len() < MIN_FILE_LEN {
        return Err(LoadError::Truncated {
            len: bytes.len(),
            min: MIN_FILE_LEN,
        });
    }
    let (body, crc_bytes) = bytes.split_at(bytes.len().saturating_sub(4));
    let stored =
        crc_bytes
            .try_into()
            .map(u32::from_le_bytes)
            .map_err(|_| LoadError::Truncated {
                len: bytes.len(),
                min: MIN_FILE_LEN,
            })?;
    let computed = CRC.checksum(body);
    if stored != computed {
        return Err(LoadError::BadCrc { stored, computed });
    }

    let mut r = Reader { rest: body };
    let magic: [u8; 4] = r.take("magic")?;
    if magic != MAGIC {
        return Err(LoadError::BadMagic { found: magic });
    }
    let version: u16 = r.take("version")?;
    if version == RETIRED_INT8_VERSION {
        return Err(LoadError::RetiredVersion { found: version });
    }
    let encoding = Encoding::of_version(version).ok_or(LoadError::UnsupportedVersion {
        found: version,
        supported: NEWEST_VERSION,
    })?;
    #[cfg(not(feature = "int8"))]
    if encoding == Encoding::Int8 {
        return Err(LoadError::Int8FeatureDisabled);
    }
    let obs_dim = r.take_dim("obs_dim")?;
    let layers = usize::from(r.take::<u8>("hidden_layers")?);
    check_capacity("hidden layers", layers, MAX_HIDDEN_LAYERS)?;
    let hidden_u16: FixedVec<u16, MAX_HIDDEN_LAYERS> = r.take_many(layers, "hidden")?;
    let action_dim = r.take_dim("action_dim")?;
    let components = r.take_dim("components")?;
    let activation = r.take("activation")?;
    let squash = r.take("squash")?;
    let log_std_min = r.take("log_std_min")?;
    let log_std_max = r.take("log_std_max")?;
    let action_low = r.take_floats(action_dim, "action_low")?;
    let action_high = r.take_floats(action_dim, "action_high")?;
    let weights: &[u8] = r.take("weights")?;
    if !r.rest.is_empty() {
        return Err(LoadError::Malformed {
            field: "trailing bytes",
        });
    }

    // Pushes rather than collect(): heapless's FromIterator panics on overflow.
    let mut hidden = FixedVec::new();
    for &w in &hidden_u16 {
        hidden
            .push(usize::from(w))
            .map_err(|_| LoadError::Malformed { field: "hidden" })?;
    }
    let header = Header {
        obs_dim,
        hidden,
        action_dim,
        components,
        activation,
        squash,
        log_std_min,
        log_std_max,
        action_low,
        action_high,
        encoding,
    };
    header.validate()?;
    // `validate` checked that the length is addressable.
    let expected = header.weight_bytes().unwrap_or(usize::MAX);
    if weights.len() != expected {
        return Err(LoadError::WeightsLength {
            expected,
            found: weights.len(),
        });
    }
    match encoding {
        Encoding::F32 => {
            if let Some(index) = le_f32s(weights).position(|w| !w.is_finite()) {
                return Err(LoadError::NonFiniteWeight { index });
            }
        }
        #[cfg(feature = "int8")]
        Encoding::Int8 => crate::int8::Params::new(&header, weights)?.validate()?,
        // Refused at the version check above.
        #[cfg(not(feature = "int8"))]
        Encoding::Int8 => return Err(LoadError::Int8FeatureDisabled),
    }
    Ok((header, weights))
}

fn check_capacity(what: &'static str, value: usize, capacity: usize) -> Result<(), LoadError> {
    if value > capacity {
        return Err(HeaderError::OverCapacity {
            what,
            value,
            capacity,
        }
        .into());
    }
    Ok(())
}

/// The little-endian `f32`s of a byte slice, read in place.
pub(crate) fn le_f32s(bytes: &[u8]) -> impl Iterator<Item = f32> + '_ {
    bytes
        .as_chunks::<4>()
        .0
        .iter()
        .map(|w| f32::from_le_bytes(*w))
}

/// Encodes a version-1 (`f32`) policy file. The trainer's export goes through here, so
/// there is one writer; `quantize` (features `alloc` and `int8`) writes version 3 through
/// the same encoder.
#[cfg(feature = "alloc")]
pub fn write_policy(
    header: &Header,
    weights: &[f32],
) -> Result<alloc::vec::Vec<u8>, crate::WriteError> {
    use crate::WriteError;
    header.validate()?;
    if header.encoding != Encoding::F32 {
        return Err(WriteError::Encoding);
    }
    let expected = header.weight_count();
    if weights.len() != expected {
        return Err(WriteError::WeightCount {
            expected,
            found: weights.len(),
        });
    }
    if let Some(index) = weights.iter().position(|w| !w.is_finite()) {
        return Err(WriteError::NonFiniteWeight { index });
    }
    let weight_bytes: alloc::vec::Vec<u8> = weights.iter().flat_map(|w| w.to_le_bytes()).collect();
    Ok(encode(header, &weight_bytes))
}

/// The file of a validated header and its field-12 bytes (whose length the caller checked).
#[cfg(feature = "alloc")]
pub(crate) fn encode(header: &Header, weight_bytes: &[u8]) -> alloc::vec::Vec<u8> {
    // Validated dimensions are at most MAX_DIM = u16::MAX.
    let dim = |d: usize| d as u16;
    let mut out = alloc::vec::Vec::with_capacity(weight_bytes.len() + 64);
    let mut put = |v: &dyn Put| v.put(&mut out);
    put(&MAGIC);
    put(&header.encoding.version());
    put(&dim(header.obs_dim));
    put(&(header.hidden.len() as u8));
    for &w in &header.hidden {
        put(&dim(w));
    }
    put(&dim(header.action_dim));
    put(&dim(header.components));
    put(&header.activation);
    put(&header.squash);
    put(&header.log_std_min);
    put(&header.log_std_max);
    for v in header.action_low.iter().chain(header.action_high.iter()) {
        put(&v);
    }
    put(&weight_bytes);
    let crc = CRC.checksum(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Appends one field's postcard encoding (object-safe, so one closure writes every field).
#[cfg(feature = "alloc")]
trait Put {
    fn put(&self, out: &mut alloc::vec::Vec<u8>);
}

#[cfg(feature = "alloc")]
impl<T: Serialize> Put for T {
    fn put(&self, out: &mut alloc::vec::Vec<u8>) {
        // postcard cannot fail on plain numbers, arrays, enums and byte slices into a Vec.
        if let Ok(bytes) = postcard::to_allocvec(self) {
            out.extend_from_slice(&bytes);
        }
    }
}
