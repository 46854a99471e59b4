//! The algorithms: shared parameters ([`Algo`]) and per-key state ([`State`]).
//!
//! Parameters are split from state so a keyed table stores only the few
//! bytes of state per key. All arithmetic is integer. Rates are exact without
//! fractions by measuring time in "scaled" units of `ns × count`: one permit
//! then costs exactly `period_ns` scaled units, whatever `count` is, so
//! `3/second` does not round its 333_333_333.3 ns interval.

use stormglass_core::time::{SimDuration, SimTime};

use super::{Decision, RateLimiterConfig};

/// A rate with a burst, in scaled units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Rate {
    /// Permits per period: the scale factor of time.
    count: u128,
    /// Scaled cost of one permit (= the period in ns).
    cost: u128,
    burst: u32,
    /// `burst × cost`: a full bucket, or the GCRA tolerance.
    capacity: u128,
}

impl Rate {
    fn new(count: u32, period: SimDuration, burst: u32) -> Rate {
        let cost = u128::from(period.as_nanos());
        Rate { count: u128::from(count), cost, burst, capacity: u128::from(burst) * cost }
    }

    #[inline]
    fn scaled(&self, now: SimTime) -> u128 {
        u128::from(now.as_nanos()) * self.count
    }

    /// Real time until `scaled` units have passed, rounded up.
    #[inline]
    fn wait(&self, scaled: u128) -> SimDuration {
        duration(scaled.div_ceil(self.count))
    }
}

#[inline]
fn duration(nanos: u128) -> SimDuration {
    SimDuration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

#[inline]
fn to_u32(n: u128) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Parameters of one algorithm, derived once from a validated config.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Algo {
    FixedWindow { limit: u32, window_ns: u64 },
    SlidingLog { limit: u32, window: SimDuration },
    SlidingWindow { limit: u32, window_ns: u64 },
    TokenBucket(Rate),
    Gcra(Rate),
    LeakyQueue { rate: Rate, nodelay: bool },
    Concurrency { max: u32 },
}

/// A `u128` stored as two `u64`s: 8-byte alignment keeps [`State`] at 32
/// bytes, which is most of a keyed table's memory per key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Wide {
    hi: u64,
    lo: u64,
}

impl Wide {
    #[inline]
    fn get(self) -> u128 {
        (u128::from(self.hi) << 64) | u128::from(self.lo)
    }
    #[inline]
    fn new(v: u128) -> Wide {
        Wide { hi: (v >> 64) as u64, lo: v as u64 }
    }
}

/// The state of one limiter (one key).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum State {
    /// Fixed window (`prev` unused) and sliding window counter.
    Window { index: u64, count: u32, prev: u32 },
    /// Sliding log: a ring of admission times, oldest at `head`.
    Log { times: Box<[SimTime]>, head: u32, len: u32 },
    /// Token bucket: scaled credit, as of `last`.
    Bucket { credit: Wide, last: SimTime },
    /// GCRA and leaky queue: the theoretical arrival time, scaled.
    Tat { tat: Wide },
    /// Concurrency: permits held.
    InFlight { count: u32 },
}

impl Algo {
    /// Parameters for a config that has passed `validate()`.
    pub(crate) fn from_config(config: &RateLimiterConfig) -> Algo {
        match *config {
            RateLimiterConfig::FixedWindow { limit } => {
                Algo::FixedWindow { limit: limit.count, window_ns: limit.period.as_nanos() }
            }
            RateLimiterConfig::SlidingLog { limit } => Algo::SlidingLog { limit: limit.count, window: limit.period },
            RateLimiterConfig::SlidingWindow { limit } => {
                Algo::SlidingWindow { limit: limit.count, window_ns: limit.period.as_nanos() }
            }
            RateLimiterConfig::TokenBucket { rate, burst } => {
                Algo::TokenBucket(Rate::new(rate.count, rate.period, burst))
            }
            RateLimiterConfig::Gcra { rate, burst } => Algo::Gcra(Rate::new(rate.count, rate.period, burst)),
            RateLimiterConfig::LeakyQueue { rate, burst, nodelay } => {
                Algo::LeakyQueue { rate: Rate::new(rate.count, rate.period, burst), nodelay }
            }
            RateLimiterConfig::Concurrency { max_in_flight } => Algo::Concurrency { max: max_in_flight },
        }
    }

    /// The state of a key never seen: empty windows, a full bucket.
    pub(crate) fn fresh(&self) -> State {
        match *self {
            Algo::FixedWindow { .. } | Algo::SlidingWindow { .. } => State::Window { index: 0, count: 0, prev: 0 },
            Algo::SlidingLog { limit, .. } => {
                State::Log { times: vec![SimTime::ZERO; limit as usize].into_boxed_slice(), head: 0, len: 0 }
            }
            Algo::TokenBucket(rate) => State::Bucket { credit: Wide::new(rate.capacity), last: SimTime::ZERO },
            Algo::Gcra(_) | Algo::LeakyQueue { .. } => State::Tat { tat: Wide::new(0) },
            Algo::Concurrency { .. } => State::InFlight { count: 0 },
        }
    }

    /// Resets `state` to fresh in place, keeping a log's buffer.
    pub(crate) fn reset(&self, state: &mut State) {
        match state {
            State::Log { head, len, .. } => {
                *head = 0;
                *len = 0;
            }
            other => *other = self.fresh(),
        }
    }

    /// Whether forgetting `state` at `now` changes no future decision:
    /// the key would behave exactly like a fresh one.
    pub(crate) fn is_idle(&self, state: &State, now: SimTime) -> bool {
        match (self, state) {
            (Algo::FixedWindow { window_ns, .. }, State::Window { index, count, .. }) => {
                *count == 0 || now.as_nanos() / window_ns != *index
            }
            (Algo::SlidingWindow { window_ns, .. }, State::Window { index, count, prev, .. }) => {
                let current = now.as_nanos() / window_ns;
                (*count == 0 && (*prev == 0 || current > *index)) || current > index.saturating_add(1)
            }
            (Algo::SlidingLog { window, .. }, State::Log { times, head, len }) => {
                *len == 0 || {
                    let newest = (*head as usize + *len as usize - 1) % times.len();
                    times[newest].saturating_add(*window) < now
                }
            }
            (Algo::TokenBucket(rate), State::Bucket { credit, last }) => {
                let elapsed = u128::from(now.saturating_duration_since(*last).as_nanos());
                credit.get() + elapsed * rate.count >= rate.capacity
            }
            (Algo::Gcra(rate) | Algo::LeakyQueue { rate, .. }, State::Tat { tat }) => tat.get() <= rate.scaled(now),
            (Algo::Concurrency { .. }, State::InFlight { count }) => *count == 0,
            _ => unreachable!("state does not match its algorithm"),
        }
    }

    /// Whether a keyed table may drop this state to make room. Every rate
    /// state may go (the key only becomes more lenient, as in nginx when its
    /// zone is full); a concurrency state holding permits may not, or their
    /// release would be lost and the limit silently exceeded.
    pub(crate) fn is_evictable(&self, state: &State) -> bool {
        !matches!(state, State::InFlight { count } if *count > 0)
    }

    /// Decides whether `permits` may go now, and updates `state` if so.
    #[inline]
    pub(crate) fn acquire(&self, state: &mut State, now: SimTime, permits: u32) -> Decision {
        let decision = match (self, &mut *state) {
            (Algo::FixedWindow { limit, window_ns }, State::Window { index, count, .. }) => {
                fixed_window(*limit, *window_ns, index, count, now, permits)
            }
            (Algo::SlidingWindow { limit, window_ns }, State::Window { index, count, prev }) => {
                sliding_window(*limit, *window_ns, index, count, prev, now, permits)
            }
            (Algo::SlidingLog { limit, window }, State::Log { times, head, len }) => {
                sliding_log(*limit, *window, times, head, len, now, permits)
            }
            (Algo::TokenBucket(rate), State::Bucket { credit, last }) => {
                let mut c = credit.get();
                let d = token_bucket(rate, &mut c, last, now, permits);
                *credit = Wide::new(c);
                d
            }
            (Algo::Gcra(rate), State::Tat { tat }) => {
                let mut t = tat.get();
                let d = gcra(rate, &mut t, now, permits);
                *tat = Wide::new(t);
                d
            }
            (Algo::LeakyQueue { rate, nodelay }, State::Tat { tat }) => {
                let mut t = tat.get();
                let d = leaky_queue(rate, *nodelay, &mut t, now, permits);
                *tat = Wide::new(t);
                d
            }
            (Algo::Concurrency { max }, State::InFlight { count }) => {
                if permits <= max - *count {
                    *count += permits;
                    Decision::Allowed { remaining: max - *count }
                } else {
                    // Only a release frees permits; time alone never will.
                    Decision::Denied { retry_after: SimDuration::MAX, remaining: max - *count }
                }
            }
            _ => unreachable!("state does not match its algorithm"),
        };
        #[cfg(debug_assertions)]
        self.check_invariants(state);
        decision
    }

    /// Returns `permits` to a concurrency limiter; other algorithms ignore it
    /// (a rate limiter's admission is spent once made).
    pub(crate) fn release(&self, state: &mut State, permits: u32) {
        if let State::InFlight { count } = state {
            debug_assert!(permits <= *count, "released more permits than held");
            *count = count.saturating_sub(permits);
        }
        #[cfg(debug_assertions)]
        self.check_invariants(state);
    }

    /// The invariants of `state` under these parameters.
    pub(crate) fn check_invariants(&self, state: &State) {
        match (self, state) {
            (
                Algo::FixedWindow { limit, .. } | Algo::SlidingWindow { limit, .. },
                State::Window { count, prev, .. },
            ) => {
                assert!(count <= limit, "window count above the limit");
                assert!(prev <= limit, "previous window above the limit");
            }
            (Algo::SlidingLog { limit, .. }, State::Log { times, head, len }) => {
                assert_eq!(times.len(), *limit as usize, "log buffer is not the limit");
                assert!(len <= limit && head < limit, "log ring out of range");
                let at = |i: u32| times[((head + i) % limit) as usize];
                for i in 1..*len {
                    assert!(at(i - 1) <= at(i), "log is not in time order");
                }
            }
            (Algo::TokenBucket(rate), State::Bucket { credit, .. }) => {
                assert!(credit.get() <= rate.capacity, "bucket above its burst");
            }
            (Algo::Gcra(_) | Algo::LeakyQueue { .. }, State::Tat { .. }) => {}
            (Algo::Concurrency { max }, State::InFlight { count }) => {
                assert!(count <= max, "more permits in flight than the maximum");
            }
            _ => panic!("state does not match its algorithm"),
        }
    }
}

/// Windows aligned to multiples of the period from `SimTime::ZERO`, so that
/// every key (and every replica) agrees on the boundaries.
#[inline]
fn fixed_window(limit: u32, window_ns: u64, index: &mut u64, count: &mut u32, now: SimTime, permits: u32) -> Decision {
    let current = now.as_nanos() / window_ns;
    if current != *index {
        *index = current;
        *count = 0;
    }
    let remaining = limit - *count;
    if permits <= remaining {
        *count += permits;
        return Decision::Allowed { remaining: limit - *count };
    }
    let retry_after = if permits > limit {
        SimDuration::MAX
    } else {
        // Widened before the +1: at the end of time `current + 1` overflows.
        let end = (u128::from(current) + 1) * u128::from(window_ns);
        duration(end - u128::from(now.as_nanos()))
    };
    Decision::Denied { retry_after, remaining }
}

/// The weighted estimate `prev × (window − elapsed) / window + count` is
/// compared exactly, multiplied through by `window`, so no rounding admits
/// or refuses a request that the formula would not.
#[inline]
fn sliding_window(
    limit: u32,
    window_ns: u64,
    index: &mut u64,
    count: &mut u32,
    prev: &mut u32,
    now: SimTime,
    permits: u32,
) -> Decision {
    let current = now.as_nanos() / window_ns;
    if current != *index {
        *prev = if index.checked_add(1) == Some(current) { *count } else { 0 };
        *count = 0;
        *index = current;
    }
    let w = u128::from(window_ns);
    let elapsed = u128::from(now.as_nanos() - current * window_ns);
    let carried = u128::from(*prev) * (w - elapsed);
    let budget = u128::from(limit) * w;
    let used = carried + u128::from(*count) * w;
    let remaining = to_u32(budget.saturating_sub(used) / w);
    if used + u128::from(permits) * w <= budget {
        *count += permits;
        return Decision::Allowed { remaining: to_u32(budget.saturating_sub(used + u128::from(permits) * w) / w) };
    }
    if permits > limit {
        return Decision::Denied { retry_after: SimDuration::MAX, remaining };
    }
    // The earliest elapsed time `e` in a window whose carried-over count is
    // `carry` and own count `own` at which `permits` fit:
    // carry × (w − e) ≤ (limit − own − permits) × w.
    let earliest = |carry: u32, own: u32| -> Option<u128> {
        let room = u128::from(limit).checked_sub(u128::from(own) + u128::from(permits))?;
        if carry == 0 {
            return Some(0);
        }
        Some(w.saturating_sub(room * w / u128::from(carry)))
    };
    let now_ns = u128::from(now.as_nanos());
    let start = u128::from(current) * w;
    let at = match earliest(*prev, *count) {
        Some(e) if e < w => start + e.max(elapsed),
        // Not in this window: in the next one this window's count is the
        // carried one and decays from there (e = w means the window after).
        _ => start + w + earliest(*count, 0).unwrap_or(w),
    };
    Decision::Denied { retry_after: duration(at - now_ns), remaining }
}

/// A request counts while `now <= t + window`, i.e. the log holds the
/// admissions of the closed interval `[now − window, now]`, as `limits`'
/// moving window does (it refuses while the blocking entry has
/// `atime >= now - expiry`).
#[inline]
fn sliding_log(
    limit: u32,
    window: SimDuration,
    times: &mut [SimTime],
    head: &mut u32,
    len: &mut u32,
    now: SimTime,
    permits: u32,
) -> Decision {
    while *len > 0 && times[*head as usize].saturating_add(window) < now {
        *head = if *head + 1 == limit { 0 } else { *head + 1 };
        *len -= 1;
    }
    let remaining = limit - *len;
    if permits <= remaining {
        for _ in 0..permits {
            let tail = (*head + *len) % limit;
            times[tail as usize] = now;
            *len += 1;
        }
        return Decision::Allowed { remaining: limit - *len };
    }
    if permits > limit {
        return Decision::Denied { retry_after: SimDuration::MAX, remaining };
    }
    // The oldest `len + permits − limit` entries must leave first; the last
    // of them leaves one nanosecond after its time plus the window.
    let leaving = *len + permits - limit;
    let last_leaving = times[((*head + leaving - 1) % limit) as usize];
    let free_at = last_leaving.saturating_add(window).saturating_add(SimDuration::from_nanos(1));
    Decision::Denied { retry_after: free_at.saturating_duration_since(now), remaining }
}

#[inline]
fn token_bucket(rate: &Rate, credit: &mut u128, last: &mut SimTime, now: SimTime, permits: u32) -> Decision {
    // A clock that steps back refills nothing rather than underflowing.
    let elapsed = u128::from(now.saturating_duration_since(*last).as_nanos());
    *credit = (*credit + elapsed * rate.count).min(rate.capacity);
    *last = (*last).max(now);
    let need = u128::from(permits) * rate.cost;
    if need <= *credit {
        *credit -= need;
        return Decision::Allowed { remaining: to_u32(*credit / rate.cost) };
    }
    let retry_after = if permits > rate.burst { SimDuration::MAX } else { rate.wait(need - *credit) };
    Decision::Denied { retry_after, remaining: to_u32(*credit / rate.cost) }
}

/// GCRA (the "virtual scheduling" form): a request conforms if the
/// theoretical arrival time after it is at most `burst` intervals ahead.
/// Identical to the token bucket with `credit = capacity − (tat − now)`.
#[inline]
fn gcra(rate: &Rate, tat: &mut u128, now: SimTime, permits: u32) -> Decision {
    let now_s = rate.scaled(now);
    let next = (*tat).max(now_s) + u128::from(permits) * rate.cost;
    let limit = now_s + rate.capacity;
    if next <= limit {
        *tat = next;
        return Decision::Allowed { remaining: to_u32((limit - next) / rate.cost) };
    }
    let ahead = (*tat).max(now_s) - now_s;
    let retry_after = if permits > rate.burst { SimDuration::MAX } else { rate.wait(next - limit) };
    Decision::Denied { retry_after, remaining: to_u32(rate.capacity.saturating_sub(ahead) / rate.cost) }
}

/// nginx `limit_req`: a queue drained at the rate. `tat` is when the queue
/// will have drained everything accepted so far; a request waits for that,
/// and is refused when it would wait more than `burst` intervals. With
/// `nodelay` the same bookkeeping runs but accepted requests go at once.
#[inline]
fn leaky_queue(rate: &Rate, nodelay: bool, tat: &mut u128, now: SimTime, permits: u32) -> Decision {
    let now_s = rate.scaled(now);
    let start = (*tat).max(now_s);
    let wait = start - now_s;
    // How many single requests would still be accepted with `wait` queued.
    let room =
        |wait: u128| -> u32 { if wait > rate.capacity { 0 } else { to_u32((rate.capacity - wait) / rate.cost + 1) } };
    let permits_s = u128::from(permits.max(1) - 1) * rate.cost;
    if wait + permits_s > rate.capacity {
        let retry_after =
            if permits_s > rate.capacity { SimDuration::MAX } else { rate.wait(wait + permits_s - rate.capacity) };
        return Decision::Denied { retry_after, remaining: room(wait) };
    }
    *tat = start + u128::from(permits) * rate.cost;
    let remaining = room(*tat - now_s);
    if nodelay || wait == 0 {
        Decision::Allowed { remaining }
    } else {
        Decision::Delayed { delay: rate.wait(wait), remaining }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_stays_small() {
        // Most of a keyed table's memory is this value, once per key.
        assert_eq!(std::mem::size_of::<State>(), 32);
    }

    #[test]
    fn windows_at_the_end_of_time_refuse_without_overflowing() {
        // A 1 ns window at SimTime::MAX: the next window starts past u64.
        let last = SimTime::MAX;
        let (mut index, mut count, mut prev) = (0, 0, 0);
        assert!(matches!(fixed_window(1, 1, &mut index, &mut count, last, 1), Decision::Allowed { .. }));
        assert!(matches!(fixed_window(1, 1, &mut index, &mut count, last, 1), Decision::Denied { .. }));
        let (mut index, mut count) = (u64::MAX, 0);
        let first = sliding_window(1, 1, &mut index, &mut count, &mut prev, last, 1);
        assert!(matches!(first, Decision::Allowed { .. }), "{first:?}");
    }
}
