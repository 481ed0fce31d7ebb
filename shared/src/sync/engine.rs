//! The engine proper: connections, handshake, per-document sync state, loading and writes.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::panic::{AssertUnwindSafe, catch_unwind};

use automerge::sync::SyncDoc;
use automerge::{Automerge, ChangeHash};

use super::authorship::{self, IncomingChange};
use super::{
    Access, CloseReason, ConnId, Direction, Effect, EngineConfig, Input, Millis, OpenAccess, Role, WriteId,
    WriteScope,
};
use crate::ids::{DocumentId, PeerId};
use crate::storage::{Chunk, ChunkKey, StoredChunks, WriteBatch, load_chunk_into, load_chunks};
use crate::wire::{HeadsDigest, Message, PROTOCOL_V1, PeerMetadata};

/// Misuse of the engine's direct API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    #[error("document {0} is not open and loaded")]
    NotReady(DocumentId),
}

/// The sync engine. See the [module docs](super).
pub struct Engine<A: Access = OpenAccess> {
    config: EngineConfig,
    access: A,
    now: Millis,
    conns: BTreeMap<ConnId, Conn<A::Principal>>,
    docs: HashMap<DocumentId, Doc>,
    next_write: u64,
    /// Our ephemeral session and counter; the last count seen per (sender, session).
    ephemeral_session: String,
    ephemeral_count: u64,
    ephemeral_seen: HashMap<(PeerId, String), u64>,
    out: Vec<Effect>,
}

struct Conn<P> {
    principal: P,
    opened_at: Millis,
    state: ConnState,
    /// Documents this connection takes part in.
    docs: BTreeSet<DocumentId>,
    /// Both sides speak the heads-summary extension (see [`Message::HeadsSummary`]).
    summary: bool,
    /// Client: the documents (and the heads) of the summary we sent, held back from plain sync on
    /// this connection until the relay's [`Message::HeadsDiffer`] says which differ.
    summary_sent: Option<Vec<(DocumentId, Vec<ChangeHash>)>>,
    /// Relay: the summary being answered (documents still loading, those found to differ).
    summary_answer: Option<SummaryAnswer>,
}

/// Relay: a [`Message::HeadsSummary`] whose answer waits for documents to load.
#[derive(Default)]
struct SummaryAnswer {
    loading: usize,
    differ: Vec<DocumentId>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum ConnState {
    AwaitingJoin,
    AwaitingPeer,
    Ready { remote: PeerId },
}

/// Who first sent an ephemeral message; a relay passes it on under these.
struct Origin {
    sender: PeerId,
    session: String,
    count: u64,
}

/// A sync message that arrived while its document was loading or being written.
struct Queued {
    conn: ConnId,
    is_request: bool,
    message: automerge::sync::Message,
}

struct Doc {
    loading: Option<Vec<Queued>>,
    /// Sync messages held back while a change write is in flight: a document takes in remote
    /// changes only between writes, so after every write the peers hear what is now durable
    /// before more changes arrive (no peer waits forever under a steady stream).
    deferred: Vec<Queued>,
    am: Automerge,
    stored: StoredChunks,
    /// Heads covered by writes already issued.
    issued_heads: Vec<ChangeHash>,
    /// Writes in flight, oldest first.
    writes: VecDeque<PendingWrite>,
    /// Changes arrived while a change write was in flight; write them when it lands.
    write_wanted: bool,
    peers: BTreeMap<ConnId, PeerDoc>,
    /// Client: opened by the application (kept in memory, synced with every peer).
    opened: bool,
    /// Client: a write failed, so sync no longer waits for the disk.
    storage_broken: bool,
    seed: Option<Vec<u8>>,
    /// Chunks another process stored while this document was loading; applied once it is loaded.
    from_storage: Vec<Chunk>,
    /// Relay: heads digests of connections' summaries, compared once the document is loaded.
    digests: Vec<(ConnId, HeadsDigest)>,
}

struct PeerDoc {
    sync: automerge::sync::State,
    sent_any: bool,
    /// The heads we last actually told this peer. automerge records a peer's "heads equal to
    /// ours, no changes" as if we had told them our heads; but while durability holds our reply
    /// back, they have not heard them, and a peer waiting for our acknowledgement would wait
    /// forever. Restored after every receive so the reply still goes out.
    told_heads: Vec<ChangeHash>,
}

impl PeerDoc {
    fn new() -> Self {
        Self { sync: automerge::sync::State::new(), sent_any: false, told_heads: Vec::new() }
    }

    /// A peer known (from a heads summary) to hold exactly `heads`, as we do: the sync state a
    /// completed plain sync at `heads` would have left, so nothing is sent until either side
    /// changes, and then only the changes after `heads`.
    fn synced_at(heads: Vec<ChangeHash>) -> Self {
        let mut sync = automerge::sync::State::new();
        sync.shared_heads.clone_from(&heads);
        sync.last_sent_heads.clone_from(&heads);
        sync.their_heads = Some(heads.clone());
        sync.their_need = Some(Vec::new());
        sync.their_have = Some(vec![automerge::sync::Have {
            last_sync: heads.clone(),
            bloom: automerge::sync::BloomFilter::default(),
        }]);
        sync.have_responded = true;
        Self { sync, sent_any: true, told_heads: heads }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WriteKind {
    Changes,
    Compaction,
}

struct PendingWrite {
    id: WriteId,
    kind: WriteKind,
    heads_before: Vec<ChangeHash>,
    heads_after: Vec<ChangeHash>,
    puts: Vec<(ChunkKey, usize)>,
    deletes: Vec<ChunkKey>,
}

impl Doc {
    fn loading(opened: bool, seed: Option<Vec<u8>>) -> Self {
        Self {
            loading: Some(Vec::new()),
            deferred: Vec::new(),
            am: Automerge::new(),
            stored: StoredChunks::default(),
            issued_heads: Vec::new(),
            writes: VecDeque::new(),
            write_wanted: false,
            peers: BTreeMap::new(),
            opened,
            storage_broken: false,
            seed,
            from_storage: Vec::new(),
            digests: Vec::new(),
        }
    }

    fn change_write_in_flight(&self) -> bool {
        self.writes.iter().any(|w| w.kind == WriteKind::Changes)
    }
}

impl<A: Access> Engine<A> {
    pub fn new(config: EngineConfig, access: A) -> Self {
        let ephemeral_session = format!("{}-session", config.peer_id);
        Self {
            config,
            access,
            now: 0,
            conns: BTreeMap::new(),
            docs: HashMap::new(),
            next_write: 0,
            ephemeral_session,
            ephemeral_count: 0,
            ephemeral_seen: HashMap::new(),
            out: Vec::new(),
        }
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    pub fn peer_id(&self) -> &PeerId {
        &self.config.peer_id
    }

    /// Feeds one event in; returns what to do.
    pub fn handle(&mut self, now: Millis, input: Input<A::Principal>) -> Vec<Effect> {
        self.now = self.now.max(now);
        match input {
            Input::Connected { conn, direction, principal } => self.on_connected(conn, direction, principal),
            Input::Frame { conn, bytes } => self.on_frame(conn, &bytes),
            Input::Disconnected { conn } => self.drop_conn(conn),
            Input::Open { doc, seed } => self.on_open(doc, seed),
            Input::Loaded { doc, chunks } => self.on_loaded(doc, chunks),
            Input::LoadFailed { doc, error } => self.on_load_failed(doc, error),
            Input::Written { doc, write } => self.on_written(doc, write),
            Input::WriteFailed { doc, write, error } => self.on_write_failed(doc, write, error),
            Input::StorageChanged { doc, chunks } => self.on_storage_changed(doc, chunks),
            Input::Tick => self.on_tick(),
        }
        std::mem::take(&mut self.out)
    }

    /// Changes a loaded document locally; the new changes are written and synced.
    pub fn change<R>(
        &mut self,
        doc: DocumentId,
        f: impl FnOnce(&mut Automerge) -> R,
    ) -> Result<(R, Vec<Effect>), EngineError> {
        let d = self.docs.get_mut(&doc).filter(|d| d.loading.is_none()).ok_or(EngineError::NotReady(doc))?;
        let before = d.am.get_heads();
        let r = f(&mut d.am);
        if d.am.get_heads() != before {
            self.schedule_write(doc);
            self.flush(doc);
        }
        Ok((r, std::mem::take(&mut self.out)))
    }

    /// A loaded document.
    pub fn doc(&self, doc: &DocumentId) -> Option<&Automerge> {
        self.docs.get(doc).filter(|d| d.loading.is_none()).map(|d| &d.am)
    }

    /// The sync state with one peer for one document (what they have acknowledged).
    pub fn sync_state(&self, conn: ConnId, doc: &DocumentId) -> Option<&automerge::sync::State> {
        self.docs.get(doc)?.peers.get(&conn).map(|p| &p.sync)
    }

    pub fn documents_in_memory(&self) -> usize {
        self.docs.len()
    }

    /// How many documents the engine's table has room for without growing: a `HashMap` keeps
    /// its largest size, and a slot is as big as a document's in-memory state.
    pub fn documents_capacity(&self) -> usize {
        self.docs.capacity()
    }

    /// Whether `doc` is in memory (loaded or loading): what [`Input::StorageChanged`] is for.
    pub fn has_document(&self, doc: &DocumentId) -> bool {
        self.docs.contains_key(doc)
    }

    /// Every document in memory (loaded or loading), e.g. to reload them all after a host may have
    /// missed a [`Input::StorageChanged`].
    pub fn documents(&self) -> Vec<DocumentId> {
        let mut docs: Vec<DocumentId> = self.docs.keys().copied().collect();
        docs.sort();
        docs
    }

    /// How many (sender, session) ephemeral counters are kept (what a relay remembers of presence).
    pub fn ephemeral_sessions_remembered(&self) -> usize {
        self.ephemeral_seen.len()
    }

    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    /// The remote peer of a connection once its handshake is done.
    pub fn remote_peer(&self, conn: ConnId) -> Option<&PeerId> {
        match &self.conns.get(&conn)?.state {
            ConnState::Ready { remote } => Some(remote),
            _ => None,
        }
    }

    /// Sends an ephemeral message about `doc` to every peer that shares it.
    pub fn broadcast_ephemeral(&mut self, doc: DocumentId, data: Vec<u8>) -> Vec<Effect> {
        self.forward_ephemeral(doc, None, data);
        std::mem::take(&mut self.out)
    }

    // ----- connections -----

    fn on_connected(&mut self, conn: ConnId, direction: Direction, principal: A::Principal) {
        let state = match direction {
            Direction::Inbound => ConnState::AwaitingJoin,
            Direction::Outbound => ConnState::AwaitingPeer,
        };
        let c = Conn {
            principal,
            opened_at: self.now,
            state,
            docs: BTreeSet::new(),
            summary: false,
            summary_sent: None,
            summary_answer: None,
        };
        self.conns.insert(conn, c);
        if direction == Direction::Outbound {
            let join = Message::Join {
                sender: self.config.peer_id.clone(),
                supported_versions: vec![PROTOCOL_V1.to_owned()],
                metadata: Some(self.metadata()),
            };
            self.send(conn, &join);
        }
    }

    fn metadata(&self) -> PeerMetadata {
        PeerMetadata {
            storage_id: self.config.storage_id.clone(),
            is_ephemeral: false,
            heads_summary: self.config.heads_summary,
        }
    }

    fn send(&mut self, conn: ConnId, msg: &Message) {
        self.out.push(Effect::Send { conn, bytes: msg.encode() });
    }

    fn close(&mut self, conn: ConnId, reason: CloseReason) {
        if self.conns.contains_key(&conn) {
            self.drop_conn(conn);
            self.out.push(Effect::Close { conn, reason });
        }
    }

    fn drop_conn(&mut self, conn: ConnId) {
        let Some(c) = self.conns.remove(&conn) else { return };
        if let ConnState::Ready { remote } = &c.state {
            self.forget_ephemeral_sender(remote);
        }
        for doc in c.docs {
            if let Some(d) = self.docs.get_mut(&doc) {
                d.peers.remove(&conn);
                if let Some(queue) = &mut d.loading {
                    queue.retain(|q| q.conn != conn);
                }
                d.deferred.retain(|q| q.conn != conn);
                d.digests.retain(|(c, _)| *c != conn);
            }
            self.maybe_evict(doc);
        }
    }

    /// Once no connection is left to `peer`, forgets the counters of the ephemeral sessions it
    /// originated: otherwise every peer that ever sent presence would stay in memory for good. A
    /// peer that comes back starts a new session or counts on from where it was; either passes.
    fn forget_ephemeral_sender(&mut self, peer: &PeerId) {
        let still_here =
            self.conns.values().any(|c| matches!(&c.state, ConnState::Ready { remote } if remote == peer));
        if !still_here {
            self.ephemeral_seen.retain(|(sender, _), _| sender != peer);
            shrink_if_sparse(&mut self.ephemeral_seen);
        }
    }

    fn on_tick(&mut self) {
        let limit = self.config.handshake_timeout;
        let late: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| {
                c.state == ConnState::AwaitingJoin && self.now.saturating_sub(c.opened_at) > limit
            })
            .map(|(id, _)| *id)
            .collect();
        for conn in late {
            self.close(conn, CloseReason::HandshakeTimeout(limit));
        }
    }

    fn on_frame(&mut self, conn: ConnId, bytes: &[u8]) {
        let Some(state) = self.conns.get(&conn).map(|c| c.state.clone()) else { return };
        if bytes.len() > self.config.max_message_bytes {
            let max = self.config.max_message_bytes;
            return self.close(conn, CloseReason::Oversized { len: bytes.len(), max });
        }
        let msg = match Message::decode(bytes) {
            Ok(m) => m,
            Err(e) => return self.close(conn, CloseReason::Malformed(e)),
        };
        match (state, msg) {
            (ConnState::AwaitingJoin, Message::Join { sender, supported_versions, metadata }) => {
                if !supported_versions.iter().any(|v| v == PROTOCOL_V1) {
                    let error = Message::Error {
                        sender: self.config.peer_id.clone(),
                        message: "unsupported protocol version".into(),
                    };
                    self.send(conn, &error);
                    return self.close(conn, CloseReason::UnsupportedVersion(supported_versions));
                }
                let peer = Message::Peer {
                    sender: self.config.peer_id.clone(),
                    target: sender.clone(),
                    selected_version: PROTOCOL_V1.to_owned(),
                    metadata: Some(self.metadata()),
                };
                self.send(conn, &peer);
                self.note_summary_support(conn, metadata.as_ref());
                self.become_ready(conn, sender);
            }
            (ConnState::AwaitingPeer, Message::Peer { sender, metadata, .. }) => {
                self.note_summary_support(conn, metadata.as_ref());
                self.become_ready(conn, sender);
            }
            (_, Message::Error { message, .. }) => self.close(conn, CloseReason::PeerError(message)),
            (_, Message::Leave { .. }) => self.close(conn, CloseReason::Left),
            (ConnState::AwaitingJoin | ConnState::AwaitingPeer, other) => {
                self.close(conn, CloseReason::NotJoined(other.type_name()))
            }
            (ConnState::Ready { .. }, Message::Join { .. } | Message::Peer { .. }) => {
                self.close(conn, CloseReason::RepeatedHandshake)
            }
            (ConnState::Ready { remote }, msg) => self.on_doc_message(conn, remote, msg),
        }
    }

    fn note_summary_support(&mut self, conn: ConnId, metadata: Option<&PeerMetadata>) {
        let theirs = metadata.is_some_and(|m| m.heads_summary);
        if let Some(c) = self.conns.get_mut(&conn) {
            c.summary = theirs && self.config.heads_summary;
        }
    }

    fn become_ready(&mut self, conn: ConnId, remote: PeerId) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.state = ConnState::Ready { remote: remote.clone() };
        }
        self.out.push(Effect::PeerReady { conn, peer: remote.clone() });
        if self.config.role == Role::Client {
            let mut open: Vec<DocumentId> = self
                .docs
                .iter()
                .filter(|(_, d)| d.opened && d.loading.is_none())
                .map(|(id, _)| *id)
                .collect();
            // In a fixed order, not the `HashMap`'s (random per process): what the engine sends
            // then depends only on its inputs, so a failing `memnet` run replays.
            open.sort();
            let summary = self.conns.get(&conn).is_some_and(|c| c.summary);
            let plain = if summary { self.send_summary(conn, remote, open) } else { open };
            for doc in plain {
                self.share(conn, doc);
            }
        }
    }

    /// Client: sends the heads summary of `open` documents to the relay on `conn` and holds
    /// them back from plain sync there until it answers. Returns the documents to sync plainly
    /// (empty ones: the relay answers those with `doc-unavailable` or its content).
    fn send_summary(&mut self, conn: ConnId, remote: PeerId, open: Vec<DocumentId>) -> Vec<DocumentId> {
        let (mut listed, mut plain) = (Vec::new(), Vec::new());
        for doc in open {
            match self.docs.get(&doc).map(|d| d.am.get_heads()) {
                Some(heads) if !heads.is_empty() => listed.push((doc, heads)),
                _ => plain.push(doc),
            }
        }
        if listed.is_empty() {
            return plain;
        }
        let msg = Message::HeadsSummary {
            sender: self.config.peer_id.clone(),
            target: remote,
            documents: listed.iter().map(|(doc, heads)| (*doc, HeadsDigest::of(heads))).collect(),
        };
        self.send(conn, &msg);
        if let Some(c) = self.conns.get_mut(&conn) {
            c.summary_sent = Some(listed);
        }
        plain
    }

    /// Client: the relay answered our summary. Documents it names sync plainly; every other one
    /// is in sync at the heads we summarised (changes made since go out now).
    fn on_heads_differ(&mut self, conn: ConnId, differ: &[DocumentId]) {
        let Some(sent) = self.conns.get_mut(&conn).and_then(|c| c.summary_sent.take()) else { return };
        for (doc, heads) in sent {
            if differ.contains(&doc) || !self.docs.contains_key(&doc) {
                self.share(conn, doc);
            } else {
                self.share_synced(conn, doc, heads);
            }
        }
    }

    /// Starts syncing `doc` with `conn` from a state where both sides hold `heads`.
    fn share_synced(&mut self, conn: ConnId, doc: DocumentId, heads: Vec<ChangeHash>) {
        let Some(c) = self.conns.get_mut(&conn) else { return };
        c.docs.insert(doc);
        if let Some(d) = self.docs.get_mut(&doc) {
            d.peers.entry(conn).or_insert_with(|| PeerDoc::synced_at(heads));
        }
        self.flush(doc);
    }

    /// Relay: a peer lists its documents with their heads' digests. Each is compared once
    /// loaded; the answer names those that differ, which then sync plainly (we start).
    fn on_heads_summary(&mut self, conn: ConnId, documents: Vec<(DocumentId, HeadsDigest)>) {
        let usable = self.config.role == Role::Relay && self.conns.get(&conn).is_some_and(|c| c.summary);
        if !usable {
            return; // never announced: a peer that sends it anyway gets no answer
        }
        let mut answer = SummaryAnswer::default();
        for (doc, digest) in documents {
            if !self.may_read(conn, &doc) {
                answer.differ.push(doc); // the plain request that follows gets `doc-unavailable`
                continue;
            }
            if let Some(c) = self.conns.get_mut(&conn) {
                c.docs.insert(doc);
            }
            let d = self.docs.entry(doc).or_insert_with(|| {
                self.out.push(Effect::Load { doc });
                Doc::loading(false, None)
            });
            if d.loading.is_some() {
                d.digests.push((conn, digest));
                answer.loading += 1;
            } else if self.compare_digest(doc, conn, digest) {
                answer.differ.push(doc);
                self.flush(doc);
            }
        }
        let Some(c) = self.conns.get_mut(&conn) else { return };
        let pending = c.summary_answer.get_or_insert_with(SummaryAnswer::default);
        pending.loading += answer.loading;
        pending.differ.append(&mut answer.differ);
        self.maybe_answer_summary(conn);
    }

    /// Relay: whether `doc` (loaded) differs from what `conn` summarised; either way `conn` now
    /// shares it, from a synced state when it does not differ. Anything not yet durable here
    /// counts as differing, so the plain path's durability gate decides what they hear.
    fn compare_digest(&mut self, doc: DocumentId, conn: ConnId, digest: HeadsDigest) -> bool {
        let Some(d) = self.docs.get_mut(&doc) else { return true };
        let durable = !d.change_write_in_flight() && !d.write_wanted && d.deferred.is_empty();
        let heads = d.am.get_heads();
        if durable && HeadsDigest::of(&heads) == digest {
            d.peers.entry(conn).or_insert_with(|| PeerDoc::synced_at(heads));
            false
        } else {
            d.peers.entry(conn).or_insert_with(PeerDoc::new);
            true
        }
    }

    /// Relay: compares the digests that waited for `doc` to load.
    fn answer_digests(&mut self, doc: DocumentId) {
        let Some(d) = self.docs.get_mut(&doc) else { return };
        for (conn, digest) in std::mem::take(&mut d.digests) {
            let differs = self.compare_digest(doc, conn, digest);
            if let Some(answer) = self.conns.get_mut(&conn).and_then(|c| c.summary_answer.as_mut()) {
                answer.loading = answer.loading.saturating_sub(1);
                if differs {
                    answer.differ.push(doc);
                }
            }
            self.maybe_answer_summary(conn);
        }
    }

    /// Relay: sends the answer to `conn`'s summary once every document of it is compared.
    fn maybe_answer_summary(&mut self, conn: ConnId) {
        let Some(c) = self.conns.get_mut(&conn) else { return };
        if c.summary_answer.as_ref().is_none_or(|a| a.loading > 0) {
            return;
        }
        let Some(answer) = c.summary_answer.take() else { return };
        let ConnState::Ready { remote } = &c.state else { return };
        let msg = Message::HeadsDiffer {
            sender: self.config.peer_id.clone(),
            target: remote.clone(),
            documents: answer.differ,
        };
        self.send(conn, &msg);
    }

    /// Starts syncing `doc` with `conn`.
    fn share(&mut self, conn: ConnId, doc: DocumentId) {
        let Some(c) = self.conns.get_mut(&conn) else { return };
        c.docs.insert(doc);
        if let Some(d) = self.docs.get_mut(&doc) {
            d.peers.entry(conn).or_insert_with(PeerDoc::new);
        }
        self.flush(doc);
    }

    // ----- document messages -----

    fn on_doc_message(&mut self, conn: ConnId, remote: PeerId, msg: Message) {
        let (sender, target) = match &msg {
            Message::Request { sender, target, .. }
            | Message::Sync { sender, target, .. }
            | Message::DocUnavailable { sender, target, .. }
            | Message::Ephemeral { sender, target, .. }
            | Message::HeadsSummary { sender, target, .. }
            | Message::HeadsDiffer { sender, target, .. } => (sender.clone(), target.clone()),
            _ => return, // ignored message kinds
        };
        // Ephemeral messages travel with their originator's `senderId`: automerge-repo forwards
        // them unchanged (a JS client even echoes the relay's forwards back to it), and JS
        // presence tells peers apart by that field. Everything else must come from the peer itself.
        let forwarded = matches!(msg, Message::Ephemeral { .. });
        if sender != remote && !forwarded {
            return self.close(conn, CloseReason::SenderMismatch { expected: remote, got: sender });
        }
        if target != self.config.peer_id {
            return self.close(conn, CloseReason::WrongTarget(target));
        }
        match msg {
            Message::Request { document, data, .. } => self.on_sync(conn, document, &data, true),
            Message::Sync { document, data, .. } => self.on_sync(conn, document, &data, false),
            Message::DocUnavailable { document, .. } => {
                self.out.push(Effect::DocUnavailable { doc: document, conn });
            }
            Message::HeadsSummary { documents, .. } => self.on_heads_summary(conn, documents),
            Message::HeadsDiffer { documents, .. } if self.config.role == Role::Client => {
                self.on_heads_differ(conn, &documents);
            }
            Message::Ephemeral { document, session, count, data, .. } => {
                if !self.may_read(conn, &document) || sender == self.config.peer_id {
                    return;
                }
                let last = self.ephemeral_seen.entry((sender.clone(), session.clone())).or_insert(0);
                if count <= *last && *last != 0 {
                    return; // a repeat, such as a peer echoing what we forwarded to it
                }
                *last = count;
                self.out.push(Effect::Ephemeral { doc: document, from: sender.clone(), data: data.clone() });
                if self.config.role == Role::Relay {
                    self.forward_ephemeral(document, Some((conn, Origin { sender, session, count })), data);
                }
            }
            _ => {}
        }
    }

    fn may_read(&self, conn: ConnId, doc: &DocumentId) -> bool {
        self.conns.get(&conn).is_some_and(|c| self.access.may_read(&c.principal, doc))
    }

    /// Sends `data` to every peer of `doc` that may read it: our own message, or (relay) one that
    /// arrived on a connection, passed on unchanged to everyone but the connection and its sender.
    fn forward_ephemeral(&mut self, doc: DocumentId, from: Option<(ConnId, Origin)>, data: Vec<u8>) {
        let Some(d) = self.docs.get(&doc) else { return };
        let (from_conn, origin) = from.unzip();
        let targets: Vec<(ConnId, PeerId)> = d
            .peers
            .keys()
            .filter(|c| Some(**c) != from_conn)
            .filter_map(|c| match &self.conns.get(c)?.state {
                ConnState::Ready { remote } if self.may_read(*c, &doc) => Some((*c, remote.clone())),
                _ => None,
            })
            .filter(|(_, remote)| origin.as_ref().is_none_or(|o| o.sender != *remote))
            .collect();
        for (conn, remote) in targets {
            let (sender, session, count) = match &origin {
                Some(o) => (o.sender.clone(), o.session.clone(), o.count),
                None => {
                    self.ephemeral_count += 1;
                    (self.config.peer_id.clone(), self.ephemeral_session.clone(), self.ephemeral_count)
                }
            };
            let msg = Message::Ephemeral {
                sender,
                target: remote,
                count,
                session,
                document: doc,
                data: data.clone(),
            };
            self.send(conn, &msg);
        }
    }

    fn send_unavailable(&mut self, conn: ConnId, doc: DocumentId) {
        if let Some(ConnState::Ready { remote }) = self.conns.get(&conn).map(|c| c.state.clone()) {
            let msg = Message::DocUnavailable {
                sender: self.config.peer_id.clone(),
                target: remote,
                document: doc,
            };
            self.send(conn, &msg);
        }
    }

    fn on_sync(&mut self, conn: ConnId, doc: DocumentId, data: &[u8], is_request: bool) {
        if !self.may_read(conn, &doc) {
            return self.send_unavailable(conn, doc);
        }
        let message = match automerge::sync::Message::decode(data) {
            Ok(m) => m,
            Err(e) => return self.close(conn, CloseReason::BadSyncMessage { doc, error: e.to_string() }),
        };
        if let Some(c) = self.conns.get_mut(&conn) {
            c.docs.insert(doc);
        }
        let d = self.docs.entry(doc).or_insert_with(|| {
            self.out.push(Effect::Load { doc });
            Doc::loading(false, None)
        });
        let queued = Queued { conn, is_request, message };
        let hold = d.change_write_in_flight() && !d.storage_broken;
        match &mut d.loading {
            Some(queue) => queue.push(queued),
            None if hold => d.deferred.push(queued),
            None => self.apply_sync(doc, vec![queued]),
        }
    }

    /// Applies sync messages to a loaded document, then writes and syncs what changed once.
    fn apply_sync(&mut self, doc: DocumentId, batch: Vec<Queued>) {
        let mut changed = false;
        let mut batch = batch.into_iter();
        while let Some(Queued { conn, is_request, message }) = batch.next() {
            if !self.conns.contains_key(&conn) {
                continue;
            }
            if let Err(reason) = self.check_writes(conn, doc, &message) {
                self.close(conn, reason);
                continue;
            }
            let Some(d) = self.docs.get_mut(&doc) else { return };
            let peer = d.peers.entry(conn).or_insert_with(PeerDoc::new);
            let before = d.am.get_heads();
            // automerge 0.12 panics on some malformed messages (fuzz/README.md): a panic must
            // cost the sender its connection, not the relay its engine.
            let received =
                catch_unwind(AssertUnwindSafe(|| d.am.receive_sync_message(&mut peer.sync, message)));
            match received {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    self.close(conn, CloseReason::BadSyncMessage { doc, error: e.to_string() });
                    continue;
                }
                Err(_) => return self.poisoned(doc, conn, batch.map(|q| q.conn).collect()),
            }
            // Some changes apply cleanly and break the document only when read back (encoding
            // them for storage or peers panics): find out now, before anything is written or sent.
            let readable = catch_unwind(AssertUnwindSafe(|| d.am.get_changes(&before).len())).is_ok();
            if !readable {
                return self.poisoned(doc, conn, batch.map(|q| q.conn).collect());
            }
            peer.sync.last_sent_heads.clone_from(&peer.told_heads);
            forget_sent_if_asked_again(&mut peer.sync);
            let heads = d.am.get_heads();
            changed |= heads != before;
            if is_request && heads.is_empty() && self.config.role == Role::Relay {
                self.send_unavailable(conn, doc);
            }
        }
        if changed {
            self.out.push(Effect::DocChanged { doc });
            self.schedule_write(doc);
        }
        self.flush(doc);
    }

    /// automerge panicked applying a message from `conn` to `doc`: the in-memory document may be
    /// half-changed, so it is dropped (what is on disk stays the truth), the sender is closed as
    /// malformed, and the other peers sharing it (or with messages for it waiting) are closed to
    /// reconnect and reload it.
    fn poisoned(&mut self, doc: DocumentId, conn: ConnId, waiting: Vec<ConnId>) {
        let mut peers: Vec<ConnId> =
            self.docs.remove(&doc).map(|d| d.peers.keys().copied().collect()).unwrap_or_default();
        peers.extend(waiting);
        peers.sort();
        peers.dedup();
        let error = "automerge panicked applying it; document reloaded from storage".to_owned();
        self.close(conn, CloseReason::BadSyncMessage { doc, error });
        for other in peers.into_iter().filter(|c| *c != conn) {
            self.close(other, CloseReason::StorageFailure(doc));
        }
    }

    /// Asks [`Access::may_write`] about the changes in `message` that `doc` does not hold yet.
    /// Runs on the loaded document, so changes it already has (a peer re-sending them) are not
    /// asked about again.
    fn check_writes(
        &self,
        conn: ConnId,
        doc: DocumentId,
        message: &automerge::sync::Message,
    ) -> Result<(), CloseReason> {
        if !self.access.checks_writes() || message.changes.is_empty() {
            return Ok(());
        }
        let (Some(c), Some(d)) = (self.conns.get(&conn), self.docs.get(&doc)) else { return Ok(()) };
        let refuse = |reason: &str| CloseReason::Refused { doc, reason: reason.to_owned() };
        match self.access.write_scope(&c.principal, &doc) {
            WriteScope::Checked => {}
            WriteScope::Nothing => return Err(refuse("changes to a document nobody may write")),
            WriteScope::GenesisOnly => {
                let bundle = authorship::carries_bundle(message)
                    .map_err(|e| CloseReason::BadSyncMessage { doc, error: e.to_string() })?;
                if bundle {
                    return Err(refuse("a bundle of changes from a peer that may not write"));
                }
            }
        }
        let listed = catch_unwind(AssertUnwindSafe(|| authorship::incoming_changes(message)))
            .map_err(|_| CloseReason::BadSyncMessage { doc, error: "automerge panicked decoding it".into() })?
            .map_err(|e| CloseReason::BadSyncMessage { doc, error: e.to_string() })?;
        let new: Vec<IncomingChange> =
            listed.into_iter().filter(|ch| d.am.get_change_meta_by_hash(&ch.hash).is_none()).collect();
        if new.is_empty() {
            return Ok(());
        }
        self.access.may_write(&c.principal, &doc, &new).map_err(|reason| CloseReason::Refused { doc, reason })
    }

    /// Sends whatever each peer of `doc` is missing, unless durability forbids it yet.
    fn flush(&mut self, doc: DocumentId) {
        let relay = self.config.role == Role::Relay;
        let Some(d) = self.docs.get_mut(&doc) else { return };
        let undurable = d.change_write_in_flight() || d.write_wanted;
        if d.loading.is_some() || (undurable && !d.storage_broken) {
            return;
        }
        let empty = d.am.get_heads().is_empty();
        let mut sends = Vec::new();
        for (conn, peer) in &mut d.peers {
            let Some(ConnState::Ready { remote }) = self.conns.get(conn).map(|c| &c.state) else { continue };
            let they_have_nothing = peer.sync.their_heads.as_ref().is_none_or(Vec::is_empty);
            if relay && empty && they_have_nothing {
                continue; // nothing to offer: their request was answered with doc-unavailable
            }
            if let Some(m) = d.am.generate_sync_message(&mut peer.sync) {
                peer.told_heads.clone_from(&m.heads);
                let data = m.encode();
                let (sender, target, document) = (self.config.peer_id.clone(), remote.clone(), doc);
                let msg = if !relay && empty && !peer.sent_any {
                    Message::Request { sender, target, document, data }
                } else {
                    Message::Sync { sender, target, document, data }
                };
                peer.sent_any = true;
                sends.push((*conn, msg));
            }
        }
        for (conn, msg) in sends {
            self.send(conn, &msg);
        }
    }

    // ----- storage -----

    fn on_open(&mut self, doc: DocumentId, seed: Option<Vec<u8>>) {
        match self.docs.get_mut(&doc) {
            Some(d) => {
                d.opened = true;
                if d.loading.is_some() {
                    d.seed = seed.or(d.seed.take());
                } else if let Some(seed) = seed {
                    self.apply_seed(doc, &seed);
                }
            }
            None => {
                self.docs.insert(doc, Doc::loading(true, seed));
                self.out.push(Effect::Load { doc });
            }
        }
    }

    fn apply_seed(&mut self, doc: DocumentId, seed: &[u8]) {
        let Some(d) = self.docs.get_mut(&doc) else { return };
        let before = d.am.get_heads();
        if let Err(e) = d.am.load_incremental(seed) {
            tracing::warn!(%doc, error = %e, "seed change did not load");
        }
        if d.am.get_heads() != before {
            self.schedule_write(doc);
        }
    }

    fn on_loaded(&mut self, doc: DocumentId, chunks: Vec<Chunk>) {
        let Some(d) = self.docs.get_mut(&doc) else { return };
        if d.loading.is_none() {
            return; // a stale answer
        }
        let (am, bad) = load_chunks(&chunks);
        let bad_keys: Vec<ChunkKey> = bad.into_iter().map(|(k, _)| k).collect();
        d.stored = StoredChunks::from_chunks(
            &chunks.into_iter().filter(|c| !bad_keys.contains(&c.key)).collect::<Vec<_>>(),
        );
        if !bad_keys.is_empty() {
            self.out.push(Effect::CorruptChunks {
                doc,
                keys: bad_keys.iter().map(ToString::to_string).collect(),
            });
        }
        self.finish_loading(doc, am);
    }

    fn on_load_failed(&mut self, doc: DocumentId, error: String) {
        let Some(d) = self.docs.get_mut(&doc) else { return };
        let Some(queue) = d.loading.take() else { return };
        match self.config.role {
            Role::Relay => {
                // Nothing was applied; the peers that asked reconnect and ask again.
                let summarised = self.docs.remove(&doc).map(|d| d.digests).unwrap_or_default();
                for conn in queue.iter().map(|q| q.conn).chain(summarised.into_iter().map(|(c, _)| c)) {
                    self.close(conn, CloseReason::StorageFailure(doc));
                }
            }
            Role::Client => {
                // Work on an empty document so nothing typed now is lost; the stored chunks stay
                // untouched and merge in when a later load succeeds.
                d.loading = Some(queue);
                self.out.push(Effect::StorageFailed { doc, error });
                self.finish_loading(doc, Automerge::new());
            }
        }
    }

    fn finish_loading(&mut self, doc: DocumentId, am: Automerge) {
        let Some(d) = self.docs.get_mut(&doc) else { return };
        d.am = match &self.config.actor {
            Some(actor) => am.with_actor(actor.clone()),
            None => am,
        };
        d.issued_heads = d.am.get_heads();
        let queue = d.loading.take().unwrap_or_default();
        let seed = d.seed.take();
        let from_storage = std::mem::take(&mut d.from_storage);
        let opened = d.opened;
        self.out.push(Effect::DocReady { doc });
        if !from_storage.is_empty() {
            self.apply_stored(doc, from_storage);
        }
        if let Some(seed) = seed {
            self.apply_seed(doc, &seed);
        }
        self.answer_digests(doc);
        self.apply_sync(doc, queue);
        if opened && self.config.role == Role::Client {
            let ready: Vec<ConnId> = self
                .conns
                .iter()
                .filter(|(_, c)| matches!(c.state, ConnState::Ready { .. }))
                .map(|(id, _)| *id)
                .collect();
            for conn in ready {
                self.share(conn, doc);
            }
        }
        self.flush(doc);
        self.maybe_evict(doc);
    }

    fn on_storage_changed(&mut self, doc: DocumentId, chunks: Vec<Chunk>) {
        let Some(d) = self.docs.get_mut(&doc) else { return };
        if d.loading.is_some() {
            // The load in flight may have read the store before that commit.
            d.from_storage.extend(chunks);
            return;
        }
        if self.apply_stored(doc, chunks) {
            self.out.push(Effect::DocChanged { doc });
            self.flush(doc);
        }
    }

    /// Applies the chunks of `doc` that another process stored and this engine does not know yet,
    /// recording them as on disk (so compaction covers them) without writing them again. Returns
    /// whether the heads moved.
    fn apply_stored(&mut self, doc: DocumentId, chunks: Vec<Chunk>) -> bool {
        let Some(d) = self.docs.get_mut(&doc) else { return false };
        let before = d.am.get_heads();
        // Everything in memory is already covered by our writes: what comes from the store is
        // durable too, so the next write starts after it instead of writing it again.
        let all_issued = before == d.issued_heads && !d.write_wanted;
        let mut fresh: Vec<Chunk> = chunks.into_iter().filter(|c| !d.stored.knows(&c.key)).collect();
        fresh.sort_by_key(|c| c.key.kind); // snapshots first, as when loading
        let mut bad = Vec::new();
        for c in &fresh {
            match load_chunk_into(&mut d.am, c) {
                Ok(()) => d.stored.record(&c.key, c.bytes.len()),
                // Never recorded, so never deleted by our compaction.
                Err(_) => bad.push(c.key.to_string()),
            }
        }
        let after = d.am.get_heads();
        if all_issued {
            d.issued_heads.clone_from(&after);
        }
        if !bad.is_empty() {
            self.out.push(Effect::CorruptChunks { doc, keys: bad });
        }
        after != before
    }

    /// Writes the changes not yet covered by an issued write, one change write at a time.
    fn schedule_write(&mut self, doc: DocumentId) {
        let Some(d) = self.docs.get_mut(&doc) else { return };
        if d.change_write_in_flight() {
            d.write_wanted = true;
            return;
        }
        d.write_wanted = false;
        let heads = d.am.get_heads();
        if heads == d.issued_heads {
            return;
        }
        let bytes = d.am.save_after(&d.issued_heads);
        let key = ChunkKey::incremental(&bytes);
        let id = WriteId(self.next_write);
        self.next_write += 1;
        d.writes.push_back(PendingWrite {
            id,
            kind: WriteKind::Changes,
            heads_before: std::mem::replace(&mut d.issued_heads, heads.clone()),
            heads_after: heads,
            puts: vec![(key.clone(), bytes.len())],
            deletes: Vec::new(),
        });
        self.out.push(Effect::Write {
            doc,
            write: id,
            batch: WriteBatch { puts: vec![Chunk { key, bytes }], deletes: vec![] },
        });
    }

    fn on_written(&mut self, doc: DocumentId, write: WriteId) {
        let Some(d) = self.docs.get_mut(&doc) else { return };
        let Some(pos) = d.writes.iter().position(|w| w.id == write) else { return };
        let Some(w) = d.writes.remove(pos) else { return };
        d.stored.forget(&w.deletes);
        for (key, len) in &w.puts {
            d.stored.record(key, *len);
        }
        if w.kind == WriteKind::Changes {
            self.out.push(Effect::Persisted { doc, heads: w.heads_after });
        }
        if d.write_wanted {
            self.schedule_write(doc);
        } else if d.writes.is_empty() && d.stored.should_compact() {
            let batch = d.stored.compaction(&d.am);
            let id = WriteId(self.next_write);
            self.next_write += 1;
            let heads = d.am.get_heads();
            d.writes.push_back(PendingWrite {
                id,
                kind: WriteKind::Compaction,
                heads_before: heads.clone(),
                heads_after: heads,
                puts: batch.puts.iter().map(|c| (c.key.clone(), c.bytes.len())).collect(),
                deletes: batch.deletes.clone(),
            });
            self.out.push(Effect::Write { doc, write: id, batch });
        }
        self.flush(doc);
        self.take_deferred(doc);
        self.maybe_evict(doc);
    }

    /// Peers have heard everything durable; take in what they sent meanwhile.
    fn take_deferred(&mut self, doc: DocumentId) {
        if let Some(d) = self.docs.get_mut(&doc) {
            let deferred = std::mem::take(&mut d.deferred);
            if !deferred.is_empty() {
                self.apply_sync(doc, deferred);
            }
        }
    }

    fn on_write_failed(&mut self, doc: DocumentId, write: WriteId, error: String) {
        let Some(d) = self.docs.get_mut(&doc) else { return };
        let Some(pos) = d.writes.iter().position(|w| w.id == write) else { return };
        let Some(w) = d.writes.remove(pos) else { return };
        self.out.push(Effect::StorageFailed { doc, error });
        if w.kind == WriteKind::Compaction {
            // The incrementals are still there; compaction is only an optimisation.
            return self.flush(doc);
        }
        match self.config.role {
            Role::Relay => {
                // The in-memory document is ahead of the disk and must not be acknowledged:
                // drop it and the peers that shared it; they resend after reconnecting.
                let peers: Vec<ConnId> = d.peers.keys().copied().collect();
                self.docs.remove(&doc);
                for conn in peers {
                    self.close(conn, CloseReason::StorageFailure(doc));
                }
            }
            Role::Client => {
                // Keep the changes in memory; the next write covers them again. Meanwhile they
                // go to peers without waiting for the disk.
                d.issued_heads = w.heads_before;
                d.write_wanted = false;
                d.storage_broken = true;
                self.flush(doc);
                self.take_deferred(doc);
            }
        }
    }

    /// Relay: forget documents nobody uses once everything is on disk.
    fn maybe_evict(&mut self, doc: DocumentId) {
        if self.config.role != Role::Relay {
            return;
        }
        if self.docs.get(&doc).is_some_and(|d| {
            d.peers.is_empty()
                && d.loading.is_none()
                && d.deferred.is_empty()
                && d.writes.is_empty()
                && !d.write_wanted
        }) {
            self.docs.remove(&doc);
            shrink_if_sparse(&mut self.docs);
        }
    }
}

/// A peer that asks (`need`) for a change we have already sent it never got that change: the
/// frame carrying it was lost (or, at worst, is still on its way). automerge's sync protocol
/// assumes reliable, in-order delivery and never sends a hash in `sent_hashes` again, so both
/// sides would go on trading the same request and the same empty answer for ever (automerge
/// issues #772 and #1284). Forgetting what we sent makes the next message carry what they ask
/// for; if the original was only late, they get it twice, which applying ignores.
fn forget_sent_if_asked_again(sync: &mut automerge::sync::State) {
    let asked_again = sync.their_need.iter().flatten().any(|h| sync.sent_hashes.contains(h));
    if asked_again {
        sync.sent_hashes.clear();
    }
}

/// Gives memory back once a map is mostly empty: a `HashMap` never shrinks by itself, so after a
/// burst (a relay serving thousands of documents at once, `Doc` slots of about 1 KiB each) the
/// table would keep its peak size for good (found with heaptrack, `bench/MEMORY.md`).
fn shrink_if_sparse<K: Eq + std::hash::Hash, V>(map: &mut HashMap<K, V>) {
    const KEEP: usize = 64;
    if map.capacity() > KEEP && map.len() * 4 < map.capacity() {
        map.shrink_to((map.len() * 2).max(KEEP));
    }
}
