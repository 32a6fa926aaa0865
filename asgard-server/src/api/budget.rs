//! The global budget of upload bytes in flight: the one bound on the memory that request bodies
//! take, whatever the number of concurrent uploads.
//!
//! Every `POST /api/upload` reserves its `Content-Length` (the most body bytes it can hold; the
//! handler streams the body in slices of at most 16 MiB, so it holds at most that much, plus the
//! store's copy of the slice being written) before it reads a byte of the body, and gives the reservation back when it is answered. A request without a length, or
//! longer than `max_upload_bytes`, is refused before it reserves anything (411, 413); since
//! `max_upload_bytes` may not exceed the budget, every admissible request fits. A request that
//! finds the budget spent waits up to `upload_wait`, then gets 503 `busy` with `Retry-After`;
//! the agent waits that long and sends it again. Its body stays unread meanwhile: the HTTP layer
//! buffers a few KiB per connection and then stops reading from the socket (TCP back-pressure),
//! so a waiting request costs no memory to speak of.
//!
//! **Fairness.** The budget is a FIFO-fair semaphore (tokio's: permits, also many at once, go out
//! in the order they were asked for), so no request is overtaken and none starves. Alone, that
//! would let one waiting large request hold up every small one behind it; so requests of more
//! than a quarter of the budget go through a **large lane** first: one of them at a time queues
//! for the budget, the others queue among themselves. Small requests are then held up by at most
//! one large request, and a large request is overtaken by no request that came later.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The budget's unit: permits are KiB (a semaphore counts in `u32`).
const UNIT: u64 = 1024;

/// The seconds a refused client is asked to wait (`Retry-After`).
pub(crate) const RETRY_AFTER_SECS: u64 = 5;

/// The global budget of upload bytes in flight (see the module docs).
#[derive(Debug)]
pub(crate) struct UploadBudget {
    budget: Arc<Semaphore>,
    large_lane: Arc<Semaphore>,
    /// The whole budget, in units.
    units: u32,
    /// Requests of more units than this take the large lane.
    large_above: u32,
    wait: Duration,
}

/// A reservation of upload bytes; given back when dropped.
#[derive(Debug)]
pub(crate) struct Reservation {
    _permit: OwnedSemaphorePermit,
}

/// The budget was spent for longer than `upload_wait`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Busy;

impl UploadBudget {
    /// A budget of `bytes` (at least one unit); a request waits up to `wait` for its share.
    pub(crate) fn new(bytes: u64, wait: Duration) -> UploadBudget {
        let units = u32::try_from(bytes.div_ceil(UNIT).max(1)).unwrap_or(u32::MAX);
        UploadBudget {
            budget: Arc::new(Semaphore::new(units as usize)),
            large_lane: Arc::new(Semaphore::new(1)),
            units,
            large_above: units / 4,
            wait,
        }
    }

    /// Reserves `bytes` (a request's `Content-Length`, at most the whole budget: more is reserved
    /// as the whole budget), waiting up to the configured wait.
    ///
    /// # Errors
    /// [`Busy`] when the reservation was not granted within the wait.
    pub(crate) async fn reserve(&self, bytes: u64) -> Result<Reservation, Busy> {
        let want = u32::try_from(bytes.div_ceil(UNIT).max(1))
            .unwrap_or(u32::MAX)
            .min(self.units);
        let acquire = async {
            // The lane permit is held only while this request queues for the budget.
            let _lane = if want > self.large_above {
                Some(self.large_lane.clone().acquire_owned().await)
            } else {
                None
            };
            self.budget.clone().acquire_many_owned(want).await
        };
        match tokio::time::timeout(self.wait, acquire).await {
            Ok(Ok(permit)) => Ok(Reservation { _permit: permit }),
            // Timed out, or (never: the semaphores are not closed) closed.
            _ => Err(Busy),
        }
    }

    /// The bytes reserved at this moment.
    #[cfg(test)]
    pub(crate) fn reserved_bytes(&self) -> u64 {
        u64::from(self.units - self.budget.available_permits() as u32) * UNIT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[tokio::test]
    async fn reservations_within_the_budget_are_granted_at_once_and_given_back() {
        let b = UploadBudget::new(8 * MIB, Duration::from_millis(50));
        let r1 = b.reserve(3 * MIB).await.unwrap();
        let r2 = b.reserve(5 * MIB).await.unwrap();
        assert_eq!(b.reserved_bytes(), 8 * MIB);
        assert_eq!(b.reserve(1).await.unwrap_err(), Busy, "the budget is spent");
        drop(r1);
        assert_eq!(b.reserved_bytes(), 5 * MIB);
        let _r3 = b.reserve(3 * MIB).await.unwrap();
        drop(r2);
        // More than the whole budget is reserved as the whole budget (and waits for it).
        assert_eq!(b.reserve(100 * MIB).await.unwrap_err(), Busy);
    }

    #[tokio::test]
    async fn a_waiting_request_gets_its_share_when_another_finishes() {
        let b = Arc::new(UploadBudget::new(4 * MIB, Duration::from_secs(30)));
        let first = b.reserve(4 * MIB).await.unwrap();
        let waiter = {
            let b = b.clone();
            tokio::spawn(async move { b.reserve(2 * MIB).await.map(|_| ()) })
        };
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(first);
        assert_eq!(waiter.await.unwrap(), Ok(()));
        assert_eq!(b.reserved_bytes(), 0);
    }

    /// A large request that waits is not overtaken by small ones that come after it, and while
    /// it waits, a second large request queues in the lane, not in front of the small ones.
    #[tokio::test]
    async fn large_requests_are_not_starved_and_hold_up_small_ones_at_most_once() {
        let b = Arc::new(UploadBudget::new(16 * MIB, Duration::from_secs(30)));
        let small = b.reserve(2 * MIB).await.unwrap();
        let busy = b.reserve(8 * MIB).await.unwrap();
        // 6 MiB free: a 12 MiB request waits.
        let large = {
            let b = b.clone();
            tokio::spawn(async move { b.reserve(12 * MIB).await })
        };
        tokio::task::yield_now().await;
        // A later small request is not served before the large one, although it would fit.
        let later_small = {
            let b = b.clone();
            tokio::spawn(async move { b.reserve(MIB).await })
        };
        tokio::task::yield_now().await;
        assert!(!large.is_finished() && !later_small.is_finished());
        drop(busy);
        let large = large.await.unwrap().unwrap();
        // 16 - 2 - 12 = 2 MiB free: the small one goes now.
        let later_small = later_small.await.unwrap().unwrap();
        assert_eq!(b.reserved_bytes(), 15 * MIB);
        drop((small, large, later_small));
        assert_eq!(b.reserved_bytes(), 0);
    }
}
