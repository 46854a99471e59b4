//! Incident reproduction: a recorded traffic curve and fault windows from
//! CSV, replayed against candidate policies.
//!
//! Formats (no quoting; blank lines and lines starting with `#` are skipped;
//! a first line naming the columns is optional):
//! - rate: `time,rps`, where `time` is a duration string (`90s`, `1.5m`) or
//!   bare seconds (`90`), increasing, and `rps` a number;
//! - faults: `target,kind,from,until`, where `kind` is `crash`, `hang`,
//!   `slow:<added duration>`, `errors:<probability>:<status>`,
//!   `capacity_loss:<workers>` or `partition:<caller>`.

use stormglass_core::error::ConfigError;
use stormglass_core::time::{SimDuration, SimTime};
use stormglass_models::config::{ErrorRate, FaultConfig, FaultKind, RatePoint, RateProfile};
use stormglass_models::{Report, Scenario};
use stormglass_patterns::pipeline::PolicyConfig;

use super::KitError;
use super::seeds::{ScenarioSource, run_pinned};

/// Most lines of one CSV input.
const LINES_MAX: usize = 100_000;

/// One line's fields with their 1-based character columns.
fn fields(line: &str) -> Vec<(usize, &str)> {
    let mut column = 1;
    line.split(',')
        .map(|field| {
            let at = column + (field.len() - field.trim_start().len());
            column += field.chars().count() + 1;
            (at, field.trim())
        })
        .collect()
}

/// A data line: its 1-based number and its fields with their columns.
type Record<'a> = (usize, Vec<(usize, &'a str)>);

/// Data lines, header and comments skipped.
fn records<'a>(input: &'static str, text: &'a str, header: &str) -> Result<Vec<Record<'a>>, KitError> {
    let mut out = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if out.is_empty() && trimmed.replace(' ', "") == header {
            continue;
        }
        if out.len() == LINES_MAX {
            return Err(KitError::Csv { input, line: index + 1, column: 1, message: "more than 100000 lines".into() });
        }
        out.push((index + 1, fields(line)));
    }
    Ok(out)
}

fn time(input: &'static str, line: usize, (column, text): (usize, &str), what: &str) -> Result<SimTime, KitError> {
    let parsed = if text.ends_with(|c: char| c.is_ascii_digit()) { format!("{text}s").parse() } else { text.parse() };
    parsed.map_err(|_| KitError::Csv {
        input,
        line,
        column,
        message: format!("{what} must be a time such as 90s or 1.5m, got {text:?}"),
    })
}

/// A rate profile ([`RateProfile::Table`], interpolated) from a `time,rps` CSV.
///
/// ```
/// use stormglass::models::config::RateProfile;
/// use stormglass::testing::rate_from_csv;
///
/// let profile = rate_from_csv("time,rps\n0s,100\n60s,400\n120,100\n").unwrap();
/// let RateProfile::Table(points) = profile else { panic!() };
/// assert_eq!(points.len(), 3);
/// let err = rate_from_csv("0s,100\n0s,200\n").unwrap_err();
/// assert_eq!(err.to_string(), "rate csv: line 2, column 1: time must be after the previous line's");
/// ```
pub fn rate_from_csv(text: &str) -> Result<RateProfile, KitError> {
    const INPUT: &str = "rate csv";
    let mut points: Vec<RatePoint> = Vec::new();
    for (line, fields) in records(INPUT, text, "time,rps")? {
        if fields.len() != 2 {
            let column = fields.get(2).map_or(1, |f| f.0);
            let message = format!("expected 2 fields (time,rps), found {}", fields.len());
            return Err(KitError::Csv { input: INPUT, line, column, message });
        }
        let at = time(INPUT, line, fields[0], "time")?;
        let (column, text) = fields[1];
        let rps: f64 = text.parse().map_err(|_| KitError::Csv {
            input: INPUT,
            line,
            column,
            message: format!("rps must be a number, got {text:?}"),
        })?;
        if !(rps.is_finite() && (0.0..=10_000_000.0).contains(&rps)) {
            let message = "rps must be between 0 and 10000000".into();
            return Err(KitError::Csv { input: INPUT, line, column, message });
        }
        if points.last().is_some_and(|p| p.at >= at) {
            let message = "time must be after the previous line's".into();
            return Err(KitError::Csv { input: INPUT, line, column: fields[0].0, message });
        }
        points.push(RatePoint { at, rps });
    }
    if points.is_empty() {
        return Err(KitError::Csv { input: INPUT, line: 1, column: 1, message: "no data lines".into() });
    }
    Ok(RateProfile::Table(points))
}

fn kind(line: usize, (column, text): (usize, &str)) -> Result<FaultKind, KitError> {
    let err = |message: String| KitError::Csv { input: "faults csv", line, column, message };
    let mut parts = text.split(':');
    let word = parts.next().unwrap_or_default();
    let args: Vec<&str> = parts.collect();
    let kind = match (word, args.as_slice()) {
        ("crash", []) => FaultKind::Crash,
        ("hang", []) => FaultKind::Hang,
        ("slow", [added]) => {
            FaultKind::Slow { added: added.parse::<SimDuration>().map_err(|e| err(format!("slow: {e}")))?, factor: 1.0 }
        }
        ("errors", [p, status]) => FaultKind::Errors(ErrorRate {
            probability: p.parse().map_err(|_| err(format!("errors: probability must be a number, got {p:?}")))?,
            status: status.parse().map_err(|_| err(format!("errors: status must be an integer, got {status:?}")))?,
        }),
        ("capacity_loss", [workers]) => FaultKind::CapacityLoss {
            workers: workers
                .parse()
                .map_err(|_| err(format!("capacity_loss: workers must be an integer, got {workers:?}")))?,
        },
        ("partition", [from]) if !from.is_empty() => FaultKind::Partition { from: from.to_string() },
        _ => {
            return Err(err(format!(
                "kind must be crash, hang, slow:<added>, errors:<p>:<status>, capacity_loss:<workers> or partition:<caller>, got {text:?}"
            )));
        }
    };
    Ok(kind)
}

/// Fault windows from a `target,kind,from,until` CSV.
///
/// ```
/// use stormglass::models::config::FaultKind;
/// use stormglass::testing::faults_from_csv;
///
/// let faults = faults_from_csv("target,kind,from,until\nuser,hang,60s,180s\nproduct,slow:200ms,90,120\n").unwrap();
/// assert_eq!(faults[0].kind, FaultKind::Hang);
/// let err = faults_from_csv("user,melt,60s,180s\n").unwrap_err();
/// assert!(err.to_string().starts_with("faults csv: line 1, column 6: kind must be"), "{err}");
/// ```
pub fn faults_from_csv(text: &str) -> Result<Vec<FaultConfig>, KitError> {
    const INPUT: &str = "faults csv";
    let mut faults = Vec::new();
    for (line, fields) in records(INPUT, text, "target,kind,from,until")? {
        if fields.len() != 4 {
            let column = fields.get(4).map_or(1, |f| f.0);
            let message = format!("expected 4 fields (target,kind,from,until), found {}", fields.len());
            return Err(KitError::Csv { input: INPUT, line, column, message });
        }
        let from = time(INPUT, line, fields[2], "from")?;
        let until = time(INPUT, line, fields[3], "until")?;
        if until <= from {
            let message = "until must be after from".into();
            return Err(KitError::Csv { input: INPUT, line, column: fields[3].0, message });
        }
        faults.push(FaultConfig {
            target: fields[0].1.to_string(),
            replica: None,
            from,
            until,
            kind: kind(line, fields[1])?,
        });
    }
    Ok(faults)
}

/// `scenario` with `policy` on the `service -> dependency` edge; an error
/// naming the path when either does not exist.
///
/// ```
/// use stormglass::models::seed::{Variant, seed_cascade, seed_policy};
/// use stormglass::testing::with_policy;
///
/// let protected = with_policy(&seed_cascade(Variant::Unprotected), "order", "user", seed_policy()).unwrap();
/// assert_eq!(protected.services["order"].dependencies["user"].policy, seed_policy());
/// let err = with_policy(&protected, "order", "usr", seed_policy()).unwrap_err();
/// assert_eq!(err.to_string(), "invalid input: services.order.dependencies: no dependency named \"usr\"");
/// ```
pub fn with_policy(
    scenario: &Scenario,
    service: &str,
    dependency: &str,
    policy: PolicyConfig,
) -> Result<Scenario, KitError> {
    let mut scenario = scenario.clone();
    let found = scenario
        .services
        .get_mut(service)
        .ok_or_else(|| ConfigError::new("services", format!("no service named {service:?}")))?;
    let edge = found.dependencies.get_mut(dependency).ok_or_else(|| {
        ConfigError::new(format!("services.{service}.dependencies"), format!("no dependency named {dependency:?}"))
    })?;
    edge.policy = policy;
    Ok(scenario)
}

/// A recorded incident: an optional traffic curve and fault windows.
///
/// ```
/// use stormglass::models::seed::{Variant, seed_cascade, seed_policy};
/// use stormglass::testing::Incident;
///
/// let incident = Incident::from_csv(Some("0s,50\n4s,150\n"), "user,hang,1s,3s\n").unwrap();
/// let mut base = seed_cascade(Variant::Unprotected);
/// base.duration = "5s".parse().unwrap();
/// base.drain = "1s".parse().unwrap();
/// let results = incident
///     .compare(&base, "order", "user", &[("as deployed", None), ("seed policy", Some(seed_policy()))], 1)
///     .unwrap();
/// assert_eq!(results.len(), 2);
/// assert_eq!(results[0].1.faults.len(), 1);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Incident {
    /// The recorded traffic, applied to every open-loop client.
    pub rate: Option<RateProfile>,
    /// The fault windows, replacing the scenario's.
    pub faults: Vec<FaultConfig>,
}

impl Incident {
    /// Parses both inputs (see the module docs for the formats).
    pub fn from_csv(rate_csv: Option<&str>, faults_csv: &str) -> Result<Incident, KitError> {
        Ok(Incident { rate: rate_csv.map(rate_from_csv).transpose()?, faults: faults_from_csv(faults_csv)? })
    }

    /// `base` with the incident's faults and traffic; validated.
    pub fn apply(&self, base: &Scenario) -> Result<Scenario, KitError> {
        let mut scenario = base.clone();
        scenario.faults = self.faults.clone();
        if let Some(rate) = &self.rate {
            for client in scenario.clients.iter_mut().filter(|c| c.rate.is_some()) {
                client.rate = Some(rate.clone());
            }
        }
        scenario.validate()?;
        Ok(scenario)
    }

    /// Runs the incident once per candidate policy on `service -> dependency`
    /// (`None` keeps the policy of `base`), all with `seed` (or the pinned
    /// one), and returns each candidate's report in order.
    pub fn compare(
        &self,
        base: &Scenario,
        service: &str,
        dependency: &str,
        candidates: &[(&str, Option<PolicyConfig>)],
        seed: u64,
    ) -> Result<Vec<(String, Report)>, KitError> {
        let scenario = self.apply(base)?;
        candidates
            .iter()
            .map(|(name, policy)| {
                let candidate = match policy {
                    Some(policy) => with_policy(&scenario, service, dependency, policy.clone())?,
                    None => scenario.clone(),
                };
                Ok((name.to_string(), run_pinned(&candidate as &dyn ScenarioSource, seed)?))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The CSV word of a fault kind. This match has no catch-all, so a new
    /// `FaultKind` stops this test from compiling until it has a word here;
    /// added to the test's kinds, it then fails until `kind` (whose match
    /// is over strings, and cannot tell) reads that word.
    fn csv_word(kind: &FaultKind) -> String {
        match kind {
            FaultKind::Crash => "crash".into(),
            FaultKind::Hang => "hang".into(),
            FaultKind::Slow { added, .. } => format!("slow:{added}"),
            FaultKind::Errors(rate) => format!("errors:{}:{}", rate.probability, rate.status),
            FaultKind::CapacityLoss { workers } => format!("capacity_loss:{workers}"),
            FaultKind::Partition { from } => format!("partition:{from}"),
        }
    }

    #[test]
    fn every_fault_kind_reads_back_from_its_csv_word() {
        let kinds = [
            FaultKind::Crash,
            FaultKind::Hang,
            FaultKind::Slow { added: SimDuration::from_millis(200), factor: 1.0 },
            FaultKind::Errors(ErrorRate { probability: 0.25, status: 503 }),
            FaultKind::CapacityLoss { workers: 3 },
            FaultKind::Partition { from: "gateway".into() },
        ];
        for expected in kinds {
            let csv = format!("user,{},60s,180s\n", csv_word(&expected));
            let faults = faults_from_csv(&csv).unwrap_or_else(|e| panic!("{csv}: {e}"));
            assert_eq!(faults[0].kind, expected, "{csv}");
        }
    }
}
