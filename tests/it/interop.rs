//! Interoperability: an unmodified JS automerge-repo client (`@automerge/automerge-repo` with its
//! WebSocket adapter, on Node) syncs through the relay with the native client, both ways.
//!
//! The JS peer is `tests/js/peer.mjs`, driven over stdin/stdout one line per command. Its packages
//! are pinned in `tests/js/package-lock.json`; install them with `npm ci --prefix tests/js`.
//! Without Node or those packages these tests fail (they never skip).

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context as _, bail, ensure};
use automerge::transaction::Transactable as _;
use automerge::{Automerge, ObjType, ROOT, ReadDoc as _, ScalarValue, Value};
use chibo_server::metrics::RefusedReason;
use chibo_shared::ids::{BranchId, DocumentId, ForumId};
use chibo_shared::schema::{DocKind, DocPath, Forum, ForumText, genesis_change_bytes, hydrate, read_text};
use chibo_shared::sync::Effect;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::harness::{Device, Relay, TIMEOUT, append_text};

const INSTALL_HINT: &str = "run `npm ci --prefix tests/js` (needs Node >= 20 on PATH)";

/// A JS automerge-repo peer (`node tests/js/peer.mjs <url>`), connected to the relay.
pub(crate) struct JsPeer {
    /// The peer id the JS repo chose for itself.
    id: String,
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
}

impl JsPeer {
    fn dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("js")
    }

    /// Starts the peer and waits until the relay has answered its `join`.
    pub(crate) async fn start(url: &str) -> anyhow::Result<Self> {
        Self::start_with(url, TIMEOUT / 2).await
    }

    /// Starts the peer with its own waits limited to `node_timeout`.
    pub(crate) async fn start_with(url: &str, node_timeout: std::time::Duration) -> anyhow::Result<Self> {
        let dir = Self::dir();
        let installed = dir.join("node_modules/@automerge/automerge-repo-network-websocket/package.json");
        ensure!(
            installed.exists(),
            "the JS automerge-repo client is not installed ({} is missing): {INSTALL_HINT}",
            installed.display()
        );
        // The peer's own timeout is below ours, so a wait that fails reports node's message (what
        // it was waiting for and what it had) rather than only ours.
        let node_timeout_ms = node_timeout.as_millis().to_string();
        let mut child = Command::new("node")
            .current_dir(&dir)
            .arg("peer.mjs")
            .arg(url)
            .arg(node_timeout_ms)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting `node` in {}: {INSTALL_HINT}", dir.display()))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            bail!("node's stdio pipes are missing");
        };
        let mut peer = Self { id: String::new(), child, stdin, stdout: BufReader::new(stdout).lines() };
        let ready = peer.reply("ready").await?;
        let Some((relay, id)) = ready.split_once(' ') else { bail!("the JS peer said `ready {ready}`") };
        ensure!(relay == "chibo-relay", "the JS peer's `peer` message came from {relay:?}");
        peer.id = id.to_owned();
        Ok(peer)
    }

    /// The next line, which must start with `<want> `; returns the rest.
    async fn reply(&mut self, want: &str) -> anyhow::Result<String> {
        let line = tokio::time::timeout(TIMEOUT, self.stdout.next_line())
            .await
            .with_context(|| format!("the JS peer did not answer `{want}` within {TIMEOUT:?}"))?
            .context("reading the JS peer's stdout")?;
        let Some(line) = line else {
            let status = self.child.wait().await?;
            bail!("the JS peer exited ({status}) instead of answering `{want}`");
        };
        match line.split_once(' ').unwrap_or((line.as_str(), "")) {
            (kind, rest) if kind == want => Ok(rest.to_owned()),
            ("error", why) => bail!("the JS peer failed: {why}"),
            _ => bail!("the JS peer answered {line:?}, expected `{want} ...`"),
        }
    }

    /// Sends one command and returns its reply (after `<want> `).
    pub(crate) async fn call(&mut self, command: &str, want: &str) -> anyhow::Result<String> {
        self.stdin.write_all(format!("{command}\n").as_bytes()).await.context("writing to the JS peer")?;
        self.stdin.flush().await?;
        self.reply(want).await
    }

    /// Disconnects and checks that node exits cleanly.
    pub(crate) async fn quit(mut self) -> anyhow::Result<()> {
        self.call("quit", "bye").await?;
        let status =
            tokio::time::timeout(TIMEOUT, self.child.wait()).await.context("node did not exit")??;
        ensure!(status.success(), "the JS peer exited with {status}");
        Ok(())
    }
}

/// The relay refused nothing the JS client sent (no malformed frame, no protocol violation).
async fn relay_refused_nothing(relay: &Relay) -> anyhow::Result<()> {
    let metrics = relay.metrics().await?;
    for reason in RefusedReason::ALL {
        let n = metrics.refused(reason.label());
        ensure!(n == 0.0, "the relay refused {n} frames as {}", reason.label());
    }
    Ok(())
}

/// A string at `key` in the root map: a text object (what automerge 3 JS writes for strings) or
/// a scalar string.
fn root_string(doc: &Automerge, key: &str) -> Option<String> {
    match doc.get(ROOT, key).ok()?? {
        (Value::Object(ObjType::Text), text) => doc.text(&text).ok(),
        (Value::Scalar(s), _) => match s.as_ref() {
            ScalarValue::Str(s) => Some(s.to_string()),
            _ => None,
        },
        _ => None,
    }
}

/// Sets `key` in the root map to a new text object holding `value`, as JS `doc[key] = value` does.
fn put_text(doc: &mut Automerge, key: &str, value: &str) -> anyhow::Result<()> {
    doc.transact(|tx| {
        let text = tx.put_object(ROOT, key, ObjType::Text)?;
        tx.splice_text(&text, 0, 0, value)
    })
    .map_err(|failure| failure.error)?;
    Ok(())
}

/// Waits until the device's copy of `doc` has `value` at `key`.
async fn wait_for_root_string(
    device: &Device,
    doc: DocumentId,
    key: &'static str,
    value: &str,
) -> anyhow::Result<()> {
    let value = value.to_owned();
    let outcome = device
        .client
        .wait_until("a value written by the JS client", TIMEOUT, move |inner| {
            inner.engine().doc(&doc).and_then(|d| root_string(d, key)).as_deref() == Some(value.as_str())
        })
        .await;
    if let Err(e) = outcome {
        let have = device.client.read(doc, |d| root_string(d, key)).await;
        bail!("{e}; the native client has {key} = {have:?}");
    }
    Ok(())
}

/// A forum document's id (the `n`th forum of a test branch).
fn forum_id(n: u8) -> DocumentId {
    DocPath::Forum { branch: BranchId::from_bytes([0x51; 16]), forum: ForumId::from_bytes([n; 16]) }
        .document_id()
}

/// A real chibo document: the forum genesis, then the clerk's first line of minutes, synced.
async fn create_forum(device: &Device, forum: DocumentId) -> anyhow::Result<()> {
    device.client.open(forum, Some(genesis_change_bytes(DocKind::Forum))).await?;
    device.client.change(forum, |d| append_text(d, &ForumText::Minutes, "Khai mạc.")).await??;
    device.client.wait_synced(forum, TIMEOUT).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_client_creates_a_document_the_native_client_reads() -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let relay = Relay::start_in(data.path()).await?;

    let mut js = JsPeer::start(&relay.url()).await?;
    let url = js.call("create title Biên bản viết trên Node", "url").await?;
    let doc =
        DocumentId::parse_url_or_id(&url).with_context(|| format!("the JS peer made the URL {url:?}"))?;
    ensure!(doc.to_url() == url, "{url} does not round-trip: {}", doc.to_url());

    // The native client knows only the id: everything it gets comes from the JS peer via the relay.
    let native = Device::new("native")?;
    native.client.connect(&relay.url()).await?;
    native.client.open(doc, None).await?;
    wait_for_root_string(&native, doc, "title", "Biên bản viết trên Node").await?;

    native.client.change(doc, |d| put_text(d, "reply", "đã nhận từ Rust")).await??;
    let seen = js.call(&format!("wait {url} reply đã nhận từ Rust"), "doc").await?;
    ensure!(seen.contains(r#""title":"Biên bản viết trên Node""#), "the JS peer lost its own title: {seen}");

    relay_refused_nothing(&relay).await?;
    js.quit().await?;
    relay.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_client_creates_a_document_the_js_client_finds() -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let relay = Relay::start_in(data.path()).await?;
    let forum = forum_id(0x52);
    let url = forum.to_url();

    let native = Device::new("native")?;
    native.client.connect(&relay.url()).await?;
    create_forum(&native, forum).await?;

    let mut js = JsPeer::start(&relay.url()).await?;
    let found = js.call(&format!("find {url}"), "doc").await?;
    ensure!(found.contains(r#""kind":"forum""#), "the JS peer found {found}");
    js.call(&format!("wait {url} minutes Khai mạc."), "doc").await?;

    // The JS peer types into the same text object; the native client sees it merged in place.
    js.call(&format!("append {url} minutes  Đồng chí Bình phát biểu."), "ok").await?;
    let want = "Khai mạc. Đồng chí Bình phát biểu.";
    let outcome = native
        .client
        .wait_until("the JS client's words in the minutes", TIMEOUT, move |inner| {
            inner
                .engine()
                .doc(&forum)
                .is_some_and(|d| read_text(d, &ForumText::Minutes).is_ok_and(|t| t == want))
        })
        .await;
    if let Err(e) = outcome {
        let have =
            native.client.read(forum, |d| read_text(d, &ForumText::Minutes).map_err(|e| e.to_string())).await;
        bail!("{e}; the native client's minutes are {have:?}");
    }
    // The JS edit leaves a document the app can still read.
    native
        .client
        .read(forum, |d| hydrate::<Forum>(d).map(drop).map_err(|e| e.to_string()))
        .await?
        .map_err(anyhow::Error::msg)?;

    relay_refused_nothing(&relay).await?;
    js.quit().await?;
    relay.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_client_told_a_document_is_unavailable_gets_it_once_the_native_client_creates_it()
-> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let relay = Relay::start_in(data.path()).await?;
    let forum = forum_id(0x53);
    let url = forum.to_url();

    // Nobody has it: the relay answers the JS `request` with `doc-unavailable`, and `find` says so
    // at once instead of waiting out its timeout.
    let mut js = JsPeer::start(&relay.url()).await?;
    js.call(&format!("find {url}"), "unavailable").await?;

    // The relay keeps the asking peer subscribed, so the document reaches it when it appears.
    let native = Device::new("native")?;
    native.client.connect(&relay.url()).await?;
    create_forum(&native, forum).await?;
    js.call(&format!("wait {url} minutes Khai mạc."), "doc").await?;

    relay_refused_nothing(&relay).await?;
    js.quit().await?;
    relay.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ephemeral_messages_reach_every_peer_under_their_senders_id() -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let relay = Relay::start_in(data.path()).await?;
    let forum = forum_id(0x54);
    let url = forum.to_url();
    let native = Device::new("native")?;
    native.client.connect(&relay.url()).await?;
    create_forum(&native, forum).await?;
    let mut speaker = JsPeer::start(&relay.url()).await?;
    let mut listener = JsPeer::start(&relay.url()).await?;
    speaker.call(&format!("find {url}"), "doc").await?;
    listener.call(&format!("find {url}"), "doc").await?;

    // JS presence keys peers by the `senderId` of ephemeral messages, so the relay must pass it on
    // rather than put its own.
    speaker.call(&format!("broadcast {url} đang gõ"), "ok").await?;
    let heard_from = listener.call(&format!("heard {url} đang gõ"), "heard").await?;
    ensure!(heard_from == speaker.id, "the listener heard {heard_from:?}, not the speaker {:?}", speaker.id);
    let speaker_id = speaker.id.clone();
    native
        .client
        .wait_until("the JS speaker's ephemeral message", TIMEOUT, move |inner| {
            let from_speaker = |e: &Effect| {
                matches!(e, Effect::Ephemeral { doc, from, .. } if *doc == forum && from.as_str() == speaker_id)
            };
            inner.events.iter().any(from_speaker)
        })
        .await?;
    let payload = native
        .client
        .with(|inner| {
            inner.events.iter().find_map(|e| match e {
                Effect::Ephemeral { data, .. } => Some(data.clone()),
                _ => None,
            })
        })
        .await?
        .context("no ephemeral message")?;
    let payload: ciborium::Value =
        ciborium::from_reader(payload.as_slice()).context("the payload is not CBOR")?;
    let text = payload.into_map().ok().and_then(|m| {
        m.into_iter().find(|(k, _)| k.as_text() == Some("text")).and_then(|(_, v)| v.into_text().ok())
    });
    ensure!(text.as_deref() == Some("đang gõ"), "the native client got {text:?}");

    // The listener forwards what it heard back to the relay (automerge-repo does); the relay drops
    // the repeat and keeps the connection: the listener's next edit still arrives.
    listener.call(&format!("append {url} minutes  Hết."), "ok").await?;
    native
        .client
        .wait_until("the listener's edit", TIMEOUT, move |inner| {
            inner
                .engine()
                .doc(&forum)
                .is_some_and(|d| read_text(d, &ForumText::Minutes).is_ok_and(|t| t == "Khai mạc. Hết."))
        })
        .await?;

    relay_refused_nothing(&relay).await?;
    speaker.quit().await?;
    listener.quit().await?;
    relay.stop().await
}
