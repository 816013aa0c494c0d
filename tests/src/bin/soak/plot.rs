//! The plot: relay RSS (with the database file's size), open descriptors, and the
//! traffic with relay CPU, over minutes, drawn with plotters' bitmap backend into a PNG.
//! Text uses the Ubuntu font egui ships, compiled in, so no system font is needed.

use std::path::Path;

use anyhow::{Context, Result, anyhow};

use crate::report::Summary;
use crate::samples::Sample;
use crate::verdict::mib;

/// Rates are drawn as the mean over this many seconds (one second is too noisy: an
/// operation finishes in one second or the next).
const RATE_WINDOW: usize = 10;

/// Minutes as a label: whole minutes without a decimal, short trials with one.
fn min_label(m: f64) -> String {
    if (m - m.round()).abs() < 0.05 {
        format!("{m:.0}")
    } else {
        format!("{m:.1}")
    }
}

/// One figure of each sample against its minute.
fn series(samples: &[Sample], value: impl Fn(&Sample) -> f64) -> Vec<(f64, f64)> {
    samples.iter().map(|s| (s.t_s / 60.0, value(s))).collect()
}

/// How fast a counter grew, per second, over windows of `RATE_WINDOW` samples, against
/// the minute each window ends.
fn rate(samples: &[Sample], count: impl Fn(&Sample) -> u64) -> Vec<(f64, f64)> {
    samples
        .windows(RATE_WINDOW + 1)
        .map(|w| {
            let (a, b) = (&w[0], &w[RATE_WINDOW]);
            let grew = count(b).saturating_sub(count(a)) as f64;
            (b.t_s / 60.0, grew / (b.t_s - a.t_s).max(1e-3))
        })
        .collect()
}

/// Draws RSS, descriptors, and operations with relay CPU, over minutes, into a PNG.
pub(crate) fn draw_png(path: &Path, samples: &[Sample], summary: &Summary) -> Result<()> {
    use plotters::prelude::*;
    let e = |e: &dyn std::fmt::Display| anyhow!("drawing the plot: {e}");
    // egui's own Ubuntu font, compiled in: no system font needed.
    plotters::style::register_font(
        "sans-serif",
        FontStyle::Normal,
        epaint_default_fonts::UBUNTU_LIGHT,
    )
    .map_err(|_| anyhow!("the compiled-in font does not load"))?;
    let (width, height) = (1200u32, 1030u32);
    let mut pixels = vec![0u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|x| e(&x))?;
        let (head, body) = root.split_vertically(96);
        let verdict = |flat: bool| if flat { "flat" } else { "NOT flat" };
        head.draw_text(
            &format!(
                "uchat-relay soak: {} clients, {:.0} operations/s of mixed traffic through netsim '{}', {} min",
                summary.clients,
                summary.figures.ops_per_s,
                summary.profile,
                min_label(summary.minutes)
            ),
            &("sans-serif", 24).into_font().color(&BLACK),
            (20, 10),
        )
        .map_err(|x| e(&x))?;
        head.draw_text(
            &format!(
                "after the {}-min warm-up: RSS {} ({:+.2} MiB, {:+.1} %, mean of the last third against the middle third), descriptors {} ({}–{})",
                min_label(summary.figures.warmup_minutes),
                verdict(summary.figures.rss_flat),
                summary.figures.rss_growth_mib,
                summary.figures.rss_growth_pct,
                verdict(summary.figures.fds_flat),
                summary.figures.fd_after_warmup_range.0,
                summary.figures.fd_after_warmup_range.1
            ),
            &("sans-serif", 18).into_font().color(&RGBColor(60, 60, 60)),
            (20, 42),
        )
        .map_err(|x| e(&x))?;
        let d = &summary.delivery;
        // `--replot` knows only the samples: the delivery figures are not in soak.csv.
        let third = if d.sent == 0 {
            format!(
                "{} operations done, {} failed; longest pause in the traffic {:.0} s (redrawn from soak.csv: the delivery check is in the run's report)",
                summary.figures.ops, summary.figures.errors, summary.figures.longest_stall_s
            )
        } else {
            format!(
                "{} messages acknowledged, {} deliveries arrived once, {} lost, {} twice; longest pause in the traffic {:.0} s: {}",
                d.acked,
                d.once,
                d.missing_acked,
                d.duplicated,
                summary.figures.longest_stall_s,
                if summary.failures.is_empty() {
                    "PASS"
                } else {
                    "FAIL"
                }
            )
        };
        head.draw_text(
            &third,
            &("sans-serif", 18).into_font().color(&RGBColor(60, 60, 60)),
            (20, 68),
        )
        .map_err(|x| e(&x))?;
        let panels = body.split_evenly((3, 1));
        let minutes = samples.last().map_or(1.0, |s| s.t_s / 60.0).max(0.1);
        let warmup = summary.figures.warmup_minutes;
        let rss = series(samples, |s| mib(s.rss_kib as f64));
        // redb caches the pages it reads and writes (up to 1 GiB by default), so RSS may
        // follow the database's size: drawn beside it, a creep that tracks it is data.
        let db = series(samples, |s| s.db_bytes as f64 / 1048576.0);
        let fds = series(samples, |s| s.fds as f64);
        let ops_rate = rate(samples, |s| s.ops);
        let err_rate = rate(samples, |s| s.errors);
        let cpu = series(samples, |s| s.cpu_pct);
        // Each panel: title, unit, headroom above the highest point (room for the
        // legend), where the legend goes, and its lines.
        type Lines<'a> = Vec<(&'a str, &'a Vec<(f64, f64)>, RGBColor)>;
        let series: [(&str, &str, f64, SeriesLabelPosition, Lines); 3] = [
            (
                "relay resident memory (VmRSS)",
                "MiB",
                1.15,
                SeriesLabelPosition::LowerRight,
                vec![
                    ("RSS", &rss, BLUE),
                    ("relay.redb file size", &db, RGBColor(150, 150, 230)),
                ],
            ),
            (
                "relay open file descriptors",
                "descriptors",
                1.15,
                SeriesLabelPosition::LowerRight,
                vec![("open fds", &fds, RGBColor(0, 140, 0))],
            ),
            (
                "traffic and relay CPU",
                "per second / %",
                1.7,
                SeriesLabelPosition::UpperRight,
                vec![
                    (
                        "operations done per second (10-s mean)",
                        &ops_rate,
                        RGBColor(90, 90, 90),
                    ),
                    ("failed operations per second (10-s mean)", &err_rate, RED),
                    ("relay CPU, % of one core", &cpu, RGBColor(200, 120, 0)),
                ],
            ),
        ];
        for (panel, (title, unit, headroom, legend_at, lines)) in panels.iter().zip(series) {
            let top = lines
                .iter()
                .flat_map(|(_, points, _)| points.iter().map(|p| p.1))
                .fold(1.0, f64::max)
                * headroom;
            let mut chart = ChartBuilder::on(panel)
                .margin(12)
                .caption(title, ("sans-serif", 20))
                .x_label_area_size(36)
                .y_label_area_size(70)
                .build_cartesian_2d(0f64..minutes, 0f64..top)
                .map_err(|x| e(&x))?;
            chart
                .configure_mesh()
                .x_desc("minutes")
                .y_desc(unit)
                .x_label_formatter(&|m| min_label(*m))
                .y_label_formatter(&|v| format!("{v:.0}"))
                .label_style(("sans-serif", 15))
                .axis_desc_style(("sans-serif", 15))
                .max_light_lines(1)
                .light_line_style(RGBColor(242, 242, 242))
                .draw()
                .map_err(|x| e(&x))?;
            // The warm-up, shaded: figures are judged only after it.
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(0.0, 0.0), (warmup, top)],
                    RGBColor(245, 245, 230).filled(),
                )))
                .map_err(|x| e(&x))?
                .label("warm-up")
                .legend(|(x, y)| {
                    Rectangle::new(
                        [(x, y - 5), (x + 16, y + 5)],
                        RGBColor(235, 235, 200).filled(),
                    )
                });
            for (name, points, color) in lines {
                chart
                    .draw_series(LineSeries::new(
                        points.iter().copied(),
                        // One pixel: plotters joins wider lines with mitres, which
                        // draw spikes past the data where a dense series turns sharply.
                        color.stroke_width(1),
                    ))
                    .map_err(|x| e(&x))?
                    .label(name)
                    .legend(move |(x, y)| {
                        PathElement::new([(x, y), (x + 16, y)], color.stroke_width(2))
                    });
            }
            chart
                .configure_series_labels()
                .position(legend_at)
                .label_font(("sans-serif", 14))
                .background_style(WHITE.mix(0.85))
                .border_style(RGBColor(200, 200, 200))
                .draw()
                .map_err(|x| e(&x))?;
        }
        root.present().map_err(|x| e(&x))?;
    }
    let image = image::RgbImage::from_raw(width, height, pixels).context("plot buffer size")?;
    image
        .save_with_format(path, image::ImageFormat::Png)
        .with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(seconds: u64) -> Vec<Sample> {
        (0..=seconds)
            .map(|t| Sample {
                t_s: t as f64,
                rss_kib: 40_960 + t,
                fds: 30 + t % 2,
                cpu_pct: 12.0,
                db_bytes: 3 << 20,
                ops: 30 * t + t % 3,
                errors: t / 10,
                in_flight: 2,
                offline: 1,
                load1: 1.0,
            })
            .collect()
    }

    #[test]
    fn rates_are_per_second_over_the_window() {
        let r = rate(&samples(60), |s| s.ops);
        assert_eq!(r.len(), 60 + 1 - RATE_WINDOW);
        assert!(r.iter().all(|&(_, v)| (v - 30.0).abs() < 0.3), "{r:?}");
        assert_eq!(r[0].0, RATE_WINDOW as f64 / 60.0);
        assert!(rate(&samples(3), |s| s.ops).is_empty());
    }

    #[test]
    fn labels_drop_the_decimal_on_whole_minutes() {
        assert_eq!(min_label(30.0), "30");
        assert_eq!(min_label(10.02), "10");
        assert_eq!(min_label(1.5), "1.5");
    }

    #[test]
    fn a_run_is_drawn_into_a_png() {
        let samples = samples(600);
        let figures = crate::verdict::figures(&samples).expect("figures");
        let summary = Summary::new(10.0, 30, 30.0, "lossy", 19, figures);
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("soak.png");
        draw_png(&path, &samples, &summary).expect("drawn");
        let image = image::open(&path).expect("a PNG");
        assert_eq!((image.width(), image.height()), (1200, 1030));
    }
}
