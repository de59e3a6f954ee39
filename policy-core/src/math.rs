//! The scalar functions the policy needs, behind one trait so the accurate (libm) and the
//! fast (micromath) implementations can be swapped — and compared in one build.

/// Scalar math used by the policy.
pub trait Math {
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

/// The math this build uses: [`Libm`], or `MicroMath` with feature `fast-math`.
#[cfg(not(feature = "fast-math"))]
pub type DefaultMath = Libm;
/// The math this build uses: [`Libm`], or `MicroMath` with feature `fast-math`.
#[cfg(feature = "fast-math")]
pub type DefaultMath = MicroMath;

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
