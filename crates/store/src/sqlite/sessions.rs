//! Honeypot sessions and sensors in SQLite (`sessions`, `session_payloads`, `sensors`; migration
//! 0006). The work that needs no database (JSON of the lists, link keys) is done before a batch
//! reaches the one writer thread.

use super::{db_error, from_micros, micros, now_micros, SqliteStore};
use crate::sessions::{
    check_sensor_name, AttackerSensor, NewSensor, NewSession, Sensor, SensorSeen, SessionQuery,
    SessionsOutcome, StoredSession, MAX_LINK_SCAN, MAX_SESSIONS_PAGE,
};
use crate::{Result, StoreError};
use apiary_core::sessions::{
    commands_key, hassh_credentials_key, Link, LinkKind, SessionCredential, SessionLinks,
    SessionRecord, Transfer, TunnelTarget,
};
use rusqlite::types::Value as SqlValue;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row};
use serde::{Deserialize, Serialize};

/// The lists of a session, stored as one JSON object.
#[derive(Serialize, Deserialize, Default)]
pub(crate) struct Detail {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub credentials: Vec<SessionCredential>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub commands: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub downloads: Vec<Transfer>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub uploads: Vec<Transfer>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tunnels: Vec<TunnelTarget>,
}

/// A session made ready for the writer.
pub(crate) struct Prepared {
    pub feed_id: i64,
    pub record: SessionRecord,
    pub detail: String,
    pub commands_key: Option<String>,
    pub hassh_credentials_key: Option<String>,
    pub payloads: Vec<String>,
}

/// Everything about a session that costs CPU but no database, shared by both stores.
pub(crate) fn prepare(batch: Vec<NewSession>) -> Result<Vec<Prepared>> {
    batch
        .into_iter()
        .map(|n| {
            let r = n.record;
            check_sensor_name(&r.sensor)?;
            if r.session.is_empty() {
                return Err(StoreError::Invalid("a session needs a session id".into()));
            }
            let detail = Detail {
                credentials: r.credentials.clone(),
                commands: r.commands.clone(),
                downloads: r.downloads.clone(),
                uploads: r.uploads.clone(),
                tunnels: r.tunnels.clone(),
            };
            let detail =
                serde_json::to_string(&detail).map_err(|e| StoreError::Internal(e.to_string()))?;
            let payloads = r.payloads().into_iter().map(str::to_owned).collect();
            Ok(Prepared {
                feed_id: n.feed_id,
                commands_key: commands_key(&r.commands),
                hassh_credentials_key: hassh_credentials_key(r.hassh.as_deref(), &r.credentials),
                payloads,
                detail,
                record: r,
            })
        })
        .collect()
}

/// Store a batch of sessions: a new one is inserted; one already stored is replaced only by a
/// version with more events (a later, more complete read of the same session).
///
/// The common case, a new session, is a plain insert that ignores the conflict; only when the
/// session exists does a second statement update it (one `INSERT … ON CONFLICT DO UPDATE …
/// RETURNING` per session costs more: its RETURNING row for every insert).
pub(crate) fn append(c: &Connection, batch: &[Prepared]) -> Result<SessionsOutcome> {
    let now = now_micros();
    let mut out = SessionsOutcome::default();
    let mut insert = c
        .prepare_cached(
            "INSERT INTO sessions (feed_id, sensor, session, attacker, attacker_port, honeypot_ip, honeypot_port, protocol, \
             start_at, end_at, duration, client_version, hassh, login_success, depth, ttylog_sha256, commands_key, \
             hassh_credentials_key, events, closed, detail, revision, received_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, 0, ?22, ?22) \
             ON CONFLICT (feed_id, sensor, session) DO NOTHING",
        )
        .map_err(db_error)?;
    let mut replace = c
        .prepare_cached(
            "UPDATE sessions SET attacker = ?4, attacker_port = ?5, honeypot_ip = ?6, honeypot_port = ?7, protocol = ?8, \
             start_at = ?9, end_at = ?10, duration = ?11, client_version = ?12, hassh = ?13, login_success = ?14, \
             depth = ?15, ttylog_sha256 = ?16, commands_key = ?17, hassh_credentials_key = ?18, events = ?19, \
             closed = ?20, detail = ?21, revision = revision + 1, updated_at = ?22 \
             WHERE feed_id = ?1 AND sensor = ?2 AND session = ?3 AND events < ?19 \
             RETURNING id",
        )
        .map_err(db_error)?;
    let mut add_payload = c
        .prepare_cached(
            "INSERT OR IGNORE INTO session_payloads (session_id, sha256) VALUES (?1, ?2)",
        )
        .map_err(db_error)?;
    for p in batch {
        let r = &p.record;
        let values = params![
            p.feed_id,
            r.sensor,
            r.session,
            r.attacker,
            r.attacker_port,
            r.honeypot_ip,
            r.honeypot_port,
            r.protocol,
            r.start.map(micros),
            r.end.map(micros),
            r.duration,
            r.client_version,
            r.hassh,
            r.login_success,
            r.depth,
            r.ttylog_sha256,
            p.commands_key,
            p.hassh_credentials_key,
            r.events as i64,
            r.closed,
            p.detail,
            now,
        ];
        let id = if insert.execute(values).map_err(db_error)? == 1 {
            out.stored += 1;
            c.last_insert_rowid()
        } else {
            let Some(id) = replace.query_row(values, |row| row.get::<_, i64>(0)).optional().map_err(db_error)? else {
                out.duplicates += 1;
                continue;
            };
            out.replaced += 1;
            c.prepare_cached("DELETE FROM session_payloads WHERE session_id = ?1")
                .and_then(|mut st| st.execute([id]))
                .map_err(db_error)?;
            id
        };
        for h in &p.payloads {
            add_payload.execute(params![id, h]).map_err(db_error)?;
        }
    }
    Ok(out)
}

const COLUMNS: &str = "s.id, s.feed_id, u.name || '/' || f.name, s.sensor, s.session, s.attacker, s.attacker_port, \
     s.honeypot_ip, s.honeypot_port, s.protocol, s.start_at, s.end_at, s.duration, s.client_version, s.hassh, \
     s.login_success, s.depth, s.ttylog_sha256, s.events, s.closed, s.detail, s.received_at, s.updated_at \
     FROM sessions s JOIN feeds f ON f.id = s.feed_id JOIN users u ON u.id = f.owner_id";

fn from_row(r: &Row) -> rusqlite::Result<StoredSession> {
    let detail: String = r.get(20)?;
    let d: Detail = serde_json::from_str(&detail).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(20, rusqlite::types::Type::Text, e.into())
    })?;
    Ok(StoredSession {
        id: r.get(0)?,
        feed_id: r.get(1)?,
        feed: r.get(2)?,
        record: SessionRecord {
            sensor: r.get(3)?,
            session: r.get(4)?,
            attacker: r.get(5)?,
            attacker_port: r.get(6)?,
            honeypot_ip: r.get(7)?,
            honeypot_port: r.get(8)?,
            protocol: r.get(9)?,
            start: r.get::<_, Option<i64>>(10)?.map(from_micros),
            end: r.get::<_, Option<i64>>(11)?.map(from_micros),
            duration: r.get(12)?,
            client_version: r.get(13)?,
            hassh: r.get(14)?,
            credentials: d.credentials,
            login_success: r.get(15)?,
            commands: d.commands,
            downloads: d.downloads,
            uploads: d.uploads,
            tunnels: d.tunnels,
            ttylog_sha256: r.get(17)?,
            depth: r.get(16)?,
            events: r.get::<_, i64>(18)? as u64,
            closed: r.get(19)?,
        },
        received_at: from_micros(r.get(21)?),
        updated_at: from_micros(r.get(22)?),
    })
}

/// `AND s.feed_id IN (...)` for a list of feed ids (integers: safe to write into the SQL).
fn feed_filter(feed_ids: Option<&[i64]>) -> String {
    match feed_ids {
        None => String::new(),
        Some(ids) => {
            let list: Vec<String> = ids.iter().map(i64::to_string).collect();
            format!(" AND s.feed_id IN ({})", list.join(","))
        }
    }
}

pub(crate) fn query(c: &Connection, q: &SessionQuery) -> Result<Vec<StoredSession>> {
    if q.feed_ids.as_ref().is_some_and(|ids| ids.is_empty()) {
        return Ok(Vec::new());
    }
    let mut sql = format!(
        "SELECT {COLUMNS} WHERE 1 = 1{}",
        feed_filter(q.feed_ids.as_deref())
    );
    let mut args: Vec<SqlValue> = Vec::new();
    if let Some(a) = &q.attacker {
        args.push(SqlValue::Text(a.clone()));
        sql.push_str(&format!(" AND s.attacker = ?{}", args.len()));
    }
    if let Some(sensor) = &q.sensor {
        args.push(SqlValue::Text(sensor.clone()));
        sql.push_str(&format!(" AND s.sensor = ?{}", args.len()));
    }
    if let Some(h) = &q.payload {
        args.push(SqlValue::Text(h.clone()));
        sql.push_str(&format!(
            " AND s.id IN (SELECT session_id FROM session_payloads WHERE sha256 = ?{})",
            args.len()
        ));
    }
    if let Some(l) = &q.link {
        args.push(SqlValue::Text(l.key.clone()));
        let n = args.len();
        sql.push_str(&match l.kind {
            LinkKind::Payload => format!(
                " AND s.id IN (SELECT session_id FROM session_payloads WHERE sha256 = ?{n})"
            ),
            LinkKind::Ttylog => format!(" AND s.ttylog_sha256 = ?{n}"),
            LinkKind::Commands => format!(" AND s.commands_key = ?{n}"),
            LinkKind::HasshCredentials => format!(" AND s.hassh_credentials_key = ?{n}"),
        });
    }
    let dir = if q.newest_first { "DESC" } else { "ASC" };
    // Sessions without a start sort last either way.
    sql.push_str(&format!(
        " ORDER BY s.start_at IS NULL, s.start_at {dir}, s.id {dir} LIMIT {}",
        q.limit.clamp(1, MAX_SESSIONS_PAGE)
    ));
    let mut st = c.prepare(&sql).map_err(db_error)?;
    let rows = st
        .query_map(params_from_iter(args), from_row)
        .map_err(db_error)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db_error)
}

pub(crate) fn links(c: &Connection, feed_ids: Option<&[i64]>) -> Result<Vec<SessionLinks>> {
    if feed_ids.is_some_and(<[i64]>::is_empty) {
        return Ok(Vec::new());
    }
    let filter = feed_filter(feed_ids);
    let sql = format!(
        "SELECT s.id, s.feed_id, s.sensor, s.attacker, s.start_at, s.end_at, s.ttylog_sha256, s.commands_key, \
         s.hassh_credentials_key, (SELECT group_concat(p.sha256) FROM session_payloads p WHERE p.session_id = s.id), s.session \
         FROM sessions s WHERE s.attacker IS NOT NULL{filter} AND (s.ttylog_sha256 IS NOT NULL OR s.commands_key IS NOT NULL \
         OR s.hassh_credentials_key IS NOT NULL OR EXISTS (SELECT 1 FROM session_payloads p WHERE p.session_id = s.id)) \
         LIMIT {MAX_LINK_SCAN}"
    );
    let mut st = c.prepare(&sql).map_err(db_error)?;
    let rows = st
        .query_map([], |r| {
            let mut links = Vec::new();
            if let Some(p) = r.get::<_, Option<String>>(9)? {
                links.extend(p.split(',').map(|h| Link {
                    kind: LinkKind::Payload,
                    key: h.to_owned(),
                }));
            }
            for (i, kind) in [
                (6, LinkKind::Ttylog),
                (7, LinkKind::Commands),
                (8, LinkKind::HasshCredentials),
            ] {
                if let Some(k) = r.get::<_, Option<String>>(i)? {
                    links.push(Link { kind, key: k });
                }
            }
            Ok(SessionLinks {
                feed_id: r.get(1)?,
                sensor: r.get(2)?,
                session: r.get(10)?,
                attacker: r.get(3)?,
                start: r.get::<_, Option<i64>>(4)?.map(from_micros),
                end: r.get::<_, Option<i64>>(5)?.map(from_micros),
                links,
            })
        })
        .map_err(db_error)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db_error)
}

pub(crate) fn attacker_sensors(
    c: &Connection,
    feed_ids: Option<&[i64]>,
) -> Result<Vec<AttackerSensor>> {
    if feed_ids.is_some_and(<[i64]>::is_empty) {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT attacker, feed_id, sensor, count(*), min(start_at), max(end_at) FROM \
         (SELECT s.attacker, min(s.feed_id) AS feed_id, s.sensor, min(s.start_at) AS start_at, \
         max(coalesce(s.end_at, s.start_at)) AS end_at FROM sessions s WHERE s.attacker IS NOT NULL{} \
         GROUP BY s.attacker, s.sensor, s.session) \
         GROUP BY attacker, feed_id, sensor ORDER BY attacker, feed_id, sensor LIMIT {MAX_LINK_SCAN}",
        feed_filter(feed_ids)
    );
    let mut st = c.prepare(&sql).map_err(db_error)?;
    let rows = st
        .query_map([], |r| {
            Ok(AttackerSensor {
                attacker: r.get(0)?,
                feed_id: r.get(1)?,
                sensor: r.get(2)?,
                sessions: r.get::<_, i64>(3)? as u64,
                first_seen: r.get::<_, Option<i64>>(4)?.map(from_micros),
                last_seen: r.get::<_, Option<i64>>(5)?.map(from_micros),
            })
        })
        .map_err(db_error)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db_error)
}

fn sensor_from_row(r: &Row) -> rusqlite::Result<Sensor> {
    Ok(Sensor {
        feed_id: r.get(0)?,
        name: r.get(1)?,
        asn: r.get::<_, Option<i64>>(2)?.map(|a| a as u32),
        prefix: r.get(3)?,
        created_at: from_micros(r.get(4)?),
        updated_at: from_micros(r.get(5)?),
    })
}

const SENSOR_COLUMNS: &str =
    "s.feed_id, s.name, s.asn, s.prefix, s.created_at, s.updated_at FROM sensors s";

fn upsert_sensor(c: &Connection, new: &NewSensor) -> Result<Sensor> {
    let exists: Option<i64> = c
        .prepare_cached("SELECT id FROM feeds WHERE id = ?1")
        .and_then(|mut st| st.query_row([new.feed_id], |r| r.get(0)).optional())
        .map_err(db_error)?;
    if exists.is_none() {
        return Err(StoreError::NotFound(format!("feed {}", new.feed_id)));
    }
    let now = now_micros();
    c.prepare_cached(
        "INSERT INTO sensors (feed_id, name, asn, prefix, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5) \
         ON CONFLICT (feed_id, name) DO UPDATE SET asn = excluded.asn, prefix = excluded.prefix, updated_at = excluded.updated_at",
    )
    .and_then(|mut st| st.execute(params![new.feed_id, new.name, new.asn.map(i64::from), new.prefix, now]))
    .map_err(db_error)?;
    c.prepare_cached(&format!(
        "SELECT {SENSOR_COLUMNS} WHERE s.feed_id = ?1 AND s.name = ?2"
    ))
    .and_then(|mut st| st.query_row(params![new.feed_id, new.name], sensor_from_row))
    .map_err(db_error)
}

fn list_sensors(c: &Connection, feed_ids: Option<&[i64]>) -> Result<Vec<Sensor>> {
    if feed_ids.is_some_and(<[i64]>::is_empty) {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT {SENSOR_COLUMNS} WHERE 1 = 1{} ORDER BY s.feed_id, s.name",
        feed_filter(feed_ids)
    );
    let mut st = c.prepare(&sql).map_err(db_error)?;
    let rows = st.query_map([], sensor_from_row).map_err(db_error)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db_error)
}

fn delete_sensor(c: &Connection, feed_id: i64, name: &str) -> Result<()> {
    let n = c
        .prepare_cached("DELETE FROM sensors WHERE feed_id = ?1 AND name = ?2")
        .and_then(|mut st| st.execute(params![feed_id, name]))
        .map_err(db_error)?;
    if n == 0 {
        return Err(StoreError::NotFound(format!("sensor `{name}`")));
    }
    Ok(())
}

fn sensors_seen(c: &Connection, feed_ids: Option<&[i64]>) -> Result<Vec<SensorSeen>> {
    if feed_ids.is_some_and(<[i64]>::is_empty) {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT s.feed_id, s.sensor, count(*), min(s.start_at), max(coalesce(s.end_at, s.start_at)) FROM sessions s \
         WHERE 1 = 1{} GROUP BY s.feed_id, s.sensor ORDER BY s.feed_id, s.sensor",
        feed_filter(feed_ids)
    );
    let mut st = c.prepare(&sql).map_err(db_error)?;
    let rows = st
        .query_map([], |r| {
            Ok(SensorSeen {
                feed_id: r.get(0)?,
                name: r.get(1)?,
                sessions: r.get::<_, i64>(2)? as u64,
                first_seen: r.get::<_, Option<i64>>(3)?.map(from_micros),
                last_seen: r.get::<_, Option<i64>>(4)?.map(from_micros),
            })
        })
        .map_err(db_error)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db_error)
}

impl SqliteStore {
    pub(super) async fn sessions_append(&self, batch: Vec<NewSession>) -> Result<SessionsOutcome> {
        if batch.is_empty() {
            return Ok(SessionsOutcome::default());
        }
        let prepared = prepare(batch)?;
        self.write(prepared.len(), false, move |c| {
            append(c, &prepared).map(|o| (o, prepared))
        })
        .await
        .map(|(o, _)| o)
    }

    pub(super) async fn sessions_query(&self, q: &SessionQuery) -> Result<Vec<StoredSession>> {
        let q = q.clone();
        self.read(move |c| query(c, &q)).await
    }

    pub(super) async fn sessions_links(
        &self,
        feed_ids: Option<&[i64]>,
    ) -> Result<Vec<SessionLinks>> {
        let ids = feed_ids.map(<[i64]>::to_vec);
        self.read(move |c| links(c, ids.as_deref())).await
    }

    pub(super) async fn sessions_attacker_sensors(
        &self,
        feed_ids: Option<&[i64]>,
    ) -> Result<Vec<AttackerSensor>> {
        let ids = feed_ids.map(<[i64]>::to_vec);
        self.read(move |c| attacker_sensors(c, ids.as_deref()))
            .await
    }

    pub(super) async fn sensor_upsert(&self, new: NewSensor) -> Result<Sensor> {
        check_sensor_name(&new.name)?;
        self.write(1, true, move |c| upsert_sensor(c, &new)).await
    }

    pub(super) async fn sensor_list(&self, feed_ids: Option<&[i64]>) -> Result<Vec<Sensor>> {
        let ids = feed_ids.map(<[i64]>::to_vec);
        self.read(move |c| list_sensors(c, ids.as_deref())).await
    }

    pub(super) async fn sensor_delete(&self, feed_id: i64, name: &str) -> Result<()> {
        let name = name.to_owned();
        self.write(1, true, move |c| delete_sensor(c, feed_id, &name))
            .await
    }

    pub(super) async fn sensor_seen(&self, feed_ids: Option<&[i64]>) -> Result<Vec<SensorSeen>> {
        let ids = feed_ids.map(<[i64]>::to_vec);
        self.read(move |c| sensors_seen(c, ids.as_deref())).await
    }
}
