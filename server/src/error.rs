//! The one error type HTTP handlers return.
//!
//! [`AppError`] turns into a response that says what the client can act on and nothing more:
//! server-side failures are logged once, here, with their cause, and answered with a generic body.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::roster::RosterError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Nothing at this path (API paths never fall back to the app).
    #[error("not found")]
    NotFound,

    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),

    /// A roster operation was refused (bad code, not signed in, not allowed …).
    #[error(transparent)]
    Roster(RosterError),

    /// The request body or a path segment is not what the API expects.
    #[error("{0}")]
    BadRequest(String),

    /// The store did not answer in time.
    #[error("store did not answer within {0:?}")]
    StoreTimeout(std::time::Duration),
}

impl AppError {
    fn status(&self) -> StatusCode {
        match self {
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::Store(StoreError::Busy | StoreError::Unavailable { .. })
            | AppError::StoreTimeout(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Store(StoreError::Full) => StatusCode::INSUFFICIENT_STORAGE,
            AppError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Roster(e) => match e {
                RosterError::InvalidCode | RosterError::Forbidden => StatusCode::FORBIDDEN,
                RosterError::InviteUsed | RosterError::InviteExpired => StatusCode::GONE,
                RosterError::InviteLocked => StatusCode::LOCKED,
                RosterError::RateLimited => StatusCode::TOO_MANY_REQUESTS,
                RosterError::BadRequest(_) => StatusCode::BAD_REQUEST,
                RosterError::DuplicateDevice => StatusCode::CONFLICT,
                RosterError::Unauthenticated => StatusCode::UNAUTHORIZED,
                RosterError::NotFound(_) => StatusCode::NOT_FOUND,
                RosterError::Store(StoreError::Busy) => StatusCode::SERVICE_UNAVAILABLE,
                RosterError::Store(StoreError::Full) => StatusCode::INSUFFICIENT_STORAGE,
                RosterError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
            },
        }
    }
}

impl From<RosterError> for AppError {
    fn from(e: RosterError) -> Self {
        match e {
            RosterError::Store(s) => AppError::Store(s),
            other => AppError::Roster(other),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            // The one place a 5xx is logged; the body hides the cause.
            tracing::error!(error = %self, status = status.as_u16(), "request failed");
            let body = status.canonical_reason().unwrap_or("server error");
            return (status, body).into_response();
        }
        (status, self.to_string()).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn server_errors_hide_their_cause() {
        let err = AppError::Store(StoreError::Corrupt { detail: "secret path /var/lib/x".into() });
        let response = err.into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(response.into_body(), 1024).await.expect("body");
        assert_eq!(&body[..], b"Internal Server Error");

        assert_eq!(
            AppError::Store(StoreError::Full).into_response().status(),
            StatusCode::INSUFFICIENT_STORAGE
        );
        assert_eq!(
            AppError::Store(StoreError::Busy).into_response().status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(AppError::NotFound.into_response().status(), StatusCode::NOT_FOUND);
    }
}
