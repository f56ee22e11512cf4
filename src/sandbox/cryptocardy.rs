//! Stateful loopback fake of the CryptoCardy API (`shared/seeds/cryptocardy-api.txt`),
//! served by axum under `/v1/api`, speaking the shapes documented in
//! `crate::providers::cryptocardy::client` (money as JSON numbers, written from exact
//! decimals).
//!
//! Lifecycle: `GET /v1/api?card=visa&asset=BTC` issues a card (a new seed, a preview in
//! `pending_top_up`, a funding wallet; like the seed's example, the preview names no card
//! id — `GET /cards` under the seed does). The buyer's on-chain payment is simulated
//! (sandbox only) by [`CryptoCardySandbox::simulate_funding`] or `POST
//! /v1/api/sandbox/cards/{id}/deposit {"amount": 50}`: the first deposit activates the
//! card with that balance, later ones credit the card's wallet. Then freeze / unfreeze,
//! fund (wallet → card, $1–$5,000) and withdraw (card → wallet), transactions (simulated
//! purchases: `simulate_purchase` or `POST …/sandbox/cards/{id}/purchase`), pending 3-D
//! Secure codes (`simulate_3ds` or `POST …/sandbox/cards/{id}/3ds`), full details with
//! a Luhn-valid test PAN (`4242 42…` for Visa, `5555 55…` for Mastercard) and terminate
//! (the balance back to the wallet).
//!
//! Auth: every route but issue, `/health` and the sandbox routes needs a known `X-Seed`
//! (401 otherwise); a seed sees only its own card (404 for another). Writes honour
//! `X-Idempotency-Key` (a replay returns the first answer), and so does issuing.
//! The seed's limits are enforced: 1,000 requests/min, 50 card creations/min, 30
//! details calls/min per seed (429 with `Retry-After`).
//!
//! Webhooks: events (`card.created`, `card.funded`, `card.frozen`, `card.unfrozen`,
//! `card.terminated`, `deposit.confirmed`, `transaction.settled`,
//! `transaction.declined`, `3ds.challenge`) are posted to the webhook given in the
//! options and to those registered with `POST /webhooks`, as `{"id", "event",
//! "created_at", "data"}` with `X-CryptoCardy-Signature: <hex HMAC-SHA256 of the body>`.
//!
//! Knobs: `rate_limit_next(n, retry_after)` (429 before processing),
//! `server_error_next(n)` (500 before processing), `error_after_processing_next(n)`
//! (processed, then answered 500: an ambiguous failure), `counts()`.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{Datelike, Utc};
use rand::Rng;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use tokio::sync::watch;
use url::Url;

use crate::providers::cryptocardy::client::{SIGNATURE_HEADER, sign_webhook};

/// Path prefix of the API.
pub const PREFIX: &str = "/v1/api";

#[derive(Debug, Clone, Default)]
pub struct CryptoCardySandboxOptions {
    /// Every event is also posted here, signed with the secret.
    pub webhook: Option<(Url, String)>,
}

/// What the fake has seen, for tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CryptoCardyCounts {
    /// Requests that reached a handler.
    pub requests: u64,
    pub issue_requests: u64,
    /// Cards created (an idempotent replay creates none).
    pub cards_created: u64,
    pub details_requests: u64,
    pub fund_requests: u64,
    pub replays: u64,
    pub webhooks_sent: u64,
    pub webhooks_failed: u64,
}

#[derive(Debug, Clone)]
struct Card {
    id: String,
    seed: String,
    network: &'static str,
    pan: String,
    cvv: String,
    exp_month: u32,
    exp_year: u32,
    state: &'static str,
    balance: Decimal,
    total_spent: Decimal,
    transaction_count: u64,
    asset: String,
    address: String,
    created_at: String,
    last_used_at: Option<String>,
}

#[derive(Debug, Clone)]
struct Challenge {
    id: String,
    card_id: String,
    merchant: String,
    amount: Decimal,
    otp: String,
    status: &'static str,
    created: Instant,
    created_at: String,
    expires_at: String,
}

struct Inner {
    options: CryptoCardySandboxOptions,
    cards: HashMap<String, Card>,
    /// Card id per seed.
    seeds: HashMap<String, String>,
    wallets: HashMap<String, Decimal>,
    transactions: Vec<(String, Value)>,
    challenges: Vec<Challenge>,
    /// `(seed or "", key)` → the first answer.
    idempotency: HashMap<(String, String), (u16, Value)>,
    /// Registered webhooks per seed.
    webhooks: HashMap<String, Vec<Hook>>,
    windows: HashMap<String, VecDeque<Instant>>,
    counts: CryptoCardyCounts,
    next_id: u64,
    rate_limit_next: u32,
    retry_after_secs: u64,
    server_error_next: u32,
    error_after_next: u32,
}

struct Shared {
    inner: Mutex<Inner>,
    http: reqwest::Client,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Handle of a running fake.
pub struct CryptoCardySandbox {
    base_url: Url,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// A sandbox action that cannot be done (unknown card, wrong state).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SandboxError(pub String);

/// Binds `addr` (port 0 for any) and serves the fake until `shutdown`.
pub async fn start(
    addr: SocketAddr,
    options: CryptoCardySandboxOptions,
) -> std::io::Result<CryptoCardySandbox> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(std::io::Error::other)?;
    let shared = Arc::new(Shared {
        inner: Mutex::new(Inner {
            options,
            cards: HashMap::new(),
            seeds: HashMap::new(),
            wallets: HashMap::new(),
            transactions: Vec::new(),
            challenges: Vec::new(),
            idempotency: HashMap::new(),
            webhooks: HashMap::new(),
            windows: HashMap::new(),
            counts: CryptoCardyCounts::default(),
            next_id: 0,
            rate_limit_next: 0,
            retry_after_secs: 1,
            server_error_next: 0,
            error_after_next: 0,
        }),
        http,
    });
    let p = |path: &str| format!("{PREFIX}{path}");
    let app = Router::new()
        .route(PREFIX, get(issue))
        .route(&p("/"), get(issue))
        .route(
            &p("/health"),
            get(|| async { axum::Json(json!({"status": "ok"})) }),
        )
        .route(
            "/health",
            get(|| async { axum::Json(json!({"status": "ok"})) }),
        )
        .route(&p("/cards"), get(list_cards))
        .route(&p("/cards/{id}"), get(card_summary).delete(terminate))
        .route(&p("/cards/{id}/details"), get(details))
        .route(&p("/cards/{id}/freeze"), post(freeze))
        .route(&p("/cards/{id}/unfreeze"), post(unfreeze))
        .route(&p("/cards/{id}/fund"), post(fund))
        .route(&p("/cards/{id}/withdraw"), post(withdraw))
        .route(&p("/transactions"), get(transactions))
        .route(&p("/3ds"), get(three_ds))
        .route(&p("/wallet/balance"), get(wallet_balance))
        .route(&p("/webhooks"), post(register_webhook))
        .route(&p("/webhooks/{id}"), axum::routing::delete(delete_webhook))
        .route(&p("/sandbox/cards/{id}/deposit"), post(sandbox_deposit))
        .route(&p("/sandbox/cards/{id}/purchase"), post(sandbox_purchase))
        .route(&p("/sandbox/cards/{id}/3ds"), post(sandbox_3ds))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "not_found", "No such endpoint") })
        .layer(middleware::from_fn_with_state(shared.clone(), guard))
        .with_state(shared.clone());
    let mut rx = stop_rx;
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = rx.wait_for(|stop| *stop).await;
            })
            .await;
    });
    let base_url = Url::parse(&format!("http://{local}{PREFIX}")).map_err(std::io::Error::other)?;
    Ok(CryptoCardySandbox {
        base_url,
        shared,
        stop: stop_tx,
        task: Some(task),
    })
}

impl CryptoCardySandbox {
    /// The API base, e.g. `http://127.0.0.1:41234/v1/api`.
    pub fn base_url(&self) -> Url {
        self.base_url.clone()
    }

    /// Stops serving and waits for the server to end.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    pub fn counts(&self) -> CryptoCardyCounts {
        self.shared.lock().counts.clone()
    }

    /// Every event from now on also goes to `url`, signed with `secret`.
    pub fn set_webhook(&self, url: Url, secret: &str) {
        self.shared.lock().options.webhook = Some((url, secret.to_owned()));
    }

    /// The URLs of the webhooks registered by a card's seed (with `POST /webhooks`).
    pub fn webhooks_of(&self, card_id: &str) -> Vec<String> {
        let s = self.shared.lock();
        let Some(card) = s.cards.get(card_id) else {
            return Vec::new();
        };
        s.webhooks
            .get(&card.seed)
            .map(|hooks| hooks.iter().map(|h| h.url.to_string()).collect())
            .unwrap_or_default()
    }

    /// The ids of every card issued, oldest first.
    pub fn card_ids(&self) -> Vec<String> {
        let s = self.shared.lock();
        let mut cards: Vec<_> = s
            .cards
            .values()
            .map(|c| (c.created_at.clone(), c.id.clone()))
            .collect();
        cards.sort();
        cards.into_iter().map(|(_, id)| id).collect()
    }

    /// Sandbox test data (not secrets of anyone): a card's seed, PAN and CVV, so tests
    /// can look for them where they must not be.
    pub fn seed_of(&self, card_id: &str) -> Option<String> {
        self.shared
            .lock()
            .cards
            .get(card_id)
            .map(|c| c.seed.clone())
    }

    pub fn pan_of(&self, card_id: &str) -> Option<String> {
        self.shared.lock().cards.get(card_id).map(|c| c.pan.clone())
    }

    pub fn cvv_of(&self, card_id: &str) -> Option<String> {
        self.shared.lock().cards.get(card_id).map(|c| c.cvv.clone())
    }

    pub fn state_of(&self, card_id: &str) -> Option<&'static str> {
        self.shared.lock().cards.get(card_id).map(|c| c.state)
    }

    pub fn balance_of(&self, card_id: &str) -> Option<Decimal> {
        self.shared.lock().cards.get(card_id).map(|c| c.balance)
    }

    /// Where the card's funding is sent.
    pub fn address_of(&self, card_id: &str) -> Option<String> {
        self.shared
            .lock()
            .cards
            .get(card_id)
            .map(|c| c.address.clone())
    }

    /// The wallet balance behind a card.
    pub fn wallet_of(&self, card_id: &str) -> Option<Decimal> {
        let s = self.shared.lock();
        let seed = &s.cards.get(card_id)?.seed;
        s.wallets.get(seed).copied()
    }

    /// The buyer's on-chain payment of `amount` USD (sandbox only): activates a card
    /// waiting for its top-up, or credits the card's wallet.
    pub fn simulate_funding(&self, card_id: &str, amount: Decimal) -> Result<(), SandboxError> {
        let events = deposit(&mut self.shared.lock(), card_id, amount)?;
        send_all(&self.shared, events);
        Ok(())
    }

    /// A purchase at `merchant`: settled when the card is active and covers it,
    /// declined otherwise.
    pub fn simulate_purchase(
        &self,
        card_id: &str,
        merchant: &str,
        amount: Decimal,
    ) -> Result<bool, SandboxError> {
        let (settled, events) = purchase(&mut self.shared.lock(), card_id, merchant, amount)?;
        send_all(&self.shared, events);
        Ok(settled)
    }

    /// A merchant asks for 3-D Secure: a pending challenge; returns its code.
    pub fn simulate_3ds(
        &self,
        card_id: &str,
        merchant: &str,
        amount: Decimal,
    ) -> Result<String, SandboxError> {
        let (otp, events) = challenge(&mut self.shared.lock(), card_id, merchant, amount)?;
        send_all(&self.shared, events);
        Ok(otp)
    }

    /// The next `n` requests get 429 with `Retry-After: retry_after_secs`.
    pub fn rate_limit_next(&self, n: u32, retry_after_secs: u64) {
        let mut s = self.shared.lock();
        s.rate_limit_next = n;
        s.retry_after_secs = retry_after_secs;
    }

    /// The next `n` requests get 500 before anything is done.
    pub fn server_error_next(&self, n: u32) {
        self.shared.lock().server_error_next = n;
    }

    /// The next `n` requests are processed, then answered 500.
    pub fn error_after_processing_next(&self, n: u32) {
        self.shared.lock().error_after_next = n;
    }
}

impl Drop for CryptoCardySandbox {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

// ───────────────────────────── rendering ─────────────────────────────

/// Marks a string that is written out as a bare JSON number (exact decimal text).
const NUM: &str = "\u{1}num:";

fn num(amount: Decimal) -> Value {
    let mut a = amount;
    a.rescale(2);
    Value::String(format!("{NUM}{a}"))
}

/// Serializes `value`, turning every [`num`] marker into a JSON number.
fn render(value: &Value) -> String {
    let text = value.to_string();
    let marker = "\"\\u0001num:";
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(start) = rest.find(marker) {
        out.push_str(&rest[..start]);
        let after = &rest[start + marker.len()..];
        let end = after.find('"').unwrap_or(after.len());
        out.push_str(&after[..end]);
        rest = after.get(end + 1..).unwrap_or("");
    }
    out.push_str(rest);
    out
}

fn json_response(status: StatusCode, value: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        render(value),
    )
        .into_response()
}

fn request_id() -> String {
    format!(
        "req_{:012x}",
        rand::thread_rng().r#gen::<u64>() & 0xffff_ffff_ffff
    )
}

fn error_value(status: StatusCode, code: &str, message: &str) -> Value {
    json!({"error": code, "message": message, "code": status.as_u16(), "request_id": request_id()})
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    json_response(status, &error_value(status, code, message))
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn summary_json(card: &Card) -> Value {
    json!({
        "id": card.id,
        "bin_id": &card.pan[..6],
        "network": card.network,
        "last4": &card.pan[card.pan.len() - 4..],
        "status": card.state,
        "balance": num(card.balance),
        "spending_limit": num(Decimal::new(200_000, 2)),
        "total_spent": num(card.total_spent),
        "transaction_count": card.transaction_count,
        "label": Value::Null,
        "metadata": {},
        "created_at": card.created_at,
        "expires_at": format!("{}-{:02}-28T23:59:59Z", card.exp_year, card.exp_month),
        "last_used_at": card.last_used_at,
    })
}

// ───────────────────────────── middleware ─────────────────────────────

/// Limits, failure knobs and the counts.
async fn guard(State(shared): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    let seed = req
        .headers()
        .get("x-seed")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let issuing = path == PREFIX || path == format!("{PREFIX}/");
    let details = path.ends_with("/details");
    let refused = {
        let mut s = shared.lock();
        s.counts.requests += 1;
        if s.rate_limit_next > 0 {
            s.rate_limit_next -= 1;
            Some(rate_limited(s.retry_after_secs))
        } else if s.server_error_next > 0 {
            s.server_error_next -= 1;
            Some(error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "Try again",
            ))
        } else if !within(&mut s, "all", 1_000)
            || (issuing && !within(&mut s, "create", 50))
            || (details && !within(&mut s, &format!("details:{seed}"), 30))
        {
            Some(rate_limited(60))
        } else {
            None
        }
    };
    if let Some(response) = refused {
        return response;
    }
    let response = next.run(req).await;
    let mut s = shared.lock();
    if s.error_after_next > 0 {
        s.error_after_next -= 1;
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "Try again",
        );
    }
    response
}

fn rate_limited(secs: u64) -> Response {
    let mut response = error(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        "Too many requests",
    );
    if let Ok(v) = secs.to_string().parse() {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    response
}

/// A sliding one-minute window of `max` grants for `key`.
fn within(s: &mut Inner, key: &str, max: usize) -> bool {
    let now = Instant::now();
    let window = s.windows.entry(key.to_owned()).or_default();
    while window
        .front()
        .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(60))
    {
        window.pop_front();
    }
    if window.len() >= max {
        return false;
    }
    window.push_back(now);
    true
}

/// The card the request's seed owns, if it is `card_id`.
fn authorized<'a>(
    s: &'a mut Inner,
    headers: &HeaderMap,
    card_id: Option<&str>,
) -> Result<(String, Option<&'a mut Card>), Box<Response>> {
    let seed = headers
        .get("x-seed")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let Some(own) = s.seeds.get(&seed).cloned() else {
        return Err(Box::new(error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Seed missing or invalid",
        )));
    };
    match card_id {
        None => Ok((seed, None)),
        Some(id) if id == own => Ok((seed, s.cards.get_mut(id))),
        Some(_) => Err(Box::new(error(
            StatusCode::NOT_FOUND,
            "not_found",
            "Card not found",
        ))),
    }
}

fn idempotency_key(headers: &HeaderMap) -> Option<String> {
    headers
        .get("x-idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn replay(s: &mut Inner, seed: &str, key: &Option<String>) -> Option<Response> {
    let key = key.as_ref()?;
    let (status, body) = s.idempotency.get(&(seed.to_owned(), key.clone()))?.clone();
    s.counts.replays += 1;
    Some(json_response(
        StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
        &body,
    ))
}

fn remember(s: &mut Inner, seed: &str, key: &Option<String>, status: StatusCode, body: &Value) {
    if let Some(key) = key {
        s.idempotency.insert(
            (seed.to_owned(), key.clone()),
            (status.as_u16(), body.clone()),
        );
    }
}

fn amount_of(body: &[u8]) -> Result<Decimal, Box<Response>> {
    let value = crate::providers::cryptocardy::client::read_json(body).map_err(|_| {
        Box::new(error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Body must be JSON",
        ))
    })?;
    value
        .get("amount")
        .and_then(Value::as_str)
        .and_then(|a| Decimal::from_str(a).ok())
        .ok_or_else(|| {
            Box::new(error(
                StatusCode::BAD_REQUEST,
                "invalid_amount",
                "amount is required",
            ))
        })
}

fn text_field(body: &[u8], key: &str) -> Option<String> {
    crate::providers::cryptocardy::client::read_json(body)
        .ok()?
        .get(key)?
        .as_str()
        .map(str::to_owned)
}

// ───────────────────────────── handlers ─────────────────────────────

const ASSETS: [&str; 9] = [
    "BTC",
    "ETH",
    "USDT-ERC20",
    "USDT-TRC20",
    "USDT-SOL",
    "USDC-SOL",
    "SOL",
    "XMR",
    "LTC",
];

async fn issue(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let key = idempotency_key(&headers);
    let mut s = shared.lock();
    s.counts.issue_requests += 1;
    if let Some(response) = replay(&mut s, "", &key) {
        return response;
    }
    let mut rng = rand::thread_rng();
    let network = match query.get("card").map(|c| c.to_ascii_lowercase()).as_deref() {
        None | Some("") => {
            if rng.gen_bool(0.5) {
                "visa"
            } else {
                "mastercard"
            }
        }
        Some("visa") => "visa",
        Some("mastercard") => "mastercard",
        Some(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_card",
                "card must be visa or mastercard",
            );
        }
    };
    let asset = query
        .get("asset")
        .map(|a| a.trim().to_ascii_uppercase())
        .filter(|a| !a.is_empty())
        .unwrap_or_else(|| "BTC".to_owned());
    if !ASSETS.contains(&asset.as_str()) {
        return error(
            StatusCode::BAD_REQUEST,
            "unsupported_asset",
            "This funding asset is not supported",
        );
    }
    s.next_id += 1;
    let id = format!("card_{}{:04}", random_alnum(6), s.next_id);
    let seed = (0..4)
        .map(|_| format!("{:04x}", rng.r#gen::<u16>()))
        .collect::<Vec<_>>()
        .join("-");
    let prefix = if network == "visa" {
        "424242"
    } else {
        "555555"
    };
    let pan = luhn_complete(&format!(
        "{prefix}{:09}",
        rng.gen_range(0..1_000_000_000u64)
    ));
    let exp_year = (Utc::now().year() + 3) as u32;
    let exp_month = rng.gen_range(1..=12u32);
    let (address, chain) = address_for(&asset);
    let card = Card {
        id: id.clone(),
        seed: seed.clone(),
        network,
        pan: pan.clone(),
        cvv: format!("{:03}", rng.gen_range(100..1000u32)),
        exp_month,
        exp_year,
        state: "pending_top_up",
        balance: Decimal::ZERO,
        total_spent: Decimal::ZERO,
        transaction_count: 0,
        asset: asset.clone(),
        address: address.clone(),
        created_at: now(),
        last_used_at: None,
    };
    let grouped = pan
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    let body = json!({
        "success": true,
        "request_id": request_id(),
        "seed": seed,
        "card": {
            "state": "pending_top_up",
            "network": network,
            "card_number": grouped,
            "cvv_masked": "***",
            "expiry": format!("{:02}/{:02}", exp_month, exp_year % 100),
        },
        "wallet": {"asset": asset, "address": address, "network": chain},
        "created_at": card.created_at,
    });
    s.counts.cards_created += 1;
    s.seeds.insert(seed.clone(), id.clone());
    s.wallets.insert(seed.clone(), Decimal::ZERO);
    s.cards.insert(id.clone(), card);
    remember(&mut s, "", &key, StatusCode::OK, &body);
    let events = vec![event(
        &s,
        &seed,
        "card.created",
        json!({"card_id": id, "status": "pending_top_up"}),
    )];
    drop(s);
    send_all(&shared, events.into_iter().flatten().collect());
    json_response(StatusCode::OK, &body)
}

async fn list_cards(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let mut s = shared.lock();
    let seed = match authorized(&mut s, &headers, None) {
        Ok((seed, _)) => seed,
        Err(response) => return *response,
    };
    let own = s.seeds.get(&seed).cloned().unwrap_or_default();
    let data: Vec<Value> = s
        .cards
        .get(&own)
        .filter(|c| query.get("status").is_none_or(|st| st == c.state))
        .map(summary_json)
        .into_iter()
        .collect();
    let total = data.len();
    json_response(
        StatusCode::OK,
        &json!({"data": data, "pagination": {"page": 1, "per_page": 25, "total": total, "total_pages": 1}}),
    )
}

async fn card_summary(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let mut s = shared.lock();
    match authorized(&mut s, &headers, Some(&id)) {
        Ok((_, Some(card))) => json_response(StatusCode::OK, &summary_json(card)),
        Ok(_) => error(StatusCode::NOT_FOUND, "not_found", "Card not found"),
        Err(response) => *response,
    }
}

async fn details(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let mut s = shared.lock();
    s.counts.details_requests += 1;
    let card = match authorized(&mut s, &headers, Some(&id)) {
        Ok((_, Some(card))) => card,
        Ok(_) => return error(StatusCode::NOT_FOUND, "not_found", "Card not found"),
        Err(response) => return *response,
    };
    if card.state == "terminated" {
        return error(
            StatusCode::BAD_REQUEST,
            "card_terminated",
            "The card is terminated",
        );
    }
    json_response(
        StatusCode::OK,
        &json!({
            "id": card.id,
            "pan": card.pan,
            "cvv": card.cvv,
            "exp_month": card.exp_month,
            "exp_year": card.exp_year,
            "holder_name": "ANONYMOUS",
            "billing_address": {"line1": "123 Privacy Street", "city": "Wilmington",
                                "state": "DE", "zip": "19801", "country": "US"},
        }),
    )
}

async fn freeze(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    set_frozen(&shared, &headers, &id, true)
}

async fn unfreeze(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    set_frozen(&shared, &headers, &id, false)
}

fn set_frozen(shared: &Arc<Shared>, headers: &HeaderMap, id: &str, frozen: bool) -> Response {
    let key = idempotency_key(headers);
    let mut s = shared.lock();
    let (seed, card) = match authorized(&mut s, headers, Some(id)) {
        Ok((seed, Some(card))) => (seed, card),
        Ok(_) => return error(StatusCode::NOT_FOUND, "not_found", "Card not found"),
        Err(response) => return *response,
    };
    let from_state = card.state;
    match (from_state, frozen) {
        ("active", true) => card.state = "frozen",
        ("frozen", false) => card.state = "active",
        ("frozen", true) | ("active", false) => {}
        ("terminated", _) => {
            return error(
                StatusCode::BAD_REQUEST,
                "card_terminated",
                "The card is terminated",
            );
        }
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "card_not_active",
                "The card is not funded yet",
            );
        }
    }
    let changed = card.state != from_state;
    let body = if frozen {
        json!({"id": card.id, "status": card.state, "frozen_at": now()})
    } else {
        summary_json(card)
    };
    let state = card.state;
    let mut events = Vec::new();
    if changed {
        let name = if frozen {
            "card.frozen"
        } else {
            "card.unfrozen"
        };
        events.extend(event(
            &s,
            &seed,
            name,
            json!({"card_id": id, "status": state}),
        ));
    }
    remember(&mut s, &seed, &key, StatusCode::OK, &body);
    drop(s);
    send_all(shared, events);
    json_response(StatusCode::OK, &body)
}

async fn fund(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    move_balance(&shared, &headers, &id, &body, true)
}

async fn withdraw(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    move_balance(&shared, &headers, &id, &body, false)
}

fn move_balance(
    shared: &Arc<Shared>,
    headers: &HeaderMap,
    id: &str,
    body: &[u8],
    fund: bool,
) -> Response {
    let key = idempotency_key(headers);
    let mut s = shared.lock();
    if fund {
        s.counts.fund_requests += 1;
    }
    let seed = match authorized(&mut s, headers, Some(id)) {
        Ok((seed, Some(_))) => seed,
        Ok(_) => return error(StatusCode::NOT_FOUND, "not_found", "Card not found"),
        Err(response) => return *response,
    };
    if let Some(response) = replay(&mut s, &seed, &key) {
        return response;
    }
    let amount = match amount_of(body) {
        Ok(amount) => amount,
        Err(response) => return *response,
    };
    let (min, max) = if fund {
        (Decimal::ONE, Decimal::new(5000, 0))
    } else {
        (Decimal::new(1, 2), Decimal::new(5000, 0))
    };
    if amount < min || amount > max || amount.normalize().scale() > 2 {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_amount",
            "Amount must be from $1.00 to $5,000.00",
        );
    }
    let wallet = s.wallets.get(&seed).copied().unwrap_or_default();
    let Some(card) = s.cards.get_mut(id) else {
        return error(StatusCode::NOT_FOUND, "not_found", "Card not found");
    };
    match card.state {
        "active" | "frozen" => {}
        "terminated" => {
            return error(
                StatusCode::BAD_REQUEST,
                "card_terminated",
                "The card is terminated",
            );
        }
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "card_not_active",
                "The card is not funded yet",
            );
        }
    }
    let previous = card.balance;
    let (new_wallet, body) = if fund {
        if wallet < amount {
            return error(
                StatusCode::BAD_REQUEST,
                "insufficient_funds",
                "Your wallet balance is too low to fund this card.",
            );
        }
        card.balance += amount;
        (
            wallet - amount,
            json!({"id": id, "previous_balance": num(previous), "funded_amount": num(amount),
                   "new_balance": num(card.balance), "wallet_balance": num(wallet - amount)}),
        )
    } else {
        if card.balance < amount {
            return error(
                StatusCode::BAD_REQUEST,
                "insufficient_funds",
                "The card balance is too low for this withdrawal.",
            );
        }
        card.balance -= amount;
        (
            wallet + amount,
            json!({"id": id, "previous_balance": num(previous), "withdrawn_amount": num(amount),
                   "new_balance": num(card.balance), "wallet_balance": num(wallet + amount)}),
        )
    };
    let balance = card.balance;
    s.wallets.insert(seed.clone(), new_wallet);
    remember(&mut s, &seed, &key, StatusCode::OK, &body);
    let events = if fund {
        event(
            &s,
            &seed,
            "card.funded",
            json!({"card_id": id, "amount": num(amount), "balance": num(balance), "status": "active"}),
        )
        .into_iter()
        .collect()
    } else {
        Vec::new()
    };
    drop(s);
    send_all(shared, events);
    json_response(StatusCode::OK, &body)
}

async fn terminate(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let key = idempotency_key(&headers);
    let mut s = shared.lock();
    let seed = match authorized(&mut s, &headers, Some(&id)) {
        Ok((seed, Some(_))) => seed,
        Ok(_) => return error(StatusCode::NOT_FOUND, "not_found", "Card not found"),
        Err(response) => return *response,
    };
    if let Some(response) = replay(&mut s, &seed, &key) {
        return response;
    }
    let Some(card) = s.cards.get_mut(&id) else {
        return error(StatusCode::NOT_FOUND, "not_found", "Card not found");
    };
    if card.state == "terminated" {
        return error(
            StatusCode::BAD_REQUEST,
            "card_terminated",
            "The card is terminated",
        );
    }
    let refunded = card.balance;
    card.balance = Decimal::ZERO;
    card.state = "terminated";
    *s.wallets.entry(seed.clone()).or_default() += refunded;
    let body = json!({"id": id, "status": "terminated", "refunded_amount": num(refunded),
                      "terminated_at": now()});
    remember(&mut s, &seed, &key, StatusCode::OK, &body);
    let events = event(
        &s,
        &seed,
        "card.terminated",
        json!({"card_id": id, "status": "terminated"}),
    )
    .into_iter()
    .collect();
    drop(s);
    send_all(&shared, events);
    json_response(StatusCode::OK, &body)
}

async fn transactions(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let mut s = shared.lock();
    let seed = match authorized(&mut s, &headers, None) {
        Ok((seed, _)) => seed,
        Err(response) => return *response,
    };
    let own = s.seeds.get(&seed).cloned().unwrap_or_default();
    if query.get("card_id").is_some_and(|c| *c != own) {
        return json_response(
            StatusCode::OK,
            &json!({"data": [], "pagination": {"page": 1, "per_page": 50, "total": 0}}),
        );
    }
    let data: Vec<Value> = s
        .transactions
        .iter()
        .rev()
        .filter(|(card, _)| *card == own)
        .map(|(_, t)| t.clone())
        .filter(|t| query.get("type").is_none_or(|k| t["type"] == json!(k)))
        .collect();
    let total = data.len();
    json_response(
        StatusCode::OK,
        &json!({"data": data, "pagination": {"page": 1, "per_page": 50, "total": total}}),
    )
}

async fn three_ds(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let mut s = shared.lock();
    let seed = match authorized(&mut s, &headers, None) {
        Ok((seed, _)) => seed,
        Err(response) => return *response,
    };
    let own = s.seeds.get(&seed).cloned().unwrap_or_default();
    for c in &mut s.challenges {
        if c.status == "pending" && c.created.elapsed() >= Duration::from_secs(300) {
            c.status = "expired";
        }
    }
    let data: Vec<Value> = s
        .challenges
        .iter()
        .rev()
        .filter(|c| c.card_id == own)
        .filter(|c| query.get("card_id").is_none_or(|id| *id == c.card_id))
        .filter(|c| query.get("status").is_none_or(|st| st == c.status))
        .map(|c| {
            json!({"id": c.id, "card_id": c.card_id, "merchant": c.merchant, "amount": num(c.amount),
                   "otp": c.otp, "status": c.status, "expires_at": c.expires_at,
                   "created_at": c.created_at})
        })
        .collect();
    json_response(StatusCode::OK, &json!({"data": data}))
}

async fn wallet_balance(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let mut s = shared.lock();
    let seed = match authorized(&mut s, &headers, None) {
        Ok((seed, _)) => seed,
        Err(response) => return *response,
    };
    let balance = s.wallets.get(&seed).copied().unwrap_or_default();
    let own = s.seeds.get(&seed).cloned().unwrap_or_default();
    let card_balance = s.cards.get(&own).map(|c| c.balance).unwrap_or_default();
    let active = s.cards.get(&own).is_some_and(|c| c.state == "active");
    json_response(
        StatusCode::OK,
        &json!({"balance": num(balance), "currency": "USD", "pending_deposits": num(Decimal::ZERO),
                "cards_active": u8::from(active), "cards_total_balance": num(card_balance)}),
    )
}

async fn register_webhook(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let key = idempotency_key(&headers);
    let mut s = shared.lock();
    let seed = match authorized(&mut s, &headers, None) {
        Ok((seed, _)) => seed,
        Err(response) => return *response,
    };
    if let Some(response) = replay(&mut s, &seed, &key) {
        return response;
    }
    let Ok(value) = serde_json::from_slice::<Value>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Body must be JSON",
        );
    };
    let Some(url) = value
        .get("url")
        .and_then(Value::as_str)
        .and_then(|u| Url::parse(u).ok())
        .filter(|u| matches!(u.scheme(), "http" | "https"))
    else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_url",
            "url must be an HTTPS URL",
        );
    };
    let events: Vec<String> = value
        .get("events")
        .and_then(Value::as_array)
        .map(|e| {
            e.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if events.is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_events",
            "events is required",
        );
    }
    let secret = value
        .get("secret")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| format!("whsec_{}", random_alnum(24)));
    s.next_id += 1;
    let id = format!("wh_{}{}", random_alnum(6), s.next_id);
    let body = json!({"id": id, "url": url.as_str(), "events": events, "secret": secret,
                      "active": true, "created_at": now()});
    s.webhooks.entry(seed.clone()).or_default().push(Hook {
        id,
        url,
        secret,
        events,
    });
    remember(&mut s, &seed, &key, StatusCode::CREATED, &body);
    json_response(StatusCode::CREATED, &body)
}

/// `DELETE /webhooks/{id}`: only the seed's own; 404 for any other.
async fn delete_webhook(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let mut s = shared.lock();
    let seed = match authorized(&mut s, &headers, None) {
        Ok((seed, _)) => seed,
        Err(response) => return *response,
    };
    let hooks = s.webhooks.entry(seed).or_default();
    let before = hooks.len();
    hooks.retain(|h| h.id != id);
    if hooks.len() == before {
        return error(StatusCode::NOT_FOUND, "not_found", "No such webhook");
    }
    json_response(StatusCode::OK, &json!({"id": id, "deleted": true}))
}

async fn sandbox_deposit(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let amount = match amount_of(&body) {
        Ok(amount) => amount,
        Err(response) => return *response,
    };
    let result = deposit(&mut shared.lock(), &id, amount);
    match result {
        Ok(events) => {
            send_all(&shared, events);
            json_response(StatusCode::OK, &json!({"id": id, "deposited": num(amount)}))
        }
        Err(e) => error(StatusCode::BAD_REQUEST, "sandbox", &e.0),
    }
}

async fn sandbox_purchase(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let amount = match amount_of(&body) {
        Ok(amount) => amount,
        Err(response) => return *response,
    };
    let merchant = text_field(&body, "merchant").unwrap_or_else(|| "SANDBOX SHOP".into());
    let result = purchase(&mut shared.lock(), &id, &merchant, amount);
    match result {
        Ok((settled, events)) => {
            send_all(&shared, events);
            json_response(StatusCode::OK, &json!({"id": id, "settled": settled}))
        }
        Err(e) => error(StatusCode::BAD_REQUEST, "sandbox", &e.0),
    }
}

async fn sandbox_3ds(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let amount = match amount_of(&body) {
        Ok(amount) => amount,
        Err(response) => return *response,
    };
    let merchant = text_field(&body, "merchant").unwrap_or_else(|| "SANDBOX SHOP".into());
    let result = challenge(&mut shared.lock(), &id, &merchant, amount);
    match result {
        Ok((_, events)) => {
            send_all(&shared, events);
            json_response(StatusCode::OK, &json!({"id": id, "challenge": "pending"}))
        }
        Err(e) => error(StatusCode::BAD_REQUEST, "sandbox", &e.0),
    }
}

// ───────────────────────────── simulations ─────────────────────────────

fn deposit(s: &mut Inner, card_id: &str, amount: Decimal) -> Result<Vec<Delivery>, SandboxError> {
    if amount <= Decimal::ZERO {
        return Err(SandboxError("the deposit must be positive".into()));
    }
    let card = s
        .cards
        .get_mut(card_id)
        .ok_or_else(|| SandboxError(format!("no card {card_id}")))?;
    let seed = card.seed.clone();
    let asset = card.asset.clone();
    let mut events = Vec::new();
    match card.state {
        "pending_top_up" => {
            card.state = "active";
            card.balance += amount;
            let balance = card.balance;
            events.extend(event(
                s,
                &seed,
                "deposit.confirmed",
                json!({"card_id": card_id, "currency": asset, "amount_usd": num(amount), "status": "confirmed"}),
            ));
            events.extend(event(
                s,
                &seed,
                "card.funded",
                json!({"card_id": card_id, "amount": num(amount), "balance": num(balance), "status": "active"}),
            ));
        }
        "terminated" => return Err(SandboxError(format!("card {card_id} is terminated"))),
        _ => {
            *s.wallets.entry(seed.clone()).or_default() += amount;
            events.extend(event(
                s,
                &seed,
                "deposit.confirmed",
                json!({"card_id": card_id, "currency": asset, "amount_usd": num(amount), "status": "confirmed"}),
            ));
        }
    }
    Ok(events)
}

fn purchase(
    s: &mut Inner,
    card_id: &str,
    merchant: &str,
    amount: Decimal,
) -> Result<(bool, Vec<Delivery>), SandboxError> {
    if amount <= Decimal::ZERO {
        return Err(SandboxError("the amount must be positive".into()));
    }
    s.next_id += 1;
    let txn_id = format!("txn_{}{}", random_alnum(6), s.next_id);
    let card = s
        .cards
        .get_mut(card_id)
        .ok_or_else(|| SandboxError(format!("no card {card_id}")))?;
    let settled = card.state == "active" && card.balance >= amount;
    if settled {
        card.balance -= amount;
        card.total_spent += amount;
        card.last_used_at = Some(now());
    }
    card.transaction_count += 1;
    let kind = if settled { "settlement" } else { "decline" };
    let txn = json!({
        "id": txn_id,
        "card_id": card_id,
        "type": kind,
        "amount": num(if settled { -amount } else { amount }),
        "currency": "USD",
        "merchant": {"name": merchant, "category": "shopping", "mcc": "5999", "country": "US"},
        "balance_after": num(card.balance),
        "created_at": now(),
    });
    let seed = card.seed.clone();
    s.transactions.push((card_id.to_owned(), txn.clone()));
    let name = if settled {
        "transaction.settled"
    } else {
        "transaction.declined"
    };
    Ok((settled, event(s, &seed, name, txn).into_iter().collect()))
}

fn challenge(
    s: &mut Inner,
    card_id: &str,
    merchant: &str,
    amount: Decimal,
) -> Result<(String, Vec<Delivery>), SandboxError> {
    let card = s
        .cards
        .get(card_id)
        .ok_or_else(|| SandboxError(format!("no card {card_id}")))?;
    if card.state != "active" {
        return Err(SandboxError(format!("card {card_id} is {}", card.state)));
    }
    let seed = card.seed.clone();
    s.next_id += 1;
    let otp = format!("{:06}", rand::thread_rng().gen_range(0..1_000_000u32));
    let created = Utc::now();
    let c = Challenge {
        id: format!("3ds_{}{}", random_alnum(6), s.next_id),
        card_id: card_id.to_owned(),
        merchant: merchant.to_owned(),
        amount,
        otp: otp.clone(),
        status: "pending",
        created: Instant::now(),
        created_at: created.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        expires_at: (created + chrono::Duration::minutes(5))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    };
    let data = json!({"id": c.id, "card_id": card_id, "merchant": merchant, "amount": num(amount),
                      "otp": otp, "status": "pending", "expires_at": c.expires_at});
    s.challenges.push(c);
    Ok((
        otp,
        event(s, &seed, "3ds.challenge", data).into_iter().collect(),
    ))
}

// ───────────────────────────── webhooks ─────────────────────────────

/// A webhook registered with `POST /webhooks` by one seed.
struct Hook {
    id: String,
    url: Url,
    secret: String,
    events: Vec<String>,
}

/// One signed delivery, ready to post.
struct Delivery {
    url: Url,
    body: String,
    signature: String,
}

/// The deliveries of one event to every webhook that wants it.
fn event(s: &Inner, seed: &str, name: &str, data: Value) -> Vec<Delivery> {
    let payload = json!({
        "id": format!("evt_{}", random_alnum(16)),
        "event": name,
        "created_at": now(),
        "data": data,
    });
    let body = render(&payload);
    let mut targets: Vec<(Url, String)> = s.options.webhook.iter().cloned().collect();
    if let Some(hooks) = s.webhooks.get(seed) {
        targets.extend(
            hooks
                .iter()
                .filter(|h| h.events.iter().any(|e| e == "*" || e == name))
                .map(|h| (h.url.clone(), h.secret.clone())),
        );
    }
    targets
        .into_iter()
        .map(|(url, secret)| Delivery {
            signature: sign_webhook(secret.as_bytes(), body.as_bytes()),
            url,
            body: body.clone(),
        })
        .collect()
}

fn send_all(shared: &Arc<Shared>, deliveries: Vec<Delivery>) {
    for delivery in deliveries {
        let shared = shared.clone();
        tokio::spawn(async move {
            let sent = shared
                .http
                .post(delivery.url)
                .header(header::CONTENT_TYPE, "application/json")
                .header(SIGNATURE_HEADER, delivery.signature)
                .body(delivery.body)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            let mut s = shared.lock();
            if sent {
                s.counts.webhooks_sent += 1;
            } else {
                s.counts.webhooks_failed += 1;
            }
        });
    }
}

// ───────────────────────────── test data ─────────────────────────────

fn random_alnum(n: usize) -> String {
    const CHARS: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::thread_rng();
    (0..n)
        .map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char)
        .collect()
}

/// Appends the Luhn check digit.
fn luhn_complete(partial: &str) -> String {
    let sum: u32 = partial
        .chars()
        .rev()
        .filter_map(|c| c.to_digit(10))
        .enumerate()
        .map(|(i, d)| {
            if i % 2 == 0 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    format!("{partial}{}", (10 - sum % 10) % 10)
}

/// A plausible deposit address and chain for `asset` (sandbox only).
fn address_for(asset: &str) -> (String, &'static str) {
    const B58: &[u8] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    let mut rng = rand::thread_rng();
    let mut pick = |alphabet: &[u8], n: usize| -> String {
        (0..n)
            .map(|_| alphabet[rng.gen_range(0..alphabet.len())] as char)
            .collect()
    };
    match asset {
        "BTC" => (
            format!("bc1q{}", pick(b"023456789acdefghjklmnpqrstuvwxyz", 38)),
            "bitcoin",
        ),
        "LTC" => (
            format!("ltc1q{}", pick(b"023456789acdefghjklmnpqrstuvwxyz", 38)),
            "litecoin",
        ),
        "ETH" | "USDT-ERC20" => (format!("0x{}", pick(b"0123456789abcdef", 40)), "ethereum"),
        "USDT-TRC20" => (format!("T{}", pick(B58, 33)), "tron"),
        "SOL" | "USDT-SOL" | "USDC-SOL" => (pick(B58, 44), "solana"),
        "XMR" => (format!("4{}", pick(B58, 94)), "monero"),
        _ => (pick(B58, 40), "unknown"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_pans_pass_the_luhn_check() {
        assert_eq!(luhn_complete("424242424242424"), "4242424242424242");
        assert_eq!(luhn_complete("555555555555444"), "5555555555554444");
    }

    #[test]
    fn numbers_are_rendered_from_exact_decimals() {
        let v = json!({"a": num(Decimal::new(48750, 2)), "b": "text", "c": [num(Decimal::new(-125, 1))]});
        assert_eq!(render(&v), r#"{"a":487.50,"b":"text","c":[-12.50]}"#);
    }
}
