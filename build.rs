//! Gathers every `experiments/*.toml` with a `kind` into the list of builtin experiments, so an
//! experiment file is registered by being there.
use std::fmt::Write;

fn main() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments");
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
