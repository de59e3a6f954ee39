//! Compile-time capacities. They size the scratch buffers on the stack; a policy file whose
//! dimensions exceed them is rejected at load time with [`crate::LoadError::Header`].
//!
//! Stack used by one call is about `4 × (2·MAX_HIDDEN + 2·MAX_COMPONENTS·MAX_ACTION)` bytes
//! plus a few hundred bytes of bookkeeping (≈ 2.6 KiB with the values below).

/// Largest observation vector. Observations are read from the caller's slice, so this
/// costs no stack.
pub const MAX_OBS: usize = 512;
/// Widest hidden layer (covers 256-wide MuJoCo-size policies).
pub const MAX_HIDDEN: usize = 256;
/// Most hidden layers in the trunk.
pub const MAX_HIDDEN_LAYERS: usize = 4;
/// Largest action vector.
pub const MAX_ACTION: usize = 8;
/// Most mixture components.
pub const MAX_COMPONENTS: usize = 8;
