//! Subscribers and workloads shared by the benches: the same events through a no-op layer,
//! tracing-subscriber's fmt layer to a sink, fmt through tracing-appender's non_blocking
//! writer to a sink, and flightrec.

use tracing::Dispatch;
use tracing_subscriber::prelude::*;

/// A layer that does nothing: the cost of tracing's dispatch alone.
pub struct NoopLayer;
impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for NoopLayer {}

pub struct Subject {
    pub name: &'static str,
    pub dispatch: Dispatch,
    // Keeps the non_blocking worker and the recorder alive for the run.
    _guard: Option<tracing_appender::non_blocking::WorkerGuard>,
    _recorder: Option<tracing_flightrec::Recorder>,
    _dir: Option<tempfile::TempDir>,
}

/// The subjects, in the order they are measured: flightrec right after the no-op layer,
/// before the non_blocking appender, whose worker thread may still be draining its backlog
/// (on two cores, a third busy thread) when the next subject starts.
pub fn subjects() -> Vec<Subject> {
    let noop = Dispatch::new(tracing_subscriber::registry().with(NoopLayer));
    let fmt = Dispatch::new(
        tracing_subscriber::registry()
            .with(tracing_subscriber::fmt::layer().with_writer(std::io::sink)),
    );
    let (nb, guard) = tracing_appender::non_blocking(std::io::sink());
    let appender = Dispatch::new(
        tracing_subscriber::registry().with(tracing_subscriber::fmt::layer().with_writer(nb)),
    );
    let dir = tempfile::Builder::new()
        .prefix("flightrec-bench-")
        .tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .unwrap();
    let recorder = tracing_flightrec::Recorder::builder()
        .dir(dir.path())
        .service("bench")
        .capacity(64 << 20)
        .build()
        .unwrap();
    let flightrec = Dispatch::new(tracing_subscriber::registry().with(recorder.layer()));
    vec![
        Subject {
            name: "noop layer",
            dispatch: noop,
            _guard: None,
            _recorder: None,
            _dir: None,
        },
        Subject {
            name: "flightrec",
            dispatch: flightrec,
            _guard: None,
            _recorder: Some(recorder),
            _dir: Some(dir),
        },
        Subject {
            name: "fmt to sink",
            dispatch: fmt,
            _guard: None,
            _recorder: None,
            _dir: None,
        },
        Subject {
            name: "non_blocking to sink",
            dispatch: appender,
            _guard: Some(guard),
            _recorder: None,
            _dir: None,
        },
    ]
}

#[derive(Debug)]
#[allow(dead_code)]
pub struct Order {
    pub id: u64,
    pub items: [u16; 3],
}

/// One unit of work, given an iteration number.
pub type Work = fn(u64);

/// The cases, each one unit of work.
pub const CASES: [(&str, Work); 5] = [
    ("literal + 2 scalars", |i| {
        tracing::info!(a = i, b = 7u64, "literal message")
    }),
    ("with a &str field", |i| {
        let name: &str = std::hint::black_box("checkout");
        tracing::info!(service = name, i, "literal message")
    }),
    (
        "with a Debug field",
        |i| tracing::info!(order = ?Order { id: i, items: [1, 2, 3] }, "literal message"),
    ),
    ("span new+enter+exit+close", |i| {
        let s = tracing::info_span!("request", i);
        let _g = s.enter();
    }),
    // An async task's poll: its span, alive across polls, entered and exited.
    ("enter+exit of a live span", |_| {
        TASK.with(|t| {
            let _g = t.enter();
        })
    }),
];

thread_local! {
    /// The long-lived span of the "live span" case, one per thread, created under the
    /// subscriber being measured (the first call happens inside its dispatcher).
    static TASK: tracing::Span = tracing::info_span!("task", id = 7u64);
}
