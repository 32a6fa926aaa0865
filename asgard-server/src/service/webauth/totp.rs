//! The TOTP second factor (RFC 6238 through `totp-rs`: SHA-1, 6 digits, 30 s steps, one step of
//! clock skew either way, as authenticator apps expect) and its one-time recovery codes.
//!
//! A code is accepted once: the step it belongs to is remembered, and a code of that step or an
//! earlier one is refused (RFC 6238 section 5.2). After [`MAX_FAILURES`] wrong codes in a row the
//! second factor of the account locks for [`LOCK_US`]; the lock is kept in the admin's record, so
//! a new session or a restart does not lift it (as Proxmox Backup Server does with its TFA lock).

use totp_rs::{Algorithm, Builder, Totp};

use crate::db::TotpRec;

/// The issuer shown in authenticator apps.
pub(crate) const ISSUER: &str = "AsgardBackup";
/// Wrong codes in a row before the lock.
pub(crate) const MAX_FAILURES: u32 = 5;
/// How long the second factor stays locked after [`MAX_FAILURES`] wrong codes (15 minutes).
pub(crate) const LOCK_US: i64 = 15 * 60 * 1_000_000;
/// Recovery codes made with a new second factor.
pub(crate) const RECOVERY_CODES: usize = 10;
const STEP_SECS: u64 = 30;

/// A new second factor as `admin totp` shows it once: the record to store, the `otpauth://` URI
/// for the authenticator app and the recovery codes in clear.
#[derive(Debug, Clone)]
pub(crate) struct TotpSetup {
    pub rec: TotpRec,
    pub uri: String,
    pub recovery_codes: Vec<String>,
}

/// What a code did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CodeOutcome {
    /// Accepted; `recovery`: it was a recovery code (now used up).
    Accepted { recovery: bool },
    /// Wrong (or replayed); the lock is not reached yet.
    Wrong,
    /// Wrong, and it was the last try: the second factor is locked from now on until `until_us`.
    NowLocked { until_us: i64 },
    /// Locked already; the code was not looked at.
    Locked { until_us: i64 },
}

fn totp(secret: &[u8], account: &str) -> Result<Totp, totp_rs::TotpError> {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_skew(1)
        .with_step_duration(STEP_SECS)
        .with_secret(secret.to_vec())
        .with_issuer(Some(ISSUER))
        .with_account_name(account)
        .build()
}

fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).expect("operating system random source");
    b
}

/// A new second factor for admin `name` (a name in normal form: no `:`).
pub(crate) fn setup(name: &str) -> TotpSetup {
    let secret = random::<20>();
    let uri = totp(&secret, name)
        .and_then(|t| t.to_url())
        .expect("a 160-bit secret and an admin name without ':' make a valid otpauth URI");
    let recovery_codes: Vec<String> = (0..RECOVERY_CODES).map(|_| new_recovery_code()).collect();
    TotpSetup {
        rec: TotpRec {
            secret: secret.to_vec(),
            recovery: recovery_codes.iter().map(|c| recovery_hash(c)).collect(),
            failures: 0,
            locked_until_us: 0,
            last_step: 0,
        },
        uri,
        recovery_codes,
    }
}

/// 32 letters and digits without the look-alikes `i`, `l`, `o` and `0`.
const RECOVERY_ALPHABET: &[u8; 32] = b"abcdefghjkmnpqrstuvwxyz123456789";

/// A recovery code: 16 characters of [`RECOVERY_ALPHABET`] (80 bits) in groups of four.
fn new_recovery_code() -> String {
    let bytes = random::<16>();
    let mut out = String::with_capacity(19);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 && i % 4 == 0 {
            out.push('-');
        }
        out.push(char::from(RECOVERY_ALPHABET[usize::from(b & 31)]));
    }
    out
}

/// The stored form of a recovery code: blake3 of it without dashes and spaces, in lower case.
pub(crate) fn recovery_hash(code: &str) -> [u8; 32] {
    let normal: String = code
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .flat_map(char::to_lowercase)
        .collect();
    *blake3::hash(normal.as_bytes()).as_bytes()
}

/// Checks a second-factor `code` (six digits, or a recovery code) at `now_us` and updates `rec`:
/// the last accepted step, a used recovery code removed, the failure count and the lock.
pub(crate) fn check(rec: &mut TotpRec, account: &str, code: &str, now_us: i64) -> CodeOutcome {
    if now_us < rec.locked_until_us {
        return CodeOutcome::Locked {
            until_us: rec.locked_until_us,
        };
    }
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    let accepted = if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) {
        let now_secs = u64::try_from(now_us / 1_000_000).unwrap_or(0);
        match totp(&rec.secret, account)
            .ok()
            .and_then(|t| t.check(&code, now_secs))
        {
            Some(step) if step > rec.last_step => {
                rec.last_step = step;
                Some(false)
            }
            _ => None,
        }
    } else {
        let given = blake3::Hash::from_bytes(recovery_hash(&code));
        // Every stored code is compared (constant-time `Hash` equality), not only up to a match.
        let mut found = None;
        for (i, h) in rec.recovery.iter().enumerate() {
            if blake3::Hash::from_bytes(*h) == given {
                found = Some(i);
            }
        }
        found.map(|i| {
            rec.recovery.remove(i);
            true
        })
    };
    match accepted {
        Some(recovery) => {
            rec.failures = 0;
            CodeOutcome::Accepted { recovery }
        }
        None => {
            rec.failures += 1;
            if rec.failures >= MAX_FAILURES {
                rec.failures = 0;
                rec.locked_until_us = now_us.saturating_add(LOCK_US);
                CodeOutcome::NowLocked {
                    until_us: rec.locked_until_us,
                }
            } else {
                CodeOutcome::Wrong
            }
        }
    }
}

/// The code an authenticator app shows at `now_us` (for tests and the browser test's harness).
#[cfg(test)]
pub(crate) fn code_at(rec: &TotpRec, now_us: i64) -> String {
    totp(&rec.secret, "t")
        .unwrap()
        .generate(u64::try_from(now_us / 1_000_000).unwrap())
        .to_string()
}
