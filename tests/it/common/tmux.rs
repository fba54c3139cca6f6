//! A real terminal for end-to-end tests: tmux runs a command, send-keys drives it, capture-pane reads the
//! screen.
#![allow(dead_code)]

use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A tmux server of its own running one fleetop; killed on drop.
pub struct Tmux {
    socket: String,
}

impl Tmux {
    pub fn start(command: &str, home: &std::path::Path) -> Tmux {
        let socket = format!(
            "fleetop-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        let quoted_home = shlex::try_quote(home.to_str().unwrap())
            .unwrap()
            .into_owned();
        let full = format!("env HOME={quoted_home} XDG_CONFIG_HOME={quoted_home}/.config TERM=xterm-256color {command}");
        let out = Command::new("tmux")
            .args([
                "-L",
                &socket,
                "-f",
                "/dev/null",
                "new-session",
                "-d",
                "-x",
                "200",
                "-y",
                "50",
                &full,
            ])
            .output()
            .expect("tmux is installed by scripts/test");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmux { socket }
    }

    pub fn tmux(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .unwrap()
    }

    pub fn keys(&self, keys: &[&str]) {
        for k in keys {
            let out = self.tmux(&["send-keys", "-t", "0", k]);
            assert!(
                out.status.success(),
                "send-keys {k}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    pub fn screen(&self) -> String {
        String::from_utf8_lossy(&self.tmux(&["capture-pane", "-p", "-t", "0"]).stdout).into_owned()
    }

    /// Waits until the screen shows every one of `texts`; fails with the screen after `limit`.
    pub fn wait_for(&self, texts: &[&str], limit: Duration) -> String {
        self.wait_until(&format!("{texts:?}"), limit, |screen| {
            texts.iter().all(|t| screen.contains(t))
        })
    }

    /// Waits until `done(screen)`; fails naming `what`, with the screen, after `limit`.
    pub fn wait_until(&self, what: &str, limit: Duration, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let screen = self.screen();
            if done(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "waited for {what}; the screen shows:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn alive(&self) -> bool {
        self.tmux(&["has-session"]).status.success()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-server"]);
    }
}
