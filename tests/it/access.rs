//! Identity and access at the relay: the attack table. Each test is one row; each fails if the
//! check it names is removed (the attack then succeeds: data comes back, a change is stored, a
//! connection is accepted).
//!
//! | attack                                                 | test                                          |
//! |--------------------------------------------------------|-----------------------------------------------|
//! | read another branch's document                         | `reading_another_branchs_document_…`          |
//! | read another member's self-assessment as a plain member| `a_plain_member_cannot_read_…`                |
//! | write the resolution as a plain member                 | `a_plain_member_writing_the_resolution_…`     |
//! | forge a change with another device's actor id          | `a_change_forged_with_another_devices_actor_…`|
//! | relay another member's change through an allowed conn. | `relaying_another_members_genuine_change_…`   |
//! | reuse an invite                                        | `an_invite_works_once`                        |
//! | use an expired invite                                  | `an_expired_invite_is_refused`                |
//! | connect with a revoked device                          | `revoking_a_device_closes_its_live_connection…`|
//! | replay a stale credential                              | `stale_credentials_are_refused`               |
//! | guess invite codes                                     | `guessing_invite_codes_is_rate_limited`       |
//! | oversized frames                                       | `an_oversized_frame_from_an_enrolled_device_…`|
//! | no credential at all                                   | `sync_without_a_credential_is_refused`        |
//!
//! And the unmodified JS automerge-repo client with a credential in its URL:
//! `the_js_client_syncs_with_a_credential_and_is_refused_without_one`.

use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use automerge::sync::{Message as SyncMessage, MessageVersion, SyncDoc as _};
use automerge::{ActorId, Automerge, ChangeHash, ReadDoc as _};
use chibo_server::config::{DataDir, ServeConfig};
use chibo_server::roster::{InviteSpec, Limits, Roster, UnitKind, session_payload, unix_now};
use chibo_server::store::sqlite::SqliteStore;
use chibo_shared::access::Role;
use chibo_shared::ids::{DeviceId, DocumentId, ForumId, MemberId, PeerId, UnitId};
use chibo_shared::schema::{
    BranchProfile, DocKind, DocPath, ForumText, Resolution, SelfAssessment, genesis_change_bytes,
};
use chibo_shared::wire::Message;
use ed25519_dalek::{Signer as _, SigningKey};
use futures::{SinkExt as _, StreamExt as _};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message as Frame;

use crate::harness::{
    Device, Relay, Socket, TIMEOUT, append_text, binary, closed, edit, enrol, http_request,
    json_field as field, raw_join, sign_in, stored_doc,
};
use crate::interop::JsPeer;

const HOUR: Duration = Duration::from_secs(3600);
const FORUM: ForumId = ForumId::from_bytes([0x44; 16]);
/// WebSocket close code of a policy refusal.
const POLICY: u16 = 1008;

/// An enrolled person with one device.
struct Person {
    member: MemberId,
    device_id: DeviceId,
    key: SigningKey,
    token: String,
    device: Device,
}

impl Person {
    fn actor(&self) -> &ActorId {
        &self.device.actor
    }
}

/// A relay with a roster: committee → branches A and B.
struct World {
    relay: Relay,
    roster: Roster,
    data: tempfile::TempDir,
    a: UnitId,
    b: UnitId,
    keys: u8,
}

impl World {
    async fn start(limits: Limits) -> anyhow::Result<Self> {
        let data = tempfile::tempdir()?;
        // The admin's own connection to the relay's database, opened (and migrated) first.
        let path = DataDir::new(data.path()).sqlite_path();
        let sqlite = tokio::task::spawn_blocking(move || SqliteStore::open(path)).await??;
        let roster = Roster::new(sqlite.shared_roster(), Limits::default());
        let now = unix_now();
        let top = roster.create_unit(UnitKind::Committee, "Đảng ủy phường", None, now).await?;
        let a = roster.create_unit(UnitKind::Branch, "Chi bộ A", Some(top), now).await?;
        let b = roster.create_unit(UnitKind::Branch, "Chi bộ B", Some(top), now).await?;
        let mut config = ServeConfig::new(data.path());
        config.limits = limits;
        config.max_message_bytes = 64 * 1024;
        let relay = Relay::start(config).await?;
        Ok(Self { relay, roster, data, a, b, keys: 0 })
    }

    async fn invite(&self, unit: UnitId, role: Role, ttl: Duration) -> anyhow::Result<String> {
        Ok(self.roster.create_invite(InviteSpec::new(unit, role, "Đảng viên", ttl), unix_now()).await?.code)
    }

    async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: serde_json::Value,
    ) -> anyhow::Result<(u16, String)> {
        http_request(self.relay.addr(), "POST", path, token, Some(&body)).await
    }

    /// Redeems `code` for a new device named `name`: the HTTP status and body.
    async fn try_enrol(&mut self, code: &str, name: &str) -> anyhow::Result<(u16, String, SigningKey)> {
        self.keys += 1;
        let key = SigningKey::from_bytes(&[self.keys; 32]);
        let (status, text) = enrol(self.relay.addr(), code, name, &key).await?;
        Ok((status, text, key))
    }

    /// Signs a fresh challenge with `key`: the status and body of `POST /api/v1/session`.
    async fn try_sign_in(&self, device: DeviceId, key: &SigningKey) -> anyhow::Result<(u16, String)> {
        sign_in(self.relay.addr(), device, key).await
    }

    /// Invites, enrols and signs in a person with `role` in `unit`.
    async fn person(&mut self, unit: UnitId, role: Role, name: &str) -> anyhow::Result<Person> {
        let code = self.invite(unit, role, HOUR).await?;
        let (status, text, key) = self.try_enrol(&code, name).await?;
        ensure!(status == 201, "enrol {name}: {status} {text}");
        let device_id: DeviceId = field(&text, "device")?.parse()?;
        let member: MemberId = field(&text, "member")?.parse()?;
        let (status, text) = self.try_sign_in(device_id, &key).await?;
        ensure!(status == 200, "sign in {name}: {status} {text}");
        let token = field(&text, "token")?;
        Ok(Person { member, device_id, key, token, device: Device::new(name)? })
    }

    fn url_for(&self, token: &str) -> String {
        format!("{}?token={token}", self.relay.url())
    }

    /// Names `paths` to the relay as `who`.
    async fn register(&self, who: &Person, paths: &[DocPath]) -> anyhow::Result<()> {
        let paths: Vec<String> = paths.iter().map(DocPath::to_canonical_string).collect();
        let (status, text) =
            self.post("/api/v1/documents", Some(&who.token), json!({ "paths": paths })).await?;
        ensure!(status == 200, "register: {status} {text}");
        Ok(())
    }

    /// `who` creates the document at `path` with one edit and waits until the relay has it.
    async fn create<T: chibo_shared::schema::Document>(
        &self,
        who: &Person,
        path: DocPath,
        f: impl FnOnce(&mut T) + Send + 'static,
    ) -> anyhow::Result<DocumentId> {
        self.register(who, &[path]).await?;
        let doc = path.document_id();
        who.device.client.open(doc, Some(genesis_change_bytes(T::KIND))).await?;
        who.device.client.change(doc, |d| edit::<T>(d, f)).await??;
        if who.device.client.with(|i| i.connection()).await?.is_none() {
            who.device.client.connect(&self.url_for(&who.token)).await?;
        }
        if let Err(e) = who.device.client.wait_synced(doc, TIMEOUT).await {
            let connected = who.device.client.with(|i| i.connection()).await?;
            let (_, metrics) = self.relay.get("/metrics").await?;
            let lines: Vec<&str> = metrics
                .lines()
                .filter(|l| {
                    !l.starts_with('#')
                        && (l.contains("refused") || l.contains("error") || l.contains("connections"))
                })
                .collect();
            bail!("{e}; the device's connection: {connected:?}; relay: {lines:?}");
        }
        Ok(doc)
    }

    async fn socket(&self, token: Option<&str>) -> anyhow::Result<Result<Socket, u16>> {
        let url = token.map_or_else(|| self.relay.url(), |t| self.url_for(t));
        match tokio_tungstenite::connect_async(&url).await {
            Ok((ws, _)) => Ok(Ok(ws)),
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => Ok(Err(response.status().as_u16())),
            Err(e) => Err(e.into()),
        }
    }

    /// Asks for `doc` as `who` on a raw socket: the document if the relay sends it, `None` if it
    /// answers `doc-unavailable`.
    async fn fetch(&self, who: &Person, doc: DocumentId) -> anyhow::Result<Option<Automerge>> {
        let mut ws =
            self.socket(Some(&who.token)).await?.map_err(|s| anyhow::anyhow!("upgrade refused: {s}"))?;
        let me = PeerId::new("raw-reader")?;
        let relay = raw_join(&mut ws, &me).await?;
        let mut am = Automerge::new();
        let mut state = automerge::sync::State::new();
        let first = am.generate_sync_message(&mut state).context("a first sync message")?;
        let request = Message::Request {
            sender: me.clone(),
            target: relay.clone(),
            document: doc,
            data: first.encode(),
        };
        ws.send(binary(request.encode())).await?;
        loop {
            let frame = tokio::time::timeout(TIMEOUT, ws.next()).await.context("no answer")?;
            let Some(Ok(Frame::Binary(bytes))) = frame else { bail!("expected an answer, got {frame:?}") };
            match Message::decode(&bytes)? {
                Message::DocUnavailable { document, .. } if document == doc => return Ok(None),
                Message::Sync { document, data, .. } if document == doc => {
                    am.receive_sync_message(&mut state, SyncMessage::decode(&data)?)?;
                    if !am.get_heads().is_empty() {
                        return Ok(Some(am));
                    }
                    if let Some(m) = am.generate_sync_message(&mut state) {
                        let reply = Message::Sync {
                            sender: me.clone(),
                            target: relay.clone(),
                            document: doc,
                            data: m.encode(),
                        };
                        ws.send(binary(reply.encode())).await?;
                    }
                }
                _ => {}
            }
        }
    }

    /// Sends `change` for `doc` as one sync message on a raw socket authenticated as `who`:
    /// the close code the relay answers with (`None` if it kept the connection open and
    /// acknowledged the change).
    async fn push(
        &self,
        who: &Person,
        doc: DocumentId,
        base: &Automerge,
        change: &[u8],
    ) -> anyhow::Result<Option<u16>> {
        let mut ws =
            self.socket(Some(&who.token)).await?.map_err(|s| anyhow::anyhow!("upgrade refused: {s}"))?;
        let me = PeerId::new("raw-writer")?;
        let relay = raw_join(&mut ws, &me).await?;
        let mut with_change = base.clone();
        with_change.load_incremental(change)?;
        let message = SyncMessage {
            heads: with_change.get_heads(),
            need: vec![],
            have: vec![],
            changes: vec![change.to_vec()].into(),
            flags: None,
            version: MessageVersion::V1,
        };
        let sync = Message::Sync { sender: me, target: relay, document: doc, data: message.encode() };
        ws.send(binary(sync.encode())).await?;
        let want = with_change.get_heads();
        loop {
            let frame = tokio::time::timeout(TIMEOUT, ws.next()).await.context("no answer to the change")?;
            match frame {
                Some(Ok(Frame::Close(f))) => return Ok(f.map(|f| u16::from(f.code))),
                Some(Ok(Frame::Binary(bytes))) => {
                    if let Message::Sync { data, .. } = Message::decode(&bytes)? {
                        let mut theirs = SyncMessage::decode(&data)?.heads;
                        let mut want = want.clone();
                        theirs.sort();
                        want.sort();
                        if theirs == want {
                            return Ok(None); // acknowledged: the relay holds the change
                        }
                    }
                }
                None => return Ok(Some(0)),
                other => bail!("unexpected {other:?}"),
            }
        }
    }

    async fn stored_hashes(&self, doc: DocumentId) -> anyhow::Result<Vec<ChangeHash>> {
        Ok(stored_doc(self.data.path(), doc).await?.get_changes(&[]).iter().map(|c| c.hash()).collect())
    }

    async fn refused_forbidden(&self) -> anyhow::Result<f64> {
        Ok(self.relay.metrics().await?.refused("forbidden"))
    }
}

/// A change to `base` made by `actor`: its bytes.
fn change_by(
    base: &Automerge,
    actor: &ActorId,
    f: impl FnOnce(&mut Automerge) -> anyhow::Result<Option<ChangeHash>>,
) -> anyhow::Result<Vec<u8>> {
    let mut am = base.fork().with_actor(actor.clone());
    let hash = f(&mut am)?.context("the edit made no change")?;
    Ok(am.get_change_by_hash(&hash).context("the new change")?.raw_bytes().to_vec())
}

/// Branch A with its secretary, two members (the first the forum's clerk) and their documents;
/// branch B with its secretary and its profile.
struct Scene {
    w: World,
    secretary: Person,
    clerk: Person,
    member: Person,
    other_secretary: Person,
    resolution: DocumentId,
    forum: DocumentId,
    assessment: DocumentId,
    other_profile: DocumentId,
}

async fn scene() -> anyhow::Result<Scene> {
    let mut w = World::start(Limits::default()).await?;
    let (a, b) = (w.a, w.b);
    let secretary = w.person(a, Role::Secretary, "bi-thu").await?;
    let clerk = w.person(a, Role::Member, "thu-ky").await?;
    let member = w.person(a, Role::Member, "dang-vien").await?;
    let other_secretary = w.person(b, Role::Secretary, "bi-thu-b").await?;
    let branch_a = chibo_shared::ids::BranchId::from_bytes(*a.as_bytes());
    let branch_b = chibo_shared::ids::BranchId::from_bytes(*b.as_bytes());

    // The secretary makes the clerk the forum's clerk (the clerk's connections then re-check).
    let (status, text) = w
        .post(
            &format!("/api/v1/forums/{FORUM}/clerks"),
            Some(&secretary.token),
            json!({ "member": clerk.member.to_string() }),
        )
        .await?;
    ensure!(status == 204, "set clerk: {status} {text}");

    let resolution = w
        .create::<Resolution>(&secretary, DocPath::Resolution { branch: branch_a, forum: FORUM }, |r| {
            r.title = "Nghị quyết chi bộ".into();
        })
        .await?;
    let forum = DocPath::Forum { branch: branch_a, forum: FORUM };
    w.register(&secretary, &[forum]).await?;
    let forum = forum.document_id();
    secretary.device.client.open(forum, Some(genesis_change_bytes(DocKind::Forum))).await?;
    secretary.device.client.change(forum, |d| append_text(d, &ForumText::Minutes, "Khai mạc. ")).await??;
    secretary.device.client.wait_synced(forum, TIMEOUT).await?;
    let assessment = w
        .create::<SelfAssessment>(
            &clerk,
            DocPath::SelfAssessment { branch: branch_a, forum: FORUM, member: clerk.member },
            |s| s.catalogue_version = "2026.1".into(),
        )
        .await?;
    let other_profile = w
        .create::<BranchProfile>(&other_secretary, DocPath::BranchProfile { branch: branch_b }, |p| {
            p.name = "Chi bộ B".into();
        })
        .await?;
    Ok(Scene { w, secretary, clerk, member, other_secretary, resolution, forum, assessment, other_profile })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reading_another_branchs_document_answers_unavailable() -> anyhow::Result<()> {
    let s = scene().await?;
    ensure!(
        s.w.fetch(&s.other_secretary, s.other_profile).await?.is_some(),
        "control: B reads its own profile"
    );
    ensure!(s.w.fetch(&s.secretary, s.other_profile).await?.is_none(), "A's secretary read B's profile");
    ensure!(
        s.w.fetch(&s.other_secretary, s.resolution).await?.is_none(),
        "B's secretary read A's resolution"
    );
    s.w.relay.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_member_cannot_read_another_members_self_assessment() -> anyhow::Result<()> {
    let s = scene().await?;
    ensure!(s.w.fetch(&s.clerk, s.assessment).await?.is_some(), "control: the owner reads it");
    ensure!(s.w.fetch(&s.secretary, s.assessment).await?.is_some(), "control: the committee reads it");
    ensure!(
        s.w.fetch(&s.member, s.assessment).await?.is_none(),
        "a plain member read another's self-assessment"
    );
    ensure!(s.w.fetch(&s.member, s.resolution).await?.is_some(), "control: members read the resolution");
    s.w.relay.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_member_writing_the_resolution_is_refused_and_nothing_is_stored() -> anyhow::Result<()> {
    let s = scene().await?;
    let base = s.w.fetch(&s.member, s.resolution).await?.context("members read the resolution")?;
    let change =
        change_by(&base, s.member.actor(), |d| edit::<Resolution>(d, |r| r.title = "Sửa trộm".into()))?;
    let before = s.w.refused_forbidden().await?;
    let code = s.w.push(&s.member, s.resolution, &base, &change).await?;
    ensure!(code == Some(POLICY), "expected a policy close, got {code:?}");
    let hash = Automerge::load(&[base.save(), change].concat())?.get_heads();
    let stored = s.w.stored_hashes(s.resolution).await?;
    ensure!(hash.iter().all(|h| !stored.contains(h)), "the refused change was stored");
    ensure!(s.w.refused_forbidden().await? == before + 1.0, "the refusal is counted");

    // Control: the secretary's own change to the same document goes through.
    let mine =
        change_by(&base, s.secretary.actor(), |d| edit::<Resolution>(d, |r| r.title = "Nghị quyết".into()))?;
    ensure!(
        s.w.push(&s.secretary, s.resolution, &base, &mine).await?.is_none(),
        "the secretary's change was refused"
    );
    s.w.relay.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_forged_with_another_devices_actor_is_refused() -> anyhow::Result<()> {
    let s = scene().await?;
    // The clerk may write the minutes, but not as the secretary's device.
    let base = s.w.fetch(&s.clerk, s.forum).await?.context("the clerk reads the forum")?;
    let forged = change_by(&base, s.secretary.actor(), |d| append_text(d, &ForumText::Minutes, "Giả mạo."))?;
    ensure!(
        s.w.push(&s.clerk, s.forum, &base, &forged).await? == Some(POLICY),
        "a forged change was accepted"
    );
    let own = change_by(&base, s.clerk.actor(), |d| append_text(d, &ForumText::Minutes, "Thư ký ghi."))?;
    ensure!(s.w.push(&s.clerk, s.forum, &base, &own).await?.is_none(), "control: the clerk's own change");
    s.w.relay.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relaying_another_members_genuine_change_is_refused() -> anyhow::Result<()> {
    let s = scene().await?;
    // A change the secretary really made (offline, on their device), handed to the clerk and
    // sent over the clerk's connection: both may write the minutes, but each only as themselves.
    let base = s.w.fetch(&s.clerk, s.forum).await?.context("the clerk reads the forum")?;
    s.secretary.device.client.disconnect().await?;
    s.secretary
        .device
        .client
        .change(s.forum, |d| append_text(d, &ForumText::Minutes, "Bí thư kết luận."))
        .await??;
    let genuine = s
        .secretary
        .device
        .client
        .read(s.forum, |d| d.get_last_local_change().map(|c| c.raw_bytes().to_vec()))
        .await?
        .context("the secretary's change")?;
    ensure!(
        s.w.push(&s.clerk, s.forum, &base, &genuine).await? == Some(POLICY),
        "a relayed change was accepted"
    );
    let hash = automerge::Change::from_bytes(genuine)?.hash();
    ensure!(!s.w.stored_hashes(s.forum).await?.contains(&hash), "the relayed change was stored");
    // Its author sends it, and it lands.
    s.secretary.device.client.connect(&s.w.url_for(&s.secretary.token)).await?;
    s.secretary.device.client.wait_synced(s.forum, TIMEOUT).await?;
    ensure!(s.w.stored_hashes(s.forum).await?.contains(&hash), "control: the author's own upload");
    s.w.relay.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invite_works_once() -> anyhow::Result<()> {
    let mut w = World::start(Limits::default()).await?;
    let code = w.invite(w.a, Role::Member, HOUR).await?;
    let (status, text, _) = w.try_enrol(&code, "first").await?;
    ensure!(status == 201, "first use: {status} {text}");
    let (status, text, _) = w.try_enrol(&code, "second").await?;
    ensure!(status == 410 && text.contains("already been used"), "reuse: {status} {text}");
    w.relay.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_invite_is_refused() -> anyhow::Result<()> {
    let mut w = World::start(Limits::default()).await?;
    let code = w.invite(w.a, Role::Member, Duration::ZERO).await?;
    let (status, text, _) = w.try_enrol(&code, "late").await?;
    ensure!(status == 410 && text.contains("expired"), "expired invite: {status} {text}");
    let fresh = w.invite(w.a, Role::Member, HOUR).await?;
    ensure!(w.try_enrol(&fresh, "on-time").await?.0 == 201, "control: a live invite works");
    w.relay.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_device_closes_its_live_connection_and_refuses_it_after() -> anyhow::Result<()> {
    let s = scene().await?;
    let before = s.w.stored_hashes(s.assessment).await?;
    let mut live = s.w.socket(Some(&s.clerk.token)).await?.map_err(|c| anyhow::anyhow!("upgrade: {c}"))?;
    raw_join(&mut live, &PeerId::new("clerk-phone")?).await?;

    let path = format!("/api/v1/devices/{}/revoke", s.clerk.device_id);
    let (status, text) = s.w.post(&path, Some(&s.member.token), json!({})).await?;
    ensure!(status == 404, "a plain member revoked someone else's device: {status} {text}");
    let (status, text) = s.w.post(&path, Some(&s.secretary.token), json!({})).await?;
    ensure!(status == 204, "revoke: {status} {text}");

    ensure!(closed(&mut live, true).await? == Some(POLICY), "the live connection stayed open");
    ensure!(s.w.socket(Some(&s.clerk.token)).await?.err() == Some(401), "the old session still connects");
    let (status, _) = s.w.try_sign_in(s.clerk.device_id, &s.clerk.key).await?;
    ensure!(status == 401, "a revoked device opened a new session: {status}");
    // What it wrote before stays.
    let after = s.w.stored_hashes(s.assessment).await?;
    ensure!(before.iter().all(|h| after.contains(h)), "the revoked device's earlier changes were dropped");
    s.w.relay.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_credentials_are_refused() -> anyhow::Result<()> {
    // Sessions that end the moment they start: every token is already stale when used.
    let limits = Limits { session_ttl: Duration::ZERO, ..Limits::default() };
    let mut w = World::start(limits).await?;
    let code = w.invite(w.a, Role::Member, HOUR).await?;
    let (status, text, key) = w.try_enrol(&code, "phone").await?;
    ensure!(status == 201, "{status} {text}");
    let device: DeviceId = field(&text, "device")?.parse()?;
    let (status, text) = w.try_sign_in(device, &key).await?;
    ensure!(status == 200, "{status} {text}");
    let token = field(&text, "token")?;
    ensure!(w.socket(Some(&token)).await?.err() == Some(401), "an expired token connected");
    let (status, _) = http_request(w.relay.addr(), "GET", "/api/v1/me", Some(&token), None).await?;
    ensure!(status == 401, "an expired token used the API: {status}");

    // A signed challenge replayed: the nonce is single-use.
    let (_, text) =
        w.post("/api/v1/session/challenge", None, json!({ "device": device.to_string() })).await?;
    let nonce: [u8; 32] =
        hex::decode(field(&text, "nonce")?)?.try_into().map_err(|_| anyhow::anyhow!("nonce"))?;
    let body = json!({
        "device": device.to_string(),
        "nonce": hex::encode(nonce),
        "signature": hex::encode(key.sign(&session_payload(&device, &nonce)).to_bytes()),
    });
    ensure!(w.post("/api/v1/session", None, body.clone()).await?.0 == 200, "control: first use");
    ensure!(
        w.post("/api/v1/session", None, body).await?.0 == 401,
        "a replayed signed challenge opened a session"
    );
    // A session for someone else's key.
    let other = SigningKey::from_bytes(&[0xEE; 32]);
    ensure!(w.try_sign_in(device, &other).await?.0 == 401, "a foreign key signed in");
    w.relay.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guessing_invite_codes_is_rate_limited() -> anyhow::Result<()> {
    let limits = Limits { enrol_per_ip: 5, ..Limits::default() };
    let mut w = World::start(limits).await?;
    let code = w.invite(w.a, Role::Member, HOUR).await?;
    let lookup = &code[..4];
    // Wrong secrets for a real invite: it locks after five.
    for n in 0..5 {
        let guess = format!("{lookup}-2222-22{n:02}").replace('0', "3").replace('1', "4");
        let (status, text, _) = w.try_enrol(&guess, "guesser").await?;
        ensure!(status == 403 || status == 423, "guess {n}: {status} {text}");
    }
    // The next attempt from this address is refused before any code is looked at: the right
    // code included.
    let (status, text, _) = w.try_enrol(&code, "guesser").await?;
    ensure!(status == 429, "after five attempts: {status} {text}");
    // And the invite itself is locked (checked directly: this address is rate limited).
    let invite = w.roster.db().invite(lookup.to_owned()).await?.context("invite")?;
    ensure!(invite.failed_attempts >= 5 && invite.used_at.is_none(), "{invite:?}");
    w.relay.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_requests_are_rate_limited_per_address() -> anyhow::Result<()> {
    // Each sign-in is two requests (challenge, answer); allow two sign-ins.
    let limits = Limits { sign_in_per_ip: 4, ..Limits::default() };
    let mut w = World::start(limits).await?;
    let a = w.a;
    let p = w.person(a, Role::Member, "phone").await?; // the first sign-in
    let (status, text) = w.try_sign_in(p.device_id, &p.key).await?;
    ensure!(status == 200, "the second sign-in: {status} {text}");
    // The fifth request (a challenge nobody has to prove anything for) is refused.
    let body = json!({ "device": p.device_id.to_string() });
    let (status, text) = w.post("/api/v1/session/challenge", None, body).await?;
    ensure!(status == 429, "a fifth sign-in request from one address: {status} {text}");
    w.relay.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_frame_from_an_enrolled_device_closes_its_connection() -> anyhow::Result<()> {
    let mut w = World::start(Limits::default()).await?;
    let a = w.a;
    let p = w.person(a, Role::Member, "big").await?;
    let mut ws = w.socket(Some(&p.token)).await?.map_err(|c| anyhow::anyhow!("upgrade: {c}"))?;
    raw_join(&mut ws, &PeerId::new("big")?).await?;
    ws.send(binary(vec![0u8; 65 * 1024])).await?;
    ensure!(closed(&mut ws, true).await? == Some(1009), "an oversized frame was accepted");
    w.relay.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_without_a_credential_is_refused() -> anyhow::Result<()> {
    let w = World::start(Limits::default()).await?;
    ensure!(w.socket(None).await?.err() == Some(401), "an anonymous socket was upgraded");
    ensure!(w.socket(Some("00ff")).await?.err() == Some(401), "a made-up token was accepted");
    let (status, _) = http_request(w.relay.addr(), "GET", "/api/v1/roster", None, None).await?;
    ensure!(status == 401, "the roster without a token: {status}");
    w.relay.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_js_client_syncs_with_a_credential_and_is_refused_without_one() -> anyhow::Result<()> {
    let s = scene().await?;
    // The plain member's session token in the WebSocket URL: all an unmodified client needs.
    let mut js = JsPeer::start(&s.w.url_for(&s.member.token)).await?;
    let seen = js.call(&format!("find {}", s.forum.to_url()), "doc").await?;
    ensure!(seen.contains("Khai mạc."), "the JS client got {seen}");
    // What the member may not read stays unavailable to it.
    let hidden = js.call(&format!("find {}", s.assessment.to_url()), "unavailable").await;
    ensure!(hidden.is_ok(), "another member's self-assessment reached the JS client: {hidden:?}");
    js.quit().await?;

    // Without a token (and with a made-up one) the upgrade is refused and the client never
    // hears the relay's `peer`.
    for url in [s.w.relay.url(), s.w.url_for("not-a-token")] {
        let refused = JsPeer::start_with(&url, Duration::from_secs(3)).await;
        ensure!(refused.is_err(), "the JS client connected to {url} without a credential");
    }
    s.w.relay.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_commitment_verifies_against_the_roster_on_the_secretarys_device() -> anyhow::Result<()> {
    use chibo_shared::commitment::{self, CommitmentStatus};
    use chibo_shared::schema::{PersonalPlan, PlanItem, PlanItemKind, PlanText};

    let s = scene().await?;
    let branch = chibo_shared::ids::BranchId::from_bytes(*s.w.a.as_bytes());
    let path = DocPath::PersonalPlan { branch, member: s.member.member, year: 2026 };
    let plan =
        s.w.create::<PersonalPlan>(&s.member, path, |p| {
            p.items.push(PlanItem::new("i1", PlanItemKind::Resolution4, "Khắc phục bệnh ngại va chạm."));
        })
        .await?;
    // The member signs on their phone with the device key they enrolled.
    let (key, member) = (s.member.key.clone(), s.member.member);
    s.member
        .device
        .client
        .change(plan, move |d| {
            commitment::commit(d, &plan, &member, &key, 1_790_000_000).map_err(anyhow::Error::from)
        })
        .await??;
    s.member.device.client.wait_synced(plan, TIMEOUT).await?;

    // The secretary's device gets the plan from the relay and the keys from the roster API.
    let (status, roster) =
        http_request(s.w.relay.addr(), "GET", "/api/v1/roster", Some(&s.secretary.token), None).await?;
    ensure!(status == 200, "roster: {status} {roster}");
    let roster: serde_json::Value = serde_json::from_str(&roster)?;
    let keys: Vec<String> = roster["members"]
        .as_array()
        .context("members")?
        .iter()
        .filter(|m| m["id"] == member.to_string())
        .flat_map(|m| m["devices"].as_array().cloned().unwrap_or_default())
        .filter_map(|d| d["public_key"].as_str().map(str::to_owned))
        .collect();
    ensure!(keys.len() == 1, "the member's device keys on the roster: {keys:?}");
    let known = move |k: &[u8; 32]| keys.contains(&hex::encode(k));
    let copy = s.w.fetch(&s.secretary, plan).await?.context("the secretary reads plans")?;
    let status = commitment::verify(&copy, &plan, &member, known.clone())?;
    ensure!(matches!(status, CommitmentStatus::Valid { .. }), "on the secretary's copy: {status:?}");

    // An edit to a signed item after signing shows on the secretary's side.
    let item = PlanText::ItemContent { id: "i1".into() };
    s.member.device.client.change(plan, move |d| append_text(d, &item, " Sửa sau khi ký.")).await??;
    s.member.device.client.wait_synced(plan, TIMEOUT).await?;
    let copy = s.w.fetch(&s.secretary, plan).await?.context("the secretary reads plans")?;
    let status = commitment::verify(&copy, &plan, &member, known)?;
    ensure!(matches!(status, CommitmentStatus::ChangedSinceSigning { .. }), "after an edit: {status:?}");
    s.w.relay.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_secretary_invites_promotes_and_revokes_through_the_api() -> anyhow::Result<()> {
    let mut w = World::start(Limits::default()).await?;
    let a = w.a;
    let secretary = w.person(a, Role::Secretary, "bi-thu").await?;
    let member = w.person(a, Role::Member, "dang-vien").await?;

    // A plain member may not invite.
    let body = json!({ "name": "Ngô Văn Tâm", "role": "member" });
    let (status, _) = w.post("/api/v1/invites", Some(&member.token), body.clone()).await?;
    ensure!(status == 403, "a plain member invited someone: {status}");
    // The secretary's invite comes with a join link and its QR code, and the code works.
    let (status, text) = w.post("/api/v1/invites", Some(&secretary.token), body).await?;
    ensure!(status == 201, "invite: {status} {text}");
    let code = field(&text, "code")?;
    ensure!(field(&text, "join_url")?.ends_with(&format!("ma={code}")), "{text}");
    ensure!(field(&text, "qr_svg")?.starts_with("<?xml") && text.contains("<svg"), "no QR code in {text}");
    let (status, text, _) = w.try_enrol(&code, "newcomer").await?;
    ensure!(status == 201 && field(&text, "role")? == "member", "the invitee: {status} {text}");

    // Promote the member to deputy secretary; the deputy then may invite, but not a secretary.
    let path = format!("/api/v1/members/{}/role", member.member);
    let (status, text) = w.post(&path, Some(&secretary.token), json!({ "role": "deputy-secretary" })).await?;
    ensure!(status == 204, "promote: {status} {text}");
    let (status, text) = http_request(w.relay.addr(), "GET", "/api/v1/me", Some(&member.token), None).await?;
    ensure!(status == 200 && field(&text, "role")? == "deputy-secretary", "after promotion: {status} {text}");
    let (status, _) =
        w.post("/api/v1/invites", Some(&member.token), json!({ "name": "X", "role": "secretary" })).await?;
    ensure!(status == 403, "a deputy invited a secretary: {status}");
    let (status, _) =
        w.post("/api/v1/invites", Some(&member.token), json!({ "name": "Y", "role": "member" })).await?;
    ensure!(status == 201, "a deputy invites members: {status}");
    // A deputy cannot take the secretary's role away.
    let path = format!("/api/v1/members/{}/role", secretary.member);
    let (status, _) = w.post(&path, Some(&member.token), json!({ "role": "member" })).await?;
    ensure!(status == 403, "a deputy demoted the secretary: {status}");

    // A member of another branch is out of reach.
    let b = w.b;
    let outsider = w.person(b, Role::Member, "ngoai").await?;
    let path = format!("/api/v1/devices/{}/revoke", outsider.device_id);
    let (status, _) = w.post(&path, Some(&secretary.token), json!({})).await?;
    ensure!(status == 404, "revoked a device of another branch: {status}");
    // Everyone may revoke their own lost phone.
    let (status, _) = w.post(&path, Some(&outsider.token), json!({})).await?;
    ensure!(status == 204, "revoking one's own device: {status}");
    w.relay.stop().await
}
