//! The periodic jobs of `serve`: garbage collection every `gc_interval`, a sampled verify every
//! `verify_interval` (when set) and a copy of the metadata database every `db_backup_interval`.
//!
//! Each job is a [`Task`] run through [`Resources::run`], so a scheduled run does exactly what the
//! admin command does and is published on the event stream like it. Each job has its own thread
//! (a long verify does not delay the GC), and all of them wait on one stop signal: [`Scheduler::stop`]
//! (also on drop) wakes every job that is waiting and joins the threads; a job that is running
//! finishes its task first (each task is crash-safe anyway, so an abrupt end loses nothing either).

use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use super::Task;
use super::dbbackup;
use super::events::Origin;
use super::runner::Resources;

/// When a job runs next: the wait from the end of a run.
type NextWait = Box<dyn FnMut() -> Duration + Send>;

/// One periodic job.
struct Job {
    name: &'static str,
    task: Task,
    /// The wait before the first run.
    first: Duration,
    /// The wait after a run.
    next: NextWait,
}

/// The stop signal all jobs wait on.
#[derive(Default)]
struct Stop {
    stopped: Mutex<bool>,
    wake: Condvar,
}

impl Stop {
    /// Waits up to `wait`; true when the scheduler was stopped meanwhile.
    fn wait(&self, wait: Duration) -> bool {
        let guard = self.stopped.lock().unwrap_or_else(|p| p.into_inner());
        let (guard, _) = self
            .wake
            .wait_timeout_while(guard, wait, |stopped| !*stopped)
            .unwrap_or_else(|p| p.into_inner());
        *guard
    }
}

/// The running periodic jobs.
pub(crate) struct Scheduler {
    stop: Arc<Stop>,
    threads: Vec<JoinHandle<()>>,
}

impl Scheduler {
    /// Starts the jobs that the configuration of `res` turns on.
    pub(crate) fn start(res: Resources) -> std::io::Result<Scheduler> {
        Scheduler::start_jobs(res.clone(), jobs(&res))
    }

    fn start_jobs(res: Resources, jobs: Vec<Job>) -> std::io::Result<Scheduler> {
        let stop = Arc::new(Stop::default());
        let mut scheduler = Scheduler {
            stop: stop.clone(),
            threads: Vec::new(),
        };
        for mut job in jobs {
            let (res, stop) = (res.clone(), stop.clone());
            let thread = std::thread::Builder::new()
                .name(format!("periodic-{}", job.name))
                .spawn(move || {
                    let mut wait = job.first;
                    while !stop.wait(wait) {
                        // How it ended goes to the event stream (and so to the log).
                        let _ = res.run(&job.task, Origin::Schedule, &mut |_| {});
                        wait = (job.next)();
                    }
                })?;
            scheduler.threads.push(thread);
        }
        Ok(scheduler)
    }

    /// Wakes every waiting job, lets a running task finish and joins the threads.
    pub(crate) fn stop(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        *self.stop.stopped.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.stop.wake.notify_all();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// The jobs of the configuration.
fn jobs(res: &Resources) -> Vec<Job> {
    let config = &res.config;
    let mut jobs = Vec::new();
    // GC: every interval, the first one an interval after the start.
    let gc_every = config.gc_interval.0;
    jobs.push(Job {
        name: "gc",
        task: Task::Gc {
            dry_run: false,
            grace: None,
        },
        first: gc_every,
        next: Box::new(move || gc_every),
    });
    if let Some(every) = config.verify_every() {
        jobs.push(Job {
            name: "verify",
            task: Task::Verify {
                sample_percent: Some(f64::from(config.verify_sample_percent)),
                user: None,
            },
            first: every,
            next: Box::new(move || every),
        });
    }
    // Copies: `interval` after the newest copy (at once when there is none), and after a failure
    // not before an hour (or the interval, if shorter) has passed.
    let interval = config.db_backup_interval.0;
    if !interval.is_zero() {
        let data_dir = config.data_dir.clone();
        let retry = interval.min(Duration::from_secs(3600));
        let until_due = move |not_before: SystemTime| {
            dbbackup::next_due(&data_dir, interval)
                .map(|due| due.max(not_before))
                .and_then(|due| due.duration_since(SystemTime::now()).ok())
                .unwrap_or(Duration::ZERO)
        };
        let first = until_due(SystemTime::now());
        jobs.push(Job {
            name: "db-backup",
            task: Task::DbBackup { to: None },
            first,
            next: Box::new(move || until_due(SystemTime::now() + retry)),
        });
    }
    jobs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::ops::Report;
    use crate::ops::events::Ending;
    use crate::ops::events::EventBus;
    use std::time::Instant;

    fn resources(dir: &std::path::Path) -> Resources {
        let config = Config {
            data_dir: dir.to_path_buf(),
            ..Config::default()
        };
        Resources {
            db: Arc::new(crate::db::Db::open(&dir.join("asgard.redb")).unwrap()),
            store: Arc::new(crate::store::LocalStore::open(&dir.join("chunks")).unwrap()),
            config: Arc::new(config),
            events: Arc::new(EventBus::new()),
        }
    }

    #[test]
    fn jobs_run_on_time_publish_their_reports_and_stop_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let res = resources(dir.path());
        let events = res.events.subscribe();
        let job = Job {
            name: "stats",
            task: Task::Stats,
            first: Duration::ZERO,
            next: Box::new(|| Duration::from_millis(20)),
        };
        let scheduler = Scheduler::start_jobs(res, vec![job]).unwrap();
        let mut seen = 0;
        while seen < 3 {
            let e = events.recv_timeout(Duration::from_secs(10)).unwrap();
            assert_eq!(e.origin, Origin::Schedule);
            assert!(matches!(e.ending, Ending::Done(Report::Stats(_))), "{e:?}");
            seen += 1;
        }
        // A job waiting for an hour does not hold up the stop.
        let dir2 = tempfile::tempdir().unwrap();
        let slow = Scheduler::start_jobs(
            resources(dir2.path()),
            vec![Job {
                name: "slow",
                task: Task::Stats,
                first: Duration::from_secs(3600),
                next: Box::new(|| Duration::from_secs(3600)),
            }],
        )
        .unwrap();
        let started = Instant::now();
        slow.stop();
        scheduler.stop();
        assert!(started.elapsed() < Duration::from_secs(60));
    }

    #[test]
    fn the_configuration_chooses_the_jobs() {
        let dir = tempfile::tempdir().unwrap();
        let mut res = resources(dir.path());
        let names = |r: &Resources| jobs(r).iter().map(|j| j.name).collect::<Vec<_>>();
        assert_eq!(names(&res), ["gc", "verify", "db-backup"]);
        let mut config = (*res.config).clone();
        config.verify_interval = crate::config::HumanDuration::secs(0);
        config.db_backup_interval = crate::config::HumanDuration::secs(0);
        res.config = Arc::new(config);
        assert_eq!(names(&res), ["gc"], "an interval of 0 turns a job off");
        // Without any copy yet, the first one is due at once.
        let mut config = (*res.config).clone();
        config.db_backup_interval = crate::config::HumanDuration::secs(86_400);
        res.config = Arc::new(config);
        let backup = jobs(&res)
            .into_iter()
            .find(|j| j.name == "db-backup")
            .unwrap();
        assert_eq!(backup.first, Duration::ZERO);
    }
}
