//! Times the viewer's load of several recordings opened together, stage by stage: decode,
//! merge (the reading layer), the viewer's model, its meta. For measuring merged views at
//! scale (issue 13), with dumps from `flightrec`'s `big_dump` example:
//!
//! `cargo run --release -p flightrec-viewer --example merge_timing -- A.flightrec B.flightrec ...`
fn main() {
    let paths: Vec<String> = std::env::args().skip(1).collect();
    let t = std::time::Instant::now();
    let recs: Vec<_> = paths
        .iter()
        .map(|p| flightrec_format::open(std::path::Path::new(p)).expect("a recording"))
        .collect();
    eprintln!("decode: {:?}, resident {}", t.elapsed(), resident());
    let t = std::time::Instant::now();
    let model = if recs.len() == 1 {
        flightrec_viewer::model::Model::new(recs.into_iter().next().expect("one"))
    } else {
        flightrec_viewer::model::Model::merged(recs, &[])
    };
    eprintln!("model: {:?}, resident {}", t.elapsed(), resident());
    let t = std::time::Instant::now();
    let _ = model.meta();
    eprintln!("meta: {:?}", t.elapsed());
}

/// This process's resident memory now, as the kernel counts it.
fn resident() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .map(|l| l["VmRSS:".len()..].trim().to_owned())
        })
        .unwrap_or_default()
}
