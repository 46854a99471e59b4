//! A rate written the usual way: `"100/minute"`, `"10/second"`, `"5/30s"`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use stormglass_core::time::SimDuration;

/// `count` permits per `period`: the unit of every rate limiter config.
///
/// Parses from and prints to the string form, and serde uses that form:
///
/// ```
/// use stormglass_patterns::limiter::Limit;
/// use stormglass_core::time::SimDuration;
///
/// let limit: Limit = "100/minute".parse().unwrap();
/// assert_eq!(limit, Limit::new(100, SimDuration::from_secs(60)));
/// assert_eq!("5/30s".parse::<Limit>().unwrap().period, SimDuration::from_secs(30));
/// assert_eq!("10 per second".parse::<Limit>().unwrap().count, 10);
/// let err = "100/fortnight".parse::<Limit>().unwrap_err();
/// assert!(err.to_string().contains("\"100/fortnight\""));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Limit {
    /// Permits per period, at least 1.
    pub count: u32,
    /// The period, above zero.
    pub period: SimDuration,
}

impl Limit {
    /// `count` permits per `period`.
    pub const fn new(count: u32, period: SimDuration) -> Self {
        Limit { count, period }
    }

    /// `count` permits per second.
    pub const fn per_second(count: u32) -> Self {
        Limit::new(count, SimDuration::from_secs(1))
    }

    /// Checks the rules parsing enforces, for a `Limit` built in code.
    pub fn validate(&self) -> Result<(), crate::ConfigError> {
        crate::error::ensure(self.count >= 1, "count", "must be at least 1")?;
        crate::error::ensure(!self.period.is_zero(), "period", "must be above 0s")?;
        crate::error::ensure(self.period != SimDuration::MAX, "period", "must be finite")
    }
}

/// A limit string that does not parse; the message quotes it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid limit {text:?}: {reason}")]
pub struct ParseLimitError {
    /// The text as given.
    pub text: String,
    /// What rule it broke.
    pub reason: String,
}

/// Named periods, singular and the usual short forms.
const PERIODS: &[(&str, u64)] = &[
    ("second", 1),
    ("sec", 1),
    ("s", 1),
    ("minute", 60),
    ("min", 60),
    ("m", 60),
    ("hour", 3_600),
    ("hr", 3_600),
    ("h", 3_600),
    ("day", 86_400),
    ("d", 86_400),
];

impl FromStr for Limit {
    type Err = ParseLimitError;

    /// Accepts `<count>/<period>` or `<count> per <period>`, where the period
    /// is a unit name (`second`, `minute`, `hour`, `day`, plural or short) or
    /// a duration (`30s`, `1.5m`).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = |reason: &str| ParseLimitError { text: text.to_string(), reason: reason.to_string() };
        let trimmed = text.trim();
        let (count, period) = trimmed
            .split_once('/')
            .or_else(|| trimmed.split_once(" per "))
            .ok_or_else(|| err("expected <count>/<period>, e.g. \"100/minute\" or \"5/30s\""))?;
        let count = count.trim();
        if count.is_empty() {
            return Err(err("missing count before the period"));
        }
        let count: u32 = count.parse().map_err(|_| err("count must be a whole number from 1 to 4294967295"))?;
        if count == 0 {
            return Err(err("count must be at least 1"));
        }
        let period = period.trim();
        let named = period.strip_suffix('s').filter(|p| p.len() > 1);
        let by_name = PERIODS
            .iter()
            .find(|(name, _)| *name == period || Some(*name) == named)
            .map(|&(_, secs)| SimDuration::from_secs(secs));
        let period = match by_name {
            Some(p) => p,
            None => {
                // A bare unit ("ms") means one of it.
                let parsed = period.parse::<SimDuration>().or_else(|e| {
                    if period.starts_with(|c: char| c.is_alphabetic()) {
                        format!("1{period}").parse::<SimDuration>()
                    } else {
                        Err(e)
                    }
                });
                parsed.map_err(|_| err("period must be second, minute, hour, day or a duration like 30s"))?
            }
        };
        if period.is_zero() {
            return Err(err("period must be above 0s"));
        }
        if period == SimDuration::MAX {
            return Err(err("period must be finite"));
        }
        Ok(Limit { count, period })
    }
}

impl fmt::Display for Limit {
    /// `100/minute` for whole named periods, `5/30s` otherwise; parses back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = match self.period.as_nanos() % 1_000_000_000 {
            0 => Some(self.period.as_nanos() / 1_000_000_000),
            _ => None,
        };
        match secs {
            Some(1) => write!(f, "{}/second", self.count),
            Some(60) => write!(f, "{}/minute", self.count),
            Some(3_600) => write!(f, "{}/hour", self.count),
            Some(86_400) => write!(f, "{}/day", self.count),
            _ => write!(f, "{}/{}", self.count, self.period),
        }
    }
}

impl Serialize for Limit {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Limit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}
