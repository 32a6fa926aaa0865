//! Run reports: how each agent run went, the last [`KEEP_RUNS`] per device.
//!
//! This is what the admin pages and the overdue alerts read: "when did this device last back up,
//! and did it succeed". The key `(user id, device id, run id)` keeps a device's runs together and
//! in arrival order, so the newest run is one reverse range step away. Each report is stored with
//! the server's receive time, because agent clocks are not to be trusted for "overdue".

use asgard_core::protocol::{RunInfo, RunReport, RunSummary};
use redb::ReadableTable;
use serde::{Deserialize, Serialize};

use super::{
    DEVICES, Db, DeviceRec, META, NEXT_RUN_ID, RUNS, Result, USERS, UserRec, dec, enc, next_id,
};

/// Run reports kept per device; older ones are dropped when a new one arrives.
pub const KEEP_RUNS: usize = 50;

/// The stored form of a run report (postcard; no flattening, unlike the wire form).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRec {
    /// Server time the report arrived, µs since epoch.
    pub received_us: i64,
    pub started_us: i64,
    pub finished_us: i64,
    pub agent_version: String,
    pub exit_code: u8,
    pub summary: RunSummary,
    pub errors: Vec<String>,
}

impl RunRec {
    pub fn new(report: RunReport, received_us: i64) -> RunRec {
        RunRec {
            received_us,
            started_us: report.started_us,
            finished_us: report.finished_us,
            agent_version: report.agent_version,
            exit_code: report.exit_code,
            summary: report.summary,
            errors: report.errors,
        }
    }

    pub fn info(&self, id: u64) -> RunInfo {
        RunInfo {
            id,
            received_us: self.received_us,
            report: RunReport {
                started_us: self.started_us,
                finished_us: self.finished_us,
                agent_version: self.agent_version.clone(),
                exit_code: self.exit_code,
                summary: self.summary,
                errors: self.errors.clone(),
            },
        }
    }

    /// Whether the run finished its job (all files, or all but unreadable ones).
    pub fn succeeded(&self) -> bool {
        self.exit_code == 0 || self.exit_code == 3
    }
}

/// A device and its newest run, for overviews and overdue checks.
#[derive(Debug, Clone)]
pub struct DeviceLastRun {
    pub user: String,
    pub device: String,
    pub device_id: u64,
    /// The newest stored run (id, record), if the device ever reported one.
    pub last: Option<(u64, RunRec)>,
    /// The newest stored run that succeeded, if any.
    pub last_success: Option<(u64, RunRec)>,
}

impl Db {
    /// Stores a run report of a device and drops its runs beyond [`KEEP_RUNS`], in one
    /// transaction. Returns the run id.
    pub fn add_run(&self, user_id: u64, device_id: u64, rec: &RunRec) -> Result<u64> {
        let txn = self.write()?;
        let id = {
            let mut runs = txn.open_table(RUNS)?;
            let mut meta = txn.open_table(META)?;
            let id = next_id(&mut meta, NEXT_RUN_ID)?;
            runs.insert((user_id, device_id, id), enc(rec)?.as_slice())?;
            let range = (user_id, device_id, 0)..=(user_id, device_id, u64::MAX);
            let mut keys = Vec::new();
            for row in runs.range(range)? {
                keys.push(row?.0.value());
            }
            if keys.len() > KEEP_RUNS {
                for k in &keys[..keys.len() - KEEP_RUNS] {
                    runs.remove(k)?;
                }
            }
            id
        };
        txn.commit()?;
        Ok(id)
    }

    /// A device's stored runs, newest first, at most `limit`.
    pub fn runs(&self, user_id: u64, device_id: u64, limit: usize) -> Result<Vec<(u64, RunRec)>> {
        let txn = self.read()?;
        let runs = txn.open_table(RUNS)?;
        let mut out = Vec::new();
        let range = (user_id, device_id, 0)..=(user_id, device_id, u64::MAX);
        for row in runs.range(range)?.rev().take(limit) {
            let (k, v) = row?;
            out.push((k.value().2, dec(v.value())?));
        }
        Ok(out)
    }

    /// Every device with its newest run and newest successful run, ordered by user and device.
    pub fn last_runs(&self) -> Result<Vec<DeviceLastRun>> {
        let txn = self.read()?;
        let mut names = std::collections::HashMap::new();
        for row in txn.open_table(USERS)?.iter()? {
            let (k, v) = row?;
            names.insert(dec::<UserRec>(v.value())?.id, k.value().to_owned());
        }
        let runs = txn.open_table(RUNS)?;
        let mut out = Vec::new();
        for row in txn.open_table(DEVICES)?.iter()? {
            let (k, v) = row?;
            let (user_id, device) = k.value();
            let rec: DeviceRec = dec(v.value())?;
            let mut last = None;
            let mut last_success = None;
            let range = (user_id, rec.id, 0)..=(user_id, rec.id, u64::MAX);
            for run in runs.range(range)?.rev() {
                let (k, v) = run?;
                let r: RunRec = dec(v.value())?;
                let id = k.value().2;
                let ok = r.succeeded();
                if last.is_none() {
                    last = Some((id, r.clone()));
                }
                if ok {
                    last_success = Some((id, r));
                    break;
                }
            }
            out.push(DeviceLastRun {
                user: names.get(&user_id).cloned().unwrap_or_default(),
                device: device.to_owned(),
                device_id: rec.id,
                last,
                last_success,
            });
        }
        out.sort_by(|a, b| (&a.user, &a.device).cmp(&(&b.user, &b.device)));
        Ok(out)
    }
}

/// A stored run with the ids of its device, for the admin's run list.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRow {
    pub user_id: u64,
    pub device_id: u64,
    pub run_id: u64,
    pub rec: RunRec,
}

/// Which runs [`Db::runs_page`] reads: all, one user's, or one device's.
#[derive(Debug, Clone, Copy)]
pub enum RunScope {
    All,
    User(u64),
    Device { user_id: u64, device_id: u64 },
}

impl Db {
    /// The runs in `scope` that `keep` (user id, device id, run) accepts, newest first (run ids grow with time): `limit`
    /// of them after skipping `offset`, and how many there are in all. Memory holds the keys of
    /// `offset + limit` runs, whatever the table's size.
    pub fn runs_page(
        &self,
        scope: RunScope,
        keep: &dyn Fn(u64, u64, &RunRec) -> bool,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<RunRow>, u64)> {
        use std::cmp::Reverse;
        use std::collections::BinaryHeap;
        let txn = self.read()?;
        let runs = txn.open_table(RUNS)?;
        let range = match scope {
            RunScope::All => runs.range::<(u64, u64, u64)>(..)?,
            RunScope::User(u) => runs.range((u, 0, 0)..=(u, u64::MAX, u64::MAX))?,
            RunScope::Device { user_id, device_id } => {
                runs.range((user_id, device_id, 0)..=(user_id, device_id, u64::MAX))?
            }
        };
        let want = offset.saturating_add(limit);
        // A min-heap of the newest `want` matching keys (by run id).
        let mut newest: BinaryHeap<Reverse<(u64, u64, u64)>> = BinaryHeap::new();
        let mut total = 0u64;
        for row in range {
            let (k, v) = row?;
            let (user_id, device_id, run_id) = k.value();
            if !keep(user_id, device_id, &dec::<RunRec>(v.value())?) {
                continue;
            }
            total += 1;
            if want == 0 {
                continue;
            }
            newest.push(Reverse((run_id, user_id, device_id)));
            if newest.len() > want {
                newest.pop();
            }
        }
        let mut keys: Vec<(u64, u64, u64)> = newest.into_iter().map(|Reverse(k)| k).collect();
        keys.sort_unstable_by(|a, b| b.cmp(a));
        let mut out = Vec::with_capacity(limit);
        for (run_id, user_id, device_id) in keys.into_iter().skip(offset) {
            if let Some(g) = runs.get((user_id, device_id, run_id))? {
                out.push(RunRow {
                    user_id,
                    device_id,
                    run_id,
                    rec: dec(g.value())?,
                });
            }
        }
        Ok((out, total))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::open_db as open;

    fn register(db: &Db, user: &str, device: &str) -> crate::db::Auth {
        crate::testutil::register(db, user, device).1
    }

    fn rec(seen: u64, exit_code: u8) -> RunRec {
        RunRec {
            received_us: seen as i64,
            started_us: 1,
            finished_us: 2,
            agent_version: "0.1".into(),
            exit_code,
            summary: RunSummary {
                files_seen: seen,
                duration_s: 0.25,
                ..RunSummary::default()
            },
            errors: vec![format!("e{seen}")],
        }
    }

    #[test]
    fn runs_round_trip_newest_first_per_device() {
        let (_d, db) = open();
        let a = register(&db, "anna", "pc");
        let b = register(&db, "anna", "laptop");
        let id1 = db.add_run(a.user_id, a.device_id, &rec(1, 0)).unwrap();
        let id2 = db.add_run(a.user_id, a.device_id, &rec(2, 1)).unwrap();
        db.add_run(b.user_id, b.device_id, &rec(9, 0)).unwrap();
        assert!(id2 > id1);
        let got = db.runs(a.user_id, a.device_id, 100).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], (id2, rec(2, 1)));
        assert_eq!(got[1], (id1, rec(1, 0)));
        assert_eq!(db.runs(a.user_id, a.device_id, 1).unwrap().len(), 1);
        assert_eq!(
            db.runs(b.user_id, b.device_id, 100).unwrap()[0].1,
            rec(9, 0)
        );
    }

    #[test]
    fn keeps_only_the_last_runs_of_a_device() {
        let (_d, db) = open();
        let a = register(&db, "anna", "pc");
        let b = register(&db, "bert", "pc");
        db.add_run(b.user_id, b.device_id, &rec(0, 0)).unwrap();
        for i in 1..=(KEEP_RUNS as u64 + 7) {
            db.add_run(a.user_id, a.device_id, &rec(i, 0)).unwrap();
        }
        let got = db.runs(a.user_id, a.device_id, usize::MAX).unwrap();
        assert_eq!(got.len(), KEEP_RUNS);
        assert_eq!(got[0].1.summary.files_seen, KEEP_RUNS as u64 + 7);
        assert_eq!(got[KEEP_RUNS - 1].1.summary.files_seen, 8);
        // Another user's device with the same name keeps its run.
        assert_eq!(db.runs(b.user_id, b.device_id, 10).unwrap().len(), 1);
    }

    #[test]
    fn last_runs_show_newest_and_newest_success() {
        let (_d, db) = open();
        let a = register(&db, "anna", "pc");
        let _never = register(&db, "anna", "tablet");
        db.add_run(a.user_id, a.device_id, &rec(1, 0)).unwrap();
        db.add_run(a.user_id, a.device_id, &rec(2, 3)).unwrap();
        db.add_run(a.user_id, a.device_id, &rec(3, 1)).unwrap();
        let all = db.last_runs().unwrap();
        assert_eq!(all.len(), 2);
        let pc = all.iter().find(|d| d.device == "pc").unwrap();
        assert_eq!(pc.user, "anna");
        assert_eq!(pc.last.as_ref().unwrap().1.exit_code, 1);
        // Exit code 3 (some files unreadable) still counts as a backup that happened.
        assert_eq!(pc.last_success.as_ref().unwrap().1.summary.files_seen, 2);
        let tablet = all.iter().find(|d| d.device == "tablet").unwrap();
        assert!(tablet.last.is_none() && tablet.last_success.is_none());
    }
}
