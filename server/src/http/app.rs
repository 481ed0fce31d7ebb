//! Serving the built web app: precompressed files, the SPA fallback, and cache headers.
//!
//! Hashed assets (`name-<hex>.ext`, as `cargo xtask build-app` names them) never change, so they
//! are cached for a year; everything else (`index.html`, `sw.js`, the manifest, icons, and the
//! SPA fallback) is revalidated on every use, so a deploy reaches users on their next load.

use std::convert::Infallible;
use std::path::Path;

use axum::extract::{Request, State};
use axum::handler::Handler as _;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tower::ServiceExt as _;
use tower::util::BoxCloneSyncService;
use tower_http::services::{ServeDir, ServeFile};

use crate::error::AppError;

const NO_CACHE: HeaderValue = HeaderValue::from_static("no-cache");
const IMMUTABLE: HeaderValue = HeaderValue::from_static("public, max-age=31536000, immutable");

/// Path prefixes that belong to the API: a miss there is a 404, never the app.
const API_PREFIXES: [&str; 4] = ["/api", "/sync", "/healthz", "/metrics"];

/// The service for every path no API route matched.
pub(super) fn service(dir: &Path) -> BoxCloneSyncService<Request, Response, Infallible> {
    let index = ServeFile::new(dir.join("index.html")).precompressed_br().precompressed_gzip();
    let files =
        ServeDir::new(dir).precompressed_br().precompressed_gzip().fallback(spa_fallback.with_state(index));
    let service = tower::ServiceBuilder::new().layer(middleware::from_fn(cache_headers)).service(files);
    BoxCloneSyncService::new(service)
}

/// An unknown path that looks like a page of the app gets `index.html` (the app routes it);
/// one that looks like a file or an API call gets a 404, so a missing asset is not answered with
/// HTML that a browser (or the service worker's cache) would take for the asset.
async fn spa_fallback(State(index): State<ServeFile>, req: Request) -> Response {
    let path = req.uri().path();
    if is_api_path(path) || looks_like_file(path) || !matches!(*req.method(), Method::GET | Method::HEAD) {
        return AppError::NotFound.into_response();
    }
    match index.oneshot(req).await {
        Ok(response) => response.into_response(),
        Err(never) => match never {},
    }
}

async fn cache_headers(req: Request, next: Next) -> Response {
    let hashed = is_hashed_asset(req.uri().path());
    let mut response = next.run(req).await;
    let status = response.status();
    if status.is_success() || status == StatusCode::NOT_MODIFIED {
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, if hashed { IMMUTABLE } else { NO_CACHE });
        // The same URL may be answered br, gzip or identity: caches must key on the encoding.
        headers.append(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    response
}

fn is_api_path(path: &str) -> bool {
    API_PREFIXES
        .iter()
        .any(|p| path.strip_prefix(p).is_some_and(|rest| rest.is_empty() || rest.starts_with('/')))
}

fn last_segment(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

fn looks_like_file(path: &str) -> bool {
    last_segment(path).contains('.')
}

/// `chibo-app-0123456789abcdef.js`, `chibo_app_bg-0123456789abcdef.wasm`: a stem ending in `-`
/// and at least 8 hex digits. Mutable names (`index.html`, `sw.js`, `icon-192.png`) do not match.
fn is_hashed_asset(path: &str) -> bool {
    let name = last_segment(path);
    let stem = name.split_once('.').map_or(name, |(stem, _)| stem);
    stem.rsplit_once('-')
        .is_some_and(|(_, hash)| hash.len() >= 8 && hash.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashed_assets_are_recognised() {
        for hashed in
            ["/chibo-app-0123456789abcdef.js", "/chibo_app_bg-0123456789abcdef.wasm", "/x/a-deadbeef.css"]
        {
            assert!(is_hashed_asset(hashed), "{hashed}");
        }
        for mutable in
            ["/", "/index.html", "/sw.js", "/manifest.webmanifest", "/icon-192.png", "/branch/abc-12"]
        {
            assert!(!is_hashed_asset(mutable), "{mutable}");
        }
    }

    #[test]
    fn api_paths_and_files_do_not_fall_back() {
        assert!(is_api_path("/api") && is_api_path("/api/x") && is_api_path("/sync/x"));
        assert!(!is_api_path("/apiary") && !is_api_path("/branch/1"));
        assert!(looks_like_file("/missing-0123abcd.js") && !looks_like_file("/branch/3xZ/plan"));
    }
}
