//! The roster: units, members and their roles, devices, invites and sessions — who may connect,
//! and as whom. Server-authoritative relational data (never a CRDT: who may write is not
//! something a merge may decide), stored in the relay's database through
//! [`crate::store::roster::RosterStore`] (SQLite or PostgreSQL).
//!
//! Credentials are kept hashed: an invite code's secret part and a session token are stored only
//! as SHA-256 digests; a device is known by its Ed25519 public key. Enrolment attempts are rate
//! limited per client address and per invite (see [`Limits`]).
//!
//! Flow: the admin creates units and invites the first secretary (CLI); the secretary invites
//! members (API). A device redeems an invite code with its public key and automerge actor id
//! ([`Roster::enrol`]), then opens sessions by signing a fresh challenge ([`Roster::challenge`],
//! [`Roster::open_session`]); the session token authenticates `/sync` and the API.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use chibo_shared::access::session_payload;
use chibo_shared::access::{Role, Subject};
use chibo_shared::ids::{BranchId, DeviceId, ForumId, MemberId, UnitId};
use ed25519_dalek::{Signature, Verifier as _, VerifyingKey};
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};

use crate::store::StoreError;
use crate::store::roster::{RedeemError, RosterStore};

/// The alphabet of invite codes: no 0/O, 1/I/L, so a code read aloud or off paper types back.
const CODE_ALPHABET: &[u8; 32] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ#";
/// Characters of an invite code's lookup part and secret part.
const LOOKUP_LEN: usize = 4;
const SECRET_LEN: usize = 8;

/// A unit of the organisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnitKind {
    /// An upper-level party committee (đảng ủy, huyện ủy …).
    Committee,
    /// A party cell (chi bộ): its members hold forums and write documents.
    Branch,
}

impl UnitKind {
    /// How the roster's tables store it (`units.kind`).
    pub fn as_str(self) -> &'static str {
        match self {
            UnitKind::Committee => "committee",
            UnitKind::Branch => "branch",
        }
    }

    /// The inverse of [`UnitKind::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        [UnitKind::Committee, UnitKind::Branch].into_iter().find(|k| k.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitRecord {
    pub id: UnitId,
    pub parent: Option<UnitId>,
    pub kind: UnitKind,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MemberRecord {
    #[serde(serialize_with = "display")]
    pub id: MemberId,
    #[serde(serialize_with = "display")]
    pub unit: UnitId,
    pub name: String,
    #[serde(serialize_with = "display")]
    pub role: Role,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRecord {
    pub id: DeviceId,
    pub member: MemberId,
    pub public_key: [u8; 32],
    /// The automerge actor id every change from this device carries.
    pub actor: Vec<u8>,
    pub label: String,
    pub enrolled_at: i64,
    pub revoked_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InviteRecord {
    pub lookup: String,
    pub secret_hash: [u8; 32],
    pub unit: UnitId,
    pub role: Role,
    /// The invitee's name (for a new member).
    pub name: String,
    /// Set when the invite adds a device to an existing member.
    pub member: Option<MemberId>,
    pub created_by: Option<MemberId>,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    pub failed_attempts: u32,
}

fn display<T: std::fmt::Display, S: serde::Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

/// Rate limits and lifetimes.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Enrolment attempts one client address may make per `window`.
    pub enrol_per_ip: usize,
    /// Sign-in requests (challenges and answers) one client address may make per `window`:
    /// each costs a database transaction, and asking needs no credential.
    pub sign_in_per_ip: usize,
    pub window: Duration,
    /// Wrong secrets after which an invite is locked (the secretary issues a new one).
    pub invite_failures: u32,
    /// How long a session token lasts.
    pub session_ttl: Duration,
    /// How long a challenge may be answered.
    pub challenge_ttl: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            enrol_per_ip: 10,
            // A branch behind one address (a ward's shared Wi-Fi): 20 phones signing in a few
            // times in ten minutes stays well under this.
            sign_in_per_ip: 240,
            window: Duration::from_secs(600),
            invite_failures: 5,
            session_ttl: Duration::from_secs(12 * 3600),
            challenge_ttl: Duration::from_secs(120),
        }
    }
}

/// Why a roster operation was refused. The messages are safe to show the caller.
#[derive(Debug, thiserror::Error)]
pub enum RosterError {
    #[error("invite code not recognised")]
    InvalidCode,
    #[error("this invite has already been used")]
    InviteUsed,
    #[error("this invite has expired; ask your secretary for a new one")]
    InviteExpired,
    #[error("this invite is locked after too many wrong codes; ask your secretary for a new one")]
    InviteLocked,
    #[error("too many attempts; try again later")]
    RateLimited,
    #[error("{0}")]
    BadRequest(String),
    #[error("this key or actor id is already enrolled")]
    DuplicateDevice,
    #[error("not signed in, or the session has expired")]
    Unauthenticated,
    #[error("not allowed")]
    Forbidden,
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<RedeemError> for RosterError {
    fn from(e: RedeemError) -> Self {
        match e {
            RedeemError::Used => RosterError::InviteUsed,
            RedeemError::Expired => RosterError::InviteExpired,
            RedeemError::Locked => RosterError::InviteLocked,
            RedeemError::DuplicateDevice => RosterError::DuplicateDevice,
            RedeemError::Store(e) => RosterError::Store(e),
        }
    }
}

/// Whose live connections close because the roster changed (see `Relay::kick`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kick {
    Device(DeviceId),
    Member(MemberId),
}

/// What a device asks for when it enrols.
#[derive(Debug, Clone)]
pub struct EnrolRequest {
    pub code: String,
    pub public_key: [u8; 32],
    pub actor: Vec<u8>,
    pub label: String,
}

/// Who a device became.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrolled {
    pub device: DeviceId,
    pub member: MemberRecord,
}

/// An authenticated device, with what the access policy needs. Built when a session is checked;
/// a roster change that affects it closes the device's connections so the next one rebuilds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevicePrincipal {
    pub device: DeviceId,
    pub actor: Vec<u8>,
    pub subject: Subject,
    /// When the roster was read for this principal: a roster change after it (a kick the relay
    /// heard before the connection reached it) means these rights may be stale.
    pub checked_at: Instant,
}

/// What an invite is for.
#[derive(Debug, Clone)]
pub struct InviteSpec {
    pub unit: UnitId,
    pub role: Role,
    /// The invitee's name.
    pub name: String,
    /// Adds a device to this existing member instead of creating a member.
    pub member: Option<MemberId>,
    pub created_by: Option<MemberId>,
    /// How long the code can be redeemed.
    pub ttl: Duration,
}

impl InviteSpec {
    /// A new member of `unit` with `role`, invited by the admin.
    pub fn new(unit: UnitId, role: Role, name: &str, ttl: Duration) -> Self {
        Self { unit, role, name: name.to_owned(), member: None, created_by: None, ttl }
    }
}

/// A new invite: the code to hand over (shown once, stored only hashed).
#[derive(Debug, Clone)]
pub struct IssuedInvite {
    pub code: String,
    pub record: InviteRecord,
}

/// Sliding-window counters in memory (per process: a relay restart forgets them).
#[derive(Debug, Default)]
struct Window {
    hits: HashMap<IpAddr, VecDeque<Instant>>,
}

/// Counts one attempt of `ip` in `hits`, or refuses it once `limit` were made within `window`.
fn count_attempt(
    hits: &Mutex<Window>,
    limit: usize,
    window: Duration,
    ip: IpAddr,
    what: &str,
) -> Result<(), RosterError> {
    let mut w = hits.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let now = Instant::now();
    w.hits.retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < window));
    let q = w.hits.entry(ip).or_default();
    while q.front().is_some_and(|t| now.duration_since(*t) >= window) {
        q.pop_front();
    }
    if q.len() >= limit {
        tracing::warn!(%ip, what, "rate limit hit");
        return Err(RosterError::RateLimited);
    }
    q.push_back(now);
    Ok(())
}

/// The roster service: the tables plus the in-memory rate limits of enrolments and sign-ins.
///
/// The tables (open challenges included) are in the relay's database, shared by every relay on
/// it; the rate limit is per process. With several relays on one PostgreSQL database the
/// per-address enrolment limit therefore counts each relay's attempts separately (the per-invite
/// limit of wrong secrets is in the database and holds across relays).
#[derive(Clone)]
pub struct Roster {
    db: Arc<dyn RosterStore>,
    limits: Limits,
    enrol_hits: Arc<Mutex<Window>>,
    sign_in_hits: Arc<Mutex<Window>>,
}

impl std::fmt::Debug for Roster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Roster").field("limits", &self.limits).finish_non_exhaustive()
    }
}

/// Unix seconds now.
pub fn unix_now() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since.as_secs()).unwrap_or(i64::MAX)
}

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

fn secret_hash(lookup: &str, secret: &str) -> [u8; 32] {
    sha256(&[b"chibo/invite/v1\0", lookup.as_bytes(), b"\0", secret.as_bytes()])
}

/// The SHA-256 a session token is stored as.
pub fn token_hash(token: &str) -> [u8; 32] {
    sha256(&[b"chibo/session/v1\0", token.as_bytes()])
}

/// Compares digests without an early exit.
fn same_digest(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn random_code_chars(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::rng().fill_bytes(&mut bytes);
    // 31 usable characters ('#' is never drawn): reject-free mapping by modulo over 248 = 8 * 31.
    bytes
        .iter()
        .map(|b| {
            let mut b = *b;
            while b >= 248 {
                b = rand::random();
            }
            char::from(CODE_ALPHABET[usize::from(b % 31)])
        })
        .collect()
}

/// Splits a typed invite code into (lookup, secret): case, spaces and dashes do not matter.
pub fn parse_code(typed: &str) -> Option<(String, String)> {
    let clean: String =
        typed.chars().filter(|c| !c.is_whitespace() && *c != '-').map(|c| c.to_ascii_uppercase()).collect();
    let valid =
        clean.len() == LOOKUP_LEN + SECRET_LEN && clean.bytes().all(|b| CODE_ALPHABET[..31].contains(&b));
    valid.then(|| (clean[..LOOKUP_LEN].to_owned(), clean[LOOKUP_LEN..].to_owned()))
}

impl Roster {
    pub fn new(db: Arc<dyn RosterStore>, limits: Limits) -> Self {
        Self { db, limits, enrol_hits: Arc::default(), sign_in_hits: Arc::default() }
    }

    pub fn db(&self) -> &Arc<dyn RosterStore> {
        &self.db
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    // ----- units and invites (admin, secretary) -----

    /// Creates a unit under `parent` (a committee), returning its id.
    pub async fn create_unit(
        &self,
        kind: UnitKind,
        name: &str,
        parent: Option<UnitId>,
        now: i64,
    ) -> Result<UnitId, RosterError> {
        let name = checked_name(name)?;
        if let Some(p) = parent {
            let parent = self.db.unit(p).await?.ok_or(RosterError::NotFound("parent unit"))?;
            if parent.kind != UnitKind::Committee {
                return Err(RosterError::BadRequest("a branch cannot contain other units".into()));
            }
        }
        let mut bytes = [0u8; 16];
        rand::rng().fill_bytes(&mut bytes);
        let id = UnitId::from_bytes(bytes);
        self.db.insert_unit(UnitRecord { id, parent, kind, name: name.clone() }, now).await?;
        self.db.audit(now, "admin".into(), "unit.create", format!("{id} {kind:?} {name}")).await?;
        Ok(id)
    }

    /// Issues an invite (see [`InviteSpec`]).
    pub async fn create_invite(&self, spec: InviteSpec, now: i64) -> Result<IssuedInvite, RosterError> {
        let InviteSpec { unit, role, name, member, created_by, ttl } = spec;
        let name = checked_name(&name)?;
        let unit_rec = self.db.unit(unit).await?.ok_or(RosterError::NotFound("unit"))?;
        let fits = match unit_rec.kind {
            UnitKind::Branch => role.is_branch_role(),
            UnitKind::Committee => matches!(role, Role::UpperReader | Role::RelayAdmin),
        };
        if !fits {
            return Err(RosterError::BadRequest(format!(
                "role {role} does not belong in a {:?}",
                unit_rec.kind
            )));
        }
        let ttl = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
        for _ in 0..16 {
            let (lookup, secret) = (random_code_chars(LOOKUP_LEN), random_code_chars(SECRET_LEN));
            let record = InviteRecord {
                lookup: lookup.clone(),
                secret_hash: secret_hash(&lookup, &secret),
                unit,
                role,
                name: name.clone(),
                member,
                created_by,
                created_at: now,
                expires_at: now.saturating_add(ttl),
                used_at: None,
                failed_attempts: 0,
            };
            if self.db.insert_invite(record.clone()).await? {
                let who = created_by.map_or_else(|| "admin".to_owned(), |m| m.to_string());
                self.db
                    .audit(now, who, "invite.create", format!("{lookup} {role} for {name} in {unit}"))
                    .await?;
                let code = format!("{}-{}-{}", lookup, &secret[..4], &secret[4..]);
                return Ok(IssuedInvite { code, record });
            }
        }
        Err(RosterError::BadRequest("could not draw a free invite code; retry".into()))
    }

    // ----- enrolment -----

    /// Redeems an invite code for a new device.
    pub async fn enrol(&self, ip: IpAddr, req: EnrolRequest, now: i64) -> Result<Enrolled, RosterError> {
        self.count_enrol_attempt(ip)?;
        if req.actor.is_empty() || req.actor.len() > 64 {
            return Err(RosterError::BadRequest("actor id must be 1 to 64 bytes".into()));
        }
        VerifyingKey::from_bytes(&req.public_key)
            .map_err(|_| RosterError::BadRequest("public key is not an Ed25519 key".into()))?;
        let label = checked_name(&req.label).unwrap_or_else(|_| "device".to_owned());
        let (lookup, secret) = parse_code(&req.code).ok_or(RosterError::InvalidCode)?;
        let invite = self.db.invite(lookup.clone()).await?.ok_or(RosterError::InvalidCode)?;
        if invite.failed_attempts >= self.limits.invite_failures {
            return Err(RosterError::InviteLocked);
        }
        if !same_digest(&invite.secret_hash, &secret_hash(&lookup, &secret)) {
            let failures = self.db.invite_failed(lookup.clone()).await?;
            tracing::warn!(%ip, invite = %lookup, failures, "enrolment: wrong invite secret");
            return Err(if failures >= self.limits.invite_failures {
                RosterError::InviteLocked
            } else {
                RosterError::InvalidCode
            });
        }
        if invite.used_at.is_some() {
            return Err(RosterError::InviteUsed);
        }
        if invite.expires_at <= now {
            return Err(RosterError::InviteExpired);
        }
        let mut id = [0u8; 16];
        rand::rng().fill_bytes(&mut id);
        let device_id = DeviceId::from_bytes(id);
        let (member, new_member) = match invite.member {
            Some(m) => (self.db.member(m).await?.ok_or(RosterError::NotFound("member"))?, None),
            None => {
                rand::rng().fill_bytes(&mut id);
                let m = MemberRecord {
                    id: MemberId::from_bytes(id),
                    unit: invite.unit,
                    name: invite.name.clone(),
                    role: invite.role,
                };
                (m.clone(), Some(m))
            }
        };
        let device = DeviceRecord {
            id: device_id,
            member: member.id,
            public_key: req.public_key,
            actor: req.actor,
            label,
            enrolled_at: now,
            revoked_at: None,
        };
        self.db.redeem(lookup.clone(), now, self.limits.invite_failures, new_member, device).await?;
        self.db
            .audit(
                now,
                device_id.to_string(),
                "device.enrol",
                format!("invite {lookup} member {} ({ip})", member.id),
            )
            .await?;
        tracing::info!(device = %device_id, member = %member.id, role = %member.role, "device enrolled");
        Ok(Enrolled { device: device_id, member })
    }

    fn count_enrol_attempt(&self, ip: IpAddr) -> Result<(), RosterError> {
        count_attempt(&self.enrol_hits, self.limits.enrol_per_ip, self.limits.window, ip, "enrolment")
    }

    /// Counts a sign-in request (a challenge asked for, or answered) from `ip`; refuses once the
    /// address has made [`Limits::sign_in_per_ip`] in the window. Per process, like enrolments.
    pub fn count_sign_in_attempt(&self, ip: IpAddr) -> Result<(), RosterError> {
        count_attempt(&self.sign_in_hits, self.limits.sign_in_per_ip, self.limits.window, ip, "sign-in")
    }

    // ----- sessions -----

    /// A fresh nonce for `device` to sign; single use, valid for [`Limits::challenge_ttl`]
    /// (kept in the database: any relay on it can check the answer).
    pub async fn challenge(&self, device: DeviceId, now: i64) -> Result<[u8; 32], RosterError> {
        let mut nonce = [0u8; 32];
        rand::rng().fill_bytes(&mut nonce);
        let ttl = i64::try_from(self.limits.challenge_ttl.as_secs()).unwrap_or(i64::MAX);
        if !self.db.put_challenge(nonce, device, now, now.saturating_add(ttl)).await? {
            return Err(RosterError::RateLimited);
        }
        Ok(nonce)
    }

    /// Checks a signed challenge and issues a session token (returned once, stored hashed).
    pub async fn open_session(
        &self,
        device: DeviceId,
        nonce: [u8; 32],
        signature: [u8; 64],
        now: i64,
    ) -> Result<(String, i64), RosterError> {
        match self.db.take_challenge(nonce).await? {
            Some((issued_to, open_until)) if issued_to == device && now < open_until => {}
            _ => return Err(RosterError::Unauthenticated),
        }
        let record = self.db.device(device).await?.ok_or(RosterError::Unauthenticated)?;
        if record.revoked_at.is_some() {
            return Err(RosterError::Unauthenticated);
        }
        let key = VerifyingKey::from_bytes(&record.public_key).map_err(|_| RosterError::Unauthenticated)?;
        key.verify(&session_payload(&device, &nonce), &Signature::from_bytes(&signature))
            .map_err(|_| RosterError::Unauthenticated)?;
        let mut raw = [0u8; 32];
        rand::rng().fill_bytes(&mut raw);
        let token = hex::encode(raw);
        let ttl = i64::try_from(self.limits.session_ttl.as_secs()).unwrap_or(i64::MAX);
        let expires_at = now.saturating_add(ttl);
        self.db.insert_session(token_hash(&token), device, now, expires_at).await?;
        Ok((token, expires_at))
    }

    /// The device behind a session token, if the session is live and the device not revoked.
    pub async fn authenticate(&self, token: &str, now: i64) -> Result<DevicePrincipal, RosterError> {
        let checked_at = Instant::now();
        let (device, expires_at) =
            self.db.session(token_hash(token)).await?.ok_or(RosterError::Unauthenticated)?;
        if expires_at <= now {
            return Err(RosterError::Unauthenticated);
        }
        let record = self.db.device(device).await?.ok_or(RosterError::Unauthenticated)?;
        if record.revoked_at.is_some() {
            return Err(RosterError::Unauthenticated);
        }
        let member = self.db.member(record.member).await?.ok_or(RosterError::Unauthenticated)?;
        let subject = self.subject(&member).await?;
        Ok(DevicePrincipal { device, actor: record.actor, subject, checked_at })
    }

    /// What the access policy knows about `member`.
    pub async fn subject(&self, member: &MemberRecord) -> Result<Subject, RosterError> {
        let unit = self.db.unit(member.unit).await?.ok_or(RosterError::NotFound("unit"))?;
        let branch = (unit.kind == UnitKind::Branch).then(|| BranchId::from_bytes(*unit.id.as_bytes()));
        let clerk_of: BTreeSet<ForumId> = self.db.clerk_of(member.id).await?.into_iter().collect();
        let oversees = if member.role == Role::UpperReader {
            branches_under(&self.db.units().await?, unit.id)
        } else {
            BTreeSet::new()
        };
        Ok(Subject { member: member.id, role: member.role, branch, clerk_of, oversees })
    }
}

/// One demo member's invite for a new device.
#[derive(Debug, Clone)]
pub struct DemoInvite {
    pub name: String,
    pub role: Role,
    pub code: String,
}

impl Roster {
    /// Puts the demo branch on the roster (under a demo committee), names its documents in the
    /// index, and issues each demo member an invite for a new device (valid `ttl`). Running it
    /// again keeps what is there and issues fresh invites.
    pub async fn seed_demo(
        &self,
        demo: &chibo_shared::schema::demo::DemoBranch,
        ttl: Duration,
        now: i64,
    ) -> Result<Vec<DemoInvite>, RosterError> {
        use chibo_shared::schema::demo::DemoRole;
        let committee =
            UnitId::from_bytes(sha256(&[b"chibo/demo/committee"])[..16].try_into().unwrap_or_default());
        let branch = UnitId::from(demo.branch);
        let unit = |id, parent, kind, name: &str| UnitRecord { id, parent, kind, name: name.to_owned() };
        self.db
            .insert_unit(unit(committee, None, UnitKind::Committee, "Đảng ủy Phường Hòa Bình"), now)
            .await?;
        self.db.insert_unit(unit(branch, Some(committee), UnitKind::Branch, &demo.name), now).await?;
        let rows =
            demo.paths.iter().map(|p| (p.document_id(), p.to_canonical_string(), p.branch())).collect();
        self.db.index_documents(rows).await?;
        let mut invites = Vec::new();
        for m in &demo.roster {
            let role = match m.role {
                DemoRole::Secretary => Role::Secretary,
                DemoRole::Clerk | DemoRole::Member => Role::Member,
            };
            let record = MemberRecord { id: m.id, unit: branch, name: m.name.clone(), role };
            self.db.insert_member(record, now).await?;
            if m.role == DemoRole::Clerk {
                self.db.set_clerk(demo.forum, m.id, true).await?;
            }
            let spec = InviteSpec { member: Some(m.id), ..InviteSpec::new(branch, role, &m.name, ttl) };
            let issued = self.create_invite(spec, now).await?;
            invites.push(DemoInvite { name: m.name.clone(), role, code: issued.code });
        }
        Ok(invites)
    }
}

/// Every branch below `root` in the unit tree.
fn branches_under(units: &[UnitRecord], root: UnitId) -> BTreeSet<BranchId> {
    let mut children: HashMap<UnitId, Vec<&UnitRecord>> = HashMap::new();
    for u in units {
        if let Some(p) = u.parent {
            children.entry(p).or_default().push(u);
        }
    }
    let mut out = BTreeSet::new();
    let mut stack = vec![root];
    let mut seen = BTreeSet::new();
    while let Some(u) = stack.pop() {
        if !seen.insert(u) {
            continue;
        }
        for c in children.get(&u).into_iter().flatten() {
            if c.kind == UnitKind::Branch {
                out.insert(BranchId::from_bytes(*c.id.as_bytes()));
            }
            stack.push(c.id);
        }
    }
    out
}

fn checked_name(name: &str) -> Result<String, RosterError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(RosterError::BadRequest("a name must be 1 to 200 printable characters".into()));
    }
    Ok(name.to_owned())
}

#[cfg(test)]
mod tests;
