//! The JSON API under `/api/v1`: enrolment, sessions, and the secretary's roster operations.
//!
//! Authentication: `Authorization: Bearer <session token>` (the token a device gets by signing a
//! challenge with its key). Every roster change is written to the audit log and closes the live
//! connections it affects (on every relay sharing the database: see `store::postgres::roster`),
//! so their next connection is checked against the new roster.
//!
//! | route                                   | who                         | what                                  |
//! |-----------------------------------------|-----------------------------|---------------------------------------|
//! | `POST /api/v1/enrol`                    | anyone with an invite code  | register a device (rate limited)      |
//! | `POST /api/v1/session/challenge`        | an enrolled device          | a nonce to sign                       |
//! | `POST /api/v1/session`                  | an enrolled device          | a session token for the signed nonce  |
//! | `GET /api/v1/me`                        | signed in                   | who the token is                      |
//! | `POST /api/v1/documents`                | signed in                   | name documents by path (index)        |
//! | `GET /api/v1/roster`                    | branch members              | members, roles, device public keys    |
//! | `POST /api/v1/invites`                  | secretary, deputy secretary | invite a member or a new device       |
//! | `POST /api/v1/members/{id}/role`        | secretary, deputy secretary | change a role                         |
//! | `POST /api/v1/forums/{id}/clerks`       | secretary, deputy secretary | make (or unmake) a forum's clerk      |
//! | `POST /api/v1/devices/{id}/revoke`      | secretary, deputy, owner    | cut a lost device off                 |

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use chibo_shared::access::{self, Role};
use chibo_shared::ids::{DeviceId, ForumId, MemberId, UnitId};
use chibo_shared::schema::DocPath;
use serde::{Deserialize, Serialize};

use crate::error::AppError;
use crate::http::AppState;
use crate::relay::Kick;
use crate::roster::{DevicePrincipal, EnrolRequest, InviteSpec, RosterError, unix_now};

/// Invites last a week unless asked otherwise.
const DEFAULT_INVITE_HOURS: u64 = 7 * 24;
/// At most this many paths per `POST /documents`.
const MAX_PATHS: usize = 1000;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/enrol", post(enrol))
        .route("/api/v1/session/challenge", post(challenge))
        .route("/api/v1/session", post(session))
        .route("/api/v1/me", get(me))
        .route("/api/v1/documents", post(documents))
        .route("/api/v1/roster", get(roster))
        .route("/api/v1/invites", post(invite))
        .route("/api/v1/members/{id}/role", post(set_role))
        .route("/api/v1/forums/{id}/clerks", post(set_clerk))
        .route("/api/v1/devices/{id}/revoke", post(revoke))
}

fn bad(what: &str) -> AppError {
    AppError::BadRequest(format!("invalid {what}"))
}

fn hex_array<const N: usize>(s: &str, what: &str) -> Result<[u8; N], AppError> {
    hex::decode(s).ok().and_then(|v| <[u8; N]>::try_from(v).ok()).ok_or_else(|| bad(what))
}

fn client_ip(connect_info: Option<Extension<ConnectInfo<SocketAddr>>>) -> IpAddr {
    connect_info.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |Extension(ConnectInfo(a))| a.ip())
}

/// The device behind the request's bearer token.
pub(crate) async fn bearer(state: &AppState, headers: &HeaderMap) -> Result<DevicePrincipal, AppError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(RosterError::Unauthenticated)?;
    Ok(state.roster().authenticate(token.trim(), unix_now()).await?)
}

#[derive(Debug, Deserialize)]
struct EnrolBody {
    code: String,
    /// Ed25519 public key, hex.
    public_key: String,
    /// Automerge actor id, hex.
    actor: String,
    #[serde(default)]
    label: String,
}

#[derive(Debug, Serialize)]
struct EnrolReply {
    device: String,
    member: String,
    name: String,
    role: String,
    unit: String,
}

async fn enrol(
    State(state): State<AppState>,
    connect_info: Option<Extension<ConnectInfo<SocketAddr>>>,
    Json(body): Json<EnrolBody>,
) -> Result<(StatusCode, Json<EnrolReply>), AppError> {
    let req = EnrolRequest {
        code: body.code,
        public_key: hex_array(&body.public_key, "public_key")?,
        actor: hex::decode(&body.actor).map_err(|_| bad("actor"))?,
        label: body.label,
    };
    let done = state.roster().enrol(client_ip(connect_info), req, unix_now()).await?;
    Ok((
        StatusCode::CREATED,
        Json(EnrolReply {
            device: done.device.to_string(),
            member: done.member.id.to_string(),
            name: done.member.name,
            role: done.member.role.to_string(),
            unit: done.member.unit.to_string(),
        }),
    ))
}

#[derive(Debug, Deserialize)]
struct ChallengeBody {
    device: String,
}

async fn challenge(
    State(state): State<AppState>,
    connect_info: Option<Extension<ConnectInfo<SocketAddr>>>,
    Json(body): Json<ChallengeBody>,
) -> Result<Json<serde_json::Value>, AppError> {
    state.roster().count_sign_in_attempt(client_ip(connect_info))?;
    let device: DeviceId = body.device.parse().map_err(|_| bad("device"))?;
    let nonce = state.roster().challenge(device, unix_now()).await?;
    Ok(Json(serde_json::json!({ "nonce": hex::encode(nonce) })))
}

#[derive(Debug, Deserialize)]
struct SessionBody {
    device: String,
    nonce: String,
    signature: String,
}

async fn session(
    State(state): State<AppState>,
    connect_info: Option<Extension<ConnectInfo<SocketAddr>>>,
    Json(body): Json<SessionBody>,
) -> Result<Json<serde_json::Value>, AppError> {
    state.roster().count_sign_in_attempt(client_ip(connect_info))?;
    let device: DeviceId = body.device.parse().map_err(|_| bad("device"))?;
    let nonce = hex_array(&body.nonce, "nonce")?;
    let signature = hex_array(&body.signature, "signature")?;
    let (token, expires_at) = state.roster().open_session(device, nonce, signature, unix_now()).await?;
    Ok(Json(serde_json::json!({ "token": token, "expires_at": expires_at })))
}

/// Who the token is, and the forums of their branch (a forum exists once its document is named).
async fn me(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<serde_json::Value>, AppError> {
    let who = bearer(&state, &headers).await?;
    let s = &who.subject;
    let db = state.roster().db();
    let member = db.member(s.member).await?.ok_or(RosterError::Unauthenticated)?;
    let mut forums = Vec::new();
    if let Some(branch) = s.branch {
        for path in db.paths_of_branch(branch).await? {
            if let Ok(DocPath::Forum { forum, .. }) = path.parse::<DocPath>() {
                forums.push(forum.to_string());
            }
        }
    }
    Ok(Json(serde_json::json!({
        "device": who.device.to_string(),
        "member": s.member.to_string(),
        "name": member.name,
        "role": s.role.to_string(),
        "branch": s.branch.map(|b| b.to_string()),
        "clerk_of": s.clerk_of.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "forums": forums,
    })))
}

#[derive(Debug, Deserialize)]
struct DocumentsBody {
    paths: Vec<String>,
}

/// Names documents by their canonical paths, so the relay can check who reads and writes them.
/// Anyone may name a document they may read (a path reveals nothing: its id is its hash).
async fn documents(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(body): Json<DocumentsBody>,
) -> Result<Json<serde_json::Value>, AppError> {
    let who = bearer(&state, &headers).await?;
    if body.paths.len() > MAX_PATHS {
        return Err(AppError::BadRequest(format!("at most {MAX_PATHS} paths per request")));
    }
    let mut paths = Vec::with_capacity(body.paths.len());
    for p in &body.paths {
        let path: DocPath = p.parse().map_err(|e| AppError::BadRequest(format!("{e}")))?;
        if !access::may_read(&who.subject, &path) {
            return Err(RosterError::Forbidden.into());
        }
        paths.push(path);
    }
    state.index.register(state.roster().db().as_ref(), &paths).await?;
    let ids: Vec<_> = paths
        .iter()
        .map(|p| serde_json::json!({ "path": p.to_canonical_string(), "id": p.document_id().to_string() }))
        .collect();
    Ok(Json(serde_json::json!({ "documents": ids })))
}

/// The branch roster: every member with role and devices (public keys, so commitments can be
/// verified offline; actors, so a document's history names who wrote each change). For members of the branch and the upper level above it.
async fn roster(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, AppError> {
    let who = bearer(&state, &headers).await?;
    let branch = who.subject.branch.ok_or(RosterError::Forbidden)?;
    let db = state.roster().db();
    let mut members = Vec::new();
    for m in db.members_of(UnitId::from(branch)).await? {
        let devices: Vec<_> = db
            .devices_of(m.id)
            .await?
            .into_iter()
            .map(|d| {
                serde_json::json!({
                    "id": d.id.to_string(),
                    "label": d.label,
                    "public_key": hex::encode(d.public_key),
                    "actor": hex::encode(&d.actor),
                    "enrolled_at": d.enrolled_at,
                    "revoked_at": d.revoked_at,
                })
            })
            .collect();
        members.push(serde_json::json!({
            "id": m.id.to_string(), "name": m.name, "role": m.role.to_string(), "devices": devices,
        }));
    }
    Ok(Json(serde_json::json!({ "branch": branch.to_string(), "members": members })))
}

/// The caller, if they manage the roster of their branch; and that branch.
fn roster_manager(who: &DevicePrincipal) -> Result<chibo_shared::ids::BranchId, AppError> {
    match who.subject.branch {
        Some(b) if who.subject.role.manages_roster() => Ok(b),
        _ => Err(RosterError::Forbidden.into()),
    }
}

/// A target member of the caller's own branch.
async fn member_of_branch(
    state: &AppState,
    branch: chibo_shared::ids::BranchId,
    id: &str,
) -> Result<crate::roster::MemberRecord, AppError> {
    let id: MemberId = id.parse().map_err(|_| bad("member id"))?;
    let m = state.roster().db().member(id).await?.ok_or(RosterError::NotFound("member"))?;
    if m.unit != UnitId::from(branch) {
        return Err(RosterError::NotFound("member").into());
    }
    Ok(m)
}

/// Only a secretary hands out or takes away the secretary's role.
fn may_grant(who: &DevicePrincipal, role: Role) -> Result<(), AppError> {
    if !role.is_branch_role() || (role == Role::Secretary && who.subject.role != Role::Secretary) {
        return Err(RosterError::Forbidden.into());
    }
    Ok(())
}

#[derive(Debug, Deserialize)]
struct InviteBody {
    name: String,
    role: Option<String>,
    /// Adds a device to this existing member instead of inviting a new one.
    member: Option<String>,
    expires_in_hours: Option<u64>,
}

async fn invite(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(body): Json<InviteBody>,
) -> Result<(StatusCode, Json<serde_json::Value>), AppError> {
    let who = bearer(&state, &headers).await?;
    let branch = roster_manager(&who)?;
    let (role, member) = match &body.member {
        Some(id) => {
            let m = member_of_branch(&state, branch, id).await?;
            (m.role, Some(m.id))
        }
        None => {
            let role: Role = body.role.as_deref().unwrap_or("member").parse().map_err(|_| bad("role"))?;
            may_grant(&who, role)?;
            (role, None)
        }
    };
    let hours = body.expires_in_hours.unwrap_or(DEFAULT_INVITE_HOURS).min(30 * 24);
    let issued = state
        .roster()
        .create_invite(
            InviteSpec {
                member,
                created_by: Some(who.subject.member),
                ..InviteSpec::new(UnitId::from(branch), role, &body.name, Duration::from_secs(hours * 3600))
            },
            unix_now(),
        )
        .await?;
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    let link = join_link(host, &issued.code);
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({
            "code": issued.code,
            "role": role.to_string(),
            "expires_at": issued.record.expires_at,
            "join_url": link,
            "qr_svg": qr_svg(&link),
        })),
    ))
}

/// The link a QR code carries: the app's join page with the code filled in.
pub fn join_link(host: &str, code: &str) -> String {
    format!("http://{host}/tham-gia?ma={code}")
}

/// An SVG QR code of `text` (medium error correction, 4-module quiet zone).
pub fn qr_svg(text: &str) -> String {
    match qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::M) {
        Ok(code) => code.render::<qrcode::render::svg::Color<'_>>().min_dimensions(200, 200).build(),
        Err(e) => {
            tracing::error!(error = %e, "cannot make a QR code");
            String::new()
        }
    }
}

#[derive(Debug, Deserialize)]
struct RoleBody {
    role: String,
}

async fn set_role(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(body): Json<RoleBody>,
) -> Result<StatusCode, AppError> {
    let who = bearer(&state, &headers).await?;
    let branch = roster_manager(&who)?;
    let target = member_of_branch(&state, branch, &id).await?;
    let role: Role = body.role.parse().map_err(|_| bad("role"))?;
    may_grant(&who, role)?;
    may_grant(&who, target.role)?;
    let changed = state.roster().db().set_role(target.id, role).await;
    // Closed here whatever the answer: a change whose acknowledgement was lost still happened
    // (other relays hear of it), and closing a connection that could stay costs one reconnect.
    state.relay.kick(Kick::Member(target.id));
    changed?;
    let detail = format!("{} {} -> {role}", target.id, target.role);
    state.roster().db().audit(unix_now(), who.device.to_string(), "member.role", detail).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
struct ClerkBody {
    member: String,
    #[serde(default = "yes")]
    clerk: bool,
}

fn yes() -> bool {
    true
}

async fn set_clerk(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(forum): Path<String>,
    Json(body): Json<ClerkBody>,
) -> Result<StatusCode, AppError> {
    let who = bearer(&state, &headers).await?;
    let branch = roster_manager(&who)?;
    let forum: ForumId = forum.parse().map_err(|_| bad("forum id"))?;
    let target = member_of_branch(&state, branch, &body.member).await?;
    let changed = state.roster().db().set_clerk(forum, target.id, body.clerk).await;
    state.relay.kick(Kick::Member(target.id)); // whatever the answer, as for roles
    changed?;
    let detail = format!("{} clerk of {forum}: {}", target.id, body.clerk);
    state.roster().db().audit(unix_now(), who.device.to_string(), "forum.clerk", detail).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Revokes a device: its live connections close at once, its sessions end, its future changes
/// are refused; what it wrote before stays.
async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    let who = bearer(&state, &headers).await?;
    let device: DeviceId = id.parse().map_err(|_| bad("device id"))?;
    let db = state.roster().db();
    let record = db.device(device).await?.ok_or(RosterError::NotFound("device"))?;
    let owner = db.member(record.member).await?.ok_or(RosterError::NotFound("device"))?;
    let own = owner.id == who.subject.member;
    let manages =
        who.subject.role.manages_roster() && who.subject.branch.map(UnitId::from) == Some(owner.unit);
    if !own && !manages {
        return Err(RosterError::NotFound("device").into());
    }
    let revoked = db.revoke_device(device, unix_now()).await;
    state.relay.kick(Kick::Device(device)); // whatever the answer, as for roles
    if revoked? {
        tracing::warn!(%device, by = %who.device, "device revoked");
        db.audit(unix_now(), who.device.to_string(), "device.revoke", device.to_string()).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}
