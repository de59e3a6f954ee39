//! Calls every operation of policy-core on inputs the optimiser cannot see, and links with a
//! panic handler that refers to a symbol that does not exist. If any panic path survives
//! optimisation, linking fails with `undefined symbol: policy_core_has_a_panic_path`.
//!
//! `scripts/test.sh` builds it (features "", "fast-math" and "int8", the last linking the
//! version-3 path) for thumbv7em-none-eabihf, thumbv6m-none-eabi, thumbv8m.main-none-eabihf
//! (cortex-m-rt) and riscv32imac-unknown-none-elf (riscv-rt); never run.
#![no_std]
#![no_main]

use core::fmt::Write;
use core::hint::black_box;
use policy_core::Policy;
use rand_core::SeedableRng;

/// Stand-in for a policy in flash; its contents are opaque to the optimiser.
static POLICY_FILE: [u8; 2048] = [0; 2048];

/// A fixed-size text sink, as firmware would use to report an error.
struct Sink {
    buf: [u8; 128],
    len: usize,
}

impl Write for Sink {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for (slot, byte) in self.buf.iter_mut().skip(self.len).zip(s.bytes()) {
            *slot = byte;
            self.len += 1;
        }
        Ok(())
    }
}

#[cfg_attr(target_arch = "arm", cortex_m_rt::entry)]
#[cfg_attr(target_arch = "riscv32", riscv_rt::entry)]
fn main() -> ! {
    let bytes: &[u8] = black_box(&POLICY_FILE);
    let mut sink = Sink { buf: [0; 128], len: 0 };
    let mut rng = rand_pcg::Pcg32::seed_from_u64(black_box(7));
    let obs = black_box([0.5f32; 17]);
    let obs = &obs[..black_box(3).min(obs.len())];
    let mut action = [0.0f32; 8];
    let action = &mut action[..black_box(1).min(8)];
    let mut weights = [0.0f32; 8];
    let weights = &mut weights[..black_box(5).min(8)];
    match Policy::from_bytes(bytes) {
        Ok(policy) => {
            if let Err(e) = policy.sample(obs, &mut rng, action) {
                let _ = write!(sink, "{e}");
            }
            let _ = black_box(policy.mode(obs, action));
            let _ = black_box(policy.log_prob(obs, action));
            let _ = black_box(policy.log_prob_pre_squash(obs, action));
            let _ = black_box(policy.mixing_weights(obs, weights));
            let _ = black_box(policy.header().weight_count());
        }
        Err(e) => {
            let _ = write!(sink, "{e}");
        }
    }
    black_box(&sink.buf);
    loop {}
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    extern "Rust" {
        // Deliberately undefined: referencing it makes any surviving panic a link error.
        fn policy_core_has_a_panic_path() -> !;
    }
    // SAFETY: never called in a binary that links; the symbol does not exist.
    unsafe { policy_core_has_a_panic_path() }
}
