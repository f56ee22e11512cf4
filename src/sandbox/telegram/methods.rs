//! Bot API method handlers of the fake Telegram server (everything except the
//! long-polling part of `getUpdates`, which lives in `http.rs`).
//!
//! Each handler reads `Params` (one JSON object however the request was encoded) and
//! mutates `State`; errors carry Telegram's HTTP code and description so teloxide maps
//! them to the same `ApiError` variants it would in production:
//! - 400 "Bad Request: chat not found" — unknown chat id;
//! - 403 "Forbidden: bot was blocked by the user" — `SimUser::block_bot`;
//! - 403 "Forbidden: bot can't initiate conversation with a user" — the user never
//!   wrote to the bot;
//! - 400 "Bad Request: message to edit not found" / "message to delete not found" /
//!   "message is not modified: …" / "message can't be edited";
//! - 400 "Bad Request: query is too old and response timeout expired or query id is
//!   invalid" — unknown or already answered callback / pre-checkout query;
//! - 400 "Bad Request: can't parse entities: …" — see `markup.rs`;
//! - 400 "Bad Request: CHARGE_ALREADY_REFUNDED" — second refund of a charge.
//!
//! Invoice validation follows the documented limits (title 1-32 characters,
//! description 1-255, payload 1-128 bytes, exactly one price and no provider token for
//! XTR); those descriptions use Telegram's upper-case error-code style.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::markup::visible_len;
use super::state::{ApiErr, State, Stored, chat_json, now_unix};
use super::types::{
    CallbackAnswer, ChatEvent, CommandSet, FileInfo, InlineButton, InvoiceInfo, PreCheckoutAnswer,
    RefundRecord, ReplyKeyboard,
};

pub(crate) const MESSAGE_NOT_MODIFIED: &str = "Bad Request: message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message";
pub(crate) const INVALID_QUERY: &str =
    "Bad Request: query is too old and response timeout expired or query id is invalid";
pub(crate) const BOT_BLOCKED: &str = "Forbidden: bot was blocked by the user";

/// Parameter names whose values are JSON-serialized objects/arrays when the request
/// is multipart or form-encoded.
pub(crate) const STRUCTURED: &[&str] = &[
    "reply_markup",
    "entities",
    "caption_entities",
    "reply_parameters",
    "link_preview_options",
    "prices",
    "commands",
    "scope",
    "menu_button",
    "allowed_updates",
    "media",
    "suggested_tip_amounts",
    "message_ids",
];

/// An uploaded multipart file.
#[derive(Clone, Debug)]
pub(crate) struct Upload {
    pub(crate) file_name: Option<String>,
    pub(crate) content_type: Option<String>,
    pub(crate) bytes: Vec<u8>,
}

/// Request parameters, however they were encoded.
#[derive(Clone, Debug, Default)]
pub(crate) struct Params {
    pub(crate) json: Map<String, Value>,
    pub(crate) uploads: HashMap<String, Upload>,
}

impl Params {
    pub(crate) fn get(&self, key: &str) -> Option<&Value> {
        self.json.get(key).filter(|v| !v.is_null())
    }

    pub(crate) fn i64(&self, key: &str) -> Option<i64> {
        match self.get(key)? {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    pub(crate) fn str(&self, key: &str) -> Option<String> {
        match self.get(key)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    pub(crate) fn bool(&self, key: &str) -> Option<bool> {
        match self.get(key)? {
            Value::Bool(b) => Some(*b),
            Value::String(s) => match s.as_str() {
                "true" | "True" | "1" => Some(true),
                "false" | "False" | "0" => Some(false),
                _ => None,
            },
            Value::Number(n) => n.as_i64().map(|n| n != 0),
            _ => None,
        }
    }

    /// An object/array parameter, also when it arrived as a JSON string.
    pub(crate) fn json(&self, key: &str) -> Option<Value> {
        match self.get(key)? {
            Value::String(s) => serde_json::from_str(s).ok(),
            v => Some(v.clone()),
        }
    }
}

pub(crate) fn dispatch(st: &mut State, method: &str, p: &Params) -> Result<Value, ApiErr> {
    match method.to_ascii_lowercase().as_str() {
        "getme" => Ok(st.me_json()),
        "logout" | "close" => Ok(json!(true)),
        "deletewebhook" => {
            if p.bool("drop_pending_updates").unwrap_or(false) {
                st.updates.clear();
            }
            st.webhook_url.clear();
            st.webhook_secret = None;
            Ok(json!(true))
        }
        "setwebhook" => {
            st.webhook_url = p.str("url").unwrap_or_default();
            st.webhook_secret = p.str("secret_token");
            if p.bool("drop_pending_updates").unwrap_or(false) {
                st.updates.clear();
            }
            // Wakes the deliverer (webhook.rs) at once.
            st.updates_pushed = true;
            Ok(json!(true))
        }
        "getwebhookinfo" => Ok(json!({
            "url": st.webhook_url,
            "has_custom_certificate": false,
            "pending_update_count": st.updates.len(),
        })),
        "setmycommands" => set_my_commands(st, p),
        "getmycommands" => {
            let key = commands_key(p);
            let list = st
                .commands
                .get(&key)
                .map(|c| {
                    c.commands
                        .iter()
                        .map(|(c, d)| json!({"command": c, "description": d}))
                        .collect()
                })
                .unwrap_or_default();
            Ok(Value::Array(list))
        }
        "deletemycommands" => {
            st.commands.remove(&commands_key(p));
            Ok(json!(true))
        }
        "setchatmenubutton" => {
            let button = p
                .json("menu_button")
                .unwrap_or_else(|| json!({"type": "default"}));
            st.menu_buttons.insert(p.i64("chat_id"), button);
            Ok(json!(true))
        }
        "getchatmenubutton" => Ok(st
            .menu_buttons
            .get(&p.i64("chat_id"))
            .or_else(|| st.menu_buttons.get(&None))
            .cloned()
            .unwrap_or_else(|| json!({"type": "commands"}))),
        "sendmessage" => send_message(st, p),
        "sendphoto" => send_media(st, p, MediaKind::Photo),
        "senddocument" => send_media(st, p, MediaKind::Document),
        "sendinvoice" => send_invoice(st, p),
        "editmessagetext" => edit_message(st, p, EditKind::Text),
        "editmessagecaption" => edit_message(st, p, EditKind::Caption),
        "editmessagereplymarkup" => edit_message(st, p, EditKind::Markup),
        "deletemessage" => delete_message(st, p),
        "deletemessages" => delete_messages(st, p),
        "answercallbackquery" => answer_callback_query(st, p),
        "answerprecheckoutquery" => answer_pre_checkout_query(st, p),
        "refundstarpayment" => refund_star_payment(st, p),
        "getstartransactions" => super::stars::get_star_transactions(st, p),
        "sendchataction" => send_chat_action(st, p),
        "getchat" => get_chat(st, p),
        "getfile" => get_file(st, p),
        _ => {
            st.unknown_methods.push(method.to_owned());
            Ok(json!(true))
        }
    }
}

// ----- chat resolution -------------------------------------------------------------

fn chat_id_param(p: &Params) -> Result<i64, ApiErr> {
    match p.get("chat_id") {
        None => Err(ApiErr::bad("chat_id is empty")),
        Some(_) => p
            .i64("chat_id")
            .ok_or_else(|| ApiErr::bad("chat not found")),
    }
}

/// A chat the bot may post to right now.
fn writable_chat(st: &State, p: &Params) -> Result<i64, ApiErr> {
    let id = chat_id_param(p)?;
    let chat = st
        .chats
        .get(&id)
        .ok_or_else(|| ApiErr::bad("chat not found"))?;
    if chat.blocked {
        return Err(ApiErr::new(403, BOT_BLOCKED));
    }
    if !chat.started {
        return Err(ApiErr::new(
            403,
            "Forbidden: bot can't initiate conversation with a user",
        ));
    }
    Ok(id)
}

// ----- markup ------------------------------------------------------------------------

#[derive(Default)]
struct Markup {
    /// Raw `{"inline_keyboard": …}` when non-empty.
    inline_raw: Option<Value>,
    inline: Vec<Vec<InlineButton>>,
    reply: Option<ReplyKeyboard>,
    remove: bool,
}

fn parse_markup(p: &Params) -> Result<Markup, ApiErr> {
    let Some(v) = p.json("reply_markup") else {
        if p.get("reply_markup").is_some() {
            return Err(ApiErr::bad("can't parse reply keyboard markup JSON object"));
        }
        return Ok(Markup::default());
    };
    let mut m = Markup::default();
    if let Some(rows) = v.get("inline_keyboard") {
        let rows = rows
            .as_array()
            .ok_or_else(|| ApiErr::bad("can't parse inline keyboard markup JSON object"))?;
        for row in rows {
            let row = row
                .as_array()
                .ok_or_else(|| ApiErr::bad("can't parse inline keyboard markup JSON object"))?;
            let mut out = Vec::new();
            for b in row {
                out.push(parse_inline_button(b)?);
            }
            if !out.is_empty() {
                m.inline.push(out);
            }
        }
        if !m.inline.is_empty() {
            m.inline_raw = Some(json!({"inline_keyboard": rows}));
        }
    } else if let Some(rows) = v.get("keyboard").and_then(Value::as_array) {
        let rows = rows
            .iter()
            .map(|row| {
                row.as_array()
                    .map(|r| {
                        r.iter()
                            .filter_map(|b| match b {
                                Value::String(s) => Some(s.clone()),
                                o => o.get("text").and_then(Value::as_str).map(str::to_owned),
                            })
                            .collect::<Vec<_>>()
                    })
                    .unwrap_or_default()
            })
            .filter(|r| !r.is_empty())
            .collect();
        let flag = |k: &str| v.get(k).and_then(Value::as_bool).unwrap_or(false);
        m.reply = Some(ReplyKeyboard {
            rows,
            resize_keyboard: flag("resize_keyboard"),
            one_time_keyboard: flag("one_time_keyboard"),
            is_persistent: flag("is_persistent"),
            input_field_placeholder: v
                .get("input_field_placeholder")
                .and_then(Value::as_str)
                .map(str::to_owned),
        });
    } else if v.get("remove_keyboard").and_then(Value::as_bool) == Some(true) {
        m.remove = true;
    } else if v.get("force_reply").is_none() {
        return Err(ApiErr::bad("can't parse reply keyboard markup JSON object"));
    }
    Ok(m)
}

fn parse_inline_button(b: &Value) -> Result<InlineButton, ApiErr> {
    let text = b
        .get("text")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiErr::bad("can't parse inline keyboard button: Text must be non-empty"))?;
    let callback_data = b
        .get("callback_data")
        .and_then(Value::as_str)
        .map(str::to_owned);
    if let Some(d) = &callback_data
        && (d.is_empty() || d.len() > 64)
    {
        return Err(ApiErr::bad("BUTTON_DATA_INVALID"));
    }
    let url = b.get("url").and_then(Value::as_str).map(str::to_owned);
    if let Some(u) = &url {
        let ok = ["http://", "https://", "tg://"]
            .iter()
            .any(|s| u.starts_with(s) && u.len() > s.len());
        if !ok {
            return Err(ApiErr::bad("BUTTON_URL_INVALID"));
        }
    }
    Ok(InlineButton {
        text: text.to_owned(),
        callback_data,
        url,
        pay: b.get("pay").and_then(Value::as_bool).unwrap_or(false),
        web_app_url: b
            .get("web_app")
            .and_then(|w| w.get("url"))
            .and_then(Value::as_str)
            .map(str::to_owned),
    })
}

fn entities(p: &Params, key: &str) -> Vec<Value> {
    p.json(key)
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
}

fn reply_to(p: &Params) -> Option<i32> {
    p.json("reply_parameters")
        .and_then(|r| r.get("message_id").and_then(Value::as_i64))
        .or_else(|| p.i64("reply_to_message_id"))
        .and_then(|id| i32::try_from(id).ok())
}

fn parse_mode(p: &Params) -> Option<String> {
    p.str("parse_mode").filter(|m| !m.is_empty())
}

// ----- sending -----------------------------------------------------------------------

fn finish_send(st: &mut State, chat_id: i64, stored: Stored) -> Result<Value, ApiErr> {
    let stored = st
        .add_message(chat_id, stored)
        .ok_or_else(|| ApiErr::bad("chat not found"))?;
    if let Some(invoice) = &stored.view.invoice {
        st.emit(ChatEvent::InvoiceSent {
            chat_id,
            message_id: stored.view.message_id,
            invoice: invoice.clone(),
        });
    }
    Ok(st.message_json(chat_id, &stored))
}

fn send_message(st: &mut State, p: &Params) -> Result<Value, ApiErr> {
    let chat_id = writable_chat(st, p)?;
    let text = p.str("text").unwrap_or_default();
    let mode = parse_mode(p);
    let len = visible_len(&text, mode.as_deref()).map_err(ApiErr::bad)?;
    if len == 0 || text.trim().is_empty() {
        return Err(ApiErr::bad("message text is empty"));
    }
    if len > 4096 {
        return Err(ApiErr::bad("message is too long"));
    }
    let markup = parse_markup(p)?;
    let mut view = State::bot_message();
    view.text = Some(text);
    view.parse_mode = mode;
    view.entities = entities(p, "entities");
    view.reply_to = reply_to(p);
    apply_markup(&mut view, &markup);
    finish_send(
        st,
        chat_id,
        Stored {
            view,
            markup: markup.inline_raw,
        },
    )
}

fn apply_markup(view: &mut super::types::ChatMessage, m: &Markup) {
    view.inline_keyboard = m.inline.clone();
    view.reply_keyboard = m.reply.clone();
    view.removes_keyboard = m.remove;
}

fn check_caption(p: &Params) -> Result<(Option<String>, Option<String>), ApiErr> {
    let caption = p.str("caption");
    let mode = parse_mode(p);
    if let Some(c) = &caption {
        let len = visible_len(c, mode.as_deref()).map_err(ApiErr::bad)?;
        if len > 1024 {
            return Err(ApiErr::bad("message caption is too long"));
        }
    }
    Ok((caption, mode))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum MediaKind {
    Photo,
    Document,
}

fn send_media(st: &mut State, p: &Params, kind: MediaKind) -> Result<Value, ApiErr> {
    let chat_id = writable_chat(st, p)?;
    let field = match kind {
        MediaKind::Photo => "photo",
        MediaKind::Document => "document",
    };
    let (caption, mode) = check_caption(p)?;
    let markup = parse_markup(p)?;
    let file = resolve_file(st, p, field, kind)?;
    let mut view = State::bot_message();
    view.caption = caption;
    view.parse_mode = mode;
    view.entities = entities(p, "caption_entities");
    view.reply_to = reply_to(p);
    apply_markup(&mut view, &markup);
    match kind {
        MediaKind::Photo => view.photo = Some(file),
        MediaKind::Document => view.document = Some(file),
    }
    finish_send(
        st,
        chat_id,
        Stored {
            view,
            markup: markup.inline_raw,
        },
    )
}

/// The file of `photo` / `document`: an `attach://` upload, a part named like the
/// field, a known file id, or an HTTP(S) URL (recorded, never fetched).
fn resolve_file(
    st: &mut State,
    p: &Params,
    field: &str,
    kind: MediaKind,
) -> Result<FileInfo, ApiErr> {
    let value = p.str(field).unwrap_or_default();
    let upload = value
        .strip_prefix("attach://")
        .and_then(|name| p.uploads.get(name))
        .or_else(|| p.uploads.get(field));
    if let Some(up) = upload {
        if up.bytes.is_empty() {
            return Err(ApiErr::bad("file must be non-empty"));
        }
        let dims = image_dimensions(&up.bytes);
        if kind == MediaKind::Photo && dims.is_none() {
            return Err(ApiErr::bad("IMAGE_PROCESS_FAILED"));
        }
        let (width, height) = dims.unwrap_or((0, 0));
        let mime = up
            .content_type
            .clone()
            .filter(|c| c != "application/octet-stream")
            .or_else(|| guess_mime(up.file_name.as_deref(), &up.bytes));
        let n = st.seq();
        let file_name = up.file_name.clone().filter(|n| !n.is_empty());
        let file_path = match kind {
            MediaKind::Photo => format!("photos/file_{n}.{}", ext_of(mime.as_deref())),
            MediaKind::Document => format!(
                "documents/file_{n}_{}",
                file_name.as_deref().unwrap_or("document")
            ),
        };
        let info = FileInfo {
            file_id: format!(
                "{}Fake{n:08}",
                if kind == MediaKind::Photo {
                    "AgAC"
                } else {
                    "BQAC"
                }
            ),
            file_unique_id: format!("AQAD{n:08}"),
            file_path: file_path.clone(),
            file_name: if kind == MediaKind::Document {
                file_name
            } else {
                None
            },
            mime_type: if kind == MediaKind::Document {
                mime
            } else {
                None
            },
            size: up.bytes.len() as u64,
            width,
            height,
            source_url: None,
            bytes: Arc::new(up.bytes.clone()),
        };
        st.files.insert(info.file_id.clone(), info.clone());
        st.file_paths.insert(file_path, info.file_id.clone());
        return Ok(info);
    }
    if value.is_empty() {
        return Err(ApiErr::bad(format!("there is no {field} in the request")));
    }
    if let Some(known) = st.files.get(&value) {
        return Ok(known.clone());
    }
    if value.starts_with("http://") || value.starts_with("https://") {
        let n = st.seq();
        return Ok(FileInfo {
            file_id: format!("AgACUrl{n:08}"),
            file_unique_id: format!("AQADUrl{n:08}"),
            file_path: String::new(),
            source_url: Some(value),
            ..FileInfo::default()
        });
    }
    Err(ApiErr::bad("wrong file identifier/HTTP URL specified"))
}

/// `(width, height)` of a PNG, JPEG, GIF or WebP image; `None` for anything else.
pub(crate) fn image_dimensions(b: &[u8]) -> Option<(u32, u32)> {
    let be32 =
        |i: usize| -> Option<u32> { Some(u32::from_be_bytes(b.get(i..i + 4)?.try_into().ok()?)) };
    let be16 = |i: usize| -> Option<u32> {
        Some(u32::from(u16::from_be_bytes(
            b.get(i..i + 2)?.try_into().ok()?,
        )))
    };
    let le16 = |i: usize| -> Option<u32> {
        Some(u32::from(u16::from_le_bytes(
            b.get(i..i + 2)?.try_into().ok()?,
        )))
    };
    if b.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Some((be32(16)?, be32(20)?));
    }
    if b.starts_with(b"GIF87a") || b.starts_with(b"GIF89a") {
        return Some((le16(6)?, le16(8)?));
    }
    if b.len() > 12 && &b[0..4] == b"RIFF" && &b[8..12] == b"WEBP" {
        return Some((0, 0));
    }
    if b.starts_with(&[0xFF, 0xD8]) {
        let mut i = 2usize;
        while i + 9 < b.len() {
            if b[i] != 0xFF {
                return None;
            }
            let marker = b[i + 1];
            let len = be16(i + 2)? as usize;
            if matches!(marker, 0xC0..=0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF) {
                return Some((be16(i + 7)?, be16(i + 5)?));
            }
            i += 2 + len;
        }
        return None;
    }
    None
}

fn guess_mime(file_name: Option<&str>, bytes: &[u8]) -> Option<String> {
    let ext = file_name
        .and_then(|n| n.rsplit_once('.'))
        .map(|(_, e)| e.to_ascii_lowercase());
    let by_ext = match ext.as_deref() {
        Some("png") => Some("image/png"),
        Some("jpg" | "jpeg") => Some("image/jpeg"),
        Some("gif") => Some("image/gif"),
        Some("webp") => Some("image/webp"),
        Some("pdf") => Some("application/pdf"),
        Some("txt") => Some("text/plain"),
        Some("csv") => Some("text/csv"),
        Some("json") => Some("application/json"),
        Some("zip") => Some("application/zip"),
        Some("html" | "htm") => Some("text/html"),
        _ => None,
    };
    let by_magic = || {
        if bytes.starts_with(b"\x89PNG") {
            Some("image/png")
        } else if bytes.starts_with(&[0xFF, 0xD8]) {
            Some("image/jpeg")
        } else if bytes.starts_with(b"%PDF") {
            Some("application/pdf")
        } else if bytes.starts_with(b"PK\x03\x04") {
            Some("application/zip")
        } else {
            None
        }
    };
    by_ext
        .or_else(by_magic)
        .or(Some("application/octet-stream"))
        .map(str::to_owned)
}

fn ext_of(mime: Option<&str>) -> &'static str {
    match mime {
        Some("image/png") => "png",
        Some("image/gif") => "gif",
        Some("image/webp") => "webp",
        _ => "jpg",
    }
}

fn send_invoice(st: &mut State, p: &Params) -> Result<Value, ApiErr> {
    let chat_id = writable_chat(st, p)?;
    let title = p.str("title").unwrap_or_default();
    let description = p.str("description").unwrap_or_default();
    let payload = p.str("payload").unwrap_or_default();
    let currency = p.str("currency").unwrap_or_default();
    let provider_token = p.str("provider_token").filter(|t| !t.is_empty());
    let title_len = title.chars().count();
    if title_len == 0 || title_len > 32 {
        return Err(ApiErr::bad("INVOICE_TITLE_INVALID"));
    }
    let desc_len = description.chars().count();
    if desc_len == 0 || desc_len > 255 {
        return Err(ApiErr::bad("INVOICE_DESCRIPTION_INVALID"));
    }
    if payload.is_empty() || payload.len() > 128 {
        return Err(ApiErr::bad("INVOICE_PAYLOAD_INVALID"));
    }
    if currency.len() != 3 {
        return Err(ApiErr::bad("CURRENCY_INVALID"));
    }
    let raw_prices = p
        .json("prices")
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default();
    let mut prices = Vec::new();
    let mut total: i64 = 0;
    for pr in &raw_prices {
        let label = pr.get("label").and_then(Value::as_str).unwrap_or_default();
        let amount = pr.get("amount").and_then(Value::as_i64);
        let Some(amount) = amount.filter(|_| !label.is_empty()) else {
            return Err(ApiErr::bad("can't parse prices JSON object"));
        };
        total += amount;
        prices.push((label.to_owned(), u32::try_from(amount.max(0)).unwrap_or(0)));
    }
    if prices.is_empty() {
        return Err(ApiErr::bad("CURRENCY_TOTAL_AMOUNT_INVALID"));
    }
    if currency == "XTR" {
        if provider_token.is_some() {
            return Err(ApiErr::bad("PAYMENT_PROVIDER_INVALID"));
        }
        if prices.len() != 1 {
            return Err(ApiErr::bad("STARS_INVOICE_INVALID"));
        }
    } else if provider_token.is_none() {
        return Err(ApiErr::bad("PAYMENT_PROVIDER_INVALID"));
    }
    let total = u32::try_from(total)
        .ok()
        .filter(|t| *t > 0)
        .ok_or_else(|| ApiErr::bad("CURRENCY_TOTAL_AMOUNT_INVALID"))?;
    let markup = parse_markup(p)?;
    let invoice = InvoiceInfo {
        title,
        description,
        payload,
        currency: currency.clone(),
        prices,
        total_amount: total,
        start_parameter: p.str("start_parameter").unwrap_or_default(),
        provider_token,
        photo_url: p.str("photo_url"),
    };
    let mut view = State::bot_message();
    view.reply_to = reply_to(p);
    apply_markup(&mut view, &markup);
    if view.inline_keyboard.is_empty() {
        // What the client draws when the bot sent no keyboard.
        let text = if currency == "XTR" {
            format!("Pay ⭐️{total}")
        } else {
            format!("Pay {total} {currency}")
        };
        view.inline_keyboard = vec![vec![InlineButton {
            text,
            callback_data: None,
            url: None,
            pay: true,
            web_app_url: None,
        }]];
    }
    view.invoice = Some(invoice);
    finish_send(
        st,
        chat_id,
        Stored {
            view,
            markup: markup.inline_raw,
        },
    )
}

fn send_chat_action(st: &mut State, p: &Params) -> Result<Value, ApiErr> {
    const ACTIONS: &[&str] = &[
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    ];
    let chat_id = writable_chat(st, p)?;
    let action = p.str("action").unwrap_or_default();
    if !ACTIONS.contains(&action.as_str()) {
        return Err(ApiErr::bad("wrong parameter action in request"));
    }
    if let Some(c) = st.chats.get_mut(&chat_id) {
        c.actions.push(action.clone());
    }
    st.emit(ChatEvent::ChatAction { chat_id, action });
    Ok(json!(true))
}

// ----- editing -----------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq)]
enum EditKind {
    Text,
    Caption,
    Markup,
}

fn edit_message(st: &mut State, p: &Params, kind: EditKind) -> Result<Value, ApiErr> {
    if p.get("inline_message_id").is_some() {
        return Err(ApiErr::bad("message to edit not found"));
    }
    let chat_id = chat_id_param(p)?;
    let chat = st
        .chats
        .get(&chat_id)
        .ok_or_else(|| ApiErr::bad("chat not found"))?;
    if chat.blocked {
        return Err(ApiErr::new(403, BOT_BLOCKED));
    }
    let message_id = p
        .i64("message_id")
        .and_then(|m| i32::try_from(m).ok())
        .ok_or_else(|| ApiErr::bad("message identifier is not specified"))?;
    let old = chat
        .messages
        .get(&message_id)
        .ok_or_else(|| ApiErr::bad("message to edit not found"))?
        .clone();
    if !old.view.from_bot {
        return Err(ApiErr::bad("message can't be edited"));
    }
    let markup = parse_markup(p)?;
    if markup.reply.is_some() || markup.remove {
        return Err(ApiErr::bad("inline keyboard expected"));
    }
    let mut new = old.clone();
    new.markup = markup.inline_raw.clone();
    new.view.inline_keyboard = markup.inline.clone();
    if old.view.invoice.is_some() && new.view.inline_keyboard.is_empty() {
        new.view.inline_keyboard = old.view.inline_keyboard.clone();
    }
    match kind {
        EditKind::Text => {
            if old.view.text.is_none() {
                return Err(ApiErr::bad("there is no text in the message to edit"));
            }
            let text = p.str("text").unwrap_or_default();
            let mode = parse_mode(p);
            let len = visible_len(&text, mode.as_deref()).map_err(ApiErr::bad)?;
            if len == 0 || text.trim().is_empty() {
                return Err(ApiErr::bad("message text is empty"));
            }
            if len > 4096 {
                return Err(ApiErr::bad("MESSAGE_TOO_LONG"));
            }
            new.view.text = Some(text);
            new.view.parse_mode = mode;
            new.view.entities = entities(p, "entities");
        }
        EditKind::Caption => {
            if old.view.photo.is_none() && old.view.document.is_none() {
                return Err(ApiErr::bad("there is no caption in the message to edit"));
            }
            let (caption, mode) = check_caption(p)?;
            new.view.caption = caption;
            new.view.parse_mode = mode;
            new.view.entities = entities(p, "caption_entities");
        }
        EditKind::Markup => {}
    }
    let same = new.view.text == old.view.text
        && new.view.caption.as_deref().unwrap_or("") == old.view.caption.as_deref().unwrap_or("")
        && new.view.parse_mode == old.view.parse_mode
        && new.view.entities == old.view.entities
        && new.markup == old.markup;
    if same {
        return Err(ApiErr::bad(MESSAGE_NOT_MODIFIED));
    }
    if kind != EditKind::Markup {
        new.view.edit_date = Some(now_unix());
    }
    new.view.edits += 1;
    let json = st.message_json(chat_id, &new);
    if let Some(c) = st.chats.get_mut(&chat_id) {
        c.messages.insert(message_id, new.clone());
    }
    st.emit(ChatEvent::MessageEdited { message: new.view });
    Ok(json)
}

fn delete_one(st: &mut State, chat_id: i64, message_id: i32) -> bool {
    let removed = st
        .chats
        .get_mut(&chat_id)
        .and_then(|c| c.messages.remove(&message_id))
        .is_some();
    if removed {
        st.emit(ChatEvent::MessageDeleted {
            chat_id,
            message_id,
        });
    }
    removed
}

fn delete_message(st: &mut State, p: &Params) -> Result<Value, ApiErr> {
    let chat_id = chat_id_param(p)?;
    if !st.chats.contains_key(&chat_id) {
        return Err(ApiErr::bad("chat not found"));
    }
    let message_id = p
        .i64("message_id")
        .and_then(|m| i32::try_from(m).ok())
        .ok_or_else(|| ApiErr::bad("message identifier is not specified"))?;
    if delete_one(st, chat_id, message_id) {
        Ok(json!(true))
    } else {
        Err(ApiErr::bad("message to delete not found"))
    }
}

fn delete_messages(st: &mut State, p: &Params) -> Result<Value, ApiErr> {
    let chat_id = chat_id_param(p)?;
    if !st.chats.contains_key(&chat_id) {
        return Err(ApiErr::bad("chat not found"));
    }
    let ids: Vec<i32> = p
        .json("message_ids")
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|v| v.as_i64().and_then(|i| i32::try_from(i).ok()))
        .collect();
    if ids.is_empty() {
        return Err(ApiErr::bad("message identifier is not specified"));
    }
    for id in ids {
        delete_one(st, chat_id, id);
    }
    Ok(json!(true))
}

// ----- queries and payments ----------------------------------------------------------

fn answer_callback_query(st: &mut State, p: &Params) -> Result<Value, ApiErr> {
    let id = p.str("callback_query_id").unwrap_or_default();
    let pending = st
        .callbacks_pending
        .remove(&id)
        .ok_or_else(|| ApiErr::bad(INVALID_QUERY))?;
    let answer = CallbackAnswer {
        callback_query_id: id,
        user_id: pending.user_id,
        chat_id: pending.user_id,
        message_id: pending.message_id,
        data: pending.data,
        text: p.str("text"),
        show_alert: p.bool("show_alert").unwrap_or(false),
        url: p.str("url"),
        cache_time: p.i64("cache_time"),
    };
    st.callback_answers.push(answer.clone());
    st.emit(ChatEvent::CallbackAnswered { answer });
    Ok(json!(true))
}

fn answer_pre_checkout_query(st: &mut State, p: &Params) -> Result<Value, ApiErr> {
    let id = p.str("pre_checkout_query_id").unwrap_or_default();
    let ok = p
        .bool("ok")
        .ok_or_else(|| ApiErr::bad("parameter \"ok\" is required"))?;
    let error_message = p.str("error_message");
    if !ok && error_message.as_deref().unwrap_or("").is_empty() {
        return Err(ApiErr::bad("ERROR_MESSAGE_EMPTY"));
    }
    let mut pending = st
        .pre_checkouts_pending
        .remove(&id)
        .ok_or_else(|| ApiErr::bad(INVALID_QUERY))?;
    let answer = PreCheckoutAnswer {
        pre_checkout_query_id: id,
        user_id: pending.user_id,
        invoice_message_id: pending.invoice_message_id,
        invoice_payload: pending.payload.clone(),
        currency: pending.currency.clone(),
        total_amount: pending.total_amount,
        ok,
        error_message,
    };
    st.pre_checkout_answers.push(answer.clone());
    if let Some(tx) = pending.reply.take() {
        // The paying SimUser may have given up (timeout); that is not an API error.
        let _ = tx.send(answer.clone());
    }
    st.emit(ChatEvent::PreCheckoutAnswered { answer });
    Ok(json!(true))
}

fn refund_star_payment(st: &mut State, p: &Params) -> Result<Value, ApiErr> {
    let user_id = p
        .i64("user_id")
        .ok_or_else(|| ApiErr::bad("user_id is empty"))?;
    let charge = p.str("telegram_payment_charge_id").unwrap_or_default();
    if !st.chats.contains_key(&user_id) {
        return Err(ApiErr::bad("user not found"));
    }
    let matching = |r: &super::types::PaymentRecord| {
        r.user_id == user_id && r.payment.telegram_payment_charge_id == charge
    };
    let Some(idx) = st.payments.iter().position(|r| matching(r) && !r.refunded) else {
        return Err(if st.payments.iter().any(matching) {
            ApiErr::bad("CHARGE_ALREADY_REFUNDED")
        } else {
            ApiErr::bad("CHARGE_NOT_FOUND")
        });
    };
    st.payments[idx].refunded = true;
    let pay = st.payments[idx].payment.clone();
    let refund = RefundRecord {
        user_id,
        telegram_payment_charge_id: charge,
        currency: pay.currency,
        total_amount: pay.total_amount,
        invoice_payload: pay.invoice_payload,
    };
    super::stars::record(
        st,
        &refund.currency,
        &refund.telegram_payment_charge_id,
        refund.total_amount,
        user_id,
        &refund.invoice_payload,
        false,
    );
    st.refunds.push(refund.clone());
    st.emit(ChatEvent::Refunded { refund });
    Ok(json!(true))
}

// ----- settings and lookups ----------------------------------------------------------

/// `(canonical scope JSON, language_code)`; numeric-string ids in the scope are
/// normalized to numbers so JSON and multipart callers hit the same key.
pub(crate) fn commands_key(p: &Params) -> (String, String) {
    let scope = p
        .json("scope")
        .unwrap_or_else(|| json!({"type": "default"}));
    (
        canonical_scope(&scope),
        p.str("language_code").unwrap_or_default(),
    )
}

pub(crate) fn canonical_scope(scope: &Value) -> String {
    let mut scope = scope.clone();
    if let Some(o) = scope.as_object_mut() {
        for k in ["chat_id", "user_id"] {
            if let Some(Value::String(s)) = o.get(k)
                && let Ok(n) = s.parse::<i64>()
            {
                o.insert(k.into(), json!(n));
            }
        }
    }
    scope.to_string()
}

fn set_my_commands(st: &mut State, p: &Params) -> Result<Value, ApiErr> {
    let list = p
        .json("commands")
        .and_then(|v| v.as_array().cloned())
        .ok_or_else(|| ApiErr::bad("can't parse commands JSON object"))?;
    if list.len() > 100 {
        return Err(ApiErr::bad("BOT_COMMANDS_TOO_MUCH"));
    }
    let mut commands = Vec::new();
    for c in &list {
        let name = c.get("command").and_then(Value::as_str).unwrap_or_default();
        let desc = c
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let valid = !name.is_empty()
            && name.len() <= 32
            && name
                .chars()
                .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_');
        if !valid {
            return Err(ApiErr::bad("BOT_COMMAND_INVALID"));
        }
        if desc.is_empty() || desc.chars().count() > 256 {
            return Err(ApiErr::bad("BOT_COMMAND_DESCRIPTION_INVALID"));
        }
        commands.push((name.to_owned(), desc.to_owned()));
    }
    let key = commands_key(p);
    let scope = p
        .json("scope")
        .unwrap_or_else(|| json!({"type": "default"}));
    st.commands.insert(
        key.clone(),
        CommandSet {
            scope,
            language_code: key.1,
            commands,
        },
    );
    Ok(json!(true))
}

fn get_chat(st: &State, p: &Params) -> Result<Value, ApiErr> {
    let id = chat_id_param(p)?;
    let chat = st
        .chats
        .get(&id)
        .ok_or_else(|| ApiErr::bad("chat not found"))?;
    let mut v = chat_json(&chat.user);
    if let Some(o) = v.as_object_mut() {
        o.insert("accent_color_id".into(), json!(0));
        o.insert("max_reaction_count".into(), json!(11));
        o.insert(
            "accepted_gift_types".into(),
            json!({
                "unlimited_gifts": true,
                "limited_gifts": true,
                "unique_gifts": true,
                "premium_subscription": true,
            }),
        );
    }
    Ok(v)
}

fn get_file(st: &State, p: &Params) -> Result<Value, ApiErr> {
    let id = p.str("file_id").unwrap_or_default();
    let f = st
        .files
        .get(&id)
        .ok_or_else(|| ApiErr::bad("invalid file_id"))?;
    Ok(json!({
        "file_id": f.file_id,
        "file_unique_id": f.file_unique_id,
        "file_size": f.size,
        "file_path": f.file_path,
    }))
}

#[cfg(test)]
mod tests {
    use super::image_dimensions;

    #[test]
    fn png_and_gif_dimensions() {
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        png.extend_from_slice(&640u32.to_be_bytes());
        png.extend_from_slice(&480u32.to_be_bytes());
        assert_eq!(image_dimensions(&png), Some((640, 480)));
        assert_eq!(image_dimensions(b"GIF89a\x10\x00\x20\x00"), Some((16, 32)));
        assert_eq!(image_dimensions(b"<svg></svg>"), None);
        assert_eq!(image_dimensions(&[]), None);
    }
}
