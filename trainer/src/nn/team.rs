//! A team of helper threads that stay awake between jobs, for [`product_split`]'s blocks.
//!
//! Rayon's idle workers go to sleep within microseconds, and waking one through the kernel
//! took about 120 µs here (2026-11-26, measured as the caller's wait per split product at
//! MuJoCo size): more than a tenth of a 256-row product's half. A team member instead spins
//! on its slot for [`SPIN`] after each job, so the products of one update reach it awake,
//! and parks when the training loop pauses. The caller always works on a block itself and
//! waits for the others before returning, which is what lets a job borrow the caller's data.
//!
//! [`product_split`]: super::dense_op::product_split

use std::any::Any;
use std::cell::UnsafeCell;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock, TryLockError};
use std::thread::Thread;
use std::time::{Duration, Instant};

/// How long a helper stays awake after a job before it parks.
const SPIN: Duration = Duration::from_millis(2);

/// Busy-wait rounds before a waiting thread starts to yield its core at each round (so that
/// on a machine with more busy threads than cores the thread it waits for can run).
const BUSY_ROUNDS: u32 = 1 << 10;

const IDLE: u8 = 0;
const POSTED: u8 = 1;
const DONE: u8 = 2;
const PANICKED: u8 = 3;

/// A job as the helper sees it: the caller's closure with its lifetime erased.
type Job = &'static (dyn Fn() + Sync);

/// One helper's mailbox.
struct Slot {
    state: AtomicU8,
    job: UnsafeCell<Option<Job>>,
    /// The payload of the job's panic, handed to the caller.
    panic: Mutex<Option<Box<dyn Any + Send>>>,
    thread: OnceLock<Thread>,
}

// SAFETY: `job` is written only by the caller while no job of that slot is POSTED, and read
// only by the helper after it saw POSTED (release/acquire on `state` orders the two).
unsafe impl Sync for Slot {}

/// Helpers for `threads - 1` extra blocks; one team per process, grown on demand.
static TEAM: Mutex<Vec<Arc<Slot>>> = Mutex::new(Vec::new());

/// One round of waiting: a spin hint for the first [`BUSY_ROUNDS`], then a yield.
fn pause(round: &mut u32) {
    if *round < BUSY_ROUNDS {
        *round += 1;
        std::hint::spin_loop();
    } else {
        std::thread::yield_now();
    }
}

/// Runs `jobs[0]` on the calling thread and every other job on a helper, and returns when
/// all are done. If another caller holds the team, or no helper thread can be started, the
/// jobs run one after another here instead: the same results, as each job writes its own
/// block. A job's panic is raised here once every job is done.
pub(crate) fn run_all(jobs: &[&(dyn Fn() + Sync)]) {
    let Some((first, others)) = jobs.split_first() else {
        return;
    };
    let mut team = match TEAM.try_lock() {
        Ok(team) => team,
        // A panic in an earlier caller's own job: `Wait` had let every helper finish.
        Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
        Err(TryLockError::WouldBlock) => return run_here(jobs),
    };
    while team.len() < others.len() {
        match spawn_helper() {
            Some(slot) => team.push(slot),
            None => return run_here(jobs),
        }
    }
    /// Waits for every posted job, also when the caller's own job unwinds: a helper must
    /// not outlive the data its job borrows.
    struct Wait<'a>(&'a [Arc<Slot>]);
    impl Drop for Wait<'_> {
        fn drop(&mut self) {
            for slot in self.0 {
                let mut round = 0;
                while slot.state.load(Ordering::Acquire) == POSTED {
                    pause(&mut round);
                }
            }
        }
    }
    let slots = &team[..others.len()];
    let wait = Wait(slots);
    for (slot, job) in slots.iter().zip(others) {
        // SAFETY: the job borrows data that outlives this call, and `wait` does not let this
        // call return (or unwind) before the helper has finished with it.
        let job: Job = unsafe { std::mem::transmute::<&(dyn Fn() + Sync), Job>(*job) };
        unsafe { *slot.job.get() = Some(job) };
        slot.state.store(POSTED, Ordering::Release);
        if let Some(thread) = slot.thread.get() {
            thread.unpark();
        }
    }
    first();
    drop(wait);
    let mut panic = None;
    for slot in slots {
        if slot.state.load(Ordering::Acquire) == PANICKED {
            let payload = lock(&slot.panic).take();
            panic = panic.or(payload);
        }
        unsafe { *slot.job.get() = None };
        slot.state.store(IDLE, Ordering::Release);
    }
    drop(team);
    if let Some(payload) = panic {
        resume_unwind(payload);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The jobs one after another on the calling thread; a panic is raised again after the
/// last job, as [`run_all`] does.
fn run_here(jobs: &[&(dyn Fn() + Sync)]) {
    let mut panic = None;
    for job in jobs {
        if let Err(payload) = catch_unwind(AssertUnwindSafe(job)) {
            panic.get_or_insert(payload);
        }
    }
    if let Some(payload) = panic {
        resume_unwind(payload);
    }
}

/// A new helper thread and its slot; None if the system refuses another thread.
fn spawn_helper() -> Option<Arc<Slot>> {
    let slot = Arc::new(Slot {
        state: AtomicU8::new(IDLE),
        job: UnsafeCell::new(None),
        panic: Mutex::new(None),
        thread: OnceLock::new(),
    });
    let mine = Arc::clone(&slot);
    let handle = std::thread::Builder::new()
        .name("mixsac-split".into())
        .spawn(move || loop {
            let (mut last, mut round) = (Instant::now(), 0);
            while mine.state.load(Ordering::Acquire) != POSTED {
                if last.elapsed() < SPIN {
                    pause(&mut round);
                } else {
                    std::thread::park();
                    (last, round) = (Instant::now(), 0);
                }
            }
            // SAFETY: POSTED was stored after the job (see `run_all`).
            let outcome = match unsafe { *mine.job.get() } {
                Some(job) => catch_unwind(AssertUnwindSafe(job)),
                None => Ok(()),
            };
            let state = match outcome {
                Ok(()) => DONE,
                Err(payload) => {
                    *lock(&mine.panic) = Some(payload);
                    PANICKED
                }
            };
            mine.state.store(state, Ordering::Release);
        })
        .ok()?;
    let _ = slot.thread.set(handle.thread().clone());
    Some(slot)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Every job runs exactly once, on the caller and the helpers, call after call, for one
    /// to four jobs; also from two callers at once (one of them then runs its jobs itself).
    #[test]
    fn every_job_runs_once() {
        let caller = || {
            for round in 0..200 {
                let jobs = 1 + round % 4;
                let runs: Vec<AtomicUsize> = (0..jobs).map(|_| AtomicUsize::new(0)).collect();
                let closures: Vec<_> = runs
                    .iter()
                    .map(|count| {
                        move || {
                            count.fetch_add(1, Ordering::Relaxed);
                        }
                    })
                    .collect();
                let refs: Vec<&(dyn Fn() + Sync)> = closures.iter().map(|c| c as _).collect();
                run_all(&refs);
                for (j, count) in runs.iter().enumerate() {
                    assert_eq!(count.load(Ordering::Relaxed), 1, "round {round}, job {j}");
                }
            }
        };
        std::thread::scope(|s| {
            s.spawn(caller);
            s.spawn(caller);
        });
    }

    /// A helper's panic reaches the caller after every job is done, and the team works on.
    #[test]
    fn a_helpers_panic_reaches_the_caller() {
        let done = AtomicUsize::new(0);
        let fine = || {
            done.fetch_add(1, Ordering::Relaxed);
        };
        let fails = || panic!("this job fails");
        let jobs: [&(dyn Fn() + Sync); 3] = [&fine, &fails, &fine];
        let outcome = catch_unwind(AssertUnwindSafe(|| run_all(&jobs)));
        assert!(outcome.is_err(), "the panic was lost");
        assert_eq!(done.load(Ordering::Relaxed), 2);
        let jobs: [&(dyn Fn() + Sync); 3] = [&fine, &fine, &fine];
        run_all(&jobs);
        assert_eq!(done.load(Ordering::Relaxed), 5);
    }
}
