//! `OUT/index.html`: every experiment found in an output directory (each `*/manifest.json`), its
//! figures, its claims and their verdicts, on one page. Plain HTML and CSS, no script needed to
//! read it; a small script marks images that fail to load (`data-broken` on `<body>`), which the
//! headless-browser check reads.

use crate::io::AtomicFile;
use crate::{Error, Result};
use serde_json::Value;
use std::fmt::Write;
use std::path::Path;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// One experiment's manifest, as read back.
struct Entry {
    dir: String,
    manifest: Value,
}

impl Entry {
    fn str(&self, key: &str) -> &str {
        self.manifest[key].as_str().unwrap_or("")
    }
    fn claims(&self) -> &[Value] {
        self.manifest["claims"].as_array().map_or(&[], |v| v)
    }
    /// Asserted claims that failed, and reported-only claims not met.
    fn failures(&self) -> (usize, usize) {
        let failed = |c: &&Value| c["verdict"] != "pass";
        let asserted = |c: &&Value| c["asserted"].as_bool().unwrap_or(true);
        let f = self.claims().iter().filter(failed);
        let hard = f.clone().filter(asserted).count();
        (hard, f.count() - hard)
    }
}

const STYLE: &str = "body{font-family:sans-serif;margin:2em auto;max-width:1400px;padding:0 1em;color:#222}\
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}\
th{background:#f3f3f3}.pass{color:#05734c;font-weight:bold}.fail{color:#b00020;font-weight:bold}.note{color:#8a6d00;font-weight:bold}\
img{max-width:100%;border:1px solid #ddd;margin:.4em 0}section{border-top:2px solid #444;margin-top:2em}\
code{background:#f3f3f3;padding:0 .2em}";

const SCRIPT: &str = "window.addEventListener('load',function(){var b=0,n=0;\
document.querySelectorAll('img').forEach(function(i){n++;if(!(i.complete&&i.naturalWidth>0)){b++;i.classList.add('broken');}});\
document.body.dataset.images=n;document.body.dataset.broken=b;});";

/// Writes `out/index.html` from every `out/*/manifest.json`, experiments in name order.
/// Returns the number of experiments listed.
pub fn write_index(out: &Path) -> Result<usize> {
    let mut entries = Vec::new();
    let dirs = std::fs::read_dir(out).map_err(|e| Error::io(out, e))?;
    for d in dirs.flatten() {
        let m = d.path().join("manifest.json");
        let Ok(text) = std::fs::read_to_string(&m) else {
            continue;
        };
        let manifest: Value = serde_json::from_str(&text)
            .map_err(|e| Error::Data(format!("{}: {e}", m.display())))?;
        entries.push(Entry {
            dir: d.file_name().to_string_lossy().into_owned(),
            manifest,
        });
    }
    entries.sort_by(|a, b| a.dir.cmp(&b.dir));
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>scoresde figures</title>\
         <style>{STYLE}</style><script>{SCRIPT}</script></head><body>\n<h1>scoresde figures</h1>\n\
         <p>{} experiments. Asserted claims fail a run; reported claims record a paper's finding that \
         need not transfer to toy data.</p>\n<table><tr><th>experiment</th><th>claims</th>\
         <th>asserted failed</th><th>reported, not met</th><th>size</th><th>wall</th></tr>\n",
        entries.len()
    );
    for e in &entries {
        let (hard, soft) = e.failures();
        let _ = writeln!(
            h,
            "<tr><td><a href=\"#{id}\">{id}</a></td><td>{}</td><td class=\"{}\">{hard}</td><td>{soft}</td><td>{}</td><td>{:.1} s</td></tr>",
            e.claims().len(),
            if hard == 0 { "pass" } else { "fail" },
            if e.manifest["quick"].as_bool().unwrap_or(false) { "quick" } else { "full" },
            e.manifest["wall_seconds"].as_f64().unwrap_or(f64::NAN),
            id = esc(&e.dir),
        );
    }
    h.push_str("</table>\n");
    for e in &entries {
        let _ = write!(
            h,
            "<section id=\"{id}\"><h2>{name}</h2>\n<p>{}</p>\n<p>seed {}, git {}, files in <code>{id}/</code></p>\n",
            esc(e.str("description")),
            e.manifest["seed"],
            esc(e.str("git_revision")),
            id = esc(&e.dir),
            name = esc(e.str("name")),
        );
        let files = e.manifest["files"].as_array().map_or(&[][..], |v| v);
        for f in files.iter().filter_map(Value::as_str) {
            if f.ends_with(".png") {
                let src = format!("{}/{f}", e.dir);
                let _ = writeln!(h, "<div><img src=\"{0}\" alt=\"{0}\"></div>", esc(&src));
            }
        }
        h.push_str("<table><tr><th>claim</th><th>statistic</th><th>threshold</th><th>kind</th><th>verdict</th></tr>\n");
        for c in e.claims() {
            let asserted = c["asserted"].as_bool().unwrap_or(true);
            let pass = c["verdict"] == "pass";
            let (class, word) = match (pass, asserted) {
                (true, _) => ("pass", "pass"),
                (false, true) => ("fail", "FAIL"),
                (false, false) => ("note", "not met"),
            };
            let stat = c["statistic"]
                .as_f64()
                .map_or("–".to_string(), |v| format!("{v:.4e}"));
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{stat}</td><td>{}</td><td>{}</td><td class=\"{class}\">{word}</td></tr>",
                esc(c["name"].as_str().unwrap_or("")),
                esc(c["threshold"].as_str().unwrap_or("")),
                if asserted { "asserted" } else { "reported" },
            );
        }
        h.push_str("</table></section>\n");
    }
    h.push_str("</body></html>\n");
    let path = out.join("index.html");
    let mut f = AtomicFile::create(&path)?;
    std::io::Write::write_all(f.writer(), h.as_bytes()).map_err(|e| Error::io(&path, e))?;
    f.commit()?;
    Ok(entries.len())
}
