//! Progress on stderr for long runs and sweeps.
//!
//! The bar is drawn only when stderr is a terminal and `--quiet` is not
//! given, so logs and CI output stay clean. It measures the command's wall
//! time only; nothing here reaches the simulation.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

/// A bar of `length` steps, or a hidden one.
pub fn bar(length: u64, quiet: bool, unit: &str) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(length);
    let template = format!("{{elapsed_precise}} [{{bar:40}}] {{pos}}/{{len}} {unit} {{msg}}");
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}
