//! `--set path=v1,v2,...`: one scenario field and the values a sweep gives
//! it. A path names fields with dots through the scenario as it serializes
//! (`services.user.execution.workers`, `clients.0.rate.rps`,
//! `faults.0.until`); array elements by index; an enum's variant name may be
//! left out (`execution.workers` reaches `execution.thread_pool.workers`).
//! A value is JSON when it parses as JSON (`8`, `0.5`, `true`) and a string
//! otherwise (`5s`, `fifo`); values cannot contain commas.

use serde_json::Value;
use stormglass_models::Scenario;

use super::Failure;

/// Most values one setting may list.
pub const VALUES_MAX: usize = 10_000;

/// One `--set`.
#[derive(Debug, Clone, PartialEq)]
pub struct Setting {
    /// The dotted path, as written.
    pub path: String,
    /// The values as written, for the output columns.
    pub texts: Vec<String>,
    /// The values as JSON.
    pub values: Vec<Value>,
}

impl Setting {
    /// Parses `path=v1,v2,...`; the error quotes the argument.
    pub fn parse(arg: &str) -> Result<Setting, Failure> {
        let bad = |rule: &str| Failure::BadInput(format!("--set {arg:?}: {rule}"));
        let (path, list) = arg.split_once('=').ok_or_else(|| bad("expected path=v1,v2,..."))?;
        let path = path.trim();
        if path.is_empty() || path.split('.').any(str::is_empty) {
            return Err(bad("the path must be field names separated by single dots"));
        }
        let texts: Vec<String> = list.split(',').map(|v| v.trim().to_string()).collect();
        if texts.iter().any(String::is_empty) {
            return Err(bad("every value must be non-empty"));
        }
        if texts.len() > VALUES_MAX {
            return Err(bad(&format!("at most {VALUES_MAX} values")));
        }
        let values =
            texts.iter().map(|t| serde_json::from_str(t).unwrap_or_else(|_| Value::String(t.clone()))).collect();
        Ok(Setting { path: path.to_string(), texts, values })
    }
}

/// The scenario with each `(path, value)` applied, validated; the error
/// names the setting and the rule.
pub fn apply(scenario: &Scenario, assignments: &[(&str, &Value)]) -> Result<Scenario, Failure> {
    let mut tree = serde_json::to_value(scenario)
        .map_err(|e| Failure::BadInput(format!("cannot represent the scenario for --set: {e}")))?;
    for (path, value) in assignments {
        set(&mut tree, path, (*value).clone())
            .map_err(|rule| Failure::BadInput(format!("--set {path}={value}: {rule}")))?;
    }
    let describe = || assignments.iter().map(|(p, v)| format!("{p}={v}")).collect::<Vec<_>>().join(" ");
    let updated: Scenario =
        serde_json::from_value(tree).map_err(|e| Failure::BadInput(format!("--set {}: {e}", describe())))?;
    updated.validate().map_err(|e| Failure::BadInput(format!("--set {}: {e}", describe())))?;
    Ok(updated)
}

/// Sets `path` in `tree`; the error says which segment is wrong.
fn set(tree: &mut Value, path: &str, value: Value) -> Result<(), String> {
    let segments: Vec<&str> = path.split('.').collect();
    let mut node = tree;
    for (depth, segment) in segments.iter().enumerate() {
        let last = depth + 1 == segments.len();
        let at = segments[..depth].join(".");
        let here = if at.is_empty() { "the scenario".to_string() } else { format!("`{at}`") };
        node = step(node, segment, last).ok_or_else(|| format!("{here} has no field or index `{segment}`"))?;
    }
    *node = value;
    Ok(())
}

/// The child `segment` of `node`: a field, an array index, or a field inside
/// the single variant of an externally tagged enum.
fn step<'v>(node: &'v mut Value, segment: &str, last: bool) -> Option<&'v mut Value> {
    match node {
        Value::Array(items) => segment.parse::<usize>().ok().and_then(move |i| items.get_mut(i)),
        Value::Object(fields) => {
            // Decide with shared borrows first: which key to descend into.
            let through_variant = !fields.contains_key(segment)
                && fields.len() == 1
                && fields.values().next().and_then(Value::as_object).is_some_and(|o| o.contains_key(segment));
            if through_variant {
                return fields.values_mut().next().and_then(|inner| inner.get_mut(segment));
            }
            if fields.contains_key(segment) || last {
                // A missing last field is created (a `None` option left out);
                // serde then names it if the scenario has no such field.
                return Some(fields.entry(segment.to_string()).or_insert(Value::Null));
            }
            None
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stormglass_core::time::{SimDuration, SimTime};
    use stormglass_models::config::Execution;
    use stormglass_models::seed::{Variant, seed_cascade};

    fn check(arg: &str, expect: Result<fn(&Scenario) -> bool, &str>) {
        let scenario = seed_cascade(Variant::Protected);
        let result = Setting::parse(arg).and_then(|s| {
            let pairs: Vec<(&str, &Value)> = s.values.iter().map(|v| (s.path.as_str(), v)).collect();
            apply(&scenario, &pairs[..1])
        });
        match (result, expect) {
            (Ok(updated), Ok(holds)) => assert!(holds(&updated), "{arg}: {updated:?}"),
            (Err(e), Err(message)) => assert_eq!(e.to_string(), message, "{arg}"),
            (got, want) => panic!("{arg}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn a_scenario_survives_the_json_round_trip() {
        for variant in [Variant::Unprotected, Variant::Protected] {
            let scenario = seed_cascade(variant);
            let back: Scenario = serde_json::from_value(serde_json::to_value(&scenario).unwrap()).unwrap();
            assert_eq!(back, scenario);
        }
    }

    #[test]
    fn paths_reach_fields_through_maps_arrays_and_enum_variants() {
        let scenario = seed_cascade(Variant::Protected);
        let eight = Value::from(8);
        let updated = apply(&scenario, &[("services.user.execution.workers", &eight)]).unwrap();
        assert!(matches!(updated.services["user"].execution, Execution::ThreadPool { workers: 8, .. }));
        check("duration=20s", Ok(|s| s.duration == SimDuration::from_secs(20)));
        check("seed=9", Ok(|s| s.seed == 9));
        check("faults.0.until=90s", Ok(|s| s.faults[0].until == SimTime::from_secs(90)));
        check("clients.0.rate.rps=50", Ok(|s| format!("{:?}", s.clients[0].rate).contains("rps: 50.0")));
    }

    #[test]
    fn bad_settings_name_the_setting_and_the_rule() {
        check("workers", Err("--set \"workers\": expected path=v1,v2,..."));
        check("a..b=1", Err("--set \"a..b=1\": the path must be field names separated by single dots"));
        check("seed=1,,2", Err("--set \"seed=1,,2\": every value must be non-empty"));
        check(
            "services.nobody.execution=1",
            Err("--set services.nobody.execution=1: `services` has no field or index `nobody`"),
        );
        check("faults.7.until=1s", Err("--set faults.7.until=\"1s\": `faults` has no field or index `7`"));
        check(
            "services.user.execution.workers=0",
            Err(
                "--set services.user.execution.workers=0: services.user.execution.thread_pool.workers: must be at least 1",
            ),
        );
        check(
            "duration=soon",
            Err(
                "--set duration=\"soon\": invalid duration \"soon\": unknown unit (expected one of ns, us, ms, s, m, h)",
            ),
        );
        check(
            "durration=5s",
            Err(
                "--set durration=\"5s\": unknown field `durration`, expected one of `name`, `seed`, `duration`, `drain`, `bucket_width`, `limits`, `services`, `clients`, `links`, `faults`",
            ),
        );
    }
}
