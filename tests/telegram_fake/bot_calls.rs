//! A real teloxide `Bot` drives the fake Telegram server; the recorded state and the
//! visible chat must reflect every call.

use crate::support::*;
use kiosk::sandbox::telegram::{ChatEvent, PaymentOutcome};
use serde_json::json;
use teloxide::net::Download;
use teloxide::prelude::*;
use teloxide::types::{
    BotCommand, BotCommandScope, ChatAction, InlineKeyboardButton, InlineKeyboardMarkup, InputFile,
    KeyboardButton, KeyboardMarkup, KeyboardRemove, LabeledPrice, MenuButton, ParseMode, Recipient,
    UpdateKind,
};
use teloxide::{ApiError, RequestError};

fn shop_keyboard() -> InlineKeyboardMarkup {
    InlineKeyboardMarkup::new([[
        InlineKeyboardButton::callback("Steam $10", "buy:steam10"),
        InlineKeyboardButton::url("Help", "https://example.com/help".parse().expect("url")),
    ]])
}

#[tokio::test]
async fn send_edit_and_delete_message_with_inline_keyboard() {
    let (fake, bot, _alice) = start_with_alice().await;

    let sent = bot
        .send_message(ChatId(42), "<b>Catalog</b>")
        .parse_mode(ParseMode::Html)
        .reply_markup(shop_keyboard())
        .await
        .expect("sendMessage");
    assert_eq!(sent.text(), Some("<b>Catalog</b>"));
    assert_eq!(sent.chat.id, ChatId(42));
    assert_eq!(sent.from.as_ref().map(|u| u.id), Some(UserId(123)));
    let kb = sent.reply_markup().expect("inline keyboard echoed");
    assert_eq!(kb.inline_keyboard[0].len(), 2);

    let visible = fake.message(42, sent.id.0).expect("visible");
    assert!(visible.from_bot);
    assert_eq!(visible.text.as_deref(), Some("<b>Catalog</b>"));
    assert_eq!(visible.parse_mode.as_deref(), Some("HTML"));
    assert_eq!(
        visible.keyboard_rows(),
        vec![vec![
            ("Steam $10".to_owned(), "buy:steam10".to_owned()),
            ("Help".to_owned(), "https://example.com/help".to_owned()),
        ]]
    );
    let call = fake.calls_to("sendMessage").pop().expect("recorded");
    assert_eq!(call.params["chat_id"], json!(42));
    assert_eq!(
        call.params["reply_markup"]["inline_keyboard"][0][0]["callback_data"],
        json!("buy:steam10")
    );
    assert!(call.error.is_none());

    // Edit in place: text and keyboard change, the chat keeps one bot message.
    let edited = bot
        .edit_message_text(ChatId(42), sent.id, "Sold out")
        .reply_markup(InlineKeyboardMarkup::new([[
            InlineKeyboardButton::callback("Back", "back"),
        ]]))
        .await
        .expect("editMessageText");
    assert_eq!(edited.text(), Some("Sold out"));
    assert!(edited.edit_date().is_some());
    let visible = fake.message(42, sent.id.0).expect("still visible");
    assert_eq!(visible.text.as_deref(), Some("Sold out"));
    assert_eq!(visible.parse_mode, None);
    assert_eq!(visible.edits, 1);
    assert_eq!(
        visible.keyboard_rows(),
        vec![vec![("Back".to_owned(), "back".to_owned())]]
    );
    assert_eq!(fake.chat(42).iter().filter(|m| m.from_bot).count(), 1);

    // Same content again: Telegram's "message is not modified".
    let same = bot
        .edit_message_text(ChatId(42), sent.id, "Sold out")
        .reply_markup(InlineKeyboardMarkup::new([[
            InlineKeyboardButton::callback("Back", "back"),
        ]]))
        .await;
    assert!(
        matches!(same, Err(RequestError::Api(ApiError::MessageNotModified))),
        "{same:?}"
    );

    // Dropping the keyboard only.
    bot.edit_message_reply_markup(ChatId(42), sent.id)
        .await
        .expect("editMessageReplyMarkup");
    assert!(
        fake.message(42, sent.id.0)
            .expect("msg")
            .inline_keyboard
            .is_empty()
    );

    bot.delete_message(ChatId(42), sent.id)
        .await
        .expect("deleteMessage");
    assert!(fake.message(42, sent.id.0).is_none());
    assert!(fake.chat(42).iter().all(|m| !m.from_bot));
    let again = bot.delete_message(ChatId(42), sent.id).await;
    assert!(
        matches!(
            again,
            Err(RequestError::Api(ApiError::MessageToDeleteNotFound))
        ),
        "{again:?}"
    );
}

#[tokio::test]
async fn reply_keyboard_is_shown_and_removed() {
    let (fake, bot, alice) = start_with_alice().await;
    bot.send_message(ChatId(42), "Pick a language")
        .reply_markup(
            KeyboardMarkup::new([[
                KeyboardButton::new("English"),
                KeyboardButton::new("Русский"),
            ]])
            .resize_keyboard()
            .one_time_keyboard(),
        )
        .await
        .expect("send with reply keyboard");
    let kb = fake.reply_keyboard(42).expect("keyboard shown");
    assert_eq!(
        kb.rows,
        vec![vec!["English".to_owned(), "Русский".to_owned()]]
    );
    assert!(kb.resize_keyboard && kb.one_time_keyboard);

    assert!(alice.press_reply_button("Deutsch").is_err());
    let id = alice.press_reply_button("Русский").expect("press");
    assert_eq!(
        fake.message(42, id).and_then(|m| m.text),
        Some("Русский".to_owned())
    );
    assert!(fake.reply_keyboard(42).is_none(), "one-time keyboard hides");

    bot.send_message(ChatId(42), "menu")
        .reply_markup(KeyboardMarkup::new([[KeyboardButton::new("Shop")]]))
        .await
        .expect("second keyboard");
    assert!(fake.reply_keyboard(42).is_some());
    bot.send_message(ChatId(42), "bye")
        .reply_markup(KeyboardRemove::new())
        .await
        .expect("remove keyboard");
    assert!(fake.reply_keyboard(42).is_none());
}

#[tokio::test]
async fn stars_invoice_is_recorded_and_payable() {
    let (fake, bot, alice) = start_with_alice().await;
    let mut events = fake.subscribe();

    let inv = bot
        .send_invoice(
            ChatId(42),
            "Steam $10",
            "Steam gift card, EU region",
            "order:1",
            "XTR",
            [LabeledPrice::new("Steam $10", 500)],
        )
        .await
        .expect("sendInvoice");
    let invoice = inv.invoice().expect("invoice in the returned message");
    assert_eq!(invoice.currency, "XTR");
    assert_eq!(invoice.total_amount, 500);
    assert_eq!(invoice.title, "Steam $10");

    let visible = fake.message(42, inv.id.0).expect("visible");
    let details = visible.invoice.as_ref().expect("invoice details");
    assert_eq!(details.payload, "order:1");
    assert_eq!(details.prices, vec![("Steam $10".to_owned(), 500)]);
    assert_eq!(details.provider_token, None);
    assert!(
        visible.inline_keyboard[0][0].pay,
        "client draws a Pay button"
    );
    let params = &fake.calls_to("sendInvoice")[0].params;
    assert!(params.get("provider_token").is_none(), "{params}");

    let mut saw_invoice_event = false;
    while let Ok(e) = events.try_recv() {
        if let ChatEvent::InvoiceSent {
            message_id,
            invoice,
            ..
        } = e
        {
            saw_invoice_event = message_id == inv.id.0 && invoice.total_amount == 500;
        }
    }
    assert!(saw_invoice_event);

    // The buyer pays; the bot answers the pre-checkout query, then refunds.
    let payer = alice.clone();
    let invoice_id = inv.id.0;
    let paying = tokio::spawn(async move { payer.pay(invoice_id).await });
    let ups = next_updates(&bot, 1).await;
    let UpdateKind::PreCheckoutQuery(q) = &ups[0].kind else {
        panic!("expected a pre-checkout query, got {:?}", ups[0].kind);
    };
    assert_eq!(q.invoice_payload, "order:1");
    assert_eq!(q.total_amount, 500);
    assert_eq!(q.currency, "XTR");
    assert_eq!(q.from.id, UserId(42));
    bot.answer_pre_checkout_query(q.id.clone(), true)
        .await
        .expect("answerPreCheckoutQuery");
    let outcome = paying.await.expect("join").expect("pay");
    let PaymentOutcome::Paid(record) = outcome else {
        panic!("expected Paid, got {outcome:?}");
    };
    let answers = fake.pre_checkout_answers();
    assert_eq!(answers.len(), 1);
    assert!(answers[0].ok);
    assert_eq!(answers[0].invoice_message_id, inv.id.0);

    let ups = next_updates(&bot, 1).await;
    let paid = message(&ups[0])
        .successful_payment()
        .expect("successful_payment");
    assert_eq!(
        paid.telegram_payment_charge_id.0,
        record.payment.telegram_payment_charge_id
    );
    assert_eq!(paid.total_amount, 500);
    assert_eq!(paid.invoice_payload, "order:1");

    bot.refund_star_payment(UserId(42), paid.telegram_payment_charge_id.clone())
        .await
        .expect("refundStarPayment");
    let refunds = fake.refunds();
    assert_eq!(refunds.len(), 1);
    assert_eq!(refunds[0].user_id, 42);
    assert_eq!(
        refunds[0].telegram_payment_charge_id,
        record.payment.telegram_payment_charge_id
    );
    assert_eq!(refunds[0].total_amount, 500);
    assert!(fake.payments()[0].refunded);

    let twice = bot
        .refund_star_payment(UserId(42), paid.telegram_payment_charge_id.clone())
        .await;
    assert!(
        matches!(&twice, Err(RequestError::Api(ApiError::Unknown(d))) if d.contains("CHARGE_ALREADY_REFUNDED")),
        "{twice:?}"
    );
}

#[tokio::test]
async fn invoice_validation_follows_stars_rules() {
    let (_fake, bot, _alice) = start_with_alice().await;
    let two_prices = bot
        .send_invoice(
            ChatId(42),
            "Bundle",
            "Two items",
            "order:2",
            "XTR",
            [LabeledPrice::new("A", 1), LabeledPrice::new("B", 2)],
        )
        .await;
    assert!(
        matches!(&two_prices, Err(RequestError::Api(ApiError::Unknown(d))) if d.contains("STARS_INVOICE_INVALID")),
        "{two_prices:?}"
    );
    let long_title = bot
        .send_invoice(
            ChatId(42),
            "x".repeat(33),
            "d",
            "order:3",
            "XTR",
            [LabeledPrice::new("A", 1)],
        )
        .await;
    assert!(long_title.is_err());
}

#[tokio::test]
async fn photo_and_document_uploads_keep_bytes() {
    let (fake, bot, _alice) = start_with_alice().await;

    let sent = bot
        .send_photo(
            ChatId(42),
            InputFile::memory(PNG_1X1.to_vec()).file_name("card.png"),
        )
        .caption("Your gift card")
        .reply_markup(shop_keyboard())
        .await
        .expect("sendPhoto");
    let sizes = sent.photo().expect("photo sizes");
    assert_eq!((sizes[0].width, sizes[0].height), (1, 1));
    assert_eq!(sent.caption(), Some("Your gift card"));

    let visible = fake.message(42, sent.id.0).expect("visible");
    let photo = visible.photo.as_ref().expect("photo");
    assert_eq!(photo.bytes.as_slice(), PNG_1X1);
    assert_eq!(visible.caption.as_deref(), Some("Your gift card"));
    assert_eq!(visible.keyboard_rows()[0][0].1, "buy:steam10");
    let call = fake.calls_to("sendPhoto").pop().expect("recorded");
    assert_eq!(call.uploads.len(), 1);
    assert_eq!(call.uploads[0].size, PNG_1X1.len() as u64);
    assert_eq!(call.params["caption"], json!("Your gift card"));

    // Download through getFile + the file route, as a bot would.
    let file = bot
        .get_file(sizes[0].file.id.clone())
        .await
        .expect("getFile");
    let mut downloaded = Vec::new();
    bot.download_file(&file.path, &mut downloaded)
        .await
        .expect("download");
    assert_eq!(downloaded, PNG_1X1);

    // Without a file name, and re-sent by file id.
    let unnamed = bot
        .send_photo(ChatId(42), InputFile::memory(PNG_1X1.to_vec()))
        .await
        .expect("unnamed upload");
    assert_eq!(
        fake.message(42, unnamed.id.0)
            .and_then(|m| m.photo)
            .map(|p| p.size),
        Some(PNG_1X1.len() as u64)
    );
    let by_id = bot
        .send_photo(ChatId(42), InputFile::file_id(sizes[0].file.id.clone()))
        .await
        .expect("by file id");
    assert_eq!(by_id.photo().expect("photo")[0].file.id, sizes[0].file.id);

    let not_an_image = bot
        .send_photo(ChatId(42), InputFile::memory(b"<svg/>".to_vec()))
        .await;
    assert!(
        matches!(
            not_an_image,
            Err(RequestError::Api(ApiError::ImageProcessFailed))
        ),
        "{not_an_image:?}"
    );

    let doc = bot
        .send_document(
            ChatId(42),
            InputFile::memory(b"CODE-1234-5678".to_vec()).file_name("codes.txt"),
        )
        .caption("Your codes")
        .await
        .expect("sendDocument");
    let d = doc.document().expect("document");
    assert_eq!(d.file_name.as_deref(), Some("codes.txt"));
    assert_eq!(
        d.mime_type.as_ref().map(|m| m.essence_str().to_owned()),
        Some("text/plain".to_owned())
    );
    let visible = fake
        .message(42, doc.id.0)
        .and_then(|m| m.document)
        .expect("doc");
    assert_eq!(visible.bytes.as_slice(), b"CODE-1234-5678");
}

#[tokio::test]
async fn callback_answer_is_recorded_once() {
    let (fake, bot, alice) = start_with_alice().await;
    let sent = bot
        .send_message(ChatId(42), "Catalog")
        .reply_markup(shop_keyboard())
        .await
        .expect("send");
    assert!(alice.tap(sent.id.0, "nope").is_err(), "no such button");
    let query_id = alice.tap(sent.id.0, "buy:steam10").expect("tap");
    let ups = next_updates(&bot, 1).await;
    let UpdateKind::CallbackQuery(q) = &ups[0].kind else {
        panic!("expected callback query, got {:?}", ups[0].kind);
    };
    assert_eq!(q.id.0, query_id);
    bot.answer_callback_query(q.id.clone())
        .text("Added to cart")
        .show_alert(true)
        .await
        .expect("answerCallbackQuery");
    let answer = alice
        .wait_callback_answer(&query_id, WAIT)
        .await
        .expect("answer");
    assert_eq!(answer.text.as_deref(), Some("Added to cart"));
    assert!(answer.show_alert);
    assert_eq!(answer.data, "buy:steam10");
    assert_eq!(answer.message_id, sent.id.0);
    assert_eq!(fake.callback_answers(), vec![answer]);

    let twice = bot.answer_callback_query(q.id.clone()).await;
    assert!(
        matches!(twice, Err(RequestError::Api(ApiError::InvalidQueryId))),
        "{twice:?}"
    );
}

#[tokio::test]
async fn settings_lookups_and_unknown_methods() {
    let (fake, bot, _alice) = start_with_alice().await;

    let me = bot.get_me().await.expect("getMe");
    assert_eq!(me.id, UserId(123));
    assert_eq!(me.username(), "kiosk_test_bot");

    bot.delete_webhook().await.expect("deleteWebhook");

    bot.set_my_commands([
        BotCommand::new("start", "Open the shop"),
        BotCommand::new("orders", "My orders"),
    ])
    .await
    .expect("default commands");
    bot.set_my_commands([BotCommand::new("start", "Открыть магазин")])
        .language_code("ru")
        .await
        .expect("ru commands");
    bot.set_my_commands([BotCommand::new("admin", "Admin panel")])
        .scope(BotCommandScope::Chat {
            chat_id: Recipient::Id(ChatId(42)),
        })
        .await
        .expect("chat-scoped commands");

    let ru = bot
        .get_my_commands()
        .language_code("ru")
        .await
        .expect("getMyCommands");
    assert_eq!(ru, vec![BotCommand::new("start", "Открыть магазин")]);
    assert_eq!(
        fake.commands(&json!({"type": "default"}), ""),
        Some(vec![
            ("start".to_owned(), "Open the shop".to_owned()),
            ("orders".to_owned(), "My orders".to_owned()),
        ])
    );
    assert_eq!(
        fake.commands(&json!({"type": "chat", "chat_id": 42}), ""),
        Some(vec![("admin".to_owned(), "Admin panel".to_owned())])
    );
    assert_eq!(fake.all_commands().len(), 3);
    bot.delete_my_commands()
        .language_code("ru")
        .await
        .expect("deleteMyCommands");
    assert_eq!(fake.commands(&json!({"type": "default"}), "ru"), None);
    assert!(
        bot.get_my_commands()
            .language_code("ru")
            .await
            .expect("get")
            .is_empty()
    );

    let bad = bot
        .set_my_commands([BotCommand::new("Start", "caps")])
        .await;
    assert!(bad.is_err(), "upper-case commands are invalid on Telegram");

    bot.set_chat_menu_button()
        .chat_id(ChatId(42))
        .menu_button(MenuButton::Commands)
        .await
        .expect("setChatMenuButton");
    assert_eq!(
        fake.menu_button(Some(42)),
        Some(json!({"type": "commands"}))
    );

    bot.send_chat_action(ChatId(42), ChatAction::Typing)
        .await
        .expect("sendChatAction");
    assert_eq!(fake.chat_actions(42), vec!["typing".to_owned()]);

    let chat = bot.get_chat(ChatId(42)).await.expect("getChat");
    assert_eq!(chat.first_name(), Some("Alice"));
    assert_eq!(chat.username(), Some("alice"));

    bot.set_my_description()
        .description("Digital goods")
        .await
        .expect("unmodelled method answers true");
    assert_eq!(fake.unknown_methods(), vec!["setMyDescription".to_owned()]);
    let call = fake.calls_to("setMyDescription").pop().expect("recorded");
    assert_eq!(call.params["description"], json!("Digital goods"));
}
