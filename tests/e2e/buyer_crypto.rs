//! The buyer-paid crypto checkout (Cryptorefills) end to end: the dialogue over the fake
//! Telegram, the Cryptorefills fake with its simulated on-chain payment, and the
//! engine following the order to its end.

use std::time::Duration;

use kiosk::domain::{OrderStatus, ProductFamily};
use kiosk::providers::ProviderId;
use kiosk::sandbox::telegram::SimUser;
use kiosk::store::Order;

use crate::helpers::{TestShop, WAIT, expect_text, tap};

const GIFT_CARDS: &str = "🎁 Gift cards · crypto (Cryptorefills)";
const MOBILE: &str = "📱 Mobile top-up";

fn decode_qr(png: &[u8]) -> String {
    let image = image::load_from_memory(png).unwrap().to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare_from_greyscale(
        image.width() as usize,
        image.height() as usize,
        |x, y| image.get_pixel(x as u32, y as u32).0[0],
    );
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the photo");
    let (_, content) = grids[0].decode().unwrap();
    content
}

/// The newest order of `buyer`.
async fn newest_order(shop: &TestShop, buyer: i64) -> Order {
    shop.store
        .orders_of_buyer(buyer, 1, 0)
        .await
        .unwrap()
        .pop()
        .expect("an order")
}

/// Waits until the order reaches `status`.
async fn wait_status(shop: &TestShop, order: &Order, status: OrderStatus) -> Order {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let now = shop.store.order(order.id).await.unwrap().unwrap();
        if now.status == status {
            return now;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "order {} is {:?}, not {status:?}",
            order.id,
            now.status
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Bot messages in the chat whose body contains `needle`.
fn count(user: &SimUser, needle: &str) -> usize {
    user.chat()
        .iter()
        .filter(|m| m.from_bot && m.body().contains(needle))
        .count()
}

/// /start → gift cards for crypto → US → Airbnb 25 USD → the e-mail → USDC on
/// Solana → Confirm: the checkout photo.
async fn buy_airbnb(shop: &TestShop, user: &SimUser) -> Order {
    user.send_command("/start");
    tap(user, GIFT_CARDS).await;
    expect_text(user, "Which country").await;
    tap(user, "🇺🇸 US").await;
    expect_text(user, "choose a brand").await;
    tap(user, "Airbnb").await;
    tap(user, "Airbnb 25 USD").await;
    expect_text(user, "send the e-mail address").await;
    user.send_text("buyer@example.com");
    expect_text(user, "How will you pay?").await;
    tap(user, "USDC · Solana").await;
    let quote = expect_text(user, "You pay:").await;
    assert!(
        quote.body().contains("Face value: 25 USD"),
        "{}",
        quote.body()
    );
    assert!(quote.body().contains("USDC"), "{}", quote.body());
    tap(user, "✅ Confirm and get the address").await;
    user.wait_for(|m| m.from_bot && m.photo.is_some(), WAIT)
        .await
        .expect("the checkout photo");
    newest_order(shop, user.id()).await
}

#[tokio::test]
async fn bad_phone_and_bad_email_are_refused_then_accepted() {
    let shop = TestShop::spawn_with_cryptorefills().await;
    let user = shop.buyer(900, Some("crypto_a"), "en");
    user.send_command("/start");
    let menu = expect_text(&user, "what would you like to buy?").await;
    for entry in [GIFT_CARDS, MOBILE, "📶 eSIM", "🎁 Gift cards"] {
        assert!(
            menu.button_with_text(entry).is_some(),
            "{entry} in the menu"
        );
    }

    // A top-up: the country is asked once, a typed code works too.
    tap(&user, MOBILE).await;
    expect_text(&user, "Which country").await;
    user.send_text("Narnia");
    expect_text(&user, "two-letter code").await;
    user.send_text("us");
    expect_text(&user, "Mobile top-up for 🇺🇸 US").await;
    user.send_text("at&t");
    expect_text(&user, "results for “at&t”").await;
    tap(&user, "AT&T").await;
    tap(&user, "AT&T 10 USD").await;
    expect_text(&user, "send the phone number to top up").await;
    user.send_text("call me maybe");
    expect_text(&user, "That is not a phone number").await;
    user.send_text("+1 415 555 1234");
    expect_text(&user, "How will you pay?").await;

    // A gift card: the country is remembered; the e-mail format, then the provider.
    user.send_command("/start");
    tap(&user, GIFT_CARDS).await;
    expect_text(&user, "Gift cards for 🇺🇸 US").await;
    tap(&user, "Airbnb").await;
    expect_text(&user, "Airbnb: choose a product.").await;
    // The brand's logo rides above its products as the link preview (the CDN's
    // 500×318 JPEG), kept when the list is edited in place.
    let products = shop
        .telegram
        .calls()
        .into_iter()
        .rev()
        .find(|c| {
            c.params
                .get("text")
                .and_then(|t| t.as_str())
                .is_some_and(|t| t.contains("Airbnb: choose a product."))
        })
        .expect("the Airbnb products screen");
    assert_eq!(
        products.params["link_preview_options"]["url"],
        "https://cdn.sandbox.cryptorefills.test/logos_v2/airbnb_500x318.jpg",
        "{:?}",
        products.params
    );
    assert_eq!(
        products.params["link_preview_options"]["show_above_text"],
        true
    );
    tap(&user, "Airbnb 50 USD").await;
    expect_text(&user, "send the e-mail address").await;
    user.send_text("not an e-mail");
    expect_text(&user, "That is not an e-mail address").await;
    user.send_text("someone@invalid.test");
    expect_text(&user, "Cryptorefills cannot deliver to this recipient").await;
    user.send_text("problem+kyc_pending@example.com");
    expect_text(
        &user,
        "Identity verification at Cryptorefills is in progress",
    )
    .await;
    user.send_text("buyer@example.com");
    let coins = expect_text(&user, "How will you pay?").await;
    assert!(coins.button_with_text("USDT · Solana").is_some());

    // The country can be changed, and another country lists its own brands.
    user.send_command("/start");
    tap(&user, GIFT_CARDS).await;
    tap(&user, "🌍 🇺🇸 US · change country").await;
    tap(&user, "🇩🇪 DE").await;
    let brands = expect_text(&user, "Gift cards for 🇩🇪 DE").await;
    assert!(brands.button_with_text("Zalando").is_some());
    assert!(brands.button_with_text("Airbnb").is_none());
    assert_eq!(
        shop.store.user_country(900).await.unwrap().as_deref(),
        Some("DE")
    );
    // Nothing was ordered.
    assert!(
        shop.store
            .orders_of_buyer(900, 5, 0)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn checkout_qr_holds_the_payment_uri_and_the_code_arrives_once() {
    let shop = TestShop::spawn_with_cryptorefills().await;
    let user = shop.buyer(901, Some("crypto_b"), "en");
    let order = buy_airbnb(&shop, &user).await;
    assert_eq!(order.status, OrderStatus::AwaitingPayment);
    assert_eq!(order.provider, ProviderId::Cryptorefills);
    assert_eq!(order.family, ProductFamily::GiftCard);
    assert_eq!(order.price.currency.as_str(), "USDC");
    assert!(
        shop.telegram.calls_to("sendInvoice").is_empty(),
        "no Stars invoice for an order the buyer pays the provider for"
    );

    // The photo's QR code is the Solana Pay URI; the caption the checkout.
    let checkout = shop
        .store
        .crypto_checkout(order.id)
        .await
        .unwrap()
        .expect("the checkout is stored");
    let uri = checkout.payment_uri.clone().expect("Solana Pay URI");
    assert!(uri.starts_with("solana:"), "{uri}");
    let photo = user
        .wait_for(|m| m.from_bot && m.photo.is_some(), WAIT)
        .await
        .unwrap();
    let caption = photo.caption.clone().unwrap_or_default();
    assert!(caption.contains(&format!("<code>{}</code>", checkout.address)));
    assert!(caption.contains(&checkout.amount.normalize().to_string()));
    assert!(caption.contains("Solana"), "{caption}");
    assert!(caption.contains("Pay within"), "{caption}");
    let file = photo.photo.clone().unwrap();
    let png = reqwest::get(shop.telegram.file_url(&file))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(decode_qr(&png), uri);

    // My orders says it waits for the crypto payment.
    user.send_command("/orders");
    let list = expect_text(&user, "Your orders").await;
    assert!(
        list.keyboard_rows()
            .into_iter()
            .flatten()
            .any(|(label, _)| label.contains("waiting for your crypto payment")),
        "{:?}",
        list.keyboard_rows()
    );

    // The buyer pays on-chain: tracked through the states to Done, the code once.
    let provider_order = order.provider_order_id.clone().expect("provider order");
    shop.cryptorefills
        .simulate_payment(&provider_order)
        .unwrap();
    let done = wait_status(&shop, &order, OrderStatus::Completed).await;
    let goods = expect_text(&user, &format!("Order #{} is complete", order.id)).await;
    let code = done.delivered.clone().unwrap().codes.remove(0);
    assert!(goods.body().contains(&code), "{}", goods.body());
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(count(&user, &format!("Order #{} is complete", order.id)), 1);
    assert_eq!(count(&user, &code), 1);
    let events = shop.store.order_events(order.id).await.unwrap();
    let path: Vec<OrderStatus> = events.iter().map(|e| e.to).collect();
    assert_eq!(path.first(), Some(&OrderStatus::AwaitingPayment));
    assert_eq!(path.last(), Some(&OrderStatus::Completed));
    assert!(path.contains(&OrderStatus::Paid), "{path:?}");
}

#[tokio::test]
async fn an_unpaid_order_expires_and_the_buyer_is_told() {
    let shop = TestShop::spawn_with_cryptorefills().await;
    let user = shop.buyer(902, None, "en");
    let order = buy_airbnb(&shop, &user).await;
    shop.cryptorefills
        .advance_clock(Duration::from_secs(31 * 60));
    wait_status(&shop, &order, OrderStatus::Expired).await;
    expect_text(&user, "payment window closed without a full payment").await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(count(&user, "payment window closed"), 1);
    user.send_command("/orders");
    let list = expect_text(&user, "Your orders").await;
    assert!(
        list.keyboard_rows()
            .into_iter()
            .flatten()
            .any(|(label, _)| label.contains("expired unpaid")),
    );
}

#[tokio::test]
async fn a_refunded_order_is_explained_once() {
    let shop = TestShop::spawn_with_cryptorefills().await;
    let user = shop.buyer(903, None, "en");
    let order = buy_airbnb(&shop, &user).await;
    let provider_order = order.provider_order_id.clone().unwrap();
    shop.cryptorefills.hold(&provider_order).unwrap();
    shop.cryptorefills
        .simulate_payment(&provider_order)
        .unwrap();
    wait_status(&shop, &order, OrderStatus::Processing).await;
    // The buyer hears once that the payment is seen.
    expect_text(&user, &format!("Order #{} · Airbnb 25 USD", order.id)).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while shop.cryptorefills.order_state(&provider_order) != Some("WaitingForManualAction") {
        assert!(tokio::time::Instant::now() < deadline, "never held");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shop.cryptorefills.refund(&provider_order).unwrap();
    wait_status(&shop, &order, OrderStatus::Refunded).await;
    expect_text(&user, "Cryptorefills refunded this order to you").await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(count(&user, "refunded this order to you"), 1);
    assert!(shop.telegram.refunds().is_empty(), "no Stars to give back");

    user.send_command("/orders");
    let list = expect_text(&user, "Your orders").await;
    let label = list
        .keyboard_rows()
        .into_iter()
        .flatten()
        .map(|(label, _)| label)
        .find(|l| l.contains(&format!("#{}", order.id)))
        .unwrap();
    assert!(label.contains("closed without delivery"), "{label}");
    user.tap_button(list.message_id, &label).unwrap();
    expect_text(&user, "At Cryptorefills: Cryptorefills refunded").await;
}

#[tokio::test]
async fn an_open_order_survives_a_restart_and_completes() {
    let mut shop = TestShop::spawn_with_cryptorefills().await;
    let user = shop.buyer(904, None, "en");
    let order = buy_airbnb(&shop, &user).await;
    shop.stop_bot().await;
    // Paid while the shop is down.
    let provider_order = order.provider_order_id.clone().unwrap();
    shop.cryptorefills
        .simulate_payment(&provider_order)
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    shop.start_bot().await;
    wait_status(&shop, &order, OrderStatus::Completed).await;
    expect_text(&user, &format!("Order #{} is complete", order.id)).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(count(&user, &format!("Order #{} is complete", order.id)), 1);
}

#[tokio::test]
async fn an_ambiguous_create_is_parked_for_an_admin_and_never_repeated() {
    let shop = TestShop::spawn_with_cryptorefills().await;
    let admin = shop.admin();
    admin.send_command("/orders"); // the admin has written to the bot
    expect_text(&admin, "No orders").await;
    let user = shop.buyer(905, None, "en");
    user.send_command("/start");
    tap(&user, GIFT_CARDS).await;
    tap(&user, "🇺🇸 US").await;
    tap(&user, "Airbnb").await;
    tap(&user, "Airbnb 25 USD").await;
    expect_text(&user, "send the e-mail address").await;
    user.send_text("buyer@example.com");
    tap(&user, "USDC · Solana").await;
    expect_text(&user, "You pay:").await;
    // The create is processed, and its answer lost: the outcome is unknown.
    shop.cryptorefills.server_error_next(1, 502);
    tap(&user, "✅ Confirm and get the address").await;
    expect_text(&user, "did not confirm order #").await;
    let order = newest_order(&shop, 905).await;
    expect_text(&user, &format!("did not confirm order #{}", order.id)).await;
    wait_status(&shop, &order, OrderStatus::NeedsAttention).await;
    admin
        .wait_for(
            |m| m.from_bot && m.body().contains(&format!("Order #{} is parked", order.id)),
            WAIT,
        )
        .await
        .unwrap_or_else(|_| panic!("the admins are alerted: {:#?}", admin.chat()));
    assert!(
        user.chat().iter().all(|m| m.photo.is_none()),
        "no checkout shown"
    );
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        shop.cryptorefills.counts().orders_created,
        1,
        "never sent again"
    );
    let still = shop.store.order(order.id).await.unwrap().unwrap();
    assert_eq!(still.status, OrderStatus::NeedsAttention);
}

#[tokio::test]
async fn an_open_value_top_up_asks_an_amount_in_range() {
    let shop = TestShop::spawn_with_cryptorefills().await;
    let user = shop.buyer(906, None, "en");
    user.send_command("/start");
    tap(&user, MOBILE).await;
    tap(&user, "🇺🇸 US").await;
    tap(&user, "AT&T").await;
    tap(&user, "AT&T 5–100 USD").await;
    expect_text(&user, "send the phone number to top up").await;
    user.send_text("+14155551234");
    expect_text(&user, "Send the amount in USD, from 5 to 100").await;
    user.send_text("1000");
    expect_text(&user, "Send an amount in USD from 5 to 100").await;
    user.send_text("12,50");
    tap(&user, "USDT · Solana").await;
    let quote = expect_text(&user, "You pay:").await;
    assert!(
        quote.body().contains("Face value: 12.50 USD"),
        "{}",
        quote.body()
    );
    tap(&user, "✅ Confirm and get the address").await;
    user.wait_for(|m| m.from_bot && m.photo.is_some(), WAIT)
        .await
        .expect("the checkout photo");
    let order = newest_order(&shop, 906).await;
    assert_eq!(order.family, ProductFamily::MobileTopup);
    assert_eq!(
        order.amount.map(|a| a.to_string()).as_deref(),
        Some("12.50 USD")
    );
    assert_eq!(order.product.variant.as_deref(), Some("USDT@Solana"));
    assert_eq!(order.price.currency.as_str(), "USDT");
}

/// An unpaid Cryptorefills order row, as the dialogue writes it on Confirm.
async fn crypto_order_row(shop: &TestShop, buyer: i64) -> Order {
    use kiosk::domain::{Actor, Email, Money};
    use kiosk::providers::{ProductRef, Recipient};
    use kiosk::store::NewOrder;

    shop.store
        .create_order(
            &NewOrder {
                chat_id: buyer,
                buyer_id: buyer,
                product: ProductRef {
                    provider: ProviderId::Cryptorefills,
                    family: ProductFamily::GiftCard,
                    category: "US:Airbnb".into(),
                    item: "25 USD".into(),
                    variant: Some("USDC@Solana".into()),
                },
                product_title: "Airbnb 25 USD".into(),
                recipient: Recipient::Email(Email::parse("buyer@example.com").unwrap()),
                quantity: 1,
                amount: None,
                cost: Money::parse("25.13", "USDC").unwrap(),
                price: Money::parse("25.13", "USDC").unwrap(),
                payment_deadline: chrono::Utc::now() + chrono::Duration::minutes(30),
                admin_id: None,
            },
            3,
            &Actor::Buyer(buyer),
        )
        .await
        .unwrap()
}

#[tokio::test]
async fn a_create_interrupted_by_a_crash_is_parked_not_repeated() {
    let shop = TestShop::spawn_with_cryptorefills().await;
    // The row and the in-flight mark of a call whose process died two minutes ago.
    let order = crypto_order_row(&shop, 907).await;
    let started = chrono::Utc::now() - chrono::Duration::minutes(2);
    assert!(
        shop.store
            .mark_checkout_call(order.id, started)
            .await
            .unwrap()
    );
    wait_status(&shop, &order, OrderStatus::NeedsAttention).await;
    assert_eq!(
        shop.cryptorefills.counts().orders_created,
        0,
        "never placed blindly"
    );
}

#[tokio::test]
async fn a_crypto_order_cannot_be_paid_through_telegram() {
    use kiosk::engine::payments::{Refusal, check_pre_checkout};

    let shop = TestShop::spawn_with_cryptorefills().await;
    let order = crypto_order_row(&shop, 908).await;
    let refusal = check_pre_checkout(&shop.store, 908, &order.id.to_string(), "USDC", 2513)
        .await
        .unwrap_err();
    assert_eq!(refusal, Refusal::NotPayable);
}

/// Waits until the engine holds `n` order streams open.
async fn wait_feeds(shop: &TestShop, n: usize) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while shop.engine().order_feeds_running() != n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} order streams open, not {n}",
            shop.engine().order_feeds_running()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// With a ten-minute poll, only the order's event stream can bring the code within the
/// test's wait: it is opened with the checkout (and again after a restart), drives the
/// order at each event, and closes on `stop`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_order_stream_brings_the_code_long_before_the_next_poll() {
    let mut shop = TestShop::spawn_with_cryptorefills_and(&[("KIOSK_POLL_INTERVAL", "10m")]).await;
    let user = shop.buyer(905, Some("streamed"), "en");
    let order = buy_airbnb(&shop, &user).await;
    wait_feeds(&shop, 1).await;
    assert_eq!(shop.cryptorefills.counts().subscriptions, 1);

    // A restart with the stream open: the shutdown is not held by it, and the first
    // sweep of the new process opens it again.
    tokio::time::timeout(Duration::from_secs(5), shop.stop_bot())
        .await
        .expect("the engine stops with a stream open");
    shop.start_bot().await;
    wait_feeds(&shop, 1).await;
    assert_eq!(shop.cryptorefills.counts().subscriptions, 2);

    let provider_order = order.provider_order_id.clone().expect("provider order");
    shop.cryptorefills
        .simulate_payment(&provider_order)
        .unwrap();
    let done = wait_status(&shop, &order, OrderStatus::Completed).await;
    let goods = expect_text(&user, &format!("Order #{} is complete", order.id)).await;
    let code = done.delivered.clone().unwrap().codes.remove(0);
    assert!(goods.body().contains(&code), "{}", goods.body());
    // `stop` after Done: the stream is closed and not reopened.
    wait_feeds(&shop, 0).await;
    assert_eq!(shop.cryptorefills.counts().subscriptions, 2);
    assert_eq!(count(&user, &code), 1);
}

/// Switched off, no stream is opened and polling alone follows the order.
#[tokio::test]
async fn with_the_stream_switched_off_polling_follows_the_order() {
    let shop =
        TestShop::spawn_with_cryptorefills_and(&[("KIOSK_CRYPTOREFILLS_STREAM", "false")]).await;
    let user = shop.buyer(906, Some("polled"), "en");
    let order = buy_airbnb(&shop, &user).await;
    let provider_order = order.provider_order_id.clone().expect("provider order");
    shop.cryptorefills
        .simulate_payment(&provider_order)
        .unwrap();
    wait_status(&shop, &order, OrderStatus::Completed).await;
    assert_eq!(shop.cryptorefills.counts().subscriptions, 0);
    assert_eq!(shop.engine().order_feeds_running(), 0);
}
