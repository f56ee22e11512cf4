//! `kiosk run` as an operator starts it: the binary against the fake Bot API, stopped
//! with SIGTERM.

use std::process::{Command, Stdio};
use std::time::Duration;

use kiosk::sandbox::telegram::FakeTelegram;
use serde_json::json;

use crate::helpers::{TOKEN, expect_text};

#[tokio::test]
async fn kiosk_run_answers_start_sets_localized_commands_and_stops_on_sigterm() {
    let telegram = FakeTelegram::start("127.0.0.1:0".parse().unwrap(), TOKEN)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_kiosk"))
        .arg("run")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TELOXIDE_TOKEN", TOKEN)
        .env("TELOXIDE_API_URL", telegram.api_url())
        .env(
            "KIOSK_DATABASE_URL",
            format!("sqlite://{}", dir.path().join("k.db").display()),
        )
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    let buyer = telegram.user(77, "Olga", None, "ru");
    buyer.send_command("/start");
    expect_text(&buyer, "Добро пожаловать").await;
    buyer.send_command("/help");
    expect_text(&buyer, "/paysupport").await;

    let default_scope = json!({"type": "default"});
    let ru = telegram
        .commands(&default_scope, "ru")
        .expect("Russian command list");
    assert!(
        ru.iter()
            .any(|(name, text)| name == "orders" && text == "Мои заказы"),
        "{ru:?}"
    );
    let en = telegram
        .commands(&default_scope, "en")
        .expect("English command list");
    assert!(
        en.iter()
            .any(|(name, text)| name == "orders" && text == "My orders"),
        "{en:?}"
    );

    let pid = child.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "kiosk run did not stop on SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "exit {status}: {stderr}");
    assert!(!stderr.contains(TOKEN), "the token reached the log");
}
