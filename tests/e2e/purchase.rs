//! Whole purchases through the dialogue and the engine: quote, invoice, payment,
//! provider order, goods in the chat.

use kiosk::domain::OrderStatus;
use kiosk::sandbox::telegram::PaymentOutcome;

use crate::helpers::{TestShop, WAIT, expect_text, tap, tap_starting};

async fn pay_newest_invoice(user: &kiosk::sandbox::telegram::SimUser) {
    let invoice = user
        .wait_for(|m| m.from_bot && m.invoice.is_some(), WAIT)
        .await
        .unwrap();
    match user.pay(invoice.message_id).await.unwrap() {
        PaymentOutcome::Paid(_) => {}
        other => panic!("payment not accepted: {other:?}"),
    }
}

#[tokio::test]
async fn stars_bought_through_the_dialogue_arrive() {
    let shop = TestShop::spawn().await;
    let user = shop.buyer(50, Some("star_buyer"), "en");
    user.send_command("/start");
    tap(&user, "⭐ Telegram Stars").await;
    tap(&user, "👤 For me (@star_buyer)").await;
    let ask = expect_text(&user, "How many?").await;
    user.tap_button(ask.message_id, "100").unwrap();
    tap_starting(&user, "Pay ").await;
    pay_newest_invoice(&user).await;
    expect_text(&user, "is complete").await;
    let order = shop
        .store
        .orders_of_buyer(50, 1, 0)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(order.status, OrderStatus::Completed);
    assert_eq!(shop.fragment.counts().orders_paid, 1);
}

#[tokio::test]
async fn a_top_up_reaches_the_provider_with_the_chosen_amount() {
    let shop = TestShop::spawn().await;
    let before = shop.agent.balance("USD");
    let user = shop.buyer(51, None, "en");
    user.send_command("/start");
    tap(&user, "🎮 Game top-ups").await;
    tap(&user, "Mobile games").await;
    tap(&user, "PUBG Mobile UC top-up").await;
    expect_text(&user, "Send the Player ID").await;
    user.send_text("123456789");
    expect_text(&user, "Send the amount in USD").await;
    user.send_text("10");
    expect_text(&user, "Price:").await;
    tap_starting(&user, "Pay ").await;
    pay_newest_invoice(&user).await;
    expect_text(&user, "is complete").await;
    let order = shop
        .store
        .orders_of_buyer(51, 1, 0)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(order.status, OrderStatus::Completed);
    assert_eq!(
        order.amount.as_ref().map(|m| m.to_string()),
        Some("10.00 USD".to_owned())
    );
    // 10 USD of top-up at 1.05 per unit.
    assert_eq!(
        before - shop.agent.balance("USD"),
        rust_decimal::Decimal::new(1050, 2)
    );
}
