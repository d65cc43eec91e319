//! `sweep merge`'s pooled power-law fit: for each group of `merged.csv`'s rows (one value of
//! the `by` columns), log y = c + Σⱼ eⱼ log xⱼ by least squares over every task's rows, with 95 %
//! intervals (Student t) — the exponents a single task cannot resolve, pooled across seeds and
//! grid settings. Rows with y ≤ 0, or y ≤ 2 × the `resolved` column (an excess not resolved
//! from its noise floor), are left out; a row whose y equals, bit for bit, an earlier row's of
//! its group is the same computation repeated (a task whose grid setting does not reach this
//! group) and counts once; an x column constant within a group is left out of that group's fit
//! (its exponent is blank).

use crate::stats::regression::ols;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The `[fit]` table of a sweep spec.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PowerFit {
    /// The column fitted (positive).
    pub y: String,
    /// The columns whose exponents are fitted (positive).
    pub x: Vec<String>,
    /// One fit per combination of these columns' values.
    #[serde(default)]
    pub by: Vec<String>,
    /// A standard-error column of y: rows with y ≤ 2 × it are left out.
    #[serde(default)]
    pub resolved: Option<String>,
}

/// One group's rows: log x and log y of those used; counts of those left out and repeated.
#[derive(Default)]
struct Group {
    x: Vec<Vec<f64>>,
    y: Vec<f64>,
    seen: std::collections::HashSet<u64>,
    left: usize,
    repeated: usize,
}

/// `OUT/fit.csv`'s bytes from `merged.csv`'s and one summary line per group.
pub fn fit_table(spec: &PowerFit, csv_bytes: &[u8]) -> Result<(Vec<u8>, Vec<String>)> {
    if spec.x.is_empty() {
        return Err(Error::Data("fit: x names no column".into()));
    }
    let bad = |e: csv::Error| Error::Data(format!("merged.csv: {e}"));
    let mut rd = csv::Reader::from_reader(csv_bytes);
    let header: Vec<String> = rd
        .headers()
        .map_err(bad)?
        .iter()
        .map(String::from)
        .collect();
    let col = |c: &str| {
        header.iter().position(|h| h == c).ok_or_else(|| {
            Error::Data(format!(
                "fit: '{c}' is not a column of merged.csv (columns: {})",
                header.join(", ")
            ))
        })
    };
    let yi = col(&spec.y)?;
    let xi: Vec<usize> = spec.x.iter().map(|c| col(c)).collect::<Result<_>>()?;
    let bi: Vec<usize> = spec.by.iter().map(|c| col(c)).collect::<Result<_>>()?;
    let si = spec.resolved.as_deref().map(col).transpose()?;
    let mut groups: BTreeMap<Vec<String>, Group> = BTreeMap::new();
    for row in rd.records() {
        let row = row.map_err(bad)?;
        let num = |i: usize| row.get(i).and_then(|v| v.parse::<f64>().ok());
        let key: Vec<String> = bi
            .iter()
            .map(|&i| row.get(i).unwrap_or("").into())
            .collect();
        let g = groups.entry(key).or_default();
        let xs: Option<Vec<f64>> = xi.iter().map(|&i| num(i).filter(|v| *v > 0.0)).collect();
        let floor = si.map_or(Some(0.0), |i| num(i).map(|s| 2.0 * s));
        match (num(yi), xs, floor) {
            (Some(y), _, _) if !g.seen.insert(y.to_bits()) => g.repeated += 1,
            (Some(y), Some(xs), Some(floor)) if y > 0.0 && y > floor && y.is_finite() => {
                g.x.push(xs.iter().map(|v| v.ln()).collect());
                g.y.push(y.ln());
            }
            _ => g.left += 1,
        }
    }
    let mut out = csv::Writer::from_writer(Vec::new());
    let mut head: Vec<String> = spec.by.clone();
    head.extend([
        "points".into(),
        "left_out".into(),
        "repeated".into(),
        "log_c".into(),
        "log_c_half95".into(),
    ]);
    for x in &spec.x {
        head.extend([format!("{x}_exponent"), format!("{x}_half95")]);
    }
    out.write_record(&head).map_err(bad)?;
    let mut lines = Vec::new();
    for (key, g) in groups {
        let (lx, ly) = (g.x, g.y);
        // The x columns that vary within this group.
        let varying: Vec<usize> = (0..spec.x.len())
            .filter(|&j| lx.iter().any(|r| r[j] != lx[0][j]))
            .collect();
        let x: Vec<Vec<f64>> = lx
            .iter()
            .map(|r| varying.iter().map(|&j| r[j]).collect())
            .collect();
        let fitted = if x.is_empty() { None } else { ols(&x, &ly) };
        let mut rec = key.clone();
        rec.extend([ly.len(), g.left, g.repeated].map(|v| v.to_string()));
        let mut said = Vec::new();
        match &fitted {
            Some((b, h)) => {
                rec.extend([b[0].to_string(), h[0].to_string()]);
                for j in 0..spec.x.len() {
                    match varying.iter().position(|&v| v == j) {
                        Some(k) => {
                            rec.extend([b[k + 1].to_string(), h[k + 1].to_string()]);
                            said.push(format!("{} {:.2} ± {:.2}", spec.x[j], b[k + 1], h[k + 1]));
                        }
                        None => rec.extend([String::new(), String::new()]),
                    }
                }
            }
            None => rec.extend(std::iter::repeat_n(String::new(), 2 + 2 * spec.x.len())),
        }
        out.write_record(&rec).map_err(bad)?;
        let what = if said.is_empty() {
            "no fit (too few resolved points)".to_string()
        } else {
            format!("exponents {}", said.join(", "))
        };
        lines.push(format!(
            "{}: {what} ({} points, {} left out, {} repeated)",
            if key.is_empty() {
                spec.y.clone()
            } else {
                key.join(", ")
            },
            ly.len(),
            g.left,
            g.repeated
        ));
    }
    let body = out.into_inner().map_err(|e| Error::Data(e.to_string()))?;
    Ok((body, lines))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> PowerFit {
        PowerFit {
            y: "err".into(),
            x: vec!["d".into(), "steps".into(), "k".into()],
            by: vec!["sampler".into()],
            resolved: Some("se".into()),
        }
    }

    /// Two groups with known laws err = 0.1 d^1 T^−2 (times a uniform ±1 % wiggle, seed 7) and
    /// err = 0.3 d^0.5 T^−1: the exponents are recovered inside their intervals and a wrong
    /// one is excluded; k is constant in a group (blank exponent); unresolved and
    /// non-positive rows are left out and a repeated row counts once.
    #[test]
    fn recovers_exponents_per_group() {
        let mut csv = String::from("sampler,d,steps,k,err,se\n");
        use rand::{Rng, SeedableRng};
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(7);
        for (name, c, a, b) in [("ddpm", 0.1, 1.0, 2.0), ("em", 0.3, 0.5, 1.0)] {
            let mut first = None;
            for d in [2.0f64, 4.0, 8.0, 16.0] {
                for t in [25.0f64, 50.0, 100.0] {
                    let wiggle = 1.0 + rng.random_range(-0.01..0.01);
                    let e = c * d.powf(a) * t.powf(-b) * wiggle;
                    first.get_or_insert(e);
                    csv.push_str(&format!("{name},{d},{t},2,{e},{}\n", e / 100.0));
                }
            }
            csv.push_str(&format!("{name},2,25,2,-1e-3,1e-4\n"));
            csv.push_str(&format!("{name},2,25,2,1e-3,1e-2\n"));
            // The first row again from a task whose k does not reach this group.
            let e = first.unwrap();
            csv.push_str(&format!("{name},2,25,4,{e},{}\n", e / 100.0));
        }
        let (bytes, lines) = fit_table(&spec(), csv.as_bytes()).unwrap();
        let text = String::from_utf8(bytes).unwrap();
        let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split(',').collect()).collect();
        assert_eq!(
            rows[0][0..5],
            ["sampler", "points", "left_out", "repeated", "log_c"]
        );
        for (r, (a, b)) in rows[1..].iter().zip([(1.0, -2.0), (0.5, -1.0)]) {
            assert_eq!(r[1..4], ["12", "2", "1"], "{r:?}");
            let f = |i: usize| r[i].parse::<f64>().unwrap();
            assert!((f(6) - a).abs() < f(7) && f(7) < 0.05, "d exponent {r:?}");
            assert!((f(8) - b).abs() < f(9) && f(9) < 0.05, "T exponent {r:?}");
            assert!(
                (f(6) - a - 0.1).abs() > f(7),
                "a wrong exponent is excluded"
            );
            assert_eq!(r[10..12], ["", ""], "k is constant");
        }
        assert_eq!(lines.len(), 2);
        assert!(
            lines[0].starts_with("ddpm: exponents d 1.00"),
            "{}",
            lines[0]
        );
        let mut bad = spec();
        bad.x.push("nope".into());
        let e = fit_table(&bad, csv.as_bytes()).unwrap_err().to_string();
        assert!(e.contains("'nope' is not a column"), "{e}");
    }
}
