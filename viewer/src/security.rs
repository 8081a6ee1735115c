//! What every request passes through: a Host check against DNS rebinding, a bound on the
//! request's size, and headers that keep the page's strings from ever running as code.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::AppState;

/// Scripts, styles and data only from this server; nothing inline, nothing framed.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

pub async fn guard(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let mut resp = match check(&state, &req) {
        Some(refusal) => refusal,
        None => next.run(req).await,
    };
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// A refusal, or `None` when the request may proceed.
fn check(state: &AppState, req: &Request) -> Option<Response> {
    if req.uri().to_string().len() > state.library.limits.max_uri_len {
        return Some(refuse(StatusCode::URI_TOO_LONG, "request URI too long"));
    }
    // A page from another origin that rebinds its name to 127.0.0.1 still sends its own
    // name as Host: only our own names get an answer.
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok());
    match host {
        Some(h)
            if state
                .allowed_hosts
                .iter()
                .any(|a| a.eq_ignore_ascii_case(h)) =>
        {
            None
        }
        _ => Some(refuse(
            StatusCode::FORBIDDEN,
            "refused: the Host header does not name this server",
        )),
    }
}

fn refuse(status: StatusCode, why: &'static str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        Body::from(why),
    )
        .into_response()
}
