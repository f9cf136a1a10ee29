//! Charts as inline SVG, drawn on the server: column charts for time series, horizontal bars for
//! top lists, sparklines, a score gauge and a heat map. Every chart carries a text alternative
//! (`role="img"` with a label, and a `<title>` per mark) so it reads without sight too.

use std::fmt::Write;

use super::html::{esc, num};

/// A column chart of `(label, value)` in order (e.g. per hour). Labels are shown under every
/// `label_every`-th column.
pub fn columns(caption: &str, series: &[(String, u64)], label_every: usize) -> String {
    let (w, h, pad_l, pad_b, pad_t) = (640.0_f64, 180.0_f64, 44.0, 34.0, 10.0);
    let max = series.iter().map(|(_, v)| *v).max().unwrap_or(0).max(1) as f64;
    let n = series.len().max(1) as f64;
    let bw = (w - pad_l) / n;
    let mut s = format!(
        "<svg class=\"chart columns\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"{}\" preserveAspectRatio=\"none\">",
        esc(caption)
    );
    // Axis: max and zero.
    let _ = write!(
        s,
        "<text class=\"axis\" x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text><text class=\"axis\" x=\"{}\" y=\"{}\" text-anchor=\"end\">0</text>\
<line class=\"base\" x1=\"{pad_l}\" y1=\"{y0}\" x2=\"{w}\" y2=\"{y0}\"/>",
        pad_l - 4.0,
        pad_t + 8.0,
        num(max as i64),
        pad_l - 4.0,
        h - pad_b,
        y0 = h - pad_b,
    );
    for (i, (label, v)) in series.iter().enumerate() {
        let bh = (*v as f64 / max) * (h - pad_b - pad_t);
        let x = pad_l + i as f64 * bw;
        let _ = write!(
            s,
            "<rect class=\"bar\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\"><title>{}: {}</title></rect>",
            x + bw * 0.1,
            h - pad_b - bh,
            (bw * 0.8).max(1.0),
            bh,
            esc(label),
            num(*v as i64)
        );
        if label_every > 0 && i % label_every == 0 {
            let _ = write!(s, "<text class=\"axis\" x=\"{:.1}\" y=\"{}\">{}</text>", x + 1.0, h - pad_b + 14.0, esc(label));
        }
    }
    s.push_str("</svg>");
    s
}

/// Horizontal bars: a table of (label HTML, count) with a bar per row, largest first.
pub fn bars(caption: &str, rows: &[(String, u64)], empty: &str) -> String {
    if rows.is_empty() {
        return format!("<p class=\"empty\">{}</p>", esc(empty));
    }
    let max = rows.iter().map(|(_, v)| *v).max().unwrap_or(1).max(1) as f64;
    let mut s = format!("<table class=\"bars\"><caption class=\"sr\">{}</caption><tbody>", esc(caption));
    for (label, v) in rows {
        let pct = (*v as f64 / max * 100.0).max(0.5);
        let _ = write!(
            s,
            "<tr><th scope=\"row\">{label}</th><td class=\"num\">{}</td><td class=\"barcell\"><svg viewBox=\"0 0 100 10\" preserveAspectRatio=\"none\" aria-hidden=\"true\"><rect class=\"bar\" x=\"0\" y=\"1\" width=\"{pct:.1}\" height=\"8\"/></svg></td></tr>",
            num(*v as i64)
        );
    }
    s.push_str("</tbody></table>");
    s
}

/// A small line of values, for a figure's recent trend.
pub fn sparkline(caption: &str, values: &[u64]) -> String {
    let (w, h) = (120.0_f64, 28.0_f64);
    let max = values.iter().copied().max().unwrap_or(0).max(1) as f64;
    let n = values.len();
    let mut pts = String::new();
    for (i, v) in values.iter().enumerate() {
        let x = if n > 1 { i as f64 * w / (n - 1) as f64 } else { w / 2.0 };
        let y = h - 2.0 - (*v as f64 / max) * (h - 4.0);
        let _ = write!(pts, "{x:.1},{y:.1} ");
    }
    format!(
        "<svg class=\"spark\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"{}\"><polyline points=\"{}\"/></svg>",
        esc(caption),
        pts.trim_end()
    )
}

/// A half-circle gauge for a score of 0–100, with the tier written under it.
pub fn gauge(score: f64, tier: &str) -> String {
    let score = score.clamp(0.0, 100.0);
    let angle = std::f64::consts::PI * (1.0 - score / 100.0);
    let (cx, cy, r) = (60.0_f64, 60.0_f64, 48.0_f64);
    let (x, y) = (cx + r * angle.cos(), cy - r * angle.sin());
    let class = match tier {
        "BLOCK" => "block",
        "SUSPICIOUS" => "suspicious",
        _ => "observe",
    };
    format!(
        "<svg class=\"gauge {class}\" viewBox=\"0 0 120 78\" role=\"img\" aria-label=\"confidence {score:.0} of 100, tier {}\">\
<path class=\"track\" d=\"M12 60 A48 48 0 0 1 108 60\"/>\
<path class=\"fill\" d=\"M12 60 A48 48 0 0 1 {x:.1} {y:.1}\"/>\
<text class=\"score\" x=\"60\" y=\"56\" text-anchor=\"middle\">{score:.0}</text>\
<text class=\"tier\" x=\"60\" y=\"74\" text-anchor=\"middle\">{}</text></svg>",
        esc(tier),
        esc(tier)
    )
}

/// A heat map of a square matrix: `names` label rows and columns, `cell(i, j)` gives the shown
/// number and a shade 0–1.
pub fn heatmap(caption: &str, names: &[String], cell: impl Fn(usize, usize) -> Option<(String, f64)>) -> String {
    let n = names.len();
    let (c, label_w) = (36.0_f64, 150.0_f64);
    // The column labels lean right (60° up): room for the last one past the last column.
    let w = label_w + c * n as f64 + label_w * 0.5;
    let h = label_w + c * n as f64;
    // Its natural size as attributes (the page's CSP allows no inline styles); CSS only shrinks it.
    let mut s = format!(
        "<svg class=\"heatmap\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" role=\"img\" aria-label=\"{}\">",
        esc(caption)
    );
    for (i, name) in names.iter().enumerate() {
        let short: String = name.chars().take(22).collect();
        let _ = write!(
            s,
            "<text class=\"axis\" x=\"{:.0}\" y=\"{:.0}\" text-anchor=\"end\">{}</text>",
            label_w - 6.0,
            label_w + c * i as f64 + c * 0.6,
            esc(&short)
        );
        let _ = write!(
            s,
            "<text class=\"axis\" transform=\"translate({:.0},{:.0}) rotate(-60)\">{}</text>",
            label_w + c * i as f64 + c * 0.5,
            label_w - 6.0,
            esc(&short)
        );
    }
    for i in 0..n {
        for j in 0..n {
            let Some((text, shade)) = cell(i, j) else { continue };
            let shade = shade.clamp(0.0, 1.0);
            let (x, y) = (label_w + c * j as f64, label_w + c * i as f64);
            let _ = write!(
                s,
                "<g><rect class=\"cell\" x=\"{x:.0}\" y=\"{y:.0}\" width=\"{c}\" height=\"{c}\" fill-opacity=\"{:.2}\"/>\
<text class=\"cellnum{}\" x=\"{:.0}\" y=\"{:.0}\" text-anchor=\"middle\">{}</text><title>{} ∩ {}: {}</title></g>",
                0.08 + shade * 0.92,
                if shade > 0.55 { " light" } else { "" },
                x + c / 2.0,
                y + c * 0.62,
                esc(&text),
                esc(&names[i]),
                esc(&names[j]),
                esc(&text)
            );
        }
    }
    s.push_str("</svg>");
    s
}
