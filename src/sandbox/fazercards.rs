//! A stateful loopback fake of the FazerCards reseller API (`/api/v2`), served by axum.
//!
//! It follows `shared/seeds/fazercards-api-v2.txt` as corrected by `shared/providers.md`
//! (facts from the official client `fazercards` 0.2.0, which works against it unchanged):
//! - Auth: `X-API-Key: <key>` or `Authorization: Bearer <key>`; anything else is 401.
//!   `GET /steam-topup/public-rates` and `/website/subscription-prices` need no key. A
//!   product family switched off with [`FakeFazerCards::disable_service`] answers 403.
//! - Errors are `{"ok": false, "error": "…", "code": "…"}`: 400 validation, insufficient
//!   balance (`insufficient_balance`) or stock (`out_of_stock`); 401; 403; 404 for unknown ids
//!   and routes; 409 when an `Idempotency-Key` is reused for another product type; 429 with
//!   `Retry-After` (whole seconds, or fractional when a test injects a sub-second hint).
//! - Rate limits per category with a sliding window (the seed's table, the stricter one):
//!   catalog 120/min, create order 60/min, order status 120/min, account 30/min, other
//!   120/min. Switch off with [`FakeOptions::enforce_rate_limits`].
//! - Orders: ids `ord-<digits>`, transactions `tx<digits>`. A USD balance is debited on
//!   creation and credited back when an order ends in `refund` (a `failed` order keeps the
//!   charge: `refund` is the status that says the balance was returned). Stock goes down.
//!   Gift cards and game keys complete at once with `cards` / `keys`; other kinds answer
//!   `processing` (manual services `created`) and move on after [`FakeOptions::order_delay`]:
//!   `created → processing → completed` (a zero delay completes everything at once).
//!   Gift-card, top-up and game-key orders use snake_case; Steam and Telegram orders use
//!   camelCase (Telegram orders echo `telegramUsername` with `quantity` / `months`); the
//!   manual-service create answer is flat with `order_id`.
//! - Idempotency: a replayed key returns the original order (200, current status, also after
//!   `failed`); the same key on another product family is 409. Telegram buys take no key.
//! - Top-ups: the validate-id namespace (`pubg_mobile`, `free_fire`, `mlbb`, `genshin`) is
//!   distinct from the purchasable categories (`pubg_mobile_auto`, …). **Player-id rule**: an
//!   id field (`player_id`, `user_id`, `uid`) is valid when it is 5–12 digits and does not
//!   start with 0 (MLBB's `zone_id`: 1–5 digits). A top-up order for an invalid id is
//!   accepted and then ends in `refund` ("Player ID not found").
//! - Steam: any login starting with `norefill` (case-insensitive) has `can_refill: false`, and
//!   a top-up order for it is 400 `steam_login_not_refillable`.
//! - Telegram: Stars 50–10000, Premium 3/6/12 months, usernames 5–32 of `[A-Za-z0-9_]`
//!   (a leading `@` is allowed).
//! - Catalog cursor pages hold at most [`FakeOptions::max_page_size`] items (3 by default,
//!   so clients really walk the cursor).
//! - Webhooks: when a target is set, each order event is POSTed with `X-Webhook-Signature:
//!   sha256=<hex HMAC-SHA256 of the raw body>`, `X-Webhook-Event`, `X-Webhook-Event-Id` (a
//!   UUID, the same on retries) and `X-Webhook-Delivery-Attempt`; body `{event, event_id,
//!   timestamp, data}` with `data = {order_id, kind, status, previous_status, order}`.
//!   Deliveries are sequential and retried after [`FakeOptions::webhook_retry_delays`].
//!
//! Test knobs on the handle: order delay, fail / refund the next order, inject 429 / 5xx /
//! hangs / malformed JSON on a path, set the balance, counters of orders and requests;
//! for benchmarks, open orders seeded in bulk, finished on demand, and a log of the
//! requests let through per rate category with the count of 429s.
//! Not modelled: payments, subscription changes, `/account/webhook` settings.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, SecondsFormat, Utc};
use hmac::{Hmac, Mac};
use rand::Rng;
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};
use sha2::Sha256;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use url::Url;

// ───────────────────────────── options and handle ─────────────────────────────

/// Where order events are delivered. `Debug` hides the secret.
#[derive(Clone)]
pub struct WebhookTarget {
    pub url: Url,
    pub secret: String,
}

impl fmt::Debug for WebhookTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookTarget")
            .field("url", &self.url.as_str())
            .field("secret", &"***")
            .finish()
    }
}

/// Start-up settings of the fake.
#[derive(Clone, Debug)]
pub struct FakeOptions {
    /// The one API key the fake accepts.
    pub api_key: String,
    /// Starting USD balance.
    pub initial_balance: Decimal,
    /// Time from creation to the terminal status for orders that are not instant.
    pub order_delay: Duration,
    /// Largest cursor page of the catalog listings.
    pub max_page_size: u32,
    /// Answer 429 when a category's published budget is exceeded.
    pub enforce_rate_limits: bool,
    pub webhook: Option<WebhookTarget>,
    /// Pauses before the 2nd, 3rd, … delivery attempt of a webhook.
    pub webhook_retry_delays: Vec<Duration>,
}

impl Default for FakeOptions {
    fn default() -> Self {
        Self {
            api_key: "sandbox".to_string(),
            initial_balance: Decimal::new(1000, 0),
            order_delay: Duration::from_secs(2),
            max_page_size: 3,
            enforce_rate_limits: true,
            webhook: None,
            webhook_retry_delays: vec![
                Duration::from_millis(200),
                Duration::from_secs(1),
                Duration::from_secs(5),
            ],
        }
    }
}

/// A misbehaviour to inject.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// 429 with `Retry-After`, before the request is processed.
    RateLimited { retry_after: Duration },
    /// A 5xx; with `after_processing` the request is executed first and its answer lost.
    ServerError { status: u16, after_processing: bool },
    /// Sleep `delay`. With `after_processing` the request is executed first and the real
    /// answer comes late; otherwise nothing is executed and a 504 comes after the delay.
    Hang {
        delay: Duration,
        after_processing: bool,
    },
    /// A 200 whose body is not valid JSON, after the request was executed.
    MalformedJson,
}

struct FaultRule {
    path: Option<String>,
    fault: Fault,
    remaining: u32,
}

/// A running fake. Dropping it stops the server too.
pub struct FakeFazerCards {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl fmt::Debug for FakeFazerCards {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeFazerCards")
            .field("addr", &self.addr)
            .field("api_key", &"***")
            .finish_non_exhaustive()
    }
}

/// Binds `addr` (port 0 picks a free port) and serves the fake until shut down.
pub async fn start(addr: SocketAddr, options: FakeOptions) -> std::io::Result<FakeFazerCards> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let webhook = Arc::new(Mutex::new(options.webhook.clone()));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(std::io::Error::other)?;
    tokio::spawn(webhook_worker(
        http,
        Arc::clone(&webhook),
        options.webhook_retry_delays.clone(),
        events_rx,
    ));
    let shared = Arc::new(Shared::new(options, webhook, events_tx));
    let app = router(Arc::clone(&shared));
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
            let _ = stopped.await;
        });
        if let Err(e) = serve.await {
            tracing::warn!(error = %e, "fazercards fake stopped with an error");
        }
    });
    Ok(FakeFazerCards {
        addr: local,
        shared,
        stop: Some(stop),
        task: Some(task),
    })
}

impl FakeFazerCards {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>/api/v2`.
    pub fn base_url(&self) -> Url {
        // A socket address always forms a valid http URL.
        Url::parse(&format!("http://{}/api/v2", self.addr))
            .expect("http://<socket addr>/api/v2 is a valid URL")
    }

    pub fn api_key(&self) -> &str {
        &self.shared.api_key
    }

    /// Stops accepting requests; in-flight ones get up to a second to finish.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(1), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }

    pub fn set_order_delay(&self, delay: Duration) {
        self.shared.state().order_delay = delay;
    }

    /// The next created order ends `failed` with `reason` (the charge is kept).
    pub fn fail_next_order(&self, reason: &str) {
        self.shared.state().next_outcome = Some(Outcome::Fail(reason.to_string()));
    }

    /// The next created order ends `refund` with `reason` (the charge is returned).
    pub fn refund_next_order(&self, reason: &str) {
        self.shared.state().next_outcome = Some(Outcome::Refund(reason.to_string()));
    }

    /// Injects `fault` into the next `times` requests whose path (after `/api/v2`, e.g.
    /// `/giftcards/order`) equals `path`, or into any request when `path` is `None`.
    pub fn inject(&self, path: Option<&str>, fault: Fault, times: u32) {
        lock(&self.shared.faults).push(FaultRule {
            path: path.map(str::to_string),
            fault,
            remaining: times,
        });
    }

    /// `times` × 429 with `Retry-After`.
    pub fn inject_rate_limit(&self, path: Option<&str>, times: u32, retry_after: Duration) {
        self.inject(path, Fault::RateLimited { retry_after }, times);
    }

    /// `times` × HTTP 500 before processing.
    pub fn inject_server_error(&self, path: Option<&str>, times: u32) {
        self.inject(
            path,
            Fault::ServerError {
                status: 500,
                after_processing: false,
            },
            times,
        );
    }

    /// The next matching request hangs for `delay` (see [`Fault::Hang`]).
    pub fn inject_hang(&self, path: Option<&str>, delay: Duration, after_processing: bool) {
        self.inject(
            path,
            Fault::Hang {
                delay,
                after_processing,
            },
            1,
        );
    }

    pub fn set_balance(&self, balance: Decimal) {
        self.shared.state().balance = balance;
    }

    pub fn balance(&self) -> Decimal {
        self.shared.state().balance
    }

    /// Orders created so far (replays do not count).
    pub fn orders_created(&self) -> usize {
        self.shared.state().orders.len()
    }

    /// Orders created so far of one `kind` (`gift_card`, `telegram_stars`, …).
    pub fn orders_created_of(&self, kind: &str) -> usize {
        self.shared
            .state()
            .orders
            .iter()
            .filter(|o| o.kind == kind)
            .count()
    }

    /// Current status of an order.
    pub fn order_status(&self, order_id: &str) -> Option<String> {
        let state = self.shared.state();
        state.order(order_id).map(|o| o.status.clone())
    }

    /// Bench and test knob: `count` top-up orders already `processing`, as a busy
    /// account holds them (no HTTP call, no rate budget, no timer: they stay open until
    /// [`FakeFazerCards::finish_order`]). Their ids, oldest first.
    pub fn seed_processing_orders(&self, count: usize) -> Vec<String> {
        let mut state = self.shared.state();
        let mut ids = Vec::with_capacity(count);
        for _ in 0..count {
            state.next_order += 1;
            let id = format!("ord-{}", state.next_order);
            let charge = Decimal::new(199, 2);
            let debit_tx = state.push_tx("debit", -charge, format!("Order {id}"));
            let now = Utc::now();
            let order = Order {
                id: id.clone(),
                kind: "topup",
                status: "processing".into(),
                created_at: now,
                completed_at: None,
                history: vec![("created".into(), now), ("processing".into(), now)],
                fail_reason: None,
                charged: charge,
                debit_tx,
                refund_tx: None,
                cards: Vec::new(),
                keys: Vec::new(),
                goods: Goods::None,
                code_prefix: "",
                stock: None,
                outcome: Outcome::Complete,
                details: Map::new(),
                chat: Vec::new(),
                chat_enabled: false,
            };
            let position = state.orders.len();
            state.index.insert(id.clone(), position);
            state.orders.push(order);
            ids.push(id);
        }
        ids
    }

    /// Moves an open order to its planned terminal status now (webhook events are sent
    /// when a target is set). False for an unknown or already finished order.
    pub fn finish_order(&self, order_id: &str) -> bool {
        let events = finish(&mut self.shared.state(), order_id);
        let moved = !events.is_empty();
        self.shared.emit(events);
        moved
    }

    /// The requests of a rate category (`order_status`, `catalog`, `create_order`,
    /// `account`, `payment`, `other`) that were let through (instant, path after
    /// `/api/v2`), and how many were answered 429 for exceeding its budget. Empty when
    /// limits are not enforced.
    pub fn rate_log(&self, category: &str) -> (Vec<(Instant, String)>, usize) {
        let state = self.shared.state();
        let granted = state
            .granted
            .iter()
            .find(|(k, _)| **k == category)
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        let rejected = state
            .rejected
            .iter()
            .find(|(k, _)| **k == category)
            .map(|(_, v)| *v)
            .unwrap_or(0);
        (granted, rejected)
    }

    /// Requests seen for `method` + `path` (after `/api/v2`), faulted ones included.
    pub fn request_count(&self, method: &str, path: &str) -> usize {
        let key = format!("{} {}", method.to_ascii_uppercase(), path);
        self.shared.state().requests.get(&key).copied().unwrap_or(0)
    }

    pub fn gift_card_stock(&self, category_id: &str, card_id: &str) -> Option<u32> {
        self.shared
            .state()
            .stock
            .get(&stock_key("gc", category_id, card_id))
            .copied()
    }

    pub fn game_key_stock(&self, game_id: &str, key_id: &str) -> Option<u32> {
        self.shared
            .state()
            .stock
            .get(&stock_key("gk", game_id, key_id))
            .copied()
    }

    pub fn set_webhook(&self, url: Url, secret: &str) {
        *lock(&self.shared.webhook) = Some(WebhookTarget {
            url,
            secret: secret.to_string(),
        });
    }

    pub fn clear_webhook(&self) {
        *lock(&self.shared.webhook) = None;
    }

    /// Answer 403 on one product family: `topups`, `giftcards`, `gamekeys`, `steam_topup`,
    /// `steam_gifts`, `telegram`, `manual_services`.
    pub fn disable_service(&self, service: &str) {
        self.shared.state().disabled.insert(service.to_string());
    }

    pub fn enable_service(&self, service: &str) {
        self.shared.state().disabled.remove(service);
    }
}

impl Drop for FakeFazerCards {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

// ───────────────────────────── state ─────────────────────────────

#[derive(Clone, Debug, PartialEq, Eq)]
enum Outcome {
    Complete,
    Fail(String),
    Refund(String),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Goods {
    None,
    Cards { quantity: u32 },
    Keys { quantity: u32 },
}

struct Order {
    id: String,
    kind: &'static str,
    status: String,
    created_at: DateTime<Utc>,
    completed_at: Option<DateTime<Utc>>,
    history: Vec<(String, DateTime<Utc>)>,
    fail_reason: Option<String>,
    charged: Decimal,
    debit_tx: String,
    refund_tx: Option<String>,
    cards: Vec<String>,
    keys: Vec<String>,
    goods: Goods,
    code_prefix: &'static str,
    stock: Option<(String, u32)>,
    outcome: Outcome,
    /// Kind-specific fields, already in the kind's casing.
    details: Map<String, Value>,
    chat: Vec<Value>,
    chat_enabled: bool,
}

struct Tx {
    id: String,
    kind: &'static str,
    amount: Decimal,
    before: Decimal,
    after: Decimal,
    note: String,
    at: DateTime<Utc>,
}

struct FakeState {
    balance: Decimal,
    order_delay: Duration,
    next_order: u64,
    next_tx: u64,
    orders: Vec<Order>,
    index: HashMap<String, usize>,
    idempotency: HashMap<String, (&'static str, String)>,
    stock: HashMap<String, u32>,
    transactions: Vec<Tx>,
    next_outcome: Option<Outcome>,
    disabled: HashSet<String>,
    requests: HashMap<String, usize>,
    windows: HashMap<&'static str, VecDeque<Instant>>,
    /// Every grant per rate category (for benchmarks: the busiest 60 s window).
    granted: HashMap<&'static str, Vec<(Instant, String)>>,
    /// 429s answered because a category's budget was exceeded.
    rejected: HashMap<&'static str, usize>,
}

impl FakeState {
    fn order(&self, id: &str) -> Option<&Order> {
        self.index.get(id).and_then(|i| self.orders.get(*i))
    }

    fn order_mut(&mut self, id: &str) -> Option<&mut Order> {
        match self.index.get(id) {
            Some(i) => self.orders.get_mut(*i),
            None => None,
        }
    }

    fn push_tx(&mut self, kind: &'static str, amount: Decimal, note: String) -> String {
        self.next_tx += 1;
        let id = format!("tx{}", self.next_tx);
        let before = self.balance;
        self.balance += amount;
        self.transactions.push(Tx {
            id: id.clone(),
            kind,
            amount,
            before,
            after: self.balance,
            note,
            at: Utc::now(),
        });
        id
    }
}

struct Shared {
    api_key: String,
    max_page_size: u32,
    enforce_rate_limits: bool,
    state: Mutex<FakeState>,
    faults: Mutex<Vec<FaultRule>>,
    webhook: Arc<Mutex<Option<WebhookTarget>>>,
    events: mpsc::UnboundedSender<(String, Value)>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

impl Shared {
    fn new(
        options: FakeOptions,
        webhook: Arc<Mutex<Option<WebhookTarget>>>,
        events: mpsc::UnboundedSender<(String, Value)>,
    ) -> Self {
        let mut stock = HashMap::new();
        for cat in GIFT_CARDS {
            for card in cat.cards {
                stock.insert(stock_key("gc", cat.id, card.id), card.stock);
            }
        }
        for game in GAME_KEYS {
            for key in game.keys {
                stock.insert(stock_key("gk", game.id, key.id), key.stock);
            }
        }
        Self {
            api_key: options.api_key,
            max_page_size: options.max_page_size.max(1),
            enforce_rate_limits: options.enforce_rate_limits,
            state: Mutex::new(FakeState {
                balance: options.initial_balance,
                order_delay: options.order_delay,
                next_order: 10_000,
                next_tx: 5_000,
                orders: Vec::new(),
                index: HashMap::new(),
                idempotency: HashMap::new(),
                stock,
                transactions: Vec::new(),
                next_outcome: None,
                disabled: HashSet::new(),
                requests: HashMap::new(),
                windows: HashMap::new(),
                granted: HashMap::new(),
                rejected: HashMap::new(),
            }),
            faults: Mutex::new(Vec::new()),
            webhook,
            events,
        }
    }

    fn state(&self) -> MutexGuard<'_, FakeState> {
        lock(&self.state)
    }

    fn emit(&self, events: Vec<(String, Value)>) {
        if lock(&self.webhook).is_none() {
            return;
        }
        for e in events {
            let _ = self.events.send(e);
        }
    }
}

fn stock_key(prefix: &str, a: &str, b: &str) -> String {
    format!("{prefix}:{a}:{b}")
}

// ───────────────────────────── sample catalog ─────────────────────────────

struct FieldDef {
    key: &'static str,
    label: &'static str,
    options: &'static [(&'static str, &'static str)],
}

struct TopupOfferDef {
    id: &'static str,
    name: &'static str,
    price: &'static str,
}

const fn offer(id: &'static str, name: &'static str, price: &'static str) -> TopupOfferDef {
    TopupOfferDef { id, name, price }
}

struct TopupDef {
    id: &'static str,
    name: &'static str,
    note: &'static str,
    fields: &'static [FieldDef],
    offers: &'static [TopupOfferDef],
}

const PLAYER_ID: FieldDef = FieldDef {
    key: "player_id",
    label: "Player ID",
    options: &[],
};
const MLBB_FIELDS: &[FieldDef] = &[
    FieldDef {
        key: "user_id",
        label: "User ID",
        options: &[],
    },
    FieldDef {
        key: "zone_id",
        label: "Zone ID",
        options: &[],
    },
];
const GENSHIN_FIELDS: &[FieldDef] = &[
    FieldDef {
        key: "uid",
        label: "UID",
        options: &[],
    },
    FieldDef {
        key: "server",
        label: "Server",
        options: &[
            ("os_usa", "America"),
            ("os_euro", "Europe"),
            ("os_asia", "Asia"),
            ("os_cht", "TW, HK, MO"),
        ],
    },
];

const TOPUPS: &[TopupDef] = &[
    TopupDef {
        id: "pubg_mobile_auto",
        name: "PUBG Mobile",
        note: "UC is credited to the Player ID within minutes",
        fields: &[PLAYER_ID],
        offers: &[
            offer("offer_60uc", "60 UC", "0.9900"),
            offer("offer_325uc", "325 UC", "4.9900"),
            offer("offer_660uc", "660 UC", "9.8900"),
            offer("offer_1800uc", "1800 UC", "24.7500"),
        ],
    },
    TopupDef {
        id: "free_fire_auto",
        name: "Free Fire",
        note: "",
        fields: &[PLAYER_ID],
        offers: &[
            offer("offer_100dm", "100 Diamonds", "0.9500"),
            offer("offer_310dm", "310 Diamonds", "2.8900"),
            offer("offer_520dm", "520 Diamonds", "4.7900"),
        ],
    },
    TopupDef {
        id: "mlbb_auto",
        name: "Mobile Legends: Bang Bang",
        note: "User ID and Zone ID are shown in the game profile",
        fields: MLBB_FIELDS,
        offers: &[
            offer("offer_86dm", "86 Diamonds", "1.5500"),
            offer("offer_172dm", "172 Diamonds", "3.0500"),
            offer("offer_257dm", "257 Diamonds", "4.5500"),
        ],
    },
    TopupDef {
        id: "genshin_impact_auto",
        name: "Genshin Impact",
        note: "",
        fields: GENSHIN_FIELDS,
        offers: &[
            offer("offer_60gc", "60 Genesis Crystals", "0.9900"),
            offer("offer_330gc", "300+30 Genesis Crystals", "4.9500"),
            offer("offer_welkin", "Blessing of the Welkin Moon", "4.9500"),
        ],
    },
];

/// Validation namespace: (validation id, name, fields, purchasable category it maps to).
const VALIDATE_GAMES: &[(&str, &str, &[FieldDef])] = &[
    ("pubg_mobile", "PUBG Mobile", &[PLAYER_ID]),
    ("free_fire", "Free Fire", &[PLAYER_ID]),
    ("mlbb", "Mobile Legends: Bang Bang", MLBB_FIELDS),
    ("genshin", "Genshin Impact", GENSHIN_FIELDS),
];

struct CardDef {
    id: &'static str,
    name: &'static str,
    price: &'static str,
    stock: u32,
    min: u32,
    max: u32,
}

const fn card(
    id: &'static str,
    name: &'static str,
    price: &'static str,
    stock: u32,
    min: u32,
    max: u32,
) -> CardDef {
    CardDef {
        id,
        name,
        price,
        stock,
        min,
        max,
    }
}

struct GiftDef {
    id: &'static str,
    name: &'static str,
    prefix: &'static str,
    cards: &'static [CardDef],
}

const GIFT_CARDS: &[GiftDef] = &[
    GiftDef {
        id: "gc_steam_usd",
        name: "Steam Wallet (USD)",
        prefix: "STM",
        cards: &[
            card("card_5usd", "Steam — $5", "5.2500", 50, 1, 10),
            card("card_10usd", "Steam — $10", "10.5000", 100, 1, 10),
            card("card_20usd", "Steam — $20", "20.9000", 3, 1, 3),
        ],
    },
    GiftDef {
        id: "gc_psn_us",
        name: "PlayStation Network (US)",
        prefix: "PSN",
        cards: &[
            card("card_10usd", "PSN — $10", "10.4000", 40, 1, 10),
            card("card_25usd", "PSN — $25", "25.8000", 20, 1, 5),
        ],
    },
    GiftDef {
        id: "gc_apple_us",
        name: "Apple Gift Card (US)",
        prefix: "APL",
        cards: &[
            card("card_10usd", "Apple — $10", "10.3000", 30, 1, 10),
            card("card_25usd", "Apple — $25", "25.6000", 12, 1, 5),
        ],
    },
    GiftDef {
        id: "gc_google_play_us",
        name: "Google Play (US)",
        prefix: "GPL",
        cards: &[
            card("card_10usd", "Google Play — $10", "10.3500", 0, 1, 10),
            card("card_25usd", "Google Play — $25", "25.7000", 9, 1, 5),
        ],
    },
    GiftDef {
        id: "gc_roblox",
        name: "Roblox",
        prefix: "RBX",
        cards: &[card("card_800rbx", "800 Robux", "10.2000", 25, 1, 10)],
    },
    GiftDef {
        id: "gc_xbox_us",
        name: "Xbox Gift Card (US)",
        prefix: "XBX",
        cards: &[card("card_15usd", "Xbox — $15", "15.4000", 15, 1, 5)],
    },
];

struct KeyDef {
    id: &'static str,
    name: &'static str,
    price: &'static str,
    stock: u32,
    max: u32,
}

const fn key(
    id: &'static str,
    name: &'static str,
    price: &'static str,
    stock: u32,
    max: u32,
) -> KeyDef {
    KeyDef {
        id,
        name,
        price,
        stock,
        max,
    }
}

struct GameKeyDef {
    id: &'static str,
    name: &'static str,
    region: &'static str,
    platform: &'static str,
    restricted: bool,
    keys: &'static [KeyDef],
}

const GAME_KEYS: &[GameKeyDef] = &[
    GameKeyDef {
        id: "gk_cyberpunk_2077",
        name: "Cyberpunk 2077",
        region: "GLOBAL",
        platform: "steam",
        restricted: false,
        keys: &[
            key("key_standard", "Standard Edition", "29.9900", 8, 5),
            key("key_ultimate", "Ultimate Edition", "49.9900", 2, 2),
        ],
    },
    GameKeyDef {
        id: "gk_elden_ring",
        name: "ELDEN RING",
        region: "GLOBAL",
        platform: "steam",
        restricted: false,
        keys: &[key("key_standard", "Standard Edition", "39.9900", 5, 5)],
    },
    GameKeyDef {
        id: "gk_gta5_premium",
        name: "Grand Theft Auto V: Premium Edition",
        region: "CIS",
        platform: "rockstar",
        restricted: true,
        keys: &[key("key_premium", "Premium Edition", "12.4900", 10, 5)],
    },
    GameKeyDef {
        id: "gk_forza_horizon_5",
        name: "Forza Horizon 5",
        region: "GLOBAL",
        platform: "xbox",
        restricted: false,
        keys: &[key("key_standard", "Standard Edition", "34.9900", 4, 4)],
    },
    GameKeyDef {
        id: "gk_stardew_valley",
        name: "Stardew Valley",
        region: "GLOBAL",
        platform: "steam",
        restricted: false,
        keys: &[key("key_standard", "Standard Edition", "9.4900", 20, 10)],
    },
];

const STEAM_RATES: &[(&str, &str)] = &[
    ("USD", "1"),
    ("RUB", "92.5"),
    ("UAH", "41.2"),
    ("KZT", "520"),
];

struct SteamGiftDef {
    appid: u64,
    name: &'static str,
    sub_id: u64,
    regions: &'static [(&'static str, &'static str)],
}

const STEAM_GIFTS: &[SteamGiftDef] = &[
    SteamGiftDef {
        appid: 730,
        name: "Counter-Strike 2 — Prime Status Upgrade",
        sub_id: 54029,
        regions: &[("CIS", "14.9900"), ("TR", "11.4900"), ("KZ", "13.9900")],
    },
    SteamGiftDef {
        appid: 1091500,
        name: "Cyberpunk 2077",
        sub_id: 398041,
        regions: &[("CIS", "24.9900"), ("TR", "19.9900")],
    },
    SteamGiftDef {
        appid: 1245620,
        name: "ELDEN RING",
        sub_id: 413940,
        regions: &[("CIS", "39.9900"), ("KZ", "37.5000")],
    },
    SteamGiftDef {
        appid: 292030,
        name: "The Witcher 3: Wild Hunt",
        sub_id: 124923,
        regions: &[("CIS", "6.9900"), ("TR", "4.9900"), ("KZ", "6.4900")],
    },
    SteamGiftDef {
        appid: 413150,
        name: "Stardew Valley",
        sub_id: 82307,
        regions: &[("CIS", "4.4900"), ("TR", "3.9900")],
    },
    SteamGiftDef {
        appid: 105600,
        name: "Terraria",
        sub_id: 13946,
        regions: &[("CIS", "2.9900"), ("KZ", "2.7900")],
    },
    SteamGiftDef {
        appid: 1145360,
        name: "Hades",
        sub_id: 353930,
        regions: &[("CIS", "9.9900"), ("TR", "8.4900")],
    },
];

const STAR_PRICE: &str = "0.0150000";
const PREMIUM_PLANS: &[(u32, &str)] = &[(3, "12.0000"), (6, "22.0000"), (12, "40.0000")];

struct ManualOfferDef {
    id: &'static str,
    name: &'static str,
    price: &'static str,
    minutes: u32,
}

const fn manual_offer(
    id: &'static str,
    name: &'static str,
    price: &'static str,
    minutes: u32,
) -> ManualOfferDef {
    ManualOfferDef {
        id,
        name,
        price,
        minutes,
    }
}

struct ManualDef {
    id: &'static str,
    name: &'static str,
    kind: &'static str,
    chat: bool,
    info: &'static str,
    required_fields: &'static [&'static str],
    offers: &'static [ManualOfferDef],
}

const MANUAL_SERVICES: &[ManualDef] = &[
    ManualDef {
        id: "ms_discord_nitro",
        name: "Discord Nitro (gift link)",
        kind: "manual_transfer",
        chat: true,
        info: "The operator sends the gift link in the order chat",
        required_fields: &[],
        offers: &[
            manual_offer("ms_nitro_1m", "Nitro — 1 month", "9.4900", 60),
            manual_offer("ms_nitro_12m", "Nitro — 12 months", "89.0000", 120),
        ],
    },
    ManualDef {
        id: "ms_spotify_premium",
        name: "Spotify Premium (your account)",
        kind: "manual_replenishment",
        chat: false,
        info: "Send the account e-mail in fields.email",
        required_fields: &["email"],
        offers: &[
            manual_offer(
                "ms_spotify_1m",
                "Premium Individual — 1 month",
                "5.9900",
                240,
            ),
            manual_offer(
                "ms_spotify_3m",
                "Premium Individual — 3 months",
                "16.4900",
                240,
            ),
        ],
    },
    ManualDef {
        id: "ms_chatgpt_plus",
        name: "ChatGPT Plus (your account)",
        kind: "manual_replenishment",
        chat: true,
        info: "",
        required_fields: &[],
        offers: &[manual_offer("ms_gpt_1m", "Plus — 1 month", "21.0000", 1440)],
    },
];

// ───────────────────────────── helpers ─────────────────────────────

fn dec(text: &str) -> Decimal {
    Decimal::from_str(text).unwrap_or_default()
}

fn money(d: Decimal) -> String {
    format!("{:.4}", d.round_dp(4))
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn ok(body: Value) -> Response {
    (StatusCode::OK, axum::Json(body)).into_response()
}

fn created(body: Value) -> Response {
    (StatusCode::CREATED, axum::Json(body)).into_response()
}

fn fail(status: StatusCode, message: &str, code: &str) -> Response {
    (
        status,
        axum::Json(json!({ "ok": false, "error": message, "code": code })),
    )
        .into_response()
}

fn bad(message: &str, code: &str) -> Response {
    fail(StatusCode::BAD_REQUEST, message, code)
}

fn parse_body(body: &Bytes) -> Result<Map<String, Value>, Rejection> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(Box::new(bad(
            "Request body must be a JSON object",
            "invalid_body",
        ))),
    }
}

fn str_of<'a>(body: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    body.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn u64_of(v: Option<&Value>) -> Option<u64> {
    match v? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn decimal_of(v: Option<&Value>) -> Option<Decimal> {
    match v? {
        Value::Number(n) => Decimal::from_str(&n.to_string()).ok(),
        Value::String(s) => Decimal::from_str(s.trim()).ok(),
        _ => None,
    }
}

fn fields_of(body: &Map<String, Value>) -> Result<HashMap<String, String>, Rejection> {
    match body.get("fields") {
        None | Some(Value::Null) => Ok(HashMap::new()),
        Some(Value::Object(m)) => Ok(m
            .iter()
            .filter_map(|(k, v)| match v {
                Value::String(s) => Some((k.clone(), s.trim().to_string())),
                Value::Number(n) => Some((k.clone(), n.to_string())),
                _ => None,
            })
            .collect()),
        Some(_) => Err(Box::new(bad("fields must be an object", "invalid_fields"))),
    }
}

/// The documented player-id rule: 5–12 digits, not starting with 0.
fn player_id_ok(id: &str) -> bool {
    (5..=12).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_digit()) && !id.starts_with('0')
}

fn ids_valid(fields: &HashMap<String, String>) -> bool {
    fields.iter().all(|(k, v)| match k.as_str() {
        "player_id" | "user_id" | "uid" => player_id_ok(v),
        "zone_id" => (1..=5).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_digit()),
        _ => true,
    })
}

fn check_fields(defs: &[FieldDef], fields: &HashMap<String, String>) -> Result<(), Rejection> {
    for def in defs {
        match fields.get(def.key) {
            None => {
                return Err(Box::new(bad(
                    &format!("Missing field: {}", def.key),
                    "invalid_fields",
                )));
            }
            Some(v) if v.is_empty() => {
                return Err(Box::new(bad(
                    &format!("Missing field: {}", def.key),
                    "invalid_fields",
                )));
            }
            Some(v)
                if !def.options.is_empty() && !def.options.iter().any(|(value, _)| value == v) =>
            {
                return Err(Box::new(bad(
                    &format!("Invalid value for {}", def.key),
                    "invalid_fields",
                )));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

fn fields_json(defs: &[FieldDef]) -> Value {
    Value::Array(
        defs.iter()
            .map(|f| {
                if f.options.is_empty() {
                    json!({ "key": f.key, "label": f.label, "type": "text" })
                } else {
                    let options: Vec<Value> = f
                        .options
                        .iter()
                        .map(|(v, l)| json!({ "value": v, "label": l }))
                        .collect();
                    json!({ "key": f.key, "label": f.label, "type": "select", "options": options })
                }
            })
            .collect(),
    )
}

fn random_code(prefix: &str, groups: usize) -> String {
    const CHARSET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::thread_rng();
    let mut out = String::from(prefix);
    for _ in 0..groups {
        if !out.is_empty() {
            out.push('-');
        }
        for _ in 0..4 {
            out.push(CHARSET[rng.gen_range(0..CHARSET.len())] as char);
        }
    }
    out
}

fn normalize_username(raw: &str) -> Option<String> {
    let name = raw.trim().trim_start_matches('@');
    let ok = (5..=32).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    ok.then(|| name.to_string())
}

fn camel_kind(kind: &str) -> bool {
    matches!(
        kind,
        "steam_topup" | "steam_gift" | "telegram_stars" | "telegram_premium"
    )
}

fn manual_kind(kind: &str) -> bool {
    kind.starts_with("manual_")
}

/// Full order JSON in the serializer of its kind.
fn order_json(o: &Order) -> Value {
    let mut m = o.details.clone();
    m.insert("id".into(), json!(o.id));
    m.insert("kind".into(), json!(o.kind));
    m.insert("status".into(), json!(o.status));
    let history: Vec<Value> = o
        .history
        .iter()
        .map(|(s, at)| json!({ "status": s, "at": ts(*at) }))
        .collect();
    if camel_kind(o.kind) {
        m.insert("chargedUsd".into(), json!(money(o.charged)));
        m.insert("statusHistory".into(), Value::Array(history));
        m.insert("createdAt".into(), json!(ts(o.created_at)));
        m.insert(
            "completedAt".into(),
            o.completed_at.map(|t| json!(ts(t))).unwrap_or(Value::Null),
        );
        m.insert("balanceTxId".into(), json!(o.debit_tx));
        m.insert(
            "refundTxId".into(),
            o.refund_tx
                .as_ref()
                .map(|t| json!(t))
                .unwrap_or(Value::Null),
        );
        if let Some(r) = &o.fail_reason {
            m.insert("failReason".into(), json!(r));
        }
    } else {
        if manual_kind(o.kind) {
            m.insert("price_usd".into(), json!(money(o.charged)));
        } else {
            m.insert("total_usd".into(), json!(money(o.charged)));
        }
        m.insert("status_history".into(), Value::Array(history));
        m.insert("created_at".into(), json!(ts(o.created_at)));
        m.insert(
            "completed_at".into(),
            o.completed_at.map(|t| json!(ts(t))).unwrap_or(Value::Null),
        );
        if let Some(r) = &o.fail_reason {
            m.insert("fail_reason".into(), json!(r));
        }
        match o.kind {
            "gift_card" => {
                m.insert("cards".into(), json!(o.cards));
            }
            "game_key" => {
                m.insert("keys".into(), json!(o.keys));
            }
            _ => {}
        }
    }
    Value::Object(m)
}

/// The create / replay answer: wrapped for every family but manual services (flat).
fn order_answer(o: &Order) -> Value {
    if manual_kind(o.kind) {
        let mut m = Map::new();
        m.insert("ok".into(), json!(true));
        m.insert("order_id".into(), json!(o.id));
        m.insert("kind".into(), json!(o.kind));
        m.insert("status".into(), json!(o.status));
        for (k, v) in &o.details {
            m.insert(k.clone(), v.clone());
        }
        m.insert("price_usd".into(), json!(money(o.charged)));
        Value::Object(m)
    } else {
        json!({ "ok": true, "order": order_json(o) })
    }
}

fn event_of(o: &Order, event: &str, previous: Option<&str>) -> (String, Value) {
    (
        event.to_string(),
        json!({
            "order_id": o.id,
            "kind": o.kind,
            "status": o.status,
            "previous_status": previous,
            "order": order_json(o),
        }),
    )
}

fn set_status(o: &mut Order, status: &str) -> (String, Value) {
    let previous = std::mem::replace(&mut o.status, status.to_string());
    o.history.push((status.to_string(), Utc::now()));
    event_of(o, "order.status_changed", Some(&previous))
}

/// Moves an order to its planned terminal status; credits refunds back.
fn finish(state: &mut FakeState, id: &str) -> Vec<(String, Value)> {
    let Some(order) = state.order_mut(id) else {
        return Vec::new();
    };
    if matches!(order.status.as_str(), "completed" | "failed" | "refund") {
        return Vec::new();
    }
    match order.outcome.clone() {
        Outcome::Complete => {
            match order.goods {
                Goods::Cards { quantity } => {
                    order.cards = (0..quantity)
                        .map(|_| random_code(order.code_prefix, 4))
                        .collect()
                }
                Goods::Keys { quantity } => {
                    order.keys = (0..quantity).map(|_| random_code("", 5)).collect()
                }
                Goods::None => {}
            }
            order.completed_at = Some(Utc::now());
            vec![set_status(order, "completed")]
        }
        Outcome::Fail(reason) => {
            order.fail_reason = Some(reason);
            vec![set_status(order, "failed")]
        }
        Outcome::Refund(reason) => {
            order.fail_reason = Some(reason);
            let (amount, stock) = (order.charged, order.stock.clone());
            let tx = state.push_tx("credit", amount, format!("Refund {id}"));
            if let Some((key, qty)) = stock {
                *state.stock.entry(key).or_insert(0) += qty;
            }
            match state.order_mut(id) {
                Some(order) => {
                    order.refund_tx = Some(tx);
                    vec![set_status(order, "refund")]
                }
                None => Vec::new(),
            }
        }
    }
}

// ───────────────────────────── order creation ─────────────────────────────

struct NewOrder {
    kind: &'static str,
    charge: Decimal,
    details: Map<String, Value>,
    stock: Option<(String, u32)>,
    goods: Goods,
    code_prefix: &'static str,
    instant: bool,
    outcome: Outcome,
    chat_enabled: bool,
}

impl NewOrder {
    fn new(kind: &'static str, charge: Decimal, details: Value) -> Self {
        Self {
            kind,
            charge,
            details: match details {
                Value::Object(m) => m,
                _ => Map::new(),
            },
            stock: None,
            goods: Goods::None,
            code_prefix: "",
            instant: false,
            outcome: Outcome::Complete,
            chat_enabled: false,
        }
    }
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, Rejection> {
    match headers.get("idempotency-key") {
        None => Ok(None),
        Some(v) => {
            let key = v
                .to_str()
                .map_err(|_| bad("Invalid Idempotency-Key", "invalid_idempotency_key"))?
                .trim();
            if key.is_empty() || key.len() > 255 {
                return Err(Box::new(bad(
                    "Idempotency-Key must be 1-255 characters",
                    "invalid_idempotency_key",
                )));
            }
            Ok(Some(key.to_string()))
        }
    }
}

/// Shared path of every order endpoint: idempotency, validation (`build`), balance, debit,
/// stock, planned outcome, timers and webhooks.
fn place_order(
    shared: &Arc<Shared>,
    family: &'static str,
    idem: Option<String>,
    build: impl FnOnce(&FakeState) -> Result<NewOrder, Rejection>,
) -> Response {
    let (answer, events, timer) = {
        let mut state = shared.state();
        if let Some(key) = &idem
            && let Some((fam, order_id)) = state.idempotency.get(key)
        {
            if *fam != family {
                return fail(
                    StatusCode::CONFLICT,
                    "Idempotency-Key was already used for a different product type",
                    "idempotency_conflict",
                );
            }
            return match state.order(order_id) {
                Some(o) => ok(order_answer(o)),
                None => fail(
                    StatusCode::CONFLICT,
                    "Idempotency-Key refers to an unknown order",
                    "idempotency_conflict",
                ),
            };
        }
        let new = match build(&state) {
            Ok(n) => n,
            Err(resp) => return *resp,
        };
        if let Some((key, qty)) = &new.stock
            && state.stock.get(key).copied().unwrap_or(0) < *qty
        {
            return bad("Out of stock", "out_of_stock");
        }
        if state.balance < new.charge {
            return bad("Insufficient balance", "insufficient_balance");
        }
        state.next_order += 1;
        let id = format!("ord-{}", state.next_order);
        let debit_tx = state.push_tx("debit", -new.charge, format!("Order {id}"));
        if let Some((key, qty)) = &new.stock
            && let Some(left) = state.stock.get_mut(key)
        {
            *left = left.saturating_sub(*qty);
        }
        let outcome = state.next_outcome.take().unwrap_or(new.outcome);
        let now = Utc::now();
        let manual = manual_kind(new.kind);
        let mut history = vec![("created".to_string(), now)];
        let status = if manual || new.instant {
            "created"
        } else {
            history.push(("processing".to_string(), now));
            "processing"
        };
        let order = Order {
            id: id.clone(),
            kind: new.kind,
            status: status.to_string(),
            created_at: now,
            completed_at: None,
            history,
            fail_reason: None,
            charged: new.charge,
            debit_tx,
            refund_tx: None,
            cards: Vec::new(),
            keys: Vec::new(),
            goods: new.goods,
            code_prefix: new.code_prefix,
            stock: new.stock,
            outcome,
            details: new.details,
            chat: if new.chat_enabled {
                vec![
                    json!({ "sender": "operator", "body": "Hello! Your order is in the queue.", "created_at": ts(now) }),
                ]
            } else {
                Vec::new()
            },
            chat_enabled: new.chat_enabled,
        };
        let mut events = vec![event_of(&order, "order.created", None)];
        let position = state.orders.len();
        state.index.insert(id.clone(), position);
        state.orders.push(order);
        if let Some(key) = idem {
            state.idempotency.insert(key, (family, id.clone()));
        }
        let delay = state.order_delay;
        let timer = if new.instant || delay.is_zero() {
            events.extend(finish(&mut state, &id));
            None
        } else {
            Some((id.clone(), delay, manual))
        };
        let answer = state.order(&id).map(order_answer).unwrap_or(Value::Null);
        (answer, events, timer)
    };
    shared.emit(events);
    if let Some((id, delay, manual)) = timer {
        let shared = Arc::clone(shared);
        tokio::spawn(async move {
            let mut rest = delay;
            if manual {
                tokio::time::sleep(delay / 2).await;
                rest = delay - delay / 2;
                let event = {
                    let mut state = shared.state();
                    state
                        .order_mut(&id)
                        .filter(|o| o.status == "created")
                        .map(|o| set_status(o, "processing"))
                };
                shared.emit(event.into_iter().collect());
            }
            tokio::time::sleep(rest).await;
            let events = finish(&mut shared.state(), &id);
            shared.emit(events);
        });
    }
    created(answer)
}

// ───────────────────────────── middleware: faults, auth, 403, rate limits ─────────────────

fn rate_category(method: &Method, path: &str) -> (&'static str, u32) {
    let is_order_write = *method == Method::POST
        && (path.ends_with("/order") || path.ends_with("/buy"))
        && !path.starts_with("/manual-services/orders/");
    if is_order_write {
        ("create_order", 60)
    } else if path == "/orders" || path.starts_with("/orders/") {
        ("order_status", 120)
    } else if ["/me", "/balance", "/subscription", "/transactions"]
        .iter()
        .any(|p| path == *p || path.starts_with(&format!("{p}/")))
    {
        ("account", 30)
    } else if path.starts_with("/payments") && *method == Method::POST {
        ("payment", 15)
    } else if *method == Method::GET || path == "/topups/validate-id" {
        ("catalog", 120)
    } else {
        ("other", 120)
    }
}

fn service_of(path: &str) -> Option<&'static str> {
    [
        ("/topups", "topups"),
        ("/giftcards", "giftcards"),
        ("/gamekeys", "gamekeys"),
        ("/steam-topup", "steam_topup"),
        ("/steam-gifts", "steam_gifts"),
        ("/telegram", "telegram"),
        ("/manual-services", "manual_services"),
    ]
    .iter()
    .find(|(prefix, _)| path == *prefix || path.starts_with(&format!("{prefix}/")))
    .map(|(_, s)| *s)
}

fn authorized(shared: &Shared, headers: &HeaderMap) -> bool {
    if let Some(key) = headers.get("x-api-key").and_then(|v| v.to_str().ok())
        && key.trim() == shared.api_key
    {
        return true;
    }
    if let Some(auth) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        && let Some((scheme, token)) = auth.trim().split_once(' ')
        && scheme.eq_ignore_ascii_case("bearer")
        && token.trim() == shared.api_key
    {
        return true;
    }
    false
}

fn retry_after_value(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        d.as_secs().to_string()
    } else {
        format!("{:.3}", d.as_secs_f64())
    }
}

fn too_many(retry_after: Duration) -> Response {
    let mut resp = fail(
        StatusCode::TOO_MANY_REQUESTS,
        "Too many requests",
        "rate_limited",
    );
    if let Ok(v) = HeaderValue::from_str(&retry_after_value(retry_after)) {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

async fn gate(State(shared): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let full = req.uri().path().to_string();
    let Some(path) = full
        .strip_prefix("/api/v2")
        .map(|p| if p.is_empty() { "/" } else { p })
        .map(str::to_string)
    else {
        return fail(StatusCode::NOT_FOUND, "Route not found", "not_found");
    };
    *shared
        .state()
        .requests
        .entry(format!("{method} {path}"))
        .or_insert(0) += 1;

    let fault = {
        let mut faults = lock(&shared.faults);
        let found = faults
            .iter_mut()
            .find(|r| r.remaining > 0 && r.path.as_deref().is_none_or(|p| p == path));
        let fault = found.map(|r| {
            r.remaining -= 1;
            r.fault.clone()
        });
        faults.retain(|r| r.remaining > 0);
        fault
    };
    match &fault {
        Some(Fault::RateLimited { retry_after }) => return too_many(*retry_after),
        Some(Fault::ServerError {
            status,
            after_processing: false,
        }) => {
            let code = StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return fail(code, "Internal server error", "internal_error");
        }
        Some(Fault::Hang {
            delay,
            after_processing: false,
        }) => {
            tokio::time::sleep(*delay).await;
            return fail(
                StatusCode::GATEWAY_TIMEOUT,
                "Upstream timeout",
                "upstream_timeout",
            );
        }
        _ => {}
    }

    let public = path == "/steam-topup/public-rates" || path.starts_with("/website/");
    if !public && !authorized(&shared, req.headers()) {
        return fail(
            StatusCode::UNAUTHORIZED,
            "Missing or invalid API key",
            "unauthorized",
        );
    }
    if let Some(service) = service_of(&path)
        && shared.state().disabled.contains(service)
    {
        return fail(
            StatusCode::FORBIDDEN,
            "This product is not enabled for your API key",
            "service_disabled",
        );
    }
    if shared.enforce_rate_limits && !public {
        let (category, max) = rate_category(&method, &path);
        let window = Duration::from_secs(60);
        let now = Instant::now();
        let mut state = shared.state();
        let q = state.windows.entry(category).or_default();
        while q.front().is_some_and(|t| now.duration_since(*t) >= window) {
            q.pop_front();
        }
        if q.len() >= max as usize {
            let wait = q
                .front()
                .map(|t| (*t + window).saturating_duration_since(now))
                .unwrap_or(window);
            *state.rejected.entry(category).or_insert(0) += 1;
            drop(state);
            return too_many(Duration::from_secs(wait.as_secs().max(1)));
        }
        q.push_back(now);
        state
            .granted
            .entry(category)
            .or_default()
            .push((now, path.clone()));
    }

    let response = next.run(req).await;
    match fault {
        Some(Fault::ServerError {
            status,
            after_processing: true,
        }) => {
            let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            fail(code, "Internal server error", "internal_error")
        }
        Some(Fault::Hang {
            delay,
            after_processing: true,
        }) => {
            tokio::time::sleep(delay).await;
            response
        }
        Some(Fault::MalformedJson) => Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from("{\"ok\": true, \"order\": {\"id\": \"ord-"))
            .unwrap_or_else(|_| {
                fail(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Internal server error",
                    "internal_error",
                )
            }),
        _ => response,
    }
}

// ───────────────────────────── routes ─────────────────────────────

type Shr = State<Arc<Shared>>;
/// An early error answer; boxed because `Response` is large.
type Rejection = Box<Response>;
type Q = Query<HashMap<String, String>>;

fn router(shared: Arc<Shared>) -> Router {
    let api = Router::new()
        .route("/me", get(me))
        .route("/balance", get(balance))
        .route("/subscription", get(subscription))
        .route("/transactions", get(transactions))
        .route("/transactions/{id}", get(transaction))
        .route("/orders", get(orders))
        .route("/orders/{id}", get(order))
        .route("/topups", get(topups))
        .route("/topups/offers", get(topup_offers))
        .route("/topups/validate-id", get(validate_games).post(validate_id))
        .route("/topups/order", post(topup_order))
        .route("/giftcards", get(giftcards))
        .route("/giftcards/cards", get(giftcard_cards))
        .route("/giftcards/order", post(giftcard_order))
        .route("/gamekeys", get(gamekeys))
        .route("/gamekeys/keys", get(gamekey_keys))
        .route("/gamekeys/region-restriction", get(region_restriction))
        .route("/gamekeys/order", post(gamekey_order))
        .route("/steam-topup/rates", get(steam_rates))
        .route("/steam-topup/public-rates", get(steam_rates))
        .route("/steam-topup/check-login", post(check_login))
        .route("/steam-topup/order", post(steam_topup_order))
        .route("/steam-gifts/games", get(steam_gift_games))
        .route("/steam-gifts/games/{appid}", get(steam_gift_game))
        .route("/steam-gifts/order", post(steam_gift_order))
        .route("/telegram/stars", get(stars_quote))
        .route("/telegram/premium", get(premium_plans))
        .route("/telegram/stars/buy", post(stars_buy))
        .route("/telegram/premium/buy", post(premium_buy))
        .route("/manual-services", get(manual_list))
        .route("/manual-services/order", post(manual_order))
        .route("/manual-services/{id}/offers", get(manual_offers))
        .route(
            "/manual-services/orders/{id}/chat",
            get(chat_read).post(chat_post),
        )
        .route("/website/subscription-prices", get(website_prices));
    Router::new()
        .nest("/api/v2", api)
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(Arc::clone(&shared), gate))
        .with_state(shared)
}

async fn not_found() -> Response {
    fail(StatusCode::NOT_FOUND, "Route not found", "not_found")
}

// ── account ──

async fn me(State(s): Shr) -> Response {
    let state = s.state();
    let spent: Decimal = state
        .orders
        .iter()
        .filter(|o| o.refund_tx.is_none())
        .map(|o| o.charged)
        .sum();
    let now = Utc::now();
    ok(json!({
        "ok": true,
        "login": "sandbox",
        "email": "sandbox@kiosk.invalid",
        "plan": "gold",
        "planExpiresAt": ts(now + chrono::Duration::days(30)),
        "planAutoRenew": true,
        "subscriptionActive": true,
        "summary": { "totalSpent": money(spent), "totalOrders": state.orders.len() },
        "createdAt": "2025-01-10T12:00:00.000Z",
        "lastActiveAt": ts(now),
    }))
}

async fn balance(State(s): Shr) -> Response {
    let balance = s.state().balance;
    ok(json!({ "ok": true, "balance": money(balance), "currency": "USD" }))
}

async fn subscription() -> Response {
    ok(json!({
        "ok": true, "plan": "gold", "planExpiresAt": ts(Utc::now() + chrono::Duration::days(30)),
        "planAutoRenew": true, "subscriptionActive": true, "currency": "USD"
    }))
}

async fn website_prices() -> Response {
    ok(json!({ "ok": true, "prices": { "bronze": 29, "silver": 49, "gold": 99 } }))
}

fn tx_json(t: &Tx) -> Value {
    json!({
        "id": t.id, "type": t.kind, "status": "completed", "amount": money(t.amount),
        "balanceBefore": money(t.before), "balanceAfter": money(t.after),
        "note": t.note, "createdAt": ts(t.at),
    })
}

fn page_params(q: &HashMap<String, String>) -> Result<(usize, usize), Rejection> {
    let page = q
        .get("page")
        .map(|p| p.parse::<usize>())
        .transpose()
        .map_err(|_| bad("page must be a positive integer", "invalid_page"))?;
    let limit = q
        .get("limit")
        .map(|p| p.parse::<usize>())
        .transpose()
        .map_err(|_| bad("limit must be a positive integer", "invalid_limit"))?;
    Ok((page.unwrap_or(1).max(1), limit.unwrap_or(20).clamp(1, 100)))
}

async fn transactions(State(s): Shr, Query(q): Q) -> Response {
    let (page, limit) = match page_params(&q) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let state = s.state();
    let items: Vec<Value> = state
        .transactions
        .iter()
        .rev()
        .skip((page - 1) * limit)
        .take(limit)
        .map(tx_json)
        .collect();
    ok(
        json!({ "ok": true, "items": items, "total": state.transactions.len(), "page": page, "limit": limit }),
    )
}

async fn transaction(State(s): Shr, Path(id): Path<String>) -> Response {
    let state = s.state();
    match state.transactions.iter().find(|t| t.id == id) {
        Some(t) => ok(json!({ "ok": true, "transaction": tx_json(t) })),
        None => fail(StatusCode::NOT_FOUND, "Transaction not found", "not_found"),
    }
}

// ── orders ──

async fn orders(State(s): Shr, Query(q): Q) -> Response {
    let (page, limit) = match page_params(&q) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let state = s.state();
    let items: Vec<Value> = state
        .orders
        .iter()
        .rev()
        .skip((page - 1) * limit)
        .take(limit)
        .map(|o| json!({ "id": o.id, "kind": o.kind, "status": o.status, "created_at": ts(o.created_at) }))
        .collect();
    ok(
        json!({ "ok": true, "items": items, "total": state.orders.len(), "page": page, "limit": limit }),
    )
}

async fn order(State(s): Shr, Path(id): Path<String>) -> Response {
    let state = s.state();
    match state.order(&id) {
        Some(o) => ok(json!({ "ok": true, "order": order_json(o) })),
        None => fail(StatusCode::NOT_FOUND, "Order not found", "not_found"),
    }
}

// ── cursor listings ──

fn cursor_page(
    shared: &Shared,
    q: &HashMap<String, String>,
    kind: &str,
    items: Vec<Value>,
) -> Response {
    let limit = match q.get("limit").map(|l| l.parse::<usize>()) {
        None => 50,
        Some(Ok(l)) if l >= 1 => l,
        Some(_) => return bad("limit must be a positive integer", "invalid_limit"),
    }
    .min(shared.max_page_size as usize);
    let offset = match q.get("cursor").filter(|c| !c.is_empty()) {
        None => 0,
        Some(c) => match c.strip_prefix("cur_").and_then(|n| n.parse::<usize>().ok()) {
            Some(n) if n <= items.len() => n,
            _ => return bad("Invalid cursor", "invalid_cursor"),
        },
    };
    let total = items.len();
    let page: Vec<Value> = items.into_iter().skip(offset).take(limit).collect();
    let next = offset + page.len();
    let has_more = next < total;
    ok(json!({
        "ok": true,
        "kind": kind,
        "items": page,
        "meta": { "total": total, "limit": limit, "next_cursor": if has_more { json!(format!("cur_{next}")) } else { Value::Null }, "has_more": has_more },
    }))
}

// ── top-ups ──

async fn topups(State(s): Shr, Query(q): Q) -> Response {
    let items = TOPUPS
        .iter()
        .map(|t| json!({ "category_id": t.id, "name": t.name, "note": t.note }))
        .collect();
    cursor_page(&s, &q, "topup", items)
}

async fn topup_offers(Query(q): Q) -> Response {
    let Some(id) = q.get("category_id") else {
        return bad("category_id is required", "invalid_category");
    };
    match TOPUPS.iter().find(|t| t.id == id) {
        Some(t) => {
            let offers: Vec<Value> = t
                .offers
                .iter()
                .map(|o| json!({ "offer_id": o.id, "name": o.name, "price_usd": o.price }))
                .collect();
            ok(
                json!({ "ok": true, "kind": "topup", "category_id": t.id, "name": t.name, "offers": offers, "fields": fields_json(t.fields) }),
            )
        }
        None => fail(StatusCode::NOT_FOUND, "Unknown category_id", "not_found"),
    }
}

async fn validate_games() -> Response {
    let items: Vec<Value> = VALIDATE_GAMES
        .iter()
        .map(|(id, name, fields)| json!({ "category_id": id, "name": name, "fields": fields_json(fields) }))
        .collect();
    ok(json!({ "ok": true, "kind": "topup", "items": items }))
}

const NICKS: &[&str] = &[
    "ShadowFox",
    "NeonTiger",
    "SilentWolf",
    "LuckyPanda",
    "IronHawk",
    "PixelQueen",
    "NightOwl",
];

async fn validate_id(body: Bytes) -> Response {
    let body = match parse_body(&body) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let Some(category) = str_of(&body, "category_id") else {
        return bad("category_id is required", "invalid_category");
    };
    let Some((id, _, defs)) = VALIDATE_GAMES.iter().find(|(id, _, _)| *id == category) else {
        return bad(
            "This category_id does not support Player ID validation",
            "validation_not_supported",
        );
    };
    let fields = match fields_of(&body) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    if let Err(r) = check_fields(defs, &fields) {
        return *r;
    }
    if !ids_valid(&fields) {
        return ok(json!({ "ok": true, "category_id": id, "valid": false, "player_name": null }));
    }
    let main_id = fields
        .get("player_id")
        .or_else(|| fields.get("user_id"))
        .or_else(|| fields.get("uid"))
        .cloned()
        .unwrap_or_default();
    let digit_sum: usize = main_id.bytes().map(|b| usize::from(b - b'0')).sum();
    let tail = &main_id[main_id.len().saturating_sub(3)..];
    let nick = format!("{}{}", NICKS[digit_sum % NICKS.len()], tail);
    let region = match *id {
        "free_fire" => Some(["BR", "IND", "SG", "ME", "US"][digit_sum % 5]),
        "mlbb" => Some(
            ["ID", "PH", "MY", "RU", "BR"][fields.get("zone_id").map(|z| z.len()).unwrap_or(0) % 5],
        ),
        "genshin" => match main_id.as_bytes().first() {
            Some(b'6') => Some("America"),
            Some(b'7') => Some("Europe"),
            Some(b'8') => Some("Asia"),
            _ => Some("TW, HK, MO"),
        },
        _ => None,
    };
    let mut answer = json!({ "ok": true, "category_id": id, "valid": true, "player_name": nick });
    if let (Some(region), Some(obj)) = (region, answer.as_object_mut()) {
        obj.insert("region".into(), json!(region));
    }
    ok(answer)
}

async fn topup_order(State(s): Shr, headers: HeaderMap, body: Bytes) -> Response {
    let idem = match idempotency_key(&headers) {
        Ok(k) => k,
        Err(r) => return *r,
    };
    place_order(&s, "topups", idem, |_| {
        let body = parse_body(&body)?;
        let category = str_of(&body, "category_id")
            .ok_or_else(|| bad("category_id is required", "invalid_category"))?;
        let Some(cat) = TOPUPS.iter().find(|t| t.id == category) else {
            let hint = if VALIDATE_GAMES.iter().any(|(id, _, _)| *id == category) {
                "This category_id belongs to the validate-id list; use a category_id from GET /topups"
            } else {
                "Unknown category_id"
            };
            return Err(Box::new(bad(hint, "invalid_category")));
        };
        let offer_id = str_of(&body, "offer_id")
            .ok_or_else(|| bad("offer_id is required", "invalid_offer"))?;
        let offer = cat
            .offers
            .iter()
            .find(|o| o.id == offer_id)
            .ok_or_else(|| bad("Unknown offer_id for this category", "invalid_offer"))?;
        let fields = fields_of(&body)?;
        check_fields(cat.fields, &fields)?;
        let mut new = NewOrder::new(
            "topup",
            dec(offer.price),
            json!({
                "title": format!("{} — {}", cat.name, offer.name),
                "category_id": cat.id, "category_name": cat.name,
                "offer_id": offer.id, "offer_name": offer.name,
                "price_usd": offer.price, "fields": fields,
            }),
        );
        if !ids_valid(&fields) {
            new.outcome = Outcome::Refund("Player ID not found".into());
        }
        Ok(new)
    })
}

// ── gift cards ──

async fn giftcards(State(s): Shr, Query(q): Q) -> Response {
    let items = GIFT_CARDS
        .iter()
        .map(|g| json!({ "category_id": g.id, "name": g.name }))
        .collect();
    cursor_page(&s, &q, "gift_card", items)
}

async fn giftcard_cards(State(s): Shr, Query(q): Q) -> Response {
    let Some(id) = q.get("category_id") else {
        return bad("category_id is required", "invalid_category");
    };
    let Some(cat) = GIFT_CARDS.iter().find(|g| g.id == id) else {
        return fail(StatusCode::NOT_FOUND, "Unknown category_id", "not_found");
    };
    let state = s.state();
    let offers: Vec<Value> = cat
        .cards
        .iter()
        .filter(|c| q.get("card_id").is_none_or(|want| want == c.id))
        .map(|c| {
            json!({
                "card_id": c.id, "name": c.name, "price_usd": c.price,
                "stock": state.stock.get(&stock_key("gc", cat.id, c.id)).copied().unwrap_or(0),
                "min_order_quantity": c.min, "max_order_quantity": c.max,
            })
        })
        .collect();
    ok(
        json!({ "ok": true, "kind": "gift_card", "category_id": cat.id, "name": cat.name, "offers": offers }),
    )
}

fn quantity_of(body: &Map<String, Value>, min: u32, max: u32) -> Result<u32, Rejection> {
    let q = match body.get("quantity") {
        None | Some(Value::Null) => 1,
        v => u64_of(v).ok_or_else(|| bad("quantity must be an integer", "invalid_quantity"))?,
    };
    let hi = max.min(100);
    if q < u64::from(min) || q > u64::from(hi) {
        return Err(Box::new(bad(
            &format!("quantity must be between {min} and {hi}"),
            "invalid_quantity",
        )));
    }
    Ok(q as u32)
}

async fn giftcard_order(State(s): Shr, headers: HeaderMap, body: Bytes) -> Response {
    let idem = match idempotency_key(&headers) {
        Ok(k) => k,
        Err(r) => return *r,
    };
    place_order(&s, "giftcards", idem, |_| {
        let body = parse_body(&body)?;
        let category = str_of(&body, "category_id")
            .ok_or_else(|| bad("category_id is required", "invalid_category"))?;
        let card_id =
            str_of(&body, "card_id").ok_or_else(|| bad("card_id is required", "invalid_card"))?;
        let cat = GIFT_CARDS
            .iter()
            .find(|g| g.id == category)
            .ok_or_else(|| bad("Unknown category_id", "invalid_category"))?;
        let card = cat
            .cards
            .iter()
            .find(|c| c.id == card_id)
            .ok_or_else(|| bad("Unknown card_id for this category", "invalid_card"))?;
        let quantity = quantity_of(&body, card.min, card.max)?;
        let unit = dec(card.price);
        let mut new = NewOrder::new(
            "gift_card",
            unit * Decimal::from(quantity),
            json!({
                "title": card.name, "quantity": quantity, "category_id": cat.id, "card_id": card.id,
                "category_name": cat.name, "price_usd_per_unit": card.price,
            }),
        );
        new.stock = Some((stock_key("gc", cat.id, card.id), quantity));
        new.goods = Goods::Cards { quantity };
        new.code_prefix = cat.prefix;
        new.instant = true;
        Ok(new)
    })
}

// ── game keys ──

async fn gamekeys(State(s): Shr, Query(q): Q) -> Response {
    let items = GAME_KEYS
        .iter()
        .map(|g| json!({ "name": g.name, "game_id": g.id, "region": g.region, "platform": g.platform, "region_restriction": g.restricted }))
        .collect();
    cursor_page(&s, &q, "game_key", items)
}

async fn gamekey_keys(State(s): Shr, Query(q): Q) -> Response {
    let Some(id) = q.get("game_id") else {
        return bad("game_id is required", "invalid_game");
    };
    let Some(game) = GAME_KEYS.iter().find(|g| g.id == id) else {
        return fail(StatusCode::NOT_FOUND, "Unknown game_id", "not_found");
    };
    let state = s.state();
    let keys: Vec<Value> = game
        .keys
        .iter()
        .map(|k| {
            json!({
                "key_id": k.id, "name": k.name, "price_usd": k.price,
                "stock": state.stock.get(&stock_key("gk", game.id, k.id)).copied().unwrap_or(0),
                "min_order_quantity": 1, "max_order_quantity": k.max,
            })
        })
        .collect();
    ok(json!({
        "ok": true, "kind": "game_key", "game_id": game.id, "GameName": game.name, "region": game.region,
        "platform": game.platform, "region_restriction": game.restricted, "keys": keys,
    }))
}

async fn region_restriction(Query(q): Q) -> Response {
    let Some(id) = q.get("game_id") else {
        return bad("game_id is required", "invalid_game");
    };
    let Some(game) = GAME_KEYS.iter().find(|g| g.id == id) else {
        return fail(StatusCode::NOT_FOUND, "Unknown game_id", "not_found");
    };
    if game.restricted {
        ok(json!({
            "ok": true, "kind": "game_key", "game_id": game.id, "region_type": game.region, "has_availability": true,
            "available": [
                { "code": "RU", "name": "Russia" }, { "code": "KZ", "name": "Kazakhstan" },
                { "code": "BY", "name": "Belarus" }, { "code": "AM", "name": "Armenia" }
            ],
            "unavailable": [{ "code": "US", "name": "United States" }, { "code": "DE", "name": "Germany" }],
        }))
    } else {
        ok(json!({
            "ok": true, "kind": "game_key", "game_id": game.id, "region_type": game.region,
            "has_availability": false, "available": [], "unavailable": [],
        }))
    }
}

async fn gamekey_order(State(s): Shr, headers: HeaderMap, body: Bytes) -> Response {
    let idem = match idempotency_key(&headers) {
        Ok(k) => k,
        Err(r) => return *r,
    };
    place_order(&s, "gamekeys", idem, |_| {
        let body = parse_body(&body)?;
        let game_id =
            str_of(&body, "game_id").ok_or_else(|| bad("game_id is required", "invalid_game"))?;
        let key_id =
            str_of(&body, "key_id").ok_or_else(|| bad("key_id is required", "invalid_key"))?;
        let game = GAME_KEYS
            .iter()
            .find(|g| g.id == game_id)
            .ok_or_else(|| bad("Unknown game_id", "invalid_game"))?;
        let key = game
            .keys
            .iter()
            .find(|k| k.id == key_id)
            .ok_or_else(|| bad("Unknown key_id for this game_id", "invalid_key"))?;
        let quantity = quantity_of(&body, 1, key.max)?;
        let mut new = NewOrder::new(
            "game_key",
            dec(key.price) * Decimal::from(quantity),
            json!({
                "title": format!("{} — {}", game.name, key.name), "quantity": quantity,
                "game_id": game.id, "key_id": key.id, "price_usd_per_key": key.price,
            }),
        );
        new.stock = Some((stock_key("gk", game.id, key.id), quantity));
        new.goods = Goods::Keys { quantity };
        new.instant = true;
        Ok(new)
    })
}

// ── Steam ──

async fn steam_rates() -> Response {
    let mut rates = Map::new();
    for (cur, rate) in STEAM_RATES {
        let number: Value = serde_json::from_str(rate).unwrap_or(Value::Null);
        rates.insert((*cur).to_string(), number);
    }
    ok(json!({ "ok": true, "base": "USD", "rates": rates, "updated_at": ts(Utc::now()) }))
}

fn steam_login_ok(login: &str) -> bool {
    (2..=64).contains(&login.len())
        && login
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

fn refillable(login: &str) -> bool {
    !login.to_ascii_lowercase().starts_with("norefill")
}

async fn check_login(body: Bytes) -> Response {
    let body = match parse_body(&body) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    match str_of(&body, "steamLogin") {
        Some(login) if steam_login_ok(login) => {
            ok(json!({ "ok": true, "can_refill": refillable(login) }))
        }
        _ => bad("steamLogin is required", "invalid_steam_login"),
    }
}

async fn steam_topup_order(State(s): Shr, headers: HeaderMap, body: Bytes) -> Response {
    let idem = match idempotency_key(&headers) {
        Ok(k) => k,
        Err(r) => return *r,
    };
    place_order(&s, "steam_topup", idem, |_| {
        let body = parse_body(&body)?;
        let login = str_of(&body, "steamLogin")
            .filter(|l| steam_login_ok(l))
            .ok_or_else(|| bad("steamLogin is required", "invalid_steam_login"))?;
        if !refillable(login) {
            return Err(Box::new(bad(
                "This Steam account cannot be refilled",
                "steam_login_not_refillable",
            )));
        }
        let currency = str_of(&body, "currency")
            .unwrap_or("USD")
            .to_ascii_uppercase();
        let rate = STEAM_RATES
            .iter()
            .find(|(c, _)| *c == currency)
            .map(|(_, r)| dec(r))
            .ok_or_else(|| {
                bad(
                    "currency must be one of USD, RUB, UAH, KZT",
                    "invalid_currency",
                )
            })?;
        let amount = decimal_of(body.get("amount"))
            .filter(|a| *a > Decimal::ZERO)
            .ok_or_else(|| bad("amount must be a positive number", "invalid_amount"))?;
        let max_dp = if currency == "USD" { 2 } else { 4 };
        if amount.normalize().scale() > max_dp {
            return Err(Box::new(bad(
                &format!("amount allows at most {max_dp} decimals for {currency}"),
                "invalid_amount",
            )));
        }
        let usd = (amount / rate).round_dp(4);
        if usd < Decimal::new(1, 0) || usd > Decimal::new(500, 0) {
            return Err(Box::new(bad(
                "amount must be between 1 and 500 USD",
                "invalid_amount",
            )));
        }
        Ok(NewOrder::new(
            "steam_topup",
            usd,
            json!({
                "steamLogin": login, "currency": currency, "amountLocal": amount.normalize().to_string(), "amountUsd": money(usd),
            }),
        ))
    })
}

async fn steam_gift_games(Query(q): Q) -> Response {
    let limit = q
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(usize::MAX);
    let games: Vec<Value> = STEAM_GIFTS
        .iter()
        .take(limit)
        .map(|g| json!({ "name": g.name, "appid": g.appid }))
        .collect();
    let returned = games.len();
    ok(
        json!({ "ok": true, "games": games, "meta": { "total": STEAM_GIFTS.len(), "returned": returned, "truncated": returned < STEAM_GIFTS.len() } }),
    )
}

async fn steam_gift_game(Path(appid): Path<String>) -> Response {
    let Some(game) = appid
        .parse::<u64>()
        .ok()
        .and_then(|a| STEAM_GIFTS.iter().find(|g| g.appid == a))
    else {
        return fail(StatusCode::NOT_FOUND, "Unknown appid", "not_found");
    };
    let regions: Vec<Value> = game
        .regions
        .iter()
        .map(|(r, p)| json!({ "region": r, "price": p }))
        .collect();
    ok(
        json!({ "ok": true, "appid": game.appid, "offers": [{ "sub_id": game.sub_id, "name": game.name, "regions": regions }] }),
    )
}

async fn steam_gift_order(State(s): Shr, headers: HeaderMap, body: Bytes) -> Response {
    let idem = match idempotency_key(&headers) {
        Ok(k) => k,
        Err(r) => return *r,
    };
    place_order(&s, "steam_gifts", idem, |_| {
        let body = parse_body(&body)?;
        let invite = str_of(&body, "invite_url")
            .ok_or_else(|| bad("invite_url is required", "invalid_invite_url"))?;
        if !(invite.starts_with("https://s.team/p/")
            || invite.starts_with("https://steamcommunity.com/"))
        {
            return Err(Box::new(bad(
                "invite_url must be a Steam friend-invite link",
                "invalid_invite_url",
            )));
        }
        let app_id = u64_of(body.get("app_id"))
            .ok_or_else(|| bad("app_id is required", "invalid_app_id"))?;
        let sub_id = u64_of(body.get("sub_id"))
            .ok_or_else(|| bad("sub_id is required", "invalid_sub_id"))?;
        let region =
            str_of(&body, "region").ok_or_else(|| bad("region is required", "invalid_region"))?;
        let game = STEAM_GIFTS
            .iter()
            .find(|g| g.appid == app_id && g.sub_id == sub_id)
            .ok_or_else(|| bad("Unknown app_id / sub_id pair", "invalid_sub_id"))?;
        let price = game
            .regions
            .iter()
            .find(|(r, _)| *r == region)
            .map(|(_, p)| dec(p))
            .ok_or_else(|| bad("This package is not sold in that region", "invalid_region"))?;
        Ok(NewOrder::new(
            "steam_gift",
            price,
            json!({ "title": game.name, "inviteUrl": invite, "appId": app_id, "subId": sub_id, "region": region }),
        ))
    })
}

// ── Telegram ──

async fn stars_quote() -> Response {
    ok(
        json!({ "ok": true, "kind": "telegram_stars", "price_per_star": STAR_PRICE, "min_amount": 50, "max_amount": 10000, "rates_updated_at": ts(Utc::now()) }),
    )
}

async fn premium_plans() -> Response {
    let plans: Vec<Value> = PREMIUM_PLANS
        .iter()
        .map(|(m, p)| json!({ "months": m, "price_usd": p }))
        .collect();
    ok(
        json!({ "ok": true, "kind": "telegram_premium", "plans": plans, "rates_updated_at": ts(Utc::now()) }),
    )
}

async fn stars_buy(State(s): Shr, body: Bytes) -> Response {
    place_order(&s, "telegram", None, |_| {
        let body = parse_body(&body)?;
        let user = str_of(&body, "telegram_username")
            .and_then(normalize_username)
            .ok_or_else(|| bad("Invalid Telegram username", "invalid_username"))?;
        let quantity = u64_of(body.get("quantity"))
            .filter(|q| (50..=10_000).contains(q))
            .ok_or_else(|| bad("quantity must be between 50 and 10000", "invalid_quantity"))?;
        Ok(NewOrder::new(
            "telegram_stars",
            (dec(STAR_PRICE) * Decimal::from(quantity)).round_dp(4),
            json!({ "title": format!("{quantity} Telegram Stars"), "telegramUsername": format!("@{user}"), "quantity": quantity }),
        ))
    })
}

async fn premium_buy(State(s): Shr, body: Bytes) -> Response {
    place_order(&s, "telegram", None, |_| {
        let body = parse_body(&body)?;
        let user = str_of(&body, "telegram_username")
            .and_then(normalize_username)
            .ok_or_else(|| bad("Invalid Telegram username", "invalid_username"))?;
        let months = u64_of(body.get("months")).unwrap_or(0);
        let price = PREMIUM_PLANS
            .iter()
            .find(|(m, _)| u64::from(*m) == months)
            .map(|(_, p)| dec(p))
            .ok_or_else(|| bad("months must be 3, 6 or 12", "invalid_months"))?;
        Ok(NewOrder::new(
            "telegram_premium",
            price,
            json!({ "title": format!("Telegram Premium — {months} months"), "telegramUsername": format!("@{user}"), "months": months }),
        ))
    })
}

// ── manual services ──

fn manual_json(m: &ManualDef) -> Value {
    json!({ "id": m.id, "name": m.name, "kind": m.kind, "chat": m.chat, "info": m.info })
}

async fn manual_list() -> Response {
    let items: Vec<Value> = MANUAL_SERVICES.iter().map(manual_json).collect();
    ok(json!({ "ok": true, "items": items }))
}

async fn manual_offers(Path(id): Path<String>) -> Response {
    let Some(m) = MANUAL_SERVICES.iter().find(|m| m.id == id) else {
        return fail(StatusCode::NOT_FOUND, "Unknown manual service", "not_found");
    };
    let items: Vec<Value> = m
        .offers
        .iter()
        .map(|o| json!({ "id": o.id, "name": o.name, "price_usd": o.price, "delivery_minutes": o.minutes }))
        .collect();
    ok(json!({
        "ok": true, "manual_service_id": m.id,
        "category": { "id": m.id, "name": m.name, "kind": m.kind, "chat": m.chat },
        "items": items, "info": m.info,
    }))
}

async fn manual_order(State(s): Shr, headers: HeaderMap, body: Bytes) -> Response {
    let idem = match idempotency_key(&headers) {
        Ok(k) => k,
        Err(r) => return *r,
    };
    place_order(&s, "manual_services", idem, |_| {
        let body = parse_body(&body)?;
        let service_id = str_of(&body, "manual_service_id")
            .ok_or_else(|| bad("manual_service_id is required", "invalid_service"))?;
        let product_id = str_of(&body, "product_id")
            .ok_or_else(|| bad("product_id is required", "invalid_product"))?;
        let m = MANUAL_SERVICES
            .iter()
            .find(|m| m.id == service_id)
            .ok_or_else(|| bad("Unknown manual_service_id", "invalid_service"))?;
        let offer = m
            .offers
            .iter()
            .find(|o| o.id == product_id)
            .ok_or_else(|| bad("Unknown product_id for this service", "invalid_product"))?;
        let fields = fields_of(&body)?;
        for required in m.required_fields {
            if fields.get(*required).is_none_or(|v| v.is_empty()) {
                return Err(Box::new(bad(
                    &format!("Missing field: {required}"),
                    "invalid_fields",
                )));
            }
        }
        let kind: &'static str = if m.kind == "manual_transfer" {
            "manual_transfer"
        } else {
            "manual_replenishment"
        };
        let deadline = Utc::now() + chrono::Duration::minutes(i64::from(offer.minutes));
        let mut new = NewOrder::new(
            kind,
            dec(offer.price),
            json!({
                "category_id": m.id, "category_name": m.name, "product_id": offer.id, "product_name": offer.name,
                "deadline_at": ts(deadline), "chat_required": m.chat,
                "chat_status": if m.chat { "open" } else { "not_required" },
            }),
        );
        new.chat_enabled = m.chat;
        Ok(new)
    })
}

async fn chat_read(State(s): Shr, Path(id): Path<String>) -> Response {
    let state = s.state();
    let Some(o) = state.order(&id).filter(|o| manual_kind(o.kind)) else {
        return fail(StatusCode::NOT_FOUND, "Order not found", "not_found");
    };
    let terminal = matches!(o.status.as_str(), "completed" | "failed" | "refund");
    ok(json!({
        "ok": true, "chat_frozen": terminal, "chat_opened": o.chat_enabled,
        "chat_read_only": !o.chat_enabled || terminal, "messages": o.chat,
    }))
}

/// The `body` text part of a `multipart/form-data` request.
fn multipart_text(headers: &HeaderMap, body: &[u8], name: &str) -> Option<String> {
    let ct = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    if !ct.to_ascii_lowercase().starts_with("multipart/form-data") {
        return None;
    }
    let boundary = ct
        .split(';')
        .find_map(|p| p.trim().strip_prefix("boundary="))?
        .trim_matches('"');
    let text = String::from_utf8_lossy(body);
    let delimiter = format!("--{boundary}");
    for part in text.split(delimiter.as_str()) {
        let Some((head, value)) = part.split_once("\r\n\r\n") else {
            continue;
        };
        let wanted = format!("name=\"{name}\"");
        if head.to_ascii_lowercase().contains("content-disposition") && head.contains(&wanted) {
            return Some(value.strip_suffix("\r\n").unwrap_or(value).to_string());
        }
    }
    None
}

async fn chat_post(
    State(s): Shr,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let text = match multipart_text(&headers, &body, "body") {
        Some(t) if !t.trim().is_empty() => t,
        _ => {
            return bad(
                "Send a multipart/form-data body with a non-empty 'body' part",
                "invalid_body",
            );
        }
    };
    let (message, events) = {
        let mut state = s.state();
        let Some(o) = state.order_mut(&id).filter(|o| manual_kind(o.kind)) else {
            return fail(StatusCode::NOT_FOUND, "Order not found", "not_found");
        };
        if !o.chat_enabled {
            return bad("Chat is not available for this order", "chat_not_available");
        }
        if matches!(o.status.as_str(), "completed" | "failed" | "refund") {
            return fail(
                StatusCode::CONFLICT,
                "The chat of a finished order is frozen",
                "chat_frozen",
            );
        }
        let message = json!({ "sender": "reseller", "body": text, "created_at": ts(Utc::now()) });
        o.chat.push(message.clone());
        let event = (
            "manual_service.chat.message".to_string(),
            json!({ "order_id": o.id, "message": message }),
        );
        (message, vec![event])
    };
    s.emit(events);
    ok(json!({ "ok": true, "message": message }))
}

// ───────────────────────────── webhook delivery ─────────────────────────────

async fn webhook_worker(
    http: reqwest::Client,
    target: Arc<Mutex<Option<WebhookTarget>>>,
    retry_delays: Vec<Duration>,
    mut events: mpsc::UnboundedReceiver<(String, Value)>,
) {
    while let Some((event, data)) = events.recv().await {
        let Some(target) = lock(&target).clone() else {
            continue;
        };
        let event_id = uuid::Uuid::new_v4().to_string();
        let body = json!({ "event": event, "event_id": event_id, "timestamp": ts(Utc::now()), "data": data });
        let Ok(raw) = serde_json::to_vec(&body) else {
            continue;
        };
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(target.secret.as_bytes()) else {
            continue;
        };
        mac.update(&raw);
        let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        for attempt in 1..=retry_delays.len() + 1 {
            let sent = http
                .post(target.url.clone())
                .header("content-type", "application/json")
                .header("x-webhook-signature", &signature)
                .header("x-webhook-event", &event)
                .header("x-webhook-event-id", &event_id)
                .header("x-webhook-delivery-attempt", attempt.to_string())
                .body(raw.clone())
                .send()
                .await;
            match sent {
                Ok(r) if r.status().is_success() => break,
                _ => {
                    if let Some(delay) = retry_delays.get(attempt - 1) {
                        tokio::time::sleep(*delay).await;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn player_id_rule() {
        assert!(player_id_ok("12345"));
        assert!(player_id_ok("512345678901"));
        assert!(!player_id_ok("1234"));
        assert!(!player_id_ok("0123456"));
        assert!(!player_id_ok("1234567890123"));
        assert!(!player_id_ok("12a456"));
    }

    #[test]
    fn usernames_and_logins() {
        assert_eq!(normalize_username("@durov_1").as_deref(), Some("durov_1"));
        assert_eq!(normalize_username("abc"), None);
        assert_eq!(normalize_username("bad-name"), None);
        assert!(!refillable("NoRefill_bob"));
        assert!(refillable("gabe"));
    }

    #[test]
    fn multipart_body_part_is_found() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("multipart/form-data; boundary=xyz"),
        );
        let body = b"--xyz\r\nContent-Disposition: form-data; name=\"body\"\r\n\r\nhello there\r\n--xyz--\r\n";
        assert_eq!(
            multipart_text(&headers, body, "body").as_deref(),
            Some("hello there")
        );
        assert_eq!(multipart_text(&headers, body, "image"), None);
    }

    #[test]
    fn rate_categories() {
        assert_eq!(
            rate_category(&Method::POST, "/giftcards/order").0,
            "create_order"
        );
        assert_eq!(
            rate_category(&Method::POST, "/telegram/stars/buy").0,
            "create_order"
        );
        assert_eq!(
            rate_category(&Method::GET, "/orders/ord-1").0,
            "order_status"
        );
        assert_eq!(rate_category(&Method::GET, "/balance").0, "account");
        assert_eq!(rate_category(&Method::GET, "/giftcards").0, "catalog");
        assert_eq!(
            rate_category(&Method::POST, "/steam-topup/check-login").0,
            "other"
        );
    }
}
