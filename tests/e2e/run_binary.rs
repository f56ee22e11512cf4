//! `kiosk run` as an operator starts it: the binary against the fake Bot API, stopped
//! with SIGTERM.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use kiosk::sandbox::telegram::FakeTelegram;
use serde_json::json;

use crate::helpers::{TOKEN, expect_text};

/// `kiosk run` against `telegram`, with a fresh database in `dir` plus `extra` variables;
/// stderr captured.
fn spawn_kiosk(
    telegram: &FakeTelegram,
    dir: &tempfile::TempDir,
    extra: &[(&str, String)],
) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kiosk"));
    command
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
        .stderr(Stdio::piped());
    for (key, value) in extra {
        command.env(key, value);
    }
    command.spawn().unwrap()
}

/// Sends SIGTERM and waits (at most 20 s) for the exit; asserts a clean one with the
/// token nowhere in the log, and returns the log.
async fn stop_kiosk(mut child: Child) -> String {
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
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
    stderr
}

/// A loopback port nothing listens on (yet).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn kiosk_run_answers_start_sets_localized_commands_and_stops_on_sigterm() {
    let telegram = FakeTelegram::start("127.0.0.1:0".parse().unwrap(), TOKEN)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let child = spawn_kiosk(&telegram, &dir, &[]);

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

    stop_kiosk(child).await;
}

#[tokio::test]
async fn kiosk_run_receives_signed_fazercards_and_cryptocardy_webhooks_on_kiosk_listen() {
    use kiosk::providers::fazercards::client::signature_header_value;
    use kiosk::sandbox::fazercards::{self, FakeOptions};

    let telegram = FakeTelegram::start("127.0.0.1:0".parse().unwrap(), TOKEN)
        .await
        .unwrap();
    let fazer = fazercards::start("127.0.0.1:0".parse().unwrap(), FakeOptions::default())
        .await
        .unwrap();
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let child = spawn_kiosk(
        &telegram,
        &dir,
        &[
            ("KIOSK_FAZERCARDS_URL", fazer.base_url().to_string()),
            ("KIOSK_FAZERCARDS_API_KEY", fazer.api_key().to_owned()),
            ("KIOSK_FAZERCARDS_WEBHOOK_SECRET", "hook-secret".to_owned()),
            ("KIOSK_LISTEN", format!("127.0.0.1:{port}")),
            (
                "KIOSK_CRYPTOCARDY_URL",
                "http://127.0.0.1:9/v1/api".to_owned(),
            ),
            ("KIOSK_SECRET_KEY", "5a".repeat(32)),
            (
                "KIOSK_CRYPTOCARDY_WEBHOOK_URL",
                format!("http://127.0.0.1:{port}/webhooks/cryptocardy"),
            ),
        ],
    );

    let url = format!("http://127.0.0.1:{port}/webhooks/fazercards");
    let body = r#"{"event":"order.status_changed","event_id":"0b4a7c1e-0000-4000-8000-000000000001","timestamp":"2026-11-22T00:00:00Z","data":{"order_id":"ord-404","status":"completed","kind":"gift_card"}}"#;
    let client = reqwest::Client::new();
    let post = |signature: String| {
        client
            .post(&url)
            .header("Content-Type", "application/json")
            .header("X-Webhook-Event", "order.status_changed")
            .header("X-Webhook-Event-Id", "0b4a7c1e-0000-4000-8000-000000000001")
            .header("X-Webhook-Signature", signature)
            .body(body)
            .send()
    };
    // Wait for the server to listen.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let forged = loop {
        match post("sha256=00".to_owned()).await {
            Ok(response) => break response,
            Err(_) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(error) => panic!("webhook server never answered: {error}"),
        }
    };
    assert_eq!(forged.status().as_u16(), 401, "a bad signature is refused");
    let signed = post(signature_header_value(b"hook-secret", body.as_bytes()))
        .await
        .unwrap();
    assert!(signed.status().is_success(), "{}", signed.status());
    let replay = post(signature_header_value(b"hook-secret", body.as_bytes()))
        .await
        .unwrap();
    assert!(
        replay.status().is_success(),
        "a replay is acknowledged: {}",
        replay.status()
    );

    // CryptoCardy's receiver shares the listener: forged refused, signed acknowledged.
    let cards = format!("http://127.0.0.1:{port}/webhooks/cryptocardy");
    let event = r#"{"id":"evt_1","event":"card.frozen","data":{"card_id":"card_unknown"}}"#;
    let secret = kiosk::cards::seal::webhook_secret(&kiosk::config::SecretKey([0x5a; 32]));
    let sign = |key: &[u8]| kiosk::providers::cryptocardy::sign_webhook(key, event.as_bytes());
    let forged = client
        .post(&cards)
        .header("X-CryptoCardy-Signature", sign(b"hook-secret"))
        .body(event)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status().as_u16(), 401);
    let signed = client
        .post(&cards)
        .header("X-CryptoCardy-Signature", sign(secret.expose().as_bytes()))
        .body(event)
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status().as_u16(), 200);

    let log = stop_kiosk(child).await;
    assert!(log.contains("receiving CryptoCardy card webhooks"), "{log}");
    assert!(
        !log.contains(secret.expose()),
        "the webhook secret reached the log"
    );
}

#[tokio::test]
async fn kiosk_run_in_webhook_mode_takes_updates_only_with_its_secret_token() {
    let telegram = FakeTelegram::start("127.0.0.1:0".parse().unwrap(), TOKEN)
        .await
        .unwrap();
    let port = free_port();
    let hook = format!("http://127.0.0.1:{port}/telegram/updates");
    let dir = tempfile::tempdir().unwrap();
    let child = spawn_kiosk(
        &telegram,
        &dir,
        &[
            ("KIOSK_WEBHOOK_URL", hook.clone()),
            ("KIOSK_LISTEN", format!("127.0.0.1:{port}")),
        ],
    );

    // The buyer writes before the shop is up: Telegram keeps the update and delivers it
    // once the webhook is registered and answers.
    let buyer = telegram.user(78, "Ivan", None, "en");
    buyer.send_command("/start");
    expect_text(&buyer, "Welcome").await;
    assert_eq!(telegram.webhook_url(), hook);
    assert!(
        telegram.calls_to("getUpdates").is_empty(),
        "no long polling in webhook mode"
    );
    buyer.send_command("/help");
    expect_text(&buyer, "/paysupport").await;
    let (delivered, _) = telegram.webhook_deliveries();
    assert!(delivered >= 2, "{delivered} updates delivered by webhook");

    // Anyone else posting to the route is refused and reaches no buyer.
    let forged = serde_json::json!({
        "update_id": 1,
        "message": {
            "message_id": 1, "date": 0,
            "chat": {"id": 79, "type": "private", "first_name": "Mallory"},
            "from": {"id": 79, "is_bot": false, "first_name": "Mallory"},
            "text": "/start"
        }
    });
    let client = reqwest::Client::new();
    for secret in [None, Some("guessed")] {
        let mut request = client.post(&hook).json(&forged);
        if let Some(secret) = secret {
            request = request.header("X-Telegram-Bot-Api-Secret-Token", secret);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), 401, "secret {secret:?}");
    }

    stop_kiosk(child).await;
    // The shop has stopped, so every update it took has been answered by now.
    let answered_mallory = telegram
        .calls()
        .iter()
        .any(|c| c.params.get("chat_id").and_then(|v| v.as_i64()) == Some(79));
    assert!(!answered_mallory, "a forged update reached the shop");
}
