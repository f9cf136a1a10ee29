//! Honeypot sessions and sensors in PostgreSQL (migration 0002). The same rules as
//! `sqlite/sessions.rs`: one row per (feed, sensor, session id), replaced only by a version with
//! more events; payload hashes in `session_payloads`; sensors with their declared network.

use super::{pg_error, to_micros, PostgresStore};
use crate::model::Timestamp;
use crate::sessions::{
    check_sensor_name, AttackerSensor, NewSensor, NewSession, Sensor, SensorSeen, SessionQuery,
    SessionsOutcome, StoredSession, MAX_LINK_SCAN, MAX_SESSIONS_PAGE,
};
use crate::sqlite::sessions::{prepare, Detail};
use crate::{Result, StoreError};
use apiary_core::sessions::{Link, LinkKind, SessionLinks, SessionRecord};
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

const COLUMNS: &str = "s.id, s.feed_id, u.name || '/' || f.name, s.sensor, s.session, s.attacker, s.attacker_port, \
     s.honeypot_ip, s.honeypot_port, s.protocol, s.start_at, s.end_at, s.duration, s.client_version, s.hassh, \
     s.login_success, s.depth, s.ttylog_sha256, s.events, s.closed, s.detail, s.received_at, s.updated_at \
     FROM sessions s JOIN feeds f ON f.id = s.feed_id JOIN users u ON u.id = f.owner_id";

fn port(v: Option<i32>) -> Option<u16> {
    v.and_then(|p| u16::try_from(p).ok())
}

fn from_row(r: &Row) -> Result<StoredSession> {
    let d: Detail = serde_json::from_value(r.get::<_, serde_json::Value>(20))
        .map_err(|e| StoreError::Internal(format!("session detail in the database: {e}")))?;
    Ok(StoredSession {
        id: r.get(0),
        feed_id: r.get(1),
        feed: r.get(2),
        record: SessionRecord {
            sensor: r.get(3),
            session: r.get(4),
            attacker: r.get(5),
            attacker_port: port(r.get(6)),
            honeypot_ip: r.get(7),
            honeypot_port: port(r.get(8)),
            protocol: r.get(9),
            start: r.get(10),
            end: r.get(11),
            duration: r.get(12),
            client_version: r.get(13),
            hassh: r.get(14),
            credentials: d.credentials,
            login_success: r.get(15),
            commands: d.commands,
            downloads: d.downloads,
            uploads: d.uploads,
            tunnels: d.tunnels,
            ttylog_sha256: r.get(17),
            depth: r.get(16),
            events: r.get::<_, i64>(18) as u64,
            closed: r.get(19),
        },
        received_at: r.get(21),
        updated_at: r.get(22),
    })
}

fn sensor_from_row(r: &Row) -> Sensor {
    Sensor {
        feed_id: r.get(0),
        name: r.get(1),
        asn: r
            .get::<_, Option<i64>>(2)
            .and_then(|a| u32::try_from(a).ok()),
        prefix: r.get(3),
        created_at: r.get(4),
        updated_at: r.get(5),
    }
}

const SENSOR_COLUMNS: &str =
    "s.feed_id, s.name, s.asn, s.prefix, s.created_at, s.updated_at FROM sensors s";

impl PostgresStore {
    pub(super) async fn sessions_append(&self, batch: Vec<NewSession>) -> Result<SessionsOutcome> {
        if batch.is_empty() {
            return Ok(SessionsOutcome::default());
        }
        let prepared = prepare(batch)?;
        let now = to_micros(chrono::Utc::now());
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_error)?;
        let upsert = tx
            .prepare(
                "INSERT INTO sessions (feed_id, sensor, session, attacker, attacker_port, honeypot_ip, honeypot_port, protocol, \
                 start_at, end_at, duration, client_version, hassh, login_success, depth, ttylog_sha256, commands_key, \
                 hassh_credentials_key, events, closed, detail, revision, received_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, 0, $22, $22) \
                 ON CONFLICT (feed_id, sensor, session) DO UPDATE SET attacker = excluded.attacker, \
                 attacker_port = excluded.attacker_port, honeypot_ip = excluded.honeypot_ip, honeypot_port = excluded.honeypot_port, \
                 protocol = excluded.protocol, start_at = excluded.start_at, end_at = excluded.end_at, duration = excluded.duration, \
                 client_version = excluded.client_version, hassh = excluded.hassh, login_success = excluded.login_success, \
                 depth = excluded.depth, ttylog_sha256 = excluded.ttylog_sha256, commands_key = excluded.commands_key, \
                 hassh_credentials_key = excluded.hassh_credentials_key, events = excluded.events, closed = excluded.closed, \
                 detail = excluded.detail, revision = sessions.revision + 1, updated_at = excluded.updated_at \
                 WHERE excluded.events > sessions.events \
                 RETURNING id, revision",
            )
            .await
            .map_err(pg_error)?;
        let add_payload = tx
            .prepare("INSERT INTO session_payloads (session_id, sha256) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .await
            .map_err(pg_error)?;
        let mut out = SessionsOutcome::default();
        for p in &prepared {
            let r = &p.record;
            let detail: serde_json::Value =
                serde_json::from_str(&p.detail).map_err(|e| StoreError::Internal(e.to_string()))?;
            let params: [&(dyn ToSql + Sync); 22] = [
                &p.feed_id,
                &r.sensor,
                &r.session,
                &r.attacker,
                &r.attacker_port.map(i32::from),
                &r.honeypot_ip,
                &r.honeypot_port.map(i32::from),
                &r.protocol,
                &r.start.map(to_micros),
                &r.end.map(to_micros),
                &r.duration,
                &r.client_version,
                &r.hassh,
                &r.login_success,
                &r.depth,
                &r.ttylog_sha256,
                &p.commands_key,
                &p.hassh_credentials_key,
                &(r.events.min(i64::MAX as u64) as i64),
                &r.closed,
                &detail,
                &now,
            ];
            let row = tx.query_opt(&upsert, &params).await.map_err(pg_error)?;
            let Some(row) = row else {
                out.duplicates += 1;
                continue;
            };
            let (id, revision): (i64, i32) = (row.get(0), row.get(1));
            if revision > 0 {
                out.replaced += 1;
                tx.execute("DELETE FROM session_payloads WHERE session_id = $1", &[&id])
                    .await
                    .map_err(pg_error)?;
            } else {
                out.stored += 1;
            }
            for h in &p.payloads {
                tx.execute(&add_payload, &[&id, h])
                    .await
                    .map_err(pg_error)?;
            }
        }
        tx.commit().await.map_err(pg_error)?;
        Ok(out)
    }

    pub(super) async fn sessions_query(&self, q: &SessionQuery) -> Result<Vec<StoredSession>> {
        if q.feed_ids.as_ref().is_some_and(|ids| ids.is_empty()) {
            return Ok(Vec::new());
        }
        let mut sql = format!("SELECT {COLUMNS} WHERE true");
        let mut args: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
        if let Some(ids) = &q.feed_ids {
            args.push(Box::new(ids.clone()));
            sql.push_str(&format!(" AND s.feed_id = ANY(${})", args.len()));
        }
        if let Some(a) = &q.attacker {
            args.push(Box::new(a.clone()));
            sql.push_str(&format!(" AND s.attacker = ${}", args.len()));
        }
        if let Some(sensor) = &q.sensor {
            args.push(Box::new(sensor.clone()));
            sql.push_str(&format!(" AND s.sensor = ${}", args.len()));
        }
        if let Some(h) = &q.payload {
            args.push(Box::new(h.clone()));
            sql.push_str(&format!(
                " AND s.id IN (SELECT session_id FROM session_payloads WHERE sha256 = ${})",
                args.len()
            ));
        }
        if let Some(l) = &q.link {
            args.push(Box::new(l.key.clone()));
            let n = args.len();
            sql.push_str(&match l.kind {
                LinkKind::Payload => format!(
                    " AND s.id IN (SELECT session_id FROM session_payloads WHERE sha256 = ${n})"
                ),
                LinkKind::Ttylog => format!(" AND s.ttylog_sha256 = ${n}"),
                LinkKind::Commands => format!(" AND s.commands_key = ${n}"),
                LinkKind::HasshCredentials => format!(" AND s.hassh_credentials_key = ${n}"),
            });
        }
        let dir = if q.newest_first { "DESC" } else { "ASC" };
        sql.push_str(&format!(
            " ORDER BY s.start_at IS NULL, s.start_at {dir}, s.id {dir} LIMIT {}",
            q.limit.clamp(1, MAX_SESSIONS_PAGE)
        ));
        let refs: Vec<&(dyn ToSql + Sync)> = args
            .iter()
            .map(|b| b.as_ref() as &(dyn ToSql + Sync))
            .collect();
        let client = self.client().await?;
        let rows = client.query(&sql, &refs).await.map_err(pg_error)?;
        rows.iter().map(from_row).collect()
    }

    pub(super) async fn sessions_links(
        &self,
        feed_ids: Option<&[i64]>,
    ) -> Result<Vec<SessionLinks>> {
        if feed_ids.is_some_and(<[i64]>::is_empty) {
            return Ok(Vec::new());
        }
        let ids: Option<Vec<i64>> = feed_ids.map(<[i64]>::to_vec);
        let sql = format!(
            "SELECT s.id, s.feed_id, s.sensor, s.attacker, s.start_at, s.end_at, s.ttylog_sha256, s.commands_key, \
             s.hassh_credentials_key, (SELECT array_agg(p.sha256) FROM session_payloads p WHERE p.session_id = s.id), s.session \
             FROM sessions s WHERE s.attacker IS NOT NULL AND ($1::bigint[] IS NULL OR s.feed_id = ANY($1)) \
             AND (s.ttylog_sha256 IS NOT NULL OR s.commands_key IS NOT NULL OR s.hassh_credentials_key IS NOT NULL \
             OR EXISTS (SELECT 1 FROM session_payloads p WHERE p.session_id = s.id)) LIMIT {MAX_LINK_SCAN}"
        );
        let client = self.client().await?;
        let rows = client.query(&sql, &[&ids]).await.map_err(pg_error)?;
        Ok(rows
            .iter()
            .map(|r| {
                let mut links: Vec<Link> = r
                    .get::<_, Option<Vec<String>>>(9)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|h| Link {
                        kind: LinkKind::Payload,
                        key: h,
                    })
                    .collect();
                for (i, kind) in [
                    (6, LinkKind::Ttylog),
                    (7, LinkKind::Commands),
                    (8, LinkKind::HasshCredentials),
                ] {
                    if let Some(k) = r.get::<_, Option<String>>(i) {
                        links.push(Link { kind, key: k });
                    }
                }
                SessionLinks {
                    feed_id: r.get(1),
                    sensor: r.get(2),
                    session: r.get(10),
                    attacker: r.get(3),
                    start: r.get(4),
                    end: r.get(5),
                    links,
                }
            })
            .collect())
    }

    pub(super) async fn sessions_attacker_sensors(
        &self,
        feed_ids: Option<&[i64]>,
    ) -> Result<Vec<AttackerSensor>> {
        if feed_ids.is_some_and(<[i64]>::is_empty) {
            return Ok(Vec::new());
        }
        let ids: Option<Vec<i64>> = feed_ids.map(<[i64]>::to_vec);
        let client = self.client().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT attacker, feed_id, sensor, count(*), min(start_at), max(end_at) FROM \
                     (SELECT s.attacker, min(s.feed_id) AS feed_id, s.sensor, min(s.start_at) AS start_at, \
                     max(coalesce(s.end_at, s.start_at)) AS end_at FROM sessions s \
                     WHERE s.attacker IS NOT NULL AND ($1::bigint[] IS NULL OR s.feed_id = ANY($1)) \
                     GROUP BY s.attacker, s.sensor, s.session) d \
                     GROUP BY attacker, feed_id, sensor ORDER BY attacker, feed_id, sensor LIMIT {MAX_LINK_SCAN}"
                ),
                &[&ids],
            )
            .await
            .map_err(pg_error)?;
        Ok(rows
            .iter()
            .map(|r| AttackerSensor {
                attacker: r.get(0),
                feed_id: r.get(1),
                sensor: r.get(2),
                sessions: r.get::<_, i64>(3) as u64,
                first_seen: r.get::<_, Option<Timestamp>>(4),
                last_seen: r.get::<_, Option<Timestamp>>(5),
            })
            .collect())
    }

    pub(super) async fn sensor_upsert(&self, new: NewSensor) -> Result<Sensor> {
        check_sensor_name(&new.name)?;
        let client = self.client().await?;
        let exists = client
            .query_opt("SELECT id FROM feeds WHERE id = $1", &[&new.feed_id])
            .await
            .map_err(pg_error)?;
        if exists.is_none() {
            return Err(StoreError::NotFound(format!("feed {}", new.feed_id)));
        }
        let now = to_micros(chrono::Utc::now());
        let row = client
            .query_one(
                "INSERT INTO sensors AS s (feed_id, name, asn, prefix, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5) \
                 ON CONFLICT (feed_id, name) DO UPDATE SET asn = excluded.asn, prefix = excluded.prefix, \
                 updated_at = excluded.updated_at RETURNING s.feed_id, s.name, s.asn, s.prefix, s.created_at, s.updated_at",
                &[&new.feed_id, &new.name, &new.asn.map(i64::from), &new.prefix, &now],
            )
            .await
            .map_err(|e| {
                if e.code() == Some(&tokio_postgres::error::SqlState::FOREIGN_KEY_VIOLATION) {
                    StoreError::NotFound(format!("feed {}", new.feed_id))
                } else {
                    pg_error(e)
                }
            })?;
        Ok(sensor_from_row(&row))
    }

    pub(super) async fn sensor_list(&self, feed_ids: Option<&[i64]>) -> Result<Vec<Sensor>> {
        if feed_ids.is_some_and(<[i64]>::is_empty) {
            return Ok(Vec::new());
        }
        let ids: Option<Vec<i64>> = feed_ids.map(<[i64]>::to_vec);
        let client = self.client().await?;
        let rows = client
            .query(
                &format!("SELECT {SENSOR_COLUMNS} WHERE $1::bigint[] IS NULL OR s.feed_id = ANY($1) ORDER BY s.feed_id, s.name"),
                &[&ids],
            )
            .await
            .map_err(pg_error)?;
        Ok(rows.iter().map(sensor_from_row).collect())
    }

    pub(super) async fn sensor_delete(&self, feed_id: i64, name: &str) -> Result<()> {
        let client = self.client().await?;
        let n = client
            .execute(
                "DELETE FROM sensors WHERE feed_id = $1 AND name = $2",
                &[&feed_id, &name],
            )
            .await
            .map_err(pg_error)?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("sensor `{name}`")));
        }
        Ok(())
    }

    pub(super) async fn sensor_seen(&self, feed_ids: Option<&[i64]>) -> Result<Vec<SensorSeen>> {
        if feed_ids.is_some_and(<[i64]>::is_empty) {
            return Ok(Vec::new());
        }
        let ids: Option<Vec<i64>> = feed_ids.map(<[i64]>::to_vec);
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT s.feed_id, s.sensor, count(*), min(s.start_at), max(coalesce(s.end_at, s.start_at)) FROM sessions s \
                 WHERE $1::bigint[] IS NULL OR s.feed_id = ANY($1) GROUP BY s.feed_id, s.sensor ORDER BY s.feed_id, s.sensor",
                &[&ids],
            )
            .await
            .map_err(pg_error)?;
        Ok(rows
            .iter()
            .map(|r| SensorSeen {
                feed_id: r.get(0),
                name: r.get(1),
                sessions: r.get::<_, i64>(2) as u64,
                first_seen: r.get::<_, Option<Timestamp>>(3),
                last_seen: r.get::<_, Option<Timestamp>>(4),
            })
            .collect())
    }
}
