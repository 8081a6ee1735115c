//! What a recorder is called and where its files go when nothing says otherwise: the
//! service's name, the ring and dump directories (from the environment, `Env`), the host's
//! name, and sizes as the environment writes them.

use std::path::{Path, PathBuf};

use crate::env::Env;

/// A size as the environment writes it: bytes, or with a K, M or G suffix.
pub(crate) fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last()? {
        (i, 'k' | 'K') => (&s[..i], 1u64 << 10),
        (i, 'm' | 'M') => (&s[..i], 1 << 20),
        (i, 'g' | 'G') => (&s[..i], 1 << 30),
        _ => (s, 1),
    };
    num.trim().parse::<u64>().ok()?.checked_mul(mult)
}

/// A test binary's name without the hash cargo appends (`transfers-1a2b3c4d5e6f7a8b` is
/// `transfers`), so that its dumps are named after the test target.
pub(crate) fn test_binary_name(exe: &str) -> String {
    match exe.rsplit_once('-') {
        Some((name, hash))
            if !name.is_empty()
                && hash.len() == 16
                && hash.bytes().all(|b| b.is_ascii_hexdigit()) =>
        {
            name.to_string()
        }
        _ => exe.to_string(),
    }
}

pub(crate) fn default_service() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "service".into())
}

/// Who the default directories belong to: `$USER`, else the uid (`uid-1000`), so two
/// users without `USER` set (a service, a container) never share one.
fn user_suffix(env: &Env) -> String {
    use std::os::unix::fs::MetadataExt;
    match &env.user {
        Some(u) => flightrec_format::dump::sanitize(u),
        None => std::fs::metadata("/proc/self")
            .map_or_else(|_| "user".into(), |m| format!("uid-{}", m.uid())),
    }
}

/// Where the ring goes when nothing says otherwise: `$FLIGHTREC_DIR`, else
/// `$XDG_RUNTIME_DIR/flightrec`, else `/dev/shm/flightrec-$USER`, else the temp directory.
pub(crate) fn ring_dir_in(env: &Env) -> PathBuf {
    if let Some(d) = &env.dir {
        return d.into();
    }
    if let Some(d) = &env.xdg_runtime_dir {
        return Path::new(d).join("flightrec");
    }
    let user = user_suffix(env);
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        return shm.join(format!("flightrec-{user}"));
    }
    std::env::temp_dir().join(format!("flightrec-{user}"))
}

/// Where dumps go when nothing says otherwise: `$FLIGHTREC_DUMP_DIR`, else
/// `$FLIGHTREC_DIR`, else `$XDG_STATE_HOME/flightrec`, else `/var/tmp/flightrec-$USER`
/// (persistent across reboots).
pub fn default_dump_dir() -> PathBuf {
    dump_dir_in(&Env::read())
}

pub(crate) fn dump_dir_in(env: &Env) -> PathBuf {
    if let Some(d) = env.dump_dir.as_ref().or(env.dir.as_ref()) {
        return d.into();
    }
    if let Some(d) = &env.xdg_state_home {
        return Path::new(d).join("flightrec");
    }
    Path::new("/var/tmp").join(format!("flightrec-{}", user_suffix(env)))
}

pub(crate) fn hostname(env: &Env) -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .or_else(|| env.hostname.clone())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::{parse_size, test_binary_name};

    #[test]
    fn a_test_binary_is_named_without_cargos_hash() {
        assert_eq!(test_binary_name("transfers-1a2b3c4d5e6f7a8b"), "transfers");
        assert_eq!(test_binary_name("my-app-0123456789abcdef"), "my-app");
        assert_eq!(test_binary_name("my-app"), "my-app");
        assert_eq!(test_binary_name("tool-0123"), "tool-0123");
        assert_eq!(test_binary_name("-0123456789abcdef"), "-0123456789abcdef");
    }

    #[test]
    fn sizes_parse_with_suffixes() {
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("16M"), Some(16 << 20));
        assert_eq!(parse_size("1g"), Some(1 << 30));
        assert_eq!(parse_size("x"), None);
        assert_eq!(parse_size(""), None);
    }
}
