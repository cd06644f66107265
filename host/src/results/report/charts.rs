//! SVG charts of experiments and training runs, drawn with plotters' SVG
//! backend. Text is left to the viewer's fonts (no font stack in the host).

use plotters::prelude::*;

use crate::results::records::RunScores;
use crate::results::stats::Summary;

/// One experiment as the charts see it.
pub struct Series {
    /// Short name in legends (a sweep cell's labels, or the experiment id).
    pub label: String,
    pub summary: Summary,
    pub runs: Vec<RunScores>,
}

type Svg = anyhow::Result<String>;

fn err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow::anyhow!("drawing a chart: {e:?}")
}

const FONT: &str = "sans-serif";

fn color(i: usize) -> RGBColor {
    // Okabe–Ito: distinguishable with colour-blindness.
    const C: [(u8, u8, u8); 8] = [
        (0, 114, 178),
        (230, 159, 0),
        (0, 158, 115),
        (204, 121, 167),
        (86, 180, 233),
        (213, 94, 0),
        (240, 228, 66),
        (0, 0, 0),
    ];
    let (r, g, b) = C[i % C.len()];
    RGBColor(r, g, b)
}

/// Indices of the points no other point beats on both axes (lower x and
/// higher y), ordered by x: the accuracy–latency Pareto frontier.
pub fn pareto_front(points: &[(f64, f64)]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..points.len()).collect();
    order.sort_by(|&a, &b| {
        points[a]
            .0
            .total_cmp(&points[b].0)
            .then(points[b].1.total_cmp(&points[a].1))
    });
    let mut best = f64::NEG_INFINITY;
    let mut front = Vec::new();
    for i in order {
        if points[i].1 > best {
            best = points[i].1;
            front.push(i);
        }
    }
    front
}

/// The legend box every chart uses.
fn legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    at: SeriesLabelPosition,
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    chart
        .configure_series_labels()
        .position(at)
        .border_style(RGBColor(200, 200, 200))
        .background_style(WHITE.mix(0.9))
        .label_font((FONT, 12))
        .draw()
        .map_err(err)
}

/// The name at a whole x of a chart whose categories sit at 0, 1, 2, …
/// (nothing between them).
fn category_label(names: &[String], x: f64) -> String {
    let i = x.round();
    if (x - i).abs() < 1e-6 && i >= 0.0 {
        names.get(i as usize).cloned().unwrap_or_default()
    } else {
        String::new()
    }
}

fn upper(max: f64) -> f64 {
    if max <= 0.0 { 1.0 } else { max * 1.15 }
}

/// Score (mean, 95 % CI) against median latency, frontier marked.
pub fn accuracy_vs_latency(series: &[Series], metric: &str) -> Svg {
    let pts: Vec<(f64, f64, f64, f64)> = series
        .iter()
        .map(|s| {
            let m = s.summary.metrics.get(metric);
            (
                s.summary.latency.p50_ms / 1000.0,
                m.map_or(0.0, |m| m.mean * 100.0),
                m.map_or(0.0, |m| m.ci_low * 100.0),
                m.map_or(0.0, |m| m.ci_high * 100.0),
            )
        })
        .collect();
    let xmax = upper(pts.iter().map(|p| p.0).fold(0.0, f64::max));
    let ymax = upper(pts.iter().map(|p| p.3).fold(0.0, f64::max));
    let front = pareto_front(&pts.iter().map(|p| (p.0, p.1)).collect::<Vec<_>>());
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (720, 440)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(format!("{metric} vs latency"), (FONT, 20))
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(56)
            .build_cartesian_2d(0.0..xmax, 0.0..ymax)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("median latency per example (s)")
            .y_desc(format!("{metric} (0-100, 95% CI)"))
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(err)?;
        chart
            .draw_series(LineSeries::new(
                front.iter().map(|&i| (pts[i].0, pts[i].1)),
                ShapeStyle::from(&RGBColor(120, 120, 120)).stroke_width(1),
            ))
            .map_err(err)?
            .label("Pareto frontier (no other point is both faster and better)")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], RGBColor(120, 120, 120)));
        for (i, (p, s)) in pts.iter().zip(series).enumerate() {
            let c = color(i);
            chart
                .draw_series([ErrorBar::new_vertical(
                    p.0,
                    p.2,
                    p.1,
                    p.3,
                    c.stroke_width(1),
                    8,
                )])
                .map_err(err)?;
            let on_front = front.contains(&i);
            chart
                .draw_series([Circle::new(
                    (p.0, p.1),
                    if on_front { 6 } else { 4 },
                    c.filled(),
                )])
                .map_err(err)?;
            chart
                .draw_series([EmptyElement::at((p.0, p.1))
                    + Text::new(s.label.clone(), (8, -16), (FONT, 13).into_font().color(&c))])
                .map_err(err)?;
        }
        legend(&mut chart, SeriesLabelPosition::LowerRight)?;
        root.present().map_err(err)?;
    }
    Ok(out)
}

/// Histogram of per-example latency, one panel per experiment, shared bins.
pub fn latency_histogram(series: &[Series]) -> Svg {
    const BINS: usize = 20;
    let max_s = series
        .iter()
        .flat_map(|s| s.runs.iter().map(|r| r.latency_ms / 1000.0))
        .fold(0.0, f64::max)
        .max(1e-3);
    let width = max_s / BINS as f64;
    let mut out = String::new();
    {
        let h = 150 * series.len().max(1) as u32 + 40;
        let root = SVGBackend::with_string(&mut out, (720, h)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let (title, body) = root.split_vertically(36);
        title
            .draw_text(
                "latency per example",
                &(FONT, 20).into_text_style(&title),
                (16, 8),
            )
            .map_err(err)?;
        for (i, (area, s)) in body
            .split_evenly((series.len().max(1), 1))
            .iter()
            .zip(series)
            .enumerate()
        {
            let mut counts = [0usize; BINS];
            for r in &s.runs {
                let b = ((r.latency_ms / 1000.0 / width) as usize).min(BINS - 1);
                counts[b] += 1;
            }
            let ymax = counts.iter().copied().max().unwrap_or(1).max(1) as f64 * 1.15;
            let mut chart = ChartBuilder::on(area)
                .margin(8)
                .x_label_area_size(28)
                .y_label_area_size(48)
                .caption(
                    format!(
                        "{}  (p50 {:.2} s, p95 {:.2} s)",
                        s.label,
                        s.summary.latency.p50_ms / 1000.0,
                        s.summary.latency.p95_ms / 1000.0
                    ),
                    (FONT, 13),
                )
                .build_cartesian_2d(0.0..max_s, 0.0..ymax)
                .map_err(err)?;
            chart
                .configure_mesh()
                .light_line_style(WHITE.mix(0.0))
                .y_desc("examples")
                .x_desc("seconds")
                .draw()
                .map_err(err)?;
            let c = color(i);
            chart
                .draw_series(
                    counts
                        .iter()
                        .enumerate()
                        .filter(|(_, n)| **n > 0)
                        .map(|(b, n)| {
                            let x0 = b as f64 * width;
                            Rectangle::new([(x0, 0.0), (x0 + width * 0.95, *n as f64)], c.filled())
                        }),
                )
                .map_err(err)?;
        }
        root.present().map_err(err)?;
    }
    Ok(out)
}

/// Mean of each metric per experiment, with 95 % CI whiskers.
pub fn metric_bars(series: &[Series], metrics: &[String]) -> Svg {
    let n = series.len().max(1) as f64;
    let ymax = upper(
        series
            .iter()
            .flat_map(|s| s.summary.metrics.values().map(|m| m.ci_high * 100.0))
            .fold(0.0, f64::max),
    );
    let names = metrics.to_vec();
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (720, 420)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption("scores with 95% bootstrap CI", (FONT, 20))
            .margin(16)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d(-0.5..metrics.len() as f64 - 0.5, 0.0..ymax)
            .map_err(err)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(WHITE.mix(0.0))
            .x_labels(metrics.len().max(1))
            .x_label_formatter(&|x| category_label(&names, *x))
            .y_desc("score (0-100)")
            .draw()
            .map_err(err)?;
        let slot = 0.8 / n;
        for (i, s) in series.iter().enumerate() {
            let c = color(i);
            let x_of = |k: usize| k as f64 - 0.4 + slot * (i as f64 + 0.5);
            let bars: Vec<(f64, f64, f64, f64)> = metrics
                .iter()
                .enumerate()
                .filter_map(|(k, name)| {
                    let m = s.summary.metrics.get(name)?;
                    Some((x_of(k), m.mean * 100.0, m.ci_low * 100.0, m.ci_high * 100.0))
                })
                .collect();
            chart
                .draw_series(bars.iter().map(|&(x, y, _, _)| {
                    Rectangle::new(
                        [(x - slot * 0.45, 0.0), (x + slot * 0.45, y)],
                        c.mix(0.85).filled(),
                    )
                }))
                .map_err(err)?
                .label(s.label.clone())
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], c.filled()));
            chart
                .draw_series(bars.iter().map(|&(x, y, lo, hi)| {
                    ErrorBar::new_vertical(x, lo, y, hi, BLACK.stroke_width(1), 6)
                }))
                .map_err(err)?;
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        root.present().map_err(err)?;
    }
    Ok(out)
}

/// Prompt and completion tokens per example, stacked, per experiment.
pub fn tokens_per_example(series: &[Series]) -> Svg {
    let per = |s: &Series, t: u64| t as f64 / s.summary.examples.max(1) as f64;
    let xmax = upper(
        series
            .iter()
            .map(|s| per(s, s.summary.prompt_tokens + s.summary.completion_tokens))
            .fold(0.0, f64::max),
    );
    let labels: Vec<String> = series.iter().map(|s| s.label.clone()).collect();
    let mut out = String::new();
    {
        let h = 60 + 44 * series.len().max(1) as u32 + 40;
        let root = SVGBackend::with_string(&mut out, (720, h)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption("tokens per example (cost)", (FONT, 20))
            .margin(16)
            .x_label_area_size(36)
            .y_label_area_size(160)
            .build_cartesian_2d(0.0..xmax, -0.5..series.len() as f64 - 0.5)
            .map_err(err)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .light_line_style(WHITE.mix(0.0))
            .y_labels(series.len().max(1))
            .y_label_formatter(&|y| {
                let i = y.round();
                if (y - i).abs() < 1e-6 && i >= 0.0 {
                    labels.get(i as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .x_desc("tokens (prompt | completion)")
            .draw()
            .map_err(err)?;
        let prompt_c = RGBColor(0, 114, 178);
        let completion_c = RGBColor(230, 159, 0);
        chart
            .draw_series(series.iter().enumerate().map(|(i, s)| {
                let y = i as f64;
                Rectangle::new(
                    [(0.0, y - 0.3), (per(s, s.summary.prompt_tokens), y + 0.3)],
                    prompt_c.filled(),
                )
            }))
            .map_err(err)?
            .label("prompt")
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], prompt_c.filled()));
        chart
            .draw_series(series.iter().enumerate().map(|(i, s)| {
                let y = i as f64;
                let p = per(s, s.summary.prompt_tokens);
                Rectangle::new(
                    [
                        (p, y - 0.3),
                        (p + per(s, s.summary.completion_tokens), y + 0.3),
                    ],
                    completion_c.filled(),
                )
            }))
            .map_err(err)?
            .label("completion")
            .legend(move |(x, y)| {
                Rectangle::new([(x, y - 5), (x + 12, y + 5)], completion_c.filled())
            });
        legend(&mut chart, SeriesLabelPosition::LowerRight)?;
        root.present().map_err(err)?;
    }
    Ok(out)
}

/// One curve of a [`line_chart`]: a training series (every step, thin) or
/// a validation series (a few passes, marked).
pub struct Line {
    pub label: String,
    /// (x, y) in x order; non-finite points are left out.
    pub points: Vec<(f64, f64)>,
    /// Index into the chart palette (the same index, the same colour).
    pub color: usize,
    /// Mark each point and draw the line thicker.
    pub markers: bool,
}

/// The range the finite values span, padded by 5 % (a flat series gets
/// room on both sides).
fn span(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = if hi > lo {
        (hi - lo) * 0.05
    } else {
        0.5 * hi.abs().max(1e-3)
    };
    (lo - pad, hi + pad)
}

/// Curves of y against x (a metric against the optimizer step), one
/// colour per [`Line::color`], legend in the upper right. `y_range` fixes
/// the axis (rates: 0..1); otherwise it spans the data.
pub fn line_chart(
    title: &str,
    x_desc: &str,
    y_desc: &str,
    y_range: Option<(f64, f64)>,
    lines: &[Line],
) -> Svg {
    let finite = |l: &Line| -> Vec<(f64, f64)> {
        l.points
            .iter()
            .copied()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .collect()
    };
    let xmax = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.0))
        .filter(|x| x.is_finite())
        .fold(1.0, f64::max);
    let (ylo, yhi) =
        y_range.unwrap_or_else(|| span(lines.iter().flat_map(|l| l.points.iter().map(|p| p.1))));
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (720, 420)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FONT, 20))
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d(0.0..xmax, ylo..yhi)
            .map_err(err)?;
        // Steps are whole: label only whole x values.
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc(y_desc)
            .x_labels((xmax as usize + 1).min(11))
            .x_label_formatter(&|x| {
                if x.fract() == 0.0 {
                    format!("{x:.0}")
                } else {
                    String::new()
                }
            })
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(err)?;
        for l in lines {
            let c = color(l.color);
            let pts = finite(l);
            let width = if l.markers { 2 } else { 1 };
            chart
                .draw_series(LineSeries::new(pts.clone(), c.stroke_width(width)))
                .map_err(err)?
                .label(l.label.clone())
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 16, y)], c.stroke_width(width))
                });
            if l.markers {
                chart
                    .draw_series(pts.iter().map(|&p| Circle::new(p, 3, c.filled())))
                    .map_err(err)?;
            }
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        root.present().map_err(err)?;
    }
    Ok(out)
}

/// One row per experiment, one cell per example: green = score 1, red = 0,
/// shades between; grey = the method failed or the metric broke.
pub fn example_grid(series: &[Series], metric: &str) -> Svg {
    let mut ids: Vec<&str> = Vec::new();
    for s in series {
        for r in &s.runs {
            if !ids.contains(&r.example_id.as_str()) {
                ids.push(&r.example_id);
            }
        }
    }
    let cols = ids.len().max(1);
    let cell = (900 / cols).clamp(3, 14) as i32;
    let left = 170i32;
    let top = 44i32;
    let w = (left + cell * cols as i32 + 16) as u32;
    let h = (top + 22 * series.len().max(1) as i32 + 28) as u32;
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (w.max(360), h)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        root.draw_text(
            &format!("{metric} per example (green 1, red 0, grey failed)"),
            &(FONT, 16).into_text_style(&root),
            (12, 10),
        )
        .map_err(err)?;
        for (row, s) in series.iter().enumerate() {
            let y = top + row as i32 * 22;
            root.draw_text(&s.label, &(FONT, 12).into_text_style(&root), (12, y + 4))
                .map_err(err)?;
            for r in &s.runs {
                let Some(col) = ids.iter().position(|id| *id == r.example_id) else {
                    continue;
                };
                let x = left + col as i32 * cell;
                let fill = match (r.error.is_some(), r.scores.get(metric)) {
                    (false, Some(v)) => {
                        let v = v.clamp(0.0, 1.0);
                        RGBColor(
                            (214.0 * (1.0 - v) + 26.0 * v) as u8,
                            (48.0 * (1.0 - v) + 152.0 * v) as u8,
                            (39.0 * (1.0 - v) + 80.0 * v) as u8,
                        )
                    }
                    _ => RGBColor(180, 180, 180),
                };
                root.draw(&Rectangle::new(
                    [(x, y), (x + cell - 1, y + 18)],
                    fill.filled(),
                ))
                .map_err(err)?;
            }
        }
        root.present().map_err(err)?;
    }
    Ok(out)
}

/// A candidate of an optimization run as its chart sees it.
pub struct TrajectoryPoint {
    /// Where on the x axis: the iteration, spread a little by candidate.
    pub x: f64,
    /// Validation mean and its 95 % CI (0-1).
    pub mean: f64,
    pub ci: (f64, f64),
    /// Baseline or accepted: on the incumbent's path.
    pub kept: bool,
}

/// Validation score against iteration: every evaluated candidate with its
/// CI (kept ones in colour, rejected ones grey) and the incumbent's path.
pub fn trajectory(metric: &str, points: &[TrajectoryPoint]) -> Svg {
    let xmax = points.iter().map(|p| p.x).fold(1.0, f64::max).ceil() + 0.5;
    let ymax = upper(points.iter().map(|p| p.ci.1 * 100.0).fold(0.0, f64::max)).min(100.0);
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (720, 420)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(format!("validation {metric} by iteration"), (FONT, 20))
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d(-0.5..xmax, 0.0..ymax)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("iteration (0 = the starting prompt)")
            .y_desc(format!("{metric} (0-100, 95% CI)"))
            .x_labels((xmax as usize + 1).min(11))
            .x_label_formatter(&|x| {
                if x.fract() == 0.0 && *x >= 0.0 {
                    format!("{x:.0}")
                } else {
                    String::new()
                }
            })
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(err)?;
        // The incumbent's path: a step at each accepted candidate, held to
        // the last iteration.
        let mut path: Vec<(f64, f64)> = Vec::new();
        for p in points.iter().filter(|p| p.kept) {
            if let Some(&(_, y)) = path.last() {
                path.push((p.x, y));
            }
            path.push((p.x, p.mean * 100.0));
        }
        if let (Some(&(_, y)), Some(last)) = (path.last(), points.last()) {
            path.push((last.x.max(path.last().unwrap().0), y));
        }
        let kept = color(0);
        chart
            .draw_series(LineSeries::new(path, kept.stroke_width(2)))
            .map_err(err)?
            .label("incumbent (accepted only on a significant paired gain)")
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], kept.stroke_width(2)));
        let grey = RGBColor(150, 150, 150);
        for p in points {
            let c = if p.kept { kept } else { grey };
            chart
                .draw_series([ErrorBar::new_vertical(
                    p.x,
                    p.ci.0 * 100.0,
                    p.mean * 100.0,
                    p.ci.1 * 100.0,
                    c.stroke_width(1),
                    6,
                )])
                .map_err(err)?;
            chart
                .draw_series([Circle::new((p.x, p.mean * 100.0), 4, c.filled())])
                .map_err(err)?;
        }
        chart
            .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())
            .map_err(err)?
            .label("rejected candidate")
            .legend(move |(x, y)| Circle::new((x + 8, y), 4, grey.filled()));
        legend(&mut chart, SeriesLabelPosition::LowerRight)?;
        root.present().map_err(err)?;
    }
    Ok(out)
}

/// A table of numbers drawn as a heat map: `rows` down, `columns` across
/// (a column label's ` · ` parts on separate lines), each cell shaded by
/// its value relative to the grid's range ([`heat_color`]) and printed
/// with `fmt`; None is a grey "—".
pub fn heat_map(
    title: &str,
    rows: &[String],
    columns: &[String],
    values: &[Vec<Option<f64>>],
    fmt: &dyn Fn(f64) -> String,
) -> Svg {
    const LEFT: i32 = 150;
    const CELL_W: i32 = 116;
    const CELL_H: i32 = 40;
    let head_lines = columns
        .iter()
        .map(|c| c.split(" · ").count())
        .max()
        .unwrap_or(1) as i32;
    let top = 48 + 16 * head_lines;
    let width = (LEFT + CELL_W * columns.len() as i32 + 16).max(420);
    let height = top + CELL_H * rows.len() as i32 + 16;
    let finite: Vec<f64> = values
        .iter()
        .flatten()
        .flatten()
        .copied()
        .filter(|v| v.is_finite())
        .collect();
    // Shade on a log scale when the values span more than 20× (a warm
    // cache beside a cold run), so the rest of the grid is not all pale.
    let log = finite.iter().all(|v| *v > 0.0)
        && finite.iter().copied().fold(0.0, f64::max)
            > 20.0 * finite.iter().copied().fold(f64::INFINITY, f64::min);
    let shade = |v: f64| if log { v.ln() } else { v };
    let lo = finite
        .iter()
        .map(|v| shade(*v))
        .fold(f64::INFINITY, f64::min);
    let hi = finite
        .iter()
        .map(|v| shade(*v))
        .fold(f64::NEG_INFINITY, f64::max);
    let title = if log {
        format!("{title} (shaded on a log scale)")
    } else {
        title.to_string()
    };
    let mut out = String::new();
    {
        let root =
            SVGBackend::with_string(&mut out, (width as u32, height as u32)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let text = |s: &str, at: (i32, i32), size: i32, ink: RGBColor| {
            Text::new(s.to_string(), at, (FONT, size).into_font().color(&ink))
        };
        root.draw(&text(&title, (12, 10), 18, BLACK)).map_err(err)?;
        for (j, c) in columns.iter().enumerate() {
            for (k, part) in c.split(" · ").enumerate() {
                let at = (LEFT + CELL_W * j as i32 + 6, 40 + 16 * k as i32);
                root.draw(&text(part, at, 12, BLACK)).map_err(err)?;
            }
        }
        for (i, r) in rows.iter().enumerate() {
            let y = top + CELL_H * i as i32;
            root.draw(&text(r, (12, y + 13), 13, BLACK)).map_err(err)?;
            for j in 0..columns.len() {
                let x = LEFT + CELL_W * j as i32;
                let v = values.get(i).and_then(|r| r.get(j)).copied().flatten();
                let (fill, ink, label) = match v {
                    Some(v) if v.is_finite() => {
                        let t = if hi > lo {
                            (shade(v) - lo) / (hi - lo)
                        } else {
                            0.5
                        };
                        let (f, i) = heat_color(t);
                        (f, i, fmt(v))
                    }
                    _ => ((200, 200, 200), (0, 0, 0), "—".to_string()),
                };
                root.draw(&Rectangle::new(
                    [(x + 1, y + 1), (x + CELL_W - 1, y + CELL_H - 1)],
                    RGBColor(fill.0, fill.1, fill.2).filled(),
                ))
                .map_err(err)?;
                root.draw(&text(
                    &label,
                    (x + 8, y + 13),
                    13,
                    RGBColor(ink.0, ink.1, ink.2),
                ))
                .map_err(err)?;
            }
        }
        root.present().map_err(err)?;
    }
    Ok(out)
}

/// Ratios (a speedup) as grouped bars on a log scale, from the 1× line:
/// one group per `groups` entry, one bar per `bars` entry (colour and
/// legend), `ratios[group][bar]` (None or ≤ 0: no bar). A log axis keeps a
/// 1.5× and a 1,000× (a warm cache) readable on one chart.
pub fn ratio_bars(
    title: &str,
    y_desc: &str,
    groups: &[String],
    bars: &[String],
    ratios: &[Vec<Option<f64>>],
) -> Svg {
    let n = bars.len().max(1) as f64;
    let logs: Vec<Vec<Option<f64>>> = ratios
        .iter()
        .map(|row| {
            row.iter()
                .map(|v| v.filter(|v| v.is_finite() && *v > 0.0).map(f64::log10))
                .collect()
        })
        .collect();
    let all = || logs.iter().flatten().flatten().copied();
    let ymax = all().fold(0.0, f64::max).ceil().max(1.0);
    // A decade below 1× only for a real slowdown (not a 0.98× of noise).
    let lowest = all().fold(0.0, f64::min);
    let ymin = if lowest < -0.05 { lowest.floor() } else { 0.0 };
    let names = groups.to_vec();
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (900, 440)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        // The legend beside the chart, not over its bars: bar labels are
        // long (`batch 8 · prefix on · call cache off`) and there are many.
        let (plot, key) = root.split_horizontally(600);
        for (b, label) in bars.iter().enumerate() {
            let y = 60 + 20 * b as i32;
            key.draw(&Rectangle::new([(4, y), (16, y + 12)], color(b).filled()))
                .map_err(err)?;
            key.draw(&Text::new(
                label.clone(),
                (22, y),
                (FONT, 12).into_font().color(&BLACK),
            ))
            .map_err(err)?;
        }
        let mut chart = ChartBuilder::on(&plot)
            .caption(title, (FONT, 20))
            .margin(16)
            .x_label_area_size(36)
            .y_label_area_size(64)
            .build_cartesian_2d(-0.5..groups.len() as f64 - 0.5, ymin..ymax)
            .map_err(err)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(WHITE.mix(0.0))
            .x_labels(groups.len().max(1))
            .x_label_formatter(&|x| category_label(&names, *x))
            .y_labels((ymax - ymin) as usize + 1)
            .y_label_formatter(&|y| {
                let r = 10f64.powf(*y);
                if r >= 1.0 {
                    format!("{r:.0}×")
                } else {
                    format!("{r}×")
                }
            })
            .y_desc(y_desc)
            .draw()
            .map_err(err)?;
        let slot = 0.8 / n;
        for b in 0..bars.len() {
            let c = color(b);
            let rects: Vec<(f64, f64)> = logs
                .iter()
                .enumerate()
                .filter_map(|(g, row)| {
                    let v = row.get(b).copied().flatten()?;
                    Some((g as f64 - 0.4 + slot * (b as f64 + 0.5), v))
                })
                .collect();
            chart
                .draw_series(rects.iter().map(|&(x, y)| {
                    Rectangle::new(
                        [(x - slot * 0.45, 0.0), (x + slot * 0.45, y)],
                        c.mix(0.85).filled(),
                    )
                }))
                .map_err(err)?;
        }
        chart
            .draw_series(DashedLineSeries::new(
                [(-0.5, 0.0), (groups.len() as f64 - 0.5, 0.0)],
                6,
                4,
                BLACK.stroke_width(1),
            ))
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(out)
}

/// The heat-map scale: `t` in 0..1 from light to dark blue (ColorBrewer
/// Blues, sequential and single-hue, so it reads the same with
/// colour-blindness), with the ink that stays legible on it.
pub fn heat_color(t: f64) -> ((u8, u8, u8), (u8, u8, u8)) {
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.5
    };
    let mix = |a: f64, b: f64| (a + (b - a) * t).round() as u8;
    let fill = (mix(222.0, 8.0), mix(235.0, 69.0), mix(247.0, 148.0));
    let ink = if t > 0.55 { (255, 255, 255) } else { (0, 0, 0) };
    (fill, ink)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pareto_front_keeps_only_undominated_points() {
        // (latency, score)
        let pts = [
            (1.0, 10.0),
            (2.0, 5.0),
            (3.0, 20.0),
            (0.5, 2.0),
            (3.0, 15.0),
        ];
        assert_eq!(pareto_front(&pts), vec![3, 0, 2]);
        assert_eq!(pareto_front(&[(1.0, 1.0)]), vec![0]);
        assert!(pareto_front(&[]).is_empty());
        // Equal points: one of them is enough.
        assert_eq!(pareto_front(&[(1.0, 1.0), (1.0, 1.0)]).len(), 1);
    }

    fn series(label: &str, scores: &[f64]) -> Series {
        let runs: Vec<RunScores> = scores
            .iter()
            .enumerate()
            .map(|(i, v)| RunScores {
                index: i as u32,
                example_id: format!("q{i}"),
                scores: [("f1".to_string(), *v)].into(),
                latency_ms: 100.0 * (i + 1) as f64,
                prompt_tokens: 20,
                completion_tokens: 5,
                ..Default::default()
            })
            .collect();
        let summary = crate::results::stats::summarise(&runs, &["f1".into()], 1, 200);
        Series {
            label: label.into(),
            summary,
            runs,
        }
    }

    #[test]
    fn a_line_chart_names_its_lines_and_survives_flat_and_nan_series() {
        let lines = [
            Line {
                label: "training loss".into(),
                points: vec![(1.0, 0.69), (2.0, 0.68), (3.0, f64::NAN)],
                color: 0,
                markers: false,
            },
            Line {
                label: "validation loss".into(),
                points: vec![(0.0, 0.7), (4.0, 0.7)],
                color: 1,
                markers: true,
            },
        ];
        let svg = line_chart("DPO loss", "step", "loss", None, &lines).unwrap();
        assert!(svg.contains("training loss") && svg.contains("validation loss"));
        assert!(svg.trim_end().ends_with("</svg>"));
        let empty = line_chart("empty", "step", "y", Some((0.0, 1.0)), &[]).unwrap();
        assert!(empty.contains("<svg"));
        assert_eq!(span([2.0, 2.0].into_iter()), (1.0, 3.0));
        assert_eq!(span([f64::NAN].into_iter()), (0.0, 1.0));
    }

    #[test]
    fn every_chart_is_an_svg_naming_its_series() {
        let s = [
            series("naive", &[0.0, 1.0, 0.5]),
            series("cot", &[1.0, 1.0, 0.0]),
        ];
        for svg in [
            accuracy_vs_latency(&s, "f1").unwrap(),
            latency_histogram(&s).unwrap(),
            metric_bars(&s, &["f1".into()]).unwrap(),
            tokens_per_example(&s).unwrap(),
            example_grid(&s, "f1").unwrap(),
            heat_map(
                "examples/s",
                &["naive".into(), "cot".into()],
                &["sequential".into(), "batch 8 · prefix on".into()],
                &[vec![Some(1.0), Some(3.0)], vec![Some(0.5), None]],
                &|v| format!("{v:.2}"),
            )
            .unwrap(),
            ratio_bars(
                "speedup",
                "x",
                &["naive".into(), "cot".into()],
                &["sequential".into(), "batch 8".into()],
                &[
                    vec![Some(1.0), Some(3000.0)],
                    vec![Some(0.5), Some(f64::NAN)],
                ],
            )
            .unwrap(),
        ] {
            assert!(svg.starts_with("<svg") || svg.contains("<svg"), "{svg}");
            assert!(svg.contains("naive") && svg.contains("cot"), "{svg}");
            assert!(svg.trim_end().ends_with("</svg>"));
        }
    }
}
