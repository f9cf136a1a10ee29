//! `/live`: the firehose as a scrolling list, read from the native stream
//! (`/api/v1/stream`, Server-Sent Events) by `app.js`, with the stream's own filters.

use axum::extract::{Query, State};
use axum::response::Response;

use super::html::esc;
use super::Ctx;
use crate::streams::filter::FilterParams;
use crate::AppState;

pub async fn page(State(_state): State<AppState>, ctx: Ctx, Query(f): Query<FilterParams>) -> Response {
    let v = |s: &Option<String>| esc(s.as_deref().unwrap_or("")).into_owned();
    let body = format!(
        "<h1>Live</h1><form class=\"filters\" id=\"live-filters\" method=\"get\" action=\"/live\">\
<label>Feeds <input name=\"feeds\" value=\"{}\" placeholder=\"owner/name,…\"></label>\
<label>Types <input name=\"itype\" value=\"{}\" placeholder=\"ipv4,url,…\"></label>\
<label>Tags <input name=\"tags\" value=\"{}\" placeholder=\"all of: a,b\"></label>\
<label>Network <input name=\"network\" value=\"{}\" placeholder=\"CIDR,…\"></label>\
<button type=\"submit\">Apply</button></form>\
<p class=\"actions\"><button type=\"button\" id=\"live-toggle\" aria-pressed=\"false\">Pause</button> \
<span id=\"live-status\" role=\"status\" aria-live=\"polite\">connecting…</span> · <span id=\"live-count\">0</span> sightings</p>\
<div class=\"scroll\"><table class=\"list\" id=\"live\"><thead><tr><th scope=\"col\">Received</th><th scope=\"col\">Indicator</th><th scope=\"col\">Type</th>\
<th scope=\"col\">Feed</th><th scope=\"col\">Tags</th></tr></thead><tbody id=\"live-rows\"></tbody></table></div>\
<p class=\"sub\">The newest sightings at the top; the list keeps the last 500.</p>",
        v(&f.feeds.or(f.feed)),
        v(&f.itype),
        v(&f.tags),
        v(&f.network),
    );
    ctx.page("Live", "/live", body)
}
