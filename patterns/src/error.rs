//! The one error type of this crate: an invalid configuration.
//!
//! Rejections (a breaker that is open, a limiter that says no) are not errors;
//! they are decisions returned as values. `ConfigError` is for a config that
//! breaks a rule, and names the field path and the rule:
//!
//! ```
//! use stormglass_patterns::ConfigError;
//!
//! let err = ConfigError::new("failure_threshold", "must be at least 1").within("breaker");
//! assert_eq!(err.to_string(), "breaker.failure_threshold: must be at least 1");
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
        ConfigError {
            field: field.into(),
            rule: rule.into(),
        }
    }

    /// The same error seen from the enclosing config: prefixes the path.
    pub fn within(mut self, parent: &str) -> Self {
        self.field = if self.field.is_empty() {
            parent.to_string()
        } else {
            format!("{parent}.{}", self.field)
        };
        self
    }
}

/// Shorthand for validation code: `Err(ConfigError)` unless `ok`.
pub(crate) fn ensure(ok: bool, field: &str, rule: &str) -> Result<(), ConfigError> {
    if ok {
        Ok(())
    } else {
        Err(ConfigError::new(field, rule))
    }
}
