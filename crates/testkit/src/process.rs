//! The workspace's binaries, run as users run them.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output};
use std::sync::Once;
use std::time::Duration;

static BUILD: Once = Once::new();

/// Path of a workspace binary, built with the caller's profile. The binaries are built once
/// per test process (`cargo build --workspace --bins`), so they are never stale: a test of
/// one crate can run another crate's binary, which `CARGO_BIN_EXE_*` does not offer.
pub fn workspace_bin(name: &str) -> PathBuf {
    BUILD.call_once(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
        // A release build (e.g. the accounting example) looks for release binaries below.
        let profile: &[&str] = if cfg!(debug_assertions) {
            &[]
        } else {
            &["--release"]
        };
        let status = Command::new(cargo)
            .args(["build", "--workspace", "--bins", "--quiet"])
            .args(profile)
            .current_dir(repo_root())
            .status()
            .expect("run cargo build");
        assert!(status.success(), "cargo build --workspace --bins failed");
    });
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let path = dir.join(name);
    assert!(path.exists(), "{} was not built", path.display());
    path
}

/// The repository's root directory.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo root")
}

/// Runs a command to completion, returning its output; panics with its stderr if it fails.
pub fn run_ok(command: &mut Command) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// A child process that is killed if the test ends before it does.
pub struct Guard(pub Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sends `child` SIGTERM (a clean stop).
pub fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success(), "kill -TERM {} failed", child.id());
}

/// Waits at most `timeout` for `child` to exit; kills it and panics if it does not.
pub fn wait_exit(child: &mut Child, timeout: Duration) -> ExitStatus {
    let mut status = None;
    let waited = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        crate::wait_until(timeout, "the process to exit", || {
            status = child.try_wait().expect("try_wait");
            status.is_some()
        })
    }));
    if waited.is_err() {
        child.kill().ok();
        panic!("the process did not exit within {timeout:?}");
    }
    status.expect("exited")
}

impl Guard {
    /// Sends the process SIGTERM (a clean stop).
    pub fn sigterm(&self) {
        sigterm(&self.0);
    }

    /// Waits (at most `timeout`, naming `what` if it runs out) for the process to exit;
    /// returns its status and what it wrote on stdout, when that was piped.
    pub fn finish(mut self, timeout: Duration, what: &str) -> (ExitStatus, String) {
        let mut status = None;
        crate::wait_until(timeout, what, || {
            status = self.0.try_wait().expect("try_wait");
            status.is_some()
        });
        let mut stdout = String::new();
        if let Some(mut pipe) = self.0.stdout.take() {
            std::io::Read::read_to_string(&mut pipe, &mut stdout).expect("stdout");
        }
        (status.expect("exited"), stdout)
    }
}
