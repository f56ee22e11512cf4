//! The Cryptorefills client and adapter against the stateful fake over loopback: the
//! catalog, every validation problem code mapped, every order state through to Done with
//! the code, expiry and refund, headers enforced, and the checkout QR code read back.

use std::str::FromStr;
use std::time::Duration;

use chrono::Utc;
use kiosk::config::{CryptorefillsConfig, Language};
use kiosk::domain::{Email, Money, OrderId, PhoneE164, ProductFamily};
use kiosk::providers::cryptorefills::client::{
    Beneficiary, ClientIdentity, CryptorefillsClient, CryptorefillsError, Denomination, LogoFormat,
    LogoSize, NewDelivery, NewOrder, OrderState, PartnerId, PaymentChoice, PriceQuery, ProblemCode,
    ProductDenomination, ProductKind, ProductQuery, RetryPolicy,
};
use kiosk::providers::cryptorefills::{CryptorefillsProvider, problem_reason};
use kiosk::providers::{
    BuyerReason, Checkout, CryptoCheckout, OrderRequest, ProductRef, Provider, ProviderError,
    ProviderId, ProviderOrderStatus, Recipient, RecipientCheck, RecipientKind,
};
use kiosk::sandbox::cryptorefills::{self, CryptorefillsSandbox, CryptorefillsSandboxOptions};
use rust_decimal::Decimal;

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

/// A step long enough that only `advance_clock` moves an order.
const STEP: Duration = Duration::from_secs(60);

async fn fake() -> CryptorefillsSandbox {
    cryptorefills::start(
        "127.0.0.1:0".parse().unwrap(),
        CryptorefillsSandboxOptions {
            step_delay: STEP,
            ..Default::default()
        },
    )
    .await
    .unwrap()
}

fn identity(partner: &str) -> ClientIdentity {
    ClientIdentity {
        partner_id: PartnerId::new(partner),
        app_version: "kiosk-test-1".into(),
        forwarded_for: "203.0.113.7".parse().unwrap(),
        user_agent: ClientIdentity::default_user_agent(),
    }
}

fn client(fake: &CryptorefillsSandbox) -> CryptorefillsClient {
    CryptorefillsClient::new(
        fake.base_url(),
        identity(fake.partner_id()),
        Duration::from_secs(2),
    )
    .unwrap()
    .with_retry_policy(RetryPolicy {
        max_attempts: 2,
        backoff: Duration::from_millis(10),
        max_retry_after: Duration::from_secs(1),
    })
}

fn provider(fake: &CryptorefillsSandbox) -> CryptorefillsProvider {
    CryptorefillsProvider::from_client(client(fake), "US")
}

fn email(text: &str) -> Recipient {
    Recipient::Email(Email::parse(text).unwrap())
}

fn gift(brand: &str, item: &str, to: Recipient) -> OrderRequest {
    OrderRequest {
        product: ProductRef {
            provider: ProviderId::Cryptorefills,
            family: ProductFamily::GiftCard,
            category: format!("US:{brand}"),
            item: item.into(),
            variant: None,
        },
        recipient: to,
        quantity: 1,
        amount: None,
    }
}

fn checkout_of(status: ProviderOrderStatus) -> CryptoCheckout {
    match status {
        ProviderOrderStatus::AwaitingBuyerPayment(c) => c,
        other => panic!("expected a checkout, got {other:?}"),
    }
}

#[tokio::test]
async fn config_built_adapter_talks_to_the_fake() {
    let fake = fake().await;
    let config = CryptorefillsConfig {
        url: fake.base_url(),
        partner_id: kiosk::secret::Secret::new(fake.partner_id()),
        app_version: "0.1.0".into(),
        forwarded_for: "198.51.100.1".into(),
        default_country: "US".into(),
        stream: true,
    };
    let provider = CryptorefillsProvider::new(&config, Duration::from_secs(2)).unwrap();
    assert_eq!(provider.checkout(), Checkout::BuyerPaid);
    assert_eq!(provider.id().checkout(), Checkout::BuyerPaid);
    // The health probe: USDC on Solana is among the payment vias, no shop balance.
    assert!(provider.balances().await.unwrap().is_empty());
    assert_eq!(fake.counts().header_rejections, 0);
    fake.shutdown().await;
}

#[tokio::test]
async fn catalog_brands_homepage_products_and_prices() {
    let fake = fake().await;
    let c = client(&fake);
    let vias = c.payment_vias().await.unwrap();
    assert!(
        vias.iter()
            .any(|v| v.coin == "USDC" && v.network == "Solana" && v.enabled)
    );
    assert!(vias.iter().any(|v| v.coin == "USDT" && v.network == "Tron"));

    let us = c.brands("us").await.unwrap();
    let airbnb = us.iter().find(|b| b.name == "Airbnb").unwrap();
    assert_eq!(airbnb.family_name, "airbnb");
    assert_eq!(airbnb.kind, ProductKind::GiftCard);
    assert!(
        airbnb
            .logo(LogoSize::Small, LogoFormat::Webp)
            .unwrap()
            .ends_with("airbnb_300x190.webp")
    );
    assert!(us.iter().any(|b| b.kind == ProductKind::MobileTopup));
    assert!(us.iter().any(|b| b.kind == ProductKind::Esim));
    let de = c.brands("DE").await.unwrap();
    assert!(de.iter().any(|b| b.name == "Zalando"));
    assert!(de.iter().all(|b| b.country_code.as_deref() == Some("DE")));

    let feed = c.homepage("US").await.unwrap();
    assert!(feed.len() >= 2);
    assert!(feed[0].title.is_some() && !feed[0].brands.is_empty());

    let products = c
        .products(
            "US",
            &ProductQuery {
                family_name: Some("everything-apple".into()),
                coin: Some("USDC".into()),
                lang: Some("en".into()),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        products[0].denomination,
        ProductDenomination::Range {
            min: dec("2"),
            max: dec("500")
        }
    );
    let airbnb_products = c
        .products(
            "US",
            &ProductQuery {
                family_name: Some("airbnb".into()),
                coin: Some("USDC".into()),
                lang: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(airbnb_products.len(), 3);
    assert_eq!(airbnb_products[2].coin_amount, Some(dec("100.50")));

    let price = c
        .price(&PriceQuery {
            brand_name: "Everything Apple".into(),
            country_code: "US".into(),
            face_value: dec("12.5"),
            coin: "USDC".into(),
        })
        .await
        .unwrap();
    assert_eq!(price.coin_amount, dec("12.57"));
    assert_eq!(price.currency.as_deref(), Some("USD"));
    fake.shutdown().await;
}

#[tokio::test]
async fn adapter_lists_gift_cards_topups_and_esims_with_ranges() {
    let fake = fake().await;
    let p = provider(&fake);
    assert_eq!(
        p.families(),
        vec![
            ProductFamily::GiftCard,
            ProductFamily::MobileTopup,
            ProductFamily::Esim
        ]
    );
    let gifts = p.categories(ProductFamily::GiftCard).await.unwrap();
    assert!(gifts.iter().any(|c| c.id == "US:Airbnb"));
    let offers = p
        .offers(ProductFamily::GiftCard, "US:Everything Apple")
        .await
        .unwrap();
    let range = offers[0].amount.as_ref().unwrap();
    assert_eq!((range.min, range.max), (dec("2"), dec("500")));
    assert_eq!(offers[0].product.item, "range");
    assert_eq!(offers[0].recipient, RecipientKind::Email);

    let airbnb = p
        .offers(ProductFamily::GiftCard, "US:Airbnb")
        .await
        .unwrap();
    assert_eq!(airbnb.len(), 3);
    assert_eq!(airbnb[0].product.item, "25 USD");
    assert_eq!(
        airbnb[0].unit_cost,
        Some(Money::parse("25.13", "USDC").unwrap())
    );
    let sold_out = p
        .offers(ProductFamily::GiftCard, "US:Sold Out Co")
        .await
        .unwrap();
    assert_eq!(sold_out[0].stock, Some(0));

    let topups = p.categories(ProductFamily::MobileTopup).await.unwrap();
    assert_eq!(topups.len(), 1);
    let att = p
        .offers(ProductFamily::MobileTopup, &topups[0].id)
        .await
        .unwrap();
    assert!(att.iter().all(|o| o.recipient == RecipientKind::Phone));
    assert!(att.iter().any(|o| o.amount.is_some()));
    let esims = p.categories(ProductFamily::Esim).await.unwrap();
    assert_eq!(esims[0].id, "US:eSIM USA");

    let germany = p
        .categories_in(ProductFamily::GiftCard, "de")
        .await
        .unwrap();
    assert_eq!(germany[0].id, "DE:Zalando");
    let featured = p.featured("US").await.unwrap();
    assert!(featured.iter().any(|c| c.family == ProductFamily::Esim));
    fake.shutdown().await;
}

/// Places an order through the adapter and returns its id and checkout.
async fn place(p: &CryptorefillsProvider, request: &OrderRequest) -> (String, CryptoCheckout) {
    let order = p
        .place_order(OrderId(1), "key-unused", request)
        .await
        .unwrap();
    (order.provider_order_id, checkout_of(order.status))
}

#[tokio::test]
async fn every_state_through_to_done_with_the_code() {
    let fake = fake().await;
    let p = provider(&fake);
    let request = gift("Airbnb", "100 USD", email("buyer@example.com"));
    assert_eq!(
        p.check_recipient(&request.product, &request.recipient)
            .await
            .unwrap(),
        RecipientCheck::Confirmed {
            display_name: None,
            region: None
        }
    );
    let quote = p.quote(&request).await.unwrap();
    assert_eq!(quote.cost, Money::parse("100.50", "USDC").unwrap());
    assert!(!p.replay_safe(&request.product));

    let before = Utc::now();
    let (id, checkout) = place(&p, &request).await;
    assert!(id.starts_with("ord_"));
    assert_eq!(checkout.amount, dec("100.50"));
    assert_eq!(
        (checkout.coin.as_str(), checkout.network.as_str()),
        ("USDC", "Solana")
    );
    let expected_uri = format!(
        "solana:{}?amount=100.5&spl-token=EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v",
        checkout.address
    );
    assert_eq!(checkout.payment_uri.as_deref(), Some(expected_uri.as_str()));
    let window = checkout.expires_at - before;
    assert!(
        window >= chrono::Duration::minutes(30) && window < chrono::Duration::seconds(30 * 60 + 5),
        "{window}"
    );

    let c = client(&fake);
    let state = |c: &CryptorefillsClient| {
        let c = c.clone();
        let id = id.clone();
        async move { c.order(&id).await.unwrap().state }
    };
    assert_eq!(state(&c).await, OrderState::Created);
    fake.advance_clock(STEP);
    assert_eq!(state(&c).await, OrderState::WaitingForPayment);
    assert!(matches!(
        p.order_status(&id).await.unwrap(),
        ProviderOrderStatus::AwaitingBuyerPayment(_)
    ));

    fake.simulate_partial_payment(&id, dec("40")).unwrap();
    assert_eq!(state(&c).await, OrderState::PartialPaymentStarted);
    assert_eq!(
        checkout_of(p.order_status(&id).await.unwrap()).address,
        checkout.address
    );

    fake.simulate_payment(&id).unwrap();
    fake.hold(&id).unwrap();
    assert_eq!(state(&c).await, OrderState::PaymentStarted);
    assert_eq!(
        p.order_status(&id).await.unwrap(),
        ProviderOrderStatus::Pending
    );
    fake.advance_clock(STEP);
    assert_eq!(state(&c).await, OrderState::PaymentReceived);
    fake.advance_clock(STEP);
    assert_eq!(state(&c).await, OrderState::WaitingForDelivery);
    fake.advance_clock(STEP);
    assert_eq!(state(&c).await, OrderState::WaitingForManualAction);
    assert_eq!(
        p.order_status(&id).await.unwrap(),
        ProviderOrderStatus::Pending
    );
    fake.release(&id).unwrap();
    assert_eq!(state(&c).await, OrderState::WaitingForDelivery);
    // The buyer's 30 minutes are long gone: a paid order does not expire.
    fake.advance_clock(Duration::from_secs(3600));
    let done = c.order(&id).await.unwrap();
    assert_eq!(done.state, OrderState::Done);
    let code = done.deliveries[0].code.clone().unwrap();
    assert!(code.starts_with("SBX-"));
    assert!(!format!("{done:?}").contains(&code), "Debug shows the code");
    match p.order_status(&id).await.unwrap() {
        ProviderOrderStatus::Completed(delivery) => {
            assert_eq!(delivery.codes.len(), 1);
            assert!(delivery.codes[0].starts_with(&code));
            assert_eq!(delivery.reference.as_deref(), Some(id.as_str()));
        }
        other => panic!("{other:?}"),
    }
    assert!(fake.simulate_payment(&id).is_err());
    fake.shutdown().await;
}

#[tokio::test]
async fn the_newest_order_waiting_for_coins_is_the_demos_to_pay() {
    let fake = fake().await;
    let p = provider(&fake);
    assert_eq!(fake.latest_awaiting_payment(), None);
    let (first, _) = place(&p, &gift("Airbnb", "100 USD", email("a@example.com"))).await;
    // Less than a step: both orders stay Created, the second one newer.
    fake.advance_clock(Duration::from_secs(1));
    let (second, _) = place(&p, &gift("Airbnb", "100 USD", email("b@example.com"))).await;
    assert_ne!(first, second);
    assert_eq!(fake.latest_awaiting_payment(), Some(second.clone()));
    fake.simulate_payment(&second).unwrap();
    assert_eq!(fake.latest_awaiting_payment(), Some(first.clone()));
    fake.simulate_payment(&first).unwrap();
    assert_eq!(fake.latest_awaiting_payment(), None);
}

#[tokio::test]
async fn esim_and_mobile_topup_deliver() {
    let fake = fake().await;
    let p = provider(&fake);
    let esim = OrderRequest {
        product: ProductRef {
            provider: ProviderId::Cryptorefills,
            family: ProductFamily::Esim,
            category: "US:eSIM USA".into(),
            item: "10 USD".into(),
            variant: None,
        },
        recipient: email("traveller@example.com"),
        quantity: 1,
        amount: None,
    };
    let (esim_id, _) = place(&p, &esim).await;
    let topup = OrderRequest {
        product: ProductRef {
            provider: ProviderId::Cryptorefills,
            family: ProductFamily::MobileTopup,
            category: "US:AT&T".into(),
            item: "range".into(),
            variant: None,
        },
        recipient: Recipient::Phone(PhoneE164::parse("+1 415 555 2671").unwrap()),
        quantity: 1,
        amount: Some(Money::parse("12.5", "USD").unwrap()),
    };
    assert_eq!(
        p.quote(&topup).await.unwrap().cost,
        Money::parse("12.57", "USDC").unwrap()
    );
    let (topup_id, _) = place(&p, &topup).await;
    // A gift-card recipient for a top-up is refused before any call.
    assert_eq!(
        p.check_recipient(&topup.product, &email("a@example.com"))
            .await
            .unwrap(),
        RecipientCheck::Refused(BuyerReason::InvalidRecipient)
    );
    for id in [&esim_id, &topup_id] {
        fake.simulate_payment(id).unwrap();
    }
    fake.advance_clock(STEP * 4);
    match p.order_status(&esim_id).await.unwrap() {
        ProviderOrderStatus::Completed(d) => {
            assert!(d.codes[0].starts_with("LPA:1$"));
            assert!(d.note.is_some());
        }
        other => panic!("{other:?}"),
    }
    match p.order_status(&topup_id).await.unwrap() {
        ProviderOrderStatus::Completed(d) => {
            assert!(d.codes.is_empty());
            assert!(d.note.unwrap().contains("+14155552671"));
        }
        other => panic!("{other:?}"),
    }
    fake.shutdown().await;
}

#[tokio::test]
async fn expired_refunded_failed_and_setup_failed() {
    let fake = fake().await;
    let p = provider(&fake);
    let request = gift("Steam", "20 USD", email("gamer@example.com"));

    let (expired, _) = place(&p, &request).await;
    fake.advance_clock(Duration::from_secs(30 * 60));
    assert_eq!(fake.order_state(&expired), Some("Expired"));
    assert_eq!(
        p.order_status(&expired).await.unwrap(),
        ProviderOrderStatus::Failed {
            reason: BuyerReason::PaymentExpired,
            detail: "Expired".into(),
            money_returned: true
        }
    );
    assert!(fake.simulate_payment(&expired).is_err());

    let (refunded, _) = place(&p, &request).await;
    fake.simulate_payment(&refunded).unwrap();
    fake.refund(&refunded).unwrap();
    assert!(matches!(
        p.order_status(&refunded).await.unwrap(),
        ProviderOrderStatus::Failed {
            money_returned: true,
            ..
        }
    ));
    assert_eq!(fake.order_state(&refunded), Some("Refunded"));

    let (failed, _) = place(&p, &request).await;
    fake.fail_payment(&failed).unwrap();
    assert!(matches!(
        p.order_status(&failed).await.unwrap(),
        ProviderOrderStatus::Failed {
            money_returned: false,
            ..
        }
    ));

    fake.fail_setup_next();
    let order = p.place_order(OrderId(2), "unused", &request).await.unwrap();
    assert!(matches!(
        order.status,
        ProviderOrderStatus::Failed {
            reason: BuyerReason::TemporarilyUnavailable,
            money_returned: true,
            ..
        }
    ));
    assert_eq!(
        client(&fake)
            .order(&order.provider_order_id)
            .await
            .unwrap()
            .state,
        OrderState::PaymentSetupFailed
    );

    // The sandbox endpoint pays like the knob does.
    let (paid_over_http, _) = place(&p, &request).await;
    let url = fake
        .base_url()
        .join(&format!("sandbox/orders/{paid_over_http}/pay"))
        .unwrap();
    let answer: serde_json::Value = reqwest::Client::new()
        .post(url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["status"], "PaymentStarted");
    fake.shutdown().await;
}

fn problem_email(code: &ProblemCode) -> String {
    format!("problem+{}@example.com", code.as_str().to_ascii_lowercase())
}

#[tokio::test]
async fn every_validation_problem_code_is_typed_and_mapped() {
    let fake = fake().await;
    let c = client(&fake);
    let p = provider(&fake);
    for code in ProblemCode::ALL {
        if matches!(
            code,
            ProblemCode::SuspendedCoin | ProblemCode::SuspendedNetwork
        ) {
            continue;
        }
        let to = problem_email(&code);
        let order = NewOrder {
            email: Some(Email::parse(&to).unwrap()),
            deliveries: vec![NewDelivery {
                brand_name: "Airbnb".into(),
                country_code: "US".into(),
                denomination: Denomination::Fixed("25 USD".into()),
                beneficiary: Beneficiary::Email(Email::parse(&to).unwrap()),
            }],
            payment: PaymentChoice::user_wallet("USDC", "Solana"),
            lang: "en".into(),
            utm_source: None,
        };
        let problems = c.validate_order(&order).await.unwrap();
        assert_eq!(problems.len(), 1, "{code}: {problems:?}");
        assert_eq!(problems[0].problem, code);
        // Creation is refused with the same problem, typed.
        match c.create_order(&order).await {
            Err(CryptorefillsError::Problems(p)) => assert_eq!(p[0].problem, code),
            other => panic!("{code}: {other:?}"),
        }
        // The adapter: the recipient problem asks for another recipient; the others
        // are refusals with the mapped reason.
        let request = gift("Airbnb", "25 USD", email(&to));
        let check = p
            .check_recipient(&request.product, &request.recipient)
            .await;
        match (&code, check) {
            (ProblemCode::InvalidBeneficiaryAccount, Ok(RecipientCheck::Refused(reason))) => {
                assert_eq!(reason, BuyerReason::InvalidRecipient)
            }
            (
                _,
                Err(ProviderError::Rejected {
                    code: key, reason, ..
                }),
            ) => {
                assert_eq!(key, code.as_str());
                assert_eq!(reason, problem_reason(&code));
            }
            (_, other) => panic!("{code}: {other:?}"),
        }
    }
    assert_eq!(fake.counts().orders_created, 0);
    fake.shutdown().await;
}

#[tokio::test]
async fn realistic_problems_map_to_reasons() {
    let fake = fake().await;
    let p = provider(&fake);
    let reason_of = |r: Result<RecipientCheck, ProviderError>| match r {
        Ok(RecipientCheck::Refused(reason)) => reason,
        Err(ProviderError::Rejected { reason, .. }) => reason,
        other => panic!("{other:?}"),
    };
    let cases = [
        (
            "Airbnb",
            "25 USD",
            "someone@invalid.test",
            BuyerReason::InvalidRecipient,
        ),
        (
            "Sold Out Co",
            "20 USD",
            "a@example.com",
            BuyerReason::OutOfStock,
        ),
        (
            "Paused Brand",
            "10 USD",
            "a@example.com",
            BuyerReason::NotAvailable,
        ),
        (
            "eMoney Voucher",
            "50 USD",
            "a@example.com",
            BuyerReason::VerificationRequired,
        ),
        (
            "Members Club",
            "25 USD",
            "a@example.com",
            BuyerReason::NotAvailable,
        ),
        (
            "Airbnb",
            "75 USD",
            "a@example.com",
            BuyerReason::NotAvailable,
        ),
    ];
    for (brand, item, to, expected) in cases {
        let request = gift(brand, item, email(to));
        let got = reason_of(
            p.check_recipient(&request.product, &request.recipient)
                .await,
        );
        assert_eq!(got, expected, "{brand} {item} {to}");
    }
    // Over the per-order limit of 1000 USDC: two 500 USD Apple cards (1005 USDC).
    let mut big = gift("Everything Apple", "range", email("big@example.com"));
    big.amount = Some(Money::parse("500", "USD").unwrap());
    big.quantity = 2;
    match p.quote(&big).await {
        Err(ProviderError::Rejected { reason, code, .. }) => {
            assert_eq!(reason, BuyerReason::LimitExceeded);
            assert_eq!(code, "MAXIMUM_AMOUNT_PER_ORDER_EXCEEDED");
        }
        other => panic!("{other:?}"),
    }
    // Outside the product's range: refused before any call.
    big.quantity = 1;
    big.amount = Some(Money::parse("501", "USD").unwrap());
    assert_eq!(
        p.quote(&big).await.unwrap_err().buyer_reason(),
        BuyerReason::AmountOutOfRange
    );
    // A range product's recipient is checked before the amount is known.
    assert!(matches!(
        p.check_recipient(&big.product, &big.recipient)
            .await
            .unwrap(),
        RecipientCheck::Confirmed { .. }
    ));
    // Two limited cards in one order.
    let mut limited = gift("Limited Drop", "30 USD", email("l@example.com"));
    limited.quantity = 2;
    assert_eq!(
        p.quote(&limited).await.unwrap_err().buyer_reason(),
        BuyerReason::LimitExceeded
    );
    fake.shutdown().await;
}

#[tokio::test]
async fn suspended_coin_and_network_are_http_errors() {
    let fake = fake().await;
    let p = provider(&fake);
    let request = gift("Airbnb", "25 USD", email("a@example.com"));
    fake.suspend_coin(Some("USDC"));
    match p.quote(&request).await {
        Err(ProviderError::Rejected {
            code,
            reason,
            alert_admins,
            ..
        }) => {
            assert_eq!(code, "SUSPENDED_COIN");
            assert_eq!(reason, BuyerReason::TemporarilyUnavailable);
            assert!(alert_admins);
        }
        other => panic!("{other:?}"),
    }
    fake.suspend_coin(None);
    fake.suspend_network(Some("Solana"));
    match client(&fake)
        .validate_order(&NewOrder {
            email: None,
            deliveries: vec![NewDelivery {
                brand_name: "Airbnb".into(),
                country_code: "US".into(),
                denomination: Denomination::Fixed("25 USD".into()),
                beneficiary: Beneficiary::Email(Email::parse("a@example.com").unwrap()),
            }],
            payment: PaymentChoice::user_wallet("USDC", "Solana"),
            lang: "en".into(),
            utm_source: None,
        })
        .await
    {
        Err(CryptorefillsError::Api {
            status: 400,
            problem: Some(ProblemCode::SuspendedNetwork),
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    // Another network still works.
    let p = provider(&fake).with_payment("USDC", "Base");
    let (_, checkout) = place(&p, &request).await;
    assert!(checkout.address.starts_with("0x"));
    assert!(
        checkout.payment_uri.unwrap().starts_with(
            "ethereum:0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913@8453/transfer?address="
        )
    );
    fake.shutdown().await;
}

#[tokio::test]
async fn wrong_or_missing_headers_are_refused() {
    let fake = fake().await;
    let wrong = CryptorefillsClient::new(
        fake.base_url(),
        identity("not-the-partner"),
        Duration::from_secs(2),
    )
    .unwrap();
    match wrong.brands("US").await {
        Err(CryptorefillsError::Api { status: 401, .. }) => {}
        other => panic!("{other:?}"),
    }
    let p = CryptorefillsProvider::from_client(wrong, "US");
    assert!(matches!(
        p.categories(ProductFamily::GiftCard).await,
        Err(ProviderError::Configuration { .. })
    ));
    // A bare request without the Cryptorefills headers.
    let url = fake.base_url().join("v3/payment_vias").unwrap();
    let status = reqwest::get(url).await.unwrap().status();
    assert_eq!(status.as_u16(), 401);
    let url = fake.base_url().join("v3/payment_vias").unwrap();
    let status = reqwest::Client::new()
        .get(url)
        .header("X-Cr-Application", fake.partner_id())
        .header("X-Cr-Version", "1")
        .header("User-Agent", "x")
        .header("X-Forwarded-For", "not-an-ip")
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status.as_u16(), 400);
    assert_eq!(fake.counts().header_rejections, 4);
    assert_eq!(fake.counts().requests, 0);
    fake.shutdown().await;
}

#[tokio::test]
async fn broken_and_lost_answers() {
    let fake = fake().await;
    let p = provider(&fake);
    let request = gift("Airbnb", "25 USD", email("a@example.com"));
    // Warm the catalog cache so the knobs hit the call under test.
    p.quote(&request).await.unwrap();

    // A GET with malformed JSON: read-only, so retried, then fine.
    let (id, _) = place(&p, &request).await;
    fake.malformed_next();
    assert!(p.order_status(&id).await.is_ok());

    // Malformed answer to the creation: unknown outcome, never resent.
    let created = fake.counts().orders_created;
    fake.malformed_next();
    match p.place_order(OrderId(3), "unused", &request).await {
        Err(ProviderError::Ambiguous { .. }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(fake.counts().orders_created, created + 1);

    // A 5xx after the order was made: ambiguous, one order only.
    fake.server_error_next(1, 502);
    assert!(matches!(
        p.place_order(OrderId(4), "unused", &request).await,
        Err(ProviderError::Ambiguous { .. })
    ));
    assert_eq!(fake.counts().orders_created, created + 2);

    // 429 on creation: nothing happened, so it is retried.
    fake.rate_limit_next(1, 0);
    assert!(p.place_order(OrderId(5), "unused", &request).await.is_ok());
    assert_eq!(fake.counts().orders_created, created + 3);

    // Reconcile cannot search: honest "later" inside the window, "none" after it.
    match p.reconcile(OrderId(4), &request, Utc::now()).await {
        Err(ProviderError::Retryable { retry_after, .. }) => {
            assert!(retry_after.unwrap() > Duration::from_secs(30 * 60))
        }
        other => panic!("{other:?}"),
    }
    let long_ago = Utc::now() - chrono::Duration::hours(1);
    assert_eq!(
        p.reconcile(OrderId(4), &request, long_ago).await.unwrap(),
        None
    );
    fake.shutdown().await;
}

#[tokio::test]
async fn checkout_qr_decodes_back_to_its_uri() {
    let fake = fake().await;
    let p = provider(&fake);
    let (_, checkout) = place(&p, &gift("Airbnb", "50 USD", email("qr@example.com"))).await;
    let uri = checkout.payment_uri.clone().unwrap();
    assert_eq!(kiosk::checkout::qr_payload(&checkout), uri);
    let png = kiosk::checkout::qr_png(&uri).unwrap();
    assert_eq!(decode_qr(&png), uri);

    // Without a URI (TRON) the QR code holds the bare address.
    let tron = provider(&fake).with_payment("USDT", "Tron");
    let (_, checkout) = place(&tron, &gift("Airbnb", "50 USD", email("qr@example.com"))).await;
    assert_eq!(checkout.payment_uri, None);
    let png = kiosk::checkout::qr_png(kiosk::checkout::qr_payload(&checkout)).unwrap();
    assert_eq!(decode_qr(&png), checkout.address);

    let text =
        kiosk::checkout::checkout_message(Language::Ru, "Airbnb 50 USD", &checkout, Utc::now());
    assert!(text.contains(&format!("<code>{}</code>", checkout.address)));
    assert!(text.contains("<code>50.25</code>"));
    fake.shutdown().await;
}

fn decode_qr(png: &[u8]) -> String {
    let image = image::load_from_memory(png).unwrap().to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare_from_greyscale(
        image.width() as usize,
        image.height() as usize,
        |x, y| image.get_pixel(x as u32, y as u32).0[0],
    );
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1);
    let (_, content) = grids[0].decode().unwrap();
    content
}
