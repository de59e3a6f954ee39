//! Firmware: loads the embedded policy, runs `EPISODES` closed-loop pendulum episodes and
//! reports them over semihosting, then exits with code 0 (or 1 after printing the error).
//!
//! Output, one `key=value` record per line (parsed by `tests/tests/firmware.rs` and
//! `scripts/firmware_footprint.py`):
//!
//! ```text
//! policy obs=3 action=1 hidden=64x64 components=5 bytes=19156
//! episode=0 return=-123.4567 return_bits=0xc2f6e979 checksum=0x1a2b3c4d components=0142…
//! actions=1000 sample_ticks=… calibration_ticks=… calibration_instructions=200000
//! stack_peak_bytes=…
//! ```
#![no_std]
#![no_main]

// Release builds link only if no panic path is left anywhere (the handler refers to a
// symbol that does not exist); debug builds report panics over semihosting instead.
#[cfg(not(debug_assertions))]
use panic_never as _;
#[cfg(debug_assertions)]
use panic_semihosting as _;

use core::arch::asm;
use core::fmt::Write;
use core::ptr::{addr_of, read_volatile, write_volatile};
use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::SYST;
use cortex_m_rt::entry;
use cortex_m_semihosting::debug::{self, EXIT_FAILURE, EXIT_SUCCESS};
use cortex_m_semihosting::hio::{self, HostStream};
use mixpolicy_firmware::{run_episode, ActionMeter, Episode, EPISODES, SEED};
use policy_core::math::DefaultMath;
use policy_core::Policy;
use rand_core::SeedableRng;

// `POLICY_PAD`, `POLICY_PADDED_LEN` and the embedded policy's sizes `POLICY_ACTIONS`,
// `POLICY_COMPONENTS`, `POLICY_WIDTH`, written by build.rs.
include!(concat!(env!("OUT_DIR"), "/policy.rs"));

/// A policy type with exactly the embedded policy's capacities: each action puts only the
/// buffers this policy needs on the stack (`policy_core::capacity::scratch_bytes`).
type EmbeddedPolicy<'a> = Policy<'a, DefaultMath, POLICY_ACTIONS, POLICY_COMPONENTS, POLICY_WIDTH>;

/// Four-byte alignment for the embedded file.
#[repr(C, align(4))]
struct Aligned<const N: usize>([u8; N]);

/// The policy file (`FIRMWARE_POLICY` at build time swaps it), after `POLICY_PAD` bytes that
/// put its weights on a 4-byte boundary, where policy-core reads them fastest.
static EMBEDDED: Aligned<POLICY_PADDED_LEN> =
    Aligned(*include_bytes!(concat!(env!("OUT_DIR"), "/policy.bin")));
static POLICY_FILE: &[u8] = EMBEDDED.0.split_at(POLICY_PAD).1;

/// Instructions of the calibration loop: two per iteration (`subs`, `bne`).
const CALIBRATION_ITERATIONS: u32 = 100_000;
const SYST_MASK: u32 = 0x00ff_ffff;
const STACK_PAINT: u32 = 0x5eed_ca11;

extern "C" {
    // cortex-m-rt: the stack grows down from `_stack_start` to `_stack_end`.
    static _stack_start: u32;
    static _stack_end: u32;
}

#[entry]
fn main() -> ! {
    paint_stack();
    let Ok(mut out) = hio::hstdout() else {
        exit(EXIT_FAILURE)
    };
    let code = match run(&mut out) {
        Ok(()) => EXIT_SUCCESS,
        Err(()) => EXIT_FAILURE,
    };
    exit(code)
}

fn exit(code: debug::ExitStatus) -> ! {
    debug::exit(code);
    // Only reached without a debugger attached (a real board): park.
    loop {
        cortex_m::asm::wfi();
    }
}

fn run(out: &mut HostStream) -> Result<(), ()> {
    let policy = match EmbeddedPolicy::load(POLICY_FILE) {
        Ok(policy) => policy,
        Err(e) => {
            let _ = writeln!(out, "error: cannot load the embedded policy: {e}");
            return Err(());
        }
    };
    let header = policy.header();
    let _ = write!(
        out,
        "policy obs={} action={} hidden=",
        header.obs_dim, header.action_dim
    );
    for (i, width) in header.hidden.iter().enumerate() {
        let _ = write!(out, "{}{width}", if i == 0 { "" } else { "x" });
    }
    let _ = writeln!(
        out,
        " components={} bytes={}",
        header.components,
        POLICY_FILE.len()
    );

    let mut meter = SysTickMeter::start();
    let mut rng = rand_pcg::Pcg32::seed_from_u64(SEED);
    for index in 0..EPISODES {
        match run_episode(&policy, &mut rng, &mut meter) {
            Ok(episode) => report(out, index, &episode),
            Err(e) => {
                let _ = writeln!(out, "error: episode {index}: {e}");
                return Err(());
            }
        }
    }
    let calibration = meter.calibrate();
    let _ = writeln!(
        out,
        "actions={} sample_ticks={} calibration_ticks={calibration} calibration_instructions={}",
        meter.actions,
        meter.ticks,
        2 * CALIBRATION_ITERATIONS
    );
    let _ = writeln!(out, "stack_peak_bytes={}", stack_peak());
    Ok(())
}

fn report(out: &mut HostStream, index: usize, episode: &Episode) {
    let _ = write!(out, "episode={index} return=");
    write_fixed4(out, episode.total_reward);
    let _ = write!(
        out,
        " return_bits={:#010x} checksum={:#010x} components=",
        episode.total_reward.to_bits(),
        episode.checksum
    );
    let mut digits = [0u8; mixpolicy_firmware::EPISODE_STEPS];
    for (d, &c) in digits.iter_mut().zip(episode.components.iter()) {
        *d = b'0'.wrapping_add(c);
    }
    let _ = out.write_all(&digits);
    let _ = out.write_all(b"\n");
}

/// Writes `x` with four decimals using integer formatting only (core's float formatting
/// brings panic paths along).
fn write_fixed4(out: &mut HostStream, x: f32) {
    let scaled = (x as f64 * 10_000.0) as i64; // saturating; the return is finite anyway
    let sign = if scaled < 0 { "-" } else { "" };
    let magnitude = scaled.unsigned_abs();
    let _ = write!(
        out,
        "{sign}{}.{:04}",
        magnitude / 10_000,
        magnitude % 10_000
    );
}

/// Counts SysTick ticks spent inside the policy. Under QEMU with `-icount shift=0` a tick
/// is a fixed number of guest instructions; `calibrate` measures how many.
struct SysTickMeter {
    started: u32,
    ticks: u64,
    actions: u32,
}

impl SysTickMeter {
    fn start() -> SysTickMeter {
        // SAFETY: the only user of SysTick in this firmware.
        let mut syst = unsafe { cortex_m::Peripherals::steal() }.SYST;
        syst.set_clock_source(SystClkSource::Core);
        syst.set_reload(SYST_MASK);
        syst.clear_current();
        syst.enable_counter();
        SysTickMeter {
            started: 0,
            ticks: 0,
            actions: 0,
        }
    }

    fn elapsed_since(started: u32) -> u32 {
        // The counter runs down and wraps at 2^24 ticks, far more than one action takes.
        started.wrapping_sub(SYST::get_current()) & SYST_MASK
    }

    /// Ticks taken by a loop of exactly `2 · CALIBRATION_ITERATIONS` instructions.
    fn calibrate(&self) -> u32 {
        let started = SYST::get_current();
        // SAFETY: a register-only countdown loop.
        unsafe {
            asm!(
                "2:",
                "subs {n}, {n}, #1",
                "bne 2b",
                n = inout(reg) CALIBRATION_ITERATIONS => _,
                options(nomem, nostack),
            );
        }
        Self::elapsed_since(started)
    }
}

impl ActionMeter for SysTickMeter {
    fn start(&mut self) {
        self.started = SYST::get_current();
    }

    fn stop(&mut self) {
        self.ticks += u64::from(Self::elapsed_since(self.started));
        self.actions += 1;
    }
}

/// Fills the free stack below this function's frame with a pattern.
#[inline(never)]
fn paint_stack() {
    let sp = cortex_m::register::msp::read() as usize;
    let bottom = addr_of!(_stack_end) as usize;
    // Leave a margin below our own frame: calls made from here must not be overwritten.
    let mut p = bottom;
    while p + 64 < sp {
        // SAFETY: [bottom, sp − 64) is RAM between the statics and the live stack.
        unsafe { write_volatile(p as *mut u32, STACK_PAINT) };
        p += 4;
    }
}

/// Bytes of stack ever used: from the top down to the lowest word no longer painted.
fn stack_peak() -> usize {
    let (bottom, top) = (
        addr_of!(_stack_end) as usize,
        addr_of!(_stack_start) as usize,
    );
    let mut p = bottom;
    // SAFETY: reads of RAM inside the stack region.
    while p < top && unsafe { read_volatile(p as *const u32) } == STACK_PAINT {
        p += 4;
    }
    top - p
}
