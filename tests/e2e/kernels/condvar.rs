//! Condvars: a wait nothing will end.

use std::sync::Arc;

use tracing_flightrec::sync::{Condvar, Mutex};

use super::{turn, Spawner};

type Queue = Arc<(Mutex<Vec<u64>>, Condvar)>;

fn queue() -> Queue {
    Arc::new((
        Mutex::named("jobs", Vec::new()),
        Condvar::named("job_ready"),
    ))
}

fn lost_wakeup(s: &Spawner, fixed: bool) {
    let q = queue();
    let (pushed_tx, pushed_rx) = turn();
    let p = q.clone();
    s.spawn("producer", move || {
        let (m, cv) = &*p;
        m.lock().unwrap().push(1);
        cv.notify_one();
        pushed_tx.send(()).unwrap();
    });
    s.spawn("consumer", move || {
        pushed_rx.recv().unwrap();
        let (m, cv) = &*q;
        if fixed {
            let mut g = cv.wait_while(m.lock().unwrap(), |j| j.is_empty()).unwrap();
            g.pop();
        } else {
            let g = m.lock().unwrap();
            let mut g = cv.wait(g).unwrap(); // the notify came before: lost
            g.pop();
        }
    });
}

pub(super) fn lost_wakeup_bug(s: &Spawner) {
    lost_wakeup(s, false)
}

pub(super) fn lost_wakeup_fix(s: &Spawner) {
    lost_wakeup(s, true)
}

fn wrong_condvar(s: &Spawner, fixed: bool) {
    let q = queue();
    let other = Arc::new(Condvar::named("space_free"));
    let (waiting_tx, waiting_rx) = turn();
    let c = q.clone();
    s.spawn("consumer", move || {
        let (m, cv) = &*c;
        let g = m.lock().unwrap();
        waiting_tx.send(()).unwrap();
        let mut g = cv.wait_while(g, |j| j.is_empty()).unwrap();
        g.pop();
    });
    s.spawn("producer", move || {
        waiting_rx.recv().unwrap();
        let (m, cv) = &*q;
        m.lock().unwrap().push(1);
        if fixed {
            cv.notify_one();
        } else {
            other.notify_one(); // the wrong condvar
        }
    });
}

pub(super) fn wrong_condvar_bug(s: &Spawner) {
    wrong_condvar(s, false)
}

pub(super) fn wrong_condvar_fix(s: &Spawner) {
    wrong_condvar(s, true)
}

/// The consumer looks at the queue, finds it empty, and only then takes the lock to wait:
/// the job and its notify land in between, and the wait never ends.
pub(super) fn check_then_wait_bug(s: &Spawner) {
    check_then_wait(s, false)
}

pub(super) fn check_then_wait_fix(s: &Spawner) {
    check_then_wait(s, true)
}

fn check_then_wait(s: &Spawner, fixed: bool) {
    let q: Arc<(Mutex<Vec<u64>>, Condvar)> =
        Arc::new((Mutex::named("inbox", Vec::new()), Condvar::named("mail")));
    let (looked_tx, looked_rx) = turn();
    let (sent_tx, sent_rx) = turn();
    let c = q.clone();
    s.spawn("reader", move || {
        let (m, cv) = &*c;
        if fixed {
            looked_tx.send(()).unwrap();
            sent_rx.recv().unwrap();
            let mut g = cv.wait_while(m.lock().unwrap(), |v| v.is_empty()).unwrap();
            g.pop();
        } else {
            let empty = m.lock().unwrap().is_empty();
            looked_tx.send(()).unwrap();
            sent_rx.recv().unwrap();
            if empty {
                let g = m.lock().unwrap();
                let mut g = cv.wait(g).unwrap();
                g.pop();
            }
        }
    });
    s.spawn("sender", move || {
        looked_rx.recv().unwrap();
        let (m, cv) = &*q;
        m.lock().unwrap().push(1);
        cv.notify_all();
        sent_tx.send(()).unwrap();
    });
}
