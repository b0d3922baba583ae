//! Measure the verify engine on a mounted file system and print the figures as JSON.
//!
//! Usage: `verify_bench DIR SIZE_MIB [--serial] [--buffered] [--block-mib N | --block-kib N]
//! [--threads N] [--keep]`,
//! `verify_bench --read-only FILE SIZE_MIB [--seed N]` (check a kept file again),
//! `verify_bench --cpu _ SIZE_MIB`.
//!
//! Writes `DIR/iser-wizard-verify-<pid>.dat` through `verify_file` (removed afterwards),
//! one JSON object on stdout. `--cpu` instead times pattern generation and checking in
//! memory, which tells whether the CPU or the device bounds a run.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use iser_wizard::steps::blockio::{
    check_block, random_seed, read_verify, stamp_block, verify_file, IoPolicy, VerifyOptions,
};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |f: &str| args.iter().any(|a| a == f);
    let mut opts = VerifyOptions {
        seed: random_seed(),
        overlap: !flag("--serial"),
        io: if flag("--buffered") {
            IoPolicy::Buffered
        } else {
            IoPolicy::Auto
        },
        ..VerifyOptions::default()
    };
    if let Some(i) = args.iter().position(|a| a == "--threads") {
        match args.get(i + 1).and_then(|v| v.parse::<usize>().ok()) {
            Some(n) => opts.threads = n,
            None => return usage(),
        }
    }
    if let Some(i) = args.iter().position(|a| a == "--block-mib") {
        match args.get(i + 1).and_then(|v| v.parse::<usize>().ok()) {
            Some(n) => opts.block_size = n << 20,
            None => return usage(),
        }
    }
    if let Some(i) = args.iter().position(|a| a == "--block-kib") {
        match args.get(i + 1).and_then(|v| v.parse::<usize>().ok()) {
            Some(n) => opts.block_size = n << 10,
            None => return usage(),
        }
    }
    let positional: Vec<&String> = args
        .iter()
        .enumerate()
        .filter(|(i, a)| {
            // Not a flag, nor the value of one.
            let value_of = |f: &str| *i > 0 && args[i - 1] == f;
            !a.starts_with("--")
                && !["--block-mib", "--block-kib", "--seed", "--threads"]
                    .into_iter()
                    .any(value_of)
        })
        .map(|(_, a)| a)
        .collect();
    opts.keep = flag("--keep");
    if let Some(i) = args.iter().position(|a| a == "--seed") {
        match args.get(i + 1).and_then(|v| v.parse::<u64>().ok()) {
            Some(n) => opts.seed = n,
            None => return usage(),
        }
    }
    if flag("--read-only") {
        let (Some(file), Some(Ok(mib))) = (
            positional.first(),
            positional.get(1).map(|m| m.parse::<u64>()),
        ) else {
            return usage();
        };
        return match read_verify(std::path::Path::new(file.as_str()), mib << 20, &opts) {
            Ok(r) => {
                println!(
                    "{}",
                    serde_json::json!({
                        "read_mb_s": round1(r.mb_per_s()),
                        "read_mode": r.mode,
                        "passed": r.passed(),
                        "first_mismatch": r.first_mismatch.map(|m| m.to_string()),
                    })
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("verify_bench: {e}");
                ExitCode::from(2)
            }
        };
    }
    if flag("--cpu") {
        return cpu(
            &opts,
            positional
                .get(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or(1024),
        );
    }
    let (Some(dir), Some(mib)) = (positional.first(), positional.get(1)) else {
        return usage();
    };
    let Ok(mib) = mib.parse::<u64>() else {
        return usage();
    };
    let path = PathBuf::from(dir).join(format!("iser-wizard-verify-{}.dat", std::process::id()));
    match verify_file(&path, mib << 20, &opts, &mut |_, _| {}) {
        Ok(rep) => {
            let out = serde_json::json!({
                "bytes": rep.bytes,
                "seed": opts.seed,
                "overlap": opts.overlap,
                "threads": opts.threads,
                "block_size": opts.block_size,
                "write_mb_s": round1(rep.write_mb_s),
                "read_mb_s": round1(rep.read_mb_s),
                "write_mode": rep.write.mode,
                "read_mode": rep.read.mode,
                "fallback": rep.fallback,
                "passed": rep.passed(),
                "outcome": rep.outcome,
            });
            println!("{out}");
            if rep.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("verify_bench: {e}");
            ExitCode::from(2)
        }
    }
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// Time stamping and checking `mib` MiB in memory, one block at a time.
fn cpu(opts: &VerifyOptions, mib: u64) -> ExitCode {
    let mut buf = vec![0u8; opts.block_size];
    let blocks = (mib << 20) / opts.block_size as u64;
    let t = Instant::now();
    for i in 0..blocks {
        stamp_block(&mut buf, opts.seed, i * opts.block_size as u64);
    }
    let gen = t.elapsed().as_secs_f64();
    // Check one block repeatedly (the offsets must match what was stamped).
    let last = (blocks - 1) * opts.block_size as u64;
    let t = Instant::now();
    let mut bad = 0;
    for _ in 0..blocks {
        bad += check_block(&buf, opts.seed, last).0;
    }
    let check = t.elapsed().as_secs_f64();
    let bytes = (blocks * opts.block_size as u64) as f64;
    println!(
        "{}",
        serde_json::json!({
            "stamp_mb_s": round1(bytes / gen / 1e6),
            "check_mb_s": round1(bytes / check / 1e6),
            "bad": bad,
        })
    );
    ExitCode::SUCCESS
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: verify_bench DIR SIZE_MIB [--serial] [--buffered] [--block-mib N | --block-kib N]\n\
         \x20          [--threads N] [--keep]\n\
         \x20      verify_bench --read-only FILE SIZE_MIB --seed N\n\
         \x20      verify_bench --cpu _ SIZE_MIB"
    );
    ExitCode::from(2)
}
