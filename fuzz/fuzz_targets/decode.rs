//! Any bytes, as a ring file or a dump: the decoder must return an error or a recording,
//! never panic, and never hold more records than the bytes could encode; through the
//! whole image and through the streaming reader (which checks a dump's checksums as it
//! goes) alike.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(image) = flightrec_format::image_from_bytes(data.to_vec()) {
        if let Ok(rec) = flightrec_format::decode(&image) {
            assert!(rec.records.len() <= image.len() / 16 + 1);
        }
    }
    if let Ok(image) = flightrec_format::Image::from_bytes(data) {
        if let Ok(rec) = image.decode() {
            assert!(rec.records.len() <= image.held_bytes() / 16 + 1);
        }
    }
});
