//! Progress display: indicatif on a terminal, nothing elsewhere (pipes, CI, tests).

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::steps::Progress;

/// A spinner with a message, which becomes a byte counter for long transfers.
#[derive(Debug)]
pub struct TermProgress {
    bar: ProgressBar,
}

impl TermProgress {
    /// A progress display for one step; hidden unless stderr is a terminal.
    pub fn new(prefix: &str) -> Self {
        let bar = ProgressBar::new_spinner();
        if std::io::stderr().is_terminal() {
            bar.set_draw_target(ProgressDrawTarget::stderr());
            bar.enable_steady_tick(Duration::from_millis(120));
        } else {
            bar.set_draw_target(ProgressDrawTarget::hidden());
        }
        bar.set_style(
            ProgressStyle::with_template("{spinner} {prefix}: {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_prefix(prefix.to_string());
        TermProgress { bar }
    }

    /// Remove the display.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Progress for TermProgress {
    fn message(&self, msg: &str) {
        self.bar.set_message(msg.to_string());
    }

    fn start_bytes(&self, label: &str, total: u64) {
        self.bar.set_length(total);
        self.bar.set_position(0);
        self.bar.set_style(
            ProgressStyle::with_template(
                "{prefix}: {msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        self.bar.set_message(label.to_string());
    }

    fn set_bytes(&self, done: u64) {
        self.bar.set_position(done);
    }
}

impl Drop for TermProgress {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}
