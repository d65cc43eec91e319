//! A real data set no one here made: the 8×8 handwritten digits of the UCI optdigits test set
//! (Alpaydin & Kaynak 1998), as scikit-learn ships it (`load_digits`); provenance, licence and
//! checksum in `assets/optdigits/README.md`. The file is compiled in, so no path is needed.

use crate::{Error, Result};
use ndarray::Array2;

/// `assets/optdigits/digits.csv`: 1797 rows of 64 pixel counts in 0..16 and the digit.
const CSV: &str = include_str!("../../assets/optdigits/digits.csv");

/// Pixels per image (8 × 8).
pub const OPTDIGITS_DIM: usize = 64;

/// The 1797 images, each a row of 64 pixels scaled to [−1, 1] (count / 8 − 1, row by row
/// from the top left), and their digits 0–9.
pub fn optdigits() -> Result<(Array2<f64>, Vec<usize>)> {
    let bad = |line: usize, what: &str| Error::Data(format!("optdigits line {line}: {what}"));
    let (mut x, mut labels) = (Vec::new(), Vec::new());
    for (i, line) in CSV.lines().enumerate() {
        let v: Vec<u32> = line
            .split(',')
            .map(|f| f.trim().parse().map_err(|_| bad(i + 1, "not an integer")))
            .collect::<Result<_>>()?;
        if v.len() != OPTDIGITS_DIM + 1 || v.iter().any(|&p| p > 16) {
            return Err(bad(i + 1, "expected 64 counts in 0..16 and a digit"));
        }
        x.extend(v[..OPTDIGITS_DIM].iter().map(|&p| p as f64 / 8.0 - 1.0));
        labels.push(v[OPTDIGITS_DIM] as usize);
    }
    let n = labels.len();
    let x = Array2::from_shape_vec((n, OPTDIGITS_DIM), x).expect("rows of 64");
    Ok((x, labels))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_file_is_the_1797_digits() {
        let (x, y) = optdigits().unwrap();
        assert_eq!(x.dim(), (1797, 64));
        assert!(x.iter().all(|v| (-1.0..=1.0).contains(v)));
        let mut counts = [0; 10];
        y.iter().for_each(|&c| counts[c] += 1);
        // scikit-learn's DESCR: 1797 instances, every class between 174 and 183.
        assert_eq!(counts, [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]);
        // The first image of load_digits() (a 0), row 0: 0 0 5 13 9 1 0 0.
        let row0: Vec<f64> = [0., 0., 5., 13., 9., 1., 0., 0.]
            .map(|p| p / 8.0 - 1.0)
            .into();
        assert_eq!(x.row(0).as_slice().unwrap()[..8], row0[..]);
        assert_eq!(y[0], 0);
    }
}
