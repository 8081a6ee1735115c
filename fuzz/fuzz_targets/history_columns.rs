//! Any bytes, as a chunk the history lays out by columns and as a packed chunk read back
//! from disk: packing gives the same bytes back, and unpacking never panics nor writes past
//! the chunk it is given.
#![no_main]

use flightrec_format::history::{columns, Columns};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut out = vec![0u8; data.len()];
    let packed = Columns::default().pack(data).to_vec();
    assert_eq!(columns::unpack(&packed, &mut out), Some(data.len()));
    assert_eq!(out, data);
    let mut chunk = vec![0u8; 4096];
    if let Some(n) = columns::unpack(data, &mut chunk) {
        assert!(n <= chunk.len());
    }
});
