//! Agent API adapter: vouchers (gift cards) and `direct_top_up` products with
//! `customer_account` fields, paid from the shop's balance. `client.rs` is the wire
//! (and documents the payload shapes assumed); this file maps it onto [`Provider`].
//!
//! Orders carry our order id as `external_ref` and our idempotency key, so a retry
//! returns the original order and reconciliation finds it by `external_ref`.

pub mod client;

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use self::client::{
    AgentApiKey, AgentClient, AgentError, NewOrder, Order, OrderQuery, OrderStatus, Product,
    ProductKind, TopupRequest,
};
use super::{
    AmountRange, Balance, BuyerReason, Category, Delivery, Offer, OrderRequest, ProductRef,
    Provider, ProviderError, ProviderId, ProviderOrder, ProviderOrderStatus, Quote, Recipient,
    RecipientCheck, RecipientKind,
};
use crate::config::AgentConfig;
use crate::domain::{Currency, FieldKind, FieldSpec, Money, OrderId, ProductFamily};

const ID: ProviderId = ProviderId::Agent;
/// Vouchers per order the shop offers at most.
const MAX_VOUCHERS: u32 = 10;

pub struct AgentProvider {
    client: AgentClient,
    test_orders: bool,
}

impl AgentProvider {
    pub fn new(config: &AgentConfig, timeout: Duration) -> Result<Self, ProviderError> {
        let client = AgentClient::new(
            config.url.clone(),
            config.agent_id.clone(),
            AgentApiKey::new(config.api_key.expose()),
            timeout,
        )
        .map_err(map_error)?;
        Ok(Self::from_client(client, config.test_orders))
    }

    pub fn from_client(client: AgentClient, test_orders: bool) -> Self {
        Self {
            client,
            test_orders,
        }
    }

    async fn product(&self, product: &ProductRef) -> Result<Product, ProviderError> {
        self.client.product(&product.item).await.map_err(map_error)
    }
}

fn family_of(kind: &ProductKind) -> Option<ProductFamily> {
    match kind {
        ProductKind::Voucher => Some(ProductFamily::GiftCard),
        ProductKind::DirectTopUp => Some(ProductFamily::GameTopup),
        ProductKind::Other(_) => None,
    }
}

fn money(amount: Decimal, currency: Option<&str>) -> Option<Money> {
    Money::parse(&amount.to_string(), currency.unwrap_or("USD")).ok()
}

fn unit_cost(product: &Product) -> Option<Money> {
    let price = product.price.as_ref()?;
    money(
        price.amount,
        price.currency.as_deref().or(product.currency.as_deref()),
    )
}

/// A direct top-up's face-value limits, in the top-up currency.
fn amount_range(product: &Product) -> Option<AmountRange> {
    if product.kind != ProductKind::DirectTopUp {
        return None;
    }
    let limits = product.topup.as_ref()?;
    let currency = limits
        .currency
        .as_deref()
        .or(product.currency.as_deref())
        .and_then(|c| Currency::parse(c).ok())?;
    Some(AmountRange {
        currency,
        min: limits.min.as_ref().map_or(Decimal::ONE, |m| m.amount),
        max: limits
            .max
            .as_ref()
            .map_or(Decimal::from(1000), |m| m.amount),
    })
}

fn recipient_kind(product: &Product) -> RecipientKind {
    if product.kind != ProductKind::DirectTopUp {
        return RecipientKind::Nobody;
    }
    let fields = product
        .customer_account
        .iter()
        .map(|field| FieldSpec {
            key: field.key.clone(),
            label: field.label.clone().unwrap_or_else(|| field.key.clone()),
            kind: if field.options.is_empty() {
                FieldKind::Text
            } else {
                FieldKind::Select {
                    options: field
                        .options
                        .iter()
                        .map(|o| (o.clone(), o.clone()))
                        .collect(),
                }
            },
            required: field.required,
        })
        .collect();
    RecipientKind::Player { fields }
}

fn map_error(error: AgentError) -> ProviderError {
    match error {
        AgentError::InsufficientBalance { message } => ProviderError::Rejected {
            provider: ID,
            code: "insufficient_balance".into(),
            message,
            reason: BuyerReason::TemporarilyUnavailable,
            alert_admins: true,
        },
        AgentError::Api {
            status,
            code,
            message,
        } => match status {
            401 | 403 => ProviderError::Configuration {
                provider: ID,
                detail: format!("HTTP {status} {code}: {message}"),
            },
            500.. => ProviderError::Retryable {
                provider: ID,
                retry_after: None,
                detail: format!("HTTP {status} {code}: {message}"),
            },
            404 => ProviderError::Rejected {
                provider: ID,
                code,
                message,
                reason: BuyerReason::NotAvailable,
                alert_admins: false,
            },
            _ => ProviderError::Rejected {
                provider: ID,
                code,
                message,
                reason: BuyerReason::Other,
                alert_admins: false,
            },
        },
        AgentError::RateLimited { retry_after } => ProviderError::Retryable {
            provider: ID,
            retry_after,
            detail: "rate limited".into(),
        },
        // Replaying an order with its idempotency key is safe, so a lost or unreadable
        // answer is a reason to ask again, not an unknown outcome.
        AgentError::Timeout => ProviderError::Retryable {
            provider: ID,
            retry_after: None,
            detail: "timeout".into(),
        },
        AgentError::Transport(detail) | AgentError::Decode(detail) => ProviderError::Retryable {
            provider: ID,
            retry_after: None,
            detail,
        },
        AgentError::InvalidInput(detail) => ProviderError::Rejected {
            provider: ID,
            code: "invalid_input".into(),
            message: detail,
            reason: BuyerReason::InvalidRecipient,
            alert_admins: false,
        },
    }
}

fn order_status(order: &Order) -> ProviderOrderStatus {
    match order.status {
        OrderStatus::Completed => {
            let content = order.content.as_ref();
            ProviderOrderStatus::Completed(Delivery {
                codes: content
                    .map(|c| {
                        c.vouchers
                            .iter()
                            .map(|v| match &v.pin {
                                Some(pin) => format!("{} PIN {pin}", v.code),
                                None => v.code.clone(),
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
                note: None,
                reference: content.and_then(|c| c.vendor_order_id.clone()),
            })
        }
        OrderStatus::Failed => ProviderOrderStatus::Failed {
            reason: BuyerReason::Other,
            detail: order
                .failure_reason
                .clone()
                .unwrap_or_else(|| "failed".into()),
            money_returned: true,
        },
        OrderStatus::Pending | OrderStatus::Processing | OrderStatus::Unknown(_) => {
            ProviderOrderStatus::Pending
        }
    }
}

#[async_trait]
impl Provider for AgentProvider {
    fn id(&self) -> ProviderId {
        ID
    }

    fn families(&self) -> Vec<ProductFamily> {
        vec![ProductFamily::GiftCard, ProductFamily::GameTopup]
    }

    async fn categories(&self, family: ProductFamily) -> Result<Vec<Category>, ProviderError> {
        let catalog = self.client.catalog().await.map_err(map_error)?;
        Ok(catalog
            .categories
            .iter()
            .filter(|category| {
                catalog.products.iter().any(|p| {
                    p.category_id.as_deref() == Some(category.id.as_str())
                        && family_of(&p.kind) == Some(family)
                })
            })
            .map(|category| Category {
                id: category.id.clone(),
                name: category.name.clone().unwrap_or_else(|| category.id.clone()),
                family,
            })
            .collect())
    }

    async fn offers(
        &self,
        family: ProductFamily,
        category_id: &str,
    ) -> Result<Vec<Offer>, ProviderError> {
        let catalog = self.client.catalog().await.map_err(map_error)?;
        let mut offers = Vec::new();
        for listed in catalog.products.iter().filter(|p| {
            p.category_id.as_deref() == Some(category_id) && family_of(&p.kind) == Some(family)
        }) {
            // Lists may omit the buyer fields; the detail call has them.
            let product =
                if listed.kind == ProductKind::DirectTopUp && listed.customer_account.is_empty() {
                    self.client.product(&listed.id).await.map_err(map_error)?
                } else {
                    listed.clone()
                };
            let top_up = product.kind == ProductKind::DirectTopUp;
            offers.push(Offer {
                product: ProductRef {
                    provider: ID,
                    family,
                    category: category_id.to_owned(),
                    item: product.id.clone(),
                    variant: None,
                },
                title: product.name.clone(),
                unit_cost: unit_cost(&product),
                stock: (product.in_stock == Some(false)).then_some(0),
                min_quantity: 1,
                max_quantity: if top_up { 1 } else { MAX_VOUCHERS },
                recipient: recipient_kind(&product),
                amount: amount_range(&product),
            });
        }
        Ok(offers)
    }

    async fn check_recipient(
        &self,
        _product: &ProductRef,
        recipient: &Recipient,
    ) -> Result<RecipientCheck, ProviderError> {
        // The API offers no account lookup: the fields were checked against the
        // product's field list when the buyer typed them.
        match recipient {
            Recipient::Player(_) | Recipient::Nobody => Ok(RecipientCheck::Unchecked),
            _ => Ok(RecipientCheck::Refused(BuyerReason::InvalidRecipient)),
        }
    }

    async fn quote(&self, request: &OrderRequest) -> Result<Quote, ProviderError> {
        let product = self.product(&request.product).await?;
        let unit = unit_cost(&product).ok_or_else(|| ProviderError::Rejected {
            provider: ID,
            code: "no_price".into(),
            message: format!("product {} has no price", product.id),
            reason: BuyerReason::NotAvailable,
            alert_admins: false,
        })?;
        let units = match (&product.kind, &request.amount) {
            (ProductKind::DirectTopUp, Some(amount)) => amount.amount,
            (ProductKind::DirectTopUp, None) => {
                return Err(ProviderError::Rejected {
                    provider: ID,
                    code: "amount_required".into(),
                    message: "a top-up needs an amount".into(),
                    reason: BuyerReason::AmountOutOfRange,
                    alert_admins: false,
                });
            }
            _ => Decimal::from(request.quantity),
        };
        Ok(Quote {
            cost: Money::new(unit.amount * units, unit.currency),
            valid_until: None,
        })
    }

    async fn place_order(
        &self,
        our_order: OrderId,
        idempotency_key: &str,
        request: &OrderRequest,
    ) -> Result<ProviderOrder, ProviderError> {
        let topup = match (&request.recipient, &request.amount) {
            (Recipient::Player(fields), Some(amount)) => Some(TopupRequest {
                amount: amount.amount,
                customer_account: fields
                    .iter()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect(),
            }),
            _ => None,
        };
        let order = self
            .client
            .create_order(
                &NewOrder {
                    product_id: request.product.item.clone(),
                    external_ref: our_order.to_string(),
                    quantity: request.quantity,
                    test: self.test_orders,
                    topup,
                },
                idempotency_key,
            )
            .await
            .map_err(map_error)?;
        Ok(ProviderOrder {
            status: order_status(&order),
            provider_order_id: order.id,
        })
    }

    fn replay_safe(&self, _product: &ProductRef) -> bool {
        true
    }

    async fn reconcile(
        &self,
        our_order: OrderId,
        _request: &OrderRequest,
        _since: DateTime<Utc>,
    ) -> Result<Option<ProviderOrder>, ProviderError> {
        let orders = self
            .client
            .orders(&OrderQuery {
                external_ref: Some(our_order.to_string()),
                ..Default::default()
            })
            .await
            .map_err(map_error)?;
        Ok(orders
            .into_iter()
            .find(|o| o.external_ref.as_deref() == Some(our_order.to_string().as_str()))
            .map(|order| ProviderOrder {
                status: order_status(&order),
                provider_order_id: order.id,
            }))
    }

    async fn order_status(
        &self,
        provider_order_id: &str,
    ) -> Result<ProviderOrderStatus, ProviderError> {
        let order = self
            .client
            .order(provider_order_id)
            .await
            .map_err(map_error)?;
        Ok(order_status(&order))
    }

    async fn balances(&self) -> Result<Vec<Balance>, ProviderError> {
        let balances = self.client.balance().await.map_err(map_error)?;
        Ok(balances
            .into_iter()
            .filter_map(|b| {
                Some(Balance {
                    label: b.currency.clone(),
                    amount: money(b.amount, Some(&b.currency))?,
                })
            })
            .collect())
    }
}
