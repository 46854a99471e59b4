//! The one error type of this crate: an invalid configuration.
//!
//! Rejections (a breaker that is open, a limiter that says no) are not errors;
//! they are decisions returned as values. `ConfigError` is for a config that
//! breaks a rule, and names the field path and the rule. It is the engine's
//! type, so errors from a distribution inside a pattern config nest cleanly:
//!
//! ```
//! use stormglass_patterns::ConfigError;
//!
//! let err = ConfigError::new("failure_threshold", "must be at least 1").within("breaker");
//! assert_eq!(err.to_string(), "breaker.failure_threshold: must be at least 1");
//! ```

pub use stormglass_core::error::ConfigError;

/// Shorthand for validation code: `Err(ConfigError)` unless `ok`.
pub(crate) fn ensure(ok: bool, field: &str, rule: &str) -> Result<(), ConfigError> {
    stormglass_core::error::ensure(ok, field, rule)
}
