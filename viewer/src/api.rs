//! The routes: the two pages, their assets, and the JSON API the timeline asks.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::contract::{DumpList, DumpSummary, ErrorAnswer};
use crate::model::{Filter, Model, TaskOrder, TaskRange};
use crate::{assets, security, AppState};

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
    file_ids(&state, &id)?;
    Ok(html(assets::TIMELINE_HTML))
}

async fn asset(Path(name): Path<String>) -> ApiResult {
    let (body, mime) = assets::get(&name)
        .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, "no such asset".into()))?;
    Ok(([(header::CONTENT_TYPE, mime)], body).into_response())
}

/// A dump id from the URL: a number naming a file found at start or since.
fn file_id(state: &AppState, id: &str) -> Result<usize, ApiError> {
    let id: usize = id
        .parse()
        .map_err(|_| ApiError(StatusCode::BAD_REQUEST, "a dump id is a number".into()))?;
    state
        .file(id)
        .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("no dump {id}")))?;
    Ok(id)
}

async fn list_dumps(State(state): State<Arc<AppState>>) -> ApiResult {
    let st = state.clone();
    let dumps = tokio::task::spawn_blocking(move || {
        st.rescan();
        let mut rows: Vec<(std::time::SystemTime, DumpSummary)> = st
            .files()
            .into_iter()
            .enumerate()
            .map(|(id, f)| (f.modified, summary(&st, id, &f)))
            .collect();
        rows.sort_by_key(|r| std::cmp::Reverse(r.0));
        rows.into_iter().map(|r| r.1).collect::<Vec<_>>()
    })
    .await
    .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(Json(DumpList { dumps }).into_response())
}

/// A line of the index: what the file's header says, or why it cannot be read.
fn summary(state: &AppState, id: usize, f: &crate::DumpFile) -> DumpSummary {
    // A local file's size and time as they are now (it may have been cut or rewritten since
    // it was found); a remote one's as listed.
    let mut f = f.clone();
    if f.remote.is_none() {
        if let Ok(m) = std::fs::metadata(&f.path) {
            f.size = m.len();
            f.modified = m.modified().unwrap_or(f.modified);
        }
    }
    let f = &f;
    let mut row = DumpSummary {
        id,
        file: f
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        size: f.size,
        modified: f
            .modified
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        ..DumpSummary::default()
    };
    if f.size > state.limits.max_file_bytes {
        row.error = Some("too large to open".into());
        return row;
    }
    // A dump in object storage: its metadata says it all, nothing is downloaded to list it.
    if let Some(r) = &f.remote {
        row.file = r.key.clone();
        row.service = Some(r.service.clone());
        row.host = Some(r.host.clone());
        row.pid = Some(r.pid);
        row.trigger = Some(flightrec_format::TriggerReason::from_slug(&r.trigger).slug());
        row.trigger_description = Some(format!("{} (in object storage)", r.trigger));
        row.kind = Some("dump");
        row.time = Some(r.time_ns.to_string());
        return row;
    }
    match flightrec_format::read_head(&f.path).and_then(|img| {
        // When its data ends: a dump when it was taken, a ring when its process ended (a
        // clean exit or a stop), else when the trigger struck, else when it started.
        let dumped =
            flightrec_format::layout::get_u64(&img, flightrec_format::layout::header::DUMP_WALL_NS)
                .unwrap_or(0)
                .min(i64::MAX as u64) as i64;
        flightrec_format::scan(&img).map(|s| {
            let r = s.recording;
            let ended = match r.ending {
                flightrec_format::Ending::Closed { wall_ns }
                | flightrec_format::Ending::Stopped { wall_ns, .. } => wall_ns,
                flightrec_format::Ending::Unrecorded => 0,
            };
            let end = [dumped, ended, r.trigger.wall_ns]
                .into_iter()
                .find(|&t| t > 0)
                .unwrap_or(r.start_wall_ns);
            (r.process, r.trigger, end, r.is_dump)
        })
    }) {
        Ok((p, t, end, is_dump)) => {
            row.service = Some(p.service);
            row.host = Some(p.host);
            row.pid = Some(p.pid);
            row.trigger = Some(t.reason.slug());
            row.trigger_description = Some(t.describe());
            row.kind = Some(if is_dump { "dump" } else { "ring" });
            row.time = Some(end.to_string());
        }
        Err(e) => row.error = Some(e.to_string()),
    }
    row
}

/// Decodes dump `id` ahead of the first request for it (the single dump `flightrec view`
/// was given, or the merge it was asked for), so the page finds it ready.
pub(crate) async fn preload(state: Arc<AppState>, id: String) {
    // Several at once: their skeleton first (which starts the full read).
    let _ = model_or_skeleton(&state, &id).await;
}

/// Recordings opened together at most.
const MAX_MERGED: usize = 16;

/// The file ids a dump id names: one (`3`), or several merged (`1+4+2`).
/// The recordings a dump id names, each with the shift (ns) the user gave it: `3`, `1+2`,
/// or `1+2@-1500000` (the second moved 1.5 ms earlier).
fn file_ids(state: &AppState, id: &str) -> Result<Vec<(usize, i64)>, ApiError> {
    let mut ids: Vec<(usize, i64)> = Vec::new();
    for part in id.split('+') {
        let (file, shift) = match part.split_once('@') {
            Some((f, s)) => (
                f,
                s.parse::<i64>().map_err(|_| {
                    ApiError(
                        StatusCode::BAD_REQUEST,
                        "a shift is a whole number of ns, as in 2@-1500000".into(),
                    )
                })?,
            ),
            None => (part, 0),
        };
        let f = file_id(state, file)?;
        if !ids.iter().any(|(i, _)| *i == f) {
            ids.push((f, shift));
        }
    }
    // One recording shifted is the same recording: one model, whatever the shift asked.
    if let [(_, shift)] = ids.as_mut_slice() {
        *shift = 0;
    }
    if ids.len() > MAX_MERGED {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            format!("at most {MAX_MERGED} recordings open together"),
        ));
    }
    Ok(ids)
}

/// The cache key of recordings opened together: ids, with their shifts.
fn key_of(ids: &[(usize, i64)]) -> String {
    ids.iter()
        .map(|(i, s)| {
            if *s == 0 {
                i.to_string()
            } else {
                format!("{i}@{s}")
            }
        })
        .collect::<Vec<_>>()
        .join("+")
}

/// The cache slot for `key`, made (and the least recently used evicted) if missing.
fn slot(state: &AppState, key: &str) -> Arc<crate::ModelSlot> {
    let mut loaded = state.loaded.lock().unwrap_or_else(|e| e.into_inner());
    match loaded.iter().position(|(i, _)| *i == key) {
        Some(pos) => {
            let entry = loaded.remove(pos);
            let slot = entry.1.clone();
            loaded.push(entry);
            slot
        }
        None => {
            while loaded.len() >= state.limits.max_loaded.max(1) {
                loaded.remove(0);
            }
            let slot = Arc::new(crate::ModelSlot::new());
            loaded.push((key.to_owned(), slot.clone()));
            slot
        }
    }
}

/// The decoded dump `id`, decoding it (off the async threads) if it is not loaded.
async fn model(state: &Arc<AppState>, id: &str) -> Result<Arc<Model>, ApiError> {
    let ids = file_ids(state, id)?;
    let slot = slot(state, &key_of(&ids));
    // Concurrent requests for this dump wait for one decode; a failed decode is not kept,
    // so the next request tries again (the file may have been completed since).
    let m = slot.get_or_try_init(|| decode_all(state, &ids)).await?;
    Ok(m.clone())
}

/// What the page's first questions (meta, windows) are answered from: the model of `id`
/// when it is ready; for several recordings not read yet, their skeleton (scanned at once,
/// see `Model::skeleton`) while the full read goes on in the background.
async fn model_or_skeleton(state: &Arc<AppState>, id: &str) -> Result<Arc<Model>, ApiError> {
    let ids = file_ids(state, id)?;
    if ids.len() < 2 {
        return model(state, id).await;
    }
    let key = key_of(&ids);
    if let Some(m) = slot(state, &key).get() {
        return Ok(m.clone());
    }
    let opening = {
        let mut openings = state.openings.lock().unwrap_or_else(|e| e.into_inner());
        openings.entry(key.clone()).or_default().clone()
    };
    if let Some((status, why)) = opening
        .failed
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
    {
        return Err(ApiError(status, why));
    }
    // The skeleton first, on every core: it is what the page shows meanwhile. Then the
    // full read.
    let skeleton = opening
        .skeleton
        .get_or_try_init(|| skeleton(state, &ids))
        .await?
        .clone();
    if !opening
        .started
        .swap(true, std::sync::atomic::Ordering::SeqCst)
    {
        let (state, id, opening, key) =
            (state.clone(), id.to_owned(), opening.clone(), key.clone());
        tokio::spawn(async move {
            match model(&state, &id).await {
                Ok(_) => {
                    let mut openings = state.openings.lock().unwrap_or_else(|e| e.into_inner());
                    openings.remove(&key);
                }
                // Busy is not a failure of these recordings: the next request tries again.
                Err(ApiError(StatusCode::SERVICE_UNAVAILABLE, _)) => {
                    opening
                        .started
                        .store(false, std::sync::atomic::Ordering::SeqCst);
                }
                Err(ApiError(status, why)) => {
                    *opening.failed.lock().unwrap_or_else(|e| e.into_inner()) = Some((status, why));
                }
            }
        });
    }
    // The full read may have ended meanwhile.
    if let Some(m) = slot(state, &key_of(&ids)).get() {
        return Ok(m.clone());
    }
    Ok(skeleton)
}

/// Recordings opened together from object storage must fit in the cache together, or
/// fetching one would evict another before they are read: refused in one line instead.
fn check_remote_total(state: &AppState, ids: &[(usize, i64)]) -> Result<(), ApiError> {
    let remote: u64 = ids
        .iter()
        .filter_map(|&(id, _)| state.file(id))
        .filter(|f| f.remote.is_some())
        .map(|f| f.size)
        .sum();
    if remote > state.limits.cache_bytes {
        return Err(ApiError(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "these recordings are {remote} bytes together, more than the cache of remote dumps holds ({} bytes; FLIGHTREC_CACHE_BYTES)",
                state.limits.cache_bytes
            ),
        ));
    }
    Ok(())
}

/// Scans recordings opened together (no record decoded) into their skeleton.
async fn skeleton(state: &Arc<AppState>, ids: &[(usize, i64)]) -> Result<Arc<Model>, ApiError> {
    check_remote_total(state, ids)?;
    let shifts: Vec<i64> = ids.iter().map(|(_, s)| *s).collect();
    let mut paths = Vec::new();
    for &(id, _) in ids {
        let file = state
            .file(id)
            .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("no dump {id}")))?;
        check_size(state, &file)?;
        paths.push(local_path(state, &file).await?);
    }
    tokio::task::spawn_blocking(move || {
        let scans = crate::model::par_map(paths.iter().collect(), |p| {
            let image =
                flightrec_format::read_image(p).map_err(|e| format!("{}: {e}", p.display()))?;
            let scan = image.scan().map_err(|e| format!("{}: {e}", p.display()))?;
            let activity = scan.activity().map(|(t, a)| (t, a.to_vec())).collect();
            Ok::<_, String>((scan.recording, activity))
        })
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
        Ok::<_, String>(Arc::new(Model::skeleton(scans, &shifts)))
    })
    .await
    .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
    .map_err(|e| ApiError(StatusCode::UNPROCESSABLE_ENTITY, e))
}

/// Reads and arranges one dump, or several merged into one timeline.
async fn decode_all(state: &Arc<AppState>, ids: &[(usize, i64)]) -> Result<Arc<Model>, ApiError> {
    if let [(id, 0)] = ids {
        return decode(state, *id).await;
    }
    let _turn = read_turn(state).await?;
    let shifts: Vec<i64> = ids.iter().map(|(_, s)| *s).collect();
    check_remote_total(state, ids)?;
    let mut paths = Vec::new();
    for &(id, _) in ids {
        let file = state
            .file(id)
            .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("no dump {id}")))?;
        check_size(state, &file)?;
        paths.push(local_path(state, &file).await?);
    }
    tokio::task::spawn_blocking(move || {
        // The headers first (small reads), to name the processes; then each recording is
        // decoded and modelled on one core, side by side.
        let heads = paths
            .iter()
            .map(|p| {
                flightrec_format::read_head(p)
                    .and_then(|img| flightrec_format::scan(&img).map(|s| s.recording))
                    .map_err(|e| format!("{}: {e}", p.display()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let load = |k: usize| {
            flightrec_format::open(&paths[k]).map_err(|e| format!("{}: {e}", paths[k].display()))
        };
        Model::merged_loading(&heads, &shifts, load).map(Arc::new)
    })
    .await
    .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
    .map_err(|e| ApiError(StatusCode::UNPROCESSABLE_ENTITY, e))
}

/// Where a dump is on this machine: its file, or, for one in object storage, its cache
/// file, fetched (off the async threads) on first open.
async fn local_path(
    state: &Arc<AppState>,
    file: &crate::DumpFile,
) -> Result<std::path::PathBuf, ApiError> {
    let Some(remote) = file.remote.clone() else {
        return Ok(file.path.clone());
    };
    if file.path.is_file() {
        return Ok(file.path.clone());
    }
    let fetch = state.fetch.clone().ok_or_else(|| {
        ApiError(
            StatusCode::INTERNAL_SERVER_ERROR,
            "no way to fetch remote dumps".into(),
        )
    })?;
    tokio::task::spawn_blocking(move || fetch(&remote))
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|e| ApiError(StatusCode::BAD_GATEWAY, e))
}

fn check_size(state: &AppState, file: &crate::DumpFile) -> Result<(), ApiError> {
    if file.remote.is_some() {
        // Its listed size; the file may not be here yet.
        return if file.size > state.limits.max_file_bytes {
            Err(ApiError(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("{} bytes, more than the viewer opens", file.size),
            ))
        } else {
            Ok(())
        };
    }
    let size = std::fs::metadata(&file.path).map_or(file.size, |m| m.len());
    if size > state.limits.max_file_bytes {
        return Err(ApiError(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "{} is {size} bytes, more than the viewer opens ({} bytes)",
                file.path.display(),
                state.limits.max_file_bytes
            ),
        ));
    }
    Ok(())
}

/// A turn to read: at most `Limits::max_reads` reads hold one at once, so the memory of
/// reads under way is bounded; after `Limits::read_wait`, 503.
async fn read_turn(state: &AppState) -> Result<tokio::sync::SemaphorePermit<'_>, ApiError> {
    match tokio::time::timeout(state.limits.read_wait, state.reads.acquire()).await {
        Ok(Ok(permit)) => Ok(permit),
        _ => Err(ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the viewer is reading {} other recordings; try again in a moment",
                state.limits.max_reads
            ),
        )),
    }
}

/// Reads and arranges dump `id` for the timeline, off the async threads.
async fn decode(state: &Arc<AppState>, id: usize) -> Result<Arc<Model>, ApiError> {
    let _turn = read_turn(state).await?;
    let file = state
        .file(id)
        .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("no dump {id}")))?;
    check_size(state, &file)?;
    let path = local_path(state, &file).await?;
    tokio::task::spawn_blocking(move || {
        // read_image opens the file read-only.
        flightrec_format::open(&path)
            .map(|rec| Arc::new(Model::new(rec)))
            .map_err(|e| format!("{}: {e}", path.display()))
    })
    .await
    .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
    .map_err(|e| ApiError(StatusCode::UNPROCESSABLE_ENTITY, e))
}

async fn meta(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> ApiResult {
    let m = model_or_skeleton(&state, &id).await?;
    let mut v = m.meta();
    if let Some(f) = state.file(id.parse().unwrap_or(usize::MAX)) {
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
    let n: u32 = lock
        .parse()
        .map_err(|_| ApiError(StatusCode::BAD_REQUEST, "a lock id is a number".into()))?;
    let m = model(&state, &id).await?;
    let v = m
        .lock(n)
        .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("no lock {n}")))?;
    Ok(Json(v).into_response())
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
    let n: usize = record
        .parse()
        .map_err(|_| ApiError(StatusCode::BAD_REQUEST, "a record id is a number".into()))?;
    let m = model(&state, &id).await?;
    let v = m
        .record(n)
        .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("no record {n}")))?;
    Ok(Json(v).into_response())
}

async fn span(
    State(state): State<Arc<AppState>>,
    Path((id, span)): Path<(String, String)>,
) -> ApiResult {
    let s: u64 = span
        .parse()
        .map_err(|_| ApiError(StatusCode::BAD_REQUEST, "a span id is a number".into()))?;
    let m = model(&state, &id).await?;
    let v = m
        .span(s)
        .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("no span {s}")))?;
    Ok(Json(v).into_response())
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
