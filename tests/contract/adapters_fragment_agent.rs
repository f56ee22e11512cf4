//! The Fragment and Agent adapters (the `Provider` trait) against their sandbox fakes
//! over loopback: catalog → recipient check → quote → order → delivered, and the
//! failures the engine must be able to tell apart.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use chrono::Utc;
use kiosk::domain::{FieldSpec, Money, OrderId, PlayerFields, ProductFamily, TelegramUsername};
use kiosk::providers::agent::AgentProvider;
use kiosk::providers::agent::client::{AgentApiKey, AgentClient, RetryPolicy as AgentRetry};
use kiosk::providers::fragment::FragmentProvider;
use kiosk::providers::fragment::client::{
    FragmentClient, RetryPolicy as FragmentRetry, WalletSeed,
};
use kiosk::providers::{
    BuyerReason, OrderRequest, ProductRef, Provider, ProviderError, ProviderId,
    ProviderOrderStatus, Recipient, RecipientCheck, RecipientKind,
};
use kiosk::sandbox::agent::{self, AgentSandbox, AgentSandboxOptions};
use kiosk::sandbox::fragment::{self, FragmentSandbox, FragmentSandboxOptions};
use rust_decimal::Decimal;

/// Twelve words, as the fake (and a real TON wallet) wants.
const SEED: &str =
    "abandon ability able about above absent absorb abstract absurd abuse access accident";

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

async fn fragment_fake() -> FragmentSandbox {
    fragment::start(
        "127.0.0.1:0".parse().unwrap(),
        FragmentSandboxOptions {
            processing_delay: Duration::from_millis(30),
            ..Default::default()
        },
    )
    .await
    .unwrap()
}

fn fragment_provider(fake: &FragmentSandbox, timeout: Duration) -> FragmentProvider {
    let client = FragmentClient::new(fake.base_url(), WalletSeed::new(SEED), None, timeout)
        .unwrap()
        .with_retry_policy(FragmentRetry {
            max_attempts: 2,
            backoff: Duration::from_millis(10),
            ..Default::default()
        });
    FragmentProvider::from_client(client)
}

fn stars_request(username: &str, quantity: u32) -> OrderRequest {
    OrderRequest {
        product: ProductRef::telegram_stars(ProviderId::Fragment),
        recipient: Recipient::TelegramUsername(TelegramUsername::parse(username).unwrap()),
        quantity,
        amount: None,
    }
}

fn premium_request(username: &str, months: u8) -> OrderRequest {
    OrderRequest {
        product: ProductRef::telegram_premium(ProviderId::Fragment, months),
        recipient: Recipient::TelegramUsername(TelegramUsername::parse(username).unwrap()),
        quantity: 1,
        amount: None,
    }
}

async fn settle(provider: &dyn Provider, id: &str) -> ProviderOrderStatus {
    for _ in 0..100 {
        match provider.order_status(id).await.unwrap() {
            ProviderOrderStatus::Pending => tokio::time::sleep(Duration::from_millis(20)).await,
            done => return done,
        }
    }
    panic!("order {id} never settled");
}

#[tokio::test]
async fn fragment_stars_from_offer_to_delivery() {
    let fake = fragment_fake().await;
    let provider = fragment_provider(&fake, Duration::from_secs(2));
    assert_eq!(
        provider.families(),
        vec![ProductFamily::TelegramStars, ProductFamily::TelegramPremium]
    );
    let offers = provider
        .offers(ProductFamily::TelegramStars, "telegram")
        .await
        .unwrap();
    assert_eq!(offers.len(), 1);
    assert_eq!(
        (offers[0].min_quantity, offers[0].max_quantity),
        (50, 10_000)
    );
    assert_eq!(offers[0].recipient, RecipientKind::TelegramUsername);
    // 0.0155 TON a Star plus 1 % non-KYC commission.
    assert_eq!(
        offers[0].unit_cost,
        Some(Money::parse("0.015655", "TON").unwrap())
    );

    let request = stars_request("@buyer_one", 100);
    let check = provider
        .check_recipient(&request.product, &request.recipient)
        .await
        .unwrap();
    assert!(
        matches!(check, RecipientCheck::Confirmed { .. }),
        "{check:?}"
    );
    let quote = provider.quote(&request).await.unwrap();
    assert_eq!(quote.cost, Money::parse("1.5655", "TON").unwrap());

    let before = fake.balance();
    let placed = provider
        .place_order(OrderId(1), "key-1", &request)
        .await
        .unwrap();
    assert!(
        placed.provider_order_id.starts_with("ord:"),
        "{}",
        placed.provider_order_id
    );
    let done = settle(&provider, &placed.provider_order_id).await;
    assert!(
        matches!(done, ProviderOrderStatus::Completed(_)),
        "{done:?}"
    );
    assert!(fake.balance() < before, "the wallet paid");
    assert_eq!(fake.counts().orders_paid, 1);
}

#[tokio::test]
async fn fragment_refuses_unknown_users_and_active_premium_before_payment() {
    let fake = fragment_fake().await;
    let provider = fragment_provider(&fake, Duration::from_secs(2));
    let ghost = stars_request("@ghost_user", 50);
    assert_eq!(
        provider
            .check_recipient(&ghost.product, &ghost.recipient)
            .await
            .unwrap(),
        RecipientCheck::Refused(BuyerReason::UserNotFound)
    );
    let active = premium_request("@premium_fan", 3);
    assert_eq!(
        provider
            .check_recipient(&active.product, &active.recipient)
            .await
            .unwrap(),
        RecipientCheck::Refused(BuyerReason::PremiumAlreadyActive)
    );
    let fine = premium_request("@someone_new", 6);
    assert!(matches!(
        provider
            .check_recipient(&fine.product, &fine.recipient)
            .await
            .unwrap(),
        RecipientCheck::Confirmed { .. }
    ));
    assert_eq!(fake.counts().orders_paid, 0, "checks never pay");
}

#[tokio::test]
async fn fragment_premium_is_bought_and_tracked_through_the_queue() {
    let fake = fragment_fake().await;
    let provider = fragment_provider(&fake, Duration::from_secs(2));
    let request = premium_request("@gift_me", 12);
    let quote = provider.quote(&request).await.unwrap();
    assert_eq!(quote.cost, Money::parse("29.2799", "TON").unwrap());
    let placed = provider
        .place_order(OrderId(2), "key-2", &request)
        .await
        .unwrap();
    assert!(placed.provider_order_id.starts_with("req:"));
    assert!(matches!(
        settle(&provider, &placed.provider_order_id).await,
        ProviderOrderStatus::Completed(_)
    ));
    assert_eq!(fake.counts().premium_bought, 1);
}

#[tokio::test]
async fn fragment_insufficient_balance_alerts_and_stops_selling_until_topped_up() {
    let fake = fragment_fake().await;
    fake.set_balance(dec("0.5"));
    let provider = fragment_provider(&fake, Duration::from_secs(2));
    let err = provider
        .place_order(OrderId(3), "key-3", &stars_request("@buyer_two", 100))
        .await
        .unwrap_err();
    match &err {
        ProviderError::Rejected {
            code,
            alert_admins,
            reason,
            ..
        } => {
            assert_eq!(code, "INSUFFICIENT_BALANCE");
            assert!(alert_admins);
            assert_eq!(*reason, BuyerReason::TemporarilyUnavailable);
        }
        other => panic!("{other:?}"),
    }
    assert!(
        provider.families().is_empty(),
        "stops selling what it cannot buy"
    );
    provider.balances().await.unwrap();
    assert!(
        provider.families().is_empty(),
        "0.5 TON is still not enough"
    );
    fake.set_balance(dec("50"));
    let lines = provider.balances().await.unwrap();
    assert_eq!(lines[0].amount, Money::parse("50", "TON").unwrap());
    assert_eq!(
        provider.families().len(),
        2,
        "selling again once the balance is back"
    );
}

#[tokio::test]
async fn fragment_pay_timeout_is_ambiguous_with_the_order_to_reconcile_and_never_resent() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v1/stars/create"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "order_id": "frg-77", "username": "@slow_pay", "amount": 60,
            "total_cost": "0.93", "currency": "TON", "status": "created"
        })))
        .expect(1)
        .mount(&server)
        .await;
    // The pay is received, but its answer comes after the client gave up.
    Mock::given(method("POST"))
        .and(path("/api/v1/stars/pay"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(3)))
        .expect(1)
        .mount(&server)
        .await;
    let client = FragmentClient::new(
        server.uri().parse().unwrap(),
        WalletSeed::new(SEED),
        None,
        Duration::from_millis(300),
    )
    .unwrap()
    .with_retry_policy(FragmentRetry {
        max_attempts: 3,
        backoff: Duration::from_millis(10),
        ..Default::default()
    });
    let provider = FragmentProvider::from_client(client);
    let err = provider
        .place_order(OrderId(4), "key-4", &stars_request("@slow_pay", 60))
        .await
        .unwrap_err();
    match err {
        ProviderError::Ambiguous {
            provider_order_id, ..
        } => {
            assert_eq!(provider_order_id.as_deref(), Some("ord:frg-77"));
        }
        other => panic!("{other:?}"),
    }
    // `expect(1)` on the pay mock: verified when the server drops — never resent.
}

async fn agent_fake() -> AgentSandbox {
    agent::start(
        "127.0.0.1:0".parse().unwrap(),
        AgentSandboxOptions {
            processing_delay: Duration::from_millis(20),
            ..Default::default()
        },
    )
    .await
    .unwrap()
}

fn agent_provider(fake: &AgentSandbox) -> AgentProvider {
    let client = AgentClient::new(
        fake.base_url(),
        fake.agent_id(),
        AgentApiKey::new(fake.api_key()),
        Duration::from_secs(2),
    )
    .unwrap()
    .with_retry_policy(AgentRetry {
        max_attempts: 3,
        backoff: Duration::from_millis(10),
        max_retry_after: Duration::from_secs(2),
    });
    AgentProvider::from_client(client, false)
}

#[tokio::test]
async fn agent_voucher_from_catalog_to_codes() {
    let fake = agent_fake().await;
    let provider = agent_provider(&fake);
    let categories = provider.categories(ProductFamily::GiftCard).await.unwrap();
    let names: Vec<_> = categories.iter().map(|c| c.name.as_str()).collect();
    assert!(
        names.contains(&"Steam") && names.contains(&"Google Play"),
        "{names:?}"
    );
    let steam = categories.iter().find(|c| c.name == "Steam").unwrap();
    let offers = provider
        .offers(ProductFamily::GiftCard, &steam.id)
        .await
        .unwrap();
    let ten = offers
        .iter()
        .find(|o| o.title == "Steam Wallet 10 USD")
        .unwrap();
    assert_eq!(ten.unit_cost, Some(Money::parse("10.40", "USD").unwrap()));
    assert_eq!(ten.recipient, RecipientKind::Nobody);

    let request = OrderRequest {
        product: ten.product.clone(),
        recipient: Recipient::Nobody,
        quantity: 2,
        amount: None,
    };
    assert_eq!(
        provider.quote(&request).await.unwrap().cost,
        Money::parse("20.80", "USD").unwrap()
    );
    let placed = provider
        .place_order(OrderId(10), "agent-key-10", &request)
        .await
        .unwrap();
    let ProviderOrderStatus::Completed(delivery) =
        settle(&provider, &placed.provider_order_id).await
    else {
        panic!("not completed");
    };
    assert_eq!(delivery.codes.len(), 2);
    assert!(
        delivery.reference.is_some(),
        "vendor_order_id kept for support"
    );
    // A replay with the same key is the same order, not a second purchase.
    let again = provider
        .place_order(OrderId(10), "agent-key-10", &request)
        .await
        .unwrap();
    assert_eq!(again.provider_order_id, placed.provider_order_id);
    assert_eq!(fake.counts().live_orders, 1);
    // Reconciliation finds it by our order id.
    let found = provider
        .reconcile(OrderId(10), &request, Utc::now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.provider_order_id, placed.provider_order_id);
}

#[tokio::test]
async fn agent_top_up_carries_the_customer_account() {
    let fake = agent_fake().await;
    let provider = agent_provider(&fake);
    let categories = provider.categories(ProductFamily::GameTopup).await.unwrap();
    let mobile = categories
        .iter()
        .find(|c| c.name == "Mobile games")
        .unwrap();
    let offer = provider
        .offers(ProductFamily::GameTopup, &mobile.id)
        .await
        .unwrap()
        .remove(0);
    let RecipientKind::Player { fields } = &offer.recipient else {
        panic!("{:?}", offer.recipient)
    };
    assert_eq!(
        fields
            .iter()
            .map(|f: &FieldSpec| f.key.as_str())
            .collect::<Vec<_>>(),
        vec!["player_id"]
    );
    let values: BTreeMap<String, String> =
        [("player_id".to_owned(), "123456789".to_owned())].into();
    let player = PlayerFields::parse(fields, values).unwrap();
    let request = OrderRequest {
        product: offer.product.clone(),
        recipient: Recipient::Player(player),
        quantity: 1,
        amount: Some(Money::parse("10", "USD").unwrap()),
    };
    assert_eq!(
        provider.quote(&request).await.unwrap().cost,
        Money::parse("10.50", "USD").unwrap()
    );
    let placed = provider
        .place_order(OrderId(11), "agent-key-11", &request)
        .await
        .unwrap();
    assert!(matches!(
        settle(&provider, &placed.provider_order_id).await,
        ProviderOrderStatus::Completed(_)
    ));
}

#[tokio::test]
async fn agent_insufficient_balance_is_a_rejection_that_alerts_admins() {
    let fake = agent_fake().await;
    fake.set_balance("USD", Decimal::ZERO);
    let provider = agent_provider(&fake);
    let offers = provider
        .offers(ProductFamily::GiftCard, "10")
        .await
        .unwrap();
    let request = OrderRequest {
        product: offers[0].product.clone(),
        recipient: Recipient::Nobody,
        quantity: 1,
        amount: None,
    };
    let err = provider
        .place_order(OrderId(12), "agent-key-12", &request)
        .await
        .unwrap_err();
    assert!(err.alerts_admins(), "{err:?}");
    assert!(!err.is_retryable());
    assert_eq!(fake.counts().live_orders, 0);
    let balances = provider.balances().await.unwrap();
    assert!(
        balances
            .iter()
            .any(|b| b.amount == Money::parse("0", "USD").unwrap()),
        "{balances:?}"
    );
}

#[tokio::test]
async fn agent_5xx_after_the_order_was_taken_is_retried_into_one_order() {
    let fake = agent_fake().await;
    let provider = agent_provider(&fake);
    let offers = provider
        .offers(ProductFamily::GiftCard, "11")
        .await
        .unwrap();
    let request = OrderRequest {
        product: offers[0].product.clone(),
        recipient: Recipient::Nobody,
        quantity: 1,
        amount: None,
    };
    fake.server_error_next(1, 503);
    let placed = provider
        .place_order(OrderId(13), "agent-key-13", &request)
        .await
        .unwrap();
    assert!(!placed.provider_order_id.is_empty());
    assert_eq!(
        fake.counts().live_orders,
        1,
        "exactly one order at the provider"
    );
}

#[tokio::test]
async fn fragment_reconcile_finds_a_finished_purchase_and_never_claims_there_was_none() {
    let fake = fragment_fake().await;
    let provider = fragment_provider(&fake, Duration::from_secs(2));
    let since = Utc::now() - chrono::Duration::minutes(1);
    let request = stars_request("@reconcile_me", 75);
    // Nothing bought: not proof that nothing is queued, so no "None" that would let the
    // engine buy again.
    let unknown = provider.reconcile(OrderId(6), &request, since).await;
    assert!(
        matches!(unknown, Err(ProviderError::Ambiguous { .. })),
        "{unknown:?}"
    );
    let placed = provider
        .place_order(OrderId(6), "key-6", &request)
        .await
        .unwrap();
    settle(&provider, &placed.provider_order_id).await;
    let found = provider
        .reconcile(OrderId(6), &request, since)
        .await
        .unwrap()
        .expect("found");
    assert!(
        matches!(found.status, ProviderOrderStatus::Completed(_)),
        "{found:?}"
    );
    assert_eq!(fake.counts().orders_paid, 1);
}
