//! A small persistent thread pool for the per-token matmuls.
//!
//! A token makes a few hundred parallel calls of 10–100 µs each, so
//! spawning threads per call (`std::thread::scope`) costs too much, and
//! candle's and rayon's spinning workers burn the shared cores the other
//! thread (or another process) needs. Here idle workers sleep in
//! `thread::park`; the caller runs share 0 itself and wakes the rest.
//! Waiting sides spin for a few microseconds first: the other share
//! usually finishes within that, and a park/unpark round trip costs more.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle, Thread};

/// How many times a waiting side polls before it parks (a few µs; no
/// clock reads, they cost more than the poll).
const SPIN: u32 = 2000;

type Job = dyn Fn(usize) + Sync;

struct Shared {
    /// Bumped once per call; workers run the job when it changes.
    epoch: AtomicU64,
    /// The current call's job, lifetime erased: valid while `pending > 0`
    /// (the caller does not return before that).
    job: UnsafeCell<Option<*const Job>>,
    pending: AtomicUsize,
    caller: UnsafeCell<Option<Thread>>,
    stop: AtomicBool,
}

// SAFETY: `job` and `caller` are written only by the caller holding the
// pool's `run` lock before the epoch bump (Release) and read by workers
// after seeing it (Acquire).
unsafe impl Sync for Shared {}
unsafe impl Send for Shared {}

/// Something that runs `job(share)` for `share in 0..threads()` and waits:
/// the pool here, or (in the benchmark) rayon and `std::thread::scope`.
pub trait Parallel: Sync {
    fn threads(&self) -> usize;
    fn run(&self, job: &(dyn Fn(usize) + Sync));
}

/// Runs the `threads` shares of each call on `std::thread::scope` threads
/// spawned per call (the baseline the pool is measured against).
pub struct Scoped(pub usize);

impl Parallel for Scoped {
    fn threads(&self) -> usize {
        self.0.max(1)
    }

    fn run(&self, job: &(dyn Fn(usize) + Sync)) {
        thread::scope(|s| {
            for share in 1..self.threads() {
                s.spawn(move || job(share));
            }
            job(0);
        });
    }
}

pub struct Pool {
    shared: Arc<Shared>,
    workers: Vec<(Thread, JoinHandle<()>)>,
    /// One call at a time (the engine is single-caller; this keeps a stray
    /// second caller correct).
    running: Mutex<()>,
}

impl Pool {
    /// `threads` shares per call: the caller plus `threads - 1` workers.
    pub fn new(threads: usize) -> Self {
        let shared = Arc::new(Shared {
            epoch: AtomicU64::new(0),
            job: UnsafeCell::new(None),
            pending: AtomicUsize::new(0),
            caller: UnsafeCell::new(None),
            stop: AtomicBool::new(false),
        });
        let workers = (1..threads.max(1))
            .map(|share| {
                let shared = shared.clone();
                let handle = thread::Builder::new()
                    .name(format!("forge-matmul-{share}"))
                    .spawn(move || worker(&shared, share))
                    .expect("spawning a matmul worker");
                (handle.thread().clone(), handle)
            })
            .collect();
        Self {
            shared,
            workers,
            running: Mutex::new(()),
        }
    }
}

impl Parallel for Pool {
    /// Shares per call.
    fn threads(&self) -> usize {
        self.workers.len() + 1
    }

    /// Runs `job(share)` for every share in `0..threads()`, share 0 on this
    /// thread, and returns when all have finished.
    fn run(&self, job: &(dyn Fn(usize) + Sync)) {
        if self.workers.is_empty() {
            job(0);
            return;
        }
        let _one = self.running.lock().unwrap_or_else(|e| e.into_inner());
        let s = &*self.shared;
        // SAFETY: erasing the lifetime is sound because we wait below until
        // every worker is done with the job before returning.
        let erased: *const Job =
            unsafe { std::mem::transmute::<*const (dyn Fn(usize) + Sync + '_), *const Job>(job) };
        unsafe {
            *s.job.get() = Some(erased);
            *s.caller.get() = Some(thread::current());
        }
        s.pending.store(self.workers.len(), Ordering::Relaxed);
        s.epoch.fetch_add(1, Ordering::Release);
        for (t, _) in &self.workers {
            t.unpark();
        }
        job(0);
        wait_until(|| s.pending.load(Ordering::Acquire) == 0);
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        self.shared.epoch.fetch_add(1, Ordering::Release);
        for (t, h) in self.workers.drain(..) {
            t.unpark();
            let _ = h.join();
        }
    }
}

/// Polls `done` up to [`SPIN`] times, then parks between polls (unpark is
/// what the other side does when it changes the condition).
fn wait_until(done: impl Fn() -> bool) {
    let mut polls = 0;
    while !done() {
        if polls < SPIN {
            polls += 1;
            std::hint::spin_loop();
        } else {
            thread::park();
        }
    }
}

fn worker(s: &Shared, share: usize) {
    let mut seen = 0u64;
    loop {
        wait_until(|| s.epoch.load(Ordering::Acquire) != seen);
        seen = s.epoch.load(Ordering::Acquire);
        if s.stop.load(Ordering::Acquire) {
            return;
        }
        // SAFETY: published before the epoch bump; alive until pending = 0.
        let (job, caller) = unsafe { ((*s.job.get()).expect("job"), (*s.caller.get()).clone()) };
        unsafe { (*job)(share) };
        if s.pending.fetch_sub(1, Ordering::AcqRel) == 1
            && let Some(c) = caller
        {
            c.unpark();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn every_share_runs_once_per_call() {
        let pool = Pool::new(3);
        let counts: Vec<AtomicUsize> = (0..3).map(|_| AtomicUsize::new(0)).collect();
        for _ in 0..1000 {
            pool.run(&|share| {
                counts[share].fetch_add(1, Ordering::Relaxed);
            });
        }
        for c in &counts {
            assert_eq!(c.load(Ordering::Relaxed), 1000);
        }
    }

    #[test]
    fn single_thread_pool_runs_inline() {
        let pool = Pool::new(1);
        let hit = AtomicUsize::new(0);
        pool.run(&|s| {
            hit.fetch_add(s + 1, Ordering::Relaxed);
        });
        assert_eq!(hit.load(Ordering::Relaxed), 1);
    }
}
