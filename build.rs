//! Names the build: the git commit the binary was built from (`FLEETOP_BUILD` overrides it, for packagers
//! building outside a checkout), so a jump host can tell an agent of the same version but other code.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=FLEETOP_BUILD");
    for path in [".git/HEAD", ".git/refs/heads", ".git/packed-refs"] {
        if std::path::Path::new(path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    let build = std::env::var("FLEETOP_BUILD")
        .ok()
        .filter(|b| !b.is_empty())
        .or_else(git_commit)
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=FLEETOP_BUILD={build}");
}

fn git_commit() -> Option<String> {
    let out = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()?;
    let commit = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && commit.bytes().all(|b| b.is_ascii_hexdigit()) && !commit.is_empty())
        .then_some(commit)
}
