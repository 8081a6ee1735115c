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
    (
        "timeline.js",
        include_str!("../assets/timeline.js"),
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
