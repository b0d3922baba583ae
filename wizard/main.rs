//! `iser-wizard`: parse the command line and dispatch; everything else lives in the library.
//!
//! It also owns the terminal's restoration: whatever way the process ends (a normal return,
//! an error, Ctrl-C at a prompt, a second signal), the terminal is given back as it was found
//! (echo and line mode, and a visible cursor), since a prompt may have changed both.

use std::sync::OnceLock;

use clap::Parser;
use iser_wizard::cli::{main_with, Cli};
use iser_wizard::steps::host::Interrupt;

/// The terminal's settings at start, when standard input is a terminal.
static TERMINAL: OnceLock<rustix::termios::Termios> = OnceLock::new();

/// Give the terminal back as it was found: its settings, and the cursor a prompt may have
/// hidden. Safe to call from the signal handler's thread, and when there is no terminal.
fn restore_terminal() {
    if let Some(t) = TERMINAL.get() {
        let _ =
            rustix::termios::tcsetattr(std::io::stdin(), rustix::termios::OptionalActions::Now, t);
    }
    iser_wizard::prompt::show_cursor();
}

fn main() {
    let cli = Cli::parse();
    if let Ok(t) = rustix::termios::tcgetattr(std::io::stdin()) {
        let _ = TERMINAL.set(t);
    }
    // A panic ends the process too: give the terminal back before the message.
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore_terminal();
        report(info);
    }));
    let interrupt = Interrupt::new();
    let flag = interrupt.clone();
    // Ctrl-C and SIGTERM set the flag: commands in flight are killed, state is saved, and
    // the run exits 130. A second signal exits at once, removing the verify's test file if
    // the first one's clean-up has not yet.
    let _ = ctrlc::set_handler(move || {
        if flag.is_set() {
            iser_wizard::steps::blockio::remove_unfinished_files();
            restore_terminal();
            std::process::exit(130);
        }
        flag.set();
    });
    // Unlocked handles: the progress display draws on stderr from its own thread, so holding
    // the stderr lock here for the whole run would deadlock it.
    let code = main_with(
        cli,
        interrupt,
        &mut std::io::stdout(),
        &mut std::io::stderr(),
    );
    restore_terminal();
    std::process::exit(code);
}
