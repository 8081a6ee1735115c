//! What a user downloads is what is tested: `tracing-flightrec` and `flightrec-format` as
//! `cargo package` packs them (the `.crate` files, unpacked), depended on by version from a
//! fresh crate through `[patch.crates-io]`, build and record a dump that `flightrec` reads.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::helpers::*;

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

/// Runs `cmd`, which must succeed (`what` says what failed, with its stderr).
fn succeed(cmd: &mut Command, what: &str) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {what}: {e}"));
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `cargo package` of the two crates a recording service depends on (and of the reading
/// layer, which `tracing-flightrec`'s tests depend on), unpacked into `into`:
/// each crate's directory, by name.
fn packaged(root: &Path, into: &Path) -> Vec<(String, PathBuf)> {
    let target = root.join("target/package-check");
    succeed(
        cargo()
            .current_dir(root)
            .args(["package", "--no-verify", "--allow-dirty", "--quiet"])
            .args([
                "-p",
                "flightrec-format",
                "-p",
                "flightrec-analysis",
                "-p",
                "tracing-flightrec",
            ])
            .arg("--target-dir")
            .arg(&target),
        "cargo package",
    );
    let version = env!("CARGO_PKG_VERSION");
    ["flightrec-format", "tracing-flightrec"]
        .iter()
        .map(|name| {
            let file = target.join(format!("package/{name}-{version}.crate"));
            succeed(
                Command::new("tar")
                    .arg("xzf")
                    .arg(&file)
                    .arg("-C")
                    .arg(into),
                "tar",
            );
            let dir = into.join(format!("{name}-{version}"));
            // The licenses ship inside the package, as files.
            for license in ["LICENSE-MIT", "LICENSE-APACHE", "README.md"] {
                let p = dir.join(license);
                assert!(
                    p.is_file() && std::fs::metadata(&p).unwrap().len() > 1000,
                    "{} in the package",
                    p.display()
                );
            }
            (name.to_string(), dir)
        })
        .collect()
}

#[test]
fn a_fresh_crate_depending_on_the_packaged_flightrec_by_version_builds_and_records() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let work = scratch();
    let crates = packaged(&root, work.path());
    let app = work.path().join("app");
    std::fs::create_dir_all(app.join("src")).unwrap();
    let patches: String = crates
        .iter()
        .map(|(name, dir)| format!("{name} = {{ path = {:?} }}\n", dir.to_str().unwrap()))
        .collect();
    std::fs::write(
        app.join("Cargo.toml"),
        format!(
            "[package]\nname = \"packaged-app\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\
             publish = false\n\n[dependencies]\ntracing-flightrec = \"{}\"\ntracing = \"0.1\"\n\n\
             [patch.crates-io]\n{patches}\n[workspace]\n",
            env!("CARGO_PKG_VERSION")
        ),
    )
    .unwrap();
    std::fs::write(
        app.join("src/main.rs"),
        r#"fn main() -> Result<(), tracing_flightrec::Error> {
    let recorder = tracing_flightrec::init()?;
    tracing::info!(order = 7, "priced");
    println!("{}", recorder.snapshot()?.display());
    Ok(())
}
"#,
    )
    .unwrap();
    let dumps = scratch();
    let out = succeed(
        cargo()
            .args(["run", "--quiet", "--manifest-path"])
            .arg(app.join("Cargo.toml"))
            // Shared with the other small crate the tests build: the same dependencies.
            .arg("--target-dir")
            .arg(root.join("target/keep-check"))
            .env("FLIGHTREC_DIR", dumps.path())
            .env("FLIGHTREC_SERVICE", "packaged")
            .env_remove("FLIGHTREC_DUMP_DIR")
            .env_remove("FLIGHTREC_KEEP"),
        "the fresh crate builds and runs",
    );
    let dump = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    assert!(dump.starts_with(dumps.path()), "{}", dump.display());
    let info = info_json(&dump);
    assert_eq!(info["service"], "packaged");
    let records = cat_json(&dump);
    assert!(
        records
            .iter()
            .any(|r| r["message"] == "priced" || r.to_string().contains("priced")),
        "{records:?}"
    );
}
