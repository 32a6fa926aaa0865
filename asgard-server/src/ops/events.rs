//! The event stream of the operations: every task the server runs (scheduled, or asked for over
//! the admin channel) is published here when it ends, with its report or its error, as data.
//!
//! Subscribers get their own unbounded queue, so a slow one never holds up a task (a task
//! publishes and goes on) and never loses an event; a subscriber that went away is dropped at the
//! next publish. The log is the first subscriber ([`spawn_log`]); the admin console and the
//! notifications of later issues subscribe the same way.

use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};

use super::{Report, Task};

/// Who started a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// The server's own schedule ([`super::schedule`]).
    Schedule,
    /// An admin command through the admin channel.
    AdminChannel,
    /// A maintenance job started in the admin console ([`super::jobs::JobBoard`]).
    Console,
}

/// How a task ended.
#[derive(Debug, Clone)]
pub(crate) enum Ending {
    Done(Report),
    /// Not run: another run of the same kind was going on (gc, verify).
    Skipped,
    /// The error, as text.
    Failed(String),
}

/// One task that ended.
#[derive(Debug, Clone)]
pub(crate) struct Event {
    pub task: Task,
    pub origin: Origin,
    pub started_us: i64,
    pub finished_us: i64,
    pub ending: Ending,
}

/// Publishes events to every subscriber.
#[derive(Debug, Default)]
pub(crate) struct EventBus {
    subscribers: Mutex<Vec<Sender<Arc<Event>>>>,
}

impl EventBus {
    pub(crate) fn new() -> EventBus {
        EventBus::default()
    }

    /// A new subscriber: it receives every event published from now on.
    pub(crate) fn subscribe(&self) -> Receiver<Arc<Event>> {
        let (tx, rx) = channel();
        self.lock().push(tx);
        rx
    }

    /// Sends `event` to every subscriber; drops those that went away.
    pub(crate) fn publish(&self, event: Event) {
        let event = Arc::new(event);
        self.lock().retain(|s| s.send(event.clone()).is_ok());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Sender<Arc<Event>>>> {
        self.subscribers.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Writes every event to the log (the thread ends when the bus is dropped).
pub(crate) fn spawn_log(bus: &EventBus) -> std::io::Result<std::thread::JoinHandle<()>> {
    let events = bus.subscribe();
    std::thread::Builder::new()
        .name("ops-log".into())
        .spawn(move || {
            for event in events {
                log(&event);
            }
        })
}

/// One event as a log line: scheduled runs as the periodic threads logged them before, admin
/// tasks as a line that names them.
fn log(e: &Event) {
    let scheduled = e.origin == Origin::Schedule;
    match (&e.ending, &e.task) {
        (Ending::Done(Report::Verify(r)), Task::Verify { .. }) if scheduled && r.clean() => {
            tracing::info!(
                chunks_checked = r.chunks_checked,
                duration_ms = r.duration_ms,
                "periodic verify: all is well"
            )
        }
        (Ending::Done(Report::Verify(r)), Task::Verify { .. }) if scheduled => tracing::warn!(
            damaged = r.damaged_count,
            missing = r.missing_count,
            unindexed = r.unindexed_count,
            bad_chunks = r.bad_chunks,
            affected_versions = r.affected_versions_count,
            "periodic verify found damage; `asgard-server verify` lists the affected versions"
        ),
        (Ending::Failed(error), Task::Verify { .. }) if scheduled => {
            tracing::warn!(%error, "periodic verify did not finish")
        }
        (Ending::Done(Report::DbBackup(r)), _) if scheduled => tracing::info!(
            path = %r.path.display(),
            bytes = r.bytes,
            removed = r.removed.len(),
            "metadata database backed up"
        ),
        (Ending::Failed(error), Task::DbBackup { .. }) if scheduled => {
            tracing::error!(%error, "automatic metadata database backup failed")
        }
        (Ending::Skipped, Task::Gc { .. }) => {
            tracing::info!("garbage collection skipped: another pass is running")
        }
        (Ending::Skipped, task) => tracing::info!(
            task = task.name(),
            "task skipped: another run of it is going on"
        ),
        // The pass logs its own summary (see `gc::run`).
        (Ending::Done(_), Task::Gc { .. }) if scheduled => {}
        (Ending::Failed(error), Task::Gc { .. }) if scheduled => {
            tracing::error!(%error, "garbage collection pass failed")
        }
        (Ending::Done(_), task) => tracing::info!(
            task = task.name(),
            origin = ?e.origin,
            duration_ms = (e.finished_us - e.started_us) / 1000,
            "task finished"
        ),
        (Ending::Failed(error), task) => tracing::error!(
            task = task.name(),
            origin = ?e.origin,
            %error,
            "task failed"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(n: u64) -> Event {
        Event {
            task: Task::Stats,
            origin: Origin::AdminChannel,
            started_us: 0,
            finished_us: n as i64,
            ending: Ending::Failed(format!("{n}")),
        }
    }

    #[test]
    fn every_subscriber_gets_every_event_and_a_gone_one_is_dropped() {
        let bus = EventBus::new();
        let a = bus.subscribe();
        let b = bus.subscribe();
        bus.publish(event(1));
        drop(b);
        bus.publish(event(2));
        assert_eq!(bus.lock().len(), 1, "the closed subscriber is gone");
        let got: Vec<i64> = a.try_iter().map(|e| e.finished_us).collect();
        assert_eq!(got, vec![1, 2]);
        let late = bus.subscribe();
        assert!(late.try_recv().is_err(), "no events from before");
    }
}
