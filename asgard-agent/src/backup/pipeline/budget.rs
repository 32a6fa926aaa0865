//! The memory budget: a byte-counting semaphore shared by every stage.
//!
//! The reader takes a [`Permit`] for each chunk (its plaintext length) and each commit entry (an
//! estimate of its size) before handing it on; the permit travels with the item, shrinks to the
//! stored length once the chunk is compressed (the plaintext is freed then), and gives its bytes
//! back when dropped, wherever that happens (after the upload, after the commit, or when a
//! failing stage drops what it held). So the bytes buffered between the stages never exceed the
//! limit, whatever the sizes of the files and the tree.
//!
//! The reader blocks (a plain thread, not an async task) while the budget is spent; the async
//! stages only ever release. [`MemoryBudget::close`] wakes every waiter with `None`: a stage that
//! fails closes the budget so that the scan stops instead of waiting for bytes that never come back.

use std::sync::{Arc, Condvar, Mutex};

#[derive(Debug, Default)]
struct State {
    used: usize,
    peak: usize,
    closed: bool,
}

#[derive(Debug)]
struct Inner {
    limit: usize,
    state: Mutex<State>,
    freed: Condvar,
}

/// Bytes buffered across the pipeline's stages; cheap to clone (shared).
#[derive(Debug, Clone)]
pub struct MemoryBudget {
    inner: Arc<Inner>,
}

/// Bytes taken from a [`MemoryBudget`], given back on drop.
#[derive(Debug)]
pub struct Permit {
    budget: Arc<Inner>,
    bytes: usize,
}

impl MemoryBudget {
    /// A budget of `limit` bytes (at least 1).
    pub fn new(limit: usize) -> MemoryBudget {
        MemoryBudget {
            inner: Arc::new(Inner {
                limit: limit.max(1),
                state: Mutex::default(),
                freed: Condvar::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn limit(&self) -> usize {
        self.inner.limit
    }

    /// Takes `bytes` (capped at the limit, so one item larger than the whole budget still gets
    /// through, alone), waiting while they are not free. `None` once the budget is closed.
    pub(crate) fn acquire(&self, bytes: usize) -> Option<Permit> {
        let bytes = bytes.min(self.inner.limit);
        let mut s = self.lock();
        loop {
            if s.closed {
                return None;
            }
            if s.used + bytes <= self.inner.limit {
                s.used += bytes;
                s.peak = s.peak.max(s.used);
                return Some(Permit {
                    budget: self.inner.clone(),
                    bytes,
                });
            }
            s = self.inner.freed.wait(s).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Makes every current and later [`MemoryBudget::acquire`] return `None`.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.inner.freed.notify_all();
    }

    /// The most bytes that were ever taken at once.
    pub(crate) fn peak(&self) -> usize {
        self.lock().peak
    }

    /// Bytes taken now (the tests check that every permit gives its bytes back).
    #[cfg(test)]
    pub(crate) fn used(&self) -> usize {
        self.lock().used
    }
}

impl Permit {
    /// The bytes it holds (for the tests).
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Gives back all but `bytes` (when the item got smaller: a chunk after compression).
    pub(crate) fn shrink_to(&mut self, bytes: usize) {
        if bytes >= self.bytes {
            return;
        }
        let mut s = self.budget.state.lock().unwrap_or_else(|p| p.into_inner());
        s.used -= self.bytes - bytes;
        self.bytes = bytes;
        drop(s);
        self.budget.freed.notify_all();
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut s = self.budget.state.lock().unwrap_or_else(|p| p.into_inner());
        s.used -= self.bytes;
        drop(s);
        self.budget.freed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn acquire_waits_for_release_and_never_exceeds_the_limit() {
        let budget = MemoryBudget::new(100);
        let a = budget.acquire(60).unwrap();
        let b2 = budget.clone();
        let waiter = std::thread::spawn(move || b2.acquire(60).map(|p| p.bytes()));
        std::thread::sleep(Duration::from_millis(50));
        assert!(!waiter.is_finished(), "must wait: 60 + 60 > 100");
        drop(a);
        assert_eq!(waiter.join().unwrap(), Some(60));
        assert_eq!(budget.used(), 0);
        assert_eq!(budget.peak(), 60);
    }

    #[test]
    fn a_shrunk_permit_gives_back_the_difference_at_once_and_the_rest_on_drop() {
        let budget = MemoryBudget::new(100);
        let mut a = budget.acquire(80).unwrap();
        let b2 = budget.clone();
        let waiter = std::thread::spawn(move || b2.acquire(50).map(|p| p.bytes()));
        std::thread::sleep(Duration::from_millis(50));
        assert!(!waiter.is_finished(), "must wait: 80 + 50 > 100");
        a.shrink_to(30);
        assert_eq!(waiter.join().unwrap(), Some(50));
        a.shrink_to(40); // growing is not shrinking: nothing changes
        assert_eq!(a.bytes(), 30);
        assert_eq!(budget.used(), 30);
        drop(a);
        assert_eq!(budget.used(), 0);
        assert_eq!(budget.peak(), 80);
    }

    #[test]
    fn an_item_larger_than_the_budget_passes_alone() {
        let budget = MemoryBudget::new(10);
        let p = budget.acquire(1000).unwrap();
        assert_eq!(p.bytes(), 10);
        assert_eq!(budget.used(), 10);
    }

    #[test]
    fn close_wakes_waiters() {
        let budget = MemoryBudget::new(10);
        let _held = budget.acquire(10).unwrap();
        let b2 = budget.clone();
        let waiter = std::thread::spawn(move || b2.acquire(5).is_none());
        std::thread::sleep(Duration::from_millis(20));
        budget.close();
        assert!(waiter.join().unwrap());
        assert!(budget.acquire(1).is_none());
    }
}
