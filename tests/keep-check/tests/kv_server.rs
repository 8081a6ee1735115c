//! A correct key-value server's own test suite, each test calling `test_recorder()`: kept
//! with `FLIGHTREC_KEEP=1`, `flightrec check` of its recording must pass.
use flightrec_keep_check::kv::{Command::*, Server};

#[test]
fn set_then_get() {
    tracing_flightrec::test_recorder();
    let s = Server::default();
    assert_eq!(
        s.connection(1, &[Set("a", 1), Get("a")]),
        vec![None, Some(1)]
    );
}

/// Expiry on purpose: another connection deletes the key between two GETs of the first.
#[test]
fn a_key_deleted_between_two_gets_is_gone() {
    tracing_flightrec::test_recorder();
    let s = Server::default();
    s.connection(1, &[Set("k", 5)]);
    let (first_get_tx, first_get_rx) = std::sync::mpsc::channel();
    let (deleted_tx, deleted_rx) = std::sync::mpsc::channel();
    let other = s.clone();
    let deleter = std::thread::spawn(move || {
        first_get_rx.recv().unwrap();
        other.connection(2, &[Del("k")]);
        deleted_tx.send(()).unwrap();
    });
    let answers = {
        let mut a = s.connection(3, &[Get("k")]);
        first_get_tx.send(()).unwrap();
        deleted_rx.recv().unwrap();
        a.extend(s.connection(3, &[Get("k")]));
        a
    };
    deleter.join().unwrap();
    assert_eq!(answers, vec![Some(5), None]);
}

#[test]
fn increments_from_many_connections_all_count() {
    tracing_flightrec::test_recorder();
    let s = Server::default();
    let clients: Vec<_> = (0..8u16)
        .map(|peer| {
            let s = s.clone();
            std::thread::spawn(move || {
                for _ in 0..50 {
                    s.connection(peer, &[Incr("hits"), Get("hits")]);
                }
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    assert_eq!(s.connection(100, &[Get("hits")]), vec![Some(400)]);
}
