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
    /// Starts writing `path`. A symlink is written through (its target is replaced, the link
    /// kept); anything at `path` other than a regular file (a directory, device node, FIFO or
    /// socket) is refused. The file gets the umask's permissions, as `open(2)` would give it.
    pub fn create(path: impl AsRef<Path>) -> Result<Self> {
        Self::create_with_suffix(path, ".tmp")
    }

    /// [`AtomicFile::create`] with a temporary name ending in `suffix` (writers that pick the
    /// format by extension).
    pub fn create_with_suffix(path: impl AsRef<Path>, suffix: &str) -> Result<Self> {
        let path = resolve_links(path.as_ref())?;
        if let Ok(meta) = std::fs::metadata(&path) {
            if !meta.is_file() {
                let what = if meta.is_dir() {
                    "a directory"
                } else {
                    "not a regular file (a device, FIFO or socket)"
                };
                return Err(Error::Data(format!(
                    "refusing to write {}: it is {what}",
                    path.display()
                )));
            }
        }
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        remove_stale_files(&dir);
        let prefix = format!("{TMP_PREFIX}{}-", std::process::id());
        let mut b = tempfile::Builder::new();
        b.prefix(&prefix).suffix(suffix);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            b.permissions(std::fs::Permissions::from_mode(0o666));
        }
        // Created and registered under the lock, so a signal handler never misses it.
        let mut pending = pending();
        let tmp = b
            .tempfile_in(&dir)
            .map_err(|e| Error::Data(format!("cannot write {}: {e}", path.display())))?;
        pending.push(tmp.path().to_path_buf());
        Ok(Self { path, tmp })
    }

    /// Where the content goes until the commit.
    pub fn tmp_path(&self) -> &Path {
        self.tmp.path()
    }

    /// Runs `write`, which writes the temporary file by its path (a library that opens the
    /// path itself), holding the pending-file lock: a signal handler waits for it and then
    /// removes the file, instead of removing it while `write` creates it anew.
    pub fn write_by_path<T>(&self, write: impl FnOnce(&Path) -> T) -> T {
        let _pending = pending();
        write(self.tmp.path())
    }

    pub fn writer(&mut self) -> &mut std::fs::File {
        self.tmp.as_file_mut()
    }

    /// Flushes the file to disk and renames it into place.
    pub fn commit(self) -> Result<()> {
        let path = self.path;
        if injected_failure() {
            return Err(Error::Data(format!(
                "cannot write {}: injected write failure",
                path.display()
            )));
        }
        self.tmp
            .as_file()
            .sync_all()
            .map_err(|e| Error::io(&path, e))?;
        let tmp_path = self.tmp.path().to_path_buf();
        let mut pending = pending();
        self.tmp
            .persist(&path)
            .map_err(|e| Error::io(&path, e.error))?;
        pending.retain(|p| *p != tmp_path);
        Ok(())
    }
}

/// Temporary files start `.scoresde-PID-`: a later run in the same directory removes those
/// whose process is gone (killed by SIGKILL, which no handler sees).
const TMP_PREFIX: &str = ".scoresde-";

/// Removes the temporary files in `dir` left by processes that no longer run.
fn remove_stale_files(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.filter_map(|e| e.ok()) {
        let name = e.file_name().to_string_lossy().to_string();
        let pid = name
            .strip_prefix(TMP_PREFIX)
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<i32>().ok());
        if pid.is_some_and(|p| p > 0 && !process_alive(p))
            && e.file_type().is_ok_and(|t| t.is_file())
        {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Whether process `pid` exists (signal 0: no signal is sent).
fn process_alive(pid: i32) -> bool {
    #[cfg(unix)]
    {
        // SAFETY: kill with signal 0 only checks that the process exists.
        let r = unsafe { libc::kill(pid, 0) };
        r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        true
    }
}

/// Temporary files of uncommitted [`AtomicFile`]s (entries of dropped ones point nowhere).
static PENDING: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

fn pending() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    PENDING.lock().unwrap_or_else(|e| e.into_inner())
}

/// Deletes the temporary files of every uncommitted [`AtomicFile`]: for a signal handler
/// (SIGINT, SIGTERM), which ends the process without running destructors.
pub fn remove_pending_files() {
    for p in pending().drain(..) {
        let _ = std::fs::remove_file(p);
    }
}

/// Deletes every pending temporary file, prints `message` on stderr and exits with `code`,
/// holding the lock of the pending list so that no other thread creates or renames a
/// temporary file in between (a signal arriving during a save leaves none behind).
pub fn exit_removing_pending(code: i32, message: &str) -> ! {
    let mut pending = pending();
    for p in pending.drain(..) {
        let _ = std::fs::remove_file(p);
    }
    eprintln!("{message}");
    std::process::exit(code)
}

/// Commits left before an injected failure (`usize::MAX`: none). Test support only.
static FAIL_AFTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(usize::MAX);

/// Makes the `(n + 1)`-th [`AtomicFile::commit`] from now fail, as a full disk would (`None`:
/// stop injecting). For fault-injection tests of interrupted saves.
#[doc(hidden)]
pub fn inject_write_failure(n: Option<usize>) {
    FAIL_AFTER.store(n.unwrap_or(usize::MAX), std::sync::atomic::Ordering::SeqCst);
}

fn injected_failure() -> bool {
    use std::sync::atomic::Ordering::SeqCst;
    FAIL_AFTER
        .fetch_update(SeqCst, SeqCst, |n| match n {
            usize::MAX => None,
            0 => Some(usize::MAX),
            n => Some(n - 1),
        })
        .is_ok_and(|prev| prev == 0)
}

/// Creates `dir` and its missing parents; returns the directories it created, outermost first.
pub fn create_dirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut missing: Vec<PathBuf> = dir
        .ancestors()
        .take_while(|p| !p.as_os_str().is_empty() && !p.exists())
        .map(Path::to_path_buf)
        .collect();
    missing.reverse();
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    Ok(missing)
}

/// Removes the directories of `created` (from [`create_dirs`]) that are empty, innermost first.
pub fn remove_empty_dirs(created: &[PathBuf]) {
    for d in created.iter().rev() {
        let _ = std::fs::remove_dir(d);
    }
}

/// 64-bit FNV-1a of `bytes`: a stable fingerprint (std's hasher may change between releases).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The path a write to `path` should replace: `path` itself, or the final target of a chain of
/// symlinks (relative targets resolved against the link's directory; at most 40 links).
fn resolve_links(path: &Path) -> Result<PathBuf> {
    let mut p = path.to_path_buf();
    for _ in 0..40 {
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let target = std::fs::read_link(&p).map_err(|e| Error::io(&p, e))?;
                p = match p.parent() {
                    Some(dir) if target.is_relative() => dir.join(target),
                    _ => target,
                };
            }
            _ => return Ok(p),
        }
    }
    Err(Error::Data(format!(
        "cannot write {}: too many levels of symbolic links",
        path.display()
    )))
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

/// Reads a CSV of points (one header row, not all numbers; one point per row, all finite).
pub fn read_csv(path: impl AsRef<Path>) -> Result<Array2<f64>> {
    let path = path.as_ref();
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(|e| Error::Data(format!("{}: {e}", path.display())))?;
    let header = rdr
        .headers()
        .map_err(|e| Error::Data(format!("{}: {e}", path.display())))?;
    // The rule: the first row is a header. One made of numbers is a file without a header,
    // refused rather than silently losing its first point.
    if header.iter().all(|f| f.parse::<f64>().is_ok()) {
        return Err(Error::Data(format!(
            "{}: the first row holds numbers, not a header; a points CSV starts with a header row (x0,x1,…)",
            path.display()
        )));
    }
    let d = header.len();
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

/// The serde name of a unit enum variant (`Variance::BetaTilde` → `beta-tilde`): the one
/// spelling configs, the CLI and outputs share.
pub fn variant_name<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

/// The field names of a struct with derived `Deserialize`, as serde sees them (renames
/// applied): asked of the derive itself, so no list is written twice.
pub fn field_names<'de, T: serde::Deserialize<'de>>() -> &'static [&'static str] {
    /// A deserializer that only records the `fields` a struct asks for.
    struct Fields(Option<&'static [&'static str]>);
    #[derive(Debug)]
    struct Stop;
    impl std::fmt::Display for Stop {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("fields recorded")
        }
    }
    impl std::error::Error for Stop {}
    impl serde::de::Error for Stop {
        fn custom<M: std::fmt::Display>(_: M) -> Self {
            Stop
        }
    }
    impl<'de> serde::Deserializer<'de> for &mut Fields {
        type Error = Stop;
        fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
            Err(Stop)
        }
        fn deserialize_struct<V: serde::de::Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Stop> {
            self.0 = Some(fields);
            Err(Stop)
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
            identifier ignored_any
        }
    }
    let mut d = Fields(None);
    let _ = T::deserialize(&mut d);
    d.0.unwrap_or(&[])
}
