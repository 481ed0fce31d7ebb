//! The roster's tables in a PostgreSQL database several relays share ([`RosterStore`] on
//! PostgreSQL): the same tables and constraints as SQLite's schema v2 (`bytea` ids and keys,
//! `bigint` Unix times), plus `challenges` (SQLite keeps those in memory) and indexes for the
//! deletes by device.
//!
//! What must hold across relays is decided inside one transaction: redeeming an invite locks its
//! row (`SELECT … FOR UPDATE`) before checking it is unused and unexpired, so of two relays
//! redeeming one invite at once the second waits, then finds it used; a wrong secret is counted
//! by one `UPDATE … RETURNING`, so concurrent failures are all counted.
//!
//! Open challenges are here too (SQLite keeps them in memory), so a device may ask one relay for
//! a challenge and answer it on another; taking one is one `DELETE … RETURNING`, so a nonce is
//! used once across relays.
//!
//! Revocations, role changes and clerk changes notify [`ROSTER_CHANNEL`] with
//! `device <id> <node>` or `member <id> <node>` in their transaction: on commit, every other
//! relay's listener ([`super::PostgresStore::listen`]) reports [`crate::store::StoreEvent::RosterChanged`]
//! and the relay closes the affected connections.

use std::sync::Arc;

use async_trait::async_trait;
use chibo_shared::access::Role;
use chibo_shared::ids::{BranchId, DeviceId, DocumentId, ForumId, MemberId, UnitId};
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Row};

use super::{Inner, Pooled, PostgresStore, classify};
use crate::roster::{DeviceRecord, InviteRecord, Kick, MemberRecord, UnitKind, UnitRecord};
use crate::store::StoreError;
use crate::store::roster::{DEVICE_COLS, INVITE_COLS, MEMBER_COLS, RedeemError, RosterStore, UNIT_COLS};

/// The channel roster changes that close connections are notified on.
pub const ROSTER_CHANNEL: &str = "chibo_roster";

/// Migration v2 of the PostgreSQL schema: the roster, as in SQLite's v2.
pub(super) const MIGRATION_V2: &str = "
    CREATE TABLE units (
        id         bytea  NOT NULL PRIMARY KEY CHECK (length(id) = 16),
        parent     bytea  REFERENCES units (id),
        kind       text   NOT NULL CHECK (kind IN ('committee', 'branch')),
        name       text   NOT NULL,
        created_at bigint NOT NULL
    );
    CREATE TABLE members (
        id         bytea  NOT NULL PRIMARY KEY CHECK (length(id) = 16),
        unit       bytea  NOT NULL REFERENCES units (id),
        name       text   NOT NULL,
        role       text   NOT NULL,
        created_at bigint NOT NULL
    );
    CREATE INDEX members_unit ON members (unit);
    CREATE TABLE clerks (
        forum  bytea NOT NULL,
        member bytea NOT NULL REFERENCES members (id),
        PRIMARY KEY (forum, member)
    );
    CREATE INDEX clerks_member ON clerks (member);
    CREATE TABLE devices (
        id          bytea  NOT NULL PRIMARY KEY CHECK (length(id) = 16),
        member      bytea  NOT NULL REFERENCES members (id),
        public_key  bytea  NOT NULL UNIQUE CHECK (length(public_key) = 32),
        actor       bytea  NOT NULL UNIQUE,
        label       text   NOT NULL,
        enrolled_at bigint NOT NULL,
        revoked_at  bigint
    );
    CREATE INDEX devices_member ON devices (member);
    -- Invite codes are <lookup>-<secret>; only a hash of the secret is kept.
    CREATE TABLE invites (
        lookup          text    NOT NULL PRIMARY KEY,
        secret_hash     bytea   NOT NULL,
        unit            bytea   NOT NULL REFERENCES units (id),
        role            text    NOT NULL,
        name            text    NOT NULL,
        member          bytea   REFERENCES members (id),
        created_by      bytea,
        created_at      bigint  NOT NULL,
        expires_at      bigint  NOT NULL,
        used_at         bigint,
        used_by         bytea,
        failed_attempts integer NOT NULL DEFAULT 0
    );
    -- Session tokens for /sync and the API; only a hash of the token is kept.
    CREATE TABLE sessions (
        token_hash bytea  NOT NULL PRIMARY KEY,
        device     bytea  NOT NULL REFERENCES devices (id),
        created_at bigint NOT NULL,
        expires_at bigint NOT NULL
    );
    CREATE INDEX sessions_device ON sessions (device);
    -- Challenges handed out and not yet answered (single use), here so that any relay can check
    -- the answer; a SQLite relay, one process, keeps them in memory instead.
    CREATE TABLE challenges (
        id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        nonce      bytea  NOT NULL UNIQUE CHECK (length(nonce) = 32),
        device     bytea  NOT NULL REFERENCES devices (id),
        expires_at bigint NOT NULL
    );
    CREATE INDEX challenges_device ON challenges (device);
    CREATE INDEX challenges_expires_at ON challenges (expires_at);
    -- Which document is which: document ids are hashes of canonical paths.
    CREATE TABLE doc_index (
        doc    bytea NOT NULL PRIMARY KEY CHECK (length(doc) = 16),
        path   text  NOT NULL,
        branch bytea NOT NULL
    );
    CREATE INDEX doc_index_branch ON doc_index (branch);
    CREATE TABLE audit (
        id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        at     bigint NOT NULL,
        actor  text   NOT NULL,
        action text   NOT NULL,
        detail text   NOT NULL
    );
";

/// Open challenges kept per device (the newest); older ones are dropped.
const MAX_OPEN_CHALLENGES_PER_DEVICE: i64 = 16;

/// The roster tables of one [`PostgresStore`]. Cheap to clone.
#[derive(Debug, Clone)]
pub struct PgRoster {
    store: PostgresStore,
}

impl PostgresStore {
    /// The roster tables in this store's database.
    pub fn roster(&self) -> PgRoster {
        PgRoster { store: self.clone() }
    }

    /// The same, as the relay shares it.
    pub fn shared_roster(&self) -> Arc<dyn RosterStore> {
        Arc::new(self.roster())
    }
}

/// The payload of a roster notification from `node`.
pub(super) fn kick_payload(kick: Kick, node: &str) -> String {
    match kick {
        Kick::Device(d) => format!("device {d} {node}"),
        Kick::Member(m) => format!("member {m} {node}"),
    }
}

/// Reads a roster notification: the kick, and the node that sent it.
pub(super) fn parse_kick(payload: &str) -> Option<(Kick, &str)> {
    let mut parts = payload.splitn(3, ' ');
    let (kind, id, node) = (parts.next()?, parts.next()?, parts.next()?);
    let kick = match kind {
        "device" => Kick::Device(id.parse().ok()?),
        "member" => Kick::Member(id.parse().ok()?),
        _ => return None,
    };
    Some((kick, node))
}

/// A connection inside `BEGIN`. Committed by [`Tx::commit`]; dropped without it (an error on the
/// way), its connection is closed rather than pooled, which rolls the transaction back.
struct Tx {
    conn: Pooled,
    open: bool,
}

impl Tx {
    /// Begins a transaction on a pooled connection, or on a new one if the pooled one turns out
    /// dead (nothing has been sent in the transaction yet, so trying again is safe).
    async fn begin(inner: &Arc<Inner>) -> Result<Self, StoreError> {
        let mut conn = inner.get(false).await?;
        if let Err(e) = conn.client().batch_execute("BEGIN").await {
            match classify(e) {
                StoreError::Unavailable { detail } if conn.reused => {
                    tracing::debug!(detail, "a pooled PostgreSQL connection failed; retrying on a new one");
                    drop(conn);
                    conn = inner.get(true).await?;
                    conn.client().batch_execute("BEGIN").await.map_err(classify)?;
                }
                other => return Err(other),
            }
        }
        Ok(Self { conn, open: true })
    }

    fn client(&mut self) -> &Client {
        self.conn.client()
    }

    async fn commit(mut self) -> Result<(), StoreError> {
        self.client().batch_execute("COMMIT").await.map_err(classify)?;
        self.open = false;
        Ok(())
    }

    /// Rolls back and keeps the connection (for refusals that are not connection failures).
    async fn rollback(mut self) -> Result<(), StoreError> {
        self.client().batch_execute("ROLLBACK").await.map_err(classify)?;
        self.open = false;
        Ok(())
    }

    /// Notifies the other relays of `kick` when (and only if) this transaction commits.
    async fn notify(&mut self, kick: Kick) -> Result<(), StoreError> {
        let payload = kick_payload(kick, &self.conn.inner.node);
        self.client()
            .execute("SELECT pg_notify($1, $2)", &[&ROSTER_CHANNEL, &payload])
            .await
            .map_err(classify)?;
        Ok(())
    }
}

impl Drop for Tx {
    fn drop(&mut self) {
        if self.open {
            // Never back into the pool mid-transaction: closing the connection rolls it back.
            drop(self.conn.client.take());
        }
    }
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt { detail: format!("{what} in the roster") }
}

fn id16<T>(bytes: Vec<u8>, make: fn([u8; 16]) -> T) -> Result<T, StoreError> {
    let got = bytes.len();
    <[u8; 16]>::try_from(bytes).map(make).map_err(|_| corrupt(&format!("a {got} byte id")))
}

fn opt_id16<T>(bytes: Option<Vec<u8>>, make: fn([u8; 16]) -> T) -> Result<Option<T>, StoreError> {
    bytes.map(|b| id16(b, make)).transpose()
}

fn hash32(bytes: Vec<u8>, what: &str) -> Result<[u8; 32], StoreError> {
    <[u8; 32]>::try_from(bytes).map_err(|b| corrupt(&format!("a {} byte {what}", b.len())))
}

fn role(s: &str) -> Result<Role, StoreError> {
    s.parse().map_err(|e: chibo_shared::access::UnknownRole| corrupt(&e.to_string()))
}

fn col<'a, T: tokio_postgres::types::FromSql<'a>>(r: &'a Row, i: usize) -> Result<T, StoreError> {
    r.try_get(i).map_err(classify)
}

fn unit_row(r: &Row) -> Result<UnitRecord, StoreError> {
    let kind: &str = col(r, 2)?;
    Ok(UnitRecord {
        id: id16(col(r, 0)?, UnitId::from_bytes)?,
        parent: opt_id16(col(r, 1)?, UnitId::from_bytes)?,
        kind: UnitKind::parse(kind).ok_or_else(|| corrupt(&format!("a unit kind {kind:?}")))?,
        name: col(r, 3)?,
    })
}

fn member_row(r: &Row) -> Result<MemberRecord, StoreError> {
    Ok(MemberRecord {
        id: id16(col(r, 0)?, MemberId::from_bytes)?,
        unit: id16(col(r, 1)?, UnitId::from_bytes)?,
        name: col(r, 2)?,
        role: role(col(r, 3)?)?,
    })
}

fn device_row(r: &Row) -> Result<DeviceRecord, StoreError> {
    Ok(DeviceRecord {
        id: id16(col(r, 0)?, DeviceId::from_bytes)?,
        member: id16(col(r, 1)?, MemberId::from_bytes)?,
        public_key: hash32(col(r, 2)?, "public key")?,
        actor: col(r, 3)?,
        label: col(r, 4)?,
        enrolled_at: col(r, 5)?,
        revoked_at: col(r, 6)?,
    })
}

fn invite_row(r: &Row) -> Result<InviteRecord, StoreError> {
    let failed: i32 = col(r, 10)?;
    Ok(InviteRecord {
        lookup: col(r, 0)?,
        secret_hash: hash32(col(r, 1)?, "secret hash")?,
        unit: id16(col(r, 2)?, UnitId::from_bytes)?,
        role: role(col(r, 3)?)?,
        name: col(r, 4)?,
        member: opt_id16(col(r, 5)?, MemberId::from_bytes)?,
        created_by: opt_id16(col(r, 6)?, MemberId::from_bytes)?,
        created_at: col(r, 7)?,
        expires_at: col(r, 8)?,
        used_at: col(r, 9)?,
        failed_attempts: u32::try_from(failed).map_err(|_| corrupt("a negative attempt count"))?,
    })
}

fn bytes<T: AsRef<[u8]>>(id: Option<T>) -> Option<Vec<u8>> {
    id.map(|b| b.as_ref().to_vec())
}

impl PgRoster {
    /// Every row `sql` returns for `params`, mapped by `row`. Reads may run twice (see
    /// `with_connection!`).
    async fn rows<T>(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
        row: fn(&Row) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let rows = with_connection!(self.store.inner, client => {
            client.query(sql, params).await.map_err(classify)
        })?;
        rows.iter().map(row).collect()
    }

    async fn row<T>(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
        row: fn(&Row) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        let mut found = self.rows(sql, params, row).await?;
        Ok(found.pop())
    }

    /// Runs one statement in its own transaction, with `kick` notified on commit.
    async fn exec(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
        kick: Option<Kick>,
    ) -> Result<u64, StoreError> {
        let mut tx = Tx::begin(&self.store.inner).await?;
        let n = tx.client().execute(sql, params).await.map_err(classify)?;
        if let Some(kick) = kick {
            tx.notify(kick).await?;
        }
        tx.commit().await?;
        Ok(n)
    }
}

#[async_trait]
impl RosterStore for PgRoster {
    async fn insert_unit(&self, unit: UnitRecord, now: i64) -> Result<(), StoreError> {
        let parent = bytes(unit.parent.map(|p| *p.as_bytes()));
        self.exec(
            "INSERT INTO units (id, parent, kind, name, created_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (id) DO NOTHING",
            &[&unit.id.as_bytes().as_slice(), &parent, &unit.kind.as_str(), &unit.name, &now],
            None,
        )
        .await
        .map(drop)
    }

    async fn units(&self) -> Result<Vec<UnitRecord>, StoreError> {
        self.rows(&format!("SELECT {UNIT_COLS} FROM units"), &[], unit_row).await
    }

    async fn unit(&self, id: UnitId) -> Result<Option<UnitRecord>, StoreError> {
        self.row(
            &format!("SELECT {UNIT_COLS} FROM units WHERE id = $1"),
            &[&id.as_bytes().as_slice()],
            unit_row,
        )
        .await
    }

    async fn insert_invite(&self, invite: InviteRecord) -> Result<bool, StoreError> {
        let n = self
            .exec(
                "INSERT INTO invites (lookup, secret_hash, unit, role, name, member, created_by,
                     created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT (lookup) DO NOTHING",
                &[
                    &invite.lookup,
                    &invite.secret_hash.as_slice(),
                    &invite.unit.as_bytes().as_slice(),
                    &invite.role.as_str(),
                    &invite.name,
                    &bytes(invite.member.map(|m| *m.as_bytes())),
                    &bytes(invite.created_by.map(|m| *m.as_bytes())),
                    &invite.created_at,
                    &invite.expires_at,
                ],
                None,
            )
            .await?;
        Ok(n == 1)
    }

    async fn invite(&self, lookup: String) -> Result<Option<InviteRecord>, StoreError> {
        self.row(&format!("SELECT {INVITE_COLS} FROM invites WHERE lookup = $1"), &[&lookup], invite_row)
            .await
    }

    async fn invite_failed(&self, lookup: String) -> Result<u32, StoreError> {
        // One statement: the row lock serialises concurrent failures, each counted once.
        let mut tx = Tx::begin(&self.store.inner).await?;
        let row = tx
            .client()
            .query_opt(
                "UPDATE invites SET failed_attempts = failed_attempts + 1 WHERE lookup = $1
                 RETURNING failed_attempts",
                &[&lookup],
            )
            .await
            .map_err(classify)?;
        tx.commit().await?;
        let count: i32 = match row {
            Some(r) => col(&r, 0)?,
            None => 0,
        };
        u32::try_from(count).map_err(|_| corrupt("a negative attempt count"))
    }

    async fn redeem(
        &self,
        lookup: String,
        now: i64,
        max_failures: u32,
        new_member: Option<MemberRecord>,
        device: DeviceRecord,
    ) -> Result<(), RedeemError> {
        let mut tx = Tx::begin(&self.store.inner).await?;
        // The row lock: a second relay redeeming the same invite (or counting a wrong secret for
        // it) waits here for this transaction, then reads `used_at` as committed.
        let state = tx
            .client()
            .query_opt(
                "SELECT used_at, expires_at, failed_attempts FROM invites WHERE lookup = $1 FOR UPDATE",
                &[&lookup],
            )
            .await
            .map_err(classify)?;
        let refusal = match &state {
            None => Some(RedeemError::Used),
            Some(r) => {
                let (used, expires, failed): (Option<i64>, i64, i32) = (col(r, 0)?, col(r, 1)?, col(r, 2)?);
                if used.is_some() {
                    Some(RedeemError::Used)
                } else if i64::from(failed) >= i64::from(max_failures) {
                    Some(RedeemError::Locked)
                } else if expires <= now {
                    Some(RedeemError::Expired)
                } else {
                    None
                }
            }
        };
        if let Some(refusal) = refusal {
            tx.rollback().await?;
            return Err(refusal);
        }
        let device_id = device.id.as_bytes().as_slice();
        tx.client()
            .execute(
                "UPDATE invites SET used_at = $2, used_by = $3 WHERE lookup = $1",
                &[&lookup, &now, &device_id],
            )
            .await
            .map_err(classify)?;
        if let Some(m) = new_member {
            tx.client()
                .execute(
                    "INSERT INTO members (id, unit, name, role, created_at) VALUES ($1, $2, $3, $4, $5)",
                    &[
                        &m.id.as_bytes().as_slice(),
                        &m.unit.as_bytes().as_slice(),
                        &m.name,
                        &m.role.as_str(),
                        &now,
                    ],
                )
                .await
                .map_err(classify)?;
        }
        let inserted = tx
            .client()
            .execute(
                "INSERT INTO devices (id, member, public_key, actor, label, enrolled_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    &device_id,
                    &device.member.as_bytes().as_slice(),
                    &device.public_key.as_slice(),
                    &device.actor,
                    &device.label,
                    &now,
                ],
            )
            .await;
        match inserted {
            Ok(_) => Ok(tx.commit().await?),
            Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
                tx.rollback().await?;
                Err(RedeemError::DuplicateDevice)
            }
            Err(e) => Err(classify(e).into()),
        }
    }

    async fn insert_member(&self, m: MemberRecord, now: i64) -> Result<(), StoreError> {
        self.exec(
            "INSERT INTO members (id, unit, name, role, created_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (id) DO NOTHING",
            &[&m.id.as_bytes().as_slice(), &m.unit.as_bytes().as_slice(), &m.name, &m.role.as_str(), &now],
            None,
        )
        .await
        .map(drop)
    }

    async fn member(&self, id: MemberId) -> Result<Option<MemberRecord>, StoreError> {
        self.row(
            &format!("SELECT {MEMBER_COLS} FROM members WHERE id = $1"),
            &[&id.as_bytes().as_slice()],
            member_row,
        )
        .await
    }

    async fn members_of(&self, unit: UnitId) -> Result<Vec<MemberRecord>, StoreError> {
        // `COLLATE "C"`: the byte order SQLite sorts text in, whatever the database's locale.
        self.rows(
            &format!("SELECT {MEMBER_COLS} FROM members WHERE unit = $1 ORDER BY name COLLATE \"C\""),
            &[&unit.as_bytes().as_slice()],
            member_row,
        )
        .await
    }

    async fn set_role(&self, member: MemberId, role: Role) -> Result<(), StoreError> {
        self.exec(
            "UPDATE members SET role = $2 WHERE id = $1",
            &[&member.as_bytes().as_slice(), &role.as_str()],
            Some(Kick::Member(member)),
        )
        .await
        .map(drop)
    }

    async fn clerk_of(&self, member: MemberId) -> Result<Vec<ForumId>, StoreError> {
        self.rows("SELECT forum FROM clerks WHERE member = $1", &[&member.as_bytes().as_slice()], |r| {
            id16(col(r, 0)?, ForumId::from_bytes)
        })
        .await
    }

    async fn set_clerk(&self, forum: ForumId, member: MemberId, clerk: bool) -> Result<(), StoreError> {
        let sql = if clerk {
            "INSERT INTO clerks (forum, member) VALUES ($1, $2) ON CONFLICT DO NOTHING"
        } else {
            "DELETE FROM clerks WHERE forum = $1 AND member = $2"
        };
        self.exec(
            sql,
            &[&forum.as_bytes().as_slice(), &member.as_bytes().as_slice()],
            Some(Kick::Member(member)),
        )
        .await
        .map(drop)
    }

    async fn device(&self, id: DeviceId) -> Result<Option<DeviceRecord>, StoreError> {
        self.row(
            &format!("SELECT {DEVICE_COLS} FROM devices WHERE id = $1"),
            &[&id.as_bytes().as_slice()],
            device_row,
        )
        .await
    }

    async fn devices_of(&self, member: MemberId) -> Result<Vec<DeviceRecord>, StoreError> {
        self.rows(
            &format!("SELECT {DEVICE_COLS} FROM devices WHERE member = $1 ORDER BY enrolled_at"),
            &[&member.as_bytes().as_slice()],
            device_row,
        )
        .await
    }

    async fn revoke_device(&self, id: DeviceId, now: i64) -> Result<bool, StoreError> {
        let id_bytes = id.as_bytes().as_slice();
        let mut tx = Tx::begin(&self.store.inner).await?;
        let n = tx
            .client()
            .execute(
                "UPDATE devices SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
                &[&id_bytes, &now],
            )
            .await
            .map_err(classify)?;
        tx.client()
            .execute("DELETE FROM sessions WHERE device = $1", &[&id_bytes])
            .await
            .map_err(classify)?;
        tx.notify(Kick::Device(id)).await?;
        tx.commit().await?;
        Ok(n == 1)
    }

    async fn put_challenge(
        &self,
        nonce: [u8; 32],
        device: DeviceId,
        now: i64,
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        let device = device.as_bytes().as_slice();
        let mut tx = Tx::begin(&self.store.inner).await?;
        tx.client()
            .execute("DELETE FROM challenges WHERE expires_at <= $1", &[&now])
            .await
            .map_err(classify)?;
        // Only for an enrolled, unrevoked device, and only its newest few: anyone may ask for a
        // challenge, so the table must not grow with what strangers ask.
        tx.client()
            .execute(
                "INSERT INTO challenges (nonce, device, expires_at)
                 SELECT $1, id, $3 FROM devices WHERE id = $2 AND revoked_at IS NULL",
                &[&nonce.as_slice(), &device, &expires_at],
            )
            .await
            .map_err(classify)?;
        tx.client()
            .execute(
                "DELETE FROM challenges WHERE device = $1 AND id NOT IN
                   (SELECT id FROM challenges WHERE device = $1 ORDER BY id DESC LIMIT $2)",
                &[&device, &MAX_OPEN_CHALLENGES_PER_DEVICE],
            )
            .await
            .map_err(classify)?;
        tx.commit().await?;
        Ok(true)
    }

    async fn take_challenge(&self, nonce: [u8; 32]) -> Result<Option<(DeviceId, i64)>, StoreError> {
        // One statement: of two relays taking the same nonce, one deletes the row and gets it.
        let mut tx = Tx::begin(&self.store.inner).await?;
        let row = tx
            .client()
            .query_opt(
                "DELETE FROM challenges WHERE nonce = $1 RETURNING device, expires_at",
                &[&nonce.as_slice()],
            )
            .await
            .map_err(classify)?;
        tx.commit().await?;
        row.map(|r| Ok((id16(col(&r, 0)?, DeviceId::from_bytes)?, col(&r, 1)?))).transpose()
    }

    async fn insert_session(
        &self,
        token_hash: [u8; 32],
        device: DeviceId,
        now: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let mut tx = Tx::begin(&self.store.inner).await?;
        tx.client()
            .execute("DELETE FROM sessions WHERE expires_at <= $1", &[&now])
            .await
            .map_err(classify)?;
        tx.client()
            .execute(
                "INSERT INTO sessions (token_hash, device, created_at, expires_at) VALUES ($1, $2, $3, $4)",
                &[&token_hash.as_slice(), &device.as_bytes().as_slice(), &now, &expires_at],
            )
            .await
            .map_err(classify)?;
        tx.commit().await
    }

    async fn session(&self, token_hash: [u8; 32]) -> Result<Option<(DeviceId, i64)>, StoreError> {
        self.row(
            "SELECT device, expires_at FROM sessions WHERE token_hash = $1",
            &[&token_hash.as_slice()],
            |r| Ok((id16(col(r, 0)?, DeviceId::from_bytes)?, col(r, 1)?)),
        )
        .await
    }

    async fn index_documents(&self, docs: Vec<(DocumentId, String, BranchId)>) -> Result<(), StoreError> {
        if docs.is_empty() {
            return Ok(());
        }
        let ids: Vec<&[u8]> = docs.iter().map(|(d, _, _)| d.as_bytes().as_slice()).collect();
        let paths: Vec<&str> = docs.iter().map(|(_, p, _)| p.as_str()).collect();
        let branches: Vec<&[u8]> = docs.iter().map(|(_, _, b)| b.as_bytes().as_slice()).collect();
        self.exec(
            "INSERT INTO doc_index (doc, path, branch)
             SELECT * FROM unnest($1::bytea[], $2::text[], $3::bytea[])
             ON CONFLICT (doc) DO NOTHING",
            &[&ids, &paths, &branches],
            None,
        )
        .await
        .map(drop)
    }

    async fn document_index(&self) -> Result<Vec<(DocumentId, String)>, StoreError> {
        self.rows("SELECT doc, path FROM doc_index", &[], |r| {
            Ok((id16(col(r, 0)?, DocumentId::from_bytes)?, col(r, 1)?))
        })
        .await
    }

    async fn document_paths(&self, docs: Vec<DocumentId>) -> Result<Vec<(DocumentId, String)>, StoreError> {
        if docs.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<&[u8]> = docs.iter().map(|d| d.as_bytes().as_slice()).collect();
        self.rows("SELECT doc, path FROM doc_index WHERE doc = ANY($1::bytea[])", &[&ids], |r| {
            Ok((id16(col(r, 0)?, DocumentId::from_bytes)?, col(r, 1)?))
        })
        .await
    }

    async fn paths_of_branch(&self, branch: BranchId) -> Result<Vec<String>, StoreError> {
        self.rows(
            "SELECT path FROM doc_index WHERE branch = $1 ORDER BY path COLLATE \"C\"",
            &[&branch.as_bytes().as_slice()],
            |r| col(r, 0),
        )
        .await
    }

    async fn audit(
        &self,
        at: i64,
        actor: String,
        action: &'static str,
        detail: String,
    ) -> Result<(), StoreError> {
        self.exec(
            "INSERT INTO audit (at, actor, action, detail) VALUES ($1, $2, $3, $4)",
            &[&at, &actor, &action, &detail],
            None,
        )
        .await
        .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roster_notifications_round_trip() {
        let d = DeviceId::from_bytes([7; 16]);
        let m = MemberId::from_bytes([9; 16]);
        for kick in [Kick::Device(d), Kick::Member(m)] {
            let payload = kick_payload(kick, "00ff");
            assert_eq!(parse_kick(&payload), Some((kick, "00ff")));
        }
        assert_eq!(parse_kick("unit x 00ff"), None);
        assert_eq!(parse_kick("device nope 00ff"), None);
        assert_eq!(parse_kick("device"), None);
    }
}
