//! CryptoCardy webhooks end to end: with `KIOSK_CRYPTOCARDY_WEBHOOK_URL` set, every new
//! card registers the shop's receiver; the fake posts signed events to it, so the owner
//! hears about the funding, a top-up, a waiting 3-D Secure code and each payment (or
//! decline) long before the next poll
//! (set to ten minutes here, so only a webhook can be that fast).

use std::str::FromStr;
use std::time::Duration;

use kiosk::config::SecretKey;
use kiosk::engine::card_webhook::{WEBHOOK_PATH, webhook_router};
use kiosk::providers::cryptocardy::sign_webhook;
use rust_decimal::Decimal;

use crate::cards::issue_card;
use crate::helpers::{TestShop, WAIT, expect_text, tap, test_card_options};

const OWNER: i64 = 8_200_001;

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_webhooks_tell_the_owner_at_once_and_forged_ones_are_refused() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url: url::Url = format!("http://{}{WEBHOOK_PATH}", listener.local_addr().unwrap())
        .parse()
        .unwrap();
    let mut options = test_card_options();
    options.service.poll_interval = Duration::from_secs(600);
    let shop = TestShop::spawn_with_card_webhook(options, url.clone()).await;
    let desk = shop.cards.clone().expect("cards are offered");
    let server =
        tokio::spawn(axum::serve(listener, webhook_router(desk, shop.engine_bot())).into_future());
    let buyer = shop.buyer(OWNER, Some("hooked"), "en");

    // Funded on-chain: deposit.confirmed and card.funded arrive signed; the follower
    // (asleep for ten minutes) is not what tells the buyer.
    let (provider_id, _) = issue_card(&shop, &buyer).await;
    shop.cryptocardy
        .simulate_funding(&provider_id, dec("25"))
        .unwrap();
    expect_text(&buyer, "is funded and active").await;
    // Both deliveries answered 200 (the fake counts them once our answer is back).
    let deadline = tokio::time::Instant::now() + WAIT;
    while shop.cryptocardy.counts().webhooks_sent < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{:?}",
            shop.cryptocardy.counts()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(shop.cryptocardy.counts().webhooks_failed, 0);

    // A top-up of the live card lands in its wallet: the owner hears it, with the way
    // onto the card. (The first funding went onto the card and said nothing of this.)
    shop.cryptocardy
        .simulate_funding(&provider_id, dec("10"))
        .unwrap();
    let deposit = expect_text(&buyer, "the card's wallet now holds $10.00").await;
    assert!(
        deposit
            .button_with_text("⬆️ Move wallet money onto the card")
            .is_some()
    );
    let deposits = buyer
        .chat()
        .iter()
        .filter(|m| m.from_bot && m.body().contains("Your deposit for"))
        .count();
    assert_eq!(deposits, 1, "{:#?}", buyer.chat());

    // A merchant asks for 3-D Secure: the owner is told, and the code is one tap away.
    let otp = shop
        .cryptocardy
        .simulate_3ds(&provider_id, "SPOTIFY", dec("9.99"))
        .unwrap();
    expect_text(&buyer, "is waiting for its 3-D Secure code").await;
    tap(&buyer, "🔐 Show the code").await;
    expect_text(&buyer, &format!("<code>{otp}</code>")).await;

    // Payments with the card: what it cost and the balance after, or the decline with
    // a way to fund the card.
    assert!(
        shop.cryptocardy
            .simulate_purchase(&provider_id, "COFFEE SHOP", dec("2.25"))
            .unwrap()
    );
    let spent = expect_text(&buyer, "$2.25 spent at COFFEE SHOP").await;
    assert!(spent.body().contains("Balance: $22.75"), "{}", spent.body());
    assert!(
        !shop
            .cryptocardy
            .simulate_purchase(&provider_id, "BIG TV <STORE>", dec("900"))
            .unwrap()
    );
    let declined = expect_text(&buyer, "was declined").await;
    assert!(
        declined.body().contains("$900.00 at BIG TV &lt;STORE&gt;"),
        "{}",
        declined.body()
    );
    assert!(declined.button_with_text("➕ Fund").is_some());

    // Two events and a woken follower saw the card active: the buyer heard it once.
    let ready = buyer
        .chat()
        .iter()
        .filter(|m| m.from_bot && m.body().contains("is funded and active"))
        .count();
    assert_eq!(ready, 1, "{:#?}", buyer.chat());

    // Unsigned and forged deliveries are refused; a signed one about no card of ours is
    // acknowledged and tells nobody anything.
    let body = format!(
        r#"{{"id":"evt_x1","event":"card.terminated","data":{{"card_id":"{provider_id}","status":"terminated"}}}}"#
    );
    let client = reqwest::Client::new();
    let unsigned = client.post(url.clone()).body(body.clone()).send().await;
    assert_eq!(unsigned.unwrap().status().as_u16(), 401);
    let forged = client
        .post(url.clone())
        .header(
            "X-CryptoCardy-Signature",
            sign_webhook(b"guess", body.as_bytes()),
        )
        .body(body.clone())
        .send()
        .await;
    assert_eq!(forged.unwrap().status().as_u16(), 401);
    let secret = kiosk::cards::seal::webhook_secret(&SecretKey([0x5a; 32]));
    let stranger = r#"{"id":"evt_x2","event":"card.frozen","data":{"card_id":"card_not_ours"}}"#;
    let signed = client
        .post(url.clone())
        .header(
            "X-Webhook-Signature",
            format!(
                "sha256={}",
                sign_webhook(secret.expose().as_bytes(), stranger.as_bytes())
            ),
        )
        .body(stranger)
        .send()
        .await;
    assert_eq!(signed.unwrap().status().as_u16(), 200);
    // The forged "terminated" changed nothing.
    let row = shop.store.cards_of_owner(OWNER).await.unwrap();
    assert_eq!(row[0].state, kiosk::cards::CardState::Active);
    server.abort();
}
