//! What simulated users do reaches a teloxide bot through `getUpdates` and
//! deserializes into the right `UpdateKind`.

use std::time::Duration;

use crate::support::*;
use kiosk::sandbox::telegram::{FakeConfig, FakeTelegram, PaymentOutcome, SimError};
use teloxide::prelude::*;
use teloxide::types::{
    AllowedUpdate, ChatMemberKind, InlineKeyboardButton, InlineKeyboardMarkup, LabeledPrice,
    MessageEntityKind, UpdateKind,
};

#[tokio::test]
async fn text_and_command_arrive_as_messages_with_entities() {
    let (fake, bot) = start().await;
    let alice = fake.user(42, "Alice", Some("alice"), "en");
    let bob = fake.user(7, "Bob", None, "ru");
    let start_id = alice.send_command("/start ref_42");
    let hello_id = bob.send_text("hello");
    assert_eq!(fake.pending_updates(), 2);

    let ups = bot.get_updates().await.expect("getUpdates");
    assert_eq!(ups.len(), 2);
    assert!(ups[0].id.0 < ups[1].id.0, "update ids increase");

    let m = message(&ups[0]);
    assert_eq!(m.id.0, start_id);
    assert_eq!(m.text(), Some("/start ref_42"));
    let e = &m.entities().expect("entities")[0];
    assert_eq!(e.kind, MessageEntityKind::BotCommand);
    assert_eq!((e.offset, e.length), (0, 6));
    let from = m.from.as_ref().expect("from");
    assert_eq!(from.id, UserId(42));
    assert_eq!(from.username.as_deref(), Some("alice"));
    assert_eq!(from.language_code.as_deref(), Some("en"));
    assert!(m.chat.is_private());
    assert_eq!(m.chat.id, ChatId(42));

    let m = message(&ups[1]);
    assert_eq!(m.id.0, hello_id);
    assert_eq!(m.text(), Some("hello"));
    assert!(m.entities().is_none_or(|e| e.is_empty()));
    assert_eq!(
        m.from.as_ref().map(|u| u.language_code.clone()),
        Some(Some("ru".to_owned()))
    );

    // Not confirmed yet: the same updates come again.
    let again = bot.get_updates().await.expect("getUpdates");
    assert_eq!(again.len(), 2);
    // offset = last + 1 confirms both.
    let confirmed = bot
        .get_updates()
        .offset(ups[1].id.0 as i32 + 1)
        .await
        .expect("confirm");
    assert!(confirmed.is_empty());
    assert_eq!(fake.pending_updates(), 0);

    // limit
    for i in 0..5 {
        alice.send_text(&format!("m{i}"));
    }
    let limited = bot.get_updates().limit(3).await.expect("limit");
    assert_eq!(limited.len(), 3);
    assert_eq!(message(&limited[0]).text(), Some("m0"));
}

#[tokio::test]
async fn long_poll_wakes_on_new_update_and_times_out_when_idle() {
    let (fake, bot) = start().await;
    let alice = fake.user(42, "Alice", None, "en");

    let t0 = std::time::Instant::now();
    let empty = bot.get_updates().timeout(1).await.expect("idle poll");
    assert!(empty.is_empty());
    assert!(
        t0.elapsed() >= Duration::from_millis(900),
        "honours timeout"
    );

    let typer = alice.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        typer.send_text("late");
    });
    let t0 = std::time::Instant::now();
    let ups = bot.get_updates().timeout(10).await.expect("long poll");
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "woken by the update, not the timeout"
    );
    assert_eq!(message(&ups[0]).text(), Some("late"));
}

#[tokio::test]
async fn tap_arrives_as_callback_query_with_message() {
    let (fake, bot, alice) = start_with_alice().await;
    let sent = bot
        .send_message(ChatId(42), "Pick a card")
        .reply_markup(InlineKeyboardMarkup::new([[
            InlineKeyboardButton::callback("Steam", "buy:steam"),
            InlineKeyboardButton::callback("PSN", "buy:psn"),
        ]]))
        .await
        .expect("send");
    let qid = alice.tap_button(sent.id.0, "PSN").expect("tap by label");
    let ups = next_updates(&bot, 1).await;
    let UpdateKind::CallbackQuery(q) = &ups[0].kind else {
        panic!("expected callback query, got {:?}", ups[0].kind);
    };
    assert_eq!(q.id.0, qid);
    assert_eq!(q.data.as_deref(), Some("buy:psn"));
    assert_eq!(q.from.id, UserId(42));
    let msg = q
        .message
        .as_ref()
        .and_then(|m| m.regular_message())
        .expect("the tapped message");
    assert_eq!(msg.id, sent.id);
    assert_eq!(msg.text(), Some("Pick a card"));
    assert!(msg.reply_markup().is_some());
    assert!(!q.chat_instance.is_empty());

    assert_eq!(
        alice.tap(999, "buy:psn"),
        Err(SimError::NoSuchMessage {
            chat_id: 42,
            message_id: 999
        })
    );
    assert!(fake.pending_updates() == 0);
}

#[tokio::test]
async fn pay_flows_through_pre_checkout_to_successful_payment() {
    let (fake, bot, alice) = start_with_alice().await;
    let inv = bot
        .send_invoice(
            ChatId(42),
            "PSN $20",
            "PlayStation card",
            "order:9",
            "XTR",
            [LabeledPrice::new("PSN $20", 900)],
        )
        .await
        .expect("invoice");

    // Replayed charge id: the same id twice, as a test of idempotent order handling.
    for round in 0..2 {
        let payer = alice.clone();
        let id = inv.id.0;
        let paying = tokio::spawn(async move { payer.pay_with_charge_id(id, "stxREPLAY").await });
        let ups = next_updates(&bot, 1).await;
        let UpdateKind::PreCheckoutQuery(q) = &ups[0].kind else {
            panic!("expected pre-checkout, got {:?}", ups[0].kind);
        };
        assert_eq!((q.currency.as_str(), q.total_amount), ("XTR", 900));
        bot.answer_pre_checkout_query(q.id.clone(), true)
            .await
            .expect("answer");
        let outcome = paying.await.expect("join").expect("pay");
        assert!(
            matches!(&outcome, PaymentOutcome::Paid(r) if r.payment.telegram_payment_charge_id == "stxREPLAY"),
            "{outcome:?}"
        );
        let ups = next_updates(&bot, 1).await;
        let m = message(&ups[0]);
        let sp = m.successful_payment().expect("successful_payment");
        assert_eq!(
            sp.telegram_payment_charge_id.0, "stxREPLAY",
            "round {round}"
        );
        assert_eq!(sp.invoice_payload, "order:9");
        assert_eq!(m.from.as_ref().map(|u| u.id), Some(UserId(42)));
    }
    assert_eq!(fake.payments().len(), 2);

    // A rejected checkout.
    let payer = alice.clone();
    let id = inv.id.0;
    let paying = tokio::spawn(async move { payer.pay(id).await });
    let ups = next_updates(&bot, 1).await;
    let UpdateKind::PreCheckoutQuery(q) = &ups[0].kind else {
        panic!("expected pre-checkout");
    };
    bot.answer_pre_checkout_query(q.id.clone(), false)
        .error_message("Out of stock")
        .await
        .expect("answer no");
    assert_eq!(
        paying.await.expect("join").expect("pay"),
        PaymentOutcome::Rejected {
            error_message: Some("Out of stock".to_owned())
        }
    );
    assert_eq!(fake.payments().len(), 2, "no payment on rejection");
    assert_eq!(fake.pending_updates(), 0, "no successful_payment queued");

    // Not an invoice.
    let text_id = alice.send_text("hi");
    assert_eq!(
        alice.pay(text_id).await,
        Err(SimError::NotAnInvoice {
            message_id: text_id
        })
    );
}

#[tokio::test]
async fn unanswered_pre_checkout_times_out() {
    let mut cfg = FakeConfig::new(TOKEN);
    cfg.pre_checkout_timeout = Duration::from_millis(200);
    let fake = FakeTelegram::start_with("127.0.0.1:0".parse().expect("addr"), cfg)
        .await
        .expect("start");
    let bot = Bot::new(TOKEN).set_api_url(fake.api_url().parse().expect("url"));
    let alice = fake.user(42, "Alice", None, "en");
    alice.send_command("/start");
    next_updates(&bot, 1).await;
    let inv = bot
        .send_invoice(
            ChatId(42),
            "T",
            "D",
            "p",
            "XTR",
            [LabeledPrice::new("x", 1)],
        )
        .await
        .expect("invoice");
    assert_eq!(alice.pay(inv.id.0).await, Ok(PaymentOutcome::NoAnswer));
    let ups = next_updates(&bot, 1).await;
    let UpdateKind::PreCheckoutQuery(q) = &ups[0].kind else {
        panic!("expected pre-checkout");
    };
    let late = bot.answer_pre_checkout_query(q.id.clone(), true).await;
    assert!(late.is_err(), "answering after Telegram gave up fails");
    assert!(fake.payments().is_empty());
}

#[tokio::test]
async fn blocking_sends_my_chat_member_and_allowed_updates_filter() {
    let (fake, bot, alice) = start_with_alice().await;
    alice.block_bot();
    let ups = next_updates(&bot, 1).await;
    let UpdateKind::MyChatMember(cm) = &ups[0].kind else {
        panic!("expected my_chat_member, got {:?}", ups[0].kind);
    };
    assert!(matches!(cm.new_chat_member.kind, ChatMemberKind::Banned(_)));
    assert_eq!(cm.from.id, UserId(42));

    // Writing again unblocks (the client's "Restart" button).
    alice.send_text("/start");
    assert!(
        next_updates(&bot, 2)
            .await
            .iter()
            .any(|u| matches!(u.kind, UpdateKind::MyChatMember(_)))
    );

    // allowed_updates = [message] drops callback queries.
    let sent = bot
        .send_message(ChatId(42), "kb")
        .reply_markup(InlineKeyboardMarkup::new([[
            InlineKeyboardButton::callback("x", "x"),
        ]]))
        .await
        .expect("send");
    alice.tap(sent.id.0, "x").expect("tap");
    alice.send_text("after tap");
    let ups = bot
        .get_updates()
        .allowed_updates([AllowedUpdate::Message])
        .await
        .expect("filtered");
    assert_eq!(ups.len(), 1);
    assert_eq!(message(&ups[0]).text(), Some("after tap"));
    let _ = fake;
}

#[tokio::test]
async fn many_users_at_once() {
    let (fake, bot) = start().await;
    let users: Vec<_> = (1..=25)
        .map(|i| fake.user(1000 + i, &format!("U{i}"), None, "en"))
        .collect();
    let tasks: Vec<_> = users
        .iter()
        .cloned()
        .map(|u| tokio::spawn(async move { u.send_text(&format!("hi from {}", u.id())) }))
        .collect();
    for t in tasks {
        t.await.expect("join");
    }
    let ups = next_updates(&bot, 25).await;
    let mut ids: Vec<u32> = ups.iter().map(|u| u.id.0).collect();
    let sorted = {
        let mut s = ids.clone();
        s.sort_unstable();
        s
    };
    assert_eq!(ids, sorted, "delivered in id order");
    ids.dedup();
    assert_eq!(ids.len(), 25, "unique update ids");

    // Reply to everyone concurrently; each chat gets exactly its own reply.
    let sends: Vec<_> = ups
        .iter()
        .map(|u| {
            let bot = bot.clone();
            let m = message(u).clone();
            tokio::spawn(async move {
                bot.send_message(m.chat.id, format!("echo {}", m.chat.id))
                    .await
            })
        })
        .collect();
    for s in sends {
        s.await.expect("join").expect("send");
    }
    for u in &users {
        let reply = u
            .wait_for(
                |m| m.text.as_deref() == Some(&format!("echo {}", u.id())),
                WAIT,
            )
            .await
            .expect("reply visible");
        assert_eq!(reply.chat_id, u.id());
        assert_eq!(u.chat().len(), 2);
    }
}
