//! Maintenance jobs started from the admin console ("start GC now", "verify now", "db-backup
//! now") and watched while they run.
//!
//! A [`JobBoard`] runs one maintenance task at a time on its own thread, through the same
//! runner as the admin channel ([`Resources::run`]: the result is published on the event bus
//! like any other run). While it runs, [`JobBoard::status`] shows its steps; when it ends, its
//! report (as JSON, the same as `--json` of the command) or its error and exit code. The last
//! finished job of each kind stays visible ([`JobBoard::last`]), so the maintenance page shows
//! the last GC, verify and db-backup that it started, beside the last results the database
//! keeps (`overview`).
//!
//! Only maintenance tasks (gc, verify, db-backup) are jobs: account actions are quick and answer
//! at once. A second start while a job runs is refused with the running job's status
//! ([`JobError::AlreadyRunning`]); the periodic GC and verify have their own guards (a run
//! that meets one of them ends as "skipped", shown as an error here).

use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex};

use serde::{Deserialize, Serialize};

use super::audit::Actor;
use super::events::Origin;
use super::{Resources, Step, Task};

/// A job's number, unique while the server runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub(crate) struct JobId(pub u64);

/// A step a job reached, with the time (µs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StepAt {
    pub at_us: i64,
    pub step: Step,
}

/// How a job ended.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct JobEnd {
    pub finished_us: i64,
    /// The command's exit code: 0 all well, 1 verify found damage, 2 the task failed.
    pub exit_code: u8,
    /// The report as JSON (as `--json` prints it), when the task ran.
    pub report: Option<serde_json::Value>,
    /// Why the task failed (the error's own text), when it did.
    pub error: Option<String>,
    /// The report itself, for a page that renders it as text in its reader's language.
    #[serde(skip)]
    pub data: Option<Box<super::Report>>,
}

/// A job, running or finished.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct JobStatus {
    pub id: JobId,
    /// The task's stable name (`gc`, `verify`, `db-backup`).
    pub name: String,
    pub task: Task,
    pub started_us: i64,
    /// The steps reached so far, oldest first.
    pub steps: Vec<StepAt>,
    /// `None` while it runs.
    pub finished: Option<JobEnd>,
}

/// Why a job was not started.
#[derive(Debug, thiserror::Error)]
pub(crate) enum JobError {
    /// Another job runs (its status).
    #[error("another maintenance job is running: {} (#{})", .0.name, .0.id.0)]
    AlreadyRunning(Box<JobStatus>),
    /// The task is not a maintenance job (its name).
    #[error("{0} is not a maintenance job")]
    NotAJob(&'static str),
    /// The thread could not be started.
    #[error("cannot start the job: {0}")]
    Spawn(#[from] std::io::Error),
}

#[derive(Default)]
struct Board {
    next_id: u64,
    current: Option<JobStatus>,
    /// The last finished job of each kind (by task name).
    last: BTreeMap<&'static str, JobStatus>,
}

/// The maintenance jobs of a running server (see the module docs). Cheap to share: hold it in an
/// `Arc`.
pub(crate) struct JobBoard {
    res: Resources,
    board: Mutex<Board>,
    /// Signalled when a job ends (for [`JobBoard::wait`]).
    ended: Condvar,
}

/// Whether `task` is a maintenance job.
pub(crate) fn is_job(task: &Task) -> bool {
    matches!(
        task,
        Task::Gc { .. } | Task::Verify { .. } | Task::DbBackup { .. }
    )
}

impl JobBoard {
    pub(crate) fn new(res: Resources) -> Arc<JobBoard> {
        Arc::new(JobBoard {
            res,
            board: Mutex::new(Board::default()),
            ended: Condvar::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Board> {
        self.board.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts `task` now on its own thread.
    ///
    /// # Errors
    /// [`JobError`]: a job runs already, the task is not a maintenance job, or no thread.
    /// The start is recorded in the audit log with `actor`.
    pub(crate) fn start(self: &Arc<Self>, task: Task, actor: &Actor) -> Result<JobId, JobError> {
        if !is_job(&task) {
            return Err(JobError::NotAJob(task.name()));
        }
        let id = {
            let mut b = self.lock();
            if let Some(cur) = &b.current {
                return Err(JobError::AlreadyRunning(Box::new(cur.clone())));
            }
            b.next_id += 1;
            let id = JobId(b.next_id);
            b.current = Some(JobStatus {
                id,
                name: task.name().to_owned(),
                task: task.clone(),
                started_us: crate::db::now_us(),
                steps: Vec::new(),
                finished: None,
            });
            id
        };
        if let Some((action, object, detail)) = super::audit::entry(&task, None) {
            super::audit::append(&self.res.db, actor, action, object, detail);
        }
        let me = self.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("job-{}", task.name()))
            .spawn(move || me.run(id, &task));
        if let Err(e) = spawned {
            self.lock().current = None;
            return Err(e.into());
        }
        Ok(id)
    }

    fn run(&self, id: JobId, task: &Task) {
        let mut on_step = |step: Step| {
            if let Some(cur) = self.lock().current.as_mut().filter(|c| c.id == id) {
                cur.steps.push(StepAt {
                    at_us: crate::db::now_us(),
                    step,
                });
            }
        };
        let result = self.res.run(task, Origin::Console, &mut on_step);
        let end = match result {
            Ok(report) => {
                // The board is the console's: its reports carry no file names.
                let report = report.for_console();
                JobEnd {
                    finished_us: crate::db::now_us(),
                    exit_code: report.exit_code(),
                    report: serde_json::to_value(&report).ok(),
                    error: None,
                    data: Some(Box::new(report)),
                }
            }
            Err(e) => JobEnd {
                finished_us: crate::db::now_us(),
                exit_code: 2,
                report: None,
                error: Some(e.to_string()),
                data: None,
            },
        };
        let mut b = self.lock();
        if let Some(mut done) = b.current.take() {
            done.finished = Some(end);
            b.last.insert(task.name(), done);
        }
        drop(b);
        self.ended.notify_all();
    }

    /// The job of `id`: the running one, or the last finished one of its kind (older finished
    /// jobs are forgotten).
    pub(crate) fn status(&self, id: JobId) -> Option<JobStatus> {
        let b = self.lock();
        b.current
            .iter()
            .chain(b.last.values())
            .find(|j| j.id == id)
            .cloned()
    }

    /// The running job, if any.
    pub(crate) fn current(&self) -> Option<JobStatus> {
        self.lock().current.clone()
    }

    /// The last finished job of each kind, by task name.
    pub(crate) fn last(&self) -> Vec<JobStatus> {
        self.lock().last.values().cloned().collect()
    }

    /// Waits until job `id` has finished or `timeout` passed; its status then (a page waits a
    /// little, so that a short job's report comes with the answer).
    pub(crate) fn wait(&self, id: JobId, timeout: std::time::Duration) -> Option<JobStatus> {
        let deadline = std::time::Instant::now() + timeout;
        let mut b = self.lock();
        loop {
            let found = b
                .current
                .iter()
                .chain(b.last.values())
                .find(|j| j.id == id)
                .cloned();
            let now = std::time::Instant::now();
            match found {
                Some(j) if j.finished.is_some() => return Some(j),
                None => return None,
                Some(j) if now >= deadline => return Some(j),
                Some(_) => {
                    b = self
                        .ended
                        .wait_timeout(b, deadline - now)
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;
    use crate::config::Config;
    use crate::ops::events::{Ending, EventBus};
    use crate::store::{ChunkStore, IdIter, LocalStore, StoreError};
    use asgard_core::ChunkId;

    /// The real local store, whose `list` (the GC's orphan phase) waits until the test opens
    /// the gate: the job is then held in mid-run as long as the test needs.
    struct Gated {
        inner: LocalStore,
        gate: Mutex<mpsc::Receiver<()>>,
    }

    impl ChunkStore for Gated {
        fn put(&self, id: &ChunkId, stored: &[u8]) -> Result<bool, StoreError> {
            self.inner.put(id, stored)
        }
        fn replace(&self, id: &ChunkId, stored: &[u8]) -> Result<(), StoreError> {
            self.inner.replace(id, stored)
        }
        fn get(&self, id: &ChunkId) -> Result<Vec<u8>, StoreError> {
            self.inner.get(id)
        }
        fn exists(&self, id: &ChunkId) -> Result<bool, StoreError> {
            self.inner.exists(id)
        }
        fn delete(&self, id: &ChunkId) -> Result<bool, StoreError> {
            self.inner.delete(id)
        }
        fn stored_at_us(&self, id: &ChunkId) -> Result<Option<i64>, StoreError> {
            self.inner.stored_at_us(id)
        }
        fn list(&self) -> Result<IdIter<'_>, StoreError> {
            let _ = self
                .gate
                .lock()
                .unwrap()
                .recv_timeout(Duration::from_secs(30));
            self.inner.list()
        }
        fn flush(&self) -> Result<(), StoreError> {
            self.inner.flush()
        }
    }

    fn board(dir: &std::path::Path) -> (Arc<JobBoard>, mpsc::Sender<()>, Resources) {
        let (open, gate) = mpsc::channel();
        let res = Resources {
            db: Arc::new(crate::db::Db::open(&dir.join("asgard.redb")).unwrap()),
            store: Arc::new(Gated {
                inner: LocalStore::open(&dir.join("chunks")).unwrap(),
                gate: Mutex::new(gate),
            }),
            config: Arc::new(Config {
                data_dir: dir.to_path_buf(),
                ..Config::default()
            }),
            events: Arc::new(EventBus::new()),
        };
        (JobBoard::new(res.clone()), open, res)
    }

    #[test]
    fn one_job_at_a_time_with_its_steps_then_its_report() {
        let dir = tempfile::tempdir().unwrap();
        let (jobs, open, res) = board(dir.path());
        let events = res.events.subscribe();
        // Some data, so that the GC has something to look at.
        let (_, anna) = crate::testutil::register(&res.db, "anna", "pc");
        crate::testutil::upload(&res.db, &anna, &[b"eins"]);

        let gc = Task::Gc {
            dry_run: true,
            grace: None,
        };
        let id = jobs.start(gc.clone(), &Actor::cli()).unwrap();
        // While it runs: it is the current job, with its step; a second start is refused.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while jobs.current().is_some_and(|j| j.steps.is_empty()) {
            assert!(std::time::Instant::now() < deadline, "no step reported");
            std::thread::sleep(Duration::from_millis(5));
        }
        let cur = jobs.current().expect("running");
        assert_eq!((cur.id, cur.name.as_str()), (id, "gc"));
        assert_eq!(cur.steps[0].step, Step::CollectingGarbage);
        assert!(cur.finished.is_none());
        let verify = Task::Verify {
            sample_percent: None,
            user: None,
        };
        match jobs.start(verify.clone(), &Actor::cli()) {
            Err(JobError::AlreadyRunning(j)) => assert_eq!(j.id, id),
            other => panic!("a second job started: {other:?}"),
        }
        // Account actions are no jobs.
        assert!(matches!(
            jobs.start(Task::UserList, &Actor::cli()),
            Err(JobError::NotAJob("user-list"))
        ));

        open.send(()).unwrap();
        let done = jobs.wait(id, Duration::from_secs(30)).unwrap();
        let end = done.finished.expect("finished");
        assert_eq!(end.exit_code, 0);
        let report = end.report.unwrap();
        assert_eq!(report["dry_run"], true, "{report}");
        assert!(jobs.current().is_none());
        assert_eq!(jobs.status(id).unwrap().id, id);
        // Published like any other run, as started from the console.
        let e = events.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(e.origin, Origin::Console);
        assert!(matches!(e.ending, Ending::Done(_)));

        // The next job may start now; a failing one ends with its error and exit code 2.
        let bad = Task::Verify {
            sample_percent: None,
            user: Some("niemand".into()),
        };
        open.send(()).unwrap();
        let id2 = jobs.start(bad, &Actor::cli()).unwrap();
        assert!(id2 > id);
        let end = jobs
            .wait(id2, Duration::from_secs(30))
            .unwrap()
            .finished
            .unwrap();
        assert_eq!(end.exit_code, 2, "{end:?}");
        assert!(end.error.is_some() && end.report.is_none());
        // The last job of each kind stays.
        let last: Vec<String> = jobs.last().into_iter().map(|j| j.name).collect();
        assert_eq!(last, ["gc", "verify"]);
        // Each start is in the audit log.
        let audit = res.db.audit_page(None, 10).unwrap();
        let started: Vec<&str> = audit.iter().map(|(_, r)| r.object.as_str()).collect();
        assert_eq!(started, ["verify", "gc"]);
        let _ = open.send(());
    }
}
