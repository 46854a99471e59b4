//! `stormglass replay --pattern FILE --calls CALLS.csv`: feed a recorded
//! call log through one configured pattern and print, as CSV, each decision
//! and each state transition — to check a breaker, a rate limiter or a retry
//! budget against a real incident's log before shipping it.
//!
//! The pattern file is RON, one of:
//!
//! ```text
//! breaker((kind: consecutive((failure_threshold: 5, recovery_timeout: "60s"))))
//! limiter((algorithm: "token_bucket", rate: "10/second", burst: 5))
//! keyed_limiter((limiter: (algorithm: "sliding_log", limit: "100/minute"), keys_max: 10000))
//! budget(token_bucket((max_tokens: 10, token_ratio: 0.1)))
//! ```
//!
//! The call log has a header and the columns `time,outcome,latency`, plus an
//! optional `key` (for a keyed limiter) and `attempt` (1 for a first
//! attempt, 2.. for retries; for a budget). `time` is the call's start since
//! the log began and `latency` how long it took, both as durations with a
//! unit (`12.5s`, `250ms`); times must not decrease. `outcome` is a status
//! code (`200`, `503`), `ok`, `timeout`, `refused` or `reset`. Cells are
//! plain text split at commas (no quoting), as log exports usually are.
//!
//! A call's result reaches the pattern when the call ends (`time +
//! latency`), in time order with the later calls' starts, as it would in a
//! real client. A call the pattern refuses never runs: its logged outcome is
//! not reported.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt::Write;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use stormglass_core::rng::SimRng;
use stormglass_core::time::{SimDuration, SimTime};
use stormglass_models::report::csv_field;
use stormglass_patterns::AttemptOutcome;
use stormglass_patterns::breaker::{Breaker, BreakerConfig, BreakerState, Permit};
use stormglass_patterns::budget::{BudgetConfig, RetryBudget};
use stormglass_patterns::limiter::{Decision, KeyedLimiter, KeyedLimiterConfig, RateLimiter, RateLimiterConfig};
use stormglass_patterns::retry::RetryOn;

use super::{Failure, print_stdout};

/// Most calls one log may hold: a bound on memory and time.
pub const CALLS_MAX: usize = 10_000_000;

/// `stormglass replay`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The pattern (RON): `breaker(...)`, `limiter(...)`, `keyed_limiter(...)` or `budget(...)`.
    #[arg(long, value_name = "FILE")]
    pub pattern: PathBuf,
    /// The call log: CSV with a header `time,outcome,latency[,key][,attempt]`.
    #[arg(long, value_name = "CALLS.csv")]
    pub calls: PathBuf,
    /// Seed of the random stream the pattern draws from (breaker jitter, adaptive throttling).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// The pattern to replay, as its file says.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PatternConfig {
    /// A circuit breaker.
    Breaker(BreakerConfig),
    /// One rate limit for every call.
    Limiter(RateLimiterConfig),
    /// A rate limit per `key`.
    KeyedLimiter(KeyedLimiterConfig),
    /// A retry budget or adaptive throttle.
    Budget(BudgetConfig),
}

/// One line of the call log.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// When the call started.
    pub time: SimTime,
    /// What it returned.
    pub outcome: AttemptOutcome,
    /// How long it took.
    pub latency: SimDuration,
    /// The limiter key, empty without a `key` column.
    pub key: String,
    /// 1 for a first attempt.
    pub attempt: u32,
}

/// Replays and prints; see the module docs.
pub fn main(args: Args) -> Result<(), Failure> {
    let pattern = load_pattern(&args.pattern)?;
    let calls = load_calls(&args.calls)?;
    print_stdout(&replay(&pattern, &calls, args.seed)?)
}

/// Reads and validates a pattern file; errors name the file and where.
pub fn load_pattern(path: &Path) -> Result<PatternConfig, Failure> {
    let name = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| Failure::BadInput(format!("{name}: cannot read: {e}")))?;
    let options = ron::Options::default().with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME);
    let pattern: PatternConfig = options.from_str(&text).map_err(|e| {
        Failure::BadInput(format!("{name}: line {}, column {}: {}", e.span.start.line, e.span.start.col, e.code))
    })?;
    let checked = match &pattern {
        PatternConfig::Breaker(c) => c.validate().map_err(|e| e.within("breaker")),
        PatternConfig::Limiter(c) => c.validate().map_err(|e| e.within("limiter")),
        PatternConfig::KeyedLimiter(c) => c.validate().map_err(|e| e.within("keyed_limiter")),
        PatternConfig::Budget(c) => c.validate().map_err(|e| e.within("budget")),
    };
    checked.map_err(|e| Failure::BadInput(format!("{name}: {e}")))?;
    Ok(pattern)
}

/// Reads a call log; errors name the file, the line and the column.
pub fn load_calls(path: &Path) -> Result<Vec<Call>, Failure> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| Failure::BadInput(format!("{name}: cannot read: {e}")))?;
    parse_calls(&name, &text)
}

/// Parses a call log's text; `name` prefixes every error.
pub fn parse_calls(name: &str, text: &str) -> Result<Vec<Call>, Failure> {
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    let (_, header) = lines
        .next()
        .ok_or_else(|| Failure::BadInput(format!("{name}: empty; expected a header time,outcome,latency")))?;
    let columns: Vec<&str> = header.split(',').map(str::trim).collect();
    let find = |c: &str| columns.iter().position(|h| *h == c);
    let (Some(time_at), Some(outcome_at), Some(latency_at)) = (find("time"), find("outcome"), find("latency")) else {
        return Err(Failure::BadInput(format!(
            "{name}: line 1: the header must name time, outcome and latency, got {header:?}"
        )));
    };
    if let Some(unknown) = columns.iter().find(|c| !["time", "outcome", "latency", "key", "attempt"].contains(c)) {
        return Err(Failure::BadInput(format!(
            "{name}: line 1: unknown column {unknown:?} (time, outcome, latency, key, attempt)"
        )));
    }
    let (key_at, attempt_at) = (find("key"), find("attempt"));
    let mut calls = Vec::new();
    let mut last = SimTime::ZERO;
    for (index, line) in lines {
        let line_no = index + 1;
        if calls.len() == CALLS_MAX {
            return Err(Failure::BadInput(format!("{name}: line {line_no}: more than {CALLS_MAX} calls")));
        }
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        if cells.len() != columns.len() {
            return Err(Failure::BadInput(format!(
                "{name}: line {line_no}: {} cells, the header has {}",
                cells.len(),
                columns.len()
            )));
        }
        let at = |column: usize| {
            let start: usize = cells[..column].iter().map(|c| c.len() + 1).sum::<usize>() + 1;
            format!("{name}: line {line_no}, column {start}")
        };
        let duration = |column: usize, what: &str| {
            cells[column].parse::<SimDuration>().map_err(|e| Failure::BadInput(format!("{}: {what}: {e}", at(column))))
        };
        let time = SimTime::ZERO + duration(time_at, "time")?;
        if time < last {
            return Err(Failure::BadInput(format!(
                "{}: time: {} is before the previous call's {last}; sort the log by time",
                at(time_at),
                time
            )));
        }
        last = time;
        let outcome = parse_outcome(cells[outcome_at]).ok_or_else(|| {
            Failure::BadInput(format!(
                "{}: outcome: {:?} is not a status code, ok, timeout, refused or reset",
                at(outcome_at),
                cells[outcome_at]
            ))
        })?;
        let latency = duration(latency_at, "latency")?;
        let key = key_at.map_or_else(String::new, |k| cells[k].to_string());
        let attempt = match attempt_at {
            None => 1,
            Some(a) => cells[a].parse::<u32>().ok().filter(|&n| n >= 1).ok_or_else(|| {
                Failure::BadInput(format!("{}: attempt: {:?} must be a whole number from 1", at(a), cells[a]))
            })?,
        };
        calls.push(Call { time, outcome, latency, key, attempt });
    }
    Ok(calls)
}

fn parse_outcome(text: &str) -> Option<AttemptOutcome> {
    match text.to_ascii_lowercase().as_str() {
        "ok" | "success" => Some(AttemptOutcome::OK),
        "timeout" => Some(AttemptOutcome::Timeout),
        "refused" => Some(AttemptOutcome::ConnectionRefused),
        "reset" => Some(AttemptOutcome::ConnectionReset),
        code => code.parse::<u16>().ok().filter(|c| (100..=599).contains(c)).map(AttemptOutcome::Status),
    }
}

fn outcome_word(outcome: AttemptOutcome) -> String {
    match outcome {
        AttemptOutcome::Status(code) => code.to_string(),
        AttemptOutcome::Timeout => "timeout".into(),
        AttemptOutcome::ConnectionRefused => "refused".into(),
        AttemptOutcome::ConnectionReset => "reset".into(),
        AttemptOutcome::Rejected(r) => format!("{r:?}"),
    }
}

/// The header of the replay's CSV.
pub const REPLAY_HEADER: &str = "time,call,key,event,detail,state";

/// What happens to a pattern during a replay, one kind per pattern.
enum Replayer {
    Breaker(Box<Breaker>),
    Limiter(RateLimiter),
    Keyed(Box<KeyedLimiter<String>>),
    Budget(RetryBudget),
}

/// What a call leaves pending until it ends.
enum Pending {
    Breaker(Permit),
    Release,
    Budget,
    Nothing,
}

/// The CSV of decisions and transitions for `calls` through `pattern`.
pub fn replay(pattern: &PatternConfig, calls: &[Call], seed: u64) -> Result<String, Failure> {
    let invalid = |e: stormglass_core::error::ConfigError| Failure::BadInput(format!("pattern: {e}"));
    let mut replayer = match pattern.clone() {
        PatternConfig::Breaker(c) => Replayer::Breaker(Box::new(Breaker::new(c).map_err(invalid)?)),
        PatternConfig::Limiter(c) => Replayer::Limiter(RateLimiter::new(c).map_err(invalid)?),
        PatternConfig::KeyedLimiter(c) => Replayer::Keyed(Box::new(KeyedLimiter::new(c).map_err(invalid)?)),
        PatternConfig::Budget(c) => Replayer::Budget(RetryBudget::new(c).map_err(invalid)?),
    };
    let mut rng = SimRng::from_seed_u64(seed);
    let mut out = String::from(REPLAY_HEADER);
    out.push('\n');
    // Ends of admitted calls, earliest first; ties in call order.
    let mut ends: BinaryHeap<Reverse<(SimTime, usize)>> = BinaryHeap::new();
    let mut pending: Vec<Pending> = Vec::with_capacity(calls.len());
    let mut row = |out: &mut String, t: SimTime, call: usize, key: &str, event: &str, detail: &str, state: &str| {
        let _ = writeln!(out, "{t},{call},{},{event},{},{state}", csv_field(key), csv_field(detail));
    };
    for (index, call) in calls.iter().enumerate() {
        while let Some(&Reverse((end, done))) = ends.peek() {
            if end > call.time {
                break;
            }
            ends.pop();
            finish(&mut replayer, &mut pending[done], &calls[done], end, done, &mut rng, &mut out, &mut row);
        }
        let (event, detail, next) = decide(&mut replayer, call, &mut rng);
        // A transition on asking (open -> half-open) happened before the decision.
        log_transitions(&mut replayer, index, &mut out, &mut row);
        let state = state_word(&replayer);
        row(&mut out, call.time, index, &call.key, event, &detail, &state);
        if !matches!(next, Pending::Nothing) {
            ends.push(Reverse((call.time + call.latency, index)));
        }
        pending.push(next);
    }
    while let Some(Reverse((end, done))) = ends.pop() {
        finish(&mut replayer, &mut pending[done], &calls[done], end, done, &mut rng, &mut out, &mut row);
    }
    Ok(out)
}

type RowFn<'a> = dyn FnMut(&mut String, SimTime, usize, &str, &str, &str, &str) + 'a;

/// Asks the pattern about a call: the event word, its detail, and what the
/// call leaves pending.
fn decide(replayer: &mut Replayer, call: &Call, rng: &mut SimRng) -> (&'static str, String, Pending) {
    let limiter_row = |decision: Decision| match decision {
        Decision::Allowed { remaining } => ("allowed", format!("remaining {remaining}")),
        Decision::Delayed { delay, remaining } => ("delayed", format!("delay {delay}, remaining {remaining}")),
        Decision::Denied { retry_after, remaining } => {
            let after = if retry_after == SimDuration::MAX { "never".to_string() } else { retry_after.to_string() };
            ("denied", format!("retry_after {after}, remaining {remaining}"))
        }
    };
    match replayer {
        Replayer::Breaker(b) => match b.try_acquire(call.time) {
            Ok(permit) => {
                let what = if permit.is_probe() { "admitted as a probe" } else { "admitted" };
                ("admitted", what.to_string(), Pending::Breaker(permit))
            }
            Err(rejected) => {
                ("rejected", format!("circuit open, retry_after {}", rejected.retry_after), Pending::Nothing)
            }
        },
        Replayer::Limiter(l) => {
            let decision = l.try_acquire(call.time, 1);
            let (event, detail) = limiter_row(decision);
            let concurrency = matches!(l.config(), RateLimiterConfig::Concurrency { .. });
            let next = if decision.is_allowed() && concurrency { Pending::Release } else { Pending::Nothing };
            (event, detail, next)
        }
        Replayer::Keyed(l) => {
            let decision = l.try_acquire(&call.key, call.time, 1);
            let (event, detail) = limiter_row(decision);
            let concurrency = matches!(l.config().limiter, RateLimiterConfig::Concurrency { .. });
            let next = if decision.is_allowed() && concurrency { Pending::Release } else { Pending::Nothing };
            (event, detail, next)
        }
        Replayer::Budget(b) => {
            let is_retry = call.attempt > 1;
            match b.try_acquire(call.time, is_retry, rng) {
                Ok(()) => ("allowed", if is_retry { "retry" } else { "first attempt" }.to_string(), Pending::Budget),
                Err(_) => ("throttled", if is_retry { "retry" } else { "first attempt" }.to_string(), Pending::Nothing),
            }
        }
    }
}

/// A call ends: its result reaches the pattern.
#[allow(clippy::too_many_arguments)] // the replay loop's state, passed through once
fn finish(
    replayer: &mut Replayer,
    pending: &mut Pending,
    call: &Call,
    end: SimTime,
    index: usize,
    rng: &mut SimRng,
    out: &mut String,
    row: &mut RowFn<'_>,
) {
    match (std::mem::replace(pending, Pending::Nothing), &mut *replayer) {
        (Pending::Breaker(permit), Replayer::Breaker(b)) => b.on_result(end, permit, call.outcome, call.latency, rng),
        (Pending::Release, Replayer::Limiter(l)) => l.release(1),
        (Pending::Release, Replayer::Keyed(l)) => {
            l.release(&call.key, 1);
        }
        (Pending::Budget, Replayer::Budget(b)) => {
            // The log names no retry policy: failures count as the default
            // one retries them (5xx, 429, timeouts, connection errors).
            b.on_result(end, call.outcome, RetryOn::default().retryable(call.outcome))
        }
        _ => return,
    }
    let state = state_word(replayer);
    row(out, end, index, &call.key, "result", &outcome_word(call.outcome), &state);
    log_transitions(replayer, index, out, row);
}

fn log_transitions(replayer: &mut Replayer, index: usize, out: &mut String, row: &mut RowFn<'_>) {
    if let Replayer::Breaker(b) = replayer {
        while let Some(t) = b.pop_transition() {
            let cause =
                serde_json::to_value(t.cause).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default();
            let detail = format!("{} -> {} ({cause})", breaker_word(t.from), breaker_word(t.to));
            row(out, t.at, index, "", "transition", &detail, breaker_word(t.to));
        }
    }
}

fn breaker_word(state: BreakerState) -> &'static str {
    match state {
        BreakerState::Closed => "closed",
        BreakerState::Open => "open",
        BreakerState::HalfOpen => "half_open",
        BreakerState::ForcedOpen => "forced_open",
        BreakerState::Disabled => "disabled",
    }
}

/// The pattern's state after a step, for the `state` column.
fn state_word(replayer: &Replayer) -> String {
    match replayer {
        Replayer::Breaker(b) => breaker_word(b.state()).to_string(),
        Replayer::Limiter(_) | Replayer::Keyed(_) => String::new(),
        Replayer::Budget(RetryBudget::TokenBucket(t)) => format!("tokens {:.3}", t.tokens_milli() as f64 / 1000.0),
        Replayer::Budget(_) => String::new(),
    }
}
