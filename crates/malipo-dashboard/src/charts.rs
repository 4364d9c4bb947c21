//! Charts drawn on the server: bars as inline SVG (the SVG scales; the
//! stylesheet sets its text larger on a phone), shares as a table of
//! `<progress>` bars (it reflows). Nothing to download, nothing to run,
//! every label escaped.

use std::fmt::Write;

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Vertical bars, one per `(label, value)`, each with a tooltip; every
/// `label_every`-th label is written under its bar.
pub fn bars(title: &str, points: &[(String, i64, String)], label_every: usize) -> String {
    const WIDTH: f64 = 600.0;
    const HEIGHT: f64 = 180.0;
    const BOTTOM: f64 = 20.0;
    let max = points
        .iter()
        .map(|(_, value, _)| *value)
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let slot = WIDTH / points.len().max(1) as f64;
    // A margin each side, so that the first and last labels (centred under
    // their bars) are not cut.
    const MARGIN: f64 = 30.0;
    let mut svg = format!(
        r#"<svg class="chart" viewBox="{} 0 {} {}" role="img" aria-label="{}"><title>{}</title>"#,
        -MARGIN,
        WIDTH + 2.0 * MARGIN,
        HEIGHT + BOTTOM + 4.0,
        escape(title),
        escape(title)
    );
    for (index, (label, value, tooltip)) in points.iter().enumerate() {
        let height =
            (*value as f64 / max * (HEIGHT - 10.0)).max(if *value > 0 { 2.0 } else { 0.0 });
        let x = index as f64 * slot + slot * 0.15;
        let _ = write!(
            svg,
            r##"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{height:.1}" rx="2" fill="#0b7a55"><title>{}</title></rect>"##,
            HEIGHT - height,
            slot * 0.7,
            escape(tooltip)
        );
        if label_every > 0 && index % label_every == 0 {
            let _ = write!(
                svg,
                r#"<text x="{:.1}" y="{}" text-anchor="middle">{}</text>"#,
                x + slot * 0.35,
                HEIGHT + 17.0,
                escape(label)
            );
        }
    }
    let _ = write!(
        svg,
        r##"<line x1="0" y1="{HEIGHT}" x2="{WIDTH}" y2="{HEIGHT}" stroke="#dde2e8"/></svg>"##
    );
    svg
}

/// Shares (0 to 100 %), one row per `(label, percent, note)`: a table with
/// a `<progress>` bar each.
pub fn shares(title: &str, rows: &[(String, f64, String)]) -> String {
    let mut html = format!(
        r#"<table class="shares" aria-label="{}"><tbody>"#,
        escape(title)
    );
    for (label, percent, note) in rows {
        let percent = percent.clamp(0.0, 100.0);
        let _ = write!(
            html,
            r#"<tr><th scope="row">{}</th><td><progress max="100" value="{percent:.1}">{percent:.1} %</progress></td><td class="num">{percent:.1} % · {}</td></tr>"#,
            escape(label),
            escape(note)
        );
    }
    html.push_str("</tbody></table>");
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped_and_bars_scale_to_the_largest() {
        let svg = bars(
            "Volume <script>",
            &[
                ("a<b".to_owned(), 50, "half".to_owned()),
                ("c".to_owned(), 100, "full".to_owned()),
            ],
            1,
        );
        assert!(!svg.contains("<script>") && svg.contains("a&lt;b"));
        assert!(svg.contains(r#"height="170.0""#), "{svg}");
        assert!(svg.contains(r#"height="85.0""#), "{svg}");
        let svg = shares(
            "Success",
            &[("mpesa".to_owned(), 75.0, "3 of 4".to_owned())],
        );
        assert!(svg.contains("75.0 %"));
    }
}
