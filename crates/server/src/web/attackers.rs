//! `/attackers` and `/campaigns/{id}`: attackers across honeynets, linked into campaigns by
//! shared payloads, command sequences or client fingerprints. The links are the sessions
//! store's (correlation); until the hub keeps sessions, the page says so and lists the
//! attackers its sightings know, with what they did.

use std::fmt::Write;

use apiary_core::IType;
use apiary_store::Query;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::html::{esc, indicator_link, num, time, unavailable};
use super::overview::SessionTops;
use super::Ctx;
use crate::AppState;

/// Attackers listed per page.
const LIST: usize = 50;

pub async fn page(State(state): State<AppState>, ctx: Ctx) -> Response {
    let mut b = String::from("<h1>Attackers and campaigns</h1>");
    b.push_str("<section id=\"campaigns\"><h2>Campaigns</h2>");
    b.push_str(&unavailable(
        "Campaigns",
        "this hub does not correlate honeypot sessions yet (shared payloads, command sequences, fingerprints)",
    ));
    b.push_str("</section>");
    // The latest attackers: addresses reported with sensor sessions (tagged by depth).
    let mut rows = String::new();
    for tag in ["login", "bruteforce"] {
        let q = Query { itype: None, tags: vec![tag.into()], reader: ctx.caller.reader(), limit: LIST, ..Query::default() };
        let page = match state.store.query(&q).await {
            Ok(p) => p,
            Err(e) => return ctx.api_error(e.into()),
        };
        for r in page.items.iter().filter(|r| matches!(r.itype, IType::Ipv4 | IType::Ipv6)) {
            let _ = write!(
                rows,
                "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td></tr>",
                indicator_link(&r.indicator),
                super::html::feed_link(&r.feed),
                num(r.count),
                time(r.lasttime),
                r.tags.iter().map(|t| format!("<span class=\"tag\">{}</span>", esc(t))).collect::<String>()
            );
        }
        if !rows.is_empty() {
            break;
        }
    }
    b.push_str("<section id=\"attackers\"><h2>Attackers who logged in or tried credentials</h2>");
    if rows.is_empty() {
        b.push_str("<p class=\"empty\">No attacker sessions reported yet.</p>");
    } else {
        let _ = write!(
            b,
            "<div class=\"scroll\"><table class=\"list\"><thead><tr><th scope=\"col\">Attacker</th><th scope=\"col\">Feed</th><th scope=\"col\" class=\"num\">Sessions</th>\
<th scope=\"col\">Last seen</th><th scope=\"col\">Tags</th></tr></thead><tbody>{rows}</tbody></table></div>"
        );
    }
    b.push_str("</section>");
    ctx.page("Attackers", "/attackers", b)
}

pub async fn campaign(State(state): State<AppState>, ctx: Ctx, Path(id): Path<String>) -> Response {
    let _ = state;
    ctx.error(StatusCode::NOT_FOUND, "No such campaign", &format!("campaign {id}: this hub does not correlate sessions into campaigns yet"))
}

/// Top credentials and commands (None until the hub keeps sessions).
pub async fn top_sessions_data(state: &AppState, ctx: &Ctx) -> Option<SessionTops> {
    let _ = (state, ctx);
    None
}

/// Links to the campaigns an indicator belongs to (nothing until the hub keeps sessions).
pub async fn campaign_links(b: &mut String, state: &AppState, ctx: &Ctx, ind: &apiary_core::Indicator) {
    let _ = (b, state, ctx, ind);
}
