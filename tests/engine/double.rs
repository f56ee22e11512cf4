//! A scriptable provider for what the sandboxes cannot be made to do on cue: a second
//! Stars seller to reroute to, a refusal, an ambiguous answer, a call that hangs, a
//! status that a webhook and a poll race to apply. It records every call.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use kiosk::domain::{Money, OrderId, ProductFamily};
use kiosk::providers::{
    Balance, BuyerReason, Category, Delivery, Offer, OrderRequest, ProductRef, Provider,
    ProviderError, ProviderId, ProviderOrder, ProviderOrderStatus, Quote, Recipient,
    RecipientCheck,
};

/// What `place_order` does.
#[derive(Debug, Clone)]
pub enum Place {
    /// Accepts; the order then has `status`.
    Accept,
    Reject(BuyerReason),
    /// Retryable this many times, then accepts.
    RetryableTimes(usize),
    Ambiguous,
    /// Creates the order, then never answers (a crash or timeout mid-call).
    CreateThenHang,
}

pub struct Double {
    id: ProviderId,
    replay_safe: bool,
    pub place: Mutex<Place>,
    /// What `order_status` (and an accepting `place_order`) answers.
    pub status: Mutex<ProviderOrderStatus>,
    pub cost: Mutex<Money>,
    /// Orders created: provider order id → (our order, idempotency key).
    pub orders: Mutex<HashMap<String, (OrderId, String)>>,
    /// Keys of every place call, in order.
    pub place_keys: Mutex<Vec<String>>,
    pub status_calls: AtomicUsize,
    pub reconcile_calls: AtomicUsize,
    /// Delay of every `order_status` answer (to let racing callers overlap).
    pub status_delay: Mutex<Duration>,
}

impl Double {
    pub fn new(id: ProviderId, replay_safe: bool) -> Self {
        Self {
            id,
            replay_safe,
            place: Mutex::new(Place::Accept),
            status: Mutex::new(ProviderOrderStatus::Pending),
            cost: Mutex::new(Money::parse("1.00", "USD").expect("money")),
            orders: Mutex::new(HashMap::new()),
            place_keys: Mutex::new(Vec::new()),
            status_calls: AtomicUsize::new(0),
            reconcile_calls: AtomicUsize::new(0),
            status_delay: Mutex::new(Duration::ZERO),
        }
    }

    pub fn set_place(&self, place: Place) {
        *self.place.lock().expect("lock") = place;
    }

    pub fn set_status(&self, status: ProviderOrderStatus) {
        *self.status.lock().expect("lock") = status;
    }

    pub fn set_cost(&self, cost: Money) {
        *self.cost.lock().expect("lock") = cost;
    }

    pub fn order_count(&self) -> usize {
        self.orders.lock().expect("lock").len()
    }

    pub fn place_calls(&self) -> usize {
        self.place_keys.lock().expect("lock").len()
    }

    pub fn keys(&self) -> Vec<String> {
        self.place_keys.lock().expect("lock").clone()
    }

    fn create(&self, our: OrderId, key: &str) -> String {
        let mut orders = self.orders.lock().expect("lock");
        if self.replay_safe
            && let Some((id, _)) = orders.iter().find(|(_, (_, k))| k == key)
        {
            return id.clone();
        }
        let id = format!("{}-{}", self.id, orders.len() + 1);
        orders.insert(id.clone(), (our, key.to_owned()));
        id
    }

    pub fn codes(codes: &[&str]) -> ProviderOrderStatus {
        ProviderOrderStatus::Completed(Delivery {
            codes: codes.iter().map(|c| (*c).to_owned()).collect(),
            note: None,
            reference: Some("ref-1".into()),
        })
    }
}

#[async_trait]
impl Provider for Double {
    fn id(&self) -> ProviderId {
        self.id
    }

    fn families(&self) -> Vec<ProductFamily> {
        vec![
            ProductFamily::TelegramStars,
            ProductFamily::TelegramPremium,
            ProductFamily::GiftCard,
        ]
    }

    async fn categories(&self, _family: ProductFamily) -> Result<Vec<Category>, ProviderError> {
        Ok(Vec::new())
    }

    async fn offers(
        &self,
        _family: ProductFamily,
        _category_id: &str,
    ) -> Result<Vec<Offer>, ProviderError> {
        Ok(Vec::new())
    }

    async fn check_recipient(
        &self,
        _product: &ProductRef,
        _recipient: &Recipient,
    ) -> Result<RecipientCheck, ProviderError> {
        Ok(RecipientCheck::Unchecked)
    }

    async fn quote(&self, _request: &OrderRequest) -> Result<Quote, ProviderError> {
        Ok(Quote {
            cost: self.cost.lock().expect("lock").clone(),
            valid_until: None,
        })
    }

    async fn place_order(
        &self,
        our_order: OrderId,
        idempotency_key: &str,
        request: &OrderRequest,
    ) -> Result<ProviderOrder, ProviderError> {
        assert_eq!(
            request.product.provider, self.id,
            "the product was rerouted"
        );
        self.place_keys
            .lock()
            .expect("lock")
            .push(idempotency_key.to_owned());
        let place = self.place.lock().expect("lock").clone();
        match place {
            Place::Accept => Ok(ProviderOrder {
                provider_order_id: self.create(our_order, idempotency_key),
                status: self.status.lock().expect("lock").clone(),
            }),
            Place::Reject(reason) => Err(ProviderError::Rejected {
                provider: self.id,
                code: "REFUSED".into(),
                message: "refused by the double".into(),
                reason,
                alert_admins: false,
            }),
            Place::RetryableTimes(n) => {
                if n == 0 {
                    self.set_place(Place::Accept);
                    return Ok(ProviderOrder {
                        provider_order_id: self.create(our_order, idempotency_key),
                        status: self.status.lock().expect("lock").clone(),
                    });
                }
                self.set_place(Place::RetryableTimes(n - 1));
                Err(ProviderError::Retryable {
                    provider: self.id,
                    retry_after: None,
                    detail: "busy".into(),
                })
            }
            Place::Ambiguous => {
                let id = self.create(our_order, idempotency_key);
                Err(ProviderError::Ambiguous {
                    provider: self.id,
                    provider_order_id: Some(id),
                    detail: "timeout after the request was sent".into(),
                })
            }
            Place::CreateThenHang => {
                self.create(our_order, idempotency_key);
                std::future::pending::<()>().await;
                unreachable!("pending never resolves")
            }
        }
    }

    fn replay_safe(&self, _product: &ProductRef) -> bool {
        self.replay_safe
    }

    async fn reconcile(
        &self,
        our_order: OrderId,
        _request: &OrderRequest,
        _since: DateTime<Utc>,
    ) -> Result<Option<ProviderOrder>, ProviderError> {
        self.reconcile_calls.fetch_add(1, Ordering::SeqCst);
        let found = self
            .orders
            .lock()
            .expect("lock")
            .iter()
            .find(|(_, (ours, _))| *ours == our_order)
            .map(|(id, _)| id.clone());
        Ok(found.map(|provider_order_id| ProviderOrder {
            provider_order_id,
            status: self.status.lock().expect("lock").clone(),
        }))
    }

    async fn order_status(
        &self,
        provider_order_id: &str,
    ) -> Result<ProviderOrderStatus, ProviderError> {
        self.status_calls.fetch_add(1, Ordering::SeqCst);
        let delay = *self.status_delay.lock().expect("lock");
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if !self
            .orders
            .lock()
            .expect("lock")
            .contains_key(provider_order_id)
        {
            return Err(ProviderError::Rejected {
                provider: self.id,
                code: "NOT_FOUND".into(),
                message: format!("no order {provider_order_id}"),
                reason: BuyerReason::Other,
                alert_admins: false,
            });
        }
        Ok(self.status.lock().expect("lock").clone())
    }

    async fn balances(&self) -> Result<Vec<Balance>, ProviderError> {
        Ok(Vec::new())
    }
}
