//! Training curves as a PNG: the loss of every step and the train/validation accuracy of every epoch
//! (plotters, bitmap backend; text in a system TrueType font).

use crate::error::{Error, Result};
use crate::solver::History;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;
use std::sync::OnceLock;

/// Fonts tried for the plot's text, in order (Debian's `fonts-dejavu-core` provides the first).
pub const FONT_CANDIDATES: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
];

/// Registers the first available font for plotters' `sans-serif` family (once per process).
fn register_font() -> std::result::Result<(), String> {
    static DONE: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| {
        for p in FONT_CANDIDATES {
            if let Ok(bytes) = std::fs::read(p) {
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                    return Ok(());
                }
            }
        }
        Err(format!(
            "no TrueType font for the plot's text (looked for {}); install Debian's fonts-dejavu-core",
            FONT_CANDIDATES.join(", ")
        ))
    })
    .clone()
}

/// Draws `history` into `path` (PNG, 1200×450): loss per step on the left, train and validation
/// accuracy per epoch on the right.
pub fn plot_history(history: &History, title: &str, path: impl AsRef<Path>) -> Result<()> {
    fn inner(history: &History, title: &str, path: &Path) -> Result<()> {
        register_font().map_err(|m| Error::data(path, m))?;
        let err = |e: &dyn std::fmt::Display| Error::data(path, format!("cannot draw the plot: {e}"));
        let root = BitMapBackend::new(path, (1200, 450)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let (left, right) = root.split_horizontally(600);

        let n = history.loss.len().max(2);
        let (lo, hi) =
            history.loss.iter().filter(|v| v.is_finite()).fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
        let (lo, hi) = if lo <= hi { (lo.min(0.0), hi * 1.05 + 1e-6) } else { (0.0, 1.0) };
        let mut c = ChartBuilder::on(&left)
            .caption(format!("{title}: training loss"), ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d(0..n, lo..hi)
            .map_err(|e| err(&e))?;
        c.configure_mesh().x_desc("step").y_desc("loss").draw().map_err(|e| err(&e))?;
        c.draw_series(LineSeries::new(history.loss.iter().enumerate().map(|(i, &v)| (i, v)), &BLUE))
            .map_err(|e| err(&e))?;

        let epochs = history.val_acc.len().max(1);
        let mut c = ChartBuilder::on(&right)
            .caption("accuracy", ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d(1..epochs.max(2), 0.0..1.0)
            .map_err(|e| err(&e))?;
        c.configure_mesh().x_desc("epoch").y_desc("accuracy").draw().map_err(|e| err(&e))?;
        for (series, colour, name) in [(&history.train_acc, RED, "train"), (&history.val_acc, GREEN, "validation")] {
            c.draw_series(LineSeries::new(series.iter().enumerate().map(|(i, &v)| (i + 1, v)), colour))
                .map_err(|e| err(&e))?
                .label(name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour));
        }
        c.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw().map_err(|e| err(&e))?;
        root.present().map_err(|e| err(&e))?;
        Ok(())
    }
    inner(history, title, path.as_ref())
}

/// Draws a confusion matrix into `path` (PNG, 640×640): one cell per (true, predicted) pair, shaded
/// by its share of the true class's samples, with the count written in it.
pub fn plot_confusion(cm: &crate::metrics::ConfusionMatrix, title: &str, path: impl AsRef<Path>) -> Result<()> {
    fn inner(cm: &crate::metrics::ConfusionMatrix, title: &str, path: &Path) -> Result<()> {
        register_font().map_err(|m| Error::data(path, m))?;
        let err = |e: &dyn std::fmt::Display| Error::data(path, format!("cannot draw the plot: {e}"));
        let k = cm.classes().max(1);
        let root = BitMapBackend::new(path, (640, 640)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let mut c = ChartBuilder::on(&root)
            .caption(format!("{title}: confusion (accuracy {:.3})", cm.accuracy()), ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(40)
            // An integer range's segments include its end: 0..k−1 gives the k cells.
            .build_cartesian_2d((0..k - 1).into_segmented(), (0..k - 1).into_segmented())
            .map_err(|e| err(&e))?;
        let class = |v: &SegmentValue<usize>, flip: bool| match v {
            SegmentValue::CenterOf(i) if *i < k => (if flip { k - 1 - i } else { *i }).to_string(),
            _ => String::new(),
        };
        c.configure_mesh()
            .disable_mesh()
            .x_desc("predicted")
            .y_desc("true")
            .x_labels(k)
            .y_labels(k)
            .x_label_formatter(&|v| class(v, false))
            .y_label_formatter(&|v| class(v, true))
            .draw()
            .map_err(|e| err(&e))?;
        for t in 0..k {
            let row: u64 = (0..k).map(|p| cm.count(t, p)).sum();
            for p in 0..k {
                let n = cm.count(t, p);
                let share = n as f64 / row.max(1) as f64;
                let y = k - 1 - t; // true class 0 at the top
                let shade = RGBColor(255 - (200.0 * share) as u8, 255 - (150.0 * share) as u8, 255);
                let at = |a: usize, b: usize| (SegmentValue::Exact(a), SegmentValue::Exact(b));
                c.draw_series(std::iter::once(Rectangle::new([at(p, y), at(p + 1, y + 1)], shade.filled())))
                    .map_err(|e| err(&e))?;
                let centred = TextStyle::from(("sans-serif", 14).into_font()).pos(Pos::new(HPos::Center, VPos::Center));
                let mid = (SegmentValue::CenterOf(p), SegmentValue::CenterOf(y));
                c.draw_series(std::iter::once(Text::new(n.to_string(), mid, centred))).map_err(|e| err(&e))?;
            }
        }
        root.present().map_err(|e| err(&e))?;
        Ok(())
    }
    inner(cm, title, path.as_ref())
}
