//! `iser-wizard stats`: ministat(1) itself, digit for digit (METHOD.md, CONTRACT.md).
//!
//! Contract: given 1 to 7 data sets (one number per line; blank lines and lines whose first
//! word starts with `#` skipped; only the first space- or tab-separated word of a line is
//! read), the output is byte for byte what FreeBSD's `ministat` prints for the same files
//! and flags: the legend, the ASCII plot (unless `-n`/`-A`), the Vitals table, and for each
//! set after the first (the reference) a Student's t comparison at the chosen confidence.
//! [`Mode::Current`] is ministat as FreeBSD has computed it since 2016 (two-pass variance,
//! even-n median as the mean of the two middle points, Colin Percival's relative interval);
//! [`Mode::Ministat2015`] is the 2015 program that Debian's `ministat` package ships
//! (one-pass variance `(syy - sy*sy/n)/(n-1)`, median `points[n/2]`, relative interval
//! `e*100/avg_ref`). The floating-point operations are done in C's order, so the last digit
//! agrees too. Deliberate departures: values that are not finite are refused as invalid data
//! (ministat's plot indexes memory with them), and a plot narrower than 2 columns is refused.
//!
//! The Student's t table and the formulas are those of ministat.c (Poul-Henning Kamp,
//! beer-ware licence), re-expressed here.

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;

use clap::Args;

use crate::cfmt;
use crate::exit::WizardError;

/// The confidence levels of the t table's columns, in percent.
pub const CONFIDENCES: [f64; 6] = [80.0, 90.0, 95.0, 98.0, 99.0, 99.5];

/// Row 0 is df = infinity (used for df > 100); row k is df = k.
// 2.718 (df 11, 98 %) is a t quantile that happens to look like e.
#[allow(clippy::approx_constant)]
const STUDENT: [[f64; 6]; 101] = [
    [1.282, 1.645, 1.960, 2.326, 2.576, 3.090],      // inf
    [3.078, 6.314, 12.706, 31.821, 63.657, 318.313], // 1
    [1.886, 2.920, 4.303, 6.965, 9.925, 22.327],     // 2
    [1.638, 2.353, 3.182, 4.541, 5.841, 10.215],     // 3
    [1.533, 2.132, 2.776, 3.747, 4.604, 7.173],      // 4
    [1.476, 2.015, 2.571, 3.365, 4.032, 5.893],      // 5
    [1.440, 1.943, 2.447, 3.143, 3.707, 5.208],      // 6
    [1.415, 1.895, 2.365, 2.998, 3.499, 4.782],      // 7
    [1.397, 1.860, 2.306, 2.896, 3.355, 4.499],      // 8
    [1.383, 1.833, 2.262, 2.821, 3.250, 4.296],      // 9
    [1.372, 1.812, 2.228, 2.764, 3.169, 4.143],      // 10
    [1.363, 1.796, 2.201, 2.718, 3.106, 4.024],      // 11
    [1.356, 1.782, 2.179, 2.681, 3.055, 3.929],      // 12
    [1.350, 1.771, 2.160, 2.650, 3.012, 3.852],      // 13
    [1.345, 1.761, 2.145, 2.624, 2.977, 3.787],      // 14
    [1.341, 1.753, 2.131, 2.602, 2.947, 3.733],      // 15
    [1.337, 1.746, 2.120, 2.583, 2.921, 3.686],      // 16
    [1.333, 1.740, 2.110, 2.567, 2.898, 3.646],      // 17
    [1.330, 1.734, 2.101, 2.552, 2.878, 3.610],      // 18
    [1.328, 1.729, 2.093, 2.539, 2.861, 3.579],      // 19
    [1.325, 1.725, 2.086, 2.528, 2.845, 3.552],      // 20
    [1.323, 1.721, 2.080, 2.518, 2.831, 3.527],      // 21
    [1.321, 1.717, 2.074, 2.508, 2.819, 3.505],      // 22
    [1.319, 1.714, 2.069, 2.500, 2.807, 3.485],      // 23
    [1.318, 1.711, 2.064, 2.492, 2.797, 3.467],      // 24
    [1.316, 1.708, 2.060, 2.485, 2.787, 3.450],      // 25
    [1.315, 1.706, 2.056, 2.479, 2.779, 3.435],      // 26
    [1.314, 1.703, 2.052, 2.473, 2.771, 3.421],      // 27
    [1.313, 1.701, 2.048, 2.467, 2.763, 3.408],      // 28
    [1.311, 1.699, 2.045, 2.462, 2.756, 3.396],      // 29
    [1.310, 1.697, 2.042, 2.457, 2.750, 3.385],      // 30
    [1.309, 1.696, 2.040, 2.453, 2.744, 3.375],      // 31
    [1.309, 1.694, 2.037, 2.449, 2.738, 3.365],      // 32
    [1.308, 1.692, 2.035, 2.445, 2.733, 3.356],      // 33
    [1.307, 1.691, 2.032, 2.441, 2.728, 3.348],      // 34
    [1.306, 1.690, 2.030, 2.438, 2.724, 3.340],      // 35
    [1.306, 1.688, 2.028, 2.434, 2.719, 3.333],      // 36
    [1.305, 1.687, 2.026, 2.431, 2.715, 3.326],      // 37
    [1.304, 1.686, 2.024, 2.429, 2.712, 3.319],      // 38
    [1.304, 1.685, 2.023, 2.426, 2.708, 3.313],      // 39
    [1.303, 1.684, 2.021, 2.423, 2.704, 3.307],      // 40
    [1.303, 1.683, 2.020, 2.421, 2.701, 3.301],      // 41
    [1.302, 1.682, 2.018, 2.418, 2.698, 3.296],      // 42
    [1.302, 1.681, 2.017, 2.416, 2.695, 3.291],      // 43
    [1.301, 1.680, 2.015, 2.414, 2.692, 3.286],      // 44
    [1.301, 1.679, 2.014, 2.412, 2.690, 3.281],      // 45
    [1.300, 1.679, 2.013, 2.410, 2.687, 3.277],      // 46
    [1.300, 1.678, 2.012, 2.408, 2.685, 3.273],      // 47
    [1.299, 1.677, 2.011, 2.407, 2.682, 3.269],      // 48
    [1.299, 1.677, 2.010, 2.405, 2.680, 3.265],      // 49
    [1.299, 1.676, 2.009, 2.403, 2.678, 3.261],      // 50
    [1.298, 1.675, 2.008, 2.402, 2.676, 3.258],      // 51
    [1.298, 1.675, 2.007, 2.400, 2.674, 3.255],      // 52
    [1.298, 1.674, 2.006, 2.399, 2.672, 3.251],      // 53
    [1.297, 1.674, 2.005, 2.397, 2.670, 3.248],      // 54
    [1.297, 1.673, 2.004, 2.396, 2.668, 3.245],      // 55
    [1.297, 1.673, 2.003, 2.395, 2.667, 3.242],      // 56
    [1.297, 1.672, 2.002, 2.394, 2.665, 3.239],      // 57
    [1.296, 1.672, 2.002, 2.392, 2.663, 3.237],      // 58
    [1.296, 1.671, 2.001, 2.391, 2.662, 3.234],      // 59
    [1.296, 1.671, 2.000, 2.390, 2.660, 3.232],      // 60
    [1.296, 1.670, 2.000, 2.389, 2.659, 3.229],      // 61
    [1.295, 1.670, 1.999, 2.388, 2.657, 3.227],      // 62
    [1.295, 1.669, 1.998, 2.387, 2.656, 3.225],      // 63
    [1.295, 1.669, 1.998, 2.386, 2.655, 3.223],      // 64
    [1.295, 1.669, 1.997, 2.385, 2.654, 3.220],      // 65
    [1.295, 1.668, 1.997, 2.384, 2.652, 3.218],      // 66
    [1.294, 1.668, 1.996, 2.383, 2.651, 3.216],      // 67
    [1.294, 1.668, 1.995, 2.382, 2.650, 3.214],      // 68
    [1.294, 1.667, 1.995, 2.382, 2.649, 3.213],      // 69
    [1.294, 1.667, 1.994, 2.381, 2.648, 3.211],      // 70
    [1.294, 1.667, 1.994, 2.380, 2.647, 3.209],      // 71
    [1.293, 1.666, 1.993, 2.379, 2.646, 3.207],      // 72
    [1.293, 1.666, 1.993, 2.379, 2.645, 3.206],      // 73
    [1.293, 1.666, 1.993, 2.378, 2.644, 3.204],      // 74
    [1.293, 1.665, 1.992, 2.377, 2.643, 3.202],      // 75
    [1.293, 1.665, 1.992, 2.376, 2.642, 3.201],      // 76
    [1.293, 1.665, 1.991, 2.376, 2.641, 3.199],      // 77
    [1.292, 1.665, 1.991, 2.375, 2.640, 3.198],      // 78
    [1.292, 1.664, 1.990, 2.374, 2.640, 3.197],      // 79
    [1.292, 1.664, 1.990, 2.374, 2.639, 3.195],      // 80
    [1.292, 1.664, 1.990, 2.373, 2.638, 3.194],      // 81
    [1.292, 1.664, 1.989, 2.373, 2.637, 3.193],      // 82
    [1.292, 1.663, 1.989, 2.372, 2.636, 3.191],      // 83
    [1.292, 1.663, 1.989, 2.372, 2.636, 3.190],      // 84
    [1.292, 1.663, 1.988, 2.371, 2.635, 3.189],      // 85
    [1.291, 1.663, 1.988, 2.370, 2.634, 3.188],      // 86
    [1.291, 1.663, 1.988, 2.370, 2.634, 3.187],      // 87
    [1.291, 1.662, 1.987, 2.369, 2.633, 3.185],      // 88
    [1.291, 1.662, 1.987, 2.369, 2.632, 3.184],      // 89
    [1.291, 1.662, 1.987, 2.368, 2.632, 3.183],      // 90
    [1.291, 1.662, 1.986, 2.368, 2.631, 3.182],      // 91
    [1.291, 1.662, 1.986, 2.368, 2.630, 3.181],      // 92
    [1.291, 1.661, 1.986, 2.367, 2.630, 3.180],      // 93
    [1.291, 1.661, 1.986, 2.367, 2.629, 3.179],      // 94
    [1.291, 1.661, 1.985, 2.366, 2.629, 3.178],      // 95
    [1.290, 1.661, 1.985, 2.366, 2.628, 3.177],      // 96
    [1.290, 1.661, 1.985, 2.365, 2.627, 3.176],      // 97
    [1.290, 1.661, 1.984, 2.365, 2.627, 3.175],      // 98
    [1.290, 1.660, 1.984, 2.365, 2.626, 3.175],      // 99
    [1.290, 1.660, 1.984, 2.364, 2.626, 3.174],      // 100
];

/// The plot symbols: index k is a cell holding points of the sets whose bits make k; the
/// legend and Vitals use index i+1 for set i.
const SYMBOL: [u8; 8] = [b' ', b'x', b'+', b'*', b'%', b'#', b'@', b'O'];

/// At most this many data sets (one symbol each).
pub const MAX_SETS: usize = 7;

/// Which ministat to reproduce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// FreeBSD's ministat since its 2016 changes.
    #[default]
    Current,
    /// ministat as of 2015 (Debian's `ministat` package).
    Ministat2015,
}

/// Why the statistics could not be computed; each is a usage error (exit 2), as in ministat.
#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    /// A file could not be read.
    #[error("Cannot open {name}: {source}")]
    Open {
        /// The file as named on the command line.
        name: String,
        /// Why.
        source: std::io::Error,
    },
    /// A line's first word is not a number (or not a finite one).
    #[error("Invalid data on line {line} in {name}")]
    InvalidData {
        /// 1-based line number.
        line: usize,
        /// The file.
        name: String,
    },
    /// Fewer than 3 numbers.
    #[error("Dataset {0} must contain at least 3 data points")]
    TooFew(String),
    /// `-c` is not one of the table's columns.
    #[error(
        "-c {0}: No support for confidence level; confidence = {{80%, 90%, 95%, 98%, 99%, 99.5%}}"
    )]
    Confidence(String),
    /// More sets than symbols.
    #[error("Too many datasets ({0}): at most 7")]
    TooMany(usize),
    /// A plot needs two columns at least.
    #[error("-w {0}: the plot needs a width of at least 2")]
    Width(usize),
}

/// One data set: its points sorted, and the sums ministat keeps in file order (the average
/// is `sum / n` with the sum taken in file order, which decides the last digit).
#[derive(Debug, Clone)]
pub struct Dataset {
    name: String,
    points: Vec<f64>,
    sy: f64,
    syy: f64,
}

/// C's `strtod` on a whole word: `None` unless every byte is consumed. The C library's own
/// parser is used so that what ministat accepts (hex floats, leading `+`, `inf`) is accepted
/// alike.
fn strtod(word: &[u8]) -> Option<f64> {
    let c = std::ffi::CString::new(word).ok()?;
    let mut end: *mut libc::c_char = std::ptr::null_mut();
    // SAFETY: `c` is a NUL-terminated string that outlives the call; `end` receives a
    // pointer into it.
    let v = unsafe { libc::strtod(c.as_ptr(), &mut end) };
    // SAFETY: strtod sets `end` within `c`'s buffer (at its start when nothing is parsed).
    let used = unsafe { end.offset_from(c.as_ptr()) } as usize;
    (used == word.len() && !word.is_empty()).then_some(v)
}

impl Dataset {
    /// Read a set from a file's bytes, as ministat's `ReadSet` does with column 1 and the
    /// delimiters space and tab.
    pub fn parse(name: &str, bytes: &[u8]) -> Result<Self, StatsError> {
        let mut points = Vec::new();
        let (mut sy, mut syy) = (0.0f64, 0.0f64);
        let mut lines = bytes.split(|b| *b == b'\n').peekable();
        let mut number = 0;
        while let Some(line) = lines.next() {
            // split() yields an empty piece after a final newline: fgets never sees it.
            if line.is_empty() && lines.peek().is_none() {
                break;
            }
            number += 1;
            // fgets stops at a NUL for strlen's purposes.
            let line = line.split(|b| *b == 0).next().unwrap_or_default();
            let mut end = line.len();
            while end > 0 && matches!(line[end - 1], b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) {
                end -= 1;
            }
            let Some(word) = line[..end]
                .split(|b| *b == b' ' || *b == b'\t')
                .find(|w| !w.is_empty())
            else {
                continue;
            };
            if word[0] == b'#' {
                continue;
            }
            let v =
                strtod(word)
                    .filter(|v| v.is_finite())
                    .ok_or_else(|| StatsError::InvalidData {
                        line: number,
                        name: name.to_string(),
                    })?;
            points.push(v);
            sy += v;
            syy += v * v;
        }
        if points.len() < 3 {
            return Err(StatsError::TooFew(name.to_string()));
        }
        points.sort_by(|a, b| a.partial_cmp(b).expect("finite values compare"));
        Ok(Dataset {
            name: name.to_string(),
            points,
            sy,
            syy,
        })
    }

    /// The name shown in the legend.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Number of points.
    pub fn n(&self) -> usize {
        self.points.len()
    }

    /// Smallest point.
    pub fn min(&self) -> f64 {
        self.points[0]
    }

    /// Largest point.
    pub fn max(&self) -> f64 {
        self.points[self.n() - 1]
    }

    /// Mean: the file-order sum over n.
    pub fn avg(&self) -> f64 {
        self.sy / self.n() as f64
    }

    /// Median; for an even n the mean of the middle two, or (2015) the upper middle point.
    pub fn median(&self, mode: Mode) -> f64 {
        let m = self.n() / 2;
        if mode == Mode::Current && self.n() % 2 == 0 {
            (self.points[m] + self.points[m - 1]) / 2.0
        } else {
            self.points[m]
        }
    }

    /// Sample variance: two-pass over the sorted points, or (2015) one-pass from the sums.
    pub fn var(&self, mode: Mode) -> f64 {
        let n = self.n() as f64;
        match mode {
            Mode::Current => {
                let a = self.avg();
                let mut s = 0.0;
                for p in &self.points {
                    s += (p - a) * (p - a);
                }
                s / (n - 1.0)
            }
            Mode::Ministat2015 => (self.syy - self.sy * self.sy / n) / (n - 1.0),
        }
    }

    /// Standard deviation (NaN when a 2015 one-pass variance comes out negative, as there).
    pub fn stddev(&self, mode: Mode) -> f64 {
        self.var(mode).sqrt()
    }
}

/// A Student's t comparison of a set with the reference, as ministat's `Relative` computes it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Comparison {
    /// Index into [`CONFIDENCES`].
    pub confidence: usize,
    /// avg_new - avg_ref.
    pub difference: f64,
    /// Half-width of the confidence interval of the difference.
    pub interval: f64,
    /// The difference in percent of the reference average.
    pub relative: f64,
    /// The half-width of the relative interval, in percent.
    pub relative_interval: f64,
    /// The pooled standard deviation.
    pub pooled: f64,
}

impl Comparison {
    /// Whether a difference is proven: `|d| > e`, strictly.
    pub fn proven(&self) -> bool {
        self.difference.abs() > self.interval
    }
}

/// The t value ministat uses for `df` degrees of freedom (the infinity row past 100).
pub fn student_t(df: usize, confidence: usize) -> f64 {
    if df > 100 {
        STUDENT[0][confidence]
    } else {
        STUDENT[df][confidence]
    }
}

/// Compare `new` with the reference `rs` at `CONFIDENCES[confidence]`.
pub fn compare(new: &Dataset, rs: &Dataset, confidence: usize, mode: Mode) -> Comparison {
    let (nd, nr) = (new.n(), rs.n());
    let t = student_t(nd + nr - 2, confidence);
    let (vd, vr) = (new.var(mode), rs.var(mode));
    let (ad, ar) = (new.avg(), rs.avg());
    let mut spool = (nd - 1) as f64 * vd + (nr - 1) as f64 * vr;
    spool /= (nd + nr - 2) as f64;
    let spool = spool.sqrt();
    let s = spool * (1.0 / nd as f64 + 1.0 / nr as f64).sqrt();
    let d = ad - ar;
    let e = t * s;
    let re = match mode {
        Mode::Current => {
            // Same association as the C expression: a + ((b * c) * (ad*ad)) / (ar*ar).
            let mut re = (nd - 1) as f64 * vd + (nr - 1) as f64 * vr * (ad * ad) / (ar * ar);
            re *= (nd + nr) as f64 / ((nd * nr) as f64 * (nd as f64 + nr as f64 - 2.0));
            t * re.sqrt()
        }
        Mode::Ministat2015 => e,
    };
    Comparison {
        confidence,
        difference: d,
        interval: e,
        relative: d * 100.0 / ar,
        relative_interval: re * 100.0 / ar,
        pooled: spool,
    }
}

/// What to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Index into [`CONFIDENCES`].
    pub confidence: usize,
    /// Which ministat.
    pub mode: Mode,
    /// Draw the plot (`-n` and `-A` turn it off).
    pub plot: bool,
    /// Print the comparisons (`-n` turns them off).
    pub compare: bool,
    /// The plot's width inside its frame.
    pub width: usize,
    /// Average/median/stddev bars on one line per set (`-s`).
    pub separate_bars: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            confidence: 2,
            mode: Mode::Current,
            plot: true,
            compare: true,
            width: 74,
            separate_bars: false,
        }
    }
}

/// The index of `CONFIDENCES` for a `-c` argument, compared as ministat does (strtod, exact).
pub fn confidence_index(arg: &str) -> Result<usize, StatsError> {
    let v = strtod(arg.as_bytes()).ok_or_else(|| StatsError::Confidence(arg.to_string()))?;
    CONFIDENCES
        .iter()
        .position(|c| *c == v)
        .ok_or_else(|| StatsError::Confidence(arg.to_string()))
}

/// ministat's plot state, kept as the C program keeps it (including its quirk that a later
/// set with fewer stacked points lowers the plot's height).
struct Plot {
    min: f64,
    max: f64,
    span: f64,
    width: usize,
    x0: f64,
    dx: f64,
    height: usize,
    data: Vec<u8>,
    bars: Vec<Option<Vec<u8>>>,
    separate: bool,
    /// A column fell outside the plot (only with values whose span overflows a double).
    broken: bool,
}

impl Plot {
    fn new(width: usize, separate: bool, sets: usize) -> Self {
        Plot {
            min: 999e99,
            max: -999e99,
            span: 0.0,
            width,
            x0: 0.0,
            dx: 0.0,
            height: 0,
            data: Vec::new(),
            bars: vec![None; sets],
            separate,
            broken: false,
        }
    }

    fn adjust(&mut self, a: f64) {
        if a < self.min {
            self.min = a;
        }
        if a > self.max {
            self.max = a;
        }
        self.span = self.max - self.min;
        self.dx = self.span / (self.width as f64 - 1.0);
        self.x0 = self.min - 0.5 * self.dx;
    }

    fn dimension(&mut self, ds: &Dataset, mode: Mode) {
        self.adjust(ds.min());
        self.adjust(ds.max());
        self.adjust(ds.avg() - ds.stddev(mode));
        self.adjust(ds.avg() + ds.stddev(mode));
    }

    /// The column of a value: C's truncating conversion; `None` outside the plot.
    fn column(&mut self, v: f64) -> Option<usize> {
        let x = ((v - self.x0) / self.dx).trunc();
        if x >= 0.0 && x < self.width as f64 {
            Some(x as usize)
        } else {
            self.broken = true;
            None
        }
    }

    fn add(&mut self, ds: &Dataset, val: u8, mode: Mode) {
        if self.span == 0.0 {
            return;
        }
        let bar = if self.separate { val as usize - 1 } else { 0 };
        let width = self.width;
        if self.bars[bar].is_none() {
            self.bars[bar] = Some(vec![0; width]);
        }
        let columns: Vec<Option<usize>> = ds.points.iter().map(|p| self.column(*p)).collect();
        if self.broken {
            return;
        }
        let columns: Vec<usize> = columns.into_iter().flatten().collect();
        // The tallest stack of points sharing a column, plus one.
        let (mut m, mut j, mut i) = (1usize, 0usize, None);
        for x in &columns {
            if i == Some(*x) {
                j += 1;
                m = m.max(j);
            } else {
                j = 1;
                i = Some(*x);
            }
        }
        m += 1;
        if m > self.height {
            // realloc to width*m, then zero the rows from the current height up.
            self.data.resize(width * m, 0);
            self.data[self.height * width..m * width].fill(0);
        }
        self.height = m;
        let mut i = None;
        for x in &columns {
            if i == Some(*x) {
                j += 1;
            } else {
                j = 1;
                i = Some(*x);
            }
            self.data[j * width + x] |= val;
        }
        let (av, sd) = (ds.avg(), ds.stddev(mode));
        let mut marks = Vec::new();
        if !sd.is_nan() {
            marks.push((self.column(av - sd), self.column(av + sd)));
        }
        let median = self.column(ds.median(mode));
        let avg = self.column(av);
        if self.broken {
            return;
        }
        let line = self.bars[bar].as_mut().expect("allocated above");
        for (lo, hi) in marks {
            let (lo, hi) = (lo.expect("checked"), hi.expect("checked"));
            line[hi] = b'|';
            line[lo] = b'|';
            for c in line.iter_mut().take(hi).skip(lo + 1) {
                if *c == 0 {
                    *c = b'_';
                }
            }
        }
        line[median.expect("checked")] = b'M';
        line[avg.expect("checked")] = b'A';
    }

    fn render(&self, out: &mut String) {
        if self.span == 0.0 {
            out.push_str("[no plot, span is zero width]\n");
            return;
        }
        if self.broken {
            out.push_str("[no plot, values too far apart to draw]\n");
            return;
        }
        let border = format!("+{}+\n", "-".repeat(self.width));
        out.push_str(&border);
        for z in 1..self.height {
            out.push('|');
            let row = (self.height - z) * self.width;
            for k in &self.data[row..row + self.width] {
                out.push(SYMBOL[*k as usize] as char);
            }
            out.push_str("|\n");
        }
        for line in self.bars.iter().flatten() {
            out.push('|');
            for k in line {
                out.push(if *k == 0 { ' ' } else { *k as char });
            }
            out.push_str("|\n");
        }
        out.push_str(&border);
    }
}

/// The whole output of ministat for these sets (the first is the reference).
pub fn render(sets: &[Dataset], opts: &Options) -> String {
    let mode = opts.mode;
    let mut out = String::new();
    for (i, ds) in sets.iter().enumerate() {
        out.push(SYMBOL[i + 1] as char);
        out.push(' ');
        out.push_str(&ds.name);
        out.push('\n');
    }
    if opts.plot && opts.compare {
        let mut plot = Plot::new(opts.width, opts.separate_bars, sets.len());
        for ds in sets {
            plot.dimension(ds, mode);
        }
        for (i, ds) in sets.iter().enumerate() {
            plot.add(ds, i as u8 + 1, mode);
        }
        plot.render(&mut out);
    }
    out.push_str("    N           Min           Max        Median           Avg        Stddev\n");
    let vitals = |out: &mut String, ds: &Dataset, i: usize| {
        out.push_str(&format!(
            "{} {:>3} {} {} {} {} {}\n",
            SYMBOL[i + 1] as char,
            ds.n(),
            cfmt::g(ds.min(), 13, 8),
            cfmt::g(ds.max(), 13, 8),
            cfmt::g(ds.median(mode), 13, 8),
            cfmt::g(ds.avg(), 13, 8),
            cfmt::g(ds.stddev(mode), 13, 8),
        ));
    };
    vitals(&mut out, &sets[0], 0);
    for (i, ds) in sets.iter().enumerate().skip(1) {
        vitals(&mut out, ds, i);
        if opts.compare {
            let c = compare(ds, &sets[0], opts.confidence, mode);
            let pct = CONFIDENCES[c.confidence];
            if c.proven() {
                out.push_str(&format!("Difference at {pct:.1}% confidence\n"));
                out.push_str(&format!(
                    "\t{} +/- {}\n",
                    cfmt::g6(c.difference),
                    cfmt::g6(c.interval)
                ));
                out.push_str(&format!(
                    "\t{}% +/- {}%\n",
                    cfmt::g6(c.relative),
                    cfmt::g6(c.relative_interval)
                ));
                out.push_str(&format!(
                    "\t(Student's t, pooled s = {})\n",
                    cfmt::g6(c.pooled)
                ));
            } else {
                out.push_str(&format!("No difference proven at {pct:.1}% confidence\n"));
            }
        }
    }
    out
}

/// Flags of `stats` (ministat's, plus the choice of ministat).
#[derive(Debug, Args)]
#[command(
    after_help = "Each FILE holds one number per line (only a line's first word is read; lines \
                  starting with # are skipped); `-` reads standard input. The first FILE is the \
                  reference. The output, plot included, is ministat(1)'s byte for byte."
)]
pub struct StatsFlags {
    /// Confidence level in percent: 80, 90, 95, 98, 99 or 99.5.
    #[arg(short = 'c', value_name = "CONF", default_value = "95")]
    pub confidence: String,
    /// Print the relative interval, median and variance as ministat did before its 2016
    /// changes (what Debian's `ministat` package prints).
    #[arg(long = "ministat-2015")]
    pub ministat_2015: bool,
    /// Statistics only: no plot and no comparison.
    #[arg(short = 'n')]
    pub summary_only: bool,
    /// No plot; statistics and comparisons.
    #[arg(short = 'A')]
    pub no_plot: bool,
    /// Average/median/stddev bars of the plot on separate lines.
    #[arg(short = 's')]
    pub separate_bars: bool,
    /// Width of the plot (default on a terminal: $COLUMNS, else its width less 2; else 74).
    #[arg(short = 'w', value_name = "WIDTH")]
    pub width: Option<usize>,
    /// The data sets, at most 7; the first is the reference.
    #[arg(value_name = "FILE", required = true, num_args = 1..)]
    pub files: Vec<PathBuf>,
}

/// The plot width ministat would choose: $COLUMNS or the terminal's width less 2 on a
/// terminal, else 74.
fn default_width() -> usize {
    let stdout = std::io::stdout();
    if !stdout.is_terminal() {
        return 74;
    }
    if let Some(cols) = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
    {
        return cols;
    }
    match terminal_size::terminal_size_of(&stdout) {
        Some((terminal_size::Width(w), _)) if w > 0 => usize::from(w).saturating_sub(2),
        _ => 74,
    }
}

/// Validate the flags, read the sets and compute the output; touches nothing.
pub fn output(f: &StatsFlags) -> Result<String, StatsError> {
    let confidence = confidence_index(&f.confidence)?;
    if f.files.len() > MAX_SETS {
        return Err(StatsError::TooMany(f.files.len()));
    }
    let plot = !f.summary_only && !f.no_plot;
    let width = f.width.unwrap_or_else(default_width);
    if plot && width < 2 {
        return Err(StatsError::Width(width));
    }
    let mut sets = Vec::new();
    for path in &f.files {
        let (name, bytes) = if path.as_os_str() == "-" {
            let mut b = Vec::new();
            std::io::stdin()
                .read_to_end(&mut b)
                .map_err(|source| StatsError::Open {
                    name: "<stdin>".into(),
                    source,
                })?;
            ("<stdin>".to_string(), b)
        } else {
            let name = path.to_string_lossy().into_owned();
            let b = std::fs::read(path).map_err(|source| StatsError::Open {
                name: name.clone(),
                source,
            })?;
            (name, b)
        };
        sets.push(Dataset::parse(&name, &bytes)?);
    }
    let opts = Options {
        confidence,
        mode: if f.ministat_2015 {
            Mode::Ministat2015
        } else {
            Mode::Current
        },
        plot: !f.no_plot,
        compare: !f.summary_only,
        width,
        separate_bars: f.separate_bars,
    };
    Ok(render(&sets, &opts))
}

/// `iser-wizard stats`: print ministat's output; every error is a usage error (exit 2).
pub fn run(f: &StatsFlags, out: &mut dyn Write) -> Result<(), WizardError> {
    let text = output(f).map_err(|e| WizardError::Usage(e.to_string()))?;
    out.write_all(text.as_bytes())
        .map_err(|e| WizardError::Other(anyhow::Error::new(e).context("writing the statistics")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(name: &str, values: &[f64]) -> Dataset {
        let text: String = values.iter().map(|v| format!("{v}\n")).collect();
        Dataset::parse(name, text.as_bytes()).unwrap()
    }

    #[test]
    fn t_table_as_published() {
        let col95: Vec<f64> = (1..=10).map(|df| student_t(df, 2)).collect();
        assert_eq!(
            col95,
            [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228]
        );
        assert_eq!(STUDENT[0], [1.282, 1.645, 1.960, 2.326, 2.576, 3.090]);
        assert_eq!(STUDENT[1][5], 318.313);
        assert_eq!(STUDENT[100], [1.290, 1.660, 1.984, 2.364, 2.626, 3.174]);
        // A mistyped entry would most likely break the table's order down or across.
        for df in 1..=100 {
            for c in 0..6 {
                if df < 100 {
                    assert!(STUDENT[df][c] >= STUDENT[df + 1][c], "df {df} col {c}");
                }
                assert!(STUDENT[df][c] > STUDENT[0][c]);
                if c < 5 {
                    assert!(STUDENT[df][c] < STUDENT[df][c + 1]);
                }
            }
        }
    }

    #[test]
    fn df_over_100_uses_the_infinity_row() {
        assert_eq!(student_t(100, 2), 1.984);
        assert_eq!(student_t(101, 2), 1.960);
        assert_eq!(student_t(5000, 0), 1.282);
        // 52 + 51 points: df = 101.
        let a: Vec<f64> = (0..52).map(|i| 1000.0 + (i * 7 % 13) as f64).collect();
        let b: Vec<f64> = (0..51).map(|i| 1003.0 + (i * 5 % 11) as f64).collect();
        let (a, b) = (set("a", &a), set("b", &b));
        for mode in [Mode::Current, Mode::Ministat2015] {
            let c = compare(&b, &a, 2, mode);
            let s = c.pooled * (1.0 / 51.0 + 1.0 / 52.0f64).sqrt();
            assert_eq!(c.interval, 1.960 * s);
        }
        // 51 + 51 points: df = 100, the last row.
        let a2 = set("a", &a.points[..51]);
        let c = compare(&b, &a2, 2, Mode::Current);
        let s = c.pooled * (1.0 / 51.0 + 1.0 / 51.0f64).sqrt();
        assert_eq!(c.interval, 1.984 * s);
    }

    #[test]
    fn strictly_greater_proves_a_difference() {
        let mut c = Comparison {
            confidence: 2,
            difference: -2.5,
            interval: 2.5,
            relative: 0.0,
            relative_interval: 0.0,
            pooled: 1.0,
        };
        assert!(!c.proven());
        c.interval = 2.4999999;
        assert!(c.proven());
    }

    #[test]
    fn netbenches_vector_both_modes() {
        let r = set("r", &[729817.0, 723531.0, 728540.0, 727669.0, 721322.0]);
        let n = set("n", &[735181.0, 735392.0, 735682.0, 733327.0, 736835.0]);
        let c = compare(&n, &r, 2, Mode::Current);
        assert!(c.proven());
        assert_eq!(cfmt::g6(c.difference), "9107.6");
        assert_eq!(cfmt::g6(c.interval), "3928.6");
        assert_eq!(cfmt::g6(c.relative), "1.25419");
        assert_eq!(cfmt::g6(c.relative_interval), "0.547037");
        assert_eq!(cfmt::g6(c.pooled), "2693.69");
        let old = compare(&n, &r, 2, Mode::Ministat2015);
        assert_eq!(cfmt::g6(old.relative_interval), "0.540998");
        assert_eq!(cfmt::g(r.stddev(Mode::Current), 13, 8), "    3592.7624");
    }

    #[test]
    fn reading_follows_ministat() {
        let text = b"# header\n\n  12\t99\n13 # note\n#14\n15.5\r\n0x10\n";
        let d = Dataset::parse("f", text).unwrap();
        assert_eq!(d.points, [12.0, 13.0, 15.5, 16.0]);
        assert_eq!(d.name(), "f");
        let e = Dataset::parse("g", b"1\n2\nthree\n").unwrap_err();
        assert_eq!(e.to_string(), "Invalid data on line 3 in g");
        assert!(matches!(
            Dataset::parse("g", b"1\n2\nnan\n"),
            Err(StatsError::InvalidData { line: 3, .. })
        ));
        assert_eq!(
            Dataset::parse("h", b"1\n# 2\n3\n").unwrap_err().to_string(),
            "Dataset h must contain at least 3 data points"
        );
    }

    #[test]
    fn confidence_levels() {
        assert_eq!(confidence_index("95").unwrap(), 2);
        assert_eq!(confidence_index("95.0").unwrap(), 2);
        assert_eq!(confidence_index("99.5").unwrap(), 5);
        assert_eq!(confidence_index("80").unwrap(), 0);
        assert!(matches!(
            confidence_index("97"),
            Err(StatsError::Confidence(_))
        ));
        assert!(confidence_index("95%").is_err());
    }

    #[test]
    fn summary_only_prints_no_plot_and_no_test() {
        let r = set("r", &[1.0, 2.0, 3.0]);
        let n = set("n", &[4.0, 5.0, 6.0]);
        let opts = Options {
            plot: false,
            compare: false,
            ..Options::default()
        };
        assert_eq!(
            render(&[r, n], &opts),
            "x r\n+ n\n    N           Min           Max        Median           Avg        Stddev\n\
             x   3             1             3             2             2             1\n\
             +   3             4             6             5             5             1\n"
        );
    }
}
