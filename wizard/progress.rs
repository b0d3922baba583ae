//! Progress display: indicatif on a terminal, nothing elsewhere (pipes, CI, tests).

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::steps::Progress;

/// The display on the terminal now, if any: a question hides it while a person answers.
static SHOWN: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Run `f` (a question at the terminal) with the progress display cleared from the screen
/// and its ticking held, so it neither overwrites the prompt nor the keys being typed; the
/// display comes back afterwards.
pub fn suspend<R>(f: impl FnOnce() -> R) -> R {
    let shown = SHOWN.lock().ok().and_then(|s| s.clone());
    match shown {
        Some(bar) if !bar.is_finished() => bar.suspend(f),
        _ => f(),
    }
}

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
            if let Ok(mut s) = SHOWN.lock() {
                *s = Some(bar.clone());
            }
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
        if let Ok(mut s) = SHOWN.lock() {
            if s.as_ref().is_some_and(|b| b.is_finished()) {
                *s = None;
            }
        }
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
        self.finish();
    }
}
