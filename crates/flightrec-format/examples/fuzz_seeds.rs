//! Writes small, valid ring images (and a dump of one) into a directory: seeds for the
//! decoder's fuzz target, which would not get past the header from random bytes.
//!
//! `cargo run -p flightrec-format --example fuzz_seeds -- fuzz/corpus/decode`

fn main() {
    let dir = std::path::PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "fuzz/corpus/decode".into()),
    );
    std::fs::create_dir_all(&dir).expect("creating the corpus directory");
    for n in [0u64, 3, 10] {
        let img = flightrec_format::testing::sample_image(n);
        let rec = flightrec_format::decode(&img).expect("a seed must decode");
        assert!(!rec.damage.is_damaged(), "seed damaged: {:?}", rec.damage);
        std::fs::write(dir.join(format!("ring-{n}")), &img).unwrap();
        std::fs::write(
            dir.join(format!("dump-{n}")),
            zstd::bulk::compress(&img, 3).unwrap(),
        )
        .unwrap();
    }
    // With a stack area: the module list and a capture (libFuzzer keeps the first
    // `-max_len` bytes of it; `stacks::fuzz` covers whole areas).
    let img = flightrec_format::testing::sample_image_with_stacks(3);
    flightrec_format::decode(&img).expect("a seed must decode");
    std::fs::write(dir.join("ring-stacks"), &img).unwrap();
    println!("seeds written to {}", dir.display());
}
