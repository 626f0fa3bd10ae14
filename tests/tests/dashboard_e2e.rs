//! The real dashboard binary in a pseudo-terminal (tmux) against a running control plane:
//! log in with the code read from the outbox, press grow, see the second worker appear.
use std::process::Command;
use std::time::Duration;

use gallery_tests::{fresh_database, wait_until, ControlPlane};

/// A detached tmux session; killed when dropped.
struct Tmux {
    name: String,
}

impl Tmux {
    fn start(command: &str, env: &[(&str, &str)]) -> Tmux {
        let name = format!("gallery-e2e-{}", std::process::id());
        let mut cmd = Command::new("tmux");
        cmd.args(["new-session", "-d", "-s", &name, "-x", "120", "-y", "40"]);
        for (k, v) in env {
            cmd.args(["-e", &format!("{k}={v}")]);
        }
        assert!(cmd
            .arg(command)
            .status()
            .expect("tmux (installed by scripts/test)")
            .success());
        Tmux { name }
    }

    fn keys(&self, keys: &[&str]) {
        assert!(Command::new("tmux")
            .args(["send-keys", "-t", &self.name])
            .args(keys)
            .status()
            .unwrap()
            .success());
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.name])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    async fn wait_for(&self, what: &str, needle: &str) -> String {
        wait_until(what, Duration::from_secs(60), || {
            let screen = self.screen();
            async move { screen.contains(needle).then_some(screen) }
        })
        .await
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.name])
            .status();
    }
}

#[tokio::test]
async fn operator_logs_in_and_grows_the_pool_from_the_dashboard() {
    let db = fresh_database("tui").await;
    let dir = tempfile::tempdir().unwrap();
    let mut cp = ControlPlane::spawn(
        &db,
        dir.path(),
        "operators = [\"ops@example.com\"]\nhealth_interval_secs = 0.5\n",
    );
    let http = reqwest::Client::new();
    cp.wait_api(&http).await;

    let home = tempfile::tempdir().unwrap();
    let bin = gallery_tests::env("GALLERY_MANAGER_BIN");
    let tui = Tmux::start(
        &format!("{bin} --api {}", cp.api("")),
        &[
            ("HOME", home.path().to_str().unwrap()),
            ("XDG_CONFIG_HOME", home.path().to_str().unwrap()),
            ("TERM", "xterm-256color"),
        ],
    );
    tui.wait_for("the login screen", "Operator login").await;
    tui.keys(&["ops@example.com", "Enter"]);
    tui.wait_for("the code prompt", "Code sent to ops@example.com")
        .await;
    let mail = wait_until("the code in the outbox", Duration::from_secs(10), || {
        let files = cp.outbox();
        async move { files.last().map(|f| std::fs::read_to_string(f).unwrap()) }
    })
    .await;
    let at = mail.find("control plane is ").unwrap() + "control plane is ".len();
    tui.keys(&[&mail[at..at + 6], "Enter"]);
    tui.wait_for("the offer to save the token", "Save the token")
        .await;
    tui.keys(&["y"]);
    tui.wait_for("the first worker, healthy", "local-1   healthy")
        .await;
    assert!(
        home.path().join("gallery/token").exists(),
        "token saved for --once"
    );
    tui.wait_for("the balancer to be reported reachable", "● reachable")
        .await;

    tui.keys(&["+"]);
    let screen = tui
        .wait_for("the second worker to appear healthy", "local-2   healthy")
        .await;
    assert!(screen.contains("desired 2"), "{screen}");
    tui.wait_for("the pool gauge to count both", "2/2 healthy")
        .await;
    tui.keys(&["q"]);
}
