//! Work spread over the machine's cores, and work that yields them to the page.

/// `f` over `items`, on as many threads as the machine has cores (each taking the next item
/// as it finishes one), results in the items' order.
pub(crate) fn par_map<T: Send, U: Send>(items: Vec<T>, f: impl Fn(T) -> U + Sync) -> Vec<U> {
    let n = items.len();
    let workers = std::thread::available_parallelism()
        .map_or(1, |p| p.get())
        .min(n.max(1));
    let queue = std::sync::Mutex::new(items.into_iter().enumerate());
    let results = std::sync::Mutex::new((0..n).map(|_| None).collect::<Vec<Option<U>>>());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let next = queue.lock().unwrap_or_else(|e| e.into_inner()).next();
                let Some((i, item)) = next else { break };
                let out = f(item);
                results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(out);
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .flatten()
        .collect()
}

/// Runs `f` on a thread of lower CPU priority (nice 10, which the threads it starts
/// inherit): the full read of recordings opened together goes on while the page is drawn
/// from their skeleton, and the page's questions, and the browser beside it, must not wait
/// behind it on a machine of two cores. Best effort: where the priority cannot be lowered,
/// `f` runs all the same.
pub(super) fn in_background<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    std::thread::scope(|s| {
        s.spawn(|| {
            let _ = rustix::process::setpriority_process(Some(rustix::thread::gettid()), 10);
            f()
        })
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}
