//! The sans-IO sync engine: automerge-repo v1 over many documents and connections.
//!
//! The engine takes [`Input`]s (a connection opened, a frame arrived, chunks loaded from storage,
//! a write became durable) and returns [`Effect`]s (bytes to send, a connection to close, chunks
//! to load or write). It never spawns, sleeps, reads a clock or touches a socket or disk; the
//! relay, the native client and the browser each run it with their own IO, and [`memnet`] runs
//! many engines against each other in memory for tests.
//!
//! Invariants the engine keeps:
//! - **Durable before sent:** no sync message for a document leaves an engine while a write of
//!   that document's new changes is in flight. On the relay this makes every head a peer learns
//!   durable; on a client it makes "saved" mean "on this device's disk" and keeps a device that
//!   crashes from reusing a sequence number it already sent. (After a client's write fails, its
//!   changes go out anyway: better on the relay than only in memory.)
//! - Sync state is per (connection, document) and starts fresh on every connection.
//! - Several relays may share one store: what another process stored reaches this engine as
//!   [`Input::StorageChanged`] and is merged without being written again (it is durable).
//! - A connection that breaks the protocol is closed with a [`CloseReason`]; nothing it sent
//!   before is dropped, and other connections are untouched.

pub mod authorship;
mod engine;
pub mod memnet;

use std::fmt;

pub use authorship::IncomingChange;
pub use engine::{Engine, EngineError};

use crate::ids::{DocumentId, PeerId};
use crate::storage::{Chunk, WriteBatch};
use crate::wire::DecodeError;

/// Milliseconds on the caller's clock (only differences matter).
pub type Millis = u64;

/// A connection, numbered by the caller (the relay's accept loop, the client's dialer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn#{}", self.0)
    }
}

/// A store write the engine asked for; echoed back in [`Input::Written`]/[`Input::WriteFailed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WriteId(pub u64);

/// Which side of the handshake we are on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// We dialled: we send `join` and wait for `peer`.
    Outbound,
    /// They dialled: we wait for `join` and answer `peer`.
    Inbound,
}

/// How the engine shares documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Serves what peers ask for, keeps documents only while someone uses them, answers
    /// `doc-unavailable` for documents it has never stored, and acknowledges only durable changes.
    Relay,
    /// Syncs every document it has opened with every connected peer.
    Client,
}

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub role: Role,
    pub peer_id: PeerId,
    /// Our automerge-repo storage id, announced in the handshake.
    pub storage_id: Option<String>,
    /// Frames larger than this close the connection.
    pub max_message_bytes: usize,
    /// An inbound connection that has not sent `join` after this long is closed.
    pub handshake_timeout: Millis,
    /// The actor our local changes carry (a client's device actor); `None` for the relay.
    pub actor: Option<automerge::ActorId>,
    /// Announce and use chibo's heads-summary extension with peers that announce it too: a
    /// reconnecting client lists all its documents with a digest of their heads in one message,
    /// and the relay answers only for those that differ (see `wire::Message::HeadsSummary`).
    /// Peers that do not announce it (automerge-repo) get the plain protocol.
    pub heads_summary: bool,
}

impl EngineConfig {
    pub fn new(role: Role, peer_id: PeerId) -> Self {
        Self {
            role,
            peer_id,
            storage_id: None,
            max_message_bytes: 8 << 20,
            handshake_timeout: 30_000,
            actor: None,
            heads_summary: true,
        }
    }
}

/// Who may read and write which document. The relay implements it from its roster; the open
/// policy serves development and clients (which trust their own user).
pub trait Access {
    /// What the transport authenticated for a connection.
    type Principal: fmt::Debug;

    /// May `who` receive `doc`? A refusal answers `doc-unavailable` and reveals nothing more.
    fn may_read(&self, who: &Self::Principal, doc: &DocumentId) -> bool;

    /// May `who` add these changes to `doc`? Called with every change of one sync message that
    /// the document does not hold yet (decoded from the message, see [`authorship`]), before any
    /// of them touches it. An `Err` closes the connection with its reason and applies none.
    fn may_write(
        &self,
        who: &Self::Principal,
        doc: &DocumentId,
        changes: &[IncomingChange],
    ) -> Result<(), String>;

    /// What `who` may send for `doc`, decided before any change in a message is decoded:
    /// [`WriteScope::Nothing`] refuses a message with changes at once; [`WriteScope::GenesisOnly`]
    /// refuses bundles undecoded (only a genesis, which arrives as one change or a whole-document
    /// chunk, can be acceptable); [`WriteScope::Checked`] decodes and asks [`Access::may_write`].
    fn write_scope(&self, _who: &Self::Principal, _doc: &DocumentId) -> WriteScope {
        WriteScope::Checked
    }

    /// Whether [`Access::may_write`] needs to see changes at all. `false` skips decoding them
    /// (clients trust their relay; the open policy allows everything).
    fn checks_writes(&self) -> bool {
        true
    }
}

/// See [`Access::write_scope`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteScope {
    /// Every change is decoded and checked by [`Access::may_write`].
    Checked,
    /// The principal may write nothing but the document kind's genesis change.
    GenesisOnly,
    /// No change at all (an unknown document).
    Nothing,
}

/// Everything allowed: development and clients.
#[derive(Debug, Clone, Copy, Default)]
pub struct OpenAccess;

impl Access for OpenAccess {
    type Principal = ();

    fn may_read(&self, _: &(), _: &DocumentId) -> bool {
        true
    }

    fn may_write(&self, _: &(), _: &DocumentId, _: &[IncomingChange]) -> Result<(), String> {
        Ok(())
    }

    fn checks_writes(&self) -> bool {
        false
    }
}

/// Events the caller feeds in.
#[derive(Debug)]
pub enum Input<P> {
    Connected {
        conn: ConnId,
        direction: Direction,
        principal: P,
    },
    Frame {
        conn: ConnId,
        bytes: Vec<u8>,
    },
    Disconnected {
        conn: ConnId,
    },
    /// Client: keep this document in memory and sync it with every peer. `seed` (a genesis
    /// change) is applied after loading if the document does not already hold it.
    Open {
        doc: DocumentId,
        seed: Option<Vec<u8>>,
    },
    Loaded {
        doc: DocumentId,
        chunks: Vec<Chunk>,
    },
    LoadFailed {
        doc: DocumentId,
        error: String,
    },
    Written {
        doc: DocumentId,
        write: WriteId,
    },
    WriteFailed {
        doc: DocumentId,
        write: WriteId,
        error: String,
    },
    /// Another process sharing this engine's store (a second relay on the same database) has
    /// committed a write of `doc`; `chunks` are every chunk stored for it, read after that commit.
    /// Ignored unless `doc` is in memory. Chunks the engine does not know yet are applied and
    /// counted as on disk, so a later compaction folds them in; nothing is written for them (they
    /// are durable already). If the heads moved, [`Effect::DocChanged`] follows and the peers hear
    /// of the new changes as soon as no write of ours holds them back. Arriving while `doc` loads,
    /// the chunks are applied once the load lands (it may have read the store before the commit).
    StorageChanged {
        doc: DocumentId,
        chunks: Vec<Chunk>,
    },
    /// Time passed; checks handshake timeouts.
    Tick,
}

/// What the caller must do. Writes for one document must be carried out in the order given.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Send {
        conn: ConnId,
        bytes: Vec<u8>,
    },
    Close {
        conn: ConnId,
        reason: CloseReason,
    },
    Load {
        doc: DocumentId,
    },
    Write {
        doc: DocumentId,
        write: WriteId,
        batch: WriteBatch,
    },
    /// The handshake finished.
    PeerReady {
        conn: ConnId,
        peer: PeerId,
    },
    /// The document was loaded (or created empty) and can be read and changed.
    DocReady {
        doc: DocumentId,
    },
    /// Remote changes were applied.
    DocChanged {
        doc: DocumentId,
    },
    /// Everything up to `heads` is in local storage.
    Persisted {
        doc: DocumentId,
        heads: Vec<automerge::ChangeHash>,
    },
    /// A peer said it has not got the document.
    DocUnavailable {
        doc: DocumentId,
        conn: ConnId,
    },
    /// An ephemeral message for the application (presence, cursors); `from` is the peer that
    /// first sent it, which a relay passes on unchanged.
    Ephemeral {
        doc: DocumentId,
        from: PeerId,
        data: Vec<u8>,
    },
    /// A write failed; the client keeps the changes in memory and retries with the next write.
    StorageFailed {
        doc: DocumentId,
        error: String,
    },
    /// Stored chunks that did not load; they are left in place, not deleted.
    CorruptChunks {
        doc: DocumentId,
        keys: Vec<String>,
    },
}

/// Why the engine closed a connection. Logged by the caller; never sent to the peer in full.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CloseReason {
    #[error("malformed frame: {0}")]
    Malformed(#[from] DecodeError),
    #[error("frame of {len} bytes exceeds the {max}-byte limit")]
    Oversized { len: usize, max: usize },
    #[error("`{0}` before the handshake")]
    NotJoined(&'static str),
    #[error("no supported protocol version in {0:?}")]
    UnsupportedVersion(Vec<String>),
    #[error("handshake repeated")]
    RepeatedHandshake,
    #[error("sender id `{got}` does not match the handshake's `{expected}`")]
    SenderMismatch { expected: PeerId, got: PeerId },
    #[error("message addressed to `{0}`, not to us")]
    WrongTarget(PeerId),
    #[error("bad automerge sync message for {doc}: {error}")]
    BadSyncMessage { doc: DocumentId, error: String },
    #[error("refused change to {doc}: {reason}")]
    Refused { doc: DocumentId, reason: String },
    #[error("peer sent an error: {0}")]
    PeerError(String),
    #[error("peer left")]
    Left,
    #[error("no handshake within {0} ms")]
    HandshakeTimeout(Millis),
    #[error("storage failed for {0}; reconnect to resync")]
    StorageFailure(DocumentId),
}

#[cfg(test)]
mod tests;
