//! # The web catalogue: every text of the pages, one file per language
//!
//! `locales/de/admin.ftl` and `locales/en/admin.ftl` hold the texts as `key = value` lines (the
//! single-line subset of Fluent: `#` comments, `{ $name }` placeholders). Both files are embedded
//! in the binary. The keys are the [`Key`] enum, so the compiler checks every key a page uses;
//! the unit tests check that every key is in both files and that no file has a key the code does
//! not know. The language is passed per call (the request's `lang` cookie, see [`lang_of`]),
//! never a process-wide setting: two admins may read different languages at the same time.

use std::collections::HashMap;
use std::sync::OnceLock;

use actix_web::HttpRequest;
use asgard_core::Lang;

/// The name of the cookie that holds the reader's language (`de` or `en`).
pub(crate) const LANG_COOKIE: &str = "lang";

const DE: &str = include_str!("../../locales/de/admin.ftl");
const EN: &str = include_str!("../../locales/en/admin.ftl");

macro_rules! keys {
    ($($variant:ident = $id:literal,)*) => {
        /// A text of the pages; its value comes from the catalogue of the reader's language.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub(crate) enum Key { $($variant,)* }

        impl Key {
            /// Every key, for the completeness tests.
            #[cfg(test)]
            pub(crate) const ALL: &'static [Key] = &[$(Key::$variant,)*];

            /// The key's name in the catalogue files.
            pub(crate) fn id(self) -> &'static str {
                match self { $(Key::$variant => $id,)* }
            }
        }
    };
}

keys! {
    All = "all",
    Approve = "approve",
    BackToDevices = "back-to-devices",
    ColAction = "col-action",
    ColActions = "col-actions",
    ColAdmin = "col-admin",
    ColBytesRead = "col-bytes-read",
    ColClient = "col-client",
    ColDetail = "col-detail",
    ColDevice = "col-device",
    ColDevices = "col-devices",
    ColDuration = "col-duration",
    ColErrors = "col-errors",
    ColFiles = "col-files",
    ColKeep = "col-keep",
    ColLastRun = "col-last-run",
    ColLastSeen = "col-last-seen",
    ColLastSuccess = "col-last-success",
    ColObject = "col-object",
    ColReceived = "col-received",
    ColSkipped = "col-skipped",
    ColState = "col-state",
    ColSystem = "col-system",
    ColTime = "col-time",
    ColToken = "col-token",
    ColUser = "col-user",
    DeviceApproved = "device-approved",
    DeviceReset = "device-reset",
    Done = "done",
    ErrBack = "err-back",
    ErrBadRequest = "err-bad-request",
    ErrCsrf = "err-csrf",
    ErrInternal = "err-internal",
    ErrNeedTotp = "err-need-totp",
    ErrNoSession = "err-no-session",
    ErrNotFound = "err-not-found",
    ErrTitle = "err-title",
    Filter = "filter",
    Footer = "footer",
    FooterUser = "footer-user",
    KeepClear = "keep-clear",
    KeepDefault = "keep-default",
    KeepInherited = "keep-inherited",
    KeepSaved = "keep-saved",
    KeepSet = "keep-set",
    LoginFailed = "login-failed",
    LoginName = "login-name",
    LoginPassword = "login-password",
    LoginSubmit = "login-submit",
    LoginThrottled = "login-throttled",
    LoginTitle = "login-title",
    MaintDamaged = "maint-damaged",
    MaintDbBackup = "maint-db-backup",
    MaintDone = "maint-done",
    MaintDryRun = "maint-dry-run",
    MaintFull = "maint-full",
    MaintGc = "maint-gc",
    MaintSample = "maint-sample",
    MaintStart = "maint-start",
    MaintVerify = "maint-verify",
    NavAudit = "nav-audit",
    NavDevices = "nav-devices",
    NavLogout = "nav-logout",
    NavMaintenance = "nav-maintenance",
    NavOverview = "nav-overview",
    NavRuns = "nav-runs",
    NavUsers = "nav-users",
    Never = "never",
    NoDevices = "no-devices",
    NoEntries = "no-entries",
    NoRuns = "no-runs",
    NoUsers = "no-users",
    OneTimeCode = "one-time-code",
    OvBadChunks = "ov-bad-chunks",
    OvCompression = "ov-compression",
    OvDedupe = "ov-dedupe",
    OvDevices = "ov-devices",
    OvLastGc = "ov-last-gc",
    OvLastRuns = "ov-last-runs",
    OvLastVerify = "ov-last-verify",
    OvLogical = "ov-logical",
    OvPending = "ov-pending",
    OvStored = "ov-stored",
    OvUsers = "ov-users",
    PagerNewest = "pager-newest",
    PagerNext = "pager-next",
    PagerPrev = "pager-prev",
    Reset = "reset",
    ResetHint = "reset-hint",
    RunAgent = "run-agent",
    RunBytesNew = "run-bytes-new",
    RunChanged = "run-changed",
    RunDeleted = "run-deleted",
    RunNew = "run-new",
    RunPrivacy = "run-privacy",
    RunTitle = "run-title",
    ShownOnce = "shown-once",
    StateFailed = "state-failed",
    StateNever = "state-never",
    StateOk = "state-ok",
    StateOverdue = "state-overdue",
    StateWarnings = "state-warnings",
    TokenActive = "token-active",
    TokenPending = "token-pending",
    TokenRevoked = "token-revoked",
    TotpCode = "totp-code",
    TotpFailed = "totp-failed",
    TotpHint = "totp-hint",
    TotpLocked = "totp-locked",
    TotpSubmit = "totp-submit",
    TotpTitle = "totp-title",
    ValidUntil = "valid-until",
    // Issue 13, ops: users, devices, registration, overview.
    ColAddress = "col-address",
    ColCreated = "col-created",
    ColLogical = "col-logical",
    ColSince = "col-since",
    ColUnique = "col-unique",
    ColVersions = "col-versions",
    UniqueHint = "unique-hint",
    UserActive = "user-active",
    UserDisabledBadge = "user-disabled-badge",
    Disable = "disable",
    Enable = "enable",
    Delete = "delete",
    DeleteConfirm = "delete-confirm",
    DeleteHint = "delete-hint",
    UserDisabledFlash = "user-disabled-flash",
    UserEnabledFlash = "user-enabled-flash",
    UserDeletedFlash = "user-deleted-flash",
    Revoke = "revoke",
    NewToken = "new-token",
    DeviceRevokedFlash = "device-revoked-flash",
    NewTokenShown = "new-token-shown",
    NewTokenHint = "new-token-hint",
    TokenReset = "token-reset",
    RegTitle = "reg-title",
    RegMode = "reg-mode",
    RegOpen = "reg-open",
    RegApprove = "reg-approve",
    RegClosed = "reg-closed",
    RegKeyRequired = "reg-key-required",
    RegKeyNone = "reg-no-key",
    RegSourceConfig = "reg-source-config",
    RegSourceDb = "reg-source-db",
    RegKeyNew = "reg-new-key",
    RegKeyClear = "reg-clear-key",
    RegSave = "reg-save",
    RegReset = "reg-reset",
    RegSaved = "reg-saved",
    OvSpace = "ov-space",
    OvSpaceValue = "ov-space-value",
    OvPendingList = "ov-pending-list",
    MaintRunning = "maint-running",
    MaintRunningHint = "maint-running-hint",
    MaintLastJobs = "maint-last-jobs",
    // Issue 13, web2.
    Refuse = "refuse",
    DeviceRefusedFlash = "device-refused-flash",
    AuditLogin = "audit-login",
    AuditLoginFailed = "audit-login-failed",
    AuditTotpFailed = "audit-totp-failed",
    AuditTotpLocked = "audit-totp-locked",
    AuditRecoveryUsed = "audit-recovery-used",
    AuditLogout = "audit-logout",
    AuditAdminCreated = "audit-admin-created",
    AuditAdminDeleted = "audit-admin-deleted",
    AuditPasswordChanged = "audit-password-changed",
    AuditTotpEnabled = "audit-totp-enabled",
    AuditTotpDisabled = "audit-totp-disabled",
    AuditTokenCreated = "audit-token-created",
    AuditDeviceApproved = "audit-device-approved",
    AuditDeviceRefused = "audit-device-refused",
    AuditDeviceRevoked = "audit-device-revoked",
    AuditDeviceToken = "audit-device-token",
    AuditDeviceReset = "audit-device-reset",
    AuditUserDisabled = "audit-user-disabled",
    AuditUserEnabled = "audit-user-enabled",
    AuditUserDeleted = "audit-user-deleted",
    AuditKeepChanged = "audit-keep-changed",
    AuditSettingChanged = "audit-setting-changed",
    AuditMaintenanceStarted = "audit-maintenance-started",
    AuditGc = "audit-gc",
    AuditGcDry = "audit-gc-dry",
    AuditVerifySample = "audit-verify-sample",
    AuditVerifyAll = "audit-verify-all",
    AuditVerifyUser = "audit-verify-user",
    AuditDbBackup = "audit-db-backup",
    AuditKeepSet = "audit-keep-set",
    AuditKeepCleared = "audit-keep-cleared",
    AuditRegReset = "audit-reg-reset",
    AuditRegMode = "audit-reg-mode",
    AuditModeOpen = "audit-mode-open",
    AuditModeApprove = "audit-mode-approve",
    AuditModeClosed = "audit-mode-closed",
    AuditRegKeyNew = "audit-reg-new-key",
    AuditRegKeyNone = "audit-reg-no-key",
    AuditUserDeletedCounts = "audit-user-deleted-counts",
    AuditThrottled = "audit-throttled",
    AuditWrongPassword = "audit-wrong-password",
    AuditPassword = "audit-password",
    AuditPasswordTotp = "audit-password-totp",
    AuditPasswordRecovery = "audit-password-recovery",
    AuditWhileLocked = "audit-while-locked",
    MaintDamageTitle = "maint-damage-title",
    MaintDamageChunks = "maint-damage-chunks",
    MaintDamageAffected = "maint-damage-affected",
    MaintDamageHint = "maint-damage-hint",
    ColChunk = "col-chunk",
    ColKind = "col-kind",
    KindDamaged = "kind-damaged",
    KindMissing = "kind-missing",
    KindUnindexed = "kind-unindexed",
    AuditRestoreLinkCreated = "audit-restore-link-created",
    AuditLinkUsed = "audit-link-used",
    AuditLinkRefused = "audit-link-refused",
    AuditWebPasswordSet = "audit-web-password-set",
    AuditDownload = "audit-download",
    AuditPreview = "audit-preview",
    AuditZipDownload = "audit-zip-download",
    // Issue 14, uauth: the user's navigation, start page, links and login.
    UserNavDevices = "user-nav-devices",
    UserNavSearch = "user-nav-search",
    UserNavDeleted = "user-nav-deleted",
    MyTitle = "my-title",
    MyIntro = "my-intro",
    MyNoDevices = "my-no-devices",
    MyLastBackup = "my-last-backup",
    MyBrowse = "my-browse",
    MyAdminLink = "my-admin-link",
    LinkTitle = "link-title",
    LinkUnknown = "link-unknown",
    LinkGone = "link-gone",
    UserLoginTitle = "user-login-title",
    UserLoginHint = "user-login-hint",
    UserLinkButton = "user-link-button",
    UserLinkShown = "user-link-shown",
    // Issue 14, ubrowse: folders, point in time, timeline, search, deleted files.
    BrTitle = "br-title",
    BrRoot = "br-root",
    BrAt = "br-at",
    BrAtShow = "br-at-show",
    BrAtNow = "br-at-now",
    BrAtShown = "br-at-shown",
    BrAtBad = "br-at-bad",
    BrEmpty = "br-empty",
    BrColName = "br-col-name",
    BrColSize = "br-col-size",
    BrColChanged = "br-col-changed",
    BrFolder = "br-folder",
    BrLink = "br-link",
    BrVersions = "br-versions",
    BrSelect = "br-select",
    BrZipSelected = "br-zip-selected",
    BrZipFolder = "br-zip-folder",
    BrFirstPage = "br-first-page",
    BrNextPage = "br-next-page",
    VerTitle = "ver-title",
    VerColTime = "ver-col-time",
    VerColChange = "ver-col-change",
    VerContent = "ver-content",
    VerMetaOnly = "ver-meta-only",
    VerDeleted = "ver-deleted",
    VerDownload = "ver-download",
    VerPreview = "ver-preview",
    VerBack = "ver-back",
    SearchTitle = "search-title",
    SearchLabel = "search-label",
    SearchSubmit = "search-submit",
    SearchNone = "search-none",
    SearchMore = "search-more",
    ColPath = "col-path",
    DelTitle = "del-title",
    DelSince = "del-since",
    DelAt = "del-at",
    DelLast = "del-last",
    DelNone = "del-none",
    DelMore = "del-more",
    // Issue 14, udown: downloads, previews and the notes file of a zip.
    DlNoPreviewTitle = "dl-no-preview-title",
    DlNoPreview = "dl-no-preview",
    DlDownload = "dl-download",
    ZipNotesIntro = "zip-notes-intro",
    ZipNoteRenamed = "zip-note-renamed",
    ZipNoteLink = "zip-note-link",
    ZipNoteUnsafe = "zip-note-unsafe",
    ZipNoteMore = "zip-note-more",
}

/// Parses a catalogue file: `key = value` lines, `#` comments and blank lines skipped.
fn parse(src: &'static str) -> HashMap<&'static str, &'static str> {
    src.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect()
}

fn catalogue(lang: Lang) -> &'static HashMap<&'static str, &'static str> {
    static CATALOGUES: OnceLock<[HashMap<&'static str, &'static str>; 2]> = OnceLock::new();
    let all = CATALOGUES.get_or_init(|| [parse(DE), parse(EN)]);
    &all[usize::from(code(lang) == "en")]
}

/// The text of `key` in `lang` (the key's name if a catalogue missed it, which the tests forbid).
pub(crate) fn t(lang: Lang, key: Key) -> &'static str {
    catalogue(lang).get(key.id()).copied().unwrap_or(key.id())
}

/// The text of `key` in `lang` with its `{ $name }` placeholders filled in.
pub(crate) fn tv(lang: Lang, key: Key, args: &[(&str, &str)]) -> String {
    let mut out = t(lang, key).to_owned();
    for (name, value) in args {
        out = out.replace(&format!("{{ ${name} }}"), value);
    }
    out
}

/// The reader's language: the `lang` cookie, else the configured language.
pub(crate) fn lang_of(req: &HttpRequest, configured: Lang) -> Lang {
    match req.cookie(LANG_COOKIE).as_ref().map(|c| c.value()) {
        Some("en") => Lang::En,
        Some("de") => Lang::De,
        _ => configured,
    }
}

/// The language code for `<html lang>` and the cookie.
pub(crate) fn code(lang: Lang) -> &'static str {
    lang.pick("de", "en")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn keys_of(src: &'static str) -> BTreeSet<&'static str> {
        parse(src).into_keys().collect()
    }

    #[test]
    fn every_key_is_in_both_languages_and_no_file_has_unknown_keys() {
        let known: BTreeSet<&str> = Key::ALL.iter().map(|k| k.id()).collect();
        assert_eq!(known.len(), Key::ALL.len(), "two keys share a name");
        for (name, src) in [("de", DE), ("en", EN)] {
            let found = keys_of(src);
            let missing: Vec<_> = known.difference(&found).collect();
            let unknown: Vec<_> = found.difference(&known).collect();
            assert!(missing.is_empty(), "{name}: missing {missing:?}");
            assert!(unknown.is_empty(), "{name}: unknown {unknown:?}");
            for line in src.lines().map(str::trim) {
                if !line.is_empty() && !line.starts_with('#') {
                    let (_, v) = line.split_once('=').expect(line);
                    assert!(!v.trim().is_empty(), "{name}: empty value in {line}");
                }
            }
            // No key is defined twice (the second would silently win).
            let lines = src
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .count();
            assert_eq!(lines, found.len(), "{name}: a key is defined twice");
        }
    }

    #[test]
    fn placeholders_are_the_same_in_both_languages() {
        for key in Key::ALL {
            let holes = |s: &str| {
                s.match_indices("{ $")
                    .map(|(i, _)| s[i..].split('}').next().unwrap_or("").to_owned())
                    .collect::<BTreeSet<_>>()
            };
            assert_eq!(
                holes(t(Lang::De, *key)),
                holes(t(Lang::En, *key)),
                "{}",
                key.id()
            );
        }
    }

    #[test]
    fn texts_differ_by_language_and_fill_in() {
        assert_eq!(t(Lang::De, Key::NavOverview), "Übersicht");
        assert_eq!(t(Lang::En, Key::NavOverview), "Overview");
        let s = tv(Lang::De, Key::LoginThrottled, &[("seconds", "42")]);
        assert!(s.contains("42") && !s.contains('$'), "{s}");
    }
}
