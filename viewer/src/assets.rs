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
    // The timeline page, as ES modules: state (constants, shared state, time and geometry),
    // data (the server's answers and what is held), drawing, panels (details, the object
    // list), input (navigation, filters, search) and main (start-up).
    (
        "timeline-state.js",
        include_str!("../assets/timeline-state.js"),
        "text/javascript; charset=utf-8",
    ),
    (
        "timeline-data.js",
        include_str!("../assets/timeline-data.js"),
        "text/javascript; charset=utf-8",
    ),
    (
        "timeline-drawing.js",
        include_str!("../assets/timeline-drawing.js"),
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
