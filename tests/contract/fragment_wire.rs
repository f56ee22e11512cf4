//! The Fragment client against wiremock: exact request shapes, every error code of the
//! seed's table, other error shapes, broken bodies, and secrets kept out of Debug.

use std::str::FromStr;
use std::time::Duration;

use base64::Engine as _;
use kiosk::providers::fragment::client::{
    FragmentClient, FragmentCookies, FragmentError, FragmentErrorCode, PremiumMonths, QueueState,
    RetryPolicy, WalletSeed,
};
use rust_decimal::Decimal;
use serde_json::json;
use url::Url;
use wiremock::matchers::{body_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const PHRASE: &str =
    "abandon ability able about above absent absorb abstract absurd abuse access accident";
const COOKIES: &str = "stel_ssid=s3cr3t; stel_token=t0k3n";

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).expect("decimal")
}

fn client(server: &MockServer, cookies: bool, attempts: u32) -> FragmentClient {
    FragmentClient::new(
        Url::parse(&server.uri()).expect("url"),
        WalletSeed::new(PHRASE),
        cookies.then(|| FragmentCookies::new(COOKIES)),
        Duration::from_millis(400),
    )
    .expect("client")
    .with_retry_policy(RetryPolicy {
        max_attempts: attempts,
        backoff: Duration::from_millis(5),
        max_retry_after: Duration::from_secs(1),
    })
}

fn queued() -> ResponseTemplate {
    ResponseTemplate::new(200)
        .set_body_json(json!({"request_id": "req_1", "status": "pending", "position": 3}))
}

#[tokio::test]
async fn request_shapes_kyc() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v1/stars/create"))
        .and(body_json(json!({"username": "@alice", "amount": 50, "fragment_cookies": b64(COOKIES)})))
        .respond_with(ResponseTemplate::new(200).set_body_string(
            r#"{"success": true, "data": {"order_id": 77, "total_cost": 0.30000000000000004,
                "expires_at": "2030-01-01T00:10:00Z", "status": "created", "extra": {"ignored": [1, 2]}}}"#,
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v1/stars/pay"))
        .and(body_json(
            json!({"order_id": "77", "seed": b64(PHRASE), "fragment_cookies": b64(COOKIES)}),
        ))
        .respond_with(queued())
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v1/stars/buy"))
        .and(body_json(json!({"username": "@bob", "amount": 100, "seed": b64(PHRASE), "fragment_cookies": b64(COOKIES)})))
        .respond_with(queued())
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v1/premium/buy"))
        .and(body_json(json!({"username": "@bob", "months": 12, "seed": b64(PHRASE), "fragment_cookies": b64(COOKIES)})))
        .respond_with(queued())
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v1/premium/check-eligibility"))
        .and(body_json(json!({"username": "@bob", "months": 3})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"eligible": "true"})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/wallet/balance"))
        .and(header("X-Seed", b64(PHRASE).as_str()))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string(r#"{"balance": "12.345678901", "address": "UQx"}"#),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/transactions"))
        .and(query_param("limit", "5"))
        .and(query_param("offset", "10"))
        .and(header("X-Seed", b64(PHRASE).as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_string(
            r#"[{"id": 9, "amount": 1.5655, "created_at": 1700000000, "type": "stars"}, {"weird": true}]"#,
        ))
        .expect(1)
        .mount(&server)
        .await;

    let c = client(&server, true, 1);
    let order = c.create_stars_order("  @alice ", 50).await.expect("create");
    assert_eq!(order.order_id, "77");
    assert_eq!(
        order.cost,
        dec("0.30000000000000004"),
        "money keeps the JSON number's text"
    );
    assert!(order.expires_at.is_some());
    let q = c.pay_order(&order.order_id).await.expect("pay");
    assert_eq!(
        (q.request_id.as_str(), q.position, q.state),
        ("req_1", Some(3), QueueState::Pending)
    );
    c.buy_stars("bob", 100).await.expect("buy");
    c.buy_premium("bob", PremiumMonths::Twelve)
        .await
        .expect("premium");
    assert!(
        c.check_premium_eligibility("bob", PremiumMonths::Three)
            .await
            .expect("check")
            .eligible
    );
    let w = c.wallet_balance().await.expect("wallet");
    assert_eq!(
        (w.balance, w.currency.as_str()),
        (dec("12.345678901"), "TON")
    );
    let txs = c.transactions(5, 10).await.expect("txs");
    assert_eq!(txs.len(), 2);
    assert_eq!(txs[0].amount, Some(dec("1.5655")));
    assert_eq!(
        txs[0].created_at.map(|t| t.timestamp()),
        Some(1_700_000_000)
    );
    assert!(txs[1].amount.is_none());
}

#[tokio::test]
async fn non_kyc_sends_no_cookies_and_reads_rate_shapes() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v1/stars/create"))
        .and(body_json(json!({"username": "@alice", "amount": 50})))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"id": "o1", "cost": "0.7825"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/commission/rates"))
        .respond_with(
            ResponseTemplate::new(200).set_body_string(
                r#"{"rates": {"kyc": {"percent": 0}, "no_kyc": {"percent": 0.25}}}"#,
            ),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/prices"))
        .respond_with(ResponseTemplate::new(200).set_body_string(
            r#"{"stars": "0.0149", "premium": [{"months": 3, "price": 11.5}, {"months": 6, "price": "15.3"}]}"#,
        ))
        .mount(&server)
        .await;
    let c = client(&server, false, 1);
    assert_eq!(
        c.create_stars_order("alice", 50)
            .await
            .expect("create")
            .cost,
        dec("0.7825")
    );
    assert_eq!(c.commission_percent().await.expect("rate"), dec("0.25"));
    let p = c.prices().await.expect("prices");
    assert_eq!(p.star_price, dec("0.0149"));
    assert_eq!(p.stars_cost(100), dec("1.49"));
    assert_eq!(p.premium_price(PremiumMonths::Three), Some(dec("11.5")));
    assert_eq!(p.premium_price(PremiumMonths::Twelve), None);
}

#[tokio::test]
async fn every_error_code_is_mapped() {
    let server = MockServer::start().await;
    let c = client(&server, false, 1);
    for code in FragmentErrorCode::ALL {
        server.reset().await;
        let status = code.http_status().expect("documented status");
        Mock::given(method("GET"))
            .and(path("/api/v1/orders/o1"))
            .respond_with(ResponseTemplate::new(status).set_body_json(json!({
                "success": false,
                "error": {"code": code.as_str(), "message": "text", "details": {"field": "x"}}
            })))
            .mount(&server)
            .await;
        let e = c.order_status("o1").await.expect_err("error");
        if code == FragmentErrorCode::RateLimitExceeded {
            assert!(
                matches!(e, FragmentError::RateLimited { .. }),
                "{code}: {e:?}"
            );
        } else {
            match &e {
                FragmentError::Api {
                    status: s,
                    code: got,
                    message,
                } => {
                    assert_eq!((*s, got, message.as_str()), (status, &code, "text"));
                }
                other => panic!("{code}: {other:?}"),
            }
        }
        assert_eq!(e.code(), Some(&code));
        assert_eq!(e.retryable(), code.retryable(), "{code}");
    }
    // The classification tables.
    let retryable: Vec<_> = FragmentErrorCode::ALL
        .iter()
        .filter(|c| c.retryable())
        .map(|c| c.as_str())
        .collect();
    assert_eq!(
        retryable,
        [
            "QUEUE_TIMEOUT",
            "RATE_LIMIT_EXCEEDED",
            "INTERNAL_ERROR",
            "FRAGMENT_ERROR",
            "SERVICE_UNAVAILABLE"
        ]
    );
    let alerts: Vec<_> = FragmentErrorCode::ALL
        .iter()
        .filter(|c| c.alerts_admins())
        .map(|c| c.as_str())
        .collect();
    assert_eq!(
        alerts,
        [
            "INVALID_SEED",
            "INVALID_COOKIES",
            "INSUFFICIENT_BALANCE",
            "DEBT_LIMIT_EXCEEDED",
            "OWNER_COOKIES_NOT_CONFIGURED",
            "OWNER_COOKIES_EXPIRED"
        ]
    );
    assert_eq!(
        FragmentErrorCode::UserNotFound.buyer_reason(),
        "user_not_found"
    );
    assert_eq!(
        FragmentErrorCode::PremiumAlreadyActive.buyer_reason(),
        "premium_already_active"
    );
    assert_eq!(
        FragmentErrorCode::ServiceUnavailable.buyer_reason(),
        "provider_unavailable"
    );
    assert_eq!(
        FragmentErrorCode::OwnerCookiesExpired.buyer_reason(),
        "provider_unavailable"
    );
    assert_eq!(
        FragmentErrorCode::parse("user_not_found"),
        FragmentErrorCode::UserNotFound
    );
    let unknown = FragmentErrorCode::parse("NEW_THING");
    assert_eq!(unknown, FragmentErrorCode::Unknown("NEW_THING".into()));
    assert!(!unknown.retryable() && !unknown.alerts_admins());
    assert_eq!(unknown.buyer_reason(), "provider_error");
}

#[tokio::test]
async fn other_error_shapes_are_read() {
    let server = MockServer::start().await;
    let c = client(&server, false, 1);
    let cases = [
        (
            404,
            json!({"detail": {"code": "USER_NOT_FOUND", "message": "nope"}}),
            FragmentErrorCode::UserNotFound,
        ),
        (
            400,
            json!({"code": "ORDER_EXPIRED", "message": "late"}),
            FragmentErrorCode::OrderExpired,
        ),
        (
            400,
            json!({"error": "INVALID_SEED"}),
            FragmentErrorCode::InvalidSeed,
        ),
        (
            400,
            json!({"detail": "Something odd"}),
            FragmentErrorCode::ValidationError,
        ),
        (
            418,
            json!({"error": {"code": "BRAND_NEW"}}),
            FragmentErrorCode::Unknown("BRAND_NEW".into()),
        ),
        (
            200,
            json!({"success": false, "error": {"code": "INSUFFICIENT_BALANCE"}}),
            FragmentErrorCode::InsufficientBalance,
        ),
    ];
    for (status, body, want) in cases {
        server.reset().await;
        Mock::given(method("GET"))
            .and(path("/api/v1/orders/o1"))
            .respond_with(ResponseTemplate::new(status).set_body_json(body.clone()))
            .mount(&server)
            .await;
        let e = c.order_status("o1").await.expect_err("error");
        assert_eq!(e.code(), Some(&want), "{body}");
    }
    // A body-less 503 still has a code.
    server.reset().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503).set_body_string("<html>bad gateway</html>"))
        .mount(&server)
        .await;
    let e = c.order_status("o1").await.expect_err("503");
    assert_eq!(e.code(), Some(&FragmentErrorCode::ServiceUnavailable));
}

#[tokio::test]
async fn broken_bodies_are_decode_errors() {
    let server = MockServer::start().await;
    let c = client(&server, false, 1);
    let bodies = [
        "{\"balance\": 1",
        "<html>oops</html>",
        "",
        "{\"balance\": \"abc\"}",
        "{\"balance\": {\"nested\": true}}",
        "[1, 2, 3]",
        "{\"balance\": 1e}",
        "\u{0}\u{1}",
    ];
    for body in bodies {
        server.reset().await;
        Mock::given(method("GET"))
            .and(path("/api/v1/wallet/balance"))
            .respond_with(ResponseTemplate::new(200).set_body_string(body))
            .mount(&server)
            .await;
        let e = c.wallet_balance().await.expect_err(body);
        assert!(matches!(e, FragmentError::Decode(_)), "{body:?}: {e:?}");
    }
    // A broken answer to a payment is an unknown outcome, not a plain decode error.
    server.reset().await;
    Mock::given(method("POST"))
        .and(path("/api/v1/stars/pay"))
        .respond_with(ResponseTemplate::new(200).set_body_string("{\"request_"))
        .expect(1)
        .mount(&server)
        .await;
    let e = c.pay_order("o1").await.expect_err("broken");
    assert!(
        matches!(&e, FragmentError::Ambiguous { cause, .. } if matches!(**cause, FragmentError::Decode(_)))
    );
    // 200 without the fields a payment needs is ambiguous as well.
    server.reset().await;
    Mock::given(method("POST"))
        .and(path("/api/v1/stars/pay"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"status": "pending"})))
        .mount(&server)
        .await;
    assert!(c.pay_order("o1").await.expect_err("no id").is_ambiguous());
}

#[tokio::test]
async fn payments_are_never_retried_reads_are() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v1/stars/pay"))
        .respond_with(
            ResponseTemplate::new(500).set_body_json(json!({"error": {"code": "INTERNAL_ERROR"}})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v1/stars/buy"))
        .respond_with(queued().set_delay(Duration::from_secs(2)))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v1/stars/create"))
        .respond_with(
            ResponseTemplate::new(502).set_body_json(json!({"error": {"code": "FRAGMENT_ERROR"}})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/queue"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(2)
        .with_priority(1)
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/queue"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"length": 4})))
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server, false, 3);
    let e = c.pay_order("o1").await.expect_err("500");
    assert!(matches!(&e, FragmentError::Ambiguous { order_id: Some(id), .. } if id == "o1"));
    let e = c.buy_stars("alice", 50).await.expect_err("timeout");
    assert!(
        matches!(&e, FragmentError::Ambiguous { cause, order_id: None } if matches!(**cause, FragmentError::Timeout))
    );
    let e = c.create_stars_order("alice", 50).await.expect_err("502");
    assert!(!e.is_ambiguous(), "creating an order moves no money");
    assert_eq!(e.code(), Some(&FragmentErrorCode::FragmentError));
    assert_eq!(c.queue_length().await.expect("third try"), 4);
    // `expect` counts are verified when the server drops.
}

#[tokio::test]
async fn debug_output_hides_secrets() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(400).set_body_json(json!({"error": {"code": "INVALID_SEED"}})),
        )
        .mount(&server)
        .await;
    let c = client(&server, true, 1);
    let e = c.pay_order("o1").await.expect_err("seed");
    let seed = WalletSeed::new(PHRASE);
    let cookies = FragmentCookies::new(COOKIES);
    let printed = format!("{c:?} {e:?} {e} {seed:?} {cookies:?}");
    for secret in [
        PHRASE,
        "abandon",
        COOKIES,
        "s3cr3t",
        &b64(PHRASE),
        &b64(COOKIES),
    ] {
        assert!(!printed.contains(secret), "leaked {secret:?} in {printed}");
    }
    assert!(printed.contains("***"));
    assert_eq!(seed.expose_secret(), PHRASE);
    assert_eq!(WalletSeed::from_base64(&b64(PHRASE)).expect("b64"), seed);
    assert!(FragmentCookies::from_base64("%%%").is_err());
}
