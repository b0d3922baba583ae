//! C's `printf` conversion `%g` (with a field width and precision, as in `%13.8g`), digit for
//! digit as glibc prints it, for output that must match C tools byte for byte (ministat).
//!
//! Contract: [`g`] returns exactly what `printf("%*.*g", width, precision, x)` prints in the C
//! locale: precision 0 means 1; the style is `%e` when the exponent X of the value rounded to
//! P significant digits is below -4 or at least P, else `%f` with P-1-X decimals; trailing
//! zeros and a trailing decimal point are removed; the exponent has a sign and at least two
//! digits; infinities and NaNs print as `inf`/`-inf`/`nan`/`-nan`; the result is
//! right-justified in `width` columns. Rounding is that of the exact binary value, ties to even,
//! which is what both glibc and Rust's exact formatting do.

/// `printf("%*.*g", width, precision, x)`.
pub fn g(x: f64, width: usize, precision: usize) -> String {
    let body = g_body(x, precision);
    format!("{body:>width$}")
}

/// `printf("%g", x)`: precision 6, no field width.
pub fn g6(x: f64) -> String {
    g_body(x, 6)
}

fn g_body(x: f64, precision: usize) -> String {
    if x.is_nan() {
        // glibc keeps the sign bit of a NaN (x86 makes `-nan` from 0/0 and sqrt(-1)).
        return if x.is_sign_negative() { "-nan" } else { "nan" }.to_string();
    }
    if x.is_infinite() {
        return if x < 0.0 { "-inf" } else { "inf" }.to_string();
    }
    let p = precision.max(1);
    // The `%e` form at P significant digits decides the style: its exponent is that of the
    // rounded value (9.9999996 at P=6 becomes 1.00000e+01).
    let e_form = format!("{:.*e}", p - 1, x);
    let (mantissa, exp) = e_form
        .split_once('e')
        .expect("Rust's exponential format has an 'e'");
    let exp: i64 = exp.parse().expect("Rust's exponent is an integer");
    if exp < -4 || exp >= p as i64 {
        let mantissa = strip_zeros(mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.unsigned_abs())
    } else {
        let decimals = (p as i64 - 1 - exp) as usize;
        strip_zeros(&format!("{x:.decimals$}")).to_string()
    }
}

/// Remove trailing zeros after a decimal point, then the point itself if nothing follows.
fn strip_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values where %g has a decision to make: style boundaries (1e-4/1e-5, 1e5/1e6 at P=6),
    /// rounding that carries into a new exponent, exact ties (0.5, 2.5, 0.125), negative zero,
    /// long fractions, huge and tiny magnitudes, subnormals.
    const VALUES: &[f64] = &[
        0.0,
        -0.0,
        1.0,
        -1.0,
        0.5,
        1.5,
        2.5,
        0.125,
        0.375,
        9.5,
        10.5,
        0.0001,
        0.00001,
        0.000123456789,
        0.0000999999999,
        99999.95,
        999999.5,
        999999.4,
        1e5,
        1e6,
        123456.0,
        1234567.0,
        12345678.0,
        123456789.0,
        9.9999996,
        9.99999949,
        99999999.5,
        0.1,
        0.2,
        1.0 / 3.0,
        2.0 / 3.0,
        3592.7624121,
        726175.8,
        9107.6,
        1.25419,
        -0.547037,
        2693.69,
        1e100,
        1.7976931348623157e308,
        5e-324,
        2.2250738585072014e-308,
        -123.456e-10,
        6.02214076e23,
        1e15,
        1e16,
        4503599627370497.0,
        0.30000000000000004,
    ];

    /// The exact value of `x` as a C hexadecimal float: printf(1) reads its arguments as
    /// `long double`, so a decimal argument would not be the same double.
    fn hex(x: f64) -> String {
        let bits = x.to_bits();
        let sign = if x.is_sign_negative() { "-" } else { "" };
        let exp = ((bits >> 52) & 0x7ff) as i64;
        let mant = bits & ((1u64 << 52) - 1);
        match exp {
            0 if mant == 0 => format!("{sign}0x0p+0"),
            0 => format!("{sign}0x0.{mant:013x}p-1022"),
            _ => format!("{sign}0x1.{mant:013x}p{}", exp - 1023),
        }
    }

    #[test]
    fn matches_the_c_library_printf() {
        if which::which("printf").is_err() {
            eprintln!("printf(1) is not on PATH: %g not compared with the C library");
            return;
        }
        // One printf run per format over all values keeps the test fast.
        for (width, precision) in [(0, 6), (13, 8), (0, 1), (0, 0), (0, 3), (13, 17), (5, 2)] {
            let format = format!("%{width}.{precision}g|");
            let fmt_all: String = format.repeat(VALUES.len());
            let args: Vec<String> = VALUES.iter().map(|x| hex(*x)).collect();
            let out = std::process::Command::new("printf")
                .arg(&fmt_all)
                .args(&args)
                .env("LC_ALL", "C")
                .output()
                .expect("printf(1) runs");
            let text = String::from_utf8(out.stdout).unwrap();
            let theirs: Vec<&str> = text.split('|').collect();
            for (i, x) in VALUES.iter().enumerate() {
                assert_eq!(
                    g(*x, width, precision),
                    theirs[i],
                    "%{width}.{precision}g of {x:e}"
                );
            }
        }
    }

    #[test]
    fn matches_printf_on_many_random_values() {
        if which::which("printf").is_err() {
            eprintln!("printf(1) is not on PATH: %g not compared with the C library");
            return;
        }
        let mut rng = fastrand::Rng::with_seed(15);
        let values: Vec<f64> = (0..400)
            .map(|_| {
                let mag = rng.i32(-12..=15);
                let digits = rng.u32(1..=9);
                let scale = 10f64.powi(digits as i32);
                let m = (rng.f64() * scale).round() / scale;
                let sign = if rng.bool() { -1.0 } else { 1.0 };
                sign * m * 10f64.powi(mag)
            })
            .collect();
        for format in ["%g|", "%13.8g|"] {
            let out = std::process::Command::new("printf")
                .arg(format.repeat(values.len()))
                .args(values.iter().map(|x| hex(*x)))
                .env("LC_ALL", "C")
                .output()
                .expect("printf(1) runs");
            let text = String::from_utf8(out.stdout).unwrap();
            for (x, theirs) in values.iter().zip(text.split('|')) {
                let ours = if format == "%g|" {
                    g6(*x)
                } else {
                    g(*x, 13, 8)
                };
                assert_eq!(ours, theirs, "{format} of {x:e}");
            }
        }
    }

    #[test]
    fn special_values() {
        assert_eq!(g6(f64::INFINITY), "inf");
        assert_eq!(g6(f64::NEG_INFINITY), "-inf");
        assert_eq!(g6(f64::NAN), "nan");
        assert_eq!(g6(-f64::NAN), "-nan");
        assert_eq!(g(-f64::NAN, 13, 8), "         -nan");
    }

    #[test]
    fn published_ministat_figures() {
        assert_eq!(g(3592.7624121, 13, 8), "    3592.7624");
        assert_eq!(g(726175.8, 13, 8), "     726175.8");
        assert_eq!(g6(2693.6912), "2693.69");
        assert_eq!(g6(80.0), "80");
        assert_eq!(g6(1e-5), "1e-05");
        assert_eq!(g6(123456789.0), "1.23457e+08");
    }
}
