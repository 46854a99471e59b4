//! Virtual time: [`SimTime`] (an instant since the start of a run) and
//! [`SimDuration`] (a span), both integer nanoseconds.
//!
//! Time is never a float (ARCHITECTURE.md, invariant 1): integer nanoseconds
//! order exactly and add the same on every machine. Arithmetic that can
//! overflow saturates at [`SimTime::MAX`] / [`SimDuration::MAX`], which act as
//! "never"; `checked_*` variants exist where a caller wants to know.
//!
//! Both types print and parse as human strings, and serde uses that form, so a
//! scenario file says `"250ms"` rather than `250000000`.
//!
//! ```
//! use stormglass_core::time::{SimDuration, SimTime};
//!
//! let timeout: SimDuration = "1.5s".parse().unwrap();
//! assert_eq!(timeout, SimDuration::from_millis(1500));
//! assert_eq!(timeout.to_string(), "1.500s");
//!
//! let start = SimTime::ZERO + SimDuration::from_secs(60);
//! assert_eq!((start + timeout).to_string(), "61.500s");
//! assert_eq!("250ms".parse::<SimDuration>().unwrap().to_string(), "250ms");
//! assert!("12 parsecs".parse::<SimDuration>().is_err());
//! ```

use std::fmt;
use std::ops::{Add, AddAssign, Sub};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

const NANOS_PER_MICRO: u64 = 1_000;
const NANOS_PER_MILLI: u64 = 1_000_000;
const NANOS_PER_SEC: u64 = 1_000_000_000;
const NANOS_PER_MIN: u64 = 60 * NANOS_PER_SEC;
const NANOS_PER_HOUR: u64 = 60 * NANOS_PER_MIN;

/// A span of virtual time in integer nanoseconds.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SimDuration(u64);

/// An instant of virtual time: nanoseconds since the start of the run.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SimTime(u64);

impl SimDuration {
    /// No time at all.
    pub const ZERO: SimDuration = SimDuration(0);
    /// The longest span; saturating arithmetic stops here and it reads as "forever".
    pub const MAX: SimDuration = SimDuration(u64::MAX);

    /// A duration of `nanos` nanoseconds.
    pub const fn from_nanos(nanos: u64) -> Self {
        SimDuration(nanos)
    }
    /// A duration of `micros` microseconds (saturating).
    pub const fn from_micros(micros: u64) -> Self {
        SimDuration(micros.saturating_mul(NANOS_PER_MICRO))
    }
    /// A duration of `millis` milliseconds (saturating).
    pub const fn from_millis(millis: u64) -> Self {
        SimDuration(millis.saturating_mul(NANOS_PER_MILLI))
    }
    /// A duration of `secs` seconds (saturating).
    pub const fn from_secs(secs: u64) -> Self {
        SimDuration(secs.saturating_mul(NANOS_PER_SEC))
    }
    /// A duration from float seconds, rounded to the nearest nanosecond.
    ///
    /// Used where a sampled or computed value (a backoff, a service time)
    /// becomes time. Negative and NaN give zero; too large saturates.
    pub fn from_secs_f64(secs: f64) -> Self {
        let nanos = secs * NANOS_PER_SEC as f64;
        if nanos.is_nan() || nanos <= 0.0 {
            SimDuration::ZERO
        } else if nanos >= u64::MAX as f64 {
            SimDuration::MAX
        } else {
            SimDuration(round_positive(nanos))
        }
    }

    /// The span in nanoseconds.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }
    /// The span in whole milliseconds (truncated).
    pub const fn as_millis(self) -> u64 {
        self.0 / NANOS_PER_MILLI
    }
    /// The span in float seconds (for reports and distribution parameters).
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / NANOS_PER_SEC as f64
    }
    /// Whether this is zero.
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// `self + other`, or `None` on overflow.
    pub const fn checked_add(self, other: SimDuration) -> Option<SimDuration> {
        match self.0.checked_add(other.0) {
            Some(n) => Some(SimDuration(n)),
            None => None,
        }
    }
    /// `self + other`, stopping at [`SimDuration::MAX`].
    pub const fn saturating_add(self, other: SimDuration) -> SimDuration {
        SimDuration(self.0.saturating_add(other.0))
    }
    /// `self - other`, stopping at zero.
    pub const fn saturating_sub(self, other: SimDuration) -> SimDuration {
        SimDuration(self.0.saturating_sub(other.0))
    }
    /// `self * factor`, stopping at [`SimDuration::MAX`].
    pub const fn saturating_mul(self, factor: u64) -> SimDuration {
        SimDuration(self.0.saturating_mul(factor))
    }
    /// `self * factor` for a float factor (rounded, saturating, never negative).
    pub fn mul_f64(self, factor: f64) -> SimDuration {
        SimDuration::from_secs_f64(self.as_secs_f64() * factor)
    }
    /// `self / divisor`, or `None` when `divisor` is zero.
    pub const fn checked_div(self, divisor: u64) -> Option<SimDuration> {
        match self.0.checked_div(divisor) {
            Some(n) => Some(SimDuration(n)),
            None => None,
        }
    }
}

/// `x.round() as u64` for `0 < x < 2^64`, without the call to `round`
/// that the baseline x86-64 target makes (it has no rounding instruction)
/// and, below 2^52, without a float-to-integer conversion either (from or to
/// `u64` they take a dozen instructions there): every sampled duration goes
/// through here.
///
/// Below 2^52, adding 2^52 rounds `x` to an integer in the low bits of the
/// sum (ties to even, the hardware's rounding), which the bits give
/// directly; a tie that went down to even goes up, as `round` takes halves
/// away from zero. `sum - 2^52` and its difference with `x` are exact, so the
/// tie test is too. From 2^52 up `x` is already an integer.
#[inline]
fn round_positive(x: f64) -> u64 {
    const TWO_52: f64 = 4_503_599_627_370_496.0;
    if x < TWO_52 {
        let sum = x + TWO_52;
        let rounded = sum.to_bits() - TWO_52.to_bits();
        if (sum - TWO_52) - x == -0.5 { rounded + 1 } else { rounded }
    } else {
        x as u64
    }
}

impl SimTime {
    /// The start of every run.
    pub const ZERO: SimTime = SimTime(0);
    /// The end of time; saturating arithmetic stops here and it reads as "never".
    pub const MAX: SimTime = SimTime(u64::MAX);

    /// The instant `nanos` nanoseconds after the start.
    pub const fn from_nanos(nanos: u64) -> Self {
        SimTime(nanos)
    }
    /// The instant `micros` microseconds after the start (saturating).
    ///
    /// ```
    /// # use stormglass_core::time::SimTime;
    /// assert_eq!(SimTime::from_micros(1_500), SimTime::from_nanos(1_500_000));
    /// assert_eq!(SimTime::from_micros(u64::MAX), SimTime::MAX);
    /// ```
    pub const fn from_micros(micros: u64) -> Self {
        SimTime(micros.saturating_mul(NANOS_PER_MICRO))
    }
    /// The instant `millis` milliseconds after the start (saturating).
    pub const fn from_millis(millis: u64) -> Self {
        SimTime(millis.saturating_mul(NANOS_PER_MILLI))
    }
    /// The instant `secs` seconds after the start (saturating).
    pub const fn from_secs(secs: u64) -> Self {
        SimTime(secs.saturating_mul(NANOS_PER_SEC))
    }
    /// Nanoseconds since the start.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }
    /// Float seconds since the start (for reports).
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / NANOS_PER_SEC as f64
    }
    /// The span from the start to this instant.
    pub const fn since_start(self) -> SimDuration {
        SimDuration(self.0)
    }

    /// `self + d`, or `None` on overflow.
    pub const fn checked_add(self, d: SimDuration) -> Option<SimTime> {
        match self.0.checked_add(d.0) {
            Some(n) => Some(SimTime(n)),
            None => None,
        }
    }
    /// `self + d`, stopping at [`SimTime::MAX`].
    pub const fn saturating_add(self, d: SimDuration) -> SimTime {
        SimTime(self.0.saturating_add(d.0))
    }
    /// `self - d`, stopping at [`SimTime::ZERO`].
    pub const fn saturating_sub(self, d: SimDuration) -> SimTime {
        SimTime(self.0.saturating_sub(d.0))
    }
    /// The span from `earlier` to `self`, zero if `earlier` is later.
    pub const fn saturating_duration_since(self, earlier: SimTime) -> SimDuration {
        SimDuration(self.0.saturating_sub(earlier.0))
    }
    /// The span from `earlier` to `self`, or `None` if `earlier` is later.
    pub const fn checked_duration_since(self, earlier: SimTime) -> Option<SimDuration> {
        match self.0.checked_sub(earlier.0) {
            Some(n) => Some(SimDuration(n)),
            None => None,
        }
    }
}

/// Saturating, so that `now + SimDuration::MAX` means "never" instead of wrapping.
impl Add<SimDuration> for SimTime {
    type Output = SimTime;
    fn add(self, d: SimDuration) -> SimTime {
        self.saturating_add(d)
    }
}

impl AddAssign<SimDuration> for SimTime {
    fn add_assign(&mut self, d: SimDuration) {
        *self = self.saturating_add(d);
    }
}

/// Saturating at zero: asking how long ago a future instant was gives zero.
impl Sub<SimTime> for SimTime {
    type Output = SimDuration;
    fn sub(self, earlier: SimTime) -> SimDuration {
        self.saturating_duration_since(earlier)
    }
}

/// Saturating at zero.
impl Sub<SimDuration> for SimTime {
    type Output = SimTime;
    fn sub(self, d: SimDuration) -> SimTime {
        self.saturating_sub(d)
    }
}

/// Saturating at [`SimDuration::MAX`].
impl Add for SimDuration {
    type Output = SimDuration;
    fn add(self, other: SimDuration) -> SimDuration {
        self.saturating_add(other)
    }
}

impl AddAssign for SimDuration {
    fn add_assign(&mut self, other: SimDuration) {
        *self = self.saturating_add(other);
    }
}

/// Saturating at zero.
impl Sub for SimDuration {
    type Output = SimDuration;
    fn sub(self, other: SimDuration) -> SimDuration {
        self.saturating_sub(other)
    }
}

impl From<std::time::Duration> for SimDuration {
    /// Saturating: durations beyond ~584 years become [`SimDuration::MAX`].
    fn from(d: std::time::Duration) -> Self {
        SimDuration(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    }
}

impl From<SimDuration> for std::time::Duration {
    fn from(d: SimDuration) -> Self {
        std::time::Duration::from_nanos(d.0)
    }
}

/// Writes `nanos` as `whole.fraction` with the fraction cut to the digits
/// that carry information (3, 6 or 9), so that the text parses back exactly.
fn write_decimal(f: &mut fmt::Formatter<'_>, nanos: u64, unit_nanos: u64, unit: &str) -> fmt::Result {
    let whole = nanos / unit_nanos;
    let rest = nanos % unit_nanos;
    if rest == 0 {
        return write!(f, "{whole}{unit}");
    }
    // Digits of the fractional part at nanosecond resolution for this unit.
    let digits = unit_nanos.ilog10() as usize;
    let mut fraction = format!("{rest:0digits$}");
    // Keep groups of three digits so "1.250s" reads as milliseconds.
    while fraction.len() > 3 && fraction.ends_with("000") {
        fraction.truncate(fraction.len() - 3);
    }
    write!(f, "{whole}.{fraction}{unit}")
}

impl fmt::Display for SimDuration {
    /// `0s`, `42ns`, `42us`, `250ms`, `1.250s`, `2m`, `1h`: the largest unit
    /// that keeps the text short and exact.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        if n == 0 {
            f.write_str("0s")
        } else if n == u64::MAX {
            f.write_str("forever")
        } else if n.is_multiple_of(NANOS_PER_HOUR) {
            write!(f, "{}h", n / NANOS_PER_HOUR)
        } else if n.is_multiple_of(NANOS_PER_MIN) {
            write!(f, "{}m", n / NANOS_PER_MIN)
        } else if n >= NANOS_PER_SEC {
            write_decimal(f, n, NANOS_PER_SEC, "s")
        } else if n >= NANOS_PER_MILLI {
            write_decimal(f, n, NANOS_PER_MILLI, "ms")
        } else if n >= NANOS_PER_MICRO {
            write_decimal(f, n, NANOS_PER_MICRO, "us")
        } else {
            write!(f, "{n}ns")
        }
    }
}

impl fmt::Display for SimTime {
    /// Seconds since the start with millisecond digits (`61.500s`), or more
    /// digits when needed to stay exact.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == u64::MAX {
            return f.write_str("never");
        }
        let whole = self.0 / NANOS_PER_SEC;
        let rest = self.0 % NANOS_PER_SEC;
        if rest.is_multiple_of(NANOS_PER_MILLI) {
            write!(f, "{whole}.{:03}s", rest / NANOS_PER_MILLI)
        } else {
            write_decimal(f, self.0, NANOS_PER_SEC, "s")
        }
    }
}

/// A duration or time string that does not parse; the message quotes it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {text:?}: {reason}")]
pub struct ParseDurationError {
    /// The text as given.
    pub text: String,
    /// What rule it broke.
    pub reason: &'static str,
}

const UNITS: &[(&str, u64)] = &[
    ("ns", 1),
    ("us", NANOS_PER_MICRO),
    ("µs", NANOS_PER_MICRO),
    ("ms", NANOS_PER_MILLI),
    ("s", NANOS_PER_SEC),
    ("m", NANOS_PER_MIN),
    ("h", NANOS_PER_HOUR),
];

/// Parses `"<decimal><unit>"` exactly, in integer arithmetic, so that
/// `"0.1s"` is exactly 100 ms and not 99.999... ms.
fn parse_nanos(text: &str) -> Result<u64, ParseDurationError> {
    let err = |reason| ParseDurationError { text: text.to_string(), reason };
    let trimmed = text.trim();
    if trimmed == "forever" || trimmed == "never" {
        return Ok(u64::MAX);
    }
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| err("missing unit (expected one of ns, us, ms, s, m, h)"))?;
    let (number, unit) = trimmed.split_at(split);
    let unit_nanos = UNITS
        .iter()
        .find(|(name, _)| *name == unit.trim())
        .map(|&(_, nanos)| nanos)
        .ok_or_else(|| err("unknown unit (expected one of ns, us, ms, s, m, h)"))?;
    if number.is_empty() {
        return Err(err("missing number before the unit"));
    }
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() {
        return Err(err("missing number before the unit"));
    }
    if fraction.contains('.') {
        return Err(err("more than one decimal point"));
    }
    let whole: u64 = if whole.is_empty() { 0 } else { whole.parse().map_err(|_| err("number too large"))? };
    let mut nanos = whole.checked_mul(unit_nanos).ok_or_else(|| err("duration too large"))?;
    // Each fractional digit is worth a tenth of the previous one; digits below
    // one nanosecond must be zero, or the value is not representable.
    let mut place = unit_nanos;
    for digit in fraction.bytes() {
        let digit = u64::from(digit - b'0');
        if place < 10 {
            if digit != 0 {
                return Err(err("finer than one nanosecond"));
            }
            continue;
        }
        place /= 10;
        nanos = nanos.checked_add(digit * place).ok_or_else(|| err("duration too large"))?;
    }
    Ok(nanos)
}

impl FromStr for SimDuration {
    type Err = ParseDurationError;
    /// Accepts `250ms`, `1.5s`, `2m`, `42us`, `10ns`, `1h`, `0s` and `forever`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        parse_nanos(text).map(SimDuration)
    }
}

impl FromStr for SimTime {
    type Err = ParseDurationError;
    /// An instant is written as the time since the start: `60s`, `1.5m`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        parse_nanos(text).map(SimTime)
    }
}

impl Serialize for SimDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SimDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for SimTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SimTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_display(d: SimDuration, expect: &str) {
        assert_eq!(d.to_string(), expect);
        assert_eq!(expect.parse::<SimDuration>().unwrap(), d, "round trip of {expect}");
    }

    #[test]
    fn display_picks_a_short_exact_unit() {
        check_display(SimDuration::ZERO, "0s");
        check_display(SimDuration::from_nanos(7), "7ns");
        check_display(SimDuration::from_micros(42), "42us");
        check_display(SimDuration::from_nanos(42_500), "42.500us");
        check_display(SimDuration::from_millis(250), "250ms");
        check_display(SimDuration::from_millis(1250), "1.250s");
        check_display(SimDuration::from_nanos(1_000_000_001), "1.000000001s");
        check_display(SimDuration::from_secs(120), "2m");
        check_display(SimDuration::from_secs(90), "90s");
        check_display(SimDuration::from_secs(7200), "2h");
        check_display(SimDuration::MAX, "forever");
    }

    #[test]
    fn parse_accepts_decimals_exactly() {
        let p = |s: &str| s.parse::<SimDuration>().unwrap().as_nanos();
        assert_eq!(p("1.5s"), 1_500_000_000);
        assert_eq!(p("0.1s"), 100_000_000);
        assert_eq!(p(".5ms"), 500_000);
        assert_eq!(p("2m"), 120_000_000_000);
        assert_eq!(p("1.5m"), 90_000_000_000);
        assert_eq!(p("3µs"), 3_000);
        assert_eq!(p(" 10ms "), 10_000_000);
        assert_eq!(p("1.0000000000s"), 1_000_000_000);
    }

    #[test]
    fn parse_errors_quote_the_text() {
        for (text, reason) in [
            ("", "missing unit"),
            ("250", "missing unit"),
            ("ms", "missing number"),
            ("5 parsecs", "unknown unit"),
            ("1.2.3s", "more than one decimal point"),
            ("1.0000000001s", "finer than one nanosecond"),
            ("99999999999999999999s", "too large"),
            ("100000000000h", "too large"),
            ("-5s", "unknown unit"),
        ] {
            let err = text.parse::<SimDuration>().unwrap_err();
            let message = err.to_string();
            assert!(message.contains(&format!("{text:?}")), "{message}");
            assert!(message.contains(reason), "{text}: {message}");
        }
    }

    #[test]
    fn arithmetic_saturates_instead_of_wrapping() {
        assert_eq!(SimTime::MAX + SimDuration::from_secs(1), SimTime::MAX);
        assert_eq!(SimTime::ZERO - SimDuration::from_secs(1), SimTime::ZERO);
        assert_eq!(SimTime::from_secs(1) - SimTime::from_secs(2), SimDuration::ZERO);
        assert_eq!(SimDuration::MAX + SimDuration::from_nanos(1), SimDuration::MAX);
        assert_eq!(SimTime::MAX.checked_add(SimDuration::from_nanos(1)), None);
        assert_eq!(SimDuration::from_secs(u64::MAX), SimDuration::MAX);
        assert_eq!(SimDuration::from_secs_f64(-1.0), SimDuration::ZERO);
        assert_eq!(SimDuration::from_secs_f64(f64::NAN), SimDuration::ZERO);
        assert_eq!(SimDuration::from_secs_f64(1e30), SimDuration::MAX);
        assert_eq!(SimDuration::from_secs_f64(0.25), SimDuration::from_millis(250));
    }

    #[test]
    fn serde_uses_the_human_string() {
        let d = SimDuration::from_millis(1500);
        assert_eq!(serde_json::to_string(&d).unwrap(), "\"1.500s\"");
        assert_eq!(ron::to_string(&d).unwrap(), "\"1.500s\"");
        let back: SimDuration = ron::from_str("\"2m\"").unwrap();
        assert_eq!(back, SimDuration::from_secs(120));
        let err = serde_json::from_str::<SimDuration>("\"soon\"").unwrap_err();
        assert!(err.to_string().contains("\"soon\""), "{err}");
        let t: SimTime = serde_json::from_str("\"60s\"").unwrap();
        assert_eq!(t, SimTime::from_secs(60));
        assert_eq!(serde_json::to_string(&t).unwrap(), "\"60.000s\"");
    }

    proptest::proptest! {
        /// The hand-written rounding is `f64::round`, for any positive
        /// float below 2^64 (the bits cover every exponent) and near halves.
        #[test]
        fn rounding_a_positive_float_matches_round(bits in 0x0000_0000_0000_0001u64..0x43f0_0000_0000_0000, whole in 0u64..1 << 40) {
            let x = f64::from_bits(bits);
            proptest::prop_assert_eq!(round_positive(x), x.round() as u64, "x = {:e}", x);
            for half in [whole as f64 + 0.5, whole as f64 + 0.49999999999999994, whole as f64 + 0.5000000000000001] {
                if half > 0.0 {
                    proptest::prop_assert_eq!(round_positive(half), half.round() as u64, "x = {:e}", half);
                }
            }
        }

        #[test]
        fn every_duration_round_trips_through_text(n in proptest::prelude::any::<u64>()) {
            let d = SimDuration::from_nanos(n);
            proptest::prop_assert_eq!(d.to_string().parse::<SimDuration>().unwrap(), d);
        }

        #[test]
        fn every_time_round_trips_through_text(n in proptest::prelude::any::<u64>()) {
            let t = SimTime::from_nanos(n);
            proptest::prop_assert_eq!(t.to_string().parse::<SimTime>().unwrap(), t);
        }
    }
}
