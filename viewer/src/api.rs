//! The routes: the two pages, their assets, and the JSON API the timeline asks.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::contract::{DumpList, ErrorAnswer};
use crate::model::{Filter, Model, TaskOrder, TaskRange};
use crate::{assets, security, AppState, LibraryError};

/// The whole HTTP surface.
pub fn app(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(index_page))
        .route("/dump/{id}", get(timeline_page))
        .route("/assets/{name}", get(asset))
        .route("/api/dumps", get(list_dumps))
        .route("/api/dumps/{id}/meta", get(meta))
        .route("/api/dumps/{id}/window", get(window))
        .route("/api/dumps/{id}/tasks", get(tasks))
        .route("/api/dumps/{id}/locks/{lock}", get(lock))
        .route("/api/dumps/{id}/records/{record}", get(record))
        .route("/api/dumps/{id}/spans/{span}", get(span))
        .route("/api/dumps/{id}/object", get(object))
        .route("/api/dumps/{id}/search", get(search))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            security::guard,
        ))
        .with_state(state)
}

/// An API error: a status and one line of explanation, as JSON.
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(ErrorAnswer { error: self.1 })).into_response()
    }
}

type ApiResult = Result<Response, ApiError>;

/// The library's errors as statuses: the one place they are mapped.
impl From<LibraryError> for ApiError {
    fn from(e: LibraryError) -> ApiError {
        let status = match &e {
            LibraryError::BadId(_) => StatusCode::BAD_REQUEST,
            LibraryError::NotFound(_) => StatusCode::NOT_FOUND,
            LibraryError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            LibraryError::Unreadable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            LibraryError::FetchFailed(_) => StatusCode::BAD_GATEWAY,
            LibraryError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            LibraryError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError(status, e.to_string())
    }
}

/// A number from the URL (a record, span or lock id).
fn number<T: std::str::FromStr>(text: &str, what: &str) -> Result<T, ApiError> {
    text.parse()
        .map_err(|_| ApiError(StatusCode::BAD_REQUEST, format!("a {what} id is a number")))
}

/// An answer about one thing of a model, or 404 naming it.
fn found<T: Serialize>(v: Option<T>, what: &str, id: impl std::fmt::Display) -> ApiResult {
    let v = v.ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("no {what} {id}")))?;
    Ok(Json(v).into_response())
}

/// The model of dump id `id` (see `Library::model`).
async fn model(state: &AppState, id: &str) -> Result<Arc<Model>, ApiError> {
    Ok(state.library.model(id).await?)
}

/// The model of `id`, or its skeleton while several recordings are read.
async fn model_or_skeleton(state: &AppState, id: &str) -> Result<Arc<Model>, ApiError> {
    Ok(state.library.model_or_skeleton(id).await?)
}

/// Answers with what `f` computes, run off the async threads (a query over a million records
/// takes milliseconds).
async fn json_off_thread<T: Serialize + Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> ApiResult {
    let v = tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(Json(v).into_response())
}

async fn not_found() -> ApiError {
    ApiError(StatusCode::NOT_FOUND, "no such page".into())
}

fn html(body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}

async fn index_page() -> Response {
    html(assets::INDEX_HTML)
}

async fn timeline_page(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> ApiResult {
    state.library.parse_id(&id)?;
    Ok(html(assets::TIMELINE_HTML))
}

async fn asset(Path(name): Path<String>) -> ApiResult {
    let (body, mime) = assets::get(&name)
        .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, "no such asset".into()))?;
    Ok(([(header::CONTENT_TYPE, mime)], body).into_response())
}

async fn list_dumps(State(state): State<Arc<AppState>>) -> ApiResult {
    let library = state.library.clone();
    let dumps = tokio::task::spawn_blocking(move || library.list())
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(Json(DumpList { dumps }).into_response())
}

async fn meta(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> ApiResult {
    let m = model_or_skeleton(&state, &id).await?;
    let mut v = m.meta();
    if v.loading {
        v.progress =
            state
                .library
                .progress(&id)
                .map(|(read, expected)| crate::contract::ReadProgressOut {
                    records_read: read,
                    records_expected: expected,
                });
    }
    if let Some(f) = state.library.file(id.parse().unwrap_or(usize::MAX)) {
        v.file = f.path.file_name().map(|n| n.to_string_lossy().into_owned());
        // As the file is now, when it is here (it may have been cut since it was found).
        let now = (f.remote.is_none())
            .then(|| std::fs::metadata(&f.path).ok())
            .flatten()
            .map(|m| m.len());
        v.size = Some(now.unwrap_or(f.size));
    }
    Ok(Json(v).into_response())
}

#[derive(Deserialize)]
struct WindowQuery {
    start: i64,
    end: i64,
    width: u32,
    /// "threads" (the default) or "tasks".
    #[serde(default)]
    view: View,
    /// The task view: the lanes' order, and which of them (on screen) to answer for.
    #[serde(default)]
    order: TaskOrder,
    #[serde(default)]
    first: usize,
    #[serde(default)]
    count: usize,
    #[serde(flatten)]
    filter: Filter,
}

#[derive(Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum View {
    #[default]
    Threads,
    Tasks,
}

#[derive(Deserialize)]
struct TasksQuery {
    #[serde(default)]
    order: TaskOrder,
}

/// Longest filter or search text accepted.
const MAX_TEXT: usize = 1024;

fn check_filter(f: &Filter) -> Result<(), ApiError> {
    for s in [&f.level, &f.target, &f.text].into_iter().flatten() {
        if s.len() > MAX_TEXT {
            return Err(ApiError(StatusCode::BAD_REQUEST, "filter too long".into()));
        }
    }
    if let Some(l) = f.level.as_deref().filter(|l| !l.is_empty()) {
        if crate::model::parse_level(l).is_none() {
            return Err(ApiError(
                StatusCode::BAD_REQUEST,
                "unknown level (trace, debug, info, warn or error)".into(),
            ));
        }
    }
    Ok(())
}

async fn window(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    q: Result<Query<WindowQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    let Query(q) = q.map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.body_text()))?;
    check_filter(&q.filter)?;
    if q.end < q.start {
        return Err(ApiError(StatusCode::BAD_REQUEST, "end before start".into()));
    }
    let m = model_or_skeleton(&state, &id).await?;
    json_off_thread(move || match q.view {
        View::Threads => m.window(q.start, q.end, q.width, &q.filter),
        View::Tasks => {
            let lanes = TaskRange {
                order: q.order,
                first: q.first,
                count: q.count,
            };
            m.task_window(q.start, q.end, q.width, &q.filter, lanes)
        }
    })
    .await
}

async fn lock(
    State(state): State<Arc<AppState>>,
    Path((id, lock)): Path<(String, String)>,
) -> ApiResult {
    let n: u32 = number(&lock, "lock")?;
    found(model(&state, &id).await?.lock(n), "lock", n)
}

async fn tasks(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    q: Result<Query<TasksQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    let Query(q) = q.map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.body_text()))?;
    let m = model(&state, &id).await?;
    json_off_thread(move || m.task_list(q.order)).await
}

async fn record(
    State(state): State<Arc<AppState>>,
    Path((id, record)): Path<(String, String)>,
) -> ApiResult {
    let n: usize = number(&record, "record")?;
    found(model(&state, &id).await?.record(n), "record", n)
}

async fn span(
    State(state): State<Arc<AppState>>,
    Path((id, span)): Path<(String, String)>,
) -> ApiResult {
    let s: u64 = number(&span, "span")?;
    found(model(&state, &id).await?.span(s), "span", s)
}

#[derive(Deserialize)]
struct ObjectQuery {
    field: String,
    value: String,
}

async fn object(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    q: Result<Query<ObjectQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    let Query(q) = q.map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.body_text()))?;
    if q.field.len() > MAX_TEXT || q.value.len() > 64 * 1024 {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "field or value too long".into(),
        ));
    }
    let m = model(&state, &id).await?;
    json_off_thread(move || m.object(&q.field, &q.value, 5000)).await
}

async fn search(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    q: Result<Query<Filter>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    let Query(f) = q.map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.body_text()))?;
    check_filter(&f)?;
    let m = model(&state, &id).await?;
    json_off_thread(move || m.search(&f, 10_000)).await
}
