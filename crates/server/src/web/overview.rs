//! `/`: the overview — sightings per hour and day, new attackers, attacked ports, payloads,
//! credentials and commands, sensors and feeds reporting. Figures come from [`super::digest`]
//! merged over the feeds the reader may read; nothing here queries the store's big tables.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write;

use axum::extract::State;
use axum::response::Response;

use super::digest::{merged_counts, top, Digest, FeedDigest};
use super::html::{esc, indicator_link, num, unavailable};
use super::{svg, Ctx};
use crate::auth::readable_feeds;
use crate::AppState;

pub async fn page(State(state): State<AppState>, ctx: Ctx) -> Response {
    let feeds = match readable_feeds(&state, &ctx.caller, None).await {
        Ok(f) => f,
        Err(e) => return ctx.api_error(e),
    };
    let ids: Vec<i64> = feeds.iter().map(|f| f.id).collect();
    let sessions = super::attackers::top_sessions_data(&state, &ctx).await;
    let body = ctx.web.snapshot(|d| render(d, &ids, feeds.len(), sessions.as_ref()));
    ctx.page("Overview", "/", body)
}

/// Credentials and commands seen most, from the sessions store when this hub keeps sessions.
pub struct SessionTops {
    pub credentials: Vec<(String, u64)>,
    pub commands: Vec<(String, u64)>,
    /// Sessions counted (the newest of the hub).
    pub sessions: usize,
}

fn render(d: &Digest, ids: &[i64], feed_count: usize, sessions: Option<&SessionTops>) -> String {
    let fs: Vec<&FeedDigest> = ids.iter().filter_map(|id| d.feeds.get(id)).collect();
    let mut b = String::from("<h1>Overview</h1>");
    status(&mut b, d);

    let sightings: u64 = fs.iter().map(|f| f.sightings).sum();
    let events: u64 = fs.iter().map(|f| f.events).sum();
    let values: usize = fs.iter().map(|f| f.values.len()).sum();
    let sensors: HashSet<u64> = fs.iter().flat_map(|f| f.sensors.iter().copied()).collect();
    let attackers = union_len(fs.iter().map(|f| &f.attackers));

    let hours: BTreeMap<i64, u64> = merged_counts(fs.iter().map(|f| f.hours.iter().map(|(k, v)| (*k, *v)))).into_iter().collect();
    let now_hour = chrono::Utc::now().timestamp().div_euclid(3600);
    let last_hour = hours.range(..=now_hour).next_back().map(|(h, _)| *h).unwrap_or(now_hour);
    let per_hour: Vec<(String, u64)> =
        (last_hour - 47..=last_hour).map(|h| (hour_label(h), hours.get(&h).copied().unwrap_or(0))).collect();
    let mut days: BTreeMap<i64, u64> = BTreeMap::new();
    for (h, n) in &hours {
        *days.entry(h.div_euclid(24)).or_default() += n;
    }
    let last_day = last_hour.div_euclid(24);
    let per_day: Vec<(String, u64)> = (last_day - 29..=last_day).map(|d| (day_label(d), days.get(&d).copied().unwrap_or(0))).collect();
    let new_att: BTreeMap<i64, u64> =
        merged_counts(fs.iter().map(|f| f.new_attackers.iter().map(|(k, v)| (*k, *v)))).into_iter().collect();
    let per_day_new: Vec<(String, u64)> =
        (last_day - 29..=last_day).map(|d| (day_label(d), new_att.get(&d).copied().unwrap_or(0))).collect();

    let _ = write!(
        b,
        "<section class=\"cards\" aria-label=\"Totals\">\
{}{}{}{}{}{}</section>",
        card("sightings", "Sightings", sightings, Some(svg::sparkline("sightings per day, last 30 days", &per_day.iter().map(|x| x.1).collect::<Vec<_>>()))),
        card("events", "Events", events, None),
        card("values", "Values listed", values as u64, None),
        card("attackers", "Attackers", attackers, Some(svg::sparkline("new attackers per day, last 30 days", &per_day_new.iter().map(|x| x.1).collect::<Vec<_>>()))),
        card("sensors", "Sensors reporting", sensors.len() as u64, None),
        card("feeds", "Feeds", feed_count as u64, None),
    );

    let _ = write!(
        b,
        "<div class=\"grid2\"><section><h2>Sightings per hour</h2><p class=\"sub\">48 hours to {}</p>{}</section>\
<section><h2>Sightings per day</h2><p class=\"sub\">30 days to {}</p>{}</section>\
<section><h2>New attackers per day</h2><p class=\"sub\">addresses a sensor saw for the first time in a feed</p>{}</section>",
        esc(&hour_label(last_hour)),
        svg::columns("sightings per hour", &per_hour, 6),
        esc(&day_label(last_day)),
        svg::columns("sightings per day", &per_day, 5),
        svg::columns("new attackers per day", &per_day_new, 5),
    );

    let ports = top(merged_counts(fs.iter().map(|f| f.ports.iter().map(|(k, v)| (*k, *v)))), 10);
    let port_rows: Vec<(String, u64)> = ports.into_iter().map(|(p, n)| (format!("<span class=\"value\">{p}</span>"), n)).collect();
    let _ = write!(
        b,
        "<section id=\"top-ports\"><h2>Top attacked ports</h2>{}</section>",
        svg::bars("top attacked ports", &port_rows, "No sensor has reported an attacked port yet.")
    );
    let payloads = top(merged_counts(fs.iter().map(|f| f.payloads.iter().map(|(k, v)| (k.clone(), *v)))), 10);
    let payload_rows: Vec<(String, u64)> = payloads.into_iter().map(|(p, n)| (indicator_link(&p), n)).collect();
    let _ = write!(
        b,
        "<section id=\"top-payloads\"><h2>Top payloads</h2>{}</section>",
        svg::bars("top payloads", &payload_rows, "No payload hashes yet.")
    );
    match sessions {
        Some(t) => {
            let creds: Vec<(String, u64)> = t.credentials.iter().map(|(c, n)| (format!("<code>{}</code>", esc(c)), *n)).collect();
            let cmds: Vec<(String, u64)> = t.commands.iter().map(|(c, n)| (format!("<code>{}</code>", esc(c)), *n)).collect();
            let _ = write!(
                b,
                "<section id=\"top-credentials\"><h2>Top credentials</h2><p class=\"sub\">in the latest {} sessions</p>{}</section><section id=\"top-commands\"><h2>Top commands</h2><p class=\"sub\">in the latest {} sessions</p>{}</section>",
                num(t.sessions as i64),
                svg::bars("top credentials", &creds, "No credentials tried yet."),
                num(t.sessions as i64),
                svg::bars("top commands", &cmds, "No commands run yet.")
            );
        }
        None => {
            let _ = write!(
                b,
                "<section id=\"top-credentials\"><h2>Top credentials and commands</h2>{}</section>",
                unavailable(
                    "Credentials and commands",
                    "this hub does not keep honeypot sessions yet; attackers' credentials and commands are on each attacker's page"
                )
            );
        }
    }
    let tags = top(merged_counts(fs.iter().map(|f| f.tags.iter().map(|(k, v)| (k.clone(), *v)))), 10);
    let tag_rows: Vec<(String, u64)> = tags.into_iter().map(|(t, n)| (esc(&t).into_owned(), n)).collect();
    let _ = write!(b, "<section id=\"top-tags\"><h2>Top tags</h2>{}</section></div>", svg::bars("top tags", &tag_rows, "No tags yet."));
    b
}

fn union_len<'a>(sets: impl Iterator<Item = &'a HashSet<u64>>) -> u64 {
    let sets: Vec<&HashSet<u64>> = sets.collect();
    match sets.len() {
        0 => 0,
        1 => sets[0].len() as u64,
        _ => {
            let mut all: HashSet<u64> = HashSet::with_capacity(sets.iter().map(|s| s.len()).max().unwrap_or(0));
            for s in sets {
                all.extend(s.iter().copied());
            }
            all.len() as u64
        }
    }
}

fn card(id: &str, label: &str, n: u64, spark: Option<String>) -> String {
    format!(
        "<div class=\"card\" id=\"card-{id}\"><div class=\"label\">{label}</div><div class=\"figure\" data-value=\"{n}\">{}</div>{}</div>",
        num(n as i64),
        spark.unwrap_or_default()
    )
}

/// Whether the figures are complete, and how far the background reading has come.
pub fn status(b: &mut String, d: &Digest) {
    if let Some(e) = &d.error {
        let _ = write!(b, "<p class=\"notice\" role=\"status\">The figures may be stale: {}</p>", esc(e));
    }
    if d.catching_up() {
        let _ = write!(
            b,
            "<p class=\"notice\" role=\"status\" data-state=\"computing\">Computing in the background: {} of {} sightings read. Reload for more.</p>",
            num(d.read_seq),
            num(d.log_end)
        );
    }
}

fn hour_label(h: i64) -> String {
    chrono::DateTime::from_timestamp(h * 3600, 0).map(|t| t.format("%m-%d %H:00").to_string()).unwrap_or_default()
}

fn day_label(d: i64) -> String {
    chrono::DateTime::from_timestamp(d * 86_400, 0).map(|t| t.format("%Y-%m-%d").to_string()).unwrap_or_default()
}
