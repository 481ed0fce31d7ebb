//! This device's enrolment: joining with an invite code, the device key, sessions with the relay,
//! and the documents this member works on.
//!
//! On joining, the device draws an Ed25519 key seed and an automerge actor id, registers the
//! public key and the actor with the invite code, and keeps the seed in IndexedDB (through
//! [`crate::storage`]). Before each connection it makes sure it holds a live session token (by
//! signing a fresh challenge: [`chibo_shared::access::session_payload`]) and that the relay knows
//! the paths of the documents it is about to sync (`POST /api/v1/documents`).

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;

use automerge::ActorId;
use chibo_shared::access::{Role, Subject, session_payload};
use chibo_shared::ids::{BranchId, DeviceId, ForumId, MemberId, PeerId};
use chibo_shared::schema::{DocKind, DocPath};
use ed25519_dalek::{Signer as _, SigningKey};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::api::{self, ApiError, field};
use crate::storage::{IdbStore, StorageError};
use crate::sync::DeviceIdentity;

/// A session is renewed when it has less than this left (seconds).
const RENEW_MARGIN: i64 = 300;

/// What this device keeps about itself (JSON in IndexedDB).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceRecord {
    pub device: String,
    pub member: String,
    pub name: String,
    pub role: String,
    pub branch: Option<String>,
    /// Forums of the branch, as the relay last listed them.
    pub forums: Vec<String>,
    /// Ed25519 key seed, hex (never leaves the device).
    pub seed: String,
    /// Automerge actor id, hex (registered with the relay).
    pub actor: String,
    pub peer_id: String,
    pub token: Option<String>,
    pub token_expires: i64,
    /// Device public keys (hex) of the branch's members, by member id, as the roster last listed
    /// them: what commitments are verified against, offline too.
    #[serde(default)]
    pub keys: std::collections::BTreeMap<String, Vec<String>>,
    /// Forums this member is the clerk of, as the relay last said.
    #[serde(default)]
    pub clerk_of: Vec<String>,
    /// The branch roster as last listed: names, roles, devices (for the committee's pages and
    /// for naming the authors in a document's history).
    #[serde(default)]
    pub members: Vec<RosterMember>,
}

/// A member of the branch as the relay's roster lists them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RosterMember {
    pub id: String,
    pub name: String,
    pub role: String,
    #[serde(default)]
    pub devices: Vec<RosterDevice>,
}

/// One enrolled device of a [`RosterMember`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RosterDevice {
    pub id: String,
    #[serde(default)]
    pub label: String,
    pub public_key: String,
    /// Automerge actor id, hex.
    #[serde(default)]
    pub actor: String,
    #[serde(default)]
    pub revoked_at: Option<i64>,
}

impl RosterMember {
    pub fn member_id(&self) -> Option<MemberId> {
        self.id.parse().ok()
    }
}

/// Why joining failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoinError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("this device cannot keep data: {0}")]
    Storage(#[from] StorageError),
    #[error("this browser cannot make keys")]
    NoRandomness,
}

fn random_bytes<const N: usize>() -> Result<[u8; N], JoinError> {
    let mut buf = [0u8; N];
    let crypto = web_sys::window().and_then(|w| w.crypto().ok()).ok_or(JoinError::NoRandomness)?;
    crypto.get_random_values_with_u8_array(&mut buf).map_err(|_| JoinError::NoRandomness)?;
    Ok(buf)
}

fn unix_now() -> i64 {
    // Seconds since the epoch fit an i64 exactly.
    (js_sys::Date::now() / 1000.0) as i64
}

/// The enrolled device: its record and the documents the app has asked the relay to know.
pub struct Account {
    record: RefCell<DeviceRecord>,
    store: Rc<IdbStore>,
    /// Paths of every document the app opened; registered with the relay before syncing.
    paths: RefCell<BTreeSet<String>>,
    registered: RefCell<BTreeSet<String>>,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account").field("device", &self.record.borrow().device).finish_non_exhaustive()
    }
}

impl Account {
    /// The account kept on this device, if it has joined.
    pub async fn load(store: Rc<IdbStore>) -> Result<Option<Rc<Self>>, StorageError> {
        let Some(json) = store.device_record().await? else { return Ok(None) };
        let record: DeviceRecord = serde_json::from_str(&json)
            .map_err(|_| StorageError::Corrupt { key: "device".into(), reason: "not a device record" })?;
        Ok(Some(Rc::new(Self::new(record, store))))
    }

    fn new(record: DeviceRecord, store: Rc<IdbStore>) -> Self {
        Self {
            record: RefCell::new(record),
            store,
            paths: RefCell::default(),
            registered: RefCell::default(),
        }
    }

    /// Joins with an invite code: makes the key and actor, enrols, keeps the record, signs in.
    pub async fn join(store: Rc<IdbStore>, code: &str, label: &str) -> Result<Rc<Self>, JoinError> {
        let seed = random_bytes::<32>()?;
        let actor = random_bytes::<16>()?;
        let key = SigningKey::from_bytes(&seed);
        let body = json!({
            "code": code,
            "public_key": hex::encode(key.verifying_key().to_bytes()),
            "actor": hex::encode(actor),
            "label": label,
        });
        let enrolled = api::post("/api/v1/enrol", None, &body).await?;
        let record = DeviceRecord {
            device: field(&enrolled, "device")?,
            member: field(&enrolled, "member")?,
            name: field(&enrolled, "name")?,
            role: field(&enrolled, "role")?,
            branch: field(&enrolled, "unit").ok(),
            forums: Vec::new(),
            seed: hex::encode(seed),
            actor: hex::encode(actor),
            peer_id: format!("chibo-web-{}", hex::encode(&actor[..8])),
            token: None,
            token_expires: 0,
            keys: std::collections::BTreeMap::new(),
            clerk_of: Vec::new(),
            members: Vec::new(),
        };
        let account = Rc::new(Self::new(record, store));
        account.save().await?;
        // Learn the branch's forums now if the relay is there; offline, on the next connection.
        let _ = account.refresh().await;
        Ok(account)
    }

    async fn save(&self) -> Result<(), StorageError> {
        let json = serde_json::to_string(&*self.record.borrow()).unwrap_or_default();
        self.store.put_device_record(&json).await
    }

    pub fn record(&self) -> DeviceRecord {
        self.record.borrow().clone()
    }

    pub fn member(&self) -> Option<MemberId> {
        self.record.borrow().member.parse().ok()
    }

    pub fn branch(&self) -> Option<BranchId> {
        self.record.borrow().branch.as_deref().and_then(|b| b.parse().ok())
    }

    pub fn role(&self) -> Option<Role> {
        self.record.borrow().role.parse().ok()
    }

    pub fn forums(&self) -> Vec<ForumId> {
        self.record.borrow().forums.iter().filter_map(|f| f.parse().ok()).collect()
    }

    /// The branch roster as last listed.
    pub fn members(&self) -> Vec<RosterMember> {
        self.record.borrow().members.clone()
    }

    /// Who this member is to the access rules (as the relay last described them).
    pub fn subject(&self) -> Option<Subject> {
        let r = self.record.borrow();
        let mut who = Subject::in_branch(
            r.member.parse().ok()?,
            r.role.parse().ok()?,
            r.branch.as_deref()?.parse().ok()?,
        );
        who.clerk_of = r.clerk_of.iter().filter_map(|f| f.parse().ok()).collect();
        Some(who)
    }

    /// Whether the relay would accept this member's changes to `path` (pages show read-only
    /// views otherwise: a refused change would close the connection).
    pub fn may_write(&self, path: &DocPath) -> bool {
        self.subject().is_some_and(|who| chibo_shared::access::may_write(&who, path))
    }

    /// Whether this member sits on the branch committee (committee pages, everyone's documents).
    pub fn on_committee(&self) -> bool {
        self.role().is_some_and(|r| r.is_committee())
    }

    /// The member and device that own an automerge actor (hex), by the roster as last seen.
    pub fn author_of(&self, actor_hex: &str) -> Option<(String, String)> {
        let r = self.record.borrow();
        r.members.iter().find_map(|m| {
            m.devices.iter().find(|d| d.actor == actor_hex).map(|d| (m.name.clone(), d.label.clone()))
        })
    }

    /// Whether `key` is a device key of `member` on the roster as last seen.
    pub fn is_key_of(&self, member: &MemberId, key: &[u8; 32]) -> bool {
        let key = hex::encode(key);
        self.record.borrow().keys.get(&member.to_string()).is_some_and(|keys| keys.contains(&key))
    }

    /// The device key (for signing commitments).
    pub fn signing_key(&self) -> Option<SigningKey> {
        let seed: [u8; 32] = hex::decode(&self.record.borrow().seed).ok()?.try_into().ok()?;
        Some(SigningKey::from_bytes(&seed))
    }

    /// Who this device is to the sync engine: its peer id and its registered actor.
    pub fn identity(&self) -> Option<DeviceIdentity> {
        let r = self.record.borrow();
        Some(DeviceIdentity {
            peer_id: PeerId::new(r.peer_id.clone()).ok()?,
            actor: ActorId::from(hex::decode(&r.actor).ok()?),
        })
    }

    /// A live session token: the kept one, or a new one for a freshly signed challenge.
    pub async fn token(&self) -> Result<String, ApiError> {
        {
            let r = self.record.borrow();
            if let Some(t) = r.token.as_ref().filter(|_| r.token_expires - RENEW_MARGIN > unix_now()) {
                return Ok(t.clone());
            }
        }
        let device_text = self.record.borrow().device.clone();
        let device: DeviceId = device_text.parse().map_err(|_| ApiError::Malformed("device id".into()))?;
        let key = self.signing_key().ok_or_else(|| ApiError::Malformed("device key".into()))?;
        let challenge =
            api::post("/api/v1/session/challenge", None, &json!({ "device": device_text })).await?;
        let nonce: [u8; 32] = hex::decode(field(&challenge, "nonce")?)
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| ApiError::Malformed("nonce".into()))?;
        let signature = key.sign(&session_payload(&device, &nonce));
        let body = json!({
            "device": device_text,
            "nonce": hex::encode(nonce),
            "signature": hex::encode(signature.to_bytes()),
        });
        let session = api::post("/api/v1/session", None, &body).await?;
        let token = field(&session, "token")?;
        let expires = session.get("expires_at").and_then(serde_json::Value::as_i64).unwrap_or(0);
        {
            let mut r = self.record.borrow_mut();
            r.token = Some(token.clone());
            r.token_expires = expires;
        }
        let _ = self.save().await;
        Ok(token)
    }

    /// Asks the relay who we are and which forums the branch has; keeps the answer.
    pub async fn refresh(&self) -> Result<(), ApiError> {
        let token = self.token().await?;
        let me = api::get("/api/v1/me", Some(&token)).await?;
        let members: Option<Vec<RosterMember>> = api::get("/api/v1/roster", Some(&token))
            .await
            .ok()
            .and_then(|r| serde_json::from_value(r.get("members")?.clone()).ok());
        let clerk_of: Vec<String> = me
            .get("clerk_of")
            .and_then(serde_json::Value::as_array)
            .map(|a| a.iter().filter_map(|f| f.as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        let forums: Vec<String> = me
            .get("forums")
            .and_then(serde_json::Value::as_array)
            .map(|a| a.iter().filter_map(|f| f.as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        let changed = {
            let mut r = self.record.borrow_mut();
            let before = r.clone();
            r.forums = forums;
            if let Ok(role) = field(&me, "role") {
                r.role = role;
            }
            if let Ok(name) = field(&me, "name") {
                r.name = name;
            }
            r.clerk_of = clerk_of;
            if let Some(members) = members {
                r.keys = members
                    .iter()
                    .map(|m| (m.id.clone(), m.devices.iter().map(|d| d.public_key.clone()).collect()))
                    .collect();
                r.members = members;
            }
            *r != before
        };
        if changed {
            let _ = self.save().await;
        }
        Ok(())
    }

    /// Remembers that the app syncs the document at `path`.
    pub fn want(&self, path: &DocPath) {
        self.paths.borrow_mut().insert(path.to_canonical_string());
    }

    /// Names to the relay every wanted document it has not been told about in this page.
    pub async fn register(&self) -> Result<(), ApiError> {
        let pending: Vec<String> =
            self.paths.borrow().difference(&self.registered.borrow()).cloned().collect();
        if pending.is_empty() {
            return Ok(());
        }
        let token = self.token().await?;
        api::post("/api/v1/documents", Some(&token), &json!({ "paths": pending })).await?;
        self.registered.borrow_mut().extend(pending);
        Ok(())
    }

    /// Makes `member` the clerk of `forum` (or not) on the relay's roster, which lets them write
    /// the forum's minutes; then refreshes what this device knows.
    pub async fn set_clerk(&self, forum: ForumId, member: MemberId, clerk: bool) -> Result<(), ApiError> {
        let token = self.token().await?;
        let path = format!("/api/v1/forums/{forum}/clerks");
        api::post(&path, Some(&token), &json!({ "member": member.to_string(), "clerk": clerk })).await?;
        self.refresh().await
    }

    /// Prepares a connection: fresh roster facts, documents named, a live token. Returns the
    /// `/sync` query string.
    pub async fn prepare_sync(&self) -> Result<String, ApiError> {
        let _ = self.refresh().await;
        self.register().await?;
        Ok(format!("token={}", self.token().await?))
    }

    /// The documents this member works on now, each with its kind (for its genesis seed).
    pub fn documents(&self, year: u16) -> Vec<(DocPath, DocKind)> {
        let (Some(branch), Some(member)) = (self.branch(), self.member()) else { return Vec::new() };
        let mut docs =
            vec![DocPath::BranchProfile { branch }, DocPath::PersonalPlan { branch, member, year }];
        for forum in self.forums() {
            docs.push(DocPath::Forum { branch, forum });
            docs.push(DocPath::Resolution { branch, forum });
            docs.push(DocPath::SelfAssessment { branch, forum, member });
            docs.push(DocPath::Ballot { branch, forum, member });
        }
        if self.on_committee() {
            // The committee reviews everyone's documents: the members' own, as the roster lists them.
            let others: Vec<MemberId> =
                self.members().iter().filter_map(RosterMember::member_id).filter(|m| *m != member).collect();
            for other in others {
                docs.push(DocPath::PersonalPlan { branch, member: other, year });
                for forum in self.forums() {
                    docs.push(DocPath::SelfAssessment { branch, forum, member: other });
                    docs.push(DocPath::Ballot { branch, forum, member: other });
                }
            }
        }
        docs.into_iter().map(|p| (p, p.kind())).collect()
    }
}
