//! The `stormglass` command. With no arguments it runs the seed cascade,
//! unprotected and protected, and tells what happened.
//!
//! Every subcommand lives in its own module under `src/cli/`, with its
//! arguments; this file only dispatches and turns a failure into one line on
//! stderr and an exit code: 0 success, 1 a run stopped at a limit, 2 bad input.

mod cli;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Deterministic simulations of microservice fault-tolerance patterns.
///
/// With no subcommand, runs the seed cascade (client -> gateway -> order ->
/// user, where user hangs from 60 s to 180 s) twice, without and with
/// protection, and tells the story side by side. Every run is reproducible
/// from its scenario and seed.
#[derive(Debug, Parser)]
#[command(name = "stormglass", version, about, long_about, after_help = AFTER_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

const AFTER_HELP: &str = "\
Exit codes: 0 success, 1 a run stopped at a limit, 2 bad input.

Examples:
  stormglass                                  the seed cascade, unprotected vs protected
  stormglass run scenarios/retry-storm.ron --out out/
  stormglass compare scenarios/seed-cascade-unprotected.ron scenarios/seed-cascade-protected.ron
  stormglass sweep scenarios/seed-cascade-protected.ron --set services.user.execution.workers=8,16
  stormglass check scenarios/seed-cascade-protected.ron";

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a scenario and report on it (no FILE: the seed cascade, both variants).
    Run(cli::run::Args),
    /// Paired runs of two scenarios over the same seeds, with 95% confidence intervals.
    Compare(cli::compare::Args),
    /// Run the cross product of settings times seeds, in parallel, optionally one shard of it.
    Sweep(cli::sweep::Args),
    /// Join the CSV outputs of a sharded sweep into one, checking none is missing.
    Merge(cli::merge::Args),
    /// Feed a recorded call log through one pattern and print its decisions as CSV.
    Replay(cli::replay::Args),
    /// Validate a scenario and print it normalized.
    Check(cli::check::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        None => cli::run::main(cli::run::Args::default()),
        Some(Command::Run(args)) => cli::run::main(args),
        Some(Command::Compare(args)) => cli::compare::main(args),
        Some(Command::Sweep(args)) => cli::sweep::main(args),
        Some(Command::Merge(args)) => cli::merge::main(args),
        Some(Command::Replay(args)) => cli::replay::main(args),
        Some(Command::Check(args)) => cli::check::main(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("stormglass: {failure}");
            ExitCode::from(failure.exit_code())
        }
    }
}
