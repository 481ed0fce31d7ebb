//! The roster's behaviour, run against both backends: every contract function below takes a
//! fresh [`RosterStore`] and is run on SQLite (a temp dir) and on PostgreSQL (a fresh database
//! from `CHIBO_TEST_PG`; skipped without it unless `CHIBO_REQUIRE_PG=1`), by `on_both_backends!`.

use std::net::{IpAddr, Ipv4Addr};

use chibo_shared::ids::DocumentId;
use chibo_shared::schema::DocPath;
use ed25519_dalek::{Signer as _, SigningKey};

use super::*;
use crate::store::postgres::PostgresStore;
use crate::store::postgres::testdb::TestDatabase;
use crate::store::sqlite::SqliteStore;

/// For each contract `name(db: Arc<dyn RosterStore>)` (or `name(a, b)`: two handles on one
/// database, as two relays have), a test on SQLite and one on PostgreSQL.
macro_rules! on_both_backends {
    ($($name:ident($($handle:ident),+)),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let dir = tempfile::tempdir().expect("tempdir");
                    let path = dir.path().join("db");
                    $(
                        let $handle = super::SqliteStore::open(&path).expect("open").shared_roster();
                    )+
                    super::$name($($handle),+).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let test = concat!("roster_", stringify!($name));
                    let Some(db) = super::TestDatabase::create(test).await.expect("creating the test database") else {
                        return;
                    };
                    $(
                        let $handle = super::PostgresStore::connect(db.url()).await.expect("connect").shared_roster();
                    )+
                    super::$name($($handle),+).await;
                    db.drop_database().await.expect("drop");
                }
            )*
        }
    };
}

on_both_backends! {
    an_invite_enrols_one_device_once_and_the_device_signs_in(db),
    a_session_needs_the_devices_own_signature_on_a_fresh_nonce(db),
    a_challenge_expires_and_is_used_up_by_any_answer(db),
    expired_sessions_and_revoked_devices_are_refused(db),
    expired_invites_and_wrong_secrets_are_refused_and_an_invite_locks(db),
    one_address_is_limited_whatever_codes_it_tries(db),
    an_upper_level_reader_oversees_the_branches_below_their_committee_only(db),
    roles_must_fit_the_unit(db),
    roles_clerks_rosters_and_the_document_index_read_back(db),
    two_nodes_redeeming_one_invite_at_once_enrol_one_device(a, b),
    wrong_secrets_from_two_nodes_at_once_are_all_counted(a, b),
    a_right_secret_checked_before_the_invite_locked_does_not_enrol(db),
}

const NOW: i64 = 1_790_000_000;
const HOUR: Duration = Duration::from_secs(3600);

fn ip(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, n))
}

fn roster(db: Arc<dyn RosterStore>, limits: Limits) -> Roster {
    Roster::new(db, limits)
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
    let nonce = r.challenge(device, NOW).await?;
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

async fn an_invite_enrols_one_device_once_and_the_device_signs_in(db: Arc<dyn RosterStore>) {
    let r = roster(db, Limits::default());
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

async fn a_session_needs_the_devices_own_signature_on_a_fresh_nonce(db: Arc<dyn RosterStore>) {
    let r = roster(db, Limits::default());
    let (_, unit) = branch(&r).await;
    let inv = invite(&r, unit, Role::Member, HOUR).await;
    let device = r.enrol(ip(1), request(&inv.code, 3), NOW).await.expect("enrol").device;

    let nonce = r.challenge(device, NOW).await.expect("nonce");
    let wrong = key(4).sign(&session_payload(&device, &nonce)).to_bytes();
    assert!(matches!(r.open_session(device, nonce, wrong, NOW).await, Err(RosterError::Unauthenticated)));
    // The failed attempt used the nonce up: the right signature on it no longer works.
    let right = key(3).sign(&session_payload(&device, &nonce)).to_bytes();
    assert!(matches!(r.open_session(device, nonce, right, NOW).await, Err(RosterError::Unauthenticated)));

    let nonce = r.challenge(device, NOW).await.expect("nonce");
    let right = key(3).sign(&session_payload(&device, &nonce)).to_bytes();
    assert!(r.open_session(device, nonce, right, NOW).await.is_ok());
    assert!(
        matches!(r.open_session(device, nonce, right, NOW).await, Err(RosterError::Unauthenticated)),
        "a replayed signed nonce is refused"
    );
}

async fn expired_sessions_and_revoked_devices_are_refused(db: Arc<dyn RosterStore>) {
    let limits = Limits { session_ttl: Duration::from_secs(60), ..Limits::default() };
    let r = roster(db, limits);
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

async fn expired_invites_and_wrong_secrets_are_refused_and_an_invite_locks(db: Arc<dyn RosterStore>) {
    let r = roster(db, Limits::default());
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

async fn one_address_is_limited_whatever_codes_it_tries(db: Arc<dyn RosterStore>) {
    let limits = Limits { enrol_per_ip: 3, ..Limits::default() };
    let r = roster(db, limits);
    for _ in 0..3 {
        let e = r.enrol(ip(1), request("2222-2222-2222", 8), NOW).await;
        assert!(matches!(e, Err(RosterError::InvalidCode)), "{e:?}");
    }
    let e = r.enrol(ip(1), request("2222-2222-2222", 8), NOW).await;
    assert!(matches!(e, Err(RosterError::RateLimited)), "{e:?}");
    let other = r.enrol(ip(2), request("2222-2222-2222", 8), NOW).await;
    assert!(matches!(other, Err(RosterError::InvalidCode)), "another address is not limited: {other:?}");
}

async fn an_upper_level_reader_oversees_the_branches_below_their_committee_only(db: Arc<dyn RosterStore>) {
    let r = roster(db, Limits::default());
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

async fn roles_must_fit_the_unit(db: Arc<dyn RosterStore>) {
    let r = roster(db, Limits::default());
    let (top, unit) = branch(&r).await;
    assert!(r.create_invite(InviteSpec::new(top, Role::Member, "x", HOUR), NOW).await.is_err());
    assert!(r.create_invite(InviteSpec::new(unit, Role::UpperReader, "x", HOUR), NOW).await.is_err());
    assert!(r.create_unit(UnitKind::Branch, "under a branch", Some(unit), NOW).await.is_err());
}

async fn roles_clerks_rosters_and_the_document_index_read_back(db: Arc<dyn RosterStore>) {
    let r = roster(db.clone(), Limits::default());
    let (_, unit) = branch(&r).await;
    let branch_id = BranchId::from_bytes(*unit.as_bytes());
    let inv = invite(&r, unit, Role::Member, HOUR).await;
    let done = r.enrol(ip(1), request(&inv.code, 11), NOW).await.expect("enrol");
    let m = done.member.id;
    let direct =
        MemberRecord { id: MemberId::from_bytes([3; 16]), unit, name: "Anh Ba".into(), role: Role::Member };
    db.insert_member(direct.clone(), NOW).await.expect("insert member");
    db.insert_member(MemberRecord { name: "changed".into(), ..direct.clone() }, NOW).await.expect("again");
    assert_eq!(db.member(direct.id).await.expect("read"), Some(direct.clone()), "an existing member is kept");
    let names: Vec<String> =
        db.members_of(unit).await.expect("members").into_iter().map(|m| m.name).collect();
    assert_eq!(names, ["Anh Ba", "Nguyễn Văn An"], "by name");

    db.set_role(m, Role::DeputySecretary).await.expect("role");
    assert_eq!(db.member(m).await.expect("read").map(|m| m.role), Some(Role::DeputySecretary));
    let forum = ForumId::from_bytes([5; 16]);
    db.set_clerk(forum, m, true).await.expect("clerk");
    db.set_clerk(forum, m, true).await.expect("clerk twice");
    assert_eq!(db.clerk_of(m).await.expect("clerks"), vec![forum]);
    db.set_clerk(forum, m, false).await.expect("unclerk");
    assert!(db.clerk_of(m).await.expect("clerks").is_empty());

    let devices = db.devices_of(m).await.expect("devices");
    assert_eq!(devices.len(), 1);
    assert_eq!(
        (devices[0].id, devices[0].actor.clone(), devices[0].revoked_at),
        (done.device, vec![11; 16], None)
    );
    assert_eq!(devices[0].public_key, key(11).verifying_key().to_bytes());
    assert!(db.revoke_device(done.device, NOW + 1).await.expect("revoke"));
    assert!(!db.revoke_device(done.device, NOW + 2).await.expect("revoke again"), "already revoked");
    assert_eq!(db.device(done.device).await.expect("read").and_then(|d| d.revoked_at), Some(NOW + 1));
    assert!(!db.revoke_device(DeviceId::from_bytes([9; 16]), NOW).await.expect("unknown"));

    let paths = [DocPath::Forum { branch: branch_id, forum }, DocPath::BranchProfile { branch: branch_id }];
    let rows: Vec<_> = paths.iter().map(|p| (p.document_id(), p.to_canonical_string(), p.branch())).collect();
    db.index_documents(rows.clone()).await.expect("index");
    db.index_documents(rows).await.expect("index again");
    let mut index = db.document_index().await.expect("index");
    index.sort();
    let mut want: Vec<_> = paths.iter().map(|p| (p.document_id(), p.to_canonical_string())).collect();
    want.sort();
    assert_eq!(index, want);
    let unknown = DocumentId::from_bytes([0xAB; 16]);
    let found = db.document_paths(vec![paths[0].document_id(), unknown]).await.expect("lookup");
    assert_eq!(
        found,
        vec![(paths[0].document_id(), paths[0].to_canonical_string())],
        "the unknown is left out"
    );
    let mut of_branch: Vec<String> = paths.iter().map(DocPath::to_canonical_string).collect();
    of_branch.sort();
    assert_eq!(db.paths_of_branch(branch_id).await.expect("paths"), of_branch);
    db.audit(NOW, "admin".into(), "test.action", "detail".into()).await.expect("audit");
}

/// Two relays redeem the same invite at the same moment (each its own handle on the database):
/// exactly one device is enrolled, the other is told the invite is used.
async fn two_nodes_redeeming_one_invite_at_once_enrol_one_device(
    a: Arc<dyn RosterStore>,
    b: Arc<dyn RosterStore>,
) {
    let (ra, rb) = (roster(a.clone(), Limits::default()), roster(b, Limits::default()));
    let (_, unit) = branch(&ra).await;
    for round in 0..8u8 {
        let inv = invite(&ra, unit, Role::Member, HOUR).await;
        let (x, y) = (request(&inv.code, 2 * round + 20), request(&inv.code, 2 * round + 21));
        let (one, other) = tokio::join!(ra.enrol(ip(1), x, NOW), rb.enrol(ip(2), y, NOW));
        let ok = [&one, &other].iter().filter(|e| e.is_ok()).count();
        assert_eq!(ok, 1, "round {round}: {one:?} {other:?}");
        let refused = if one.is_ok() { other } else { one };
        assert!(matches!(refused, Err(RosterError::InviteUsed)), "round {round}: {refused:?}");
    }
    let members = a.members_of(unit).await.expect("members");
    assert_eq!(members.len(), 8, "one member per invite");
    for m in members {
        assert_eq!(a.devices_of(m.id).await.expect("devices").len(), 1);
    }
}

/// Wrong secrets sent through two relays at once all count against the invite.
async fn wrong_secrets_from_two_nodes_at_once_are_all_counted(
    a: Arc<dyn RosterStore>,
    b: Arc<dyn RosterStore>,
) {
    let r = roster(a.clone(), Limits::default());
    let (_, unit) = branch(&r).await;
    let inv = invite(&r, unit, Role::Member, HOUR).await;
    let lookup = inv.record.lookup.clone();
    let counts = futures::future::join_all((0..10).map(|i| {
        let db = if i % 2 == 0 { a.clone() } else { b.clone() };
        let lookup = lookup.clone();
        async move { db.invite_failed(lookup).await.expect("count") }
    }))
    .await;
    let mut sorted = counts.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (1..=10).collect::<Vec<u32>>(), "each failure counted once: {counts:?}");
    assert_eq!(a.invite(lookup).await.expect("read").map(|i| i.failed_attempts), Some(10));
    assert_eq!(b.invite_failed("NONE".into()).await.expect("unknown"), 0);
}

async fn a_challenge_expires_and_is_used_up_by_any_answer(db: Arc<dyn RosterStore>) {
    let r = roster(db, Limits::default()); // challenges last 120 s
    let (_, unit) = branch(&r).await;
    let inv = invite(&r, unit, Role::Member, HOUR).await;
    let device = r.enrol(ip(1), request(&inv.code, 12), NOW).await.expect("enrol").device;
    let sign = |nonce: &[u8; 32]| key(12).sign(&session_payload(&device, nonce)).to_bytes();

    let nonce = r.challenge(device, NOW).await.expect("nonce");
    let late = r.open_session(device, nonce, sign(&nonce), NOW + 120).await;
    assert!(matches!(late, Err(RosterError::Unauthenticated)), "answered too late: {late:?}");
    let nonce = r.challenge(device, NOW).await.expect("nonce");
    assert!(r.open_session(device, nonce, sign(&nonce), NOW + 119).await.is_ok(), "in time");

    // Answered for another device, the nonce is used up all the same.
    let other = DeviceId::from_bytes([0xEE; 16]);
    let nonce = r.challenge(device, NOW).await.expect("nonce");
    assert!(matches!(
        r.open_session(other, nonce, sign(&nonce), NOW).await,
        Err(RosterError::Unauthenticated)
    ));
    assert!(matches!(
        r.open_session(device, nonce, sign(&nonce), NOW).await,
        Err(RosterError::Unauthenticated)
    ));
    // A challenge for a device nobody enrolled never opens a session.
    let nonce = r.challenge(other, NOW).await.expect("a nonce, whoever asks");
    assert!(matches!(r.open_session(other, nonce, [0; 64], NOW).await, Err(RosterError::Unauthenticated)));
}

/// PostgreSQL only (SQLite relays are one process each): a challenge issued by one relay is
/// answered on another, and a signed answer sent to two relays at once opens one session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_challenge_from_one_relay_is_answered_once_on_any() {
    let Some(db) = TestDatabase::create("roster_postgres_a_challenge_from_one_relay_is_answered_once_on_any")
        .await
        .expect("creating the test database")
    else {
        return;
    };
    let a =
        roster(PostgresStore::connect(db.url()).await.expect("connect").shared_roster(), Limits::default());
    let b =
        roster(PostgresStore::connect(db.url()).await.expect("connect").shared_roster(), Limits::default());
    let (_, unit) = branch(&a).await;
    let inv = invite(&a, unit, Role::Member, HOUR).await;
    let device = a.enrol(ip(1), request(&inv.code, 13), NOW).await.expect("enrol").device;
    let sign = |nonce: &[u8; 32]| key(13).sign(&session_payload(&device, nonce)).to_bytes();
    for round in 0..8 {
        let nonce = a.challenge(device, NOW).await.expect("nonce from A");
        let (on_a, on_b) = tokio::join!(
            a.open_session(device, nonce, sign(&nonce), NOW),
            b.open_session(device, nonce, sign(&nonce), NOW)
        );
        let opened = [&on_a, &on_b].iter().filter(|s| s.is_ok()).count();
        assert_eq!(opened, 1, "round {round}: {on_a:?} {on_b:?}");
    }
    let nonce = a.challenge(device, NOW).await.expect("nonce from A");
    let (token, _) = b.open_session(device, nonce, sign(&nonce), NOW).await.expect("answered on B");
    assert!(a.authenticate(&token, NOW).await.is_ok(), "B's session works on A");
    db.drop_database().await.expect("drop");
}

/// The lockout is decided inside the redeeming transaction: a right secret whose check came
/// before other relays' wrong guesses locked the invite (the state `enrol` read is stale by the
/// time it redeems) is refused, and nothing is enrolled.
async fn a_right_secret_checked_before_the_invite_locked_does_not_enrol(db: Arc<dyn RosterStore>) {
    let r = roster(db.clone(), Limits::default());
    let (_, unit) = branch(&r).await;
    let inv = invite(&r, unit, Role::Member, HOUR).await;
    let lookup = inv.code[..4].to_owned();
    let limit = Limits::default().invite_failures;
    // Meanwhile, through other relays, wrong guesses reach the limit.
    for _ in 0..limit {
        db.invite_failed(lookup.clone()).await.expect("count");
    }
    let device = DeviceRecord {
        id: DeviceId::from_bytes([0x51; 16]),
        member: MemberId::from_bytes([0x52; 16]),
        public_key: key(51).verifying_key().to_bytes(),
        actor: vec![0x51; 16],
        label: "late".into(),
        enrolled_at: NOW,
        revoked_at: None,
    };
    let member = MemberRecord { id: device.member, unit, name: "late".into(), role: Role::Member };
    let e = db.redeem(lookup.clone(), NOW, limit, Some(member), device).await;
    assert!(matches!(e, Err(RedeemError::Locked)), "{e:?}");
    assert!(db.device(DeviceId::from_bytes([0x51; 16])).await.expect("device").is_none());
    let invite = db.invite(lookup).await.expect("invite").expect("still there");
    assert!(invite.used_at.is_none(), "{invite:?}");
}
