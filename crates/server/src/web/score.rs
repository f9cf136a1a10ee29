//! The score section of an indicator's page: the hub's confidence as a gauge, its tier, and
//! the terms that sum to it (`Store::get_score`, written by the scoring job; TRUST.md). Like
//! `GET /api/v1/scores/{value}`, admins see which feeds make up each independence group;
//! everyone else sees how many sources each holds.

use std::collections::HashMap;
use std::fmt::Write;

use apiary_core::trust::score::{Explanation, Term};

use super::html::{esc, time, unavailable};
use super::{svg, Ctx};
use crate::AppState;

/// The score section's content, or None when this hub does not score (the store has no scores).
pub async fn trust_score(state: &AppState, ctx: &Ctx, ind: &apiary_core::Indicator) -> Option<String> {
    let stored = match state.store.get_score(&ind.value).await {
        Ok(s) => s,
        Err(apiary_store::StoreError::Internal(_)) => return None,
        Err(e) => return Some(format!("<p class=\"notice\">{}</p>", esc(&crate::ApiError::from(e).message))),
    };
    let Some(s) = stored else {
        return Some(unavailable("Score", "not scored yet: the scoring job scores new values within seconds"));
    };
    let names: Option<HashMap<i64, String>> = if ctx.caller.is_admin() {
        state.store.list_feeds(None).await.ok().map(|f| f.into_iter().map(|f| (f.id, f.full_name())).collect())
    } else {
        None
    };
    let ex: Option<Explanation> = serde_json::from_value(s.explanation.clone()).ok();
    let mut b = String::from("<div class=\"score-wrap\">");
    b.push_str(&svg::gauge(f64::from(s.confidence), s.tier.as_str()));
    let _ = write!(
        b,
        "<div><p>Confidence <strong id=\"confidence\">{}</strong> of 100, tier <strong id=\"tier\">{}</strong>. <span class=\"sub\">Scored {}.</span></p>",
        s.confidence,
        s.tier.as_str(),
        time(s.scored_at)
    );
    if let Some(ex) = &ex {
        if let Some(why) = &ex.excluded {
            let _ = write!(b, "<p class=\"notice\">Never scored: {}</p>", esc(why));
        }
        if let Some(why) = &ex.block_withheld {
            let _ = write!(b, "<p class=\"sub\">Not BLOCK: {}</p>", esc(why));
        }
        b.push_str("<table class=\"list\" id=\"score-terms\"><caption class=\"sr\">Terms of the score (log-odds)</caption><thead><tr><th scope=\"col\">Term</th><th scope=\"col\" class=\"num\">Log-odds</th></tr></thead><tbody>");
        for t in &ex.terms {
            let _ = write!(b, "<tr><td>{}</td><td class=\"num\">{:+.2}</td></tr>", term(t, names.as_ref()), t.value());
        }
        let _ = write!(
            b,
            "</tbody><tfoot><tr><th scope=\"row\">Sum</th><td class=\"num\">{}</td></tr></tfoot></table>",
            ex.log_odds.map(|l| format!("{l:+.2}")).unwrap_or_else(|| "excluded".into())
        );
    }
    b.push_str("</div></div>");
    Some(b)
}

fn sources(list: &[apiary_core::trust::SourceId], names: Option<&HashMap<i64, String>>) -> String {
    match names {
        Some(n) => list.iter().map(|id| esc(n.get(&i64::from(*id)).map_or("?", String::as_str)).into_owned()).collect::<Vec<_>>().join(", "),
        None => format!("{} source{}", list.len(), if list.len() == 1 { "" } else { "s" }),
    }
}

fn term(t: &Term, names: Option<&HashMap<i64, String>>) -> String {
    match t {
        Term::Prior { itype, .. } => format!("Prior for {}", itype.as_str()),
        Term::Group { group, class, sources: srcs, capped, .. } => {
            let ids: Vec<_> = srcs.iter().map(|s| s.source).collect();
            let sightings: u32 = srcs.iter().map(|s| s.sightings).sum();
            format!(
                "Independence group {group} ({}): {}, {sightings} sighting{}{}",
                esc(&format!("{class:?}").to_lowercase()),
                sources(&ids, names),
                if sightings == 1 { "" } else { "s" },
                if *capped { ", capped" } else { "" }
            )
        }
        Term::UnknownCap { cap, .. } => format!("New sources together capped at {cap:.2}"),
        Term::NoSeed { established_groups, .. } => format!("{established_groups} established groups and no seed"),
        Term::FalsePositiveReports { reports, .. } => format!("{reports} false-positive report{}", if *reports == 1 { "" } else { "s" }),
        Term::Hold { list, .. } => format!("Held: listed in {}", esc(list)),
        Term::Retracted { sources: s, .. } => format!("Retracted by {}", sources(s, names)),
        Term::Quarantined { sources: s, .. } => format!("Quarantined: {}", sources(s, names)),
    }
}
