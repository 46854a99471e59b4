//! What happened to one call attempt, as every pattern sees it.
//!
//! Breakers classify it (success, failure, slow, ignored), retries decide
//! whether it is worth another attempt, budgets count it, fallbacks name the
//! reason. One vocabulary keeps the patterns composable.
//!
//! ```
//! use stormglass_patterns::outcome::{AttemptOutcome, Rejection};
//!
//! assert!(AttemptOutcome::Status(200).is_success());
//! assert!(!AttemptOutcome::Status(503).is_success());
//! assert!(AttemptOutcome::Timeout.is_network_failure());
//! assert!(AttemptOutcome::Rejected(Rejection::BulkheadFull).is_local_rejection());
//! ```

use serde::{Deserialize, Serialize};

/// The result of one attempt of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AttemptOutcome {
    /// The callee answered with this status (HTTP-like: 2xx success, 4xx
    /// client error, 5xx server error).
    Status(u16),
    /// No answer before the attempt's deadline.
    Timeout,
    /// The connection was refused at once (the callee is down).
    ConnectionRefused,
    /// The connection broke mid-call.
    ConnectionReset,
    /// A local pattern refused to send the attempt at all.
    Rejected(Rejection),
}

/// Why a pattern refused a call locally, without sending it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Rejection {
    /// A circuit breaker is open (or half-open with its probes taken).
    CircuitOpen,
    /// A rate limiter said no.
    RateLimited,
    /// A bulkhead (semaphore or thread pool) is full.
    BulkheadFull,
    /// A bounded queue is full.
    QueueFull,
    /// The remaining deadline budget is too small to start.
    DeadlineExceeded,
    /// A retry budget or adaptive throttle refused the attempt.
    Throttled,
}

impl AttemptOutcome {
    /// A plain success: a 2xx or 3xx status.
    pub const OK: AttemptOutcome = AttemptOutcome::Status(200);

    /// Whether the callee answered with a 2xx or 3xx status.
    pub fn is_success(self) -> bool {
        matches!(self, AttemptOutcome::Status(s) if s < 400)
    }

    /// Timeouts, refused and reset connections: the network-level failures
    /// that are safe to retry for idempotent calls.
    pub fn is_network_failure(self) -> bool {
        matches!(self, AttemptOutcome::Timeout | AttemptOutcome::ConnectionRefused | AttemptOutcome::ConnectionReset)
    }

    /// Whether a local pattern refused the attempt before it was sent.
    pub fn is_local_rejection(self) -> bool {
        matches!(self, AttemptOutcome::Rejected(_))
    }

    /// The status code, if the callee answered.
    pub fn status(self) -> Option<u16> {
        match self {
            AttemptOutcome::Status(s) => Some(s),
            _ => None,
        }
    }
}
