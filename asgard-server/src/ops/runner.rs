//! The server's side of running a task: the open database, store and configuration that the
//! admin channel and the scheduler share, and the event stream every run is published on.

use std::sync::Arc;

use super::events::{Ending, Event, EventBus, Origin};
use super::{OpsError, Report, Step, Task, TaskContext};
use crate::config::Config;
use crate::db::Db;
use crate::store::ChunkStore;

/// What the server's tasks use: the same open database and store the API uses, and the event
/// stream their results go to.
#[derive(Clone)]
pub(crate) struct Resources {
    pub db: Arc<Db>,
    pub store: Arc<dyn ChunkStore>,
    pub config: Arc<Config>,
    pub events: Arc<EventBus>,
}

impl Resources {
    /// Runs `task` now and publishes how it ended. `step` hears of its steps.
    pub(crate) fn run(
        &self,
        task: &Task,
        origin: Origin,
        step: &mut dyn FnMut(Step),
    ) -> Result<Report, OpsError> {
        let ctx = TaskContext {
            db: &self.db,
            store: Some(&*self.store),
            config: &self.config,
            now_us: crate::db::now_us(),
        };
        let result = super::run(task, &ctx, step);
        let ending = match &result {
            Ok(report) => Ending::Done(report.clone()),
            Err(
                OpsError::Gc(super::gc::GcError::AlreadyRunning)
                | OpsError::Verify(super::verify::VerifyError::AlreadyRunning),
            ) => Ending::Skipped,
            Err(e) => Ending::Failed(e.to_string()),
        };
        self.events.publish(Event {
            task: task.clone(),
            origin,
            started_us: ctx.now_us,
            finished_us: crate::db::now_us(),
            ending,
        });
        result
    }
}
