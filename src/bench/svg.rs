//! The charts, drawn with plotters' SVG backend (text is written as SVG
//! `<text>`, so no system font is needed to draw them).
//!
//! - [`comparison`]: one run — wire bytes per event and latency
//!   percentiles per transport;
//! - [`crossover`]: a sweep — bytes per event against the swept parameter,
//!   one line per transport (log x axis);
//! - [`links`]: a links comparison — bytes per event, server CPU per
//!   delivery and latency per transport, one bar per link.

use plotters::prelude::*;

use super::BenchError;
use super::links::Links;
use super::report::Report;
use super::sweep::Series;

const WIDTH: u32 = 960;
const HEIGHT: u32 = 420;

fn err(e: impl std::fmt::Display) -> BenchError {
    BenchError::Io(std::io::Error::other(format!("drawing the chart: {e}")))
}

/// One colour per transport, the same in every chart.
fn colour(transport: &str) -> RGBColor {
    match transport {
        "poll" => RGBColor(0xd6, 0x27, 0x28),
        "longpoll" => RGBColor(0xff, 0x7f, 0x0e),
        "sse" => RGBColor(0x2c, 0xa0, 0x2c),
        "ws" => RGBColor(0x1f, 0x77, 0xb4),
        _ => RGBColor(0x7f, 0x7f, 0x7f),
    }
}

/// One colour per link, the same in every chart.
fn link_colour(link: &str) -> RGBColor {
    match link {
        "h1" => RGBColor(0x9e, 0x9e, 0x9e),
        "h2" => RGBColor(0x1f, 0x77, 0xb4),
        "h1+tls" => RGBColor(0xe3, 0x77, 0xc2),
        "h2+tls" => RGBColor(0x94, 0x67, 0xbd),
        _ => RGBColor(0x7f, 0x7f, 0x7f),
    }
}

/// A round upper bound for an axis.
fn ceiling(v: f64) -> f64 {
    let v = v.max(1e-9);
    let p = 10f64.powf(v.log10().floor());
    (v / p).ceil() * p
}

/// Bytes/event (down and up) and latency percentiles per transport.
///
/// # Errors
/// When drawing fails.
pub fn comparison(r: &Report) -> Result<String, BenchError> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let title = format!(
            "{} · {} clients/transport · {} ev/s · {} B payload",
            r.target, r.params.clients, r.params.rate, r.params.payload
        );
        let root = root.titled(&title, ("sans-serif", 18)).map_err(err)?;
        let (left, right) = root.split_horizontally(WIDTH / 2);
        let names: Vec<String> = r.transports.iter().map(|t| t.transport.clone()).collect();
        let n = names.len().max(1) as f64;
        let label = |x: &f64| {
            let i = x.floor();
            if (x - i - 0.5).abs() < 1e-6 && i >= 0.0 {
                names.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        };

        // Bytes per event: down (solid) and up (light), side by side.
        let top = ceiling(
            r.transports
                .iter()
                .map(|t| t.bytes_per_event_down.max(t.bytes_per_event_up))
                .fold(1.0, f64::max)
                * 1.2,
        );
        let mut chart = ChartBuilder::on(&left)
            .caption("wire bytes per event", ("sans-serif", 15))
            .margin(12)
            .x_label_area_size(30)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..n, 0f64..top)
            .map_err(err)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(names.len() * 2 + 1)
            .x_label_formatter(&label)
            .y_desc("bytes / event")
            .draw()
            .map_err(err)?;
        for (i, t) in r.transports.iter().enumerate() {
            let x = i as f64;
            let c = colour(&t.transport);
            chart
                .draw_series([
                    Rectangle::new(
                        [(x + 0.15, 0.0), (x + 0.5, t.bytes_per_event_down)],
                        c.filled(),
                    ),
                    Rectangle::new(
                        [(x + 0.5, 0.0), (x + 0.85, t.bytes_per_event_up)],
                        c.mix(0.35).filled(),
                    ),
                ])
                .map_err(err)?;
        }
        chart
            .draw_series([
                Text::new(
                    "dark: down · light: up".to_string(),
                    (0.05, top * 0.97),
                    ("sans-serif", 12),
                ),
                Text::new(
                    format!("payload: {} B", r.params.payload),
                    (0.05, top * 0.90),
                    ("sans-serif", 12),
                ),
            ])
            .map_err(err)?;

        // Latency percentiles, log scale.
        let max_us = r
            .transports
            .iter()
            .map(|t| t.latency.max_us)
            .max()
            .unwrap_or(1)
            .max(10) as f64;
        let mut chart = ChartBuilder::on(&right)
            .caption("latency p50 / p99 / p99.9 (ms, log)", ("sans-serif", 15))
            .margin(12)
            .x_label_area_size(30)
            .y_label_area_size(60)
            .build_cartesian_2d(
                0f64..n,
                (0.01f64..ceiling(max_us / 1000.0 * 4.0)).log_scale(),
            )
            .map_err(err)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(names.len() * 2 + 1)
            .x_label_formatter(&label)
            .y_desc("ms")
            .draw()
            .map_err(err)?;
        chart
            .draw_series([Text::new(
                "dark → light: p50, p99, p99.9".to_string(),
                (0.05, ceiling(max_us / 1000.0 * 4.0) * 0.8),
                ("sans-serif", 12),
            )])
            .map_err(err)?;
        for (i, t) in r.transports.iter().enumerate() {
            let x = i as f64;
            let c = colour(&t.transport);
            let bars = [
                (t.latency.p50_us, 1.0),
                (t.latency.p99_us, 0.6),
                (t.latency.p999_us, 0.3),
            ];
            chart
                .draw_series(bars.iter().enumerate().map(|(k, (us, alpha))| {
                    let x0 = x + 0.1 + 0.27 * k as f64;
                    let v = (*us as f64 / 1000.0).max(0.011);
                    Rectangle::new([(x0, 0.01), (x0 + 0.25, v)], c.mix(*alpha).filled())
                }))
                .map_err(err)?;
        }
        root.present().map_err(err)?;
    }
    Ok(out)
}

/// Bytes per event (down + up) against the swept parameter, per transport.
///
/// # Errors
/// When drawing fails or the sweep is empty.
pub fn crossover(s: &Series) -> Result<String, BenchError> {
    let first = s.runs.first().ok_or_else(|| err("empty sweep"))?;
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (WIDTH, HEIGHT + 60)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        // A rate sweep is plotted at the rate the publisher achieved: an
        // overloaded point then sits where it really was.
        let x_of = |asked: f64, r: &Report| match s.param {
            super::args::SweepParam::Rate if r.publish.rate_achieved > 0.0 => {
                r.publish.rate_achieved
            }
            _ => asked,
        };
        let (x0, x1) = s
            .values
            .iter()
            .zip(&s.runs)
            .map(|(v, r)| x_of(*v, r))
            .fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(v), b.max(v)));
        let (x0, x1) = (x0 / 1.5, x1 * 1.5);
        let link = first.params.link.as_str();
        let per_event = |t: &super::report::TransportFigures| {
            (t.bytes_per_event_down + t.bytes_per_event_up).max(1.0)
        };
        let ys = s
            .runs
            .iter()
            .flat_map(|r| r.transports.iter().map(per_event));
        let y1 = ys.fold(1.0f64, f64::max);
        let title = format!(
            "{} on {link}: wire bytes per event vs {} ({} clients/transport, {} B payload, poll every {} s)",
            first.target,
            s.param.as_str(),
            first.params.clients,
            first.params.payload,
            first.params.poll_interval_s
        );
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 16))
            .margin(16)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d((x0..x1).log_scale(), 0f64..ceiling(y1 * 1.05))
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc(match s.param.as_str() {
                "rate" => "events per second published (log)",
                "clients" => "subscribers per transport (log)",
                _ => "payload bytes (log)",
            })
            .y_desc("wire bytes per event, down + up")
            .y_labels(12)
            .draw()
            .map_err(err)?;
        for (i, t) in first.transports.iter().enumerate() {
            let c = colour(&t.transport);
            let points: Vec<(f64, f64)> = s
                .values
                .iter()
                .zip(&s.runs)
                .filter_map(|(v, r)| r.transports.get(i).map(|t| (x_of(*v, r), per_event(t))))
                .collect();
            chart
                .draw_series(LineSeries::new(points.clone(), c.stroke_width(2)))
                .map_err(err)?
                .label(t.transport.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2))
                });
            chart
                .draw_series(points.iter().map(|p| Circle::new(*p, 4, c.filled())))
                .map_err(err)?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .draw()
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(out)
}

/// Bytes per event (down dark, up light), server CPU per delivery and
/// latency (p50 dark, p99 light) per transport, a bar per link.
///
/// # Errors
/// When drawing fails or the comparison is empty.
pub fn links(l: &Links) -> Result<String, BenchError> {
    let first = l.runs.first().ok_or_else(|| err("no runs"))?;
    let transports = l.transports();
    let n = transports.len() as f64;
    let k = l.links.len().max(1) as f64;
    let width = WIDTH * 3 / 2;
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (width, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let p = &first.report.params;
        let title = format!(
            "{} · {} clients · {} ev/s × {} B · each transport alone on each link ({})",
            first.report.target,
            p.clients,
            p.rate,
            p.payload,
            l.links.join(", ")
        );
        let root = root.titled(&title, ("sans-serif", 17)).map_err(err)?;
        let panels = root.split_evenly((1, 3));
        let label = |x: &f64| {
            let i = x.floor();
            if (x - i - 0.5).abs() < 1e-6 && i >= 0.0 {
                transports
                    .get(i as usize)
                    .map(|t| t.to_string())
                    .unwrap_or_default()
            } else {
                String::new()
            }
        };
        // Where link j's bar of transport i stands.
        let slot = |i: usize, j: usize| {
            let w = 0.8 / k;
            let x = i as f64 + 0.1 + w * j as f64;
            (x, x + w * 0.9)
        };
        // (panel caption, y label, per-run values: dark, light)
        type Pick = dyn Fn(&super::links::Row) -> (f64, f64);
        let bytes: &Pick = &|r| (r.down, r.up);
        let cpu: &Pick = &|r| (r.server_us.unwrap_or(0.0), 0.0);
        let lat: &Pick = &|r| (r.p50_us as f64 / 1000.0, r.p99_us as f64 / 1000.0);
        let specs: [(&str, &str, &Pick); 3] = [
            (
                "wire bytes per event (dark down, light up)",
                "bytes / event",
                bytes,
            ),
            ("server CPU per delivery", "µs / delivery", cpu),
            ("latency (dark p50, light p99)", "ms", lat),
        ];
        for (panel, (caption, y_desc, pick)) in panels.iter().zip(specs) {
            let top = ceiling(
                l.runs
                    .iter()
                    .map(|r| {
                        let (a, b) = pick(&r.row());
                        a.max(b)
                    })
                    .fold(1e-3, f64::max)
                    * 1.15,
            );
            let mut chart = ChartBuilder::on(panel)
                .caption(caption, ("sans-serif", 14))
                .margin(10)
                .x_label_area_size(28)
                .y_label_area_size(55)
                .build_cartesian_2d(0f64..n, 0f64..top)
                .map_err(err)?;
            chart
                .configure_mesh()
                .disable_x_mesh()
                .x_labels(transports.len() * 2 + 1)
                .x_label_formatter(&label)
                .y_desc(y_desc)
                .draw()
                .map_err(err)?;
            for (i, t) in transports.iter().enumerate() {
                for (j, link) in l.links.iter().enumerate() {
                    let Some(run) = l.get(t, link) else {
                        continue;
                    };
                    let (dark, light) = pick(&run.row());
                    let (x0, x1) = slot(i, j);
                    let c = link_colour(link);
                    let mid = (x0 + x1) / 2.0;
                    chart
                        .draw_series([
                            Rectangle::new([(x0, 0.0), (mid, dark)], c.filled()),
                            Rectangle::new([(mid, 0.0), (x1, light)], c.mix(0.4).filled()),
                        ])
                        .map_err(err)?;
                }
            }
            for (j, link) in l.links.iter().enumerate() {
                let c = link_colour(link);
                chart
                    .draw_series([Rectangle::new(
                        [
                            (0.05, top * (0.97 - 0.06 * j as f64)),
                            (0.12, top * (0.93 - 0.06 * j as f64)),
                        ],
                        c.filled(),
                    )])
                    .map_err(err)?;
                chart
                    .draw_series([Text::new(
                        link.clone(),
                        (0.15, top * (0.975 - 0.06 * j as f64)),
                        ("sans-serif", 11),
                    )])
                    .map_err(err)?;
            }
        }
        root.present().map_err(err)?;
    }
    Ok(out)
}
