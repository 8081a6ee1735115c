//! End-to-end tests: real recorders, real ring files, the real `flightrec` binary, and child
//! processes killed at random moments. One binary; shared helpers in `helpers`.

mod alloc;
mod cli;
mod collectors;
mod contents;
mod corrupt;
mod crashes;
mod damage;
mod disk;
mod edges;
mod export;
mod findings;
mod findings_objects;
mod fleet;
mod folding;
mod helpers;
mod hostile;
mod kill_sweep;
mod layer;
mod lock_model;
mod locks;
mod no_syscalls;
mod operating;
mod packaging;
mod processes;
mod readme;
mod stacks;
mod stalls;
mod stops;
mod tables;
mod tasks;
mod triggers;
mod upload;
mod upload_keys;
mod viewer;
mod viewer_memory;
