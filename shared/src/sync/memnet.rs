//! An in-memory network of engines for deterministic tests.
//!
//! Every node has an engine and an in-memory chunk store whose loads and writes complete as
//! separate steps, so tests see the same interleavings a real disk allows. Links carry frames in
//! both directions; faults drop, duplicate or reorder frames, partitions cut links, and
//! [`Network::crash`] loses a node's memory and unfinished writes but keeps its store.
//! [`Network::share_store`] makes relays share one store, as relay processes on one PostgreSQL
//! database do: every write lands in all of them at once and notifies the others, which reload
//! the document (if in memory) and feed it in as [`Input::StorageChanged`].
//!
//! ```
//! use chibo_shared::sync::memnet::Network;
//! use chibo_shared::sync::Role;
//! let mut net = Network::new(7);
//! let relay = net.add_node(Role::Relay);
//! let alice = net.add_node(Role::Client);
//! net.connect(alice, relay);
//! net.run_until_quiescent();
//! ```

use std::collections::{BTreeMap, VecDeque};

use automerge::Automerge;

use super::{ConnId, Direction, Effect, Engine, EngineConfig, Input, OpenAccess, Role};
use crate::ids::{DocumentId, PeerId};
use crate::storage::{Chunk, ChunkKey};

/// A node's index in the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub usize);

/// A link's index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LinkId(pub u64);

/// Fault probabilities, in percent, applied to each delivered frame.
#[derive(Debug, Clone, Copy, Default)]
pub struct Faults {
    pub drop: u8,
    pub duplicate: u8,
    pub reorder: u8,
}

/// One node: an engine and its store.
pub struct Node {
    pub engine: Engine<OpenAccess>,
    pub role: Role,
    /// Durable chunks.
    pub store: BTreeMap<DocumentId, BTreeMap<ChunkKey, Vec<u8>>>,
    /// Loads, writes and store notifications not yet carried out, oldest first.
    io: VecDeque<Io>,
    /// Nodes whose store is this one's (see [`Network::share_store`]), this one included.
    store_group: usize,
    /// Effects for the test to inspect (everything but sends and IO).
    pub events: Vec<Effect>,
    restarts: u32,
    /// Speaks the plain automerge-repo protocol only (no chibo extension), like the JS client.
    plain: bool,
}

/// One frame [`Network`] delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// The receiving node.
    pub to: NodeId,
    /// Its message type (`wire::Message::type_name`).
    pub kind: &'static str,
    /// The document it is about, if any.
    pub doc: Option<DocumentId>,
    pub bytes: usize,
}

/// IO a node's host has yet to carry out.
enum Io {
    /// A `Load` or `Write` effect of the engine.
    Effect(Effect),
    /// Another node sharing the store committed a write of this document.
    Notified(DocumentId),
    /// Reads every chunk of the document and feeds them in as [`Input::StorageChanged`].
    Reload(DocumentId),
}

struct Link {
    /// (node, its conn id) for the dialling side `a` and the listening side `b`.
    a: (NodeId, ConnId),
    b: (NodeId, ConnId),
    to_b: VecDeque<Vec<u8>>,
    to_a: VecDeque<Vec<u8>>,
}

/// The network.
pub struct Network {
    now: u64,
    rng: u64,
    nodes: Vec<Node>,
    links: BTreeMap<LinkId, Link>,
    next_conn: u64,
    pub faults: Faults,
    /// Frames delivered so far (for cost figures).
    pub frames_delivered: u64,
    pub bytes_delivered: u64,
    /// Store notifications are lost (a host's listening connection broke) while set.
    pub lose_notifications: bool,
    /// Every frame delivered, for cost assertions.
    pub delivered: Vec<Delivered>,
}

impl Network {
    pub fn new(seed: u64) -> Self {
        Self {
            now: 0,
            rng: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            nodes: Vec::new(),
            links: BTreeMap::new(),
            next_conn: 0,
            faults: Faults::default(),
            frames_delivered: 0,
            bytes_delivered: 0,
            lose_notifications: false,
            delivered: Vec::new(),
        }
    }

    fn rand(&mut self, n: u64) -> u64 {
        // xorshift64*
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1)
    }

    fn engine_for(role: Role, index: usize, restarts: u32, plain: bool) -> Engine<OpenAccess> {
        let name = format!("{}-{index}-{restarts}", if role == Role::Relay { "relay" } else { "peer" });
        let peer = PeerId::new(name).unwrap_or_else(|_| unreachable!("generated peer ids are valid"));
        let mut config = EngineConfig::new(role, peer);
        if role == Role::Client {
            // One actor per device, kept across restarts, as a real device's would be.
            config.actor = Some(automerge::ActorId::from(format!("device-{index}").into_bytes()));
        }
        config.heads_summary = !plain;
        Engine::new(config, OpenAccess)
    }

    pub fn add_node(&mut self, role: Role) -> NodeId {
        self.add_node_speaking(role, false)
    }

    /// A node that speaks only the plain automerge-repo protocol (as the JS client does).
    pub fn add_plain_node(&mut self, role: Role) -> NodeId {
        self.add_node_speaking(role, true)
    }

    fn add_node_speaking(&mut self, role: Role, plain: bool) -> NodeId {
        let id = NodeId(self.nodes.len());
        self.nodes.push(Node {
            engine: Self::engine_for(role, id.0, 0, plain),
            role,
            store: BTreeMap::new(),
            io: VecDeque::new(),
            store_group: id.0,
            events: Vec::new(),
            restarts: 0,
            plain,
        });
        id
    }

    /// `b` uses `a`'s store from now on (its own must still be empty): two relay processes on one
    /// database.
    pub fn share_store(&mut self, a: NodeId, b: NodeId) {
        assert!(self.nodes[b.0].store.is_empty(), "{b:?} already stored something");
        self.nodes[b.0].store = self.nodes[a.0].store.clone();
        self.nodes[b.0].store_group = self.nodes[a.0].store_group;
    }

    /// What a host does after it may have missed notifications: reload every document in memory.
    pub fn reload_all(&mut self, node: NodeId) {
        let docs = self.nodes[node.0].engine.documents();
        self.nodes[node.0].io.extend(docs.into_iter().map(Io::Reload));
    }

    /// The other nodes sharing `node`'s store.
    fn store_mates(&self, node: NodeId) -> Vec<NodeId> {
        let group = self.nodes[node.0].store_group;
        (0..self.nodes.len())
            .filter(|&i| i != node.0 && self.nodes[i].store_group == group)
            .map(NodeId)
            .collect()
    }

    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id.0]
    }

    /// `a` dials `b`.
    pub fn connect(&mut self, a: NodeId, b: NodeId) -> LinkId {
        let (ca, cb) = (ConnId(self.next_conn), ConnId(self.next_conn + 1));
        self.next_conn += 2;
        let link = LinkId(ca.0);
        self.links
            .insert(link, Link { a: (a, ca), b: (b, cb), to_b: VecDeque::new(), to_a: VecDeque::new() });
        self.input(b, Input::Connected { conn: cb, direction: Direction::Inbound, principal: () });
        self.input(a, Input::Connected { conn: ca, direction: Direction::Outbound, principal: () });
        link
    }

    /// Cuts a link; both ends see a disconnect and frames in flight are lost.
    pub fn disconnect(&mut self, link: LinkId) {
        if let Some(l) = self.links.remove(&link) {
            self.input(l.a.0, Input::Disconnected { conn: l.a.1 });
            self.input(l.b.0, Input::Disconnected { conn: l.b.1 });
        }
    }

    /// Cuts every link of a node.
    pub fn isolate(&mut self, node: NodeId) {
        let ids: Vec<LinkId> =
            self.links.iter().filter(|(_, l)| l.a.0 == node || l.b.0 == node).map(|(id, _)| *id).collect();
        for id in ids {
            self.disconnect(id);
        }
    }

    pub fn links(&self) -> Vec<LinkId> {
        self.links.keys().copied().collect()
    }

    /// Opens a document on a client node.
    pub fn open(&mut self, node: NodeId, doc: DocumentId, seed: Option<Vec<u8>>) {
        self.input(node, Input::Open { doc, seed });
    }

    /// Edits a loaded document on a node; returns false if it is not loaded.
    pub fn change(&mut self, node: NodeId, doc: DocumentId, f: impl FnOnce(&mut Automerge)) -> bool {
        match self.nodes[node.0].engine.change(doc, f) {
            Ok(((), effects)) => {
                self.dispatch(node, effects);
                true
            }
            Err(_) => false,
        }
    }

    pub fn doc(&self, node: NodeId, doc: &DocumentId) -> Option<&Automerge> {
        self.nodes[node.0].engine.doc(doc)
    }

    /// The node loses its memory and unfinished writes; its store survives. Clients must reopen
    /// their documents afterwards.
    pub fn crash(&mut self, node: NodeId) {
        self.isolate(node);
        let n = &mut self.nodes[node.0];
        n.restarts += 1;
        n.io.clear();
        n.engine = Self::engine_for(n.role, node.0, n.restarts, n.plain);
    }

    fn input(&mut self, node: NodeId, input: Input<()>) {
        self.now += 1;
        let effects = self.nodes[node.0].engine.handle(self.now, input);
        self.dispatch(node, effects);
    }

    fn dispatch(&mut self, node: NodeId, effects: Vec<Effect>) {
        for e in effects {
            match e {
                Effect::Send { conn, bytes } => {
                    if let Some(l) =
                        self.links.values_mut().find(|l| l.a == (node, conn) || l.b == (node, conn))
                    {
                        if l.a == (node, conn) { l.to_b.push_back(bytes) } else { l.to_a.push_back(bytes) }
                    }
                }
                Effect::Close { conn, .. } => {
                    let found = self.links.iter().find(|(_, l)| l.a == (node, conn) || l.b == (node, conn));
                    if let Some((&id, _)) = found {
                        self.nodes[node.0].events.push(e);
                        self.disconnect(id);
                    }
                }
                Effect::Load { .. } | Effect::Write { .. } => self.nodes[node.0].io.push_back(Io::Effect(e)),
                other => self.nodes[node.0].events.push(other),
            }
        }
    }

    fn stored_chunks(&self, node: NodeId, doc: &DocumentId) -> Vec<Chunk> {
        self.nodes[node.0]
            .store
            .get(doc)
            .map(|m| m.iter().map(|(key, bytes)| Chunk { key: key.clone(), bytes: bytes.clone() }).collect())
            .unwrap_or_default()
    }

    /// Carries out one pending load, write or notification of a node.
    fn do_io(&mut self, node: NodeId) -> bool {
        let Some(io) = self.nodes[node.0].io.pop_front() else { return false };
        let input = match io {
            Io::Effect(Effect::Load { doc }) => Input::Loaded { doc, chunks: self.stored_chunks(node, &doc) },
            Io::Effect(Effect::Write { doc, write, batch }) => {
                // One atomic commit to the (possibly shared) store, then a notification to the
                // other nodes on it.
                let mates = self.store_mates(node);
                for n in std::iter::once(node).chain(mates.iter().copied()) {
                    let entry = self.nodes[n.0].store.entry(doc).or_default();
                    for c in &batch.puts {
                        entry.insert(c.key.clone(), c.bytes.clone());
                    }
                    for k in &batch.deletes {
                        entry.remove(k);
                    }
                }
                if !self.lose_notifications {
                    for n in mates {
                        self.nodes[n.0].io.push_back(Io::Notified(doc));
                    }
                }
                Input::Written { doc, write }
            }
            Io::Effect(_) => return false,
            Io::Notified(doc) => {
                // The host reloads only what its engine holds; the load itself is a later step.
                if self.nodes[node.0].engine.has_document(&doc) {
                    self.nodes[node.0].io.push_back(Io::Reload(doc));
                }
                return true;
            }
            Io::Reload(doc) => Input::StorageChanged { doc, chunks: self.stored_chunks(node, &doc) },
        };
        self.input(node, input);
        true
    }

    /// Delivers one frame on a link in one direction, applying faults.
    fn deliver(&mut self, link: LinkId, to_b: bool) -> bool {
        let faults = self.faults;
        let (roll_drop, roll_dup, roll_reorder) = (self.rand(100), self.rand(100), self.rand(100));
        let Some(l) = self.links.get_mut(&link) else { return false };
        let queue = if to_b { &mut l.to_b } else { &mut l.to_a };
        if queue.len() > 1 && roll_reorder < u64::from(faults.reorder) {
            queue.swap(0, 1);
        }
        let Some(frame) = queue.pop_front() else { return false };
        if roll_dup < u64::from(faults.duplicate) {
            queue.push_front(frame.clone());
        }
        let (node, conn) = if to_b { l.b } else { l.a };
        if roll_drop < u64::from(faults.drop) {
            return true;
        }
        self.frames_delivered += 1;
        self.bytes_delivered += frame.len() as u64;
        let (kind, doc) = crate::wire::Message::decode(&frame)
            .map_or(("undecodable", None), |m| (m.type_name(), m.document()));
        self.delivered.push(Delivered { to: node, kind, doc, bytes: frame.len() });
        self.input(node, Input::Frame { conn, bytes: frame });
        true
    }

    /// Does one thing (a frame or an IO completion), chosen at random among what is possible.
    /// Returns false when nothing is left to do.
    pub fn step(&mut self) -> bool {
        let mut options: Vec<(u8, u64, bool)> = Vec::new();
        for (id, l) in &self.links {
            if !l.to_b.is_empty() {
                options.push((0, id.0, true));
            }
            if !l.to_a.is_empty() {
                options.push((0, id.0, false));
            }
        }
        for (i, n) in self.nodes.iter().enumerate() {
            if !n.io.is_empty() {
                options.push((1, i as u64, false));
            }
        }
        if options.is_empty() {
            return false;
        }
        let pick = options[self.rand(options.len() as u64) as usize];
        match pick {
            (0, link, to_b) => self.deliver(LinkId(link), to_b),
            (_, node, _) => self.do_io(NodeId(node as usize)),
        }
    }

    /// Runs until no frame is in flight and no IO is pending. Panics after `limit` steps, which
    /// would mean the engines never stop talking.
    pub fn run_until_quiescent(&mut self) -> u64 {
        const LIMIT: u64 = 1_000_000;
        let mut steps = 0;
        while self.step() {
            steps += 1;
            assert!(steps < LIMIT, "network did not quiesce after {LIMIT} steps");
        }
        steps
    }

    /// Runs to quiescence in rounds: all IO, then every frame in flight at the start of the round
    /// (what arrives meanwhile waits for the next round). Returns how many rounds carried
    /// frames: one-way hops, so a request and its answer count two.
    pub fn run_in_rounds(&mut self) -> u32 {
        let mut hops = 0;
        loop {
            while (0..self.nodes.len()).any(|i| self.do_io(NodeId(i))) {}
            let due: Vec<(LinkId, usize, usize)> =
                self.links.iter().map(|(id, l)| (*id, l.to_b.len(), l.to_a.len())).collect();
            if due.iter().all(|(_, b, a)| b + a == 0) {
                return hops;
            }
            hops += 1;
            for (link, to_b, to_a) in due {
                for _ in 0..to_b {
                    self.deliver(link, true);
                }
                for _ in 0..to_a {
                    self.deliver(link, false);
                }
            }
        }
    }

    /// Runs until no frame is in flight and no IO is pending, at most `limit` steps. Returns the
    /// steps taken, or `None` if the network was still busy after `limit` of them.
    pub fn run_until_quiescent_within(&mut self, limit: u64) -> Option<u64> {
        let mut steps = 0;
        while steps < limit {
            if !self.step() {
                return Some(steps);
            }
            steps += 1;
        }
        None
    }

    /// Runs at most `n` steps.
    pub fn run_steps(&mut self, n: u64) {
        for _ in 0..n {
            if !self.step() {
                break;
            }
        }
    }
}
