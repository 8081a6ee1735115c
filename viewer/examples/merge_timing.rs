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
    eprintln!("decode: {:?}", t.elapsed());
    let t = std::time::Instant::now();
    let (m, p) = flightrec_analysis::merge::merge_recordings(recs);
    eprintln!("merge: {:?}", t.elapsed());
    let t = std::time::Instant::now();
    let model = flightrec_viewer::model::Model::merged(m, p);
    eprintln!("model: {:?}", t.elapsed());
    let t = std::time::Instant::now();
    let _ = model.meta();
    eprintln!("meta: {:?}", t.elapsed());
}
