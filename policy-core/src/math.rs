//! The scalar functions the policy needs, behind one trait so the accurate (libm) and the
//! fast (micromath) implementations can be swapped — and compared in one build — and the
//! multiply-accumulate of the network, which [`Fused`] rounds once instead of twice.

use core::marker::PhantomData;

/// Scalar math used by the policy.
pub trait Math {
    /// Whether the network's multiply-adds `acc + x · w` are fused: rounded once, as IEEE
    /// 754's fusedMultiplyAdd (`vfma.f32` where the FPU has it, `libm::fmaf` elsewhere),
    /// instead of twice (the product, then the sum: what `acc += x * w` does). See [`Fused`].
    const FUSED: bool = false;

    /// `e^x`
    fn exp(x: f32) -> f32;
    /// natural logarithm
    fn ln(x: f32) -> f32;
    /// `ln(1 + x)`, accurate for small `x`
    fn ln_1p(x: f32) -> f32;
    /// hyperbolic tangent
    fn tanh(x: f32) -> f32;
    /// inverse hyperbolic tangent, `|x| < 1`
    fn atanh(x: f32) -> f32;
    /// square root
    fn sqrt(x: f32) -> f32;
}

/// Accurate math from `libm` (the default).
#[derive(Debug, Clone, Copy, Default)]
pub struct Libm;

impl Math for Libm {
    fn exp(x: f32) -> f32 {
        libm::expf(x)
    }
    fn ln(x: f32) -> f32 {
        libm::logf(x)
    }
    fn ln_1p(x: f32) -> f32 {
        libm::log1pf(x)
    }
    fn tanh(x: f32) -> f32 {
        libm::tanhf(x)
    }
    fn atanh(x: f32) -> f32 {
        libm::atanhf(x)
    }
    fn sqrt(x: f32) -> f32 {
        libm::sqrtf(x)
    }
}

/// Fast approximations from `micromath` (feature `fast-math`) for `exp` and `tanh`;
/// `ln`, `ln_1p`, `atanh` and `sqrt` stay on libm because micromath's `ln` and `sqrt` err
/// by up to 2.6% and 6% (measured), which wrecks normal sampling and the squash inverse.
/// Resulting errors are measured in the crate README.
#[cfg(feature = "fast-math")]
#[derive(Debug, Clone, Copy, Default)]
pub struct MicroMath;

#[cfg(feature = "fast-math")]
impl Math for MicroMath {
    fn exp(x: f32) -> f32 {
        // micromath returns NaN just past f32's range (measured: x in [88.72, 89.42]).
        if x > 88.72 {
            f32::INFINITY
        } else if x < -87.33 {
            0.0
        } else {
            micromath::F32Ext::exp(x)
        }
    }
    fn ln(x: f32) -> f32 {
        Libm::ln(x)
    }
    fn ln_1p(x: f32) -> f32 {
        Libm::ln_1p(x)
    }
    fn tanh(x: f32) -> f32 {
        // tanh x = 1 − 2 / (e^{2x} + 1); |tanh x| rounds to 1 in f32 beyond |x| = 9.1.
        if x.abs() > 10.0 {
            x.signum()
        } else {
            1.0 - 2.0 / (Self::exp(2.0 * x) + 1.0)
        }
    }
    fn atanh(x: f32) -> f32 {
        Libm::atanh(x)
    }
    fn sqrt(x: f32) -> f32 {
        Libm::sqrt(x)
    }
}

/// `M`'s functions, with a fused multiply-add in the network: each `acc + x · w` is rounded
/// once, as IEEE 754's fusedMultiplyAdd, instead of twice.
///
/// The default math on targets whose FPU has `vfma.f32` in its baseline
/// (`thumbv7em-none-eabihf`: Cortex-M4F, M7F; `thumbv8m.main-none-eabihf`: Cortex-M33, M55),
/// where it takes one instruction per multiply-accumulate instead of two. Anywhere else it is
/// `libm::fmaf` (correctly rounded, so bit-identical to `vfma.f32`; hardware FMA on x86 when
/// the CPU has it, software otherwise): a host runs `Policy::<Fused<Libm>>` to reproduce
/// such a device's results to the last bit. Against the unfused math, each multiply-add
/// differs by at most half an ulp of the product, so results differ by a few ulps
/// (measured in BENCHMARKS.md, firmware section).
pub struct Fused<M>(PhantomData<M>);

// By hand: derives would require `M` itself to be `Debug`, `Clone`, … for no reason.
impl<M> core::fmt::Debug for Fused<M> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Fused")
    }
}
impl<M> Clone for Fused<M> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<M> Copy for Fused<M> {}
impl<M> Default for Fused<M> {
    fn default() -> Self {
        Fused(PhantomData)
    }
}

impl<M: Math> Math for Fused<M> {
    const FUSED: bool = true;
    fn exp(x: f32) -> f32 {
        M::exp(x)
    }
    fn ln(x: f32) -> f32 {
        M::ln(x)
    }
    fn ln_1p(x: f32) -> f32 {
        M::ln_1p(x)
    }
    fn tanh(x: f32) -> f32 {
        M::tanh(x)
    }
    fn atanh(x: f32) -> f32 {
        M::atanh(x)
    }
    fn sqrt(x: f32) -> f32 {
        M::sqrt(x)
    }
}

/// The math this build uses: [`Libm`], or `MicroMath` with feature `fast-math`; on targets
/// with `vfma.f32` (see [`Fused`]) wrapped in [`Fused`].
#[cfg(not(any(feature = "fast-math", policy_core_vfma)))]
pub type DefaultMath = Libm;
/// The math this build uses: [`Libm`], or `MicroMath` with feature `fast-math`; on targets
/// with `vfma.f32` (see [`Fused`]) wrapped in [`Fused`].
#[cfg(all(feature = "fast-math", not(policy_core_vfma)))]
pub type DefaultMath = MicroMath;
/// The math this build uses: [`Libm`], or `MicroMath` with feature `fast-math`; on targets
/// with `vfma.f32` (see [`Fused`]) wrapped in [`Fused`].
#[cfg(all(not(feature = "fast-math"), policy_core_vfma))]
pub type DefaultMath = Fused<Libm>;
/// The math this build uses: [`Libm`], or `MicroMath` with feature `fast-math`; on targets
/// with `vfma.f32` (see [`Fused`]) wrapped in [`Fused`].
#[cfg(all(feature = "fast-math", policy_core_vfma))]
pub type DefaultMath = Fused<MicroMath>;

/// `x` limited to `[lo, hi]`; NaN gives `lo`. Unlike `f32::clamp`, which asserts
/// `lo <= hi`, it has no panic path for the firmware's link-time check to find.
pub(crate) fn clip(x: f32, lo: f32, hi: f32) -> f32 {
    min(max(x, lo), hi)
}

/// `f32::max` (a NaN argument yields the other one) as two comparisons: on a Cortex-M4F,
/// which lacks `vmaxnm`, `f32::max` is a call into a software `fmaxf`.
pub(crate) fn max(a: f32, b: f32) -> f32 {
    if b > a || a.is_nan() {
        b
    } else {
        a
    }
}

/// `f32::min` likewise.
pub(crate) fn min(a: f32, b: f32) -> f32 {
    if b < a || a.is_nan() {
        b
    } else {
        a
    }
}
