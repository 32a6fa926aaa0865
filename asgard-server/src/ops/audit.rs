//! What the audit log records of a task that ran: one entry per account action, setting change
//! and maintenance start, with the actor the caller names (`cli` for a command on the server's
//! machine, the admin's name for the console). Reads and listings are not audited. The admin
//! account tasks (`ops::admins`) record their own entries; they are not repeated here.
//!
//! The callers: the command line's two paths (`crate::control::execute` in-process and the admin
//! channel's server side) record with the actor `cli`; the console records with its admin after
//! the task ran, through the same [`record`]; [`super::jobs::JobBoard::start`] records a
//! maintenance start itself.

use crate::db::{AuditAction, AuditRec, Db};

use super::{Report, Task};

/// Who asked for a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Actor {
    /// `cli`, or the console admin's name.
    pub name: String,
    /// The client's address, for a request over the network.
    pub client: Option<String>,
}

impl Actor {
    /// A command on the server's machine.
    pub(crate) fn cli() -> Actor {
        Actor {
            name: "cli".into(),
            client: None,
        }
    }
}

fn device(user: &str, device: &str) -> String {
    format!("device:{}/{}", shown(user), shown(device))
}

fn user(name: &str) -> String {
    format!("user:{}", shown(name))
}

fn shown(name: &str) -> String {
    asgard_core::names::normalize(name).unwrap_or_else(|_| name.to_owned())
}

/// The entry a finished `task` leaves (action, object, detail), or `None` for tasks that change
/// nothing or audit themselves. Never a secret: no token, code or key.
/// `report` is the task's report when it has ended (`None` at a job's start).
pub(crate) fn entry(task: &Task, report: Option<&Report>) -> Option<(AuditAction, String, String)> {
    let none = String::new;
    Some(match task {
        Task::DeviceApprove { user: u, device: d } => {
            (AuditAction::DeviceApproved, device(u, d), none())
        }
        Task::DeviceReset { user: u, device: d } => {
            (AuditAction::DeviceReset, device(u, d), none())
        }
        Task::DeviceRevoke { user: u, device: d } => {
            (AuditAction::DeviceRevoked, device(u, d), none())
        }
        Task::DeviceToken { user: u, device: d } => {
            (AuditAction::DeviceToken, device(u, d), none())
        }
        Task::UserDisable { user: u } => (AuditAction::UserDisabled, user(u), none()),
        Task::UserEnable { user: u } => (AuditAction::UserEnabled, user(u), none()),
        Task::UserDelete { user: u } => {
            let detail = match report {
                Some(Report::UserChanged(c)) => c
                    .deleted
                    .map(|d| {
                        format!(
                            "devices {}, paths {}, versions {}",
                            d.devices, d.paths, d.versions
                        )
                    })
                    .unwrap_or_default(),
                _ => none(),
            };
            (AuditAction::UserDeleted, user(u), detail)
        }
        Task::UserSetKeep { user: u, versions } => (
            AuditAction::KeepChanged,
            user(u),
            versions.map_or_else(|| "cleared".into(), |v| format!("keep_versions {v}")),
        ),
        Task::RegistrationSet {
            mode,
            enrollment_key,
            clear_enrollment_key,
            reset,
        } => {
            let mut parts = Vec::new();
            if *reset {
                parts.push("reset to the configuration file".to_owned());
            }
            if let Some(m) = mode {
                parts.push(format!(
                    "mode {}",
                    serde_json::to_string(m).unwrap_or_default()
                ));
            }
            if enrollment_key.is_some() {
                parts.push("new enrollment key".into());
            }
            if *clear_enrollment_key {
                parts.push("no enrollment key".into());
            }
            (
                AuditAction::SettingChanged,
                "registration".into(),
                parts.join(", "),
            )
        }
        Task::Gc { dry_run, .. } => (
            AuditAction::MaintenanceStarted,
            "gc".into(),
            if *dry_run { "dry run".into() } else { none() },
        ),
        Task::Verify {
            sample_percent,
            user: u,
        } => (
            AuditAction::MaintenanceStarted,
            "verify".into(),
            [
                sample_percent.map(|p| format!("sample {p} %")),
                u.as_ref().map(|u| format!("user {u}")),
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(", "),
        ),
        Task::DbBackup { .. } => (AuditAction::MaintenanceStarted, "db-backup".into(), none()),
        // Issue 14: never the link itself (it is a secret), only until when it works.
        Task::UserLink { user: u, .. } => (
            AuditAction::RestoreLinkCreated,
            user(u),
            match report {
                Some(Report::UserLink(r)) => {
                    format!("valid until {}", asgard_core::fmt::format_utc(r.expires_us))
                }
                _ => none(),
            },
        ),
        _ => return None,
    })
}

/// Appends the entry of `task` (see [`entry`]) by `actor`, if it has one. A failure to record is
/// logged, never the task's failure: the action happened.
pub(crate) fn record(db: &Db, actor: &Actor, task: &Task, report: &Report) {
    if let Some((action, object, detail)) = entry(task, Some(report)) {
        append(db, actor, action, object, detail);
    }
}

pub(crate) fn append(db: &Db, actor: &Actor, action: AuditAction, object: String, detail: String) {
    let mut rec =
        AuditRec::new(crate::db::now_us(), actor.name.clone(), action, object).detail(detail);
    rec.client = actor.client.clone();
    if let Err(e) = db.audit_append(&rec) {
        tracing::error!(error = %e, "audit log entry lost");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::ops::{TaskContext, run};

    #[test]
    fn account_actions_are_audited_without_secrets_and_reads_are_not() {
        let (_d, db) = crate::testutil::open_db();
        let (_, _) = crate::testutil::register(&db, "anna", "pc");
        let config = Config::default();
        let ctx = TaskContext {
            db: &db,
            store: None,
            config: &config,
            now_us: 1,
        };
        let tasks = [
            Task::DeviceList,
            Task::DeviceToken {
                user: "Anna".into(),
                device: "pc".into(),
            },
            Task::RegistrationSet {
                mode: Some(crate::config::Registration::Approve),
                enrollment_key: Some("geheimer-schluessel".into()),
                clear_enrollment_key: false,
                reset: false,
            },
            Task::UserDisable {
                user: "anna".into(),
            },
            Task::UserList,
        ];
        let actor = Actor {
            name: "admin:root".into(),
            client: Some("192.0.2.1".into()),
        };
        for t in &tasks {
            let report = run(t, &ctx, &mut |_| {}).unwrap();
            record(&db, &actor, t, &report);
        }
        let page = db.audit_page(None, 10).unwrap();
        let entries: Vec<_> = page.iter().map(|(_, r)| r.clone()).collect();
        assert_eq!(entries.len(), 3, "{entries:?}");
        let text = format!("{entries:?}");
        assert!(
            !text.contains("geheimer") && !text.contains("asg_"),
            "{text}"
        );
        let by = |a: AuditAction| entries.iter().find(|e| e.action == a).unwrap();
        let tok = by(AuditAction::DeviceToken);
        assert_eq!(tok.object, "device:anna/pc");
        assert_eq!(tok.actor, "admin:root");
        assert_eq!(tok.client.as_deref(), Some("192.0.2.1"));
        let set = by(AuditAction::SettingChanged);
        assert_eq!(set.detail, "mode \"approve\", new enrollment key");
        assert_eq!(by(AuditAction::UserDisabled).object, "user:anna");
    }
}
