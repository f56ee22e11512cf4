//! Mutable state of the fake Telegram server and the Bot API JSON it produces.
//!
//! All state sits in one `State` behind a `std::sync::Mutex` (never held across an
//! `.await`). `Shared::with` runs a closure on it and then, still under the lock so the
//! order is the state's order, broadcasts the events the closure queued, bumps the
//! `watch` version that `wait_*` helpers sleep on and wakes long-polling `getUpdates`
//! through a `Notify` when updates were queued.
//!
//! JSON shapes follow the Bot API objects as teloxide-core 0.13 deserializes them:
//! `User {id,is_bot,first_name,username?,language_code?}`, private `Chat
//! {id,type:"private",first_name,username?}`, `Message {message_id,from,chat,date,
//! edit_date?,text?|caption?,entities?,reply_markup?(inline only),photo?:[PhotoSize],
//! document?,invoice?,successful_payment?}`, `Update {update_id, <kind>: …}` with exactly
//! one kind key (teloxide reads the first key after `update_id`).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};
use tokio::sync::{Notify, broadcast, oneshot, watch};

use super::types::{
    BotProfile, CallbackAnswer, ChatEvent, ChatMessage, CommandSet, FileInfo, PaymentInfo,
    PaymentRecord, PreCheckoutAnswer, RecordedCall, RefundRecord, ReplyKeyboard, SimError,
};

pub(crate) struct Shared {
    pub(crate) token: String,
    pub(crate) state: Mutex<State>,
    pub(crate) updates_ready: Notify,
    pub(crate) version: watch::Sender<u64>,
    pub(crate) events: broadcast::Sender<ChatEvent>,
    pub(crate) shutdown: watch::Sender<bool>,
    pub(crate) pre_checkout_timeout: Duration,
}

impl Shared {
    /// Mutates the state, then publishes what the mutation queued.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let mut st = self.lock();
        let r = f(&mut st);
        let events = std::mem::take(&mut st.outbox);
        let new_updates = std::mem::take(&mut st.updates_pushed);
        for e in events {
            // No receiver is fine: the feed is best-effort.
            let _ = self.events.send(e);
        }
        self.version.send_modify(|v| *v = v.wrapping_add(1));
        drop(st);
        if new_updates {
            self.updates_ready.notify_waiters();
        }
        r
    }

    /// Reads the state without publishing anything.
    pub(crate) fn peek<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        f(&self.lock())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

pub(crate) fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub(crate) fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A simulated Telegram user (and so a private chat with the same id).
#[derive(Clone, Debug)]
pub(crate) struct UserInfo {
    pub(crate) id: i64,
    pub(crate) first_name: String,
    pub(crate) username: Option<String>,
    pub(crate) language_code: String,
}

/// A message plus the raw inline markup the bot sent (returned verbatim in Bot API
/// JSON and compared for "message is not modified").
#[derive(Clone, Debug)]
pub(crate) struct Stored {
    pub(crate) view: ChatMessage,
    pub(crate) markup: Option<Value>,
}

pub(crate) struct ChatState {
    pub(crate) user: UserInfo,
    pub(crate) messages: BTreeMap<i32, Stored>,
    pub(crate) next_message_id: i32,
    pub(crate) blocked: bool,
    /// The user has written to (or tapped in) the chat: the bot may message them.
    pub(crate) started: bool,
    pub(crate) reply_keyboard: Option<ReplyKeyboard>,
    pub(crate) actions: Vec<String>,
}

pub(crate) struct PendingUpdate {
    pub(crate) id: u32,
    pub(crate) kind: &'static str,
    pub(crate) payload: Value,
}

pub(crate) struct PendingCallback {
    pub(crate) user_id: i64,
    pub(crate) message_id: i32,
    pub(crate) data: String,
}

pub(crate) struct PendingPreCheckout {
    pub(crate) user_id: i64,
    pub(crate) invoice_message_id: i32,
    pub(crate) payload: String,
    pub(crate) currency: String,
    pub(crate) total_amount: u32,
    pub(crate) reply: Option<oneshot::Sender<PreCheckoutAnswer>>,
}

/// A one-shot failure injected with `FakeTelegram::fail_next`.
#[derive(Clone, Debug)]
pub(crate) struct ApiErr {
    pub(crate) code: u16,
    pub(crate) description: String,
    pub(crate) retry_after: Option<u32>,
}

impl ApiErr {
    pub(crate) fn bad(description: impl Into<String>) -> Self {
        let d = description.into();
        let description = if d.starts_with("Bad Request: ") {
            d
        } else {
            format!("Bad Request: {d}")
        };
        ApiErr {
            code: 400,
            description,
            retry_after: None,
        }
    }

    pub(crate) fn new(code: u16, description: impl Into<String>) -> Self {
        ApiErr {
            code,
            description: description.into(),
            retry_after: None,
        }
    }
}

pub(crate) struct State {
    pub(crate) bot: BotProfile,
    pub(crate) next_update_id: u32,
    pub(crate) updates: VecDeque<PendingUpdate>,
    /// Last `allowed_updates` given to `getUpdates` (Telegram keeps it between calls).
    pub(crate) allowed_updates: Option<Vec<String>>,
    pub(crate) webhook_url: String,
    /// `secret_token` of the last `setWebhook`.
    pub(crate) webhook_secret: Option<String>,
    /// Updates the bot's webhook accepted (2xx), and attempts it did not.
    pub(crate) webhook_deliveries: u64,
    pub(crate) webhook_failures: u64,
    pub(crate) chats: BTreeMap<i64, ChatState>,
    pub(crate) calls: Vec<RecordedCall>,
    pub(crate) next_call_seq: u64,
    pub(crate) callbacks_pending: HashMap<String, PendingCallback>,
    pub(crate) callback_answers: Vec<CallbackAnswer>,
    pub(crate) pre_checkouts_pending: HashMap<String, PendingPreCheckout>,
    pub(crate) pre_checkout_answers: Vec<PreCheckoutAnswer>,
    pub(crate) payments: Vec<PaymentRecord>,
    pub(crate) refunds: Vec<RefundRecord>,
    pub(crate) star_transactions: Vec<super::stars::StarTransaction>,
    pub(crate) commands: BTreeMap<(String, String), CommandSet>,
    /// `None` key: the default menu button; `Some(chat_id)`: per chat.
    pub(crate) menu_buttons: BTreeMap<Option<i64>, Value>,
    pub(crate) files: HashMap<String, FileInfo>,
    pub(crate) file_paths: HashMap<String, String>,
    pub(crate) unknown_methods: Vec<String>,
    pub(crate) failures: HashMap<String, VecDeque<ApiErr>>,
    pub(crate) next_seq: u64,
    pub(crate) outbox: Vec<ChatEvent>,
    pub(crate) updates_pushed: bool,
}

/// Update kinds Telegram delivers when `allowed_updates` is empty or was never given.
const DEFAULT_EXCLUDED: &[&str] = &["chat_member", "message_reaction", "message_reaction_count"];

impl State {
    pub(crate) fn new(bot: BotProfile, first_update_id: u32) -> Self {
        State {
            bot,
            next_update_id: first_update_id,
            updates: VecDeque::new(),
            allowed_updates: None,
            webhook_url: String::new(),
            webhook_secret: None,
            webhook_deliveries: 0,
            webhook_failures: 0,
            chats: BTreeMap::new(),
            calls: Vec::new(),
            next_call_seq: 1,
            callbacks_pending: HashMap::new(),
            callback_answers: Vec::new(),
            pre_checkouts_pending: HashMap::new(),
            pre_checkout_answers: Vec::new(),
            payments: Vec::new(),
            refunds: Vec::new(),
            star_transactions: Vec::new(),
            commands: BTreeMap::new(),
            menu_buttons: BTreeMap::new(),
            files: HashMap::new(),
            file_paths: HashMap::new(),
            unknown_methods: Vec::new(),
            failures: HashMap::new(),
            next_seq: 1,
            outbox: Vec::new(),
            updates_pushed: false,
        }
    }

    /// A fresh number for ids (callback queries, pre-checkout queries, files).
    pub(crate) fn seq(&mut self) -> u64 {
        let n = self.next_seq;
        self.next_seq += 1;
        n
    }

    pub(crate) fn emit(&mut self, e: ChatEvent) {
        self.outbox.push(e);
    }

    // ----- updates -------------------------------------------------------------------

    pub(crate) fn push_update(&mut self, kind: &'static str, payload: Value) -> u32 {
        let id = self.next_update_id;
        self.next_update_id = self.next_update_id.wrapping_add(1);
        self.updates.push_back(PendingUpdate { id, kind, payload });
        self.updates_pushed = true;
        id
    }

    /// `getUpdates` semantics: confirm (drop) updates below `offset` (a negative offset
    /// keeps only the last `-offset`), drop kinds that `allowed_updates` excludes, and
    /// return up to `limit` updates without removing them.
    pub(crate) fn take_updates(
        &mut self,
        offset: Option<i64>,
        limit: usize,
        allowed: Option<Vec<String>>,
    ) -> Vec<Value> {
        if let Some(a) = allowed {
            self.allowed_updates = Some(a);
        }
        match offset {
            Some(o) if o < 0 => {
                let keep = o.unsigned_abs() as usize;
                while self.updates.len() > keep {
                    self.updates.pop_front();
                }
            }
            Some(o) if o > 0 => self.updates.retain(|u| i64::from(u.id) >= o),
            _ => {}
        }
        let allowed = self.allowed_updates.clone().unwrap_or_default();
        self.updates.retain(|u| {
            if allowed.is_empty() {
                !DEFAULT_EXCLUDED.contains(&u.kind)
            } else {
                allowed.iter().any(|a| a == u.kind)
            }
        });
        self.updates
            .iter()
            .take(limit)
            .map(|u| {
                let mut m = Map::new();
                m.insert("update_id".into(), json!(u.id));
                m.insert(u.kind.into(), u.payload.clone());
                Value::Object(m)
            })
            .collect()
    }

    // ----- JSON builders -------------------------------------------------------------

    pub(crate) fn bot_user_json(&self) -> Value {
        json!({
            "id": self.bot.id,
            "is_bot": true,
            "first_name": self.bot.first_name,
            "username": self.bot.username,
        })
    }

    pub(crate) fn me_json(&self) -> Value {
        let mut v = self.bot_user_json();
        if let Some(m) = v.as_object_mut() {
            m.insert("can_join_groups".into(), json!(true));
            m.insert("can_read_all_group_messages".into(), json!(false));
            m.insert("supports_inline_queries".into(), json!(false));
            m.insert("can_connect_to_business".into(), json!(false));
            m.insert("has_main_web_app".into(), json!(false));
        }
        v
    }

    pub(crate) fn message_json(&self, chat_id: i64, stored: &Stored) -> Value {
        let Some(chat) = self.chats.get(&chat_id) else {
            return Value::Null;
        };
        let m = &stored.view;
        let mut o = Map::new();
        o.insert("message_id".into(), json!(m.message_id));
        let from = if m.from_bot {
            self.bot_user_json()
        } else {
            user_json(&chat.user)
        };
        o.insert("from".into(), from);
        o.insert("chat".into(), chat_json(&chat.user));
        o.insert("date".into(), json!(m.date));
        if let Some(e) = m.edit_date {
            o.insert("edit_date".into(), json!(e));
        }
        let entities = if m.entities.is_empty() {
            None
        } else {
            Some(Value::Array(m.entities.clone()))
        };
        if let Some(t) = &m.text {
            o.insert("text".into(), json!(t));
            if let Some(e) = entities.clone() {
                o.insert("entities".into(), e);
            }
        }
        if let Some(c) = m.caption.as_ref().filter(|c| !c.is_empty()) {
            o.insert("caption".into(), json!(c));
            if let Some(e) = entities {
                o.insert("caption_entities".into(), e);
            }
        }
        if let Some(p) = &m.photo {
            o.insert(
                "photo".into(),
                json!([{
                    "file_id": p.file_id,
                    "file_unique_id": p.file_unique_id,
                    "file_size": p.size,
                    "width": p.width,
                    "height": p.height,
                }]),
            );
        }
        if let Some(d) = &m.document {
            let mut doc = json!({
                "file_id": d.file_id,
                "file_unique_id": d.file_unique_id,
                "file_size": d.size,
            });
            if let Some(obj) = doc.as_object_mut() {
                if let Some(n) = &d.file_name {
                    obj.insert("file_name".into(), json!(n));
                }
                if let Some(mt) = &d.mime_type {
                    obj.insert("mime_type".into(), json!(mt));
                }
            }
            o.insert("document".into(), doc);
        }
        if let Some(i) = &m.invoice {
            o.insert(
                "invoice".into(),
                json!({
                    "title": i.title,
                    "description": i.description,
                    "start_parameter": i.start_parameter,
                    "currency": i.currency,
                    "total_amount": i.total_amount,
                }),
            );
        }
        if let Some(p) = &m.successful_payment {
            o.insert(
                "successful_payment".into(),
                json!({
                    "currency": p.currency,
                    "total_amount": p.total_amount,
                    "invoice_payload": p.invoice_payload,
                    "telegram_payment_charge_id": p.telegram_payment_charge_id,
                    "provider_payment_charge_id": p.provider_payment_charge_id,
                }),
            );
        }
        if let Some(mk) = &stored.markup {
            o.insert("reply_markup".into(), mk.clone());
        }
        Value::Object(o)
    }

    // ----- chats ---------------------------------------------------------------------

    pub(crate) fn register_user(&mut self, user: UserInfo) {
        match self.chats.get_mut(&user.id) {
            Some(c) => c.user = user,
            None => {
                self.chats.insert(
                    user.id,
                    ChatState {
                        user,
                        messages: BTreeMap::new(),
                        next_message_id: 1,
                        blocked: false,
                        started: false,
                        reply_keyboard: None,
                        actions: Vec::new(),
                    },
                );
            }
        }
    }

    /// Stores a message (assigning id and date), applies its reply keyboard to the
    /// chat, emits `MessageAdded` and returns the stored copy.
    pub(crate) fn add_message(&mut self, chat_id: i64, mut stored: Stored) -> Option<Stored> {
        let chat = self.chats.get_mut(&chat_id)?;
        let id = chat.next_message_id;
        chat.next_message_id += 1;
        stored.view.chat_id = chat_id;
        stored.view.message_id = id;
        stored.view.date = now_unix();
        let keyboard_change = if let Some(kb) = &stored.view.reply_keyboard {
            chat.reply_keyboard = Some(kb.clone());
            Some(Some(kb.clone()))
        } else if stored.view.removes_keyboard {
            chat.reply_keyboard = None;
            Some(None)
        } else {
            None
        };
        chat.messages.insert(id, stored.clone());
        self.emit(ChatEvent::MessageAdded {
            message: stored.view.clone(),
        });
        if let Some(keyboard) = keyboard_change {
            self.emit(ChatEvent::ReplyKeyboardChanged { chat_id, keyboard });
        }
        Some(stored)
    }

    fn blank_message(from_bot: bool) -> ChatMessage {
        ChatMessage {
            chat_id: 0,
            message_id: 0,
            from_bot,
            date: 0,
            edit_date: None,
            edits: 0,
            text: None,
            caption: None,
            parse_mode: None,
            entities: Vec::new(),
            inline_keyboard: Vec::new(),
            reply_keyboard: None,
            removes_keyboard: false,
            photo: None,
            document: None,
            invoice: None,
            successful_payment: None,
            reply_to: None,
        }
    }

    pub(crate) fn bot_message() -> ChatMessage {
        Self::blank_message(true)
    }

    // ----- simulated user actions ----------------------------------------------------

    /// The user writes `text` (a leading `/command` gets a `bot_command` entity).
    pub(crate) fn user_send_text(&mut self, user_id: i64, text: &str) -> Option<i32> {
        self.user_starts(user_id);
        let mut view = Self::blank_message(false);
        view.text = Some(text.to_owned());
        if text.starts_with('/') {
            let cmd = text.split_whitespace().next().unwrap_or("");
            view.entities = vec![json!({
                "type": "bot_command",
                "offset": 0,
                "length": cmd.encode_utf16().count(),
            })];
        }
        let stored = self.add_message(user_id, Stored { view, markup: None })?;
        let msg = self.message_json(user_id, &stored);
        self.push_update("message", msg);
        Some(stored.view.message_id)
    }

    /// Marks the chat as started; a blocked bot gets unblocked (the client's "Restart").
    fn user_starts(&mut self, user_id: i64) {
        let was_blocked = match self.chats.get_mut(&user_id) {
            Some(c) => {
                c.started = true;
                c.blocked
            }
            None => return,
        };
        if was_blocked {
            self.set_blocked(user_id, false);
        }
    }

    pub(crate) fn set_blocked(&mut self, user_id: i64, blocked: bool) {
        let Some(chat) = self.chats.get_mut(&user_id) else {
            return;
        };
        if chat.blocked == blocked {
            return;
        }
        chat.blocked = blocked;
        let user = chat.user.clone();
        let bot = self.bot_user_json();
        let member = |status: &str| {
            if status == "kicked" {
                json!({"user": bot, "status": "kicked", "until_date": 0})
            } else {
                json!({"user": bot, "status": "member"})
            }
        };
        let (old, new) = if blocked {
            (member("member"), member("kicked"))
        } else {
            (member("kicked"), member("member"))
        };
        let payload = json!({
            "chat": chat_json(&user),
            "from": user_json(&user),
            "date": now_unix(),
            "old_chat_member": old,
            "new_chat_member": new,
        });
        self.push_update("my_chat_member", payload);
        self.emit(ChatEvent::BotBlocked {
            chat_id: user_id,
            blocked,
        });
    }

    pub(crate) fn find_message(&self, chat_id: i64, message_id: i32) -> Result<&Stored, SimError> {
        self.chats
            .get(&chat_id)
            .and_then(|c| c.messages.get(&message_id))
            .ok_or(SimError::NoSuchMessage {
                chat_id,
                message_id,
            })
    }

    /// The user taps an inline button; enqueues a `callback_query` update.
    pub(crate) fn user_tap(
        &mut self,
        user_id: i64,
        message_id: i32,
        data: &str,
    ) -> Result<String, SimError> {
        let stored = self.find_message(user_id, message_id)?;
        if stored.view.button_with_data(data).is_none() {
            return Err(SimError::NoSuchButton {
                message_id,
                wanted: data.to_owned(),
            });
        }
        self.user_forged_tap(user_id, message_id, data)
    }

    /// A `callback_query` with any data at all, as a modified client can send.
    pub(crate) fn user_forged_tap(
        &mut self,
        user_id: i64,
        message_id: i32,
        data: &str,
    ) -> Result<String, SimError> {
        let stored = self.find_message(user_id, message_id)?;
        let message = self.message_json(user_id, stored);
        self.user_starts(user_id);
        let id = format!("{}", 4_000_000_000_000_000_000u64 + self.seq());
        let Some(chat) = self.chats.get(&user_id) else {
            return Err(SimError::NoSuchMessage {
                chat_id: user_id,
                message_id,
            });
        };
        let payload = json!({
            "id": id,
            "from": user_json(&chat.user),
            "message": message,
            "chat_instance": format!("{}", user_id.wrapping_mul(7919).wrapping_abs()),
            "data": data,
        });
        self.callbacks_pending.insert(
            id.clone(),
            PendingCallback {
                user_id,
                message_id,
                data: data.to_owned(),
            },
        );
        self.push_update("callback_query", payload);
        Ok(id)
    }

    /// The user presses "Pay"; enqueues a `pre_checkout_query` update.
    pub(crate) fn user_pre_checkout(
        &mut self,
        user_id: i64,
        invoice_message_id: i32,
        reply: oneshot::Sender<PreCheckoutAnswer>,
    ) -> Result<String, SimError> {
        let stored = self.find_message(user_id, invoice_message_id)?;
        let Some(inv) = stored.view.invoice.clone() else {
            return Err(SimError::NotAnInvoice {
                message_id: invoice_message_id,
            });
        };
        self.user_starts(user_id);
        let id = format!("{}", 5_000_000_000_000_000_000u64 + self.seq());
        let Some(chat) = self.chats.get(&user_id) else {
            return Err(SimError::NotAnInvoice {
                message_id: invoice_message_id,
            });
        };
        let payload = json!({
            "id": id,
            "from": user_json(&chat.user),
            "currency": inv.currency,
            "total_amount": inv.total_amount,
            "invoice_payload": inv.payload,
        });
        self.pre_checkouts_pending.insert(
            id.clone(),
            PendingPreCheckout {
                user_id,
                invoice_message_id,
                payload: inv.payload,
                currency: inv.currency,
                total_amount: inv.total_amount,
                reply: Some(reply),
            },
        );
        self.push_update("pre_checkout_query", payload);
        Ok(id)
    }

    /// After an ok pre-checkout answer: the `successful_payment` service message.
    /// `deliver: false` loses the update (as a crash between Telegram's confirmation and
    /// the handler would): the payment is in the chat and the Star ledger only.
    pub(crate) fn complete_payment(
        &mut self,
        answer: &PreCheckoutAnswer,
        charge_id: String,
        deliver: bool,
    ) -> Option<PaymentRecord> {
        let payment = PaymentInfo {
            currency: answer.currency.clone(),
            total_amount: answer.total_amount,
            invoice_payload: answer.invoice_payload.clone(),
            telegram_payment_charge_id: charge_id,
            provider_payment_charge_id: if answer.currency == "XTR" {
                String::new()
            } else {
                format!("prov_{}", self.seq())
            },
        };
        let mut view = Self::blank_message(false);
        view.successful_payment = Some(payment.clone());
        let stored = self.add_message(answer.user_id, Stored { view, markup: None })?;
        let msg = self.message_json(answer.user_id, &stored);
        if deliver {
            self.push_update("message", msg);
        }
        super::stars::record(
            self,
            &payment.currency,
            &payment.telegram_payment_charge_id,
            payment.total_amount,
            answer.user_id,
            &payment.invoice_payload,
            true,
        );
        let record = PaymentRecord {
            user_id: answer.user_id,
            invoice_message_id: answer.invoice_message_id,
            message_id: stored.view.message_id,
            payment,
            refunded: false,
        };
        self.payments.push(record.clone());
        self.emit(ChatEvent::PaymentCompleted {
            payment: record.clone(),
        });
        Some(record)
    }

    pub(crate) fn visible_chat(&self, chat_id: i64) -> Vec<ChatMessage> {
        self.chats
            .get(&chat_id)
            .map(|c| c.messages.values().map(|s| s.view.clone()).collect())
            .unwrap_or_default()
    }
}

pub(crate) fn user_json(u: &UserInfo) -> Value {
    let mut v = json!({"id": u.id, "is_bot": false, "first_name": u.first_name});
    if let Some(o) = v.as_object_mut() {
        if let Some(n) = &u.username {
            o.insert("username".into(), json!(n));
        }
        if !u.language_code.is_empty() {
            o.insert("language_code".into(), json!(u.language_code));
        }
    }
    v
}

pub(crate) fn chat_json(u: &UserInfo) -> Value {
    let mut v = json!({"id": u.id, "type": "private", "first_name": u.first_name});
    if let (Some(o), Some(n)) = (v.as_object_mut(), &u.username) {
        o.insert("username".into(), json!(n));
    }
    v
}
