//! Two accounts and a transfer that locks both: in the order given, which is the bug (a
//! transfer each way, at the same time, would deadlock).
use tracing_flightrec::sync::Mutex;

pub struct Account {
    pub balance: Mutex<i64>,
}

impl Account {
    pub fn new(name: &str, balance: i64) -> Account {
        Account {
            balance: Mutex::named(name, balance),
        }
    }
}

/// Moves `amount` from `from` to `to`, locking `from` first.
pub fn transfer(from: &Account, to: &Account, amount: i64) {
    let mut a = from.balance.lock().unwrap();
    let mut b = to.balance.lock().unwrap();
    *a -= amount;
    *b += amount;
    tracing::info!(amount, "transferred");
}
