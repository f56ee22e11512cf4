//! `kiosk demo` through its HTTP API, as the page drives it: a whole purchase by JSON
//! calls, followed on the server-sent event stream; bad requests answered, not obeyed;
//! a data directory that keeps the database and its key.

use std::collections::BTreeSet;

use kiosk::demo::{ADMIN, BUYER, Demo, DemoOptions};
use kiosk::domain::OrderStatus;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::helpers::WAIT;

fn options(data: Option<std::path::PathBuf>) -> DemoOptions {
    DemoOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        data,
    }
}

/// The `text/event-stream` of `/api/events`, read event by event.
struct Events {
    response: reqwest::Response,
    buffer: String,
    seen: BTreeSet<String>,
}

impl Events {
    async fn open(client: &reqwest::Client, base: &str) -> Events {
        let response = client
            .get(format!("{base}api/events"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let content_type = response.headers()["content-type"].to_str().unwrap();
        assert!(
            content_type.starts_with("text/event-stream"),
            "{content_type}"
        );
        Events {
            response,
            buffer: String::new(),
            seen: BTreeSet::new(),
        }
    }

    /// The next event as (name, data), or `None` when `until` passes first.
    async fn next(&mut self, until: Instant) -> Option<(String, Value)> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut name = String::from("message");
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        name = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if data.is_empty() {
                    continue; // a keep-alive comment
                }
                let data: Value = serde_json::from_str(&data).unwrap();
                if name == "chat" {
                    self.seen
                        .insert(data["type"].as_str().unwrap_or("?").to_owned());
                }
                return Some((name, data));
            }
            let chunk = tokio::time::timeout_at(until, self.response.chunk())
                .await
                .ok()?
                .unwrap()?;
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }
}

struct Page {
    client: reqwest::Client,
    base: String,
}

impl Page {
    async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn messages(&self, who: &str) -> Vec<Value> {
        let chat: Value = self
            .get(&format!("api/chat/{who}"))
            .await
            .json()
            .await
            .unwrap();
        chat["messages"].as_array().cloned().unwrap_or_default()
    }

    /// Waits, woken by the event stream, until `find` picks something from the chat.
    async fn wait<T>(
        &self,
        events: &mut Events,
        who: &str,
        what: &str,
        find: impl Fn(&[Value]) -> Option<T>,
    ) -> T {
        let until = Instant::now() + WAIT;
        loop {
            let messages = self.messages(who).await;
            if let Some(found) = find(&messages) {
                return found;
            }
            if events.next(until).await.is_none() {
                panic!("no {what} in the chat: {messages:#?}");
            }
        }
    }

    /// Waits for a bot button whose label starts with `label` and taps it.
    async fn tap(&self, events: &mut Events, who: &str, label: &str) {
        let (message_id, data) = self
            .wait(events, who, &format!("button {label:?}"), |messages| {
                messages.iter().rev().find_map(|m| {
                    let buttons = m["inline_keyboard"].as_array()?;
                    buttons
                        .iter()
                        .flat_map(|r| r.as_array().cloned().unwrap_or_default())
                        .find_map(|b| {
                            let text = b["text"].as_str()?;
                            let data = b["callback_data"].as_str()?;
                            text.starts_with(label)
                                .then(|| (m["message_id"].as_i64().unwrap_or(0), data.to_owned()))
                        })
                })
            })
            .await;
        let (status, body) = self
            .post(
                &format!("api/chat/{who}/tap"),
                json!({"message_id": message_id, "data": data}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }

    async fn text(&self, events: &mut Events, who: &str, needle: &str) -> Value {
        self.wait(events, who, needle, |messages| {
            messages
                .iter()
                .rev()
                .find(|m| {
                    m["from_bot"] == true && m["text"].as_str().is_some_and(|t| t.contains(needle))
                })
                .cloned()
        })
        .await
    }
}

#[tokio::test]
async fn a_purchase_through_the_json_api_arrives_and_the_stream_follows_it() {
    let demo = Demo::start(options(None)).await.unwrap();
    let page = Page {
        client: reqwest::Client::new(),
        base: demo.url(),
    };

    let index = page.get("").await;
    assert_eq!(index.status(), 200);
    let csp = index.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(index.text().await.unwrap().contains("Sandbox"));
    for asset in ["app.js", "app.css"] {
        assert_eq!(page.get(asset).await.status(), 200);
    }
    let info: Value = page.get("api/info").await.json().await.unwrap();
    assert_eq!(info["sandbox"], true);
    assert_eq!(info["people"]["admin"]["id"], ADMIN.id);
    assert_eq!(info["people"]["buyer"]["id"], BUYER.id);

    let mut events = Events::open(&page.client, &page.base).await;
    let (status, _) = page
        .post("api/chat/buyer/send", json!({"text": "/start"}))
        .await;
    assert_eq!(status, 200);
    page.tap(&mut events, "buyer", "⭐ Telegram Stars").await;
    page.tap(&mut events, "buyer", "👤 For me (@alex_buyer)")
        .await;
    page.text(&mut events, "buyer", "How many?").await;
    page.tap(&mut events, "buyer", "100").await;
    page.text(&mut events, "buyer", "Price:").await;
    page.tap(&mut events, "buyer", "Pay ").await;
    let invoice = page
        .wait(&mut events, "buyer", "invoice", |messages| {
            messages
                .iter()
                .rev()
                .find(|m| m["invoice"].is_object())
                .cloned()
        })
        .await;
    assert_eq!(invoice["invoice"]["currency"], "XTR");
    // Only the buyer's own invoice can be paid, and only as an invoice.
    let (status, _) = page
        .post(
            "api/chat/admin/pay",
            json!({"message_id": invoice["message_id"]}),
        )
        .await;
    assert_eq!(status, 404);
    let (status, outcome) = page
        .post(
            "api/chat/buyer/pay",
            json!({"message_id": invoice["message_id"]}),
        )
        .await;
    assert_eq!(status, 200, "{outcome}");
    assert_eq!(outcome["outcome"], "paid");
    let done = page.text(&mut events, "buyer", "is complete").await;
    assert!(
        done["text"].as_str().unwrap().contains("@alex_buyer"),
        "{done}"
    );
    let order = demo
        .store()
        .orders_of_buyer(BUYER.id, 1, 0)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(order.status, OrderStatus::Completed);
    for kind in [
        "message_added",
        "message_edited",
        "callback_answered",
        "invoice_sent",
        "pre_checkout_answered",
        "payment_completed",
    ] {
        assert!(events.seen.contains(kind), "no {kind} in {:?}", events.seen);
    }

    // The admin's chat is their own; the command menu is the bot's.
    let (status, _) = page
        .post("api/chat/admin/send", json!({"text": "/balance"}))
        .await;
    assert_eq!(status, 200);
    let balance = page.text(&mut events, "admin", "Provider balances").await;
    assert!(
        balance["text"].as_str().unwrap().contains("fragment"),
        "{balance}"
    );
    let commands: Value = page
        .get("api/chat/buyer/commands")
        .await
        .json()
        .await
        .unwrap();
    assert!(
        commands
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["command"] == "start"),
        "{commands}"
    );
    demo.shutdown().await;
}

#[tokio::test]
async fn a_photo_the_bot_sends_is_served_as_an_image() {
    use teloxide::prelude::*;
    use teloxide::types::InputFile;

    let demo = Demo::start(options(None)).await.unwrap();
    let page = Page {
        client: reqwest::Client::new(),
        base: demo.url(),
    };
    let mut events = Events::open(&page.client, &page.base).await;
    page.post("api/chat/buyer/send", json!({"text": "/start"}))
        .await;
    page.text(&mut events, "buyer", "Welcome").await;
    let png = kiosk::checkout::qr_png("bitcoin:bc1qexample?amount=0.001").unwrap();
    let bot = Bot::new(kiosk::demo::TOKEN).set_api_url(demo.telegram().api_url().parse().unwrap());
    bot.send_photo(
        ChatId(BUYER.id),
        InputFile::memory(png.clone()).file_name("qr.png"),
    )
    .await
    .unwrap();
    let file_id = page
        .wait(&mut events, "buyer", "photo", |messages| {
            messages
                .iter()
                .rev()
                .find_map(|m| m["photo"]["file_id"].as_str().map(str::to_owned))
        })
        .await;
    let image = page.get(&format!("api/files/{file_id}")).await;
    assert_eq!(image.status(), 200);
    assert_eq!(image.headers()["content-type"], "image/png");
    assert_eq!(image.headers()["x-content-type-options"], "nosniff");
    assert_eq!(image.bytes().await.unwrap().as_ref(), png.as_slice());
    demo.shutdown().await;
}

#[tokio::test]
async fn the_chain_buttons_pay_the_newest_checkout_and_fund_the_newest_card() {
    use kiosk::domain::{Email, OrderId, ProductFamily};
    use kiosk::providers::cryptorefills::CryptorefillsProvider;
    use kiosk::providers::cryptorefills::client::{ClientIdentity, CryptorefillsClient, PartnerId};
    use kiosk::providers::{OrderRequest, ProductRef, Provider, ProviderId, Recipient};

    let demo = Demo::start(options(None)).await.unwrap();
    let page = Page {
        client: reqwest::Client::new(),
        base: demo.url(),
    };

    // A buyer-paid order waiting for coins, placed as the shop's adapter places it.
    let refills = demo.cryptorefills();
    let client = CryptorefillsClient::new(
        refills.base_url(),
        ClientIdentity {
            partner_id: PartnerId::new(refills.partner_id()),
            app_version: "kiosk-test".into(),
            forwarded_for: "127.0.0.1".parse().unwrap(),
            user_agent: ClientIdentity::default_user_agent(),
        },
        std::time::Duration::from_secs(5),
    )
    .unwrap();
    let provider = CryptorefillsProvider::from_client(client, "US");
    let request = OrderRequest {
        product: ProductRef {
            provider: ProviderId::Cryptorefills,
            family: ProductFamily::GiftCard,
            category: "US:Airbnb".into(),
            item: "100 USD".into(),
            variant: None,
        },
        recipient: Recipient::Email(Email::parse("buyer@example.com").unwrap()),
        quantity: 1,
        amount: None,
    };
    let order = provider
        .place_order(OrderId(1), "demo-test-key", &request)
        .await
        .unwrap();
    let id = order.provider_order_id;
    assert_eq!(refills.latest_awaiting_payment(), Some(id.clone()));
    let (status, answer) = page.post("api/simulate/crypto", json!({})).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["order_id"], id.as_str());
    assert_eq!(refills.latest_awaiting_payment(), None);
    let (status, _) = page.post("api/simulate/crypto", json!({})).await;
    assert_eq!(status, 409);

    // A card issued and waiting for its first top-up.
    let cards = demo.cryptocardy();
    let issued = page
        .client
        .get(cards.base_url())
        .query(&[("asset", "USDT-TRC20"), ("card", "visa")])
        .send()
        .await
        .unwrap();
    assert_eq!(issued.status(), 200);
    let card = cards.card_ids().pop().unwrap();
    assert_eq!(cards.state_of(&card), Some("pending_top_up"));
    let (status, answer) = page
        .post("api/simulate/card", json!({"amount": "25.50"}))
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["card_id"], card.as_str());
    assert_eq!(cards.state_of(&card), Some("active"));
    assert_eq!(
        cards.balance_of(&card),
        Some(rust_decimal::Decimal::new(2550, 2))
    );
    let (status, _) = page.post("api/simulate/card", json!({})).await;
    assert_eq!(status, 409);
    // The page's server also receives the card fake's webhooks (signed, so an
    // unsigned post is refused).
    let (status, _) = page
        .post(
            "webhooks/cryptocardy",
            json!({"id": "evt_1", "event": "card.funded", "data": {"card_id": card}}),
        )
        .await;
    assert_eq!(status, 401);
    demo.shutdown().await;
}

#[tokio::test]
async fn bad_requests_are_answered_and_change_nothing() {
    let demo = Demo::start(options(None)).await.unwrap();
    let page = Page {
        client: reqwest::Client::new(),
        base: demo.url(),
    };
    assert_eq!(page.get("api/chat/mallory").await.status(), 404);
    assert_eq!(page.get("api/chat/7000001").await.status(), 404);
    assert_eq!(page.get("nowhere").await.status(), 404);
    assert_eq!(page.get("api/files/no-such-file").await.status(), 404);
    let cases = [
        ("api/chat/buyer/send", json!({"text": "   "}), 400),
        ("api/chat/buyer/send", json!({"words": "hi"}), 400),
        (
            "api/chat/buyer/send",
            json!({"text": "x".repeat(4097)}),
            400,
        ),
        ("api/chat/nobody/send", json!({"text": "hi"}), 404),
        (
            "api/chat/buyer/tap",
            json!({"message_id": 999, "data": "f:gift_card"}),
            404,
        ),
        ("api/chat/buyer/tap", json!({"message_id": "one"}), 400),
        ("api/chat/buyer/pay", json!({"message_id": 999}), 404),
        ("api/simulate/crypto", json!({}), 409),
        ("api/simulate/card", json!({}), 409),
        ("api/simulate/card", json!({"amount": "-5"}), 400),
        ("api/simulate/card", json!({"amount": "1e9"}), 400),
    ];
    for (path, body, expected) in cases {
        let (status, answer) = page.post(path, body.clone()).await;
        assert_eq!(status, expected, "{path} {body}: {answer}");
        assert!(answer["error"].is_string(), "{path} {body}: {answer}");
    }
    // Nothing reached the bot.
    assert!(page.messages("buyer").await.is_empty());
    demo.shutdown().await;
}

#[tokio::test]
async fn a_data_directory_keeps_the_database_and_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo");
    let demo = Demo::start(options(Some(data.clone()))).await.unwrap();
    demo.shutdown().await;
    let key = std::fs::read_to_string(data.join("secret.key")).unwrap();
    assert_eq!(key.len(), 64);
    assert!(key.chars().all(|c| c.is_ascii_hexdigit()));
    assert!(data.join("kiosk.db").exists());
    let again = Demo::start(options(Some(data.clone()))).await.unwrap();
    again.shutdown().await;
    assert_eq!(
        std::fs::read_to_string(data.join("secret.key")).unwrap(),
        key
    );
}

#[tokio::test]
async fn kiosk_demo_prints_its_address_serves_the_page_and_stops_on_sigterm() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};

    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_kiosk"))
        .args(["demo", "--listen", "127.0.0.1:0"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TMPDIR", dir.path())
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    // The address line, read off the async runtime.
    let url = tokio::task::spawn_blocking(move || {
        std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .find_map(|line| {
                line.split_whitespace()
                    .find(|w| w.starts_with("http://127.0.0.1:"))
                    .map(str::to_owned)
            })
    });
    let url = tokio::time::timeout(WAIT, url)
        .await
        .expect("no address printed in time")
        .unwrap()
        .expect("kiosk demo printed no address");
    let info: Value = reqwest::get(format!("{url}api/info"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["sandbox"], true);
    // The temporary database directory exists while the demo runs…
    let demo_dirs = || {
        std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with("kiosk-demo-"))
            .count()
    };
    assert_eq!(demo_dirs(), 1);

    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "kiosk demo did not stop on SIGTERM"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(status.success(), "exit {status}");
    // …and is gone after it.
    assert_eq!(demo_dirs(), 0);
}
