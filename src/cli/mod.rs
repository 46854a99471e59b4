//! The `stormglass` command, one module per subcommand.
//!
//! Every command returns `Result<(), Failure>`; `main` prints the failure on
//! one line and exits with its code, so no user input ends in a panic trace.
//! Exit codes: 0 success, 1 a run stopped at a limit, 2 bad input.

pub mod check;
pub mod compare;
pub mod html;
pub mod merge;
pub mod progress;
pub mod replay;
pub mod report_out;
pub mod run;
pub mod setting;
pub mod stats;
pub mod svg;
pub mod sweep;

use std::fmt;
use std::path::Path;

use stormglass_models::{RunError, Scenario};

/// Why a command failed, and so with which exit code.
#[derive(Debug)]
pub enum Failure {
    /// The input (a file, a flag, a setting) is wrong: exit code 2.
    BadInput(String),
    /// A run stopped at one of its limits: exit code 1.
    Limit(String),
}

impl Failure {
    /// The process exit code for this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Limit(_) => 1,
            Failure::BadInput(_) => 2,
        }
    }

    /// A run error, prefixed with what was running (a file name, a variant).
    pub fn from_run(context: &str, error: RunError) -> Failure {
        match error {
            // Validation runs before a file's scenario is run, so a config
            // error here comes from a setting (sweep) and is bad input.
            RunError::Config(e) => Failure::BadInput(format!("{context}: {e}")),
            RunError::Engine(_) | RunError::InFlightLimit { .. } => Failure::Limit(format!("{context}: {error}")),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::BadInput(message) | Failure::Limit(message) => f.write_str(message),
        }
    }
}

/// Reads, parses and validates a scenario file; every error names the file.
pub fn load_scenario(path: &Path) -> Result<Scenario, Failure> {
    let name = path.display();
    let text =
        std::fs::read_to_string(path).map_err(|e| Failure::BadInput(format!("{name}: cannot read the file: {e}")))?;
    let scenario = Scenario::from_ron(&text).map_err(|e| Failure::BadInput(format!("{name}: {e}")))?;
    scenario.validate().map_err(|e| Failure::BadInput(format!("{name}: {e}")))?;
    Ok(scenario)
}

/// A short label for a scenario file: its stem (`retry-storm.ron` -> `retry-storm`).
pub fn label_of(path: &Path) -> String {
    path.file_stem().map_or_else(|| path.display().to_string(), |s| s.to_string_lossy().into_owned())
}

/// Prints `text` on stdout. A reader that stops early (`| head`) closes the
/// pipe: that ends the output quietly, as it does for Unix tools, instead of
/// the panic `print!` gives.
pub fn print_stdout(text: &str) -> Result<(), Failure> {
    use std::io::{ErrorKind, Write};
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() != ErrorKind::BrokenPipe => Err(Failure::BadInput(format!("cannot write to stdout: {e}"))),
        _ => Ok(()),
    }
}

/// Writes `contents` to `path`, naming the path on failure.
pub fn write_file(path: &Path, contents: &[u8]) -> Result<(), Failure> {
    std::fs::write(path, contents).map_err(|e| Failure::BadInput(format!("{}: cannot write: {e}", path.display())))
}

/// Creates `dir` (and parents), naming it on failure.
pub fn create_dir(dir: &Path) -> Result<(), Failure> {
    std::fs::create_dir_all(dir).map_err(|e| Failure::BadInput(format!("{}: cannot create: {e}", dir.display())))
}

/// Most threads `--jobs` may ask for.
pub const JOBS_MAX: usize = 1024;

/// A rayon pool of `jobs` threads (default: one per core).
pub fn thread_pool(jobs: Option<usize>) -> Result<rayon::ThreadPool, Failure> {
    let threads = match jobs {
        Some(j) if j == 0 || j > JOBS_MAX => {
            return Err(Failure::BadInput(format!("--jobs: must be between 1 and {JOBS_MAX}, got {j}")));
        }
        Some(j) => j,
        None => std::thread::available_parallelism().map_or(1, usize::from),
    };
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| Failure::BadInput(format!("--jobs {threads}: cannot start the threads: {e}")))
}
