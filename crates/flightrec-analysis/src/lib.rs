//! The reading layer: what a recording *means*, resolved once for every reader.
//!
//! The format crate decodes bytes into records; this crate says what those records amount
//! to, with one rule for each question, so `cat`, both exporters, the viewer and the demo
//! cannot disagree. [`Analysis::of`] is the front door for a reader that wants it all (the
//! tasks, the lock replay, the findings, the folded triggers), built in one pass over the
//! records beside the tasks:
//!
//! * [`Names`]: callsite, field, thread and span names, and record titles.
//! * [`spans`]: span entries reconstructed from a record stream, in two streaming passes
//!   ([`SpanPlan`] then [`SpanWalker`]): initial stacks from chunk context records,
//!   enter/exit pairing, spans that exit out of nesting order (they go on a track of their
//!   own), spans entered on several threads (hand-overs), `follows_from` links, and entries
//!   still open when the data ends.
//! * [`objects`]: which records carry a field value, for "follow this object".
//! * [`lock_ops`]: the lock-record vocabulary (which records are lock events, what each
//!   says, in words).
//! * [`locks`]: the one lock model: `tracing_flightrec::sync`'s lock events replayed once into
//!   holds and waits as intervals, per-lock statistics, and who holds and waits for what
//!   when the data ends (the wait-for graph) with its cycles (deadlocks, in words).
//! * [`merge`]: several recordings (processes, hosts) as one time order, aligned on wall
//!   clock.
//! * [`tasks`]: requests and tasks (the root span of an instrumented future, or a tokio
//!   task recorded by the `tokio` feature) with their polls, the spans inside them and
//!   their records.
//! * [`triggers`]: the triggers that folded into a dump after its own.
//! * [`findings`]: the bug a recording shows, named (deadlocks, failures explained by an
//!   interleaving, lock-order inversions, split check-then-acts, inconsistent locking,
//!   blocking polls, long lock waits, stuck threads), with the records that show it.
//!
//! It depends on the format crate alone: no tracing, no server, no command line.

#![forbid(unsafe_code)]

mod analysis;
pub mod findings;
pub mod lock_ops;
pub mod locks;
pub mod merge;
pub mod names;
pub mod objects;
pub mod report;
pub mod spans;
pub mod stacks;
pub mod tasks;
pub mod triggers;

pub use analysis::Analysis;
pub use lock_ops::{LockInfo, LockOp};
pub use locks::{LockInterval, LockState};
pub use names::{Names, TITLE_MAX_CHARS};
pub use objects::{ObjectKey, Trail};
pub use report::Report;
pub use spans::{
    entries, entries_of_plan, initial_stack, merge_fields, Entry, Placement, SpanPlan, SpanWalker,
    Step, StepKind,
};
pub use tasks::{Task, Tasks, TokioIds};
