//! Small facts the sync driver keeps in `localStorage`: this device's identity, the heads the relay
//! last acknowledged per document, and when the device was last fully in sync. All of it can be
//! lost without losing data (documents live in IndexedDB): a lost identity means a new actor, lost
//! heads mean documents count as unsynchronised until the relay answers again.

use std::str::FromStr;

use automerge::{ActorId, ChangeHash};
use chibo_shared::ids::{DocumentId, PeerId};

const PEER_ID_KEY: &str = "chibo.device.peer-id";
const ACTOR_KEY: &str = "chibo.device.actor";
const LAST_SYNC_KEY: &str = "chibo.sync.last";

fn relay_heads_key(doc: DocumentId) -> String {
    format!("chibo.sync.relay-heads.{doc}")
}

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok().flatten()
}

fn get(key: &str) -> Option<String> {
    storage()?.get_item(key).ok().flatten()
}

fn set(key: &str, value: &str) {
    // A full or blocked localStorage only costs the memo (see the module docs).
    if let Some(s) = storage() {
        let _ = s.set_item(key, value);
    }
}

/// Who this browser is to the relay.
#[derive(Debug, Clone)]
pub struct DeviceIdentity {
    pub peer_id: PeerId,
    /// The actor every local change carries.
    pub actor: ActorId,
}

/// The identity made on first start and kept since.
///
/// A stand-in until enrolment: then the device generates an Ed25519 key pair, registers it with an
/// invite code, and the relay binds this actor to that device. Until then both are random and
/// unauthenticated (the relay runs with its development principal). Without `localStorage` a fresh
/// identity is made per page load, which is harmless: a new actor per session merges like any other.
pub(super) fn device_identity() -> DeviceIdentity {
    let stored_peer = get(PEER_ID_KEY).and_then(|s| PeerId::new(s).ok());
    let stored_actor = get(ACTOR_KEY).and_then(|s| ActorId::from_str(&s).ok());
    match (stored_peer, stored_actor) {
        (Some(peer_id), Some(actor)) => DeviceIdentity { peer_id, actor },
        _ => {
            let actor = ActorId::random();
            let peer_id = PeerId::new(format!("chibo-web-{}", ActorId::random()))
                .expect("a short ASCII peer id is valid");
            set(PEER_ID_KEY, peer_id.as_str());
            set(ACTOR_KEY, &actor.to_hex_string());
            DeviceIdentity { peer_id, actor }
        }
    }
}

/// The heads the relay last told us it has for `doc`, if we ever heard.
pub(super) fn relay_heads(doc: DocumentId) -> Option<Vec<ChangeHash>> {
    let text = get(&relay_heads_key(doc))?;
    text.split(',').filter(|s| !s.is_empty()).map(|s| ChangeHash::from_str(s).ok()).collect()
}

pub(super) fn set_relay_heads(doc: DocumentId, heads: &[ChangeHash]) {
    let text: Vec<String> = heads.iter().map(ToString::to_string).collect();
    set(&relay_heads_key(doc), &text.join(","));
}

/// When every open document was last acknowledged by the relay (ms since the epoch).
pub(super) fn last_sync() -> Option<f64> {
    get(LAST_SYNC_KEY)?.parse().ok()
}

pub(super) fn set_last_sync(at: f64) {
    set(LAST_SYNC_KEY, &at.to_string());
}
