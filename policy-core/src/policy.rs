//! A loaded policy and what it can do: sample, act deterministically, score actions.

use crate::capacity::{DEFAULT_ACTIONS, DEFAULT_COMPONENTS, DEFAULT_WIDTH};
use crate::error::{ActError, HeaderError, LoadError};
use crate::format::{self, Encoding, Header};
use crate::math::{clip, DefaultMath, Math};
use crate::mixture;
use crate::mlp::{Heads, Network};
#[cfg(feature = "int8")]
use crate::qnet::QNetwork;
use crate::random;
use core::marker::PhantomData;
use rand_core::RngCore;

/// The pre-squash action is recovered from a given action through
/// `atanh(clamp(y, ±(1 − ATANH_CLAMP)))`, so a bound itself has a finite log-prob.
const ATANH_CLAMP: f32 = 1e-6;

/// A policy read from `.mxp` bytes. Borrows the bytes (weights are read in place).
///
/// `M` picks the scalar math ([`DefaultMath`] unless you ask for another). `ACTIONS`,
/// `COMPONENTS` and `WIDTH` are the largest action dimension, number of components and
/// hidden width this type holds: they size the buffers each call puts on the stack
/// ([`crate::capacity::scratch_bytes`]), and a larger file is refused by [`Policy::load`].
/// The defaults (8, 8, 256) suit classic control and most MuJoCo tasks;
/// [`crate::capacity::HostPolicy`] holds 512, 16, 1024; a device names its policy's own
/// sizes, e.g. `Policy<'_, DefaultMath, 1, 5, 64>`.
#[derive(Debug, Clone)]
pub struct Policy<
    'a,
    M: Math = DefaultMath,
    const ACTIONS: usize = DEFAULT_ACTIONS,
    const COMPONENTS: usize = DEFAULT_COMPONENTS,
    const WIDTH: usize = DEFAULT_WIDTH,
> {
    header: Header<'a>,
    net: Net<'a>,
    /// (high − low)/2 per action dimension.
    scale: [f32; ACTIONS],
    /// (high + low)/2 per action dimension.
    offset: [f32; ACTIONS],
    /// Σ_d ln scale_d, the constant part of the squash log-det.
    log_scale_sum: f32,
    math: PhantomData<M>,
}

/// The network of either encoding; everything after the heads is shared. Without feature
/// `int8` it has the one variant, and dispatching on it costs nothing.
#[derive(Debug, Clone)]
enum Net<'a> {
    /// Version 1: `f32` weights.
    F32(Network<'a>),
    /// Version 3: int8 weights, integer dot products (`qnet.rs`).
    #[cfg(feature = "int8")]
    Int8(QNetwork<'a>),
}

/// What [`Policy::sample`] drew besides the action.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Index of the mixture component the action came from.
    pub component: usize,
    /// log π(a|s) of the emitted action, evaluated at its pre-squash value.
    pub log_prob: f32,
}

impl<'a> Policy<'a> {
    /// Checks and loads a policy file with the default math and capacities: CRC, magic,
    /// version, dimensions, weights (see [`format`]). Nothing is copied; the policy borrows
    /// `bytes`. [`Policy::load`] does the same for any math and capacities.
    pub fn from_bytes(bytes: &'a [u8]) -> Result<Self, LoadError> {
        Self::load(bytes)
    }
}

impl<'a, M: Math, const ACTIONS: usize, const COMPONENTS: usize, const WIDTH: usize>
    Policy<'a, M, ACTIONS, COMPONENTS, WIDTH>
{
    /// Checks and loads a policy file (as [`Policy::from_bytes`]) into this type; a file
    /// whose action dimension, components or a hidden width exceed the type's capacities is
    /// refused with [`HeaderError::OverCapacity`].
    ///
    /// ```
    /// # use policy_core::{format::{Activation, Header}, math::DefaultMath, Policy, HeaderError, LoadError};
    /// # let header = Header::new(3, &[64, 64], 1, 5, Activation::Relu, true, (-20.0, 2.0), &[-2.0], &[2.0]).unwrap();
    /// # let bytes = policy_core::testing::random_policy(&header, 7, 0.5);
    /// let policy = Policy::<DefaultMath, 1, 5, 64>::load(&bytes)?;
    /// let too_small = Policy::<DefaultMath, 1, 4, 64>::load(&bytes).unwrap_err();
    /// assert_eq!(too_small, LoadError::Header(HeaderError::OverCapacity { what: "components", value: 5, capacity: 4 }));
    /// # Ok::<(), LoadError>(())
    /// ```
    pub fn load(bytes: &'a [u8]) -> Result<Self, LoadError> {
        let (header, weights) = format::parse(bytes)?;
        let over = |what, value, capacity| HeaderError::OverCapacity {
            what,
            value,
            capacity,
        };
        if header.action_dim > ACTIONS {
            return Err(over("action", header.action_dim, ACTIONS).into());
        }
        if header.components > COMPONENTS {
            return Err(over("components", header.components, COMPONENTS).into());
        }
        if let Some(&width) = header.hidden.iter().find(|&&w| w > WIDTH) {
            return Err(over("hidden", width, WIDTH).into());
        }
        let net = match header.encoding {
            Encoding::F32 => Net::F32(Network::new(&header, weights)?),
            #[cfg(feature = "int8")]
            Encoding::Int8 => Net::Int8(QNetwork::new(&header, weights)?),
            // `format::parse` already refused it; this build has no int8 network.
            #[cfg(not(feature = "int8"))]
            Encoding::Int8 => return Err(LoadError::Int8FeatureDisabled),
        };
        let mut scale = [1.0; ACTIONS];
        let mut offset = [0.0; ACTIONS];
        let bounds = header.action_low.iter().zip(header.action_high.iter());
        for ((s, o), (lo, hi)) in scale.iter_mut().zip(offset.iter_mut()).zip(bounds) {
            (*s, *o) = format::box_affine(lo, hi);
        }
        let log_scale_sum = scale
            .iter()
            .take(header.action_dim)
            .map(|&s| M::ln(s))
            .sum();
        Ok(Policy {
            header,
            net,
            scale,
            offset,
            log_scale_sum,
            math: PhantomData,
        })
    }

    /// The file's header: dimensions, bounds, activation, squash flag.
    pub fn header(&self) -> &Header<'a> {
        &self.header
    }

    /// Observation length.
    pub fn obs_dim(&self) -> usize {
        self.header.obs_dim
    }

    /// Action length.
    pub fn action_dim(&self) -> usize {
        self.header.action_dim
    }

    /// Number of mixture components.
    pub fn components(&self) -> usize {
        self.header.components
    }

    /// Draws an action into `action` (length [`Self::action_dim`]). The action is finite
    /// and inside `[low, high]`; for unsquashed policies it is the Gaussian draw clipped to
    /// the box, and `log_prob` is that of the unclipped draw.
    pub fn sample<R: RngCore + ?Sized>(
        &self,
        obs: &[f32],
        rng: &mut R,
        action: &mut [f32],
    ) -> Result<Sample, ActError> {
        self.check_action_len(action.len())?;
        let mut heads = Heads::<ACTIONS, COMPONENTS>::default();
        self.forward(obs, &mut heads)?;
        let w = heads.w.get(..self.components()).unwrap_or(&[]);
        let component = random::categorical(rng, w);
        let mut eps = [0.0f32; ACTIONS];
        let eps = eps.get_mut(..self.action_dim()).unwrap_or(&mut []);
        random::standard_normals::<M, R>(rng, eps);

        let mut u = [0.0f32; ACTIONS];
        let u = u.get_mut(..self.action_dim()).unwrap_or(&mut []);
        let a = self.action_dim();
        let start = component * a;
        let mean = heads.mean().iter().skip(start);
        let log_std = heads.log_std().iter().skip(start);
        for (((u, &e), &m), &ls) in u.iter_mut().zip(eps.iter()).zip(mean).zip(log_std) {
            *u = m + M::exp(ls) * e;
        }
        let log_prob = self.log_prob_at(&heads, u)?;
        self.emit(u, action)?;
        Ok(Sample {
            component,
            log_prob,
        })
    }

    /// The deterministic action: the (squashed) mean of the most probable component.
    /// Returns that component's index.
    pub fn mode(&self, obs: &[f32], action: &mut [f32]) -> Result<usize, ActError> {
        self.check_action_len(action.len())?;
        let mut heads = Heads::<ACTIONS, COMPONENTS>::default();
        self.forward(obs, &mut heads)?;
        let log_w = self.log_w(&heads);
        let mut component = 0;
        for (k, &lw) in log_w.iter().enumerate() {
            if lw > log_w.get(component).copied().unwrap_or(f32::NEG_INFINITY) {
                component = k;
            }
        }
        let a = self.action_dim();
        let mean = heads
            .mean()
            .get(component * a..(component + 1) * a)
            .unwrap_or(&[]);
        self.emit(mean, action)?;
        Ok(component)
    }

    /// log π(a|s) of a given action. For squashed policies the pre-squash value is
    /// `atanh(clamp((a − bias)/scale, ±(1 − 1e-6)))`. −∞ where the density underflows f32.
    pub fn log_prob(&self, obs: &[f32], action: &[f32]) -> Result<f32, ActError> {
        self.check_action(action)?;
        let mut heads = Heads::<ACTIONS, COMPONENTS>::default();
        self.forward(obs, &mut heads)?;
        if !self.header.squash {
            return self.log_prob_at(&heads, action);
        }
        let mut u = [0.0f32; ACTIONS];
        let u = u.get_mut(..self.action_dim()).unwrap_or(&mut []);
        let per_dim = action.iter().zip(&self.scale).zip(&self.offset);
        for (u, ((&a, &s), &o)) in u.iter_mut().zip(per_dim) {
            let y = clip((a - o) / s, -1.0 + ATANH_CLAMP, 1.0 - ATANH_CLAMP);
            *u = M::atanh(y);
        }
        self.log_prob_at(&heads, u)
    }

    /// log π(a|s) where a = squash(u), given the pre-squash action `u` itself (exact for
    /// any |u|, where going through `a` would lose precision). Same as
    /// [`Self::log_prob`] for unsquashed policies.
    pub fn log_prob_pre_squash(&self, obs: &[f32], u: &[f32]) -> Result<f32, ActError> {
        self.check_action(u)?;
        let mut heads = Heads::<ACTIONS, COMPONENTS>::default();
        self.forward(obs, &mut heads)?;
        self.log_prob_at(&heads, u)
    }

    /// The mixing weights w = softmax(logits) at `obs`, written to `weights`
    /// (length [`Self::components`]).
    pub fn mixing_weights(&self, obs: &[f32], weights: &mut [f32]) -> Result<(), ActError> {
        if weights.len() != self.components() {
            return Err(ActError::WeightsLength {
                expected: self.components(),
                found: weights.len(),
            });
        }
        let mut heads = Heads::<ACTIONS, COMPONENTS>::default();
        self.forward(obs, &mut heads)?;
        weights
            .iter_mut()
            .zip(heads.w)
            .for_each(|(out, w)| *out = w);
        Ok(())
    }

    fn forward(&self, obs: &[f32], heads: &mut Heads<ACTIONS, COMPONENTS>) -> Result<(), ActError> {
        if obs.len() != self.obs_dim() {
            return Err(ActError::ObsLength {
                expected: self.obs_dim(),
                found: obs.len(),
            });
        }
        if let Some(index) = obs.iter().position(|x| !x.is_finite()) {
            return Err(ActError::NonFiniteObs { index });
        }
        match &self.net {
            Net::F32(net) => net.forward::<M, ACTIONS, COMPONENTS, WIDTH>(obs, heads),
            #[cfg(feature = "int8")]
            Net::Int8(net) => net.forward::<M, ACTIONS, COMPONENTS, WIDTH>(obs, heads),
        }
    }

    /// The heads at `obs` (for the host-side checks in `testing`).
    #[cfg(feature = "std")]
    pub(crate) fn heads_at(&self, obs: &[f32]) -> Result<Heads<ACTIONS, COMPONENTS>, ActError> {
        let mut heads = Heads::<ACTIONS, COMPONENTS>::default();
        self.forward(obs, &mut heads)?;
        Ok(heads)
    }

    /// The 1-D action emitted for pre-squash value `u`, exactly as [`Self::sample`]
    /// computes it (for the host-side checks in `testing`).
    #[cfg(feature = "std")]
    pub(crate) fn emit_first(&self, u: f32) -> Result<f32, ActError> {
        let mut a = [0.0f32];
        self.emit(&[u], &mut a)?;
        Ok(a[0])
    }

    fn log_w<'h>(&self, heads: &'h Heads<ACTIONS, COMPONENTS>) -> &'h [f32] {
        heads.log_w.get(..self.components()).unwrap_or(&[])
    }

    /// log π at the pre-squash action `u`. May be −∞ where the density underflows f32
    /// (far outside every component); never NaN or +∞ (`NonFiniteOutput` instead).
    fn log_prob_at(&self, heads: &Heads<ACTIONS, COMPONENTS>, u: &[f32]) -> Result<f32, ActError> {
        let log_density =
            mixture::log_density::<M, ACTIONS, COMPONENTS>(heads, self.components(), u);
        let log_prob = if self.header.squash {
            // log π = log N − Σ log scale + 2 Σ ln cosh u. The factor 2 is applied as a
            // second addition: 2 Σ ln cosh u alone overflows once |u| passes 1.7e38,
            // while the sum may still be in range (a component centred out there).
            let log_cosh = mixture::log_cosh_sum::<M>(u);
            log_density - self.log_scale_sum + log_cosh + log_cosh
        } else {
            log_density
        };
        if log_prob.is_nan() || log_prob == f32::INFINITY {
            return Err(ActError::NonFiniteOutput);
        }
        Ok(log_prob)
    }

    /// Writes squash(u) (or u clipped) into `action`, inside the box and finite; on error
    /// `action` is left untouched.
    fn emit(&self, u: &[f32], action: &mut [f32]) -> Result<(), ActError> {
        let mut out = [0.0f32; ACTIONS];
        let bounds = self
            .header
            .action_low
            .iter()
            .zip(self.header.action_high.iter());
        let affine = self.scale.iter().zip(&self.offset);
        for (((a, &u), (lo, hi)), (&s, &o)) in out.iter_mut().zip(u).zip(bounds).zip(affine) {
            let raw = if self.header.squash {
                s * M::tanh(u) + o
            } else {
                u
            };
            if !raw.is_finite() {
                return Err(ActError::NonFiniteOutput);
            }
            *a = clip(raw, lo, hi);
        }
        action.iter_mut().zip(out).for_each(|(a, o)| *a = o);
        Ok(())
    }

    fn check_action_len(&self, len: usize) -> Result<(), ActError> {
        if len != self.action_dim() {
            return Err(ActError::ActionLength {
                expected: self.action_dim(),
                found: len,
            });
        }
        Ok(())
    }

    fn check_action(&self, action: &[f32]) -> Result<(), ActError> {
        self.check_action_len(action.len())?;
        match action.iter().position(|x| !x.is_finite()) {
            Some(index) => Err(ActError::NonFiniteAction { index }),
            None => Ok(()),
        }
    }
}
