//! Capacities: how large a policy a [`crate::Policy`] type can hold.
//!
//! The file format itself allows any dimension up to [`MAX_DIM`] and up to
//! [`MAX_HIDDEN_LAYERS`] hidden layers. What a call can evaluate is set by the three const
//! parameters of [`crate::Policy`], chosen by the caller: `ACTIONS`, `COMPONENTS` and
//! `WIDTH` (widest hidden layer). They size the scratch buffers each call puts on the stack
//! ([`scratch_bytes`]), so a device that ships a small policy names small capacities and pays
//! only for those, while a host names [`HostPolicy`]. A file larger than the type's
//! capacities is refused at load time with [`crate::HeaderError::OverCapacity`].
//!
//! ```
//! use policy_core::{math::DefaultMath, Policy};
//! // The firmware's pendulum policy: 1 action, 5 components, 64-wide layers.
//! type Pendulum<'a> = Policy<'a, DefaultMath, 1, 5, 64>;
//! assert!(policy_core::capacity::scratch_bytes(1, 5, 64) < 700);
//! # let _ = core::marker::PhantomData::<Pendulum<'static>>;
//! ```
//!
//! Observations are read from the caller's slice, so their length costs no stack.

use crate::math::DefaultMath;
use crate::Policy;

/// Largest dimension (observation, hidden width, action, components) the format stores:
/// they are 16-bit fields.
pub const MAX_DIM: usize = u16::MAX as usize;
/// Most hidden layers in the trunk (the header keeps their widths inline).
pub const MAX_HIDDEN_LAYERS: usize = 4;

/// `ACTIONS` of a plain [`Policy`]: covers classic control and most MuJoCo tasks.
pub const DEFAULT_ACTIONS: usize = 8;
/// `COMPONENTS` of a plain [`Policy`].
pub const DEFAULT_COMPONENTS: usize = 8;
/// `WIDTH` of a plain [`Policy`] (256-wide MuJoCo-size policies).
pub const DEFAULT_WIDTH: usize = 256;

/// `ACTIONS` of a [`HostPolicy`]: MyoSuite's full body has 354 muscles.
pub const HOST_ACTIONS: usize = 512;
/// `COMPONENTS` of a [`HostPolicy`].
pub const HOST_COMPONENTS: usize = 16;
/// `WIDTH` of a [`HostPolicy`].
pub const HOST_WIDTH: usize = 1024;

/// A policy type for workstations: up to 512 actions, 16 components, 1024-wide layers.
/// Each call puts [`scratch_bytes`]`(512, 16, 1024)` ≈ 78 KiB on the stack, fine for a
/// host thread, too much for most microcontrollers.
pub type HostPolicy<'a> = Policy<'a, DefaultMath, HOST_ACTIONS, HOST_COMPONENTS, HOST_WIDTH>;

/// Bytes of scratch buffers one call of a `Policy<_, _, actions, components, width>` puts
/// on the stack: two hidden-width buffers, the component means and log-stds, the mixing
/// weights and their logs, and three action-length buffers (noise, pre-squash action,
/// output). Call frames come on top: the firmware example, whose policy needs 604 B of
/// buffers, peaks at 1.9 KiB of stack with semihosting's formatting (crate README).
pub const fn scratch_bytes(actions: usize, components: usize, width: usize) -> usize {
    let floats = 2 * width + 2 * components * actions + 2 * components + 3 * actions;
    floats * core::mem::size_of::<f32>()
}
