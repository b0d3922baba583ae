//! What `tune` keeps: the method's rule, as pure functions of the measured values.
//!
//! Contract (METHOD.md "Tuning"): every workload's values of a trial are compared with the
//! reference's by ministat's Student's t at 95 % (`stats::compare`, not recomputed here).
//! Higher is better for every workload (IOPS, bytes/s). A trial *improves* when at least one
//! workload is proven better and none proven worse; it *regresses* when one is proven worse;
//! otherwise nothing is proven. A value is kept only when its trial improved and a second,
//! confirming bench improves again against the same reference. Among a knob's values whose
//! trials improved, the one confirmed first is the one whose proven gains sum highest.

use crate::stats::{self, Comparison, Dataset, Mode};

/// The 95 % column of ministat's table.
pub const CONFIDENCE: usize = 2;

/// One workload's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Proven higher.
    Better,
    /// Proven lower.
    Worse,
    /// No difference proven.
    Same,
}

/// A trial's outcome over its workloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// At least one workload proven better, none proven worse.
    Improves,
    /// At least one workload proven worse.
    Regresses,
    /// Nothing proven.
    NoProof,
}

fn set(name: &str, values: &[f64]) -> Result<Dataset, stats::StatsError> {
    let text: String = values.iter().map(|v| format!("{v}\n")).collect();
    Dataset::parse(name, text.as_bytes())
}

/// ministat's comparison of `new` with `reference`, and its verdict.
pub fn verdict(reference: &[f64], new: &[f64]) -> Result<(Verdict, Comparison), stats::StatsError> {
    let r = set("reference", reference)?;
    let n = set("new", new)?;
    let c = stats::compare(&n, &r, CONFIDENCE, Mode::Current);
    let v = match (c.proven(), c.difference > 0.0) {
        (true, true) => Verdict::Better,
        (true, false) => Verdict::Worse,
        (false, _) => Verdict::Same,
    };
    Ok((v, c))
}

/// The outcome of a trial from its workloads' verdicts.
pub fn outcome(verdicts: &[Verdict]) -> Outcome {
    if verdicts.contains(&Verdict::Worse) {
        Outcome::Regresses
    } else if verdicts.contains(&Verdict::Better) {
        Outcome::Improves
    } else {
        Outcome::NoProof
    }
}

/// Whether a value is kept: its trial and its confirming bench both improved.
pub fn keep(trial: Outcome, confirm: Option<Outcome>) -> bool {
    trial == Outcome::Improves && confirm == Some(Outcome::Improves)
}

/// The score that orders a knob's improving values: the sum of the proven relative gains
/// (percent) of its workloads.
pub fn score(comparisons: &[(Verdict, Comparison)]) -> f64 {
    comparisons
        .iter()
        .filter(|(v, _)| *v == Verdict::Better)
        .map(|(_, c)| c.relative)
        .sum()
}

/// ministat's judgement in a table cell: `+1.25% +/- 0.547%` or `no difference`.
pub fn describe(v: Verdict, c: &Comparison) -> String {
    match v {
        Verdict::Same => "no difference".to_string(),
        _ => format!(
            "{}{}% +/- {}%",
            if c.relative > 0.0 { "+" } else { "" },
            crate::cfmt::g(c.relative, 0, 3),
            crate::cfmt::g(c.relative_interval, 0, 3)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // METHOD.md's vectors: a proven gain, and a difference that is not proven.
    const REF: [f64; 5] = [729817.0, 723531.0, 728540.0, 727669.0, 721322.0];
    const GAIN: [f64; 5] = [735181.0, 735392.0, 735682.0, 733327.0, 736835.0];
    const REF2: [f64; 5] = [745098.0, 750350.0, 745435.0, 749170.0, 747558.0];
    const NOISE: [f64; 5] = [746521.0, 753781.0, 747320.0, 748941.0, 750853.0];

    fn neg(v: &[f64]) -> Vec<f64> {
        // The same spread mirrored below the reference: a proven loss.
        let top = 2.0 * 727000.0;
        v.iter().map(|x| top - x).collect()
    }

    #[test]
    fn verdicts_follow_ministat() {
        let (v, c) = verdict(&REF, &GAIN).unwrap();
        assert_eq!(v, Verdict::Better);
        assert_eq!(crate::cfmt::g6(c.difference), "9107.6");
        assert_eq!(describe(v, &c), "+1.25% +/- 0.547%");
        assert_eq!(verdict(&REF2, &NOISE).unwrap().0, Verdict::Same);
        assert_eq!(verdict(&REF, &neg(&GAIN)).unwrap().0, Verdict::Worse);
        // ministat refuses fewer than 3 points; so does the judgement.
        assert!(verdict(&REF, &[1.0, 2.0]).is_err());
    }

    #[test]
    fn a_value_is_kept_only_when_proven_twice_with_no_proven_regression() {
        use Outcome::*;
        use Verdict::*;
        // (trial verdicts, confirming verdicts, kept)
        type Case<'a> = (&'a [Verdict], Option<&'a [Verdict]>, bool);
        let cases: [Case; 8] = [
            (
                &[Better, Same, Same, Same],
                Some(&[Better, Same, Same, Same]),
                true,
            ),
            (
                &[Better, Same, Same, Same],
                Some(&[Same, Better, Same, Same]),
                true,
            ),
            (
                &[Better, Same, Same, Same],
                Some(&[Same, Same, Same, Same]),
                false,
            ),
            (
                &[Better, Same, Same, Same],
                Some(&[Better, Worse, Same, Same]),
                false,
            ),
            (&[Better, Same, Same, Same], None, false),
            (
                &[Better, Worse, Same, Same],
                Some(&[Better, Same, Same, Same]),
                false,
            ),
            (
                &[Same, Same, Same, Same],
                Some(&[Better, Same, Same, Same]),
                false,
            ),
            (&[Worse, Worse, Worse, Worse], None, false),
        ];
        for (trial, confirm, want) in cases {
            let t = outcome(trial);
            let c = confirm.map(outcome);
            assert_eq!(keep(t, c), want, "{trial:?} then {confirm:?}");
        }
        assert_eq!(outcome(&[]), NoProof);
        assert_eq!(outcome(&[Better, Worse]), Regresses);
    }

    #[test]
    fn from_made_up_data_sets_to_a_decision() {
        // Trial: rand4k-read gains (proven), seq1m-read moves within the noise.
        let trial = [
            verdict(&REF, &GAIN).unwrap(),
            verdict(&REF2, &NOISE).unwrap(),
        ];
        let t = outcome(&trial.map(|(v, _)| v));
        assert_eq!(t, Outcome::Improves);
        assert!((score(&trial) - 1.25419).abs() < 1e-4);
        // The confirming bench shows the gain again: kept.
        let again = [
            verdict(&REF, &GAIN).unwrap().0,
            verdict(&REF2, &REF2).unwrap().0,
        ];
        assert!(keep(t, Some(outcome(&again))));
        // A confirming bench that proves nothing: not kept (a chance difference).
        let again = [
            verdict(&REF, &REF).unwrap().0,
            verdict(&REF2, &NOISE).unwrap().0,
        ];
        assert!(!keep(t, Some(outcome(&again))));
        // A gain paid for by a proven loss elsewhere: not even confirmed.
        let trade = [
            verdict(&REF, &GAIN).unwrap().0,
            verdict(&REF, &neg(&GAIN)).unwrap().0,
        ];
        assert_eq!(outcome(&trade), Outcome::Regresses);
    }
}
