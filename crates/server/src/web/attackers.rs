//! `/attackers` and `/campaigns/{id}`: attackers across honeynets, linked into campaigns by a
//! shared payload, tty log, command sequence or client fingerprint with credential list. The
//! figures are the sessions API's own views ([`crate::api::sessions`]), so visibility is the
//! same; pages show counts of sensors and networks, never which sensor. Campaign lists are
//! cached briefly per set of readable feeds, so a page does not rescan sessions on every view.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use apiary_core::IType;
use apiary_store::Query;
use axum::extract::{Path, State};
use axum::response::Response;
use serde_json::Value;

use super::html::{esc, feed_link, indicator_link, num, time, unavailable};
use super::overview::SessionTops;
use super::Ctx;
use crate::api::sessions::{campaign_view, campaigns_view, payload_view, CampaignFilters, Viewer};
use crate::AppState;

/// Attackers and campaigns listed per page.
const LIST: usize = 50;
/// How long a campaign list is reused.
const CAMPAIGNS_TTL: Duration = Duration::from_secs(30);

/// Cached campaign lists, by the sorted ids of the feeds the reader may read.
static CAMPAIGNS: Mutex<Option<HashMap<Vec<i64>, (Instant, Value)>>> = Mutex::new(None);

/// True when the error means "this store keeps no sessions".
fn unsupported(e: &crate::ApiError) -> bool {
    e.status.is_server_error()
}

async fn campaigns(state: &AppState, viewer: &Viewer) -> Result<Value, crate::ApiError> {
    let mut key: Vec<i64> = viewer.feeds.iter().map(|f| f.id).collect();
    key.sort_unstable();
    if let Some((at, v)) = CAMPAIGNS.lock().unwrap_or_else(|e| e.into_inner()).as_ref().and_then(|m| m.get(&key)) {
        if at.elapsed() < CAMPAIGNS_TTL {
            return Ok(v.clone());
        }
    }
    // Every campaign the API lists (its most), so an attacker's page finds its own among them.
    let f = CampaignFilters { limit: Some("1000".into()), ..CampaignFilters::default() };
    let v = campaigns_view(state.store.as_ref(), viewer, &f).await?;
    let mut guard = CAMPAIGNS.lock().unwrap_or_else(|e| e.into_inner());
    let map = guard.get_or_insert_with(HashMap::new);
    if map.len() > 256 {
        map.clear();
    }
    map.insert(key, (Instant::now(), v.clone()));
    Ok(v)
}

/// A viewer who never sees sensor names (the pages show counts only).
async fn viewer(state: &AppState, ctx: &Ctx) -> Result<Viewer, crate::ApiError> {
    let mut v = Viewer::of(state, &ctx.caller).await?;
    v.named.clear();
    Ok(v)
}

pub async fn page(State(state): State<AppState>, ctx: Ctx) -> Response {
    let viewer = match viewer(&state, &ctx).await {
        Ok(v) => v,
        Err(e) => return ctx.api_error(e),
    };
    let mut b = String::from("<h1>Attackers and campaigns</h1><section id=\"campaigns\"><h2>Campaigns</h2>");
    match campaigns(&state, &viewer).await {
        Ok(v) => campaigns_table(&mut b, &v),
        Err(e) if unsupported(&e) => b.push_str(&unavailable(
            "Campaigns",
            "this hub does not keep honeypot sessions, so it cannot link attackers by payload, commands or fingerprint",
        )),
        Err(e) => return ctx.api_error(e),
    }
    b.push_str("</section>");

    // The latest attackers who got in or tried credentials.
    let mut rows = String::new();
    for tag in ["login", "bruteforce"] {
        let q = Query { tags: vec![tag.into()], reader: ctx.caller.reader(), limit: LIST, ..Query::default() };
        let page = match crate::access::query(&state, &ctx.caller, &q).await {
            Ok(p) => p,
            Err(e) => return ctx.api_error(e),
        };
        for r in page.items.iter().filter(|r| matches!(r.itype, IType::Ipv4 | IType::Ipv6)) {
            let _ = write!(
                rows,
                "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td></tr>",
                indicator_link(&r.indicator),
                feed_link(&r.feed),
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
            "<div class=\"scroll\"><table class=\"list\"><thead><tr><th scope=\"col\">Attacker</th><th scope=\"col\">Feed</th><th scope=\"col\" class=\"num\">Reports</th>\
<th scope=\"col\">Last seen</th><th scope=\"col\">Tags</th></tr></thead><tbody>{rows}</tbody></table></div>"
        );
    }
    b.push_str("</section>");
    ctx.page("Attackers", "/attackers", b)
}

fn kind_label(kind: &str) -> &'static str {
    match kind {
        "payload" => "same payload",
        "ttylog" => "same terminal session",
        "commands" => "same command sequence",
        "hassh_credentials" => "same client fingerprint and credential list",
        _ => "shared key",
    }
}

fn campaigns_table(b: &mut String, v: &Value) {
    let items = v.get("items").and_then(Value::as_array).cloned().unwrap_or_default();
    if items.is_empty() {
        b.push_str("<p class=\"empty\">No two attackers share a payload, command sequence or fingerprint yet.</p>");
        return;
    }
    let _ = write!(
        b,
        "<p class=\"sub\">{} campaigns; the {} with most attackers.</p><div class=\"scroll\"><table class=\"list\" id=\"campaign-list\"><thead><tr><th scope=\"col\">Campaign</th><th scope=\"col\">Linked by</th>\
<th scope=\"col\" class=\"num\">Attackers</th><th scope=\"col\" class=\"num\">Sessions</th><th scope=\"col\" class=\"num\">Sensors</th><th scope=\"col\" class=\"num\">Networks</th><th scope=\"col\">First seen</th><th scope=\"col\">Last seen</th></tr></thead><tbody>",
        num(v.get("total").and_then(Value::as_i64).unwrap_or(items.len() as i64)),
        items.len().min(LIST)
    );
    for c in items.iter().take(LIST) {
        let id = c.get("id").and_then(Value::as_str).unwrap_or("");
        let _ = write!(
            b,
            "<tr><td><a class=\"campaign value\" href=\"/campaigns/{}\">{}</a></td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td></tr>",
            esc(id),
            esc(id),
            kind_label(c.get("kind").and_then(Value::as_str).unwrap_or("")),
            int(c, "attackers"),
            int(c, "sessions"),
            int(c, "sensors"),
            int(c, "networks"),
            when(c, "first_seen"),
            when(c, "last_seen"),
        );
    }
    b.push_str("</tbody></table></div>");
}

fn int(v: &Value, k: &str) -> String {
    num(v.get(k).and_then(Value::as_i64).unwrap_or(0))
}

fn when(v: &Value, k: &str) -> String {
    v.get(k)
        .and_then(Value::as_str)
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .map(|t| time(t.with_timezone(&chrono::Utc)))
        .unwrap_or_else(|| "—".into())
}

pub async fn campaign(State(state): State<AppState>, ctx: Ctx, Path(id): Path<String>) -> Response {
    let viewer = match viewer(&state, &ctx).await {
        Ok(v) => v,
        Err(e) => return ctx.api_error(e),
    };
    let c = match campaign_view(state.store.as_ref(), &viewer, &id).await {
        Ok(c) => c,
        Err(e) => return ctx.api_error(e),
    };
    let kind = c.get("kind").and_then(Value::as_str).unwrap_or("");
    let mut b = String::new();
    let _ = write!(
        b,
        "<h1>Campaign <span class=\"value\">{}</span></h1><p>Attackers linked by the {}.</p>\
<dl class=\"facts\"><div><dt>Attackers</dt><dd id=\"c-attackers\">{}</dd></div><div><dt>Sessions</dt><dd>{}</dd></div><div><dt>Sensors</dt><dd>{}</dd></div>\
<div><dt>Networks</dt><dd>{}</dd></div><div><dt>First seen</dt><dd>{}</dd></div><div><dt>Last seen</dt><dd>{}</dd></div></dl>",
        esc(&id),
        kind_label(kind),
        int(&c, "attackers"),
        int(&c, "sessions"),
        int(&c, "sensors"),
        int(&c, "networks"),
        when(&c, "first_seen"),
        when(&c, "last_seen"),
    );
    b.push_str("<section id=\"link\"><h2>What links them</h2>");
    match kind {
        "payload" => {
            let key = c.get("key").and_then(Value::as_str).unwrap_or("");
            let _ = write!(b, "<p>Payload {}</p>", indicator_link(key));
            for u in c.get("urls").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
                let _ = write!(b, "<p class=\"sub\">fetched from <code>{}</code></p>", esc(u));
            }
        }
        "commands" => {
            b.push_str("<ol class=\"commands\">");
            for cmd in c.get("example").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
                let _ = write!(b, "<li><code>{}</code></li>", esc(cmd));
            }
            b.push_str("</ol>");
        }
        "hassh_credentials" => {
            let _ = write!(b, "<p>HASSH <code>{}</code>, trying:</p><ol>", esc(c.get("hassh").and_then(Value::as_str).unwrap_or("")));
            for cred in c.get("credentials").and_then(Value::as_array).into_iter().flatten() {
                let text = cred.as_array().map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(":")).unwrap_or_default();
                let _ = write!(b, "<li><code>{}</code></li>", esc(&text));
            }
            b.push_str("</ol>");
        }
        _ => {
            let _ = write!(b, "<p><code>{}</code></p>", esc(c.get("key").and_then(Value::as_str).unwrap_or("")));
        }
    }
    b.push_str("</section><section id=\"campaign-attackers\"><h2>Attackers</h2><ul class=\"related\">");
    for a in c.get("attacker_list").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
        let _ = write!(b, "<li>{}</li>", indicator_link(a));
    }
    b.push_str("</ul></section>");
    ctx.page(&format!("Campaign {id}"), "/attackers", b)
}

/// What the sessions store knows of an indicator that is an attacker or a payload: its
/// profile (credentials, command sequences, payloads, sensors and networks counted) and links
/// to its campaigns. Nothing when the hub keeps no sessions of it.
pub async fn campaign_links(b: &mut String, state: &AppState, ctx: &Ctx, ind: &apiary_core::Indicator) {
    let Ok(viewer) = viewer(state, ctx).await else { return };
    if ind.itype.is_address() && !ind.is_cidr() {
        if let Some(p) = attacker(state, &viewer, &ind.value).await {
            profile(b, &p);
        }
    } else if ind.itype == IType::Sha256 {
        let Ok(p) = payload_view(state.store.as_ref(), &viewer, &ind.value).await else { return };
        let id = p.get("campaign").and_then(Value::as_str).unwrap_or("");
        let attackers = p.get("attackers").and_then(Value::as_array).cloned().unwrap_or_default();
        let _ = write!(
            b,
            "<section id=\"payload\"><h2>Sent by</h2><p>{} attackers in {} sessions, on {} sensors in {} networks.{}</p><ul class=\"related\">",
            num(attackers.len() as i64),
            int(&p, "sessions"),
            int(&p, "sensors"),
            int(&p, "networks"),
            if attackers.len() >= 2 { format!(" <a class=\"campaign\" href=\"/campaigns/{}\">Campaign {}</a>", esc(id), esc(id)) } else { String::new() }
        );
        for a in attackers.iter().take(100) {
            let _ = write!(b, "<li>{} <span class=\"sub\">{} sessions</span></li>", indicator_link(a.get("attacker").and_then(Value::as_str).unwrap_or("")), int(a, "sessions"));
        }
        b.push_str("</ul></section>");
    }
}

/// An attacker's profile over its sessions in the viewer's feeds, with the campaigns (from the
/// cached list) it belongs to. The shape of `GET /api/v1/attackers/{ip}`, sensors as counts.
async fn attacker(state: &AppState, viewer: &Viewer, ip: &str) -> Option<Value> {
    use apiary_core::sessions::{attacker_profile, SensorRef};
    let ids: Vec<i64> = viewer.feeds.iter().map(|f| f.id).collect();
    let q = apiary_store::SessionQuery { attacker: Some(ip.to_string()), feed_ids: Some(ids.clone()), limit: PROFILE_SESSIONS, ..Default::default() };
    let sessions = state.store.query_sessions(&q).await.ok()?;
    if sessions.is_empty() {
        return None;
    }
    let nets: HashMap<SensorRef, String> = state
        .store
        .list_sensors(Some(&ids))
        .await
        .unwrap_or_default()
        .into_iter()
        .filter_map(|s| Some((SensorRef { feed_id: s.feed_id, sensor: s.name.clone() }, s.network()?)))
        .collect();
    let refs: Vec<(i64, &apiary_core::sessions::SessionRecord)> = sessions.iter().map(|s| (s.feed_id, &s.record)).collect();
    let p = attacker_profile(ip, &refs, &|s| nets.get(s).cloned(), 100);
    let mine: std::collections::HashSet<String> = p.links.iter().map(|l| l.campaign_id()).collect();
    let camps: Vec<Value> = campaigns(state, viewer)
        .await
        .ok()
        .and_then(|v| v.get("items").and_then(Value::as_array).cloned())
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c.get("id").and_then(Value::as_str).is_some_and(|id| mine.contains(id)))
        .collect();
    Some(serde_json::json!({
        "sessions": p.sessions,
        "sensors": p.sensors.len(),
        "networks": p.networks.len(),
        "logins": p.logins,
        "deepest": p.deepest,
        "first_seen": p.first_seen,
        "campaigns": camps,
        "credentials": p.credentials,
        "command_sequences": p.command_sequences,
    }))
}

/// Sessions an attacker's profile is computed from, at most.
const PROFILE_SESSIONS: usize = 10_000;

fn profile(b: &mut String, p: &Value) {
    let _ = write!(
        b,
        "<section id=\"profile\"><h2>Across the honeynets</h2><dl class=\"facts\"><div><dt>Sessions</dt><dd id=\"p-sessions\">{}</dd></div><div><dt>Sensors</dt><dd>{}</dd></div>\
<div><dt>Networks</dt><dd>{}</dd></div><div><dt>Logins</dt><dd>{}</dd></div><div><dt>Deepest</dt><dd>{}</dd></div><div><dt>First seen</dt><dd>{}</dd></div></dl>",
        int(p, "sessions"),
        int(p, "sensors"),
        int(p, "networks"),
        int(p, "logins"),
        esc(p.get("deepest").and_then(Value::as_str).unwrap_or("—")),
        when(p, "first_seen"),
    );
    let camps = p.get("campaigns").and_then(Value::as_array).cloned().unwrap_or_default();
    if camps.is_empty() {
        b.push_str("<p class=\"sub\" id=\"no-campaign\">In no campaign: no other attacker shares its payloads, commands or fingerprint.</p>");
    } else {
        b.push_str("<h3>Campaigns</h3><ul class=\"related\">");
        for c in &camps {
            let id = c.get("id").and_then(Value::as_str).unwrap_or("");
            let _ = write!(
                b,
                "<li><a class=\"campaign\" href=\"/campaigns/{}\">{}</a> <span class=\"sub\">{}, {} attackers</span></li>",
                esc(id),
                esc(id),
                kind_label(c.get("kind").and_then(Value::as_str).unwrap_or("")),
                int(c, "attackers")
            );
        }
        b.push_str("</ul>");
    }
    let creds: Vec<(String, u64)> = p
        .get("credentials")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .take(10)
        .map(|c| (credential(c), c.get("times").and_then(Value::as_u64).unwrap_or(1)))
        .collect();
    let seqs: Vec<(String, u64)> = p
        .get("command_sequences")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .take(5)
        .map(|s| {
            let ex: Vec<&str> = s.get("example").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).take(6).collect();
            (format!("<code>{}</code>", esc(&ex.join(" ; "))), s.get("sessions").and_then(Value::as_u64).unwrap_or(1))
        })
        .collect();
    let _ = write!(
        b,
        "<div class=\"grid2\"><div><h3>Credentials tried</h3>{}</div><div><h3>Command sequences</h3>{}</div></div></section>",
        super::svg::bars("credentials tried", &creds, "None."),
        super::svg::bars("command sequences", &seqs, "None.")
    );
}

fn credential(c: &Value) -> String {
    let u = c.get("username").and_then(Value::as_str).unwrap_or("");
    match (c.get("password").and_then(Value::as_str), c.get("fingerprint").and_then(Value::as_str)) {
        (Some(p), _) => format!("<code>{}:{}</code>", esc(u), esc(p)),
        (None, Some(f)) => format!("<code>{}</code> key <code>{}</code>", esc(u), esc(f)),
        _ => format!("<code>{}</code>", esc(u)),
    }
}

/// Top credentials and commands over the latest sessions of the reader's feeds (None when the
/// hub keeps no sessions).
pub async fn top_sessions_data(state: &AppState, ctx: &Ctx) -> Option<SessionTops> {
    let ids: Vec<i64> = crate::auth::readable_feeds(state, &ctx.caller, None).await.ok()?.iter().map(|f| f.id).collect();
    ctx.web.session_tops(&ids)
}
