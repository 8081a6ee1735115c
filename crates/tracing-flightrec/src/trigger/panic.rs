//! A panic hook, chained before the one already installed: it records the panic as an
//! event (message, location, thread), then its backtrace as a second event when one is
//! captured, and writes a dump before the process goes on unwinding or aborting
//! (`panic = "abort"` runs the hook first too).

use std::backtrace::{Backtrace, BacktraceStatus};
use std::panic::PanicHookInfo;
use std::sync::Weak;

use flightrec_format::TriggerReason;

use crate::shared::Shared;

pub(crate) fn install(shared: Weak<Shared>) {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info: &PanicHookInfo<'_>| {
        if let Some(shared) = shared.upgrade() {
            record_and_dump(&shared, info);
        }
        previous(info);
    }));
}

fn record_and_dump(shared: &Shared, info: &PanicHookInfo<'_>) {
    let message = match info.payload().downcast_ref::<&str>() {
        Some(s) => (*s).to_string(),
        None => match info.payload().downcast_ref::<String>() {
            Some(s) => s.clone(),
            None => "Box<dyn Any>".to_string(),
        },
    };
    let location = info
        .location()
        .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
        .unwrap_or_default();
    let thread = std::thread::current();
    let name = thread.name().unwrap_or("<unnamed>").to_string();
    // Stamp and record the panic first: resolving a backtrace's symbols can take a tenth of
    // a second, and the timeline must show the panic where it happened.
    let t = super::trigger(
        TriggerReason::Panic,
        0,
        crate::ring::writer::os_tid(),
        format!("thread '{name}' panicked at {location}: {message}"),
    );
    tracing::error!(
        target: "flightrec::panic",
        panic_message = %message,
        location = %location,
        thread = %name,
        "thread '{name}' panicked at {location}: {message}"
    );
    let backtrace = Backtrace::capture();
    if backtrace.status() == BacktraceStatus::Captured {
        tracing::error!(
            target: "flightrec::panic",
            backtrace = %backtrace,
            "backtrace of the panic in thread '{name}'"
        );
    }
    if shared.dump(&t).is_ok() {
        // The recording's evidence is this dump: a recording kept at exit
        // (`FLIGHTREC_KEEP`) would be a second dump of it, with every finding twice.
        shared
            .panic_dumped
            .store(true, std::sync::atomic::Ordering::Release);
    }
}
