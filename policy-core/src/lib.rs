//! Evaluate and sample trained mixture policies on anything from a workstation to a
//! Cortex-M4F: `#![no_std]`, no heap, fixed-size scratch buffers, no panics.
//!
//! A policy is a state-conditioned mixture of K (squashed) Gaussians over the whole action
//! vector (a *joint* mixture): an MLP trunk maps the observation to component means,
//! log-standard-deviations and mixing logits (DESIGN.md §3). K = 1 is the base policy.
//! Policies arrive as `.mxp` files ([`format`]) and are read in place: loading copies no weights.
//!
//! ```
//! use policy_core::{Policy, format::{Activation, Header}};
//! use rand_pcg::Pcg32;
//! # let header = Header::new(3, &[16, 16], 1, 2, Activation::Relu, true, (-20.0, 2.0), &[-2.0], &[2.0]).unwrap();
//! # let bytes = policy_core::testing::random_policy(&header, 7, 0.5);
//! // `bytes` holds an .mxp file, e.g. `include_bytes!("policy.mxp")` on a device.
//! let policy = Policy::from_bytes(&bytes)?;
//! let mut rng = Pcg32::new(0xcafe_f00d_d15e_a5e5, 0x0a02_bdbf_7bb3_c0a7);
//! let mut action = [0.0f32; 1];
//! let sample = policy.sample(&[1.0, 0.0, 0.5], &mut rng, &mut action)?;
//! assert!((-2.0..=2.0).contains(&action[0]));
//! assert!(sample.component < 2 && sample.log_prob.is_finite());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Features: `alloc` adds the `.mxp` writer (`format::write_policy`); `std` adds
//! `testing`, helpers for host-side tests of a shipped policy; `fast-math` swaps libm for
//! micromath approximations (accuracy measured in this crate's README); `int8` reads and
//! evaluates format version 3 (int8 weights, the `int8` module) and, with `alloc`, adds the
//! quantizer (`quantize`). Without `int8` a version-3 file is refused with
//! [`LoadError::Int8FeatureDisabled`], and its validation and evaluation are not compiled.
#![no_std]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::unreachable,
        clippy::todo,
        clippy::unimplemented
    )
)]
#![warn(missing_docs)]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod capacity;
mod error;
pub mod format;
#[cfg(feature = "int8")]
pub mod int8;
pub mod math;
mod mixture;
mod mlp;
mod policy;
#[cfg(feature = "int8")]
mod qdot;
#[cfg(feature = "int8")]
mod qnet;
#[cfg(all(feature = "alloc", feature = "int8"))]
pub mod quantize;
mod random;
#[cfg(feature = "std")]
pub mod testing;

pub use capacity::HostPolicy;
#[cfg(feature = "alloc")]
pub use error::WriteError;
pub use error::{ActError, HeaderError, LoadError};
pub use policy::{Policy, Sample};
