//! The README's way for a test suite to record: each test calls `test_recorder()` first.
//! Each test passes; together, on the harness's threads, they lock the two accounts in both
//! orders, which one recording of the whole binary shows. (One at a time: run together they
//! would deadlock for real.)
use std::sync::{Arc, Mutex, OnceLock};

use flightrec_keep_check::{transfer, Account};

fn accounts() -> &'static (Arc<Account>, Arc<Account>) {
    static ACCOUNTS: OnceLock<(Arc<Account>, Arc<Account>)> = OnceLock::new();
    ACCOUNTS.get_or_init(|| {
        (
            Arc::new(Account::new("checking", 100)),
            Arc::new(Account::new("savings", 100)),
        )
    })
}

/// Lets one transfer run at a time (a std lock: flightrec does not record it).
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

#[test]
fn salary() {
    tracing_flightrec::test_recorder();
    let (checking, savings) = accounts();
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    transfer(checking, savings, 10);
}

#[test]
fn rent() {
    tracing_flightrec::test_recorder();
    let (checking, savings) = accounts();
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    transfer(savings, checking, 10);
}
