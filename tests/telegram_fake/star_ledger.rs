//! `getStarTransactions` through teloxide's own types: every Stars payment and refund
//! is in the bot's ledger, also a payment whose `successful_payment` update was lost.

use crate::support::*;
use kiosk::sandbox::telegram::{PaymentOutcome, SimUser};
use teloxide::prelude::*;
use teloxide::types::{LabeledPrice, TransactionPartner, UpdateKind};

/// Sends a Stars invoice to Alice and has her pay it; the bot answers the pre-checkout.
async fn paid_invoice(bot: &Bot, alice: &SimUser, payload: &str, lose_update: bool) -> String {
    let invoice = bot
        .send_invoice(
            ChatId(42),
            "Stars",
            "A test purchase",
            payload,
            "XTR",
            [LabeledPrice::new("Item", 300)],
        )
        .await
        .expect("sendInvoice");
    let payer = alice.clone();
    let id = invoice.id.0;
    let paying = tokio::spawn(async move {
        if lose_update {
            payer.pay_losing_update(id).await
        } else {
            payer.pay(id).await
        }
    });
    let ups = next_updates(bot, 1).await;
    let UpdateKind::PreCheckoutQuery(q) = &ups[0].kind else {
        panic!("expected a pre-checkout query, got {:?}", ups[0].kind);
    };
    bot.answer_pre_checkout_query(q.id.clone(), true)
        .await
        .expect("answerPreCheckoutQuery");
    let Ok(Ok(PaymentOutcome::Paid(record))) = paying.await else {
        panic!("not paid");
    };
    record.payment.telegram_payment_charge_id
}

#[tokio::test]
async fn payments_and_refunds_are_in_the_star_ledger() {
    let (fake, bot, alice) = start_with_alice().await;
    let first = paid_invoice(&bot, &alice, "17", false).await;
    let ups = next_updates(&bot, 1).await;
    assert!(message(&ups[0]).successful_payment().is_some());
    let lost = paid_invoice(&bot, &alice, "18", true).await;
    assert_eq!(fake.pending_updates(), 0, "the second update was lost");
    bot.refund_star_payment(UserId(42), first.clone().into())
        .await
        .expect("refundStarPayment");

    let ledger = bot
        .get_star_transactions()
        .await
        .expect("getStarTransactions");
    assert_eq!(ledger.transactions.len(), 3);
    let ids: Vec<&str> = ledger
        .transactions
        .iter()
        .map(|t| t.id.0.as_str())
        .collect();
    assert_eq!(ids, [first.as_str(), lost.as_str(), first.as_str()]);
    for (transaction, payload) in ledger.transactions[..2].iter().zip(["17", "18"]) {
        assert_eq!(transaction.amount, 300);
        let Some(TransactionPartner::User(user)) = &transaction.source else {
            panic!("a payment comes from the user: {transaction:?}");
        };
        assert_eq!(user.user.id, UserId(42));
        let invoice = user.kind.invoice_payment().expect("an invoice payment");
        assert_eq!(invoice.invoice_payload.as_deref(), Some(payload));
    }
    let refund = &ledger.transactions[2];
    assert!(refund.source.is_none());
    assert!(matches!(refund.receiver, Some(TransactionPartner::User(_))));

    let page = bot
        .get_star_transactions()
        .offset(1)
        .limit(1)
        .await
        .expect("a page");
    assert_eq!(page.transactions.len(), 1);
    assert_eq!(page.transactions[0].id.0, lost);
    assert!(bot.get_star_transactions().limit(101).await.is_err());
}
