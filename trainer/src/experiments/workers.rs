//! The one thread pool of the experiment tools: `jobs` scoped threads take items in order
//! and the caller's thread hears about each result as it finishes (for progress output).

use std::sync::atomic::{AtomicUsize, Ordering};

/// Runs `work` on every item on `jobs` threads; `done(index, result)` is called on the
/// calling thread, in order of completion.
pub fn for_each<T: Sync, R: Send>(
    items: &[T],
    jobs: usize,
    work: impl Fn(&T) -> R + Sync,
    mut done: impl FnMut(usize, R),
) {
    let next = AtomicUsize::new(0);
    let (send, receive) = std::sync::mpsc::channel();
    std::thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, items.len().max(1)) {
            let (send, next, work) = (send.clone(), &next, &work);
            scope.spawn(move || loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = items.get(i) else { return };
                if send.send((i, work(item))).is_err() {
                    return;
                }
            });
        }
        drop(send);
        for (i, result) in receive.iter() {
            done(i, result);
        }
    });
}
