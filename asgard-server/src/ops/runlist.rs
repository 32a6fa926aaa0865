//! The run reports of the agents for the admin (`runs`, the runs page): newest first, filtered
//! by user, device and state, paged. The records are those of `crate::db::runs` (the last
//! [`crate::db::KEEP_RUNS`] per device).

use asgard_core::protocol::RunSummary;
use serde::{Deserialize, Serialize};

use super::OpsError;
use crate::config::Config;
use crate::db::{Db, RunRec, RunScope};

/// The most runs one page shows.
pub(crate) const MAX_LIMIT: u32 = 500;
/// The largest `offset` accepted (the page is found with memory for `offset + limit` keys).
pub(crate) const MAX_OFFSET: u64 = 100_000;

/// The page size when none is given.
pub(crate) fn default_limit() -> u32 {
    50
}

/// How a run went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RunState {
    /// Every file backed up, nothing to report.
    Ok,
    /// Done, but files were skipped or the agent reported errors (exit code 3, or 0 with them).
    Warnings,
    /// The run did not finish its job.
    Failed,
}

impl RunState {
    pub(crate) fn of(rec: &RunRec) -> RunState {
        match rec.exit_code {
            0 if rec.errors.is_empty() && rec.summary.files_skipped == 0 => RunState::Ok,
            0 | 3 => RunState::Warnings,
            _ => RunState::Failed,
        }
    }
}

/// Which runs to list.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct RunFilter {
    pub user: Option<String>,
    /// A device name (of `user`; with no user, every user's device of that name).
    pub device: Option<String>,
    pub state: Option<RunState>,
    pub offset: u64,
    pub limit: u32,
}

/// One run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct RunEntry {
    pub run_id: u64,
    pub user: String,
    pub device: String,
    /// Server time the report arrived (µs).
    pub received_us: i64,
    /// Agent clock (µs).
    pub started_us: i64,
    pub finished_us: i64,
    pub agent_version: String,
    pub exit_code: u8,
    pub state: RunState,
    /// Counts, bytes and duration (`files_skipped`: files not backed up).
    pub summary: RunSummary,
    /// The agent's first errors and warnings (bounded by the protocol).
    pub errors: Vec<String>,
}

/// A page of runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct RunListReport {
    pub filter: RunFilter,
    /// Runs matching the filter, in all.
    pub total: u64,
    pub runs: Vec<RunEntry>,
}

/// The page of runs `filter` asks for. Unknown user or device names are errors that name them.
pub(crate) fn list(
    db: &Db,
    _config: &Config,
    filter: &RunFilter,
    _now: i64,
) -> Result<RunListReport, OpsError> {
    let limit = filter.limit.clamp(1, MAX_LIMIT) as usize;
    let offset = filter.offset.min(MAX_OFFSET) as usize;
    let normal = |n: &str| asgard_core::names::normalize(n).unwrap_or_else(|_| n.to_owned());
    let users = db.list_users()?;
    let user_id = match &filter.user {
        Some(u) => {
            let wanted = normal(u);
            Some(
                users
                    .iter()
                    .find(|r| r.name == wanted || r.name == *u)
                    .map(|r| r.id)
                    .ok_or_else(|| OpsError::UserNotFound { user: u.clone() })?,
            )
        }
        None => None,
    };
    let devices = db.list_devices_full()?;
    let device_ids: Option<Vec<(u64, u64)>> = match &filter.device {
        Some(d) => {
            let wanted = normal(d);
            let found: Vec<(u64, u64)> = devices
                .iter()
                .filter(|r| user_id.is_none_or(|u| r.user_id == u))
                .filter(|r| r.device == wanted || r.device == *d)
                .map(|r| (r.user_id, r.rec.id))
                .collect();
            if found.is_empty() {
                return Err(OpsError::DeviceNotFound {
                    user: filter.user.clone().unwrap_or_default(),
                    device: d.clone(),
                });
            }
            Some(found)
        }
        None => None,
    };
    let state = filter.state;
    let keep = |uid: u64, did: u64, r: &RunRec| {
        device_ids
            .as_ref()
            .is_none_or(|ids| ids.contains(&(uid, did)))
            && state.is_none_or(|s| RunState::of(r) == s)
    };
    let scope = match (&device_ids, user_id) {
        (Some(ids), _) if ids.len() == 1 => RunScope::Device {
            user_id: ids[0].0,
            device_id: ids[0].1,
        },
        (_, Some(u)) => RunScope::User(u),
        _ => RunScope::All,
    };
    let (rows, total) = db.runs_page(scope, &keep, offset, limit)?;
    let user_name = |id: u64| {
        users
            .iter()
            .find(|r| r.id == id)
            .map(|r| r.name.clone())
            .unwrap_or_default()
    };
    let device_name = |uid: u64, did: u64| {
        devices
            .iter()
            .find(|r| r.user_id == uid && r.rec.id == did)
            .map(|r| r.device.clone())
            .unwrap_or_default()
    };
    Ok(RunListReport {
        filter: RunFilter {
            limit: limit as u32,
            offset: offset as u64,
            ..filter.clone()
        },
        total,
        runs: rows
            .into_iter()
            .map(|r| RunEntry {
                run_id: r.run_id,
                user: user_name(r.user_id),
                device: device_name(r.user_id, r.device_id),
                received_us: r.rec.received_us,
                started_us: r.rec.started_us,
                finished_us: r.rec.finished_us,
                agent_version: r.rec.agent_version.clone(),
                exit_code: r.rec.exit_code,
                state: RunState::of(&r.rec),
                summary: r.rec.summary,
                errors: r.rec.errors,
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{open_db, register};

    fn rec(received_us: i64, exit_code: u8, skipped: u64) -> RunRec {
        RunRec {
            received_us,
            started_us: received_us - 10,
            finished_us: received_us,
            agent_version: "t".into(),
            exit_code,
            summary: RunSummary {
                files_skipped: skipped,
                ..RunSummary::default()
            },
            errors: if exit_code == 0 {
                Vec::new()
            } else {
                vec![format!("Fehler {received_us}")]
            },
        }
    }

    #[test]
    fn runs_are_listed_newest_first_filtered_and_paged() {
        let (_d, db) = open_db();
        let (_, a_pc) = register(&db, "anna", "pc");
        let (_, a_lap) = register(&db, "anna", "laptop");
        let (_, b_pc) = register(&db, "bert", "pc");
        // Arrival order: ids grow across devices.
        let plan = [
            (&a_pc, 0, 0),
            (&b_pc, 1, 0),
            (&a_lap, 3, 2),
            (&a_pc, 0, 1),
            (&b_pc, 0, 0),
            (&a_pc, 1, 0),
        ];
        for (i, (who, code, skipped)) in plan.iter().enumerate() {
            db.add_run(
                who.user_id,
                who.device_id,
                &rec(100 + i as i64, *code, *skipped),
            )
            .unwrap();
        }
        let config = Config::default();
        let get = |f: RunFilter| list(&db, &config, &f, 0).unwrap();
        let all = get(RunFilter {
            limit: 50,
            ..RunFilter::default()
        });
        assert_eq!(all.total, 6);
        let times: Vec<i64> = all.runs.iter().map(|r| r.received_us).collect();
        assert_eq!(times, [105, 104, 103, 102, 101, 100]);
        assert_eq!(
            (all.runs[0].user.as_str(), all.runs[0].device.as_str()),
            ("anna", "pc")
        );
        assert_eq!(all.runs[0].state, RunState::Failed);
        assert_eq!(all.runs[0].errors, ["Fehler 105"]);
        // Skipped files, or exit code 3, are warnings.
        assert_eq!(all.runs[2].state, RunState::Warnings);
        assert_eq!(all.runs[3].state, RunState::Warnings);

        let page = get(RunFilter {
            offset: 2,
            limit: 2,
            ..RunFilter::default()
        });
        assert_eq!(page.total, 6);
        let times: Vec<i64> = page.runs.iter().map(|r| r.received_us).collect();
        assert_eq!(times, [103, 102]);

        let anna = get(RunFilter {
            user: Some("Anna".into()),
            limit: 50,
            ..RunFilter::default()
        });
        assert_eq!(anna.total, 4);
        assert!(anna.runs.iter().all(|r| r.user == "anna"));
        // A device name alone matches that name of every user.
        let pcs = get(RunFilter {
            device: Some("pc".into()),
            limit: 50,
            ..RunFilter::default()
        });
        assert_eq!(pcs.total, 5);
        let anna_pc_failed = get(RunFilter {
            user: Some("anna".into()),
            device: Some("pc".into()),
            state: Some(RunState::Failed),
            limit: 50,
            ..RunFilter::default()
        });
        assert_eq!(anna_pc_failed.total, 1);
        assert_eq!(anna_pc_failed.runs[0].received_us, 105);
        let ok = get(RunFilter {
            state: Some(RunState::Ok),
            limit: 1,
            ..RunFilter::default()
        });
        assert_eq!((ok.total, ok.runs[0].received_us), (2, 104));

        // Limits are clamped; unknown names are errors that name them.
        let huge = get(RunFilter {
            limit: 1_000_000,
            offset: u64::MAX,
            ..RunFilter::default()
        });
        assert_eq!(huge.filter.limit, MAX_LIMIT);
        assert_eq!(huge.filter.offset, MAX_OFFSET);
        assert!(huge.runs.is_empty() && huge.total == 6);
        assert!(matches!(
            list(
                &db,
                &config,
                &RunFilter {
                    user: Some("niemand".into()),
                    ..RunFilter::default()
                },
                0
            ),
            Err(OpsError::UserNotFound { .. })
        ));
        assert!(matches!(
            list(
                &db,
                &config,
                &RunFilter {
                    user: Some("bert".into()),
                    device: Some("laptop".into()),
                    ..RunFilter::default()
                },
                0
            ),
            Err(OpsError::DeviceNotFound { .. })
        ));
    }
}
