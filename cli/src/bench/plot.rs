//! `--plot FILE.svg`: two charts side by side. On the left, the latency distribution of each
//! run's reads and upserts (or increments) (latency against percentile, the tail stretched out: 90%, 99%,
//! 99.9%... equally spaced, both axes logarithmic); on the right, each run's throughput over
//! time. With `--compare`, the store's runs and the direct run share both charts.

use std::path::Path;
use std::time::Duration;

use anyhow::anyhow;
use plotters::prelude::*;

use super::workload::Ran;
use crate::bench::latency::Recorder;
use crate::bench::timeline::MAX_POINTS;

/// The picture's size in pixels.
const SIZE: (u32, u32) = (1400, 560);

/// The far end of the percentile axis, in nines: 5 is the 99.999th percentile.
const MAX_NINES: f64 = 5.0;

/// Line colours, one per run, the same in both charts (Tableau's ten).
const COLORS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// The colour of run `index`.
fn color(index: usize) -> RGBColor {
    COLORS[index % COLORS.len()]
}

/// An axis value with an SI suffix: 950, 12k, 3.5M.
fn si(value: &f64) -> String {
    match *value {
        v if v >= 1e6 => format!("{}M", v / 1e6),
        v if v >= 1e3 => format!("{}k", v / 1e3),
        v => format!("{v}"),
    }
}

/// One run to draw.
pub struct Series<'a> {
    /// Its name in the legend.
    pub name: String,
    /// What it measured.
    pub ran: &'a Ran,
}

/// Fails, with the reason, unless a plot can be written to `path`: its directory exists and
/// takes a new file (tried with a temporary one, removed again), and `path` is not a directory.
/// Checked before the benchmark runs, so that a run is not lost to a mistyped path.
pub fn check_path(path: &Path) -> anyhow::Result<()> {
    let shown = path.display();
    if path.is_dir() {
        return Err(anyhow!(
            "cannot draw the plot into {shown}: it is a directory; give a file name such as \
             {}",
            path.join("bench.svg").display()
        ));
    }
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(anyhow!(
            "cannot draw the plot into {shown}: there is no directory {}",
            dir.display()
        ));
    }
    tempfile::Builder::new()
        .prefix(".quickstore-plot-")
        .tempfile_in(dir)
        .map(drop)
        .map_err(|err| {
            anyhow!(
                "cannot draw the plot into {shown}: cannot write in {} ({err})",
                dir.display()
            )
        })
}

/// Draws `series` into an SVG file at `path`.
pub fn draw(path: &Path, series: &[Series<'_>]) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(plot_error)?;
    let (left, right) = root.split_horizontally(SIZE.0 / 2);
    latency_chart(&left, series)?;
    throughput_chart(&right, series)?;
    root.present().map_err(plot_error)
}

/// plotters' errors borrow nothing but are not `Sync`; keep their message.
fn plot_error(err: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("{err}")
}

/// The percentile axis's coordinate of quantile `q`: how many nines it has.
fn nines(q: f64) -> f64 {
    (-(1.0 - q).log10()).clamp(0.0, MAX_NINES)
}

/// The percentile at `nines` nines, as a label.
fn percentile_label(nines: &f64) -> String {
    let percent = 100.0 * (1.0 - 10f64.powf(-nines));
    let digits = (*nines - 2.0).ceil().max(0.0) as usize;
    format!("{percent:.digits$}%")
}

/// `(nines, microseconds)` points of a latency distribution.
fn latency_points(recorder: &Recorder) -> Vec<(f64, f64)> {
    recorder
        .quantiles()
        .into_iter()
        .map(|(q, latency)| (nines(q), micros(latency)))
        .collect()
}

fn micros(latency: Duration) -> f64 {
    (latency.as_secs_f64() * 1e6).max(0.01)
}

/// One line of the latency chart.
struct Line {
    name: String,
    color: RGBColor,
    dashed: bool,
    /// `(nines, microseconds)`.
    points: Vec<(f64, f64)>,
}

fn latency_chart<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    series: &[Series<'_>],
) -> anyhow::Result<()> {
    // Reads solid, upserts and increments dashed, in their run's colour.
    let lines: Vec<Line> = series
        .iter()
        .enumerate()
        .flat_map(|(index, s)| {
            [
                ("read", &s.ran.reads, false),
                ("upsert", &s.ran.writes, true),
                ("increment", &s.ran.increments, true),
            ]
            .into_iter()
            .filter(|(_, recorder, _)| recorder.count() > 0)
            .map(move |(op, recorder, dashed)| Line {
                name: format!("{} {op}", s.name),
                color: color(index),
                dashed,
                points: latency_points(recorder),
            })
        })
        .collect();
    let ys = lines
        .iter()
        .flat_map(|line| line.points.iter().map(|p| p.1));
    let (low, high) = ys.fold((f64::MAX, 0.0f64), |(lo, hi), y| (lo.min(y), hi.max(y)));
    let (low, high) = if high > 0.0 {
        (low / 1.5, high * 1.5)
    } else {
        (0.1, 10.0)
    };
    let widest = lines
        .iter()
        .flat_map(|line| line.points.iter().map(|p| p.0))
        .fold(2.0f64, f64::max)
        .ceil();
    let mut chart = ChartBuilder::on(area)
        .caption("latency by percentile", ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..widest, (low..high).log_scale())
        .map_err(plot_error)?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc("latency (µs)")
        .x_labels(usize::try_from(widest as i64).unwrap_or(2) + 1)
        .x_label_formatter(&percentile_label)
        .y_label_formatter(&si)
        .draw()
        .map_err(plot_error)?;
    for Line {
        name,
        color,
        dashed,
        points,
    } in lines
    {
        let style = color.stroke_width(2);
        let drawn = if dashed {
            chart.draw_series(DashedLineSeries::new(points, 6, 4, style))
        } else {
            chart.draw_series(LineSeries::new(points, style))
        };
        drawn
            .map_err(plot_error)?
            .label(name)
            .legend(move |(x, y)| {
                let end = if dashed { x + 8 } else { x + 20 };
                PathElement::new([(x, y), (end, y)], style)
            });
    }
    legend(&mut chart)
}

fn throughput_chart<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    series: &[Series<'_>],
) -> anyhow::Result<()> {
    let lines: Vec<(String, Vec<(f64, f64)>)> = series
        .iter()
        .map(|s| {
            let (window, rates) = s.ran.timeline.rates(MAX_POINTS);
            let points = rates
                .into_iter()
                .enumerate()
                .filter(|(_, rate)| *rate > 0.0)
                .map(|(i, rate)| ((i as f64 + 0.5) * window.as_secs_f64(), rate))
                .collect();
            (s.name.clone(), points)
        })
        .collect();
    let points = || lines.iter().flat_map(|(_, points)| points.iter());
    let right = points().map(|p| p.0).fold(0.0f64, f64::max).max(0.01) * 1.05;
    let (low, high) = points().fold((f64::MAX, 0.0f64), |(lo, hi), p| (lo.min(p.1), hi.max(p.1)));
    let (low, high) = if high > 0.0 {
        (low / 2.0, high * 2.0)
    } else {
        (1.0, 10.0)
    };
    let mut chart = ChartBuilder::on(area)
        .caption("throughput over time", ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..right, (low..high).log_scale())
        .map_err(plot_error)?;
    chart
        .configure_mesh()
        .x_desc("seconds into the run")
        .y_desc("operations per second")
        .y_label_formatter(&si)
        .draw()
        .map_err(plot_error)?;
    for (index, (name, points)) in lines.into_iter().enumerate() {
        let color = color(index);
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))
            .map_err(plot_error)?
            .label(name)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    legend(&mut chart)
}

fn legend<'a, DB: DrawingBackend + 'a, X: Ranged, Y: Ranged>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
) -> anyhow::Result<()> {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(plot_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_percentile_axis_counts_nines() {
        assert_eq!(nines(0.0), 0.0);
        assert!((nines(0.9) - 1.0).abs() < 1e-9);
        assert!((nines(0.999) - 3.0).abs() < 1e-9);
        assert_eq!(nines(1.0), MAX_NINES, "the maximum sits at the far end");
        assert_eq!(percentile_label(&0.0), "0%");
        assert_eq!(percentile_label(&2.0), "99%");
        assert_eq!(percentile_label(&3.0), "99.9%");
        assert_eq!(percentile_label(&4.0), "99.99%");
    }

    #[test]
    fn axis_values_take_si_suffixes() {
        assert_eq!(si(&950.0), "950");
        assert_eq!(si(&12_000.0), "12k");
        assert_eq!(si(&3_500_000.0), "3.5M");
        assert_eq!(si(&0.5), "0.5");
    }
}
