//! The page's files, embedded in the binary: no build step, no CDN, no network.

pub const INDEX_HTML: &str = include_str!("../assets/index.html");
pub const TIMELINE_HTML: &str = include_str!("../assets/timeline.html");

/// The assets served under `/assets/`, by exact name.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "style.css",
        include_str!("../assets/style.css"),
        "text/css; charset=utf-8",
    ),
    (
        "index.js",
        include_str!("../assets/index.js"),
        "text/javascript; charset=utf-8",
    ),
    // The timeline page, as ES modules (their import graph has no cycle; see
    // ARCHITECTURE.md):
    // - state: constants, the page's state (every field declared), time and geometry.
    // - api: the one fetch wrapper, which checks every status.
    // - layout: lane heights and labels.
    // - coverage: what a request is for and whether a held answer covers the view.
    // - status: the status line.
    // - drawing: the canvas.
    // - render: the draw scheduler.
    // - data: the server's answers the page holds.
    // - nav: the view's time range.
    // - panels: details and the object list.
    // - input: mouse, keys, filters, search.
    // - main: start-up and the query interface.
    (
        "timeline-state.js",
        include_str!("../assets/timeline-state.js"),
        "text/javascript; charset=utf-8",
    ),
    (
        "timeline-api.js",
        include_str!("../assets/timeline-api.js"),
        "text/javascript; charset=utf-8",
    ),
    (
        "timeline-layout.js",
        include_str!("../assets/timeline-layout.js"),
        "text/javascript; charset=utf-8",
    ),
    (
        "timeline-coverage.js",
        include_str!("../assets/timeline-coverage.js"),
        "text/javascript; charset=utf-8",
    ),
    (
        "timeline-status.js",
        include_str!("../assets/timeline-status.js"),
        "text/javascript; charset=utf-8",
    ),
    (
        "timeline-drawing.js",
        include_str!("../assets/timeline-drawing.js"),
        "text/javascript; charset=utf-8",
    ),
    (
        "timeline-render.js",
        include_str!("../assets/timeline-render.js"),
        "text/javascript; charset=utf-8",
    ),
    (
        "timeline-data.js",
        include_str!("../assets/timeline-data.js"),
        "text/javascript; charset=utf-8",
    ),
    (
        "timeline-nav.js",
        include_str!("../assets/timeline-nav.js"),
        "text/javascript; charset=utf-8",
    ),
    (
        "timeline-panels.js",
        include_str!("../assets/timeline-panels.js"),
        "text/javascript; charset=utf-8",
    ),
    (
        "timeline-input.js",
        include_str!("../assets/timeline-input.js"),
        "text/javascript; charset=utf-8",
    ),
    (
        "timeline-findings.js",
        include_str!("../assets/timeline-findings.js"),
        "text/javascript; charset=utf-8",
    ),
    (
        "timeline-main.js",
        include_str!("../assets/timeline-main.js"),
        "text/javascript; charset=utf-8",
    ),
];

/// An asset's body and content type. Names are matched exactly against the table, so no
/// path ever reaches the file system.
pub fn get(name: &str) -> Option<(&'static str, &'static str)> {
    ASSETS
        .iter()
        .find(|(n, ..)| *n == name)
        .map(|&(_, body, mime)| (body, mime))
}
