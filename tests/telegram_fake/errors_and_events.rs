//! Telegram-shaped errors as teloxide reports them, the live event feed, `wait_for`,
//! and a small teloxide `Dispatcher` running against the fake.

use std::time::Duration;

use crate::support::*;
use kiosk::sandbox::telegram::ChatEvent;
use teloxide::prelude::*;
use teloxide::types::{InlineKeyboardButton, InlineKeyboardMarkup, MessageId, ParseMode};
use teloxide::update_listeners::Polling;
use teloxide::{ApiError, RequestError};

#[tokio::test]
async fn telegram_errors_map_to_teloxide_api_errors() {
    let (fake, bot, alice) = start_with_alice().await;

    let missing = bot
        .edit_message_text(ChatId(42), MessageId(4242), "new")
        .await;
    assert!(
        matches!(
            missing,
            Err(RequestError::Api(ApiError::MessageToEditNotFound))
        ),
        "{missing:?}"
    );

    // The user's own message can't be edited by the bot.
    let own = alice.send_text("mine");
    let theirs = bot.edit_message_text(ChatId(42), MessageId(own), "x").await;
    assert!(
        matches!(
            theirs,
            Err(RequestError::Api(ApiError::MessageCantBeEdited))
        ),
        "{theirs:?}"
    );

    let unknown_chat = bot.send_message(ChatId(999), "hi").await;
    assert!(
        matches!(unknown_chat, Err(RequestError::Api(ApiError::ChatNotFound))),
        "{unknown_chat:?}"
    );

    // A known user who never wrote to the bot.
    fake.user(77, "Carol", None, "de");
    let cold = bot.send_message(ChatId(77), "promo").await;
    assert!(
        matches!(&cold, Err(RequestError::Api(ApiError::Unknown(d))) if d == "Forbidden: bot can't initiate conversation with a user"),
        "{cold:?}"
    );

    let empty = bot.send_message(ChatId(42), "  ").await;
    assert!(
        matches!(empty, Err(RequestError::Api(ApiError::MessageTextIsEmpty))),
        "{empty:?}"
    );
    let long = bot.send_message(ChatId(42), "x".repeat(4097)).await;
    assert!(
        matches!(long, Err(RequestError::Api(ApiError::MessageIsTooLong))),
        "{long:?}"
    );
    let md = bot
        .send_message(ChatId(42), "Total: 10.50")
        .parse_mode(ParseMode::MarkdownV2)
        .await;
    assert!(
        matches!(&md, Err(RequestError::Api(ApiError::CantParseEntities(d))) if d.contains("Character '.' is reserved")),
        "{md:?}"
    );
    let br = bot
        .send_message(ChatId(42), "a<br>b")
        .parse_mode(ParseMode::Html)
        .await;
    assert!(
        matches!(br, Err(RequestError::Api(ApiError::CantParseEntities(_)))),
        "{br:?}"
    );
    let long_data = bot
        .send_message(ChatId(42), "kb")
        .reply_markup(InlineKeyboardMarkup::new([[
            InlineKeyboardButton::callback("x", "d".repeat(65)),
        ]]))
        .await;
    assert!(
        matches!(
            long_data,
            Err(RequestError::Api(ApiError::ButtonDataInvalid))
        ),
        "{long_data:?}"
    );

    // Blocked user: 403 that teloxide reports as BotBlocked, for sends and chat actions.
    alice.block_bot();
    let blocked = bot.send_message(ChatId(42), "your order").await;
    assert!(
        matches!(blocked, Err(RequestError::Api(ApiError::BotBlocked))),
        "{blocked:?}"
    );
    let call = fake.calls_to("sendMessage").pop().expect("recorded");
    assert_eq!(
        call.error.as_deref(),
        Some("Forbidden: bot was blocked by the user")
    );
    let typing = bot
        .send_chat_action(ChatId(42), teloxide::types::ChatAction::Typing)
        .await;
    assert!(matches!(
        typing,
        Err(RequestError::Api(ApiError::BotBlocked))
    ));
    alice.unblock_bot();
    bot.send_message(ChatId(42), "welcome back")
        .await
        .expect("unblocked");

    // Injected failures.
    fake.fail_next_retry_after("sendMessage", 3);
    let limited = bot.send_message(ChatId(42), "flood").await;
    assert!(
        matches!(limited, Err(RequestError::RetryAfter(s)) if s.seconds() == 3),
        "{limited:?}"
    );
    fake.fail_next("getMe", 400, "Bad Request: something odd");
    assert!(bot.get_me().await.is_err());
    assert!(bot.get_me().await.is_ok(), "one-shot");

    // Wrong token.
    let stranger = Bot::new("123:WRONG").set_api_url(fake.api_url().parse().expect("url"));
    let denied = stranger.get_me().await;
    assert!(
        matches!(denied, Err(RequestError::Api(ApiError::InvalidToken))),
        "{denied:?}"
    );
}

#[tokio::test]
async fn event_feed_and_wait_for() {
    let (fake, bot, alice) = start_with_alice().await;
    let mut events = fake.subscribe();

    // wait_for resolves when the bot's message shows up later.
    let b = bot.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        b.send_message(ChatId(42), "Your code: ABC")
            .reply_markup(InlineKeyboardMarkup::new([[
                InlineKeyboardButton::callback("Copy", "copy"),
            ]]))
            .await
    });
    let m = fake
        .wait_for(42, |m| m.body().starts_with("Your code"), WAIT)
        .await
        .expect("message arrives");
    assert_eq!(m.text.as_deref(), Some("Your code: ABC"));
    // ... and also when an edit makes an existing message match.
    let b = bot.clone();
    let mid = MessageId(m.message_id);
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        b.edit_message_text(ChatId(42), mid, "Delivered ✅").await
    });
    let edited = alice
        .wait_for(|m| m.body().contains("Delivered"), WAIT)
        .await
        .expect("edit observed");
    assert_eq!(edited.message_id, m.message_id);
    assert!(
        fake.wait_for(42, |m| m.body() == "never", Duration::from_millis(50))
            .await
            .is_err()
    );

    bot.delete_message(ChatId(42), mid).await.expect("delete");
    let seen: Vec<ChatEvent> = std::iter::from_fn(|| events.try_recv().ok()).collect();
    assert!(
        matches!(&seen[0], ChatEvent::MessageAdded { message } if message.text.as_deref() == Some("Your code: ABC"))
    );
    assert!(matches!(&seen[1], ChatEvent::MessageEdited { message } if message.edits == 1));
    assert!(
        matches!(seen[2], ChatEvent::MessageDeleted { chat_id: 42, message_id } if message_id == m.message_id)
    );

    // Serializable for the web demo, tagged by "type".
    let json = serde_json::to_value(&seen[0]).expect("serialize");
    assert_eq!(json["type"], "message_added");
    assert_eq!(
        json["message"]["inline_keyboard"][0][0]["callback_data"],
        "copy"
    );
    let back: ChatEvent = serde_json::from_value(json).expect("deserialize");
    assert_eq!(back, seen[0]);

    let call = fake
        .wait_for_call("deleteMessage", 0, WAIT)
        .await
        .expect("recorded");
    assert_eq!(call.params["message_id"], serde_json::json!(m.message_id));
}

#[tokio::test]
async fn dispatcher_echo_bot_then_shutdown() {
    let (fake, bot) = start().await;
    let alice = fake.user(42, "Alice", Some("alice"), "en");

    let handler = Update::filter_message().endpoint(|bot: Bot, msg: Message| async move {
        if let Some(text) = msg.text() {
            bot.send_message(msg.chat.id, format!("echo: {text}"))
                .await?;
        }
        respond(())
    });
    let mut dispatcher = Dispatcher::builder(bot.clone(), handler).build();
    let token = dispatcher.shutdown_token();
    let listener = Polling::builder(bot.clone())
        .timeout(Duration::from_secs(1))
        .delete_webhook()
        .await
        .build();
    let running = tokio::spawn(async move {
        dispatcher
            .dispatch_with_listener(listener, LoggingErrorHandler::new())
            .await
    });

    alice.send_command("/start");
    alice.send_text("hello");
    alice
        .wait_for(|m| m.body() == "echo: hello", WAIT)
        .await
        .expect("echo of hello");
    let replies: Vec<_> = alice
        .chat()
        .into_iter()
        .filter(|m| m.from_bot)
        .map(|m| m.text.unwrap_or_default())
        .collect();
    assert_eq!(replies, vec!["echo: /start", "echo: hello"]);
    assert!(!fake.calls_to("getMe").is_empty(), "dispatcher asked getMe");
    let info = fake.calls_to("getWebhookInfo");
    assert_eq!(info.len(), 1, "polling checks for a webhook");
    assert!(info[0].error.is_none());
    assert!(
        fake.calls_to("deleteWebhook").is_empty(),
        "no webhook, nothing deleted"
    );

    tokio::time::timeout(WAIT, token.shutdown().expect("dispatcher running"))
        .await
        .expect("dispatcher stops");
    tokio::time::timeout(WAIT, running)
        .await
        .expect("dispatch returns")
        .expect("join");
    fake.shutdown().await;
}
