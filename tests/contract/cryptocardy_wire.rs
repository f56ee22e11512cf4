//! The CryptoCardy client against wiremock: exact request shapes (query, `X-Seed`,
//! `X-Idempotency-Key`, exact amounts), every card state read, each documented error
//! code, 429 / 5xx / malformed answers, retries only when replay-safe, the seed's rate
//! limits kept on our side, and webhook signatures.

use std::str::FromStr;
use std::time::Duration;

use kiosk::providers::cryptocardy::client::{
    CardFilter, CardNetwork, CardSeed, CardyError, ClientOptions, CryptoCardyClient, IssueRequest,
    RateLimits, RemoteCardState, RetryPolicy, TransactionFilter, TransactionKind, sign_webhook,
    verify_webhook,
};
use kiosk::providers::ratelimit::Limit;
use rust_decimal::Decimal;
use serde_json::json;
use url::Url;
use wiremock::matchers::{body_string, header, method, path, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const SEED: &str = "c4f4-6e88-036c-761c";

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).expect("decimal")
}

fn seed() -> CardSeed {
    CardSeed::new(SEED).expect("seed")
}

fn options() -> ClientOptions {
    ClientOptions {
        timeout: Duration::from_millis(400),
        limits: RateLimits::default(),
        retry: RetryPolicy {
            max_attempts: 3,
            backoff: Duration::from_millis(5),
            max_retry_after: Duration::from_secs(1),
        },
    }
}

fn client(server: &MockServer) -> CryptoCardyClient {
    client_with(server, options())
}

fn client_with(server: &MockServer, options: ClientOptions) -> CryptoCardyClient {
    CryptoCardyClient::new(
        Url::parse(&format!("{}/v1/api", server.uri())).expect("url"),
        options,
    )
    .expect("client")
}

fn summary(status: &str) -> serde_json::Value {
    json!({
        "id": "card_8xK2m9Lp4q", "bin_id": "491653", "network": "visa", "last4": "2039",
        "status": status, "balance": 487.50, "spending_limit": 2000.00, "total_spent": 12.50,
        "transaction_count": 3, "label": "Meta Ads Campaign #12",
        "metadata": {"campaign": "spring_2026"}, "created_at": "2026-04-15T12:00:00Z",
        "expires_at": "2029-04-15T23:59:59Z", "last_used_at": "2026-04-15T14:32:00Z"
    })
}

fn raw(body: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(body.as_bytes().to_vec(), "application/json")
}

#[tokio::test]
async fn issue_sends_the_query_and_key_and_reads_the_seeds_example() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/api"))
        .and(query_param("card", "visa"))
        .and(query_param("asset", "BTC"))
        .and(header("X-Idempotency-Key", "issue-key-1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "success": true, "request_id": "req_bb0ade3fea54", "seed": "a1b2-c3d4-e5f6-7890",
            "card": {"state": "pending_top_up", "network": "visa",
                     "card_number": "4916 5301 2345 2039", "cvv_masked": "601", "expiry": "04/29"},
            "wallet": {"asset": "BTC", "address": "bc1qag7fuerpyndyxgllx90vsmpk2ruku0qjg5aq54"},
            "created_at": "2026-05-22T17:57:34+00:00"
        })))
        .expect(1)
        .mount(&server)
        .await;
    let issued = client(&server)
        .issue_card(
            &IssueRequest {
                card: Some(CardNetwork::Visa),
                asset: Some("BTC".into()),
                network: None,
            },
            "issue-key-1",
        )
        .await
        .expect("issued");
    assert_eq!(issued.seed.expose(), "a1b2-c3d4-e5f6-7890");
    assert_eq!(issued.state, RemoteCardState::PendingTopUp);
    assert_eq!(issued.last4.as_deref(), Some("2039"));
    assert_eq!(issued.card_id, None);
    assert_eq!(issued.wallet.asset, "BTC");
    assert_eq!(
        issued.wallet.address,
        "bc1qag7fuerpyndyxgllx90vsmpk2ruku0qjg5aq54"
    );
    let printed = format!("{issued:?}");
    assert!(
        !printed.contains("a1b2-c3d4") && !printed.contains("4916 5301"),
        "{printed}"
    );
    // Issuing carries no seed: there is none yet.
    let requests = server.received_requests().await.expect("recorded");
    assert!(requests[0].headers.get("x-seed").is_none());
}

#[tokio::test]
async fn issue_without_a_seed_or_wallet_is_a_decode_error() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/api"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"success": true, "card": {}})),
        )
        .mount(&server)
        .await;
    let err = client(&server)
        .issue_card(&IssueRequest::default(), "k")
        .await
        .expect_err("no seed");
    assert!(matches!(err, CardyError::Decode(_)), "{err:?}");
    assert!(
        err.is_ambiguous(),
        "an unreadable 2xx may have created a card"
    );
}

#[tokio::test]
async fn issue_is_retried_after_a_5xx_only_with_the_same_key() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/api"))
        .respond_with(ResponseTemplate::new(502))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/api"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "seed": "s-1", "card": {"id": "card_1", "state": "pending_top_up"},
            "wallet": {"asset": "SOL", "address": "So1ana", "network": "solana"}
        })))
        .mount(&server)
        .await;
    let issued = client(&server)
        .issue_card(
            &IssueRequest {
                card: None,
                asset: Some("SOL".into()),
                network: Some("solana".into()),
            },
            "same-key",
        )
        .await
        .expect("issued on retry");
    assert_eq!(issued.card_id.as_deref(), Some("card_1"));
    assert_eq!(issued.wallet.network.as_deref(), Some("solana"));
    let requests = server.received_requests().await.expect("recorded");
    assert_eq!(requests.len(), 2);
    for r in &requests {
        assert_eq!(r.headers.get("x-idempotency-key").unwrap(), "same-key");
        assert!(r.url.query().unwrap_or("").contains("network=solana"));
    }
}

#[tokio::test]
async fn every_card_state_is_read_with_exact_amounts() {
    let server = MockServer::start().await;
    for (id, status) in [
        ("card_a", "active"),
        ("card_f", "frozen"),
        ("card_t", "terminated"),
        ("card_p", "pending_top_up"),
        ("card_x", "under_review"),
    ] {
        let mut body = summary(status);
        body["id"] = json!(id);
        Mock::given(method("GET"))
            .and(path(format!("/v1/api/cards/{id}")))
            .and(header("X-Seed", SEED))
            .respond_with(ResponseTemplate::new(200).set_body_json(body))
            .mount(&server)
            .await;
    }
    let c = client(&server);
    let expected = [
        ("card_a", RemoteCardState::Active),
        ("card_f", RemoteCardState::Frozen),
        ("card_t", RemoteCardState::Terminated),
        ("card_p", RemoteCardState::PendingTopUp),
        ("card_x", RemoteCardState::Other("under_review".into())),
    ];
    for (id, state) in expected {
        let card = c.card(&seed(), id).await.expect("card");
        assert_eq!(card.state, state, "{id}");
        assert_eq!(card.balance, Some(dec("487.50")));
        assert_eq!(card.spending_limit, Some(dec("2000.00")));
        assert_eq!(card.transaction_count, Some(3));
        assert_eq!(card.last4.as_deref(), Some("2039"));
    }
    // Exact decimal text, never through f64.
    Mock::given(method("GET"))
        .and(path("/v1/api/cards/card_big"))
        .respond_with(raw(
            r#"{"id":"card_big","status":"active","balance":12345678901234.123456789}"#,
        ))
        .mount(&server)
        .await;
    let big = c.card(&seed(), "card_big").await.expect("card");
    assert_eq!(big.balance.unwrap().to_string(), "12345678901234.123456789");
}

#[tokio::test]
async fn list_details_transactions_3ds_and_wallet() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/api/cards"))
        .and(query_param("status", "active"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [summary("active")],
            "pagination": {"page": 1, "per_page": 25, "total": 142, "total_pages": 6}
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/api/cards/card_8xK2m9Lp4q/details"))
        .and(header("X-Seed", SEED))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "card_8xK2m9Lp4q", "pan": "4916531288472039", "cvv": "847",
            "exp_month": 4, "exp_year": 2029, "holder_name": "ANONYMOUS",
            "billing_address": {"line1": "123 Privacy Street", "city": "Wilmington",
                                "state": "DE", "zip": "19801", "country": "US"}
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/api/transactions"))
        .and(query_param("card_id", "card_8xK2m9Lp4q"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [{"id": "txn_a1b2c3d4", "card_id": "card_8xK2m9Lp4q", "type": "settlement",
                      "amount": -12.50, "currency": "USD",
                      "merchant": {"name": "FACEBK ADS", "category": "advertising", "mcc": "7311", "country": "US"},
                      "balance_after": 487.50, "created_at": "2026-04-15T14:32:00Z"},
                     {"id": "txn_2", "type": "decline", "amount": 99.00, "merchant": "SPOTIFY"}],
            "pagination": {"page": 1, "per_page": 50, "total": 328}
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/api/3ds"))
        .and(query_param("status", "pending"))
        .and(query_param("card_id", "card_8xK2m9Lp4q"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": [{
            "id": "3ds_m4n5o6p7", "card_id": "card_8xK2m9Lp4q", "merchant": "SPOTIFY",
            "amount": 9.99, "otp": "847291", "status": "pending",
            "expires_at": "2026-04-15T15:05:00Z", "created_at": "2026-04-15T15:00:00Z"}]})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/api/wallet/balance"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "balance": 1312.50, "currency": "USD", "pending_deposits": 500.00,
            "total_deposited": 15000.00, "total_spent": 13687.50, "cards_active": 8,
            "cards_total_balance": 2450.00})))
        .mount(&server)
        .await;
    let c = client(&server);
    let page = c
        .list_cards(
            &seed(),
            &CardFilter {
                status: Some("active".into()),
                ..CardFilter::default()
            },
        )
        .await
        .expect("list");
    assert_eq!(page.data.len(), 1);
    assert_eq!(page.total, Some(142));

    let details = c
        .card_details(&seed(), "card_8xK2m9Lp4q")
        .await
        .expect("details");
    assert_eq!(details.pan.expose(), "4916531288472039");
    assert_eq!(details.cvv.expose(), "847");
    assert_eq!((details.exp_month, details.exp_year), (4, 2029));
    assert_eq!(
        details
            .billing_address
            .as_ref()
            .and_then(|a| a.zip.as_deref()),
        Some("19801")
    );
    let printed = format!("{details:?}");
    assert!(
        !printed.contains("4916531288472039") && !printed.contains("847"),
        "{printed}"
    );

    let txns = c
        .transactions(
            &seed(),
            &TransactionFilter {
                card_id: Some("card_8xK2m9Lp4q".into()),
                ..TransactionFilter::default()
            },
        )
        .await
        .expect("transactions");
    assert_eq!(txns.data[0].kind, TransactionKind::Settlement);
    assert_eq!(txns.data[0].amount, dec("-12.50"));
    assert_eq!(txns.data[0].merchant.as_deref(), Some("FACEBK ADS"));
    assert_eq!(txns.data[1].kind, TransactionKind::Decline);
    assert_eq!(txns.data[1].merchant.as_deref(), Some("SPOTIFY"));

    let challenges = c
        .pending_3ds(&seed(), Some("card_8xK2m9Lp4q"))
        .await
        .expect("3ds");
    assert_eq!(challenges[0].otp.expose(), "847291");
    assert_eq!(challenges[0].amount, Some(dec("9.99")));
    assert!(!format!("{challenges:?}").contains("847291"));

    let wallet = c.wallet_balance(&seed()).await.expect("wallet");
    assert_eq!(wallet.balance, dec("1312.50"));
    assert_eq!(wallet.pending_deposits, Some(dec("500.00")));
}

#[tokio::test]
async fn freeze_fund_withdraw_terminate_send_keys_and_exact_amounts() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/api/cards/card_1/freeze"))
        .and(header("X-Seed", SEED))
        .and(header("X-Idempotency-Key", "k-freeze"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"id": "card_1", "status": "frozen", "frozen_at": "2026-04-15T15:00:00Z"}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/api/cards/card_1/unfreeze"))
        .respond_with(ResponseTemplate::new(200).set_body_json(summary("active")))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/api/cards/card_1/fund"))
        .and(body_string(r#"{"amount":200.5}"#))
        .and(header("content-type", "application/json"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "card_1", "previous_balance": 487.50, "funded_amount": 200.50,
            "new_balance": 688.00, "wallet_balance": 1312.50})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/api/cards/card_1/withdraw"))
        .and(body_string(r#"{"amount":0.01}"#))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "card_1", "withdrawn_amount": 0.01, "balance": 687.99, "wallet_balance": 1312.51})))
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/v1/api/cards/card_1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "card_1", "status": "terminated", "refunded_amount": 487.50,
            "terminated_at": "2026-04-15T16:00:00Z"})))
        .mount(&server)
        .await;
    let c = client(&server);
    let frozen = c
        .freeze(&seed(), "card_1", "k-freeze")
        .await
        .expect("freeze");
    assert_eq!(frozen.state, RemoteCardState::Frozen);
    assert!(frozen.at.is_some());
    let active = c
        .unfreeze(&seed(), "card_1", "k-un")
        .await
        .expect("unfreeze");
    assert_eq!(active.state, RemoteCardState::Active);
    let funded = c
        .fund(&seed(), "card_1", dec("200.50"), "k-fund")
        .await
        .expect("fund");
    assert_eq!(funded.amount, Some(dec("200.50")));
    assert_eq!(funded.new_balance, Some(dec("688.00")));
    let withdrawn = c
        .withdraw(&seed(), "card_1", dec("0.01"), "k-w")
        .await
        .expect("withdraw");
    assert_eq!(withdrawn.new_balance, Some(dec("687.99")));
    assert_eq!(withdrawn.wallet_balance, Some(dec("1312.51")));
    let done = c
        .terminate(&seed(), "card_1", "k-t")
        .await
        .expect("terminate");
    assert_eq!(done.state, RemoteCardState::Terminated);
    assert_eq!(done.refunded_amount, Some(dec("487.50")));
    // Bad input never leaves the process.
    assert!(matches!(
        c.fund(&seed(), "card_1", dec("-1"), "k").await,
        Err(CardyError::InvalidInput(_))
    ));
    assert!(matches!(
        c.card(&seed(), "../wallet/balance").await,
        Err(CardyError::InvalidInput(_))
    ));
}

#[tokio::test]
async fn documented_error_codes_are_typed() {
    let server = MockServer::start().await;
    let cases = [
        (400, "insufficient_funds", "/v1/api/cards/c400/fund"),
        (400, "invalid_amount", "/v1/api/cards/c401/fund"),
        (401, "unauthorized", "/v1/api/cards/c402/fund"),
        (404, "not_found", "/v1/api/cards/c403/fund"),
    ];
    for (status, code, p) in cases {
        Mock::given(method("POST"))
            .and(path(p))
            .respond_with(ResponseTemplate::new(status).set_body_json(json!({
                "error": code, "message": "Your wallet balance is too low to fund this card.",
                "code": status, "request_id": "req_7f8a9b2c3d4e"})))
            .expect(1)
            .mount(&server)
            .await;
    }
    let c = client(&server);
    let fund = |id: &'static str| {
        let c = c.clone();
        async move { c.fund(&seed(), id, dec("10"), "k").await }
    };
    assert!(matches!(
        fund("c400").await,
        Err(CardyError::InsufficientFunds { .. })
    ));
    match fund("c401").await {
        Err(CardyError::Rejected { status, code, .. }) => {
            assert_eq!((status, code.as_str()), (400, "invalid_amount"));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        fund("c402").await,
        Err(CardyError::Unauthorized { .. })
    ));
    assert!(matches!(
        fund("c403").await,
        Err(CardyError::NotFound { .. })
    ));
    // `expect(1)` on each mock: a refusal is never retried.
}

#[tokio::test]
async fn rate_limits_are_retried_after_retry_after_and_then_reported() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/api/cards/card_1"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "0.05"))
        .up_to_n_times(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/api/cards/card_1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(summary("active")))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/api/cards/card_2"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "120"))
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server);
    let started = std::time::Instant::now();
    c.card(&seed(), "card_1").await.expect("after two 429s");
    assert!(
        started.elapsed() >= Duration::from_millis(80),
        "waited {:?}",
        started.elapsed()
    );
    match c.card(&seed(), "card_2").await {
        Err(CardyError::RateLimited { retry_after }) => {
            assert_eq!(retry_after, Some(Duration::from_secs(120)));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_write_is_retried_after_a_timeout_with_the_same_key_only() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/api/cards/card_1/fund"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"id": "card_1", "funded_amount": 5}))
                .set_delay(Duration::from_millis(800)),
        )
        .mount(&server)
        .await;
    let err = client(&server)
        .fund(&seed(), "card_1", dec("5"), "fund-key-9")
        .await
        .expect_err("every attempt times out");
    assert!(matches!(err, CardyError::Timeout), "{err:?}");
    assert!(err.is_ambiguous());
    let requests: Vec<Request> = server.received_requests().await.expect("recorded");
    assert_eq!(requests.len(), 3, "retried with its key");
    assert!(
        requests
            .iter()
            .all(|r| r.headers.get("x-idempotency-key").unwrap() == "fund-key-9")
    );
}

#[tokio::test]
async fn malformed_and_empty_answers_are_decode_errors() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/api/cards/card_1"))
        .respond_with(raw("{not json"))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/api/cards/card_2"))
        .respond_with(raw(r#"{"id":"card_2"}"#))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/api/cards/card_3/details"))
        .respond_with(raw(
            r#"{"id":"card_3","pan":"12","cvv":"1","exp_month":4,"exp_year":2029}"#,
        ))
        .mount(&server)
        .await;
    let c = client(&server);
    assert!(matches!(
        c.card(&seed(), "card_1").await,
        Err(CardyError::Decode(_))
    ));
    assert!(matches!(
        c.card(&seed(), "card_2").await,
        Err(CardyError::Decode(_))
    ));
    assert!(matches!(
        c.card_details(&seed(), "card_3").await,
        Err(CardyError::Decode(_))
    ));
}

#[tokio::test]
async fn the_seeds_limits_are_kept_before_requests_leave() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/api/cards/card_1/details"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "card_1", "pan": "4242424242424242", "cvv": "123", "exp_month": 1, "exp_year": 2030})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/api/cards/card_1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(summary("active")))
        .mount(&server)
        .await;
    let window = Duration::from_millis(300);
    let c = client_with(
        &server,
        ClientOptions {
            limits: RateLimits {
                details: Limit::new(2, window),
                ..RateLimits::default()
            },
            ..options()
        },
    );
    assert_eq!(RateLimits::default().details, Limit::per_minute(30));
    assert_eq!(RateLimits::default().card_creations, Limit::per_minute(50));
    assert_eq!(RateLimits::default().per_minute, Limit::per_minute(1_000));
    let started = std::time::Instant::now();
    c.card_details(&seed(), "card_1").await.expect("1");
    c.card_details(&seed(), "card_1").await.expect("2");
    // Summaries are not details: not held back.
    c.card(&seed(), "card_1").await.expect("summary");
    assert!(started.elapsed() < window);
    c.card_details(&seed(), "card_1").await.expect("3");
    assert!(
        started.elapsed() >= window,
        "the third details call left after {:?}",
        started.elapsed()
    );
}

#[test]
fn webhook_signatures_are_hmac_sha256_hex_of_the_raw_body() {
    let body = br#"{"id":"evt_1","event":"card.funded","data":{"card_id":"card_1"}}"#;
    // Reference value from Python's hmac (the seed's verify_webhook).
    let signature = sign_webhook(b"whsec_test", body);
    assert_eq!(
        signature,
        "65caa55f80e08e8bb728a22d1ded6fb795bdf422243d965d367685a589af484c"
    );
    assert!(verify_webhook(b"whsec_test", body, &signature));
    assert!(verify_webhook(
        b"whsec_test",
        body,
        &signature.to_uppercase()
    ));
    assert!(!verify_webhook(b"whsec_other", body, &signature));
    let mut altered = body.to_vec();
    altered[10] ^= 1;
    assert!(!verify_webhook(b"whsec_test", &altered, &signature));
    assert!(!verify_webhook(b"whsec_test", body, ""));
}
