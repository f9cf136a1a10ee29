//! Each event's bytes on the wire, made once per event and format and shared by every stream
//! that sends it ([`apiary_bus::Event::wire`]): with a thousand subscribers, a stream only
//! copies them into its next write. The key is the enrichment tables in use, so an event sent
//! across a table reload still carries the new table's fields.

use std::sync::Arc;

use apiary_bus::Event;
use apiary_core::enrich::Enrichment;
use axum::extract::ws::Utf8Bytes;
use bytes::{BufMut, Bytes, BytesMut};

use crate::enrich::event_json;

/// The wire forms an event keeps (indices into its cache).
const SSE: usize = 0;
const WS_TEXT: usize = 1;
const CABLE: usize = 2;

/// The identifier the CSIRTG client subscribes with, as a JSON string literal: its ActionCable
/// frame is shared; any other spelling is framed per subscriber.
const CABLE_IDENTIFIER: &str = r#""{\"channel\":\"IndicatorsChannel\"}""#;

/// Most bytes a stream puts in one write (an HTTP body chunk, a websocket flush).
pub const BATCH_BYTES: usize = 256 * 1024;

/// `id: <seq>`, `event: sighting`, `data: <JSON>` and the blank line (the JSON is compact: no
/// line breaks).
pub fn sse_frame(e: &Arc<Enrichment>, ev: &Event) -> Bytes {
    ev.wire(SSE, e, || make_sse_frame(e, ev))
}

/// Append the SSE frame to `out` (the shared bytes are copied, not referenced).
pub fn put_sse_frame(out: &mut BytesMut, e: &Arc<Enrichment>, ev: &Event) {
    ev.with_wire(SSE, e, || make_sse_frame(e, ev), |frame: &Bytes| out.extend_from_slice(frame))
}

fn make_sse_frame(e: &Arc<Enrichment>, ev: &Event) -> Bytes {
    let json = event_json(e, ev);
    let mut b = BytesMut::with_capacity(json.len() + 48);
    b.put_slice(b"id: ");
    b.put_slice(ev.seq().to_string().as_bytes());
    b.put_slice(b"\nevent: sighting\ndata: ");
    b.put_slice(json.as_bytes());
    b.put_slice(b"\n\n");
    b.freeze()
}

/// An SSE event of another kind (`lagged`, `end`) with its JSON data.
pub fn sse_other(kind: &str, data: &serde_json::Value) -> Bytes {
    Bytes::from(format!("event: {kind}\ndata: {data}\n\n"))
}

/// An SSE comment (`: text`), for the opening line and heartbeats.
pub fn sse_comment(text: &str) -> Bytes {
    Bytes::from(format!(": {}\n\n", text.replace(['\r', '\n'], " ")))
}

/// The native JSON as a websocket text payload.
pub fn ws_text(e: &Arc<Enrichment>, ev: &Event) -> Utf8Bytes {
    ev.wire(WS_TEXT, e, || Utf8Bytes::from(event_json(e, ev).into_owned()))
}

/// `{"identifier":<identifier>,"message":<JSON>}`; `identifier` is the subscriber's, as a JSON
/// string literal.
pub fn cable_message(e: &Arc<Enrichment>, ev: &Event, identifier: &str) -> Utf8Bytes {
    let make = || Utf8Bytes::from(format!("{{\"identifier\":{identifier},\"message\":{}}}", event_json(e, ev)));
    if identifier == CABLE_IDENTIFIER {
        ev.wire(CABLE, e, make)
    } else {
        make()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use apiary_bus::LoggedSighting;
    use apiary_core::IType;

    fn event() -> Event {
        let now = chrono::Utc::now();
        Event::new(LoggedSighting {
            seq: 7,
            feed_id: 1,
            feed: "alice/pots".into(),
            record_id: 3,
            itype: IType::Ipv4,
            indicator: "192.0.2.1".into(),
            reserved: None,
            observed_at: now,
            observed_until: None,
            received_at: now,
            tags: vec!["a\nb".into()],
            portlist: vec![],
            protocol: None,
            description: Some("line\r\nbreak".into()),
            tlp: apiary_store::Tlp::Green,
            claimed_confidence: None,
            sensor: None,
            count: 1,
        })
    }

    #[test]
    fn frames_are_made_once_and_shared() {
        let e = Arc::new(Enrichment::default());
        let ev = event();
        let a = sse_frame(&e, &ev);
        let b = sse_frame(&e, &ev);
        assert_eq!(a.as_ptr(), b.as_ptr(), "the second stream gets the same bytes");
        let text = std::str::from_utf8(&a).unwrap();
        assert!(text.starts_with("id: 7\nevent: sighting\ndata: {"), "{text}");
        assert!(text.ends_with("}\n\n") && text.matches('\n').count() == 4, "one data line: {text}");
        let v: serde_json::Value = serde_json::from_str(text.lines().nth(2).unwrap().strip_prefix("data: ").unwrap()).unwrap();
        assert_eq!(v["description"], "line\r\nbreak");
        let mut out = BytesMut::new();
        put_sse_frame(&mut out, &e, &ev);
        put_sse_frame(&mut out, &e, &ev);
        assert_eq!(&out[..], [&a[..], &a[..]].concat().as_slice());
        // Other tables (a reload): made afresh, not the cached bytes.
        let other = Arc::new(Enrichment::default());
        assert_ne!(sse_frame(&other, &ev).as_ptr(), a.as_ptr());
    }

    #[test]
    fn cable_frames_carry_the_subscribers_identifier() {
        let e = Arc::new(Enrichment::default());
        let ev = event();
        let std = cable_message(&e, &ev, CABLE_IDENTIFIER);
        assert_eq!(std.as_str(), cable_message(&e, &ev, CABLE_IDENTIFIER).as_str());
        let v: serde_json::Value = serde_json::from_str(&std).unwrap();
        assert_eq!(v["identifier"], "{\"channel\":\"IndicatorsChannel\"}");
        assert_eq!(v["message"]["seq"], 7);
        let spaced = r#""{\"channel\": \"IndicatorsChannel\"}""#;
        let v: serde_json::Value = serde_json::from_str(&cable_message(&e, &ev, spaced)).unwrap();
        assert_eq!(v["identifier"], "{\"channel\": \"IndicatorsChannel\"}");
        assert_eq!(serde_json::from_str::<serde_json::Value>(&ws_text(&e, &ev)).unwrap()["feed"], "alice/pots");
    }
}
