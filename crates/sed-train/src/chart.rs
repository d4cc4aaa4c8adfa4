//! PNG charts: line charts with optional log axes and a shaded spread band per series,
//! several to a picture. `sed-train bench-env` and `sed-train plot` draw with them.
//!
//! Drawn in memory with plotters (text in the bundled DejaVu Sans Mono, so no system font
//! is needed) and written as PNG atomically. A log axis plots `log10` of the values and
//! labels the ticks with the values themselves.

use std::path::Path;
use std::sync::Once;

use anyhow::{Result, anyhow, bail};
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

use crate::checkpoint::write_atomic;

/// One line: points `(x, y)`, and optionally its spread `(x, low, high)` shaded behind it.
#[derive(Clone, Debug, Default)]
pub struct Series {
    /// The legend's text.
    pub label: String,
    /// The line's points, in x order.
    pub points: Vec<(f64, f64)>,
    /// The spread at each point (e.g. the minimum and maximum over seeds); empty for none.
    pub band: Vec<(f64, f64, f64)>,
}

/// One chart of a picture.
#[derive(Clone, Debug, Default)]
pub struct Chart {
    /// The title over the chart.
    pub title: String,
    /// The x axis's name.
    pub x_label: String,
    /// The y axis's name.
    pub y_label: String,
    /// Logarithmic x axis (values must be positive).
    pub log_x: bool,
    /// Logarithmic y axis (values must be positive).
    pub log_y: bool,
    /// The lines.
    pub series: Vec<Series>,
}

const FONT: &str = "sans-serif";
static FONT_ONCE: Once = Once::new();

fn register() {
    FONT_ONCE.call_once(|| {
        register_font(
            FONT,
            FontStyle::Normal,
            include_bytes!("../assets/DejaVuSansMono.ttf"),
        )
        .map_err(|_| ())
        .expect("the bundled font parses");
    });
}

/// A tick label: the value, or 10^value on a log axis, in few characters.
fn tick(v: f64, log: bool) -> String {
    let v = if log { 10f64.powf(v) } else { v };
    // `decimals` places without trailing zeros.
    let short = |x: f64, decimals: usize| {
        let s = format!("{x:.decimals$}");
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_owned()
        } else {
            s
        }
    };
    match v.abs() {
        a if a >= 1e6 => short(v / 1e6, 2) + "M",
        a if a >= 1e3 => short(v / 1e3, 2) + "k",
        a if a >= 1.0 => short(v, 2),
        _ => short(v, 3),
    }
}

/// The axis value of `v`: itself, or its log10 on a log axis.
fn axis(v: f64, log: bool) -> f64 {
    if log { v.log10() } else { v }
}

/// The smallest and largest finite value.
fn range(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if lo > hi {
        return None;
    }
    Some((lo, hi))
}

/// The axis range over data `(lo, hi)`: whole decades on a log axis, else a 5% margin (a
/// flat range widened).
fn span((lo, hi): (f64, f64), log: bool) -> (f64, f64) {
    if log {
        let (lo, hi) = (lo.floor(), hi.ceil());
        (lo, if hi > lo { hi } else { lo + 1.0 })
    } else {
        let pad = if hi > lo {
            (hi - lo) * 0.05
        } else {
            lo.abs().max(1.0) * 0.1
        };
        (lo - pad, hi + pad)
    }
}

/// Draws `charts` in a grid of `columns` columns, each chart `size` pixels, into a PNG.
pub fn write_png(path: &Path, charts: &[Chart], columns: usize, size: (u32, u32)) -> Result<()> {
    if charts.is_empty() || columns == 0 {
        bail!("nothing to draw");
    }
    register();
    let rows = charts.len().div_ceil(columns);
    let (w, h) = (size.0 * columns as u32, size.1 * rows as u32);
    let mut rgb = vec![0u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
        for (area, chart) in root.split_evenly((rows, columns)).iter().zip(charts) {
            draw(area, chart).map_err(|e| anyhow!("chart {:?}: {e}", chart.title))?;
        }
        root.present().map_err(|e| anyhow!("{e}"))?;
    }
    let mut bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut bytes, w, h);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.write_header()?.write_image_data(&rgb)?;
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    write_atomic(path, &bytes)
}

fn draw<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    chart: &Chart,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let (lx, ly) = (chart.log_x, chart.log_y);
    let xs = chart
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| axis(p.0, lx)));
    let ys = chart.series.iter().flat_map(|s| {
        s.points
            .iter()
            .map(|p| axis(p.1, ly))
            .chain(s.band.iter().flat_map(|b| [axis(b.1, ly), axis(b.2, ly)]))
    });
    let (Some((x0, x1)), Some((y0, y1))) = (range(xs), range(ys)) else {
        // No data: the title and a note.
        area.titled(&chart.title, (FONT, 18))?.draw_text(
            "no data",
            &(FONT, 14).into_text_style(area),
            (20, 20),
        )?;
        return Ok(());
    };
    let ((x0, x1), (y0, y1)) = (span((x0, x1), lx), span((y0, y1), ly));
    // A log axis has a tick at each decade.
    let labels = |log: bool, lo: f64, hi: f64| {
        if log { (hi - lo) as usize + 1 } else { 8 }
    };
    let mut c = ChartBuilder::on(area)
        .caption(&chart.title, (FONT, 18))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(64)
        .build_cartesian_2d(x0..x1, y0..y1)?;
    c.configure_mesh()
        .x_desc(&chart.x_label)
        .y_desc(&chart.y_label)
        .label_style((FONT, 12))
        .axis_desc_style((FONT, 14))
        .x_labels(labels(lx, x0, x1))
        .y_labels(labels(ly, y0, y1))
        .x_label_formatter(&|v| tick(*v, lx))
        .y_label_formatter(&|v| tick(*v, ly))
        .draw()?;
    for (k, s) in chart.series.iter().enumerate() {
        let colour = Palette99::pick(k).to_rgba();
        if !s.band.is_empty() {
            let upper = s.band.iter().map(|b| (axis(b.0, lx), axis(b.2, ly)));
            let lower = s.band.iter().rev().map(|b| (axis(b.0, lx), axis(b.1, ly)));
            c.draw_series(std::iter::once(Polygon::new(
                upper.chain(lower).collect::<Vec<_>>(),
                colour.mix(0.2).filled(),
            )))?;
        }
        let points: Vec<(f64, f64)> = s
            .points
            .iter()
            .map(|p| (axis(p.0, lx), axis(p.1, ly)))
            .filter(|p| p.0.is_finite() && p.1.is_finite())
            .collect();
        c.draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))?
            .label(s.label.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2))
            });
        if points.len() <= 40 {
            c.draw_series(points.iter().map(|&p| Circle::new(p, 3, colour.filled())))?;
        }
    }
    if chart.series.iter().any(|s| !s.label.is_empty()) {
        c.configure_series_labels()
            .label_font((FONT, 12))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperLeft)
            .draw()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_read_as_numbers() {
        assert_eq!(tick(3.0, true), "1k");
        assert_eq!(tick(6.0, true), "1M");
        assert_eq!(tick(2.5, false), "2.5");
        assert_eq!(tick(1500.0, false), "1.5k");
        assert_eq!(tick(0.0, false), "0");
        assert_eq!(tick(0.25, false), "0.25");
        assert_eq!(tick(2.0f64.log10(), true), "2");
    }

    #[test]
    fn a_png_has_the_grid_size_and_draws_the_lines() {
        let dir = std::env::temp_dir().join(format!("sed-chart-{}", std::process::id()));
        let path = dir.join("c.png");
        let line = Series {
            label: "cpu".into(),
            points: vec![(1.0, 10.0), (10.0, 100.0), (100.0, 1000.0)],
            band: vec![
                (1.0, 5.0, 20.0),
                (10.0, 50.0, 200.0),
                (100.0, 500.0, 2000.0),
            ],
        };
        let chart = Chart {
            title: "throughput".into(),
            x_label: "envs".into(),
            y_label: "env-steps/s".into(),
            log_x: true,
            log_y: true,
            series: vec![line],
        };
        write_png(
            &path,
            &[chart.clone(), Chart::default(), chart],
            2,
            (320, 240),
        )
        .unwrap();
        let decoder =
            png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&path).unwrap()));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height), (640, 480));
        // The first series' colour appears (the line), and white (the background).
        let colour = Palette99::pick(0).to_rgba();
        let pixels: Vec<&[u8]> = buf[..info.buffer_size()].chunks(3).collect();
        assert!(pixels.iter().any(|p| *p == [colour.0, colour.1, colour.2]));
        assert!(pixels.iter().any(|p| *p == [255, 255, 255]));
        assert!(write_png(&path, &[], 2, (10, 10)).is_err());
        let _ = std::fs::remove_dir_all(dir);
    }
}
