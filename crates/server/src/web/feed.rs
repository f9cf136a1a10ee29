//! `/feeds` (every feed the reader may read) and `/feeds/{owner}/{feed}`: one feed's indicators
//! with filters and paging, export links for every format, quality figures next to the other
//! feeds', and a subscribe button.

use std::fmt::Write;

use apiary_core::export::FORMATS;
use apiary_core::IType;
use apiary_store::{Feed, Visibility};
use axum::extract::{Path, Query as QueryString, State};
use axum::response::Response;

use super::digest::{median, Digest};
use super::html::{duration, encode_query, encode_segment, esc, feed_link, indicator_link, num, time};
use super::{svg, Ctx};
use crate::api::indicators::{build_query, Filters};
use crate::auth::{readable_feed, readable_feeds};
use crate::AppState;

/// Rows per page of a feed's indicators.
const PAGE: usize = 50;

pub async fn list(State(state): State<AppState>, ctx: Ctx) -> Response {
    let feeds = match readable_feeds(&state, &ctx.caller, None).await {
        Ok(f) => f,
        Err(e) => return ctx.api_error(e),
    };
    let body = ctx.web.snapshot(|d| {
        let mut b = String::from("<h1>Feeds</h1>");
        super::overview::status(&mut b, d);
        if feeds.is_empty() {
            b.push_str("<p class=\"empty\">No feed you may read yet.</p>");
            return b;
        }
        b.push_str(
            "<div class=\"scroll\"><table class=\"list\" id=\"feeds\"><thead><tr><th scope=\"col\">Feed</th><th scope=\"col\">Visibility</th>\
<th scope=\"col\" class=\"num\">Values</th><th scope=\"col\" class=\"num\">Sightings</th><th scope=\"col\" class=\"num\">Sensors</th>\
<th scope=\"col\">Last 30 days</th><th scope=\"col\">Description</th></tr></thead><tbody>",
        );
        for f in &feeds {
            let fd = d.feeds.get(&f.id);
            let _ = write!(
                b,
                "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td></tr>",
                feed_link(&f.full_name()),
                visibility(f),
                num(fd.map_or(0, |x| x.values.len() as i64)),
                num(fd.map_or(0, |x| x.sightings as i64)),
                num(fd.map_or(0, |x| x.sensors.len() as i64)),
                svg::sparkline(&format!("{} sightings per day", f.full_name()), &daily(d, f.id, 30)),
                esc(f.description.as_deref().unwrap_or(""))
            );
        }
        b.push_str("</tbody></table></div>");
        b
    });
    ctx.page("Feeds", "/feeds", body)
}

fn visibility(f: &Feed) -> &'static str {
    match f.visibility {
        Visibility::Public => "<span class=\"pill\">public</span>",
        Visibility::Private => "<span class=\"pill private\">private</span>",
    }
}

/// Sightings per day over the last `n` days with data in feed `id`.
fn daily(d: &Digest, id: i64, n: i64) -> Vec<u64> {
    let Some(f) = d.feeds.get(&id) else { return vec![0; n as usize] };
    let last = f.hours.keys().next_back().map(|h| h.div_euclid(24)).unwrap_or(0);
    let mut v = vec![0u64; n as usize];
    for (h, c) in f.hours.range((last - n + 1) * 24..) {
        let i = (h.div_euclid(24) - (last - n + 1)) as usize;
        if let Some(slot) = v.get_mut(i) {
            *slot += c;
        }
    }
    v
}

pub async fn page(
    State(state): State<AppState>,
    ctx: Ctx,
    Path((owner, name)): Path<(String, String)>,
    QueryString(mut f): QueryString<Filters>,
) -> Response {
    let feed = match readable_feed(&state, &ctx.caller, &owner, &name).await {
        Ok(feed) => feed,
        Err(e) => return ctx.api_error(e),
    };
    f.limit = Some(PAGE.to_string());
    let records = match build_query(&state, &ctx.caller, &f, Some(&feed)).await {
        Ok(q) => crate::access::query(&state, &ctx.caller, &q).await,
        Err(e) => Err(e),
    };
    let (items, next, refused) = match records {
        Ok(p) => (p.items, p.next, None),
        Err(e) if e.status.is_client_error() => (Vec::new(), None, Some(e.message)),
        Err(e) => return ctx.api_error(e),
    };
    let readable = readable_feeds(&state, &ctx.caller, None).await.unwrap_or_default();
    let can_write = ctx.caller.can_write(&feed);
    let full = feed.full_name();
    let mut b = String::new();
    let _ = write!(
        b,
        "<h1>Feed <span class=\"value\">{}</span> {}</h1><p>{}</p><p class=\"sub\">{}{}</p>\
<p class=\"actions\"><button type=\"button\" class=\"subscribe\" data-feed=\"{}\">Subscribe</button> <a href=\"/live?feeds={}\">Watch live</a>{}</p>",
        esc(&full),
        visibility(&feed),
        esc(feed.description.as_deref().unwrap_or("")),
        match (&feed.license_name, &feed.license_url) {
            // Only http(s) links (a stored `javascript:` URL from before the API refused it stays text).
            (Some(n), Some(u)) if crate::api::feeds::is_web_url(u) => format!("Licence: <a href=\"{}\" rel=\"noopener\">{}</a>", esc(u), esc(n)),
            (Some(n), _) => format!("Licence: {}", esc(n)),
            _ => String::new(),
        },
        format_args!(" · created {}", time(feed.created_at)),
        esc(&full),
        encode_query(&full),
        if can_write { format!(" <a href=\"/account#publish\" data-feed=\"{}\">Publish to it</a>", esc(&full)) } else { String::new() }
    );

    // Quality, from the digest; next to the trusted feeds' from the comparison job, if it ran.
    ctx.web.snapshot(|d| quality(&mut b, d, &feed, &readable));
    if let Ok(Some(c)) = state.store.get_feed_comparison().await {
        let ids: std::collections::HashSet<i64> = readable.iter().map(|f| f.id).collect();
        let c = c.restrict(|id| ids.contains(&id));
        next_to_trusted(&mut b, &c, feed.id);
    }

    // Exports.
    let base = format!("/api/v1/feeds/{}/{}/export", encode_segment(&feed.owner), encode_segment(&feed.name));
    b.push_str("<section id=\"exports\"><h2>Export</h2><ul class=\"exports\">");
    for spec in FORMATS {
        let _ = write!(
            b,
            "<li><a class=\"export\" data-auth-download=\"{}\" href=\"{base}?format={}\" title=\"{}\">{}</a></li>",
            esc(&format!("{}-{}.{}", feed.owner, feed.name, ext(spec.name))),
            spec.name,
            esc(spec.description),
            spec.name
        );
    }
    b.push_str("</ul><p class=\"sub\">Blocklist formats leave out allowlisted and special-use values; see the hub's export documentation.</p></section>");

    // Filters and the page of records.
    filters_form(&mut b, &f, &owner, &name);
    if let Some(msg) = refused {
        let _ = write!(b, "<p class=\"notice\" role=\"alert\">Filter refused: {}</p>", esc(&msg));
    }
    records_table(&mut b, &items);
    if let Some(next) = next {
        let _ = write!(
            b,
            "<p class=\"paging\"><a rel=\"next\" id=\"next-page\" href=\"/feeds/{}/{}?{}cursor={}\">Next {PAGE} →</a></p>",
            encode_segment(&owner),
            encode_segment(&name),
            keep_filters(&f),
            encode_query(&next)
        );
    }
    ctx.page(&full, "/feeds", b)
}

fn ext(format: &str) -> &'static str {
    match format {
        "csv" => "csv",
        "json" | "stix" => "json",
        "jsonl" => "jsonl",
        "rpz" => "zone",
        "snort" | "suricata-rules" => "rules",
        "nginx" | "nginx-geo" => "conf",
        _ => "txt",
    }
}

fn quality(b: &mut String, d: &Digest, feed: &Feed, readable: &[Feed]) {
    let _ = write!(b, "<section id=\"quality\"><h2>Quality</h2>");
    super::overview::status(b, d);
    let Some(fd) = d.feeds.get(&feed.id) else {
        b.push_str("<p class=\"empty\">No sightings in this feed yet.</p></section>");
        return;
    };
    let lat = median(&fd.latency);
    let exclusive = d.exclusive.get(&feed.id).copied();
    let _ = write!(
        b,
        "<dl class=\"facts\"><div><dt>Values</dt><dd id=\"q-values\">{}</dd></div><div><dt>Sightings</dt><dd id=\"q-sightings\">{}</dd></div>\
<div><dt>Sensors</dt><dd>{}</dd></div><div><dt>Median report latency</dt><dd>{}</dd></div><div><dt>Exclusive values</dt><dd>{}</dd></div>\
<div><dt>Last report</dt><dd>{}</dd></div></dl>",
        num(fd.values.len() as i64),
        num(fd.sightings as i64),
        num(fd.sensors.len() as i64),
        match lat {
            Some(l) => duration(l),
            None if fd.historical > 0 => "n/a for imported history".into(),
            None => "—".into(),
        },
        match exclusive {
            Some(x) => format!("{} ({:.0} %)", num(x as i64), x as f64 * 100.0 / fd.values.len().max(1) as f64),
            None => "computing…".into(),
        },
        fd.last_seen.map(time).unwrap_or_else(|| "—".into()),
    );
    let types: Vec<(String, u64)> = fd.itypes.iter().map(|(t, n)| (t.as_str().to_string(), *n)).collect();
    let _ = write!(b, "<div class=\"grid2\"><div><h3>Types</h3>{}</div>", svg::bars("values by type", &types, "No values."));
    // Overlap with the other feeds the reader may read.
    let mut rows: Vec<(String, u64)> = readable
        .iter()
        .filter(|o| o.id != feed.id)
        .filter_map(|o| d.overlap(feed.id, o.id).map(|n| (feed_link(&o.full_name()), n)))
        .filter(|(_, n)| *n > 0)
        .collect();
    rows.sort_by(|a, b| b.1.cmp(&a.1));
    rows.truncate(10);
    let _ = write!(
        b,
        "<div><h3>Shared with other feeds</h3>{}<p class=\"sub\"><a href=\"/compare\">Compare all feeds</a></p></div></div></section>",
        svg::bars("values shared with other feeds", &rows, "No value shared with another feed you may read.")
    );
}

fn filters_form(b: &mut String, f: &Filters, owner: &str, name: &str) {
    let v = |s: &Option<String>| esc(s.as_deref().unwrap_or("")).into_owned();
    let mut types = String::from("<option value=\"\">any</option>");
    for t in [IType::Ipv4, IType::Ipv6, IType::Fqdn, IType::Url, IType::Email, IType::Md5, IType::Sha1, IType::Sha256, IType::Sha512, IType::Asn] {
        let sel = if f.itype.as_deref() == Some(t.as_str()) { " selected" } else { "" };
        let _ = write!(types, "<option{sel}>{}</option>", t.as_str());
    }
    let _ = write!(
        b,
        "<section id=\"indicators\"><h2>Indicators</h2><form class=\"filters\" method=\"get\" action=\"/feeds/{}/{}\">\
<label>Value <input name=\"q\" value=\"{}\" placeholder=\"exact value\"></label>\
<label>Within <input name=\"within\" value=\"{}\" placeholder=\"CIDR\"></label>\
<label>Domain <input name=\"domain\" value=\"{}\" placeholder=\"and subdomains\"></label>\
<label>Type <select name=\"itype\">{types}</select></label>\
<label>Tags <input name=\"tags\" value=\"{}\" placeholder=\"a,b\"></label>\
<label>Since <input name=\"since\" value=\"{}\" placeholder=\"2024-05-01\"></label>\
<button type=\"submit\">Filter</button> <a href=\"/feeds/{}/{}\">Clear</a></form>",
        encode_segment(owner),
        encode_segment(name),
        v(&f.q),
        v(&f.within),
        v(&f.domain),
        v(&f.tags),
        v(&f.since),
        encode_segment(owner),
        encode_segment(name),
    );
}

fn keep_filters(f: &Filters) -> String {
    let mut s = String::new();
    for (k, v) in [("q", &f.q), ("within", &f.within), ("domain", &f.domain), ("itype", &f.itype), ("tags", &f.tags), ("since", &f.since), ("until", &f.until)] {
        if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
            let _ = write!(s, "{k}={}&amp;", encode_query(v));
        }
    }
    s
}

fn records_table(b: &mut String, items: &[apiary_store::FeedRecord]) {
    if items.is_empty() {
        b.push_str("<p class=\"empty\" id=\"no-records\">No indicator matches.</p></section>");
        return;
    }
    b.push_str(
        "<div class=\"scroll\"><table class=\"list\" id=\"records\"><thead><tr><th scope=\"col\">Indicator</th><th scope=\"col\">Type</th>\
<th scope=\"col\" class=\"num\">Count</th><th scope=\"col\">First seen</th><th scope=\"col\">Last seen</th><th scope=\"col\">Tags</th><th scope=\"col\">Ports</th></tr></thead><tbody>",
    );
    for r in items {
        let ports: Vec<String> = r.portlist.iter().map(|p| p.to_string()).collect();
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            indicator_link(&r.indicator),
            r.itype.as_str(),
            num(r.count),
            time(r.firsttime),
            time(r.lasttime),
            r.tags.iter().map(|t| format!("<span class=\"tag\">{}</span>", esc(t))).collect::<String>(),
            esc(&ports.join(", "))
        );
    }
    b.push_str("</tbody></table></div></section>");
}

/// The feed's row of the stored comparison beside the trusted feeds' rows.
fn next_to_trusted(b: &mut String, c: &apiary_core::trust::compare::Comparison, id: i64) {
    let rows: Vec<_> = c.rows.iter().filter(|r| r.id == id || r.trusted).collect();
    if !rows.iter().any(|r| r.id == id) {
        return;
    }
    let pct = |x: Option<f64>| x.map(|v| format!("{:.0} %", v * 100.0)).unwrap_or_else(|| "—".into());
    let hours = |x: Option<f64>| x.map(|h| duration((h * 3600.0) as i64)).unwrap_or_else(|| "—".into());
    b.push_str(
        "<section id=\"vs-trusted\"><h3>Next to the trusted feeds</h3><div class=\"scroll\"><table class=\"list\"><thead><tr><th scope=\"col\">Feed</th><th scope=\"col\" class=\"num\">Volume</th>\
<th scope=\"col\" class=\"num\">Exclusive</th><th scope=\"col\" class=\"num\">Overlap with trusted</th><th scope=\"col\" class=\"num\">Median latency</th><th scope=\"col\" class=\"num\">Lead rate</th></tr></thead><tbody>",
    );
    for r in rows {
        let _ = write!(
            b,
            "<tr{}><td>{}{}</td><td class=\"num\">{}</td><td class=\"num\">{} <span class=\"sub\">{}</span></td><td class=\"num\">{} <span class=\"sub\">{}</span></td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            if r.id == id { " class=\"this\"" } else { "" },
            feed_link(&r.feed),
            if r.trusted { " <span class=\"pill\">trusted</span>" } else { "" },
            num(r.volume as i64),
            num(r.exclusive as i64),
            pct(r.exclusive_share),
            num(r.trusted_overlap as i64),
            pct(r.trusted_overlap_share),
            hours(r.latency_median_hours),
            pct(r.lead_rate),
        );
    }
    b.push_str("</tbody></table></div></section>");
}
