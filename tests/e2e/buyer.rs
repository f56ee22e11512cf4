//! A buyer reaches each family's quote screen; bad input is refused with the reason
//! and accepted once fixed; a restart mid-dialogue resumes; forged taps reveal nothing.

use kiosk::domain::OrderStatus;
use kiosk::sandbox::telegram::SimUser;

use crate::helpers::{TestShop, WAIT, expect_text, tap, tap_starting};

async fn started(shop: &TestShop, id: i64, username: Option<&str>, lang: &str) -> SimUser {
    let user = shop.buyer(id, username, lang);
    user.send_command("/start");
    expect_text(&user, "what would you like to buy?").await;
    user
}

#[tokio::test]
async fn the_menu_lists_the_families_the_providers_sell_in_the_buyers_language() {
    let shop = TestShop::spawn().await;
    let user = started(&shop, 1, Some("alice"), "en").await;
    let menu = user.last_bot_message().unwrap();
    let labels: Vec<String> = menu
        .keyboard_rows()
        .into_iter()
        .flatten()
        .map(|(text, _)| text)
        .collect();
    for wanted in [
        "⭐ Telegram Stars",
        "💎 Telegram Premium",
        "🎮 Game top-ups",
        "🎁 Gift cards",
        "🧾 My orders",
    ] {
        assert!(
            labels.iter().any(|l| l == wanted),
            "{wanted} missing from {labels:?}"
        );
    }
    assert!(
        labels.iter().any(|l| l == "🎮 Steam gifts"),
        "FazerCards sells them: {labels:?}"
    );
    assert!(
        !labels.iter().any(|l| l.contains("Mobile top-up")),
        "no provider here sells mobile top-ups"
    );

    let ivan = shop.buyer(2, None, "ru-RU");
    ivan.send_command("/start");
    expect_text(&ivan, "что хотите купить?").await;
}

#[tokio::test]
async fn stars_username_checked_quantity_validated_and_invoice_sent() {
    let shop = TestShop::spawn().await;
    let user = started(&shop, 10, Some("alice_buyer"), "en").await;
    tap(&user, "⭐ Telegram Stars").await;
    let ask = expect_text(&user, "Send a Telegram @username").await;
    assert!(ask.button_with_text("👤 For me (@alice_buyer)").is_some());

    user.send_text("not a name!!");
    expect_text(&user, "That is not a Telegram username").await;
    user.send_text("😀😀😀");
    let refusals = user
        .chat()
        .iter()
        .filter(|m| m.from_bot && m.body().contains("That is not a Telegram username"))
        .count();
    user.wait_for(
        |m| {
            m.from_bot
                && m.body().contains("That is not a Telegram username")
                && m.message_id > ask.message_id + 2
        },
        WAIT,
    )
    .await
    .unwrap();
    assert!(refusals >= 1);
    user.send_text(&"x".repeat(10_000));
    user.wait_for(
        |m| {
            m.from_bot
                && m.body().contains("That is not a Telegram username")
                && m.message_id > ask.message_id + 4
        },
        WAIT,
    )
    .await
    .unwrap();

    user.send_text("@ghost_buyer");
    expect_text(&user, "Telegram has no user with that username").await;

    user.send_text("https://t.me/good_friend");
    let quantity = expect_text(&user, "How many?").await;
    user.send_text("49");
    expect_text(&user, "Send a whole number from 50 to 10000").await;
    user.tap_button(quantity.message_id, "100").unwrap();
    let quote = expect_text(&user, "Price:").await;
    assert!(quote.body().contains("@good_friend"), "{}", quote.body());
    assert!(quote.body().contains("Stars"), "{}", quote.body());

    tap_starting(&user, "Pay ").await;
    let invoice = user
        .wait_for(|m| m.from_bot && m.invoice.is_some(), WAIT)
        .await
        .unwrap();
    let details = invoice.invoice.clone().unwrap();
    assert_eq!(details.currency, "XTR");
    // The invoice message id is written right after Telegram answers.
    let mut orders = shop.store.orders_of_buyer(10, 10, 0).await.unwrap();
    for _ in 0..100 {
        if orders
            .first()
            .is_some_and(|o| o.invoice_message_id.is_some())
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        orders = shop.store.orders_of_buyer(10, 10, 0).await.unwrap();
    }
    assert_eq!(orders.len(), 1);
    let order = &orders[0];
    assert_eq!(order.status, OrderStatus::AwaitingPayment);
    assert_eq!(
        details.payload,
        order.id.0.to_string(),
        "the payload is the order id only"
    );
    assert_eq!(
        u64::from(details.total_amount),
        u64::from(order.price.to_minor_units().unwrap())
    );
    assert_eq!(order.invoice_message_id, Some(invoice.message_id));
    assert_eq!(order.quantity, 100);
}

#[tokio::test]
async fn for_me_uses_the_buyers_own_username() {
    let shop = TestShop::spawn().await;
    let user = started(&shop, 11, Some("self_buyer"), "en").await;
    tap(&user, "⭐ Telegram Stars").await;
    tap(&user, "👤 For me (@self_buyer)").await;
    expect_text(&user, "How many?").await;
}

#[tokio::test]
async fn premium_already_active_is_refused_before_payment() {
    let shop = TestShop::spawn().await;
    let user = started(&shop, 12, None, "en").await;
    tap(&user, "💎 Telegram Premium").await;
    tap(&user, "Telegram Premium, 3 months").await;
    expect_text(&user, "Send a Telegram @username").await;
    user.send_text("@premium_holder");
    expect_text(&user, "already has Telegram Premium").await;
    user.send_text("@fresh_account");
    let quote = expect_text(&user, "Price:").await;
    assert!(quote.body().contains("Telegram Premium, 3 months"));
}

#[tokio::test]
async fn gift_card_catalog_to_quote_with_quantity() {
    let shop = TestShop::spawn().await;
    let user = started(&shop, 13, None, "en").await;
    tap(&user, "🎁 Gift cards").await;
    expect_text(&user, "choose one, or send a word to search").await;
    user.send_text("goo");
    expect_text(&user, "results for “goo”").await;
    tap(&user, "Google Play").await;
    expect_text(&user, "Google Play: choose an option").await;
    tap(&user, "Google Play 25 USD").await;
    let ask = expect_text(&user, "How many?").await;
    user.tap_button(ask.message_id, "2").unwrap();
    let quote = expect_text(&user, "Price:").await;
    assert!(quote.body().contains("Quantity: 2"), "{}", quote.body());
}

#[tokio::test]
async fn top_up_asks_each_field_then_an_amount_in_range() {
    let shop = TestShop::spawn().await;
    let user = started(&shop, 14, None, "en").await;
    tap(&user, "🎮 Game top-ups").await;
    tap(&user, "Mobile games").await;
    tap(&user, "PUBG Mobile UC top-up").await;
    expect_text(&user, "Send the Player ID").await;
    user.send_text("123456789");
    expect_text(&user, "Send the amount in USD, from 1 to 100").await;
    user.send_text("5000");
    expect_text(&user, "Send an amount in USD from 1 to 100").await;
    user.send_text("12.345");
    user.wait_for(
        |m| m.from_bot && m.body().matches("Send an amount in USD").count() == 1,
        WAIT,
    )
    .await
    .unwrap();
    user.send_text("10");
    let quote = expect_text(&user, "Price:").await;
    assert!(quote.body().contains("123456789"), "{}", quote.body());
    assert!(quote.body().contains("10.00 USD"), "{}", quote.body());
}

#[tokio::test]
async fn a_restart_mid_dialogue_resumes_where_the_buyer_was() {
    let mut shop = TestShop::spawn().await;
    let user = started(&shop, 15, None, "en").await;
    tap(&user, "⭐ Telegram Stars").await;
    expect_text(&user, "Send a Telegram @username").await;
    shop.stop_bot().await;
    shop.start_bot().await;
    user.send_text("@after_restart");
    expect_text(&user, "How many?").await;
}

#[tokio::test]
async fn forged_taps_get_a_polite_answer_and_reveal_nothing() {
    let shop = TestShop::spawn().await;
    // Another buyer's order exists.
    let victim = started(&shop, 20, Some("victim_user"), "en").await;
    tap(&victim, "⭐ Telegram Stars").await;
    tap(&victim, "👤 For me (@victim_user)").await;
    let ask = expect_text(&victim, "How many?").await;
    victim.tap_button(ask.message_id, "50").unwrap();
    tap_starting(&victim, "Pay ").await;
    victim
        .wait_for(|m| m.from_bot && m.invoice.is_some(), WAIT)
        .await
        .unwrap();
    let theirs = shop
        .store
        .orders_of_buyer(20, 1, 0)
        .await
        .unwrap()
        .remove(0);

    let attacker = started(&shop, 21, None, "en").await;
    let menu = attacker.last_bot_message().unwrap();
    for forged in [
        format!("o:{}", theirs.id.0),
        "o:99999".to_owned(),
        "garbage".to_owned(),
        "p:7".to_owned(),
        "ok".to_owned(),
        "x".repeat(64),
    ] {
        let query = attacker.forge_tap(menu.message_id, &forged).unwrap();
        let answer = attacker.wait_callback_answer(&query, WAIT).await.unwrap();
        let shown = format!("{:?} {:#?}", answer, attacker.chat());
        assert!(!shown.contains("victim_user"), "{forged}: leaked {shown}");
        assert!(
            !shown.contains(&format!("Order #{}", theirs.id.0)),
            "{forged}: leaked the order"
        );
    }
    let answer_texts: Vec<_> = shop
        .telegram
        .callback_answers()
        .into_iter()
        .filter_map(|a| a.text)
        .collect();
    assert!(
        answer_texts
            .iter()
            .any(|t| t.contains("That order is not available")),
        "{answer_texts:?}"
    );
    assert!(
        answer_texts.iter().any(|t| t.contains("no longer valid")),
        "{answer_texts:?}"
    );
    assert_eq!(
        shop.store.orders_of_buyer(21, 10, 0).await.unwrap().len(),
        0,
        "a forged confirm creates nothing"
    );
}

#[tokio::test]
async fn my_orders_shows_only_the_buyers_orders_and_their_details() {
    let shop = TestShop::spawn().await;
    let user = started(&shop, 30, Some("orders_user"), "en").await;
    tap(&user, "🧾 My orders").await;
    expect_text(&user, "You have no orders yet").await;
    tap(&user, "🏠 Menu").await;
    tap(&user, "⭐ Telegram Stars").await;
    tap(&user, "👤 For me (@orders_user)").await;
    let ask = expect_text(&user, "How many?").await;
    user.tap_button(ask.message_id, "250").unwrap();
    tap_starting(&user, "Pay ").await;
    user.wait_for(|m| m.from_bot && m.invoice.is_some(), WAIT)
        .await
        .unwrap();
    user.send_command("/orders");
    let list = expect_text(&user, "Your orders").await;
    let order = shop
        .store
        .orders_of_buyer(30, 1, 0)
        .await
        .unwrap()
        .remove(0);
    let label = list
        .keyboard_rows()
        .into_iter()
        .flatten()
        .map(|(text, _)| text)
        .find(|t| t.contains(&format!("#{}", order.id.0)))
        .expect("the order is listed");
    assert!(label.contains("waiting for payment"), "{label}");
    user.tap_button(list.message_id, &label).unwrap();
    let detail = expect_text(&user, &format!("Order #{}", order.id.0)).await;
    assert!(detail.body().contains("@orders_user"));
}

#[tokio::test]
async fn language_choice_sticks() {
    let shop = TestShop::spawn().await;
    let user = started(&shop, 40, None, "en").await;
    tap(&user, "🌐 Language").await;
    tap(&user, "Русский").await;
    expect_text(&user, "Язык: русский").await;
    user.send_command("/help");
    expect_text(&user, "/orders — ваши заказы").await;
}

#[tokio::test]
async fn steam_wallet_login_checked_then_an_amount() {
    let shop = TestShop::spawn().await;
    let user = started(&shop, 60, None, "en").await;
    tap(&user, "💳 Steam wallet").await;
    tap(&user, "Steam Wallet (USD)").await;
    expect_text(&user, "Send the Steam login").await;
    user.send_text("not a login!");
    expect_text(&user, "That is not a Steam login").await;
    user.send_text("norefill_bob");
    expect_text(&user, "This account cannot receive this product").await;
    user.send_text("gaben_fan");
    expect_text(&user, "Send the amount in USD, from 1 to 500").await;
    user.send_text("0");
    expect_text(&user, "Send an amount in USD from 1 to 500").await;
    user.send_text("5");
    let quote = expect_text(&user, "Price:").await;
    assert!(quote.body().contains("gaben_fan"), "{}", quote.body());
    assert!(quote.body().contains("5.00 USD"), "{}", quote.body());
}

#[tokio::test]
async fn steam_gift_found_by_search_needs_an_invite_link() {
    let shop = TestShop::spawn().await;
    let user = started(&shop, 61, None, "en").await;
    tap(&user, "🎮 Steam gifts").await;
    expect_text(&user, "choose one, or send a word to search").await;
    user.send_text("stardew");
    expect_text(&user, "results for “stardew”").await;
    tap(&user, "Stardew Valley").await;
    tap_starting(&user, "Stardew Valley (").await;
    expect_text(&user, "Steam friend invite link").await;
    user.send_text("https://steamcommunity.com/id/gaben");
    expect_text(&user, "That is not a Steam friend invite link").await;
    user.send_text("https://s.team/p/abcd-efgh/XYZW1234");
    let quote = expect_text(&user, "Price:").await;
    assert!(
        quote.body().contains("https://s.team/p/abcd-efgh/XYZW1234"),
        "{}",
        quote.body()
    );
}

#[tokio::test]
async fn game_key_with_stock_limited_quantity() {
    let shop = TestShop::spawn().await;
    let user = started(&shop, 62, None, "en").await;
    tap(&user, "🔑 Game keys").await;
    tap_starting(&user, "Cyberpunk 2077").await;
    tap_starting(&user, "Ultimate Edition").await;
    // Stock 2, at most 2 per order.
    let ask = expect_text(&user, "from 1 to 2").await;
    user.send_text("3");
    expect_text(&user, "Send a whole number from 1 to 2").await;
    user.tap_button(ask.message_id, "2").unwrap();
    let quote = expect_text(&user, "Price:").await;
    assert!(quote.body().contains("Quantity: 2"), "{}", quote.body());
}

#[tokio::test]
async fn a_service_for_an_account_asks_for_an_email_and_refuses_a_bad_one() {
    let shop = TestShop::spawn().await;
    let user = started(&shop, 63, None, "en").await;
    tap(&user, "🛠 Services").await;
    tap(&user, "Spotify Premium (your account)").await;
    tap(&user, "Premium Individual — 1 month").await;
    expect_text(&user, "Send the e-mail address").await;
    user.send_text("not an e-mail");
    expect_text(&user, "That is not an e-mail address").await;
    user.send_text("listener@example.com");
    let quote = expect_text(&user, "Price:").await;
    assert!(
        quote.body().contains("listener@example.com"),
        "{}",
        quote.body()
    );
}

/// Stopping while updates pour in: the dispatcher is busy handing them to workers, the
/// moment teloxide's shutdown wake-up alone can miss. The stop still ends, and every
/// buyer whose update was taken got an answer.
#[tokio::test]
async fn stopping_mid_rush_ends_and_loses_no_taken_update() {
    let mut shop = TestShop::spawn().await;
    let buyers: Vec<SimUser> = (0..60)
        .map(|i| shop.telegram.user(9_000 + i, "Rush", None, "en"))
        .collect();
    for buyer in &buyers {
        buyer.send_command("/start");
    }
    // Stop as soon as the first answer shows, with most updates still queued or in hand.
    expect_text(&buyers[0], "what would you like to buy?").await;
    tokio::time::timeout(WAIT * 3, shop.stop_bot())
        .await
        .expect("the bot stopped while updates were arriving");
    // What the bot did not take stays at Telegram for the next start.
    shop.start_bot().await;
    for buyer in &buyers {
        expect_text(buyer, "what would you like to buy?").await;
    }
}
