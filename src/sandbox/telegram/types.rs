//! Public, serde-serializable data types of the fake Telegram server: the visible chat
//! state (messages, keyboards, files, invoices), the records tests assert on (calls,
//! callback answers, pre-checkout answers, payments, refunds) and the live event type.
//!
//! These are the fake's own view types, not Bot API objects: they keep what a person
//! would see in a chat window plus the identifiers a test needs. The Bot API JSON that
//! the bot receives is produced from them in `state.rs`.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The bot account the fake impersonates (answered by `getMe`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BotProfile {
    /// The numeric prefix of the token, as on the real Bot API.
    pub id: i64,
    pub first_name: String,
    pub username: String,
}

/// One button of an inline keyboard as the user sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InlineButton {
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The invoice "Pay" button (`"pay": true`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pay: bool,
    /// `web_app.url` for Mini App buttons.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web_app_url: Option<String>,
}

impl InlineButton {
    /// `callback_data`, else `url`, else `web_app.url`, else an empty string.
    pub fn action(&self) -> &str {
        self.callback_data
            .as_deref()
            .or(self.url.as_deref())
            .or(self.web_app_url.as_deref())
            .unwrap_or("")
    }
}

/// A reply keyboard (the custom keyboard that replaces the phone keyboard).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyKeyboard {
    pub rows: Vec<Vec<String>>,
    #[serde(default)]
    pub resize_keyboard: bool,
    #[serde(default)]
    pub one_time_keyboard: bool,
    #[serde(default)]
    pub is_persistent: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_field_placeholder: Option<String>,
}

/// A file the bot uploaded (or referenced by URL / file id).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileInfo {
    pub file_id: String,
    pub file_unique_id: String,
    /// Path for `getFile` and `GET {api_url}file/bot{token}/{file_path}`.
    pub file_path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    pub size: u64,
    /// Image dimensions when the bytes are a PNG, JPEG, GIF or WebP image, else 0.
    #[serde(default)]
    pub width: u32,
    #[serde(default)]
    pub height: u32,
    /// Set when the bot sent an HTTP URL instead of bytes (nothing is fetched).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_url: Option<String>,
    /// The uploaded bytes; empty for URL sources. Not serialized: the web demo fetches
    /// them through the file download route.
    #[serde(skip)]
    pub bytes: Arc<Vec<u8>>,
}

/// What `sendInvoice` put in the chat.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceInfo {
    pub title: String,
    pub description: String,
    pub payload: String,
    pub currency: String,
    /// `(label, amount)` in the currency's smallest unit (whole stars for XTR).
    pub prices: Vec<(String, u32)>,
    pub total_amount: u32,
    #[serde(default)]
    pub start_parameter: String,
    /// `provider_token` as sent; `None` (absent or empty) for Telegram Stars.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub photo_url: Option<String>,
}

/// The `successful_payment` a buyer's payment produced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentInfo {
    pub currency: String,
    pub total_amount: u32,
    pub invoice_payload: String,
    pub telegram_payment_charge_id: String,
    pub provider_payment_charge_id: String,
}

/// One message as it is visible in a chat right now (edits applied in place).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub chat_id: i64,
    pub message_id: i32,
    /// `true` for messages the bot sent, `false` for the simulated user's.
    pub from_bot: bool,
    /// Unix seconds.
    pub date: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edit_date: Option<i64>,
    /// How many successful edits were applied.
    #[serde(default)]
    pub edits: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
    /// `parse_mode` as sent ("HTML", "MarkdownV2", "Markdown"); text is kept as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parse_mode: Option<String>,
    /// `entities` / `caption_entities` as sent, or generated (`bot_command`) for users.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entities: Vec<Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inline_keyboard: Vec<Vec<InlineButton>>,
    /// The reply keyboard this message attached, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_keyboard: Option<ReplyKeyboard>,
    /// `true` when the message carried `remove_keyboard`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub removes_keyboard: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub photo: Option<FileInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<FileInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invoice: Option<InvoiceInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub successful_payment: Option<PaymentInfo>,
    /// `reply_parameters.message_id` (or legacy `reply_to_message_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<i32>,
}

impl ChatMessage {
    /// Text or caption, whichever the message has.
    pub fn body(&self) -> &str {
        self.text
            .as_deref()
            .or(self.caption.as_deref())
            .unwrap_or("")
    }

    /// Inline keyboard as rows of `(text, callback_data or url)`.
    pub fn keyboard_rows(&self) -> Vec<Vec<(String, String)>> {
        self.inline_keyboard
            .iter()
            .map(|row| {
                row.iter()
                    .map(|b| (b.text.clone(), b.action().to_owned()))
                    .collect()
            })
            .collect()
    }

    /// The first inline button whose `callback_data` equals `data`.
    pub fn button_with_data(&self, data: &str) -> Option<&InlineButton> {
        self.inline_keyboard
            .iter()
            .flatten()
            .find(|b| b.callback_data.as_deref() == Some(data))
    }

    /// The first inline button whose text equals `text`.
    pub fn button_with_text(&self, text: &str) -> Option<&InlineButton> {
        self.inline_keyboard
            .iter()
            .flatten()
            .find(|b| b.text == text)
    }
}

/// Uploaded multipart file as recorded with a call (bytes live in [`FileInfo`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadMeta {
    /// The multipart part name (teloxide uses a random id referenced by `attach://`).
    pub part: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_name: Option<String>,
    pub size: u64,
}

/// One Bot API call as the fake received it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecordedCall {
    /// Increasing from 1 in arrival order.
    pub seq: u64,
    /// Method name as sent (e.g. "sendMessage").
    pub method: String,
    /// Parameters as one JSON object (multipart text fields decoded, JSON ones parsed).
    pub params: Value,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub uploads: Vec<UploadMeta>,
    /// Arrival time, Unix milliseconds.
    pub at_unix_ms: u64,
    /// `None` on success, else the error description returned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// An `answerCallbackQuery` the bot made, joined with the tap it answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackAnswer {
    pub callback_query_id: String,
    pub user_id: i64,
    pub chat_id: i64,
    pub message_id: i32,
    pub data: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default)]
    pub show_alert: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_time: Option<i64>,
}

/// An `answerPreCheckoutQuery` the bot made, joined with the query it answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreCheckoutAnswer {
    pub pre_checkout_query_id: String,
    pub user_id: i64,
    pub invoice_message_id: i32,
    pub invoice_payload: String,
    pub currency: String,
    pub total_amount: u32,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
}

/// A completed payment (the `successful_payment` message was delivered to the bot).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentRecord {
    pub user_id: i64,
    pub invoice_message_id: i32,
    /// The service message carrying `successful_payment`.
    pub message_id: i32,
    pub payment: PaymentInfo,
    #[serde(default)]
    pub refunded: bool,
}

/// A successful `refundStarPayment`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundRecord {
    pub user_id: i64,
    pub telegram_payment_charge_id: String,
    pub currency: String,
    pub total_amount: u32,
    pub invoice_payload: String,
}

/// A command list stored by `setMyCommands` for one (scope, language) pair.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandSet {
    /// `BotCommandScope` JSON, `{"type":"default"}` when absent.
    pub scope: Value,
    /// `""` when no `language_code` was given.
    pub language_code: String,
    /// `(command, description)` pairs in order.
    pub commands: Vec<(String, String)>,
}

/// What happened to a [`crate::sandbox::telegram::SimUser::pay`] attempt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum PaymentOutcome {
    /// The bot answered ok; `successful_payment` was enqueued.
    Paid(PaymentRecord),
    /// The bot answered `ok: false`.
    Rejected { error_message: Option<String> },
    /// The bot did not answer within the pre-checkout timeout (Telegram: 10 s).
    NoAnswer,
}

/// Errors of the simulated user's actions (the user tried something a real client can't).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SimError {
    /// No such message in the user's chat (never sent or deleted).
    NoSuchMessage { chat_id: i64, message_id: i32 },
    /// The message has no inline button with that callback data / text.
    NoSuchButton { message_id: i32, wanted: String },
    /// The message is not an invoice.
    NotAnInvoice { message_id: i32 },
    /// The current reply keyboard has no button with that text.
    NoSuchReplyButton { text: String },
    /// The fake was shut down.
    ShutDown,
}

impl std::fmt::Display for SimError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SimError::NoSuchMessage {
                chat_id,
                message_id,
            } => write!(f, "no message {message_id} in chat {chat_id}"),
            SimError::NoSuchButton { message_id, wanted } => {
                write!(f, "message {message_id} has no inline button {wanted:?}")
            }
            SimError::NotAnInvoice { message_id } => {
                write!(f, "message {message_id} is not an invoice")
            }
            SimError::NoSuchReplyButton { text } => {
                write!(f, "the reply keyboard has no button {text:?}")
            }
            SimError::ShutDown => write!(f, "the fake Telegram server was shut down"),
        }
    }
}

impl std::error::Error for SimError {}

/// A `wait_*` helper gave up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WaitTimeout {
    pub what: String,
}

impl std::fmt::Display for WaitTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "timed out waiting for {}", self.what)
    }
}

impl std::error::Error for WaitTimeout {}

/// Live feed of what happens in the chats (for the web demo and for tests).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ChatEvent {
    /// A bot or user message appeared.
    MessageAdded {
        message: ChatMessage,
    },
    /// A message changed (text, caption or keyboard); carries the new state.
    MessageEdited {
        message: ChatMessage,
    },
    MessageDeleted {
        chat_id: i64,
        message_id: i32,
    },
    /// Emitted after `MessageAdded` for invoice messages.
    InvoiceSent {
        chat_id: i64,
        message_id: i32,
        invoice: InvoiceInfo,
    },
    CallbackAnswered {
        answer: CallbackAnswer,
    },
    PreCheckoutAnswered {
        answer: PreCheckoutAnswer,
    },
    PaymentCompleted {
        payment: PaymentRecord,
    },
    Refunded {
        refund: RefundRecord,
    },
    /// `sendChatAction` ("typing", "upload_photo", ...).
    ChatAction {
        chat_id: i64,
        action: String,
    },
    /// The chat's reply keyboard was replaced (`None`: removed or hidden).
    ReplyKeyboardChanged {
        chat_id: i64,
        keyboard: Option<ReplyKeyboard>,
    },
    /// The user blocked (`true`) or unblocked (`false`) the bot.
    BotBlocked {
        chat_id: i64,
        blocked: bool,
    },
}
