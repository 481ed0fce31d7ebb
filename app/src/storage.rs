//! The only module that touches IndexedDB (and the browser's storage manager).
//!
//! Database `chibo`, object store `chunks`: key `[documentId, kind, name]`, value the chunk's bytes
//! as a `Uint8Array`; object store `device`: key `"self"`, value this device's enrolment (its key
//! seed, actor, session) as a JSON string, written by [`crate::account`]. The layout, what a chunk is and when to compact are decided by
//! [`chibo_shared::storage`]; this module only stores and fetches chunks. A [`write`](IdbStore::write)
//! resolves only once its transaction has *completed* with strict durability, so the UI may call
//! an edit saved when it returns `Ok`.

use chibo_shared::ids::DocumentId;
use chibo_shared::storage::{Chunk, ChunkKey, ChunkKind, WriteBatch};
use indexed_db_futures::KeyRange;
use indexed_db_futures::database::Database;
use indexed_db_futures::error::{DomException, Error as IdbError, OpenDbError, UnexpectedDataError};
use indexed_db_futures::internals::SystemRepr;
use indexed_db_futures::prelude::*;
use indexed_db_futures::transaction::{TransactionDurability, TransactionMode, TransactionOptions};
use js_sys::{Array, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

/// The IndexedDB database name.
pub const DB_NAME: &str = "chibo";
/// Bump with a migration in [`upgrade`] when the object stores change.
const DB_VERSION: u32 = 2;
/// Chunks keyed `[documentId, kind, name]`.
const CHUNKS: &str = "chunks";
/// This device's enrolment, one record under [`DEVICE_KEY`] (version 2).
const DEVICE: &str = "device";
const DEVICE_KEY: &str = "self";

/// Why a storage operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    /// No `indexedDB` (some private modes, very old browsers, non-window contexts).
    #[error("this browser offers no IndexedDB")]
    Unavailable,
    /// The origin's quota is used up; nothing of the failed write was stored.
    #[error("device storage is full")]
    QuotaExceeded,
    /// The transaction was aborted without a reason (tab closing, database deleted, ...).
    #[error("the write was aborted and nothing was stored")]
    Aborted,
    /// A stored record is not what this module writes.
    #[error("stored record {key} is malformed: {reason}")]
    Corrupt { key: String, reason: &'static str },
    /// Any other `DOMException`, by name (`InvalidStateError`, `UnknownError`, ...).
    #[error("IndexedDB {name}: {message}")]
    Dom { name: String, message: String },
}

impl StorageError {
    fn from_dom(e: &web_sys::DomException) -> Self {
        match e.name().as_str() {
            "QuotaExceededError" => Self::QuotaExceeded,
            "AbortError" => Self::Aborted,
            name => Self::Dom { name: name.to_owned(), message: e.message() },
        }
    }

    /// Maps an `indexed_db_futures` error; `tx` is the transaction it happened in, if any, whose
    /// `error` names the cause when the crate only reports "aborted" (Chrome reports a full disk
    /// at commit time that way).
    fn from_idb(e: IdbError, tx: Option<&web_sys::IdbTransaction>) -> Self {
        match e {
            IdbError::DomException(d) => Self::from_dom(&web_sys::DomException::from(d)),
            IdbError::MissingData(UnexpectedDataError::TransactionAborted) => {
                match tx.and_then(web_sys::IdbTransaction::error) {
                    Some(cause) => Self::from_dom(&cause),
                    None => Self::Aborted,
                }
            }
            other => Self::Dom { name: "Error".to_owned(), message: other.to_string() },
        }
    }
}

impl From<IdbError> for StorageError {
    fn from(e: IdbError) -> Self {
        Self::from_idb(e, None)
    }
}

impl From<OpenDbError> for StorageError {
    fn from(e: OpenDbError) -> Self {
        match e {
            OpenDbError::NullFactory | OpenDbError::UnsupportedEnvironment => Self::Unavailable,
            OpenDbError::Base(e) => e.into(),
            other => Self::Dom { name: "Error".to_owned(), message: other.to_string() },
        }
    }
}

impl From<DomException> for StorageError {
    fn from(e: DomException) -> Self {
        Self::from_dom(&e.into())
    }
}

/// An open connection to the `chibo` database.
#[derive(Debug)]
pub struct IdbStore {
    db: Database,
}

impl IdbStore {
    /// Opens (creating or upgrading) the database.
    pub async fn open() -> Result<Self, StorageError> {
        let db = Database::open(DB_NAME).with_version(DB_VERSION).with_on_upgrade_needed(upgrade).await?;
        Ok(Self { db })
    }

    /// Closes the connection (pending transactions still finish).
    pub fn close(self) {
        self.db.close();
    }

    /// Every chunk stored for `doc`, read in one transaction (a consistent snapshot).
    pub async fn load(&self, doc: DocumentId) -> Result<Vec<Chunk>, StorageError> {
        let tx = self.db.transaction(CHUNKS).build()?;
        let store = tx.object_store(CHUNKS)?;
        let range = document_range(doc);
        // Both requests go out now and see the same snapshot, in the same key order.
        let keys = store.get_all_keys::<JsValue>().with_query::<JsValue, _>(range.clone()).primitive()?;
        let values = store.get_all::<JsValue>().with_query::<JsValue, _>(range).primitive()?;
        let keys = keys.await?;
        let values = values.await?;
        let mut chunks = Vec::new();
        for (key, value) in keys.zip(values) {
            let (key, value) = (key?, value?);
            let (_, chunk_key) = parse_key(&key)?;
            let bytes = value
                .dyn_into::<Uint8Array>()
                .map_err(|_| StorageError::Corrupt { key: chunk_key.to_string(), reason: "not bytes" })?
                .to_vec();
            chunks.push(Chunk { key: chunk_key, bytes });
        }
        Ok(chunks)
    }

    /// Applies `batch` to `doc` atomically: deletes, then puts, in one readwrite transaction with
    /// strict durability. Resolves once the transaction has completed; on error nothing changed.
    pub async fn write(&self, doc: DocumentId, batch: &WriteBatch) -> Result<(), StorageError> {
        if batch.is_empty() {
            return Ok(());
        }
        let tx = self
            .db
            .transaction(CHUNKS)
            .with_mode(TransactionMode::Readwrite)
            .with_options(TransactionOptions::new().with_durability(TransactionDurability::Strict))
            .build()?;
        // Kept to read `error` after an abort: commit() consumes the transaction.
        let raw: web_sys::IdbTransaction = tx.as_sys().clone().unchecked_into();
        let issued: Result<(), IdbError> = (|| {
            let store = tx.object_store(CHUNKS)?;
            // Requests are sent as they are built; a failing one aborts the whole transaction,
            // which commit() reports. Deletes first, so a batch that re-puts a key keeps it.
            for key in &batch.deletes {
                drop(store.delete(chunk_key(doc, key)).primitive()?);
            }
            for chunk in &batch.puts {
                let bytes: JsValue = Uint8Array::from(chunk.bytes.as_slice()).into();
                drop(store.put(bytes).with_key(chunk_key(doc, &chunk.key)).primitive()?);
            }
            Ok(())
        })();
        match issued {
            Ok(()) => tx.commit().await.map_err(|e| StorageError::from_idb(e, Some(&raw))),
            // Dropping the transaction aborts it.
            Err(e) => Err(StorageError::from_idb(e, Some(&raw))),
        }
    }

    /// This device's enrolment record, if it has one.
    pub async fn device_record(&self) -> Result<Option<String>, StorageError> {
        let tx = self.db.transaction(DEVICE).build()?;
        let store = tx.object_store(DEVICE)?;
        let value: Option<JsValue> = store.get(DEVICE_KEY).primitive()?.await?;
        Ok(value.and_then(|v| v.as_string()))
    }

    /// Replaces this device's enrolment record; resolves once durable.
    pub async fn put_device_record(&self, json: &str) -> Result<(), StorageError> {
        let tx = self
            .db
            .transaction(DEVICE)
            .with_mode(TransactionMode::Readwrite)
            .with_options(TransactionOptions::new().with_durability(TransactionDurability::Strict))
            .build()?;
        let raw: web_sys::IdbTransaction = tx.as_sys().clone().unchecked_into();
        let issued = tx.object_store(DEVICE).and_then(|store| {
            drop(store.put(JsValue::from_str(json)).with_key(DEVICE_KEY).primitive()?);
            Ok(())
        });
        match issued {
            Ok(()) => tx.commit().await.map_err(|e| StorageError::from_idb(e, Some(&raw))),
            Err(e) => Err(StorageError::from_idb(e, Some(&raw))),
        }
    }

    /// The documents that have at least one chunk, in key order.
    pub async fn list_documents(&self) -> Result<Vec<DocumentId>, StorageError> {
        let tx = self.db.transaction(CHUNKS).build()?;
        let store = tx.object_store(CHUNKS)?;
        // Skip scan: one request per document rather than one per chunk. `[]` sorts below every
        // non-empty array key; `[doc, []]` sorts above every `[doc, kind, name]`.
        let mut from: JsValue = Array::new().into();
        let mut docs = Vec::new();
        while let Some(key) = store.get_key::<JsValue, _>(KeyRange::LowerBound(from, true)).await? {
            let (doc, _) = parse_key(&key)?;
            docs.push(doc);
            from = document_upper(doc);
        }
        Ok(docs)
    }
}

/// What the browser said when asked to keep our data through storage pressure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persistence {
    /// Storage is persistent: the browser will not evict it on its own.
    Persisted,
    /// Best-effort storage: the browser may evict it when the disk is short.
    BestEffort,
    /// This browser has no `navigator.storage`.
    Unsupported,
}

/// Asks for persistent storage (`navigator.storage.persist()`); cheap once already granted.
pub async fn request_persistence() -> Persistence {
    let Some(manager) = web_sys::window().map(|w| w.navigator().storage()) else {
        return Persistence::Unsupported;
    };
    // `storage` is missing on insecure origins even though web-sys types it as always there.
    if JsValue::from(manager.clone()).is_undefined() {
        return Persistence::Unsupported;
    }
    let granted = async {
        if JsFuture::from(manager.persisted()?).await?.as_bool() == Some(true) {
            return Ok::<_, JsValue>(true);
        }
        Ok(JsFuture::from(manager.persist()?).await?.as_bool() == Some(true))
    };
    match granted.await {
        Ok(true) => Persistence::Persisted,
        Ok(false) => Persistence::BestEffort,
        Err(_) => Persistence::Unsupported,
    }
}

fn upgrade(
    event: indexed_db_futures::database::VersionChangeEvent,
    db: Database,
) -> indexed_db_futures::Result<()> {
    // Versions are small integers stored as f64; truncation is exact.
    if (event.old_version() as u32) < 1 {
        db.create_object_store(CHUNKS).build()?;
    }
    if (event.old_version() as u32) < 2 {
        db.create_object_store(DEVICE).build()?;
    }
    Ok(())
}

fn chunk_key(doc: DocumentId, key: &ChunkKey) -> JsValue {
    Array::of3(&doc.to_string().into(), &key.kind.as_str().into(), &key.name.as_str().into()).into()
}

fn document_upper(doc: DocumentId) -> JsValue {
    Array::of2(&doc.to_string().into(), &Array::new()).into()
}

/// `[doc]` ..= `[doc, []]`: exactly the keys `[doc, kind, name]`.
fn document_range(doc: DocumentId) -> KeyRange<JsValue> {
    KeyRange::Bound(Array::of1(&doc.to_string().into()).into(), false, document_upper(doc), false)
}

fn parse_key(key: &JsValue) -> Result<(DocumentId, ChunkKey), StorageError> {
    let corrupt = |reason| StorageError::Corrupt { key: format!("{key:?}"), reason };
    let parts =
        key.dyn_ref::<Array>().filter(|a| a.length() == 3).ok_or_else(|| corrupt("not a 3-part key"))?;
    let text = |i| parts.get(i).as_string().ok_or_else(|| corrupt("key part is not text"));
    let doc = text(0)?.parse().map_err(|_| corrupt("bad document id"))?;
    let kind = ChunkKind::parse(&text(1)?).ok_or_else(|| corrupt("unknown chunk kind"))?;
    Ok((doc, ChunkKey { kind, name: text(2)? }))
}

#[cfg(test)]
mod tests {
    use indexed_db_futures::primitive::TryToJs;
    use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

    use super::*;

    wasm_bindgen_test_configure!(run_in_browser);

    fn dom(name: &str) -> web_sys::DomException {
        web_sys::DomException::new_with_message_and_name("test", name).expect("DOMException")
    }

    #[wasm_bindgen_test]
    fn a_full_disk_is_reported_as_quota_exceeded_whichever_way_it_arrives() {
        let direct: IdbError = dom("QuotaExceededError").into();
        assert_eq!(StorageError::from(direct), StorageError::QuotaExceeded);
        // Chrome aborts the commit and puts the reason on the transaction; the crate only says
        // "aborted", so the mapping must ask the transaction.
        let aborted: IdbError = UnexpectedDataError::TransactionAborted.into();
        assert_eq!(StorageError::from_idb(aborted, None), StorageError::Aborted);
        assert_eq!(
            StorageError::from(IdbError::from(dom("VersionError"))),
            StorageError::Dom { name: "VersionError".to_owned(), message: "test".to_owned() }
        );
    }

    #[wasm_bindgen_test]
    fn keys_round_trip_and_the_document_range_holds_exactly_that_document() {
        let doc = DocumentId::from_canonical_path("test/key");
        let key = ChunkKey::incremental(b"bytes");
        assert_eq!(parse_key(&chunk_key(doc, &key)).expect("parses"), (doc, key.clone()));
        let range = document_range(doc).try_to_js().expect("a valid key range");
        let range: web_sys::IdbKeyRange = range.unchecked_into();
        let other = DocumentId::from_canonical_path("test/other");
        assert!(range.includes(&chunk_key(doc, &key)).expect("includes"));
        assert!(!range.includes(&chunk_key(other, &key)).expect("includes"));
        let snapshot = ChunkKey { kind: ChunkKind::Snapshot, name: "f".repeat(64) };
        assert!(range.includes(&chunk_key(doc, &snapshot)).expect("includes"));
    }
}
