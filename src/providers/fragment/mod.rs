//! Fragment Stars API adapter: Telegram Stars and Premium for a @username, paid from
//! the shop's TON wallet. `client.rs` is the wire; this file maps it onto [`Provider`].
//!
//! - Stars use the two-step flow: create (prices the order, refuses an unknown user,
//!   moves no money) then pay (moves money, never resent after an unknown outcome).
//!   `provider_order_id` is `ord:<fragment order id>`.
//! - Premium uses the one-call buy after an eligibility check; `provider_order_id` is
//!   `req:<queue request id>`.
//! - Recipient check: Premium asks `check-eligibility`; Stars creates a probe order for
//!   50 Stars (unpaid orders expire after 10 minutes and cost nothing), the only way the
//!   API offers to learn that a username does not exist before the buyer pays.
//! - Costs are in TON (the wallet's currency), commission included in non-KYC mode.
//! - INSUFFICIENT_BALANCE and DEBT_LIMIT_EXCEEDED alert the admins and stop this
//!   provider selling (no families) until a balance check shows enough again.

pub mod client;

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use self::client::{
    FragmentClient, FragmentCookies, FragmentError, FragmentErrorCode, OrderState, PremiumMonths,
    QueueState, WalletSeed,
};
use super::{
    Balance, BuyerReason, Category, Delivery, Offer, OrderRequest, ProductRef, Provider,
    ProviderError, ProviderId, ProviderOrder, ProviderOrderStatus, Quote, Recipient,
    RecipientCheck, RecipientKind, STARS_QUANTITY,
};
use crate::config::FragmentConfig;
use crate::domain::{Money, OrderId, ProductFamily, TelegramUsername};

const ID: ProviderId = ProviderId::Fragment;
const ORDER_PREFIX: &str = "ord:";
const REQUEST_PREFIX: &str = "req:";
const TRANSACTION_PREFIX: &str = "tx:";

pub struct FragmentProvider {
    client: FragmentClient,
    /// Set when the wallet could not pay: the TON amount that was needed.
    starved: Mutex<Option<Decimal>>,
}

impl FragmentProvider {
    pub fn new(config: &FragmentConfig, timeout: Duration) -> Result<Self, ProviderError> {
        let client = FragmentClient::new(
            config.url.clone(),
            WalletSeed::new(config.seed.expose()),
            config
                .cookies
                .as_ref()
                .map(|c| FragmentCookies::new(c.expose())),
            timeout,
        )
        .map_err(|e| map_error(e, None))?;
        Ok(Self::from_client(client))
    }

    pub fn from_client(client: FragmentClient) -> Self {
        Self {
            client,
            starved: Mutex::new(None),
        }
    }

    /// Whether the provider stopped selling for want of balance.
    pub fn is_starved(&self) -> bool {
        self.starved.lock().map(|s| s.is_some()).unwrap_or(true)
    }

    fn note_starvation(&self, error: &ProviderError, needed: Decimal) {
        if let ProviderError::Rejected { code, .. } = error
            && (code == FragmentErrorCode::InsufficientBalance.as_str()
                || code == FragmentErrorCode::DebtLimitExceeded.as_str())
            && let Ok(mut starved) = self.starved.lock()
        {
            *starved = Some(needed);
        }
    }

    async fn commission_factor(&self) -> Result<Decimal, ProviderError> {
        let percent = self
            .client
            .commission_percent()
            .await
            .map_err(|e| map_error(e, None))?;
        Ok(Decimal::ONE + percent / Decimal::ONE_HUNDRED)
    }

    async fn cost_of(&self, product: &ProductRef, quantity: u32) -> Result<Money, ProviderError> {
        let prices = self.client.prices().await.map_err(|e| map_error(e, None))?;
        let base = match product.family {
            ProductFamily::TelegramStars => prices.stars_cost(u64::from(quantity)),
            ProductFamily::TelegramPremium => {
                let months = premium_months(product)?;
                prices
                    .premium_price(months)
                    .ok_or_else(|| rejected_not_available("no price for these months"))?
            }
            _ => return Err(rejected_not_available("not sold by Fragment")),
        };
        let cost = base * self.commission_factor().await?;
        Money::parse(&cost.to_string(), &prices.currency).map_err(|e| ProviderError::Retryable {
            provider: ID,
            retry_after: None,
            detail: e.to_string(),
        })
    }
}

fn rejected_not_available(detail: &str) -> ProviderError {
    ProviderError::Rejected {
        provider: ID,
        code: "NOT_AVAILABLE".into(),
        message: detail.into(),
        reason: BuyerReason::NotAvailable,
        alert_admins: false,
    }
}

fn premium_months(product: &ProductRef) -> Result<PremiumMonths, ProviderError> {
    product
        .premium_months()
        .and_then(PremiumMonths::from_months)
        .ok_or_else(|| rejected_not_available("Premium is sold for 3, 6 or 12 months"))
}

fn username(recipient: &Recipient) -> Result<&TelegramUsername, ProviderError> {
    match recipient {
        Recipient::TelegramUsername(name) => Ok(name),
        _ => Err(ProviderError::Rejected {
            provider: ID,
            code: "INVALID_USERNAME_FORMAT".into(),
            message: "Fragment sells to a Telegram username only".into(),
            reason: BuyerReason::InvalidRecipient,
            alert_admins: false,
        }),
    }
}

/// A wallet transaction's status as an order status (reconciled one-call buys).
fn transaction_status(t: &client::Transaction, name: &TelegramUsername) -> ProviderOrderStatus {
    match t.status.as_deref().map(str::to_ascii_lowercase).as_deref() {
        Some("completed" | "done" | "success") => ProviderOrderStatus::Completed(Delivery {
            codes: Vec::new(),
            note: Some(format!("sent to {}", name.with_at())),
            reference: t.tx_hash.clone(),
        }),
        Some("failed" | "error" | "refunded") => ProviderOrderStatus::Failed {
            reason: BuyerReason::TemporarilyUnavailable,
            detail: "the Fragment transaction failed".into(),
            money_returned: true,
        },
        _ => ProviderOrderStatus::Pending,
    }
}

fn buyer_reason(code: &FragmentErrorCode) -> BuyerReason {
    match code {
        FragmentErrorCode::UserNotFound => BuyerReason::UserNotFound,
        FragmentErrorCode::PremiumAlreadyActive => BuyerReason::PremiumAlreadyActive,
        FragmentErrorCode::InvalidUsernameFormat => BuyerReason::InvalidRecipient,
        FragmentErrorCode::OrderExpired => BuyerReason::PaymentExpired,
        FragmentErrorCode::ValidationError
        | FragmentErrorCode::OrderNotFound
        | FragmentErrorCode::RequestNotFound
        | FragmentErrorCode::Unknown(_) => BuyerReason::Other,
        _ => BuyerReason::TemporarilyUnavailable,
    }
}

/// Fragment's error → the engine's retry decision.
fn map_error(error: FragmentError, order_id: Option<&str>) -> ProviderError {
    match error {
        FragmentError::Api { code, message, .. } => {
            if code == FragmentErrorCode::Unauthorized {
                ProviderError::Configuration {
                    provider: ID,
                    detail: message,
                }
            } else if code.retryable() {
                ProviderError::Retryable {
                    provider: ID,
                    retry_after: None,
                    detail: format!("{code}: {message}"),
                }
            } else {
                ProviderError::Rejected {
                    provider: ID,
                    code: code.as_str().to_owned(),
                    message,
                    reason: buyer_reason(&code),
                    alert_admins: code.alerts_admins(),
                }
            }
        }
        FragmentError::RateLimited { retry_after } => ProviderError::Retryable {
            provider: ID,
            retry_after,
            detail: "rate limited".into(),
        },
        FragmentError::Timeout => ProviderError::Retryable {
            provider: ID,
            retry_after: None,
            detail: "timeout".into(),
        },
        FragmentError::Transport(detail) | FragmentError::Decode(detail) => {
            ProviderError::Retryable {
                provider: ID,
                retry_after: None,
                detail,
            }
        }
        FragmentError::Ambiguous {
            order_id: known,
            cause,
        } => ProviderError::Ambiguous {
            provider: ID,
            provider_order_id: known
                .or(order_id.map(str::to_owned))
                .map(|id| format!("{ORDER_PREFIX}{id}")),
            detail: cause.to_string(),
        },
        FragmentError::InvalidInput(detail) => ProviderError::Rejected {
            provider: ID,
            code: "INVALID_INPUT".into(),
            message: detail,
            reason: BuyerReason::InvalidRecipient,
            alert_admins: false,
        },
    }
}

#[async_trait]
impl Provider for FragmentProvider {
    fn id(&self) -> ProviderId {
        ID
    }

    fn families(&self) -> Vec<ProductFamily> {
        if self.is_starved() {
            return Vec::new();
        }
        vec![ProductFamily::TelegramStars, ProductFamily::TelegramPremium]
    }

    async fn categories(&self, family: ProductFamily) -> Result<Vec<Category>, ProviderError> {
        let name = match family {
            ProductFamily::TelegramStars => "Telegram Stars",
            ProductFamily::TelegramPremium => "Telegram Premium",
            _ => return Ok(Vec::new()),
        };
        Ok(vec![Category {
            id: "telegram".into(),
            name: name.into(),
            family,
        }])
    }

    async fn offers(
        &self,
        family: ProductFamily,
        _category_id: &str,
    ) -> Result<Vec<Offer>, ProviderError> {
        let prices = self.client.prices().await.map_err(|e| map_error(e, None))?;
        let factor = self.commission_factor().await?;
        let money =
            |amount: Decimal| Money::parse(&(amount * factor).to_string(), &prices.currency).ok();
        match family {
            ProductFamily::TelegramStars => Ok(vec![Offer {
                product: ProductRef::telegram_stars(ID),
                title: "Telegram Stars".into(),
                unit_cost: money(prices.star_price),
                stock: None,
                min_quantity: *STARS_QUANTITY.start(),
                max_quantity: *STARS_QUANTITY.end(),
                recipient: RecipientKind::TelegramUsername,
                amount: None,
            }]),
            ProductFamily::TelegramPremium => Ok([
                PremiumMonths::Three,
                PremiumMonths::Six,
                PremiumMonths::Twelve,
            ]
            .into_iter()
            .filter_map(|months| {
                let price = prices.premium_price(months)?;
                Some(Offer {
                    product: ProductRef::telegram_premium(ID, months.months()),
                    title: format!("Telegram Premium, {} months", months.months()),
                    unit_cost: money(price),
                    stock: None,
                    min_quantity: 1,
                    max_quantity: 1,
                    recipient: RecipientKind::TelegramUsername,
                    amount: None,
                })
            })
            .collect()),
            _ => Ok(Vec::new()),
        }
    }

    async fn check_recipient(
        &self,
        product: &ProductRef,
        recipient: &Recipient,
    ) -> Result<RecipientCheck, ProviderError> {
        let name = username(recipient)?;
        let outcome = match product.family {
            ProductFamily::TelegramPremium => {
                let eligibility = self
                    .client
                    .check_premium_eligibility(&name.with_at(), premium_months(product)?)
                    .await;
                match eligibility {
                    Ok(e) if e.eligible => Ok(()),
                    Ok(e) => Err(e.reason),
                    Err(FragmentError::Api { code, .. }) if !code.retryable() => Err(Some(code)),
                    Err(other) => return Err(map_error(other, None)),
                }
            }
            ProductFamily::TelegramStars => {
                match self
                    .client
                    .create_stars_order(&name.with_at(), u64::from(*STARS_QUANTITY.start()))
                    .await
                {
                    Ok(_) => Ok(()),
                    Err(FragmentError::Api { code, .. })
                        if matches!(
                            code,
                            FragmentErrorCode::UserNotFound
                                | FragmentErrorCode::InvalidUsernameFormat
                        ) =>
                    {
                        Err(Some(code))
                    }
                    Err(other) => return Err(map_error(other, None)),
                }
            }
            _ => return Err(rejected_not_available("not sold by Fragment")),
        };
        Ok(match outcome {
            Ok(()) => RecipientCheck::Confirmed {
                display_name: Some(name.with_at()),
                region: None,
            },
            Err(Some(code)) => RecipientCheck::Refused(buyer_reason(&code)),
            Err(None) => RecipientCheck::Refused(BuyerReason::RecipientCannotReceive),
        })
    }

    async fn quote(&self, request: &OrderRequest) -> Result<Quote, ProviderError> {
        let cost = self.cost_of(&request.product, request.quantity).await?;
        Ok(Quote {
            cost,
            valid_until: None,
        })
    }

    async fn place_order(
        &self,
        _our_order: OrderId,
        _idempotency_key: &str,
        request: &OrderRequest,
    ) -> Result<ProviderOrder, ProviderError> {
        let name = username(&request.recipient)?.with_at();
        let result = match request.product.family {
            ProductFamily::TelegramStars => {
                if !STARS_QUANTITY.contains(&request.quantity) {
                    return Err(ProviderError::Rejected {
                        provider: ID,
                        code: "VALIDATION_ERROR".into(),
                        message: "Stars are sold in amounts of 50 to 10,000".into(),
                        reason: BuyerReason::AmountOutOfRange,
                        alert_admins: false,
                    });
                }
                // Creating moves no money: any failure here is safe to try again.
                let order = self
                    .client
                    .create_stars_order(&name, u64::from(request.quantity))
                    .await
                    .map_err(|e| map_error(e, None))?;
                let needed = order.cost;
                match self.client.pay_order(&order.order_id).await {
                    Ok(_) => Ok(format!("{ORDER_PREFIX}{}", order.order_id)),
                    Err(e) => Err((map_error(e, Some(&order.order_id)), needed)),
                }
            }
            ProductFamily::TelegramPremium => {
                let months = premium_months(&request.product)?;
                match self.client.buy_premium(&name, months).await {
                    Ok(queued) => Ok(format!("{REQUEST_PREFIX}{}", queued.request_id)),
                    Err(e) => Err((map_error(e, None), Decimal::ZERO)),
                }
            }
            _ => return Err(rejected_not_available("not sold by Fragment")),
        };
        match result {
            Ok(provider_order_id) => Ok(ProviderOrder {
                provider_order_id,
                status: ProviderOrderStatus::Pending,
            }),
            Err((error, needed)) => {
                self.note_starvation(&error, needed);
                Err(error)
            }
        }
    }

    fn replay_safe(&self, _product: &ProductRef) -> bool {
        false
    }

    /// Never `Ok(None)`: see the comment at the end.
    async fn reconcile(
        &self,
        _our_order: OrderId,
        request: &OrderRequest,
        since: DateTime<Utc>,
    ) -> Result<Option<ProviderOrder>, ProviderError> {
        // The wallet's transactions are the only record of a one-call buy: a purchase for
        // the same username after `since` is ours (one shop wallet, one order at a time
        // per recipient is what the engine submits).
        let name = username(&request.recipient)?;
        let transactions = self
            .client
            .transactions(50, 0)
            .await
            .map_err(|e| map_error(e, None))?;
        let ours = transactions.into_iter().find_map(|t| {
            let recent = t.created_at.is_some_and(|at| at >= since);
            let same_user = t
                .username
                .as_deref()
                .is_some_and(|u| TelegramUsername::parse(u).is_ok_and(|u| u.same_account(name)));
            let reference = match (&t.order_id, &t.id) {
                (Some(order), _) => format!("{ORDER_PREFIX}{order}"),
                (None, Some(id)) => format!("{TRANSACTION_PREFIX}{id}"),
                (None, None) => return None,
            };
            (recent && same_user).then_some((reference, t))
        });
        match ours {
            Some((provider_order_id, t)) => Ok(Some(ProviderOrder {
                provider_order_id,
                status: transaction_status(&t, name),
            })),
            // Wallet transactions show a purchase only once Fragment has made it: one still
            // in its queue is invisible here, so "nothing found" cannot mean "never
            // bought". Buying again could buy twice; an admin decides instead.
            None => Err(ProviderError::Ambiguous {
                provider: ID,
                provider_order_id: None,
                detail: format!(
                    "no finished purchase for {} since {since}; one may still be queued at Fragment",
                    name.with_at()
                ),
            }),
        }
    }

    async fn order_status(
        &self,
        provider_order_id: &str,
    ) -> Result<ProviderOrderStatus, ProviderError> {
        if let Some(order_id) = provider_order_id.strip_prefix(ORDER_PREFIX) {
            let order = self
                .client
                .order_status(order_id)
                .await
                .map_err(|e| map_error(e, None))?;
            return Ok(match order.status {
                OrderState::Completed => ProviderOrderStatus::Completed(Delivery {
                    codes: Vec::new(),
                    note: order.username.map(|u| format!("sent to {u}")),
                    reference: Some(order.order_id),
                }),
                OrderState::Failed => ProviderOrderStatus::Failed {
                    reason: BuyerReason::TemporarilyUnavailable,
                    detail: "Fragment failed the order".into(),
                    money_returned: true,
                },
                OrderState::Expired => ProviderOrderStatus::Failed {
                    reason: BuyerReason::TemporarilyUnavailable,
                    detail: "the Fragment order expired unpaid".into(),
                    money_returned: true,
                },
                OrderState::AwaitingPayment
                | OrderState::Queued
                | OrderState::Processing
                | OrderState::Unknown(_) => ProviderOrderStatus::Pending,
            });
        }
        if let Some(request_id) = provider_order_id.strip_prefix(REQUEST_PREFIX) {
            let request = self
                .client
                .queue_request(request_id)
                .await
                .map_err(|e| map_error(e, None))?;
            return Ok(match request.state {
                QueueState::Done => ProviderOrderStatus::Completed(Delivery {
                    codes: Vec::new(),
                    note: None,
                    reference: request.tx_hash,
                }),
                QueueState::Failed => {
                    let failure = request.error;
                    ProviderOrderStatus::Failed {
                        reason: failure
                            .as_ref()
                            .and_then(|f| f.code.as_ref())
                            .map(buyer_reason)
                            .unwrap_or(BuyerReason::TemporarilyUnavailable),
                        detail: failure
                            .map(|f| f.message)
                            .unwrap_or_else(|| "queue request failed".into()),
                        money_returned: true,
                    }
                }
                QueueState::Pending | QueueState::Processing | QueueState::Unknown(_) => {
                    ProviderOrderStatus::Pending
                }
            });
        }
        if let Some(tx_id) = provider_order_id.strip_prefix(TRANSACTION_PREFIX) {
            let transactions = self
                .client
                .transactions(200, 0)
                .await
                .map_err(|e| map_error(e, None))?;
            if let Some(t) = transactions.iter().find(|t| t.id.as_deref() == Some(tx_id)) {
                let name = t
                    .username
                    .as_deref()
                    .and_then(|u| TelegramUsername::parse(u).ok())
                    .ok_or_else(|| ProviderError::Retryable {
                        provider: ID,
                        retry_after: None,
                        detail: format!("transaction {tx_id} has no username"),
                    })?;
                return Ok(transaction_status(t, &name));
            }
            return Ok(ProviderOrderStatus::Pending);
        }
        Err(ProviderError::Configuration {
            provider: ID,
            detail: format!("{provider_order_id:?} is not a Fragment order reference"),
        })
    }

    async fn balances(&self) -> Result<Vec<Balance>, ProviderError> {
        let wallet = self
            .client
            .wallet_balance()
            .await
            .map_err(|e| map_error(e, None))?;
        let wallet_money =
            Money::parse(&wallet.balance.to_string(), &wallet.currency).map_err(|e| {
                ProviderError::Retryable {
                    provider: ID,
                    retry_after: None,
                    detail: e.to_string(),
                }
            })?;
        if let Ok(mut starved) = self.starved.lock()
            && starved
                .is_some_and(|needed| wallet.balance > Decimal::ZERO && wallet.balance >= needed)
        {
            *starved = None;
        }
        let mut lines = vec![Balance {
            label: "wallet".into(),
            amount: wallet_money,
        }];
        if self.client.mode() == client::PurchaseMode::NonKyc {
            let commission = self
                .client
                .commission_balance()
                .await
                .map_err(|e| map_error(e, None))?;
            if let Ok(debt) = Money::parse(&commission.debt.to_string(), &commission.currency) {
                lines.push(Balance {
                    label: "commission debt".into(),
                    amount: debt,
                });
            }
        }
        Ok(lines)
    }
}
