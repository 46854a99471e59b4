//! The configuration error shared by the stormglass crates.
//!
//! A config that breaks a rule is refused with the dotted path of the field
//! and the rule, so a user can find it in a scenario file:
//!
//! ```
//! use stormglass_core::error::ConfigError;
//!
//! let err = ConfigError::new("mean", "must be greater than 0").within("exponential");
//! assert_eq!(err.to_string(), "exponential.mean: must be greater than 0");
//! ```

/// A configuration value that breaks a rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {rule}")]
pub struct ConfigError {
    /// Dotted path of the offending field, e.g. `retry.backoff.max`.
    pub field: String,
    /// The rule it breaks, lowercase, no trailing period.
    pub rule: String,
}

impl ConfigError {
    /// An error for `field` breaking `rule`.
    pub fn new(field: impl Into<String>, rule: impl Into<String>) -> Self {
        ConfigError { field: field.into(), rule: rule.into() }
    }

    /// The same error seen from the enclosing config: prefixes the path.
    pub fn within(mut self, parent: &str) -> Self {
        self.field = if self.field.is_empty() { parent.to_string() } else { format!("{parent}.{}", self.field) };
        self
    }
}

/// `Err(ConfigError)` naming `field` and `rule` unless `ok`: the one-line
/// form every `validate()` uses.
pub fn ensure(ok: bool, field: &str, rule: &str) -> Result<(), ConfigError> {
    if ok { Ok(()) } else { Err(ConfigError::new(field, rule)) }
}
