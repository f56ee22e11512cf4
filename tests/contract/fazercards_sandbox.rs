//! Contract tests: the FazerCards client against the stateful fake over real HTTP on loopback.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::{Duration, Instant};

use kiosk::providers::fazercards::client::{
    ApiKey, AuthScheme, FazerClient, FazerError, FazerOrder, FieldType, OrderKind, OrderStatus,
    RateLimits, ReconcilePolicy, RetryPolicy, WebhookEventKind, parse_webhook_event,
    verify_signature,
};
use kiosk::providers::ratelimit::Limit;
use kiosk::sandbox::fazercards::{FakeFazerCards, FakeOptions, Fault, start};
use rust_decimal::Decimal;

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).expect("decimal literal")
}

fn fields(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

async fn fake() -> FakeFazerCards {
    start(
        "127.0.0.1:0".parse().expect("addr"),
        FakeOptions {
            order_delay: Duration::from_millis(100),
            webhook_retry_delays: vec![Duration::from_millis(50)],
            ..FakeOptions::default()
        },
    )
    .await
    .expect("fake starts")
}

fn client_with(fake: &FakeFazerCards, timeout: Duration) -> FazerClient {
    FazerClient::new(
        fake.base_url(),
        ApiKey::new(fake.api_key()),
        timeout,
        RateLimits::default(),
    )
    .expect("client")
    .with_retry_policy(RetryPolicy {
        max_attempts: 3,
        backoff: Duration::from_millis(20),
        max_retry_after: Duration::from_secs(5),
    })
    .with_reconcile_policy(ReconcilePolicy {
        attempts: 2,
        delay: Duration::from_millis(50),
        clock_skew: Duration::from_secs(2),
        max_pages: 2,
    })
}

fn client(fake: &FakeFazerCards) -> FazerClient {
    client_with(fake, Duration::from_secs(5))
}

async fn wait_terminal(client: &FazerClient, id: &str) -> FazerOrder {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let order = client.order(id).await.expect("get order");
        if order.status.is_terminal() || Instant::now() > deadline {
            return order;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn api_error(err: FazerError) -> (u16, Option<String>, String) {
    match err {
        FazerError::Api {
            status,
            code,
            message,
        } => (status, code, message),
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn gift_cards_from_catalog_to_delivered_codes() {
    let fake = fake().await;
    let c = client(&fake);
    let categories = c.giftcard_categories().await.expect("categories");
    // Six brands behind a 3-item cursor page: the walk must have followed next_cursor.
    assert_eq!(categories.len(), 6);
    assert!(categories.iter().any(|c| c.category_id == "gc_psn_us"));

    let cards = c.giftcard_cards("gc_steam_usd").await.expect("cards");
    let ten = cards
        .offers
        .iter()
        .find(|o| o.card_id == "card_10usd")
        .expect("$10 card");
    assert_eq!(ten.price_usd, dec("10.5"));
    assert_eq!(
        (ten.min_order_quantity, ten.max_order_quantity),
        (Some(1), Some(10))
    );
    let stock_before = ten.stock;
    let balance_before = c.balance().await.expect("balance").balance;

    let order = c
        .giftcard_order("gc_steam_usd", "card_10usd", 2, "idem-gc-1")
        .await
        .expect("order");
    assert_eq!(order.kind, OrderKind::GiftCard);
    assert_eq!(order.status, OrderStatus::Completed);
    assert_eq!(order.cards.len(), 2);
    assert!(order.cards.iter().all(|code| code.starts_with("STM-")));
    assert_eq!(order.charged_usd, Some(dec("21")));
    assert!(order.id.starts_with("ord-"));

    let balance_after = c.balance().await.expect("balance").balance;
    assert_eq!(balance_before - balance_after, dec("21"));
    let again = c.giftcard_cards("gc_steam_usd").await.expect("cards");
    let stock_after = again
        .offers
        .iter()
        .find(|o| o.card_id == "card_10usd")
        .map(|o| o.stock);
    assert_eq!(stock_after, Some(stock_before - 2));

    let fetched = c.order(&order.id).await.expect("get");
    assert_eq!(fetched.cards, order.cards);
    let listed = c.orders(1, 10).await.expect("list");
    assert_eq!(listed.total, 1);
    assert_eq!(listed.items[0].id, order.id);
    assert_eq!(listed.items[0].kind, OrderKind::GiftCard);
    let txs = c.transactions(1, 10).await.expect("transactions");
    assert_eq!(txs.items[0].amount, dec("-21"));
    assert_eq!(txs.items[0].balance_after, Some(balance_after));
    let tx = c
        .transaction(&txs.items[0].id)
        .await
        .expect("one transaction");
    assert_eq!(tx.kind, "debit");
    let me = c.me().await.expect("me");
    assert_eq!(me.summary.total_orders, 1);
    assert_eq!(me.summary.total_spent, Some(dec("21")));
    fake.shutdown().await;
}

#[tokio::test]
async fn topups_with_select_field_complete_after_delay() {
    let fake = fake().await;
    let c = client(&fake);
    let categories = c.topup_categories().await.expect("categories");
    let ids: Vec<_> = categories.iter().map(|c| c.category_id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "pubg_mobile_auto",
            "free_fire_auto",
            "mlbb_auto",
            "genshin_impact_auto"
        ]
    );

    let genshin = c.topup_offers("genshin_impact_auto").await.expect("offers");
    let server = genshin
        .fields
        .iter()
        .find(|f| f.key == "server")
        .expect("server field");
    assert_eq!(server.field_type, FieldType::Select);
    assert!(
        server
            .options
            .iter()
            .any(|o| o.value == "os_euro" && o.label == "Europe")
    );
    assert_eq!(genshin.fields[0].field_type, FieldType::Text);

    let offer = &genshin.offers[0];
    let order = c
        .topup_order(
            "genshin_impact_auto",
            &offer.offer_id,
            &fields(&[("uid", "712345678"), ("server", "os_euro")]),
            "idem-tp-1",
        )
        .await
        .expect("order");
    assert_eq!(order.kind, OrderKind::Topup);
    assert_eq!(order.status, OrderStatus::Processing);
    let done = wait_terminal(&c, &order.id).await;
    assert_eq!(done.status, OrderStatus::Completed);
    assert_eq!(done.charged_usd, Some(offer.price_usd));
    let history: Vec<_> = done
        .status_history
        .iter()
        .map(|e| e.status.clone())
        .collect();
    assert_eq!(
        history,
        [
            OrderStatus::Created,
            OrderStatus::Processing,
            OrderStatus::Completed
        ]
    );

    // A select value outside the options is a 400 with the provider's message.
    let err = c
        .topup_order(
            "genshin_impact_auto",
            &offer.offer_id,
            &fields(&[("uid", "712345678"), ("server", "mars")]),
            "idem-tp-2",
        )
        .await
        .expect_err("bad select");
    let (status, code, message) = api_error(err);
    assert_eq!((status, code.as_deref()), (400, Some("invalid_fields")));
    assert!(message.contains("server"), "{message}");

    // An invalid player id is accepted, then refunded with the balance returned.
    let before = fake.balance();
    let refunded = c
        .topup_order(
            "pubg_mobile_auto",
            "offer_60uc",
            &fields(&[("player_id", "0123")]),
            "idem-tp-3",
        )
        .await
        .expect("order");
    let refunded = wait_terminal(&c, &refunded.id).await;
    assert_eq!(refunded.status, OrderStatus::Refund);
    assert_eq!(refunded.fail_reason.as_deref(), Some("Player ID not found"));
    assert_eq!(fake.balance(), before);
    fake.shutdown().await;
}

#[tokio::test]
async fn validate_id_namespace_valid_and_invalid() {
    let fake = fake().await;
    let c = client(&fake);
    let games = c.validate_id_games().await.expect("games");
    let pubg = games
        .iter()
        .find(|g| g.category_id == "pubg_mobile")
        .expect("pubg in validation list");
    assert_eq!(pubg.fields[0].key, "player_id");
    assert!(
        games.iter().all(|g| !g.category_id.ends_with("_auto")),
        "validation ids are not purchasable ids"
    );

    let ok = c
        .validate_id("pubg_mobile", &fields(&[("player_id", "5123456789")]))
        .await
        .expect("validate");
    assert!(ok.valid);
    assert!(
        ok.player_name
            .as_deref()
            .is_some_and(|n| n.ends_with("789"))
    );
    let ff = c
        .validate_id("free_fire", &fields(&[("player_id", "123456789")]))
        .await
        .expect("validate");
    assert!(ff.valid && ff.region.is_some());

    for bad_id in ["1234", "0123456789", "12345abc", "1234567890123"] {
        let r = c
            .validate_id("pubg_mobile", &fields(&[("player_id", bad_id)]))
            .await
            .expect("validate");
        assert!(!r.valid, "{bad_id} must be invalid");
        assert_eq!(r.player_name, None);
    }

    // The purchasable id is not in the validation namespace, and vice versa.
    let err = c
        .validate_id("pubg_mobile_auto", &fields(&[("player_id", "5123456789")]))
        .await
        .expect_err("not validatable");
    assert_eq!(
        api_error(err).1.as_deref(),
        Some("validation_not_supported")
    );
    let err = c
        .topup_order(
            "pubg_mobile",
            "offer_60uc",
            &fields(&[("player_id", "5123456789")]),
            "idem-v-1",
        )
        .await
        .expect_err("not purchasable");
    let (status, code, message) = api_error(err);
    assert_eq!((status, code.as_deref()), (400, Some("invalid_category")));
    assert!(message.contains("validate-id"), "{message}");
    assert_eq!(fake.orders_created(), 0);
    fake.shutdown().await;
}

#[tokio::test]
async fn game_keys_with_region_restriction() {
    let fake = fake().await;
    let c = client(&fake);
    let games = c.gamekey_games().await.expect("games");
    assert_eq!(games.len(), 5);
    let gta = games
        .iter()
        .find(|g| g.game_id == "gk_gta5_premium")
        .expect("gta");
    assert!(gta.region_restriction);
    let rr = c
        .gamekey_region_restriction("gk_gta5_premium")
        .await
        .expect("restriction");
    assert!(rr.has_availability);
    assert!(rr.available.iter().any(|c| c.code == "KZ"));
    assert!(rr.unavailable.iter().any(|c| c.code == "US"));

    let keys = c.gamekey_keys("gk_cyberpunk_2077").await.expect("keys");
    assert_eq!(keys.game_name, "Cyberpunk 2077");
    let sku = keys
        .keys
        .iter()
        .find(|k| k.key_id == "key_ultimate")
        .expect("sku");
    assert_eq!(sku.stock, 2);
    let order = c
        .gamekey_order("gk_cyberpunk_2077", "key_ultimate", 2, "idem-gk-1")
        .await
        .expect("order");
    assert_eq!(order.kind, OrderKind::GameKey);
    assert_eq!(order.status, OrderStatus::Completed);
    assert_eq!(order.keys.len(), 2);
    assert_eq!(order.charged_usd, Some(dec("99.98")));
    assert_eq!(
        fake.game_key_stock("gk_cyberpunk_2077", "key_ultimate"),
        Some(0)
    );

    // Stock is gone now: a new order is refused and nothing is charged.
    let before = fake.balance();
    let err = c
        .gamekey_order("gk_cyberpunk_2077", "key_ultimate", 1, "idem-gk-2")
        .await
        .expect_err("out of stock");
    assert_eq!(api_error(err).1.as_deref(), Some("out_of_stock"));
    assert_eq!(fake.balance(), before);
    fake.shutdown().await;
}

#[tokio::test]
async fn steam_wallet_and_gifts() {
    let fake = fake().await;
    let c = client(&fake);
    let rates = c.steam_rates().await.expect("rates");
    assert_eq!(rates.rates.get("RUB"), Some(&dec("92.5")));
    // public-rates is sent without the key: a client with a wrong key still reads it.
    let stranger = FazerClient::new(
        fake.base_url(),
        ApiKey::new("not-the-key"),
        Duration::from_secs(5),
        RateLimits::default(),
    )
    .expect("client");
    assert_eq!(
        stranger
            .steam_public_rates()
            .await
            .expect("public rates")
            .rates
            .get("KZT"),
        Some(&dec("520"))
    );

    assert!(
        c.steam_check_login("gabe_newell")
            .await
            .expect("check")
            .can_refill
    );
    let order = c
        .steam_topup_order("gabe_newell", "RUB", dec("925"), "idem-st-1")
        .await
        .expect("order");
    assert_eq!(order.kind, OrderKind::SteamTopup);
    assert_eq!(order.charged_usd, Some(dec("10"))); // camelCase chargedUsd
    assert_eq!(order.raw["steamLogin"], "gabe_newell");
    let done = wait_terminal(&c, &order.id).await;
    assert_eq!(done.status, OrderStatus::Completed);
    assert!(done.completed_at.is_some()); // camelCase completedAt

    let games = c.steam_gift_games(None).await.expect("games");
    assert!(games.games.len() >= 5 && !games.meta.truncated);
    let cs2 = c.steam_gift_game(730).await.expect("cs2");
    let offer = &cs2.offers[0];
    assert_eq!(offer.sub_id, 54029);
    let cis = offer
        .regions
        .iter()
        .find(|r| r.region == "CIS")
        .expect("CIS price");
    let gift = c
        .steam_gift_order(
            "https://s.team/p/abcd-efgh/XYZ",
            offer.sub_id,
            730,
            "CIS",
            "idem-sg-1",
        )
        .await
        .expect("gift order");
    assert_eq!(gift.kind, OrderKind::SteamGift);
    assert_eq!(gift.charged_usd, Some(cis.price));
    assert_eq!(
        wait_terminal(&c, &gift.id).await.status,
        OrderStatus::Completed
    );
    fake.shutdown().await;
}

#[tokio::test]
async fn steam_login_that_cannot_be_refilled() {
    let fake = fake().await;
    let c = client(&fake);
    let check = c.steam_check_login("norefill_alice").await.expect("check");
    assert!(!check.can_refill);
    let err = c
        .steam_topup_order("norefill_alice", "USD", dec("5"), "idem-nr-1")
        .await
        .expect_err("refused");
    let (status, code, message) = api_error(err);
    assert_eq!(status, 400);
    assert_eq!(code.as_deref(), Some("steam_login_not_refillable"));
    assert!(message.contains("cannot be refilled"));
    assert_eq!(fake.orders_created(), 0);
    fake.shutdown().await;
}

#[tokio::test]
async fn telegram_stars_and_premium() {
    let fake = fake().await;
    let c = client(&fake);
    let quote = c.telegram_stars_quote().await.expect("quote");
    assert_eq!((quote.min_amount, quote.max_amount), (50, 10_000));
    assert_eq!(quote.price_per_star, dec("0.015"));
    let plans = c.telegram_premium_plans().await.expect("plans");
    assert_eq!(
        plans.plans.iter().map(|p| p.months).collect::<Vec<_>>(),
        [3, 6, 12]
    );

    let stars = c.buy_stars("@durov_fan", 250).await.expect("stars");
    assert_eq!(stars.kind, OrderKind::TelegramStars);
    assert_eq!(stars.charged_usd, Some(dec("3.75")));
    assert_eq!(stars.quantity, Some(250));
    assert_eq!(
        wait_terminal(&c, &stars.id).await.status,
        OrderStatus::Completed
    );

    let premium = c.buy_premium("durov_fan", 12).await.expect("premium");
    assert_eq!(premium.kind, OrderKind::TelegramPremium);
    assert_eq!(premium.months, Some(12));
    assert_eq!(premium.charged_usd, Some(quote_plan(&plans, 12)));

    for (qty, what) in [(49, "below min"), (10_001, "above max")] {
        let err = c.buy_stars("@durov_fan", qty).await.expect_err(what);
        assert_eq!(api_error(err).0, 400);
    }
    let err = c.buy_premium("@durov_fan", 4).await.expect_err("4 months");
    assert_eq!(api_error(err).1.as_deref(), Some("invalid_months"));
    assert_eq!(fake.orders_created(), 2);
    fake.shutdown().await;
}

fn quote_plan(plans: &kiosk::providers::fazercards::client::PremiumPlans, months: u32) -> Decimal {
    plans
        .plans
        .iter()
        .find(|p| p.months == months)
        .map(|p| p.price_usd)
        .expect("plan")
}

#[tokio::test]
async fn manual_services_flat_order_and_chat() {
    let fake = fake().await;
    let c = client(&fake);
    let services = c.manual_services().await.expect("services");
    let nitro = services
        .iter()
        .find(|s| s.id == "ms_discord_nitro")
        .expect("nitro");
    assert!(nitro.chat);
    assert_eq!(nitro.kind, "manual_transfer");
    let offers = c
        .manual_service_offers("ms_discord_nitro")
        .await
        .expect("offers");
    assert_eq!(offers.items[0].delivery_minutes, Some(60));

    let order = c
        .manual_service_order("ms_discord_nitro", "ms_nitro_1m", None, "idem-ms-1")
        .await
        .expect("order");
    assert_eq!(order.kind, OrderKind::ManualTransfer);
    assert_eq!(order.status, OrderStatus::Created);
    assert_eq!(order.charged_usd, Some(offers.items[0].price_usd));
    assert!(
        order.raw.get("order_id").is_some(),
        "create answer is flat with order_id"
    );

    let thread = c.manual_chat(&order.id).await.expect("chat");
    assert!(thread.chat_opened);
    let sent = c
        .manual_chat_post(&order.id, "Please send the link here")
        .await
        .expect("post");
    assert_eq!(sent.body, "Please send the link here");
    let thread = c.manual_chat(&order.id).await.expect("chat");
    assert_eq!(
        thread.messages.last().map(|m| m.sender.as_str()),
        Some("reseller")
    );
    assert_eq!(
        wait_terminal(&c, &order.id).await.status,
        OrderStatus::Completed
    );

    let err = c
        .manual_service_order("ms_spotify_premium", "ms_spotify_1m", None, "idem-ms-2")
        .await
        .expect_err("email needed");
    assert_eq!(api_error(err).1.as_deref(), Some("invalid_fields"));
    let spotify = c
        .manual_service_order(
            "ms_spotify_premium",
            "ms_spotify_1m",
            Some(&fields(&[("email", "a@b.example")])),
            "idem-ms-3",
        )
        .await
        .expect("order");
    assert_eq!(spotify.kind, OrderKind::ManualReplenishment);
    let err = c
        .manual_chat_post(&spotify.id, "hi")
        .await
        .expect_err("no chat");
    assert_eq!(api_error(err).1.as_deref(), Some("chat_not_available"));
    fake.shutdown().await;
}

#[tokio::test]
async fn retry_after_is_honoured_on_429() {
    let fake = fake().await;
    let c = client(&fake);
    fake.inject_rate_limit(Some("/balance"), 1, Duration::from_secs(1));
    let started = Instant::now();
    let balance = c.balance().await.expect("balance after 429");
    let elapsed = started.elapsed();
    assert_eq!(balance.balance, dec("1000"));
    assert!(
        elapsed >= Duration::from_millis(850),
        "waited only {elapsed:?} for Retry-After: 1 (−15 %)"
    );
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    assert_eq!(fake.request_count("GET", "/balance"), 2);

    // More 429s than attempts: the typed error carries the hint.
    fake.inject_rate_limit(Some("/me"), 5, Duration::from_secs(9));
    match c.me().await {
        // 9 s is above this client's max_retry_after (5 s): no sleeping, error at once.
        Err(FazerError::RateLimited { retry_after }) => {
            assert_eq!(retry_after, Duration::from_secs(9))
        }
        other => panic!("expected RateLimited, got {other:?}"),
    }
    assert_eq!(fake.request_count("GET", "/me"), 1);
    fake.shutdown().await;
}

#[tokio::test]
async fn server_error_on_idempotent_order_is_retried_once_charged_once() {
    let fake = fake().await;
    let c = client(&fake);
    // The first attempt is executed and its answer lost behind a 502; the retry carries the
    // same Idempotency-Key and gets the original order back.
    fake.inject(
        Some("/giftcards/order"),
        Fault::ServerError {
            status: 502,
            after_processing: true,
        },
        1,
    );
    let order = c
        .giftcard_order("gc_psn_us", "card_25usd", 1, "idem-5xx-1")
        .await
        .expect("order after 5xx");
    assert_eq!(order.status, OrderStatus::Completed);
    assert_eq!(fake.request_count("POST", "/giftcards/order"), 2);
    assert_eq!(fake.orders_created(), 1);
    assert_eq!(fake.balance(), dec("1000") - dec("25.8"));

    // A 5xx before processing: the retry creates the order; still exactly one.
    fake.inject_server_error(Some("/gamekeys/order"), 1);
    let keys = c
        .gamekey_order("gk_elden_ring", "key_standard", 1, "idem-5xx-2")
        .await
        .expect("order after 500");
    assert_eq!(keys.keys.len(), 1);
    assert_eq!(fake.orders_created_of("game_key"), 1);

    // A GET that hangs past the client timeout is retried too.
    let quick = client_with(&fake, Duration::from_millis(300));
    fake.inject_hang(Some("/balance"), Duration::from_secs(1), false);
    quick.balance().await.expect("balance after a timeout");
    assert_eq!(fake.request_count("GET", "/balance"), 2);
    fake.shutdown().await;
}

#[tokio::test]
async fn stars_timeout_is_reconciled_without_resending() {
    let fake = fake().await;
    let c = client_with(&fake, Duration::from_millis(300));
    // The buy is executed, but the answer comes after the client gave up.
    fake.inject_hang(Some("/telegram/stars/buy"), Duration::from_secs(1), true);
    let order = c
        .buy_stars("@late_answer", 500)
        .await
        .expect("reconciled order");
    assert_eq!(order.kind, OrderKind::TelegramStars);
    assert_eq!(order.quantity, Some(500));
    assert_eq!(order.telegram_username.as_deref(), Some("@late_answer"));
    assert_eq!(
        fake.request_count("POST", "/telegram/stars/buy"),
        1,
        "never resent"
    );
    assert_eq!(fake.orders_created_of("telegram_stars"), 1);

    // A Premium buy whose answer is lost behind a 500 is reconciled the same way.
    fake.inject(
        Some("/telegram/premium/buy"),
        Fault::ServerError {
            status: 500,
            after_processing: true,
        },
        1,
    );
    let premium = c
        .buy_premium("late_answer", 6)
        .await
        .expect("reconciled premium");
    assert_eq!(premium.months, Some(6));
    assert_eq!(fake.request_count("POST", "/telegram/premium/buy"), 1);
    assert_eq!(fake.orders_created_of("telegram_premium"), 1);
    fake.shutdown().await;
}

#[tokio::test]
async fn stars_timeout_without_an_order_is_ambiguous() {
    let fake = fake().await;
    let c = client_with(&fake, Duration::from_millis(300));
    // A previous identical buy that this client already handed out must not be claimed.
    let first = c.buy_stars("@twice_buyer", 100).await.expect("first buy");
    fake.inject_hang(Some("/telegram/stars/buy"), Duration::from_secs(1), false);
    match c.buy_stars("@twice_buyer", 100).await {
        Err(FazerError::Ambiguous { candidates, reason }) => {
            assert!(candidates.is_empty(), "{candidates:?}");
            assert!(reason.contains("timed out"), "{reason}");
        }
        other => panic!("expected Ambiguous, got {other:?}"),
    }
    assert_eq!(
        fake.request_count("POST", "/telegram/stars/buy"),
        2,
        "one per buy, no resend"
    );
    assert_eq!(fake.orders_created_of("telegram_stars"), 1);
    assert_eq!(c.orders(1, 10).await.expect("orders").items[0].id, first.id);

    // A 500 before processing is just as ambiguous for a non-idempotent buy.
    fake.inject_server_error(Some("/telegram/premium/buy"), 1);
    assert!(matches!(
        c.buy_premium("@twice_buyer", 3).await,
        Err(FazerError::Ambiguous { .. })
    ));
    assert_eq!(fake.request_count("POST", "/telegram/premium/buy"), 1);
    fake.shutdown().await;
}

#[tokio::test]
async fn provider_errors_are_typed_with_messages() {
    let fake = fake().await;
    let c = client(&fake);

    fake.set_balance(dec("1"));
    let (status, code, message) = api_error(
        c.giftcard_order("gc_roblox", "card_800rbx", 1, "idem-e-1")
            .await
            .expect_err("400"),
    );
    assert_eq!(
        (status, code.as_deref(), message.as_str()),
        (400, Some("insufficient_balance"), "Insufficient balance")
    );
    fake.set_balance(dec("1000"));

    let stranger = FazerClient::new(
        fake.base_url(),
        ApiKey::new("wrong"),
        Duration::from_secs(5),
        RateLimits::default(),
    )
    .expect("client");
    let (status, _, message) = api_error(stranger.balance().await.expect_err("401"));
    assert_eq!(
        (status, message.as_str()),
        (401, "Missing or invalid API key")
    );

    fake.disable_service("giftcards");
    let (status, code, _) = api_error(c.giftcard_cards("gc_roblox").await.expect_err("403"));
    assert_eq!((status, code.as_deref()), (403, Some("service_disabled")));
    fake.enable_service("giftcards");

    let (status, _, message) = api_error(c.order("ord-424242").await.expect_err("404"));
    assert_eq!((status, message.as_str()), (404, "Order not found"));

    c.giftcard_order("gc_roblox", "card_800rbx", 1, "idem-shared")
        .await
        .expect("first use");
    let (status, code, message) = api_error(
        c.topup_order(
            "pubg_mobile_auto",
            "offer_60uc",
            &fields(&[("player_id", "5123456789")]),
            "idem-shared",
        )
        .await
        .expect_err("409"),
    );
    assert_eq!(
        (status, code.as_deref()),
        (409, Some("idempotency_conflict"))
    );
    assert!(message.contains("different product type"));

    let (status, code, _) = api_error(
        c.giftcard_order("gc_google_play_us", "card_10usd", 1, "idem-e-2")
            .await
            .expect_err("out of stock"),
    );
    assert_eq!((status, code.as_deref()), (400, Some("out_of_stock")));
    assert_eq!(fake.orders_created(), 1);
    fake.shutdown().await;
}

#[tokio::test]
async fn replay_returns_the_original_order_even_after_failure_and_refunds_return_money() {
    let fake = fake().await;
    let c = client(&fake);
    fake.fail_next_order("Supplier rejected the card");
    let failed = c
        .giftcard_order("gc_apple_us", "card_10usd", 1, "idem-f-1")
        .await
        .expect("order");
    assert_eq!(failed.status, OrderStatus::Failed);
    assert_eq!(
        failed.fail_reason.as_deref(),
        Some("Supplier rejected the card")
    );
    assert!(failed.cards.is_empty());
    let replay = c
        .giftcard_order("gc_apple_us", "card_10usd", 1, "idem-f-1")
        .await
        .expect("replay");
    assert_eq!(replay.id, failed.id);
    assert_eq!(replay.status, OrderStatus::Failed);
    assert_eq!(fake.orders_created(), 1);

    let before = fake.balance();
    let stock = fake.gift_card_stock("gc_apple_us", "card_25usd");
    fake.refund_next_order("Region mismatch");
    let refunded = c
        .giftcard_order("gc_apple_us", "card_25usd", 2, "idem-f-2")
        .await
        .expect("order");
    assert_eq!(refunded.status, OrderStatus::Refund);
    assert_eq!(fake.balance(), before);
    assert_eq!(fake.gift_card_stock("gc_apple_us", "card_25usd"), stock);
    let txs = c.transactions(1, 5).await.expect("ledger");
    assert_eq!(txs.items[0].kind, "credit");
    assert_eq!(txs.items[0].amount, dec("51.2"));

    // Camel-case orders carry failReason.
    fake.fail_next_order("Username not found");
    let stars = c.buy_stars("@ghost_user", 50).await.expect("stars");
    assert_eq!(
        wait_terminal(&c, &stars.id).await.fail_reason.as_deref(),
        Some("Username not found")
    );
    fake.shutdown().await;
}

#[tokio::test]
async fn bearer_auth_and_client_side_budget() {
    let fake = fake().await;
    let bearer = FazerClient::new(
        fake.base_url(),
        ApiKey::new(fake.api_key()),
        Duration::from_secs(5),
        RateLimits::default(),
    )
    .expect("client")
    .with_auth_scheme(AuthScheme::Bearer);
    assert_eq!(
        bearer.balance().await.expect("bearer balance").currency,
        "USD"
    );

    let tight = FazerClient::new(
        fake.base_url(),
        ApiKey::new(fake.api_key()),
        Duration::from_secs(5),
        RateLimits::uniform(Limit::new(2, Duration::from_millis(300))),
    )
    .expect("client");
    let started = Instant::now();
    for _ in 0..3 {
        tight.balance().await.expect("balance");
    }
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "third call must wait for the window"
    );
    fake.shutdown().await;
}

#[tokio::test]
async fn fake_enforces_the_account_budget() {
    let fake = fake().await;
    let greedy = FazerClient::new(
        fake.base_url(),
        ApiKey::new(fake.api_key()),
        Duration::from_secs(5),
        RateLimits::uniform(Limit::per_minute(10_000)),
    )
    .expect("client")
    .with_retry_policy(RetryPolicy {
        max_attempts: 1,
        ..RetryPolicy::default()
    });
    for _ in 0..30 {
        greedy.balance().await.expect("within 30/min");
    }
    match greedy.balance().await {
        Err(FazerError::RateLimited { retry_after }) => {
            assert!(retry_after >= Duration::from_secs(1))
        }
        other => panic!("expected 429, got {other:?}"),
    }
    // Other categories are unaffected.
    greedy
        .giftcard_cards("gc_roblox")
        .await
        .expect("catalog still open");
    fake.shutdown().await;
}

#[tokio::test]
async fn malformed_order_answer_is_a_decode_error() {
    let fake = fake().await;
    let c = client(&fake);
    fake.inject(Some("/giftcards/order"), Fault::MalformedJson, 1);
    match c
        .giftcard_order("gc_xbox_us", "card_15usd", 1, "idem-m-1")
        .await
    {
        Err(FazerError::Decode(_)) => {}
        other => panic!("expected Decode, got {other:?}"),
    }
    // The order exists; a replay with the same key finds it.
    let replay = c
        .giftcard_order("gc_xbox_us", "card_15usd", 1, "idem-m-1")
        .await
        .expect("replay");
    assert_eq!(replay.cards.len(), 1);
    assert_eq!(fake.orders_created(), 1);
    fake.shutdown().await;
}

#[tokio::test]
async fn webhooks_are_signed_and_typed() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    let receiver = MockServer::start().await;
    // The first delivery fails: the retry must repeat the event id with attempt 2.
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&receiver)
        .await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(200))
        .with_priority(2)
        .mount(&receiver)
        .await;

    let fake = fake().await;
    let c = client(&fake);
    let secret = "whsec_test_123";
    fake.set_webhook(
        format!("{}/hook", receiver.uri()).parse().expect("url"),
        secret,
    );
    let order = c
        .giftcard_order("gc_roblox", "card_800rbx", 1, "idem-wh-1")
        .await
        .expect("order");

    let deadline = Instant::now() + Duration::from_secs(5);
    let requests = loop {
        let got = receiver.received_requests().await.unwrap_or_default();
        if got.len() >= 3 || Instant::now() > deadline {
            break got;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        requests.len(),
        3,
        "created (failed once, retried) + status_changed"
    );
    let header = |r: &wiremock::Request, name: &str| {
        r.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };

    let (first, retry) = (&requests[0], &requests[1]);
    assert_eq!(
        header(first, "x-webhook-event-id"),
        header(retry, "x-webhook-event-id")
    );
    assert_eq!(header(first, "x-webhook-delivery-attempt"), "1");
    assert_eq!(header(retry, "x-webhook-delivery-attempt"), "2");
    assert!(uuid::Uuid::parse_str(&header(first, "x-webhook-event-id")).is_ok());

    for r in &requests {
        let sig = header(r, "x-webhook-signature");
        assert!(sig.starts_with("sha256="));
        assert!(
            verify_signature(secret.as_bytes(), &r.body, &sig),
            "good signature must verify"
        );
        assert!(
            !verify_signature(b"another-secret", &r.body, &sig),
            "wrong secret must fail"
        );
        let mut tampered = r.body.clone();
        tampered.push(b' ');
        assert!(
            !verify_signature(secret.as_bytes(), &tampered, &sig),
            "tampered body must fail"
        );
    }

    let created = parse_webhook_event(&requests[0].body).expect("event");
    assert_eq!(created.kind(), WebhookEventKind::OrderCreated);
    assert_eq!(header(&requests[0], "x-webhook-event"), "order.created");
    assert_eq!(created.event_id, header(&requests[0], "x-webhook-event-id"));
    let changed = parse_webhook_event(&requests[2].body).expect("event");
    assert_eq!(changed.kind(), WebhookEventKind::OrderStatusChanged);
    let change = changed.order_status_change().expect("status change");
    assert_eq!(change.order_id, order.id);
    assert_eq!(change.status, OrderStatus::Completed);
    assert_eq!(change.kind, Some(OrderKind::GiftCard));
    fake.shutdown().await;
}

#[tokio::test]
async fn debug_output_never_shows_the_key() {
    let key = "fc_live_7d3c1f0e9b_SECRET";
    let api_key = ApiKey::new(key);
    let client = FazerClient::new(
        "http://127.0.0.1:9/api/v2".parse().expect("url"),
        api_key.clone(),
        Duration::from_secs(1),
        RateLimits::default(),
    )
    .expect("client")
    .with_auth_scheme(AuthScheme::Bearer)
    .with_retry_policy(RetryPolicy {
        max_attempts: 1,
        ..RetryPolicy::default()
    });
    for shown in [
        format!("{api_key:?}"),
        format!("{client:?}"),
        format!("{client:#?}"),
    ] {
        assert!(!shown.contains(key) && !shown.contains("SECRET"), "{shown}");
    }
    assert!(format!("{client:?}").contains("***"));
    assert_eq!(api_key.expose(), key);
    // Errors do not carry it either (connection refused on the discard port).
    let err = client
        .balance()
        .await
        .expect_err("nothing listens on port 9");
    assert!(!format!("{err:?} {err}").contains("SECRET"));
}
