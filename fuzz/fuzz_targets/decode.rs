//! Any bytes, as a ring file or a dump: the decoder must return an error or a recording,
//! never panic, and never hold more records than the bytes could encode.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(image) = flightrec_format::image_from_bytes(data.to_vec()) {
        if let Ok(rec) = flightrec_format::decode(&image) {
            assert!(rec.records.len() <= image.len() / 16 + 1);
        }
    }
});
