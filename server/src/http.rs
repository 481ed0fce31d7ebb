//! The relay's HTTP surface: `/sync` (WebSocket), `/healthz`, `/metrics`, and the web app.
//!
//! [`run`] is the whole server as a library call: tests bind `127.0.0.1:0` and call it. [`router`]
//! builds the routes from an [`AppState`]; handlers read only validated config.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Extension, Router};
use tower_http::trace::TraceLayer;

use crate::config::ServeConfig;
use crate::error::AppError;
use crate::metrics::{self, InstrumentedStore, Metrics, RefusedReason};
use crate::store::Store;
use crate::store::sqlite::SqliteStore;

mod app;

/// How long `/healthz` and `/metrics` wait for the store.
const STORE_PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// RELAY PLUG-IN (1 of 3): stands in for `crate::relay::Relay` until `server/src/relay.rs`
/// lands. Then delete this type, make [`AppState::relay`] an `Option<Arc<crate::relay::Relay>>`
/// (or a plain `Arc`), and build it in [`run`].
#[derive(Debug)]
pub enum RelayPending {}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub metrics: Arc<Metrics>,
    pub config: Arc<ServeConfig>,
    /// The sync relay (see [`RelayPending`]); `None` until it is wired in.
    pub relay: Option<Arc<RelayPending>>,
}

impl AppState {
    pub fn new(store: Arc<dyn Store>, metrics: Arc<Metrics>, config: ServeConfig) -> Self {
        Self { store, metrics, config: Arc::new(config), relay: None }
    }
}

/// Opens the store in `config.data` and serves until `shutdown` resolves, then finishes open
/// HTTP requests and returns.
pub async fn run(
    listener: tokio::net::TcpListener,
    config: ServeConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let data = config.data.clone();
    std::fs::create_dir_all(data.path())
        .with_context(|| format!("creating the data directory {}", data.path().display()))?;
    let path = data.sqlite_path();
    let sqlite = tokio::task::spawn_blocking(move || SqliteStore::open(path))
        .await?
        .with_context(|| format!("opening {}", data.sqlite_path().display()))?;
    let metrics = Metrics::new();
    let store: Arc<dyn Store> = Arc::new(InstrumentedStore::new(sqlite, metrics.clone()));
    // RELAY PLUG-IN (2 of 3): `state.relay = Some(Arc::new(Relay::new(store.clone(),
    // metrics.clone(), RelayOptions { .. })))` goes here.
    let state = AppState::new(store, metrics, config);
    serve(listener, state, shutdown).await
}

/// Serves `state` on `listener` until `shutdown` resolves. For tests that bring their own store.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let addr = listener.local_addr().context("reading the listener's address")?;
    let app_dir = state.config.app_dir.clone();
    tracing::info!(%addr, app_dir = ?app_dir, "chibo relay listening");
    axum::serve(listener, router(state).into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await
        .context("serving HTTP")?;
    tracing::info!("chibo relay stopped");
    Ok(())
}

/// Every route. API paths (`/sync`, `/healthz`, `/metrics`, `/api/…`) never fall back to the app.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_text))
        .route("/sync", get(sync))
        .route("/api", any(not_found))
        .route("/api/{*rest}", any(not_found));
    let routes = match &state.config.app_dir {
        Some(dir) => api.fallback_service(app::service(dir)),
        None => api.fallback(not_found),
    };
    routes
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            let matched_path = req.extensions().get::<MatchedPath>().map(MatchedPath::as_str);
            tracing::info_span!("http", method = %req.method(), matched_path, uri = %req.uri())
        }))
        .with_state(state)
}

async fn not_found() -> AppError {
    AppError::NotFound
}

async fn healthz(State(state): State<AppState>) -> Result<&'static str, AppError> {
    tokio::time::timeout(STORE_PROBE_TIMEOUT, state.store.document_count())
        .await
        .map_err(|_| AppError::StoreTimeout(STORE_PROBE_TIMEOUT))??;
    Ok("ok")
}

async fn metrics_text(State(state): State<AppState>) -> Response {
    // The metrics still render when the store is down; only the stored count is left out.
    let stored = match tokio::time::timeout(STORE_PROBE_TIMEOUT, state.store.document_count()).await {
        Ok(Ok(n)) => Some(n),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "metrics: cannot count stored documents");
            None
        }
        Err(_) => None,
    };
    ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], state.metrics.render(stored)).into_response()
}

async fn sync(
    State(state): State<AppState>,
    // Absent when the router is served without connect info (e.g. in a test harness).
    connect_info: Option<Extension<ConnectInfo<SocketAddr>>>,
    ws: WebSocketUpgrade,
) -> Response {
    let peer = connect_info.map(|Extension(ConnectInfo(addr))| addr);
    let max = state.config.max_message_bytes;
    ws.max_message_size(max)
        .max_frame_size(max)
        .on_failed_upgrade(move |e| tracing::warn!(?peer, error = %e, "WebSocket upgrade failed"))
        .on_upgrade(move |socket| sync_session(state, socket, peer))
}

/// RELAY PLUG-IN (3 of 3): STUB, to be replaced by
/// `relay.handle_socket(socket, principal).await` (the principal comes from authentication, which
/// does not exist yet). Whatever replaces it keeps the contract tested in `tests::sync_*`: binary
/// frames only; a text frame closes the connection with 1003 and counts as refused.
///
/// Until then it says so: the first binary message is answered with a close (1013, try later).
#[tracing::instrument(name = "sync", skip_all, fields(?peer))]
async fn sync_session(state: AppState, mut socket: WebSocket, peer: Option<SocketAddr>) {
    let _open = state.metrics.connection_opened();
    let close = |code, reason: &'static str| Message::Close(Some(CloseFrame { code, reason: reason.into() }));
    while let Some(frame) = socket.recv().await {
        let reply = match frame {
            Ok(Message::Binary(bytes)) => {
                state.metrics.message_in(bytes.len());
                close(close_code::AGAIN, "sync relay not available yet")
            }
            Ok(Message::Text(_)) => {
                state.metrics.frame_refused(RefusedReason::Text);
                close(close_code::UNSUPPORTED, "binary frames only")
            }
            Ok(Message::Ping(_) | Message::Pong(_)) => continue,
            Ok(Message::Close(_)) => break,
            Err(e) => {
                tracing::debug!(error = %e, "sync socket failed");
                break;
            }
        };
        if let Err(e) = socket.send(reply).await {
            tracing::debug!(error = %e, "closing sync socket failed");
        }
        break;
    }
}

#[cfg(test)]
mod tests;
