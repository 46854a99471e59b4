//! `stormglass merge SHARD.csv...`: join the CSV outputs of a sharded sweep
//! into the CSV the whole sweep would have printed. Every file must have the
//! same header; every job from 0 to `jobs_total - 1` must appear exactly
//! once, so a lost or doubled shard is an error, not a silent gap.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{Failure, print_stdout, write_file};

/// `stormglass merge`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The shard outputs (CSV) of one sweep, in any order.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Write the merged CSV to FILE instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// Merges; see the module docs.
pub fn main(args: Args) -> Result<(), Failure> {
    let merged = merge_files(&args.files)?;
    match &args.out {
        Some(path) => write_file(path, merged.as_bytes()),
        None => print_stdout(&merged),
    }
}

/// Most jobs a merge holds in memory (as in a sweep).
const MERGE_JOBS_MAX: u64 = super::sweep::SWEEP_JOBS_MAX;

/// The merged CSV text of `files`.
pub fn merge_files(files: &[PathBuf]) -> Result<String, Failure> {
    let mut header: Option<(String, &Path)> = None;
    let mut jobs_total: Option<u64> = None;
    let mut rows: BTreeMap<u64, (String, String)> = BTreeMap::new();
    for path in files {
        let name = path.display();
        let text = std::fs::read_to_string(path).map_err(|e| Failure::BadInput(format!("{name}: cannot read: {e}")))?;
        let mut lines = text.lines().enumerate();
        let Some((_, first)) = lines.next() else {
            return Err(Failure::BadInput(format!("{name}: empty file; expected a sweep's CSV with its header")));
        };
        if !first.starts_with("job,jobs_total,") {
            return Err(Failure::BadInput(format!(
                "{name}: line 1: not a sweep's CSV (the header starts job,jobs_total,)"
            )));
        }
        match &header {
            None => header = Some((first.to_string(), path)),
            Some((h, from)) if h != first => {
                return Err(Failure::BadInput(format!(
                    "{name}: line 1: the header differs from {}'s: the shards come from different sweeps",
                    from.display()
                )));
            }
            Some(_) => {}
        }
        for (index, line) in lines {
            let line_no = index + 1;
            if line.is_empty() {
                continue;
            }
            let mut cells = line.splitn(3, ',');
            let parse = |cell: Option<&str>, what: &str| {
                cell.and_then(|c| c.parse::<u64>().ok()).ok_or_else(|| {
                    Failure::BadInput(format!("{name}: line {line_no}: {what} must be an unsigned integer"))
                })
            };
            let job = parse(cells.next(), "job")?;
            let total = parse(cells.next(), "jobs_total")?;
            if total > MERGE_JOBS_MAX || job >= total {
                return Err(Failure::BadInput(format!(
                    "{name}: line {line_no}: job {job} of {total}: must be below jobs_total, at most {MERGE_JOBS_MAX}"
                )));
            }
            if *jobs_total.get_or_insert(total) != total {
                return Err(Failure::BadInput(format!(
                    "{name}: line {line_no}: jobs_total {total} differs from {}: the shards come from different sweeps",
                    jobs_total.unwrap_or(total)
                )));
            }
            if let Some((_, other)) = rows.insert(job, (line.to_string(), name.to_string())) {
                return Err(Failure::BadInput(format!("{name}: line {line_no}: job {job} is also in {other}")));
            }
        }
    }
    let (header, _) = header.ok_or_else(|| Failure::BadInput("no files to merge".into()))?;
    let total = jobs_total.unwrap_or(0);
    let missing: Vec<u64> = (0..total).filter(|j| !rows.contains_key(j)).take(11).collect();
    if !missing.is_empty() {
        let shown: Vec<String> = missing.iter().take(10).map(u64::to_string).collect();
        let more = if missing.len() > 10 { ", ..." } else { "" };
        return Err(Failure::BadInput(format!(
            "{} of {total} jobs are missing (jobs {}{more}): a shard's output is lost or was not given",
            total - rows.len() as u64,
            shown.join(", ")
        )));
    }
    let mut out = header;
    out.push('\n');
    for (line, _) in rows.values() {
        out.push_str(line);
        out.push('\n');
    }
    Ok(out)
}
