//! The texts of the errors the binary prints before a command runs: the config file and the run
//! lock.

use asgard_core::Lang;

use asgard_core::rules::RuleError;

use crate::config::ConfigError;
use crate::runlock::LockError;

/// An error as a message in the reader's language.
pub trait Describe {
    /// The message for the user, in `lang`.
    fn describe(&self, lang: Lang) -> String;
}

impl Describe for ConfigError {
    /// The `Display` form is the German message.
    fn describe(&self, lang: Lang) -> String {
        match (self, lang) {
            (_, Lang::De) => self.to_string(),
            (ConfigError::Missing { path }, Lang::En) => {
                format!("config file {} not found", path.display())
            }
            (ConfigError::Read { path, source }, Lang::En) => {
                format!("cannot read config file {}: {source}", path.display())
            }
            (ConfigError::Parse { path, message }, Lang::En) => {
                format!("error in config file {}: {message}", path.display())
            }
        }
    }
}

impl Describe for RuleError {
    /// The `Display` form is the German message.
    fn describe(&self, lang: Lang) -> String {
        match (self, lang) {
            (_, Lang::De) => self.to_string(),
            (RuleError::Unset { text, name }, Lang::En) => {
                format!("placeholder {name} in \"{text}\" is not set")
            }
            (RuleError::Invalid { rule, message }, Lang::En) => {
                format!("invalid rule \"{rule}\": {message}")
            }
            (RuleError::NotAbsolute { path }, Lang::En) => {
                format!("path \"{path}\" is not absolute")
            }
            (RuleError::NoHome, Lang::En) => {
                "home folder unknown (HOME or USERPROFILE is not set)".to_owned()
            }
            (RuleError::SystemScopeOnWindows, Lang::En) => {
                "scope: system exists on Linux only".to_owned()
            }
        }
    }
}

impl Describe for LockError {
    fn describe(&self, lang: Lang) -> String {
        match (self, lang) {
            (LockError::Busy { path, holder }, Lang::De) => format!(
                "Ein anderer Lauf des Agenten ist noch aktiv{}; dieser Aufruf endet ohne etwas zu \
                 tun. (Sperrdatei: {})",
                holder
                    .map(|p| format!(" (Prozess {p})"))
                    .unwrap_or_default(),
                path.display()
            ),
            (LockError::Busy { path, holder }, Lang::En) => format!(
                "Another run of the agent is still active{}; this call ends without doing \
                 anything. (lock file: {})",
                holder
                    .map(|p| format!(" (process {p})"))
                    .unwrap_or_default(),
                path.display()
            ),
            (LockError::Io { path, source }, Lang::De) => {
                format!("Sperrdatei {} nicht nutzbar: {source}", path.display())
            }
            (LockError::Io { path, source }, Lang::En) => {
                format!("cannot use lock file {}: {source}", path.display())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_error_messages_in_both_languages() {
        let e = RuleError::NotAbsolute { path: "x".into() };
        assert!(e.describe(Lang::De).contains("nicht absolut"));
        assert!(e.describe(Lang::En).contains("not absolute"));
    }

    /// A second run learns that another one holds the lock, and which process.
    #[test]
    fn busy_lock_names_the_other_run() {
        let e = LockError::Busy {
            path: "/s/agent.lock".into(),
            holder: Some(std::process::id()),
        };
        let text = e.describe(Lang::De);
        assert!(text.contains("anderer Lauf"), "{text}");
        assert!(
            text.contains(&std::process::id().to_string()),
            "pid missing: {text}"
        );
    }
}
