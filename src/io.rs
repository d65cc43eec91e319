//! Sample files (CSV with header `x0,x1,…`, values that round-trip f64 exactly) and atomic
//! writes: output goes to a temporary file in the target directory and is renamed into place,
//! so an interrupted or failed run never leaves a file that looks complete.

use crate::{Error, Result};
use ndarray::{Array2, ArrayView2};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// A file being written: created up front (so an unwritable path fails before any work),
/// renamed into place by [`AtomicFile::commit`], deleted if dropped uncommitted.
pub struct AtomicFile {
    path: PathBuf,
    tmp: tempfile::NamedTempFile,
}

impl AtomicFile {
    pub fn create(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        if path.is_dir() {
            return Err(Error::Data(format!(
                "cannot write {}: it is a directory",
                path.display()
            )));
        }
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let tmp = tempfile::Builder::new()
            .prefix(".scoresde-")
            .suffix(".tmp")
            .tempfile_in(&dir)
            .map_err(|e| Error::Data(format!("cannot write {}: {e}", path.display())))?;
        Ok(Self { path, tmp })
    }

    pub fn writer(&mut self) -> &mut std::fs::File {
        self.tmp.as_file_mut()
    }

    pub fn commit(self) -> Result<()> {
        let path = self.path;
        self.tmp
            .persist(&path)
            .map_err(|e| Error::io(&path, e.error))?;
        Ok(())
    }
}

/// Writes `x` as CSV (header `x0,…`) into an already created [`AtomicFile`] and commits it.
pub fn write_csv(mut file: AtomicFile, x: ArrayView2<f64>) -> Result<()> {
    let path = file.path.clone();
    let io = |e| Error::io(&path, e);
    {
        let mut w = BufWriter::new(file.writer());
        let header: Vec<String> = (0..x.ncols()).map(|j| format!("x{j}")).collect();
        writeln!(w, "{}", header.join(",")).map_err(io)?;
        for r in x.rows() {
            let mut first = true;
            for v in r {
                if !first {
                    w.write_all(b",").map_err(io)?;
                }
                first = false;
                // Rust's Display for f64 prints the shortest string that round-trips exactly.
                write!(w, "{v}").map_err(io)?;
            }
            w.write_all(b"\n").map_err(io)?;
        }
        w.flush().map_err(io)?;
    }
    file.commit()
}

/// Reads a CSV of points (one header row, one point per row, all finite).
pub fn read_csv(path: impl AsRef<Path>) -> Result<Array2<f64>> {
    let path = path.as_ref();
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(|e| Error::Data(format!("{}: {e}", path.display())))?;
    let d = rdr
        .headers()
        .map_err(|e| Error::Data(format!("{}: {e}", path.display())))?
        .len();
    let mut vals = Vec::new();
    let mut n = 0;
    for (i, rec) in rdr.records().enumerate() {
        let rec = rec.map_err(|e| Error::Data(format!("{}: {e}", path.display())))?;
        let line = i + 2;
        if rec.len() != d {
            return Err(Error::Data(format!(
                "{}:{line}: expected {d} values, found {}",
                path.display(),
                rec.len()
            )));
        }
        for field in rec.iter() {
            let v: f64 = field.parse().map_err(|_| {
                Error::Data(format!(
                    "{}:{line}: '{field}' is not a number",
                    path.display()
                ))
            })?;
            if !v.is_finite() {
                return Err(Error::Data(format!(
                    "{}:{line}: non-finite value '{field}'",
                    path.display()
                )));
            }
            vals.push(v);
        }
        n += 1;
    }
    if n == 0 {
        return Err(Error::Data(format!("{}: no data rows", path.display())));
    }
    Ok(Array2::from_shape_vec((n, d), vals).expect("row lengths checked"))
}

/// `" at line L, column C: message"` for a TOML parse or schema error (one line).
pub fn toml_error(text: &str, e: &toml::de::Error) -> String {
    let msg = e.message().trim().replace('\n', " ");
    match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!(" at line {line}, column {col}: {msg}")
        }
        None => format!(": {msg}"),
    }
}

/// Parses a TOML file into `T`; errors name the file, line, column and field.
pub fn read_toml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    toml::from_str(&text)
        .map_err(|e| Error::Data(format!("{}{}", path.display(), toml_error(&text, &e))))
}
