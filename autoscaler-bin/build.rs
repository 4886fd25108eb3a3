//! Puts the commit the binary was built from into `--version` (`GCA_COMMIT`): from
//! `GCA_GIT_COMMIT` when set (the Dockerfile's `GIT_COMMIT` build argument, since the image's
//! build context holds no `.git`), else from git, else `unknown`.

use std::path::Path;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (out.status.success() && !text.is_empty()).then_some(text)
}

fn main() {
    println!("cargo:rerun-if-env-changed=GCA_GIT_COMMIT");
    let given = std::env::var("GCA_GIT_COMMIT")
        .ok()
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty());
    let commit = given.or_else(|| {
        // Built again when HEAD moves: a new commit, a checkout.
        if let Some(dir) = git(&["rev-parse", "--absolute-git-dir"]) {
            for file in ["HEAD", "packed-refs"] {
                let path = Path::new(&dir).join(file);
                if path.exists() {
                    println!("cargo:rerun-if-changed={}", path.display());
                }
            }
            if let Some(head) = git(&["symbolic-ref", "-q", "HEAD"]) {
                let path = Path::new(&dir).join(head);
                if path.exists() {
                    println!("cargo:rerun-if-changed={}", path.display());
                }
            }
        }
        git(&["rev-parse", "--short=12", "HEAD"])
    });
    println!(
        "cargo:rustc-env=GCA_COMMIT={}",
        commit.unwrap_or_else(|| "unknown".to_owned())
    );
}
