//! Where the roster lives: the [`RosterStore`] trait over the roster's tables (units, members,
//! clerks, devices, invites, open challenges, sessions, the document index, the audit log), one
//! implementation
//! per backend: [`super::sqlite::roster::RosterDb`] (the relay's SQLite file) and
//! [`super::postgres::roster::PgRoster`] (a PostgreSQL database several relays share).
//!
//! Plain typed reads and writes; every decision (who may do what, code checks, expiry) is made by
//! [`crate::roster`]. Both backends have the same tables and constraints, and the same semantics:
//! the checks that must hold against concurrent callers (an invite redeemed once, wrong secrets
//! counted exactly) are made inside one transaction of the store, never read-then-write by the
//! caller.

use async_trait::async_trait;
use chibo_shared::access::Role;
use chibo_shared::ids::{BranchId, DeviceId, DocumentId, ForumId, MemberId, UnitId};

use super::StoreError;
use crate::roster::{DeviceRecord, InviteRecord, MemberRecord, UnitRecord};

/// The columns each backend reads its records from, in the order its row mappers expect: the
/// tables are the same on SQLite and PostgreSQL.
pub(crate) const UNIT_COLS: &str = "id, parent, kind, name";
pub(crate) const MEMBER_COLS: &str = "id, unit, name, role";
pub(crate) const DEVICE_COLS: &str = "id, member, public_key, actor, label, enrolled_at, revoked_at";
pub(crate) const INVITE_COLS: &str = "lookup, secret_hash, unit, role, name, member, created_by, created_at, expires_at, used_at, failed_attempts";

/// Why an invite could not be redeemed inside the transaction that redeems it.
#[derive(Debug, thiserror::Error)]
pub enum RedeemError {
    #[error("the invite is already used")]
    Used,
    #[error("the invite has expired")]
    Expired,
    #[error("the invite is locked after too many wrong secrets")]
    Locked,
    #[error("this public key or actor id is already enrolled")]
    DuplicateDevice,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The roster's tables. Implementations are cheap to share (`Arc<dyn RosterStore>`) and never
/// block the async runtime.
///
/// Changes that alter what a live connection may do ([`RosterStore::set_role`],
/// [`RosterStore::set_clerk`], [`RosterStore::revoke_device`]) are closed on this process by the
/// caller (`Relay::kick`); a store shared by several processes also tells the others, on commit
/// (see [`crate::store::StoreEvent::RosterChanged`]).
#[async_trait]
pub trait RosterStore: Send + Sync + std::fmt::Debug + 'static {
    /// Adds a unit; an existing unit with the same id is kept as it is.
    async fn insert_unit(&self, unit: UnitRecord, now: i64) -> Result<(), StoreError>;

    async fn units(&self) -> Result<Vec<UnitRecord>, StoreError>;

    async fn unit(&self, id: UnitId) -> Result<Option<UnitRecord>, StoreError>;

    /// Stores an invite; `false` if its lookup is taken (the caller draws another code).
    async fn insert_invite(&self, invite: InviteRecord) -> Result<bool, StoreError>;

    async fn invite(&self, lookup: String) -> Result<Option<InviteRecord>, StoreError>;

    /// Counts one more wrong secret against an invite, atomically; returns the new count (0 if
    /// the invite is unknown).
    async fn invite_failed(&self, lookup: String) -> Result<u32, StoreError>;

    /// Marks the invite used and enrols the device (and the new member, if any) in one
    /// transaction, re-checking under a lock that the invite is still unused, unexpired and has
    /// fewer than `max_failures` wrong secrets counted: of two concurrent redemptions, one
    /// succeeds and the other gets [`RedeemError::Used`]; a right secret whose check raced with
    /// the guess that locked the invite gets [`RedeemError::Locked`].
    async fn redeem(
        &self,
        lookup: String,
        now: i64,
        max_failures: u32,
        new_member: Option<MemberRecord>,
        device: DeviceRecord,
    ) -> Result<(), RedeemError>;

    /// Adds a member directly (the demo roster; real members join through invites); an existing
    /// member with the same id is kept.
    async fn insert_member(&self, m: MemberRecord, now: i64) -> Result<(), StoreError>;

    async fn member(&self, id: MemberId) -> Result<Option<MemberRecord>, StoreError>;

    /// A unit's members, by name.
    async fn members_of(&self, unit: UnitId) -> Result<Vec<MemberRecord>, StoreError>;

    async fn set_role(&self, member: MemberId, role: Role) -> Result<(), StoreError>;

    /// The forums `member` clerks.
    async fn clerk_of(&self, member: MemberId) -> Result<Vec<ForumId>, StoreError>;

    async fn set_clerk(&self, forum: ForumId, member: MemberId, clerk: bool) -> Result<(), StoreError>;

    async fn device(&self, id: DeviceId) -> Result<Option<DeviceRecord>, StoreError>;

    /// A member's devices, oldest first.
    async fn devices_of(&self, member: MemberId) -> Result<Vec<DeviceRecord>, StoreError>;

    /// Revokes a device and drops its sessions; `false` if it was unknown or already revoked.
    async fn revoke_device(&self, id: DeviceId, now: i64) -> Result<bool, StoreError>;

    /// Records a single-use challenge `nonce` for `device`, open until `expires_at`, and forgets
    /// challenges expired by `now`; `false` if too many are open (the caller refuses, rate
    /// limited). A shared store keeps them in the database, so any relay can check the answer;
    /// it may silently drop a challenge for a device it does not know (answering it then fails
    /// as it would anyway).
    async fn put_challenge(
        &self,
        nonce: [u8; 32],
        device: DeviceId,
        now: i64,
        expires_at: i64,
    ) -> Result<bool, StoreError>;

    /// Takes a challenge out (whatever the answer, it is used up): the device it was issued to and
    /// until when it was open, if it was open. Of two concurrent takes of one nonce, one gets it.
    async fn take_challenge(&self, nonce: [u8; 32]) -> Result<Option<(DeviceId, i64)>, StoreError>;

    /// Stores a session (by the hash of its token) and drops sessions expired by `now`.
    async fn insert_session(
        &self,
        token_hash: [u8; 32],
        device: DeviceId,
        now: i64,
        expires_at: i64,
    ) -> Result<(), StoreError>;

    /// The device and expiry of a session token hash.
    async fn session(&self, token_hash: [u8; 32]) -> Result<Option<(DeviceId, i64)>, StoreError>;

    /// Records which documents are which (idempotent).
    async fn index_documents(&self, docs: Vec<(DocumentId, String, BranchId)>) -> Result<(), StoreError>;

    /// Every indexed document and its canonical path.
    async fn document_index(&self) -> Result<Vec<(DocumentId, String)>, StoreError>;

    /// The canonical paths of those of `docs` that are indexed (the others are left out).
    async fn document_paths(&self, docs: Vec<DocumentId>) -> Result<Vec<(DocumentId, String)>, StoreError>;

    /// The canonical paths of one branch's indexed documents.
    async fn paths_of_branch(&self, branch: BranchId) -> Result<Vec<String>, StoreError>;

    /// Appends to the audit log.
    async fn audit(
        &self,
        at: i64,
        actor: String,
        action: &'static str,
        detail: String,
    ) -> Result<(), StoreError>;
}
