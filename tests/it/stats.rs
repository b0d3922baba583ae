//! `iser-wizard stats` from the outside: METHOD.md's published vectors in both modes, the
//! refusals (exit 2), and a byte-for-byte comparison with Debian's `ministat` (the 2015
//! program) on random data sets, skipped with a note when `ministat` is not on PATH.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn stats(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_iser-wizard"))
        .arg("stats")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("iser-wizard runs")
}

fn write_set(dir: &Path, name: &str, values: &[f64]) -> PathBuf {
    let text: String = values.iter().map(|v| format!("{v}\n")).collect();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn stdout(o: &Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

const NB_REF: [f64; 5] = [729817.0, 723531.0, 728540.0, 727669.0, 721322.0];
const NB_NEW: [f64; 5] = [735181.0, 735392.0, 735682.0, 733327.0, 736835.0];

#[test]
fn netbenches_vector_current_and_2015() {
    let dir = tempfile::tempdir().unwrap();
    write_set(dir.path(), "ref", &NB_REF);
    write_set(dir.path(), "new", &NB_NEW);
    let expected_head = "x ref\n+ new\n    N           Min           Max        Median           Avg        Stddev\n\
        x   5        721322        729817        727669      726175.8     3592.7624\n\
        +   5        733327        736835        735392      735283.4     1266.5036\n\
        Difference at 95.0% confidence\n\t9107.6 +/- 3928.6\n";
    let current = stdout(&stats(dir.path(), &["-A", "ref", "new"]));
    assert_eq!(
        current,
        format!("{expected_head}\t1.25419% +/- 0.547037%\n\t(Student's t, pooled s = 2693.69)\n")
    );
    let old = stdout(&stats(dir.path(), &["-A", "--ministat-2015", "ref", "new"]));
    assert_eq!(
        old,
        format!("{expected_head}\t1.25419% +/- 0.540998%\n\t(Student's t, pooled s = 2693.69)\n")
    );
}

#[test]
fn no_difference_vector() {
    let dir = tempfile::tempdir().unwrap();
    write_set(
        dir.path(),
        "ref",
        &[745098.0, 750350.0, 745435.0, 749170.0, 747558.0],
    );
    write_set(
        dir.path(),
        "new",
        &[746521.0, 753781.0, 747320.0, 748941.0, 750853.0],
    );
    for mode in [&[][..], &["--ministat-2015"][..]] {
        let mut args = mode.to_vec();
        args.extend(["ref", "new"]);
        let out = stdout(&stats(dir.path(), &args));
        assert!(
            out.ends_with("\nNo difference proven at 95.0% confidence\n"),
            "{out}"
        );
        assert!(!out.contains("Difference at"), "{out}");
    }
}

/// The man page's iguana/chameleon example, plot included (`-s -w 60`).
#[test]
fn man_page_vector() {
    let dir = tempfile::tempdir().unwrap();
    write_set(
        dir.path(),
        "iguana",
        &[50.0, 200.0, 150.0, 400.0, 750.0, 400.0, 150.0],
    );
    write_set(
        dir.path(),
        "chameleon",
        &[150.0, 400.0, 720.0, 500.0, 930.0],
    );
    let plot_and_vitals = "x iguana\n+ chameleon\n\
        +------------------------------------------------------------+\n\
        |x      *  x            *      +              + x           +|\n\
        | |________M______A_______________|                          |\n\
        |             |________________M__A___________________|      |\n\
        +------------------------------------------------------------+\n\
        \x20   N           Min           Max        Median           Avg        Stddev\n\
        x   7            50           750           200           300     238.04761\n\
        +   5           150           930           500           540     299.08193\n";
    let at95 = stdout(&stats(
        dir.path(),
        &["-s", "-w", "60", "--ministat-2015", "iguana", "chameleon"],
    ));
    assert_eq!(
        at95,
        format!("{plot_and_vitals}No difference proven at 95.0% confidence\n")
    );
    let at80 = stdout(&stats(
        dir.path(),
        &[
            "-s",
            "-w",
            "60",
            "-c",
            "80",
            "--ministat-2015",
            "iguana",
            "chameleon",
        ],
    ));
    assert_eq!(
        at80,
        format!(
            "{plot_and_vitals}Difference at 80.0% confidence\n\t240 +/- 212.215\n\
             \t80% +/- 70.7384%\n\t(Student's t, pooled s = 264.159)\n"
        )
    );
    // The current relative interval differs; the absolute one does not.
    let current = stdout(&stats(
        dir.path(),
        &["-A", "-c", "80", "iguana", "chameleon"],
    ));
    assert!(current.contains("\t240 +/- 212.215\n"), "{current}");
    assert!(!current.contains("70.7384%"), "{current}");
}

#[test]
fn even_median_differs_between_modes() {
    let dir = tempfile::tempdir().unwrap();
    write_set(dir.path(), "a", &[4.0, 1.0, 2.0, 3.0]);
    let current = stdout(&stats(dir.path(), &["-n", "a"]));
    assert!(
        current.contains("x   4             1             4           2.5           2.5"),
        "{current}"
    );
    let old = stdout(&stats(dir.path(), &["-n", "--ministat-2015", "a"]));
    assert!(
        old.contains("x   4             1             4             3           2.5"),
        "{old}"
    );
}

#[test]
fn fewer_than_three_points_is_refused_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("two"), "# two points\n1\n\n2\n").unwrap();
    write_set(dir.path(), "three", &[1.0, 2.0, 3.0]);
    let o = stats(dir.path(), &["three", "two"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(o.stdout.is_empty());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("Dataset two must contain at least 3 data points"),
        "{err}"
    );
}

#[test]
fn bad_input_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    write_set(dir.path(), "a", &[1.0, 2.0, 3.0]);
    std::fs::write(dir.path().join("bad"), "1\n2\n3x\n").unwrap();
    for (args, message) in [
        (&["-c", "97", "a"][..], "No support for confidence level"),
        (&["a", "bad"][..], "Invalid data on line 3 in bad"),
        (&["a", "missing"][..], "Cannot open missing"),
        (
            &["a", "a", "a", "a", "a", "a", "a", "a"][..],
            "Too many datasets",
        ),
    ] {
        let o = stats(dir.path(), args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(message), "{args:?}: {err}");
    }
}

/// |d| == e is no difference: two constant sets with the same value have d = e = 0.
#[test]
fn equal_difference_and_interval_is_no_difference() {
    let dir = tempfile::tempdir().unwrap();
    write_set(dir.path(), "a", &[5.0, 5.0, 5.0]);
    write_set(dir.path(), "b", &[5.0, 5.0, 5.0, 5.0]);
    write_set(dir.path(), "c", &[6.0, 6.0, 6.0]);
    let same = stdout(&stats(dir.path(), &["a", "b"]));
    assert!(same.starts_with("x a\n+ b\n[no plot, span is zero width]\n"));
    assert!(same.ends_with("No difference proven at 95.0% confidence\n"));
    // With e = 0 any d != 0 is proven, so the strict comparison is what decided above.
    let other = stdout(&stats(dir.path(), &["-A", "a", "c"]));
    assert!(
        other.contains("Difference at 95.0% confidence\n\t1 +/- 0\n"),
        "{other}"
    );
}

/// One random data set: a magnitude, a spread, a number of digits, sometimes negative,
/// sometimes coarse enough that points stack in the plot.
fn random_set(rng: &mut fastrand::Rng, n: usize, base: f64, spread: f64, digits: i32) -> Vec<f64> {
    (0..n)
        .map(|_| {
            let v = base * (1.0 + spread * (rng.f64() - 0.5));
            if v == 0.0 {
                return v;
            }
            let scale = 10f64.powi(digits - v.abs().log10().ceil() as i32);
            (v * scale).round() / scale
        })
        .collect()
}

/// The file text: mostly one number a line, sometimes with comments, blank lines, padding
/// and a second column, which ministat skips or ignores.
fn set_text(rng: &mut fastrand::Rng, values: &[f64]) -> String {
    let fancy = rng.u8(0..4) == 0;
    let mut t = String::new();
    if fancy {
        t.push_str("# run results\n\n");
    }
    for v in values {
        if fancy && rng.u8(0..5) == 0 {
            t.push_str(&format!("  {v}\t{}  \n", rng.u32(0..100)));
        } else {
            t.push_str(&format!("{v}\n"));
        }
    }
    t
}

#[test]
fn matches_debian_ministat_byte_for_byte() {
    let Ok(ministat) = which::which("ministat") else {
        eprintln!(
            "NOTE: ministat is not on PATH; the comparison with Debian's ministat is skipped"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut rng = fastrand::Rng::with_seed(20150715);
    let confidences = ["80", "90", "95", "98", "99", "99.5"];
    let mut proven = 0;
    let cases = 200 + 30;
    for case in 0..cases {
        // 200 pairs, then 30 cases of 3 to 7 sets of up to 60 points.
        let sets = if case < 200 { 2 } else { rng.usize(3..=7) };
        let base = 10f64.powi(rng.i32(-6..=9)) * if rng.u8(0..8) == 0 { -1.0 } else { 1.0 };
        let spread = [0.001, 0.01, 0.1, 0.5, 2.0][rng.usize(0..5)];
        let digits = rng.i32(1..=9);
        let shift = [0.0, 0.001, 0.01, 0.05, 0.2][rng.usize(0..5)];
        let mut names = Vec::new();
        for s in 0..sets {
            // Pairs of 3 to 40 points; the larger groups reach df 118 (past the table's 100
            // rows, into its infinity row).
            let n = rng.usize(3..=if sets == 2 { 40 } else { 60 });
            let b = base * (1.0 + shift * s as f64);
            let values = random_set(&mut rng, n, b, spread, digits);
            let name = format!("c{case}s{s}");
            std::fs::write(dir.path().join(&name), set_text(&mut rng, &values)).unwrap();
            names.push(name);
        }
        let c = confidences[rng.usize(0..confidences.len())];
        let mut args: Vec<String> = vec!["-c".into(), c.into()];
        if case >= 200 && rng.bool() {
            args.push("-s".into());
        }
        if rng.u8(0..10) == 0 {
            args.extend(["-w".into(), rng.usize(20..120).to_string()]);
        }
        args.extend(names.iter().cloned());
        let theirs = Command::new(&ministat)
            .args(&args)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let mut ours_args = vec!["--ministat-2015"];
        ours_args.extend(args.iter().map(String::as_str));
        let ours = stats(dir.path(), &ours_args);
        assert_eq!(ours.status.code(), theirs.status.code(), "{args:?}");
        let (o, t) = (
            String::from_utf8_lossy(&ours.stdout),
            String::from_utf8_lossy(&theirs.stdout),
        );
        assert_eq!(o, t, "case {case}: ministat {}", args.join(" "));
        if t.contains("Difference at") {
            proven += 1;
        }
    }
    // The cases must exercise both outcomes, or the comparison proves little.
    assert!(
        proven > 20 && proven < cases - 20,
        "{proven} of {cases} proven"
    );
}
