//! The model over damaged input: every single-byte flip and every truncation of a small
//! image that still decodes must give a model whose every query answers without a panic.

use super::*;

fn exercise(img: &[u8]) {
    let Ok(rec) = flightrec_format::decode(img) else {
        return;
    };
    let n = rec.records.len();
    let m = Model::new(rec);
    let _ = m.meta();
    for (start, end) in [(0, m.end.max(1)), (i64::MIN, i64::MAX), (-5, 3), (7, 7)] {
        let _ = m.window(start, end, 800, &Filter::default());
    }
    for i in 0..n + 1 {
        let _ = m.record(i);
    }
    let mut spans: Vec<u64> = m.records.iter().map(|r| r.span).collect();
    spans.extend(m.header.rec.span_callsites.iter().map(|(s, _)| s));
    spans.sort_unstable();
    spans.dedup();
    for s in spans {
        let _ = m.span(s);
    }
    let _ = m.object("n", "0", 10);
    let _ = m.search(
        &Filter {
            text: Some("hello".into()),
            ..Filter::default()
        },
        10,
    );
}

#[test]
fn every_flip_and_truncation_of_an_image_gives_a_model_that_answers() {
    let img = flightrec_format::testing::sample_image(3);
    let start = flightrec_format::layout::HEADER_SIZE;
    for at in start..img.len() {
        let mut b = img.clone();
        b[at] ^= 0x5a;
        exercise(&b);
    }
    for len in (0..img.len()).step_by(7) {
        exercise(&img[..len]);
    }
}
