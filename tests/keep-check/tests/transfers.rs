//! Each test passes; together they lock the two accounts in both orders.
use std::sync::Arc;

use flightrec_keep_check::{transfer, Account};
use tracing_subscriber::prelude::*;

#[test]
fn transfers_both_ways() {
    // Configured by the environment (FLIGHTREC_DIR, FLIGHTREC_KEEP), as a service would be.
    let recorder = tracing_flightrec::Builder::from_env()
        .unwrap()
        .service("bank")
        .build()
        .unwrap();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(recorder.layer()));
    let checking = Arc::new(Account::new("checking", 100));
    let savings = Arc::new(Account::new("savings", 100));
    for (name, forward) in [("salary", true), ("rent", false)] {
        let (c, s, d) = (checking.clone(), savings.clone(), dispatch.clone());
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                tracing::dispatcher::with_default(&d, || {
                    tracing::info!("start");
                    if forward {
                        transfer(&c, &s, 10);
                    } else {
                        transfer(&s, &c, 10);
                    }
                })
            })
            .unwrap()
            .join()
            .unwrap();
    }
    assert_eq!(*checking.balance.lock().unwrap(), 100);
}
