//! The relay's HTTP surface: `/sync` (WebSocket), `/healthz`, `/metrics`, and the web app.
//!
//! [`run`] is the whole server as a library call: tests bind `127.0.0.1:0` and call it. [`router`]
//! builds the routes from an [`AppState`]; handlers read only validated config.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::extract::ws::{WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, MatchedPath, Query, Request, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Extension, Router};
use tower_http::trace::TraceLayer;

use crate::config::ServeConfig;
use crate::error::AppError;
use crate::metrics::{self, InstrumentedStore, Metrics};
use crate::relay::{DocIndex, Principal, Relay, RelayAccess, RelayOptions};
use crate::roster::{Roster, RosterError, unix_now};
use crate::store::postgres::PostgresStore;
use crate::store::roster::RosterStore;
use crate::store::sqlite::SqliteStore;
use crate::store::{Store, StoreError};

mod app;

/// How long `/healthz` and `/metrics` wait for the store.
const STORE_PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub metrics: Arc<Metrics>,
    pub config: Arc<ServeConfig>,
    pub relay: Arc<Relay>,
    pub roster: Roster,
    pub index: Arc<DocIndex>,
}

/// Where the roster is, for [`AppState::new`].
#[derive(Debug, Clone)]
pub enum RosterHome {
    /// In this relay's own database (SQLite): the in-memory document index is the whole truth.
    Own(Arc<dyn RosterStore>),
    /// In a database other relays share (PostgreSQL): documents named through another relay are
    /// looked up on a miss ([`DocIndex::learn`]).
    Shared(Arc<dyn RosterStore>),
}

impl AppState {
    /// Loads the document index from the roster and starts the relay on `store` (the same
    /// database, possibly wrapped for metrics).
    pub async fn new(
        roster: RosterHome,
        store: Arc<dyn Store>,
        metrics: Arc<Metrics>,
        config: ServeConfig,
    ) -> Result<Self, StoreError> {
        let db = match &roster {
            RosterHome::Own(db) | RosterHome::Shared(db) => db.clone(),
        };
        let index = Arc::new(DocIndex::load(db.as_ref()).await?);
        let access = match roster {
            RosterHome::Own(_) => RelayAccess::new(index.clone()),
            RosterHome::Shared(db) => RelayAccess::with_roster(index.clone(), db),
        };
        let options = RelayOptions::new(config.max_message_bytes);
        let relay = Relay::start(store.clone(), metrics.clone(), options, access);
        if config.open_access {
            tracing::warn!("--open-access: anyone who reaches /sync reads and writes every document");
        }
        let roster = Roster::new(db, config.limits.clone());
        Ok(Self { store, metrics, config: Arc::new(config), relay, roster, index })
    }

    pub fn roster(&self) -> &Roster {
        &self.roster
    }
}

/// Opens the store (the SQLite file in `config.data`, or the PostgreSQL database of
/// `config.database`) and serves until `shutdown` resolves, then finishes open HTTP requests and
/// returns.
pub async fn run(
    listener: tokio::net::TcpListener,
    config: ServeConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    if let Some(url) = config.database.clone() {
        let pg = PostgresStore::connect(url.expose()).await.context("opening the PostgreSQL store")?;
        // Listening starts before the relay does, so no write (or roster change) of another relay
        // goes unheard.
        let events = pg.listen();
        let metrics = Metrics::new();
        let roster = RosterHome::Shared(pg.shared_roster());
        let store: Arc<dyn Store> = Arc::new(InstrumentedStore::new(pg, metrics.clone()));
        let state = AppState::new(roster, store, metrics, config).await?;
        state.relay.follow(events);
        return serve(listener, state, shutdown).await;
    }
    let data = config.data.clone();
    std::fs::create_dir_all(data.path())
        .with_context(|| format!("creating the data directory {}", data.path().display()))?;
    let path = data.sqlite_path();
    let sqlite = tokio::task::spawn_blocking(move || SqliteStore::open(path))
        .await?
        .with_context(|| format!("opening {}", data.sqlite_path().display()))?;
    let metrics = Metrics::new();
    let roster = RosterHome::Own(sqlite.shared_roster());
    let store: Arc<dyn Store> = Arc::new(InstrumentedStore::new(sqlite, metrics.clone()));
    let state = AppState::new(roster, store, metrics, config).await?;
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
    let relay = state.relay.clone();
    axum::serve(listener, router(state).into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await
        .context("serving HTTP")?;
    // Upgraded WebSockets outlive axum's graceful shutdown: the relay closes them and finishes
    // the writes it has started.
    relay.shutdown().await;
    tracing::info!("chibo relay stopped");
    Ok(())
}

/// Every route. API paths (`/sync`, `/healthz`, `/metrics`, `/api/…`) never fall back to the app.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_text))
        .route("/sync", get(sync))
        .merge(crate::api::routes())
        .route("/api", any(not_found))
        .route("/api/{*rest}", any(not_found));
    let routes = match &state.config.app_dir {
        Some(dir) => api.fallback_service(app::service(dir)),
        None => api.fallback(not_found),
    };
    routes
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            let matched_path = req.extensions().get::<MatchedPath>().map(MatchedPath::as_str);
            // The path only: a query may hold a session token (`/sync?token=`).
            tracing::info_span!("http", method = %req.method(), matched_path, path = %req.uri().path())
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

#[derive(Debug, serde::Deserialize)]
struct SyncQuery {
    token: Option<String>,
}

/// `/sync?token=<session token>`: the WebSocket of the automerge-repo protocol, for the device
/// the token was issued to. (A query parameter because browsers cannot set headers on a
/// WebSocket; the token is never logged.) Without a valid token: 401 before the upgrade, unless
/// the relay runs with `--open-access`.
async fn sync(
    State(state): State<AppState>,
    // Absent when the router is served without connect info (e.g. in a test harness).
    connect_info: Option<Extension<ConnectInfo<SocketAddr>>>,
    Query(query): Query<SyncQuery>,
    ws: WebSocketUpgrade,
) -> Response {
    let peer = connect_info.map(|Extension(ConnectInfo(addr))| addr);
    let principal = match query.token {
        Some(token) => match state.roster().authenticate(&token, unix_now()).await {
            Ok(device) => Principal::Device(Arc::new(device)),
            Err(e) => {
                tracing::warn!(?peer, error = %e, "sync: refused credential");
                return AppError::from(e).into_response();
            }
        },
        None if state.config.open_access => Principal::Dev,
        None => return AppError::from(RosterError::Unauthenticated).into_response(),
    };
    let max = state.config.max_message_bytes;
    ws.max_message_size(max)
        .max_frame_size(max)
        .read_buffer_size(crate::relay::WS_READ_BUFFER_BYTES)
        .on_failed_upgrade(move |e| tracing::warn!(?peer, error = %e, "WebSocket upgrade failed"))
        .on_upgrade(move |socket| sync_session(state, socket, peer, principal))
}

/// One `/sync` connection of an authenticated principal.
#[tracing::instrument(name = "sync_session", skip_all, fields(?peer))]
async fn sync_session(state: AppState, socket: WebSocket, peer: Option<SocketAddr>, principal: Principal) {
    state.relay.handle_socket(socket, principal).await;
}

#[cfg(test)]
mod tests;
