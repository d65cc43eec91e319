//! Figures with plotters: one embedded open font (DejaVu Sans, `assets/fonts`), so figures render
//! the same on every machine; the Okabe–Ito colour-blind-safe palette; titled charts with
//! labelled axes and legends; PNG or SVG by file extension, written atomically.

use crate::{Error, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;
use std::sync::Once;

/// The family name the embedded font is registered under.
pub const FONT: &str = "sans-serif";
static FONT_BYTES: &[u8] = include_bytes!("../assets/fonts/DejaVuSans.ttf");
static REGISTER: Once = Once::new();

fn register_font() {
    REGISTER.call_once(|| {
        for style in [FontStyle::Normal, FontStyle::Bold] {
            plotters::style::register_font(FONT, style, FONT_BYTES)
                .unwrap_or_else(|_| panic!("the embedded font is valid"));
        }
    });
}

/// Okabe & Ito (2008) palette: distinguishable under the common colour-vision deficiencies.
pub const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 114, 178),   // blue
    RGBColor(213, 94, 0),    // vermillion
    RGBColor(0, 158, 115),   // bluish green
    RGBColor(204, 121, 167), // reddish purple
    RGBColor(230, 159, 0),   // orange
    RGBColor(86, 180, 233),  // sky blue
    RGBColor(240, 228, 66),  // yellow
    RGBColor(0, 0, 0),       // black
];

/// Line pattern of a series.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dash {
    Solid,
    Dashed,
    Dotted,
}

/// Marker shape of a series' points.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    Circle,
    Triangle,
    Square,
    Cross,
}

/// How series `i` of `n` is told apart from the others: colour `i mod 8`, dash `i mod 3`,
/// marker `(i + ⌊i/8⌋) mod 4`, so among the first 24 series two of one colour differ in both
/// dash and marker (i and i + 8: dash by 8 mod 3 = 2, marker by 9 mod 4 = 1). A series drawn
/// earlier is wider, so a later one lying on top of it leaves its edges (and, dashed, its
/// colour between the dashes) visible.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Style {
    pub color: RGBColor,
    pub dash: Dash,
    pub shape: Shape,
    pub width: u32,
}

impl Style {
    /// The style of series `i` of `n`.
    pub fn of(i: usize, n: usize) -> Self {
        const DASHES: [Dash; 3] = [Dash::Solid, Dash::Dashed, Dash::Dotted];
        const SHAPES: [Shape; 4] = [Shape::Circle, Shape::Triangle, Shape::Square, Shape::Cross];
        Self {
            color: PALETTE[i % PALETTE.len()],
            dash: DASHES[i % 3],
            shape: SHAPES[(i + i / PALETTE.len()) % 4],
            width: if n > 1 && i == 0 { 4 } else { 2 },
        }
    }
}

/// The outline of a marker of `shape`, `r` pixels in radius, around (0, 0) in pixels.
fn marker_outline(shape: Shape, r: i32) -> Vec<(i32, i32)> {
    let rf = r as f64;
    let round = |a: f64, b: f64| (a.round() as i32, b.round() as i32);
    match shape {
        Shape::Circle => (0..12)
            .map(|k| {
                let a = k as f64 * std::f64::consts::PI / 6.0;
                round(rf * a.cos(), rf * a.sin())
            })
            .collect(),
        Shape::Triangle => {
            let h = rf + 1.0;
            vec![round(0.0, -h), round(h, 0.75 * h), round(-h, 0.75 * h)]
        }
        Shape::Square => vec![(-r, -r), (r, -r), (r, r), (-r, r)],
        Shape::Cross => {
            // An X of two bars, half-width 1 pixel.
            let (a, w) = (r + 1, 1);
            vec![
                (-a, -a + w),
                (-a + w, -a),
                (0, -w),
                (a - w, -a),
                (a, -a + w),
                (w, 0),
                (a, a - w),
                (a - w, a),
                (0, w),
                (-a + w, a),
                (-a, a - w),
                (-w, 0),
            ]
        }
    }
}

/// The three stretches (from, to) in pixels that draw a 24-pixel legend line in `dash`.
fn legend_dashes(dash: Dash) -> [(i32, i32); 3] {
    match dash {
        Dash::Solid => [(0, 24), (0, 0), (0, 0)],
        Dash::Dashed => [(0, 7), (9, 16), (18, 24)],
        Dash::Dotted => [(0, 2), (11, 13), (22, 24)],
    }
}

/// How a series is drawn.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Mark {
    Line,
    LineAndPoints,
    Points,
    /// Consecutive point pairs are arrows (tail, head): a quiver plot of a vector field.
    Arrows,
}

/// One labelled series.
#[derive(Clone, Debug)]
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
    pub mark: Mark,
}

impl Series {
    fn new(label: impl Into<String>, points: Vec<(f64, f64)>, mark: Mark) -> Self {
        Self {
            label: label.into(),
            points,
            mark,
        }
    }
    /// A line through the points; a non-finite point breaks it (several polylines, one legend
    /// entry).
    pub fn line(label: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self::new(label, points, Mark::Line)
    }
    /// A line with a marker at each point.
    pub fn line_points(label: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self::new(label, points, Mark::LineAndPoints)
    }
    /// Markers only (a scatter plot).
    pub fn scatter(label: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self::new(label, points, Mark::Points)
    }
    /// Consecutive point pairs as arrows (tail, head): a quiver plot.
    pub fn arrows(label: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self::new(label, points, Mark::Arrows)
    }
}

/// A 2D chart of series.
#[derive(Clone, Debug, Default)]
pub struct Chart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub log_x: bool,
    pub log_y: bool,
    pub series: Vec<Series>,
    /// Fixed axis ranges `[x, y]` (default: fitted to the points), e.g. to share axes between
    /// side-by-side panels.
    pub limits: Option<[(f64, f64); 2]>,
}

fn perr(path: &Path) -> impl Fn(String) -> Error + '_ {
    move |e| Error::Data(format!("cannot draw {}: {e}", path.display()))
}

/// Renders onto a temporary file next to `path` (same extension) and renames it into place.
pub fn render(
    path: &Path,
    size: (u32, u32),
    draw: impl FnOnce(&DrawingArea<BitMapBackend, Shift>) -> Result<()>,
    draw_svg: impl FnOnce(&DrawingArea<SVGBackend, Shift>) -> Result<()>,
) -> Result<()> {
    register_font();
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let tmp = crate::io::AtomicFile::create_with_suffix(path, &format!(".{ext}"))?;
    match ext {
        "png" => {
            let root = BitMapBackend::new(tmp.tmp_path(), size).into_drawing_area();
            root.fill(&WHITE).map_err(|e| perr(path)(e.to_string()))?;
            draw(&root)?;
            tmp.write_by_path(|_| root.present())
                .map_err(|e| perr(path)(e.to_string()))?;
        }
        "svg" => {
            let root = SVGBackend::new(tmp.tmp_path(), size).into_drawing_area();
            root.fill(&WHITE).map_err(|e| perr(path)(e.to_string()))?;
            draw_svg(&root)?;
            tmp.write_by_path(|_| root.present())
                .map_err(|e| perr(path)(e.to_string()))?;
        }
        other => {
            return Err(perr(path)(format!(
                "unknown image format '.{other}' (png or svg)"
            )))
        }
    }
    tmp.commit()
}

/// Draws `chart` to `path` (`.png` or `.svg`).
pub fn line_chart(path: &Path, chart: &Chart) -> Result<()> {
    render(
        path,
        (900, 600),
        |a| draw_chart(a, chart, path),
        |a| draw_chart(a, chart, path),
    )
}

fn range(v: impl Iterator<Item = f64>, log: bool) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for x in v.filter(|x| x.is_finite() && (!log || *x > 0.0)) {
        lo = lo.min(x);
        hi = hi.max(x);
    }
    if !lo.is_finite() {
        return if log { (0.1, 10.0) } else { (0.0, 1.0) };
    }
    if log {
        // Start at the decade below so that the axis always carries a labelled tick.
        let pad = (hi / lo).powf(0.04);
        let decade = 10f64.powf(lo.log10().floor());
        ((lo / pad).min(decade), hi * pad)
    } else {
        let pad = ((hi - lo) * 0.04).max(1e-12 * hi.abs().max(1.0));
        (lo - pad, hi + pad)
    }
}

/// A tick label with at most 4 significant digits: `0.001`, `250`, `1e-5` (never `9.999999e-5`).
fn tick(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let r: f64 = format!("{v:.3e}").parse().unwrap_or(v);
    if (1e-3..1e5).contains(&r.abs()) {
        format!("{r}")
    } else {
        format!("{r:e}")
    }
}

/// A tick label; on a log axis only at 1, 2 and 5 × 10^k (at powers of ten alone when the axis
/// spans more than 2.5 decades), so neighbouring labels never run together ("90100").
fn axis_tick(v: f64, log: bool, (lo, hi): (f64, f64)) -> String {
    if log && v > 0.0 && lo > 0.0 {
        let keep: &[f64] = if (hi / lo).log10() > 2.5 {
            &[1.0]
        } else {
            &[1.0, 2.0, 5.0]
        };
        let m = v / 10f64.powf(v.log10().floor());
        let near = |k: f64| (m - k).abs() < 1e-6 * k || (m - 10.0 * k).abs() < 1e-5 * k;
        if !keep.iter().any(|&k| near(k)) {
            return String::new();
        }
    }
    // A linear axis's tick at 0 can arrive as ±2e-16 (accumulated steps): print it as 0.
    if !log && v.abs() < 1e-9 * (hi - lo).abs() {
        return tick(0.0);
    }
    tick(v)
}

/// A heat map of a scalar field over a rectangle, with line overlays (e.g. sample paths).
#[derive(Clone, Debug, Default)]
pub struct Heatmap {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    /// What the colour shows (colour-bar label).
    pub value_label: String,
    pub x_range: (f64, f64),
    pub y_range: (f64, f64),
    /// `values[[i, j]]`: cell i of nx along x, cell j of ny along y; NaN cells are left blank.
    pub values: ndarray::Array2<f64>,
    pub overlays: Vec<Overlay>,
}

/// A family of paths drawn over a heat map in one colour, with one legend entry.
#[derive(Clone, Debug)]
pub struct Overlay {
    pub label: String,
    pub paths: Vec<Vec<(f64, f64)>>,
    pub color: RGBColor,
    pub width: u32,
}

/// One panel of a multi-panel figure.
#[derive(Clone, Debug)]
pub enum Panel {
    Chart(Chart),
    Heat(Heatmap),
}

impl From<Chart> for Panel {
    fn from(c: Chart) -> Self {
        Panel::Chart(c)
    }
}

impl From<Heatmap> for Panel {
    fn from(h: Heatmap) -> Self {
        Panel::Heat(h)
    }
}

/// Draws several panels in one image (`.png` or `.svg`), in rows of `cols` panels.
pub fn panels(path: &Path, panels: &[Panel], cols: usize) -> Result<()> {
    let cols = cols.clamp(1, panels.len().max(1));
    let rows = panels.len().div_ceil(cols).max(1);
    let size = (600 * cols as u32, 560 * rows as u32);
    fn each<DB: DrawingBackend>(
        a: &DrawingArea<DB, Shift>,
        panels: &[Panel],
        rows: usize,
        cols: usize,
        path: &Path,
    ) -> Result<()> {
        for (area, p) in a.split_evenly((rows, cols)).iter().zip(panels) {
            match p {
                Panel::Chart(c) => draw_chart(area, c, path)?,
                Panel::Heat(h) => draw_heatmap(area, h, path)?,
            }
        }
        Ok(())
    }
    render(
        path,
        size,
        |a| each(a, panels, rows, cols, path),
        |a| each(a, panels, rows, cols, path),
    )
}

/// The legend's sample of a series drawn in colour `c`.
fn legend_mark(c: RGBColor) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(3))
}

/// The legend box, upper right, in the embedded font.
fn draw_legend<'a, DB: DrawingBackend + 'a, CT: plotters::coord::CoordTranslate>(
    ctx: &mut ChartContext<'a, DB, CT>,
    path: &Path,
) -> Result<()> {
    ctx.configure_series_labels()
        .label_font((FONT, 15))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(|e| perr(path)(e.to_string()))
}

/// Viridis colour of `v` ∈ [0, 1].
fn viridis(v: f64) -> RGBColor {
    use plotters::style::colors::colormaps::{ColorMap, ViridisRGB};
    ViridisRGB.get_color(v.clamp(0.0, 1.0) as f32)
}

/// Draws a heat map with a colour bar on any plotters drawing area.
pub fn draw_heatmap<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    h: &Heatmap,
    path: &Path,
) -> Result<()> {
    let err = |e: String| perr(path)(e);
    let (w, _) = area.dim_in_pixel();
    let (main, bar) = area.split_horizontally(w.saturating_sub(110));
    let (lo, hi) = h
        .values
        .iter()
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    let (lo, hi) = if lo < hi {
        (lo, hi)
    } else {
        (lo - 0.5, lo + 0.5)
    };
    let norm = |v: f64| (v - lo) / (hi - lo);
    let (nx, ny) = h.values.dim();
    let (x0, x1) = h.x_range;
    let (y0, y1) = h.y_range;
    let (dx, dy) = ((x1 - x0) / nx as f64, (y1 - y0) / ny as f64);
    let mut ctx = ChartBuilder::on(&main)
        .caption(&h.title, (FONT, 24))
        .margin(14)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(|e| err(e.to_string()))?;
    ctx.configure_mesh()
        .disable_mesh()
        .x_label_formatter(&|v| tick(*v))
        .y_label_formatter(&|v| tick(*v))
        .x_desc(&h.x_label)
        .y_desc(&h.y_label)
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 17))
        .draw()
        .map_err(|e| err(e.to_string()))?;
    let cells = (0..nx).flat_map(|i| (0..ny).map(move |j| (i, j)));
    ctx.draw_series(
        cells
            .filter(|&(i, j)| h.values[[i, j]].is_finite())
            .map(|(i, j)| {
                let (a, b) = (x0 + i as f64 * dx, y0 + j as f64 * dy);
                Rectangle::new(
                    [(a, b), (a + dx, b + dy)],
                    viridis(norm(h.values[[i, j]])).filled(),
                )
            }),
    )
    .map_err(|e| err(e.to_string()))?;
    for o in &h.overlays {
        let c = o.color;
        let mut anno = None;
        for p in &o.paths {
            anno = Some(
                ctx.draw_series(LineSeries::new(p.iter().copied(), c.stroke_width(o.width)))
                    .map_err(|e| err(e.to_string()))?,
            );
        }
        if let Some(a) = anno {
            a.label(&o.label).legend(legend_mark(c));
        }
    }
    if !h.overlays.is_empty() {
        draw_legend(&mut ctx, path)?;
    }
    // Colour bar.
    let mut cb = ChartBuilder::on(&bar)
        .margin_top(52)
        .margin_bottom(62)
        .margin_right(8)
        .y_label_area_size(62)
        .build_cartesian_2d(0.0..1.0, lo..hi)
        .map_err(|e| err(e.to_string()))?;
    cb.configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .y_label_formatter(&|v| tick(*v))
        .y_desc(&h.value_label)
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 15))
        .draw()
        .map_err(|e| err(e.to_string()))?;
    let steps = 100;
    cb.draw_series((0..steps).map(|k| {
        let a = lo + (hi - lo) * k as f64 / steps as f64;
        let b = lo + (hi - lo) * (k + 1) as f64 / steps as f64;
        Rectangle::new([(0.0, a), (1.0, b)], viridis(norm(a)).filled())
    }))
    .map_err(|e| err(e.to_string()))?;
    Ok(())
}

/// Draws a chart on any plotters drawing area.
pub fn draw_chart<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    chart: &Chart,
    path: &Path,
) -> Result<()> {
    let err = |e: String| perr(path)(e);
    let [xs, ys] = chart.limits.unwrap_or_else(|| {
        let axis = |f: fn(&(f64, f64)) -> f64, log| {
            range(
                chart.series.iter().flat_map(|s| s.points.iter().map(f)),
                log,
            )
        };
        [axis(|p| p.0, chart.log_x), axis(|p| p.1, chart.log_y)]
    });
    let mut b = ChartBuilder::on(area);
    b.caption(&chart.title, (FONT, 24))
        .margin(14)
        .x_label_area_size(48)
        .y_label_area_size(72);
    macro_rules! body {
        ($ctx:expr) => {{
            let mut ctx = $ctx.map_err(|e| err(e.to_string()))?;
            ctx.configure_mesh()
                .x_label_formatter(&|v| axis_tick(*v, chart.log_x, xs))
                .y_label_formatter(&|v| axis_tick(*v, chart.log_y, ys))
                .x_desc(&chart.x_label)
                .y_desc(&chart.y_label)
                .label_style((FONT, 15))
                .axis_desc_style((FONT, 17))
                .light_line_style(RGBColor(235, 235, 235))
                .draw()
                .map_err(|e| err(e.to_string()))?;
            let n = chart.series.len();
            for (i, s) in chart.series.iter().enumerate() {
                let st = Style::of(i, n);
                let c = st.color;
                let keep = |p: &(f64, f64)| {
                    p.0.is_finite()
                        && p.1.is_finite()
                        && (!chart.log_x || p.0 > 0.0)
                        && (!chart.log_y || p.1 > 0.0)
                };
                let pts: Vec<(f64, f64)> = s.points.iter().copied().filter(keep).collect();
                let line = c.stroke_width(st.width);
                let anno = match s.mark {
                    Mark::Arrows => {
                        ctx.draw_series(
                            pts.chunks_exact(2)
                                .map(|a| PathElement::new(vec![a[0], a[1]], c.stroke_width(1))),
                        )
                        .map_err(|e| err(e.to_string()))?;
                        ctx.draw_series(
                            pts.chunks_exact(2)
                                .map(|a| Circle::new(a[1], 2, c.filled())),
                        )
                        .map_err(|e| err(e.to_string()))?
                    }
                    Mark::Points => {
                        let shape = marker_outline(st.shape, 2);
                        ctx.draw_series(pts.iter().map(|&p| {
                            EmptyElement::at(p) + Polygon::new(shape.clone(), c.filled())
                        }))
                        .map_err(|e| err(e.to_string()))?
                    }
                    Mark::Line | Mark::LineAndPoints => {
                        if s.mark == Mark::LineAndPoints {
                            let shape = marker_outline(st.shape, 4);
                            ctx.draw_series(pts.iter().map(|&p| {
                                EmptyElement::at(p) + Polygon::new(shape.clone(), c.filled())
                            }))
                            .map_err(|e| err(e.to_string()))?;
                        }
                        // A non-finite point lifts the pen: one series, several polylines.
                        let mut segs: Vec<Vec<(f64, f64)>> = s
                            .points
                            .split(|p| !(p.0.is_finite() && p.1.is_finite()))
                            .map(|seg| seg.iter().copied().filter(keep).collect())
                            .filter(|seg: &Vec<(f64, f64)>| !seg.is_empty())
                            .collect();
                        if segs.is_empty() {
                            segs.push(Vec::new());
                        }
                        let mut anno = None;
                        for seg in segs.iter().rev() {
                            let it = seg.iter().copied();
                            anno = Some(match st.dash {
                                Dash::Solid => ctx
                                    .draw_series(LineSeries::new(it, line))
                                    .map_err(|e| err(e.to_string()))?,
                                Dash::Dashed => ctx
                                    .draw_series(DashedLineSeries::new(it, 10, 6, line))
                                    .map_err(|e| err(e.to_string()))?,
                                Dash::Dotted => ctx
                                    .draw_series(DashedLineSeries::new(it, 3, 5, line))
                                    .map_err(|e| err(e.to_string()))?,
                            });
                        }
                        anno.expect("at least one segment")
                    }
                };
                // Legend: the line in its dash, and the marker where the series has one.
                let outline: Vec<(i32, i32)> = match s.mark {
                    Mark::LineAndPoints | Mark::Points => marker_outline(st.shape, 4)
                        .into_iter()
                        .map(|(a, b)| (a + 12, b))
                        .collect(),
                    _ => vec![],
                };
                let dashes = legend_dashes(st.dash);
                let pen = c.stroke_width(st.width.min(3));
                anno.label(&s.label).legend(move |(x, y)| {
                    let seg = |(a, b): (i32, i32)| PathElement::new(vec![(a, 0), (b, 0)], pen);
                    EmptyElement::at((x, y))
                        + seg(dashes[0])
                        + seg(dashes[1])
                        + seg(dashes[2])
                        + Polygon::new(outline.clone(), c.filled())
                });
            }
            if chart.series.len() > 1 || chart.series.iter().any(|s| !s.label.is_empty()) {
                draw_legend(&mut ctx, path)?;
            }
            Ok(())
        }};
    }
    match (chart.log_x, chart.log_y) {
        (false, false) => body!(b.build_cartesian_2d(xs.0..xs.1, ys.0..ys.1)),
        (true, false) => body!(b.build_cartesian_2d((xs.0..xs.1).log_scale(), ys.0..ys.1)),
        (false, true) => body!(b.build_cartesian_2d(xs.0..xs.1, (ys.0..ys.1).log_scale())),
        (true, true) => {
            body!(b.build_cartesian_2d((xs.0..xs.1).log_scale(), (ys.0..ys.1).log_scale()))
        }
    }
}

/// The training loss per step (`(step, loss)` pairs) and its moving average (window 1% of the
/// run, at least 10).
pub fn loss_curve(path: &Path, raw: &[(f64, f64)], data: &str) -> Result<()> {
    let w = (raw.len() / 100).max(10);
    let smooth: Vec<(f64, f64)> = raw
        .windows(w.min(raw.len().max(1)))
        .map(|win| {
            let last = win[win.len() - 1];
            (
                last.0,
                win.iter().map(|r| r.1).sum::<f64>() / win.len() as f64,
            )
        })
        .collect();
    let chart = Chart {
        title: format!("Denoising loss — {data}"),
        x_label: "optimiser step".into(),
        y_label: "loss (ε-MSE per coordinate)".into(),
        log_x: false,
        log_y: true,
        series: vec![
            Series::line("per step", raw.to_vec()),
            Series::line(format!("moving average ({w} steps)"), smooth),
        ],
        ..Default::default()
    };
    line_chart(path, &chart)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Among the first 24 series no two share colour, dash and marker; two of one colour differ
    /// in both dash and marker.
    #[test]
    fn series_styles_are_distinguishable() {
        let st: Vec<Style> = (0..24).map(|i| Style::of(i, 24)).collect();
        for i in 0..24 {
            for j in i + 1..24 {
                let (a, b) = (st[i], st[j]);
                if a.color == b.color {
                    assert!(a.dash != b.dash && a.shape != b.shape, "{i} and {j}");
                }
            }
        }
    }

    /// Log axes label 1, 2, 5 × 10^k only (powers of ten beyond 2.5 decades).
    #[test]
    fn log_ticks_do_not_crowd() {
        let labelled = |lo: f64, hi: f64| -> Vec<String> {
            [10.0, 20.0, 30.0, 50.0, 90.0, 100.0, 200.0, 1000.0]
                .iter()
                .map(|&v| axis_tick(v, true, (lo, hi)))
                .filter(|t| !t.is_empty())
                .collect()
        };
        assert_eq!(
            labelled(10.0, 110.0),
            ["10", "20", "50", "100", "200", "1000"]
        );
        assert_eq!(labelled(1e-3, 1e3), ["10", "100", "1000"]);
        assert_eq!(axis_tick(90.0, false, (0.0, 100.0)), "90");
    }
}
