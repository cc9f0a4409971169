//! CSV files of numeric features with an integer label column (such as the homework's
//! `hw1-binary20.csv`: header `x0,...,x19,label`, 1000 rows).
//!
//! The format is deliberately simple: comma-separated fields, no embedded commas or newlines; a
//! field may be surrounded by whitespace or double quotes. Blank lines are skipped; `\r\n` line
//! endings are accepted.
//!
//! The file is read line by line and fails at the first line that is not CSV: a line longer than
//! [`MAX_CSV_LINE`], text that is not UTF-8, a compressed file, a ragged row. A file may hold at
//! most [`MAX_CSV_BYTES`], so that an endless or huge input (`/dev/urandom`, a mistaken disk image)
//! stops early instead of filling memory.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use super::Dataset;
use crate::error::{Error, Result};

/// The longest line a CSV file may have: 1 MiB (the homework's lines are under 500 bytes).
pub const MAX_CSV_LINE: usize = 1 << 20;

/// The most bytes a CSV file may have: 256 MiB.
pub const MAX_CSV_BYTES: u64 = 256 << 20;

/// Reads a file line by line, each at most [`MAX_CSV_LINE`] bytes and UTF-8, at most
/// [`MAX_CSV_BYTES`] in all.
struct Lines<'p> {
    reader: BufReader<File>,
    path: &'p Path,
    buf: Vec<u8>,
    /// Byte offset of the next line.
    offset: u64,
    /// 1-based number of the last line read.
    line: usize,
}

impl<'p> Lines<'p> {
    fn open(path: &'p Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        if file.metadata().map_err(|e| Error::io(path, e))?.is_dir() {
            return Err(Error::data(path, "is a directory, not a CSV file"));
        }
        Ok(Lines { reader: BufReader::new(file), path, buf: Vec::new(), offset: 0, line: 0 })
    }

    /// The next line without its `\n` or `\r\n`, and its 1-based number; `None` at the end.
    fn next_line(&mut self) -> Result<Option<(usize, &str)>> {
        let path = self.path;
        self.buf.clear();
        let limit = MAX_CSV_LINE as u64 + 1;
        let n = (&mut self.reader).take(limit).read_until(b'\n', &mut self.buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            return Ok(None);
        }
        self.line += 1;
        let line = self.line;
        if self.line == 1
            && let Some(format) = super::compressed_format(&self.buf)
        {
            return Err(Error::data(path, format!("the file is {format}, not CSV text: decompress it first")));
        }
        if self.buf.len() > MAX_CSV_LINE {
            return Err(Error::data(
                path,
                format!(
                    "line {line} is longer than {MAX_CSV_LINE} bytes, the limit of a CSV line: not a CSV file \
                     (or not one of numeric features)"
                ),
            ));
        }
        let start = self.offset;
        self.offset += n as u64;
        if self.offset > MAX_CSV_BYTES {
            return Err(Error::data(
                path,
                format!(
                    "the file is longer than {} MiB, the limit of a CSV file (at line {line})",
                    MAX_CSV_BYTES >> 20
                ),
            ));
        }
        let text = std::str::from_utf8(&self.buf).map_err(|e| {
            Error::data(
                path,
                format!(
                    "not UTF-8 text: invalid byte sequence at byte offset {} (line {line})",
                    start + e.valid_up_to() as u64
                ),
            )
        })?;
        let text = text.strip_suffix('\n').unwrap_or(text);
        let text = text.strip_suffix('\r').unwrap_or(text);
        let text = if line == 1 { text.strip_prefix('\u{feff}').unwrap_or(text) } else { text }; // byte-order mark
        Ok(Some((line, text)))
    }
}

/// Strips surrounding whitespace and one pair of surrounding double quotes.
fn clean(field: &str) -> &str {
    let f = field.trim();
    f.strip_prefix('"').and_then(|g| g.strip_suffix('"')).map_or(f, str::trim)
}

/// Shortens a field for an error message.
fn show(field: &str) -> String {
    const MAX: usize = 40;
    if field.chars().count() <= MAX {
        format!("{field:?}")
    } else {
        let head: String = field.chars().take(MAX).collect();
        format!("{head:?}...")
    }
}

/// Reads a CSV file whose first line is a header of comma-separated column names; the column
/// named `label_column` holds class indices (non-negative integers `< classes`; integral floats
/// such as `1.0` are accepted), every other column is a feature, in file order. The data set has
/// sample dims `[number of features]`.
///
/// # Errors
/// [`Error::Io`] if the file cannot be read; [`Error::Data`] naming the file (and the 1-based line
/// number for row errors) for: an empty file, text that is not UTF-8, a compressed file, a line
/// over [`MAX_CSV_LINE`] bytes, a file over [`MAX_CSV_BYTES`], no column named
/// `label_column` (or two), no feature column, a row with a different number of fields than the
/// header (ragged), a field that is not a number, a NaN or infinite feature, a label that is not an
/// integer in `0..classes`, or no data rows.
pub fn read_csv(path: impl AsRef<Path>, label_column: &str, classes: usize) -> Result<Dataset> {
    fn inner(path: &Path, label_column: &str, classes: usize) -> Result<Dataset> {
        let err = |msg: String| Error::data(path, msg);
        if classes == 0 {
            return Err(err("no classes: the label range 0..0 is empty".into()));
        }
        let mut lines = Lines::open(path)?;
        let (header_line, header) = loop {
            match lines.next_line()? {
                None => {
                    return Err(err(format!(
                        "empty file: expected a header line of column names (such as x0,x1,...,{label_column})"
                    )));
                }
                Some((_, l)) if l.trim().is_empty() => continue,
                Some((n, l)) => break (n, l.to_string()),
            }
        };
        let names: Vec<&str> = header.split(',').map(clean).collect();
        let mut label_idx = names.iter().enumerate().filter(|&(_, &n)| n == label_column).map(|(i, _)| i);
        let label_at = match (label_idx.next(), label_idx.next()) {
            (Some(i), None) => i,
            (Some(_), Some(_)) => {
                return Err(err(format!(
                    "line {header_line}: the header names the label column {label_column:?} more than once"
                )));
            }
            (None, _) => {
                let mut listed: Vec<String> = names.iter().take(8).map(|n| show(n)).collect();
                if names.len() > 8 {
                    listed.push(format!("... ({} columns)", names.len()));
                }
                return Err(err(format!(
                    "line {header_line}: missing label column: no column named {label_column:?} in the \
                     header (columns: {})",
                    listed.join(", ")
                )));
            }
        };
        let columns = names.len();
        let features = columns - 1;
        if features == 0 {
            return Err(err(format!(
                "line {header_line}: the header has only the label column {label_column:?}, no feature columns"
            )));
        }

        let mut x = Vec::new();
        let mut y = Vec::new();
        while let Some((line, row)) = lines.next_line()? {
            if row.trim().is_empty() {
                continue;
            }
            let fields = row.split(',').count();
            if fields != columns {
                return Err(err(format!(
                    "line {line}: ragged row: {fields} fields, but the header has {columns} columns"
                )));
            }
            for (col, field) in row.split(',').map(clean).enumerate() {
                let name = names[col];
                if col == label_at {
                    y.push(parse_label(field, classes).map_err(|why| {
                        err(format!("line {line}: bad label {} in column {name:?}: {why}", show(field)))
                    })?);
                    continue;
                }
                let v: f64 = field.parse().map_err(|_| {
                    err(format!("line {line}, column {} ({name:?}): {} is not a number", col + 1, show(field)))
                })?;
                let v32 = v as f32;
                if !v32.is_finite() {
                    let what = if v.is_nan() {
                        "NaN"
                    } else if v.is_infinite() {
                        "infinite"
                    } else {
                        "too large for f32 (infinite)"
                    };
                    return Err(err(format!(
                        "line {line}, column {} ({name:?}): feature {} is {what}: features must be finite",
                        col + 1,
                        show(field)
                    )));
                }
                x.push(v32);
            }
        }
        if y.is_empty() {
            return Err(err(format!("no data rows after the header on line {header_line}")));
        }
        Dataset::new(x, y, &[features], classes).map_err(|e| err(e.to_string()))
    }
    inner(path.as_ref(), label_column, classes)
}

/// Parses a label field: a non-negative integer (or integral float) below `classes`.
fn parse_label(field: &str, classes: usize) -> std::result::Result<usize, String> {
    if let Ok(v) = field.parse::<usize>() {
        return if v < classes { Ok(v) } else { Err(format!("out of range, labels must be in 0..{classes}")) };
    }
    let v: f64 = field.parse().map_err(|_| "not a number".to_string())?;
    if !v.is_finite() || v < 0.0 || v.fract() != 0.0 {
        return Err(format!("not a non-negative integer (labels must be in 0..{classes})"));
    }
    if v >= classes as f64 {
        return Err(format!("out of range, labels must be in 0..{classes}"));
    }
    Ok(v as usize)
}

/// Splits the homework's 1000-sample binary set in file order: the first 500 samples for
/// training, the next 250 for validation, the last 250 for testing. Returns `(train, val, test)`.
///
/// # Errors
/// [`Error::Shape`] if the data set does not have exactly 1000 samples.
pub fn binary20_splits(ds: Dataset) -> Result<(Dataset, Dataset, Dataset)> {
    if ds.len() != 1000 {
        return Err(Error::Shape(format!(
            "binary20_splits expects the 1000 samples of hw1-binary20.csv (500 train, 250 validation, \
             250 test), got {}",
            ds.len()
        )));
    }
    let (train, rest) = ds.split_at(500);
    let (val, test) = rest.split_at(250);
    Ok((train, val, test))
}
