//! The demo's web server: the page (HTML, CSS and JS compiled into the binary) and the
//! JSON API it drives the simulated people through.
//!
//! - `GET /` `/app.js` `/app.css` — the page.
//! - `GET /api/info?lang=en|ru` — bot, the two people (`buyer`, `admin`) and the page's
//!   own words in that language (locale section `demo`).
//! - `GET /api/chat/{who}` — the chat as `who` sees it now (edits and deletions applied):
//!   `{"messages": [ChatMessage], "reply_keyboard"}`.
//! - `GET /api/chat/{who}/commands` — the bot's command menu in `who`'s language.
//! - `POST /api/chat/{who}/send` `{"text"}` — `who` types a message or a command.
//! - `POST /api/chat/{who}/tap` `{"message_id","data"}` — `who` taps an inline button.
//! - `POST /api/chat/{who}/pay` `{"message_id"}` — `who` pays an invoice: pre-checkout,
//!   then `successful_payment`; answers with the outcome.
//! - `POST /api/simulate/crypto` — the buyer's on-chain payment of the newest
//!   Cryptorefills order still waiting for it.
//! - `POST /api/simulate/card` `{"amount"?}` — the on-chain top-up of the newest
//!   CryptoCardy card still waiting for its first funding (default 50 USD).
//! - `GET /api/events` — server-sent events: `chat` with a fake Telegram `ChatEvent`
//!   as JSON, `resync` when events were lost (the page then reloads the chat).
//! - `GET /api/files/{file_id}` — an uploaded photo's bytes (the checkout QR codes).

use std::convert::Infallible;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::Stream;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;

use super::{ADMIN, BUYER, Fakes, Persona};
use crate::config::Language;
use crate::sandbox::telegram::{ChatEvent, PaymentOutcome, SimError, SimUser};

const INDEX_HTML: &str = include_str!("page/index.html");
const APP_JS: &str = include_str!("page/app.js");
const APP_CSS: &str = include_str!("page/app.css");

/// Telegram's own limit on a message's text.
const MAX_TEXT_CHARS: usize = 4096;
/// Default on-chain top-up of a new virtual card, USD.
const DEFAULT_CARD_FUNDING: Decimal = Decimal::from_parts(50, 0, 0, false, 0);
const MAX_CARD_FUNDING: Decimal = Decimal::from_parts(10_000, 0, 0, false, 0);

type Shared = Arc<Fakes>;

pub(crate) fn router(fakes: Shared) -> Router {
    Router::new()
        .route("/", get(index))
        .route(
            "/app.js",
            get(|| asset(APP_JS, "text/javascript; charset=utf-8")),
        )
        .route(
            "/app.css",
            get(|| asset(APP_CSS, "text/css; charset=utf-8")),
        )
        .route("/api/info", get(info))
        .route("/api/chat/{who}", get(chat))
        .route("/api/chat/{who}/commands", get(commands))
        .route("/api/chat/{who}/send", post(send))
        .route("/api/chat/{who}/tap", post(tap))
        .route("/api/chat/{who}/pay", post(pay))
        .route("/api/simulate/crypto", post(simulate_crypto))
        .route("/api/simulate/card", post(simulate_card))
        .route("/api/events", get(events))
        .route("/api/files/{file_id}", get(file))
        .fallback(|| async { problem(StatusCode::NOT_FOUND, "no such page") })
        .with_state(fakes)
}

/// A JSON error the page shows as a toast.
fn problem(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

/// An error the page words itself: `code` is a key of the `demo` locale section.
fn coded_problem(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({ "error": message, "code": code }))).into_response()
}

/// What every page response carries: nothing but this origin may run or load anything.
fn hardened(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
             connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn index() -> Response {
    asset(INDEX_HTML, "text/html; charset=utf-8").await
}

async fn asset(body: &'static str, content_type: &'static str) -> Response {
    hardened(([(header::CONTENT_TYPE, content_type)], body).into_response())
}

fn person(who: &str) -> Option<Persona> {
    match who {
        "buyer" => Some(BUYER),
        "admin" => Some(ADMIN),
        _ => None,
    }
}

fn no_such_person() -> Response {
    problem(StatusCode::NOT_FOUND, "no such person: use buyer or admin")
}

/// The page's own words (locales/*.yml, section `demo`), sent to it by language.
const UI_KEYS: [&str; 37] = [
    "title",
    "banner_label",
    "banner",
    "act_as",
    "role_buyer",
    "role_admin",
    "chain",
    "pay_crypto",
    "pay_crypto_hint",
    "fund_card",
    "fund_card_hint",
    "try",
    "bot",
    "typing",
    "start",
    "message",
    "commands",
    "no_commands",
    "cancel",
    "pay",
    "paying",
    "sheet_note",
    "paid",
    "edited",
    "invoice_stars",
    "invoice",
    "declined",
    "no_answer",
    "refunded",
    "link_copied",
    "link_wallet",
    "crypto_paid",
    "card_funded",
    "no_checkout",
    "no_card",
    "unsupported_button",
    "offline",
];

fn ui_strings(lang: Language) -> serde_json::Map<String, serde_json::Value> {
    UI_KEYS
        .iter()
        .map(|key| {
            let full = format!("demo.{key}");
            let text = rust_i18n::t!(&full, locale = lang.code()).into_owned();
            ((*key).to_owned(), serde_json::Value::from(text))
        })
        .collect()
}

#[derive(Deserialize)]
struct InfoQuery {
    #[serde(default)]
    lang: Option<String>,
}

async fn info(State(fakes): State<Shared>, Query(query): Query<InfoQuery>) -> Response {
    let bot = fakes.telegram.bot();
    let lang = query
        .lang
        .as_deref()
        .and_then(Language::from_telegram)
        .unwrap_or(Language::En);
    Json(json!({
        "sandbox": true,
        "lang": lang.code(),
        "ui": ui_strings(lang),
        "bot": {"first_name": bot.first_name, "username": bot.username},
        "people": {"buyer": BUYER, "admin": ADMIN},
    }))
    .into_response()
}

async fn chat(State(fakes): State<Shared>, Path(who): Path<String>) -> Response {
    match person(&who) {
        Some(p) => Json(json!({
            "messages": fakes.telegram.chat(p.id),
            "reply_keyboard": fakes.telegram.reply_keyboard(p.id),
        }))
        .into_response(),
        None => no_such_person(),
    }
}

async fn commands(State(fakes): State<Shared>, Path(who): Path<String>) -> Response {
    let Some(p) = person(&who) else {
        return no_such_person();
    };
    let scope = json!({"type": "default"});
    let list = fakes
        .telegram
        .commands(&scope, p.language_code)
        .or_else(|| fakes.telegram.commands(&scope, ""))
        .unwrap_or_default();
    let list: Vec<_> = list
        .into_iter()
        .map(|(command, description)| json!({"command": command, "description": description}))
        .collect();
    Json(list).into_response()
}

#[derive(Deserialize)]
struct SendBody {
    text: String,
}

async fn send(
    State(fakes): State<Shared>,
    Path(who): Path<String>,
    body: Result<Json<SendBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Some(p) = person(&who) else {
        return no_such_person();
    };
    let Ok(Json(body)) = body else {
        return problem(StatusCode::BAD_REQUEST, "expected {\"text\": \"…\"}");
    };
    let text = body.text.trim();
    if text.is_empty() {
        return problem(StatusCode::BAD_REQUEST, "the message is empty");
    }
    if text.chars().count() > MAX_TEXT_CHARS {
        return problem(
            StatusCode::BAD_REQUEST,
            format!("a message holds at most {MAX_TEXT_CHARS} characters"),
        );
    }
    let user = user(&fakes, p);
    let message_id = user.send_text(text);
    Json(json!({ "message_id": message_id })).into_response()
}

#[derive(Deserialize)]
struct TapBody {
    message_id: i32,
    data: String,
}

async fn tap(
    State(fakes): State<Shared>,
    Path(who): Path<String>,
    body: Result<Json<TapBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Some(p) = person(&who) else {
        return no_such_person();
    };
    let Ok(Json(body)) = body else {
        return problem(
            StatusCode::BAD_REQUEST,
            "expected {\"message_id\": N, \"data\": \"…\"}",
        );
    };
    // A real client can only press buttons that are on the message.
    match user(&fakes, p).tap(body.message_id, &body.data) {
        Ok(query_id) => Json(json!({ "callback_query_id": query_id })).into_response(),
        Err(error) => sim_problem(&error),
    }
}

#[derive(Deserialize)]
struct PayBody {
    message_id: i32,
}

async fn pay(
    State(fakes): State<Shared>,
    Path(who): Path<String>,
    body: Result<Json<PayBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Some(p) = person(&who) else {
        return no_such_person();
    };
    let Ok(Json(body)) = body else {
        return problem(StatusCode::BAD_REQUEST, "expected {\"message_id\": N}");
    };
    match user(&fakes, p).pay(body.message_id).await {
        Ok(outcome) => {
            let status = match outcome {
                PaymentOutcome::Paid(_) => StatusCode::OK,
                _ => StatusCode::CONFLICT,
            };
            (status, Json(outcome)).into_response()
        }
        Err(error) => sim_problem(&error),
    }
}

fn sim_problem(error: &SimError) -> Response {
    let status = match error {
        SimError::ShutDown => StatusCode::SERVICE_UNAVAILABLE,
        SimError::NoSuchMessage { .. } => StatusCode::NOT_FOUND,
        _ => StatusCode::BAD_REQUEST,
    };
    problem(status, error.to_string())
}

fn user(fakes: &Fakes, p: Persona) -> &SimUser {
    if p == ADMIN {
        &fakes.admin
    } else {
        &fakes.buyer
    }
}

async fn simulate_crypto(State(fakes): State<Shared>) -> Response {
    let Some(order_id) = fakes.cryptorefills.latest_awaiting_payment() else {
        return coded_problem(
            StatusCode::CONFLICT,
            "no_checkout",
            "no crypto checkout is waiting for a payment",
        );
    };
    match fakes.cryptorefills.simulate_payment(&order_id) {
        Ok(()) => Json(json!({
            "paid": "cryptorefills",
            "order_id": order_id,
        }))
        .into_response(),
        Err(error) => problem(StatusCode::CONFLICT, error),
    }
}

#[derive(Deserialize, Default)]
struct CardBody {
    #[serde(default)]
    amount: Option<String>,
}

async fn simulate_card(State(fakes): State<Shared>, body: Option<Json<CardBody>>) -> Response {
    let body = body.map(|Json(b)| b).unwrap_or_default();
    let amount = match body.amount.as_deref().map(str::trim) {
        None | Some("") => DEFAULT_CARD_FUNDING,
        Some(text) => match Decimal::from_str(text) {
            Ok(a) if a > Decimal::ZERO && a <= MAX_CARD_FUNDING && a.scale() <= 2 => a,
            _ => {
                return problem(
                    StatusCode::BAD_REQUEST,
                    format!("the amount must be from 0.01 to {MAX_CARD_FUNDING} USD"),
                );
            }
        },
    };
    let cards = &fakes.cryptocardy;
    let Some(card_id) = cards
        .card_ids()
        .into_iter()
        .rev()
        .find(|id| cards.state_of(id) == Some("pending_top_up"))
    else {
        return coded_problem(
            StatusCode::CONFLICT,
            "no_card",
            "no virtual card is waiting for its top-up",
        );
    };
    match cards.simulate_funding(&card_id, amount) {
        Ok(()) => Json(json!({
            "funded": "cryptocardy",
            "card_id": card_id,
            "amount_usd": amount.to_string(),
        }))
        .into_response(),
        Err(error) => problem(StatusCode::CONFLICT, error.0),
    }
}

async fn events(State(fakes): State<Shared>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    Sse::new(event_stream(fakes.telegram.subscribe()))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

/// Each chat event as `chat`; `resync` where the receiver lagged and events were lost.
fn event_stream(
    receiver: tokio::sync::broadcast::Receiver<ChatEvent>,
) -> impl Stream<Item = Result<Event, Infallible>> {
    futures_util::stream::unfold(receiver, |mut receiver| async move {
        let event = match receiver.recv().await {
            Ok(event) => chat_event(&event),
            // The page missed events: it reloads the chat instead.
            Err(RecvError::Lagged(missed)) => Event::default()
                .event("resync")
                .data(json!({ "missed": missed }).to_string()),
            Err(RecvError::Closed) => return None,
        };
        Some((Ok(event), receiver))
    })
}

fn chat_event(event: &ChatEvent) -> Event {
    match serde_json::to_string(event) {
        Ok(data) => Event::default().event("chat").data(data),
        Err(_) => Event::default().event("resync").data("{}"),
    }
}

async fn file(State(fakes): State<Shared>, Path(file_id): Path<String>) -> Response {
    let Some(info) = fakes.telegram.file(&file_id) else {
        return problem(StatusCode::NOT_FOUND, "no such file");
    };
    if info.bytes.is_empty() {
        return problem(StatusCode::NOT_FOUND, "the file has no bytes here");
    }
    let image = image_type(&info.bytes);
    let mut response = (*info.bytes).clone().into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(image.unwrap_or("application/octet-stream")),
    );
    if image.is_none() {
        headers.insert(
            header::CONTENT_DISPOSITION,
            HeaderValue::from_static("attachment"),
        );
    }
    hardened(response)
}

/// The image type by the bytes' signature (what the bot says is not trusted).
fn image_type(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some("image/gif")
    } else if bytes.len() > 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_recognised_by_their_bytes_only() {
        assert_eq!(image_type(b"\x89PNG\r\n\x1a\nrest"), Some("image/png"));
        assert_eq!(image_type(&[0xFF, 0xD8, 0xFF, 0xE0]), Some("image/jpeg"));
        assert_eq!(image_type(b"GIF89a..."), Some("image/gif"));
        assert_eq!(image_type(b"RIFF\0\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(image_type(b"<svg onload=alert(1)>"), None);
        assert_eq!(image_type(b""), None);
    }

    #[test]
    fn the_page_has_every_word_in_every_language() {
        for lang in Language::ALL {
            let ui = ui_strings(lang);
            for key in UI_KEYS {
                let text = ui[key].as_str().unwrap_or_default();
                assert!(
                    !text.is_empty() && !text.ends_with(&format!("demo.{key}")),
                    "{}: demo.{key} is missing",
                    lang.code()
                );
            }
        }
        assert_eq!(ui_strings(Language::Ru)["start"], "ЗАПУСТИТЬ");
    }

    #[tokio::test]
    async fn a_receiver_that_lagged_is_told_to_resync_then_follows_again() {
        use futures_util::StreamExt;
        use tokio::sync::broadcast;

        let (sender, receiver) = broadcast::channel(2);
        let deleted = |message_id| ChatEvent::MessageDeleted {
            chat_id: 1,
            message_id,
        };
        for id in 1..=5 {
            sender.send(deleted(id)).unwrap();
        }
        let mut stream = Box::pin(event_stream(receiver));
        // Axum's Event has no getters: the wire form is what the page reads.
        let wire = |event: Event| {
            let response =
                Sse::new(futures_util::stream::iter([Ok::<_, Infallible>(event)])).into_response();
            async move {
                let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
                    .await
                    .unwrap();
                String::from_utf8(bytes.to_vec()).unwrap()
            }
        };
        let first = wire(stream.next().await.unwrap().unwrap()).await;
        assert!(first.starts_with("event: resync\n"), "{first}");
        assert!(first.contains("\"missed\":3"), "{first}");
        let next = wire(stream.next().await.unwrap().unwrap()).await;
        assert!(next.starts_with("event: chat\n"), "{next}");
        assert!(next.contains("\"message_id\":4"), "{next}");
        drop(sender);
        assert!(stream.next().await.is_some()); // event 5
        assert!(stream.next().await.is_none());
    }

    #[test]
    fn only_the_two_people_exist() {
        assert_eq!(person("buyer"), Some(BUYER));
        assert_eq!(person("admin"), Some(ADMIN));
        assert_eq!(person("7000001"), None);
        assert_eq!(person(""), None);
    }
}
