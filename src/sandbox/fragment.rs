//! Stateful loopback fake of the Fragment Stars API (`shared/seeds/fragment-stars-api.txt`),
//! served by axum. It speaks exactly the shapes documented in
//! `crate::providers::fragment::client` (the seed gives endpoints and error codes, not
//! payloads) and keeps state: a TON wallet balance that goes down with each payment, a
//! commission debt, orders that expire when unpaid, and a queue whose requests move
//! `pending → processing → done` (or `failed`, with the wallet refunded).
//!
//! Behaviour derived from usernames: any username starting with `ghost` does not exist
//! (`USER_NOT_FOUND`); any starting with `premium` already has Premium
//! (`PREMIUM_ALREADY_ACTIVE` on buy, `eligible: false` on the check).
//! A seed must decode from base64 to 12 or 24 words (else `INVALID_SEED`); cookies must
//! decode to non-empty text (else `INVALID_COOKIES`). Without cookies the owner's cookies
//! are used and `no_kyc_commission_percent` applies; with
//! `owner_cookies_configured = false` such calls answer `OWNER_COOKIES_NOT_CONFIGURED`.
//!
//! Knobs on the [`FragmentSandbox`] handle:
//! - `rate_limit_next(n, retry_after)`: the next `n` requests get 429 `RATE_LIMIT_EXCEEDED`
//!   with `Retry-After`, before any processing.
//! - `server_error_next(n, status, code)`: the next `n` requests are PROCESSED, then their
//!   answer is replaced by that error (the worst case for a client: the effect happened).
//! - `hang_next()`: the next request is processed, then its answer is withheld until
//!   shutdown (a client sees a timeout).
//! - `fail_next(code)`: the next queued request ends `failed` with that code.
//! - `set_balance`, `set_debt`, `set_processing_delay`, `set_order_ttl`, `counts()`.

// Handler helpers return the ready error `Response` as their `Err`, the usual axum idiom;
// its size does not matter in a test fake.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde_json::{Value, json};
use tokio::sync::watch;
use url::Url;

/// Start-up options of the fake.
#[derive(Debug, Clone)]
pub struct FragmentSandboxOptions {
    /// Initial TON balance of the wallet.
    pub ton_balance: Decimal,
    /// Price of one Star in TON.
    pub star_price: Decimal,
    /// Premium prices in TON for 3, 6 and 12 months.
    pub premium_prices: [(u8, Decimal); 3],
    /// Commission of the non-KYC mode, in percent.
    pub no_kyc_commission_percent: Decimal,
    /// Time a queued request spends in each of `pending` and `processing`.
    pub processing_delay: Duration,
    /// Unpaid orders expire after this long.
    pub order_ttl: Duration,
    /// Whether the server has owner cookies for non-KYC purchases.
    pub owner_cookies_configured: bool,
    /// Purchases are refused with `DEBT_LIMIT_EXCEEDED` once the debt reaches this.
    pub debt_limit: Decimal,
}

impl Default for FragmentSandboxOptions {
    fn default() -> Self {
        Self {
            ton_balance: Decimal::new(100, 0),
            star_price: Decimal::new(155, 4),
            premium_prices: [
                (3, Decimal::new(1199, 2)),
                (6, Decimal::new(1599, 2)),
                (12, Decimal::new(2899, 2)),
            ],
            no_kyc_commission_percent: Decimal::ONE,
            processing_delay: Duration::from_millis(200),
            order_ttl: Duration::from_secs(600),
            owner_cookies_configured: true,
            debt_limit: Decimal::new(10, 0),
        }
    }
}

/// What the fake has done, for tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FragmentCounts {
    pub orders_created: u64,
    /// Pay requests that reached the handler (accepted or not).
    pub pay_requests: u64,
    /// Orders paid (money taken, request queued).
    pub orders_paid: u64,
    /// One-call Stars purchases accepted.
    pub stars_bought: u64,
    /// Premium purchases accepted.
    pub premium_bought: u64,
    pub requests_done: u64,
    pub requests_failed: u64,
}

#[derive(Debug, Clone)]
struct Order {
    id: String,
    username: String,
    amount: u64,
    base_cost: Decimal,
    commission: Decimal,
    commission_rate: Decimal,
    total: Decimal,
    kyc: bool,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    status: &'static str,
    request_id: Option<String>,
}

#[derive(Debug, Clone)]
struct QueueRequest {
    id: String,
    order_id: Option<String>,
    kind: &'static str,
    username: String,
    amount: u64,
    months: Option<u8>,
    cost: Decimal,
    seq: u64,
    status: &'static str,
    tx_hash: Option<String>,
    error: Option<(String, String)>,
}

#[derive(Debug)]
struct Inner {
    opts: FragmentSandboxOptions,
    balance: Decimal,
    debt: Decimal,
    commission_paid: Decimal,
    orders: HashMap<String, Order>,
    requests: HashMap<String, QueueRequest>,
    transactions: Vec<Value>,
    next_seq: u64,
    counts: FragmentCounts,
    rate_limit_next: u32,
    retry_after_secs: u64,
    server_error_next: u32,
    server_error: (u16, String),
    hang_next: bool,
    fail_next: Option<String>,
}

struct Shared {
    inner: Mutex<Inner>,
    stop: watch::Receiver<bool>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Handle of a running fake.
pub struct FragmentSandbox {
    base_url: Url,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// Binds `addr` (use port 0 for any) and serves the fake until `shutdown`.
pub async fn start(
    addr: SocketAddr,
    options: FragmentSandboxOptions,
) -> std::io::Result<FragmentSandbox> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let shared = Arc::new(Shared {
        inner: Mutex::new(Inner {
            balance: options.ton_balance,
            opts: options,
            debt: Decimal::ZERO,
            commission_paid: Decimal::ZERO,
            orders: HashMap::new(),
            requests: HashMap::new(),
            transactions: Vec::new(),
            next_seq: 0,
            counts: FragmentCounts::default(),
            rate_limit_next: 0,
            retry_after_secs: 1,
            server_error_next: 0,
            server_error: (500, "INTERNAL_ERROR".into()),
            hang_next: false,
            fail_next: None,
        }),
        stop: stop_rx.clone(),
    });
    let app = Router::new()
        .route("/health", get(health))
        .route("/api/v1/stars/create", post(create_order))
        .route("/api/v1/orders/stars", post(create_order))
        .route("/api/v1/stars/pay", post(pay_order))
        .route("/api/v1/orders/{order_id}/pay", post(pay_order_path))
        .route("/api/v1/orders/{order_id}", get(order_status))
        .route("/api/v1/stars/buy", post(buy_stars))
        .route("/api/v1/queue", get(queue_length))
        .route("/api/v1/queue/status", get(queue_status))
        .route("/api/v1/queue/{request_id}", get(queue_request))
        .route("/api/v1/premium/check-eligibility", post(premium_check))
        .route("/api/v1/premium/buy", post(premium_buy))
        .route("/api/v1/wallet/balance", get(wallet_balance))
        .route("/api/v1/commission/balance", get(commission_balance))
        .route("/api/v1/commission/rates", get(commission_rates))
        .route("/api/v1/prices", get(prices))
        .route("/api/v1/transactions", get(transactions))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "NOT_FOUND", "No such endpoint") })
        .layer(middleware::from_fn_with_state(shared.clone(), knobs))
        .with_state(shared.clone());
    let mut rx = stop_rx;
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = rx.wait_for(|stop| *stop).await;
            })
            .await;
    });
    let base_url = Url::parse(&format!("http://{local}/")).map_err(std::io::Error::other)?;
    Ok(FragmentSandbox {
        base_url,
        shared,
        stop: stop_tx,
        task: Some(task),
    })
}

impl FragmentSandbox {
    /// Root URL of the fake, e.g. `http://127.0.0.1:41234/`.
    pub fn base_url(&self) -> Url {
        self.base_url.clone()
    }

    /// Stops serving (hung requests are released) and waits for the server to end.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    pub fn counts(&self) -> FragmentCounts {
        self.shared.lock().counts.clone()
    }

    pub fn balance(&self) -> Decimal {
        self.shared.lock().balance
    }

    pub fn set_balance(&self, ton: Decimal) {
        self.shared.lock().balance = ton;
    }

    /// Sets the commission debt; purchases fail once it reaches the debt limit.
    pub fn set_debt(&self, ton: Decimal) {
        self.shared.lock().debt = ton;
    }

    pub fn set_processing_delay(&self, delay: Duration) {
        self.shared.lock().opts.processing_delay = delay;
    }

    /// Applies to orders created from now on.
    pub fn set_order_ttl(&self, ttl: Duration) {
        self.shared.lock().opts.order_ttl = ttl;
    }

    pub fn set_owner_cookies_configured(&self, configured: bool) {
        self.shared.lock().opts.owner_cookies_configured = configured;
    }

    /// The next `n` requests answer 429 with `Retry-After: retry_after_secs`.
    pub fn rate_limit_next(&self, n: u32, retry_after_secs: u64) {
        let mut s = self.shared.lock();
        s.rate_limit_next = n;
        s.retry_after_secs = retry_after_secs;
    }

    /// The next `n` requests are processed, then answered with `status` and `code`.
    pub fn server_error_next(&self, n: u32, status: u16, code: &str) {
        let mut s = self.shared.lock();
        s.server_error_next = n;
        s.server_error = (status, code.to_string());
    }

    /// The next request is processed and its answer withheld until shutdown.
    pub fn hang_next(&self) {
        self.shared.lock().hang_next = true;
    }

    /// The next queued request ends `failed` with `code` (e.g. `FRAGMENT_ERROR`).
    pub fn fail_next(&self, code: &str) {
        self.shared.lock().fail_next = Some(code.to_string());
    }
}

impl Drop for FragmentSandbox {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

// ---------------------------------------------------------------------------------------

type Shd = State<Arc<Shared>>;

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(
            json!({"success": false, "error": {"code": code, "message": message, "details": null}}),
        ),
    )
        .into_response()
}

fn ok(body: Value) -> Response {
    let mut body = body;
    if let Value::Object(map) = &mut body {
        map.insert("success".into(), Value::Bool(true));
    }
    (StatusCode::OK, axum::Json(body)).into_response()
}

/// A decimal rendered as a JSON number, as Python services do (the client reads its text).
fn num(d: Decimal) -> Value {
    d.normalize()
        .to_f64()
        .and_then(serde_json::Number::from_f64)
        .map(Value::Number)
        .unwrap_or_else(|| Value::String(d.to_string()))
}

async fn knobs(State(shared): Shd, req: Request, next: Next) -> Response {
    let (rate_limited, server_error, hang) = {
        let mut s = shared.lock();
        if s.rate_limit_next > 0 {
            s.rate_limit_next -= 1;
            (Some(s.retry_after_secs), None, false)
        } else if s.server_error_next > 0 {
            s.server_error_next -= 1;
            (None, Some(s.server_error.clone()), false)
        } else {
            let hang = std::mem::take(&mut s.hang_next);
            (None, None, hang)
        }
    };
    if let Some(secs) = rate_limited {
        let mut resp = error(
            StatusCode::TOO_MANY_REQUESTS,
            "RATE_LIMIT_EXCEEDED",
            "Rate limit exceeded",
        );
        if let Ok(v) = secs.to_string().parse() {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return resp;
    }
    let resp = next.run(req).await;
    if let Some((status, code)) = server_error {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return error(status, &code, "Injected server error");
    }
    if hang {
        let mut stop = shared.stop.clone();
        let _ = stop.wait_for(|s| *s).await;
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "SERVICE_UNAVAILABLE",
            "Shutting down",
        );
    }
    resp
}

fn parse_body(body: &Bytes) -> Result<Value, Response> {
    match serde_json::from_slice::<Value>(body) {
        Ok(v @ Value::Object(_)) => Ok(v),
        _ => Err(error(
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
            "Body must be a JSON object",
        )),
    }
}

fn username_of(body: &Value) -> Result<String, Response> {
    let name = body
        .get("username")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let valid = name.strip_prefix('@').is_some_and(|n| {
        (1..=32).contains(&n.len()) && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    });
    if !valid {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "INVALID_USERNAME_FORMAT",
            "Invalid username format",
        ));
    }
    let bare = &name[1..];
    if bare.to_ascii_lowercase().starts_with("ghost") {
        return Err(error(
            StatusCode::NOT_FOUND,
            "USER_NOT_FOUND",
            "User not found",
        ));
    }
    Ok(name.to_string())
}

fn decode_b64(v: &str) -> Option<String> {
    base64::engine::general_purpose::STANDARD
        .decode(v.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
}

fn check_seed(seed: Option<&str>) -> Result<(), Response> {
    let words = seed
        .and_then(decode_b64)
        .map(|s| s.split_whitespace().count());
    match words {
        Some(12 | 24) => Ok(()),
        _ => Err(error(
            StatusCode::BAD_REQUEST,
            "INVALID_SEED",
            "Invalid seed phrase",
        )),
    }
}

/// Returns whether the call is in KYC mode.
fn check_cookies(body: &Value, s: &Inner) -> Result<bool, Response> {
    match body.get("fragment_cookies") {
        None | Some(Value::Null) => {
            if s.opts.owner_cookies_configured {
                Ok(false)
            } else {
                Err(error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "OWNER_COOKIES_NOT_CONFIGURED",
                    "Owner cookies not configured",
                ))
            }
        }
        Some(v) => match v.as_str().and_then(decode_b64) {
            Some(text) if !text.trim().is_empty() => Ok(true),
            _ => Err(error(
                StatusCode::BAD_REQUEST,
                "INVALID_COOKIES",
                "Invalid cookies",
            )),
        },
    }
}

fn commission(s: &Inner, base: Decimal, kyc: bool) -> (Decimal, Decimal) {
    let rate = if kyc {
        Decimal::ZERO
    } else {
        s.opts.no_kyc_commission_percent
    };
    ((base * rate / Decimal::ONE_HUNDRED).round_dp(9), rate)
}

fn check_funds(s: &Inner, total: Decimal) -> Result<(), Response> {
    if s.debt >= s.opts.debt_limit {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "DEBT_LIMIT_EXCEEDED",
            "Debt limit exceeded",
        ));
    }
    if s.balance < total {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "INSUFFICIENT_BALANCE",
            "Insufficient balance",
        ));
    }
    Ok(())
}

fn stars_amount(body: &Value) -> Result<u64, Response> {
    let amount = body
        .get("amount")
        .or_else(|| body.get("quantity"))
        .and_then(Value::as_u64);
    match amount {
        Some(a) if (50..=1_000_000).contains(&a) => Ok(a),
        _ => Err(error(
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
            "amount must be an integer between 50 and 1000000",
        )),
    }
}

fn order_json(o: &Order) -> Value {
    json!({
        "order_id": o.id,
        "username": o.username,
        "amount": o.amount,
        "base_cost": num(o.base_cost),
        "commission": num(o.commission),
        "commission_rate": num(o.commission_rate),
        "total_cost": num(o.total),
        "currency": "TON",
        "mode": if o.kyc { "kyc" } else { "no_kyc" },
        "status": o.status,
        "request_id": o.request_id,
        "created_at": o.created_at.to_rfc3339(),
        "expires_at": o.expires_at.to_rfc3339(),
    })
}

fn expire_if_due(o: &mut Order) {
    if o.status == "created" && Utc::now() >= o.expires_at {
        o.status = "expired";
    }
}

/// Takes the money, creates a queued request and starts its processing.
#[allow(clippy::too_many_arguments)]
fn enqueue(
    shared: &Arc<Shared>,
    s: &mut Inner,
    kind: &'static str,
    order_id: Option<String>,
    username: String,
    amount: u64,
    months: Option<u8>,
    total: Decimal,
    commission: Decimal,
) -> Value {
    s.balance -= total;
    s.commission_paid += commission;
    s.next_seq += 1;
    let seq = s.next_seq;
    let position = s
        .requests
        .values()
        .filter(|r| r.status == "pending")
        .count() as u64
        + 1;
    let id = format!("req_{}", uuid::Uuid::new_v4().simple());
    let fail = s.fail_next.take();
    s.requests.insert(
        id.clone(),
        QueueRequest {
            id: id.clone(),
            order_id: order_id.clone(),
            kind,
            username,
            amount,
            months,
            cost: total,
            seq,
            status: "pending",
            tx_hash: None,
            error: None,
        },
    );
    let delay = s.opts.processing_delay;
    let shared = shared.clone();
    let req_id = id.clone();
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        set_request(&shared, &req_id, |r, _| r.status = "processing");
        tokio::time::sleep(delay).await;
        set_request(&shared, &req_id, |r, s| match &fail {
            Some(code) => {
                r.status = "failed";
                r.error = Some((code.clone(), "Purchase failed at Fragment".into()));
                s.balance += r.cost;
                s.counts.requests_failed += 1;
            }
            None => {
                r.status = "done";
                r.tx_hash = Some(format!("{:064x}", rand::random::<u128>()));
                s.counts.requests_done += 1;
                s.transactions.push(json!({
                    "id": format!("tx_{}", r.seq),
                    "type": r.kind,
                    "amount": num(r.cost),
                    "currency": "TON",
                    "status": "completed",
                    "username": r.username,
                    "order_id": r.order_id,
                    "tx_hash": r.tx_hash,
                    "created_at": Utc::now().to_rfc3339(),
                }));
            }
        });
    });
    json!({"request_id": id, "order_id": order_id, "status": "pending", "position": position})
}

fn set_request(shared: &Arc<Shared>, id: &str, f: impl FnOnce(&mut QueueRequest, &mut Inner)) {
    let mut guard = shared.lock();
    let s = &mut *guard;
    let Some(mut r) = s.requests.remove(id) else {
        return;
    };
    f(&mut r, s);
    if let Some(order_id) = &r.order_id
        && let Some(o) = s.orders.get_mut(order_id)
    {
        o.status = match r.status {
            "done" => "completed",
            "failed" => "failed",
            "processing" => "processing",
            _ => "queued",
        };
    }
    s.requests.insert(id.to_string(), r);
}

async fn health(State(shared): Shd) -> Response {
    let len = shared
        .lock()
        .requests
        .values()
        .filter(|r| r.status == "pending")
        .count();
    ok(json!({"status": "ok", "queue_length": len}))
}

async fn create_order(State(shared): Shd, body: Bytes) -> Response {
    let body = match parse_body(&body) {
        Ok(b) => b,
        Err(e) => return e,
    };
    let username = match username_of(&body) {
        Ok(u) => u,
        Err(e) => return e,
    };
    let amount = match stars_amount(&body) {
        Ok(a) => a,
        Err(e) => return e,
    };
    let mut s = shared.lock();
    let kyc = match check_cookies(&body, &s) {
        Ok(k) => k,
        Err(e) => return e,
    };
    let base = s.opts.star_price * Decimal::from(amount);
    let (commission, rate) = commission(&s, base, kyc);
    let now = Utc::now();
    let ttl = chrono::Duration::from_std(s.opts.order_ttl)
        .unwrap_or_else(|_| chrono::Duration::minutes(10));
    let order = Order {
        id: format!("ord_{}", uuid::Uuid::new_v4().simple()),
        username,
        amount,
        base_cost: base,
        commission,
        commission_rate: rate,
        total: base + commission,
        kyc,
        created_at: now,
        expires_at: now + ttl,
        status: "created",
        request_id: None,
    };
    s.counts.orders_created += 1;
    let answer = order_json(&order);
    s.orders.insert(order.id.clone(), order);
    ok(answer)
}

async fn pay_order(State(shared): Shd, body: Bytes) -> Response {
    let body = match parse_body(&body) {
        Ok(b) => b,
        Err(e) => return e,
    };
    let id = body
        .get("order_id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    pay(&shared, &id, &body)
}

async fn pay_order_path(State(shared): Shd, Path(order_id): Path<String>, body: Bytes) -> Response {
    let body = match parse_body(&body) {
        Ok(b) => b,
        Err(e) => return e,
    };
    pay(&shared, &order_id, &body)
}

fn pay(shared: &Arc<Shared>, order_id: &str, body: &Value) -> Response {
    let mut guard = shared.lock();
    let s = &mut *guard;
    s.counts.pay_requests += 1;
    if let Err(e) = check_seed(body.get("seed").and_then(Value::as_str)) {
        return e;
    }
    if let Err(e) = check_cookies(body, s) {
        return e;
    }
    let Some(order) = s.orders.get_mut(order_id) else {
        return error(StatusCode::NOT_FOUND, "ORDER_NOT_FOUND", "Order not found");
    };
    expire_if_due(order);
    match order.status {
        "created" => {}
        "expired" => return error(StatusCode::BAD_REQUEST, "ORDER_EXPIRED", "Order expired"),
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "VALIDATION_ERROR",
                "Order already paid",
            );
        }
    }
    let order = order.clone();
    if let Err(e) = check_funds(s, order.total) {
        return e;
    }
    s.counts.orders_paid += 1;
    let answer = enqueue(
        shared,
        s,
        "stars",
        Some(order.id.clone()),
        order.username.clone(),
        order.amount,
        None,
        order.total,
        order.commission,
    );
    if let Some(o) = s.orders.get_mut(&order.id) {
        o.status = "queued";
        o.request_id = answer
            .get("request_id")
            .and_then(Value::as_str)
            .map(str::to_string);
    }
    ok(answer)
}

async fn order_status(State(shared): Shd, Path(order_id): Path<String>) -> Response {
    let mut s = shared.lock();
    match s.orders.get_mut(&order_id) {
        Some(o) => {
            expire_if_due(o);
            ok(order_json(o))
        }
        None => error(StatusCode::NOT_FOUND, "ORDER_NOT_FOUND", "Order not found"),
    }
}

async fn buy_stars(State(shared): Shd, body: Bytes) -> Response {
    let body = match parse_body(&body) {
        Ok(b) => b,
        Err(e) => return e,
    };
    let username = match username_of(&body) {
        Ok(u) => u,
        Err(e) => return e,
    };
    let amount = match stars_amount(&body) {
        Ok(a) => a,
        Err(e) => return e,
    };
    if let Err(e) = check_seed(body.get("seed").and_then(Value::as_str)) {
        return e;
    }
    let mut guard = shared.lock();
    let s = &mut *guard;
    let kyc = match check_cookies(&body, s) {
        Ok(k) => k,
        Err(e) => return e,
    };
    let base = s.opts.star_price * Decimal::from(amount);
    let (commission, _) = commission(s, base, kyc);
    if let Err(e) = check_funds(s, base + commission) {
        return e;
    }
    s.counts.stars_bought += 1;
    ok(enqueue(
        &shared,
        s,
        "stars",
        None,
        username,
        amount,
        None,
        base + commission,
        commission,
    ))
}

async fn queue_request(State(shared): Shd, Path(request_id): Path<String>) -> Response {
    let s = shared.lock();
    let Some(r) = s.requests.get(&request_id) else {
        return error(
            StatusCode::NOT_FOUND,
            "REQUEST_NOT_FOUND",
            "Request not found",
        );
    };
    let position = (r.status == "pending").then(|| {
        s.requests
            .values()
            .filter(|o| o.status == "pending" && o.seq <= r.seq)
            .count()
    });
    let result = (r.status == "done").then(|| {
        json!({
            "tx_hash": r.tx_hash,
            "username": r.username,
            "amount": r.amount,
            "months": r.months,
            "cost": num(r.cost),
            "currency": "TON",
        })
    });
    let err = r
        .error
        .as_ref()
        .map(|(code, message)| json!({"code": code, "message": message}));
    ok(json!({
        "request_id": r.id,
        "order_id": r.order_id,
        "type": r.kind,
        "status": r.status,
        "position": position,
        "result": result,
        "error": err,
    }))
}

async fn queue_status(State(shared): Shd) -> Response {
    let s = shared.lock();
    let pending = s
        .requests
        .values()
        .filter(|r| r.status == "pending")
        .count();
    let processing = s
        .requests
        .values()
        .filter(|r| r.status == "processing")
        .count();
    ok(
        json!({"queue_length": pending, "processing": processing, "workers": 1, "status": "running"}),
    )
}

async fn queue_length(State(shared): Shd) -> Response {
    let s = shared.lock();
    let pending = s
        .requests
        .values()
        .filter(|r| r.status == "pending")
        .count();
    ok(json!({"queue_length": pending}))
}

fn months_of(body: &Value) -> Result<u8, Response> {
    match body.get("months").and_then(Value::as_u64) {
        Some(m @ (3 | 6 | 12)) => Ok(m as u8),
        _ => Err(error(
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
            "months must be 3, 6 or 12",
        )),
    }
}

fn has_premium(username: &str) -> bool {
    username
        .trim_start_matches('@')
        .to_ascii_lowercase()
        .starts_with("premium")
}

async fn premium_check(body: Bytes) -> Response {
    let body = match parse_body(&body) {
        Ok(b) => b,
        Err(e) => return e,
    };
    let username = match username_of(&body) {
        Ok(u) => u,
        Err(e) => return e,
    };
    if has_premium(&username) {
        ok(
            json!({"username": username, "eligible": false, "reason": "PREMIUM_ALREADY_ACTIVE",
                  "message": "User already has an active Telegram Premium subscription"}),
        )
    } else {
        ok(json!({"username": username, "eligible": true}))
    }
}

async fn premium_buy(State(shared): Shd, body: Bytes) -> Response {
    let body = match parse_body(&body) {
        Ok(b) => b,
        Err(e) => return e,
    };
    let username = match username_of(&body) {
        Ok(u) => u,
        Err(e) => return e,
    };
    let months = match months_of(&body) {
        Ok(m) => m,
        Err(e) => return e,
    };
    if let Err(e) = check_seed(body.get("seed").and_then(Value::as_str)) {
        return e;
    }
    if has_premium(&username) {
        return error(
            StatusCode::BAD_REQUEST,
            "PREMIUM_ALREADY_ACTIVE",
            "Premium already active",
        );
    }
    let mut guard = shared.lock();
    let s = &mut *guard;
    let kyc = match check_cookies(&body, s) {
        Ok(k) => k,
        Err(e) => return e,
    };
    let base = s
        .opts
        .premium_prices
        .iter()
        .find(|(m, _)| *m == months)
        .map(|(_, p)| *p)
        .unwrap_or_default();
    let (commission, _) = commission(s, base, kyc);
    if let Err(e) = check_funds(s, base + commission) {
        return e;
    }
    s.counts.premium_bought += 1;
    ok(enqueue(
        &shared,
        s,
        "premium",
        None,
        username,
        0,
        Some(months),
        base + commission,
        commission,
    ))
}

fn wallet_seed(headers: &HeaderMap) -> Result<(), Response> {
    check_seed(headers.get("x-seed").and_then(|v| v.to_str().ok()))
}

async fn wallet_balance(State(shared): Shd, headers: HeaderMap) -> Response {
    if let Err(e) = wallet_seed(&headers) {
        return e;
    }
    let s = shared.lock();
    ok(
        json!({"address": "UQsandboxWallet000000000000000000000000000000000", "balance": num(s.balance), "currency": "TON"}),
    )
}

async fn commission_balance(State(shared): Shd, headers: HeaderMap) -> Response {
    if let Err(e) = wallet_seed(&headers) {
        return e;
    }
    let s = shared.lock();
    ok(json!({
        "debt": num(s.debt),
        "debt_limit": num(s.opts.debt_limit),
        "total_paid": num(s.commission_paid),
        "currency": "TON",
    }))
}

async fn commission_rates(State(shared): Shd) -> Response {
    let s = shared.lock();
    ok(json!({"kyc": 0, "no_kyc": num(s.opts.no_kyc_commission_percent), "unit": "percent"}))
}

async fn prices(State(shared): Shd) -> Response {
    let s = shared.lock();
    let premium: serde_json::Map<String, Value> = s
        .opts
        .premium_prices
        .iter()
        .map(|(m, p)| (m.to_string(), num(*p)))
        .collect();
    ok(json!({
        "stars": {"price_per_star": num(s.opts.star_price), "currency": "TON", "min_amount": 50, "max_amount": 1_000_000},
        "premium": premium,
        "currency": "TON",
    }))
}

async fn transactions(
    State(shared): Shd,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(e) = wallet_seed(&headers) {
        return e;
    }
    let limit = q
        .get("limit")
        .and_then(|v| usize::from_str(v).ok())
        .unwrap_or(50);
    let offset = q
        .get("offset")
        .and_then(|v| usize::from_str(v).ok())
        .unwrap_or(0);
    let s = shared.lock();
    let items: Vec<Value> = s
        .transactions
        .iter()
        .rev()
        .skip(offset)
        .take(limit)
        .cloned()
        .collect();
    ok(json!({"transactions": items, "total": s.transactions.len()}))
}
