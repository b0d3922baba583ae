//! Write the generated reference, for packaging and for `docs/`:
//!
//! ```sh
//! cargo run --example gen_docs -- man OUTDIR          # iser-wizard(8), a page per command, iser-wizard-answers(5)
//! cargo run --example gen_docs -- completions OUTDIR  # bash, zsh and fish
//! cargo run --example gen_docs -- markdown > docs/answers.md
//! ```
//!
//! An example rather than a subcommand: a hidden subcommand would still be offered by the
//! completions it writes. Everything it prints comes from `iser_wizard::docs`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context};

fn main() -> ExitCode {
    match run(&std::env::args().skip(1).collect::<Vec<_>>()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gen_docs: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &[String]) -> anyhow::Result<()> {
    let written = match args {
        [what] if what == "markdown" => {
            print!("{}", iser_wizard::docs::answers_markdown());
            return Ok(());
        }
        [what, dir] if what == "man" => iser_wizard::docs::write_man(Path::new(dir))
            .with_context(|| format!("writing the man pages in {dir}"))?,
        [what, dir] if what == "completions" => {
            iser_wizard::docs::write_completions(Path::new(dir))
                .with_context(|| format!("writing the completions in {dir}"))?
        }
        _ => bail!("usage: gen_docs man OUTDIR | completions OUTDIR | markdown"),
    };
    for p in written {
        println!("{}", p.display());
    }
    Ok(())
}
