//! The only module that calls the relay's JSON API (`/api/v1`, see `server/src/api.rs`) with
//! `fetch`. Requests go to the host that served the page; bodies are JSON both ways.

use serde_json::Value;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

/// Why an API call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// The request did not reach the relay (no network, relay down).
    #[error("the relay cannot be reached")]
    Offline,
    /// The relay answered with an error status and a message meant for people.
    #[error("{message}")]
    Refused { status: u16, message: String },
    /// The answer was not what the API promises.
    #[error("unexpected answer from the relay: {0}")]
    Malformed(String),
}

impl ApiError {
    /// The relay refused the credential (the session ended or the device was revoked).
    pub fn is_unauthenticated(&self) -> bool {
        matches!(self, ApiError::Refused { status: 401, .. })
    }
}

async fn call(
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: Option<&Value>,
) -> Result<Value, ApiError> {
    let window = web_sys::window().ok_or(ApiError::Offline)?;
    let init = web_sys::RequestInit::new();
    init.set_method(method);
    let headers = web_sys::Headers::new().map_err(|_| ApiError::Offline)?;
    if let Some(token) = bearer {
        let _ = headers.set("Authorization", &format!("Bearer {token}"));
    }
    if let Some(body) = body {
        let _ = headers.set("Content-Type", "application/json");
        init.set_body(&JsValue::from_str(&body.to_string()));
    }
    init.set_headers(&headers);
    let response =
        JsFuture::from(window.fetch_with_str_and_init(path, &init)).await.map_err(|_| ApiError::Offline)?;
    let response: web_sys::Response = response.dyn_into().map_err(|_| ApiError::Offline)?;
    let text = match response.text() {
        Ok(p) => JsFuture::from(p).await.ok().and_then(|t| t.as_string()).unwrap_or_default(),
        Err(_) => String::new(),
    };
    let status = response.status();
    if !(200..300).contains(&status) {
        // A service worker or proxy answering for a relay that is down.
        if status == 502 || status == 503 || status == 504 {
            return Err(ApiError::Offline);
        }
        return Err(ApiError::Refused { status, message: text });
    }
    if text.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(&text).map_err(|e| ApiError::Malformed(e.to_string()))
}

pub async fn post(path: &str, bearer: Option<&str>, body: &Value) -> Result<Value, ApiError> {
    call("POST", path, bearer, Some(body)).await
}

pub async fn get(path: &str, bearer: Option<&str>) -> Result<Value, ApiError> {
    call("GET", path, bearer, None).await
}

/// A string field of an answer.
pub fn field(v: &Value, name: &str) -> Result<String, ApiError> {
    v.get(name)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| ApiError::Malformed(format!("no {name}")))
}
