//! `/indicators/{value}` (the value percent-encoded): one indicator with its evidence — score,
//! timeline of sightings (counts of sensors and feeds, never which sensor), the feeds listing
//! it, related indicators, the sessions of an attacker, and special-use or allowlist notes. A
//! value in any other form (raw, defanged, differently encoded) redirects to the normalised
//! one, as `apiary_core::parse` writes it. `/indicators?q=` is the look-up form's target.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt::Write;

use apiary_core::{parse, Indicator};
use apiary_store::{FeedRecord, Query, Sighting};
use axum::extract::rejection::PathRejection;
use axum::extract::{OriginalUri, Path, Query as QueryString, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;

use super::html::{esc, feed_link, indicator_href, indicator_link, num, time, unavailable};
use super::{redirect, svg, Ctx};
use crate::AppState;

/// Sightings read for the timeline and sessions (newest first).
const SIGHTINGS: usize = 1_000;
/// Sessions listed for an attacker.
const SESSIONS: usize = 20;

#[derive(Debug, Deserialize)]
pub struct Lookup {
    q: Option<String>,
}

/// `/indicators?q=VALUE`: normalise and go to the indicator's page.
pub async fn search(State(state): State<AppState>, ctx: Ctx, QueryString(l): QueryString<Lookup>) -> Response {
    let q = l.q.as_deref().map(str::trim).unwrap_or("");
    if q.is_empty() {
        let body = "<h1>Look up an indicator</h1><form class=\"filters\" action=\"/indicators\" method=\"get\">\
<label>Value <input name=\"q\" autofocus placeholder=\"IP, CIDR, domain, URL, e-mail, hash\"></label><button type=\"submit\">Look up</button></form>";
        return ctx.page("Look up", "", body.to_string());
    }
    match parse(q, None, &state.parse_options) {
        Ok(ind) => redirect(&indicator_href(&ind.value)),
        Err(r) => ctx.error(StatusCode::UNPROCESSABLE_ENTITY, "Not an indicator", &format!("`{q}`: {}", r.message)),
    }
}

pub async fn page(
    State(state): State<AppState>,
    ctx: Ctx,
    OriginalUri(uri): OriginalUri,
    value: Result<Path<String>, PathRejection>,
) -> Response {
    let Ok(Path(value)) = value else {
        return ctx.error(StatusCode::BAD_REQUEST, "Not understood", "the value in the address is not valid percent-encoded UTF-8");
    };
    let ind = match parse(&value, None, &state.parse_options) {
        Ok(ind) => ind,
        Err(r) => return ctx.error(StatusCode::UNPROCESSABLE_ENTITY, "Not an indicator", &format!("`{value}`: {}", r.message)),
    };
    let canonical = indicator_href(&ind.value);
    if uri.path() != canonical {
        return redirect(&canonical);
    }
    let q = Query { value: Some(ind.value.clone()), reader: ctx.caller.reader(), limit: state.config.max_limit, ..Query::default() };
    let records = match crate::access::query(&state, &ctx.caller, &q).await {
        Ok(p) => p.items,
        Err(e) => return ctx.api_error(e),
    };
    let mut b = String::new();
    let _ = write!(
        b,
        "<h1 class=\"indicator\"><span class=\"value\" id=\"value\">{}</span> <span class=\"pill\">{}</span></h1>",
        esc(&ind.value),
        ind.itype.as_str()
    );
    notes(&mut b, &ind);
    if records.is_empty() {
        let _ = write!(b, "<p class=\"notice\" id=\"not-listed\">{} is not in any feed you may read.</p>", esc(&ind.value));
        return ctx.page_status(StatusCode::NOT_FOUND, &ind.value, "", b);
    }
    let feed_ids: Vec<i64> = records.iter().map(|r| r.feed_id).collect();
    let sightings = match crate::access::sightings_of(&state, &ctx.caller, &ind.value, Some(&feed_ids), SIGHTINGS).await {
        Ok(s) => s,
        Err(e) => return ctx.api_error(e),
    };
    score(&mut b, &state, &ctx, &ind).await;
    summary(&mut b, &records, &sightings);
    timeline(&mut b, &sightings);
    feeds(&mut b, &records);
    super::attackers::campaign_links(&mut b, &state, &ctx, &ind).await;
    related(&mut b, &ind, &sightings, &state);
    if ind.itype.is_address() {
        sessions(&mut b, &sightings);
    }
    ctx.page(&ind.value, "", b)
}

/// Special-use and allowlist notes.
fn notes(b: &mut String, ind: &Indicator) {
    let mut notes = Vec::new();
    if let Some(r) = ind.reserved {
        notes.push(format!(
            "Special-use address (<code>{}</code>): never scored, never exported in blocklists.",
            esc(r.as_str())
        ));
    }
    for l in crate::export::allowlist().check(ind) {
        let what = match l.use_.as_str() {
            "exclude" => "never exported in blocklists",
            _ => "held out of blocklists until a trusted source confirms it",
        };
        notes.push(format!("Listed in <strong>{}</strong> ({}): {what}.", esc(&l.list), esc(l.use_.as_str())));
    }
    if !notes.is_empty() {
        let _ = write!(b, "<section id=\"notes\" class=\"notes\"><h2 class=\"sr\">Notes</h2><ul>");
        for n in notes {
            let _ = write!(b, "<li>{n}</li>");
        }
        b.push_str("</ul></section>");
    }
}

/// The hub's score: a gauge and its explanation terms, when the hub scores indicators.
async fn score(b: &mut String, state: &AppState, ctx: &Ctx, ind: &Indicator) {
    b.push_str("<section id=\"score\"><h2>Score</h2>");
    match super::trust_score(state, ctx, ind).await {
        Some(s) => b.push_str(&s),
        None => b.push_str(&unavailable("Score", "this hub does not score indicators yet")),
    }
    b.push_str("</section>");
}

fn summary(b: &mut String, records: &[FeedRecord], sightings: &[Sighting]) {
    let owners: BTreeSet<&str> = records.iter().filter_map(|r| r.feed.split('/').next()).collect();
    let sensors: HashSet<&str> = sightings.iter().filter_map(|s| s.sensor.as_deref()).collect();
    let tags: BTreeSet<&str> = records.iter().flat_map(|r| r.tags.iter().map(String::as_str)).collect();
    let _ = write!(
        b,
        "<dl class=\"facts\" id=\"summary\"><div><dt>First seen</dt><dd>{}</dd></div><div><dt>Last seen</dt><dd>{}</dd></div>\
<div><dt>Reports</dt><dd id=\"s-count\">{}</dd></div><div><dt>Feeds</dt><dd id=\"s-feeds\">{}</dd></div><div><dt>Sources</dt><dd>{}</dd></div>\
<div><dt>Sensors</dt><dd id=\"s-sensors\">{}</dd></div></dl><p class=\"tags\">{}</p>",
        records.iter().map(|r| r.firsttime).min().map(time).unwrap_or_default(),
        records.iter().map(|r| r.lasttime).max().map(time).unwrap_or_default(),
        num(records.iter().map(|r| r.count).sum::<i64>()),
        num(records.len() as i64),
        num(owners.len() as i64),
        num(sensors.len() as i64),
        tags.iter().map(|t| format!("<span class=\"tag\">{}</span>", esc(t))).collect::<String>()
    );
}

/// Sightings per day, with how many sensors and feeds saw it each day (counts only).
fn timeline(b: &mut String, sightings: &[Sighting]) {
    struct Day<'a> {
        count: u64,
        sensors: HashSet<&'a str>,
        feeds: HashSet<&'a str>,
    }
    let mut days: BTreeMap<i64, Day> = BTreeMap::new();
    for s in sightings {
        let d = days.entry(s.observed_at.timestamp().div_euclid(86_400)).or_insert_with(|| Day { count: 0, sensors: HashSet::new(), feeds: HashSet::new() });
        d.count += s.count.max(1) as u64;
        if let Some(sensor) = &s.sensor {
            d.sensors.insert(sensor);
        }
        d.feeds.insert(&s.feed);
    }
    b.push_str("<section id=\"timeline\"><h2>Timeline</h2>");
    let (Some(first), Some(last)) = (days.keys().next().copied(), days.keys().next_back().copied()) else {
        b.push_str("<p class=\"empty\">No sightings.</p></section>");
        return;
    };
    let label = |d: i64| chrono::DateTime::from_timestamp(d * 86_400, 0).map(|t| t.format("%Y-%m-%d").to_string()).unwrap_or_default();
    if last - first < 120 {
        let series: Vec<(String, u64)> = (first..=last).map(|d| (label(d), days.get(&d).map_or(0, |x| x.count))).collect();
        let every = (series.len() / 8).max(1);
        b.push_str(&svg::columns("sightings per day", &series, every));
    }
    b.push_str(
        "<div class=\"scroll\"><table class=\"list\" id=\"timeline-days\"><thead><tr><th scope=\"col\">Day</th><th scope=\"col\" class=\"num\">Sightings</th>\
<th scope=\"col\" class=\"num\">Sensors</th><th scope=\"col\" class=\"num\">Feeds</th></tr></thead><tbody>",
    );
    for (d, day) in days.iter().rev().take(30) {
        let _ = write!(
            b,
            "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            label(*d),
            num(day.count as i64),
            day.sensors.len(),
            day.feeds.len()
        );
    }
    let _ = write!(
        b,
        "</tbody></table></div><p class=\"sub\">From the latest {} sightings. Sensors are counted, never named.</p></section>",
        num(sightings.len() as i64)
    );
}

fn feeds(b: &mut String, records: &[FeedRecord]) {
    b.push_str(
        "<section id=\"feeds\"><h2>Feeds listing it</h2><div class=\"scroll\"><table class=\"list\"><thead><tr><th scope=\"col\">Feed</th>\
<th scope=\"col\" class=\"num\">Count</th><th scope=\"col\">First seen</th><th scope=\"col\">Last seen</th><th scope=\"col\">Tags</th><th scope=\"col\">Description</th></tr></thead><tbody>",
    );
    for r in records {
        let _ = write!(
            b,
            "<tr><td>{}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            feed_link(&r.feed),
            num(r.count),
            time(r.firsttime),
            time(r.lasttime),
            r.tags.iter().map(|t| format!("<span class=\"tag\">{}</span>", esc(t))).collect::<String>(),
            esc(r.description.as_deref().unwrap_or(""))
        );
    }
    b.push_str("</tbody></table></div></section>");
}

/// Values named in the sightings' details (the attacker of a payload, a URL's payloads, an
/// attacker's downloads), each normalised by the core before it is linked.
fn related(b: &mut String, ind: &Indicator, sightings: &[Sighting], state: &AppState) {
    let mut found: BTreeMap<String, &'static str> = BTreeMap::new();
    let add = |found: &mut BTreeMap<String, &'static str>, raw: &str, why: &'static str| {
        if let Ok(r) = parse(raw, None, &state.parse_options) {
            if r.value != ind.value {
                found.entry(r.value).or_insert(why);
            }
        }
    };
    for d in &ind.derived {
        add(&mut found, &d.value, "host");
    }
    for s in sightings {
        let e = &s.extra;
        if let Some(a) = e.get("attacker").and_then(Value::as_str) {
            add(&mut found, a, "attacker");
        }
        for k in ["urls", "shasums"] {
            for v in e.get(k).and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
                add(&mut found, v, if k == "urls" { "URL" } else { "payload" });
            }
        }
        for d in e.get("downloads").and_then(Value::as_array).into_iter().flatten() {
            if let Some(u) = d.get("url").and_then(Value::as_str) {
                add(&mut found, u, "downloaded from");
            }
            if let Some(h) = d.get("shasum").and_then(Value::as_str) {
                add(&mut found, h, "payload");
            }
        }
        for u in e.get("uploads").and_then(Value::as_array).into_iter().flatten() {
            if let Some(h) = u.get("shasum").and_then(Value::as_str) {
                add(&mut found, h, "uploaded");
            }
        }
        if found.len() >= 200 {
            break;
        }
    }
    b.push_str("<section id=\"related\"><h2>Related indicators</h2>");
    if found.is_empty() {
        b.push_str("<p class=\"empty\">None recorded with its sightings.</p></section>");
        return;
    }
    b.push_str("<ul class=\"related\">");
    for (v, why) in found.iter().take(100) {
        let _ = write!(b, "<li>{} <span class=\"sub\">{why}</span></li>", indicator_link(v));
    }
    b.push_str("</ul></section>");
}

/// An attacker's honeypot sessions as its sightings recorded them (never which sensor).
fn sessions(b: &mut String, sightings: &[Sighting]) {
    let with_session: Vec<&Sighting> = sightings.iter().filter(|s| s.extra.get("session").is_some() && s.extra.get("depth").is_some()).collect();
    if with_session.is_empty() {
        return;
    }
    b.push_str(
        "<section id=\"sessions\"><h2>Sessions</h2><div class=\"scroll\"><table class=\"list\"><thead><tr><th scope=\"col\">Start</th><th scope=\"col\">Service</th>\
<th scope=\"col\">Depth</th><th scope=\"col\">Credentials</th><th scope=\"col\">Commands</th><th scope=\"col\">Payloads</th><th scope=\"col\">Client</th></tr></thead><tbody>",
    );
    for s in with_session.iter().take(SESSIONS) {
        let e = &s.extra;
        let creds: Vec<String> = e
            .get("credentials")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .take(5)
            .map(|c| match c.as_array().map(|a| a.as_slice()) {
                Some([u, p]) => super::html::credential(Some(&text(u)), &text(p)),
                _ => text(c),
            })
            .collect();
        let tried = e.get("login_attempts").and_then(Value::as_u64).unwrap_or(creds.len() as u64);
        let cmds: Vec<String> = e.get("commands").and_then(Value::as_array).into_iter().flatten().take(5).map(text).collect();
        let ncmds = e.get("command_count").and_then(Value::as_u64).unwrap_or(cmds.len() as u64);
        let payloads: Vec<String> = e
            .get("downloads")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .chain(e.get("uploads").and_then(Value::as_array).into_iter().flatten())
            .filter_map(|d| d.get("shasum").and_then(Value::as_str))
            .filter_map(|h| apiary_core::parse(h, None, &apiary_core::ParseOptions::default()).ok())
            .map(|i| indicator_link(&i.value))
            .collect();
        let service = format!(
            "{} {}",
            s.protocol.as_deref().unwrap_or(""),
            s.portlist.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(",")
        );
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            time(s.observed_at),
            esc(service.trim()),
            esc(&text(e.get("depth").unwrap_or(&Value::Null))),
            list_cell(&creds, tried),
            list_cell(&cmds, ncmds),
            payloads.join("<br>"),
            esc(&e.get("client_version").map(text).unwrap_or_default()),
        );
    }
    let _ = write!(
        b,
        "</tbody></table></div><p class=\"sub\">{} of {} sessions shown, newest first.</p></section>",
        with_session.len().min(SESSIONS),
        with_session.len()
    );
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn list_cell(items: &[String], total: u64) -> String {
    let mut s: String = items.iter().map(|i| format!("<code>{}</code><br>", esc(i))).collect();
    if total as usize > items.len() {
        let _ = write!(s, "<span class=\"sub\">and {} more</span>", total as usize - items.len());
    }
    s
}
