//! `/compare`: the feeds the reader may read side by side — volume, exclusive contribution,
//! overlap, latency as bars — and a heat map of pairwise overlaps. Figures from
//! [`super::digest`] (overlaps recomputed in the background).

use std::fmt::Write;

use axum::extract::State;
use axum::response::Response;

use super::digest::median;
use super::html::{duration, feed_link, num};
use super::{svg, Ctx};
use crate::auth::readable_feeds;
use crate::AppState;

/// Feeds in the heat map (the largest).
const HEAT: usize = 16;

pub async fn page(State(state): State<AppState>, ctx: Ctx) -> Response {
    let feeds = match readable_feeds(&state, &ctx.caller, None).await {
        Ok(f) => f,
        Err(e) => return ctx.api_error(e),
    };
    if let Ok(Some(c)) = state.store.get_feed_comparison().await {
        let ids: std::collections::HashSet<i64> = feeds.iter().map(|f| f.id).collect();
        let c = c.restrict(|id| ids.contains(&id));
        if !c.rows.is_empty() {
            return ctx.page("Compare", "/compare", stored(&c));
        }
    }
    let body = ctx.web.snapshot(|d| {
        let mut b = String::from("<h1>Feeds compared</h1>");
        super::overview::status(&mut b, d);
        let mut rows: Vec<(&apiary_store::Feed, &super::digest::FeedDigest)> =
            feeds.iter().filter_map(|f| d.feeds.get(&f.id).map(|x| (f, x))).collect();
        if rows.is_empty() {
            b.push_str("<p class=\"empty\">No feed you may read has sightings yet.</p>");
            return b;
        }
        rows.sort_by(|a, b| b.1.values.len().cmp(&a.1.values.len()).then_with(|| a.0.full_name().cmp(&b.0.full_name())));
        let max_values = rows.iter().map(|r| r.1.values.len()).max().unwrap_or(1).max(1) as f64;
        b.push_str(
            "<div class=\"scroll\"><table class=\"list compare\" id=\"compare\"><thead><tr><th scope=\"col\">Feed</th><th scope=\"col\" class=\"num\">Values</th>\
<th scope=\"col\">Volume</th><th scope=\"col\" class=\"num\">Exclusive</th><th scope=\"col\">Exclusive share</th><th scope=\"col\" class=\"num\">Shared with others</th>\
<th scope=\"col\" class=\"num\">Median latency</th></tr></thead><tbody>",
        );
        for (f, x) in &rows {
            let values = x.values.len();
            let excl = d.exclusive.get(&f.id).copied();
            let shared: u64 = rows.iter().filter(|(o, _)| o.id != f.id).filter_map(|(o, _)| d.overlap(f.id, o.id)).max().unwrap_or(0);
            let share = excl.map(|e| e as f64 / values.max(1) as f64 * 100.0);
            let _ = write!(
                b,
                "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"barcell\">{}</td><td class=\"num\">{}</td><td class=\"barcell\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                feed_link(&f.full_name()),
                num(values as i64),
                bar(values as f64 / max_values * 100.0),
                excl.map(|e| num(e as i64)).unwrap_or_else(|| "…".into()),
                share.map(|s| format!("{}<span class=\"sub\"> {s:.0} %</span>", bar(s))).unwrap_or_default(),
                num(shared as i64),
                median(&x.latency).map(duration).unwrap_or_else(|| "—".into()),
            );
        }
        b.push_str("</tbody></table></div><p class=\"sub\">Exclusive: values no other feed on this hub lists. Shared with others: the largest overlap with one other feed you may read.</p>");
        let heat: Vec<_> = rows.iter().take(HEAT).collect();
        if heat.len() >= 2 {
            let names: Vec<String> = heat.iter().map(|(f, _)| f.full_name()).collect();
            let map = svg::heatmap("overlap between feeds: share of the row feed's values also in the column feed", &names, |i, j| {
                let (a, xa) = (heat[i].0.id, heat[i].1);
                let n = d.overlap(a, heat[j].0.id)?;
                let share = n as f64 / xa.values.len().max(1) as f64;
                Some((if i == j { "·".to_string() } else { format!("{:.0}", share * 100.0) }, if i == j { 0.0 } else { share }))
            });
            let _ = write!(
                b,
                "<section id=\"overlap\"><h2>Overlap</h2><p class=\"sub\">Per cent of the row feed's values that the column feed also lists.</p><div class=\"scroll\">{map}</div></section>"
            );
        }
        b
    });
    ctx.page("Compare", "/compare", body)
}

fn bar(pct: f64) -> String {
    format!(
        "<svg viewBox=\"0 0 100 10\" preserveAspectRatio=\"none\" aria-hidden=\"true\"><rect class=\"bar\" x=\"0\" y=\"1\" width=\"{:.1}\" height=\"8\"/></svg>",
        pct.clamp(0.5, 100.0)
    )
}

/// The comparison the hub's comparison job stored (trusted feeds, lead rate, marginal lift).
fn stored(c: &apiary_core::trust::compare::Comparison) -> String {
    let mut b = String::from("<h1>Feeds compared</h1>");
    let computed = chrono::DateTime::from_timestamp(c.computed_at, 0).map(super::html::time).unwrap_or_default();
    let _ = write!(
        b,
        "<p class=\"sub\">{} distinct values, {} listed by a trusted feed ({}), {} at BLOCK tier; computed {computed}.</p>",
        num(c.values as i64),
        num(c.trusted_values as i64),
        super::html::esc(if c.trusted_by.is_empty() { "trusted feeds" } else { &c.trusted_by }),
        num(c.block_values as i64),
    );
    let max_volume = c.rows.iter().map(|r| r.volume).max().unwrap_or(1).max(1) as f64;
    let pct = |x: Option<f64>| x.map(|v| format!("{:.0} %", v * 100.0)).unwrap_or_else(|| "—".into());
    let hours = |x: Option<f64>| x.map(|h| duration((h * 3600.0) as i64)).unwrap_or_else(|| "—".into());
    b.push_str(
        "<div class=\"scroll\"><table class=\"list compare\" id=\"compare\"><thead><tr><th scope=\"col\">Feed</th><th scope=\"col\" class=\"num\">Volume</th><th scope=\"col\"></th>\
<th scope=\"col\" class=\"num\">New / day</th><th scope=\"col\" class=\"num\">Exclusive</th><th scope=\"col\">Exclusive share</th><th scope=\"col\" class=\"num\">Overlap with trusted</th>\
<th scope=\"col\" class=\"num\">Median latency</th><th scope=\"col\" class=\"num\">Lead rate</th><th scope=\"col\" class=\"num\">Allowlisted</th><th scope=\"col\" class=\"num\">BLOCK</th><th scope=\"col\" class=\"num\">Marginal lift</th></tr></thead><tbody>",
    );
    for r in &c.rows {
        let _ = write!(
            b,
            "<tr><td>{}{}</td><td class=\"num\">{}</td><td class=\"barcell\">{}</td><td class=\"num\">{:.1}</td><td class=\"num\">{}</td><td class=\"barcell\">{}<span class=\"sub\"> {}</span></td>\
<td class=\"num\">{} <span class=\"sub\">{}</span></td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            feed_link(&r.feed),
            if r.trusted { " <span class=\"pill\">trusted</span>" } else { "" },
            num(r.volume as i64),
            bar(r.volume as f64 / max_volume * 100.0),
            r.new_per_day,
            num(r.exclusive as i64),
            bar(r.exclusive_share.unwrap_or(0.0) * 100.0),
            pct(r.exclusive_share),
            num(r.trusted_overlap as i64),
            pct(r.trusted_overlap_share),
            hours(r.latency_median_hours),
            pct(r.lead_rate),
            pct(r.allowlisted_share),
            num(r.block as i64),
            num(r.marginal_lift as i64),
        );
    }
    b.push_str("</tbody></table></div><p class=\"sub\">Exclusive: values no other feed lists. Latency: hours from the first trusted listing to this feed's (negative: earlier). Lead rate: share of the trusted overlap this feed listed first. Marginal lift: BLOCK values that drop below BLOCK without this feed.</p>");
    let o = &c.overlap;
    let n = o.ids.len().min(HEAT);
    if n >= 2 {
        let names: Vec<String> = o.feeds[..n].to_vec();
        let map = svg::heatmap("overlap between feeds: share of the row feed's values also in the column feed", &names, |i, j| {
            let vol = o.intersect[i][i].max(1) as f64;
            let share = o.intersect[i][j] as f64 / vol;
            Some((if i == j { "·".to_string() } else { format!("{:.0}", share * 100.0) }, if i == j { 0.0 } else { share }))
        });
        let _ = write!(
            b,
            "<section id=\"overlap\"><h2>Overlap</h2><p class=\"sub\">Per cent of the row feed's values that the column feed also lists.</p><div class=\"scroll\">{map}</div></section>"
        );
    }
    b
}
