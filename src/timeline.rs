//! `ovsup history show RUN --timeline FILE.svg`: a run drawn as a timeline, a row per node and
//! a bar per command from its start for its duration, coloured by what became of it (ok,
//! non-zero exit, no end, dry run), with the VMs' downtime marked across all rows: from the
//! first `virsh shutdown` to the end of the last `virsh start` that succeeded after it (to the
//! end of the run when none did). Drawn with plotters' SVG backend.

use std::path::Path;
use std::time::Duration;

use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;

use crate::error::{Error, Result};
use crate::history::{self, Outcome, Run, Status};

const OK: RGBColor = RGBColor(46, 125, 50);
const NON_ZERO: RGBColor = RGBColor(239, 108, 0);
const ERROR: RGBColor = RGBColor(198, 40, 40);
const DRY_RUN: RGBColor = RGBColor(120, 144, 156);
const DOWNTIME: RGBColor = RGBColor(66, 133, 244);

/// Pixels per node row, and around the rows.
const ROW: u32 = 28;
const WIDTH: u32 = 1200;

/// The VMs' downtime of a run, from its start: the first `virsh shutdown` to the end of the
/// last successful `virsh start` after it; `None` for the end when no start succeeded.
pub fn downtime(run: &Run) -> Option<(Duration, Option<Duration>)> {
    let first_shutdown = run
        .commands
        .iter()
        .filter(|c| c.command.starts_with("virsh shutdown ") && !c.dry_run)
        .filter_map(|c| run.offset(c))
        .min()?;
    let last_start = run
        .commands
        .iter()
        .filter(|c| c.command.starts_with("virsh start ") && history::outcome(c) == Outcome::Ok)
        .filter_map(|c| run.offset(c).map(|o| o + Duration::from_millis(c.ms)))
        .filter(|end| *end >= first_shutdown)
        .max();
    Some((first_shutdown, last_start))
}

/// The chart a timeline is drawn on: seconds across, a segment a node down.
type Chart<'a, 'b> = ChartContext<
    'a,
    SVGBackend<'b>,
    Cartesian2d<
        plotters::coord::types::RangedCoordf64,
        plotters::coord::ranged1d::SegmentedCoord<plotters::coord::types::RangedCoordusize>,
    >,
>;

/// The shape of a timeline: its rows and how long it is.
struct Frame {
    nodes: Vec<String>,
    rows: usize,
    /// Seconds, the whole run.
    total: f64,
    /// Pixels of the node names' column.
    name_width: u32,
}

impl Frame {
    fn of(run: &Run) -> Frame {
        let nodes = run.nodes();
        let rows = nodes.len().max(1);
        let total = run
            .duration()
            .into_iter()
            .chain(run.last_activity())
            .max()
            .unwrap_or(Duration::ZERO)
            .as_secs_f64()
            .max(1.0);
        let name_width = nodes.iter().map(String::len).max().unwrap_or(4) as u32 * 8 + 24;
        Frame {
            nodes,
            rows,
            total,
            name_width,
        }
    }

    /// Row i of the nodes is drawn top down: segment rows-1-i.
    fn row_of(&self, node: &str) -> usize {
        let i = self.nodes.iter().position(|n| n == node).unwrap_or(0);
        self.rows - 1 - i
    }
}

/// Draw `run`'s timeline into the SVG file `path`.
pub fn write_svg(run: &Run, path: &Path) -> Result<()> {
    let fail = |e: &dyn std::fmt::Display| {
        Error::io(
            path,
            std::io::Error::other(format!("drawing the timeline: {e}")),
        )
    };
    let frame = Frame::of(run);
    let height = 110 + ROW * frame.rows as u32 + 40;
    let root = SVGBackend::new(path, (WIDTH, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(&e))?;
    let (chart_area, legend_area) = root.split_vertically(height - 40);
    let title = format!("{} — {} — {}", run.id, run.runbook(), status_text(run));
    // An integer range includes its end (0..rows-1 has rows segments); plotters gives 0..0 no
    // key point, so a single node gets an empty segment above it.
    let top = if frame.rows > 1 { frame.rows - 1 } else { 1 };
    let label = |v: &SegmentValue<usize>| match v {
        SegmentValue::CenterOf(i) if *i < frame.rows => frame
            .nodes
            .get(frame.rows - 1 - *i)
            .cloned()
            .unwrap_or_default(),
        _ => String::new(),
    };
    let mut chart = ChartBuilder::on(&chart_area)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(frame.name_width)
        .build_cartesian_2d(0f64..frame.total * 1.02, (0..top).into_segmented())
        .map_err(|e| fail(&e))?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(top + 1)
        .y_label_formatter(&label)
        .x_desc("seconds since the run began")
        .label_style(("sans-serif", 13))
        .draw()
        .map_err(|e| fail(&e))?;
    let downtime = downtime(run);
    draw_downtime(&mut chart, &frame, downtime).map_err(|e| fail(&e))?;
    draw_bars(&mut chart, &frame, run).map_err(|e| fail(&e))?;
    draw_legend(&legend_area, &frame, downtime).map_err(|e| fail(&e))?;
    root.present().map_err(|e| fail(&e))?;
    Ok(())
}

/// The run's status, as the title says it.
fn status_text(run: &Run) -> String {
    match run.status() {
        Status::Ok => "ok".to_string(),
        Status::Failed(code) => format!("exit {code}"),
        Status::Running(pid) => format!("running (pid {pid})"),
        Status::Unfinished => "unfinished (killed?)".to_string(),
        Status::Unknown => "unknown (older journal)".to_string(),
    }
}

type DrawResult = std::result::Result<(), DrawingAreaErrorKind<std::io::Error>>;

/// The VMs' downtime, shaded across every row.
fn draw_downtime(
    chart: &mut Chart<'_, '_>,
    frame: &Frame,
    downtime: Option<(Duration, Option<Duration>)>,
) -> DrawResult {
    let Some((from, to)) = downtime else {
        return Ok(());
    };
    let to = to.map_or(frame.total, |t| t.as_secs_f64());
    chart.draw_series(std::iter::once(Rectangle::new(
        [
            (from.as_secs_f64(), SegmentValue::Exact(0)),
            (to, SegmentValue::Exact(frame.rows)),
        ],
        DOWNTIME.mix(0.15).filled(),
    )))?;
    Ok(())
}

/// A bar per command, on its node's row, coloured by its outcome.
fn draw_bars(chart: &mut Chart<'_, '_>, frame: &Frame, run: &Run) -> DrawResult {
    // A bar is at least 0.2 % of the width, so that a 1 ms command or a dry run shows.
    let least = frame.total * 0.002;
    let bars = run.commands.iter().filter_map(|c| {
        let start = run.offset(c)?.as_secs_f64();
        let end = start + (c.ms as f64 / 1000.0).max(least);
        let colour = match history::outcome(c) {
            Outcome::Ok => OK,
            Outcome::NonZero(_) => NON_ZERO,
            Outcome::Error => ERROR,
            Outcome::DryRun => DRY_RUN,
        };
        let row = frame.row_of(&c.node);
        let mut bar = Rectangle::new(
            [
                (start, SegmentValue::Exact(row)),
                (end, SegmentValue::Exact(row + 1)),
            ],
            colour.filled(),
        );
        bar.set_margin(5, 5, 0, 0);
        Some(bar)
    });
    chart.draw_series(bars)?;
    Ok(())
}

/// The legend, in a strip below the chart.
fn draw_legend(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    frame: &Frame,
    downtime: Option<(Duration, Option<Duration>)>,
) -> DrawResult {
    let mut entries: Vec<(String, RGBColor, f64)> = vec![
        ("ok".into(), OK, 1.0),
        ("non-zero exit".into(), NON_ZERO, 1.0),
        ("error (unreachable, timed out)".into(), ERROR, 1.0),
        ("dry run (only printed)".into(), DRY_RUN, 1.0),
    ];
    if let Some((from, to)) = downtime {
        let text = match to {
            Some(to) => format!(
                "VM downtime {}",
                history::human_duration(to.saturating_sub(from))
            ),
            None => "VMs down (not started again)".to_string(),
        };
        entries.push((text, DOWNTIME, 0.3));
    }
    let mut x = frame.name_width as i32;
    for (text, colour, alpha) in entries {
        area.draw(&Rectangle::new(
            [(x, 12), (x + 14, 26)],
            colour.mix(alpha).filled(),
        ))?;
        area.draw(&Text::new(text.clone(), (x + 20, 12), ("sans-serif", 13)))?;
        x += 20 + text.len() as i32 * 7 + 24;
    }
    Ok(())
}
