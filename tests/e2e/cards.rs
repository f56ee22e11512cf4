//! Virtual cards end to end: the real handler tree, the fake Telegram and the
//! CryptoCardy fake. A buyer issues a card, funds it on-chain (simulated), hears it is
//! active, sees its details in a spoiler that is then deleted, freezes and unfreezes it,
//! withdraws (bad input refused), terminates it only after confirming; another buyer's
//! forged taps reveal nothing; no PAN, CVV or seed reaches a log line.

use std::io::Write;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kiosk::cards::CardState;
use kiosk::providers::ratelimit::Limit;
use kiosk::sandbox::telegram::{ChatMessage, SimUser};
use rust_decimal::Decimal;

use crate::helpers::{TestShop, WAIT, expect_text, tap, test_card_options};

const OWNER: i64 = 8_100_001;
const STRANGER: i64 = 8_100_002;

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Whether `token` stands alone in `line` (not inside a longer run of digits).
fn has_token(line: &str, token: &str) -> bool {
    line.split(|c: char| !c.is_ascii_digit())
        .any(|t| t == token)
}

/// The newest bot message matching `pred`.
pub async fn wait_bot(
    user: &SimUser,
    what: &str,
    pred: impl Fn(&ChatMessage) -> bool,
) -> ChatMessage {
    user.wait_for(move |m| m.from_bot && pred(m), WAIT)
        .await
        .unwrap_or_else(|_| panic!("no bot message: {what}; chat: {:#?}", user.chat()))
}

/// From the menu to a card waiting for funding; returns the provider's card id and
/// the photo message with the funding address.
pub async fn issue_card(shop: &TestShop, buyer: &SimUser) -> (String, ChatMessage) {
    buyer.send_command("/start");
    tap(buyer, "💳 Virtual cards").await;
    tap(buyer, "➕ Issue a card").await;
    tap(buyer, "Visa").await;
    tap(buyer, "USDT-SOL").await;
    expect_text(buyer, "Issue a new virtual card?").await;
    tap(buyer, "✅ Issue the card").await;
    let photo = wait_bot(buyer, "the funding QR", |m| m.photo.is_some()).await;
    let provider_id = shop
        .cryptocardy
        .card_ids()
        .pop()
        .expect("a card at the fake");
    (provider_id, photo)
}

/// Waits until the buyer has been asked `n` times for a valid amount.
async fn wait_refusals(buyer: &SimUser, n: usize) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let seen = buyer
            .chat()
            .iter()
            .filter(|m| m.from_bot && m.body().contains("Send an amount in USD"))
            .count();
        if seen >= n {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{n} refusals expected; chat: {:#?}",
            buyer.chat()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Taps `data` as a button payload the buyer's client could forge on `message`.
async fn forge(buyer: &SimUser, message: i32, data: &str) -> Option<String> {
    let query = buyer.forge_tap(message, data).unwrap();
    buyer.wait_callback_answer(&query, WAIT).await.unwrap().text
}

// The subscriber is the process-wide default (as in the contract log test): a scoped
// one would miss events whose callsites another test registered first. Every test of
// this binary then logs into the capture; only this flow's secrets are looked for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_card_from_issue_to_termination_with_nothing_secret_in_the_logs() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .without_time()
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("the only global subscriber");
    let _ = tracing_log::LogTracer::init();

    let mut options = test_card_options();
    options.details_ttl = Duration::from_millis(700);
    let shop = TestShop::spawn_with_cards(options).await;
    let buyer = shop.buyer(OWNER, Some("card_owner"), "en");

    // Issue: the funding wallet as a QR photo, address in <code>; the row and the
    // sealed seed stored before it was shown.
    let (provider_id, photo) = issue_card(&shop, &buyer).await;
    let address = shop.cryptocardy.address_of(&provider_id).unwrap();
    let caption = photo.caption.clone().unwrap();
    assert!(
        caption.contains(&format!("<code>{address}</code>")),
        "{caption}"
    );
    assert!(caption.contains("<code>USDT-SOL</code>"), "{caption}");
    assert_eq!(photo.parse_mode.as_deref(), Some("HTML"));
    let rows = shop.store.cards_of_owner(OWNER).await.unwrap();
    assert_eq!(rows.len(), 1);
    let card = rows[0].id;
    assert!(rows[0].seed.is_some(), "the seed is stored (sealed)");
    assert_eq!(rows[0].state, CardState::PendingTopUp);
    let seed = shop.cryptocardy.seed_of(&provider_id).unwrap();
    assert!(
        !rows[0]
            .seed
            .as_ref()
            .unwrap()
            .ciphertext
            .windows(seed.len())
            .any(|w| w == seed.as_bytes()),
        "the seed is not stored in clear"
    );

    // Funded on-chain: the follower sees it and tells the buyer.
    shop.cryptocardy
        .simulate_funding(&provider_id, dec("50"))
        .unwrap();
    expect_text(&buyer, "is funded and active").await;
    tap(&buyer, "💳 Open the card").await;
    expect_text(&buyer, "Balance: $50.00").await;

    // Details: a spoiler, deleted after the (short) TTL, never stored.
    let pan = shop.cryptocardy.pan_of(&provider_id).unwrap();
    let cvv = shop.cryptocardy.cvv_of(&provider_id).unwrap();
    let grouped: String = pan
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    tap(&buyer, "👁 Show number and CVV").await;
    let details = wait_bot(&buyer, "the details", |m| m.body().contains("tg-spoiler")).await;
    assert!(
        details
            .body()
            .contains(&format!("<tg-spoiler><code>{grouped}</code></tg-spoiler>")),
        "{}",
        details.body()
    );
    assert!(
        details
            .body()
            .contains(&format!("<tg-spoiler><code>{cvv}</code></tg-spoiler>"))
    );
    assert_eq!(details.parse_mode.as_deref(), Some("HTML"));
    // Recorded for deletion (just after Telegram gave the message its id).
    let mut recorded = false;
    for _ in 0..25 {
        if !shop.store.card_detail_messages().await.unwrap().is_empty() {
            recorded = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(recorded, "the details message is recorded for deletion");
    let chat = buyer.chat_id();
    let deadline = tokio::time::Instant::now() + WAIT;
    while shop.telegram.message(chat, details.message_id).is_some() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "details message not deleted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!shop.telegram.calls_to("deleteMessage").is_empty());
    for _ in 0..50 {
        if shop.store.card_detail_messages().await.unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(shop.store.card_detail_messages().await.unwrap().is_empty());

    // Freeze and unfreeze.
    tap(&buyer, "❄️ Freeze").await;
    expect_text(&buyer, "is frozen").await;
    assert_eq!(shop.cryptocardy.state_of(&provider_id), Some("frozen"));
    tap(&buyer, "🔥 Unfreeze").await;
    expect_text(&buyer, "is active again").await;
    assert_eq!(shop.cryptocardy.state_of(&provider_id), Some("active"));

    // Withdraw: bad input refused politely, then an amount confirmed.
    tap(&buyer, "➖ Withdraw").await;
    expect_text(&buyer, "back to the card's wallet").await;
    buyer.send_text("ten dollars");
    expect_text(&buyer, "Send an amount in USD from 0.01 to 5000.00").await;
    buyer.send_text("-5");
    wait_refusals(&buyer, 2).await;
    buyer.send_text("10.005");
    wait_refusals(&buyer, 3).await;
    buyer.send_text("1000");
    expect_text(&buyer, "more than the card holds").await;
    assert_eq!(shop.cryptocardy.balance_of(&provider_id), Some(dec("50")));
    buyer.send_text("12.50");
    expect_text(&buyer, "Withdraw <b>$12.50</b> from").await;
    tap(&buyer, "✅ Confirm").await;
    expect_text(&buyer, "$12.50 withdrawn").await;
    assert_eq!(
        shop.cryptocardy.balance_of(&provider_id),
        Some(dec("37.50"))
    );

    // Transactions and a pending 3-D Secure code.
    assert!(
        shop.cryptocardy
            .simulate_purchase(&provider_id, "COFFEE SHOP", dec("2.25"))
            .unwrap()
    );
    let otp = shop
        .cryptocardy
        .simulate_3ds(&provider_id, "SPOTIFY", dec("9.99"))
        .unwrap();
    tap(&buyer, "⬅️ Back").await;
    tap(&buyer, "📜 Transactions").await;
    expect_text(&buyer, "COFFEE SHOP").await;
    tap(&buyer, "⬅️ Back").await;
    tap(&buyer, "🔐 3-D Secure codes").await;
    expect_text(&buyer, &format!("<code>{otp}</code>")).await;
    tap(&buyer, "⬅️ Back").await;
    expect_text(&buyer, "Status: active").await;

    // Another buyer's forged taps on this card reveal nothing and change nothing.
    let stranger = shop.buyer(STRANGER, Some("nosy"), "en");
    stranger.send_command("/start");
    let menu = wait_bot(&stranger, "the menu", |m| !m.inline_keyboard.is_empty()).await;
    let details_before = shop.cryptocardy.counts().details_requests;
    for action in ["o", "d", "z", "u", "f", "m", "w", "t", "3", "x", "xy"] {
        let data = if action == "t" {
            format!("vc:t:{card}:0")
        } else {
            format!("vc:{action}:{card}")
        };
        let answer = forge(&stranger, menu.message_id, &data).await;
        assert_eq!(
            answer.as_deref(),
            Some("That card is not available."),
            "{data}"
        );
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(shop.cryptocardy.counts().details_requests, details_before);
    assert_eq!(shop.cryptocardy.state_of(&provider_id), Some("active"));
    for message in stranger.chat() {
        assert!(!message.body().contains(&grouped), "{message:?}");
        assert!(!message.body().contains(&address), "{message:?}");
        assert!(!message.body().contains("•••• "), "{message:?}");
    }

    // Terminate needs the confirmation: the confirming payload alone does nothing.
    let card_screen = buyer.last_bot_message().unwrap();
    let forged = forge(&buyer, card_screen.message_id, &format!("vc:xy:{card}")).await;
    assert_eq!(forged, None);
    expect_text(&buyer, "This button is no longer valid").await;
    assert_eq!(shop.cryptocardy.state_of(&provider_id), Some("active"));
    tap(&buyer, "💳 Virtual cards").await;
    tap(&buyer, "💳 My cards (1)").await;
    tap(
        &buyer,
        &format!("Visa •••• {} — active", &pan[pan.len() - 4..]),
    )
    .await;
    tap(&buyer, "🗑 Terminate").await;
    expect_text(&buyer, "for good?").await;
    assert_eq!(shop.cryptocardy.state_of(&provider_id), Some("active"));
    tap(&buyer, "🗑 Yes, terminate for good").await;
    expect_text(&buyer, "The card is terminated").await;
    assert_eq!(shop.cryptocardy.state_of(&provider_id), Some("terminated"));
    assert_eq!(
        shop.store
            .card_of_owner(OWNER, card)
            .await
            .unwrap()
            .unwrap()
            .state,
        CardState::Terminated
    );

    // Nothing secret in any log line of the whole flow.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    for expected in [
        "issuing a card",
        "card issued",
        "card details shown",
        "card terminated",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in the log");
    }
    for line in text.lines() {
        assert!(!line.contains(&seed), "seed in: {line}");
        assert!(!line.contains(&pan), "PAN in: {line}");
        assert!(!line.contains(&grouped), "PAN in: {line}");
        assert!(!has_token(line, &otp), "3-D Secure code in: {line}");
        let cvv_leak = has_token(line, &cvv)
            && (line.to_ascii_lowercase().contains("cvv")
                || line.contains(&format!("\"{cvv}\""))
                || line.contains(&format!(">{cvv}<")));
        assert!(!cvv_leak, "CVV in: {line}");
    }
}

/// The seed's details budget (here 1 a minute) is kept: the second look is refused with
/// "wait" and never reaches the provider. A details message still on screen when the
/// bot stops is deleted after the restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn details_over_budget_wait_and_deletion_survives_a_restart() {
    let mut options = test_card_options();
    options.details_ttl = Duration::from_millis(1500);
    options.client.limits.details = Limit::new(1, Duration::from_secs(60));
    let mut shop = TestShop::spawn_with_cards(options).await;
    let buyer = shop.buyer(OWNER, None, "en");
    let (provider_id, _) = issue_card(&shop, &buyer).await;
    shop.cryptocardy
        .simulate_funding(&provider_id, dec("20"))
        .unwrap();
    expect_text(&buyer, "is funded and active").await;
    tap(&buyer, "💳 Open the card").await;
    expect_text(&buyer, "Balance: $20.00").await;
    let screen = tap(&buyer, "👁 Show number and CVV").await;
    let details = wait_bot(&buyer, "the details", |m| m.body().contains("tg-spoiler")).await;
    assert_eq!(shop.cryptocardy.counts().details_requests, 1);

    let query = buyer
        .tap_button(screen.message_id, "👁 Show number and CVV")
        .unwrap();
    let answer = buyer.wait_callback_answer(&query, WAIT).await.unwrap();
    assert!(
        answer.text.as_deref().unwrap_or("").contains("Please wait"),
        "{answer:?}"
    );
    assert!(answer.show_alert);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(shop.cryptocardy.counts().details_requests, 1);

    // A restart before the deletion: the row stays and the new process deletes it.
    shop.stop_bot().await;
    // Past its time with the bot down: nobody deletes it…
    tokio::time::sleep(Duration::from_millis(1700)).await;
    assert!(
        shop.telegram
            .message(buyer.chat_id(), details.message_id)
            .is_some()
    );
    assert_eq!(shop.store.card_detail_messages().await.unwrap().len(), 1);
    shop.start_bot().await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while shop
        .telegram
        .message(buyer.chat_id(), details.message_id)
        .is_some()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "details message not deleted after the restart"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
