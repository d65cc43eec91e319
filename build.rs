//! Gathers every `experiments/*.toml` with a `kind` into the list of builtin experiments, so an
//! experiment file is registered by being there; and hashes the library's source into
//! `SCORESDE_SOURCE_HASH`, so stored experiment cells computed by other code are not reused.
use std::fmt::Write;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

/// Every file under `dir`, recursively.
fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            files_under(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// A hash of the paths and contents of the code that computes experiment rows.
fn source_hash(root: &Path) -> u64 {
    let mut files = Vec::new();
    for part in ["src", "solvers/src"] {
        let dir = root.join(part);
        println!("cargo:rerun-if-changed={}", dir.display());
        files_under(&dir, &mut files);
    }
    for f in ["Cargo.toml", "Cargo.lock", "solvers/Cargo.toml"] {
        println!("cargo:rerun-if-changed={}", root.join(f).display());
        files.push(root.join(f));
    }
    files.sort();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for f in &files {
        f.strip_prefix(root).unwrap_or(f).hash(&mut h);
        std::fs::read(f).unwrap_or_default().hash(&mut h);
    }
    h.finish()
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    println!(
        "cargo:rustc-env=SCORESDE_SOURCE_HASH={:016x}",
        source_hash(root)
    );
    let dir = root.join("experiments");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("experiments/ is readable")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        // Experiment definitions have a `kind`; other TOML files here are data (mixtures).
        .filter(|p| {
            std::fs::read_to_string(p)
                .is_ok_and(|t| t.lines().any(|l| l.trim_start().starts_with("kind")))
        })
        .collect();
    files.sort();
    let mut out = String::from("&[\n");
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy();
        println!("cargo:rerun-if-changed={}", f.display());
        writeln!(
            out,
            "    (\"experiments/{name}\", include_str!({:?})),",
            f.display().to_string()
        )
        .unwrap();
    }
    out.push(']');
    let dest =
        std::path::Path::new(&std::env::var("OUT_DIR").unwrap()).join("builtin_experiments.rs");
    std::fs::write(dest, out).expect("OUT_DIR is writable");
}
