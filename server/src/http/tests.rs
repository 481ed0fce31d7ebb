//! The real server on `127.0.0.1:0`, spoken to over real sockets.

use std::path::Path;

use axum::http::{HeaderMap, StatusCode};
use futures::{SinkExt as _, StreamExt as _};
use http_body_util::{BodyExt as _, Empty};
use hyper::body::Bytes;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite;

use super::*;
use crate::metrics::RefusedReason;
use crate::metrics::parse_exposition;
use axum::extract::ws::close_code;

const INDEX: &str = "<!doctype html><title>chibo</title>";
const ASSET: &str = "chibo-app-0123456789abcdef.js";

struct Server {
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    _data: tempfile::TempDir,
}

impl Server {
    async fn start(app_dir: Option<&Path>) -> Self {
        let data = tempfile::tempdir().expect("tempdir");
        let mut config = ServeConfig::new(data.path());
        config.app_dir = app_dir.map(Path::to_path_buf);
        config.max_message_bytes = 64 * 1024;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let metrics = Metrics::new();
        let sqlite = SqliteStore::open(config.data.sqlite_path()).expect("store");
        let store: Arc<dyn Store> = Arc::new(InstrumentedStore::new(sqlite.clone(), metrics.clone()));
        config.open_access = true;
        let roster = RosterHome::Own(sqlite.shared_roster());
        let state = AppState::new(roster, store, metrics.clone(), config).await.expect("state");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, state, async move {
            let _ = stopped.await;
        }));
        Self { addr, metrics, stop: Some(stop), task, _data: data }
    }

    async fn get(&self, path: &str, headers: &[(&str, &str)]) -> (StatusCode, HeaderMap, Bytes) {
        let stream = tokio::net::TcpStream::connect(self.addr).await.expect("connect");
        let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .expect("handshake");
        tokio::spawn(conn);
        let mut req = hyper::Request::get(path).header("host", "localhost");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = sender.send_request(req.body(Empty::<Bytes>::new()).expect("request")).await.expect("send");
        let (parts, body) = res.into_parts();
        (parts.status, parts.headers, body.collect().await.expect("body").to_bytes())
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("graceful shutdown finishes")
            .expect("join")
            .expect("server result");
    }
}

fn app_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path();
    std::fs::write(p.join("index.html"), INDEX).expect("index");
    std::fs::write(p.join("sw.js"), "self.addEventListener('fetch', () => {});").expect("sw");
    std::fs::write(p.join("manifest.webmanifest"), "{}").expect("manifest");
    std::fs::write(p.join(ASSET), "console.log('plain');").expect("asset");
    std::fs::write(p.join(format!("{ASSET}.br")), b"BROTLI-BYTES").expect("asset.br");
    dir
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

#[tokio::test]
async fn app_cache_control_headers() {
    let app = app_dir();
    let server = Server::start(Some(app.path())).await;
    for path in ["/", "/index.html", "/sw.js", "/manifest.webmanifest"] {
        let (status, headers, _) = server.get(path, &[]).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(header(&headers, "cache-control"), "no-cache", "{path}");
    }
    let (status, headers, body) = server.get(&format!("/{ASSET}"), &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header(&headers, "cache-control"), "public, max-age=31536000, immutable");
    assert_eq!(&body[..], b"console.log('plain');");
    assert_eq!(header(&headers, "content-encoding"), "");
    server.stop().await;
}

#[tokio::test]
async fn app_precompressed_brotli_is_served_when_accepted() {
    let app = app_dir();
    let server = Server::start(Some(app.path())).await;
    let (status, headers, body) = server.get(&format!("/{ASSET}"), &[("accept-encoding", "gzip, br")]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header(&headers, "content-encoding"), "br");
    assert_eq!(&body[..], b"BROTLI-BYTES");
    assert!(header(&headers, "content-type").starts_with("text/javascript"), "{headers:?}");
    assert!(header(&headers, "vary").contains("accept-encoding"), "{headers:?}");
    server.stop().await;
}

#[tokio::test]
async fn app_spa_fallback_serves_index_for_pages_only() {
    let app = app_dir();
    let server = Server::start(Some(app.path())).await;
    let (status, headers, body) = server.get("/branch/3xZ/plan", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(&body[..], INDEX.as_bytes());
    assert_eq!(header(&headers, "cache-control"), "no-cache");
    assert!(header(&headers, "content-type").starts_with("text/html"));

    // A missing asset and unknown API paths are 404s, not HTML.
    for path in ["/chibo-app-ffffffffffffffff.js", "/api/unknown", "/metrics/x"] {
        let (status, headers, _) = server.get(path, &[]).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(header(&headers, "cache-control"), "", "{path}");
    }
    server.stop().await;
}

#[tokio::test]
async fn without_an_app_dir_only_the_api_is_served() {
    let server = Server::start(None).await;
    assert_eq!(server.get("/", &[]).await.0, StatusCode::NOT_FOUND);
    assert_eq!(server.get("/healthz", &[]).await.0, StatusCode::OK);
    server.stop().await;
}

#[tokio::test]
async fn healthz_answers_ok_when_the_store_answers() {
    let server = Server::start(None).await;
    let (status, _, body) = server.get("/healthz", &[]).await;
    assert_eq!((status, &body[..]), (StatusCode::OK, &b"ok"[..]));
    server.stop().await;
}

#[tokio::test]
async fn metrics_are_well_formed_prometheus_text() {
    let server = Server::start(None).await;
    server.get("/healthz", &[]).await;
    let (status, headers, body) = server.get("/metrics", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(header(&headers, "content-type").starts_with("text/plain; version=0.0.4"));
    let text = std::str::from_utf8(&body).expect("utf-8");
    let samples = parse_exposition(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let value = |s: &str| samples.iter().find(|(n, _)| n == s).map(|(_, v)| *v);
    assert_eq!(value("chibo_documents_stored"), Some(0.0));
    assert_eq!(value("chibo_connections_open"), Some(0.0));
    assert!(value("chibo_store_load_seconds_count").is_some());
    server.stop().await;
}

#[tokio::test]
async fn sync_refuses_text_frames_with_unsupported_data() {
    let server = Server::start(None).await;
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://{}/sync", server.addr)).await.expect("connect");
    ws.send(tungstenite::Message::text("{\"type\":\"join\"}")).await.expect("send");
    let frame = tokio::time::timeout(Duration::from_secs(5), ws.next()).await.expect("reply in time");
    match frame {
        Some(Ok(tungstenite::Message::Close(Some(close)))) => {
            assert_eq!(u16::from(close.code), close_code::UNSUPPORTED);
        }
        other => panic!("expected a close frame, got {other:?}"),
    }
    assert_eq!(server.metrics.frames_refused(RefusedReason::Text), 1);
    server.stop().await;
}

#[tokio::test]
async fn sync_counts_open_connections() {
    let server = Server::start(None).await;
    let (ws, _) =
        tokio_tungstenite::connect_async(format!("ws://{}/sync", server.addr)).await.expect("connect");
    // The upgrade completes before the session task starts; wait for it to register.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while server.metrics.connections_open() != 1 {
        assert!(tokio::time::Instant::now() < deadline, "connection never counted");
        tokio::task::yield_now().await;
    }
    drop(ws);
    while server.metrics.connections_open() != 0 {
        assert!(tokio::time::Instant::now() < deadline, "connection never uncounted");
        tokio::task::yield_now().await;
    }
    server.stop().await;
}

#[tokio::test]
async fn sync_is_not_a_page() {
    let server = Server::start(None).await;
    // A plain GET without the upgrade headers is refused, not served the app.
    let (status, _, _) = server.get("/sync", &[]).await;
    assert!(status.is_client_error(), "{status}");
    server.stop().await;
}

#[tokio::test]
async fn run_opens_the_store_in_the_data_dir_and_stops_on_shutdown() {
    let data = tempfile::tempdir().expect("tempdir");
    let config = ServeConfig::new(data.path().join("nested"));
    let sqlite_path = config.data.sqlite_path();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(run(listener, config, async move {
        let _ = stopped.await;
    }));
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.expect("handshake");
    tokio::spawn(conn);
    let req =
        hyper::Request::get("/healthz").header("host", "localhost").body(Empty::<Bytes>::new()).expect("req");
    assert_eq!(sender.send_request(req).await.expect("send").status(), StatusCode::OK);
    assert!(sqlite_path.is_file(), "database created in the data dir");
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(10), task).await.expect("stops").expect("join").expect("run");
}
