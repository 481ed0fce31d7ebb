//! The roster's tables in the relay's SQLite database: units, members, devices, invites,
//! sessions, the document index and the audit log ([`RosterStore`] on SQLite). Plain typed reads
//! and writes; every decision (who may do what, code checks, expiry) is made by [`crate::roster`].
//!
//! Every write runs in an `IMMEDIATE` transaction on the one writer connection, so the checks
//! inside [`RosterStore::redeem`] hold against any concurrent writer.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use chibo_shared::access::Role;
use chibo_shared::ids::{BranchId, DeviceId, DocumentId, ForumId, MemberId, UnitId};
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use super::{SqliteStore, classify};
use crate::roster::{DeviceRecord, InviteRecord, MemberRecord, UnitKind, UnitRecord};
use crate::store::roster::{DEVICE_COLS, INVITE_COLS, MEMBER_COLS, RedeemError, RosterStore, UNIT_COLS};
use crate::store::{StoreError, blocking};

/// Migration v2 of the SQLite schema.
pub(super) const MIGRATION_V2: &str = "
    CREATE TABLE units (
        id         BLOB NOT NULL PRIMARY KEY CHECK (length(id) = 16),
        parent     BLOB REFERENCES units (id),
        kind       TEXT NOT NULL CHECK (kind IN ('committee', 'branch')),
        name       TEXT NOT NULL,
        created_at INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE members (
        id         BLOB NOT NULL PRIMARY KEY CHECK (length(id) = 16),
        unit       BLOB NOT NULL REFERENCES units (id),
        name       TEXT NOT NULL,
        role       TEXT NOT NULL,
        created_at INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX members_unit ON members (unit);
    CREATE TABLE clerks (
        forum  BLOB NOT NULL,
        member BLOB NOT NULL REFERENCES members (id),
        PRIMARY KEY (forum, member)
    ) WITHOUT ROWID;
    CREATE INDEX clerks_member ON clerks (member);
    CREATE TABLE devices (
        id          BLOB NOT NULL PRIMARY KEY CHECK (length(id) = 16),
        member      BLOB NOT NULL REFERENCES members (id),
        public_key  BLOB NOT NULL UNIQUE CHECK (length(public_key) = 32),
        actor       BLOB NOT NULL UNIQUE,
        label       TEXT NOT NULL,
        enrolled_at INTEGER NOT NULL,
        revoked_at  INTEGER
    ) WITHOUT ROWID;
    CREATE INDEX devices_member ON devices (member);
    -- Invite codes are <lookup>-<secret>; only a hash of the secret is kept.
    CREATE TABLE invites (
        lookup          TEXT NOT NULL PRIMARY KEY,
        secret_hash     BLOB NOT NULL,
        unit            BLOB NOT NULL REFERENCES units (id),
        role            TEXT NOT NULL,
        name            TEXT NOT NULL,
        member          BLOB REFERENCES members (id),
        created_by      BLOB,
        created_at      INTEGER NOT NULL,
        expires_at      INTEGER NOT NULL,
        used_at         INTEGER,
        used_by         BLOB,
        failed_attempts INTEGER NOT NULL DEFAULT 0
    ) WITHOUT ROWID;
    -- Session tokens for /sync and the API; only a hash of the token is kept.
    CREATE TABLE sessions (
        token_hash BLOB NOT NULL PRIMARY KEY,
        device     BLOB NOT NULL REFERENCES devices (id),
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
    ) WITHOUT ROWID;
    -- Which document is which: document ids are hashes of canonical paths.
    CREATE TABLE doc_index (
        doc    BLOB NOT NULL PRIMARY KEY CHECK (length(doc) = 16),
        path   TEXT NOT NULL,
        branch BLOB NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX doc_index_branch ON doc_index (branch);
    CREATE TABLE audit (
        id     INTEGER PRIMARY KEY,
        at     INTEGER NOT NULL,
        actor  TEXT NOT NULL,
        action TEXT NOT NULL,
        detail TEXT NOT NULL
    );
";

/// The roster tables of one [`SqliteStore`]. Cheap to clone; every handle on one store shares
/// its open challenges (they live in the store).
#[derive(Debug, Clone)]
pub struct RosterDb {
    store: SqliteStore,
}

/// Open challenges kept in memory: a SQLite relay is one process, which answers its own (and the
/// schema stays as it is). Bounded: past [`MAX_OPEN_CHALLENGES`] new ones are refused.
#[derive(Default)]
pub(super) struct OpenChallenges(Mutex<HashMap<[u8; 32], (DeviceId, i64)>>);

/// Open challenges one SQLite relay keeps at most.
const MAX_OPEN_CHALLENGES: usize = 100_000;

impl std::fmt::Debug for OpenChallenges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the nonces.
        let open = self.0.lock().map_or(0, |m| m.len());
        f.debug_struct("OpenChallenges").field("open", &open).finish()
    }
}

fn id16<T>(bytes: Vec<u8>, make: fn([u8; 16]) -> T) -> rusqlite::Result<T> {
    <[u8; 16]>::try_from(bytes).map(make).map_err(|b| {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Blob,
            format!("{} byte id", b.len()).into(),
        )
    })
}

fn role(s: String) -> rusqlite::Result<Role> {
    s.parse().map_err(|e: chibo_shared::access::UnknownRole| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

fn unit_row(r: &Row<'_>) -> rusqlite::Result<UnitRecord> {
    let kind: String = r.get(2)?;
    Ok(UnitRecord {
        id: id16(r.get(0)?, UnitId::from_bytes)?,
        parent: r.get::<_, Option<Vec<u8>>>(1)?.map(|b| id16(b, UnitId::from_bytes)).transpose()?,
        kind: UnitKind::parse(&kind).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                2,
                rusqlite::types::Type::Text,
                format!("unit kind {kind:?}").into(),
            )
        })?,
        name: r.get(3)?,
    })
}

fn member_row(r: &Row<'_>) -> rusqlite::Result<MemberRecord> {
    Ok(MemberRecord {
        id: id16(r.get(0)?, MemberId::from_bytes)?,
        unit: id16(r.get(1)?, UnitId::from_bytes)?,
        name: r.get(2)?,
        role: role(r.get(3)?)?,
    })
}

fn device_row(r: &Row<'_>) -> rusqlite::Result<DeviceRecord> {
    let key: Vec<u8> = r.get(2)?;
    Ok(DeviceRecord {
        id: id16(r.get(0)?, DeviceId::from_bytes)?,
        member: id16(r.get(1)?, MemberId::from_bytes)?,
        public_key: <[u8; 32]>::try_from(key).map_err(|_| {
            rusqlite::Error::FromSqlConversionFailure(
                2,
                rusqlite::types::Type::Blob,
                "public key length".into(),
            )
        })?,
        actor: r.get(3)?,
        label: r.get(4)?,
        enrolled_at: r.get(5)?,
        revoked_at: r.get(6)?,
    })
}

fn invite_row(r: &Row<'_>) -> rusqlite::Result<InviteRecord> {
    let hash: Vec<u8> = r.get(1)?;
    Ok(InviteRecord {
        lookup: r.get(0)?,
        secret_hash: <[u8; 32]>::try_from(hash).map_err(|_| {
            rusqlite::Error::FromSqlConversionFailure(1, rusqlite::types::Type::Blob, "hash length".into())
        })?,
        unit: id16(r.get(2)?, UnitId::from_bytes)?,
        role: role(r.get(3)?)?,
        name: r.get(4)?,
        member: r.get::<_, Option<Vec<u8>>>(5)?.map(|b| id16(b, MemberId::from_bytes)).transpose()?,
        created_by: r.get::<_, Option<Vec<u8>>>(6)?.map(|b| id16(b, MemberId::from_bytes)).transpose()?,
        created_at: r.get(7)?,
        expires_at: r.get(8)?,
        used_at: r.get(9)?,
        failed_attempts: r.get(10)?,
    })
}

impl RosterDb {
    pub(super) fn new(store: SqliteStore) -> Self {
        Self { store }
    }

    /// Runs `f` on a read connection, off the async runtime.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = self.store.inner.clone();
        blocking(move || inner.with_reader(|conn| f(conn).map_err(classify(&inner.path)))).await
    }

    /// Runs `f` in one write transaction (committed if it returns `Ok`), off the async runtime.
    async fn write<T: Send + 'static, E: From<StoreError> + Send + 'static>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E> {
        let inner = self.store.inner.clone();
        let joined = tokio::task::spawn_blocking(move || {
            let err = classify(&inner.path);
            let mut conn = inner.writer();
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(&err)?;
            let out = f(&tx)?;
            tx.commit().map_err(&err)?;
            Ok(out)
        })
        .await;
        joined.map_err(|e| E::from(StoreError::TaskFailed(e)))?
    }

    async fn exec(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<()> + Send + 'static,
    ) -> Result<(), StoreError> {
        let path = self.store.inner.path.clone();
        self.write(move |tx| f(tx).map_err(classify(&path))).await
    }
}

#[async_trait]
impl RosterStore for RosterDb {
    async fn insert_unit(&self, unit: UnitRecord, now: i64) -> Result<(), StoreError> {
        self.exec(move |tx| {
            let kind = unit.kind.as_str();
            tx.execute(
                "INSERT INTO units (id, parent, kind, name, created_at) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (id) DO NOTHING",
                params![unit.id.as_bytes(), unit.parent.map(|p| p.as_bytes().to_vec()), kind, unit.name, now],
            )
            .map(drop)
        })
        .await
    }

    async fn units(&self) -> Result<Vec<UnitRecord>, StoreError> {
        self.read(|c| {
            c.prepare_cached(&format!("SELECT {UNIT_COLS} FROM units"))?.query_map([], unit_row)?.collect()
        })
        .await
    }

    async fn unit(&self, id: UnitId) -> Result<Option<UnitRecord>, StoreError> {
        self.read(move |c| {
            c.prepare_cached(&format!("SELECT {UNIT_COLS} FROM units WHERE id = ?1"))?
                .query_row(params![id.as_bytes()], unit_row)
                .optional()
        })
        .await
    }

    /// Stores an invite; `false` if its lookup is taken (the caller draws another code).
    async fn insert_invite(&self, invite: InviteRecord) -> Result<bool, StoreError> {
        let path = self.store.inner.path.clone();
        self.write(move |tx| {
            let n = tx
                .execute(
                    "INSERT OR IGNORE INTO invites (lookup, secret_hash, unit, role, name, member, created_by,
                         created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                    params![
                        invite.lookup,
                        invite.secret_hash,
                        invite.unit.as_bytes(),
                        invite.role.as_str(),
                        invite.name,
                        invite.member.map(|m| m.as_bytes().to_vec()),
                        invite.created_by.map(|m| m.as_bytes().to_vec()),
                        invite.created_at,
                        invite.expires_at,
                    ],
                )
                .map_err(classify(&path))?;
            Ok::<_, StoreError>(n == 1)
        })
        .await
    }

    async fn invite(&self, lookup: String) -> Result<Option<InviteRecord>, StoreError> {
        self.read(move |c| {
            c.prepare_cached(&format!("SELECT {INVITE_COLS} FROM invites WHERE lookup = ?1"))?
                .query_row(params![lookup], invite_row)
                .optional()
        })
        .await
    }

    /// Counts one more wrong secret against an invite; returns the new count.
    async fn invite_failed(&self, lookup: String) -> Result<u32, StoreError> {
        let path = self.store.inner.path.clone();
        self.write(move |tx| {
            tx.query_row(
                "UPDATE invites SET failed_attempts = failed_attempts + 1 WHERE lookup = ?1
                 RETURNING failed_attempts",
                params![lookup],
                |r| r.get(0),
            )
            .optional()
            .map(Option::unwrap_or_default)
            .map_err(classify(&path))
        })
        .await
    }

    /// Marks the invite used and enrols the device (and the new member, if any) in one
    /// transaction, re-checking under the write lock that the invite is still unused and unexpired.
    async fn redeem(
        &self,
        lookup: String,
        now: i64,
        max_failures: u32,
        new_member: Option<MemberRecord>,
        device: DeviceRecord,
    ) -> Result<(), RedeemError> {
        let path = self.store.inner.path.clone();
        self.write(move |tx| {
            let err = classify(&path);
            let state: Option<(Option<i64>, i64, u32)> = tx
                .query_row(
                    "SELECT used_at, expires_at, failed_attempts FROM invites WHERE lookup = ?1",
                    params![lookup],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()
                .map_err(&err)?;
            match state {
                None | Some((Some(_), _, _)) => return Err(RedeemError::Used),
                Some((None, _, failed)) if failed >= max_failures => return Err(RedeemError::Locked),
                Some((None, expires, _)) if expires <= now => return Err(RedeemError::Expired),
                Some(_) => {}
            }
            tx.execute(
                "UPDATE invites SET used_at = ?2, used_by = ?3 WHERE lookup = ?1",
                params![lookup, now, device.id.as_bytes()],
            )
            .map_err(&err)?;
            if let Some(m) = new_member {
                tx.execute(
                    "INSERT INTO members (id, unit, name, role, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![m.id.as_bytes(), m.unit.as_bytes(), m.name, m.role.as_str(), now],
                )
                .map_err(&err)?;
            }
            let inserted = tx.execute(
                "INSERT INTO devices (id, member, public_key, actor, label, enrolled_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    device.id.as_bytes(),
                    device.member.as_bytes(),
                    device.public_key,
                    device.actor,
                    device.label,
                    now
                ],
            );
            match inserted {
                Ok(_) => Ok(()),
                Err(rusqlite::Error::SqliteFailure(f, _))
                    if f.code == rusqlite::ErrorCode::ConstraintViolation =>
                {
                    Err(RedeemError::DuplicateDevice)
                }
                Err(e) => Err(err(e).into()),
            }
        })
        .await
    }

    /// Adds a member directly (the demo roster; real members join through invites).
    async fn insert_member(&self, m: MemberRecord, now: i64) -> Result<(), StoreError> {
        self.exec(move |tx| {
            tx.execute(
                "INSERT OR IGNORE INTO members (id, unit, name, role, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![m.id.as_bytes(), m.unit.as_bytes(), m.name, m.role.as_str(), now],
            )
            .map(drop)
        })
        .await
    }

    async fn member(&self, id: MemberId) -> Result<Option<MemberRecord>, StoreError> {
        self.read(move |c| {
            c.prepare_cached(&format!("SELECT {MEMBER_COLS} FROM members WHERE id = ?1"))?
                .query_row(params![id.as_bytes()], member_row)
                .optional()
        })
        .await
    }

    async fn members_of(&self, unit: UnitId) -> Result<Vec<MemberRecord>, StoreError> {
        self.read(move |c| {
            c.prepare_cached(&format!("SELECT {MEMBER_COLS} FROM members WHERE unit = ?1 ORDER BY name"))?
                .query_map(params![unit.as_bytes()], member_row)?
                .collect()
        })
        .await
    }

    async fn set_role(&self, member: MemberId, role: Role) -> Result<(), StoreError> {
        self.exec(move |tx| {
            tx.execute(
                "UPDATE members SET role = ?2 WHERE id = ?1",
                params![member.as_bytes(), role.as_str()],
            )
            .map(drop)
        })
        .await
    }

    async fn clerk_of(&self, member: MemberId) -> Result<Vec<ForumId>, StoreError> {
        self.read(move |c| {
            c.prepare_cached("SELECT forum FROM clerks WHERE member = ?1")?
                .query_map(params![member.as_bytes()], |r| id16(r.get(0)?, ForumId::from_bytes))?
                .collect()
        })
        .await
    }

    async fn set_clerk(&self, forum: ForumId, member: MemberId, clerk: bool) -> Result<(), StoreError> {
        self.exec(move |tx| {
            let sql = if clerk {
                "INSERT OR IGNORE INTO clerks (forum, member) VALUES (?1, ?2)"
            } else {
                "DELETE FROM clerks WHERE forum = ?1 AND member = ?2"
            };
            tx.execute(sql, params![forum.as_bytes(), member.as_bytes()]).map(drop)
        })
        .await
    }

    async fn device(&self, id: DeviceId) -> Result<Option<DeviceRecord>, StoreError> {
        self.read(move |c| {
            c.prepare_cached(&format!("SELECT {DEVICE_COLS} FROM devices WHERE id = ?1"))?
                .query_row(params![id.as_bytes()], device_row)
                .optional()
        })
        .await
    }

    async fn devices_of(&self, member: MemberId) -> Result<Vec<DeviceRecord>, StoreError> {
        self.read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {DEVICE_COLS} FROM devices WHERE member = ?1 ORDER BY enrolled_at"
            ))?
            .query_map(params![member.as_bytes()], device_row)?
            .collect()
        })
        .await
    }

    /// Revokes a device and drops its sessions; `false` if it was unknown or already revoked.
    async fn revoke_device(&self, id: DeviceId, now: i64) -> Result<bool, StoreError> {
        let path = self.store.inner.path.clone();
        self.write(move |tx| {
            let err = classify(&path);
            let n = tx
                .execute(
                    "UPDATE devices SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
                    params![id.as_bytes(), now],
                )
                .map_err(&err)?;
            tx.execute("DELETE FROM sessions WHERE device = ?1", params![id.as_bytes()]).map_err(&err)?;
            Ok::<_, StoreError>(n == 1)
        })
        .await
    }

    async fn put_challenge(
        &self,
        nonce: [u8; 32],
        device: DeviceId,
        now: i64,
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        let mut open =
            self.store.inner.challenges.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        open.retain(|_, (_, until)| *until > now);
        if open.len() >= MAX_OPEN_CHALLENGES {
            return Ok(false);
        }
        open.insert(nonce, (device, expires_at));
        Ok(true)
    }

    async fn take_challenge(&self, nonce: [u8; 32]) -> Result<Option<(DeviceId, i64)>, StoreError> {
        Ok(self
            .store
            .inner
            .challenges
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&nonce))
    }

    async fn insert_session(
        &self,
        token_hash: [u8; 32],
        device: DeviceId,
        now: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        self.exec(move |tx| {
            tx.execute("DELETE FROM sessions WHERE expires_at <= ?1", params![now])?;
            tx.execute(
                "INSERT INTO sessions (token_hash, device, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
                params![token_hash, device.as_bytes(), now, expires_at],
            )
            .map(drop)
        })
        .await
    }

    /// The device and expiry of a session token hash.
    async fn session(&self, token_hash: [u8; 32]) -> Result<Option<(DeviceId, i64)>, StoreError> {
        self.read(move |c| {
            c.prepare_cached("SELECT device, expires_at FROM sessions WHERE token_hash = ?1")?
                .query_row(params![token_hash], |r| Ok((id16(r.get(0)?, DeviceId::from_bytes)?, r.get(1)?)))
                .optional()
        })
        .await
    }

    /// Records which documents are which (idempotent).
    async fn index_documents(&self, docs: Vec<(DocumentId, String, BranchId)>) -> Result<(), StoreError> {
        self.exec(move |tx| {
            let mut put =
                tx.prepare_cached("INSERT OR IGNORE INTO doc_index (doc, path, branch) VALUES (?1, ?2, ?3)")?;
            for (doc, path, branch) in &docs {
                put.execute(params![doc.as_bytes(), path, branch.as_bytes()])?;
            }
            Ok(())
        })
        .await
    }

    /// Every indexed document and its canonical path.
    async fn document_index(&self) -> Result<Vec<(DocumentId, String)>, StoreError> {
        self.read(|c| {
            c.prepare_cached("SELECT doc, path FROM doc_index")?
                .query_map([], |r| Ok((id16(r.get(0)?, DocumentId::from_bytes)?, r.get(1)?)))?
                .collect()
        })
        .await
    }

    async fn document_paths(&self, docs: Vec<DocumentId>) -> Result<Vec<(DocumentId, String)>, StoreError> {
        self.read(move |c| {
            let mut get = c.prepare_cached("SELECT path FROM doc_index WHERE doc = ?1")?;
            let mut found = Vec::new();
            for doc in docs {
                if let Some(path) = get.query_row(params![doc.as_bytes()], |r| r.get(0)).optional()? {
                    found.push((doc, path));
                }
            }
            Ok(found)
        })
        .await
    }

    async fn paths_of_branch(&self, branch: BranchId) -> Result<Vec<String>, StoreError> {
        self.read(move |c| {
            c.prepare_cached("SELECT path FROM doc_index WHERE branch = ?1 ORDER BY path")?
                .query_map(params![branch.as_bytes()], |r| r.get(0))?
                .collect()
        })
        .await
    }

    async fn audit(
        &self,
        at: i64,
        actor: String,
        action: &'static str,
        detail: String,
    ) -> Result<(), StoreError> {
        self.exec(move |tx| {
            tx.execute(
                "INSERT INTO audit (at, actor, action, detail) VALUES (?1, ?2, ?3, ?4)",
                params![at, actor, action, detail],
            )
            .map(drop)
        })
        .await
    }
}

impl SqliteStore {
    /// The roster tables in this store's database.
    pub fn roster(&self) -> RosterDb {
        RosterDb::new(self.clone())
    }

    /// The same, as the relay shares it.
    pub fn shared_roster(&self) -> std::sync::Arc<dyn RosterStore> {
        std::sync::Arc::new(self.roster())
    }
}
