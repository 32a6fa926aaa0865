//! Admin passwords: the policy, argon2id hashing with the crate's recommended parameters
//! (`Argon2::default()`: Argon2id v19, m = 19 MiB, t = 2, p = 1, the OWASP recommendation) and a
//! verification that spends the same time whether the admin exists or not.

use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

/// Shortest password, in characters.
pub(crate) const MIN_PASSWORD_CHARS: usize = 12;
/// Longest password, in bytes (a bound on what a login form may make the server hash).
pub(crate) const MAX_PASSWORD_BYTES: usize = 1024;

/// Why a new password is refused; the text is made by `crate::present`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum WeakPassword {
    #[error("the password is too short: at least {MIN_PASSWORD_CHARS} characters")]
    TooShort,
    #[error("the password is too long: at most {MAX_PASSWORD_BYTES} bytes")]
    TooLong,
    #[error("the password must not be the admin's name")]
    EqualsName,
}

/// Checks a new password of admin `name` against the policy.
pub(crate) fn check_policy(name: &str, password: &str) -> Result<(), WeakPassword> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(WeakPassword::TooShort);
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(WeakPassword::TooLong);
    }
    if password.trim().eq_ignore_ascii_case(name.trim()) {
        return Err(WeakPassword::EqualsName);
    }
    Ok(())
}

/// The argon2id PHC string of `password` with a new random salt.
pub(crate) fn hash(password: &str) -> String {
    Argon2::default()
        .hash_password(password.as_bytes())
        .expect("argon2 with its default parameters and a random salt")
        .to_string()
}

/// Whether `password` matches the PHC string `phc`. The comparison inside argon2 is constant
/// time; a malformed hash matches nothing.
pub(crate) fn verify(password: &str, phc: &str) -> bool {
    if password.len() > MAX_PASSWORD_BYTES {
        // Still spend the time of a verification, so the length tells nothing either.
        let _ = Argon2::default().verify_password(b"", dummy_hash());
        return false;
    }
    Argon2::default()
        .verify_password(password.as_bytes(), phc)
        .is_ok()
}

/// A hash of a random password, made once, with the same parameters as every real one: a login
/// with an unknown name is verified against it, so that it costs the same time as one with a
/// wrong password (no hint which of the two was wrong).
pub(crate) fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let mut random = [0u8; 32];
        getrandom::fill(&mut random).expect("operating system random source");
        hash(&asgard_core::id::to_hex(&random))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_refuses_short_long_and_name_passwords() {
        assert_eq!(check_policy("anna", "kurz"), Err(WeakPassword::TooShort));
        assert_eq!(
            check_policy("anna", "elf zeichen"),
            Err(WeakPassword::TooShort)
        );
        // Twelve characters, not twelve bytes: umlauts count once.
        assert_eq!(
            check_policy("anna", "äöüäöüäöüäö"),
            Err(WeakPassword::TooShort)
        );
        assert_eq!(check_policy("anna", "äöüäöüäöüäöü"), Ok(()));
        assert_eq!(
            check_policy("administrator", "Administrator"),
            Err(WeakPassword::EqualsName)
        );
        assert_eq!(
            check_policy("anna", &"x".repeat(MAX_PASSWORD_BYTES + 1)),
            Err(WeakPassword::TooLong)
        );
        assert_eq!(check_policy("anna", "Donnerkeil-2024!"), Ok(()));
    }

    #[test]
    fn hashes_are_argon2id_salted_and_verify() {
        let a = hash("Donnerkeil-2024!");
        let b = hash("Donnerkeil-2024!");
        assert!(a.starts_with("$argon2id$v=19$"), "{a}");
        assert_ne!(a, b, "each hash has its own salt");
        assert!(!a.contains("Donnerkeil"));
        assert!(verify("Donnerkeil-2024!", &a));
        assert!(verify("Donnerkeil-2024!", &b));
        assert!(!verify("Donnerkeil-2024?", &a));
        assert!(!verify("", &a));
        assert!(!verify("Donnerkeil-2024!", "not a hash"));
        assert!(!verify(&"x".repeat(MAX_PASSWORD_BYTES + 1), &a));
    }

    /// The dummy hash has the same parameters as a real one (so the same cost) and no password
    /// anyone knows matches it.
    #[test]
    fn the_dummy_hash_costs_the_same_and_matches_nothing() {
        let real = hash("Donnerkeil-2024!");
        let dummy = dummy_hash();
        let params = |h: &str| h.rsplitn(3, '$').nth(2).unwrap().to_owned();
        assert_eq!(params(dummy), params(&real));
        assert_eq!(dummy, dummy_hash(), "made once");
        for guess in ["", "Donnerkeil-2024!", "password1234", "0000000000000"] {
            assert!(!verify(guess, dummy));
        }
    }
}
