//! Experiments as cells. An experiment declares its units of work (cells: a sampler × NFE, a
//! dataset, one training), computes one cell into a typed row, and judges its claims and draws
//! its figures from the rows alone. Each computed row is stored in `OUT/cells/NAME/HASH.cbor`
//! (CBOR: every f64 exact, NaN and ±∞ included), HASH a hash of the cell's inputs (the
//! experiment's config, seed, `--quick`, the version, a hash of the library's source taken at
//! build time, and the cell), so a rerun skips finished cells — and a changed library recomputes
//! them —, `--shard I/N` computes only every N-th cell from I, and `--render-only` judges and
//! draws from stored rows.

use super::{Claim, Experiment, Outputs};
use crate::io::{fnv1a, AtomicFile};
use crate::{invalid, Error, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// An experiment split into cells. `compute` may push to `o.nfe`, `o.models` and `o.timings`
/// (kept with the row) but writes no file; `render` writes every file from the rows.
pub trait Cells: Sync {
    /// The inputs that tell one cell from another.
    type Cell: Serialize + DeserializeOwned + Send + Sync;
    /// What one cell computes: everything `render` needs of it.
    type Row: Serialize + DeserializeOwned + Send;
    /// Set-up the cells share (the exact score, prior draws, a reference solution): built at
    /// most once per process, and only when a cell is computed; cells computed side by side
    /// read it from several threads.
    type Shared: Sync;

    /// The cells, in the order `render` receives them.
    fn cells(&self, exp: &Experiment, o: &Outputs) -> Result<Vec<Self::Cell>>;
    fn shared(&self, exp: &Experiment, o: &Outputs) -> Result<Self::Shared>;
    fn compute(
        &self,
        exp: &Experiment,
        shared: &Self::Shared,
        cell: &Self::Cell,
        o: &mut Outputs,
    ) -> Result<Self::Row>;
    /// CSVs, figures and claims from the rows of every cell, in `cells` order.
    fn render(
        &self,
        exp: &Experiment,
        rows: Vec<(Self::Cell, Self::Row)>,
        o: &mut Outputs,
    ) -> Result<Vec<Claim>>;
}

/// Which part of an experiment a run does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Compute the missing cells, then render.
    All,
    /// Compute the missing cells among those of shard `index` of `count` (cell k belongs to
    /// shard k mod count); render nothing.
    Shard { index: usize, count: usize },
    /// Render from stored rows; a missing cell is an error.
    RenderOnly,
}

impl std::str::FromStr for Mode {
    type Err = Error;
    /// `I/N` with I < N: a shard.
    fn from_str(s: &str) -> Result<Self> {
        let bad = || invalid!("--shard '{s}' must be I/N with 0 ≤ I < N");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count) = (
            i.trim().parse::<usize>().map_err(|_| bad())?,
            n.trim().parse::<usize>().map_err(|_| bad())?,
        );
        if index >= count {
            return Err(bad());
        }
        Ok(Mode::Shard { index, count })
    }
}

/// What a cell's computation leaves besides its row, for the manifest.
#[derive(Default, Serialize, Deserialize)]
struct Log {
    nfe: Vec<(String, f64)>,
    models: Vec<super::model::ModelUse>,
    timings: Vec<(String, f64)>,
}

/// The stored form of one cell.
#[derive(Serialize, Deserialize)]
struct Stored<C, R> {
    experiment: String,
    index: usize,
    cell: C,
    row: R,
    log: Log,
}

/// Bumped when the stored form or the meaning of rows changes: older cells are then recomputed.
const FORMAT: u32 = 1;

/// What a run of an experiment's cells did.
pub struct Tally {
    pub cells: usize,
    pub computed: usize,
    pub reused: usize,
}

/// The folder of `exp`'s stored cells, beside its output folder `o.dir`.
pub fn folder(o: &Outputs, exp: &Experiment) -> PathBuf {
    o.dir
        .parent()
        .unwrap_or(&o.dir)
        .join("cells")
        .join(&exp.name)
}

/// Runs `p`'s cells in `mode`: claims when it rendered, `None` for a shard.
pub fn execute<C: Cells>(
    p: &C,
    exp: &Experiment,
    o: &mut Outputs,
    mode: Mode,
) -> Result<(Option<Vec<Claim>>, Tally)> {
    let cells = p.cells(exp, o)?;
    let dir = folder(o, exp);
    let base = serde_json::to_string(&serde_json::json!({
        "format": FORMAT,
        "version": env!("CARGO_PKG_VERSION"),
        "source": env!("SCORESDE_SOURCE_HASH"),
        "config": exp,
        "seed": o.seed,
        "quick": o.quick,
    }))
    .map_err(|e| invalid!("{}: config: {e}", exp.name))?;
    let mut tally = Tally {
        cells: cells.len(),
        computed: 0,
        reused: 0,
    };
    let mut rows = Vec::new();
    let mut missing = Vec::new();
    let mut todo = Vec::new();
    for (index, cell) in cells.into_iter().enumerate() {
        let key = serde_json::to_string(&cell).map_err(|e| invalid!("{}: cell: {e}", exp.name))?;
        let path = dir.join(format!(
            "{:016x}.cbor",
            fnv1a(format!("{base}\n{key}").as_bytes())
        ));
        let mine = match mode {
            Mode::Shard { index: i, count } => index % count == i,
            _ => true,
        };
        if !mine {
            continue;
        }
        if let Some(s) = load::<C>(&path, &exp.name, index) {
            tally.reused += 1;
            rows.push((index, s.cell, s.row, s.log));
        } else if mode == Mode::RenderOnly {
            missing.push(format!("{index} {key}"));
        } else {
            todo.push((index, cell, path));
        }
    }
    if !todo.is_empty() {
        let shared = p.shared(exp, o)?;
        let (out_dir, quick, seed) = (o.dir.clone(), o.quick, o.seed);
        let compute = |(index, cell, path): (usize, C::Cell, PathBuf)| {
            let _slot = Slot::take();
            let mut part = Outputs::new(out_dir.clone(), quick, seed);
            let row = p.compute(exp, &shared, &cell, &mut part)?;
            debug_assert!(part.files.is_empty(), "a cell's compute wrote files");
            let log = Log {
                nfe: part.nfe,
                models: part.models,
                timings: part.timings,
            };
            let stored = Stored {
                experiment: exp.name.clone(),
                index,
                cell,
                row,
                log,
            };
            store(&path, &dir, &stored)?;
            Ok((index, stored.cell, stored.row, stored.log))
        };
        let mut error = None;
        side_by_side(todo, slots(), compute, |r| match r {
            Ok(row) => {
                rows.push(row);
                tally.computed += 1;
            }
            Err(e) => {
                error.get_or_insert(e);
            }
        });
        if let Some(e) = error {
            return Err(e);
        }
        rows.sort_by_key(|r| r.0);
    }
    if !missing.is_empty() {
        return Err(Error::Data(format!(
            "{}: {} of {} cells not computed in {} (first: cell {}); run without --render-only or run the missing shards",
            exp.name,
            missing.len(),
            tally.cells,
            dir.display(),
            missing[0]
        )));
    }
    if let Mode::Shard { .. } = mode {
        return Ok((None, tally));
    }
    let mut ordered = Vec::with_capacity(rows.len());
    for (_, cell, row, log) in rows {
        o.nfe.extend(log.nfe);
        for m in log.models {
            // Cells sharing a model each note it: the manifest lists it once.
            if !o.models.iter().any(|u| u.dir == m.dir) {
                o.models.push(m);
            }
        }
        o.timings.extend(log.timings);
        ordered.push((cell, row));
    }
    Ok((Some(p.render(exp, ordered, o)?), tally))
}

/// How many cells compute at once in this process, over every experiment running
/// (`--jobs`; default: the rayon pool's size, so a sweep task given `RAYON_NUM_THREADS=1` by
/// `sweep local` computes one cell at a time).
static SLOTS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
static BUSY: (std::sync::Mutex<usize>, std::sync::Condvar) =
    (std::sync::Mutex::new(0), std::sync::Condvar::new());

/// Sets how many cells compute at once (before the first cell; later calls are ignored).
pub fn set_concurrency(n: usize) {
    let _ = SLOTS.set(n.max(1));
}

fn slots() -> usize {
    *SLOTS.get_or_init(rayon::current_num_threads)
}

/// One of the process's [`slots`], held while a cell computes.
struct Slot;

impl Slot {
    fn take() -> Self {
        let (m, cv) = &BUSY;
        let mut busy = m.lock().unwrap_or_else(|e| e.into_inner());
        while *busy >= slots() {
            busy = cv.wait(busy).unwrap_or_else(|e| e.into_inner());
        }
        *busy += 1;
        Slot
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let (m, cv) = &BUSY;
        *m.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
        cv.notify_one();
    }
}

/// `f` over `items` on up to `threads` plain threads (not rayon jobs: a cell may wait on a run
/// directory's lock, and a rayon thread waiting in a join could otherwise pick up a second cell
/// that waits on a lock the first holds); `each` sees every result on the calling thread as it
/// arrives. After the first error no new item starts.
pub(crate) fn side_by_side<T: Send, R: Send>(
    items: Vec<T>,
    threads: usize,
    f: impl Fn(T) -> Result<R> + Sync,
    mut each: impl FnMut(Result<R>),
) {
    use std::sync::atomic::{AtomicBool, Ordering};
    let threads = threads.min(items.len());
    if threads <= 1 {
        for it in items {
            let r = f(it);
            let failed = r.is_err();
            each(r);
            if failed {
                return;
            }
        }
        return;
    }
    let queue = std::sync::Mutex::new(items.into_iter());
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let (tx, rx) = std::sync::mpsc::channel();
        for _ in 0..threads {
            let tx = tx.clone();
            let (queue, stop, f) = (&queue, &stop, &f);
            s.spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let next = queue.lock().unwrap_or_else(|e| e.into_inner()).next();
                    let Some(it) = next else { break };
                    let r = f(it);
                    if r.is_err() {
                        stop.store(true, Ordering::SeqCst);
                    }
                    if tx.send(r).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        rx.into_iter().for_each(&mut each);
    });
}

/// A stored cell, when it exists and reads back as this experiment's cell `index`; anything
/// else (absent, cut short, another experiment's) is recomputed.
fn load<C: Cells>(path: &Path, name: &str, index: usize) -> Option<Stored<C::Cell, C::Row>> {
    let file = std::io::BufReader::new(std::fs::File::open(path).ok()?);
    let s: Stored<C::Cell, C::Row> = ciborium::from_reader(file).ok()?;
    (s.experiment == name && s.index == index).then_some(s)
}

fn store<C: Serialize, R: Serialize>(path: &Path, dir: &Path, s: &Stored<C, R>) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut body = Vec::new();
    ciborium::into_writer(s, &mut body).map_err(|e| invalid!("{}: row: {e}", s.experiment))?;
    let mut f = AtomicFile::create(path)?;
    std::io::Write::write_all(f.writer(), &body).map_err(|e| Error::io(path, e))?;
    f.commit()
}
