//! The worksheet as PDF, written in-process with `pdf-writer`: the vendor's tables with their
//! callout numbers circled, then what the wizard learned. What is printed (sections, rows,
//! callouts, blanks) comes from the content model in [`content`](super::content); this module
//! owns only the presentation: fonts, layout, wrapping and pagination. Unknown values print as
//! empty cells, as on the paper form, and a list with no entries as a table with one blank row.
//!
//! Text uses the standard Type1 fonts (Helvetica, Helvetica-Bold, Courier for identifiers)
//! with WinAnsiEncoding, so nothing is embedded and every value stays selectable. Layout
//! measures text with the fonts' AFM widths: cells wrap (long identifiers break anywhere, after
//! punctuation where possible), a table that does not fit continues on the next page with its
//! header repeated, and a row taller than a page is split across pages. Characters WinAnsi
//! cannot show print as `?`; `pdf-writer` escapes `(`, `)` and `\` in every string it writes.

use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str, TextStr};

use super::content::{self, Body, Column, Part, Section, TITLE};
use super::Worksheet;

/// Paper size of the rendered worksheet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Paper {
    /// ISO A4, 210 x 297 mm.
    #[default]
    A4,
    /// US Letter, 8.5 x 11 in.
    Letter,
}

impl Paper {
    /// Width and height in PDF points (1/72 in).
    pub fn size(self) -> (f32, f32) {
        match self {
            Paper::A4 => (595.28, 841.89),
            Paper::Letter => (612.0, 792.0),
        }
    }
}

/// Render the worksheet as a complete PDF file.
pub fn render(w: &Worksheet, paper: Paper) -> Vec<u8> {
    let pages = layout(&blocks(w), paper);
    let footer = match w.host.host_name.as_deref() {
        Some(h) if !h.trim().is_empty() => format!("{TITLE} - {h}"),
        _ => TITLE.to_string(),
    };
    write(&pages, paper, &win_ansi(&footer))
}

// ---------------------------------------------------------------------------------------------
// Fonts and text measurement
// ---------------------------------------------------------------------------------------------

/// The three standard fonts in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Font {
    Regular,
    Bold,
    Mono,
}

impl Font {
    const ALL: [Font; 3] = [Font::Regular, Font::Bold, Font::Mono];

    /// Name in the page's resource dictionary.
    fn resource(self) -> Name<'static> {
        match self {
            Font::Regular => Name(b"F1"),
            Font::Bold => Name(b"F2"),
            Font::Mono => Name(b"F3"),
        }
    }

    /// PostScript name of the standard font.
    fn base(self) -> Name<'static> {
        match self {
            Font::Regular => Name(b"Helvetica"),
            Font::Bold => Name(b"Helvetica-Bold"),
            Font::Mono => Name(b"Courier"),
        }
    }

    /// Advance width of WinAnsi code `b`, in 1/1000 em.
    fn advance(self, b: u8) -> u16 {
        let table = match self {
            // Every Courier glyph is 600 units wide.
            Font::Mono => return 600,
            Font::Regular => &HELVETICA,
            Font::Bold => &HELVETICA_BOLD,
        };
        match b {
            32..=255 => table[usize::from(b - 32)],
            _ => 0,
        }
    }
}

/// Width in points of WinAnsi-encoded `text` set in `font` at `size`.
fn text_width(font: Font, size: f32, text: &[u8]) -> f32 {
    let units: u32 = text.iter().map(|&b| u32::from(font.advance(b))).sum();
    units as f32 * size / 1000.0
}

/// Helvetica advance widths (AFM `WX`) for WinAnsi codes 32..=255, in 1/1000 em. Codes that
/// WinAnsi leaves undefined (127, 129, 141, 143, 144, 157) are 0: `win_ansi` never emits them.
#[rustfmt::skip]
const HELVETICA: [u16; 224] = [
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278, //  32
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556, //  48
    1015, 667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778, // 64
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469, 556, //  80
    333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556, //  96
    556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584, 0,   // 112
    556, 0, 222, 556, 333, 1000, 556, 556, 333, 1000, 667, 333, 1000, 0, 611, 0,    // 128
    0, 222, 222, 333, 333, 350, 556, 1000, 333, 1000, 500, 333, 944, 0, 500, 667,   // 144
    278, 333, 556, 556, 556, 556, 260, 556, 333, 737, 370, 556, 584, 333, 737, 333, // 160
    400, 584, 333, 333, 333, 556, 537, 278, 333, 333, 365, 556, 834, 834, 834, 611, // 176
    667, 667, 667, 667, 667, 667, 1000, 722, 667, 667, 667, 667, 278, 278, 278, 278, // 192
    722, 722, 778, 778, 778, 778, 778, 584, 778, 722, 722, 722, 722, 667, 667, 611, // 208
    556, 556, 556, 556, 556, 556, 889, 500, 556, 556, 556, 556, 278, 278, 278, 278, // 224
    556, 556, 556, 556, 556, 556, 556, 584, 611, 556, 556, 556, 556, 500, 556, 500, // 240
];

/// Helvetica-Bold advance widths for WinAnsi codes 32..=255, as for `HELVETICA`.
#[rustfmt::skip]
const HELVETICA_BOLD: [u16; 224] = [
    278, 333, 474, 556, 556, 889, 722, 238, 333, 333, 389, 584, 278, 333, 278, 278, //  32
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 333, 333, 584, 584, 584, 611, //  48
    975, 722, 722, 722, 722, 667, 611, 778, 722, 278, 556, 722, 611, 833, 722, 778, //  64
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 333, 278, 333, 584, 556, //  80
    333, 556, 611, 556, 611, 556, 333, 611, 611, 278, 278, 556, 278, 889, 611, 611, //  96
    611, 611, 389, 556, 333, 611, 556, 778, 556, 556, 500, 389, 280, 389, 584, 0,   // 112
    556, 0, 278, 556, 500, 1000, 556, 556, 333, 1000, 667, 333, 1000, 0, 611, 0,    // 128
    0, 278, 278, 500, 500, 350, 556, 1000, 333, 1000, 556, 333, 944, 0, 500, 667,   // 144
    278, 333, 556, 556, 556, 556, 280, 556, 333, 737, 370, 556, 584, 333, 737, 333, // 160
    400, 584, 333, 333, 333, 611, 556, 278, 333, 333, 365, 556, 834, 834, 834, 611, // 176
    722, 722, 722, 722, 722, 722, 1000, 722, 667, 667, 667, 667, 278, 278, 278, 278, // 192
    722, 722, 778, 778, 778, 778, 778, 584, 778, 722, 722, 722, 722, 667, 667, 611, // 208
    556, 556, 556, 556, 556, 556, 889, 556, 556, 556, 556, 556, 278, 278, 278, 278, // 224
    611, 611, 611, 611, 611, 611, 611, 584, 611, 611, 611, 611, 611, 556, 611, 556, // 240
];

/// The characters WinAnsi places at 0x80..=0x9F.
const WIN_ANSI_HIGH: [(char, u8); 27] = [
    ('\u{20AC}', 0x80),
    ('\u{201A}', 0x82),
    ('\u{0192}', 0x83),
    ('\u{201E}', 0x84),
    ('\u{2026}', 0x85),
    ('\u{2020}', 0x86),
    ('\u{2021}', 0x87),
    ('\u{02C6}', 0x88),
    ('\u{2030}', 0x89),
    ('\u{0160}', 0x8A),
    ('\u{2039}', 0x8B),
    ('\u{0152}', 0x8C),
    ('\u{017D}', 0x8E),
    ('\u{2018}', 0x91),
    ('\u{2019}', 0x92),
    ('\u{201C}', 0x93),
    ('\u{201D}', 0x94),
    ('\u{2022}', 0x95),
    ('\u{2013}', 0x96),
    ('\u{2014}', 0x97),
    ('\u{02DC}', 0x98),
    ('\u{2122}', 0x99),
    ('\u{0161}', 0x9A),
    ('\u{203A}', 0x9B),
    ('\u{0153}', 0x9C),
    ('\u{017E}', 0x9E),
    ('\u{0178}', 0x9F),
];

/// Encode `s` in WinAnsi for the standard fonts. Line breaks and tabs become spaces (a cell is
/// one paragraph, as in the Markdown table); anything else WinAnsi cannot show becomes `?`.
fn win_ansi(s: &str) -> Vec<u8> {
    s.chars()
        .map(|c| match c {
            '\t' | '\n' | '\r' => b' ',
            ' '..='~' | '\u{A0}'..='\u{FF}' => c as u8,
            _ => WIN_ANSI_HIGH
                .iter()
                .find(|(h, _)| *h == c)
                .map_or(b'?', |&(_, b)| b),
        })
        .collect()
}

/// Characters after which a long unbroken identifier is best broken.
fn is_break_after(b: u8) -> bool {
    matches!(b, b':' | b'.' | b'-' | b'/' | b',' | b'_' | b'=' | b';')
}

/// Break WinAnsi `text` into lines no wider than `max` points; `\n` is a hard break. Words
/// wrap at spaces; a word wider than the line breaks inside itself (after punctuation when
/// that keeps at least half the line filled), so no identifier is ever cut off or hyphenated.
fn wrap(text: &[u8], font: Font, size: f32, max: f32) -> Vec<Vec<u8>> {
    let mut lines = Vec::new();
    for para in text.split(|&b| b == b'\n') {
        let mut line: Vec<u8> = Vec::new();
        for word in para.split(|&b| b == b' ').filter(|w| !w.is_empty()) {
            let mut word = word;
            while !word.is_empty() {
                let joined = if line.is_empty() {
                    word.to_vec()
                } else {
                    [&line[..], b" ", word].concat()
                };
                if text_width(font, size, &joined) <= max {
                    line = joined;
                    break;
                }
                if !line.is_empty() {
                    lines.push(std::mem::take(&mut line));
                    continue;
                }
                // The word alone is wider than the line: take the longest prefix that fits,
                // always at least one character so the loop makes progress.
                let mut fit = 0;
                let mut w = 0.0;
                for &b in word {
                    w += text_width(font, size, &[b]);
                    if w > max && fit > 0 {
                        break;
                    }
                    fit += 1;
                }
                if fit < word.len() {
                    if let Some(p) = word[..fit].iter().rposition(|&b| is_break_after(b)) {
                        if p + 1 >= fit.div_ceil(2) {
                            fit = p + 1;
                        }
                    }
                }
                if fit >= word.len() {
                    // A single character wider than the line: it stands alone.
                    line.extend_from_slice(word);
                    break;
                }
                lines.push(word[..fit].to_vec());
                word = &word[fit..];
            }
        }
        lines.push(line);
    }
    lines
}

// ---------------------------------------------------------------------------------------------
// Document content: the sections of the content model, as blocks to lay out
// ---------------------------------------------------------------------------------------------

/// A cell ready to wrap: WinAnsi text (`\n` between the values of a list) in its font.
#[derive(Debug, Clone)]
struct Cell {
    text: Vec<u8>,
    font: Font,
    /// A callout number: centred and circled, as on the vendor's worksheet.
    callout: bool,
}

#[derive(Debug, Clone)]
struct Table {
    heading: String,
    /// Which part the table belongs to; sets the heading style.
    level: Part,
    size: f32,
    columns: Vec<Column>,
    rows: Vec<Vec<Cell>>,
}

#[derive(Debug, Clone)]
enum Block {
    Title(String),
    Part(String),
    Table(Table),
    Chart {
        heading: String,
        level: Part,
        chart: content::Chart,
    },
}

fn cell(c: &content::Cell) -> Cell {
    if let Some(n) = c.callout {
        return Cell {
            text: win_ansi(&n.to_string()),
            font: Font::Regular,
            callout: true,
        };
    }
    // One value a line: a list such as the multipath paths reads down the cell.
    let lines: Vec<Vec<u8>> = c.values.iter().map(|v| win_ansi(v)).collect();
    Cell {
        text: lines.join(&b'\n'),
        font: if c.mono { Font::Mono } else { Font::Regular },
        callout: false,
    }
}

/// A section as a table; a list becomes a one-column table with one blank row when empty,
/// to write in as on the paper form.
fn table(s: &Section) -> Table {
    let (columns, rows, size) = match &s.body {
        Body::Table(t) => (
            t.columns.clone(),
            t.rows
                .iter()
                .map(|r| r.iter().map(cell).collect())
                .collect(),
            if t.dense { SMALL } else { BODY },
        ),
        Body::Chart(_) => (Vec::new(), Vec::new(), BODY),
        Body::List(l) => {
            let mut rows: Vec<Vec<Cell>> = l.items.iter().map(|c| vec![cell(c)]).collect();
            if rows.is_empty() {
                rows.push(vec![cell(&content::Cell::blank())]);
            }
            let column = Column {
                head: l.item,
                weight: 1.0,
            };
            (vec![column], rows, BODY)
        }
    };
    Table {
        heading: s.heading.to_string(),
        level: s.part,
        size,
        columns,
        rows,
    }
}

/// The worksheet as a list of blocks: the title, then the content model's sections in order,
/// each part's heading before its first section.
fn blocks(w: &Worksheet) -> Vec<Block> {
    let mut out = vec![Block::Title(TITLE.into())];
    let mut part = None;
    for s in content::content(w) {
        if part != Some(s.part) {
            if let Some(h) = s.part.heading() {
                out.push(Block::Part(h.into()));
            }
            part = Some(s.part);
        }
        match &s.body {
            // A chart with nothing to draw has nothing to write in either: left out.
            Body::Chart(c) if c.series.is_empty() => {}
            Body::Chart(c) => out.push(Block::Chart {
                heading: s.heading.to_string(),
                level: s.part,
                chart: c.clone(),
            }),
            _ => out.push(Block::Table(table(&s))),
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Layout: blocks to positioned drawing operations, page by page
// ---------------------------------------------------------------------------------------------

const MARGIN_X: f32 = 42.0;
const MARGIN_TOP: f32 = 44.0;
/// The footer sits inside the bottom margin.
const MARGIN_BOTTOM: f32 = 50.0;
const FOOTER_Y: f32 = 28.0;
const FOOTER_SIZE: f32 = 7.5;
const PAD_X: f32 = 4.0;
const PAD_Y: f32 = 3.0;
const BODY: f32 = 9.0;
const SMALL: f32 = 7.5;
const TITLE_SIZE: f32 = 17.0;
const PART_SIZE: f32 = 13.0;
const PART_BEFORE: f32 = 22.0;
const RULE: f32 = 0.5;
const HEADER_GRAY: f32 = 0.88;
const TEXT_GRAY: f32 = 0.0;
const FAINT_GRAY: f32 = 0.35;

/// Helvetica ascender and descender, in em, to centre text in a line box.
const ASCENT: f32 = 0.718;
const DESCENT: f32 = 0.207;

fn leading(size: f32) -> f32 {
    size * 1.3
}

/// One drawing operation, in PDF coordinates (origin bottom left).
#[derive(Debug, Clone, PartialEq)]
enum Op {
    Text {
        x: f32,
        y: f32,
        font: Font,
        size: f32,
        gray: f32,
        text: Vec<u8>,
    },
    /// A filled rectangle (x, y, w, h).
    Fill([f32; 4], f32),
    /// A stroked rectangle (x, y, w, h).
    Frame([f32; 4]),
    /// A straight line.
    Line([f32; 4]),
    /// A stroked circle (cx, cy, r).
    Circle([f32; 3]),
}

/// One cell of a row ready to draw: its wrapped lines, its font, and whether it is a callout.
#[derive(Debug, Clone)]
struct Lines {
    lines: Vec<Vec<u8>>,
    font: Font,
    callout: bool,
}

/// A row ready to draw.
#[derive(Debug, Clone)]
struct Row {
    cells: Vec<Lines>,
    header: bool,
}

/// The width text may take in a column `w` points wide.
fn inner(w: f32) -> f32 {
    (w - 2.0 * PAD_X).max(1.0)
}

impl Row {
    /// The header row of `t`, its columns `widths` wide.
    fn header(t: &Table, widths: &[f32]) -> Row {
        let cells = t
            .columns
            .iter()
            .zip(widths)
            .map(|(c, &w)| Lines {
                lines: wrap(&win_ansi(c.head), Font::Bold, t.size, inner(w)),
                font: Font::Bold,
                callout: false,
            })
            .collect();
        Row {
            cells,
            header: true,
        }
    }

    /// A body row of `t`, its columns `widths` wide.
    fn body(t: &Table, cells: &[Cell], widths: &[f32]) -> Row {
        let cells = cells
            .iter()
            .zip(widths)
            .map(|(c, &w)| Lines {
                lines: wrap(&c.text, c.font, t.size, inner(w)),
                font: c.font,
                callout: c.callout,
            })
            .collect();
        Row {
            cells,
            header: false,
        }
    }

    fn lines(&self) -> usize {
        self.cells
            .iter()
            .map(|c| c.lines.len())
            .max()
            .unwrap_or(1)
            .max(1)
    }

    /// The first `k` lines of every cell, and the rest.
    fn split(self, k: usize) -> (Row, Row) {
        let header = self.header;
        let (now, later) = self
            .cells
            .into_iter()
            .map(|c| {
                let Lines {
                    mut lines,
                    font,
                    callout,
                } = c;
                let rest = lines.split_off(k.min(lines.len()));
                let later = Lines {
                    lines: rest,
                    font,
                    callout,
                };
                (
                    Lines {
                        lines,
                        font,
                        callout,
                    },
                    later,
                )
            })
            .unzip();
        (
            Row { cells: now, header },
            Row {
                cells: later,
                header,
            },
        )
    }
}

struct Layout {
    width: f32,
    height: f32,
    pages: Vec<Vec<Op>>,
    /// Top of the free space on the current page.
    y: f32,
    /// A part heading to draw with the next table.
    pending_part: Option<String>,
}

impl Layout {
    fn new(paper: Paper) -> Self {
        let (width, height) = paper.size();
        Layout {
            width,
            height,
            pages: vec![Vec::new()],
            y: height - MARGIN_TOP,
            pending_part: None,
        }
    }

    fn top(&self) -> f32 {
        self.height - MARGIN_TOP
    }

    fn content_width(&self) -> f32 {
        self.width - 2.0 * MARGIN_X
    }

    fn at_top(&self) -> bool {
        self.y >= self.top() - 0.01
    }

    fn room(&self) -> f32 {
        self.y - MARGIN_BOTTOM
    }

    fn new_page(&mut self) {
        self.pages.push(Vec::new());
        self.y = self.top();
    }

    fn push(&mut self, op: Op) {
        if let Some(page) = self.pages.last_mut() {
            page.push(op);
        }
    }

    fn text(&mut self, x: f32, y: f32, font: Font, size: f32, text: &[u8]) {
        if !text.is_empty() {
            self.push(Op::Text {
                x,
                y,
                font,
                size,
                gray: TEXT_GRAY,
                text: text.to_vec(),
            });
        }
    }

    fn title(&mut self, title: &str) {
        let base = self.y - TITLE_SIZE * ASCENT;
        self.text(MARGIN_X, base, Font::Bold, TITLE_SIZE, &win_ansi(title));
        let note = win_ansi(
            "Circled numbers are the callouts of the vendor's worksheet. \
             Empty cells are not known yet.",
        );
        let y = base - 15.0;
        self.push(Op::Text {
            x: MARGIN_X,
            y,
            font: Font::Regular,
            size: 8.0,
            gray: FAINT_GRAY,
            text: note,
        });
        self.y = y - 8.0;
    }

    /// Height of a part heading, with the space above it when not at the top of a page.
    fn part_height(&self) -> f32 {
        let before = if self.at_top() { 0.0 } else { PART_BEFORE };
        before + PART_SIZE * ASCENT + 7.0
    }

    fn part(&mut self, title: &str) {
        if !self.at_top() {
            self.y -= PART_BEFORE;
        }
        let base = self.y - PART_SIZE * ASCENT;
        self.text(MARGIN_X, base, Font::Bold, PART_SIZE, &win_ansi(title));
        let rule = base - 5.0;
        self.push(Op::Line([MARGIN_X, rule, self.width - MARGIN_X, rule]));
        self.y = rule - 2.0;
    }

    fn heading_style(level: Part) -> (f32, f32) {
        // (size, space before)
        match level {
            Part::Vendor => (11.0, 14.0),
            Part::Learned => (10.0, 12.0),
        }
    }

    fn heading_height(&self, level: Part) -> f32 {
        let (size, before) = Self::heading_style(level);
        let before = if self.at_top() { 0.0 } else { before };
        before + size + 5.0
    }

    fn heading(&mut self, text: &str, level: Part) {
        let (size, before) = Self::heading_style(level);
        if !self.at_top() {
            self.y -= before;
        }
        let base = self.y - size * ASCENT;
        self.text(MARGIN_X, base, Font::Bold, size, &win_ansi(text));
        self.y -= size + 5.0;
    }

    fn row_height(row: &Row, size: f32) -> f32 {
        2.0 * PAD_Y + row.lines() as f32 * leading(size)
    }

    fn draw_row(&mut self, t: &Table, widths: &[f32], row: &Row) {
        let size = t.size;
        let lead = leading(size);
        let h = Self::row_height(row, size);
        let top = self.y;
        let mut x = MARGIN_X;
        // Centre the glyphs' extent in each line box; every cell shares the baselines.
        let first_base = top - PAD_Y - (lead - (ASCENT + DESCENT) * size) / 2.0 - ASCENT * size;
        for (&w, cell) in widths.iter().zip(&row.cells) {
            let rect = [x, top - h, w, h];
            if row.header {
                self.push(Op::Fill(rect, HEADER_GRAY));
            }
            self.push(Op::Frame(rect));
            let non_empty = cell.lines.iter().enumerate().filter(|(_, l)| !l.is_empty());
            for (i, line) in non_empty {
                let base = first_base - i as f32 * lead;
                if cell.callout && !row.header {
                    self.callout(x + w / 2.0, base, size, line);
                } else {
                    let font = if row.header { Font::Bold } else { cell.font };
                    self.text(x + PAD_X, base, font, size, line);
                }
            }
            x += w;
        }
        self.y -= h;
    }

    /// A callout number centred on `cx` and circled, as on the vendor's worksheet.
    fn callout(&mut self, cx: f32, base: f32, size: f32, line: &[u8]) {
        let font = Font::Bold;
        let tw = text_width(font, size, line);
        let r = (tw / 2.0 + 2.5).max(size * 0.72);
        self.push(Op::Circle([cx, base + size * ASCENT / 2.0, r]));
        self.text(cx - tw / 2.0, base, font, size, line);
    }

    /// Column widths in points: the content width shared by the columns' weights.
    fn column_widths(&self, t: &Table) -> Vec<f32> {
        let total: f32 = t.columns.iter().map(|c| c.weight).sum();
        t.columns
            .iter()
            .map(|c| self.content_width() * c.weight / total)
            .collect()
    }

    fn table(&mut self, t: &Table) {
        let widths = self.column_widths(t);
        let header = Row::header(t, &widths);
        let rows: Vec<Row> = t.rows.iter().map(|r| Row::body(t, r, &widths)).collect();
        self.start_table(t, &widths, &header, &rows);
        for row in rows {
            self.place_row(t, &widths, &header, row);
        }
    }

    /// Start a table on this page or the next: the pending part heading, the table's heading
    /// and its header row.
    fn start_table(&mut self, t: &Table, widths: &[f32], header: &Row, rows: &[Row]) {
        let lead = leading(t.size);
        let head_h = Self::row_height(header, t.size);
        // A short table stays in one piece; a long one keeps at least its heading, header
        // row and the start of its first row together.
        let all_h: f32 = rows.iter().map(|r| Self::row_height(r, t.size)).sum();
        let body_h = if all_h <= (self.top() - MARGIN_BOTTOM) / 3.0 {
            all_h
        } else {
            rows.first()
                .map_or(0.0, |r| Self::row_height(r, t.size))
                .min(2.0 * PAD_Y + 3.0 * lead)
        };
        // A part heading waiting to be drawn goes with this table, never alone at a page end.
        let part_h = match self.pending_part {
            Some(_) => self.part_height() + Self::heading_style(t.level).1,
            None => 0.0,
        };
        if !self.at_top() && part_h + self.heading_height(t.level) + head_h + body_h > self.room() {
            self.new_page();
        }
        if let Some(part) = self.pending_part.take() {
            self.part(&part);
        }
        self.heading(&t.heading, t.level);
        self.draw_row(t, widths, header);
    }

    /// Draw one body row, continuing the table on new pages (heading and header repeated) as
    /// often as it takes; a row taller than a whole page is split line by line.
    fn place_row(&mut self, t: &Table, widths: &[f32], header: &Row, row: Row) {
        let lead = leading(t.size);
        let head_h = Self::row_height(header, t.size);
        let continued = format!("{} (continued)", t.heading);
        let mut rest = row;
        loop {
            let h = Self::row_height(&rest, t.size);
            if h <= self.room() + 0.01 {
                self.draw_row(t, widths, &rest);
                return;
            }
            let fresh = self.top() - MARGIN_BOTTOM - (t.heading_size() + 5.0) - head_h;
            let fit = ((self.room() - 2.0 * PAD_Y) / lead).floor();
            if h > fresh && fit >= 1.0 {
                // Taller than a whole page: split it here, line by line.
                let (now, later) = rest.split(fit as usize);
                self.draw_row(t, widths, &now);
                rest = later;
            }
            self.new_page();
            self.heading(&continued, t.level);
            self.draw_row(t, widths, header);
        }
    }
}

/// Height of one series of a chart.
const CHART_ROW: f32 = 16.0;
/// Width of a chart's label column, and of the space right of its axis for the scale.
const CHART_LABEL: f32 = 90.0;
const CHART_SCALE: f32 = 80.0;

impl Layout {
    /// A chart: per series its label, an axis from 0 to the series' largest value with a
    /// small circle per value and a bar at the median, and the largest value at the right.
    /// Kept on one page with its heading (and a part heading waiting to be drawn).
    fn chart(&mut self, heading: &str, level: Part, chart: &content::Chart) {
        let part_h = match self.pending_part {
            Some(_) => self.part_height() + Self::heading_style(level).1,
            None => 0.0,
        };
        let need = part_h + self.heading_height(level) + chart.series.len() as f32 * CHART_ROW;
        if !self.at_top() && need > self.room() {
            self.new_page();
        }
        if let Some(part) = self.pending_part.take() {
            self.part(&part);
        }
        self.heading(heading, level);
        let x0 = MARGIN_X + CHART_LABEL;
        let x1 = self.width - MARGIN_X - CHART_SCALE;
        for s in &chart.series {
            let mid = self.y - CHART_ROW / 2.0;
            let base = mid - SMALL * ASCENT / 2.0;
            self.text(MARGIN_X, base, Font::Regular, SMALL, &win_ansi(&s.label));
            self.push(Op::Line([x0, mid, x1, mid]));
            self.push(Op::Line([x0, mid - 3.0, x0, mid + 3.0]));
            self.push(Op::Line([x1, mid - 3.0, x1, mid + 3.0]));
            let max = s.values.iter().copied().fold(0.0f64, f64::max);
            let at = |v: f64| {
                if max > 0.0 && v.is_finite() {
                    x0 + ((v.max(0.0) / max) as f32) * (x1 - x0)
                } else {
                    x0
                }
            };
            for v in &s.values {
                self.push(Op::Circle([at(*v), mid, 2.0]));
            }
            if !s.values.is_empty() {
                let x = at(crate::bench::median(&s.values));
                self.push(Op::Line([x, mid - 5.0, x, mid + 5.0]));
            }
            let scale = format!("{} {}", crate::cfmt::g6(max), s.unit);
            self.text(
                x1 + 6.0,
                base,
                Font::Regular,
                SMALL,
                &win_ansi(scale.trim()),
            );
            self.y -= CHART_ROW;
        }
    }
}

impl Table {
    fn heading_size(&self) -> f32 {
        Layout::heading_style(self.level).0
    }
}

/// Lay the blocks out on pages of `paper`.
fn layout(blocks: &[Block], paper: Paper) -> Vec<Vec<Op>> {
    let mut l = Layout::new(paper);
    for b in blocks {
        match b {
            Block::Title(t) => l.title(t),
            Block::Part(t) => l.pending_part = Some(t.clone()),
            Block::Table(t) => l.table(t),
            Block::Chart {
                heading,
                level,
                chart,
            } => l.chart(heading, *level, chart),
        }
    }
    if let Some(part) = l.pending_part.take() {
        l.part(&part);
    }
    l.pages
}

// ---------------------------------------------------------------------------------------------
// Writing the file
// ---------------------------------------------------------------------------------------------

fn draw(content: &mut Content, op: &Op) {
    match op {
        Op::Text {
            x,
            y,
            font,
            size,
            gray,
            text,
        } => {
            content.set_fill_gray(*gray);
            content.begin_text();
            content.set_font(font.resource(), *size);
            content.next_line(*x, *y);
            // `Str` writes `(`, `)` and `\` escaped and non-ASCII bytes as hex, so no value
            // can end the string early.
            content.show(Str(text));
            content.end_text();
        }
        Op::Fill([x, y, w, h], gray) => {
            content.set_fill_gray(*gray);
            content.rect(*x, *y, *w, *h);
            content.fill_nonzero();
        }
        Op::Frame([x, y, w, h]) => {
            content.rect(*x, *y, *w, *h);
            content.stroke();
        }
        Op::Line([x1, y1, x2, y2]) => {
            content.move_to(*x1, *y1);
            content.line_to(*x2, *y2);
            content.stroke();
        }
        Op::Circle([cx, cy, r]) => {
            // Four Bezier quarter arcs.
            let k = 0.552_284_8 * r;
            content.move_to(cx + r, *cy);
            content.cubic_to(cx + r, cy + k, cx + k, cy + r, *cx, cy + r);
            content.cubic_to(cx - k, cy + r, cx - r, cy + k, cx - r, *cy);
            content.cubic_to(cx - r, cy - k, cx - k, cy - r, *cx, cy - r);
            content.cubic_to(cx + k, cy - r, cx + r, cy - k, cx + r, *cy);
            content.close_path();
            content.stroke();
        }
    }
}

/// One page's content stream: its drawing operations, then the footer (`footer` cut to one
/// line on the left, the page number on the right).
fn page_content(ops: &[Op], width: f32, footer: &[u8], number: &str) -> Content {
    let mut content = Content::new();
    content.set_line_width(RULE);
    content.set_stroke_gray(FAINT_GRAY);
    for op in ops {
        draw(&mut content, op);
    }
    let number_w = text_width(Font::Regular, FOOTER_SIZE, number.as_bytes());
    let footer_max = width - 2.0 * MARGIN_X - number_w - 24.0;
    let footer_line = wrap(footer, Font::Regular, FOOTER_SIZE, footer_max)
        .into_iter()
        .next()
        .unwrap_or_default();
    for (x, t) in [
        (MARGIN_X, footer_line),
        (width - MARGIN_X - number_w, number.as_bytes().to_vec()),
    ] {
        draw(
            &mut content,
            &Op::Text {
                x,
                y: FOOTER_Y,
                font: Font::Regular,
                size: FOOTER_SIZE,
                gray: FAINT_GRAY,
                text: t,
            },
        );
    }
    content
}

fn write(pages: &[Vec<Op>], paper: Paper, footer: &[u8]) -> Vec<u8> {
    let (width, height) = paper.size();
    let catalog = Ref::new(1);
    let tree = Ref::new(2);
    let info = Ref::new(3);
    let font_ref = |f: Font| Ref::new(4 + f as i32);
    let page_ref = |i: usize| Ref::new(10 + 2 * i as i32);
    let content_ref = |i: usize| Ref::new(11 + 2 * i as i32);

    let mut pdf = Pdf::new();
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree)
        .kids((0..pages.len()).map(page_ref))
        .count(pages.len() as i32);
    pdf.document_info(info)
        .title(TextStr(TITLE))
        .producer(TextStr("iser-wizard"));
    for f in Font::ALL {
        pdf.type1_font(font_ref(f))
            .base_font(f.base())
            .encoding_predefined(Name(b"WinAnsiEncoding"));
    }

    let total = pages.len();
    for (i, ops) in pages.iter().enumerate() {
        let mut page = pdf.page(page_ref(i));
        page.media_box(Rect::new(0.0, 0.0, width, height))
            .parent(tree)
            .contents(content_ref(i));
        let mut resources = page.resources();
        let mut fonts = resources.fonts();
        for f in Font::ALL {
            fonts.pair(f.resource(), font_ref(f));
        }
        fonts.finish();
        resources.finish();
        page.finish();

        let content = page_content(ops, width, footer, &format!("page {} of {total}", i + 1));
        pdf.stream(content_ref(i), &content.finish());
    }
    pdf.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::worksheets::sample::{full, large, IPOIB_HW, LONG_IQN};
    use crate::worksheets::*;
    use std::process::Command;

    /// Every value `full()` carries, as the reader should see it.
    fn values(w: &Worksheet) -> Vec<String> {
        let mut v = Vec::new();
        let h = &w.host;
        for o in [
            &h.host_name,
            &h.os,
            &h.kernel,
            &h.initiator_iqn,
            &h.mapping_host_name,
            &h.host_os_type,
            &w.target_iqn,
        ] {
            v.extend(o.clone());
        }
        for s in &w.subnets {
            for o in [
                &s.network,
                &s.netmask,
                &s.controller_a,
                &s.controller_b,
                &s.host_port,
            ] {
                v.extend(o.clone());
            }
            v.extend(s.other_portals.clone());
        }
        for p in &w.ports {
            for o in [
                &p.netdev,
                &p.guid,
                &p.hw_address,
                &p.link_layer,
                &p.rate,
                &p.state,
            ] {
                v.extend(o.clone());
            }
            v.extend(p.address.clone());
            v.push(format!(
                "{}/{}",
                p.rdma_device.clone().unwrap_or_default(),
                p.rdma_port.unwrap_or_default()
            ));
        }
        let sm = w.subnet_manager.clone().unwrap_or_default();
        v.push(sm.placement.clone());
        for (g, p) in &sm.priorities {
            v.push(format!("opensm on {g}"));
            v.push(format!("priority {p}"));
        }
        for s in &w.sessions {
            v.extend([
                s.iface.clone(),
                s.portal.clone(),
                s.transport.clone(),
                s.state.clone(),
            ]);
        }
        for vol in &w.volumes {
            v.extend(vol.name.clone());
            for o in [
                &vol.wwid,
                &vol.vendor_product,
                &vol.size,
                &vol.partition,
                &vol.filesystem,
                &vol.uuid,
                &vol.mount_point,
                &vol.fstab_line,
            ] {
                v.extend(o.clone());
            }
            for (d, s) in &vol.paths {
                v.push(format!("{d} {s}"));
            }
        }
        let r = w.verification.clone().unwrap_or_default();
        v.push(r.bytes.to_string());
        v.push(r.result.clone());
        v.extend(r.write_mb_s.map(|x| format!("{x:.1}")));
        v.extend(r.read_mb_s.map(|x| format!("{x:.1}")));
        v.extend(r.at.clone());
        for s in &w.steps {
            v.extend([s.step.clone(), s.completed_at.clone()]);
        }
        v.extend(w.notes.clone());
        if let Some(b) = &w.bench {
            v.extend([
                b.label.clone(),
                b.started_at.clone(),
                b.mount_point.clone(),
                b.runs.clone(),
            ]);
            v.extend(b.link.clone());
            for r in &b.workloads {
                v.push(r.workload.clone());
                v.push(r.median.clone());
                v.extend(r.values.iter().map(|x| crate::cfmt::g6(*x)));
                v.extend(r.pct_of_link.map(|p| format!("{p:.1}%")));
                v.extend(r.p99.clone());
                v.extend(r.balance.clone());
            }
        }
        v
    }

    #[test]
    fn the_bench_chart_draws_a_point_per_run_and_a_scale_per_workload() {
        let w = full();
        let ops: Vec<Op> = layout(&blocks(&w), Paper::A4).concat();
        let circles = ops.iter().filter(|o| matches!(o, Op::Circle(_))).count();
        let runs: usize = w
            .bench
            .as_ref()
            .unwrap()
            .workloads
            .iter()
            .map(|r| r.values.len())
            .sum();
        let callouts = layout(
            &blocks(&Worksheet {
                bench: None,
                ..w.clone()
            }),
            Paper::A4,
        )
        .concat()
        .iter()
        .filter(|o| matches!(o, Op::Circle(_)))
        .count();
        assert_eq!(circles - callouts, runs);
        let texts: Vec<String> = ops
            .iter()
            .filter_map(|o| match o {
                Op::Text { text, .. } => Some(String::from_utf8_lossy(text).into_owned()),
                _ => None,
            })
            .collect();
        assert!(texts.contains(&"729817 IOPS".to_string()), "{texts:?}");
        assert!(texts.contains(&"9.3e+09 B/s".to_string()), "{texts:?}");
        // The largest run sits at the axis' right end, every point inside the axis.
        let x1 = Paper::A4.size().0 - MARGIN_X - CHART_SCALE;
        let points: Vec<f32> = ops
            .iter()
            .skip_while(|o| !matches!(o, Op::Text { text, .. } if text == b"rand4k-read"))
            .filter_map(|o| match o {
                Op::Circle([x, _, r]) if *r == 2.0 => Some(*x),
                _ => None,
            })
            .collect();
        assert_eq!(points.len(), runs);
        assert!(points
            .iter()
            .all(|x| *x > MARGIN_X + CHART_LABEL - 0.01 && *x <= x1 + 0.01));
        assert!(points.iter().any(|x| (*x - x1).abs() < 0.01));
        // No bench: no chart at all.
        assert!(!blocks(&Worksheet::default())
            .iter()
            .any(|b| matches!(b, Block::Chart { .. })));
    }

    fn page_count(pdf: &[u8]) -> usize {
        let text = String::from_utf8_lossy(pdf);
        text.matches("/Type /Page").count() - text.matches("/Type /Pages").count()
    }

    /// `pdftotext -raw` of `pdf`, or None (with a note) when poppler-utils is not installed.
    fn pdftotext(pdf: &[u8]) -> Option<String> {
        if which::which("pdftotext").is_err() {
            eprintln!("pdftotext not installed (apt-get install poppler-utils): check skipped");
            return None;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("worksheet.pdf");
        std::fs::write(&path, pdf).expect("write pdf");
        let out = Command::new("pdftotext")
            .arg("-raw")
            .arg("-enc")
            .arg("UTF-8")
            .arg(&path)
            .arg("-")
            .output()
            .expect("run pdftotext");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "pdftotext failed: {stderr}");
        assert!(
            !stderr.contains("Syntax Error"),
            "pdftotext found errors: {stderr}"
        );
        Some(String::from_utf8(out.stdout).expect("utf-8 text"))
    }

    fn squeeze(s: &str) -> String {
        s.chars().filter(|c| !c.is_whitespace()).collect()
    }

    #[test]
    fn output_is_a_pdf_file_of_the_expected_length() {
        for (w, pages) in [(Worksheet::default(), 2), (full(), 3), (large(), 7)] {
            let pdf = render(&w, Paper::A4);
            assert!(pdf.starts_with(b"%PDF-"));
            assert!(pdf.trim_ascii_end().ends_with(b"%%EOF"));
            assert_eq!(
                page_count(&pdf),
                pages,
                "{}",
                w.host.host_name.clone().unwrap_or_default()
            );
            let tree = format!("/Count {pages}");
            assert!(String::from_utf8_lossy(&pdf).contains(&tree), "{tree}");
        }
    }

    #[test]
    fn pages_are_numbered_n_of_m() {
        let pdf = render(&large(), Paper::A4);
        let m = page_count(&pdf);
        let Some(text) = pdftotext(&pdf) else { return };
        for n in 1..=m {
            assert!(
                text.contains(&format!("page {n} of {m}")),
                "page {n} of {m}"
            );
        }
        // A table that spills over repeats its header under a "continued" heading.
        assert!(text.contains("Sessions (continued)"), "{text}");
        assert!(text.matches("iface Portal Transport State").count() >= 2);
    }

    #[test]
    fn every_volume_of_several_reads_back() {
        let mut w = full();
        let second = VolumeRecord {
            name: Some("logs".into()),
            wwid: Some("3600a098000af3c2a00000b4d5f3e1d99".into()),
            mount_point: Some("/srv/logs".into()),
            paths: vec![("sdc".into(), "active ready running".into())],
            ..w.volumes[0].clone()
        };
        w.volumes.push(second);
        let Some(text) = pdftotext(&render(&w, Paper::A4)) else {
            return;
        };
        let flat = squeeze(&text);
        for v in values(&w) {
            assert!(flat.contains(&squeeze(&v)), "{v:?} missing from:\n{text}");
        }
        assert!(flat.contains("Namelogs"), "{text}");
        assert!(flat.contains("Namevolume1of2"), "{text}");
    }

    #[test]
    fn every_value_of_a_full_worksheet_reads_back() {
        let w = full();
        for paper in [Paper::A4, Paper::Letter] {
            let Some(text) = pdftotext(&render(&w, paper)) else {
                return;
            };
            let flat = squeeze(&text);
            for v in values(&w) {
                assert!(flat.contains(&squeeze(&v)), "{v:?} missing from:\n{text}");
            }
            for heading in [
                "Host identifiers",
                "Target IQN",
                "Subnet A",
                "Subnet B",
                "Mapping host",
                "What the wizard learned",
                "Ports",
                "Subnet manager",
                "Sessions",
                "Volume",
                "Verification",
                "Steps completed",
                "Notes",
            ] {
                assert!(text.contains(heading), "missing {heading}");
            }
            for callout in [
                "1 Software initiator IQN",
                "6 Target port",
                "5 Controller A, port 1",
                "4 Controller B, port 1",
                "2 Host 1, port 1",
                "10 Controller A, port 2",
                "9 Controller B, port 2",
                "7 Host 1, port 2",
            ] {
                assert!(text.contains(callout), "missing {callout}:\n{text}");
            }
        }
    }

    #[test]
    fn an_empty_worksheet_still_has_every_table_and_callout() {
        let Some(text) = pdftotext(&render(&Worksheet::default(), Paper::A4)) else {
            return;
        };
        for line in [
            "1 Software initiator IQN",
            "6 Target port",
            "5 Controller A, port 1",
            "9 Controller B, port 2",
            "Mapping host name",
            "Netdev",
            "Completed (UTC)",
            "page 2 of 2",
        ] {
            assert!(text.contains(line), "missing {line}:\n{text}");
        }
    }

    #[test]
    fn media_box_follows_the_paper() {
        for (paper, media) in [
            (Paper::A4, "/MediaBox [0 0 595.28 841.89]"),
            (Paper::Letter, "/MediaBox [0 0 612 792]"),
        ] {
            let pdf = render(&full(), paper);
            let text = String::from_utf8_lossy(&pdf);
            assert_eq!(
                text.matches(media).count(),
                page_count(&pdf),
                "{paper:?}: {media}"
            );
        }
    }

    #[test]
    fn special_and_non_latin_characters_do_not_break_the_file() {
        let mut w = Worksheet::default();
        w.note(r"unbalanced ) paren and ( another \ backslash \) \\( end");
        w.note("caf\u{e9} na\u{ef}ve \u{2013} \u{20ac}5 \u{201c}quoted\u{201d}");
        w.note("\u{65e5}\u{672c}\u{8a9e} \u{1f680} \u{3b1}\u{3b2}");
        w.note("tab\tnew\nline\rcontrol\u{7}\u{0}");
        w.host.host_name = Some("h\u{f6}st(1)".into());
        let pdf = render(&w, Paper::A4);
        assert!(pdf.trim_ascii_end().ends_with(b"%%EOF"));
        let Some(text) = pdftotext(&pdf) else { return };
        assert!(
            text.contains(r"unbalanced ) paren and ( another \ backslash \) \\( end"),
            "{text}"
        );
        assert!(
            text.contains("caf\u{e9} na\u{ef}ve \u{2013} \u{20ac}5 \u{201c}quoted\u{201d}"),
            "{text}"
        );
        assert!(text.contains("??? ? ??"), "{text}");
        assert!(text.contains("tab new line control??"), "{text}");
        assert!(text.contains("h\u{f6}st(1)"), "{text}");
    }

    #[test]
    fn win_ansi_maps_latin_1_and_the_0x80_block_and_nothing_else() {
        assert_eq!(win_ansi("aZ~ \u{e9}\u{ff}"), b"aZ~ \xe9\xff");
        assert_eq!(win_ansi("\u{20ac}\u{2014}\u{178}"), b"\x80\x97\x9f");
        assert_eq!(win_ansi("\u{7f}\u{81}\u{100}\u{1f600}"), b"????");
        assert_eq!(win_ansi("a\tb\nc"), b"a b c");
    }

    #[test]
    fn widths_follow_the_afm_metrics() {
        // "Hello": H 722 + e 556 + l 222 + l 222 + o 556 = 2278 units; bold 722 + 556 + 278
        // + 278 + 611 = 2445.
        assert!((text_width(Font::Regular, 10.0, b"Hello") - 22.78).abs() < 1e-3);
        assert!((text_width(Font::Bold, 10.0, b"Hello") - 24.45).abs() < 1e-3);
        assert!((text_width(Font::Mono, 10.0, b"Hello") - 30.0).abs() < 1e-3);
    }

    #[test]
    fn long_identifiers_wrap_inside_the_width_without_losing_characters() {
        for (font, s) in [
            (Font::Mono, LONG_IQN),
            (Font::Mono, IPOIB_HW),
            (Font::Regular, "x".repeat(500).as_str()),
            (
                Font::Regular,
                "a few words then aVeryLongUnbrokenWordThatCannotFit end",
            ),
        ] {
            let max = 60.0;
            let lines = wrap(s.as_bytes(), font, 9.0, max);
            assert!(lines.len() > 1, "{s}");
            for l in &lines {
                assert!(text_width(font, 9.0, l) <= max, "{l:?}");
            }
            assert_eq!(
                squeeze(&String::from_utf8_lossy(&lines.concat())),
                squeeze(s)
            );
        }
        // Prefer breaking after punctuation: the IPoIB address breaks between bytes.
        for l in wrap(IPOIB_HW.as_bytes(), Font::Mono, 9.0, 100.0) {
            assert!(l.ends_with(b":") || IPOIB_HW.ends_with(&*String::from_utf8_lossy(&l)));
        }
        // Even a width narrower than one character makes progress.
        assert_eq!(wrap(b"abc", Font::Mono, 9.0, 1.0).len(), 3);
    }

    #[test]
    fn all_drawing_stays_inside_the_margins_on_both_papers() {
        let mut w = large();
        w.note("word ".repeat(2000));
        w.note("x".repeat(3000));
        for paper in [Paper::A4, Paper::Letter] {
            let (width, height) = paper.size();
            let pages = layout(&blocks(&w), paper);
            assert!(pages.len() > 6);
            for ops in &pages {
                for op in ops {
                    let (x0, y0, x1, y1) = match op {
                        Op::Text {
                            x,
                            y,
                            font,
                            size,
                            text,
                            ..
                        } => (
                            *x,
                            *y,
                            x + text_width(*font, *size, text),
                            y + ASCENT * size,
                        ),
                        Op::Fill([x, y, w, h], _) | Op::Frame([x, y, w, h]) => {
                            (*x, *y, x + w, y + h)
                        }
                        Op::Line([x1, y1, x2, y2]) => (*x1, *y1, *x2, *y2),
                        Op::Circle([cx, cy, r]) => (cx - r, cy - r, cx + r, cy + r),
                    };
                    let eps = 0.01;
                    assert!(
                        x0 >= MARGIN_X - eps && x1 <= width - MARGIN_X + eps,
                        "{op:?}"
                    );
                    assert!(
                        y0 >= MARGIN_BOTTOM - 3.0 && y1 <= height - MARGIN_TOP + eps,
                        "{op:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn text_stays_inside_its_cell() {
        let pages = layout(&blocks(&full()), Paper::Letter);
        for ops in &pages {
            let frames: Vec<[f32; 4]> = ops
                .iter()
                .filter_map(|o| match o {
                    Op::Frame(r) => Some(*r),
                    _ => None,
                })
                .collect();
            for op in ops {
                if let Op::Text {
                    x,
                    y,
                    font,
                    size,
                    text,
                    ..
                } = op
                {
                    let w = text_width(*font, *size, text);
                    let inside = |r: &[f32; 4]| {
                        *x >= r[0] && x + w <= r[0] + r[2] && *y >= r[1] && *y <= r[1] + r[3]
                    };
                    // Headings and the title are outside any frame but never overlap one.
                    let overlaps = |r: &[f32; 4]| {
                        *x < r[0] + r[2] && x + w > r[0] && *y < r[1] + r[3] && y + size > r[1]
                    };
                    assert!(
                        frames.iter().any(inside) || !frames.iter().any(overlaps),
                        "{:?} at ({x}, {y})",
                        String::from_utf8_lossy(text)
                    );
                }
            }
        }
    }
}
