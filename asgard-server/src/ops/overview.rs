//! The admin console's first page as data (`overview`): users and devices, the last run of every
//! device with its state, pending registrations, logical against stored bytes, the space left on
//! the data directory's file system, and the last GC and verify.
//!
//! A device's state, most pressing first: `never` (no run reported), `overdue` (no successful
//! run within `overdue_after`, by the server's receive time: agent clocks are not trusted),
//! `failed` (the last run failed), `warnings` (the last run skipped files or reported errors),
//! `ok`.

use serde::{Deserialize, Serialize};

use super::OpsError;
use super::registration::{self, RegistrationReport};
use super::runlist::RunState;
use crate::config::Config;
use crate::db::{Db, DeviceLastRun, FullStats};

/// A device's backup state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum DeviceRunState {
    Ok,
    Warnings,
    Failed,
    Overdue,
    Never,
}

/// One device and its last run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct DeviceOverview {
    pub user: String,
    pub device: String,
    pub state: DeviceRunState,
    /// The newest run: its id, when it arrived (µs), its exit code and its first errors.
    pub last_run_id: Option<u64>,
    pub last_run_us: Option<i64>,
    pub last_exit_code: Option<u8>,
    pub last_errors: Vec<String>,
    /// When the newest successful run arrived (µs).
    pub last_success_us: Option<i64>,
}

/// A registration that waits for approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PendingInfo {
    pub user: String,
    pub device: String,
    pub since_us: i64,
}

/// How many devices are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StateCounts {
    pub ok: u64,
    pub warnings: u64,
    pub failed: u64,
    pub overdue: u64,
    pub never: u64,
}

/// The file system of the data directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Space {
    pub total_bytes: u64,
    /// Free for an unprivileged writer (what the server, not root, can still use).
    pub available_bytes: u64,
    pub free_bytes: u64,
}

/// The overview.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct OverviewReport {
    pub users: u64,
    pub disabled_users: u64,
    pub devices: u64,
    pub pending: Vec<PendingInfo>,
    pub states: StateCounts,
    pub device_runs: Vec<DeviceOverview>,
    pub overdue_after_s: u64,
    /// Logical, stored and plain bytes, their ratios, the last GC and verify reports.
    pub stats: FullStats,
    /// `None` when the file system could not be asked (the error is logged).
    pub space: Option<Space>,
    pub registration: RegistrationReport,
}

/// The state of a device from its newest and newest successful run.
pub(crate) fn device_state(d: &DeviceLastRun, now: i64, overdue_after_us: i64) -> DeviceRunState {
    let Some((_, last)) = &d.last else {
        return DeviceRunState::Never;
    };
    let fresh = d
        .last_success
        .as_ref()
        .is_some_and(|(_, r)| now.saturating_sub(r.received_us) <= overdue_after_us);
    if !fresh {
        return DeviceRunState::Overdue;
    }
    match RunState::of(last) {
        RunState::Ok => DeviceRunState::Ok,
        RunState::Warnings => DeviceRunState::Warnings,
        RunState::Failed => DeviceRunState::Failed,
    }
}

/// The free and total space of the file system that holds `dir`.
#[cfg(unix)]
pub(crate) fn space(dir: &std::path::Path) -> std::io::Result<Space> {
    let s = rustix::fs::statvfs(dir)?;
    let unit = if s.f_frsize > 0 {
        s.f_frsize
    } else {
        s.f_bsize
    };
    Ok(Space {
        total_bytes: s.f_blocks.saturating_mul(unit),
        available_bytes: s.f_bavail.saturating_mul(unit),
        free_bytes: s.f_bfree.saturating_mul(unit),
    })
}

#[cfg(not(unix))]
pub(crate) fn space(_dir: &std::path::Path) -> std::io::Result<Space> {
    Err(std::io::Error::other("not supported on this system"))
}

/// The overview now.
pub(crate) fn overview(db: &Db, config: &Config, now: i64) -> Result<OverviewReport, OpsError> {
    let overdue_after_us = i64::try_from(config.overdue_after.0.as_micros()).unwrap_or(i64::MAX);
    let stats = db.full_stats()?;
    let mut states = StateCounts::default();
    let device_runs: Vec<DeviceOverview> = db
        .last_runs()?
        .into_iter()
        .map(|d| {
            let state = device_state(&d, now, overdue_after_us);
            let slot = match state {
                DeviceRunState::Ok => &mut states.ok,
                DeviceRunState::Warnings => &mut states.warnings,
                DeviceRunState::Failed => &mut states.failed,
                DeviceRunState::Overdue => &mut states.overdue,
                DeviceRunState::Never => &mut states.never,
            };
            *slot += 1;
            DeviceOverview {
                state,
                last_run_id: d.last.as_ref().map(|(id, _)| *id),
                last_run_us: d.last.as_ref().map(|(_, r)| r.received_us),
                last_exit_code: d.last.as_ref().map(|(_, r)| r.exit_code),
                last_errors: d
                    .last
                    .as_ref()
                    .map(|(_, r)| r.errors.iter().take(5).cloned().collect())
                    .unwrap_or_default(),
                last_success_us: d.last_success.as_ref().map(|(_, r)| r.received_us),
                user: d.user,
                device: d.device,
            }
        })
        .collect();
    // Both kinds wait for the admin: a new user's device under `registration: approve`, and a
    // further device of an existing user.
    let mut pending: Vec<PendingInfo> = db
        .list_devices_full()?
        .into_iter()
        .filter(|d| d.rec.status == asgard_core::protocol::DeviceStatus::Pending)
        .map(|d| PendingInfo {
            user: d.user,
            device: d.device,
            since_us: d.rec.created_us,
        })
        .chain(db.list_pending()?.into_iter().map(|p| PendingInfo {
            user: p.user,
            device: p.device,
            since_us: p.rec.created_us,
        }))
        .collect();
    pending.sort_by(|a, b| (&a.user, &a.device, a.since_us).cmp(&(&b.user, &b.device, b.since_us)));
    let space = match space(&config.data_dir) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(dir = %config.data_dir.display(), error = %e, "free space unknown");
            None
        }
    };
    Ok(OverviewReport {
        users: stats.users,
        disabled_users: db.disabled_users()?.len() as u64,
        devices: stats.devices,
        pending,
        states,
        device_runs,
        overdue_after_s: config.overdue_after.0.as_secs(),
        stats,
        space,
        registration: registration::show(db, config)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::RunRec;
    use crate::testutil::{login_request, open_db, register};

    const DAY: i64 = 86_400_000_000;

    fn run(received_us: i64, exit_code: u8) -> RunRec {
        RunRec {
            received_us,
            started_us: 0,
            finished_us: 0,
            agent_version: "t".into(),
            exit_code,
            summary: Default::default(),
            errors: if exit_code == 0 {
                Vec::new()
            } else {
                vec!["kaputt".into()]
            },
        }
    }

    #[test]
    fn device_states_from_their_runs() {
        let (dir, db) = open_db();
        let now = 10 * DAY;
        let devices = [
            ("ok", vec![run(now - DAY, 0)]),
            ("warnings", vec![run(now - DAY, 3)]),
            ("failed", vec![run(now - 2 * DAY + 1, 0), run(now - 1, 1)]),
            ("overdue", vec![run(now - 3 * DAY, 0), run(now - 1, 1)]),
            ("never-ok", vec![run(now - 1, 1)]),
            ("never", vec![]),
        ];
        for (name, runs) in &devices {
            let (_, a) = register(&db, "anna", name);
            for r in runs {
                db.add_run(a.user_id, a.device_id, r).unwrap();
            }
        }
        // A new user's device waiting under `registration: approve`, and a further device.
        let approve = crate::db::LoginPolicy {
            registration: crate::config::Registration::Approve,
            enrollment_key: None,
        };
        db.login(&login_request("zoe", "tablet"), None, approve, 5)
            .unwrap();
        db.login(
            &login_request("anna", "neu"),
            None,
            crate::testutil::OPEN,
            6,
        )
        .unwrap();

        let config = Config {
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        };
        let r = overview(&db, &config, now).unwrap();
        let state = |name: &str| {
            r.device_runs
                .iter()
                .find(|d| d.user == "anna" && d.device == name)
                .unwrap()
                .state
        };
        assert_eq!(state("ok"), DeviceRunState::Ok);
        assert_eq!(state("warnings"), DeviceRunState::Warnings);
        assert_eq!(state("failed"), DeviceRunState::Failed);
        assert_eq!(state("overdue"), DeviceRunState::Overdue);
        assert_eq!(state("never-ok"), DeviceRunState::Overdue);
        assert_eq!(state("never"), DeviceRunState::Never);
        let failed = r.device_runs.iter().find(|d| d.device == "failed").unwrap();
        assert_eq!(failed.last_errors, ["kaputt"]);
        assert_eq!(failed.last_success_us, Some(now - 2 * DAY + 1));
        assert_eq!(
            r.states,
            StateCounts {
                ok: 1,
                warnings: 1,
                failed: 1,
                overdue: 2,
                // zoe's waiting device has never run either.
                never: 2,
            }
        );
        let pending: Vec<(&str, &str)> = r
            .pending
            .iter()
            .map(|p| (p.user.as_str(), p.device.as_str()))
            .collect();
        assert_eq!(pending, [("anna", "neu"), ("zoe", "tablet")]);
        assert_eq!((r.users, r.devices), (2, 7));
        assert!(r.space.is_some_and(|s| s.total_bytes >= s.available_bytes));
        // A shorter overdue_after turns the ok device overdue.
        let strict = Config {
            overdue_after: crate::config::HumanDuration::secs(3600),
            ..config
        };
        let r = overview(&db, &strict, now).unwrap();
        assert_eq!(
            r.states.overdue, 5,
            "every device that ran once is late now"
        );
        assert_eq!(r.overdue_after_s, 3600);
    }
}
