//! Charts drawn on the server as inline SVG: nothing to download, nothing
//! to run, readable at any width (the SVG scales), and every label escaped.

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
    let mut svg = format!(
        r#"<svg class="chart" viewBox="0 0 {WIDTH} {}" role="img" aria-label="{}"><title>{}</title>"#,
        HEIGHT + BOTTOM,
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
                HEIGHT + 14.0,
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

/// Horizontal bars of shares (0 to 100 %), one per `(label, percent, note)`.
pub fn shares(title: &str, rows: &[(String, f64, String)]) -> String {
    const WIDTH: f64 = 600.0;
    const ROW: f64 = 30.0;
    const LABEL: f64 = 140.0;
    let height = ROW * rows.len().max(1) as f64;
    let mut svg = format!(
        r#"<svg class="chart" viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{}"><title>{}</title>"#,
        escape(title),
        escape(title)
    );
    for (index, (label, percent, note)) in rows.iter().enumerate() {
        let y = index as f64 * ROW;
        let width = (WIDTH - LABEL - 120.0) * percent.clamp(0.0, 100.0) / 100.0;
        let _ = write!(
            svg,
            r##"<text x="0" y="{:.1}">{}</text><rect x="{LABEL}" y="{:.1}" width="{:.1}" height="16" fill="#e9edf1" rx="3"/><rect x="{LABEL}" y="{:.1}" width="{width:.1}" height="16" fill="#0b7a55" rx="3"/><text x="{:.1}" y="{:.1}">{percent:.1} % · {}</text>"##,
            y + 17.0,
            escape(label),
            y + 5.0,
            WIDTH - LABEL - 120.0,
            y + 5.0,
            WIDTH - 112.0,
            y + 17.0,
            escape(note)
        );
    }
    svg.push_str("</svg>");
    svg
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
