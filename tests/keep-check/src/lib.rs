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

/// A small key-value server in the shape real ones have: a span per connection around a
/// span per command, one mutex around the state, and the state's address logged inside the
/// lock and again once the guard is dropped. Correct: each command works in one hold.
pub mod kv {
    use std::collections::HashMap;
    use std::sync::Arc;

    use tracing_flightrec::sync::Mutex;

    #[derive(Clone)]
    pub struct Server {
        db: Arc<Mutex<HashMap<String, i64>>>,
    }

    /// A command and its answer.
    pub enum Command<'a> {
        Get(&'a str),
        Set(&'a str, i64),
        Incr(&'a str),
        Del(&'a str),
    }

    impl Default for Server {
        fn default() -> Self {
            Server {
                db: Arc::new(Mutex::named("db", HashMap::new())),
            }
        }
    }

    impl Server {
        /// Runs `commands` as one client connection; the answers in order.
        pub fn connection(&self, peer: u16, commands: &[Command<'_>]) -> Vec<Option<i64>> {
            let _conn = tracing::info_span!("connection", peer).entered();
            let answers = commands.iter().map(|c| self.command(c)).collect();
            tracing::info!(db = ?Arc::as_ptr(&self.db), "connection closed");
            answers
        }

        fn command(&self, c: &Command<'_>) -> Option<i64> {
            let db = Arc::as_ptr(&self.db);
            let (name, key) = match c {
                Command::Get(k) => ("GET", *k),
                Command::Set(k, _) => ("SET", *k),
                Command::Incr(k) => ("INCR", *k),
                Command::Del(k) => ("DEL", *k),
            };
            let _cmd = tracing::info_span!("command", name, key).entered();
            let mut g = self.db.lock().unwrap();
            let answer = match c {
                Command::Get(k) => g.get(*k).copied(),
                Command::Set(k, v) => g.insert(k.to_string(), *v),
                Command::Incr(k) => {
                    let v = g.entry(k.to_string()).or_insert(0);
                    *v += 1;
                    Some(*v)
                }
                Command::Del(k) => g.remove(*k),
            };
            tracing::info!(db = ?db, key, "done");
            drop(g);
            tracing::info!(db = ?db, key, "command done, lock released");
            answer
        }
    }
}
