//! A fake Telegram Bot API server on loopback, for end-to-end tests of the Kiosk shop
//! bot and as the back end of an offline browser demo.
//!
//! The bot (teloxide 0.17 / teloxide-core 0.13, Bot API 9.x) is pointed at
//! [`FakeTelegram::api_url`] and calls `POST {api_url}bot{token}/{Method}` exactly as
//! it would call api.telegram.org. Simulated people ([`SimUser`]) type text, send
//! commands, tap inline buttons and pay invoices in Telegram Stars; what they do
//! reaches the bot through `getUpdates` long polling, or by POSTs to the URL of
//! `setWebhook` with its secret token (`webhook.rs`), as the same JSON Telegram sends.
//! Tests then look at what a person would see ([`FakeTelegram::chat`]: messages with
//! edits and deletions applied, keyboards, photos, invoices) or at the raw record
//! (every call with its parameters, callback answers, pre-checkout answers, payments,
//! refunds), and can `await` conditions without sleeping ([`FakeTelegram::wait_for`]).
//! A `tokio::sync::broadcast` feed of [`ChatEvent`]s (serde-serializable) drives a
//! live web view.
//!
//! Shapes are taken from the Bot API documentation and checked against
//! teloxide-core's serde types (see `state.rs` for the JSON, `methods.rs` for the
//! methods and their Telegram error texts, `markup.rs` for parse-mode validation).
//! Deliberate simplifications: only private chats with simulated users exist; text
//! sent with a `parse_mode` is validated but stored and echoed as sent (Telegram would
//! return plain text plus entities); a photo has one size; URLs are never fetched;
//! `pre_checkout_query` waits for the bot for [`FakeConfig::pre_checkout_timeout`]
//! (Telegram: 10 s). Unknown methods are recorded and answered `true`.

mod http;
mod markup;
mod methods;
mod stars;
mod state;
mod types;
mod webhook;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{Notify, broadcast, oneshot, watch};
use tokio::task::JoinHandle;

pub use stars::StarTransaction;
use state::{ApiErr, Shared, State, UserInfo};
pub use types::{
    BotProfile, CallbackAnswer, ChatEvent, ChatMessage, CommandSet, FileInfo, InlineButton,
    InvoiceInfo, PaymentInfo, PaymentOutcome, PaymentRecord, PreCheckoutAnswer, RecordedCall,
    RefundRecord, ReplyKeyboard, SimError, UploadMeta, WaitTimeout,
};

/// Settings of a [`FakeTelegram`]; [`FakeConfig::new`] gives the defaults.
#[derive(Clone)]
pub struct FakeConfig {
    /// Bot token the bot must use, e.g. "123:TEST" (its numeric prefix is the bot id).
    pub token: String,
    pub bot_first_name: String,
    pub bot_username: String,
    /// How long [`SimUser::pay`] waits for `answerPreCheckoutQuery` (default 10 s).
    pub pre_checkout_timeout: Duration,
    /// The first `update_id` handed out (default 100 000).
    pub first_update_id: u32,
    /// Capacity of the event feed (default 1024; slow receivers see `Lagged`).
    pub event_capacity: usize,
}

impl std::fmt::Debug for FakeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeConfig")
            .field("token", &"***")
            .field("bot_first_name", &self.bot_first_name)
            .field("bot_username", &self.bot_username)
            .field("pre_checkout_timeout", &self.pre_checkout_timeout)
            .field("first_update_id", &self.first_update_id)
            .field("event_capacity", &self.event_capacity)
            .finish()
    }
}

impl FakeConfig {
    pub fn new(token: &str) -> Self {
        FakeConfig {
            token: token.to_owned(),
            bot_first_name: "Kiosk".to_owned(),
            bot_username: "kiosk_test_bot".to_owned(),
            pre_checkout_timeout: Duration::from_secs(10),
            first_update_id: 100_000,
            event_capacity: 1024,
        }
    }
}

/// The running fake server. Dropping it stops the server; [`FakeTelegram::shutdown`]
/// also waits for it to finish.
pub struct FakeTelegram {
    shared: Arc<Shared>,
    addr: SocketAddr,
    server: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for FakeTelegram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token is a secret in production code paths: never print it.
        f.debug_struct("FakeTelegram")
            .field("addr", &self.addr)
            .field("token", &"***")
            .finish()
    }
}

impl FakeTelegram {
    /// Binds `addr` (use `127.0.0.1:0`) and serves the Bot API for `token`.
    pub async fn start(addr: SocketAddr, token: &str) -> std::io::Result<FakeTelegram> {
        Self::start_with(addr, FakeConfig::new(token)).await
    }

    pub async fn start_with(addr: SocketAddr, config: FakeConfig) -> std::io::Result<FakeTelegram> {
        let bot_id = config
            .token
            .split_once(':')
            .and_then(|(id, _)| id.parse::<i64>().ok())
            .ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "bot token must look like \"<numeric id>:<secret>\"",
                )
            })?;
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let bot = BotProfile {
            id: bot_id,
            first_name: config.bot_first_name.clone(),
            username: config.bot_username.clone(),
        };
        let (version, _) = watch::channel(0u64);
        let (events, _) = broadcast::channel(config.event_capacity.max(1));
        let (shutdown, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            token: config.token.clone(),
            state: Mutex::new(State::new(bot, config.first_update_id)),
            updates_ready: Notify::new(),
            version,
            events,
            shutdown,
            pre_checkout_timeout: config.pre_checkout_timeout,
        });
        tokio::spawn(webhook::deliver(shared.clone()));
        let app = http::router(shared.clone());
        let mut stop = shared.shutdown.subscribe();
        let server = tokio::spawn(async move {
            let graceful = axum::serve(listener, app).with_graceful_shutdown(async move {
                // Ends on `true` or when the sender is gone.
                let _ = stop.wait_for(|s| *s).await;
            });
            if let Err(e) = graceful.await {
                tracing::warn!(error = %e, "fake telegram server stopped with an error");
            }
        });
        Ok(FakeTelegram {
            shared,
            addr,
            server: Mutex::new(Some(server)),
        })
    }

    /// Base URL for teloxide (`Bot::set_api_url`) or `TELOXIDE_API_URL`, with a
    /// trailing slash: `http://127.0.0.1:PORT/`.
    pub fn api_url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// URL of an uploaded file's bytes (for the web demo's `<img src>`).
    pub fn file_url(&self, file: &FileInfo) -> String {
        format!(
            "http://{}/file/bot{}/{}",
            self.addr, self.shared.token, file.file_path
        )
    }

    pub fn bot(&self) -> BotProfile {
        self.shared.peek(|st| st.bot.clone())
    }

    /// Stops accepting requests, ends pending long polls and waits (at most 5 s) for
    /// the server task.
    pub async fn shutdown(&self) {
        self.shared.shutdown.send_replace(true);
        self.shared.updates_ready.notify_waiters();
        let handle = self
            .server
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(mut h) = handle
            && tokio::time::timeout(Duration::from_secs(5), &mut h)
                .await
                .is_err()
        {
            h.abort();
        }
    }

    // ----- simulated users ---------------------------------------------------------

    /// A simulated user (registering or updating them). Their private chat has the same
    /// id. The bot may message them only after they wrote to it (as on Telegram).
    pub fn user(
        &self,
        id: i64,
        first_name: &str,
        username: Option<&str>,
        language_code: &str,
    ) -> SimUser {
        self.shared.with(|st| {
            st.register_user(UserInfo {
                id,
                first_name: first_name.to_owned(),
                username: username.map(str::to_owned),
                language_code: language_code.to_owned(),
            })
        });
        SimUser {
            shared: self.shared.clone(),
            id,
        }
    }

    // ----- observation -------------------------------------------------------------

    /// The chat as the user sees it now, oldest first.
    pub fn chat(&self, chat_id: i64) -> Vec<ChatMessage> {
        self.shared.peek(|st| st.visible_chat(chat_id))
    }

    pub fn message(&self, chat_id: i64, message_id: i32) -> Option<ChatMessage> {
        self.shared.peek(|st| {
            st.find_message(chat_id, message_id)
                .ok()
                .map(|s| s.view.clone())
        })
    }

    /// The Bot API `Message` JSON the bot would get for this message now.
    pub fn message_json(&self, chat_id: i64, message_id: i32) -> Option<Value> {
        self.shared.peek(|st| {
            st.find_message(chat_id, message_id)
                .ok()
                .map(|s| st.message_json(chat_id, s))
        })
    }

    pub fn last_bot_message(&self, chat_id: i64) -> Option<ChatMessage> {
        self.chat(chat_id).into_iter().rev().find(|m| m.from_bot)
    }

    /// The reply keyboard currently shown in the chat.
    pub fn reply_keyboard(&self, chat_id: i64) -> Option<ReplyKeyboard> {
        self.shared.peek(|st| {
            st.chats
                .get(&chat_id)
                .and_then(|c| c.reply_keyboard.clone())
        })
    }

    /// `sendChatAction` actions for the chat, in order.
    pub fn chat_actions(&self, chat_id: i64) -> Vec<String> {
        self.shared.peek(|st| {
            st.chats
                .get(&chat_id)
                .map(|c| c.actions.clone())
                .unwrap_or_default()
        })
    }

    /// The URL of the last `setWebhook` (empty: long polling).
    pub fn webhook_url(&self) -> String {
        self.shared.peek(|st| st.webhook_url.clone())
    }

    /// Updates the bot's webhook accepted, and delivery attempts it refused or missed.
    pub fn webhook_deliveries(&self) -> (u64, u64) {
        self.shared
            .peek(|st| (st.webhook_deliveries, st.webhook_failures))
    }

    /// Every call received, in arrival order (including `getUpdates` polls).
    pub fn calls(&self) -> Vec<RecordedCall> {
        self.shared.peek(|st| st.calls.clone())
    }

    /// Calls of one method (case-insensitive), in arrival order.
    pub fn calls_to(&self, method: &str) -> Vec<RecordedCall> {
        self.shared.peek(|st| {
            st.calls
                .iter()
                .filter(|c| c.method.eq_ignore_ascii_case(method))
                .cloned()
                .collect()
        })
    }

    /// Methods the fake does not model (answered `true`), in call order.
    pub fn unknown_methods(&self) -> Vec<String> {
        self.shared.peek(|st| st.unknown_methods.clone())
    }

    pub fn callback_answers(&self) -> Vec<CallbackAnswer> {
        self.shared.peek(|st| st.callback_answers.clone())
    }

    pub fn pre_checkout_answers(&self) -> Vec<PreCheckoutAnswer> {
        self.shared.peek(|st| st.pre_checkout_answers.clone())
    }

    pub fn payments(&self) -> Vec<PaymentRecord> {
        self.shared.peek(|st| st.payments.clone())
    }

    pub fn refunds(&self) -> Vec<RefundRecord> {
        self.shared.peek(|st| st.refunds.clone())
    }

    /// The bot's Star ledger (`getStarTransactions`), oldest first.
    pub fn star_transactions(&self) -> Vec<StarTransaction> {
        self.shared.peek(|st| st.star_transactions.clone())
    }

    /// Adds a ledger entry the shop did not cause (another bot's payload, a refund made
    /// elsewhere), to test that reconciliation passes it over.
    pub fn add_star_transaction(&self, transaction: StarTransaction) {
        self.shared
            .with(|st| st.star_transactions.push(transaction));
    }

    /// Commands set for `scope` (Bot API `BotCommandScope` JSON, e.g.
    /// `json!({"type":"default"})`) and `language_code` (`""` for none).
    pub fn commands(&self, scope: &Value, language_code: &str) -> Option<Vec<(String, String)>> {
        let key = (methods::canonical_scope(scope), language_code.to_owned());
        self.shared
            .peek(|st| st.commands.get(&key).map(|c| c.commands.clone()))
    }

    /// Every stored command list.
    pub fn all_commands(&self) -> Vec<CommandSet> {
        self.shared
            .peek(|st| st.commands.values().cloned().collect())
    }

    /// Menu button set for a chat (`Some(id)`) or as default (`None`).
    pub fn menu_button(&self, chat_id: Option<i64>) -> Option<Value> {
        self.shared
            .peek(|st| st.menu_buttons.get(&chat_id).cloned())
    }

    /// A file the bot uploaded, by file id.
    pub fn file(&self, file_id: &str) -> Option<FileInfo> {
        self.shared.peek(|st| st.files.get(file_id).cloned())
    }

    /// Updates queued and not yet confirmed by the bot.
    pub fn pending_updates(&self) -> usize {
        self.shared.peek(|st| st.updates.len())
    }

    /// The live event feed.
    pub fn subscribe(&self) -> broadcast::Receiver<ChatEvent> {
        self.shared.events.subscribe()
    }

    /// Makes the next call of `method` fail with `error_code` / `description`
    /// (queued: call twice to fail two calls).
    pub fn fail_next(&self, method: &str, error_code: u16, description: &str) {
        self.push_failure(method, ApiErr::new(error_code, description), None);
    }

    /// Makes the next call of `method` fail with 429 "Too Many Requests: retry after N"
    /// and `parameters.retry_after` (teloxide: `RequestError::RetryAfter`).
    pub fn fail_next_retry_after(&self, method: &str, seconds: u32) {
        let e = ApiErr::new(429, format!("Too Many Requests: retry after {seconds}"));
        self.push_failure(method, e, Some(seconds));
    }

    fn push_failure(&self, method: &str, mut e: ApiErr, retry_after: Option<u32>) {
        e.retry_after = retry_after;
        self.shared.with(|st| {
            st.failures
                .entry(method.to_ascii_lowercase())
                .or_insert_with(VecDeque::new)
                .push_back(e)
        });
    }

    // ----- waiting -----------------------------------------------------------------

    /// Resolves with the newest bot message in `chat_id` matching `pred` (now or as
    /// soon as one is sent or edited into shape).
    pub async fn wait_for<F>(
        &self,
        chat_id: i64,
        pred: F,
        timeout: Duration,
    ) -> Result<ChatMessage, WaitTimeout>
    where
        F: Fn(&ChatMessage) -> bool,
    {
        wait_for_message(&self.shared, chat_id, pred, timeout).await
    }

    /// Resolves with the first call of `method` whose sequence number is greater than
    /// `after_seq` (0: any).
    pub async fn wait_for_call(
        &self,
        method: &str,
        after_seq: u64,
        timeout: Duration,
    ) -> Result<RecordedCall, WaitTimeout> {
        wait_until(
            &self.shared,
            |st| {
                st.calls
                    .iter()
                    .find(|c| c.seq > after_seq && c.method.eq_ignore_ascii_case(method))
                    .cloned()
            },
            timeout,
            format!("a {method} call"),
        )
        .await
    }

    /// Resolves when `cond` holds for this fake (checked after every state change).
    pub async fn wait_until<F>(&self, cond: F, timeout: Duration) -> Result<(), WaitTimeout>
    where
        F: Fn(&FakeTelegram) -> bool,
    {
        let mut rx = self.shared.version.subscribe();
        let fut = async {
            loop {
                rx.borrow_and_update();
                if cond(self) {
                    return;
                }
                if rx.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::time::timeout(timeout, fut)
            .await
            .map_err(|_| WaitTimeout {
                what: "a condition".to_owned(),
            })
    }
}

impl Drop for FakeTelegram {
    fn drop(&mut self) {
        self.shared.shutdown.send_replace(true);
        self.shared.updates_ready.notify_waiters();
    }
}

async fn wait_until<T>(
    shared: &Shared,
    f: impl Fn(&State) -> Option<T>,
    timeout: Duration,
    what: String,
) -> Result<T, WaitTimeout> {
    let mut rx = shared.version.subscribe();
    let fut = async {
        loop {
            rx.borrow_and_update();
            if let Some(t) = shared.peek(&f) {
                return t;
            }
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::time::timeout(timeout, fut)
        .await
        .map_err(|_| WaitTimeout { what })
}

async fn wait_for_message<F>(
    shared: &Shared,
    chat_id: i64,
    pred: F,
    timeout: Duration,
) -> Result<ChatMessage, WaitTimeout>
where
    F: Fn(&ChatMessage) -> bool,
{
    wait_until(
        shared,
        |st| {
            st.chats.get(&chat_id).and_then(|c| {
                c.messages
                    .values()
                    .rev()
                    .map(|s| &s.view)
                    .find(|m| m.from_bot && pred(m))
                    .cloned()
            })
        },
        timeout,
        format!("a matching bot message in chat {chat_id}"),
    )
    .await
}

/// A simulated Telegram user chatting privately with the bot. Cheap to clone.
#[derive(Clone)]
pub struct SimUser {
    shared: Arc<Shared>,
    id: i64,
}

impl std::fmt::Debug for SimUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimUser").field("id", &self.id).finish()
    }
}

impl SimUser {
    pub fn id(&self) -> i64 {
        self.id
    }

    /// Private chat id (equal to the user id).
    pub fn chat_id(&self) -> i64 {
        self.id
    }

    /// Types `text`; returns the new message id. A leading `/command` gets a
    /// `bot_command` entity, as Telegram clients send it. Unblocks a blocked bot.
    pub fn send_text(&self, text: &str) -> i32 {
        let id = self.id;
        self.shared
            .with(|st| st.user_send_text(id, text))
            .unwrap_or(0)
    }

    /// Sends a command such as "/start" or "/start ref_42" (a missing "/" is added).
    pub fn send_command(&self, command: &str) -> i32 {
        if command.starts_with('/') {
            self.send_text(command)
        } else {
            self.send_text(&format!("/{command}"))
        }
    }

    /// Presses a button of the chat's reply keyboard (sends its text); a one-time
    /// keyboard is hidden afterwards.
    pub fn press_reply_button(&self, text: &str) -> Result<i32, SimError> {
        let id = self.id;
        self.shared.with(|st| {
            let chat = st.chats.get_mut(&id);
            let kb = chat.and_then(|c| c.reply_keyboard.clone());
            let Some(kb) = kb.filter(|k| k.rows.iter().flatten().any(|b| b == text)) else {
                return Err(SimError::NoSuchReplyButton {
                    text: text.to_owned(),
                });
            };
            if kb.one_time_keyboard {
                if let Some(c) = st.chats.get_mut(&id) {
                    c.reply_keyboard = None;
                }
                st.emit(ChatEvent::ReplyKeyboardChanged {
                    chat_id: id,
                    keyboard: None,
                });
            }
            Ok(st.user_send_text(id, text).unwrap_or(0))
        })
    }

    /// Taps the inline button with `callback_data` on `message_id`; enqueues a
    /// `callback_query` carrying the message and returns the query id.
    pub fn tap(&self, message_id: i32, callback_data: &str) -> Result<String, SimError> {
        let id = self.id;
        self.shared
            .with(|st| st.user_tap(id, message_id, callback_data))
    }

    /// Sends a `callback_query` with arbitrary `data` for `message_id`, as a modified
    /// client could: for testing that forged payloads reveal nothing.
    pub fn forge_tap(&self, message_id: i32, data: &str) -> Result<String, SimError> {
        let id = self.id;
        self.shared
            .with(|st| st.user_forged_tap(id, message_id, data))
    }

    /// Taps the inline button labelled `text` (it must carry callback data).
    pub fn tap_button(&self, message_id: i32, text: &str) -> Result<String, SimError> {
        let msg = self
            .shared
            .peek(|st| st.find_message(self.id, message_id).map(|s| s.view.clone()))?;
        let data = msg
            .button_with_text(text)
            .and_then(|b| b.callback_data.clone())
            .ok_or_else(|| SimError::NoSuchButton {
                message_id,
                wanted: text.to_owned(),
            })?;
        self.tap(message_id, &data)
    }

    /// The bot's answer to a tap, if it answered yet.
    pub fn callback_answer(&self, callback_query_id: &str) -> Option<CallbackAnswer> {
        self.shared.peek(|st| {
            st.callback_answers
                .iter()
                .find(|a| a.callback_query_id == callback_query_id)
                .cloned()
        })
    }

    pub async fn wait_callback_answer(
        &self,
        callback_query_id: &str,
        timeout: Duration,
    ) -> Result<CallbackAnswer, WaitTimeout> {
        wait_until(
            &self.shared,
            |st| {
                st.callback_answers
                    .iter()
                    .find(|a| a.callback_query_id == callback_query_id)
                    .cloned()
            },
            timeout,
            format!("an answer to callback query {callback_query_id}"),
        )
        .await
    }

    /// Pays the invoice `invoice_message_id` with a fresh charge id ("stx…").
    pub async fn pay(&self, invoice_message_id: i32) -> Result<PaymentOutcome, SimError> {
        let charge = format!("stx{}", uuid::Uuid::new_v4().simple());
        self.pay_inner(invoice_message_id, charge, true).await
    }

    /// Pays with a chosen `telegram_payment_charge_id` (to replay a charge in tests).
    pub async fn pay_with_charge_id(
        &self,
        invoice_message_id: i32,
        charge_id: &str,
    ) -> Result<PaymentOutcome, SimError> {
        self.pay_inner(invoice_message_id, charge_id.to_owned(), true)
            .await
    }

    /// Pays, but the `successful_payment` update is lost (the bot crashed after Telegram
    /// took the batch): only the Star ledger (`getStarTransactions`) knows of it.
    pub async fn pay_losing_update(
        &self,
        invoice_message_id: i32,
    ) -> Result<PaymentOutcome, SimError> {
        let charge = format!("stx{}", uuid::Uuid::new_v4().simple());
        self.pay_inner(invoice_message_id, charge, false).await
    }

    async fn pay_inner(
        &self,
        invoice_message_id: i32,
        charge_id: String,
        deliver: bool,
    ) -> Result<PaymentOutcome, SimError> {
        let (tx, rx) = oneshot::channel();
        let id = self.id;
        let query_id = self
            .shared
            .with(|st| st.user_pre_checkout(id, invoice_message_id, tx))?;
        let answer = match tokio::time::timeout(self.shared.pre_checkout_timeout, rx).await {
            Ok(Ok(a)) => a,
            Ok(Err(_)) => return Err(SimError::ShutDown),
            Err(_) => {
                self.shared
                    .with(|st| st.pre_checkouts_pending.remove(&query_id));
                return Ok(PaymentOutcome::NoAnswer);
            }
        };
        if !answer.ok {
            return Ok(PaymentOutcome::Rejected {
                error_message: answer.error_message,
            });
        }
        self.shared
            .with(|st| st.complete_payment(&answer, charge_id, deliver))
            .map(PaymentOutcome::Paid)
            .ok_or(SimError::NoSuchMessage {
                chat_id: id,
                message_id: invoice_message_id,
            })
    }

    /// The user blocks the bot: later sends to them fail with 403 and the bot gets a
    /// `my_chat_member` update (status "kicked").
    pub fn block_bot(&self) {
        let id = self.id;
        self.shared.with(|st| st.set_blocked(id, true));
    }

    /// The user unblocks the bot (`my_chat_member` back to "member").
    pub fn unblock_bot(&self) {
        let id = self.id;
        self.shared.with(|st| st.set_blocked(id, false));
    }

    pub fn chat(&self) -> Vec<ChatMessage> {
        self.shared.peek(|st| st.visible_chat(self.id))
    }

    pub fn last_bot_message(&self) -> Option<ChatMessage> {
        self.chat().into_iter().rev().find(|m| m.from_bot)
    }

    /// [`FakeTelegram::wait_for`] in this user's chat.
    pub async fn wait_for<F>(&self, pred: F, timeout: Duration) -> Result<ChatMessage, WaitTimeout>
    where
        F: Fn(&ChatMessage) -> bool,
    {
        wait_for_message(&self.shared, self.id, pred, timeout).await
    }
}
