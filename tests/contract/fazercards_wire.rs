//! Exact wire shapes and broken bodies: the FazerCards client against wiremock.

use std::time::Duration;

use kiosk::providers::fazercards::client::{
    ApiKey, AuthScheme, FazerClient, FazerError, OrderKind, OrderStatus, RateLimits,
    ReconcilePolicy, RetryPolicy,
};
use serde_json::json;
use wiremock::matchers::{body_json, header, header_exists, method, path, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

async fn setup() -> (MockServer, FazerClient) {
    let server = MockServer::start().await;
    let base = format!("{}/api/v2", server.uri()).parse().expect("url");
    let client = FazerClient::new(
        base,
        ApiKey::new("k_test"),
        Duration::from_millis(500),
        RateLimits::default(),
    )
    .expect("client")
    .with_retry_policy(RetryPolicy {
        max_attempts: 3,
        backoff: Duration::from_millis(10),
        max_retry_after: Duration::from_secs(5),
    })
    .with_reconcile_policy(ReconcilePolicy {
        attempts: 1,
        delay: Duration::from_millis(10),
        clock_skew: Duration::from_secs(5),
        max_pages: 1,
    });
    (server, client)
}

fn no_header(name: &'static str) -> impl Fn(&Request) -> bool {
    move |r: &Request| !r.headers.contains_key(name)
}

#[tokio::test]
async fn order_requests_carry_key_idempotency_and_json_body() {
    let (server, client) = setup().await;
    Mock::given(method("POST"))
        .and(path("/api/v2/giftcards/order"))
        .and(header("x-api-key", "k_test"))
        .and(header("idempotency-key", "idem-abc"))
        .and(header("content-type", "application/json"))
        .and(body_json(json!({"category_id": "gc_steam_1", "card_id": "card_10usd", "quantity": 3})))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "ok": true,
            "order": {"id": "ord-9001", "kind": "gift_card", "status": "completed", "cards": ["A", "B", "C"], "total_usd": "31.5000", "extra": {"nested": true}}
        })))
        .expect(1)
        .mount(&server)
        .await;
    let order = client
        .giftcard_order("gc_steam_1", "card_10usd", 3, "idem-abc")
        .await
        .expect("order");
    assert_eq!(order.id, "ord-9001");
    assert_eq!(order.cards.len(), 3);
    assert_eq!(order.status, OrderStatus::Completed);
}

#[tokio::test]
async fn stars_buy_has_no_idempotency_key_and_steam_amount_is_a_string() {
    let (server, client) = setup().await;
    Mock::given(method("POST"))
        .and(path("/api/v2/telegram/stars/buy"))
        .and(no_header("idempotency-key"))
        .and(body_json(json!({"telegram_username": "@durov", "quantity": 100})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "ok": true, "order": {"id": "ord-1", "kind": "telegram_stars", "status": "processing", "chargedUsd": "1.5000"}
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v2/steam-topup/order"))
        .and(header_exists("idempotency-key"))
        .and(body_json(json!({"steamLogin": "gabe", "currency": "RUB", "amount": "1234.5"})))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "ok": true, "order": {"id": "ord-2", "kind": "steam_topup", "status": "processing", "chargedUsd": "13.3459", "total_usd": "999"}
        })))
        .expect(1)
        .mount(&server)
        .await;
    let stars = client.buy_stars("@durov", 100).await.expect("stars");
    assert_eq!(stars.kind, OrderKind::TelegramStars);
    let steam = client
        .steam_topup_order("gabe", "RUB", "1234.50".parse().expect("decimal"), "idem-1")
        .await
        .expect("steam");
    // camelCase kinds prefer chargedUsd.
    assert_eq!(steam.charged_usd, Some("13.3459".parse().expect("decimal")));
}

#[tokio::test]
async fn bearer_scheme_sends_authorization_only() {
    let (server, client) = setup().await;
    let client = client.with_auth_scheme(AuthScheme::Bearer);
    Mock::given(method("GET"))
        .and(path("/api/v2/balance"))
        .and(header("authorization", "Bearer k_test"))
        .and(no_header("x-api-key"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"ok": true, "balance": "12.3400", "currency": "USD"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    assert_eq!(
        client.balance().await.expect("balance").balance,
        "12.34".parse().expect("decimal")
    );
}

#[tokio::test]
async fn cursor_is_walked_to_the_end() {
    let (server, client) = setup().await;
    Mock::given(method("GET"))
        .and(path("/api/v2/gamekeys"))
        .and(query_param("cursor", "opaque-2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "ok": true, "kind": "game_key",
            "items": [{"name": "C", "game_id": "g3", "region": "GLOBAL", "platform": "steam", "region_restriction": false}],
            "meta": {"total": 3, "limit": 2, "next_cursor": null, "has_more": false}
        })))
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v2/gamekeys"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "ok": true, "kind": "game_key",
            "items": [{"name": "A", "game_id": "g1"}, {"name": "B", "game_id": "g2", "unknown_field": [1, 2]}],
            "meta": {"total": 3, "limit": 2, "next_cursor": "opaque-2", "has_more": true}
        })))
        .with_priority(2)
        .mount(&server)
        .await;
    let games = client.gamekey_games().await.expect("games");
    assert_eq!(
        games.iter().map(|g| g.game_id.as_str()).collect::<Vec<_>>(),
        ["g1", "g2", "g3"]
    );
}

#[tokio::test]
async fn a_cursor_that_never_ends_is_an_error_not_a_loop() {
    let (server, client) = setup().await;
    Mock::given(method("GET"))
        .and(path("/api/v2/topups"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "ok": true, "items": [{"category_id": "x", "name": "X"}], "meta": {"next_cursor": "same", "has_more": true}
        })))
        .mount(&server)
        .await;
    assert!(matches!(
        client.topup_categories().await,
        Err(FazerError::Decode(_))
    ));
}

#[tokio::test]
async fn malformed_bodies_are_decode_errors() {
    let (server, client) = setup().await;
    let cases: [(&str, ResponseTemplate); 5] = [
        (
            "/api/v2/balance",
            ResponseTemplate::new(200)
                .set_body_raw("{\"ok\":true,\"balance\":", "application/json"),
        ),
        (
            "/api/v2/me",
            ResponseTemplate::new(200).set_body_raw("<html>maintenance</html>", "text/html"),
        ),
        (
            "/api/v2/telegram/stars",
            ResponseTemplate::new(200)
                .set_body_json(json!({"ok": true, "price_per_star": "cheap"})),
        ),
        (
            "/api/v2/orders/ord-1",
            ResponseTemplate::new(200)
                .set_body_json(json!({"ok": true, "order": {"kind": "topup"}})),
        ),
        (
            "/api/v2/transactions",
            ResponseTemplate::new(200).set_body_json(json!([1, 2, 3])),
        ),
    ];
    for (p, template) in cases {
        Mock::given(method("GET"))
            .and(path(p))
            .respond_with(template)
            .mount(&server)
            .await;
    }
    assert!(
        matches!(client.balance().await, Err(FazerError::Decode(_))),
        "truncated JSON"
    );
    assert!(
        matches!(client.me().await, Err(FazerError::Decode(_))),
        "HTML body"
    );
    assert!(
        matches!(
            client.telegram_stars_quote().await,
            Err(FazerError::Decode(_))
        ),
        "non-decimal money"
    );
    assert!(
        matches!(client.order("ord-1").await, Err(FazerError::Decode(_))),
        "order without id"
    );
    assert!(
        matches!(client.transactions(1, 10).await, Err(FazerError::Decode(_))),
        "array instead of object"
    );
}

#[tokio::test]
async fn undecodable_stars_answer_is_reconciled_not_resent() {
    let (server, client) = setup().await;
    Mock::given(method("POST"))
        .and(path("/api/v2/telegram/stars/buy"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            "{\"ok\":true,\"order\":{\"id\":\"ord-77",
            "application/json",
        ))
        .expect(1)
        .mount(&server)
        .await;
    let now = chrono::Utc::now().to_rfc3339();
    Mock::given(method("GET"))
        .and(path("/api/v2/orders"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "ok": true, "items": [{"id": "ord-77", "kind": "telegram_stars", "status": "processing", "created_at": now}], "total": 1, "page": 1, "limit": 50
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v2/orders/ord-77"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "ok": true, "order": {"id": "ord-77", "kind": "telegram_stars", "status": "processing", "telegramUsername": "@Someone", "quantity": 300, "createdAt": now}
        })))
        .mount(&server)
        .await;
    let order = client.buy_stars("someone", 300).await.expect("reconciled");
    assert_eq!(order.id, "ord-77");
}

#[tokio::test]
async fn two_matching_orders_are_ambiguous() {
    let (server, client) = setup().await;
    Mock::given(method("POST"))
        .and(path("/api/v2/telegram/premium/buy"))
        .respond_with(
            ResponseTemplate::new(503)
                .set_body_json(json!({"ok": false, "error": "Upstream unavailable"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let now = chrono::Utc::now().to_rfc3339();
    Mock::given(method("GET"))
        .and(path("/api/v2/orders"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "ok": true, "total": 2, "page": 1, "limit": 50, "items": [
                {"id": "ord-2", "kind": "telegram_premium", "status": "processing", "created_at": now},
                {"id": "ord-1", "kind": "telegram_premium", "status": "processing", "created_at": now}
            ]
        })))
        .mount(&server)
        .await;
    for id in ["ord-1", "ord-2"] {
        Mock::given(method("GET"))
            .and(path(format!("/api/v2/orders/{id}")))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "ok": true, "order": {"id": id, "kind": "telegram_premium", "status": "processing", "telegramUsername": "@pat", "months": 3, "createdAt": now}
            })))
            .mount(&server)
            .await;
    }
    match client.buy_premium("@pat", 3).await {
        Err(FazerError::Ambiguous { candidates, .. }) => assert_eq!(candidates, ["ord-2", "ord-1"]),
        other => panic!("expected Ambiguous, got {other:?}"),
    }
}

#[tokio::test]
async fn get_5xx_is_retried_up_to_the_limit_then_typed() {
    let (server, client) = setup().await;
    Mock::given(method("GET"))
        .and(path("/api/v2/balance"))
        .respond_with(ResponseTemplate::new(502).set_body_raw("Bad Gateway", "text/plain"))
        .expect(3)
        .mount(&server)
        .await;
    match client.balance().await {
        Err(FazerError::Server { status, message }) => {
            assert_eq!((status, message.as_str()), (502, "Bad Gateway"))
        }
        other => panic!("expected Server, got {other:?}"),
    }
}

#[tokio::test]
async fn ok_false_on_200_and_4xx_bodies_are_api_errors() {
    let (server, client) = setup().await;
    Mock::given(method("GET"))
        .and(path("/api/v2/me"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(
                json!({"ok": false, "error": "Plan expired", "code": "plan_expired"}),
            ),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v2/orders/ord-5"))
        .respond_with(
            ResponseTemplate::new(404)
                .set_body_json(json!({"ok": false, "error": "Order not found"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    match client.me().await {
        Err(FazerError::Api {
            status: 200,
            code,
            message,
        }) => {
            assert_eq!(code.as_deref(), Some("plan_expired"));
            assert_eq!(message, "Plan expired");
        }
        other => panic!("unexpected {other:?}"),
    }
    match client.order("ord-5").await {
        Err(FazerError::Api {
            status: 404,
            code: None,
            message,
        }) => assert_eq!(message, "Order not found"),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn repeated_429_ends_as_rate_limited() {
    let (server, client) = setup().await;
    Mock::given(method("GET"))
        .and(path("/api/v2/telegram/premium"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "0.05")
                .set_body_json(json!({"ok": false, "error": "Too many requests"})),
        )
        .expect(3)
        .mount(&server)
        .await;
    match client.telegram_premium_plans().await {
        Err(FazerError::RateLimited { retry_after }) => {
            assert_eq!(retry_after, Duration::from_millis(50))
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn lenient_shapes_numbers_as_ids_and_missing_optionals() {
    let (server, client) = setup().await;
    Mock::given(method("GET"))
        .and(path("/api/v2/steam-gifts/games/730"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "ok": true, "appid": "730",
            "offers": [{"sub_id": "54029", "name": "CS2", "regions": [{"region": "CIS", "price": 14.99}], "future": null}]
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v2/orders"))
        .and(query_param("page", "2"))
        .and(query_param("limit", "5"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "ok": true, "items": [{"id": 123, "kind": "new_kind", "status": "queued"}, "garbage", {"no_id": true}], "total": "6"
        })))
        .mount(&server)
        .await;
    let game = client.steam_gift_game(730).await.expect("game");
    assert_eq!(game.appid, 730);
    assert_eq!(game.offers[0].sub_id, 54029);
    assert_eq!(
        game.offers[0].regions[0].price,
        "14.99".parse().expect("decimal")
    );
    let page = client.orders(2, 5).await.expect("orders");
    assert_eq!(page.total, 6);
    assert_eq!(page.items.len(), 1, "malformed rows are skipped");
    assert_eq!(page.items[0].id, "123");
    assert_eq!(page.items[0].kind, OrderKind::Unknown("new_kind".into()));
    assert_eq!(page.items[0].status, OrderStatus::Unknown("queued".into()));
}
