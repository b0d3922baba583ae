//! `iser-wizard`: parse the command line and dispatch; everything else lives in the library.

use clap::Parser;
use iser_wizard::cli::{main_with, Cli};
use iser_wizard::steps::host::Interrupt;

fn main() {
    let cli = Cli::parse();
    let interrupt = Interrupt::new();
    let flag = interrupt.clone();
    // Ctrl-C and SIGTERM set the flag: commands in flight are killed, state is saved, and
    // the run exits 130. A second signal exits at once, removing the verify's test file if
    // the first one's clean-up has not yet.
    let _ = ctrlc::set_handler(move || {
        if flag.is_set() {
            iser_wizard::steps::blockio::remove_unfinished_files();
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
    std::process::exit(code);
}
