use std::net::{IpAddr, Ipv4Addr};

use ed25519_dalek::{Signer as _, SigningKey};

use super::*;
use crate::store::sqlite::SqliteStore;

const NOW: i64 = 1_790_000_000;
const HOUR: Duration = Duration::from_secs(3600);

fn ip(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, n))
}

async fn roster(limits: Limits) -> (Roster, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(dir.path().join("db")).expect("open");
    (Roster::new(store.roster(), limits), dir)
}

async fn branch(r: &Roster) -> (UnitId, UnitId) {
    let top = r.create_unit(UnitKind::Committee, "Đảng ủy phường", None, NOW).await.expect("unit");
    let branch = r.create_unit(UnitKind::Branch, "Chi bộ 3", Some(top), NOW).await.expect("branch");
    (top, branch)
}

fn key(n: u8) -> SigningKey {
    SigningKey::from_bytes(&[n; 32])
}

fn request(code: &str, n: u8) -> EnrolRequest {
    EnrolRequest {
        code: code.to_owned(),
        public_key: key(n).verifying_key().to_bytes(),
        actor: vec![n; 16],
        label: format!("phone {n}"),
    }
}

async fn signed_in(r: &Roster, device: DeviceId, k: &SigningKey) -> Result<String, RosterError> {
    let nonce = r.challenge(device).await?;
    let sig = k.sign(&session_payload(&device, &nonce)).to_bytes();
    r.open_session(device, nonce, sig, NOW).await.map(|(t, _)| t)
}

async fn invite(r: &Roster, unit: UnitId, role: Role, ttl: Duration) -> IssuedInvite {
    r.create_invite(InviteSpec::new(unit, role, "Nguyễn Văn An", ttl), NOW).await.expect("invite")
}

#[test]
fn invite_codes_parse_whatever_the_case_and_separators() {
    assert_eq!(parse_code("ab2c-d3ef-gh4k"), Some(("AB2C".into(), "D3EFGH4K".into())));
    assert_eq!(parse_code(" AB2C D3EF GH4K "), Some(("AB2C".into(), "D3EFGH4K".into())));
    assert_eq!(parse_code("AB2C-D3EF-GH4"), None, "too short");
    assert_eq!(parse_code("AB2C-D3EF-GH40"), None, "0 is not in the alphabet");
    for _ in 0..50 {
        let c = random_code_chars(12);
        assert!(parse_code(&c).is_some(), "{c}");
    }
}

#[tokio::test]
async fn an_invite_enrols_one_device_once_and_the_device_signs_in() {
    let (r, _dir) = roster(Limits::default()).await;
    let (_, unit) = branch(&r).await;
    let inv = invite(&r, unit, Role::Secretary, HOUR).await;
    let done = r.enrol(ip(1), request(&inv.code.to_lowercase(), 1), NOW).await.expect("enrol");
    assert_eq!(done.member.role, Role::Secretary);
    assert_eq!(done.member.unit, unit);
    let again = r.enrol(ip(1), request(&inv.code, 2), NOW).await;
    assert!(matches!(again, Err(RosterError::InviteUsed)), "{again:?}");

    let token = signed_in(&r, done.device, &key(1)).await.expect("session");
    let who = r.authenticate(&token, NOW).await.expect("authenticated");
    assert_eq!(who.device, done.device);
    assert_eq!(who.actor, vec![1; 16]);
    assert_eq!(who.subject.role, Role::Secretary);
    assert_eq!(who.subject.branch.map(UnitId::from), Some(unit));
    // Stored hashed: the hash finds the session, the token itself is not a key.
    assert!(r.db().session(token_hash(&token)).await.expect("read").is_some());
    let raw: [u8; 32] = hex::decode(&token).ok().and_then(|v| v.try_into().ok()).expect("hex token");
    assert!(r.db().session(raw).await.expect("read").is_none());
}

#[tokio::test]
async fn a_session_needs_the_devices_own_signature_on_a_fresh_nonce() {
    let (r, _dir) = roster(Limits::default()).await;
    let (_, unit) = branch(&r).await;
    let inv = invite(&r, unit, Role::Member, HOUR).await;
    let device = r.enrol(ip(1), request(&inv.code, 3), NOW).await.expect("enrol").device;

    let nonce = r.challenge(device).await.expect("nonce");
    let wrong = key(4).sign(&session_payload(&device, &nonce)).to_bytes();
    assert!(matches!(r.open_session(device, nonce, wrong, NOW).await, Err(RosterError::Unauthenticated)));
    // The failed attempt used the nonce up: the right signature on it no longer works.
    let right = key(3).sign(&session_payload(&device, &nonce)).to_bytes();
    assert!(matches!(r.open_session(device, nonce, right, NOW).await, Err(RosterError::Unauthenticated)));

    let nonce = r.challenge(device).await.expect("nonce");
    let right = key(3).sign(&session_payload(&device, &nonce)).to_bytes();
    assert!(r.open_session(device, nonce, right, NOW).await.is_ok());
    assert!(
        matches!(r.open_session(device, nonce, right, NOW).await, Err(RosterError::Unauthenticated)),
        "a replayed signed nonce is refused"
    );
}

#[tokio::test]
async fn expired_sessions_and_revoked_devices_are_refused() {
    let limits = Limits { session_ttl: Duration::from_secs(60), ..Limits::default() };
    let (r, _dir) = roster(limits).await;
    let (_, unit) = branch(&r).await;
    let inv = invite(&r, unit, Role::Member, HOUR).await;
    let device = r.enrol(ip(1), request(&inv.code, 5), NOW).await.expect("enrol").device;
    let token = signed_in(&r, device, &key(5)).await.expect("session");
    assert!(r.authenticate(&token, NOW + 59).await.is_ok());
    assert!(matches!(r.authenticate(&token, NOW + 60).await, Err(RosterError::Unauthenticated)));

    let token = signed_in(&r, device, &key(5)).await.expect("session");
    assert!(r.db().revoke_device(device, NOW).await.expect("revoke"));
    assert!(matches!(r.authenticate(&token, NOW).await, Err(RosterError::Unauthenticated)));
    assert!(matches!(signed_in(&r, device, &key(5)).await, Err(RosterError::Unauthenticated)));
}

#[tokio::test]
async fn expired_invites_and_wrong_secrets_are_refused_and_an_invite_locks() {
    let (r, _dir) = roster(Limits::default()).await;
    let (_, unit) = branch(&r).await;
    let expired = invite(&r, unit, Role::Member, Duration::from_secs(60)).await;
    let late = r.enrol(ip(1), request(&expired.code, 6), NOW + 60).await;
    assert!(matches!(late, Err(RosterError::InviteExpired)), "{late:?}");

    let inv = invite(&r, unit, Role::Member, HOUR).await;
    let lookup = &inv.code[..4];
    for n in 0..5u8 {
        // A different address each time: this is the per-invite limit, not the per-address one.
        let guess = format!("{lookup}-2222-222{}", n + 2);
        let e = r.enrol(ip(10 + n), request(&guess, 7), NOW).await;
        assert!(matches!(e, Err(RosterError::InvalidCode | RosterError::InviteLocked)), "{e:?}");
    }
    let right = r.enrol(ip(20), request(&inv.code, 7), NOW).await;
    assert!(matches!(right, Err(RosterError::InviteLocked)), "{right:?}");
}

#[tokio::test]
async fn one_address_is_limited_whatever_codes_it_tries() {
    let limits = Limits { enrol_per_ip: 3, ..Limits::default() };
    let (r, _dir) = roster(limits).await;
    for _ in 0..3 {
        let e = r.enrol(ip(1), request("2222-2222-2222", 8), NOW).await;
        assert!(matches!(e, Err(RosterError::InvalidCode)), "{e:?}");
    }
    let e = r.enrol(ip(1), request("2222-2222-2222", 8), NOW).await;
    assert!(matches!(e, Err(RosterError::RateLimited)), "{e:?}");
    let other = r.enrol(ip(2), request("2222-2222-2222", 8), NOW).await;
    assert!(matches!(other, Err(RosterError::InvalidCode)), "another address is not limited: {other:?}");
}

#[tokio::test]
async fn an_upper_level_reader_oversees_the_branches_below_their_committee_only() {
    let (r, _dir) = roster(Limits::default()).await;
    let (top, unit) = branch(&r).await;
    let elsewhere = r.create_unit(UnitKind::Committee, "Đảng ủy khác", None, NOW).await.expect("unit");
    let other_branch = r.create_unit(UnitKind::Branch, "Chi bộ khác", Some(elsewhere), NOW).await.expect("b");
    let sub = r.create_unit(UnitKind::Committee, "Đảng bộ bộ phận", Some(top), NOW).await.expect("sub");
    let deep = r.create_unit(UnitKind::Branch, "Chi bộ 7", Some(sub), NOW).await.expect("deep");
    let inv = invite(&r, top, Role::UpperReader, HOUR).await;
    let device = r.enrol(ip(1), request(&inv.code, 9), NOW).await.expect("enrol").device;
    let token = signed_in(&r, device, &key(9)).await.expect("session");
    let who = r.authenticate(&token, NOW).await.expect("auth");
    let want: BTreeSet<BranchId> =
        [unit, deep].into_iter().map(|u| BranchId::from_bytes(*u.as_bytes())).collect();
    assert_eq!(who.subject.oversees, want);
    assert!(!who.subject.oversees.contains(&BranchId::from_bytes(*other_branch.as_bytes())));
    assert_eq!(who.subject.branch, None);
}

#[tokio::test]
async fn roles_must_fit_the_unit() {
    let (r, _dir) = roster(Limits::default()).await;
    let (top, unit) = branch(&r).await;
    assert!(r.create_invite(InviteSpec::new(top, Role::Member, "x", HOUR), NOW).await.is_err());
    assert!(r.create_invite(InviteSpec::new(unit, Role::UpperReader, "x", HOUR), NOW).await.is_err());
    assert!(r.create_unit(UnitKind::Branch, "under a branch", Some(unit), NOW).await.is_err());
}
