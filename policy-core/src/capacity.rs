//! Compile-time capacities. They size the scratch buffers on the stack; a policy file whose
//! dimensions exceed them is rejected at load time with [`crate::LoadError::Header`].
//!
//! The stack a call needs grows with `MAX_HIDDEN` (two hidden-width `f32` buffers) and
//! `MAX_COMPONENTS · MAX_ACTION` (the heads): about 4.4 KiB at the deepest point with the
//! values below, measured on thumbv7em (see the crate README).

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
